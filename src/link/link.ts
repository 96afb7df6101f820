/**
 * Links: what attaching a program returns. Closing a link detaches the program (unless the link
 * is pinned in bpffs, which keeps a bpf_link alive until it is unpinned).
 *
 * Three shapes:
 *  - FdLink: a kernel bpf_link (BPF_LINK_CREATE, BPF_RAW_TRACEPOINT_OPEN). It can be pinned,
 *    reopened with Link.fromPinned / Link.fromId, updated to another program, and reports
 *    struct bpf_link_info.
 *  - PerfEventLink: a perf event (tracepoint, kprobe, uprobe, software event) with the program
 *    attached through a bpf_link of attach type perf_event when the kernel has them (5.15+), or
 *    through PERF_EVENT_IOC_SET_BPF otherwise.
 *  - DetachLink: an attachment without a kernel object (netlink XDP or cls_bpf, BPF_PROG_ATTACH,
 *    SO_ATTACH_BPF): close() undoes it. It cannot be pinned.
 * LinkSet groups links made together (a perf event per CPU).
 */
import { EEXIST, EINVAL, ENOTSUPP, EOPNOTSUPP, EPERM } from '../abi/errno.js';
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { detachAtExit, forget } from './cleanup.js';
import { BpfSyscallError, InvalidArgumentError, NotSupportedError } from '../errors.js';
import type { Program } from '../objects/program.js';
import { readProgramInfo } from '../objects/program-info.js';
import { PinnableFd, Pinning } from '../objects/pinning.js';
import { getFdById, objGet } from '../sys/bpf.js';
import type { ProgType } from '../abi/constants.js';
import { FD } from '../sys/fd.js';
import { native } from '../sys/native.js';
import { PERF_EVENT_IOC_DISABLE, perfEventEnable, perfEventSetBpf } from '../sys/perf-event.js';
import { linkCreateRaw, linkDetachRaw, linkUpdate, perfEventKindOf, readLinkInfo, type RawLinkInfo } from '../sys/link.js';

/** What the kernel says about a link (struct bpf_link_info), or what bpfkit knows of an attachment without one. */
export type LinkInfo = Readonly<RawLinkInfo>;

export interface Link extends Disposable {
  /** The bpf_link fd; undefined for attachments that have none (netlink, BPF_PROG_ATTACH, SO_ATTACH_BPF, perf ioctl). */
  readonly fd: number | undefined;
  /** How the program is attached, e.g. 'xdp', 'tcx', 'tc-netlink', 'xdp-netlink', 'perf_event', 'socket-filter'. */
  readonly kind: string;
  readonly closed: boolean;
  readonly pinnedPath: string | undefined;
  /** Detaches (a pinned bpf_link stays attached until unpinned) and releases the fds. Idempotent. */
  close(): void;
  /** Pins the bpf_link in bpffs; NotSupportedError for attachments without one. */
  pin(path: string): void;
  /** Removes the pin made by pin() (or the one the link was opened from). */
  unpin(): void;
  info(): LinkInfo;
}

/** The kind name for a link opened from bpffs or by id. */
function kindOf(info: RawLinkInfo): string {
  return info.type.startsWith('unknown') ? 'link' : info.type;
}

/** A kernel bpf_link. */
export class FdLink extends PinnableFd implements Link {
  readonly kind: string;
  readonly #fd: FD;

  constructor(fd: FD, kind: string, pinnedAt?: string) {
    super(fd, pinnedAt);
    this.#fd = fd;
    this.kind = kind;
  }

  info(): LinkInfo {
    return readLinkInfo(this.#fd.value);
  }

  /** Replaces the attached program without a gap (BPF_LINK_UPDATE); `old` makes it conditional. */
  update(prog: Program, old?: Program): void {
    linkUpdate(this.#fd.value, prog.fd, old?.fd);
  }

  /**
   * Detaches the program now, even when the link is pinned or shared (BPF_LINK_DETACH, 5.9+). The
   * fd stays open, pointing at a defunct link, until close().
   */
  detach(): void {
    const r = linkDetachRaw(this.#fd.value);
    if (r === -EINVAL || r === -EOPNOTSUPP || r === -ENOTSUPP) {
      throw new NotSupportedError(`detaching a ${this.kind} link with BPF_LINK_DETACH`, 'the kernel or this link type does not support it', '5.9');
    }
    if (r < 0) throw new BpfSyscallError(r, 'bpf(BPF_LINK_DETACH)', `detach ${this.kind} link`);
  }
}

/** A perf event with a program attached: via a bpf_link (pinnable) or via PERF_EVENT_IOC_SET_BPF. */
export class PerfEventLink implements Link {
  readonly kind: string;
  readonly #perf: FD;
  readonly #link: FD | undefined;
  readonly #progId: number;
  readonly #cleanup: (() => void) | undefined;
  readonly #pinning = new Pinning();
  #closed = false;

  /** Takes ownership of both fds; `cleanup` runs after they are closed (e.g. removing a tracefs probe). */
  constructor(perf: FD, link: FD | undefined, kind: string, progId: number, cleanup?: () => void) {
    this.#perf = perf;
    this.#link = link;
    this.kind = kind;
    this.#progId = progId;
    this.#cleanup = cleanup;
  }

  /** The bpf_link fd, when the kernel made one. */
  get fd(): number | undefined {
    return this.#link?.value;
  }

  /** The perf event fd. */
  get perfEventFd(): number {
    return this.#perf.value;
  }

  /** True when the program is attached through a bpf_link (it can then be pinned). */
  get hasBpfLink(): boolean {
    return this.#link !== undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get pinnedPath(): string | undefined {
    return this.#pinning.path;
  }

  pin(path: string): void {
    if (!this.#link) {
      throw new NotSupportedError('pinning a perf event attachment',
        'the program was attached with PERF_EVENT_IOC_SET_BPF because the kernel has no perf_event bpf_links', '5.15');
    }
    this.#pinning.pin(this.#link.value, path);
  }

  unpin(): void {
    this.#pinning.unpin();
  }

  info(): LinkInfo {
    if (!this.#link) return { type: 'unspec', id: 0, progId: this.#progId };
    const info = readLinkInfo(this.#link.value);
    // Kernels before 6.6 have no perf_event member in bpf_link_info (it reads as zero, 'unspec'):
    // the kind is then the one this link was attached as.
    if (info.type === 'perf_event' && (info.perfEvent ?? 'unspec') === 'unspec') info.perfEvent = perfEventKindOf(this.kind);
    return info;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#link) {
        this.#link.close();
      } else if (!this.#perf.closed) {
        native().ioctl(this.#perf.value, PERF_EVENT_IOC_DISABLE, 0);
      }
    } finally {
      this.#perf.close();
      if (this.#cleanup && !this.#pinning.path) this.#cleanup();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** An attachment without a kernel link object: close() runs the detach step. */
export class DetachLink implements Link {
  readonly kind: string;
  readonly #info: LinkInfo;
  #detach: (() => void) | undefined;

  /**
   * `outlivesProcess`: the attachment stays in the kernel after the process exits (netlink, prog
   * attach), so it is also removed at process exit if still open (see cleanup.ts).
   */
  constructor(kind: string, info: LinkInfo, detach: () => void, options: { outlivesProcess?: boolean } = {}) {
    this.kind = kind;
    this.#info = info;
    this.#detach = detach;
    if (options.outlivesProcess) detachAtExit(this);
  }

  get fd(): undefined {
    return undefined;
  }

  get closed(): boolean {
    return this.#detach === undefined;
  }

  get pinnedPath(): undefined {
    return undefined;
  }

  pin(_path: string): void {
    throw new NotSupportedError(`pinning a ${this.kind} attachment`,
      'only bpf_link attachments can be pinned, and this one was made without a bpf_link');
  }

  unpin(): void {
    /* never pinned */
  }

  info(): LinkInfo {
    return this.#info;
  }

  close(): void {
    const d = this.#detach;
    if (!d) return;
    this.#detach = undefined;
    forget(this);
    d();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Several links made together (e.g. one perf event per CPU); closing closes them all. */
export class LinkSet implements Link {
  readonly kind: string;
  readonly links: readonly Link[];
  #pinnedAt: string | undefined;

  constructor(kind: string, links: readonly Link[]) {
    this.kind = kind;
    this.links = links;
  }

  get fd(): undefined {
    return undefined;
  }

  get closed(): boolean {
    return this.links.every((l) => l.closed);
  }

  get pinnedPath(): string | undefined {
    return this.#pinnedAt;
  }

  /** Pins each link as `<path>/<index>` in a new bpffs directory. */
  pin(path: string): void {
    mkdirSync(path);
    const done: Link[] = [];
    try {
      this.links.forEach((l, i) => {
        l.pin(join(path, String(i)));
        done.push(l);
      });
    } catch (e) {
      for (const l of done) l.unpin();
      rmdirSync(path);
      throw e;
    }
    this.#pinnedAt = path;
  }

  unpin(): void {
    if (!this.#pinnedAt) return;
    for (const l of this.links) l.unpin();
    try { rmdirSync(this.#pinnedAt); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
    this.#pinnedAt = undefined;
  }

  /** The info of the first link. */
  info(): LinkInfo {
    const first = this.links[0];
    if (!first) throw new InvalidArgumentError('the link set is empty');
    return first.info();
  }

  close(): void {
    let error: unknown;
    for (const l of this.links) {
      try { l.close(); } catch (e) { error ??= e; }
    }
    if (error) throw error;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Opening existing bpf_links. */
export const Link = {
  /** Opens a bpf_link pinned in bpffs; unpin() on it removes that pin. */
  fromPinned(path: string): FdLink {
    const fd = objGet(path);
    try {
      return new FdLink(fd, kindOf(readLinkInfo(fd.value)), path);
    } catch (e) {
      fd.close();
      throw e;
    }
  },

  /** Opens a bpf_link by its kernel id. */
  fromId(id: number): FdLink {
    const fd = getFdById('LINK', id);
    try {
      return new FdLink(fd, kindOf(readLinkInfo(fd.value)));
    } catch (e) {
      fd.close();
      throw e;
    }
  },
};

/** The kernel id of a program (for attachments that must find it again to detach). */
export function programId(prog: Program): number {
  return readProgramInfo(prog.fd).id;
}

/** Throws InvalidArgumentError unless the program has one of the given types. */
export function requireProgramType(prog: Program, types: readonly ProgType[], what: string): void {
  if (!types.includes(prog.type)) {
    const section = prog.sectionName ? ` (section ${prog.sectionName})` : '';
    throw new InvalidArgumentError(`${what} needs a ${types.join(' or ')} program; ${prog.name || 'the program'}${section} is ${prog.type}`);
  }
}

/**
 * How a program is attached to a perf event ({@link PerfEventLink}): a BPF cookie (Linux 5.15),
 * the older ioctl path, and a cleanup to run on close.
 */
export interface PerfAttachOptions {
  /** bpf_cookie the program reads with bpf_get_attach_cookie() (needs perf_event bpf_links, 5.15+). */
  cookie?: bigint;
  /** Use PERF_EVENT_IOC_SET_BPF even when the kernel has perf_event bpf_links. */
  forceIoctl?: boolean;
  /** Runs after the perf event is closed (also when attaching fails). */
  cleanup?: () => void;
}

/**
 * Attaches a program to an open perf event: a bpf_link of attach type perf_event when the kernel
 * has them, otherwise PERF_EVENT_IOC_SET_BPF; then PERF_EVENT_IOC_ENABLE. Takes ownership of `perf`
 * (closed on failure too).
 */
export function attachPerfEventFd(prog: Program, perf: FD, kind: string, options: PerfAttachOptions = {}): PerfEventLink {
  let link: FD | undefined;
  try {
    const progId = programId(prog);
    if (!options.forceIoctl) {
      const r = linkCreateRaw({ progFd: prog.fd, target: perf.value, attachType: 'perf_event', perfEventCookie: options.cookie });
      if (r >= 0) {
        link = new FD(r, `${kind} link`);
      } else if (-r !== EINVAL) {
        // EINVAL is what kernels before 5.15 answer for the perf_event attach type: fall back below.
        throw new BpfSyscallError(r, 'bpf(BPF_LINK_CREATE)', `attach ${prog.name || 'program'} to ${kind}`,
          -r === EEXIST ? 'a program is already attached to this perf event' :
          -r === EPERM ? 'attaching needs CAP_BPF and CAP_PERFMON (run as root)' : undefined);
      }
    }
    if (!link) {
      if (options.cookie !== undefined) {
        throw new NotSupportedError('bpf_cookie on perf event attachments', 'the kernel has no perf_event bpf_links', '5.15');
      }
      perfEventSetBpf(perf.value, prog.fd, `attach ${prog.name || 'program'} to ${kind}`);
    }
    perfEventEnable(perf.value, `enable ${kind}`);
    return new PerfEventLink(perf, link, kind, progId, options.cleanup);
  } catch (e) {
    link?.close();
    perf.close();
    try { options.cleanup?.(); } catch { /* keep the first error */ }
    throw e;
  }
}

