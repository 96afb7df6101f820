/**
 * Reading BPF perf event arrays (bpf_perf_event_output) from user space.
 *
 * One perf event of type PERF_COUNT_SW_BPF_OUTPUT is opened per CPU, its ring is memory-mapped
 * (one control page, struct perf_event_mmap_page, then 2^n data pages) and its fd is stored in the
 * perf event array at the CPU's index, which is where `bpf_perf_event_output(ctx, &map,
 * BPF_F_CURRENT_CPU, ...)` writes. The kernel advances `data_head` as it writes; we read
 * records between our tail and the head (Atomics.load, acquire) and hand the space back by writing
 * `data_tail` (Atomics.store, release). Records are 8-byte aligned but may wrap around the end of
 * the ring, so they are copied out piecewise when they do.
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
import { onlineCpus } from './cpus.js';
import { BpfSyscallError, InvalidArgumentError, NotSupportedError } from './errors.js';
import type { BpfMap } from './map.js';
import { native } from './native.js';
import { NONE, PollingReader, type None } from './ringbuf.js';
import type { FD } from './sys/fd.js';
import {
  PERF_COUNT_SW_BPF_OUTPUT, PERF_EVENT_HEADER_SIZE, PERF_MMAP_DATA_HEAD, PERF_MMAP_DATA_OFFSET, PERF_MMAP_DATA_SIZE,
  PERF_MMAP_DATA_TAIL, PERF_RECORD_LOST, PERF_RECORD_SAMPLE, PERF_SAMPLE_RAW, PERF_TYPE_SOFTWARE, perfEventAttr,
  perfEventDisable, perfEventEnable, perfEventOpen, perfEventPauseOutput,
} from './sys/perf-event.js';

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

export type PerfRecord<T = Uint8Array> = PerfSample<T> | PerfLost;

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
   * call (into the ring, or into a scratch copy when the sample wraps). Default: a copy.
   */
  decode?: (view: Uint8Array, cpu: number) => T;
}

interface CpuRing {
  readonly cpu: number;
  readonly fd: FD;
  /** The control page plus the data pages. */
  mapping: ArrayBuffer | undefined;
  readonly meta: BigInt64Array;
  readonly data: Uint8Array;
  readonly words: Uint32Array;
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
const DATA_TAIL = PERF_MMAP_DATA_TAIL / 8;
const DATA_OFFSET = PERF_MMAP_DATA_OFFSET / 8;
const DATA_SIZE = PERF_MMAP_DATA_SIZE / 8;
const U64 = (1n << 64n) - 1n;

function u32Bytes(n: number): Uint8Array {
  return new Uint8Array(Uint32Array.of(n).buffer);
}

/**
 * A reader for a BPF perf event array: one ring per CPU, read as one stream of records.
 *
 * ```ts
 * const reader = new PerfReader(coll.maps.get('perf_array')!, { perCpuBuffer: 64 * 1024 });
 * for await (const rec of reader) {
 *   if (rec.lost !== undefined) console.warn(`cpu ${rec.cpu} lost ${rec.lost}`);
 *   else handle(rec.cpu, rec.data);
 * }
 * ```
 *
 * Records of one CPU come in order; rings are served round-robin, so records of different CPUs
 * interleave in no particular order. Reads, iteration, abort, close and ref behave as for
 * RingBufReader. Closing removes the reader's events from the map. Keep the map open while the
 * reader is open.
 */
export class PerfReader<T = Uint8Array> extends PollingReader<PerfRecord<T>> {
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
          data: new Uint8Array(mapping, offset, dataSize),
          words: new Uint32Array(mapping, offset, dataSize / 4),
          size: dataSize, mask: dataSize - 1,
          tail: 0, head: 0, prevHead: 0n, queue: [], inMap: false,
        };
        this.#rings.push(ring);
        if (!this.overwritable) {
          ring.tail = Number(Atomics.load(meta, DATA_TAIL));
          ring.head = Number(Atomics.load(meta, DATA_HEAD));
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

  protected take(): PerfRecord<T> | None {
    this.checkOpen();
    const rings = this.#rings;
    const n = rings.length;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const ring = rings[i]!;
      const rec = this.overwritable ? this.#takeBackward(ring) : this.#takeForward(ring);
      if (rec !== NONE) {
        this.#next = (i + 1) % n;
        return rec;
      }
    }
    return NONE;
  }

  protected ready(): boolean {
    this.checkOpen();
    for (const ring of this.#rings) {
      if (this.overwritable) {
        if (ring.queue.length > 0 || BigInt.asUintN(64, Atomics.load(ring.meta, DATA_HEAD)) !== ring.prevHead) return true;
        continue;
      }
      if (ring.tail < ring.head) return true;
      ring.head = Number(Atomics.load(ring.meta, DATA_HEAD));
      if (ring.tail < ring.head) return true;
    }
    return false;
  }

  protected pollFds(): number[] {
    return this.#rings.map((r) => r.fd.value);
  }

  protected release(): void {
    this.#teardown();
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

  /** One record of a forward ring, or NONE. Skips record types other than SAMPLE and LOST. */
  #takeForward(ring: CpuRing): PerfRecord<T> | None {
    for (;;) {
      if (ring.tail >= ring.head) {
        ring.head = Number(Atomics.load(ring.meta, DATA_HEAD));
        if (ring.tail >= ring.head) return NONE;
      }
      const off = ring.tail % ring.size;
      const type = ring.words[off >> 2]!;
      const size = ring.words[(off >> 2) + 1]! >>> 16;
      if (size < PERF_EVENT_HEADER_SIZE || size > ring.head - ring.tail) {
        // A header the kernel cannot have written: resynchronise at the head rather than loop.
        this.#setTail(ring, ring.head);
        return NONE;
      }
      let rec: PerfRecord<T> | undefined;
      try {
        rec = this.#parse(ring, type, off, size);
      } finally {
        if (!this.closed) this.#setTail(ring, ring.tail + size);
      }
      if (rec) return rec;
    }
  }

  #setTail(ring: CpuRing, tail: number): void {
    ring.tail = tail;
    Atomics.store(ring.meta, DATA_TAIL, BigInt(tail));
  }

  /** Decodes the record of `size` bytes whose header is at ring offset `off`; undefined for other types. */
  #parse(ring: CpuRing, type: number, off: number, size: number): PerfRecord<T> | undefined {
    const body = (off + PERF_EVENT_HEADER_SIZE) & ring.mask;
    if (type === PERF_RECORD_SAMPLE) {
      // { u32 size; char data[size]; } — the u32 is 8-byte aligned, so it never straddles the end.
      const raw = Math.min(ring.words[body >> 2]!, size - PERF_EVENT_HEADER_SIZE - 4);
      const start = (body + 4) & ring.mask;
      if (start + raw <= ring.size) {
        return { cpu: ring.cpu, data: this.#decode(ring.data.subarray(start, start + raw), ring.cpu) };
      }
      // Wrapped: copy the two pieces.
      const first = ring.size - start;
      const dst = this.#copy ? new Uint8Array(raw) : this.#scratchOf(raw);
      dst.set(ring.data.subarray(start, ring.size), 0);
      dst.set(ring.data.subarray(0, raw - first), first);
      return { cpu: ring.cpu, data: this.#copy ? (dst as unknown as T) : this.#decode(dst, ring.cpu) };
    }
    if (type === PERF_RECORD_LOST) {
      // { u64 id; u64 lost; } — both 8-byte aligned.
      const at = (body + 8) & ring.mask;
      const lo = ring.words[at >> 2]!;
      const hi = ring.words[(at >> 2) + 1]!;
      return { cpu: ring.cpu, lost: hi * 2 ** 32 + lo };
    }
    return undefined;
  }

  #scratchOf(n: number): Uint8Array {
    if (this.#scratch.length < n) this.#scratch = new Uint8Array(Math.max(n, this.#scratch.length * 2));
    return this.#scratch.subarray(0, n);
  }

  /** Overwritable rings: serve the snapshot queue, taking a new snapshot when it is empty. */
  #takeBackward(ring: CpuRing): PerfRecord<T> | None {
    if (ring.queue.length === 0) this.#snapshot(ring);
    const rec = ring.queue.shift();
    return rec === undefined ? NONE : (rec as PerfRecord<T>);
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
      const copyMode = this.#copy;
      let rel = 0;
      while (rel + PERF_EVENT_HEADER_SIZE <= limit) {
        const off = (startOff + rel) & ring.mask;
        const type = ring.words[off >> 2]!;
        const size = ring.words[(off >> 2) + 1]! >>> 16;
        if (size < PERF_EVENT_HEADER_SIZE || rel + size > limit) break;
        // The ring will be overwritten after resume: samples must be copies even with a decoder.
        // (In copy mode #parse already returns copies.)
        const rec = type === PERF_RECORD_SAMPLE && !copyMode
          ? { cpu: ring.cpu, data: this.#decode(this.#copyOut(ring, off, size), ring.cpu) }
          : this.#parse(ring, type, off, size);
        if (rec) ring.queue.push(rec);
        rel += size;
      }
      ring.prevHead = head;
    } finally {
      if (pauseHere) perfEventPauseOutput(ring.fd.value, false);
    }
  }

  /** The raw sample bytes of the SAMPLE record at `off`, as a fresh copy. */
  #copyOut(ring: CpuRing, off: number, size: number): Uint8Array {
    const body = (off + PERF_EVENT_HEADER_SIZE) & ring.mask;
    const raw = Math.min(ring.words[body >> 2]!, size - PERF_EVENT_HEADER_SIZE - 4);
    const start = (body + 4) & ring.mask;
    const out = new Uint8Array(raw);
    const first = Math.min(raw, ring.size - start);
    out.set(ring.data.subarray(start, start + first), 0);
    if (first < raw) out.set(ring.data.subarray(0, raw - first), first);
    return out;
  }
}
