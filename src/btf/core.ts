/**
 * CO-RE ("compile once, run everywhere"): adapting a program built against one kernel's types to
 * the kernel it is loaded into. clang records, for every instruction whose immediate or offset
 * comes from a type (a field offset, a type's size, an enum value, whether something exists), a
 * relocation in `.BTF.ext`: the instruction, a type of the program's own BTF (the "local" type),
 * an access string ("0:1:2": array index into the root, then member or element indices) and what
 * the instruction needs (bpf_core_relo_kind). This module recomputes each value against the target
 * kernel's BTF and patches the instruction.
 *
 * Target types are found by name, ignoring a "___flavor" suffix (`task_struct___old` is looked up
 * as `task_struct`), and must have a compatible kind. Field accesses are then followed member by
 * member by name, through anonymous structs and unions, and array indices by index. Every
 * candidate type that matches must give the same value, else the relocation is ambiguous (an
 * error). When no target satisfies a relocation, the "exists" kinds (and every type-based kind)
 * yield 0; the others poison the instruction: it becomes a call to helper 0xbad2310 (the marker
 * libbpf uses, so verifier logs read the same), which the verifier rejects only if the program can
 * reach it, so code guarded by bpf_core_field_exists() still loads. `explainCoreFailure` turns
 * such a rejection into a message naming the relocation.
 *
 * Pure: instruction bytes and two Btf objects in, patched bytes and a report out.
 */
import { BpfkitError } from '../errors.js';
import { BPF_CLASS, INSN_SIZE, Insns, OP_LD_IMM64 } from '../asm/insn.js';
import { typeIdsNamed, type Btf } from './btf.js';
import { CORE_RELO_KIND } from './types.js';
import type { BtfEnum, BtfStruct, BtfType, CoreRelo } from './types.js';

/** Immediate of the invalid helper call a failed relocation leaves (0xbad2310, "bad relo"). */
export const CORE_POISON_HELPER = 0xbad2310;

/** What a CO-RE relocation asks of the target type (libbpf's enum bpf_core_relo_kind, by name). */
export type CoreRelocationKind =
  | 'field_byte_offset' | 'field_byte_size' | 'field_exists' | 'field_signed'
  | 'field_lshift_u64' | 'field_rshift_u64' | 'type_id_local' | 'type_id_target'
  | 'type_exists' | 'type_size' | 'enumval_exists' | 'enumval_value' | 'type_matches';

const KIND_NAMES: readonly CoreRelocationKind[] = [
  'field_byte_offset', 'field_byte_size', 'field_exists', 'field_signed', 'field_lshift_u64',
  'field_rshift_u64', 'type_id_local', 'type_id_target', 'type_exists', 'type_size',
  'enumval_exists', 'enumval_value', 'type_matches',
];

/** A relocation that cannot be applied at all (a malformed record, or an instruction that does not fit it). */
export class CoreRelocationError extends BpfkitError {
  readonly program: string;
  readonly insn: number;
  constructor(program: string, insn: number, message: string) {
    super('ERR_BPFKIT_CORE', `program ${program}: CO-RE relocation at instruction ${insn}: ${message}`);
    this.program = program;
    this.insn = insn;
  }
}

/** What one relocation did. */
export interface CoreRelocationResult {
  /** Instruction index in the linked program. */
  readonly insn: number;
  readonly kind: CoreRelocationKind;
  readonly accessStr: string;
  /**
   * What the relocation is about, spelled from the program's own types:
   * `task_struct.real_parent`, `bpf_array.ptrs[0]`, `enum bpf_map_type::BPF_MAP_TYPE_RINGBUF`,
   * `struct task_struct`.
   */
  readonly subject: string;
  /** The program's (local) BTF type the relocation names. */
  readonly localTypeId: number;
  /** The target type it resolved against; 0 when none matched. */
  readonly targetTypeId: number;
  /** The value the compiler computed from the program's own types. */
  readonly localValue: bigint;
  /** The value written into the instruction; 0 when poisoned. */
  readonly value: bigint;
  /** True when the instruction was turned into a call of the invalid helper 0xbad2310. */
  readonly poisoned: boolean;
  /** Why no target type satisfied the relocation (when poisoned, or a type/exists kind got 0). */
  readonly reason: string | undefined;
}

/** The name without a "___flavor" suffix: the part before the last `X___Y` separator (X, Y not '_'). */
export function essentialName(name: string): string {
  for (let i = name.length - 5; i >= 0; i--) {
    if (name.charCodeAt(i) !== 95 && name.startsWith('___', i + 1) && name.charCodeAt(i + 4) !== 95) {
      return name.slice(0, i + 1);
    }
  }
  return name;
}

/**
 * Applies every CO-RE relocation of a program to `insns` (modified in place): `relos` refer to
 * `local` (the object's BTF) and are resolved against `target` (the kernel's). Throws
 * CoreRelocationError for relocations that cannot be applied at all; relocations that simply find
 * nothing in the target are poisoned or yield 0, as reported in the result.
 */
export function applyCoreRelocations(
  insns: Uint8Array, relos: readonly CoreRelo[], local: Btf, target: Btf, programName: string,
): CoreRelocationResult[] {
  const view = new Insns(insns);
  indexCandidates(target, rootNames(local, relos));
  const engine = new CoreEngine(local, target, programName);
  return relos.map((r) => engine.apply(view, r));
}

/**
 * When the verifier's log shows it reached an instruction poisoned by a failed relocation, a
 * one-line summary naming that relocation (for VerifierError); otherwise undefined.
 */
export function explainCoreFailure(log: string, results: readonly CoreRelocationResult[], programName: string): string | undefined {
  const poisoned = results.filter((r) => r.poisoned);
  if (poisoned.length === 0 || !log.includes(`unknown#${CORE_POISON_HELPER}`)) return undefined;
  // The verifier prints each instruction it checks as "<index>: (85) call unknown#195896080".
  const reached = [...log.matchAll(new RegExp(`^\\s*(\\d+): \\(85\\) call unknown#${CORE_POISON_HELPER}`, 'gm'))];
  const last = reached.at(-1);
  const at = last ? Number(last[1]) : undefined;
  const r = poisoned.find((p) => p.insn === at || p.insn + 1 === at) ?? poisoned[0]!;
  const guard = r.kind.startsWith('enumval') ? 'bpf_core_enum_value_exists()' : 'bpf_core_field_exists()';
  return `CO-RE relocation failed: program ${programName}, instruction ${r.insn}: ${r.kind} of ${r.subject} ` +
    `(access ${r.accessStr}): ${r.reason ?? 'no matching kernel type'}; the program reaches it unguarded (check with ${guard} first)`;
}

// ---------------------------------------------------------------------------------------------
// Type relations
// ---------------------------------------------------------------------------------------------

/** Deepest pointer/array/function nesting the relations follow before giving up. */
const MAX_DEPTH = 32;

/** The type under typedefs and const/volatile/restrict/type_tag (never throws on bad ids: void). */
function skip(btf: Btf, id: number): BtfType {
  try {
    return btf.resolve(id);
  } catch {
    return btf.type(0);
  }
}

function isComposite(t: BtfType): t is BtfStruct {
  return t.kind === 'struct' || t.kind === 'union';
}

function isEnum(t: BtfType): t is BtfEnum {
  return t.kind === 'enum' || t.kind === 'enum64';
}

function sameEssentialName(a: string, b: string): boolean {
  return a === b || essentialName(a) === essentialName(b);
}

/**
 * Compatibility of two types for type-based relocations (exists, size, target id) and typed
 * ksyms: modifiers and typedefs are ignored; kinds must agree, except that enum and enum64 mix;
 * structs, unions, forward declarations and enums are compatible whatever their members (their
 * names were matched when the root was looked up); integers whatever their size and signedness
 * (but not the old bitfield-like ints with a bit offset); pointers and arrays if what they point
 * to or hold is (array lengths ignored); function prototypes if they take as many arguments and
 * argument and return types are compatible.
 */
export function typesAreCompatible(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  return compatible(local, localId, target, targetId, 0);
}

function compatible(lb: Btf, lid: number, tb: Btf, tid: number, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  const l = skip(lb, lid);
  const t = skip(tb, tid);
  if (isEnum(l) && isEnum(t)) return true;
  if (l.kind !== t.kind) return false;
  switch (l.kind) {
    case 'void': case 'struct': case 'union': case 'fwd': case 'enum': case 'enum64': case 'float':
      return true;
    case 'int':
      return l.bitOffset === 0 && (t as typeof l).bitOffset === 0;
    case 'ptr':
      return compatible(lb, l.type, tb, (t as typeof l).type, depth + 1);
    case 'array':
      return compatible(lb, l.type, tb, (t as typeof l).type, depth + 1);
    case 'func_proto': {
      const tp = t as typeof l;
      if (l.params.length !== tp.params.length) return false;
      for (let i = 0; i < l.params.length; i++) {
        if (!compatible(lb, l.params[i]!.type, tb, tp.params[i]!.type, depth + 1)) return false;
      }
      return compatible(lb, l.returnType, tb, tp.returnType, depth + 1);
    }
    default:
      return false;
  }
}

/**
 * Compatibility of a member's type in the program with the same member's type in the kernel:
 * any struct or union fits any other (the next access checks the members it needs); pointers fit
 * pointers and floats floats; enums (and enum64) and forward declarations need the same name
 * (flavor ignored; an anonymous enum fits any); integers of any size and signedness fit (bitfield-like
 * ints with a bit offset excepted); arrays if their elements fit, whatever their lengths.
 */
function fieldsCompatible(lb: Btf, lid: number, tb: Btf, tid: number, depth = 0): boolean {
  if (depth > MAX_DEPTH) return false;
  const l = skip(lb, lid);
  const t = skip(tb, tid);
  if (isComposite(l) && isComposite(t)) return true;
  if (isEnum(l) && isEnum(t)) return l.name === '' || t.name === '' || sameEssentialName(l.name, t.name);
  if (l.kind !== t.kind) return false;
  switch (l.kind) {
    case 'ptr': case 'float': return true;
    case 'fwd': return sameEssentialName(l.name, t.name);
    case 'int': return l.bitOffset === 0 && (t as typeof l).bitOffset === 0;
    case 'array': return fieldsCompatible(lb, l.type, tb, (t as typeof l).type, depth + 1);
    default: return false;
  }
}

/**
 * The "type matches" relation (bpf_core_type_matches): stricter than compatibility. Modifiers and
 * typedefs are ignored; kinds must agree (enum and enum64 mix, and behind a pointer a struct or
 * union also matches a forward declaration of the same kind); named types need the same name
 * (flavor ignored). Integers match with the same size and signedness; pointers and arrays if
 * their targets match (arrays with the same length); structs and unions if every member of the
 * program's type exists in the kernel's by name with a matching type (behind a pointer only the
 * name and kind are checked); enums if they have the same size and every enumerator of the
 * program's enum exists by name in the kernel's (values may differ); function prototypes if
 * arguments (by position) and return types match.
 */
export function typesMatch(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  return matches(local, localId, target, targetId, false, 0);
}

function matches(lb: Btf, lid: number, tb: Btf, tid: number, behindPtr: boolean, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  const l = skip(lb, lid);
  const t = skip(tb, tid);
  const named = isComposite(l) || isEnum(l) || l.kind === 'fwd';
  if (named && !(l.name === t.name || (l.name !== '' && t.name !== '' && sameEssentialName(l.name, t.name)))) return false;
  switch (l.kind) {
    case 'void':
      return t.kind === 'void';
    case 'fwd':
      if (t.kind === 'fwd') return t.fwdKind === l.fwdKind;
      return behindPtr && t.kind === l.fwdKind;
    case 'struct': case 'union':
      if (behindPtr) return t.kind === l.kind || (t.kind === 'fwd' && t.fwdKind === l.kind);
      return t.kind === l.kind && membersMatch(lb, l, tb, t, depth);
    case 'enum': case 'enum64':
      return isEnum(t) && t.size === l.size && l.values.every((v) => t.values.some((w) => sameEssentialName(v.name, w.name)));
    case 'int':
      return t.kind === 'int' && t.size === l.size && t.signed === l.signed;
    case 'float':
      return t.kind === 'float' && t.size === l.size;
    case 'ptr':
      return t.kind === 'ptr' && matches(lb, l.type, tb, t.type, true, depth + 1);
    case 'array':
      return t.kind === 'array' && t.nelems === l.nelems && matches(lb, l.type, tb, t.type, behindPtr, depth + 1);
    case 'func_proto': {
      if (t.kind !== 'func_proto' || t.params.length !== l.params.length) return false;
      for (let i = 0; i < l.params.length; i++) {
        if (!matches(lb, l.params[i]!.type, tb, t.params[i]!.type, behindPtr, depth + 1)) return false;
      }
      return matches(lb, l.returnType, tb, t.returnType, behindPtr, depth + 1);
    }
    default:
      return false;
  }
}

function membersMatch(lb: Btf, l: BtfStruct, tb: Btf, t: BtfStruct, depth: number): boolean {
  return l.members.every((m) => t.members.some((tm) => tm.name === m.name && matches(lb, m.type, tb, tm.type, false, depth + 1)));
}

// ---------------------------------------------------------------------------------------------
// Access specs
// ---------------------------------------------------------------------------------------------

/** One step of a field access that matching has to reproduce: a named member or an array index. */
interface Step {
  readonly kind: 'member' | 'index';
  readonly index: number;
  /** Member name, for member steps. */
  readonly name: string;
  /** The member's or element's type in the spec's own BTF. */
  readonly typeId: number;
}

/** A field access resolved in one BTF: where the field is and what it is. */
interface FieldSpec {
  readonly btf: Btf;
  /** The root type as named (the relocation's type, or a candidate). */
  readonly rootId: number;
  /** Index into the root (pointer arithmetic on it), the access string's first number. */
  readonly rootIndex: number;
  /** Named members and array indices, in order (anonymous structs and unions crossed are left out). */
  readonly steps: readonly Step[];
  /** Every access index, anonymous members included: the access string of this spec. */
  readonly raw: readonly number[];
  readonly bitOffset: number;
  /** Type of the field reached (the root itself when there are no steps). */
  readonly fieldTypeId: number;
  /** Its bitfield size, 0 unless the last step is a bitfield member. */
  readonly bitfieldSize: number;
}

/** Index of a flexible array (`T x[]` or `T x[0]` as the last member of its struct) may exceed its length. */
function isFlexible(parent: BtfStruct | undefined, memberIndex: number, nelems: number): boolean {
  return nelems === 0 && parent !== undefined && parent.kind === 'struct' && memberIndex === parent.members.length - 1;
}

function sizeOf(btf: Btf, id: number): number | undefined {
  try {
    return btf.sizeof(id);
  } catch {
    return undefined;
  }
}

/** Follows an access string through the program's own types; a string describes what is wrong. */
function parseLocalField(btf: Btf, rootId: number, access: readonly number[]): FieldSpec | string {
  const root = skip(btf, rootId);
  const rootIndex = access[0]!;
  let bitOffset = 0;
  if (rootIndex !== 0) {
    const size = sizeOf(btf, root.id);
    if (size === undefined) return `${btf.typeName(rootId)} has no size to index by ${rootIndex}`;
    bitOffset = rootIndex * size * 8;
  }
  const steps: Step[] = [];
  let cur = root;
  let fieldTypeId = rootId;
  let bitfieldSize = 0;
  let parent: BtfStruct | undefined;
  let memberIndex = -1;
  for (let i = 1; i < access.length; i++) {
    const idx = access[i]!;
    if (isComposite(cur)) {
      const m = cur.members[idx];
      if (!m) return `${btf.typeName(cur.id)} has no member #${idx}`;
      bitOffset += m.bitOffset;
      fieldTypeId = m.type;
      bitfieldSize = m.bitfieldSize;
      if (m.name !== '') steps.push({ kind: 'member', index: idx, name: m.name, typeId: m.type });
      parent = cur;
      memberIndex = idx;
    } else if (cur.kind === 'array') {
      if (idx >= cur.nelems && !isFlexible(parent, memberIndex, cur.nelems)) {
        return `index ${idx} is out of range of ${btf.typeName(cur.id)}`;
      }
      const size = sizeOf(btf, cur.type);
      if (size === undefined) return `elements of ${btf.typeName(cur.id)} have no size`;
      bitOffset += idx * size * 8;
      fieldTypeId = cur.type;
      bitfieldSize = 0;
      steps.push({ kind: 'index', index: idx, name: '', typeId: cur.type });
      parent = undefined;
    } else {
      return `access #${i} (${idx}) goes into ${btf.typeName(cur.id)}, which is neither a struct, a union nor an array`;
    }
    cur = skip(btf, fieldTypeId);
  }
  return { btf, rootId, rootIndex, steps, raw: access, bitOffset, fieldTypeId, bitfieldSize };
}

/** The member named `name` of `t`, looked for through anonymous struct and union members too. */
function findMember(btf: Btf, t: BtfStruct, name: string, depth = 0): { path: number[]; bitOffset: number; parent: BtfStruct; index: number } | undefined {
  if (depth > MAX_DEPTH) return undefined;
  for (let i = 0; i < t.members.length; i++) {
    const m = t.members[i]!;
    if (m.name === name) return { path: [i], bitOffset: m.bitOffset, parent: t, index: i };
    if (m.name === '') {
      const inner = skip(btf, m.type);
      if (!isComposite(inner)) continue;
      const found = findMember(btf, inner, name, depth + 1);
      if (found) return { ...found, path: [i, ...found.path], bitOffset: m.bitOffset + found.bitOffset };
    }
  }
  return undefined;
}

/** Reproduces the local access in a candidate target type; a string says why it does not fit. */
function matchField(local: FieldSpec, target: Btf, candidateId: number): FieldSpec | string {
  const root = skip(target, candidateId);
  let bitOffset = 0;
  if (local.rootIndex !== 0) {
    const size = sizeOf(target, root.id);
    if (size === undefined) return `the kernel's ${target.typeName(candidateId)} has no size`;
    bitOffset = local.rootIndex * size * 8;
  }
  const raw = [local.rootIndex];
  const steps: Step[] = [];
  let cur = root;
  let fieldTypeId = candidateId;
  let bitfieldSize = 0;
  let parent: BtfStruct | undefined;
  let memberIndex = -1;
  for (const step of local.steps) {
    if (step.kind === 'member') {
      if (!isComposite(cur)) return `the kernel's ${target.typeName(cur.id)} is not a struct or union (looking for ${step.name})`;
      const found = findMember(target, cur, step.name);
      if (!found) return `the kernel's ${target.typeName(cur.id)} has no field ${step.name}`;
      const m = found.parent.members[found.index]!;
      if (!fieldsCompatible(local.btf, step.typeId, target, m.type)) {
        return `field ${step.name} is ${local.btf.typeName(step.typeId)} in the program but ${target.typeName(m.type)} in the kernel`;
      }
      bitOffset += found.bitOffset;
      fieldTypeId = m.type;
      bitfieldSize = m.bitfieldSize;
      raw.push(...found.path);
      steps.push({ kind: 'member', index: found.index, name: step.name, typeId: m.type });
      parent = found.parent;
      memberIndex = found.index;
    } else {
      if (cur.kind !== 'array') return `the kernel's ${target.typeName(cur.id)} is not an array (indexing it by ${step.index})`;
      if (step.index >= cur.nelems && !isFlexible(parent, memberIndex, cur.nelems)) {
        return `index ${step.index} is out of range of the kernel's ${target.typeName(cur.id)}`;
      }
      const size = sizeOf(target, cur.type);
      if (size === undefined) return `elements of the kernel's ${target.typeName(cur.id)} have no size`;
      bitOffset += step.index * size * 8;
      fieldTypeId = cur.type;
      bitfieldSize = 0;
      raw.push(step.index);
      steps.push({ kind: 'index', index: step.index, name: '', typeId: cur.type });
      parent = undefined;
    }
    cur = skip(target, fieldTypeId);
  }
  return { btf: target, rootId: candidateId, rootIndex: local.rootIndex, steps, raw, bitOffset, fieldTypeId, bitfieldSize };
}

/** A computed relocation value, with what patching a load or store needs to know. */
interface Value {
  readonly value: bigint;
  /** For field_byte_offset of a plain (non-bitfield) field: its size in bytes and type. */
  readonly memSize?: number;
  readonly memTypeId?: number;
}

/**
 * The value of a field relocation in one spec. A bitfield is read with the smallest naturally
 * aligned load, starting at its declared type's size, that covers all its bits; the shifts then
 * isolate it in a u64 (little-endian: left by 64 - (end bit within the load), right by 64 - width).
 */
function fieldValue(spec: FieldSpec, kind: number): Value | string {
  const { btf, bitOffset, bitfieldSize } = spec;
  const t = skip(btf, spec.fieldTypeId);
  let byteSize: number;
  let byteOffset: number;
  let bitSize: number;
  if (bitfieldSize === 0) {
    const size = sizeOf(btf, spec.fieldTypeId);
    if (size === undefined) return `${btf.typeName(spec.fieldTypeId)} has no size`;
    byteSize = size;
    bitSize = size * 8;
    byteOffset = Math.floor(bitOffset / 8);
  } else {
    if (t.kind !== 'int' && !isEnum(t)) return `bitfield of ${btf.typeName(spec.fieldTypeId)}`;
    byteSize = t.size;
    bitSize = bitfieldSize;
    byteOffset = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    while (bitOffset + bitSize - byteOffset * 8 > byteSize * 8) {
      if (byteSize >= 8) return `bitfield at bit ${bitOffset} (${bitSize} bits) does not fit one 8-byte load`;
      byteSize *= 2;
      byteOffset = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    }
  }
  switch (kind) {
    case CORE_RELO_KIND.FIELD_BYTE_OFFSET:
      return bitfieldSize === 0
        ? { value: BigInt(byteOffset), memSize: byteSize, memTypeId: spec.fieldTypeId }
        : { value: BigInt(byteOffset) };
    case CORE_RELO_KIND.FIELD_BYTE_SIZE: return { value: BigInt(byteSize) };
    case CORE_RELO_KIND.FIELD_EXISTS: return { value: 1n };
    case CORE_RELO_KIND.FIELD_SIGNED: return { value: (t.kind === 'int' || isEnum(t)) && t.signed ? 1n : 0n };
    case CORE_RELO_KIND.FIELD_LSHIFT_U64: return { value: BigInt(64 - (bitOffset + bitSize - byteOffset * 8)) };
    case CORE_RELO_KIND.FIELD_RSHIFT_U64: return { value: BigInt(64 - bitSize) };
    default: return `kind ${kind} is not a field relocation`;
  }
}

/** The C-like spelling of a field access in the program's types: `task_struct.real_parent`, `bpf_array.ptrs[0]`. */
function describeField(btf: Btf, rootId: number, access: readonly number[]): string {
  const root = skip(btf, rootId);
  let s = btf.type(rootId).name || root.name || btf.typeName(rootId);
  if (access[0] !== 0) s += `[${access[0]}]`;
  let cur = root;
  for (let i = 1; i < access.length; i++) {
    const idx = access[i]!;
    let next: number;
    if (isComposite(cur) && cur.members[idx]) {
      const m = cur.members[idx]!;
      if (m.name !== '') s += `.${m.name}`;
      next = m.type;
    } else if (cur.kind === 'array') {
      s += `[${idx}]`;
      next = cur.type;
    } else {
      s += `:${idx}`;
      break;
    }
    cur = skip(btf, next);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------------------

/**
 * Target types by essential name. vmlinux has ~126,000 types and an object asks about a few dozen
 * names: those are looked up together, in one walk over the target's type records
 * ({@link prepareCoreCandidates} does it for a whole object before its first program).
 */
const candidateIndexes = new WeakMap<Btf, Map<string, readonly number[]>>();

/** Kinds a relocation root can never be (functions, variables and BTF-only records). */
function mayBeRoot(t: BtfType): boolean {
  switch (t.kind) {
    case 'var': case 'func': case 'datasec': case 'decl_tag': case 'func_proto': return false;
    default: return t.name !== '';
  }
}

/** Finds the target's candidates for every name not looked up yet (one walk over its types). */
function indexCandidates(target: Btf, names: Iterable<string>): Map<string, readonly number[]> {
  let index = candidateIndexes.get(target);
  if (!index) candidateIndexes.set(target, (index = new Map()));
  const missing = [...new Set(names)].filter((n) => !index!.has(n));
  if (missing.length === 0) return index;
  // Named `name` or `name___flavor`; the essential name (up to the last separator) must be `name`.
  const found = typeIdsNamed(target, missing, true);
  for (const name of missing) {
    const ids = (found.get(name) ?? []).filter((id) => {
      const t = target.type(id);
      return mayBeRoot(t) && essentialName(t.name) === name;
    });
    index.set(name, ids);
  }
  return index;
}

/** Ids of target types whose essential name is `name` (and whose kind may be a root), in id order. */
function candidateIds(target: Btf, name: string): readonly number[] {
  return candidateIndexes.get(target)?.get(name) ?? indexCandidates(target, [name]).get(name)!;
}

/** Essential names of the local root types `relos` will look up in a target. */
function rootNames(local: Btf, relos: readonly CoreRelo[]): string[] {
  const names: string[] = [];
  for (const r of relos) {
    // Malformed records are reported by apply(), with the instruction they belong to.
    if (r.kind === CORE_RELO_KIND.TYPE_ID_LOCAL || !Number.isInteger(r.typeId) || r.typeId <= 0 || r.typeId >= local.length) continue;
    const name = local.type(r.typeId).name;
    if (name !== '') names.push(essentialName(name));
  }
  return names;
}

/**
 * Looks up, in one walk over `target`, the candidate types of every relocation root the given
 * programs name, so that applying their relocations finds them ready. Optional: a name not
 * prepared is looked up when first needed.
 */
export function prepareCoreCandidates(target: Btf, programs: Iterable<{ readonly btf: Btf | undefined; readonly coreRelos: readonly CoreRelo[] }>): void {
  const names: string[] = [];
  for (const p of programs) if (p.btf && p.coreRelos.length > 0) names.push(...rootNames(p.btf, p.coreRelos));
  if (names.length > 0) indexCandidates(target, names);
}

/** Kinds a root type may be matched with: the same kind, or enum with enum64. */
function rootKindsFit(local: BtfType, target: BtfType): boolean {
  return local.kind === target.kind || (isEnum(local) && isEnum(target));
}

/** The outcome of resolving one relocation against the target, before touching the instruction. */
interface Resolution {
  readonly localValue: bigint;
  /** Whether the instruction must hold localValue (bitfield offsets and sizes may legitimately differ). */
  readonly validate: boolean;
  readonly value: bigint;
  readonly poisoned: boolean;
  readonly targetTypeId: number;
  readonly reason: string | undefined;
  readonly localMem?: { size: number; typeId: number };
  readonly targetMem?: { size: number; typeId: number };
}

class CoreEngine {
  constructor(private readonly local: Btf, private readonly target: Btf, private readonly program: string) {}

  apply(insns: Insns, relo: CoreRelo): CoreRelocationResult {
    const kind = KIND_NAMES[relo.kind];
    if (kind === undefined) throw this.fail(relo, `unknown relocation kind ${relo.kind}`);
    if (!Number.isInteger(relo.insnOff) || relo.insnOff < 0 || relo.insnOff >= insns.length) {
      throw this.fail(relo, `instruction ${relo.insnOff} is outside the program (${insns.length} instructions)`);
    }
    if (relo.typeId <= 0 || relo.typeId >= this.local.length) throw this.fail(relo, `type id ${relo.typeId} is not in the program's BTF`);
    const access = parseAccess(relo.accessStr);
    if (!access) throw this.fail(relo, `malformed access string "${relo.accessStr}"`);
    const res = this.resolve(relo, access);
    const subject = this.subject(relo, access);
    const poisoned = this.patch(insns, relo, res, subject);
    return {
      insn: relo.insnOff, kind, accessStr: relo.accessStr, subject, localTypeId: relo.typeId,
      targetTypeId: res.targetTypeId, localValue: res.localValue, value: poisoned ? 0n : res.value,
      poisoned, reason: poisoned && res.reason === undefined ? 'the load or store cannot be resized for the kernel\'s field' : res.reason,
    };
  }

  private fail(relo: CoreRelo, message: string): CoreRelocationError {
    return new CoreRelocationError(this.program, relo.insnOff, message);
  }

  private subject(relo: CoreRelo, access: readonly number[]): string {
    const lt = this.local.type(relo.typeId);
    switch (relo.kind) {
      case CORE_RELO_KIND.ENUMVAL_EXISTS: case CORE_RELO_KIND.ENUMVAL_VALUE: {
        const e = skip(this.local, relo.typeId);
        const v = isEnum(e) ? e.values[access[0]!] : undefined;
        return `enum ${lt.name || e.name || '<anon>'}::${v?.name ?? `#${access[0]}`}`;
      }
      case CORE_RELO_KIND.TYPE_ID_LOCAL: case CORE_RELO_KIND.TYPE_ID_TARGET: case CORE_RELO_KIND.TYPE_EXISTS:
      case CORE_RELO_KIND.TYPE_SIZE: case CORE_RELO_KIND.TYPE_MATCHES:
        return this.local.typeName(relo.typeId);
      default:
        return describeField(this.local, relo.typeId, access);
    }
  }

  /** Target types that may stand for the local root: same essential name, fitting kind. */
  private candidates(localRoot: BtfType): number[] {
    const ids = candidateIds(this.target, essentialName(localRoot.name));
    return ids.filter((id) => rootKindsFit(localRoot, this.target.type(id)));
  }

  private resolve(relo: CoreRelo, access: readonly number[]): Resolution {
    switch (relo.kind) {
      case CORE_RELO_KIND.TYPE_ID_LOCAL: case CORE_RELO_KIND.TYPE_ID_TARGET: case CORE_RELO_KIND.TYPE_EXISTS:
      case CORE_RELO_KIND.TYPE_SIZE: case CORE_RELO_KIND.TYPE_MATCHES:
        return this.resolveType(relo, access);
      case CORE_RELO_KIND.ENUMVAL_EXISTS: case CORE_RELO_KIND.ENUMVAL_VALUE:
        return this.resolveEnumval(relo, access);
      default:
        return this.resolveField(relo, access);
    }
  }

  private rootOf(relo: CoreRelo): BtfType {
    const t = this.local.type(relo.typeId);
    if (t.name === '') throw this.fail(relo, `its type ${this.local.typeName(relo.typeId)} (id ${relo.typeId}) is anonymous, so no kernel type can be looked up for it`);
    return t;
  }

  /** Runs `value` for each candidate; all matches must agree. */
  private decide<T extends { value: bigint; mem?: { size: number; typeId: number } }>(
    relo: CoreRelo, localRoot: BtfType, evaluate: (candidateId: number) => T | string,
  ): { found: T & { id: number } } | { reason: string } {
    const ids = this.candidates(localRoot);
    if (ids.length === 0) {
      const name = essentialName(localRoot.name);
      return { reason: `the kernel has no ${kindWord(localRoot)} ${name}` };
    }
    let found: (T & { id: number }) | undefined;
    const reasons: string[] = [];
    for (const id of ids) {
      const r = evaluate(id);
      if (typeof r === 'string') { reasons.push(r); continue; }
      if (!found) { found = { ...r, id }; continue; }
      if (r.value !== found.value || r.mem?.size !== found.mem?.size) {
        throw this.fail(relo, `ambiguous: kernel types ${found.id} and ${id} (${this.target.typeName(id)}) give ${found.value} and ${r.value}`);
      }
    }
    if (found) return { found };
    return { reason: [...new Set(reasons)].join('; ') };
  }

  private resolveField(relo: CoreRelo, access: readonly number[]): Resolution {
    const root = this.rootOf(relo);
    const local = parseLocalField(this.local, relo.typeId, access);
    if (typeof local === 'string') throw this.fail(relo, `access string ${relo.accessStr} does not fit the program's types: ${local}`);
    const lv = fieldValue(local, relo.kind);
    if (typeof lv === 'string') throw this.fail(relo, lv);
    // The compiler and this code may split bitfields into loads differently: only the kinds that
    // cannot depend on that are checked against the instruction.
    const validate = local.bitfieldSize === 0 || relo.kind === CORE_RELO_KIND.FIELD_SIGNED || relo.kind === CORE_RELO_KIND.FIELD_EXISTS;
    const localMem = lv.memSize !== undefined ? { size: lv.memSize, typeId: lv.memTypeId! } : undefined;
    const outcome = this.decide(relo, root, (id) => {
      const spec = matchField(local, this.target, id);
      if (typeof spec === 'string') return spec;
      const v = fieldValue(spec, relo.kind);
      if (typeof v === 'string') return `the kernel's ${describeSpec(spec)}: ${v}`;
      return { value: v.value, mem: v.memSize !== undefined ? { size: v.memSize, typeId: v.memTypeId! } : undefined };
    });
    if ('found' in outcome) {
      const { found } = outcome;
      return {
        localValue: lv.value, validate, value: found.value, poisoned: false, targetTypeId: found.id, reason: undefined,
        ...(localMem ? { localMem } : {}), ...(found.mem ? { targetMem: found.mem } : {}),
      };
    }
    if (relo.kind === CORE_RELO_KIND.FIELD_EXISTS) {
      return { localValue: lv.value, validate, value: 0n, poisoned: false, targetTypeId: 0, reason: outcome.reason };
    }
    return { localValue: lv.value, validate, value: 0n, poisoned: true, targetTypeId: 0, reason: outcome.reason };
  }

  private resolveType(relo: CoreRelo, access: readonly number[]): Resolution {
    if (access.length !== 1 || access[0] !== 0) throw this.fail(relo, `type relocation with access string "${relo.accessStr}" (expected "0")`);
    const id = relo.typeId;
    const localSize = (): bigint => {
      const s = sizeOf(this.local, id);
      if (s === undefined) throw this.fail(relo, `${this.local.typeName(id)} has no size`);
      return BigInt(s);
    };
    if (relo.kind === CORE_RELO_KIND.TYPE_ID_LOCAL) {
      return { localValue: BigInt(id), validate: true, value: BigInt(id), poisoned: false, targetTypeId: 0, reason: undefined };
    }
    const localValue = relo.kind === CORE_RELO_KIND.TYPE_ID_TARGET ? BigInt(id) : relo.kind === CORE_RELO_KIND.TYPE_SIZE ? localSize() : 1n;
    const root = this.rootOf(relo);
    const outcome = this.decide(relo, root, (cand) => {
      const ok = relo.kind === CORE_RELO_KIND.TYPE_MATCHES
        ? typesMatch(this.local, id, this.target, cand)
        : typesAreCompatible(this.local, id, this.target, cand);
      if (!ok) return `the kernel's ${this.target.typeName(cand)} (id ${cand}) does not ${relo.kind === CORE_RELO_KIND.TYPE_MATCHES ? 'match' : 'fit'} ${this.local.typeName(id)}`;
      switch (relo.kind) {
        case CORE_RELO_KIND.TYPE_ID_TARGET: return { value: BigInt(cand) };
        case CORE_RELO_KIND.TYPE_SIZE: {
          const s = sizeOf(this.target, cand);
          return s === undefined ? `the kernel's ${this.target.typeName(cand)} has no size` : { value: BigInt(s) };
        }
        default: return { value: 1n };
      }
    });
    if ('found' in outcome) {
      return { localValue, validate: true, value: outcome.found.value, poisoned: false, targetTypeId: outcome.found.id, reason: undefined };
    }
    // Type-based relocations report a missing type as 0 rather than poisoning.
    return { localValue, validate: true, value: 0n, poisoned: false, targetTypeId: 0, reason: outcome.reason };
  }

  private resolveEnumval(relo: CoreRelo, access: readonly number[]): Resolution {
    const root = this.rootOf(relo);
    const e = skip(this.local, relo.typeId);
    if (!isEnum(e)) throw this.fail(relo, `enum value relocation on ${this.local.typeName(relo.typeId)}, which is not an enum`);
    const v = access.length === 1 ? e.values[access[0]!] : undefined;
    if (!v) throw this.fail(relo, `access string "${relo.accessStr}" names no enumerator of ${this.local.typeName(relo.typeId)}`);
    const exists = relo.kind === CORE_RELO_KIND.ENUMVAL_EXISTS;
    const localValue = exists ? 1n : v.value;
    const outcome = this.decide(relo, root, (cand) => {
      const t = skip(this.target, cand);
      if (!isEnum(t)) return `the kernel's ${this.target.typeName(cand)} is not an enum`;
      const w = t.values.find((x) => x.name !== '' && sameEssentialName(x.name, v.name));
      if (!w) return `the kernel's enum ${t.name} has no value ${essentialName(v.name)}`;
      return { value: exists ? 1n : w.value };
    });
    if ('found' in outcome) {
      return { localValue, validate: true, value: outcome.found.value, poisoned: false, targetTypeId: outcome.found.id, reason: undefined };
    }
    return { localValue, validate: true, value: 0n, poisoned: !exists, targetTypeId: 0, reason: outcome.reason };
  }

  /** Writes the resolution into the instruction; returns whether it was poisoned. */
  private patch(insns: Insns, relo: CoreRelo, res: Resolution, subject: string): boolean {
    const i = relo.insnOff;
    const op = insns.op(i);
    const cls = op & 0x07;
    const where = `${KIND_NAMES[relo.kind]} of ${subject}`;
    if (res.poisoned) {
      poison(insns, i);
      return true;
    }
    switch (cls) {
      case BPF_CLASS.ALU: case BPF_CLASS.ALU64: {
        if ((op & 0x08) !== 0) throw this.fail(relo, `${where}: the ALU instruction takes a register, not an immediate`);
        const imm = BigInt(insns.imm(i));
        if (res.validate && (!fits32(res.localValue) || BigInt.asIntN(32, res.localValue) !== imm)) {
          throw this.fail(relo, `${where}: the instruction holds ${imm}, but the program's types give ${res.localValue}`);
        }
        if (!fits32(res.value)) throw this.fail(relo, `${where}: the kernel's value ${res.value} does not fit a 32-bit immediate`);
        insns.setImm(i, Number(BigInt.asIntN(32, res.value)));
        return false;
      }
      case BPF_CLASS.LDX: case BPF_CLASS.ST: case BPF_CLASS.STX: {
        const off = BigInt(insns.off(i));
        if (res.validate && res.localValue !== off) {
          throw this.fail(relo, `${where}: the instruction's offset is ${off}, but the program's types give ${res.localValue}`);
        }
        if (res.value > 0x7fffn || res.value < -0x8000n) throw this.fail(relo, `${where}: offset ${res.value} does not fit an instruction's 16-bit offset`);
        if (res.localMem && res.localMem.size !== (res.targetMem?.size ?? 0)) {
          if (!this.resizable(res)) {
            // Reading a differently sized signed or non-integer field with the old width would be wrong.
            poison(insns, i);
            return true;
          }
          const width = SIZE_BYTES[(op >> 3) & 0x03]!;
          if (width !== res.localMem.size) {
            throw this.fail(relo, `${where}: the instruction accesses ${width} bytes of a ${res.localMem.size}-byte field`);
          }
          const code = SIZE_CODES.get(res.targetMem!.size);
          if (code === undefined) throw this.fail(relo, `${where}: the kernel's field is ${res.targetMem!.size} bytes, which no load or store has`);
          insns.bytes[i * INSN_SIZE] = (op & ~0x18) | (code << 3);
        }
        insns.setOff(i, Number(res.value));
        return false;
      }
      case BPF_CLASS.LD: {
        if (op !== OP_LD_IMM64 || i + 1 >= insns.length) throw this.fail(relo, `${where}: a BPF_LD instruction other than ld_imm64`);
        const imm = (BigInt.asUintN(32, BigInt(insns.imm(i + 1))) << 32n) | BigInt.asUintN(32, BigInt(insns.imm(i)));
        if (res.validate && BigInt.asUintN(64, res.localValue) !== imm) {
          throw this.fail(relo, `${where}: the instruction holds ${imm}, but the program's types give ${res.localValue}`);
        }
        const v = BigInt.asUintN(64, res.value);
        insns.setImm(i, Number(BigInt.asIntN(32, v)));
        insns.setImm(i + 1, Number(BigInt.asIntN(32, v >> 32n)));
        return false;
      }
      default:
        throw this.fail(relo, `${where}: cannot relocate instruction with opcode 0x${op.toString(16)}`);
    }
  }

  /** A load or store may change width only for pointers and unsigned integers (zero extension keeps the value). */
  private resizable(res: Resolution): boolean {
    if (!res.localMem || !res.targetMem) return false;
    const l = skip(this.local, res.localMem.typeId);
    const t = skip(this.target, res.targetMem.typeId);
    if (l.kind === 'ptr' && t.kind === 'ptr') return true;
    return l.kind === 'int' && t.kind === 'int' && !l.signed && !t.signed;
  }
}

const SIZE_BYTES: readonly number[] = [4, 2, 1, 8]; // BPF_W, BPF_H, BPF_B, BPF_DW (size field >> 3)
const SIZE_CODES = new Map<number, number>([[4, 0], [2, 1], [1, 2], [8, 3]]);

function fits32(v: bigint): boolean {
  return v >= -0x80000000n && v <= 0xffffffffn;
}

/** Turns instruction i (both halves of an ld_imm64) into a call of the invalid helper. */
function poison(insns: Insns, i: number): void {
  const wide = insns.isLdImm64(i) && i + 1 < insns.length;
  insns.poison(i, CORE_POISON_HELPER);
  if (wide) insns.poison(i + 1, CORE_POISON_HELPER);
}

function parseAccess(s: string): number[] | undefined {
  if (!/^\d+(:\d+)*$/.test(s)) return undefined;
  const parts = s.split(':').map(Number);
  return parts.every((n) => Number.isSafeInteger(n)) ? parts : undefined;
}

function kindWord(t: BtfType): string {
  switch (t.kind) {
    case 'struct': case 'union': case 'typedef': case 'int': case 'float': case 'ptr': case 'array': return t.kind;
    case 'enum': case 'enum64': return 'enum';
    case 'fwd': return t.fwdKind;
    default: return `${t.kind}`;
  }
}

function describeSpec(spec: FieldSpec): string {
  return describeField(spec.btf, spec.rootId, spec.raw);
}
