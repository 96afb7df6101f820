/**
 * Drop counting (bpf/include/bpfkit/drops.h + readDrops): a producer bursts records into a 4 KiB
 * ring while nobody reads it, so the ring fills; every record is then either delivered to the
 * reader or counted in the drops map, exactly.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Collection, CollectionSpec, InvalidArgumentError, PerfReader, readDrops, RingBufReader, type BpfMap, type Program } from '../../src/index.js';
import { kernelTest, obj, patient } from '../helpers/index.js';
import { allowedCpus, onCpuSync } from '../helpers/cpus.js';

const kt = { ...kernelTest, timeout: patient(60_000) };
const MAGIC = 0x44524f50;

interface Fixture { coll: Collection; events: BpfMap; dropped: BpfMap; reserve: Program; output: Program }

async function withFixture(fn: (f: Fixture, reader: RingBufReader) => Promise<void> | void): Promise<void> {
  const coll = await Collection.load(await CollectionSpec.fromFile(obj('drops')));
  const f: Fixture = {
    coll,
    events: coll.maps.get('events')!,
    dropped: coll.maps.get('dropped')!,
    reserve: coll.programs.get('xdp_drops_reserve')!,
    output: coll.programs.get('xdp_drops_output')!,
  };
  const reader = new RingBufReader(f.events);
  try {
    await fn(f, reader);
  } finally {
    reader.close();
    coll.close();
  }
}

/** Runs `prog` once to send `count` records; returns how many it says it sent. */
function burst(prog: Program, count: number): number {
  const data = new Uint8Array(64);
  new DataView(data.buffer).setUint32(0, count, true);
  return prog.testRun({ data }).retval;
}

/** Everything the reader has now, checked record by record: their seq numbers. */
function drain(reader: RingBufReader): number[] {
  const seqs: number[] = [];
  for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) {
    const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
    assert.equal(r.length, 64);
    assert.equal(dv.getUint32(8, true), MAGIC);
    seqs.push(dv.getUint32(0, true));
  }
  return seqs;
}

describe('drop counting', () => {
  for (const kind of ['reserve', 'output'] as const) {
    test(`bpfkit_ringbuf_${kind}: delivered + counted drops == produced, with a paused consumer`, kt, async () => {
      await withFixture((f, reader) => {
        assert.equal(readDrops(f.dropped), 0n);
        let produced = 0;
        let delivered = 0;
        // Three bursts of 300 into a ring that holds 56 records, reading only between bursts.
        for (const n of [300, 300, 10]) {
          const sent = burst(f[kind], n);
          produced += n;
          const seqs = drain(reader);
          assert.equal(seqs.length, sent, 'the reader gets what the program says it sent');
          // What fits comes first, in order; the rest of the burst was counted.
          assert.deepEqual(seqs, Array.from({ length: sent }, (_, i) => i));
          delivered += seqs.length;
          assert.equal(readDrops(f.dropped), BigInt(produced - delivered));
        }
        assert.ok(delivered > 0 && delivered < produced, `some records fit and some did not (${delivered} of ${produced})`);
        // The last burst fitted whole: the ring was empty again.
        assert.equal(burst(f[kind], 5), 5);
        assert.equal(drain(reader).length, 5);
        assert.equal(readDrops(f.dropped), BigInt(produced - delivered));
      });
    });
  }

  test('bpfkit_perf_event_output: counts what the kernel reports lost, and delivered + counted == produced', kt, async () => {
    const coll = await Collection.load(await CollectionSpec.fromFile(obj('drops')));
    // One page per CPU: about 50 samples of 64 bytes fit.
    const reader = new PerfReader(coll.maps.get('perf_events')!, { perCpuBuffer: 4096 });
    try {
      const prog = coll.programs.get('xdp_drops_perf')!;
      const dropped = coll.maps.get('dropped')!;
      const drainPerf = (): { samples: number[]; lost: number } => {
        const samples: number[] = [];
        let lost = 0;
        for (let r = reader.readSync(); r !== undefined; r = reader.readSync()) {
          if (r.lost !== undefined) {
            lost += r.lost;
            continue;
          }
          const dv = new DataView(r.data.buffer, r.data.byteOffset, r.data.byteLength);
          assert.equal(dv.getUint32(8, true), MAGIC);
          samples.push(dv.getUint32(0, true));
        }
        return { samples, lost };
      };
      // The samples go to the ring of the CPU the test runs execute on, and the kernel writes a
      // ring's LOST record in front of that ring's next sample: keep every run on one CPU.
      const cpu = allowedCpus()[0]!;
      const sent = onCpuSync(cpu, () => burst(prog, 300));
      assert.ok(sent > 0 && sent < 300, `the ring took some of the burst (${sent})`);
      const first = drainPerf();
      assert.deepEqual(first.samples, Array.from({ length: sent }, (_, i) => i));
      assert.equal(readDrops(dropped), BigInt(300 - sent), 'the program counted every failed output');
      // The kernel writes its LOST record in front of the next sample that fits.
      assert.equal(onCpuSync(cpu, () => burst(prog, 1)), 1);
      const second = drainPerf();
      assert.deepEqual(second.samples, [0]);
      assert.equal(first.lost + second.lost, 300 - sent, 'PERF_RECORD_LOST says as many as the counter');
      assert.equal(first.samples.length + second.samples.length + Number(readDrops(dropped)), 301);
    } finally {
      reader.close();
      coll.close();
    }
  });

  test('readDrops refuses a map of another shape, and a closed one', kt, async () => {
    await withFixture((f) => {
      assert.throws(() => readDrops(f.events), (e: unknown) =>
        e instanceof InvalidArgumentError && /map events is a ringbuf .* expected a per-CPU array of __u64 .*BPFKIT_DROPS_MAP/.test(e.message));
    });
    const coll = await Collection.load(await CollectionSpec.fromFile(obj('drops')));
    const m = coll.maps.get('dropped')!;
    coll.close();
    assert.throws(() => readDrops(m), (e: unknown) => (e as { code?: string }).code === 'ERR_BPFKIT_CLOSED');
  });
});
