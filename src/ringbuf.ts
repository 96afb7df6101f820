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
 * The producer position is read with Atomics.load (acquire) and the consumer position is
 * published with Atomics.store (release), so a record's bytes are read only after its header says
 * it is committed, and the kernel reuses the space only after we are done with it. Record headers
 * are read with plain loads where the CPU keeps loads in order (see RingBufReader.#scan).
 *
 * Copies (the default mode) are taken out of the ring up to 1024 records at a time, with one
 * memcpy into a slab, and queued for the reads that follow (see ring-copy.ts): a read that finds
 * copies queued costs no system call and no shared-memory access.
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
import { RingPosition, Slab, SLAB_SIZE } from './ring-copy.js';

/** The record is reserved but not committed yet: stop reading here. */
const BPF_RINGBUF_BUSY_BIT = 0x80000000;
/** The record was discarded: skip it. */
const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
const BPF_RINGBUF_HDR_SZ = 8;
const LENGTH_MASK = 0x3fffffff;

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
    const max = options.maxRecords ?? DEFAULT_BATCH;
    if (!(max >= 1)) throw new InvalidArgumentError(`maxRecords must be at least 1, got ${max}`);
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

/** Options of {@link RingBufReader}: a decode function that turns each record into a typed value. */
export interface RingBufReaderOptions<T> {
  /**
   * Turns a record into the value reads return. It gets a view straight into the ring, valid
   * only during the call (copy what you keep, e.g. with `view.slice()`). Default: a copy of the
   * bytes (a view into a slab shared with other records: see RingBufReader). If it throws, the
   * record is consumed and the error goes to the read that asked.
   */
  decode?: (view: Uint8Array) => T;
}

/**
 * Many records at once, without copying: `data` is a view of the ring holding them all, record i
 * is `data.subarray(offsets[i], offsets[i] + lengths[i])`. Everything here is valid only until the
 * callback returns: the space is handed back to the kernel right after. `data.byteOffset` and
 * every offset are multiples of 8 (records are 8-byte aligned), so one DataView or typed array
 * over `data` can read the fields of all records: `view` is that DataView, so that record i's
 * u32 at byte 4 is `batch.view.getUint32(batch.offsets[i] + 4, true)`.
 */
export interface RingBufBatch {
  readonly data: Uint8Array;
  /** A DataView of the same bytes as `data`. */
  readonly view: DataView;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  readonly count: number;
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

/** Records a copying reader takes out of the ring ahead of the reads that return them. */
const QUEUE_CAP = 1024;

/**
 * Whether plain loads are ordered after earlier loads (x86's TSO): then a record header may be
 * read with a plain load. See the comment in RingBufReader.#scan.
 */
const LOADS_IN_ORDER = process.arch === 'x64' || process.arch === 'ia32';

/**
 * A reader for one BPF ring buffer map.
 *
 * Reads: `batches({ signal })` (the fast way: one promise per batch of ready records, read in
 * place), `consumeBatch(cb)` / `readBatch(cb)` (the same batches handed to a callback), and one
 * record at a time, as copies: `read()` (waits), `readSync()` (never waits), `for await (const rec
 * of reader)` / `records({ signal })` (a promise per record: for low rates).
 *
 * When does a record leave the ring? In batch mode and with a `decode` option, when it is
 * delivered (passed to the callback or decoded). In the default copying mode, when it is copied:
 * a read copies up to 1024 ready records out of the ring at once, with one memcpy, hands back
 * their space to the kernel at once, and keeps the copies it did not return for the next reads
 * (any of them, batch mode included: records always come in ring order). Closing the reader drops
 * copies not yet returned, as it leaves records in the ring. The copies are views into 64 KiB
 * slabs shared by many records: read them through `byteOffset`/`byteLength` (not `.buffer`
 * alone), and `.slice()` one you keep for long so that it does not hold its slab.
 *
 * Keep the map open while the reader is open: the reader polls the map's file descriptor.
 *
 * Requires Linux 5.8 (BPF_MAP_TYPE_RINGBUF).
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) from the constructor when the map
 *   is not a ringbuf map or its size is not a power of two, and from consumeBatch() for a bad
 *   `maxRecords`.
 * @throws {@link BpfSyscallError} (`code` is the errno name, e.g. EPERM) when mapping the ring fails.
 * @throws {@link ClosedError} (`ERR_BPFKIT_CLOSED`) from a read after close().
 * @example
 * ```ts
 * const reader = new RingBufReader(coll.maps.get('events')!);
 * for await (const batch of reader.batches()) {           // zero-copy, valid until the next step
 *   for (let i = 0; i < batch.count; i++) handle(batch.view.getUint32(batch.offsets[i]!, true));
 * }
 * ```
 */
export class RingBufReader<T = Uint8Array> extends PollingReader<T, RingBufBatch> {
  readonly map: BpfMap;
  /** Size of the data area in bytes (the map's max_entries). */
  readonly size: number;
  readonly #fd: number;
  readonly #page: number;
  #consumerPage: ArrayBuffer | undefined;
  #producer: ArrayBuffer | undefined;
  /** Consumer position (u64) in the consumer page: written by us, with release semantics. */
  readonly #consPos: RingPosition;
  /** Producer position (u64) at the start of the producer page. */
  readonly #prodPos: RingPosition;
  /** The producer mapping as i32s (the record headers) and as bytes (what copies are made from). */
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #decode: (view: Uint8Array) => T;
  readonly #copy: boolean;
  /** Our copy of the consumer position (exact up to 2^53 bytes) and its offset in the ring. */
  #cons: number;
  #consOff: number;
  /** Last producer position seen. */
  #prod: number;
  /** What #scan found: record offsets (from the consumer position) and lengths. */
  #offsets = new Uint32Array(64);
  #lengths = new Uint32Array(64);
  /** #scan: bytes to consume; the size of the record that did not fit in maxBytes (else 0). */
  #scanEnd = 0;
  #blocked = 0;
  /** The held batch: bytes of ring it covers, or (when it views queued copies) how many it holds. */
  #heldEnd = 0;
  #heldQueued = 0;
  /** Copying mode: copies taken out of the ring and not returned yet, queue[head..len). */
  #slab: Slab | undefined;
  #queue: (Uint8Array | undefined)[] = [];
  #qHead = 0;
  #qLen = 0;
  /** Ring position of each queued copy (the consumer position right after the copy before it), for `available`. */
  readonly #qPos = new Float64Array(QUEUE_CAP);

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
    this.#consPos = new RingPosition(consumer, 0, size);
    this.#prodPos = new RingPosition(producer, 0, size);
    this.#words = new Int32Array(producer);
    this.#bytes = new Uint8Array(producer);
    this.#copy = options.decode === undefined;
    this.#decode = options.decode ?? ((view: Uint8Array) => view.slice() as unknown as T);
    this.#cons = this.#consPos.load();
    this.#consOff = this.#cons % size;
    this.#prod = this.#prodPos.load();
  }

  /**
   * Bytes the producer has written that this reader has not returned yet (headers and discarded
   * records included; in copying mode, records copied out of the ring but not returned count).
   */
  get available(): number {
    this.checkOpen();
    this.#prod = this.#prodPos.loadFrom(this.#cons);
    return this.#prod - (this.#qHead < this.#qLen ? this.#qPos[this.#qHead]! : this.#cons);
  }

  /**
   * Hands every record that is ready (or `maxRecords` of them) to `callback` in one call, as one
   * zero-copy view; returns how many it passed (0, without calling back, when none was ready).
   * The records are released to the kernel when the callback returns, or throws (the error then
   * propagates): do not keep `batch.data` or anything viewing it. (In copying mode, copies that
   * earlier reads took out of the ring come first, as a batch of their own viewing their slab.)
   */
  consumeBatch(callback: (batch: RingBufBatch) => void, options: ConsumeBatchOptions = {}): number {
    this.checkOpen();
    const max = options.maxRecords ?? Infinity;
    if (!(max >= 1)) throw new InvalidArgumentError(`maxRecords must be at least 1, got ${max}`);
    const batch = this.hold(max);
    if (batch === undefined) return 0;
    try {
      callback(batch);
    } finally {
      this.settleHeld(batch);
    }
    return batch.count;
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
    this.settleHeld();
    if (this.#copy) {
      if (this.#qHead === this.#qLen && !this.#fill()) return NONE;
      const q = this.#queue;
      const rec = q[this.#qHead]!;
      q[this.#qHead++] = undefined;
      return rec as unknown as T;
    }
    const words = this.#words;
    for (;;) {
      if (this.#cons >= this.#prod) {
        this.#prod = this.#prodPos.loadFrom(this.#cons);
        if (this.#cons >= this.#prod) return NONE;
      }
      const at = this.#page + this.#consOff;
      const hdr = LOADS_IN_ORDER ? words[at >> 2]! : Atomics.load(words, at >> 2);
      if (hdr & BPF_RINGBUF_BUSY_BIT) return NONE;
      const len = hdr & LENGTH_MASK;
      const step = (len + BPF_RINGBUF_HDR_SZ + 7) & ~7;
      if (hdr & BPF_RINGBUF_DISCARD_BIT) {
        this.#advance(step);
        continue;
      }
      try {
        return this.#decode(new Uint8Array(this.#producer!, at + BPF_RINGBUF_HDR_SZ, len));
      } finally {
        if (!this.closed) this.#advance(step);
      }
    }
  }

  protected ready(): boolean {
    this.checkOpen();
    this.settleHeld();
    if (this.#qHead < this.#qLen) return true;
    const words = this.#words;
    // Skip discarded records so that "ready" means a record to deliver.
    for (;;) {
      if (this.#cons >= this.#prod) {
        this.#prod = this.#prodPos.loadFrom(this.#cons);
        if (this.#cons >= this.#prod) return false;
      }
      const at = (this.#page + this.#consOff) >> 2;
      const hdr = LOADS_IN_ORDER ? words[at]! : Atomics.load(words, at);
      if (hdr & BPF_RINGBUF_BUSY_BIT) return false;
      if ((hdr & BPF_RINGBUF_DISCARD_BIT) === 0) return true;
      this.#advance(((hdr & LENGTH_MASK) + BPF_RINGBUF_HDR_SZ + 7) & ~7);
    }
  }

  protected holdBatch(max: number): RingBufBatch | undefined {
    this.checkOpen();
    if (this.#qHead < this.#qLen) return this.#holdQueued(max);
    const count = this.#scan(max, Infinity);
    const end = this.#scanEnd;
    if (count === 0) {
      if (end > 0) this.#advance(end); // discarded records only
      return undefined;
    }
    this.#heldEnd = end;
    this.#heldQueued = 0;
    const at = this.#page + this.#consOff;
    return {
      data: new Uint8Array(this.#producer!, at, end),
      view: new DataView(this.#producer!, at, end),
      offsets: this.#offsets.subarray(0, count),
      lengths: this.#lengths.subarray(0, count),
      count,
    };
  }

  protected commitBatch(): void {
    if (this.#heldQueued > 0) {
      const q = this.#queue;
      const head = this.#qHead;
      for (let i = 0; i < this.#heldQueued; i++) q[head + i] = undefined;
      this.#qHead = head + this.#heldQueued;
      this.#heldQueued = 0;
    } else {
      this.#advance(this.#heldEnd);
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
    this.#queue = [];
    this.#qHead = this.#qLen = 0;
    this.#slab = undefined;
  }

  protected describe(): string {
    return `ring buffer reader (map ${this.map.name})`;
  }

  /**
   * Finds the committed records from the consumer position on: at most `maxRecords`, and only
   * those that end within `maxBytes` of the consumer position. Their offsets from the consumer
   * position (past the header) and lengths go to #offsets and #lengths; returns their count.
   * Sets #scanEnd to the bytes to consume: through the last record found, or, when none was,
   * over the discarded records passed (discarded records after the last one found are left for
   * the next scan). Sets #blocked to the size of the record that `maxBytes` stopped at, else 0.
   *
   * Memory ordering. The kernel publishes a record in two steps: bpf_ringbuf_reserve() writes its
   * header (length | BUSY) and then advances the producer position with a release store;
   * bpf_ringbuf_submit()/discard() writes the sample and then swaps the final header in with
   * xchg (a full barrier), which clears BUSY. We load the producer position once per scan with
   * Atomics.load (acquire). Every header below that position was written before the release
   * store we read, so any later load of it, plain or not, returns that BUSY header or the
   * committed one, never the bytes of an older lap. A header that reads BUSY, also one that is
   * stale because the commit happened a moment ago, stops the scan; the next scan, after its own
   * acquire of the producer position, looks again (and a reader that waits polls the fd, which
   * stays readable while producer > consumer, so no wakeup is missed). So the header loads
   * themselves need no acquire, and they are most of the scan's work: with Atomics.load on every
   * header the scan ran at about half the speed.
   * What a plain header load does not give is ordering of the loads that follow it: the bytes of
   * a record must not be read before its header was seen committed. x86 never reorders a load
   * with an earlier load (TSO), so there plain loads are enough; on weakly ordered CPUs (arm64)
   * they are not, and headers are read with Atomics.load (acquire). V8 does not move loads across
   * the Atomics operations, and a record's bytes are only read once its header was looked at.
   * Consuming publishes the consumer position with Atomics.store (release), after every read of
   * the records it frees, so the kernel reuses their space only after we are done with it.
   */
  #scan(maxRecords: number, maxBytes: number): number {
    const cons = this.#cons;
    const prod = (this.#prod = this.#prodPos.loadFrom(cons));
    const words = this.#words;
    const first = (this.#page + this.#consOff) / 4;
    // Small integers from here on, so that the loop runs on int32s (at most 1 GiB per scan).
    const lim = (prod - cons < 0x40000000 ? prod - cons : 0x40000000) | 0;
    const stop = (maxBytes < lim ? maxBytes : lim) | 0;
    const max = maxRecords < 0x7fffffff ? Math.ceil(maxRecords) | 0 : 0x7fffffff;
    let offsets = this.#offsets;
    let lengths = this.#lengths;
    let countStop = (max < offsets.length ? max : offsets.length) | 0;
    let rel = 0;
    let end = 0;
    let count = 0;
    // The fast path takes a record whose header equals the last one taken (same length, committed,
    // not discarded) without looking at the header's bits: the position of the next header then
    // comes from `step`, not from the header just loaded, so the CPU need not wait for one header
    // load to start the next. Until a record was taken, `step` is too big for the fast path.
    let expect = 0;
    let step = lim + 8;
    let len = 0;
    this.#blocked = 0;
    for (;;) {
      const next = rel + step;
      const hdr = LOADS_IN_ORDER ? words[first + (rel >> 2)]! : Atomics.load(words, first + (rel >> 2));
      if (hdr === expect && next <= stop && count < countStop) {
        offsets[count] = rel + BPF_RINGBUF_HDR_SZ;
        lengths[count] = len;
        count++;
        rel = end = next;
        continue;
      }
      if (rel >= lim) break;
      if (count >= countStop) {
        if (count >= max) break;
        this.#grow();
        offsets = this.#offsets;
        lengths = this.#lengths;
        countStop = (max < offsets.length ? max : offsets.length) | 0;
        continue;
      }
      if (hdr & BPF_RINGBUF_BUSY_BIT) break;
      const n = hdr & LENGTH_MASK;
      const s = (n + BPF_RINGBUF_HDR_SZ + 7) & ~7;
      if (rel + s > lim) break; // cannot happen with a sane kernel; never read past the producer
      if (hdr & BPF_RINGBUF_DISCARD_BIT) {
        rel += s;
        continue;
      }
      if (rel + s > stop) {
        this.#blocked = s;
        break;
      }
      // Taken by the fast path on the next turn.
      expect = hdr;
      step = s;
      len = n;
    }
    this.#scanEnd = count > 0 ? end : rel;
    return count;
  }

  /**
   * Copying mode, with the queue empty: copies up to QUEUE_CAP ready records out of the ring into
   * the slab (one memcpy of the run of records, headers and all), queues views of them, and hands
   * their space back to the kernel. False when no record is ready.
   */
  #fill(): boolean {
    this.#qHead = this.#qLen = 0;
    const slab = (this.#slab ??= new Slab());
    for (;;) {
      const count = this.#scan(QUEUE_CAP, slab.room(0));
      const end = this.#scanEnd;
      if (count > 0) {
        const from = this.#page + this.#consOff;
        const at = slab.take(end, 0);
        slab.bytes.set(this.#bytes.subarray(from, from + end), at);
        const buffer = slab.buffer;
        const offsets = this.#offsets;
        const lengths = this.#lengths;
        const q = this.#queue;
        const qPos = this.#qPos;
        const cons = this.#cons;
        // A copy's position is where the consumer would be once the copies before it are returned
        // (discarded records in between count as unread, as they do when reading from the ring).
        let pos = cons;
        for (let i = 0; i < count; i++) {
          const off = offsets[i]!;
          const len = lengths[i]!;
          q[i] = new Uint8Array(buffer, at + off, len);
          qPos[i] = pos;
          pos = cons + off + ((len + 7) & ~7);
        }
        this.#qLen = count;
        this.#advance(end);
        return true;
      }
      if (end > 0) this.#advance(end); // discarded records only
      const need = this.#blocked;
      if (need === 0) return false;
      if (need <= SLAB_SIZE) {
        slab.renew();
        continue;
      }
      // Bigger than a slab: a copy of its own. (#scan has read its header: it is committed.)
      const at = this.#page + this.#consOff;
      const len = this.#words[at >> 2]! & LENGTH_MASK;
      this.#queue[0] = this.#bytes.slice(at + BPF_RINGBUF_HDR_SZ, at + BPF_RINGBUF_HDR_SZ + len);
      this.#qPos[0] = this.#cons;
      this.#qLen = 1;
      this.#advance(need);
      return true;
    }
  }

  /** holdBatch() with copies queued: the ones that share a slab, as one batch viewing it. */
  #holdQueued(max: number): RingBufBatch {
    const q = this.#queue;
    const head = this.#qHead;
    const first = q[head]!;
    const buffer = first.buffer;
    const base = first.byteOffset;
    let count = 0;
    let end = 0;
    while (head + count < this.#qLen && count < max) {
      const rec = q[head + count]!;
      if (rec.buffer !== buffer) break;
      if (count === this.#offsets.length) this.#grow();
      this.#offsets[count] = rec.byteOffset - base;
      this.#lengths[count] = rec.byteLength;
      end = rec.byteOffset + rec.byteLength - base;
      count++;
    }
    this.#heldQueued = count;
    return {
      data: new Uint8Array(buffer, base, end),
      view: new DataView(buffer, base, end),
      offsets: this.#offsets.subarray(0, count),
      lengths: this.#lengths.subarray(0, count),
      count,
    };
  }

  /** Consumes `bytes` and publishes the new consumer position to the kernel. */
  #advance(bytes: number): void {
    this.#cons += bytes;
    this.#consOff += bytes;
    if (this.#consOff >= this.size) this.#consOff -= this.size;
    this.#consPos.store(this.#cons);
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
