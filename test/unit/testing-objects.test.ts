/**
 * The project's real BPF objects (test/bpf/build, see test/bpf/README.md) loaded through the
 * library's normal API — CollectionSpec.fromFile, Collection.load, BpfMap, Program.testRun — with
 * the emulated kernel installed, and checked against the results the README documents for the
 * real kernel. No root, no native addon.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { useEmulatedKernel } from '../../src/testing/index.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { Collection } from '../../src/load/collection.js';
import { native } from '../../src/sys/native.js';
import type { BpfMap } from '../../src/objects/map.js';
import { RingBufReader } from '../../src/readers/ringbuf.js';
import { PerfReader } from '../../src/readers/perf.js';
import { obj, ipv4Packet } from '../helpers/index.js';

const kernel = useEmulatedKernel();

async function load(name: string, options: Parameters<typeof Collection.load>[1] = {}): Promise<Collection> {
  return Collection.load(await CollectionSpec.fromFile(obj(name)), options);
}

after(() => {
  assert.deepEqual(kernel.openFds(), [], 'every test closed what it opened');
  assert.equal(kernel.maps().length, 0);
  assert.equal(kernel.programs().length, 0);
  const cache = Object.keys(createRequire(import.meta.url).cache);
  assert.ok(!cache.some((p) => p.endsWith('.node')), 'the native addon was never loaded');
});

/** The seeds' frame: 192.168.1.10 -> 10.0.0.1 (README, packet_count). */
function frame(src = [192, 168, 1, 10], ethertype = [0x08, 0x00], length = 34): Uint8Array {
  const b = new Uint8Array(length);
  b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, ...ethertype], 0);
  b.set([0x45, 0, 0, 0x14, 0, 0, 0, 0, 0x40, 0x11, 0, 0, ...src, 10, 0, 0, 1].slice(0, Math.max(0, length - 14)), 14);
  return b;
}

describe('packet_count.bpf.o', () => {
  it('counts packets per source address (three sends: one entry, value 3)', async () => {
    await using coll = await load('packet_count');
    const prog = coll.programs.get('xdp_prog_func')!;
    const counts = coll.maps.get('xdp_stats_map')! as BpfMap<number, number>;
    for (let i = 0; i < 3; i++) assert.equal(prog.testRun({ data: frame() }).retval, 2);
    assert.deepEqual([...counts.entries()], [[0x0a01a8c0, 3]]);
  });

  it('counts each source separately, with repeat, and leaves the packet unchanged', async () => {
    await using coll = await load('packet_count');
    const prog = coll.programs.get('xdp_prog_func')!;
    const counts = coll.maps.get('xdp_stats_map')! as BpfMap<number, number>;
    const a = ipv4Packet({ src: '10.1.2.3', dst: '10.0.0.1' });
    const r = prog.testRun({ data: a, repeat: 50 });
    assert.equal(r.retval, 2);
    assert.deepEqual(r.data, a);
    prog.testRun({ data: ipv4Packet({ src: '172.16.0.9', dst: '10.0.0.1', proto: 'udp' }) });
    assert.deepEqual(new Map(counts.entries()), new Map([[0x0302010a, 50], [0x090010ac, 1]]));
  });

  it('does not count non-IPv4 frames or short frames (still XDP_PASS)', async () => {
    await using coll = await load('packet_count');
    const prog = coll.programs.get('xdp_prog_func')!;
    assert.equal(prog.testRun({ data: frame(undefined, [0x86, 0xdd]) }).retval, 2);
    assert.equal(prog.testRun({ data: frame(undefined, undefined, 33) }).retval, 2);
    assert.equal([...coll.maps.get('xdp_stats_map')!.keys()].length, 0);
  });
});

/** xdp_maps' command packet (README). */
function cmd(op: number, key = 0, val = 0, flags = 0): Uint8Array {
  const b = new Uint8Array(14);
  const v = new DataView(b.buffer);
  b[0] = op;
  b[1] = flags;
  v.setUint32(4, key, true);
  v.setUint32(8, val, true);
  return b;
}

describe('maps.bpf.o', () => {
  const ENOENT = -2;
  const E2BIG = -7;
  it('hash, array and per-CPU opcodes return what the README documents', async () => {
    await using coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    const run = (...a: Parameters<typeof cmd>) => p.testRun({ data: cmd(...a) }).retval | 0;
    assert.equal(run(0x00), 2);
    assert.deepEqual([run(0x01, 5), run(0x01, 5)], [1, 2]);
    assert.deepEqual([run(0x02, 3, 10), run(0x02, 9, 10)], [10, ENOENT]);
    assert.deepEqual([run(0x03, 0, 7), run(0x03, 0, 7)], [7, 14]);
    assert.deepEqual([run(0x04, 1, 5), run(0x04, 1, 5)], [5, 10]);
    assert.deepEqual(coll.maps.get('percpu_hash')!.lookup(1), [10n, ...new Array(kernel.cpus - 1).fill(0n)]);
    assert.equal(run(0x55), -95, 'unknown opcode: -EOPNOTSUPP');
  });

  it('per-CPU updates land on the CPU the run executes on', async () => {
    await using coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    if (kernel.cpus < 2) return;
    kernel.cpu = 1;
    try {
      assert.equal(p.testRun({ data: cmd(0x06, 1, 5) }).retval, 0);
      assert.deepEqual(coll.maps.get('lru_percpu_hash')!.lookup(1), [0n, 5n, ...new Array(kernel.cpus - 2).fill(0n)]);
    } finally {
      kernel.cpu = 0;
    }
  });

  it('LPM trie: longest prefix match from the program', async () => {
    await using coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    const lpm = coll.maps.get('lpm_trie')!;
    const ip = (a: number, b: number, c: number, d: number) => a | (b << 8) | (c << 16) | (d << 24);
    const run = (addr: number) => p.testRun({ data: cmd(0x07, 0, addr) }).retval | 0;
    lpm.update(new Uint8Array([24, 0, 0, 0, 10, 0, 0, 0]), 513);
    assert.deepEqual([run(ip(10, 0, 0, 5)), run(ip(10, 0, 1, 5))], [513, ENOENT]);
    lpm.update('10.0.0.0/8' as never, 8);
    assert.deepEqual([run(ip(10, 0, 1, 5)), run(ip(11, 0, 0, 5))], [8, ENOENT]);
  });

  it('queue and stack: push until full, BPF_EXIST drops the oldest, pop order', async () => {
    await using coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    const run = (...a: Parameters<typeof cmd>) => p.testRun({ data: cmd(...a) }).retval | 0;
    for (const [push, pop, afterPops] of [[0x08, 0x09, [2, 3]], [0x0a, 0x0b, [10, 8]]] as const) {
      for (let i = 1; i <= 8; i++) assert.equal(run(push, i), 0);
      assert.equal(run(push, 9), E2BIG);
      assert.equal(run(push, 10, 0, 2), 0);
      assert.deepEqual([run(pop), run(pop)], afterPops);
    }
    const empty = await load('maps');
    assert.equal(empty.programs.get('xdp_maps')!.testRun({ data: cmd(0x09) }).retval | 0, ENOENT);
    empty.close();
  });

  it('ring buffer output, and perf output without a reader (-ENOENT)', async () => {
    await using coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    assert.equal(p.testRun({ data: cmd(0x0c, 0x10, 0x20202020) }).retval, 0);
    const [rec] = kernel.readRingbuf(coll.maps.get('ringbuf')!.fd);
    const want = new Uint8Array(64);
    want.set([0x42, 0x50, 0x46, 0x4b, 0x0c, 0, 0, 0, 0x10, 0, 0, 0, 0x20, 0x20, 0x20, 0x20]);
    for (let i = 0; i < 48; i++) want[16 + i] = 0x10 + i;
    assert.deepEqual(rec, want);
    assert.equal(p.testRun({ data: cmd(0x0d) }).retval | 0, ENOENT);
  });

  it('tail calls: static jmp_table, dynamic prog_array', async () => {
    await using coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    const run = (...a: Parameters<typeof cmd>) => p.testRun({ data: cmd(...a) }).retval | 0;
    assert.deepEqual([run(0x0e, 0), run(0x0e, 1), run(0x0e, 5)], [0xca11, ENOENT, ENOENT]);
    assert.equal(run(0x0f, 1), ENOENT);
    coll.maps.get('prog_array')!.update(1, coll.programs.get('xdp_tail_target')!.fd);
    assert.equal(run(0x0f, 1), 0xca11);
  });

  it('maps of maps', async () => {
    await using coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    const run = (...a: Parameters<typeof cmd>) => p.testRun({ data: cmd(...a) }).retval | 0;
    assert.equal(run(0x10, 0), 0);
    coll.maps.get('inner_map_a')!.update(0, 0x39);
    assert.deepEqual([run(0x10, 0), run(0x10, 1)], [57, ENOENT]);
    coll.maps.get('hash_of_maps')!.update(7, coll.maps.get('inner_map_b')!.fd);
    coll.maps.get('inner_map_b')!.update(0, 0x40);
    assert.deepEqual([run(0x11, 7), run(0x11, 8)], [64, ENOENT]);
  });

  it('RICH_WRITE writes the documented bytes; RICH_READ reads every field back', async () => {
    await using coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    assert.equal(p.testRun({ data: cmd(0x13, 3, 0xfffffff0) }).retval, 0);
    const raw = Buffer.from(coll.maps.get('rich_map')!.lookupBytes(3)!).toString('hex');
    assert.equal(raw, 'ffffffff02000000010203040a0014001e0028006270666b69740000000000000000000002000000' +
      '9b00000000000000efcdab8967452301f0ffffff00000000');
    const fields = Array.from({ length: 14 }, (_, f) => p.testRun({ data: cmd(0x12, 3, 0, f) }).retval);
    assert.deepEqual(fields, [0xffffffff, 2, 67305985, 1, 10, 40, 98, 2, 1, 5, 9, 0x89abcdef, 0x01234567, 0xfffffff0]);
    assert.equal(p.testRun({ data: cmd(0x12, 3, 0, 14) }).retval | 0, -22);
    assert.equal(p.testRun({ data: cmd(0x12, 4, 0, 0) }).retval | 0, ENOENT);
    assert.deepEqual((coll.maps.get('rich_map')!.lookup(3) as { origin: unknown }).origin, { x: -1, y: 2 });
  });

  it('LRU: at most 4 entries and the newest present (the emulator evicts exactly the least recently used)', async () => {
    await using coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    for (let k = 1; k <= 7; k++) assert.equal(p.testRun({ data: cmd(0x05, k, k) }).retval, 0);
    const keys = [...coll.maps.get('lru_hash')!.keys()] as number[];
    assert.ok(keys.length <= 4 && keys.includes(7));
    assert.deepEqual(keys.sort(), [4, 5, 6, 7]);
  });

  it('the kernel empties a prog array when user space closes it: jmp_table stays full while the collection is open', async () => {
    const coll = await load('maps');
    const p = coll.programs.get('xdp_maps')!;
    assert.equal(p.testRun({ data: cmd(0x0e, 0) }).retval, 0xca11);
    coll.close();
  });
});

describe('globals.bpf.o', () => {
  it('returns 3*input + 1010100 and updates .bss and .data', async () => {
    await using coll = await load('globals');
    const p = coll.programs.get('xdp_globals')!;
    const input = new Uint8Array(14);
    input[0] = 5;
    assert.equal(p.testRun({ data: input }).retval, 1010115);
    const v = (n: string) => coll.variables.get(n)!.get();
    assert.equal(v('bss_runs'), 1n);
    assert.equal(v('bss_last_input'), 5);
    assert.equal(v('bss_last_result'), 1010115);
    assert.deepEqual(v('data_array'), [1, 3, 3, 4]);
    assert.equal(Buffer.from(v('bss_greeting') as Uint8Array).toString('latin1'), 'hello, bpfkit\0\0\0');
  });

  it('a .rodata constant set before load reaches the program; .rodata is frozen afterwards', async () => {
    const spec = await CollectionSpec.fromFile(obj('globals'));
    spec.variables.get('rodata_factor')!.set(5);
    await using coll = await Collection.load(spec);
    const input = new Uint8Array(14);
    input[0] = 5;
    assert.equal(coll.programs.get('xdp_globals')!.testRun({ data: input }).retval, 1010125);
    assert.throws(() => coll.variables.get('rodata_factor')!.set(7), { code: 'ERR_BPFKIT_INVALID_ARG' });
    coll.variables.get('data_value')!.set(200);
    assert.equal(coll.programs.get('xdp_globals')!.testRun({ data: input }).retval, 1010225);
  });

  it('global data maps are mmapable: the mapping is the map', async () => {
    await using coll = await load('globals');
    const m = coll.maps.get('.data')!;
    const buf = native().mmap(m.fd, 4096, 3, 1, 0);
    assert.ok(buf instanceof ArrayBuffer);
    new DataView(buf).setUint32(0, 1, true); // data_value
    const input = new Uint8Array(14);
    assert.equal(coll.programs.get('xdp_globals')!.testRun({ data: input }).retval, 1010001);
    assert.throws(() => m.freeze(), { code: 'EBUSY' }, 'freeze is refused while a writable mapping exists');
    native().munmap(buf);
    m.freeze();
  });
});

describe('BPF-to-BPF calls', () => {
  const packet = (mode: number, x: number) => {
    const b = new Uint8Array(14);
    b[0] = mode;
    new DataView(b.buffer).setUint32(4, x >>> 0, true);
    return b;
  };
  it('subprog.bpf.o: static, global and chained functions', async () => {
    await using coll = await load('subprog');
    const xdp = coll.programs.get('xdp_subprog')!;
    const tc = coll.programs.get('tc_subprog')!;
    assert.deepEqual([0, 1, 2, 3, 4].map((m) => xdp.testRun({ data: packet(m, 10) }).retval), [17, 70, 21, 158, 4294967295]);
    assert.equal(xdp.testRun({ data: packet(3, 300) }).retval, 3928);
    assert.equal(tc.testRun({ data: packet(0, 10) }).retval, 101);
    assert.equal(tc.testRun({ data: packet(0, 0xffffffff) }).retval, 4294967287);
  });

  it('subprog_same_section.bpf.o: a callee in the caller\'s section', async () => {
    await using coll = await load('subprog_same_section');
    assert.equal(coll.programs.get('xdp_same_section')!.testRun({ data: packet(0, 5) }).retval, 2010);
  });
});

describe('legacy_maps.bpf.o', () => {
  it('legacy map definitions work: counter 1, 2; legacy_hash[7] == 99', async () => {
    await using coll = await load('legacy_maps');
    const p = coll.programs.get('xdp_legacy')!;
    const b = new Uint8Array(14);
    new DataView(b.buffer).setUint32(0, 7, true);
    new DataView(b.buffer).setUint32(4, 99, true);
    assert.deepEqual([p.testRun({ data: b }).retval, p.testRun({ data: b }).retval], [1, 2]);
    assert.equal(coll.maps.get('legacy_hash')!.lookup(7), 99);
  });
});

/** A minimal reader of a ring buffer's mmap (consumer page + producer pages), as a library reader would do it. */
function readRing(fd: number, size: number): Uint8Array[] {
  const n = native();
  const cons = n.mmap(fd, 4096, 3, 1, 0);
  const prod = n.mmap(fd, 4096 + 2 * size, 1, 1, 4096);
  assert.ok(cons instanceof ArrayBuffer && prod instanceof ArrayBuffer);
  const cv = new DataView(cons);
  const pv = new DataView(prod);
  let c = Number(cv.getBigUint64(0, true));
  const p = Number(pv.getBigUint64(0, true));
  const out: Uint8Array[] = [];
  while (c < p) {
    const hdr = pv.getUint32(4096 + (c & (size - 1)), true);
    if (hdr & 0x80000000) break;
    const len = hdr & 0x3fffffff;
    if (!(hdr & 0x40000000)) out.push(new Uint8Array(prod, 4096 + (c & (size - 1)) + 8, len).slice());
    c += (len + 8 + 7) & ~7;
  }
  cv.setBigUint64(0, BigInt(c), true);
  n.munmap(cons);
  n.munmap(prod);
  return out;
}

describe('ringbuf.bpf.o', () => {
  const input = (count: number, tag: number, flags = 0) => {
    const b = new Uint8Array(14);
    const v = new DataView(b.buffer);
    v.setUint32(0, count, true);
    v.setUint32(4, tag, true);
    v.setUint32(8, flags, true);
    return b;
  };
  const seqs = (recs: Uint8Array[]) => recs.map((r) => new DataView(r.buffer).getUint32(0, true));

  it('submit: records seq 0..n-1 read through the mmap, as a reader sees them', async () => {
    await using coll = await load('ringbuf');
    const fd = coll.maps.get('events')!.fd;
    assert.equal(coll.programs.get('xdp_ringbuf_submit')!.testRun({ data: input(3, 7) }).retval, 3);
    const recs = readRing(fd, 16384);
    assert.deepEqual(seqs(recs), [0, 1, 2]);
    assert.deepEqual([...new Uint32Array(recs[2]!.buffer)], [2, 7, 3, 0x52494e47]);
    assert.deepEqual(readRing(fd, 16384), [], 'the consumer position moved past them');
  });

  it('discard: discarded records take space but are skipped', async () => {
    await using coll = await load('ringbuf');
    assert.equal(coll.programs.get('xdp_ringbuf_discard')!.testRun({ data: input(5, 8) }).retval, 3);
    assert.deepEqual(seqs(kernel.readRingbuf('events')), [0, 2, 4]);
  });

  it('output: odd lengths, and the 256-byte maximum', async () => {
    await using coll = await load('ringbuf');
    const p = coll.programs.get('xdp_ringbuf_output')!;
    assert.equal(p.testRun({ data: input(13, 100) }).retval, 13);
    assert.equal(p.testRun({ data: input(256, 1) }).retval, 256);
    assert.equal(p.testRun({ data: input(0, 1) }).retval | 0, -22);
    const recs = readRing(coll.maps.get('events')!.fd, 16384);
    assert.deepEqual([...recs[0]!], Array.from({ length: 13 }, (_, i) => 100 + i));
    assert.equal(recs[1]!.length, 256);
    assert.equal(recs[1]![255], 0);
  });

  it('capacity: 682 records of 24 bytes fit in 16 KiB; records wrap around the end', async () => {
    await using coll = await load('ringbuf');
    const p = coll.programs.get('xdp_ringbuf_submit')!;
    const got = Array.from({ length: 6 }, () => p.testRun({ data: input(1000, 1) }).retval);
    assert.deepEqual(got, [128, 128, 128, 128, 128, 42]);
    assert.equal(readRing(coll.maps.get('events')!.fd, 16384).length, 682);
    assert.equal(p.testRun({ data: input(200, 2) }).retval, 128, 'room again after reading; these wrap');
    assert.deepEqual(seqs(readRing(coll.maps.get('events')!.fd, 16384)), Array.from({ length: 128 }, (_, i) => i));
  });

  it('a poller on the ring buffer fd fires when a record is committed', async () => {
    await using coll = await load('ringbuf');
    const fd = coll.maps.get('events')!.fd;
    const n = native();
    const fired = new Promise<number>((resolve) => {
      const poller = new n.Poller(fd, (status, events) => {
        poller.close();
        kernel.readRingbuf(fd);
        resolve(status === 0 ? events : -1);
      });
      assert.equal(poller.start(n.constants.UV_READABLE), 0);
    });
    coll.programs.get('xdp_ringbuf_submit')!.testRun({ data: input(1, 1) });
    assert.equal(await fired, n.constants.UV_READABLE);
  });
});

describe('the library\'s readers on the emulated rings', () => {
  it('RingBufReader reads ringbuf.bpf.o\'s records as they are produced', async () => {
    await using coll = await load('ringbuf');
    const reader = new RingBufReader(coll.maps.get('events')!);
    try {
      const next = reader.read();
      const b = new Uint8Array(14);
      new DataView(b.buffer).setUint32(0, 3, true);
      new DataView(b.buffer).setUint32(4, 9, true);
      setImmediate(() => coll.programs.get('xdp_ringbuf_submit')!.testRun({ data: b }));
      const first = await next;
      assert.deepEqual([...new Uint32Array(first.buffer, first.byteOffset, 4)], [0, 9, 3, 0x52494e47]);
      const rest = [reader.readSync(), reader.readSync(), reader.readSync()];
      assert.deepEqual(rest.map((r) => r && new DataView(r.buffer, r.byteOffset).getUint32(0, true)), [1, 2, undefined]);
    } finally {
      reader.close();
    }
  });

  it('PerfReader reads maps.bpf.o\'s PERF_OUTPUT samples (68 bytes for a 64-byte record)', async () => {
    await using coll = await load('maps');
    const reader = new PerfReader(coll.maps.get('perf_array')!, { perCpuBuffer: 4096 });
    try {
      assert.equal(coll.programs.get('xdp_maps')!.testRun({ data: cmd(0x0d, 0x10, 0x20202020) }).retval, 0);
      const rec = await reader.read();
      assert.equal(rec.cpu, kernel.cpu);
      assert.ok(rec.lost === undefined);
      assert.equal(rec.data.length, 68);
      assert.deepEqual([...rec.data.subarray(0, 8)], [0x42, 0x50, 0x46, 0x4b, 0x0d, 0, 0, 0]);
    } finally {
      reader.close();
    }
    assert.equal(coll.programs.get('xdp_maps')!.testRun({ data: cmd(0x0d) }).retval | 0, -2, 'closing took the events out of the map');
  });
});

describe('progtypes.bpf.o', () => {
  it('every packet program and the raw tracepoint runs once; hits as in the README', async () => {
    // tp_btf needs the running kernel's BTF at load: leave it out to stay independent of the host.
    const spec = await CollectionSpec.fromFile(obj('progtypes'));
    spec.programs.delete('tp_btf_exec');
    await using coll = await Collection.load(spec);
    const data = new Uint8Array(60);
    const r = (name: string) => coll.programs.get(name)!.testRun({ data }).retval;
    assert.deepEqual(['xdp_prog', 'tc_prog', 'classifier_prog', 'socket_filter', 'cgroup_ingress', 'cgroup_egress'].map(r), [2, 0, 2, 46, 1, 1]);
    const ctx = new Uint8Array(16);
    ctx[8] = 59;
    assert.equal(coll.programs.get('raw_tp_sys_enter')!.testRun({ ctx }).retval, 59);
    assert.deepEqual([...coll.maps.get('hits')!.values()], [1n, 1n, 1n, 1n, 0n, 1n, 0n, 0n, 0n, 0n, 1n, 1n, 0n, 0n, 0n, 0n]);
    assert.equal(coll.programs.has('xdp_optional'), false, '?xdp is not loaded by default');
  });

  it('tracing programs the kernel cannot test-run run here on a ctx the test builds', async () => {
    const spec = await CollectionSpec.fromFile(obj('progtypes'));
    await using coll = await Collection.load(spec, { programs: { only: ['tracepoint_execve', 'kprobe_open'] } });
    assert.equal(coll.programs.get('tracepoint_execve')!.testRun({ ctx: new Uint8Array(64) }).retval, 0);
    assert.equal(coll.programs.get('kprobe_open')!.testRun({ ctx: new Uint8Array(168) }).retval, 0);
    assert.deepEqual([...coll.maps.get('hits')!.values()].slice(4, 8), [1n, 0n, 0n, 1n]);
  });
});

describe('reject.bpf.o', () => {
  it('loads in the emulator (no verifier proof of packet bounds), unlike the kernel', async () => {
    await using coll = await load('reject');
    const b = new Uint8Array(14);
    b[0] = 0xff;
    assert.equal(coll.programs.get('xdp_reject')!.testRun({ data: b }).retval, 1);
  });
});
