/**
 * The API reference: every attach function, map type and reader exported from the package's entry
 * points says which kernel it needs ("Requires Linux X.Y") and what it throws (@throws), and
 * TypeDoc builds the reference without a warning (a broken {@link} fails the build).
 *
 * The walk uses the TypeScript compiler API on the sources, so it needs no kernel and no build of
 * the docs; it is also run on a small synthetic module to show it catches what it looks for.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';

const root = new URL('../../..', import.meta.url).pathname;
const ENTRY_POINTS = ['src/index.ts', 'src/testing/index.ts', 'src/elf/reader.ts'];
const REQUIRES = /Requires Linux \d+\.\d+/;

interface Checked {
  /** What was checked, e.g. "attachXdp", "Program.attach", "MapType.ringbuf". */
  names: string[];
  problems: string[];
}

function docText(checker: ts.TypeChecker, sym: ts.Symbol): string {
  return ts.displayPartsToString(sym.getDocumentationComment(checker));
}

function hasThrows(sym: ts.Symbol, checker: ts.TypeChecker): boolean {
  return sym.getJsDocTags(checker).some((t) => t.name === 'throws');
}

/** Applies the rules to one documented symbol (a function, method or class). */
function checkOne(checker: ts.TypeChecker, sym: ts.Symbol, name: string, out: Checked): void {
  out.names.push(name);
  if (!REQUIRES.test(docText(checker, sym))) out.problems.push(`${name}: no "Requires Linux X.Y" line`);
  if (!hasThrows(sym, checker)) out.problems.push(`${name}: no @throws`);
}

/** Each member of the map type union needs its own "`name`...Requires Linux X.Y" line. */
function checkMapType(checker: ts.TypeChecker, sym: ts.Symbol, out: Checked): void {
  const decl = sym.declarations?.[0];
  if (!decl) return;
  const type = checker.getTypeAtLocation(decl);
  const members = (type.isUnion() ? type.types : [type])
    .filter((t): t is ts.StringLiteralType => t.isStringLiteral())
    .map((t) => t.value)
    .filter((v) => v !== 'unspec');
  const lines = docText(checker, sym).split('\n');
  for (const m of members) {
    out.names.push(`MapType.${m}`);
    const line = lines.find((l) => l.includes(`\`${m}\``));
    if (!line || !REQUIRES.test(line)) out.problems.push(`MapType.${m}: no "Requires Linux X.Y" on its line`);
  }
  if (!hasThrows(sym, checker)) out.problems.push('MapType: no @throws');
}

/** Walks the exports of the entry points: attach* functions and methods, *Reader classes, MapType. */
function walk(files: readonly string[]): Checked {
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, skipLibCheck: true, noEmit: true,
  });
  const checker = program.getTypeChecker();
  const out: Checked = { names: [], problems: [] };
  const seen = new Set<ts.Symbol>();
  for (const file of files) {
    const source = program.getSourceFile(file);
    assert.ok(source, `${file} is not part of the program`);
    const moduleSym = checker.getSymbolAtLocation(source);
    assert.ok(moduleSym, `${file} is not a module`);
    for (const exported of checker.getExportsOfModule(moduleSym)) {
      const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      if (seen.has(sym)) continue;
      seen.add(sym);
      const name = exported.getName();
      if (sym.flags & ts.SymbolFlags.Function && /^attach/.test(name)) checkOne(checker, sym, name, out);
      if (sym.flags & ts.SymbolFlags.Class) {
        if (/Reader$/.test(name)) checkOne(checker, sym, name, out);
        for (const [memberName, member] of sym.members ?? new Map<ts.__String, ts.Symbol>()) {
          const m = String(memberName);
          if (member.flags & ts.SymbolFlags.Method && /^attach/.test(m)) checkOne(checker, member, `${name}.${m}`, out);
        }
      }
      if (sym.flags & ts.SymbolFlags.TypeAlias && name === 'MapType') checkMapType(checker, sym, out);
    }
  }
  return out;
}

describe('API reference', () => {
  it('every exported attach function, attach method, reader and map type says its kernel and what it throws', () => {
    const result = walk(ENTRY_POINTS.map((f) => join(root, f)));
    assert.deepEqual(result.problems, []);
    // The walk found what it is meant to check (a renamed export must not silently escape it).
    for (const expected of [
      'attach', 'attachXdp', 'attachTc', 'attachKprobe', 'attachUprobeMulti', 'attachUsdt', 'attachIter', 'attachLsm',
      'Program.attach', 'Collection.attachAll', 'RingBufReader', 'PerfReader', 'MapType.hash', 'MapType.arena',
    ]) {
      assert.ok(result.names.includes(expected), `${expected} was not checked`);
    }
  });

  it('the walk reports an attach function, reader or map type missing its lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-api-docs-'));
    try {
      const file = join(dir, 'api.ts');
      writeFileSync(file, [
        '/**',
        ' * Documented. Requires Linux 4.8.',
        ' * @throws {Error} always',
        ' */',
        'export function attachGood(): void {}',
        '/**',
        ' * Says nothing of the kernel.',
        ' * @throws {Error} never',
        ' */',
        'export function attachNoVersion(): void {}',
        '/** Requires Linux 5.8. */',
        'export class RingReader {}',
        'export class Prog {',
        '  /**',
        '   * Requires Linux 3.19.',
        '   * @throws {Error} when refused',
        '   */',
        '  attachSomewhere(): void {}',
        '}',
        '/**',
        ' * - `hash`: Requires Linux 3.19',
        ' * - `ringbuf`: new',
        ' * @throws {Error} on create',
        ' */',
        "export type MapType = 'unspec' | 'hash' | 'ringbuf';",
        '',
      ].join('\n'));
      const result = walk([file]);
      assert.deepEqual(result.problems.sort(), [
        'MapType.ringbuf: no "Requires Linux X.Y" on its line',
        'RingReader: no @throws',
        'attachNoVersion: no "Requires Linux X.Y" line',
      ]);
      assert.ok(result.names.includes('Prog.attachSomewhere'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TypeDoc builds the reference with warnings as errors', () => {
    const typedoc = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
    const r = spawnSync(process.execPath, [typedoc, '--emit', 'none'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, `typedoc failed:\n${r.stdout}${r.stderr}`);
  });

  it('TypeDoc, run as npm run docs runs it, fails on a broken link', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-typedoc-'));
    try {
      writeFileSync(join(dir, 'a.ts'), '/** See {@link doesNotExist}. */\nexport function f(): void {}\n');
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', target: 'ES2022' }, files: ['a.ts'] }));
      // The options that matter (validation, warnings as errors) come from the repository's typedoc.json.
      writeFileSync(join(dir, 'typedoc.json'), JSON.stringify({
        extends: [join(root, 'typedoc.json')], entryPoints: ['a.ts'], tsconfig: 'tsconfig.json', out: 'api',
      }));
      const typedoc = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
      const r = spawnSync(process.execPath, [typedoc, '--options', join(dir, 'typedoc.json'), '--emit', 'none'], { cwd: dir, encoding: 'utf8' });
      assert.notEqual(r.status, 0, 'typedoc accepted a broken link');
      assert.match(`${r.stdout}${r.stderr}`, /doesNotExist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
