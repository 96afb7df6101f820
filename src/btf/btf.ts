/**
 * `.BTF`, the kernel's BPF Type Format, read from bytes and written back. `Btf.parse` decodes a
 * blob (a clang-built object's `.BTF` section, or the kernel's own `/sys/kernel/btf/*`) into the
 * id-indexed type model of `types.ts`, checking every length, offset, string and type reference so
 * that garbage ends in a `BtfError` rather than a hang or a RangeError. `marshal` writes the model
 * back in the layout `BPF_BTF_LOAD` takes; a parsed blob's string table is kept verbatim as the
 * prefix of the new one, because `.BTF.ext` line_info records point into it by offset. Split BTF
 * (a kernel module's types on top of vmlinux) continues the base's type ids and string offsets.
 * Nothing here talks to the kernel.
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { BtfError } from '../errors.js';
import { BTF_KIND } from './types.js';
import type {
  BtfArray, BtfDatasec, BtfDeclTag, BtfEnum, BtfFloat, BtfFunc, BtfFuncProto, BtfFwd, BtfInt,
  BtfKindName, BtfMember, BtfPtr, BtfQualifier, BtfStruct, BtfType, BtfVar, BtfVoid, Linkage,
} from './types.js';

const BTF_MAGIC = 0xeb9f;
const BTF_VERSION = 1;
/** sizeof(struct btf_header) */
const BTF_HEADER_LEN = 24;
/** sizeof(struct btf_type) */
const BTF_TYPE_LEN = 12;
const BTF_MAX_TYPE = 0x000fffff;
const BTF_MAX_NAME_OFFSET = 0x00ffffff;
const BTF_MAX_VLEN = 0xffff;
/** Bits 16-23 and 29-30 of btf_type.info are unused; the kernel rejects them set. */
const BTF_INFO_RESERVED = 0x60ff0000;
/** Bits of the BTF_KIND_INT encoding word outside BTF_INT_ENCODING/OFFSET/BITS. */
const BTF_INT_RESERVED = 0xf000ff00;
const BTF_INT_SIGNED = 1 << 0;
const BTF_INT_CHAR = 1 << 1;
const BTF_INT_BOOL = 1 << 2;
/** Size of a pointer on the BPF target. */
const BPF_PTR_SIZE = 8;
/** Deepest nesting alignof/typeName follow before giving up; real types nest a few levels. */
const MAX_NESTING = 1024;

const INT_SIZES: readonly number[] = [1, 2, 4, 8, 16];
const ENUM_SIZES: readonly number[] = [1, 2, 4, 8];
const FLOAT_SIZES: readonly number[] = [2, 4, 8, 12, 16];

const HOST_LITTLE_ENDIAN = endianness() === 'LE';

const VOID: BtfVoid = Object.freeze({ kind: 'void', id: 0, name: '' });

const LINKAGES: readonly Linkage[] = ['static', 'global', 'extern'];

const KIND_NAMES: Readonly<Record<number, BtfKindName>> = {
  [BTF_KIND.INT]: 'int', [BTF_KIND.PTR]: 'ptr', [BTF_KIND.ARRAY]: 'array',
  [BTF_KIND.STRUCT]: 'struct', [BTF_KIND.UNION]: 'union', [BTF_KIND.ENUM]: 'enum',
  [BTF_KIND.FWD]: 'fwd', [BTF_KIND.TYPEDEF]: 'typedef', [BTF_KIND.VOLATILE]: 'volatile',
  [BTF_KIND.CONST]: 'const', [BTF_KIND.RESTRICT]: 'restrict', [BTF_KIND.FUNC]: 'func',
  [BTF_KIND.FUNC_PROTO]: 'func_proto', [BTF_KIND.VAR]: 'var', [BTF_KIND.DATASEC]: 'datasec',
  [BTF_KIND.FLOAT]: 'float', [BTF_KIND.DECL_TAG]: 'decl_tag', [BTF_KIND.TYPE_TAG]: 'type_tag',
  [BTF_KIND.ENUM64]: 'enum64',
};

/**
 * decl_tag and type_tag records whose kind_flag is set: the name is a whole
 * `__attribute__((...))` rather than a btf_decl_tag/btf_type_tag string (Linux 6.14+, e.g.
 * `address_space(1)` in vmlinux). The type model has no field for it, so parse remembers such
 * objects here and marshal writes the bit back for them.
 */
const attributeTags = new WeakSet<BtfType>();

/** True for a decl_tag/type_tag parsed with kind_flag set (an attribute tag; older kernels reject it). */
export function isAttributeTag(type: BtfType): boolean {
  return attributeTags.has(type);
}

// ---------------------------------------------------------------------------------------------
// String table
// ---------------------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * One string section. `start` is the offset of its first byte as seen by type records: 0 for
 * ordinary BTF, the base's end for split BTF. The bytes always end in NUL (checked by the
 * constructor's callers), so every in-range offset is terminated. Decoding the section once as
 * latin1 and slicing it is several times faster than a TextDecoder call per name, and exact for
 * ASCII, which kernel and C identifiers are; a name with other bytes (source lines in line_info
 * may carry UTF-8) is decoded properly on its own.
 */
class StringTable {
  /** The whole section decoded as latin1: fast indexOf/slice for the common all-ASCII names. */
  private readonly text: string;
  private readonly ascii: boolean;
  private index: Map<string, number> | undefined;

  constructor(readonly bytes: Uint8Array, readonly start: number, readonly base: StringTable | undefined) {
    this.text = latin1(bytes);
    this.ascii = !NON_ASCII.test(this.text);
  }

  get end(): number {
    return this.start + this.bytes.length;
  }

  /** The string at `offset`, or undefined when the offset is outside every table. */
  lookup(offset: number): string | undefined {
    if (offset < this.start) return this.base?.lookup(offset);
    const local = offset - this.start;
    if (local >= this.bytes.length) return undefined;
    const end = this.text.indexOf('\0', local);
    const s = this.text.slice(local, end);
    if (this.ascii || !NON_ASCII.test(s)) return s;
    return utf8.decode(this.bytes.subarray(local, end));
  }

  /** Offset of the first string equal to `s` in this table alone, built once on first use. */
  find(s: string): number | undefined {
    if (this.index === undefined) this.index = this.buildIndex();
    return this.index.get(s);
  }

  private buildIndex(): Map<string, number> {
    const index = new Map<string, number>();
    let local = 0;
    while (local < this.bytes.length) {
      const end = this.text.indexOf('\0', local);
      const s = this.lookup(this.start + local)!;
      if (!index.has(s)) index.set(s, this.start + local);
      local = end + 1;
    }
    return index;
  }
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * Each Btf's string section, kept out of the class so the table type stays private to this
 * module; `withTypes` results and split BTF built on top share it.
 */
const stringTables = new WeakMap<Btf, StringTable>();

function tableOf(btf: Btf): StringTable {
  return stringTables.get(btf)!;
}

/** A fresh table: "\0" for standalone BTF (offset 0 must be the empty name), empty for split. */
function emptyStrings(base: Btf | undefined): StringTable {
  const baseTable = base && tableOf(base);
  return new StringTable(baseTable ? new Uint8Array(0) : new Uint8Array(1), baseTable?.end ?? 0, baseTable);
}

// ---------------------------------------------------------------------------------------------
// btf_header
// ---------------------------------------------------------------------------------------------

interface BtfHeader {
  readonly littleEndian: boolean;
  /** Absolute byte ranges of the type and string sections within the blob. */
  readonly typeStart: number; readonly typeEnd: number;
  readonly strStart: number; readonly strEnd: number;
}

function readHeader(bytes: Uint8Array, view: DataView): BtfHeader {
  if (bytes.length < 8) throw new BtfError(`BTF blob is ${bytes.length} bytes, too short for a btf_header`);
  const littleEndian = byteOrder(view.getUint16(0, true), 'BTF');
  const version = view.getUint8(2);
  if (version !== BTF_VERSION) throw new BtfError(`unsupported BTF version ${version} (expected ${BTF_VERSION})`);
  const flags = view.getUint8(3);
  if (flags !== 0) throw new BtfError(`unsupported BTF header flags 0x${flags.toString(16)}`);
  const hdrLen = view.getUint32(4, littleEndian);
  if (hdrLen < BTF_HEADER_LEN) throw new BtfError(`BTF hdr_len ${hdrLen} is smaller than btf_header (${BTF_HEADER_LEN})`);
  if (hdrLen > bytes.length) throw new BtfError(`BTF hdr_len ${hdrLen} exceeds the blob (${bytes.length} bytes)`);
  const typeOff = view.getUint32(8, littleEndian);
  const typeLen = view.getUint32(12, littleEndian);
  const strOff = view.getUint32(16, littleEndian);
  const strLen = view.getUint32(20, littleEndian);
  const typeStart = hdrLen + typeOff;
  const strStart = hdrLen + strOff;
  checkSection(bytes, 'type', typeStart, typeLen);
  checkSection(bytes, 'string', strStart, strLen);
  if (typeOff % 4 !== 0) throw new BtfError(`BTF type_off ${typeOff} is not 4-byte aligned`);
  if (typeLen > 0 && strLen > 0 && typeStart < strStart + strLen && strStart < typeStart + typeLen) {
    throw new BtfError('BTF type and string sections overlap');
  }
  return { littleEndian, typeStart, typeEnd: typeStart + typeLen, strStart, strEnd: strStart + strLen };
}

/** The byte order a blob's magic announces; `what` names the section in the error. */
function byteOrder(magicReadLittleEndian: number, what: string): boolean {
  if (magicReadLittleEndian === BTF_MAGIC) return true;
  if (magicReadLittleEndian === 0x9feb) return false;
  throw new BtfError(`bad ${what} magic 0x${magicReadLittleEndian.toString(16).padStart(4, '0')} (expected 0xeb9f)`);
}

function checkSection(bytes: Uint8Array, what: string, start: number, len: number): void {
  if (start + len > bytes.length) {
    throw new BtfError(`BTF ${what} section [${start}, ${start + len}) is outside the ${bytes.length}-byte blob`);
  }
}

function readStrings(bytes: Uint8Array, h: BtfHeader, base: Btf | undefined): StringTable {
  const own = bytes.subarray(h.strStart, h.strEnd);
  if (own.length > BTF_MAX_NAME_OFFSET) throw new BtfError(`BTF string section is ${own.length} bytes, over the kernel's limit`);
  if (base === undefined && (own.length === 0 || own[0] !== 0)) {
    throw new BtfError('BTF string section must start with an empty string (NUL byte)');
  }
  if (own.length > 0 && own[own.length - 1] !== 0) throw new BtfError('BTF string section is not NUL-terminated');
  const baseTable = base && tableOf(base);
  // Copy so the Btf does not pin (or see later writes to) the caller's buffer.
  return new StringTable(own.slice(), baseTable?.end ?? 0, baseTable);
}

// ---------------------------------------------------------------------------------------------
// Type section decoding
// ---------------------------------------------------------------------------------------------

/** The common btf_type fields of the record being decoded. */
interface RawType {
  readonly id: number; readonly kind: number; readonly name: string;
  readonly vlen: number; readonly kindFlag: boolean;
  /** The size/type union. */
  readonly sizeOrType: number;
}

/** Cursor over the type section; `id` is the id of the record under the cursor. */
class TypeReader {
  pos: number;
  id: number;

  constructor(
    private readonly view: DataView, private readonly le: boolean,
    start: number, readonly end: number, firstId: number, private readonly strings: StringTable,
  ) {
    this.pos = start;
    this.id = firstId;
  }

  u32(at: number): number { return this.view.getUint32(at, this.le); }
  s32(at: number): number { return this.view.getInt32(at, this.le); }

  /** Throws unless `n` more bytes of the type section remain. */
  need(n: number, what: string): void {
    if (this.end - this.pos < n) {
      throw new BtfError(`BTF type ${this.id}: ${what} truncated (needs ${n} bytes, ${this.end - this.pos} left in the type section)`);
    }
  }

  name(offset: number, what = 'name'): string {
    const s = this.strings.lookup(offset);
    if (s === undefined) throw this.fail(`${what} offset ${offset} is outside the string section`);
    return s;
  }

  fail(message: string): BtfError {
    return new BtfError(`BTF type ${this.id}: ${message}`);
  }
}

function decodeTypes(r: TypeReader): BtfType[] {
  const out: BtfType[] = [];
  while (r.pos < r.end) {
    if (r.id > BTF_MAX_TYPE) throw new BtfError(`BTF has more than ${BTF_MAX_TYPE} types`);
    out.push(decodeType(r));
    r.id++;
  }
  return out;
}

function decodeType(r: TypeReader): BtfType {
  r.need(BTF_TYPE_LEN, 'btf_type');
  const at = r.pos;
  const info = r.u32(at + 4);
  const kind = (info >>> 24) & 0x1f;
  const kindName = KIND_NAMES[kind];
  if (kindName === undefined) throw new BtfError(`BTF type ${r.id} has unknown kind ${kind}`);
  if ((info & BTF_INFO_RESERVED) !== 0) throw r.fail(`reserved bits set in info 0x${(info >>> 0).toString(16)}`);
  const raw: RawType = {
    id: r.id, kind, name: r.name(r.u32(at)), vlen: info & 0xffff,
    kindFlag: info >>> 31 === 1, sizeOrType: r.u32(at + 8),
  };
  r.pos += BTF_TYPE_LEN;
  checkVlenAndFlag(r, raw, kindName);
  return decodeBody(r, raw, kindName);
}

/** Kinds without trailing records must have vlen 0; only some kinds may set kind_flag. */
function checkVlenAndFlag(r: TypeReader, t: RawType, kind: BtfKindName): void {
  const hasVlen = kind === 'struct' || kind === 'union' || kind === 'enum' || kind === 'enum64'
    || kind === 'func_proto' || kind === 'datasec' || kind === 'func';
  if (!hasVlen && t.vlen !== 0) throw r.fail(`vlen ${t.vlen} must be 0 for ${kind}`);
  const flagOk = kind === 'struct' || kind === 'union' || kind === 'enum' || kind === 'enum64'
    || kind === 'fwd' || kind === 'decl_tag' || kind === 'type_tag';
  if (!flagOk && t.kindFlag) throw r.fail(`kind_flag must be 0 for ${kind}`);
}

function decodeBody(r: TypeReader, t: RawType, kind: BtfKindName): BtfType {
  switch (kind) {
    case 'int': return decodeInt(r, t);
    case 'ptr': return { kind, id: t.id, name: t.name, type: t.sizeOrType } satisfies BtfPtr;
    case 'array': return decodeArray(r, t);
    case 'struct': case 'union': return decodeStruct(r, t, kind);
    case 'enum': return decodeEnum(r, t);
    case 'enum64': return decodeEnum64(r, t);
    case 'fwd': return { kind, id: t.id, name: t.name, fwdKind: t.kindFlag ? 'union' : 'struct' } satisfies BtfFwd;
    case 'typedef': case 'volatile': case 'const': case 'restrict':
      return { kind, id: t.id, name: t.name, type: t.sizeOrType } satisfies BtfQualifier;
    case 'type_tag': return tagged({ kind, id: t.id, name: t.name, type: t.sizeOrType } satisfies BtfQualifier, t);
    case 'func': return decodeFunc(r, t);
    case 'func_proto': return decodeFuncProto(r, t);
    case 'var': return decodeVar(r, t);
    case 'datasec': return decodeDatasec(r, t);
    case 'float': return decodeFloat(r, t);
    case 'decl_tag': return decodeDeclTag(r, t);
    case 'void': break;
  }
  throw r.fail(`unknown kind ${t.kind}`);
}

function tagged<T extends BtfType>(type: T, t: RawType): T {
  if (t.kindFlag) attributeTags.add(type);
  return type;
}

function decodeInt(r: TypeReader, t: RawType): BtfInt {
  r.need(4, 'int encoding');
  const enc = r.u32(r.pos);
  r.pos += 4;
  if ((enc & BTF_INT_RESERVED) !== 0) throw r.fail(`reserved bits set in int encoding 0x${(enc >>> 0).toString(16)}`);
  const encoding = (enc >>> 24) & 0x0f;
  const bitOffset = (enc >>> 16) & 0xff;
  const bits = enc & 0xff;
  if ((encoding & ~(BTF_INT_SIGNED | BTF_INT_CHAR | BTF_INT_BOOL)) !== 0) throw r.fail(`unknown int encoding ${encoding}`);
  if (!INT_SIZES.includes(t.sizeOrType)) throw r.fail(`int size ${t.sizeOrType} is not 1, 2, 4, 8 or 16`);
  if (bits === 0 || bits > 128 || bitOffset + bits > t.sizeOrType * 8) {
    throw r.fail(`int bits ${bits} at bit offset ${bitOffset} do not fit ${t.sizeOrType} bytes`);
  }
  return {
    kind: 'int', id: t.id, name: t.name, size: t.sizeOrType,
    signed: (encoding & BTF_INT_SIGNED) !== 0, char: (encoding & BTF_INT_CHAR) !== 0,
    bool: (encoding & BTF_INT_BOOL) !== 0, bitOffset, bits,
  };
}

function decodeArray(r: TypeReader, t: RawType): BtfArray {
  r.need(12, 'btf_array');
  const p = r.pos;
  r.pos += 12;
  return { kind: 'array', id: t.id, name: t.name, type: r.u32(p), indexType: r.u32(p + 4), nelems: r.u32(p + 8) };
}

function decodeStruct(r: TypeReader, t: RawType, kind: 'struct' | 'union'): BtfStruct {
  r.need(t.vlen * 12, `${t.vlen} btf_member records`);
  const members: BtfMember[] = new Array(t.vlen);
  for (let i = 0, p = r.pos; i < t.vlen; i++, p += 12) {
    const offset = r.u32(p + 8);
    members[i] = {
      name: r.name(r.u32(p), `member ${i} name`), type: r.u32(p + 4),
      // With kind_flag the offset word packs BTF_MEMBER_BITFIELD_SIZE (top 8 bits) and the bit offset.
      bitOffset: t.kindFlag ? offset & 0xffffff : offset,
      bitfieldSize: t.kindFlag ? offset >>> 24 : 0,
    };
  }
  r.pos += t.vlen * 12;
  return { kind, id: t.id, name: t.name, size: t.sizeOrType, members, kindFlag: t.kindFlag };
}

function checkEnumSize(r: TypeReader, t: RawType): void {
  if (!ENUM_SIZES.includes(t.sizeOrType)) throw r.fail(`enum size ${t.sizeOrType} is not 1, 2, 4 or 8`);
}

function decodeEnum(r: TypeReader, t: RawType): BtfEnum {
  checkEnumSize(r, t);
  r.need(t.vlen * 8, `${t.vlen} btf_enum records`);
  const values = new Array(t.vlen);
  for (let i = 0, p = r.pos; i < t.vlen; i++, p += 8) {
    // kind_flag marks a signed enum; otherwise the 32-bit value is unsigned.
    const value = t.kindFlag ? r.s32(p + 4) : r.u32(p + 4);
    values[i] = { name: r.name(r.u32(p), `enumerator ${i} name`), value: BigInt(value) };
  }
  r.pos += t.vlen * 8;
  return { kind: 'enum', id: t.id, name: t.name, size: t.sizeOrType, signed: t.kindFlag, values };
}

function decodeEnum64(r: TypeReader, t: RawType): BtfEnum {
  checkEnumSize(r, t);
  r.need(t.vlen * 12, `${t.vlen} btf_enum64 records`);
  const values = new Array(t.vlen);
  for (let i = 0, p = r.pos; i < t.vlen; i++, p += 12) {
    const raw = (BigInt(r.u32(p + 8)) << 32n) | BigInt(r.u32(p + 4));
    values[i] = { name: r.name(r.u32(p), `enumerator ${i} name`), value: t.kindFlag ? BigInt.asIntN(64, raw) : raw };
  }
  r.pos += t.vlen * 12;
  return { kind: 'enum64', id: t.id, name: t.name, size: t.sizeOrType, signed: t.kindFlag, values };
}

function linkageOf(r: TypeReader, value: number): Linkage {
  const linkage = LINKAGES[value];
  if (linkage === undefined) throw r.fail(`unknown linkage ${value}`);
  return linkage;
}

function decodeFunc(r: TypeReader, t: RawType): BtfFunc {
  // A func's vlen holds its btf_func_linkage.
  return { kind: 'func', id: t.id, name: t.name, type: t.sizeOrType, linkage: linkageOf(r, t.vlen) };
}

function decodeFuncProto(r: TypeReader, t: RawType): BtfFuncProto {
  r.need(t.vlen * 8, `${t.vlen} btf_param records`);
  const params = new Array(t.vlen);
  for (let i = 0, p = r.pos; i < t.vlen; i++, p += 8) {
    params[i] = { name: r.name(r.u32(p), `param ${i} name`), type: r.u32(p + 4) };
  }
  r.pos += t.vlen * 8;
  return { kind: 'func_proto', id: t.id, name: t.name, returnType: t.sizeOrType, params };
}

function decodeVar(r: TypeReader, t: RawType): BtfVar {
  r.need(4, 'btf_var');
  const linkage = linkageOf(r, r.u32(r.pos));
  r.pos += 4;
  return { kind: 'var', id: t.id, name: t.name, type: t.sizeOrType, linkage };
}

function decodeDatasec(r: TypeReader, t: RawType): BtfDatasec {
  r.need(t.vlen * 12, `${t.vlen} btf_var_secinfo records`);
  const vars = new Array(t.vlen);
  for (let i = 0, p = r.pos; i < t.vlen; i++, p += 12) {
    vars[i] = { type: r.u32(p), offset: r.u32(p + 4), size: r.u32(p + 8) };
  }
  r.pos += t.vlen * 12;
  return { kind: 'datasec', id: t.id, name: t.name, size: t.sizeOrType, vars };
}

function decodeFloat(r: TypeReader, t: RawType): BtfFloat {
  if (!FLOAT_SIZES.includes(t.sizeOrType)) throw r.fail(`float size ${t.sizeOrType} is not 2, 4, 8, 12 or 16`);
  return { kind: 'float', id: t.id, name: t.name, size: t.sizeOrType };
}

function decodeDeclTag(r: TypeReader, t: RawType): BtfDeclTag {
  r.need(4, 'btf_decl_tag');
  const componentIdx = r.s32(r.pos);
  r.pos += 4;
  if (componentIdx < -1) throw r.fail(`decl_tag component_idx ${componentIdx} is below -1`);
  return tagged({ kind: 'decl_tag', id: t.id, name: t.name, type: t.sizeOrType, componentIdx }, t);
}

// ---------------------------------------------------------------------------------------------
// Whole-graph checks (after every type is known)
// ---------------------------------------------------------------------------------------------

/** Checks types[from..] for ids matching their index, known kinds and references that exist. */
function checkGraph(types: readonly BtfType[], from: number): void {
  if (types.length - 1 > BTF_MAX_TYPE) throw new BtfError(`BTF has more than ${BTF_MAX_TYPE} types`);
  for (let id = from; id < types.length; id++) {
    const t = types[id];
    if (t === undefined || t === null || typeof t !== 'object') throw new BtfError(`BTF type ${id} is missing`);
    if (t.id !== id) throw new BtfError(`BTF type at index ${id} has id ${String(t.id)}`);
    checkRefs(types, t);
  }
}

function checkRefs(types: readonly BtfType[], t: BtfType): void {
  const ref = (target: number, what: string): BtfType => {
    const found = Number.isInteger(target) ? types[target] : undefined;
    if (found === undefined) {
      throw new BtfError(`BTF type ${t.id} (${t.kind} '${t.name}'): ${what} refers to type ${target}, which does not exist (${types.length} types)`);
    }
    return found;
  };
  switch (t.kind) {
    case 'void': throw new BtfError('BTF: void can only be type 0');
    case 'int': case 'float': case 'fwd': case 'enum': case 'enum64': break;
    case 'ptr': case 'typedef': case 'volatile': case 'const': case 'restrict': case 'type_tag': case 'var':
      ref(t.type, 'type'); break;
    case 'array': ref(t.type, 'element type'); ref(t.indexType, 'index type'); break;
    case 'struct': case 'union': t.members.forEach((m, i) => ref(m.type, `member ${i}`)); break;
    case 'func':
      if (ref(t.type, 'type').kind !== 'func_proto') throw new BtfError(`BTF type ${t.id}: func '${t.name}' does not point at a func_proto`);
      break;
    case 'func_proto': ref(t.returnType, 'return type'); t.params.forEach((p, i) => ref(p.type, `param ${i}`)); break;
    case 'datasec': t.vars.forEach((v, i) => checkSecinfo(t, ref(v.type, `var ${i}`))); break;
    case 'decl_tag': checkDeclTag(t, ref(t.type, 'type')); break;
    default:
      throw new BtfError(`BTF type ${(t as { id: unknown }).id} has unknown kind ${JSON.stringify((t as { kind: unknown }).kind)}`);
  }
}

function checkSecinfo(sec: BtfDatasec, target: BtfType): void {
  // .ksyms datasecs list extern funcs next to vars.
  if (target.kind !== 'var' && target.kind !== 'func') {
    throw new BtfError(`BTF type ${sec.id}: datasec '${sec.name}' lists type ${target.id}, a ${target.kind}, not a var`);
  }
}

function checkDeclTag(tag: BtfDeclTag, target: BtfType): void {
  if (tag.componentIdx === -1) return;
  let count = -1;
  if (target.kind === 'struct' || target.kind === 'union') count = target.members.length;
  if (target.kind === 'func') count = Number.MAX_SAFE_INTEGER; // params live on the proto; checked by the kernel
  if (tag.componentIdx >= count) {
    throw new BtfError(`BTF type ${tag.id}: decl_tag component_idx ${tag.componentIdx} is out of range for type ${target.id}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Marshalling
// ---------------------------------------------------------------------------------------------

/** Bytes a type occupies in the type section. */
function encodedSize(t: BtfType): number {
  switch (t.kind) {
    case 'int': case 'var': case 'decl_tag': return BTF_TYPE_LEN + 4;
    case 'array': return BTF_TYPE_LEN + 12;
    case 'struct': case 'union': return BTF_TYPE_LEN + 12 * t.members.length;
    case 'enum': return BTF_TYPE_LEN + 8 * t.values.length;
    case 'enum64': return BTF_TYPE_LEN + 12 * t.values.length;
    case 'func_proto': return BTF_TYPE_LEN + 8 * t.params.length;
    case 'datasec': return BTF_TYPE_LEN + 12 * t.vars.length;
    default: return BTF_TYPE_LEN;
  }
}

/**
 * The string section being written: the original bytes first (offsets stay valid), then names
 * that are in neither it nor the base.
 */
class StringWriter {
  private readonly added = new Map<string, number>();
  private readonly chunks: Uint8Array[] = [];
  private size: number;

  constructor(private readonly table: StringTable) {
    this.chunks.push(table.bytes);
    this.size = table.bytes.length;
  }

  offset(name: string, what: () => string): number {
    if (name === '') return 0;
    let off = this.table.find(name) ?? this.table.base?.find(name) ?? this.added.get(name);
    if (off === undefined) off = this.append(name, what);
    if (off > BTF_MAX_NAME_OFFSET) throw new BtfError(`${what()}: string offset ${off} exceeds the kernel's limit`);
    return off;
  }

  private append(name: string, what: () => string): number {
    if (typeof name !== 'string' || name.includes('\0')) throw new BtfError(`${what()}: name ${JSON.stringify(name)} cannot be encoded`);
    const off = this.table.start + this.size;
    const bytes = utf8Encoder.encode(`${name}\0`);
    this.chunks.push(bytes);
    this.size += bytes.length;
    this.added.set(name, off);
    return off;
  }

  bytes(): Uint8Array {
    return concat(this.chunks, this.size);
  }
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Writes one type's records; checks every value fits its field. */
class TypeWriter {
  pos = 0;
  private t: BtfType = VOID;

  constructor(private readonly view: DataView, private readonly le: boolean, private readonly strings: StringWriter) {}

  write(t: BtfType): void {
    this.t = t;
    switch (t.kind) {
      case 'int': return this.int(t);
      case 'ptr': return this.header(BTF_KIND.PTR, 0, false, t.type);
      case 'array': return this.array(t);
      case 'struct': case 'union': return this.struct(t);
      case 'enum': case 'enum64': return this.enum(t);
      case 'fwd': return this.header(BTF_KIND.FWD, 0, t.fwdKind === 'union', 0);
      case 'typedef': return this.header(BTF_KIND.TYPEDEF, 0, false, t.type);
      case 'volatile': return this.header(BTF_KIND.VOLATILE, 0, false, t.type);
      case 'const': return this.header(BTF_KIND.CONST, 0, false, t.type);
      case 'restrict': return this.header(BTF_KIND.RESTRICT, 0, false, t.type);
      case 'type_tag': return this.header(BTF_KIND.TYPE_TAG, 0, attributeTags.has(t), t.type);
      case 'func': return this.header(BTF_KIND.FUNC, linkageNumber(t), false, t.type);
      case 'func_proto': return this.funcProto(t);
      case 'var': this.header(BTF_KIND.VAR, 0, false, t.type); return this.u32(linkageNumber(t), 'linkage');
      case 'datasec': return this.datasec(t);
      case 'float': return this.header(BTF_KIND.FLOAT, 0, false, t.size);
      case 'decl_tag': this.header(BTF_KIND.DECL_TAG, 0, attributeTags.has(t), t.type); return this.s32(t.componentIdx, 'component_idx');
      case 'void': break;
    }
    throw this.fail(`cannot marshal kind ${JSON.stringify(t.kind)}`);
  }

  private header(kind: number, vlen: number, kindFlag: boolean, sizeOrType: number): void {
    if (vlen > BTF_MAX_VLEN) throw this.fail(`vlen ${vlen} exceeds ${BTF_MAX_VLEN}`);
    this.u32(this.name(this.t.name), 'name_off');
    this.u32(((kindFlag ? 1 << 31 : 0) | (kind << 24) | vlen) >>> 0, 'info');
    this.u32(sizeOrType, 'size/type');
  }

  private int(t: BtfInt): void {
    this.header(BTF_KIND.INT, 0, false, t.size);
    const encoding = (t.signed ? BTF_INT_SIGNED : 0) | (t.char ? BTF_INT_CHAR : 0) | (t.bool ? BTF_INT_BOOL : 0);
    if (!isUint(t.bitOffset, 0xff) || !isUint(t.bits, 0xff)) throw this.fail('int bitOffset/bits must fit 8 bits');
    this.u32(((encoding << 24) | (t.bitOffset << 16) | t.bits) >>> 0, 'int encoding');
  }

  private array(t: BtfArray): void {
    this.header(BTF_KIND.ARRAY, 0, false, 0);
    this.u32(t.type, 'element type');
    this.u32(t.indexType, 'index type');
    this.u32(t.nelems, 'nelems');
  }

  private struct(t: BtfStruct): void {
    this.header(t.kind === 'struct' ? BTF_KIND.STRUCT : BTF_KIND.UNION, t.members.length, t.kindFlag, t.size);
    for (const m of t.members) {
      this.u32(this.name(m.name), 'member name_off');
      this.u32(m.type, 'member type');
      this.u32(memberOffset(this, t, m), 'member offset');
    }
  }

  private enum(t: BtfEnum): void {
    const is64 = t.kind === 'enum64';
    this.header(is64 ? BTF_KIND.ENUM64 : BTF_KIND.ENUM, t.values.length, t.signed, t.size);
    const bits = is64 ? 64 : 32;
    for (const v of t.values) {
      if (typeof v.value !== 'bigint' || v.value !== (t.signed ? BigInt.asIntN(bits, v.value) : BigInt.asUintN(bits, v.value))) {
        throw this.fail(`enumerator ${v.name} value ${String(v.value)} does not fit a ${t.signed ? 'signed' : 'unsigned'} ${bits}-bit ${t.kind}`);
      }
      this.u32(this.name(v.name), 'enumerator name_off');
      const raw = BigInt.asUintN(64, v.value);
      this.u32(Number(raw & 0xffffffffn), 'enumerator value');
      if (is64) this.u32(Number(raw >> 32n), 'enumerator value');
    }
  }

  private funcProto(t: BtfFuncProto): void {
    this.header(BTF_KIND.FUNC_PROTO, t.params.length, false, t.returnType);
    for (const p of t.params) {
      this.u32(this.name(p.name), 'param name_off');
      this.u32(p.type, 'param type');
    }
  }

  private datasec(t: BtfDatasec): void {
    this.header(BTF_KIND.DATASEC, t.vars.length, false, t.size);
    for (const v of t.vars) {
      this.u32(v.type, 'secinfo type');
      this.u32(v.offset, 'secinfo offset');
      this.u32(v.size, 'secinfo size');
    }
  }

  private name(name: string): number {
    return this.strings.offset(name, () => `BTF type ${this.t.id}`);
  }

  u32(value: number, what: string): void {
    if (!isUint(value, 0xffffffff)) throw this.fail(`${what} ${String(value)} is not a u32`);
    this.view.setUint32(this.pos, value, this.le);
    this.pos += 4;
  }

  private s32(value: number, what: string): void {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw this.fail(`${what} ${String(value)} is not an s32`);
    this.view.setInt32(this.pos, value, this.le);
    this.pos += 4;
  }

  fail(message: string): BtfError {
    return new BtfError(`BTF type ${this.t.id} (${String(this.t.kind)} '${this.t.name}'): ${message}`);
  }
}

function memberOffset(w: TypeWriter, t: BtfStruct, m: BtfMember): number {
  if (!t.kindFlag) {
    if (m.bitfieldSize !== 0) throw w.fail(`member ${m.name} is a bitfield but kindFlag is false`);
    return m.bitOffset;
  }
  if (!isUint(m.bitOffset, 0xffffff) || !isUint(m.bitfieldSize, 0xff)) {
    throw w.fail(`member ${m.name} bit offset/bitfield size do not fit the kind_flag encoding`);
  }
  return ((m.bitfieldSize << 24) | m.bitOffset) >>> 0;
}

function linkageNumber(t: BtfFunc | BtfVar): number {
  const n = LINKAGES.indexOf(t.linkage);
  if (n < 0) throw new BtfError(`BTF type ${t.id}: unknown linkage ${JSON.stringify(t.linkage)}`);
  return n;
}

function isUint(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}

function writeHeader(view: DataView, le: boolean, typeLen: number, strLen: number): void {
  view.setUint16(0, BTF_MAGIC, le);
  view.setUint8(2, BTF_VERSION);
  view.setUint8(3, 0);
  view.setUint32(4, BTF_HEADER_LEN, le);
  view.setUint32(8, 0, le); // type_off
  view.setUint32(12, typeLen, le);
  view.setUint32(16, typeLen, le); // str_off: strings follow the types
  view.setUint32(20, strLen, le);
}

// ---------------------------------------------------------------------------------------------
// The Btf class
// ---------------------------------------------------------------------------------------------

function isQualifier(t: BtfType): t is BtfQualifier {
  return t.kind === 'typedef' || t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict' || t.kind === 'type_tag';
}

/** Alignment a scalar of `size` bytes gets: its largest power-of-two factor, at most 16. */
function naturalAlign(size: number): number {
  if (size <= 0) return 1;
  return Math.min(size & -size, 16);
}

export interface BtfParseOptions {
  /** The BTF this one is split from (vmlinux, for a module's BTF). */
  readonly base?: Btf;
}

export interface BtfMarshalOptions {
  /** Byte order of the output; the host's by default, which is what the kernel wants. */
  readonly littleEndian?: boolean;
}

export class Btf {
  /** Every type by id: the base's (for split BTF) followed by this blob's own. Index 0 is void. */
  readonly types: readonly BtfType[];
  /** The BTF this one continues, for split BTF. */
  readonly base: Btf | undefined;
  /** Byte order of the blob this came from (host order for BTF built in code). */
  readonly littleEndian: boolean;
  private nameIndex: Map<string, BtfType[]> | undefined;

  private constructor(types: readonly BtfType[], strings: StringTable, base: Btf | undefined, littleEndian: boolean) {
    this.types = types;
    stringTables.set(this, strings);
    this.base = base;
    this.littleEndian = littleEndian;
  }

  /** Decodes a whole `.BTF` blob (btf_header, type section, string section). */
  static parse(bytes: Uint8Array, options?: BtfParseOptions): Btf {
    if (!(bytes instanceof Uint8Array)) throw new BtfError('BTF must be given as a Uint8Array');
    const base = options?.base;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const header = readHeader(bytes, view);
    const strings = readStrings(bytes, header, base);
    const firstId = base?.length ?? 1;
    const reader = new TypeReader(view, header.littleEndian, header.typeStart, header.typeEnd, firstId, strings);
    const own = decodeTypes(reader);
    const types = base ? base.types.concat(own) : [VOID as BtfType].concat(own);
    checkGraph(types, firstId);
    return new Btf(types, strings, base, header.littleEndian);
  }

  /**
   * BTF built in code. `types[i]` must have id `i`; index 0 is void. With `base`, `types` is the
   * full list too: its first `base.length` entries are the base's (only their ids are checked).
   */
  static fromTypes(types: readonly BtfType[], options?: BtfParseOptions): Btf {
    const base = options?.base;
    return Btf.build(types, emptyStrings(base), base, HOST_LITTLE_ENDIAN);
  }

  /** Reads kernel BTF, vmlinux by default; pass `base` (vmlinux) for a module's file. */
  static async loadKernel(path = '/sys/kernel/btf/vmlinux', options?: BtfParseOptions): Promise<Btf> {
    return Btf.parse(await readFile(path), options);
  }

  private static build(types: readonly BtfType[], strings: StringTable, base: Btf | undefined, le: boolean): Btf {
    if (!Array.isArray(types)) throw new BtfError('BTF types must be an array');
    const firstId = base?.length ?? 1;
    if (types.length < firstId) throw new BtfError(`BTF types must start with the ${firstId} types of the base (void for standalone BTF)`);
    const all = base ? base.types.concat(types.slice(firstId)) : [VOID as BtfType].concat(types.slice(1));
    if (base) checkBasePrefix(types, base); else checkVoid(types[0]);
    checkGraph(all, firstId);
    return new Btf(all, strings, base, le);
  }

  /**
   * The same BTF with its own types replaced (ids from `base.length`, or 1, must match indexes).
   * The string table is kept, so `.BTF.ext` string offsets stay valid after rewriting types.
   */
  withTypes(types: readonly BtfType[]): Btf {
    return Btf.build(types, tableOf(this), this.base, this.littleEndian);
  }

  /** Number of type ids, void and base types included. */
  get length(): number {
    return this.types.length;
  }

  /** The type with this id. */
  type(id: number): BtfType {
    const t = Number.isInteger(id) ? this.types[id] : undefined;
    if (t === undefined) throw new BtfError(`BTF type id ${id} is out of range (${this.types.length} types)`);
    return t;
  }

  /** Every type with this name (optionally only of one kind), base types included. */
  byName(name: string, kind?: BtfKindName): BtfType[] {
    if (this.nameIndex === undefined) this.nameIndex = buildNameIndex(this.types);
    const found = this.nameIndex.get(name) ?? [];
    return kind === undefined ? found.slice() : found.filter((t) => t.kind === kind);
  }

  /** The string at `offset` in the string section (the base's below its end, for split BTF). */
  string(offset: number): string {
    const table = tableOf(this);
    const s = Number.isInteger(offset) ? table.lookup(offset) : undefined;
    if (s === undefined) throw new BtfError(`BTF string offset ${offset} is outside the string section (${table.end} bytes)`);
    return s;
  }

  /** The type under any typedef/const/volatile/restrict/type_tag. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let steps = 0; isQualifier(t); steps++) {
      if (steps > this.types.length) throw new BtfError(`BTF type ${id}: loop in typedef/qualifier chain`);
      t = this.type(t.type);
    }
    return t;
  }

  /** Size in bytes of a value of type `id`. */
  sizeof(id: number): number {
    let t = this.type(id);
    let count = 1;
    for (let steps = 0; steps <= this.types.length; steps++) {
      switch (t.kind) {
        case 'int': case 'float': case 'enum': case 'enum64': case 'struct': case 'union': case 'datasec':
          return checkedSize(id, count * t.size);
        case 'ptr': return checkedSize(id, count * BPF_PTR_SIZE);
        case 'array': count = checkedSize(id, count * t.nelems); t = this.type(t.type); break;
        case 'typedef': case 'const': case 'volatile': case 'restrict': case 'type_tag': case 'var':
          t = this.type(t.type); break;
        default:
          throw new BtfError(`BTF type ${id} (${this.typeName(id)}): a ${t.kind} has no size`);
      }
    }
    throw new BtfError(`BTF type ${id}: loop in type chain while computing its size`);
  }

  /** Alignment in bytes of a value of type `id`, as the BPF target lays it out. */
  alignof(id: number): number {
    return this.alignOf(id, new Set());
  }

  private alignOf(id: number, path: Set<number>): number {
    const t = this.type(id);
    if (path.has(id)) throw new BtfError(`BTF type ${id}: loop in type graph while computing alignment`);
    if (path.size >= MAX_NESTING) throw new BtfError(`BTF type ${id}: types nest too deeply`);
    path.add(id);
    try {
      return this.alignOfType(t, path);
    } finally {
      path.delete(id);
    }
  }

  private alignOfType(t: BtfType, path: Set<number>): number {
    switch (t.kind) {
      case 'int': case 'float': case 'enum': case 'enum64': return naturalAlign(t.size);
      case 'ptr': return BPF_PTR_SIZE;
      case 'array': return this.alignOf(t.type, path);
      case 'typedef': case 'const': case 'volatile': case 'restrict': case 'type_tag': case 'var':
        return this.alignOf(t.type, path);
      case 'struct': case 'union': return this.alignOfStruct(t, path);
      default: throw new BtfError(`BTF type ${t.id} (${this.typeName(t.id)}): a ${t.kind} has no alignment`);
    }
  }

  /** The largest member alignment, or 1 when the layout shows the struct is packed. */
  private alignOfStruct(t: BtfStruct, path: Set<number>): number {
    let align = 1;
    let packed = false;
    for (const m of t.members) {
      const a = this.alignOf(m.type, path);
      align = Math.max(align, a);
      const bitfield = m.bitfieldSize !== 0 || m.bitOffset % 8 !== 0;
      if (!bitfield && m.bitOffset % (a * 8) !== 0) packed = true;
    }
    return packed || t.size % align !== 0 ? 1 : align;
  }

  /** A C-like spelling of a type, for messages: `struct task_struct`, `char[16]`, `int *`. */
  typeName(id: number): string {
    return this.spell(this.type(id), 0);
  }

  private spellId(id: number, depth: number): string {
    const t = this.types[id];
    if (t === undefined) return `<type ${id}>`;
    if (depth > 64) return '...';
    return this.spell(t, depth + 1);
  }

  private spell(t: BtfType, depth: number): string {
    switch (t.kind) {
      case 'void': return 'void';
      case 'int': case 'float': case 'typedef': return t.name || `<anon ${t.kind}>`;
      case 'struct': case 'union': return `${t.kind} ${t.name || '<anon>'}`;
      case 'enum': case 'enum64': return `enum ${t.name || '<anon>'}`;
      case 'fwd': return `${t.fwdKind} ${t.name}`;
      case 'ptr': return this.spellPointer(t, depth);
      case 'array': return this.spellArray(t, depth);
      case 'const': case 'volatile': case 'restrict': {
        const inner = this.spellId(t.type, depth);
        return this.types[t.type]?.kind === 'ptr' ? `${inner} ${t.kind}` : `${t.kind} ${inner}`;
      }
      case 'type_tag': {
        const tag = attributeTags.has(t) ? `__attribute__((${t.name}))` : `__${t.name}`;
        return `${this.spellId(t.type, depth)} ${tag}`;
      }
      case 'func_proto': return `${this.spellId(t.returnType, depth)} (${this.spellParams(t, depth)})`;
      case 'func': return this.spellFunc(t, depth);
      case 'var': {
        const inner = this.spellId(t.type, depth);
        return inner.endsWith('*') ? `${inner}${t.name}` : `${inner} ${t.name}`;
      }
      case 'datasec': return `datasec ${t.name}`;
      case 'decl_tag': return `decl_tag ${t.name}`;
    }
  }

  private spellPointer(t: BtfPtr, depth: number): string {
    const target = this.types[t.type];
    if (target?.kind === 'func_proto') {
      return `${this.spellId(target.returnType, depth)} (*)(${this.spellParams(target, depth)})`;
    }
    const inner = this.spellId(t.type, depth);
    return inner.endsWith('*') ? `${inner}*` : `${inner} *`;
  }

  /** C puts the outer dimension first: int[2][3] is an array of 2 arrays of 3 ints. */
  private spellArray(t: BtfArray, depth: number): string {
    let dims = '';
    let elem: BtfType = t;
    for (let n = 0; elem.kind === 'array' && n <= 64; n++) {
      dims += `[${elem.nelems}]`;
      const next: BtfType | undefined = this.types[elem.type];
      if (next === undefined) return `<type ${elem.type}>${dims}`;
      elem = next;
    }
    return `${this.spell(elem, depth + 1)}${dims}`;
  }

  private spellParams(t: BtfFuncProto, depth: number): string {
    if (t.params.length === 0) return 'void';
    return t.params.map((p) => (p.type === 0 && p.name === '' ? '...' : this.spellId(p.type, depth))).join(', ');
  }

  private spellFunc(t: BtfFunc, depth: number): string {
    const proto = this.types[t.type];
    if (proto?.kind !== 'func_proto') return `func ${t.name}`;
    return `${this.spellId(proto.returnType, depth)} ${t.name}(${this.spellParams(proto, depth)})`;
  }

  /**
   * Writes this BTF's own types (not the base's) as a `.BTF` blob for BPF_BTF_LOAD: header, type
   * section at type_off 0, then strings. A parsed blob's string table is the verbatim prefix.
   */
  marshal(options?: BtfMarshalOptions): Uint8Array {
    const le = options?.littleEndian ?? HOST_LITTLE_ENDIAN;
    const firstId = this.base?.length ?? 1;
    let typeLen = 0;
    for (let id = firstId; id < this.types.length; id++) typeLen += encodedSize(this.types[id]!);
    const out = new Uint8Array(BTF_HEADER_LEN + typeLen);
    const view = new DataView(out.buffer);
    const strings = new StringWriter(tableOf(this));
    const writer = new TypeWriter(new DataView(out.buffer, BTF_HEADER_LEN), le, strings);
    for (let id = firstId; id < this.types.length; id++) writer.write(this.types[id]!);
    const strBytes = strings.bytes();
    writeHeader(view, le, typeLen, strBytes.length);
    return concat([out, strBytes], out.length + strBytes.length);
  }
}

function checkVoid(t: BtfType | undefined): void {
  if (t?.kind !== 'void' || t.id !== 0) throw new BtfError('BTF type 0 must be void');
}

function checkBasePrefix(types: readonly BtfType[], base: Btf): void {
  for (let id = 0; id < base.length; id++) {
    const t = types[id];
    if (t?.id !== id || t.kind !== base.types[id]!.kind) {
      throw new BtfError(`BTF type ${id} does not match the base BTF's type ${id}`);
    }
  }
}

function checkedSize(id: number, size: number): number {
  if (!Number.isSafeInteger(size)) throw new BtfError(`BTF type ${id}: size overflows`);
  return size;
}

function buildNameIndex(types: readonly BtfType[]): Map<string, BtfType[]> {
  const index = new Map<string, BtfType[]>();
  for (const t of types) {
    if (t.name === '') continue;
    const list = index.get(t.name);
    if (list) list.push(t); else index.set(t.name, [t]);
  }
  return index;
}
