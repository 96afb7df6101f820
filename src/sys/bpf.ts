/**
 * One function per `bpf()` command, each laying out `union bpf_attr` as uapi `linux/bpf.h` defines
 * it. This is the only module that calls the bpf syscall; callers get numbers, buffers and FDs,
 * and failures as BpfSyscallError with the command's name.
 */
import { BpfSyscallError } from '../errors.js';
import { native } from '../native.js';
import { Attr, cstr } from './attr.js';
import { BPF_CMD, BPF_OBJ_NAME_LEN } from './constants.js';
import { FD } from './fd.js';
import { ensureBpffsFor } from '../bpffs.js';

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

const ENOENT = 2;

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
  const attr = new Attr(72)
    .u32(0, a.mapType).u32(4, a.keySize).u32(8, a.valueSize).u32(12, a.maxEntries)
    .u32(16, a.flags).u32(20, a.innerMapFd ?? 0).u32(24, a.numaNode ?? 0)
    .u32(44, a.ifindex ?? 0).u32(48, a.btfFd ?? 0).u32(52, a.btfKeyTypeId ?? 0)
    .u32(56, a.btfValueTypeId ?? 0).u32(60, a.btfVmlinuxValueTypeId ?? 0).u64(64, a.mapExtra ?? 0n);
  if (a.name) attr.str(28, BPF_OBJ_NAME_LEN, a.name);
  return attr;
}

function elemAttr(fd: number, key: ArrayBufferView | null, value: ArrayBufferView | null, flags: number | bigint): Attr {
  return new Attr(32).u32(0, fd).ptr(8, key).ptr(16, value).u64(24, flags);
}

/** A per-element map command: natively built attr where the addon has it (one call, no pointer list). */
function elemCall(cmd: 'MAP_LOOKUP_ELEM' | 'MAP_UPDATE_ELEM' | 'MAP_DELETE_ELEM' | 'MAP_GET_NEXT_KEY' | 'MAP_LOOKUP_AND_DELETE_ELEM',
  fd: number, key: ArrayBufferView | null, value: ArrayBufferView | null, flags: number | bigint): number {
  const n = native();
  if (n.mapElem && typeof flags === 'number') return n.mapElem(BPF_CMD[cmd], fd, key, value, flags);
  return bpfRaw(cmd, elemAttr(fd, key, value, flags));
}

/** BPF_MAP_LOOKUP_ELEM; false when the key is absent. */
export function mapLookupElem(fd: number, key: ArrayBufferView | null, value: ArrayBufferView, flags = 0): boolean {
  const r = elemCall('MAP_LOOKUP_ELEM', fd, key, value, flags);
  if (r === -ENOENT) return false;
  if (r < 0) throw new BpfSyscallError(r, 'bpf(BPF_MAP_LOOKUP_ELEM)');
  return true;
}

export function mapUpdateElem(fd: number, key: ArrayBufferView | null, value: ArrayBufferView, flags: number | bigint): void {
  const r = elemCall('MAP_UPDATE_ELEM', fd, key, value, flags);
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
  const r = elemCall('MAP_DELETE_ELEM', fd, key, null, 0);
  if (r === -ENOENT) return false;
  if (r < 0) throw new BpfSyscallError(r, 'bpf(BPF_MAP_DELETE_ELEM)');
  return true;
}

/** BPF_MAP_GET_NEXT_KEY; key null asks for the first key. False at the end. */
export function mapGetNextKey(fd: number, key: ArrayBufferView | null, next: ArrayBufferView): boolean {
  const r = elemCall('MAP_GET_NEXT_KEY', fd, key, next, 0);
  if (r === -ENOENT) return false;
  if (r < 0) throw new BpfSyscallError(r, 'bpf(BPF_MAP_GET_NEXT_KEY)');
  return true;
}

/** BPF_MAP_LOOKUP_AND_DELETE_ELEM (also queue/stack pop with a null key); false when empty/absent. */
export function mapLookupAndDeleteElem(fd: number, key: ArrayBufferView | null, value: ArrayBufferView, flags = 0): boolean {
  const r = elemCall('MAP_LOOKUP_AND_DELETE_ELEM', fd, key, value, flags);
  if (r === -ENOENT) return false;
  if (r < 0) throw new BpfSyscallError(r, 'bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM)');
  return true;
}

export function mapFreeze(fd: number): void {
  bpfCall('MAP_FREEZE', new Attr(8).u32(0, fd));
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
  const attr = new Attr(56).ptr(0, a.inBatch).ptr(8, a.outBatch).ptr(16, a.keys).ptr(24, a.values)
    .u32(32, a.count).u32(36, a.fd).u64(40, a.elemFlags ?? 0).u64(48, a.flags ?? 0);
  const r = bpfRaw(cmd, attr);
  const count = attr.getU32(32);
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
const EAGAIN = 11;
const PROG_LOAD_EAGAIN_RETRIES = 5;

export function progLoadRaw(a: ProgLoadAttr): { result: number; logTrueSize: number } {
  const attr = new Attr(148)
    .u32(0, a.progType).u32(4, a.insns.byteLength / 8).ptr(8, a.insns).ptr(16, cstr(a.license))
    .u32(24, a.logLevel).u32(28, a.logBuf ? a.logBuf.byteLength : 0).ptr(32, a.logBuf)
    .u32(40, a.kernVersion).u32(44, a.progFlags).str(48, BPF_OBJ_NAME_LEN, a.name)
    .u32(64, a.ifindex ?? 0).u32(68, a.expectedAttachType).u32(72, a.btfFd)
    .u32(76, a.funcInfo ? a.funcInfoRecSize : 0).ptr(80, a.funcInfo).u32(88, a.funcInfo ? a.funcInfoCnt : 0)
    .u32(92, a.lineInfo ? a.lineInfoRecSize : 0).ptr(96, a.lineInfo).u32(104, a.lineInfo ? a.lineInfoCnt : 0)
    .u32(108, a.attachBtfId ?? 0).u32(112, a.attachProgFd ?? a.attachBtfObjFd ?? 0)
    .ptr(120, a.fdArray ?? null);
  // The verifier gives up with EAGAIN when a signal interrupts it: try again, as libbpf does.
  let result = bpfRaw('PROG_LOAD', attr);
  for (let retries = 0; result === -EAGAIN && retries < PROG_LOAD_EAGAIN_RETRIES; retries++) result = bpfRaw('PROG_LOAD', attr);
  return { result, logTrueSize: attr.getU32(140) };
}

/** BPF_BTF_LOAD: fd, or a negative errno. */
export function btfLoadRaw(btf: Uint8Array, logBuf: Uint8Array | null, logLevel: number): number {
  const attr = new Attr(32).ptr(0, btf).ptr(8, logBuf).u32(16, btf.byteLength)
    .u32(20, logBuf ? logBuf.byteLength : 0).u32(24, logBuf ? logLevel : 0);
  return bpfRaw('BTF_LOAD', attr);
}

export function objPin(fd: number, path: string): void {
  ensureBpffsFor(path);
  bpfCall('OBJ_PIN', new Attr(16).ptr(0, cstr(path)).u32(8, fd), `pin to ${path}`, (e) =>
    e === 1 || e === 22 ? `${path} must be inside a mounted bpf filesystem (mount -t bpf bpf /sys/fs/bpf)` :
    e === 17 ? `${path} already exists: unpin it first` : e === 2 ? 'the parent directory does not exist' : undefined);
}

export function objGet(path: string, fileFlags = 0): FD {
  const r = bpfCall('OBJ_GET', new Attr(16).ptr(0, cstr(path)).u32(12, fileFlags), `open pinned ${path}`, (e) =>
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
  const attr = new Attr(80)
    .u32(0, a.progFd).u32(8, a.dataIn?.byteLength ?? 0).u32(12, a.dataOut?.byteLength ?? 0)
    .ptr(16, a.dataIn).ptr(24, a.dataOut).u32(32, a.repeat)
    .u32(40, a.ctxIn?.byteLength ?? 0).u32(44, a.ctxOut?.byteLength ?? 0).ptr(48, a.ctxIn).ptr(56, a.ctxOut)
    .u32(64, a.flags).u32(68, a.cpu).u32(72, a.batchSize);
  bpfCall('PROG_TEST_RUN', attr, 'test run', (e) =>
    e === 524 || e === 95 ? 'this program type does not support BPF_PROG_TEST_RUN' :
    e === 28 ? 'the output buffer is too small for the data the program produced' :
    e === 22 ? 'the kernel refused the input: check the packet/context size for this program type' : undefined);
  return { retval: attr.getU32(4), duration: attr.getU32(36), dataSizeOut: attr.getU32(12), ctxSizeOut: attr.getU32(44) };
}

export type IdKind = 'PROG' | 'MAP' | 'BTF' | 'LINK';

/** BPF_*_GET_NEXT_ID; undefined after the last. */
export function getNextId(kind: IdKind, start: number): number | undefined {
  const attr = new Attr(12).u32(0, start);
  const r = bpfRaw(`${kind}_GET_NEXT_ID`, attr);
  if (r === -ENOENT) return undefined;
  if (r < 0) throw new BpfSyscallError(r, `bpf(BPF_${kind}_GET_NEXT_ID)`);
  return attr.getU32(4);
}

/** BPF_*_GET_FD_BY_ID. */
export function getFdById(kind: IdKind, id: number, openFlags = 0): FD {
  const r = bpfCall(`${kind}_GET_FD_BY_ID`, new Attr(12).u32(0, id).u32(8, openFlags), `open ${kind.toLowerCase()} id ${id}`,
    (e) => (e === 2 ? `no ${kind.toLowerCase()} with id ${id} exists` : undefined));
  return new FD(r, `${kind.toLowerCase()} ${id}`);
}

/**
 * BPF_OBJ_GET_INFO_BY_FD into `info` (a plain buffer, or an Attr when the info struct carries
 * pointers to arrays the kernel should fill); returns the length the kernel wrote.
 */
export function objGetInfoByFd(fd: number, info: Uint8Array | Attr): number {
  const attr = new Attr(16).u32(0, fd);
  if (info instanceof Uint8Array) attr.u32(4, info.byteLength).ptr(8, info);
  else attr.u32(4, info.bytes.byteLength).ptrTo(8, info);
  bpfCall('OBJ_GET_INFO_BY_FD', attr);
  return attr.getU32(4);
}

/** BPF_ENABLE_STATS: run-time statistics stay on while the returned fd is open. */
export function enableStats(type: number): FD {
  return new FD(bpfCall('ENABLE_STATS', new Attr(4).u32(0, type), 'enable stats'), 'stats');
}
