/**
 * Shared pieces of the benchmarks: building the C baselines, timing a function, and printing
 * figures side by side with their ratio. Benchmarks report; they never assert a time.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

export const ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();

/** Compiles a C baseline under bench/c with libbpf; returns the binary's path. */
export function buildC(name: string, libs: string[] = ['-lbpf']): string {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-bench-'));
  const out = join(dir, name);
  execFileSync('cc', ['-O2', '-Wall', '-o', out, join(ROOT, 'bench', 'c', `${name}.c`), ...libs], { stdio: 'inherit' });
  // The binary stays usable until the process exits; the directory goes with it.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return out;
}

/**
 * Builds the cilium/ebpf (Go) baseline bench/go/<name> in GOPATH mode against Debian's
 * golang-github-cilium-ebpf-dev (no network); returns the binary's path, or undefined (with a
 * note printed) when Go or the package is missing: scripts/setup.sh installs both.
 */
export function buildGo(name: string): string | undefined {
  const gopath = '/usr/share/gocode';
  if (!existsSync(join(gopath, 'src/github.com/cilium/ebpf')) || !commandExists('go')) {
    console.log(`(no cilium/ebpf baseline: needs go and golang-github-cilium-ebpf-dev, which scripts/setup.sh installs)`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-bench-'));
  const out = join(dir, name);
  execFileSync('go', ['build', '-o', out, '.'], {
    cwd: join(ROOT, 'bench', 'go', name),
    // Go's build cache lives under $HOME; without one, a cache for this build alone.
    env: { ...process.env, GOPATH: gopath, GO111MODULE: 'off', GOFLAGS: '', ...(process.env['HOME'] || process.env['GOCACHE'] ? {} : { GOCACHE: join(dir, 'cache') }) },
    stdio: 'inherit',
  });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return out;
}

function commandExists(cmd: string): boolean {
  try {
    execFileSync(cmd, ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Compiles bench/bpf/<name>.bpf.c with the flags scripts/build-bpf.sh uses; returns the object's path. */
export function buildBpf(name: string): string {
  const triple = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const out = join(mkdtempSync(join(tmpdir(), 'bpfkit-bench-')), `${name}.bpf.o`);
  execFileSync(process.env['CLANG'] ?? 'clang', [
    '-O2', '-g', '-target', 'bpf', `-I/usr/include/${triple}`, '-Wall', '-Werror',
    '-c', join(ROOT, 'bench', 'bpf', `${name}.bpf.c`), '-o', out,
  ], { stdio: 'inherit' });
  return out;
}

/** bpffs, mounted if needed: where live runs pin their producer programs. */
export function bpffs(): string {
  if (!/ \/sys\/fs\/bpf bpf /.test(readFileSync('/proc/mounts', 'utf8'))) {
    mkdirSync('/sys/fs/bpf', { recursive: true });
    execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  }
  return '/sys/fs/bpf';
}

/** Mean nanoseconds per call of fn over n calls (after `warmup` calls). */
export function timeNs(n: number, fn: () => void, warmup = Math.min(3, n)): number {
  for (let i = 0; i < warmup; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

export interface Row {
  what: string;
  bpfkit: number;
  baseline: number;
  unit: string;
  /** True when bigger is better (rates); false for times. */
  higherIsBetter: boolean;
}

/** Prints rows as a table: bpfkit, the baseline, and bpfkit's speed relative to the baseline. */
export function report(title: string, baselineName: string, rows: Row[]): void {
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  console.log(`\n${title}`);
  console.log(`${'what'.padEnd(44)} ${'bpfkit'.padStart(12)} ${baselineName.padStart(12)}  unit        bpfkit speed vs ${baselineName}`);
  for (const r of rows) {
    const speed = r.higherIsBetter ? r.bpfkit / r.baseline : r.baseline / r.bpfkit;
    console.log(`${r.what.padEnd(44)} ${fmt(r.bpfkit).padStart(12)} ${fmt(r.baseline).padStart(12)}  ${r.unit.padEnd(10)}  ${speed.toFixed(2)}x`);
  }
}

export interface MultiRow {
  what: string;
  bpfkit: number;
  /** One figure per baseline of the table (undefined: that baseline has no such consumer). */
  baselines: (number | undefined)[];
  unit: string;
}

/** Prints rows of higher-is-better rates next to several baselines, with bpfkit's ratio to each. */
export function reportMany(title: string, baselineNames: string[], rows: MultiRow[]): void {
  const fmt = (v: number | undefined) => (v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  console.log(`\n${title}`);
  const names = baselineNames.map((n) => n.padStart(12)).join(' ');
  const ratios = baselineNames.map((n) => `vs ${n}`.padStart(14)).join(' ');
  console.log(`${'what'.padEnd(50)} ${'bpfkit'.padStart(10)} ${names}  unit    ${ratios}`);
  for (const r of rows) {
    const base = r.baselines.map((b) => fmt(b).padStart(12)).join(' ');
    const rel = r.baselines.map((b) => (b === undefined ? '-' : `${(r.bpfkit / b).toFixed(2)}x`).padStart(14)).join(' ');
    console.log(`${r.what.padEnd(50)} ${fmt(r.bpfkit).padStart(10)} ${base}  ${r.unit.padEnd(7)} ${rel}`);
  }
}
