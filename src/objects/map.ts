/**
 * A BPF map that exists in the kernel. Every operation is one synchronous syscall (or a loop of
 * them, for iteration); keys and values are converted by codecs compiled once from the map's BTF,
 * so callers pass and get plain JavaScript values, or raw Uint8Array bytes whenever they prefer.
 */
import { Btf } from '../btf/btf.js';
import { codecFor, intCodec, rawCodec, type Codec } from '../btf/codec.js';
import { lpmKey } from './cidr.js';
import { possibleCpus } from '../sys/cpus.js';
import { BpfSyscallError, InvalidArgumentError, NotSupportedError } from '../errors.js';
import type { MapSpec } from '../spec/map-spec.js';
import {
  getFdById, mapBatch, mapCreateAttr, mapFreeze, mapGetNextKey, mapNextLookup, objGet, objGetInfoByFd, bpfRaw,
  MapElemBinding, type MapCreateAttr,
} from '../sys/bpf.js';
import { cString } from '../abi/cstring.js';
import { offsetofend } from '../abi/layout.js';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, mapType as mapTypeNames, type MapType } from '../abi/constants.js';
import { FD } from '../sys/fd.js';
import { bpf_map_info } from '../abi/uapi.js';
import { btfFromKernelId } from '../kernel/btf.js';
import { PinnableFd } from './pinning.js';

/**
 * How an update treats an existing key: `'any'` (create or replace, BPF_ANY), `'noexist'` (create
 * only, BPF_NOEXIST: EEXIST when the key exists), `'exist'` (replace only, BPF_EXIST: ENOENT when
 * it
 * does not), or the raw flag bits (e.g. BPF_F_LOCK).
 */
export type UpdateFlags = 'any' | 'noexist' | 'exist' | number;

/**
 * What a key may be given as: the decoded shape, raw bytes, or for LPM tries a CIDR string
 * ("10.0.0.0/8", "2001:db8::/32", or a bare address for a full-length prefix).
 */
export type KeyIn<K> = K | Uint8Array | string;

const PER_CPU = new Set<MapType>(['percpu_hash', 'percpu_array', 'lru_percpu_hash', 'percpu_cgroup_storage']);
/** Maps with no key: values are pushed and popped. */
const KEYLESS = new Set<MapType>(['queue', 'stack', 'bloom_filter']);

/**
 * What the kernel says about a map (BPF_OBJ_GET_INFO_BY_FD, Requires Linux 4.13): its type, id,
 * name, sizes and flags.
 */
export interface MapInfo {
  readonly type: MapType | `unknown(${number})`;
  readonly id: number;
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly btfId: number;
  readonly btfKeyTypeId: number;
  readonly btfValueTypeId: number;
  readonly mapExtra: bigint;
}

/** Kernel map names: 15 bytes of [A-Za-z0-9_.]. */
export function kernelObjectName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, 15);
}

function updateFlags(f: UpdateFlags): number {
  if (typeof f === 'number') return f;
  switch (f) {
    case 'any': return BPF_ANY;
    case 'noexist': return BPF_NOEXIST;
    case 'exist': return BPF_EXIST;
    default: throw new InvalidArgumentError(`unknown update flag "${String(f)}": use 'any', 'noexist' or 'exist'`);
  }
}

/** What a keyless map's key adds to a batch of keys. */
const NO_BYTES = new Uint8Array(0);

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * A BPF map that exists in the kernel. Keys and values are plain JavaScript values, decoded and
 * encoded by codecs built once from the map's BTF (numbers, bigints, objects for structs, arrays,
 * per-CPU values as one element per possible CPU), or raw `Uint8Array` bytes where the caller
 * prefers. Every operation is one synchronous syscall, or a loop of them for iteration.
 *
 * Requires Linux 3.19 (BPF_MAP_CREATE, lookup, update, delete, next key); further operations need
 * later kernels: pin()/fromPinned() 4.4, fromId()/info() 4.13, push()/pop()/peek() (queue, stack)
 * 4.20, freeze() 5.2, the batch operations 5.6, lookupAndDelete() on hash maps 5.14. Each map type
 * needs its own version (see {@link MapType}).
 *
 * @throws {@link BpfSyscallError} (`code` is the errno name: ENOENT for a missing key on delete,
 *   EEXIST / ENOENT for `'noexist'` / `'exist'` updates, E2BIG when the map is full, EPERM without
 *   privileges) when the kernel refuses an operation.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) when a key or value does not fit
 *   the map's types or sizes, or an operation does not exist for its type.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) when the kernel lacks the operation.
 * @throws {@link ClosedError} (`ERR_BPFKIT_CLOSED`) after close().
 * @example
 * ```ts
 * const counts = coll.maps.get('counts') as BpfMap<number, bigint>;
 * counts.update(7, 0n, 'noexist');
 * for (const [port, n] of counts) console.log(port, n);   // decoded from the map's BTF
 * const raw = counts.lookupBytes(7);                       // the bytes the kernel holds
 * ```
 */
export class BpfMap<K = unknown, V = unknown> extends PinnableFd {
  readonly name: string;
  readonly type: MapType;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly #fd: FD;
  /** Key and value codecs, built on first use: a load creates many maps whose values it never decodes. */
  #keyCodec: Codec | undefined;
  #valueCodec: Codec | undefined;
  readonly #codecs: { btf?: Btf | undefined; keyTypeId?: number; valueTypeId?: number } | undefined;
  readonly #perCpu: boolean;
  readonly #cpus: number;
  /** Per-CPU values sit 8-byte aligned, one slot per possible CPU. */
  readonly #stride: number;
  /** Reused buffers for the single-element calls. */
  readonly #keyBuf: Uint8Array;
  readonly #valBuf: Uint8Array;
  /** Views of those buffers, for codecs to read values where the kernel wrote them. */
  readonly #valView: DataView;
  /** Those buffers bound once for the per-element commands (the key's only when the map has keys). */
  readonly #elem: MapElemBinding;

  /** Wraps an open map fd (taking ownership). Most users get maps from a Collection instead. */
  constructor(fd: FD, info: { name: string; type: MapType; keySize: number; valueSize: number; maxEntries: number; flags: number },
    codecs?: { btf?: Btf | undefined; keyTypeId?: number; valueTypeId?: number }) {
    super(fd);
    this.#fd = fd;
    this.name = info.name;
    this.type = info.type;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.#perCpu = PER_CPU.has(info.type);
    this.#cpus = this.#perCpu ? possibleCpus() : 1;
    this.#stride = this.#perCpu ? roundUp8(info.valueSize) : info.valueSize;
    this.#codecs = codecs;
    this.#keyBuf = new Uint8Array(Math.max(info.keySize, 1));
    this.#valBuf = new Uint8Array(Math.max(this.#stride * this.#cpus, 1));
    this.#valView = new DataView(this.#valBuf.buffer);
    this.#elem = new MapElemBinding(fd.value, info.keySize ? this.#keyBuf : null, this.#valBuf);
  }

  /** Creates a map from a spec (no initial contents are written). */
  static create(spec: MapSpec, options: { btfFd?: number; innerMapFd?: number; name?: string } = {}): BpfMap {
    const attr: MapCreateAttr = {
      mapType: mapTypeNames.number(spec.type), keySize: spec.keySize, valueSize: spec.valueSize,
      maxEntries: spec.maxEntries, flags: spec.flags, numaNode: spec.numaNode, mapExtra: spec.mapExtra,
      name: kernelObjectName(options.name ?? spec.name), innerMapFd: options.innerMapFd ?? 0,
    };
    const withBtf = options.btfFd !== undefined && options.btfFd > 0 && (spec.keyTypeId !== 0 || spec.valueTypeId !== 0);
    let r = -1;
    if (withBtf) {
      r = bpfRaw('MAP_CREATE', mapCreateAttr({ ...attr, btfFd: options.btfFd!, btfKeyTypeId: spec.keyTypeId, btfValueTypeId: spec.valueTypeId }));
    }
    // As libbpf does: when the kernel refuses the map's BTF, create it without.
    if (r < 0) r = bpfRaw('MAP_CREATE', mapCreateAttr(attr));
    if (r < 0) throw mapCreateError(r, spec);
    return new BpfMap(new FD(r, `map ${spec.name}`), spec, { btf: spec.btf, keyTypeId: spec.keyTypeId, valueTypeId: spec.valueTypeId });
  }

  /** Opens a map pinned in bpffs. Keys and values are decoded with the map's BTF when it has one. */
  static fromPinned(path: string): BpfMap {
    return BpfMap.#fromFd(objGet(path));
  }

  /** Opens an existing map by its kernel id. */
  static fromId(id: number): BpfMap {
    return BpfMap.#fromFd(getFdById('MAP', id));
  }

  static #fromFd(fd: FD): BpfMap {
    try {
      const info = readMapInfo(fd.value);
      if (info.type.startsWith('unknown')) throw new NotSupportedError(`map type ${info.type}`, 'bpfkit does not know this map type');
      let btf: Btf | undefined;
      if (info.btfId) {
        try { btf = btfFromKernelId(info.btfId); } catch { btf = undefined; }
      }
      return new BpfMap(fd, { ...info, type: info.type as MapType }, { btf, keyTypeId: info.btfKeyTypeId, valueTypeId: info.btfValueTypeId });
    } catch (e) {
      fd.close();
      throw e;
    }
  }

  get #key(): Codec {
    return (this.#keyCodec ??= pickCodec(this.keySize, this.#codecs?.btf, this.#codecs?.keyTypeId ?? 0, 'key'));
  }

  get #value(): Codec {
    return (this.#valueCodec ??= pickCodec(this.valueSize, this.#codecs?.btf, this.#codecs?.valueTypeId ?? 0, 'value'));
  }

  get isPerCpu(): boolean {
    return this.#perCpu;
  }

  /** The value, or undefined when the key is absent. Per-CPU maps give one value per possible CPU. */
  lookup(key: KeyIn<K>): V | undefined {
    this.#fd.value; // throws once closed
    this.#encodeKey(key);
    if (!this.#elem.lookup()) return undefined;
    return this.#decodeValue(this.#valView);
  }

  /** The raw value bytes (all CPUs' slots for per-CPU maps), or undefined when absent. */
  lookupBytes(key: KeyIn<K>): Uint8Array | undefined {
    // Into the reused buffer, then copied: a fresh small array handed to the addon would be moved
    // off the V8 heap on every call, which costs more than the copy.
    this.#fd.value; // throws once closed
    this.#encodeKey(key);
    return this.#elem.lookup() ? this.#valBuf.slice(0, this.#stride * this.#cpus) : undefined;
  }

  /** Creates or replaces an entry. flags: 'any' (default), 'noexist' (fail if present), 'exist' (fail if absent). */
  update(key: KeyIn<K>, value: V | Uint8Array | V[], flags: UpdateFlags = 'any'): void {
    this.#fd.value; // throws once closed
    this.#encodeKey(key);
    this.#encodeValue(value);
    this.#elem.update(updateFlags(flags));
  }

  /** True when an entry was deleted, false when there was none. */
  delete(key: KeyIn<K>): boolean {
    this.#fd.value; // throws once closed
    this.#encodeKey(key);
    return this.#elem.delete();
  }

  /** Removes and returns an entry (hash maps on newer kernels, queues and stacks). */
  lookupAndDelete(key: KeyIn<K>): V | undefined {
    this.#fd.value; // throws once closed
    this.#encodeKey(key);
    if (!this.#elem.lookupAndDelete()) return undefined;
    return this.#decodeValue(this.#valView);
  }

  /** Queue / stack / bloom filter: add a value. */
  push(value: V | Uint8Array, flags: UpdateFlags = 'any'): void {
    this.#requireKeyless('push');
    this.#fd.value; // throws once closed
    this.#encodeValue(value);
    this.#elem.update(updateFlags(flags));
  }

  /** Queue / stack: remove and return the next value, or undefined when empty. */
  pop(): V | undefined {
    this.#requireKeyless('pop');
    this.#fd.value; // throws once closed
    if (!this.#elem.lookupAndDelete()) return undefined;
    return this.#decodeValue(this.#valView);
  }

  /** Queue / stack: the next value without removing it, or undefined when empty. */
  peek(): V | undefined {
    this.#requireKeyless('peek');
    this.#fd.value; // throws once closed
    if (!this.#elem.lookup()) return undefined;
    return this.#decodeValue(this.#valView);
  }

  /** Keys in the kernel's iteration order. */
  *keys(): IterableIterator<K> {
    const key = this.#key;
    for (const k of this.#rawKeys()) yield key.decode(k) as K;
  }

  /**
   * [key, value] pairs. An entry deleted between the two syscalls is skipped. Each step is one
   * call into the syscall layer (next key, then its value).
   */
  *entries(): IterableIterator<[K, V]> {
    this.#requireKeys();
    const fd = this.#fd.value;
    const key = this.#key;
    // Two key buffers of this walk's own, taking turns as the previous and the next key.
    let prev: Uint8Array | null = null;
    let next: Uint8Array = new Uint8Array(this.keySize);
    let spare: Uint8Array = new Uint8Array(this.keySize);
    let nextView = new DataView(next.buffer);
    let spareView = new DataView(spare.buffer);
    // get_next_key restarts from the first key when `prev` was deleted meanwhile; bound the walk.
    for (let n = 0; n <= this.maxEntries * 2 + 16; n++) {
      const r = mapNextLookup(fd, prev, next, this.#valBuf);
      if (r === 'end') return;
      // Both decoded before the caller's code runs: it may use the map's buffers itself.
      if (r === 'found') yield [key.read(nextView, 0) as K, this.#decodeValue(this.#valView)];
      prev = next;
      next = spare;
      spare = prev;
      const v = nextView;
      nextView = spareView;
      spareView = v;
    }
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /**
   * Every entry, read with BPF_MAP_LOOKUP_BATCH (many entries per syscall) where the kernel and map
   * type support it, else by iteration. `batchSize` is the number of entries per syscall.
   */
  lookupBatch(options: { batchSize?: number } = {}): [K, V][] {
    const r = this.#batchRead('MAP_LOOKUP_BATCH', options.batchSize ?? 256);
    return r ?? [...this.entries()];
  }

  /** Reads and deletes every entry in batches (falls back to per-key lookup and delete). */
  lookupAndDeleteBatch(options: { batchSize?: number } = {}): [K, V][] {
    const r = this.#batchRead('MAP_LOOKUP_AND_DELETE_BATCH', options.batchSize ?? 256);
    if (r) return r;
    const out: [K, V][] = [];
    for (const [k, v] of [...this.entries()]) {
      if (this.delete(k as K)) out.push([k, v]);
    }
    return out;
  }

  /** Writes many entries with one syscall where supported. Returns the number written. */
  updateBatch(entries: Iterable<readonly [KeyIn<K>, V | Uint8Array | V[]]>, flags: UpdateFlags = 'any'): number {
    const fd = this.#fd.value;
    const list = [...entries];
    if (list.length === 0) return 0;
    const vsize = this.#stride * this.#cpus;
    const keys = new Uint8Array(list.length * this.keySize);
    const values = new Uint8Array(list.length * vsize);
    list.forEach(([k, v], i) => {
      keys.set(this.#encodeKey(k) ?? NO_BYTES, i * this.keySize);
      values.set(this.#encodeValue(v), i * vsize);
    });
    const r = mapBatch('MAP_UPDATE_BATCH', { fd, inBatch: null, outBatch: null, keys, values, count: list.length, elemFlags: updateFlags(flags) });
    if (r.errno === 0) return r.count;
    if (!batchUnsupported(r.errno)) throw new BpfSyscallError(r.errno, 'bpf(BPF_MAP_UPDATE_BATCH)', `map ${this.name}`);
    list.forEach(([k, v]) => this.update(k as K, v as V, flags));
    return list.length;
  }

  /** Deletes many keys with one syscall where supported. Returns the number deleted. */
  deleteBatch(keysIn: Iterable<KeyIn<K>>): number {
    const fd = this.#fd.value;
    const list = [...keysIn];
    if (list.length === 0) return 0;
    const keys = new Uint8Array(list.length * this.keySize);
    list.forEach((k, i) => keys.set(this.#encodeKey(k) ?? NO_BYTES, i * this.keySize));
    // The kernel stops at the first missing key (ENOENT, `count` = keys deleted before it): skip
    // that key and go on with the rest, so every present key is deleted and counted.
    let deleted = 0;
    for (let from = 0; from < list.length;) {
      const rest = keys.subarray(from * this.keySize);
      const r = mapBatch('MAP_DELETE_BATCH', { fd, inBatch: null, outBatch: null, keys: rest, values: null, count: list.length - from });
      if (r.errno === 0 && !r.done) return deleted + r.count;
      if (r.done) {
        deleted += r.count;
        from += r.count + 1;
        continue;
      }
      if (from > 0 || !batchUnsupported(r.errno)) throw new BpfSyscallError(r.errno, 'bpf(BPF_MAP_DELETE_BATCH)', `map ${this.name}`);
      return list.filter((k) => this.delete(k)).length;
    }
    return deleted;
  }

  /** Makes the map read-only for user space from now on (programs can still write unless RDONLY_PROG). */
  freeze(): void {
    mapFreeze(this.#fd.value);
  }

  /** What the kernel says about the map (BPF_OBJ_GET_INFO_BY_FD). */
  info(): MapInfo {
    return readMapInfo(this.#fd.value);
  }

  #requireKeys(): void {
    if (KEYLESS.has(this.type)) throw new InvalidArgumentError(`map ${this.name} is a ${this.type}: it has no keys; use pop() or peek()`);
  }

  *#rawKeys(): Generator<Uint8Array> {
    this.#requireKeys();
    const fd = this.#fd.value;
    // Two buffers of this walk's own, taking turns as the previous and the next key (callers
    // decode or copy each key before the next step; the map's shared buffers stay free for
    // what the loop body does).
    let prev: Uint8Array | null = null;
    let next: Uint8Array = new Uint8Array(this.keySize);
    let spare: Uint8Array = new Uint8Array(this.keySize);
    // get_next_key restarts from the first key when `prev` was deleted meanwhile; bound the walk.
    for (let n = 0; n <= this.maxEntries * 2 + 16; n++) {
      if (!mapGetNextKey(fd, prev, next)) return;
      yield next;
      prev = next;
      next = spare;
      spare = prev;
    }
  }

  #batchRead(cmd: 'MAP_LOOKUP_BATCH' | 'MAP_LOOKUP_AND_DELETE_BATCH', batchSize: number): [K, V][] | undefined {
    const raw = this.#batchReadRaw(cmd, batchSize);
    if (!raw) return undefined;
    const vsize = this.#stride * this.#cpus;
    const key = this.#key;
    const keys = new DataView(raw.keys.buffer, raw.keys.byteOffset, raw.keys.byteLength);
    const values = new DataView(raw.values.buffer, raw.values.byteOffset, raw.values.byteLength);
    const out: [K, V][] = new Array(raw.count);
    for (let i = 0; i < raw.count; i++) {
      out[i] = [key.read(keys, i * this.keySize) as K, this.#decodeValue(values, i * vsize)];
    }
    return out;
  }

  /**
   * Every entry's bytes, read with BPF_MAP_LOOKUP_BATCH: `count` keys packed in `keys` (keySize
   * each) and their values in `values` (all CPUs' slots for per-CPU maps), nothing decoded; for
   * callers that read large tables every interval. Undefined when the kernel or map type has no
   * batch lookup (then use lookupBatch(), which falls back to iteration).
   */
  lookupBatchRaw(options: { batchSize?: number } = {}): { count: number; keys: Uint8Array; values: Uint8Array } | undefined {
    return this.#batchReadRaw('MAP_LOOKUP_BATCH', options.batchSize ?? 256);
  }

  #batchReadRaw(cmd: 'MAP_LOOKUP_BATCH' | 'MAP_LOOKUP_AND_DELETE_BATCH', batchSize: number): { count: number; keys: Uint8Array; values: Uint8Array } | undefined {
    const fd = this.#fd.value;
    const ksize = this.keySize;
    const vsize = this.#stride * this.#cpus;
    let count = Math.max(1, Math.min(batchSize, this.maxEntries));
    // The kernel writes each batch into one reused pair of buffers, still in cache when they are
    // copied to the result (measured faster than letting it write into the large result's cold
    // pages). The result starts at 64 Ki entries (or four batches) and doubles when a batch would
    // not fit, so a huge, mostly empty map costs about what its entries do.
    let chunkKeys = new Uint8Array(count * ksize);
    let chunkValues = new Uint8Array(count * vsize);
    let cap = Math.min(this.maxEntries, Math.max(count * 4, 65536));
    let keys = new Uint8Array(cap * ksize);
    let values = new Uint8Array(cap * vsize);
    // The kernel reads in_batch before it writes out_batch: one token buffer serves as both.
    const token = new Uint8Array(Math.max(ksize, 8));
    let started = false;
    let total = 0;
    for (;;) {
      // A map never holds more than maxEntries: no call is needed to hear that it has no more.
      if (total > 0 && total >= this.maxEntries) break;
      const r = mapBatch(cmd, { fd, inBatch: started ? token : null, outBatch: token, keys: chunkKeys, values: chunkValues, count });
      if (r.errno === 28 /* ENOSPC: a hash bucket holds more than count */) {
        count *= 2;
        chunkKeys = new Uint8Array(count * ksize);
        chunkValues = new Uint8Array(count * vsize);
        continue;
      }
      if (r.errno !== 0) {
        if (total === 0 && batchUnsupported(r.errno)) return undefined;
        throw new BpfSyscallError(r.errno, `bpf(BPF_${cmd})`, `map ${this.name}`);
      }
      if (cap - total < r.count) {
        cap = Math.max(cap * 2, total + r.count);
        const k = new Uint8Array(cap * ksize);
        const v = new Uint8Array(cap * vsize);
        k.set(keys.subarray(0, total * ksize));
        v.set(values.subarray(0, total * vsize));
        keys = k;
        values = v;
      }
      keys.set(chunkKeys.subarray(0, r.count * ksize), total * ksize);
      values.set(chunkValues.subarray(0, r.count * vsize), total * vsize);
      total += r.count;
      if (r.done) break;
      started = true;
    }
    return { count: total, keys: keys.subarray(0, total * ksize), values: values.subarray(0, total * vsize) };
  }

  #requireKeyless(op: string): void {
    if (!KEYLESS.has(this.type)) throw new InvalidArgumentError(`${op}() needs a queue, stack or bloom filter; map ${this.name} is a ${this.type}`);
  }

  #encodeKey(key: KeyIn<K>): Uint8Array | null {
    // Keyless maps (queue, stack, bloom filter, ring buffer) take a NULL key: the kernel refuses any
    // key pointer for them with EINVAL, which would hide the errno the operation really gets.
    if (this.keySize === 0) {
      if (key instanceof Uint8Array && key.length !== 0) throw new InvalidArgumentError(`map ${this.name}: has no key, got ${key.length} key bytes`);
      return null;
    }
    if (this.type === 'lpm_trie' && typeof key === 'string') {
      this.#keyBuf.set(lpmKey(key, this.keySize));
      return this.#keyBuf;
    }
    if (key instanceof Uint8Array) {
      if (key.length !== this.keySize) throw new InvalidArgumentError(`map ${this.name}: key must be ${this.keySize} bytes, got ${key.length}`);
      // Copied into the map's own buffer: the caller's array may be a fresh one per call. A loop
      // for small keys: set() leaves optimized code for a builtin.
      const buf = this.#keyBuf;
      if (key.length <= 64) for (let i = 0; i < key.length; i++) buf[i] = key[i]!;
      else buf.set(key);
      return this.#keyBuf;
    }
    // The codec writes all keySize bytes (it encodes into its own zeroed buffer, then copies).
    return this.#key.encode(key, this.#keyBuf, 0);
  }

  #encodeValue(value: V | Uint8Array | V[]): Uint8Array {
    if (!this.#perCpu) {
      if (value instanceof Uint8Array && value.length !== this.valueSize) {
        throw new InvalidArgumentError(`map ${this.name}: value must be ${this.valueSize} bytes, got ${value.length}`);
      }
      // Encoded into the reused buffer (used only within one call, like #keyBuf).
      // The codec writes all valueSize bytes, as for keys.
      const out = this.#valBuf.length === this.valueSize ? this.#valBuf : this.#valBuf.subarray(0, this.valueSize);
      return this.#value.encode(value, out, 0);
    }
    const total = this.#stride * this.#cpus;
    if (value instanceof Uint8Array) {
      if (value.length !== total) throw new InvalidArgumentError(`per-CPU map ${this.name}: raw value must be ${total} bytes (${this.#cpus} CPUs × ${this.#stride}), got ${value.length}`);
      this.#valBuf.set(value);
      return this.#valBuf;
    }
    if (!Array.isArray(value) || value.length !== this.#cpus) {
      throw new InvalidArgumentError(`per-CPU map ${this.name}: value must be an array of ${this.#cpus} values, one per possible CPU`);
    }
    const out = this.#valBuf.fill(0);
    value.forEach((v, cpu) => this.#value.encode(v, out, cpu * this.#stride));
    return out;
  }

  /** Decodes in place (codec.read), without first copying the bytes the kernel wrote. */
  #decodeValue(view: DataView, offset = 0): V {
    const value = this.#value;
    if (!this.#perCpu) return value.read(view, offset) as V;
    const out: unknown[] = new Array(this.#cpus);
    for (let cpu = 0; cpu < this.#cpus; cpu++) out[cpu] = value.read(view, offset + cpu * this.#stride);
    return out as V;
  }
}

function pickCodec(size: number, btf: Btf | undefined, typeId: number, what: string): Codec {
  if (btf && typeId) {
    try { return codecFor(btf, typeId, { path: what }); } catch { /* fall back to size-based */ }
  }
  if (size === 1 || size === 2 || size === 4 || size === 8) return intCodec(size, false);
  return rawCodec(size);
}

function batchUnsupported(errno: number): boolean {
  return errno === 22 || errno === 524 || errno === 95 || errno === 38;
}

function mapCreateError(r: number, spec: MapSpec): Error {
  const e = -r;
  const hint =
    e === 1 ? 'creating maps needs CAP_BPF (run as root)' :
    e === 22 ? `the kernel refused the definition (type ${spec.type}, key ${spec.keySize} B, value ${spec.valueSize} B, max_entries ${spec.maxEntries}, flags 0x${spec.flags.toString(16)}): check sizes and flags for this map type` :
    e === 12 ? 'out of memory: lower max_entries, or raise RLIMIT_MEMLOCK on kernels before 5.11' :
    e === 7 ? 'a size is too large for this map type' : undefined;
  return new BpfSyscallError(r, 'bpf(BPF_MAP_CREATE)', `create map ${spec.name}`, hint);
}

export function readMapInfo(fd: number): MapInfo {
  const I = bpf_map_info;
  const buf = new Uint8Array(offsetofend(I, 'map_extra'));
  objGetInfoByFd(fd, buf);
  const v = new DataView(buf.buffer);
  return {
    type: mapTypeNames.name(v.getUint32(I.type, true)),
    id: v.getUint32(I.id, true),
    keySize: v.getUint32(I.key_size, true),
    valueSize: v.getUint32(I.value_size, true),
    maxEntries: v.getUint32(I.max_entries, true),
    flags: v.getUint32(I.map_flags, true),
    name: cString(buf.subarray(I.name, I.name + I.$sizeof.name)),
    btfId: v.getUint32(I.btf_id, true),
    btfKeyTypeId: v.getUint32(I.btf_key_type_id, true),
    btfValueTypeId: v.getUint32(I.btf_value_type_id, true),
    mapExtra: v.getBigUint64(I.map_extra, true),
  };
}
