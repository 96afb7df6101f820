/**
 * Shared by the `bpfkit gen` and `btf dump` tests: scratch directories, compiling generated
 * TypeScript with the TypeScript API (type-checked or just transpiled) and importing the result,
 * and finding clang.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { findClang } from '../../src/gen/compile.js';
import { ROOT } from '../helpers/index.js';

export { ROOT };

/** The gen test program and where its goldens live. */
export const GENTEST_C = join(ROOT, 'test', 'gen', 'gentest.bpf.c');
export const GOLDEN_DIR = join(ROOT, 'test', 'gen', 'golden');
/** The `--target both` test program: byte-order-dependent types with globals initialised in C. */
export const BYTEORDER_C = join(ROOT, 'test', 'gen', 'byteorder.bpf.c');
export const updateGolden = process.env['UPDATE_GOLDEN'] === '1';

/** The path of clang, or undefined (tests that need it are skipped, except on CI). */
export const clang: string | undefined = (() => {
  try {
    return findClang();
  } catch {
    return undefined;
  }
})();

const onCI = process.env['CI'] === 'true' || process.env['CI'] === '1';
/** Options for node:test: skip when clang is missing, except on CI, where it must be there. */
export const needsClang = { skip: clang === undefined && !onCI ? 'needs clang (apt-get install clang libbpf-dev)' : false } as const;

/**
 * A scratch directory that can import `bpfkit` (node_modules/bpfkit links to this repository) and
 * whose .js files are ES modules. Remove it with `rmSync(dir, { recursive: true })`.
 */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `bpfkit-${prefix}-`));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'bpfkit'), 'dir');
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** The strictest options a user is likely to build generated code with. */
export const STRICT_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  noUncheckedIndexedAccess: true,
  noUnusedLocals: true,
  noUnusedParameters: true,
  noImplicitReturns: true,
  noImplicitOverride: true,
  noFallthroughCasesInSwitch: true,
  noPropertyAccessFromIndexSignature: true,
  exactOptionalPropertyTypes: true,
  verbatimModuleSyntax: true,
  useUnknownInCatchVariables: true,
  skipLibCheck: true,
  noEmit: true,
  types: ['node'],
  typeRoots: [join(ROOT, 'node_modules', '@types')],
};

export interface Diagnostic {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  readonly code: number;
  readonly message: string;
}

/** Type-checks `files` and returns every diagnostic. */
export function typeCheck(files: readonly string[], options: ts.CompilerOptions = STRICT_OPTIONS): Diagnostic[] {
  const program = ts.createProgram(files, options);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    return {
      file: d.file?.fileName ?? '',
      line: pos ? pos.line + 1 : 0,
      code: d.code,
      message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
    };
  });
}

export function formatDiagnostics(ds: readonly Diagnostic[]): string {
  return ds.map((d) => `${d.file}:${d.line}: TS${d.code}: ${d.message}`).join('\n');
}

/** Transpiles TypeScript to an ES module next to it (`name.js`) without type-checking. */
export function transpileTo(dir: string, name: string, text: string): string {
  const out = ts.transpileModule(text, {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    fileName: `${name}.ts`,
  });
  const path = join(dir, `${name}.js`);
  writeFileSync(path, out.outputText);
  return path;
}

/** Imports an ES module file. */
export async function importFile<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(path).href)) as T;
}

/** The compiled bpfkit entry point as a file URL, for generated code imported from a scratch dir. */
export const BPFKIT_URL = pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href;
