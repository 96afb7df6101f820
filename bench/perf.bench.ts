/**
 * Perf buffer consumption, bpfkit next to libbpf, in one run: samples per second taken out of
 * 16 MiB per-CPU perf rings holding 64-byte samples (68 bytes as perf stores them), by
 *   libbpf          perf_buffer__new + perf_buffer__consume / perf_buffer__poll (bench/c/perf-consumer.c)
 *   bpfkit batches  the documented default: `for await (const batch of reader.batches())`, each sample's
 *                   first word read through `batch.view` (a DataView) at `batch.offsets[i]`
 *   bpfkit view     batches() with record views (recordViewFor, the documented typed path): `rec.seq` of
 *                   { u64 seq; u64 fill[7] } as a bigint and (int64: 'number') as a number, and `rec.seq`
 *                   + `rec.comm` (a string) of { u32 seq; u32 hi; char comm[16]; ... } over the same bytes
 *   bpfkit batch    PerfReader.consumeBatch(cb): zero-copy batches of one ring's samples, read through one view
 *                   (drain: batches of at most 4096 samples, and batches up to the end of the ring; live: 4096)
 *   bpfkit decode   PerfReader with a `decode` callback that reads the sample in place (no copy), readSync() in a loop
 *   bpfkit copy     `for await (const rec of reader)`: one promise and one Uint8Array copy per sample
 *   bpfkit readSync the copying mode without the async iteration
 * Every consumer reads each sample's first word (its sequence number) and the sums are checked.
 * Both sides open their events with wakeup_events = 1 (libbpf's fixed setting, PerfReader's default).
 * The batch mode makes no object per sample (one batch object per callback); the decode mode still
 * makes a Uint8Array view and a record object per sample.
 *
 * The producer is bench/bpf/perf_bench.bpf.c: an XDP program run with BPF_PROG_TEST_RUN that
 * writes PER_RUN samples per run with bpf_perf_event_output(BPF_F_CURRENT_CPU), so the samples
 * land in the ring of the CPU that makes the test-run call.
 *
 * 1. Drain (the headline figure). Each round writes RECORDS samples from the consumer's CPU, then
 *    times how long the consumer takes to drain them; writing is not timed. Same object, same
 *    samples, same CPU for both sides: the time is the consumer's alone. Limits: no concurrent
 *    writer and no wakeups, so this is the consumer's best case.
 * 2. Live. A producer process (perf-consumer produce) pinned to another CPU runs the program flat
 *    out for LIVE_MS while the consumer waits with epoll (libbpf) or uv_poll (bpfkit). With
 *    wakeup_events = 1 every sample costs the producer an interrupt for the wakeup, which can make
 *    the producer the bottleneck (then nothing is lost and every consumer shows the producer's
 *    rate: the figure only says that the consumer keeps up). Lost samples are reported.
 *
 * Environment: BENCH_PERF_ROUNDS (drain rounds, default 10, after 2 warm-up rounds),
 * BENCH_PERF_RECORDS (samples per round, default 200000: 80 bytes each in a 16 MiB ring),
 * BENCH_PERF_LIVE_MS (default 1000), BENCH_PERF_LIVE_RUNS (default 1; 0 skips the live part).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  Collection, CollectionSpec, onlineCpus, PerfReader, recordViewFor, type BpfMap, type PerfBatch, type PerfRecord, type Program,
  type RecordView,
} from '../src/index.js';
import { BtfBuilder } from '../test/helpers/btf-builder.js';
import { bpffs, buildBpf, buildC, buildGo, reportMany } from './common.js';

const ROUNDS = Number(process.env['BENCH_PERF_ROUNDS'] ?? 10);
const WARMUP = 2;
const RECORDS = Number(process.env['BENCH_PERF_RECORDS'] ?? 200_000);
const PER_RUN = 1000;
const LIVE_MS = Number(process.env['BENCH_PERF_LIVE_MS'] ?? 1000);
const LIVE_RUNS = Number(process.env['BENCH_PERF_LIVE_RUNS'] ?? 1);
const RING_BYTES = 16 << 20;
/** perf_event_header + u32 size + 64 bytes + 4 bytes of padding. */
const SAMPLE_RECORD_BYTES = 80;

if (RECORDS % PER_RUN !== 0) throw new Error(`BENCH_PERF_RECORDS must be a multiple of ${PER_RUN}`);
if (RECORDS * SAMPLE_RECORD_BYTES > RING_BYTES) throw new Error(`BENCH_PERF_RECORDS: at most ${Math.floor(RING_BYTES / SAMPLE_RECORD_BYTES)} samples fit in a ring`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function expectedSum(records: number): number {
  return (records / PER_RUN) * (PER_RUN * (PER_RUN - 1)) / 2;
}

function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

const object = buildBpf('perf_bench');
const consumer = buildC('perf-consumer');
const goConsumer = buildGo('cilium-consumer');
const cpus = onlineCpus();
const consumerCpu = cpus[0] ?? 0;
const producerCpu = cpus[1] ?? -1;
const pages = String(RING_BYTES / 4096);
// This thread writes the drain rounds' samples (into its CPU's ring) and consumes: keep it on one CPU.
try {
  execFileSync('taskset', ['-p', '-c', String(consumerCpu), String(process.pid)], { stdio: 'ignore' });
} catch {
  console.log('(taskset failed: the bpfkit consumer is not pinned to a CPU, the C one is)');
}

/** The 14-byte test-run input of perf_produce: u32 count. */
const RUN = (() => {
  const b = new Uint8Array(14);
  new DataView(b.buffer).setUint32(0, PER_RUN, true);
  return b;
})();

interface Tally { count: number; sum: number; lost: number }

/** A reader and how it drains: `drain` takes everything that is there now. */
interface Mode {
  open(map: BpfMap): PerfReader<unknown>;
  drain(reader: PerfReader<unknown>, t: Tally, expected: number): Promise<void> | void;
  /** Live runs: consume until `signal` aborts, then take what is left. */
  live(reader: PerfReader<unknown>, t: Tally, signal: AbortSignal): Promise<void>;
}

function tallyCopy(t: Tally, rec: PerfRecord<Uint8Array>): void {
  if (rec.lost !== undefined) {
    t.lost += rec.lost;
    return;
  }
  t.sum += u32le(rec.data, 0);
  t.count++;
}

/** decode: the sample's first word, read in place. */
function tallyDecoded(t: Tally, rec: PerfRecord<number>): void {
  if (rec.lost !== undefined) t.lost += rec.lost;
  else {
    t.sum += rec.data;
    t.count++;
  }
}

const decodeMode: Mode = {
  open: (map) => new PerfReader(map, { perCpuBuffer: RING_BYTES, decode: (view) => u32le(view, 0) }),
  drain(reader, t) {
    const r = reader as PerfReader<number>;
    let rec: PerfRecord<number> | undefined;
    while ((rec = r.readSync()) !== undefined) tallyDecoded(t, rec);
  },
  async live(reader, t, signal) {
    const r = reader as PerfReader<number>;
    let rec: PerfRecord<number> | undefined;
    try {
      while (await r.wait({ signal })) {
        while ((rec = r.readSync()) !== undefined) tallyDecoded(t, rec);
      }
    } catch (e) {
      if (!signal.aborted) throw e;
    }
    while ((rec = r.readSync()) !== undefined) tallyDecoded(t, rec);
  },
};

/** consumeBatch: each sample's first word, read straight from the batch's view of the ring. */
function tallyBatch(t: Tally): (b: PerfBatch) => void {
  return (b) => {
    const data = b.data;
    const offsets = b.offsets;
    let sum = 0;
    for (let i = 0; i < b.count; i++) sum += u32le(data, offsets[i]!);
    t.sum += sum;
    t.count += b.count;
    t.lost += b.lost;
  };
}

/** consumeBatch() in batches of up to `maxRecords` samples (all that are ready when undefined). */
function batchMode(maxRecords?: number): Mode {
  const opts = maxRecords === undefined ? {} : { maxRecords };
  return {
    open: (map) => new PerfReader(map, { perCpuBuffer: RING_BYTES }),
    drain(reader, t) {
      const cb = tallyBatch(t);
      while (reader.consumeBatch(cb, opts) > 0);
    },
    async live(reader, t, signal) {
      const cb = tallyBatch(t);
      try {
        while (await reader.wait({ signal })) while (reader.consumeBatch(cb, opts) > 0);
      } catch (e) {
        if (!signal.aborted) throw e;
      }
      while (reader.consumeBatch(cb, opts) > 0);
    },
  };
}

/** One batch's samples through its DataView. */
function tallyView(t: Tally, b: PerfBatch): void {
  const { view, offsets, count } = b;
  let sum = 0;
  for (let i = 0; i < count; i++) sum += view.getUint32(offsets[i]!, true);
  t.sum += sum;
  t.count += count;
  t.lost += b.lost;
}

// struct record { __u64 seq; __u64 fill[7]; } and an exec-like struct over the same bytes (the
// object's BTF does not carry them: clang emits only the types that maps and functions name).
const bb = new BtfBuilder();
const u64t = bb.int('unsigned long long', 8, false);
const u32t = bb.int('unsigned int', 4, false);
const recordT = bb.struct('struct', 'record', 64, [['seq', u64t, 0], ['fill', bb.array(u64t, 7), 64]]);
const execT = bb.struct('struct', 'exec_record', 64, [
  ['seq', u32t, 0], ['hi', u32t, 32], ['comm', bb.array(bb.int('char', 1, true), 16), 64], ['fill', bb.array(u64t, 5), 192],
]);
const benchBtf = bb.build();

/** batches() with a record view: `read(rec)` per sample (typed members read in place). */
function viewMode<R extends object>(view: RecordView<R>, read: (rec: R) => number): Mode {
  return {
    open: (map) => new PerfReader(map, { perCpuBuffer: RING_BYTES }),
    async drain(reader, t, expected) {
      const end = t.count + expected;
      for await (const b of reader.batches()) {
        let sum = 0;
        for (const rec of b.records(view)) sum += read(rec);
        t.sum += sum;
        t.count += b.count;
        t.lost += b.lost;
        if (t.count === end) break;
      }
    },
    live: (reader, t, signal) => batchesMode.live(reader, t, signal),
  };
}
const viewBigint = viewMode(recordViewFor<{ seq: bigint }>(benchBtf, recordT), (r) => Number(r.seq));
const viewNumber = viewMode(recordViewFor<{ seq: number }>(benchBtf, recordT, { int64: 'number' }), (r) => r.seq);
// Every sample carries the same text, so the view's cache of recent texts always hits.
const viewComm = viewMode(recordViewFor<{ seq: number; comm: string }>(benchBtf, execT), (r) => {
  if (r.comm !== 'perf-bench') throw new Error(`comm read as ${JSON.stringify(r.comm)}`);
  return r.seq;
});

/** batches() with typed records read in place by batch.records(): a function returning the sample's first u32. */
const readFirst = (v: DataView, at: number): number => v.getUint32(at, true);
const recordsMode: Mode = {
  open: (map) => new PerfReader(map, { perCpuBuffer: RING_BYTES }),
  async drain(reader, t, expected) {
    const end = t.count + expected;
    for await (const b of reader.batches()) {
      let sum = 0;
      for (const x of b.records(readFirst)) sum += x;
      t.sum += sum;
      t.count += b.count;
      t.lost += b.lost;
      if (t.count === end) break;
    }
  },
  live: (reader, t, signal) => batchesMode.live(reader, t, signal),
};

/** The documented default: for await over batches(). */
const batchesMode: Mode = {
  open: (map) => new PerfReader(map, { perCpuBuffer: RING_BYTES }),
  async drain(reader, t, expected) {
    const end = t.count + expected;
    for await (const b of reader.batches()) {
      tallyView(t, b);
      if (t.count === end) break; // the rings are empty now: the next step would wait
    }
  },
  async live(reader, t, signal) {
    try {
      for await (const b of reader.batches({ signal })) tallyView(t, b);
    } catch (e) {
      if (!signal.aborted) throw e;
    }
    while (reader.consumeBatch((b) => tallyView(t, b)) > 0);
  },
};

const iteratorMode: Mode = {
  open: (map) => new PerfReader(map, { perCpuBuffer: RING_BYTES }),
  async drain(reader, t, expected) {
    let left = expected;
    for await (const rec of reader as PerfReader<Uint8Array>) {
      tallyCopy(t, rec);
      if (--left === 0) break; // the rings are empty now: the next step would wait
    }
  },
  async live(reader, t, signal) {
    const r = reader as PerfReader<Uint8Array>;
    try {
      for await (const rec of r.records({ signal })) tallyCopy(t, rec);
    } catch (e) {
      if (!signal.aborted) throw e;
    }
    let rec: PerfRecord<Uint8Array> | undefined;
    while ((rec = r.readSync()) !== undefined) tallyCopy(t, rec);
  },
};

const readSyncMode: Mode = {
  open: (map) => new PerfReader(map, { perCpuBuffer: RING_BYTES }),
  drain(reader, t) {
    const r = reader as PerfReader<Uint8Array>;
    let rec: PerfRecord<Uint8Array> | undefined;
    while ((rec = r.readSync()) !== undefined) tallyCopy(t, rec);
  },
  live: () => Promise.reject(new Error('not used')),
};

function write(prog: Program): void {
  for (let k = 0; k < RECORDS / PER_RUN; k++) {
    const { retval } = prog.testRun({ data: RUN });
    if (retval !== PER_RUN) throw new Error(`the kernel took ${retval} of ${PER_RUN} samples: the ring was not drained`);
  }
}

async function bpfkitDrain(mode: Mode): Promise<number[]> {
  const coll = await Collection.load(await CollectionSpec.fromFile(object));
  const prog = coll.programs.get('perf_produce')!;
  const reader = mode.open(coll.maps.get('events')!);
  const rates: number[] = [];
  const t: Tally = { count: 0, sum: 0, lost: 0 };
  try {
    for (let r = 0; r < WARMUP + ROUNDS; r++) {
      write(prog);
      const before = t.count;
      const t0 = process.hrtime.bigint();
      await mode.drain(reader, t, RECORDS);
      const ns = Number(process.hrtime.bigint() - t0);
      if (t.count - before !== RECORDS) throw new Error(`drained ${t.count - before} samples of ${RECORDS}`);
      if (r >= WARMUP) rates.push(RECORDS / (ns / 1e9));
    }
  } finally {
    reader.close();
    coll.close();
  }
  const rounds = WARMUP + ROUNDS;
  if (t.sum !== rounds * expectedSum(RECORDS) || t.lost !== 0) {
    throw new Error(`bpfkit read wrong samples (sum ${t.sum}, expected ${rounds * expectedSum(RECORDS)}; ${t.lost} lost)`);
  }
  return rates;
}

/** The drain rounds of the C consumer or (with `sub` 'perf') the Go one: same arguments, same JSON. */
function nativeDrain(name: string, binary: string, sub: string[] = []): number[] {
  const rounds = WARMUP + ROUNDS;
  const out = JSON.parse(execFileSync(binary, [...sub, 'drain', object, String(rounds), String(RECORDS), String(PER_RUN), String(consumerCpu), pages], { encoding: 'utf8' })) as
    { rates: number[]; count: number; sum: number; lost: number; dropped: number };
  if (out.count !== rounds * RECORDS || out.sum !== rounds * expectedSum(RECORDS) || out.lost !== 0 || out.dropped !== 0) {
    throw new Error(`${name} drained ${out.count} samples (sum ${out.sum}, ${out.lost} lost); expected ${rounds * RECORDS}`);
  }
  return out.rates.slice(WARMUP);
}

interface Live { count: number; ns: number; lost: number; produced: number; dropped: number }

async function bpfkitLive(mode: Mode): Promise<Live> {
  const coll = await Collection.load(await CollectionSpec.fromFile(object));
  const dir = join(bpffs(), `bpfkit-bench-perf-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const pin = join(dir, 'prog');
  const reader = mode.open(coll.maps.get('events')!);
  try {
    coll.programs.get('perf_produce')!.pin(pin);
    const t: Tally = { count: 0, sum: 0, lost: 0 };
    const controller = new AbortController();
    const t0 = process.hrtime.bigint();
    const child = spawn(consumer, ['produce', pin, String(LIVE_MS), String(PER_RUN), String(producerCpu)], { stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => {
        controller.abort();
        resolve(code);
      });
    });
    await mode.live(reader, t, controller.signal);
    const ns = Number(process.hrtime.bigint() - t0);
    const code = await exited;
    if (code !== 0) throw new Error(`the producer exited with ${code}`);
    const stats = coll.maps.get('stats')!.lookupBytes(new Uint8Array(4))!;
    const v = new DataView(stats.buffer, stats.byteOffset, stats.byteLength);
    const produced = Number(v.getBigUint64(0, true));
    if (t.count !== produced) throw new Error(`bpfkit received ${t.count} of ${produced} samples`);
    return { count: t.count, ns, lost: t.lost, produced, dropped: Number(v.getBigUint64(8, true)) };
  } finally {
    reader.close();
    coll.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A live run of the C consumer, or of the Go one (`go`: its binary). */
function nativeLive(go?: string): Live {
  const dir = join(bpffs(), `bpfkit-bench-perf-${go ? 'go' : 'c'}-${process.pid}`);
  const args = [object, dir, String(LIVE_MS), String(PER_RUN), String(consumerCpu), String(producerCpu), pages];
  try {
    const out = JSON.parse(go
      ? execFileSync(go, ['perf', 'live', ...args, consumer], { encoding: 'utf8' })
      : execFileSync(consumer, ['live', ...args], { encoding: 'utf8' })) as Live;
    if (out.count !== out.produced) throw new Error(`${go ? 'cilium/ebpf' : 'libbpf'} received ${out.count} of ${out.produced} samples`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true }); // the C/Go side removes it too, unless it died
  }
}

try {
  console.log(`perf buffer: 16 MiB per CPU, 64-byte samples; consumer on CPU ${consumerCpu}` +
    (producerCpu >= 0 ? `, live producer on CPU ${producerCpu}` : ' (one CPU: the live producer shares it)'));
  const libbpf = median(nativeDrain('libbpf', consumer)) / 1e6;
  const cilium = goConsumer ? median(nativeDrain('cilium/ebpf', goConsumer, ['perf'])) / 1e6 : undefined;
  const baselines = [libbpf, cilium];
  const batches = median(await bpfkitDrain(batchesMode)) / 1e6;
  const records = median(await bpfkitDrain(recordsMode)) / 1e6;
  const vBig = median(await bpfkitDrain(viewBigint)) / 1e6;
  const vNum = median(await bpfkitDrain(viewNumber)) / 1e6;
  const vComm = median(await bpfkitDrain(viewComm)) / 1e6;
  const batch4k = median(await bpfkitDrain(batchMode(4096))) / 1e6;
  const batch = median(await bpfkitDrain(batchMode())) / 1e6;
  const decode = median(await bpfkitDrain(decodeMode)) / 1e6;
  const copy = median(await bpfkitDrain(iteratorMode)) / 1e6;
  const sync = median(await bpfkitDrain(readSyncMode)) / 1e6;
  reportMany(`Drain pre-written rings, ${RECORDS} samples per round (median of ${ROUNDS} rounds; M samples/s, higher is better)`, ['libbpf', 'cilium/ebpf'], [
    { what: 'for await (const batch of reader.batches()) (default)', bpfkit: batches, baselines, unit: 'M rec/s' },
    { what: 'batches() + batch.records((v, at) => v.getUint32(at, true))', bpfkit: records, baselines, unit: 'M rec/s' },
    { what: 'batches() + records(recordViewFor(struct record)): rec.seq bigint', bpfkit: vBig, baselines, unit: 'M rec/s' },
    { what: "  the same with { int64: 'number' }", bpfkit: vNum, baselines, unit: 'M rec/s' },
    { what: 'batches() + records(recordViewFor(exec_record)): rec.seq, rec.comm', bpfkit: vComm, baselines, unit: 'M rec/s' },
    { what: 'consumeBatch(cb, { maxRecords: 4096 })', bpfkit: batch4k, baselines, unit: 'M rec/s' },
    { what: 'consumeBatch(cb), up to the ring end', bpfkit: batch, baselines, unit: 'M rec/s' },
    { what: 'no copy: decode in place, readSync()', bpfkit: decode, baselines, unit: 'M rec/s' },
    { what: 'for await (const rec of reader) (per record, copies)', bpfkit: copy, baselines, unit: 'M rec/s' },
    { what: 'readSync() loop (per record, copies)', bpfkit: sync, baselines, unit: 'M rec/s' },
  ]);

  if (LIVE_RUNS > 0) {
    type Kind = 'libbpf' | 'cilium' | 'batches' | 'batch' | 'decode' | 'copy';
    const runs: Record<Kind, Live[]> = { libbpf: [], cilium: [], batches: [], batch: [], decode: [], copy: [] };
    for (let i = 0; i < LIVE_RUNS; i++) {
      runs.libbpf.push(nativeLive());
      if (goConsumer) runs.cilium.push(nativeLive(goConsumer));
      runs.batches.push(await bpfkitLive(batchesMode));
      runs.batch.push(await bpfkitLive(batchMode(4096)));
      runs.decode.push(await bpfkitLive(decodeMode));
      runs.copy.push(await bpfkitLive(iteratorMode));
    }
    const kinds = (Object.keys(runs) as Kind[]).filter((k) => runs[k].length > 0);
    const rate = (ls: Live[]): number | undefined => (ls.length ? median(ls.map((l) => l.count / (l.ns / 1e9))) / 1e6 : undefined);
    const lost = (ls: Live[]): number => ls.reduce((a, l) => a + l.dropped, 0);
    const title = `Live: producer process on another CPU for ${LIVE_MS} ms, consumer waiting on the rings' fds (median of ${LIVE_RUNS} run(s))`;
    if (kinds.every((k) => lost(runs[k]) === 0)) {
      // Nothing lost: every consumer kept up and the producer set the pace, so a ratio would only compare producer runs.
      console.log(`\n${title}\nevery consumer kept up with the producer, which set the pace: ` +
        kinds.map((k) => `${k} ${rate(runs[k])!.toFixed(2)} M rec/s (0 lost)`).join(', '));
    } else {
      const liveBase = [rate(runs.libbpf), rate(runs.cilium)];
      reportMany(`${title}; M samples/s received, higher is better`, ['libbpf', 'cilium/ebpf'], [
        { what: 'for await (const batch of reader.batches()) (default)', bpfkit: rate(runs.batches)!, baselines: liveBase, unit: 'M rec/s' },
        { what: 'wait() + consumeBatch({ maxRecords: 4096 })', bpfkit: rate(runs.batch)!, baselines: liveBase, unit: 'M rec/s' },
        { what: 'no copy: wait() + readSync()', bpfkit: rate(runs.decode)!, baselines: liveBase, unit: 'M rec/s' },
        { what: 'for await (const rec of reader) (per record, copies)', bpfkit: rate(runs.copy)!, baselines: liveBase, unit: 'M rec/s' },
      ]);
      console.log(`samples the kernel could not write (ring full): ${kinds.map((k) => `${k} ${lost(runs[k])}`).join(', ')}`);
    }
  }
  console.log('("batch" makes one object per batch; "no copy" still makes a view and a record object per sample.)');
  console.log('\nDrain: the rings are written, then drained and timed; no concurrent writer and no wakeups, so it is the consumer\'s best case.');
  console.log('Live: a producer on another CPU, paced by one wakeup interrupt per sample; when nothing is lost the figure is the producer\'s rate.');
} finally {
  rmSync(dirname(object), { recursive: true, force: true });
  rmSync(dirname(consumer), { recursive: true, force: true });
  if (goConsumer) rmSync(dirname(goConsumer), { recursive: true, force: true });
}
