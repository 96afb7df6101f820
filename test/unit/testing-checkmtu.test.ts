/**
 * bpf_check_mtu in the emulated kernel, without root: hand-worked answers of bpf_xdp_check_mtu and
 * bpf_skb_check_mtu on a device with MTU 1400, and what a failure leaves in *mtu_len per release.
 * test/kernel/emulator-helpers.test.ts compares the same calls with the kernel.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EmulatedKernel } from '../../src/testing/index.js';
import { runCheckMtu, type MtuCall } from '../helpers/mtu-scenarios.js';

function run(calls: MtuCall[], release = '6.18'): unknown[] {
  const kernel = new EmulatedKernel({ kernel: release, netdevs: [{ ifindex: 2, name: 'm0', mtu: 1400 }] }).install();
  try {
    return calls.map(runCheckMtu);
  } finally {
    kernel.restore();
  }
}

const base = { dev: 2, ifindex: 0, mtuLen: 0, lenDiff: 0, flags: 0n } as const;

describe('bpf_check_mtu (emulated)', () => {
  it('compares the frame, or *mtu_len plus ETH_HLEN, with len_diff, against the MTU plus ETH_HLEN', () => {
    for (const kind of ['xdp', 'tc'] as const) {
      assert.deepEqual(run([
        { ...base, kind, len: 1414 }, { ...base, kind, len: 1415 },
        { ...base, kind, len: 1415, lenDiff: -1 }, { ...base, kind, len: 100, lenDiff: 1315 },
        { ...base, kind, len: 100, mtuLen: 1400 }, { ...base, kind, len: 100, mtuLen: 1401 },
        { ...base, kind, len: 100, mtuLen: 0xfffffff1 }, { ...base, kind, len: 60, ifindex: 1 },
      ]), [[0, 1400], [1, 1400], [0, 1400], [1, 1400], [0, 1400], [1, 1400], [0, 1400], [0, 65536]], kind);
    }
  });

  it('flags: SEGS for tc alone (a GSO skb over the MTU then -EINVAL, passing without it), unknown bits -EINVAL', () => {
    assert.deepEqual(run([
      { ...base, kind: 'tc', len: 1415, flags: 1n }, { ...base, kind: 'tc', len: 1415, gsoSize: 500 },
      { ...base, kind: 'tc', len: 1415, flags: 1n, gsoSize: 500 }, { ...base, kind: 'xdp', len: 60, flags: 1n },
      { ...base, kind: 'tc', len: 60, flags: 1n, lenDiff: 1 }, { ...base, kind: 'tc', len: 60, flags: 1n << 32n },
    ]), [[1, 1400], [0, 1400], [-22, 0], [-22, 0], [-22, 0], [-22, 0]]);
  });

  it('a refused call leaves *mtu_len from 6.12 and writes 0 before', () => {
    const calls: MtuCall[] = [{ ...base, kind: 'xdp', len: 60, ifindex: 9, mtuLen: 500 }, { ...base, kind: 'tc', len: 60, flags: 2n, mtuLen: 500 }];
    assert.deepEqual(run(calls, '6.18'), [[-19, 500], [-22, 500]]);
    assert.deepEqual(run(calls, '6.1'), [[-19, 0], [-22, 0]]);
  });
});
