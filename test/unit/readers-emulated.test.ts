/**
 * RingBufReader and PerfReader against the emulated kernel (src/testing), whose rings have the
 * kernel's memory layout. The tests write records straight into the emulated rings, which makes
 * possible what the BPF test producers cannot do: records bigger than a 64 KiB slab, a record left
 * reserved (BUSY) while later ones are committed, exact positions for records that wrap around the
 * end of a perf ring, and exact amounts of lost samples.
 *
 * Ring buffer records here are `rec(seq, len)`: a u32 seq, then byte i = (seq * 31 + i) & 0xff.
 * Perf samples are `rec(key, len)` too; the emulator pads them like the kernel (u32 size plus
 * data to a multiple of 8) with zeros.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { useEmulatedKernel } from '../../src/testing/index.js';
import { RingbufMap, PerfEvent } from '../../src/testing/rings.js';
import { FdArrayMap } from '../../src/testing/maps.js';
import { BpfMap } from '../../src/objects/map.js';
import { ClosedError, InvalidArgumentError, PerfReader, RingBufReader, type PerfBatch, type PerfRecord, type RingBufBatch } from '../../src/index.js';
import { SLAB_SIZE } from '../../src/readers/ring-copy.js';
import type { MapSpec } from '../../src/spec/collection-spec.js';

const kernel = useEmulatedKernel({ cpus: 2 });
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** A reader that never wakes up fails its test instead of hanging the run. */
const T = { timeout: 30_000 };
const HDR = 8;

function spec(type: MapSpec['type'], keySize: number, valueSize: number, maxEntries: number): MapSpec {
  return {
    name: type, type, keySize, valueSize, maxEntries, flags: 0, numaNode: 0, mapExtra: 0n, pinning: 'none', btf: undefined,
    keyTypeId: 0, valueTypeId: 0, innerMap: undefined, contents: [], data: undefined, freeze: false, section: '',
  };
}

function rec(seq: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 4; i < len; i++) b[i] = (seq * 31 + i) & 0xff;
  new DataView(b.buffer).setUint32(0, seq, true);
  return b;
}

function seqOf(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
}

/** Checks a copy against rec(seq, len) (byte for byte; `len` may be shorter than the copy for padded perf samples). */
function check(b: Uint8Array, seq: number, len: number, what = `record ${seq}`): void {
  const want = Buffer.from(rec(seq, len).buffer);
  const got = Buffer.from(b.buffer, b.byteOffset, Math.min(b.byteLength, len));
  assert.ok(b.byteLength >= len && got.equals(want), `${what}: ${b.byteLength} bytes, contents ${got.equals(want) ? 'ok' : 'differ'}`);
}

/** Bytes a record of `len` bytes takes in a ring buffer. */
const space = (len: number) => (len + HDR + 7) & ~7;

interface RingFixture extends Disposable {
  map: BpfMap;
  /** The emulated ring, to write records into directly. */
  ring: RingbufMap;
  /** Writes rec(seq, len) with bpf_ringbuf_output. */
  out: (seq: number, len: number) => void;
}

/** A ring buffer map; `using` it before the reader so that the reader is closed first. */
function ringbuf(size: number): RingFixture {
  const map = BpfMap.create(spec('ringbuf', 0, 0, size));
  const ring = kernel.map(map.fd) as RingbufMap;
  const out = (seq: number, len: number) => assert.equal(ring.output(rec(seq, len), 0), 0, `room for record ${seq}`);
  return { map, ring, out, [Symbol.dispose]: () => map.close() };
}

/** Whether the garbage collector has freed what `ref` points to (after a few full collections). */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 5 && ref.deref() !== undefined; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return ref.deref() === undefined;
}

/** Rejects if `p` has not settled within `ms`: a read that should have been served. */
function within<T>(p: Promise<T>, ms = 2000, what = 'the read'): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} was still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

/** Whether `p` is still pending after the event loop had time to deliver what is ready. */
async function stillPending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(() => { settled = true; }, () => { settled = true; });
  await new Promise((r) => setTimeout(r, 30));
  return !settled;
}

function batchSeqs(b: RingBufBatch, out: number[], lengths?: (seq: number) => number): void {
  for (let i = 0; i < b.count; i++) {
    const r = b.data.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!);
    const seq = seqOf(r);
    if (lengths) check(r, seq, lengths(seq));
    out.push(seq);
  }
}

describe('RingBufReader (emulated kernel)', () => {
  test('a record bigger than a slab comes whole and in order between slab copies', T, async () => {
    using rb = ringbuf(512 * 1024);
    const { map, ring, out } = rb;
    using reader = new RingBufReader(map);
    // Around the slab size (the largest record that fits an empty slab with its header, the smallest
    // that does not) and far above it; read with readSync(), then read(), then consumeBatch().
    const lengths = [100, SLAB_SIZE + 1000, 13, SLAB_SIZE - HDR, 20, SLAB_SIZE - HDR + 1, 7, SLAB_SIZE, 3 * SLAB_SIZE + 5, 40];
    for (let round = 0; round < 3; round++) {
      lengths.forEach((len, i) => out(round * 100 + i, len));
      let left = lengths.reduce((s, len) => s + space(len), 0);
      assert.equal(reader.available, left);
      const got: Uint8Array[] = [];
      const take = async (): Promise<void> => {
        if (round === 0) got.push(reader.readSync()!);
        else if (round === 1) got.push(await reader.read());
        else reader.consumeBatch((b) => { for (let i = 0; i < b.count; i++) got.push(b.data.slice(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!)); }, { maxRecords: 1 });
      };
      for (let i = 0; i < lengths.length; i++) {
        await take();
        left -= space(lengths[i]!);
        assert.equal(reader.available, left, `round ${round}: available after record ${i}`);
      }
      assert.equal(got.length, lengths.length);
      got.forEach((r, i) => {
        assert.equal(r.byteLength, lengths[i], `round ${round} record ${i}: length`);
        check(r, round * 100 + i, lengths[i]!, `round ${round} record ${i}`);
        assert.equal(r.byteOffset % 8, 0);
      });
      assert.equal(reader.readSync(), undefined);
      assert.equal(ring.consumerPos, ring.producerPos);
    }
  });

  test('slab renewal: copies from earlier slabs stay intact while the ring is reused', T, () => {
    using rb = ringbuf(64 * 1024);
    const { map, ring } = rb;
    using reader = new RingBufReader(map);
    const kept: { r: Uint8Array; seq: number; len: number }[] = [];
    let seq = 0;
    let copied = 0;
    // Fill the ring until it refuses a record, read everything, again: the ring's bytes are
    // overwritten many times while the copies live on.
    while (copied < 5 * SLAB_SIZE) {
      for (;;) {
        const len = 1 + ((seq * 37) % 300);
        if (ring.output(rec(seq, Math.max(len, 4)), 0) !== 0) break;
        seq++;
      }
      for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) {
        const s = seqOf(r);
        assert.equal(s, kept.length, 'in order, none lost');
        const len = Math.max(1 + ((s * 37) % 300), 4);
        kept.push({ r, seq: s, len });
        copied += space(len);
      }
    }
    assert.equal(kept.length, seq);
    const slabs = new Map<ArrayBufferLike, [number, number][]>();
    for (const { r, seq: s, len } of kept) {
      check(r, s, len);
      assert.equal(r.byteLength, len);
      assert.equal(r.byteOffset % 8, 0);
      assert.equal(r.buffer.byteLength, SLAB_SIZE, 'a copy views a 64 KiB slab');
      const ranges = slabs.get(r.buffer) ?? [];
      ranges.push([r.byteOffset, r.byteOffset + r.byteLength]);
      slabs.set(r.buffer, ranges);
    }
    assert.ok(slabs.size >= 5, `${slabs.size} slabs for ${copied} bytes`);
    assert.ok(slabs.size <= Math.ceil(copied / (SLAB_SIZE - 4096)) + 1, `${slabs.size} slabs for ${copied} bytes: slabs are filled before being renewed`);
    for (const ranges of slabs.values()) {
      ranges.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i]![0] >= ranges[i - 1]![1], 'copies in one slab do not overlap');
    }
  });

  test('reads of every kind mix while copies are queued: order kept, nothing lost or repeated', T, async () => {
    using rb = ringbuf(256 * 1024);
    const { map, ring } = rb;
    using reader = new RingBufReader(map);
    const lengthOf = (s: number) => 4 + ((s * 13) % 61);
    const expected: number[] = [];
    let seq = 0;
    const produce = (n: number) => {
      for (let i = 0; i < n; i++, seq++) {
        const pos = ring.reserve(lengthOf(seq));
        assert.ok(pos >= 0, 'room in the ring');
        const discard = seq % 7 === 3;
        ring.commit(pos, rec(seq, lengthOf(seq)), discard, 0);
        if (!discard) expected.push(seq);
      }
    };
    produce(2500); // more than the 1024 records one copy takes, and more than a slab holds
    const got: number[] = [];
    const push = (r: Uint8Array | undefined) => {
      if (r === undefined) return;
      check(r, seqOf(r), lengthOf(seqOf(r)));
      got.push(seqOf(r));
    };
    const methods = new Set<number>();
    for (let step = 0; got.length < expected.length; step++) {
      if (step === 30) produce(1500); // records in the ring behind the queued copies
      const left = expected.length - got.length;
      const kind = step % 7;
      const before = got.length;
      switch (kind) {
        case 0: push(reader.readSync()); break;
        case 1: reader.consumeBatch((b) => batchSeqs(b, got, lengthOf), { maxRecords: 1 + (step % 50) }); break;
        case 2: push(await within(reader.read())); break;
        case 3: {
          const n = Math.min(left, 1 + (step % 30));
          let k = 0;
          for await (const r of reader) {
            push(r);
            if (++k === n) break;
          }
          break;
        }
        case 4: assert.equal(await within(reader.wait()), true); push(reader.readSync()); break;
        case 5: await within(reader.readBatch((b) => batchSeqs(b, got, lengthOf), { maxRecords: 200 })); break;
        case 6: {
          const [a, b] = await within(Promise.all([reader.read(), left > 1 ? reader.read() : Promise.resolve(undefined)]));
          push(a);
          push(b);
          break;
        }
      }
      if (got.length > before) methods.add(kind);
    }
    assert.equal(methods.size, 7, 'every kind of read returned records');
    assert.equal(got.length, expected.length);
    assert.deepEqual(got, expected);
    assert.equal(reader.readSync(), undefined);
    assert.equal(reader.available, 0);
    assert.equal(ring.consumerPos, ring.producerPos);
  });

  test('a copy takes at most 1024 records out of the ring', T, () => {
    using rb = ringbuf(128 * 1024);
    const { map, ring, out } = rb;
    using reader = new RingBufReader(map);
    for (let s = 0; s < 2000; s++) out(s, 16);
    assert.equal(seqOf(reader.readSync()!), 0);
    assert.equal(ring.consumerPos, 1024 * 24, 'the first 1024 records were copied out, the rest left in the ring');
    assert.equal(reader.available, 1999 * 24);
    let n = 1;
    for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) assert.equal(seqOf(r), n++);
    assert.equal(n, 2000);
  });

  test('a read waiting when readSync() queues copies is served from the queue', T, async () => {
    using rb = ringbuf(4096);
    const { map, out } = rb;
    using reader = new RingBufReader(map);
    const pending = reader.read();
    const waiting = reader.wait();
    const it = reader.records();
    const step = it.next();
    for (let s = 0; s < 5; s++) out(s, 16);
    // Before the poll reports the ring readable, readSync() takes all five out of the ring.
    assert.equal(seqOf(reader.readSync()!), 0);
    assert.equal(seqOf(await within(pending)), 1);
    assert.equal(await within(waiting, 2000, 'wait()'), true);
    const next = await within(step, 2000, 'the iteration step');
    assert.equal(seqOf(next.value!), 2);
    assert.equal(seqOf(reader.readSync()!), 3);
    assert.equal(seqOf(await within(reader.read())), 4);
    assert.equal(reader.readSync(), undefined);
  });

  for (const mode of ['copy', 'decode'] as const) {
    test(`a reserved record not yet committed (BUSY) stops the reader until it is (${mode} mode)`, T, async () => {
      using rb = ringbuf(4096);
      const { map, ring, out } = rb;
      using reader = new RingBufReader<Uint8Array>(map, mode === 'decode' ? { decode: (v) => v.slice() } : {});
      out(0, 16);
      const busy = ring.reserve(16);
      assert.ok(busy > 0);
      out(2, 16);
      out(3, 20);
      assert.equal(reader.available, 3 * 24 + 32);
      assert.equal(seqOf(reader.readSync()!), 0);
      assert.equal(reader.readSync(), undefined, 'record 1 is BUSY: the committed records behind it wait');
      assert.equal(reader.consumeBatch(() => assert.fail('nothing is ready')), 0);
      assert.equal(ring.consumerPos, busy, 'nothing past the BUSY record was consumed');
      assert.equal(reader.available, 2 * 24 + 32);
      const pending = reader.read();
      assert.equal(await stillPending(pending), true);

      ring.commit(busy, rec(1, 16), false, 0);
      check(await within(pending), 1, 16);
      check(reader.readSync()!, 2, 16);
      check(reader.readSync()!, 3, 20);
      assert.equal(reader.available, 0);

      // BUSY behind a run of records: a batch ends in front of it; a discarding commit lets the rest through.
      for (let s = 10; s < 20; s++) out(s, 16);
      const busy2 = ring.reserve(100);
      for (let s = 21; s < 25; s++) out(s, 16);
      const seqs: number[] = [];
      assert.equal(reader.consumeBatch((b) => batchSeqs(b, seqs)), 10);
      assert.deepEqual(seqs, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
      assert.equal(reader.consumeBatch(() => assert.fail('BUSY')), 0);
      assert.equal(ring.consumerPos, busy2);
      ring.commit(busy2, new Uint8Array(100), true, 0);
      reader.consumeBatch((b) => batchSeqs(b, seqs));
      assert.deepEqual(seqs, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24]);
      assert.equal(ring.consumerPos, ring.producerPos);

      // BUSY after records read one at a time: the queued copies end in front of it too.
      for (let s = 30; s < 34; s++) out(s, 16);
      const busy3 = ring.reserve(16);
      out(35, 16);
      const one: number[] = [];
      for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) one.push(seqOf(r));
      assert.deepEqual(one, [30, 31, 32, 33]);
      assert.equal(ring.consumerPos, busy3);
      ring.commit(busy3, rec(34, 16), false, 0);
      for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) one.push(seqOf(r));
      assert.deepEqual(one, [30, 31, 32, 33, 34, 35]);
    });
  }

  test('discarded records at the end of a batch stay in the ring until the next scan', T, async () => {
    using rb = ringbuf(4096);
    const { map, ring, out } = rb;
    using reader = new RingBufReader(map);
    const discard = (len: number) => ring.commit(ring.reserve(len), new Uint8Array(len), true, 0);
    out(0, 16);
    discard(40); // between records: skipped inside the batch
    out(2, 16);
    const lastEnd = ring.producerPos;
    discard(16);
    discard(100);
    let data: Uint8Array | undefined;
    const seqs: number[] = [];
    assert.equal(reader.consumeBatch((b) => {
      data = b.data.slice();
      assert.deepEqual([...b.offsets], [HDR, 24 + 48 + HDR]);
      batchSeqs(b, seqs);
    }), 2);
    assert.deepEqual(seqs, [0, 2]);
    assert.equal(data!.byteLength, lastEnd, 'the batch ends with its last record');
    assert.equal(ring.consumerPos, lastEnd, 'the discarded records after it were not consumed');
    assert.equal(reader.available, 24 + 112);

    // wait() does not count them as something to read...
    const waiting = reader.wait();
    assert.equal(await stillPending(waiting), true);
    assert.equal(ring.consumerPos, ring.producerPos, 'but looking skipped them');
    assert.equal(reader.available, 0);
    out(5, 16);
    assert.equal(await within(waiting), true);
    assert.equal(reader.consumeBatch((b) => batchSeqs(b, seqs)), 1);
    assert.deepEqual(seqs, [0, 2, 5]);

    // Only discarded records: consumeBatch passes them and reports none.
    discard(8);
    discard(8);
    assert.equal(reader.consumeBatch(() => assert.fail('only discarded records')), 0);
    assert.equal(ring.consumerPos, ring.producerPos);

    // The same through the copying reads: the copies end with the last record.
    out(6, 16);
    const end6 = ring.producerPos;
    discard(16);
    assert.equal(seqOf(reader.readSync()!), 6);
    assert.equal(ring.consumerPos, end6);
    assert.equal(reader.available, 24);
    assert.equal(reader.readSync(), undefined);
    assert.equal(reader.available, 0);
  });

  test('available counts queued copies, and the discarded records between them, as reading the ring does', T, () => {
    const sequence = (decode: boolean): number[] => {
      using rb = ringbuf(4096);
      const { map, ring, out } = rb;
      using reader = new RingBufReader<Uint8Array>(map, decode ? { decode: (v) => v.slice() } : {});
      const discard = () => ring.commit(ring.reserve(16), new Uint8Array(16), true, 0);
      out(0, 16);
      discard();
      out(2, 16);
      discard();
      out(4, 16);
      const seen = [reader.available];
      for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) seen.push(seqOf(r), reader.available);
      out(5, 16);
      out(6, 16);
      seen.push(reader.available, seqOf(reader.readSync()!), reader.available);
      out(7, 16);
      seen.push(reader.available);
      return seen;
    };
    const copying = sequence(false);
    assert.deepEqual(copying, [120, 0, 96, 2, 48, 4, 0, 48, 5, 24, 48]);
    assert.deepEqual(sequence(true), copying);
  });

  test('close() drops queued copies: reads reject with ClosedError, iteration ends', T, async () => {
    {
      using rb = ringbuf(4096);
      const { map, ring, out } = rb;
      const reader = new RingBufReader(map);
      for (let s = 0; s < 10; s++) out(s, 16);
      assert.equal(seqOf(reader.readSync()!), 0);
      assert.equal(ring.consumerPos, 240, 'the other nine are copies now');
      assert.equal(reader.available, 9 * 24);
      reader.close();
      assert.throws(() => reader.readSync(), ClosedError);
      await assert.rejects(reader.read(), ClosedError);
      assert.throws(() => reader.consumeBatch(() => assert.fail('closed')), ClosedError);
      assert.throws(() => reader.available, ClosedError);
      assert.equal(await reader.wait(), false);
      assert.deepEqual(await reader.records().next(), { value: undefined, done: true });
      for await (const _ of reader) assert.fail('nothing after close');
      assert.equal(ring.consumerPos, 240);
    }
    {
      // close() inside a for await loop while copies are queued: the loop ends there.
      using rb = ringbuf(4096);
      const { map, out } = rb;
      const reader = new RingBufReader(map);
      for (let s = 0; s < 10; s++) out(s, 16);
      const seen: number[] = [];
      for await (const r of reader) {
        seen.push(seqOf(r));
        if (seen.length === 3) reader.close();
      }
      assert.deepEqual(seen, [0, 1, 2]);
    }
    {
      // close() from a batch callback over queued copies.
      using rb = ringbuf(4096);
      const { map, out } = rb;
      const reader = new RingBufReader(map);
      for (let s = 0; s < 10; s++) out(s, 16);
      assert.equal(seqOf(reader.readSync()!), 0);
      const seqs: number[] = [];
      assert.equal(reader.consumeBatch((b) => { batchSeqs(b, seqs); reader.close(); }), 9);
      assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.throws(() => reader.readSync(), ClosedError);
    }
  });

  test('close() lets go of the queued copies: their slab can be freed', T, async () => {
    using rb = ringbuf(4096);
    const reader = new RingBufReader(rb.map);
    for (let s = 0; s < 10; s++) rb.out(s, 16);
    let first: Uint8Array | undefined = reader.readSync()!;
    const slab = new WeakRef(first.buffer);
    first = undefined;
    assert.equal(await collected(slab), false, 'the open reader holds its queued copies');
    reader.close();
    assert.equal(await collected(slab), true, 'the closed reader holds nothing of the slab');
  });
});

// ---- perf -----------------------------------------------------------------------------------------

interface PerfFixture extends Disposable {
  map: BpfMap;
  /** The emulated perf event a reader installed for `cpu`, to write samples into directly. */
  event: (cpu: number) => PerfEvent;
}

/** A perf event array; `using` it before the reader so that the reader is closed first. */
function perfArray(): PerfFixture {
  const map = BpfMap.create(spec('perf_event_array', 4, 4, kernel.cpus));
  const event = (cpu: number) => {
    const ev = (kernel.map(map.fd) as FdArrayMap).slots[cpu];
    assert.ok(ev instanceof PerfEvent, `a reader installed an event for CPU ${cpu}`);
    return ev;
  };
  return { map, event, [Symbol.dispose]: () => map.close() };
}

/** data_head of an emulated perf ring. */
function headOf(ev: PerfEvent): number {
  return Number(new DataView(ev.ring!, 1024, 8).getBigUint64(0, true));
}

/** Writes samples (read back at once) until data_head is `to` modulo a 4096-byte ring. */
function moveHead(reader: PerfReader, ev: PerfEvent, to: number): void {
  for (;;) {
    let gap = (to - (headOf(ev) % 4096) + 4096) % 4096;
    if (gap === 0) return;
    if (gap < 16) gap += 4096; // the smallest record is 16 bytes
    const size = gap > 4096 ? 2048 : gap;
    assert.equal(ev.output(rec(99999, size - 12)), 0);
    while (reader.readSync() !== undefined);
  }
}

/** Raw sample size as perf stores it: u32 size plus data padded to 8. */
const rawSize = (len: number) => ((len + 4 + 7) & ~7) - 4;

function perfSample(r: PerfRecord | undefined): { cpu: number; key: number; data: Uint8Array } {
  assert.ok(r, 'expected a record');
  assert.equal(r.lost, undefined, `expected a sample, got ${JSON.stringify(r)}`);
  return { cpu: r.cpu, key: seqOf(r.data!), data: r.data! };
}

function label(r: PerfRecord): string {
  return r.lost !== undefined ? `lost ${r.lost}` : `${seqOf(r.data!)}`;
}

describe('PerfReader (emulated kernel)', () => {
  test('samples are 8-byte aligned slab copies, also when a batch wraps around the end of the ring', T, () => {
    using pa = perfArray();
    const { map, event } = pa;
    using reader = new PerfReader(map, { perCpuBuffer: 4096, cpus: [0] });
    const ev = event(0);
    const lengthOf = (k: number) => 4 + ((k * 29) % 150);
    const kept: { data: Uint8Array; key: number }[] = [];
    let key = 0;
    let wrapped = 0;
    let bytes = 0;
    const slabs = new Set<ArrayBufferLike>();
    while (bytes < 3 * SLAB_SIZE) {
      // About 3000 bytes a round into a 4096-byte ring: most batches cross its end.
      const start = key;
      let round = 0;
      while (round < 3000) {
        assert.equal(ev.output(rec(key, lengthOf(key))), 0);
        round += 12 + rawSize(lengthOf(key));
        key++;
      }
      const before = kept.length;
      for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) {
        const s = perfSample(r);
        assert.equal(s.cpu, 0);
        kept.push(s);
      }
      assert.deepEqual(kept.slice(before).map((s) => s.key), Array.from({ length: key - start }, (_, i) => start + i));
      bytes += round;
      if ((bytes - round) % 4096 + round > 4096) wrapped++;
    }
    assert.ok(wrapped >= 10, `${wrapped} batches wrapped`);
    for (const { data, key: k } of kept) {
      assert.equal(data.byteOffset % 8, 0, `sample ${k} is 8-byte aligned`);
      assert.equal(data.byteLength, rawSize(lengthOf(k)));
      check(data, k, lengthOf(k), `sample ${k}`);
      // The padding past the sample is whatever the ring held there, as in the kernel (not zeroed).
      assert.equal(data.buffer.byteLength, SLAB_SIZE);
      slabs.add(data.buffer);
    }
    assert.ok(slabs.size >= 3, `${slabs.size} slabs`);
  });

  test('LOST records come in order between queued samples, also when one wraps around the end of the ring', T, async () => {
    using pa = perfArray();
    const { map, event } = pa;
    using reader = new PerfReader(map, { perCpuBuffer: 4096, cpus: [0] });
    const ev = event(0);
    // 60-byte samples take 72 bytes: 56 fit in 4096, the rest of 60 are lost.
    const put = (k: number, len = 60) => ev.output(rec(k, len));
    for (let k = 0; k < 60; k++) put(k);
    assert.equal(perfSample(reader.readSync()).key, 0);
    // The ring is free again; the next sample brings the LOST record in front of it.
    for (let k = 100; k < 103; k++) assert.equal(put(k), 0);
    const got: string[] = [];
    for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) got.push(label(r));
    assert.deepEqual(got, [...Array.from({ length: 55 }, (_, i) => `${i + 1}`), 'lost 4', '100', '101', '102']);

    // The same through read() and for await.
    for (let k = 200; k < 260; k++) put(k);
    assert.equal(perfSample(await within(reader.read())).key, 200);
    assert.equal(put(300), 0);
    const seen: string[] = [];
    for await (const r of reader) {
      seen.push(label(r));
      assert.equal(r.cpu, 0);
      if (seen.length === 57) break;
    }
    assert.deepEqual(seen, [...Array.from({ length: 55 }, (_, i) => `${201 + i}`), 'lost 4', '300']);
    assert.equal(reader.readSync(), undefined);

    // A LOST record across the end of the ring (its count in the first bytes), between 16-byte
    // samples: with data_head 8 bytes before the end of a lap, fill the ring exactly, lose two,
    // free it, write one more.
    moveHead(reader, ev, 4096 - 8);
    for (let k = 0; k < 256; k++) assert.equal(put(1000 + k, 4), 0); // 256 * 16 bytes fill the ring
    assert.equal(put(1999, 4), -28);
    assert.equal(put(1999, 4), -28);
    assert.equal(perfSample(reader.readSync()).key, 1000);
    assert.equal(put(2000, 4), 0);
    assert.equal(headOf(ev) % 4096, 24 + 16 - 8, 'the LOST record wrapped');
    const tail: string[] = [];
    for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) tail.push(label(r));
    assert.deepEqual(tail, [...Array.from({ length: 255 }, (_, i) => `${1001 + i}`), 'lost 2', '2000']);
  });

  test('a decoder gets samples that wrap whole, and LOST records that wrap are counted (decode mode)', T, () => {
    using pa = perfArray();
    using reader = new PerfReader(pa.map, { perCpuBuffer: 4096, cpus: [0], decode: (v) => v.slice() });
    const ev = pa.event(0);
    const drain = () => {
      const out: PerfRecord[] = [];
      for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) out.push(r);
      return out;
    };
    // data_head 8 bytes before the end: fill the ring exactly and lose one; the LOST record then
    // wraps, with its count in the first bytes of the ring.
    moveHead(reader, ev, 4096 - 8);
    for (let k = 0; k < 256; k++) assert.equal(ev.output(rec(10 + k, 4)), 0);
    assert.equal(ev.output(rec(0, 4)), -28);
    const full = drain();
    assert.deepEqual(full.map((r) => perfSample(r).key), Array.from({ length: 256 }, (_, i) => 10 + i));
    assert.equal(ev.output(rec(500, 100)), 0);
    assert.equal(headOf(ev) % 4096, 24 + 112 - 8);
    const next = drain();
    assert.equal(next.length, 2);
    assert.deepEqual(next[0], { cpu: 0, lost: 1 });
    check(perfSample(next[1]).data, 500, 100);

    // A sample whose data crosses the end of the ring: the decoder sees it whole.
    for (const end of [4096 - 104, 4096 - 24, 4096 - 16, 4096 - 8]) {
      moveHead(reader, ev, end);
      assert.equal(ev.output(rec(700, 180)), 0);
      const [r] = drain();
      assert.equal(perfSample(r).data.byteLength, 180);
      check(perfSample(r).data, 700, 180, `a sample written ${4096 - end} bytes before the end`);
    }
  });

  test('rings are served in turn, up to 1024 records a batch', T, () => {
    using pa = perfArray();
    const { map, event } = pa;
    using reader = new PerfReader(map, { perCpuBuffer: 64 * 1024, cpus: [0, 1] });
    for (let k = 0; k < 2000; k++) assert.equal(event(0).output(rec(k, 4)), 0);
    for (let k = 0; k < 10; k++) assert.equal(event(1).output(rec(5000 + k, 4)), 0);
    const got: [number, number][] = [];
    for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) got.push([r.cpu, perfSample(r).key]);
    const want: [number, number][] = [
      ...Array.from({ length: 1024 }, (_, i): [number, number] => [0, i]),
      ...Array.from({ length: 10 }, (_, i): [number, number] => [1, 5000 + i]),
      ...Array.from({ length: 976 }, (_, i): [number, number] => [0, 1024 + i]),
    ];
    assert.deepEqual(got, want);
  });

  test('a decoder error ends its batch and surfaces at the read that reaches its sample', T, async () => {
    using pa = perfArray();
    const { map, event } = pa;
    const decoded: number[] = [];
    const reader = new PerfReader(map, {
      cpus: [0, 1],
      decode: (v) => {
        const k = seqOf(v);
        decoded.push(k);
        if (k === 2 || k === 102) throw new Error(`bad sample ${k}`);
        return k;
      },
    });
    try {
      for (let k = 0; k < 6; k++) assert.equal(event(0).output(rec(k, 8)), 0);
      for (let k = 100; k < 103; k++) assert.equal(event(1).output(rec(k, 8)), 0);
      const results: string[] = [];
      const one = (r: PerfRecord<number>) => `${r.cpu}:${r.data}`;
      results.push(one(reader.readSync()!));
      assert.deepEqual(decoded, [0, 1, 2], 'the batch ended at the failing sample');
      results.push(one(reader.readSync()!));
      assert.throws(() => reader.readSync(), /bad sample 2/);
      // Ring 1 comes next (its batch ends with its own error), then the rest of ring 0.
      const reads = Array.from({ length: 6 }, () => reader.read().then(one, (e: Error) => e.message));
      results.push(...(await within(Promise.all(reads))));
      assert.deepEqual(results, ['0:0', '0:1', '1:100', '1:101', 'bad sample 102', '0:3', '0:4', '0:5']);
      assert.deepEqual(decoded, [0, 1, 2, 100, 101, 102, 3, 4, 5], 'each sample decoded once');
      assert.equal(reader.readSync(), undefined);

      // In a for await loop the error ends the loop at that sample; the loop after it goes on.
      for (let k = 10; k < 13; k++) event(0).output(rec(k, 8));
      event(0).output(rec(2, 8));
      event(0).output(rec(14, 8));
      const seen: number[] = [];
      await assert.rejects((async () => { for await (const r of reader) seen.push(r.data!); })(), /bad sample 2/);
      assert.deepEqual(seen, [10, 11, 12]);
      assert.equal(reader.readSync()!.data, 14);
    } finally {
      reader.close();
    }
  });

  test('a read waiting when readSync() queues samples is served from the queue', T, async () => {
    using pa = perfArray();
    const { map, event } = pa;
    using reader = new PerfReader(map, { cpus: [0] });
    const pending = reader.read();
    for (let k = 0; k < 4; k++) assert.equal(event(0).output(rec(k, 8)), 0);
    assert.equal(perfSample(reader.readSync()).key, 0);
    assert.equal(perfSample(await within(pending)).key, 1);
    assert.equal(perfSample(reader.readSync()).key, 2);
    assert.equal(perfSample(await within(reader.read())).key, 3);
  });

  test('mixed reads keep the order of one ring; close() drops queued samples', T, async () => {
    using pa = perfArray();
    const { map, event } = pa;
    const reader = new PerfReader(map, { perCpuBuffer: 64 * 1024, cpus: [0] });
    for (let k = 0; k < 1500; k++) assert.equal(event(0).output(rec(k, 4 + (k % 20))), 0);
    const got: number[] = [];
    for (let step = 0; got.length < 1400; step++) {
      switch (step % 4) {
        case 0: got.push(perfSample(reader.readSync()).key); break;
        case 1: got.push(perfSample(await within(reader.read())).key); break;
        case 2: {
          let n = 0;
          for await (const r of reader) {
            got.push(perfSample(r).key);
            if (++n === 1 + (step % 25)) break;
          }
          break;
        }
        case 3: assert.equal(await within(reader.wait()), true); got.push(perfSample(reader.readSync()).key); break;
      }
    }
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i));
    reader.close();
    assert.throws(() => reader.readSync(), ClosedError);
    await assert.rejects(reader.read(), ClosedError);
    assert.deepEqual(await reader.records().next(), { value: undefined, done: true });
    assert.equal(await reader.wait(), false);
  });
  test('close() lets go of the queued samples: their slab can be freed', T, async () => {
    using pa = perfArray();
    const reader = new PerfReader(pa.map, { cpus: [0] });
    for (let k = 0; k < 10; k++) assert.equal(pa.event(0).output(rec(k, 8)), 0);
    let first: PerfRecord | undefined = reader.readSync()!;
    const slab = new WeakRef(first.data!.buffer);
    first = undefined;
    assert.equal(await collected(slab), false, 'the open reader holds its queued samples');
    reader.close();
    assert.equal(await collected(slab), true, 'the closed reader holds nothing of the slab');
  });
});

// ---- PerfReader.consumeBatch ----------------------------------------------------------------------

/** data_tail of an emulated perf ring. */
function tailOf(ev: PerfEvent): number {
  return Number(new DataView(ev.ring!, 1032, 8).getBigUint64(0, true));
}

interface SeenBatch { cpu: number; keys: number[]; lost: number; count: number }

/** Checks every sample of a batch against rec(key, len(key)) and the batch's alignment; returns what it saw. */
function seeBatch(b: PerfBatch, len: (key: number) => number): SeenBatch {
  const keys: number[] = [];
  assert.equal(b.offsets.length, b.count);
  assert.equal(b.lengths.length, b.count);
  for (let i = 0; i < b.count; i++) {
    const s = b.data.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!);
    const key = seqOf(s);
    assert.equal(s.byteLength, rawSize(len(key)), `sample ${key} length`);
    check(s, key, len(key), `sample ${key}`);
    keys.push(key);
  }
  return { cpu: b.cpu, keys, lost: b.lost, count: b.count };
}

describe('PerfReader.consumeBatch (emulated kernel)', () => {
  test('all samples in order, zero-copy up to the end of the ring, a wrapping sample alone', T, () => {
    using pa = perfArray();
    using reader = new PerfReader(pa.map, { perCpuBuffer: 4096, cpus: [0] });
    const ev = pa.event(0);
    const lengthOf = (k: number) => 4 + ((k * 29) % 150);
    let key = 0;
    let next = 0;
    let batches = 0;
    let stoppedAtEnd = 0;
    let alone = 0;
    while (key < 3000) {
      let round = 0;
      while (round < 3000) {
        assert.equal(ev.output(rec(key, lengthOf(key))), 0);
        round += 12 + rawSize(lengthOf(key));
        key++;
      }
      for (;;) {
        const tailBefore = tailOf(ev);
        let seen: SeenBatch | undefined;
        let viewEnd = 0;
        const n = reader.consumeBatch((b) => {
          assert.equal(tailOf(ev), tailBefore, 'data_tail is written after the callback');
          seen = seeBatch(b, lengthOf);
          if (b.count > 1 || b.data.byteLength !== b.lengths[0]) {
            assert.equal(b.data.byteOffset % 8, 0);
            for (let i = 0; i < b.count; i++) assert.equal(b.offsets[i]! % 8, 4);
            viewEnd = (tailBefore % 4096) + b.data.byteLength;
          } else {
            alone++;
          }
        });
        if (n === 0) break;
        batches++;
        assert.equal(n, seen!.count);
        assert.equal(seen!.lost, 0);
        assert.deepEqual(seen!.keys, Array.from({ length: seen!.count }, (_, i) => next + i));
        next += seen!.count;
        assert.ok(viewEnd <= 4096, 'a zero-copy view never passes the end of the ring');
        if (viewEnd > 4096 - 200) stoppedAtEnd++;
      }
      assert.equal(tailOf(ev), headOf(ev));
    }
    assert.equal(next, key, 'every sample seen once');
    assert.ok(stoppedAtEnd >= 10 && alone >= 1 && batches > key / 3000, `${batches} batches, ${stoppedAtEnd} at the end, ${alone} alone`);
  });

  test('a sample that wraps the end comes alone as a whole copy; the batches around it stop at it', T, () => {
    using pa = perfArray();
    using reader = new PerfReader(pa.map, { perCpuBuffer: 4096, cpus: [0] });
    const ev = pa.event(0);
    const lens: Record<number, number> = { 1: 20, 700: 180, 2: 20 };
    for (const end of [4096 - 200, 4096 - 56, 4096 - 40]) { // 700 crosses the end; at -40 its u32 size is the ring's first word
      moveHead(reader, ev, end);
      for (const k of [1, 700, 2]) assert.equal(ev.output(rec(k, lens[k]!)), 0);
      const got: number[][] = [];
      while (reader.consumeBatch((b) => got.push(seeBatch(b, (k) => lens[k]!).keys)) > 0);
      assert.deepEqual(got.flat(), [1, 700, 2], `written ${4096 - end} bytes before the end`);
      assert.ok(got.some((keys) => keys.length === 1 && keys[0] === 700), `700 alone: ${JSON.stringify(got)}`);
    }
  });

  test('LOST records are summed into batch.lost, in front of the samples that follow them', T, () => {
    using pa = perfArray();
    using reader = new PerfReader(pa.map, { perCpuBuffer: 4096, cpus: [0] });
    const ev = pa.event(0);
    const put = (k: number) => ev.output(rec(k, 60));
    for (let k = 0; k < 60; k++) put(k); // 56 fit, 4 are lost
    const seen: SeenBatch[] = [];
    const eat = (max?: number) => reader.consumeBatch((b) => seen.push(seeBatch(b, () => 60)), max === undefined ? {} : { maxRecords: max });
    assert.equal(eat(56), 56);
    for (let k = 100; k < 103; k++) assert.equal(put(k), 0);
    // The LOST record takes 4032..4056; sample 100 then crosses the end of the ring and comes alone.
    assert.equal(eat(), 2, 'the LOST record and sample 100');
    assert.equal(eat(), 2);
    assert.equal(eat(), 0);
    assert.deepEqual(seen.map((s) => [s.keys, s.lost]), [[Array.from({ length: 56 }, (_, i) => i), 0], [[100], 4], [[101, 102], 0]]);
    // A batch of samples queued by a read reports the LOST records among them too.
    for (let k = 200; k < 260; k++) put(k);
    assert.equal(perfSample(reader.readSync()).key, 200);
    for (let k = 300; k < 302; k++) assert.equal(put(k), 0);
    seen.length = 0;
    while (eat() > 0);
    assert.equal(seen[0]!.count, 55, 'the queued copies first, as one batch');
    assert.equal(seen.reduce((a, s) => a + s.lost, 0), 4);
    assert.deepEqual(seen.flatMap((s) => s.keys), [...Array.from({ length: 55 }, (_, i) => 201 + i), 300, 301]);
  });

  test('maxRecords limits the samples; rings are served in turn', T, () => {
    using pa = perfArray();
    using reader = new PerfReader(pa.map, { perCpuBuffer: 64 * 1024, cpus: [0, 1] });
    for (let k = 0; k < 30; k++) assert.equal(pa.event(0).output(rec(k, 8)), 0);
    for (let k = 0; k < 5; k++) assert.equal(pa.event(1).output(rec(500 + k, 8)), 0);
    const seen: SeenBatch[] = [];
    while (reader.consumeBatch((b) => seen.push(seeBatch(b, () => 8)), { maxRecords: 10 }) > 0);
    assert.deepEqual(seen.map((s) => `${s.cpu}:${s.keys[0]}+${s.count}`), ['0:0+10', '1:500+5', '0:10+10', '0:20+10']);
    assert.throws(() => reader.consumeBatch(() => {}, { maxRecords: 0 }), InvalidArgumentError);
  });

  test('a throwing callback still hands the space back; samples queued by reads come first', T, () => {
    using pa = perfArray();
    using reader = new PerfReader(pa.map, { cpus: [0] });
    const ev = pa.event(0);
    for (let k = 0; k < 10; k++) assert.equal(ev.output(rec(k, 8)), 0);
    assert.equal(perfSample(reader.readSync()).key, 0); // takes all 10 out of the ring, queues 9
    assert.equal(tailOf(ev), headOf(ev));
    for (let k = 10; k < 15; k++) assert.equal(ev.output(rec(k, 8)), 0);
    const seen: number[][] = [];
    assert.equal(reader.consumeBatch((b) => seen.push(seeBatch(b, () => 8).keys)), 9);
    assert.throws(() => reader.consumeBatch((b) => { seen.push(seeBatch(b, () => 8).keys); throw new Error('boom'); }), /boom/);
    assert.equal(tailOf(ev), headOf(ev), 'consumed although the callback threw');
    assert.equal(reader.consumeBatch(() => assert.fail('nothing left')), 0);
    assert.deepEqual(seen, [[1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]);
  });

  test('views are valid during the callback only: the ring space is reused after it', T, () => {
    using pa = perfArray();
    using reader = new PerfReader(pa.map, { perCpuBuffer: 4096, cpus: [0] });
    const ev = pa.event(0);
    moveHead(reader, ev, 0);
    assert.equal(ev.output(rec(1, 16)), 0);
    let kept: Uint8Array | undefined;
    reader.consumeBatch((b) => { kept = b.data.subarray(b.offsets[0]!, b.offsets[0]! + b.lengths[0]!); });
    check(kept!, 1, 16);
    // The kernel writes the next lap over it.
    for (let k = 0; k < 4096 / 32; k++) assert.equal(ev.output(rec(2, 16)), 0);
    assert.equal(seqOf(kept!), 2, 'the kept view now shows a later sample');
  });

  test('close semantics: closing in the callback, readBatch waits and ends on close and abort', T, async () => {
    using pa = perfArray();
    const reader = new PerfReader(pa.map, { cpus: [0] });
    const ev = pa.event(0);
    const pending = reader.readBatch((b) => assert.deepEqual(seeBatch(b, () => 8).keys, [1, 2]));
    for (const k of [1, 2]) assert.equal(ev.output(rec(k, 8)), 0);
    assert.equal(await within(pending), 2);
    const ac = new AbortController();
    const aborted = reader.readBatch(() => assert.fail('no records'), { signal: ac.signal });
    ac.abort(new Error('stop'));
    await assert.rejects(within(aborted), /stop/);
    assert.equal(ev.output(rec(3, 8)), 0);
    assert.equal(reader.consumeBatch(() => reader.close()), 1);
    assert.throws(() => reader.consumeBatch(() => {}), ClosedError);
    await assert.rejects(reader.readBatch(() => {}), ClosedError);

    const r2 = new PerfReader(pa.map, { cpus: [0] });
    const waiting = r2.readBatch(() => assert.fail('closed first'));
    r2.close();
    assert.equal(await within(waiting), 0);
  });
});
