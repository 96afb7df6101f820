/**
 * BPF iterators (`SEC("iter/<target>")`: task, task_file, task_vma, bpf_map, bpf_map_elem,
 * bpf_prog, bpf_link, tcp, udp, unix, cgroup, ksym, ...). The program is a `tracing` program
 * loaded against the kernel function bpf_iter_<target>; attaching makes a bpf_link
 * (BPF_LINK_CREATE, attach type trace_iter, with a `union bpf_iter_link_info` for iterators that
 * walk one map, task or cgroup). Each BPF_ITER_CREATE on the link gives a new file descriptor:
 * reading it runs the program over the objects, and what the program wrote with bpf_seq_printf /
 * bpf_seq_write is what read() returns, until it returns 0. A pinned iterator link can also be read
 * as a file (`cat /sys/fs/bpf/<pin>`). The fds are ordinary seq_file fds: they are read with
 * node:fs (the native addon has no read()).
 */
import { EACCES, EBADF, EINVAL, ENOENT, ENOTSUPP, EOPNOTSUPP, EPERM } from '../abi/errno.js';
import { closeSync, createReadStream, openSync, readSync, type ReadStream } from 'node:fs';
import { BpfSyscallError, InvalidArgumentError, NotSupportedError } from '../errors.js';
import type { Program } from '../objects/program.js';
import { offsetofend } from '../abi/layout.js';
import { Attr } from '../sys/attr.js';
import { bpfRaw } from '../sys/bpf.js';
import { attachType as attachTypeNames } from '../abi/constants.js';
import { FD } from '../sys/fd.js';
import { bpf_attr, bpf_iter_link_info } from '../abi/uapi.js';
import { FdLink, requireProgramType } from './link.js';

/**
 * The order a cgroup iterator walks the hierarchy (Linux 6.1): the cgroup alone, its descendants
 * pre- or post-order, or its ancestors up.
 */
export type CgroupIterOrder = 'self_only' | 'descendants_pre' | 'descendants_post' | 'ancestors_up';
/** enum bpf_cgroup_iter_order */
const CGROUP_ORDER: Readonly<Record<CgroupIterOrder, number>> = { self_only: 1, descendants_pre: 2, descendants_post: 3, ancestors_up: 4 };

/**
 * Options of {@link attachIter}: what the iterator walks: one map's elements (Linux 5.9), one
 * thread or process (6.1), one cgroup in an order (6.1).
 */
export interface IterOptions {
  /** Iterators over one map's elements (bpf_map_elem, bpf_sk_storage_map, sockmap): the map. */
  map?: { fd: number };
  /** Task iterators (task, task_file, task_vma; 6.1+): one thread, one process, or the process of a pidfd. */
  task?: { tid?: number; pid?: number; pidFd?: number };
  /** cgroup iterators (6.1+): where the walk starts (a cgroup v2 directory, an fd or an id) and its order. */
  cgroup?: { path?: string; fd?: number; id?: bigint; order?: CgroupIterOrder };
}



function iterInfo(options: IterOptions, opened: number[]): Uint8Array | null {
  const given = (['map', 'task', 'cgroup'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 1) throw new InvalidArgumentError(`attachIter: give one of map, task or cgroup, not ${given.join(' and ')}`);
  if (given.length === 0) return null;
  const I = bpf_iter_link_info;
  const info = new Uint8Array(I.$size);
  const v = new DataView(info.buffer);
  if (options.map) {
    v.setUint32(I.map.map_fd, options.map.fd, true);
  } else if (options.task) {
    const { tid = 0, pid = 0, pidFd = 0 } = options.task;
    const set = [tid, pid, pidFd].filter((n) => n !== 0).length;
    if (set !== 1) throw new InvalidArgumentError('attachIter: a task iterator takes one of tid, pid or pidFd');
    for (const n of [tid, pid, pidFd]) if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`attachIter: bad task id ${n}`);
    v.setUint32(I.task.tid, tid, true);
    v.setUint32(I.task.pid, pid, true);
    v.setUint32(I.task.pid_fd, pidFd, true);
  } else if (options.cgroup) {
    const c = options.cgroup;
    if ([c.path, c.fd, c.id].filter((x) => x !== undefined).length > 1) {
      throw new InvalidArgumentError('attachIter: a cgroup iterator starts from one of path, fd or id');
    }
    let fd = c.fd ?? 0;
    if (c.path !== undefined) {
      fd = openSync(c.path, 'r');
      opened.push(fd);
    }
    const order = c.order ? CGROUP_ORDER[c.order] : 0;
    if (order === undefined) throw new InvalidArgumentError(`attachIter: unknown cgroup order "${c.order}"; use ${Object.keys(CGROUP_ORDER).join(', ')}`);
    v.setUint32(I.cgroup.order, order, true);
    v.setUint32(I.cgroup.cgroup_fd, fd, true);
    v.setBigUint64(I.cgroup.cgroup_id, c.id ?? 0n, true);
  }
  return info;
}

function target(prog: Program): string {
  const section = prog.sectionName ?? '';
  return prog.attachTarget || (section.startsWith('iter/') || section.startsWith('iter.s/') ? section.slice(section.indexOf('/') + 1) : '');
}

/** A BPF iterator's bpf_link: open() runs the iterator and streams what it writes. */
export class IterLink extends FdLink {
  override readonly kind = 'iter';
  /** What the program iterates over, e.g. "task" or "bpf_map_elem" (when known). */
  readonly target: string;

  constructor(fd: FD, target: string) {
    super(fd, 'iter');
    this.target = target;
  }

  /** BPF_ITER_CREATE: a new, owned fd; each read() returns the next piece of the iterator's output. */
  openFd(): FD {
    const r = bpfRaw('ITER_CREATE', iterCreateAttr(this.fd));
    if (r < 0) {
      throw new BpfSyscallError(r, 'bpf(BPF_ITER_CREATE)', `open ${this.target || 'BPF'} iterator`,
        -r === EPERM ? 'creating iterators needs CAP_BPF (or CAP_SYS_ADMIN): run as root' : undefined);
    }
    return new FD(r, `${this.target || 'BPF'} iterator`);
  }

  /**
   * Runs the iterator once: a stream of its output (Buffers; an async iterable). The stream owns
   * its fd and closes it at the end, on error, or on destroy().
   */
  open(options: { highWaterMark?: number } = {}): ReadStream {
    const r = bpfRaw('ITER_CREATE', iterCreateAttr(this.fd));
    if (r < 0) throw new BpfSyscallError(r, 'bpf(BPF_ITER_CREATE)', `open ${this.target || 'BPF'} iterator`);
    // The fd is not seekable: without a start position fs reads it with plain read(2).
    return createReadStream('', { fd: r, autoClose: true, ...(options.highWaterMark ? { highWaterMark: options.highWaterMark } : {}) });
  }

  /** Runs the iterator once and returns all of its output. */
  async readAll(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.open()) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** As readAll(), blocking the thread while the iterator runs. */
  readAllSync(): Buffer {
    const fd = this.openFd();
    try {
      return readFdToEnd(fd.value);
    } finally {
      fd.close();
    }
  }
}

function iterCreateAttr(linkFd: number): Attr {
  const L = bpf_attr.iter_create;
  return new Attr(L.$size).u32(L.link_fd, linkFd);
}

function readFdToEnd(fd: number): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

/**
 * Attaches an iterator program (`SEC("iter/<target>")`). Map element iterators need `{ map }`;
 * task and cgroup iterators may be narrowed with `{ task }` / `{ cgroup }`.
 *
 * Requires Linux 5.8 (BPF iterators); map element iterators 5.9, cgroup iterators and narrowed
 * task iterators 6.1.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) when the program is not an
 *   iterator or the options do not fit its target (a map iterator without `map`, ...).
 * @throws {@link BpfSyscallError} (`code` is the errno name) when BPF_LINK_CREATE fails.
 */
export function attachIter(prog: Program, options: IterOptions = {}): IterLink {
  requireProgramType(prog, ['tracing'], 'attachIter');
  if (prog.attachType !== undefined && prog.attachType !== 'trace_iter') {
    throw new InvalidArgumentError(`attachIter: ${prog.name || 'the program'} was loaded with attach type ${prog.attachType}, not trace_iter (an iter/<target> section)`);
  }
  const what = target(prog);
  const opened: number[] = [];
  try {
    const info = iterInfo(options, opened);
    const L = bpf_attr.link_create;
    const attr = new Attr(offsetofend(L, 'iter_info_len'))
      .u32(L.prog_fd, prog.fd)
      .u32(L.attach_type, attachTypeNames.number('trace_iter'));
    if (info) attr.ptr(L.iter_info, info).u32(L.iter_info_len, info.byteLength);
    const r = bpfRaw('LINK_CREATE', attr);
    if (r < 0) throw iterAttachError(-r, prog, what, options);
    return new IterLink(new FD(r, `${what || 'BPF'} iterator link`), what);
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}

function iterAttachError(errno: number, prog: Program, what: string, options: IterOptions): Error {
  const name = `attach ${prog.name || 'program'} (iter/${what || '?'})`;
  if ((errno === EPERM && process.geteuid?.() === 0) || errno === EOPNOTSUPP || errno === ENOTSUPP) {
    return new NotSupportedError(`BPF iterators (iter/${what || '?'})`, `the kernel refused to attach ${prog.name || 'the program'} (${errno === EPERM ? 'EPERM' : 'not supported'})`, '5.8');
  }
  const hint =
    errno === EPERM ? 'attaching iterators needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): run as root' :
    errno === EINVAL ? (options.map || options.task || options.cgroup
      ? `this iterator does not take the ${options.map ? 'map' : options.task ? 'task' : 'cgroup'} option, or the kernel is too old for it`
      : 'the iterator may need options: map element iterators need { map }') :
    errno === EACCES ? 'the program reads more of each key or value than the map has' :
    errno === EBADF ? (options.map ? 'the map fd is not open' : 'map element iterators need { map }') :
    errno === ENOENT ? 'the map, task or cgroup given does not exist' : undefined;
  return new BpfSyscallError(-errno, 'bpf(BPF_LINK_CREATE)', name, hint);
}

/** Runs an iterator once: the stream of its output (see IterLink.open). */
export function readIterator(link: IterLink): ReadStream {
  return link.open();
}

/** Reads a pinned iterator (its bpffs file runs it, like `cat`), returning all of its output. */
export function readPinnedIterator(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    return readFdToEnd(fd);
  } finally {
    closeSync(fd);
  }
}
