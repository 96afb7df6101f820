/**
 * BPF_PROG_TEST_RUN in the emulated kernel, per program type, as net/bpf/test_run.c does it: the
 * context fields that go in and come back (wire_len, ifindex, ...), the frame length checks, the
 * order of the argument checks, and what changes with the kernel release imitated. The same cases
 * run against the real kernel in test/kernel/emulator-diff.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EmulatedKernel, asm, label, loadAssembly, useEmulatedKernel, type Item } from '../../src/testing/index.js';
import { setNative } from '../../src/sys/native.js';
import { VerifierError } from '../../src/errors.js';
import type { ProgType } from '../../src/abi/constants.js';
import type { Program } from '../../src/objects/program.js';
import { BpfMap } from '../../src/objects/map.js';
import type { MapSpec } from '../../src/spec/collection-spec.js';

const kernel = useEmulatedKernel({ netdevs: [{ ifindex: 7, name: 'veth0', mac: Uint8Array.from([2, 0, 0, 0, 0, 7]) }] });

const code = (e: unknown) => (e as { code?: string }).code;
function outcome(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    return code(e) ?? String(e);
  }
}

/** 'ok', or the error's code. */
function done(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    return code(e) ?? String(e);
  }
}

function frame(n: number, ethertype: number, dst: readonly number[] = [0, 0, 0, 0, 0, 0]): Uint8Array {
  const b = new Uint8Array(n);
  b.set(dst);
  b[12] = ethertype >> 8;
  b[13] = ethertype & 0xff;
  return b;
}

function skbCtx(fields: Record<number, number | bigint>): Uint8Array {
  const b = new Uint8Array(192);
  const v = new DataView(b.buffer);
  for (const [o, x] of Object.entries(fields)) {
    if (typeof x === 'bigint') v.setBigUint64(Number(o), x, true);
    else v.setUint32(Number(o), x, true);
  }
  return b;
}

const u32 = (b: Uint8Array | undefined, o: number) => new DataView(b!.buffer, b!.byteOffset).getUint32(o, true);

function withProg<T>(items: readonly Item[], type: ProgType, f: (p: Program) => T): T {
  const p = loadAssembly(items, { type, name: 't' });
  try {
    return f(p);
  } finally {
    p.close();
  }
}

describe('skb test runs', () => {
  it('cgroup_skb: a return value outside [0, 1] stops the run at the exit, naming the range; 0 and 1 run', () => {
    // r0 = the first byte of the network header (cgroup_skb runs see the frame past Ethernet).
    withProg([asm.mov64('r6', 'r1'), asm.ldx('w', 'r2', 'r1', 76), asm.ldx('w', 'r3', 'r1', 80), asm.mov64('r0', 0), asm.mov64('r4', 'r2'), asm.alu64('add', 'r4', 1),
      asm.jmp('gt', 'r4', 'r3', 'out'), asm.ldx('b', 'r0', 'r2', 0), label('out'), asm.exit()], 'cgroup_skb', (p) => {
      const run = (first: number) => {
        const f = frame(60, 0x800);
        f[14] = first;
        return outcome(() => p.testRun({ data: f }).retval);
      };
      assert.deepEqual([run(0), run(1)], [0, 1]);
      const two = frame(60, 0x800);
      two[14] = 2;
      assert.throws(() => p.testRun({ data: two }),
        (e: Error & { code?: string; insn?: number }) => e.code === 'ERR_BPFKIT_EMULATOR_FAULT' && e.insn === 8 && /returns 2: the verifier refuses a cgroup_skb program that may return a value outside \[0, 1\]/.test(e.message));
    });
    // Other program types take any value.
    withProg([asm.mov64('r0', 7), asm.exit()], 'sched_cls', (p) => assert.equal(p.testRun({ data: frame(60, 0x800) }).retval, 7));
  });

  it('IPv4 frames shorter than 34 bytes and IPv6 frames shorter than 54 are refused with EINVAL', () => {
    for (const type of ['sched_cls', 'socket_filter', 'cgroup_skb', 'lwt_in'] as const) {
      withProg([asm.mov64('r0', 1), asm.exit()], type, (p) => {
        const got = [[33, 0x800], [34, 0x800], [53, 0x86dd], [54, 0x86dd], [14, 0x806], [14, 0x8100]].map(([n, et]) => outcome(() => p.testRun({ data: frame(n!, et!) }).retval));
        assert.deepEqual(got, ['EINVAL', 1, 'EINVAL', 1, 1, 1], type);
      });
    }
  });

  it('frames from 14 to 3712 bytes (a page less NET_SKB_PAD and skb_shared_info)', () => {
    withProg([asm.mov64('r0', 1), asm.exit()], 'sched_cls', (p) => {
      assert.deepEqual([13, 14, 3712, 3713].map((n) => outcome(() => p.testRun({ data: new Uint8Array(n) }).retval)), ['EINVAL', 1, 1, 'EINVAL']);
    });
  });

  it('wire_len: 0 without a context; the packet length when the context leaves it 0; checked against the length', () => {
    withProg([asm.ldx('w', 'r0', 'r1', 160), asm.exit()], 'sched_cls', (p) => {
      const data = frame(60, 0x800);
      assert.equal(p.testRun({ data }).retval, 0);
      const r = p.testRun({ data, ctx: new Uint8Array(192) });
      assert.equal(r.retval, 60);
      assert.equal(u32(r.ctx, 160), 60);
      assert.equal(p.testRun({ data, ctx: skbCtx({ 160: 1500 }) }).retval, 1500);
      assert.equal(outcome(() => p.testRun({ data, ctx: skbCtx({ 160: 59 }) })), 'EINVAL');
      assert.equal(outcome(() => p.testRun({ data, ctx: skbCtx({ 160: 65537 }) })), 'EINVAL');
      assert.equal(outcome(() => p.testRun({ data, ctx: skbCtx({ 164: 65536 }) })), 'EINVAL');
    });
    // L3 program types see the frame from the network header: wire_len is 14 bytes shorter.
    withProg([asm.ldx('w', 'r0', 'r1', 0), asm.exit()], 'socket_filter', (p) => {
      const r = p.testRun({ data: frame(60, 0x800), ctx: new Uint8Array(192) });
      assert.equal(r.retval, 46);
      assert.equal(u32(r.ctx, 160), 46);
    });
  });

  it('ifindex names a device: 1 (loopback) by default, ENODEV for an unknown one, pkt_type against its address', () => {
    withProg([asm.ldx('w', 'r0', 'r1', 40), asm.exit()], 'sched_cls', (p) => {
      assert.equal(p.testRun({ data: frame(60, 0x800) }).retval, 1);
      assert.equal(outcome(() => p.testRun({ data: frame(60, 0x800), ctx: skbCtx({ 40: 9999 }) })), 'ENODEV');
      const r = p.testRun({ data: frame(60, 0x800), ctx: skbCtx({ 40: 7 }) });
      assert.equal(r.retval, 7);
      assert.equal(u32(r.ctx, 40), 7);
    });
    withProg([asm.ldx('w', 'r0', 'r1', 4), asm.exit()], 'sched_cls', (p) => {
      const on = (dst: number[], ifindex: number) => p.testRun({ data: frame(60, 0x800, dst), ctx: skbCtx({ 40: ifindex }) }).retval;
      const bcast = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
      // loopback's broadcast address is all zeros: ff:ff:... is only multicast there.
      assert.deepEqual([on(bcast, 1), on(bcast, 7), on([2, 0, 0, 0, 0, 7], 7), on([2, 0, 0, 0, 0, 8], 7), on([0, 0, 0, 0, 0, 0], 1)], [2, 1, 0, 3, 0]);
    });
  });

  it('the checks come in the kernel\'s order: data, context tail, device, frame length, context fields', () => {
    withProg([asm.mov64('r0', 1), asm.exit()], 'sched_cls', (p) => {
      const short = frame(20, 0x800);
      const tail = new Uint8Array(200);
      tail[199] = 1;
      assert.equal(outcome(() => p.testRun({ data: new Uint8Array(5), ctx: tail })), 'EINVAL');
      assert.equal(outcome(() => p.testRun({ data: short, ctx: tail })), 'E2BIG');
      assert.equal(outcome(() => p.testRun({ data: short, ctx: skbCtx({ 40: 9999, 0: 1 }) })), 'ENODEV');
      assert.equal(outcome(() => p.testRun({ data: short, ctx: skbCtx({ 0: 1 }) })), 'EINVAL');
    });
  });

  it('ctx_out: the fields convert_skb_to___skb returns, the program\'s writes included; the rest as given', () => {
    withProg([asm.st('w', 'r1', 8, 0x77), asm.st('w', 'r1', 48, 0x55), asm.mov64('r0', 0), asm.exit()], 'sched_cls', (p) => {
      const r = p.testRun({ data: frame(64, 0x800), ctx: skbCtx({ 32: 3, 36: 5, 152: 99n, 164: 2, 176: 1400, 184: 77n }) });
      const want = skbCtx({ 8: 0x77, 32: 3, 36: 5, 40: 1, 48: 0x55, 152: 99n, 160: 64, 164: 2, 176: 1400, 184: 77n });
      assert.deepEqual(r.ctx, want);
    });
  });
});

describe('XDP test runs', () => {
  it('the context is checked before the data, the device after it', () => {
    withProg([asm.mov64('r0', 2), asm.exit()], 'xdp', (p) => {
      const tail = new Uint8Array(32);
      tail[31] = 1;
      assert.equal(outcome(() => p.testRun({ data: new Uint8Array(5), ctx: tail })), 'E2BIG');
      const md = (ingress: number, queue: number) => {
        const b = new Uint8Array(24);
        const v = new DataView(b.buffer);
        v.setUint32(4, 64, true);
        v.setUint32(12, ingress, true);
        v.setUint32(16, queue, true);
        return b;
      };
      assert.equal(outcome(() => p.testRun({ data: new Uint8Array(64), ctx: md(9999, 0) })), 'ENODEV');
      assert.equal(outcome(() => p.testRun({ data: new Uint8Array(64), ctx: md(7, 1) })), 'EINVAL');
      assert.equal(u32(p.testRun({ data: new Uint8Array(64), ctx: md(7, 0) }).ctx, 12), 7);
    });
  });
});

describe('raw tracepoint test runs', () => {
  const prog = [asm.ldx('dw', 'r0', 'r1', 16), asm.exit()];
  it('a ctx_in shorter than what the program reads is EINVAL, before the CPU is looked at', () => {
    withProg(prog, 'raw_tracepoint', (p) => {
      const ctx = (n: number) => new Uint8Array(n).fill(1);
      assert.equal(outcome(() => p.testRun({ ctx: ctx(16) })), 'EINVAL');
      assert.equal(outcome(() => p.testRun({ ctx: ctx(16), flags: 1, cpu: 999 })), 'EINVAL');
      assert.equal(outcome(() => p.testRun({ ctx: ctx(24), flags: 1, cpu: 999 })), 'ENXIO');
      assert.equal(outcome(() => p.testRun({ ctx: ctx(24), cpu: 1 })), 'EINVAL');
      assert.equal(outcome(() => p.testRun({ ctx: ctx(104) })), 'EINVAL');
      assert.equal(p.testRun({ ctx: ctx(24) }).retval, 0x01010101);
    });
  });

  it('what the program reads is found through stack spills and subprogram arguments', () => {
    withProg([asm.stx('dw', 'r10', -8, 'r1'), asm.ldx('dw', 'r2', 'r10', -8), asm.mov64('r1', 'r2'), asm.ldx('dw', 'r0', 'r1', 40), asm.exit()], 'raw_tracepoint', (p) => {
      assert.equal(outcome(() => p.testRun({ ctx: new Uint8Array(40) })), 'EINVAL');
      assert.equal(p.testRun({ ctx: new Uint8Array(48) }).retval, 0);
    });
  });

  it('context accesses the verifier refuses are refused at load', () => {
    const refused = (items: Item[]) => assert.throws(() => loadAssembly(items, { type: 'raw_tracepoint', name: 't' }), (e: unknown) => e instanceof VerifierError && e.errno === -13);
    refused([asm.ldx('dw', 'r0', 'r1', 96), asm.exit()]);
    refused([asm.ldx('dw', 'r0', 'r1', 4), asm.exit()]);
    refused([asm.st('dw', 'r1', 0, 1), asm.mov64('r0', 0), asm.exit()]);
    assert.throws(() => loadAssembly([asm.alu64('add', 'r1', 8), asm.ldx('dw', 'r0', 'r1', 0), asm.exit()], { type: 'xdp', name: 't' }),
      /dereference of modified ctx ptr R1 off=8 disallowed/);
  });
});

describe('the kernel release imitated', () => {
  function under<T>(release: string, f: (k: EmulatedKernel) => T): T {
    const k = new EmulatedKernel({ kernel: release });
    const prev = setNative(k);
    try {
      return f(k);
    } finally {
      setNative(prev);
    }
  }
  const items = [asm.mov64('r0', 0), asm.exit()];

  it('program tags: SHA-256 from 6.18, SHA-1 before', () => {
    const tag = (release: string) => under(release, () => withProg(items, 'xdp', (p) => Buffer.from(p.info().tag).toString('hex')));
    assert.equal(tag('6.18'), tag('6.18.44-fc-v1272'));
    assert.equal(tag('6.1.0-28-amd64'), tag('6.12'));
    assert.notEqual(tag('6.12'), tag('6.18'));
    assert.equal(tag(kernel.behaviour.release), tag('6.18'));
  });

  it('XDP metadata: up to 255 bytes from 6.8, 32 before', () => {
    const meta = [asm.mov64('r6', 'r1'), asm.mov64('r2', -36), asm.call(54), asm.exit()];
    const adjust = (release: string) => under(release, () => withProg(meta, 'xdp', (p) => p.testRun({ data: new Uint8Array(64) }).retval | 0));
    assert.equal(adjust('6.18'), 0);
    assert.equal(adjust('6.12'), 0);
    assert.equal(adjust('6.1'), -13);
  });

  it('XDP ctx_in: data_end may end the linear part early from 6.18, 6.12.66 and 6.1.161 (stable backports)', () => {
    const md = new Uint8Array(24);
    new DataView(md.buffer).setUint32(4, 20, true);
    const outcome = (release: string) => under(release, () => withProg([asm.mov64('r0', 2), asm.exit()], 'xdp', (p) => {
      try {
        return p.testRun({ data: new Uint8Array(64), ctx: md }).retval;
      } catch (e) {
        return (e as { code?: string }).code;
      }
    }));
    for (const r of ['6.18', '6.12', '6.12.66', '6.1', '6.1.0-57-amd64', '6.1.161']) assert.equal(outcome(r), 2, r);
    for (const r of ['6.12.65', '6.6', '6.1.160']) assert.equal(outcome(r), 'EINVAL', r);
  });

  it('stores of an immediate into the context: refused before 6.3 whatever the field', () => {
    const st = [asm.st('w', 'r1', 8, 7), asm.mov64('r0', 0), asm.exit()];
    const stx = [asm.mov64('r2', 7), asm.stx('w', 'r1', 8, 'r2'), asm.mov64('r0', 0), asm.exit()];
    const load = (release: string, items: Item[]) => under(release, () => {
      try {
        loadAssembly(items, { type: 'sched_cls', name: 't' }).close();
        return 'loaded';
      } catch (e) {
        return e instanceof VerifierError ? `${e.errno} ${/BPF_ST stores into R1 ctx is not allowed/.test(e.message)}` : String(e);
      }
    });
    assert.equal(load('6.3', st), 'loaded');
    assert.equal(load('6.1', st), '-13 true');
    assert.equal(load('6.1', stx), 'loaded');
  });

  it('helper flags a release does not know are EINVAL: adjust_room DECAP_L3 and NO_TUNNEL_KEY before 6.3', () => {
    const frame = new Uint8Array(74);
    frame.set([0x08, 0x00], 12);
    frame.set([0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6], 14);
    const call = (helper: number, args: bigint[]) => [asm.mov64('r6', 'r1'), ...args.flatMap((a, i) => asm.ld64(`r${i + 2}` as 'r2', a)), asm.mov64('r1', 'r6'), asm.call(helper), asm.exit()];
    const ret = (release: string, items: Item[]) => under(release, () => withProg(items, 'sched_cls', (p) => p.testRun({ data: frame }).retval | 0));
    const decap = call(50, [BigInt.asUintN(64, -20n), 1n, 1n << 7n]);
    assert.equal(ret('6.3', decap), 0);
    assert.equal(ret('6.1', decap), -22);
    const key = [asm.mov64('r6', 'r1'), ...Array.from({ length: 6 }, (_, i) => asm.st('dw', 'r10', -48 + 8 * i, 0)), asm.mov64('r1', 'r6'), asm.mov64('r2', 'r10'),
      asm.alu64('add', 'r2', -48), asm.mov64('r3', 44), asm.mov64('r4', 16), asm.call(21), asm.exit()];
    assert.equal(ret('6.3', key), 0);
    assert.equal(ret('6.1', key), -22);
  });

  it('maps: freezing twice, and per-CPU arrays in maps of maps, as each release answers', () => {
    const spec = (type: 'array' | 'percpu_array' | 'array_of_maps', maxEntries: number, innerMap?: MapSpec): MapSpec => ({
      name: 'm', type, keySize: 4, valueSize: 4, maxEntries, flags: 0, numaNode: 0, mapExtra: 0n, pinning: 'none', btf: undefined,
      keyTypeId: 0, valueTypeId: 0, innerMap, contents: [], data: undefined, freeze: false, section: '',
    });
    const code = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    const freezeTwice = (release: string) => under(release, () => {
      const m = BpfMap.create(spec('array', 1));
      try {
        m.freeze();
        return code(() => m.freeze());
      } finally {
        m.close();
      }
    });
    assert.equal(freezeTwice('6.12'), 'EPERM');
    assert.equal(freezeTwice('6.1'), 'EBUSY');
    const otherSize = (release: string) => under(release, () => {
      const inner = spec('percpu_array', 4);
      const tmpl = BpfMap.create(inner);
      const outer = BpfMap.create(spec('array_of_maps', 1, inner), { innerMapFd: tmpl.fd });
      const bigger = BpfMap.create(spec('percpu_array', 8));
      try {
        return code(() => outer.update(new Uint8Array(4), new Uint8Array(new Uint32Array([bigger.fd]).buffer)));
      } finally {
        for (const m of [bigger, outer, tmpl]) m.close();
      }
    });
    assert.equal(otherSize('6.18'), 'EINVAL');
    assert.equal(otherSize('6.12'), 'ok');
  });

  it('a release that is not a version is refused with a clear error', () => {
    assert.throws(() => new EmulatedKernel({ kernel: 'latest' }), /kernel release "latest" is not of the form/);
  });
});

describe('device maps and redirects', () => {
  const u32s = (...v: number[]) => new Uint8Array(new Uint32Array(v).buffer);
  const mapSpec = (type: 'devmap' | 'devmap_hash' | 'cpumap', valueSize = 4) => ({
    name: 'dev', type, keySize: 4, valueSize, maxEntries: 4, flags: 0, numaNode: 0, mapExtra: 0n, pinning: 'none' as const, btf: undefined,
    keyTypeId: 0, valueTypeId: 0, innerMap: undefined, contents: [], data: undefined, freeze: false, section: '',
  });

  it('a devmap holds known devices; bpf_redirect_map returns XDP_REDIRECT for an entry and the flags\' low bits otherwise', async () => {
    const { BpfMap } = await import('../../src/objects/map.js');
    const dev = BpfMap.create(mapSpec('devmap'));
    try {
      assert.equal(done(() => dev.update(u32s(0), u32s(7))), 'ok');
      assert.equal(done(() => dev.update(u32s(1), u32s(4242))), 'EINVAL', 'no such device');
      assert.equal(done(() => dev.update(u32s(9), u32s(1))), 'E2BIG');
      assert.equal(done(() => dev.update(u32s(0), u32s(1), 'noexist')), 'EEXIST');
      assert.deepEqual([...dev.lookupBytes(u32s(0))!], [7, 0, 0, 0]);
      const before = kernel.redirects.length;
      const run = (key: number, flags: number) => withProg([asm.ldMapFd('r1', dev.fd), asm.mov64('r2', key), asm.mov64('r3', flags), asm.call(51), asm.exit()].flat(), 'xdp',
        (p) => p.testRun({ data: new Uint8Array(64) }).retval);
      assert.deepEqual([run(0, 0), run(1, 0), run(1, 2), run(1, 4)], [4, 0, 2, 0]);
      assert.deepEqual(kernel.redirects.slice(before), [{ ifindex: 7, flags: 0n, map: 'dev', key: 0 }]);
      assert.equal(done(() => dev.delete(u32s(0))), 'ok');
      assert.equal(run(0, 1), 1);
    } finally {
      dev.close();
    }
  });

  it('a cpumap takes queue sizes for possible CPUs', async () => {
    const { BpfMap } = await import('../../src/objects/map.js');
    const cpu = BpfMap.create(mapSpec('cpumap'));
    try {
      assert.equal(done(() => cpu.update(u32s(0), u32s(64))), 'ok');
      assert.equal(done(() => cpu.update(u32s(0), u32s(16385))), 'EOVERFLOW');
      assert.equal(done(() => cpu.update(u32s(kernel.cpus), u32s(64))), kernel.cpus < 4 ? 'ENODEV' : 'E2BIG');
    } finally {
      cpu.close();
    }
  });
});

describe('memory follows what a test touches', () => {
  it('a 33.5M-entry array allocates nothing until used, then only the chunks a program touches; elements stay bounded', async () => {
    const { BpfMap } = await import('../../src/objects/map.js');
    const m = BpfMap.create({
      name: 'big', type: 'percpu_array', keySize: 4, valueSize: 12, maxEntries: 33_554_432, flags: 0, numaNode: 0, mapExtra: 0n, pinning: 'none', btf: undefined,
      keyTypeId: 0, valueTypeId: 0, innerMap: undefined, contents: [], data: undefined, freeze: false, section: '',
    });
    try {
      const emu = kernel.map(m.fd) as unknown as { allocatedBytes: number };
      assert.equal(emu.allocatedBytes, 0);
      // user-space reads of untouched elements allocate nothing
      assert.equal(m.lookupBytes(new Uint8Array(new Uint32Array([33_554_431]).buffer))!.every((b) => b === 0), true);
      assert.equal(emu.allocatedBytes, 0);
      const write = (index: number, off: number, size: 'w' | 'dw') => withProg([
        asm.st('w', 'r10', -4, index), asm.ldMapFd('r1', m.fd), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4), asm.call(1),
        asm.jmp('eq', 'r0', 0, 'out'), asm.st(size, 'r0', off, 7), label('out'), asm.mov64('r0', 0), asm.exit(),
      ].flat(), 'xdp', (p) => {
        try {
          return p.testRun({ data: new Uint8Array(64) }).retval;
        } catch (e) {
          return (e as Error).message;
        }
      });
      for (const i of [0, 1, 20_000_000, 33_554_431]) assert.equal(write(i, 8, 'w'), 0);
      assert.ok(emu.allocatedBytes <= 3 * 65536 * kernel.cpus, `${emu.allocatedBytes} bytes for 3 chunks`);
      const v = m.lookupBytes(new Uint8Array(new Uint32Array([20_000_000]).buffer))!;
      assert.equal(v[kernel.cpu * 16 + 8], 7, 'the write landed in the element, on the CPU that ran');
      // an access past the element's 12 bytes faults even though the next element follows in memory
      assert.match(String(write(5, 8, 'dw')), /write of 8 bytes at offset 8 is outside a value of map big \(12 bytes\)/);
    } finally {
      m.close();
    }
  });
});
