/**
 * One function per `bpf()` command, each laying out `union bpf_attr` as uapi `linux/bpf.h` defines
 * it. This is the only module that calls the bpf syscall; callers get numbers, buffers and FDs,
 * and failures as BpfSyscallError with the command's name.
 */
import { EAGAIN, ENOENT } from '../abi/errno.js';
import { BpfSyscallError } from '../errors.js';
import { native, type Native } from './native.js';
import { offsetofend } from '../abi/layout.js';
import { cstr } from '../abi/cstring.js';
import { Attr } from './attr.js';
import { BPF_CMD } from '../abi/constants.js';
import { bpf_attr } from '../abi/uapi.js';
import { FD } from './fd.js';
import { ensureBpffsFor } from './bpffs.js';

type CmdName = keyof typeof BPF_CMD;

/** Raw call: result, or a negative errno. */
export function bpfRaw(cmd: CmdName, attr: Attr): number {
  return native().bpf(BPF_CMD[cmd], attr.bytes, attr.refs);
}

/** Call and throw on failure. */
export function bpfCall(cmd: CmdName, attr: Attr, what?: string, hint?: (errno: number) => string | undefined): number {
  const r = bpfRaw(cmd, attr);
  if (r < 0) throw new BpfSyscallError(r, `bpf(BPF_${cmd})`, what, hint?.(-r));
  return r;
}


export interface MapCreateAttr {
  mapType: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  innerMapFd?: number;
  numaNode?: number;
  name?: string;
  ifindex?: number;
  btfFd?: number;
  btfKeyTypeId?: number;
  btfValueTypeId?: number;
  btfVmlinuxValueTypeId?: number;
  mapExtra?: bigint;
}

export function mapCreateAttr(a: MapCreateAttr): Attr {
  const L = bpf_attr.map_create;
  const attr = new Attr(offsetofend(L, 'map_extra'))
    .u32(L.map_type, a.mapType).u32(L.key_size, a.keySize).u32(L.value_size, a.valueSize).u32(L.max_entries, a.maxEntries)
    .u32(L.map_flags, a.flags).u32(L.inner_map_fd, a.innerMapFd ?? 0).u32(L.numa_node, a.numaNode ?? 0)
    .u32(L.map_ifindex, a.ifindex ?? 0).u32(L.btf_fd, a.btfFd ?? 0).u32(L.btf_key_type_id, a.btfKeyTypeId ?? 0)
    .u32(L.btf_value_type_id, a.btfValueTypeId ?? 0).u32(L.btf_vmlinux_value_type_id, a.btfVmlinuxValueTypeId ?? 0)
    .u64(L.map_extra, a.mapExtra ?? 0n);
  if (a.name) attr.str(L.map_name, L.$sizeof.map_name, a.name);
  return attr;
}

function elemAttr(fd: number, key: ArrayBufferView | null, value: ArrayBufferView | null, flags: number | bigint): Attr {
  const L = bpf_attr.map_elem;
  return new Attr(offsetofend(L, 'flags')).u32(L.map_fd, fd).ptr(L.key, key).ptr(L.value, value).u64(L.flags, flags);
}

// Command numbers of the per-element calls, read once: the hot path does no name lookups.
const LOOKUP_ELEM = BPF_CMD.MAP_LOOKUP_ELEM;
const UPDATE_ELEM = BPF_CMD.MAP_UPDATE_ELEM;
const DELETE_ELEM = BPF_CMD.MAP_DELETE_ELEM;
const GET_NEXT_KEY = BPF_CMD.MAP_GET_NEXT_KEY;
const LOOKUP_AND_DELETE_ELEM = BPF_CMD.MAP_LOOKUP_AND_DELETE_ELEM;

/**
 * A per-element map command through `bpf()` with a laid-out attr: what {@link Native.mapElem} does
 * natively. The emulated kernel implements mapElem with it, and any other interface falls back to it.
 */
export function mapElemVia(n: Native, cmd: number, fd: number, key: ArrayBufferView | null, value: ArrayBufferView | null, flags: number | bigint): number {
  const attr = elemAttr(fd, key, value, flags);
  return n.bpf(cmd, attr.bytes, attr.refs);
}

/** How {@link Native.mapNextLookup} encodes a failed LOOKUP: -(MAP_NEXT_LOOKUP_BIAS + errno). */
export const MAP_NEXT_LOOKUP_BIAS = 4096;

/** {@link Native.mapNextLookup} from two per-element calls, for interfaces without it. */
export function mapNextLookupVia(n: Native, fd: number, prev: ArrayBufferView | null, next: ArrayBufferView, value: ArrayBufferView): number {
  const elem = n.mapElem ? n.mapElem.bind(n) : (c: number, f: number, k: ArrayBufferView | null, v: ArrayBufferView | null, fl: number) => mapElemVia(n, c, f, k, v, fl);
  const r = elem(GET_NEXT_KEY, fd, prev, next, 0);
  if (r < 0) return r;
  const l = elem(LOOKUP_ELEM, fd, next, value, 0);
  return l < 0 ? l - MAP_NEXT_LOOKUP_BIAS : 0;
}

/** A per-element map command: natively built attr where the addon has it (one call, no pointer list). */
function elemCall(cmd: number, fd: number, key: ArrayBufferView | null, value: ArrayBufferView | null, flags: number | bigint): number {
  const n = native();
  if (n.mapElem !== undefined && typeof flags === 'number') return n.mapElem(cmd, fd, key, value, flags);
  return mapElemVia(n, cmd, fd, key, value, flags);
}

/** BPF_MAP_LOOKUP_ELEM; false when the key is absent. */
export function mapLookupElem(fd: number, key: ArrayBufferView | null, value: ArrayBufferView, flags = 0): boolean {
  return found(elemCall(LOOKUP_ELEM, fd, key, value, flags), 'bpf(BPF_MAP_LOOKUP_ELEM)');
}

export function mapUpdateElem(fd: number, key: ArrayBufferView | null, value: ArrayBufferView, flags: number | bigint): void {
  updated(elemCall(UPDATE_ELEM, fd, key, value, flags));
}

/** A lookup's or delete's result: false for ENOENT, true for success; any other errno throws. */
function found(r: number, call: string): boolean {
  if (r === -ENOENT) return false;
  if (r < 0) throw new BpfSyscallError(r, call);
  return true;
}

function updated(r: number): void {
  if (r < 0) throw new BpfSyscallError(r, 'bpf(BPF_MAP_UPDATE_ELEM)', undefined, updateHint(-r));
}

function updateHint(errno: number): string | undefined {
  switch (errno) {
    case 17: return 'the key already exists and the update asked for noexist';
    case 2: return 'the key does not exist and the update asked for exist';
    case 7: return 'the map is full (max_entries reached)';
    case 1: return 'the map may be frozen or read-only from user space';
    default: return undefined;
  }
}

/** BPF_MAP_DELETE_ELEM; false when the key was absent. */
export function mapDeleteElem(fd: number, key: ArrayBufferView | null): boolean {
  return found(elemCall(DELETE_ELEM, fd, key, null, 0), 'bpf(BPF_MAP_DELETE_ELEM)');
}

/**
 * A map's own key and value buffers, bound once for the per-element commands: where the addon
 * has mapBind/mapOp, a call passes only the command and flags (no buffers for N-API to look up).
 * The binding belongs to the syscall interface that made it, so one installed later (setNative)
 * gets a binding of its own.
 */
export class MapElemBinding {
  #native: Native | undefined;
  #handle: unknown;
  constructor(readonly fd: number, readonly key: ArrayBufferView | null, readonly value: ArrayBufferView) {}

  #call(cmd: number, flags: number | bigint): number {
    const n = native();
    if (n !== this.#native) {
      this.#native = n;
      this.#handle = n.mapBind !== undefined && n.mapOp !== undefined ? n.mapBind(this.fd, this.key, this.value) : undefined;
    }
    if (this.#handle !== undefined && typeof flags === 'number') return n.mapOp!(this.#handle, cmd, flags);
    return elemCall(cmd, this.fd, this.key, cmd === DELETE_ELEM ? null : this.value, flags);
  }

  /** BPF_MAP_LOOKUP_ELEM into the bound value; false when the key is absent. */
  lookup(flags = 0): boolean {
    return found(this.#call(LOOKUP_ELEM, flags), 'bpf(BPF_MAP_LOOKUP_ELEM)');
  }

  /** BPF_MAP_UPDATE_ELEM from the bound key and value. */
  update(flags: number | bigint): void {
    updated(this.#call(UPDATE_ELEM, flags));
  }

  /** BPF_MAP_DELETE_ELEM of the bound key; false when it was absent. */
  delete(): boolean {
    return found(this.#call(DELETE_ELEM, 0), 'bpf(BPF_MAP_DELETE_ELEM)');
  }

  /** BPF_MAP_LOOKUP_AND_DELETE_ELEM into the bound value; false when empty or absent. */
  lookupAndDelete(flags = 0): boolean {
    return found(this.#call(LOOKUP_AND_DELETE_ELEM, flags), 'bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM)');
  }
}

/** BPF_MAP_GET_NEXT_KEY; key null asks for the first key. False at the end. */
export function mapGetNextKey(fd: number, key: ArrayBufferView | null, next: ArrayBufferView): boolean {
  return found(elemCall(GET_NEXT_KEY, fd, key, next, 0), 'bpf(BPF_MAP_GET_NEXT_KEY)');
}

/**
 * One step of a map walk: the key after `prev` (null: the first key) into `next`, then its value
 * into `value`, in one call to the syscall layer. 'end' after the last key, 'gone' when the key
 * was deleted between the two commands.
 */
export function mapNextLookup(fd: number, prev: ArrayBufferView | null, next: ArrayBufferView, value: ArrayBufferView): 'found' | 'gone' | 'end' {
  const n = native();
  const r = n.mapNextLookup !== undefined ? n.mapNextLookup(fd, prev, next, value) : mapNextLookupVia(n, fd, prev, next, value);
  if (r === 0) return 'found';
  if (r === -ENOENT) return 'end';
  if (r === -ENOENT - MAP_NEXT_LOOKUP_BIAS) return 'gone';
  if (r > -MAP_NEXT_LOOKUP_BIAS) throw new BpfSyscallError(r, 'bpf(BPF_MAP_GET_NEXT_KEY)');
  throw new BpfSyscallError(r + MAP_NEXT_LOOKUP_BIAS, 'bpf(BPF_MAP_LOOKUP_ELEM)');
}

/** BPF_MAP_LOOKUP_AND_DELETE_ELEM (also queue/stack pop with a null key); false when empty/absent. */
export function mapLookupAndDeleteElem(fd: number, key: ArrayBufferView | null, value: ArrayBufferView, flags = 0): boolean {
  return found(elemCall(LOOKUP_AND_DELETE_ELEM, fd, key, value, flags), 'bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM)');
}

export function mapFreeze(fd: number): void {
  bpfCall('MAP_FREEZE', new Attr(offsetofend(bpf_attr.map_elem, 'map_fd')).u32(bpf_attr.map_elem.map_fd, fd));
}

export interface BatchArgs {
  fd: number;
  inBatch: ArrayBufferView | null;
  outBatch: ArrayBufferView | null;
  keys: ArrayBufferView | null;
  values: ArrayBufferView | null;
  count: number;
  elemFlags?: number;
  flags?: number;
}

/**
 * The batch commands. Returns the number of elements processed and whether the map was
 * exhausted (ENOENT from a lookup batch means "no more", with `count` still valid), or a negative
 * errno for the caller to decide on (EINVAL/ENOTSUPP mean the kernel or map type lacks batching).
 */
export function mapBatch(cmd: 'MAP_LOOKUP_BATCH' | 'MAP_LOOKUP_AND_DELETE_BATCH' | 'MAP_UPDATE_BATCH' | 'MAP_DELETE_BATCH', a: BatchArgs): { count: number; done: boolean; errno: number } {
  const L = bpf_attr.batch;
  const attr = new Attr(offsetofend(L, 'flags')).ptr(L.in_batch, a.inBatch).ptr(L.out_batch, a.outBatch).ptr(L.keys, a.keys)
    .ptr(L.values, a.values).u32(L.count, a.count).u32(L.map_fd, a.fd).u64(L.elem_flags, a.elemFlags ?? 0).u64(L.flags, a.flags ?? 0);
  const r = bpfRaw(cmd, attr);
  const count = attr.getU32(L.count);
  if (r === -ENOENT) return { count, done: true, errno: 0 };
  if (r < 0) return { count, done: false, errno: -r };
  return { count, done: false, errno: 0 };
}

export interface ProgLoadAttr {
  progType: number;
  insns: Uint8Array;
  license: string;
  logLevel: number;
  logBuf: Uint8Array | null;
  kernVersion: number;
  progFlags: number;
  name: string;
  ifindex?: number;
  expectedAttachType: number;
  btfFd: number;
  funcInfo: Uint8Array | null;
  funcInfoRecSize: number;
  funcInfoCnt: number;
  lineInfo: Uint8Array | null;
  lineInfoRecSize: number;
  lineInfoCnt: number;
  attachBtfId?: number;
  attachBtfObjFd?: number;
  attachProgFd?: number;
  fdArray?: Int32Array | null;
}

/** BPF_PROG_LOAD: fd, or a negative errno (the loader reads the log and decides). */
const PROG_LOAD_EAGAIN_RETRIES = 5;

export function progLoadRaw(a: ProgLoadAttr): { result: number; logTrueSize: number } {
  const L = bpf_attr.prog_load;
  const attr = new Attr(offsetofend(L, 'prog_token_fd'))
    .u32(L.prog_type, a.progType).u32(L.insn_cnt, a.insns.byteLength / 8).ptr(L.insns, a.insns).ptr(L.license, cstr(a.license))
    .u32(L.log_level, a.logLevel).u32(L.log_size, a.logBuf ? a.logBuf.byteLength : 0).ptr(L.log_buf, a.logBuf)
    .u32(L.kern_version, a.kernVersion).u32(L.prog_flags, a.progFlags).str(L.prog_name, L.$sizeof.prog_name, a.name)
    .u32(L.prog_ifindex, a.ifindex ?? 0).u32(L.expected_attach_type, a.expectedAttachType).u32(L.prog_btf_fd, a.btfFd)
    .u32(L.func_info_rec_size, a.funcInfo ? a.funcInfoRecSize : 0).ptr(L.func_info, a.funcInfo)
    .u32(L.func_info_cnt, a.funcInfo ? a.funcInfoCnt : 0)
    .u32(L.line_info_rec_size, a.lineInfo ? a.lineInfoRecSize : 0).ptr(L.line_info, a.lineInfo)
    .u32(L.line_info_cnt, a.lineInfo ? a.lineInfoCnt : 0)
    .u32(L.attach_btf_id, a.attachBtfId ?? 0).u32(L.attach_prog_fd, a.attachProgFd ?? a.attachBtfObjFd ?? 0)
    .ptr(L.fd_array, a.fdArray ?? null);
  // The verifier gives up with EAGAIN when a signal interrupts it: try again, as libbpf does.
  let result = bpfRaw('PROG_LOAD', attr);
  for (let retries = 0; result === -EAGAIN && retries < PROG_LOAD_EAGAIN_RETRIES; retries++) result = bpfRaw('PROG_LOAD', attr);
  return { result, logTrueSize: attr.getU32(L.log_true_size) };
}

/** BPF_BTF_LOAD: fd, or a negative errno. */
export function btfLoadRaw(btf: Uint8Array, logBuf: Uint8Array | null, logLevel: number): number {
  const L = bpf_attr.btf_load;
  const attr = new Attr(offsetofend(L, 'btf_log_true_size')).ptr(L.btf, btf).ptr(L.btf_log_buf, logBuf).u32(L.btf_size, btf.byteLength)
    .u32(L.btf_log_size, logBuf ? logBuf.byteLength : 0).u32(L.btf_log_level, logBuf ? logLevel : 0);
  return bpfRaw('BTF_LOAD', attr);
}

export function objPin(fd: number, path: string): void {
  ensureBpffsFor(path);
  const L = bpf_attr.obj;
  bpfCall('OBJ_PIN', new Attr(offsetofend(L, 'file_flags')).ptr(L.pathname, cstr(path)).u32(L.bpf_fd, fd), `pin to ${path}`, (e) =>
    e === 1 || e === 22 ? `${path} must be inside a mounted bpf filesystem (mount -t bpf bpf /sys/fs/bpf)` :
    e === 17 ? `${path} already exists: unpin it first` : e === 2 ? 'the parent directory does not exist' : undefined);
}

export function objGet(path: string, fileFlags = 0): FD {
  const L = bpf_attr.obj;
  const r = bpfCall('OBJ_GET', new Attr(offsetofend(L, 'file_flags')).ptr(L.pathname, cstr(path)).u32(L.file_flags, fileFlags), `open pinned ${path}`, (e) =>
    e === 2 ? `nothing is pinned at ${path}` : e === 22 ? `${path} is not in a bpf filesystem` : undefined);
  return new FD(r, `pinned object ${path}`);
}

export interface TestRunArgs {
  progFd: number;
  dataIn: Uint8Array | null;
  dataOut: Uint8Array | null;
  ctxIn: Uint8Array | null;
  ctxOut: Uint8Array | null;
  repeat: number;
  flags: number;
  cpu: number;
  batchSize: number;
}

export function progTestRun(a: TestRunArgs): { retval: number; duration: number; dataSizeOut: number; ctxSizeOut: number } {
  const L = bpf_attr.test;
  const attr = new Attr(L.$size)
    .u32(L.prog_fd, a.progFd).u32(L.data_size_in, a.dataIn?.byteLength ?? 0).u32(L.data_size_out, a.dataOut?.byteLength ?? 0)
    .ptr(L.data_in, a.dataIn).ptr(L.data_out, a.dataOut).u32(L.repeat, a.repeat)
    .u32(L.ctx_size_in, a.ctxIn?.byteLength ?? 0).u32(L.ctx_size_out, a.ctxOut?.byteLength ?? 0)
    .ptr(L.ctx_in, a.ctxIn).ptr(L.ctx_out, a.ctxOut)
    .u32(L.flags, a.flags).u32(L.cpu, a.cpu).u32(L.batch_size, a.batchSize);
  bpfCall('PROG_TEST_RUN', attr, 'test run', (e) =>
    e === 524 || e === 95 ? 'this program type does not support BPF_PROG_TEST_RUN' :
    e === 28 ? 'the output buffer is too small for the data the program produced' :
    e === 22 ? 'the kernel refused the input: check the packet/context size for this program type' : undefined);
  return { retval: attr.getU32(L.retval), duration: attr.getU32(L.duration), dataSizeOut: attr.getU32(L.data_size_out), ctxSizeOut: attr.getU32(L.ctx_size_out) };
}

export type IdKind = 'PROG' | 'MAP' | 'BTF' | 'LINK';

/** BPF_*_GET_NEXT_ID; undefined after the last. */
export function getNextId(kind: IdKind, start: number): number | undefined {
  const L = bpf_attr.get_id;
  const attr = new Attr(offsetofend(L, 'open_flags')).u32(L.start_id, start);
  const r = bpfRaw(`${kind}_GET_NEXT_ID`, attr);
  if (r === -ENOENT) return undefined;
  if (r < 0) throw new BpfSyscallError(r, `bpf(BPF_${kind}_GET_NEXT_ID)`);
  return attr.getU32(L.next_id);
}

/** BPF_*_GET_FD_BY_ID. */
export function getFdById(kind: IdKind, id: number, openFlags = 0): FD {
  const L = bpf_attr.get_id;
  const r = bpfCall(`${kind}_GET_FD_BY_ID`, new Attr(offsetofend(L, 'open_flags')).u32(L.start_id, id).u32(L.open_flags, openFlags), `open ${kind.toLowerCase()} id ${id}`,
    (e) => (e === 2 ? `no ${kind.toLowerCase()} with id ${id} exists` : undefined));
  return new FD(r, `${kind.toLowerCase()} ${id}`);
}

/**
 * BPF_OBJ_GET_INFO_BY_FD into `info` (a plain buffer, or an Attr when the info struct carries
 * pointers to arrays the kernel should fill); returns the length the kernel wrote.
 */
export function objGetInfoByFd(fd: number, info: Uint8Array | Attr): number {
  const L = bpf_attr.info;
  const attr = new Attr(L.$size).u32(L.bpf_fd, fd);
  if (info instanceof Uint8Array) attr.u32(L.info_len, info.byteLength).ptr(L.info, info);
  else attr.u32(L.info_len, info.bytes.byteLength).ptrTo(L.info, info);
  bpfCall('OBJ_GET_INFO_BY_FD', attr);
  return attr.getU32(L.info_len);
}

/** BPF_ENABLE_STATS: run-time statistics stay on while the returned fd is open. */
export function enableStats(type: number): FD {
  const L = bpf_attr.enable_stats;
  return new FD(bpfCall('ENABLE_STATS', new Attr(L.$size).u32(L.type, type), 'enable stats'), 'stats');
}
