/**
 * `bpfkit gen` against the kernel: gentest.bpf.c is compiled and bound by the CLI, the generated
 * module is transpiled and imported, `loadGentest()` loads the object with .rodata set from
 * TypeScript, and gen_copy runs under BPF_PROG_TEST_RUN. Values written from TypeScript must reach
 * C byte for byte as BTF lays them out (checked against BTF's own offsets, not the generator's),
 * and values C writes field by field must decode to exactly what C wrote.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Btf } from '../../src/btf/btf.js';
import type { BtfStruct } from '../../src/btf/types.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { runGen } from '../../src/cli/gen.js';
import { possibleCpus } from '../../src/sys/cpus.js';
import { kernelTest } from '../helpers/index.js';
import { GENTEST_C, clang, importFile, removeDir, scratchDir, transpileTo } from '../gen/harness.js';
import type * as Gentest from '../gen/golden/gentest.js';

const XDP_PASS = 2;

/** The members of a struct by name, as BTF records them. */
function membersOf(btf: Btf, name: string): Map<string, { byte: number; bitOffset: number; bits: number; size: number }> {
  const t = btf.byName(name, 'struct')[0] as BtfStruct | undefined;
  assert.ok(t, `struct ${name} in BTF`);
  const out = new Map<string, { byte: number; bitOffset: number; bits: number; size: number }>();
  for (const m of t.members) {
    if (!m.name) continue;
    out.set(m.name, { byte: Math.floor(m.bitOffset / 8), bitOffset: m.bitOffset, bits: m.bitfieldSize, size: btf.sizeof(m.type) });
  }
  return out;
}

/** A little-endian bitfield read straight from bytes (BTF bit offsets count from each byte's LSB). */
function bitsAt(bytes: Uint8Array, bitOffset: number, bits: number): bigint {
  let v = 0n;
  for (let i = 0; i < bits; i++) {
    const b = bitOffset + i;
    if ((bytes[b >> 3]! >> (b & 7)) & 1) v |= 1n << BigInt(i);
  }
  return v;
}

describe('gen: generated bindings in the kernel', { ...kernelTest, skip: kernelTest.skip || (clang === undefined ? 'needs clang' : false) }, () => {
  let dir = '';
  let g: typeof Gentest;
  let btf: Btf;

  before(async () => {
    dir = scratchDir('gen-kernel');
    // The command line, end to end: C in, object and bindings out.
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => (typeof chunk === 'string' ? true : write(chunk, ...rest))) as typeof process.stdout.write;
    try {
      assert.equal(await runGen(['gentest', GENTEST_C, '--out-dir', dir, '--type', 'gen_event']), 0);
    } finally {
      process.stdout.write = write;
    }
    const js = transpileTo(dir, 'gentest', readFileSync(join(dir, 'gentest.ts'), 'utf8'));
    g = await importFile<typeof Gentest>(js);
    btf = CollectionSpec.fromBuffer(readFileSync(join(dir, 'gentest.bpf.o'))).btf!;
  });
  after(() => removeDir(dir));

  const key: Gentest.GenKey = {
    ifindex: 0x01020304, port: 8080, proto: 17, flags: 5, kind: 19, addr: { bytes: Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i) },
  };

  function sampleValue(): Gentest.GenValue {
    return {
      packets: 0x0123456789abcdefn,
      bytes: 0xfedcba9876543210n,
      delta: -123456,
      color: g.GenColor.GEN_WHITE,
      name: new TextEncoder().encode('hello\0\0\0\0\0\0\0\0\0\0\0'),
      hist: [1, 0x7fffffff, 0x80000000, 0xffffffff],
      peers: [{ bytes: new Uint8Array(16).fill(0x11) }, { bytes: Uint8Array.from({ length: 16 }, (_, i) => i) }],
      payload: { words: [0xdeadbeef, 0xcafef00d] },
      as_u32: 0x40490fdb,
      bits: { a: 15, b: 1, c: -8, ok: true, k: g.GenKind.GEN_KIND_PACKET },
      signed64: -(1n << 62n),
      flag: true,
      wide: (1n << 40n) - 2n,
      narrow: 0x123456n,
      matrix: [[-1, 2, -3], [4, -32768, 32767]],
      tail: 0xa5,
    };
  }

  it('loads with typed .rodata, and moves structs between TypeScript and C byte for byte', async () => {
    const value = sampleValue();
    const objs = await g.loadGentest({
      rodata: { cfgKey: key, cfgMultiplier: 3, cfgColor: g.GenColor.GEN_BLUE },
      data: { genDataCounter: 41 },
    });
    try {
      assert.deepEqual(objs.variables.cfgKey.get(), key);
      assert.equal(objs.variables.cfgMultiplier.get(), 3);
      assert.equal(objs.variables.cfgColor.get(), g.GenColor.GEN_BLUE);
      assert.equal(objs.variables.genDataCounter.get(), 41);

      // TypeScript -> map: the generated encoder and the map's own codec agree on the bytes.
      objs.maps.genArray.update(0, value);
      const written = objs.maps.genArray.lookupBytes(0)!;
      assert.deepEqual(Buffer.from(written), Buffer.from(g.encodeGenValue(value)));

      // Those bytes, read with BTF's offsets (not the generator's).
      const m = membersOf(btf, 'gen_value');
      const dv = new DataView(written.buffer, written.byteOffset, written.byteLength);
      assert.equal(dv.getBigUint64(m.get('packets')!.byte, true), value.packets);
      assert.equal(dv.getBigUint64(m.get('bytes')!.byte, true), value.bytes);
      assert.equal(dv.getInt32(m.get('delta')!.byte, true), value.delta);
      assert.equal(dv.getUint32(m.get('color')!.byte, true), 0xffffffff);
      assert.deepEqual(written.subarray(m.get('name')!.byte, m.get('name')!.byte + 16), value.name);
      value.hist.forEach((h, i) => assert.equal(dv.getUint32(m.get('hist')!.byte + 4 * i, true), h));
      assert.deepEqual(written.subarray(m.get('peers')!.byte + 16, m.get('peers')!.byte + 32), value.peers[1]!.bytes);
      assert.equal(dv.getUint32(m.get('payload')!.byte + 4, true), 0xcafef00d);
      assert.equal(dv.getBigInt64(m.get('signed64')!.byte, true), value.signed64);
      assert.equal(written[m.get('flag')!.byte], 1);
      assert.equal(bitsAt(written, m.get('wide')!.bitOffset, m.get('wide')!.bits), value.wide);
      assert.equal(bitsAt(written, m.get('narrow')!.bitOffset, m.get('narrow')!.bits), value.narrow);
      assert.equal(dv.getInt16(m.get('matrix')!.byte + 2 * (1 * 3 + 1), true), -32768);
      assert.equal(written[m.get('tail')!.byte], 0xa5);
      const bits = m.get('bits')!.byte;
      assert.equal(written[bits]! & 0x0f, 15); // a: low nibble
      assert.equal(written[bits]! >> 4, 1); // b
      assert.equal(written[bits + 1]! & 0x0f, 0x8); // c = -8 as 4 bits

      // Run the program: it copies gen_array[0] into gen_hash[cfg_key] and .bss gen_last,
      // and writes gen_array[1] field by field.
      const run = objs.programs.genCopy.testRun({ data: new Uint8Array(64) });
      assert.equal(run.retval, XDP_PASS);

      const expected = g.decodeGenValue(g.encodeGenValue(value));
      const copied = objs.maps.genHash.lookup(key);
      assert.ok(copied, 'gen_copy stored the value under cfg_key');
      assert.deepEqual(copied, expected);
      assert.deepEqual(Buffer.from(objs.maps.genHash.lookupBytes(key)!), Buffer.from(written));
      assert.deepEqual(g.decodeGenValue(objs.maps.genHash.lookupBytes(g.encodeGenKey(key))!), expected);
      assert.deepEqual(objs.variables.genLast.get(), expected);
      // Field by field, the union's other views included.
      assert.equal(copied.packets, value.packets);
      assert.equal(copied.color, g.GenColor.GEN_WHITE);
      assert.equal(g.cString(copied.name), 'hello');
      assert.equal(copied.payload.raw, 0xcafef00ddeadbeefn);
      assert.deepEqual(copied.payload.halves, { lo: 0xbeef, hi: 0xdead });
      assert.equal(copied.as_u32, 0x40490fdb);
      assert.ok(Math.abs(copied.as_f32! - Math.PI) < 1e-6);
      assert.deepEqual(copied.bits, value.bits);
      assert.deepEqual(copied.matrix, value.matrix);

      // gen_array[1], written by C.
      const fromC = objs.maps.genArray.lookup(1)!;
      assert.equal(fromC.packets, value.packets * 3n);
      assert.equal(fromC.bytes, 0x1122334455667788n);
      assert.equal(fromC.delta, -5);
      assert.equal(fromC.color, g.GenColor.GEN_BLUE);
      assert.equal(g.cString(fromC.name), 'gen');
      assert.deepEqual(fromC.hist, [0, 0, 0, 0xdeadbeef]);
      assert.equal(fromC.peers[1]!.bytes[15], 0xab);
      assert.deepEqual(fromC.payload.halves, { lo: 0, hi: 0x1234 });
      assert.equal(fromC.payload.raw, 0x12340000n);
      assert.equal(fromC.as_u32, 0x3f800000);
      assert.equal(fromC.as_f32, 1);
      assert.deepEqual(fromC.bits, { a: 9, b: 6, c: -3, ok: true, k: g.GenKind.GEN_KIND_EXIT });
      assert.equal(fromC.signed64, -1234567890123n);
      assert.equal(fromC.flag, true);
      assert.equal(fromC.wide, 0xfedcba9876n);
      assert.equal(fromC.narrow, 0xabcdefn);
      assert.deepEqual(fromC.matrix, [[0, 0, 0], [0, 0, -7]]);
      assert.equal(fromC.tail, 0x5a);
      assert.deepEqual(g.decodeGenValue(objs.maps.genArray.lookupBytes(1)!), fromC);

      // The other maps.
      const ev = objs.maps.genQueue.pop();
      assert.deepEqual(ev, { ts: value.bytes, pid: key.ifindex, kind: g.GenKind.GEN_KIND_PACKET, comm: Uint8Array.from([0x71, ...new Array<number>(15).fill(0)]) });
      assert.equal(objs.maps.genQueue.pop(), undefined);
      const perCpu = objs.maps.genPercpu.lookup(0)!;
      assert.equal(perCpu.length, possibleCpus());
      assert.equal(perCpu.reduce((n, c) => n + c.hits, 0n), 1n);
      assert.ok(perCpu.some((c) => c.hits === 1n && c.last_port === key.port));
      assert.equal(objs.maps.genLru.lookup(key), value.packets * 3n);
      assert.equal(objs.variables.genRuns.get(), 1n);
      assert.equal(objs.variables.genDataCounter.get(), 42);
      const rodata = objs.maps.rodata.lookup(0)!;
      assert.deepEqual(rodata.cfg_key, key);

      // Writable variables write through.
      objs.variables.genRuns.set(100n);
      objs.programs.genCopy.testRun({ data: new Uint8Array(64) });
      assert.equal(objs.variables.genRuns.get(), 101n);
      assert.deepEqual([...objs.maps.genHash.keys()], [key]);
    } finally {
      objs.close();
    }
    assert.throws(() => objs.maps.genHash.lookup(key), /closed/);
  });

  it('specGentest() gives a fresh CollectionSpec each time, and the names match the object', () => {
    const a = g.specGentest();
    const b = g.specGentest();
    assert.notEqual(a, b);
    assert.deepEqual([...a.maps.keys()].sort(), Object.values(g.gentestMapNames).sort());
    assert.deepEqual([...a.programs.keys()].sort(), Object.values(g.gentestProgramNames).sort());
    assert.deepEqual([...a.variables.keys()].sort(), Object.values(g.gentestVariableNames).sort());
    a.maps.get('gen_hash')!.maxEntries = 1;
    assert.equal(g.specGentest().maps.get('gen_hash')!.maxEntries, 16);
  });

  it('refuses unknown initial values and disposes with Symbol.dispose', async () => {
    await assert.rejects(g.loadGentest({ rodata: { genRuns: 1n } as unknown as Gentest.GentestRodata }), /gentest: no rodata variable "genRuns"/);
    await assert.rejects(g.loadGentest({ rodata: { cfgMultiplier: 2 ** 32 } }), /cfg_multiplier: 4294967296 does not fit/);
    const objs = await g.loadGentest({ programs: { only: [] } });
    assert.throws(() => objs.programs.genCopy, /program gen_copy was not loaded/);
    objs[Symbol.dispose]();
    assert.throws(() => objs.maps.genArray.lookup(0), /closed/);
  });
});
