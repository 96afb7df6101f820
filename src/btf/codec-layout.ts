/**
 * The codec layout pass: where each member of a struct or union lives, computed once from BTF and
 * handed to the two back ends that turn it into code, `codecFor` (closures at run time,
 * src/btf/codec.ts) and the code generator (TypeScript text, src/gen/codec-emit.ts). The rules are
 * C's as the kernel lays it out:
 * - a member's bit offset comes from BTF; without kind_flag an int whose encoding is narrower than
 *   its storage is a bitfield, and an integer at an unaligned bit offset is a full-width bitfield;
 * - unnamed bitfields are padding and are skipped;
 * - anonymous struct and union members become nested groups (their members are flattened into the
 *   enclosing object by both back ends); other unnamed members are skipped;
 * - every member must lie inside the object, and non-bitfield members on a byte boundary.
 * Offsets in the plan are relative to the enclosing group, so a group can be placed anywhere.
 */
import { BtfError } from '../errors.js';
import type { BtfEnum, BtfInt, BtfStruct, BtfType } from './types.js';

/** A bitfield's JavaScript representation, from its declared type. */
export type BitfieldRepr = 'number' | 'bigint' | 'boolean';

export interface FieldPlan<F> {
  readonly kind: 'field';
  readonly name: string;
  /** Byte offset in the enclosing group. */
  readonly offset: number;
  /** The member's type id (before typedefs). */
  readonly type: number;
  /** What the back end built for the member's type. */
  readonly value: F;
}

export interface BitfieldPlan {
  readonly kind: 'bitfield';
  readonly name: string;
  /** Bit offset in the enclosing group, as BTF counts it. */
  readonly bitOffset: number;
  readonly bits: number;
  readonly type: number;
  readonly repr: BitfieldRepr;
  readonly signed: boolean;
  /** The enum behind an enum bitfield (its names are accepted when encoding). */
  readonly enumType: BtfEnum | undefined;
}

export interface GroupPlan<F> {
  readonly kind: 'group';
  /** Byte offset of the group in its parent (0 for the outermost). */
  readonly offset: number;
  readonly union: boolean;
  /** "struct foo" / "union (anon)": how messages name it. */
  readonly label: string;
  readonly parts: readonly PartPlan<F>[];
}

export type PartPlan<F> = FieldPlan<F> | BitfieldPlan | GroupPlan<F>;

/** What a back end supplies to the pass. */
export interface LayoutHooks<F> {
  /** Skips typedefs and qualifiers (with the back end's own checks and messages). */
  resolve(id: number): BtfType;
  /** A C-like name of a type for messages. */
  display(id: number): string;
  /** Builds the back end's value for a named member's type and says how many bytes it takes. */
  field(id: number): { readonly value: F; readonly size: number };
}

/** The layout of the members of `t`, as one group at `offset` in its parent. */
export function planMembers<F>(t: BtfStruct, label: string, hooks: LayoutHooks<F>, offset = 0): GroupPlan<F> {
  const parts: PartPlan<F>[] = [];
  for (const m of t.members) {
    const rt = hooks.resolve(m.type);
    let bitOff = m.bitOffset;
    let bits = m.bitfieldSize;
    // Without kind_flag, a bitfield is an int member whose encoding narrows it.
    if (bits === 0 && rt.kind === 'int' && (rt.bitOffset !== 0 || rt.bits !== rt.size * 8)) {
      bitOff += rt.bitOffset;
      bits = rt.bits;
    }
    if (bits === 0 && bitOff % 8 !== 0 && (rt.kind === 'int' || rt.kind === 'enum' || rt.kind === 'enum64')) {
      bits = rt.size * 8; // an unaligned whole integer (packed oddities): a full-width bitfield
    }
    const where = `${label}${m.name ? ` member "${m.name}"` : ' anonymous member'}`;
    if (bits > 0) {
      if (!m.name) continue; // unnamed bitfields are padding
      if (bitOff + bits > t.size * 8) throw new BtfError(`${where} extends past the end (${t.size} bytes)`);
      let repr: BitfieldRepr;
      if (rt.kind === 'int') repr = rt.bool ? 'boolean' : rt.size >= 8 ? 'bigint' : 'number';
      else if (rt.kind === 'enum' || rt.kind === 'enum64') repr = rt.kind === 'enum64' || rt.size >= 8 ? 'bigint' : 'number';
      else throw new BtfError(`${label}: bitfield member "${m.name}" has type ${hooks.display(m.type)}, not an integer or enum`);
      parts.push({
        kind: 'bitfield', name: m.name, bitOffset: bitOff, bits, type: m.type, repr, signed: rt.signed,
        enumType: rt.kind === 'int' ? undefined : rt,
      });
      continue;
    }
    if (bitOff % 8 !== 0) throw new BtfError(`${where} is not byte-aligned (bit offset ${bitOff})`);
    const off = bitOff / 8;
    if (!m.name) {
      if (rt.kind === 'struct' || rt.kind === 'union') {
        if (off + rt.size > t.size) throw new BtfError(`${where} extends past the end (${t.size} bytes)`);
        parts.push(planMembers(rt, `${rt.kind} ${rt.name || '(anon)'}`, hooks, off));
      }
      continue;
    }
    const { value, size } = hooks.field(m.type);
    if (off + size > t.size) throw new BtfError(`${where} extends past the end (${t.size} bytes)`);
    parts.push({ kind: 'field', name: m.name, offset: off, type: m.type, value });
  }
  return { kind: 'group', offset, union: t.kind === 'union', label, parts };
}

/**
 * Where a bitfield's bits are: `span` bytes from byte `start`, read as one unsigned integer in
 * the target's byte order, then shifted right by `shiftLE` (little-endian targets) or `shiftBE`
 * (big-endian) and masked. BTF counts a bitfield's offset from the least significant bit of each
 * byte on little-endian targets and from the most significant on big-endian ones.
 */
export function bitfieldPlacement(bitOffset: number, bits: number): { start: number; span: number; shiftLE: number; shiftBE: number } {
  const start = Math.floor(bitOffset / 8);
  const inner = bitOffset % 8;
  const span = Math.ceil((inner + bits) / 8);
  return { start, span, shiftLE: inner, shiftBE: span * 8 - inner - bits };
}

/**
 * Whether an array of this (resolved) element type surfaces as a Uint8Array: arrays of one-byte
 * integers other than _Bool (char comm[16], __u8 addr[6]); other arrays are JS arrays.
 */
export function isByteArrayElement(el: BtfType): el is BtfInt {
  return el.kind === 'int' && el.size === 1 && !el.bool;
}
