/**
 * BTF as C: the `vmlinux.h` a CO-RE program includes. Every named struct, union, enum and typedef
 * is written once, in an order C accepts: whatever a type holds by value is defined before it,
 * what it only points at is forward-declared (`struct foo;`), and anonymous structs, unions and
 * enums are written inline where they are used. Layout is checked member by member against the
 * offsets BTF records: gaps become unnamed bitfields (`long: 64;`), and a struct whose members
 * sit where natural alignment would not put them gets `__attribute__((packed))`, so that the C
 * compiler lays every type out exactly as the kernel did. Names that C would see twice (two
 * different `struct foo`s, an enumerator defined by two enums) get a `___2` suffix, as libbpf's
 * writer does; CO-RE ignores everything from `___` on when matching names.
 */
import { BtfError } from '../errors.js';
import type { Btf } from './btf.js';
import type { BtfEnum, BtfMember, BtfStruct, BtfType } from './types.js';

/** Options of {@link dumpC}: which types to print and how (as `bpftool btf dump format c` does). */
export interface DumpCOptions {
  /** Include guard macro; default `__VMLINUX_H__`. */
  readonly guard?: string;
  /** Wrap the types in `#pragma clang attribute push(preserve_access_index)` (default true). */
  readonly preserveAccessIndex?: boolean;
  /** A comment for the top of the file (without comment markers). */
  readonly comment?: string;
}

/** Size of a pointer on the BPF target (and `long`). */
const PTR_SIZE = 8;

const enum State { None = 0, Busy = 1, Done = 2 }

/**
 * Deepest recursion the writer allows. Types held by value nest at most BTF_MAX_DEPTH levels (the
 * parser checks), but anonymous structs reached through pointers are written inline, and a chain
 * of them has no such bound in BTF; C written that deep would not be read by a compiler anyway.
 */
const MAX_WRITE_DEPTH = 2000;

interface Layout {
  readonly align: number;
  readonly packed: boolean;
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Writes BTF as a C header. */
export function dumpC(btf: Btf, options: DumpCOptions = {}): string {
  return new CWriter(btf).write(options);
}

class CWriter {
  private readonly btf: Btf;
  private readonly types: readonly BtfType[];
  /** C names of struct/union/enum tags and typedefs, after de-duplication. */
  private readonly names = new Map<number, string>();
  private readonly enumerators = new Map<number, string[]>();
  private readonly state: Uint8Array;
  private readonly declared = new Set<number>();
  private readonly anonEnumsDone = new Set<number>();
  private readonly layouts = new Map<number, Layout>();
  private readonly busyAnon = new Set<number>();
  private readonly out: string[] = [];
  /** Current recursion depth of need/decl. */
  private depth = 0;

  constructor(btf: Btf) {
    this.btf = btf;
    this.types = btf.types;
    this.state = new Uint8Array(btf.types.length);
    this.assignNames();
  }

  // ---- names ----------------------------------------------------------------------------------

  private assignNames(): void {
    // Tags (struct, union and enum share one namespace in C) and ordinary identifiers (typedefs
    // and enumerators share another). The first type to claim a name keeps it.
    const tags = new Map<string, number>();
    const idents = new Map<string, number>();
    const take = (space: Map<string, number>, name: string): string => {
      const n = space.get(name);
      if (n === undefined) {
        space.set(name, 1);
        return name;
      }
      let k = n + 1;
      while (space.has(`${name}___${k}`)) k++;
      space.set(name, k);
      space.set(`${name}___${k}`, 1);
      return `${name}___${k}`;
    };
    const complete = new Map<string, number>();
    for (const t of this.types) {
      if ((t.kind === 'struct' || t.kind === 'union') && t.name && !complete.has(`${t.kind} ${t.name}`)) {
        complete.set(`${t.kind} ${t.name}`, t.id);
      }
      if ((t.kind === 'enum' || t.kind === 'enum64') && t.name && t.values.length > 0 && !complete.has(`enum ${t.name}`)) {
        complete.set(`enum ${t.name}`, t.id);
      }
    }
    for (const t of this.types) {
      switch (t.kind) {
        case 'struct': case 'union':
          if (t.name) this.names.set(t.id, take(tags, t.name));
          break;
        case 'enum': case 'enum64':
          if (t.name && t.values.length > 0) this.names.set(t.id, take(tags, t.name));
          break;
        case 'typedef':
          this.names.set(t.id, take(idents, t.name));
          break;
        default:
          break;
      }
    }
    // Forward declarations (and value-less enums) name the complete type when there is one.
    for (const t of this.types) {
      if (t.kind === 'fwd') {
        const full = complete.get(`${t.fwdKind} ${t.name}`);
        this.names.set(t.id, full !== undefined ? this.names.get(full)! : take(tags, t.name));
      } else if ((t.kind === 'enum' || t.kind === 'enum64') && t.name && t.values.length === 0) {
        const full = complete.get(`enum ${t.name}`);
        this.names.set(t.id, full !== undefined ? this.names.get(full)! : take(tags, t.name));
      }
    }
    for (const t of this.types) {
      if (t.kind !== 'enum' && t.kind !== 'enum64') continue;
      this.enumerators.set(t.id, t.values.map((v) => take(idents, v.name)));
    }
  }

  private nameOf(id: number): string {
    return this.names.get(id) ?? `__anon_${id}`;
  }

  // ---- ordering -------------------------------------------------------------------------------

  /**
   * Makes type `id` usable at the current point of the output: `strong` when it is used by value
   * (it must be complete), weak when only pointed at (a forward declaration is enough).
   */
  private need(id: number, strong: boolean): void {
    this.enter(id);
    try {
      this.needType(id, strong);
    } finally {
      this.depth--;
    }
  }

  private enter(id: number): void {
    if (++this.depth > MAX_WRITE_DEPTH) {
      throw new BtfError(`BTF type ${id}: types nest more than ${MAX_WRITE_DEPTH} levels deep (anonymous types through pointers); cannot write them as C`);
    }
  }

  private needType(id: number, strong: boolean): void {
    const t = this.types[id];
    if (t === undefined) return;
    switch (t.kind) {
      case 'void': case 'int': case 'float': case 'func': case 'var': case 'datasec': case 'decl_tag':
        return;
      case 'ptr':
        this.need(t.type, false);
        return;
      case 'array':
        this.need(t.type, true);
        return;
      case 'const': case 'volatile': case 'restrict': case 'type_tag':
        this.need(t.type, strong);
        return;
      case 'func_proto':
        this.need(t.returnType, false);
        for (const p of t.params) this.need(p.type, false);
        return;
      case 'fwd':
        this.forward(id);
        return;
      case 'enum': case 'enum64':
        if (t.name) this.defineEnum(t);
        return;
      case 'typedef':
        if (isBuiltinName(t.name)) {
          this.need(t.type, strong);
          return;
        }
        this.defineTypedef(id);
        if (strong) this.need(t.type, true);
        return;
      case 'struct': case 'union':
        if (!t.name) {
          // Written inline: what it holds by value must exist first.
          if (this.busyAnon.has(id)) return;
          this.busyAnon.add(id);
          for (const m of t.members) this.need(m.type, true);
          this.busyAnon.delete(id);
          return;
        }
        if (strong) this.defineStruct(t);
        else this.forward(id);
        return;
    }
  }

  private forward(id: number): void {
    const t = this.types[id]!;
    if (this.declared.has(id) || this.state[id] === State.Done) return;
    if (t.kind === 'fwd') {
      const full = this.btf.byName(t.name, t.fwdKind).find((x) => this.names.get(x.id) === this.names.get(id));
      if (full !== undefined && (this.state[full.id] === State.Done || this.declared.has(full.id))) return;
      this.out.push(`${t.fwdKind} ${this.nameOf(id)};\n`);
      this.declared.add(id);
      if (full !== undefined) this.declared.add(full.id);
      return;
    }
    if (t.kind !== 'struct' && t.kind !== 'union') return;
    this.out.push(`${t.kind} ${this.nameOf(id)};\n`);
    this.declared.add(id);
  }

  private defineTypedef(id: number): void {
    if (this.state[id] !== State.None) return;
    const t = this.types[id]!;
    if (t.kind !== 'typedef') return;
    this.state[id] = State.Busy;
    this.need(t.type, false);
    this.out.push(`typedef ${this.decl(t.type, this.nameOf(id), 0)};\n\n`);
    this.state[id] = State.Done;
  }

  private defineEnum(t: BtfEnum): void {
    if (this.state[t.id] !== State.None) return;
    this.state[t.id] = State.Done;
    if (t.values.length === 0) {
      this.out.push(`enum ${this.nameOf(t.id)};\n\n`);
      return;
    }
    this.out.push(`enum ${this.nameOf(t.id)} ${this.enumBody(t, 0)};\n\n`);
  }

  private defineStruct(t: BtfStruct): void {
    if (this.state[t.id] !== State.None) return;
    this.state[t.id] = State.Busy;
    for (const m of t.members) this.need(m.type, true);
    this.out.push(`${t.kind} ${this.nameOf(t.id)} ${this.structBody(t, 0)};\n\n`);
    this.state[t.id] = State.Done;
  }

  // ---- declarators ------------------------------------------------------------------------------

  /** `T inner` in C declarator syntax, e.g. decl(int*[4], "x") is `int *x[4]`. */
  private decl(id: number, inner: string, indent: number): string {
    this.enter(id);
    try {
      return this.declType(id, inner, indent);
    } finally {
      this.depth--;
    }
  }

  private declType(id: number, inner: string, indent: number): string {
    const t = this.types[id];
    if (t === undefined) return join('void', inner);
    switch (t.kind) {
      case 'void': return join('void', inner);
      case 'int': case 'float': return join(t.name, inner);
      case 'typedef':
        // The compiler's own types (gcc's __builtin_va_list in vmlinux) cannot be redefined, and
        // clang's differ from gcc's: spell out what the kernel's was, so layouts stay right.
        if (isBuiltinName(t.name)) return this.decl(t.type, inner, indent);
        return join(this.nameOf(id), inner);
      case 'fwd': return join(`${t.fwdKind} ${this.nameOf(id)}`, inner);
      case 'struct': case 'union':
        if (t.name) return join(`${t.kind} ${this.nameOf(id)}`, inner);
        return join(`${t.kind} ${this.structBody(t, indent)}`, inner);
      case 'enum': case 'enum64':
        return join(this.enumSpelling(t, indent), inner);
      case 'ptr':
        return this.decl(t.type, `*${inner}`, indent);
      case 'const': case 'volatile': case 'restrict': {
        const target = this.types[t.type];
        if (target?.kind === 'ptr') return this.decl(t.type, inner ? `${t.kind} ${inner}` : t.kind, indent);
        // C qualifies an array through its elements: skip a qualifier the elements already carry.
        if (target?.kind === 'array' && this.elementQualified(target.type, t.kind)) return this.decl(t.type, inner, indent);
        return `${t.kind} ${this.decl(t.type, inner, indent)}`;
      }
      case 'type_tag':
        return this.decl(t.type, inner, indent);
      case 'array':
        return this.decl(t.type, `${wrap(inner)}[${t.nelems}]`, indent);
      case 'func_proto': {
        const params = t.params.map((p) => (p.type === 0 ? '...' : this.decl(p.type, '', indent)));
        return this.decl(t.returnType, `${wrap(inner)}(${params.length ? params.join(', ') : 'void'})`, indent);
      }
      case 'func': case 'var': case 'datasec': case 'decl_tag':
        return join('void', inner);
    }
  }

  /** Whether an array's element type (under any further dimensions) is qualified with `kind`. */
  private elementQualified(id: number, kind: string): boolean {
    for (let n = 0; n < 256; n++) {
      const t = this.types[id];
      if (t === undefined) return false;
      if (t.kind === kind) return true;
      if (t.kind === 'array' || t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict' || t.kind === 'type_tag') {
        id = t.type;
        continue;
      }
      return false;
    }
    return false;
  }

  /**
   * An enum as used in a declaration: `enum name`, or an anonymous enum's body the first time it
   * is written. Where C would lay the enum out at another size than BTF says (or a second copy
   * of an anonymous enum would redefine its enumerators), an integer of the right size stands in.
   */
  private enumSpelling(t: BtfEnum, indent: number): string {
    if (this.enumCSize(t) !== t.size) return intOfSize(t.size, t.signed);
    if (t.name) return `enum ${this.nameOf(t.id)}`;
    if (this.anonEnumsDone.has(t.id) || t.values.length === 0) return intOfSize(t.size, t.signed);
    this.anonEnumsDone.add(t.id);
    return `enum ${this.enumBody(t, indent)}`;
  }

  /** The size clang gives this enum as we write it (packed when BTF says it is narrower than int). */
  private enumCSize(t: BtfEnum): number {
    if (t.values.length === 0) return 4;
    let min = 0n;
    let max = 0n;
    for (const v of t.values) {
      if (v.value < min) min = v.value;
      if (v.value > max) max = v.value;
    }
    if (t.size < 4) {
      for (const size of [1, 2, 4]) {
        const bits = BigInt(size * 8);
        const fits = min < 0n ? min >= -(1n << (bits - 1n)) && max < 1n << (bits - 1n) : max < 1n << bits;
        if (fits) return size;
      }
      return 8;
    }
    const fits32 = min < 0n ? min >= -(1n << 31n) && max < 1n << 31n : max < 1n << 32n;
    return fits32 ? 4 : 8;
  }

  private enumBody(t: BtfEnum, indent: number): string {
    const names = this.enumerators.get(t.id) ?? [];
    const pad = '\t'.repeat(indent + 1);
    const lines = t.values.map((v, i) => `${pad}${names[i] ?? v.name} = ${enumValue(v.value)},`);
    const packed = t.size < 4 ? ' __attribute__((packed))' : '';
    return `{\n${lines.join('\n')}\n${'\t'.repeat(indent)}}${packed}`;
  }

  // ---- layout -----------------------------------------------------------------------------------

  private sizeOf(id: number): number {
    return this.btf.sizeof(id);
  }

  /** Alignment of a type as clang lays out the C we write. */
  private alignOf(id: number, depth = 0): number {
    const t = this.types[id];
    if (t === undefined || depth > 256) return 1;
    switch (t.kind) {
      case 'int': case 'float': return Math.min(t.size & -t.size || 1, 16);
      case 'enum': case 'enum64': return Math.min(t.size, 8);
      case 'ptr': return PTR_SIZE;
      case 'array': case 'typedef': case 'const': case 'volatile': case 'restrict': case 'type_tag':
        return this.alignOf(t.type, depth + 1);
      case 'struct': case 'union': return this.layout(t).align;
      default: return 1;
    }
  }

  /** Bit size and bit offset of a member, with old-style (int encoding) bitfields folded in. */
  private memberBits(m: BtfMember): { off: number; bits: number } {
    let off = m.bitOffset;
    let bits = m.bitfieldSize;
    if (bits === 0) {
      const t = this.btf.resolve(m.type);
      if (t.kind === 'int' && (t.bits !== t.size * 8 || t.bitOffset !== 0)) {
        off += t.bitOffset;
        bits = t.bits;
      }
    }
    return { off, bits };
  }

  /**
   * Whether a struct needs `packed` for its members to land where BTF says, and the alignment
   * the C type then has. Members that sit later than natural layout puts them are fine (padding
   * fills the gap); one that sits earlier, or a size that is no multiple of the alignment, is not.
   */
  private layout(t: BtfStruct): Layout {
    const have = this.layouts.get(t.id);
    if (have) return have;
    // A placeholder breaks cycles through malformed BTF (a struct containing itself).
    this.layouts.set(t.id, { align: 1, packed: false });
    let align = 1;
    for (const m of t.members) align = Math.max(align, this.alignOf(m.type));
    const packed = t.size % align !== 0 || !this.fits(t, false);
    const result: Layout = { align: packed ? 1 : align, packed };
    this.layouts.set(t.id, result);
    return result;
  }

  /** Whether natural (or packed) placement puts no member later than BTF's offset. */
  private fits(t: BtfStruct, packed: boolean): boolean {
    if (t.kind === 'union') {
      return t.members.every((m) => packed || this.memberBits(m).bits > 0 || m.bitOffset % (this.alignOf(m.type) * 8) === 0);
    }
    let pos = 0;
    for (const m of t.members) {
      const { off, bits } = this.memberBits(m);
      const natural = this.naturalPos(m, pos, bits, packed);
      if (off < natural) return false;
      pos = off + (bits > 0 ? bits : this.sizeOf(m.type) * 8);
    }
    return true;
  }

  /** Where C would put a member next, `pos` bits into the struct. */
  private naturalPos(m: BtfMember, pos: number, bits: number, packed: boolean): number {
    if (packed) return bits > 0 ? pos : roundUp(pos, 8);
    if (bits > 0) {
      const unit = this.sizeOf(m.type) * 8;
      if (unit === 0) return pos;
      return Math.floor(pos / unit) === Math.floor((pos + bits - 1) / unit) ? pos : roundUp(pos, unit);
    }
    return roundUp(pos, this.alignOf(m.type) * 8);
  }

  // ---- bodies -----------------------------------------------------------------------------------

  private structBody(t: BtfStruct, indent: number): string {
    const pad = '\t'.repeat(indent + 1);
    const lines: string[] = [];
    const { packed, align } = this.layout(t);
    let pos = 0;
    for (const m of t.members) {
      const { off, bits } = this.memberBits(m);
      if (t.kind === 'struct') {
        const natural = this.naturalPos(m, pos, bits, packed);
        if (off > natural) padding(lines, pad, pos, off, packed);
      }
      const name = m.name;
      let text = this.decl(m.type, name, indent + 1);
      if (bits > 0) text += `: ${bits}`;
      lines.push(`${pad}${text};`);
      if (t.kind === 'struct') pos = off + (bits > 0 ? bits : this.sizeOf(m.type) * 8);
      else pos = Math.max(pos, off + (bits > 0 ? bits : this.sizeOf(m.type) * 8));
    }
    const end = t.size * 8;
    const naturalEnd = roundUp(pos, (packed ? 1 : align) * 8);
    if (naturalEnd < end) {
      if (t.kind === 'struct') padding(lines, pad, pos, end, packed);
      else lines.push(`${pad}char __bpfkit_pad[${t.size}];`);
    }
    const attr = packed ? ' __attribute__((packed))' : '';
    if (lines.length === 0) return `{}${attr}`;
    return `{\n${lines.join('\n')}\n${'\t'.repeat(indent)}}${attr}`;
  }

  // ---- the file ---------------------------------------------------------------------------------

  write(options: DumpCOptions): string {
    const guard = options.guard ?? '__VMLINUX_H__';
    const pai = options.preserveAccessIndex ?? true;
    for (let id = 1; id < this.types.length; id++) {
      const t = this.types[id]!;
      switch (t.kind) {
        case 'struct': case 'union':
          if (t.name) this.need(id, true);
          break;
        case 'enum': case 'enum64':
          if (t.name) this.need(id, true);
          break;
        case 'typedef':
          this.need(id, true);
          break;
        case 'fwd': {
          const full = this.btf.byName(t.name, t.fwdKind).length > 0;
          if (!full) this.forward(id);
          break;
        }
        default:
          break;
      }
    }
    // Anonymous enums no declaration used: their enumerators are constants programs want.
    for (let id = 1; id < this.types.length; id++) {
      const t = this.types[id]!;
      if ((t.kind === 'enum' || t.kind === 'enum64') && !t.name && t.values.length > 0 && !this.anonEnumsDone.has(id)) {
        this.anonEnumsDone.add(id);
        this.out.push(`enum ${this.enumBody(t, 0)};\n\n`);
      }
    }
    const head: string[] = [];
    if (options.comment) head.push(`/* ${options.comment.replace(/\*\//g, '* /')} */\n`);
    head.push(`#ifndef ${guard}\n#define ${guard}\n\n`);
    if (pai) {
      head.push('#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n');
      head.push('#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n');
      head.push('#endif\n\n');
    }
    const tail: string[] = [];
    if (pai) tail.push('#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n');
    tail.push(`#endif /* ${guard} */\n`);
    return head.join('') + this.out.join('') + tail.join('');
  }
}

function isBuiltinName(name: string): boolean {
  return name.startsWith('__builtin_');
}

function join(base: string, inner: string): string {
  return inner ? `${base} ${inner}` : base;
}

/** Pointer declarators bind looser than [] and (): `*p` inside an array or function needs parens. */
function wrap(inner: string): string {
  return inner.startsWith('*') ? `(${inner})` : inner;
}

function intOfSize(size: number, signed: boolean): string {
  const u = signed ? '' : 'unsigned ';
  switch (size) {
    case 1: return `${signed ? 'signed ' : 'unsigned '}char`;
    case 2: return `${u}short`;
    case 4: return `${u}int`;
    default: return `${u}long long`;
  }
}

function enumValue(v: bigint): string {
  if (v === -(1n << 63n)) return '(-9223372036854775807LL - 1)';
  if (v > (1n << 63n) - 1n) return `${v}ULL`;
  if (v > 0xffffffffn || v < -(1n << 31n)) return `${v}LL`;
  return `${v}`;
}

/**
 * Gaps of more than this many bytes are one char array rather than a `long: 64;` per 8 bytes.
 * Real kernels pad up to a page (4 KiB on x86, up to 64 KiB on arm64) with unnamed bitfields as
 * libbpf writes them; beyond that, the output would grow out of proportion to the BTF.
 */
const PAD_ARRAY_BYTES = 64 * 1024;

/**
 * Unnamed bitfields covering bits [from, to): whole units where aligned, else the rest of a byte.
 * A long aligned gap is one named char array, so the output stays proportional to the BTF.
 */
function padding(lines: string[], pad: string, from: number, to: number, packed: boolean): void {
  let pos = from;
  while (pos < to) {
    if (pos % 8 === 0 && to - pos > PAD_ARRAY_BYTES * 8) {
      const bytes = Math.floor((to - pos) / 8);
      lines.push(`${pad}char __bpfkit_pad_${pos / 8}[${bytes}];`);
      pos += bytes * 8;
      continue;
    }
    const gap = to - pos;
    let done = false;
    for (const [bits, type] of [[64, 'long'], [32, 'int'], [16, 'short'], [8, 'char']] as const) {
      if (pos % bits === 0 && gap >= bits) {
        lines.push(`${pad}${type}: ${bits};`);
        pos += bits;
        done = true;
        break;
      }
    }
    if (done) continue;
    // Not byte-aligned, or less than a byte to go: fill within the current byte (or, packed, any run).
    const n = packed ? Math.min(gap, 8 - (pos % 8) || 8) : Math.min(gap, 8 - (pos % 8));
    lines.push(`${pad}char: ${n};`);
    pos += n;
  }
}

/** BTF as JSON: every type of the model, bigints as numbers when exact, else strings. */
export function dumpJson(btf: Btf): string {
  const replacer = (_key: string, value: unknown): unknown => {
    if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    return value;
  };
  return `${JSON.stringify({ types: btf.types.slice(1) }, replacer, 2)}\n`;
}
