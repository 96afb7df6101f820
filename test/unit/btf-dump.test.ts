/**
 * `bpfkit btf dump`: BTF written as C. Hand-built BTF checks each rule (declarator syntax, forward
 * declarations for cycles, padding and `packed`, duplicate names, anonymous enums, 64-bit and
 * packed enums, the compiler's own typedefs), every header is compiled with clang, and the layout
 * clang then gives every struct and union (read back from the compiled object's BTF) must equal
 * the layout in the BTF it was written from. For this machine's kernel, the vmlinux.h must compile
 * a CO-RE program and reproduce every kernel struct's layout exactly.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Btf } from '../../src/btf/btf.js';
import { dumpC, dumpJson } from '../../src/btf/dump-c.js';
import type { BtfMember, BtfStruct, BtfType } from '../../src/btf/types.js';
import { ElfFile } from '../../src/elf/reader.js';
import { loadBtfFile, runBtf } from '../../src/cli/btf.js';
import { runGenOnce } from '../../src/cli/gen.js';
import { GENTEST_C, ROOT, clang, needsClang, removeDir, scratchDir } from '../gen/harness.js';

class Types {
  readonly list: BtfType[] = [{ kind: 'void', id: 0, name: '' }];
  private add(make: (id: number) => BtfType): number {
    const id = this.list.length;
    this.list.push(make(id));
    return id;
  }
  /** Reserves an id for a type defined later (for cycles). */
  later(): { id: number; set(make: (id: number) => BtfType): void } {
    const id = this.list.length;
    this.list.push({ kind: 'void', id: 0, name: '' });
    return { id, set: (make) => { this.list[id] = make(id); } };
  }
  int(name: string, size: number, signed: boolean, bool = false): number {
    return this.add((id) => ({ kind: 'int', id, name, size, signed, char: name === 'char', bool, bits: size * 8, bitOffset: 0 }));
  }
  float(name: string, size: number): number {
    return this.add((id) => ({ kind: 'float', id, name, size }));
  }
  ptr(type: number): number {
    return this.add((id) => ({ kind: 'ptr', id, name: '', type }));
  }
  array(type: number, nelems: number): number {
    return this.add((id) => ({ kind: 'array', id, name: '', type, indexType: 0, nelems }));
  }
  typedef(name: string, type: number): number {
    return this.add((id) => ({ kind: 'typedef', id, name, type }));
  }
  qual(kind: 'const' | 'volatile' | 'restrict', type: number): number {
    return this.add((id) => ({ kind, id, name: '', type }));
  }
  fwd(name: string, fwdKind: 'struct' | 'union' = 'struct'): number {
    return this.add((id) => ({ kind: 'fwd', id, name, fwdKind }));
  }
  struct(kind: 'struct' | 'union', name: string, size: number, members: Array<[string, number, number, number?]>): number {
    return this.add((id) => structType(id, kind, name, size, members));
  }
  enum(kind: 'enum' | 'enum64', name: string, size: number, signed: boolean, values: Array<[string, bigint]>): number {
    return this.add((id) => ({ kind, id, name, size, signed, values: values.map(([n, value]) => ({ name: n, value })) }));
  }
  proto(ret: number, params: number[]): number {
    return this.add((id) => ({ kind: 'func_proto', id, name: '', returnType: ret, params: params.map((type) => ({ name: '', type })) }));
  }
  func(name: string, proto: number): number {
    return this.add((id) => ({ kind: 'func', id, name, type: proto, linkage: 'global' }));
  }
  btf(): Btf {
    return Btf.fromTypes(this.list);
  }
}

function structType(id: number, kind: 'struct' | 'union', name: string, size: number, members: Array<[string, number, number, number?]>): BtfStruct {
  const ms: BtfMember[] = members.map(([n, type, bitOffset, bitfieldSize]) => ({ name: n, type, bitOffset, bitfieldSize: bitfieldSize ?? 0 }));
  return { kind, id, name, size, members: ms, kindFlag: ms.some((m) => m.bitfieldSize !== 0) };
}

/** Every rule of the C writer, in one small BTF. */
function zoo(): Btf {
  const b = new Types();
  const char = b.int('char', 1, true);
  const uchar = b.int('unsigned char', 1, false);
  const short = b.int('short', 2, true);
  const int = b.int('int', 4, true);
  const uint = b.int('unsigned int', 4, false);
  const long = b.int('long', 8, true);
  const ull = b.int('unsigned long long', 8, false);
  const bool = b.int('_Bool', 1, false, true);
  const dbl = b.float('double', 8);
  const u32 = b.typedef('u32', uint);
  const u8 = b.typedef('u8', uchar);
  // Cycles: a holds b by value, b points back at a and at itself through a typedef.
  const a = b.later();
  const bb = b.later();
  const bT = b.typedef('b_t', bb.id);
  const cb = b.proto(int, [b.ptr(a.id), b.ptr(bT), 0]);
  bb.set((id) => structType(id, 'struct', 'b', 24, [['back', b.ptr(a.id), 0], ['self', b.ptr(bT), 64], ['x', int, 128]]));
  a.set((id) => structType(id, 'struct', 'a', 40, [['inner', bb.id, 0], ['cb', b.ptr(cb), 192], ['u', u32, 256]]));
  // Declarators: pointer to array, array of pointers, array of function pointers, const pointer,
  // pointer to const, volatile, restrict, 2-D arrays, const arrays of const.
  const cchar = b.qual('const', char);
  const fnp = b.ptr(b.proto(b.ptr(char), [int, b.ptr(cchar)]));
  b.struct('struct', 'decls', 144, [
    ['pa', b.ptr(b.array(int, 4)), 0], ['ap', b.array(b.ptr(int), 2), 64], ['af', b.array(fnp, 2), 192],
    ['cp', b.qual('const', b.ptr(int)), 320], ['pc', b.ptr(cchar), 384], ['v', b.qual('volatile', int), 448],
    ['rp', b.qual('restrict', b.ptr(char)), 512], ['grid', b.array(b.array(short, 3), 2), 576],
    ['cc', b.qual('const', b.array(cchar, 4)), 672], ['d', dbl, 704], ['vp', b.ptr(0), 768],
    ['ppf', b.ptr(b.ptr(b.proto(0, []))), 832], ['tail', b.array(ull, 0), 896], ['fl', b.array(u8, 5), 896],
    ['after', long, 960], ['big', b.array(long, 2), 1024],
  ]);
  // Layout: a packed struct, explicit gaps (between members and at the end), a straddling
  // bitfield (forces packed), bitfields with gaps, an aligned-up member inside.
  b.struct('struct', 'packed_s', 5, [['c', char, 0], ['i', int, 8]]);
  b.struct('struct', 'gaps', 56, [['a', int, 0], ['b', long, 128], ['c', char, 256], ['d', int, 320]]);
  b.struct('struct', 'bits', 16, [['a', uint, 0, 3], ['b', uint, 3, 10], ['c', uint, 40, 5], ['d', ull, 64, 33], ['e', bool, 120, 1]]);
  b.struct('struct', 'straddle', 8, [['a', uint, 0, 30], ['b', uint, 30, 4]]);
  const packedInner = b.struct('struct', 'pinner', 3, [['s', short, 0], ['c', char, 16]]);
  b.struct('struct', 'outer', 12, [['c', char, 0], ['p', packedInner, 8], ['d', char, 32], ['i', int, 64]]);
  b.struct('union', 'un', 16, [['i', int, 0], ['l', long, 0]]);
  // Anonymous members, nested; a typedef of an anonymous struct; anonymous enums.
  const anonEnum = b.enum('enum', '', 4, false, [['ANON_A', 0n], ['ANON_B', 7n]]);
  const anonS = b.struct('struct', '', 8, [['lo', uint, 0], ['hi', uint, 32]]);
  const anonU = b.struct('union', '', 8, [['whole', ull, 0], ['', anonS, 0]]);
  b.struct('struct', 'nest', 24, [['tag', anonEnum, 0], ['', anonU, 64], ['sub', b.struct('struct', '', 8, [['q', long, 0]]), 128]]);
  b.typedef('pair_t', b.struct('struct', '', 8, [['k', int, 0], ['v', int, 32]]));
  b.enum('enum', '', 4, true, [['LONE_NEG', -1n], ['LONE_MAX', 0x7fffffffn]]);
  // Enums: packed, 64-bit, signed 64-bit extremes, an 8-byte enum C would make 4 bytes.
  const small = b.enum('enum', 'small', 1, false, [['S0', 0n], ['S255', 255n]]);
  const wide = b.enum('enum64', 'wide', 8, false, [['W0', 0n], ['WMAX', (1n << 64n) - 1n]]);
  const swide = b.enum('enum64', 'swide', 8, true, [['SMIN', -(1n << 63n)], ['SMAX', (1n << 63n) - 1n]]);
  const fake8 = b.enum('enum', 'fake8', 8, false, [['F1', 1n]]);
  b.struct('struct', 'enums', 32, [['s', small, 0], ['w', wide, 64], ['sw', swide, 128], ['f', fake8, 192]]);
  // Duplicate names: a second struct dup, enumerators defined twice, a typedef named twice.
  b.struct('struct', 'dup', 4, [['x', int, 0]]);
  b.struct('struct', 'dup', 8, [['y', long, 0]]);
  b.enum('enum', 'e1', 4, false, [['SAME', 1n]]);
  b.enum('enum', 'e2', 4, false, [['SAME', 2n]]);
  b.typedef('twice', int);
  b.typedef('twice', long);
  // Forward declarations: one without a definition, one with.
  const opaque = b.fwd('opaque');
  const fwdA = b.fwd('a');
  b.struct('struct', 'uses_fwd', 16, [['o', b.ptr(opaque), 0], ['a', b.ptr(fwdA), 64]]);
  // gcc's __builtin_va_list, as kernel BTF has it.
  const tag = b.struct('struct', '__va_list_tag', 24, [['gp_offset', uint, 0], ['fp_offset', uint, 32], ['overflow_arg_area', b.ptr(0), 64], ['reg_save_area', b.ptr(0), 128]]);
  const builtin = b.typedef('__builtin_va_list', b.array(tag, 1));
  const vaList = b.typedef('va_list', builtin);
  b.struct('struct', 'uses_va', 32, [['fmt', b.ptr(cchar), 0], ['args', vaList, 64]]);
  b.func('some_function', b.proto(int, [int]));
  return b.btf();
}

/** Compiles `header` with a by-value global of every struct and union it defines. */
function compileHeader(dir: string, name: string, header: string, extra = ''): Btf {
  const h = join(dir, `${name}.h`);
  writeFileSync(h, header);
  const defs = [...header.matchAll(/^(struct|union) (\w+) \{/gm)].map((m) => `${m[1]} ${m[2]}`);
  const c = join(dir, `${name}.c`);
  writeFileSync(c, `#include "${name}.h"\n${extra}\n${defs.map((d, i) => `${d} __layout_${i};`).join('\n')}\n`);
  const o = join(dir, `${name}.o`);
  execFileSync(clang!, ['-target', 'bpf', '-g', '-O2', '-Wall', '-Werror', '-c', c, '-o', o], { stdio: ['ignore', 'pipe', 'pipe'] });
  const elf = ElfFile.parse(readFileSync(o));
  const sec = elf.sections.find((s) => s.name === '.BTF');
  assert.ok(sec, 'the object has BTF');
  return Btf.parse(elf.data(sec));
}

/**
 * Checks that every named struct and union clang laid out has the size and member offsets of its
 * source type (matched by name; `name___N` is the Nth type of that name). Returns how many.
 */
function compareLayouts(source: Btf, compiled: Btf): number {
  // Struct, union and enum tags share one C namespace: the Nth type to claim a tag is `tag___N`.
  const claimants = new Map<string, BtfType[]>();
  for (const t of source.types) {
    const claims = t.kind === 'struct' || t.kind === 'union' || ((t.kind === 'enum' || t.kind === 'enum64') && t.values.length > 0);
    if (claims && t.name) claimants.set(t.name, [...(claimants.get(t.name) ?? []), t]);
  }
  let n = 0;
  for (const t of compiled.types) {
    if ((t.kind !== 'struct' && t.kind !== 'union') || !t.name) continue;
    const m = /^(.*)___(\d+)$/.exec(t.name);
    const want = claimants.get(m ? m[1]! : t.name)?.[m ? Number(m[2]) - 1 : 0];
    assert.ok(want && want.kind === t.kind, `${t.kind} ${t.name} comes from the source BTF`);
    sameLayout(source, want as BtfStruct, compiled, t, `${t.kind} ${t.name}`);
    n++;
  }
  return n;
}

function sameLayout(sb: Btf, s: BtfStruct, cb: Btf, c: BtfStruct, where: string): void {
  assert.equal(c.size, s.size, `${where}: size`);
  // clang drops unnamed bitfields (our padding) from BTF; a union's padding is a __bpfkit_pad array.
  const cm = c.members.filter((m) => !(c.kind === 'union' && m.name === '__bpfkit_pad'));
  const sm = s.members;
  assert.equal(cm.length, sm.length, `${where}: members ${cm.map((x) => x.name)} vs ${sm.map((x) => x.name)}`);
  sm.forEach((x, i) => {
    const y = cm[i]!;
    assert.equal(y.name, x.name, `${where}: member ${i}`);
    assert.equal(y.bitOffset, x.bitOffset, `${where}.${x.name}: bit offset`);
    assert.equal(y.bitfieldSize, x.bitfieldSize, `${where}.${x.name}: bitfield size`);
    const xs = sb.resolve(x.type);
    const ys = cb.resolve(y.type);
    if ((xs.kind === 'struct' || xs.kind === 'union') && !xs.name) {
      assert.ok(ys.kind === xs.kind, `${where}.${x.name}: ${ys.kind} vs ${xs.kind}`);
      sameLayout(sb, xs, cb, ys as BtfStruct, `${where}.${x.name || '(anon)'}`);
    }
  });
}

describe('btf dump: C', () => {
  let dir = '';
  before(() => {
    dir = scratchDir('btf-dump');
  });
  after(() => removeDir(dir));

  it('writes declarators, forward declarations, padding, packed structs, enums and names as C needs', () => {
    const h = dumpC(zoo());
    const has = (s: string): void => assert.ok(h.includes(s), `missing:\n${s}\n--- in ---\n${h}`);
    has('#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n');
    has('#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)');
    has('#pragma clang attribute pop');
    // struct a needs b complete; b and the callback only point at a: forward-declared first.
    assert.ok(h.indexOf('struct a;') < h.indexOf('struct b {'), 'struct a is declared before b uses it');
    assert.ok(h.indexOf('struct b {') < h.indexOf('struct a {'), 'b (held by value) is defined before a');
    has('typedef struct b b_t;');
    has('\tint (*cb)(struct a *, b_t *, ...);');
    has('\tint (*pa)[4];');
    has('\tint *ap[2];');
    has('\tchar *(*af[2])(int, const char *);');
    has('\tint *const cp;');
    has('\tconst char *pc;');
    has('\tvolatile int v;');
    has('\tchar *restrict rp;');
    has('\tshort grid[2][3];');
    has('\tconst char cc[4];');
    has('\tvoid *vp;');
    has('\tvoid (**ppf)(void);');
    has('\tunsigned long long tail[0];');
    has('struct packed_s {\n\tchar c;\n\tint i;\n} __attribute__((packed));');
    has('struct gaps {\n\tint a;\n\tint: 32;\n\tlong: 64;\n\tlong b;\n\tlong: 64;\n\tchar c;\n\tchar: 8;\n\tshort: 16;\n\tint: 32;\n\tint d;\n\tint: 32;\n\tlong: 64;\n};');
    has('struct bits {\n\tunsigned int a: 3;\n\tunsigned int b: 10;\n\tchar: 3;\n\tshort: 16;\n\tchar: 8;\n\tunsigned int c: 5;\n\tunsigned long long d: 33;\n\tchar: 7;\n\tchar: 8;\n\tchar: 8;\n\t_Bool e: 1;\n};');
    has('struct straddle {\n\tunsigned int a: 30;\n\tunsigned int b: 4;\n\tchar: 6;\n\tchar: 8;\n\tshort: 16;\n} __attribute__((packed));');
    has('struct pinner {\n\tshort s;\n\tchar c;\n} __attribute__((packed));');
    has('struct outer {\n\tchar c;\n\tstruct pinner p;\n\tchar d;\n\tint i;\n};');
    has('union un {\n\tint i;\n\tlong l;\n\tchar __bpfkit_pad[16];\n};');
    has('struct nest {\n\tenum {\n\t\tANON_A = 0,\n\t\tANON_B = 7,\n\t} tag;\n\tunion {\n\t\tunsigned long long whole;\n\t\tstruct {\n\t\t\tunsigned int lo;\n\t\t\tunsigned int hi;\n\t\t};\n\t};\n\tstruct {\n\t\tlong q;\n\t} sub;\n};');
    has('typedef struct {\n\tint k;\n\tint v;\n} pair_t;');
    has('enum {\n\tLONE_NEG = -1,\n\tLONE_MAX = 2147483647,\n};');
    has('enum small {\n\tS0 = 0,\n\tS255 = 255,\n} __attribute__((packed));');
    has('enum wide {\n\tW0 = 0,\n\tWMAX = 18446744073709551615ULL,\n};');
    has('enum swide {\n\tSMIN = (-9223372036854775807LL - 1),\n\tSMAX = 9223372036854775807LL,\n};');
    has('\tunsigned long long f;');
    has('struct dup {\n\tint x;\n};');
    has('struct dup___2 {\n\tlong y;\n};');
    has('enum e2 {\n\tSAME___2 = 2,\n};');
    has('typedef int twice;');
    has('typedef long twice___2;');
    has('struct opaque;');
    has('\tstruct opaque *o;\n\tstruct a *a;');
    has('typedef struct __va_list_tag va_list[1];');
    has('\tva_list args;');
    assert.ok(!h.includes('__builtin_va_list'), 'gcc builtin typedefs are not redefined');
    assert.ok(!h.includes('some_function'), 'functions are not declared');
    assert.ok(!h.includes('const const'), 'a qualifier is not repeated');
  });

  it('compiles, and clang lays every struct out as the BTF says', needsClang, () => {
    const btf = zoo();
    const compiled = compileHeader(dir, 'zoo', dumpC(btf));
    assert.ok(compareLayouts(btf, compiled) >= 15);
  });

  it('writes an object\'s BTF back as C that compiles to the same layouts', needsClang, async () => {
    const r = await runGenOnce({ ident: 'gentest', input: GENTEST_C, outDir: join(dir, 'obj') });
    const path = join(dir, 'obj.h');
    assert.equal(await runBtf(['dump', r.object, '--out', path]), 0);
    const source = await loadBtfFile(r.object);
    const compiled = compileHeader(dir, 'objcheck', readFileSync(path, 'utf8'));
    assert.equal(compareLayouts(source, compiled), 7);
  });

  it('writes JSON', () => {
    const parsed = JSON.parse(dumpJson(zoo())) as { types: Array<{ id: number; kind: string; name: string; values?: Array<{ value: number | string }> }> };
    assert.equal(parsed.types[0]!.id, 1);
    const wide = parsed.types.find((t) => t.name === 'wide')!;
    assert.deepEqual(wide.values!.map((v) => v.value), [0, '18446744073709551615']);
  });

  it('prints usage and refuses bad arguments', async () => {
    const quiet = process.stderr.write.bind(process.stderr);
    const out: string[] = [];
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      if (typeof chunk !== 'string') return quiet(chunk, ...rest);
      out.push(chunk);
      return true;
    }) as typeof process.stderr.write;
    try {
      assert.equal(await runBtf(['frobnicate']), 2);
      assert.equal(await runBtf(['dump', '--format', 'yaml']), 2);
      assert.equal(await runBtf(['dump', 'a', 'b']), 2);
    } finally {
      process.stderr.write = quiet;
    }
    assert.match(out.join(''), /unknown subcommand "frobnicate"/);
    assert.match(out.join(''), /--format must be c or json, not "yaml"/);
    await assert.rejects(runBtf(['dump', join(dir, 'missing.btf')]), /cannot read .*missing\.btf: ENOENT/);
    const notBtf = join(dir, 'garbage');
    writeFileSync(notBtf, 'hello world, not BTF');
    await assert.rejects(runBtf(['dump', notBtf, '--out', join(dir, 'x.h')]), /bad BTF magic/);
  });
});

const VMLINUX = '/sys/kernel/btf/vmlinux';
const vmlinuxReadable = (() => {
  try {
    accessSync(VMLINUX, constants.R_OK);
    return true;
  } catch {
    return false;
  }
})();

describe('btf dump: this kernel\'s vmlinux.h', { skip: !vmlinuxReadable ? `${VMLINUX} is not readable` : false }, () => {
  let dir = '';
  let header = '';
  before(async () => {
    dir = scratchDir('vmlinux');
    header = join(dir, 'vmlinux.h');
    assert.equal(await runBtf(['dump', '--out', header]), 0);
  });
  after(() => removeDir(dir));

  it('compiles a CO-RE program (BPF_CORE_READ, field/type/enum relocations, tp_btf)', needsClang, () => {
    const src = join(ROOT, 'test', 'gen', 'btf-dump-core.bpf.c');
    execFileSync(clang!, ['-target', 'bpf', '-g', '-O2', '-D__TARGET_ARCH_x86', '-Wall', '-Werror', `-I${dir}`, '-c', src, '-o', join(dir, 'core.bpf.o')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const elf = ElfFile.parse(readFileSync(join(dir, 'core.bpf.o')));
    assert.ok(elf.sections.some((s) => s.name === '.BTF.ext'), 'CO-RE relocations were recorded');
  });

  it('lays out every kernel struct and union exactly as the kernel does', needsClang, async () => {
    const kernel = await loadBtfFile(VMLINUX);
    const compiled = compileHeader(dir, 'vmcheck', readFileSync(header, 'utf8'));
    const n = compareLayouts(kernel, compiled);
    const named = kernel.types.filter((t) => (t.kind === 'struct' || t.kind === 'union') && t.name).length;
    assert.equal(n, named, 'every named struct and union was compiled');
  });

  it('is written once per name, guarded and deterministic', async () => {
    const text = readFileSync(header, 'utf8');
    assert.match(text, /^\/\* Generated by bpfkit btf dump from \/sys\/kernel\/btf\/vmlinux; DO NOT EDIT\. \*\/\n#ifndef __VMLINUX_H__\n/);
    assert.match(text, /\n#endif \/\* __VMLINUX_H__ \*\/\n$/);
    assert.match(text, /^struct task_struct \{$/m);
    const again = join(dir, 'again.h');
    assert.equal(await runBtf(['dump', VMLINUX, '--format', 'c', '--out', again]), 0);
    assert.equal(readFileSync(again, 'utf8'), text);
  });
});
