/**
 * Unit tests for the `.BTF` reader/writer: every kind decoded from hand-built blobs, round trips
 * through marshal in both byte orders, split BTF, the type queries, and malformed input (each
 * must end in BtfError, never a hang or a RangeError). The kernel's own vmlinux BTF is parsed
 * when this machine lets us read it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xorshift32 } from '../helpers/index.js';
import { access, constants, readFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { Btf, isAttributeTag, kindOf, parseRunningKernelBtf, typeIdsNamed, withRecordsReplaced } from '../../src/btf/btf.js';
import { BTF_KIND } from '../../src/btf/types.js';
import type { BtfStruct, BtfType } from '../../src/btf/types.js';
import { BtfError } from '../../src/errors.js';

// --- a tiny raw BTF writer, independent of Btf.marshal ---------------------------------------

/** Builds `.BTF` blobs word by word so tests can say exactly what is on the wire. */
class RawBtf {
  private readonly strBytes: number[] = [0];
  private readonly strOffsets = new Map<string, number>([['', 0]]);
  readonly words: number[] = [];

  /** Offset of `s` in the string section, appending it if new. */
  str(s: string): number {
    const known = this.strOffsets.get(s);
    if (known !== undefined) return known;
    const off = this.strBytes.length;
    this.strBytes.push(...Buffer.from(s, 'utf8'), 0);
    this.strOffsets.set(s, off);
    return off;
  }

  /** Appends a btf_type and its trailing u32 words; returns nothing (ids are positional). */
  type(name: string, kind: number, vlen: number, kindFlag: boolean, sizeOrType: number, ...extra: number[]): this {
    const info = ((kindFlag ? 1 << 31 : 0) | (kind << 24) | vlen) >>> 0;
    this.words.push(this.str(name), info, sizeOrType >>> 0, ...extra.map((w) => w >>> 0));
    return this;
  }

  bytes(opts: { littleEndian?: boolean; strings?: Uint8Array; hdrLen?: number } = {}): Uint8Array {
    const le = opts.littleEndian ?? true;
    const strs = opts.strings ?? Uint8Array.from(this.strBytes);
    const hdrLen = opts.hdrLen ?? 24;
    const typeLen = this.words.length * 4;
    const out = new Uint8Array(hdrLen + typeLen + strs.length);
    const v = new DataView(out.buffer);
    v.setUint16(0, 0xeb9f, le);
    v.setUint8(2, 1);
    v.setUint32(4, hdrLen, le);
    v.setUint32(8, 0, le);
    v.setUint32(12, typeLen, le);
    v.setUint32(16, typeLen, le);
    v.setUint32(20, strs.length, le);
    this.words.forEach((w, i) => v.setUint32(hdrLen + i * 4, w, le));
    out.set(strs, hdrLen + typeLen);
    return out;
  }
}

const intEnc = (encoding: number, offset: number, bits: number): number => ((encoding << 24) | (offset << 16) | bits) >>> 0;

/** One record of every kind; ids in comments. */
function everyKindBlob(le = true): Uint8Array {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  b.type('', BTF_KIND.PTR, 0, false, 1); // 2: int *
  b.type('', BTF_KIND.ARRAY, 0, false, 0, 1, 1, 16); // 3: int[16]
  b.type('s', BTF_KIND.STRUCT, 2, true, 8, // 4: struct s { int a; int b:3; }
    b.str('a'), 1, 0,
    b.str('b'), 1, (3 << 24) | 32);
  b.type('u', BTF_KIND.UNION, 1, false, 4, b.str('x'), 1, 0); // 5
  b.type('e', BTF_KIND.ENUM, 2, true, 4, b.str('NEG'), -5, b.str('POS'), 7); // 6: signed enum
  b.type('f', BTF_KIND.FWD, 0, true, 0); // 7: union f
  b.type('myint', BTF_KIND.TYPEDEF, 0, false, 1); // 8
  b.type('', BTF_KIND.VOLATILE, 0, false, 1); // 9
  b.type('', BTF_KIND.CONST, 0, false, 1); // 10
  b.type('', BTF_KIND.RESTRICT, 0, false, 2); // 11
  b.type('fn', BTF_KIND.FUNC, 1, false, 13); // 12: global
  b.type('', BTF_KIND.FUNC_PROTO, 2, false, 1, b.str('p'), 2, 0, 0); // 13: int (int *, ...)
  b.type('v', BTF_KIND.VAR, 0, false, 1, 1); // 14: global var
  b.type('.data', BTF_KIND.DATASEC, 1, false, 4, 14, 0, 4); // 15
  b.type('double', BTF_KIND.FLOAT, 0, false, 8); // 16
  b.type('tag', BTF_KIND.DECL_TAG, 0, false, 4, 1); // 17: on member 1 of s
  b.type('user', BTF_KIND.TYPE_TAG, 0, false, 1); // 18
  b.type('e64', BTF_KIND.ENUM64, 2, false, 8, b.str('BIG'), 0x89abcdef, 0x01234567, b.str('MAX'), 0xffffffff, 0xffffffff); // 19
  b.type('s64', BTF_KIND.ENUM64, 1, true, 8, b.str('M1'), 0xffffffff, 0xffffffff); // 20: signed
  b.type('address_space(1)', BTF_KIND.TYPE_TAG, 0, true, 1); // 21: attribute tag
  return b.bytes({ littleEndian: le });
}

function throwsBtf(fn: () => unknown, match?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BtfError, `expected BtfError, got ${String(e)}`);
    if (match) assert.match(e.message, match);
    return true;
  });
}

/** Deterministic PRNG (xorshift32) so fuzz failures reproduce. */
const rng = xorshift32;

// --- decoding each kind ------------------------------------------------------------------------

test('every kind decodes from a hand-built blob', () => {
  const btf = Btf.parse(everyKindBlob());
  assert.equal(btf.length, 22);
  assert.deepEqual(btf.type(0), { kind: 'void', id: 0, name: '' });
  assert.deepEqual(btf.type(1), { kind: 'int', id: 1, name: 'int', size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 });
  assert.deepEqual(btf.type(2), { kind: 'ptr', id: 2, name: '', type: 1 });
  assert.deepEqual(btf.type(3), { kind: 'array', id: 3, name: '', type: 1, indexType: 1, nelems: 16 });
  assert.deepEqual(btf.type(4), {
    kind: 'struct', id: 4, name: 's', size: 8, kindFlag: true, members: [
      { name: 'a', type: 1, bitOffset: 0, bitfieldSize: 0 },
      { name: 'b', type: 1, bitOffset: 32, bitfieldSize: 3 },
    ],
  });
  assert.deepEqual(btf.type(5), { kind: 'union', id: 5, name: 'u', size: 4, kindFlag: false, members: [{ name: 'x', type: 1, bitOffset: 0, bitfieldSize: 0 }] });
  assert.deepEqual(btf.type(6), { kind: 'enum', id: 6, name: 'e', size: 4, signed: true, values: [{ name: 'NEG', value: -5n }, { name: 'POS', value: 7n }] });
  assert.deepEqual(btf.type(7), { kind: 'fwd', id: 7, name: 'f', fwdKind: 'union' });
  assert.deepEqual(btf.type(8), { kind: 'typedef', id: 8, name: 'myint', type: 1 });
  assert.deepEqual(btf.type(9), { kind: 'volatile', id: 9, name: '', type: 1 });
  assert.deepEqual(btf.type(10), { kind: 'const', id: 10, name: '', type: 1 });
  assert.deepEqual(btf.type(11), { kind: 'restrict', id: 11, name: '', type: 2 });
  assert.deepEqual(btf.type(12), { kind: 'func', id: 12, name: 'fn', type: 13, linkage: 'global' });
  assert.deepEqual(btf.type(13), { kind: 'func_proto', id: 13, name: '', returnType: 1, params: [{ name: 'p', type: 2 }, { name: '', type: 0 }] });
  assert.deepEqual(btf.type(14), { kind: 'var', id: 14, name: 'v', type: 1, linkage: 'global' });
  assert.deepEqual(btf.type(15), { kind: 'datasec', id: 15, name: '.data', size: 4, vars: [{ type: 14, offset: 0, size: 4 }] });
  assert.deepEqual(btf.type(16), { kind: 'float', id: 16, name: 'double', size: 8 });
  assert.deepEqual(btf.type(17), { kind: 'decl_tag', id: 17, name: 'tag', type: 4, componentIdx: 1 });
  assert.deepEqual(btf.type(18), { kind: 'type_tag', id: 18, name: 'user', type: 1 });
  assert.deepEqual(btf.type(19), {
    kind: 'enum64', id: 19, name: 'e64', size: 8, signed: false,
    values: [{ name: 'BIG', value: 0x0123456789abcdefn }, { name: 'MAX', value: 0xffffffffffffffffn }],
  });
  assert.deepEqual(btf.type(20), { kind: 'enum64', id: 20, name: 's64', size: 8, signed: true, values: [{ name: 'M1', value: -1n }] });
  assert.equal(isAttributeTag(btf.type(21)), true);
  assert.equal(isAttributeTag(btf.type(18)), false);
  assert.equal(btf.littleEndian, true);
});

test('int encoding bits: char, bool, bit offset', () => {
  const b = new RawBtf();
  b.type('char', BTF_KIND.INT, 0, false, 1, intEnc(2, 0, 8));
  b.type('_Bool', BTF_KIND.INT, 0, false, 1, intEnc(4, 0, 1));
  b.type('u3', BTF_KIND.INT, 0, false, 4, intEnc(0, 5, 3));
  b.type('__int128', BTF_KIND.INT, 0, false, 16, intEnc(1, 0, 128));
  const btf = Btf.parse(b.bytes());
  assert.deepEqual(btf.type(1), { kind: 'int', id: 1, name: 'char', size: 1, signed: false, char: true, bool: false, bitOffset: 0, bits: 8 });
  assert.deepEqual(btf.type(2), { kind: 'int', id: 2, name: '_Bool', size: 1, signed: false, char: false, bool: true, bitOffset: 0, bits: 1 });
  assert.deepEqual(btf.type(3), { kind: 'int', id: 3, name: 'u3', size: 4, signed: false, char: false, bool: false, bitOffset: 5, bits: 3 });
  assert.equal(btf.alignof(4), 16);
});

test('unsigned 32-bit enum values above 2^31 stay positive', () => {
  const b = new RawBtf();
  b.type('flags', BTF_KIND.ENUM, 1, false, 4, b.str('TOP'), 0x80000000);
  const t = Btf.parse(b.bytes()).type(1);
  assert.equal(t.kind === 'enum' && t.values[0]!.value, 0x80000000n);
});

test('big-endian blobs parse to the same types', () => {
  const le = Btf.parse(everyKindBlob(true));
  const be = Btf.parse(everyKindBlob(false));
  assert.equal(be.littleEndian, false);
  assert.deepEqual(be.types, le.types);
  assert.equal(isAttributeTag(be.type(21)), true);
});

// --- marshal -----------------------------------------------------------------------------------

test('round trip: parse(marshal(parse(x))) deep-equals, both byte orders', () => {
  const original = Btf.parse(everyKindBlob());
  for (const littleEndian of [true, false]) {
    const bytes = original.marshal({ littleEndian });
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    assert.equal(view.getUint16(0, littleEndian), 0xeb9f);
    const again = Btf.parse(bytes);
    assert.equal(again.littleEndian, littleEndian);
    assert.deepEqual(again.types, original.types);
    assert.equal(isAttributeTag(again.type(21)), true);
  }
});

test('marshal of an untouched parse is byte-identical', () => {
  const blob = everyKindBlob();
  assert.deepEqual(Btf.parse(blob).marshal({ littleEndian: true }), blob);
});

test('marshal keeps the original string table as a prefix and appends new names', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32));
  // Strings no type uses, as .BTF.ext line_info would reference (source lines, file names).
  const fileOff = b.str('/src/prog.c');
  const lineOff = b.str('\tint x = 1; // ünïcode');
  const blob = b.bytes();
  const btf = Btf.parse(blob);
  assert.equal(btf.string(fileOff), '/src/prog.c');
  assert.equal(btf.string(lineOff), '\tint x = 1; // ünïcode');

  const renamed = btf.withTypes([btf.type(0), { ...btf.type(1), name: 'u32_renamed' } as BtfType,
    { kind: 'ptr', id: 2, name: '', type: 1 }]);
  const out = renamed.marshal();
  const v = new DataView(out.buffer, out.byteOffset);
  const strStart = 24 + v.getUint32(16, true);
  const strLen = v.getUint32(20, true);
  const origStrings = blob.subarray(24 + 16); // one int record is 16 bytes
  assert.deepEqual(out.subarray(strStart, strStart + origStrings.length), origStrings);
  assert.equal(strLen, origStrings.length + 'u32_renamed\0'.length);
  const again = Btf.parse(out);
  assert.equal(again.string(fileOff), '/src/prog.c');
  assert.equal(again.string(lineOff), '\tint x = 1; // ünïcode');
  assert.deepEqual(again.types, renamed.types);
});

test('fromTypes builds BTF in code and marshals it', () => {
  const types: BtfType[] = [
    { kind: 'void', id: 0, name: '' },
    { kind: 'int', id: 1, name: 'unsigned int', size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 32 },
    { kind: 'typedef', id: 2, name: '__u32', type: 1 },
    { kind: 'struct', id: 3, name: 'key', size: 8, kindFlag: false, members: [
      { name: 'a', type: 2, bitOffset: 0, bitfieldSize: 0 },
      { name: 'b', type: 2, bitOffset: 32, bitfieldSize: 0 },
    ] },
  ];
  const btf = Btf.fromTypes(types);
  const again = Btf.parse(btf.marshal());
  assert.deepEqual(again.types, types);
  assert.equal(again.sizeof(3), 8);
});

test('fromTypes rejects bad graphs with BtfError', () => {
  const int = { kind: 'int', id: 1, name: 'int', size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 } as const;
  throwsBtf(() => Btf.fromTypes([]), /base|void/);
  throwsBtf(() => Btf.fromTypes([int]), /void/);
  throwsBtf(() => Btf.fromTypes([{ kind: 'void', id: 0, name: '' }, { ...int, id: 5 }]), /index 1 has id 5/);
  throwsBtf(() => Btf.fromTypes([{ kind: 'void', id: 0, name: '' }, { kind: 'ptr', id: 1, name: '', type: 9 }]), /type 9/);
  throwsBtf(() => Btf.fromTypes([{ kind: 'void', id: 0, name: '' }, { kind: 'bogus', id: 1, name: '' } as unknown as BtfType]), /unknown kind/);
  const badEnum = Btf.fromTypes([{ kind: 'void', id: 0, name: '' },
    { kind: 'enum', id: 1, name: 'e', size: 4, signed: false, values: [{ name: 'A', value: -1n }] }]);
  throwsBtf(() => badEnum.marshal(), /does not fit/);
  const badBitfield = Btf.fromTypes([{ kind: 'void', id: 0, name: '' }, int,
    { kind: 'struct', id: 2, name: 's', size: 4, kindFlag: false, members: [{ name: 'a', type: 1, bitOffset: 0, bitfieldSize: 3 }] }]);
  throwsBtf(() => badBitfield.marshal(), /bitfield/);
});

// --- split BTF ---------------------------------------------------------------------------------

test('split BTF continues ids and string offsets from its base', () => {
  const baseRaw = new RawBtf();
  baseRaw.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  baseRaw.type('task', BTF_KIND.STRUCT, 1, false, 4, baseRaw.str('pid'), 1, 0); // 2
  const baseBlob = baseRaw.bytes();
  const base = Btf.parse(baseBlob);
  const baseStrLen = new DataView(baseBlob.buffer).getUint32(20, true);

  // Split strings start at the base's end; "int" (offset 1) is reused from the base.
  const splitStrings = Buffer.from('mod_thing\0mod_field\0');
  const words = [
    baseStrLen, ((BTF_KIND.STRUCT << 24) | 2) >>> 0, 8, // 3: struct mod_thing
    1, 1, 0, //  int int (name from base)
    baseStrLen + 10, 4, 0, // ptr member named mod_field
    0, BTF_KIND.PTR << 24, 2, // 4: struct task *
  ];
  const blob = new Uint8Array(24 + words.length * 4 + splitStrings.length);
  const v = new DataView(blob.buffer);
  v.setUint16(0, 0xeb9f, true); v.setUint8(2, 1); v.setUint32(4, 24, true);
  v.setUint32(12, words.length * 4, true); v.setUint32(16, words.length * 4, true); v.setUint32(20, splitStrings.length, true);
  words.forEach((w, i) => v.setUint32(24 + i * 4, w, true));
  blob.set(splitStrings, 24 + words.length * 4);

  const split = Btf.parse(blob, { base });
  assert.equal(split.length, 5);
  assert.equal(split.base, base);
  assert.equal(split.type(2), base.type(2));
  assert.deepEqual(split.type(3), {
    kind: 'struct', id: 3, name: 'mod_thing', size: 8, kindFlag: false,
    members: [{ name: 'int', type: 1, bitOffset: 0, bitfieldSize: 0 }, { name: 'mod_field', type: 4, bitOffset: 0, bitfieldSize: 0 }],
  });
  assert.equal(split.typeName(4), 'struct task *');
  assert.equal(split.string(1), 'int');
  assert.equal(split.string(baseStrLen), 'mod_thing');
  assert.deepEqual(split.byName('task', 'struct').map((t) => t.id), [2]);
  throwsBtf(() => Btf.parse(blob), /string section|outside/);

  const out = split.marshal({ littleEndian: true });
  assert.deepEqual(out, blob);
  assert.deepEqual(Btf.parse(out, { base }).types, split.types);

  const built = Btf.fromTypes([...base.types, { kind: 'typedef', id: 3, name: 'task_t', type: 2 }], { base });
  const reparsed = Btf.parse(built.marshal(), { base });
  assert.deepEqual(reparsed.type(3), { kind: 'typedef', id: 3, name: 'task_t', type: 2 });
  assert.equal(reparsed.typeName(3), 'task_t');
});

test('split BTF may reference base types but not beyond its own', () => {
  const base = Btf.parse(everyKindBlob());
  const b = new RawBtf();
  b.words.push(0, BTF_KIND.PTR << 24, 99);
  throwsBtf(() => Btf.parse(b.bytes({ strings: new Uint8Array(0) }), { base }), /type 99/);
});

// --- queries -----------------------------------------------------------------------------------

function queryBtf(): Btf {
  const int = { kind: 'int', id: 1, name: 'int', size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 } as const;
  const types: BtfType[] = [
    { kind: 'void', id: 0, name: '' },
    int,
    { kind: 'int', id: 2, name: 'char', size: 1, signed: true, char: true, bool: false, bitOffset: 0, bits: 8 },
    { kind: 'array', id: 3, name: '', type: 2, indexType: 1, nelems: 16 }, // char[16]
    { kind: 'ptr', id: 4, name: '', type: 1 }, // int *
    { kind: 'ptr', id: 5, name: '', type: 4 }, // int **
    { kind: 'const', id: 6, name: '', type: 2 }, // const char
    { kind: 'ptr', id: 7, name: '', type: 6 }, // const char *
    { kind: 'typedef', id: 8, name: '__u32', type: 1 },
    { kind: 'volatile', id: 9, name: '', type: 8 },
    { kind: 'struct', id: 10, name: 'task_struct', size: 32, kindFlag: false, members: [
      { name: 'pid', type: 8, bitOffset: 0, bitfieldSize: 0 },
      { name: 'next', type: 11, bitOffset: 64, bitfieldSize: 0 },
      { name: 'comm', type: 3, bitOffset: 128, bitfieldSize: 0 },
    ] },
    { kind: 'ptr', id: 11, name: '', type: 10 }, // struct task_struct *
    { kind: 'array', id: 12, name: '', type: 13, indexType: 1, nelems: 2 }, // int[2][3]
    { kind: 'array', id: 13, name: '', type: 1, indexType: 1, nelems: 3 },
    { kind: 'func_proto', id: 14, name: '', returnType: 1, params: [{ name: 'a', type: 4 }, { name: '', type: 0 }] },
    { kind: 'ptr', id: 15, name: '', type: 14 }, // int (*)(int *, ...)
    { kind: 'func', id: 16, name: 'handler', type: 14, linkage: 'global' },
    { kind: 'struct', id: 17, name: 'packed', size: 5, kindFlag: false, members: [
      { name: 'c', type: 2, bitOffset: 0, bitfieldSize: 0 },
      { name: 'i', type: 1, bitOffset: 8, bitfieldSize: 0 },
    ] },
    { kind: 'enum', id: 18, name: 'state', size: 4, signed: false, values: [{ name: 'ON', value: 1n }] },
    { kind: 'fwd', id: 19, name: 'opaque', fwdKind: 'struct' },
    { kind: 'var', id: 20, name: 'counter', type: 8, linkage: 'global' },
    { kind: 'datasec', id: 21, name: '.bss', size: 4, vars: [{ type: 20, offset: 0, size: 4 }] },
    { kind: 'typedef', id: 22, name: 'loop_a', type: 23 },
    { kind: 'typedef', id: 23, name: 'loop_b', type: 22 },
    { kind: 'union', id: 24, name: 'u', size: 8, kindFlag: false, members: [
      { name: 'p', type: 4, bitOffset: 0, bitfieldSize: 0 },
      { name: 'x', type: 1, bitOffset: 0, bitfieldSize: 0 },
    ] },
    { kind: 'type_tag', id: 25, name: 'user', type: 1 },
    { kind: 'ptr', id: 26, name: '', type: 25 }, // int __user *
    { kind: 'const', id: 27, name: '', type: 4 }, // int * const
    { kind: 'struct', id: 28, name: 'self', size: 4, kindFlag: false, members: [{ name: 'me', type: 28, bitOffset: 0, bitfieldSize: 0 }] },
    { kind: 'float', id: 29, name: 'double', size: 8 },
    { kind: 'enum64', id: 30, name: 'big', size: 8, signed: false, values: [] },
    { kind: 'struct', id: 31, name: '', size: 0, kindFlag: false, members: [] },
  ];
  return Btf.fromTypes(types);
}

test('type() and string() reject ids and offsets out of range', () => {
  const btf = queryBtf();
  throwsBtf(() => btf.type(32), /out of range/);
  throwsBtf(() => btf.type(-1), /out of range/);
  throwsBtf(() => btf.type(1.5), /out of range/);
  assert.equal(btf.string(0), '');
  throwsBtf(() => btf.string(1), /outside/);
});

test('byName finds types, optionally by kind', () => {
  const btf = queryBtf();
  assert.deepEqual(btf.byName('task_struct').map((t) => t.id), [10]);
  assert.deepEqual(btf.byName('task_struct', 'struct').map((t) => t.id), [10]);
  assert.deepEqual(btf.byName('task_struct', 'union'), []);
  assert.deepEqual(btf.byName('nope'), []);
  btf.byName('task_struct').pop(); // returned arrays are copies
  assert.equal(btf.byName('task_struct').length, 1);
});

test('resolve skips typedefs and qualifiers', () => {
  const btf = queryBtf();
  assert.equal(btf.resolve(9).id, 1);
  assert.equal(btf.resolve(25).id, 1);
  assert.equal(btf.resolve(10).id, 10);
});

test('sizeof', () => {
  const btf = queryBtf();
  assert.equal(btf.sizeof(1), 4);
  assert.equal(btf.sizeof(3), 16);
  assert.equal(btf.sizeof(4), 8);
  assert.equal(btf.sizeof(9), 4);
  assert.equal(btf.sizeof(10), 32);
  assert.equal(btf.sizeof(12), 24);
  assert.equal(btf.sizeof(18), 4);
  assert.equal(btf.sizeof(20), 4);
  assert.equal(btf.sizeof(21), 4);
  assert.equal(btf.sizeof(29), 8);
  throwsBtf(() => btf.sizeof(0), /void has no size/);
  throwsBtf(() => btf.sizeof(16), /func has no size/);
  throwsBtf(() => btf.sizeof(19), /fwd has no size/);
  throwsBtf(() => btf.sizeof(14), /func_proto has no size/);
});

test('alignof', () => {
  const btf = queryBtf();
  assert.equal(btf.alignof(1), 4);
  assert.equal(btf.alignof(3), 1);
  assert.equal(btf.alignof(4), 8);
  assert.equal(btf.alignof(10), 8);
  assert.equal(btf.alignof(12), 4);
  assert.equal(btf.alignof(17), 1); // packed: int at byte 1
  assert.equal(btf.alignof(24), 8);
  assert.equal(btf.alignof(31), 1);
  throwsBtf(() => btf.alignof(19), /no alignment/);
  throwsBtf(() => btf.alignof(28), /loop/);
});

test('typeName spells types the C way', () => {
  const btf = queryBtf();
  const names: Record<number, string> = {
    0: 'void', 1: 'int', 3: 'char[16]', 4: 'int *', 5: 'int **', 7: 'const char *', 8: '__u32',
    9: 'volatile __u32', 10: 'struct task_struct', 11: 'struct task_struct *', 12: 'int[2][3]',
    14: 'int (int *, ...)', 15: 'int (*)(int *, ...)', 16: 'int handler(int *, ...)', 18: 'enum state',
    19: 'struct opaque', 20: '__u32 counter', 21: 'datasec .bss', 24: 'union u', 26: 'int __user *',
    27: 'int * const', 31: 'struct <anon>',
  };
  for (const [id, name] of Object.entries(names)) assert.equal(btf.typeName(Number(id)), name, `type ${id}`);
  throwsBtf(() => btf.typeName(99), /out of range/);
});

test('a typedef loop makes resolve/sizeof/alignof throw, typeName still returns', () => {
  const btf = queryBtf();
  throwsBtf(() => btf.resolve(22), /loop/);
  throwsBtf(() => btf.sizeof(22), /loop/);
  throwsBtf(() => btf.alignof(22), /loop/);
  assert.equal(typeof btf.typeName(22), 'string');
  // And the loop survives a trip through bytes.
  const again = Btf.parse(btf.marshal());
  throwsBtf(() => again.resolve(23), /loop/);
});

test('a pointer cycle through a struct is fine', () => {
  const btf = queryBtf();
  assert.equal(btf.sizeof(11), 8);
  assert.equal(btf.typeName((btf.type(10) as BtfStruct).members[1]!.type), 'struct task_struct *');
});

test('sizeof guards against overflow', () => {
  const btf = Btf.fromTypes([
    { kind: 'void', id: 0, name: '' },
    { kind: 'int', id: 1, name: 'long', size: 8, signed: true, char: false, bool: false, bitOffset: 0, bits: 64 },
    { kind: 'array', id: 2, name: '', type: 1, indexType: 1, nelems: 0xffffffff },
    { kind: 'array', id: 3, name: '', type: 2, indexType: 1, nelems: 0xffffffff },
  ]);
  throwsBtf(() => btf.sizeof(3), /overflow/);
});

// --- malformed input ---------------------------------------------------------------------------

test('every truncation of a valid blob throws BtfError', () => {
  const blob = everyKindBlob();
  for (let len = 0; len < blob.length; len++) {
    throwsBtf(() => Btf.parse(blob.subarray(0, len)));
  }
});

test('every truncation of the type section (header adjusted) throws BtfError', () => {
  const blob = everyKindBlob();
  const v = new DataView(blob.buffer);
  const typeLen = v.getUint32(12, true);
  for (let cut = 1; cut < typeLen; cut++) {
    const b = blob.slice();
    const bv = new DataView(b.buffer);
    bv.setUint32(12, typeLen - cut, true);
    let parsed: Btf | undefined;
    try {
      parsed = Btf.parse(b);
    } catch (e) {
      assert.ok(e instanceof BtfError, `cut ${cut}: ${String(e)}`);
    }
    // A cut on a record boundary leaves valid BTF whose last records are gone.
    if (parsed) assert.ok(parsed.length < 22);
  }
});

test('bad header fields', () => {
  const blob = everyKindBlob();
  const patched = (at: number, value: number, size: 1 | 2 | 4 = 4): Uint8Array => {
    const b = blob.slice();
    const v = new DataView(b.buffer);
    if (size === 1) v.setUint8(at, value); else if (size === 2) v.setUint16(at, value, true); else v.setUint32(at, value, true);
    return b;
  };
  throwsBtf(() => Btf.parse(patched(0, 0x1234, 2)), /magic 0x1234/);
  throwsBtf(() => Btf.parse(patched(2, 2, 1)), /version 2/);
  throwsBtf(() => Btf.parse(patched(3, 1, 1)), /flags/);
  throwsBtf(() => Btf.parse(patched(4, blob.length + 1)), /hdr_len .* exceeds/);
  throwsBtf(() => Btf.parse(patched(4, 0xffffffff)), /hdr_len/);
  throwsBtf(() => Btf.parse(patched(4, 8)), /hdr_len 8/);
  throwsBtf(() => Btf.parse(patched(8, 2)), /aligned|outside/);
  throwsBtf(() => Btf.parse(patched(12, 0xfffffff0)), /type section/);
  throwsBtf(() => Btf.parse(patched(20, 0xffffffff)), /string section/);
  throwsBtf(() => Btf.parse(patched(16, 0)), /overlap/);
  throwsBtf(() => Btf.parse(new Uint8Array(0)), /too short/);
  throwsBtf(() => Btf.parse('not bytes' as unknown as Uint8Array), /Uint8Array/);
});

test('a longer hdr_len is honoured', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32));
  assert.equal(Btf.parse(b.bytes({ hdrLen: 32 })).type(1).name, 'int');
});

test('string section problems', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32));
  throwsBtf(() => Btf.parse(b.bytes({ strings: Uint8Array.from([0, 0x69, 0x6e, 0x74]) })), /NUL-terminated/);
  throwsBtf(() => Btf.parse(b.bytes({ strings: Uint8Array.from([0x41, 0x69, 0x6e, 0x74, 0]) })), /start with/);
  throwsBtf(() => Btf.parse(b.bytes({ strings: new Uint8Array(0) })), /start with/);
  throwsBtf(() => Btf.parse(b.bytes({ strings: Uint8Array.from([0]) })), /type 1: name offset 1 is outside/);
});

test('member, enumerator and param names must be in the string section', () => {
  for (const build of [
    (b: RawBtf) => b.type('s', BTF_KIND.STRUCT, 1, false, 4, 999, 0, 0),
    (b: RawBtf) => b.type('e', BTF_KIND.ENUM, 1, false, 4, 999, 0),
    (b: RawBtf) => b.type('', BTF_KIND.FUNC_PROTO, 1, false, 0, 999, 0),
  ]) {
    const b = new RawBtf();
    build(b);
    throwsBtf(() => Btf.parse(b.bytes()), /offset 999 is outside/);
  }
});

test('type ids out of range are rejected after parsing all types', () => {
  const ok = new RawBtf();
  ok.type('', BTF_KIND.PTR, 0, false, 2); // forward reference: fine
  ok.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32));
  assert.equal(Btf.parse(ok.bytes()).typeName(1), 'int *');
  for (const [kind, vlen, sizeOrType, extra, what] of [
    [BTF_KIND.PTR, 0, 7, [], /type 7/],
    [BTF_KIND.ARRAY, 0, 0, [1, 7, 4], /index type refers to type 7/],
    [BTF_KIND.STRUCT, 1, 4, [0, 7, 0], /member 0 refers to type 7/],
    [BTF_KIND.FUNC_PROTO, 1, 7, [0, 1], /return type refers to type 7/],
    [BTF_KIND.FUNC_PROTO, 1, 0, [0, 7], /param 0 refers to type 7/],
    [BTF_KIND.DATASEC, 1, 4, [7, 0, 4], /var 0 refers to type 7/],
    [BTF_KIND.VAR, 0, 7, [0], /type 7/],
    [BTF_KIND.DECL_TAG, 0, 7, [-1], /type 7/],
  ] as const) {
    const b = new RawBtf();
    b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32));
    b.type('x', kind, vlen, false, sizeOrType, ...extra);
    throwsBtf(() => Btf.parse(b.bytes()), what);
  }
});

test('semantic checks: func needs a func_proto, datasec lists vars, decl_tag index', () => {
  const cases: [(b: RawBtf) => void, RegExp][] = [
    [(b) => b.type('f', BTF_KIND.FUNC, 0, false, 1), /func_proto/],
    [(b) => b.type('.data', BTF_KIND.DATASEC, 1, false, 4, 1, 0, 4), /not a var/],
    [(b) => b.type('t', BTF_KIND.DECL_TAG, 0, false, 1, 0), /component_idx/],
    [(b) => b.type('t', BTF_KIND.DECL_TAG, 0, false, 1, -2), /component_idx/],
  ];
  for (const [build, what] of cases) {
    const b = new RawBtf();
    b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32));
    build(b);
    throwsBtf(() => Btf.parse(b.bytes()), what);
  }
});

test('unknown kinds name the kind number and the type id', () => {
  for (const kind of [0, 20, 31]) {
    const b = new RawBtf();
    b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32));
    b.type('x', kind, 0, false, 0);
    throwsBtf(() => Btf.parse(b.bytes()), new RegExp(`type 2 has unknown kind ${kind}\\b`));
  }
});

test('huge vlen in a tiny blob is truncation, not a hang', () => {
  for (const kind of [BTF_KIND.STRUCT, BTF_KIND.UNION, BTF_KIND.ENUM, BTF_KIND.ENUM64, BTF_KIND.FUNC_PROTO, BTF_KIND.DATASEC]) {
    const b = new RawBtf();
    b.type('x', kind, 0xffff, false, 4);
    throwsBtf(() => Btf.parse(b.bytes()), /truncated/);
  }
});

test('record-level checks', () => {
  const cases: [(b: RawBtf) => void, RegExp][] = [
    [(b) => b.type('x', BTF_KIND.PTR, 1, false, 0), /vlen 1 must be 0/],
    [(b) => b.type('x', BTF_KIND.PTR, 0, true, 0), /kind_flag/],
    [(b) => b.words.push(0, ((BTF_KIND.PTR << 24) | (1 << 16)) >>> 0, 0), /reserved bits/],
    [(b) => b.type('i', BTF_KIND.INT, 0, false, 3, intEnc(0, 0, 24)), /int size 3/],
    [(b) => b.type('i', BTF_KIND.INT, 0, false, 4, intEnc(0, 8, 32)), /do not fit/],
    [(b) => b.type('i', BTF_KIND.INT, 0, false, 4, intEnc(0, 0, 0)), /do not fit/],
    [(b) => b.type('i', BTF_KIND.INT, 0, false, 4, intEnc(8, 0, 32)), /encoding/],
    [(b) => b.type('i', BTF_KIND.INT, 0, false, 4, 0x100 | 32), /reserved bits/],
    [(b) => b.type('e', BTF_KIND.ENUM, 0, false, 3), /enum size 3/],
    [(b) => b.type('f', BTF_KIND.FLOAT, 0, false, 5), /float size 5/],
    [(b) => b.type('f', BTF_KIND.FUNC, 3, false, 0), /linkage 3/],
    [(b) => b.type('v', BTF_KIND.VAR, 0, false, 0, 9), /linkage 9/],
  ];
  for (const [build, what] of cases) {
    const b = new RawBtf();
    build(b);
    throwsBtf(() => Btf.parse(b.bytes()), what);
  }
});

test('random corruption never escapes as anything but BtfError', () => {
  const blob = everyKindBlob();
  const next = rng(0xb7f);
  for (let round = 0; round < 3000; round++) {
    const b = blob.slice();
    const flips = 1 + (next() % 4);
    for (let i = 0; i < flips; i++) b[next() % b.length] = next() & 0xff;
    try {
      const btf = Btf.parse(b);
      // Whatever parsed must also be queryable and writable without foreign errors.
      for (const t of btf.types) {
        btf.typeName(t.id);
        for (const f of [() => btf.sizeof(t.id), () => btf.alignof(t.id), () => btf.resolve(t.id)]) {
          try { f(); } catch (e) { assert.ok(e instanceof BtfError, `round ${round}: ${String(e)}`); }
        }
      }
      Btf.parse(btf.marshal());
    } catch (e) {
      assert.ok(e instanceof BtfError, `round ${round}: ${String(e)}`);
    }
  }
});

// --- lazy decoding and name lookups on parsed BTF --------------------------------------------------

test('parsed types are decoded once: type(), byName and types hand out the same objects', () => {
  const btf = Btf.parse(everyKindBlob());
  const s = btf.type(4);
  assert.equal(btf.type(4), s);
  assert.equal(btf.byName('s', 'struct')[0], s);
  assert.equal(btf.types[4], s);
  assert.equal(btf.types, btf.types);
  for (const t of btf.types) assert.equal(btf.type(t.id), t);
  assert.equal(btf.type(0), btf.types[0]);
});

test('byName on parsed BTF: kinds, several types of one name, offsets into the middle of a string, UTF-8, misses', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  b.type('dup', BTF_KIND.STRUCT, 0, false, 0); // 2
  b.type('dup', BTF_KIND.TYPEDEF, 0, false, 1); // 3: same name offset
  b.words.push(b.str('xdup') + 1, BTF_KIND.TYPEDEF << 24, 1); // 4: "dup", from inside "xdup"
  b.type('ünï', BTF_KIND.TYPEDEF, 0, false, 1); // 5
  b.type('', BTF_KIND.PTR, 0, false, 1); // 6
  const btf = Btf.parse(b.bytes());
  const ids = (name: string, kind?: Parameters<Btf['byName']>[1]): number[] => btf.byName(name, kind).map((t) => t.id);
  assert.deepEqual(ids('dup'), [2, 3, 4]);
  assert.deepEqual(ids('dup', 'typedef'), [3, 4]);
  assert.deepEqual(ids('dup', 'union'), []);
  assert.deepEqual(ids('xdup'), []);
  assert.deepEqual(ids('du'), []);
  assert.deepEqual(ids('dup\0'), []);
  assert.deepEqual(ids('ünï'), [5]);
  assert.deepEqual(ids(''), []);
  assert.deepEqual(ids('int', 'int'), [1]);
});

test('byName on parsed BTF finds each of many names (hash chains)', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32));
  const names: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const name = i % 3 === 0 ? `n${i}` : i % 3 === 1 ? `a_longer_name_${i}_x` : `${'p'.repeat(i % 11)}${i}`;
    names.push(name);
    b.type(name, BTF_KIND.TYPEDEF, 0, false, 1);
  }
  const btf = Btf.parse(b.bytes());
  names.forEach((name, i) => assert.deepEqual(btf.byName(name).map((t) => t.id), [i + 2], name));
  assert.deepEqual(btf.byName('n1'), []);
});

test('byName finds a name stored twice and from inside longer strings, the same before and after it hashes every name', () => {
  // Strings: "" "dup" "int" "dup" "xdup" "ydup___v1": "dup" at 1 and 9, inside "xdup" at 14, "dup___v1" at 19.
  const strings = Buffer.from('\0dup\0int\0dup\0xdup\0ydup___v1\0');
  const words = [
    5, BTF_KIND.INT << 24, 4, intEnc(1, 0, 32), // 1: int
    1, BTF_KIND.TYPEDEF << 24, 1, // 2: dup (first copy)
    9, BTF_KIND.STRUCT << 24, 0, // 3: dup (second copy)
    14, BTF_KIND.TYPEDEF << 24, 1, // 4: dup (inside "xdup")
    13, BTF_KIND.TYPEDEF << 24, 1, // 5: xdup
    18, BTF_KIND.STRUCT << 24, 0, // 6: ydup___v1
    19, BTF_KIND.TYPEDEF << 24, 6, // 7: dup___v1 (inside it)
  ];
  const b = new RawBtf();
  b.words.push(...words);
  for (const parse of [Btf.parse, Btf.parseKernel]) {
    const btf = parse(b.bytes({ strings }));
    const ids = (name: string): number[] => btf.byName(name).map((t) => t.id);
    const expect = (): void => {
      assert.deepEqual(ids('dup'), [2, 3, 4]);
      assert.deepEqual(ids('xdup'), [5]);
      assert.deepEqual(ids('dup___v1'), [7]);
      assert.deepEqual(ids('up'), []);
      assert.deepEqual(btf.byName('dup', 'struct').map((t) => t.id), [3]);
    };
    expect(); // found by searching the string text
    assert.deepEqual(typeIdsNamed(btf, ['ydup', 'dup'], true), new Map([['ydup', [6]], ['dup', [2, 3, 4, 7]]]));
    for (let i = 0; i < 70; i++) assert.deepEqual(ids(`missing${i}`), []);
    expect(); // found through the hash of every name
  }
});

test('split BTF: byName and name fragments find own types named by base string offsets', () => {
  const baseRaw = new RawBtf();
  baseRaw.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  baseRaw.type('thing___v1', BTF_KIND.STRUCT, 0, false, 0); // 2
  const baseBlob = baseRaw.bytes();
  const base = Btf.parse(baseBlob);
  const baseStrLen = new DataView(baseBlob.buffer).getUint32(20, true);
  const own = Buffer.from('thing___v2\0');
  const words = [
    5, BTF_KIND.TYPEDEF << 24, 1, // 3: typedef thing___v1 (the base's string at offset 5)
    baseStrLen, BTF_KIND.STRUCT << 24, 0, // 4: thing___v2
    1, BTF_KIND.TYPEDEF << 24, 1, // 5: "int", from the base
  ];
  const blob = new Uint8Array(24 + words.length * 4 + own.length);
  const v = new DataView(blob.buffer);
  v.setUint16(0, 0xeb9f, true); v.setUint8(2, 1); v.setUint32(4, 24, true);
  v.setUint32(12, words.length * 4, true); v.setUint32(16, words.length * 4, true); v.setUint32(20, own.length, true);
  words.forEach((w, i) => v.setUint32(24 + i * 4, w, true));
  blob.set(own, 24 + words.length * 4);
  const split = Btf.parse(blob, { base });
  assert.equal(split.type(3).name, 'thing___v1');
  assert.deepEqual(split.byName('thing___v1').map((t) => t.id), [2, 3]);
  assert.deepEqual(split.byName('int').map((t) => t.id), [1, 5]);
  assert.deepEqual(typeIdsNamed(split, ['thing'], true).get('thing'), [2, 3, 4]);
  assert.deepEqual(typeIdsNamed(split, ['thing___v2']).get('thing___v2'), [4]);
  assert.deepEqual(typeIdsNamed(split, ['thing___v1', 'int']), new Map([['thing___v1', [2, 3]], ['int', [1, 5]]]));
  assert.equal(typeIdsNamed(split, ['nope'], true).size, 0);
});

test('typeIdsNamed: parsed and built BTF agree, names taken from inside other strings included', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  b.type('task_struct___a', BTF_KIND.STRUCT, 0, false, 0); // 2
  b.type('task_struct', BTF_KIND.STRUCT, 0, false, 0); // 3
  b.words.push(b.str('x___y') + 1, BTF_KIND.TYPEDEF << 24, 1); // 4: "___y"
  b.words.push(b.str('m___n') + 3, BTF_KIND.TYPEDEF << 24, 1); // 5: "_n", no "___"
  b.type('ü___ß', BTF_KIND.TYPEDEF, 0, false, 1); // 6
  const parsed = Btf.parse(b.bytes());
  const built = Btf.fromTypes(parsed.types);
  for (const btf of [parsed, built]) {
    assert.deepEqual(typeIdsNamed(btf, ['task_struct', '___y', '_n', 'ü'], true), new Map([['task_struct', [2, 3]], ['___y', [4]], ['_n', [5]], ['ü', [6]]]));
    assert.deepEqual(typeIdsNamed(btf, ['task', 'x', 'ü___ß']), new Map([['ü___ß', [6]]]));
  }
});


test('references are checked whichever way they point: forward, backward, into the base', () => {
  const ok = new RawBtf();
  ok.type('f', BTF_KIND.FUNC, 1, false, 3); // 1: func before its proto
  ok.type('.data', BTF_KIND.DATASEC, 1, false, 4, 4, 0, 4); // 2: var after the datasec
  ok.type('', BTF_KIND.FUNC_PROTO, 0, false, 0); // 3
  ok.type('v', BTF_KIND.VAR, 0, false, 5, 1); // 4
  ok.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 5
  ok.type('tag', BTF_KIND.DECL_TAG, 0, false, 7, 1); // 6: member 1 of a struct further on
  ok.type('s', BTF_KIND.STRUCT, 2, false, 8, ok.str('a'), 5, 0, ok.str('b'), 5, 32); // 7
  const btf = Btf.parse(ok.bytes());
  assert.equal(btf.typeName(1), 'void f(void)');
  for (const [build, what] of [
    [(b: RawBtf) => { b.type('f', BTF_KIND.FUNC, 0, false, 2); b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); }, /func_proto/],
    [(b: RawBtf) => { b.type('.d', BTF_KIND.DATASEC, 1, false, 4, 2, 0, 4); b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); }, /not a var/],
    [(b: RawBtf) => { b.type('t', BTF_KIND.DECL_TAG, 0, false, 2, 1); b.type('s', BTF_KIND.STRUCT, 0, false, 0); }, /component_idx 1/],
    [(b: RawBtf) => { b.type('f', BTF_KIND.FUNC, 0, false, 9); }, /type 9, which does not exist/],
  ] as const) {
    const b = new RawBtf();
    build(b);
    throwsBtf(() => Btf.parse(b.bytes()), what);
  }
  // Split BTF: a func may use the base's func_proto, not its int.
  const base = Btf.parse(ok.bytes());
  const splitFunc = (target: number): Uint8Array => {
    const b = new RawBtf();
    b.words.push(0, BTF_KIND.FUNC << 24, target);
    return b.bytes({ strings: new Uint8Array(0) });
  };
  assert.equal(Btf.parse(splitFunc(3), { base }).type(8).kind, 'func');
  throwsBtf(() => Btf.parse(splitFunc(5), { base }), /func_proto/);
});

test('marshal after withTypes copies the records of untouched types and encodes the rest', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  const second = b.str('x') + 2; // the next string appended starts here: a second "x"
  b.str('x\0x');
  b.words.push(second, BTF_KIND.TYPEDEF << 24, 1); // 2: typedef x, named by the second copy of "x"
  b.type('s', BTF_KIND.STRUCT, 1, false, 4, b.str('m'), 1, 0); // 3
  const blob = b.bytes();
  const parsed = Btf.parse(blob);
  assert.equal(parsed.type(2).name, 'x');
  const changed = parsed.withTypes([parsed.type(0), parsed.type(1), parsed.type(2), { ...(parsed.type(3) as BtfStruct), size: 8 }]);
  const again = changed.withTypes(changed.types);
  for (const btf of [changed, again]) {
    const out = btf.marshal({ littleEndian: true });
    const v = new DataView(out.buffer, out.byteOffset);
    // Types 1 and 2 are the original words, string offset of the second "x" included.
    assert.deepEqual(out.subarray(24, 24 + 28), blob.subarray(24, 24 + 28));
    assert.equal(v.getUint32(24 + 16, true), second);
    // Type 3 was encoded anew.
    assert.equal(v.getUint32(24 + 28 + 8, true), 8);
    assert.deepEqual(Btf.parse(out).types, btf.types);
    assert.deepEqual(Btf.parse(btf.marshal({ littleEndian: false })).types, btf.types);
  }
});

test('marshal re-encodes parsed records carrying bits the model drops, and copies the rest', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  b.type('', BTF_KIND.ARRAY, 0, false, 7, 1, 1, 4); // 2: size word 7 (ignored)
  const odd = Btf.parse(b.bytes());
  const out = odd.marshal({ littleEndian: true });
  assert.equal(new DataView(out.buffer, out.byteOffset).getUint32(24 + 16 + 8, true), 0);
  assert.deepEqual(Btf.parse(out).types, odd.types);
  const clean = everyKindBlob(false);
  assert.deepEqual(Btf.parse(clean).marshal({ littleEndian: false }), clean);
});

// --- the running kernel's BTF ------------------------------------------------------------------

const VMLINUX = '/sys/kernel/btf/vmlinux';

async function readable(path: string): Promise<boolean> {
  try {
    await access(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

test('kernel vmlinux BTF: task_struct has pid; marshal reproduces the file', async (t) => {
  if (!(await readable(VMLINUX))) {
    t.skip(`${VMLINUX} is not readable`);
    return;
  }
  const raw = await readFile(VMLINUX);
  const started = performance.now();
  const btf = Btf.parse(raw);
  const elapsed = performance.now() - started;
  t.diagnostic(`parsed ${btf.length} types from ${raw.length} bytes in ${elapsed.toFixed(1)} ms`);

  const [task] = btf.byName('task_struct', 'struct');
  assert.ok(task && task.kind === 'struct');
  const pid = task.members.find((m) => m.name === 'pid');
  assert.ok(pid, 'task_struct.pid');
  assert.equal(btf.typeName(btf.resolve(pid.type).id), 'int');
  assert.equal(btf.sizeof(pid.type), 4);
  const comm = task.members.find((m) => m.name === 'comm');
  assert.ok(comm);
  assert.match(btf.typeName(comm.type), /^char\[\d+\]$/);
  assert.equal(btf.typeName(task.id), 'struct task_struct');
  assert.ok(btf.sizeof(task.id) > 1000);

  // The kernel's blob is already in the layout marshal writes, so it must come back byte for byte.
  const out = btf.marshal({ littleEndian: btf.littleEndian });
  assert.ok(Buffer.compare(Buffer.from(out.buffer, out.byteOffset, out.byteLength), raw) === 0, 'marshal(vmlinux) differs from vmlinux');

  const loaded = await Btf.loadKernel();
  assert.equal(loaded.length, btf.length);
});

test('typeIdsNamed: exact names and name___flavor, one walk, parsed (one-byte, non-ASCII) and built alike (split BTF: above)', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  b.type('task_struct___a', BTF_KIND.STRUCT, 0, false, 0); // 2
  b.type('task_struct', BTF_KIND.STRUCT, 0, false, 0); // 3
  b.type('task_struct_x', BTF_KIND.STRUCT, 0, false, 0); // 4: a prefix only
  b.type('task_struct', BTF_KIND.TYPEDEF, 0, false, 3); // 5: the name twice
  b.type('u', BTF_KIND.TYPEDEF, 0, false, 1); // 6: one byte
  b.type('u___v', BTF_KIND.TYPEDEF, 0, false, 1); // 7
  b.type('uu', BTF_KIND.TYPEDEF, 0, false, 1); // 8
  b.type('ü', BTF_KIND.TYPEDEF, 0, false, 1); // 9: two UTF-8 bytes
  b.type('task_struct__b', BTF_KIND.TYPEDEF, 0, false, 1); // 10: two underscores, no flavor
  const parsed = Btf.parse(b.bytes());
  const built = Btf.fromTypes(parsed.types);
  for (const btf of [parsed, Btf.parseKernel(b.bytes()), built]) {
    const flav = typeIdsNamed(btf, ['task_struct', 'u', 'ü', 'nope', 'task_struct'], true);
    assert.deepEqual([...flav.entries()].sort(), [['task_struct', [2, 3, 5]], ['u', [6, 7]], ['ü', [9]]]);
    const exact = typeIdsNamed(btf, ['task_struct', 'u', 'uu', 'int']);
    assert.deepEqual([...exact.entries()].sort(), [['int', [1]], ['task_struct', [3, 5]], ['u', [6]], ['uu', [8]]]);
    assert.deepEqual(typeIdsNamed(btf, []).size, 0);
  }
});

test('kindOf reads a kind without decoding; withRecordsReplaced rewrites func linkage and datasec layout in place', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  b.type('', BTF_KIND.FUNC_PROTO, 0, false, 1); // 2
  b.type('f', BTF_KIND.FUNC, 1, false, 2); // 3: global
  b.type('v', BTF_KIND.VAR, 0, false, 1, 1); // 4
  b.type('w', BTF_KIND.VAR, 0, false, 1, 1); // 5
  b.type('.data', BTF_KIND.DATASEC, 2, false, 0, 4, 0, 4, 5, 0, 4); // 6: size and offsets left at 0, as clang does
  const btf = Btf.parse(b.bytes());
  assert.deepEqual([0, 1, 2, 3, 6].map((id) => kindOf(btf, id)), ['void', 'int', 'func_proto', 'func', 'datasec']);
  assert.throws(() => kindOf(btf, 7), BtfError);
  const sec = btf.type(6);
  const f = btf.type(3);
  assert.ok(sec.kind === 'datasec' && f.kind === 'func');
  const fixed = withRecordsReplaced(btf, new Map<number, BtfType>([
    [3, { ...f, linkage: 'static' }],
    [6, { ...sec, size: 8, vars: [sec.vars[0]!, { ...sec.vars[1]!, offset: 4 }] }],
  ]));
  fixed.validate();
  assert.deepEqual(fixed.type(3), { ...f, linkage: 'static' });
  assert.deepEqual(fixed.type(6), { ...sec, size: 8, vars: [sec.vars[0], { ...sec.vars[1], offset: 4 }] });
  assert.deepEqual(btf.type(6), sec, 'the original is untouched');
  // Written back as rewritten, and the same as withTypes would give.
  const again = Btf.parse(fixed.marshal());
  assert.deepEqual(again.types, btf.withTypes(fixed.types).types);
  const bad = (m: Map<number, BtfType>, re: RegExp) => assert.throws(() => withRecordsReplaced(btf, m), (e: unknown) => e instanceof BtfError && re.test(e.message));
  bad(new Map([[1, { ...btf.type(1) }]]), /only func and datasec/);
  bad(new Map([[3, { ...sec, id: 3 }]]), /is a func; its replacement must be one too/);
  bad(new Map([[6, { ...sec, vars: [] }]]), /number of variables/);
  bad(new Map([[6, { ...sec, name: '.bss' }]]), /keeps its name/);
  bad(new Map([[9, { ...sec, id: 9 }]]), /not one of this BTF's own types/);
  assert.throws(() => withRecordsReplaced(Btf.fromTypes(btf.types), new Map()), /only parsed BTF/);
  // A section whose variable now overruns it fails validation of the rewritten records.
  assert.throws(() => withRecordsReplaced(btf, new Map([[6, { ...sec, size: 4, vars: [sec.vars[0]!, { ...sec.vars[1]!, offset: 4 }] }]])).validate(), BtfError);
});

test('parseRunningKernelBtf decodes without re-running the per-type checks, which validate() still runs', () => {
  const b = new RawBtf();
  b.type('int', BTF_KIND.INT, 0, false, 4, intEnc(1, 0, 32)); // 1
  b.type('loop', BTF_KIND.STRUCT, 1, false, 4, b.str('self'), 2, 0); // 2: contains itself by value
  const blob = b.bytes();
  const padded = new Uint8Array(blob.length + 8);
  padded.set(blob);
  assert.throws(() => Btf.parseKernel(blob).type(2), /contains itself/);
  const k = parseRunningKernelBtf(padded.subarray(0, blob.length));
  assert.equal(k.type(2).name, 'loop');
  assert.throws(() => k.validate(), /contains itself/);
});

test('parseRunningKernelBtf and parseKernel agree on the running kernel\'s vmlinux BTF; typeIdsNamed agrees with byName', { skip: existsSync('/sys/kernel/btf/vmlinux') ? false : 'no /sys/kernel/btf/vmlinux' }, () => {
  const bytes = readFileSync('/sys/kernel/btf/vmlinux');
  const checked = Btf.parseKernel(bytes);
  const k = parseRunningKernelBtf(new Uint8Array(readFileSync('/sys/kernel/btf/vmlinux')));
  assert.equal(k.length, checked.length);
  for (let id = 0; id < k.length; id += 101) assert.deepEqual(k.type(id), checked.type(id), `type ${id}`);
  const names = ['task_struct', 'file', 'u8', 'sk_buff', 'bpf_map', 'pt_regs', 'no_such_type_here'];
  const found = typeIdsNamed(k, names);
  for (const n of names) assert.deepEqual(found.get(n) ?? [], checked.byName(n).map((t) => t.id), n);
});
