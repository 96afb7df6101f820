/**
 * Socket filters (`SEC("socket")`): SO_ATTACH_BPF on a socket fd, SO_DETACH_BPF on close. The
 * kernel keeps the program while the socket has it, so the Program may be closed meanwhile.
 */
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import { native } from '../sys/native.js';
import type { Program } from '../objects/program.js';
import { DetachLink, programId, requireProgramType, type Link } from './link.js';

const SOL_SOCKET = 1;
const SO_DETACH_FILTER = 27; // SO_DETACH_BPF has the same number
const SO_ATTACH_BPF = 50;

/**
 * Attaches a socket filter program to a socket, given by its fd (or anything with a numeric `fd`).
 *
 * Requires Linux 3.19 (SO_ATTACH_BPF).
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a program of another type or
 *   something that is not a socket fd.
 * @throws {@link BpfSyscallError} (`code` is the errno name: ENOTSOCK, EBADF) from setsockopt.
 */
export function attachSocketFilter(prog: Program, socket: number | { fd: number }): Link {
  requireProgramType(prog, ['socket_filter'], 'attachSocketFilter');
  const fd = typeof socket === 'number' ? socket : socket.fd;
  if (!Number.isInteger(fd) || fd < 0) throw new InvalidArgumentError(`attachSocketFilter: bad socket fd ${fd}`);
  const progId = programId(prog);
  const r = native().setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, new Int32Array([prog.fd]));
  if (r < 0) {
    throw new BpfSyscallError(r, 'setsockopt(SO_ATTACH_BPF)', `attach ${prog.name || 'program'} to socket fd ${fd}`,
      -r === 88 ? `fd ${fd} is not a socket` : -r === 9 ? `fd ${fd} is not open` : -r === 22 ? 'the program is not a socket filter' : undefined);
  }
  return new DetachLink('socket-filter', { type: 'unspec', id: 0, progId }, () => {
    const d = native().setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, new Int32Array([0]));
    // ENOENT: no filter any more; EBADF/ENOTSOCK: the socket was closed (which dropped the filter).
    if (d < 0 && d !== -2 && d !== -9 && d !== -88) throw new BpfSyscallError(d, 'setsockopt(SO_DETACH_BPF)', `detach socket filter from fd ${fd}`);
  });
}
