/**
 * The two ways a program streams records to user space, laid out in memory exactly as the kernel
 * lays them out, so a reader written against the kernel's mmap ABI reads the emulator's rings
 * unchanged:
 *
 * - BPF_MAP_TYPE_RINGBUF: a consumer page (consumer_pos, the only page user space may map
 *   writable), a producer page (producer_pos), then the data area mapped twice in a row so a record
 *   that wraps reads as one piece. Records are an 8-byte header `{ u32 len | BUSY | DISCARD;
 *   u32 pg_off }` and the sample, padded to 8 bytes. The double mapping is emulated by writing every
 *   byte to both copies.
 * - perf event rings (perf_event_open of PERF_COUNT_SW_BPF_OUTPUT): a perf_event_mmap_page with
 *   data_head/data_tail (placed by the generated perf_event_mmap_page layout), then 2^n data pages holding PERF_RECORD_SAMPLE records
 *   (`{ u32 type; u16 misc; u16 size } u32 raw_size; raw...`) and PERF_RECORD_LOST after drops.
 *
 * Both wake their pollers the way the kernel wakes epoll: ring buffers when the consumer has caught
 * up with the committed record (or BPF_RB_FORCE_WAKEUP), perf rings every `wakeup_events` samples.
 */
import { EmuMap, type MapParams } from './maps.js';
import { PERF_RECORD_LOST_ID, PERF_RECORD_LOST_LOST, PERF_RECORD_SAMPLE_RAW_DATA, PERF_RECORD_SAMPLE_RAW_SIZE } from '../sys/perf-event.js';
import type { KernelObject, ObjectHost } from './objects.js';
import { E2BIG, EAGAIN, EINVAL, ENOENT, ENOSPC, ENOTSUPP, EOPNOTSUPP } from '../abi/errno.js';
import {
  bpf_rb_query_flags, bpf_rb_wakeup_flags, bpf_ringbuf_hdr, bpf_ringbuf_hdr_bits, perf_event_header, perf_event_mmap_page,
  perf_event_sample_format, perf_event_type, perf_sw_ids, perf_type_id,
} from '../abi/uapi.js';

export const PAGE_SIZE = 4096;
// The header bits as a signed 32-bit mask, as `h & BUSY` of a getUint32 needs them.
export const RINGBUF_BUSY_BIT = bpf_ringbuf_hdr_bits.BPF_RINGBUF_BUSY_BIT | 0;
export const RINGBUF_DISCARD_BIT = bpf_ringbuf_hdr_bits.BPF_RINGBUF_DISCARD_BIT;
export const RINGBUF_HDR_SZ = bpf_ringbuf_hdr_bits.BPF_RINGBUF_HDR_SZ;
export const { BPF_RB_NO_WAKEUP, BPF_RB_FORCE_WAKEUP } = bpf_rb_wakeup_flags;
/** Where the data area starts, in pages from the start of the kernel's struct bpf_ringbuf (pg_off of headers). */
const RINGBUF_DATA_PGOFF = 3;

/** A poller watching a {@link Waitable}: told when the fd may have become readable. */
export interface Watcher {
  notify(): void;
}
/** An emulated fd a poller can wait on (ring buffers, perf buffers): its watchers, and whether it is readable. */
export interface Waitable {
  readonly watchers: Set<Watcher>;
  /** Level: is there something to read now? */
  readable(): boolean;
}

function wake(w: Waitable): void {
  for (const p of w.watchers) p.notify();
}

function readU64(view: DataView, o: number): number {
  return view.getUint32(o, true) + view.getUint32(o + 4, true) * 2 ** 32;
}

function writeU64(view: DataView, o: number, v: number): void {
  view.setUint32(o, v % 2 ** 32, true);
  view.setUint32(o + 4, Math.floor(v / 2 ** 32), true);
}

export class RingbufMap extends EmuMap implements Waitable {
  readonly size: number;
  readonly mask: number;
  /** Page 0 of the mapping: consumer_pos. */
  readonly consumerPage: ArrayBuffer;
  /** Pages 1..: producer_pos, then the data area twice. */
  readonly producerPages: ArrayBuffer;
  readonly #consumer: DataView;
  readonly #producer: DataView;
  readonly #data: Uint8Array;
  #pendingPos = 0;
  readonly watchers = new Set<Watcher>();

  constructor(host: ObjectHost, p: MapParams) {
    super(host, p);
    this.size = p.maxEntries;
    this.mask = p.maxEntries - 1;
    this.consumerPage = new ArrayBuffer(PAGE_SIZE);
    this.producerPages = new ArrayBuffer(PAGE_SIZE + 2 * this.size);
    this.#consumer = new DataView(this.consumerPage);
    this.#producer = new DataView(this.producerPages);
    this.#data = new Uint8Array(this.producerPages, PAGE_SIZE);
  }

  get consumerPos(): number {
    return readU64(this.#consumer, 0);
  }

  set consumerPos(v: number) {
    writeU64(this.#consumer, 0, v);
  }

  get producerPos(): number {
    return readU64(this.#producer, 0);
  }

  readable(): boolean {
    return this.producerPos > this.consumerPos;
  }

  /** Writes `bytes` at ring position `pos` into both copies of the data area. */
  #write(pos: number, bytes: Uint8Array): void {
    const at = pos & this.mask;
    const first = Math.min(bytes.length, this.size - at);
    this.#data.set(bytes.subarray(0, first), at);
    this.#data.set(bytes.subarray(0, first), at + this.size);
    if (first < bytes.length) {
      this.#data.set(bytes.subarray(first), 0);
      this.#data.set(bytes.subarray(first), this.size);
    }
  }

  #header(pos: number): number {
    const at = pos & this.mask;
    return new DataView(this.producerPages, PAGE_SIZE + at + bpf_ringbuf_hdr.len, 4).getUint32(0, true);
  }

  #setHeader(pos: number, len: number, pgOff: number): void {
    const h = new Uint8Array(bpf_ringbuf_hdr.$size);
    const v = new DataView(h.buffer);
    v.setUint32(bpf_ringbuf_hdr.len, len >>> 0, true);
    v.setUint32(bpf_ringbuf_hdr.pg_off, pgOff, true);
    this.#write(pos, h);
  }

  /** Reserves room for `size` bytes; the record's position, or -1 when the ring has no room. */
  reserve(size: number): number {
    if (size > 0x3fffffff) return -1;
    const len = (size + RINGBUF_HDR_SZ + 7) & ~7;
    if (len > this.size) return -1;
    const cons = this.consumerPos;
    let pend = this.#pendingPos;
    const prod = this.producerPos;
    while (pend < prod) {
      const h = this.#header(pend);
      if (h & RINGBUF_BUSY_BIT) break;
      pend += ((h & ~RINGBUF_DISCARD_BIT) + RINGBUF_HDR_SZ + 7) & ~7;
    }
    this.#pendingPos = pend;
    const next = prod + len;
    if (next - cons > this.mask || next - pend > this.mask) return -1;
    this.#setHeader(prod, size | RINGBUF_BUSY_BIT, RINGBUF_DATA_PGOFF + ((prod & this.mask) >> 12));
    writeU64(this.#producer, 0, next);
    return prod;
  }

  /** Submits or discards the record reserved at `pos`, with `sample` as its bytes. */
  commit(pos: number, sample: Uint8Array, discard: boolean, flags: number): void {
    if (!discard) this.#write(pos + RINGBUF_HDR_SZ, sample);
    const len = sample.length | (discard ? RINGBUF_DISCARD_BIT : 0);
    this.#setHeader(pos, len, RINGBUF_DATA_PGOFF + ((pos & this.mask) >> 12));
    if (flags & BPF_RB_FORCE_WAKEUP || (this.consumerPos === pos && !(flags & BPF_RB_NO_WAKEUP))) wake(this);
  }

  /** bpf_ringbuf_output: 0, -EINVAL for bad flags, -EAGAIN when full. */
  output(bytes: Uint8Array, flags: number): number {
    if (flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return -EINVAL;
    const pos = this.reserve(bytes.length);
    if (pos < 0) return -EAGAIN;
    this.commit(pos, bytes, false, flags);
    return 0;
  }

  /** bpf_ringbuf_query. */
  query(flags: number): number {
    const Q = bpf_rb_query_flags;
    switch (flags) {
      case Q.BPF_RB_AVAIL_DATA: return this.producerPos - this.consumerPos;
      case Q.BPF_RB_RING_SIZE: return this.size;
      case Q.BPF_RB_CONS_POS: return this.consumerPos;
      case Q.BPF_RB_PROD_POS: return this.producerPos;
      default: return 0;
    }
  }

  /**
   * Reads every committed record from the consumer position on, as a reader of the mmap would, and
   * moves consumer_pos past them. Stops at a record still being written; skips discarded ones.
   */
  drain(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let cons = this.consumerPos;
    const prod = this.producerPos;
    while (cons < prod) {
      const h = this.#header(cons);
      if (h & RINGBUF_BUSY_BIT) break;
      const len = h & ~RINGBUF_DISCARD_BIT;
      const at = (cons & this.mask) + RINGBUF_HDR_SZ;
      if (!(h & RINGBUF_DISCARD_BIT)) out.push(this.#data.slice(at, at + len));
      cons += (len + RINGBUF_HDR_SZ + 7) & ~7;
    }
    this.consumerPos = cons;
    return out;
  }

  // Ring buffers have no elements for bpf() to look at.
  override sysLookup(): number {
    return -ENOTSUPP;
  }
  override sysUpdate(): number {
    return -ENOTSUPP;
  }
  override sysDelete(): number {
    return -ENOTSUPP;
  }
  override sysGetNextKey(): number {
    return -ENOTSUPP;
  }
}

// ---- perf events --------------------------------------------------------------------------------

export const { PERF_TYPE_SOFTWARE } = perf_type_id;
export const { PERF_COUNT_SW_BPF_OUTPUT } = perf_sw_ids;
export const { PERF_SAMPLE_RAW } = perf_event_sample_format;
export const { PERF_RECORD_LOST, PERF_RECORD_SAMPLE } = perf_event_type;
/** header.misc of samples taken in kernel context (a BPF program's output); a #define, not in BTF. */
const PERF_RECORD_MISC_KERNEL = 1;
const { data_head: DATA_HEAD, data_tail: DATA_TAIL, data_offset: DATA_OFFSET, data_size: DATA_SIZE } = perf_event_mmap_page;
const H = perf_event_header;
/** PERF_RECORD_LOST: the header, then u64 id and u64 lost. */
const LOST_SIZE = PERF_RECORD_LOST_LOST + 8;
/** PERF_RECORD_SAMPLE with PERF_SAMPLE_RAW: the header, then u32 size and the raw bytes. */
const RAW_SIZE_FIELD = PERF_RECORD_SAMPLE_RAW_DATA - PERF_RECORD_SAMPLE_RAW_SIZE;

/** A perf event of type software/BPF_OUTPUT, bound to one CPU, with its mmap ring once mapped. */
export class PerfEvent implements KernelObject, Waitable {
  readonly kind = 'perf_event' as const;
  refs = 0;
  readonly cpu: number;
  readonly type: number;
  readonly config: bigint;
  readonly sampleType: bigint;
  readonly wakeupEvents: number;
  readonly watermark: boolean;
  readonly id: number;
  enabled: boolean;
  /** PERF_EVENT_IOC_PAUSE_OUTPUT: nothing is written while paused (samples count as lost). */
  paused = false;
  ring: ArrayBuffer | undefined;
  #meta: DataView | undefined;
  #data: Uint8Array | undefined;
  /** Samples dropped since the last PERF_RECORD_LOST was written. */
  lost = 0;
  #sinceWakeup = 0;
  readonly watchers = new Set<Watcher>();

  constructor(a: { id: number; cpu: number; type: number; config: bigint; sampleType: bigint; wakeupEvents: number; watermark: boolean; disabled: boolean }) {
    this.id = a.id;
    this.cpu = a.cpu;
    this.type = a.type;
    this.config = a.config;
    this.sampleType = a.sampleType;
    this.wakeupEvents = a.wakeupEvents;
    this.watermark = a.watermark;
    this.enabled = !a.disabled;
  }

  /** mmap: the metadata page and 2^n data pages. Mapping again with the same length gives the same memory. */
  map(length: number): ArrayBuffer | number {
    const pages = length / PAGE_SIZE - 1;
    if (!Number.isInteger(pages) || pages < 1 || (pages & (pages - 1)) !== 0) return -EINVAL;
    if (this.ring) return this.ring.byteLength === length ? this.ring : -EINVAL;
    this.ring = new ArrayBuffer(length);
    this.#meta = new DataView(this.ring, 0, PAGE_SIZE);
    this.#data = new Uint8Array(this.ring, PAGE_SIZE);
    writeU64(this.#meta, DATA_OFFSET, PAGE_SIZE);
    writeU64(this.#meta, DATA_SIZE, pages * PAGE_SIZE);
    return this.ring;
  }

  readable(): boolean {
    return this.#meta !== undefined && readU64(this.#meta, DATA_HEAD) !== readU64(this.#meta, DATA_TAIL);
  }

  #put(head: number, bytes: Uint8Array): void {
    const data = this.#data!;
    const at = head % data.length;
    const first = Math.min(bytes.length, data.length - at);
    data.set(bytes.subarray(0, first), at);
    if (first < bytes.length) data.set(bytes.subarray(first), 0);
  }

  /** bpf_perf_event_output into this event's ring: 0, or -ENOSPC when it is full (counted as lost). */
  output(sample: Uint8Array): number {
    if (!this.#meta || !this.#data) return -ENOSPC;
    if (this.paused) {
      this.lost++;
      return -ENOSPC;
    }
    const size = this.#data.length;
    let head = readU64(this.#meta, DATA_HEAD);
    const tail = readU64(this.#meta, DATA_TAIL);
    const rawSize = ((sample.length + RAW_SIZE_FIELD + 7) & ~7) - RAW_SIZE_FIELD;
    const recSize = H.$size + RAW_SIZE_FIELD + rawSize;
    const lostSize = this.lost > 0 ? LOST_SIZE : 0;
    if (head + lostSize + recSize - tail > size) {
      this.lost++;
      return -ENOSPC;
    }
    if (lostSize) {
      const rec = new Uint8Array(LOST_SIZE);
      const v = new DataView(rec.buffer);
      v.setUint32(H.type, PERF_RECORD_LOST, true);
      v.setUint16(H.size, LOST_SIZE, true);
      v.setBigUint64(PERF_RECORD_LOST_ID, BigInt(this.id), true);
      v.setBigUint64(PERF_RECORD_LOST_LOST, BigInt(this.lost), true);
      this.#put(head, rec);
      head += LOST_SIZE;
      this.lost = 0;
    }
    const rec = new Uint8Array(recSize);
    const v = new DataView(rec.buffer);
    v.setUint32(H.type, PERF_RECORD_SAMPLE, true);
    v.setUint16(H.misc, PERF_RECORD_MISC_KERNEL, true);
    v.setUint16(H.size, recSize, true);
    v.setUint32(PERF_RECORD_SAMPLE_RAW_SIZE, rawSize, true);
    rec.set(sample, PERF_RECORD_SAMPLE_RAW_DATA);
    // The padding to 8 bytes is skipped, not written (perf_output_sample's __output_skip): it
    // keeps whatever an earlier record left there once the ring has wrapped.
    this.#put(head, rec.subarray(0, PERF_RECORD_SAMPLE_RAW_DATA + sample.length));
    writeU64(this.#meta, DATA_HEAD, head + recSize);
    this.#sinceWakeup += this.watermark ? recSize : 1;
    const every = this.watermark ? (this.wakeupEvents || size / 2) : Math.max(1, this.wakeupEvents);
    if (this.#sinceWakeup >= every) {
      this.#sinceWakeup = 0;
      wake(this);
    }
    return 0;
  }

  dispose(): void {}
}

/** bpf_perf_event_output's checks of the slot and event (before writing). */
export function perfSlotError(event: PerfEvent | null | undefined, index: number, maxEntries: number, cpu: number): number {
  if (index >= maxEntries) return -E2BIG;
  if (!event) return -ENOENT;
  if (event.type !== PERF_TYPE_SOFTWARE || event.config !== BigInt(PERF_COUNT_SW_BPF_OUTPUT)) return -EINVAL;
  if (event.cpu !== cpu || !event.enabled) return -EOPNOTSUPP; // oncpu: the event is not running on this CPU
  return 0;
}
