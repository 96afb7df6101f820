/**
 * Run-time statistics of programs (run count and time in ProgramInfo) are off by default because
 * they cost a little per run. enableStats() turns them on until the returned handle is closed.
 */
import { enableStats as enable } from '../sys/bpf.js';
import { BPF_STATS_RUN_TIME } from '../abi/constants.js';

/** Keeps program run statistics on until closed (see {@link enableStats}). */
export interface StatsHandle extends Disposable {
  close(): void;
}

/**
 * Turns on run-time statistics of every program (run count and total time, read in
 * {@link ProgramInfo}) until the returned handle is closed: they cost a little per run, so the
 * kernel keeps them off by default. Several handles may be open; statistics stay on while one is.
 *
 * Requires Linux 5.8 (BPF_ENABLE_STATS).
 * @throws {@link BpfSyscallError} (`code` EINVAL on older kernels, EPERM without CAP_SYS_ADMIN).
 * @example
 * ```ts
 * using stats = enableStats();
 * // ... let the programs run ...
 * const { runCount, runTimeNs } = prog.info();
 * ```
 */
export function enableStats(): StatsHandle {
  const fd = enable(BPF_STATS_RUN_TIME);
  return { close: () => fd.close(), [Symbol.dispose]: () => fd.close() };
}
