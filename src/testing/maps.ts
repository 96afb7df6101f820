/**
 * The emulated kernel's maps. Each class keeps the semantics of its kernel counterpart where a
 * program or user space can see them: which flags are accepted, which errno comes back when (a full
 * hash map answers E2BIG, an LPM trie ENOSPC, a delete on an array EINVAL), that program-side
 * per-CPU updates touch only the running CPU, that prog arrays lose their programs when user space
 * lets go of the map. Two things are deliberately simpler than the kernel: hash iteration follows
 * insertion order (the kernel's follows its hash buckets), and LRU maps evict the exact least
 * recently used entry (the kernel's LRU is approximate and per CPU).
 *
 * Methods named `sys*` are the bpf() commands (values laid out as user space sees them: per-CPU
 * values one 8-byte-aligned slot per CPU; fd maps take fds in and give ids out); the others are
 * what helpers do on behalf of a program. All return 0 or a negative errno.
 */
import { E2BIG, EBADF, EEXIST, EINVAL, ENOENT, ENOMEM, ENOSPC, ENOTSUPP, EPERM } from '../abi/errno.js';
import type { KernelObject, ObjectHost } from './objects.js';
import { MAP_TYPES, type MapType } from '../abi/constants.js';
import { bpf_map_create_flags, bpf_map_type, bpf_update_flags } from '../abi/uapi.js';

export const { BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK } = bpf_update_flags;

/** BPF_MAP_CREATE's map_flags (and the fd modes BPF_F_RDONLY/WRONLY), without their BPF_F_ prefix. */
const MF = bpf_map_create_flags;
export const F = {
  NO_PREALLOC: MF.BPF_F_NO_PREALLOC, NO_COMMON_LRU: MF.BPF_F_NO_COMMON_LRU, NUMA_NODE: MF.BPF_F_NUMA_NODE,
  RDONLY: MF.BPF_F_RDONLY, WRONLY: MF.BPF_F_WRONLY, STACK_BUILD_ID: MF.BPF_F_STACK_BUILD_ID, ZERO_SEED: MF.BPF_F_ZERO_SEED,
  RDONLY_PROG: MF.BPF_F_RDONLY_PROG, WRONLY_PROG: MF.BPF_F_WRONLY_PROG, CLONE: MF.BPF_F_CLONE, MMAPABLE: MF.BPF_F_MMAPABLE,
  PRESERVE_ELEMS: MF.BPF_F_PRESERVE_ELEMS, INNER_MAP: MF.BPF_F_INNER_MAP,
} as const;
const ACCESS = F.RDONLY | F.WRONLY | F.RDONLY_PROG | F.WRONLY_PROG;

const PAGE_SIZE = 4096;
/** KMALLOC_MAX_SIZE on x86_64 (order-10 pages). */
const KMALLOC_MAX = 1 << 22;
/** PCPU_MIN_UNIT_SIZE: the largest per-CPU value. */
const PCPU_MAX = 32768;
const MAX_BPF_STACK = 512;

/** The attributes an emulated map was created with (BPF_MAP_CREATE's, decoded). */
export interface MapParams {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  numaNode: number;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  btfVmlinuxValueTypeId: number;
  mapExtra: bigint;
}

/** What a program-side lookup finds: a value's bytes, an inner map, or nothing. */
export type Found = Uint8Array | EmuMap | null;

/** A loaded program as far as maps care (prog arrays check the program type of their members). */
export interface ProgRef extends KernelObject {
  readonly kind: 'prog';
  readonly id: number;
  readonly progType: number;
  readonly name: string;
  /** expected_attach_type at load (devmap and cpumap programs need theirs). */
  readonly expectedAttachType?: number;
}

const round8 = (n: number) => (n + 7) & ~7;

export function u32At(b: Uint8Array, o = 0): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

export function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

/** A JavaScript Map key for key bytes: a number for short keys, a latin1 string otherwise. */
export function keyId(k: Uint8Array): number | string {
  const n = k.length;
  if (n <= 6) {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + k[i]!;
    return v;
  }
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(k[i]!);
  return s;
}

/**
 * A map inside the emulated kernel (one subclass per map type): what {@link EmulatedKernel} holds
 * for each BPF_MAP_CREATE, with the kernel's semantics for lookups, updates, deletes and
 * iteration.
 */
export abstract class EmuMap implements KernelObject {
  readonly kind = 'map' as const;
  refs = 0;
  /** References from user space (fds and pins); prog arrays empty themselves when it drops to 0. */
  uref = 0;
  id = 0;
  readonly typeNum: number;
  readonly type: MapType;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly name: string;
  readonly params: MapParams;
  frozen = false;
  /** Writable mmaps still mapped (freeze is refused while there are any). */
  writableMappings = 0;
  protected readonly host: ObjectHost;

  constructor(host: ObjectHost, p: MapParams) {
    this.host = host;
    this.params = p;
    this.typeNum = p.type;
    this.type = MAP_TYPES[p.type] as MapType;
    this.keySize = p.keySize;
    this.valueSize = p.valueSize;
    this.maxEntries = p.maxEntries;
    this.flags = p.flags;
    this.name = p.name;
  }

  get perCpu(): boolean {
    return false;
  }

  /** Size of a value as bpf() copies it (all CPUs' slots for per-CPU maps). */
  get sysValueSize(): number {
    return this.perCpu ? round8(this.valueSize) * this.host.cpus : this.valueSize;
  }

  /** Arrays: the distance between elements in their memory (values are views into it); 0 for maps with a buffer per value. */
  get stride(): number {
    return 0;
  }

  /** Programs may not write (BPF_F_RDONLY_PROG). */
  get progReadOnly(): boolean {
    return (this.flags & F.RDONLY_PROG) !== 0;
  }

  sysLookup(_key: Uint8Array | null, _out: Uint8Array): number {
    return -EINVAL;
  }
  sysUpdate(_key: Uint8Array | null, _value: Uint8Array, _flags: number): number {
    return -EINVAL;
  }
  sysDelete(_key: Uint8Array | null): number {
    return -EINVAL;
  }
  sysGetNextKey(_key: Uint8Array | null, _out: Uint8Array): number {
    return -EINVAL;
  }
  sysLookupAndDelete(_key: Uint8Array | null, _out: Uint8Array, _flags: number): number {
    return -ENOTSUPP;
  }
  /** Whether BPF_MAP_*_BATCH works on this map type. */
  get batchable(): boolean {
    return false;
  }
  /** Up to `count` keys in iteration order, from position `from` on (for batch commands). */
  keysFrom(from: number, count: number): Uint8Array[] {
    return this.keys().slice(from, from + count);
  }

  /** Keys in iteration order. */
  keys(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let k: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(this.keySize);
      if (this.sysGetNextKey(k, next) !== 0) return out;
      out.push(next);
      k = next;
      if (out.length > this.maxEntries + 1) return out;
    }
  }

  lookup(_key: Uint8Array, _cpu: number): Found {
    return null;
  }
  update(_key: Uint8Array, _value: Uint8Array, _flags: number, _cpu: number): number {
    return -EINVAL;
  }
  delete(_key: Uint8Array): number {
    return -EINVAL;
  }
  push(_value: Uint8Array, _flags: number): number {
    return -EINVAL;
  }
  pop(_out: Uint8Array): number {
    return -EINVAL;
  }
  peek(_out: Uint8Array): number {
    return -EINVAL;
  }
  /** Every entry as a program sees it on `cpu`, for bpf_for_each_map_elem. */
  forEach(_cpu: number): Iterable<[Uint8Array, Uint8Array]> {
    return [];
  }

  /** User space dropped its last fd and pin. */
  releaseUref(): void {}

  dispose(): void {}
}

// ---- arrays -------------------------------------------------------------------------------------

/** Bytes of array memory allocated at a time, on first touch: memory follows what a test uses, not max_entries. */
const ARRAY_CHUNK = 1 << 16;

/** An emulated array or per-CPU array map: values at indexes, allocated in chunks as they are touched. */
export class ArrayMap extends EmuMap {
  readonly #elem: number;
  /** mmapable arrays (global data): one page-rounded buffer, what user space maps. */
  readonly #flat: Uint8Array | undefined;
  /** Other arrays: chunks of ARRAY_CHUNK bytes (or one element when larger) per CPU, made on first touch. */
  readonly #chunks: Map<number, Uint8Array>[];
  readonly #perChunk: number;
  readonly #percpu: boolean;
  static readonly #zero = new Uint8Array(1 << 16);

  constructor(host: ObjectHost, p: MapParams) {
    super(host, p);
    this.#percpu = p.type === bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY;
    this.#elem = round8(p.valueSize);
    const cpus = this.#percpu ? host.cpus : 1;
    if (p.flags & F.MMAPABLE) this.#flat = new Uint8Array(Math.ceil((this.#elem * p.maxEntries) / PAGE_SIZE) * PAGE_SIZE);
    this.#perChunk = Math.max(1, Math.floor(ARRAY_CHUNK / this.#elem));
    this.#chunks = Array.from({ length: cpus }, () => new Map());
  }

  /** The memory user space maps (BPF_F_MMAPABLE arrays only). */
  get storage(): Uint8Array[] {
    if (!this.#flat) throw new Error(`map ${this.name} is not mmapable`);
    return [this.#flat];
  }

  override get stride(): number {
    return this.#elem;
  }

  override get perCpu(): boolean {
    return this.#percpu;
  }

  override get batchable(): boolean {
    return true;
  }

  /** The value of `index` on `cpu`: a view into the backing memory, which is allocated if need be. */
  value(index: number, cpu = 0): Uint8Array {
    if (this.#flat) return this.#flat.subarray(index * this.#elem, index * this.#elem + this.valueSize);
    const chunks = this.#chunks[this.#percpu ? cpu : 0]!;
    const c = Math.floor(index / this.#perChunk);
    let chunk = chunks.get(c);
    if (!chunk) chunks.set(c, (chunk = new Uint8Array(this.#perChunk * this.#elem)));
    const at = (index % this.#perChunk) * this.#elem;
    return chunk.subarray(at, at + this.valueSize);
  }

  /** The value for reading only: zeros (nothing allocated) when its memory was never touched. */
  #read(index: number, cpu: number): Uint8Array {
    if (this.#flat) return this.value(index, cpu);
    const chunk = this.#chunks[this.#percpu ? cpu : 0]!.get(Math.floor(index / this.#perChunk));
    if (!chunk) return this.valueSize <= ArrayMap.#zero.length ? ArrayMap.#zero.subarray(0, this.valueSize) : new Uint8Array(this.valueSize);
    const at = (index % this.#perChunk) * this.#elem;
    return chunk.subarray(at, at + this.valueSize);
  }

  /** Bytes of value memory allocated so far (all CPUs). */
  get allocatedBytes(): number {
    if (this.#flat) return this.#flat.length;
    let n = 0;
    for (const m of this.#chunks) for (const c of m.values()) n += c.length;
    return n;
  }

  override sysLookup(key: Uint8Array | null, out: Uint8Array): number {
    const i = key ? u32At(key) : this.maxEntries;
    if (i >= this.maxEntries) return -ENOENT;
    if (!this.#percpu) {
      out.set(this.#read(i, 0));
      return 0;
    }
    const stride = this.#elem;
    for (let c = 0; c < this.host.cpus; c++) {
      out.fill(0, c * stride, (c + 1) * stride);
      out.set(this.#read(i, c), c * stride);
    }
    return 0;
  }

  override sysUpdate(key: Uint8Array | null, value: Uint8Array, flags: number): number {
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
    const i = key ? u32At(key) : this.maxEntries;
    if (i >= this.maxEntries) return -E2BIG;
    if (flags & BPF_NOEXIST) return -EEXIST;
    if (!this.#percpu) {
      this.value(i).set(value.subarray(0, this.valueSize));
      return 0;
    }
    for (let c = 0; c < this.host.cpus; c++) {
      this.value(i, c).set(value.subarray(c * this.#elem, c * this.#elem + this.valueSize));
    }
    return 0;
  }

  override sysDelete(): number {
    return -EINVAL;
  }

  override sysGetNextKey(key: Uint8Array | null, out: Uint8Array): number {
    return arrayNextKey(key, out, this.maxEntries);
  }

  override keysFrom(from: number, count: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = from; i < Math.min(this.maxEntries, from + count); i++) {
      const k = new Uint8Array(4);
      putU32(k, 0, i);
      out.push(k);
    }
    return out;
  }

  override lookup(key: Uint8Array, cpu: number): Found {
    const i = u32At(key);
    return i < this.maxEntries ? this.value(i, cpu) : null;
  }

  override update(key: Uint8Array, value: Uint8Array, flags: number, cpu: number): number {
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
    const i = u32At(key);
    if (i >= this.maxEntries) return -E2BIG;
    if (flags & BPF_NOEXIST) return -EEXIST;
    this.value(i, cpu).set(value.subarray(0, this.valueSize));
    return 0;
  }

  override *forEach(cpu: number): Iterable<[Uint8Array, Uint8Array]> {
    for (let i = 0; i < this.maxEntries; i++) {
      const k = new Uint8Array(4);
      putU32(k, 0, i);
      yield [k, this.value(i, cpu)];
    }
  }
}

/** get_next_key of array-like maps: from no key (or one past the end) the first index, then the next, ENOENT after the last. */
export function arrayNextKey(key: Uint8Array | null, out: Uint8Array, max: number): number {
  const i = key ? u32At(key) : max;
  if (i >= max) {
    putU32(out, 0, 0);
    return 0;
  }
  if (i === max - 1) return -ENOENT;
  putU32(out, 0, i + 1);
  return 0;
}

/** prog_array, perf_event_array, array_of_maps, cgroup_array: slots holding objects by fd. */
export class FdArrayMap extends EmuMap {
  readonly slots: (KernelObject | null)[];
  /** Program type of the first program that used or entered a prog array. */
  ownerProgType = 0;
  readonly innerMeta: EmuMap | undefined;

  constructor(host: ObjectHost, p: MapParams, innerMeta?: EmuMap) {
    super(host, p);
    this.slots = new Array(p.maxEntries).fill(null);
    this.innerMeta = innerMeta;
  }

  override sysLookup(key: Uint8Array | null, out: Uint8Array): number {
    if (this.type === 'perf_event_array' || this.type === 'cgroup_array') return -ENOTSUPP;
    const i = key ? u32At(key) : this.maxEntries;
    const obj = i < this.maxEntries ? this.slots[i] : null;
    if (!obj) return -ENOENT;
    putU32(out, 0, obj.id);
    return 0;
  }

  override sysUpdate(key: Uint8Array | null, value: Uint8Array, flags: number): number {
    if (flags !== BPF_ANY) return -EINVAL;
    const i = key ? u32At(key) : this.maxEntries;
    if (i >= this.maxEntries) return -E2BIG;
    const obj = this.host.objectOfFd(u32At(value));
    if (!obj) return -EBADF;
    const r = this.accepts(obj);
    if (r !== 0) return r;
    this.#set(i, obj);
    return 0;
  }

  /** 0 when `obj` may go into a slot of this map, else the kernel's errno. */
  accepts(obj: KernelObject): number {
    switch (this.type) {
      case 'prog_array': {
        if (obj.kind !== 'prog') return -EINVAL;
        return this.compatible(obj as ProgRef) ? 0 : -EINVAL;
      }
      case 'perf_event_array':
        return obj.kind === 'perf_event' ? 0 : -EBADF;
      case 'array_of_maps':
        if (obj.kind !== 'map') return -EINVAL;
        return metaEqual(this.innerMeta!, obj as EmuMap, this.host.behaviour.percpuArrayInnerSized) ? 0 : -EINVAL;
      default:
        return -EINVAL;
    }
  }

  /** A prog array takes the type of the first program that uses it or enters it. */
  compatible(prog: ProgRef): boolean {
    if (this.ownerProgType === 0) {
      this.ownerProgType = prog.progType;
      return true;
    }
    return this.ownerProgType === prog.progType;
  }

  #set(i: number, obj: KernelObject | null): void {
    const old = this.slots[i];
    if (obj) this.host.acquire(obj);
    this.slots[i] = obj;
    if (old) this.host.release(old);
  }

  override sysDelete(key: Uint8Array | null): number {
    const i = key ? u32At(key) : this.maxEntries;
    if (i >= this.maxEntries) return -E2BIG;
    if (!this.slots[i]) return -ENOENT;
    this.#set(i, null);
    return 0;
  }

  override sysGetNextKey(key: Uint8Array | null, out: Uint8Array): number {
    return arrayNextKey(key, out, this.maxEntries);
  }

  override lookup(key: Uint8Array): Found {
    if (this.type !== 'array_of_maps') return null;
    const i = u32At(key);
    return i < this.maxEntries ? (this.slots[i] as EmuMap | null) : null;
  }

  override releaseUref(): void {
    if (this.type === 'prog_array' || this.type === 'perf_event_array') {
      for (let i = 0; i < this.slots.length; i++) if (this.slots[i]) this.#set(i, null);
    }
  }

  override dispose(): void {
    for (let i = 0; i < this.slots.length; i++) if (this.slots[i]) this.#set(i, null);
  }
}

/**
 * The inner-map check of maps of maps (bpf_map_meta_equal): type, key and value size and flags
 * alike; max_entries too, but only for arrays (array_map_meta_equal; per-CPU arrays where
 * `percpuSized`, see version.ts) and not when the template has BPF_F_INNER_MAP.
 */
export function metaEqual(meta: EmuMap, m: EmuMap, percpuSized: boolean): boolean {
  const sizedByTemplate = (meta.type === 'array' || (percpuSized && meta.type === 'percpu_array')) && (meta.flags & F.INNER_MAP) === 0;
  return meta.typeNum === m.typeNum && meta.keySize === m.keySize && meta.valueSize === m.valueSize &&
    meta.flags === m.flags && (!sizedByTemplate || meta.maxEntries === m.maxEntries);
}

// ---- hash maps ----------------------------------------------------------------------------------

interface HashEntry {
  key: Uint8Array;
  /** The value, or one per CPU. */
  value: Uint8Array | null;
  pcpu: Uint8Array[] | null;
  /** hash_of_maps: the inner map. */
  inner: EmuMap | null;
}

/** hash, percpu_hash, lru_hash, lru_percpu_hash, hash_of_maps. */
export class HashMap extends EmuMap {
  readonly #entries = new Map<number | string, HashEntry>();
  /** LRU maps: least recently used first. */
  readonly #recency: Map<number | string, HashEntry> | undefined;
  readonly #percpu: boolean;
  readonly innerMeta: EmuMap | undefined;
  /** Iteration order and each key's place in it; dropped whenever an entry is added or removed. */
  #order: { entries: HashEntry[]; at: Map<number | string, number> } | undefined;

  constructor(host: ObjectHost, p: MapParams, innerMeta?: EmuMap) {
    super(host, p);
    const t = this.type;
    this.#percpu = t === 'percpu_hash' || t === 'lru_percpu_hash';
    this.#recency = t === 'lru_hash' || t === 'lru_percpu_hash' ? new Map() : undefined;
    this.innerMeta = innerMeta;
  }

  override get perCpu(): boolean {
    return this.#percpu;
  }

  override get batchable(): boolean {
    return true;
  }

  get size(): number {
    return this.#entries.size;
  }

  #touch(id: number | string, e: HashEntry): void {
    const r = this.#recency;
    if (!r) return;
    r.delete(id);
    r.set(id, e);
  }

  #remove(id: number | string, e: HashEntry): void {
    this.#order = undefined;
    this.#entries.delete(id);
    this.#recency?.delete(id);
    if (e.inner) this.host.release(e.inner);
  }

  /**
   * Room for one more element. An LRU map takes a node before it looks at the key (as the kernel
   * does), so a full LRU map evicts its least recently used entry even when the update then fails
   * or replaces an existing key.
   */
  #reserve(): number {
    if (this.#entries.size < this.maxEntries) return 0;
    const r = this.#recency;
    if (!r) return -E2BIG;
    const first = r.entries().next();
    if (first.done) return -ENOMEM;
    const [id, e] = first.value;
    this.#remove(id, e);
    return 0;
  }

  #copyOut(e: HashEntry, out: Uint8Array): void {
    if (this.type === 'hash_of_maps') {
      putU32(out, 0, e.inner!.id);
      return;
    }
    if (!this.#percpu) {
      out.set(e.value!);
      return;
    }
    const stride = round8(this.valueSize);
    for (let c = 0; c < this.host.cpus; c++) {
      out.fill(0, c * stride, (c + 1) * stride);
      out.set(e.pcpu![c]!, c * stride);
    }
  }

  override sysLookup(key: Uint8Array | null, out: Uint8Array): number {
    if (!key) return -EINVAL;
    const e = this.#entries.get(keyId(key));
    if (!e) return -ENOENT;
    this.#copyOut(e, out);
    return 0;
  }

  override sysUpdate(key: Uint8Array | null, value: Uint8Array, flags: number): number {
    if (!key) return -EINVAL;
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
    let inner: EmuMap | null = null;
    if (this.type === 'hash_of_maps') {
      const obj = this.host.objectOfFd(u32At(value));
      if (!obj) return -EBADF;
      if (obj.kind !== 'map' || !metaEqual(this.innerMeta!, obj as EmuMap, this.host.behaviour.percpuArrayInnerSized)) return -EINVAL;
      inner = obj as EmuMap;
    }
    return this.#store(key, flags, (e) => {
      if (inner) {
        this.host.acquire(inner);
        const old = e.inner;
        e.inner = inner;
        if (old) this.host.release(old);
      } else if (!this.#percpu) {
        e.value!.set(value.subarray(0, this.valueSize));
      } else {
        const stride = round8(this.valueSize);
        for (let c = 0; c < this.host.cpus; c++) e.pcpu![c]!.set(value.subarray(c * stride, c * stride + this.valueSize));
      }
    });
  }

  /**
   * Insert or replace `key`, checking flags and room as htab_map_update_elem does; `fill` writes the
   * value into the (new or existing) entry.
   */
  #store(key: Uint8Array, flags: number, fill: (e: HashEntry) => void): number {
    const f = flags & ~BPF_F_LOCK;
    const id = keyId(key);
    const lru = this.#recency !== undefined;
    // The kernel takes an LRU node first (evicting if needed), except for a per-CPU LRU update with BPF_EXIST.
    if (lru && !(this.#percpu && f === BPF_EXIST)) {
      const r = this.#reserve();
      if (r < 0) return r;
    }
    const old = this.#entries.get(id);
    if (old && f === BPF_NOEXIST) return -EEXIST;
    if (!old && f === BPF_EXIST) return -ENOENT;
    if (old) {
      fill(old);
      this.#touch(id, old);
      return 0;
    }
    if (!lru) {
      const r = this.#reserve();
      if (r < 0) return r;
    }
    const e: HashEntry = { key: key.slice(), value: null, pcpu: null, inner: null };
    if (this.type !== 'hash_of_maps') {
      if (this.#percpu) e.pcpu = Array.from({ length: this.host.cpus }, () => new Uint8Array(this.valueSize));
      else e.value = new Uint8Array(this.valueSize);
    }
    fill(e);
    this.#order = undefined;
    this.#entries.set(id, e);
    this.#touch(id, e);
    return 0;
  }

  override sysDelete(key: Uint8Array | null): number {
    if (!key) return -EINVAL;
    const id = keyId(key);
    const e = this.#entries.get(id);
    if (!e) return -ENOENT;
    this.#remove(id, e);
    return 0;
  }

  override sysGetNextKey(key: Uint8Array | null, out: Uint8Array): number {
    // An index of the iteration order, rebuilt only after the map changed, keeps a walk linear.
    this.#order ??= this.#index();
    const { entries, at } = this.#order;
    const i = key ? at.get(keyId(key)) : undefined;
    const next = entries[i === undefined ? 0 : i + 1];
    if (!next) return -ENOENT;
    out.set(next.key);
    return 0;
  }

  override sysLookupAndDelete(key: Uint8Array | null, out: Uint8Array, flags: number): number {
    if (flags & ~BPF_F_LOCK) return -EINVAL;
    if (this.type === 'hash_of_maps') return -ENOTSUPP;
    if (!key) return -EINVAL;
    const id = keyId(key);
    const e = this.#entries.get(id);
    if (!e) return -ENOENT;
    this.#copyOut(e, out);
    this.#remove(id, e);
    return 0;
  }

  override keys(): Uint8Array[] {
    return [...this.#entries.values()].map((e) => e.key.slice());
  }

  override keysFrom(from: number, count: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (from === 0) {
      for (const e of this.#entries.values()) {
        if (out.length >= count) break;
        out.push(e.key.slice());
      }
      return out;
    }
    this.#order ??= this.#index();
    for (let i = from; i < Math.min(this.#order.entries.length, from + count); i++) out.push(this.#order.entries[i]!.key.slice());
    return out;
  }

  #index(): { entries: HashEntry[]; at: Map<number | string, number> } {
    const entries = [...this.#entries.values()];
    return { entries, at: new Map(entries.map((e, i) => [keyId(e.key), i])) };
  }

  override lookup(key: Uint8Array, cpu: number): Found {
    const id = keyId(key);
    const e = this.#entries.get(id);
    if (!e) return null;
    this.#touch(id, e);
    if (e.inner) return e.inner;
    return this.#percpu ? e.pcpu![cpu]! : e.value!;
  }

  /** A program's update: per-CPU maps write this CPU's value (zeroing the others on insert). */
  override update(key: Uint8Array, value: Uint8Array, flags: number, cpu: number): number {
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
    const v = value.slice(0, this.valueSize);
    return this.#store(key, flags, (e) => {
      if (this.#percpu) e.pcpu![cpu]!.set(v);
      else e.value!.set(v);
    });
  }

  override delete(key: Uint8Array): number {
    return this.sysDelete(key);
  }

  override *forEach(cpu: number): Iterable<[Uint8Array, Uint8Array]> {
    for (const e of [...this.#entries.values()]) {
      if (e.inner) continue;
      yield [e.key, this.#percpu ? e.pcpu![cpu]! : e.value!];
    }
  }

  override dispose(): void {
    for (const [id, e] of [...this.#entries]) this.#remove(id, e);
  }
}

// ---- LPM trie -----------------------------------------------------------------------------------

interface LpmEntry {
  /** The key as it was stored (bits past the prefix included, as the kernel keeps them). */
  key: Uint8Array;
  prefixlen: number;
  value: Uint8Array;
}

/**
 * Longest-prefix-match trie. Keys are `{ u32 prefixlen; u8 data[] }`. Lookups (from programs and
 * from user space alike, as in the kernel) find the longest stored prefix that matches the first
 * `prefixlen` bits of the key; updates and deletes match the prefix exactly.
 */
export class LpmTrie extends EmuMap {
  readonly #entries = new Map<string, LpmEntry>();
  readonly #dataSize: number;
  readonly #maxPrefix: number;
  /** Iteration order, dropped on every change. */
  #order: LpmEntry[] | undefined;

  constructor(host: ObjectHost, p: MapParams) {
    super(host, p);
    this.#dataSize = p.keySize - 4;
    this.#maxPrefix = this.#dataSize * 8;
  }

  /** The data's first `plen` bits, as a Map key. */
  #prefixId(data: Uint8Array, plen: number): string {
    let s = `${plen}:`;
    const full = plen >> 3;
    for (let i = 0; i < full; i++) s += String.fromCharCode(data[4 + i]!);
    const rest = plen & 7;
    if (rest) s += String.fromCharCode(data[4 + full]! & (0xff << (8 - rest)) & 0xff);
    return s;
  }

  #longest(key: Uint8Array): LpmEntry | undefined {
    const plen = u32At(key);
    if (plen > this.#maxPrefix) return undefined;
    for (let l = plen; l >= 0; l--) {
      const e = this.#entries.get(this.#prefixId(key, l));
      if (e) return e;
    }
    return undefined;
  }

  override sysLookup(key: Uint8Array | null, out: Uint8Array): number {
    if (!key) return -EINVAL;
    const e = this.#longest(key);
    if (!e) return -ENOENT;
    out.set(e.value);
    return 0;
  }

  override sysUpdate(key: Uint8Array | null, value: Uint8Array, flags: number): number {
    return key ? this.update(key, value, flags) : -EINVAL;
  }

  override sysDelete(key: Uint8Array | null): number {
    return key ? this.delete(key) : -EINVAL;
  }

  override sysGetNextKey(key: Uint8Array | null, out: Uint8Array): number {
    const order = (this.#order ??= this.#ordered());
    if (order.length === 0) return -ENOENT;
    let at = -1;
    if (key && u32At(key) <= this.#maxPrefix) {
      const id = this.#prefixId(key, u32At(key));
      at = order.findIndex((e) => this.#prefixId(e.key, e.prefixlen) === id);
    }
    if (at < 0) {
      out.set(order[0]!.key);
      return 0;
    }
    const next = order[at + 1];
    if (!next) return -ENOENT;
    out.set(next.key);
    return 0;
  }

  /** The kernel walks its trie in post-order: more specific prefixes first, 0-bits before 1-bits. */
  #ordered(): LpmEntry[] {
    const bit = (e: LpmEntry, i: number) => (e.key[4 + (i >> 3)]! >> (7 - (i & 7))) & 1;
    return [...this.#entries.values()].sort((a, b) => {
      const n = Math.min(a.prefixlen, b.prefixlen);
      for (let i = 0; i < n; i++) {
        const d = bit(a, i) - bit(b, i);
        if (d !== 0) return d;
      }
      return b.prefixlen - a.prefixlen;
    });
  }

  override lookup(key: Uint8Array): Found {
    return this.#longest(key)?.value ?? null;
  }

  override update(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (flags > BPF_EXIST) return -EINVAL;
    const plen = u32At(key);
    if (plen > this.#maxPrefix) return -EINVAL;
    const id = this.#prefixId(key, plen);
    const old = this.#entries.get(id);
    if (old && flags === BPF_NOEXIST) return -EEXIST;
    if (!old && flags === BPF_EXIST) return -ENOENT;
    if (!old && this.#entries.size >= this.maxEntries) return -ENOSPC;
    this.#order = undefined;
    this.#entries.set(id, { key: key.slice(0, this.keySize), prefixlen: plen, value: value.slice(0, this.valueSize) });
    return 0;
  }

  override delete(key: Uint8Array): number {
    const plen = u32At(key);
    if (plen > this.#maxPrefix) return -EINVAL;
    const id = this.#prefixId(key, plen);
    if (!this.#entries.delete(id)) return -ENOENT;
    this.#order = undefined;
    return 0;
  }
}

// ---- queue, stack, bloom filter -----------------------------------------------------------------

export class QueueStack extends EmuMap {
  readonly #items: Uint8Array[] = [];
  readonly #lifo: boolean;

  constructor(host: ObjectHost, p: MapParams) {
    super(host, p);
    this.#lifo = this.type === 'stack';
  }

  get length(): number {
    return this.#items.length;
  }

  override sysLookup(_key: Uint8Array | null, out: Uint8Array): number {
    return this.peek(out);
  }
  override sysUpdate(_key: Uint8Array | null, value: Uint8Array, flags: number): number {
    return this.push(value, flags);
  }
  override sysDelete(): number {
    return -EINVAL;
  }
  override sysGetNextKey(): number {
    return -EINVAL;
  }
  override sysLookupAndDelete(_key: Uint8Array | null, out: Uint8Array, flags: number): number {
    if (flags) return -EINVAL;
    return this.pop(out);
  }

  override push(value: Uint8Array, flags: number): number {
    if (flags & BPF_NOEXIST || flags > BPF_EXIST) return -EINVAL;
    if (this.#items.length >= this.maxEntries) {
      if (flags !== BPF_EXIST) return -E2BIG;
      this.#items.shift(); // both drop their oldest element
    }
    this.#items.push(value.slice(0, this.valueSize));
    return 0;
  }

  override pop(out: Uint8Array): number {
    const v = this.#lifo ? this.#items.pop() : this.#items.shift();
    if (!v) {
      out.fill(0, 0, this.valueSize);
      return -ENOENT;
    }
    out.set(v);
    return 0;
  }

  override peek(out: Uint8Array): number {
    const v = this.#lifo ? this.#items[this.#items.length - 1] : this.#items[0];
    if (!v) {
      out.fill(0, 0, this.valueSize);
      return -ENOENT;
    }
    out.set(v);
    return 0;
  }
}

/** A bloom filter without false positives (a set): peek answers 0 for values pushed, -ENOENT otherwise. */
export class BloomFilter extends EmuMap {
  readonly #set = new Set<number | string>();

  override sysLookup(_key: Uint8Array | null, value: Uint8Array): number {
    return this.peek(value);
  }
  override sysUpdate(_key: Uint8Array | null, value: Uint8Array, flags: number): number {
    return this.push(value, flags);
  }
  override push(value: Uint8Array, flags: number): number {
    if (flags !== BPF_ANY) return -EINVAL;
    this.#set.add(keyId(value.subarray(0, this.valueSize)));
    return 0;
  }
  override peek(value: Uint8Array): number {
    return this.#set.has(keyId(value.subarray(0, this.valueSize))) ? 0 : -ENOENT;
  }
}

// ---- creation -----------------------------------------------------------------------------------

export interface CreateContext {
  host: ObjectHost;
  /** Device, CPU and socket maps (devmaps.ts, which builds on this module). */
  netMap(type: string, p: MapParams): EmuMap | number;
  /** The template of a map of maps (BPF_MAP_CREATE's inner_map_fd), already resolved. */
  innerMap: EmuMap | undefined;
  /** Ring buffers live in their own module; the kernel passes a factory. */
  ringbuf: (p: MapParams) => EmuMap;
}

/** Validates a BPF_MAP_CREATE as the kernel's map_alloc_check functions do; an EmuMap or a negative errno. */
export function createMap(p: MapParams, ctx: CreateContext): EmuMap | number {
  const { host } = ctx;
  const t = MAP_TYPES[p.type] as MapType | undefined;
  if (!t || t === 'unspec') return -EINVAL;
  if (!/^[A-Za-z0-9_.]*$/.test(p.name)) return -EINVAL;
  if ((p.flags & F.RDONLY && p.flags & F.WRONLY) || (p.flags & F.RDONLY_PROG && p.flags & F.WRONLY_PROG)) return -EINVAL;
  if (p.numaNode && !(p.flags & F.NUMA_NODE)) return -EINVAL;
  switch (t) {
    case 'array':
    case 'percpu_array':
    case 'prog_array':
    case 'perf_event_array':
    case 'array_of_maps':
    case 'cgroup_array': {
      const percpu = t === 'percpu_array';
      const fd = t !== 'array' && t !== 'percpu_array';
      if (p.flags & ~(F.NUMA_NODE | F.MMAPABLE | ACCESS | F.PRESERVE_ELEMS | F.INNER_MAP)) return -EINVAL;
      if (p.keySize !== 4 || p.valueSize === 0 || p.maxEntries === 0) return -EINVAL;
      if (percpu && p.flags & F.MMAPABLE) return -EINVAL;
      if (t !== 'perf_event_array' && p.flags & F.PRESERVE_ELEMS) return -EINVAL;
      if (fd && (p.valueSize !== 4 || p.flags & (F.RDONLY_PROG | F.WRONLY_PROG | F.MMAPABLE))) return -EINVAL;
      if (p.valueSize > KMALLOC_MAX) return -E2BIG;
      if (percpu && round8(p.valueSize) > PCPU_MAX) return -E2BIG;
      if (round8(p.valueSize) * p.maxEntries * (percpu ? host.cpus : 1) > 1 << 30) return -ENOMEM;
      if (t === 'array_of_maps') {
        if (!ctx.innerMap) return -EBADF;
        if (isMapInMap(ctx.innerMap)) return -EINVAL;
        return new FdArrayMap(host, p, ctx.innerMap);
      }
      if (fd) return new FdArrayMap(host, p);
      return new ArrayMap(host, p);
    }
    case 'hash':
    case 'percpu_hash':
    case 'lru_hash':
    case 'lru_percpu_hash':
    case 'hash_of_maps': {
      const lru = t === 'lru_hash' || t === 'lru_percpu_hash';
      const percpu = t === 'percpu_hash' || t === 'lru_percpu_hash';
      if (p.flags & ~(F.NO_PREALLOC | F.NO_COMMON_LRU | F.NUMA_NODE | ACCESS | F.ZERO_SEED)) return -EINVAL;
      if (!lru && p.flags & F.NO_COMMON_LRU) return -EINVAL;
      if (lru && p.flags & F.NO_PREALLOC) return -ENOTSUPP;
      if (p.maxEntries === 0 || p.keySize === 0 || p.valueSize === 0) return -EINVAL;
      if (p.keySize + p.valueSize >= KMALLOC_MAX - MAX_BPF_STACK - 64) return -E2BIG;
      if (percpu && round8(p.valueSize) > PCPU_MAX) return -E2BIG;
      if (t === 'hash_of_maps') {
        if (p.valueSize !== 4) return -EINVAL;
        if (!ctx.innerMap) return -EBADF;
        if (isMapInMap(ctx.innerMap)) return -EINVAL;
        return new HashMap(host, p, ctx.innerMap);
      }
      return new HashMap(host, p);
    }
    case 'lpm_trie':
      if (p.maxEntries === 0 || !(p.flags & F.NO_PREALLOC) || p.flags & ~(F.NO_PREALLOC | F.NUMA_NODE | ACCESS)) return -EINVAL;
      if (p.keySize < 5 || p.keySize > 4 + 256 || p.valueSize < 1 || p.valueSize > KMALLOC_MAX) return -EINVAL;
      return new LpmTrie(host, p);
    case 'queue':
    case 'stack':
      if (p.flags & ~(F.NUMA_NODE | ACCESS)) return -EINVAL;
      if (p.keySize !== 0 || p.valueSize === 0 || p.maxEntries === 0) return -EINVAL;
      if (p.valueSize > KMALLOC_MAX) return -E2BIG;
      return new QueueStack(host, p);
    case 'bloom_filter':
      if (p.flags & ~(F.NUMA_NODE | F.ZERO_SEED | ACCESS) || p.keySize !== 0 || p.valueSize === 0 || p.maxEntries === 0) return -EINVAL;
      if ((p.mapExtra & ~0xfn) !== 0n) return -EINVAL;
      return new BloomFilter(host, p);
    case 'devmap':
    case 'devmap_hash':
    case 'cpumap':
    case 'xskmap':
    case 'sockmap':
    case 'sockhash':
      return ctx.netMap(t, p);
    case 'ringbuf':
      if (p.flags & ~F.NUMA_NODE) return -EINVAL;
      if (p.keySize !== 0 || p.valueSize !== 0 || p.maxEntries === 0 || (p.maxEntries & (p.maxEntries - 1)) !== 0 || p.maxEntries % PAGE_SIZE !== 0) return -EINVAL;
      return ctx.ringbuf(p);
    default:
      return -EINVAL;
  }
}

function isMapInMap(m: EmuMap): boolean {
  return m.typeNum === bpf_map_type.BPF_MAP_TYPE_ARRAY_OF_MAPS || m.typeNum === bpf_map_type.BPF_MAP_TYPE_HASH_OF_MAPS;
}

/** Whether user space may read (lookup) or write (update/delete) a map through an fd opened with `fdFlags`. */
export function sysAccess(map: EmuMap, fdFlags: number, write: boolean): number {
  if (write) {
    if (map.flags & F.RDONLY || fdFlags & F.RDONLY || map.frozen) return -EPERM;
  } else if (map.flags & F.WRONLY || fdFlags & F.WRONLY) {
    return -EPERM;
  }
  return 0;
}
