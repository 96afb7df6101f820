/**
 * File descriptors do not leak: thousands of Collection.load + close cycles, and hundreds of loads
 * that fail (in the verifier, and after the BTF and the maps were already created), leave this
 * process with exactly the descriptors it started with. The spec is parsed once and loaded
 * again and again, as a long-running agent would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Collection, CollectionSpec, VerifierError } from '../../src/index.js';
import { fdCount, kernelTest, obj } from '../helpers/index.js';

const CYCLES = 10_000;
const FAILED = 300;

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(2);
}

test(`fd leak: ${CYCLES} cycles of Collection.load + close`, { ...kernelTest, timeout: 600_000 }, async (t) => {
  const spec = await CollectionSpec.fromFile(obj('packet_count'));
  // One load first, so lazily opened process-wide state is not counted as a leak.
  (await Collection.load(spec)).close();
  const before = fdCount();
  const started = performance.now();
  let open = 0;
  for (let i = 0; i < CYCLES; i++) {
    const c = await Collection.load(spec);
    try {
      // BTF, one map and one program are open while the collection is.
      if (i === 0) open = fdCount() - before;
      if (i % 1000 === 0) assert.equal(c.programs.get('xdp_prog_func')!.testRun({ data: new Uint8Array(14) }).retval, 2);
    } finally {
      c.close();
    }
    if (i % 1000 === 999) assert.equal(fdCount(), before, `after ${i + 1} cycles`);
  }
  assert.equal(fdCount(), before);
  assert.equal(open, 2, 'a loaded packet_count holds its map and program (the BTF fd is closed after load)');
  t.diagnostic(`${CYCLES} load/close cycles took ${seconds(started)} s`);
});

test(`fd leak: ${FAILED} loads rejected by the verifier`, { ...kernelTest, timeout: 600_000 }, async (t) => {
  const spec = await CollectionSpec.fromFile(obj('reject'));
  const before = fdCount();
  const started = performance.now();
  for (let i = 0; i < FAILED; i++) {
    await assert.rejects(Collection.load(spec), VerifierError);
  }
  assert.equal(fdCount(), before);
  t.diagnostic(`${FAILED} rejected loads took ${seconds(started)} s`);
});

test(`fd leak: ${FAILED} loads failing after the BTF and maps were created`, { ...kernelTest, timeout: 600_000 }, async (t) => {
  // packet_count's program declared a socket filter: its XDP context accesses fail verification,
  // after the loader has already loaded the BTF and created xdp_stats_map.
  const spec = (await CollectionSpec.fromFile(obj('packet_count'))).copy();
  const ps = spec.programs.get('xdp_prog_func')!;
  ps.type = 'socket_filter';
  ps.attachType = undefined;
  const before = fdCount();
  const started = performance.now();
  for (let i = 0; i < FAILED; i++) {
    await assert.rejects(Collection.load(spec), (e: unknown) => {
      assert.ok(e instanceof VerifierError, String(e));
      assert.equal(e.program, 'xdp_prog_func');
      return true;
    });
  }
  assert.equal(fdCount(), before);
  t.diagnostic(`${FAILED} loads failing late took ${seconds(started)} s`);

  // And the same spec loads again once repaired: the failures left nothing half-made behind.
  ps.type = 'xdp';
  ps.attachType = 'xdp';
  const c = await Collection.load(spec);
  try {
    assert.equal(c.programs.get('xdp_prog_func')!.testRun({ data: new Uint8Array(14) }).retval, 2);
  } finally {
    c.close();
  }
  assert.equal(fdCount(), before);
});
