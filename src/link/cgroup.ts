/**
 * cgroup programs (cgroup_skb, cgroup_sock, cgroup_sock_addr, sock_ops, cgroup_device,
 * cgroup_sysctl, cgroup_sockopt): a bpf_link on the cgroup v2 directory (5.7+), or BPF_PROG_ATTACH
 * with BPF_F_ALLOW_MULTI on older kernels, undone with BPF_PROG_DETACH on close.
 */
import { EINVAL } from '../abi/errno.js';
import { closeSync, openSync, statSync } from 'node:fs';
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import type { Program } from '../objects/program.js';
import { getFdById } from '../sys/bpf.js';
import type { AttachType, ProgType } from '../abi/constants.js';
import { FD } from '../sys/fd.js';
import { DetachLink, FdLink, programId, requireProgramType, type Link } from './link.js';
import { BPF_F_ALLOW_MULTI, linkCreateRaw, progAttachRaw, progDetachRaw } from '../sys/link.js';

/** Options of {@link attachCgroup}: BPF_PROG_ATTACH even where cgroup links exist (Linux 5.7). */
export interface CgroupOptions {
  /** Use BPF_PROG_ATTACH (BPF_F_ALLOW_MULTI) instead of a bpf_link. */
  forceProgAttach?: boolean;
}

const CGROUP_PROG_TYPES: readonly ProgType[] = [
  'cgroup_skb', 'cgroup_sock', 'cgroup_sock_addr', 'sock_ops', 'cgroup_device', 'cgroup_sysctl', 'cgroup_sockopt', 'lsm',
];


function hint(errno: number, path: string, attachType: AttachType): string | undefined {
  switch (errno) {
    case 1: return 'attaching to cgroups needs CAP_NET_ADMIN and CAP_BPF (run as root)';
    case 9: return `${path} is not a cgroup v2 directory (cgroup programs attach to cgroup2 only)`;
    case 22: return `the program does not fit attach type ${attachType} (was it loaded from a section for this hook?)`;
    case 7: return 'too many programs are attached to this cgroup hook (64 at most)';
    case 17: return 'this program is already attached to this cgroup hook';
    default: return undefined;
  }
}

/**
 * Attaches a cgroup program to a cgroup v2 directory, e.g. "/sys/fs/cgroup/unified/my.slice".
 * The attach type defaults to the one of the program's section (cgroup_skb/ingress, ...).
 *
 * Requires Linux 4.10 (BPF_PROG_ATTACH to cgroups; a bpf_link from 5.7). Some attach types are
 * newer: sock_addr hooks 4.17, sysctl 5.2, sockopt 5.3, unix socket hooks 6.7.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) when the program is no cgroup
 *   program or no attach type is given or known from its section.
 * @throws {@link BpfSyscallError} (`code` is the errno name: ENOENT for a missing cgroup
 *   directory, EINVAL or EPERM when the kernel refuses the attach type).
 */
export function attachCgroup(prog: Program, cgroupPath: string, attachType?: AttachType, options: CgroupOptions = {}): Link {
  requireProgramType(prog, CGROUP_PROG_TYPES, 'attachCgroup');
  const type = attachType ?? prog.attachType;
  if (!type) {
    throw new InvalidArgumentError(`attachCgroup: give the attach type of ${prog.name || 'the program'} (e.g. 'cgroup_inet_ingress'); its section ${prog.sectionName || '(none)'} does not say`);
  }
  let isDir = false;
  try { isDir = statSync(cgroupPath).isDirectory(); } catch { /* reported below */ }
  if (!isDir) throw new InvalidArgumentError(`attachCgroup: ${cgroupPath} is not a directory (give a cgroup v2 directory)`);
  const cgFd = openSync(cgroupPath, 'r');
  const what = `attach ${prog.name || 'program'} to cgroup ${cgroupPath} (${type})`;
  let keepOpen = false;
  try {
    if (!options.forceProgAttach) {
      const r = linkCreateRaw({ progFd: prog.fd, target: cgFd, attachType: type });
      if (r >= 0) return new FdLink(new FD(r, `cgroup link on ${cgroupPath}`), 'cgroup');
      // Kernels before 5.7 have no cgroup links (EINVAL): use BPF_PROG_ATTACH.
      if (-r !== EINVAL) throw new BpfSyscallError(r, 'bpf(BPF_LINK_CREATE)', what, hint(-r, cgroupPath, type));
    }
    const progId = programId(prog);
    const r = progAttachRaw({ targetFd: cgFd, progFd: prog.fd, attachType: type, flags: BPF_F_ALLOW_MULTI });
    if (r < 0) throw new BpfSyscallError(r, 'bpf(BPF_PROG_ATTACH)', what, hint(-r, cgroupPath, type));
    keepOpen = true;
    return new DetachLink('cgroup-prog-attach', { type: 'unspec', id: 0, progId, attachType: type }, () => {
      try {
        let fd: FD;
        try {
          fd = getFdById('PROG', progId);
        } catch (e) {
          if (e instanceof BpfSyscallError && e.code === 'ENOENT') return;
          throw e;
        }
        try {
          const d = progDetachRaw(cgFd, fd.value, type);
          if (d < 0 && d !== -2) throw new BpfSyscallError(d, 'bpf(BPF_PROG_DETACH)', `detach ${prog.name || 'program'} from cgroup ${cgroupPath}`);
        } finally {
          fd.close();
        }
      } finally {
        closeSync(cgFd);
      }
    }, { outlivesProcess: true });
  } finally {
    if (!keepOpen) closeSync(cgFd);
  }
}
