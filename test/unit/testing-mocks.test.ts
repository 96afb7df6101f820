/**
 * MockMap and MockProgram: in-memory stand-ins with BpfMap's and Program's methods, for code that
 * drives BPF objects but runs no bytecode. Code typed against MapLike / ProgramLike takes the real
 * objects (here, under the emulated kernel) and the mocks alike.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MockMap, MockProgram, useEmulatedKernel, type MapLike, type ProgramLike } from '../../src/testing/index.js';
import { BpfMap } from '../../src/objects/map.js';
import { BpfSyscallError, ClosedError } from '../../src/errors.js';

useEmulatedKernel();

/** Code under test: the seeds' table, sorted by count. */
function topTalkers(m: MapLike<number, number>, n: number): string[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([ip, count]) => `${ip & 0xff}.${(ip >>> 8) & 0xff}.${(ip >>> 16) & 0xff}.${ip >>> 24} => ${count}`);
}

describe('MockMap', () => {
  it('stands in for BpfMap in code typed against MapLike', () => {
    const mock = new MockMap<number, number>({ type: 'lru_hash', entries: [[0x0a01a8c0, 3], [0x0100000a, 7]] });
    assert.deepEqual(topTalkers(mock, 1), ['10.0.0.1 => 7']);
    const real = BpfMap.create({
      name: 'counts', type: 'hash', keySize: 4, valueSize: 4, maxEntries: 8, flags: 0, numaNode: 0, mapExtra: 0n, pinning: 'none',
      btf: undefined, keyTypeId: 0, valueTypeId: 0, innerMap: undefined, contents: [], data: undefined, freeze: false, section: '',
    }) as BpfMap<number, number>;
    real.update(0x0a01a8c0, 3);
    assert.deepEqual(topTalkers(real, 5), ['192.168.1.10 => 3']);
    real.close();
  });

  it('keeps the kernel\'s errors: EEXIST, ENOENT, E2BIG, EPERM after freeze, EINVAL deleting from an array', () => {
    const m = new MockMap<number, string>({ maxEntries: 1 });
    m.update(1, 'a');
    assert.throws(() => m.update(1, 'b', 'noexist'), (e: unknown) => e instanceof BpfSyscallError && e.code === 'EEXIST');
    assert.throws(() => m.update(2, 'b', 'exist'), { code: 'ENOENT' });
    assert.throws(() => m.update(2, 'b'), { code: 'E2BIG' });
    m.freeze();
    assert.throws(() => m.update(1, 'c'), { code: 'EPERM' });
    const a = new MockMap<number, number>({ type: 'array', maxEntries: 2 });
    assert.throws(() => a.delete(0), { code: 'EINVAL' });
    assert.throws(() => a.update(2, 1), { code: 'E2BIG' });
  });

  it('compares keys by value (bigints, byte arrays, structs) and records every call', () => {
    const m = new MockMap<{ saddr: number; port: number }, bigint>();
    m.update({ saddr: 1, port: 80 }, 5n);
    assert.equal(m.lookup({ port: 80, saddr: 1 }), 5n);
    const bytes = new MockMap<Uint8Array, number>();
    bytes.update(Uint8Array.of(1, 2), 9);
    assert.equal(bytes.lookup(Uint8Array.of(1, 2)), 9);
    assert.deepEqual(m.calls.map((c) => c.op), ['update', 'lookup']);
  });

  it('queues and stacks; LRU evicts the oldest', () => {
    const q = new MockMap<never, number>({ type: 'queue', maxEntries: 2 });
    q.push(1);
    q.push(2);
    assert.throws(() => q.push(3), { code: 'E2BIG' });
    q.push(3, 'exist');
    assert.deepEqual([q.pop(), q.pop(), q.pop()], [2, 3, undefined]);
    const lru = new MockMap<number, number>({ type: 'lru_hash', maxEntries: 2 });
    lru.update(1, 1);
    lru.update(2, 2);
    lru.update(3, 3);
    assert.deepEqual([...lru.keys()], [2, 3]);
  });

  it('is closed like a BpfMap', () => {
    const m = new MockMap();
    m.close();
    assert.throws(() => m.lookup(1), (e: unknown) => e instanceof ClosedError);
    assert.equal(m.closed, true);
  });
});

describe('MockProgram', () => {
  /** Code under test: probe a program with a packet and report its verdict. */
  function verdict(p: ProgramLike, data: Uint8Array): string {
    return ['aborted', 'drop', 'pass', 'tx', 'redirect'][p.testRun({ data }).retval] ?? 'unknown';
  }

  it('answers testRun as scripted, and keeps the runs', () => {
    const p = new MockProgram({ testRun: (o) => (o.data && o.data[0] === 0xff ? 1 : 2) });
    assert.equal(verdict(p, Uint8Array.of(0xff)), 'drop');
    assert.equal(verdict(p, Uint8Array.of(0)), 'pass');
    p.returns(4).returns({ retval: 3, data: Uint8Array.of(9) });
    assert.equal(verdict(p, Uint8Array.of(0)), 'redirect');
    assert.deepEqual(p.testRun({ data: Uint8Array.of(1) }).data, Uint8Array.of(9));
    assert.equal(p.runs.length, 4);
    assert.equal(p.info().runCount, 4n);
  });

  it('echoes the packet by default and closes like a Program', () => {
    const p = new MockProgram({ name: 'xdp_prog_func' });
    assert.deepEqual(p.testRun({ data: Uint8Array.of(1, 2) }), { retval: 0, duration: 0, data: Uint8Array.of(1, 2), ctx: undefined });
    p.close();
    assert.throws(() => p.testRun(), (e: unknown) => e instanceof ClosedError);
  });
});
