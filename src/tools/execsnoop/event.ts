/**
 * execsnoop's events: a ring buffer record (struct exec_event with args[] cut to the bytes used)
 * turned into an ExecRecord, and an ExecRecord turned into a table row or a JSON line. Pure, so
 * it is unit-tested with records made by the generated encoder.
 */
import { paddedDecoder } from '../common/events.js';
import { clockTime, cStringOf, decodeUtf8, shellQuote, terminalSafe, TRUNCATION_MARKER } from '../common/format.js';
import { decodeExecEvent, type ExecEvent } from './gen/execsnoop.js';

/** Limits and flags of bpf/execsnoop.bpf.c. */
export const EXEC_EVENT_SIZE = 2888;
export const ARGS_OFFSET = 324;
export const MAX_ARGS = 20;
export const ARG_SIZE = 128;
export const FILENAME_SIZE = 256;
export const EXEC_F = {
  FILENAME_TRUNCATED: 1 << 0,
  MORE_ARGS: 1 << 1,
  FILENAME_FAULT: 1 << 2,
  ARGS_FAULT: 1 << 3,
  EXECVEAT: 1 << 4,
} as const;

export interface ExecRecord {
  /** When the exec was called (wall clock). */
  readonly time: Date;
  readonly pid: number;
  readonly tid: number;
  readonly ppid: number;
  readonly uid: number;
  readonly gid: number;
  /** The command name of the caller, before the exec. */
  readonly comm: string;
  /** null when the probe could not read it (see `fault`). */
  readonly filename: string | null;
  /**
   * argv, with "..." appended to cut arguments and a last "..." when there were more than
   * MAX_ARGS; null for an argument the probe could not read.
   */
  readonly args: readonly (string | null)[];
  /** The return value (with --ret): 0, or a negative errno. */
  readonly ret: number;
  /** Whether the filename or the arguments were cut. */
  readonly truncated: boolean;
  /** execveat(2) rather than execve(2). */
  readonly execveat: boolean;
  /**
   * The filename or some of argv could not be read from the caller's memory: the probes cannot
   * take page faults, so a string in a page the caller has not touched yet is out of reach.
   */
  readonly fault: boolean;
}

/** The struct from a record, which holds only the used part of args[]. */
export const decodeRecord: (view: Uint8Array) => ExecEvent = paddedDecoder('execsnoop', EXEC_EVENT_SIZE, ARGS_OFFSET, decodeExecEvent);

/** The arguments of an event, with truncation markers; null for those that could not be read. */
export function argsOf(e: ExecEvent): (string | null)[] {
  const used = Math.min(e.args_size, e.args.length);
  const bytes = e.args.subarray(0, used);
  const out: (string | null)[] = [];
  let start = 0;
  for (let i = 0; i < e.args_count && start <= used; i++) {
    let end = bytes.indexOf(0, start);
    if (end < 0) end = used;
    if (i < 32 && (e.args_fault >>> i) & 1) {
      out.push(null);
    } else {
      let arg = decodeUtf8(bytes.subarray(start, end));
      if (i < 32 && (e.args_truncated >>> i) & 1) arg += TRUNCATION_MARKER;
      out.push(arg);
    }
    start = end + 1;
  }
  if (e.flags & EXEC_F.MORE_ARGS) out.push(TRUNCATION_MARKER);
  return out;
}

/** An ExecRecord from a decoded event; `time` is its wall-clock time (see monotonicToDate). */
export function toRecord(e: ExecEvent, time: Date): ExecRecord {
  const filenameCut = (e.flags & EXEC_F.FILENAME_TRUNCATED) !== 0;
  const filename = e.flags & EXEC_F.FILENAME_FAULT ? null : cStringOf(e.filename) + (filenameCut ? TRUNCATION_MARKER : '');
  return {
    time,
    pid: e.pid,
    tid: e.tid,
    ppid: e.ppid,
    uid: e.uid,
    gid: e.gid,
    comm: cStringOf(e.comm),
    filename,
    args: argsOf(e),
    ret: e.ret,
    truncated: filenameCut || e.args_truncated !== 0 || (e.flags & EXEC_F.MORE_ARGS) !== 0,
    execveat: (e.flags & EXEC_F.EXECVEAT) !== 0,
    fault: (e.flags & (EXEC_F.FILENAME_FAULT | EXEC_F.ARGS_FAULT)) !== 0 || e.args_fault !== 0,
  };
}

// ---- Output -----------------------------------------------------------------------------------------

export interface FormatOptions {
  /** Show the return value. */
  readonly ret: boolean;
  /** Show the thread id (execs by other threads are traced). */
  readonly threads: boolean;
}

const ERRNO: Readonly<Record<number, string>> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 6: 'ENXIO', 7: 'E2BIG', 8: 'ENOEXEC',
  9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT', 16: 'EBUSY', 20: 'ENOTDIR',
  21: 'EISDIR', 22: 'EINVAL', 23: 'ENFILE', 24: 'EMFILE', 26: 'ETXTBSY', 36: 'ENAMETOOLONG',
  40: 'ELOOP', 79: 'ELIBACC', 80: 'ELIBBAD',
};

/** A return value for people: 0, or the errno's name (-2 -> ENOENT). */
export function retText(ret: number): string {
  if (ret >= 0) return String(ret);
  return ERRNO[-ret] ?? String(ret);
}

const W = { time: 8, pid: 7, ppid: 7, uid: 6, comm: 16, ret: 8, filename: 24 } as const;

/** The table's header line. */
export function tableHeader(o: FormatOptions): string {
  const cols = [
    'TIME'.padEnd(W.time), 'PID'.padEnd(W.pid), ...(o.threads ? ['TID'.padEnd(W.pid)] : []), 'PPID'.padEnd(W.ppid),
    'UID'.padEnd(W.uid), 'COMM'.padEnd(W.comm), ...(o.ret ? ['RET'.padEnd(W.ret)] : []), 'FILENAME'.padEnd(W.filename), 'ARGS',
  ];
  return `${cols.join(' ')}\n`;
}

/** How the table shows what the probe could not read: a bare ?, which a real "?" never is (shellQuote quotes it). */
export const UNREADABLE = '?';

/**
 * One table row: fixed-width columns, then the filename and the arguments quoted as a shell
 * would need them. Everything that came from the traced process is made terminal-safe.
 */
export function tableRow(r: ExecRecord, o: FormatOptions): string {
  const filename = r.filename === null ? UNREADABLE : terminalSafe(r.filename);
  const cols = [
    clockTime(r.time).padEnd(W.time), String(r.pid).padEnd(W.pid), ...(o.threads ? [String(r.tid).padEnd(W.pid)] : []),
    String(r.ppid).padEnd(W.ppid), String(r.uid).padEnd(W.uid), terminalSafe(r.comm).padEnd(W.comm),
    ...(o.ret ? [retText(r.ret).padEnd(W.ret)] : []),
    filename.length < W.filename ? filename.padEnd(W.filename) : `${filename} `,
    r.args.map((a) => (a === null ? UNREADABLE : shellQuote(a))).join(' '),
  ];
  return `${cols.join(' ').trimEnd()}\n`;
}

/**
 * One JSON line: time, pid, ppid, uid, comm, filename, args (+ tid, ret, truncated when they
 * apply). What the probe could not read is null.
 */
export function jsonLine(r: ExecRecord, o: FormatOptions): string {
  const obj: Record<string, unknown> = {
    time: r.time.toISOString(),
    pid: r.pid,
    ...(o.threads ? { tid: r.tid } : {}),
    ppid: r.ppid,
    uid: r.uid,
    comm: r.comm,
    filename: r.filename,
    args: r.args,
  };
  if (o.ret) obj['ret'] = r.ret;
  if (r.truncated) obj['truncated'] = true;
  return `${JSON.stringify(obj)}\n`;
}
