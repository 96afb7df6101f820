/**
 * A FIB built twice: in a network namespace the test creates (veth pairs, addresses, routes,
 * neighbours, per-device forwarding) and in the emulated kernel, from one description. The kernel
 * side's test runs happen in a child process under `ip netns exec` (bpf_fib_lookup searches the
 * namespace of the test-running task, and a Node thread cannot change its own); the child runs a
 * named scenario function of a compiled test module (netns-child.ts), the parent runs the same
 * function under the emulator, and the two results are compared.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { release } from 'node:os';
import assert from 'node:assert/strict';
import { ip, ipQuiet, namespaces, PID_TAG } from '../fixtures/net.js';
import { ROOT } from './index.js';
import { differences, show } from './emulator-diff.js';
import { useEmulatedKernel, type FibNeighbour, type FibRoute, type NetDev } from '../../src/testing/index.js';

/** One device: `peer` makes it a veth pair whose other end (no addresses, no forwarding) is in the namespace too. */
export interface DeviceSpec {
  name: string;
  peer?: string;
  mac: string;
  mtu?: number;
  forwarding?: { ipv4?: boolean; ipv6?: boolean };
  addresses?: string[];
}

/** A FIB description; devices are named, and routes and neighbours name them. */
export interface Topology {
  devices: DeviceSpec[];
  routes: (Omit<FibRoute, 'dev'> & { dev?: string })[];
  neighbours: (Omit<FibNeighbour, 'dev'> & { dev: string })[];
}

/** The namespace and the ifindex of every device in it (lo, the pairs' both ends). */
export interface BuiltNet {
  ns: string;
  ifindex: Record<string, number>;
}

const macBytes = (m: string) => Uint8Array.from(m.split(':').map((x) => parseInt(x, 16)));

/** Creates the namespace and everything in it; removes it again if any step fails. */
export function buildNamespace(t: Topology, tag: string): BuiltNet {
  const ns = `bpfkit-${tag}-${PID_TAG}`;
  ip(['netns', 'add', ns]);
  try {
    const sysctl = (k: string, v: string | number) => ip(['netns', 'exec', ns, 'sysctl', '-q', '-w', `${k}=${v}`]);
    // No DAD and no link-local addresses: IPv6 addresses are usable at once, and only the described ones exist.
    for (const f of ['all', 'default']) {
      sysctl(`net.ipv4.conf.${f}.forwarding`, 0);
      sysctl(`net.ipv6.conf.${f}.forwarding`, 0);
      sysctl(`net.ipv6.conf.${f}.accept_dad`, 0);
      sysctl(`net.ipv6.conf.${f}.addr_gen_mode`, 1);
    }
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    for (const d of t.devices) {
      if (d.name === 'lo') continue;
      const mtu = String(d.mtu ?? 1500);
      ip(['-n', ns, 'link', 'add', d.name, 'address', d.mac, 'mtu', mtu, 'type', 'veth', 'peer', 'name', d.peer!, 'mtu', mtu]);
    }
    for (const d of t.devices) {
      for (const dev of d.name === 'lo' ? ['lo'] : [d.name, d.peer!]) {
        const own = dev === d.name;
        sysctl(`net.ipv4.conf.${dev}.forwarding`, own && d.forwarding?.ipv4 ? 1 : 0);
        sysctl(`net.ipv6.conf.${dev}.forwarding`, own && d.forwarding?.ipv6 ? 1 : 0);
        ip(['-n', ns, 'link', 'set', dev, 'up']);
      }
      for (const a of d.addresses ?? []) ip(['-n', ns, 'addr', 'add', a, 'dev', d.name, ...(a.includes(':') ? ['nodad'] : [])]);
    }
    for (const r of t.routes) {
      const args = ['-n', ns, ...(r.dst.includes(':') ? ['-6'] : []), 'route', 'add'];
      if (r.type && r.type !== 'unicast') args.push(r.type);
      args.push(r.dst);
      if (r.via) args.push('via', r.via);
      if (r.dev) args.push('dev', r.dev);
      if (r.table !== undefined) args.push('table', String(r.table));
      if (r.metric !== undefined) args.push('metric', String(r.metric));
      if (r.src) args.push('src', r.src);
      if (r.mtu) args.push('mtu', 'lock', String(r.mtu));
      ip(args);
    }
    for (const n of t.neighbours) ip(['-n', ns, 'neigh', 'replace', n.address, 'lladdr', n.mac as string, 'dev', n.dev, 'nud', 'permanent']);
    const links = JSON.parse(ip(['-n', ns, '-j', 'link', 'show'])) as { ifname: string; ifindex: number }[];
    return { ns, ifindex: Object.fromEntries(links.map((l) => [l.ifname, l.ifindex])) };
  } catch (e) {
    ipQuiet(['netns', 'del', ns]);
    throw e;
  }
}

/** The emulated kernel's options for the same FIB, with the namespace's ifindexes. */
export function emulatorNet(t: Topology, net: BuiltNet): { netdevs: NetDev[]; routes: FibRoute[]; neighbours: FibNeighbour[] } {
  const idx = (name: string) => {
    const i = net.ifindex[name];
    if (i === undefined) throw new Error(`no device ${name} in ${net.ns}`);
    return i;
  };
  const netdevs: NetDev[] = [];
  for (const d of t.devices) {
    netdevs.push({ ifindex: idx(d.name), name: d.name, mac: macBytes(d.mac), mtu: d.mtu ?? 1500, forwarding: { ...d.forwarding }, addresses: d.addresses ?? [] });
    if (d.peer) netdevs.push({ ifindex: idx(d.peer), name: d.peer, mtu: d.mtu ?? 1500 });
  }
  // A veth end's MAC is random when not given: the emulator takes the namespace's.
  const all = JSON.parse(ip(['-n', net.ns, '-j', 'link', 'show'])) as { ifname: string; address: string }[];
  for (const n of netdevs) if (n.ifindex !== 1 && !n.mac) n.mac = macBytes(all.find((l) => l.ifname === n.name)!.address);
  return {
    netdevs,
    routes: t.routes.map(({ dev, ...r }) => ({ ...r, ...(dev ? { dev: idx(dev) } : {}) })),
    neighbours: t.neighbours.map(({ dev, ...n }) => ({ ...n, dev: idx(dev) })),
  };
}

/** A scenario a test module exports: it gets the namespace's ifindexes and returns what it saw. */
export type NetScenario = (ifindex: Record<string, number>) => unknown | Promise<unknown>;

/**
 * Runs export `fn` of compiled test module `module` (a path under dist/) in the namespace, in a
 * child process; returns its result as {@link show} prints it.
 */
export function inNamespace(net: BuiltNet, module: string, fn: string): string {
  const child = join(ROOT, 'dist', 'test', 'helpers', 'netns-child.js');
  const r = spawnSync('ip', ['netns', 'exec', net.ns, process.execPath, child, join(ROOT, 'dist', module), fn], {
    input: JSON.stringify(net.ifindex), encoding: 'utf8', maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(`${fn} in namespace ${net.ns} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/**
 * The scenario's result in the namespace (the kernel) and under an emulated kernel holding the
 * same FIB, both as {@link show} prints them.
 */
export async function bothInNamespace(t: Topology, net: BuiltNet, module: string, fn: string, scenario: NetScenario): Promise<{ kernel: string; emulator: string }> {
  const kernel = inNamespace(net, module, fn);
  const emu = useEmulatedKernel({ kernel: release(), ...emulatorNet(t, net) });
  try {
    return { kernel, emulator: show(await scenario(net.ifindex)) };
  } finally {
    emu.restore();
  }
}

/**
 * Builds `t` in a fresh namespace, runs scenario `fn` of test/helpers/fib-scenarios in it and
 * under the emulator, and fails naming every input whose outcome differs; the namespace is
 * removed whatever happens. Returns how many inputs agreed and the kernel's outcomes.
 */
export async function compareInNamespace(t: Topology, tag: string, fn: string, scenario: NetScenario): Promise<{ agreed: number; kernel: unknown[] }> {
  const net = buildNamespace(t, tag);
  try {
    const r = await bothInNamespace(t, net, 'test/helpers/fib-scenarios.js', fn, scenario);
    const kernel = JSON.parse(r.kernel) as unknown[];
    const emulator = JSON.parse(r.emulator) as unknown[];
    assert.equal(emulator.length, kernel.length, `${fn}: as many outcomes from both`);
    const agreed = kernel.filter((k, i) => show(k) === show(emulator[i])).length;
    if (agreed !== kernel.length) assert.fail(`${fn}: ${differences(emulator, kernel)}`);
    return { agreed, kernel };
  } finally {
    ipQuiet(['netns', 'del', net.ns]);
    assert.ok(!namespaces().includes(net.ns), `namespace ${net.ns} was removed`);
  }
}
