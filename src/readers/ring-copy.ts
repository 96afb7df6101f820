/**
 * Pieces shared by the ring buffer and perf buffer readers for taking records out of a
 * memory-mapped ring quickly: slabs that copies are carved from, and cheap loads and stores of
 * the rings' u64 positions.
 *
 * Slabs. Copying a record with `view.slice()` costs an ArrayBuffer per record, and V8 gives every
 * typed array over 64 bytes a backing store of its own (a malloc, a finalizer, external-memory
 * accounting): about 0.4 µs a copy. Instead, the readers copy whole runs of records with one
 * memcpy into a 64 KiB slab and hand each record out as a `Uint8Array` view into it. A full slab is
 * replaced by a new one; an old slab lives as long as any view into it does. So a record's
 * `.buffer` is the slab, shared with its neighbours: use `byteOffset`/`byteLength` (as with any
 * view), and `.slice()` a record you keep for long if the other records of its slab should be
 * freed.
 *
 * @internal
 * @module
 */
import { endianness } from 'node:os';

/** Bytes per slab. */
export const SLAB_SIZE = 64 * 1024;

export class Slab {
  buffer: ArrayBuffer;
  bytes: Uint8Array;
  words: Int32Array;
  /** First free byte. */
  pos = 0;

  constructor() {
    this.buffer = new ArrayBuffer(SLAB_SIZE);
    this.bytes = new Uint8Array(this.buffer);
    this.words = new Int32Array(this.buffer);
  }

  /** Bytes free from the first offset at or after `pos` that is `phase` modulo 8. */
  room(phase: number): number {
    return SLAB_SIZE - (((this.pos + 7 - phase) & ~7) + phase);
  }

  /**
   * Takes `n` bytes at an offset that is `phase` modulo 8 (so that the records copied there
   * keep their alignment) and returns that offset. The caller has checked room(phase) >= n.
   */
  take(n: number, phase: number): number {
    const at = ((this.pos + 7 - phase) & ~7) + phase;
    this.pos = at + n;
    return at;
  }

  /** Starts a fresh slab; views into the old one keep it alive. */
  renew(): void {
    this.buffer = new ArrayBuffer(SLAB_SIZE);
    this.bytes = new Uint8Array(this.buffer);
    this.words = new Int32Array(this.buffer);
    this.pos = 0;
  }
}

const LITTLE_ENDIAN = endianness() === 'LE';
const TWO_32 = 2 ** 32;

/**
 * A u64 ring position in shared memory (a ring buffer's producer or consumer position, a perf
 * ring's data_head or data_tail), as an exact Number (positions stay far below 2^53).
 *
 * A BigInt64Array access allocates a BigInt every time. But a reader always knows a position
 * close to the one it loads (the producer is at most a ring ahead of the consumer), and a store
 * mostly leaves the upper half alone: so on little-endian machines these use 32-bit atomic
 * accesses to the low half, and fall back to the u64 only when the upper half changes. A 32-bit
 * store to the low half of a u64 whose upper half is unchanged is seen by a 64-bit load as either
 * the old or the new position, never a mix.
 *
 * Loads are Atomics.load (acquire) and stores Atomics.store (release), as the ring protocols ask.
 * @internal
 */
export class RingPosition {
  readonly #big: BigInt64Array;
  readonly #low: Int32Array | undefined;
  /** loadFrom() may use the low half alone. */
  readonly #lowLoads: boolean;
  /** Stores: the published position minus its low 32 bits. */
  #high: number;

  /** `maxAhead`: how far beyond the position passed to loadFrom() the loaded one can be (the ring's size). */
  constructor(buffer: ArrayBuffer, byteOffset: number, maxAhead: number) {
    this.#big = new BigInt64Array(buffer, byteOffset, 1);
    this.#low = LITTLE_ENDIAN ? new Int32Array(buffer, byteOffset, 1) : undefined;
    this.#lowLoads = LITTLE_ENDIAN && maxAhead < TWO_32;
    this.#high = Math.floor(this.load() / TWO_32) * TWO_32;
  }

  /** The position, read as a whole u64. */
  load(): number {
    return Number(BigInt.asUintN(64, Atomics.load(this.#big, 0)));
  }

  /** The position, known to be in [near, near + maxAhead]. */
  loadFrom(near: number): number {
    if (!this.#lowLoads) return this.load();
    return near + ((Atomics.load(this.#low!, 0) - near) >>> 0);
  }

  /** Publishes `pos`. Only one party may store to a position (the reader owns its tail). */
  store(pos: number): void {
    const low = pos - this.#high;
    if (this.#low !== undefined && low >= 0 && low < TWO_32) {
      Atomics.store(this.#low, 0, low | 0);
      return;
    }
    Atomics.store(this.#big, 0, BigInt(pos));
    this.#high = Math.floor(pos / TWO_32) * TWO_32;
  }
}
