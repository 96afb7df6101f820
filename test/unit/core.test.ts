/**
 * Unit tests for CO-RE relocations (src/btf/core.ts), extern resolution (src/load/externs.ts)
 * and BTF sanitizing (src/load/btf-sanitize.ts), on hand-built BTF: a "program" BTF with flavored
 * types and a "kernel" BTF laid out differently, every relocation kind, anonymous members,
 * array indices, bitfields, load-size adjustment, ambiguity, poisoning, instruction checks; then
 * the `.kconfig` layout and values, ksyms and kfuncs against a fake environment, and the BTF the
 * kernel is given. No kernel needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Btf } from '../../src/btf/btf.js';
import {
  applyCoreRelocations, CORE_POISON_HELPER, CoreRelocationError, essentialName, explainCoreFailure,
  prepareCoreCandidates, typesAreCompatible, typesMatch,
} from '../../src/btf/core.js';
import { ALL_BTF_FEATURES, kconfigLayout, sanitizeBtfForKernel } from '../../src/load/btf-sanitize.js';
import { CORE_RELO_KIND } from '../../src/btf/types.js';
import type { BtfType, CoreRelo } from '../../src/btf/types.js';
import { Insns } from '../../src/asm/insn.js';
import { SpecError } from '../../src/errors.js';
import {
  kconfigData, kernelVersionCode, parseKernelConfig, readKallsyms, resolveExterns, explainExternFailure,
  type ExternEnvironment,
} from '../../src/load/externs.js';
import type { ExternReference, ProgramSpec } from '../../src/spec/program-spec.js';

// --- building BTF --------------------------------------------------------------------------------

const VOID: BtfType = { kind: 'void', id: 0, name: '' };
const int = (id: number, name: string, size: number, signed: boolean, extra: { bool?: boolean; char?: boolean } = {}): BtfType => ({
  kind: 'int', id, name, size, signed, char: extra.char ?? false, bool: extra.bool ?? false, bitOffset: 0, bits: size * 8,
});
const ptr = (id: number, type: number): BtfType => ({ kind: 'ptr', id, name: '', type });
const array = (id: number, type: number, nelems: number, indexType = 1): BtfType => ({ kind: 'array', id, name: '', type, indexType, nelems });
type M = [name: string, type: number, bitOffset: number, bitfieldSize?: number];
const struct = (id: number, name: string, size: number, members: M[], kind: 'struct' | 'union' = 'struct'): BtfType => ({
  kind, id, name, size, kindFlag: members.some((m) => (m[3] ?? 0) > 0),
  members: members.map(([n, type, bitOffset, bitfieldSize]) => ({ name: n, type, bitOffset, bitfieldSize: bitfieldSize ?? 0 })),
});
const enumT = (id: number, name: string, values: [string, bigint][], size = 4, signed = false, kind: 'enum' | 'enum64' = 'enum'): BtfType => ({
  kind, id, name, size, signed, values: values.map(([n, value]) => ({ name: n, value })),
});
const typedef = (id: number, name: string, type: number): BtfType => ({ kind: 'typedef', id, name, type });

/** The program's view: a flavored task_struct declaring what it reads, at its own offsets. */
const local = Btf.fromTypes([
  VOID,
  int(1, 'int', 4, true),
  int(2, 'unsigned int', 4, false),
  struct(3, 'task_struct___local', 48, [
    ['real_parent', 4, 0],
    ['pid', 1, 8 * 8],
    ['tgid', 1, 12 * 8],
    ['missing', 1, 16 * 8],
    ['counter', 2, 20 * 8],
    ['sval', 1, 24 * 8],
    ['arr', 5, 28 * 8],
    ['flags', 2, 44 * 8, 3],
  ]),
  ptr(4, 3),
  array(5, 1, 4),
  struct(6, 'nope', 4, [['x', 1, 0]]),
  enumT(7, 'color___x', [['RED', 0n], ['BLUE___new', 7n], ['GONE', 9n]]),
  enumT(8, 'sig', [['NEG', -1n]], 4, true),
  struct(9, 'bpf_map___sub', 20, [['key_size', 2, 0], ['name', 10, 32]]),
  array(10, 11, 16),
  int(11, 'char', 1, true, { char: true }),
  struct(12, 'bpf_map___wide', 8, [['key_size', 13, 0]]),
  int(13, 'unsigned long long', 8, false),
  struct(14, '', 4, [['x', 1, 0]]),
  struct(15, 'task_struct___local', 4, [['pid', 1, 0]], 'union'),
]);

/** The kernel's view: task_struct with pid/tgid in an anonymous struct and everything elsewhere. */
const kernel = Btf.fromTypes([
  VOID,
  int(1, 'int', 4, true),
  int(2, 'unsigned int', 4, false),
  int(3, 'long long unsigned int', 8, false),
  int(4, 'long long int', 8, true),
  struct(5, 'task_struct', 3264, [
    ['', 7, 1264 * 8],
    ['real_parent', 6, 1280 * 8],
    ['counter', 3, 1288 * 8],
    ['sval', 4, 1296 * 8],
    ['arr', 8, 1304 * 8],
    ['flags', 2, 1340 * 8 + 5, 3],
  ]),
  ptr(6, 5),
  struct(7, '', 8, [['pid', 1, 0], ['tgid', 1, 32]]),
  array(8, 1, 8),
  enumT(9, 'color', [['RED', 10n], ['BLUE', 1n << 40n]], 8, false, 'enum64'),
  enumT(10, 'sig', [['NEG', -5n]], 4, true),
  typedef(11, 'u32', 2),
  struct(12, 'bpf_map', 64, [['key_size', 11, 0], ['value_size', 11, 32], ['name', 13, 64]]),
  array(13, 14, 16),
  int(14, 'char', 1, true, { char: true }),
]);

// --- building instructions -----------------------------------------------------------------------

const OP = { MOV64_IMM: 0xb7, MOV32_IMM: 0xb4, ADD64_IMM: 0x07, ADD64_REG: 0x0f, LDX_W: 0x61, LDX_DW: 0x79, STX_W: 0x63, JA: 0x05, EXIT: 0x95, LD_IMM64: 0x18 };

function insn(op: number, imm = 0, off = 0, dst = 1, src = 2): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  b[0] = op;
  b[1] = (src << 4) | dst;
  v.setInt16(2, off, true);
  v.setInt32(4, imm, true);
  return b;
}

function ldImm64(value: bigint, dst = 1): Uint8Array[] {
  const v = BigInt.asUintN(64, value);
  return [insn(OP.LD_IMM64, Number(BigInt.asIntN(32, v)), 0, dst, 0), insn(0, Number(BigInt.asIntN(32, v >> 32n)), 0, 0, 0)];
}

function program(...parts: (Uint8Array | Uint8Array[])[]): Insns {
  const list = parts.flat();
  const out = new Uint8Array(list.length * 8);
  list.forEach((b, i) => out.set(b, i * 8));
  return new Insns(out);
}

const K = CORE_RELO_KIND;
const relo = (insnOff: number, kind: number, accessStr: string, typeId = 3): CoreRelo => ({ insnOff, typeId, accessStr, kind });

function apply(insns: Insns, relos: CoreRelo[], target = kernel, from = local) {
  return applyCoreRelocations(insns.bytes, relos, from, target, 'prog');
}

/** One relocation on one ALU instruction holding `localValue`: the value it ends up with. */
function aluValue(kind: number, access: string, localValue: number, typeId = 3, target = kernel) {
  const p = program(insn(OP.MOV64_IMM, localValue), insn(OP.EXIT));
  const [r] = apply(p, [relo(0, kind, access, typeId)], target);
  return { r: r!, p, imm: p.imm(0), poisoned: p.isCall(0) && p.imm(0) === CORE_POISON_HELPER };
}

// --- names -------------------------------------------------------------------------------------

test('essentialName drops the last ___flavor suffix only when it separates two non-underscore characters', () => {
  assert.equal(essentialName('task_struct___v1'), 'task_struct');
  assert.equal(essentialName('task_struct'), 'task_struct');
  assert.equal(essentialName('a___b___c'), 'a___b');
  assert.equal(essentialName('____sys_sendmsg'), '____sys_sendmsg');
  assert.equal(essentialName('x____y'), 'x____y', 'four underscores: no X___Y with X and Y other than _');
  assert.equal(essentialName('trailing___'), 'trailing___');
  assert.equal(essentialName('___lead'), '___lead');
});

// --- candidates in parsed kernel BTF ---------------------------------------------------------------

test('candidates in parsed BTF (one walk over the records): flavors, a name twice, look-alikes that are no candidates', () => {
  const fn = (id: number, name: string, type: number): BtfType => ({ kind: 'func', id, name, type, linkage: 'global' });
  const built = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    struct(2, 'task_struct', 16, [['pid', 1, 64]]),
    { kind: 'func_proto', id: 3, name: '', returnType: 1, params: [] },
    fn(4, 'task_struct', 3), // a function of that name: never a root
    struct(5, 'task_struct_x', 16, [['pid', 1, 0]]), // the name as a prefix only
    struct(6, 'task_struct___a___b', 16, [['pid', 1, 0]]), // essential name task_struct___a
    struct(7, 'task_struct___v2', 16, [['tgid', 1, 0], ['pid', 1, 64]]), // a flavor
    struct(8, 'task_struct', 16, [['pid', 1, 64]]), // the name a second time
    struct(9, 'task_struct', 4, [['pid', 1, 0]], 'union'), // a union: no candidate for a struct
    int(10, 'u', 1, false), // a one-byte name
    typedef(11, 'u___x', 10),
  ]);
  const parsed = Btf.parse(built.marshal());
  const seen: number[][] = [];
  for (const target of [built, parsed, Btf.parseKernel(built.marshal())]) {
    // All agree on offset 8, from types 2, 7 and 8; the function, task_struct_x and the union are ignored.
    const r = aluValue(K.FIELD_BYTE_OFFSET, '0:1', 8, 3, target);
    assert.equal(r.imm, 8);
    assert.equal(r.r.targetTypeId, 2);
    const wrongAtEight = Btf.fromTypes([...target.types.slice(0, 8), struct(8, 'task_struct', 16, [['pid', 1, 32]]), ...target.types.slice(9)]);
    assert.throws(() => aluValue(K.FIELD_BYTE_OFFSET, '0:1', 8, 3, Btf.parse(wrongAtEight.marshal())), (e: unknown) =>
      e instanceof CoreRelocationError && /ambiguous: kernel types 2 and 8/.test(e.message), 'the second task_struct is a candidate');
    seen.push([r.r.targetTypeId]);
  }
  assert.deepEqual(seen, [[2], [2], [2]]);
  // Alone, the flavor is found; a name whose essential name differs, or a prefix, is not.
  const only = (...ts: BtfType[]) => Btf.parse(Btf.fromTypes([VOID, int(1, 'int', 4, true), ...ts]).marshal());
  const flavorOnly = aluValue(K.FIELD_BYTE_OFFSET, '0:1', 8, 3, only(struct(2, 'task_struct___v2', 16, [['pid', 1, 96]])));
  assert.deepEqual([flavorOnly.imm, flavorOnly.r.targetTypeId], [12, 2]);
  assert.ok(aluValue(K.FIELD_BYTE_OFFSET, '0:1', 8, 3, only(struct(2, 'task_struct___a___b', 16, [['pid', 1, 0]]), struct(3, 'task_struct_x', 16, [['pid', 1, 0]]))).poisoned);
  // The union of the program matches only the kernel's union.
  assert.equal(aluValue(K.FIELD_BYTE_OFFSET, '0:0', 0, 15, parsed).r.targetTypeId, 9);
  // A one-byte root name finds itself and its flavor.
  const tiny = Btf.fromTypes([VOID, int(1, 'u', 1, false)]);
  const p = program(insn(OP.MOV64_IMM, 1), insn(OP.EXIT));
  const [sz] = applyCoreRelocations(p.bytes, [{ insnOff: 0, typeId: 1, accessStr: '0', kind: K.TYPE_EXISTS }], tiny, parsed, 'prog');
  assert.equal(sz!.targetTypeId, 10);
});

test('prepareCoreCandidates looks up every program\'s roots first; applying afterwards gives the same results', () => {
  const target = Btf.parse(kernel.marshal());
  const relos = [relo(0, K.FIELD_BYTE_OFFSET, '0:1'), relo(1, K.FIELD_BYTE_OFFSET, '0:0', 9), relo(2, K.TYPE_EXISTS, '0', 6)];
  const run = (t: Btf) => {
    const p = program(insn(OP.ADD64_IMM, 8), insn(OP.ADD64_IMM, 0), insn(OP.MOV64_IMM, 1), insn(OP.EXIT));
    return apply(p, relos, t).map((r) => [r.targetTypeId, r.value, r.poisoned]);
  };
  const fresh = run(Btf.parse(kernel.marshal()));
  prepareCoreCandidates(target, [{ btf: local, coreRelos: relos }, { btf: undefined, coreRelos: [] }]);
  assert.deepEqual(run(target), fresh);
  assert.deepEqual(fresh, [[5, 1264n, false], [12, 0n, false], [0, 0n, false]]);
  // Malformed records are left for apply() to report with their instruction.
  prepareCoreCandidates(target, [{ btf: local, coreRelos: [relo(0, K.FIELD_BYTE_OFFSET, '0:1', 999)] }]);
});

// --- field relocations -----------------------------------------------------------------------------

test('field byte offset: flavored root, members found by name, through an anonymous struct', () => {
  const p = program(insn(OP.ADD64_IMM, 8), insn(OP.ADD64_IMM, 12), insn(OP.ADD64_IMM, 0), insn(OP.EXIT));
  const res = apply(p, [relo(0, K.FIELD_BYTE_OFFSET, '0:1'), relo(1, K.FIELD_BYTE_OFFSET, '0:2'), relo(2, K.FIELD_BYTE_OFFSET, '0:0')]);
  assert.deepEqual([p.imm(0), p.imm(1), p.imm(2)], [1264, 1268, 1280]);
  assert.deepEqual(res.map((r) => r.subject), ['task_struct___local.pid', 'task_struct___local.tgid', 'task_struct___local.real_parent']);
  assert.ok(res.every((r) => r.targetTypeId === 5 && !r.poisoned && r.kind === 'field_byte_offset'));
  assert.deepEqual(res.map((r) => [r.localValue, r.value]), [[8n, 1264n], [12n, 1268n], [0n, 1280n]]);
});

test('field byte offset of an element of the root array and of an array member', () => {
  // "1:1" is (&p[1])->pid: one whole struct further.
  assert.equal(aluValue(K.FIELD_BYTE_OFFSET, '1:1', 48 + 8).imm, 3264 + 1264);
  // "0:6:3" is p->arr[3].
  const { imm, r } = aluValue(K.FIELD_BYTE_OFFSET, '0:6:3', 28 + 12);
  assert.equal(imm, 1304 + 12);
  assert.equal(r.subject, 'task_struct___local.arr[3]');
  assert.equal(aluValue(K.FIELD_BYTE_SIZE, '0:6', 16).imm, 32);
  assert.equal(aluValue(K.FIELD_BYTE_SIZE, '0:6:3', 4).imm, 4);
});

test('an index beyond the kernel array poisons, except for a flexible array member', () => {
  const small = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    struct(2, 'task_struct', 16, [['pid', 1, 0], ['arr', 3, 32]]),
    array(3, 1, 2),
  ]);
  const out = aluValue(K.FIELD_BYTE_OFFSET, '0:6:3', 40, 3, small);
  assert.ok(out.poisoned);
  assert.match(out.r.reason!, /index 3 is out of range/);
  const flex = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    struct(2, 'task_struct', 8, [['pid', 1, 0], ['arr', 3, 64]]),
    array(3, 1, 0),
  ]);
  assert.equal(aluValue(K.FIELD_BYTE_OFFSET, '0:6:3', 40, 3, flex).imm, 8 + 12);
});

test('field byte size, signedness and existence', () => {
  assert.equal(aluValue(K.FIELD_BYTE_SIZE, '0:1', 4).imm, 4);
  assert.equal(aluValue(K.FIELD_BYTE_SIZE, '0:4', 4).imm, 8);
  assert.equal(aluValue(K.FIELD_SIGNED, '0:1', 1).imm, 1);
  assert.equal(aluValue(K.FIELD_SIGNED, '0:4', 0).imm, 0);
  assert.equal(aluValue(K.FIELD_EXISTS, '0:1', 1).imm, 1);
  const missing = aluValue(K.FIELD_EXISTS, '0:3', 1);
  assert.equal(missing.imm, 0);
  assert.equal(missing.poisoned, false);
  assert.equal(missing.r.poisoned, false);
  assert.match(missing.r.reason!, /has no field missing/);
});

test('a missing field poisons the instruction (both halves of an ld_imm64) with the 0xbad2310 helper call', () => {
  const p = program(insn(OP.ADD64_IMM, 16, 0, 3, 0), ldImm64(16n), insn(OP.EXIT));
  const res = apply(p, [relo(0, K.FIELD_BYTE_OFFSET, '0:3'), relo(1, K.FIELD_BYTE_OFFSET, '0:3')]);
  for (const i of [0, 1, 2]) {
    assert.equal(p.op(i), 0x85, `instruction ${i} is a call`);
    assert.equal(p.imm(i), 195896080);
    assert.equal(p.src(i), 0);
    assert.equal(p.dst(i), 0);
  }
  assert.ok(res.every((r) => r.poisoned && r.value === 0n && r.targetTypeId === 0));
  assert.equal(res[0]!.reason, "the kernel's struct task_struct has no field missing");
  assert.equal(res[0]!.subject, 'task_struct___local.missing');
});

test('bitfields: the load that covers the kernel bitfield, and the shifts that isolate it', () => {
  // Kernel: 3 bits at bit 1340*8+5 of a u32 bitfield: one aligned 4-byte load at 1340 holds bits 5..7.
  // The compiler's own values for bitfields are not checked (it may split loads differently).
  assert.equal(aluValue(K.FIELD_BYTE_OFFSET, '0:7', 999).imm, 1340);
  assert.equal(aluValue(K.FIELD_BYTE_SIZE, '0:7', 999).imm, 4);
  assert.equal(aluValue(K.FIELD_LSHIFT_U64, '0:7', 999).imm, 64 - 8);
  assert.equal(aluValue(K.FIELD_RSHIFT_U64, '0:7', 999).imm, 64 - 3);
  assert.equal(aluValue(K.FIELD_SIGNED, '0:7', 0).imm, 0);
  const { r } = aluValue(K.FIELD_LSHIFT_U64, '0:7', 999);
  assert.equal(r.localValue, 61n); // local: 3 bits at bit 352, in the 4-byte load at 44
  // A 12-bit u32 bitfield at bit 26 crosses the 4-byte boundary: one 8-byte load at 0 covers it.
  const straddle = Btf.fromTypes([
    VOID, int(1, 'int', 4, true), int(2, 'unsigned int', 4, false),
    struct(3, 'task_struct', 16, [['flags', 2, 26, 12], ['pid', 1, 64]]),
  ]);
  assert.equal(aluValue(K.FIELD_BYTE_OFFSET, '0:7', 0, 3, straddle).imm, 0);
  assert.equal(aluValue(K.FIELD_BYTE_SIZE, '0:7', 0, 3, straddle).imm, 8);
  assert.equal(aluValue(K.FIELD_LSHIFT_U64, '0:7', 0, 3, straddle).imm, 64 - 38);
  assert.equal(aluValue(K.FIELD_RSHIFT_U64, '0:7', 0, 3, straddle).imm, 64 - 12);
  // A plain field read through the bitfield relocations: the whole field.
  assert.equal(aluValue(K.FIELD_LSHIFT_U64, '0:1', 32).imm, 32);
  assert.equal(aluValue(K.FIELD_RSHIFT_U64, '0:1', 32).imm, 32);
});

test('loads: the offset is patched and the width follows an unsigned field that grew; a signed one poisons', () => {
  const p = program(insn(OP.LDX_W, 0, 8), insn(OP.LDX_W, 0, 20), insn(OP.LDX_W, 0, 24), insn(OP.STX_W, 0, 12), insn(OP.EXIT));
  const res = apply(p, [
    relo(0, K.FIELD_BYTE_OFFSET, '0:1'), relo(1, K.FIELD_BYTE_OFFSET, '0:4'),
    relo(2, K.FIELD_BYTE_OFFSET, '0:5'), relo(3, K.FIELD_BYTE_OFFSET, '0:2'),
  ]);
  assert.equal(p.op(0), OP.LDX_W);
  assert.equal(p.off(0), 1264);
  assert.equal(p.op(1), OP.LDX_DW, 'u32 -> u64: the load widens');
  assert.equal(p.off(1), 1288);
  assert.equal(p.op(2), 0x85, 'int -> long long: a narrow load would be wrong, so it is poisoned');
  assert.ok(res[2]!.poisoned);
  assert.match(res[2]!.reason!, /resized/);
  assert.equal(p.op(3), OP.STX_W);
  assert.equal(p.off(3), 1268);
});

test('a field of another kind in the kernel does not match', () => {
  const other = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    struct(2, 'task_struct', 16, [['pid', 3, 0]]),
    struct(3, 'pid_s', 8, [['x', 1, 0]]),
  ]);
  const out = aluValue(K.FIELD_BYTE_OFFSET, '0:1', 8, 3, other);
  assert.ok(out.poisoned);
  assert.match(out.r.reason!, /field pid is int in the program but struct pid_s in the kernel/);
});

test('the root must be a struct in the kernel too: a union of that name is no candidate', () => {
  const out = aluValue(K.FIELD_BYTE_OFFSET, '0:0', 0, 15);
  assert.ok(out.poisoned);
  assert.match(out.r.reason!, /the kernel has no union task_struct/);
});

test('several kernel candidates must agree', () => {
  const agree = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    struct(2, 'task_struct', 16, [['pid', 1, 64]]),
    struct(3, 'task_struct___v2', 16, [['tgid', 1, 0], ['pid', 1, 64]]),
  ]);
  assert.equal(aluValue(K.FIELD_BYTE_OFFSET, '0:1', 8, 3, agree).imm, 8);
  const disagree = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    struct(2, 'task_struct', 16, [['pid', 1, 64]]),
    struct(3, 'task_struct___v2', 16, [['pid', 1, 0]]),
  ]);
  assert.throws(() => aluValue(K.FIELD_BYTE_OFFSET, '0:1', 8, 3, disagree), (e: unknown) =>
    e instanceof CoreRelocationError && e.code === 'ERR_BPFKIT_CORE' && /ambiguous/.test(e.message) && e.insn === 0);
  // A candidate that does not match at all is simply skipped.
  const oneFits = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    struct(2, 'task_struct', 16, [['tgid', 1, 64]]),
    struct(3, 'task_struct___v2', 16, [['pid', 1, 32]]),
  ]);
  const r = aluValue(K.FIELD_BYTE_OFFSET, '0:1', 8, 3, oneFits);
  assert.equal(r.imm, 4);
  assert.equal(r.r.targetTypeId, 3);
});

test('a parsed kernel BTF (types decoded on demand) gives the same relocations as one built in code', () => {
  const flavored = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    struct(2, 'task_struct', 16, [['pid', 1, 64]]),
    { kind: 'func', id: 3, name: 'task_struct', type: 4, linkage: 'global' },
    { kind: 'func_proto', id: 4, name: '', returnType: 1, params: [] },
    struct(5, 'task_struct___v2', 16, [['tgid', 1, 0], ['pid', 1, 64]]),
    typedef(6, 'task_struct___v3', 2),
    struct(7, 'task_struct___v4___x', 16, [['pid', 1, 64]]),
    enumT(8, 'color___y', [['RED', 10n], ['BLUE', 3n]]),
  ]);
  const cases: [kind: number, access: string, localValue: number, typeId: number][] = [
    [K.FIELD_BYTE_OFFSET, '0:1', 8, 3], [K.FIELD_BYTE_OFFSET, '0:2', 12, 3], [K.FIELD_BYTE_OFFSET, '0:0', 0, 3],
    [K.FIELD_EXISTS, '0:3', 1, 3], [K.FIELD_BYTE_SIZE, '0:6', 16, 3], [K.FIELD_BYTE_OFFSET, '0:6:3', 40, 3],
    [K.TYPE_EXISTS, '0', 1, 3], [K.TYPE_SIZE, '0', 48, 3], [K.TYPE_ID_TARGET, '0', 3, 3],
    [K.ENUMVAL_VALUE, '1', 7, 7], [K.ENUMVAL_EXISTS, '2', 1, 7], [K.FIELD_BYTE_OFFSET, '0:0', 0, 9],
    [K.FIELD_BYTE_OFFSET, '0:0', 0, 15], [K.TYPE_EXISTS, '0', 1, 6],
  ];
  for (const built of [kernel, flavored]) {
    const parsed = Btf.parse(built.marshal());
    for (const [kind, access, localValue, typeId] of cases) {
      const outcome = (target: Btf) => {
        try {
          const { r, imm } = aluValue(kind, access, localValue, typeId, target);
          return { r, imm };
        } catch (e) {
          return { error: (e as Error).message };
        }
      };
      assert.deepEqual(outcome(parsed), outcome(built), `kind ${kind} access ${access} type ${typeId}`);
    }
  }
  // Both flavors of task_struct that fit are candidates; the func and the typedef are not.
  const r = aluValue(K.FIELD_BYTE_OFFSET, '0:1', 8, 3, Btf.parse(flavored.marshal()));
  assert.equal(r.imm, 8);
});

// --- type relocations ---------------------------------------------------------------------------

test('type id, existence and size', () => {
  const p = program(ldImm64(3n), ldImm64(3n), insn(OP.MOV64_IMM, 1), insn(OP.MOV64_IMM, 48), insn(OP.EXIT));
  apply(p, [relo(0, K.TYPE_ID_LOCAL, '0'), relo(2, K.TYPE_ID_TARGET, '0'), relo(4, K.TYPE_EXISTS, '0'), relo(5, K.TYPE_SIZE, '0')]);
  assert.equal(p.imm(0), 3);
  assert.equal(p.imm(2), 5);
  assert.equal(p.imm(3), 0);
  assert.equal(p.imm(4), 1);
  assert.equal(p.imm(5), 3264);
});

test('a type the kernel lacks gives 0 for every type relocation, without poisoning', () => {
  for (const [kind, localValue] of [[K.TYPE_EXISTS, 1], [K.TYPE_SIZE, 4], [K.TYPE_ID_TARGET, 6], [K.TYPE_MATCHES, 1]] as const) {
    const { imm, poisoned, r } = aluValue(kind, '0', localValue, 6);
    assert.equal(imm, 0);
    assert.equal(poisoned, false);
    assert.equal(r.subject, 'struct nope');
    assert.match(r.reason!, /the kernel has no struct nope/);
  }
});

test('type matches: members by name with matching types; a different integer size does not match', () => {
  assert.equal(aluValue(K.TYPE_MATCHES, '0', 1, 9).imm, 1);
  assert.equal(aluValue(K.TYPE_MATCHES, '0', 1, 12).imm, 0);
  assert.equal(aluValue(K.TYPE_MATCHES, '0', 1, 3).imm, 0, 'task_struct___local has members the kernel lacks');
  assert.equal(aluValue(K.TYPE_EXISTS, '0', 1, 3).imm, 1, 'but it exists (compatibility ignores members)');
});

test('typesMatch and typesAreCompatible on pointers, forward declarations, enums and prototypes', () => {
  const a = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    ptr(2, 3), { kind: 'fwd', id: 3, name: 'thing', fwdKind: 'struct' },
    enumT(4, 'e', [['A', 1n]], 4),
    { kind: 'func_proto', id: 5, name: '', returnType: 1, params: [{ name: 'x', type: 2 }] },
    int(6, 'int', 8, true),
  ]);
  const b = Btf.fromTypes([
    VOID, int(1, 'int', 4, true),
    ptr(2, 3), struct(3, 'thing', 4, [['x', 1, 0]]),
    enumT(4, 'e', [['B', 2n], ['A', 5n]], 8, false, 'enum64'),
    { kind: 'func_proto', id: 5, name: '', returnType: 1, params: [{ name: 'y', type: 2 }] },
    enumT(6, 'e', [['B', 2n], ['A', 5n]], 4),
  ]);
  assert.equal(typesMatch(a, 2, b, 2), true, 'a pointer to a forward declaration matches a pointer to the struct');
  assert.equal(typesMatch(a, 3, b, 3), false, 'not outside a pointer');
  assert.equal(typesMatch(a, 4, b, 4), false, 'enum sizes differ');
  assert.equal(typesMatch(a, 4, b, 6), true, 'enumerators by name, values ignored');
  assert.equal(typesAreCompatible(a, 4, b, 4), true, 'enum and enum64 are compatible whatever their sizes');
  assert.equal(typesMatch(a, 5, b, 5), true);
  assert.equal(typesAreCompatible(a, 5, b, 5), false, 'compatibility wants the same kind: a forward declaration is not a struct');
  assert.equal(typesAreCompatible(a, 5, a, 5), true);
  assert.equal(typesAreCompatible(a, 1, b, 3), false);
  assert.equal(typesAreCompatible(a, 6, b, 1), true, 'integers of any size are compatible');
  assert.equal(typesMatch(a, 6, b, 1), false, 'but do not match');
});

// --- enum value relocations ------------------------------------------------------------------------

test('enum values by enumerator name (flavors ignored), into enum64, ld_imm64 and negative values', () => {
  assert.equal(aluValue(K.ENUMVAL_VALUE, '0', 0, 7).imm, 10);
  assert.equal(aluValue(K.ENUMVAL_EXISTS, '1', 1, 7).imm, 1);
  const p = program(ldImm64(7n), insn(OP.EXIT));
  const [r] = apply(p, [relo(0, K.ENUMVAL_VALUE, '1', 7)]);
  assert.equal(r!.value, 1n << 40n);
  assert.equal(p.imm(0), 0);
  assert.equal(p.imm(1), 256);
  assert.equal(r!.subject, 'enum color___x::BLUE___new');
  assert.equal(aluValue(K.ENUMVAL_VALUE, '0', -1, 8).imm, -5);
});

test('a missing enumerator: exists gives 0, value poisons', () => {
  const ex = aluValue(K.ENUMVAL_EXISTS, '2', 1, 7);
  assert.equal(ex.imm, 0);
  assert.equal(ex.poisoned, false);
  const v = aluValue(K.ENUMVAL_VALUE, '2', 9, 7);
  assert.ok(v.poisoned);
  assert.match(v.r.reason!, /enum color has no value GONE/);
});

// --- instruction checks -----------------------------------------------------------------------------

test('instructions that do not hold what the program types say, or cannot take a relocation, are errors', () => {
  const err = (p: Insns, r: CoreRelo, re: RegExp) =>
    assert.throws(() => apply(p, [r]), (e: unknown) => e instanceof CoreRelocationError && re.test(e.message));
  err(program(insn(OP.ADD64_IMM, 9), insn(OP.EXIT)), relo(0, K.FIELD_BYTE_OFFSET, '0:1'), /holds 9, but the program's types give 8/);
  err(program(insn(OP.LDX_W, 0, 4), insn(OP.EXIT)), relo(0, K.FIELD_BYTE_OFFSET, '0:1'), /offset is 4/);
  err(program(insn(OP.ADD64_REG), insn(OP.EXIT)), relo(0, K.FIELD_BYTE_OFFSET, '0:1'), /takes a register/);
  err(program(insn(OP.JA), insn(OP.EXIT)), relo(0, K.FIELD_BYTE_OFFSET, '0:1'), /cannot relocate instruction with opcode 0x5/);
  err(program(insn(OP.EXIT)), relo(4, K.FIELD_BYTE_OFFSET, '0:1'), /outside the program/);
  err(program(insn(OP.ADD64_IMM, 8)), relo(0, K.FIELD_BYTE_OFFSET, '0:x'), /malformed access string/);
  err(program(insn(OP.ADD64_IMM, 8)), relo(0, K.FIELD_BYTE_OFFSET, '0:99'), /has no member #99/);
  err(program(insn(OP.ADD64_IMM, 8)), relo(0, 77, '0:1'), /unknown relocation kind 77/);
  err(program(insn(OP.ADD64_IMM, 0)), relo(0, K.TYPE_EXISTS, '0', 14), /anonymous/);
  const far = Btf.fromTypes([VOID, int(1, 'int', 4, true), struct(2, 'task_struct', 40000, [['pid', 1, 39000 * 8]])]);
  assert.throws(() => apply(program(insn(OP.LDX_W, 0, 8), insn(OP.EXIT)), [relo(0, K.FIELD_BYTE_OFFSET, '0:1')], far),
    /offset 39000 does not fit/);
  // The local type id of an anonymous type is still fine for TYPE_ID_LOCAL.
  const p = program(ldImm64(14n), insn(OP.EXIT));
  apply(p, [relo(0, K.TYPE_ID_LOCAL, '0', 14)]);
  assert.equal(p.imm(0), 14);
});

test('explainCoreFailure names the relocation the verifier reached', () => {
  const p = program(insn(OP.MOV64_IMM, 0), insn(OP.MOV64_IMM, 0), insn(OP.ADD64_IMM, 16), insn(OP.EXIT));
  const res = apply(p, [relo(2, K.FIELD_BYTE_OFFSET, '0:3')]);
  const log = '0: R1=ctx() R10=fp0\n2: (85) call unknown#195896080\ninvalid func unknown#195896080\nprocessed 3 insns\n';
  const msg = explainCoreFailure(log, res, 'prog');
  assert.ok(msg);
  assert.match(msg, /program prog, instruction 2: field_byte_offset of task_struct___local\.missing \(access 0:3\)/);
  assert.match(msg, /has no field missing/);
  assert.equal(explainCoreFailure('R1 invalid mem access', res, 'prog'), undefined);
  assert.equal(explainCoreFailure(log, [], 'prog'), undefined);
});

// --- externs --------------------------------------------------------------------------------------

/** An object with every kind of extern, as clang describes them. */
const objectBtf = Btf.fromTypes([
  VOID,
  int(1, 'unsigned int', 4, false),
  int(2, '_Bool', 1, false, { bool: true }),
  int(3, 'int', 4, true),
  array(4, 5, 8),
  int(5, 'char', 1, true, { char: true }),
  enumT(6, 'libbpf_tristate', [['TRI_NO', 0n], ['TRI_YES', 1n], ['TRI_MODULE', 2n]]),
  int(7, 'unsigned long long', 8, false),
  { kind: 'var', id: 8, name: 'LINUX_KERNEL_VERSION', type: 1, linkage: 'extern' },
  { kind: 'var', id: 9, name: 'CONFIG_BPF', type: 2, linkage: 'extern' },
  { kind: 'var', id: 10, name: 'CONFIG_HZ', type: 3, linkage: 'extern' },
  { kind: 'var', id: 11, name: 'CONFIG_X', type: 4, linkage: 'extern' },
  { kind: 'var', id: 12, name: 'CONFIG_T', type: 6, linkage: 'extern' },
  { kind: 'var', id: 13, name: 'CONFIG_U64', type: 7, linkage: 'extern' },
  { kind: 'var', id: 14, name: 'CONFIG_MISSING', type: 3, linkage: 'extern' },
  { kind: 'datasec', id: 15, name: '.kconfig', size: 0, vars: [8, 9, 10, 11, 12, 13, 14].map((type) => ({ type, offset: 0, size: 0 })) },
  { kind: 'var', id: 16, name: 'bpf_prog_put', type: 0, linkage: 'extern' },
  { kind: 'var', id: 17, name: 'runqueues', type: 18, linkage: 'extern' },
  struct(18, 'rq', 4, [['nr_running', 3, 0]]),
  { kind: 'func_proto', id: 19, name: '', returnType: 0, params: [{ name: '', type: 3 }] },
  { kind: 'func', id: 20, name: 'bpf_kfunc', type: 19, linkage: 'extern' },
  { kind: 'func', id: 21, name: 'missing_kfunc', type: 19, linkage: 'extern' },
  { kind: 'var', id: 22, name: 'missing_sym', type: 0, linkage: 'extern' },
  { kind: 'datasec', id: 23, name: '.ksyms', size: 0, vars: [16, 17, 20, 21, 22].map((type) => ({ type, offset: 0, size: 0 })) },
  { kind: 'float', id: 24, name: 'double', size: 8 },
  { kind: 'type_tag', id: 25, name: 'user', type: 3 },
  { kind: 'decl_tag', id: 26, name: 'tag', type: 20, componentIdx: -1 },
  enumT(27, 'big', [['V', 1n << 40n]], 8, false, 'enum64'),
]);

const kernelForExterns = Btf.fromTypes([
  VOID,
  int(1, 'int', 4, true),
  struct(2, 'rq', 64, [['nr_running', 1, 0]]),
  { kind: 'var', id: 3, name: 'runqueues', type: 2, linkage: 'global' },
  { kind: 'func_proto', id: 4, name: '', returnType: 0, params: [{ name: 'x', type: 1 }] },
  { kind: 'func', id: 5, name: 'bpf_kfunc', type: 4, linkage: 'static' },
]);

function fakeEnv(config: Record<string, string> | undefined, maps: { data?: Uint8Array } = {}): ExternEnvironment {
  return {
    kernelBtf: () => kernelForExterns,
    kernelConfig: () => (config ? new Map(Object.entries(config)) : undefined),
    kernelRelease: () => '6.18.44-fc-v595',
    kernelVersion: () => kernelVersionCode('6.18.44-fc-v595'),
    kallsyms: (names) => new Map([...names].filter((n) => n === 'bpf_prog_put').map((n) => [n, [0xffffffff814d3730n]])),
    hasBpfCookie: () => true,
    kconfigMap: (_btf, _layout, data) => {
      maps.data = data;
      return 42;
    },
  };
}

const fullConfig = { CONFIG_BPF: 'y', CONFIG_HZ: '250', CONFIG_X: '"abcdefghij"', CONFIG_T: 'm', CONFIG_U64: '0x10' };

test('.kconfig layout: by alignment (largest first), then size, then name', () => {
  const layout = kconfigLayout(objectBtf)!;
  assert.equal(layout.datasecId, 15);
  const offsets = Object.fromEntries([...layout.vars.values()].map((v) => [v.name, [v.offset, v.size]]));
  assert.deepEqual(offsets, {
    CONFIG_U64: [0, 8], CONFIG_HZ: [8, 4], CONFIG_MISSING: [12, 4], CONFIG_T: [16, 4], LINUX_KERNEL_VERSION: [20, 4],
    CONFIG_BPF: [24, 1], CONFIG_X: [25, 8],
  });
  assert.equal(layout.size, 33);
  assert.equal(kconfigLayout(kernelForExterns), undefined);
});

test('.kconfig values: bool, int, string, tristate, u64 and the kernel version; weak or unused missing ones are 0', () => {
  const layout = kconfigLayout(objectBtf)!;
  const used = new Set(['LINUX_KERNEL_VERSION', 'CONFIG_BPF', 'CONFIG_HZ', 'CONFIG_X', 'CONFIG_T', 'CONFIG_U64', 'CONFIG_MISSING']);
  const { bytes, found } = kconfigData(objectBtf, layout, fakeEnv(fullConfig), used, new Set(['CONFIG_MISSING']), 'program p');
  const v = new DataView(bytes.buffer);
  assert.equal(v.getBigUint64(0, true), 16n);
  assert.equal(v.getInt32(8, true), 250);
  assert.equal(v.getInt32(12, true), 0);
  assert.equal(v.getUint32(16, true), 2, 'm is TRI_MODULE');
  assert.equal(v.getUint32(20, true), (6 << 16) + (18 << 8) + 44);
  assert.equal(bytes[24], 1);
  assert.equal(Buffer.from(bytes.subarray(25, 33)).toString('latin1'), 'abcdefg\0', 'truncated and NUL-terminated');
  assert.equal(found.has('CONFIG_MISSING'), false);
  assert.equal(found.has('CONFIG_HZ'), true);
});

test('.kconfig errors: a missing strong value, no config at all, and values that do not fit their type', () => {
  const layout = kconfigLayout(objectBtf)!;
  const run = (config: Record<string, string> | undefined, used: string[], weak: string[] = []) =>
    kconfigData(objectBtf, layout, fakeEnv(config), new Set(used), new Set(weak), 'program p');
  assert.throws(() => run(fullConfig, ['CONFIG_MISSING']), (e: unknown) => e instanceof SpecError && /CONFIG_MISSING is not set/.test(e.message));
  assert.throws(() => run(undefined, ['CONFIG_HZ']), /neither \/proc\/config.gz nor \/boot\/config-6.18.44-fc-v595/);
  assert.equal(run(undefined, ['LINUX_KERNEL_VERSION']).found.has('LINUX_KERNEL_VERSION'), true);
  assert.throws(() => run({ ...fullConfig, CONFIG_BPF: 'm' }, ['CONFIG_BPF']), /needs enum libbpf_tristate or char, not bool/);
  assert.throws(() => run({ ...fullConfig, CONFIG_HZ: 'y' }, ['CONFIG_HZ']), /needs bool, enum libbpf_tristate or char/);
  assert.throws(() => run({ ...fullConfig, CONFIG_HZ: '0x80000000' }, ['CONFIG_HZ']), /does not fit a signed 4-byte integer/);
  assert.throws(() => run({ ...fullConfig, CONFIG_HZ: '"str"' }, ['CONFIG_HZ']), /needs a char array/);
  // Octal and negative numbers read as the C library reads them.
  const octal = run({ ...fullConfig, CONFIG_HZ: '-010' }, ['CONFIG_HZ']).bytes;
  assert.equal(new DataView(octal.buffer).getInt32(8, true), -8);
  // The same problems in an extern the program does not use are ignored.
  assert.doesNotThrow(() => run({ ...fullConfig, CONFIG_HZ: 'y' }, []));
});

function externSpec(insns: Uint8Array, externs: { insn: number; name: string; weak?: boolean }[]): ProgramSpec {
  return {
    name: 'p', sectionName: 'raw_tracepoint/x', type: 'raw_tracepoint', attachType: undefined, attachTarget: 'x',
    attachKind: undefined, autoload: true, sleepable: false, flags: 0, license: 'GPL', kernelVersion: 0,
    instructions: insns, references: [], externs: externs as ExternReference[], btf: objectBtf,
    funcInfo: [], lineInfo: [], coreRelos: [], functions: [[0, 'p']],
  };
}

test('resolveExterns: kconfig map values, ksym addresses, typed ksyms, kfunc calls and weak misses', () => {
  const p = program(
    ldImm64(0n), // 0: &CONFIG_HZ
    ldImm64(0n), // 2: &bpf_prog_put
    ldImm64(0n), // 4: &runqueues
    insn(0x85, -1, 0, 0, 1), // 6: call bpf_kfunc
    insn(0x85, -1, 0, 0, 1), // 7: call missing_kfunc (weak)
    ldImm64(0n), // 8: &missing_sym (weak)
    insn(OP.EXIT),
  );
  const maps: { data?: Uint8Array } = {};
  const spec = externSpec(p.bytes, [
    { insn: 0, name: 'CONFIG_HZ' }, { insn: 2, name: 'bpf_prog_put' }, { insn: 4, name: 'runqueues' },
    { insn: 6, name: 'bpf_kfunc' }, { insn: 7, name: 'missing_kfunc', weak: true }, { insn: 8, name: 'missing_sym', weak: true },
  ]);
  const res = resolveExterns(spec, p, fakeEnv(fullConfig, maps));
  // .kconfig: map value address of CONFIG_HZ (offset 8)
  assert.equal(p.src(0), 2);
  assert.equal(p.imm(0), 42);
  assert.equal(p.imm(1), 8);
  assert.equal(maps.data?.length, 33);
  // untyped ksym: the address split over the two immediates
  assert.equal(p.src(2), 0);
  assert.equal(p.imm(2) >>> 0, 0x814d3730);
  assert.equal(p.imm(3) >>> 0, 0xffffffff);
  // typed ksym: BPF_PSEUDO_BTF_ID of the kernel VAR
  assert.equal(p.src(4), 3);
  assert.equal(p.imm(4), 3);
  assert.equal(p.imm(5), 0);
  // kfunc: BPF_PSEUDO_KFUNC_CALL with the kernel FUNC's id
  assert.equal(p.src(6), 2);
  assert.equal(p.imm(6), 5);
  assert.equal(p.src(7), 2);
  assert.equal(p.imm(7), 0, 'a weak kfunc the kernel lacks keeps imm 0');
  assert.deepEqual([p.src(8), p.imm(8), p.imm(9)], [0, 0, 0]);
  assert.deepEqual(res.map((r) => [r.name, r.kind, r.found]), [
    ['CONFIG_HZ', 'kconfig', true], ['bpf_prog_put', 'ksym', true], ['runqueues', 'typed_ksym', true],
    ['bpf_kfunc', 'kfunc', true], ['missing_kfunc', 'kfunc', false], ['missing_sym', 'ksym', false],
  ]);
  const why = explainExternFailure('12: (85) call unknown\ninvalid kernel function call not eliminated in verifier pass\n', res, 'p');
  assert.match(why!, /weak kfunc missing_kfunc \(instruction 7\)/);
});

test('resolveExterns: strong externs the kernel lacks, and undefined symbols that are no externs', () => {
  const run = (name: string, at: Uint8Array[] = ldImm64(0n)) => {
    const p = program(at, insn(OP.EXIT));
    return () => resolveExterns(externSpec(p.bytes, [{ insn: 0, name }]), p, fakeEnv(fullConfig));
  };
  assert.throws(run('missing_sym'), /no symbol missing_sym in \/proc\/kallsyms/);
  assert.throws(run('missing_kfunc', [insn(0x85, -1, 0, 0, 1)]), /no kernel function \(kfunc\) missing_kfunc/);
  assert.throws(run('not_declared'), /neither defined in the object nor a __kconfig\/__ksym extern/);
  assert.throws(run('CONFIG_HZ', [insn(OP.MOV64_IMM)]), /not an ld_imm64/);
});

test('kernel version codes, config files and kallsyms', () => {
  assert.equal(kernelVersionCode('6.18.44-fc-v595'), 0x06122c);
  assert.equal(kernelVersionCode('5.4.300'), (5 << 16) + (4 << 8) + 255, 'the sublevel saturates at 255');
  assert.equal(kernelVersionCode('6.1'), 0x060100);
  const cfg = parseKernelConfig('# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n\nCONFIG_D=0x10\n');
  assert.deepEqual([...cfg], [['CONFIG_A', 'y'], ['CONFIG_C', '"x y"'], ['CONFIG_D', '0x10']]);
  const ks = readKallsyms(new Set(['a', 'b']), 'ffffffff81000000 T a\nffffffffc0000000 t b\t[mod]\nffffffffc0001000 t b\t[mod2]\n0000000000000000 A c\n');
  assert.deepEqual([...ks], [['a', [0xffffffff81000000n]], ['b', [0xffffffffc0000000n, 0xffffffffc0001000n]]]);
});

// --- sanitizing BTF for the kernel ------------------------------------------------------------------

test('sanitizeBtfForKernel: extern linkage, .kconfig layout, .ksyms placeholders; ids unchanged', () => {
  const s = sanitizeBtfForKernel(objectBtf);
  assert.notEqual(s, objectBtf);
  for (let id = 0; id < objectBtf.length; id++) assert.equal(s.type(id).id, id);
  assert.ok(s.types.every((t) => !((t.kind === 'var' || t.kind === 'func') && t.linkage === 'extern')));
  const kconfig = s.type(15);
  assert.equal(kconfig.kind, 'datasec');
  if (kconfig.kind !== 'datasec') return;
  assert.equal(kconfig.size, 33);
  assert.deepEqual(kconfig.vars.map((v) => [s.type(v.type).name, v.offset, v.size]), [
    ['CONFIG_U64', 0, 8], ['CONFIG_HZ', 8, 4], ['CONFIG_MISSING', 12, 4], ['CONFIG_T', 16, 4],
    ['LINUX_KERNEL_VERSION', 20, 4], ['CONFIG_BPF', 24, 1], ['CONFIG_X', 25, 8],
  ]);
  const ksyms = s.type(23);
  assert.equal(ksyms.kind, 'datasec');
  if (ksyms.kind !== 'datasec') return;
  assert.equal(ksyms.size, 20);
  assert.deepEqual(ksyms.vars.map((v) => [v.offset, v.size]), [[0, 4], [4, 4], [8, 4], [12, 4], [16, 4]]);
  for (const v of ksyms.vars) {
    const t = s.type(v.type);
    assert.equal(t.kind, 'var', 'every .ksyms entry is a variable');
    if (t.kind === 'var') assert.equal(s.sizeof(t.type), 4);
  }
  // The extern function's unnamed parameter got a name; the function is global now.
  const proto = s.type(19);
  assert.ok(proto.kind === 'func_proto' && proto.params[0]!.name !== '');
  assert.ok(s.type(20).kind === 'func' && (s.type(20) as { linkage: string }).linkage === 'global');
  // Still marshals, and BTF without externs comes back untouched.
  assert.ok(s.marshal().length > 0);
  assert.equal(sanitizeBtfForKernel(kernelForExterns), kernelForExterns);
});

test('sanitizeBtfForKernel replaces kinds an older kernel lacks, keeping sizes', () => {
  const s = sanitizeBtfForKernel(objectBtf, { ...ALL_BTF_FEATURES, float: false, typeTag: false, declTag: false, enum64: false });
  assert.deepEqual([s.type(24).kind, s.sizeof(24)], ['struct', 8]);
  assert.deepEqual([s.type(25).kind, (s.type(25) as { type: number }).type], ['const', 3]);
  assert.equal(s.type(26).kind, 'int');
  assert.deepEqual([s.type(27).kind, s.sizeof(27)], ['union', 8]);
  const old = sanitizeBtfForKernel(objectBtf, { ...ALL_BTF_FEATURES, datasec: false, globalFunc: false });
  assert.equal(old.type(15).kind, 'struct');
  assert.equal(old.type(8).kind, 'int');
  assert.equal((old.type(20) as { linkage: string }).linkage, 'static');
  assert.ok(old.marshal().length > 0);
});
