/**
 * kprobes and kretprobes (`SEC("kprobe/<symbol>")`, `SEC("kretprobe/<symbol>")`, `ksyscall`):
 * through the kprobe PMU (perf_event_open with config1 = symbol name, config2 = offset), or, on
 * kernels without it, a probe event written to tracefs kprobe_events. A kernel built without
 * CONFIG_KPROBES has neither, and attaching throws NotSupportedError.
 */
import { InvalidArgumentError, NotSupportedError } from '../errors.js';
import type { Program } from '../objects/program.js';
import { attachPerfEventFd, requireProgramType, type PerfEventLink } from './link.js';
import { perfEventOpen, PERF_TYPE_TRACEPOINT } from '../sys/perf-event.js';
import { pmuConfigShift, pmuType } from '../sys/pmu.js';
import { kprobeSupport } from '../kernel/features.js';
import { createLegacyProbe, legacyProbeName } from '../sys/tracefs.js';
import { kernelSymbols } from '../kernel/kallsyms.js';

/**
 * Options of {@link attachKprobe}: return probe, offset into the function, BPF cookie (Linux
 * 5.15).
 */
export interface KprobeOptions {
  /** Attach at function return (kretprobe). */
  retprobe?: boolean;
  /** Byte offset into the function (kprobes only). */
  offset?: number;
  /** bpf_cookie for bpf_get_attach_cookie() (5.15+). */
  cookie?: bigint;
}

function noKprobes(): NotSupportedError {
  return new NotSupportedError('kprobes',
    'the kernel was built without CONFIG_KPROBES: there is no kprobe PMU (/sys/bus/event_source/devices/kprobe) ' +
    'and no kprobe_events in tracefs. Use a tracepoint, raw tracepoint or uprobe instead, or a kernel with CONFIG_KPROBES=y');
}

/**
 * Attaches a kprobe program to a kernel function (by symbol, e.g. "do_sys_openat2").
 *
 * Requires Linux 4.1 (kprobes through tracefs; the kprobe PMU 4.17, cookies 5.15).
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) when the program is no kprobe
 *   program or the symbol is malformed.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) on a kernel without kprobes.
 * @throws {@link BpfkitError} (`ERR_BPFKIT_TRACEFS`) when tracefs is unusable on the legacy path.
 * @throws {@link BpfSyscallError} (`code` is the errno name: ENOENT for an unknown symbol).
 */
export function attachKprobe(prog: Program, symbol: string, options: KprobeOptions = {}): PerfEventLink {
  requireProgramType(prog, ['kprobe'], 'attachKprobe');
  if (!symbol || /\s/.test(symbol)) throw new InvalidArgumentError(`bad kernel symbol "${symbol}"`);
  const offset = options.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0) throw new InvalidArgumentError(`kprobe offset must be a non-negative integer, got ${offset}`);
  if (options.retprobe && offset !== 0) throw new InvalidArgumentError('a kretprobe cannot have an offset: it fires at the function return');
  const support = kprobeSupport();
  if (!support) throw noKprobes();
  const kind = options.retprobe ? 'kretprobe' : 'kprobe';
  const what = `${kind} ${symbol}${offset ? `+${offset}` : ''}`;
  const perfOpts = options.cookie !== undefined ? { cookie: options.cookie } : {};

  if (support === 'pmu') {
    const type = pmuType('kprobe')!;
    let config = 0n;
    if (options.retprobe) {
      const bit = pmuConfigShift('kprobe', 'retprobe');
      if (bit === undefined) throw new NotSupportedError('kretprobes through the kprobe PMU', 'the PMU has no retprobe format field');
      config |= 1n << BigInt(bit);
    }
    const perf = perfEventOpen({ type, config, kprobeFunc: symbol, probeOffset: offset, samplePeriod: 1, wakeupEvents: 1 }, -1, 0, -1, undefined, what);
    return attachPerfEventFd(prog, perf, kind, perfOpts);
  }

  // Legacy: a probe event in tracefs, then a tracepoint perf event on it.
  const name = legacyProbeName('kprobe', symbol);
  const def = `${options.retprobe ? 'r' : 'p'}:bpfkit/${name} ${symbol}${offset ? `+${offset}` : ''}`;
  const probe = createLegacyProbe('kprobe_events', 'bpfkit', name, def);
  let perf;
  try {
    perf = perfEventOpen({ type: PERF_TYPE_TRACEPOINT, config: probe.id, samplePeriod: 1, wakeupEvents: 1 }, -1, 0, -1, undefined, what);
  } catch (e) {
    probe.remove();
    throw e;
  }
  return attachPerfEventFd(prog, perf, kind, { ...perfOpts, cleanup: probe.remove });
}

let syscallPrefix: string | undefined;

const ARCH_PREFIX: Record<string, string> = {
  x64: '__x64_sys_', ia32: '__ia32_sys_', arm64: '__arm64_sys_', s390x: '__s390x_sys_',
  riscv64: '__riscv_sys_', ppc64: '__powerpc_sys_', arm: '__arm_sys_', loong64: 'sys_',
};

/**
 * The kernel function behind a system call, for ksyscall programs: "__x64_sys_<name>" on x86-64
 * kernels with syscall wrappers (4.17+), "sys_<name>" on older ones.
 */
export function syscallSymbol(name: string): string {
  if (syscallPrefix === undefined) {
    const prefix = ARCH_PREFIX[process.arch] ?? 'sys_';
    syscallPrefix = prefix;
    // Unreadable kallsyms has neither: assume a modern kernel.
    if (prefix !== 'sys_' && !kernelSymbols.hasAny([`${prefix}bpf`]) && kernelSymbols.hasAny(['sys_bpf'])) syscallPrefix = 'sys_';
  }
  return `${syscallPrefix}${name}`;
}

/**
 * Attaches a kprobe program to the entry (or return) of a system call by its name, e.g. "openat".
 *
 * Requires Linux 4.1, as {@link attachKprobe}.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a malformed system call name.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) on a kernel without kprobes.
 * @throws {@link BpfSyscallError} (`code` is the errno name: ENOENT for an unknown system call).
 */
export function attachKsyscall(prog: Program, name: string, options: { retprobe?: boolean; cookie?: bigint } = {}): PerfEventLink {
  return attachKprobe(prog, syscallSymbol(name), options);
}
