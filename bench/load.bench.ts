/**
 * Object loading, bpfkit next to libbpf, in one run (the figures of issue 14's load row).
 *
 * Objects: the tools' (execsnoop, readline, pktcount) and bench/bpf/load_core.bpf.c, a large CO-RE
 * object shaped like the bcc libbpf-tools (18 programs, ~300 field relocations against vmlinux.h).
 *
 * Each is loaded, in turn and RUNS times (medians printed):
 *   bpfkit    `node dist/bench/load-child.js OBJ`: a fresh process importing bpfkit, then
 *             CollectionSpec.fromFile + Collection.load (cold), close, and the same again (warm)
 *   bpftool   `bpftool prog loadall OBJ <bpffs dir>` (its pins removed after each run)
 *   libbpf    bench/c/load-object.c: bpf_object__open_file + bpf_object__load, timed inside the
 *             process, first (cold) and second (warm)
 * Whole-process times are wall clock from spawn to exit. Both sides verify the same programs in the
 * kernel. The machine may be busy: only the ratios of one run mean anything.
 *
 * The CPU row compares process CPU time (user + system, the kernel's verification included), which
 * a busy machine inflates far less than wall time.
 *
 *   npm run bench:load            RUNS=5 npm run bench:load            ONLY=execsnoop npm run bench:load
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bpffs, buildC, report, ROOT, type Row } from './common.js';

const RUNS = Number(process.env['RUNS'] ?? 3);

/** bench/bpf/load_core.bpf.c, compiled against the vmlinux.h that `npm run build:bpf` wrote. */
function buildLoadCore(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'bpfkit-bench-')), 'load_core.bpf.o');
  const triple = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const arch = process.arch === 'arm64' ? 'arm64' : 'x86';
  execFileSync(process.env['CLANG'] ?? 'clang', [
    '-O2', '-g', '-target', 'bpf', `-D__TARGET_ARCH_${arch}`, `-I/usr/include/${triple}`,
    `-I${join(ROOT, 'test', 'bpf', 'build')}`, '-Wall', '-Werror',
    '-c', join(ROOT, 'bench', 'bpf', 'load_core.bpf.c'), '-o', out,
  ], { stdio: 'inherit' });
  process.once('exit', () => rmSync(join(out, '..'), { recursive: true, force: true }));
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs a command to completion; its wall time in ms and its stdout. Throws when it fails. */
function timed(cmd: string, args: string[]): { ms: number; out: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms, out: r.stdout };
}

interface Child { importMs: number; specMs: number; loadMs: number; specCpuMs: number; loadCpuMs: number; warmSpecMs: number; warmLoadMs: number }

const loader = buildC('load-object');
const child = join(ROOT, 'dist', 'bench', 'load-child.js');
const pins = join(bpffs(), `bpfkit-load-bench-${process.pid}`);
const tools = join(ROOT, 'dist', 'src', 'tools');
const objects: [string, string][] = [
  ['execsnoop', join(tools, 'execsnoop', 'gen', 'execsnoop.bpf.o')],
  ['readline', join(tools, 'readline', 'gen', 'readline.bpf.o')],
  ['pktcount', join(tools, 'pktcount', 'gen', 'pktcount.bpf.o')],
  ['load_core (CO-RE, 18 progs)', buildLoadCore()],
];

process.on('exit', () => rmSync(pins, { recursive: true, force: true }));

const only = process.env['ONLY'];
for (const [name, path] of objects.filter(([n]) => !only || n.startsWith(only))) {
  const ours: { whole: number; c: Child }[] = [];
  const bpftool: number[] = [];
  const libbpf: { whole: number; cold: number; warm: number; cpu: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const n = timed(process.execPath, [child, path]);
    ours.push({ whole: n.ms, c: JSON.parse(n.out) as Child });
    try {
      bpftool.push(timed('bpftool', ['prog', 'loadall', path, pins]).ms);
    } finally {
      rmSync(pins, { recursive: true, force: true });
    }
    const l = timed(loader, [path]);
    const m = /cold (\d+) warm (\d+) cpu (\d+)/.exec(l.out);
    if (!m) throw new Error(`load-object printed ${l.out}`);
    libbpf.push({ whole: l.ms, cold: Number(m[1]) / 1e6, warm: Number(m[2]) / 1e6, cpu: Number(m[3]) / 1e6 });
  }
  const med = (f: (c: Child) => number) => median(ours.map((o) => f(o.c)));
  const lcold = median(libbpf.map((l) => l.cold));
  const lwarm = median(libbpf.map((l) => l.warm));
  const rows: Row[] = [
    { what: 'whole process vs bpftool prog loadall', bpfkit: median(ours.map((o) => o.whole)), baseline: median(bpftool), unit: 'ms', higherIsBetter: false },
    { what: 'whole process vs C loader (libbpf)', bpfkit: median(ours.map((o) => o.whole)), baseline: median(libbpf.map((l) => l.whole)), unit: 'ms', higherIsBetter: false },
    { what: 'cold: spec + Collection.load vs open + load', bpfkit: med((c) => c.specMs + c.loadMs), baseline: lcold, unit: 'ms', higherIsBetter: false },
    { what: 'cold: Collection.load alone vs open + load', bpfkit: med((c) => c.loadMs), baseline: lcold, unit: 'ms', higherIsBetter: false },
    { what: 'cold CPU: spec + Collection.load vs open + load', bpfkit: med((c) => c.specCpuMs + c.loadCpuMs), baseline: median(libbpf.map((l) => l.cpu)), unit: 'ms', higherIsBetter: false },
    { what: 'warm: spec + Collection.load vs open + load', bpfkit: med((c) => c.warmSpecMs + c.warmLoadMs), baseline: lwarm, unit: 'ms', higherIsBetter: false },
  ];
  report(`Load ${name}: median of ${RUNS} (lower is better; speed > 1x means bpfkit is faster)`, 'libbpf', rows);
  console.log(`  bpfkit import ${med((c) => c.importMs).toFixed(1)} ms, cold Collection.load alone CPU ${med((c) => c.loadCpuMs).toFixed(1)} ms, warm Collection.load alone ${med((c) => c.warmLoadMs).toFixed(1)} ms`);
}
