/**
 * Typed records read in place: a flyweight over a DataView and an offset whose getters decode one
 * member each, when it is read. The third back end of the codec layout pass (after codecFor's
 * closures and the code generator): `for (const ev of batch.records(view)) ev.pid` allocates
 * nothing per record but what the getters the caller touches return (a 64-bit member's bigint, a
 * string), where decoding whole objects allocates every member.
 *
 * Member types follow codecFor, with one difference made for event records: a plain `char`
 * array (`char comm[16]`) reads as a string (UTF-8 up to the first NUL, decoded only when read);
 * other byte arrays (`__u8 addr[6]`) read as Uint8Array copies. Named struct and union members
 * are flyweights of their own over the same bytes.
 *
 * A record view held by a batch's records() iterator is moved from record to record (one object
 * per iteration) and detached when the iteration ends or its batch is handed back to the kernel:
 * its getters then throw ClosedError instead of reading bytes the kernel may have reused.
 */
import { endianness } from 'node:os';
import { BtfError, ClosedError, InvalidArgumentError } from '../errors.js';
import type { Btf } from './btf.js';
import { bitfieldReader, codecFor } from './codec.js';
import { isByteArrayElement, planMembers, type GroupPlan, type LayoutHooks } from './codec-layout.js';
import type { BtfStruct, BtfType } from './types.js';

const HOST_LE = endianness() === 'LE';
const decoder = new TextDecoder('utf-8');

/** Options of {@link recordViewFor}: the byte order of the records. */
export interface RecordViewOptions {
  /** Byte order of the data; defaults to the host's (what the kernel writes into rings). */
  readonly littleEndian?: boolean;
  /**
   * How 64-bit integers and pointers read: 'bigint' (the default, exact, as codecFor) or 'number'
   * (no allocation per read; exact up to 2^53, rounded above it as Number(bigint) rounds), for
   * counters, timestamps and ids that stay below 2^53.
   */
  readonly int64?: 'bigint' | 'number';
}

/**
 * A record's members read in place (see {@link recordViewFor}). A record view is valid while the
 * bytes it views are: inside the loop over its batch. Copy what you keep with
 * {@link RecordView.copy}.
 */
export interface RecordView<T extends object = Record<string, unknown>> {
  /** Bytes one record of this type occupies. */
  readonly size: number;
  /** The struct or union, as C names it ("struct event"). */
  readonly typeName: string;
  /**
   * A new record view of the `size` bytes of `view` at `offset` (one small object; nothing is
   * decoded until a member is read). It stays valid as long as those bytes are.
   * @throws {@link InvalidArgumentError} when `view` is shorter than `offset + size`.
   */
  at(view: DataView, offset?: number): T;
  /** The record's members as a plain object that owns its values (strings, copies of arrays). */
  copy(record: T): T;
  /**
   * A cursor for batch.records(): one record view, moved to each record in turn. @internal
   */
  cursor(): RecordCursor<T>;
}

/** One record view moved over a batch's records (what RecordBatch.records() drives). @internal */
export interface RecordCursor<T> {
  /** The record view. */
  readonly record: T;
  /**
   * The same object as `record`: set `v` (the DataView) and `o` (the record's offset) to move it.
   * Plain field stores: measured about 3x faster per record than a move() call.
   */
  readonly fly: { v: DataView; o: number };
  /** Makes the record view (and the child views it handed out) throw from now on. */
  detach(): void;
}

// ---------------------------------------------------------------------------------------------
// The flyweights. A record view is an object of a class made for its type, with two fields: `v`,
// the DataView, and `o`, the record's offset in it (-1 once detached). Each member is a getter on
// the class's prototype. The class is compiled from source with the offsets and byte order as
// constants (measured about 3x faster than getters closing over them); where the embedder
// forbids code generation from strings, the same getters are closures.

interface Fly {
  v: DataView;
  o: number;
}

/** Reads one member of the record at `o` in `v`. */
type Read = (v: DataView, o: number) => unknown;

const EMPTY = new DataView(new ArrayBuffer(0));

/** How one member is read: inline source with `v` and `o` in scope, or a helper call. */
interface MemberCode {
  readonly name: string;
  /** A JS expression of `v` (DataView) and `o` (the record's offset), or undefined: use `read`. */
  readonly expr: string | undefined;
  readonly read: Read;
  /** For struct members: the child's shape (copy and detach recurse). */
  readonly child: Shape | undefined;
  /** For cached text members: the cache the compiled getter reads inline. */
  readonly text?: { readonly cache: TextCache; readonly off: number; readonly le: boolean };
}

/** What a compiled struct type is: how its flyweights are made, detached and copied. */
interface Shape {
  readonly size: number;
  readonly label: string;
  make(): Fly;
  copy(f: Fly): Record<string, unknown>;
  /** Detaches `f` and the child views it handed out. */
  detach(f: Fly): void;
}

function stale(label: string): never {
  throw new ClosedError(`this ${label} record view (its batch was handed back to the kernel; copy what you keep inside the loop with recordView.copy(rec))`);
}

function scalarExpr(t: BtfType, off: number, le: boolean, int64: 'bigint' | 'number'): { expr: string; read: Read } | undefined {
  const L = le ? 'true' : 'false';
  const m = (fn: string): { expr: string; read: Read } => ({
    expr: `v.${fn}(o + ${off}, ${L})`,
    read: (v, o) => (v as unknown as Record<string, (at: number, le: boolean) => unknown>)[fn]!(o + off, le),
  });
  const wide = (signed: boolean): { expr: string; read: Read } => {
    if (int64 === 'bigint') return m(signed ? 'getBigInt64' : 'getBigUint64');
    // Two 32-bit halves: exact up to 2^53, rounded once above it (as Number(bigint) rounds).
    const lo = le ? off : off + 4;
    const hi = le ? off + 4 : off;
    const hiFn = signed ? 'getInt32' : 'getUint32';
    return {
      expr: `v.${hiFn}(o + ${hi}, ${L}) * 4294967296 + v.getUint32(o + ${lo}, ${L})`,
      read: signed
        ? (v, o) => v.getInt32(o + hi, le) * 4294967296 + v.getUint32(o + lo, le)
        : (v, o) => v.getUint32(o + hi, le) * 4294967296 + v.getUint32(o + lo, le),
    };
  };
  if (t.kind === 'ptr') return wide(false);
  if (t.kind === 'float') return t.size === 4 ? m('getFloat32') : t.size === 8 ? m('getFloat64') : undefined;
  if (t.kind !== 'int' && t.kind !== 'enum') return undefined;
  if (t.kind === 'int' && t.bool) {
    return t.size === 1 ? { expr: `v.getUint8(o + ${off}) !== 0`, read: (v, o) => v.getUint8(o + off) !== 0 } : undefined;
  }
  switch (t.size) {
    case 1: return t.signed
      ? { expr: `v.getInt8(o + ${off})`, read: (v, o) => v.getInt8(o + off) }
      : { expr: `v.getUint8(o + ${off})`, read: (v, o) => v.getUint8(o + off) };
    case 2: return m(t.signed ? 'getInt16' : 'getUint16');
    case 4: return m(t.signed ? 'getInt32' : 'getUint32');
    case 8: return wide(t.signed);
    default: return undefined;
  }
}

/** A plain `char` (not a typedef like __u8): arrays of it are text. */
function isCharElement(btf: Btf, id: number): boolean {
  for (let depth = 0; depth < 16; depth++) {
    const t = btf.type(id);
    if (t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict' || t.kind === 'type_tag') {
      id = t.type;
      continue;
    }
    return t.kind === 'int' && t.size === 1 && (t.char || t.name === 'char');
  }
  return false;
}

/** Slots (a power of two) of a text member's cache of recently decoded strings. */
const TEXT_SLOTS_LOG2 = 6;
/** Longer char arrays (paths) are decoded every time: they repeat less and cost more to compare. */
const TEXT_CACHED_MAX = 64;
/** The multiplier of the cache's hash of a text's words (2^32 / golden ratio, an odd number). */
const TEXT_HASH = 0x9e3779b1;

/** A text member's cache: `texts[slot]` was decoded from the `words` words at `keys[slot * words]`. */
interface TextCache {
  readonly words: number;
  readonly keys: Int32Array;
  readonly texts: (string | undefined)[];
  /** Decodes the text at `start` of `v` into `slot` and returns it. */
  fill(v: DataView, start: number, slot: number): string;
}

/** UTF-8 up to the first NUL of the `n` bytes at `start` of `v`. */
function decodeText(v: DataView, start: number, n: number): string {
  const bytes = new Uint8Array(v.buffer, v.byteOffset + start, n);
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/**
 * Reads a `char[n]` member as a string: UTF-8 up to the first NUL. Event text repeats (comm,
 * a few process names), so when `n` is a multiple of 4 (comm[16], ifname[16]) and at most
 * TEXT_CACHED_MAX, a direct-mapped cache keyed by all `n` bytes (read as 32-bit words, compared in
 * full on every hit) returns the string decoded before, without allocating. Equal bytes decode to
 * the same string, so a hit is always right; bytes after the NUL only make a miss more likely.
 */
function textReader(n: number, off: number, le: boolean): { read: Read; cache: TextCache | undefined } {
  if (n % 4 !== 0 || n > TEXT_CACHED_MAX) return { read: (v, o) => decodeText(v, o + off, n), cache: undefined };
  const words = n >> 2;
  const keys = new Int32Array(words << TEXT_SLOTS_LOG2);
  const texts: (string | undefined)[] = new Array<string | undefined>(1 << TEXT_SLOTS_LOG2).fill(undefined);
  const cache: TextCache = {
    words,
    keys,
    texts,
    fill(v, start, slot) {
      for (let k = 0; k < words; k++) keys[slot * words + k] = v.getInt32(start + 4 * k, le);
      const text = decodeText(v, start, n);
      texts[slot] = text;
      return text;
    },
  };
  const read: Read = (v, o) => {
    const start = o + off;
    let h = 0;
    for (let k = 0; k < words; k++) h = Math.imul(h ^ v.getInt32(start + 4 * k, le), TEXT_HASH);
    const slot = h >>> (32 - TEXT_SLOTS_LOG2);
    const cached = texts[slot];
    if (cached !== undefined) {
      let k = 0;
      while (k < words && keys[slot * words + k] === v.getInt32(start + 4 * k, le)) k++;
      if (k === words) return cached;
    }
    return cache.fill(v, start, slot);
  };
  return { read, cache };
}

/** The compiled getter of a cached text member: the same steps as textReader's, unrolled. */
function textSource(i: number, off: number, words: number, le: boolean): string {
  const L = le ? 'true' : 'false';
  const w = Array.from({ length: words }, (_, k) => `w${k}`);
  const loads = w.map((name, k) => `${name} = v.getInt32(s + ${4 * k}, ${L})`).join(', ');
  const hash = w.reduce((h, name) => `Math.imul(${h} ^ ${name}, ${TEXT_HASH})`, '0');
  const same = w.map((name, k) => `c.keys[b + ${k}] === ${name}`).join(' && ');
  return `const s = o + ${off}; const c = texts[${i}]; const ${loads}; ` +
    `const slot = ${hash} >>> ${32 - TEXT_SLOTS_LOG2}; const b = slot * ${words}; const t = c.texts[slot]; ` +
    `if (t !== undefined && ${same}) return t; return c.fill(v, s, slot);`;
}

/** Whether `new Function` works here (Node run with --disallow-code-generation-from-strings: no). */
let codegen: boolean | undefined;
function canCompile(): boolean {
  if (codegen === undefined) {
    try {
      codegen = new Function('return 1')() === 1;
    } catch {
      codegen = false;
    }
  }
  return codegen;
}

/**
 * The class of a struct type's record views. Member names come from BTF (any string): they are
 * only ever written into the source as JSON string literals.
 */
function viewClass(label: string, members: readonly MemberCode[]): new () => Fly {
  const childOf = (i: number): Shape => members[i]!.child!;
  if (canCompile()) {
    const lines = ['return class {', 'constructor() { this.v = EMPTY; this.o = -1; }'];
    members.forEach((m, i) => {
      const key = JSON.stringify(m.name);
      const head = `get [${key}]() { const o = this.o; if (o < 0) stale(LABEL); const v = this.v; `;
      if (m.child) {
        lines.push(`${head}const c = (this[${JSON.stringify(`$${i}`)}] ??= childOf(${i}).make()); c.v = v; c.o = o + ${m.expr}; return c; }`);
      } else if (m.expr !== undefined) {
        lines.push(`${head}return ${m.expr}; }`);
      } else if (m.text) {
        lines.push(`${head}${textSource(i, m.text.off, m.text.cache.words, m.text.le)} }`);
      } else {
        lines.push(`${head}return reads[${i}](v, o); }`);
      }
    });
    lines.push('};');
    const make = new Function('EMPTY', 'stale', 'LABEL', 'reads', 'childOf', 'texts', lines.join('\n')) as (
      e: DataView, s: typeof stale, l: string, r: readonly Read[], c: typeof childOf, t: readonly (TextCache | undefined)[]) => new () => Fly;
    return make(EMPTY, stale, label, members.map((m) => m.read), childOf, members.map((m) => m.text?.cache));
  }
  const View = class implements Fly {
    v = EMPTY;
    o = -1;
  };
  members.forEach((m, i) => {
    const read = m.read;
    const get = m.child
      ? function (this: Fly & Record<string, Fly | undefined>) {
        const o = this.o;
        if (o < 0) stale(label);
        const c = (this[`$${i}`] ??= childOf(i).make());
        c.v = this.v;
        c.o = o + Number(m.expr);
        return c;
      }
      : function (this: Fly) {
        const o = this.o;
        if (o < 0) stale(label);
        return read(this.v, o);
      };
    Object.defineProperty(View.prototype, m.name, { get, enumerable: true, configurable: false });
  });
  return View;
}

class ViewCompiler {
  private readonly shapes = new Map<number, Shape>();
  private readonly busy = new Set<number>();

  constructor(private readonly btf: Btf, private readonly le: boolean, private readonly int64: 'bigint' | 'number') {}

  resolve(id: number): BtfType {
    return this.btf.resolve(id);
  }

  label(t: BtfType): string {
    return t.kind === 'struct' || t.kind === 'union' ? `${t.kind} ${t.name || '(anon)'}` : `${t.kind} ${t.name}`;
  }

  shape(id: number): Shape {
    const t = this.resolve(id);
    const cached = this.shapes.get(t.id);
    if (cached) return cached;
    if (t.kind !== 'struct' && t.kind !== 'union') {
      throw new InvalidArgumentError(`a record view reads a struct or union, not ${this.label(t)} (type id ${id}); use codecFor() for other types`);
    }
    if (this.busy.has(t.id)) throw new BtfError(`${this.label(t)} (type id ${t.id}) contains itself`);
    this.busy.add(t.id);
    try {
      const s = this.build(t);
      this.shapes.set(t.id, s);
      return s;
    } finally {
      this.busy.delete(t.id);
    }
  }

  /** How a named member of type `id` at byte `off` of the record is read. */
  private member(name: string, id: number, off: number): MemberCode {
    const t = this.resolve(id);
    const scalar = scalarExpr(t, off, this.le, this.int64);
    if (scalar) return { name, ...scalar, child: undefined };
    if (t.kind === 'struct' || t.kind === 'union') {
      // A child view cached on its parent and moved with it: nested members allocate nothing
      // per record. `expr` carries the child's offset.
      const child = this.shape(id);
      return { name, expr: String(off), read: () => undefined, child };
    }
    if (t.kind === 'array') {
      const el = this.resolve(t.type);
      if (isByteArrayElement(el)) {
        const n = t.nelems;
        if (isCharElement(this.btf, t.type)) {
          const { read, cache } = textReader(n, off, this.le);
          return { name, expr: undefined, read, child: undefined, ...(cache ? { text: { cache, off, le: this.le } } : {}) };
        }
        return {
          name,
          expr: undefined,
          read: (v, o) => new Uint8Array(v.buffer, v.byteOffset + o + off, n).slice(),
          child: undefined,
        };
      }
    }
    // Everything else (other arrays, 128-bit integers, enum64, _Bool wider than a byte) decodes
    // through codecFor, as a map value of that type would.
    const codec = codecFor(this.btf, id, { littleEndian: this.le });
    return { name, expr: undefined, read: (v, o) => codec.read(v, o + off), child: undefined };
  }

  private build(t: BtfStruct): Shape {
    const label = this.label(t);
    const hooks: LayoutHooks<undefined> = {
      resolve: (id) => this.resolve(id),
      display: (id) => this.label(this.resolve(id)),
      field: (id) => ({ value: undefined, size: this.sizeOf(id, label) }),
    };
    const members: MemberCode[] = [];
    const walk = (g: GroupPlan<undefined>, base: number): void => {
      for (const p of g.parts) {
        if (p.kind === 'group') walk(p, base + p.offset);
        else if (p.kind === 'field') members.push(this.member(p.name, p.type, base + p.offset));
        else {
          const read = bitfieldReader(p.bitOffset + base * 8, p.bits, p.repr, p.signed, this.le);
          members.push({ name: p.name, expr: undefined, read, child: undefined });
        }
      }
    };
    walk(planMembers<undefined>(t, label, hooks), 0);
    const View = viewClass(label, members);
    const shape: Shape = {
      size: t.size,
      label,
      make: () => new View(),
      copy: (f) => {
        const src = f as unknown as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const m of members) out[m.name] = m.child ? m.child.copy(src[m.name] as Fly) : src[m.name];
        return out;
      },
      detach: (f) => {
        f.v = EMPTY;
        f.o = -1;
        members.forEach((m, i) => {
          const c = (f as unknown as Record<string, Fly | undefined>)[`$${i}`];
          if (m.child && c) m.child.detach(c);
        });
      },
    };
    // JSON.stringify and console.log then show the members (getters on a prototype are not own
    // properties), unless the struct has a member of that name.
    if (!members.some((m) => m.name === 'toJSON')) {
      Object.defineProperty(View.prototype, 'toJSON', { value(this: Fly) { return shape.copy(this); }, enumerable: false });
    }
    return shape;
  }

  private sizeOf(id: number, label: string): number {
    try {
      return this.btf.sizeof(id);
    } catch (e) {
      throw new InvalidArgumentError(`${label}: cannot read a member of type id ${id}: ${(e as Error).message}`);
    }
  }
}

const cache = new WeakMap<Btf, Map<string, RecordView>>();

/** The id of the one struct (else union) called `name`. */
function structNamed(btf: Btf, name: string): number {
  const found = btf.byName(name, 'struct');
  if (found.length === 0) found.push(...btf.byName(name, 'union'));
  if (found.length === 1) return found[0]!.id;
  if (found.length > 1) throw new InvalidArgumentError(`BTF has ${found.length} structs or unions called "${name}" (type ids ${found.map((t) => t.id).join(', ')}): pass the type id`);
  throw new InvalidArgumentError(`BTF has no struct or union called "${name}": clang keeps only the types that maps, functions and globals refer to; add a global that does, e.g. struct ${name} *unused_${name} __attribute__((unused));`);
}

/**
 * A record view of a BTF struct or union, given by type id or by name: typed members read in place,
 * each decoded only when read. Hand it to a batch's records() for the fast typed loop over ring
 * buffer and perf buffer events:
 *
 * ```ts
 * const events = recordViewFor<{ pid: number; comm: string }>(spec.btf!, 'event');
 * for await (const batch of reader.batches()) {
 *   for (const ev of batch.records(events)) if (ev.pid === 1) keep.push(events.copy(ev));
 * }
 * ```
 *
 * The loop's `ev` is one object moved from record to record: read it inside the loop and copy what
 * you keep ({@link RecordView.copy}); once its batch is handed back to the kernel, its getters
 * throw ClosedError.
 * @throws {@link InvalidArgumentError} when the type is not a struct or union, does not exist, or
 * its name is not found or names several.
 * @throws {@link BtfError} for malformed type graphs.
 */
export function recordViewFor<T extends object = Record<string, unknown>>(btf: Btf, type: number | string, options?: RecordViewOptions): RecordView<T> {
  const typeId = typeof type === 'string' ? structNamed(btf, type) : type;
  const le = options?.littleEndian ?? HOST_LE;
  const int64 = options?.int64 ?? 'bigint';
  if (int64 !== 'bigint' && int64 !== 'number') {
    throw new InvalidArgumentError(`int64 must be 'bigint' or 'number', got ${JSON.stringify(int64)}`);
  }
  const key = `${typeId}/${le ? 'le' : 'be'}/${int64}`;
  let perBtf = cache.get(btf);
  const hit = perBtf?.get(key);
  if (hit) return hit as unknown as RecordView<T>;
  if (!Number.isInteger(typeId) || typeId < 0 || typeId >= btf.length) {
    throw new InvalidArgumentError(`type id ${typeId} does not exist (BTF has ${btf.length} types)`);
  }
  const shape = new ViewCompiler(btf, le, int64).shape(typeId);
  const size = shape.size;
  const view: RecordView<T> = {
    size,
    typeName: shape.label,
    at(dv: DataView, offset = 0): T {
      if (!(dv instanceof DataView)) throw new InvalidArgumentError(`expected a DataView, got ${typeof dv}`);
      if (!Number.isInteger(offset) || offset < 0 || dv.byteLength - offset < size) {
        throw new InvalidArgumentError(`${shape.label} needs ${size} bytes at offset ${offset}, the view has ${dv.byteLength}`);
      }
      const f = shape.make();
      f.v = dv;
      f.o = offset;
      return f as unknown as T;
    },
    copy(record: T): T {
      return shape.copy(record as unknown as Fly) as T;
    },
    cursor(): RecordCursor<T> {
      const f = shape.make();
      return {
        record: f as unknown as T,
        fly: f,
        detach(): void {
          shape.detach(f);
        },
      };
    },
  };
  if (!perBtf) cache.set(btf, (perBtf = new Map()));
  perBtf.set(key, view as unknown as RecordView);
  return view;
}
