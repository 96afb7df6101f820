/**
 * The emulator's interpreter (bpfkit/testing) next to the kernel, in one run: the seeds' packet
 * counter (test/bpf/build/packet_count.bpf.o, xdp_prog_func) run on the same frames with
 * BPF_PROG_TEST_RUN and `repeat`, in the running kernel (JIT-compiled when
 * /proc/sys/net/core/bpf_jit_enable is 1) and in the emulated kernel, whose interpreter executes
 * the object's own bytecode.
 *
 * Reported per frame: runs per second and instructions per second. Instructions per run come from
 * the emulator's counter (EmulatedKernel.instructionsExecuted over the runs); the kernel runs the
 * same bytecode on the same frame, so its instructions per second are its runs per second times
 * that count.
 *
 * The time per run is the difference between a call with 2n runs and one with n runs, divided by
 * n, on both sides: what a call costs whatever its repeat count cancels out (the syscall, setting
 * up the frame, and in the kernel the switch it makes around an XDP test run with repeat > 1, a
 * static key flip that takes milliseconds, and varies by milliseconds, on virtual machines). The
 * mean the kernel reports itself is whole nanoseconds, too coarse for runs of a few nanoseconds.
 * n is BENCH_INTERP_RUNS in the emulator; the kernel, a hundred times faster, gets as many runs as
 * take about 250 ms (at least BENCH_INTERP_RUNS), so that the runs outweigh that jitter. The best
 * of ROUNDS rounds counts, after a warm-up call, which also inserts the frame's source address, so
 * that every measured run takes the same path.
 *
 * The kernel side needs root (without it only the emulator's figures are printed).
 * Environment: BENCH_INTERP_RUNS (runs per round, default 500000), BENCH_INTERP_ROUNDS (default 3).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Collection, CollectionSpec, type Program } from '../src/index.js';
import { useEmulatedKernel } from '../src/testing/index.js';
import { report, ROOT, type Row } from './common.js';

const RUNS = Number(process.env['BENCH_INTERP_RUNS'] ?? 500_000);
const ROUNDS = Number(process.env['BENCH_INTERP_ROUNDS'] ?? 3);
const OBJECT = join(ROOT, 'test', 'bpf', 'build', 'packet_count.bpf.o');
const XDP_PASS = 2;

/** An Ethernet frame of 60 bytes with the given ethertype; IPv4 from 192.168.1.10 to 10.0.0.1. */
function frame(ethertype: number): Uint8Array {
  const b = new Uint8Array(60);
  b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, ethertype >> 8, ethertype & 0xff]);
  b.set([0x45, 0, 0, 46, 0, 0, 0, 0, 0x40, 0x11, 0, 0, 192, 168, 1, 10, 10, 0, 0, 1], 14);
  return b;
}

const FRAMES = [
  { what: 'IPv4 (counted: lookup, atomic add)', data: frame(0x0800) },
  { what: 'IPv6 (passed after the ethertype check)', data: frame(0x86dd) },
];

interface Measured {
  /** Runs per second (best round). */
  runsPerSec: number;
  /** n: runs in the shorter call of a round. */
  runs: number;
}

function wallNs(prog: Program, data: Uint8Array, repeat: number): number {
  const t0 = process.hrtime.bigint();
  const r = prog.testRun({ data, repeat });
  const t = Number(process.hrtime.bigint() - t0);
  if (r.retval !== XDP_PASS) throw new Error(`xdp_prog_func returned ${r.retval}, expected XDP_PASS`);
  return t;
}

/**
 * Runs `prog` on `data`: a warm-up call, then ROUNDS rounds of a call of n and one of 2n runs, n
 * being RUNS or, with `calibrate`, enough runs for about 250 ms by the time the warm-up reports.
 */
function measure(prog: Program, data: Uint8Array, calibrate = false): Measured {
  const warm = prog.testRun({ data, repeat: Math.max(1, Math.floor(RUNS / 10)) });
  if (warm.retval !== XDP_PASS) throw new Error(`xdp_prog_func returned ${warm.retval}, expected XDP_PASS`);
  const n = calibrate ? Math.max(RUNS, Math.ceil(250e6 / Math.max(1, warm.duration) / 1e6) * 1e6) : RUNS;
  let perRun = Infinity;
  for (let i = 0; i < ROUNDS; i++) {
    const once = wallNs(prog, data, n);
    const twice = wallNs(prog, data, 2 * n);
    const ns = (twice - once) / n;
    if (ns > 0) perRun = Math.min(perRun, ns);
  }
  if (!Number.isFinite(perRun)) throw new Error('no round measured a positive time: raise BENCH_INTERP_RUNS');
  return { runsPerSec: 1e9 / perRun, runs: n };
}

async function withCounter<T>(fn: (prog: Program) => T): Promise<T> {
  const coll = await Collection.load(await CollectionSpec.fromFile(OBJECT));
  try {
    return fn(coll.programs.get('xdp_prog_func')!);
  } finally {
    coll.close();
  }
}

// The kernel first (the real syscall layer), then the emulator.
let kernelFigures: Measured[] | undefined;
let kernelNote = '';
if (process.getuid?.() === 0) {
  try {
    kernelFigures = await withCounter((prog) => FRAMES.map((f) => measure(prog, f.data, true)));
  } catch (e) {
    kernelNote = `kernel side skipped: ${(e as Error).message}`;
  }
} else {
  kernelNote = 'kernel side skipped: BPF_PROG_TEST_RUN needs root';
}

const emulator = useEmulatedKernel();
const emulated: (Measured & { insnsPerRun: number })[] = [];
try {
  await withCounter((prog) => {
    for (const f of FRAMES) {
      prog.testRun({ data: f.data }); // the first packet of a source inserts it: not the measured path
      const before = emulator.instructionsExecuted;
      prog.testRun({ data: f.data, repeat: 1000 });
      const insnsPerRun = (emulator.instructionsExecuted - before) / 1000;
      emulated.push({ ...measure(prog, f.data), insnsPerRun });
    }
  });
} finally {
  emulator.restore();
}

let jit = 'unknown';
try {
  jit = readFileSync('/proc/sys/net/core/bpf_jit_enable', 'utf8').trim() === '0' ? 'off (kernel interpreter)' : 'on';
} catch {
  // not readable
}

const M = 1e6;
const title = `BPF interpreter: packet_count's xdp_prog_func through BPF_PROG_TEST_RUN, best of ${ROUNDS} ` +
  `(bpfkit = the emulator's interpreter, kernel = the running kernel, JIT ${jit}; higher is better)`;
if (kernelFigures) {
  const rows: Row[] = [];
  FRAMES.forEach((f, i) => {
    const e = emulated[i]!;
    const k = kernelFigures![i]!;
    rows.push({ what: `${f.what}: runs`, bpfkit: e.runsPerSec / M, baseline: k.runsPerSec / M, unit: 'M runs/s', higherIsBetter: true });
    rows.push({
      what: `  instructions (${e.insnsPerRun} per run)`, bpfkit: (e.runsPerSec * e.insnsPerRun) / M, baseline: (k.runsPerSec * e.insnsPerRun) / M,
      unit: 'M insns/s', higherIsBetter: true,
    });
  });
  report(title, 'kernel', rows);
  console.log(`\nn, the runs of the shorter call of each round (the other makes 2n): emulator ${RUNS}, kernel ${kernelFigures.map((k) => k.runs).join(' / ')} (per frame)`);
} else {
  console.log(`\n${title}\n${kernelNote}`);
  FRAMES.forEach((f, i) => {
    const e = emulated[i]!;
    console.log(`  ${f.what}: ${(e.runsPerSec / M).toFixed(2)} M runs/s, ${((e.runsPerSec * e.insnsPerRun) / M).toFixed(1)} M insns/s (${e.insnsPerRun} per run)`);
  });
}
