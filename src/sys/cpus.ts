/**
 * CPU counts as the kernel sees them. Per-CPU maps hold one value per *possible* CPU (not online),
 * and perf buffers want one ring per online CPU; both come from sysfs range lists like "0-3,8".
 */
import { readFileSync } from 'node:fs';
import { installedNative } from './native.js';

let possible: number | undefined;

/** Parses a sysfs CPU list ("0-3,5,7-8") into the CPU numbers it names. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`malformed CPU list "${text.trim()}"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}

/** Number of possible CPUs: the count of values in a per-CPU map. */
export function possibleCpus(): number {
  const emulated = installedNative()?.possibleCpus?.();
  if (emulated !== undefined) return emulated;
  if (possible === undefined) {
    const cpus = parseCpuList(readFileSync('/sys/devices/system/cpu/possible', 'utf8'));
    possible = Math.max(...cpus) + 1;
  }
  return possible;
}

/** The online CPUs, for per-CPU perf rings. */
export function onlineCpus(): number[] {
  const emulated = installedNative()?.onlineCpus?.();
  if (emulated !== undefined) return emulated;
  return parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
}
