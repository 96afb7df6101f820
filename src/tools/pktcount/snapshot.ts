/**
 * From raw counts to what pktcount shows: flows read from the kernel become a snapshot (sorted,
 * with packets per second since the previous read, cut to the top N, aggregated per source) and
 * the snapshot becomes the terminal table and the final summary. Pure functions and one small
 * stateful builder: unit-tested without a kernel.
 */

/** One entry of the kernel's flow table, decoded. */
export interface FlowSample {
  readonly family: 4 | 6;
  /** Source address, 16 bytes, network order (IPv4 as ::ffff:a.b.c.d). */
  readonly saddr: Uint8Array;
  readonly srcPort: number;
  readonly dstPort: number;
  /** IP protocol number (6 TCP, 17 UDP). */
  readonly proto: number;
  readonly packets: number;
  readonly bytes: number;
}

/** What happened to the packets the XDP program saw, summed over CPUs. */
export interface Totals {
  /** Every frame seen. */
  readonly packets: number;
  /** TCP and UDP packets counted in the flow table. */
  readonly counted: number;
  /** Packets from an excluded source. */
  readonly excluded: number;
  /** Neither IPv4 nor IPv6. */
  readonly nonIp: number;
  /** IP but not TCP or UDP (ICMP, ...), or a fragment without ports. */
  readonly otherL4: number;
  /** Cut short or invalid headers. */
  readonly malformed: number;
  /** TCP/UDP packets not counted because their flow could not be stored. */
  readonly untracked: number;
}

export const ZERO_TOTALS: Totals = { packets: 0, counted: 0, excluded: 0, nonIp: 0, otherL4: 0, malformed: 0, untracked: 0 };

/** A field --aggregate counted away: the kernel summed every value of it into one row. */
export const ANY = '*';

export interface FlowEntry {
  /** The source address; ANY with --aggregate dport. */
  readonly src: string;
  /** ANY with --aggregate src or dport. */
  readonly srcPort: number | typeof ANY;
  /** ANY with --aggregate src. */
  readonly dstPort: number | typeof ANY;
  /** "tcp", "udp", or the protocol number as text. */
  readonly proto: string;
  /** Absent with --aggregate dport: a port's row sums IPv4 and IPv6. */
  readonly family?: 4 | 6;
  readonly packets: number;
  readonly bytes: number;
  /** Packets per second over the last interval. */
  readonly rate: number;
}

export interface SourceEntry {
  readonly src: string;
  readonly family: 4 | 6;
  readonly packets: number;
  readonly rate: number;
  /** How many flows of this source the kernel's table holds. */
  readonly flows: number;
}

/** The JSON of /json, each /ws message, and one line of --json. */
export interface Snapshot {
  /** When the counts were read (ISO 8601). */
  readonly time: string;
  readonly iface: string;
  /** "skb", "native", or "auto" when the kernel chose. */
  readonly mode: string;
  /** Whether this is the self-contained demo. */
  readonly demo: boolean;
  /** What a row counts (--aggregate): fields summed away read as ANY ("*"). */
  readonly aggregate: 'flow' | 'src' | 'dport';
  readonly intervalMs: number;
  readonly startedAt: string;
  readonly uptimeMs: number;
  /** Flows in the kernel's table, and its capacity (--max-entries). */
  readonly flows: number;
  readonly maxEntries: number;
  readonly totals: Totals;
  /** Packets per second over the last interval: all, counted, excluded. */
  readonly rates: { readonly packets: number; readonly counted: number; readonly excluded: number };
  /** The top flows by packets. */
  readonly entries: readonly FlowEntry[];
  /** The top sources (addresses) by packets, all their flows summed (none with --aggregate dport). */
  readonly sources: readonly SourceEntry[];
  /** The excluded prefixes. */
  readonly excluded: readonly string[];
}

const PROTO_NAMES: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp' };

export function protoName(proto: number): string {
  return PROTO_NAMES[proto] ?? String(proto);
}

/** An address as text: dotted quad for IPv4 (`family` 4, or 4 bytes), RFC 5952 for IPv6. */
export function formatAddress(addr: Uint8Array, family: 4 | 6): string {
  if (family === 4) {
    const a = addr.length === 16 ? addr.subarray(12) : addr;
    return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((addr[i]! << 8) | addr[i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${addr[12]}.${addr[13]}.${addr[14]}.${addr[15]}`;
  }
  // The longest run of two or more zero groups becomes "::" (the first, on a tie).
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}

/** "10.0.0.1:5353" or "[fd00::1]:5353". */
export function formatEndpoint(src: string, port: number | typeof ANY): string {
  return src.includes(':') ? `[${src}]:${port}` : `${src}:${port}`;
}

/** The seed's row: `192.168.5.2:58597 => :22`. */
export function flowLabel(e: Pick<FlowEntry, 'src' | 'srcPort' | 'dstPort'>): string {
  return `${formatEndpoint(e.src, e.srcPort)} => :${e.dstPort}`;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Orders flows: most packets first, then highest rate, then by text (so equal rows stay put). */
export function compareFlows(a: FlowEntry, b: FlowEntry): number {
  return b.packets - a.packets || b.rate - a.rate || (flowLabel(a) + a.proto < flowLabel(b) + b.proto ? -1 : 1);
}

/**
 * The first `n` of `items` in `compare` order, for orders that put more packets first: only the
 * items with at least the n-th largest packet count can be among them, so only those are sorted
 * (a table of 50,000 flows sorts a few dozen rows, not 50,000 with string tie-breaks).
 */
export function topByPackets<T extends { readonly packets: number }>(items: T[], n: number, compare: (a: T, b: T) => number): T[] {
  if (n <= 0) return [];
  if (items.length <= n * 4) return items.sort(compare).slice(0, n);
  const counts = Float64Array.from(items, (i) => i.packets).sort();
  const least = counts[counts.length - n]!;
  return items.filter((i) => i.packets >= least).sort(compare).slice(0, n);
}

export interface SnapshotContext {
  readonly iface: string;
  readonly mode: string;
  readonly demo: boolean;
  /** What the kernel counts per row (default 'flow'). */
  readonly aggregate?: 'flow' | 'src' | 'dport';
  readonly intervalMs: number;
  readonly maxEntries: number;
  readonly top: number;
  readonly excluded: readonly string[];
  /** When counting began (ms since the epoch): the first rates are measured from here. */
  readonly startedAt: number;
}

/** A flow's protocol and ports as one number (proto * 2^32 + sport * 2^16 + dport, below 2^40). */
function portsKey(f: FlowSample): number {
  return f.proto * 0x1_0000_0000 + f.srcPort * 0x10000 + f.dstPort;
}

/**
 * What the builder keeps per source address between reads: its text, and the packet counts of its
 * flows at the read where it was last seen and at the one before. The first flow of a source sits
 * in fields, further ones in a map: a big table is mostly one flow per source, and a Map per
 * source per read would cost more than the rest of the build.
 */
class SourceState {
  /** Read number of `first*`/`more`; the `prev*` ones are from the read before it, if `prevRead` says so. */
  read = 0;
  prevRead = 0;
  firstKey = -1;
  firstPackets = 0;
  more: Map<number, number> | undefined;
  prevFirstKey = -1;
  prevFirstPackets = 0;
  prevMore: Map<number, number> | undefined;
  /** This read's sums over the source's flows. */
  packets = 0;
  rate = 0;
  flows = 0;

  constructor(readonly text: string, readonly family: 4 | 6) {}

  /** Starts read `read` for this source: what was current becomes the previous read's counts. */
  begin(read: number): void {
    if (this.read === read - 1) {
      this.prevRead = this.read;
      this.prevFirstKey = this.firstKey;
      this.prevFirstPackets = this.firstPackets;
      this.prevMore = this.more;
    } else {
      this.prevRead = 0;
      this.prevFirstKey = -1;
      this.prevMore = undefined;
    }
    this.read = read;
    this.firstKey = -1;
    this.more = undefined;
    this.packets = 0;
    this.rate = 0;
    this.flows = 0;
  }

  /** Packets of flow `key` at the previous read, or undefined when it was not there. */
  before(key: number): number | undefined {
    if (this.prevRead === 0) return undefined;
    if (this.prevFirstKey === key) return this.prevFirstPackets;
    return this.prevMore?.get(key);
  }

  record(key: number, packets: number): void {
    if (this.firstKey === -1) {
      this.firstKey = key;
      this.firstPackets = packets;
    } else {
      (this.more ??= new Map()).set(key, packets);
    }
  }
}

/** The indexes of the `n` largest of `values` (at least; ties at the cut all included), unordered. */
function largest(values: Float64Array, n: number): number[] {
  if (n <= 0 || values.length === 0) return [];
  const out: number[] = [];
  if (values.length <= n) {
    for (let i = 0; i < values.length; i++) out.push(i);
    return out;
  }
  const least = values.slice().sort()[values.length - n]!;
  for (let i = 0; i < values.length; i++) if (values[i]! >= least) out.push(i);
  return out;
}

/**
 * Turns successive reads of the flow table into snapshots. Rates are packets since the previous
 * read divided by the time actually elapsed; a flow that is new since then (or was evicted and
 * came back) had all its packets in that time.
 *
 * A table of 50,000 flows is read every interval, so a read allocates per flow only what it must:
 * sources are remembered (with their text) between reads, flows are identified by numbers, and
 * only the top rows become objects.
 */
export class SnapshotBuilder {
  readonly #ctx: SnapshotContext;
  #prevTotals: Totals = ZERO_TOTALS;
  #prevTime: number;
  /** Reads so far (1 on the first build). */
  #read = 0;
  /** Sources by their IPv4 address as a 32-bit number, and by the 16 bytes of an IPv6 one. */
  readonly #v4 = new Map<number, SourceState>();
  readonly #v6 = new Map<string, SourceState>();

  constructor(ctx: SnapshotContext) {
    this.#ctx = ctx;
    this.#prevTime = ctx.startedAt;
  }

  build(flows: readonly FlowSample[], totals: Totals, now: number = Date.now()): Snapshot {
    const ctx = this.#ctx;
    const aggregate = ctx.aggregate ?? 'flow';
    const dt = Math.max(now - this.#prevTime, 1) / 1000;
    const read = ++this.#read;
    const count = flows.length;
    /** Per flow: its source, and packets since the previous read. */
    const sourceOf: SourceState[] = new Array(count);
    const packets = new Float64Array(count);
    const delta = new Float64Array(count);
    /** Sources seen in this read, in first-seen order. */
    const seen: SourceState[] = [];
    for (let i = 0; i < count; i++) {
      const f = flows[i]!;
      const src = this.#source(f);
      if (src.read !== read) {
        src.begin(read);
        seen.push(src);
      }
      const key = portsKey(f);
      const before = src.before(key);
      const d = before !== undefined && before <= f.packets ? f.packets - before : f.packets;
      src.record(key, f.packets);
      src.packets += f.packets;
      src.rate += d / dt;
      src.flows++;
      sourceOf[i] = src;
      packets[i] = f.packets;
      delta[i] = d;
    }
    this.#forget(read, count);

    let entries: FlowEntry[];
    let sources: SourceEntry[];
    if (aggregate === 'dport') {
      // No source to show or to sum by: one row per port and protocol (the kernel keeps one per family).
      const perPort = new Map<number, { -readonly [K in keyof FlowEntry]: FlowEntry[K] }>();
      for (let i = 0; i < count; i++) {
        const f = flows[i]!;
        const key = f.proto * 0x10000 + f.dstPort;
        const row = perPort.get(key);
        if (row) {
          row.packets += f.packets;
          row.bytes += f.bytes;
          row.rate = round2(row.rate + delta[i]! / dt);
        } else {
          perPort.set(key, { src: ANY, srcPort: ANY, dstPort: f.dstPort, proto: protoName(f.proto), packets: f.packets, bytes: f.bytes, rate: round2(delta[i]! / dt) });
        }
      }
      entries = topByPackets([...perPort.values()], ctx.top, compareFlows);
      sources = [];
    } else {
      // Only flows with at least the n-th largest count can be in the top n: only they become rows.
      const rows = largest(packets, ctx.top).map((i): FlowEntry => {
        const f = flows[i]!;
        return {
          src: sourceOf[i]!.text, srcPort: aggregate === 'flow' ? f.srcPort : ANY, dstPort: aggregate === 'src' ? ANY : f.dstPort,
          proto: protoName(f.proto), family: f.family, packets: f.packets, bytes: f.bytes, rate: round2(delta[i]! / dt),
        };
      });
      entries = rows.sort(compareFlows).slice(0, ctx.top);
      const sourcePackets = Float64Array.from(seen, (x) => x.packets);
      sources = largest(sourcePackets, ctx.top)
        .map((i): SourceEntry => {
          const x = seen[i]!;
          return { src: x.text, family: x.family, packets: x.packets, rate: round2(x.rate), flows: x.flows };
        })
        .sort((a, b) => b.packets - a.packets || b.rate - a.rate || (a.src < b.src ? -1 : 1))
        .slice(0, ctx.top);
    }
    const p = this.#prevTotals;
    const rateOf = (now_: number, before: number): number => round2(Math.max(0, now_ - before) / dt);
    const snap: Snapshot = {
      time: new Date(now).toISOString(),
      iface: ctx.iface,
      mode: ctx.mode,
      demo: ctx.demo,
      aggregate,
      intervalMs: ctx.intervalMs,
      startedAt: new Date(ctx.startedAt).toISOString(),
      uptimeMs: Math.max(0, now - ctx.startedAt),
      flows: count,
      maxEntries: ctx.maxEntries,
      totals,
      rates: {
        packets: rateOf(totals.packets, p.packets),
        counted: rateOf(totals.counted, p.counted),
        excluded: rateOf(totals.excluded, p.excluded),
      },
      entries,
      sources,
      excluded: [...ctx.excluded],
    };
    this.#prevTotals = totals;
    this.#prevTime = now;
    return snap;
  }

  #source(f: FlowSample): SourceState {
    const a = f.saddr;
    if (f.family === 4) {
      const o = a.length === 16 ? 12 : 0;
      const n = ((a[o]! << 24) | (a[o + 1]! << 16) | (a[o + 2]! << 8) | a[o + 3]!) >>> 0;
      let s = this.#v4.get(n);
      if (s === undefined) {
        s = new SourceState(formatAddress(a, 4), 4);
        this.#v4.set(n, s);
      }
      return s;
    }
    const bytes = String.fromCharCode(
      (a[0]! << 8) | a[1]!, (a[2]! << 8) | a[3]!, (a[4]! << 8) | a[5]!, (a[6]! << 8) | a[7]!,
      (a[8]! << 8) | a[9]!, (a[10]! << 8) | a[11]!, (a[12]! << 8) | a[13]!, (a[14]! << 8) | a[15]!,
    );
    let s = this.#v6.get(bytes);
    if (s === undefined) {
      s = new SourceState(formatAddress(a, f.family), f.family);
      this.#v6.set(bytes, s);
    }
    return s;
  }

  /** Drops sources absent from this read once the caches hold far more than the table. */
  #forget(read: number, flows: number): void {
    if (this.#v4.size + this.#v6.size <= 2 * flows + 1024) return;
    for (const cache of [this.#v4, this.#v6] as Map<unknown, SourceState>[]) {
      for (const [k, s] of cache) if (s.read !== read) cache.delete(k);
    }
  }
}

/** An empty snapshot for before the first read. */
export function emptySnapshot(ctx: SnapshotContext, now: number = Date.now()): Snapshot {
  return new SnapshotBuilder(ctx).build([], ZERO_TOTALS, now);
}

// ---- Text ------------------------------------------------------------------------------------

/** 1234567 -> "1,234,567". */
export function groupDigits(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function formatRate(r: number): string {
  if (r >= 100) return Math.round(r).toString();
  return r.toFixed(1);
}

/** 61234 -> "1m 01s". */
export function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m ${String(sec).padStart(2, '0')}s`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${(ms / 1000).toFixed(1)}s`;
}

function clock(iso: string): string {
  const d = new Date(iso);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** The flow rows in the seed's style, aligned: `192.168.5.2:58597 => :22  tcp | 51   3.0/s`. */
export function formatRows(entries: readonly FlowEntry[], indent = '  ', rateOf: (e: FlowEntry) => number = (e) => e.rate): string[] {
  if (entries.length === 0) return [`${indent}(no TCP or UDP packets yet)`];
  const labels = entries.map(flowLabel);
  const lw = Math.max(...labels.map((l) => l.length));
  const counts = entries.map((e) => groupDigits(e.packets));
  const cw = Math.max(...counts.map((c) => c.length));
  const rates = entries.map((e) => formatRate(rateOf(e)));
  const rw = Math.max(...rates.map((r) => r.length));
  return entries.map((e, i) => `${indent}${labels[i]!.padEnd(lw)}  ${e.proto.padEnd(3)} | ${counts[i]!.padStart(cw)}  ${rates[i]!.padStart(rw)}/s`);
}

/** What is printed every interval. */
export function formatSnapshot(s: Snapshot): string {
  const t = s.totals;
  const head = `${clock(s.time)} ${s.iface}: ${groupDigits(t.packets)} packets (${formatRate(s.rates.packets)}/s), ` +
    `${groupDigits(s.flows)} flow${s.flows === 1 ? '' : 's'}` +
    (t.excluded > 0 || s.excluded.length > 0 ? `, ${groupDigits(t.excluded)} excluded` : '') +
    (t.nonIp + t.otherL4 > 0 ? `, ${groupDigits(t.nonIp + t.otherL4)} not TCP/UDP` : '') +
    (t.untracked > 0 ? `, ${groupDigits(t.untracked)} untracked` : '');
  return `${[head, ...formatRows(s.entries)].join('\n')}\n`;
}

/** What is printed when pktcount stops. */
export function formatSummary(s: Snapshot, detachedFrom: string): string {
  const t = s.totals;
  const lines = [
    `pktcount: detached from ${detachedFrom} after ${formatUptime(s.uptimeMs)}`,
    `  packets seen  ${groupDigits(t.packets)}`,
    `  counted       ${groupDigits(t.counted)} in ${groupDigits(s.flows)} flow${s.flows === 1 ? '' : 's'}${s.flows >= s.maxEntries ? ` (the table is full at ${groupDigits(s.maxEntries)}: raise --max-entries)` : ''}`,
    `  excluded      ${groupDigits(t.excluded)}${s.excluded.length ? ` (${s.excluded.join(', ')})` : ''}`,
    `  not TCP/UDP   ${groupDigits(t.nonIp)} non-IP, ${groupDigits(t.otherL4)} other IP`,
  ];
  if (t.malformed > 0) lines.push(`  malformed     ${groupDigits(t.malformed)}`);
  if (t.untracked > 0) lines.push(`  untracked     ${groupDigits(t.untracked)} (flow table could not take them)`);
  if (s.entries.length > 0) {
    // Over the whole run: the last interval may have been cut short by the stop.
    const secs = Math.max(s.uptimeMs, 1) / 1000;
    lines.push(`  top ${s.entries.length} flow${s.entries.length === 1 ? '' : 's'} (packets, average per second):`);
    lines.push(...formatRows(s.entries, '    ', (e) => e.packets / secs));
  }
  return `${lines.join('\n')}\n`;
}
