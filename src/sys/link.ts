/**
 * Attribute layouts of the bpf() commands that attach programs: BPF_LINK_CREATE, BPF_LINK_UPDATE,
 * BPF_LINK_DETACH, BPF_RAW_TRACEPOINT_OPEN, BPF_PROG_ATTACH / BPF_PROG_DETACH, and the
 * `struct bpf_link_info` that BPF_OBJ_GET_INFO_BY_FD fills for a link. Offsets come from the
 * generated uapi layouts (src/sys/uapi.ts).
 */
import { BpfSyscallError } from '../errors.js';
import { offsetofend } from '../abi/layout.js';
import { cstr, cString } from '../abi/cstring.js';
import { Attr } from './attr.js';
import { bpfCall, bpfRaw, objGetInfoByFd } from './bpf.js';
import { attachType as attachTypeNames, linkType as linkTypeNames, type AttachType, type LinkType } from '../abi/constants.js';
import { bpf_attr, bpf_link_info } from '../abi/uapi.js';

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

/** BPF_LINK_CREATE: a link fd, or a negative errno. */
export function linkCreateRaw(a: LinkCreateArgs): number {
  const L = bpf_attr.link_create;
  // Up to the uprobe_multi members, the largest of the per-kind union.
  const attr = new Attr(offsetofend(L.uprobe_multi, 'pid'))
    .u32(L.prog_fd, a.progFd)
    .u32(L.target_fd, a.target)
    .u32(L.attach_type, attachTypeNames.number(a.attachType))
    .u32(L.flags, a.flags ?? 0);
  if (a.perfEventCookie !== undefined) attr.u64(L.perf_event.bpf_cookie, a.perfEventCookie);
  if (a.relative !== undefined) attr.u32(L.tcx.relative_fd, a.relative);
  if (a.expectedRevision !== undefined) attr.u64(L.tcx.expected_revision, a.expectedRevision);
  if (a.targetBtfId !== undefined) attr.u32(L.target_btf_id, a.targetBtfId);
  const k = a.kprobeMulti;
  if (k) {
    const K = L.kprobe_multi;
    const cnt = k.symbols?.length ?? k.addresses?.length ?? 0;
    attr.u32(K.flags, k.flags).u32(K.cnt, cnt);
    if (k.symbols) {
      // syms points at an array of pointers to C strings, each patched by the addon.
      const table = new Attr(cnt * 8);
      k.symbols.forEach((name, i) => table.ptr(i * 8, cstr(name)));
      attr.ptrTo(K.syms, table);
    }
    if (k.addresses) attr.ptr(K.addrs, u64Array(k.addresses));
    if (k.cookies) attr.ptr(K.cookies, u64Array(k.cookies));
  }
  const u = a.uprobeMulti;
  if (u) {
    const U = L.uprobe_multi;
    attr.ptr(U.path, cstr(u.path)).ptr(U.offsets, u64Array(u.offsets));
    if (u.refCtrOffsets) attr.ptr(U.ref_ctr_offsets, u64Array(u.refCtrOffsets));
    if (u.cookies) attr.ptr(U.cookies, u64Array(u.cookies));
    attr.u32(U.cnt, u.offsets.length).u32(U.flags, u.flags).u32(U.pid, u.pid ?? 0);
  }
  return bpfRaw('LINK_CREATE', attr);
}

/** BPF_LINK_UPDATE: swap the program of a link (old_prog_fd given: only if it is still that one). */
export function linkUpdate(linkFd: number, newProgFd: number, oldProgFd?: number): void {
  const BPF_F_REPLACE = 1 << 2;
  const L = bpf_attr.link_update;
  const attr = new Attr(L.$size).u32(L.link_fd, linkFd).u32(L.new_prog_fd, newProgFd);
  if (oldProgFd !== undefined) attr.u32(L.flags, BPF_F_REPLACE).u32(L.old_prog_fd, oldProgFd);
  bpfCall('LINK_UPDATE', attr, 'update link', (e) =>
    e === 1 ? 'the link holds another program than the one given as old, or the link is pinned read-only' :
    e === 22 ? 'the new program does not have the type and attach type of the link' :
    e === 95 || e === 524 ? 'this kind of link cannot swap programs' : undefined);
}

/** BPF_LINK_DETACH: detach the program while keeping the link fd (5.9+). Negative errno on failure. */
export function linkDetachRaw(linkFd: number): number {
  return bpfRaw('LINK_DETACH', new Attr(bpf_attr.link_detach.$size).u32(bpf_attr.link_detach.link_fd, linkFd));
}

/**
 * BPF_RAW_TRACEPOINT_OPEN: name null for BTF-typed programs (tp_btf, fentry, fexit, fmod_ret,
 * lsm), whose target was fixed at load. A link fd, or a negative errno.
 */
export function rawTracepointOpenRaw(name: string | null, progFd: number, cookie?: bigint): number {
  // The cookie only where one is given: kernels before 6.10 refuse the longer attr.
  const L = bpf_attr.raw_tracepoint;
  const attr = new Attr(offsetofend(L, cookie !== undefined ? 'cookie' : 'prog_fd'))
    .ptr(L.name, name === null ? null : cstr(name)).u32(L.prog_fd, progFd);
  if (cookie !== undefined) attr.u64(L.cookie, cookie);
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
  const L = bpf_attr.prog_attach;
  const attr = new Attr(offsetofend(L, 'replace_bpf_fd'))
    .u32(L.target_fd, a.targetFd).u32(L.attach_bpf_fd, a.progFd).u32(L.attach_type, attachTypeNames.number(a.attachType))
    .u32(L.attach_flags, a.flags ?? 0).u32(L.replace_bpf_fd, a.replaceFd ?? 0);
  return bpfRaw('PROG_ATTACH', attr);
}

/** BPF_PROG_DETACH: 0, or a negative errno. */
export function progDetachRaw(targetFd: number, progFd: number, attachType: AttachType): number {
  const L = bpf_attr.prog_attach;
  const attr = new Attr(offsetofend(L, 'replace_bpf_fd'))
    .u32(L.target_fd, targetFd).u32(L.attach_bpf_fd, progFd).u32(L.attach_type, attachTypeNames.number(attachType));
  return bpfRaw('PROG_DETACH', attr);
}

/** Flags of BPF_PROG_ATTACH. */
export const BPF_F_ALLOW_OVERRIDE = 1 << 0;
export const BPF_F_ALLOW_MULTI = 1 << 1;
export const BPF_F_REPLACE = 1 << 2;

/** What a perf_event link's event is (`enum bpf_perf_event_type`, lowercase, without BPF_PERF_EVENT_). */
export type PerfEventKind = 'unspec' | 'uprobe' | 'uretprobe' | 'kprobe' | 'kretprobe' | 'tracepoint' | 'event';
/** enum bpf_perf_event_type, for perf_event link info: index = value. */
const PERF_EVENT_KINDS: readonly PerfEventKind[] = ['unspec', 'uprobe', 'uretprobe', 'kprobe', 'kretprobe', 'tracepoint', 'event'];

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
  const I = bpf_link_info;
  const typeNum = v.getUint32(I.type, true);
  const type = linkTypeNames.name(typeNum);
  const out: RawLinkInfo = { type, id: v.getUint32(I.id, true), progId: v.getUint32(I.prog_id, true) };
  switch (type) {
    case 'raw_tracepoint': {
      // A second call with a buffer for the name.
      const name = new Uint8Array(256);
      const attr = new Attr(LINK_INFO_SIZE).ptr(I.raw_tracepoint.tp_name, name).u32(I.raw_tracepoint.tp_name_len, name.byteLength);
      try {
        objGetInfoByFd(fd, attr);
        out.tracepoint = cString(name);
      } catch {
        /* the name is a nicety; leave it out */
      }
      break;
    }
    case 'tracing':
      out.attachType = attachTypeNames.name(v.getUint32(I.tracing.attach_type, true));
      out.targetObjId = v.getUint32(I.tracing.target_obj_id, true);
      out.targetBtfId = v.getUint32(I.tracing.target_btf_id, true);
      break;
    case 'cgroup':
      out.cgroupId = v.getBigUint64(I.cgroup.cgroup_id, true);
      out.attachType = attachTypeNames.name(v.getUint32(I.cgroup.attach_type, true));
      break;
    case 'netns':
      out.netnsIno = v.getUint32(I.netns.netns_ino, true);
      out.attachType = attachTypeNames.name(v.getUint32(I.netns.attach_type, true));
      break;
    case 'xdp':
      out.ifindex = v.getUint32(I.xdp.ifindex, true);
      break;
    case 'tcx':
      out.ifindex = v.getUint32(I.tcx.ifindex, true);
      out.attachType = attachTypeNames.name(v.getUint32(I.tcx.attach_type, true));
      break;
    case 'netkit':
      out.ifindex = v.getUint32(I.netkit.ifindex, true);
      out.attachType = attachTypeNames.name(v.getUint32(I.netkit.attach_type, true));
      break;
    case 'kprobe_multi':
      readKprobeMultiInfo(fd, v, out);
      break;
    case 'uprobe_multi':
      readUprobeMultiInfo(fd, v, out);
      break;
    case 'perf_event': {
      const k = v.getUint32(I.perf_event.type, true);
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
 * kprobe_multi member (missed 6.7+, cookies 6.9+). A first call gives the count (0 on kernels
 * before 6.6, which do not fill it), a second the arrays.
 */
function readKprobeMultiInfo(fd: number, first: DataView, out: RawLinkInfo): void {
  const K = bpf_link_info.kprobe_multi;
  const count = first.getUint32(K.count, true);
  const flags = first.getUint32(K.flags, true);
  const info: NonNullable<RawLinkInfo['kprobeMulti']> = { count, retprobe: (flags & BPF_F_KPROBE_MULTI_RETURN) !== 0, addresses: [] };
  if (count > 0) {
    const addrs = new Uint8Array(count * 8);
    const cookies = new Uint8Array(count * 8);
    const attr = new Attr(LINK_INFO_SIZE).ptr(K.addrs, addrs).u32(K.count, count).ptr(K.cookies, cookies);
    try {
      objGetInfoByFd(fd, attr);
      info.addresses = u64s(addrs, count);
      info.missed = attr.view.getBigUint64(K.missed, true);
      info.cookies = u64s(cookies, count);
    } catch {
      /* the arrays are a nicety; keep the count */
    }
  }
  out.kprobeMulti = info;
}

/** uprobe_multi member: a first call gives the count, a second the path and arrays. */
function readUprobeMultiInfo(fd: number, first: DataView, out: RawLinkInfo): void {
  const U = bpf_link_info.uprobe_multi;
  const count = first.getUint32(U.count, true);
  const flags = first.getUint32(U.flags, true);
  const info: NonNullable<RawLinkInfo['uprobeMulti']> = {
    path: '', count, retprobe: (flags & BPF_F_UPROBE_MULTI_RETURN) !== 0, offsets: [], cookies: [], pid: first.getUint32(U.pid, true),
  };
  if (count > 0) {
    const path = new Uint8Array(4096);
    const offsets = new Uint8Array(count * 8);
    const cookies = new Uint8Array(count * 8);
    const attr = new Attr(LINK_INFO_SIZE).ptr(U.path, path).ptr(U.offsets, offsets).ptr(U.cookies, cookies)
      .u32(U.path_size, path.byteLength).u32(U.count, count);
    try {
      objGetInfoByFd(fd, attr);
      info.path = cString(path);
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
