/**
 * The codec layout pass on its own: the plan both back ends (codecFor and the code emitter) are
 * built from. Offsets are worked out by hand from the C rules; the two back ends are then checked
 * to agree on the same bytes through it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bitfieldPlacement, planMembers, type GroupPlan, type LayoutHooks } from '../../src/btf/codec-layout.js';
import { codecFor } from '../../src/btf/codec.js';
import type { BtfStruct, BtfType } from '../../src/btf/types.js';
import { BtfBuilder } from '../helpers/btf-builder.js';

const b = new BtfBuilder();
const u8 = b.int('unsigned char', 1, false);
const u16 = b.int('unsigned short', 2, false);
const u32 = b.int('unsigned int', 4, false);
const color = b.enum('enum', 'color', 4, false, [['RED', 0n], ['BLUE', 2n]]);
// Without kind_flag: an int whose encoding is 3 bits at bit 2 of its storage.
const narrow = b.int('unsigned int', 4, false, { bits: 3, bitOffset: 2 });
// union { u32 word; struct { u16 lo: 4; enum color c: 2; }; }  (the struct's bitfields at 0 and 4)
const bits = b.struct('struct', '', 4, [['lo', u16, 0, 4], ['c', color, 4, 2], ['', u8, 6, 2]]);
const alt = b.struct('union', '', 4, [['word', u32, 0], ['', bits, 0]]);
// struct s { u8 tag; <pad>; union alt@32; unsigned int n:3 (narrow int)@64 ; u16 tail@96 }
const s = b.struct('struct', 's', 14, [['tag', u8, 0], ['', alt, 32], ['n', narrow, 64], ['tail', u16, 96]], false);
const btf = b.build();

const hooks: LayoutHooks<number> = {
  resolve: (id) => btf.resolve(id) as BtfType,
  display: (id) => btf.typeName(id),
  field: (id) => ({ value: id, size: btf.sizeof(id) }),
};

describe('codec layout pass', () => {
  it('plans fields, groups at relative offsets, narrowed ints and enum bitfields, and skips padding', () => {
    const plan = planMembers(btf.type(s) as BtfStruct, 'struct s', hooks);
    assert.equal(plan.offset, 0);
    assert.equal(plan.union, false);
    const [tag, group, n, tail, ...rest] = plan.parts;
    assert.equal(rest.length, 0);
    assert.deepEqual(tag, { kind: 'field', name: 'tag', offset: 0, type: u8, value: u8 });
    assert.equal(group?.kind, 'group');
    const g = group as GroupPlan<number>;
    assert.equal(g.offset, 4);
    assert.equal(g.union, true);
    assert.deepEqual(g.parts[0], { kind: 'field', name: 'word', offset: 0, type: u32, value: u32 });
    const inner = g.parts[1] as GroupPlan<number>;
    assert.equal(inner.kind, 'group');
    assert.equal(inner.offset, 0, 'relative to the union, not to struct s');
    assert.equal(inner.parts.length, 2, 'the unnamed bitfield is padding');
    assert.equal(inner.parts[0]!.kind, 'bitfield');
    assert.deepEqual({ ...inner.parts[1]!, enumType: undefined }, { kind: 'bitfield', name: 'c', bitOffset: 4, bits: 2, type: color, repr: 'number', signed: false, enumType: undefined });
    assert.equal((inner.parts[1] as { enumType?: { name: string } }).enumType?.name, 'color');
    assert.deepEqual(n, { kind: 'bitfield', name: 'n', bitOffset: 66, bits: 3, type: narrow, repr: 'number', signed: false, enumType: undefined });
    assert.deepEqual(tail, { kind: 'field', name: 'tail', offset: 12, type: u16, value: u16 });
  });

  it('places bitfield bits for either byte order', () => {
    assert.deepEqual(bitfieldPlacement(66, 3), { start: 8, span: 1, shiftLE: 2, shiftBE: 3 });
    assert.deepEqual(bitfieldPlacement(4, 12), { start: 0, span: 2, shiftLE: 4, shiftBE: 0 });
  });

  it('refuses members past the end and unaligned non-integers, naming them', () => {
    const big = b.struct('struct', 'big', 2, [['x', u32, 0]]);
    const odd = b.struct('struct', 'odd', 8, [['y', big, 4]]);
    const btf2 = b.build();
    const h: LayoutHooks<number> = { ...hooks, resolve: (id) => btf2.resolve(id), field: (id) => ({ value: id, size: btf2.sizeof(id) }) };
    assert.throws(() => planMembers(btf2.type(big) as BtfStruct, 'struct big', h), /struct big member "x" extends past the end \(2 bytes\)/);
    assert.throws(() => planMembers(btf2.type(odd) as BtfStruct, 'struct odd', h), /struct odd member "y" is not byte-aligned \(bit offset 4\)/);
  });

  it('codecFor reads what the plan says: the narrowed int at bit 66, the enum bitfield inside the anonymous union', () => {
    const c = codecFor(btf, s);
    const bytes = new Uint8Array(14);
    bytes[0] = 7;
    bytes[4] = 0b0010_0101; // lo = 5, c = 2 (BLUE)
    bytes[8] = 0b0001_0100; // n = 5 at bits 2..4
    bytes[12] = 0x34; bytes[13] = 0x12;
    assert.deepEqual(c.decode(bytes), { tag: 7, word: 0x25, lo: 5, c: 2, n: 5, tail: 0x1234 });
  });
});
