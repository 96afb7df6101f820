/**
 * Stand-ins for code that talks to maps and programs but needs no bytecode run (as goebpf's
 * MockMap/MockProgram): the same method names and behaviour as BpfMap and Program, in memory, with
 * the calls recorded. Errors are the library's own (BpfSyscallError with the errno the kernel
 * would give: EEXIST for 'noexist' on a present key, E2BIG when full, EPERM after freeze), so code
 * that handles them is tested too.
 *
 * Code typed against `MapLike` / `ProgramLike` (the public surface of BpfMap / Program) accepts
 * both the real objects and these.
 */
import { BpfSyscallError, ClosedError, InvalidArgumentError } from '../errors.js';
import type { BpfMap, MapInfo, UpdateFlags } from '../objects/map.js';
import type { Program, ProgramInfo, TestRunOptions, TestRunResult } from '../objects/program.js';
import type { MapType, ProgType } from '../abi/constants.js';

/** The public surface of BpfMap. */
export type MapLike<K = unknown, V = unknown> = Pick<BpfMap<K, V>,
  'name' | 'type' | 'keySize' | 'valueSize' | 'maxEntries' | 'flags' | 'fd' | 'closed' | 'isPerCpu' | 'lookup' |
  'lookupBytes' | 'update' | 'delete' | 'lookupAndDelete' | 'push' | 'pop' | 'peek' | 'keys' | 'entries' | 'values' |
  'lookupBatch' | 'lookupAndDeleteBatch' | 'updateBatch' | 'deleteBatch' | 'freeze' | 'pin' | 'unpin' | 'pinnedPath' |
  'info' | 'close' | typeof Symbol.iterator | typeof Symbol.dispose>;

/** The public surface of Program. */
export type ProgramLike = Pick<Program,
  'name' | 'type' | 'sectionName' | 'attachType' | 'attachTarget' | 'verifierLog' | 'fd' | 'closed' | 'testRun' | 'info' |
  'translatedInstructions' | 'pin' | 'unpin' | 'pinnedPath' | 'close' | typeof Symbol.dispose>;

/** Options of {@link MockMap}: its name, type, sizes, flags and initial entries. */
export interface MockMapOptions<K, V> {
  name?: string;
  type?: MapType;
  keySize?: number;
  valueSize?: number;
  maxEntries?: number;
  flags?: number;
  /** Initial contents. */
  entries?: Iterable<readonly [K, V]>;
}

/** One call a {@link MockMap} recorded: the operation, key, value and flags. */
export type MapCall = { op: string; key?: unknown; value?: unknown; flags?: UpdateFlags };

let nextMockFd = 3_000_000;
let nextMockId = 1;

function canonical(v: unknown): string {
  if (v instanceof Uint8Array) return `b:${Buffer.from(v).toString('hex')}`;
  if (typeof v === 'bigint') return `n:${v}`;
  if (typeof v === 'number') return `n:${v}`;
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${k}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return `${typeof v}:${String(v)}`;
}

const KEYLESS = new Set<MapType>(['queue', 'stack', 'bloom_filter']);

/** What describes a map (name, type, sizes, flags): declared once, on BpfMap. */
export type MapDescription = Pick<BpfMap, 'name' | 'type' | 'keySize' | 'valueSize' | 'maxEntries' | 'flags'>;

// MockMap's description fields are BpfMap's (merged in here, set in the constructor).
export interface MockMap<K = unknown, V = unknown> extends MapDescription {}

/** An in-memory map with BpfMap's methods. Keys are compared by value (numbers, bigints, bytes, objects). */
export class MockMap<K = unknown, V = unknown> implements MapLike<K, V> {
  /** Every call, in order. */
  readonly calls: MapCall[] = [];
  readonly #entries = new Map<string, [K, V]>();
  readonly #queue: V[] = [];
  readonly #fd = nextMockFd++;
  readonly #id = nextMockId++;
  #closed = false;
  #frozen = false;
  #pinned: string | undefined;

  constructor(options: MockMapOptions<K, V> = {}) {
    const type = options.type ?? 'hash';
    const description: MapDescription = {
      name: options.name ?? 'mock', type, keySize: options.keySize ?? (KEYLESS.has(type) ? 0 : 4), valueSize: options.valueSize ?? 8,
      maxEntries: options.maxEntries ?? 1024, flags: options.flags ?? 0,
    };
    Object.assign(this, description);
    for (const [k, v] of options.entries ?? []) this.#entries.set(canonical(k), [k, v]);
  }

  get fd(): number {
    this.#check();
    return this.#fd;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get isPerCpu(): boolean {
    return this.type.includes('percpu');
  }

  get pinnedPath(): string | undefined {
    return this.#pinned;
  }

  #check(): void {
    if (this.#closed) throw new ClosedError(`map ${this.name}`);
  }

  #writable(cmd: string): void {
    if (this.#frozen) throw new BpfSyscallError(-1, `bpf(BPF_${cmd})`, undefined, 'the map may be frozen or read-only from user space');
  }

  lookup(key: K | Uint8Array): V | undefined {
    this.#check();
    this.calls.push({ op: 'lookup', key });
    return this.#entries.get(canonical(key))?.[1];
  }

  lookupBytes(key: K | Uint8Array): Uint8Array | undefined {
    const v = this.lookup(key);
    if (v === undefined) return undefined;
    if (v instanceof Uint8Array) return v.slice();
    throw new InvalidArgumentError(`MockMap ${this.name}: lookupBytes needs values stored as Uint8Array`);
  }

  update(key: K | Uint8Array, value: V | Uint8Array | V[], flags: UpdateFlags = 'any'): void {
    this.#check();
    this.calls.push({ op: 'update', key, value, flags });
    this.#writable('MAP_UPDATE_ELEM');
    const id = canonical(key);
    const present = this.#entries.has(id);
    const f = flags === 'noexist' || flags === 1 ? 'noexist' : flags === 'exist' || flags === 2 ? 'exist' : 'any';
    if (this.type.includes('array')) {
      if (typeof key !== 'number' || key >= this.maxEntries) throw new BpfSyscallError(-7, 'bpf(BPF_MAP_UPDATE_ELEM)', undefined, 'the map is full (max_entries reached)');
      if (f === 'noexist') throw new BpfSyscallError(-17, 'bpf(BPF_MAP_UPDATE_ELEM)', undefined, 'the key already exists and the update asked for noexist');
    } else {
      if (present && f === 'noexist') throw new BpfSyscallError(-17, 'bpf(BPF_MAP_UPDATE_ELEM)', undefined, 'the key already exists and the update asked for noexist');
      if (!present && f === 'exist') throw new BpfSyscallError(-2, 'bpf(BPF_MAP_UPDATE_ELEM)', undefined, 'the key does not exist and the update asked for exist');
      if (!present && this.#entries.size >= this.maxEntries) {
        if (this.type.startsWith('lru')) {
          const oldest = this.#entries.keys().next().value as string;
          this.#entries.delete(oldest);
        } else {
          throw new BpfSyscallError(-7, 'bpf(BPF_MAP_UPDATE_ELEM)', undefined, 'the map is full (max_entries reached)');
        }
      }
    }
    this.#entries.delete(id);
    this.#entries.set(id, [key as K, value as V]);
  }

  delete(key: K | Uint8Array): boolean {
    this.#check();
    this.calls.push({ op: 'delete', key });
    this.#writable('MAP_DELETE_ELEM');
    if (this.type.includes('array')) throw new BpfSyscallError(-22, 'bpf(BPF_MAP_DELETE_ELEM)');
    return this.#entries.delete(canonical(key));
  }

  lookupAndDelete(key: K | Uint8Array): V | undefined {
    const v = this.lookup(key);
    if (v !== undefined) this.#entries.delete(canonical(key));
    return v;
  }

  push(value: V | Uint8Array, flags: UpdateFlags = 'any'): void {
    this.#check();
    this.calls.push({ op: 'push', value, flags });
    this.#keyless('push');
    this.#writable('MAP_UPDATE_ELEM');
    if (this.#queue.length >= this.maxEntries) {
      if (flags !== 'exist' && flags !== 2) throw new BpfSyscallError(-7, 'bpf(BPF_MAP_UPDATE_ELEM)', undefined, 'the map is full (max_entries reached)');
      this.#queue.shift();
    }
    this.#queue.push(value as V);
  }

  pop(): V | undefined {
    this.#check();
    this.calls.push({ op: 'pop' });
    this.#keyless('pop');
    return this.type === 'stack' ? this.#queue.pop() : this.#queue.shift();
  }

  peek(): V | undefined {
    this.#check();
    this.calls.push({ op: 'peek' });
    this.#keyless('peek');
    return this.type === 'stack' ? this.#queue[this.#queue.length - 1] : this.#queue[0];
  }

  #keyless(op: string): void {
    if (!KEYLESS.has(this.type)) throw new InvalidArgumentError(`${op}() needs a queue, stack or bloom filter; map ${this.name} is a ${this.type}`);
  }

  *keys(): IterableIterator<K> {
    this.#check();
    for (const [k] of [...this.#entries.values()]) yield k;
  }

  *entries(): IterableIterator<[K, V]> {
    this.#check();
    for (const [k, v] of [...this.#entries.values()]) yield [k, v];
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  lookupBatch(): [K, V][] {
    return [...this.entries()];
  }

  lookupAndDeleteBatch(): [K, V][] {
    const all = [...this.entries()];
    this.#writable('MAP_LOOKUP_AND_DELETE_BATCH');
    this.#entries.clear();
    return all;
  }

  updateBatch(entries: Iterable<readonly [K | Uint8Array, V | Uint8Array | V[]]>, flags: UpdateFlags = 'any'): number {
    let n = 0;
    for (const [k, v] of entries) {
      this.update(k, v, flags);
      n++;
    }
    return n;
  }

  deleteBatch(keys: Iterable<K | Uint8Array>): number {
    let n = 0;
    for (const k of keys) if (this.delete(k)) n++;
    return n;
  }

  freeze(): void {
    this.#check();
    this.calls.push({ op: 'freeze' });
    if (this.#frozen) throw new BpfSyscallError(-16, 'bpf(BPF_MAP_FREEZE)');
    this.#frozen = true;
  }

  pin(path: string): void {
    this.#check();
    this.calls.push({ op: 'pin', value: path });
    this.#pinned = path;
  }

  unpin(path?: string): void {
    if (path === undefined || path === this.#pinned) this.#pinned = undefined;
  }

  info(): MapInfo {
    this.#check();
    return {
      type: this.type, id: this.#id, name: this.name, keySize: this.keySize, valueSize: this.valueSize,
      maxEntries: this.maxEntries, flags: this.flags, btfId: 0, btfKeyTypeId: 0, btfValueTypeId: 0, mapExtra: 0n,
    };
  }

  close(): void {
    this.#closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** What a {@link MockProgram}'s testRun() returns: return value, duration, data and context out. */
export interface MockTestRun {
  retval?: number;
  duration?: number;
  data?: Uint8Array;
  ctx?: Uint8Array;
}

/**
 * Options of {@link MockProgram}: name, type, section, instructions, and what testRun() returns
 * (fixed, or a function of the input).
 */
export interface MockProgramOptions {
  name?: string;
  type?: ProgType;
  sectionName?: string;
  /** What testRun() answers: a fixed result, or a function of the run's options. Default: retval 0, data echoed. */
  testRun?: MockTestRun | ((options: TestRunOptions) => MockTestRun | number);
  instructions?: Uint8Array;
}

/** A program whose testRun() is scripted; every run's options are kept in `runs`. */
export class MockProgram implements ProgramLike {
  readonly name: string;
  readonly type: ProgType;
  readonly sectionName: string;
  readonly attachType = undefined;
  readonly attachTarget = '';
  readonly verifierLog = '';
  /** The options of every testRun() call, in order. */
  readonly runs: TestRunOptions[] = [];
  /** Results to hand out before falling back to the `testRun` option, first in first out. */
  readonly queued: (MockTestRun | number)[] = [];
  readonly #script: MockProgramOptions['testRun'];
  readonly #instructions: Uint8Array;
  readonly #fd = nextMockFd++;
  readonly #id = nextMockId++;
  #closed = false;
  #pinned: string | undefined;

  constructor(options: MockProgramOptions = {}) {
    this.name = options.name ?? 'mock';
    this.type = options.type ?? 'xdp';
    this.sectionName = options.sectionName ?? this.type;
    this.#script = options.testRun;
    this.#instructions = options.instructions ?? new Uint8Array(0);
  }

  get fd(): number {
    if (this.#closed) throw new ClosedError(`program ${this.name}`);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get pinnedPath(): string | undefined {
    return this.#pinned;
  }

  /** Queues the result of the next run (a number is the retval). */
  returns(result: MockTestRun | number): this {
    this.queued.push(result);
    return this;
  }

  testRun(options: TestRunOptions = {}): TestRunResult {
    if (this.#closed) throw new ClosedError(`program ${this.name}`);
    this.runs.push(options);
    const script = this.queued.length ? this.queued.shift()! : this.#script;
    const r = typeof script === 'function' ? script(options) : script ?? {};
    const res: MockTestRun = typeof r === 'number' ? { retval: r } : r;
    return {
      retval: (res.retval ?? 0) >>> 0,
      duration: res.duration ?? 0,
      data: res.data ?? (options.data ? options.data.slice() : undefined),
      ctx: res.ctx ?? (options.ctx ? options.ctx.slice() : undefined),
    };
  }

  info(): ProgramInfo {
    return {
      type: this.type, id: this.#id, tag: '0000000000000000', name: this.name, loadTime: 0n, createdByUid: 0, mapIds: [],
      btfId: 0, xlatedLength: this.#instructions.length, jitedLength: 0, runCount: BigInt(this.runs.length), runTimeNs: 0n,
      verifiedInstructions: this.#instructions.length / 8, gplCompatible: true,
    };
  }

  translatedInstructions(): Uint8Array {
    return this.#instructions.slice();
  }

  pin(path: string): void {
    this.#pinned = path;
  }

  unpin(path?: string): void {
    if (path === undefined || path === this.#pinned) this.#pinned = undefined;
  }

  close(): void {
    this.#closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
