/**
 * Reading BPF ring buffers (BPF_MAP_TYPE_RINGBUF) from user space.
 *
 * The ring is memory-mapped: a read-write consumer page (the consumer position, which only we
 * write) and a read-only producer page (the producer position) followed by the data area, which
 * the kernel maps twice in a row so that a record that wraps around the end of the ring is still
 * contiguous in memory. Every record starts with an 8-byte header: a u32 length carrying the BUSY
 * bit (reserved but not yet committed) and the DISCARD bit, then the u32 page offset the kernel
 * uses to find the ring from a record. Records are padded to 8 bytes.
 *
 * Positions and headers are read with Atomics.load (acquire) and the consumer position is
 * published with Atomics.store (release), so a record's bytes are read only after its header says
 * it is committed, and the kernel reuses the space only after we are done with it.
 *
 * Waiting is done on the event loop of the thread that reads: the map's fd becomes readable when
 * the ring holds data (libuv's uv_poll; no thread is blocked). The poll handle is active only while
 * a read(), a wait() or an iteration step is pending, so an idle reader never keeps the process
 * alive.
 *
 * This module also holds PollingReader, the waiting machinery shared with the perf buffer reader.
 */
import { BpfSyscallError, ClosedError, InvalidArgumentError } from './errors.js';
import type { BpfMap } from './map.js';
import { native, type NativePoller } from './native.js';

/** The record is reserved but not committed yet: stop reading here. */
const BPF_RINGBUF_BUSY_BIT = 0x80000000;
/** The record was discarded: skip it. */
const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
const BPF_RINGBUF_HDR_SZ = 8;
const LENGTH_MASK = 0x3fffffff;

/** Returned by PollingReader.take() when nothing can be read now. */
export const NONE: unique symbol = Symbol('none');
export type None = typeof NONE;

type WaiterKind = 'read' | 'next' | 'wait';

interface Waiter {
  kind: WaiterKind;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The iterator that queued a 'next' waiter, so its return() can cancel it. */
  owner: object | undefined;
}

export interface ReadOptions {
  /** Aborting rejects the pending read with `signal.reason` (an AbortError by default). */
  signal?: AbortSignal;
}

/**
 * The event-loop side of a reader: a FIFO of pending reads, the poll handles that wake them, and
 * close/abort/ref handling. Subclasses say how to take one record and which fds to poll.
 * @internal
 */
export abstract class PollingReader<T> implements AsyncIterable<T>, Disposable {
  #waiters: Waiter[] = [];
  #pollers: NativePoller[] | undefined;
  #polling = false;
  #refed = true;
  #closed = false;

  /** A record, or NONE when none is ready. May throw (the error goes to the read that asked). */
  protected abstract take(): T | None;
  /** Whether take() would return a record now. */
  protected abstract ready(): boolean;
  /** The fds whose readability means new records may be there. */
  protected abstract pollFds(): number[];
  /** Unmaps and closes what the subclass owns; called once, by close(). */
  protected abstract release(): void;
  /** For error messages: "ring buffer reader (map events)". */
  protected abstract describe(): string;

  get closed(): boolean {
    return this.#closed;
  }

  /** Throws ClosedError after close(). */
  protected checkOpen(): void {
    if (this.#closed) throw new ClosedError(this.describe());
  }

  /**
   * The next record, waiting for one if none is there. Concurrent reads are served in call order.
   * Rejects with ClosedError when the reader is (or gets) closed, and with `signal.reason` when the
   * signal is (or gets) aborted.
   */
  read(options: ReadOptions = {}): Promise<T> {
    return this.#request('read', options.signal, undefined) as Promise<T>;
  }

  /** The next record if one is ready, else undefined; never waits. */
  readSync(): T | undefined {
    this.checkOpen();
    const v = this.take();
    return v === NONE ? undefined : v;
  }

  /**
   * Resolves true as soon as a record can be read without waiting, false if the reader is closed
   * (before or while waiting). Rejects with `signal.reason` on abort. For loops around a
   * synchronous batch consumer: `while (await reader.wait()) reader.consumeBatch(cb)`.
   */
  wait(options: ReadOptions = {}): Promise<boolean> {
    return this.#request('wait', options.signal, undefined) as Promise<boolean>;
  }

  /**
   * The records as an async iterator. The iteration ends when the reader is closed; aborting the
   * signal makes the pending (and any later) step reject with `signal.reason`. Breaking out of a
   * `for await` loop leaves the reader open: records not yet taken stay in the ring.
   */
  records(options: ReadOptions = {}): AsyncIterableIterator<T> {
    const signal = options.signal;
    let finished = false;
    const iterator: AsyncIterableIterator<T> = {
      next: (): Promise<IteratorResult<T>> => {
        if (finished || this.#closed) {
          finished = true;
          return Promise.resolve({ value: undefined, done: true });
        }
        return this.#request('next', signal, iterator) as Promise<IteratorResult<T>>;
      },
      return: (): Promise<IteratorResult<T>> => {
        finished = true;
        this.#cancel(iterator);
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this.records();
  }

  /** Pending reads keep the process alive (the default). */
  ref(): this {
    this.#refed = true;
    this.#pollers?.forEach((p) => p.ref(true));
    return this;
  }

  /** Pending reads no longer keep the process alive (like timer.unref()). */
  unref(): this {
    this.#refed = false;
    this.#pollers?.forEach((p) => p.ref(false));
    return this;
  }

  hasRef(): boolean {
    return this.#refed;
  }

  /**
   * Stops reading and frees the mapping. Pending read() calls reject with ClosedError, pending
   * iteration steps end the iteration, pending wait() calls resolve false. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#pollers) {
      for (const p of this.#pollers) p.close();
      this.#pollers = undefined;
    }
    this.#polling = false;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (w.kind === 'read') this.#settle(w, false, new ClosedError(this.describe()));
      else if (w.kind === 'next') this.#settle(w, true, { value: undefined, done: true });
      else this.#settle(w, true, false);
    }
    this.release();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Serves pending reads from what the rings hold now; subclasses call it after state changes. */
  protected drain(): void {
    while (this.#waiters.length > 0 && !this.#closed) {
      const w = this.#waiters[0]!;
      if (w.kind === 'wait') {
        let ok: boolean;
        try { ok = this.ready(); } catch (e) {
          this.#waiters.shift();
          this.#settle(w, false, e);
          continue;
        }
        if (!ok) break;
        this.#waiters.shift();
        this.#settle(w, true, true);
        continue;
      }
      let v: T | None;
      try { v = this.take(); } catch (e) {
        this.#waiters.shift();
        this.#settle(w, false, e);
        continue;
      }
      if (v === NONE) break;
      this.#waiters.shift();
      this.#settle(w, true, w.kind === 'next' ? { value: v, done: false } : v);
    }
    this.#updatePolling();
  }

  #request(kind: WaiterKind, signal: AbortSignal | undefined, owner: object | undefined): Promise<unknown> {
    if (this.#closed) {
      if (kind === 'read') return Promise.reject(new ClosedError(this.describe()));
      return Promise.resolve(kind === 'wait' ? false : { value: undefined, done: true });
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    // Fast path: nobody is queued ahead and a record is there.
    if (this.#waiters.length === 0) {
      try {
        if (kind === 'wait') {
          if (this.ready()) return Promise.resolve(true);
        } else {
          const v = this.take();
          if (v !== NONE) return Promise.resolve(kind === 'next' ? { value: v, done: false } : v);
        }
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { kind, resolve, reject, signal, onAbort: undefined, owner };
      if (signal) {
        w.onAbort = () => {
          const i = this.#waiters.indexOf(w);
          if (i < 0) return;
          this.#waiters.splice(i, 1);
          this.#settle(w, false, signal.reason);
          this.#updatePolling();
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#waiters.push(w);
      try {
        this.#updatePolling();
      } catch (e) {
        // No poll handle (e.g. the map's fd was closed under us): this read cannot wait.
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        this.#settle(w, false, e);
      }
    });
  }

  /** An iterator's return(): its pending step ends the iteration. */
  #cancel(owner: object): void {
    const mine = this.#waiters.filter((w) => w.owner === owner);
    if (mine.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.owner !== owner);
    for (const w of mine) this.#settle(w, true, { value: undefined, done: true });
    this.#updatePolling();
  }

  #settle(w: Waiter, ok: boolean, value: unknown): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    if (ok) w.resolve(value);
    else w.reject(value);
  }

  /** The poll handles run exactly while someone waits. */
  #updatePolling(): void {
    const want = this.#waiters.length > 0 && !this.#closed;
    if (want === this.#polling) return;
    const { UV_READABLE } = native().constants;
    if (want) {
      const pollers = this.#ensurePollers();
      for (const p of pollers) {
        const r = p.start(UV_READABLE);
        if (r < 0) {
          pollers.forEach((q) => q.stop());
          this.#failAll(new BpfSyscallError(r, 'uv_poll_start', this.describe()));
          return;
        }
      }
      this.#polling = true;
    } else {
      this.#pollers?.forEach((p) => p.stop());
      this.#polling = false;
    }
  }

  #ensurePollers(): NativePoller[] {
    if (this.#pollers) return this.#pollers;
    const { Poller } = native();
    const pollers: NativePoller[] = [];
    try {
      for (const fd of this.pollFds()) {
        const p = new Poller(fd, (status) => this.#onPoll(status));
        p.ref(this.#refed);
        pollers.push(p);
      }
    } catch (e) {
      pollers.forEach((p) => p.close());
      throw e;
    }
    this.#pollers = pollers;
    return pollers;
  }

  #onPoll(status: number): void {
    // Runs from the native poll callback: nothing may escape from here.
    try {
      if (this.#closed) return;
      if (status < 0) {
        this.#failAll(new BpfSyscallError(status, 'uv_poll', this.describe()));
        return;
      }
      this.drain();
    } catch (e) {
      this.#failAll(e);
    }
  }

  #failAll(error: unknown): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) this.#settle(w, false, error);
    this.#updatePolling();
  }
}

export interface RingBufReaderOptions<T> {
  /**
   * Turns a record into the value reads return. It gets a view straight into the ring, valid
   * only during the call (copy what you keep, e.g. with `view.slice()`). Default: a copy of the
   * bytes. If it throws, the record is consumed and the error goes to the read that asked.
   */
  decode?: (view: Uint8Array) => T;
}

/**
 * Many records at once, without copying: `data` is a view of the ring holding them all, record i
 * is `data.subarray(offsets[i], offsets[i] + lengths[i])`. Everything here is valid only until the
 * callback returns: the space is handed back to the kernel right after.
 */
export interface RingBufBatch {
  readonly data: Uint8Array;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  readonly count: number;
}

export interface ConsumeBatchOptions {
  /** Stop after this many records (default: all that are ready). */
  maxRecords?: number;
}

/**
 * A reader for one BPF ring buffer map.
 *
 * ```ts
 * const reader = new RingBufReader(coll.maps.get('events')!);
 * for await (const rec of reader) console.log(rec);   // Uint8Array copies
 * ```
 *
 * Reads: `read()` (waits), `readSync()` (never waits), `for await` / `records({ signal })`,
 * and for the fastest consumers `consumeBatch(cb)` / `readBatch(cb)`, which hand a callback all
 * ready records as one zero-copy view. A record is taken out of the ring (its space handed back
 * to the kernel) only when it is delivered: returned, yielded, or passed to the batch callback.
 *
 * Keep the map open while the reader is open: the reader polls the map's file descriptor.
 */
export class RingBufReader<T = Uint8Array> extends PollingReader<T> {
  readonly map: BpfMap;
  /** Size of the data area in bytes (the map's max_entries). */
  readonly size: number;
  readonly #fd: number;
  readonly #mask: number;
  readonly #page: number;
  #consumerPage: ArrayBuffer | undefined;
  #producer: ArrayBuffer | undefined;
  /** Consumer position (u64) in the consumer page: written by us, with release semantics. */
  readonly #consPos: BigInt64Array;
  /** Producer position (u64) at the start of the producer page. */
  readonly #prodPos: BigInt64Array;
  /** The producer mapping as u32s, for the record headers. */
  readonly #words: Int32Array;
  readonly #decode: (view: Uint8Array) => T;
  readonly #copy: boolean;
  /** Our copy of the consumer position (exact up to 2^53 bytes) and its offset in the ring. */
  #cons: number;
  #consOff: number;
  /** Last producer position seen. */
  #prod: number;
  #offsets = new Uint32Array(64);
  #lengths = new Uint32Array(64);

  constructor(map: BpfMap, options: RingBufReaderOptions<T> = {}) {
    super();
    if (map.type !== 'ringbuf') {
      throw new InvalidArgumentError(`RingBufReader needs a ringbuf map; map ${map.name} is a ${map.type}`);
    }
    const size = map.maxEntries;
    if (!Number.isInteger(size) || size <= 0 || (size & (size - 1)) !== 0) {
      throw new InvalidArgumentError(`map ${map.name}: ring buffer size ${size} is not a power of two`);
    }
    const n = native();
    const { PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_SHARED } = n.constants;
    this.map = map;
    this.size = size;
    this.#fd = map.fd;
    this.#mask = size - 1;
    this.#page = PAGE_SIZE;

    const consumer = n.mmap(this.#fd, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
    if (typeof consumer === 'number') throw new BpfSyscallError(consumer, 'mmap', `ring buffer ${map.name} (consumer page)`);
    // The producer page and the data area, mapped twice: records never wrap in memory.
    const producer = n.mmap(this.#fd, PAGE_SIZE + 2 * size, PROT_READ, MAP_SHARED, PAGE_SIZE);
    if (typeof producer === 'number') {
      n.munmap(consumer);
      throw new BpfSyscallError(producer, 'mmap', `ring buffer ${map.name} (producer page and data)`);
    }
    this.#consumerPage = consumer;
    this.#producer = producer;
    this.#consPos = new BigInt64Array(consumer, 0, 1);
    this.#prodPos = new BigInt64Array(producer, 0, 1);
    this.#words = new Int32Array(producer);
    this.#copy = options.decode === undefined;
    this.#decode = options.decode ?? ((view: Uint8Array) => view.slice() as unknown as T);
    this.#cons = Number(Atomics.load(this.#consPos, 0));
    this.#consOff = this.#cons % size;
    this.#prod = Number(Atomics.load(this.#prodPos, 0));
  }

  /** Bytes the producer has written that this reader has not consumed (headers and discarded records included). */
  get available(): number {
    this.checkOpen();
    this.#prod = Number(Atomics.load(this.#prodPos, 0));
    return this.#prod - this.#cons;
  }

  /**
   * Hands every record that is ready (or `maxRecords` of them) to `callback` in one call, as one
   * zero-copy view; returns how many it passed (0, without calling back, when none was ready).
   * The records are released to the kernel when the callback returns, or throws (the error then
   * propagates): do not keep `batch.data` or anything viewing it.
   */
  consumeBatch(callback: (batch: RingBufBatch) => void, options: ConsumeBatchOptions = {}): number {
    this.checkOpen();
    const max = options.maxRecords ?? Infinity;
    if (!(max >= 1)) throw new InvalidArgumentError(`maxRecords must be at least 1, got ${max}`);
    const prod = (this.#prod = Number(Atomics.load(this.#prodPos, 0)));
    const start = this.#cons;
    const base = this.#page + this.#consOff;
    const limit = prod - start;
    let rel = 0;
    let count = 0;
    while (rel < limit && count < max) {
      const hdr = Atomics.load(this.#words, (base + rel) >> 2) >>> 0;
      if (hdr & BPF_RINGBUF_BUSY_BIT) break;
      const len = hdr & LENGTH_MASK;
      const step = (len + BPF_RINGBUF_HDR_SZ + 7) & ~7;
      if (step > limit - rel) break; // cannot happen with a sane kernel; never read past the producer
      if ((hdr & BPF_RINGBUF_DISCARD_BIT) === 0) {
        if (count === this.#offsets.length) this.#grow();
        this.#offsets[count] = rel + BPF_RINGBUF_HDR_SZ;
        this.#lengths[count] = len;
        count++;
      }
      rel += step;
    }
    if (rel === 0) return 0;
    try {
      if (count > 0) {
        callback({
          data: new Uint8Array(this.#producer!, base, rel),
          offsets: this.#offsets.subarray(0, count),
          lengths: this.#lengths.subarray(0, count),
          count,
        });
      }
    } finally {
      if (!this.closed) this.#advance(rel);
    }
    return count;
  }

  /**
   * Waits until records are ready, then consumes them as consumeBatch() does. Resolves with the
   * number passed to the callback (at least 1), or 0 once the reader is closed.
   */
  async readBatch(callback: (batch: RingBufBatch) => void, options: ReadOptions & ConsumeBatchOptions = {}): Promise<number> {
    this.checkOpen();
    const waitOptions: ReadOptions = options.signal ? { signal: options.signal } : {};
    for (;;) {
      if (!(await this.wait(waitOptions))) return 0;
      const n = this.consumeBatch(callback, options);
      if (n > 0) return n;
    }
  }

  protected take(): T | None {
    this.checkOpen();
    for (;;) {
      if (this.#cons >= this.#prod) {
        this.#prod = Number(Atomics.load(this.#prodPos, 0));
        if (this.#cons >= this.#prod) return NONE;
      }
      const at = this.#page + this.#consOff;
      const hdr = Atomics.load(this.#words, at >> 2) >>> 0;
      if (hdr & BPF_RINGBUF_BUSY_BIT) return NONE;
      const len = hdr & LENGTH_MASK;
      const step = (len + BPF_RINGBUF_HDR_SZ + 7) & ~7;
      if (hdr & BPF_RINGBUF_DISCARD_BIT) {
        this.#advance(step);
        continue;
      }
      const view = new Uint8Array(this.#producer!, at + BPF_RINGBUF_HDR_SZ, len);
      if (this.#copy) {
        const out = view.slice();
        this.#advance(step);
        return out as unknown as T;
      }
      try {
        return this.#decode(view);
      } finally {
        if (!this.closed) this.#advance(step);
      }
    }
  }

  protected ready(): boolean {
    this.checkOpen();
    // Skip discarded records so that "ready" means a record to deliver.
    for (;;) {
      if (this.#cons >= this.#prod) {
        this.#prod = Number(Atomics.load(this.#prodPos, 0));
        if (this.#cons >= this.#prod) return false;
      }
      const hdr = Atomics.load(this.#words, (this.#page + this.#consOff) >> 2) >>> 0;
      if (hdr & BPF_RINGBUF_BUSY_BIT) return false;
      if ((hdr & BPF_RINGBUF_DISCARD_BIT) === 0) return true;
      this.#advance(((hdr & LENGTH_MASK) + BPF_RINGBUF_HDR_SZ + 7) & ~7);
    }
  }

  protected pollFds(): number[] {
    return [this.#fd];
  }

  protected release(): void {
    const n = native();
    if (this.#producer) n.munmap(this.#producer);
    if (this.#consumerPage) n.munmap(this.#consumerPage);
    this.#producer = undefined;
    this.#consumerPage = undefined;
  }

  protected describe(): string {
    return `ring buffer reader (map ${this.map.name})`;
  }

  /** Consumes `bytes` and publishes the new consumer position to the kernel. */
  #advance(bytes: number): void {
    this.#cons += bytes;
    this.#consOff = (this.#consOff + bytes) & this.#mask;
    Atomics.store(this.#consPos, 0, BigInt(this.#cons));
  }

  #grow(): void {
    const o = new Uint32Array(this.#offsets.length * 2);
    const l = new Uint32Array(this.#lengths.length * 2);
    o.set(this.#offsets);
    l.set(this.#lengths);
    this.#offsets = o;
    this.#lengths = l;
  }
}
