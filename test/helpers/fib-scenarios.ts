/**
 * Scenarios that need a FIB, run by emulator-diff and emulator-public in a network namespace the
 * test creates (fib-net.ts) and under the emulator with the same FIB: bpf_fib_lookup's edge cases
 * from XDP and tc, the kernel's xdp_fwd sample, and tcbpf1's bpf_clone_redirect programs. Each
 * export takes the namespace's ifindexes and returns one outcome per input. This is not a test
 * file: the child under `ip netns exec` imports it.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { asm, label, loadAssembly, type Item } from '../../src/testing/index.js';
import { mulberry32 } from '../../src/testing/fuzz.js';
import { parseCidr } from '../../src/objects/cidr.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { Collection } from '../../src/load/collection.js';
import type { Program } from '../../src/objects/program.js';
import { ROOT } from './index.js';
import { __sk_buff } from '../../src/abi/uapi.js';
import type { Topology } from './fib-net.js';

/**
 * The FIB: a0 forwards both families (MTU 1500), b0 both (MTU 1400), c0 IPv6 only (MTU 9000),
 * loopback IPv4 only; the pairs' other ends forward nothing. Routes of every type, a second
 * table, a locked MTU, a preferred source, gateways with and without neighbours.
 */
export const FIB_TOPOLOGY: Topology = {
  devices: [
    { name: 'lo', mac: '00:00:00:00:00:00', forwarding: { ipv4: true } },
    { name: 'a0', peer: 'a1', mac: '02:00:00:00:0a:00', forwarding: { ipv4: true, ipv6: true }, addresses: ['10.1.0.1/24', '2001:db8:1::1/64'] },
    { name: 'b0', peer: 'b1', mac: '02:00:00:00:0b:00', mtu: 1400, forwarding: { ipv4: true, ipv6: true }, addresses: ['10.2.0.1/24', '2001:db8:2::1/64'] },
    { name: 'c0', peer: 'c1', mac: '02:00:00:00:0c:00', mtu: 9000, forwarding: { ipv6: true }, addresses: ['10.3.0.1/24', '2001:db8:3::1/64'] },
  ],
  routes: [
    { dst: '10.20.0.0/16', via: '10.2.0.2', dev: 'b0', metric: 5 },
    { dst: '10.21.0.0/16', via: '10.2.0.3', dev: 'b0', src: '10.1.0.1' },
    { dst: '10.30.0.0/16', dev: 'c0' },
    { dst: '10.40.0.0/16', via: '10.1.0.9', dev: 'a0', table: 100 },
    { dst: '10.50.0.0/16', via: '10.2.0.2', dev: 'b0', mtu: 1300 },
    { dst: '10.66.0.0/16', type: 'blackhole' },
    { dst: '10.67.0.0/16', type: 'unreachable' },
    { dst: '10.68.0.0/16', type: 'prohibit' },
    { dst: '0.0.0.0/0', via: '10.1.0.254', dev: 'a0' },
    { dst: '2001:db8:20::/48', via: '2001:db8:2::2', dev: 'b0' },
    { dst: '2001:db8:30::/48', dev: 'c0' },
    { dst: '2001:db8:40::/48', via: '2001:db8:1::9', dev: 'a0', table: 100 },
    { dst: '2001:db8:50::/48', via: '2001:db8:2::2', dev: 'b0', mtu: 1300 },
    { dst: '2001:db8:66::/48', type: 'blackhole' },
    { dst: '2001:db8:67::/48', type: 'unreachable' },
    { dst: '2001:db8:68::/48', type: 'prohibit' },
    { dst: '::/0', via: '2001:db8:1::fe', dev: 'a0' },
  ],
  neighbours: [
    { dev: 'a0', address: '10.1.0.254', mac: '02:00:00:00:01:fe' },
    { dev: 'a0', address: '10.1.0.5', mac: '02:00:00:00:01:05' },
    { dev: 'a0', address: '10.1.0.9', mac: '02:00:00:00:01:09' },
    { dev: 'b0', address: '10.2.0.2', mac: '02:00:00:00:02:02' },
    { dev: 'c0', address: '10.30.0.5', mac: '02:00:00:00:30:05' },
    { dev: 'a0', address: '2001:db8:1::fe', mac: '02:00:00:00:61:fe' },
    { dev: 'b0', address: '2001:db8:2::2', mac: '02:00:00:00:62:02' },
    { dev: 'c0', address: '2001:db8:30::5', mac: '02:00:00:00:63:05' },
  ],
};

const ip = (s: string) => parseCidr(s).address;
/** Destinations reaching every route and return code: local, broadcast, on-link, gateways with and without neighbours. */
const DST4 = ['10.1.0.1', '10.1.0.5', '10.1.0.254', '10.1.0.255', '10.1.0.77', '10.2.0.2', '10.2.0.7', '10.20.1.1', '10.21.1.1', '10.30.0.5', '10.30.0.6',
  '10.40.1.1', '10.50.1.1', '10.66.1.1', '10.67.1.1', '10.68.1.1', '127.0.0.1', '8.8.8.8', '10.3.0.1', '0.0.0.0'].map(ip);
const SRC4 = ['10.1.0.77', '0.0.0.0', '192.0.2.1'].map(ip);
const DST6 = ['2001:db8:1::1', '2001:db8:1::5', '2001:db8:1::', '2001:db8:1::fe', '2001:db8:2::2', '2001:db8:20::1', '2001:db8:30::5', '2001:db8:30::6',
  '2001:db8:40::1', '2001:db8:50::1', '2001:db8:66::1', '2001:db8:67::1', '2001:db8:68::1', '2606:4700::1', 'fe80::1', 'ff02::1', '::1', '::'].map(ip);
const SRC6 = ['::', '2001:db8:1::5', 'fe80::2', '2001:db8:2::99'].map(ip);

type Rnd = () => number;
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

// BPF_FIB_LOOKUP_DIRECT, OUTPUT, SKIP_NEIGH, TBID, SRC, MARK (6.10), and bits no kernel knows.
const FLAGS = [0, 0, 1, 2, 4, 1 | 8, 8, 16, 16 | 4, 1 | 2, 2 | 16, 32, 1 | 8 | 16, 0x40, 0x80000000, 0x1f];
const TBIDS = [0, 100, 254, 255, 101, 253];
const TOT_LEN = [0, 0, 100, 1280, 1300, 1301, 1400, 1401, 1500, 1501, 9000, 65535];
/** Frame sizes around b0's and a0's limits for tc's own MTU check (MTU + 18). */
const PAD = [0, 0, 0, 1346, 1347, 1446, 1447];

/** Bytes 0-63: struct bpf_fib_lookup; 64-67: the flags; then padding. */
function fibInput(rnd: Rnd, ifindex: Record<string, number>): Uint8Array {
  const b = new Uint8Array(72 + pick(rnd, PAD));
  const v = new DataView(b.buffer);
  const family = pick(rnd, [2, 2, 2, 2, 2, 10, 10, 10, 10, 10, 0, 7]);
  b[0] = family;
  b[1] = pick(rnd, [6, 17]);
  v.setUint16(2, Math.floor(rnd() * 65536));
  v.setUint16(4, Math.floor(rnd() * 65536));
  v.setUint16(6, pick(rnd, TOT_LEN), true);
  const dev = pick(rnd, ['lo', 'a0', 'a0', 'a0', 'a1', 'b0', 'b0', 'b1', 'c0', 'c0', 'none', 'zero']);
  v.setUint32(8, dev === 'none' ? 999 : dev === 'zero' ? 0 : ifindex[dev]!, true);
  v.setUint32(12, rnd() < 0.5 ? 0 : Math.floor(rnd() * 2 ** 32), true);
  if (family === 10 || (family !== 2 && rnd() < 0.5)) {
    b.set(pick(rnd, SRC6), 16);
    b.set(pick(rnd, DST6), 32);
  } else {
    b.set(pick(rnd, SRC4), 16);
    b.set(pick(rnd, DST4), 32);
  }
  v.setUint32(48, pick(rnd, TBIDS), true);
  for (let i = 52; i < 64; i++) b[i] = Math.floor(rnd() * 256);
  v.setUint32(64, pick(rnd, FLAGS), true);
  return b;
}

/**
 * Copies the struct from the packet to the stack, calls bpf_fib_lookup(ctx, params, plen, flags
 * from the packet), copies the struct back and returns the helper's result.
 */
export function fibProgram(type: 'xdp' | 'sched_cls', plen: number): Program {
  const [data, end] = type === 'xdp' ? [0, 4] : [76, 80];
  const copy = (from: 'r2' | 'r10', fromOff: number, to: 'r2' | 'r10', toOff: number): Item[] =>
    Array.from({ length: 8 }, (_, i) => [asm.ldx('dw', 'r5', from, fromOff + 8 * i), asm.stx('dw', to, toOff + 8 * i, 'r5')]).flat();
  const items: Item[] = [
    asm.mov64('r6', 'r1'), asm.ldx('w', 'r2', 'r6', data), asm.ldx('w', 'r3', 'r6', end), asm.mov64('r4', 'r2'), asm.alu64('add', 'r4', 72),
    asm.jmp('gt', 'r4', 'r3', 'short'), ...copy('r2', 0, 'r10', -64), asm.ldx('w', 'r4', 'r2', 64),
    asm.mov64('r1', 'r6'), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -64), asm.mov64('r3', plen), asm.call(69), asm.mov64('r7', 'r0'),
    asm.ldx('w', 'r2', 'r6', data), asm.ldx('w', 'r3', 'r6', end), asm.mov64('r4', 'r2'), asm.alu64('add', 'r4', 72),
    asm.jmp('gt', 'r4', 'r3', 'out'), ...copy('r10', -64, 'r2', 0),
    label('out'), asm.mov64('r0', 'r7'), asm.exit(),
    label('short'), asm.mov64('r0', 0x5555), asm.exit(),
  ];
  const p = loadAssembly(items, { type, name: 'fib' });
  if (typeof p === 'number') throw new Error(`the ${type} bpf_fib_lookup program did not load: errno ${p}`);
  return p;
}

function outcome(p: Program, data: Uint8Array, ctx?: Uint8Array): unknown {
  try {
    const r = p.testRun({ data, ctx });
    return [r.retval | 0, Buffer.from(r.data ?? []).subarray(0, 64).toString('hex')];
  } catch (e) {
    const { code, message } = e as { code?: string; message?: string };
    return code === 'ERR_BPFKIT_EMULATOR_FAULT' ? `${code}: ${message}` : code ?? String(e);
  }
}

/** How many bpf_fib_lookup inputs each program type gets. */
export const FIB_INPUTS = 800;

/** bpf_fib_lookup from XDP and tc on generated structs and flags, and with a short struct (-EINVAL). */
export function fibHelperRuns(ifindex: Record<string, number>): unknown[] {
  const rnd = mulberry32(0xf1b);
  const inputs = Array.from({ length: FIB_INPUTS }, () => fibInput(rnd, ifindex));
  const out: unknown[] = [];
  for (const type of ['xdp', 'sched_cls'] as const) {
    const full = fibProgram(type, 64);
    const short = fibProgram(type, 48);
    try {
      inputs.forEach((d, i) => out.push([type, i, outcome(full, d)]));
      inputs.slice(0, 20).forEach((d, i) => out.push([type, 'plen 48', i, outcome(short, d)]));
    } finally {
      full.close();
      short.close();
    }
  }
  return out;
}

/** The kernel's samples/bpf objects, built by scripts/build-kernel-samples.sh. */
export function kernelSample(name: string): string {
  const path = join(ROOT, 'test', 'bpf', 'build', 'kernel-samples', `${name}.o`);
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm run build:bpf (needs apt-get install linux-source-6.1)`);
  return path;
}

/** An Ethernet frame with an IPv4 or IPv6 header toward a FIB destination, TTL/hop limit sometimes expiring. */
function fwdFrame(rnd: Rnd): Uint8Array {
  const v6 = rnd() < 0.45;
  const b: number[] = [2, 0, 0, 0, 0xa, 0, 2, 0, 0, 0, 0, 0x77];
  const ttl = pick(rnd, [0, 1, 2, 64, 64, 64, 255]);
  const payload = Math.floor(rnd() * 40);
  if (v6) {
    const plen = pick(rnd, [payload, 1300, 1400, 9001, payload]);
    b.push(0x86, 0xdd, 0x60 | Math.floor(rnd() * 16), Math.floor(rnd() * 256), 0, 0, plen >> 8, plen & 0xff, pick(rnd, [6, 17]), ttl, ...pick(rnd, SRC6), ...pick(rnd, DST6));
  } else {
    const tot = pick(rnd, [20 + payload, 1300, 1301, 1400, 1401, 1501, 20 + payload]);
    b.push(0x08, 0x00, 0x45, pick(rnd, [0, 0x10, 0xb8]), tot >> 8, tot & 0xff, 0, 0, 0x40, 0, ttl, pick(rnd, [6, 17]), 0x12, 0x34, ...pick(rnd, SRC4), ...pick(rnd, DST4));
  }
  for (let i = 0; i < payload; i++) b.push(Math.floor(rnd() * 256));
  return Uint8Array.from(b);
}

/** struct xdp_md for ctx_in naming the ingress device. */
function xdpMd(ifindex: number, n: number): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setUint32(4, n, true);
  v.setUint32(12, ifindex, true);
  return b;
}

/** How many frames xdp_fwd's two programs get. */
export const FWD_INPUTS = 1000;

/**
 * samples/bpf/xdp_fwd_kern.o: both programs (bpf_fib_lookup with flags 0 and DIRECT) on frames
 * arriving on every device, with a0 and b0 in the TX port devmap and c0 left out.
 */
export async function xdpFwdRuns(ifindex: Record<string, number>): Promise<unknown[]> {
  const rnd = mulberry32(0xfd);
  const devs = ['a0', 'b0', 'c0', 'a1', 'lo'];
  const frames = Array.from({ length: FWD_INPUTS }, () => [fwdFrame(rnd), ifindex[pick(rnd, devs)]!] as const);
  const spec = await CollectionSpec.fromFile(kernelSample('xdp_fwd_kern'));
  for (const p of spec.programs.values()) p.type = 'xdp';
  const coll = await Collection.load(spec);
  try {
    const ports = coll.maps.get('xdp_tx_ports')!;
    for (const d of ['a0', 'b0']) ports.update(ifindex[d]!, new Uint8Array(new Uint32Array([ifindex[d]!]).buffer));
    const progs = [...coll.programs.values()];
    return frames.map(([f, dev]) => progs.map((p) => outcome(p, f, xdpMd(dev, f.length))));
  } finally {
    coll.close();
  }
}

/**
 * tcbpf1's clone_redirect_xmit / _recv: each clones the frame to the device after the skb's
 * (ifindex + 1) and returns TC_ACT_SHOT; run with contexts naming each device, so some targets
 * are devices, one none.
 */
export async function cloneRedirectRuns(ifindex: Record<string, number>): Promise<unknown[]> {
  const rnd = mulberry32(0xc1);
  const spec = await CollectionSpec.fromFile(kernelSample('tcbpf1_kern'));
  for (const n of [...spec.programs.keys()]) {
    if (!n.includes('clone_redirect')) spec.programs.delete(n);
    else spec.programs.get(n)!.type = 'sched_cls';
  }
  const coll = await Collection.load(spec);
  const devs = Object.values(ifindex).sort((a, b) => a - b);
  try {
    const out: unknown[] = [];
    for (let i = 0; i < 200; i++) {
      const f = fwdFrame(rnd);
      // The device the test run's skb arrives on.
      const ctx = new Uint8Array(__sk_buff.$size);
      const dev = pick(rnd, [...devs, devs[devs.length - 1]! + 1]);
      new DataView(ctx.buffer).setUint32(__sk_buff.ifindex, dev, true);
      for (const p of coll.programs.values()) out.push([i, outcome(p, f), outcome(p, f, dev > 1 ? ctx : undefined)]);
    }
    return out;
  } finally {
    coll.close();
  }
}

/**
 * bpf_clone_redirect's own return values from tc: the target ifindex and flags come from the
 * frame (bytes 14-17 and 18-25), over every device, unknown ones, flags with and without
 * BPF_F_INGRESS and unknown bits, and frames under and over the devices' MTUs.
 */
export function cloneHelperRuns(ifindex: Record<string, number>): unknown[] {
  const rnd = mulberry32(0xc13);
  const items: Item[] = [
    asm.mov64('r6', 'r1'), asm.ldx('w', 'r2', 'r6', __sk_buff.data), asm.ldx('w', 'r3', 'r6', __sk_buff.data_end), asm.mov64('r4', 'r2'), asm.alu64('add', 'r4', 26),
    asm.jmp('gt', 'r4', 'r3', 'short'), asm.ldx('w', 'r7', 'r2', 14), asm.ldx('dw', 'r3', 'r2', 18),
    asm.mov64('r1', 'r6'), asm.mov64('r2', 'r7'), asm.call(13), asm.exit(),
    label('short'), asm.mov64('r0', 0x5555), asm.exit(),
  ];
  const p = loadAssembly(items, { type: 'sched_cls', name: 'clone' });
  if (typeof p === 'number') throw new Error(`the bpf_clone_redirect program did not load: errno ${p}`);
  const targets = [1, ...Object.values(ifindex), 0, 999];
  try {
    return Array.from({ length: 300 }, () => {
      const f = new Uint8Array(pick(rnd, [60, 60, 1418, 1419, 1518, 1519, 3000]));
      // A frame to a0's MAC with an ethertype no stack reads, so a received clone goes nowhere.
      f.set([2, 0, 0, 0, 0xa, 0, 2, 0, 0, 0, 0, 0x77, 0x88, 0xb5]);
      const v = new DataView(f.buffer);
      v.setUint32(14, pick(rnd, targets), true);
      v.setBigUint64(18, pick(rnd, [0n, 0n, 1n, 1n, 2n, 3n, 0x10n, 1n << 63n]), true);
      return outcome(p, f);
    });
  } finally {
    p.close();
  }
}
