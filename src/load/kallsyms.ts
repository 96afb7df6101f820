/**
 * /proc/kallsyms, read as seldom as possible. The file is ~5 MB that the kernel hands out a page
 * per read(2) (1,300+ calls, tens of milliseconds), so:
 *
 * - it is scanned as a stream of large reads, never built into one string;
 * - a question about a symbol is answered once per process (found or absent), so a second load
 *   of the same object, or of another needing the same symbols, reads nothing;
 * - "is any of these there?" (the syscall-wrapper probe) stops at the first hit.
 *
 * Addresses of module symbols can change when modules come and go; a process that loads objects
 * against modules loaded after its first look-up can start a fresh KernelSymbols.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** Where the kallsyms text comes from: latin1 chunks in file order (tests pass fakes that count reads). */
export interface KallsymsSource {
  /** One pass over the file; stopping the iteration early closes it. Nothing when it cannot be read. */
  chunks(): Iterable<string>;
}

const CHUNK = 1 << 18;

/** The running kernel's /proc/kallsyms, read in 256 KiB requests. */
export const procKallsyms: KallsymsSource = {
  *chunks() {
    let fd: number;
    try {
      fd = openSync('/proc/kallsyms', 'r');
    } catch {
      return;
    }
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        const n = readSync(fd, buf, 0, CHUNK, null);
        if (n <= 0) return;
        yield buf.toString('latin1', 0, n);
      }
    } finally {
      closeSync(fd);
    }
  },
};

/**
 * Calls `line` with each line's symbol name and the line itself ("addr type name" or
 * "addr type name\t[module]"); `line` returning true stops the scan.
 */
function scanLines(chunks: Iterable<string>, line: (name: string, text: string) => boolean | void): void {
  let carry = '';
  const visit = (text: string): boolean => {
    const s1 = text.indexOf(' ');
    const s2 = s1 < 0 ? -1 : text.indexOf(' ', s1 + 1);
    if (s2 < 0) return false;
    const tab = text.indexOf('\t', s2 + 1);
    return line(tab < 0 ? text.slice(s2 + 1) : text.slice(s2 + 1, tab), text) === true;
  };
  for (const chunk of chunks) {
    const data = carry === '' ? chunk : carry + chunk;
    let start = 0;
    for (let nl = data.indexOf('\n'); nl >= 0; nl = data.indexOf('\n', start)) {
      if (visit(data.slice(start, nl))) return;
      start = nl + 1;
    }
    carry = data.slice(start);
  }
  if (carry !== '') visit(carry);
}

function address(line: string): bigint {
  return BigInt(`0x${line.slice(0, line.indexOf(' '))}`);
}

/** Every address listed for each of `names` (absent names are left out), in one pass over `chunks`. */
export function scanKallsyms(names: ReadonlySet<string>, chunks: Iterable<string>): Map<string, bigint[]> {
  const out = new Map<string, bigint[]>();
  if (names.size === 0) return out;
  scanLines(chunks, (name, text) => {
    if (!names.has(name)) return;
    const list = out.get(name);
    if (list) list.push(address(text)); else out.set(name, [address(text)]);
  });
  return out;
}

/** The kernel's symbols, each asked-for name looked up once (see the module comment). */
export class KernelSymbols {
  readonly #source: KallsymsSource;
  /** name -> its addresses ([] when the kernel has no such symbol). */
  readonly #known = new Map<string, readonly bigint[]>();
  /** Names a stopped-early scan saw (their address lists were not all read). */
  readonly #present = new Set<string>();

  constructor(source: KallsymsSource = procKallsyms) {
    this.#source = source;
  }

  /** Every address of each of `names` the kernel lists (absent names are left out). */
  lookup(names: ReadonlySet<string>): Map<string, readonly bigint[]> {
    const missing = new Set([...names].filter((n) => !this.#known.has(n)));
    if (missing.size > 0) {
      const found = scanKallsyms(missing, this.#source.chunks());
      for (const n of missing) this.#known.set(n, found.get(n) ?? []);
    }
    const out = new Map<string, readonly bigint[]>();
    for (const n of names) {
      const list = this.#known.get(n)!;
      if (list.length > 0) out.set(n, list);
    }
    return out;
  }

  /** Whether the kernel has any of `names`; stops reading at the first one found. */
  hasAny(names: readonly string[]): boolean {
    if (names.some((n) => this.#present.has(n) || (this.#known.get(n)?.length ?? 0) > 0)) return true;
    if (names.every((n) => this.#known.has(n))) return false;
    const wanted = new Set(names);
    let hit: string | undefined;
    scanLines(this.#source.chunks(), (name) => {
      if (!wanted.has(name)) return false;
      hit = name;
      return true;
    });
    // The hit's address list may be incomplete (the scan stopped): it is remembered as present only.
    if (hit === undefined) for (const n of names) this.#known.set(n, []);
    else this.#present.add(hit);
    return hit !== undefined;
  }
}

/** This process's view of /proc/kallsyms. */
export const kernelSymbols = new KernelSymbols();
