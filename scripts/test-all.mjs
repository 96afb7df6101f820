#!/usr/bin/env node
// `npm test`: the whole suite. The unit and kernel test files on this machine's kernel
// (scripts/run-tests.mjs), then the kernel test files inside Debian's 6.1 and 6.12 kernels under
// QEMU (scripts/kernel-matrix.mjs, README "Kernel matrix"). Both run even when the first fails;
// the last line counts the tests of all three kernels. Arguments go to the host run only
// (`npm test -- ringbuf`), which then skips the matrix: `npm run test:host` and
// `npm run test:matrix` run one side each.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const args = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'bpfkit-test-'));
const tap = join(dir, 'host.tap');
let passed = 0;
let failed = 0;
try {
  const host = spawnSync(process.execPath, [join(here, 'run-tests.mjs'), ...args], { stdio: 'inherit', env: { ...process.env, BPFKIT_TAP_FILE: tap } });
  const text = (() => { try { return readFileSync(tap, 'utf8'); } catch { return ''; } })();
  passed += Number(/^# pass (\d+)/m.exec(text)?.[1] ?? 0);
  failed += Number(/^# fail (\d+)/m.exec(text)?.[1] ?? 0);
  let status = host.status === 0 ? 0 : 1;
  if (host.status !== 0 && failed === 0) failed++; // a run that died before its summary
  if (args.length === 0) {
    // Each kernel's run starts no file after 50 min, so setup, the host suite and the matrix fit
    // in CI's 90 minutes; a file may take 20 min (execsnoop took 875 s in a loaded 6.1 guest).
    const matrix = spawnSync(process.execPath, [join(here, 'kernel-matrix.mjs'), '--budget', '3000', '--timeout', '1200'], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 });
    process.stdout.write(matrix.stdout ?? '');
    for (const m of (matrix.stdout ?? '').matchAll(/ pass (\d+), fail (\d+)/g)) {
      passed += Number(m[1]);
      failed += Number(m[2]);
    }
    for (const m of (matrix.stdout ?? '').matchAll(/^\s+(TIMEOUT|NOT-RUN|FAIL)\s/gm)) if (m[1] !== 'FAIL') failed++;
    if (matrix.status !== 0) status = 1;
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = status;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
