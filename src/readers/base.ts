/**
 * The event-loop side shared by the ring buffer reader (ringbuf.ts) and the perf buffer reader
 * (perf.ts): a FIFO of pending reads, the poll handles that wake them, close/abort/ref handling,
 * async iteration one record or one batch at a time, and the batch calls (consumeBatch/readBatch)
 * built on a subclass's hold/commit steps. Also the small pieces both readers' batches and
 * queues are made of (BatchIndex, CopyQueue). What is specific to a ring (its header format,
 * how records are found and consumed) stays in each reader.
 * @internal
 * @module
 */
import { BpfSyscallError, ClosedError, InvalidArgumentError } from '../errors.js';
import { native, type NativePoller } from '../sys/native.js';
import type { RecordCursor, RecordView } from '../btf/record-view.js';
/** Records per batch of batches() unless maxRecords says otherwise: a batch this size stays in the CPU cache. */
const DEFAULT_BATCH = 4096;

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

/**
 * Options of a reader's waiting reads: an AbortSignal that ends the wait (the read rejects with
 * its reason).
 */
export interface ReadOptions {
  /** Aborting rejects the pending read with `signal.reason` (an AbortError by default). */
  signal?: AbortSignal;
}

/**
 * The event-loop side of a reader: a FIFO of pending reads, the poll handles that wake them, and
 * close/abort/ref handling. Subclasses say how to take one record and which fds to poll.
 * @internal
 */
export abstract class PollingReader<T, B = unknown> implements AsyncIterable<T>, Disposable {
  #waiters: Waiter[] = [];
  /** The batch a batches() step (or a consumeBatch() call) holds: its records are not consumed yet. */
  #held: B | undefined;
  #pollers: NativePoller[] | undefined;
  #polling = false;
  #refed = true;
  #closed = false;
  #recheck: ReturnType<typeof setImmediate> | undefined;
  #recheckTurns = 0;

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
  /**
   * Up to `max` ready records as one zero-copy batch, without consuming them (undefined when none
   * is ready). Called with nothing held; commitBatch() consumes them.
   */
  protected abstract holdBatch(max: number): B | undefined;
  /** Consumes the records of the batch holdBatch() returned last (hands their space back). */
  protected abstract commitBatch(): void;
  /** How many records `batch` delivers: what consumeBatch() and readBatch() return for it. */
  protected abstract delivered(batch: B): number;

  /**
   * Hands ready records to `callback` in one call, as one zero-copy batch (at most `maxRecords`
   * of them; default: all that are ready and fit in one view), and returns how many records it
   * delivered (0, without calling back, when none was ready). The records are released to the
   * kernel when the callback returns, or throws (the error then propagates): do not keep the
   * batch's `data` or anything viewing it. Copies that earlier reads took out of the ring and
   * queued come first, as a batch of their own viewing the slab that holds them.
   */
  consumeBatch(callback: (batch: B) => void, options: ConsumeBatchOptions = {}): number {
    this.checkOpen();
    const batch = this.hold(maxRecordsOf(options, Infinity));
    if (batch === undefined) return 0;
    const records = this.delivered(batch);
    try {
      callback(batch);
    } finally {
      this.settleHeld(batch);
    }
    return records;
  }

  /**
   * Waits until records are ready, then consumes them as consumeBatch() does. Resolves with the
   * number of records passed to the callback (at least 1), or 0 once the reader is closed.
   */
  async readBatch(callback: (batch: B) => void, options: ReadOptions & ConsumeBatchOptions = {}): Promise<number> {
    this.checkOpen();
    const waitOptions: ReadOptions = options.signal ? { signal: options.signal } : {};
    for (;;) {
      if (!(await this.wait(waitOptions))) return 0;
      const got = this.consumeBatch(callback, options);
      if (got > 0) return got;
    }
  }

  /**
   * Takes a batch as holdBatch() does and remembers it as held; a batch held before is consumed
   * first. Subclasses call settleHeld() before every other way of taking records.
   */
  protected hold(max: number): B | undefined {
    this.settleHeld();
    const b = this.holdBatch(max);
    this.#held = b;
    return b;
  }

  /** Consumes the held batch (only if it is `batch`, when given). */
  protected settleHeld(batch?: B): void {
    const held = this.#held;
    if (held === undefined || (batch !== undefined && batch !== held)) return;
    this.#held = undefined;
    if (held instanceof Batch) held.settle();
    if (!this.#closed) this.commitBatch();
  }

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
    if (v === NONE) return undefined;
    // take() may have taken more records out of the ring than it returned (queued copies): then
    // the fd no longer polls readable for them, so reads already waiting are served from the queue now.
    if (this.#waiters.length > 0) this.drain();
    return v;
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
   * `for await` loop leaves the reader open: records not yet yielded stay with the reader (in the
   * ring, or copied out of it and queued) and later reads return them.
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

  /**
   * The records as an async iterator of zero-copy batches: each step waits until records are
   * ready and yields up to `maxRecords` of them (default 4096) as one view of the ring, the same
   * batch consumeBatch() hands its callback. A batch is valid until the iterator's next step (or
   * any other read from this reader): its records are handed back to the kernel then, so read
   * what you need inside the loop body and copy what you keep. One promise per batch, not per
   * record: this is the fast way to read events with `for await`. Breaking out of the loop
   * consumes the batch it was in. Ends when the reader is closed; aborting the signal makes the
   * pending (and any later) step reject with `signal.reason`.
   */
  batches(options: ReadOptions & ConsumeBatchOptions = {}): AsyncIterableIterator<B> {
    const signal = options.signal;
    const max = maxRecordsOf(options, DEFAULT_BATCH);
    const DONE: IteratorResult<B> = { value: undefined, done: true };
    let finished = false;
    let mine: B | undefined;
    const step = (): Promise<IteratorResult<B>> => {
      if (finished || this.#closed) {
        finished = true;
        return Promise.resolve(DONE);
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
      try {
        mine = this.hold(max);
      } catch (e) {
        return Promise.reject(e);
      }
      if (mine !== undefined) return Promise.resolve({ value: mine, done: false });
      // Nothing ready: wait (cancelled by return()), then look again.
      return (this.#request('wait', signal, iterator) as Promise<boolean>).then((ok) => {
        if (!ok) {
          finished = true;
          return DONE;
        }
        return step();
      });
    };
    const iterator: AsyncIterableIterator<B> = {
      next: (): Promise<IteratorResult<B>> => {
        if (mine !== undefined) {
          const b = mine;
          mine = undefined;
          try {
            this.settleHeld(b);
          } catch (e) {
            return Promise.reject(e);
          }
        }
        return step();
      },
      return: (): Promise<IteratorResult<B>> => {
        finished = true;
        if (mine !== undefined) {
          const b = mine;
          mine = undefined;
          this.settleHeld(b);
        }
        this.#cancel(iterator);
        return Promise.resolve(DONE);
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
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
    if (this.#held instanceof Batch) this.#held.settle();
    this.#held = undefined;
    if (this.#recheck) clearImmediate(this.#recheck);
    this.#recheck = undefined;
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
    for (const w of mine) this.#settle(w, true, w.kind === 'wait' ? false : { value: undefined, done: true });
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
      this.#recheckAfterArming();
    } else {
      this.#pollers?.forEach((p) => p.stop());
      this.#polling = false;
    }
  }

  /**
   * libuv registers a started poll handle with epoll only in a later poll phase, and a perf event
   * fd reports readiness once per wakeup: the poll epoll makes when it registers the fd consumes a
   * wakeup that came before, and epoll's next poll of that fd reports nothing. A record written
   * between our last look at the rings and that registration would then wait for the next wakeup,
   * possibly forever. So look again in the check phase of the next two loop turns after every
   * arming (a look already scheduled counts as the first): the second comes after a poll phase
   * that started after the arming, so after the registration, when any later record wakes the fds.
   */
  #recheckAfterArming(): void {
    this.#recheckTurns = 2;
    if (!this.#recheck) this.#scheduleRecheck();
  }

  #scheduleRecheck(): void {
    this.#recheck = setImmediate(() => {
      this.#recheck = undefined;
      this.#recheckTurns--;
      if (this.#closed || this.#waiters.length === 0) return;
      try {
        this.drain();
      } catch (e) {
        this.#failAll(e);
      }
      if (this.#recheckTurns > 0 && this.#polling) this.#scheduleRecheck();
    });
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

/** Options of the batch reads (`batches()`, `consumeBatch()`): the most records one batch holds. */
export interface ConsumeBatchOptions {
  /**
   * Stop after this many records (default: all that are ready). A few thousand records per batch
   * are read faster than one batch of a large ring: the reader's pass over the records leaves
   * them in the CPU cache for the callback's.
   */
  maxRecords?: number;
}

/**
 * Records of one batch in place: record i is `data.subarray(offsets[i], offsets[i] + lengths[i])`,
 * and `view` reads its fields (`view.getUint32(offsets[i] + 4, true)`). Valid until the batch is
 * settled (the next step of batches(), the return of consumeBatch()'s callback).
 */
export interface RecordBatch {
  readonly data: Uint8Array;
  /** A DataView of the same bytes as `data`. */
  readonly view: DataView;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  /** Records in the batch. */
  readonly count: number;
  /**
   * The records, each read straight from `view` (no copy) by `reader`: a record view
   * (`recordViewFor()`, the typed fast path), a function of `(view, offset, length)`, or a codec
   * (`codecFor()`), whose read() decodes a whole object per record.
   *
   * With a record view, the loop variable is one object moved from record to record: its
   * members are decoded only when read, so a record costs no allocation but what the members you
   * read return. Read it inside the loop and copy what you keep (`recordView.copy(rec)`): once
   * the iteration ends or the batch is settled, it throws ClosedError.
   *
   * ```ts
   * const events = recordViewFor<Event>(btf, btf.typeByName('event'));
   * for await (const batch of reader.batches()) {
   *   for (const ev of batch.records(events)) counts.set(ev.comm, (counts.get(ev.comm) ?? 0) + 1);
   * }
   * ```
   * A function that returns numbers allocates nothing either. Valid, like the batch, until it
   * is settled.
   * @throws {@link InvalidArgumentError} when a record is shorter than the view's or codec's type.
   * @throws {@link ClosedError} when the batch was settled already.
   */
  records<R>(read: RecordReadFn<R>): IterableIterator<R>;
  records<R>(codec: { read(view: DataView, offset: number): R }): IterableIterator<R>;
  records<R extends object>(view: RecordView<R>): IterableIterator<R>;
}

/** Reads one record in place: `length` bytes of `view` at `offset`. */
export type RecordReadFn<R> = (view: DataView, offset: number, length: number) => R;

/** What RecordBatch.records() reads each record with: a function, or a codec. */
export type RecordReader<R> = RecordReadFn<R> | { read(view: DataView, offset: number): R } | RecordView<R & object>;

/** A batch as the readers hand it out. @internal */
export class Batch implements RecordBatch {
  constructor(
    readonly data: Uint8Array,
    readonly view: DataView,
    readonly offsets: Uint32Array,
    readonly lengths: Uint32Array,
    readonly count: number,
  ) {}

  records<R>(read: RecordReadFn<R>): IterableIterator<R>;
  records<R>(codec: { read(view: DataView, offset: number): R }): IterableIterator<R>;
  records<R extends object>(view: RecordView<R>): IterableIterator<R>;
  records<R>(reader: RecordReader<R>): IterableIterator<R> {
    this.#check();
    if (typeof reader === 'function') return new BatchRecords(this, reader);
    if ('cursor' in reader) {
      const it = new BatchCursorRecords<R>(this, reader.cursor(), reader.size, reader.typeName);
      (this.#cursors ??= []).push(it);
      return it;
    }
    return new BatchRecords(this, (v, o) => reader.read(v, o));
  }

  #settled = false;
  /** The record-view iterators over this batch, detached when it is settled. */
  #cursors: BatchCursorRecords<unknown>[] | undefined;

  /** The batch went back to the kernel: its record views stop reading. @internal */
  settle(): void {
    this.#settled = true;
    const cursors = this.#cursors;
    if (cursors) for (const c of cursors) c.end();
    this.#cursors = undefined;
  }

  #check(): void {
    if (this.#settled) throw new ClosedError('this batch (it was handed back to the kernel when the loop moved on or the callback returned)');
  }
}

/**
 * The iterator of Batch.records(): one per batch, one result object reused for every step, and
 * the batch's fields copied in (plain properties, not #private ones: measured about twice as
 * fast in V8's for-of as an iterator reading them through the batch).
 */
class BatchRecords<R> implements IterableIterator<R> {
  private i = 0;
  private readonly result: { value: R; done: false };
  private readonly view: DataView;
  private readonly offsets: Uint32Array;
  private readonly lengths: Uint32Array;
  private readonly count: number;

  constructor(batch: RecordBatch, private readonly read: RecordReadFn<R>) {
    this.result = { value: undefined as R, done: false };
    this.view = batch.view;
    this.offsets = batch.offsets;
    this.lengths = batch.lengths;
    this.count = batch.count;
  }

  next(): IteratorResult<R> {
    const i = this.i;
    if (i >= this.count) return { value: undefined, done: true };
    this.i = i + 1;
    const r = this.result;
    r.value = this.read(this.view, this.offsets[i]!, this.lengths[i]!);
    return r;
  }

  [Symbol.iterator](): IterableIterator<R> {
    return this;
  }
}

/**
 * Batch.records() with a record view: one flyweight moved from record to record, detached when
 * the iteration ends (or is left) and when the batch is settled.
 */
class BatchCursorRecords<R> implements IterableIterator<R> {
  private i = 0;
  private readonly result: { value: R; done: false };
  private readonly fly: { v: DataView; o: number };
  private readonly offsets: Uint32Array;
  private readonly lengths: Uint32Array;
  private readonly count: number;

  constructor(batch: RecordBatch, private readonly cursor: RecordCursor<R>, private readonly size: number, private readonly typeName: string) {
    this.result = { value: cursor.record, done: false };
    this.fly = cursor.fly;
    this.fly.v = batch.view;
    this.offsets = batch.offsets;
    this.lengths = batch.lengths;
    this.count = batch.count;
  }

  next(): IteratorResult<R> {
    const i = this.i;
    if (i >= this.count) {
      this.cursor.detach();
      return { value: undefined, done: true };
    }
    this.i = i + 1;
    if (this.lengths[i]! < this.size) this.short(i);
    this.fly.o = this.offsets[i]!;
    return this.result;
  }

  private short(i: number): never {
    this.end();
    throw new InvalidArgumentError(`record ${i} of the batch is ${this.lengths[i]} bytes, shorter than ${this.typeName} (${this.size} bytes)`);
  }

  /** Leaving a for-of loop early ends the record view too. */
  return(): IteratorResult<R> {
    this.end();
    return { value: undefined, done: true };
  }

  end(): void {
    this.i = this.count;
    this.cursor.detach();
  }

  [Symbol.iterator](): IterableIterator<R> {
    return this;
  }
}

/** options.maxRecords, checked, or `otherwise`. */
function maxRecordsOf(options: ConsumeBatchOptions, otherwise: number): number {
  const max = options.maxRecords ?? otherwise;
  if (!(max >= 1)) throw new InvalidArgumentError(`maxRecords must be at least 1, got ${max}`);
  return max;
}

/**
 * Where a batch's records are: their offsets into the batch's view and their lengths, in arrays
 * reused from batch to batch (a batch shows their first `count` entries) and grown as needed.
 * @internal
 */
export class BatchIndex {
  offsets: Uint32Array;
  lengths: Uint32Array;

  constructor(capacity: number) {
    this.offsets = new Uint32Array(capacity);
    this.lengths = new Uint32Array(capacity);
  }

  get capacity(): number {
    return this.offsets.length;
  }

  /** Doubles the capacity, keeping the entries. */
  grow(): void {
    const o = new Uint32Array(this.offsets.length * 2);
    const l = new Uint32Array(this.lengths.length * 2);
    o.set(this.offsets);
    l.set(this.lengths);
    this.offsets = o;
    this.lengths = l;
  }

  /** Sets entry `i`, growing first when it is one past the end. */
  set(i: number, offset: number, length: number): void {
    if (i === this.offsets.length) this.grow();
    this.offsets[i] = offset;
    this.lengths[i] = length;
  }
}

/**
 * Records a read took out of a ring ahead of the reads that return them: items[head..len), in
 * ring order. Returned entries are cleared so that the queue holds no slab longer than needed.
 * @internal
 */
export class CopyQueue<Q> {
  items: (Q | undefined)[] = [];
  head = 0;
  len = 0;

  /** Whether records are queued. */
  get pending(): boolean {
    return this.head < this.len;
  }

  /** The next record (the queue is not empty). */
  shift(): Q {
    const q = this.items[this.head]!;
    this.items[this.head++] = undefined;
    return q;
  }

  /** Drops the next `n` records (handed out as a batch). */
  drop(n: number): void {
    const items = this.items;
    const head = this.head;
    for (let i = 0; i < n; i++) items[head + i] = undefined;
    this.head = head + n;
  }

  /** Empties the queue before it is refilled from index 0. */
  reset(): void {
    this.head = this.len = 0;
  }

  /** Lets go of everything (on close). */
  clear(): void {
    this.items = [];
    this.head = this.len = 0;
  }
}
