/**
 * Maps against the real kernel, using test/bpf/maps.bpf.o. Each test loads its own collection and
 * checks what the kernel defines: update flags and their errnos, array semantics, per-CPU slots,
 * LRU eviction, longest-prefix match, queue/stack order, BTF-typed values as the C program writes
 * and reads them, batch commands, freeze, pinning, ids, and the statically initialised map-in-map
 * and prog array. The program `xdp_maps` is driven by opcodes; test/bpf/README.md lists them with
 * their exact return values.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  BpfMap, BpfSyscallError, ClosedError, Collection, CollectionSpec, InvalidArgumentError, cString, possibleCpus,
} from '../../src/index.js';
import { bpffsDir, kernelTest, obj } from '../helpers/index.js';
import { allowedCpus, haveTaskset, onCpuSync } from '../helpers/cpus.js';

// ------------------------------------------------------------------------------------ helpers --

/** Opcodes of xdp_maps (enum maps_op in maps.bpf.c). */
const OP = {
  HASH_INC: 0x01,
  ARRAY_ADD: 0x02,
  PERCPU_ARRAY_ADD: 0x03,
  PERCPU_HASH_ADD: 0x04,
  LRU_SET: 0x05,
  LRU_PERCPU_SET: 0x06,
  LPM_LOOKUP: 0x07,
  QUEUE_PUSH: 0x08,
  QUEUE_POP: 0x09,
  STACK_PUSH: 0x0a,
  STACK_POP: 0x0b,
  TAIL_CALL_STATIC: 0x0e,
  TAIL_CALL_DYNAMIC: 0x0f,
  ARRAY_OF_MAPS: 0x10,
  HASH_OF_MAPS: 0x11,
  RICH_READ: 0x12,
  RICH_WRITE: 0x13,
} as const;

/** Negative errnos as test_run reports them (a u32 retval). */
const RET_ENOENT = -2 >>> 0;
const RET_E2BIG = -7 >>> 0;
const RET_EINVAL = -22 >>> 0;
const TAIL_TARGET_RET = 0xca11;

/** BPF_EXIST as the push helper's flags byte. */
const BPF_EXIST = 2;

/** The 14-byte command packet xdp_maps reads: op, flags, reserved, key, val (host order). */
function command(op: number, opts: { key?: number; val?: number; flags?: number } = {}): Uint8Array {
  const packet = new Uint8Array(14);
  const view = new DataView(packet.buffer);
  view.setUint8(0, op);
  view.setUint8(1, opts.flags ?? 0);
  view.setUint32(4, opts.key ?? 0, true);
  view.setUint32(8, opts.val ?? 0, true);
  return packet;
}

function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function u64le(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}

/** An IPv4 address in network order, read as the host-order u32 the packet's `val` field holds. */
function ipv4Val(addr: string): number {
  return new DataView(new Uint8Array(addr.split('.').map(Number)).buffer).getUint32(0, true);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** A validator for assert.throws: a BpfSyscallError with this errno name. */
function syscallError(code: string): (e: unknown) => true {
  return (e) => {
    assert.ok(e instanceof BpfSyscallError, `expected a BpfSyscallError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

function invalidArgument(e: unknown): true {
  assert.ok(e instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${String(e)}`);
  assert.equal(e.code, 'ERR_BPFKIT_INVALID_ARG');
  return true;
}

function closedError(e: unknown): true {
  assert.ok(e instanceof ClosedError, `expected a ClosedError, got ${String(e)}`);
  assert.equal(e.code, 'ERR_BPFKIT_CLOSED');
  return true;
}

function byKey<K extends number, V>(entries: Iterable<readonly [K, V]>): [K, V][] {
  return [...entries].map(([k, v]): [K, V] => [k, v]).sort((a, b) => a[0] - b[0]);
}

/** A loaded maps.bpf.o with typed access to its maps and a way to run xdp_maps. */
class MapsObject {
  constructor(readonly coll: Collection) {}

  map<K = unknown, V = unknown>(name: string): BpfMap<K, V> {
    const m = this.coll.maps.get(name);
    assert.ok(m, `map ${name} was not loaded`);
    return m as BpfMap<K, V>;
  }

  /** Runs xdp_maps once with the given opcode; returns its retval. */
  run(op: number, opts: { key?: number; val?: number; flags?: number } = {}): number {
    const prog = this.coll.programs.get('xdp_maps');
    assert.ok(prog, 'program xdp_maps was not loaded');
    return prog.testRun({ data: command(op, opts) }).retval;
  }
}

/** Loads maps.bpf.o, hands it to `fn`, and closes it whatever happens. */
async function withMaps(fn: (o: MapsObject, spec: CollectionSpec) => void | Promise<void>): Promise<void> {
  const spec = await CollectionSpec.fromFile(obj('maps'));
  const coll = await Collection.load(spec);
  try {
    await fn(new MapsObject(coll), spec);
  } finally {
    coll.close();
  }
}

/** Up to two online CPUs this thread may run on, to pin test runs to (see helpers/cpus.ts). */
function testCpus(): number[] {
  return allowedCpus().slice(0, 2);
}

function skipWithoutTaskset(t: TestContext): boolean {
  if (haveTaskset) return false;
  t.skip('taskset(1) is not installed: cannot pin the test run to a CPU');
  return true;
}

/** A per-CPU value with `value` in the slot of `cpu` and 0 everywhere else. */
function perCpu(cpu: number, value: bigint): bigint[] {
  return Array.from({ length: possibleCpus() }, (_, i) => (i === cpu ? value : 0n));
}

function sum(values: readonly bigint[]): bigint {
  return values.reduce((a, b) => a + b, 0n);
}

// ----------------------------------------------------------------------------------------- hash --

test('hash: noexist on an existing key fails with EEXIST and keeps the old value', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    m.update(1, 10n, 'noexist');
    assert.throws(() => m.update(1, 20n, 'noexist'), syscallError('EEXIST'));
    assert.equal(m.lookup(1), 10n);
  });
});

test('hash: exist on a missing key fails with ENOENT and inserts nothing', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    assert.throws(() => m.update(2, 20n, 'exist'), syscallError('ENOENT'));
    assert.equal(m.lookup(2), undefined);
    m.update(2, 1n);
    m.update(2, 21n, 'exist');
    assert.equal(m.lookup(2), 21n);
  });
});

test('hash: inserting into a full map fails with E2BIG, replacing an entry still works', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    assert.equal(m.maxEntries, 64);
    for (let k = 0; k < 64; k++) m.update(k, BigInt(k));
    assert.throws(() => m.update(64, 64n), syscallError('E2BIG'));
    assert.equal(m.lookup(64), undefined);
    m.update(63, 6300n);
    assert.equal(m.lookup(63), 6300n);
    assert.equal([...m.keys()].length, 64);
  });
});

test('hash: delete returns true for a present key and false for a missing one', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    m.update(7, 70n);
    assert.equal(m.delete(7), true);
    assert.equal(m.lookup(7), undefined);
    assert.equal(m.delete(7), false);
    assert.equal(m.delete(12345), false);
  });
});

test('hash: keys, values, entries and the iterator see exactly what was inserted', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    const inserted: [number, bigint][] = [];
    for (let i = 0; i < 20; i++) inserted.push([i * 1000 + 3, BigInt(i) * 0x100000001n]);
    for (const [k, v] of inserted) m.update(k, v);
    m.delete(3); // the first one goes again
    const expected = inserted.slice(1);

    assert.deepEqual(byKey(m.entries()), expected);
    assert.deepEqual(byKey(m), expected);
    assert.deepEqual([...m.keys()].sort((a, b) => a - b), expected.map(([k]) => k));
    assert.deepEqual([...m.values()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), expected.map(([, v]) => v));
  });
});

test('hash: the program increments an entry that user space then reads', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    assert.equal(o.run(OP.HASH_INC, { key: 5 }), 1);
    assert.equal(o.run(OP.HASH_INC, { key: 5 }), 2);
    assert.equal(m.lookup(5), 2n);
    m.update(5, 41n);
    assert.equal(o.run(OP.HASH_INC, { key: 5 }), 42);
  });
});

test('hash: lookupAndDelete returns the value and removes the entry', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    m.update(3, 33n);
    m.update(4, 44n);
    assert.equal(m.lookupAndDelete(3), 33n);
    assert.equal(m.lookup(3), undefined);
    assert.equal(m.lookupAndDelete(3), undefined);
    assert.deepEqual(byKey(m), [[4, 44n]]);
  });
});

// ---------------------------------------------------------------------------------------- array --

test('array: every index exists and starts at zero, indices past the end do not', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('array_map');
    assert.deepEqual([...m.keys()], [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual([...m], [0, 1, 2, 3, 4, 5, 6, 7].map((k) => [k, 0n]));
    assert.equal(m.lookup(8), undefined);
    assert.throws(() => m.update(8, 1n), syscallError('E2BIG'));
  });
});

test('array: elements cannot be deleted (EINVAL) and noexist always fails (EEXIST)', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('array_map');
    m.update(2, 5n);
    assert.throws(() => m.delete(2), syscallError('EINVAL'));
    assert.throws(() => m.update(2, 6n, 'noexist'), syscallError('EEXIST'));
    assert.equal(m.lookup(2), 5n);
    m.update(2, 7n, 'exist');
    assert.equal(m.lookup(2), 7n);
  });
});

test('array: the program adds to an element user space wrote', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('array_map');
    assert.equal(o.run(OP.ARRAY_ADD, { key: 3, val: 10 }), 10);
    assert.equal(m.lookup(3), 10n);
    m.update(3, 100n);
    assert.equal(o.run(OP.ARRAY_ADD, { key: 3, val: 5 }), 105);
    assert.equal(m.lookup(3), 105n);
    assert.equal(o.run(OP.ARRAY_ADD, { key: 9, val: 1 }), RET_ENOENT);
  });
});

// -------------------------------------------------------------------------------------- per-CPU --

test('per-CPU array: one value per possible CPU, written and read as arrays', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint[]>('percpu_array');
    assert.equal(m.isPerCpu, true);
    const zero = m.lookup(0);
    assert.deepEqual(zero, perCpu(0, 0n));
    const distinct = Array.from({ length: possibleCpus() }, (_, cpu) => BigInt(cpu + 1) * 1000n);
    m.update(1, distinct);
    assert.deepEqual(m.lookup(1), distinct);
    assert.deepEqual(m.lookup(0), zero);
  });
});

test('per-CPU array: a test run adds to the slot of the CPU it ran on', kernelTest, async (t) => {
  if (skipWithoutTaskset(t)) return;
  await withMaps((o) => {
    const m = o.map<number, bigint[]>('percpu_array');
    const start = Array.from({ length: possibleCpus() }, (_, cpu) => BigInt(cpu) * 100n);
    m.update(2, start);
    const expected = [...start];
    for (const cpu of testCpus()) {
      const ret = onCpuSync(cpu, () => o.run(OP.PERCPU_ARRAY_ADD, { key: 2, val: 7 }));
      expected[cpu]! += 7n;
      assert.equal(ret, Number(expected[cpu]), `retval on CPU ${cpu}`);
      assert.deepEqual(m.lookup(2), expected, `after the run on CPU ${cpu}`);
    }
  });
});

test('per-CPU array: the slots add up to every increment, whichever CPUs ran them', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint[]>('percpu_array');
    for (let i = 1; i <= 10; i++) {
      const ret = o.run(OP.PERCPU_ARRAY_ADD, { key: 3, val: 3 });
      const now = m.lookup(3)!;
      assert.equal(now.length, possibleCpus());
      assert.equal(sum(now), BigInt(3 * i));
      assert.ok(now.includes(BigInt(ret)), `retval ${ret} is the value of some CPU's slot: ${now.join(', ')}`);
    }
    assert.equal(o.run(OP.PERCPU_ARRAY_ADD, { key: 4, val: 1 }), RET_ENOENT);
  });
});

test('per-CPU hash: user space writes all slots, the program inserts into its own', kernelTest, async (t) => {
  if (skipWithoutTaskset(t)) return;
  await withMaps((o) => {
    const m = o.map<number, bigint[]>('percpu_hash');
    const mine = Array.from({ length: possibleCpus() }, (_, cpu) => BigInt(cpu) + 5n);
    m.update(1, mine);
    assert.deepEqual(m.lookup(1), mine);

    const [first] = testCpus();
    assert.equal(onCpuSync(first!, () => o.run(OP.PERCPU_HASH_ADD, { key: 2, val: 5 })), 5);
    assert.deepEqual(m.lookup(2), perCpu(first!, 5n));
    assert.equal(onCpuSync(first!, () => o.run(OP.PERCPU_HASH_ADD, { key: 2, val: 5 })), 10);
    assert.deepEqual(m.lookup(2), perCpu(first!, 10n));
    assert.deepEqual(byKey(m), [[1, mine], [2, perCpu(first!, 10n)]]);
  });
});

test('LRU per-CPU hash: a program update sets only the running CPU, the others read 0', kernelTest, async (t) => {
  if (skipWithoutTaskset(t)) return;
  await withMaps((o) => {
    const m = o.map<number, bigint[]>('lru_percpu_hash');
    const cpu = testCpus().at(-1)!;
    assert.equal(onCpuSync(cpu, () => o.run(OP.LRU_PERCPU_SET, { key: 1, val: 5 })), 0);
    assert.deepEqual(m.lookup(1), perCpu(cpu, 5n));
  });
});

// ------------------------------------------------------------------------------------------ LRU --

test('LRU hash: inserting past max_entries evicts, keeping at most 4 and the newest key', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('lru_hash');
    assert.equal(m.maxEntries, 4);
    for (let k = 1; k <= 7; k++) assert.equal(o.run(OP.LRU_SET, { key: k, val: k * 11 }), 0, `LRU_SET ${k}`);
    const entries = byKey(m);
    assert.ok(entries.length >= 1 && entries.length <= 4, `${entries.length} entries: ${JSON.stringify(entries.map(([k]) => k))}`);
    assert.equal(m.lookup(7), 77n);
    for (const [k, v] of entries) assert.equal(v, BigInt(k * 11), `value of key ${k}`);
  });
});

test('LRU hash: updates from user space evict as well', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('lru_hash');
    for (let k = 100; k < 110; k++) m.update(k, BigInt(k));
    const keys = [...m.keys()];
    assert.ok(keys.length >= 1 && keys.length <= 4, `${keys.length} keys: ${keys.join(', ')}`);
    assert.equal(m.lookup(109), 109n);
  });
});

// ------------------------------------------------------------------------------------- LPM trie --

/** LPM keys go in as CIDR strings and come out as the BTF struct ipv4_lpm_key. */
type LpmKey = string | { prefixlen: number; addr: Uint8Array };

function cidrOf(k: LpmKey): string {
  return typeof k === 'string' ? k : `${k.addr.join('.')}/${k.prefixlen}`;
}

test('LPM trie: the program finds the longest matching prefix of CIDR keys', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<LpmKey, number>('lpm_trie');
    const lookup = (addr: string): number => o.run(OP.LPM_LOOKUP, { val: ipv4Val(addr) });
    m.update('10.0.0.0/24', 513);
    assert.equal(lookup('10.0.0.5'), 513);
    assert.equal(lookup('10.0.1.5'), RET_ENOENT);
    m.update('10.0.0.0/8', 8);
    assert.equal(lookup('10.0.0.5'), 513);
    assert.equal(lookup('10.0.1.5'), 8);
    assert.equal(lookup('11.0.0.5'), RET_ENOENT);
    m.update('10.0.0.5/32', 32);
    assert.equal(lookup('10.0.0.5'), 32);
    assert.equal(lookup('10.0.0.6'), 513);
    assert.equal(m.delete('10.0.0.0/24'), true);
    assert.equal(lookup('10.0.0.6'), 8);
  });
});

test('LPM trie: lookups by CIDR match the longest stored prefix, keys read back as stored', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<LpmKey, number>('lpm_trie');
    m.update('192.168.0.0/16', 16);
    m.update('192.168.1.0/24', 24);
    assert.equal(m.lookup('192.168.0.0/16'), 16);
    assert.equal(m.lookup('192.168.1.0/24'), 24);
    assert.equal(m.lookup('192.168.1.77/32'), 24);
    assert.equal(m.lookup('192.168.2.1'), 16);
    assert.equal(m.lookup('192.169.0.0/16'), undefined);
    // The kernel's key format: host-order prefix length, then the address in network order.
    assert.equal(m.lookup(new Uint8Array([24, 0, 0, 0, 192, 168, 1, 0])), 24);
    const keys = [...m.keys()].map(cidrOf).sort();
    assert.deepEqual(keys, ['192.168.0.0/16', '192.168.1.0/24']);
    assert.equal(m.delete('192.168.1.0/24'), true);
    assert.equal(m.delete('192.168.1.0/24'), false);
    assert.equal(m.lookup('192.168.1.77'), 16);
  });
});

// -------------------------------------------------------------------------------- queue / stack --

test('queue: values pushed from user space pop in FIFO order, peek does not remove', kernelTest, async () => {
  await withMaps((o) => {
    const q = o.map<never, number>('queue');
    for (const v of [11, 22, 33]) q.push(v);
    assert.equal(q.peek(), 11);
    assert.equal(q.peek(), 11);
    assert.deepEqual([q.pop(), q.pop(), q.pop()], [11, 22, 33]);
  });
});

test('keyless maps: the key-taking operations pass the kernel no key pointer (queue lookup peeks; a 4-byte key is refused)', kernelTest, async () => {
  // A key pointer for a map with key_size 0 gets EINVAL from every element command, whatever it does.
  await withMaps((o) => {
    const q = o.map<never, number>('queue');
    q.push(41);
    q.push(42);
    assert.deepEqual([...q.lookupBytes(new Uint8Array(0))!], [41, 0, 0, 0]);
    assert.equal(q.peek(), 41, 'lookup did not remove');
    assert.equal(q.lookupAndDelete(new Uint8Array(0) as never), 41);
    assert.equal(q.pop(), 42);
    assert.throws(() => q.lookupBytes(new Uint8Array(4)), invalidArgument);
  });
});

test('queue: popping or peeking an empty queue gives undefined', kernelTest, async () => {
  await withMaps((o) => {
    const q = o.map<never, number>('queue');
    assert.equal(q.pop(), undefined);
    assert.equal(q.peek(), undefined);
    q.push(1);
    assert.equal(q.pop(), 1);
    assert.equal(q.pop(), undefined);
  });
});

test('queue: pushing to a full queue fails with E2BIG; with exist it drops the oldest', kernelTest, async () => {
  await withMaps((o) => {
    const q = o.map<never, number>('queue');
    for (let v = 1; v <= 8; v++) q.push(v);
    assert.throws(() => q.push(9), syscallError('E2BIG'));
    q.push(10, 'exist');
    const popped: number[] = [];
    for (let v = q.pop(); v !== undefined; v = q.pop()) popped.push(v);
    assert.deepEqual(popped, [2, 3, 4, 5, 6, 7, 8, 10]);
  });
});

test('queue: the program pushes, user space pops, and the other way round', kernelTest, async () => {
  await withMaps((o) => {
    const q = o.map<never, number>('queue');
    for (let v = 1; v <= 8; v++) assert.equal(o.run(OP.QUEUE_PUSH, { key: v * 10 }), 0);
    assert.equal(o.run(OP.QUEUE_PUSH, { key: 90 }), RET_E2BIG);
    const popped: number[] = [];
    for (let v = q.pop(); v !== undefined; v = q.pop()) popped.push(v);
    assert.deepEqual(popped, [10, 20, 30, 40, 50, 60, 70, 80]);
    q.push(5);
    q.push(6);
    assert.equal(o.run(OP.QUEUE_POP), 5);
    assert.equal(o.run(OP.QUEUE_POP), 6);
    assert.equal(o.run(OP.QUEUE_POP), RET_ENOENT);
  });
});

test('stack: values pop in LIFO order, from user space and from the program', kernelTest, async () => {
  await withMaps((o) => {
    const s = o.map<never, number>('stack');
    for (const v of [1, 2, 3]) s.push(v);
    assert.equal(s.peek(), 3);
    assert.deepEqual([s.pop(), s.pop(), s.pop()], [3, 2, 1]);
    assert.equal(s.pop(), undefined);
    assert.equal(s.peek(), undefined);

    for (const v of [7, 8, 9]) assert.equal(o.run(OP.STACK_PUSH, { key: v }), 0);
    assert.equal(s.pop(), 9);
    s.push(100);
    assert.equal(o.run(OP.STACK_POP), 100);
    assert.equal(o.run(OP.STACK_POP), 8);
    assert.equal(s.pop(), 7);
    assert.equal(o.run(OP.STACK_POP), RET_ENOENT);
  });
});

test('stack: a full stack refuses a push (E2BIG); with exist it drops the bottom element', kernelTest, async () => {
  await withMaps((o) => {
    const s = o.map<never, number>('stack');
    for (let v = 1; v <= 8; v++) s.push(v);
    assert.throws(() => s.push(9), syscallError('E2BIG'));
    assert.equal(o.run(OP.STACK_PUSH, { key: 9 }), RET_E2BIG);
    s.push(10, 'exist');
    const popped: number[] = [];
    for (let v = s.pop(); v !== undefined; v = s.pop()) popped.push(v);
    assert.deepEqual(popped, [10, 8, 7, 6, 5, 4, 3, 2]);
    assert.equal(o.run(OP.STACK_PUSH, { key: 1, flags: BPF_EXIST }), 0);
    assert.equal(s.pop(), 1);
  });
});

// -------------------------------------------------------------------------------- struct values --

interface RichValue {
  origin: { x: number; y: number };
  u: { word: number; bytes: Uint8Array };
  samples: number[];
  name: Uint8Array;
  color: number;
  enabled: number;
  mode: number;
  level: number;
  total: bigint;
  delta: number;
}

/** The bytes RICH_WRITE stores with val 0xfffffff0 (test/bpf/README.md). */
const RICH_WRITE_BYTES =
  'ffffffff02000000010203040a0014001e0028006270666b6974000000000000' +
  '00000000020000009b00000000000000efcdab8967452301f0ffffff00000000';

test('rich_map: a struct written by the program decodes field by field', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, RichValue>('rich_map');
    assert.equal(o.run(OP.RICH_WRITE, { key: 1, val: 0xfffffff0 }), 0);
    assert.equal(hex(m.lookupBytes(1)!), RICH_WRITE_BYTES);

    const v = m.lookup(1)!;
    assert.deepEqual(v.origin, { x: -1, y: 2 });
    assert.equal(v.u.word, 0x04030201);
    assert.deepEqual(v.u.bytes, new Uint8Array([1, 2, 3, 4]));
    assert.deepEqual(v.samples, [10, 20, 30, 40]);
    assert.ok(v.name instanceof Uint8Array);
    assert.equal(v.name.length, 16);
    assert.equal(cString(v.name), 'bpfkit');
    assert.deepEqual(v.name.subarray(6), new Uint8Array(10));
    assert.equal(v.color, 2); // RICH_BLUE
    assert.equal(v.enabled, 1);
    assert.equal(v.mode, 5);
    assert.equal(v.level, 9);
    assert.equal(v.total, 0x0123456789abcdefn);
    assert.equal(v.delta, -16);
    assert.deepEqual(Object.keys(v).sort(), ['color', 'delta', 'enabled', 'level', 'mode', 'name', 'origin', 'samples', 'total', 'u']);
  });
});

test('rich_map: a struct written from TypeScript reads back field by field in the program', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, unknown>('rich_map');
    m.update(2, {
      origin: { x: -5, y: 7 },
      u: { word: 0x0d0c0b0a },
      samples: [1, 2, 3, 65535],
      name: 'probe',
      color: 'RICH_GREEN',
      enabled: 0,
      mode: 7,
      level: 15,
      total: 0xfedcba9876543210n,
      delta: -123,
    });
    const field = (n: number): number => o.run(OP.RICH_READ, { key: 2, flags: n });
    assert.equal(field(0), -5 >>> 0, 'origin.x');
    assert.equal(field(1), 7, 'origin.y');
    assert.equal(field(2), 0x0d0c0b0a, 'u.word');
    assert.equal(field(3), 0x0a, 'u.bytes[0]');
    assert.equal(field(4), 1, 'samples[0]');
    assert.equal(field(5), 65535, 'samples[3]');
    assert.equal(field(6), 'p'.charCodeAt(0), 'name[0]');
    assert.equal(field(7), 1, 'color');
    assert.equal(field(8), 0, 'enabled');
    assert.equal(field(9), 7, 'mode');
    assert.equal(field(10), 15, 'level');
    assert.equal(field(11), 0x76543210, 'total, low half');
    assert.equal(field(12), 0xfedcba98, 'total, high half');
    assert.equal(field(13), -123 >>> 0, 'delta');
    assert.equal(field(14), RET_EINVAL);
    assert.equal(o.run(OP.RICH_READ, { key: 3, flags: 0 }), RET_ENOENT);

    const bytes = m.lookupBytes(2)!;
    assert.equal(bytes[40], (15 << 4) | (7 << 1) | 0, 'the three bitfields share byte 40');
    assert.equal(hex(bytes.subarray(20, 36)), hex(new TextEncoder().encode('probe')) + '00'.repeat(11), 'name is NUL-padded');
  });
});

test('rich_map: a value the program wrote survives a round trip through TypeScript', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, RichValue>('rich_map');
    assert.equal(o.run(OP.RICH_WRITE, { key: 4, val: 77 }), 0);
    const v = m.lookup(4)!;
    m.update(5, v);
    assert.equal(hex(m.lookupBytes(5)!), hex(m.lookupBytes(4)!));
    assert.equal(o.run(OP.RICH_READ, { key: 5, flags: 10 }), 9);
    assert.equal(o.run(OP.RICH_READ, { key: 5, flags: 13 }), 77);
  });
});

// ---------------------------------------------------------------------------------------- batch --

test('batch: updateBatch, lookupBatch, deleteBatch and lookupAndDeleteBatch agree with iteration', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    const entries: [number, bigint][] = Array.from({ length: 40 }, (_, i) => [i * 7 + 1, BigInt(i) << 33n]);
    assert.equal(m.updateBatch(entries), 40);
    assert.deepEqual(byKey(m), entries);
    assert.deepEqual(byKey(m.lookupBatch()), entries);
    assert.deepEqual(byKey(m.lookupBatch({ batchSize: 3 })), entries, 'several batches of 3');

    const gone = entries.slice(0, 10).map(([k]) => k);
    assert.equal(m.deleteBatch(gone), 10);
    const left = entries.slice(10);
    assert.deepEqual(byKey(m), left);
    assert.deepEqual(byKey(m.lookupBatch({ batchSize: 4 })), left);

    assert.deepEqual(byKey(m.lookupAndDeleteBatch({ batchSize: 5 })), left);
    assert.deepEqual([...m.keys()], []);
    assert.deepEqual(m.lookupBatch(), []);
  });
});

test('batch: deleteBatch counts only the keys that existed and deletes all of them', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    m.updateBatch([[1, 1n], [2, 2n], [3, 3n], [4, 4n]]);
    assert.equal(m.deleteBatch([1, 99, 2, 98, 3]), 3);
    assert.deepEqual(byKey(m), [[4, 4n]]);
  });
});

test('batch: updateBatch with noexist fails with EEXIST on a present key', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    m.update(2, 20n);
    assert.throws(() => m.updateBatch([[1, 1n], [2, 2n]], 'noexist'), syscallError('EEXIST'));
    assert.equal(m.lookup(2), 20n);
  });
});

test('batch: per-CPU hash entries go in and come out as one array per key', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint[]>('percpu_hash');
    const n = possibleCpus();
    const entries: [number, bigint[]][] = [1, 2, 3, 4, 5].map((k) => [k, Array.from({ length: n }, (_, cpu) => BigInt(k * 100 + cpu))]);
    assert.equal(m.updateBatch(entries), 5);
    assert.deepEqual(byKey(m), entries);
    assert.deepEqual(byKey(m.lookupBatch({ batchSize: 2 })), entries);
    assert.deepEqual(byKey(m.lookupAndDeleteBatch()), entries);
    assert.deepEqual([...m.keys()], []);
  });
});

test('batch: an array map reads every index in batches', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('array_map');
    assert.equal(m.updateBatch([[1, 11n], [6, 66n]]), 2);
    const expected = [0, 1, 2, 3, 4, 5, 6, 7].map((k): [number, bigint] => [k, k === 1 ? 11n : k === 6 ? 66n : 0n]);
    assert.deepEqual(m.lookupBatch({ batchSize: 3 }), expected);
    assert.deepEqual([...m], expected);
  });
});

/** A hash map u32 -> u64 of its own (no BTF: keys decode as numbers, values as bigints). */
function hashMap(maxEntries: number): BpfMap<number, bigint> {
  return BpfMap.create({
    name: 'batch_hash', type: 'hash', keySize: 4, valueSize: 8, maxEntries, flags: 0, numaNode: 0, mapExtra: 0n, pinning: 'none',
    btf: undefined, keyTypeId: 0, valueTypeId: 0, innerMap: undefined, contents: [], data: undefined, freeze: false, section: '',
  }) as BpfMap<number, bigint>;
}

test('batch: a read grows its buffers past 64 Ki entries, and a full map is read whole whatever the batch size', kernelTest, async () => {
  // 70,000 entries outgrow the first buffers (64 Ki entries), so the read copies into larger ones.
  const big = hashMap(80_000);
  try {
    const entries = Array.from({ length: 70_000 }, (_, i): [number, bigint] => [i * 3 + 1, BigInt(i) << 20n]);
    for (let i = 0; i < entries.length; i += 8192) big.updateBatch(entries.slice(i, i + 8192));
    assert.deepEqual(byKey(big.lookupBatch({ batchSize: 4096 })), entries);
    const raw = big.lookupBatchRaw({ batchSize: 4096 });
    if (raw) {
      assert.equal(raw.count, entries.length);
      assert.equal(raw.keys.length, entries.length * 4);
      assert.equal(raw.values.length, entries.length * 8);
    }
  } finally {
    big.close();
  }
  // A map holding max_entries, read in batches down to one entry (a bucket of more entries than a
  // batch is ENOSPC: the batch doubles), and read no further than max_entries.
  const full = hashMap(100);
  try {
    const entries = Array.from({ length: 100 }, (_, i): [number, bigint] => [i, BigInt(i) * 7n]);
    full.updateBatch(entries);
    for (const batchSize of [1, 3, 32, 100, 256]) assert.deepEqual(byKey(full.lookupBatch({ batchSize })), entries, `batches of ${batchSize}`);
    assert.deepEqual(byKey(full.lookupAndDeleteBatch({ batchSize: 7 })), entries);
    assert.deepEqual([...full.keys()], []);
  } finally {
    full.close();
  }
});

test('batch: the LPM trie, which has no batch commands, falls back to iteration', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<LpmKey, number>('lpm_trie');
    assert.equal(m.updateBatch([['10.0.0.0/8', 8], ['10.1.0.0/16', 16], ['10.1.2.0/24', 24]]), 3);
    const show = (list: [LpmKey, number][]): string[] => list.map(([k, v]) => `${cidrOf(k)}=${v}`).sort();
    const expected = ['10.0.0.0/8=8', '10.1.0.0/16=16', '10.1.2.0/24=24'];
    assert.deepEqual(show([...m]), expected);
    assert.deepEqual(show(m.lookupBatch()), expected);
    assert.equal(m.deleteBatch(['10.1.0.0/16']), 1);
    assert.deepEqual(show(m.lookupAndDeleteBatch()), ['10.0.0.0/8=8', '10.1.2.0/24=24']);
    assert.deepEqual([...m.keys()], []);
  });
});

// ------------------------------------------------------------------------------ freeze and pins --

test('freeze: user-space updates then fail with EPERM, the program can still write', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('array_map');
    m.update(3, 1n);
    m.freeze();
    assert.throws(() => m.update(3, 2n), syscallError('EPERM'));
    assert.throws(() => m.updateBatch([[4, 2n]]), syscallError('EPERM'));
    assert.equal(m.lookup(3), 1n);
    assert.equal(o.run(OP.ARRAY_ADD, { key: 3, val: 10 }), 11);
    assert.equal(m.lookup(3), 11n);
  });
});

test('pin: fromPinned sees the same map, unpin removes the file', kernelTest, async (t) => {
  const dir = bpffsDir('maps-pin');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    const path = join(dir, 'hash_map');
    m.update(1, 5n);
    m.pin(path);
    assert.equal(m.pinnedPath, path);
    assert.ok(existsSync(path));
    assert.throws(() => m.pin(path), syscallError('EEXIST'));

    const pinned = BpfMap.fromPinned(path) as BpfMap<number, bigint>;
    try {
      assert.equal(pinned.info().id, m.info().id);
      assert.equal(pinned.type, 'hash');
      assert.equal(pinned.lookup(1), 5n);
      pinned.update(2, 6n);
      assert.equal(m.lookup(2), 6n);
    } finally {
      pinned.close();
    }

    m.unpin();
    assert.equal(existsSync(path), false);
    assert.equal(m.pinnedPath, undefined);
    assert.throws(() => BpfMap.fromPinned(path), syscallError('ENOENT'));
    assert.equal(m.lookup(2), 6n, 'the map outlives its pin while an fd is open');
  });
});

test('fromId: opens the same map with its BTF, so struct values decode the same', kernelTest, async () => {
  await withMaps((o) => {
    const rich = o.map<number, RichValue>('rich_map');
    assert.equal(o.run(OP.RICH_WRITE, { key: 6, val: 0xfffffff0 }), 0);
    const byId = BpfMap.fromId(rich.info().id) as BpfMap<number, RichValue>;
    try {
      assert.equal(byId.name, 'rich_map');
      assert.equal(byId.type, 'hash');
      assert.equal(byId.valueSize, 64);
      assert.deepEqual(byId.lookup(6), rich.lookup(6));
      assert.equal(byId.lookup(6)!.delta, -16);
    } finally {
      byId.close();
    }
    assert.equal(rich.lookup(6)!.total, 0x0123456789abcdefn, 'closing the second fd leaves the first usable');
  });
});

test('fromId: an id that does not exist fails with ENOENT', kernelTest, async () => {
  assert.throws(() => BpfMap.fromId(0x7ffffff0), syscallError('ENOENT'));
});

// ------------------------------------------------------------------------------------------ info --

/**
 * Queue and stack have no key, and the kernel refuses BTF for a map without a key type unless the
 * map type checks BTF itself (map_check_btf), which these do not. The loader then creates them
 * without BTF, as libbpf does ("Retrying without BTF").
 */
const KEYLESS_WITHOUT_BTF = new Set(['queue', 'stack']);

test('info: every map reports the type, sizes, flags, name and BTF ids of its spec', kernelTest, async () => {
  await withMaps((o, spec) => {
    const ids = new Set<number>();
    let btfId = 0;
    for (const [name, ms] of spec.maps) {
      const info = o.map(name).info();
      assert.ok(info.id > 0 && !ids.has(info.id), `${name}: a fresh id`);
      ids.add(info.id);
      assert.equal(info.type, ms.type, `${name}: type`);
      assert.equal(info.name, name, `${name}: name`);
      assert.equal(info.keySize, ms.keySize, `${name}: key size`);
      assert.equal(info.valueSize, ms.valueSize, `${name}: value size`);
      const maxEntries = name === 'perf_array' ? possibleCpus() : ms.maxEntries;
      assert.equal(info.maxEntries, maxEntries, `${name}: max_entries`);
      assert.equal(info.flags, ms.flags, `${name}: flags`);
      if (KEYLESS_WITHOUT_BTF.has(name)) {
        assert.equal(ms.valueTypeId !== 0 && ms.keyTypeId === 0, true, `${name}: the spec has a value type and no key`);
        assert.deepEqual([info.btfId, info.btfKeyTypeId, info.btfValueTypeId], [0, 0, 0], `${name}: created without BTF`);
        continue;
      }
      assert.equal(info.btfKeyTypeId, ms.keyTypeId, `${name}: BTF key type`);
      assert.equal(info.btfValueTypeId, ms.valueTypeId, `${name}: BTF value type`);
      if (ms.keyTypeId !== 0 || ms.valueTypeId !== 0) {
        assert.notEqual(info.btfId, 0, `${name}: created with BTF`);
        if (btfId === 0) btfId = info.btfId;
        assert.equal(info.btfId, btfId, `${name}: the object's one BTF`);
      }
    }
    assert.equal(ids.size, 18);
    const lpm = o.map('lpm_trie').info();
    assert.deepEqual([lpm.keySize, lpm.valueSize, lpm.maxEntries, lpm.flags], [8, 4, 16, 1]);
    assert.equal(o.map('perf_array').maxEntries, possibleCpus());
  });
});

// ----------------------------------------------------------------------------- raw bytes, input --

test('raw bytes: Uint8Array keys and values of the right size are accepted', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    m.update(u32le(1), u64le(0x1122334455667788n));
    assert.equal(m.lookup(1), 0x1122334455667788n);
    assert.equal(m.lookup(u32le(1)), 0x1122334455667788n);
    assert.deepEqual(m.lookupBytes(1), u64le(0x1122334455667788n));
    m.update(2, u64le(9n));
    assert.equal(m.lookup(2), 9n);
    assert.equal(m.delete(u32le(2)), true);

    const pc = o.map<number, bigint[]>('percpu_array');
    // One 8-byte slot per possible CPU; CPU n holds n + 1.
    const raw = new Uint8Array(8 * possibleCpus());
    for (let cpu = 0; cpu < possibleCpus(); cpu++) raw.set(u64le(BigInt(cpu + 1)), cpu * 8);
    pc.update(u32le(0), raw);
    assert.deepEqual(pc.lookup(0), Array.from({ length: possibleCpus() }, (_, cpu) => BigInt(cpu + 1)));
  });
});

test('raw bytes: results are the caller\'s own copies, and the caller\'s buffers are not kept (the map reuses its own)', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    const key = u32le(7);
    const value = u64le(70n);
    m.update(key, value);
    key.set(u32le(8));
    value.set(u64le(80n));
    m.update(key, value); // the same arrays, new contents: a second entry
    assert.equal(m.lookup(7), 70n);
    assert.equal(m.lookup(8), 80n);
    const a = m.lookupBytes(7)!;
    const b = m.lookupBytes(8)!;
    assert.notEqual(a.buffer, b.buffer);
    assert.deepEqual([a, b], [u64le(70n), u64le(80n)]);
    a.fill(0xff); // changing a result changes nothing else
    assert.deepEqual(m.lookupBytes(7), u64le(70n));
    assert.deepEqual(b, u64le(80n));

    // The walk's keys stay what they were while the loop body uses the map (its lookups, with
    // the map's own buffers, run between the walk's get_next_key calls).
    for (let k = 100; k < 110; k++) m.update(k, BigInt(k));
    const seen: [number, bigint][] = [];
    for (const [k, v] of m.entries()) {
      seen.push([k, v]);
      assert.equal(m.lookup(k), v);
      assert.equal(m.lookup(k === 7 ? 8 : 7), k === 7 ? 80n : 70n);
      assert.deepEqual(m.lookupBytes(u32le(k)), u64le(v));
    }
    assert.deepEqual(seen.sort(([x], [y]) => x - y), [[7, 70n], [8, 80n], ...Array.from({ length: 10 }, (_, i): [number, bigint] => [100 + i, BigInt(100 + i)])]);
  });
});

test('raw bytes: keys and values of the wrong size are rejected with InvalidArgumentError', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    assert.throws(() => m.update(new Uint8Array(3), 1n), invalidArgument);
    assert.throws(() => m.update(new Uint8Array(5), 1n), invalidArgument);
    assert.throws(() => m.update(1, new Uint8Array(7)), invalidArgument);
    assert.throws(() => m.update(1, new Uint8Array(9)), invalidArgument);
    assert.throws(() => m.lookup(new Uint8Array(2)), invalidArgument);
    assert.throws(() => m.delete(new Uint8Array(8)), invalidArgument);
    assert.deepEqual([...m.keys()], [], 'nothing was written');

    const pc = o.map<number, bigint[]>('percpu_array');
    // One u64 slot per possible CPU, no more and no less (the machine may have only one).
    const cpus = possibleCpus();
    assert.throws(() => pc.update(0, new Uint8Array(8 * cpus - 4)), invalidArgument, 'a raw per-CPU value covers every CPU');
    assert.throws(() => pc.update(0, new Uint8Array(8 * (cpus + 1))), invalidArgument, 'and no more');
    assert.throws(() => pc.update(0, Array.from({ length: cpus - 1 }, () => 1n)), invalidArgument);
    assert.throws(() => pc.update(0, Array.from({ length: cpus + 1 }, () => 1n)), invalidArgument);

    const rich = o.map<number, unknown>('rich_map');
    assert.throws(() => rich.update(1, new Uint8Array(63)), invalidArgument);
    assert.throws(() => rich.update(1, { origin: { x: 2 ** 31 } }), invalidArgument);
    assert.throws(() => rich.update(1, { colour: 1 }), invalidArgument);
  });
});

test('input: values that do not fit the key or value type are rejected', kernelTest, async () => {
  await withMaps((o) => {
    const m = o.map<number, bigint>('hash_map');
    assert.throws(() => m.update(-1, 1n), invalidArgument);
    assert.throws(() => m.update(2 ** 32, 1n), invalidArgument);
    assert.throws(() => m.update(1, -1n), invalidArgument);
    assert.throws(() => m.update(1, 1n << 64n), invalidArgument);
    assert.throws(() => o.map('lpm_trie').update('10.0.0.0/33', 1), invalidArgument);
    assert.deepEqual([...m.keys()], []);
  });
});

// ----------------------------------------------------------------------------------------- close --

test('close: every operation on a closed map or program throws ClosedError', kernelTest, async () => {
  const spec = await CollectionSpec.fromFile(obj('maps'));
  const coll = await Collection.load(spec);
  const m = coll.maps.get('hash_map') as BpfMap<number, bigint>;
  const q = coll.maps.get('queue') as BpfMap<never, number>;
  const prog = coll.programs.get('xdp_maps')!;
  try {
    m.update(1, 1n);
    assert.equal(m.lookup(1), 1n);
  } finally {
    coll.close();
  }

  assert.equal(m.closed, true);
  assert.throws(() => m.fd, closedError);
  assert.throws(() => m.lookup(1), closedError);
  assert.throws(() => m.update(1, 2n), closedError);
  assert.throws(() => m.delete(1), closedError);
  assert.throws(() => [...m.keys()], closedError);
  assert.throws(() => [...m], closedError);
  assert.throws(() => m.lookupBatch(), closedError);
  assert.throws(() => m.updateBatch([[1, 1n]]), closedError);
  assert.throws(() => m.info(), closedError);
  assert.throws(() => m.freeze(), closedError);
  assert.throws(() => m.pin('/sys/fs/bpf/never-created'), closedError);
  assert.throws(() => q.pop(), closedError);
  assert.throws(() => q.push(1), closedError);
  assert.throws(() => prog.testRun({ data: command(OP.HASH_INC, { key: 1 }) }), closedError);
  coll.close(); // closing again is harmless
});

// --------------------------------------------------------------------- map-in-map and prog array --

test('array_of_maps: slot 0 holds inner_map_a from the object, slot 1 is empty', kernelTest, async () => {
  await withMaps((o) => {
    const outer = o.map<number, number>('array_of_maps');
    const inner = o.map<number, number>('inner_map_a');
    assert.equal(outer.lookup(0), inner.info().id);
    assert.notEqual(outer.lookup(0), o.map('inner_map_b').info().id);
    assert.equal(outer.lookup(1), undefined);

    assert.equal(o.run(OP.ARRAY_OF_MAPS, { key: 0 }), 0);
    inner.update(0, 0x39);
    assert.equal(o.run(OP.ARRAY_OF_MAPS, { key: 0 }), 0x39);
    assert.equal(o.run(OP.ARRAY_OF_MAPS, { key: 1 }), RET_ENOENT);
  });
});

test('hash_of_maps: an inner map stored from user space is reached by the program', kernelTest, async () => {
  await withMaps((o) => {
    const outer = o.map<number, number>('hash_of_maps');
    const inner = o.map<number, number>('inner_map_b');
    assert.equal(o.run(OP.HASH_OF_MAPS, { key: 7 }), RET_ENOENT);
    outer.update(7, inner.fd);
    inner.update(0, 0x40);
    assert.equal(outer.lookup(7), inner.info().id, 'user space reads back the inner map id');
    assert.equal(o.run(OP.HASH_OF_MAPS, { key: 7 }), 0x40);
    assert.equal(o.run(OP.HASH_OF_MAPS, { key: 8 }), RET_ENOENT);
    assert.equal(outer.delete(7), true);
    assert.equal(o.run(OP.HASH_OF_MAPS, { key: 7 }), RET_ENOENT);
  });
});

test('jmp_table: the object fills slot 0 with xdp_tail_target, so the tail call returns 0xca11', kernelTest, async () => {
  await withMaps((o) => {
    const table = o.map<number, number>('jmp_table');
    const target = o.coll.programs.get('xdp_tail_target')!;
    assert.equal(table.lookup(0), target.info().id);
    assert.equal(table.lookup(1), undefined);
    assert.equal(o.run(OP.TAIL_CALL_STATIC, { key: 0 }), TAIL_TARGET_RET);
    assert.equal(o.run(OP.TAIL_CALL_STATIC, { key: 1 }), RET_ENOENT);
    assert.equal(o.run(OP.TAIL_CALL_STATIC, { key: 2 }), RET_ENOENT);
  });
});

test('prog_array: a program stored from user space is the target of the dynamic tail call', kernelTest, async () => {
  await withMaps((o) => {
    const progs = o.map<number, number>('prog_array');
    const target = o.coll.programs.get('xdp_tail_target')!;
    assert.equal(o.run(OP.TAIL_CALL_DYNAMIC, { key: 1 }), RET_ENOENT);
    progs.update(1, target.fd);
    assert.equal(progs.lookup(1), target.info().id);
    assert.equal(o.run(OP.TAIL_CALL_DYNAMIC, { key: 1 }), TAIL_TARGET_RET);
    assert.equal(progs.delete(1), true);
    assert.equal(o.run(OP.TAIL_CALL_DYNAMIC, { key: 1 }), RET_ENOENT);
  });
});
