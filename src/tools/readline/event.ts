/**
 * readline's events: a ring buffer record (struct readline_event with line[] cut after its NUL)
 * turned into a LineRecord, and that into a table row or a JSON line. Pure, so it is unit-tested.
 */
import { paddedDecoder } from '../common/events.js';
import { clockTime, cStringOf, terminalSafe, TRUNCATION_MARKER } from '../common/format.js';
import { decodeReadlineEvent, type ReadlineEvent } from './gen/readline.js';

export const READLINE_EVENT_SIZE = 1064;
export const LINE_OFFSET = 40;
export const LINE_SIZE = 1024;
export const READLINE_F_TRUNCATED = 1;

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

/** The struct from a record, which holds line[] only up to its NUL. */
export const decodeLineRecord: (view: Uint8Array) => ReadlineEvent = paddedDecoder('readline', READLINE_EVENT_SIZE, LINE_OFFSET, decodeReadlineEvent);

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
