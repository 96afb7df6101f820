/**
 * Attribute layouts of the bpf() commands that attach programs: BPF_LINK_CREATE, BPF_LINK_UPDATE,
 * BPF_LINK_DETACH, BPF_RAW_TRACEPOINT_OPEN, BPF_PROG_ATTACH / BPF_PROG_DETACH, and the
 * `struct bpf_link_info` that BPF_OBJ_GET_INFO_BY_FD fills for a link. Offsets follow
 * `union bpf_attr` and `struct bpf_link_info` in uapi linux/bpf.h.
 */
import { BpfSyscallError } from '../errors.js';
import { Attr, cstr } from '../sys/attr.js';
import { bpfCall, bpfRaw, objGetInfoByFd } from '../sys/bpf.js';
import { attachType as attachTypeNames, linkType as linkTypeNames, type AttachType, type LinkType } from '../sys/constants.js';

export interface LinkCreateArgs {
  progFd: number;
  /** target_fd or target_ifindex (0 for perf-event-less kinds that take none). */
  target: number;
  attachType: AttachType;
  flags?: number;
  /** perf_event.bpf_cookie (attach type perf_event). */
  perfEventCookie?: bigint;
  /** tcx / netkit: relative_fd or relative_id, and expected_revision. */
  relative?: number;
  expectedRevision?: bigint;
  /** target_btf_id (freplace, and tracing links on newer kernels). */
  targetBtfId?: number;
  /** link_create.kprobe_multi (5.18+): the functions by name or by address, one cookie per function. */
  kprobeMulti?: { flags: number; symbols?: readonly string[]; addresses?: readonly bigint[]; cookies?: readonly bigint[] };
  /** link_create.uprobe_multi (6.6+): one binary, file offsets, optional semaphores and cookies. */
  uprobeMulti?: { path: string; offsets: readonly bigint[]; refCtrOffsets?: readonly bigint[]; cookies?: readonly bigint[]; flags: number; pid?: number };
}

/** link_create.kprobe_multi.flags and link_create.uprobe_multi.flags: attach at function return. */
export const BPF_F_KPROBE_MULTI_RETURN = 1;
export const BPF_F_UPROBE_MULTI_RETURN = 1;

/** An array of u64 in host order, as the kernel reads `__aligned_u64 *` arrays. */
function u64Array(values: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, x), true));
  return out;
}

/** Size of the link_create part of union bpf_attr we fill (up to the uprobe_multi members). */
const LINK_CREATE_SIZE = 64;

/** BPF_LINK_CREATE: a link fd, or a negative errno. */
export function linkCreateRaw(a: LinkCreateArgs): number {
  const attr = new Attr(LINK_CREATE_SIZE)
    .u32(0, a.progFd)
    .u32(4, a.target)
    .u32(8, attachTypeNames.number(a.attachType))
    .u32(12, a.flags ?? 0);
  if (a.perfEventCookie !== undefined) attr.u64(16, a.perfEventCookie);
  if (a.relative !== undefined) attr.u32(16, a.relative);
  if (a.expectedRevision !== undefined) attr.u64(24, a.expectedRevision);
  if (a.targetBtfId !== undefined) attr.u32(16, a.targetBtfId);
  const k = a.kprobeMulti;
  if (k) {
    // kprobe_multi: flags@16 cnt@20 syms@24 addrs@32 cookies@40.
    const cnt = k.symbols?.length ?? k.addresses?.length ?? 0;
    attr.u32(16, k.flags).u32(20, cnt);
    if (k.symbols) {
      // syms points at an array of pointers to C strings, each patched by the addon.
      const table = new Attr(cnt * 8);
      k.symbols.forEach((name, i) => table.ptr(i * 8, cstr(name)));
      attr.ptrTo(24, table);
    }
    if (k.addresses) attr.ptr(32, u64Array(k.addresses));
    if (k.cookies) attr.ptr(40, u64Array(k.cookies));
  }
  const u = a.uprobeMulti;
  if (u) {
    // uprobe_multi: path@16 offsets@24 ref_ctr_offsets@32 cookies@40 cnt@48 flags@52 pid@56.
    attr.ptr(16, cstr(u.path)).ptr(24, u64Array(u.offsets));
    if (u.refCtrOffsets) attr.ptr(32, u64Array(u.refCtrOffsets));
    if (u.cookies) attr.ptr(40, u64Array(u.cookies));
    attr.u32(48, u.offsets.length).u32(52, u.flags).u32(56, u.pid ?? 0);
  }
  return bpfRaw('LINK_CREATE', attr);
}

/** BPF_LINK_UPDATE: swap the program of a link (old_prog_fd given: only if it is still that one). */
export function linkUpdate(linkFd: number, newProgFd: number, oldProgFd?: number): void {
  const BPF_F_REPLACE = 1 << 2;
  const attr = new Attr(16).u32(0, linkFd).u32(4, newProgFd);
  if (oldProgFd !== undefined) attr.u32(8, BPF_F_REPLACE).u32(12, oldProgFd);
  bpfCall('LINK_UPDATE', attr, 'update link', (e) =>
    e === 1 ? 'the link holds another program than the one given as old, or the link is pinned read-only' :
    e === 22 ? 'the new program does not have the type and attach type of the link' :
    e === 95 || e === 524 ? 'this kind of link cannot swap programs' : undefined);
}

/** BPF_LINK_DETACH: detach the program while keeping the link fd (5.9+). Negative errno on failure. */
export function linkDetachRaw(linkFd: number): number {
  return bpfRaw('LINK_DETACH', new Attr(4).u32(0, linkFd));
}

/**
 * BPF_RAW_TRACEPOINT_OPEN: name null for BTF-typed programs (tp_btf, fentry, fexit, fmod_ret,
 * lsm), whose target was fixed at load. A link fd, or a negative errno.
 */
export function rawTracepointOpenRaw(name: string | null, progFd: number, cookie?: bigint): number {
  const attr = new Attr(cookie !== undefined ? 24 : 16).ptr(0, name === null ? null : cstr(name)).u32(8, progFd);
  if (cookie !== undefined) attr.u64(16, cookie);
  return bpfRaw('RAW_TRACEPOINT_OPEN', attr);
}

export interface ProgAttachArgs {
  targetFd: number;
  progFd: number;
  attachType: AttachType;
  flags?: number;
  replaceFd?: number;
}

/** BPF_PROG_ATTACH: 0, or a negative errno. */
export function progAttachRaw(a: ProgAttachArgs): number {
  const attr = new Attr(20)
    .u32(0, a.targetFd).u32(4, a.progFd).u32(8, attachTypeNames.number(a.attachType))
    .u32(12, a.flags ?? 0).u32(16, a.replaceFd ?? 0);
  return bpfRaw('PROG_ATTACH', attr);
}

/** BPF_PROG_DETACH: 0, or a negative errno. */
export function progDetachRaw(targetFd: number, progFd: number, attachType: AttachType): number {
  const attr = new Attr(20).u32(0, targetFd).u32(4, progFd).u32(8, attachTypeNames.number(attachType));
  return bpfRaw('PROG_DETACH', attr);
}

/** Flags of BPF_PROG_ATTACH. */
export const BPF_F_ALLOW_OVERRIDE = 1 << 0;
export const BPF_F_ALLOW_MULTI = 1 << 1;
export const BPF_F_REPLACE = 1 << 2;

/** enum bpf_perf_event_type, for perf_event link info. */
const PERF_EVENT_KINDS = ['unspec', 'uprobe', 'uretprobe', 'kprobe', 'kretprobe', 'tracepoint', 'event'] as const;
export type PerfEventKind = (typeof PERF_EVENT_KINDS)[number];

/** The bpf_perf_event_type of a perf event attachment of bpfkit's kind `kind` ('perf_event' is a plain event). */
export function perfEventKindOf(kind: string): PerfEventKind {
  if (kind === 'perf_event') return 'event';
  return (PERF_EVENT_KINDS as readonly string[]).includes(kind) ? kind as PerfEventKind : 'unspec';
}

/** What BPF_OBJ_GET_INFO_BY_FD reports for a bpf_link, with the members of its type's union. */
export interface RawLinkInfo {
  type: LinkType | `unknown(${number})`;
  id: number;
  progId: number;
  attachType?: AttachType | `unknown(${number})`;
  ifindex?: number;
  cgroupId?: bigint;
  tracepoint?: string;
  perfEvent?: PerfEventKind | `unknown(${number})`;
  netnsIno?: number;
  targetObjId?: number;
  targetBtfId?: number;
  /** kprobe_multi links (6.6+): the functions' addresses (0 where kallsyms hides them), return probe or not. */
  kprobeMulti?: { count: number; retprobe: boolean; addresses: readonly bigint[]; missed?: bigint; cookies?: readonly bigint[] };
  /** uprobe_multi links (6.8+): the binary, its file offsets and cookies, return probe or not, pid filter. */
  uprobeMulti?: { path: string; count: number; retprobe: boolean; offsets: readonly bigint[]; cookies: readonly bigint[]; pid: number };
}

/** Room for struct bpf_link_info of current kernels (the largest union member is under 64 bytes). */
const LINK_INFO_SIZE = 96;

/** Reads struct bpf_link_info of a link fd. */
export function readLinkInfo(fd: number): RawLinkInfo {
  const first = new Uint8Array(LINK_INFO_SIZE);
  objGetInfoByFd(fd, first);
  const v = new DataView(first.buffer);
  const typeNum = v.getUint32(0, true);
  const type = linkTypeNames.name(typeNum);
  const out: RawLinkInfo = { type, id: v.getUint32(4, true), progId: v.getUint32(8, true) };
  switch (type) {
    case 'raw_tracepoint': {
      // A second call with a buffer for the name (tp_name at 16, tp_name_len at 24).
      const name = new Uint8Array(256);
      const attr = new Attr(LINK_INFO_SIZE).ptr(16, name).u32(24, name.byteLength);
      try {
        objGetInfoByFd(fd, attr);
        const end = name.indexOf(0);
        out.tracepoint = new TextDecoder().decode(name.subarray(0, end < 0 ? name.length : end));
      } catch {
        /* the name is a nicety; leave it out */
      }
      break;
    }
    case 'tracing':
      out.attachType = attachTypeNames.name(v.getUint32(16, true));
      out.targetObjId = v.getUint32(20, true);
      out.targetBtfId = v.getUint32(24, true);
      break;
    case 'cgroup':
      out.cgroupId = v.getBigUint64(16, true);
      out.attachType = attachTypeNames.name(v.getUint32(24, true));
      break;
    case 'netns':
      out.netnsIno = v.getUint32(16, true);
      out.attachType = attachTypeNames.name(v.getUint32(20, true));
      break;
    case 'xdp':
      out.ifindex = v.getUint32(16, true);
      break;
    case 'tcx':
    case 'netkit':
      out.ifindex = v.getUint32(16, true);
      out.attachType = attachTypeNames.name(v.getUint32(20, true));
      break;
    case 'kprobe_multi':
      readKprobeMultiInfo(fd, v, out);
      break;
    case 'uprobe_multi':
      readUprobeMultiInfo(fd, v, out);
      break;
    case 'perf_event': {
      const k = v.getUint32(16, true);
      out.perfEvent = PERF_EVENT_KINDS[k] ?? `unknown(${k})`;
      break;
    }
    default:
      break;
  }
  return out;
}

function u64s(buf: Uint8Array, n: number): bigint[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return Array.from({ length: n }, (_, i) => v.getBigUint64(i * 8, true));
}

/**
 * kprobe_multi member: addrs@16 count@24 flags@28 missed@32 (6.7+) cookies@40 (6.9+). A first call
 * gives the count (0 on kernels before 6.6, which do not fill it), a second the arrays.
 */
function readKprobeMultiInfo(fd: number, first: DataView, out: RawLinkInfo): void {
  const count = first.getUint32(24, true);
  const flags = first.getUint32(28, true);
  const info: NonNullable<RawLinkInfo['kprobeMulti']> = { count, retprobe: (flags & BPF_F_KPROBE_MULTI_RETURN) !== 0, addresses: [] };
  if (count > 0) {
    const addrs = new Uint8Array(count * 8);
    const cookies = new Uint8Array(count * 8);
    const attr = new Attr(LINK_INFO_SIZE).ptr(16, addrs).u32(24, count).ptr(40, cookies);
    try {
      objGetInfoByFd(fd, attr);
      info.addresses = u64s(addrs, count);
      info.missed = attr.view.getBigUint64(32, true);
      info.cookies = u64s(cookies, count);
    } catch {
      /* the arrays are a nicety; keep the count */
    }
  }
  out.kprobeMulti = info;
}

/** uprobe_multi member: path@16 offsets@24 ref_ctr_offsets@32 cookies@40 path_size@48 count@52 flags@56 pid@60. */
function readUprobeMultiInfo(fd: number, first: DataView, out: RawLinkInfo): void {
  const count = first.getUint32(52, true);
  const flags = first.getUint32(56, true);
  const info: NonNullable<RawLinkInfo['uprobeMulti']> = {
    path: '', count, retprobe: (flags & BPF_F_UPROBE_MULTI_RETURN) !== 0, offsets: [], cookies: [], pid: first.getUint32(60, true),
  };
  if (count > 0) {
    const path = new Uint8Array(4096);
    const offsets = new Uint8Array(count * 8);
    const cookies = new Uint8Array(count * 8);
    const attr = new Attr(LINK_INFO_SIZE).ptr(16, path).ptr(24, offsets).ptr(40, cookies).u32(48, path.byteLength).u32(52, count);
    try {
      objGetInfoByFd(fd, attr);
      const end = path.indexOf(0);
      info.path = new TextDecoder().decode(path.subarray(0, end < 0 ? path.length : end));
      info.offsets = u64s(offsets, count);
      info.cookies = u64s(cookies, count);
    } catch {
      /* keep what the first call gave */
    }
  }
  out.uprobeMulti = info;
}

/** Throws the failure of a raw call as BpfSyscallError. */
export function check(r: number, cmd: string, what: string, hint?: (errno: number) => string | undefined): number {
  if (r < 0) throw new BpfSyscallError(r, cmd, what, hint?.(-r));
  return r;
}
