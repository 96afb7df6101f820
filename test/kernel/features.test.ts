import { test } from 'node:test';
import assert from 'node:assert/strict';
import { haveMapType, haveProgramHelper, haveProgramType, resetFeatureCache } from '../../src/kernel/features.js';
import { kernelTest } from '../helpers/index.js';
import { BpfkitError } from '../../src/errors.js';
import {
  haveBpfLsm, haveKprobeMulti, haveKprobes, haveKprobeSession, haveTcx, haveTrampolines, haveUprobeMulti, haveUprobeSession, hookSupport,
  linkInfoHas, resetHookProbeCache,
} from '../../src/kernel/features.js';

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

test('program types that load against a target answer as root instead of throwing; ext and struct_ops say they cannot be probed', kernelTest, () => {
  resetFeatureCache();
  for (const t of ['lsm', 'tracing', 'sk_lookup', 'netfilter', 'syscall', 'cgroup_sock_addr', 'cgroup_sockopt'] as const) {
    assert.equal(typeof haveProgramType(t), 'boolean', t);
  }
  // An LSM program that attaches is one that loads.
  if (haveBpfLsm()) assert.equal(haveProgramType('lsm'), true);
  if (haveTrampolines()) assert.equal(haveProgramType('tracing'), true);
  for (const t of ['ext', 'struct_ops'] as const) {
    assert.throws(() => haveProgramType(t), (e: unknown) => e instanceof BpfkitError && e.code === 'ERR_BPFKIT_PROBE' && /cannot probe/.test(e.message));
  }
});

test('hook probes agree with hookSupport, and a "no" names the kernel and what it lacks', kernelTest, () => {
  resetHookProbeCache();
  const probes = [
    ['kprobes', haveKprobes], ['kprobe_multi', haveKprobeMulti], ['kprobe_session', haveKprobeSession], ['uprobe_multi', haveUprobeMulti],
    ['uprobe_session', haveUprobeSession], ['trace_fentry', haveTrampolines], ['bpf_lsm', haveBpfLsm],
  ] as const;
  for (const [hook, have] of probes) {
    const e = hookSupport(hook);
    assert.equal(e === undefined, have(), hook);
    if (e) {
      assert.equal(e.lackedBy, 'kernel');
      assert.match(e.message, /is not supported by this kernel/);
      assert.match(e.message, /CONFIG_|requires Linux \d+\.\d+|security policy|BPF LSM/, `${hook}: says what is missing: ${e.message}`);
    }
  }
  // A kernel with sessions has multi links; one with uprobe sessions has uprobe_multi links.
  if (haveKprobeSession()) assert.equal(haveKprobeMulti(), true);
  if (haveUprobeSession()) assert.equal(haveUprobeMulti(), true);
  assert.equal(typeof haveTcx(), 'boolean');
  // struct bpf_link_info always has the tracing member (5.8+); never a member that does not exist.
  assert.equal(linkInfoHas('tracing', 'target_btf_id'), true);
  assert.equal(linkInfoHas('no_such_member'), false);
});
