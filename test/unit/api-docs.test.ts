/**
 * The API reference: every export of every entry point in package.json "exports" has a doc
 * comment; the main classes carry an @example; every attach function, map type, reader and live
 * object exported says which kernel it needs ("Requires Linux X.Y") and what it throws (@throws);
 * and TypeDoc builds the reference without a warning (a broken {@link} fails the build).
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
import { readFileSync } from 'node:fs';
import ts from 'typescript';

const root = new URL('../../..', import.meta.url).pathname;
/** The sources of the entry points package.json exports (dist/src/x.d.ts -> src/x.ts). */
const ENTRY_POINTS = Object.values((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, string | { types?: string }> }).exports)
  .flatMap((t) => (typeof t === 'object' && t.types ? [t.types.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts')] : []));
const REQUIRES = /Requires Linux \d+\.\d+/;
/** Exports that talk to the kernel besides attach* and *Reader: they say which kernel they need. */
const KERNEL_OBJECTS = new Set(['Collection', 'BpfMap', 'Program', 'Variable', 'enableStats']);
/** Exports whose comment carries an @example. */
const WITH_EXAMPLE = new Set(['Collection', 'CollectionSpec', 'BpfMap', 'Program', 'RingBufReader', 'PerfReader']);

interface Checked {
  /** What was checked, e.g. "attachXdp", "Program.attach", "MapType.ringbuf". */
  names: string[];
  problems: string[];
  /** Every export walked, documented or not. */
  exports: string[];
}

function docText(checker: ts.TypeChecker, sym: ts.Symbol): string {
  return ts.displayPartsToString(sym.getDocumentationComment(checker));
}

function hasThrows(sym: ts.Symbol, checker: ts.TypeChecker): boolean {
  return sym.getJsDocTags(checker).some((t) => t.name === 'throws');
}

/** The /** comment right before the statement that exports `exported` (for `export * as x`). */
function exportStatementDoc(exported: ts.Symbol): string {
  const decl = exported.declarations?.[0];
  const statement = decl && ts.isNamespaceExport(decl) ? decl.parent : undefined;
  if (!statement) return '';
  const text = statement.getSourceFile().text;
  const ranges = ts.getLeadingCommentRanges(text, statement.getFullStart()) ?? [];
  return ranges.map((r) => text.slice(r.pos, r.end)).filter((c) => c.startsWith('/**')).join('\n');
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
  const out: Checked = { names: [], problems: [], exports: [] };
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
      out.exports.push(name);
      // A namespace re-export (`export * as x`) carries its comment on the export statement.
      const doc = docText(checker, sym).trim() || exportStatementDoc(exported);
      if (!doc) out.problems.push(`${name}: no doc comment`);
      if (WITH_EXAMPLE.has(name) && !sym.getJsDocTags(checker).some((t) => t.name === 'example')) out.problems.push(`${name}: no @example`);
      if (KERNEL_OBJECTS.has(name)) checkOne(checker, sym, name, out);
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
  it('every export has a doc comment; attach functions, readers, map types and live objects say their kernel and what they throw', () => {
    assert.deepEqual(ENTRY_POINTS, ['src/index.ts', 'src/testing/index.ts', 'src/elf/index.ts', 'src/gen/index.ts', 'src/internal.ts']);
    const result = walk(ENTRY_POINTS.map((f) => join(root, f)));
    assert.deepEqual(result.problems, []);
    // The walk found what it is meant to check (a renamed export must not silently escape it).
    for (const expected of [
      'attach', 'attachXdp', 'attachTc', 'attachKprobe', 'attachUprobeMulti', 'attachUsdt', 'attachIter', 'attachLsm',
      'Program.attach', 'Collection.attachAll', 'RingBufReader', 'PerfReader', 'MapType.hash', 'MapType.arena',
      'Collection', 'BpfMap', 'Program', 'Variable', 'enableStats',
    ]) {
      assert.ok(result.names.includes(expected), `${expected} was not checked`);
    }
    for (const name of [...WITH_EXAMPLE, 'useEmulatedKernel', 'ElfFile', 'generate', 'genRuntime']) {
      assert.ok(result.exports.includes(name), `${name} was not walked`);
    }
  });

  it('the walk reports an export without a comment, and an attach function, reader, map type or class missing its lines', () => {
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
        'export interface Undocumented { x: number }',
        '/** A program. Requires Linux 3.19. @throws {Error} on load */',
        'export class Program {}',
        '/** Documented. */',
        'export const documented = 1;',
        '',
      ].join('\n'));
      const result = walk([file]);
      assert.deepEqual(result.problems.sort(), [
        'MapType.ringbuf: no "Requires Linux X.Y" on its line',
        'Prog: no doc comment',
        'Program: no @example',
        'RingReader: no @throws',
        'Undocumented: no doc comment',
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
