/**
 * Events a BPF program could not send: the user-space side of bpf/include/bpfkit/drops.h. A
 * program counts each failed ring buffer reservation or output in a per-CPU array of one __u64
 * (BPFKIT_DROPS_MAP); `readDrops` sums the CPUs' counters, so a tool can say how many events it
 * lost. The perf buffer's own loss reports (PERF_RECORD_LOST) come through PerfReader.
 */
import { InvalidArgumentError } from '../errors.js';
import type { BpfMap } from '../objects/map.js';

/**
 * The number of events counted in a drops map (BPFKIT_DROPS_MAP): the sum over every possible
 * CPU. Throws InvalidArgumentError for a map of another shape, and ClosedError once it is closed.
 */
export function readDrops(map: BpfMap): bigint {
  if (map.type !== 'percpu_array' || map.keySize !== 4 || map.valueSize !== 8) {
    throw new InvalidArgumentError(
      `readDrops: map ${map.name} is a ${map.type} with ${map.keySize}-byte keys and ${map.valueSize}-byte values; ` +
        'expected a per-CPU array of __u64 (declare it with BPFKIT_DROPS_MAP from <bpfkit/drops.h>)');
  }
  const bytes = map.lookupBytes(new Uint8Array(4));
  if (!bytes) return 0n;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let sum = 0n;
  for (let at = 0; at + 8 <= bytes.length; at += 8) sum += dv.getBigUint64(at, true);
  return sum;
}
