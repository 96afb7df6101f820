/**
 * Writes TypeScript for BTF types: a declaration per named struct, union and enum, and for each
 * struct or union a reader and a writer that go straight at a DataView with the offsets, sizes,
 * bitfield positions and byte order BTF gives. The values these produce and accept have exactly
 * the shapes `codecFor` (src/btf/codec.ts) gives at run time, so a generated `decodeFoo` and a map
 * whose value is `struct foo` agree field for field: integers up to 32 bits are numbers, 64 and
 * 128-bit integers and pointers bigints, `_Bool` a boolean, arrays of one-byte integers a
 * Uint8Array, other arrays JS arrays, enums their numeric values, and anonymous struct and union
 * members are flattened into the enclosing object. Members that sit in a union are optional in the
 * type: a decoded union carries every alternative, an encoded one takes exactly one.
 *
 * The checks and the fiddly parts (range checks, byte arrays, bitfields, unions) are calls to
 * helpers in src/gen/runtime.ts, which the module binds from bpfkit's `genRuntime`; only the
 * layout (offsets, sizes, member names) is written out.
 */
import type { Btf } from '../btf/btf.js';
import { bitfieldPlacement, isByteArrayElement, planMembers, type GroupPlan, type LayoutHooks } from '../btf/codec-layout.js';
import type { BtfEnum, BtfStruct, BtfType } from '../btf/types.js';
import { BtfError, InvalidArgumentError } from '../errors.js';
import { isIdentifier, jsString, NameRegistry, pascalCase, propertyKey } from './names.js';

// ---------------------------------------------------------------------------------------------
// Shapes: what a BTF type becomes in JavaScript, following codecFor's rules.

type Shape =
  | { readonly k: 'int'; readonly size: 1 | 2 | 4; readonly signed: boolean; readonly c: string }
  | { readonly k: 'int64'; readonly signed: boolean; readonly c: string }
  | { readonly k: 'int128'; readonly signed: boolean; readonly c: string }
  | { readonly k: 'bool'; readonly size: number; readonly c: string }
  | { readonly k: 'float'; readonly size: 4 | 8; readonly c: string }
  | { readonly k: 'bytes'; readonly n: number; readonly signed: boolean; readonly c: string }
  | { readonly k: 'enum'; readonly t: BtfEnum; readonly c: string; readonly nameHint: string }
  | { readonly k: 'array'; readonly n: number; readonly el: Shape; readonly c: string }
  | { readonly k: 'object'; readonly t: BtfStruct; readonly c: string; readonly nameHint: string };

/** One property of a decoded object. */
type Part =
  | { readonly k: 'field'; readonly name: string; readonly off: number; readonly shape: Shape }
  | {
    readonly k: 'bits'; readonly name: string; readonly bitOff: number; readonly bits: number;
    readonly repr: 'number' | 'bigint' | 'boolean'; readonly signed: boolean; readonly enumType: Shape | undefined;
    readonly c: string;
  }
  | { readonly k: 'group'; readonly union: boolean; readonly parts: readonly Part[]; readonly label: string };

/** A named struct or union: it gets an exported type and decode/encode functions. */
interface NamedObject {
  readonly tsName: string;
  readonly t: BtfStruct;
}

/**
 * The helpers generated code calls, in the order their bindings list them. They live in
 * src/gen/runtime.ts, which the package entry re-exports as `genRuntime`; a module binds the ones
 * it uses to these names at its top. `LE`, the target's byte order, is a constant of the module
 * (bound when it loads, by the host's byte order, in modules that carry objects for both).
 */
export const HELPER_ORDER = [
  'LE', 'show', 'fail', 'view', 'place', 'toInt', 'toBig', 'wInt', 'wBig', 'w128', 'r128', 'wBool', 'wFloat',
  'bytesAt', 'wBytes', 'list', 'arr', 'rec', 'one', 'rBits', 'rBitsBig', 'wBits',
] as const;
export type Helper = (typeof HELPER_ORDER)[number];

/** The helpers that depend on the byte order: bound from `genRuntime.littleEndian` or `.bigEndian`. */
export const BYTE_ORDER_HELPERS: ReadonlySet<Helper> = new Set<Helper>(['wInt', 'wBig', 'w128', 'r128', 'wBool', 'wFloat', 'rBits', 'rBitsBig', 'wBits']);

/** The name generated code imports the runtime under (reserved in every module). */
export const RUNTIME_NAMESPACE = 'genRuntime';

/**
 * Where a generated module imports `genRuntime` from, given where it imports bpfkit's main entry:
 * the package's `internal` subpath ('bpfkit' -> 'bpfkit/internal'), or for a path to the entry
 * file (`.../index.js`, as the tools' bindings use), the `internal.js` beside it. The runtime is
 * not part of the public entry, so the two imports differ.
 */
export function runtimeSpecifier(importFrom: string): string {
  const file = /^(.*\/)index\.(js|ts|mjs)$/.exec(importFrom);
  if (file) return `${file[1]}internal.${file[2]}`;
  if (/^(@[^/]+\/)?[^./@][^/]*$/.test(importFrom)) return `${importFrom}/internal`;
  throw new InvalidArgumentError(`cannot tell where ${JSON.stringify(importFrom)} keeps bpfkit/internal: give the package name or a path ending in /index.js`);
}

// ---------------------------------------------------------------------------------------------

/** `base + n`, folding a constant already at the end of `base` (`o + 100` + 1 is `o + 101`). */
function plus(base: string, n: number): string {
  if (n === 0) return base;
  const m = /^(.*) \+ (\d+)$/.exec(base);
  if (m && !/[*]\s*$/.test(m[1]!)) return `${m[1]} + ${Number(m[2]) + n}`;
  if (/^\d+$/.test(base)) return `${Number(base) + n}`;
  return `${base} + ${n}`;
}

function q(s: string): string {
  return jsString(s);
}

function pad(level: number): string {
  return '  '.repeat(level);
}

/** Member access on a checked record: bracketed, so index-signature settings do not matter. */
function access(r: string, name: string): string {
  if (name === '__proto__') return `(Object.hasOwn(${r}, '__proto__') ? ${r}['__proto__'] : undefined)`;
  return `${r}[${q(name)}]`;
}

/** A property in an object literal; `__proto__` must be computed to be an own property. */
function literalKey(name: string): string {
  if (name === '__proto__') return `['__proto__']`;
  return propertyKey(name);
}

export interface CodecEmitterOptions {
  /** The byte order of the object the codecs are for (ignored with `hostByteOrder`). */
  readonly littleEndian: boolean;
  /**
   * For modules that carry a bpfel and a bpfeb object and load the one of the host's byte order:
   * a boolean expression, evaluated once at module load, that `LE` is bound to (true for bpfel).
   * The byte-order helpers are then chosen by `LE` too, and bitfields are placed for either order
   * (`LE ? <shift in bpfel> : <shift in bpfeb>`), which takes the types to be declared alike in
   * both objects (src/gen/byte-order.ts checks that).
   */
  readonly hostByteOrder?: string;
  /** Names already taken in the module (the API's own declarations). */
  readonly registry: NameRegistry;
}

/**
 * Collects the types a module needs and writes their declarations. Ask for TS types with
 * `tsType(id)` and for exported codecs with `root(id)`; then `declarations()` and `helpers()`.
 */
export class CodecEmitter {
  private readonly btf: Btf;
  private readonly le: boolean;
  private readonly hostByteOrder: string | undefined;
  private readonly registry: NameRegistry;
  /** TS names of struct/union/enum ids (after typedefs). */
  private readonly names = new Map<number, string>();
  private readonly objects: NamedObject[] = [];
  private readonly enums: { tsName: string; t: BtfEnum }[] = [];
  /** Enums that are roots themselves, which (unlike enums only used inside structs) get decode/encode. */
  private readonly enumRoots = new Set<number>();
  private readonly aliases: string[] = [];
  private readonly used = new Set<Helper>();

  constructor(btf: Btf, options: CodecEmitterOptions) {
    this.btf = btf;
    this.le = options.littleEndian;
    this.hostByteOrder = options.hostByteOrder;
    this.registry = options.registry;
    // The helpers are module-level names too (a C `enum LE` must not become `const LE`). All of
    // them, used or not, so that what a type is called does not depend on what else is generated.
    for (const h of HELPER_ORDER) this.registry.reserve(h);
    this.registry.reserve(RUNTIME_NAMESPACE);
  }

  // ---- shapes ---------------------------------------------------------------------------------

  /** A C-like spelling for messages and comments, the outermost typedef name winning. */
  display(id: number): string {
    const t = this.btf.type(id);
    switch (t.kind) {
      case 'typedef': case 'int': case 'float': return t.name;
      case 'const': case 'volatile': case 'restrict': case 'type_tag': case 'var': return this.display(t.type);
      case 'array': {
        // C writes the outer dimension first: short[2][3] is 2 arrays of 3 shorts.
        let dims = '';
        let el: BtfType = t;
        while (el.kind === 'array') {
          dims += `[${el.nelems}]`;
          el = this.btf.type(el.type);
        }
        return `${this.display(el.id)}${dims}`;
      }
      case 'ptr': return `${this.display(t.type)} *`;
      case 'struct': case 'union': return `${t.kind} ${t.name || '(anon)'}`;
      case 'enum': case 'enum64': return `enum ${t.name || '(anon)'}`;
      default: return this.btf.typeName(id);
    }
  }

  /** Follows typedefs and qualifiers; returns the type and the first typedef name met. */
  private resolve(id: number): { t: BtfType; typedef: string } {
    let typedef = '';
    for (let n = 0; n < 256; n++) {
      const t = this.btf.type(id);
      switch (t.kind) {
        case 'typedef':
          if (typedef === '') typedef = t.name;
          id = t.type;
          continue;
        case 'const': case 'volatile': case 'restrict': case 'type_tag': case 'var':
          id = t.type;
          continue;
        default:
          return { t, typedef };
      }
    }
    throw new BtfError(`type id ${id}: typedef/qualifier chain too long (a cycle?)`);
  }

  private shape(id: number): Shape {
    const c = this.display(id);
    const { t, typedef } = this.resolve(id);
    switch (t.kind) {
      case 'int':
        if (t.bool) return { k: 'bool', size: t.size, c };
        if (t.size === 1 || t.size === 2 || t.size === 4) return { k: 'int', size: t.size, signed: t.signed, c };
        if (t.size === 8) return { k: 'int64', signed: t.signed, c };
        if (t.size === 16) return { k: 'int128', signed: t.signed, c };
        throw new BtfError(`${c}: integers of ${t.size} bytes are not supported`);
      case 'float':
        if (t.size === 4 || t.size === 8) return { k: 'float', size: t.size, c };
        return { k: 'bytes', n: t.size, signed: false, c };
      case 'ptr':
        return { k: 'int64', signed: false, c };
      case 'enum': case 'enum64':
        return { k: 'enum', t, c, nameHint: t.name || typedef };
      case 'array': {
        const el = this.resolve(t.type).t;
        if (isByteArrayElement(el)) return { k: 'bytes', n: t.nelems, signed: el.signed, c };
        return { k: 'array', n: t.nelems, el: this.shape(t.type), c };
      }
      case 'struct': case 'union':
        return { k: 'object', t, c, nameHint: t.name || typedef };
      default:
        throw new InvalidArgumentError(`cannot encode or decode ${c} (type id ${id}, kind ${t.kind}): it has no size`);
    }
  }

  /** The parts of a struct or union: the layout pass's plan (shared with codecFor), at absolute offsets. */
  private parts(t: BtfStruct, byteOff: number, label: string): Part {
    return this.fromPlan(planMembers<Shape>(t, label, this.hooks), byteOff);
  }

  private readonly hooks: LayoutHooks<Shape> = {
    resolve: (id) => this.resolve(id).t,
    display: (id) => this.display(id),
    field: (id) => ({ value: this.shape(id), size: this.btf.sizeof(id) }),
  };

  private fromPlan(g: GroupPlan<Shape>, base: number): Part {
    const at = base + g.offset;
    const parts = g.parts.map((p): Part => {
      switch (p.kind) {
        case 'group': return this.fromPlan(p, at);
        case 'field': return { k: 'field', name: p.name, off: at + p.offset, shape: p.value };
        case 'bitfield': return {
          k: 'bits', name: p.name, bitOff: at * 8 + p.bitOffset, bits: p.bits, repr: p.repr, signed: p.signed,
          enumType: p.enumType ? this.shape(p.type) : undefined, c: `${this.display(p.type)}:${p.bits}`,
        };
      }
    });
    return { k: 'group', union: g.union, parts, label: g.label };
  }

  // ---- names ----------------------------------------------------------------------------------

  /** The TS name of a named object or enum, registering its declaration on first use. */
  private nameOf(shape: Shape & { k: 'object' | 'enum' }, exported: boolean): string {
    const have = this.names.get(shape.t.id);
    if (have !== undefined) {
      if (exported && shape.k === 'enum') this.enumRoots.add(shape.t.id);
      return have;
    }
    const tsName = this.registry.take(pascalCase(shape.nameHint));
    this.names.set(shape.t.id, tsName);
    if (shape.k === 'enum') {
      this.enums.push({ tsName, t: shape.t });
      if (exported) this.enumRoots.add(shape.t.id);
    } else {
      this.objects.push({ tsName, t: shape.t });
      // Walk the members now so the types they need are named in a stable, depth-first order.
      this.typeOfGroup(this.parts(shape.t, 0, shape.c), 0);
    }
    return tsName;
  }

  private isNamed(shape: Shape): shape is Shape & { k: 'object' | 'enum' } {
    return (shape.k === 'object' || shape.k === 'enum') && shape.nameHint !== '';
  }

  /**
   * Declares a root type: one a map holds or `--type` asked for. Returns its TS name when it is a
   * struct, union or enum (which then get exported decode/encode functions), else undefined.
   * `alias` names it when the root was asked for by a typedef name that differs.
   */
  root(id: number, alias?: string): string | undefined {
    return this.atomically(() => this.declareRoot(id, alias));
  }

  /**
   * Runs `fn`, forgetting every type it named when it throws (a member of a size no codec
   * handles, say), so a type that cannot be generated leaves no half-declared trace behind.
   */
  private atomically<T>(fn: () => T): T {
    const objects = this.objects.length;
    const enums = this.enums.length;
    const aliases = this.aliases.length;
    const named = new Set(this.names.keys());
    const roots = new Set(this.enumRoots);
    try {
      return fn();
    } catch (e) {
      this.objects.splice(objects);
      this.enums.splice(enums);
      for (const a of this.aliases.splice(aliases)) this.registry.release(/export type (\S+) =/.exec(a)![1]!);
      for (const [id, name] of [...this.names]) {
        if (named.has(id)) continue;
        this.names.delete(id);
        this.registry.release(name);
      }
      for (const id of [...this.enumRoots]) if (!roots.has(id)) this.enumRoots.delete(id);
      throw e;
    }
  }

  private declareRoot(id: number, alias?: string): string | undefined {
    const shape = this.shape(id);
    if (shape.k !== 'object' && shape.k !== 'enum') return undefined;
    if (!this.isNamed(shape)) {
      const hint = alias ?? this.display(id);
      return this.nameOf({ ...shape, nameHint: hint }, true);
    }
    const name = this.nameOf(shape, true);
    if (alias !== undefined && pascalCase(alias) !== name && !this.registry.has(pascalCase(alias))) {
      const a = this.registry.take(pascalCase(alias));
      this.aliases.push(`/** typedef ${alias} */\nexport type ${a} = ${name};`);
      return a;
    }
    return name;
  }

  isDatasec(id: number): boolean {
    return this.btf.type(id).kind === 'datasec';
  }

  /** The value of a global data section's map: an object with a property per variable. */
  datasecType(id: number, indent = 0): string {
    const t = this.btf.type(id);
    if (t.kind !== 'datasec') throw new BtfError(`type id ${id} is a ${t.kind}, not a datasec`);
    const lines: string[] = [];
    for (const v of t.vars) {
      const vt = this.btf.type(v.type);
      if (vt.kind !== 'var') continue;
      lines.push(`${pad(indent + 1)}${literalKeyType(vt.name)}: ${this.tsType(vt.type, indent + 1)};`);
    }
    if (lines.length === 0) return 'Record<string, never>';
    return `{\n${lines.join('\n')}\n${pad(indent)}}`;
  }

  /** The TS type of BTF type `id` (its decoded shape). */
  tsType(id: number, indent = 0): string {
    return this.atomically(() => this.typeOf(this.shape(id), indent));
  }

  private typeOf(s: Shape, indent: number): string {
    switch (s.k) {
      case 'int': case 'float': return 'number';
      case 'int64': case 'int128': return 'bigint';
      case 'bool': return 'boolean';
      case 'bytes': return 'Uint8Array';
      case 'enum':
        if (this.isNamed(s)) return this.nameOf(s, false);
        return this.enumLiterals(s.t);
      case 'array': {
        const el = this.typeOf(s.el, indent);
        return /[|&]/.test(el) && !el.startsWith('{') ? `(${el})[]` : `${el}[]`;
      }
      case 'object':
        if (this.isNamed(s)) return this.nameOf(s, false);
        return this.typeOfGroup(this.parts(s.t, 0, s.c), indent);
    }
  }

  private enumRepr(t: BtfEnum): 'number' | 'bigint' {
    return t.kind === 'enum64' || t.size >= 8 ? 'bigint' : 'number';
  }

  private enumLiteral(t: BtfEnum, value: bigint): string {
    return this.enumRepr(t) === 'bigint' ? `${value}n` : `${Number(value)}`;
  }

  private enumLiterals(t: BtfEnum): string {
    if (t.values.length === 0) return this.enumRepr(t);
    const seen = new Set<string>();
    for (const v of t.values) seen.add(this.enumLiteral(t, v.value));
    return [...seen].join(' | ');
  }

  /** An inline object type for a group's properties. */
  private typeOfGroup(g: Part, indent: number): string {
    const lines: string[] = [];
    this.members(g, false, indent + 1, lines);
    if (lines.length === 0) return 'Record<string, never>';
    return `{\n${lines.join('\n')}\n${pad(indent)}}`;
  }

  private members(g: Part, optional: boolean, indent: number, out: string[]): void {
    if (g.k !== 'group') return;
    const opt = optional || g.union;
    for (const p of g.parts) {
      if (p.k === 'group') {
        this.members(p, opt, indent, out);
        continue;
      }
      const type = p.k === 'field' ? this.typeOf(p.shape, indent) : this.bitsType(p);
      const comment = p.k === 'field' ? `${p.shape.c}, offset ${p.off}` : `${p.c}, bit offset ${p.bitOff}`;
      out.push(`${pad(indent)}/** ${comment} */`);
      out.push(`${pad(indent)}${literalKeyType(p.name)}${opt ? '?' : ''}: ${type};`);
    }
  }

  private bitsType(p: Part & { k: 'bits' }): string {
    if (p.enumType) return this.typeOf(p.enumType, 0);
    return p.repr;
  }

  // ---- readers ---------------------------------------------------------------------------------

  /** Notes that the generated code names helper `h`, so that the module binds it. */
  private use(h: Helper): void {
    this.used.add(h);
  }

  /** An expression reading shape `s` at offset expression `off` of DataView `v`. */
  private readExpr(s: Shape, off: string, indent: number, depth: number): string {
    switch (s.k) {
      case 'int': {
        if (s.size === 1) return `v.get${s.signed ? 'Int8' : 'Uint8'}(${off})`;
        this.use('LE');
        return `v.get${s.signed ? 'Int' : 'Uint'}${s.size * 8}(${off}, LE)`;
      }
      case 'int64':
        this.use('LE');
        return `v.get${s.signed ? 'BigInt64' : 'BigUint64'}(${off}, LE)`;
      case 'int128':
        this.use('r128');
        return `r128(v, ${off}, ${s.signed})`;
      case 'bool':
        if (s.size === 1) return `v.getUint8(${off}) !== 0`;
        if (s.size === 2 || s.size === 4) {
          this.use('LE');
          return `v.getUint${s.size * 8}(${off}, LE) !== 0`;
        }
        if (s.size === 8) {
          this.use('LE');
          return `v.getBigUint64(${off}, LE) !== 0n`;
        }
        this.use('r128');
        return `r128(v, ${off}, false) !== 0n`;
      case 'float':
        this.use('LE');
        return `v.getFloat${s.size * 8}(${off}, LE)`;
      case 'bytes':
        this.use('bytesAt');
        return `bytesAt(v, ${off}, ${s.n})`;
      case 'enum': {
        const t = s.t;
        const type = this.typeOf(s, indent);
        const raw = this.intRead(t.size, t.signed, off);
        const value = this.enumRepr(t) === 'bigint' && t.size < 8 ? `BigInt(${raw})` : raw;
        return type === 'number' || type === 'bigint' ? value : `${value} as ${type}`;
      }
      case 'array': {
        this.use('list');
        const stride = this.sizeOfShape(s.el);
        const i = `i${depth}`;
        const at = stride === 0 ? off : `${off} + ${i} * ${stride}`;
        const el = this.readExpr(s.el, at, indent, depth + 1);
        // An arrow function returning an object literal needs it parenthesised.
        return `list(${s.n}, (${i}) => ${el.startsWith('{') ? `(${el})` : el})`;
      }
      case 'object':
        if (this.isNamed(s)) return `read${this.nameOf(s, false)}(v, ${off})`;
        return this.readGroup(this.parts(s.t, 0, s.c), off, indent, depth);
    }
  }

  private intRead(size: number, signed: boolean, off: string): string {
    if (size === 1) return `v.get${signed ? 'Int8' : 'Uint8'}(${off})`;
    this.use('LE');
    if (size === 8) return `v.get${signed ? 'BigInt64' : 'BigUint64'}(${off}, LE)`;
    return `v.get${signed ? 'Int' : 'Uint'}${size * 8}(${off}, LE)`;
  }

  private sizeOfShape(s: Shape): number {
    switch (s.k) {
      case 'int': case 'float': return s.size;
      case 'int64': return 8;
      case 'int128': return 16;
      case 'bool': return s.size;
      case 'bytes': return s.n;
      case 'enum': return s.t.size;
      case 'array': return s.n * this.sizeOfShape(s.el);
      case 'object': return s.t.size;
    }
  }

  /** An object literal reading a group at `off` (member offsets are relative to the group's object). */
  private readGroup(g: Part, off: string, indent: number, depth: number): string {
    const props: string[] = [];
    this.readProps(g, off, indent + 1, depth, props);
    if (props.length === 0) return '{}';
    return `{\n${props.join('\n')}\n${pad(indent)}}`;
  }

  private readProps(g: Part, off: string, indent: number, depth: number, out: string[]): void {
    if (g.k !== 'group') return;
    for (const p of g.parts) {
      if (p.k === 'group') {
        this.readProps(p, off, indent, depth, out);
      } else if (p.k === 'field') {
        out.push(`${pad(indent)}${literalKey(p.name)}: ${this.readExpr(p.shape, plus(off, p.off), indent, depth)},`);
      } else {
        out.push(`${pad(indent)}${literalKey(p.name)}: ${this.readBits(p, off)},`);
      }
    }
  }

  /**
   * Where a bitfield's bits are: `span` bytes from byte `start`, `shift` bits up from the least
   * significant bit of the span read in the target's byte order. BTF counts a bitfield's offset
   * from the first bit in memory, which is the lowest bit on little-endian targets and the highest
   * on big-endian ones; when the module binds the byte order at load time, `shift` is a
   * conditional expression on `LE` (a number still when both orders agree).
   */
  private bitsLayout(p: Part & { k: 'bits' }): { start: number; span: number; shift: number | string } {
    const { start, span, shiftLE: inner, shiftBE: bigEndianShift } = bitfieldPlacement(p.bitOff, p.bits);
    if (this.hostByteOrder === undefined) return { start, span, shift: this.le ? inner : bigEndianShift };
    if (inner === bigEndianShift) return { start, span, shift: inner };
    this.use('LE');
    return { start, span, shift: `LE ? ${inner} : ${bigEndianShift}` };
  }

  private readBits(p: Part & { k: 'bits' }, off: string): string {
    const { start, span, shift } = this.bitsLayout(p);
    let expr: string;
    if (span <= 6) {
      this.use('rBits');
      const raw = `rBits(v, ${plus(off, start)}, ${span}, ${shift}, ${p.bits}, ${p.signed})`;
      expr = p.repr === 'boolean' ? `${raw} !== 0` : p.repr === 'bigint' ? `BigInt(${raw})` : raw;
    } else {
      this.use('rBitsBig');
      const raw = `rBitsBig(v, ${plus(off, start)}, ${span}, ${shift}, ${p.bits}, ${p.signed})`;
      expr = p.repr === 'boolean' ? `${raw} !== 0n` : p.repr === 'number' ? `Number(${raw})` : raw;
    }
    if (p.enumType) {
      const type = this.typeOf(p.enumType, 0);
      if (type !== 'number' && type !== 'bigint') expr = `${expr} as ${type}`;
    }
    return expr;
  }

  // ---- writers ---------------------------------------------------------------------------------

  /**
   * Statements writing `val` (an `unknown` expression) as shape `s` at `off`. `p` is the path of
   * the enclosing object (an expression), `m` the member's segment (a string or index expression).
   */
  private writeStmts(s: Shape, off: string, val: string, p: string, m: string, indent: number, depth: number, out: string[]): void {
    const ind = pad(indent);
    switch (s.k) {
      case 'int':
        this.use('wInt');
        out.push(`${ind}wInt(v, ${off}, ${val}, ${p}, ${m}, ${s.size}, ${s.signed}, ${q(s.c)});`);
        return;
      case 'int64':
        this.use('wBig');
        out.push(`${ind}wBig(v, ${off}, ${val}, ${p}, ${m}, ${s.signed}, ${q(s.c)});`);
        return;
      case 'int128':
        this.use('w128');
        out.push(`${ind}w128(v, ${off}, ${val}, ${p}, ${m}, ${s.signed}, ${q(s.c)});`);
        return;
      case 'bool':
        this.use('wBool');
        out.push(`${ind}wBool(v, ${off}, ${val}, ${p}, ${m}, ${s.size});`);
        return;
      case 'float':
        this.use('wFloat');
        out.push(`${ind}wFloat(v, ${off}, ${val}, ${p}, ${m}, ${s.size}, ${q(s.c)});`);
        return;
      case 'bytes':
        this.use('wBytes');
        out.push(`${ind}wBytes(v, ${off}, ${val}, ${p}, ${m}, ${s.n}, ${s.signed}, ${q(s.c)});`);
        return;
      case 'enum': {
        const t = s.t;
        if (t.size === 8 || this.enumRepr(t) === 'bigint') {
          if (t.size === 8) {
            this.use('wBig');
            out.push(`${ind}wBig(v, ${off}, ${val}, ${p}, ${m}, ${t.signed}, ${q(s.c)});`);
          } else {
            this.use('toBig');
            this.use('wInt');
            out.push(`${ind}if (${val} !== undefined) wInt(v, ${off}, Number(toBig(${val}, ${p}, ${m}, ${t.size * 8}, ${t.signed}, ${q(s.c)})), ${p}, ${m}, ${t.size}, ${t.signed}, ${q(s.c)});`);
          }
        } else {
          this.use('wInt');
          out.push(`${ind}wInt(v, ${off}, ${val}, ${p}, ${m}, ${t.size}, ${t.signed}, ${q(s.c)});`);
        }
        return;
      }
      case 'array': {
        this.use('arr');
        const stride = this.sizeOfShape(s.el);
        const i = `i${depth}`;
        const e = `e${depth}`;
        const qq = `q${depth}`;
        const at = stride === 0 ? off : `${off} + ${i} * ${stride}`;
        const body: string[] = [];
        this.writeStmts(s.el, at, e, qq, i, indent + 1, depth + 1, body);
        out.push(`${ind}arr(${val}, ${p}, ${m}, ${s.n}, ${q(s.c)}, (${e}, ${i}, ${qq}) => {`);
        out.push(...body);
        out.push(`${ind}});`);
        return;
      }
      case 'object': {
        if (this.isNamed(s)) {
          const name = this.nameOf(s, false);
          out.push(`${ind}write${name}(v, ${off}, ${val}, ${p}, ${m});`);
          return;
        }
        const g = this.parts(s.t, 0, s.c);
        this.use('rec');
        const r = `r${depth}`;
        const pp = `p${depth}`;
        out.push(`${ind}{`);
        out.push(`${ind}  const ${r} = rec(${val}, ${p}, ${m}, new Set(${q2(this.groupNames(g))}), ${q(s.c)});`);
        out.push(`${ind}  if (${r} !== undefined) {`);
        out.push(`${ind}    const ${pp} = ${segment(p, m)};`);
        this.writeGroup(g, off, r, pp, indent + 2, depth + 1, out);
        out.push(`${ind}  }`);
        out.push(`${ind}}`);
        return;
      }
    }
  }

  private groupNames(g: Part): string[] {
    if (g.k !== 'group') return [g.name];
    return g.parts.flatMap((p) => this.groupNames(p));
  }

  private writeGroup(g: Part, off: string, r: string, p: string, indent: number, depth: number, out: string[]): void {
    if (g.k !== 'group') return;
    const alternatives = g.parts.filter((x) => this.groupNames(x).length > 0);
    if (g.union && alternatives.length > 1) {
      // Each alternative writes through its own `v`, so `one` can try them on copies first.
      this.use('one');
      out.push(`${pad(indent)}one(v, ${r}, ${p}, ${q(g.label)}, [`);
      for (const part of alternatives) {
        const body: string[] = [];
        this.writePart(part, off, r, p, indent + 2, depth, body);
        out.push(`${pad(indent + 1)}[${q2(this.groupNames(part))}, (v) => {`, ...body, `${pad(indent + 1)}}],`);
      }
      out.push(`${pad(indent)}]);`);
      return;
    }
    for (const part of g.parts) this.writePart(part, off, r, p, indent, depth, out);
  }

  private writePart(part: Part, off: string, r: string, p: string, indent: number, depth: number, out: string[]): void {
    if (part.k === 'group') {
      this.writeGroup(part, off, r, p, indent, depth, out);
    } else if (part.k === 'field') {
      this.writeStmts(part.shape, plus(off, part.off), access(r, part.name), p, q(`.${part.name}`), indent, depth, out);
    } else {
      const { start, span, shift } = this.bitsLayout(part);
      this.use('wBits');
      out.push(`${pad(indent)}wBits(v, ${plus(off, start)}, ${access(r, part.name)}, ${p}, ${q(`.${part.name}`)}, ${span}, ${shift}, ${part.bits}, ${part.signed}, ${q(part.c)});`);
    }
  }

  // ---- output ------------------------------------------------------------------------------------

  /** Every declaration, in the order the types were first met. */
  declarations(): string {
    const out: string[] = [];
    // Enums and objects may have been named while rendering others, so loop until stable.
    const doneEnums = new Set<number>();
    const doneObjects = new Set<number>();
    const chunks: string[] = [];
    for (;;) {
      let progressed = false;
      for (const e of this.enums) {
        if (doneEnums.has(e.t.id)) continue;
        doneEnums.add(e.t.id);
        progressed = true;
        chunks.push(this.renderEnum(e.tsName, e.t));
      }
      for (const o of this.objects) {
        if (doneObjects.has(o.t.id)) continue;
        doneObjects.add(o.t.id);
        progressed = true;
        chunks.push(this.renderObject(o));
      }
      if (!progressed) break;
    }
    out.push(...chunks, ...this.aliases);
    return out.join('\n\n');
  }

  /**
   * The module-level bindings of the helpers the declarations use, in a fixed order: `LE` and
   * destructurings of `genRuntime` (imported from bpfkit). Empty when they use none.
   */
  helpers(): string {
    const used = HELPER_ORDER.filter((h) => this.used.has(h));
    const shared = used.filter((h) => h !== 'LE' && !BYTE_ORDER_HELPERS.has(h));
    const ordered = used.filter((h) => BYTE_ORDER_HELPERS.has(h));
    const lines: string[] = [];
    const host = this.hostByteOrder;
    if (host !== undefined && (this.used.has('LE') || ordered.length > 0)) {
      lines.push(`/** Byte order of the object loaded, which is the host's: true for bpfel, false for bpfeb. */`, `const LE = ${host};`);
    } else if (this.used.has('LE')) {
      lines.push(`/** Byte order of the object's BPF target (from its ELF header and BTF). */`, `const LE = ${this.le};`);
    }
    if (shared.length + ordered.length > 0) {
      lines.push(`/** Codec helpers (range checks, byte arrays, unions, bitfields): bpfkit's src/gen/runtime.ts. */`);
    }
    if (shared.length > 0) lines.push(`const { ${shared.join(', ')} } = ${RUNTIME_NAMESPACE};`);
    if (ordered.length > 0) {
      const from = host !== undefined
        ? `LE ? ${RUNTIME_NAMESPACE}.littleEndian : ${RUNTIME_NAMESPACE}.bigEndian`
        : `${RUNTIME_NAMESPACE}.${this.le ? 'littleEndian' : 'bigEndian'}`;
      lines.push(`const { ${ordered.join(', ')} } = ${from};`);
    }
    return lines.join('\n');
  }

  /** Whether the helpers need `genRuntime` imported from bpfkit. */
  get usesRuntime(): boolean {
    return [...this.used].some((h) => h !== 'LE');
  }

  private renderEnum(tsName: string, t: BtfEnum): string {
    const lines: string[] = [];
    const cname = t.name ? `enum ${t.name}` : 'enum (anon)';
    lines.push(`/** ${cname} (${t.size} bytes${t.signed ? ', signed' : ''}) */`);
    if (t.values.length === 0) {
      lines.push(`export type ${tsName} = ${this.enumRepr(t)};`);
    } else {
      lines.push(`export const ${tsName} = {`);
      for (const v of t.values) lines.push(`  ${propertyKey(v.name)}: ${this.enumLiteral(t, v.value)},`);
      lines.push('} as const;');
      lines.push(`export type ${tsName} = (typeof ${tsName})[keyof typeof ${tsName}];`);
    }
    if (this.enumRoots.has(t.id)) {
      const shape: Shape = { k: 'enum', t, c: cname, nameHint: tsName };
      lines.push('');
      lines.push(`export function decode${tsName}(bytes: Uint8Array, offset = 0): ${tsName} {`);
      this.use('view');
      lines.push(`  const v = view(bytes, offset, ${t.size});`);
      lines.push(`  return ${this.readExpr(shape, 'offset', 1, 0)};`);
      lines.push('}');
      lines.push('');
      lines.push(`export function encode${tsName}(value: ${tsName}, out?: Uint8Array, offset = 0): Uint8Array {`);
      this.use('place');
      lines.push(`  const b = new Uint8Array(${t.size});`);
      lines.push('  const v = new DataView(b.buffer);');
      const body: string[] = [];
      this.writeStmts(shape, '0', 'value', "'value'", "''", 1, 0, body);
      lines.push(...body);
      lines.push('  return place(b, out, offset);');
      lines.push('}');
    }
    return lines.join('\n');
  }

  private renderObject(o: NamedObject): string {
    const t = o.t;
    const cname = `${t.kind} ${t.name || '(anon)'}`;
    const g = this.parts(t, 0, cname);
    const name = o.tsName;
    const lines: string[] = [];
    const members: string[] = [];
    this.members(g, false, 1, members);
    lines.push(`/** ${cname}: ${t.size} bytes */`);
    if (members.length === 0) lines.push(`export type ${name} = Record<string, never>;`);
    else lines.push(`export interface ${name} {`, ...members, '}');
    lines.push('');
    this.use('view');
    this.use('place');
    lines.push(`/** Decodes a ${name} (${t.size} bytes) from \`bytes\` at \`offset\`. */`);
    lines.push(`export function decode${name}(bytes: Uint8Array, offset = 0): ${name} {`);
    lines.push(`  return read${name}(view(bytes, offset, ${t.size}), offset);`);
    lines.push('}');
    lines.push('');
    lines.push(`/** Encodes a ${name} into \`out\` at \`offset\` (returning \`out\`), or into a new ${t.size}-byte array. Padding and absent members are zero. */`);
    lines.push(`export function encode${name}(value: ${name}, out?: Uint8Array, offset = 0): Uint8Array {`);
    lines.push(`  const b = new Uint8Array(${t.size});`);
    lines.push(`  write${name}(new DataView(b.buffer), 0, value, 'value', '');`);
    lines.push('  return place(b, out, offset);');
    lines.push('}');
    lines.push('');
    lines.push(`function read${name}(v: DataView, o: number): ${name} {`);
    lines.push(`  return ${this.readGroup(g, 'o', 1, 0)};`);
    lines.push('}');
    lines.push('');
    this.use('rec');
    const names = this.groupNames(g);
    lines.push(`const membersOf${name}: ReadonlySet<string> = new Set(${q2(names)});`);
    lines.push('');
    lines.push(`function write${name}(v: DataView, o: number, x: unknown, p: string, m: string | number): void {`);
    lines.push(`  const r = rec(x, p, m, membersOf${name}, ${q(cname)});`);
    lines.push('  if (r === undefined) return;');
    const body: string[] = [];
    this.writeGroup(g, 'o', 'r', 'q', 1, 0, body);
    if (body.length > 0) {
      lines.push(`  const q = \`\${p}\${typeof m === 'number' ? \`[\${m}]\` : m}\`;`);
      lines.push(...body);
    }
    lines.push('}');
    return lines.join('\n');
  }
}

/** The path expression of member `m` (a quoted segment or an index variable) under path `p`. */
function segment(p: string, m: string): string {
  if (m.startsWith("'") || m.startsWith('"')) return `${p} + ${m}`;
  return `\`\${${p}}[\${${m}}]\``;
}

function q2(names: readonly string[]): string {
  return `[${names.map((n) => jsString(n)).join(', ')}]`;
}

function literalKeyType(name: string): string {
  return isIdentifier(name) ? name : jsString(name);
}

/**
 * A standalone module declaring the given BTF types with their decode/encode functions, and
 * nothing else: for tests, and for tools that want codecs without a whole object's bindings.
 * Returns the module text and the TS name of each root (undefined for roots without a name).
 */
export function codecModule(btf: Btf, roots: readonly number[], options: { littleEndian?: boolean; hostByteOrder?: string; importFrom?: string } = {}): { text: string; names: (string | undefined)[] } {
  const registry = new NameRegistry(['InvalidArgumentError']);
  const emitter = new CodecEmitter(btf, {
    littleEndian: options.littleEndian ?? btf.littleEndian, registry,
    ...(options.hostByteOrder !== undefined ? { hostByteOrder: options.hostByteOrder } : {}),
  });
  const names = roots.map((id) => emitter.root(id));
  const decls = emitter.declarations();
  const helpers = emitter.helpers();
  const head = [
    ...(emitter.usesRuntime ? [`import { ${RUNTIME_NAMESPACE} } from ${jsString(runtimeSpecifier(options.importFrom ?? 'bpfkit'))};\n`] : []),
    ...(helpers ? [`${helpers}\n`] : []),
  ];
  return { text: `${[...head, decls].join('\n')}\n`, names };
}
