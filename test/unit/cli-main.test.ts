/**
 * The `bpfkit` command's contract: every subcommand answers --help with its usage on stdout and
 * exit 0, `--version` prints the package's version, and bad input is one line on stderr with a
 * hint and exit code 2 (never a stack trace).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/index.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const COMMANDS = ['pktcount', 'execsnoop', 'readline', 'demo', 'inspect', 'gen', 'btf', 'init'];

function bpfkit(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bpfkit command line', () => {
  for (const cmd of COMMANDS) {
    it(`${cmd} --help prints its usage and exits 0`, () => {
      const r = bpfkit(cmd, '--help');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`^usage: bpfkit ${cmd}\\b`));
    });
  }

  it('--version prints the package version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = bpfkit(flag);
      assert.equal(r.status, 0);
      assert.equal(r.stdout, `bpfkit ${version}\n`);
    }
  });

  it('the usage lists the commands and the exit codes', () => {
    const r = bpfkit('--help');
    assert.equal(r.status, 0);
    for (const cmd of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
    assert.match(r.stdout, /exit codes: 0 done .*, 1 failed/s);
  });

  for (const cmd of COMMANDS.filter((c) => c !== 'btf')) {
    it(`${cmd} with an unknown option: one line naming it, exit 2`, () => {
      const r = bpfkit(cmd, '--no-such-option');
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--no-such-option/);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    });
  }

  it('an unknown command and no command exit 2 with the usage', () => {
    const unknown = bpfkit('frobnicate');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /^bpfkit: unknown command "frobnicate"\n/);
    const none = bpfkit();
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^usage: bpfkit/);
  });

  it('inspect of a missing file: one line, exit 1', () => {
    const r = bpfkit('inspect', '/nonexistent/x.bpf.o');
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^bpfkit: .*\/nonexistent\/x\.bpf\.o/);
  });
});
