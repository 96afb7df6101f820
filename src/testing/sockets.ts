/**
 * Socket lookups of tc and XDP programs (bpf_sk_lookup_tcp/_udp, bpf_skc_lookup_tcp,
 * bpf_sk_release) against sockets the test declares, as net/core/filter.c's sk_lookup finds them
 * in the caller's network namespace: established TCP sockets by their four-tuple first, then
 * listeners; UDP sockets by the most specific match. A socket found is a read-only
 * `struct bpf_sock`.
 */
import { isIP } from 'node:net';
import { bpf_sock as SK, __sk_buff as SKB } from '../abi/uapi.js';
import { InvalidArgumentError } from '../errors.js';
import { Region, type HelperFn, type Vm } from './interpreter.js';
import { mem, ret, size, u32, u64 } from './args.js';

/** A socket of the emulated network namespace, for the socket lookup helpers. */
export interface EmulatedSocket {
  protocol: 'tcp' | 'udp';
  /** The bound address, IPv4 or IPv6 ("0.0.0.0" or "::" for any). */
  localAddress: string;
  localPort: number;
  /** The peer of a connected socket (an established TCP socket, a connected UDP one). */
  remoteAddress?: string;
  remotePort?: number;
  /** TCP only: a listener, or (the default with a remote address) an established connection. */
  state?: 'listen' | 'established';
  /** SO_BINDTODEVICE's ifindex (0, the default: any device). */
  boundDevice?: number;
  /** SO_MARK and SO_PRIORITY, as `struct bpf_sock` shows them. */
  mark?: number;
  priority?: number;
  /**
   * The receive queue the kernel recorded for the socket (`rx_queue_mapping`), from the packet
   * that made it: unset (-1) unless that packet came through a queue-recording device.
   */
  rxQueue?: number;
}

const AF_INET = 2;
const AF_INET6 = 10;
const TCP_ESTABLISHED = 1;
const TCP_CLOSE = 7;
const TCP_LISTEN = 10;
/** sizeof(bpf_sock_tuple.ipv4) and .ipv6. */
const TUPLE4 = 12;
const TUPLE6 = 36;

/** An address as 16 bytes (IPv4 in the first 4, network order) and its family. */
function parseAddress(a: string, what: string): { family: 4 | 6; bytes: Uint8Array } {
  const family = isIP(a);
  if (family === 4) return { family, bytes: Uint8Array.from([...a.split('.').map(Number), ...new Array(12).fill(0)]) };
  if (family !== 6) throw new InvalidArgumentError(`emulated socket: ${what} ${JSON.stringify(a)} is not an IPv4 or IPv6 address`);
  const [head, tail] = a.split('::') as [string, string | undefined];
  const words = (s: string | undefined) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  const bytes = new Uint8Array(16);
  all.forEach((w, i) => bytes.set([w >> 8, w & 0xff], 2 * i));
  return { family: 6, bytes };
}

const same = (a: Uint8Array, b: Uint8Array) => a.every((x, i) => x === b[i]);
const isAny = (a: Uint8Array) => a.every((x) => x === 0);

/** A declared socket checked and laid out: its addresses and its `struct bpf_sock` image. */
interface Sock {
  tcp: boolean;
  family: 4 | 6;
  local: Uint8Array;
  remote: Uint8Array | undefined;
  localPort: number;
  remotePort: number;
  listen: boolean;
  dev: number;
  region: Region;
}

function port(p: number | undefined, what: string): number {
  if (p === undefined || !Number.isInteger(p) || p < 0 || p > 0xffff) throw new InvalidArgumentError(`emulated socket: ${what} ${p} is not a port number (0 to 65535)`);
  return p;
}

function layout(s: EmulatedSocket): Sock {
  const tcp = s.protocol === 'tcp';
  if (!tcp && s.protocol !== 'udp') throw new InvalidArgumentError(`emulated socket: protocol ${JSON.stringify(s.protocol)} is not "tcp" or "udp"`);
  const local = parseAddress(s.localAddress, 'localAddress');
  const remote = s.remoteAddress === undefined ? undefined : parseAddress(s.remoteAddress, 'remoteAddress');
  if (remote && remote.family !== local.family) throw new InvalidArgumentError(`emulated socket: ${s.localAddress} and ${s.remoteAddress} are of different families`);
  const listen = tcp && (s.state ?? (remote ? 'established' : 'listen')) === 'listen';
  if (tcp && !listen && !remote) throw new InvalidArgumentError('emulated socket: an established TCP socket needs remoteAddress and remotePort');
  const localPort = port(s.localPort, 'localPort');
  const remotePort = remote ? port(s.remotePort, 'remotePort') : 0;
  const b = new Uint8Array(SK.$size);
  const v = new DataView(b.buffer);
  v.setUint32(SK.bound_dev_if, s.boundDevice ?? 0, true);
  v.setUint32(SK.family, local.family === 4 ? AF_INET : AF_INET6, true);
  v.setUint32(SK.type, tcp ? 1 : 2, true); // SOCK_STREAM, SOCK_DGRAM
  v.setUint32(SK.protocol, tcp ? 6 : 17, true);
  v.setUint32(SK.mark, s.mark ?? 0, true);
  v.setUint32(SK.priority, s.priority ?? 0, true);
  // The other family's fields as the kernel leaves them: a connected IPv4 socket's addresses also
  // as v4-mapped IPv6 (sk_rcv_saddr_set, sk_daddr_set); an IPv6 socket's IPv4 fields hold
  // LOOPBACK4_IPV6 (127.0.0.6) for a specific non-mapped address (inet6_bind, tcp_v6_connect).
  const put = (a: Uint8Array, ip4: number, ip6: number, connected: boolean) => {
    if (local.family === 4) {
      b.set(a.subarray(0, 4), ip4);
      if (connected) b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...a.subarray(0, 4)], ip6);
      return;
    }
    b.set(a, ip6);
    const mapped = a.subarray(0, 10).every((x) => x === 0) && a[10] === 0xff && a[11] === 0xff;
    if (mapped) b.set(a.subarray(12), ip4);
    else if (!isAny(a)) b.set([127, 0, 0, 6], ip4);
  };
  put(local.bytes, SK.src_ip4, SK.src_ip6, !!remote);
  if (remote) put(remote.bytes, SK.dst_ip4, SK.dst_ip6, true);
  v.setUint32(SK.src_port, localPort, true);
  v.setUint16(SK.dst_port, remotePort, false); // __be16
  v.setUint32(SK.state, listen ? TCP_LISTEN : remote ? TCP_ESTABLISHED : TCP_CLOSE, true);
  v.setInt32(SK.rx_queue_mapping, s.rxQueue ?? -1, true); // sk_rx_queue_get: -1 when none was recorded
  const region = new Region('sock', b, `a socket (struct bpf_sock) ${s.protocol} ${s.localAddress}:${localPort}`);
  region.writable = false;
  return { tcp, family: local.family, local: local.bytes, remote: remote?.bytes, localPort, remotePort, listen, dev: s.boundDevice ?? 0, region };
}

const laidOut = new WeakMap<EmulatedSocket, Sock>();

function sockOf(s: EmulatedSocket): Sock {
  let k = laidOut.get(s);
  if (!k) laidOut.set(s, (k = layout(s)));
  return k;
}

/** Checks a declared socket (bad addresses or ports throw InvalidArgumentError). */
export function checkSocket(s: EmulatedSocket): void {
  sockOf(s);
}


/**
 * sk_lookup: `src`/`sport` are the tuple's source (the peer), `dst`/`dport` the local end; `dif`
 * the device of the packet. TCP: an established socket by its four-tuple, else the best
 * listener; UDP: the best bound socket (a connected one must match the source too).
 */
function lookup(sockets: readonly EmulatedSocket[], tcp: boolean, family: 4 | 6, src: Uint8Array, sport: number, dst: Uint8Array, dport: number, dif: number): Sock | undefined {
  let best: Sock | undefined;
  let bestScore = -1;
  for (const decl of sockets) {
    const k = sockOf(decl);
    if (k.tcp !== tcp || k.family !== family || k.localPort !== dport || (k.dev && k.dev !== dif)) continue;
    if (tcp && !k.listen) {
      if (k.remote && same(k.local, dst) && same(k.remote, src) && k.remotePort === sport) return k;
      continue;
    }
    let score = 1;
    if (!isAny(k.local)) {
      if (!same(k.local, dst)) continue;
      score += 4;
    }
    if (k.remote) {
      if (!same(k.remote, src) || k.remotePort !== sport) continue;
      score += 4;
    }
    if (k.dev) score += 4;
    if (score > bestScore) {
      best = k;
      bestScore = score;
    }
  }
  return best;
}

/** bpf_sk_lookup_tcp/_udp and bpf_skc_lookup_tcp: the socket, or NULL (also for bad sizes, flags or a netns id). */
function skLookup(id: number, tcp: boolean) {
  return (vm: Vm): void => {
    const len = size(vm, 3);
    const tuple = mem(vm, 2, len, false, id, 'tuple');
    const netns = u64(vm, 4);
    const flags = u64(vm, 5);
    if (len !== TUPLE4 && len !== TUPLE6) return ret(vm, 0);
    const s32 = Number(BigInt.asIntN(32, netns));
    // Only the caller's namespace (a negative id, BPF_F_CURRENT_NETNS): the emulator has no other.
    if (flags || s32 >= 0) return ret(vm, 0);
    const family = len === TUPLE4 ? 4 : 6;
    const addr = (o: number) => {
      const a = new Uint8Array(16);
      a.set(tuple.subarray(o, o + (family === 4 ? 4 : 16)));
      return a;
    };
    const ports = family === 4 ? 8 : 32;
    const be = (o: number) => (tuple[o]! << 8) | tuple[o + 1]!;
    // The packet's device: the skb's, or loopback for an XDP test run on its default device.
    const dif = vm.skb ? new DataView(vm.skb.ctx.buffer, vm.skb.ctx.byteOffset).getUint32(SKB.ifindex, true) : 1;
    const k = lookup(vm.env.sockets, tcp, family, addr(0), be(ports), addr(family === 4 ? 4 : 16), be(ports + 2), dif);
    if (!k) return ret(vm, 0);
    vm.setPtr(0, k.region, 0);
  };
}

/** bpf_sk_release: the emulator counts no references. */
function skRelease(vm: Vm): void {
  void u32(vm, 1);
  ret(vm, 0);
}

export const SOCKET_HELPERS: Record<number, HelperFn> = {
  84: skLookup(84, true), 85: skLookup(85, false), 86: skRelease, 99: skLookup(99, true),
};
