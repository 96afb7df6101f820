/**
 * The emulated kernel's FIB and bpf_fib_lookup / bpf_clone_redirect, without root: hand-worked
 * cases of what filter.c writes back and returns, what differs by release, and the typed errors
 * for a bad FIB description. The same helpers are compared with the kernel, in a network
 * namespace, by test/kernel/emulator-diff.test.ts and emulator-public.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EmulatedKernel, asm, label, loadAssembly, type EmulatedKernelOptions } from '../../src/testing/index.js';
import { parseCidr } from '../../src/objects/cidr.js';
import { fibProgram } from '../helpers/fib-scenarios.js';

const MAC_A = Uint8Array.from([2, 0, 0, 0, 0xa, 0]);
const MAC_B = Uint8Array.from([2, 0, 0, 0, 0xb, 0]);
const FIB: EmulatedKernelOptions = {
  netdevs: [
    { ifindex: 2, name: 'a0', mac: MAC_A, forwarding: { ipv4: true, ipv6: true }, addresses: ['10.1.0.1/24', '2001:db8:1::1/64'] },
    { ifindex: 3, name: 'b0', mac: MAC_B, mtu: 1400, forwarding: { ipv4: true, ipv6: true }, addresses: ['10.2.0.1/24', '2001:db8:2::1/64'] },
    { ifindex: 4, name: 'c0', forwarding: { ipv6: true } },
  ],
  routes: [
    { dst: '0.0.0.0/0', via: '10.1.0.254' },
    { dst: '10.20.0.0/16', via: '10.2.0.2', metric: 5 },
    { dst: '10.21.0.0/16', via: '10.2.0.3', dev: 3 },
    { dst: '10.40.0.0/16', via: '10.1.0.9', dev: 2, table: 100 },
    { dst: '10.50.0.0/16', via: '10.2.0.2', dev: 3, mtu: 1300 },
    { dst: '10.66.0.0/16', type: 'blackhole' },
    { dst: '2001:db8:20::/48', via: '2001:db8:2::2', dev: 3 },
    { dst: '2001:db8:68::/48', type: 'prohibit' },
  ],
  neighbours: [
    { dev: 2, address: '10.1.0.254', mac: '02:00:00:00:01:fe' },
    { dev: 3, address: '10.2.0.2', mac: Uint8Array.from([2, 0, 0, 0, 2, 2]) },
    { dev: 3, address: '2001:db8:2::2', mac: '02:00:00:00:62:02' },
  ],
};

interface Lookup {
  family: 2 | 10;
  ifindex: number;
  dst: string;
  src?: string;
  totLen?: number;
  tbid?: number;
  flags?: number;
  pad?: number;
}

/** The program's input: struct bpf_fib_lookup, the flags, padding. */
function input(l: Lookup): Uint8Array {
  const b = new Uint8Array(72 + (l.pad ?? 0));
  const v = new DataView(b.buffer);
  b[0] = l.family;
  v.setUint16(6, l.totLen ?? 0, true);
  v.setUint32(8, l.ifindex, true);
  const at = l.family === 2 ? 4 : 16;
  b.set(parseCidr(l.src ?? (l.family === 2 ? '0.0.0.0' : '::')).address, 16);
  b.set(parseCidr(l.dst).address.subarray(0, at), 32);
  v.setUint32(48, l.tbid ?? 0xdeadbeef, true);
  v.setUint32(64, l.flags ?? 0, true);
  return b;
}

/** Runs the lookup from `type` in an emulated kernel of `release`; the return code and the struct after. */
function lookup(l: Lookup, type: 'xdp' | 'sched_cls' = 'xdp', release = '6.18', plen = 64) {
  const kernel = new EmulatedKernel({ ...FIB, kernel: release }).install();
  try {
    const p = fibProgram(type, plen);
    const r = p.testRun({ data: input(l) });
    p.close();
    const out = r.data!;
    const v = new DataView(out.buffer, out.byteOffset);
    return {
      rc: r.retval | 0, ifindex: v.getUint32(8, true), mtu: v.getUint16(6, true), metric: v.getUint32(12, true), tbid: v.getUint32(48, true),
      dst4: [...out.subarray(32, 36)].join('.'), dst6: Buffer.from(out.subarray(32, 48)).toString('hex'), src4: [...out.subarray(16, 20)].join('.'),
      smac: Buffer.from(out.subarray(52, 58)).toString('hex'), dmac: Buffer.from(out.subarray(58, 64)).toString('hex'),
    };
  } finally {
    kernel.restore();
  }
}

describe('bpf_fib_lookup in the emulated kernel', () => {
  it('forwards through a gateway: output device, gateway as destination, MACs, metric, MTU, VLAN fields cleared', () => {
    const r = lookup({ family: 2, ifindex: 2, dst: '10.20.1.1', totLen: 100 });
    assert.deepEqual([r.rc, r.ifindex, r.dst4, r.smac, r.dmac, r.metric, r.mtu, r.tbid], [0, 3, '10.2.0.2', '020000000b00', '020000000202', 5, 1400, 0]);
    const d = lookup({ family: 2, ifindex: 2, dst: '8.8.8.8' });
    assert.deepEqual([d.rc, d.ifindex, d.dst4, d.dmac], [0, 2, '10.1.0.254', '0200000001fe']);
  });

  it('returns each code in the kernel\'s order, with the fields written before it', () => {
    assert.equal(lookup({ family: 2, ifindex: 9, dst: '10.20.1.1' }).rc, -19);
    assert.equal(lookup({ family: 2, ifindex: 4, dst: '10.20.1.1' }).rc, 5); // c0 does not forward IPv4
    assert.equal(lookup({ family: 2, ifindex: 2, dst: '10.66.0.1' }).rc, 1);
    assert.equal(lookup({ family: 2, ifindex: 2, dst: '10.1.0.1' }).rc, 4); // local
    assert.equal(lookup({ family: 2, ifindex: 2, dst: '10.1.0.255' }).rc, 4); // broadcast
    const noNeigh = lookup({ family: 2, ifindex: 2, dst: '10.21.0.1' });
    assert.deepEqual([noNeigh.rc, noNeigh.ifindex, noNeigh.dst4, noNeigh.dmac], [7, 3, '10.2.0.3', '000000000000']);
    const frag = lookup({ family: 2, ifindex: 2, dst: '10.50.0.1', totLen: 1301 });
    assert.deepEqual([frag.rc, frag.mtu, frag.ifindex], [8, 1300, 2]);
    assert.equal(lookup({ family: 10, ifindex: 9, dst: 'fe80::1' }).rc, 4); // link-local before the device check
    assert.equal(lookup({ family: 10, ifindex: 2, dst: '2001:db8:68::1' }).rc, 3);
    const v6 = lookup({ family: 10, ifindex: 2, dst: '2001:db8:20::1', totLen: 1400 });
    assert.deepEqual([v6.rc, v6.ifindex, v6.dst6, v6.metric], [0, 3, '20010db8000200000000000000000002', 1024]);
    assert.equal(lookup({ family: 10, ifindex: 2, dst: '2001:db8:20::1', totLen: 1401 }).rc, 8);
  });

  it('DIRECT with TBID reads tbid, zeroes it, and finds only that table', () => {
    const t = lookup({ family: 2, ifindex: 2, dst: '10.40.0.1', tbid: 100, flags: 1 | 8 | 4 });
    assert.deepEqual([t.rc, t.ifindex, t.dst4, t.tbid], [0, 2, '10.1.0.9', 0]);
    const missing = lookup({ family: 2, ifindex: 2, dst: '10.40.0.1', tbid: 101, flags: 1 | 8 });
    assert.deepEqual([missing.rc, missing.tbid], [4, 0]);
    assert.equal(lookup({ family: 2, ifindex: 2, dst: '10.40.0.1' }).dst4, '10.1.0.254'); // main: the default route
  });

  it('checks the struct size and flags first; BPF_FIB_LOOKUP_MARK from 6.10', () => {
    assert.equal(lookup({ family: 2, ifindex: 2, dst: '10.20.1.1' }, 'xdp', '6.18', 48).rc, -22);
    assert.equal(lookup({ family: 2, ifindex: 2, dst: '10.20.1.1', flags: 0x40 }).rc, -22);
    assert.equal(lookup({ family: 2, ifindex: 2, dst: '10.20.1.1', flags: 0x20 }, 'xdp', '6.1').rc, -22);
    assert.equal(lookup({ family: 2, ifindex: 2, dst: '10.20.1.1', flags: 0x20 }, 'xdp', '6.12').rc, 0);
  });

  it('tc without tot_len checks the frame against the output MTU plus 18 and returns the MTU', () => {
    const fits = lookup({ family: 2, ifindex: 2, dst: '10.20.1.1', pad: 1418 - 72 }, 'sched_cls');
    assert.deepEqual([fits.rc, fits.mtu], [0, 1400]);
    const over = lookup({ family: 2, ifindex: 2, dst: '10.20.1.1', pad: 1419 - 72 }, 'sched_cls');
    assert.deepEqual([over.rc, over.mtu], [8, 1400]);
    assert.equal(lookup({ family: 2, ifindex: 2, dst: '10.20.1.1', pad: 1419 - 72 }, 'xdp').rc, 0); // XDP checks tot_len only
  });
});

describe('bpf_clone_redirect in the emulated kernel', () => {
  it('records the clone; -EINVAL for an unknown device or flag; NET_XMIT_DROP over a veth\'s MTU', () => {
    const kernel = new EmulatedKernel(FIB).install();
    try {
      const items = [
        asm.ldx('w', 'r2', 'r1', 76), asm.ldx('w', 'r3', 'r1', 80), asm.mov64('r4', 'r2'), asm.alu64('add', 'r4', 26), asm.jmp('gt', 'r4', 'r3', 'out'),
        asm.ldx('w', 'r7', 'r2', 14), asm.ldx('dw', 'r3', 'r2', 18), asm.mov64('r2', 'r7'), asm.call(13), asm.exit(), label('out'), asm.mov64('r0', 99), asm.exit(),
      ];
      const p = loadAssembly(items, { type: 'sched_cls' });
      assert.ok(typeof p !== 'number');
      const run = (ifindex: number, flags: bigint, len = 60) => {
        const f = new Uint8Array(len);
        f[12] = 0x88;
        f[13] = 0xb5;
        new DataView(f.buffer).setUint32(14, ifindex, true);
        new DataView(f.buffer).setBigUint64(18, flags, true);
        return p.testRun({ data: f }).retval | 0;
      };
      assert.deepEqual([run(3, 0n), run(3, 1n), run(9, 0n), run(3, 2n)], [0, 0, -22, -22]);
      assert.deepEqual([run(3, 0n, 1418), run(3, 0n, 1419), run(3, 1n, 1419), run(1, 0n, 3000)], [0, 1, 0, 0]);
      const last = kernel.redirects.at(-1)!;
      assert.deepEqual([last.kind, last.ifindex, last.data?.length], ['clone', 1, 3000]);
      p.close();
    } finally {
      kernel.restore();
    }
  });
});

describe('a FIB description with mistakes', () => {
  const bad = (o: EmulatedKernelOptions, words: RegExp) =>
    assert.throws(() => new EmulatedKernel({ ...FIB, ...o }), (e: Error & { code?: string }) => e.code === 'ERR_BPFKIT_INVALID_ARG' && words.test(e.message));
  it('is refused with a typed error naming the problem', () => {
    bad({ routes: [{ dst: '10.9.0.0/16', via: '2001:db8::1' }] }, /not of the destination's family/);
    bad({ routes: [{ dst: '10.9.0.0/16', type: 'blackhole', dev: 2 }] }, /blackhole route has no gateway or device/);
    bad({ routes: [{ dst: '10.9.0.0/16', via: '192.0.2.1' }] }, /name the device/);
    bad({ routes: [{ dst: '10.9.0.0/16', dev: 42 }] }, /no device has ifindex 42/);
    bad({ routes: [{ dst: '10.9.0.0/33', dev: 2 }] }, /prefix length/);
    bad({ neighbours: [{ dev: 2, address: '10.1.0.7', mac: '02:00:00' }] }, /not a MAC address/);
    bad({ neighbours: [{ dev: 2, address: '10.1.0.0/24', mac: '02:00:00:00:00:01' }] }, /single address/);
    bad({ netdevs: [{ ifindex: 2, name: 'a0', mtu: 20 }] }, /MTU 20/);
  });
});
