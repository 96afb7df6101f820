import { test } from 'node:test';
import assert from 'node:assert/strict';
import { haveMapType, haveProgramHelper, haveProgramType, resetFeatureCache } from '../../src/features.js';
import { kernelTest } from '../helpers/index.js';

test('probes answer for this kernel (6.18): common map and program types exist', kernelTest, () => {
  resetFeatureCache();
  for (const t of ['hash', 'array', 'percpu_hash', 'lru_hash', 'lpm_trie', 'queue', 'stack', 'ringbuf', 'perf_event_array', 'array_of_maps', 'hash_of_maps', 'bloom_filter'] as const) {
    assert.equal(haveMapType(t), true, t);
  }
  for (const t of ['socket_filter', 'xdp', 'sched_cls', 'tracepoint', 'raw_tracepoint', 'cgroup_skb', 'perf_event', 'kprobe'] as const) {
    assert.equal(haveProgramType(t), true, t);
  }
});

test('helper probes tell a usable helper from one the program type may not call', kernelTest, () => {
  resetFeatureCache();
  assert.equal(haveProgramHelper('xdp', 1 /* map_lookup_elem */), true);
  assert.equal(haveProgramHelper('xdp', 130 /* ringbuf_output */), true);
  // bpf_skb_store_bytes (9) works on skbs, not XDP buffers; bpf_redirect (23) is not for socket filters.
  assert.equal(haveProgramHelper('xdp', 9), false);
  assert.equal(haveProgramHelper('socket_filter', 23), false);
  assert.equal(haveProgramHelper('sched_cls', 9), true);
  // Helper ids past the last one do not exist.
  assert.equal(haveProgramHelper('xdp', 100000), false);
});
