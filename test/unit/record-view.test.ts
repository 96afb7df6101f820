/**
 * Record views (recordViewFor) against hand-written bytes and against codecFor as a second
 * oracle: every member a view reads must equal what the codec decodes from the same bytes, but
 * for `char` arrays (strings here) and nested structs (views here). Then the flyweight's life:
 * moved by batch.records(), detached when the loop ends, is left or the batch is settled.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BtfBuilder } from '../helpers/btf-builder.js';
import { codecFor } from '../../src/btf/codec.js';
import { recordViewFor, type RecordView } from '../../src/btf/record-view.js';
import { Batch } from '../../src/readers/base.js';
import { ClosedError, InvalidArgumentError } from '../../src/errors.js';

const b = new BtfBuilder();
const u8 = b.int('unsigned char', 1, false);
const char = b.int('char', 1, true);
const u16 = b.int('unsigned short', 2, false);
const u32 = b.int('unsigned int', 4, false);
const s32 = b.int('int', 4, true);
const u64 = b.int('unsigned long long', 8, false);
const s64 = b.int('long long', 8, true);
const bool = b.int('_Bool', 1, false, { bool: true });
const f32 = b.float('float', 4);
const f64 = b.float('double', 8);
const __u8 = b.typedef('__u8', u8);
const __u16 = b.typedef('__u16', u16);
const __u32 = b.typedef('__u32', u32);
const __u64 = b.typedef('__u64', u64);
const constChar = b.qual('const', char);

// struct inner { __u8 x; __u16 y; };  x@0 y@2, size 4
const inner = b.struct('struct', 'inner', 4, [['x', __u8, 0], ['y', __u16, 16]]);
// struct event { __u32 pid; struct inner in; __s64 ts; const char comm[16]; __u8 mac[6]; _Bool on;
//                __u32 grid[2][3]; double load; float f; void *p; }
// pid@0 in@4 ts@8 comm@16 mac@32 on@38 grid@40 load@64 f@72 p@80, size 88
const event = b.struct('struct', 'event', 88, [
  ['pid', __u32, 0], ['in', inner, 32], ['ts', s64, 64], ['comm', b.array(constChar, 16), 128],
  ['mac', b.array(__u8, 6), 256], ['on', bool, 304], ['grid', b.array(b.array(__u32, 3), 2), 320],
  ['load', f64, 512], ['f', f32, 576], ['p', b.ptr(0), 640],
]);
// struct ev { __u32 type; union { __u32 pid; __u64 addr; }; struct { __u16 lo; __u16 hi; }; }
const anonUnion = b.struct('union', '', 8, [['pid', __u32, 0], ['addr', __u64, 0]]);
const anonStruct = b.struct('struct', '', 4, [['lo', __u16, 0], ['hi', __u16, 16]]);
const ev = b.struct('struct', 'ev', 24, [['type', __u32, 0], ['', anonUnion, 64], ['', anonStruct, 128]]);
// Bitfields: struct flags { unsigned a:3; int b:5; unsigned c:12; int d:10; }, struct huge { __u64 f:3; __s64 g:60; }
const flags = b.struct('struct', 'flags', 4, [['a', u32, 0, 3], ['b', s32, 3, 5], ['c', u32, 8, 12], ['d', s32, 20, 10]], true);
const huge = b.struct('struct', 'huge', 8, [['f', __u64, 0, 3], ['g', b.typedef('__s64', s64), 3, 60]], true);
const color = b.enum('enum', 'color', 4, false, [['RED', 0n], ['GREEN', 2n]]);
const bb = b.struct('struct', 'bb', 4, [['on', bool, 0, 1], ['color', color, 1, 2]], true);
// struct wide { __u64 u; __s64 s; }
const wide = b.struct('struct', 'wide', 16, [['u', __u64, 0], ['s', s64, 64]]);
// struct named { char name[13]; } (not a multiple of 4: decoded every time) and char path[128] (too long to cache)
const odd = b.struct('struct', 'odd', 13, [['name', b.array(char, 13), 0]]);
const path = b.struct('struct', 'path', 128, [['path', b.array(char, 128), 0]]);
const btf = b.build();

type Inner = { x: number; y: number };
type Event = {
  pid: number; in: Inner; ts: bigint; comm: string; mac: Uint8Array; on: boolean; grid: number[][];
  load: number; f: number; p: bigint;
};

function eventBytes(pid: number, comm: Uint8Array | string): DataView {
  const dv = new DataView(new ArrayBuffer(8 + 88 + 8));
  const o = 8; // not at the start of the view
  dv.setUint32(o, pid, true);
  dv.setUint8(o + 4, 0xab);
  dv.setUint16(o + 6, 0x1234, true);
  dv.setBigInt64(o + 8, -5n, true);
  const c = typeof comm === 'string' ? new TextEncoder().encode(comm) : comm;
  new Uint8Array(dv.buffer, o + 16, c.length).set(c);
  new Uint8Array(dv.buffer, o + 32, 6).set([1, 2, 3, 4, 5, 6]);
  dv.setUint8(o + 38, 1);
  for (let i = 0; i < 6; i++) dv.setUint32(o + 40 + 4 * i, 100 + i, true);
  dv.setFloat64(o + 64, 0.75, true);
  dv.setFloat32(o + 72, 1.5, true);
  dv.setBigUint64(o + 80, 0xffff888800001000n, true);
  return dv;
}

describe('recordViewFor', () => {
  const view = recordViewFor<Event>(btf, event);

  it('reads every kind of member in place, where the bytes put it', () => {
    const dv = eventBytes(4242, 'bash\0junk');
    const e = view.at(dv, 8);
    assert.equal(view.size, 88);
    assert.equal(view.typeName, 'struct event');
    assert.equal(e.pid, 4242);
    assert.equal(e.in.x, 0xab);
    assert.equal(e.in.y, 0x1234);
    assert.equal(e.ts, -5n);
    assert.equal(e.comm, 'bash', 'a char array is text up to the first NUL, whatever follows it');
    assert.deepEqual(e.mac, new Uint8Array([1, 2, 3, 4, 5, 6]), 'a __u8 array stays bytes');
    assert.equal(e.on, true);
    assert.deepEqual(e.grid, [[100, 101, 102], [103, 104, 105]]);
    assert.equal(e.load, 0.75);
    assert.equal(e.f, 1.5);
    assert.equal(e.p, 0xffff888800001000n);
    // The byte array is a copy: changing it leaves the record alone.
    e.mac[0] = 99;
    assert.equal(dv.getUint8(8 + 32), 1);
    // The view reads the bytes as they are now (in place, not a snapshot).
    dv.setUint32(8, 7, true);
    assert.equal(e.pid, 7);
  });

  it('agrees with codecFor on every member but text and nested structs', () => {
    const dv = eventBytes(1, 'x');
    const decoded = codecFor(btf, event).read(dv, 8) as Record<string, unknown>;
    const e = view.at(dv, 8) as unknown as Record<string, unknown>;
    for (const k of ['pid', 'ts', 'mac', 'on', 'grid', 'load', 'f', 'p']) assert.deepEqual(e[k], decoded[k], k);
    for (const [id, name] of [[ev, 'ev'], [flags, 'flags'], [huge, 'huge'], [bb, 'bb'], [wide, 'wide']] as const) {
      const size = codecFor(btf, id).size;
      for (const fill of [0x00, 0xff, 0x5a, 0xa5, 0x81]) {
        const bytes = new Uint8Array(size + 3);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (fill + i * 37) & 0xff;
        const d = new DataView(bytes.buffer);
        const want = codecFor(btf, id).read(d, 3) as Record<string, unknown>;
        const got = recordViewFor(btf, id).at(d, 3) as unknown as Record<string, unknown>;
        assert.deepEqual(Object.keys(recordViewFor(btf, id).copy(got as never)), Object.keys(want), `${name} members`);
        for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], `${name}.${k} with fill ${fill}`);
      }
    }
  });

  it('copy() takes a plain object out, nested views included; JSON sees the members', () => {
    const dv = eventBytes(9, 'sshd');
    const e = view.at(dv, 8);
    const kept = view.copy(e);
    dv.setUint32(8, 10, true);
    dv.setUint8(8 + 4, 1);
    assert.equal(kept.pid, 9);
    assert.deepEqual(kept.in, { x: 0xab, y: 0x1234 });
    assert.equal(Object.getPrototypeOf(kept.in), Object.prototype);
    assert.equal(kept.comm, 'sshd');
    const json = JSON.parse(JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))) as Record<string, unknown>;
    assert.equal(json['pid'], 10);
    assert.deepEqual(json['in'], { x: 1, y: 0x1234 });
    assert.equal(json['ts'], '-5');
  });

  it("int64: 'number' reads 64-bit members as numbers, exact below 2^53", () => {
    const numbers = recordViewFor<{ u: number; s: number }>(btf, wide, { int64: 'number' });
    const dv = new DataView(new ArrayBuffer(16));
    for (const [u, s] of [[0n, 0n], [1n, -1n], [2n ** 53n - 1n, -(2n ** 53n) + 1n], [0x1_0000_0000n, -0x1_0000_0001n], [2n ** 64n - 1n, -(2n ** 63n)], [2n ** 60n + 12345n, 2n ** 62n + 3n]] as const) {
      dv.setBigUint64(0, u, true);
      dv.setBigInt64(8, s, true);
      const r = numbers.at(dv);
      assert.equal(r.u, Number(u), `u = ${u}`);
      assert.equal(r.s, Number(s), `s = ${s}`);
    }
    assert.throws(() => recordViewFor(btf, wide, { int64: 'string' as 'number' }), (e: unknown) => e instanceof InvalidArgumentError && /int64 must be 'bigint' or 'number', got "string"/.test(e.message));
  });

  it('reads big-endian records when told', () => {
    const dv = new DataView(new ArrayBuffer(88));
    dv.setUint32(0, 0x01020304, false);
    dv.setUint16(6, 0x1234, false);
    dv.setBigInt64(8, -2n, false);
    const be = recordViewFor<Event>(btf, event, { littleEndian: false }).at(dv);
    assert.equal(be.pid, 0x01020304);
    assert.equal(be.in.y, 0x1234);
    assert.equal(be.ts, -2n);
    const f = recordViewFor(btf, flags, { littleEndian: false });
    const bytes = new Uint8Array([0b1010_1101, 0x5c, 0x3e, 0x91]);
    assert.deepEqual(f.copy(f.at(new DataView(bytes.buffer))), codecFor(btf, flags, { littleEndian: false }).decode(bytes));
  });

  it('decodes text right through its cache: many distinct strings, UTF-8, no NUL, odd and long arrays', () => {
    const dv = new DataView(new ArrayBuffer(8 + 88 + 8));
    const comm = new Uint8Array(dv.buffer, 8 + 16, 16);
    const e = view.at(dv, 8);
    // 500 names through a 64-slot cache, twice, in two orders: every read must be the name written.
    const names = Array.from({ length: 500 }, (_, i) => `proc-${i.toString(36)}${'x'.repeat(i % 7)}`);
    for (const order of [names, [...names].reverse(), names]) {
      for (const n of order) {
        comm.fill(0);
        comm.set(new TextEncoder().encode(n));
        assert.equal(e.comm, n);
      }
    }
    // The same text with different bytes after the NUL: still the same string.
    comm.fill(0x41);
    comm.set(new TextEncoder().encode('ab\0'));
    assert.equal(e.comm, 'ab');
    comm.fill(0x41);
    assert.equal(e.comm, 'A'.repeat(16), 'no NUL: all 16 bytes');
    comm.fill(0);
    comm.set(new TextEncoder().encode('żółw'));
    assert.equal(e.comm, 'żółw');
    comm.fill(0);
    assert.equal(e.comm, '');
    const o = recordViewFor<{ name: string }>(btf, odd);
    const p = recordViewFor<{ path: string }>(btf, path);
    const buf = new Uint8Array(128);
    buf.set(new TextEncoder().encode('thirteen-char'));
    assert.equal(o.at(new DataView(buf.buffer)).name, 'thirteen-char');
    buf.set(new TextEncoder().encode('/usr/bin/env\0'));
    assert.equal(p.at(new DataView(buf.buffer)).path, '/usr/bin/env');
  });

  it('finds a struct or union by name', () => {
    assert.equal(recordViewFor(btf, 'event').typeName, 'struct event');
    assert.equal(recordViewFor(btf, 'event'), recordViewFor(btf, event), 'one view per type');
    assert.throws(() => recordViewFor(btf, 'nope'), (e: unknown) => e instanceof InvalidArgumentError && /BTF has no struct or union called "nope": clang keeps only the types that maps, functions and globals refer to; add a global that does, e\.g\. struct nope \*unused_nope __attribute__\(\(unused\)\);/.test(e.message));
    const twice = new BtfBuilder();
    const t32 = twice.int('unsigned int', 4, false);
    twice.struct('struct', 'dup', 4, [['a', t32, 0]]);
    twice.struct('struct', 'dup', 4, [['b', t32, 0]]);
    assert.throws(() => recordViewFor(twice.build(), 'dup'), (e: unknown) => e instanceof InvalidArgumentError && /BTF has 2 structs or unions called "dup" \(type ids 2, 3\): pass the type id/.test(e.message));
  });

  it('names what is wrong with bad input', () => {
    assert.throws(() => recordViewFor(btf, u32), (e: unknown) => e instanceof InvalidArgumentError && /a record view reads a struct or union, not int unsigned int \(type id \d+\); use codecFor\(\) for other types/.test(e.message));
    assert.throws(() => recordViewFor(btf, 99999), (e: unknown) => e instanceof InvalidArgumentError && /type id 99999 does not exist/.test(e.message));
    assert.throws(() => view.at(new DataView(new ArrayBuffer(87))), (e: unknown) => e instanceof InvalidArgumentError && /struct event needs 88 bytes at offset 0, the view has 87/.test(e.message));
    assert.throws(() => view.at(new Uint8Array(88) as unknown as DataView), (e: unknown) => e instanceof InvalidArgumentError && /expected a DataView/.test(e.message));
  });
});

/** A batch of `n` struct events, 96 bytes apart after an 8-byte header each (like a ring's records). */
function eventBatch(n: number, len = 88): { batch: Batch; dv: DataView } {
  const dv = new DataView(new ArrayBuffer(n * 96));
  const offsets = new Uint32Array(n);
  const lengths = new Uint32Array(n).fill(len);
  for (let i = 0; i < n; i++) {
    const o = i * 96 + 8;
    offsets[i] = o;
    dv.setUint32(o, 1000 + i, true);
    dv.setUint8(o + 4, i);
    new Uint8Array(dv.buffer, o + 16, 16).set(new TextEncoder().encode(`task${i % 3}`));
  }
  return { batch: new Batch(new Uint8Array(dv.buffer), dv, offsets, lengths, n), dv };
}

describe('batch.records(recordView)', () => {
  const view: RecordView<Event> = recordViewFor<Event>(btf, event);

  it('moves one view over the records, at their offsets', () => {
    const { batch } = eventBatch(5);
    const seen: string[] = [];
    let first: Event | undefined;
    for (const e of batch.records(view)) {
      first ??= e;
      assert.equal(e, first, 'the same object every step');
      seen.push(`${e.pid}:${e.in.x}:${e.comm}`);
    }
    assert.deepEqual(seen, ['1000:0:task0', '1001:1:task1', '1002:2:task2', '1003:3:task0', '1004:4:task1']);
  });

  it('detaches the view when the loop ends, is left early, or the batch is settled', () => {
    const { batch } = eventBatch(3);
    let kept: Event | undefined;
    let keptInner: Inner | undefined;
    const copies: Event[] = [];
    for (const e of batch.records(view)) {
      kept = e;
      keptInner = e.in;
      copies.push(view.copy(e));
    }
    const stale = (e: unknown): boolean => e instanceof ClosedError && /this struct event record view \(its batch was handed back to the kernel; copy what you keep inside the loop with recordView\.copy\(rec\)\) is closed/.test(e.message);
    assert.throws(() => kept!.pid, stale);
    assert.throws(() => kept!.comm, stale);
    assert.throws(() => keptInner!.x, (e: unknown) => e instanceof ClosedError && /struct inner record view/.test(e.message));
    assert.deepEqual(copies.map((c) => `${c.pid}:${c.in.x}:${c.comm}`), ['1000:0:task0', '1001:1:task1', '1002:2:task2']);

    // break: for-of calls return()
    for (const e of batch.records(view)) {
      kept = e;
      break;
    }
    assert.throws(() => kept!.pid, stale);

    // A view held while the batch is settled (consumeBatch's callback returned, the next batches() step).
    const it = batch.records(view);
    kept = it.next().value as Event;
    assert.equal(kept.pid, 1000);
    batch.settle();
    assert.throws(() => kept!.pid, stale);
    assert.throws(() => batch.records(view), (e: unknown) => e instanceof ClosedError && /this batch \(it was handed back to the kernel/.test(e.message));
  });

  it('refuses a record shorter than the type, naming both sizes', () => {
    const { batch } = eventBatch(2, 40);
    assert.throws(() => [...batch.records(view)], (e: unknown) => e instanceof InvalidArgumentError && /record 0 of the batch is 40 bytes, shorter than struct event \(88 bytes\)/.test(e.message));
  });

  it('reads the same without code generation from strings (the closures fallback)', () => {
    // A child Node that forbids new Function: the view falls back to closures and must agree.
    const here = fileURLToPath(new URL('.', import.meta.url));
    const script = `
      import { BtfBuilder } from ${JSON.stringify(`${here}../helpers/btf-builder.js`)};
      import { recordViewFor } from ${JSON.stringify(`${here}../../src/btf/record-view.js`)};
      const b = new BtfBuilder();
      const u32 = b.int('unsigned int', 4, false), u64 = b.int('unsigned long long', 8, false), ch = b.int('char', 1, true);
      const inner = b.struct('struct', 'inner', 4, [['x', u32, 0]]);
      const t = b.struct('struct', 't', 32, [['a', u32, 0], ['in', inner, 32], ['w', u64, 64], ['c', b.array(ch, 16), 128]]);
      const v = recordViewFor(b.build(), t);
      const dv = new DataView(new ArrayBuffer(32));
      dv.setUint32(0, 7, true); dv.setUint32(4, 8, true); dv.setBigUint64(8, 2n ** 63n, true);
      new Uint8Array(dv.buffer, 16, 3).set([0x6c, 0x73, 0]);
      const r = v.at(dv);
      let fn = 'allowed';
      try { new Function('return 1'); } catch { fn = 'refused'; }
      console.log(JSON.stringify({ fn, a: r.a, x: r.in.x, w: String(r.w), c: r.c }));`;
    const out = execFileSync(process.execPath, ['--disallow-code-generation-from-strings', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), { fn: 'refused', a: 7, x: 8, w: String(2n ** 63n), c: 'ls' });
  });
});
