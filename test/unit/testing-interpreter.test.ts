/**
 * The emulator's interpreter, instruction by instruction, without root or the native addon. Random
 * programs run against a reference model written here from the instruction-set document with
 * BigInt arithmetic (nothing shared with the interpreter), and the edge cases the document spells
 * out (division by zero, INT_MIN / -1, shift masking, sign extension, byte swaps, atomics) are
 * checked against values worked out by hand. Then calls, tail calls, bpf_loop, the context, and
 * the faults that stop a run.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EmulatedKernel, EmulatorFault, asm, assemble, label, loadAssembly, useEmulatedKernel, type Item } from '../../src/testing/index.js';
import { FUZZ_REGS, FUZZ_VALUE_SIZE, fuzzBody, fuzzProgram, mulberry32 } from '../../src/testing/fuzz.js';
import { readInsn } from '../../src/asm/isa.js';
import { BpfMap } from '../../src/objects/map.js';
import type { Program } from '../../src/objects/program.js';
import { setNative } from '../../src/sys/native.js';
import { NotSupportedError, VerifierError } from '../../src/errors.js';
import type { MapSpec } from '../../src/spec/collection-spec.js';
import type { ProgType } from '../../src/abi/constants.js';

const kernel = useEmulatedKernel();

function mapSpec(type: MapSpec['type'], keySize: number, valueSize: number, maxEntries: number, flags = 0): MapSpec {
  return {
    name: 'm', type, keySize, valueSize, maxEntries, flags, numaNode: 0, mapExtra: 0n, pinning: 'none', btf: undefined,
    keyTypeId: 0, valueTypeId: 0, innerMap: undefined, contents: [], data: undefined, freeze: false, section: '',
  };
}

function loadRaw(items: readonly Item[], type: ProgType = 'xdp', license = 'GPL'): Program {
  return loadAssembly(items, { type, license, name: 'test' });
}

const PKT = new Uint8Array(64);

/** Runs `items` as an XDP program and gives r0's low 32 bits. */
function ret32(items: readonly Item[]): number {
  const p = loadRaw(items);
  try {
    return p.testRun({ data: PKT }).retval;
  } finally {
    p.close();
  }
}

/** Runs `body` (result in r0; r6 is reserved) and gives the whole 64-bit r0, read back through a map. */
function ret64(body: readonly Item[]): bigint {
  const map = BpfMap.create(mapSpec('array', 4, 8, 1));
  const p = loadRaw([
    asm.st('w', 'r10', -4, 0), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4), asm.ldMapFd('r1', map.fd), asm.call(1),
    asm.jmp('ne', 'r0', 0, 'go'), asm.exit(), label('go'), asm.mov64('r6', 'r0'),
    ...body,
    asm.stx('dw', 'r6', 0, 'r0'), asm.mov64('r0', 0), asm.exit(),
  ]);
  try {
    p.testRun({ data: PKT });
    return new DataView(map.lookupBytes(0)!.buffer).getBigUint64(0, true);
  } finally {
    p.close();
    map.close();
  }
}

// ---- the reference model ----------------------------------------------------------------------------

const U = (bits: number, v: bigint) => BigInt.asUintN(bits, v);
const S = (bits: number, v: bigint) => BigInt.asIntN(bits, v);

function swap(v: bigint, bits: number): bigint {
  let out = 0n;
  for (let i = 0; i < bits / 8; i++) out = (out << 8n) | ((v >> BigInt(i * 8)) & 0xffn);
  return out;
}

/** One ALU instruction per the ISA document. */
function refAlu(code: number, dst: bigint, src: bigint, off: number, imm: number): bigint {
  const w = (code & 7) === 7 ? 64 : 32;
  const op = code & 0xf0;
  const x = (code & 8) !== 0;
  if (op === 0xd0) {
    if (w === 64) return swap(dst, imm);
    if (!x) return imm === 64 ? dst : U(imm, dst);
    return swap(dst, imm);
  }
  const a = U(w, dst);
  const b = x ? U(w, src) : U(w, BigInt(imm)); // the immediate is sign-extended, then cut to the width
  const mask = BigInt(w - 1);
  let r: bigint;
  switch (op) {
    case 0x00: r = a + b; break;
    case 0x10: r = a - b; break;
    case 0x20: r = a * b; break;
    case 0x30: r = off === 0 ? (b === 0n ? 0n : a / b) : (b === 0n ? 0n : S(w, a) / S(w, b)); break;
    case 0x90: r = off === 0 ? (b === 0n ? a : a % b) : (b === 0n ? a : S(w, a) % S(w, b)); break;
    case 0x40: r = a | b; break;
    case 0x50: r = a & b; break;
    case 0xa0: r = a ^ b; break;
    case 0x60: r = a << (b & mask); break;
    case 0x70: r = a >> (b & mask); break;
    case 0xc0: r = S(w, a) >> (b & mask); break;
    case 0x80: r = -a; break;
    case 0xb0: r = off === 0 ? b : S(off, b); break;
    default: throw new Error(`reference model: ALU op ${op.toString(16)}`);
  }
  return U(w, r);
}

function refCond(code: number, dst: bigint, src: bigint, imm: number): boolean {
  const w = (code & 7) === 5 ? 64 : 32;
  const a = U(w, dst);
  const b = (code & 8) !== 0 ? U(w, src) : U(w, BigInt(imm));
  switch (code & 0xf0) {
    case 0x10: return a === b;
    case 0x50: return a !== b;
    case 0x20: return a > b;
    case 0x30: return a >= b;
    case 0xa0: return a < b;
    case 0xb0: return a <= b;
    case 0x40: return (a & b) !== 0n;
    case 0x60: return S(w, a) > S(w, b);
    case 0x70: return S(w, a) >= S(w, b);
    case 0xc0: return S(w, a) < S(w, b);
    case 0xd0: return S(w, a) <= S(w, b);
    default: throw new Error('reference model: condition');
  }
}

const WIDTH = [4, 2, 1, 8];

/** Runs a fuzzBody on registers and the 64 bytes below the frame pointer; gives both back. */
function refRun(body: readonly Item[]): { regs: Map<number, bigint>; stack: Uint8Array } {
  const bytes = assemble(body);
  const n = bytes.length / 8;
  const regs = new Map<number, bigint>();
  for (let i = 0; i <= 10; i++) regs.set(i, 0n);
  const stack = new Uint8Array(64);
  const sv = new DataView(stack.buffer);
  const at = (off: number) => 64 + off;
  const load = (off: number, size: number): bigint =>
    size === 8 ? sv.getBigUint64(at(off), true) : size === 4 ? BigInt(sv.getUint32(at(off), true)) : size === 2 ? BigInt(sv.getUint16(at(off), true)) : BigInt(stack[at(off)]!);
  const store = (off: number, size: number, v: bigint) => {
    for (let i = 0; i < size; i++) stack[at(off) + i] = Number((v >> BigInt(8 * i)) & 0xffn);
  };
  for (let pc = 0; pc < n; pc++) {
    const { code, dst, src, off, imm } = readInsn(bytes, pc);
    const cls = code & 7;
    const r = (k: number) => regs.get(k)!;
    if (code === 0x18) {
      regs.set(dst, (BigInt(readInsn(bytes, pc + 1).imm >>> 0) << 32n) | BigInt(imm >>> 0));
      pc++;
    } else if (cls === 4 || cls === 7) {
      regs.set(dst, refAlu(code, r(dst), r(src), off, imm));
    } else if (cls === 5 || cls === 6) {
      if (refCond(code, r(dst), r(src), imm)) pc += off;
    } else if (cls === 1) {
      const size = WIDTH[(code >> 3) & 3]!;
      const v = load(off, size);
      regs.set(dst, (code & 0xe0) === 0x80 ? U(64, S(size * 8, v)) : v);
    } else if (cls === 2) {
      const size = WIDTH[(code >> 3) & 3]!;
      store(off, size, U(64, BigInt(imm)));
    } else if (cls === 3 && (code & 0xe0) === 0x60) {
      const size = WIDTH[(code >> 3) & 3]!;
      store(off, size, r(src));
    } else if (cls === 3) {
      const size = WIDTH[(code >> 3) & 3]!;
      const bits = size * 8;
      const old = load(off, size);
      const s = U(bits, r(src));
      switch (imm) {
        case 0x00: case 0x01: store(off, size, U(bits, old + s)); break;
        case 0x40: case 0x41: store(off, size, old | s); break;
        case 0x50: case 0x51: store(off, size, old & s); break;
        case 0xa0: case 0xa1: store(off, size, old ^ s); break;
        case 0xe1: store(off, size, s); break;
        case 0xf1: if (U(bits, r(0)) === old) store(off, size, s); break;
        default: throw new Error('reference model: atomic');
      }
      if (imm === 0xf1) regs.set(0, old);
      else if (imm & 1) regs.set(src, old);
    } else {
      throw new Error(`reference model: opcode ${code.toString(16)}`);
    }
  }
  return { regs, stack };
}

describe('interpreter against the reference model', () => {
  it('agrees on 400 random programs (ALU, ALU32, JMP, JMP32, loads, stores, atomics)', () => {
    const map = BpfMap.create(mapSpec('array', 4, FUZZ_VALUE_SIZE, 1));
    try {
      for (let seed = 1; seed <= 400; seed++) {
        const rnd = mulberry32(seed);
        const body = fuzzBody(rnd, { length: 50 });
        const p = loadRaw(fuzzProgram(rnd, map.fd, {}, body));
        const ret = p.testRun({ data: PKT }).retval;
        p.close();
        const value = new DataView(map.lookupBytes(0)!.buffer);
        const want = refRun(body);
        FUZZ_REGS.forEach((r, i) => {
          const n = Number(r.slice(1));
          assert.equal(value.getBigUint64(i * 8, true), want.regs.get(n), `seed ${seed}: ${r}`);
        });
        assert.deepEqual(new Uint8Array(value.buffer, FUZZ_REGS.length * 8, 64), want.stack, `seed ${seed}: stack`);
        assert.equal(ret, Number(want.regs.get(0)! & 0xffffffffn), `seed ${seed}: retval`);
      }
    } finally {
      map.close();
    }
  });
});

describe('ALU edge cases (worked out by hand)', () => {
  const MIN64 = 0x8000000000000000n;
  const cases: [string, Item[], bigint][] = [
    ['64-bit add wraps', [...asm.ld64('r0', -1n), asm.alu64('add', 'r0', 2)], 1n],
    ['64-bit sub borrows across halves', [...asm.ld64('r0', 0x100000000n), asm.alu64('sub', 'r0', 1)], 0xffffffffn],
    ['64-bit mul keeps the low 64 bits', [...asm.ld64('r0', 0x123456789abcdefn), ...asm.ld64('r1', 0xfedcba987654321n), asm.alu64('mul', 'r0', 'r1')],
      BigInt.asUintN(64, 0x123456789abcdefn * 0xfedcba987654321n)],
    ['div by zero register gives 0', [...asm.ld64('r0', 77n), asm.mov64('r1', 0), asm.alu64('div', 'r0', 'r1')], 0n],
    ['mod by zero register leaves dst', [...asm.ld64('r0', 0x1234567890n), asm.mov64('r1', 0), asm.alu64('mod', 'r0', 'r1')], 0x1234567890n],
    ['32-bit mod by zero zero-extends dst', [...asm.ld64('r0', 0xffffffff00000005n), asm.mov64('r1', 0), asm.alu32('mod', 'r0', 'r1')], 5n],
    ['sdiv INT64_MIN / -1 is INT64_MIN', [...asm.ld64('r0', MIN64), asm.alu64('sdiv', 'r0', -1)], MIN64],
    ['smod INT64_MIN % -1 is 0', [...asm.ld64('r0', MIN64), asm.alu64('smod', 'r0', -1)], 0n],
    ['sdiv32 INT32_MIN / -1', [asm.mov32('r0', -0x80000000), asm.alu32('sdiv', 'r0', -1)], 0x80000000n],
    ['sdiv truncates towards zero', [asm.mov64('r0', -7), asm.alu64('sdiv', 'r0', 2)], BigInt.asUintN(64, -3n)],
    ['smod takes the dividend\'s sign', [asm.mov64('r0', -7), asm.alu64('smod', 'r0', 2)], BigInt.asUintN(64, -1n)],
    ['unsigned div by a negative immediate divides by 2^64-1', [...asm.ld64('r0', -1n), asm.alu64('div', 'r0', -1)], 1n],
    ['shift amounts are masked (64)', [asm.mov64('r0', 1), asm.mov64('r1', 65), asm.alu64('lsh', 'r0', 'r1')], 2n],
    ['shift amounts are masked (32)', [asm.mov32('r0', 1), asm.mov32('r1', 33), asm.alu32('lsh', 'r0', 'r1')], 2n],
    ['arsh by 63', [...asm.ld64('r0', MIN64), asm.alu64('arsh', 'r0', 63)], 0xffffffffffffffffn],
    ['arsh32 zero-extends', [asm.mov32('r0', -16), asm.alu32('arsh', 'r0', 2)], 0xfffffffcn],
    ['rsh by 32 moves the upper half down', [...asm.ld64('r0', 0xabcdef0012345678n), asm.alu64('rsh', 'r0', 32)], 0xabcdef00n],
    ['mov32 zero-extends', [...asm.ld64('r0', -1n), asm.mov32('r0', 'r0')], 0xffffffffn],
    ['mov64 of a negative immediate sign-extends', [asm.mov64('r0', -2)], 0xfffffffffffffffen],
    ['movsx64 8', [asm.mov64('r1', 0x80), asm.movsx64('r0', 'r1', 8)], 0xffffffffffffff80n],
    ['movsx64 16', [asm.mov64('r1', 0x7fff), asm.movsx64('r0', 'r1', 16)], 0x7fffn],
    ['movsx64 32', [asm.mov32('r1', -5), asm.movsx64('r0', 'r1', 32)], 0xfffffffffffffffbn],
    ['movsx32 8 zero-extends the result', [asm.mov64('r1', 0xff), asm.movsx32('r0', 'r1', 8)], 0xffffffffn],
    ['neg64', [asm.mov64('r0', 1), asm.neg64('r0')], 0xffffffffffffffffn],
    ['neg32', [asm.mov64('r0', 1), asm.neg32('r0')], 0xffffffffn],
    ['be16', [...asm.ld64('r0', 0x1122334455667788n), asm.be('r0', 16)], 0x8877n],
    ['be32', [...asm.ld64('r0', 0x1122334455667788n), asm.be('r0', 32)], 0x88776655n],
    ['be64', [...asm.ld64('r0', 0x1122334455667788n), asm.be('r0', 64)], 0x8877665544332211n],
    ['le16 truncates', [...asm.ld64('r0', 0x1122334455667788n), asm.le('r0', 16)], 0x7788n],
    ['le32 truncates', [...asm.ld64('r0', 0x1122334455667788n), asm.le('r0', 32)], 0x55667788n],
    ['le64 is a no-op', [...asm.ld64('r0', 0x1122334455667788n), asm.le('r0', 64)], 0x1122334455667788n],
    ['bswap16', [...asm.ld64('r0', 0x1122334455667788n), asm.bswap('r0', 16)], 0x8877n],
    ['bswap64', [...asm.ld64('r0', 0x1122334455667788n), asm.bswap('r0', 64)], 0x8877665544332211n],
    ['xor of halves', [...asm.ld64('r0', 0xff00ff00ff00ff00n), ...asm.ld64('r1', 0x0ff00ff00ff00ff0n), asm.alu64('xor', 'r0', 'r1')], 0xf0f0f0f0f0f0f0f0n],
  ];
  for (const [name, body, want] of cases) {
    it(name, () => assert.equal(ret64(body), want));
  }
});

describe('jumps', () => {
  it('signed and unsigned conditions differ on the sign bit (64 and 32 bits)', () => {
    const taken = (cond: Parameters<typeof asm.jmp>[0], a: bigint, b: bigint, is32 = false) => ret32([
      ...asm.ld64('r1', a), ...asm.ld64('r2', b), asm.mov64('r0', 1),
      (is32 ? asm.jmp32 : asm.jmp)(cond, 'r1', 'r2', 'yes'), asm.mov64('r0', 0), label('yes'), asm.exit(),
    ]) === 1;
    assert.equal(taken('gt', -1n, 1n), true);
    assert.equal(taken('sgt', -1n, 1n), false);
    assert.equal(taken('slt', -1n, 1n), true);
    assert.equal(taken('set', 0x100000000n, 0x100000000n), true);
    assert.equal(taken('set', 0x100000000n, 0x100000000n, true), false, 'JMP32 looks at the low halves only');
    assert.equal(taken('eq', 0x100000005n, 5n, true), true);
    assert.equal(taken('eq', 0x100000005n, 5n), false);
    assert.equal(taken('sge', 0x80000000n, 0n, true), false);
    assert.equal(taken('sge', 0x80000000n, 0n), true);
  });

  it('JMP32 JA (gotol) takes its offset from imm', () => {
    assert.equal(ret32([asm.mov64('r0', 1), asm.gotol('end'), asm.mov64('r0', 2), label('end'), asm.exit()]), 1);
  });

  it('an immediate operand of JMP is sign-extended to 64 bits', () => {
    assert.equal(ret32([...asm.ld64('r1', -1n), asm.mov64('r0', 0), asm.jmp('eq', 'r1', -1, 'y'), asm.exit(), label('y'), asm.mov64('r0', 1), asm.exit()]), 1);
  });
});

describe('memory', () => {
  it('sign-extending loads and stores of every size', () => {
    assert.equal(ret64([asm.st('dw', 'r10', -8, -2), asm.ldxs('b', 'r0', 'r10', -8)]), 0xfffffffffffffffen);
    assert.equal(ret64([asm.st('h', 'r10', -8, 0x8001), asm.ldxs('h', 'r0', 'r10', -8)]), 0xffffffffffff8001n);
    assert.equal(ret64([asm.st('w', 'r10', -8, -3), asm.ldxs('w', 'r0', 'r10', -8)]), 0xfffffffffffffffdn);
    assert.equal(ret64([asm.st('w', 'r10', -8, -3), asm.ldx('w', 'r0', 'r10', -8)]), 0xfffffffdn);
    assert.equal(ret64([asm.st('dw', 'r10', -8, -3), asm.ldx('dw', 'r0', 'r10', -8)]), 0xfffffffffffffffdn, 'st dw sign-extends imm');
    assert.equal(ret64([...asm.ld64('r1', 0x1122334455667788n), asm.stx('dw', 'r10', -8, 'r1'), asm.ldx('h', 'r0', 'r10', -6)]), 0x5566n);
  });

  it('atomics: add/or/and/xor with and without fetch, xchg, cmpxchg, 32 and 64 bits', () => {
    const prep = (v: bigint): Item[] => [...asm.ld64('r1', v), asm.stx('dw', 'r10', -8, 'r1')];
    assert.equal(ret64([...prep(5n), asm.mov64('r2', 7), asm.atomic('dw', 'add', 'r10', -8, 'r2'), asm.ldx('dw', 'r0', 'r10', -8)]), 12n);
    assert.equal(ret64([...prep(5n), asm.mov64('r2', 7), asm.atomic('dw', 'add', 'r10', -8, 'r2', true), asm.mov64('r0', 'r2')]), 5n);
    assert.equal(ret64([...prep(0xffffffffn), asm.mov64('r2', 1), asm.atomic('w', 'add', 'r10', -8, 'r2'), asm.ldx('dw', 'r0', 'r10', -8)]), 0n,
      '32-bit add wraps inside the word');
    assert.equal(ret64([...prep(0xf0n), asm.mov64('r2', 0x0f), asm.atomic('dw', 'or', 'r10', -8, 'r2', true), asm.ldx('dw', 'r0', 'r10', -8)]), 0xffn);
    assert.equal(ret64([...prep(0xf0n), asm.mov64('r2', 0x3c), asm.atomic('w', 'and', 'r10', -8, 'r2', true), asm.mov64('r0', 'r2')]), 0xf0n);
    assert.equal(ret64([...prep(0xf0n), asm.mov64('r2', 0xff), asm.atomic('dw', 'xor', 'r10', -8, 'r2'), asm.ldx('dw', 'r0', 'r10', -8)]), 0x0fn);
    assert.equal(ret64([...prep(3n), asm.mov64('r2', 9), asm.atomic('dw', 'xchg', 'r10', -8, 'r2'), asm.ldx('dw', 'r0', 'r10', -8), asm.alu64('lsh', 'r0', 8), asm.alu64('or', 'r0', 'r2')]), 0x903n);
    // cmpxchg: equal -> stores, r0 = old; different -> no store, r0 = old.
    assert.equal(ret64([...prep(3n), asm.mov64('r0', 3), asm.mov64('r2', 9), asm.atomic('dw', 'cmpxchg', 'r10', -8, 'r2'), asm.ldx('dw', 'r3', 'r10', -8), asm.alu64('lsh', 'r0', 8), asm.alu64('or', 'r0', 'r3')]), 0x309n);
    assert.equal(ret64([...prep(3n), asm.mov64('r0', 4), asm.mov64('r2', 9), asm.atomic('dw', 'cmpxchg', 'r10', -8, 'r2'), asm.ldx('dw', 'r3', 'r10', -8), asm.alu64('lsh', 'r0', 8), asm.alu64('or', 'r0', 'r3')]), 0x303n);
    assert.equal(ret64([...prep(0x1_0000_0003n), ...asm.ld64('r0', 0xff_0000_0003n), asm.mov64('r2', 9), asm.atomic('w', 'cmpxchg', 'r10', -8, 'r2')]), 3n,
      '32-bit cmpxchg compares the low half of r0 and zero-extends the old value into r0');
  });
});

describe('calls, tail calls, loops', () => {
  it('BPF-to-BPF calls get their own stack frame and keep r6-r9', () => {
    const r = ret32([
      asm.st('dw', 'r10', -8, 100), asm.mov64('r6', 6), asm.mov64('r1', 5), asm.callLocal('f'),
      asm.ldx('dw', 'r1', 'r10', -8), asm.alu64('add', 'r0', 'r1'), asm.alu64('add', 'r0', 'r6'), asm.exit(),
      label('f'), asm.st('dw', 'r10', -8, 7), asm.mov64('r6', 1000), asm.ldx('dw', 'r0', 'r10', -8), asm.alu64('mul', 'r0', 'r1'), asm.exit(),
    ]);
    assert.equal(r, 35 + 100 + 6);
  });

  it('eight call frames are allowed, a ninth is refused', () => {
    const nest = (depth: number): Item[] => {
      const items: Item[] = [asm.mov64('r0', 0)];
      for (let i = 0; i < depth; i++) items.push(asm.callLocal(`f${i}`), asm.exit(), label(`f${i}`), asm.alu64('add', 'r0', 1));
      items.push(asm.exit());
      return items;
    };
    assert.equal(ret32(nest(7)), 7);
    assert.throws(() => ret32(nest(8)), (e: unknown) => e instanceof EmulatorFault && /call stack of 8 frames is too deep/.test(e.message));
  });

  it('tail calls replace the program, up to 33 of them', () => {
    const counter = BpfMap.create(mapSpec('array', 4, 8, 1));
    const jmp = BpfMap.create(mapSpec('prog_array', 4, 4, 1));
    const p = loadRaw([
      asm.mov64('r6', 'r1'), asm.st('w', 'r10', -4, 0), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4),
      asm.ldMapFd('r1', counter.fd), asm.call(1), asm.jmp('eq', 'r0', 0, 'out'), asm.mov64('r1', 1), asm.atomic('dw', 'add', 'r0', 0, 'r1'),
      asm.mov64('r1', 'r6'), asm.ldMapFd('r2', jmp.fd), asm.mov64('r3', 0), asm.call(12),
      label('out'), asm.mov64('r0', 2), asm.exit(),
    ]);
    jmp.update(0, p.fd);
    p.testRun({ data: PKT });
    assert.equal(counter.lookup(0), 34n, 'the first run and 33 tail calls');
    p.close();
    jmp.close();
    counter.close();
  });

  it('bpf_loop calls its callback with the index and context, stops on 1', () => {
    const loop = (n: number, stopAt: number, flags = 0) => ret64([
      asm.st('dw', 'r10', -8, 0), asm.mov64('r1', n), ...asm.ldFunc('r2', 'cb'), asm.mov64('r3', 'r10'), asm.alu64('add', 'r3', -8),
      asm.mov64('r4', flags), asm.call(181), asm.ldx('dw', 'r1', 'r10', -8), asm.alu64('lsh', 'r0', 32), asm.alu64('or', 'r0', 'r1'),
      asm.ja('done'),
      label('cb'), asm.ldx('dw', 'r3', 'r2', 0), asm.alu64('add', 'r3', 'r1'), asm.stx('dw', 'r2', 0, 'r3'),
      asm.mov64('r0', 0), asm.jmp('ne', 'r1', stopAt, 'ret'), asm.mov64('r0', 1), label('ret'), asm.exit(),
      label('done'),
    ]);
    assert.equal(loop(10, 99), (10n << 32n) | 45n, 'ran 10 times, sum of 0..9');
    assert.equal(loop(10, 3), (4n << 32n) | 6n, 'stopped at index 3: returns 4, sum 0..3');
    assert.equal(BigInt.asIntN(64, loop(10, 99, 1)) >> 32n, -22n, 'flags must be 0: -EINVAL');
    assert.equal(loop(1 << 24, 99) >> 32n, 0xfffffff9n, 'more than 1 << 23 loops: -E2BIG, set by the inlined loop with a 32-bit move');
  });
});

describe('context and packet', () => {
  it('xdp_md data/data_end load as packet pointers; the program reads the packet through them', () => {
    const pkt = new Uint8Array(20);
    pkt[19] = 0x5a;
    const p = loadRaw([
      asm.ldx('w', 'r2', 'r1', 0), asm.ldx('w', 'r3', 'r1', 4), asm.mov64('r0', 'r3'), asm.alu64('sub', 'r0', 'r2'),
      asm.alu64('lsh', 'r0', 8), asm.ldx('b', 'r4', 'r2', 19), asm.alu64('or', 'r0', 'r4'), asm.exit(),
    ]);
    assert.equal(p.testRun({ data: pkt }).retval, (20 << 8) | 0x5a);
    p.close();
  });

  it('a packet access past data_end stops the run, naming the instruction', () => {
    const p = loadRaw([asm.ldx('w', 'r2', 'r1', 0), asm.ldx('w', 'r0', 'r2', 60), asm.exit()]);
    assert.throws(() => p.testRun({ data: new Uint8Array(20) }), (e: unknown) => {
      assert.ok(e instanceof EmulatorFault);
      assert.equal(e.insn, 1);
      assert.equal(e.instruction, 'r0 = *(u32 *)(r2 +60)');
      assert.match(e.reason, /read of 4 bytes at packet offset 60 is outside the packet \(offsets 0 to 20\)/);
      return true;
    });
    p.close();
  });

  it('writes to xdp_md are refused at load, as the verifier refuses them', () => {
    assert.throws(() => loadRaw([asm.st('w', 'r1', 12, 5), asm.mov64('r0', 0), asm.exit()]),
      (e: unknown) => e instanceof VerifierError && /invalid bpf_context access off=12 size=4/.test(e.log));
  });

  it('LD_ABS and LD_IND read the skb big-endian, and end the program with 0 past the end', () => {
    const pkt = new Uint8Array(60);
    pkt.set([0x45, 0x00, 0x12, 0x34], 14);
    const p = loadRaw([asm.mov64('r6', 'r1'), asm.raw(0x28, 0, 0, 0, 2), asm.mov64('r7', 'r0'), asm.mov64('r8', 1), asm.raw(0x50, 0, 8, 0, 1),
      asm.alu64('lsh', 'r7', 8), asm.alu64('or', 'r0', 'r7'), asm.exit()], 'socket_filter');
    assert.equal(p.testRun({ data: pkt }).retval, (0x1234 << 8) | 0x12, 'socket filters see the packet from the IP header');
    p.close();
    const q = loadRaw([asm.mov64('r6', 'r1'), asm.raw(0x20, 0, 0, 0, 100), asm.mov64('r0', 7), asm.exit()], 'socket_filter');
    assert.equal(q.testRun({ data: pkt }).retval, 0);
    q.close();
  });

  it('raw tracepoint programs read the ctx_in arguments', () => {
    const p = loadRaw([asm.ldx('dw', 'r0', 'r1', 8), asm.exit()], 'raw_tracepoint');
    const ctx = new Uint8Array(16);
    ctx[8] = 59;
    assert.equal(p.testRun({ ctx }).retval, 59);
    // Shorter than what the program reads: refused before the run, as the kernel refuses it.
    assert.throws(() => p.testRun({ ctx: new Uint8Array(8) }), (e: unknown) => (e as { code?: string }).code === 'EINVAL');
    p.close();
  });
});

describe('faults', () => {
  it('stack access out of the frame', () => {
    assert.throws(() => ret32([asm.ldx('dw', 'r0', 'r10', -520), asm.exit()]),
      (e: unknown) => e instanceof EmulatorFault && e.insn === 0 && /at fp-520 is outside the stack of frame 0/.test(e.reason));
  });

  it('a NULL map value used without a check', () => {
    const map = BpfMap.create(mapSpec('hash', 4, 8, 4));
    assert.throws(() => ret32([
      asm.st('w', 'r10', -4, 1), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4), asm.ldMapFd('r1', map.fd), asm.call(1),
      asm.ldx('dw', 'r0', 'r0', 0), asm.exit(),
    ]), /instruction 6 `r0 = \*\(u64 \*\)\(r0 \+0\)`: read of 8 bytes at address 0: a NULL pointer dereference/);
    map.close();
  });

  it('a map value read past its end', () => {
    const map = BpfMap.create(mapSpec('array', 4, 8, 1));
    assert.throws(() => ret32([
      asm.st('w', 'r10', -4, 0), asm.mov64('r2', 'r10'), asm.alu64('add', 'r2', -4), asm.ldMapFd('r1', map.fd), asm.call(1),
      asm.jmp('eq', 'r0', 0, 'out'), asm.ldx('dw', 'r0', 'r0', 4), label('out'), asm.exit(),
    ]), /read of 8 bytes at offset 4 is outside a value of map m \(8 bytes\)/);
    map.close();
  });

  it('a helper the emulator does not implement is refused at load with a NotSupportedError naming it', () => {
    assert.throws(() => ret32([asm.call(124), asm.exit()]), (e: unknown) => e instanceof NotSupportedError
      && /helper bpf_sk_assign \(#124\) is not implemented by the bpfkit emulator/.test(e.message) && !/this kernel/.test(e.message));
  });

  it('an endless loop is stopped after maxInstructions', () => {
    const small = new EmulatedKernel({ maxInstructions: 10_000 });
    const prev = setNative(small);
    try {
      assert.throws(() => ret32([asm.mov64('r0', 0), label('top'), asm.alu64('add', 'r0', 1), asm.ja('top')]), /more than 10000 instructions/);
    } finally {
      setNative(prev);
    }
  });
});

describe('load-time checks (the verifier\'s words)', () => {
  const refuses = (items: Item[], log: RegExp, license = 'GPL') =>
    assert.throws(() => loadRaw(items, 'xdp', license), (e: unknown) => e instanceof VerifierError && log.test(e.log));
  it('unknown opcodes', () => refuses([asm.raw(0xff), asm.exit()], /unknown opcode ff/));
  it('jumps out of the program', () => refuses([asm.ja(5), asm.exit()], /jump out of range from insn 0 to 6/));
  it('writes to the frame pointer', () => refuses([asm.mov64('r10', 0), asm.exit()], /frame pointer is read only/));
  it('a last instruction that is not exit or jump', () => refuses([asm.mov64('r0', 0)], /last insn is not an exit or jmp/));
  it('division by a zero immediate', () => refuses([asm.mov64('r0', 1), asm.alu64('div', 'r0', 0), asm.exit()], /div by zero/));
  it('a map fd that is not a map', () => refuses([...asm.ldMapFd('r1', 12345), asm.exit()], /fd 12345 is not pointing to valid bpf_map/));
  it('unknown helper numbers', () => refuses([asm.call(100000), asm.exit()], /invalid func unknown#100000/));
  it('GPL-only helpers from non-GPL programs', () => refuses([asm.call(6), asm.exit()], /cannot call GPL-restricted function/, 'MIT'));
  it('the errno is the kernel\'s (EINVAL, EACCES, EBADF)', () => {
    assert.throws(() => loadRaw([asm.raw(0xff), asm.exit()]), (e: unknown) => e instanceof VerifierError && e.errno === -22);
    assert.throws(() => loadRaw([asm.mov64('r10', 0), asm.exit()]), (e: unknown) => e instanceof VerifierError && e.errno === -13);
    assert.throws(() => loadRaw([...asm.ldMapFd('r1', 12345), asm.exit()]), (e: unknown) => e instanceof VerifierError && e.errno === -9);
  });
});

describe('instruction count', () => {
  // Speed is measured in bench/interpreter.bench.ts, never asserted here: this checks the count.
  it('counts every instruction a loop executes', () => {
    const before = kernel.instructionsExecuted;
    const p = loadRaw([asm.mov64('r0', 0), asm.mov64('r1', 0), label('top'), asm.alu64('add', 'r0', 'r1'), asm.alu64('add', 'r1', 1),
      asm.jmp('lt', 'r1', 100000, 'top'), asm.exit()]);
    assert.equal(p.testRun({ data: PKT }).retval, (99999 * 100000) / 2 % 2 ** 32);
    p.close();
    // 2 movs, 100000 iterations of 3, and the exit.
    assert.equal(kernel.instructionsExecuted - before, 2 + 3 * 100000 + 1);
  });
});

