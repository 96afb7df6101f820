// The test helpers put back the mounts a test process made (bpffs) even when the process is
// stopped by a signal, not only on a normal exit: a suite stopped by hand once left /sys/fs/bpf
// mounted on a machine that had none. Run in a private mount namespace, so the machine's own
// mounts are never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { kernelTest, ROOT } from '../helpers/index.js';

const HELPERS = join(ROOT, 'dist', 'test', 'helpers', 'index.js');

/** A process that imports the helpers on a namespace without bpffs, mounts it, and waits for `signal`. */
async function stoppedBy(signal: NodeJS.Signals): Promise<{ status: string; mounted: string }> {
  const child = [
    `const h = await import(${JSON.stringify(HELPERS)});`,
    `const { rmdirSync } = await import('node:fs');`,
    `rmdirSync(h.bpffsDir('signal'));`,
    `process.stdout.write('ready ' + process.pid + '\\n');`,
    `setInterval(() => {}, 1000);`,
  ].join('\n');
  // sh stays in the namespace after node dies, to say whether bpffs is still mounted there.
  const script =
    'while grep -q " /sys/fs/bpf bpf " /proc/self/mounts; do umount /sys/fs/bpf; done; ' +
    'node --input-type=module -e "$0"; echo "status $?"; ' +
    'if grep -q " /sys/fs/bpf bpf " /proc/self/mounts; then echo "mounted yes"; else echo "mounted no"; fi';
  const sh = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, child], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const done = new Promise<void>((resolve, reject) => {
    sh.once('error', reject);
    sh.once('exit', () => resolve());
  });
  sh.stdout.setEncoding('utf8');
  sh.stdout.on('data', (d: string) => {
    out += d;
    const ready = /^ready (\d+)$/m.exec(out);
    if (ready && !out.includes('signalled')) {
      out += 'signalled\n';
      process.kill(Number(ready[1]), signal);
    }
  });
  const timer = setTimeout(() => sh.kill('SIGKILL'), 60_000 * Number(process.env['BPFKIT_TEST_PATIENCE'] ?? 1));
  try {
    await done;
  } finally {
    clearTimeout(timer);
  }
  return { status: /^status (\d+)$/m.exec(out)?.[1] ?? `none: ${out}`, mounted: /^mounted (\w+)$/m.exec(out)?.[1] ?? `none: ${out}` };
}

for (const [signal, number] of [['SIGTERM', 15], ['SIGINT', 2]] as const) {
  test(`a test process stopped by ${signal} unmounts the bpffs it mounted, and still dies of the signal`, kernelTest, async () => {
    const r = await stoppedBy(signal);
    assert.equal(r.mounted, 'no');
    assert.equal(r.status, String(128 + number));
  });
}
