/**
 * Netlink XDP and tc attachments outlive the process that made them; bpfkit removes them when
 * the process exits normally, dies of an uncaught exception, or gets SIGINT / SIGTERM.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { kernelTest, patient, ROOT } from '../helpers/index.js';
import { assertTopologyGone, createTwoNamespaces } from '../fixtures/link-env.js';

const CHILD = join(ROOT, 'test', 'fixtures', 'netlink-exit-child.mjs');

function xdpAttached(dev: string): boolean {
  return /\bxdp/.test(execFileSync('ip', ['-d', 'link', 'show', 'dev', dev], { encoding: 'utf8' }));
}

function tcFilters(dev: string): string {
  return execFileSync('tc', ['filter', 'show', 'dev', dev, 'ingress'], { encoding: 'utf8' }).trim();
}

/** Runs the child until it has attached, then makes it leave by `how`; resolves with its exit. */
function runChild(dev: string, mode: string, signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; attachedSeen: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dev, mode], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let attachedSeen = false;
    const guard = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`child (${mode}) did not finish: ${out}`)); }, patient(30_000));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!attachedSeen && out.includes('attached')) {
        attachedSeen = true;
        assert.ok(xdpAttached(dev), 'the child attached XDP');
        assert.match(tcFilters(dev), /bpf/, 'the child attached a tc filter');
        if (signal) child.kill(signal);
        else child.stdin.write('go\n');
      }
    });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code, sig) => {
      clearTimeout(guard);
      resolve({ code, signal: sig, attachedSeen });
    });
  });
}

describe('netlink attachments are removed when the process exits', () => {
  for (const [mode, signal] of [['exit', undefined], ['throw', undefined], ['wait', 'SIGTERM'], ['wait', 'SIGINT']] as const) {
    it(`${signal ?? mode}`, kernelTest, async () => {
      const t = createTwoNamespaces(signal === 'SIGINT' ? 'i' : signal === 'SIGTERM' ? 't' : mode === 'exit' ? 'e' : 'u');
      try {
        const r = await runChild(t.rootA, mode, signal);
        assert.ok(r.attachedSeen, 'the child got as far as attaching');
        if (signal) assert.equal(r.signal, signal, `the child still dies of ${signal}`);
        if (mode === 'throw') assert.equal(r.code, 1);
        assert.equal(xdpAttached(t.rootA), false, 'no XDP program left on the interface');
        assert.doesNotMatch(tcFilters(t.rootA), /bpf/, 'no tc filter left on the interface');
      } finally {
        t.destroy();
      }
      assertTopologyGone(t);
    });
  }
});
