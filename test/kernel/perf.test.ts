/**
 * PerfReader against a real perf event array. Records come from `xdp_maps` in
 * test/bpf/maps.bpf.c, opcode 0x0d (PERF_OUTPUT): one bpf_perf_event_output(ctx, &perf_array,
 * BPF_F_CURRENT_CPU, &event, 64) per run, where the 64-byte event is
 *   u32 magic "BPFK", u8 op, u8 flags, u16 0, u32 key, u32 val, u8 payload[48] = key + i.
 * It comes back as a 68-byte raw sample (perf pads u32 size + data to 8 bytes).
 *
 * BPF_PROG_TEST_RUN runs the program on the CPU of the calling thread, so pinning this process's
 * main thread with `taskset -p` decides which CPU's ring a record lands in.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ClosedError, Collection, CollectionSpec, InvalidArgumentError, onlineCpus, PerfReader, type BpfMap, type PerfBatch, type PerfReaderOptions, type PerfRecord,
  type Program,
} from '../../src/index.js';
import { native } from '../../src/sys/native.js';
import { recordViewFor } from '../../src/btf/record-view.js';
import { BtfBuilder } from '../helpers/btf-builder.js';
import { kernelTest, obj, patient } from '../helpers/index.js';
import { onCpu } from '../helpers/cpus.js';

const OP_PERF_OUTPUT = 0x0d;
const MAGIC = 0x4b465042;
const ENOENT_RET = 0xfffffffe;
const ENOSPC_RET = 0x100000000 - 28;
/** perf_event_header (8) + u32 size (4) + 68 bytes of raw sample. */
const SAMPLE_RECORD_BYTES = 80;

function perfCmd(key: number, val = 0): Uint8Array {
  const b = new Uint8Array(14);
  const v = new DataView(b.buffer);
  b[0] = OP_PERF_OUTPUT;
  v.setUint32(4, key, true);
  v.setUint32(8, val, true);
  return b;
}

interface Event { magic: number; op: number; key: number; val: number; payloadOk: boolean }

function parseEvent(data: Uint8Array): Event {
  assert.equal(data.length, 68, 'a 64-byte output comes back as a 68-byte raw sample');
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const key = v.getUint32(8, true);
  let payloadOk = true;
  for (let i = 0; i < 48; i++) if (data[16 + i] !== ((key + i) & 0xff)) payloadOk = false;
  // Bytes 64..67 are perf's padding: the kernel skips them without writing, so they are not checked.
  return { magic: v.getUint32(0, true), op: data[4]!, key, val: v.getUint32(12, true), payloadOk };
}

function sample(rec: PerfRecord | undefined): { cpu: number; event: Event } {
  assert.ok(rec, 'expected a record');
  assert.equal(rec.lost, undefined, `expected a sample, got ${JSON.stringify(rec)}`);
  const event = parseEvent(rec.data!);
  assert.equal(event.magic, MAGIC);
  assert.equal(event.op, OP_PERF_OUTPUT);
  assert.ok(event.payloadOk, 'payload bytes');
  return { cpu: rec.cpu, event };
}

interface Fixture { coll: Collection; perfArray: BpfMap; prog: Program }

async function load(): Promise<Fixture> {
  const coll = await Collection.load(await CollectionSpec.fromFile(obj('maps')));
  return { coll, perfArray: coll.maps.get('perf_array')!, prog: coll.programs.get('xdp_maps')! };
}

function output(f: Fixture, key: number, repeat = 1): number {
  return f.prog.testRun({ data: perfCmd(key), repeat }).retval;
}

function drainSync(reader: PerfReader): PerfRecord[] {
  const out: PerfRecord[] = [];
  for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) out.push(r);
  return out;
}

async function withReader(options: PerfReaderOptions<Uint8Array>, fn: (f: Fixture, reader: PerfReader) => Promise<void> | void): Promise<void> {
  const f = await load();
  const reader = new PerfReader(f.perfArray, options);
  try {
    await fn(f, reader);
  } finally {
    reader.close();
    f.coll.close();
  }
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

/** A record as a short string: the sample's key, or "lost N". */
function label(r: PerfRecord): string {
  return r.lost !== undefined ? `lost ${r.lost}` : String(sample(r).event.key);
}

/** Bytes of a 64 KiB slab that copies are views into (src/readers/ring-copy.ts). */
const SLAB_BYTES = 64 * 1024;

const DIST_INDEX = fileURLToPath(new URL('../../src/index.js', import.meta.url));
const CHILD_GUARD_MS = patient(60_000);
/** A reader that never wakes up fails the test instead of hanging the run. */
const kt = { ...kernelTest, timeout: patient(120_000) };

describe('PerfReader', () => {
  test('validates its map and options', kt, async () => {
    const f = await load();
    try {
      assert.throws(() => new PerfReader(f.coll.maps.get('ringbuf')!), InvalidArgumentError);
      assert.throws(() => new PerfReader(f.perfArray, { watermark: 1024, wakeupEvents: 2 }), /not both/);
      assert.throws(() => new PerfReader(f.perfArray, { perCpuBuffer: 0 }), InvalidArgumentError);
      assert.throws(() => new PerfReader(f.perfArray, { perCpuBuffer: 4096, watermark: 8192 }), /watermark/);
      assert.throws(() => new PerfReader(f.perfArray, { cpus: [f.perfArray.maxEntries] }), /no slot/);
    } finally {
      f.coll.close();
    }
  });

  test('installs one event per CPU in the map, and removes them on close', kt, async () => {
    const f = await load();
    try {
      assert.equal(output(f, 1), ENOENT_RET, 'no reader: the program finds no event');
      const { PAGE_SIZE } = native().constants;
      const reader = new PerfReader(f.perfArray, { perCpuBuffer: 3 * PAGE_SIZE });
      assert.equal(reader.perCpuBuffer, 4 * PAGE_SIZE, 'rounded up to a power-of-two number of pages');
      assert.deepEqual(reader.cpus, onlineCpus());
      assert.equal(output(f, 1), 0);
      sample(reader.readSync());
      reader.close();
      assert.equal(output(f, 1), ENOENT_RET, 'close() took the events out of the map');
      assert.throws(() => reader.readSync(), ClosedError);
      await assert.rejects(reader.read(), ClosedError);
      assert.throws(() => reader.pause(), ClosedError);
      reader.close();
    } finally {
      f.coll.close();
    }
  });

  test('reads N samples in order with their contents', kt, async () => {
    await withReader({}, async (f, reader) => {
      const cpu = onlineCpus()[0]!;
      await onCpu(cpu, () => {
        for (let key = 0; key < 20; key++) assert.equal(output(f, key), 0);
      });
      const got = [sample(await reader.read())];
      for (const r of drainSync(reader)) got.push(sample(r));
      assert.deepEqual(got.map((g) => g.event.key), Array.from({ length: 20 }, (_, i) => i));
      for (const g of got) assert.equal(g.cpu, cpu);
      assert.equal(reader.readSync(), undefined);
    });
  });

  test('records carry the CPU they were produced on', kt, async () => {
    const cpus = onlineCpus();
    await withReader({}, async (f, reader) => {
      for (const cpu of cpus) {
        await onCpu(cpu, () => assert.equal(output(f, 1000 + cpu), 0));
        const s = sample(await reader.read());
        assert.equal(s.event.key, 1000 + cpu);
        assert.equal(s.cpu, cpu, `produced on CPU ${cpu}`);
      }
      // Records of several CPUs, read together: each one says where it came from.
      for (const cpu of cpus) await onCpu(cpu, () => assert.equal(output(f, 2000 + cpu, 3), 0));
      const got = drainSync(reader).map(sample);
      assert.equal(got.length, 3 * cpus.length);
      for (const g of got) assert.equal(g.cpu, g.event.key - 2000);
    });
  });

  test('an overrun ring reports how many samples were lost', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    await withReader({ perCpuBuffer: PAGE_SIZE }, async (f, reader) => {
      const cpu = onlineCpus().at(-1)!;
      await onCpu(cpu, async () => {
        // 100 samples of 80 bytes into one page: the ring fills and the rest are dropped.
        assert.equal(output(f, 7, 100), ENOSPC_RET, 'the last output found no room');
        const first = drainSync(reader).map(sample);
        const kept = first.length;
        assert.equal(kept, Math.floor(PAGE_SIZE / SAMPLE_RECORD_BYTES));
        first.forEach((s) => assert.equal(s.cpu, cpu));

        // The kernel writes the LOST record in front of the next sample that fits.
        assert.equal(output(f, 8), 0);
        const next = drainSync(reader);
        assert.equal(next.length, 2);
        assert.deepEqual(next[0], { cpu, lost: 100 - kept });
        assert.equal(sample(next[1]).event.key, 8);

        // Through the iterator too, and wait()/read() see a LOST record as a record.
        assert.equal(output(f, 9, 60), ENOSPC_RET);
        let samples = 0;
        let lost = 0;
        for await (const r of reader) {
          if (r.lost !== undefined) lost += r.lost;
          else samples++;
          if (samples === kept) break;
        }
        assert.equal(output(f, 10), 0);
        const lostRec = await reader.read();
        assert.deepEqual(lostRec, { cpu, lost: 60 - kept });
        assert.equal(sample(await reader.read()).event.key, 10);
        assert.equal(lost, 0);
      });
    });
  });

  test('records that wrap around the end of a ring are whole', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    await withReader({ perCpuBuffer: PAGE_SIZE }, async (f, reader) => {
      // 80-byte records do not divide a page: every 51 records or so, one straddles the end.
      // 12 rounds of 40 records, read between rounds (async and sync), is about 9 laps.
      const cpu = onlineCpus()[0]!;
      await onCpu(cpu, async () => {
        let key = 0;
        for (let round = 0; round < 12; round++) {
          const first = key;
          for (let i = 0; i < 40; i++) assert.equal(output(f, key++), 0, `round ${round}`);
          const got: number[] = [];
          if (round % 2 === 0) {
            for await (const r of reader) {
              got.push(sample(r).event.key);
              if (got.length === 40) break;
            }
          } else {
            for (const r of drainSync(reader)) got.push(sample(r).event.key);
          }
          assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => first + i));
        }
        assert.ok(key * SAMPLE_RECORD_BYTES > 8 * PAGE_SIZE);
      });
    });
  });

  test('read() waits on the event loop for a sample produced later', kt, async () => {
    await withReader({}, async (f, reader) => {
      let produced = false;
      const pending = reader.read();
      const producer = later(() => {
        produced = true;
        assert.equal(output(f, 77), 0);
      }, 20);
      const s = sample(await Promise.race([pending, producer]));
      assert.equal(produced, true);
      assert.equal(s.event.key, 77);
      assert.ok(onlineCpus().includes(s.cpu));
    });
  });


  // Regression (shared/repro/perf-wakeup): a sample written while the reader's fds were being
  // registered with epoll consumed the only wakeup, and read() stayed pending with the sample in
  // the ring. The producer fires 0-2 ms after the read starts, on fresh readers and on reused ones.
  test('read() is served when the sample comes while the poll handles are being armed', kt, async () => {
    const f = await load();
    try {
      const hung: string[] = [];
      for (const delay of [0, 1, 2]) {
        for (let i = 0; i < 15; i++) {
          const reader = new PerfReader(f.perfArray);
          try {
            for (let j = 0; j < 2; j++) {
              const key = delay * 1000 + i * 10 + j;
              const pending = reader.read();
              const producer = later(() => assert.equal(output(f, key), 0), delay);
              try {
                assert.equal(sample(await within(Promise.race([pending, producer]), 3000)).event.key, key);
              } catch (e) {
                if (!/still pending/.test(String(e))) throw e;
                hung.push(`delay ${delay} ms, reader ${i}, read ${j}: ${reader.readSync() ? 'the sample was in the ring' : 'no sample'}`);
                break;
              }
            }
          } finally {
            reader.close();
          }
        }
      }
      assert.deepEqual(hung, [], 'reads left pending while their sample was in the ring');
    } finally {
      f.coll.close();
    }
  });
  test('a watermark reader still hands over what is there', kt, async () => {
    await withReader({ watermark: 2048 }, async (f, reader) => {
      assert.equal(output(f, 5), 0);
      // One 80-byte record is below the watermark: no wakeup, but reads look at the rings first.
      assert.equal(sample(reader.readSync()).event.key, 5);
      assert.equal(output(f, 6), 0);
      assert.equal(sample(await reader.read()).event.key, 6);
    });
    await withReader({ wakeupEvents: 2 }, async (f, reader) => {
      const pending = reader.read();
      const producer = later(() => {
        assert.equal(output(f, 1), 0);
        assert.equal(output(f, 2), 0);
      });
      assert.equal(sample(await Promise.race([pending, producer])).event.key, 1);
      assert.equal(sample(reader.readSync()).event.key, 2);
    });
  });

  test('iteration ends on close() and on abort', kt, async () => {
    await withReader({}, async (f, reader) => {
      const producer = later(() => {
        assert.equal(output(f, 1), 0);
        assert.equal(output(f, 2), 0);
      });
      const keys: number[] = [];
      await Promise.race([producer, (async () => {
        for await (const r of reader) {
          keys.push(sample(r).event.key);
          if (keys.length === 2) setImmediate(() => reader.close());
        }
      })()]);
      assert.deepEqual(keys.sort(), [1, 2]);
      for await (const _ of reader) assert.fail('nothing after close');
      assert.equal(await reader.wait(), false);
    });
    await withReader({}, async (f, reader) => {
      const ac = new AbortController();
      const producer = later(() => assert.equal(output(f, 3), 0));
      const keys: number[] = [];
      await assert.rejects(Promise.race([producer, (async () => {
        for await (const r of reader.records({ signal: ac.signal })) {
          keys.push(sample(r).event.key);
          setImmediate(() => ac.abort());
        }
      })()]), { name: 'AbortError' });
      assert.deepEqual(keys, [3]);
      await assert.rejects(reader.read({ signal: AbortSignal.abort() }), { name: 'AbortError' });
      const pending = reader.read();
      reader.close();
      await assert.rejects(pending, ClosedError);
    });
  });

  test('a decoder shapes sample data', kt, async () => {
    const f = await load();
    const reader = new PerfReader(f.perfArray, { decode: (view, cpu) => ({ key: new DataView(view.buffer, view.byteOffset).getUint32(8, true), cpu }) });
    try {
      assert.equal(output(f, 31), 0);
      const rec = await reader.read();
      assert.equal(rec.lost, undefined);
      assert.equal(rec.data?.key, 31);
      assert.equal(rec.data?.cpu, rec.cpu);
    } finally {
      reader.close();
      f.coll.close();
    }
  });

  test('pause() drops output until resume(), and says how much', kt, async () => {
    await withReader({}, async (f, reader) => {
      const cpu = onlineCpus()[0]!;
      await onCpu(cpu, () => {
        reader.pause();
        assert.equal(reader.paused, true);
        assert.equal(output(f, 1, 3), ENOSPC_RET, 'a paused ring takes nothing');
        assert.equal(reader.readSync(), undefined);
        reader.resume();
        assert.equal(output(f, 2), 0);
        const got = drainSync(reader);
        assert.deepEqual(got[0], { cpu, lost: 3 });
        assert.equal(sample(got[1]).event.key, 2);
        assert.equal(got.length, 2);
      });
    });
  });

  test('an overwritable ring keeps the newest samples, read newest first', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    await withReader({ perCpuBuffer: PAGE_SIZE, overwritable: true }, async (f, reader) => {
      assert.equal(reader.overwritable, true);
      const cpu = onlineCpus()[0]!;
      await onCpu(cpu, async () => {
        for (let key = 0; key < 100; key++) assert.equal(output(f, key), 0, 'an overwritable ring never refuses');
        reader.pause();
        const got = drainSync(reader).map(sample);
        reader.resume();
        const fit = Math.floor(PAGE_SIZE / SAMPLE_RECORD_BYTES);
        // The oldest surviving record may be cut by the newest: one ring's worth, minus at most one.
        assert.ok(got.length === fit || got.length === fit - 1, `${got.length} samples`);
        assert.deepEqual(got.map((g) => g.event.key), Array.from({ length: got.length }, (_, i) => 99 - i));
        got.forEach((g) => assert.equal(g.cpu, cpu));

        // Only what was written since the last read comes next.
        for (let key = 100; key < 103; key++) assert.equal(output(f, key), 0);
        assert.deepEqual(drainSync(reader).map((r) => sample(r).event.key), [102, 101, 100]);
        assert.equal(reader.readSync(), undefined);

        const producer = later(() => assert.equal(output(f, 200), 0));
        assert.equal(sample(await Promise.race([reader.read(), producer])).event.key, 200);
      });
    });
  });

  test('samples are 8-byte aligned copies in 64 KiB slabs, also when a batch wraps around the end of the ring', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    await withReader({ perCpuBuffer: PAGE_SIZE }, async (f, reader) => {
      // 40 rounds of 40 samples (3200 bytes) through one page: most batches cross the end of the
      // ring and are copied in two pieces; 128000 bytes of copies take two slabs.
      const cpu = onlineCpus()[0]!;
      const kept: PerfRecord[] = [];
      await onCpu(cpu, () => {
        let key = 0;
        for (let round = 0; round < 40; round++) {
          for (let i = 0; i < 40; i++) assert.equal(output(f, key++), 0, `round ${round}`);
          const got = drainSync(reader);
          assert.equal(got.length, 40, `round ${round}`);
          kept.push(...got);
        }
      });
      const slabs = new Set<ArrayBufferLike>();
      kept.forEach((r, i) => {
        const s = sample(r);
        assert.equal(s.event.key, i, 'in order, none lost');
        assert.equal(s.cpu, cpu);
        assert.equal(r.data!.byteOffset % 8, 0, `sample ${i}: data 8-byte aligned`);
        assert.equal(r.data!.buffer.byteLength, SLAB_BYTES);
        slabs.add(r.data!.buffer);
      });
      assert.ok(slabs.size >= 2, `${slabs.size} slabs`);
    });
  });

  test('LOST records come in order between samples already copied out and the next ones', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    await withReader({ perCpuBuffer: PAGE_SIZE }, async (f, reader) => {
      const cpu = onlineCpus().at(-1)!;
      const kept = Math.floor(PAGE_SIZE / SAMPLE_RECORD_BYTES);
      await onCpu(cpu, async () => {
        assert.equal(output(f, 7, 100), ENOSPC_RET);
        // The first read copies every sample out of the ring; the rest wait in the queue.
        assert.equal(sample(reader.readSync()).event.key, 7);
        assert.equal(output(f, 8), 0, 'the ring has room again');
        const rest = drainSync(reader).map(label);
        assert.deepEqual(rest, [...Array<string>(kept - 1).fill('7'), `lost ${100 - kept}`, '8']);

        // The same through read() and for await.
        assert.equal(output(f, 9, 60), ENOSPC_RET);
        assert.equal(sample(await within(reader.read())).event.key, 9);
        assert.equal(output(f, 10), 0);
        const seen: string[] = [];
        for await (const r of reader) {
          assert.equal(r.cpu, cpu);
          seen.push(label(r));
          if (seen.length === kept + 1) break;
        }
        assert.deepEqual(seen, [...Array<string>(kept - 1).fill('9'), `lost ${60 - kept}`, '10']);
        assert.equal(reader.readSync(), undefined);
      });
    });
  });

  test('a decoder error ends its batch and surfaces at the read that reaches its sample', kt, async () => {
    const f = await load();
    const decoded: number[] = [];
    const cpu = onlineCpus()[0]!;
    const reader = new PerfReader(f.perfArray, {
      cpus: [cpu],
      decode: (view) => {
        const key = new DataView(view.buffer, view.byteOffset, view.byteLength).getUint32(8, true);
        decoded.push(key);
        if (key === 4) throw new Error('bad sample 4');
        return key;
      },
    });
    try {
      await onCpu(cpu, () => {
        for (let key = 0; key < 10; key++) assert.equal(output(f, key), 0);
      });
      assert.equal(reader.readSync()!.data, 0);
      assert.deepEqual(decoded, [0, 1, 2, 3, 4], 'the batch ended at the failing sample');
      const reads = Array.from({ length: 9 }, () => reader.read().then((r) => String(r.data), (e: Error) => e.message));
      assert.deepEqual(await within(Promise.all(reads)), ['1', '2', '3', 'bad sample 4', '5', '6', '7', '8', '9']);
      assert.deepEqual(decoded, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each sample decoded once');
      assert.equal(reader.readSync(), undefined);
    } finally {
      reader.close();
      f.coll.close();
    }
  });

  test('a read waiting when readSync() copies samples out of the ring is served from the copies', kt, async () => {
    const cpu = onlineCpus()[0]!;
    await withReader({ cpus: [cpu] }, async (f, reader) => {
      const pending = reader.read();
      const waiting = reader.wait();
      await onCpu(cpu, () => {
        for (let key = 0; key < 4; key++) assert.equal(output(f, key), 0);
      });
      assert.equal(sample(reader.readSync()).event.key, 0);
      assert.equal(sample(await within(pending)).event.key, 1);
      assert.equal(await within(waiting, 2000, 'wait()'), true);
      assert.equal(sample(reader.readSync()).event.key, 2);
      assert.equal(sample(await within(reader.read())).event.key, 3);
    });
  });

  test('close() drops queued samples: reads reject with ClosedError, iteration ends', kt, async () => {
    const cpu = onlineCpus()[0]!;
    await withReader({ cpus: [cpu] }, async (f, reader) => {
      await onCpu(cpu, () => assert.equal(output(f, 50, 10), 0));
      assert.equal(sample(reader.readSync()).event.key, 50);
      reader.close();
      assert.throws(() => reader.readSync(), ClosedError);
      await assert.rejects(reader.read(), ClosedError);
      assert.deepEqual(await reader.records().next(), { value: undefined, done: true });
      assert.equal(await reader.wait(), false);
    });
    await withReader({ cpus: [cpu] }, async (f, reader) => {
      await onCpu(cpu, () => assert.equal(output(f, 60, 10), 0));
      let n = 0;
      for await (const r of reader) {
        assert.equal(sample(r).event.key, 60);
        if (++n === 3) reader.close();
      }
      assert.equal(n, 3);
    });
  });

  test('the process exits when nobody reads', kt, () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { Collection, CollectionSpec, PerfReader } from ${JSON.stringify(DIST_INDEX)};
      const coll = await Collection.load(await CollectionSpec.fromFile(${JSON.stringify(obj('maps'))}));
      const prog = coll.programs.get('xdp_maps');
      const cmd = new Uint8Array(14); cmd[0] = ${OP_PERF_OUTPUT}; cmd[4] = 9;
      const reader = new PerfReader(coll.maps.get('perf_array'));
      const run = () => {
        const rv = prog.testRun({ data: cmd }).retval;
        if (rv !== 0) { console.error('PERF_OUTPUT returned', rv); process.exit(3); }
      };
      setTimeout(run, 10);
      const rec = await reader.read();
      console.log('got', rec.data[8]);
      run(); // an unread sample does not keep it alive either
    `], { encoding: 'utf8', timeout: CHILD_GUARD_MS });
    assert.equal(r.stderr, '');
    assert.equal(r.signal, null, 'the child had to be killed: something kept it alive');
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), 'got 9');
  });
});

/** The samples of a batch, parsed and checked like sample(). */
function batchSamples(b: PerfBatch): { cpu: number; event: Event }[] {
  const out: { cpu: number; event: Event }[] = [];
  for (let i = 0; i < b.count; i++) {
    assert.ok(b.offsets[i]! + b.lengths[i]! <= b.data.byteLength, 'a sample lies within the batch view');
    out.push(sample({ cpu: b.cpu, data: b.data.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!) }));
  }
  return out;
}

describe('PerfReader.consumeBatch', () => {
  test('hands over every sample in order, batches stopping at the end of the ring', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    await withReader({ perCpuBuffer: PAGE_SIZE }, async (f, reader) => {
      const cpu = onlineCpus()[0]!;
      await onCpu(cpu, () => {
        let key = 0;
        const got: number[] = [];
        let batches = 0;
        for (let round = 0; round < 12; round++) {
          for (let i = 0; i < 40; i++) assert.equal(output(f, key++), 0, `round ${round}`);
          while (reader.consumeBatch((b) => {
            assert.equal(b.cpu, cpu);
            assert.equal(b.lost, 0);
            assert.ok(b.data.byteLength <= PAGE_SIZE);
            for (const s of batchSamples(b)) got.push(s.event.key);
          }) > 0) batches++;
        }
        assert.deepEqual(got, Array.from({ length: key }, (_, i) => i));
        assert.ok(batches > 12, `${batches} batches: some stopped at the end of the ring`);
        assert.equal(reader.readSync(), undefined);
      });
    });
  });

  test('record views read the samples in place across ring wraps; a view kept past its batch throws', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    const b = new BtfBuilder();
    const u8 = b.int('unsigned char', 1, false);
    const u32 = b.int('unsigned int', 4, false);
    // The 64 bytes test/bpf's perf program outputs: { u32 magic; u8 op; u8 pad[3]; u32 key; u32 val; u8 payload[48]; }
    const evId = b.struct('struct', 'perf_ev', 64, [
      ['magic', u32, 0], ['op', u8, 32], ['key', u32, 64], ['val', u32, 96], ['payload', b.array(u8, 48), 128],
    ]);
    const view = recordViewFor<{ magic: number; op: number; key: number; val: number; payload: Uint8Array }>(b.build(), evId);
    await withReader({ perCpuBuffer: PAGE_SIZE }, async (f, reader) => {
      const cpu = onlineCpus()[0]!;
      await onCpu(cpu, async () => {
        let key = 0;
        const got: number[] = [];
        let kept: { key: number } | undefined;
        for (let round = 0; round < 12; round++) {
          for (let i = 0; i < 40; i++) assert.equal(output(f, key++), 0, `round ${round}`);
          const it = reader.batches();
          while (got.length < key) {
            const { value: batch } = await it.next();
            assert.equal(batch!.cpu, cpu);
            for (const ev of batch!.records(view)) {
              assert.equal(ev.magic, MAGIC);
              assert.equal(ev.op, OP_PERF_OUTPUT);
              assert.deepEqual(ev.payload, Uint8Array.from({ length: 48 }, (_, i) => (ev.key + i) & 0xff), `sample ${ev.key} payload`);
              got.push(ev.key);
              kept = ev;
            }
          }
          await it.return!();
          assert.throws(() => kept!.key, (e: unknown) => e instanceof ClosedError && /struct perf_ev record view/.test(e.message));
        }
        assert.deepEqual(got, Array.from({ length: key }, (_, i) => i));
        assert.ok(key * SAMPLE_RECORD_BYTES > 8 * PAGE_SIZE, 'the rings wrapped');
      });
    });
  });

  test('the ring space is handed back when the callback returns, or throws', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    await withReader({ perCpuBuffer: PAGE_SIZE }, async (f, reader) => {
      const cpu = onlineCpus()[0]!;
      await onCpu(cpu, () => {
        assert.equal(output(f, 1, 100), ENOSPC_RET, 'the ring is full');
        let inside = 0;
        const n = reader.consumeBatch((b) => {
          inside = output(f, 2);
          assert.ok(batchSamples(b).every((s) => s.event.key === 1));
        });
        assert.equal(inside, ENOSPC_RET, 'no room while the callback runs');
        assert.ok(n > 0);
        assert.equal(output(f, 3), 0, 'room after it');
        assert.throws(() => reader.consumeBatch(() => { throw new Error('boom'); }), /boom/);
        // Whatever that batch held is gone; the rest comes next, then nothing.
        while (reader.consumeBatch(() => {}) > 0);
        assert.equal(reader.consumeBatch(() => assert.fail('empty')), 0);
        assert.equal(reader.readSync(), undefined);
      });
    });
  });

  test('LOST records are counted in batch.lost', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    await withReader({ perCpuBuffer: PAGE_SIZE }, async (f, reader) => {
      const cpu = onlineCpus().at(-1)!;
      await onCpu(cpu, () => {
        assert.equal(output(f, 7, 100), ENOSPC_RET);
        let samples = 0;
        let lost = 0;
        const keys: number[] = [];
        const eat = (b: PerfBatch) => {
          lost += b.lost;
          samples += b.count;
          for (const s of batchSamples(b)) keys.push(s.event.key);
        };
        while (reader.consumeBatch(eat) > 0);
        const kept = Math.floor(PAGE_SIZE / SAMPLE_RECORD_BYTES);
        assert.equal(samples, kept);
        assert.equal(lost, 0);
        assert.equal(output(f, 8), 0);
        while (reader.consumeBatch(eat) > 0);
        assert.equal(lost, 100 - kept, 'the LOST record in front of sample 8');
        assert.deepEqual(keys.slice(kept), [8]);
      });
    });
  });

  test('readBatch waits for samples; close() in the callback or while waiting ends it', kt, async () => {
    const cpu = onlineCpus()[0]!;
    await withReader({ cpus: [cpu] }, (f, reader) => onCpu(cpu, async () => {
      const keys: number[] = [];
      const n = await within(Promise.race([
        reader.readBatch((b) => { for (const s of batchSamples(b)) keys.push(s.event.key); }),
        later(() => assert.equal(output(f, 40, 3), 0)),
      ]));
      assert.ok(n >= 1);
      while (reader.consumeBatch((b) => { for (const s of batchSamples(b)) keys.push(s.event.key); }) > 0);
      assert.deepEqual(keys, [40, 40, 40]);
      assert.equal(output(f, 41, 2), 0);
      assert.equal(reader.consumeBatch(() => reader.close()), 2);
      assert.throws(() => reader.consumeBatch(() => {}), ClosedError);
    }));
    await withReader({ cpus: [cpu] }, async (_f, reader) => {
      const waiting = reader.readBatch(() => assert.fail('closed first'));
      setTimeout(() => reader.close(), 5);
      assert.equal(await within(waiting), 0);
    });
  });
});

describe('PerfReader.batches', () => {
  test('yields one ring\'s samples per step, in order, the space handed back at the next step', kt, async () => {
    const { PAGE_SIZE } = native().constants;
    const cpu = onlineCpus()[0]!;
    await withReader({ cpus: [cpu], perCpuBuffer: PAGE_SIZE }, (f, reader) => onCpu(cpu, async () => {
      assert.throws(() => reader.batches({ maxRecords: 0 }), InvalidArgumentError);
      const it = reader.batches({ maxRecords: 8 });
      let key = 0;
      const got: number[] = [];
      // 8 rounds of 20 samples: several laps of a one-page ring (51 samples of 80 bytes fill it).
      for (let round = 0; round < 8; round++) {
        const producer = later(() => { for (let i = 0; i < 20; i++) assert.equal(output(f, key++), 0, `round ${round}: room in the ring`); });
        // The first step of a round waits on the event loop; the next ones find samples ready.
        let step = await within(Promise.race([it.next(), producer]), 2000, 'a waiting step');
        for (;;) {
          assert.equal(step.done, false);
          const b = step.value!;
          assert.equal(b.cpu, cpu);
          assert.equal(b.view.buffer, b.data.buffer);
          assert.ok(b.count <= 8);
          const keys = batchSamples(b).map((s) => s.event.key);
          for (let i = 0; i < b.count; i++) {
            // A typed read through the batch's DataView agrees with the decoded sample.
            assert.equal(b.view.getUint32(b.offsets[i]! + 8, true), keys[i]);
            got.push(keys[i]!);
          }
          // records() reads the same fields in place, one per sample.
          assert.deepEqual([...b.records((v: DataView, at: number) => v.getUint32(at + 8, true))], keys);
          if (got.length === key) break;
          step = await it.next();
        }
      }
      await it.return!();
      assert.deepEqual(got, Array.from({ length: key }, (_, i) => i));
      assert.equal(reader.readSync(), undefined, 'return() consumed the last batch');
    }));
  });

  test('abort, close() and return() end it; an overwritable reader refuses it', kt, async () => {
    const cpu = onlineCpus()[0]!;
    await withReader({ cpus: [cpu] }, async (f, reader) => {
      const reason = new Error('stop');
      const ac = new AbortController();
      const it = reader.batches({ signal: ac.signal });
      const step = it.next();
      ac.abort(reason);
      await assert.rejects(step, (e: unknown) => e === reason);

      const it2 = reader.batches();
      const waiting = it2.next();
      assert.deepEqual(await it2.return!(), { value: undefined, done: true });
      assert.deepEqual(await waiting, { value: undefined, done: true });

      await onCpu(cpu, () => assert.equal(output(f, 5), 0));
      // A sample read with readSync() first: the rest of what it copied out comes as a batch of copies.
      await onCpu(cpu, () => assert.equal(output(f, 6), 0));
      assert.equal(sample(reader.readSync()).event.key, 5);
      const it3 = reader.batches();
      assert.deepEqual(batchSamples((await it3.next()).value!).map((s) => s.event.key), [6]);
      const pending = it3.next();
      setImmediate(() => reader.close());
      assert.deepEqual(await within(pending), { value: undefined, done: true });
    });
    await withReader({ cpus: [cpu], overwritable: true }, async (_f, reader) => {
      await assert.rejects(reader.batches().next(), InvalidArgumentError);
    });
  });
});
