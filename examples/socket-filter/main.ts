/**
 * Socket filter packet counter (goebpf's socket filter example): a BPF program attached to a raw
 * AF_PACKET socket bound to an interface sees every frame the interface receives or sends,
 * counts it by protocol (TCP, UDP, ICMP, other) and keeps none of it, so no packet is ever
 * queued to this process: the counts are read from the program's map. Prints them every second;
 * Ctrl-C (or SIGTERM) closes the socket, which detaches the filter.
 *
 *   sudo node dist/examples/socket-filter/main.js --iface veth0
 *
 * The kernel side is socket_filter.bpf.c (count_packets and its per-CPU array "counts").
 */
import { endianness } from 'node:os';
import { attachSocketFilter, BpfSyscallError, Collection, CollectionSpec, native, type Link } from '../../src/index.js';
import {
  announce, countUntilAborted, COUNTER_FLAGS, grouped, interfaceArg, intervalArg, isMain, objectPath, parseCommandLine,
  readCounter, requireCapabilities, requireMap, requireProgram, runCommand, table, type Counter, type RunOptions,
} from '../common.js';

const TOOL = 'socket-filter';

export const usage = `usage: node dist/examples/socket-filter/main.js --iface IF [options]

Counts the packets and bytes IF receives and sends, by protocol (TCP, UDP, ICMP,
other), with a socket filter on a raw packet socket, and prints them every second.
Ctrl-C detaches and exits.

options:
  --iface IF          the interface to watch (required)
  --interval SECONDS  how often to print (default 1)
  --json              print one JSON object per line instead of tables
  --object PATH       the compiled program (default test/bpf/build/socket_filter.bpf.o)
  -h, --help          show this help
`;

/** Keys of "counts" in socket_filter.bpf.c. */
export const PROTOCOLS = ['tcp', 'udp', 'icmp', 'other'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
export type Snapshot = Record<Protocol, Counter>;

const AF_PACKET = 17;
const SOCK_RAW = 3;
const ETH_P_ALL = 0x0003;

const HOST_LE = endianness() === 'LE';

/** struct sockaddr_ll for bind(): family, protocol (an ETH_P_* value), ifindex; the rest zero. */
function sockaddrLl(ifindex: number, protocol: number): Uint8Array {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_PACKET, HOST_LE); // sll_family, host order
  v.setUint16(2, protocol, false); // sll_protocol, network order: htons(protocol)
  v.setInt32(4, ifindex, HOST_LE); // sll_ifindex, host order
  return b;
}

/**
 * A raw packet socket that receives every frame of one interface, with the filter attached
 * before it receives anything: the socket is created with protocol 0 (which receives nothing),
 * the filter attached, and only then bound to the interface with ETH_P_ALL. (Creating it with
 * htons(ETH_P_ALL) would start receiving from every interface, unfiltered, until bind().)
 */
function openFilteredSocket(ifindex: number, label: string, attach: (fd: number) => Link): { fd: number; link: Link } {
  const n = native();
  const fd = n.socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) {
    throw new BpfSyscallError(fd, 'socket(AF_PACKET, SOCK_RAW)', 'open a raw packet socket',
      -fd === 1 ? 'raw packet sockets need CAP_NET_RAW (run as root)' : -fd === 97 ? 'the kernel has no AF_PACKET support' : undefined);
  }
  try {
    const link = attach(fd);
    const r = n.bind(fd, sockaddrLl(ifindex, ETH_P_ALL));
    if (r < 0) {
      link.close();
      throw new BpfSyscallError(r, 'bind(AF_PACKET)', `bind the packet socket to ${label}`, -r === 19 ? `interface ${label} does not exist (any more)` : undefined);
    }
    return { fd, link };
  } catch (e) {
    n.close(fd);
    throw e;
  }
}

/** Runs the counter until options.signal aborts; returns the exit code. */
export async function run(argv: string[], options: RunOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const values = parseCommandLine(argv, usage, out, COUNTER_FLAGS);
  if (values === undefined) return 0;
  const intervalMs = intervalArg(values.interval);
  const iface = interfaceArg(values.iface);
  const path = objectPath('socket_filter', values.object);
  requireCapabilities(TOOL, ['CAP_BPF', 'CAP_NET_RAW']);

  const coll = await Collection.load(await CollectionSpec.fromFile(path));
  let sock: { fd: number; link: Link } | undefined;
  const closeSocket = (): void => {
    if (!sock) return;
    const { fd, link } = sock;
    sock = undefined;
    try {
      link.close();
    } finally {
      native().close(fd);
    }
  };
  try {
    const counts = requireMap(coll.maps, 'counts', path);
    const prog = requireProgram(coll.programs, 'count_packets', path);
    sock = openFilteredSocket(iface.index, iface.name, (fd) => attachSocketFilter(prog, fd));
    const progId = prog.info().id;
    const json = values.json === true;
    announce(out, json, iface, { socket: sock.fd, program: { name: prog.name, id: progId } },
      `${TOOL}: counting packets on ${iface.name} (ifindex ${iface.index}) with ${prog.name} (id ${progId}) ` +
      `on packet socket fd ${sock.fd}; Ctrl-C to detach`);

    await countUntilAborted<Snapshot>({
      tool: TOOL, iface, intervalMs, json, out, signal: options.signal, totals: 'counted',
      snapshot: () => Object.fromEntries(PROTOCOLS.map((p, i) => [p, readCounter(counts, i)])) as Snapshot,
      render: (s, title) => `${title}\n${table([
        ['PROTOCOL', 'PACKETS', 'BYTES'],
        ...PROTOCOLS.map((p) => [p.toUpperCase(), grouped(s[p].packets), grouped(s[p].bytes)]),
      ])}\n`,
      detach: closeSocket,
    });
    return 0;
  } finally {
    try {
      closeSocket();
    } finally {
      coll.close();
    }
  }
}

if (isMain(import.meta.url)) runCommand(TOOL, usage, run);
