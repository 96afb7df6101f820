/**
 * `.BTF`, the kernel's BPF Type Format, read from bytes and written back. `Btf.parse` checks a
 * blob (a clang-built object's `.BTF` section, or the kernel's own `/sys/kernel/btf/*`) in one
 * pass over its raw words, checking every length, offset, string and type reference so that
 * garbage ends in a `BtfError` rather than a hang or a RangeError, and keeps the type section as
 * host-order words plus the offset of each record. Types are decoded into the id-indexed model of
 * `types.ts` only when asked for (`type(id)`, `byName`, or the `types` array, which decodes them
 * all), and each is decoded once. So reading vmlinux (~126,000 types) costs a copy and a scan, and
 * a CO-RE load or an attach-by-name decodes the few types it touches.
 *
 * `marshal` writes the model back in the layout `BPF_BTF_LOAD` takes; a parsed blob's string table
 * is kept verbatim as the prefix of the new one, because `.BTF.ext` line_info records point into it
 * by offset, and the records of types that are still as parsed (also after `withTypes`) are copied
 * rather than encoded again. Split BTF (a kernel module's types on top of vmlinux) continues the
 * base's type ids and string offsets. Nothing here talks to the kernel.
 */
import { isAscii } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { btf_header } from '../abi/uapi.js';
import { BtfError } from '../errors.js';
import { BTF_KIND } from './types.js';
import type {
  BtfArray, BtfDatasec, BtfDeclTag, BtfEnum, BtfEnumValue, BtfFunc, BtfFuncProto, BtfInt,
  BtfKindName, BtfMember, BtfParam, BtfPtr, BtfQualifier, BtfStruct, BtfType, BtfVar, BtfVarSecinfo,
  BtfVoid, Linkage,
} from './types.js';

const BTF_MAGIC = 0xeb9f;
const BTF_VERSION = 1;
/** sizeof(struct btf_header) */
const BTF_HEADER_LEN = btf_header.$size;
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
/** Type nodes one typeName call spells before writing `...`. */
const SPELL_BUDGET = 256;
/**
 * Longest chain of types held by value (struct in struct, array of arrays, typedefs and
 * qualifiers included), and longest chain of pointers and qualifiers, that parsed BTF may have.
 * The kernel refuses resolution deeper than 32 (MAX_RESOLVE_DEPTH) in the order it checks types;
 * real vmlinux stays far below this bound, which keeps every recursive walk of the graph shallow.
 */
export const BTF_MAX_DEPTH = 256;
/** Largest type size the kernel accepts (sizes are u32). */
const BTF_MAX_SIZE = 0xffffffff;

// Kind numbers, as plain constants for the scanning and decoding loops.
const KIND_INT = BTF_KIND.INT;
const KIND_PTR = BTF_KIND.PTR;
const KIND_ARRAY = BTF_KIND.ARRAY;
const KIND_STRUCT = BTF_KIND.STRUCT;
const KIND_UNION = BTF_KIND.UNION;
const KIND_ENUM = BTF_KIND.ENUM;
const KIND_FWD = BTF_KIND.FWD;
const KIND_TYPEDEF = BTF_KIND.TYPEDEF;
const KIND_VOLATILE = BTF_KIND.VOLATILE;
const KIND_CONST = BTF_KIND.CONST;
const KIND_RESTRICT = BTF_KIND.RESTRICT;
const KIND_FUNC = BTF_KIND.FUNC;
const KIND_FUNC_PROTO = BTF_KIND.FUNC_PROTO;
const KIND_VAR = BTF_KIND.VAR;
const KIND_DATASEC = BTF_KIND.DATASEC;
const KIND_FLOAT = BTF_KIND.FLOAT;
const KIND_DECL_TAG = BTF_KIND.DECL_TAG;
const KIND_TYPE_TAG = BTF_KIND.TYPE_TAG;
const KIND_ENUM64 = BTF_KIND.ENUM64;
const KIND_MAX = KIND_ENUM64;

/** Kinds followed by vlen records (a func's vlen is its linkage), as a bit mask by kind number. */
const VLEN_KINDS = (1 << KIND_STRUCT) | (1 << KIND_UNION) | (1 << KIND_ENUM) | (1 << KIND_ENUM64)
  | (1 << KIND_FUNC_PROTO) | (1 << KIND_DATASEC) | (1 << KIND_FUNC);
/** Kinds that may set kind_flag. */
const FLAG_KINDS = (1 << KIND_STRUCT) | (1 << KIND_UNION) | (1 << KIND_ENUM) | (1 << KIND_ENUM64)
  | (1 << KIND_FWD) | (1 << KIND_DECL_TAG) | (1 << KIND_TYPE_TAG);

/** Allowed sizes as bit masks by size in bytes (all at most 16). */
const INT_SIZES = (1 << 1) | (1 << 2) | (1 << 4) | (1 << 8) | (1 << 16);
const ENUM_SIZES = (1 << 1) | (1 << 2) | (1 << 4) | (1 << 8);
const FLOAT_SIZES = (1 << 2) | (1 << 4) | (1 << 8) | (1 << 12) | (1 << 16);

function sizeAllowed(mask: number, size: number): boolean {
  return size <= 16 && ((mask >>> size) & 1) === 1;
}

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

/** Kind numbers by name; void is 0. */
const KIND_NUMBERS: ReadonlyMap<string, number> = new Map<string, number>([
  ['void', 0], ...Object.entries(KIND_NAMES).map(([n, name]) => [name, Number(n)] as [string, number]),
]);

/**
 * decl_tag and type_tag records whose kind_flag is set: the name is a whole
 * `__attribute__((...))` rather than a btf_decl_tag/btf_type_tag string (Linux 6.14+, e.g.
 * `address_space(1)` in vmlinux). The type model has no field for it, so decoding remembers such
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
/** Names StringTable.find looks for by searching the text before it indexes every string. */
const FIND_SEARCHES = 32;
/** Zero bytes kept after a string section so names can be hashed four bytes at a time. */
const STRING_PAD = 4;

/**
 * One string section. `start` is the offset of its first byte as seen by type records: 0 for
 * ordinary BTF, the base's end for split BTF. The bytes always end in NUL (checked by the
 * constructor's callers), so every in-range offset is terminated. Names are read from the section
 * decoded once as latin1 (built on the first lookup), which is several times faster than a
 * TextDecoder call per name and exact for ASCII, which kernel and C identifiers are; a name with
 * other bytes (source lines in line_info may carry UTF-8) is decoded properly on its own.
 */
class StringTable {
  /** The section's bytes: a copy, followed in memory by STRING_PAD zero bytes. */
  readonly bytes: Uint8Array;
  /** A little-endian view of `bytes` and its padding, for word-at-a-time name hashing. */
  readonly view: DataView;
  #text: string | undefined;
  #ascii: boolean | undefined;
  #index: Map<string, number> | undefined;
  #searches = 0;

  /**
   * Copies `source`, so the table neither pins nor sees later writes to the caller's buffer; with
   * `adopt`, keeps it as it is when STRING_PAD zero bytes follow it in its ArrayBuffer.
   */
  constructor(source: Uint8Array, readonly start: number, readonly base: StringTable | undefined, adopt = false) {
    const end = source.byteOffset + source.length;
    if (adopt && end + STRING_PAD <= source.buffer.byteLength && new Uint8Array(source.buffer, end, STRING_PAD).every((b) => b === 0)) {
      this.bytes = source;
      this.view = new DataView(source.buffer, source.byteOffset, source.length + STRING_PAD);
      return;
    }
    const storage = Buffer.allocUnsafeSlow(source.length + STRING_PAD);
    storage.set(source);
    storage.fill(0, source.length);
    this.bytes = new Uint8Array(storage.buffer, storage.byteOffset, source.length);
    this.view = new DataView(storage.buffer, storage.byteOffset, storage.length);
  }

  get end(): number {
    return this.start + this.bytes.length;
  }

  /** The whole section as latin1: fast indexOf/slice for the common all-ASCII names. */
  get text(): string {
    return (this.#text ??= latin1(this.bytes));
  }

  private get ascii(): boolean {
    return (this.#ascii ??= isAscii(this.bytes));
  }

  /** The table (this one or a base's) holding `offset`, or undefined when it is in none. */
  tableFor(offset: number): StringTable | undefined {
    if (offset < this.start) return this.base?.tableFor(offset);
    return offset < this.end ? this : undefined;
  }

  /** The string at `offset`, or undefined when the offset is outside every table. */
  lookup(offset: number): string | undefined {
    if (offset < this.start) return this.base?.lookup(offset);
    const local = offset - this.start;
    if (local >= this.bytes.length) return undefined;
    const text = this.text;
    const end = text.indexOf('\0', local);
    const s = text.slice(local, end);
    if (this.ascii || !NON_ASCII.test(s)) return s;
    return utf8.decode(this.bytes.subarray(local, end));
  }

  /**
   * Offset of the first string equal to `s` in this table alone. The first few ASCII names are
   * searched for in the text; after that, every string is indexed once.
   */
  find(s: string): number | undefined {
    if (s.includes('\0')) return undefined;
    if (this.#index === undefined && this.#searches < FIND_SEARCHES && !NON_ASCII.test(s)) {
      this.#searches++;
      const text = this.text;
      if (text.startsWith(`${s}\0`)) return this.start;
      const at = text.indexOf(`\0${s}\0`);
      return at < 0 ? undefined : this.start + at + 1;
    }
    if (this.#index === undefined) this.#index = this.buildIndex();
    return this.#index.get(s);
  }

  private buildIndex(): Map<string, number> {
    const index = new Map<string, number>();
    const text = this.text;
    let local = 0;
    while (local < this.bytes.length) {
      const end = text.indexOf('\0', local);
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

/** A fresh table: "\0" for standalone BTF (offset 0 must be the empty name), empty for split. */
function emptyStrings(baseTable: StringTable | undefined): StringTable {
  return new StringTable(baseTable ? new Uint8Array(0) : new Uint8Array(1), baseTable?.end ?? 0, baseTable);
}

/**
 * Hash of the NUL-terminated string at `pos` of a padded table view (or of a query encoded the same
 * way), four bytes at a time: a word with a zero byte ends the string, and only its bytes before
 * the zero count.
 */
function hashName(view: DataView, pos: number): number {
  let h = 0;
  for (;;) {
    const w = view.getUint32(pos, true);
    const zero = (w - 0x01010101) & ~w & 0x80808080;
    if (zero === 0) {
      h = Math.imul(h ^ w, 0x9e3779b1);
      pos += 4;
      continue;
    }
    // Little-endian: the first zero byte is the lowest flagged one. Bits above a genuine zero
    // byte may be flagged spuriously, never bits below it.
    const before = (31 - Math.clz32(zero & -zero)) >>> 3;
    const tail = before === 0 ? 0 : w & (0xffffffff >>> (32 - 8 * before));
    h = Math.imul(h ^ tail ^ (before << 29), 0x9e3779b1);
    return h ^ (h >>> 16);
  }
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
  const H = btf_header;
  const littleEndian = byteOrder(view.getUint16(H.magic, true), 'BTF');
  const version = view.getUint8(H.version);
  if (version !== BTF_VERSION) throw new BtfError(`unsupported BTF version ${version} (expected ${BTF_VERSION})`);
  const flags = view.getUint8(H.flags);
  if (flags !== 0) throw new BtfError(`unsupported BTF header flags 0x${flags.toString(16)}`);
  const hdrLen = view.getUint32(H.hdr_len, littleEndian);
  if (hdrLen < BTF_HEADER_LEN) throw new BtfError(`BTF hdr_len ${hdrLen} is smaller than btf_header (${BTF_HEADER_LEN})`);
  if (hdrLen > bytes.length) throw new BtfError(`BTF hdr_len ${hdrLen} exceeds the blob (${bytes.length} bytes)`);
  const typeOff = view.getUint32(H.type_off, littleEndian);
  const typeLen = view.getUint32(H.type_len, littleEndian);
  const strOff = view.getUint32(H.str_off, littleEndian);
  const strLen = view.getUint32(H.str_len, littleEndian);
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

function readStrings(bytes: Uint8Array, h: BtfHeader, baseTable: StringTable | undefined, adopt = false): StringTable {
  const own = bytes.subarray(h.strStart, h.strEnd);
  if (own.length > BTF_MAX_NAME_OFFSET) throw new BtfError(`BTF string section is ${own.length} bytes, over the kernel's limit`);
  if (baseTable === undefined && (own.length === 0 || own[0] !== 0)) {
    throw new BtfError('BTF string section must start with an empty string (NUL byte)');
  }
  if (own.length > 0 && own[own.length - 1] !== 0) throw new BtfError('BTF string section is not NUL-terminated');
  return new StringTable(own, baseTable?.end ?? 0, baseTable, adopt);
}

// ---------------------------------------------------------------------------------------------
// Type section: one checking pass over the raw words
// ---------------------------------------------------------------------------------------------

/** A parsed type section: the records as they were, and where each starts. */
interface RawTypes {
  /** The type section, copied, in host byte order (every field of every record is a 32-bit word). */
  readonly words: Uint32Array;
  /** Word index of each own type's btf_type record, by id minus the first own id. */
  readonly offsets: Uint32Array;
}

interface Scan {
  readonly offsets: Uint32Array;
  /** The largest type id any record refers to (checked against the type count afterwards). */
  readonly maxRef: number;
  /**
   * Indexes of records whose target kinds could not be checked during the scan (a func, datasec
   * or decl_tag referring to a type not seen yet, or to a kind that does not fit).
   */
  readonly deferred: readonly number[];
}

/** The type section copied into host-order words; a trailing partial word is left out. */
/** The type section as words over the blob's own memory when it is host-ordered and 4-byte aligned, else a copy. */
function adoptWords(bytes: Uint8Array, start: number, len: number, littleEndian: boolean): Uint32Array {
  const from = bytes.byteOffset + start;
  if (littleEndian !== HOST_LITTLE_ENDIAN || from % 4 !== 0) return copyWords(bytes, start, len, littleEndian);
  return new Uint32Array(bytes.buffer, from, len >>> 2);
}

function copyWords(bytes: Uint8Array, start: number, len: number, littleEndian: boolean): Uint32Array {
  const from = bytes.byteOffset + start;
  const words = new Uint32Array(bytes.buffer.slice(from, from + (len - (len % 4))));
  if (littleEndian !== HOST_LITTLE_ENDIAN) {
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      words[i] = ((w << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24)) >>> 0;
    }
  }
  return words;
}

function typeFail(id: number, message: string): BtfError {
  return new BtfError(`BTF type ${id}: ${message}`);
}

function truncated(id: number, what: string, needed: number, left: number): BtfError {
  return typeFail(id, `${what} truncated (needs ${needed} bytes, ${left} left in the type section)`);
}

function nameOutside(id: number, what: string, offset: number): BtfError {
  return typeFail(id, `${what} offset ${offset} is outside the string section`);
}

/**
 * Walks the type section once: finds where each record starts and checks everything a record can
 * get wrong by itself (truncation, kinds, reserved bits, vlen and kind_flag, sizes, encodings,
 * linkage, and that every name offset is inside the string section). Type references are only
 * gathered into `maxRef` here; they are checked once the type count is known.
 */
function scanTypes(w: Uint32Array, byteLen: number, firstId: number, strEnd: number, baseKind: (id: number) => number): Scan {
  const offsets = new Uint32Array(Math.floor(byteLen / BTF_TYPE_LEN));
  const deferred: number[] = [];
  let count = 0;
  let p = 0;
  let maxRef = 0;
  while (p * 4 < byteLen) {
    const id = firstId + count;
    if (id > BTF_MAX_TYPE) throw new BtfError(`BTF has more than ${BTF_MAX_TYPE} types`);
    let left = byteLen - p * 4;
    if (left < BTF_TYPE_LEN) throw truncated(id, 'btf_type', BTF_TYPE_LEN, left);
    const nameOff = w[p]!;
    const info = w[p + 1]!;
    const st = w[p + 2]!;
    const kind = (info >>> 24) & 0x1f;
    if (kind === 0 || kind > KIND_MAX) throw new BtfError(`BTF type ${id} has unknown kind ${kind}`);
    if ((info & BTF_INFO_RESERVED) !== 0) throw typeFail(id, `reserved bits set in info 0x${(info >>> 0).toString(16)}`);
    if (nameOff >= strEnd) throw nameOutside(id, 'name', nameOff);
    const vlen = info & 0xffff;
    if (vlen !== 0 && ((VLEN_KINDS >>> kind) & 1) === 0) throw typeFail(id, `vlen ${vlen} must be 0 for ${KIND_NAMES[kind]}`);
    if (info >>> 31 === 1 && ((FLAG_KINDS >>> kind) & 1) === 0) throw typeFail(id, `kind_flag must be 0 for ${KIND_NAMES[kind]}`);
    offsets[count++] = p;
    p += 3;
    left -= BTF_TYPE_LEN;
    switch (kind) { // most frequent kinds first (vmlinux: funcs, protos, pointers, structs)
      case KIND_FUNC:
        if (vlen >= LINKAGES.length) throw typeFail(id, `unknown linkage ${vlen}`);
        if (st > maxRef) maxRef = st;
        // The target's kind when it is already scanned (protos usually come first), else later.
        if (st < firstId ? baseKind(st) !== KIND_FUNC_PROTO
          : st - firstId >= count || ((w[offsets[st - firstId]! + 1]! >>> 24) & 0x1f) !== KIND_FUNC_PROTO) {
          deferred.push(count - 1);
        }
        break;
      case KIND_FUNC_PROTO: {
        if (left < vlen * 8) throw truncated(id, `${vlen} btf_param records`, vlen * 8, left);
        if (st > maxRef) maxRef = st;
        for (let i = 0; i < vlen; i++, p += 2) {
          if (w[p]! >= strEnd) throw nameOutside(id, `param ${i} name`, w[p]!);
          if (w[p + 1]! > maxRef) maxRef = w[p + 1]!;
        }
        break;
      }
      case KIND_PTR: case KIND_TYPEDEF: case KIND_VOLATILE: case KIND_CONST: case KIND_RESTRICT: case KIND_TYPE_TAG:
        if (st > maxRef) maxRef = st;
        break;
      case KIND_STRUCT: case KIND_UNION: {
        if (left < vlen * 12) throw truncated(id, `${vlen} btf_member records`, vlen * 12, left);
        for (let i = 0; i < vlen; i++, p += 3) {
          if (w[p]! >= strEnd) throw nameOutside(id, `member ${i} name`, w[p]!);
          if (w[p + 1]! > maxRef) maxRef = w[p + 1]!;
        }
        break;
      }
      case KIND_ENUM: case KIND_ENUM64: {
        if (!sizeAllowed(ENUM_SIZES, st)) throw typeFail(id, `enum size ${st} is not 1, 2, 4 or 8`);
        const stride = kind === KIND_ENUM ? 2 : 3;
        if (left < vlen * stride * 4) {
          throw truncated(id, `${vlen} ${kind === KIND_ENUM ? 'btf_enum' : 'btf_enum64'} records`, vlen * stride * 4, left);
        }
        for (let i = 0; i < vlen; i++, p += stride) {
          if (w[p]! >= strEnd) throw nameOutside(id, `enumerator ${i} name`, w[p]!);
        }
        break;
      }
      case KIND_ARRAY: {
        if (left < 12) throw truncated(id, 'btf_array', 12, left);
        const elem = w[p]!;
        const index = w[p + 1]!;
        if (elem > maxRef) maxRef = elem;
        if (index > maxRef) maxRef = index;
        p += 3;
        break;
      }
      case KIND_INT:
        if (left < 4) throw truncated(id, 'int encoding', 4, left);
        checkInt(id, st, w[p]!);
        p += 1;
        break;
      case KIND_VAR:
        if (left < 4) throw truncated(id, 'btf_var', 4, left);
        if (w[p]! >= LINKAGES.length) throw typeFail(id, `unknown linkage ${w[p]!}`);
        if (st > maxRef) maxRef = st;
        p += 1;
        break;
      case KIND_DATASEC: {
        if (left < vlen * 12) throw truncated(id, `${vlen} btf_var_secinfo records`, vlen * 12, left);
        for (let i = 0; i < vlen; i++, p += 3) {
          if (w[p]! > maxRef) maxRef = w[p]!;
        }
        deferred.push(count - 1);
        break;
      }
      case KIND_FLOAT:
        if (!sizeAllowed(FLOAT_SIZES, st)) throw typeFail(id, `float size ${st} is not 2, 4, 8, 12 or 16`);
        break;
      case KIND_DECL_TAG: {
        if (left < 4) throw truncated(id, 'btf_decl_tag', 4, left);
        const componentIdx = w[p]! | 0;
        if (componentIdx < -1) throw typeFail(id, `decl_tag component_idx ${componentIdx} is below -1`);
        if (st > maxRef) maxRef = st;
        if (componentIdx !== -1) deferred.push(count - 1);
        p += 1;
        break;
      }
      default:
        break;
    }
  }
  return { offsets: offsets.slice(0, count), maxRef, deferred };
}

/**
 * Where each record of a type section starts, and nothing else: for BTF the running kernel wrote
 * and checked itself when it booted (btf_parse_vmlinux), whose records need no second check. Only
 * what would derail the walk (an unknown kind, a record past the end) is an error.
 */
function recordOffsets(w: Uint32Array, byteLen: number, firstId: number): Uint32Array {
  const offsets = new Uint32Array(Math.floor(byteLen / BTF_TYPE_LEN));
  const words = byteLen >>> 2;
  let count = 0;
  let p = 0;
  while (p < words) {
    if (p + 3 > words) throw truncated(firstId + count, 'btf_type', BTF_TYPE_LEN, (words - p) * 4);
    const info = w[p + 1]!;
    const vlen = info & 0xffff;
    offsets[count++] = p;
    p += 3;
    switch ((info >>> 24) & 0x1f) {
      case KIND_FUNC_PROTO: case KIND_ENUM: p += 2 * vlen; break;
      case KIND_STRUCT: case KIND_UNION: case KIND_DATASEC: case KIND_ENUM64: p += 3 * vlen; break;
      case KIND_ARRAY: p += 3; break;
      case KIND_INT: case KIND_VAR: case KIND_DECL_TAG: p += 1; break;
      case KIND_PTR: case KIND_FWD: case KIND_TYPEDEF: case KIND_VOLATILE: case KIND_CONST: case KIND_RESTRICT:
      case KIND_FUNC: case KIND_FLOAT: case KIND_TYPE_TAG:
        break;
      default:
        throw new BtfError(`BTF type ${firstId + count - 1} has unknown kind ${(info >>> 24) & 0x1f}`);
    }
  }
  if (p !== words) throw typeFail(firstId + count - 1, `record runs ${(p - words) * 4} bytes past the end of the type section`);
  return offsets.slice(0, count);
}

function checkInt(id: number, size: number, enc: number): void {
  if ((enc & BTF_INT_RESERVED) !== 0) throw typeFail(id, `reserved bits set in int encoding 0x${(enc >>> 0).toString(16)}`);
  const encoding = (enc >>> 24) & 0x0f;
  const bitOffset = (enc >>> 16) & 0xff;
  const bits = enc & 0xff;
  if ((encoding & ~(BTF_INT_SIGNED | BTF_INT_CHAR | BTF_INT_BOOL)) !== 0) throw typeFail(id, `unknown int encoding ${encoding}`);
  if (!sizeAllowed(INT_SIZES, size)) throw typeFail(id, `int size ${size} is not 1, 2, 4, 8 or 16`);
  if (bits === 0 || bits > 128 || bitOffset + bits > size * 8) {
    throw typeFail(id, `int bits ${bits} at bit offset ${bitOffset} do not fit ${size} bytes`);
  }
}

/** True when every type id the record at word `p` refers to is below `total`. */
function refsBelow(w: Uint32Array, p: number, total: number): boolean {
  const info = w[p + 1]!;
  const kind = (info >>> 24) & 0x1f;
  const vlen = info & 0xffff;
  const st = w[p + 2]!;
  const q = p + 3;
  switch (kind) {
    case KIND_PTR: case KIND_TYPEDEF: case KIND_VOLATILE: case KIND_CONST: case KIND_RESTRICT: case KIND_TYPE_TAG:
    case KIND_FUNC: case KIND_VAR: case KIND_DECL_TAG:
      return st < total;
    case KIND_ARRAY: return w[q]! < total && w[q + 1]! < total;
    case KIND_STRUCT: case KIND_UNION:
      for (let i = 0; i < vlen; i++) if (w[q + 3 * i + 1]! >= total) return false;
      return true;
    case KIND_FUNC_PROTO:
      if (st >= total) return false;
      for (let i = 0; i < vlen; i++) if (w[q + 2 * i + 1]! >= total) return false;
      return true;
    case KIND_DATASEC:
      for (let i = 0; i < vlen; i++) if (w[q + 3 * i]! >= total) return false;
      return true;
    default:
      return true;
  }
}

/** Word index just past own record `i`. */
function recordEnd(raw: RawTypes, i: number): number {
  return i + 1 < raw.offsets.length ? raw.offsets[i + 1]! : raw.words.length;
}

/**
 * False for a record with bits the type model drops (a nonzero size word on an array or a forward
 * declaration): marshal encodes such a type again rather than copying it.
 */
function recordKept(raw: RawTypes, i: number): boolean {
  const p = raw.offsets[i]!;
  const kind = (raw.words[p + 1]! >>> 24) & 0x1f;
  return (kind !== KIND_ARRAY && kind !== KIND_FWD) || raw.words[p + 2] === 0;
}


// ---------------------------------------------------------------------------------------------
// Resolution checks: what the kernel's btf_resolve does, per type, on the raw words
// ---------------------------------------------------------------------------------------------

/**
 * Per own type of a parsed blob, the results of the checks `#validate` runs on first use. The
 * kernel resolves every type when BTF is loaded; bpfkit does the same walk lazily, one type (and
 * whatever it holds by value) at a time, so reading vmlinux stays a copy and a scan.
 */
interface TypeChecks {
  /** 0 unchecked, 1 on the current walk's stack, 2 checked. */
  readonly state: Uint8Array;
  /** Byte size once checked; -1 for a type without one (void, func, func_proto, fwd). */
  readonly size: Float64Array;
  /** Levels of types held by value, the type itself included. */
  readonly height: Uint16Array;
  /** Length of the pointer/qualifier chain starting here (0: not yet known). */
  readonly chain: Uint16Array;
  /** Chain walk that last passed here, to find loops. */
  readonly walk: Uint32Array;
  walks: number;
}

function newChecks(count: number): TypeChecks {
  return {
    state: new Uint8Array(count), size: new Float64Array(count), height: new Uint16Array(count),
    chain: new Uint16Array(count), walk: new Uint32Array(count), walks: 0,
  };
}

function isModifierKind(kind: number): boolean {
  return kind === KIND_TYPEDEF || kind === KIND_VOLATILE || kind === KIND_CONST || kind === KIND_RESTRICT || kind === KIND_TYPE_TAG;
}

/** The `k`-th type the record at word `p` holds by value (its size depends on it), or -1 after the last. */
function valueChild(w: Uint32Array, p: number, k: number): number {
  const info = w[p + 1]!;
  const kind = (info >>> 24) & 0x1f;
  switch (kind) {
    case KIND_TYPEDEF: case KIND_VOLATILE: case KIND_CONST: case KIND_RESTRICT: case KIND_TYPE_TAG: case KIND_VAR:
      return k === 0 ? w[p + 2]! : -1;
    case KIND_ARRAY: return k === 0 ? w[p + 3]! : -1;
    case KIND_STRUCT: case KIND_UNION: return k < (info & 0xffff) ? w[p + 4 + 3 * k]! : -1;
    case KIND_DATASEC: return k < (info & 0xffff) ? w[p + 3 + 3 * k]! : -1;
    default: return -1;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding one record (already checked by scanTypes)
// ---------------------------------------------------------------------------------------------

function decodeRecord(w: Uint32Array, p: number, id: number, strings: StringTable): BtfType {
  const name = strings.lookup(w[p]!)!;
  const info = w[p + 1]!;
  const st = w[p + 2]!;
  const kind = (info >>> 24) & 0x1f;
  const vlen = info & 0xffff;
  const kindFlag = info >>> 31 === 1;
  const q = p + 3;
  switch (kind) {
    case KIND_INT: {
      const enc = w[q]!;
      const encoding = (enc >>> 24) & 0x0f;
      return {
        kind: 'int', id, name, size: st,
        signed: (encoding & BTF_INT_SIGNED) !== 0, char: (encoding & BTF_INT_CHAR) !== 0,
        bool: (encoding & BTF_INT_BOOL) !== 0, bitOffset: (enc >>> 16) & 0xff, bits: enc & 0xff,
      } satisfies BtfInt;
    }
    case KIND_PTR: return { kind: 'ptr', id, name, type: st } satisfies BtfPtr;
    case KIND_ARRAY: return { kind: 'array', id, name, type: w[q]!, indexType: w[q + 1]!, nelems: w[q + 2]! } satisfies BtfArray;
    case KIND_STRUCT: case KIND_UNION: {
      const members: BtfMember[] = new Array(vlen);
      for (let i = 0, m = q; i < vlen; i++, m += 3) {
        const offset = w[m + 2]!;
        members[i] = {
          name: strings.lookup(w[m]!)!, type: w[m + 1]!,
          // With kind_flag the offset word packs BTF_MEMBER_BITFIELD_SIZE (top 8 bits) and the bit offset.
          bitOffset: kindFlag ? offset & 0xffffff : offset,
          bitfieldSize: kindFlag ? offset >>> 24 : 0,
        };
      }
      return { kind: kind === KIND_STRUCT ? 'struct' : 'union', id, name, size: st, members, kindFlag } satisfies BtfStruct;
    }
    case KIND_ENUM: {
      const values: BtfEnumValue[] = new Array(vlen);
      for (let i = 0, m = q; i < vlen; i++, m += 2) {
        // kind_flag marks a signed enum; otherwise the 32-bit value is unsigned.
        values[i] = { name: strings.lookup(w[m]!)!, value: BigInt(kindFlag ? w[m + 1]! | 0 : w[m + 1]!) };
      }
      return { kind: 'enum', id, name, size: st, signed: kindFlag, values } satisfies BtfEnum;
    }
    case KIND_ENUM64: {
      const values: BtfEnumValue[] = new Array(vlen);
      for (let i = 0, m = q; i < vlen; i++, m += 3) {
        const raw = (BigInt(w[m + 2]!) << 32n) | BigInt(w[m + 1]!);
        values[i] = { name: strings.lookup(w[m]!)!, value: kindFlag ? BigInt.asIntN(64, raw) : raw };
      }
      return { kind: 'enum64', id, name, size: st, signed: kindFlag, values } satisfies BtfEnum;
    }
    case KIND_FWD: return { kind: 'fwd', id, name, fwdKind: kindFlag ? 'union' : 'struct' };
    case KIND_TYPEDEF: case KIND_VOLATILE: case KIND_CONST: case KIND_RESTRICT:
      return { kind: KIND_NAMES[kind] as BtfQualifier['kind'], id, name, type: st } satisfies BtfQualifier;
    case KIND_TYPE_TAG: return tagged({ kind: 'type_tag', id, name, type: st } satisfies BtfQualifier, kindFlag);
    // A func's vlen holds its btf_func_linkage.
    case KIND_FUNC: return { kind: 'func', id, name, type: st, linkage: LINKAGES[vlen]! } satisfies BtfFunc;
    case KIND_FUNC_PROTO: {
      const params: BtfParam[] = new Array(vlen);
      for (let i = 0, m = q; i < vlen; i++, m += 2) params[i] = { name: strings.lookup(w[m]!)!, type: w[m + 1]! };
      return { kind: 'func_proto', id, name, returnType: st, params } satisfies BtfFuncProto;
    }
    case KIND_VAR: return { kind: 'var', id, name, type: st, linkage: LINKAGES[w[q]!]! } satisfies BtfVar;
    case KIND_DATASEC: {
      const vars: BtfVarSecinfo[] = new Array(vlen);
      for (let i = 0, m = q; i < vlen; i++, m += 3) vars[i] = { type: w[m]!, offset: w[m + 1]!, size: w[m + 2]! };
      return { kind: 'datasec', id, name, size: st, vars } satisfies BtfDatasec;
    }
    case KIND_FLOAT: return { kind: 'float', id, name, size: st };
    case KIND_DECL_TAG: return tagged({ kind: 'decl_tag', id, name, type: st, componentIdx: w[q]! | 0 } satisfies BtfDeclTag, kindFlag);
    default: break;
  }
  throw new BtfError(`BTF type ${id} has unknown kind ${kind}`);
}

function tagged<T extends BtfType>(type: T, kindFlag: boolean): T {
  if (kindFlag) attributeTags.add(type);
  return type;
}

// ---------------------------------------------------------------------------------------------
// Reference checks on the type model (BTF built in code; messages for parsed BTF)
// ---------------------------------------------------------------------------------------------

/** The type with this id when it exists, else undefined. */
type Lookup = (id: number) => BtfType | undefined;

/** Checks that `t`'s references exist (`total` types in all) and point at fitting kinds. */
function checkRefs(lookup: Lookup, total: number, t: BtfType): void {
  const ref = (target: number, what: string): BtfType => {
    const found = lookup(target);
    if (found === undefined) {
      throw new BtfError(`BTF type ${t.id} (${t.kind} '${t.name}'): ${what} refers to type ${target}, which does not exist (${total} types)`);
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
  const H = btf_header;
  view.setUint16(H.magic, BTF_MAGIC, le);
  view.setUint8(H.version, BTF_VERSION);
  view.setUint8(H.flags, 0);
  view.setUint32(H.hdr_len, BTF_HEADER_LEN, le);
  view.setUint32(H.type_off, 0, le);
  view.setUint32(H.type_len, typeLen, le);
  view.setUint32(H.str_off, typeLen, le); // strings follow the types
  view.setUint32(H.str_len, strLen, le);
}

// ---------------------------------------------------------------------------------------------
// Name lookups over a parsed type section
// ---------------------------------------------------------------------------------------------

/**
 * Own types of a parsed blob chained by a hash of their name's bytes (anonymous types left out),
 * so a name is found without decoding any other. Chains run in id order.
 */
interface NameHash {
  readonly heads: Int32Array;
  readonly next: Int32Array;
  readonly mask: number;
}

function buildNameHash(raw: RawTypes, strings: StringTable): NameHash {
  const { words, offsets } = raw;
  const n = offsets.length;
  const size = 2 ** Math.max(4, Math.ceil(Math.log2(2 * n + 1)));
  const mask = size - 1;
  const heads = new Int32Array(size).fill(-1);
  const next = new Int32Array(n);
  const own = strings.bytes;
  for (let i = n - 1; i >= 0; i--) {
    const off = words[offsets[i]!]!;
    let h: number;
    if (off >= strings.start) {
      const local = off - strings.start;
      if (own[local] === 0) continue;
      h = hashName(strings.view, local);
    } else {
      // Split BTF: the name lives in a base's string section.
      const table = strings.tableFor(off)!;
      if (table.bytes[off - table.start] === 0) continue;
      h = hashName(table.view, off - table.start);
    }
    next[i] = heads[h & mask]!;
    heads[h & mask] = i;
  }
  return { heads, next, mask };
}

/** True when the NUL-terminated strings at `a[ai]` and `b[bi]` have the same bytes (both arrays end in NUL). */
function sameBytes(a: Uint8Array, ai: number, b: Uint8Array, bi: number): boolean {
  for (;;) {
    const x = a[ai++];
    if (x !== b[bi++]) return false;
    if (x === 0) return true;
  }
}

/**
 * True when the NUL-terminated string at `bytes[at]` is `want` or, with `flavors`, `want` followed
 * by "___" (a CO-RE flavor suffix).
 */
function namedLike(bytes: Uint8Array, at: number, want: Uint8Array, flavors: boolean): boolean {
  const n = want.length;
  for (let j = 0; j < n; j++) if (bytes[at + j] !== want[j]) return false;
  const next = bytes[at + n];
  if (next === 0) return true;
  return flavors && next === 95 && bytes[at + n + 1] === 95 && bytes[at + n + 2] === 95;
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

/** Options of {@link Btf.parse}, {@link Btf.parseKernel} and {@link Btf.loadKernel}: the base of split BTF. */
export interface BtfParseOptions {
  /** The BTF this one is split from (vmlinux, for a module's BTF). */
  readonly base?: Btf;
  /**
   * parseKernel only: keep the blob's own memory instead of copying it (where its byte order and
   * alignment allow; the string section needs 4 zero bytes after it in the same ArrayBuffer).
   * The caller must never change the buffer afterwards: for a blob just read from
   * /sys/kernel/btf that nothing else holds.
   */
  readonly adopt?: boolean;
}

/** Options of {@link Btf.marshal}: the byte order to write. */
export interface BtfMarshalOptions {
  /** Byte order of the output; the host's by default, which is what the kernel wants. */
  readonly littleEndian?: boolean;
}

/** Module-internal access to Btf internals (assigned in Btf's static block). */
let markKernelChecked: (btf: Btf) => void;
let replaceRecords: (btf: Btf, replacements: ReadonlyMap<number, BtfType>) => Btf;
let idsNamed: (btf: Btf, names: readonly string[], flavors: boolean, out: Map<string, number[]>) => void;
let kindAt: (btf: Btf, id: number) => number;

/**
 * BPF Type Format: the types of a BPF object or of the kernel, parsed. Look types up by id or
 * name, ask sizes and alignment, build codecs ({@link codecFor}), print C ({@link dumpC}), write
 * it back (marshal). Parsing is pure; {@link Btf.loadKernel} reads /sys/kernel/btf/vmlinux
 * (Requires Linux 5.4 with CONFIG_DEBUG_INFO_BTF).
 *
 * @throws {@link BtfError} (`ERR_BPFKIT_BTF`, `ERR_BPFKIT_BTF_FILE`) when the bytes are not valid
 *   BTF, a type id does not exist, or the kernel's BTF file cannot be read.
 */
export class Btf {
  /** The BTF this one continues, for split BTF. */
  readonly base: Btf | undefined;
  /** Byte order of the blob this came from (host order for BTF built in code). */
  readonly littleEndian: boolean;
  readonly #strings: StringTable;
  /** Id of the first type this Btf holds itself: 1, or the base's length. */
  readonly #firstId: number;
  /** The checked type section, for parsed BTF; undefined for BTF built in code. */
  readonly #raw: RawTypes | undefined;
  /** Number of types this Btf holds itself. */
  readonly #count: number;
  /**
   * Own types by id minus #firstId: all given for built BTF; for parsed BTF each is decoded on
   * first use, and the array itself is made on the first decode.
   */
  #own: (BtfType | undefined)[] | undefined;
  /**
   * For BTF made by withTypes, the parsed Btf it descends from (same strings, same base): types
   * still identical to the ones decoded there are marshalled by copying their records.
   */
  readonly #origin: Btf | undefined;
  /** Every type by id, built on the first use of `types`. */
  #all: readonly BtfType[] | undefined;
  #nameHash: NameHash | undefined;
  #nameMap: Map<string, number[]> | undefined;
  /** Resolution checks of parsed types, made on first use. */
  #checks: TypeChecks | undefined;
  /** Set for the running kernel's own vmlinux, which the kernel checked at boot: decoding skips #validate. */
  #kernelChecked = false;
  /** Type nodes typeName may still spell in the current call (a graph may fan out exponentially). */
  #spellBudget = 0;

  static {
    markKernelChecked = (btf) => { btf.#kernelChecked = true; };
    replaceRecords = (btf, replacements) => btf.#withRecordsReplaced(replacements);
    idsNamed = (btf, names, flavors, out) => btf.#ownIdsNamedAny(names, flavors, out);
    kindAt = (btf, id) => btf.#kindAt(id);
  }

  private constructor(
    strings: StringTable, base: Btf | undefined, littleEndian: boolean,
    raw: RawTypes | undefined, count: number, own: BtfType[] | undefined, origin: Btf | undefined,
  ) {
    this.base = base;
    this.littleEndian = littleEndian;
    this.#strings = strings;
    this.#firstId = base?.length ?? 1;
    this.#raw = raw;
    this.#count = count;
    this.#own = own;
    this.#origin = origin;
  }

  /**
   * Checks a whole `.BTF` blob (btf_header, type section, string section) and keeps it; types are
   * decoded when first asked for. The blob is copied, so the caller may reuse its buffer.
   */
  static parse(bytes: Uint8Array, options?: BtfParseOptions): Btf {
    return Btf.#parse(bytes, options, false);
  }

  /**
   * BTF the running kernel wrote (/sys/kernel/btf/vmlinux and its modules), which the kernel
   * checked record by record when it booted: the whole-section checking pass of parse() is left
   * out (the walk that finds each record remains), the per-type checks still run as types are
   * decoded. A cold process parses vmlinux several times faster. Any other BTF goes to parse().
   */
  static parseKernel(bytes: Uint8Array, options?: BtfParseOptions): Btf {
    return Btf.#parse(bytes, options, true);
  }

  static #parse(bytes: Uint8Array, options: BtfParseOptions | undefined, fromKernel: boolean): Btf {
    if (!(bytes instanceof Uint8Array)) throw new BtfError('BTF must be given as a Uint8Array');
    const base = options?.base;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const header = readHeader(bytes, view);
    const adopt = fromKernel && options?.adopt === true;
    const strings = readStrings(bytes, header, base && base.#strings, adopt);
    const firstId = base?.length ?? 1;
    const typeLen = header.typeEnd - header.typeStart;
    const words = adopt ? adoptWords(bytes, header.typeStart, typeLen, header.littleEndian) : copyWords(bytes, header.typeStart, typeLen, header.littleEndian);
    if (fromKernel) {
      const offsets = recordOffsets(words, typeLen, firstId);
      return new Btf(strings, base, header.littleEndian, { words, offsets }, offsets.length, undefined, undefined);
    }
    const scan = scanTypes(words, typeLen, firstId, strings.end, (id) => (base ? base.#kindAt(id) : 0));
    const raw: RawTypes = { words, offsets: scan.offsets };
    const btf = new Btf(strings, base, header.littleEndian, raw, scan.offsets.length, undefined, undefined);
    btf.#checkParsedRefs(scan.maxRef, scan.deferred);
    return btf;
  }

  /**
   * BTF built in code. `types[i]` must have id `i`; index 0 is void. With `base`, `types` is the
   * full list too: its first `base.length` entries are the base's (only their ids are checked).
   */
  static fromTypes(types: readonly BtfType[], options?: BtfParseOptions): Btf {
    const base = options?.base;
    return Btf.#build(types, emptyStrings(base && base.#strings), base, HOST_LITTLE_ENDIAN, undefined);
  }

  /** Reads kernel BTF, vmlinux by default; pass `base` (vmlinux) for a module's file. */
  static async loadKernel(path = '/sys/kernel/btf/vmlinux', options?: BtfParseOptions): Promise<Btf> {
    return Btf.parse(await readFile(path), options);
  }

  static #build(types: readonly BtfType[], strings: StringTable, base: Btf | undefined, le: boolean, origin: Btf | undefined): Btf {
    if (!Array.isArray(types)) throw new BtfError('BTF types must be an array');
    const firstId = base?.length ?? 1;
    if (types.length < firstId) throw new BtfError(`BTF types must start with the ${firstId} types of the base (void for standalone BTF)`);
    if (base) checkBasePrefix(types, base); else checkVoid(types[0]);
    const own = types.slice(firstId);
    const btf = new Btf(strings, base, le, undefined, own.length, own, origin);
    btf.#checkBuilt();
    return btf;
  }

  /**
   * The same BTF with its own types replaced (ids from `base.length`, or 1, must match indexes).
   * The string table is kept, so `.BTF.ext` string offsets stay valid after rewriting types.
   */
  withTypes(types: readonly BtfType[]): Btf {
    return Btf.#build(types, this.#strings, this.base, this.littleEndian, this.#raw ? this : this.#origin);
  }

  /**
   * Every type by id: the base's (for split BTF) followed by this blob's own; index 0 is void.
   * The first use decodes every type; `type(id)` and `length` decode only what they need.
   */
  get types(): readonly BtfType[] {
    if (this.#all === undefined) {
      const all: BtfType[] = this.base ? this.base.types.slice() : [VOID];
      for (let i = 0; i < this.#count; i++) all.push(this.#ownType(i));
      this.#all = all;
    }
    return this.#all;
  }

  /** Number of type ids, void and base types included. */
  get length(): number {
    return this.#firstId + this.#count;
  }

  /** The type with this id. */
  type(id: number): BtfType {
    if (Number.isInteger(id)) {
      const i = id - this.#firstId;
      if (i >= 0 && i < this.#count) return this.#ownType(i);
      if (id >= 0 && i < 0) return this.base ? this.base.type(id) : VOID;
    }
    throw new BtfError(`BTF type id ${id} is out of range (${this.length} types)`);
  }

  /** The type with this id, or undefined when there is none (for spelling broken graphs). */
  #peek(id: number): BtfType | undefined {
    return Number.isInteger(id) && id >= 0 && id < this.length ? this.type(id) : undefined;
  }

  /** Own type `i` (its id minus #firstId), decoded if this is its first use. */
  #ownType(i: number): BtfType {
    return this.#own?.[i] ?? this.#decode(i);
  }

  #decode(i: number): BtfType {
    const raw = this.#raw!;
    if (!this.#kernelChecked) this.#validate(i);
    const t = decodeRecord(raw.words, raw.offsets[i]!, this.#firstId + i, this.#strings);
    (this.#own ??= new Array<BtfType | undefined>(this.#count))[i] = t;
    return t;
  }

  /**
   * Runs the kernel's resolution checks on every own type now (parsing runs them lazily, on each
   * type's first use). Throws a BtfError naming the first bad type.
   */
  validate(): void {
    if (this.#raw === undefined) return;
    for (let i = 0; i < this.#count; i++) this.#validate(i);
  }

  /**
   * Checks own type `i` and everything it holds by value, as the kernel's btf_resolve does: no
   * type contains itself by value, sizes fit in 32 bits, members and section variables lie within
   * their struct or section, bitfields sit on integers, and pointer/qualifier chains end. Each
   * type is walked once (an explicit stack, so hostile nesting cannot overflow ours).
   */
  #validate(start: number): void {
    const c = (this.#checks ??= newChecks(this.#count));
    if (c.state[start] === 2) return;
    const raw = this.#raw!;
    const first = this.#firstId;
    const stack: number[] = [start];
    const next: number[] = [0];
    c.state[start] = 1;
    try {
      while (stack.length > 0) {
        const top = stack.length - 1;
        const i = stack[top]!;
        const child = valueChild(raw.words, raw.offsets[i]!, next[top]!);
        if (child >= 0) {
          next[top]!++;
          const j = child - first;
          if (j < 0 || c.state[j] === 2) continue;
          if (c.state[j] === 1) {
            const loop = stack.slice(stack.indexOf(j)).map((k) => first + k);
            throw this.#fail(j, `contains itself by value (loop ${[...loop, child].join(' -> ')}); only a pointer may refer back`);
          }
          c.state[j] = 1;
          stack.push(j);
          next.push(0);
          continue;
        }
        this.#finish(i, c);
        c.state[i] = 2;
        stack.pop();
        next.pop();
      }
    } catch (e) {
      for (const k of stack) if (c.state[k] === 1) c.state[k] = 0;
      throw e;
    }
  }

  /** A BtfError naming own type `i` by id, kind and name (read from the raw record). */
  #fail(i: number, message: string): BtfError {
    const raw = this.#raw!;
    const p = raw.offsets[i]!;
    const name = this.#strings.lookup(raw.words[p]!) ?? '';
    const kind = KIND_NAMES[(raw.words[p + 1]! >>> 24) & 0x1f] ?? 'type';
    return new BtfError(`BTF type ${this.#firstId + i} (${kind}${name ? ` '${name}'` : ''}): ${message}`);
  }

  /** Size of a type whose checks passed (checking it if needed); -1 when it has none. */
  #checkedSize(id: number): number {
    if (id === 0) return -1;
    const i = id - this.#firstId;
    if (i < 0) return this.base!.#checkedSize(id);
    if (this.#raw === undefined) {
      try {
        return this.sizeof(id);
      } catch {
        return -1;
      }
    }
    this.#validate(i);
    return this.#checks!.size[i]!;
  }

  #checkedHeight(id: number): number {
    if (id === 0) return 0;
    const i = id - this.#firstId;
    if (i < 0) return this.base!.#checkedHeight(id);
    if (this.#raw === undefined) return 1;
    this.#validate(i);
    return this.#checks!.height[i]!;
  }

  /** Kind number of `id` under any qualifiers and typedefs, and an int's encoding word. */
  #resolvedKind(id: number): { kind: number; enc: number } {
    for (let steps = 0; steps <= BTF_MAX_DEPTH + 1; steps++) {
      if (id === 0) return { kind: 0, enc: 0 };
      const i = id - this.#firstId;
      if (i < 0) return this.base!.#resolvedKind(id);
      const kind = this.#kindAt(id);
      if (this.#raw === undefined) {
        const t = this.type(id);
        if (isQualifier(t)) { id = t.type; continue; }
        return { kind, enc: t.kind === 'int' ? ((t.bitOffset << 16) | t.bits) : 0 };
      }
      const p = this.#raw.offsets[i]!;
      if (isModifierKind(kind)) { id = this.#raw.words[p + 2]!; continue; }
      return { kind, enc: kind === KIND_INT ? this.#raw.words[p + 3]! : 0 };
    }
    return { kind: -1, enc: 0 };
  }

  /** The checks of own type `i` once everything it holds by value has passed its own. */
  #finish(i: number, c: TypeChecks): void {
    const w = this.#raw!.words;
    const p = this.#raw!.offsets[i]!;
    const info = w[p + 1]!;
    const kind = (info >>> 24) & 0x1f;
    const st = w[p + 2]!;
    let size = -1;
    let height = 1;
    switch (kind) {
      case KIND_INT: case KIND_ENUM: case KIND_ENUM64: case KIND_FLOAT:
        size = st;
        break;
      case KIND_PTR:
        size = BPF_PTR_SIZE;
        this.#chainFrom(i, c);
        break;
      case KIND_TYPEDEF: case KIND_VOLATILE: case KIND_CONST: case KIND_RESTRICT: case KIND_TYPE_TAG: case KIND_VAR:
        size = this.#checkedSize(st);
        height += this.#checkedHeight(st);
        break;
      case KIND_ARRAY: {
        const elem = w[p + 3]!;
        const nelems = w[p + 5]!;
        const elemSize = this.#checkedSize(elem);
        if (elemSize < 0) throw this.#fail(i, `element type ${elem} has no size`);
        size = elemSize * nelems;
        if (size > BTF_MAX_SIZE) throw this.#fail(i, `${nelems} elements of ${elemSize} bytes exceed the 4 GiB a type may have`);
        height += this.#checkedHeight(elem);
        break;
      }
      case KIND_STRUCT: case KIND_UNION:
        size = st;
        height = this.#checkMembers(i, w, p);
        break;
      case KIND_DATASEC:
        size = st;
        height = this.#checkSecinfos(i, w, p);
        break;
      case KIND_FUNC_PROTO:
        // Only the last parameter may be void (with no name): C's `...`.
        for (let k = 0, q = p + 3, n = info & 0xffff; k < n; k++, q += 2) {
          if (w[q + 1] === 0 && (k !== n - 1 || w[q] !== 0)) throw this.#fail(i, `parameter ${k} is void; only a last, unnamed one may be (varargs)`);
        }
        break;
      default:
        break;
    }
    if (height > BTF_MAX_DEPTH) throw this.#fail(i, `holds types by value more than ${BTF_MAX_DEPTH} levels deep`);
    c.size[i] = size;
    c.height[i] = height;
  }

  /** Member offsets in order and inside the struct, bitfields on integers; returns the height. */
  #checkMembers(i: number, w: Uint32Array, p: number): number {
    const info = w[p + 1]!;
    const isUnion = ((info >>> 24) & 0x1f) === KIND_UNION;
    const kindFlag = info >>> 31 === 1;
    const vlen = info & 0xffff;
    const bits = w[p + 2]! * 8;
    let height = 1;
    let last = 0;
    for (let k = 0, q = p + 3; k < vlen; k++, q += 3) {
      const type = w[q + 1]!;
      const word = w[q + 2]!;
      const bitOff = kindFlag ? word & 0xffffff : word;
      const bitfield = kindFlag ? word >>> 24 : 0;
      const what = (): string => `member ${k}${w[q] ? ` '${this.#strings.lookup(w[q]!)}'` : ''}`;
      if (isUnion && bitOff !== 0) throw this.#fail(i, `${what()} is at bit offset ${bitOff}; union members start at 0`);
      if (bitOff < last) throw this.#fail(i, `${what()} at bit offset ${bitOff} comes before the previous member (${last})`);
      last = bitOff;
      const size = this.#checkedSize(type);
      if (size < 0) throw this.#fail(i, `${what()} has type ${type}, which has no size`);
      height = Math.max(height, 1 + this.#checkedHeight(type));
      const { kind, enc } = this.#resolvedKind(type);
      const integral = kind === KIND_INT || kind === KIND_ENUM || kind === KIND_ENUM64;
      let end: number;
      if (bitfield !== 0) {
        if (!integral) throw this.#fail(i, `${what()} is a bitfield of type ${type}, which is not an integer or enum`);
        if (bitfield > size * 8) throw this.#fail(i, `${what()} is a ${bitfield}-bit bitfield of a ${size}-byte type`);
        end = bitOff + bitfield;
      } else if (kind === KIND_INT && ((enc >>> 16) & 0xff) + (enc & 0xff) !== size * 8) {
        end = bitOff + ((enc >>> 16) & 0xff) + (enc & 0xff); // an int whose encoding narrows it
      } else {
        if (bitOff % 8 !== 0 && !integral) throw this.#fail(i, `${what()} at bit offset ${bitOff} is not byte-aligned`);
        end = bitOff + size * 8;
      }
      if (end > bits) throw this.#fail(i, `${what()} ends at bit ${end}, past the end of the ${bits / 8}-byte type`);
    }
    return height;
  }

  /** Variables of a sized section lie inside it; returns the height. */
  #checkSecinfos(i: number, w: Uint32Array, p: number): number {
    const vlen = w[p + 1]! & 0xffff;
    const size = w[p + 2]!;
    let height = 1;
    for (let k = 0, q = p + 3; k < vlen; k++, q += 3) {
      const offset = w[q + 1]!;
      const len = w[q + 2]!;
      // An object's sections may say 0 until the loader fills sizes in (libbpf does the same).
      if (offset + len > (size === 0 ? BTF_MAX_SIZE : size)) {
        throw this.#fail(i, `variable ${k} (type ${w[q]!}) at offset ${offset}, ${len} bytes, lies past the end of the ${size}-byte section`);
      }
      height = Math.max(height, 1 + this.#checkedHeight(w[q]!));
    }
    return height;
  }

  /**
   * Length of the pointer/qualifier chain from own type `i`: it must end (at a type that is
   * neither), as the kernel's resolution of pointers requires, and within BTF_MAX_DEPTH steps.
   */
  #chainFrom(i: number, c: TypeChecks): number {
    if (c.chain[i] !== 0) return c.chain[i]!;
    const raw = this.#raw!;
    const first = this.#firstId;
    const walk = ++c.walks;
    const path: number[] = [];
    let id = first + i;
    let tail = 0;
    for (;;) {
      const j = id - first;
      if (id === 0) break;
      if (j < 0) { tail = this.base!.#chainLength(id); break; }
      if (c.chain[j] !== 0) { tail = c.chain[j]!; break; }
      if (c.walk[j] === walk) throw this.#fail(i, `is part of a loop of pointers and qualifiers through type ${id}`);
      const kind = (raw.words[raw.offsets[j]! + 1]! >>> 24) & 0x1f;
      if (kind !== KIND_PTR && !isModifierKind(kind)) break;
      c.walk[j] = walk;
      path.push(j);
      id = raw.words[raw.offsets[j]! + 2]!;
    }
    for (let k = path.length - 1; k >= 0; k--) {
      if (++tail > BTF_MAX_DEPTH) throw this.#fail(i, `starts a chain of pointers and qualifiers more than ${BTF_MAX_DEPTH} long`);
      c.chain[path[k]!] = tail;
    }
    return c.chain[i]!;
  }

  #chainLength(id: number): number {
    const i = id - this.#firstId;
    if (i < 0) return this.base!.#chainLength(id);
    if (this.#raw === undefined) return 0;
    return this.#chainFrom(i, (this.#checks ??= newChecks(this.#count)));
  }

  /** Kind number of an existing type id, without decoding it. */
  #kindAt(id: number): number {
    const i = id - this.#firstId;
    if (i < 0) return this.base ? this.base.#kindAt(id) : 0;
    const raw = this.#raw;
    if (raw) return (raw.words[raw.offsets[i]! + 1]! >>> 24) & 0x1f;
    return KIND_NUMBERS.get(this.#own![i]!.kind) ?? -1;
  }

  /**
   * Every type with this name (optionally only of one kind), base types included. On parsed BTF
   * the first call chains every type by a hash of its name's bytes (one pass over the name
   * offsets); each call then decodes only the types it returns.
   */
  byName(name: string, kind?: BtfKindName): BtfType[] {
    const found = this.base ? this.base.byName(name, kind) : [];
    if (typeof name !== 'string' || name === '') return found;
    const wanted = kind === undefined ? -1 : KIND_NUMBERS.get(kind) ?? -2;
    for (const i of this.#ownIdsNamed(name)) {
      if (wanted !== -1 && this.#kindAt(this.#firstId + i) !== wanted) continue;
      const t = this.#ownType(i);
      if (t.name === name) found.push(t);
    }
    return found;
  }

  /** Indexes (id minus #firstId) of own types that may be named `name`, in id order. */
  #ownIdsNamed(name: string): number[] {
    const raw = this.#raw;
    if (raw === undefined || name.includes('\uFFFD')) {
      // Built BTF; or a name that may have come from decoding invalid UTF-8, whose bytes differ.
      this.#nameMap ??= this.#buildNameMap();
      return this.#nameMap.get(name) ?? [];
    }
    if (name.includes('\0')) return [];
    const encoded = utf8Encoder.encode(`${name}\0`);
    const padded = new Uint8Array(encoded.length + STRING_PAD);
    padded.set(encoded);
    const out: number[] = [];
    this.#idsNamedLike(raw, new DataView(padded.buffer), padded, 0, out);
    return out;
  }

  /**
   * Appends to `out` the indexes (id minus #firstId, in id order) of own types whose name has the
   * bytes of the NUL-terminated string at `at` in `bytes` (`view` covers it and STRING_PAD more).
   */
  #idsNamedLike(raw: RawTypes, view: DataView, bytes: Uint8Array, at: number, out: number[]): void {
    const strings = this.#strings;
    const index = (this.#nameHash ??= buildNameHash(raw, strings));
    const h = hashName(view, at) & index.mask;
    for (let i = index.heads[h]!; i !== -1; i = index.next[i]!) {
      const off = raw.words[raw.offsets[i]!]!;
      const table = off >= strings.start ? strings : strings.tableFor(off)!;
      if (sameBytes(table.bytes, off - table.start, bytes, at)) out.push(i);
    }
  }

  #buildNameMap(): Map<string, number[]> {
    const map = new Map<string, number[]>();
    for (let i = 0; i < this.#count; i++) {
      const name = this.#ownType(i).name;
      if (name === '') continue;
      const list = map.get(name);
      if (list) list.push(i); else map.set(name, [i]);
    }
    return map;
  }

  /**
   * Appends to `out` (by name, in id order) the ids of own types named one of `names` or, with
   * `flavors`, `name___` followed by anything. Parsed BTF is walked once for all the names, each
   * record's name tested by its first four bytes before any string is compared or decoded: the
   * kernel's ~126,000 types are never hashed or decoded for a handful of names.
   */
  #ownIdsNamedAny(names: readonly string[], flavors: boolean, out: Map<string, number[]>): void {
    const add = (name: string, i: number): void => {
      const list = out.get(name);
      if (list) list.push(this.#firstId + i); else out.set(name, [this.#firstId + i]);
    };
    const raw = this.#raw;
    // The wanted names' UTF-8 bytes, chained by their first two bytes (a one-byte name under both
    // of the pairs it can start: itself then NUL, itself then '_'). Only int32 arithmetic and typed
    // arrays in the walk: a cold process runs it before the JIT has looked at it.
    const wanted: { name: string; bytes: Uint8Array }[] = [];
    const heads = new Int32Array(1 << 16).fill(-1);
    const next: number[] = [];
    const slow: string[] = [];
    for (const name of names) {
      if (raw === undefined || name === '' || name.includes('\0') || name.includes('\uFFFD')) {
        // Built BTF, or a name whose bytes are not those of its text.
        slow.push(name);
        continue;
      }
      const bytes = utf8Encoder.encode(name);
      for (const second of bytes.length > 1 ? [bytes[1]!] : [0, 95]) {
        const key = bytes[0]! | (second << 8);
        next.push(heads[key]!);
        heads[key] = wanted.length;
        wanted.push({ name, bytes });
      }
    }
    if (wanted.length > 0) {
      const { words, offsets } = raw!;
      const strings = this.#strings;
      const own = strings.bytes;
      for (let i = 0; i < this.#count; i++) {
        const off = words[offsets[i]!]!;
        let bytes = own;
        let at = off - strings.start;
        if (at < 0) {
          // Split BTF: the name lives in a base's string section.
          const table = strings.tableFor(off);
          if (table === undefined) continue;
          bytes = table.bytes;
          at = off - table.start;
        }
        const first = bytes[at];
        if (first === undefined || first === 0) continue;
        for (let e = heads[first | ((bytes[at + 1] ?? 0) << 8)]!; e !== -1; e = next[e]!) {
          if (namedLike(bytes, at, wanted[e]!.bytes, flavors)) add(wanted[e]!.name, i);
        }
      }
    }
    for (const name of slow) {
      for (let i = 0; i < this.#count; i++) {
        const own = this.#ownType(i).name;
        if (own === name || (flavors && name !== '' && own.startsWith(`${name}___`))) add(name, i);
      }
    }
  }

  /** See {@link withRecordsReplaced}. */
  #withRecordsReplaced(replacements: ReadonlyMap<number, BtfType>): Btf {
    const raw = this.#raw;
    if (raw === undefined) throw new BtfError('only parsed BTF can have records replaced in place; use withTypes');
    const words = raw.words.slice();
    for (const [id, t] of replacements) {
      const i = id - this.#firstId;
      if (!Number.isInteger(i) || i < 0 || i >= this.#count) throw new BtfError(`BTF type id ${id} is not one of this BTF's own types`);
      const p = raw.offsets[i]!;
      const info = words[p + 1]!;
      const kind = KIND_NAMES[(info >>> 24) & 0x1f];
      if (t.kind !== kind || t.id !== id) throw new BtfError(`BTF type ${id} is a ${kind ?? 'type'}; its replacement must be one too, with the same id`);
      if (t.kind === 'func') {
        const linkage = LINKAGES.indexOf(t.linkage);
        if (linkage < 0 || t.name !== this.#ownType(i).name) throw new BtfError(`BTF type ${id}: a replaced func keeps its name and needs a known linkage`);
        words[p + 1] = ((info & ~0xffff) | linkage) >>> 0;
        words[p + 2] = t.type;
      } else if (t.kind === 'datasec') {
        if (t.vars.length !== (info & 0xffff) || t.name !== this.#ownType(i).name) throw new BtfError(`BTF type ${id}: a replaced datasec keeps its name and its number of variables`);
        words[p + 2] = t.size;
        t.vars.forEach((v, k) => {
          words[p + 3 + 3 * k] = v.type;
          words[p + 4 + 3 * k] = v.offset;
          words[p + 5 + 3 * k] = v.size;
        });
      } else {
        throw new BtfError(`BTF type ${id}: only func and datasec records can be replaced in place; use withTypes`);
      }
    }
    return new Btf(this.#strings, this.base, this.littleEndian, { words, offsets: raw.offsets }, this.#count, undefined, undefined);
  }

  /** The string at `offset` in the string section (the base's below its end, for split BTF). */
  string(offset: number): string {
    const table = this.#strings;
    const s = Number.isInteger(offset) ? table.lookup(offset) : undefined;
    if (s === undefined) throw new BtfError(`BTF string offset ${offset} is outside the string section (${table.end} bytes)`);
    return s;
  }

  /** The type under any typedef/const/volatile/restrict/type_tag. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let steps = 0; isQualifier(t); steps++) {
      if (steps > this.length) throw new BtfError(`BTF type ${id}: loop in typedef/qualifier chain`);
      t = this.type(t.type);
    }
    return t;
  }

  /** Size in bytes of a value of type `id`. */
  sizeof(id: number): number {
    let t = this.type(id);
    let count = 1;
    for (let steps = 0; steps <= this.length; steps++) {
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
    return this.#alignOf(id, new Set());
  }

  #alignOf(id: number, path: Set<number>): number {
    const t = this.type(id);
    if (path.has(id)) throw new BtfError(`BTF type ${id}: loop in type graph while computing alignment`);
    if (path.size >= MAX_NESTING) throw new BtfError(`BTF type ${id}: types nest too deeply`);
    path.add(id);
    try {
      return this.#alignOfType(t, path);
    } finally {
      path.delete(id);
    }
  }

  #alignOfType(t: BtfType, path: Set<number>): number {
    switch (t.kind) {
      case 'int': case 'float': case 'enum': case 'enum64': return naturalAlign(t.size);
      case 'ptr': return BPF_PTR_SIZE;
      case 'array': return this.#alignOf(t.type, path);
      case 'typedef': case 'const': case 'volatile': case 'restrict': case 'type_tag': case 'var':
        return this.#alignOf(t.type, path);
      case 'struct': case 'union': return this.#alignOfStruct(t, path);
      default: throw new BtfError(`BTF type ${t.id} (${this.typeName(t.id)}): a ${t.kind} has no alignment`);
    }
  }

  /** The largest member alignment, or 1 when the layout shows the struct is packed. */
  #alignOfStruct(t: BtfStruct, path: Set<number>): number {
    let align = 1;
    let packed = false;
    for (const m of t.members) {
      const a = this.#alignOf(m.type, path);
      align = Math.max(align, a);
      const bitfield = m.bitfieldSize !== 0 || m.bitOffset % 8 !== 0;
      if (!bitfield && m.bitOffset % (a * 8) !== 0) packed = true;
    }
    return packed || t.size % align !== 0 ? 1 : align;
  }

  /** A C-like spelling of a type, for messages: `struct task_struct`, `char[16]`, `int *`. */
  typeName(id: number): string {
    const t = this.type(id);
    // Function prototypes may take pointers to themselves: spell a bounded number of nodes.
    this.#spellBudget = SPELL_BUDGET;
    return this.#spell(t, 0);
  }

  #spellId(id: number, depth: number): string {
    const t = this.#peek(id);
    if (t === undefined) return `<type ${id}>`;
    if (depth > 64 || --this.#spellBudget < 0) return '...';
    return this.#spell(t, depth + 1);
  }

  #spell(t: BtfType, depth: number): string {
    switch (t.kind) {
      case 'void': return 'void';
      case 'int': case 'float': case 'typedef': return t.name || `<anon ${t.kind}>`;
      case 'struct': case 'union': return `${t.kind} ${t.name || '<anon>'}`;
      case 'enum': case 'enum64': return `enum ${t.name || '<anon>'}`;
      case 'fwd': return `${t.fwdKind} ${t.name}`;
      case 'ptr': return this.#spellPointer(t, depth);
      case 'array': return this.#spellArray(t, depth);
      case 'const': case 'volatile': case 'restrict': {
        const inner = this.#spellId(t.type, depth);
        return this.#peek(t.type)?.kind === 'ptr' ? `${inner} ${t.kind}` : `${t.kind} ${inner}`;
      }
      case 'type_tag': {
        const tag = attributeTags.has(t) ? `__attribute__((${t.name}))` : `__${t.name}`;
        return `${this.#spellId(t.type, depth)} ${tag}`;
      }
      case 'func_proto': return `${this.#spellId(t.returnType, depth)} (${this.#spellParams(t, depth)})`;
      case 'func': return this.#spellFunc(t, depth);
      case 'var': {
        const inner = this.#spellId(t.type, depth);
        return inner.endsWith('*') ? `${inner}${t.name}` : `${inner} ${t.name}`;
      }
      case 'datasec': return `datasec ${t.name}`;
      case 'decl_tag': return `decl_tag ${t.name}`;
    }
  }

  #spellPointer(t: BtfPtr, depth: number): string {
    const target = this.#peek(t.type);
    if (target?.kind === 'func_proto') {
      return `${this.#spellId(target.returnType, depth)} (*)(${this.#spellParams(target, depth)})`;
    }
    const inner = this.#spellId(t.type, depth);
    return inner.endsWith('*') ? `${inner}*` : `${inner} *`;
  }

  /** C puts the outer dimension first: int[2][3] is an array of 2 arrays of 3 ints. */
  #spellArray(t: BtfArray, depth: number): string {
    let dims = '';
    let elem: BtfType = t;
    for (let n = 0; elem.kind === 'array' && n <= 64; n++) {
      dims += `[${elem.nelems}]`;
      const next = this.#peek(elem.type);
      if (next === undefined) return `<type ${elem.type}>${dims}`;
      elem = next;
    }
    return `${this.#spell(elem, depth + 1)}${dims}`;
  }

  #spellParams(t: BtfFuncProto, depth: number): string {
    if (t.params.length === 0) return 'void';
    return t.params.map((p) => (p.type === 0 && p.name === '' ? '...' : this.#spellId(p.type, depth))).join(', ');
  }

  #spellFunc(t: BtfFunc, depth: number): string {
    const proto = this.#peek(t.type);
    if (proto?.kind !== 'func_proto') return `func ${t.name}`;
    return `${this.#spellId(proto.returnType, depth)} ${t.name}(${this.#spellParams(proto, depth)})`;
  }

  /**
   * Writes this BTF's own types (not the base's) as a `.BTF` blob for BPF_BTF_LOAD: header, type
   * section at type_off 0, then strings. A parsed blob's string table is the verbatim prefix. The
   * records of types still as parsed (the same objects, also after `withTypes`) are copied word for
   * word in the requested byte order, string offsets included, unless a record had bits the type
   * model drops; every other type is encoded.
   */
  marshal(options?: BtfMarshalOptions): Uint8Array {
    const le = options?.littleEndian ?? HOST_LITTLE_ENDIAN;
    const n = this.#count;
    // Types still as parsed (this blob's, or the ones withTypes kept from it) are copied from their
    // records, which keeps their string offsets; the others are encoded.
    const origin = this.#raw ? this : this.#origin;
    const raw = origin && origin.#raw;
    const kept = origin === this ? undefined : origin && origin.#own;
    const copy = new Uint8Array(n);
    let typeLen = 0;
    for (let i = 0; i < n; i++) {
      if (raw && i < raw.offsets.length && (origin === this || kept?.[i] === this.#own![i]) && recordKept(raw, i)) {
        copy[i] = 1;
        typeLen += 4 * (recordEnd(raw, i) - raw.offsets[i]!);
      } else {
        typeLen += encodedSize(this.#ownType(i));
      }
    }
    const out = new Uint8Array(BTF_HEADER_LEN + typeLen);
    const view = new DataView(out.buffer);
    const strings = new StringWriter(this.#strings);
    const writer = new TypeWriter(new DataView(out.buffer, BTF_HEADER_LEN), le, strings);
    for (let i = 0; i < n;) {
      if (copy[i] === 0) {
        writer.write(this.#ownType(i++));
        continue;
      }
      // A run of copied records is one stretch of the parsed section.
      let j = i + 1;
      while (j < n && copy[j] === 1) j++;
      const words = raw!.words;
      const from = raw!.offsets[i]!;
      const to = recordEnd(raw!, j - 1);
      const at = BTF_HEADER_LEN + writer.pos;
      if (le === HOST_LITTLE_ENDIAN) out.set(new Uint8Array(words.buffer, words.byteOffset + 4 * from, 4 * (to - from)), at);
      else for (let k = from; k < to; k++) view.setUint32(at + 4 * (k - from), words[k]!, le);
      writer.pos += 4 * (to - from);
      i = j;
    }
    const strBytes = strings.bytes();
    writeHeader(view, le, typeLen, strBytes.length);
    return concat([out, strBytes], out.length + strBytes.length);
  }

  /**
   * The checks on a parsed blob that need every type: references exist, a func points at a
   * func_proto, a datasec lists vars (or funcs), a decl_tag's component index fits its target.
   * Only the records the scan deferred are looked at, unless the largest reference it saw is out
   * of range; then every record is. The exact message comes from checkRefs on the decoded type.
   */
  #checkParsedRefs(maxRef: number, deferred: readonly number[]): void {
    const raw = this.#raw!;
    const w = raw.words;
    const offsets = raw.offsets;
    const first = this.#firstId;
    const total = this.length;
    const badRefs = maxRef >= total;
    const kindOf = (id: number): number => (id >= first ? (w[offsets[id - first]! + 1]! >>> 24) & 0x1f : this.#kindAt(id));
    const n = badRefs ? offsets.length : deferred.length;
    for (let k = 0; k < n; k++) {
      const i = badRefs ? k : deferred[k]!;
      const p = offsets[i]!;
      const info = w[p + 1]!;
      const st = w[p + 2]!;
      let ok = true;
      switch ((info >>> 24) & 0x1f) {
        case KIND_FUNC:
          ok = st < total && kindOf(st) === KIND_FUNC_PROTO;
          break;
        case KIND_DATASEC:
          for (let v = 0, q = p + 3; ok && v < (info & 0xffff); v++, q += 3) {
            const target = w[q]!;
            const kind = target < total ? kindOf(target) : -1;
            ok = kind === KIND_VAR || kind === KIND_FUNC;
          }
          break;
        case KIND_DECL_TAG:
          ok = st < total && this.#declTagFits(st, w[p + 3]! | 0);
          break;
        default:
          ok = !badRefs || refsBelow(w, p, total);
          break;
      }
      if (!ok) {
        const lookup: Lookup = (id) => this.#peek(id);
        checkRefs(lookup, total, this.type(this.#firstId + i));
        throw new BtfError(`BTF type ${this.#firstId + i}: bad type reference`);
      }
    }
  }

  #declTagFits(target: number, componentIdx: number): boolean {
    if (componentIdx === -1) return true;
    const kind = this.#kindAt(target);
    if (kind === KIND_FUNC) return true;
    if (kind !== KIND_STRUCT && kind !== KIND_UNION) return false;
    const t = this.type(target);
    return t.kind === 'struct' || t.kind === 'union' ? componentIdx < t.members.length : false;
  }

  /** Checks own types of BTF built in code: ids match indexes, kinds are known, references exist. */
  #checkBuilt(): void {
    const total = this.length;
    if (total - 1 > BTF_MAX_TYPE) throw new BtfError(`BTF has more than ${BTF_MAX_TYPE} types`);
    const own = this.#own!;
    const lookup: Lookup = (id) => {
      if (!Number.isInteger(id) || id < 0 || id >= total) return undefined;
      const t = id < this.#firstId ? this.type(id) : own[id - this.#firstId];
      return t !== null && typeof t === 'object' ? t : undefined;
    };
    for (let i = 0; i < own.length; i++) {
      const id = this.#firstId + i;
      const t = own[i];
      if (t === undefined || t === null || typeof t !== 'object') throw new BtfError(`BTF type ${id} is missing`);
      if (t.id !== id) throw new BtfError(`BTF type at index ${id} has id ${String(t.id)}`);
      checkRefs(lookup, total, t);
    }
  }

}

/**
 * Ids of the types named each of `names` (base types included, in id order) or, with `flavors`,
 * named `name___` followed by anything (CO-RE flavors, e.g. `task_struct___v2` for
 * `task_struct`). One walk over the types answers every name: CO-RE asks for all of an object's
 * root names at once. Names without a type are absent from the result.
 */
export function typeIdsNamed(btf: Btf, names: readonly string[], flavors = false): Map<string, number[]> {
  const out = btf.base ? typeIdsNamed(btf.base, names, flavors) : new Map<string, number[]>();
  idsNamed(btf, [...new Set(names)], flavors, out);
  return out;
}

/**
 * The running kernel's vmlinux BTF, as just read from /sys/kernel/btf/vmlinux into a buffer
 * nothing else holds (kept, not copied). The kernel ran every check of btf_parse_vmlinux on these
 * bytes when it booted, the resolution checks included, so types are decoded without running them
 * again: CO-RE decoding task_struct would otherwise check the thousands of types it holds by
 * value. `validate()` still runs them when asked. Any other BTF goes to Btf.parse/parseKernel.
 */
export function parseRunningKernelBtf(bytes: Uint8Array): Btf {
  const btf = Btf.parseKernel(bytes, { adopt: true });
  markKernelChecked(btf);
  return btf;
}

/** The kind of type `id`, without decoding it. */
export function kindOf(btf: Btf, id: number): BtfKindName {
  if (!Number.isInteger(id) || id < 0 || id >= btf.length) throw new BtfError(`BTF type id ${id} is out of range (${btf.length} types)`);
  return id === 0 ? 'void' : KIND_NAMES[kindAt(btf, id)]!;
}

/**
 * Parsed BTF with some of its own FUNC and DATASEC records rewritten (linkage; section size and
 * variable offsets), every other record kept as parsed: what a loader's fixups need, without
 * decoding and re-encoding every type as withTypes does. Each replacement keeps its record's id,
 * kind, name and number of variables. The result shares the string table and is checked anew
 * (its `validate()` runs on the rewritten records).
 */
export function withRecordsReplaced(btf: Btf, replacements: ReadonlyMap<number, BtfType>): Btf {
  return replaceRecords(btf, replacements);
}

function checkVoid(t: BtfType | undefined): void {
  if (t?.kind !== 'void' || t.id !== 0) throw new BtfError('BTF type 0 must be void');
}

function checkBasePrefix(types: readonly BtfType[], base: Btf): void {
  for (let id = 0; id < base.length; id++) {
    const t = types[id];
    if (t?.id !== id || t.kind !== (KIND_NAMES[kindAt(base, id)] ?? 'void')) {
      throw new BtfError(`BTF type ${id} does not match the base BTF's type ${id}`);
    }
  }
}

function checkedSize(id: number, size: number): number {
  if (!Number.isSafeInteger(size)) throw new BtfError(`BTF type ${id}: size overflows`);
  return size;
}
