/**
 * Run-time statistics of programs (run count and time in ProgramInfo) are off by default because
 * they cost a little per run. enableStats() turns them on until the returned handle is closed.
 */
import { enableStats as enable } from './sys/bpf.js';
import { BPF_STATS_RUN_TIME } from './sys/constants.js';

export interface StatsHandle extends Disposable {
  close(): void;
}

export function enableStats(): StatsHandle {
  const fd = enable(BPF_STATS_RUN_TIME);
  return { close: () => fd.close(), [Symbol.dispose]: () => fd.close() };
}
