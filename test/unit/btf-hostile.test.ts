/**
 * Hostile BTF and objects: the fuzzing reproducers of ../shared/repro/btf (copied into
 * test/fixtures/btf), and the kernel's resolution rules the parser now applies, each answered with
 * a typed error (or the right, bounded result) rather than a hang, a RangeError or an abort.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Btf, BTF_MAX_DEPTH } from '../../src/btf/btf.js';
import { codecFor } from '../../src/btf/codec.js';
import { dumpC } from '../../src/btf/dump-c.js';
import { disassembleInstructions, disassembleSpec } from '../../src/asm/disasm.js';
import { CollectionSpec } from '../../src/spec/collection-spec.js';
import { BpfkitError, BtfError, ElfError, InvalidArgumentError, SpecError } from '../../src/errors.js';
import { BtfBuilder } from '../helpers/btf-builder.js';
import { btfRecords, btfSectionOffset, funcSymbolOffsets } from '../helpers/btf-raw.js';
import { ROOT, objBytes } from '../helpers/index.js';

function fixture(name: string): Uint8Array {
  return readFileSync(join(ROOT, 'test', 'fixtures', 'btf', name));
}

/** BTF built in code (which is not checked this deeply) written out and parsed back. */
function reparse(b: BtfBuilder): Btf {
  return Btf.parse(b.build().marshal());
}

function throwsBtf(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof BtfError && pattern.test(e.message), String(pattern));
}

describe('BTF reproducers from fuzzing (test/fixtures/btf)', () => {
  it('hang-15899: the blob as saved is one byte short of its string section', () => {
    throwsBtf(() => Btf.parse(fixture('hang-15899.bin')), /string section .* outside the 555-byte blob/);
  });

  it('hang-15899 completed: typeName of a self-referencing prototype is bounded, not a heap abort', () => {
    const bytes = new Uint8Array(556);
    bytes.set(fixture('hang-15899.bin'));
    const btf = Btf.parse(bytes);
    const name = btf.typeName(1);
    assert.ok(name.includes('...'), 'the spelling is cut short');
    assert.ok(name.length < 20_000, `${name.length} characters`);
  });

  it('hang-5675: typeName of a prototype taking pointers to itself is bounded', () => {
    const btf = Btf.parse(fixture('hang-5675.bin'));
    const name = btf.typeName(2);
    assert.match(name, /^int \(int \(\*\)\(int \(\*\)\(/);
    assert.ok(name.endsWith(')') && name.includes('...'));
    assert.ok(name.length < 20_000, `${name.length} characters`);
  });

  it('fuzz-16: a struct holding itself by value is a BtfError naming it (dumpC, typeName, codecFor)', () => {
    const btf = Btf.parse(fixture('fuzz-16-Btf_resolve.bin'));
    throwsBtf(() => dumpC(btf), /BTF type 565 \(struct\): contains itself by value \(loop 565 -> 565\)/);
    throwsBtf(() => btf.typeName(565), /type 565 .*contains itself/);
    throwsBtf(() => codecFor(btf, 565), /type 565 .*contains itself/);
    throwsBtf(() => btf.validate(), /contains itself/);
  });

  it('fuzz-03: an array over 4 GiB is refused before any buffer is sized from it', () => {
    const btf = Btf.parse(fixture('fuzz-03-Scratch.bin'));
    throwsBtf(() => codecFor(btf, 16), /BTF type 16 \(array\): 1240457327 elements of 8 bytes exceed the 4 GiB/);
  });

  it('fuzz1m-210673: a bitfield in an anonymous union inside a struct decodes and encodes at its own offset', () => {
    // The 1,000,000-input run (seed 20261207, run 210673): int bits narrowed to 50 made a member
    // of sched_entity's anonymous union a bitfield, which was read at twice the union's offset.
    const btf = Btf.parse(fixture('fuzz1m-210673-anon-bitfield.btf'));
    const codec = codecFor(btf, 116);
    const value = codec.decode(new Uint8Array(codec.size).fill(0xa5)) as Record<string, unknown>;
    // 50 bits of 0xa5 bytes, sign-extended: read inside the 256-byte struct.
    assert.equal(value['vlag'], BigInt.asIntN(50, 0xa5a5a5a5a5a5a5a5n));

    // The same shape, small: struct { int x; union { int flags:3; int word; }; } at offset 4.
    const b = new BtfBuilder();
    const int = b.int('int', 4, true);
    const u = b.struct('union', '', 4, [['flags', int, 0, 3], ['word', int, 0]], true);
    const outer = b.struct('struct', 'outer', 8, [['x', int, 0], ['', u, 32]], true);
    const c = codecFor(reparse(b), outer);
    const buf = Uint8Array.of(1, 0, 0, 0, 0b1111_1101, 0, 0, 0);
    assert.deepEqual(c.decode(buf), { x: 1, flags: -3, word: 253 });
    assert.deepEqual(c.encode({ x: 1, flags: 2 } as never), Uint8Array.of(1, 0, 0, 0, 2, 0, 0, 0));
  });

  it('fuzz-05: a corrupt object is an ElfError', () => {
    assert.throws(() => CollectionSpec.fromBuffer(fixture('fuzz-05-readInsn.bin')), ElfError);
  });

  it('dumpc-huge-output: a member far past its struct is refused, so dumpC writes nothing huge', () => {
    const btf = Btf.parse(fixture('dumpc-huge-output.btf'));
    throwsBtf(() => dumpC(btf), /BTF type 7 \(struct\): member 0 'val' ends at bit 2147483712, past the end of the 8-byte type/);
  });

  it('fuzz-14 (split over this machine\'s vmlinux): every codec reads only within its size', { skip: !existsSync('/sys/kernel/btf/vmlinux') && 'no kernel BTF' }, async () => {
    const base = await Btf.loadKernel();
    const btf = Btf.parse(fixture('fuzz-14-load.bin'), { base });
    let decoded = 0;
    for (let id = base.length; id < btf.length; id++) {
      try {
        const codec = codecFor(btf, id);
        if (codec.size > 1 << 20) continue;
        // Exactly `size` bytes: a read past them would be a RangeError from the DataView.
        const value = codec.decode(new Uint8Array(codec.size));
        codec.encode(value as never);
        decoded++;
      } catch (e) {
        assert.ok(e instanceof BpfkitError, `type ${id}: ${(e as Error).stack}`);
      }
    }
    assert.ok(decoded > 0);
  });
});

describe('BTF resolution checks (as the kernel\'s btf_resolve)', () => {
  it('accepts a linked list: a loop through a pointer', () => {
    const b = new BtfBuilder();
    const int = b.int('int', 4, true);
    const node = b.struct('struct', 'node', 16, [['next', 3, 0], ['v', int, 64]]);
    assert.equal(b.ptr(node), 3);
    const btf = reparse(b);
    btf.validate();
    assert.equal(btf.typeName(node), 'struct node');
    assert.equal(codecFor(btf, node).size, 16);
  });

  it('refuses an array of itself, and a typedef loop', () => {
    const b = new BtfBuilder();
    b.int('int', 4, true);
    const arr = b.add((id) => ({ kind: 'array', id, name: '', type: id, indexType: 1, nelems: 2 }));
    const t1 = b.add((id) => ({ kind: 'typedef', id, name: 'a', type: id + 1 }));
    b.add((id) => ({ kind: 'typedef', id, name: 'b', type: id - 1 }));
    const btf = reparse(b);
    throwsBtf(() => btf.type(arr), new RegExp(`BTF type ${arr} \\(array\\): contains itself by value`));
    throwsBtf(() => btf.typeName(t1), /\(typedef 'a'\): contains itself by value \(loop 3 -> 4 -> 3\)/);
    // Checks fail the same way on every use, not only the first.
    throwsBtf(() => btf.type(arr), /contains itself/);
  });

  it('refuses a loop made only of pointers and qualifiers', () => {
    const b = new BtfBuilder();
    const p = b.add((id) => ({ kind: 'ptr', id, name: '', type: id + 1 }));
    b.add((id) => ({ kind: 'const', id, name: '', type: id - 1 }));
    throwsBtf(() => reparse(b).type(p), /loop of pointers and qualifiers/);
  });

  it('refuses members outside their struct, out of order, misplaced in a union or without a size', () => {
    const cases: Array<[(b: BtfBuilder, int: number) => number, RegExp]> = [
      [(b, int) => b.struct('struct', 's', 4, [['a', int, 16]]), /member 0 'a' ends at bit 48, past the end of the 4-byte type/],
      [(b, int) => b.struct('struct', 's', 8, [['a', int, 32], ['b', int, 0]]), /member 1 'b' at bit offset 0 comes before the previous member/],
      [(b, int) => b.struct('union', 'u', 4, [['a', int, 0], ['b', int, 8]]), /member 1 'b' is at bit offset 8; union members start at 0/],
      [(b) => b.struct('struct', 's', 8, [['f', b.fwd('x'), 0]]), /member 0 'f' has type \d+, which has no size/],
      [(b, int) => b.struct('struct', 's', 8, [['f', b.ptr(int), 4]]), /member 0 'f' at bit offset 4 is not byte-aligned/],
      [(b, int) => b.struct('struct', 's', 4, [['f', int, 0, 40]]), /member 0 'f' is a 40-bit bitfield of a 4-byte type/],
      [(b, int) => b.struct('struct', 's', 8, [['f', b.ptr(int), 0, 3]]), /member 0 'f' is a bitfield of type \d+, which is not an integer/],
      [(b, int) => b.array(b.array(int, 0x40000000), 4), /4 elements of 4294967296 bytes|elements of 4 bytes exceed the 4 GiB/],
      [(b) => b.array(b.fwd('x'), 1), /element type \d+ has no size/],
      [(b, int) => b.datasec('.data', 8, [[b.variable('v', int), 6, 4]]), /variable 0 .* at offset 6, 4 bytes, lies past the end of the 8-byte section/],
    ];
    for (const [make, pattern] of cases) {
      const b = new BtfBuilder();
      const int = b.int('int', 4, true);
      const id = make(b, int);
      const btf = reparse(b);
      throwsBtf(() => btf.type(id), pattern);
    }
  });

  it('refuses a void parameter anywhere but last and unnamed', () => {
    const b = new BtfBuilder();
    const int = b.int('int', 4, true);
    const proto = b.add((id) => ({ kind: 'func_proto', id, name: '', returnType: int, params: [{ name: '', type: 0 }, { name: 'x', type: int }] }));
    throwsBtf(() => reparse(b).type(proto), /parameter 0 is void/);
  });

  it(`refuses types nested by value more than ${BTF_MAX_DEPTH} levels deep`, () => {
    const b = new BtfBuilder();
    let t = b.int('int', 4, true);
    for (let i = 0; i < BTF_MAX_DEPTH; i++) t = b.typedef(`t${i}`, t);
    throwsBtf(() => reparse(b).type(t), new RegExp(`more than ${BTF_MAX_DEPTH} levels deep`));
    const ok = new BtfBuilder();
    let u = ok.int('int', 4, true);
    for (let i = 0; i < BTF_MAX_DEPTH - 2; i++) u = ok.typedef(`t${i}`, u);
    assert.equal(reparse(ok).sizeof(u), 4);
  });

  it('checks lazily: a bad type does not spoil parsing or the good types', () => {
    const b = new BtfBuilder();
    const int = b.int('int', 4, true);
    const bad = b.add((id) => ({ kind: 'array', id, name: '', type: id, indexType: int, nelems: 1 }));
    const btf = reparse(b);
    assert.equal(btf.typeName(int), 'int');
    throwsBtf(() => btf.type(bad), /contains itself/);
    throwsBtf(() => btf.types, /contains itself/);
  });

  it('a huge (valid) type costs no memory until a value of that size is given', () => {
    const b = new BtfBuilder();
    const char = b.int('char', 1, true, { char: true });
    const big = b.struct('struct', 'big', 0xfffffff0, [['c', char, 0]]);
    const btf = reparse(b);
    const before = process.memoryUsage().arrayBuffers;
    const codec = codecFor(btf, big);
    assert.equal(codec.size, 0xfffffff0);
    assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'no buffer of the declared size');
    assert.throws(() => codec.decode(new Uint8Array(16)), InvalidArgumentError);
    // dumpC pads the gap with one array, not 500 million `long: 64;` lines.
    const c = dumpC(btf);
    assert.ok(c.length < 4096, `${c.length} characters`);
    assert.match(c, /char __bpfkit_pad_1\[4294967279\];/);
  });

  it('arrays of many zero-size elements are refused by codecs', () => {
    const b = new BtfBuilder();
    const empty = b.struct('struct', 'e', 0, []);
    const arr = b.array(empty, 0xffffffff);
    const btf = reparse(b);
    throwsBtf(() => codecFor(btf, arr), /4294967295 zero-size elements/);
  });

  it('dumpC refuses anonymous structs chained through pointers deeper than C can be written', () => {
    const b = new BtfBuilder();
    const n = 3000;
    // anon struct k { struct anon k+1 *p; }, pointers at even ids, structs at odd ones.
    for (let k = 0; k < n; k++) {
      b.add((id) => ({ kind: 'struct', id, name: '', size: 8, members: [{ name: 'p', type: id + 1, bitOffset: 0, bitfieldSize: 0 }], kindFlag: false }));
      b.add((id) => ({ kind: 'ptr', id, name: '', type: k + 1 < n ? id + 1 : 0 }));
    }
    b.typedef('top', 1);
    throwsBtf(() => dumpC(reparse(b)), /nest more than \d+ levels deep/);
  });
});

describe('hostile objects', () => {
  function withArrayOfItself(): Uint8Array {
    const bytes = new Uint8Array(objBytes('globals'));
    const off = btfSectionOffset(bytes);
    const blob = bytes.subarray(off);
    const arr = btfRecords(blob).find((r) => r.kind === 3);
    assert.ok(arr, 'globals.bpf.o has an array type');
    new DataView(blob.buffer, blob.byteOffset).setUint32(arr.at + 12, arr.id, true);
    return bytes;
  }

  it('an object whose BTF has an array of itself fails at parse with a BtfError naming it', () => {
    assert.throws(() => CollectionSpec.fromBuffer(withArrayOfItself()), (e: unknown) =>
      e instanceof BtfError && /BTF type \d+ \(array\): contains itself by value/.test(e.message));
  });

  it('a function whose size is not whole instructions is a SpecError at parse', () => {
    const bytes = new Uint8Array(objBytes('subprog'));
    const at = funcSymbolOffsets(bytes)[0]!;
    const dv = new DataView(bytes.buffer);
    dv.setBigUint64(at + 16, dv.getBigUint64(at + 16, true) - 5n, true);
    assert.throws(() => CollectionSpec.fromBuffer(bytes), (e: unknown) =>
      e instanceof SpecError && /not a whole number of 8-byte instructions/.test(e.message));
  });

  it('disassembly refuses instructions that are not whole 8-byte units', () => {
    assert.throws(() => disassembleInstructions(new Uint8Array(11)), InvalidArgumentError);
    const spec = CollectionSpec.fromBuffer(objBytes('subprog'));
    const prog = [...spec.programs.values()][0]!;
    assert.throws(() => disassembleSpec({ ...prog, instructions: prog.instructions.subarray(0, 11) }), InvalidArgumentError);
  });

  it('bpfkit inspect prints one line with a hint, no stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-hostile-'));
    try {
      const file = join(dir, 'cyclic.bpf.o');
      writeFileSync(file, withArrayOfItself());
      const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'inspect', file], { encoding: 'utf8' });
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^bpfkit: .*cyclic\.bpf\.o: BTF type \d+ \(array\): contains itself by value.*; the object is corrupt or was not built by clang -target bpf: rebuild it/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
