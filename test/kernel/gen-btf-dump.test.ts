/**
 * The vmlinux.h `bpfkit btf dump` writes for this kernel, used for real: a CO-RE program compiled
 * against it (test/gen/btf-dump-core.bpf.c) must load, which needs every CO-RE relocation and its
 * tp_btf attach target to resolve against the running kernel's BTF.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBtf } from '../../src/cli/btf.js';
import { Collection } from '../../src/load/collection.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { defaultCflags } from '../../src/gen/compile.js';
import { kernelTest } from '../helpers/index.js';
import { ROOT, clang, removeDir, scratchDir } from '../gen/harness.js';

describe('btf dump: a CO-RE program built on the dumped vmlinux.h', { ...kernelTest, skip: kernelTest.skip || (clang === undefined ? 'needs clang' : false) }, () => {
  let dir = '';
  before(() => {
    dir = scratchDir('btf-dump-kernel');
  });
  after(() => removeDir(dir));

  it('loads into this kernel', async () => {
    assert.equal(await runBtf(['dump', '--out', join(dir, 'vmlinux.h')]), 0);
    const obj = join(dir, 'core.bpf.o');
    execFileSync(clang!, [...defaultCflags(), '-Wall', '-Werror', `-I${dir}`, '-c', join(ROOT, 'test', 'gen', 'btf-dump-core.bpf.c'), '-o', obj], { stdio: ['ignore', 'pipe', 'pipe'] });
    const spec = CollectionSpec.fromBuffer(readFileSync(obj));
    assert.ok(spec.programs.get('on_switch')!.coreRelos.length > 0, 'the program carries CO-RE relocations');
    const coll = await Collection.load(spec);
    try {
      const prog = coll.programs.get('on_switch');
      assert.ok(prog);
      assert.equal(prog.type, 'tracing');
      assert.ok(prog.info().verifiedInstructions > 0);
    } finally {
      coll.close();
    }
  });
});
