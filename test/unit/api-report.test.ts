/**
 * The API report: etc/<entry>.api.md (api-extractor, scripts/api-report.mjs) lists the public
 * surface of every entry point in package.json "exports". A change to what users can import must
 * come with the regenerated report (`npm run api`), so it shows in review as a diff of etc/.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/index.js';

const SCRIPT = join(ROOT, 'scripts', 'api-report.mjs');

function check(extra: string[] = []): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, '--check', ...extra], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('API report', () => {
  it('has a committed report for every entry point in package.json "exports"', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const want = Object.keys(pkg.exports).filter((k) => k !== './package.json')
      .map((k) => (k === '.' ? 'bpfkit.api.md' : `bpfkit-${k.slice(2)}.api.md`)).sort();
    assert.deepEqual(readdirSync(join(ROOT, 'etc')).filter((f) => f.endsWith('.api.md')).sort(), want);
  });

  it('the public surface is the one in etc/ (else run `npm run api` and commit etc/)', () => {
    const r = check();
    assert.equal(r.status, 0, r.out);
  });

  it('the check fails, naming the entry and `npm run api`, when the surface differs from a report', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-api-report-'));
    try {
      cpSync(join(ROOT, 'etc'), dir, { recursive: true });
      // The committed report without one export: as if attachXdp had been added since.
      const file = join(dir, 'bpfkit.api.md');
      const text = readFileSync(file, 'utf8');
      const edited = text.replace(/\n\/\/ @public\nexport function attachXdp\([^\n]*\n/, '\n');
      assert.ok(edited.length < text.length, 'the edit removed attachXdp');
      writeFileSync(file, edited);
      const r = check(['--etc', dir, '--only', 'bpfkit']);
      assert.equal(r.status, 1, r.out);
      assert.match(r.out, /public surface of bpfkit differs from etc\/bpfkit\.api\.md: run `npm run api`/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
