/**
 * sk_lookup programs (`SEC("sk_lookup")`, 5.9+): run when the kernel looks for the socket an
 * incoming TCP connection or UDP datagram belongs to, in one network namespace. The program may
 * pick a socket with bpf_sk_assign() (usually one it took from a sockmap), let the normal lookup
 * go on (SK_PASS) or drop (SK_DROP). They attach with a bpf_link on the namespace: BPF_LINK_CREATE
 * with attach type sk_lookup on an fd of the namespace file (/proc/<pid>/ns/net, or a bind mount
 * such as /run/netns/<name>). Several programs may be attached to one namespace; they run in turn.
 */
import { closeSync, openSync } from 'node:fs';
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import type { Program } from '../objects/program.js';
import type { AttachType } from '../abi/constants.js';
import { FD } from '../sys/fd.js';
import { FdLink, requireProgramType } from './link.js';
import { linkCreateRaw } from '../sys/link.js';

function netnsHint(errno: number, attachType: AttachType, netns: string): string | undefined {
  switch (errno) {
    case 1: return `attaching ${attachType} programs needs CAP_NET_ADMIN and CAP_BPF (run as root)`;
    case 7: return 'too many programs are attached to this namespace hook (64 at most)';
    case 9: return `${netns} is not an open file`;
    case 22: return `${netns} is not a network namespace, or the program was not loaded for attach type ${attachType}`;
    case 17: return 'this program is already attached to the namespace';
    default: return undefined;
  }
}

/** A bpf_link on a network namespace (sk_lookup, flow_dissector). `netns` is a path or an open fd. */
function attachToNetns(prog: Program, netns: string | number, attachType: AttachType): FdLink {
  const label = typeof netns === 'number' ? `netns fd ${netns}` : netns;
  let fd: number;
  if (typeof netns === 'number') {
    if (!Number.isInteger(netns) || netns < 0) throw new InvalidArgumentError(`bad network namespace fd ${netns}`);
    fd = netns;
  } else {
    try {
      fd = openSync(netns, 'r');
    } catch (e) {
      throw new InvalidArgumentError(`cannot open network namespace ${netns}: ${(e as Error).message}`);
    }
  }
  try {
    const r = linkCreateRaw({ progFd: prog.fd, target: fd, attachType });
    if (r < 0) throw new BpfSyscallError(r, 'bpf(BPF_LINK_CREATE)', `attach ${prog.name || 'program'} to ${label} (${attachType})`, netnsHint(-r, attachType, label));
    return new FdLink(new FD(r, `${attachType} link on ${label}`), attachType);
  } finally {
    // The link holds its own reference to the namespace.
    if (typeof netns !== 'number') closeSync(fd);
  }
}

/**
 * Attaches an sk_lookup program to a network namespace: by default the caller's
 * (/proc/self/ns/net); give another namespace's file (/run/netns/<name>, /proc/<pid>/ns/net) or an
 * open fd of one. The link's info() says type 'netns', with the namespace's inode number.
 *
 * Requires Linux 5.9 (sk_lookup programs).
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a program of another type, a
 *   bad fd, or a namespace file that cannot be opened.
 * @throws {@link BpfSyscallError} (`code` is the errno name) when BPF_LINK_CREATE fails.
 */
export function attachSkLookup(prog: Program, netns: string | number = '/proc/self/ns/net'): FdLink {
  requireProgramType(prog, ['sk_lookup'], 'attachSkLookup');
  return attachToNetns(prog, netns, 'sk_lookup');
}
