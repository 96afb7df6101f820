// The layers of src/ point one way: no runtime import cycles (type-only imports vanish at compile
// time and are left out of that check), every folder a layer that imports only the layers below
// it, and the CLI and tools on the public entry points only. Read from the sources' imports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/index.js';

const SRC = join(ROOT, 'src');

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const STATEMENT = /^(?:import|export)\s+(type\s+)?([^'";]*?)\s*from\s+'(\.[^']+)'/gm;

/** Runtime imports of one file, as src-relative paths. */
export function runtimeImports(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(STATEMENT)) {
    if (m[1]) continue; // import type / export type
    const names = /^\{([^}]*)\}$/s.exec(m[2]!.trim());
    // `import { type A, type B }` only names types.
    if (names && names[1]!.split(',').map((n) => n.trim()).filter(Boolean).every((n) => n.startsWith('type '))) continue;
    out.push(relative(SRC, resolve(dirname(file), m[3]!.replace(/\.js$/, '.ts'))));
  }
  return out;
}

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of sources(SRC)) g.set(relative(SRC, f), runtimeImports(f, readFileSync(f, 'utf8')));
  return g;
}

/** Strongly connected components of more than one file (Tarjan): the import cycles. */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

test('src/ has no runtime import cycles', () => {
  assert.deepEqual(cycles(graph()), []);
});

test('the cycle finder finds a cycle (so the test above can fail)', () => {
  const g = new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', ['a.ts']]]);
  assert.deepEqual(cycles(g), [['a.ts', 'b.ts', 'c.ts']]);
  assert.deepEqual(runtimeImports(join(SRC, 'x.ts'), "import type { A } from './a.js';\nimport { type B } from './b.js';\nimport { C } from './c.js';\n"), ['c.ts']);
});

// The layers, bottom up; the folder tree is this list. A file imports its own folder and the layers
// below it, never one above: the pure ones (the kernel ABI as data, object parsing) never reach a
// syscall; live objects never reach the loader, attach code or the readers. Type-only imports
// count too, but for the few listed in TYPE_UP. The CLI and the tools (the top) have their own
// rule below: only the public entry points.
export const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'abi/'], // errors, and the kernel ABI as data (layouts, enums, errno names, C strings)
  ['elf/', 'btf/', 'asm/', 'spec/'], // pure object parsing: no kernel needed; these may use each other
  ['sys/'], // the syscalls and the addon behind them, kernel filesystems (bpffs, tracefs, PMUs)
  ['kernel/'], // facts about the running kernel: feature and hook probes, its BTF, kallsyms
  ['objects/'], // live maps and programs
  ['load/'], // specs into live objects: relocation, externs, verifier logs, the Collection
  ['link/', 'readers/'], // attaching programs; reading ring and perf buffers (not each other)
  ['gen/'], // typed bindings: the generator and the runtime its output uses
  ['index.ts', 'internal.ts', 'testing/'], // the entry points, and the emulated kernel
  ['cli/', 'tools/'], // commands, on the public API only (see privateImports)
];

/** Where a src-relative file sits: its layer's rank and the folder (or root file) it belongs to. */
export function placeOf(file: string): { rank: number; home: string } | undefined {
  for (const [rank, homes] of LAYERS.entries()) {
    const home = homes.find((h) => (h.endsWith('/') ? file.startsWith(h) : file === h));
    if (home) return { rank, home };
  }
  return undefined;
}

/** Type-only imports that point up, each with why: they vanish at compile time. */
const TYPE_UP: Record<string, string> = {
  'objects/program.ts -> link/attach.ts': 'Program.attach() takes AttachOptions; link/attach.ts installs the code',
  'objects/program.ts -> link/link.ts': 'Program.attach() returns a Link',
  'load/collection.ts -> link/attach.ts': 'Collection.attachAll() takes AttachOptions per program',
  'load/collection.ts -> link/link.ts': 'Collection.attachAll() returns Links',
};

interface Import {
  dep: string;
  typeOnly: boolean;
}

/** Every static import of one file, runtime and type-only, as src-relative paths. */
export function allImports(file: string, text: string): Import[] {
  const runtime = new Set(runtimeImports(file, text));
  return [...text.matchAll(STATEMENT)].map((m) => {
    const dep = relative(SRC, resolve(dirname(file), m[3]!.replace(/\.js$/, '.ts')));
    return { dep, typeOnly: !runtime.has(dep) };
  });
}

/** What breaks the layering in a set of files' imports, as sentences. */
export function layerProblems(files: ReadonlyMap<string, readonly Import[]>): string[] {
  const top = LAYERS.length - 1;
  const problems: string[] = [];
  for (const [file, deps] of files) {
    const from = placeOf(file);
    if (!from) {
      problems.push(`${file} is in no layer: put it in one of the folders of LAYERS`);
      continue;
    }
    if (from.rank === top) continue;
    for (const { dep, typeOnly } of deps) {
      const to = placeOf(dep);
      if (!to || to.home === from.home) continue;
      if (to.rank > from.rank && !(typeOnly && TYPE_UP[`${file} -> ${dep}`])) {
        problems.push(`${file} (${from.home}) imports ${dep} (${to.home}), a layer above it`);
      } else if (to.rank === from.rank && from.rank !== 1) {
        problems.push(`${file} (${from.home}) imports ${dep} (${to.home}), a sibling layer`);
      }
    }
  }
  return problems;
}

test('src/ is layered: every file sits in a layer folder and imports only its own folder or the layers below', () => {
  const files = new Map(sources(SRC).map((f) => [relative(SRC, f), allImports(f, readFileSync(f, 'utf8'))] as const));
  assert.deepEqual(layerProblems(files), []);
});

test('the layer check finds what breaks the rules (so the test above can fail)', () => {
  const files = new Map<string, Import[]>([
    ['btf/btf.ts', [{ dep: 'sys/bpf.ts', typeOnly: false }, { dep: 'elf/reader.ts', typeOnly: false }]],
    ['objects/map.ts', [{ dep: 'link/xdp.ts', typeOnly: true }, { dep: 'kernel/btf.ts', typeOnly: false }]],
    ['objects/program.ts', [{ dep: 'link/link.ts', typeOnly: true }, { dep: 'link/attach.ts', typeOnly: false }]],
    ['link/xdp.ts', [{ dep: 'readers/ringbuf.ts', typeOnly: false }]],
    ['stray.ts', []],
  ]);
  assert.deepEqual(layerProblems(files), [
    'btf/btf.ts (btf/) imports sys/bpf.ts (sys/), a layer above it',
    'objects/map.ts (objects/) imports link/xdp.ts (link/), a layer above it',
    'objects/program.ts (objects/) imports link/attach.ts (link/), a layer above it',
    'link/xdp.ts (link/) imports readers/ringbuf.ts (readers/), a sibling layer',
    'stray.ts is in no layer: put it in one of the folders of LAYERS',
  ]);
  const text = "import type { A } from './a.js';\nimport { B } from '../b.js';\n";
  assert.deepEqual(allImports(join(SRC, 'x', 'y.ts'), text), [{ dep: 'x/a.ts', typeOnly: true }, { dep: 'b.ts', typeOnly: false }]);
});

// The CLI and the tools are users of the library: they import it only through the package's entry
// points (what `bpfkit`, `bpfkit/testing`, `bpfkit/elf` and `bpfkit/gen` name), type imports
// included, so anything they need is public and documented. bpfkit/internal is for generated
// bindings only (their genRuntime import), recognised by the header `bpfkit gen` writes.
const PUBLIC_ENTRIES = ['index.ts', 'testing/index.ts', 'elf/index.ts', 'gen/index.ts'];
const INTERNAL_ENTRY = 'internal.ts';
const CONSUMERS = ['cli/', 'tools/'];
const GENERATED = /^\/\/ Code generated by bpfkit gen\b/;
const ANY_IMPORT = /(?:^(?:import|export)\s[^'";]*?from\s+|\bimport\(\s*)'(\.[^']+)'/gm;

/** Imports from src/cli and src/tools that reach past the entry points, as "file imports target". */
export function privateImports(files: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  for (const [file, text] of files) {
    if (!CONSUMERS.some((c) => file.startsWith(c))) continue;
    for (const m of text.matchAll(ANY_IMPORT)) {
      const target = relative(SRC, resolve(dirname(join(SRC, file)), m[1]!.replace(/\.js$/, '.ts')));
      if (CONSUMERS.some((c) => target.startsWith(c)) || PUBLIC_ENTRIES.includes(target)) continue;
      if (target === INTERNAL_ENTRY && GENERATED.test(text)) continue;
      problems.push(`${file} imports ${target}`);
    }
  }
  return problems;
}

test('the CLI and the tools import the library only through its public entry points', () => {
  const files = new Map(sources(SRC).map((f) => [relative(SRC, f), readFileSync(f, 'utf8')] as const));
  assert.deepEqual(privateImports(files), []);
});

test('the entry-point rule catches a private import (so the test above can fail)', () => {
  const files = new Map([
    ['cli/ok.ts', "import { Collection } from '../index.js';\nimport { UsageError } from '../tools/common/runtime.js';\nimport { ElfFile } from '../elf/index.js';\n"],
    ['cli/bad.ts', "import type { MapSpec } from '../spec/map-spec.js';\nimport {\n  Btf,\n} from '../btf/btf.js';\nconst m = await import('../map.js');\n"],
    ['tools/x/tool.ts', "import { native } from '../../internal.js';\n"],
    ['tools/x/gen/x.ts', "// Code generated by bpfkit gen from x.bpf.c; DO NOT EDIT.\nimport { genRuntime } from '../../../internal.js';\n"],
    ['map.ts', "import { native } from './native.js';\n"],
  ]);
  assert.deepEqual(privateImports(files), [
    'cli/bad.ts imports spec/map-spec.ts', 'cli/bad.ts imports btf/btf.ts', 'cli/bad.ts imports map.ts',
    'tools/x/tool.ts imports internal.ts',
  ]);
});
