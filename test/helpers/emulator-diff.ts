/**
 * The emulator-vs-kernel harness: run one scenario with the real syscall interface, then again
 * with bpfkit/testing's emulated kernel installed, and compare what each returned. Shared by
 * emulator-diff.test.ts (the project's own programs) and emulator-public.test.ts (public ones).
 */
import assert from 'node:assert/strict';
import { release } from 'node:os';
import { useEmulatedKernel } from '../../src/testing/index.js';
import { native } from '../../src/sys/native.js';
import { PERF_COUNT_SW_BPF_OUTPUT, PERF_MMAP_DATA_HEAD, PERF_MMAP_DATA_TAIL, PERF_SAMPLE_RAW, PERF_TYPE_SOFTWARE, perfEventAttr } from '../../src/sys/perf-event.js';

/** Where the emulated kernel's test runs execute: set `cpu` to the CPU the kernel's run was pinned to. */
export interface BothOptions { cpu?: number }

export async function both<T>(scenario: () => T | Promise<T>, options: BothOptions = {}): Promise<{ kernel: T; emulator: T }> {
  const kernel = await scenario();
  // The emulator imitates the release this machine runs (program tags, errnos, limits differ).
  const emu = useEmulatedKernel({ kernel: release() });
  if (options.cpu !== undefined) emu.cpu = options.cpu;
  try {
    return { kernel, emulator: await scenario() };
  } finally {
    emu.restore();
  }
}

/** JSON with bigints and byte arrays spelled out, for difference reports. */
export function show(v: unknown): string {
  return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x));
}

/**
 * Where two results differ, element by element when both are arrays of the same length: an
 * assertion's own diff elides most of a long list, and a guest's log is all a matrix run leaves.
 */
export function differences(emulator: unknown, kernel: unknown): string {
  if (!Array.isArray(emulator) || !Array.isArray(kernel) || emulator.length !== kernel.length) return `kernel   ${show(kernel)}\nemulator ${show(emulator)}`;
  const out: string[] = [];
  for (let i = 0; i < kernel.length; i++) {
    if (show(emulator[i]) !== show(kernel[i])) out.push(`[${i}] kernel   ${show(kernel[i])}\n[${i}] emulator ${show(emulator[i])}`);
  }
  return `${out.length} of ${kernel.length} differ (kernel ${release()}):\n${out.slice(0, 60).join('\n')}`;
}

export async function agree<T>(scenario: () => T | Promise<T>, what?: string, options?: BothOptions): Promise<T> {
  const r = await both(scenario, options);
  try {
    assert.deepEqual(r.emulator, r.kernel);
  } catch {
    assert.fail(`${what ? `${what}: ` : ''}${differences(r.emulator, r.kernel)}`);
  }
  return r.kernel;
}

/** perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT, sample_type RAW, wakeup_events 1) on `cpu`. */
export function bpfOutputEvent(cpu: number): number {
  const attr = perfEventAttr({ type: PERF_TYPE_SOFTWARE, config: PERF_COUNT_SW_BPF_OUTPUT, sampleType: PERF_SAMPLE_RAW, wakeupEvents: 1 });
  return native().perfEventOpen(attr.bytes, null, -1, cpu, -1, 0);
}

/** One BPF output event per CPU with a one-page ring each, to read what programs sent. */
export class PerfRings {
  readonly #events: { fd: number; ring: ArrayBuffer }[];

  constructor(cpus: number, pages = 2) {
    const n = native();
    this.#events = Array.from({ length: cpus }, (_, cpu) => {
      const fd = bpfOutputEvent(cpu);
      const ring = n.mmap(fd, 4096 * pages, 3, 1, 0);
      if (!(ring instanceof ArrayBuffer)) throw new Error(`mmap perf ring: ${ring}`);
      return { fd, ring };
    });
  }

  /** The event fd of each CPU, for a perf_event_array. */
  get fds(): number[] {
    return this.#events.map((e) => e.fd);
  }

  /** Records since the last read, all CPUs in CPU order: samples in hex, losses as `lost N`. */
  read(): string[] {
    return this.#events.flatMap(({ ring }) => {
      const meta = new DataView(ring, 0, 4096);
      const size = ring.byteLength - 4096;
      const data = new Uint8Array(ring, 4096);
      const head = Number(meta.getBigUint64(PERF_MMAP_DATA_HEAD, true));
      let tail = Number(meta.getBigUint64(PERF_MMAP_DATA_TAIL, true));
      const recs: string[] = [];
      while (tail < head) {
        const at = tail % size;
        const hdr = new DataView(ring, 4096 + at, 8);
        const len = hdr.getUint16(6, true);
        const rec = new Uint8Array(len);
        for (let k = 0; k < len; k++) rec[k] = data[(at + k) % size]!;
        const type = hdr.getUint32(0, true);
        // A LOST record carries the event id (different per backend) and the count.
        recs.push(type === 2 ? `lost ${new DataView(rec.buffer).getBigUint64(16, true)}` : Buffer.from(rec).toString('hex'));
        tail += len;
      }
      meta.setBigUint64(PERF_MMAP_DATA_TAIL, BigInt(tail), true);
      return recs;
    });
  }

  close(): void {
    const n = native();
    for (const { fd, ring } of this.#events) {
      n.munmap(ring);
      n.close(fd);
    }
  }
}
