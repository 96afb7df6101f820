/**
 * BTF codecs against hand-computed layouts: every type is built by hand with Btf.fromTypes, every
 * expected byte is worked out from the C rules (offsets, padding, bitfield placement) rather than
 * from the codec, and every error message the codec promises is checked word for word.
 */
import { describe, it } from 'node:test';
import { BtfBuilder } from '../helpers/btf-builder.js';
import assert from 'node:assert/strict';
import { Btf } from '../../src/btf/btf.js';
import { codecFor, cString, intCodec, rawCodec } from '../../src/btf/codec.js';
import type { BtfType } from '../../src/btf/types.js';
import { InvalidArgumentError } from '../../src/errors.js';

const b = new BtfBuilder();
const u8 = b.int('unsigned char', 1, false);
const s8 = b.int('signed char', 1, true);
const char = b.int('char', 1, true, { char: true });
const u16 = b.int('unsigned short', 2, false);
const s16 = b.int('short', 2, true);
const u32 = b.int('unsigned int', 4, false);
const s32 = b.int('int', 4, true);
const u64 = b.int('unsigned long long', 8, false);
const s64 = b.int('long long', 8, true);
const u128 = b.int('unsigned __int128', 16, false);
const s128 = b.int('__int128', 16, true);
const bool = b.int('_Bool', 1, false, { bool: true });
const f32 = b.float('float', 4);
const f64 = b.float('double', 8);
const __u8 = b.typedef('__u8', u8);
const __u16 = b.typedef('__u16', u16);
const __u32 = b.typedef('__u32', u32);
const __u64 = b.typedef('__u64', u64);
const __s64 = b.typedef('__s64', s64);
// A typedef chain behind a qualifier: const u8_t -> u8_t -> __u8 -> unsigned char.
const u8_t = b.typedef('u8_t', __u8);
const constU8 = b.qual('const', u8_t);

// struct inner { __u8 x; __u16 y; };  x@0, 1 byte padding, y@2; size 4
const inner = b.struct('struct', 'inner', 4, [['x', __u8, 0], ['y', __u16, 16]]);
// struct outer { __u32 a; struct inner inner; __s64 b; char comm[16]; __u32 grid[2][3]; };
// a@0 inner@4 b@8 comm@16 grid@32, size 56
const comm16 = b.array(char, 16);
const grid = b.array(b.array(__u32, 3), 2);
const outer = b.struct('struct', 'outer', 56, [
  ['a', __u32, 0], ['inner', inner, 32], ['b', __s64, 64], ['comm', comm16, 128], ['grid', grid, 256],
]);
const foo = b.struct('struct', 'foo', 12, [['a', u32, 0], ['b', u32, 32], ['c', u32, 64]]);

// union val { __u32 i; float f; __u8 raw[4]; };
const val = b.struct('union', 'val', 4, [['i', __u32, 0], ['f', f32, 0], ['raw', b.array(__u8, 4), 0]]);

// struct ev { __u32 type; union { __u32 pid; __u64 addr; }; struct { __u16 lo; __u16 hi; }; };
// type@0, anonymous union@8 (8-aligned), anonymous struct@16, size 24
const anonUnion = b.struct('union', '', 8, [['pid', __u32, 0], ['addr', __u64, 0]]);
const anonStruct = b.struct('struct', '', 4, [['lo', __u16, 0], ['hi', __u16, 16]]);
const ev = b.struct('struct', 'ev', 24, [['type', __u32, 0], ['', anonUnion, 64], ['', anonStruct, 128]]);

// struct flags { unsigned int a:3; int b:5; unsigned int c:12; int d:10; };  (kind_flag encoding)
const flags = b.struct('struct', 'flags', 4, [['a', u32, 0, 3], ['b', s32, 3, 5], ['c', u32, 8, 12], ['d', s32, 20, 10]], true);
// The same in the legacy encoding: the int type carries the width (and, for c, the offset).
const legacy = b.struct('struct', 'legacy', 4, [
  ['a', b.int('unsigned int', 4, false, { bits: 4 }), 0],
  ['b', b.int('int', 4, true, { bits: 7 }), 4],
  ['c', b.int('unsigned int', 4, false, { bits: 6, bitOffset: 11 }), 0],
]);
// struct big { __u64 lo:40; __u64 hi:24; };  struct huge { __u64 f:3; __s64 g:60; };
const big = b.struct('struct', 'big', 8, [['lo', __u64, 0, 40], ['hi', __u64, 40, 24]], true);
const huge = b.struct('struct', 'huge', 8, [['f', __u64, 0, 3], ['g', __s64, 3, 60]], true);
// enum color { RED, GREEN = 2 };  struct bb { _Bool on:1; enum color color:2; };
const color = b.enum('enum', 'color', 4, false, [['RED', 0n], ['GREEN', 2n]]);
const bb = b.struct('struct', 'bb', 4, [['on', bool, 0, 1], ['color', color, 1, 2]], true);

const sgn = b.enum('enum', 'sgn', 4, true, [['NEG', -1n], ['POS', 1n]]);
const ubig = b.enum('enum', 'ubig', 4, false, [['TOP', 0xffffffffn]]);
const e64 = b.enum('enum64', 'e64', 8, false, [['HUGE', 0xffffffffffffffffn], ['ONE', 1n]]);

// struct __attribute__((packed)) p { __u8 a; __u32 b; __u16 c; };  a@0 b@1 c@5, size 7
const packed = b.struct('struct', 'p', 7, [['a', __u8, 0], ['b', __u32, 8], ['c', __u16, 40]]);
// struct fl { float f; double d; };
const fl = b.struct('struct', 'fl', 16, [['f', f32, 0], ['d', f64, 64]]);
// struct node { struct inner *next; const u8_t tag; _Bool ok; signed char sc; short s; };
const nodeT = b.struct('struct', 'node', 16, [
  ['next', b.ptr(inner), 0], ['tag', constU8, 64], ['ok', bool, 72], ['sc', s8, 80], ['s', s16, 96],
]);
const matrix = b.array(b.array(__u8, 3), 2);
const ints = b.struct('struct', 'ints', 32, [['u', u128, 0], ['s', s128, 128]]);
const data = b.datasec('.data', 12, [[b.variable('counter', __u64), 0, 8], [b.variable('name', b.array(char, 4)), 8, 4]]);
const fwd = b.fwd('later');
const fn = b.func('main');

const btf = b.build();

function bytes(...xs: number[]): Uint8Array {
  return Uint8Array.from(xs);
}

function throwsInvalid(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.code, 'ERR_BPFKIT_INVALID_ARG');
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

describe('codecFor: integers and scalars', () => {
  it('maps sizes and signedness to number, bigint and boolean', () => {
    assert.equal(codecFor(btf, u8).decode(bytes(0xff)), 255);
    assert.equal(codecFor(btf, s8).decode(bytes(0xff)), -1);
    assert.equal(codecFor(btf, char).decode(bytes(0x41)), 0x41);
    assert.equal(codecFor(btf, u16).decode(bytes(0x34, 0x12)), 0x1234);
    assert.equal(codecFor(btf, s16).decode(bytes(0xfe, 0xff)), -2);
    assert.equal(codecFor(btf, u32).decode(bytes(0xff, 0xff, 0xff, 0xff)), 0xffffffff);
    assert.equal(codecFor(btf, s32).decode(bytes(0xff, 0xff, 0xff, 0x80)), -0x7f000001);
    assert.equal(codecFor(btf, u64).decode(new Uint8Array(8).fill(0xff)), 0xffffffffffffffffn);
    assert.equal(codecFor(btf, s64).decode(new Uint8Array(8).fill(0xff)), -1n);
    assert.equal(codecFor(btf, bool).decode(bytes(0)), false);
    assert.equal(codecFor(btf, bool).decode(bytes(7)), true);
    assert.equal(codecFor(btf, f32).decode(bytes(0, 0, 0xc0, 0x3f)), 1.5);
    assert.equal(codecFor(btf, f64).decode(bytes(0, 0, 0, 0, 0, 0, 0, 0xc0)), -2);
  });

  it('encodes in little-endian order and accepts numbers and bigints where they fit', () => {
    assert.deepEqual(codecFor(btf, u32).encode(0x01020304), bytes(4, 3, 2, 1));
    assert.deepEqual(codecFor(btf, s16).encode(-2), bytes(0xfe, 0xff));
    assert.deepEqual(codecFor(btf, u16).encode(0x1234n), bytes(0x34, 0x12));
    assert.deepEqual(codecFor(btf, u64).encode(0x0102030405060708n), bytes(8, 7, 6, 5, 4, 3, 2, 1));
    assert.deepEqual(codecFor(btf, u64).encode(258), bytes(2, 1, 0, 0, 0, 0, 0, 0));
    assert.deepEqual(codecFor(btf, s64).encode(-1), new Uint8Array(8).fill(0xff));
    assert.deepEqual(codecFor(btf, bool).encode(true), bytes(1));
    assert.deepEqual(codecFor(btf, f32).encode(1.5), bytes(0, 0, 0xc0, 0x3f));
  });

  it('handles 128-bit integers as bigint', () => {
    const c = codecFor(btf, ints);
    const v = { u: (1n << 127n) | 0x0102n, s: -2n };
    const out = c.encode(v);
    const want = new Uint8Array(32);
    want[0] = 0x02; want[1] = 0x01; want[15] = 0x80;
    want.fill(0xff, 16); want[16] = 0xfe;
    assert.deepEqual(out, want);
    assert.deepEqual(c.decode(out), v);
    throwsInvalid(() => c.encode({ s: 1n << 127n }), `value.s: ${1n << 127n} does not fit __int128`);
  });

  it('rejects values that do not fit and values of the wrong type', () => {
    throwsInvalid(() => codecFor(btf, __u8).encode(256), 'value: 256 does not fit __u8');
    throwsInvalid(() => codecFor(btf, s8).encode(-129), 'value: -129 does not fit signed char');
    throwsInvalid(() => codecFor(btf, u32).encode(1.5), 'value: 1.5 does not fit unsigned int');
    throwsInvalid(() => codecFor(btf, u32).encode(-1n), 'value: -1 does not fit unsigned int');
    throwsInvalid(() => codecFor(btf, __u64).encode(-1), 'value: -1 does not fit __u64');
    throwsInvalid(() => codecFor(btf, __u64).encode(2 ** 64), `value: ${2 ** 64} is not a safe integer; pass a bigint for __u64`);
    throwsInvalid(() => codecFor(btf, __u64).encode(1n << 64n), 'value: 18446744073709551616 does not fit __u64');
    throwsInvalid(() => codecFor(btf, u32).encode('7'), 'value: expected a number for unsigned int, got string "7"');
    throwsInvalid(() => codecFor(btf, bool).encode('yes'), 'value: expected a boolean for _Bool, got string "yes"');
    throwsInvalid(() => codecFor(btf, f64).encode(1n), 'value: expected a number for double, got bigint');
  });

  it('honours littleEndian: false', () => {
    const c = codecFor(btf, u32, { littleEndian: false });
    assert.deepEqual(c.encode(0x01020304), bytes(1, 2, 3, 4));
    assert.equal(c.decode(bytes(1, 2, 3, 4)), 0x01020304);
    assert.deepEqual(codecFor(btf, u64, { littleEndian: false }).encode(1n), bytes(0, 0, 0, 0, 0, 0, 0, 1));
  });
});

describe('codecFor: structs, arrays, typedefs', () => {
  const c = codecFor(btf, outer);
  const comm = new Uint8Array(16);
  comm.set([0x62, 0x61, 0x73, 0x68]); // "bash"
  const value = { a: 0x01020304, inner: { x: 5, y: 0x0607 }, b: -2n, comm, grid: [[1, 2, 3], [4, 5, 6]] };
  const layout = new Uint8Array(56);
  layout.set([4, 3, 2, 1, 5, 0, 7, 6, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x62, 0x61, 0x73, 0x68]);
  for (let i = 0; i < 6; i++) layout[32 + i * 4] = i + 1;

  it('lays out members, nested structs, char arrays and 2-D arrays as C does', () => {
    assert.equal(c.size, 56);
    assert.deepEqual(c.encode(value), layout);
    assert.deepEqual(c.encode({ ...value, comm: 'bash' }), layout);
    assert.deepEqual(c.decode(layout), value);
  });

  it('decodes members in declaration order, char arrays as Uint8Array copies', () => {
    const v = c.decode(layout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(v), ['a', 'inner', 'b', 'comm', 'grid']);
    assert.ok(v['comm'] instanceof Uint8Array);
    layout[16] = 0x7a;
    assert.equal((v['comm'] as Uint8Array)[0], 0x62, 'decoded bytes must be a copy');
    layout[16] = 0x62;
    assert.equal(cString(v['comm'] as Uint8Array), 'bash');
  });

  it('read() decodes in place from a DataView that starts inside its buffer, at an offset', () => {
    // Two records behind 24 bytes of something else, as in a ring buffer batch's view.
    const buf = new Uint8Array(24 + 8 + 56 + 56);
    buf.set(layout, 24 + 8);
    const second = c.encode({ ...value, a: 99, comm: 'zsh' });
    buf.set(second, 24 + 8 + 56);
    const view = new DataView(buf.buffer, 24, buf.length - 24);
    assert.deepEqual(c.read(view, 8), value);
    const v2 = c.read(view, 64) as Record<string, unknown>;
    assert.equal(v2['a'], 99);
    assert.equal(cString(v2['comm'] as Uint8Array), 'zsh', 'char arrays are read relative to the view, not its buffer');
    buf[24 + 8 + 16] = 0x7a;
    assert.equal(cString((c.read(view, 8) as Record<string, unknown>)['comm'] as Uint8Array), 'zash');
    throwsInvalid(() => c.read(view, 65), 'expected 56 bytes at offset 65, got 55');
    throwsInvalid(() => c.read(view, -1), 'offset must be a non-negative integer, got -1');
    throwsInvalid(() => c.read(buf as unknown as DataView, 0), 'expected a DataView, got a Uint8Array');
    assert.deepEqual(rawCodec(3).read(view, 8 + 16), bytes(0x7a, 0x61, 0x73));
  });

  it('zeroes missing members and padding, ignores padding on decode', () => {
    assert.deepEqual(c.encode({}), new Uint8Array(56));
    const ci = codecFor(btf, inner);
    assert.deepEqual(ci.decode(bytes(5, 0xff, 7, 6)), { x: 5, y: 0x0607 });
    assert.deepEqual(ci.encode({ x: 5, y: 0x0607 }), bytes(5, 0, 7, 6));
    assert.deepEqual(c.encode({ grid: [[1]] }).subarray(32, 36), bytes(1, 0, 0, 0));
  });

  it('writes into a caller buffer at an offset and decodes from one', () => {
    const ci = codecFor(btf, inner);
    const buf = new Uint8Array(10).fill(0xaa);
    assert.equal(ci.encode({ x: 5, y: 0x0607 }, buf, 3), buf);
    assert.deepEqual(buf, bytes(0xaa, 0xaa, 0xaa, 5, 0, 7, 6, 0xaa, 0xaa, 0xaa));
    assert.deepEqual(ci.decode(buf, 3), { x: 5, y: 0x0607 });
    // A view into a larger buffer decodes relative to its own start.
    assert.deepEqual(ci.decode(buf.subarray(3)), { x: 5, y: 0x0607 });
    throwsInvalid(() => ci.encode({}, buf, 7), 'output buffer too small: need 4 bytes at offset 7, have 3');
  });

  it('takes a Uint8Array of exactly the size as raw bytes', () => {
    assert.deepEqual(c.encode(layout), layout);
    assert.notEqual(c.encode(layout), layout);
    throwsInvalid(() => c.encode(new Uint8Array(3)), 'expected 56 bytes, got 3');
    throwsInvalid(() => c.decode(new Uint8Array(10)), 'expected 56 bytes, got 10');
    throwsInvalid(() => codecFor(btf, inner).decode(new Uint8Array(6), 4), 'expected 4 bytes at offset 4, got 2');
  });

  it('leaves the output buffer untouched when encoding fails', () => {
    const out = new Uint8Array(56).fill(0xaa);
    throwsInvalid(() => c.encode({ a: 1, inner: { x: 999 } }, out), 'value.inner.x: 999 does not fit __u8');
    assert.deepEqual(out, new Uint8Array(56).fill(0xaa));
  });

  it('survives a getter that re-enters the same codec', () => {
    const ci = codecFor(btf, inner);
    const v = { x: 1, get y(): number { ci.encode({ x: 9, y: 9 }); return 2; } };
    assert.deepEqual(ci.encode(v), bytes(1, 0, 2, 0));
  });

  it('compiles each type once per Btf and options', () => {
    assert.equal(codecFor(btf, outer), c);
    assert.notEqual(codecFor(btf, outer, { path: 'key' }), c);
  });

  it('round-trips', () => {
    const v = { a: 0xffffffff, inner: { x: 255, y: 0 }, b: -(2n ** 63n), comm: new Uint8Array(16).fill(0x41), grid: [[0, 0xffffffff, 7], [8, 9, 10]] };
    assert.deepEqual(c.decode(c.encode(v)), v);
  });

  it('names the struct and its members for an unknown member', () => {
    throwsInvalid(() => codecFor(btf, foo).encode({ a: 1, baz: 2 }), 'value: struct foo has no member "baz"; members: a, b, c');
    throwsInvalid(() => c.encode({ inner: { z: 1 } }), 'value.inner: struct inner has no member "z"; members: x, y');
  });

  it('names the field path for values that do not fit or have the wrong type', () => {
    throwsInvalid(() => c.encode({ inner: { x: 300 } }), 'value.inner.x: 300 does not fit __u8');
    throwsInvalid(() => c.encode({ a: 'x' }), 'value.a: expected a number for __u32, got string "x"');
    throwsInvalid(() => c.encode({ inner: 5 }), 'value.inner: expected an object for struct inner, got number');
    throwsInvalid(() => c.encode({ grid: [[1, 2, 3], [4, 5, -1]] }), 'value.grid[1][2]: -1 does not fit __u32');
    throwsInvalid(() => c.encode({ grid: [[1, 2, 3, 4]] }), 'value.grid[0]: 4 elements do not fit __u32[3]');
    throwsInvalid(() => c.encode({ comm: 'x'.repeat(17) }), 'value.comm: 17 bytes of UTF-8 do not fit char[16] (16 bytes)');
    throwsInvalid(() => c.encode({ comm: 5 }), 'value.comm: expected a Uint8Array or string for char[16], got number');
    throwsInvalid(() => c.encode({ b: 2 ** 60 }), `value.b: ${2 ** 60} is not a safe integer; pass a bigint for __s64`);
    throwsInvalid(() => c.encode(5), 'value: expected an object for struct outer, got number');
    throwsInvalid(() => codecFor(btf, inner, { path: 'key' }).encode({ y: -1 }), 'key.y: -1 does not fit __u16');
  });

  it('nests byte arrays inside arrays', () => {
    const cm = codecFor(btf, matrix);
    const v = cm.decode(bytes(1, 2, 3, 4, 5, 6));
    assert.deepEqual(v, [bytes(1, 2, 3), bytes(4, 5, 6)]);
    assert.deepEqual(cm.encode([bytes(9), [7, 8]]), bytes(9, 0, 0, 7, 8, 0));
    throwsInvalid(() => cm.encode([[1, 256]]), 'value[0][1]: 256 does not fit __u8');
  });

  it('handles pointers, qualifiers, bool, signed char and short', () => {
    const cn = codecFor(btf, nodeT);
    const v = { next: 0xffff888000001000n, tag: 7, ok: true, sc: -1, s: -300 };
    const out = cn.encode(v);
    assert.deepEqual(out, bytes(0x00, 0x10, 0x00, 0x00, 0x80, 0x88, 0xff, 0xff, 7, 1, 0xff, 0, 0xd4, 0xfe, 0, 0));
    assert.deepEqual(cn.decode(out), v);
    throwsInvalid(() => cn.encode({ tag: -1 }), 'value.tag: -1 does not fit const u8_t');
    throwsInvalid(() => cn.encode({ next: -1n }), 'value.next: -1 does not fit struct inner *');
  });

  it('lays out packed structs without padding', () => {
    const cp = codecFor(btf, packed);
    assert.equal(cp.size, 7);
    const out = cp.encode({ a: 1, b: 0x11223344, c: 0x5566 });
    assert.deepEqual(out, bytes(1, 0x44, 0x33, 0x22, 0x11, 0x66, 0x55));
    assert.deepEqual(cp.decode(out), { a: 1, b: 0x11223344, c: 0x5566 });
  });

  it('handles float and double members', () => {
    const cf = codecFor(btf, fl);
    const out = cf.encode({ f: 0.5, d: -2 });
    assert.deepEqual(out, bytes(0, 0, 0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0));
    assert.deepEqual(cf.decode(out), { f: 0.5, d: -2 });
  });

  it('encodes big-endian structs', () => {
    const ci = codecFor(btf, inner, { littleEndian: false });
    assert.deepEqual(ci.encode({ x: 5, y: 0x0607 }), bytes(5, 0, 6, 7));
    assert.deepEqual(ci.decode(bytes(5, 0, 6, 7)), { x: 5, y: 0x0607 });
  });
});

describe('codecFor: unions and anonymous members', () => {
  it('decodes every union member and encodes the one given', () => {
    const c = codecFor(btf, val);
    assert.deepEqual(c.decode(bytes(0, 0, 0xc0, 0x3f)), { i: 0x3fc00000, f: 1.5, raw: bytes(0, 0, 0xc0, 0x3f) });
    assert.deepEqual(c.encode({ f: 1.5 }), bytes(0, 0, 0xc0, 0x3f));
    assert.deepEqual(c.encode({ raw: bytes(1, 2) }), bytes(1, 2, 0, 0));
    assert.deepEqual(c.encode({ i: 1, f: undefined }), bytes(1, 0, 0, 0));
    throwsInvalid(() => c.encode({ i: 1, f: 2 }), 'value: union val takes one member at a time, got i, f');
  });

  it('flattens anonymous structs and unions into the parent', () => {
    const c = codecFor(btf, ev);
    const raw = bytes(1, 0, 0, 0, 0xee, 0xee, 0xee, 0xee, 3, 0, 0, 0, 2, 0, 0, 0, 0x34, 0x12, 0x78, 0x56, 0, 0, 0, 0);
    const v = c.decode(raw) as Record<string, unknown>;
    assert.deepEqual(v, { type: 1, pid: 3, addr: 0x200000003n, lo: 0x1234, hi: 0x5678 });
    assert.deepEqual(Object.keys(v), ['type', 'pid', 'addr', 'lo', 'hi']);
    const want = raw.slice();
    want.fill(0, 4, 8);
    assert.deepEqual(c.encode({ type: 1, addr: 0x200000003n, lo: 0x1234, hi: 0x5678 }), want);
    assert.deepEqual(c.encode({ pid: 9 }), bytes(0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    throwsInvalid(() => c.encode({ pid: 1, addr: 2n }), 'value: union (anon) takes one member at a time, got pid, addr');
    throwsInvalid(() => c.encode({ nope: 1 }), 'value: struct ev has no member "nope"; members: type, pid, addr, lo, hi');
    throwsInvalid(() => c.encode({ hi: 70000 }), 'value.hi: 70000 does not fit __u16');
  });
});

describe('codecFor: bitfields', () => {
  it('places kind_flag bitfields, signed and unsigned, across byte boundaries', () => {
    const c = codecFor(btf, flags);
    // a=5 @0:3, b=-3 (0b11101) @3:5, c=0xabc @8:12, d=-100 (924) @20:10 -> 0x39cabced
    const v = { a: 5, b: -3, c: 0xabc, d: -100 };
    assert.deepEqual(c.encode(v), bytes(0xed, 0xbc, 0xca, 0x39));
    assert.deepEqual(c.decode(bytes(0xed, 0xbc, 0xca, 0x39)), v);
    assert.deepEqual(c.decode(bytes(0xff, 0xff, 0xff, 0xff)), { a: 7, b: -1, c: 0xfff, d: -1 });
    assert.deepEqual(c.encode({ d: -1 }), bytes(0, 0, 0xf0, 0x3f));
    throwsInvalid(() => c.encode({ a: 8 }), 'value.a: 8 does not fit unsigned int:3');
    throwsInvalid(() => c.encode({ b: -17 }), 'value.b: -17 does not fit int:5');
    throwsInvalid(() => c.encode({ b: 16 }), 'value.b: 16 does not fit int:5');
  });

  it('places big-endian bitfields from the most significant bit', () => {
    const c = codecFor(btf, flags, { littleEndian: false });
    // a<<29 | b<<24 | c<<12 | d<<2 = 0xbdabce70, stored big-endian
    const v = { a: 5, b: -3, c: 0xabc, d: -100 };
    assert.deepEqual(c.encode(v), bytes(0xbd, 0xab, 0xce, 0x70));
    assert.deepEqual(c.decode(bytes(0xbd, 0xab, 0xce, 0x70)), v);
  });

  it('reads the legacy int-encoding bitfields', () => {
    const c = codecFor(btf, legacy);
    // a=9 @0:4, b=-5 (123) @4:7, c=33 @11:6 -> 0x00010fb9
    const v = { a: 9, b: -5, c: 33 };
    assert.deepEqual(c.encode(v), bytes(0xb9, 0x0f, 0x01, 0x00));
    assert.deepEqual(c.decode(bytes(0xb9, 0x0f, 0x01, 0x00)), v);
  });

  it('surfaces 64-bit bitfields as bigint, including wide signed ones', () => {
    const cb = codecFor(btf, big);
    const v = { lo: 0x123456789an, hi: 0xabcdefn };
    assert.deepEqual(cb.encode(v), bytes(0x9a, 0x78, 0x56, 0x34, 0x12, 0xef, 0xcd, 0xab));
    assert.deepEqual(cb.decode(cb.encode(v)), v);
    throwsInvalid(() => cb.encode({ hi: 1n << 24n }), 'value.hi: 16777216 does not fit __u64:24');
    const ch = codecFor(btf, huge);
    // f=5 @0:3, g=-2 @3:60 -> 5 | (2^60-2)<<3 = 0x7ffffffffffffff5
    const h = { f: 5n, g: -2n };
    assert.deepEqual(ch.encode(h), bytes(0xf5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f));
    assert.deepEqual(ch.decode(ch.encode(h)), h);
    assert.deepEqual(ch.decode(ch.encode({ g: -(1n << 59n) })), { f: 0n, g: -(1n << 59n) });
    throwsInvalid(() => ch.encode({ g: 1n << 59n }), `value.g: ${1n << 59n} does not fit __s64:60`);
  });

  it('handles bool and enum bitfields', () => {
    const c = codecFor(btf, bb);
    assert.deepEqual(c.encode({ on: true, color: 'GREEN' }), bytes(5, 0, 0, 0));
    assert.deepEqual(c.decode(bytes(5, 0, 0, 0)), { on: true, color: 2 });
    throwsInvalid(() => c.encode({ color: 'BLUE' }), 'value.color: "BLUE" is not an enumerator of enum color:2 (RED, GREEN)');
  });
});

describe('codecFor: enums', () => {
  it('uses the enum signedness and size', () => {
    assert.equal(codecFor(btf, sgn).decode(bytes(0xff, 0xff, 0xff, 0xff)), -1);
    assert.equal(codecFor(btf, ubig).decode(bytes(0xff, 0xff, 0xff, 0xff)), 0xffffffff);
    assert.deepEqual(codecFor(btf, sgn).encode('NEG'), bytes(0xff, 0xff, 0xff, 0xff));
    assert.deepEqual(codecFor(btf, ubig).encode(0xffffffff), bytes(0xff, 0xff, 0xff, 0xff));
    throwsInvalid(() => codecFor(btf, ubig).encode(-1), 'value: -1 does not fit enum ubig');
  });

  it('surfaces enum64 as bigint', () => {
    const c = codecFor(btf, e64);
    assert.equal(c.decode(new Uint8Array(8).fill(0xff)), 0xffffffffffffffffn);
    assert.deepEqual(c.encode('HUGE'), new Uint8Array(8).fill(0xff));
    assert.deepEqual(c.encode(1), bytes(1, 0, 0, 0, 0, 0, 0, 0));
  });
});

describe('codecFor: datasec and types without a size', () => {
  it('decodes a datasec as an object keyed by variable name', () => {
    const c = codecFor(btf, data);
    assert.equal(c.size, 12);
    const out = c.encode({ counter: 3n, name: 'ab' });
    assert.deepEqual(out, bytes(3, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x62, 0, 0));
    assert.deepEqual(c.decode(out), { counter: 3n, name: bytes(0x61, 0x62, 0, 0) });
    throwsInvalid(() => c.encode({ count: 1 }), 'value: datasec .data has no member "count"; members: counter, name');
  });

  it('refuses void, functions, forward declarations and unknown ids', () => {
    throwsInvalid(() => codecFor(btf, 0), /cannot encode or decode void .*no size/);
    throwsInvalid(() => codecFor(btf, fn), /cannot encode or decode main .*no size/);
    throwsInvalid(() => codecFor(btf, fwd), /cannot encode or decode struct later .*no size/);
    throwsInvalid(() => codecFor(btf, 100000), /type id 100000 does not exist/);
  });
});

describe('rawCodec, intCodec, cString', () => {
  it('rawCodec copies bytes in and out and checks the length', () => {
    const c = rawCodec(4);
    const src = bytes(1, 2, 3, 4, 5);
    const v = c.decode(src, 1);
    assert.deepEqual(v, bytes(2, 3, 4, 5));
    src[1] = 9;
    assert.equal(v[0], 2);
    assert.deepEqual(c.encode(bytes(1, 2, 3, 4)), bytes(1, 2, 3, 4));
    const out = new Uint8Array(6);
    c.encode(bytes(1, 2, 3, 4), out, 2);
    assert.deepEqual(out, bytes(0, 0, 1, 2, 3, 4));
    throwsInvalid(() => c.encode(bytes(1, 2)), 'expected 4 bytes, got 2');
    throwsInvalid(() => c.decode(bytes(1, 2)), 'expected 4 bytes, got 2');
  });

  it('intCodec maps 8 bytes to bigint and smaller to number', () => {
    assert.equal(intCodec(4, false).decode(bytes(1, 0, 0, 0)), 1);
    assert.equal(intCodec(2, true).decode(bytes(0xff, 0xff)), -1);
    assert.equal(intCodec(8, true).decode(new Uint8Array(8).fill(0xff)), -1n);
    assert.deepEqual(intCodec(4, false, false).encode(1), bytes(0, 0, 0, 1));
    assert.deepEqual(intCodec(1, true).encode(-1), bytes(0xff));
    throwsInvalid(() => intCodec(1, false).encode(256), 'value: 256 does not fit u8');
    throwsInvalid(() => intCodec(4, false).encode(bytes(1)), 'expected 4 bytes, got 1');
  });

  it('cString stops at the first NUL and decodes UTF-8', () => {
    assert.equal(cString(bytes(0x68, 0x69, 0, 0x7a)), 'hi');
    assert.equal(cString(bytes(0x68, 0x69)), 'hi');
    assert.equal(cString(Uint8Array.from(Buffer.from('héllo\0junk'))), 'héllo');
  });
});

describe('unions written back after a read', () => {
  // union { __u64 raw; struct { __u32 lo; } halves; } — alternatives of different sizes.
  const types: BtfType[] = [
    { kind: 'void', id: 0, name: '' },
    { kind: 'int', id: 1, name: 'u32', size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 32 },
    { kind: 'int', id: 2, name: 'u64', size: 8, signed: false, char: false, bool: false, bitOffset: 0, bits: 64 },
    { kind: 'struct', id: 3, name: 'halves', size: 4, kindFlag: false, members: [{ name: 'lo', type: 1, bitOffset: 0, bitfieldSize: 0 }] },
    { kind: 'union', id: 4, name: 'u', size: 8, kindFlag: false, members: [
      { name: 'raw', type: 2, bitOffset: 0, bitfieldSize: 0 },
      { name: 'halves', type: 3, bitOffset: 0, bitfieldSize: 0 },
    ] },
  ];
  const codec = codecFor(Btf.fromTypes(types), 4);

  it('accepts every alternative of a decoded union, even when they differ in size', () => {
    const bytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const decoded = codec.decode(bytes) as { raw: bigint; halves: { lo: number } };
    assert.equal(decoded.halves.lo, 0x04030201);
    assert.deepEqual(codec.encode(decoded), bytes);
  });

  it('still refuses alternatives that disagree where they overlap', () => {
    assert.throws(() => codec.encode({ raw: 0x0807060504030201n, halves: { lo: 7 } }), InvalidArgumentError);
  });
});
