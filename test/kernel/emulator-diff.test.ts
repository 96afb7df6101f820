/**
 * The emulator agrees with the kernel: the same programs, the same inputs, run once in the real
 * kernel (the native addon) and once in bpfkit/testing's emulated kernel, in one process, and
 * every observable result compared — return values, output packets, map contents, ring buffer
 * records, errno values, program info. Thousands of random straight-line programs cover the
 * instruction set; the project's test objects cover real compiled code.
 *
 * Each scenario runs as a function twice: first with the real syscall interface, then with the
 * emulator installed (and restored afterwards). Objects are created and closed inside the
 * function, so each backend closes what it created.
 *
 * Known, deliberate differences are not compared: LRU eviction choices (the kernel's LRU is
 * approximate), hash iteration order (the kernel's follows its hash buckets), which CPU a test run
 * executes on (per-CPU values are compared as sums), and JIT output (the emulator has none).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { asm, assemble, disassemble, label, loadAssembly, readInsn, type Item } from '../../src/testing/index.js';
import { FUZZ_VALUE_SIZE, fuzzProgram, mulberry32 } from '../../src/testing/fuzz.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { Collection } from '../../src/load/collection.js';
import { BpfMap } from '../../src/objects/map.js';
import type { Program } from '../../src/objects/program.js';
import { native } from '../../src/sys/native.js';
import { possibleCpus } from '../../src/sys/cpus.js';
import { mapBatch } from '../../src/sys/bpf.js';
import { VerifierError } from '../../src/errors.js';
import type { MapSpec } from '../../src/spec/collection-spec.js';
import { kernelTest, obj } from '../helpers/index.js';
import { agree, both, PerfRings, show } from '../helpers/emulator-diff.js';
import { allowedCpus, onCpu } from '../helpers/cpus.js';
import { haveCpuV4 } from '../../src/kernel/features.js';
import { compareInNamespace } from '../helpers/fib-net.js';
import { FIB_INPUTS, FIB_TOPOLOGY, cloneHelperRuns, fibHelperRuns } from '../helpers/fib-scenarios.js';

function spec(type: MapSpec['type'], keySize: number, valueSize: number, maxEntries: number, flags = 0, innerMap?: MapSpec): MapSpec {
  return {
    name: 'diff', type, keySize, valueSize, maxEntries, flags, numaNode: 0, mapExtra: 0n, pinning: 'none', btf: undefined,
    keyTypeId: 0, valueTypeId: 0, innerMap, contents: [], data: undefined, freeze: false, section: '',
  };
}

type PacketProg = 'xdp' | 'sched_cls' | 'socket_filter';

/** Loads instructions; the negative errno when refused. */
function loadRaw(items: readonly Item[], type: PacketProg = 'xdp', flags = 0): Program | number {
  try {
    return loadAssembly(items, { type, flags, name: 'diff' });
  } catch (e) {
    if (e instanceof VerifierError) return e.errno;
    throw e;
  }
}

function mustLoad(items: readonly Item[], type: PacketProg = 'xdp', flags = 0): Program {
  return loadAssembly(items, { type, flags, name: 'diff' });
}

/** A test run's outcome: retval and packet, or the error code. */
function run(p: Program, data: Uint8Array): { retval: number; data: string } | string {
  try {
    const r = p.testRun({ data });
    return { retval: r.retval, data: Buffer.from(r.data ?? []).toString('hex') };
  } catch (e) {
    return (e as { code: string }).code;
  }
}

function attempt(f: () => unknown): unknown {
  try {
    const r = f();
    return r === undefined ? 'ok' : r;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

/** Reads a ring buffer through its mmap as a consumer does (records and the positions). */
function readRing(fd: number, size: number): { records: string[]; producer: number } {
  const n = native();
  const cons = n.mmap(fd, 4096, 3, 1, 0);
  const prod = n.mmap(fd, 4096 + 2 * size, 1, 1, 4096);
  if (!(cons instanceof ArrayBuffer) || !(prod instanceof ArrayBuffer)) throw new Error('mmap failed');
  const cv = new DataView(cons);
  const pv = new DataView(prod);
  let c = Number(cv.getBigUint64(0, true));
  const p = Number(pv.getBigUint64(0, true));
  const records: string[] = [];
  while (c < p) {
    const at = 4096 + (c & (size - 1));
    const hdr = pv.getUint32(at, true);
    if (hdr & 0x80000000) break;
    const len = hdr & 0x3fffffff;
    records.push(`${hdr & 0x40000000 ? 'discarded' : Buffer.from(new Uint8Array(prod, at + 8, len)).toString('hex')}@${pv.getUint32(at + 4, true)}`);
    c += (len + 8 + 7) & ~7;
  }
  cv.setBigUint64(0, BigInt(c), true);
  n.munmap(cons);
  n.munmap(prod);
  return { records, producer: p };
}

describe('random programs: ALU, ALU32, JMP, JMP32, loads, stores, atomics', kernelTest, () => {
  it('1500 random straight-line programs leave the same registers, stack and retval', async () => {
    const N = 1500;
    // Probe: cpu v4 instructions (6.6) only where the kernel's verifier takes them.
    const cpuV4 = haveCpuV4();
    const results = await both(() => {
      const map = BpfMap.create(spec('array', 4, FUZZ_VALUE_SIZE, 1));
      const out: string[] = [];
      for (let seed = 1; seed <= N; seed++) {
        const p = loadRaw(fuzzProgram(mulberry32(seed), map.fd, { length: 64, cpuV4 }));
        if (typeof p === 'number') {
          out.push(`refused ${p}`);
          continue;
        }
        const r = p.testRun({ data: new Uint8Array(14) });
        p.close();
        out.push(`${r.retval} ${Buffer.from(map.lookupBytes(0)!).toString('hex')}`);
      }
      map.close();
      return out;
    });
    const bad: string[] = [];
    for (let i = 0; i < N; i++) {
      if (results.kernel[i] === results.emulator[i]) continue;
      const seed = i + 1;
      const insns = assemble(fuzzProgram(mulberry32(seed), 0, { length: 64, cpuV4 }));
      const listing = Array.from({ length: insns.length / 8 }, (_, k) => `${k}: ${disassemble(readInsn(insns, k))}`).join('\n');
      bad.push(`seed ${seed}\n kernel   ${results.kernel[i]}\n emulator ${results.emulator[i]}\n${listing}`);
    }
    assert.ok(!results.kernel.some((r) => r.startsWith('refused')), 'every generated program passes the verifier');
    assert.equal(bad.length, 0, bad.slice(0, 2).join('\n\n'));
  });
});

describe('packet_count.bpf.o', kernelTest, () => {
  it('same verdicts, packets and counts for 400 generated frames', async () => {
    const rnd = mulberry32(42);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 400; i++) {
      const len = rnd() < 0.15 ? 14 + Math.floor(rnd() * 20) : 34 + Math.floor(rnd() * 100);
      const f = new Uint8Array(len);
      for (let k = 0; k < len; k++) f[k] = Math.floor(rnd() * 256);
      if (rnd() < 0.85) f.set([0x08, 0x00], 12);
      if (len >= 30) f.set([10, 0, Math.floor(rnd() * 3), Math.floor(rnd() * 8)], 26);
      frames.push(f);
    }
    await agree(async () => {
      const coll = await Collection.load(await CollectionSpec.fromFile(obj('packet_count')));
      try {
        const p = coll.programs.get('xdp_prog_func')!;
        const runs = frames.map((f) => run(p, f));
        const counts = [...coll.maps.get('xdp_stats_map')!.entries()].sort((a, b) => Number(a[0]) - Number(b[0]));
        return { runs, counts };
      } finally {
        coll.close();
      }
    });
  });
});

function cmd(op: number, key: number, val: number, flags = 0): Uint8Array {
  const b = new Uint8Array(14);
  const v = new DataView(b.buffer);
  b[0] = op;
  b[1] = flags;
  v.setUint32(4, key >>> 0, true);
  v.setUint32(8, val >>> 0, true);
  return b;
}

describe('maps.bpf.o', kernelTest, () => {
  it('a random sequence of 1500 opcodes returns the same values and leaves the same maps', async () => {
    const rnd = mulberry32(7);
    const ops: [number, number, number, number][] = [];
    const pick = (n: number) => Math.floor(rnd() * n);
    const perCpuOps = new Set([0x03, 0x04, 0x06]);
    for (let i = 0; i < 1500; i++) {
      const op = [0x00, 0x01, 0x02, 0x03, 0x04, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14][pick(19)]!;
      const key = op === 0x02 ? pick(10) : op === 0x12 || op === 0x13 ? pick(6) : op === 0x10 || op === 0x11 ? pick(9) : pick(24);
      const val = op === 0x07 ? [0x0000000a, 0x0500000a, 0x0501000a, 0x0102000a, 0x050000c0, 0x0500000b][pick(6)]! : Math.floor(rnd() * 2 ** 32);
      const flags = op === 0x12 ? pick(16) : op === 0x08 || op === 0x0a ? [0, 0, 2, 1][pick(4)]! : 0;
      ops.push([op, key, val, flags]);
    }
    await agree(async () => {
      const coll = await Collection.load(await CollectionSpec.fromFile(obj('maps')));
      try {
        const m = (n: string) => coll.maps.get(n)!;
        m('lpm_trie').update(new Uint8Array([24, 0, 0, 0, 10, 0, 0, 0]), 513);
        m('lpm_trie').update(new Uint8Array([8, 0, 0, 0, 10, 0, 0, 0]), 8);
        m('lpm_trie').update(new Uint8Array([32, 0, 0, 0, 10, 0, 2, 1]), 32);
        m('prog_array').update(1, coll.programs.get('xdp_tail_target')!.fd);
        m('inner_map_a').update(0, 0x39);
        m('hash_of_maps').update(7, m('inner_map_b').fd);
        m('inner_map_b').update(0, 0x40);
        const p = coll.programs.get('xdp_maps')!;
        const rets = ops.map(([op, key, val, flags]) => {
          const r = p.testRun({ data: cmd(op, key, val, flags) }).retval;
          return perCpuOps.has(op) ? '(per-CPU)' : r;
        });
        const sum = (v: unknown) => (v as bigint[]).reduce((a, b) => a + b, 0n);
        const sorted = (e: [unknown, unknown][]) => e.map(([k, v]) => [k, typeof v === 'object' && v && !Array.isArray(v) ? JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}` : x instanceof Uint8Array ? [...x] : x)) : v]).sort((a, b) => Number(a[0]) - Number(b[0]));
        const drain = (name: string) => {
          const out: unknown[] = [];
          for (let v = m(name).pop(); v !== undefined; v = m(name).pop()) out.push(v);
          return out;
        };
        return {
          rets,
          hash: sorted([...m('hash_map').entries()]),
          array: [...m('array_map').entries()],
          percpuArray: [...m('percpu_array').values()].map(sum),
          percpuHash: [...m('percpu_hash').entries()].map(([k, v]) => [k, sum(v)]).sort((a, b) => Number(a[0]) - Number(b[0])),
          rich: sorted([...m('rich_map').entries()]),
          queue: drain('queue'),
          stack: drain('stack'),
          ring: readRing(m('ringbuf').fd, 16384),
        };
      } finally {
        coll.close();
      }
    });
  });
});

describe('globals, subprograms, legacy maps', kernelTest, () => {
  it('globals.bpf.o: 200 inputs give the same results and the same .bss/.data', async () => {
    const rnd = mulberry32(3);
    const inputs = Array.from({ length: 200 }, () => Math.floor(rnd() * 2 ** 32));
    await agree(async () => {
      const coll = await Collection.load(await CollectionSpec.fromFile(obj('globals')));
      try {
        const p = coll.programs.get('xdp_globals')!;
        const rets = inputs.map((x) => {
          const b = new Uint8Array(14);
          new DataView(b.buffer).setUint32(0, x, true);
          return p.testRun({ data: b }).retval;
        });
        const vars = [...coll.variables].map(([n, v]) => [n, JSON.stringify(v.get(), (_, x) => (typeof x === 'bigint' ? `${x}` : x instanceof Uint8Array ? [...x] : x))]);
        return { rets, vars };
      } finally {
        coll.close();
      }
    });
  });

  it('subprog.bpf.o and subprog_same_section.bpf.o: 300 random calls each', async () => {
    const rnd = mulberry32(11);
    const inputs = Array.from({ length: 300 }, () => [Math.floor(rnd() * 6), Math.floor(rnd() * 2 ** 32)] as const);
    await agree(async () => {
      const packet = (mode: number, x: number) => {
        const b = new Uint8Array(14);
        b[0] = mode;
        new DataView(b.buffer).setUint32(4, x, true);
        return b;
      };
      const a = await Collection.load(await CollectionSpec.fromFile(obj('subprog')));
      const b = await Collection.load(await CollectionSpec.fromFile(obj('subprog_same_section')));
      try {
        return inputs.map(([mode, x]) => [
          a.programs.get('xdp_subprog')!.testRun({ data: packet(mode, x) }).retval,
          a.programs.get('tc_subprog')!.testRun({ data: packet(mode, x) }).retval,
          b.programs.get('xdp_same_section')!.testRun({ data: packet(mode, x) }).retval,
        ]);
      } finally {
        a.close();
        b.close();
      }
    });
  });
});

describe('ringbuf.bpf.o', kernelTest, () => {
  it('submit, discard and output: same retvals, same records and headers, read through the mmap', async () => {
    const rnd = mulberry32(5);
    const steps = Array.from({ length: 120 }, () => ({
      prog: ['xdp_ringbuf_submit', 'xdp_ringbuf_discard', 'xdp_ringbuf_output'][Math.floor(rnd() * 3)]!,
      count: rnd() < 0.1 ? 0 : rnd() < 0.2 ? 300 : Math.floor(rnd() * 140),
      tag: Math.floor(rnd() * 2 ** 32),
      flags: [0, 1, 2, 3][Math.floor(rnd() * 4)]!,
      read: rnd() < 0.3,
    }));
    await agree(async () => {
      const coll = await Collection.load(await CollectionSpec.fromFile(obj('ringbuf')));
      try {
        const fd = coll.maps.get('events')!.fd;
        return steps.map((s) => {
          const b = new Uint8Array(14);
          const v = new DataView(b.buffer);
          v.setUint32(0, s.count, true);
          v.setUint32(4, s.tag, true);
          v.setUint32(8, s.flags, true);
          const retval = coll.programs.get(s.prog)!.testRun({ data: b }).retval;
          return s.read ? { retval, ...readRing(fd, 16384) } : { retval };
        });
      } finally {
        coll.close();
      }
    });
  });
});

describe('calls, tail calls, loops', kernelTest, () => {
  it('a program that tail-calls itself runs 34 times (MAX_TAIL_CALL_CNT 33)', async () => {
    await agree(() => {
      const counter = BpfMap.create(spec('array', 4, 8, 1));
      const jmp = BpfMap.create(spec('prog_array', 4, 4, 1));
      const p = mustLoad([
        asm.mov64('r6', 'r1'), asm.st('w', 'r10', -4, 0), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4),
        ...asm.ldMapFd('r1', counter.fd), asm.call(1), asm.jmp('eq', 'r0', 0, 'out'), asm.mov64('r1', 1), asm.atomic('dw', 'add', 'r0', 0, 'r1'),
        asm.mov64('r1', 'r6'), ...asm.ldMapFd('r2', jmp.fd), asm.mov64('r3', 0), asm.call(12),
        label('out'), asm.mov64('r0', 2), asm.exit(),
      ]);
      jmp.update(0, p.fd);
      p.testRun({ data: new Uint8Array(14) });
      const n = counter.lookup(0);
      p.close();
      jmp.close();
      counter.close();
      return n;
    });
  });

  it('bpf_loop: iterations, early stop, -EINVAL for flags, -E2BIG past 1 << 23', async () => {
    await agree(() => {
      const map = BpfMap.create(spec('array', 4, 8, 1));
      const outcome = (n: number, stopAt: number, flags: number) => {
        const p = mustLoad([
          asm.st('w', 'r10', -4, 0), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4), ...asm.ldMapFd('r1', map.fd), asm.call(1),
          asm.jmp('ne', 'r0', 0, 'go'), asm.exit(), label('go'), asm.mov64('r6', 'r0'),
          asm.st('dw', 'r10', -16, 0), asm.mov64('r1', n), ...asm.ldFunc('r2', 'cb'), asm.mov64('r3', 'r10'), asm.alu64('add', 'r3', -16),
          asm.mov64('r4', flags), asm.call(181), asm.stx('dw', 'r6', 0, 'r0'), asm.ldx('dw', 'r1', 'r10', -16), asm.mov64('r0', 'r1'), asm.exit(),
          label('cb'), asm.ldx('dw', 'r3', 'r2', 0), asm.alu64('add', 'r3', 'r1'), asm.stx('dw', 'r2', 0, 'r3'),
          asm.mov64('r0', 0), asm.jmp('ne', 'r1', stopAt, 'ret'), asm.mov64('r0', 1), label('ret'), asm.exit(),
        ]);
        const sum = p.testRun({ data: new Uint8Array(14) }).retval;
        p.close();
        return [sum, map.lookup(0)];
      };
      const out = [outcome(100, 1000, 0), outcome(100, 17, 0), outcome(10, 1000, 1), outcome((1 << 23) + 1, 1000, 0), outcome(0, 0, 0)];
      map.close();
      return out;
    });
  });

  it('BPF-to-BPF calls nested seven deep', async () => {
    await agree(() => {
      const items: Item[] = [asm.mov64('r1', 1)];
      for (let i = 0; i < 7; i++) {
        items.push(asm.mov64('r6', i), asm.callLocal(`f${i}`), asm.alu64('add', 'r0', 'r6'), asm.exit());
        items.push(label(`f${i}`), asm.mov64('r1', 'r1'), asm.alu64('mul', 'r1', 3), asm.st('dw', 'r10', -8, i));
      }
      items.push(asm.mov64('r0', 'r1'), asm.exit());
      const p = mustLoad(items);
      const r = p.testRun({ data: new Uint8Array(14) }).retval;
      p.close();
      return r;
    });
  });
});

describe('XDP packets', kernelTest, () => {
  /** A program that calls `helper` with the s32 at packet offset 0 and returns its result. */
  const adjust = (helper: number): Item[] => [
    asm.mov64('r6', 'r1'), asm.ldx('w', 'r2', 'r1', 0), asm.ldx('w', 'r3', 'r1', 4), asm.mov64('r4', 'r2'), asm.alu64('add', 'r4', 4),
    asm.mov64('r0', 99), asm.jmp('gt', 'r4', 'r3', 'out'), asm.ldx('w', 'r2', 'r2', 0), asm.mov64('r1', 'r6'), asm.call(helper), label('out'), asm.exit(),
  ];
  const delta = (d: number, n: number) => {
    const b = new Uint8Array(n);
    for (let i = 4; i < n; i++) b[i] = i & 0xff;
    new DataView(b.buffer).setInt32(0, d, true);
    return b;
  };

  it('adjust_head, adjust_tail and adjust_meta at and past their limits', async () => {
    const cases: [number, number, number][] = [];
    for (const d of [-300, -217, -216, -100, -1, 0, 1, 40, 50, 51, 100]) cases.push([44, d, 64]);
    for (const d of [-51, -50, -1, 0, 1, 100, 3456, 3457, 5000]) cases.push([65, d, 64]);
    for (const d of [-300, -220, -216, -36, -32, -4, -3, -1, 0, 4]) cases.push([54, d, 64]);
    for (const d of [-1, 1, 100, 4000, -100, -4000]) cases.push([65, d, 5000]);
    await agree(() => {
      const progs = new Map([44, 65, 54].map((h) => [h, mustLoad(adjust(h))]));
      const out = cases.map(([h, d, n]) => [h, d, n, run(progs.get(h)!, delta(d, n))]);
      for (const p of progs.values()) p.close();
      return out;
    });
  });

  it('packets past the linear part go to fragments: data_end, xdp_get_buff_len and the data out', async () => {
    await agree(() => {
      const lin = mustLoad([asm.ldx('w', 'r2', 'r1', 0), asm.ldx('w', 'r0', 'r1', 4), asm.alu64('sub', 'r0', 'r2'), asm.exit()]);
      const total = mustLoad([asm.call(188), asm.exit()]);
      const out = [14, 100, 3520, 3521, 4000, 9000].map((n) => {
        const data = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
        return [n, run(lin, data), run(total, data)];
      });
      lin.close();
      total.close();
      return out;
    });
  });

  it('packets shorter than ETH_HLEN are refused', async () => {
    await agree(() => {
      const p = mustLoad([asm.mov64('r0', 2), asm.exit()]);
      const out = [0, 1, 13, 14].map((n) => run(p, new Uint8Array(n)));
      p.close();
      return out;
    });
  });
});

describe('skb programs', kernelTest, () => {
  it('__sk_buff fields of tc and socket filter test runs', async () => {
    const fields: Record<string, [number, boolean]> = {
      len: [0, true], pkt_type: [4, true], mark: [8, true], queue_mapping: [12, true], protocol: [16, true], vlan_present: [20, true],
      priority: [32, true], ingress_ifindex: [36, true], ifindex: [40, true], tc_index: [44, true], hash: [68, true],
      tc_classid: [72, false], napi_id: [84, true], wire_len: [160, false], gso_segs: [164, true], gso_size: [176, true],
    };
    const frames = [
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00],
      [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd],
      [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x08, 0x06],
      [1, 0, 0x5e, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x08, 0x00],
    ].map((h) => {
      const b = new Uint8Array(60);
      b.set(h);
      return b;
    });
    await agree(() => {
      const out: unknown[] = [];
      for (const type of ['sched_cls', 'socket_filter'] as const) {
        for (const [name, [off, everywhere]] of Object.entries(fields)) {
          if (!everywhere && type === 'socket_filter') continue;
          const p = mustLoad([asm.ldx('w', 'r0', 'r1', off), asm.exit()], type);
          out.push([type, name, frames.map((f) => run(p, f))]);
          p.close();
        }
        const ld = mustLoad([asm.mov64('r6', 'r1'), asm.raw(0x28, 0, 0, 0, 12), asm.exit()], type);
        out.push([type, 'ld_abs', frames.map((f) => run(ld, f))]);
        ld.close();
      }
      return out;
    });
  });
});

describe('test-run semantics per program type', kernelTest, () => {
  const outcome = (f: () => unknown): unknown => {
    try {
      return f();
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    }
  };
  const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('hex') : null);
  const frame = (n: number, ethertype: number, dst = [0, 0, 0, 0, 0, 0]) => {
    const b = new Uint8Array(n);
    b.set(dst);
    b[12] = ethertype >> 8;
    b[13] = ethertype & 0xff;
    for (let i = 14; i < n; i++) b[i] = i;
    return b;
  };
  const skbCtx = (fields: Record<number, number | bigint>) => {
    const b = new Uint8Array(192);
    const v = new DataView(b.buffer);
    for (const [o, x] of Object.entries(fields)) {
      if (typeof x === 'bigint') v.setBigUint64(Number(o), x, true);
      else v.setUint32(Number(o), x, true);
    }
    return b;
  };

  it('skb programs: frame lengths per ethertype, wire_len and ifindex in and out, the order of the checks', async () => {
    await agree(() => {
      const out: unknown[] = [];
      for (const type of ['sched_cls', 'socket_filter', 'cgroup_skb'] as const) {
        // cgroup_skb programs must return 0 or 1.
        const p = loadAssembly([asm.ldx('w', 'r0', 'r1', 0), ...(type === 'cgroup_skb' ? [asm.alu64('and', 'r0', 1)] : []), asm.exit()], { type, name: 'diff' });
        for (const [n, et] of [[14, 0x800], [33, 0x800], [34, 0x800], [20, 0x86dd], [53, 0x86dd], [54, 0x86dd], [14, 0x806], [15, 0x8100], [20, 0x0050], [3712, 0x800], [3713, 0x800]]) {
          out.push([type, n, et, outcome(() => p.testRun({ data: frame(n!, et!) }).retval)]);
        }
        const r = outcome(() => {
          const x = p.testRun({ data: frame(60, 0x800), ctx: new Uint8Array(192) });
          return [x.retval, hex(x.ctx)];
        });
        out.push([type, 'ctx', r]);
        p.close();
      }
      const tc = (off: number) => loadAssembly([asm.ldx('w', 'r0', 'r1', off), asm.exit()], { type: 'sched_cls', name: 'diff' });
      for (const [name, off] of [['wire_len', 160], ['ifindex', 40], ['pkt_type', 4], ['protocol', 16], ['ingress_ifindex', 36], ['gso_segs', 164], ['gso_size', 176]] as const) {
        const p = tc(off);
        const cases: [string, Uint8Array, Uint8Array | undefined][] = [
          ['none', frame(60, 0x800), undefined],
          ['zero', frame(60, 0x800), new Uint8Array(192)],
          ['wire 1500', frame(60, 0x800), skbCtx({ 160: 1500 })],
          ['wire short', frame(60, 0x800), skbCtx({ 160: 59 })],
          ['wire huge', frame(60, 0x800), skbCtx({ 160: 65537 })],
          ['segs', frame(60, 0x800), skbCtx({ 164: 65535, 176: 1400 })],
          ['segs huge', frame(60, 0x800), skbCtx({ 164: 65536 })],
          ['lo', frame(60, 0x86dd, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), skbCtx({ 40: 1, 36: 3 })],
          ['no dev', frame(60, 0x800), skbCtx({ 40: 0x7ffffff0 })],
          ['no dev, short', frame(20, 0x800), skbCtx({ 40: 0x7ffffff0, 0: 1 })],
          ['short, bad field', frame(20, 0x800), skbCtx({ 0: 1 })],
          ['all fields', frame(64, 0x800), skbCtx({ 8: 7, 32: 3, 36: 5, 48: 0xaa, 152: 99n, 164: 2, 176: 1400, 184: 77n })],
        ];
        for (const [what, data, ctx] of cases) {
          out.push([name, what, outcome(() => {
            const x = p.testRun({ data, ctx });
            return [x.retval, hex(x.ctx)];
          })]);
        }
        p.close();
      }
      return out;
    });
  });

  it('raw tracepoints: ctx_in against what the program reads, then the CPU', async () => {
    await agree(() => {
      const out: unknown[] = [];
      const progs = [
        [asm.ldx('dw', 'r0', 'r1', 16), asm.exit()],
        [asm.stx('dw', 'r10', -8, 'r1'), asm.ldx('dw', 'r2', 'r10', -8), asm.mov64('r1', 'r2'), asm.ldx('w', 'r0', 'r1', 44), asm.exit()],
        [asm.mov64('r0', 0), asm.exit()],
      ];
      for (const items of progs) {
        const p = loadAssembly(items, { type: 'raw_tracepoint', name: 'diff' });
        for (const [n, flags, cpu] of [[0, 0, 0], [8, 0, 0], [16, 0, 0], [24, 0, 0], [24, 0, 1], [16, 1, 999], [24, 1, 999], [48, 1, 999], [48, 0, 0], [96, 0, 0], [104, 0, 0]]) {
          out.push([n, flags, cpu, outcome(() => p.testRun({ ctx: n ? Uint8Array.from({ length: n! }, (_, i) => i) : undefined, flags, cpu }).retval)]);
        }
        p.close();
      }
      for (const items of [[asm.ldx('dw', 'r0', 'r1', 96), asm.exit()], [asm.ldx('w', 'r0', 'r1', 6), asm.exit()], [asm.st('dw', 'r1', 0, 1), asm.mov64('r0', 0), asm.exit()],
        [asm.alu64('add', 'r1', 8), asm.ldx('dw', 'r0', 'r1', 0), asm.exit()]]) {
        out.push(outcome(() => {
          try {
            loadAssembly(items, { type: 'raw_tracepoint', name: 'diff' }).close();
            return 'loaded';
          } catch (e) {
            return e instanceof VerifierError ? e.errno : String(e);
          }
        }));
      }
      return out;
    });
  });

  it('context fields the verifier refuses are refused at load: every offset and size, per program type', async () => {
    await agree(() => {
      const out: unknown[] = [];
      for (const type of ['xdp', 'sched_cls', 'socket_filter', 'cgroup_skb', 'lwt_in', 'lwt_out', 'lwt_xmit', 'lwt_seg6local'] as const) {
        for (let off = 0; off < 196; off += 2) {
          for (const [size, op] of [['b', 'r'], ['h', 'r'], ['w', 'r'], ['dw', 'r'], ['w', 'w'], ['dw', 'w']] as const) {
            const bytes = { b: 1, h: 2, w: 4, dw: 8 }[size];
            if (off % bytes !== 0 && !(size === 'b')) continue;
            const items: Item[] = op === 'r' ? [asm.ldx(size, 'r0', 'r1', off), asm.mov64('r0', 0), asm.exit()] : [asm.st(size, 'r1', off, 0), asm.mov64('r0', 0), asm.exit()];
            out.push([type, off, size, op, outcome(() => {
              try {
                loadAssembly(items, { type, name: 'diff' }).close();
                return 0;
              } catch (e) {
                return e instanceof VerifierError ? e.errno : String(e);
              }
            })]);
          }
        }
      }
      return out;
    });
  });

  it('XDP: the context before the data, the device after it', async () => {
    await agree(() => {
      // ingress_ifindex, plus the total length (bpf_xdp_get_buff_len) in the high half.
      const p = loadAssembly([asm.ldx('w', 'r6', 'r1', 12), asm.call(188), asm.alu64('lsh', 'r0', 16), asm.alu64('or', 'r0', 'r6'), asm.exit()], { type: 'xdp', name: 'diff' });
      const md = (dataEnd: number, ingress: number, queue: number, extra = 0) => {
        const b = new Uint8Array(extra ? 32 : 24);
        const v = new DataView(b.buffer);
        v.setUint32(4, dataEnd, true);
        v.setUint32(12, ingress, true);
        v.setUint32(16, queue, true);
        if (extra) b[31] = extra;
        return b;
      };
      const out = [
        [5, md(5, 0, 0, 1)], [5, md(5, 0, 0)], [64, md(64, 0x7ffffff0, 0)], [64, md(64, 1, 1)], [64, md(64, 1, 0)], [64, md(64, 0, 1)], [64, md(63, 0, 0)],
        [64, md(65, 0, 0)], [64, md(14, 0, 0)], [64, md(13, 0, 0)], [5000, md(5000, 0, 0)], [5000, md(100, 0, 0)], [64, md(0, 0, 0)],
      ].map(([n, ctx]) => outcome(() => {
        const x = p.testRun({ data: new Uint8Array(n as number), ctx: ctx as Uint8Array });
        return [x.retval, hex(x.ctx)];
      }));
      p.close();
      return out;
    });
  });
});

describe('XDP metadata in ctx_in', kernelTest, () => {
  it('metadata leaves room for struct xdp_frame, and an Ethernet header must follow it', async () => {
    await agree(() => {
      const p = loadAssembly([asm.mov64('r0', 2), asm.exit()], { type: 'xdp', name: 'diff' });
      const out: unknown[] = [];
      // [data length, metadata length (ctx data), ctx data_end]
      for (const [n, meta, end] of [[16, 4, 16], [18, 4, 18], [14, 0, 14], [300, 220, 300], [300, 216, 300], [300, 216, 250], [64, 4, 3], [64, 8, 8], [64, 32, 64], [64, 36, 64], [64, 6, 64]]) {
        const md = new Uint8Array(24);
        const v = new DataView(md.buffer);
        v.setUint32(0, meta!, true);
        v.setUint32(4, end!, true);
        out.push([n, meta, end, attempt(() => {
          const r = p.testRun({ data: new Uint8Array(n!), ctx: md });
          return [r.retval, Buffer.from(r.ctx ?? []).toString('hex')];
        })]);
      }
      p.close();
      return out;
    });
  });
});

describe('packet helpers of tc and XDP programs', kernelTest, () => {
  const tcpFrame = (n = 74, ethertype = 0x0800) => {
    const b = new Uint8Array(n);
    b.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, ethertype >> 8, ethertype & 0xff]);
    for (let i = 14; i < n; i++) b[i] = (i * 37 + 11) & 0xff;
    if (ethertype === 0x0800) b.set([0x45, 0, 0, n - 14, 0, 0, 0x40, 0, 64, 6, 0xab, 0xcd, 10, 0, 0, 1, 10, 0, 0, 2], 14);
    if (ethertype === 0x86dd) b.set([0x60, 0, 0, 0, 0, n - 54, 6, 64], 14);
    return b;
  };
  /** r0 = helper(ctx, args...) with the arguments as 64-bit constants. */
  const call = (helper: number, args: readonly bigint[]): Item[] => [
    asm.mov64('r6', 'r1'), ...args.flatMap((a, i) => asm.ld64(`r${i + 2}` as 'r2', a)), asm.mov64('r1', 'r6'), asm.call(helper), asm.exit(),
  ];
  /** Stores `words` (u64 each) on the stack at fp-8*n.., then r0 = helper(ptr, size, ...). */
  const onStack = (words: readonly bigint[], body: Item[]): Item[] => [
    asm.mov64('r6', 'r1'), ...words.flatMap((w, i) => [...asm.ld64('r0', w), asm.stx('dw', 'r10', -8 * (words.length - i), 'r0')]), ...body, asm.exit(),
  ];
  const runTc = (items: readonly Item[], data: Uint8Array) => {
    const p = loadAssembly(items, { type: 'sched_cls', name: 'diff' });
    try {
      const r = p.testRun({ data });
      return [r.retval | 0, Buffer.from(r.data ?? []).toString('hex')];
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    } finally {
      p.close();
    }
  };

  it('checksums: csum_diff, l3/l4_csum_replace, csum_level', async () => {
    await agree(() => {
      const out: unknown[] = [];
      const words = [0x1234567890abcdefn, 0xfedcba0987654321n, 0xffffffff00000001n];
      for (const [fromSize, toSize, seed] of [[0, 0, 0], [4, 0, 0], [0, 4, 0], [8, 8, 0], [8, 8, 0xffff], [4, 8, 0xdeadbeef], [3, 0, 0], [0, 6, 0], [8, 16, 1]]) {
        out.push(['csum_diff', fromSize, toSize, seed, runTc(onStack(words, [
          asm.mov64('r1', 'r10'), asm.alu64('add', 'r1', -24), asm.mov64('r2', fromSize!), asm.mov64('r3', 'r10'), asm.alu64('add', 'r3', -16),
          asm.mov64('r4', toSize!), ...asm.ld64('r5', seed!), asm.call(28),
        ]), tcpFrame())]);
      }
      for (const helper of [10, 11]) {
        for (const [off, from, to, flags] of [
          [24n, 0x0a00n, 0x0b00n, 2n], [24n, 0x0100000an, 0x0200000an, 4n], [24n, 0n, 0x1234n, 0n], [24n, 1n, 0x1234n, 0n], [25n, 0n, 0n, 2n],
          [72n, 0n, 0n, 2n], [73n, 0n, 0n, 2n], [0x10000n, 0n, 0n, 2n], [24n, 5n, 6n, 3n], [24n, 5n, 6n, 0x100n], [50n, 0n, 0n, 2n | (1n << 5n)],
          [24n, 0x0a00n, 0x0b00n, 2n | (1n << 4n)], [24n, 0x0a00n, 0x0b00n, 2n | (1n << 7n)], [24n, 0xffffn, 0n, 2n | (1n << 5n) | (1n << 6n)],
        ] as const) {
          out.push([helper, off, from, to, flags, runTc(call(helper, [off, from, to, flags]), tcpFrame())]);
        }
      }
      // csum_level: a sequence of operations, each result in one byte of r0.
      for (const seq of [[0], [1, 0], [1, 1, 1, 1, 1, 0], [1, 2, 0], [1, 1, 2, 0], [1, 3, 0], [2, 0], [4], [1, 0, 2, 0, 2, 0]]) {
        const items: Item[] = [asm.mov64('r6', 'r1'), asm.mov64('r7', 0)];
        for (const level of seq) items.push(asm.mov64('r1', 'r6'), asm.mov64('r2', level), asm.call(135), asm.alu64('and', 'r0', 0xff), asm.alu64('lsh', 'r7', 8), asm.alu64('or', 'r7', 'r0'));
        items.push(asm.mov64('r0', 'r7'), asm.exit());
        out.push(['csum_level', seq, runTc(items, tcpFrame())]);
      }
      return out;
    });
  });

  it('room and size: adjust_room, change_head, change_tail, change_proto, change_type', async () => {
    await agree(() => {
      const out: unknown[] = [];
      const frames = [tcpFrame(), tcpFrame(94, 0x86dd), tcpFrame(60, 0x0806)];
      for (const f of frames) {
        for (const [diff, mode, flags] of [
          [8n, 0n, 0n], [8n, 1n, 0n], [-8n, 0n, 0n], [-8n, 1n, 0n], [0n, 0n, 0n], [4096n, 0n, 0n], [4095n, 1n, 0n], [-40n, 0n, 0n], [-20n, 1n, 0n], [-60n, 1n, 0n],
          [8n, 2n, 0n], [20n, 1n, 1n << 1n], [40n, 1n, 1n << 2n], [20n, 1n, (1n << 1n) | (1n << 2n)], [28n, 1n, (1n << 1n) | (1n << 4n)], [-20n, 1n, 1n << 7n],
          [-20n, 1n, 1n << 8n], [20n, 1n, 1n << 7n], [-8n, 1n, 1n << 1n], [8n, 0n, 1n << 5n], [8n, 0n, 1n << 9n], [34n, 1n, (1n << 1n) | (1n << 6n) | (14n << 56n)],
          [20n, 1n, (1n << 1n) | (30n << 56n)],
        ] as const) {
          out.push(['adjust_room', f.length, diff, mode, flags, runTc(call(50, [BigInt.asUintN(64, diff), mode, flags]), f)]);
        }
        for (const [room, flags] of [[0n, 0n], [14n, 0n], [100n, 0n], [1n, 1n], [20000n, 0n]] as const) out.push(['change_head', f.length, room, flags, runTc(call(43, [room, flags]), f)]);
        for (const [len, flags] of [[0n, 0n], [13n, 0n], [14n, 0n], [40n, 0n], [60n, 0n], [200n, 0n], [20000n, 0n], [60n, 1n]] as const) {
          // Growing past the buffer's end exposes what the kernel's reallocation left there: compare lengths only beyond it.
          out.push(['change_tail', f.length, len, flags, ((r) => (Array.isArray(r) ? [r[0], (r[1] as string).length] : r))(runTc(call(38, [len, flags]), f))]);
        }
        for (const [proto, flags] of [[0xdd86n, 0n], [0x0008n, 0n], [0x0608n, 0n], [0xdd86n, 1n]] as const) out.push(['change_proto', f.length, proto, flags, runTc(call(31, [proto, flags]), f)]);
        for (const type of [0n, 1n, 3n, 4n]) out.push(['change_type', type, runTc([...call(32, [type]).slice(0, -1), asm.ldx('w', 'r1', 'r6', 4), asm.alu64('lsh', 'r1', 8), asm.alu64('or', 'r0', 'r1'), asm.exit()], f)]);
      }
      return out;
    });
  });

  it('tunnel keys and options: set, then get, with the kernel\'s sizes, flags and errors', async () => {
    await agree(() => {
      const out: unknown[] = [];
      // key: id 0x42, remote 10.0.0.9 (host order u32), tos 3, ttl 64, label 0, local 10.0.0.1; ipv6 layout fills all.
      const key = [0x0a00000900000042n, 0n, 0n | (64n << 40n) | (3n << 32n), 0x0a00000100000000n, 0n, 0x1122334455667788n];
      for (const [setSize, setFlags, getSize, getFlags] of [
        [44, 0n, 44, 0n], [44, 0n, 44, 1n], [44, 1n, 44, 1n], [44, 1n, 44, 0n], [28, 0n, 28, 0n], [24, 0n, 24, 0n], [22, 0n, 22, 0n], [8, 0n, 8, 0n], [8, 1n, 8, 1n],
        [30, 0n, 44, 0n], [44, 0n, 30, 0n], [44, 0x20n, 44, 0n], [44, 0n, 44, 0x20n], [44, 0x16n, 44, 0x10n], [44, 0x6n, 44, 0x10n], [0, 0n, 44, 0n],
      ] as const) {
        const body: Item[] = setSize
          ? [asm.mov64('r1', 'r6'), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -48), asm.mov64('r3', setSize), ...asm.ld64('r4', setFlags), asm.call(21), asm.mov64('r7', 'r0')]
          : [asm.mov64('r7', 0)];
        // get into fp-96, then the 44 bytes read back are stored into the packet at offset 14 (they show in the data out).
        body.push(asm.mov64('r1', 'r6'), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -96), asm.mov64('r3', getSize), ...asm.ld64('r4', getFlags), asm.call(20),
          asm.alu64('lsh', 'r7', 8), asm.alu64('and', 'r0', 0xff), asm.alu64('or', 'r7', 'r0'),
          asm.mov64('r1', 'r6'), asm.mov64('r2', 14), asm.mov64('r3', 'r10'), asm.alu64('add', 'r3', -96), asm.mov64('r4', 44), asm.mov64('r5', 0), asm.call(9),
          asm.mov64('r0', 'r7'));
        const items: Item[] = [asm.mov64('r6', 'r1'), ...Array.from({ length: 12 }, (_, i) => asm.st('dw', 'r10', -96 + 8 * i, 0)),
          ...key.flatMap((w, i) => [...asm.ld64('r0', w), asm.stx('dw', 'r10', -48 + 8 * i, 'r0')]), ...body, asm.exit()];
        out.push(['tunnel_key', setSize, setFlags, getSize, getFlags, runTc(items, tcpFrame())]);
      }
      for (const [withKey, setSize, getSize] of [[true, 8, 8], [true, 8, 16], [true, 8, 4], [true, 6, 8], [false, 8, 8], [true, 32, 8]] as const) {
        const items: Item[] = [asm.mov64('r6', 'r1'), ...Array.from({ length: 4 }, (_, i) => asm.st('dw', 'r10', -32 + 8 * i, 0x0102030405060708 + i)),
          ...(withKey ? [asm.mov64('r1', 'r6'), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -32), asm.mov64('r3', 8), asm.mov64('r4', 0), asm.call(21)] : []),
          asm.mov64('r1', 'r6'), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -32), asm.mov64('r3', Math.min(setSize, 32)), asm.call(30), asm.mov64('r7', 'r0'),
          asm.st('dw', 'r10', -64, 0), asm.st('dw', 'r10', -56, 0),
          asm.mov64('r1', 'r6'), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -64), asm.mov64('r3', getSize), asm.call(29),
          asm.alu64('and', 'r0', 0xff), asm.alu64('lsh', 'r7', 8), asm.alu64('or', 'r0', 'r7'), asm.ldx('w', 'r1', 'r10', -64), asm.alu64('lsh', 'r1', 32), asm.alu64('or', 'r0', 'r1'), asm.exit()];
        out.push(['tunnel_opt', withKey, setSize, getSize, runTc(items, tcpFrame())]);
      }
      return out;
    });
  });
});

describe('redirect and socket maps, maps of maps', kernelTest, () => {
  const u32s = (...v: number[]) => new Uint8Array(new Uint32Array(v).buffer);

  it('devmap, devmap_hash, cpumap, xskmap, sockmap, sockhash: creation, updates, lookups, deletes', async () => {
    await agree(() => {
      const log: unknown[] = [];
      const note = (what: string, f: () => unknown) => log.push([what, attempt(f)]);
      const create = (type: MapSpec['type'], k: number, v: number, n: number, flags = 0) => {
        try {
          return BpfMap.create(spec(type, k, v, n, flags));
        } catch (e) {
          log.push([type, k, v, n, flags, (e as { code?: string }).code]);
          return undefined;
        }
      };
      for (const type of ['devmap', 'devmap_hash', 'cpumap', 'xskmap', 'sockmap', 'sockhash'] as const) {
        for (const [k, v, n, flags] of [[4, 4, 0, 0], [8, 4, 4, 0], [4, 12, 4, 0], [4, 4, 4, 1], [4, 4, 4, 8], [4, 8, 4, 0], [2, 4, 4, 0], [4, 4, 100000, 0]]) {
          create(type, k!, v!, n!, flags!)?.close();
        }
      }
      const lo = 1;
      for (const type of ['devmap', 'devmap_hash'] as const) {
        for (const v of [4, 8]) {
          const m = create(type, 4, v, 4)!;
          const val = (ifindex: number, fd = -1) => (v === 4 ? u32s(ifindex) : u32s(ifindex, fd >>> 0));
          note(`${type}/${v} lo`, () => m.update(u32s(0), val(lo)));
          note(`${type}/${v} missing dev`, () => m.update(u32s(1), val(0x7ffffff0)));
          note(`${type}/${v} zero`, () => m.update(u32s(2), val(0)));
          note(`${type}/${v} zero with prog`, () => m.update(u32s(2), val(0, 3)));
          note(`${type}/${v} noexist`, () => m.update(u32s(0), val(lo), 'noexist'));
          note(`${type}/${v} exist missing`, () => m.update(u32s(3), val(lo), 'exist'));
          note(`${type}/${v} bad flags`, () => m.update(u32s(0), val(lo), 3));
          note(`${type}/${v} past end`, () => m.update(u32s(9), val(lo)));
          note(`${type}/${v} lookup`, () => [0, 1, 2, 9].map((k) => attempt(() => Buffer.from(m.lookupBytes(u32s(k)) ?? []).toString('hex'))));
          note(`${type}/${v} keys`, () => [...m.keys()].map((k) => Buffer.from(k as Uint8Array).toString('hex')));
          note(`${type}/${v} delete`, () => [0, 2, 9].map((k) => attempt(() => m.delete(u32s(k)))));
          m.close();
        }
      }
      const cpu = create('cpumap', 4, 4, 4)!;
      note('cpumap qsize', () => cpu.update(u32s(0), u32s(64)));
      note('cpumap qsize too big', () => cpu.update(u32s(0), u32s(16385)));
      note('cpumap zero', () => cpu.update(u32s(1), u32s(0)));
      note('cpumap noexist', () => cpu.update(u32s(0), u32s(64), 'noexist'));
      note('cpumap past end', () => cpu.update(u32s(4), u32s(64)));
      note('cpumap lookup', () => [0, 1].map((k) => attempt(() => Buffer.from(cpu.lookupBytes(u32s(k)) ?? []).toString('hex'))));
      note('cpumap delete', () => [0, 1, 4].map((k) => attempt(() => cpu.delete(u32s(k)))));
      cpu.close();
      for (const type of ['xskmap', 'sockmap', 'sockhash'] as const) {
        const m = create(type, 4, 4, 4)!;
        const other = BpfMap.create(spec('hash', 4, 4, 1));
        note(`${type} map fd`, () => m.update(u32s(0), u32s(other.fd)));
        note(`${type} bad flags`, () => m.update(u32s(0), u32s(other.fd), 3));
        note(`${type} lookup`, () => m.lookupBytes(u32s(0)) ?? null);
        note(`${type} delete`, () => [0, 9].map((k) => attempt(() => m.delete(u32s(k)))));
        note(`${type} keys`, () => [...m.keys()].length);
        other.close();
        m.close();
      }
      return log;
    });
  });

  it('bpf_redirect_map: XDP_REDIRECT to an entry, the flags\' low bits without one', async () => {
    await agree(() => {
      const dev = BpfMap.create(spec('devmap', 4, 4, 4));
      dev.update(u32s(1), u32s(1));
      const hash = BpfMap.create(spec('devmap_hash', 4, 4, 4));
      hash.update(u32s(7), u32s(1));
      const cpu = BpfMap.create(spec('cpumap', 4, 4, 2));
      cpu.update(u32s(0), u32s(64));
      const out: unknown[] = [];
      for (const m of [dev, hash, cpu]) {
        for (const [key, flags] of [[0, 0], [1, 0], [7, 0], [0, 2], [0, 3], [1, 1], [0, 4], [0, 8], [1, 8], [0, 16], [0, 24]]) {
          const p = mustLoad([...asm.ldMapFd('r1', m.fd), asm.mov64('r2', key!), asm.mov64('r3', flags!), asm.call(51), asm.exit()]);
          out.push([m.info().type, key, flags, run(p, new Uint8Array(64))]);
          p.close();
        }
      }
      for (const m of [dev, hash, cpu]) m.close();
      return out;
    });
  });

  it('bpf_map_lookup_elem from XDP on devmaps and an xskmap: the slot\'s ifindex and program id, or NULL', async () => {
    await agree(() => {
      const out: unknown[] = [];
      const maps: BpfMap[] = [];
      for (const [type, v] of [['devmap', 4], ['devmap', 8], ['devmap_hash', 4], ['devmap_hash', 8], ['xskmap', 4]] as const) {
        const m = BpfMap.create(spec(type, 4, v, 8));
        maps.push(m);
        if (type.startsWith('devmap')) {
          m.update(u32s(1), v === 4 ? u32s(1) : u32s(1, 0xffffffff));
          m.update(u32s(6), v === 4 ? u32s(1) : u32s(1, 0xffffffff));
        }
        // The key is the packet's first byte; the value's words come back as ifindex | id << 16.
        const p = mustLoad([
          asm.ldx('w', 'r2', 'r1', 0), asm.ldx('w', 'r3', 'r1', 4), asm.mov64('r0', 2000), asm.mov64('r4', 'r2'), asm.alu64('add', 'r4', 1),
          asm.jmp('gt', 'r4', 'r3', 'out'), asm.ldx('b', 'r2', 'r2', 0), asm.stx('w', 'r10', -4, 'r2'), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4),
          ...asm.ldMapFd('r1', m.fd), asm.call(1), asm.mov64('r1', 'r0'), asm.mov64('r0', 1000), asm.jmp('eq', 'r1', 0, 'out'),
          asm.ldx('w', 'r0', 'r1', 0), ...(v === 8 ? [asm.ldx('w', 'r2', 'r1', 4), asm.alu64('lsh', 'r2', 16), asm.alu64('or', 'r0', 'r2')] : []),
          label('out'), asm.exit(),
        ]);
        out.push([type, v, m.info().flags, [0, 1, 6, 7, 200].map((k) => run(p, Uint8Array.of(k, ...new Uint8Array(63))))]);
        p.close();
      }
      for (const m of maps) m.close();
      return out;
    });
  });

  it('inner maps against the template: max_entries only for arrays or without BPF_F_INNER_MAP', async () => {
    await agree(() => {
      const out: unknown[] = [];
      for (const [type, flags] of [['array', 0], ['array', 1 << 12], ['hash', 0], ['lru_hash', 0], ['percpu_array', 0], ['hash', 1]] as const) {
        const inner = spec(type, 4, 4, 4, flags);
        let tmpl: BpfMap;
        try {
          tmpl = BpfMap.create(inner);
        } catch (e) {
          out.push([type, flags, (e as { code?: string }).code]);
          continue;
        }
        const outer = BpfMap.create(spec('array_of_maps', 4, 4, 4, 0, inner), { innerMapFd: tmpl.fd });
        for (const [n, f] of [[4, flags], [8, flags], [2, flags], [4, flags ^ (1 << 12)]] as const) {
          out.push([type, flags, n, f, attempt(() => {
            const m = BpfMap.create(spec(type, 4, 4, n, f));
            try {
              outer.update(u32s(0), u32s(m.fd));
              return 'ok';
            } finally {
              m.close();
            }
          })]);
        }
        outer.close();
        tmpl.close();
      }
      return out;
    });
  });
});

describe('helpers', kernelTest, () => {
  it('probe_read_kernel of a bad address, ringbuf flags, trace_printk\'s return value', async () => {
    await agree(() => {
      const rb = BpfMap.create(spec('ringbuf', 0, 0, 4096));
      const probe = mustLoad([asm.st('dw', 'r10', -8, 0x55), asm.mov64('r1', 'r10'), asm.alu64('add', 'r1', -8), asm.mov64('r2', 8), asm.mov64('r3', 16),
        asm.call(113), asm.ldx('dw', 'r1', 'r10', -8), asm.alu64('lsh', 'r1', 32), asm.alu64('or', 'r0', 'r1'), asm.exit()]);
      const reserveFlags = mustLoad([...asm.ldMapFd('r1', rb.fd), asm.mov64('r2', 8), asm.mov64('r3', 1), asm.call(131),
        asm.jmp('eq', 'r0', 0, 'null'), asm.mov64('r1', 'r0'), asm.mov64('r2', 0), asm.call(133), asm.mov64('r0', 1), asm.exit(), label('null'), asm.mov64('r0', 0), asm.exit()]);
      const outputFlags = mustLoad([asm.st('dw', 'r10', -8, 1), ...asm.ldMapFd('r1', rb.fd), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -8), asm.mov64('r3', 8),
        asm.mov64('r4', 4), asm.call(130), asm.exit()]);
      const printk = mustLoad([...asm.ld64('r1', 0x0a7525207825n), asm.stx('dw', 'r10', -8, 'r1'), asm.mov64('r1', 'r10'), asm.alu64('add', 'r1', -8),
        asm.mov64('r2', 7), asm.mov64('r3', 255), asm.mov64('r4', 1234), asm.call(6), asm.exit()]);
      const data = new Uint8Array(14);
      const out = [run(probe, data), run(reserveFlags, data), run(outputFlags, data), run(printk, data), readRing(rb.fd, 4096)];
      for (const p of [probe, reserveFlags, outputFlags, printk]) p.close();
      rb.close();
      return out;
    });
  });
});

describe('map syscalls', kernelTest, () => {
  it('the same answers and errno values for the same operations on every map type', async () => {
    await agree(() => {
      const log: unknown[] = [];
      const note = (what: string, f: () => unknown) => log.push([what, attempt(f)]);
      const h = BpfMap.create(spec('hash', 4, 8, 3)) as BpfMap<number, bigint>;
      for (const k of [1, 2, 3, 4]) note(`hash update ${k}`, () => h.update(k, BigInt(k)));
      note('hash noexist', () => h.update(1, 9n, 'noexist'));
      note('hash exist missing', () => h.update(9, 9n, 'exist'));
      note('hash bad flags', () => h.update(1, 9n, 3));
      note('hash lock flag', () => h.update(1, 9n, 4));
      note('hash delete missing', () => h.delete(9));
      note('hash lookupAndDelete', () => h.lookupAndDelete(2));
      note('hash keys', () => [...h.keys()].sort());
      h.close();
      const a = BpfMap.create(spec('array', 4, 8, 3)) as BpfMap<number, bigint>;
      note('array delete', () => a.delete(0));
      note('array past end', () => a.update(3, 1n));
      note('array noexist', () => a.update(0, 1n, 'noexist'));
      note('array lookup past end', () => a.lookup(3));
      note('array lookupAndDelete', () => a.lookupAndDelete(0));
      note('array entries', () => [...a.entries()]);
      note('array batch delete', () => mapBatch('MAP_DELETE_BATCH', { fd: a.fd, inBatch: null, outBatch: null, keys: new Uint8Array(4), values: null, count: 1 }).errno);
      a.freeze();
      note('array frozen update', () => a.update(0, 1n));
      note('array frozen freeze', () => a.freeze());
      note('array frozen delete', () => a.delete(0));
      a.close();
      const lpm = BpfMap.create(spec('lpm_trie', 8, 4, 6, 1)) as BpfMap<Uint8Array, number>;
      for (const [pl, b0, b1, b2, b3, v] of [[8, 10, 9, 9, 9, 8], [16, 10, 1, 0, 0, 16], [16, 10, 128, 0, 0, 17], [24, 10, 0, 0, 7, 24], [25, 10, 0, 0, 200, 25], [0, 0, 0, 0, 0, 0]] as const) {
        note(`lpm update /${pl}`, () => lpm.update(Uint8Array.of(pl, 0, 0, 0, b0, b1, b2, b3), v));
      }
      note('lpm full', () => lpm.update(Uint8Array.of(12, 0, 0, 0, 172, 16, 0, 0), 1));
      note('lpm /33', () => lpm.update(Uint8Array.of(33, 0, 0, 0, 1, 2, 3, 4), 1));
      for (const key of [[32, 10, 0, 0, 201], [32, 10, 0, 0, 5], [32, 10, 1, 7, 7], [32, 10, 200, 1, 1], [32, 11, 0, 0, 1], [12, 10, 1, 0, 0], [40, 10, 1, 1, 1]]) {
        note(`lpm lookup ${key}`, () => lpm.lookup(Uint8Array.of(key[0]!, 0, 0, 0, key[1]!, key[2]!, key[3]!, key[4]!)) ?? null);
      }
      note('lpm delete inexact', () => lpm.delete(Uint8Array.of(16, 0, 0, 0, 10, 0, 0, 0)));
      note('lpm keys in order', () => [...lpm.keys()].map((k) => `${k}`));
      lpm.close();
      const q = BpfMap.create(spec('queue', 0, 4, 2)) as BpfMap<never, number>;
      note('queue', () => [attempt(() => q.push(1)), attempt(() => q.push(2)), attempt(() => q.push(3)), attempt(() => q.push(4, 'exist')),
        attempt(() => q.push(5, 'noexist')), q.peek(), q.pop(), q.pop(), q.pop() ?? null, attempt(() => q.delete(new Uint8Array(0)))]);
      q.close();
      const rb = BpfMap.create(spec('ringbuf', 0, 0, 4096));
      note('ringbuf lookup', () => rb.lookupBytes(new Uint8Array(0)));
      rb.close();
      const pa = BpfMap.create(spec('prog_array', 4, 4, 2));
      const other = BpfMap.create(spec('hash', 4, 4, 1));
      note('prog_array with a map fd', () => pa.update(0, new Uint8Array(new Uint32Array([other.fd]).buffer)));
      note('prog_array with no fd', () => pa.update(0, new Uint8Array(new Uint32Array([999999]).buffer)));
      note('prog_array noexist', () => pa.update(0, new Uint8Array(4), 'noexist'));
      note('prog_array delete empty', () => pa.delete(1));
      note('prog_array delete past end', () => pa.delete(5));
      note('prog_array lookup empty', () => pa.lookup(0) ?? null);
      pa.close();
      const perf = BpfMap.create(spec('perf_event_array', 4, 4, 2));
      note('perf lookup', () => perf.lookup(0));
      perf.close();
      const inner = spec('array', 4, 4, 1);
      const tmpl = BpfMap.create(inner);
      const aom = BpfMap.create(spec('array_of_maps', 4, 4, 2, 0, inner), { innerMapFd: tmpl.fd });
      const bigger = BpfMap.create(spec('array', 4, 4, 2));
      note('array_of_maps max_entries mismatch', () => aom.update(0, new Uint8Array(new Uint32Array([bigger.fd]).buffer)));
      note('array_of_maps ok', () => aom.update(0, new Uint8Array(new Uint32Array([tmpl.fd]).buffer)));
      note('array_of_maps lookup is the id', () => aom.lookup(0) === tmpl.info().id);
      for (const m of [aom, bigger, tmpl, other]) m.close();
      const pc = BpfMap.create(spec('percpu_hash', 4, 4, 4)) as BpfMap<number, number[]>;
      note('percpu values, one 8-byte slot per possible CPU', () => {
        pc.update(1, Array.from({ length: possibleCpus() }, (_, i) => i + 1));
        return [pc.lookup(1), pc.lookupBytes(1)!.length];
      });
      pc.close();
      return log;
    });
  });

  it('map creation is refused with the same errno', async () => {
    const specs: MapSpec[] = [
      spec('lpm_trie', 8, 4, 4), spec('lpm_trie', 4, 4, 4, 1), spec('array', 8, 4, 4), spec('array', 4, 0, 4), spec('array', 4, 4, 0),
      spec('hash', 4, 4, 0), spec('hash', 0, 4, 4), spec('hash', 600, 4, 1), spec('lru_hash', 4, 4, 4, 1), spec('hash', 4, 4, 4, 1 << 10),
      spec('queue', 4, 4, 4), spec('queue', 0, 0, 4), spec('ringbuf', 0, 0, 5000), spec('ringbuf', 4, 0, 4096), spec('ringbuf', 0, 0, 4096, 1),
      spec('prog_array', 4, 8, 4), spec('percpu_array', 4, 4, 4, 1 << 10), spec('array', 4, 4, 4, (1 << 3) | (1 << 4)), spec('hash', 4, 4, 4, 1 << 15),
    ];
    await agree(() => specs.map((s) => attempt(() => BpfMap.create(s).close())));
  });
});

describe('program loading', kernelTest, () => {
  it('the same refusals, with the same errno', async () => {
    const bad: Item[][] = [
      [asm.raw(0xff), asm.exit()], [asm.ja(5), asm.exit()], [asm.mov64('r10', 0), asm.exit()], [asm.mov64('r0', 0)],
      [asm.mov64('r0', 1), asm.alu64('div', 'r0', 0), asm.exit()], [...asm.ldMapFd('r1', 99999), asm.exit()], [asm.call(100000), asm.exit()],
      [asm.raw(0x18, 0, 0, 0, 0), asm.exit()], [asm.mov64('r0', 1), asm.alu64('lsh', 'r0', 64), asm.exit()], [asm.raw(0x87, 0, 1, 0, 0), asm.exit()],
      [asm.raw(0xd7, 0, 0, 0, 8), asm.exit()], [asm.raw(0xbf, 0, 1, 7, 0), asm.exit()],
    ];
    await agree(() => bad.map((items) => {
      const p = loadRaw(items);
      if (typeof p === 'number') return p;
      p.close();
      return 'loaded';
    }));
  });

  it('program info: tag, lengths, map ids', async () => {
    await agree(() => {
      const m = BpfMap.create(spec('hash', 4, 8, 4));
      const progs = [
        mustLoad([asm.mov64('r0', 2), asm.exit()]),
        mustLoad([...asm.ldMapFd('r1', m.fd), asm.mov64('r0', 2), asm.exit()]),
        mustLoad([asm.mov64('r1', 0), ...asm.ld64('r2', 0x1122334455667788n), asm.alu64('add', 'r1', 'r2'), asm.mov64('r0', 'r1'), asm.exit()]),
      ];
      const out = progs.map((p) => {
        const i = p.info();
        return { tag: i.tag, type: i.type, xlated: i.xlatedLength, maps: i.mapIds.length, gpl: i.gplCompatible, verified: i.verifiedInstructions };
      });
      for (const p of progs) p.close();
      m.close();
      return out;
    });
  });
});

describe('perf event arrays and pollers', kernelTest, () => {
  it('bpf_perf_event_output: the same records (PERF_RECORD_SAMPLE, then PERF_RECORD_LOST after drops)', async () => {
    // BPF_F_CURRENT_CPU writes to the ring of the CPU the test run executes on: pin this thread to
    // one CPU and let the emulated kernel run there too, or a migrating process spreads the
    // kernel's records over several rings (and drops none) while the emulator fills one.
    const cpu = allowedCpus()[0]!;
    await onCpu(cpu, () => agree(() => {
      const rings = new PerfRings(possibleCpus(), 2);
      const perf = BpfMap.create(spec('perf_event_array', 4, 4, possibleCpus()));
      rings.fds.forEach((fd, i) => perf.update(i, new Uint8Array(new Uint32Array([fd]).buffer)));
      // Sends `len` bytes (a marker, then zeros) from the stack, with BPF_F_CURRENT_CPU.
      const send = (len: number) => mustLoad([
        asm.mov64('r6', 'r1'), ...Array.from({ length: 8 }, (_, i) => asm.st('dw', 'r10', -64 + i * 8, 0)), asm.st('w', 'r10', -64, 0x4b465042),
        asm.mov64('r1', 'r6'), ...asm.ldMapFd('r2', perf.fd), ...asm.ld64('r3', 0xffffffffn), asm.mov64('r4', 'r10'), asm.alu64('add', 'r4', -64),
        asm.mov64('r5', len), asm.call(25), asm.exit(),
      ]);
      const progs = [1, 7, 20, 64].map(send);
      const rets: number[] = [];
      for (let i = 0; i < 150; i++) rets.push(progs[i % progs.length]!.testRun({ data: new Uint8Array(14) }).retval | 0);
      const first = rings.read();
      rets.push(progs[3]!.testRun({ data: new Uint8Array(14) }).retval | 0);
      const second = rings.read();
      for (const p of progs) p.close();
      rings.close();
      perf.close();
      return { rets, first, second };
    }, `pinned to CPU ${cpu}`, { cpu }));
  });

  it('ring buffer wakeups: a poller fires for a plain or forced commit, not for BPF_RB_NO_WAKEUP', async () => {
    await agree(async () => {
      const n = native();
      const out: unknown[] = [];
      for (const flags of [0, 1, 2, 3]) {
        const rb = BpfMap.create(spec('ringbuf', 0, 0, 4096));
        const p = mustLoad([...asm.ldMapFd('r1', rb.fd), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -8), asm.st('dw', 'r10', -8, 5), asm.mov64('r3', 8),
          asm.mov64('r4', flags), asm.call(130), asm.exit()]);
        let fired = 0;
        const poller = new n.Poller(rb.fd, () => {
          fired++;
          readRing(rb.fd, 4096);
        });
        poller.start(n.constants.UV_READABLE);
        await new Promise((r) => setTimeout(r, 20));
        const ret = p.testRun({ data: new Uint8Array(14) }).retval;
        await new Promise((r) => setTimeout(r, 50));
        poller.close();
        out.push([flags, ret, fired]);
        p.close();
        rb.close();
      }
      return out;
    });
  });
});

describe('bpf_fib_lookup against a FIB in a network namespace', kernelTest, () => {
  it(`XDP and tc: ${FIB_INPUTS} generated structs each (both families, every flag, table, device, MTU and return code), and a short struct`, async (t) => {
    const { agreed, kernel } = await compareInNamespace(FIB_TOPOLOGY, 'fib', 'fibHelperRuns', fibHelperRuns);
    // The return codes the kernel gave, to show the inputs reach every one.
    const codes = new Map<string, number>();
    for (const o of kernel as [string, ...unknown[]][]) {
      const r = o[o.length - 1];
      const k = Array.isArray(r) ? `${o[0]}:${r[0]}` : `${o[0]}:${String(r)}`;
      codes.set(k, (codes.get(k) ?? 0) + 1);
    }
    t.diagnostic(`${agreed}/${kernel.length} agree; kernel codes ${[...codes].sort().map(([k, n]) => `${k}=${n}`).join(' ')}`);
    // Every BPF_FIB_LKUP_RET_* this FIB can produce (UNSUPP_LWT needs an encap route, NO_SRC_ADDR a namespace
    // without global IPv6 addresses), and -EINVAL, -ENODEV, -EAFNOSUPPORT.
    for (const type of ['xdp', 'sched_cls']) {
      for (const rc of [0, 1, 2, 3, 4, 5, 7, 8, -22, -19, -97]) assert.ok(codes.has(`${type}:${rc}`), `${type} inputs reach return code ${rc}`);
    }
  });
});

describe('bpf_clone_redirect against devices in a network namespace', kernelTest, () => {
  it('tc: 300 frames cloned to every device and to unknown ones, with every flag, under and over the MTU', async (t) => {
    const { agreed, kernel } = await compareInNamespace(FIB_TOPOLOGY, 'clone', 'cloneHelperRuns', cloneHelperRuns);
    const codes = new Set(kernel.map((o) => show(Array.isArray(o) ? o[0] : o)));
    t.diagnostic(`${agreed}/${kernel.length} agree; kernel results ${[...codes].sort().join(' ')}`);
    // 0 (sent), -EINVAL (unknown device or flag) and NET_XMIT_DROP (1, a clone over the veth peer's MTU).
    for (const rc of ['0', '-22', '1']) assert.ok(codes.has(rc), `some clone returns ${rc}`);
  });
});
