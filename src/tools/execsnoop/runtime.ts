/**
 * What the tracing tools (`bpfkit execsnoop`, `bpfkit readline`) share: bad-input errors, the
 * privilege check before anything is loaded, kernel timestamps turned into wall-clock times, safe
 * printing of strings that come from other processes, and the run loop that turns Ctrl-C, SIGTERM
 * and SIGHUP into a clean stop (links and programs closed, exit 0).
 *
 * It lives with execsnoop for now; readline imports it from here.
 */
import { readFileSync } from 'node:fs';
import { BpfkitError, InvalidArgumentError } from '../../errors.js';

/** Bad command-line input: exit code 2. */
export class UsageError extends BpfkitError {
  constructor(message: string) {
    super('ERR_BPFKIT_USAGE', message);
  }
}

/** The process lacks a privilege the tool needs: exit code 1. */
export class PrivilegeError extends BpfkitError {
  constructor(message: string) {
    super('ERR_BPFKIT_PRIVILEGE', message);
  }
}

// ---- Privileges -----------------------------------------------------------------------------------

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

/** The effective capability set from /proc/self/status (or `status`), undefined when it does not say. */
export function effectiveCapabilities(status?: string): bigint | undefined {
  let text = status;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(text);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

function hasCap(caps: bigint, cap: bigint): boolean {
  return ((caps >> cap) & 1n) === 1n;
}

/**
 * The capabilities a tracing tool lacks to load BPF programs (CAP_BPF) and attach them to
 * tracepoints, kprobes and uprobes (CAP_PERFMON); CAP_SYS_ADMIN covers both. Empty when all are
 * there, or when the capability set cannot be read (the kernel will then say).
 */
export function missingTracingCaps(caps: bigint | undefined = effectiveCapabilities()): string[] {
  if (caps === undefined || hasCap(caps, CAP_SYS_ADMIN)) return [];
  const out: string[] = [];
  if (!hasCap(caps, CAP_BPF)) out.push('CAP_BPF');
  if (!hasCap(caps, CAP_PERFMON)) out.push('CAP_PERFMON');
  return out;
}

/**
 * Throws PrivilegeError naming what is missing and how to run the tool, before anything is
 * loaded. `what` says what the privileges are for.
 */
export function requireTracingPrivileges(tool: string, what: string, caps: bigint | undefined = effectiveCapabilities(), uid = process.getuid?.()): void {
  const lacking = missingTracingCaps(caps);
  if (lacking.length === 0) return;
  const who = uid === 0
    ? `this process runs as root but without ${lacking.join(' and ')} (a restricted container?)`
    : `this process (uid ${uid ?? '?'}) does not have ${lacking.length === 1 ? 'it' : 'them'}`;
  throw new PrivilegeError(`${tool} needs CAP_BPF and CAP_PERFMON (in practice: root) ${what}; ${who}. Run it as root: sudo npx bpfkit ${tool}`);
}

// ---- Time -----------------------------------------------------------------------------------------

/**
 * The wall-clock time of a kernel timestamp from bpf_ktime_get_ns() (CLOCK_MONOTONIC, the clock
 * process.hrtime() reads too): now, minus how long ago the timestamp was.
 */
export function monotonicToDate(ktimeNs: bigint, nowMs = Date.now(), nowMonoNs = process.hrtime.bigint()): Date {
  const agoMs = Number(nowMonoNs - ktimeNs) / 1e6;
  return new Date(nowMs - agoMs);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Local time as HH:MM:SS, for tables. */
export function clockTime(d: Date): string {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// ---- Strings from other processes -------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** A NUL-terminated byte string (or all of `bytes` when there is no NUL), decoded as UTF-8. */
export function cStringOf(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return utf8.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/** Bytes decoded as UTF-8 (invalid sequences become U+FFFD). */
export function decodeUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

// C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators and bidi overrides that
// can rearrange what a terminal shows.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_G = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  switch (c) {
    case '\n': return '\\n';
    case '\t': return '\\t';
    case '\r': return '\\r';
    case '\x1b': return '\\e';
    default: {
      const code = c.codePointAt(0)!;
      return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    }
  }
}

/**
 * Text from another process made safe for a terminal: control characters (escape sequences
 * could otherwise move the cursor, retitle the window or hide output) are shown escaped, `\e`,
 * `\n`, `\x07`, and a backslash is doubled so the escapes stay unambiguous.
 */
export function terminalSafe(text: string): string {
  if (!UNSAFE.test(text) && !text.includes('\\')) return text;
  return text.replace(/\\/g, '\\\\').replace(UNSAFE_G, escapeChar);
}

const SHELL_PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * One argument as a shell would need it typed: as is when plain, in single quotes when it holds
 * blanks or shell syntax, and as $'...' with escapes when it holds control characters.
 */
export function shellQuote(arg: string): string {
  if (arg === '') return "''";
  if (SHELL_PLAIN.test(arg)) return arg;
  if (UNSAFE.test(arg)) {
    return `$'${arg.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(UNSAFE_G, escapeChar)}'`;
  }
  return `'${arg.replace(/'/g, "'\\''")}'`;
}

// ---- Running until a signal --------------------------------------------------------------------------

export interface ToolIO {
  out(text: string): void;
  err(text: string): void;
}

export const processIO: ToolIO = {
  out: (t) => { process.stdout.write(t); },
  err: (t) => { process.stderr.write(t); },
};

export interface RunHooks {
  /** Where output goes (default: process.stdout / process.stderr). */
  readonly io?: ToolIO;
  /** Stops the run as a signal would. */
  readonly signal?: AbortSignal;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  return process.env['BPFKIT_DEBUG'] ? e.stack ?? e.message : e.message;
}

/**
 * Runs `body` until it returns or a signal (SIGINT, SIGTERM, SIGHUP) aborts the signal it gets,
 * and turns the outcome into an exit code: 0 for a clean run or stop, 2 for bad input
 * (UsageError), 1 for other bpfkit errors (one line: "bpfkit <tool>: <message>") and for an error
 * that escaped elsewhere. A second signal says the tool is still stopping; a third exits at once
 * (the kernel still removes every bpf_link with the process). A closed stdout (`| head`) stops
 * the tool quietly.
 */
export async function runUntilStopped(
  tool: string,
  hooks: RunHooks,
  body: (signal: AbortSignal, io: ToolIO) => Promise<void>,
): Promise<number> {
  const io = hooks.io ?? processIO;
  const ac = new AbortController();
  let signals = 0;
  let uncaught: unknown;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) ac.abort();
    else if (signals === 2) io.err(`${tool}: ${sig}: still stopping (once more to quit at once)\n`);
    else process.exit(130);
  };
  const onUncaught = (e: unknown): void => {
    uncaught ??= e;
    ac.abort();
  };
  const onStdoutError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') uncaught ??= e;
    ac.abort();
  };
  const onOuterAbort = (): void => ac.abort();
  hooks.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (hooks.signal?.aborted) ac.abort();
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  process.stdout.on('error', onStdoutError);
  try {
    await body(ac.signal, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`bpfkit ${tool}: ${describe(e)}\n(bpfkit ${tool} --help lists the options)\n`);
      return 2;
    }
    if (e instanceof InvalidArgumentError) {
      io.err(`bpfkit ${tool}: ${describe(e)}\n`);
      return 2;
    }
    if (e instanceof BpfkitError) {
      io.err(`bpfkit ${tool}: ${describe(e)}\n`);
      return 1;
    }
    throw e;
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    process.stdout.off('error', onStdoutError);
    hooks.signal?.removeEventListener('abort', onOuterAbort);
  }
  if (uncaught !== undefined) {
    io.err(`bpfkit ${tool}: stopped by an unexpected error: ${(uncaught as Error)?.stack ?? String(uncaught)}\n`);
    return 1;
  }
  return 0;
}
