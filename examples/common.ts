/**
 * What the examples share: parsing their command lines, finding the compiled BPF objects and
 * their maps and programs, checking privileges, naming interfaces, summing per-CPU counters,
 * printing the counts every interval until Ctrl-C and the totals after detaching, and running as
 * a command line tool (errors become one line on stderr and an exit code; SIGINT and SIGTERM end
 * the run cleanly). Like the examples, it uses bpfkit only through its public API (src/index.ts).
 *
 * Exit codes: 0 after a clean run (also when ended by Ctrl-C or SIGTERM), 1 when something
 * failed at run time (privileges, the kernel, a missing object), 2 when the command line is
 * wrong (unknown flag, invalid value, unknown interface).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BpfkitError, InvalidArgumentError, resolveInterface, type BpfMap, type Program, type XdpMode } from '../src/index.js';

/** A mistake on the command line: the tool prints it with a usage hint and exits with 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Where output goes; tests and embedders can pass their own. */
export interface Output {
  write(text: string): unknown;
}

export interface RunOptions {
  /** Ends the run (detach, print the final counts, resolve). The command line wires it to SIGINT and SIGTERM. */
  signal?: AbortSignal;
  /** Default: process.stdout. */
  out?: Output;
}

/** The package root (the directory with package.json), from src or from dist. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new BpfkitError('ERR_BPFKIT_EXAMPLE', 'cannot find the bpfkit package root (no package.json above the example)');
    dir = up;
  }
  return dir;
}

/** The compiled object of an example: `override`, or test/bpf/build/<name>.bpf.o where scripts/build-bpf.sh writes it. */
export function objectPath(name: string, override: string | undefined): string {
  const path = override !== undefined ? resolve(override) : join(packageRoot(), 'test', 'bpf', 'build', `${name}.bpf.o`);
  if (!existsSync(path)) {
    throw new BpfkitError('ERR_BPFKIT_EXAMPLE', override !== undefined
      ? `BPF object ${path} does not exist`
      : `${path} is not built: run \`npm run build:bpf\` (needs clang and libbpf-dev)`);
  }
  return path;
}

const CAPS = { CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_SYS_ADMIN: 21, CAP_BPF: 39 } as const;
export type Capability = keyof typeof CAPS;

/**
 * Fails with a clear message when the process lacks a capability the example needs. CAP_BPF may
 * be replaced by CAP_SYS_ADMIN (kernels before 5.8 know only that one).
 */
export function requireCapabilities(tool: string, needed: readonly Capability[]): void {
  let eff: bigint;
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m) return; // cannot tell: let the kernel answer
    eff = BigInt(`0x${m[1]}`);
  } catch {
    return;
  }
  const has = (c: Capability): boolean => ((eff >> BigInt(CAPS[c])) & 1n) === 1n;
  const missing = needed.filter((c) => !has(c) && !(c === 'CAP_BPF' && has('CAP_SYS_ADMIN')));
  if (missing.length > 0) {
    throw new BpfkitError('ERR_BPFKIT_PRIVILEGE',
      `missing ${missing.join(' and ')}, which ${tool} needs to load and attach its BPF program: run it as root, e.g. \`sudo node ${process.argv[1] ?? 'main.js'} ...\``);
  }
}

export interface Interface {
  name: string;
  index: number;
}

/** The interface named on the command line; a UsageError listing the existing ones when there is no such interface. */
export function interfaceArg(name: string | undefined): Interface {
  if (name === undefined || name === '') throw new UsageError('--iface is required (the network interface to attach to)');
  try {
    return { name, index: resolveInterface(name) };
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new UsageError(e.message);
    throw e;
  }
}

/** --mode of the XDP examples: native (alias drv) or skb (alias generic); undefined lets the kernel choose. */
export function xdpModeArg(text: string | undefined): XdpMode | undefined {
  if (text === undefined) return undefined;
  if (text === 'native' || text === 'drv') return 'native';
  if (text === 'skb' || text === 'generic') return 'skb';
  throw new UsageError(`invalid --mode "${text}": use native or skb`);
}

/** --interval in seconds (decimals allowed) to milliseconds. */
export function intervalArg(text: string | undefined): number {
  if (text === undefined) return 1000;
  const s = Number(text);
  if (!/^\d*\.?\d+$/.test(text.trim()) || !Number.isFinite(s) || s < 0.05 || s > 3600) {
    throw new UsageError(`invalid --interval "${text}": expected a number of seconds from 0.05 to 3600`);
  }
  return Math.round(s * 1000);
}

/** What the examples' programs count: `struct counter { __u64 packets; __u64 bytes; }`. */
export interface Counter {
  packets: number;
  bytes: number;
}

function asBigint(v: unknown, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  throw new BpfkitError('ERR_BPFKIT_EXAMPLE', `unexpected ${what} value ${String(v)}: is the object built with BTF (clang -g)?`);
}

/**
 * One entry of a per-CPU array of `struct counter`, summed over the CPUs. A per-CPU lookup gives
 * one value per possible CPU; each CPU only ever added to its own.
 */
export function readCounter(map: BpfMap, key: number): Counter {
  const perCpu = map.lookup(key);
  if (perCpu === undefined) return { packets: 0, bytes: 0 };
  if (!Array.isArray(perCpu)) throw new BpfkitError('ERR_BPFKIT_EXAMPLE', `map ${map.name} is not a per-CPU map`);
  let packets = 0n;
  let bytes = 0n;
  for (const v of perCpu as { packets?: unknown; bytes?: unknown }[]) {
    packets += asBigint(v?.packets, `${map.name} packets`);
    bytes += asBigint(v?.bytes, `${map.name} bytes`);
  }
  // 2^53 packets or bytes is beyond what any run reaches; numbers keep JSON output plain.
  return { packets: Number(packets), bytes: Number(bytes) };
}

/** A map of the loaded collection, or a clear error naming the object. */
export function requireMap(maps: ReadonlyMap<string, BpfMap>, name: string, object: string): BpfMap {
  const m = maps.get(name);
  if (!m) throw new BpfkitError('ERR_BPFKIT_EXAMPLE', `${object} has no map "${name}": is it the right object?`);
  return m;
}

/** A program of the loaded collection, or a clear error naming the object. */
export function requireProgram(programs: ReadonlyMap<string, Program>, name: string, object: string): Program {
  const p = programs.get(name);
  if (!p) throw new BpfkitError('ERR_BPFKIT_EXAMPLE', `${object} has no program ${name}: is it the right object?`);
  return p;
}

/** 1234567 -> "1,234,567". */
export function grouped(n: number): string {
  return Math.trunc(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Fixed-width table rows: first column left-aligned, the others right-aligned. */
export function table(rows: readonly (readonly string[])[], indent = '  '): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length); });
  return rows.map((r) => indent + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ').trimEnd()).join('\n');
}

export function clock(d = new Date()): string {
  return d.toTimeString().slice(0, 8);
}

/** Calls `tick` every `ms` until `signal` aborts; resolves then. */
export function everyUntilAborted(ms: number, signal: AbortSignal | undefined, tick: () => void): Promise<void> {
  return new Promise((resolveDone, reject) => {
    if (signal?.aborted) {
      resolveDone();
      return;
    }
    const timer = setInterval(() => {
      try {
        tick();
      } catch (e) {
        stop();
        reject(e);
      }
    }, ms);
    const stop = (): void => {
      clearInterval(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      stop();
      resolveDone();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface CountLoop<S extends object> {
  tool: string;
  iface: Interface;
  intervalMs: number;
  /** One JSON object per line ("counts" every interval, "detached" at the end) instead of tables. */
  json: boolean;
  out: Output;
  signal: AbortSignal | undefined;
  /** What the final table counts: "<totals> in total" ("counted", "dropped"). */
  totals: string;
  /** The counts now, read from the maps. */
  snapshot(): S;
  /**
   * The counts as a table under `title`. Every interval `since` holds the counts of the previous
   * print and the seconds since, for rates; the final table has no `since`.
   */
  render(s: S, title: string, since?: { previous: S; seconds: number }): string;
  /** Detaches the program: the final counts are read after this. */
  detach(): void;
}

/**
 * The loop of the counting examples: prints the counts every interval until `signal` aborts,
 * then detaches and prints the totals.
 */
export async function countUntilAborted<S extends object>(loop: CountLoop<S>): Promise<void> {
  const { out, json } = loop;
  let previous = loop.snapshot();
  let previousAt = performance.now();
  await everyUntilAborted(loop.intervalMs, loop.signal, () => {
    const s = loop.snapshot();
    const at = performance.now();
    out.write(json
      ? `${JSON.stringify({ event: 'counts', time: new Date().toISOString(), ...s })}\n`
      : loop.render(s, `\n${clock()}`, { previous, seconds: (at - previousAt) / 1000 }));
    previous = s;
    previousAt = at;
  });
  loop.detach();
  const final = loop.snapshot();
  out.write(json
    ? `${JSON.stringify({ event: 'detached', iface: loop.iface.name, ...final })}\n`
    : loop.render(final, `\n${loop.tool}: detached from ${loop.iface.name}; ${loop.totals} in total:`));
}

/** Says what was attached: a JSON "attached" event with `fields` (with --json), else the line `text`. */
export function announce(out: Output, json: boolean, iface: Interface, fields: Record<string, unknown>, text: string): void {
  out.write(json ? `${JSON.stringify({ event: 'attached', iface: iface.name, ifindex: iface.index, ...fields })}\n` : `${text}\n`);
}

/** Whether the module at `url` is the script node was started with. */
export function isMain(url: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    // Node resolves symlinks before it sets import.meta.url.
    return pathToFileURL(realpathSync(resolve(script))).href === url;
  } catch {
    return false;
  }
}

/**
 * Runs an example as a command: SIGINT and SIGTERM abort the run's signal (the run then detaches
 * and returns), errors become one line on stderr, and the exit code is set.
 */
export function runCommand(tool: string, usage: string, run: (argv: string[], options: RunOptions) => Promise<number>): void {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) return; // a second Ctrl-C while detaching: detaching is quick, let it finish
    process.stderr.write(`${tool}: ${sig}, detaching\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  run(process.argv.slice(2), { signal: controller.signal }).then(
    (code) => { process.exitCode = code; },
    (e: unknown) => {
      if (e instanceof UsageError) {
        process.stderr.write(`${tool}: ${e.message}\n${usage.split('\n')[0]}\n(--help for all options)\n`);
        process.exitCode = 2;
        return;
      }
      if (e instanceof BpfkitError) {
        process.stderr.write(`${tool}: ${e.message}\n`);
        if (process.env['BPFKIT_DEBUG']) process.stderr.write(`${e.stack}\n`);
      } else {
        process.stderr.write(`${tool}: ${(e as Error)?.stack ?? String(e)}\n`);
      }
      process.exitCode = 1;
    },
  ).finally(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
}

/** node:util parseArgs errors (unknown flag, missing value) as UsageErrors. */
export function parseOrUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    const code = (e as { code?: unknown } | undefined)?.code;
    if (e instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(e.message);
    }
    throw e;
  }
}

type Flags = NonNullable<ParseArgsConfig['options']>;

/** The flags every example takes. */
const EXAMPLE_FLAGS = {
  iface: { type: 'string' },
  object: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** And those of the examples that print counts every interval. */
export const COUNTER_FLAGS = {
  interval: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type CommandLine<F extends Flags> = ReturnType<typeof parseArgs<{ args: string[]; strict: true; options: typeof EXAMPLE_FLAGS & F }>>['values'];

/**
 * The command line: --iface, --object, -h/--help and the example's own `flags`, parsed by
 * node:util parseArgs (its errors become UsageErrors). For --help it prints `usage` and returns
 * undefined.
 */
export function parseCommandLine<F extends Flags>(argv: string[], usage: string, out: Output, flags: F): CommandLine<F> | undefined {
  const { values } = parseOrUsage(() => parseArgs({ args: argv, strict: true, options: { ...EXAMPLE_FLAGS, ...flags } }));
  if ((values as { help?: boolean }).help) {
    out.write(usage);
    return undefined;
  }
  return values;
}
