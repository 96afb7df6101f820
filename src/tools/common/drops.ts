/**
 * Events a tool's BPF programs could not deliver, as the tool reports them: as they happen (a
 * stderr line, or a JSON record with a `lost` field in --json mode) and once more in total when
 * the tool stops (stderr), with the knob that helps. The counts come from the kernel side's
 * per-CPU counters (readDrops, or a struct of counters), read every second and at the end.
 */
import { UsageError } from './runtime.js';
import type { ToolIO } from './runtime.js';

/** Why events were lost, as `reason` in JSON records. */
export interface DropReason {
  /** Stable name in JSON: `ringbuf_full`, `inflight_full`, ... */
  readonly name: string;
  /** What the stderr lines say after "N <events> lost: ". */
  readonly why: string;
  /** What to do about it, for the summary ("try --ringbuf-size 4M or more"). */
  readonly hint?: string;
}

/**
 * Reports new drops each time `check` reads the counters (`read` returns the running totals by
 * reason name), and the totals with `summary` once the tool stops.
 */
export class DropReporter {
  readonly #tool: string;
  readonly #unit: string;
  readonly #reasons: readonly DropReason[];
  readonly #read: () => Readonly<Record<string, bigint>>;
  readonly #io: ToolIO;
  readonly #json: boolean;
  #reported: Record<string, bigint> = {};

  constructor(tool: string, unit: string, reasons: readonly DropReason[], read: () => Readonly<Record<string, bigint>>, io: ToolIO, json: boolean) {
    this.#tool = tool;
    this.#unit = unit;
    this.#reasons = reasons;
    this.#read = read;
    this.#io = io;
    this.#json = json;
  }

  /** Reads the counters and reports what is new since the last check. */
  check(now = new Date()): void {
    const totals = this.#read();
    for (const r of this.#reasons) {
      const total = totals[r.name] ?? 0n;
      const before = this.#reported[r.name] ?? 0n;
      if (total <= before) continue;
      const n = total - before;
      this.#reported[r.name] = total;
      if (this.#json) this.#io.out(`${JSON.stringify({ time: now.toISOString(), lost: Number(n), reason: r.name })}\n`);
      else this.#io.err(`${this.#tool}: ${n} ${this.#unit} lost: ${r.why}\n`);
    }
  }

  /** The totals reported so far, by reason name. */
  get totals(): Readonly<Record<string, bigint>> {
    return { ...this.#reported };
  }

  /** One stderr line per reason with losses, at exit (both modes): the total and what helps. */
  summary(): void {
    for (const r of this.#reasons) {
      const n = this.#reported[r.name] ?? 0n;
      if (n > 0n) this.#io.err(`${this.#tool}: ${n} ${this.#unit} lost in total: ${r.why}${r.hint ? `; ${r.hint}` : ''}\n`);
    }
  }
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 };

/** The largest --ringbuf-size taken (the kernel allows more; this much is already a lot of memory). */
export const RINGBUF_SIZE_MAX = 1 << 30;

/**
 * A --ringbuf-size value: bytes, or with a K, M or G suffix (powers of 1024); a power of two from
 * 4096 to 1G, as the kernel requires (a power of two, a whole number of pages).
 */
export function parseRingbufSize(text: string, flag = '--ringbuf-size'): number {
  const m = /^\s*(\d+)\s*([kmg]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a size (bytes, or with K, M or G: 256K, 4M)`);
  const n = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(n) || n < 4096 || n > RINGBUF_SIZE_MAX || (n & (n - 1)) !== 0) {
    throw new UsageError(`${flag}: ${text} is not a power of two from 4K to 1G (the kernel needs a power of two and whole pages): try 1M, 4M, 16M`);
  }
  return n;
}

/** 1048576 -> "1M": the unit --ringbuf-size takes. */
export function formatSize(n: number): string {
  if (n >= 1 << 30 && n % (1 << 30) === 0) return `${n / (1 << 30)}G`;
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)}M`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)}K`;
  return String(n);
}
