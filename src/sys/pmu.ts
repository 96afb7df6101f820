/**
 * Dynamic PMUs in sysfs (/sys/bus/event_source/devices/<name>): the perf type number of the kprobe
 * and uprobe PMUs, and where their format files put flags like `retprobe` ("config:0") and
 * `ref_ctr_offset` ("config:32-63") in perf_event_attr.config.
 */
import { readFileSync } from 'node:fs';
import { BpfkitError } from '../errors.js';

const DEVICES = '/sys/bus/event_source/devices';

/** The PMU's perf type, or undefined when the kernel does not have that PMU. */
export function pmuType(name: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(`${DEVICES}/${name}/type`, 'utf8');
  } catch {
    return undefined;
  }
  const n = Number.parseInt(text.trim(), 10);
  return Number.isInteger(n) ? n : undefined;
}

/** The low bit of a `config:` format field of the PMU, or undefined when the field is absent. */
export function pmuConfigShift(pmu: string, field: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(`${DEVICES}/${pmu}/format/${field}`, 'utf8').trim();
  } catch {
    return undefined;
  }
  const m = /^config:(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw new BpfkitError('ERR_BPFKIT_PMU', `${DEVICES}/${pmu}/format/${field} holds "${text}", expected "config:<bit>" or "config:<lo>-<hi>"`);
  return Number(m[1]);
}
