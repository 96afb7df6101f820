import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { BpfMap, Collection, CollectionSpec } from '../../src/index.js';
import { bpffsMounts, BPFFS } from '../../src/sys/bpffs.js';
import { kernelTest, obj } from '../helpers/index.js';

// Unmounting bpffs is only safe when nothing is pinned there (a fresh machine, CI): elsewhere the
// test would destroy other people's pins, so it leaves the mount alone and says so.
// maps.debug and progs.debug are the kernel's own (bpf_preload) in every fresh mount.
const busy = bpffsMounts().includes(BPFFS) && readdirSync(BPFFS).some((n) => n !== 'maps.debug' && n !== 'progs.debug');

test('pinning under /sys/fs/bpf mounts bpffs when it is missing', { ...kernelTest, skip: kernelTest.skip || (busy ? 'pins exist under /sys/fs/bpf' : false) }, async () => {
  while (bpffsMounts().includes(BPFFS)) execFileSync('umount', [BPFFS]);
  const coll = await Collection.load(await CollectionSpec.fromFile(obj('packet_count')));
  const path = `${BPFFS}/bpfkit-test-mount-${process.pid}`;
  try {
    const m = coll.maps.get('xdp_stats_map')!;
    m.update(7, 70);
    m.pin(path);
    assert.ok(bpffsMounts().includes(BPFFS), 'bpffs is mounted now');
    const again = BpfMap.fromPinned(path);
    try {
      assert.equal(again.lookup(7), 70);
    } finally {
      again.close();
    }
    m.unpin();
    assert.equal(existsSync(path), false);
  } finally {
    coll.close();
    rmSync(path, { force: true });
  }
});
