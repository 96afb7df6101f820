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
 * The waiting machinery shared with the perf buffer reader is PollingReader (reader-base.ts).
 */
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import type { BpfMap } from '../objects/map.js';
import { native } from '../sys/native.js';
import { Batch, BatchIndex, CopyQueue, NONE, PollingReader, type None, type RecordBatch } from './base.js';
import { RingPosition, Slab, SLAB_SIZE } from './ring-copy.js';
import { bpf_ringbuf_hdr_bits } from '../abi/uapi.js';

export {
  NONE, PollingReader, type ConsumeBatchOptions, type None, type ReadOptions, type RecordBatch, type RecordReader, type RecordReadFn,
} from './base.js';

/** BUSY: reserved, not committed yet (stop reading here); DISCARD: skip the record; the header size. */
const { BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ } = bpf_ringbuf_hdr_bits;
const LENGTH_MASK = 0x3fffffff;

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
export interface RingBufBatch extends RecordBatch {}


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
  readonly #index = new BatchIndex(64);
  /** #scan: bytes to consume; the size of the record that did not fit in maxBytes (else 0). */
  #scanEnd = 0;
  #blocked = 0;
  /** The held batch: bytes of ring it covers, or (when it views queued copies) how many it holds. */
  #heldEnd = 0;
  #heldQueued = 0;
  /** Copying mode: copies taken out of the ring and not returned yet, queue[head..len). */
  #slab: Slab | undefined;
  readonly #queue = new CopyQueue<Uint8Array>();
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
    return this.#prod - (this.#queue.pending ? this.#qPos[this.#queue.head]! : this.#cons);
  }

  protected take(): T | None {
    this.checkOpen();
    this.settleHeld();
    if (this.#copy) {
      if (!this.#queue.pending && !this.#fill()) return NONE;
      return this.#queue.shift() as unknown as T;
    }
    const hdr = this.#peek();
    if (hdr < 0) return NONE;
    const at = this.#page + this.#consOff;
    const len = hdr & LENGTH_MASK;
    try {
      return this.#decode(new Uint8Array(this.#producer!, at + BPF_RINGBUF_HDR_SZ, len));
    } finally {
      if (!this.closed) this.#advance((len + BPF_RINGBUF_HDR_SZ + 7) & ~7);
    }
  }

  protected ready(): boolean {
    this.checkOpen();
    this.settleHeld();
    return this.#queue.pending || this.#peek() >= 0;
  }

  /**
   * The header of the next record to deliver, skipping (consuming) discarded ones, or -1 when
   * no committed record is there. A committed header has neither BUSY nor DISCARD set: >= 0.
   */
  #peek(): number {
    const words = this.#words;
    for (;;) {
      if (this.#cons >= this.#prod) {
        this.#prod = this.#prodPos.loadFrom(this.#cons);
        if (this.#cons >= this.#prod) return -1;
      }
      const at = (this.#page + this.#consOff) >> 2;
      const hdr = LOADS_IN_ORDER ? words[at]! : Atomics.load(words, at);
      if (hdr & BPF_RINGBUF_BUSY_BIT) return -1;
      if ((hdr & BPF_RINGBUF_DISCARD_BIT) === 0) return hdr;
      this.#advance(((hdr & LENGTH_MASK) + BPF_RINGBUF_HDR_SZ + 7) & ~7);
    }
  }

  protected holdBatch(max: number): RingBufBatch | undefined {
    this.checkOpen();
    if (this.#queue.pending) return this.#holdQueued(max);
    const count = this.#scan(max, Infinity);
    const end = this.#scanEnd;
    if (count === 0) {
      if (end > 0) this.#advance(end); // discarded records only
      return undefined;
    }
    this.#heldEnd = end;
    this.#heldQueued = 0;
    const at = this.#page + this.#consOff;
    return new Batch(
      new Uint8Array(this.#producer!, at, end),
      new DataView(this.#producer!, at, end),
      this.#index.offsets.subarray(0, count),
      this.#index.lengths.subarray(0, count),
      count,
    );
  }

  protected commitBatch(): void {
    if (this.#heldQueued > 0) {
      this.#queue.drop(this.#heldQueued);
      this.#heldQueued = 0;
    } else {
      this.#advance(this.#heldEnd);
    }
  }

  protected delivered(batch: RingBufBatch): number {
    return batch.count;
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
    this.#queue.clear();
    this.#slab = undefined;
  }

  protected describe(): string {
    return `ring buffer reader (map ${this.map.name})`;
  }

  /**
   * Finds the committed records from the consumer position on: at most `maxRecords`, and only
   * those that end within `maxBytes` of the consumer position. Their offsets from the consumer
   * position (past the header) and lengths go to #index; returns their count.
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
    const first = (this.#page + this.#consOff) >> 2;
    // Small integers from here on, so that the loops run on int32s (at most 1 GiB per scan).
    const lim = (prod - cons < 0x40000000 ? prod - cons : 0x40000000) | 0;
    const stop = (maxBytes < lim ? maxBytes : lim) | 0;
    const max = maxRecords < 0x7fffffff ? Math.ceil(maxRecords) | 0 : 0x7fffffff;
    const index = this.#index;
    let rel = 0;
    let end = 0;
    let count = 0;
    this.#blocked = 0;
    while (rel < lim && count < max) {
      const hdr = LOADS_IN_ORDER ? words[first + (rel >> 2)]! : Atomics.load(words, first + (rel >> 2));
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
      if (count === index.capacity) index.grow();
      // The run of records that carry this same header (same length, committed, not discarded):
      // the inner loop only compares each header with it and steps by a known stride, so the
      // position of the next header never waits for the load of this one, and the lengths are
      // filled in afterwards in one go. The run is bounded in advance by count, index and bytes.
      const room = index.capacity - count;
      const fit = ((stop - rel) / s) | 0;
      let runEnd = count + (max - count < room ? max - count : room);
      if (runEnd > count + fit) runEnd = count + fit;
      const offsets = index.offsets;
      const stride = s >> 2;
      let w = first + (rel >> 2);
      let off = rel + BPF_RINGBUF_HDR_SZ;
      let c = count;
      if (LOADS_IN_ORDER) {
        while (c < runEnd && words[w] === hdr) {
          offsets[c++] = off;
          w += stride;
          off += s;
        }
      } else {
        while (c < runEnd && Atomics.load(words, w) === hdr) {
          offsets[c++] = off;
          w += stride;
          off += s;
        }
      }
      index.lengths.fill(n, count, c);
      rel += (c - count) * s;
      end = rel;
      count = c;
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
    this.#queue.reset();
    const slab = (this.#slab ??= new Slab());
    for (;;) {
      const count = this.#scan(QUEUE_CAP, slab.room(0));
      const end = this.#scanEnd;
      if (count > 0) {
        const from = this.#page + this.#consOff;
        const at = slab.take(end, 0);
        slab.bytes.set(this.#bytes.subarray(from, from + end), at);
        const buffer = slab.buffer;
        const offsets = this.#index.offsets;
        const lengths = this.#index.lengths;
        const q = this.#queue.items;
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
        this.#queue.len = count;
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
      this.#queue.items[0] = this.#bytes.slice(at + BPF_RINGBUF_HDR_SZ, at + BPF_RINGBUF_HDR_SZ + len);
      this.#qPos[0] = this.#cons;
      this.#queue.len = 1;
      this.#advance(need);
      return true;
    }
  }

  /** holdBatch() with copies queued: the ones that share a slab, as one batch viewing it. */
  #holdQueued(max: number): RingBufBatch {
    const q = this.#queue.items;
    const head = this.#queue.head;
    const index = this.#index;
    const first = q[head]!;
    const buffer = first.buffer;
    const base = first.byteOffset;
    let count = 0;
    let end = 0;
    while (head + count < this.#queue.len && count < max) {
      const rec = q[head + count]!;
      if (rec.buffer !== buffer) break;
      index.set(count, rec.byteOffset - base, rec.byteLength);
      end = rec.byteOffset + rec.byteLength - base;
      count++;
    }
    this.#heldQueued = count;
    return new Batch(
      new Uint8Array(buffer, base, end),
      new DataView(buffer, base, end),
      index.offsets.subarray(0, count),
      index.lengths.subarray(0, count),
      count,
    );
  }

  /** Consumes `bytes` and publishes the new consumer position to the kernel. */
  #advance(bytes: number): void {
    this.#cons += bytes;
    this.#consOff += bytes;
    if (this.#consOff >= this.size) this.#consOff -= this.size;
    this.#consPos.store(this.#cons);
  }
}
