/**
 * uprobe_multi links (`SEC("uprobe.multi/<binary>:<pattern>")`, `uretprobe.multi`,
 * `uprobe.session`): one program on many functions of one binary in one BPF_LINK_CREATE (6.6+;
 * sessions 6.13+). The program must have been loaded with the expected attach type
 * BPF_TRACE_UPROBE_MULTI (or _SESSION), which the section gives.
 *
 * Functions are named, given as file offsets, or matched by a pattern (`*`, `?`) against the
 * binary's function symbols as libbpf does: .symtab first, .dynsym only when .symtab matched none.
 */
import { EBADF, EINVAL, EPERM, ESRCH } from '../abi/errno.js';
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import { openElfFile, symbolFileOffsetIn } from '../elf/file.js';
import { STT, SHN_UNDEF } from '../elf/reader.js';
import type { Program } from '../objects/program.js';
import { hookSupport } from '../kernel/features.js';
import { FD } from '../sys/fd.js';
import { globMatch, isGlob } from './glob.js';
import { FdLink, requireProgramType } from './link.js';
import { multiProbeAttachType } from './multi-probe.js';
import { BPF_F_UPROBE_MULTI_RETURN, linkCreateRaw } from '../sys/link.js';
import { resolveBinaryPath, symbolFileOffset } from './uprobe.js';

/**
 * Options of {@link attachUprobeMulti}: process, return probes, sessions, cookies, reference
 * counter offsets.
 */
export interface UprobeMultiOptions {
  /** Attach at function return (uretprobe.multi). */
  retprobe?: boolean;
  /** A uprobe session (6.13+): entry and, unless the entry run returned non-zero, return. Implied by uprobe.session sections. */
  session?: boolean;
  /** Only this process (default: every process that runs the binary). */
  pid?: number;
  /** One bpf_cookie per function, in the order of `functions` (an explicit list only). */
  cookies?: readonly bigint[];
  /** File offsets of USDT-style semaphores, one per function (0 for none). */
  refCtrOffsets?: readonly bigint[];
}


/** File offsets of the function symbols of `path` whose names match `pattern`. */
export function resolveBinaryPattern(path: string, pattern: string): number[] {
  const elf = openElfFile(path, 'uprobe.multi');
  for (const table of ['symtab', 'dynsym'] as const) {
    const offsets = elf.symbols(table)
      .filter((s) => s.type === STT.FUNC && s.shndx !== SHN_UNDEF && s.value !== 0 && globMatch(s.name, pattern))
      .map((s) => symbolFileOffsetIn(elf, s, path, 'uprobe.multi'));
    if (offsets.length > 0) return offsets;
  }
  throw new InvalidArgumentError(`uprobe.multi: no function of ${path} matches "${pattern}"`);
}

/**
 * Attaches a uprobe.multi / uretprobe.multi / uprobe.session program to many functions of one
 * binary: a pattern ("handle_*"), one name, or a list of names and file offsets.
 *
 * Requires Linux 6.6 (uprobe_multi links); uprobe.session 6.13.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a missing binary, a name or
 *   pattern that matches no function, or cookies that do not pair with the functions.
 * @throws {@link BpfSyscallError} (`code` is the errno name: EINVAL or EOPNOTSUPP on kernels
 *   without uprobe_multi).
 */
export function attachUprobeMulti(prog: Program, binary: string, functions: string | readonly (string | number)[], options: UprobeMultiOptions = {}): FdLink {
  requireProgramType(prog, ['kprobe'], 'attachUprobeMulti');
  const { session, attachType } = multiProbeAttachType(prog, 'uprobe', 'attachUprobeMulti', options);
  const pid = options.pid ?? 0;
  if (!Number.isInteger(pid) || pid < 0) throw new InvalidArgumentError(`attachUprobeMulti: pid must be a process id, got ${pid}`);
  const list = typeof functions === 'string' ? [functions] : [...functions];
  if (list.length === 0) throw new InvalidArgumentError('attachUprobeMulti: no functions given');
  const pattern = list.length === 1 && typeof list[0] === 'string' && isGlob(list[0]);
  for (const arr of [options.cookies, options.refCtrOffsets]) {
    if (arr && (pattern || arr.length !== list.length)) {
      throw new InvalidArgumentError(`attachUprobeMulti: cookies and refCtrOffsets need an explicit list of functions, one each (${list.length} functions, ${arr.length} given)`);
    }
  }
  const missing = hookSupport(session ? 'uprobe_session' : 'uprobe_multi');
  if (missing) throw missing;

  const path = resolveBinaryPath(binary);
  const offsets = pattern
    ? resolveBinaryPattern(path, list[0] as string)
    : list.map((f) => {
      if (typeof f === 'number') {
        if (!Number.isInteger(f) || f < 0) throw new InvalidArgumentError(`attachUprobeMulti: file offset must be a non-negative integer, got ${f}`);
        return f;
      }
      if (isGlob(f)) throw new InvalidArgumentError(`attachUprobeMulti: "${f}" is a pattern: give one pattern alone, or a list of plain names`);
      return symbolFileOffset(path, f);
    });
  const kind = session ? 'uprobe_session' : options.retprobe ? 'uretprobe_multi' : 'uprobe_multi';
  const r = linkCreateRaw({
    progFd: prog.fd, target: 0, attachType,
    uprobeMulti: {
      path, offsets: offsets.map(BigInt), flags: options.retprobe ? BPF_F_UPROBE_MULTI_RETURN : 0, pid,
      ...(options.cookies ? { cookies: options.cookies } : {}), ...(options.refCtrOffsets ? { refCtrOffsets: options.refCtrOffsets } : {}),
    },
  });
  if (r < 0) {
    throw new BpfSyscallError(r, 'bpf(BPF_LINK_CREATE)', `attach ${prog.name || 'program'} as ${kind} to ${path} (${offsets.length} functions)`,
      -r === EBADF ? `${path} is not a regular file` :
      -r === ESRCH ? `no process ${pid}` :
      -r === EINVAL ? 'the kernel refused an offset (not an instruction of the binary) or the options' :
      -r === EPERM ? 'attaching uprobes needs CAP_BPF and CAP_PERFMON (run as root)' : undefined);
  }
  return new FdLink(new FD(r, `${kind} link`), kind);
}
