/**
 * src/gen/runtime.ts, the helpers every module written by `bpfkit gen` calls (as `genRuntime` from
 * the package entry) instead of carrying its own copy. gen-codec.test.ts checks generated codecs
 * against codecFor as a whole; here the helpers are checked one by one: that each name the
 * generator may bind exists, that the byte-order helpers put bits and bytes where the target
 * wants them, that errors name the member and its C type, and that the loading helpers carry the
 * module's name in their messages.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Collection } from '../../src/load/collection.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { InvalidArgumentError, SpecError } from '../../src/errors.js';
import { BYTE_ORDER_HELPERS, HELPER_ORDER, RUNTIME_NAMESPACE, runtimeSpecifier } from '../../src/gen/codec-emit.js';
import * as runtime from '../../src/gen/runtime.js';
import * as bpfkit from '../../src/index.js';
import * as internal from '../../src/internal.js';

const { arr, bigEndian, bindings, bytesAt, list, littleEndian, loader, one, place, rec, show, toBig, toInt, view, wBytes } = runtime;

/** The `span` bytes at `o` as one unsigned integer, in the target's byte order. */
function spanValue(bytes: Uint8Array, o: number, span: number, le: boolean): bigint {
  let acc = 0n;
  for (let i = 0; i < span; i++) acc |= BigInt(bytes[o + i]!) << BigInt(8 * (le ? i : span - 1 - i));
  return acc;
}

/** A random bigint of `bits` bits, signed or not. */
function randomValue(bits: number, signed: boolean): bigint {
  const u = BigInt(`0x${randomBytes(Math.ceil(bits / 8) + 1).toString('hex')}`) & ((1n << BigInt(bits)) - 1n);
  return signed ? BigInt.asIntN(bits, u) : u;
}

/** `fn` throws an InvalidArgumentError with exactly this message (name, code and message are compared). */
function throwsArgument(fn: () => unknown, message: string): void {
  assert.throws(fn, new InvalidArgumentError(message));
}

describe('gen: the runtime of generated modules', () => {
  it('is bpfkit/internal\'s genRuntime (not the public entry\'s), with every helper the generator may bind', () => {
    assert.equal(RUNTIME_NAMESPACE, 'genRuntime');
    assert.equal(internal.genRuntime, internal[RUNTIME_NAMESPACE]);
    assert.equal(RUNTIME_NAMESPACE in bpfkit, false);
    assert.equal(runtimeSpecifier('bpfkit'), 'bpfkit/internal');
    assert.equal(runtimeSpecifier('../../../index.js'), '../../../internal.js');
    assert.throws(() => runtimeSpecifier('./lib/bpfkit.js'), InvalidArgumentError);
    const ns = new Map<string, unknown>(Object.entries(internal.genRuntime));
    for (const h of HELPER_ORDER) {
      if (h === 'LE') continue; // a constant of each module
      if (BYTE_ORDER_HELPERS.has(h)) {
        for (const order of [internal.genRuntime.littleEndian, internal.genRuntime.bigEndian]) {
          assert.equal(typeof new Map<string, unknown>(Object.entries(order)).get(h), 'function', `genRuntime.${order.littleEndian ? 'littleEndian' : 'bigEndian'}.${h}`);
        }
      } else {
        assert.equal(typeof ns.get(h), 'function', `genRuntime.${h}`);
      }
    }
    const l: Record<string, unknown> = { ...internal.genRuntime.loader('x', {}) };
    assert.deepEqual(Object.keys(l).sort(), ['mapOf', 'programOf', 'setInitial', 'variableOf']);
    assert.equal(littleEndian.littleEndian, true);
    assert.equal(bigEndian.littleEndian, false);
    assert.ok(Object.isFrozen(littleEndian) && Object.isFrozen(bigEndian), 'shared by every module, so nobody may patch them');
  });

  for (const le of [true, false]) {
    const order = le ? littleEndian : bigEndian;
    const name = le ? 'little' : 'big';

    it(`${name}-endian bitfields: written where BTF says, other bits kept, read back`, () => {
      for (let span = 1; span <= 9; span++) {
        for (let round = 0; round < 60; round++) {
          const bits = 1 + (round % Math.min(64, span * 8));
          const shift = round % (span * 8 - bits + 1);
          const signed = round % 3 === 0;
          const value = randomValue(bits, signed);
          const bytes = new Uint8Array(randomBytes(span + 4));
          const before = bytes.slice();
          const v = new DataView(bytes.buffer);
          order.wBits(v, 2, bits <= 52 && round % 2 === 0 ? Number(value) : value, 'value', '.f', span, shift, bits, signed, 'int');
          const mask = ((1n << BigInt(bits)) - 1n) << BigInt(shift);
          const was = spanValue(before, 2, span, le);
          const now = spanValue(bytes, 2, span, le);
          assert.equal(now & ~mask, was & ~mask, `span ${span}, shift ${shift}, bits ${bits}: the other bits are kept`);
          assert.equal((now & mask) >> BigInt(shift), BigInt.asUintN(bits, value));
          assert.deepEqual([bytes[0], bytes[1], bytes[span + 2], bytes[span + 3]], [before[0], before[1], before[span + 2], before[span + 3]]);
          assert.equal(order.rBitsBig(v, 2, span, shift, bits, signed), value);
          if (span <= 6) assert.equal(order.rBits(v, 2, span, shift, bits, signed), Number(value));
        }
      }
      const v = new DataView(new ArrayBuffer(2));
      order.wBits(v, 0, true, 'value', '.flag', 2, 3, 1, false, '_Bool:1');
      assert.equal(order.rBits(v, 0, 2, 3, 1, false), 1);
      order.wBits(v, 0, undefined, 'value', '.flag', 2, 3, 1, false, '_Bool:1');
      assert.equal(order.rBits(v, 0, 2, 3, 1, false), 1, 'undefined writes nothing');
      throwsArgument(() => order.wBits(v, 0, 4, 'value', '.b3', 1, 0, 3, true, 'signed char:3'), 'value.b3: 4 does not fit signed char:3');
    });

    it(`${name}-endian integers, 128-bit integers, booleans and floats`, () => {
      const bytes = new Uint8Array(16);
      const v = new DataView(bytes.buffer);
      order.wInt(v, 0, -2, 'value', '.d', 2, true, 'short');
      assert.deepEqual([...bytes.subarray(0, 2)], le ? [0xfe, 0xff] : [0xff, 0xfe]);
      order.wInt(v, 4, 0x01020304n, 'value', '.e', 4, false, 'unsigned int');
      assert.equal(v.getUint32(4, le), 0x01020304);
      order.wBig(v, 8, -1, 'value', '.h', true, 'long long');
      assert.equal(v.getBigInt64(8, le), -1n);
      const u = 0x0102030405060708090a0b0c0d0e0f10n;
      order.w128(v, 0, u, 'value', '.i', false, 'unsigned __int128');
      assert.equal(spanValue(bytes, 0, 16, le), u);
      assert.equal(order.r128(v, 0, false), u);
      order.w128(v, 0, -3n, 'value', '.j', true, '__int128');
      assert.equal(order.r128(v, 0, true), -3n);
      assert.equal(order.r128(v, 0, false), (1n << 128n) - 3n);
      bytes.fill(0);
      order.wBool(v, 0, true, 'value', '.k', 16);
      assert.equal(bytes.indexOf(1), le ? 0 : 15, 'a 16-byte _Bool keeps its value in its low-order byte');
      order.wFloat(v, 0, 1.5, 'value', '.m', 4, 'float');
      assert.equal(v.getFloat32(0, le), 1.5);
      throwsArgument(() => order.wBool(v, 0, 2, 'value', '.k', 1), 'value.k: expected a boolean for _Bool, got number');
      throwsArgument(() => order.wFloat(v, 0, 1n, 'value', '.n', 8, 'double'), 'value.n: expected a number for double, got bigint');
      throwsArgument(() => order.wBig(v, 0, 2 ** 60, 'value', '.g', false, '__u64'), `value.g: ${2 ** 60} is not a safe integer; pass a bigint for __u64`);
      throwsArgument(() => order.w128(v, 0, -1n, 'value', '.i', false, 'unsigned __int128'), 'value.i: -1 does not fit unsigned __int128');
    });
  }

  it('range checks and messages name the member path and its C type', () => {
    assert.equal(toInt(255, 'value', '.a', 8, false, 'unsigned char'), 255);
    assert.equal(toInt(-128n, 'value', '.b', 8, true, 'signed char'), -128);
    throwsArgument(() => toInt(256, 'value', '.a', 8, false, 'unsigned char'), 'value.a: 256 does not fit unsigned char');
    throwsArgument(() => toInt(1.5, 'value.x', 2, 32, true, 'int'), 'value.x[2]: 1.5 does not fit int');
    throwsArgument(() => toInt('x'.repeat(50), 'value', '.c', 8, true, 'char'), `value.c: expected a number for char, got string "${'x'.repeat(37)}..."`);
    throwsArgument(() => toBig(-1, 'value', '.g', 64, false, '__u64'), 'value.g: -1 does not fit __u64');
    throwsArgument(() => toBig(null, 'value', '', 64, false, '__u64'), 'value: expected a bigint or number for __u64, got null');
    assert.equal(toBig(2 ** 53 - 1, 'value', '.g', 64, false, '__u64'), 2n ** 53n - 1n);
    assert.deepEqual([show([]), show(new Uint8Array(1)), show({}), show(undefined)], ['an array', 'a Uint8Array', 'object', 'undefined']);
  });

  it('views and placement check offsets and sizes', () => {
    const b = new Uint8Array(12);
    assert.equal(view(b.subarray(2), 1, 4).byteOffset, 2, 'the view covers the whole array; offsets are the caller\'s');
    throwsArgument(() => view(b, 0, 16), 'expected 16 bytes, got 12');
    throwsArgument(() => view(b, 10, 4), 'expected 4 bytes at offset 10, got 2');
    throwsArgument(() => view(b, -1, 1), 'offset must be a non-negative integer, got -1');
    const src = Uint8Array.of(1, 2, 3);
    assert.equal(place(src, undefined, 0), src);
    const out = new Uint8Array(6);
    assert.equal(place(src, out, 2), out);
    assert.deepEqual([...out], [0, 0, 1, 2, 3, 0]);
    throwsArgument(() => place(src, out, 4), 'output buffer too small: need 3 bytes at offset 4, have 2');
    throwsArgument(() => place(src, out, 0.5), 'offset must be a non-negative integer, got 0.5');
  });

  it('byte arrays take bytes, UTF-8 strings and arrays of byte values', () => {
    const b = new Uint8Array(8).fill(0xee);
    const v = new DataView(b.buffer);
    wBytes(v, 1, 'hé', 'value', '.name', 4, true, 'char[4]');
    assert.deepEqual([...b.subarray(0, 5)], [0xee, 0x68, 0xc3, 0xa9, 0xee]);
    wBytes(v, 0, [1, -1, undefined], 'value', '.name', 4, true, 'char[4]');
    assert.deepEqual([...b.subarray(0, 4)], [1, 0xff, 0, 0xa9], 'absent elements are zeros; bytes past the array are left alone');
    assert.deepEqual(bytesAt(v, 1, 2), Uint8Array.of(0xff, 0));
    throwsArgument(() => wBytes(v, 0, 'hello', 'value', '.name', 4, true, 'char[4]'), 'value.name: 5 bytes of UTF-8 do not fit char[4] (4 bytes)');
    throwsArgument(() => wBytes(v, 0, [1, 300], 'value', '.name', 4, true, 'char[4]'), 'value.name[1]: 300 does not fit char');
    throwsArgument(() => wBytes(v, 0, [0, 0, 0, 0, 0], 'value', '.name', 4, true, 'char[4]'), 'value.name: 5 elements do not fit char[4] (4 bytes)');
    throwsArgument(() => wBytes(v, 0, 7, 'value', '.name', 4, true, 'char[4]'), 'value.name: expected a Uint8Array or string for char[4], got number');
  });

  it('arrays and objects: elements and members checked, unknown members refused', () => {
    assert.deepEqual(list(3, (i) => i * 2), [0, 2, 4]);
    const seen: string[] = [];
    arr([5, undefined, 7], 'value', '.xs', 4, 'int[4]', (e, i, q) => seen.push(`${q}[${i}]=${String(e)}`));
    assert.deepEqual(seen, ['value.xs[0]=5', 'value.xs[2]=7']);
    throwsArgument(() => arr([1, 2, 3, 4, 5], 'value', '.xs', 4, 'int[4]', () => {}), 'value.xs: 5 elements do not fit int[4]');
    throwsArgument(() => arr('abc', 'value', '.xs', 4, 'int[4]', () => {}), 'value.xs: expected an array for int[4], got string "abc"');
    const members = new Set(['a', 'b']);
    assert.equal(rec(undefined, 'value', '', members, 'struct s'), undefined);
    assert.deepEqual(rec({ a: 1, c: undefined }, 'value', '', members, 'struct s'), { a: 1, c: undefined });
    throwsArgument(() => rec({ a: 1, nope: 2 }, 'value', '', members, 'struct s'), 'value: struct s has no member "nope"; members: a, b');
    throwsArgument(() => rec(new Uint8Array(2), 'value', '.in', members, 'struct s'), 'value.in: expected an object for struct s, got a Uint8Array');
  });

  it('a union takes one alternative, or several that agree, and writes nothing when they disagree', () => {
    const order = littleEndian;
    const alternatives = (r: Record<string, unknown>): runtime.UnionAlternative[] => [
      [['whole'], (w) => order.wBig(w, 0, r['whole'], 'value', '.whole', false, '__u64')],
      [['lo', 'hi'], (w) => {
        order.wInt(w, 0, r['lo'], 'value', '.lo', 4, false, '__u32');
        order.wInt(w, 4, r['hi'], 'value', '.hi', 4, false, '__u32');
      }],
    ];
    const b = new Uint8Array(10).fill(0xee);
    const v = new DataView(b.buffer, 1, 8);
    const agreeing = { whole: 0x2200000011n, lo: 0x11, hi: 0x22 };
    one(v, agreeing, 'value', 'union (anon)', alternatives(agreeing));
    assert.equal(v.getBigUint64(0, true), 0x2200000011n);
    assert.deepEqual([b[0], b[9]], [0xee, 0xee]);
    const lone = { hi: 5 };
    one(v, lone, 'value', 'union (anon)', alternatives(lone));
    assert.equal(v.getBigUint64(0, true), 0x500000011n, 'one alternative is written as is, over what was there');
    const before = b.slice();
    const clash = { whole: 1n, lo: 2 };
    throwsArgument(() => one(v, clash, 'value', 'union (anon)', alternatives(clash)), 'value: union (anon) takes one member at a time, got whole, lo');
    assert.deepEqual(b, before, 'nothing written');
  });

  it('the loading helpers name the module in their messages', () => {
    const set: unknown[] = [];
    const variable = (constant: boolean): object => ({ constant, set: (x: unknown) => set.push(x) });
    const spec = { variables: new Map([['cfg_a', variable(true)], ['counter', variable(false)]]) } as unknown as CollectionSpec;
    const l = loader('demo', { cfgA: 'cfg_a', counter: 'counter' });
    l.setInitial(spec, { cfgA: 3, counter: undefined }, 'rodata');
    l.setInitial(spec, { counter: 4n }, 'data');
    assert.deepEqual(set, [3, 4n]);
    throwsArgument(() => l.setInitial(spec, { counter: 1 }, 'rodata'), 'demo: no rodata variable "counter"');
    throwsArgument(() => l.setInitial(spec, { cfgA: 1 }, 'data'), 'demo: no data variable "cfgA"');
    throwsArgument(() => l.setInitial(spec, { toString: 1 }, 'data'), 'demo: no data variable "toString"');

    let stored: unknown = 7;
    const map = {};
    const program = {};
    const c = {
      maps: new Map([['m', map]]),
      programs: new Map([['p', program]]),
      variables: new Map([['v', { get: () => stored, set: (x: unknown) => { stored = x; } }]]),
    } as unknown as Collection;
    assert.equal(l.mapOf(c, 'm'), map);
    assert.equal(l.programOf(c, 'p'), program);
    const v = l.variableOf<number>(c, 'v');
    assert.equal(v.name, 'v');
    assert.equal(v.get(), 7);
    v.set(8);
    assert.equal(stored, 8);
    assert.throws(() => l.mapOf(c, 'gone'), new SpecError('demo: map gone is missing from the loaded collection'));
    assert.throws(() => l.programOf(c, 'gone'), new SpecError('demo: program gone was not loaded (see the programs.only option)'));
    assert.throws(() => l.variableOf(c, 'gone'), new SpecError('demo: variable gone is missing from the loaded collection'));
  });

  it('bindings() wires spec and load: globals, typed view, close on failure', async () => {
    interface Maps { readonly counts: bpfkit.BpfMap<number, bigint> }
    interface Programs { readonly main: bpfkit.Program; readonly extra: bpfkit.Program | undefined }
    interface Variables { readonly limit: runtime.GeneratedConstant<number>; readonly seen: runtime.GeneratedVariable<bigint> }
    interface Rodata { limit: number }
    interface Data { seen: bigint }
    const set: [string, unknown][] = [];
    const variable = (name: string, constant: boolean): object => ({ constant, set: (x: unknown) => set.push([name, x]) });
    let copies = 0;
    let reads = 0;
    const parsed: Uint8Array[] = [];
    const fakeSpec = (): CollectionSpec => ({
      variables: new Map([['limit', variable('limit', true)], ['seen', variable('seen', false)]]),
      copy: () => { copies++; return fakeSpec(); },
    }) as unknown as CollectionSpec;
    let closed = 0;
    const program = {};
    const map = {};
    let maps = new Map<string, unknown>([['counts', map]]);
    const statics = CollectionSpec as unknown as { fromBuffer: (b: Uint8Array) => CollectionSpec };
    const loads = Collection as unknown as { load: (s: CollectionSpec, o: object) => Promise<Collection> };
    const { fromBuffer } = statics;
    const { load } = loads;
    statics.fromBuffer = (b) => { parsed.push(b); return fakeSpec(); };
    loads.load = async () => ({
      maps, programs: new Map([['main', program]]), close: () => { closed++; },
      variables: new Map([['limit', { get: () => 5 }], ['seen', { get: () => 6n, set: () => undefined }]]),
    }) as unknown as Collection;
    try {
      const object = new Uint8Array([1]);
      const b = bindings<Rodata, Data, Maps, Programs, Variables>({
        ident: 'demo', objectBytes: () => { reads++; return object; }, rodata: true, data: true,
        maps: { counts: 'counts' }, programs: { main: 'main', extra: 'extra' }, optionalPrograms: ['extra'],
        variables: { limit: 'limit', seen: 'seen' },
      });
      b.spec();
      b.spec();
      assert.equal(reads, 1);
      assert.equal(copies, 2);
      const own = new Uint8Array([2]);
      b.spec(own);
      assert.deepEqual(parsed, [object, own]);
      const o = await b.load({ rodata: { limit: 3 }, data: { seen: 4n } });
      assert.deepEqual(set, [['limit', 3], ['seen', 4n]]);
      assert.equal(o.maps.counts, map);
      assert.deepEqual(Object.keys(o.programs), ['main', 'extra']);
      assert.equal(o.programs.main, program);
      assert.equal(o.programs.extra, undefined);
      assert.equal(o.variables.limit.name, 'limit');
      assert.equal(o.variables.limit.get(), 5);
      assert.equal(o.variables.seen.get(), 6n);
      o.close();
      o[Symbol.dispose]();
      assert.equal(closed, 2);
      await assert.rejects(b.load({ rodata: { nope: 1 } as Partial<Rodata> }), new InvalidArgumentError('demo: no rodata variable "nope"'));

      const none = bindings<object, object, object, { readonly main: bpfkit.Program }, object>({
        ident: 'bare', objectBytes: () => object, rodata: false, data: false, maps: {}, programs: { main: 'gone' }, variables: {},
      });
      await assert.rejects(none.load({ rodata: { x: 1 } }), new SpecError('bare: the object has no .rodata variables'));
      await assert.rejects(none.load({ data: { x: 1 } }), new SpecError('bare: the object has no .data or .bss variables'));
      const bare = await none.load({ rodata: {}, data: {} });
      assert.throws(() => bare.programs.main, new SpecError('bare: program gone was not loaded (see the programs.only option)'));

      maps = new Map();
      await assert.rejects(b.load(), new SpecError('demo: map counts is missing from the loaded collection'));
      assert.equal(closed, 3);
    } finally {
      statics.fromBuffer = fromBuffer;
      loads.load = load;
    }
  });

  it('bindings() load sets max_entries before the maps are created (maxEntries), and names bad ones', async () => {
    const events = { maxEntries: 4096 };
    const statics = CollectionSpec as unknown as { fromBuffer: (b: Uint8Array) => CollectionSpec };
    const loads = Collection as unknown as { load: (s: CollectionSpec, o: object) => Promise<Collection> };
    const { fromBuffer } = statics;
    const { load } = loads;
    const seen: number[] = [];
    statics.fromBuffer = () => ({ variables: new Map(), maps: new Map([['events', events]]), copy() { return this; } }) as unknown as CollectionSpec;
    loads.load = async (s) => {
      seen.push((s.maps.get('events') as { maxEntries: number }).maxEntries);
      return { maps: new Map([['events', {}]]), programs: new Map(), variables: new Map(), close: () => undefined } as unknown as Collection;
    };
    try {
      const b = bindings<object, object, { readonly events: object }, object, object>({
        ident: 'ring', objectBytes: () => new Uint8Array([1]), rodata: false, data: false, maps: { events: 'events' }, programs: {}, variables: {},
      });
      await b.load({ maxEntries: { events: 1 << 16 } });
      assert.deepEqual(seen, [1 << 16]);
      await assert.rejects(b.load({ maxEntries: { evnets: 4096 } }), new SpecError('ring: maxEntries: the object has no map named "evnets"'));
      await assert.rejects(b.load({ maxEntries: { events: -1 } }), new InvalidArgumentError('ring: maxEntries.events must be a whole number from 1 to 4294967295, not -1'));
      assert.equal(seen.length, 1, 'nothing is loaded after a bad maxEntries');
    } finally {
      statics.fromBuffer = fromBuffer;
      loads.load = load;
    }
  });

  it('bindings() whose object file is missing say where it should be and how to embed it', async () => {
    const missing = '/nonexistent-bpfkit-dir/x.bpf.o';
    const b = bindings({
      ident: 'x', objectBytes: () => readFileSync(missing), rodata: false, data: false,
      maps: {}, programs: {}, variables: {},
    } as unknown as Parameters<typeof bindings>[0]);
    await assert.rejects(b.load(), (e: unknown) => {
      assert.ok(e instanceof SpecError);
      assert.match(e.message, /^x: its BPF object \/nonexistent-bpfkit-dir\/x\.bpf\.o is missing/);
      assert.match(e.message, /--object-file/);
      return true;
    });
  });
});
