/**
 * A small BPF assembler for instruction-level tests: build instructions by name, jump to labels,
 * and get the 8-byte-per-instruction bytes the kernel (or the emulator) loads.
 *
 *   const prog = assemble([
 *     asm.mov64('r0', 0),
 *     asm.jmp('eq', 'r1', 0, 'out'),
 *     asm.alu64('add', 'r0', 1),
 *     label('out'),
 *     asm.exit(),
 *   ]);
 */
import { ALU, ATOMIC, CLS, JMP, MODE, PSEUDO, SIZE, SRC_X, type RawInsn } from '../asm/isa.js';

/**
 * A BPF register: r0 (return value), r1-r5 (arguments), r6-r9 (callee-saved), r10 (frame pointer).
 */
export type Register = 'r0' | 'r1' | 'r2' | 'r3' | 'r4' | 'r5' | 'r6' | 'r7' | 'r8' | 'r9' | 'r10';
/** A register, or an immediate (a 32-bit signed integer). */
export type Operand = Register | number;
/** An ALU operation of {@link asm} (BPF_ADD, BPF_SUB, ...). */
export type AluOp = 'add' | 'sub' | 'mul' | 'div' | 'sdiv' | 'or' | 'and' | 'lsh' | 'rsh' | 'mod' | 'smod' | 'xor' | 'mov' | 'arsh';
/** A jump condition of {@link asm} (BPF_JEQ, BPF_JGT, ...; `s` prefix: signed). */
export type JmpCond = 'eq' | 'gt' | 'ge' | 'set' | 'ne' | 'sgt' | 'sge' | 'lt' | 'le' | 'slt' | 'sle';
/** A memory access size of {@link asm}: byte, half word, word, double word. */
export type MemSize = 'b' | 'h' | 'w' | 'dw';
/** An atomic operation of {@link asm} (BPF_ATOMIC with BPF_ADD, ..., BPF_XCHG, BPF_CMPXCHG). */
export type AtomicOp = 'add' | 'or' | 'and' | 'xor' | 'xchg' | 'cmpxchg';

/** An instruction whose jump offset may still name a label. */
export interface Insn extends RawInsn {
  target?: string;
  /** For `gotol` (JMP32 JA), the label goes into imm rather than off. */
  targetInImm?: boolean;
}
/** A jump target in an {@link assemble} listing, made by {@link label}. */
export interface Label {
  label: string;
}
/** One entry of an {@link assemble} listing: an instruction, a label, or a group of instructions. */
export type Item = Insn | Label | readonly Insn[];

const ALU_OPS: Record<AluOp, [number, number]> = {
  add: [ALU.ADD, 0], sub: [ALU.SUB, 0], mul: [ALU.MUL, 0], div: [ALU.DIV, 0], sdiv: [ALU.DIV, 1], or: [ALU.OR, 0],
  and: [ALU.AND, 0], lsh: [ALU.LSH, 0], rsh: [ALU.RSH, 0], mod: [ALU.MOD, 0], smod: [ALU.MOD, 1], xor: [ALU.XOR, 0],
  mov: [ALU.MOV, 0], arsh: [ALU.ARSH, 0],
};
const JMP_OPS: Record<JmpCond, number> = {
  eq: JMP.JEQ, gt: JMP.JGT, ge: JMP.JGE, set: JMP.JSET, ne: JMP.JNE, sgt: JMP.JSGT, sge: JMP.JSGE, lt: JMP.JLT,
  le: JMP.JLE, slt: JMP.JSLT, sle: JMP.JSLE,
};
const SIZES: Record<MemSize, number> = { b: SIZE.B, h: SIZE.H, w: SIZE.W, dw: SIZE.DW };
const ATOMICS: Record<AtomicOp, number> = {
  add: ATOMIC.ADD, or: ATOMIC.OR, and: ATOMIC.AND, xor: ATOMIC.XOR, xchg: ATOMIC.XCHG, cmpxchg: ATOMIC.CMPXCHG,
};

function regNo(r: Register): number {
  const n = Number(r.slice(1));
  if (!/^r(10|[0-9])$/.test(r)) throw new RangeError(`not a register: ${r}`);
  return n;
}

function insn(code: number, dst: number, src: number, off: number, imm: number): Insn {
  return { code, dst, src, off, imm: imm | 0 };
}

function alu(cls: number, op: AluOp, dst: Register, src: Operand): Insn {
  const [code, off] = ALU_OPS[op];
  if (typeof src === 'number') return insn(cls | code, regNo(dst), 0, off, src);
  return insn(cls | code | SRC_X, regNo(dst), regNo(src), off, 0);
}

function jump(cls: number, cond: JmpCond, dst: Register, src: Operand, target: number | string): Insn {
  const code = JMP_OPS[cond];
  const base = typeof src === 'number' ? insn(cls | code, regNo(dst), 0, 0, src) : insn(cls | code | SRC_X, regNo(dst), regNo(src), 0, 0);
  if (typeof target === 'string') base.target = target;
  else base.off = target;
  return base;
}

/** A label named `name`: place it in a listing and jump to it by name. */
export function label(name: string): Label {
  return { label: name };
}

/**
 * Instruction builders for {@link assemble}: `asm.mov('r0', 0)`, `asm.ldx('w', 'r2', 'r1', 0)`,
 * `asm.jmp('eq', 'r0', 0, 'out')`, `asm.call(1)`, `asm.exit()`, ...
 */
export const asm = {
  alu64: (op: AluOp, dst: Register, src: Operand): Insn => alu(CLS.ALU64, op, dst, src),
  alu32: (op: AluOp, dst: Register, src: Operand): Insn => alu(CLS.ALU, op, dst, src),
  mov64: (dst: Register, src: Operand): Insn => alu(CLS.ALU64, 'mov', dst, src),
  mov32: (dst: Register, src: Operand): Insn => alu(CLS.ALU, 'mov', dst, src),
  neg64: (dst: Register): Insn => insn(CLS.ALU64 | ALU.NEG, regNo(dst), 0, 0, 0),
  neg32: (dst: Register): Insn => insn(CLS.ALU | ALU.NEG, regNo(dst), 0, 0, 0),
  /** dst = (s8/s16/s32) src, sign-extended to 64 bits. */
  movsx64: (dst: Register, src: Register, bits: 8 | 16 | 32): Insn => insn(CLS.ALU64 | ALU.MOV | SRC_X, regNo(dst), regNo(src), bits, 0),
  /** w_dst = (s8/s16) w_src, upper half zeroed. */
  movsx32: (dst: Register, src: Register, bits: 8 | 16): Insn => insn(CLS.ALU | ALU.MOV | SRC_X, regNo(dst), regNo(src), bits, 0),
  le: (dst: Register, bits: 16 | 32 | 64): Insn => insn(CLS.ALU | ALU.END, regNo(dst), 0, 0, bits),
  be: (dst: Register, bits: 16 | 32 | 64): Insn => insn(CLS.ALU | ALU.END | SRC_X, regNo(dst), 0, 0, bits),
  bswap: (dst: Register, bits: 16 | 32 | 64): Insn => insn(CLS.ALU64 | ALU.END, regNo(dst), 0, 0, bits),
  /** ld_imm64: two instruction slots. */
  ld64: (dst: Register, value: bigint | number): Insn[] => {
    const v = BigInt.asUintN(64, BigInt(value));
    return [insn(0x18, regNo(dst), 0, 0, Number(v & 0xffffffffn)), insn(0, 0, 0, 0, Number(v >> 32n))];
  },
  ldMapFd: (dst: Register, fd: number): Insn[] => [insn(0x18, regNo(dst), PSEUDO.MAP_FD, 0, fd), insn(0, 0, 0, 0, 0)],
  ldMapValue: (dst: Register, fd: number, offset: number): Insn[] => [insn(0x18, regNo(dst), PSEUDO.MAP_VALUE, 0, fd), insn(0, 0, 0, 0, offset)],
  /** The address of a BPF function (a bpf_loop callback), by label. */
  ldFunc: (dst: Register, target: string): Insn[] => [{ ...insn(0x18, regNo(dst), PSEUDO.FUNC, 0, 0), target, targetInImm: true }, insn(0, 0, 0, 0, 0)],
  ldx: (size: MemSize, dst: Register, src: Register, off: number): Insn => insn(CLS.LDX | MODE.MEM | SIZES[size], regNo(dst), regNo(src), off, 0),
  /** Sign-extending load (b, h or w). */
  ldxs: (size: 'b' | 'h' | 'w', dst: Register, src: Register, off: number): Insn => insn(CLS.LDX | MODE.MEMSX | SIZES[size], regNo(dst), regNo(src), off, 0),
  st: (size: MemSize, dst: Register, off: number, imm: number): Insn => insn(CLS.ST | MODE.MEM | SIZES[size], regNo(dst), 0, off, imm),
  stx: (size: MemSize, dst: Register, off: number, src: Register): Insn => insn(CLS.STX | MODE.MEM | SIZES[size], regNo(dst), regNo(src), off, 0),
  atomic: (size: 'w' | 'dw', op: AtomicOp, dst: Register, off: number, src: Register, fetch = false): Insn => {
    const imm = ATOMICS[op] | (fetch && op !== 'xchg' && op !== 'cmpxchg' ? ATOMIC.FETCH : 0);
    return insn(CLS.STX | MODE.ATOMIC | SIZES[size], regNo(dst), regNo(src), off, imm);
  },
  jmp: (cond: JmpCond, dst: Register, src: Operand, target: number | string): Insn => jump(CLS.JMP, cond, dst, src, target),
  jmp32: (cond: JmpCond, dst: Register, src: Operand, target: number | string): Insn => jump(CLS.JMP32, cond, dst, src, target),
  ja: (target: number | string): Insn => {
    const i = insn(CLS.JMP | JMP.JA, 0, 0, 0, 0);
    if (typeof target === 'string') i.target = target;
    else i.off = target;
    return i;
  },
  /** JMP32 JA: a jump whose 32-bit offset sits in imm. */
  gotol: (target: number | string): Insn => {
    const i: Insn = { ...insn(CLS.JMP32 | JMP.JA, 0, 0, 0, 0), targetInImm: true };
    if (typeof target === 'string') i.target = target;
    else i.imm = target;
    return i;
  },
  call: (helper: number): Insn => insn(CLS.JMP | JMP.CALL, 0, 0, 0, helper),
  /** A BPF-to-BPF call to a label (or a relative offset). */
  callLocal: (target: number | string): Insn => {
    const i: Insn = { ...insn(CLS.JMP | JMP.CALL, 0, 1, 0, 0), targetInImm: true };
    if (typeof target === 'string') i.target = target;
    else i.imm = target;
    return i;
  },
  exit: (): Insn => insn(CLS.JMP | JMP.EXIT, 0, 0, 0, 0),
  /** Any encoding, e.g. to check that an invalid opcode is refused. */
  raw: (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => insn(code, dst, src, off, imm),
};

/** Resolves labels and encodes the instructions, 8 bytes each (little-endian, as on x86_64). */
export function assemble(items: readonly Item[]): Uint8Array {
  const flat: Insn[] = [];
  const labels = new Map<string, number>();
  for (const item of items) {
    if ('label' in item) {
      if (labels.has(item.label)) throw new Error(`label ${item.label} defined twice`);
      labels.set(item.label, flat.length);
    } else if (Array.isArray(item)) {
      for (const i of item as readonly Insn[]) flat.push({ ...i });
    } else {
      flat.push({ ...(item as Insn) });
    }
  }
  const out = new Uint8Array(flat.length * 8);
  const view = new DataView(out.buffer);
  flat.forEach((i, k) => {
    if (i.target !== undefined) {
      const at = labels.get(i.target);
      if (at === undefined) throw new Error(`no label ${i.target}`);
      const rel = at - k - 1;
      if (i.targetInImm) i.imm = rel;
      else i.off = rel;
    }
    out[k * 8] = i.code;
    out[k * 8 + 1] = (i.src << 4) | i.dst;
    view.setInt16(k * 8 + 2, i.off, true);
    view.setInt32(k * 8 + 4, i.imm, true);
  });
  return out;
}
