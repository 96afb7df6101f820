/**
 * Text the tools print: kernel timestamps turned into wall-clock times, and strings that come
 * from other processes decoded and made safe for a terminal or a shell.
 */

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

/** What user space appends to a string the kernel side had to cut. */
export const TRUNCATION_MARKER = '...';

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
