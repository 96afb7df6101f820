/**
 * Ring buffer consumption, bpfkit next to libbpf and cilium/ebpf, in one run: records per second
 * taken out of a 16 MiB BPF ring buffer holding 64-byte records, by
 *   libbpf          ring_buffer__new + ring_buffer__consume / ring_buffer__poll (bench/c/ringbuf-consumer.c)
 *   cilium/ebpf     ringbuf.Reader.ReadInto with one reused Record (bench/go/cilium-consumer; Debian's 0.9.1)
 *   bpfkit batches  the documented default: `for await (const batch of reader.batches())`, each record's
 *                   fields read through `batch.view` (a DataView) at `batch.offsets[i]`
 *   bpfkit records  batches() with typed records read in place by batch.records(): a function returning
 *                   the record's seq, the BTF codec of struct record (a decoded object per record), and
 *                   record views (recordViewFor, the documented typed path): `rec.seq` of struct
 *                   record, and `rec.seq` + `rec.comm` (a string) of an exec-like struct over the same bytes
 *   bpfkit batch    RingBufReader.consumeBatch / readBatch: ready records as one zero-copy view, in
 *                   batches of at most 4096 records (maxRecords), and (drain only) all in one batch
 *   bpfkit copy     `for await (const rec of reader)`: one promise and one Uint8Array copy per record
 *   bpfkit readSync the copying mode without the async iteration (readSync() in a loop), to tell the two costs apart
 * Every consumer reads each record's first word (its sequence number) and the sums are checked, so
 * nobody can skip work or lose records unnoticed. The C and Go consumers and the batch consumers
 * read it with one load (a DataView over the batch in JavaScript); the copy consumers assemble it
 * from the record's bytes, as code handed a Uint8Array per record would.
 *
 * Why two batch rows: a batch is read twice, by the reader's scan of the record headers and then by
 * the callback, and libbpf reads each record once. A batch of a few thousand records stays in the
 * CPU cache between the two passes; a whole 16 MiB ring does not, so one huge batch is read from
 * memory twice.
 *
 * The producer is bench/bpf/ringbuf_bench.bpf.c: an XDP program run with BPF_PROG_TEST_RUN that
 * writes PER_RUN records per run (one test run per syscall: with repeat > 1 an XDP test run flips
 * a kernel static key around the runs, which costs milliseconds on virtual machines).
 *
 * 1. Drain (the headline figure). Each round fills the ring with RECORDS records, then times how
 *    long the consumer takes to drain them; the fill is not timed. Both sides load the same object,
 *    fill the same way from the same CPU and drain the same records, so the load is identical and
 *    the time is the consumer's alone. Limits: the ring is written before it is read (no producer
 *    running on another CPU at the same time, so no cache lines moving between CPUs while reading)
 *    and nobody sleeps (no epoll / uv_poll wakeups): this is the consumer's best-case throughput.
 * 2. Live. A producer process (ringbuf-consumer produce) pinned to another CPU runs the program
 *    flat out for LIVE_MS while the consumer, pinned to its own CPU, waits for data with epoll
 *    (libbpf) or uv_poll (bpfkit) and drains. The producer submits without waking the reader but
 *    for the last record of each run, which forces a wakeup. It is faster than any consumer, so
 *    the ring runs full and records are dropped: received records per second is then the
 *    consumer's throughput with concurrent writes and wakeups. Limits: the figure depends on the
 *    machine's cross-CPU cache and wakeup latency and varies more from run to run than the drain
 *    figure (the median of LIVE_RUNS runs is shown); with a single CPU the two processes share it.
 *
 * The cilium/ebpf consumer is built with Debian's golang-go and golang-github-cilium-ebpf-dev
 * (scripts/setup.sh installs them; without them its column shows '-').
 *
 * Environment: BENCH_RB_ROUNDS (drain rounds, default 10, after 2 warm-up rounds), BENCH_RB_RECORDS
 * (records per round, default 200000: a 16 MiB ring holds 233016 of them), BENCH_RB_LIVE_MS
 * (default 1000), BENCH_RB_LIVE_RUNS (default 3; 0 skips the live part).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  codecFor, Collection, CollectionSpec, onlineCpus, recordViewFor, RingBufReader, type Codec, type Program, type RecordView,
  type RingBufBatch,
} from '../src/index.js';
import { BtfBuilder } from '../test/helpers/btf-builder.js';
import { bpffs, buildBpf, buildC, buildGo, reportMany, type MultiRow } from './common.js';

const ROUNDS = Number(process.env['BENCH_RB_ROUNDS'] ?? 10);
const WARMUP = 2;
const RECORDS = Number(process.env['BENCH_RB_RECORDS'] ?? 200_000);
const PER_RUN = 1000;
const LIVE_MS = Number(process.env['BENCH_RB_LIVE_MS'] ?? 1000);
const LIVE_RUNS = Number(process.env['BENCH_RB_LIVE_RUNS'] ?? 3);
/** bpf_ringbuf_submit flags of bench/bpf/ringbuf_bench.bpf.c. */
const BPF_RB_NO_WAKEUP = 1;
const BPF_RB_FORCE_WAKEUP = 2;

if (RECORDS % PER_RUN !== 0) throw new Error(`BENCH_RB_RECORDS must be a multiple of ${PER_RUN}`);

/** The 14-byte test-run input of rb_produce: u32 count, u32 flags, u32 last_flags. */
function command(count: number, flags: number, lastFlags: number): Uint8Array {
  const b = new Uint8Array(14);
  const v = new DataView(b.buffer);
  v.setUint32(0, count, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, lastFlags, true);
  return b;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Sum of the sequence numbers of `records` records written PER_RUN per run. */
function expectedSum(records: number): number {
  return (records / PER_RUN) * (PER_RUN * (PER_RUN - 1)) / 2;
}

const object = buildBpf('ringbuf_bench');
const consumer = buildC('ringbuf-consumer');
const goConsumer = buildGo('cilium-consumer');
const cpus = onlineCpus();
const consumerCpu = cpus[0] ?? 0;
const producerCpu = cpus[1] ?? -1;
// This thread fills (drain rounds) and consumes: keep it on one CPU, as the C consumer does.
try {
  execFileSync('taskset', ['-p', '-c', String(consumerCpu), String(process.pid)], { stdio: 'ignore' });
} catch {
  console.log('(taskset failed: the bpfkit consumer is not pinned to a CPU, the C one is)');
}

interface Tally { count: number; sum: number }

// ---------------------------------------------------------------- drain

const FILL = command(PER_RUN, BPF_RB_NO_WAKEUP, BPF_RB_NO_WAKEUP);

function fill(prog: Program): void {
  for (let k = 0; k < RECORDS / PER_RUN; k++) {
    const { retval } = prog.testRun({ data: FILL });
    if (retval !== PER_RUN) throw new Error(`the ring took ${retval} of ${PER_RUN} records: it was not drained`);
  }
}

function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

type Drain = (reader: RingBufReader, t: Tally) => Promise<void> | void;

/** A batch consumer: reads each record's first word with a DataView (one load, as the C consumer's). */
function batchTally(t: Tally): (b: RingBufBatch) => void {
  return (b) => {
    const view = new DataView(b.data.buffer, b.data.byteOffset, b.data.byteLength);
    const offsets = b.offsets;
    let sum = 0;
    for (let i = 0; i < b.count; i++) sum += view.getUint32(offsets[i]!, true);
    t.sum += sum;
    t.count += b.count;
  };
}

const drainBatch: Drain = (reader, t) => {
  const onBatch = batchTally(t);
  while (reader.consumeBatch(onBatch) > 0) { /* until the ring is empty */ }
};

/**
 * Batches of at most BATCH records: the reader's scan of a batch leaves it in the CPU cache for the
 * callback's pass over it (a whole 16 MiB ring does not stay there).
 */
const BATCH = 4096;
const drainBatchCapped: Drain = (reader, t) => {
  const onBatch = batchTally(t);
  const options = { maxRecords: BATCH };
  while (reader.consumeBatch(onBatch, options) > 0) { /* until the ring is empty */ }
};

const drainIterator: Drain = async (reader, t) => {
  let left = RECORDS;
  for await (const rec of reader) {
    t.sum += u32le(rec, 0);
    t.count++;
    if (--left === 0) break; // the ring is empty now: the next step would wait
  }
};

/** The documented default: an async iterator of batches, fields read through the batch's DataView. */
const drainBatches: Drain = async (reader, t) => {
  let left = RECORDS;
  for await (const batch of reader.batches()) {
    const { view, offsets, count } = batch;
    let sum = 0;
    for (let i = 0; i < count; i++) sum += view.getUint32(offsets[i]!, true);
    t.sum += sum;
    t.count += count;
    if ((left -= count) === 0) break; // the ring is empty now: the next step would wait
  }
};

/** Typed records in place: batch.records() with a function reading the record's `seq` (a number). */
const readSeq = (v: DataView, at: number): number => v.getUint32(at, true);
const drainRecordsFn: Drain = async (reader, t) => {
  let left = RECORDS;
  for await (const batch of reader.batches()) {
    let sum = 0;
    for (const seq of batch.records(readSeq)) sum += seq;
    t.sum += sum;
    t.count += batch.count;
    if ((left -= batch.count) === 0) break;
  }
};

/**
 * Typed records in place through the object's BTF: codecFor(struct record) decodes every record
 * into { seq: bigint, fill: bigint[7] } (9 allocations a record): what a decoded object costs.
 */
let recordCodec: Codec<{ seq: bigint }> | undefined;
const drainRecordsCodec: Drain = async (reader, t) => {
  let left = RECORDS;
  const codec = recordCodec!;
  for await (const batch of reader.batches()) {
    let sum = 0;
    for (const rec of batch.records(codec)) sum += Number(rec.seq);
    t.sum += sum;
    t.count += batch.count;
    if ((left -= batch.count) === 0) break;
  }
};

/** batches() with a record view: `read(rec)` per record (typed members read in place). */
function drainView<R extends object>(view: () => RecordView<R>, read: (rec: R) => number): Drain {
  return async (reader, t) => {
    let left = RECORDS;
    const v = view();
    for await (const batch of reader.batches()) {
      let sum = 0;
      for (const rec of batch.records(v)) sum += read(rec);
      t.sum += sum;
      t.count += batch.count;
      if ((left -= batch.count) === 0) break;
    }
  };
}

/** A record view of struct record, `rec.seq` read per record (a bigint). */
let recordView: RecordView<{ seq: bigint }> | undefined;
const drainRecordView = drainView(() => recordView!, (r) => Number(r.seq));
/** The same with { int64: 'number' }: `rec.seq` a number, no allocation per record. */
let recordViewNum: RecordView<{ seq: number }> | undefined;
const drainRecordViewNum = drainView(() => recordViewNum!, (r) => r.seq);
/**
 * A record view with text: { u32 seq; u32 hi; char comm[16]; u64 fill[5] } over the same bytes,
 * `rec.seq` and `rec.comm` (decoded to a string) read per record, as execsnoop reads its events.
 * Every record carries the same text, so the view's cache of recent texts always hits.
 */
let commView: RecordView<{ seq: number; comm: string }> | undefined;
const drainCommView = drainView(() => commView!, (r) => {
  if (r.comm !== 'ringbuf-bench') throw new Error(`comm read as ${JSON.stringify(r.comm)}`);
  return r.seq;
});

const drainReadSync: Drain = (reader, t) => {
  let rec: Uint8Array | undefined;
  while ((rec = reader.readSync()) !== undefined) {
    t.sum += u32le(rec, 0);
    t.count++;
  }
};

async function bpfkitDrain(drain: Drain): Promise<number[]> {
  const coll = await Collection.load(await CollectionSpec.fromFile(object));
  const reader = new RingBufReader(coll.maps.get('ring')!);
  const prog = coll.programs.get('rb_produce')!;
  const rates: number[] = [];
  const t: Tally = { count: 0, sum: 0 };
  try {
    for (let r = 0; r < WARMUP + ROUNDS; r++) {
      fill(prog);
      const before = t.count;
      const t0 = process.hrtime.bigint();
      await drain(reader, t);
      const ns = Number(process.hrtime.bigint() - t0);
      if (t.count - before !== RECORDS) throw new Error(`drained ${t.count - before} records of ${RECORDS}`);
      if (r >= WARMUP) rates.push(RECORDS / (ns / 1e9));
    }
  } finally {
    reader.close();
    coll.close();
  }
  const rounds = WARMUP + ROUNDS;
  if (t.sum !== rounds * expectedSum(RECORDS)) throw new Error(`bpfkit read wrong records (sum ${t.sum}, expected ${rounds * expectedSum(RECORDS)})`);
  return rates;
}

/** The drain rounds of the C consumer or (with `sub` 'ringbuf') the Go one: same arguments, same JSON. */
function nativeDrain(name: string, binary: string, sub: string[] = []): number[] {
  const rounds = WARMUP + ROUNDS;
  const out = JSON.parse(execFileSync(binary, [...sub, 'drain', object, String(rounds), String(RECORDS), String(PER_RUN), String(consumerCpu)], { encoding: 'utf8' })) as
    { rates: number[]; count: number; sum: number; dropped: number };
  if (out.count !== rounds * RECORDS || out.sum !== rounds * expectedSum(RECORDS) || out.dropped !== 0) {
    throw new Error(`${name} drained ${out.count} records (sum ${out.sum}, ${out.dropped} dropped); expected ${rounds * RECORDS}`);
  }
  return out.rates.slice(WARMUP);
}

// ---------------------------------------------------------------- live

interface Live { count: number; ns: number; produced: number; dropped: number }

type LiveConsume = (reader: RingBufReader, t: Tally, signal: AbortSignal) => Promise<void>;

const liveBatch: LiveConsume = async (reader, t, signal) => {
  const onBatch = batchTally(t);
  const options = { signal, maxRecords: BATCH };
  try {
    for (;;) await reader.readBatch(onBatch, options);
  } catch (e) {
    if (!signal.aborted) throw e;
  }
  while (reader.consumeBatch(onBatch, options) > 0) { /* what is left */ }
};

const liveBatches: LiveConsume = async (reader, t, signal) => {
  try {
    for await (const batch of reader.batches({ signal })) {
      const { view, offsets, count } = batch;
      let sum = 0;
      for (let i = 0; i < count; i++) sum += view.getUint32(offsets[i]!, true);
      t.sum += sum;
      t.count += count;
    }
  } catch (e) {
    if (!signal.aborted) throw e;
  }
  while (reader.consumeBatch(batchTally(t)) > 0) { /* what is left */ }
};

const liveIterator: LiveConsume = async (reader, t, signal) => {
  try {
    for await (const rec of reader.records({ signal })) {
      t.sum += u32le(rec, 0);
      t.count++;
    }
  } catch (e) {
    if (!signal.aborted) throw e;
  }
  let rec: Uint8Array | undefined;
  while ((rec = reader.readSync()) !== undefined) {
    t.sum += u32le(rec, 0);
    t.count++;
  }
};

async function bpfkitLive(consume: LiveConsume): Promise<Live> {
  const coll = await Collection.load(await CollectionSpec.fromFile(object));
  const dir = join(bpffs(), `bpfkit-bench-rb-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const pin = join(dir, 'prog');
  const reader = new RingBufReader(coll.maps.get('ring')!);
  try {
    coll.programs.get('rb_produce')!.pin(pin);
    const t: Tally = { count: 0, sum: 0 };
    const controller = new AbortController();
    const t0 = process.hrtime.bigint();
    const child = spawn(consumer, ['produce', pin, String(LIVE_MS), String(PER_RUN), '1', String(producerCpu),
      String(BPF_RB_NO_WAKEUP), String(BPF_RB_FORCE_WAKEUP)], { stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => {
        controller.abort();
        resolve(code);
      });
    });
    await consume(reader, t, controller.signal);
    const ns = Number(process.hrtime.bigint() - t0);
    const code = await exited;
    if (code !== 0) throw new Error(`the producer exited with ${code}`);
    const stats = coll.maps.get('stats')!.lookupBytes(new Uint8Array(4))!;
    const v = new DataView(stats.buffer, stats.byteOffset, stats.byteLength);
    const produced = Number(v.getBigUint64(0, true));
    if (t.count !== produced) throw new Error(`bpfkit received ${t.count} of ${produced} records`);
    return { count: t.count, ns, produced, dropped: Number(v.getBigUint64(8, true)) };
  } finally {
    reader.close();
    coll.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function libbpfLive(): Live {
  const dir = join(bpffs(), `bpfkit-bench-rb-c-${process.pid}`);
  try {
    const out = JSON.parse(execFileSync(consumer, ['live', object, dir, String(LIVE_MS), String(PER_RUN), '1', String(consumerCpu), String(producerCpu)], { encoding: 'utf8' })) as
      Live & { sum: number };
    if (out.count !== out.produced) throw new Error(`libbpf received ${out.count} of ${out.produced} records`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true }); // the C side removes it too, unless it died
  }
}

function ciliumLive(binary: string): Live {
  const dir = join(bpffs(), `bpfkit-bench-rb-go-${process.pid}`);
  try {
    const out = JSON.parse(execFileSync(binary, ['ringbuf', 'live', object, dir, String(LIVE_MS), String(PER_RUN), String(consumerCpu), String(producerCpu), consumer], { encoding: 'utf8' })) as
      Live & { sum: number };
    if (out.count !== out.produced) throw new Error(`cilium/ebpf received ${out.count} of ${out.produced} records`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true }); // the Go side removes it too, unless it died
  }
}

type LiveKind = 'libbpf' | 'cilium' | 'batches' | 'batch' | 'copy';

/** LIVE_RUNS runs of each consumer, interleaved so that drifts of the machine hit all of them alike. */
async function liveRows(): Promise<{ rows: MultiRow[]; notes: string[] }> {
  const runs: Record<LiveKind, Live[]> = { libbpf: [], cilium: [], batches: [], batch: [], copy: [] };
  for (let i = 0; i < LIVE_RUNS; i++) {
    runs.libbpf.push(libbpfLive());
    if (goConsumer) runs.cilium.push(ciliumLive(goConsumer));
    runs.batches.push(await bpfkitLive(liveBatches));
    runs.batch.push(await bpfkitLive(liveBatch));
    runs.copy.push(await bpfkitLive(liveIterator));
  }
  const rate = (l: Live): number => l.count / (l.ns / 1e9);
  const med = (ls: Live[]): number | undefined => (ls.length ? median(ls.map(rate)) / 1e6 : undefined);
  const dropShare = (ls: Live[]): string => `${(100 * median(ls.map((l) => l.dropped / (l.dropped + l.produced)))).toFixed(1)}%`;
  const baselines = [med(runs.libbpf), med(runs.cilium)];
  const kinds = (Object.keys(runs) as LiveKind[]).filter((k) => runs[k].length > 0);
  return {
    rows: [
      { what: 'for await (const batch of reader.batches()) (default)', bpfkit: med(runs.batches)!, baselines, unit: 'M rec/s' },
      { what: `readBatch({ maxRecords: ${BATCH} })`, bpfkit: med(runs.batch)!, baselines, unit: 'M rec/s' },
      { what: 'for await (const rec of reader) (per record, copies)', bpfkit: med(runs.copy)!, baselines, unit: 'M rec/s' },
    ],
    notes: [
      `producer attempts dropped because the ring was full (median): ${kinds.map((k) => `${k} ${dropShare(runs[k])}`).join(', ')}`,
      `per-run received M rec/s: ${kinds.map((k) => `${k} ${runs[k].map((l) => (rate(l) / 1e6).toFixed(1)).join(' ')}`).join('; ')}`,
    ],
  };
}

// ---------------------------------------------------------------- run

try {
  console.log(`ring buffer: 16 MiB, 64-byte records; consumer on CPU ${consumerCpu}` +
    (producerCpu >= 0 ? `, live producer on CPU ${producerCpu}` : ' (one CPU: the live producer shares it)'));
  // Every round's rate, so that the best round can be shown too: on a busy machine the other
  // processes only ever slow a round down, so the best round is the least disturbed one.
  const libbpfRounds = nativeDrain('libbpf', consumer);
  const ciliumRounds = goConsumer ? nativeDrain('cilium/ebpf', goConsumer, ['ringbuf']) : [];
  const batchesRounds = await bpfkitDrain(drainBatches);
  const batchRounds = await bpfkitDrain(drainBatchCapped);
  // struct record { __u64 seq; __u64 fill[7]; } (the object's BTF does not carry it: clang emits
  // only the types that maps and functions name).
  const bb = new BtfBuilder();
  const u64 = bb.int('unsigned long long', 8, false);
  const recordType = bb.struct('struct', 'record', 64, [['seq', u64, 0], ['fill', bb.array(u64, 7), 64]]);
  const u32 = bb.int('unsigned int', 4, false);
  const char = bb.int('char', 1, true);
  const execType = bb.struct('struct', 'exec_record', 64, [
    ['seq', u32, 0], ['hi', u32, 32], ['comm', bb.array(char, 16), 64], ['fill', bb.array(u64, 5), 192],
  ]);
  const btf = bb.build();
  recordCodec = codecFor(btf, recordType) as Codec<{ seq: bigint }>;
  recordView = recordViewFor<{ seq: bigint }>(btf, recordType);
  recordViewNum = recordViewFor<{ seq: number }>(btf, recordType, { int64: 'number' });
  commView = recordViewFor<{ seq: number; comm: string }>(btf, execType);
  const typedRounds = await bpfkitDrain(drainRecordsFn);
  const codecRounds = await bpfkitDrain(drainRecordsCodec);
  const viewRounds = await bpfkitDrain(drainRecordView);
  const viewNumRounds = await bpfkitDrain(drainRecordViewNum);
  const commRounds = await bpfkitDrain(drainCommView);
  const mid = (xs: number[]): number | undefined => (xs.length ? median(xs) / 1e6 : undefined);
  const libbpf = mid(libbpfRounds)!;
  const cilium = mid(ciliumRounds);
  const baselines = [libbpf, cilium];
  const batches = mid(batchesRounds)!;
  const batch = mid(batchRounds)!;
  const whole = median(await bpfkitDrain(drainBatch)) / 1e6;
  const copy = median(await bpfkitDrain(drainIterator)) / 1e6;
  const sync = median(await bpfkitDrain(drainReadSync)) / 1e6;
  reportMany(`Drain a pre-filled ring, ${RECORDS} records per round (median of ${ROUNDS} rounds; M records/s, higher is better)`, ['libbpf', 'cilium/ebpf'], [
    { what: 'for await (const batch of reader.batches()) (default)', bpfkit: batches, baselines, unit: 'M rec/s' },
    { what: 'batches() + records(recordViewFor(struct record)): rec.seq bigint', bpfkit: mid(viewRounds)!, baselines, unit: 'M rec/s' },
    { what: "  the same with { int64: 'number' }", bpfkit: mid(viewNumRounds)!, baselines, unit: 'M rec/s' },
    { what: 'batches() + records(recordViewFor(exec_record)): rec.seq, rec.comm', bpfkit: mid(commRounds)!, baselines, unit: 'M rec/s' },
    { what: 'batches() + batch.records((v, at) => v.getUint32(at, true))', bpfkit: mid(typedRounds)!, baselines, unit: 'M rec/s' },
    { what: 'batches() + batch.records(codecFor(struct record))', bpfkit: mid(codecRounds)!, baselines, unit: 'M rec/s' },
    { what: `consumeBatch({ maxRecords: ${BATCH} })`, bpfkit: batch, baselines, unit: 'M rec/s' },
    { what: 'consumeBatch(), all in one batch', bpfkit: whole, baselines, unit: 'M rec/s' },
    { what: 'for await (const rec of reader) (per record, copies)', bpfkit: copy, baselines, unit: 'M rec/s' },
    { what: 'readSync() loop (per record, copies)', bpfkit: sync, baselines, unit: 'M rec/s' },
  ]);
  const typed = mid(viewNumRounds)!;
  const text = mid(commRounds)!;
  console.log(`targets (issue 14): batches() at least 1/3 of libbpf (0.33x): ${(batches / libbpf).toFixed(2)}x` +
    (cilium !== undefined ? ` and 2x cilium/ebpf: ${(batches / cilium).toFixed(2)}x` : '') +
    `; typed records (record view, int64 as numbers) ${(typed / libbpf).toFixed(2)}x libbpf` +
    (cilium !== undefined ? `, ${(typed / cilium).toFixed(2)}x cilium/ebpf` : '') +
    `; with comm as a string ${(text / libbpf).toFixed(2)}x libbpf` +
    (cilium !== undefined ? `, ${(text / cilium).toFixed(2)}x cilium/ebpf` : '') +
    `; consumeBatch matches libbpf (1.00x): ${(batch / libbpf).toFixed(2)}x`);

  const best = (xs: number[]): number => Math.max(...xs) / 1e6;
  console.log(`best round (M rec/s): libbpf ${best(libbpfRounds).toFixed(1)}` +
    (ciliumRounds.length ? `, cilium/ebpf ${best(ciliumRounds).toFixed(1)}` : '') +
    `, batches() ${best(batchesRounds).toFixed(1)} (${(best(batchesRounds) / best(libbpfRounds)).toFixed(2)}x libbpf` +
    (ciliumRounds.length ? `, ${(best(batchesRounds) / best(ciliumRounds)).toFixed(2)}x cilium/ebpf` : '') +
    `), records(fn) ${best(typedRounds).toFixed(1)} (${(best(typedRounds) / best(libbpfRounds)).toFixed(2)}x libbpf` +
    (ciliumRounds.length ? `, ${(best(typedRounds) / best(ciliumRounds)).toFixed(2)}x cilium/ebpf` : '') +
    `), records(codec) ${best(codecRounds).toFixed(1)}` +
    `, consumeBatch ${best(batchRounds).toFixed(1)} (${(best(batchRounds) / best(libbpfRounds)).toFixed(2)}x libbpf)`);

  if (LIVE_RUNS > 0) {
    const live = await liveRows();
    reportMany(`Live: producer process on another CPU for ${LIVE_MS} ms, consumer waiting on the ring's fd (median of ${LIVE_RUNS} runs; M records/s received, higher is better)`, ['libbpf', 'cilium/ebpf'], live.rows);
    for (const n of live.notes) console.log(n);
  }
  console.log('\nDrain: the ring is filled, then drained and timed; no concurrent writer and no wakeups, so it is the consumer\'s best case.');
  console.log('Live: a saturating producer on another CPU; received records/s is the consumer\'s throughput with concurrent writes and wakeups, and varies more between runs.');
} finally {
  rmSync(dirname(object), { recursive: true, force: true });
  rmSync(dirname(consumer), { recursive: true, force: true });
  if (goConsumer) rmSync(dirname(goConsumer), { recursive: true, force: true });
}
