/**
 * The command line of `bpfkit pktcount`, parsed into options. Everything here is pure (no kernel,
 * no network), so it is unit-tested; bad input ends in a UsageError that names the flag and value.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../common/runtime.js';

export const DEFAULT_INTERVAL_MS = 1000;
export const DEFAULT_TOP = 10;
export const DEFAULT_MAX_ENTRIES = 65536;
export const MAX_MAX_ENTRIES = 1 << 24;
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 8080 } as const;

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface PktcountOptions {
  /** The interface to attach to; undefined runs the self-contained demo. */
  readonly iface: string | undefined;
  readonly intervalMs: number;
  readonly top: number;
  readonly maxEntries: number;
  /** What a row counts: each flow, each source address, or each destination port (in the kernel). */
  readonly aggregate: 'flow' | 'src' | 'dport';
  /** IPs and CIDRs from --exclude, in order (comma-separated lists are split). */
  readonly exclude: readonly string[];
  readonly excludeFiles: readonly string[];
  /** XDP mode; undefined lets the kernel choose (native where the driver has it). */
  readonly mode: 'skb' | 'native' | undefined;
  /** Where the leaderboard listens; undefined with --no-web. */
  readonly listen: ListenAddress | undefined;
  /** Extra origins allowed to open the websocket (e.g. behind a reverse proxy). */
  readonly allowOrigins: readonly string[];
  /** Host header values answered besides the listen names (--allowed-host). */
  readonly allowedHosts: readonly string[];
  /** One JSON snapshot per line on stdout instead of the table. */
  readonly json: boolean;
  /** No periodic table (the final summary is still printed). */
  readonly quiet: boolean;
  /** Stop by itself after this long (ms); undefined runs until a signal. */
  readonly durationMs: number | undefined;
}

export const usage = `usage: bpfkit pktcount [--iface IF] [options]

Counts packets arriving on an interface by (source IP, source port, destination port, protocol),
TCP and UDP over IPv4 and IPv6, in the kernel with XDP, and prints the busiest flows every interval.
Without --iface it runs a self-contained demo: two network namespaces joined by veth pairs, mixed
TCP/UDP traffic over IPv4 and IPv6 between them, and the counter on one of the links.

options:
  --iface IF             interface to attach to (omit for the demo)
  --interval DURATION    how often to read and print the counts: 1s (default), 500ms, 2.5s, 1m
  --top N                rows shown, sent to the page and exported as metrics (default ${DEFAULT_TOP})
  --aggregate flow|src|dport
                         what a row counts: each flow (default), each source address (ports
                         shown as *), or each destination port (source shown as *)
  --max-entries N        flows the kernel keeps (LRU: the least recently seen make room; default ${DEFAULT_MAX_ENTRIES})
  --exclude IP|CIDR      do not count packets from these sources (repeatable, or comma-separated)
  --exclude-file FILE    more exclusions, one IP or CIDR per line ('#' starts a comment)
  --mode skb|native      XDP mode (default: native where the driver supports it, else skb)
  --listen HOST:PORT     where the leaderboard serves / /json /ws /metrics (default ${DEFAULT_LISTEN.host}:${DEFAULT_LISTEN.port})
  --allow-origin ORIGIN  also accept websockets from this origin, e.g. https://dash.example (repeatable)
  --allowed-host NAME    also answer requests for this host name (NAME or NAME:PORT; repeatable); by
                         default only the names the leaderboard listens as are answered (421 otherwise)
  --no-web               no leaderboard server
  --json                 print each snapshot as one JSON line instead of the table
  --quiet                print nothing every interval (only the final summary)
  --duration DURATION    stop after this long (default: run until Ctrl-C or SIGTERM)
  -h, --help             this text

Needs root (CAP_BPF and CAP_NET_ADMIN; the demo also CAP_SYS_ADMIN for network namespaces).
Ctrl-C or SIGTERM detaches the program and prints a summary.
`;

/** "1s", "500ms", "2.5s", "1m", or a bare number of seconds, to milliseconds. */
export function parseDuration(text: string, flag: string, minMs = 1, maxMs = 24 * 3600 * 1000): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: invalid duration ${JSON.stringify(text)}; use e.g. 1s, 500ms, 2.5s or 1m`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
  if (ms < minMs || ms > maxMs) {
    throw new UsageError(`${flag}: ${JSON.stringify(text)} is out of range (${formatMs(minMs)} to ${formatMs(maxMs)})`);
  }
  return ms;
}

function formatMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

/** A positive decimal integer within [min, max]. */
export function parseCount(text: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a whole number`);
  const n = Number(text.trim());
  if (n < min || n > max) throw new UsageError(`${flag}: ${n} is out of range (${min} to ${max})`);
  return n;
}

/**
 * "HOST:PORT", "[v6]:PORT", ":PORT" or "PORT" (host 127.0.0.1). Port 0 picks a free port
 * (the tool prints the one it got).
 */
export function parseListen(text: string): ListenAddress {
  const s = text.trim();
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2]!;
  } else if (/^\d+$/.test(s)) {
    host = DEFAULT_LISTEN.host;
    portText = s;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0 || s.indexOf(':') !== colon) {
      throw new UsageError(`--listen: ${JSON.stringify(text)} is not HOST:PORT (write IPv6 hosts in brackets: [::1]:8080)`);
    }
    host = s.slice(0, colon) || DEFAULT_LISTEN.host;
    portText = s.slice(colon + 1);
  }
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
    throw new UsageError(`--listen: port ${JSON.stringify(portText)} in ${JSON.stringify(text)} is not a number from 0 to 65535`);
  }
  if (!/^[A-Za-z0-9.:%_-]+$/.test(host)) throw new UsageError(`--listen: ${JSON.stringify(host)} is not a host name or address`);
  return { host, port: Number(portText) };
}

/** An origin as browsers send it: scheme://host[:port], lowercase, no path. */
export function parseOrigin(text: string): string {
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw new UsageError(`--allow-origin: ${JSON.stringify(text)} is not an origin like http://host:port`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    throw new UsageError(`--allow-origin: ${JSON.stringify(text)} is not an origin like http://host:port`);
  }
  return u.origin.toLowerCase();
}

/** A host name or address, optionally with :port, as a Host header carries it; lowercase. */
export function parseHostName(text: string): string {
  const t = text.trim().toLowerCase();
  let u: URL | undefined;
  try {
    u = new URL(`http://${t}/`);
  } catch {
    u = undefined;
  }
  if (t === '' || u === undefined || u.host.replace(/:80$/, '') !== t.replace(/:80$/, '') || u.username || u.password) {
    throw new UsageError(`--allowed-host: ${JSON.stringify(text)} is not a host name like stats.example or stats.example:8080`);
  }
  return t;
}

/** Parses argv (without the "pktcount" word); 'help' for -h/--help. */
export function parsePktcountArgs(argv: readonly string[]): PktcountOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        iface: { type: 'string', short: 'i' },
        interval: { type: 'string' },
        top: { type: 'string' },
        'max-entries': { type: 'string' },
        aggregate: { type: 'string' },
        exclude: { type: 'string', multiple: true },
        'exclude-file': { type: 'string', multiple: true },
        mode: { type: 'string' },
        listen: { type: 'string' },
        'allow-origin': { type: 'string', multiple: true },
        'allowed-host': { type: 'string', multiple: true },
        'no-web': { type: 'boolean' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        duration: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (the interface goes after --iface)`);
  const iface = v.iface;
  if (iface !== undefined && iface.trim() === '') throw new UsageError('--iface: empty interface name');
  let mode: 'skb' | 'native' | undefined;
  if (v.mode !== undefined) {
    const m = v.mode.trim().toLowerCase();
    if (m === 'skb' || m === 'generic') mode = 'skb';
    else if (m === 'native' || m === 'drv') mode = 'native';
    else throw new UsageError(`--mode: ${JSON.stringify(v.mode)} is not a mode; use skb or native`);
  }
  if (v['no-web'] && v.listen !== undefined) throw new UsageError('--listen and --no-web contradict each other');
  if (v.json && v.quiet) throw new UsageError('--json and --quiet contradict each other');
  const aggregate = v.aggregate === undefined ? 'flow' : v.aggregate.trim().toLowerCase();
  if (aggregate !== 'flow' && aggregate !== 'src' && aggregate !== 'dport') {
    throw new UsageError(`--aggregate: ${JSON.stringify(v.aggregate)} is not a key; use flow, src or dport`);
  }
  const exclude = (v.exclude ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  return {
    iface,
    intervalMs: v.interval === undefined ? DEFAULT_INTERVAL_MS : parseDuration(v.interval, '--interval', 50, 3_600_000),
    top: v.top === undefined ? DEFAULT_TOP : parseCount(v.top, '--top', 1, 1000),
    maxEntries: v['max-entries'] === undefined ? DEFAULT_MAX_ENTRIES : parseCount(v['max-entries'], '--max-entries', 16, MAX_MAX_ENTRIES),
    aggregate,
    exclude,
    excludeFiles: v['exclude-file'] ?? [],
    mode,
    listen: v['no-web'] ? undefined : v.listen === undefined ? { ...DEFAULT_LISTEN } : parseListen(v.listen),
    allowOrigins: (v['allow-origin'] ?? []).map(parseOrigin),
    allowedHosts: (v['allowed-host'] ?? []).map(parseHostName),
    json: v.json ?? false,
    quiet: v.quiet ?? false,
    durationMs: v.duration === undefined ? undefined : parseDuration(v.duration, '--duration', 1, 365 * 24 * 3_600_000),
  };
}
