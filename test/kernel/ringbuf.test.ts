/**
 * RingBufReader against real BPF ring buffers. Records are produced on demand by the XDP programs
 * of test/bpf/ringbuf.bpf.c through BPF_PROG_TEST_RUN (see test/bpf/README.md):
 *
 *   xdp_ringbuf_submit   count 16-byte records { u32 seq, u32 tag, u32 count, u32 magic }
 *   xdp_ringbuf_discard  the same, with odd seq discarded
 *   xdp_ringbuf_output   one record of `count` bytes, byte i = (u8)(tag + i)
 *
 * The ring (`events`) is 16384 bytes; a 16-byte record takes 24 bytes of it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ClosedError, Collection, CollectionSpec, InvalidArgumentError, RingBufReader, type BpfMap, type Program, type RingBufBatch,
} from '../../src/index.js';
import { native } from '../../src/sys/native.js';
import { codecFor, type Codec } from '../../src/btf/codec.js';
import { recordViewFor } from '../../src/btf/record-view.js';
import { BtfBuilder } from '../helpers/btf-builder.js';
import { kernelTest, obj, patient } from '../helpers/index.js';

const RB_MAGIC = 0x52494e47;
const RING_SIZE = 16384;
const BPF_RB_FORCE_WAKEUP = 2;

interface Rec { seq: number; tag: number; count: number; magic: number }

function parseRec(b: Uint8Array): Rec {
  assert.equal(b.length, 16, 'a submit/discard record is 16 bytes');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { seq: v.getUint32(0, true), tag: v.getUint32(4, true), count: v.getUint32(8, true), magic: v.getUint32(12, true) };
}

function cmd(count: number, tag: number, flags = 0): Uint8Array {
  const b = new Uint8Array(14);
  const v = new DataView(b.buffer);
  v.setUint32(0, count, true);
  v.setUint32(4, tag, true);
  v.setUint32(8, flags, true);
  return b;
}

function pattern(len: number, tag: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (tag + i) & 0xff);
}

interface Fixture { coll: Collection; events: BpfMap; submit: Program; discard: Program; output: Program }

async function load(): Promise<Fixture> {
  const coll = await Collection.load(await CollectionSpec.fromFile(obj('ringbuf')));
  return {
    coll,
    events: coll.maps.get('events')!,
    submit: coll.programs.get('xdp_ringbuf_submit')!,
    discard: coll.programs.get('xdp_ringbuf_discard')!,
    output: coll.programs.get('xdp_ringbuf_output')!,
  };
}

/** Runs fn with a fresh collection and reader, closing both afterwards. */
async function withReader(fn: (f: Fixture, reader: RingBufReader) => Promise<void> | void): Promise<void> {
  const f = await load();
  const reader = new RingBufReader(f.events);
  try {
    await fn(f, reader);
  } finally {
    reader.close();
    f.coll.close();
  }
}

function submit(f: Fixture, count: number, tag: number, flags = 0): number {
  return f.submit.testRun({ data: cmd(count, tag, flags) }).retval;
}

function drainSync(reader: RingBufReader): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) out.push(r);
  return out;
}

/**
 * Runs `produce` on a later turn of the event loop. The promise never resolves; it rejects if
 * `produce` throws, so racing it against a pending read turns a failed producer into a test
 * failure rather than a read that waits forever.
 */
function later(produce: () => void, ms = 5): Promise<never> {
  return new Promise((_, reject) => {
    setTimeout(() => {
      try { produce(); } catch (e) { reject(e); }
    }, ms);
  });
}

/** Rejects if `p` has not settled within `ms`: a read that should have been served. */
function within<T>(p: Promise<T>, ms = 2000, what = 'the read'): Promise<T> {
  ms = patient(ms);
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
  await new Promise((r) => setTimeout(r, 50));
  return !settled;
}

/** The records of a batch, as [tag, seq]. */
function batchRecs(b: RingBufBatch): Rec[] {
  const out: Rec[] = [];
  for (let i = 0; i < b.count; i++) out.push(parseRec(b.data.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!)));
  return out;
}

/** Bytes of a 64 KiB slab that copies are views into (src/readers/ring-copy.ts). */
const SLAB_BYTES = 64 * 1024;

/** The compiled library, for child processes. */
const DIST_INDEX = fileURLToPath(new URL('../../src/index.js', import.meta.url));

function childScript(body: string): string {
  return `
    import { Collection, CollectionSpec, RingBufReader } from ${JSON.stringify(DIST_INDEX)};
    const coll = await Collection.load(await CollectionSpec.fromFile(${JSON.stringify(obj('ringbuf'))}));
    const events = coll.maps.get('events');
    const submit = coll.programs.get('xdp_ringbuf_submit');
    const cmd = new Uint8Array(14); cmd[0] = 1; cmd[4] = 9;
    const run = () => {
      const n = submit.testRun({ data: cmd }).retval;
      if (n !== 1) { console.error('xdp_ringbuf_submit returned', n); process.exit(3); }
    };
    ${body}
  `;
}

/** A guard against a hang, not a performance threshold. */
const CHILD_GUARD_MS = patient(60_000);
/** A reader that never wakes up fails the test instead of hanging the run. */
const kt = { ...kernelTest, timeout: patient(120_000) };

describe('RingBufReader', () => {
  test('refuses a map that is not a ring buffer', kt, async () => {
    const coll = await Collection.load(await CollectionSpec.fromFile(obj('maps')));
    try {
      assert.throws(() => new RingBufReader(coll.maps.get('hash_map')!), InvalidArgumentError);
      assert.throws(() => new RingBufReader(coll.maps.get('perf_array')!), /needs a ringbuf map/);
    } finally {
      coll.close();
    }
  });

  test('reads N submitted records in order with their contents', kt, async () => {
    await withReader(async (f, reader) => {
      assert.equal(reader.size, RING_SIZE);
      assert.equal(reader.available, 0);
      assert.equal(reader.readSync(), undefined);
      assert.equal(submit(f, 3, 7), 3);
      assert.equal(reader.available, 3 * 24);
      const got = [parseRec(reader.readSync()!), parseRec(await reader.read()), parseRec(reader.readSync()!)];
      assert.deepEqual(got, [0, 1, 2].map((seq) => ({ seq, tag: 7, count: 3, magic: RB_MAGIC })));
      assert.equal(reader.readSync(), undefined);
      assert.equal(reader.available, 0);

      assert.equal(submit(f, 1000, 11), 128, 'the producer caps a run at 128 records');
      const all = drainSync(reader).map(parseRec);
      assert.equal(all.length, 128);
      all.forEach((r, i) => assert.deepEqual(r, { seq: i, tag: 11, count: 128, magic: RB_MAGIC }));
    });
  });

  test('reads records whose length is not a multiple of 8', kt, async () => {
    await withReader((f, reader) => {
      const lengths = [13, 1, 256, 7, 8, 9, 255];
      lengths.forEach((len, i) => assert.equal(f.output.testRun({ data: cmd(len, 100 + i) }).retval, len));
      const got = drainSync(reader);
      assert.equal(got.length, lengths.length);
      got.forEach((rec, i) => assert.deepEqual(rec, pattern(lengths[i]!, 100 + i), `record ${i} (${lengths[i]} bytes)`));
      // Each takes its length plus the 8-byte header, rounded up to 8.
      assert.equal(submit(f, 1, 1), 1);
      assert.equal(parseRec(reader.readSync()!).tag, 1);
    });
  });

  test('skips discarded records', kt, async () => {
    await withReader(async (f, reader) => {
      assert.equal(f.discard.testRun({ data: cmd(5, 8) }).retval, 3);
      assert.equal(reader.available, 5 * 24, 'discarded records still take ring space');
      assert.deepEqual(drainSync(reader).map((b) => parseRec(b).seq), [0, 2, 4]);
      assert.equal(reader.available, 0);

      // A discarded record last in the ring: skipped, and the ring ends up empty.
      assert.equal(f.discard.testRun({ data: cmd(2, 10) }).retval, 1);
      assert.equal(parseRec(reader.readSync()!).seq, 0);
      assert.equal(reader.available, 24, 'the discarded record is still there');
      assert.equal(reader.readSync(), undefined);
      assert.equal(reader.available, 0);

      // Batch mode skips them too.
      assert.equal(f.discard.testRun({ data: cmd(7, 12) }).retval, 4);
      const seqs: number[] = [];
      assert.equal(reader.consumeBatch((b) => {
        for (let i = 0; i < b.count; i++) seqs.push(parseRec(b.data.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!)).seq);
      }), 4);
      assert.deepEqual(seqs, [0, 2, 4, 6]);
    });
  });

  test('loses nothing across many wrap-arounds of the ring', kt, async () => {
    await withReader(async (f, reader) => {
      // 40 rounds of 100 records (24 bytes each) = 96000 bytes, almost 6 times the ring. Each round
      // is read in a different way; every record must come back once, in order.
      let total = 0;
      for (let round = 0; round < 40; round++) {
        assert.equal(submit(f, 100, round), 100, `round ${round}: the ring had room`);
        let recs: Rec[] = [];
        switch (round % 4) {
          case 0:
            recs = drainSync(reader).map(parseRec);
            break;
          case 1:
            for (let i = 0; i < 100; i++) recs.push(parseRec(await reader.read()));
            break;
          case 2:
            for await (const r of reader) {
              recs.push(parseRec(r));
              if (recs.length === 100) break;
            }
            break;
          case 3:
            while (recs.length < 100) {
              reader.consumeBatch((b) => {
                for (let i = 0; i < b.count; i++) recs.push(parseRec(b.data.slice(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!)));
              }, { maxRecords: 33 });
            }
            break;
        }
        assert.equal(recs.length, 100);
        recs.forEach((r, i) => assert.deepEqual(r, { seq: i, tag: round, count: 100, magic: RB_MAGIC }, `round ${round} record ${i}`));
        assert.equal(reader.readSync(), undefined);
        total += 100 * 24;
      }
      assert.ok(total > 4 * RING_SIZE);

      // Variable lengths put records across the end of the ring: their bytes must be contiguous.
      for (let round = 0; round < 300; round++) {
        const len = 1 + ((round * 37) % 256);
        assert.equal(f.output.testRun({ data: cmd(len, round) }).retval, len);
        const rec = reader.readSync()!;
        assert.deepEqual(rec, pattern(len, round), `output round ${round}`);
      }
    });
  });

  test('a full ring: the producer stops, the reader gets every record, then there is room again', kt, async () => {
    await withReader((f, reader) => {
      const runs = [0, 1, 2, 3, 4, 5].map((i) => submit(f, 128, i));
      assert.deepEqual(runs, [128, 128, 128, 128, 128, 42]);
      const got = drainSync(reader).map(parseRec);
      assert.equal(got.length, 682);
      got.forEach((r, i) => {
        assert.equal(r.tag, Math.floor(i / 128));
        assert.equal(r.seq, i % 128);
      });
      assert.equal(submit(f, 128, 6), 128);
      assert.equal(drainSync(reader).length, 128);
    });
  });

  test('read() waits on the event loop for a record produced later', kt, async () => {
    await withReader(async (f, reader) => {
      let produced = false;
      const pending = reader.read();
      const producer = later(() => {
        produced = true;
        assert.equal(submit(f, 1, 42), 1);
      }, 20);
      const rec = parseRec(await Promise.race([pending, producer]));
      assert.equal(produced, true, 'read() resolved only after the record was produced');
      assert.deepEqual(rec, { seq: 0, tag: 42, count: 1, magic: RB_MAGIC });

      // Several readers waiting are served in call order, from one burst.
      const three = [reader.read(), reader.read(), reader.read()];
      const burst = later(() => assert.equal(submit(f, 3, 43, BPF_RB_FORCE_WAKEUP), 3), 0);
      assert.deepEqual((await Promise.race([Promise.all(three), burst])).map((b) => parseRec(b).seq), [0, 1, 2]);
    });
  });

  test('async iteration yields records as they come and ends on close()', kt, async () => {
    await withReader(async (f, reader) => {
      const seen: number[] = [];
      const producers = Promise.race([0, 1, 2].map((tag) => later(() => assert.equal(submit(f, 2, tag), 2), 5 * (tag + 1))));
      await Promise.race([producers, (async () => {
        for await (const r of reader) {
          const rec = parseRec(r);
          seen.push(rec.tag * 10 + rec.seq);
          if (seen.length === 6) setImmediate(() => reader.close());
        }
      })()]);
      assert.deepEqual(seen, [0, 1, 10, 11, 20, 21]);
      assert.equal(reader.closed, true);

      // After close: iteration is empty, reads throw ClosedError.
      for await (const _ of reader) assert.fail('no records after close');
      await assert.rejects(reader.read(), ClosedError);
      assert.throws(() => reader.readSync(), ClosedError);
      assert.throws(() => reader.consumeBatch(() => {}), ClosedError);
      assert.throws(() => reader.available, ClosedError);
      assert.equal(await reader.wait(), false);
      reader.close(); // idempotent
    });
  });

  test('close() settles everything pending', kt, async () => {
    await withReader(async (_f, reader) => {
      const read = reader.read();
      const it = reader.records();
      const step = it.next();
      const wait = reader.wait();
      reader.close();
      await assert.rejects(read, (e: unknown) => e instanceof ClosedError && /ring buffer reader/.test(e.message));
      assert.deepEqual(await step, { value: undefined, done: true });
      assert.equal(await wait, false);
    });
  });

  test('an aborted signal rejects with its reason and ends the iteration', kt, async () => {
    await withReader(async (f, reader) => {
      const ac = new AbortController();
      const seen: number[] = [];
      const producer = later(() => assert.equal(submit(f, 2, 5), 2));
      await assert.rejects(Promise.race([producer, (async () => {
        for await (const r of reader.records({ signal: ac.signal })) {
          seen.push(parseRec(r).seq);
          if (seen.length === 2) setImmediate(() => ac.abort());
        }
      })()]), (e: unknown) => e instanceof Error && e.name === 'AbortError');
      assert.deepEqual(seen, [0, 1]);

      // Already aborted: rejects at once even when a record is there, and does not consume it.
      submit(f, 1, 6);
      await assert.rejects(reader.read({ signal: AbortSignal.abort() }), { name: 'AbortError' });
      const reason = new Error('custom reason');
      const ac2 = new AbortController();
      const pendingWait = reader.wait({ signal: ac2.signal });
      assert.equal(await pendingWait, true);
      assert.equal(parseRec((await reader.read({ signal: ac2.signal }))).tag, 6);
      const pending = reader.read({ signal: ac2.signal });
      ac2.abort(reason);
      await assert.rejects(pending, (e: unknown) => e === reason);

      // The reader still works after an abort.
      const again = later(() => assert.equal(submit(f, 1, 7), 1));
      assert.equal(parseRec(await Promise.race([reader.read(), again])).tag, 7);
    });
  });

  test('a decoder turns records into objects; a throwing decoder consumes the record', kt, async () => {
    const f = await load();
    let calls = 0;
    const reader = new RingBufReader(f.events, {
      decode: (view): Rec => {
        calls++;
        const rec = parseRec(view);
        if (rec.tag === 13) throw new Error('bad record');
        return rec;
      },
    });
    try {
      submit(f, 2, 12);
      const first: Rec = await reader.read();
      assert.deepEqual(first, { seq: 0, tag: 12, count: 2, magic: RB_MAGIC });
      assert.deepEqual(reader.readSync(), { seq: 1, tag: 12, count: 2, magic: RB_MAGIC });
      submit(f, 1, 13);
      submit(f, 1, 14);
      assert.throws(() => reader.readSync(), /bad record/);
      assert.equal(reader.readSync()!.tag, 14, 'the bad record was consumed, the next one follows');
      assert.equal(calls, 4);
    } finally {
      reader.close();
      f.coll.close();
    }
  });

  test('batch mode hands over many records as one view of the ring, without copying', kt, async () => {
    await withReader(async (f, reader) => {
      const { PAGE_SIZE } = native().constants;
      assert.equal(reader.consumeBatch(() => assert.fail('no callback when nothing is ready')), 0);

      submit(f, 50, 3);
      const views: RingBufBatch[] = [];
      const seqs: number[] = [];
      const n = reader.consumeBatch((b) => {
        views.push(b);
        assert.equal(b.offsets.length, b.count);
        assert.equal(b.lengths.length, b.count);
        for (let i = 0; i < b.count; i++) seqs.push(parseRec(b.data.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!)).seq);
      });
      assert.equal(n, 50);
      assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i));
      // The view is the memory-mapped ring itself (producer page + the data area mapped twice).
      const ring = views[0]!.data.buffer;
      assert.equal(ring.byteLength, PAGE_SIZE + 2 * RING_SIZE);
      assert.equal(views[0]!.data.byteLength, 50 * 24);

      // The same records as read() would give, from the same buffer each time.
      submit(f, 5, 4);
      const viaBatch: Uint8Array[] = [];
      reader.consumeBatch((b) => {
        assert.equal(b.data.buffer, ring);
        for (let i = 0; i < b.count; i++) viaBatch.push(b.data.slice(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!));
      });
      submit(f, 5, 4);
      assert.deepEqual(viaBatch, drainSync(reader));

      // readBatch waits for records, then hands them over.
      const producer = later(() => assert.equal(submit(f, 4, 5), 4));
      const got: number[] = [];
      let total = 0;
      while (total < 4) {
        total += await Promise.race([producer, reader.readBatch((b) => {
          for (let i = 0; i < b.count; i++) got.push(b.data[b.offsets[i]!]!);
        })]);
      }
      assert.deepEqual(got, [0, 1, 2, 3]);

      // A throwing callback still releases the batch.
      submit(f, 2, 6);
      assert.throws(() => reader.consumeBatch(() => { throw new Error('oops'); }), /oops/);
      assert.equal(reader.readSync(), undefined);

      // wait() resolves when records are there; readBatch resolves 0 once closed.
      const one = later(() => assert.equal(submit(f, 1, 7), 1));
      assert.equal(await Promise.race([reader.wait(), one]), true);
      assert.equal(reader.consumeBatch(() => {}), 1);
      const closing = reader.readBatch(() => assert.fail('closed'));
      setImmediate(() => reader.close());
      assert.equal(await closing, 0);
    });
  });

  test('copies are views into 64 KiB slabs that stay intact as the ring and the slabs are reused', kt, async () => {
    await withReader((f, reader) => {
      // 70 runs of 128 records: 13 laps of the ring, and 24 bytes of slab per record, 3.3 slabs.
      const kept: Uint8Array[] = [];
      for (let run = 0; run < 70; run++) {
        assert.equal(submit(f, 128, run), 128);
        const got = drainSync(reader);
        assert.equal(got.length, 128, `run ${run}`);
        kept.push(...got);
      }
      const slabs = new Set(kept.map((r) => r.buffer));
      assert.ok(slabs.size >= 4, `${slabs.size} slabs`);
      assert.ok(slabs.size <= 5, `${slabs.size} slabs: a slab is filled before a new one is made`);
      kept.forEach((r, i) => {
        assert.equal(r.buffer.byteLength, SLAB_BYTES);
        assert.equal(r.byteOffset % 8, 0);
        assert.deepEqual(parseRec(r), { seq: i % 128, tag: Math.floor(i / 128), count: 128, magic: RB_MAGIC }, `record ${i}`);
      });
      // Neighbours from one copy share their slab.
      assert.equal(kept[0]!.buffer, kept[127]!.buffer);
    });
  });

  test('reads of every kind mix while copies are queued: order kept, nothing lost or repeated', kt, async () => {
    await withReader(async (f, reader) => {
      const expected: number[] = [];
      const produce = (tag: number) => {
        assert.equal(submit(f, 128, tag), 128, `tag ${tag}: the ring had room`);
        for (let seq = 0; seq < 128; seq++) expected.push(tag * 1000 + seq);
      };
      for (let tag = 0; tag < 5; tag++) produce(tag); // 640 records: the first read copies them all out
      const got: number[] = [];
      const push = (r: Uint8Array | undefined) => {
        if (r === undefined) return;
        const rec = parseRec(r);
        assert.equal(rec.magic, RB_MAGIC);
        got.push(rec.tag * 1000 + rec.seq);
      };
      const pushBatch = (b: RingBufBatch) => batchRecs(b).forEach((rec) => got.push(rec.tag * 1000 + rec.seq));
      let tag = 5;
      const methods = new Set<number>();
      for (let step = 0; got.length < expected.length; step++) {
        if (step % 9 === 4 && tag < 12) produce(tag++); // records in the ring behind the queued copies
        const left = expected.length - got.length;
        const before = got.length;
        const kind = step % 6;
        switch (kind) {
          case 0: push(reader.readSync()); break;
          case 1: reader.consumeBatch(pushBatch, { maxRecords: 1 + (step % 40) }); break;
          case 2: push(await within(reader.read())); break;
          case 3: {
            const n = Math.min(left, 1 + (step % 25));
            let k = 0;
            for await (const r of reader) {
              push(r);
              if (++k === n) break;
            }
            break;
          }
          case 4: assert.equal(await within(reader.wait()), true); push(reader.readSync()); break;
          case 5: await within(reader.readBatch(pushBatch, { maxRecords: 100 })); break;
        }
        if (got.length > before) methods.add(kind);
      }
      assert.equal(tag, 12, 'every run was produced');
      assert.equal(methods.size, 6, 'every kind of read returned records');
      assert.deepEqual(got, expected);
      assert.equal(reader.readSync(), undefined);
      assert.equal(reader.available, 0);
    });
  });

  test('a read waiting when readSync() copies records out of the ring is served from the copies', kt, async () => {
    await withReader(async (f, reader) => {
      const pending = reader.read();
      const waiting = reader.wait();
      const step = reader.records().next();
      // readSync() runs before the poll reports the ring readable, and takes all five out of it.
      assert.equal(submit(f, 5, 21), 5);
      assert.equal(parseRec(reader.readSync()!).seq, 0);
      assert.equal(parseRec(await within(pending)).seq, 1);
      assert.equal(await within(waiting, 2000, 'wait()'), true);
      assert.equal(parseRec((await within(step, 2000, 'the iteration step')).value!).seq, 2);
      assert.equal(parseRec(reader.readSync()!).seq, 3);
      assert.equal(parseRec(await within(reader.read())).seq, 4);
      assert.equal(reader.readSync(), undefined);
    });
  });

  test('available counts copies not returned yet, as it counts records in the ring', kt, async () => {
    await withReader((f, reader) => {
      assert.equal(submit(f, 3, 1), 3);
      assert.equal(reader.available, 72);
      assert.equal(parseRec(reader.readSync()!).seq, 0);
      assert.equal(reader.available, 48, 'two copies queued, none in the ring');
      assert.equal(submit(f, 2, 2), 2);
      assert.equal(reader.available, 96);
      const seqs: number[] = [];
      assert.equal(reader.consumeBatch((b) => batchRecs(b).forEach((r) => seqs.push(r.seq))), 2, 'the queued copies first');
      assert.equal(reader.available, 48);
      assert.equal(reader.consumeBatch((b) => batchRecs(b).forEach((r) => seqs.push(r.seq))), 2);
      assert.deepEqual(seqs, [1, 2, 0, 1]);
      assert.equal(reader.available, 0);
    });
    // With discarded records between the queued copies, the copying reader counts as the decoding one.
    const counts: number[][] = [];
    for (const decode of [undefined, (v: Uint8Array) => v.slice()]) {
      const f = await load();
      const reader = new RingBufReader<Uint8Array>(f.events, decode ? { decode } : {});
      try {
        assert.equal(f.discard.testRun({ data: cmd(5, 8) }).retval, 3);
        const seen = [reader.available];
        for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) seen.push(parseRec(r).seq, reader.available);
        counts.push(seen);
      } finally {
        reader.close();
        f.coll.close();
      }
    }
    assert.deepEqual(counts[0], [120, 0, 96, 2, 48, 4, 0]);
    assert.deepEqual(counts[1], counts[0]);
  });

  test('batches cut runs of equal records where lengths change, at maxRecords and past discards', kt, async () => {
    await withReader(async (f, reader) => {
      // Runs of equal headers (the scan strides over them) broken by other lengths and discards.
      const lengths = [16, 16, 16, 24, 24, 5, 16, 16, 16, 16];
      lengths.forEach((len, i) => assert.equal(f.output.testRun({ data: cmd(len, 40 + i) }).retval, len));
      assert.equal(f.discard.testRun({ data: cmd(3, 60) }).retval, 2); // 16-byte records: kept, discarded, kept
      const expected = [...lengths.map((len, i) => pattern(len, 40 + i)), null, null];
      const got: Uint8Array[] = [];
      const offsets: number[][] = [];
      const take = (b: RingBufBatch): void => {
        offsets.push([...b.offsets]);
        for (let i = 0; i < b.count; i++) got.push(b.data.slice(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!));
      };
      assert.equal(reader.consumeBatch(take, { maxRecords: 2 }), 2, 'stops inside the first run');
      assert.equal(reader.consumeBatch(take, { maxRecords: 4 }), 4, 'one record of the first run, the second run, one of 5 bytes');
      assert.equal(reader.consumeBatch(take), 6, 'the rest: a run of four, then the run that a discarded record splits');
      assert.deepEqual(offsets, [[8, 32], [8, 32, 64, 96], [8, 32, 56, 80, 104, 152]]);
      got.slice(0, lengths.length).forEach((rec, i) => assert.deepEqual(rec, expected[i], `record ${i} (${lengths[i]} bytes)`));
      assert.deepEqual(got.slice(lengths.length).map((b) => parseRec(b).seq), [0, 2]);
      assert.equal(reader.available, 0);
    });
  });

  test('discarded records at the end of a batch stay in the ring until the next scan', kt, async () => {
    await withReader(async (f, reader) => {
      // seq 0 and 2 submitted, 1 and 3 discarded.
      assert.equal(f.discard.testRun({ data: cmd(4, 30) }).retval, 2);
      let bytes = 0;
      const seqs: number[] = [];
      assert.equal(reader.consumeBatch((b) => {
        bytes = b.data.byteLength;
        assert.deepEqual([...b.offsets], [8, 56]);
        batchRecs(b).forEach((r) => seqs.push(r.seq));
      }), 2);
      assert.deepEqual(seqs, [0, 2]);
      assert.equal(bytes, 72, 'the batch ends with its last record');
      assert.equal(reader.available, 24, 'the discarded record after it is still in the ring');
      assert.equal(reader.consumeBatch(() => assert.fail('only a discarded record')), 0);
      assert.equal(reader.available, 0);

      // wait() passes discarded records without resolving, and resolves for the next real one.
      assert.equal(f.discard.testRun({ data: cmd(2, 31) }).retval, 1);
      assert.equal(parseRec(reader.readSync()!).seq, 0);
      assert.equal(reader.available, 24);
      const waiting = reader.wait();
      assert.equal(await stillPending(waiting), true);
      assert.equal(reader.available, 0);
      const producer = later(() => assert.equal(submit(f, 1, 32), 1));
      assert.equal(await within(Promise.race([waiting, producer]), 2000, 'wait()'), true);
      assert.equal(parseRec(reader.readSync()!).tag, 32);
    });
  });

  test('close() drops queued copies: reads reject with ClosedError, iteration ends', kt, async () => {
    const f = await load();
    try {
      const reader = new RingBufReader(f.events);
      assert.equal(submit(f, 10, 40), 10);
      assert.equal(parseRec(reader.readSync()!).seq, 0);
      assert.equal(reader.available, 9 * 24);
      reader.close();
      assert.throws(() => reader.readSync(), ClosedError);
      await assert.rejects(reader.read(), ClosedError);
      assert.throws(() => reader.consumeBatch(() => assert.fail('closed')), ClosedError);
      assert.equal(await reader.wait(), false);
      assert.deepEqual(await reader.records().next(), { value: undefined, done: true });
      // The copies were taken out of the ring: a new reader does not see them again.
      const again = new RingBufReader(f.events);
      assert.equal(again.available, 0);
      assert.equal(again.readSync(), undefined);

      // close() in a for await loop with copies queued: the loop ends there.
      assert.equal(submit(f, 10, 41), 10);
      const seen: number[] = [];
      for await (const r of again) {
        seen.push(parseRec(r).seq);
        if (seen.length === 3) again.close();
      }
      assert.deepEqual(seen, [0, 1, 2]);
    } finally {
      f.coll.close();
    }
  });

  test('the process exits when nobody reads', kt, () => {
    // The child reads one record through the event loop, then leaves the reader open and idle.
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', childScript(`
      const reader = new RingBufReader(events);
      setTimeout(run, 10);
      const rec = await reader.read();
      console.log('got', rec[4]);
      run(); // unread records do not keep it alive either
    `)], { encoding: 'utf8', timeout: CHILD_GUARD_MS });
    assert.equal(r.stderr, '');
    assert.equal(r.signal, null, 'the child had to be killed: something kept it alive');
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), 'got 9');

    // unref(): even a pending read lets the process exit.
    const u = spawnSync(process.execPath, ['--input-type=module', '-e', childScript(`
      const reader = new RingBufReader(events).unref();
      reader.read().then(() => console.log('unexpected record'));
      console.log('waiting');
    `)], { encoding: 'utf8', timeout: CHILD_GUARD_MS });
    assert.equal(u.signal, null, 'an unref()ed reader kept the child alive');
    assert.equal(u.status, 0);
    assert.equal(u.stdout.trim(), 'waiting');
  });

  test('a pending read keeps the process alive until its record comes', kt, async () => {
    // The child's only other handle is an unref()ed stdin: without the reader's poll handle it
    // would exit before the parent asks it (over stdin) to produce a record.
    const child = spawn(process.execPath, ['--input-type=module', '-e', childScript(`
      const reader = new RingBufReader(events);
      process.stdin.on('data', run);
      process.stdin.unref();
      reader.read().then((rec) => { console.log('got', rec[4]); process.stdin.destroy(); });
      console.log('ready');
    `)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const guard = setTimeout(() => child.kill(), CHILD_GUARD_MS);
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdin.on('error', () => { /* the child may be gone already; the assertions say why */ });
    const exit = new Promise<[number | null, string | null]>((resolve) => child.on('exit', (code, sig) => resolve([code, sig])));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready') && !out.includes('got')) child.stdin.write('go\n');
    });
    const [code, sig] = await exit;
    clearTimeout(guard);
    assert.equal(err, '');
    assert.equal(sig, null);
    assert.equal(code, 0);
    assert.deepEqual(out.trim().split('\n'), ['ready', 'got 9']);
  });
});

describe('RingBufReader.batches', () => {
  test('yields ready records as zero-copy batches in ring order, consumed at the next step', kt, async () => {
    await withReader(async (f, reader) => {
      const { PAGE_SIZE } = native().constants;
      assert.throws(() => reader.batches({ maxRecords: 0 }), InvalidArgumentError);
      // seq 0, 2, 4, ... submitted, the odd ones discarded.
      assert.equal(f.discard.testRun({ data: cmd(20, 8) }).retval, 10);
      assert.equal(submit(f, 5, 9), 5);
      const it = reader.batches({ maxRecords: 4 });
      const got: string[] = [];
      const sizes: number[] = [];
      for (let step = 0; step < 4; step++) {
        const { value: b, done } = await it.next();
        assert.equal(done, false);
        assert.equal(b.data.buffer.byteLength, PAGE_SIZE + 2 * RING_SIZE, 'a view of the mapped ring');
        assert.equal(b.view.buffer, b.data.buffer);
        assert.equal(b.view.byteOffset, b.data.byteOffset);
        // Typed reads through the batch's DataView give what a copy of the record says.
        for (let i = 0; i < b.count; i++) {
          const rec = parseRec(b.data.slice(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!));
          assert.equal(b.view.getUint32(b.offsets[i]!, true), rec.seq);
          assert.equal(b.view.getUint32(b.offsets[i]! + 4, true), rec.tag);
          assert.equal(b.view.getUint32(b.offsets[i]! + 12, true), RB_MAGIC);
          got.push(`${rec.tag}:${rec.seq}`);
        }
        sizes.push(b.count);
        if (step === 0) assert.ok(reader.available > 0, 'a held batch is not consumed yet');
      }
      assert.deepEqual(sizes, [4, 4, 4, 3]);
      assert.deepEqual(got, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18].map((s) => `8:${s}`).concat([0, 1, 2, 3, 4].map((s) => `9:${s}`)));
      // The last batch is consumed by the step that waits for more.
      const pending = it.next();
      assert.equal(await stillPending(pending), true);
      assert.equal(reader.available, 0);
      const producer = later(() => assert.equal(submit(f, 2, 10), 2));
      const { value: b } = await within(Promise.race([pending, producer]), 2000, 'the waiting step');
      assert.deepEqual(batchRecs(b!).map((r) => `${r.tag}:${r.seq}`), ['10:0', '10:1']);
      assert.deepEqual(await it.return!(), { value: undefined, done: true });
      assert.equal(reader.available, 0, 'return() consumes the held batch');
      assert.deepEqual(await it.next(), { value: undefined, done: true });
    });
  });

  test('batch.records() reads typed records in place, with a function or a BTF codec', kt, async () => {
    await withReader(async (f, reader) => {
      // struct rec { __u32 seq; __u32 tag; __u32 count; __u32 magic; }, as test/bpf/ringbuf.bpf.c writes it.
      const b = new BtfBuilder();
      const u32 = b.int('unsigned int', 4, false);
      const rec = b.struct('struct', 'rec', 16, [['seq', u32, 0], ['tag', u32, 32], ['count', u32, 64], ['magic', u32, 96]]);
      const codec = codecFor(b.build(), rec) as Codec<Rec>;
      assert.equal(f.discard.testRun({ data: cmd(9, 21) }).retval, 5);
      assert.equal(submit(f, 3, 22), 3);
      const it = reader.batches({ maxRecords: 6 });
      const seen: string[] = [];
      let step = await it.next();
      const first: RingBufBatch = step.value!;
      // A function gets the view, the record's offset and length; the same iterator object each time.
      const fromFn = [...first.records((v, at, len) => `${v.getUint32(at + 4, true)}:${v.getUint32(at, true)}/${len}`)];
      assert.deepEqual(fromFn, ['21:0/16', '21:2/16', '21:4/16', '21:6/16', '21:8/16', '22:0/16']);
      const its = first.records(codec);
      assert.equal(its[Symbol.iterator](), its);
      for (const r of its) seen.push(`${r.tag}:${r.seq}:${r.count}:${r.magic === RB_MAGIC}`);
      assert.deepEqual(its.next(), { value: undefined, done: true });
      step = await it.next();
      for (const r of step.value!.records(codec)) seen.push(`${r.tag}:${r.seq}:${r.count}:${r.magic === RB_MAGIC}`);
      assert.deepEqual(seen, [
        '21:0:9:true', '21:2:9:true', '21:4:9:true', '21:6:9:true', '21:8:9:true', '22:0:3:true', '22:1:3:true', '22:2:3:true',
      ]);
      // A record shorter than the codec's type: the codec's clear error, not a read past the record's batch.
      assert.equal(submit(f, 1, 23), 1);
      step = await it.next();
      const bigId = b.struct('struct', 'big', 40, [['seq', u32, 0]]);
      const big = codecFor(b.build(), bigId);
      assert.throws(() => [...step.value!.records(big)], (e: unknown) => e instanceof InvalidArgumentError && /expected 40 bytes at offset 8, got 16/.test(e.message));
      await it.return!();
      assert.equal(reader.available, 0);
    });
  });

  test('record views read every record in place across wrap-arounds; a view kept past its batch throws', kt, async () => {
    await withReader(async (f, reader) => {
      const b = new BtfBuilder();
      const u32 = b.int('unsigned int', 4, false);
      const recId = b.struct('struct', 'rec', 16, [['seq', u32, 0], ['tag', u32, 32], ['count', u32, 64], ['magic', u32, 96]]);
      const view = recordViewFor<Rec>(b.build(), recId);
      // 24-byte records in a 16384-byte ring: 40 rounds of 100 go round it almost 6 times, and
      // some records straddle the ring's end (read through its second mapping).
      let kept: Rec | undefined;
      for (let round = 0; round < 40; round++) {
        assert.equal(submit(f, 100, round), 100, `round ${round}: the ring had room`);
        const got: string[] = [];
        if (round % 2 === 0) {
          const it = reader.batches({ maxRecords: 37 });
          while (got.length < 100) {
            const step = await it.next();
            for (const r of step.value!.records(view)) {
              got.push(`${r.seq}:${r.tag}:${r.count}:${r.magic === RB_MAGIC}`);
              kept = r;
            }
          }
          await it.return!();
        } else {
          while (got.length < 100) {
            reader.consumeBatch((batch) => {
              const it = batch.records(view);
              // Read half through the iterator and let the callback return mid-batch: settling
              // the batch detaches the view.
              for (let i = 0; i < batch.count; i++) {
                const r = it.next().value as Rec;
                got.push(`${r.seq}:${r.tag}:${r.count}:${r.magic === RB_MAGIC}`);
                kept = r;
              }
            }, { maxRecords: 41 });
            assert.throws(() => kept!.seq, (e: unknown) => e instanceof ClosedError && /struct rec record view/.test(e.message), 'a view kept past consumeBatch');
          }
        }
        assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => `${i}:${round}:100:true`), `round ${round}`);
        assert.throws(() => kept!.tag, (e: unknown) => e instanceof ClosedError);
        assert.equal(reader.available, 0);
      }
    });
  });

  test('loses nothing across wrap-arounds, with and without waiting between batches', kt, async () => {
    await withReader(async (f, reader) => {
      const ROUNDS = 40;
      const PER_ROUND = 100; // 2400 bytes of a 16384-byte ring: 40 rounds go round it 5 times
      let round = 0;
      let expected = 0;
      const seen: number[] = [];
      const produce = () => {
        assert.equal(submit(f, PER_ROUND, round), PER_ROUND, `round ${round}: the ring had room`);
        expected += PER_ROUND;
        round++;
      };
      produce();
      let producer: Promise<never> = new Promise(() => {});
      await within(Promise.race([producer, (async () => {
        for await (const b of reader.batches({ maxRecords: 64 })) {
          for (let i = 0; i < b.count; i++) {
            seen.push(b.view.getUint32(b.offsets[i]! + 4, true) * PER_ROUND + b.view.getUint32(b.offsets[i]!, true));
          }
          if (seen.length < expected) continue;
          if (round === ROUNDS) break;
          // Even rounds come while a batch is held (the ring still has room), odd ones later, so
          // that the next step waits on the event loop.
          if (round % 2 === 0) produce();
          else producer = later(produce);
        }
      })()]), 30_000, 'the batches loop');
      assert.deepEqual(seen, Array.from({ length: ROUNDS * PER_ROUND }, (_, i) => i));
      assert.equal(reader.readSync(), undefined, 'break consumed the last batch');
    });
  });

  test('other reads between steps consume the held batch first; queued copies come first', kt, async () => {
    await withReader(async (f, reader) => {
      assert.equal(submit(f, 10, 1), 10);
      const it = reader.batches({ maxRecords: 4 });
      const first = (await it.next()).value!;
      assert.deepEqual(batchRecs(first).map((r) => r.seq), [0, 1, 2, 3]);
      // readSync() consumes the held batch and continues after it (copying 5..9 out of the ring).
      assert.equal(parseRec(reader.readSync()!).seq, 4);
      const second = (await it.next()).value!;
      assert.notEqual(second.data.buffer, first.data.buffer, 'the queued copies, in their slab');
      assert.deepEqual(batchRecs(second).map((r) => r.seq), [5, 6, 7, 8]);
      // consumeBatch() too: the held batch is consumed, the callback gets what follows.
      const viaCallback: number[] = [];
      assert.equal(reader.consumeBatch((b) => batchRecs(b).forEach((r) => viaCallback.push(r.seq))), 1);
      assert.deepEqual(viaCallback, [9]);
      assert.equal(reader.readSync(), undefined);
      await it.return!();
    });
  });

  test('abort rejects the pending step with its reason; close() and return() end a waiting iteration', kt, async () => {
    await withReader(async (f, reader) => {
      const ac = new AbortController();
      const reason = new Error('stop');
      const it = reader.batches({ signal: ac.signal });
      const step = it.next();
      ac.abort(reason);
      await assert.rejects(step, (e: unknown) => e === reason);
      await assert.rejects(it.next(), (e: unknown) => e === reason);

      const it2 = reader.batches();
      const waiting = it2.next();
      assert.equal(await stillPending(waiting), true);
      assert.deepEqual(await it2.return!(), { value: undefined, done: true });
      assert.deepEqual(await waiting, { value: undefined, done: true });

      // The reader still works; close() ends a waiting step and every later one.
      assert.equal(submit(f, 1, 3), 1);
      const it3 = reader.batches();
      assert.deepEqual(batchRecs((await it3.next()).value!).map((r) => r.tag), [3]);
      const pending = it3.next();
      setImmediate(() => reader.close());
      assert.deepEqual(await pending, { value: undefined, done: true });
      assert.deepEqual(await reader.batches().next(), { value: undefined, done: true });
    });
  });
});
