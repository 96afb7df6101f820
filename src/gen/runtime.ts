/**
 * The run-time half of `bpfkit gen`: what every generated module calls and would otherwise carry a
 * copy of. It is exported from the package's `bpfkit/internal` entry (src/internal.ts) as the
 * namespace `genRuntime`, and a generated module binds the few names it uses once, at the top:
 *
 *     import { genRuntime } from 'bpfkit/internal';
 *     const LE = true;
 *     const { place, rec, view } = genRuntime;
 *     const { wBig, wInt } = genRuntime.littleEndian;
 *
 * and, in its loading section, `const bindings = genRuntime.bindings<...>({ ident, objectBytes, ... })`,
 * which its `spec<Ident>()` and `load<Ident>()` call: the load wiring (spec cache, rodata and data
 * settings, Collection.load, the typed maps, programs and variables, close on failure) lives here.
 *
 * Internal but stable: this is not an API to program against, but generated modules already
 * written call it, so a name here is never removed or given another meaning, and a parameter is
 * only ever added at the end, optional. Changing what generated code needs means adding a name.
 *
 * The codec helpers implement exactly the value shapes and error messages of `codecFor`
 * (src/btf/codec.ts), which test/unit/gen-codec.test.ts checks type by type. Their arguments:
 * `v` the DataView of the whole object being read or written, `o` the byte offset in it, `x` the
 * value to write (`unknown`: it comes from the caller unchecked; `undefined` writes nothing, which
 * leaves zeros), `p` the path of the enclosing object and `m` the member's segment of it (`'.name'`,
 * an index, or `''`) for messages, `c` the C spelling of the member's type for messages.
 */
import { Collection, type CollectionOptions } from '../load/collection.js';
import { CollectionSpec } from '../spec/collection-spec.js';
import { InvalidArgumentError, SpecError } from '../errors.js';
import type { BpfMap } from '../objects/map.js';
import type { Program } from '../objects/program.js';

/** A member's segment of a message's path: `'.name'`, an array index, or `''` for the root. */
export type Segment = string | number;

/** One alternative of a union: the member names it covers, and a writer of those members. */
export type UnionAlternative = readonly [readonly string[], (w: DataView) => void];

function at(p: string, m: Segment): string {
  return `${p}${typeof m === 'number' ? `[${m}]` : m}`;
}

// ---- Helpers whatever the byte order ---------------------------------------------------------

/** A short description of a value of the wrong type, for messages. */
export function show(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (x instanceof Uint8Array) return 'a Uint8Array';
  if (typeof x === 'string') return `string ${JSON.stringify(x.length > 40 ? `${x.slice(0, 37)}...` : x)}`;
  return typeof x;
}

/** Throws InvalidArgumentError for member `m` of `p`: `value.a.b[2]: detail`. */
export function fail(p: string, m: Segment, detail: string): never {
  throw new InvalidArgumentError(`${at(p, m)}: ${detail}`);
}

/** A DataView over all of `bytes`, after checking that `size` bytes are there at `offset`. */
export function view(bytes: Uint8Array, offset: number, size: number): DataView {
  if (!Number.isInteger(offset) || offset < 0) throw new InvalidArgumentError(`offset must be a non-negative integer, got ${offset}`);
  if (bytes.length - offset < size) {
    throw new InvalidArgumentError(`expected ${size} bytes${offset ? ` at offset ${offset}` : ''}, got ${Math.max(0, bytes.length - offset)}`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `b` itself when there is no `out`, else `b` copied into `out` at `offset` (checked), and `out`. */
export function place(b: Uint8Array, out: Uint8Array | undefined, offset: number): Uint8Array {
  if (out === undefined) return b;
  if (!Number.isInteger(offset) || offset < 0) throw new InvalidArgumentError(`offset must be a non-negative integer, got ${offset}`);
  if (out.length - offset < b.length) {
    throw new InvalidArgumentError(`output buffer too small: need ${b.length} bytes at offset ${offset}, have ${Math.max(0, out.length - offset)}`);
  }
  out.set(b, offset);
  return out;
}

/** An integer of `bits` bits (at most 52) as a number, range-checked. */
export function toInt(x: unknown, p: string, m: Segment, bits: number, signed: boolean, c: string): number {
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  if (typeof x === 'number') {
    if (Number.isInteger(x) && x >= min && x <= max) return x;
    return fail(p, m, Number.isInteger(x) && !Number.isSafeInteger(x) ? `${x} is not a safe integer; pass a bigint for ${c}` : `${x} does not fit ${c}`);
  }
  if (typeof x === 'bigint') {
    if (x >= BigInt(min) && x <= BigInt(max)) return Number(x);
    return fail(p, m, `${x} does not fit ${c}`);
  }
  return fail(p, m, `expected a number for ${c}, got ${show(x)}`);
}

/** An integer of `bits` bits as a bigint, range-checked (numbers must be safe integers). */
export function toBig(x: unknown, p: string, m: Segment, bits: number, signed: boolean, c: string): bigint {
  let b: bigint;
  if (typeof x === 'bigint') b = x;
  else if (typeof x === 'number') {
    if (!Number.isSafeInteger(x)) return fail(p, m, Number.isInteger(x) ? `${x} is not a safe integer; pass a bigint for ${c}` : `${x} does not fit ${c}`);
    b = BigInt(x);
  } else return fail(p, m, `expected a bigint or number for ${c}, got ${show(x)}`);
  const lim = 1n << BigInt(signed ? bits - 1 : bits);
  if (signed ? b < -lim || b >= lim : b < 0n || b >= lim) return fail(p, m, `${b} does not fit ${c}`);
  return b;
}

/** A copy of the `n` bytes at `o`. */
export function bytesAt(v: DataView, o: number, n: number): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset + o, n).slice();
}

/** A byte array: a Uint8Array, a string (as UTF-8) or an array of byte values; the rest stays zero. */
export function wBytes(v: DataView, o: number, x: unknown, p: string, m: Segment, n: number, signed: boolean, c: string): void {
  if (x === undefined) return;
  let b: Uint8Array;
  let what = 'bytes';
  if (x instanceof Uint8Array) b = x;
  else if (typeof x === 'string') {
    b = new TextEncoder().encode(x);
    what = 'bytes of UTF-8';
  } else if (Array.isArray(x)) {
    if (x.length > n) fail(p, m, `${x.length} elements do not fit ${c} (${n} bytes)`);
    const q = at(p, m);
    const bytes = new Uint8Array(x.length);
    x.forEach((e: unknown, i: number) => {
      if (e !== undefined) bytes[i] = toInt(e, q, i, 8, signed, c.replace(/\[\d+\]$/, '')) & 0xff;
    });
    b = bytes;
  } else return fail(p, m, `expected a Uint8Array or string for ${c}, got ${show(x)}`);
  if (b.length > n) fail(p, m, `${b.length} ${what} do not fit ${c} (${n} bytes)`);
  new Uint8Array(v.buffer, v.byteOffset + o, b.length).set(b);
}

/** `[f(0), ..., f(n - 1)]`. */
export function list<T>(n: number, f: (i: number) => T): T[] {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(f(i));
  return out;
}

/** Calls `f` for each present element of an array member (at most `n`). */
export function arr(x: unknown, p: string, m: Segment, n: number, c: string, f: (e: unknown, i: number, q: string) => void): void {
  if (x === undefined) return;
  if (!Array.isArray(x)) return fail(p, m, `expected an array for ${c}, got ${show(x)}`);
  if (x.length > n) fail(p, m, `${x.length} elements do not fit ${c}`);
  const q = at(p, m);
  x.forEach((e: unknown, i: number) => {
    if (e !== undefined) f(e, i, q);
  });
}

/** An object member: checked to be an object carrying only known members. */
export function rec(x: unknown, p: string, m: Segment, members: ReadonlySet<string>, c: string): Record<string, unknown> | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'object' || x === null || Array.isArray(x) || ArrayBuffer.isView(x)) return fail(p, m, `expected an object for ${c}, got ${show(x)}`);
  const r = x as Record<string, unknown>;
  for (const key in r) {
    if (!members.has(key) && r[key] !== undefined) fail(p, m, `${c} has no member "${key}"; members: ${[...members].join(', ')}`);
  }
  return r;
}

/**
 * A union: its members overlap, so it takes one alternative at a time, or several that agree where
 * they overlap (as a decoded union's do). Each alternative is written alone over zeros and over
 * 0xff to find the bytes it covers; disagreeing alternatives are refused and nothing is written.
 */
export function one(v: DataView, r: Record<string, unknown>, p: string, c: string, alternatives: readonly UnionAlternative[]): void {
  const given = alternatives.filter(([names]) => names.some((k) => r[k] !== undefined));
  if (given.length <= 1) {
    given[0]?.[1](v);
    return;
  }
  const n = v.byteLength;
  const merged = new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + n));
  const covered = new Uint8Array(n);
  for (const [, write] of given) {
    const zero = new Uint8Array(n);
    const ones = new Uint8Array(n).fill(0xff);
    write(new DataView(zero.buffer));
    write(new DataView(ones.buffer));
    for (let i = 0; i < n; i++) {
      if (zero[i] === 0 && ones[i] === 0xff) continue;
      if (covered[i] === 1 && merged[i] !== zero[i]) {
        fail(p, '', `${c} takes one member at a time, got ${given.flatMap(([names]) => names.filter((k) => r[k] !== undefined)).join(', ')}`);
      }
      covered[i] = 1;
      merged[i] = zero[i]!;
    }
  }
  new Uint8Array(v.buffer, v.byteOffset, n).set(merged);
}

// ---- Helpers for one byte order ------------------------------------------------------------------

/** The helpers whose layout depends on the byte order of the object's BPF target. */
export interface ByteOrderHelpers {
  readonly littleEndian: boolean;
  /** Writes a 1, 2 or 4-byte integer (a number or bigint in range). */
  readonly wInt: (v: DataView, o: number, x: unknown, p: string, m: Segment, size: 1 | 2 | 4, signed: boolean, c: string) => void;
  /** Writes a 64-bit integer (a bigint, or a safe integer number). */
  readonly wBig: (v: DataView, o: number, x: unknown, p: string, m: Segment, signed: boolean, c: string) => void;
  readonly w128: (v: DataView, o: number, x: unknown, p: string, m: Segment, signed: boolean, c: string) => void;
  readonly r128: (v: DataView, o: number, signed: boolean) => bigint;
  /** Writes a `_Bool` of `size` bytes (true, false, 0 or 1). */
  readonly wBool: (v: DataView, o: number, x: unknown, p: string, m: Segment, size: number) => void;
  readonly wFloat: (v: DataView, o: number, x: unknown, p: string, m: Segment, size: 4 | 8, c: string) => void;
  /** A bitfield within `span` (at most 6) bytes at `o`, as a number. */
  readonly rBits: (v: DataView, o: number, span: number, shift: number, bits: number, signed: boolean) => number;
  /** A bitfield within `span` bytes at `o`, as a bigint. */
  readonly rBitsBig: (v: DataView, o: number, span: number, shift: number, bits: number, signed: boolean) => bigint;
  /** Writes a bitfield (number, bigint or boolean) into `span` bytes at `o`, keeping the other bits. */
  readonly wBits: (v: DataView, o: number, x: unknown, p: string, m: Segment, span: number, shift: number, bits: number, signed: boolean, c: string) => void;
}

function byteOrder(LE: boolean): ByteOrderHelpers {
  /** Byte `i` of the `span` bytes at `o`, counting from the most significant. */
  const msb = (o: number, span: number, i: number): number => o + (LE ? span - 1 - i : i);
  return {
    littleEndian: LE,
    wInt(v, o, x, p, m, size, signed, c) {
      if (x === undefined) return;
      const n = toInt(x, p, m, size * 8, signed, c);
      if (size === 1) v.setUint8(o, n & 0xff);
      else if (size === 2) v.setUint16(o, n & 0xffff, LE);
      else v.setUint32(o, n >>> 0, LE);
    },
    wBig(v, o, x, p, m, signed, c) {
      if (x === undefined) return;
      v.setBigUint64(o, BigInt.asUintN(64, toBig(x, p, m, 64, signed, c)), LE);
    },
    w128(v, o, x, p, m, signed, c) {
      if (x === undefined) return;
      const u = BigInt.asUintN(128, toBig(x, p, m, 128, signed, c));
      v.setBigUint64(o + (LE ? 0 : 8), BigInt.asUintN(64, u), LE);
      v.setBigUint64(o + (LE ? 8 : 0), u >> 64n, LE);
    },
    r128(v, o, signed) {
      const u = (v.getBigUint64(o + (LE ? 8 : 0), LE) << 64n) | v.getBigUint64(o + (LE ? 0 : 8), LE);
      return signed ? BigInt.asIntN(128, u) : u;
    },
    wBool(v, o, x, p, m, size) {
      if (x === undefined) return;
      if (typeof x !== 'boolean' && x !== 0 && x !== 1) fail(p, m, `expected a boolean for _Bool, got ${show(x)}`);
      const b = x === true || x === 1;
      if (size === 1) v.setUint8(o, b ? 1 : 0);
      else if (size === 2) v.setUint16(o, b ? 1 : 0, LE);
      else if (size === 4) v.setUint32(o, b ? 1 : 0, LE);
      else v.setBigUint64(o + (size === 16 && !LE ? 8 : 0), b ? 1n : 0n, LE);
    },
    wFloat(v, o, x, p, m, size, c) {
      if (x === undefined) return;
      if (typeof x !== 'number') fail(p, m, `expected a number for ${c}, got ${show(x)}`);
      if (size === 4) v.setFloat32(o, x, LE);
      else v.setFloat64(o, x, LE);
    },
    rBits(v, o, span, shift, bits, signed) {
      let acc = 0;
      for (let i = 0; i < span; i++) acc = acc * 256 + v.getUint8(msb(o, span, i));
      const u = Math.floor(acc / 2 ** shift) % 2 ** bits;
      return signed && u >= 2 ** (bits - 1) ? u - 2 ** bits : u;
    },
    rBitsBig(v, o, span, shift, bits, signed) {
      let acc = 0n;
      for (let i = 0; i < span; i++) acc = (acc << 8n) | BigInt(v.getUint8(msb(o, span, i)));
      const u = (acc >> BigInt(shift)) & ((1n << BigInt(bits)) - 1n);
      return signed ? BigInt.asIntN(bits, u) : u;
    },
    wBits(v, o, x, p, m, span, shift, bits, signed, c) {
      if (x === undefined) return;
      let val: bigint;
      if (typeof x === 'boolean') val = x ? 1n : 0n;
      else if (bits <= 52 && typeof x === 'number') val = BigInt(toInt(x, p, m, bits, signed, c));
      else val = toBig(x, p, m, bits, signed, c);
      let acc = 0n;
      for (let i = 0; i < span; i++) acc = (acc << 8n) | BigInt(v.getUint8(msb(o, span, i)));
      const mask = ((1n << BigInt(bits)) - 1n) << BigInt(shift);
      acc = (acc & ~mask) | ((BigInt.asUintN(bits, val) << BigInt(shift)) & mask);
      for (let i = span - 1; i >= 0; i--, acc >>= 8n) v.setUint8(msb(o, span, i), Number(acc & 0xffn));
    },
  };
}

/** The byte-order helpers for little-endian targets (bpfel, x86-64, arm64, ...). */
export const littleEndian: ByteOrderHelpers = Object.freeze(byteOrder(true));
/** The byte-order helpers for big-endian targets (bpfeb, s390x, ...). */
export const bigEndian: ByteOrderHelpers = Object.freeze(byteOrder(false));

// ---- Loading -------------------------------------------------------------------------------------

/** A global variable as a generated module hands it out (its Variable and Constant types are views of this). */
export interface GeneratedVariable<T> {
  readonly name: string;
  get(): T;
  set(value: T): void;
}

/** What a generated `load<Ident>()` needs, with the module's ident in every message. */
export interface Loader {
  /** Sets the initial values of the spec's `section` variables ('rodata', or 'data' for .data and .bss), by property name. */
  readonly setInitial: (spec: CollectionSpec, values: object, section: string) => void;
  readonly mapOf: <K, V>(c: Collection, name: string) => BpfMap<K, V>;
  readonly programOf: (c: Collection, name: string) => Program;
  readonly variableOf: <T>(c: Collection, name: string) => GeneratedVariable<T>;
}

/**
 * The loading helpers of generated module `ident`, whose `<ident>VariableNames` (property name ->
 * C name) is `variableNames`.
 */
export function loader(ident: string, variableNames: Readonly<Record<string, string>>): Loader {
  return {
    setInitial(spec, values, section) {
      for (const [key, value] of Object.entries(values) as [string, unknown][]) {
        if (value === undefined) continue;
        const name = variableNames[key];
        const v = name === undefined ? undefined : spec.variables.get(name);
        if (v === undefined || v.constant !== (section === 'rodata')) throw new InvalidArgumentError(`${ident}: no ${section} variable "${key}"`);
        v.set(value);
      }
    },
    mapOf<K, V>(c: Collection, name: string): BpfMap<K, V> {
      const m = c.maps.get(name);
      if (m === undefined) throw new SpecError(`${ident}: map ${name} is missing from the loaded collection`);
      return m as BpfMap<K, V>;
    },
    programOf(c, name) {
      const p = c.programs.get(name);
      if (p === undefined) throw new SpecError(`${ident}: program ${name} was not loaded (see the programs.only option)`);
      return p;
    },
    variableOf<T>(c: Collection, name: string): GeneratedVariable<T> {
      const v = c.variables.get(name);
      if (v === undefined) throw new SpecError(`${ident}: variable ${name} is missing from the loaded collection`);
      return { name, get: () => v.get() as T, set: (value: T) => v.set(value) };
    },
  };
}

// ---- Load wiring ---------------------------------------------------------------------------------

/** A .rodata variable as a generated module hands it out: fixed once loaded. */
export interface GeneratedConstant<T> {
  readonly name: string;
  get(): T;
}

/** The options of a generated `load<Ident>()`: `R` its .rodata values, `D` its .data and .bss values. */
export interface GeneratedLoadOptions<R extends object, D extends object> extends CollectionOptions {
  /** Constants to give the program before load (the verifier sees them as constants). */
  rodata?: Partial<R>;
  /** Initial values of writable globals. */
  data?: Partial<D>;
  /** The object's bytes, to use instead of the module's own object. */
  object?: Uint8Array;
  /** max_entries to set before the maps are created, by map name (a ring buffer's size, say). */
  maxEntries?: Readonly<Record<string, number>>;
}

/** What a generated `load<Ident>()` returns: its typed maps `M`, programs `P` and variables `V`. */
export interface GeneratedObjects<M, P, V> extends Disposable {
  readonly maps: M;
  readonly programs: P;
  readonly variables: V;
  /** The underlying collection, for everything the typed view does not cover. */
  readonly collection: Collection;
  /** Closes every program and map. */
  close(): void;
}

/** What a generated module tells `bindings()` about its object. */
export interface GeneratedModule<M, P, V> {
  /** The module's ident, for messages. */
  readonly ident: string;
  /** The bytes of the module's own object (read once, on the first `spec()` without an object). */
  readonly objectBytes: () => Uint8Array;
  /** Whether the object has .rodata variables (else a non-empty `rodata` option is refused). */
  readonly rodata: boolean;
  /** Whether the object has .data or .bss variables (else a non-empty `data` option is refused). */
  readonly data: boolean;
  /** Its `<ident>MapNames`: property of `M` -> name in the object. */
  readonly maps: { readonly [K in keyof M]: string };
  /** Its `<ident>ProgramNames`: property of `P` -> C function name. */
  readonly programs: { readonly [K in keyof P]: string };
  /** The C names of the programs not loaded unless asked for: `undefined` when not loaded, rather than an error. */
  readonly optionalPrograms?: readonly string[];
  /** Its `<ident>VariableNames`: property of `V` -> C name. */
  readonly variables: { readonly [K in keyof V]: string };
}

/** An object with a property `key` = `f(name)` for each `key: name` of `names` (in their order). */
function byName<T>(names: { readonly [K in keyof T]: string }, f: (name: string) => unknown): T {
  const out: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(names) as [string, string][]) out[key] = f(name);
  return out as T;
}

/** The `spec<Ident>()` and `load<Ident>()` of a generated module. */
export interface GeneratedBindings<R extends object, D extends object, M, P, V> {
  /** The CollectionSpec of `object`, or a fresh copy of the module's own object's. */
  readonly spec: (object?: Uint8Array) => CollectionSpec;
  /** Loads the object: sets its globals, creates its maps, loads its programs, returns the typed view. */
  readonly load: (options?: GeneratedLoadOptions<R, D>) => Promise<GeneratedObjects<M, P, V>>;
}

/**
 * The load wiring of a generated module: `R` and `D` its .rodata and .data values, `M`, `P` and `V`
 * the shapes of its maps, programs and variables, which it builds from the module's name constants.
 */
/**
 * The module's object. Bindings generated with --object-file read it from beside the compiled
 * module, where tsc does not copy it: say that, instead of a bare ENOENT.
 */
function objectBytes(ident: string, read: () => Uint8Array): Uint8Array {
  try {
    return read();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'ENOENT') throw e;
    throw new SpecError(
      `${ident}: its BPF object ${err.path ?? ''} is missing: the bindings were generated with --object-file, so the ` +
        '.bpf.o must be copied next to the compiled module (tsc does not copy it); or regenerate without --object-file to embed it',
    );
  }
}

export function bindings<R extends object, D extends object, M, P, V>(module: GeneratedModule<M, P, V>): GeneratedBindings<R, D, M, P, V> {
  const { ident } = module;
  const helpers = loader(ident, module.variables);
  const optional = new Set(module.optionalPrograms ?? []);
  let cachedSpec: CollectionSpec | undefined;
  const spec = (object?: Uint8Array): CollectionSpec => {
    if (object !== undefined) return CollectionSpec.fromBuffer(object);
    cachedSpec ??= CollectionSpec.fromBuffer(objectBytes(ident, module.objectBytes));
    return cachedSpec.copy();
  };
  const load = async (options: GeneratedLoadOptions<R, D> = {}): Promise<GeneratedObjects<M, P, V>> => {
    const { rodata, data, object, maxEntries, ...collectionOptions } = options;
    const s = spec(object);
    for (const [name, n] of Object.entries(maxEntries ?? {})) {
      const m = s.maps.get(name);
      if (!m) throw new SpecError(`${ident}: maxEntries: the object has no map named ${JSON.stringify(name)}`);
      if (!Number.isSafeInteger(n) || n < 1 || n > 0xffffffff) throw new InvalidArgumentError(`${ident}: maxEntries.${name} must be a whole number from 1 to 4294967295, not ${n}`);
      m.maxEntries = n;
    }
    if (module.rodata) {
      if (rodata !== undefined) helpers.setInitial(s, rodata, 'rodata');
    } else if (rodata !== undefined && Object.keys(rodata).length > 0) throw new SpecError(`${ident}: the object has no .rodata variables`);
    if (module.data) {
      if (data !== undefined) helpers.setInitial(s, data, 'data');
    } else if (data !== undefined && Object.keys(data).length > 0) throw new SpecError(`${ident}: the object has no .data or .bss variables`);
    const c = await Collection.load(s, collectionOptions);
    try {
      const maps = byName<M>(module.maps, (name) => helpers.mapOf(c, name));
      const variables = byName<V>(module.variables, (name) => helpers.variableOf(c, name));
      // Programs are looked up when used: one not loaded (programs.only) fails only then.
      const programs: Record<string, unknown> = {};
      for (const [key, name] of Object.entries(module.programs) as [string, string][]) {
        const get = optional.has(name) ? (): Program | undefined => c.programs.get(name) : (): Program => helpers.programOf(c, name);
        Object.defineProperty(programs, key, { get, enumerable: true, configurable: true });
      }
      return {
        maps, programs: programs as P, variables,
        collection: c,
        close: () => c.close(),
        [Symbol.dispose]: () => c.close(),
      };
    } catch (e) {
      c.close();
      throw e;
    }
  };
  return { spec, load };
}
