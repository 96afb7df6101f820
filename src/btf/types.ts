/**
 * The BTF type model. Types refer to each other by id (an index into `Btf.types`, 0 being void),
 * exactly as the wire format does: this keeps cyclic graphs (a struct pointing at itself) plain
 * data, makes marshalling back to bytes a direct walk, and lets the kernel's own ids be used as-is.
 */

export const BTF_KIND = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** A function's or variable's linkage in BTF (BTF_FUNC_STATIC/GLOBAL/EXTERN, BTF_VAR_*). */
export type Linkage = 'static' | 'global' | 'extern';

/** Type id 0: void. */
export interface BtfVoid { readonly kind: 'void'; readonly id: 0; readonly name: '' }
/** BTF_KIND_INT: an integer, char or bool of `size` bytes. */
export interface BtfInt {
  readonly kind: 'int'; readonly id: number; readonly name: string;
  readonly size: number;
  readonly signed: boolean; readonly char: boolean; readonly bool: boolean;
  /** BTF_INT_OFFSET and BTF_INT_BITS of the encoding word. */
  readonly bitOffset: number; readonly bits: number;
}
/** BTF_KIND_PTR: a pointer to type `type`. */
export interface BtfPtr { readonly kind: 'ptr'; readonly id: number; readonly name: string; readonly type: number }
/** BTF_KIND_ARRAY: `nelems` elements of type `type`. */
export interface BtfArray {
  readonly kind: 'array'; readonly id: number; readonly name: string;
  readonly type: number; readonly indexType: number; readonly nelems: number;
}
/** One member of a struct or union. */
export interface BtfMember {
  readonly name: string; readonly type: number;
  /** Offset of the member from the start of the struct, in bits. */
  readonly bitOffset: number;
  /** Non-zero for a bitfield (from kind_flag encoding), else 0. */
  readonly bitfieldSize: number;
}
/** BTF_KIND_STRUCT or BTF_KIND_UNION, with its members. */
export interface BtfStruct {
  readonly kind: 'struct' | 'union'; readonly id: number; readonly name: string;
  readonly size: number; readonly members: readonly BtfMember[];
  /** The kind_flag bit: member offsets carry bitfield sizes. Kept so marshal round-trips. */
  readonly kindFlag: boolean;
}
/** One enumerator of an enum. */
export interface BtfEnumValue { readonly name: string; readonly value: bigint }
/** BTF_KIND_ENUM or BTF_KIND_ENUM64, with its enumerators. */
export interface BtfEnum {
  readonly kind: 'enum' | 'enum64'; readonly id: number; readonly name: string;
  readonly size: number; readonly signed: boolean; readonly values: readonly BtfEnumValue[];
}
/** BTF_KIND_FWD: a struct or union declared but not defined here. */
export interface BtfFwd { readonly kind: 'fwd'; readonly id: number; readonly name: string; readonly fwdKind: 'struct' | 'union' }
/** A typedef, a qualifier (volatile, const, restrict) or a type tag, naming or qualifying type `type`. */
export interface BtfQualifier {
  readonly kind: 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag';
  readonly id: number; readonly name: string; readonly type: number;
}
/** BTF_KIND_FUNC: a function (a BPF program or subprogram, or a kernel function), of prototype `type`. */
export interface BtfFunc { readonly kind: 'func'; readonly id: number; readonly name: string; readonly type: number; readonly linkage: Linkage }
/** One parameter of a function prototype. */
export interface BtfParam { readonly name: string; readonly type: number }
/** BTF_KIND_FUNC_PROTO: a return type and parameters. */
export interface BtfFuncProto {
  readonly kind: 'func_proto'; readonly id: number; readonly name: string;
  readonly returnType: number; readonly params: readonly BtfParam[];
}
/** BTF_KIND_VAR: a global variable of type `type`. */
export interface BtfVar { readonly kind: 'var'; readonly id: number; readonly name: string; readonly type: number; readonly linkage: Linkage }
/** Where one variable sits in a data section. */
export interface BtfVarSecinfo { readonly type: number; readonly offset: number; readonly size: number }
/** BTF_KIND_DATASEC: a data section (.data, .bss, .rodata, .maps, ...) and its variables. */
export interface BtfDatasec {
  readonly kind: 'datasec'; readonly id: number; readonly name: string;
  readonly size: number; readonly vars: readonly BtfVarSecinfo[];
}
/** BTF_KIND_FLOAT: a floating-point type of `size` bytes. */
export interface BtfFloat { readonly kind: 'float'; readonly id: number; readonly name: string; readonly size: number }
/** BTF_KIND_DECL_TAG: a `btf_decl_tag` attribute on type `type` (or on its member/parameter `componentIdx`, -1 for the type itself). */
export interface BtfDeclTag {
  readonly kind: 'decl_tag'; readonly id: number; readonly name: string;
  readonly type: number; readonly componentIdx: number;
}

/** One BTF type, told apart by `kind`. */
export type BtfType =
  | BtfVoid | BtfInt | BtfPtr | BtfArray | BtfStruct | BtfEnum | BtfFwd | BtfQualifier
  | BtfFunc | BtfFuncProto | BtfVar | BtfDatasec | BtfFloat | BtfDeclTag;

/** The `kind` of a {@link BtfType}: 'int', 'ptr', 'struct', ... */
export type BtfKindName = BtfType['kind'];

/** One `.BTF.ext` func_info record: the instruction offset (in instructions) of a function. */
export interface FuncInfo { readonly insnOff: number; readonly typeId: number }
/** One `.BTF.ext` line_info record. `insnOff` counts instructions, not bytes. */
export interface LineInfo {
  readonly insnOff: number; readonly fileName: string; readonly line: string;
  readonly lineNum: number; readonly lineCol: number;
  /** Raw string offsets, kept so the record can be written back against the same string table. */
  readonly fileNameOff: number; readonly lineOff: number;
}
/** bpf_core_relo_kind, the kinds of CO-RE relocation the compiler emits. */
export const CORE_RELO_KIND = {
  FIELD_BYTE_OFFSET: 0,
  FIELD_BYTE_SIZE: 1,
  FIELD_EXISTS: 2,
  FIELD_SIGNED: 3,
  FIELD_LSHIFT_U64: 4,
  FIELD_RSHIFT_U64: 5,
  TYPE_ID_LOCAL: 6,
  TYPE_ID_TARGET: 7,
  TYPE_EXISTS: 8,
  TYPE_SIZE: 9,
  ENUMVAL_EXISTS: 10,
  ENUMVAL_VALUE: 11,
  TYPE_MATCHES: 12,
} as const;
/** One `.BTF.ext` CO-RE relocation record. `insnOff` counts instructions, not bytes. */
export interface CoreRelo {
  readonly insnOff: number; readonly typeId: number;
  /** Access string, e.g. "0:1:2". */
  readonly accessStr: string;
  readonly kind: number;
}
/** `.BTF.ext` grouped by ELF section name. */
export interface BtfExt {
  readonly funcInfo: ReadonlyMap<string, readonly FuncInfo[]>;
  readonly lineInfo: ReadonlyMap<string, readonly LineInfo[]>;
  readonly coreRelos: ReadonlyMap<string, readonly CoreRelo[]>;
}
