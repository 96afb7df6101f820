/**
 * Btf.parseKernel (kernel-written BTF: the record walk without parse()'s checking pass) finds
 * exactly the types parse() finds, and still refuses a section it cannot walk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { Btf } from '../../src/btf/btf.js';
import { BtfError } from '../../src/errors.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { obj } from '../helpers/index.js';

function sameTypes(a: Btf, b: Btf, step = 1): void {
  assert.equal(a.length, b.length);
  for (let id = 0; id < a.length; id += step) assert.deepEqual(a.type(id), b.type(id), `type ${id}`);
}

test('parseKernel and parse agree on an object\'s BTF, every type', () => {
  const btf = CollectionSpec.fromBuffer(readFileSync(obj('core_task'))).btf!;
  const bytes = btf.marshal();
  sameTypes(Btf.parseKernel(bytes), Btf.parse(bytes));
  assert.deepEqual(Btf.parseKernel(bytes).byName('task_struct').map((t) => t.id), Btf.parse(bytes).byName('task_struct').map((t) => t.id));
});

test('parseKernel and parse agree on the running kernel\'s vmlinux BTF', { skip: existsSync('/sys/kernel/btf/vmlinux') ? false : 'no /sys/kernel/btf/vmlinux' }, () => {
  const bytes = readFileSync('/sys/kernel/btf/vmlinux');
  const k = Btf.parseKernel(bytes);
  sameTypes(k, Btf.parse(bytes), 97);
  assert.equal(k.byName('task_struct', 'struct').length, 1);
});

test('parseKernel with adopt: the same types whether the blob\'s memory is kept (padded, aligned) or copied (unpadded, unaligned)', () => {
  const bytes = CollectionSpec.fromBuffer(readFileSync(obj('core_task'))).btf!.marshal();
  const copied = Btf.parse(bytes);
  const padded = new Uint8Array(bytes.length + 8);
  padded.set(bytes);
  const unaligned = new Uint8Array(bytes.length + 9).subarray(1, bytes.length + 1);
  unaligned.set(bytes);
  for (const blob of [padded.subarray(0, bytes.length), unaligned, Uint8Array.from(bytes)]) {
    const k = Btf.parseKernel(blob, { adopt: true });
    sameTypes(k, copied);
    assert.deepEqual(k.byName('task_struct').map((t) => t.id), copied.byName('task_struct').map((t) => t.id));
  }
  // Kept, not copied: a byte changed before a type is first decoded shows in it (which is why the
  // caller must leave the buffer alone); without adopt it does not.
  const id = copied.byName('task_struct')[0]!.id;
  const textAt = (b: Uint8Array): number => Buffer.from(b.buffer, b.byteOffset, b.byteLength).indexOf('task_struct\0', 0, 'latin1');
  for (const adopt of [true, false]) {
    const mem = new Uint8Array(bytes.length + 8);
    mem.set(bytes);
    const k = Btf.parseKernel(mem.subarray(0, bytes.length), { adopt });
    mem[textAt(mem)] = 'T'.charCodeAt(0);
    assert.equal(k.type(id).name, adopt ? 'Task_struct' : 'task_struct');
  }
});

test('parseKernel: an unknown kind or a record past the end is a BtfError', () => {
  const btf = Btf.fromTypes([{ kind: 'void', id: 0, name: '' }, { kind: 'ptr', id: 1, name: '', type: 0 }]);
  const good = btf.marshal();
  const view = new DataView(good.buffer, good.byteOffset, good.byteLength);
  const typeStart = view.getUint32(0x08, true) + view.getUint16(0x04, true);
  const badKind = good.slice();
  new DataView(badKind.buffer).setUint32(typeStart + 4, 31 << 24, true);
  assert.throws(() => Btf.parseKernel(badKind), (e: unknown) => e instanceof BtfError && /unknown kind 31/.test(e.message));
  const longStruct = good.slice();
  // A struct claiming 5 members in a section that ends after its header.
  new DataView(longStruct.buffer).setUint32(typeStart + 4, (4 << 24) | 5, true);
  assert.throws(() => Btf.parseKernel(longStruct), (e: unknown) => e instanceof BtfError && /past the end/.test(e.message));
});
