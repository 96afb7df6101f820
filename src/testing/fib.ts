/**
 * The emulated kernel's forwarding information base, what bpf_fib_lookup searches: the devices'
 * MTUs, forwarding switches and addresses, IPv4 and IPv6 routes in numbered tables, and
 * neighbours. It holds what `ip addr`, `ip route` and `ip neigh` set up in a fresh network
 * namespace, including the routes the kernel adds itself for each address (fib_add_ifaddr and
 * addrconf): a local route, IPv4's subnet broadcast, IPv6's subnet-router anycast on forwarding
 * devices, and the connected prefix. Multipath, policy rules and per-route TOS are not modelled.
 */
import { parseCidr } from '../objects/cidr.js';
import { InvalidArgumentError } from '../errors.js';

/** RTN_* route types; the reject types make bpf_fib_lookup return BLACKHOLE, UNREACHABLE or PROHIBIT. */
export type FibRouteType = 'unicast' | 'local' | 'broadcast' | 'anycast' | 'blackhole' | 'unreachable' | 'prohibit';

/** A route, as `ip route add` takes it. */
export interface FibRoute {
  /** The destination prefix: "10.1.0.0/16", "2001:db8:1::/48", "0.0.0.0/0" or "::/0" for a default route. */
  dst: string;
  /** The route type; "unicast" by default. */
  type?: FibRouteType;
  /** The gateway (`via`), of the destination's family; without one the destination is on the link. */
  via?: string;
  /** The output device's ifindex (`dev`); found from the gateway's connected route when left out. */
  dev?: number;
  /** The table (`table`): 254 (main) by default. */
  table?: number;
  /** The metric (`metric`): 0 for IPv4 and 1024 for IPv6 by default, as ip gives them. */
  metric?: number;
  /** The preferred source address (`src`), what BPF_FIB_LOOKUP_SRC returns for this route. */
  src?: string;
  /** A locked route MTU (`mtu lock N`): it replaces the device's in the MTU check. */
  mtu?: number;
}

/** A neighbour entry (`ip neigh add ADDRESS lladdr MAC dev IFINDEX nud permanent`). */
export interface FibNeighbour {
  /** The device's ifindex. */
  dev: number;
  /** The neighbour's IPv4 or IPv6 address. */
  address: string;
  /** Its link-layer address: "02:00:00:00:00:01" or 6 bytes. */
  mac: string | Uint8Array;
}

/** A device as the FIB sees it: its MAC (the smac of a lookup), MTU, forwarding switches and addresses. */
export interface FibDevice {
  readonly ifindex: number;
  readonly mac: Uint8Array;
  readonly mtu: number;
  /** net.ipv4/ipv6.conf.DEV.forwarding: bpf_fib_lookup answers FWD_DISABLED for a family that is off. */
  readonly forwarding: { readonly ipv4: boolean; readonly ipv6: boolean };
  /** Addresses with their prefix lengths, in the order added. */
  readonly addresses: readonly { readonly family: 4 | 6; readonly address: Uint8Array; readonly prefixLen: number }[];
}

/** A route as the FIB holds it: addresses as bytes in network order, the device resolved. */
export interface FibEntry {
  readonly family: 4 | 6;
  /** The destination with its host bits cleared. */
  readonly prefix: Uint8Array;
  readonly prefixLen: number;
  readonly type: FibRouteType;
  readonly gateway: Uint8Array | undefined;
  /** The nexthop device's ifindex (loopback for reject routes). */
  readonly dev: number;
  readonly table: number;
  readonly metric: number;
  /** The preferred source, if the route names one. */
  readonly src: Uint8Array | undefined;
  /** A locked route MTU, or 0. */
  readonly mtu: number;
}

export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;
const LOOPBACK = 1;

/** The first `len` bits of `a` and `b` are equal. */
export function prefixMatch(a: Uint8Array, b: Uint8Array, len: number): boolean {
  const whole = len >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const bits = len & 7;
  if (!bits) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (a[whole]! & mask) === (b[whole]! & mask);
}

/** `a` with the bits past `len` cleared (or set, for a broadcast address). */
function masked(a: Uint8Array, len: number, fill = false): Uint8Array {
  const out = a.slice();
  for (let bit = len; bit < out.length * 8; bit++) {
    const m = 0x80 >> (bit & 7);
    out[bit >> 3] = fill ? out[bit >> 3]! | m : out[bit >> 3]! & ~m;
  }
  return out;
}

function macOf(m: string | Uint8Array, what: string): Uint8Array {
  if (m instanceof Uint8Array) {
    if (m.length !== 6) throw new InvalidArgumentError(`${what}: a MAC address has 6 bytes, not ${m.length}`);
    return m.slice();
  }
  const parts = m.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new InvalidArgumentError(`${what}: ${JSON.stringify(m)} is not a MAC address like "02:00:00:00:00:01"`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

function addressOf(text: string, what: string): { family: 4 | 6; address: Uint8Array } {
  const c = parseCidr(text);
  if (c.prefixLen !== c.address.length * 8) throw new InvalidArgumentError(`${what}: ${JSON.stringify(text)} must be a single address, without a prefix length`);
  return c;
}

/**
 * The FIB of one emulated kernel: built once from its devices, routes and neighbours, then
 * searched by bpf_fib_lookup (fiblookup.ts).
 */
export class Fib {
  readonly devices = new Map<number, FibDevice>();
  readonly routes: FibEntry[] = [];
  readonly #neighbours = new Map<string, Uint8Array>();
  /** Tables that hold a route, per family (the kernel creates a table with its first route). */
  readonly #tables = { 4: new Set<number>([RT_TABLE_MAIN, RT_TABLE_LOCAL]), 6: new Set<number>([RT_TABLE_MAIN, RT_TABLE_LOCAL]) };

  constructor(devices: readonly FibDevice[], routes: readonly FibRoute[] = [], neighbours: readonly FibNeighbour[] = []) {
    for (const d of devices) this.devices.set(d.ifindex, d);
    for (const d of devices) for (const a of d.addresses) this.#addressRoutes(d, a);
    for (const r of routes) this.#addRoute(r);
    for (const n of neighbours) {
      const what = `neighbour ${n.address}`;
      if (!this.devices.has(n.dev)) throw new InvalidArgumentError(`${what}: no device has ifindex ${n.dev}`);
      this.#neighbours.set(this.#neighKey(n.dev, addressOf(n.address, what).address), macOf(n.mac, what));
    }
  }

  /** The routes fib_add_ifaddr / addrconf add for an address. */
  #addressRoutes(d: FibDevice, a: FibDevice['addresses'][number]): void {
    const base = { family: a.family, gateway: undefined, dev: d.ifindex, mtu: 0 } as const;
    const full = a.address.length * 8;
    const push = (r: Omit<FibEntry, keyof typeof base>) => this.routes.push({ ...base, ...r });
    if (a.family === 4) {
      push({ prefix: a.address, prefixLen: 32, type: 'local', table: RT_TABLE_LOCAL, metric: 0, src: a.address });
      if (a.prefixLen < 32) {
        const net = masked(a.address, a.prefixLen);
        push({ prefix: net, prefixLen: a.prefixLen, type: d.ifindex === LOOPBACK ? 'local' : 'unicast', table: d.ifindex === LOOPBACK ? RT_TABLE_LOCAL : RT_TABLE_MAIN, metric: 0, src: a.address });
        if (a.prefixLen < 31) push({ prefix: masked(a.address, a.prefixLen, true), prefixLen: 32, type: 'broadcast', table: RT_TABLE_LOCAL, metric: 0, src: a.address });
      }
      return;
    }
    push({ prefix: a.address, prefixLen: full, type: 'local', table: RT_TABLE_LOCAL, metric: 0, src: undefined });
    if (a.prefixLen < full) {
      // The subnet-router anycast address is joined only while the device forwards (addrconf_join_anycast).
      if (d.forwarding.ipv6 && a.prefixLen < 127) push({ prefix: masked(a.address, a.prefixLen), prefixLen: full, type: 'anycast', table: RT_TABLE_LOCAL, metric: 0, src: undefined });
      push({ prefix: masked(a.address, a.prefixLen), prefixLen: a.prefixLen, type: 'unicast', table: RT_TABLE_MAIN, metric: 256, src: undefined });
    }
  }

  #addRoute(r: FibRoute): void {
    const what = `route ${r.dst}`;
    const dst = parseCidr(r.dst);
    const type = r.type ?? 'unicast';
    const reject = type === 'blackhole' || type === 'unreachable' || type === 'prohibit';
    const gw = r.via === undefined ? undefined : addressOf(r.via, what);
    if (gw && gw.family !== dst.family) throw new InvalidArgumentError(`${what}: the gateway ${r.via} is not of the destination's family`);
    if (reject && (gw || r.dev !== undefined)) throw new InvalidArgumentError(`${what}: a ${type} route has no gateway or device`);
    let dev = reject ? LOOPBACK : r.dev;
    if (dev === undefined && gw) dev = this.#connected(gw.address, dst.family)?.dev;
    if (dev === undefined) throw new InvalidArgumentError(`${what}: name the device (dev), or a gateway on a connected prefix`);
    if (!this.devices.has(dev)) throw new InvalidArgumentError(`${what}: no device has ifindex ${dev}`);
    const table = r.table ?? RT_TABLE_MAIN;
    if (!Number.isInteger(table) || table < 1 || table > 0xffffffff) throw new InvalidArgumentError(`${what}: table ${table} must be an integer from 1`);
    this.#tables[dst.family].add(table);
    this.routes.push({
      family: dst.family, prefix: masked(dst.address, dst.prefixLen), prefixLen: dst.prefixLen, type, gateway: gw?.address, dev, table,
      metric: r.metric ?? (dst.family === 4 ? 0 : 1024), src: r.src === undefined ? undefined : addressOf(r.src, what).address, mtu: r.mtu ?? 0,
    });
  }

  #connected(addr: Uint8Array, family: 4 | 6): FibEntry | undefined {
    return this.routes.find((x) => x.family === family && x.type === 'unicast' && !x.gateway && x.table === RT_TABLE_MAIN && prefixMatch(addr, x.prefix, x.prefixLen));
  }

  #neighKey(dev: number, addr: Uint8Array): string {
    return `${dev}/${Buffer.from(addr).toString('hex')}`;
  }

  /** Whether table `id` exists for the family (fib_get_table / fib6_get_table; 0 means main). */
  hasTable(family: 4 | 6, id: number): boolean {
    return this.#tables[family].has(id || RT_TABLE_MAIN);
  }

  /**
   * The route fib_table_lookup picks in table `id` (IPv4's local and main tables are one trie
   * until policy rules exist): the longest prefix first; for IPv4 a reject route answers at once,
   * and a nexthop on another device than `oif` is passed over; for IPv6 the lowest metric of the
   * node, preferring a nexthop on `oif` (rt6_score_route).
   */
  lookup(family: 4 | 6, id: number, dst: Uint8Array, oif: number): FibEntry | undefined {
    const table = id || RT_TABLE_MAIN;
    const inTable = (r: FibEntry) => (family === 4 && (table === RT_TABLE_MAIN || table === RT_TABLE_LOCAL) ? r.table === RT_TABLE_MAIN || r.table === RT_TABLE_LOCAL : r.table === table);
    const found = this.routes.filter((r) => r.family === family && inTable(r) && prefixMatch(dst, r.prefix, r.prefixLen));
    found.sort((a, b) => b.prefixLen - a.prefixLen || a.metric - b.metric);
    if (family === 6) {
      const best = found[0];
      if (!best) return undefined;
      const node = found.filter((r) => r.prefixLen === best.prefixLen && r.metric === best.metric);
      return node.find((r) => !oif || r.dev === oif) ?? node[0];
    }
    for (const r of found) {
      if (r.type === 'blackhole' || r.type === 'unreachable' || r.type === 'prohibit') return r;
      if (oif && r.dev !== oif) continue;
      return r;
    }
    return undefined;
  }

  /** A valid neighbour's link-layer address. */
  neighbour(dev: number, addr: Uint8Array): Uint8Array | undefined {
    return this.#neighbours.get(this.#neighKey(dev, addr));
  }

  /**
   * fib_result_prefsrc: the route's src, else inet_select_addr on the nexthop device (a primary
   * address in the gateway's subnet, else its first), else a global address of another device.
   */
  ipv4Source(r: FibEntry): Uint8Array {
    if (r.src) return r.src;
    const own = this.devices.get(r.dev)?.addresses.filter((a) => a.family === 4) ?? [];
    const pick = (r.gateway && own.find((a) => prefixMatch(a.address, r.gateway!, a.prefixLen))) || own[0];
    if (pick) return pick.address;
    for (const d of this.devices.values()) {
      const a = d.addresses.find((x) => x.family === 4 && x.address[0] !== 127);
      if (a) return a.address;
    }
    return new Uint8Array(4);
  }

  /**
   * A source for IPv6 (ipv6_dev_get_saddr, simplified to its main rules): the route's src, else
   * the global address sharing the longest prefix with the destination, those on the output
   * device first; undefined when there is none.
   */
  ipv6Source(r: FibEntry, dst: Uint8Array): Uint8Array | undefined {
    if (r.src) return r.src;
    const common = (a: Uint8Array) => {
      let n = 0;
      while (n < 128 && prefixMatch(a, dst, n + 1)) n++;
      return n;
    };
    const global = (d: FibDevice) => d.addresses.filter((a) => a.family === 6 && !(a.address[0] === 0xfe && (a.address[1]! & 0xc0) === 0x80) && !isLoopback6(a.address));
    const best = (list: FibDevice['addresses']) => [...list].sort((a, b) => common(b.address) - common(a.address))[0]?.address;
    const dev = this.devices.get(r.dev);
    return (dev && best(global(dev))) ?? best([...this.devices.values()].flatMap(global));
  }
}

function isLoopback6(a: Uint8Array): boolean {
  return a.every((x, i) => x === (i === 15 ? 1 : 0));
}

/** A FibDevice from a netdev's options, with the kernel's defaults (MTU 1500, 65536 on loopback; forwarding off). */
export function fibDevice(d: { ifindex: number; name: string; mac?: Uint8Array; mtu?: number; forwarding?: { ipv4?: boolean; ipv6?: boolean }; addresses?: readonly string[] }): FibDevice {
  const lo = d.ifindex === LOOPBACK;
  const mtu = d.mtu ?? (lo ? 65536 : 1500);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 0xffff + 1) throw new InvalidArgumentError(`netdev ${d.name}: MTU ${mtu} must be an integer from 68 to 65536`);
  const addresses = [...(lo ? ['127.0.0.1/8', '::1/128'] : []), ...(d.addresses ?? [])].map((t) => {
    const c = parseCidr(t);
    return { family: c.family, address: c.address, prefixLen: c.prefixLen };
  });
  return { ifindex: d.ifindex, mac: d.mac ?? new Uint8Array(6), mtu, forwarding: { ipv4: d.forwarding?.ipv4 ?? false, ipv6: d.forwarding?.ipv6 ?? false }, addresses };
}
