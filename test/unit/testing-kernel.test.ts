/**
 * The emulated kernel's syscall surface, through the library's own objects: map semantics and
 * errno values, file descriptors and reference counts, pinning, ids, object info, batch commands,
 * perf event rings, pollers, and the helpers that report the task, the time and probe memory.
 * Every expectation is the kernel's documented behaviour (most are also checked against a real
 * kernel by test/kernel/emulator-diff.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProbeMemory, asm, label, loadAssembly, useEmulatedKernel, type Item } from '../../src/testing/index.js';
import { BpfMap } from '../../src/objects/map.js';
import { Program } from '../../src/objects/program.js';
import { getNextId, mapBatch } from '../../src/sys/bpf.js';
import { native } from '../../src/sys/native.js';
import { haveMapType, haveProgramHelper, haveProgramType } from '../../src/kernel/features.js';
import type { MapSpec } from '../../src/spec/collection-spec.js';

const memory = new ProbeMemory({ currentTask: 0xffff888000100000n });
// Pins go to an emulated bpffs outside /sys/fs/bpf, where the library would check (and, as root, mount) the real one.
const BPFFS = '/emulated/bpffs';
const kernel = useEmulatedKernel({
  memory, task: { pid: 1234, tgid: 1200, uid: 1000, gid: 100, comm: 'node-under-test' }, clock: () => 5_000_000_000n, bpffs: [BPFFS],
});

function spec(type: MapSpec['type'], keySize: number, valueSize: number, maxEntries: number, flags = 0, innerMap?: MapSpec): MapSpec {
  return {
    name: type, type, keySize, valueSize, maxEntries, flags, numaNode: 0, mapExtra: 0n, pinning: 'none', btf: undefined,
    keyTypeId: 0, valueTypeId: 0, innerMap, contents: [], data: undefined, freeze: false, section: '',
  };
}

function loadRaw(items: readonly Item[]): Program {
  return loadAssembly(items, { name: 'raw' });
}

const code = (e: unknown) => (e as { code?: string }).code;
const fails = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return code(e);
  }
};

describe('map semantics and errno', () => {
  it('hash: flags, E2BIG when full, ENOENT/EEXIST, lookupAndDelete', () => {
    using m = BpfMap.create(spec('hash', 4, 8, 2)) as BpfMap<number, bigint>;
    assert.deepEqual([fails(() => m.update(1, 1n)), fails(() => m.update(2, 2n)), fails(() => m.update(3, 3n))], ['ok', 'ok', 'E2BIG']);
    assert.equal(fails(() => m.update(1, 5n, 'noexist')), 'EEXIST');
    assert.equal(fails(() => m.update(9, 5n, 'exist')), 'ENOENT');
    assert.equal(fails(() => m.update(1, 5n, 4)), 'EINVAL', 'BPF_F_LOCK without a spin lock');
    assert.equal(fails(() => m.update(1, 5n, 3)), 'EINVAL');
    assert.equal(m.update(1, 7n, 'exist'), undefined);
    assert.equal(m.lookupAndDelete(1), 7n);
    assert.equal(m.delete(1), false);
    assert.deepEqual([...m.keys()], [2]);
  });

  it('array: EINVAL on delete, E2BIG past the end, EEXIST for noexist; keys are every index', () => {
    using m = BpfMap.create(spec('array', 4, 8, 3)) as BpfMap<number, bigint>;
    assert.equal(fails(() => m.delete(0)), 'EINVAL');
    assert.equal(fails(() => m.update(3, 1n)), 'E2BIG');
    assert.equal(fails(() => m.update(0, 1n, 'noexist')), 'EEXIST');
    assert.equal(m.lookup(9), undefined);
    assert.deepEqual([...m.entries()], [[0, 0n], [1, 0n], [2, 0n]]);
    assert.equal(fails(() => m.lookupAndDelete(0)), 'ENOTSUPP');
  });

  it('per-CPU maps: one 8-byte-aligned value per CPU', () => {
    using m = BpfMap.create(spec('percpu_array', 4, 4, 1)) as BpfMap<number, number[]>;
    const values = Array.from({ length: kernel.cpus }, (_, i) => i + 10);
    m.update(0, values);
    assert.deepEqual(m.lookup(0), values);
    assert.equal(m.lookupBytes(0)!.length, 8 * kernel.cpus);
  });

  it('LRU: evicts the least recently used; a full map evicts even when replacing a key (as the kernel does)', () => {
    using m = BpfMap.create(spec('lru_hash', 4, 8, 4)) as BpfMap<number, bigint>;
    for (const k of [1, 2, 3, 4]) m.update(k, BigInt(k));
    m.update(5, 5n);
    assert.deepEqual([...m.keys()].sort(), [2, 3, 4, 5]);
    m.update(3, 30n);
    assert.deepEqual([...m.keys()].sort(), [3, 4, 5]);
  });

  it('LPM trie: lookups match the longest prefix, updates and deletes are exact, ENOSPC when full', () => {
    using m = BpfMap.create(spec('lpm_trie', 8, 4, 3, 1)) as BpfMap<Uint8Array, number>;
    m.update('10.0.0.0/8' as never, 8);
    m.update('10.1.0.0/16' as never, 16);
    assert.equal(m.lookup('10.1.2.3/32' as never), 16);
    assert.equal(m.lookup('10.2.2.3/32' as never), 8);
    assert.equal(m.lookup('10.1.2.3/12' as never), 8, 'the key\'s own prefix length bounds the match');
    assert.equal(m.delete('10.0.0.0/16' as never), false);
    m.update('192.168.0.0/16' as never, 1);
    assert.equal(fails(() => m.update('172.16.0.0/12' as never, 1)), 'ENOSPC');
    assert.equal(fails(() => m.update(new Uint8Array([33, 0, 0, 0, 1, 2, 3, 4]), 1)), 'EINVAL');
  });

  it('queue and stack', () => {
    using q = BpfMap.create(spec('queue', 0, 4, 2)) as BpfMap<never, number>;
    q.push(1);
    q.push(2);
    assert.equal(fails(() => q.push(3)), 'E2BIG');
    q.push(4, 'exist');
    assert.deepEqual([q.pop(), q.peek(), q.pop(), q.pop()], [2, 4, 4, undefined]);
    assert.equal(fails(() => q.push(1, 'noexist')), 'EINVAL');
    using s = BpfMap.create(spec('stack', 0, 4, 2)) as BpfMap<never, number>;
    s.push(1);
    s.push(2);
    assert.deepEqual([s.pop(), s.pop()], [2, 1]);
  });

  it('freeze: user-space writes fail with EPERM, freezing twice too; programs may still write', () => {
    using m = BpfMap.create(spec('array', 4, 8, 1)) as BpfMap<number, bigint>;
    m.freeze();
    assert.equal(fails(() => m.update(0, 1n)), 'EPERM');
    assert.equal(fails(() => m.freeze()), 'EPERM');
    const p = loadRaw([asm.st('w', 'r10', -4, 0), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4), ...asm.ldMapFd('r1', m.fd), asm.call(1),
      asm.jmp('eq', 'r0', 0, 'out'), asm.st('dw', 'r0', 0, 42), label('out'), asm.mov64('r0', 2), asm.exit()]);
    p.testRun({ data: new Uint8Array(14) });
    p.close();
    assert.equal(m.lookup(0), 42n);
  });

  it('map creation is validated as the kernel does', () => {
    const refused = (s: MapSpec) => fails(() => BpfMap.create(s).close());
    assert.equal(refused(spec('lpm_trie', 8, 4, 4)), 'EINVAL', 'LPM tries need BPF_F_NO_PREALLOC');
    assert.equal(refused(spec('array', 8, 4, 4)), 'EINVAL', 'array keys are 4 bytes');
    assert.equal(refused(spec('ringbuf', 0, 0, 5000)), 'EINVAL', 'ring sizes are powers of 2 and page multiples');
    assert.equal(refused(spec('hash', 4, 4, 0)), 'EINVAL');
    assert.equal(refused(spec('hash', 4, 1 << 22, 1)), 'E2BIG');
    assert.equal(refused(spec('lru_hash', 4, 4, 4, 1)), 'ENOTSUPP');
    assert.equal(refused(spec('devmap', 4, 8, 4, 1)), 'EINVAL', 'devmaps take NUMA and access flags only');
    assert.equal(refused(spec('cpumap', 4, 4, 100000)), 'E2BIG', 'a cpumap has at most NR_CPUS slots');
    assert.equal(refused(spec('cgroup_storage', 12, 4, 0)), 'EINVAL', 'types the emulator lacks answer like a kernel without them');
  });

  it('feature probes answer for the emulated kernel', () => {
    assert.equal(haveMapType('ringbuf'), true);
    assert.equal(haveMapType('lpm_trie'), true);
    assert.equal(haveMapType('array_of_maps'), true);
    assert.equal(haveMapType('devmap'), true);
    assert.equal(haveMapType('cgroup_storage'), false);
    assert.equal(haveProgramType('xdp'), true);
    assert.equal(haveProgramHelper('xdp', 1), true);
    assert.equal(haveProgramHelper('xdp', 100000), false);
    assert.equal(haveProgramHelper('sched_cls', 28), true, 'bpf_csum_diff is emulated');
    assert.equal(haveProgramHelper('sched_cls', 18), true, 'bpf_skb_vlan_push is emulated');
    assert.equal(haveProgramHelper('sched_cls', 124), false, 'bpf_sk_assign is not: the probe says so instead of failing mid-run');
  });

  it('maps of maps check the inner map against the template', () => {
    const inner = spec('array', 4, 4, 1);
    const template = BpfMap.create(inner);
    using outer = BpfMap.create(spec('array_of_maps', 4, 4, 2, 0, inner), { innerMapFd: template.fd });
    template.close();
    using ok = BpfMap.create(inner);
    using wrong = BpfMap.create(spec('array', 4, 8, 1));
    outer.update(0, new Uint8Array(new Uint32Array([ok.fd]).buffer));
    assert.equal(fails(() => outer.update(1, new Uint8Array(new Uint32Array([wrong.fd]).buffer))), 'EINVAL');
    assert.equal(outer.lookup(0), ok.info().id, 'user space reads back the inner map\'s id');
  });
});

describe('file descriptors, references, pins, ids', () => {
  it('a prog array loses its programs when user space closes its last fd, not while a pin holds it', () => {
    const jt = BpfMap.create(spec('prog_array', 4, 4, 1));
    const p = loadRaw([asm.mov64('r0', 2), asm.exit()]);
    jt.update(0, p.fd);
    const id = jt.info().id;
    jt.pin(`${BPFFS}/jt`);
    jt.close();
    const again = BpfMap.fromPinned(`${BPFFS}/jt`);
    assert.equal(again.lookup(0), p.info().id, 'the pin kept it filled');
    assert.equal(kernel.unlink(`${BPFFS}/jt`), 0);
    const viaId = BpfMap.fromId(id);
    again.close();
    assert.equal(viaId.lookup(0), p.info().id, 'still one fd open');
    viaId.close();
    assert.equal(fails(() => BpfMap.fromId(id)), 'ENOENT', 'with no references left the map is gone');
    p.close();
  });

  it('a map lives as long as a program uses it', () => {
    const m = BpfMap.create(spec('array', 4, 8, 1));
    const id = m.info().id;
    const p = loadRaw([...asm.ldMapFd('r1', m.fd), asm.mov64('r0', 2), asm.exit()]);
    m.close();
    assert.deepEqual(p.info().mapIds, [id]);
    const reopened = BpfMap.fromId(id);
    reopened.close();
    p.close();
    assert.equal(fails(() => BpfMap.fromId(id)), 'ENOENT');
  });

  it('pins live in the emulated bpffs: EEXIST, ENOENT for missing directories, EPERM outside bpffs', () => {
    using m = BpfMap.create(spec('hash', 4, 4, 1));
    assert.equal(fails(() => m.pin(`${BPFFS}/nodir/x`)), 'ENOENT');
    assert.equal(kernel.mkdir(`${BPFFS}/dir`), 0);
    m.pin(`${BPFFS}/dir/x`);
    assert.equal(fails(() => m.pin(`${BPFFS}/dir/x`)), 'EEXIST');
    assert.equal(fails(() => m.pin('/tmp/x')), 'EPERM');
    assert.deepEqual(kernel.pinned(), [`${BPFFS}/dir/x`]);
    assert.equal(fails(() => BpfMap.fromPinned(`${BPFFS}/dir/nothing`)), 'ENOENT');
    kernel.unlink(`${BPFFS}/dir/x`);
    kernel.unlink(`${BPFFS}/dir`);
    assert.deepEqual(kernel.pinned(), []);
  });

  it('programs by id and by pin; GET_NEXT_ID walks the live ids', () => {
    const a = loadRaw([asm.mov64('r0', 2), asm.exit()]);
    const b = loadRaw([asm.mov64('r0', 1), asm.exit()]);
    const ids = [a.info().id, b.info().id];
    const seen: number[] = [];
    for (let id = getNextId('PROG', 0); id !== undefined; id = getNextId('PROG', id)) seen.push(id);
    assert.deepEqual(seen, ids);
    using c = Program.fromId(ids[1]!);
    assert.equal(c.testRun({ data: new Uint8Array(14) }).retval, 1);
    b.pin(`${BPFFS}/b`);
    using d = Program.fromPinned(`${BPFFS}/b`);
    assert.equal(d.type, 'xdp');
    kernel.unlink(`${BPFFS}/b`);
    a.close();
    b.close();
  });

  it('object info: the fields the library reads', () => {
    using m = BpfMap.create({ ...spec('hash', 4, 8, 16, 1), name: 'named_map' });
    const info = m.info();
    assert.deepEqual([info.type, info.name, info.keySize, info.valueSize, info.maxEntries, info.flags], ['hash', 'named_map', 4, 8, 16, 1]);
    const p = loadRaw([...asm.ldMapFd('r1', m.fd), asm.mov64('r0', 2), asm.exit()]);
    const pi = p.info();
    assert.equal(pi.type, 'xdp');
    assert.equal(pi.xlatedLength, 32, 'ld_imm64 takes two slots');
    assert.equal(pi.verifiedInstructions, 3, 'and is one instruction for the verifier');
    assert.match(pi.tag, /^[0-9a-f]{16}$/);
    assert.equal(pi.gplCompatible, true);
    const xlated = p.translatedInstructions();
    assert.equal(new DataView(xlated.buffer).getInt32(4, true), info.id, 'map references show map ids, as bpftool prints them');
    p.close();
  });

  it('file descriptors are far from real ones, and closing twice is EBADF', () => {
    const m = BpfMap.create(spec('hash', 4, 4, 1));
    assert.ok(m.fd >= 2_000_000);
    const fd = m.fd;
    m.close();
    assert.equal(native().close(fd), -9);
  });
});

describe('pollers', () => {
  it('ring buffer commits wake a poller unless BPF_RB_NO_WAKEUP; BPF_RB_FORCE_WAKEUP always', async () => {
    const n = native();
    const fired: number[] = [];
    for (const flags of [0, 1, 2, 3]) {
      using rb = BpfMap.create(spec('ringbuf', 0, 0, 4096));
      const p = loadRaw([...asm.ldMapFd('r1', rb.fd), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -8), asm.st('dw', 'r10', -8, 5), asm.mov64('r3', 8),
        asm.mov64('r4', flags), asm.call(130), asm.exit()]);
      let count = 0;
      const poller = new n.Poller(rb.fd, () => {
        count++;
        kernel.readRingbuf(rb.fd);
      });
      poller.start(n.constants.UV_READABLE);
      p.testRun({ data: new Uint8Array(14) });
      await new Promise((r) => setTimeout(r, 10));
      poller.close();
      p.close();
      fired.push(count);
    }
    assert.deepEqual(fired, [1, 0, 1, 1]);
  });

  it('a poller started on a ring that already holds data reports it; one on a map fd is refused', async () => {
    using rb = BpfMap.create(spec('ringbuf', 0, 0, 4096));
    const p = loadRaw([...asm.ldMapFd('r1', rb.fd), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -8), asm.st('dw', 'r10', -8, 5), asm.mov64('r3', 8),
      asm.mov64('r4', 1), asm.call(130), asm.exit()]);
    p.testRun({ data: new Uint8Array(14) });
    p.close();
    const n = native();
    const ready = await new Promise<number>((resolve) => {
      const poller = new n.Poller(rb.fd, (_s, events) => {
        poller.close();
        resolve(events);
      });
      poller.start(n.constants.UV_READABLE);
    });
    assert.equal(ready, n.constants.UV_READABLE);
    using h = BpfMap.create(spec('hash', 4, 4, 1));
    const q = new n.Poller(h.fd, () => {});
    assert.equal(q.start(n.constants.UV_READABLE), -1);
    q.close();
  });
});

describe('batch commands', () => {
  it('lookup, update, delete in batches (hash); arrays answer ENOTSUPP for delete', () => {
    using m = BpfMap.create(spec('hash', 4, 4, 64)) as BpfMap<number, number>;
    assert.equal(m.updateBatch(Array.from({ length: 10 }, (_, i) => [i, i * i] as const)), 10);
    const all = m.lookupBatch({ batchSize: 3 });
    assert.deepEqual(new Map(all), new Map(Array.from({ length: 10 }, (_, i) => [i, i * i])));
    assert.equal(m.deleteBatch([1, 2, 3]), 3);
    assert.equal(m.lookupAndDeleteBatch({ batchSize: 4 }).length, 7);
    assert.deepEqual([...m.keys()], []);
    using a = BpfMap.create(spec('array', 4, 4, 4));
    const r = mapBatch('MAP_DELETE_BATCH', { fd: a.fd, inBatch: null, outBatch: null, keys: new Uint8Array(4), values: null, count: 1 });
    assert.equal(r.errno, 524);
  });
});

describe('perf event arrays', () => {
  it('bpf_perf_event_output writes PERF_RECORD_SAMPLE records to the CPU\'s ring, LOST after drops', async () => {
    using perf = BpfMap.create(spec('perf_event_array', 4, 4, kernel.cpus));
    const n = native();
    // struct perf_event_attr: type PERF_TYPE_SOFTWARE, config PERF_COUNT_SW_BPF_OUTPUT, sample_type RAW, wakeup_events 1.
    const attr = new Uint8Array(128);
    const av = new DataView(attr.buffer);
    av.setUint32(0, 1, true);
    av.setUint32(4, 128, true);
    av.setBigUint64(8, 10n, true);
    av.setBigUint64(24, 1n << 10n, true);
    av.setUint32(48, 1, true);
    const fd = n.perfEventOpen(attr, null, -1, 0, -1, 0);
    assert.ok(fd >= 0);
    const ring = n.mmap(fd, 4096 * 2, 3, 1, 0);
    assert.ok(ring instanceof ArrayBuffer);
    perf.update(0, new Uint8Array(new Uint32Array([fd]).buffer));
    // Emits 20 bytes (r2 points at a zeroed stack area with a marker) with BPF_F_CURRENT_CPU.
    const p = loadRaw([
      asm.mov64('r6', 'r1'), asm.st('dw', 'r10', -24, 0), asm.st('dw', 'r10', -16, 0), asm.st('dw', 'r10', -8, 0), asm.st('w', 'r10', -24, 0x4b465042),
      asm.mov64('r1', 'r6'), ...asm.ldMapFd('r2', perf.fd), ...asm.ld64('r3', 0xffffffffn), asm.mov64('r4', 'r10'), asm.alu64('add', 'r4', -24),
      asm.mov64('r5', 20), asm.call(25), asm.exit(),
    ]);
    const poll = new Promise<void>((resolve) => {
      const poller = new n.Poller(fd, () => {
        poller.close();
        resolve();
      });
      poller.start(n.constants.UV_READABLE);
    });
    assert.equal(p.testRun({ data: new Uint8Array(14) }).retval, 0);
    await poll;
    const meta = new DataView(ring, 0, 4096);
    const data = new DataView(ring, 4096);
    assert.equal(meta.getBigUint64(1024, true), 32n, 'data_head: an 8-byte header, the u32 size and 20 bytes (already 8-byte aligned)');
    assert.deepEqual([data.getUint32(0, true), data.getUint16(6, true), data.getUint32(8, true), data.getUint32(12, true)], [9, 32, 20, 0x4b465042]);
    // Fill the ring without reading: drops are counted and reported with PERF_RECORD_LOST once there is room.
    let lost = 0;
    for (let i = 0; i < 200; i++) if ((p.testRun({ data: new Uint8Array(14) }).retval | 0) === -28) lost++;
    assert.equal(lost, 200 - 127);
    meta.setBigUint64(1032, meta.getBigUint64(1024, true), true);
    p.testRun({ data: new Uint8Array(14) });
    const at = Number(meta.getBigUint64(1032, true) % 4096n);
    assert.deepEqual([data.getUint32(at, true), Number(data.getBigUint64(at + 16, true))], [2, lost]);
    p.close();
    n.munmap(ring);
    n.close(fd);
  });
});

describe('helpers that report the task, time and memory', () => {
  it('pid/tgid, uid/gid, comm, ktime and trace_printk come from the kernel options', () => {
    using out = BpfMap.create(spec('array', 4, 40, 1));
    const fmt = 'pid %d comm %s\n';
    const fmtBytes: Item[] = [];
    const enc = new TextEncoder().encode(`${fmt}\0`);
    const padded = new Uint8Array(Math.ceil(enc.length / 8) * 8);
    padded.set(enc);
    const pv = new DataView(padded.buffer);
    for (let o = 0; o < padded.length; o += 8) fmtBytes.push(...asm.ld64('r1', pv.getBigUint64(o, true)), asm.stx('dw', 'r10', -64 + o, 'r1'));
    const p = loadRaw([
      asm.st('w', 'r10', -4, 0), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4), ...asm.ldMapFd('r1', out.fd), asm.call(1),
      asm.jmp('ne', 'r0', 0, 'go'), asm.exit(), label('go'), asm.mov64('r6', 'r0'),
      asm.call(14), asm.stx('dw', 'r6', 0, 'r0'), asm.call(15), asm.stx('dw', 'r6', 8, 'r0'), asm.call(5), asm.stx('dw', 'r6', 16, 'r0'),
      asm.mov64('r1', 'r6'), asm.alu64('add', 'r1', 24), asm.mov64('r2', 16), asm.call(16),
      ...fmtBytes,
      asm.mov64('r1', 'r10'), asm.alu64('add', 'r1', -64), asm.mov64('r2', enc.length), asm.mov64('r3', 1234), asm.mov64('r4', 'r6'), asm.alu64('add', 'r4', 24),
      asm.call(6), asm.exit(),
    ]);
    const r = p.testRun({ data: new Uint8Array(14) });
    p.close();
    const v = new DataView(out.lookupBytes(0)!.buffer);
    assert.equal(v.getBigUint64(0, true), (1200n << 32n) | 1234n);
    assert.equal(v.getBigUint64(8, true), (100n << 32n) | 1000n);
    assert.equal(v.getBigUint64(16, true), 5_000_000_000n);
    assert.equal(new TextDecoder().decode(new Uint8Array(v.buffer, 24, 15)), 'node-under-test');
    assert.equal(kernel.trace.at(-1), 'pid 1234 comm node-under-test\n');
    assert.equal(r.retval, 'pid 1234 comm node-under-test\n'.length);
  });

  it('bpf_get_current_task and bpf_probe_read_kernel read the probe memory image; bad addresses give -EFAULT', () => {
    memory.u32(0xffff888000100000n + 0x10n, 0xfeedbeef);
    const read = (offset: bigint) => {
      const p = loadRaw([
        asm.call(35), asm.mov64('r3', 'r0'), ...asm.ld64('r1', offset), asm.alu64('add', 'r3', 'r1'),
        asm.st('dw', 'r10', -8, 0x77), asm.mov64('r1', 'r10'), asm.alu64('add', 'r1', -8), asm.mov64('r2', 4), asm.call(113),
        asm.alu64('lsh', 'r0', 32), asm.ldx('w', 'r1', 'r10', -8), asm.alu64('or', 'r0', 'r1'), asm.alu64('rsh', 'r0', 0), asm.exit(),
      ]);
      try {
        return p.testRun({ data: new Uint8Array(14) }).retval;
      } finally {
        p.close();
      }
    };
    assert.equal(read(0x10n), 0xfeedbeef);
    assert.equal(read(0x100000n), 0, 'the destination is zeroed on a fault');
  });
});
