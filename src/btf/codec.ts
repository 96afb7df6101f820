/**
 * Map keys and values as JavaScript values. `codecFor` compiles a BTF type once into a tree of
 * closures that read and write its bytes through one DataView kept per codec, so decoding an
 * entry on a hot path (map iteration, ring buffers) is a copy and a few property stores, never a
 * walk of the type graph.
 * The mapping follows C as the kernel lays it out: integers up to 32 bits, floats, chars and enums
 * become numbers, 64- and 128-bit integers and pointers bigints, `_Bool` a boolean, structs and
 * unions plain objects (anonymous members flattened, as C lets you write `s.x`), byte arrays
 * Uint8Array and other arrays JS arrays; bitfields are shifted in and out with their signedness.
 * Encoding zeroes the whole region first, so padding and members the caller leaves out are zero.
 */
import { endianness } from 'node:os';
import { TextEncoder } from 'node:util';
import { BtfError, InvalidArgumentError } from '../errors.js';
import type { Btf } from './btf.js';
import { bitfieldPlacement, isByteArrayElement, planMembers, type GroupPlan, type LayoutHooks } from './codec-layout.js';
import type { BtfDatasec, BtfEnum, BtfStruct, BtfType } from './types.js';

/**
 * Converts one BTF type between its bytes and a JavaScript value (numbers, bigints for 64-bit
 * integers, objects for structs, arrays, strings for char arrays): what {@link codecFor} builds
 * and
 * what BpfMap uses for keys and values.
 */
export interface Codec<T = unknown> {
  /** Bytes one value occupies. */
  readonly size: number;
  /** Decodes `size` bytes at `offset` (the buffer may be longer, e.g. per-CPU slots). */
  decode(bytes: Uint8Array, offset?: number): T;
  /**
   * Decodes `size` bytes of `view` at `offset` in place, without copying them first: for records
   * read where they lie, e.g. a ring buffer batch's `view` at `offsets[i]` (see RecordBatch.records).
   */
  read(view: DataView, offset?: number): T;
  /**
   * Encodes into `out` at `offset` (returning `out`), or into a fresh zero-filled buffer of `size`.
   * A Uint8Array of exactly `size` bytes is taken as the raw encoding.
   */
  encode(value: T | Uint8Array, out?: Uint8Array, offset?: number): Uint8Array;
}

/** Options of {@link codecFor}: the byte order of the data, and the name of the root in messages. */
export interface CodecOptions {
  /** Byte order of the data; defaults to the host's (what the kernel uses for map memory). */
  readonly littleEndian?: boolean;
  /** Name of the root in error messages ("value.inner.x: ..."); defaults to "value". */
  readonly path?: string;
}

const HOST_LE = endianness() === 'LE';
const utf8Encoder = new TextEncoder();

export { cString } from '../abi/cstring.js';

// ---------------------------------------------------------------------------------------------
// Compiled nodes. They read and write at byte offsets of the codec's private DataView (whose
// byteOffset is 0). `write` may assume its region is already zero.

interface Node {
  readonly size: number;
  read(dv: DataView, o: number): unknown;
  write(dv: DataView, o: number, v: unknown): void;
}

/**
 * Thrown while encoding; each enclosing struct or array adds its path segment on the way out, so
 * the successful path never builds strings.
 */
class FieldError extends Error {
  readonly segments: string[] = [];
  constructor(readonly detail: string) {
    super(detail);
  }
}

function withSegment(e: unknown, segment: string): unknown {
  if (e instanceof FieldError) e.segments.push(segment);
  return e;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'a Uint8Array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)}`;
  return typeof v;
}

function typeError(expected: string, typeName: string, v: unknown): FieldError {
  return new FieldError(`expected ${expected} for ${typeName}, got ${describe(v)}`);
}

function rangeError(v: number | bigint, typeName: string): FieldError {
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) {
    return new FieldError(`${v} is not a safe integer; pass a bigint for ${typeName}`);
  }
  return new FieldError(`${v} does not fit ${typeName}`);
}

type EnumNames = ReadonlyMap<string, bigint>;

function enumError(v: string, typeName: string, names: EnumNames): FieldError {
  const list = [...names.keys()];
  const shown = list.length > 16 ? `${list.slice(0, 16).join(', ')}, ...` : list.join(', ');
  return new FieldError(`"${v}" is not an enumerator of ${typeName} (${shown})`);
}

/** Validates an integer of `bits` bits (at most 52) and returns it as a number. */
function numberChecker(bits: number, signed: boolean, typeName: string, names?: EnumNames): (v: unknown) => number {
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const minB = BigInt(min);
  const maxB = BigInt(max);
  return (v) => {
    if (typeof v === 'number') {
      if (v >= min && v <= max && Number.isInteger(v)) return v;
      throw rangeError(v, typeName);
    }
    if (typeof v === 'bigint') {
      if (v >= minB && v <= maxB) return Number(v);
      throw rangeError(v, typeName);
    }
    if (typeof v === 'string' && names) {
      const x = names.get(v);
      if (x === undefined) throw enumError(v, typeName, names);
      return Number(x);
    }
    throw typeError(names ? 'a number or enumerator name' : 'a number', typeName, v);
  };
}

/** Validates an integer of `bits` bits and returns it as a bigint (numbers must be safe integers). */
function bigintChecker(bits: number, signed: boolean, typeName: string, names?: EnumNames): (v: unknown) => bigint {
  const min = signed ? -(1n << BigInt(bits - 1)) : 0n;
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  return (v) => {
    let b: bigint;
    if (typeof v === 'bigint') b = v;
    else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw rangeError(v, typeName);
      b = BigInt(v);
    } else if (typeof v === 'string' && names) {
      const x = names.get(v);
      if (x === undefined) throw enumError(v, typeName, names);
      b = x;
    } else throw typeError(names ? 'a bigint, number or enumerator name' : 'a bigint or number', typeName, v);
    if (b < min || b > max) throw rangeError(b, typeName);
    return b;
  };
}

function boolChecker(typeName: string): (v: unknown) => boolean {
  return (v) => {
    if (typeof v === 'boolean') return v;
    if (v === 0 || v === 1) return v === 1;
    throw typeError('a boolean', typeName, v);
  };
}

/** A whole (non-bitfield) integer of 1, 2, 4, 8 or 16 bytes. */
function intNode(size: number, signed: boolean, le: boolean, typeName: string, names?: EnumNames): Node {
  switch (size) {
    case 1: {
      const check = numberChecker(8, signed, typeName, names);
      return {
        size,
        read: signed ? (dv, o) => dv.getInt8(o) : (dv, o) => dv.getUint8(o),
        write: (dv, o, v) => dv.setUint8(o, check(v)),
      };
    }
    case 2: {
      const check = numberChecker(16, signed, typeName, names);
      return {
        size,
        read: signed ? (dv, o) => dv.getInt16(o, le) : (dv, o) => dv.getUint16(o, le),
        write: (dv, o, v) => dv.setUint16(o, check(v), le),
      };
    }
    case 4: {
      const check = numberChecker(32, signed, typeName, names);
      return {
        size,
        read: signed ? (dv, o) => dv.getInt32(o, le) : (dv, o) => dv.getUint32(o, le),
        // setUint32 wraps negatives to their two's complement, which is what we want.
        write: (dv, o, v) => dv.setUint32(o, check(v), le),
      };
    }
    case 8: {
      const check = bigintChecker(64, signed, typeName, names);
      return {
        size,
        read: signed ? (dv, o) => dv.getBigInt64(o, le) : (dv, o) => dv.getBigUint64(o, le),
        write: (dv, o, v) => dv.setBigUint64(o, check(v), le),
      };
    }
    case 16: {
      const check = bigintChecker(128, signed, typeName, names);
      const lo = le ? 0 : 8;
      const hi = le ? 8 : 0;
      return {
        size,
        read: (dv, o) => {
          const u = (dv.getBigUint64(o + hi, le) << 64n) | dv.getBigUint64(o + lo, le);
          return signed ? BigInt.asIntN(128, u) : u;
        },
        write: (dv, o, v) => {
          const u = BigInt.asUintN(128, check(v));
          dv.setBigUint64(o + lo, BigInt.asUintN(64, u), le);
          dv.setBigUint64(o + hi, u >> 64n, le);
        },
      };
    }
    default:
      throw new BtfError(`${typeName}: integers of ${size} bytes are not supported`);
  }
}

function boolNode(size: number, le: boolean, typeName: string): Node {
  const check = boolChecker(typeName);
  if (size === 1) {
    return { size, read: (dv, o) => dv.getUint8(o) !== 0, write: (dv, o, v) => dv.setUint8(o, check(v) ? 1 : 0) };
  }
  const raw = intNode(size, false, le, typeName);
  return {
    size,
    read: (dv, o) => {
      const x = raw.read(dv, o);
      return x !== 0 && x !== 0n;
    },
    write: (dv, o, v) => raw.write(dv, o, check(v) ? 1 : 0),
  };
}

function floatNode(size: number, le: boolean, typeName: string): Node {
  const check = (v: unknown): number => {
    if (typeof v === 'number') return v;
    throw typeError('a number', typeName, v);
  };
  if (size === 4) return { size, read: (dv, o) => dv.getFloat32(o, le), write: (dv, o, v) => dv.setFloat32(o, check(v), le) };
  if (size === 8) return { size, read: (dv, o) => dv.getFloat64(o, le), write: (dv, o, v) => dv.setFloat64(o, check(v), le) };
  // long double, _Float16 and friends: no JS number matches, hand back the bytes.
  return byteArrayNode(size, typeName, undefined);
}

/** Arrays of 1-byte integers: Uint8Array copies out; Uint8Array, string (UTF-8) or number[] in. */
function byteArrayNode(n: number, typeName: string, element: Node | undefined): Node {
  const tooLong = (len: number, what: string): FieldError =>
    new FieldError(`${len} ${what} do not fit ${typeName} (${n} bytes)`);
  return {
    size: n,
    read: (dv, o) => new Uint8Array(dv.buffer, dv.byteOffset + o, n).slice(),
    write: (dv, o, v) => {
      if (v instanceof Uint8Array) {
        if (v.length > n) throw tooLong(v.length, 'bytes');
        new Uint8Array(dv.buffer, o, v.length).set(v);
      } else if (typeof v === 'string') {
        const enc = utf8Encoder.encode(v);
        if (enc.length > n) throw tooLong(enc.length, 'bytes of UTF-8');
        new Uint8Array(dv.buffer, o, enc.length).set(enc);
      } else if (Array.isArray(v) && element) {
        if (v.length > n) throw tooLong(v.length, 'elements');
        writeElements(dv, o, v, element, 1);
      } else {
        throw typeError('a Uint8Array or string', typeName, v);
      }
    },
  };
}

function writeElements(dv: DataView, o: number, v: ArrayLike<unknown>, el: Node, stride: number): void {
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x === undefined) continue;
    try {
      el.write(dv, o + i * stride, x);
    } catch (e) {
      throw withSegment(e, `[${i}]`);
    }
  }
}

/** Most elements of zero size an array may decode to (each would be an empty value). */
const MAX_EMPTY_ELEMENTS = 4096;
/** Deepest nesting of types held by value a codec follows (parsed BTF stays below BTF_MAX_DEPTH). */
const MAX_CODEC_DEPTH = 1024;

function arrayNode(n: number, el: Node, typeName: string): Node {
  const stride = el.size;
  if (stride === 0 && n > MAX_EMPTY_ELEMENTS) {
    // Its size would say 0 bytes while decoding made n values: out of proportion to any input.
    throw new BtfError(`${typeName}: an array of ${n} zero-size elements cannot be decoded`);
  }
  return {
    size: n * stride,
    read: (dv, o) => {
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(el.read(dv, o + i * stride));
      return out;
    },
    write: (dv, o, v) => {
      const ok = Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
      if (!ok) throw typeError('an array', typeName, v);
      const arr = v as ArrayLike<unknown>;
      if (arr.length > n) throw new FieldError(`${arr.length} elements do not fit ${typeName}`);
      writeElements(dv, o, arr, el, stride);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Struct, union and datasec members. A Part contributes one or more properties to the decoded
// object: a named member one, an anonymous struct or union all of its own (flattened).

type Obj = Record<string, unknown>;

interface Part {
  readonly names: readonly string[];
  read(dv: DataView, base: number, obj: Obj): void;
  /** Writes the part's properties that `obj` carries (the region is already zero). */
  write(dv: DataView, base: number, obj: Obj): void;
  /** Whether `obj` carries any of the part's properties. */
  has(obj: Obj): boolean;
}

/** Reads a property without tripping over the one name that is special on plain objects. */
function getter(name: string): (obj: Obj) => unknown {
  if (name === '__proto__') return (obj) => (Object.hasOwn(obj, name) ? obj[name] : undefined);
  return (obj) => obj[name];
}

function setter(name: string): (obj: Obj, v: unknown) => void {
  if (name === '__proto__') {
    return (obj, v) => {
      Object.defineProperty(obj, name, { value: v, enumerable: true, writable: true, configurable: true });
    };
  }
  return (obj, v) => {
    obj[name] = v;
  };
}

/** A member stored at a byte offset. */
function fieldPart(name: string, off: number, node: Node): Part {
  const segment = `.${name}`;
  const get = getter(name);
  const set = setter(name);
  return {
    names: [name],
    read: name === '__proto__' ? (dv, base, obj) => set(obj, node.read(dv, base + off)) : (dv, base, obj) => {
      obj[name] = node.read(dv, base + off);
    },
    write: (dv, base, obj) => {
      const x = get(obj);
      if (x === undefined) return;
      try {
        node.write(dv, base + off, x);
      } catch (e) {
        throw withSegment(e, segment);
      }
    },
    has: (obj) => get(obj) !== undefined,
  };
}

/** How a bitfield's value surfaces in JS, taken from the member's declared type. */
interface BitfieldType {
  readonly repr: 'number' | 'bigint' | 'boolean';
  readonly signed: boolean;
  readonly names?: EnumNames;
}

/**
 * Reads a bitfield of `bits` bits starting `bitOffset` bits into the object at `base` (see
 * bitfieldPlacement): what codecFor's and the record views' bitfield members decode with.
 * @internal
 */
export function bitfieldReader(bitOffset: number, bits: number, repr: 'number' | 'bigint' | 'boolean', signed: boolean, le: boolean): (dv: DataView, base: number) => unknown {
  const { start, span, shiftLE, shiftBE } = bitfieldPlacement(bitOffset, bits);
  const shift = le ? shiftLE : shiftBE;
  if (span <= 6) {
    // Up to 48 bits of storage: plain float arithmetic is exact and much cheaper than bigint.
    const pShift = 2 ** shift;
    const pBits = 2 ** bits;
    const half = 2 ** (bits - 1);
    const num = (dv: DataView, o: number): number => {
      let acc = 0;
      if (le) for (let i = span - 1; i >= 0; i--) acc = acc * 256 + dv.getUint8(o + i);
      else for (let i = 0; i < span; i++) acc = acc * 256 + dv.getUint8(o + i);
      const u = Math.floor(acc / pShift) % pBits;
      return signed && u >= half ? u - pBits : u;
    };
    if (repr === 'boolean') return (dv, base) => num(dv, base + start) !== 0;
    if (repr === 'bigint') return (dv, base) => BigInt(num(dv, base + start));
    return (dv, base) => num(dv, base + start);
  }
  const bShift = BigInt(shift);
  const raw = (dv: DataView, o: number): bigint => {
    let acc = 0n;
    if (le) for (let i = span - 1; i >= 0; i--) acc = (acc << 8n) | BigInt(dv.getUint8(o + i));
    else for (let i = 0; i < span; i++) acc = (acc << 8n) | BigInt(dv.getUint8(o + i));
    const u = BigInt.asUintN(bits, acc >> bShift);
    return signed ? BigInt.asIntN(bits, u) : u;
  };
  if (repr === 'boolean') return (dv, base) => raw(dv, base + start) !== 0n;
  if (repr === 'number') return (dv, base) => Number(raw(dv, base + start));
  return (dv, base) => raw(dv, base + start);
}

/**
 * A bitfield of `bits` bits starting `bitOff` bits into the enclosing object. BTF counts bit
 * offsets from the least significant bit of each byte on little-endian targets and from the most
 * significant on big-endian ones; either way the field lives in a short run of bytes that is read
 * as one unsigned integer in the target's byte order, shifted and masked.
 */
function bitfieldPart(name: string, bitOff: number, bits: number, bt: BitfieldType, le: boolean, typeName: string): Part {
  const segment = `.${name}`;
  const get = getter(name);
  const set = setter(name);
  const { start, span, shiftLE, shiftBE } = bitfieldPlacement(bitOff, bits);
  const shift = le ? shiftLE : shiftBE;

  const readValue = bitfieldReader(bitOff, bits, bt.repr, bt.signed, le);
  let writeValue: (dv: DataView, base: number, v: unknown) => void;

  if (span <= 6) {
    // Up to 48 bits of storage: plain float arithmetic is exact and much cheaper than bigint.
    const pShift = 2 ** shift;
    const pBits = 2 ** bits;
    const load = (dv: DataView, o: number): number => {
      let acc = 0;
      if (le) for (let i = span - 1; i >= 0; i--) acc = acc * 256 + dv.getUint8(o + i);
      else for (let i = 0; i < span; i++) acc = acc * 256 + dv.getUint8(o + i);
      return acc;
    };
    const store = (dv: DataView, o: number, acc: number): void => {
      if (le) {
        for (let i = 0; i < span; i++, acc = Math.floor(acc / 256)) dv.setUint8(o + i, acc % 256);
      } else {
        for (let i = span - 1; i >= 0; i--, acc = Math.floor(acc / 256)) dv.setUint8(o + i, acc % 256);
      }
    };
    const check = bt.repr === 'boolean'
      ? ((c) => (v: unknown) => (c(v) ? 1 : 0))(boolChecker(typeName))
      : numberChecker(bits, bt.signed, typeName, bt.names);
    writeValue = (dv, base, v) => {
      const x = check(v);
      const o = base + start;
      const acc = load(dv, o);
      const old = Math.floor(acc / pShift) % pBits;
      store(dv, o, acc + ((x < 0 ? x + pBits : x) - old) * pShift);
    };
  } else {
    const bShift = BigInt(shift);
    const mask = (1n << BigInt(bits)) - 1n;
    const load = (dv: DataView, o: number): bigint => {
      let acc = 0n;
      if (le) for (let i = span - 1; i >= 0; i--) acc = (acc << 8n) | BigInt(dv.getUint8(o + i));
      else for (let i = 0; i < span; i++) acc = (acc << 8n) | BigInt(dv.getUint8(o + i));
      return acc;
    };
    const store = (dv: DataView, o: number, acc: bigint): void => {
      if (le) for (let i = 0; i < span; i++, acc >>= 8n) dv.setUint8(o + i, Number(acc & 0xffn));
      else for (let i = span - 1; i >= 0; i--, acc >>= 8n) dv.setUint8(o + i, Number(acc & 0xffn));
    };
    const check = bt.repr === 'boolean'
      ? ((c) => (v: unknown) => (c(v) ? 1n : 0n))(boolChecker(typeName))
      : bigintChecker(bits, bt.signed, typeName, bt.names);
    writeValue = (dv, base, v) => {
      const x = BigInt.asUintN(bits, check(v));
      const o = base + start;
      store(dv, o, (load(dv, o) & ~(mask << bShift)) | (x << bShift));
    };
  }

  return {
    names: [name],
    read: (dv, base, obj) => set(obj, readValue(dv, base)),
    write: (dv, base, obj) => {
      const x = get(obj);
      if (x === undefined) return;
      try {
        writeValue(dv, base, x);
      } catch (e) {
        throw withSegment(e, segment);
      }
    },
    has: (obj) => get(obj) !== undefined,
  };
}

function anyPresent(parts: readonly Part[], obj: Obj): Part[] {
  const present: Part[] = [];
  for (const p of parts) if (p.has(obj)) present.push(p);
  return present;
}

/**
 * Writes several union alternatives when they agree where they overlap, as a decoded union's
 * members always do (so `update(k, lookup(k))` works even when alternatives differ in size).
 * Each alternative is written alone twice, over zeros and over 0xff, to find the bytes it covers;
 * false when two alternatives put different values in a byte both cover (nothing is written then).
 */
function writeAgreeing(parts: readonly Part[], dv: DataView, at: number, obj: Obj): boolean {
  const region = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
  const merged = new Uint8Array(region);
  const owner = new Int8Array(region.length).fill(-1);
  for (let k = 0; k < parts.length; k++) {
    const zero = new Uint8Array(region.length);
    const ones = new Uint8Array(region.length).fill(0xff);
    parts[k]!.write(new DataView(zero.buffer), at, obj);
    parts[k]!.write(new DataView(ones.buffer), at, obj);
    for (let i = 0; i < region.length; i++) {
      if (zero[i] === 0 && ones[i] === 0xff) continue; // not covered by this alternative
      if (owner[i]! >= 0 && merged[i] !== zero[i]) return false;
      owner[i] = k;
      merged[i] = zero[i]!;
    }
  }
  region.set(merged);
  return true;
}

/**
 * The members of a struct (all written) or union (one alternative written: the members overlap,
 * so a second one would silently clobber the first).
 */
function membersPart(parts: readonly Part[], off: number, isUnion: boolean, label: string): Part {
  const names = parts.flatMap((p) => p.names);
  return {
    names,
    read: (dv, base, obj) => {
      for (const p of parts) p.read(dv, base + off, obj);
    },
    write: isUnion
      ? (dv, base, obj) => {
          const present = anyPresent(parts, obj);
          if (present.length <= 1) {
            present[0]?.write(dv, base + off, obj);
          } else if (!writeAgreeing(present, dv, base + off, obj)) {
            // Members that disagree would silently clobber each other.
            const given = present.flatMap((p) => p.names.filter((n) => getter(n)(obj) !== undefined));
            throw new FieldError(`${label} takes one member at a time, got ${given.join(', ')}`);
          }
        }
      : (dv, base, obj) => {
          for (const p of parts) p.write(dv, base + off, obj);
        },
    has: (obj) => parts.some((p) => p.has(obj)),
  };
}

/** A struct, union or datasec as a node producing a plain object. */
function objectNode(size: number, body: Part, label: string): Node {
  const known = new Set(body.names);
  const memberList = body.names.join(', ');
  return {
    size,
    read: (dv, o) => {
      const obj: Obj = {};
      body.read(dv, o, obj);
      return obj;
    },
    write: (dv, o, v) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) {
        throw typeError('an object', label, v);
      }
      const obj = v as Obj;
      for (const key in obj) {
        if (!known.has(key) && obj[key] !== undefined) {
          throw new FieldError(`${label} has no member "${key}"; members: ${memberList}`);
        }
      }
      body.write(dv, o, obj);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Compilation.

class Compiler {
  private readonly done = new Map<number, Node>();
  private readonly busy = new Set<number>();

  constructor(private readonly btf: Btf, private readonly le: boolean) {}

  type(id: number): BtfType {
    if (!Number.isInteger(id) || id < 0 || id >= this.btf.length) {
      throw new BtfError(`type id ${id} does not exist (BTF has ${this.btf.length} types)`);
    }
    return this.btf.type(id);
  }

  /** Skips typedefs and qualifiers (and vars, which only name a type). */
  resolve(id: number): BtfType {
    for (let depth = 0; depth < 64; depth++) {
      const t = this.type(id);
      switch (t.kind) {
        case 'typedef': case 'const': case 'volatile': case 'restrict': case 'type_tag': case 'var':
          id = t.type;
          continue;
        default:
          return t;
      }
    }
    throw new BtfError(`type id ${id}: typedef/qualifier chain too long (a cycle?)`);
  }

  /** A C-like name for messages: the outermost typedef name wins, as the source spelled it. */
  display(id: number, depth = 0): string {
    if (depth > 16) return '...';
    const t = this.type(id);
    switch (t.kind) {
      case 'void': return 'void';
      case 'int': case 'float': case 'typedef': case 'func': return t.name;
      case 'var': return this.display(t.type, depth + 1);
      case 'const': case 'volatile': case 'restrict': return `${t.kind} ${this.display(t.type, depth + 1)}`;
      case 'type_tag': return this.display(t.type, depth + 1);
      case 'ptr': return `${this.display(t.type, depth + 1)} *`;
      case 'array': return `${this.display(t.type, depth + 1)}[${t.nelems}]`;
      case 'struct': case 'union': case 'enum': return `${t.kind} ${t.name || '(anon)'}`;
      case 'enum64': return `enum ${t.name || '(anon)'}`;
      case 'fwd': return `${t.fwdKind} ${t.name}`;
      case 'datasec': return `datasec ${t.name}`;
      case 'func_proto': return 'function';
      case 'decl_tag': return `decl_tag ${t.name}`;
    }
  }

  node(id: number): Node {
    const cached = this.done.get(id);
    if (cached) return cached;
    if (this.busy.has(id)) throw new BtfError(`${this.display(id)} (type id ${id}) contains itself`);
    if (this.busy.size >= MAX_CODEC_DEPTH) throw new BtfError(`${this.display(id)} (type id ${id}): types nest more than ${MAX_CODEC_DEPTH} levels deep`);
    this.busy.add(id);
    try {
      const n = this.build(id);
      this.done.set(id, n);
      return n;
    } finally {
      this.busy.delete(id);
    }
  }

  private build(id: number): Node {
    const name = this.display(id);
    const t = this.resolve(id);
    switch (t.kind) {
      case 'int':
        if (t.bool) return boolNode(t.size, this.le, name);
        return intNode(t.size, t.signed, this.le, name);
      case 'float':
        return floatNode(t.size, this.le, name);
      case 'ptr':
        // BPF is a 64-bit target: pointers are always 8 bytes.
        return intNode(8, false, this.le, name);
      case 'enum': case 'enum64':
        return this.enumNode(t, name);
      case 'array': {
        const elType = this.resolve(t.type);
        const el = this.node(t.type);
        if (isByteArrayElement(elType)) return byteArrayNode(t.nelems, name, el);
        return arrayNode(t.nelems, el, name);
      }
      case 'struct': case 'union':
        return objectNode(t.size, this.members(t, name), name);
      case 'datasec':
        return this.datasec(t, name);
      default:
        throw new InvalidArgumentError(`cannot encode or decode ${name} (type id ${id}, kind ${t.kind}): it has no size`);
    }
  }

  private enumNames(t: BtfEnum): EnumNames {
    return new Map(t.values.map((v) => [v.name, v.value]));
  }

  private enumNode(t: BtfEnum, name: string): Node {
    const names = this.enumNames(t);
    if (t.kind === 'enum64' && t.size < 8) {
      // An enum64 always surfaces as bigint, whatever its storage size.
      const inner = intNode(t.size, t.signed, this.le, name, names);
      const check = bigintChecker(t.size * 8, t.signed, name, names);
      return { size: t.size, read: (dv, o) => BigInt(inner.read(dv, o) as number), write: (dv, o, v) => inner.write(dv, o, check(v)) };
    }
    return intNode(t.size, t.signed, this.le, name, names);
  }

  /** The members of a struct or union: the layout pass's plan, built into Parts. */
  private members(t: BtfStruct, label: string): Part {
    return this.group(planMembers<Node>(t, label, this.hooks));
  }

  private readonly hooks: LayoutHooks<Node> = {
    resolve: (id) => this.resolve(id),
    display: (id) => this.display(id),
    field: (id) => {
      const value = this.node(id);
      return { value, size: value.size };
    },
  };

  private group(g: GroupPlan<Node>): Part {
    const parts = g.parts.map((p): Part => {
      switch (p.kind) {
        case 'group': return this.group(p);
        case 'field': return fieldPart(p.name, p.offset, p.value);
        case 'bitfield': {
          const bt: BitfieldType = { repr: p.repr, signed: p.signed, ...(p.enumType ? { names: this.enumNames(p.enumType) } : {}) };
          // Relative to the group, like fieldPart's offsets: membersPart adds the group's offset
          // (adding it here too read a bitfield of an anonymous member at twice its offset).
          return bitfieldPart(p.name, p.bitOffset, p.bits, bt, this.le, `${this.display(p.type)}:${p.bits}`);
        }
      }
    });
    return membersPart(parts, g.offset, g.union, g.label);
  }

  private datasec(t: BtfDatasec, label: string): Node {
    const parts: Part[] = [];
    let size = t.size;
    for (const v of t.vars) {
      const vt = this.type(v.type);
      if (vt.kind !== 'var') continue; // functions in .ksyms have no storage here
      const node = this.node(vt.type);
      parts.push(fieldPart(vt.name, v.offset, node));
      size = Math.max(size, v.offset + Math.max(v.size, node.size));
    }
    return objectNode(size, membersPart(parts, 0, false, label), label);
  }
}

// ---------------------------------------------------------------------------------------------
// Public codecs.

function checkOffset(offset: number): void {
  if (!Number.isInteger(offset) || offset < 0) throw new InvalidArgumentError(`offset must be a non-negative integer, got ${offset}`);
}

/** Checks that `view` holds `size` bytes at `offset` (Codec.read). */
function checkView(view: DataView, offset: number, size: number): void {
  if (!(view instanceof DataView)) throw new InvalidArgumentError(`expected a DataView, got ${describe(view)}`);
  if (offset !== 0) checkOffset(offset);
  if (view.byteLength - offset < size) {
    throw new InvalidArgumentError(`expected ${size} bytes at offset ${offset}, got ${Math.max(0, view.byteLength - offset)}`);
  }
}

/** Where a codec reads and writes: a private buffer, so one DataView serves every call. */
class Scratch {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
}

/**
 * Up to this many bytes, a loop copies or clears faster than TypedArray set()/fill(), which leave
 * optimized code for a builtin (fill() for the runtime): map keys and values are mostly this small.
 */
const SMALL = 64;

function copySmall(from: Uint8Array, to: Uint8Array, offset: number, size: number): void {
  if (size <= SMALL) for (let i = 0; i < size; i++) to[offset + i] = from[i]!;
  else to.set(from.subarray(0, size), offset);
}

function makeCodec<T>(node: Node, root: string): Codec<T> {
  const size = node.size;
  // Decoding copies the value into a private buffer first. A DataView per caller buffer would be
  // dearer than the copy: map iteration hands over a new buffer each time, and touching
  // `.buffer` of a small in-heap Uint8Array makes V8 move it off-heap.
  // Made on first use: a codec for a huge type costs nothing until a value of that size is given.
  let scratch: Scratch | undefined;
  let busy = false;
  return {
    size,
    decode(bytes: Uint8Array, offset = 0): T {
      if (offset !== 0) checkOffset(offset);
      if (bytes.length - offset < size) {
        const at = offset ? ` at offset ${offset}` : '';
        throw new InvalidArgumentError(`expected ${size} bytes${at}, got ${Math.max(0, bytes.length - offset)}`);
      }
      const mine = (scratch ??= new Scratch(size));
      const dst = mine.bytes;
      if (size <= SMALL) for (let i = 0; i < size; i++) dst[i] = bytes[offset + i]!;
      else if (offset === 0 && bytes.length === size) dst.set(bytes);
      else dst.set(bytes.subarray(offset, offset + size));
      // Reading runs no caller code, so the scratch buffer cannot be re-entered here.
      return node.read(mine.view, 0) as T;
    },
    read(view: DataView, offset = 0): T {
      checkView(view, offset, size);
      return node.read(view, offset) as T;
    },
    encode(value: T | Uint8Array, out?: Uint8Array, offset = 0): Uint8Array {
      if (offset !== 0) checkOffset(offset);
      if (out !== undefined && out.length - offset < size) {
        throw new InvalidArgumentError(`output buffer too small: need ${size} bytes at offset ${offset}, have ${Math.max(0, out.length - offset)}`);
      }
      if (value instanceof Uint8Array) {
        if (value.length !== size) throw new InvalidArgumentError(`expected ${size} bytes, got ${value.length}`);
        if (out === undefined) return new Uint8Array(value);
        copySmall(value, out, offset, size);
        return out;
      }
      // A getter on the caller's object could call back into this codec: give it its own buffer.
      const s = busy ? new Scratch(size) : (scratch ??= new Scratch(size));
      const outer = busy;
      busy = true;
      try {
        const b = s.bytes;
        if (size <= SMALL) for (let i = 0; i < size; i++) b[i] = 0;
        else b.fill(0);
        node.write(s.view, 0, value);
      } catch (e) {
        if (!(e instanceof FieldError)) throw e;
        const path = e.segments.reverse().join('');
        throw new InvalidArgumentError(`${root}${path}: ${e.detail}`);
      } finally {
        busy = outer;
      }
      // On failure `out` is left untouched.
      if (out === undefined) return s.bytes.slice();
      copySmall(s.bytes, out, offset, size);
      return out;
    },
  };
}

const codecCache = new WeakMap<Btf, Map<string, Codec>>();

/**
 * Compiles a codec for BTF type `typeId`. Throws InvalidArgumentError for types without a size
 * (void, functions, forward declarations) and BtfError for malformed type graphs.
 */
export function codecFor(btf: Btf, typeId: number, options?: CodecOptions): Codec {
  const le = options?.littleEndian ?? HOST_LE;
  const root = options?.path ?? 'value';
  const key = `${typeId}/${le ? 'le' : 'be'}/${root}`;
  let perBtf = codecCache.get(btf);
  const hit = perBtf?.get(key);
  if (hit) return hit;
  if (!Number.isInteger(typeId) || typeId < 0 || typeId >= btf.length) {
    throw new InvalidArgumentError(`type id ${typeId} does not exist (BTF has ${btf.length} types)`);
  }
  const codec = makeCodec<unknown>(new Compiler(btf, le).node(typeId), root);
  if (!perBtf) codecCache.set(btf, (perBtf = new Map()));
  perBtf.set(key, codec);
  return codec;
}

/** Bytes in, bytes out: for maps without BTF. Decoding copies; encoding checks the length. */
export function rawCodec(size: number): Codec<Uint8Array> {
  if (!Number.isInteger(size) || size < 0) throw new InvalidArgumentError(`size must be a non-negative integer, got ${size}`);
  return {
    size,
    decode(bytes: Uint8Array, offset = 0): Uint8Array {
      if (offset !== 0) checkOffset(offset);
      if (bytes.length - offset < size) {
        const at = offset ? ` at offset ${offset}` : '';
        throw new InvalidArgumentError(`expected ${size} bytes${at}, got ${Math.max(0, bytes.length - offset)}`);
      }
      return new Uint8Array(bytes.subarray(offset, offset + size));
    },
    read(view: DataView, offset = 0): Uint8Array {
      checkView(view, offset, size);
      return new Uint8Array(view.buffer, view.byteOffset + offset, size).slice();
    },
    encode(value: Uint8Array, out?: Uint8Array, offset = 0): Uint8Array {
      if (offset !== 0) checkOffset(offset);
      if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(`expected a Uint8Array of ${size} bytes, got ${describe(value)}`);
      if (value.length !== size) throw new InvalidArgumentError(`expected ${size} bytes, got ${value.length}`);
      if (out === undefined) return new Uint8Array(value);
      if (out.length - offset < size) {
        throw new InvalidArgumentError(`output buffer too small: need ${size} bytes at offset ${offset}, have ${Math.max(0, out.length - offset)}`);
      }
      out.set(value, offset);
      return out;
    },
  };
}

/** A plain integer key or value for maps without BTF: 8 bytes as bigint, smaller as number. */
export function intCodec(size: 1 | 2 | 4 | 8, signed: boolean, littleEndian = true): Codec<number | bigint> {
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) {
    throw new InvalidArgumentError(`integer size must be 1, 2, 4 or 8 bytes, got ${String(size)}`);
  }
  return makeCodec<number | bigint>(intNode(size, signed, littleEndian, `${signed ? 's' : 'u'}${size * 8}`), 'value');
}
