import { test } from 'node:test';
import assert from 'node:assert/strict';
import { haveMapType, haveProgramType, resetFeatureCache } from "../../src/kernel/features.js";
import { setNative, type Native } from '../../src/sys/native.js';
import { kernelChargesMemlock } from '../../src/sys/rlimit.js';
import { BpfSyscallError } from '../../src/errors.js';

/** A syscall layer that answers bpf() from a script and counts the calls. */
function fakeNative(answer: (cmd: number) => number): { native: Native; calls: number[] } {
  const calls: number[] = [];
  const native = {
    bpf(cmd: number) { calls.push(cmd); return answer(cmd); },
    close() { return 0; },
  } as unknown as Native;
  return { native, calls };
}

test('feature probes cache conclusive answers only', () => {
  resetFeatureCache();
  let reply = -1; // EPERM: says nothing about the feature
  const fake = fakeNative(() => reply);
  const prev = setNative(fake.native);
  try {
    assert.throws(() => haveMapType('hash'), (e: unknown) => e instanceof BpfSyscallError && e.code === 'EPERM');
    assert.throws(() => haveMapType('hash'), BpfSyscallError, 'an inconclusive answer is asked again');
    assert.equal(fake.calls.length, 2);
    reply = 7; // a map fd: yes
    assert.equal(haveMapType('hash'), true);
    assert.equal(haveMapType('hash'), true);
    assert.equal(fake.calls.length, 3, 'the conclusive answer is cached');
    reply = -22; // EINVAL: no
    assert.equal(haveProgramType('xdp'), false);
    reply = 9;
    assert.equal(haveProgramType('xdp'), false, 'a conclusive "no" is cached too');
  } finally {
    setNative(prev);
    resetFeatureCache();
  }
});

test('memlock is raised only on kernels that charge BPF memory to it', () => {
  assert.equal(kernelChargesMemlock('5.10.0-23-amd64'), true);
  assert.equal(kernelChargesMemlock('4.19.0'), true);
  assert.equal(kernelChargesMemlock('5.11.0'), false);
  assert.equal(kernelChargesMemlock('6.18.44-fc-v595'), false);
});

