/**
 * Objects as libbpf 1.7 loads them (test/bpf/libbpf17.bpf.c, legacy_long.bpf.c): an unknown
 * section name fails only its program and only when loaded, `__ulong()` gives map_extra, global
 * data is BPF_F_MMAPABLE exactly when libbpf makes it so, and legacy definitions with non-zero
 * bytes past struct bpf_map_def are refused. Loaded under the emulated kernel (no root).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Btf } from '../../src/btf/btf.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { Collection } from '../../src/load/collection.js';
import { SpecError } from '../../src/errors.js';
import { ulongField } from '../../src/spec/elf-collection.js';
import { BPF_F_MMAPABLE, BPF_F_RDONLY_PROG } from '../../src/abi/constants.js';
import { useEmulatedKernel } from '../../src/testing/index.js';
import { BtfBuilder } from '../helpers/btf-builder.js';
import { objBytes } from '../helpers/index.js';
import { ElfFile } from '../../src/elf/reader.js';

const kernel = useEmulatedKernel();
after(() => {
  assert.deepEqual(kernel.openFds(), []);
  kernel.restore();
});

describe('libbpf 1.7 object conventions', () => {
  it('an unknown section parses; its program has no type and fails only when loaded', async () => {
    const spec = CollectionSpec.fromBuffer(objBytes('libbpf17'));
    const unknown = spec.programs.get('xdp_unknown')!;
    assert.equal(unknown.type, 'unspec');
    assert.equal(unknown.sectionName, 'bpfkit/no_such_convention');
    assert.equal(spec.programs.get('xdp_known')!.type, 'xdp');
    await assert.rejects(Collection.load(spec), (e: unknown) =>
      e instanceof SpecError
      && e.message.includes('program xdp_unknown: section "bpfkit/no_such_convention" follows no known convention')
      && /rename the section.*set spec\.programs\.get\('xdp_unknown'\)\.type.*programs\.only, or autoload = false/.test(e.message));
    assert.deepEqual(kernel.openFds(), [], 'refused before anything was created');
    const only = await Collection.load(spec, { programs: { only: ['xdp_known'] } });
    assert.deepEqual([...only.programs.keys()], ['xdp_known']);
    assert.equal(only.programs.get('xdp_known')!.testRun({ data: new Uint8Array(64) }).retval, 2);
    only.close();
    unknown.autoload = false;
    (await Collection.load(spec)).close();
    unknown.autoload = true;
    unknown.type = 'xdp';
    const typed = await Collection.load(spec);
    assert.equal(typed.programs.get('xdp_unknown')!.testRun({ data: new Uint8Array(64) }).retval, 2);
    typed.close();
  });

  it('__ulong(map_extra, N) is read from its one-enumerator enum', () => {
    const spec = CollectionSpec.fromBuffer(objBytes('libbpf17'));
    assert.equal(spec.maps.get('bloom')!.mapExtra, 5n);
    // enum64 (clang 15+ emits it for values over 32 bits, e.g. an arena's address), typedef'd.
    const b = new BtfBuilder();
    const e64 = b.enum('enum64', '', 8, false, [['__unique_value3', 2n << 44n]]);
    const td = b.typedef('extra_t', e64);
    const two = b.enum('enum', '', 4, false, [['a', 1n], ['b', 2n]]);
    const int = b.int('int', 4, true);
    const btf: Btf = b.build();
    assert.equal(ulongField(btf, td, 'map m, field map_extra'), 2n << 44n);
    assert.throws(() => ulongField(btf, two, 'map m, field map_extra'), /__ulong\(\.\.\.\) must be an enum with exactly one value \(it has 2\)/);
    assert.throws(() => ulongField(btf, int, 'w'), (e: unknown) => e instanceof SpecError && /expected __uint\(\.\.\.\) or __ulong\(\.\.\.\), got a int/.test(e.message));
  });

  it('global data is mmapable exactly when some variable is not static (as libbpf)', () => {
    const spec = CollectionSpec.fromBuffer(objBytes('libbpf17'));
    const flags = (name: string): number => spec.maps.get(name)!.flags;
    assert.equal(flags('.data'), BPF_F_MMAPABLE);
    assert.equal(flags('.rodata'), BPF_F_MMAPABLE | BPF_F_RDONLY_PROG);
    assert.equal(flags('.data.statics'), 0);
    // Static variables still read and write, through the map rather than a mapping.
    return Collection.load(spec, { programs: { only: ['xdp_known'] } }).then((c) => {
      try {
        assert.equal(c.variables.get('static_a')!.get(), 3);
        c.programs.get('xdp_known')!.testRun({ data: new Uint8Array(64) });
        assert.equal(c.variables.get('static_a')!.get(), 7);
        assert.equal(c.variables.get('global_counter')!.get(), 8);
      } finally {
        c.close();
      }
    });
  });

  it('legacy definitions: trailing bytes must be zero, numa_node aside', () => {
    const bytes = new Uint8Array(objBytes('legacy_long'));
    const spec = CollectionSpec.fromBuffer(bytes);
    assert.equal(spec.maps.get('legacy_numa')!.maxEntries, 4);
    const maps = ElfFile.parse(bytes).section('maps')!;
    const numa = new Uint8Array(bytes);
    numa[maps.offset + 24] = 1;
    assert.equal(CollectionSpec.fromBuffer(numa).maps.get('legacy_numa')!.numaNode, 1);
    for (const at of [20, 28, 31]) {
      const bad = new Uint8Array(bytes);
      bad[maps.offset + at] = 1;
      assert.throws(() => CollectionSpec.fromBuffer(bad), (e: unknown) => e instanceof SpecError
        && e.message.includes(`legacy map legacy_numa: its definition has non-zero bytes past struct bpf_map_def (at offset ${at})`));
    }
  });
});
