/**
 * Shared test helpers: where the built test objects live, Ethernet/IP packet builders for
 * BPF_PROG_TEST_RUN, bpffs for pin tests, and the process's open fd count for leak checks.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/..., sources sit in test/...). */
export const ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();

/** Path of a compiled test object, e.g. obj('maps') -> test/bpf/build/maps.bpf.o */
export function obj(name: string): string {
  return join(ROOT, 'test', 'bpf', 'build', `${name}.bpf.o`);
}

export function objBytes(name: string): Uint8Array {
  return readFileSync(obj(name));
}

export const isRoot = process.getuid?.() === 0;
/** On CI the kernel tests must run: a missing privilege is a failure there, not a skip. */
export const onCI = process.env['CI'] === 'true' || process.env['CI'] === '1';

/** Options for node:test's `test(name, kernelTest, fn)`: skip without root, except on CI. */
export const kernelTest = { skip: !isRoot && !onCI ? 'needs root (runs on CI)' : false } as const;

function mountedAt(path: string, fstype: string): boolean {
  try {
    return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => {
      const f = l.split(' ');
      return f[1] === path && f[2] === fstype;
    });
  } catch {
    return false;
  }
}

/**
 * Tests (and the library under test, which mounts what it needs as root) may mount bpffs and
 * tracefs on a machine that had neither. What a test process found unmounted it unmounts again
 * when it exits, so the suite leaves the machine's mounts as it found them: bpffs only when
 * nothing but the kernel's own preload files (maps.debug, progs.debug) is left in it. A test
 * process ended by SIGINT, SIGTERM or SIGHUP (a run stopped by hand) does the same before it dies
 * of the signal: the 'exit' event does not come then.
 */
const unmountedAtStart = [
  { path: '/sys/fs/bpf', fstype: 'bpf' },
  { path: '/sys/kernel/tracing', fstype: 'tracefs' },
].filter((m) => isRoot && !mountedAt(m.path, m.fstype));

function restoreMounts(): void {
  for (const m of unmountedAtStart) {
    if (!mountedAt(m.path, m.fstype)) continue;
    if (m.fstype === 'bpf' && readdirSync(m.path).some((n) => n !== 'maps.debug' && n !== 'progs.debug')) continue;
    try {
      execFileSync('umount', [m.path], { stdio: 'ignore' });
    } catch {
      // Busy (a child still holds it): leave it rather than fail the run.
    }
  }
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function onStopSignal(signal: NodeJS.Signals): void {
  restoreMounts();
  for (const s of STOP_SIGNALS) process.removeListener(s, onStopSignal);
  // Raised again: the library's own handler (links to detach) takes it if it is there, else the
  // default action ends the process with this signal, as it would have without this handler.
  process.kill(process.pid, signal);
}

if (unmountedAtStart.length > 0) {
  process.on('exit', restoreMounts);
  for (const s of STOP_SIGNALS) process.on(s, onStopSignal);
}

/** Mounts bpffs at /sys/fs/bpf if it is not mounted; returns a fresh directory for this test's pins. */
export function bpffsDir(name: string): string {
  const mounts = readFileSync('/proc/mounts', 'utf8');
  if (!/ \/sys\/fs\/bpf bpf /.test(mounts)) {
    mkdirSync('/sys/fs/bpf', { recursive: true });
    execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  }
  const dir = join('/sys/fs/bpf', `bpfkit-test-${name}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Number of open file descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** An Ethernet frame carrying IPv4 + TCP/UDP, for XDP/tc test runs. Addresses as dotted strings. */
export function ipv4Packet(opts: { src: string; dst: string; proto?: 'tcp' | 'udp'; sport?: number; dport?: number; payload?: Uint8Array }): Uint8Array {
  const proto = opts.proto ?? 'tcp';
  const l4len = proto === 'tcp' ? 20 : 8;
  const payload = opts.payload ?? new Uint8Array(0);
  const total = 14 + 20 + l4len + payload.length;
  const b = new Uint8Array(Math.max(total, 60));
  const v = new DataView(b.buffer);
  b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0); // dst mac, src mac
  v.setUint16(12, 0x0800); // ETH_P_IP
  b[14] = 0x45;
  v.setUint16(16, 20 + l4len + payload.length);
  b[22] = 64; // ttl
  b[23] = proto === 'tcp' ? 6 : 17;
  b.set(opts.src.split('.').map(Number), 26);
  b.set(opts.dst.split('.').map(Number), 30);
  v.setUint16(34, opts.sport ?? 12345);
  v.setUint16(36, opts.dport ?? 80);
  if (proto === 'tcp') b[46] = 0x50; // data offset 5
  else v.setUint16(38, 8 + payload.length);
  b.set(payload, 14 + 20 + l4len);
  return b;
}

/**
 * How much longer than on our machines things may take here: BPFKIT_TEST_PATIENCE (default 1).
 * The kernel matrix sets it in its QEMU guests, where software emulation runs everything 6-30x
 * slower. Deadlines that wait for something to happen (a child to print, a server to start)
 * scale by it; they are guards against hangs, never measurements.
 */
export const PATIENCE = (() => {
  const v = Number(process.env['BPFKIT_TEST_PATIENCE'] ?? '1');
  return Number.isFinite(v) && v >= 1 ? v : 1;
})();

/** A deadline of `ms` on our machines, scaled by PATIENCE. */
export function patient(ms: number): number {
  return Math.round(ms * PATIENCE);
}

/** xorshift32: a deterministic sequence of 32-bit values, so seeded test inputs reproduce. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}
