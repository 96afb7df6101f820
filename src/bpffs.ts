/**
 * The BPF filesystem, where maps, programs and links are pinned. A fresh machine may not have it
 * mounted; as root bpfkit mounts it at /sys/fs/bpf the first time something is pinned there,
 * otherwise the error says how to.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { BpfkitError } from './errors.js';

export const BPFFS = '/sys/fs/bpf';

/** Mount points of bpf filesystems. */
export function bpffsMounts(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').map((l) => l.split(' ')).filter((f) => f[2] === 'bpf').map((f) => f[1]!);
}

/**
 * Makes sure `path` can be pinned to: when it lies under /sys/fs/bpf and nothing is mounted there,
 * mounts bpffs (root only). Paths under another bpffs mount are left alone.
 */
export function ensureBpffsFor(path: string): void {
  const mounts = bpffsMounts();
  if (mounts.some((m) => path === m || path.startsWith(`${m}/`))) return;
  if (!(path === BPFFS || path.startsWith(`${BPFFS}/`))) return; // the kernel will say EPERM/EINVAL with a hint
  if (process.getuid?.() !== 0) {
    throw new BpfkitError('ERR_BPFKIT_BPFFS', `no bpf filesystem is mounted at ${BPFFS}: mount it as root with \`mount -t bpf bpf ${BPFFS}\``);
  }
  try {
    mkdirSync(BPFFS, { recursive: true });
    execFileSync('mount', ['-t', 'bpf', 'bpf', BPFFS], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    if (bpffsMounts().includes(BPFFS)) return; // mounted meanwhile
    throw new BpfkitError('ERR_BPFKIT_BPFFS', `cannot mount bpffs at ${BPFFS}: ${(e as Error).message.trim()}`, { cause: e });
  }
}
