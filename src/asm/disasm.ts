/**
 * Whole programs as text a person can read: one instruction per line in the verifier log's
 * notation, function labels from the linker, source lines from BTF line info, and the CO-RE
 * relocation each instruction carries. Used to debug relocation and linking.
 */
import { InvalidArgumentError } from '../errors.js';
import type { ProgramSpec } from '../spec/program-spec.js';
import { disassemble as disassembleInsn, readInsn } from './isa.js';

/** Options of {@link disassembleInstructions}: function labels, source lines and notes per instruction. */
export interface DisassembleOptions {
  /** [instruction index, function name] pairs, printed as labels. */
  readonly functions?: readonly (readonly [number, string])[];
  /** Source line per instruction index. */
  readonly lines?: ReadonlyMap<number, string>;
  /** A note per instruction index (e.g. the CO-RE relocation applied there). */
  readonly notes?: ReadonlyMap<number, string>;
}

/** Disassembles instruction bytes (8 per instruction; ld_imm64 takes two). */
export function disassembleInstructions(bytes: Uint8Array, options: DisassembleOptions = {}): string {
  if (!(bytes instanceof Uint8Array) || bytes.length % 8 !== 0) {
    const len = bytes instanceof Uint8Array ? `${bytes.length} bytes` : 'not a Uint8Array';
    throw new InvalidArgumentError(`instructions must be a Uint8Array of whole 8-byte instructions (${len})`);
  }
  const labels = new Map(options.functions ?? []);
  const out: string[] = [];
  const n = bytes.length / 8;
  for (let i = 0; i < n; i++) {
    const label = labels.get(i);
    if (label !== undefined) out.push(`${label}:`);
    const line = options.lines?.get(i);
    if (line) out.push(`    ; ${line.trim()}`);
    const insn = readInsn(bytes, i);
    const wide = insn.code === 0x18 && i + 1 < n;
    const text = disassembleInsn(insn, wide ? readInsn(bytes, i + 1) : undefined);
    const note = options.notes?.get(i);
    out.push(`${String(i).padStart(5)}: ${text}${note ? `    ; ${note}` : ''}`);
    if (wide) i++;
  }
  return out.join('\n');
}

const CORE_KIND_NAMES = [
  'field_byte_offset', 'field_byte_size', 'field_exists', 'field_signed', 'field_lshift_u64',
  'field_rshift_u64', 'type_id_local', 'type_id_target', 'type_exists', 'type_size',
  'enumval_exists', 'enumval_value', 'type_matches',
];

/** What a CO-RE relocation did at load, as far as the disassembly shows it. */
export interface AppliedCoreRelocation {
  readonly insn: number;
  readonly kind: string;
  readonly subject: string;
  readonly value: bigint;
  readonly poisoned: boolean;
}

function specNotes(spec: ProgramSpec): { lines: Map<number, string>; notes: Map<number, string> } {
  const lines = new Map<number, string>();
  for (const l of spec.lineInfo) if (l.line) lines.set(l.insnOff, `${l.line}  [${l.fileName.split('/').pop()}:${l.lineNum}]`);
  const notes = new Map<number, string>();
  for (const r of spec.references) notes.set(r.insn, r.kind === 'map' ? `map ${r.map}` : `${r.map}+${r.offset}`);
  for (const e of spec.externs) notes.set(e.insn, `extern ${e.name}${e.weak ? ' (weak)' : ''}`);
  return { lines, notes };
}

/**
 * The instructions a program was loaded with: after map, extern and CO-RE relocation against the
 * running kernel, each relocated instruction annotated with what it became.
 */
export function disassembleLoaded(instructions: Uint8Array, spec: ProgramSpec, core: readonly AppliedCoreRelocation[]): string {
  const { lines, notes } = specNotes(spec);
  for (const r of core) {
    notes.set(r.insn, r.poisoned ? `CO-RE ${r.kind} ${r.subject}: no match in this kernel (poisoned)` : `CO-RE ${r.kind} ${r.subject} = ${r.value}`);
  }
  return disassembleInstructions(instructions, { functions: spec.functions, lines, notes });
}

/**
 * A program spec's linked instructions, before load: map references and CO-RE relocations are
 * shown where they apply (the kernel-specific values are filled in at load).
 */
export function disassembleSpec(spec: ProgramSpec): string {
  const { lines, notes } = specNotes(spec);
  const btf = spec.btf;
  for (const r of spec.coreRelos) {
    let type = `type ${r.typeId}`;
    try { if (btf) type = btf.typeName(r.typeId); } catch { /* keep the id */ }
    notes.set(r.insnOff, `CO-RE ${CORE_KIND_NAMES[r.kind] ?? r.kind} ${type} access ${r.accessStr}`);
  }
  return disassembleInstructions(spec.instructions, { functions: spec.functions, lines, notes });
}
