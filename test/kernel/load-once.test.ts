/**
 * Kernel facts are looked up once per process: loading execsnoop (eight programs, each using
 * LINUX_HAS_SYSCALL_WRAPPER) opens /proc/kallsyms at most once, a second load not at all, and
 * the programs of one load share a single `.kconfig` map.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { Collection } from '../../src/load/collection.js';
import { specExecsnoop } from '../../src/tools/execsnoop/gen/execsnoop.js';
import { kernelTest } from '../helpers/index.js';

/** Counts opens of /proc/kallsyms (by any fs entry point the library uses) while `fn` runs. */
async function kallsymsOpens(fn: () => Promise<void>): Promise<number> {
  const { openSync, readFileSync } = fs;
  let n = 0;
  const counted = (path: unknown) => {
    if (String(path) === '/proc/kallsyms') n++;
  };
  fs.openSync = ((path: fs.PathLike, ...rest: unknown[]) => {
    counted(path);
    return (openSync as (...a: unknown[]) => number)(path, ...rest);
  }) as typeof fs.openSync;
  fs.readFileSync = ((path: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    counted(path);
    return (readFileSync as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readFileSync;
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    fs.openSync = openSync;
    fs.readFileSync = readFileSync;
    syncBuiltinESMExports();
  }
  return n;
}

test('execsnoop loads read /proc/kallsyms at most once per process; one .kconfig map per load', kernelTest, async () => {
  let kconfigMaps = new Set<number>();
  const load = async () => {
    const c = await Collection.load(specExecsnoop());
    try {
      assert.ok(c.programs.size >= 2, 'several programs share the extern');
      const own = new Set([...c.maps.values()].map((m) => m.info().id));
      kconfigMaps = new Set([...c.programs.values()].flatMap((p) => p.info().mapIds).filter((id) => !own.has(id)));
    } finally {
      c.close();
    }
  };
  const first = await kallsymsOpens(load);
  assert.ok(first <= 1, `the first load opened /proc/kallsyms ${first} times`);
  assert.equal(kconfigMaps.size, 1, `the programs reference ${kconfigMaps.size} maps the collection did not create (one .kconfig expected)`);
  assert.equal(await kallsymsOpens(load), 0, 'a second load in the same process reads no kallsyms');
});
