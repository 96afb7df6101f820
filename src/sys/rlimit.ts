/**
 * Kernels before 5.11 charge BPF maps and programs against RLIMIT_MEMLOCK, whose default (64 KiB
 * or 8 MiB) is too small for real objects. There, raise it to unlimited once per process, as
 * cilium's rlimit package does; newer kernels account BPF memory to the cgroup and need nothing.
 */
import { release } from 'node:os';
import { native } from './native.js';

let done = false;

/** True when the running kernel charges BPF memory to RLIMIT_MEMLOCK (before Linux 5.11). */
export function kernelChargesMemlock(rel = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) return true;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major < 5 || (major === 5 && minor < 11);
}

/** Raises RLIMIT_MEMLOCK where needed. Failure is not fatal: loads that then hit it say so. */
export function raiseMemlockLimit(): void {
  if (done) return;
  done = true;
  if (!kernelChargesMemlock()) return;
  const n = native();
  const inf = (1n << 64n) - 1n;
  n.setrlimit(n.constants.RLIMIT_MEMLOCK, inf, inf);
}
