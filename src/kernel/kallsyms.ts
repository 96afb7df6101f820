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
 * Calls `hit` for each line naming one of `names` ("addr type name" or "addr type name\t[module]"),
 * found with indexOf on the text rather than by splitting every line (kallsyms has 100,000+).
 * `hit` returning true stops the scan.
 */
function scanFor(names: ReadonlySet<string>, chunks: Iterable<string>, hit: (name: string, line: string, position: number) => boolean | void): void {
  // A core symbol's line ends after its name, a module symbol's name is followed by a tab.
  const patterns = [...names].flatMap((n): [string, string][] => [[n, ` ${n}\n`], [n, ` ${n}\t`]]);
  let carry = '';
  /** Where `data` starts in the file. */
  let base = 0;
  const search = (data: string): boolean => {
    for (const [name, pattern] of patterns) {
      for (let at = data.indexOf(pattern); at >= 0; at = data.indexOf(pattern, at + pattern.length - 1)) {
        const begin = data.lastIndexOf('\n', at) + 1;
        // Only a name right after "addr type" is a symbol (the module part has no blanks).
        const s1 = data.indexOf(' ', begin);
        if (data.indexOf(' ', s1 + 1) !== at) continue;
        if (hit(name, data.slice(begin, at + pattern.length - 1), base + begin) === true) return true;
      }
    }
    return false;
  };
  for (const chunk of chunks) {
    const data = carry + chunk;
    const last = data.lastIndexOf('\n');
    // Whole lines only; the unfinished one goes with the next chunk.
    if (search(data.slice(0, last + 1))) return;
    base += last + 1;
    carry = data.slice(last + 1);
  }
  if (carry !== '') search(`${carry}\n`);
}

function address(line: string): bigint {
  return BigInt(`0x${line.slice(0, line.indexOf(' '))}`);
}

/** Every address listed for each of `names` (absent names are left out), in one pass over `chunks`. */
export function scanKallsyms(names: ReadonlySet<string>, chunks: Iterable<string>): Map<string, bigint[]> {
  const found = new Map<string, { at: number; addr: bigint }[]>();
  if (names.size === 0) return new Map();
  scanFor(names, chunks, (name, text, at) => {
    const list = found.get(name);
    const entry = { at, addr: address(text) };
    if (list) list.push(entry); else found.set(name, [entry]);
  });
  // Addresses in file order, names in the order of their first line (as a line-by-line reading).
  for (const list of found.values()) list.sort((a, b) => a.at - b.at);
  const out = new Map<string, bigint[]>();
  for (const [name, list] of [...found].sort((a, b) => a[1][0]!.at - b[1][0]!.at)) out.set(name, list.map((e) => e.addr));
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
    scanFor(wanted, this.#source.chunks(), (name) => {
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
