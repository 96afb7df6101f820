/**
 * bpf_check_mtu scenarios, run by emulator-helpers.test.ts on loopback and, in a network namespace
 * the test creates (fib-net.ts), on a veth with a small MTU, and under the emulator with the same
 * devices. Each export takes the ifindexes and returns one outcome per input. This is not a test
 * file: the child under `ip netns exec` imports it.
 */
import { asm, loadAssembly, type Item } from '../../src/testing/index.js';
import { __sk_buff as SKB, xdp_md as XDP } from '../../src/abi/uapi.js';
import type { Topology } from './fib-net.js';

/** lo and one veth pair with an MTU of 1280 (both ends), no addresses: all bpf_check_mtu reads is the MTU. */
export const MTU_TOPOLOGY: Topology = {
  devices: [
    { name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536 },
    { name: 'm0', peer: 'm1', mac: '02:00:00:00:0d:00', mtu: 1280 },
  ],
  routes: [],
  neighbours: [],
};

/** One call: the context's device, the helper's arguments, *mtu_len before the call, and for tc the skb's gso_size. */
export interface MtuCall {
  kind: 'xdp' | 'tc';
  /** The device the frame arrives on (xdp_md.ingress_ifindex / __sk_buff.ifindex). */
  dev: number;
  len: number;
  ifindex: number;
  mtuLen: number;
  lenDiff: number;
  flags: bigint;
  gsoSize?: number;
}

/**
 * The program: r0 = bpf_check_mtu(ctx, ifindex, &mtu_len, len_diff, flags), then the return value
 * and *mtu_len stored over the frame's first 8 bytes (bpf_xdp_store_bytes / bpf_skb_store_bytes),
 * which the test run hands back.
 */
function program(c: MtuCall): Item[] {
  const store: Item[] = c.kind === 'xdp'
    ? [asm.mov64('r1', 'r6'), asm.mov64('r2', 0), asm.mov64('r3', 'r10'), asm.alu64('add', 'r3', -8), asm.mov64('r4', 8), asm.call(190)]
    : [asm.mov64('r1', 'r6'), asm.mov64('r2', 0), asm.mov64('r3', 'r10'), asm.alu64('add', 'r3', -8), asm.mov64('r4', 8), asm.mov64('r5', 0), asm.call(9)];
  return [
    asm.mov64('r6', 'r1'),
    ...asm.ld64('r1', BigInt(c.mtuLen)), asm.stx('w', 'r10', -4, 'r1'),
    ...asm.ld64('r2', BigInt(c.ifindex)), asm.mov64('r3', 'r10'), asm.alu64('add', 'r3', -4),
    ...asm.ld64('r4', BigInt.asUintN(64, BigInt(c.lenDiff))), ...asm.ld64('r5', c.flags),
    asm.mov64('r1', 'r6'), asm.call(163),
    asm.stx('w', 'r10', -8, 'r0'),
    ...store,
    asm.mov64('r0', c.kind === 'xdp' ? 2 : 0), asm.exit(),
  ];
}

/** An Ethernet frame of `n` bytes (IPv4 ethertype, the rest a pattern). */
function frame(n: number): Uint8Array {
  const b = new Uint8Array(n);
  b.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
  for (let i = 14; i < n; i++) b[i] = (i * 37 + 11) & 0xff;
  return b;
}

/** [return value, *mtu_len] read back from the frame, or the load or test run error. */
export function runCheckMtu(c: MtuCall): unknown {
  let p;
  try {
    p = loadAssembly(program(c), { type: c.kind === 'xdp' ? 'xdp' : 'sched_cls', name: 'check_mtu' });
  } catch (e) {
    return `load: ${(e as { code?: string }).code ?? String(e)}`;
  }
  try {
    let ctx: Uint8Array;
    if (c.kind === 'xdp') {
      ctx = new Uint8Array(XDP.$size);
      const v = new DataView(ctx.buffer);
      v.setUint32(XDP.data_end, c.len, true);
      v.setUint32(XDP.ingress_ifindex, c.dev, true);
    } else {
      ctx = new Uint8Array(SKB.$size);
      const v = new DataView(ctx.buffer);
      v.setUint32(SKB.ifindex, c.dev, true);
      v.setUint32(SKB.gso_size, c.gsoSize ?? 0, true);
    }
    const r = p.testRun({ data: frame(c.len), ctx });
    const out = Buffer.from(r.data ?? []);
    return [out.readInt32LE(0), out.readUInt32LE(4)];
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  } finally {
    p.close();
  }
}

/** Calls around a device's MTU `mtu` (ifindex `dev`), from frames that fit a test run (at most 1500 bytes). */
export function callsAround(dev: number, mtu: number): MtuCall[] {
  const calls: MtuCall[] = [];
  const L2 = mtu + 14;
  for (const kind of ['xdp', 'tc'] as const) {
    for (const ifindex of [0, dev, 9999]) {
      // Frames near the MTU where a test run can carry them; len_diff reaching it from a short frame.
      for (const len of [14, 60, 1000, ...(L2 <= 1500 ? [L2 - 1, L2, L2 + 1] : [])]) calls.push({ kind, dev, len, ifindex, mtuLen: 0, lenDiff: 0, flags: 0n });
      for (const lenDiff of [L2 - 100 - 1, L2 - 100, L2 - 100 + 1, -100, -101, -0x80000000, 0x7fffffff]) calls.push({ kind, dev, len: 100, ifindex, mtuLen: 0, lenDiff, flags: 0n });
      // *mtu_len given: an L3 length checked instead of the frame's.
      for (const mtuLen of [1, mtu - 1, mtu, mtu + 1, 0xffffffff, 0xfffffff2, 0xfffffff1]) calls.push({ kind, dev, len: 100, ifindex, mtuLen, lenDiff: 0, flags: 0n });
      for (const lenDiff of [-1, 1]) calls.push({ kind, dev, len: 100, ifindex, mtuLen: mtu, lenDiff, flags: 0n });
      // Flags: SEGS (tc only, and not with a length or len_diff), unknown bits.
      for (const flags of [1n, 2n, 1n << 32n, 3n]) {
        calls.push({ kind, dev, len: 100, ifindex, mtuLen: 0, lenDiff: 0, flags });
        calls.push({ kind, dev, len: 100, ifindex, mtuLen: 0, lenDiff: 1, flags });
        calls.push({ kind, dev, len: 100, ifindex, mtuLen: 500, lenDiff: 0, flags });
      }
      if (L2 + 1 <= 1500) calls.push({ kind, dev, len: L2 + 1, ifindex, mtuLen: 0, lenDiff: 0, flags: 1n });
    }
  }
  // A GSO skb over the MTU passes unless BPF_MTU_CHK_SEGS asks for its segments to be checked.
  for (const flags of [0n, 1n]) {
    calls.push({ kind: 'tc', dev, len: 100, ifindex: 0, mtuLen: 0, lenDiff: L2, flags, gsoSize: 500 });
    if (L2 + 1 <= 1500) calls.push({ kind: 'tc', dev, len: L2 + 1, ifindex: 0, mtuLen: 0, lenDiff: 0, flags, gsoSize: 500 });
    calls.push({ kind: 'tc', dev, len: 100, ifindex: 0, mtuLen: 0, lenDiff: 0, flags, gsoSize: 500 });
  }
  return calls;
}

/** Every call around loopback's MTU (65536) and the veth m0's (1280), arriving on each; each outcome with its input. */
export function checkMtuRuns(ifindex: Record<string, number>): unknown[] {
  const calls = [...callsAround(1, 65536), ...callsAround(ifindex.m0!, 1280)];
  // A frame arriving on m0 asking about lo, and on lo asking about m0.
  calls.push({ kind: 'xdp', dev: ifindex.m0!, len: 1400, ifindex: 1, mtuLen: 0, lenDiff: 0, flags: 0n });
  calls.push({ kind: 'tc', dev: 1, len: 1400, ifindex: ifindex.m0!, mtuLen: 0, lenDiff: 0, flags: 0n });
  return calls.map((c) => [c, runCheckMtu(c)]);
}
