/**
 * Tracepoints (`SEC("tracepoint/<category>/<name>")`): a perf event of type PERF_TYPE_TRACEPOINT
 * whose config is the tracepoint's id from tracefs, with the program attached to it.
 */
import type { Program } from '../objects/program.js';
import { attachPerfEventFd, requireProgramType, type PerfEventLink } from './link.js';
import { perfEventOpen, PERF_TYPE_TRACEPOINT } from '../sys/perf-event.js';
import { tracepointId } from '../sys/tracefs.js';

/** Options of {@link attachTracepoint}: a BPF cookie (Linux 5.15). */
export interface TracepointOptions {
  /** bpf_cookie for bpf_get_attach_cookie() (5.15+). */
  cookie?: bigint;
}

/**
 * Attaches a tracepoint program to `<category>/<name>`, e.g. ('syscalls', 'sys_enter_execve').
 *
 * Requires Linux 4.7 (BPF on tracepoints; a bpf_link from 5.15).
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a program of another type.
 * @throws {@link BpfkitError} (`ERR_BPFKIT_TRACEFS`) when tracefs is not mounted and cannot be, or
 *   the tracepoint does not exist there.
 * @throws {@link BpfSyscallError} (`code` is the errno name) when perf_event_open or the attach fails.
 */
export function attachTracepoint(prog: Program, category: string, name: string, options: TracepointOptions = {}): PerfEventLink {
  // kprobe and perf_event programs may run on tracepoints too, as libbpf allows.
  requireProgramType(prog, ['tracepoint', 'kprobe', 'perf_event'], 'attachTracepoint');
  const id = tracepointId(category, name);
  // pid -1, cpu 0: one event for the whole system (the program runs on every CPU).
  const perf = perfEventOpen({ type: PERF_TYPE_TRACEPOINT, config: id, samplePeriod: 1, wakeupEvents: 1 }, -1, 0, -1, undefined,
    `tracepoint ${category}/${name}`);
  return attachPerfEventFd(prog, perf, 'tracepoint', options.cookie !== undefined ? { cookie: options.cookie } : {});
}
