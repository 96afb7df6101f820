/**
 * The BPF filesystem, where maps, programs and links are pinned. A fresh machine may not have it
 * mounted; as root bpfkit mounts it at /sys/fs/bpf the first time something is pinned there,
 * otherwise the error says how to.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { BpfkitError, BpfSyscallError } from '../errors.js';
import { installedNative } from './native.js';

export const BPFFS = '/sys/fs/bpf';

/** Mount points of bpf filesystems. */
export function bpffsMounts(): string[] {
  const emulated = installedNative()?.bpffsMounts?.();
  if (emulated !== undefined) return emulated;
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

/** Removes a pin; false when there was none. Goes through an emulated kernel's bpffs when one is installed. */
export function unpinPath(path: string): boolean {
  const n = installedNative();
  if (n?.unlink) {
    const r = n.unlink(path);
    if (r === -2) return false;
    if (r < 0) throw new BpfSyscallError(r, 'unlink', `unpin ${path}`);
    return true;
  }
  try {
    unlinkSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Whether something is pinned at `path` (in the emulated bpffs when one is installed). */
export function pinExists(path: string): boolean {
  const n = installedNative();
  return n?.exists ? n.exists(path) : existsSync(path);
}
