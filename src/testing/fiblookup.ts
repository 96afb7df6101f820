/**
 * bpf_fib_lookup (helper 69) for XDP and tc programs, as net/core/filter.c's
 * bpf_xdp_fib_lookup / bpf_skb_fib_lookup and bpf_ipv4_fib_lookup / bpf_ipv6_fib_lookup do it
 * against the emulated kernel's FIB (fib.ts): the same checks in the same order, the same
 * BPF_FIB_LKUP_RET_* codes, and the same fields written back into the caller's struct in place,
 * including those written before a later failure (ifindex and the gateway before NO_NEIGH, tbid
 * zeroed before the table lookup).
 */
import { EAFNOSUPPORT, EINVAL, ENODEV } from '../abi/errno.js';
import { bpf_fib_lookup as P } from '../abi/uapi.js';
import { Trap, type Vm } from './interpreter.js';
import { mem, ret, size, u32 } from './args.js';
import { RT_TABLE_MAIN, RT_TABLE_LOCAL, type Fib, type FibEntry } from './fib.js';

const AF_INET = 2;
const AF_INET6 = 10;

const LOOKUP_DIRECT = 1 << 0;
const LOOKUP_OUTPUT = 1 << 1;
const LOOKUP_SKIP_NEIGH = 1 << 2;
const LOOKUP_TBID = 1 << 3;
const LOOKUP_SRC = 1 << 4;
/** BPF_FIB_LOOKUP_MARK (6.10): without policy rules the mark changes no lookup, only the flag check. */
const LOOKUP_MARK = 1 << 5;

/** BPF_FIB_LKUP_RET_*. */
export const FIB_RET = {
  SUCCESS: 0, BLACKHOLE: 1, UNREACHABLE: 2, PROHIBIT: 3, NOT_FWDED: 4, FWD_DISABLED: 5, UNSUPP_LWT: 6, NO_NEIGH: 7, FRAG_NEEDED: 8, NO_SRC_ADDR: 9,
} as const;

const RT_TABLE_DEFAULT = 253;
const IP_MAX_MTU = 0xffff;
const IPV6_MIN_MTU = 1280;
const ETH_HLEN = 14;
const VLAN_HLEN = 4;

/** The caller's struct bpf_fib_lookup, read and written in place. */
class Params {
  readonly v: DataView;
  constructor(readonly b: Uint8Array) {
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  get family(): number {
    return this.b[P.family]!;
  }
  get totLen(): number {
    return this.v.getUint16(P.tot_len, true);
  }
  set mtuResult(mtu: number) {
    this.v.setUint16(P.mtu_result, mtu & 0xffff, true);
  }
  get ifindex(): number {
    return this.v.getUint32(P.ifindex, true);
  }
  set ifindex(i: number) {
    this.v.setUint32(P.ifindex, i, true);
  }
  set rtMetric(m: number) {
    this.v.setUint32(P.rt_metric, m >>> 0, true);
  }
  /** tbid, zeroed as it is read (it shares its bytes with the VLAN fields written on success). */
  takeTbid(): number {
    const t = this.v.getUint32(P.tbid, true);
    this.v.setUint32(P.tbid, 0, true);
    return t;
  }
  addr(at: number, n: number): Uint8Array {
    return this.b.subarray(at, at + n);
  }
  /** bpf_fib_set_fwd_params: VLAN fields cleared, the MTU when one was checked. */
  forward(mtu: number): number {
    this.v.setUint16(P.h_vlan_TCI, 0, true);
    this.v.setUint16(P.h_vlan_proto, 0, true);
    if (mtu) this.mtuResult = mtu;
    return FIB_RET.SUCCESS;
  }
  macs(fib: Fib, route: FibEntry, neigh: Uint8Array): void {
    this.b.set(neigh, P.dmac);
    this.b.set(fib.devices.get(route.dev)!.mac, P.smac);
  }
}

const REJECT: Partial<Record<FibEntry['type'], number>> = { blackhole: FIB_RET.BLACKHOLE, unreachable: FIB_RET.UNREACHABLE, prohibit: FIB_RET.PROHIBIT };

/** The table BPF_FIB_LOOKUP_DIRECT searches: main, or params->tbid with BPF_FIB_LOOKUP_TBID (read and zeroed). */
function directTable(p: Params, flags: number): number {
  return flags & LOOKUP_TBID ? p.takeTbid() : RT_TABLE_MAIN;
}

/**
 * The steps both families share, from the table search to the MTU check: the unicast route and
 * the MTU checked (0 when none was), or the code to return. `search` is the lookup without
 * BPF_FIB_LOOKUP_DIRECT (the family's table order).
 */
function findRoute(fib: Fib, p: Params, family: 4 | 6, flags: number, dst: Uint8Array, oif: number, checkMtu: boolean, search: () => FibEntry | undefined): number | { route: FibEntry; mtu: number } {
  let route: FibEntry | undefined;
  if (flags & LOOKUP_DIRECT) {
    const table = directTable(p, flags);
    if (!fib.hasTable(family, table)) return FIB_RET.NOT_FWDED;
    route = fib.lookup(family, table, dst, oif);
  } else {
    route = search();
  }
  if (!route) return FIB_RET.NOT_FWDED;
  const reject = REJECT[route.type];
  if (reject !== undefined) return reject;
  if (route.type !== 'unicast') return FIB_RET.NOT_FWDED;
  if (!checkMtu) return { route, mtu: 0 };
  // ip_mtu_from_fib_result / ip6_mtu_from_fib6: a locked route MTU, else the device's (IPv6: at least 1280).
  const dev = fib.devices.get(route.dev)!.mtu;
  const mtu = route.mtu || Math.min(family === 6 ? Math.max(IPV6_MIN_MTU, dev) : dev, IP_MAX_MTU);
  if (p.totLen > mtu) {
    p.mtuResult = mtu;
    return FIB_RET.FRAG_NEEDED;
  }
  return { route, mtu };
}

/** The end both families share: the neighbour of `nextHop` on the output device (unless SKIP_NEIGH), the MACs, the forward fields. */
function neighbourAndForward(fib: Fib, p: Params, route: FibEntry, flags: number, mtu: number, nextHop: Uint8Array): number {
  if (flags & LOOKUP_SKIP_NEIGH) return p.forward(mtu);
  const neigh = fib.neighbour(route.dev, nextHop);
  if (!neigh) return FIB_RET.NO_NEIGH;
  p.macs(fib, route, neigh);
  return p.forward(mtu);
}

function ipv4Lookup(fib: Fib, p: Params, flags: number, checkMtu: boolean): number {
  const dev = fib.devices.get(p.ifindex);
  if (!dev) return -ENODEV;
  if (!dev.forwarding.ipv4) return FIB_RET.FWD_DISABLED;
  const oif = flags & LOOKUP_OUTPUT ? p.ifindex : 0;
  const dst = p.addr(P.ipv4_dst, 4);
  // fib_lookup without policy rules: the main table (local merged into it), then the default table.
  const found = findRoute(fib, p, 4, flags, dst, oif, checkMtu, () =>
    fib.lookup(4, RT_TABLE_MAIN, dst, oif) ?? (fib.hasTable(4, RT_TABLE_DEFAULT) ? fib.lookup(4, RT_TABLE_DEFAULT, dst, oif) : undefined));
  if (typeof found === 'number') return found;
  const { route, mtu } = found;
  p.rtMetric = route.metric;
  p.ifindex = route.dev;
  if (flags & LOOKUP_SRC) p.b.set(fib.ipv4Source(route), P.ipv4_src);
  if (route.gateway) p.b.set(route.gateway, P.ipv4_dst);
  // __ipv4_neigh_lookup_noref: loopback and point-to-point devices key their one entry by 0.0.0.0.
  return neighbourAndForward(fib, p, route, flags, mtu, route.dev === 1 ? new Uint8Array(4) : dst);
}

/** rt6_need_strict: multicast, link-local and loopback addresses are never forwarded. */
function needStrict(a: Uint8Array): boolean {
  if (a[0] === 0xff) return true;
  if (a[0] === 0xfe && (a[1]! & 0xc0) === 0x80) return true;
  return a.every((x, i) => x === (i === 15 ? 1 : 0));
}

function ipv6Lookup(fib: Fib, p: Params, flags: number, checkMtu: boolean): number {
  const src = p.addr(P.ipv6_src, 16);
  const dst = p.addr(P.ipv6_dst, 16);
  if (needStrict(dst) || needStrict(src)) return FIB_RET.NOT_FWDED;
  const dev = fib.devices.get(p.ifindex);
  if (!dev) return -ENODEV;
  if (!dev.forwarding.ipv6) return FIB_RET.FWD_DISABLED;
  // The ifindex is the preferred output device whether it names the input or the output.
  const oif = p.ifindex;
  const found = findRoute(fib, p, 6, flags, dst, oif, checkMtu, () => fib.lookup(6, RT_TABLE_LOCAL, dst, oif) ?? fib.lookup(6, RT_TABLE_MAIN, dst, oif));
  if (typeof found === 'number') return found;
  const { route, mtu } = found;
  // The source is chosen for the destination looked up, not the gateway that replaces it.
  const looked = dst.slice();
  if (route.gateway) dst.set(route.gateway);
  p.rtMetric = route.metric;
  p.ifindex = route.dev;
  if (flags & LOOKUP_SRC) {
    const s = fib.ipv6Source(route, looked);
    if (!s) return FIB_RET.NO_SRC_ADDR;
    src.set(s);
  }
  return neighbourAndForward(fib, p, route, flags, mtu, dst);
}

/** bpf_xdp_fib_lookup / bpf_skb_fib_lookup. */
export function fibLookup(vm: Vm): void {
  if (!vm.isXdp && !(vm.isSkb && vm.skb?.isL2)) throw new Trap('bpf_fib_lookup is only for XDP and tc programs (the verifier refuses it elsewhere)');
  const plen = size(vm, 3);
  const b = mem(vm, 2, plen, true, 69, 'params');
  const flags = u32(vm, 4);
  if (plen < P.$size) return ret(vm, -EINVAL);
  const mask = LOOKUP_DIRECT | LOOKUP_OUTPUT | LOOKUP_SKIP_NEIGH | LOOKUP_TBID | LOOKUP_SRC | (vm.env.kernel.fibLookupMark ? LOOKUP_MARK : 0);
  if (flags & ~mask) return ret(vm, -EINVAL);
  const fib = vm.env.fib;
  const p = new Params(b);
  // XDP always checks the MTU against tot_len; tc only when tot_len is given.
  const checkMtu = vm.isXdp || p.totLen !== 0;
  const family = p.family;
  let rc = family === AF_INET ? ipv4Lookup(fib, p, flags, checkMtu) : family === AF_INET6 ? ipv6Lookup(fib, p, flags, checkMtu) : -EAFNOSUPPORT;
  if (!vm.isXdp && rc === FIB_RET.SUCCESS && !checkMtu) {
    // is_skb_forwardable on the output device: the frame within its MTU plus an Ethernet and a VLAN header.
    const out = fib.devices.get(p.ifindex)!;
    const pk = vm.packet!;
    if (pk.end - pk.data > out.mtu + ETH_HLEN + VLAN_HLEN) rc = FIB_RET.FRAG_NEEDED;
    p.mtuResult = out.mtu;
  }
  ret(vm, rc);
}
