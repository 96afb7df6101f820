/**
 * XDP SYN dump (goebpf's xdp_dump example): an XDP program on an interface sends every TCP packet
 * with the SYN flag that arrives there (connection attempts, and the SYN-ACKs answering them)
 * through a perf event array, together with the packet's first bytes; this prints each one: the
 * time, source and destination address and port, the TCP flags, and a hex dump of the packet in
 * the layout of `hexdump -C`. Samples the kernel had to drop because a ring was full are counted
 * and reported. Ctrl-C (or SIGTERM) detaches and exits.
 *
 *   sudo node dist/examples/xdp-syn-dump/main.js --iface veth0
 *
 * The kernel side is syn_dump.bpf.c: it never copies the packet itself; bpf_perf_event_output
 * appends the packet's first `snaplen` bytes to the event when that length is in the upper 32 bits
 * of its flags (BPF_F_CTXLEN_MASK).
 */
import { endianness } from 'node:os';
import { attachXdp, BpfkitError, Collection, CollectionSpec, PerfReader, type Link, type PerfRecord } from '../../src/index.js';
import {
  grouped, interfaceArg, isMain, objectPath, parseCommandLine, requireCapabilities, requireMap, requireProgram, runCommand,
  UsageError, xdpModeArg, type RunOptions,
} from '../common.js';

const TOOL = 'xdp-syn-dump';

export const DEFAULT_SNAPLEN = 256;
export const MAX_SNAPLEN = 16384;

export const usage = `usage: node dist/examples/xdp-syn-dump/main.js --iface IF [options]

Prints every TCP SYN (and SYN-ACK) arriving on IF: time, source and destination
address and port, TCP flags, and a hex dump of the packet's first bytes.
Ctrl-C detaches and exits.

options:
  --iface IF          the interface to attach to (required)
  --snaplen BYTES     how many bytes of each packet to dump (default ${DEFAULT_SNAPLEN}, at most ${MAX_SNAPLEN})
  --count N           exit after N packets (default: run until Ctrl-C)
  --mode MODE         XDP mode: native or skb (default: native where the driver has it)
  --object PATH       the compiled program (default test/bpf/build/syn_dump.bpf.o)
  -h, --help          show this help
`;

/** sizeof(struct syn_event) in syn_dump.bpf.c; the packet bytes follow it. */
export const EVENT_SIZE = 64;
/** Per-CPU perf ring: room for a burst of about a thousand SYNs of 256 bytes. */
const RING_BYTES = 512 * 1024;

const HOST_LE = endianness() === 'LE';

/** One event of syn_dump.bpf.c. */
export interface SynEvent {
  /** bpf_ktime_get_ns() when the packet arrived (CLOCK_MONOTONIC). */
  monotonicNs: bigint;
  ifindex: number;
  family: 4 | 6;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  /** Byte 13 of the TCP header. */
  tcpFlags: number;
  /** Length of the whole packet. */
  length: number;
  /** Its first bytes, Ethernet header included (at most --snaplen of them). */
  packet: Uint8Array;
}

/** Decodes a sample: struct syn_event (64 bytes, see syn_dump.bpf.c) then cap_len packet bytes. */
export function parseSynEvent(data: Uint8Array): SynEvent {
  if (data.length < EVENT_SIZE) {
    throw new BpfkitError('ERR_BPFKIT_EXAMPLE', `a SYN event is ${EVENT_SIZE} bytes or more, got ${data.length}: is the object syn_dump.bpf.o?`);
  }
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const family = data[24];
  if (family !== 4 && family !== 6) throw new BpfkitError('ERR_BPFKIT_EXAMPLE', `unknown address family ${String(family)} in a SYN event`);
  const cap = Math.min(v.getUint32(16, HOST_LE), data.length - EVENT_SIZE);
  const addr = (at: number): string => (family === 4 ? formatIpv4(data.subarray(at, at + 4)) : formatIpv6(data.subarray(at, at + 16)));
  return {
    monotonicNs: v.getBigUint64(0, HOST_LE),
    ifindex: v.getUint32(8, HOST_LE),
    length: v.getUint32(12, HOST_LE),
    sport: v.getUint16(20, false), // network order
    dport: v.getUint16(22, false),
    family,
    tcpFlags: data[25]!,
    saddr: addr(28),
    daddr: addr(44),
    packet: data.slice(EVENT_SIZE, EVENT_SIZE + cap),
  };
}

export function formatIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/**
 * RFC 5952: lower case, no leading zeros, the longest run of two or more zero groups as "::".
 * That is how the WHATWG URL parser writes an IPv6 host, so it does the work.
 */
export function formatIpv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** TCP flags as tcpdump writes them: S SYN, F FIN, R RST, P PUSH, U URG, E ECE, W CWR, "." ACK. */
export function tcpFlags(flags: number): string {
  let s = '';
  if (flags & 0x02) s += 'S';
  if (flags & 0x01) s += 'F';
  if (flags & 0x04) s += 'R';
  if (flags & 0x08) s += 'P';
  if (flags & 0x20) s += 'U';
  if (flags & 0x40) s += 'E';
  if (flags & 0x80) s += 'W';
  if (flags & 0x10) s += '.';
  return `[${s}]`;
}

const printable = (b: number): string => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.');

/**
 * The bytes as `hexdump -C` shows them: offset, 16 bytes in two groups of 8, the printable
 * characters between bars; a line equal to the one before it becomes a single "*", and the last
 * line is the length. Empty input gives an empty string, as with hexdump.
 */
export function hexdump(bytes: Uint8Array): string {
  if (bytes.length === 0) return '';
  const lines: string[] = [];
  let previous: string | undefined;
  let starred = false;
  for (let off = 0; off < bytes.length; off += 16) {
    const line = bytes.subarray(off, off + 16);
    let hex = '';
    let text = '';
    for (let i = 0; i < 16; i++) {
      hex += i < line.length ? `${line[i]!.toString(16).padStart(2, '0')} ` : '   ';
      if (i === 7) hex += ' ';
      if (i < line.length) text += printable(line[i]!);
    }
    if (line.length === 16 && hex === previous) {
      if (!starred) lines.push('*');
      starred = true;
      continue;
    }
    previous = line.length === 16 ? hex : undefined;
    starred = false;
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex} |${text}|`);
  }
  lines.push(bytes.length.toString(16).padStart(8, '0'));
  return `${lines.join('\n')}\n`;
}

/** Turns bpf_ktime_get_ns() values into wall-clock times (both clocks read once, at start). */
export function monotonicToWall(): (monotonicNs: bigint) => bigint {
  // process.hrtime is CLOCK_MONOTONIC, the clock bpf_ktime_get_ns reads.
  const offset = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return (ns) => ns + offset;
}

/** "12:34:56.789012", local time. */
export function clockMicros(wallNs: bigint): string {
  const d = new Date(Number(wallNs / 1_000_000n));
  const micros = Number((wallNs / 1000n) % 1_000_000n);
  return `${d.toTimeString().slice(0, 8)}.${String(micros).padStart(6, '0')}`;
}

/** The line printed for a packet, before its hex dump. */
export function describe(ev: SynEvent, wallNs: bigint): string {
  const at = (addr: string, port: number): string => (ev.family === 6 ? `[${addr}]:${port}` : `${addr}:${port}`);
  const kind = ev.tcpFlags & 0x10 ? 'SYN-ACK' : 'SYN';
  const size = ev.packet.length < ev.length ? `length ${ev.length}, first ${ev.packet.length} bytes` : `length ${ev.length}`;
  return `${clockMicros(wallNs)} ${kind} ${at(ev.saddr, ev.sport)} -> ${at(ev.daddr, ev.dport)} flags ${tcpFlags(ev.tcpFlags)} ${size}`;
}

function integerArg(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`invalid --${name} "${text}": expected a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Runs the dump until options.signal aborts (or --count packets were printed); returns the exit code. */
export async function run(argv: string[], options: RunOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const values = parseCommandLine(argv, usage, out, {
    snaplen: { type: 'string' },
    count: { type: 'string' },
    mode: { type: 'string' },
  });
  if (values === undefined) return 0;
  // The command line first: its mistakes are reported without root and before anything is loaded.
  const mode = xdpModeArg(values.mode);
  const snaplen = integerArg('snaplen', values.snaplen, 1, MAX_SNAPLEN) ?? DEFAULT_SNAPLEN;
  const count = integerArg('count', values.count, 1, Number.MAX_SAFE_INTEGER);
  const iface = interfaceArg(values.iface);
  const path = objectPath('syn_dump', values.object);
  requireCapabilities(TOOL, ['CAP_BPF', 'CAP_NET_ADMIN']);

  const spec = await CollectionSpec.fromFile(path);
  const snap = spec.variables.get('snaplen');
  if (!snap) throw new BpfkitError('ERR_BPFKIT_EXAMPLE', `${path} has no variable "snaplen": is it the right object?`);
  snap.set(snaplen);
  const coll = await Collection.load(spec);
  let link: Link | undefined;
  let reader: PerfReader | undefined;
  try {
    const events = requireMap(coll.maps, 'syn_events', path);
    const prog = requireProgram(coll.programs, 'xdp_syn_dump', path);

    // The rings are in the map before the program runs: no SYN finds it empty.
    reader = new PerfReader(events, { perCpuBuffer: RING_BYTES });
    link = attachXdp(prog, iface.name, mode ? { mode } : {});
    const progId = prog.info().id;
    const toWall = monotonicToWall();
    out.write(`${TOOL}: dumping TCP SYNs arriving on ${iface.name} (ifindex ${iface.index}, ` +
      `${link.kind === 'xdp' ? 'XDP link' : 'netlink'}, mode ${mode ?? 'default'}, program ${prog.name} id ${progId}, ` +
      `first ${snaplen} bytes of each); Ctrl-C to detach\n`);

    // Ends the loop on Ctrl-C (options.signal) or after --count packets.
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) stop.abort();
    let packets = 0;
    let lost = 0;
    const handle = (rec: PerfRecord): void => {
      if (rec.lost !== undefined) {
        lost += rec.lost;
        out.write(`lost ${grouped(rec.lost)} SYN events on CPU ${rec.cpu} (its perf ring was full)\n`);
        return;
      }
      if (count !== undefined && packets >= count) return;
      const ev = parseSynEvent(rec.data);
      packets++;
      out.write(`${describe(ev, toWall(ev.monotonicNs))}\n${hexdump(ev.packet)}\n`);
      if (count !== undefined && packets >= count) stop.abort();
    };
    try {
      for await (const rec of reader.records({ signal: stop.signal })) {
        handle(rec);
        if (stop.signal.aborted) break;
      }
    } catch (e) {
      if (!stop.signal.aborted) throw e;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }

    link.close();
    link = undefined;
    // What arrived before the program was detached is still in the rings.
    for (let rec = reader.readSync(); rec !== undefined; rec = reader.readSync()) handle(rec);
    out.write(`${TOOL}: detached from ${iface.name}; ${grouped(packets)} SYN packet${packets === 1 ? '' : 's'} dumped, ${grouped(lost)} lost\n`);
    return 0;
  } finally {
    link?.close();
    reader?.close();
    coll.close();
  }
}

if (isMain(import.meta.url)) runCommand(TOOL, usage, run);
