// The layers of src/ point one way: no runtime import cycles, and the pure parsing layers never
// reach the syscall layer. Read from the sources' import statements (type-only imports vanish at
// compile time and are left out).
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

// The pure layers: object parsing and the kernel ABI as data. They may import each other, errors.ts
// and sys/constants.ts (names of kernel enums, no syscalls), never the syscall layer or live objects.
const PURE = ['abi/', 'elf/', 'btf/', 'asm/', 'spec/'];
const PURE_ALSO = ['errors.ts', 'sys/constants.ts'];

test('the pure layers (abi, elf, btf, asm, spec) never import the syscall layer or live objects', () => {
  const problems: string[] = [];
  for (const [file, deps] of graph()) {
    if (!PURE.some((l) => file.startsWith(l))) continue;
    for (const d of deps) {
      if (!PURE.some((l) => d.startsWith(l)) && !PURE_ALSO.includes(d)) problems.push(`${file} imports ${d}`);
    }
  }
  assert.deepEqual(problems, []);
});
