/**
 * uprobes and uretprobes (`SEC("uprobe/<binary>:<function>")`): through the uprobe PMU
 * (perf_event_open with config1 = path, config2 = file offset), or a tracefs uprobe_events entry on
 * kernels without the PMU. A function name is turned into a file offset with the binary's ELF
 * symbol tables (.symtab, then .dynsym) and the section that holds it.
 */
import { InvalidArgumentError, NotSupportedError } from '../errors.js';
import { openElfFile, symbolFileOffsetIn } from '../elf/file.js';
import { SHN_UNDEF, STT } from '../elf/reader.js';
import { resolveBinary } from '../elf/resolve.js';
import type { Program } from '../objects/program.js';
import { attachPerfEventFd, requireProgramType, type PerfEventLink } from './link.js';
import { perfEventOpen, PERF_TYPE_TRACEPOINT } from '../sys/perf-event.js';
import { pmuConfigShift, pmuType } from '../sys/pmu.js';
import { createLegacyProbe, legacyProbeName, tryTracefsRoot } from '../sys/tracefs.js';

/**
 * Options of {@link attachUprobe}: process, return probe, offset, reference counter (USDT
 * semaphore), cookie.
 */
export interface UprobeOptions {
  /** Attach at function return (uretprobe). */
  retprobe?: boolean;
  /** Only this process (default: every process that runs the binary). */
  pid?: number;
  /** Bytes added to the symbol's offset. */
  offset?: number;
  /** File offset of a USDT semaphore the kernel increments while attached (4.20+). */
  refCtrOffset?: number;
  /** bpf_cookie for bpf_get_attach_cookie() (5.15+). */
  cookie?: bigint;
}

/**
 * The absolute path of a binary: a path with a '/' as given (made absolute), a bare program name
 * looked up in PATH, a bare library name ("libc.so.6") as the dynamic linker would find it for
 * this process (src/elf/resolve.ts says exactly how).
 */
export function resolveBinaryPath(binary: string): string {
  return resolveBinary(binary, 'uprobe');
}

/** The file offset of a function symbol in an ELF binary (for the uprobe PMU's config2). */
export function symbolFileOffset(binaryPath: string, symbol: string): number {
  const elf = openElfFile(binaryPath, 'uprobe');
  const hit = elf.findSymbol(symbol, { labels: true });
  if (!hit) {
    const all = [...elf.symbols('symtab'), ...elf.symbols('dynsym')].filter((s) => s.type === STT.FUNC && s.shndx !== SHN_UNDEF);
    const near = all.filter((s) => s.name.includes(symbol) || (s.name.length > 3 && symbol.includes(s.name))).slice(0, 5).map((s) => s.name);
    const stripped = elf.symbols('symtab').length === 0 ? ' (the binary is stripped: only .dynsym symbols are visible)' : '';
    throw new InvalidArgumentError(
      `uprobe: no function ${symbol} in ${binaryPath}${stripped}${near.length ? `; similar: ${[...new Set(near)].join(', ')}` : ''}`);
  }
  return symbolFileOffsetIn(elf, hit.symbol, binaryPath, 'uprobe');
}

/**
 * Attaches a uprobe program to a function of a binary or library, by symbol name or by file
 * offset. The binary is looked up in PATH when it is a bare name.
 *
 * Requires Linux 4.3 (BPF on uprobes; the uprobe PMU 4.17, cookies 5.15).
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a binary that cannot be
 *   found or read, or a symbol it does not define.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) on a kernel without uprobes.
 * @throws {@link BpfSyscallError} (`code` is the errno name) when perf_event_open or the attach fails.
 */
export function attachUprobe(prog: Program, binary: string, target: string | number, options: UprobeOptions = {}): PerfEventLink {
  requireProgramType(prog, ['kprobe'], 'attachUprobe');
  const path = resolveBinaryPath(binary);
  const extra = options.offset ?? 0;
  if (!Number.isInteger(extra) || extra < 0) throw new InvalidArgumentError(`uprobe offset must be a non-negative integer, got ${extra}`);
  let offset: number;
  if (typeof target === 'number') {
    if (!Number.isInteger(target) || target < 0) throw new InvalidArgumentError(`uprobe file offset must be a non-negative integer, got ${target}`);
    offset = target + extra;
  } else {
    offset = symbolFileOffset(path, target) + extra;
  }
  const pid = options.pid ?? -1;
  if (!Number.isInteger(pid) || pid < -1 || pid === 0) throw new InvalidArgumentError(`uprobe pid must be a process id or -1 for all, got ${pid}`);
  const cpu = pid === -1 ? 0 : -1;
  const kind = options.retprobe ? 'uretprobe' : 'uprobe';
  const what = `${kind} ${path}:${typeof target === 'number' ? `0x${target.toString(16)}` : target}${extra ? `+${extra}` : ''}${pid !== -1 ? ` (pid ${pid})` : ''}`;
  const perfOpts = options.cookie !== undefined ? { cookie: options.cookie } : {};

  const type = pmuType('uprobe');
  if (type !== undefined) {
    let config = 0n;
    if (options.retprobe) {
      const bit = pmuConfigShift('uprobe', 'retprobe');
      if (bit === undefined) throw new NotSupportedError('uretprobes through the uprobe PMU', 'the PMU has no retprobe format field');
      config |= 1n << BigInt(bit);
    }
    if (options.refCtrOffset) {
      const shift = pmuConfigShift('uprobe', 'ref_ctr_offset');
      if (shift === undefined) throw new NotSupportedError('uprobe reference counters (USDT semaphores)', undefined, '4.20');
      config |= BigInt(options.refCtrOffset) << BigInt(shift);
    }
    const perf = perfEventOpen({ type, config, uprobePath: path, probeOffset: offset, samplePeriod: 1, wakeupEvents: 1 }, pid, cpu, -1, undefined, what);
    return attachPerfEventFd(prog, perf, kind, perfOpts);
  }

  const root = tryTracefsRoot();
  if (!root) {
    throw new NotSupportedError('uprobes', 'the kernel has no uprobe PMU (/sys/bus/event_source/devices/uprobe) and tracefs is not available for uprobe_events');
  }
  const name = legacyProbeName('uprobe', typeof target === 'number' ? `off_${offset.toString(16)}` : target);
  const ref = options.refCtrOffset ? `(0x${options.refCtrOffset.toString(16)})` : '';
  const probe = createLegacyProbe('uprobe_events', 'bpfkit', name, `${options.retprobe ? 'r' : 'p'}:bpfkit/${name} ${path}:0x${offset.toString(16)}${ref}`);
  let perf;
  try {
    perf = perfEventOpen({ type: PERF_TYPE_TRACEPOINT, config: probe.id, samplePeriod: 1, wakeupEvents: 1 }, pid, cpu, -1, undefined, what);
  } catch (e) {
    probe.remove();
    throw e;
  }
  return attachPerfEventFd(prog, perf, kind, { ...perfOpts, cleanup: probe.remove });
}
