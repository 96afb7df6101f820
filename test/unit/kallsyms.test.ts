/**
 * /proc/kallsyms is read at most once per name and process, and the syscall-wrapper question
 * stops at the first hit: a fake source counts the passes and the chunks each pass consumed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KernelSymbols, scanKallsyms, type KallsymsSource } from '../../src/kernel/kallsyms.js';
import { ExternResolver } from '../../src/load/externs.js';
import { Btf } from '../../src/btf/btf.js';

const TEXT = [
  'ffffffff81000000 T _stext',
  'ffffffff81001000 T __x64_sys_bpf',
  'ffffffff81002000 t dup_sym',
  'ffffffff81003000 t dup_sym',
  'ffffffff81004000 T bpf_prog_put',
  'ffffffffc0000000 t mod_sym\t[some_mod]',
  'ffffffffc0001000 t last_sym\t[other_mod]',
].join('\n') + '\n';

/** TEXT in `size`-byte chunks (lines cut anywhere), counting passes and chunks handed out. */
function counting(size: number): KallsymsSource & { passes: number; chunksRead: number; chunksTotal: number } {
  const chunks: string[] = [];
  for (let i = 0; i < TEXT.length; i += size) chunks.push(TEXT.slice(i, i + size));
  const src = {
    passes: 0, chunksRead: 0, chunksTotal: chunks.length,
    *chunks() {
      src.passes++;
      for (const c of chunks) {
        src.chunksRead++;
        yield c;
      }
    },
  };
  return src;
}

test('scanKallsyms: names across chunk boundaries, module symbols, every address of a duplicate', () => {
  for (const size of [1, 7, 64, TEXT.length]) {
    const src = counting(size);
    const found = scanKallsyms(new Set(['dup_sym', 'mod_sym', 'last_sym', 'absent']), src.chunks());
    assert.deepEqual([...found], [
      ['dup_sym', [0xffffffff81002000n, 0xffffffff81003000n]],
      ['mod_sym', [0xffffffffc0000000n]],
      ['last_sym', [0xffffffffc0001000n]],
    ], `chunks of ${size} bytes`);
  }
  // File order, whichever way the lines end (a module symbol listed before the core one).
  const mixed = 'ffffffffc0000000 t x\t[m]\nffffffff81000000 T x\nffffffff81000010 T y\n';
  assert.deepEqual([...scanKallsyms(new Set(['y', 'x']), [mixed])], [['x', [0xffffffffc0000000n, 0xffffffff81000000n]], ['y', [0xffffffff81000010n]]]);
  // A name inside another field is no symbol.
  assert.equal(scanKallsyms(new Set(['T']), ['ffffffff81000000 T x\n']).size, 0);
  // The last line without its newline still counts.
  assert.deepEqual([...scanKallsyms(new Set(['x']), ['ffffffff8100 T a\nffffffff8200 T', ' x'])], [['x', [0xffffffff8200n]]]);
});

test('KernelSymbols.lookup: one pass for the names never asked, none for names known (found or absent)', () => {
  const src = counting(16);
  const syms = new KernelSymbols(src);
  assert.deepEqual([...syms.lookup(new Set(['bpf_prog_put', 'absent']))], [['bpf_prog_put', [0xffffffff81004000n]]]);
  assert.equal(src.passes, 1);
  syms.lookup(new Set(['bpf_prog_put']));
  syms.lookup(new Set(['absent']));
  syms.lookup(new Set(['absent', 'bpf_prog_put']));
  assert.equal(src.passes, 1, 'known names (and known absences) read nothing');
  assert.deepEqual([...syms.lookup(new Set(['bpf_prog_put', 'dup_sym']))].map(([n, a]) => [n, a.length]), [['bpf_prog_put', 1], ['dup_sym', 2]]);
  assert.equal(src.passes, 2, 'a new name costs one more pass');
});

test('KernelSymbols.hasAny: stops at the first symbol found and remembers the answer', () => {
  const src = counting(16);
  const syms = new KernelSymbols(src);
  assert.equal(syms.hasAny(['__arm64_sys_bpf', '__x64_sys_bpf']), true);
  assert.equal(src.passes, 1);
  assert.ok(src.chunksRead < src.chunksTotal, `read ${src.chunksRead} of ${src.chunksTotal} chunks: it stopped at the hit`);
  assert.equal(syms.hasAny(['__x64_sys_bpf']), true);
  assert.equal(src.passes, 1, 'a symbol seen present is not looked for again');
  assert.equal(syms.hasAny(['sys_bpf', 'nope']), false);
  assert.equal(syms.hasAny(['nope']), false);
  assert.equal(src.passes, 2, 'absences are remembered too');
  // lookup() still reads the full address list of a name hasAny only saw.
  assert.deepEqual([...syms.lookup(new Set(['__x64_sys_bpf']))], [['__x64_sys_bpf', [0xffffffff81001000n]]]);
});

test('an unreadable kallsyms has no symbols', () => {
  const syms = new KernelSymbols({ chunks: () => [] });
  assert.equal(syms.lookup(new Set(['a'])).size, 0);
  assert.equal(syms.hasAny(['a']), false);
});

test('ExternResolver asks its KernelSymbols: the syscall-wrapper probe and ksym look-ups share one reading', () => {
  const src = counting(32);
  const externs = new ExternResolver({ symbols: new KernelSymbols(src) });
  try {
    for (let i = 0; i < 8; i++) assert.equal(externs.kallsymsHasAny(['__x64_sys_bpf', '__arm64_sys_bpf']), true);
    for (let i = 0; i < 8; i++) assert.equal(externs.kallsyms(new Set(['bpf_prog_put'])).size, 1);
    assert.equal(src.passes, 2, 'eight programs asking the same cost one pass per question');
  } finally {
    externs.close();
  }
});

test('ExternResolver: a function the parsed kernel BTF names needs no kallsyms; one it lacks still asks kallsyms', () => {
  const kernel = Btf.fromTypes([
    { kind: 'void', id: 0, name: '' },
    { kind: 'func_proto', id: 1, name: '', returnType: 0, params: [] },
    { kind: 'func', id: 2, name: '__x64_sys_bpf', type: 1, linkage: 'global' },
  ]);
  const src = counting(32);
  const withBtf = new ExternResolver({ symbols: new KernelSymbols(src), parsedKernelBtf: () => kernel });
  assert.equal(withBtf.kallsymsHasAny(['__arm64_sys_bpf', '__x64_sys_bpf']), true);
  assert.equal(src.passes, 0, 'answered from the BTF');
  assert.equal(withBtf.kallsymsHasAny(['bpf_prog_put']), true, 'not in the BTF: kallsyms has it');
  assert.equal(src.passes, 1);
  const noBtf = new ExternResolver({ symbols: new KernelSymbols(src), parsedKernelBtf: () => undefined });
  assert.equal(noBtf.kallsymsHasAny(['__x64_sys_bpf']), true);
  assert.equal(src.passes, 2, 'without parsed BTF, kallsyms answers');
});
