/**
 * Reading BPF perf event arrays (bpf_perf_event_output) from user space.
 *
 * One perf event of type PERF_COUNT_SW_BPF_OUTPUT is opened per CPU, its ring is memory-mapped
 * (one control page, struct perf_event_mmap_page, then 2^n data pages) and its fd is stored in the
 * perf event array at the CPU's index, which is where `bpf_perf_event_output(ctx, &map,
 * BPF_F_CURRENT_CPU, ...)` writes. The kernel writes records, then advances `data_head` (after a
 * write barrier); we load the head with Atomics.load (acquire), read the records between our
 * tail and the head, and hand the space back by writing `data_tail` (Atomics.store, release).
 * Since everything below the head is complete, no record needs an acquire of its own: after the
 * head's acquire, records are read with plain loads. Records are 8-byte aligned but may wrap
 * around the end of the ring, so they are copied out in two pieces when they do.
 *
 * Reads take up to 1024 records of one ring at a time (one load of the head, one store of the
 * tail) and queue them for the reads that follow; rings are served in turn, a batch each. In the
 * default mode the samples are copied with one memcpy (two across the end of the ring) into a
 * slab and handed out as views into it (see ring-copy.ts); with a `decode` option each sample is
 * decoded in place while its batch is taken, and the decoded values are queued.
 *
 * Records: PERF_RECORD_SAMPLE → `{ cpu, data }` (the raw sample as the kernel stored it: perf pads
 * the u32 size plus the data to a multiple of 8, so 64 bytes of output come back as 68), and
 * PERF_RECORD_LOST → `{ cpu, lost }`: the number of samples the kernel dropped because the ring
 * was full. A LOST record is written in front of the next sample that fits.
 *
 * An overwritable reader maps its rings read-only and asks the kernel to write backwards
 * (write_backward): the kernel never waits for us and overwrites the oldest records, so the ring
 * always holds the newest ones. Reads then take a snapshot of each CPU's ring, newest first:
 * call pause() first to freeze all rings while you read (resume() afterwards), or let each read
 * pause the one ring it snapshots for the time of the copy.
 */
import { onlineCpus } from '../sys/cpus.js';
import { BpfSyscallError, InvalidArgumentError, NotSupportedError } from '../errors.js';
import type { BpfMap } from '../objects/map.js';
import { native } from '../sys/native.js';
import { RingPosition, Slab } from './ring-copy.js';
import { Batch, BatchIndex, CopyQueue, NONE, PollingReader, type None, type RecordBatch } from './base.js';
import type { FD } from '../sys/fd.js';
import {
  PERF_COUNT_SW_BPF_OUTPUT, PERF_EVENT_HEADER_SIZE, PERF_HEADER_SIZE_SHIFT, PERF_HEADER_SIZE_WORD, PERF_HEADER_TYPE_WORD,
  PERF_MMAP_DATA_HEAD, PERF_MMAP_DATA_OFFSET, PERF_MMAP_DATA_SIZE, PERF_MMAP_DATA_TAIL, PERF_RECORD_LOST,
  PERF_RECORD_LOST_LOST, PERF_RECORD_SAMPLE, PERF_RECORD_SAMPLE_RAW_DATA, PERF_RECORD_SAMPLE_RAW_SIZE, PERF_SAMPLE_RAW,
  PERF_TYPE_SOFTWARE, perfEventAttr,
  perfEventDisable, perfEventEnable, perfEventOpen, perfEventPauseOutput,
} from '../sys/perf-event.js';

/** A sample a program wrote with bpf_perf_event_output. */
export interface PerfSample<T = Uint8Array> {
  readonly cpu: number;
  readonly data: T;
  readonly lost?: undefined;
}

/** The kernel dropped `lost` samples on `cpu` because its ring was full (or paused). */
export interface PerfLost {
  readonly cpu: number;
  readonly lost: number;
  readonly data?: undefined;
}

/**
 * One record of a {@link PerfReader}: a sample `{ cpu, data }` or a count of samples the kernel
 * dropped `{ cpu, lost }`.
 */
export type PerfRecord<T = Uint8Array> = PerfSample<T> | PerfLost;

/**
 * Samples of one CPU's ring at once, without copying (see PerfReader.consumeBatch). Sample i is
 * `data.subarray(offsets[i], offsets[i] + lengths[i])`: the raw sample as the kernel stored it
 * (padded like PerfSample.data). Everything here is valid only until the callback returns: the
 * ring's space is handed back to the kernel right after, and the kernel may overwrite it.
 * In a batch straight from the ring `data.byteOffset` is a multiple of 8 and every offset is 4
 * more than one (a sample's bytes follow its 12-byte record header); in a batch of copies queued
 * by earlier reads the samples are 8-aligned. Read multi-byte fields with a DataView.
 *
 * `lost` is the number of samples the kernel dropped on this CPU (ring full or paused) that the
 * LOST records among this batch's records report. A LOST record comes in front of the first
 * sample that fit after the drop, so the drop happened before some sample of this batch (or, in
 * a batch with `count` 0, before the next sample of this CPU). 0 when there was none.
 *
 * How batches are cut (batches(), consumeBatch(), readBatch()): one CPU's ring per batch, rings
 * served in turn; at most `maxRecords` samples, never past the end of the ring's data area. A
 * sample that wraps around that end comes alone, as a copy in a scratch buffer (reused by the
 * next batch). consumeBatch() and readBatch() count samples plus LOST records. The ring's space
 * is handed back (data_tail written) when the batch is settled; closing the reader meanwhile is
 * allowed, nothing is written to the ring then. With a `decode` option, records that earlier
 * reads took out of a ring are queued decoded: taking a batch then throws InvalidArgumentError
 * until they are read. Not available for overwritable readers.
 */
export interface PerfBatch extends RecordBatch {
  readonly cpu: number;
  /** Samples in the batch (may be 0 when the batch only reports `lost`). */
  readonly count: number;
  readonly lost: number;
}

/**
 * Options of {@link PerfReader}: the ring size per CPU, the wakeup threshold (bytes or events),
 * overwritable rings, which CPUs, and a decode function for typed samples.
 */
export interface PerfReaderOptions<T> {
  /**
   * Bytes of ring per CPU, rounded up to a power-of-two number of pages (default 64 KiB). One
   * more page per CPU holds the ring's control words.
   */
  perCpuBuffer?: number;
  /** Wake the reader once this many bytes are in a ring (instead of after every event). */
  watermark?: number;
  /** Wake the reader after this many events (default 1). Do not combine with `watermark`. */
  wakeupEvents?: number;
  /** A backward, overwrite-oldest ring that always holds the newest records (see the module comment). */
  overwritable?: boolean;
  /** CPUs to open rings on (default: the online CPUs). Each must be below the map's max_entries. */
  cpus?: readonly number[];
  /**
   * Turns a sample's bytes into the record's `data`. It gets a view that is valid only during the
   * call (into the ring, or into a scratch copy when the sample wraps). It is called when the
   * sample is taken out of the ring, which a read may do for up to 1024 records ahead of the
   * ones it returns; if it throws, the sample is consumed and the error goes to the read that
   * reaches it. Default: a copy (a view into a slab shared with other samples: see PerfReader).
   */
  decode?: (view: Uint8Array, cpu: number) => T;
}

interface CpuRing {
  readonly cpu: number;
  readonly fd: FD;
  /** The control page plus the data pages. */
  mapping: ArrayBuffer | undefined;
  readonly meta: BigInt64Array;
  /** data_head and data_tail. */
  readonly headPos: RingPosition;
  readonly tailPos: RingPosition;
  /** Where the data area starts in the mapping. */
  readonly dataOffset: number;
  readonly data: Uint8Array;
  readonly words: Int32Array;
  readonly size: number;
  readonly mask: number;
  /** Forward rings: our tail and the last head seen (exact up to 2^53 bytes). */
  tail: number;
  head: number;
  /** Overwritable rings: the head at the last snapshot, and records taken from it not yet read. */
  prevHead: bigint;
  queue: PerfRecord<unknown>[];
  /** Installed in the map at index `cpu`. */
  inMap: boolean;
}

const DATA_HEAD = PERF_MMAP_DATA_HEAD / 8;
const DATA_OFFSET = PERF_MMAP_DATA_OFFSET / 8;
const DATA_SIZE = PERF_MMAP_DATA_SIZE / 8;
const U64 = (1n << 64n) - 1n;
/** Records a read takes out of one ring ahead of the reads that return them. */
const QUEUE_CAP = 1024;
/**
 * Record fields as word indexes from the record's first word (the rings are read as Int32Array),
 * computed once here from the layouts in src/sys/perf-event.ts: the header's type and size words,
 * a LOST record's u64 count (low word first) and a SAMPLE's u32 raw size.
 */
const TYPE_W = PERF_HEADER_TYPE_WORD;
const SIZE_W = PERF_HEADER_SIZE_WORD;
const SIZE_SHIFT = PERF_HEADER_SIZE_SHIFT;
const LOST_W = PERF_RECORD_LOST_LOST >> 2;
const RAW_SIZE_W = PERF_RECORD_SAMPLE_RAW_SIZE >> 2;
/** A sample record: perf_event_header, then the u32 size of the raw data, then the data. */
const SAMPLE_DATA = PERF_RECORD_SAMPLE_RAW_DATA;
/** Slab offsets of copied runs are 4 modulo 8, so that sample data (12 bytes into an 8-aligned record) lands 8-aligned. */
const COPY_PHASE = 4;

/** A PerfBatch: the first `count` entries of `index`, samples of `cpu`'s ring. */
class CpuBatch extends Batch implements PerfBatch {
  constructor(readonly cpu: number, data: Uint8Array, index: BatchIndex, count: number, readonly lost: number) {
    super(data, new DataView(data.buffer, data.byteOffset, data.byteLength), index.offsets.subarray(0, count), index.lengths.subarray(0, count), count);
  }
}

function u32Bytes(n: number): Uint8Array {
  return new Uint8Array(Uint32Array.of(n).buffer);
}

/**
 * A reader for a BPF perf event array: one ring per CPU, read as one stream of records.
 *
 * (`for await (const rec of reader)` yields one record at a time: a copy `{ cpu, data }` or
 * `{ cpu, lost }`, a promise each; for low rates.)
 *
 * Records of one CPU come in order; rings are served round-robin, a batch of up to 1024 records
 * at a time, so records of different CPUs interleave in no particular order. A read takes a batch
 * out of a ring (handing its space back to the kernel) and queues what it does not return for the
 * next reads; closing the reader drops what is queued. In the default mode samples are copies:
 * views into 64 KiB slabs shared by many samples, 8-byte aligned; read them through
 * `byteOffset`/`byteLength`, and `.slice()` one you keep for long so that it does not hold its
 * slab. `batches()` (the fast way) and `consumeBatch(cb)` / `readBatch(cb)` hand over one ring's
 * samples at a time as one zero-copy view of the ring, LOST counts included (see PerfBatch).
 * Reads, iteration, abort, close and ref behave as for RingBufReader. Closing removes the
 * reader's events from the map. Keep the map open while the reader is open.
 *
 * Requires Linux 4.4 (bpf_perf_event_output into a perf_event_array map); overwritable rings 4.7.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) from the constructor when the map
 *   is not a perf_event_array or an option is out of range, and from consumeBatch() when it cannot
 *   be used (an overwritable reader, decoded records still queued).
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) for an overwritable reader on a
 *   kernel without backward rings.
 * @throws {@link BpfSyscallError} (`code` is the errno name) when perf_event_open or mmap fails.
 * @throws {@link ClosedError} (`ERR_BPFKIT_CLOSED`) from a read after close().
 * @example
 * ```ts
 * const reader = new PerfReader(coll.maps.get('perf_array')!, { perCpuBuffer: 64 * 1024 });
 * for await (const batch of reader.batches()) {           // one CPU's samples, valid until the next step
 *   if (batch.lost) console.warn(`cpu ${batch.cpu} lost ${batch.lost}`);
 *   for (let i = 0; i < batch.count; i++) handle(batch.cpu, batch.view.getUint32(batch.offsets[i]!, true));
 * }
 * ```
 */
export class PerfReader<T = Uint8Array> extends PollingReader<PerfRecord<T>, PerfBatch> {
  readonly map: BpfMap;
  /** Data bytes per CPU ring. */
  readonly perCpuBuffer: number;
  readonly overwritable: boolean;
  readonly #rings: CpuRing[] = [];
  readonly #decode: (view: Uint8Array, cpu: number) => T;
  readonly #copy: boolean;
  #scratch = new Uint8Array(256);
  #next = 0;
  #paused = false;
  /** Forward rings: records taken out of a ring and not returned yet, queue[head..len). */
  readonly #queue = new CopyQueue<PerfRecord<T>>();
  /** A decoder's error, thrown by the read that reaches it (after the queued records before it). */
  #failure: { error: unknown } | undefined;
  #slab: Slab | undefined;
  /** #measure: the size of the record that did not fit in the slab, else 0. */
  #blocked = 0;
  /** The held batch: its ring (undefined when it views queued copies), the tail after it, its records, the ring to serve next. */
  #heldRing: CpuRing | undefined;
  #heldTail = 0;
  #heldRecords = 0;
  #heldNext = 0;
  /** consumeBatch(): sample offsets and lengths, grown as needed. */
  readonly #index = new BatchIndex(1024);

  constructor(map: BpfMap, options: PerfReaderOptions<T> = {}) {
    super();
    if (map.type !== 'perf_event_array') {
      throw new InvalidArgumentError(`PerfReader needs a perf_event_array map; map ${map.name} is a ${map.type}`);
    }
    if (options.watermark !== undefined && options.wakeupEvents !== undefined) {
      throw new InvalidArgumentError('PerfReader: give watermark or wakeupEvents, not both');
    }
    const n = native();
    const { PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_SHARED } = n.constants;
    const requested = options.perCpuBuffer ?? 64 * 1024;
    if (!Number.isInteger(requested) || requested <= 0) {
      throw new InvalidArgumentError(`perCpuBuffer must be a positive number of bytes, got ${requested}`);
    }
    let pages = 1;
    while (pages * PAGE_SIZE < requested) pages *= 2;
    const size = pages * PAGE_SIZE;
    const watermark = options.watermark;
    if (watermark !== undefined && (!Number.isInteger(watermark) || watermark <= 0 || watermark > size)) {
      throw new InvalidArgumentError(`watermark must be between 1 and the ring size (${size} bytes), got ${watermark}`);
    }
    const wakeupEvents = options.wakeupEvents ?? (watermark === undefined ? 1 : undefined);
    if (wakeupEvents !== undefined && (!Number.isInteger(wakeupEvents) || wakeupEvents <= 0)) {
      throw new InvalidArgumentError(`wakeupEvents must be a positive integer, got ${wakeupEvents}`);
    }
    const cpus = options.cpus ?? onlineCpus();
    for (const cpu of cpus) {
      if (!Number.isInteger(cpu) || cpu < 0 || cpu >= map.maxEntries) {
        throw new InvalidArgumentError(`CPU ${cpu} has no slot in map ${map.name} (max_entries ${map.maxEntries})`);
      }
    }
    this.map = map;
    this.perCpuBuffer = size;
    this.overwritable = options.overwritable === true;
    this.#copy = options.decode === undefined;
    this.#decode = options.decode ?? ((view: Uint8Array) => view.slice() as unknown as T);

    const attr = perfEventAttr({
      type: PERF_TYPE_SOFTWARE,
      config: PERF_COUNT_SW_BPF_OUTPUT,
      samplePeriod: 1,
      sampleType: PERF_SAMPLE_RAW,
      flags: { writeBackward: this.overwritable },
      ...(watermark !== undefined ? { wakeupWatermark: watermark } : { wakeupEvents: wakeupEvents! }),
    });
    const prot = this.overwritable ? PROT_READ : PROT_READ | PROT_WRITE;
    try {
      for (const cpu of cpus) {
        let fd: FD;
        try {
          fd = perfEventOpen(attr, -1, cpu, -1, undefined, `perf buffer (cpu ${cpu})`);
        } catch (e) {
          if (this.overwritable && e instanceof BpfSyscallError && e.code === 'EINVAL') {
            throw new NotSupportedError('overwritable perf buffer', 'perf_event_open refused write_backward', '4.7');
          }
          throw e;
        }
        const mapping = n.mmap(fd.value, PAGE_SIZE + size, prot, MAP_SHARED, 0);
        if (typeof mapping === 'number') {
          fd.close();
          throw new BpfSyscallError(mapping, 'mmap', `perf buffer (cpu ${cpu})`,
            mapping === -1 || mapping === -12 ? 'the ring may exceed kernel.perf_event_mlock_kb; lower perCpuBuffer' : undefined);
        }
        const meta = new BigInt64Array(mapping, 0, PAGE_SIZE / 8);
        // data_offset/data_size are filled in by kernels since 4.1; before that the data follows the page.
        const offset = Number(meta[DATA_OFFSET]) || PAGE_SIZE;
        const dataSize = Number(meta[DATA_SIZE]) || size;
        const ring: CpuRing = {
          cpu, fd, mapping, meta,
          headPos: new RingPosition(mapping, PERF_MMAP_DATA_HEAD, dataSize),
          tailPos: new RingPosition(mapping, PERF_MMAP_DATA_TAIL, dataSize),
          dataOffset: offset,
          data: new Uint8Array(mapping, offset, dataSize),
          words: new Int32Array(mapping, offset, dataSize / 4),
          size: dataSize, mask: dataSize - 1,
          tail: 0, head: 0, prevHead: 0n, queue: [], inMap: false,
        };
        this.#rings.push(ring);
        if (!this.overwritable) {
          ring.tail = ring.tailPos.load();
          ring.head = ring.headPos.load();
        } else {
          ring.prevHead = BigInt.asUintN(64, Atomics.load(meta, DATA_HEAD));
        }
        perfEventEnable(fd.value);
        map.update(u32Bytes(cpu), u32Bytes(fd.value));
        ring.inMap = true;
      }
    } catch (e) {
      this.#teardown();
      throw e;
    }
  }

  /** The CPUs this reader has rings on. */
  get cpus(): number[] {
    return this.#rings.map((r) => r.cpu);
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Stops the kernel writing into every ring (what it would write is counted as lost). */
  pause(): void {
    this.checkOpen();
    for (const r of this.#rings) perfEventPauseOutput(r.fd.value, true);
    this.#paused = true;
  }

  /** Lets the kernel write again after pause(). */
  resume(): void {
    this.checkOpen();
    for (const r of this.#rings) perfEventPauseOutput(r.fd.value, false);
    this.#paused = false;
  }

  /** holdBatch() for one ring: undefined when it had nothing to deliver. */
  #holdRing(ring: CpuRing, max: number): PerfBatch | undefined {
    for (;;) {
      const tail = ring.tail;
      const head = (ring.head = ring.headPos.loadFrom(tail));
      if (head <= tail) return undefined;
      const avail = head - tail;
      const words = ring.words;
      const mask = ring.mask;
      const size = ring.size;
      // The batch's view starts at absolute position `base` (ring offset baseOff) and may not
      // go past the end of the data area.
      let base = tail;
      let baseOff = tail & mask;
      let end = 0; // bytes of the view
      let count = 0;
      let records = 0;
      let lost = 0;
      let rel = 0;
      let scratch: Uint8Array | undefined;
      while (rel < avail && count < max) {
        const pos = tail + rel;
        const off = pos & mask;
        const w = off >> 2;
        const type = words[w + TYPE_W]!;
        const recSize = words[w + SIZE_W]! >>> SIZE_SHIFT;
        if (recSize < PERF_EVENT_HEADER_SIZE || recSize > avail - rel) {
          if (rel > 0) break; // deliver what came before; the next batch starts at the bad header
          this.#setTail(ring, head); // resynchronise at the head
          return undefined;
        }
        if (pos - base + baseOff >= size) { // past the end of the data area
          if (count > 0) break;
          base = pos;
          baseOff = off;
        }
        if (type === PERF_RECORD_SAMPLE) {
          const body = (off + PERF_RECORD_SAMPLE_RAW_SIZE) & mask;
          const raw = Math.min(words[body >> 2]! >>> 0, recSize - SAMPLE_DATA);
          const at = pos + SAMPLE_DATA - base; // the sample's bytes, relative to the view
          if (at + raw + baseOff > size) { // wraps around the end: alone, in scratch
            if (count > 0) break;
            scratch = this.#sampleView(ring, off, recSize);
            this.#index.set(0, 0, raw);
            count = 1;
            records++;
            rel += recSize;
            break;
          }
          this.#index.set(count, at, raw);
          end = at + raw;
          count++;
          records++;
        } else if (type === PERF_RECORD_LOST) {
          const at = ((off + PERF_RECORD_LOST_LOST) & mask) >> 2;
          lost += (words[at + 1]! >>> 0) * 2 ** 32 + (words[at]! >>> 0);
          records++;
        }
        rel += recSize;
      }
      if (records === 0) { // records of other types only
        this.#setTail(ring, tail + rel);
        continue;
      }
      const data = scratch ?? new Uint8Array(ring.mapping!, ring.dataOffset + baseOff, end);
      this.#heldRing = ring;
      this.#heldTail = tail + rel;
      this.#heldRecords = records;
      return new CpuBatch(ring.cpu, data, this.#index, count, lost);
    }
  }

  /** holdBatch() with records queued by earlier reads (copying mode): up to `max` samples of one slab. */
  #holdQueued(max: number): PerfBatch {
    const q = this.#queue.items;
    const head = this.#queue.head;
    const cpu = q[head]!.cpu;
    let buffer: ArrayBufferLike | undefined;
    let base = 0;
    let count = 0;
    let lost = 0;
    let records = 0;
    let end = 0;
    while (head + records < this.#queue.len && count < max) {
      const rec = q[head + records]!;
      if (rec.lost !== undefined) {
        lost += rec.lost;
      } else {
        const data = rec.data as unknown as Uint8Array;
        if (buffer === undefined) {
          buffer = data.buffer;
          base = data.byteOffset; // 8-aligned (see COPY_PHASE)
        } else if (data.buffer !== buffer) {
          break;
        }
        this.#index.set(count, data.byteOffset - base, data.byteLength);
        end = data.byteOffset + data.byteLength - base;
        count++;
      }
      records++;
    }
    this.#heldRing = undefined;
    this.#heldRecords = records;
    const data = buffer === undefined ? new Uint8Array(0) : new Uint8Array(buffer, base, end);
    return new CpuBatch(cpu, data, this.#index, count, lost);
  }

  protected take(): PerfRecord<T> | None {
    this.checkOpen();
    this.settleHeld();
    if (this.overwritable) return this.#takeBackward();
    if (!this.#queue.pending) {
      if (this.#failure === undefined && !this.#fill()) return NONE;
      if (!this.#queue.pending) {
        const { error } = this.#failure!;
        this.#failure = undefined;
        throw error;
      }
    }
    return this.#queue.shift();
  }

  protected ready(): boolean {
    this.checkOpen();
    this.settleHeld();
    if (this.#queue.pending || this.#failure !== undefined) return true;
    for (const ring of this.#rings) {
      if (this.overwritable) {
        if (ring.queue.length > 0 || BigInt.asUintN(64, Atomics.load(ring.meta, DATA_HEAD)) !== ring.prevHead) return true;
        continue;
      }
      if (ring.tail < ring.head) return true;
      ring.head = ring.headPos.loadFrom(ring.tail);
      if (ring.tail < ring.head) return true;
    }
    return false;
  }

  protected holdBatch(max: number): PerfBatch | undefined {
    this.checkOpen();
    if (this.overwritable) throw new InvalidArgumentError('batches and consumeBatch() are not available on an overwritable PerfReader');
    if (this.#queue.pending || this.#failure !== undefined) {
      if (!this.#copy) {
        throw new InvalidArgumentError('decoded records taken out of the ring by earlier reads are queued; read them before taking batches');
      }
      return this.#holdQueued(max);
    }
    const rings = this.#rings;
    const n = rings.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const batch = this.#holdRing(rings[i]!, max);
      if (batch !== undefined) {
        this.#heldNext = (i + 1) % n;
        return batch;
      }
    }
    return undefined;
  }

  protected commitBatch(): void {
    const ring = this.#heldRing;
    if (ring !== undefined) {
      this.#heldRing = undefined;
      this.#setTail(ring, this.#heldTail);
      this.#next = this.#heldNext;
      return;
    }
    this.#queue.drop(this.#heldRecords);
  }

  protected delivered(): number {
    return this.#heldRecords;
  }

  protected pollFds(): number[] {
    return this.#rings.map((r) => r.fd.value);
  }

  protected release(): void {
    this.#teardown();
    this.#queue.clear();
    this.#failure = undefined;
    this.#slab = undefined;
  }

  protected describe(): string {
    return `perf buffer reader (map ${this.map.name})`;
  }

  #teardown(): void {
    const n = native();
    for (const ring of this.#rings) {
      if (ring.inMap && !this.map.closed) {
        try { this.map.delete(u32Bytes(ring.cpu)); } catch { /* already gone */ }
      }
      ring.inMap = false;
      if (!ring.fd.closed) {
        try { perfEventDisable(ring.fd.value); } catch { /* closing anyway */ }
      }
      if (ring.mapping) n.munmap(ring.mapping);
      ring.mapping = undefined;
      ring.fd.close();
      ring.queue = [];
    }
  }

  /** Forward rings, with the queue empty: queues a batch from the next ring (in turn) that has records. */
  #fill(): boolean {
    this.#queue.reset();
    const rings = this.#rings;
    const n = rings.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      if (this.#copy ? this.#copyBatch(rings[i]!) : this.#decodeBatch(rings[i]!)) {
        this.#next = (i + 1) % n;
        return true;
      }
    }
    return false;
  }

  /**
   * How many bytes of whole records, from the tail on, to take in one batch: at most QUEUE_CAP
   * records and `room` bytes, and never past `avail` (head - tail). Sets #blocked to the size of
   * a record that `room` stopped at. A header the kernel cannot have written makes the reader
   * resynchronise at the head (skipping what is there) rather than loop: returns -1 then.
   */
  #measure(ring: CpuRing, avail: number, room: number): number {
    const words = ring.words;
    const mask = ring.mask;
    const tail = ring.tail;
    let rel = 0;
    let n = 0;
    this.#blocked = 0;
    while (rel < avail && n < QUEUE_CAP) {
      const size = words[(((tail + rel) & mask) >> 2) + SIZE_W]! >>> SIZE_SHIFT;
      if (size < PERF_EVENT_HEADER_SIZE || size > avail - rel) {
        if (rel > 0) break; // deliver what came before; the next batch starts at the bad header
        this.#setTail(ring, tail + avail);
        return -1;
      }
      if (rel + size > room) {
        this.#blocked = size;
        break;
      }
      rel += size;
      n++;
    }
    return rel;
  }

  /**
   * Copying mode: copies a batch of records of `ring` into the slab with one memcpy (two when
   * the batch wraps around the end of the ring), hands their space back, and queues the samples
   * as views into the slab, and the LOST records. True when something was queued.
   */
  #copyBatch(ring: CpuRing): boolean {
    const slab = (this.#slab ??= new Slab());
    for (;;) {
      const tail = ring.tail;
      const head = (ring.head = ring.headPos.loadFrom(tail));
      if (head <= tail) return false;
      const span = this.#measure(ring, head - tail, slab.room(COPY_PHASE));
      if (span < 0) return false;
      if (span === 0) {
        if (this.#blocked === 0) return false;
        slab.renew(); // perf records are under 64 KiB: one fits in an empty slab
        continue;
      }
      const at = slab.take(span, COPY_PHASE);
      const start = tail & ring.mask;
      const first = Math.min(span, ring.size - start);
      const bytes = slab.bytes;
      bytes.set(ring.data.subarray(start, start + first), at);
      if (first < span) bytes.set(ring.data.subarray(0, span - first), at + first);
      this.#setTail(ring, tail + span);
      // The records, read back from the copy.
      const words = slab.words;
      const buffer = slab.buffer;
      const cpu = ring.cpu;
      const q = this.#queue.items;
      let count = 0;
      for (let p = at; p < at + span;) {
        const w = p >> 2;
        const type = words[w + TYPE_W]!;
        const size = words[w + SIZE_W]! >>> SIZE_SHIFT;
        if (type === PERF_RECORD_SAMPLE) {
          const raw = Math.min(words[w + RAW_SIZE_W]! >>> 0, size - SAMPLE_DATA);
          q[count++] = { cpu, data: new Uint8Array(buffer, p + SAMPLE_DATA, raw) as unknown as T };
        } else if (type === PERF_RECORD_LOST) {
          // { u64 id; u64 lost; } after the header.
          q[count++] = { cpu, lost: (words[w + LOST_W + 1]! >>> 0) * 2 ** 32 + (words[w + LOST_W]! >>> 0) };
        }
        p += size;
      }
      this.#queue.len = count;
      if (count > 0) return true;
      // Only records of other types: look again.
    }
  }

  /**
   * Decoding mode: decodes a batch of samples of `ring` in place (a wrapped one from a scratch
   * copy), queues the results and the LOST records, then hands the space back. A throwing decoder
   * ends the batch: its sample is consumed and the error queued behind the records before it.
   */
  #decodeBatch(ring: CpuRing): boolean {
    for (;;) {
      const tail = ring.tail;
      const head = (ring.head = ring.headPos.loadFrom(tail));
      if (head <= tail) return false;
      const avail = head - tail;
      const words = ring.words;
      const mask = ring.mask;
      const cpu = ring.cpu;
      const q = this.#queue.items;
      let count = 0;
      let rel = 0;
      let n = 0;
      while (rel < avail && n < QUEUE_CAP) {
        const off = (tail + rel) & mask;
        const w = off >> 2;
        const type = words[w + TYPE_W]!;
        const size = words[w + SIZE_W]! >>> SIZE_SHIFT;
        if (size < PERF_EVENT_HEADER_SIZE || size > avail - rel) {
          if (rel > 0) break;
          this.#setTail(ring, head);
          return false;
        }
        rel += size;
        n++;
        if (type === PERF_RECORD_SAMPLE) {
          let data: T;
          try {
            data = this.#decode(this.#sampleView(ring, off, size), cpu);
          } catch (error) {
            this.#failure = { error };
            break;
          }
          q[count++] = { cpu, data };
          if (this.closed) { // the decoder closed the reader: the ring is gone
            this.#queue.len = count;
            return true;
          }
        } else if (type === PERF_RECORD_LOST) {
          const at = ((off + PERF_RECORD_LOST_LOST) & mask) >> 2;
          q[count++] = { cpu, lost: (words[at + 1]! >>> 0) * 2 ** 32 + (words[at]! >>> 0) };
        }
      }
      this.#setTail(ring, tail + rel);
      this.#queue.len = count;
      if (count > 0 || this.#failure !== undefined) return true;
    }
  }

  #setTail(ring: CpuRing, tail: number): void {
    ring.tail = tail;
    ring.tailPos.store(tail);
  }

  /** The raw data of the SAMPLE record at `off`: a view into the ring, or a scratch copy when it wraps. */
  #sampleView(ring: CpuRing, off: number, size: number): Uint8Array {
    // { u32 size; char data[size]; } — the u32 is 8-byte aligned, so it never straddles the end.
    const body = (off + PERF_RECORD_SAMPLE_RAW_SIZE) & ring.mask;
    const raw = Math.min(ring.words[body >> 2]! >>> 0, size - SAMPLE_DATA);
    const start = (off + SAMPLE_DATA) & ring.mask;
    if (start + raw <= ring.size) return new Uint8Array(ring.mapping!, ring.dataOffset + start, raw);
    const first = ring.size - start;
    const dst = this.#scratchOf(raw);
    dst.set(ring.data.subarray(start, ring.size), 0);
    dst.set(ring.data.subarray(0, raw - first), first);
    return dst;
  }

  /** The raw data of the SAMPLE record at `off`, copied into the slab (8-byte aligned). */
  #copySample(ring: CpuRing, off: number, size: number): Uint8Array {
    const body = (off + PERF_RECORD_SAMPLE_RAW_SIZE) & ring.mask;
    const raw = Math.min(ring.words[body >> 2]! >>> 0, size - SAMPLE_DATA);
    const start = (off + SAMPLE_DATA) & ring.mask;
    const slab = (this.#slab ??= new Slab());
    if (slab.room(0) < raw) slab.renew();
    const at = slab.take(raw, 0);
    const first = Math.min(raw, ring.size - start);
    slab.bytes.set(ring.data.subarray(start, start + first), at);
    if (first < raw) slab.bytes.set(ring.data.subarray(0, raw - first), at + first);
    return new Uint8Array(slab.buffer, at, raw);
  }

  #scratchOf(n: number): Uint8Array {
    if (this.#scratch.length < n) this.#scratch = new Uint8Array(Math.max(n, this.#scratch.length * 2));
    return this.#scratch.subarray(0, n);
  }

  /** Overwritable rings, in turn: serve a ring's snapshot queue, taking a new snapshot when it is empty. */
  #takeBackward(): PerfRecord<T> | None {
    const rings = this.#rings;
    const n = rings.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const ring = rings[i]!;
      if (ring.queue.length === 0) this.#snapshot(ring);
      const rec = ring.queue.shift();
      if (rec !== undefined) {
        this.#next = (i + 1) % n;
        return rec as PerfRecord<T>;
      }
    }
    return NONE;
  }

  /**
   * Copies the records written since the last snapshot, newest first. The kernel writes a backward
   * ring downwards from head 0, so the records between the current head and the previous one are
   * the new ones, and at most one ring's worth of them survived; the oldest may be cut off.
   */
  #snapshot(ring: CpuRing): void {
    const pauseHere = !this.#paused;
    if (pauseHere) perfEventPauseOutput(ring.fd.value, true);
    try {
      const head = BigInt.asUintN(64, Atomics.load(ring.meta, DATA_HEAD));
      const fresh = (ring.prevHead - head) & U64;
      if (fresh === 0n) return;
      const limit = fresh > BigInt(ring.size) ? ring.size : Number(fresh);
      const startOff = Number(head & BigInt(ring.mask));
      let rel = 0;
      while (rel + PERF_EVENT_HEADER_SIZE <= limit) {
        const off = (startOff + rel) & ring.mask;
        const type = ring.words[(off >> 2) + TYPE_W]!;
        const size = ring.words[(off >> 2) + SIZE_W]! >>> SIZE_SHIFT;
        if (size < PERF_EVENT_HEADER_SIZE || rel + size > limit) break;
        if (type === PERF_RECORD_SAMPLE) {
          // The ring is paused while we are here, so a decoder may read the sample in place.
          const data = this.#copy ? this.#copySample(ring, off, size) : this.#decode(this.#sampleView(ring, off, size), ring.cpu);
          ring.queue.push({ cpu: ring.cpu, data });
        } else if (type === PERF_RECORD_LOST) {
          const at = ((off + PERF_RECORD_LOST_LOST) & ring.mask) >> 2;
          ring.queue.push({ cpu: ring.cpu, lost: (ring.words[at + 1]! >>> 0) * 2 ** 32 + (ring.words[at]! >>> 0) });
        }
        rel += size;
      }
      ring.prevHead = head;
    } finally {
      if (pauseHere) perfEventPauseOutput(ring.fd.value, false);
    }
  }
}
