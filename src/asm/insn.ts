/**
 * BPF instructions as the kernel reads them: 8 bytes each (`struct bpf_insn`: opcode, dst/src
 * register nibbles, s16 offset, s32 immediate), with `ld_imm64` taking two slots. The loader works
 * on the raw bytes in place; these helpers name the fields so the relocation code reads like the
 * uapi header.
 */
import { bpf_insn } from '../abi/uapi.js';

export const INSN_SIZE = bpf_insn.$size;
/** struct bpf_insn, from the generated layout: the byte holding dst_reg (low nibble) and src_reg (high). */
const REGS = bpf_insn.$bits.dst_reg[0] >> 3;
const SRC_SHIFT = bpf_insn.$bits.src_reg[0] - bpf_insn.$bits.dst_reg[0];
const DST_MASK = (1 << bpf_insn.$bits.dst_reg[1]) - 1;
const OFF = bpf_insn.off;
const IMM = bpf_insn.imm;

export const BPF_CLASS = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, JMP32: 0x06, ALU64: 0x07 } as const;
export const BPF_CALL = 0x80;
export const BPF_EXIT = 0x90;
export const BPF_JA = 0x00;
export const BPF_K = 0x00;
export const BPF_X = 0x08;
export const BPF_IMM = 0x00;
export const BPF_DW = 0x18;

/** Opcode of `ld_imm64` (BPF_LD | BPF_IMM | BPF_DW). */
export const OP_LD_IMM64 = 0x18;
/** Opcode of `call` (BPF_JMP | BPF_CALL). */
export const OP_CALL = 0x85;
export const OP_EXIT = 0x95;

/** src_reg values that give ld_imm64 and call their special meanings. */
export const BPF_PSEUDO_MAP_FD = 1;
export const BPF_PSEUDO_MAP_VALUE = 2;
export const BPF_PSEUDO_BTF_ID = 3;
export const BPF_PSEUDO_FUNC = 4;
export const BPF_PSEUDO_MAP_IDX = 5;
export const BPF_PSEUDO_MAP_IDX_VALUE = 6;
export const BPF_PSEUDO_CALL = 1;
export const BPF_PSEUDO_KFUNC_CALL = 2;

/** A view over instruction bytes (host byte order, which is how BPF objects for this host are built). */
export class Insns {
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.byteLength / INSN_SIZE;
  }

  op(i: number): number {
    return this.bytes[i * INSN_SIZE]!;
  }

  dst(i: number): number {
    return this.bytes[i * INSN_SIZE + REGS]! & DST_MASK;
  }

  src(i: number): number {
    return this.bytes[i * INSN_SIZE + REGS]! >> SRC_SHIFT;
  }

  setSrc(i: number, src: number): void {
    const b = i * INSN_SIZE + REGS;
    this.bytes[b] = (this.bytes[b]! & DST_MASK) | (src << SRC_SHIFT);
  }

  off(i: number): number {
    return this.#view.getInt16(i * INSN_SIZE + OFF, true);
  }

  setOff(i: number, v: number): void {
    this.#view.setInt16(i * INSN_SIZE + OFF, v, true);
  }

  imm(i: number): number {
    return this.#view.getInt32(i * INSN_SIZE + IMM, true);
  }

  setImm(i: number, v: number): void {
    this.#view.setInt32(i * INSN_SIZE + IMM, v | 0, true);
  }

  isLdImm64(i: number): boolean {
    return this.op(i) === OP_LD_IMM64;
  }

  isCall(i: number): boolean {
    return this.op(i) === OP_CALL;
  }

  /** A call to another BPF function (as opposed to a helper or kfunc). */
  isPseudoCall(i: number): boolean {
    return this.op(i) === OP_CALL && this.src(i) === BPF_PSEUDO_CALL;
  }

  /** ld_imm64 loading the address of a BPF function (callbacks of bpf_loop and friends). */
  isPseudoFunc(i: number): boolean {
    return this.op(i) === OP_LD_IMM64 && this.src(i) === BPF_PSEUDO_FUNC;
  }

  /** Turns instruction i into a call of an invalid helper, as libbpf does to poison it. */
  poison(i: number, marker: number): void {
    this.bytes[i * INSN_SIZE] = OP_CALL;
    this.bytes[i * INSN_SIZE + REGS] = 0;
    this.setOff(i, 0);
    this.setImm(i, marker);
  }
}
