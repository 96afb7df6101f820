/**
 * Generated decoders and encoders against the runtime codecs (codecFor): for every type, random
 * bytes must decode to deep-equal values, and those values must encode to identical bytes, in both
 * byte orders. The types are built by hand to reach every layout rule (128-bit and 64-bit enums,
 * bitfields spanning more than six bytes, old-style int-encoded bitfields, anonymous unions inside
 * anonymous structs, arrays of arrays of bytes, ...), and taken from gentest.bpf.c when clang is
 * there. The generated module is also type-checked under the strictest compiler options.
 */
import { describe, it, before, after } from 'node:test';
import { BtfBuilder } from '../helpers/btf-builder.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Btf } from '../../src/btf/btf.js';
import { codecFor } from '../../src/btf/codec.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { CodecEmitter, codecModule } from '../../src/gen/codec-emit.js';
import { NameRegistry } from '../../src/gen/names.js';
import { runGenOnce } from '../../src/cli/gen.js';
import {
  BPFKIT_URL, GENTEST_C, formatDiagnostics, importFile, needsClang, removeDir, scratchDir, transpileTo, typeCheck,
} from '../gen/harness.js';

/** Every layout rule the generator follows, as a handful of types. Returns the BTF and its roots. */
function zoo(): { btf: Btf; roots: number[] } {
  const b = new BtfBuilder();
  const u8 = b.int('unsigned char', 1, false);
  const s8 = b.int('signed char', 1, true);
  const char = b.int('char', 1, true, { char: true });
  const u16 = b.int('unsigned short', 2, false);
  const s16 = b.int('short', 2, true);
  const u32 = b.int('unsigned int', 4, false);
  const s32 = b.int('int', 4, true);
  const u64 = b.int('unsigned long long', 8, false);
  const s64 = b.int('long long', 8, true);
  const u128 = b.int('unsigned __int128', 16, false);
  const s128 = b.int('__int128', 16, true);
  const bool = b.int('_Bool', 1, false, { bool: true });
  const bool4 = b.int('bool32', 4, false, { bool: true });
  const f32 = b.float('float', 4);
  const f64 = b.float('double', 8);
  const f128 = b.float('long double', 16);
  const tu32 = b.typedef('__u32', u32);
  const cvu32 = b.qual('const', b.qual('volatile', tu32));
  const color = b.enum('enum', 'color', 4, false, [['RED', 0n], ['GREEN', 1n], ['WHITE', 0xffffffffn]]);
  const small = b.enum('enum', 'small', 1, true, [['NEG', -2n], ['POS', 5n]]);
  const wide = b.enum('enum64', 'wide', 8, false, [['W0', 0n], ['WBIG', 1n << 60n], ['WMAX', (1n << 64n) - 1n]]);
  const wides = b.enum('enum64', 'wides', 8, true, [['SNEG', -(1n << 62n)], ['SPOS', 7n]]);
  const narrow64 = b.enum('enum64', 'narrow64', 4, false, [['N1', 1n], ['N2', 2n]]);
  const old8 = b.enum('enum', 'old8', 8, false, [['O1', 1n]]);
  const anonEnum = b.enum('enum', '', 2, false, [['A0', 0n], ['A1', 1n]]);
  const inner = b.struct('struct', 'inner', 8, [['x', u32, 0], ['y', s16, 32], ['z', u8, 48]]);
  // struct scalars: one of everything, at natural offsets.
  const scalars = b.struct('struct', 'scalars', 176, [
    ['a', u8, 0], ['b', s8, 8], ['c', u16, 16], ['d', s16, 32], ['e', u32, 64], ['f', s32, 96],
    ['g', u64, 128], ['h', s64, 192], ['i', u128, 256], ['j', s128, 384], ['k', bool, 512], ['l', bool4, 544],
    ['m', f32, 576], ['n', f64, 640], ['o', f128, 768], ['p', b.ptr(inner), 896], ['q', cvu32, 960],
    ['r', color, 992], ['s', small, 1024], ['t', wide, 1088], ['u', wides, 1152], ['v', narrow64, 1216],
    ['w', old8, 1280],
  ]);
  // Bitfields: kind_flag ones of every repr, one wider than 6 bytes, signed ones, enum ones.
  const bits = b.struct('struct', 'bits', 24, [
    ['b1', u8, 0, 1], ['b3', s8, 1, 3], ['flag', bool, 4, 1], ['col', color, 5, 2], ['e64', wide, 7, 9],
    ['w60', u64, 19, 60], ['s60', s64, 79, 60], ['s7', s32, 139, 7], ['big', u64, 146, 40], ['sm', small, 186, 3],
  ]);
  // Old-style bitfields: the int type carries the width (kind_flag off), and an unaligned whole int.
  const i3 = b.int('int', 4, true, { bits: 3 });
  const u5 = b.int('unsigned int', 4, false, { bits: 5, bitOffset: 2 });
  const old = b.struct('struct', 'oldbits', 8, [['x', i3, 0], ['y', u5, 3], ['un', u16, 13]]);
  // Nesting: anonymous struct in anonymous union in struct, arrays of structs and of byte arrays.
  const anonS = b.struct('struct', '', 8, [['lo', u32, 0], ['hi', u32, 32]]);
  const anonU = b.struct('union', '', 8, [['whole', u64, 0], ['', anonS, 0]]);
  const pairT = b.struct('struct', '', 4, [['k', u16, 0], ['v', u16, 16]]);
  const nest = b.struct('struct', 'nest', 80, [
    ['head', u32, 0], ['', anonU, 64], ['pairs', b.array(pairT, 3), 128], ['names', b.array(b.array(char, 3), 2), 224],
    ['grid', b.array(b.array(s16, 2), 2), 272], ['colors', b.array(color, 2), 352], ['flags', b.array(bool, 3), 416],
    ['inners', b.array(inner, 2), 448], ['anon_e', anonEnum, 576], ['flex', b.array(u32, 0), 608],
  ]);
  const u = b.struct('union', 'choice', 16, [['raw', b.array(u8, 16), 0], ['pair', b.array(u64, 2), 0], ['in', inner, 0]]);
  const proto = b.struct('struct', 'odd', 4, [['__proto__', u32, 0]]);
  const td = b.typedef('pair_t', pairT);
  return { btf: b.build(), roots: [scalars, bits, old, nest, u, proto, td, color, wide] };
}

function tsName(name: string | undefined): string {
  assert.ok(name, 'root has a TS name');
  return name;
}

type Codec = (bytes: Uint8Array, offset?: number) => unknown;
type Encoder = (value: unknown, out?: Uint8Array, offset?: number) => Uint8Array;

interface Loaded {
  readonly mod: Record<string, unknown>;
  readonly names: (string | undefined)[];
}

async function load(dir: string, name: string, btf: Btf, roots: number[], littleEndian: boolean): Promise<Loaded> {
  const { text, names } = codecModule(btf, roots, { littleEndian, importFrom: BPFKIT_URL });
  const path = transpileTo(dir, name, text);
  return { mod: await importFile<Record<string, unknown>>(path), names };
}

function fn<T>(mod: Record<string, unknown>, name: string): T {
  const f = mod[name];
  assert.equal(typeof f, 'function', `${name} is exported`);
  return f as T;
}

/** Random bytes in, equal values out; those values in, equal bytes out. */
function differential(btf: Btf, id: number, decode: Codec, encode: Encoder, littleEndian: boolean, rounds = 200): void {
  const c = codecFor(btf, id, { littleEndian });
  for (let i = 0; i < rounds; i++) {
    const offset = i % 5;
    const bytes = randomBytes(c.size + offset + 2);
    const want = c.decode(bytes, offset);
    const got = decode(bytes, offset);
    assert.deepEqual(got, want, `decode #${i}`);
    // A decoded union re-encodes when its alternatives agree on every byte (codecFor's rule);
    // when they do not (a shorter alternative, a NaN float), both must refuse alike.
    let e: Uint8Array;
    try {
      e = c.encode(want);
    } catch (err) {
      assert.throws(() => encode(got), (x: unknown) => x instanceof Error && x.message === (err as Error).message, `encode #${i} throws alike`);
      continue;
    }
    const a = encode(got);
    assert.deepEqual(Buffer.from(a), Buffer.from(e), `encode #${i}`);
    // And into a caller's buffer at an offset.
    const out = new Uint8Array(c.size + 7).fill(0xee);
    assert.equal(encode(got, out, 3), out);
    assert.deepEqual(Buffer.from(out.subarray(3, 3 + c.size)), Buffer.from(e));
    assert.equal(out[2], 0xee);
  }
}

describe('gen: generated codecs match codecFor', () => {
  let dir = '';
  before(() => {
    dir = scratchDir('gen-codec');
  });
  after(() => removeDir(dir));

  for (const le of [true, false]) {
    it(`hand-built types, ${le ? 'little' : 'big'}-endian`, async () => {
      const { btf, roots } = zoo();
      const { mod, names } = await load(dir, `zoo_${le ? 'le' : 'be'}`, btf, roots, le);
      roots.forEach((id, i) => {
        const n = tsName(names[i]);
        differential(btf, id, fn<Codec>(mod, `decode${n}`), fn<Encoder>(mod, `encode${n}`), le);
      });
    });
  }

  for (const le of [true, false]) {
    it(`hand-built types, byte order bound when the module loads (--target both), ${le ? 'little' : 'big'}-endian`, async () => {
      const { btf, roots } = zoo();
      // A module for both byte orders binds LE from the host; a literal stands in for it here.
      const { text, names } = codecModule(btf, roots, { hostByteOrder: String(le), importFrom: BPFKIT_URL });
      assert.match(text, new RegExp(`^const LE = ${le};$`, 'm'));
      assert.match(text, /^const \{ [^}]+ \} = LE \? genRuntime\.littleEndian : genRuntime\.bigEndian;$/m);
      assert.match(text, /rBits\(v, [^)]*LE \? \d+ : \d+/, 'bitfields are placed for either byte order');
      const mod = await importFile<Record<string, unknown>>(transpileTo(dir, `zoo_host_${le ? 'le' : 'be'}`, text));
      roots.forEach((id, i) => {
        const n = tsName(names[i]);
        differential(btf, id, fn<Codec>(mod, `decode${n}`), fn<Encoder>(mod, `encode${n}`), le);
      });
      const path = join(dir, `zoo_host_typed_${le}.ts`);
      writeFileSync(path, codecModule(btf, roots, { hostByteOrder: `process.env['ZOO_BYTE_ORDER'] !== 'BE'` }).text);
      const ds = typeCheck([path]);
      assert.equal(ds.length, 0, formatDiagnostics(ds));
    });
  }

  it('names types after C: struct tags, typedefs of anonymous structs, enums as const objects', async () => {
    const { btf, roots } = zoo();
    const { mod, names } = await load(dir, 'zoo_names', btf, roots, true);
    assert.deepEqual(names, ['Scalars', 'Bits', 'Oldbits', 'Nest', 'Choice', 'Odd', 'PairT', 'Color', 'Wide']);
    assert.deepEqual(mod['Color'], { RED: 0, GREEN: 1, WHITE: 0xffffffff });
    assert.deepEqual(mod['Wide'], { W0: 0n, WBIG: 1n << 60n, WMAX: (1n << 64n) - 1n });
    assert.deepEqual(mod['Small'], { NEG: -2, POS: 5 });
  });

  it('gives the shapes codecFor gives: flattening, optional union members, byte arrays', async () => {
    const { btf, roots } = zoo();
    const { mod } = await load(dir, 'zoo_shapes', btf, roots, true);
    const bytes = new Uint8Array(80);
    const v = new DataView(bytes.buffer);
    v.setUint32(0, 7, true);
    v.setUint32(8, 0x11, true);
    v.setUint32(12, 0x22, true);
    bytes.set([0x61, 0x62, 0], 28);
    const nest = fn<Codec>(mod, 'decodeNest')(bytes) as Record<string, unknown>;
    assert.equal(nest['head'], 7);
    assert.equal(nest['whole'], 0x2200000011n);
    assert.equal(nest['lo'], 0x11);
    assert.equal(nest['hi'], 0x22);
    assert.ok(Array.isArray(nest['names']));
    assert.deepEqual(nest['names'], [new Uint8Array([0x61, 0x62, 0]), new Uint8Array(3)]);
    assert.deepEqual(nest['flex'], []);
    // A decoded union writes back (its members agree), a conflicting one does not.
    const enc = fn<Encoder>(mod, 'encodeNest');
    assert.deepEqual(Buffer.from(enc(nest)), Buffer.from(bytes));
    assert.throws(() => enc({ whole: 1n, lo: 2 }), (e: unknown) => e instanceof InvalidArgumentError && /takes one member at a time, got whole, lo/.test(e.message));
  });

  it('rejects what codecFor rejects, with the same messages', async () => {
    const { btf, roots } = zoo();
    const { mod } = await load(dir, 'zoo_errors', btf, roots, true);
    const cases: Array<[string, number, unknown]> = [
      ['Scalars', roots[0]!, { a: 256 }],
      ['Scalars', roots[0]!, { f: 1.5 }],
      ['Scalars', roots[0]!, { g: -1n }],
      ['Scalars', roots[0]!, { h: 2 ** 60 }],
      ['Scalars', roots[0]!, { m: 'x' }],
      ['Scalars', roots[0]!, { nope: 1 }],
      ['Scalars', roots[0]!, 5],
      ['Bits', roots[1]!, { b3: 4 }],
      ['Bits', roots[1]!, { s60: 1n << 60n }],
      ['Nest', roots[3]!, { pairs: [{ k: 1 }, { k: 2 }, { k: 3 }, { k: 4 }] }],
      ['Nest', roots[3]!, { pairs: [{ k: 1 }, { q: 2 }] }],
      ['Nest', roots[3]!, { grid: [[1, 2], [3, 40000]] }],
      ['Nest', roots[3]!, { names: ['abcd'] }],
      ['Choice', roots[4]!, { raw: new Uint8Array(17) }],
    ];
    for (const [name, id, value] of cases) {
      const c = codecFor(btf, id);
      let want = '';
      try {
        c.encode(value);
      } catch (e) {
        want = (e as Error).message;
      }
      assert.notEqual(want, '', `codecFor rejects ${JSON.stringify(value, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x))}`);
      assert.throws(() => fn<Encoder>(mod, `encode${name}`)(value), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.equal(e.message, want);
        return true;
      });
    }
    assert.throws(() => fn<Codec>(mod, 'decodeScalars')(new Uint8Array(10)), /expected 176 bytes, got 10/);
    assert.throws(() => fn<Codec>(mod, 'decodeScalars')(new Uint8Array(170), 11), /expected 176 bytes at offset 11, got 159/);
    assert.throws(() => fn<Encoder>(mod, 'encodeScalars')({}, new Uint8Array(100)), /output buffer too small: need 176 bytes at offset 0, have 100/);
  });

  it('leaves no trace of a type it cannot generate', () => {
    const b = new BtfBuilder();
    const u32 = b.int('unsigned int', 4, false);
    const odd = b.int('int24', 3, false);
    const good = b.struct('struct', 'good', 4, [['x', u32, 0]]);
    const nested = b.struct('struct', 'nested', 8, [['y', u32, 0], ['o', odd, 32]]);
    const bad = b.struct('struct', 'bad', 12, [['g', good, 0], ['n', nested, 32]]);
    const otherBad = b.struct('struct', 'bad', 4, [['z', u32, 0]]);
    const btf = b.build();
    const emitter = new CodecEmitter(btf, { littleEndian: true, registry: new NameRegistry() });
    assert.throws(() => emitter.root(bad), /int24: integers of 3 bytes are not supported/);
    assert.throws(() => codecFor(btf, bad), /integers of 3 bytes are not supported/);
    // The names the failed attempt took are free again.
    assert.equal(emitter.root(otherBad), 'Bad');
    assert.equal(emitter.root(good), 'Good');
    const text = emitter.declarations();
    assert.match(text, /export interface Good \{/);
    assert.match(text, /export interface Bad \{\n {2}\/\*\* unsigned int, offset 0 \*\/\n {2}z: number;/);
    assert.doesNotMatch(text, /Nested|Good2|Bad2/);
  });

  it('type-checks under strict, exactOptionalPropertyTypes and noUnused*', () => {
    const { btf, roots } = zoo();
    for (const le of [true, false]) {
      const path = join(dir, `zoo_typed_${le}.ts`);
      writeFileSync(path, codecModule(btf, roots, { littleEndian: le }).text);
      const ds = typeCheck([path]);
      assert.equal(ds.length, 0, formatDiagnostics(ds));
    }
  });

  it('gentest.bpf.c: every map type, decoded and encoded like its map would', needsClang, async () => {
    const out = join(dir, 'gentest');
    await runGenOnce({ ident: 'gentest', input: GENTEST_C, outDir: out, types: ['gen_event'] });
    const { CollectionSpec } = await import('../../src/spec/collection-spec.js');
    const spec = CollectionSpec.fromBuffer(readFileSync(join(out, 'gentest.bpf.o')));
    const btf = spec.btf!;
    const names = ['gen_value', 'gen_key', 'gen_counters', 'gen_event', 'gen_payload', 'gen_addr'];
    const ids = names.map((n) => btf.byName(n)[0]!.id);
    const { mod, names: ts } = await load(dir, 'gentest_codecs', btf, ids, true);
    ids.forEach((id, i) => differential(btf, id, fn<Codec>(mod, `decode${tsName(ts[i])}`), fn<Encoder>(mod, `encode${tsName(ts[i])}`), true));
  });
});
