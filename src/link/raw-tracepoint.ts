/**
 * Raw tracepoints (`SEC("raw_tracepoint/<name>")`) and the BTF-typed programs whose target was
 * fixed at load (tp_btf, fentry, fexit, fmod_ret, lsm): BPF_RAW_TRACEPOINT_OPEN gives a bpf_link.
 */
import { InvalidArgumentError, NotSupportedError } from '../errors.js';
import type { Program } from '../objects/program.js';
import { FD } from '../sys/fd.js';
import { FdLink, requireProgramType } from './link.js';
import { bpfLsmActive } from '../sys/securityfs.js';
import { check, rawTracepointOpenRaw } from '../sys/link.js';
import { lsmRefusal, trampolineRefusal } from '../kernel/features.js';

/**
 * Options of {@link attachRawTracepoint} and {@link attachTracing}: a BPF cookie (raw tracepoints:
 * Linux 6.10).
 */
export interface RawTracepointOptions {
  /** bpf_cookie for bpf_get_attach_cookie() (6.10+). */
  cookie?: bigint;
}

/**
 * Attaches a raw tracepoint program to the named tracepoint (e.g. "sys_enter"). A null name is for
 * tp_btf programs, whose tracepoint was named at load.
 *
 * Requires Linux 4.17 (BPF_RAW_TRACEPOINT_OPEN); tp_btf 5.5.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a program of another type.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) on a kernel without raw tracepoints.
 * @throws {@link BpfSyscallError} (`code` is the errno name: ENOENT for an unknown tracepoint).
 */
export function attachRawTracepoint(prog: Program, name: string | null, options: RawTracepointOptions = {}): FdLink {
  if (name === null) return attachTracing(prog, options);
  requireProgramType(prog, ['raw_tracepoint', 'raw_tracepoint_writable'], 'attachRawTracepoint');
  if (name === '' || name.includes('/')) {
    throw new InvalidArgumentError(`bad raw tracepoint name "${name}": give the bare tracepoint name, e.g. "sys_enter" or "sched_switch"`);
  }
  const r = rawTracepointOpenRaw(name, prog.fd, options.cookie);
  check(r, 'bpf(BPF_RAW_TRACEPOINT_OPEN)', `attach ${prog.name || 'program'} to raw tracepoint ${name}`, (e) =>
    e === 2 ? `the kernel has no tracepoint named ${name} (see available_events in tracefs)` :
    e === 1 ? 'attaching raw tracepoints needs CAP_BPF and CAP_PERFMON (run as root)' :
    e === 22 && options.cookie !== undefined ? 'raw tracepoint cookies need Linux 6.10 or later' : undefined);
  return new FdLink(new FD(r, `raw tracepoint ${name} link`), 'raw_tracepoint');
}

/**
 * Attaches a program whose target was fixed at load through its BTF id: tp_btf, fentry, fexit,
 * fmod_ret, lsm (BPF_RAW_TRACEPOINT_OPEN without a name).
 *
 * Requires Linux 5.5 (BPF trampolines: tp_btf, fentry, fexit); fmod_ret and lsm 5.7.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a program of another type.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) on a kernel or architecture
 *   without BPF trampolines.
 * @throws {@link BpfSyscallError} (`code` is the errno name) when the kernel refuses the link.
 */
export function attachTracing(prog: Program, options: RawTracepointOptions = {}): FdLink {
  requireProgramType(prog, ['tracing', 'lsm', 'ext'], 'attachTracing');
  if (prog.type === 'lsm' && bpfLsmActive() === false) {
    // Attached, the program would sit on a hook that never runs.
    throw new NotSupportedError('BPF LSM programs (lsm/<hook>)', `cannot attach ${prog.name || 'the program'}: ${lsmRefusal()}`, '5.7');
  }
  const r = rawTracepointOpenRaw(null, prog.fd, options.cookie);
  if ((r === -1 && process.geteuid?.() === 0) || r === -524 || r === -95) {
    throw new NotSupportedError(`attaching ${prog.type} programs (${prog.sectionName || prog.type})`,
      r === -1 ? (prog.type === 'lsm' ? lsmRefusal() : trampolineRefusal())
        : 'the kernel cannot build a BPF trampoline here (it needs the BPF JIT and CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS)', '5.5');
  }
  check(r, 'bpf(BPF_RAW_TRACEPOINT_OPEN)', `attach ${prog.name || 'program'} (${prog.sectionName || prog.type})`, (e) =>
    e === 1 ? 'attaching needs CAP_BPF and CAP_PERFMON (run as root)' :
    e === 22 ? 'the program was not loaded with an attach target (tp_btf/fentry/fexit/lsm sections name it)' :
    e === 524 || e === 95 ? 'the kernel cannot attach this kind of tracing program (missing BPF trampoline support?)' : undefined);
  return new FdLink(new FD(r, `${prog.type} link`), 'tracing');
}
