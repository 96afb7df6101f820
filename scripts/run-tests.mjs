#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's test runner, one file at a time
// (kernel tests share global kernel state such as network namespaces and bpffs).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const base = join(root, 'dist', 'test');
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
})(base);
const filter = process.argv.slice(2);
const chosen = filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
if (chosen.length === 0) {
  console.error('no test files found under dist/test: run `npm run build` first');
  process.exit(1);
}
// scripts/test-all.mjs asks for a TAP copy of the results to count them.
const tap = process.env['BPFKIT_TAP_FILE'];
const reporters = tap
  ? ['--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`]
  : ['--test-reporter=spec'];
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...reporters, ...chosen], { stdio: 'inherit' });
process.exit(r.status ?? 1);
