/**
 * readline's events: a ring buffer record (struct readline_event with line[] cut after its NUL)
 * turned into a LineRecord, and that into a table row or a JSON line. Pure, so it is unit-tested.
 */
import { clockTime, cStringOf, terminalSafe } from '../execsnoop/runtime.js';
import { decodeReadlineEvent, type ReadlineEvent } from './gen/readline.js';

export const READLINE_EVENT_SIZE = 1064;
export const LINE_OFFSET = 40;
export const LINE_SIZE = 1024;
export const READLINE_F_TRUNCATED = 1;
export const TRUNCATION_MARKER = '...';

export interface LineRecord {
  /** When readline returned the line (wall clock). */
  readonly time: Date;
  readonly pid: number;
  readonly uid: number;
  readonly comm: string;
  /** The line, with "..." appended when it was cut. */
  readonly line: string;
  readonly truncated: boolean;
}

const full = new Uint8Array(READLINE_EVENT_SIZE);

/** The struct from a record, which holds line[] only up to its NUL. */
export function decodeLineRecord(view: Uint8Array): ReadlineEvent {
  if (view.length < LINE_OFFSET) throw new RangeError(`readline: a record of ${view.length} bytes is shorter than the event header (${LINE_OFFSET})`);
  const n = Math.min(view.length, READLINE_EVENT_SIZE);
  full.set(view.subarray(0, n));
  full.fill(0, n);
  return decodeReadlineEvent(full);
}

export function toLineRecord(e: ReadlineEvent, time: Date): LineRecord {
  const truncated = (e.flags & READLINE_F_TRUNCATED) !== 0;
  return {
    time,
    pid: e.pid,
    uid: e.uid,
    comm: cStringOf(e.comm),
    line: cStringOf(e.line) + (truncated ? TRUNCATION_MARKER : ''),
    truncated,
  };
}

export function tableHeader(): string {
  return `${'TIME'.padEnd(8)} ${'PID'.padEnd(7)} LINE\n`;
}

/** One row: time, pid, and the line made terminal-safe (escape sequences typed into a shell are shown, not replayed). */
export function tableRow(r: LineRecord): string {
  return `${`${clockTime(r.time).padEnd(8)} ${String(r.pid).padEnd(7)} ${terminalSafe(r.line)}`.trimEnd()}\n`;
}

export function jsonLine(r: LineRecord): string {
  const obj: Record<string, unknown> = { time: r.time.toISOString(), pid: r.pid, uid: r.uid, comm: r.comm, line: r.line };
  if (r.truncated) obj['truncated'] = true;
  return `${JSON.stringify(obj)}\n`;
}
