/**
 * What a program will be, before it is loaded: its linked instructions (the entry function followed
 * by every BPF function it calls), what they reference (maps, global data), and the BTF metadata
 * that goes with them. Produced by the ELF reader; pure data.
 */
import type { Btf } from '../btf/btf.js';
import type { CoreRelo, FuncInfo, LineInfo } from '../btf/types.js';
import type { AttachType, ProgType } from '../abi/constants.js';
import type { AttachKind } from './section-names.js';

/** An ld_imm64 that must receive a map's fd (kind 'map') or the address of a map value ('value'). */
export interface MapReference {
  readonly insn: number;
  readonly kind: 'map' | 'value';
  readonly map: string;
  /** Byte offset into the value, for 'value' references. */
  readonly offset: number;
}

/** An instruction that refers to an extern (`__kconfig`, `__ksym`), resolved at load time. */
export interface ExternReference {
  readonly insn: number;
  readonly name: string;
  /** `__weak`: resolves to 0 when the kernel lacks it, instead of failing the load. */
  readonly weak: boolean;
}

/**
 * A program as the object declares it: its section, type and attach type (from the section name),
 * instructions, relocations, BTF function and line info, license.
 */
export interface ProgramSpec {
  /** The C function's name. */
  readonly name: string;
  /** The ELF section, as written (a leading '?' included). */
  readonly sectionName: string;
  type: ProgType;
  attachType: AttachType | undefined;
  /** What the section name says to attach to, e.g. "syscalls/sys_enter_execve". */
  attachTarget: string;
  /** How auto-attach hooks this program, when the section says. */
  readonly attachKind: AttachKind | undefined;
  /** False for '?' sections: `Collection.load` skips them unless asked. */
  autoload: boolean;
  sleepable: boolean;
  /** BPF_F_* program flags (e.g. BPF_F_XDP_HAS_FRAGS, BPF_F_SLEEPABLE). */
  flags: number;
  license: string;
  kernelVersion: number;
  /** Linked instructions, 8 bytes each. */
  instructions: Uint8Array;
  readonly references: readonly MapReference[];
  readonly externs: readonly ExternReference[];
  readonly btf: Btf | undefined;
  /** func_info, line_info and CO-RE records with offsets into `instructions`. */
  readonly funcInfo: readonly FuncInfo[];
  readonly lineInfo: readonly LineInfo[];
  readonly coreRelos: readonly CoreRelo[];
  /** Where each linked function starts: [instruction index, function name]. */
  readonly functions: readonly (readonly [number, string])[];
}

export function copyProgramSpec(p: ProgramSpec): ProgramSpec {
  return { ...p, instructions: new Uint8Array(p.instructions) };
}
