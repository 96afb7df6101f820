/**
 * Pinning the test thread to one CPU. Test runs of most program types execute on the CPU of the
 * calling thread (the kernel honours BPF_F_TEST_RUN_ON_CPU only for raw tracepoints), so a test
 * that compares per-CPU state (per-CPU maps, BPF_F_CURRENT_CPU perf rings) must know that CPU: on
 * a multi-CPU machine the scheduler may otherwise move the process between runs.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { onlineCpus } from '../../src/sys/cpus.js';

/** Whether taskset(1) (util-linux) is installed. */
export const haveTaskset = spawnSync('taskset', ['--version']).status === 0;

/** The main thread's allowed CPUs as the kernel lists them, e.g. "0-1" or "0,2-3". */
export function allowedCpuList(): string {
  const status = readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8');
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
  assert.ok(list, 'no Cpus_allowed_list in /proc/self/task/<pid>/status');
  return list;
}

/** Online CPUs the main thread may run on, in order. */
export function allowedCpus(): number[] {
  const allowed = new Set<number>();
  for (const part of allowedCpuList().split(',')) {
    const [lo, hi = lo] = part.split('-').map(Number);
    for (let c = lo!; c <= hi!; c++) allowed.add(c);
  }
  return onlineCpus().filter((c) => allowed.has(c));
}

function pin(list: string): void {
  execFileSync('taskset', ['-p', '-c', list, String(process.pid)], { stdio: 'ignore' });
}

/** Runs `fn` with the main thread pinned to `cpu`, then restores the affinity it had. */
export function onCpuSync<T>(cpu: number, fn: () => T): T {
  const before = allowedCpuList();
  pin(String(cpu));
  try {
    return fn();
  } finally {
    pin(before);
  }
}

/** {@link onCpuSync} for a function that may wait: the thread stays pinned until it settles. */
export async function onCpu<T>(cpu: number, fn: () => T | Promise<T>): Promise<T> {
  const before = allowedCpuList();
  pin(String(cpu));
  try {
    return await fn();
  } finally {
    pin(before);
  }
}
