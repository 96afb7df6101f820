/**
 * The generated bindings as a TypeScript user sees them: the golden gentest.ts compiles under the
 * strictest options, test/gen/types-ok.ts (correct use) compiles against it, and every line of
 * test/gen/types-misuse.ts is a compile error on its own. Freshly generated modules (`--embed`
 * included) type-check the same way.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runGenOnce } from '../../src/cli/gen.js';
import {
  GENTEST_C, GOLDEN_DIR, ROOT, formatDiagnostics, needsClang, removeDir, scratchDir, typeCheck,
} from '../gen/harness.js';

const GOLDEN = join(GOLDEN_DIR, 'gentest.ts');
const OK = join(ROOT, 'test', 'gen', 'types-ok.ts');
const MISUSE = join(ROOT, 'test', 'gen', 'types-misuse.ts');

describe('gen: type tests', () => {
  let dir = '';
  before(() => {
    dir = scratchDir('gen-types');
  });
  after(() => removeDir(dir));

  it('the golden module and the correct uses compile under strict options', () => {
    const ds = typeCheck([GOLDEN, OK]);
    assert.equal(ds.length, 0, formatDiagnostics(ds));
  });

  it('every @ts-expect-error in the misuse file is needed', () => {
    const ds = typeCheck([MISUSE]);
    assert.equal(ds.length, 0, formatDiagnostics(ds));
  });

  it('with the directives removed, each misuse line is an error of its own', () => {
    const lines = readFileSync(MISUSE, 'utf8').split('\n');
    const expected: number[] = [];
    const stripped = lines.map((line, i) => {
      if (/^\s*\/\/ @ts-expect-error/.test(line)) {
        expected.push(i + 2); // the line after the directive, 1-based
        return '';
      }
      return line.replace("'./golden/gentest.js'", JSON.stringify(join(GOLDEN_DIR, 'gentest.js')));
    });
    assert.ok(expected.length >= 10, 'the misuse file has its directives');
    const path = join(dir, 'types-misuse-stripped.ts');
    writeFileSync(path, stripped.join('\n'));
    const ds = typeCheck([path]).filter((d) => d.file === path);
    const errorLines = [...new Set(ds.map((d) => d.line))].sort((a, b) => a - b);
    assert.deepEqual(errorLines, expected, formatDiagnostics(ds));
  });

  it('bindings for every test object (legacy maps, maps of maps, CO-RE, no BTF) type-check', async (t) => {
    const build = join(ROOT, 'test', 'bpf', 'build');
    const objects = existsSync(build) ? readdirSync(build).filter((f) => f.endsWith('.bpf.o')).sort() : [];
    if (objects.length === 0) {
      t.skip('no objects in test/bpf/build: run scripts/build-bpf.sh');
      return;
    }
    const modules: string[] = [];
    for (const o of objects) {
      const ident = o.replace(/\.bpf\.o$/, '').replace(/[^A-Za-z0-9_]/g, '_');
      const r = await runGenOnce({ ident, input: join(build, o), outDir: join(dir, 'all') });
      modules.push(r.module);
    }
    const ds = typeCheck(modules);
    assert.equal(ds.length, 0, formatDiagnostics(ds));
  });

  it('a freshly generated module type-checks, with the object embedded too', needsClang, async () => {
    for (const embed of [false, true]) {
      const out = join(dir, embed ? 'embed' : 'file');
      const r = await runGenOnce({ ident: 'gentest', input: GENTEST_C, outDir: out, types: ['gen_event'], embed });
      const ds = typeCheck([r.module]);
      assert.equal(ds.length, 0, formatDiagnostics(ds));
    }
  });
});
