/**
 * Which context bytes a program touches, found without running it: a small data-flow pass that
 * follows the context pointer (r1 at entry) through moves, constant adds, stack spills and
 * BPF-to-BPF call arguments, and records every load and store through it with its constant
 * offset. The kernel's verifier keeps the same fact (prog->aux->max_ctx_offset): a raw_tracepoint
 * test run whose ctx_in is shorter than what the program reads is refused with EINVAL before
 * anything runs. Accesses through a pointer the pass cannot follow are not recorded.
 */
import type { Code } from './loader.js';

export interface CtxAccess {
  pc: number;
  /** The register used and the constant already added to the context pointer in it (the verifier refuses a non-zero one). */
  reg: number;
  base: number;
  /** Offset into the context and size, in bytes. */
  off: number;
  size: number;
  write: boolean;
  /** A BPF_ST: a store of an immediate (which kernels before 6.3 refuse into the context). */
  imm: boolean;
}

const NONE = -0x80000000;
const SIZES = [4, 2, 1, 8];

interface State {
  regs: Int32Array;
  /** Context pointers spilled to the stack, by frame-pointer offset (8-byte slots). */
  slots: Map<number, number>;
}

function copy(s: State): State {
  return { regs: s.regs.slice(), slots: new Map(s.slots) };
}

/** Merges `b` into `a`; true when `a` changed. */
function merge(a: State, b: State): boolean {
  let changed = false;
  for (let i = 0; i < 11; i++) {
    if (a.regs[i] !== NONE && a.regs[i] !== b.regs[i]) {
      a.regs[i] = NONE;
      changed = true;
    }
  }
  for (const [k, v] of a.slots) {
    if (b.slots.get(k) !== v) {
      a.slots.delete(k);
      changed = true;
    }
  }
  return changed;
}

export function ctxAccesses(code: Code): CtxAccess[] {
  const { n, op, dst, src, off, imm } = code;
  const seen = new Map<string, CtxAccess>();
  const at: (State | undefined)[] = new Array(n);
  const work: number[] = [];
  const enter = (pc: number, s: State) => {
    if (pc < 0 || pc >= n) return;
    const cur = at[pc];
    if (!cur) {
      at[pc] = copy(s);
      work.push(pc);
    } else if (merge(cur, s)) work.push(pc);
  };
  const start: State = { regs: new Int32Array(11).fill(NONE), slots: new Map() };
  start.regs[1] = 0;
  enter(0, start);
  const record = (pc: number, reg: number, base: number, size: number, write: boolean) => {
    const a = { pc, reg, base, off: base + off[pc]!, size, write, imm: (op[pc]! & 7) === 0x02 };
    seen.set(`${pc}:${a.off}:${size}:${write}`, a);
  };
  while (work.length) {
    const pc = work.pop()!;
    const s = copy(at[pc]!);
    const r = s.regs;
    const o = op[pc]!;
    const cls = o & 7;
    const d = dst[pc]!;
    const sr = src[pc]!;
    let next = pc + 1;
    switch (cls) {
      case 0x07: case 0x04: { // ALU64, ALU
        const code = o & 0xf0;
        const isReg = (o & 8) !== 0;
        if (cls === 0x07 && code === 0xb0) r[d] = isReg && off[pc] === 0 ? r[sr]! : NONE; // mov (not movsx)
        else if (cls === 0x07 && !isReg && code === 0x00 && r[d] !== NONE) r[d] = r[d]! + imm[pc]!;
        else if (cls === 0x07 && !isReg && code === 0x10 && r[d] !== NONE) r[d] = r[d]! - imm[pc]!;
        else r[d] = NONE;
        break;
      }
      case 0x01: { // LDX
        const size = SIZES[(o >> 3) & 3]!;
        if (r[sr] !== NONE) record(pc, sr, r[sr]!, size, false);
        r[d] = sr === 10 && size === 8 ? s.slots.get(off[pc]!) ?? NONE : NONE;
        break;
      }
      case 0x02: case 0x03: { // ST, STX (and atomics)
        const size = SIZES[(o >> 3) & 3]!;
        if (r[d] !== NONE) record(pc, d, r[d]!, size, true);
        if (d === 10) {
          for (const k of [...s.slots.keys()]) if (k < off[pc]! + size && off[pc]! < k + 8) s.slots.delete(k);
          if (cls === 0x03 && (o & 0xe0) === 0x60 && size === 8 && r[sr] !== NONE) s.slots.set(off[pc]!, r[sr]!);
        }
        if ((o & 0xe0) === 0xc0) { // atomics with fetch write their source register (cmpxchg r0)
          r[sr] = NONE;
          r[0] = NONE;
        }
        break;
      }
      case 0x00: { // ld_imm64, LD_ABS/IND
        if (o === 0x18) {
          r[d] = NONE;
          next = pc + 2;
        } else for (let i = 0; i <= 5; i++) r[i] = NONE;
        break;
      }
      case 0x05: case 0x06: { // JMP, JMP32
        const code = o & 0xf0;
        if (code === 0x90) { // exit
          next = -1;
          break;
        }
        if (code === 0x80) { // call
          if (sr === 1) enter(pc + imm[pc]! + 1, { regs: Int32Array.from(r, (v, i) => (i >= 1 && i <= 5 ? v : NONE)), slots: new Map() });
          for (let i = 0; i <= 5; i++) r[i] = NONE;
          break;
        }
        if (code === 0x00) { // ja (JMP32 ja takes imm)
          next = pc + (cls === 0x06 ? imm[pc]! : off[pc]!) + 1;
          break;
        }
        enter(pc + off[pc]! + 1, s);
        break;
      }
    }
    if (next >= 0) enter(next, s);
  }
  return [...seen.values()].sort((a, b) => a.pc - b.pc);
}

/** prog->aux->max_ctx_offset: the end of the furthest context access. */
export function maxCtxOffset(accesses: readonly CtxAccess[]): number {
  let m = 0;
  for (const a of accesses) m = Math.max(m, a.off + a.size);
  return m;
}
