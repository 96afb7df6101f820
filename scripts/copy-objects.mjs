#!/usr/bin/env node
// Copies what `tsc` does not into dist/, keeping the layout, so that modules which load files next
// to themselves (new URL('./x', import.meta.url)) find them after the build:
//
//   src/**/*.bpf.o       -> dist/src/**/*.bpf.o         (BPF objects of the tools' generated bindings)
//   src/**/web/**        -> dist/src/**/web/**          (static files of the tools' web pages)
//   examples/**/*.bpf.o  -> dist/examples/**/*.bpf.o    (BPF objects of the examples' generated bindings)
//   test/bpf/build/packet_count.bpf.o -> dist/src/cli/  (`bpfkit demo`'s object, shipped in the
//                                                        package; only once `npm run build:bpf` made it)
//
// Files are copied only when missing or different. Usage: node scripts/copy-objects.mjs [--quiet]
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');

/** What is copied from where: `web` says whether web/ directories are copied whole. */
const trees = [
  { from: join(root, 'src'), to: join(root, 'dist', 'src'), web: true, required: true },
  { from: join(root, 'examples'), to: join(root, 'dist', 'examples'), web: false, required: false },
];

function same(a, b) {
  if (!existsSync(b)) return false;
  const sa = statSync(a);
  const sb = statSync(b);
  return sa.size === sb.size && readFileSync(a).equals(readFileSync(b));
}

let copied = 0;
let kept = 0;
function copy(file, tree) {
  const to = join(tree.to, relative(tree.from, file));
  if (same(file, to)) {
    kept++;
    return;
  }
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(file, to);
  copied++;
  if (!quiet) console.log(`  COPY      ${relative(root, file)} -> ${relative(root, to)}`);
}

function walk(dir, tree, inWeb) {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) walk(p, tree, inWeb || (tree.web && entry.name === 'web'));
    else if (entry.isFile() && (inWeb || entry.name.endsWith('.bpf.o'))) copy(p, tree);
  }
}

for (const tree of trees) {
  if (!existsSync(tree.from)) {
    if (!tree.required) continue;
    console.error(`copy-objects: ${tree.from} does not exist`);
    process.exit(1);
  }
  walk(tree.from, tree, false);
}
// The demo's object, when built: `npm pack` (prepack) builds it before this runs.
const demo = join(root, 'test', 'bpf', 'build', 'packet_count.bpf.o');
if (existsSync(demo)) copy(demo, { from: dirname(demo), to: join(root, 'dist', 'src', 'cli') });

if (!quiet) console.log(`copy-objects: ${copied} copied, ${kept} up to date`);
