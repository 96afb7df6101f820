/**
 * perf_event programs: sampling events (a CPU clock, hardware counters) opened on every online CPU
 * (or one), each with the program attached. The result is a LinkSet of PerfEventLinks.
 */
import { InvalidArgumentError } from '../errors.js';
import { onlineCpus } from '../sys/cpus.js';
import type { Program } from '../objects/program.js';
import { attachPerfEventFd, LinkSet, requireProgramType, type Link, type PerfEventLink } from './link.js';
import { perfEventOpen, PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE } from '../sys/perf-event.js';

/** The software perf events by the names perf(1) gives them, to their PERF_COUNT_SW_* numbers (uapi linux/perf_event.h). */
export const SOFTWARE_EVENTS = {
  'cpu-clock': 0, 'task-clock': 1, 'page-faults': 2, 'context-switches': 3, 'cpu-migrations': 4,
  'page-faults-min': 5, 'page-faults-maj': 6, 'alignment-faults': 7, 'emulation-faults': 8, dummy: 9, 'bpf-output': 10,
  'cgroup-switches': 11,
} as const;

/** The hardware perf events by the names perf(1) gives them, to their PERF_COUNT_HW_* numbers. */
export const HARDWARE_EVENTS = {
  'cpu-cycles': 0, instructions: 1, 'cache-references': 2, 'cache-misses': 3, 'branch-instructions': 4,
  'branch-misses': 5, 'bus-cycles': 6, 'stalled-cycles-frontend': 7, 'stalled-cycles-backend': 8, 'ref-cpu-cycles': 9,
} as const;

/**
 * A software perf event by name (`cpu-clock`, `task-clock`, `page-faults`, ...):
 * PERF_TYPE_SOFTWARE.
 */
export type SoftwareEvent = keyof typeof SOFTWARE_EVENTS;
/**
 * A hardware perf event by name (`cpu-cycles`, `instructions`, `cache-misses`, ...):
 * PERF_TYPE_HARDWARE; needs a PMU, which virtual machines often lack.
 */
export type HardwareEvent = keyof typeof HARDWARE_EVENTS;

/**
 * Options of {@link attachPerfEvent}: the event (software, hardware, or a raw type and config),
 * its sample period or frequency, the CPU or process, and a BPF cookie.
 */
export interface PerfEventOptions {
  /** 'software', 'hardware', or a raw perf type number (e.g. a PMU's from sysfs). */
  type: 'software' | 'hardware' | number;
  /** The event: a name of SOFTWARE_EVENTS / HARDWARE_EVENTS, or the raw config number. */
  config: SoftwareEvent | HardwareEvent | number | bigint;
  /** Run the program every this many events (e.g. ns of cpu-clock)... */
  samplePeriod?: number | bigint;
  /** ...or this many times a second. One of the two; default frequency 99. */
  frequency?: number;
  /** One CPU; default every online CPU (or, with a pid, wherever that process runs). */
  cpu?: number;
  /** Only this process (default -1: every process on the CPU). */
  pid?: number;
  /** bpf_cookie for bpf_get_attach_cookie() (5.15+). */
  cookie?: bigint;
}

function typeAndConfig(o: PerfEventOptions): { type: number; config: bigint; label: string } {
  let type: number;
  if (o.type === 'software') type = PERF_TYPE_SOFTWARE;
  else if (o.type === 'hardware') type = PERF_TYPE_HARDWARE;
  else if (typeof o.type === 'number' && Number.isInteger(o.type) && o.type >= 0) type = o.type;
  else throw new InvalidArgumentError(`perf event type must be 'software', 'hardware' or a perf type number, got ${String(o.type)}`);
  let config: bigint;
  if (typeof o.config === 'string') {
    const table: Record<string, number> = type === PERF_TYPE_SOFTWARE ? SOFTWARE_EVENTS : type === PERF_TYPE_HARDWARE ? HARDWARE_EVENTS : {};
    const n = table[o.config];
    if (n === undefined) throw new InvalidArgumentError(`unknown ${o.type} perf event "${o.config}"; known: ${Object.keys(table).join(', ') || '(give a number)'}`);
    config = BigInt(n);
  } else {
    config = BigInt(o.config);
  }
  return { type, config, label: `${o.type} event ${String(o.config)}` };
}

/**
 * Attaches a perf_event program to a sampling event on every online CPU (or the given one).
 *
 * Requires Linux 4.9 (BPF on perf events; a bpf_link from 5.15).
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a program of another type,
 *   an unknown event name, or both a sample period and a frequency.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) when the kernel cannot attach
 *   programs to perf events.
 * @throws {@link BpfSyscallError} (`code` is the errno name: ENOENT or EOPNOTSUPP for an event this
 *   machine lacks, such as hardware counters in most VMs) when perf_event_open or the attach fails.
 */
export function attachPerfEvent(prog: Program, options: PerfEventOptions): Link {
  requireProgramType(prog, ['perf_event'], 'attachPerfEvent');
  const { type, config, label } = typeAndConfig(options);
  if (options.samplePeriod !== undefined && options.frequency !== undefined) {
    throw new InvalidArgumentError('give samplePeriod or frequency, not both');
  }
  const sampling = options.samplePeriod !== undefined
    ? { samplePeriod: options.samplePeriod }
    : { sampleFreq: options.frequency ?? 99 };
  const pid = options.pid ?? -1;
  // A process is followed on whatever CPU it runs (cpu -1); otherwise one event per CPU.
  const cpus = options.cpu !== undefined ? [options.cpu] : pid !== -1 ? [-1] : onlineCpus();
  const perfOpts = options.cookie !== undefined ? { cookie: options.cookie } : {};
  const links: PerfEventLink[] = [];
  try {
    for (const cpu of cpus) {
      const perf = perfEventOpen({ type, config, ...sampling }, pid, cpu, -1, undefined, `${label} on CPU ${cpu}`);
      links.push(attachPerfEventFd(prog, perf, 'perf_event', perfOpts));
    }
  } catch (e) {
    for (const l of links) {
      try { l.close(); } catch { /* keep the first error */ }
    }
    throw e;
  }
  if (links.length === 1 && (options.cpu !== undefined || pid !== -1)) return links[0]!;
  return new LinkSet('perf_event', links);
}
