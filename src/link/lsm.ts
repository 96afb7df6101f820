/**
 * BPF LSM programs (`SEC("lsm/<hook>")`, 5.7+): a program run at a security hook, loaded against
 * the kernel function bpf_lsm_<hook> and attached with BPF_RAW_TRACEPOINT_OPEN (no name: the hook
 * was fixed at load) through a BPF trampoline. `lsm_cgroup/<hook>` programs (6.0+) run only for
 * tasks of one cgroup and attach to it instead.
 *
 * Both need a kernel with CONFIG_BPF_LSM whose active LSMs include "bpf" (CONFIG_LSM or the lsm=
 * boot parameter), and BPF trampolines. A kernel without them refuses to load the programs (EPERM
 * or EINVAL before verification); if one was loaded elsewhere but cannot attach here, attaching
 * throws NotSupportedError saying what the kernel lacks.
 */
import { EINVAL, ENOTSUPP, EOPNOTSUPP, EPERM } from '../abi/errno.js';
import { InvalidArgumentError, NotSupportedError } from '../errors.js';
import type { Program } from '../objects/program.js';
import { FD } from '../sys/fd.js';
import { attachCgroup } from './cgroup.js';
import { FdLink, requireProgramType, type Link } from './link.js';
import { check, rawTracepointOpenRaw } from '../sys/link.js';
import { lsmRefusal } from '../kernel/features.js';
import { bpfLsmActive } from '../sys/securityfs.js';

/**
 * Options of {@link attachLsm}: a cgroup for per-cgroup LSM programs (lsm_cgroup, Linux 6.0) and a
 * cookie.
 */
export interface LsmOptions {
  /** lsm_cgroup programs: the cgroup v2 directory. */
  cgroup?: string;
  /** bpf_cookie for bpf_get_attach_cookie() (6.10+). */
  cookie?: bigint;
}


/** The NotSupportedError for a kernel that cannot run BPF LSM programs. */
export function lsmNotSupported(prog: Program, errno: number): NotSupportedError {
  return new NotSupportedError('BPF LSM programs (lsm/<hook>)',
    `the kernel refused to attach ${prog.name || 'the program'} (${errno === EPERM ? 'EPERM' : errno === EINVAL ? 'EINVAL' : 'not supported'}): ` +
    (errno === EPERM ? lsmRefusal() : 'it needs CONFIG_BPF_LSM with "bpf" among the active LSMs (CONFIG_LSM or the lsm= boot parameter), and BPF trampolines'), '5.7');
}

/**
 * Attaches a BPF LSM program to the hook it was loaded for (or, for lsm_cgroup, to `options.cgroup`).
 *
 * Requires Linux 5.7 (BPF LSM, with CONFIG_BPF_LSM and "bpf" among the active LSMs); lsm_cgroup 6.0.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) when the program is no LSM
 *   program, or an lsm_cgroup program comes without `options.cgroup`.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) naming what the kernel lacks.
 * @throws {@link BpfSyscallError} (`code` is the errno name) when the kernel refuses the link.
 */
export function attachLsm(prog: Program, options: LsmOptions = {}): Link {
  requireProgramType(prog, ['lsm'], 'attachLsm');
  if (prog.attachType === 'lsm_cgroup') {
    if (!options.cgroup) throw new InvalidArgumentError(`attachLsm: ${prog.name || 'the program'} is an lsm_cgroup program: pass { cgroup: <cgroup v2 directory> }`);
    return attachCgroup(prog, options.cgroup, 'lsm_cgroup');
  }
  // With "bpf" not among the active LSMs the kernel attaches the program to a hook that never
  // runs: refuse rather than hand back a link that silently does nothing.
  if (bpfLsmActive() === false) {
    throw new NotSupportedError('BPF LSM programs (lsm/<hook>)', `cannot attach ${prog.name || 'the program'}: ${lsmRefusal()}`, '5.7');
  }
  const r = rawTracepointOpenRaw(null, prog.fd, options.cookie);
  const e = -r;
  if (r < 0 && ((e === EPERM && process.geteuid?.() === 0) || e === EOPNOTSUPP || e === ENOTSUPP)) throw lsmNotSupported(prog, e);
  check(r, 'bpf(BPF_RAW_TRACEPOINT_OPEN)', `attach ${prog.name || 'program'} (${prog.sectionName || 'lsm'})`, (n) =>
    n === EPERM ? 'attaching LSM programs needs CAP_BPF, CAP_PERFMON and CAP_MAC_ADMIN (run as root)' :
    n === EINVAL && options.cookie !== undefined ? 'LSM cookies need Linux 6.10 or later' :
    n === EINVAL ? 'the program was not loaded with an LSM hook (lsm/<hook> sections name it)' : undefined);
  return new FdLink(new FD(r, 'lsm link'), 'lsm');
}
