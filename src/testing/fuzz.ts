/**
 * Random BPF programs for differential testing: straight-line ALU code (64- and 32-bit, every
 * operation including signed division, movsx and byte swaps), forward conditional jumps over one
 * instruction (every condition, JMP and JMP32), and loads, stores and atomics on a 64-byte stack
 * area. Every program passes the kernel's verifier: it looks up element 0 of an array map whose
 * value (136 bytes) receives the nine working registers (r0-r5, r7-r9) and the stack area at the
 * end, and returns r0. Run one in the kernel and in the emulator and compare the two map values.
 */
import { asm, label, type AluOp, type Item, type JmpCond, type Register } from './asm.js';

/** A small deterministic PRNG (mulberry32): numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FUZZ_REGS: readonly Register[] = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r7', 'r8', 'r9'];
/** Bytes of the result value: 9 registers, then the 64-byte stack area. */
export const FUZZ_VALUE_SIZE = FUZZ_REGS.length * 8 + 64;

export interface FuzzOptions {
  /** Random instructions after the register set-up (default 40). */
  length?: number;
  /** Include stack loads, stores and atomics (default true). */
  memory?: boolean;
  /** Include conditional jumps (default true). */
  jumps?: boolean;
  /**
   * Include cpu v4 instructions (Linux 6.6: sdiv/smod, movsx, unconditional bswap, sign-extending
   * loads; default true). Off for kernels whose verifier refuses them (see haveCpuV4()).
   */
  cpuV4?: boolean;
}

const ALU_OPS: readonly AluOp[] = ['add', 'sub', 'mul', 'div', 'sdiv', 'or', 'and', 'lsh', 'rsh', 'mod', 'smod', 'xor', 'mov', 'arsh'];
const CONDS: readonly JmpCond[] = ['eq', 'gt', 'ge', 'set', 'ne', 'sgt', 'sge', 'lt', 'le', 'slt', 'sle'];

/** Interesting 64-bit values: edges of every width, and random ones. */
function value(rnd: () => number): bigint {
  const edges = [0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
    0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 0xfffffffffffffffen];
  const r = rnd();
  if (r < 0.35) return edges[Math.floor(rnd() * edges.length)]!;
  if (r < 0.5) return BigInt(Math.floor(rnd() * 64)) - 32n & 0xffffffffffffffffn;
  return (BigInt(Math.floor(rnd() * 2 ** 32)) << 32n) | BigInt(Math.floor(rnd() * 2 ** 32));
}

function imm(rnd: () => number): number {
  const r = rnd();
  if (r < 0.3) return [0, 1, -1, 2, 0x7fffffff, -0x80000000, 0xff, 0xffff, 31, 32, 63][Math.floor(rnd() * 11)]!;
  if (r < 0.6) return Math.floor(rnd() * 64) - 32;
  return Math.floor(rnd() * 2 ** 32) | 0;
}

/**
 * The random part alone: registers r0-r5 and r7-r9 set to random values, then random instructions
 * that only touch those registers and the 64 bytes below the frame pointer (which must be zero
 * beforehand). Ends without exit.
 */
export function fuzzBody(rnd: () => number, options: FuzzOptions = {}): Item[] {
  const length = options.length ?? 40;
  const memory = options.memory ?? true;
  const jumps = options.jumps ?? true;
  const v4 = options.cpuV4 ?? true;
  const aluOps = v4 ? ALU_OPS : ALU_OPS.filter((op) => op !== 'sdiv' && op !== 'smod');
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const items: Item[] = [];
  for (const r of FUZZ_REGS) items.push(asm.ld64(r, value(rnd)));
  let skip = 0;
  for (let n = 0; n < length; n++) {
    const kind = rnd();
    const dst = pick(FUZZ_REGS);
    const src = pick(FUZZ_REGS);
    const is64 = rnd() < 0.55;
    if (jumps && kind < 0.12) {
      const target = `skip${skip++}`;
      const operand = rnd() < 0.5 ? src : imm(rnd);
      items.push((is64 ? asm.jmp : asm.jmp32)(pick(CONDS), dst, operand, target));
      items.push(asm.alu64('add', pick(FUZZ_REGS), imm(rnd)));
      items.push(label(target));
      continue;
    }
    if (memory && kind < 0.3) {
      const sizes = ['b', 'h', 'w', 'dw'] as const;
      const size = pick(sizes);
      const width = { b: 1, h: 2, w: 4, dw: 8 }[size];
      const off = -64 + Math.floor(rnd() * (64 / width)) * width;
      const m = rnd();
      if (m < 0.3) items.push(asm.stx(size, 'r10', off, src));
      else if (m < 0.45) items.push(asm.st(size, 'r10', off, imm(rnd)));
      else if (m < 0.7) items.push(asm.ldx(size, dst, 'r10', off));
      else if (m < 0.8 && size !== 'dw') items.push(v4 ? asm.ldxs(size, dst, 'r10', off) : asm.ldx(size, dst, 'r10', off));
      else {
        const aw = rnd() < 0.5 ? 'w' : 'dw';
        const aoff = aw === 'w' ? -64 + Math.floor(rnd() * 16) * 4 : -64 + Math.floor(rnd() * 8) * 8;
        const op = pick(['add', 'or', 'and', 'xor', 'xchg', 'cmpxchg'] as const);
        items.push(asm.atomic(aw, op, 'r10', aoff, src, rnd() < 0.5));
      }
      continue;
    }
    if (kind < 0.36) {
      const u = rnd();
      if (u < 0.3) items.push(is64 ? asm.neg64(dst) : asm.neg32(dst));
      else if (u < 0.55 && v4) items.push(is64 ? asm.movsx64(dst, src, pick([8, 16, 32] as const)) : asm.movsx32(dst, src, pick([8, 16] as const)));
      else if (u < 0.7 && v4) items.push(asm.bswap(dst, pick([16, 32, 64] as const)));
      else if (u < 0.85) items.push(asm.le(dst, pick([16, 32, 64] as const)));
      else items.push(asm.be(dst, pick([16, 32, 64] as const)));
      continue;
    }
    const op = pick(aluOps);
    if (rnd() < 0.5) {
      items.push((is64 ? asm.alu64 : asm.alu32)(op, dst, src));
    } else {
      let k = imm(rnd);
      if (op === 'lsh' || op === 'rsh' || op === 'arsh') k = Math.floor(rnd() * (is64 ? 64 : 32));
      if ((op === 'div' || op === 'sdiv' || op === 'mod' || op === 'smod') && k === 0) k = 3;
      items.push((is64 ? asm.alu64 : asm.alu32)(op, dst, k));
    }
  }
  return items;
}

/** A whole program (see the module's description) around `body` (fuzzBody's by default). */
export function fuzzProgram(rnd: () => number, mapFd: number, options: FuzzOptions = {}, body: Item[] = fuzzBody(rnd, options)): Item[] {
  const items: Item[] = [
    asm.st('w', 'r10', -4, 0),
    asm.mov64('r2', 'r10'),
    asm.alu64('add', 'r2', -4),
    asm.ldMapFd('r1', mapFd),
    asm.call(1),
    asm.jmp('ne', 'r0', 0, 'go'),
    asm.exit(),
    label('go'),
    asm.mov64('r6', 'r0'),
  ];
  for (let o = -64; o < 0; o += 8) items.push(asm.st('dw', 'r10', o, 0));
  items.push(...body);
  FUZZ_REGS.forEach((r, i) => items.push(asm.stx('dw', 'r6', i * 8, r)));
  for (let i = 0; i < 8; i++) {
    items.push(asm.ldx('dw', 'r1', 'r10', -64 + i * 8));
    items.push(asm.stx('dw', 'r6', FUZZ_REGS.length * 8 + i * 8, 'r1'));
  }
  items.push(asm.exit());
  return items;
}
