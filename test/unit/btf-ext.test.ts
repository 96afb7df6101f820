/**
 * Unit tests for the `.BTF.ext` reader: func_info, line_info and CO-RE relocation blocks built by
 * hand, record sizes larger than known, both byte orders, string lookups through a real `.BTF`
 * string table, and malformed input (every one a BtfError).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBtfExt } from '../../src/btf/ext.js';
import { Btf } from '../../src/btf/btf.js';
import { CORE_RELO_KIND } from '../../src/btf/types.js';
import { BtfError } from '../../src/errors.js';

/** A `.BTF`-style string table: "\0" then each string NUL-terminated. */
class Strings {
  readonly bytes: number[] = [0];
  private readonly offsets = new Map<string, number>([['', 0]]);

  off(s: string): number {
    const known = this.offsets.get(s);
    if (known !== undefined) return known;
    const at = this.bytes.length;
    this.bytes.push(...Buffer.from(s, 'utf8'), 0);
    this.offsets.set(s, at);
    return at;
  }

  /** The lookup callback parseBtfExt takes, backed by a real Btf so both layers meet. */
  lookup(): (offset: number) => string {
    const strs = Uint8Array.from(this.bytes);
    const blob = new Uint8Array(24 + strs.length);
    const v = new DataView(blob.buffer);
    v.setUint16(0, 0xeb9f, true);
    v.setUint8(2, 1);
    v.setUint32(4, 24, true);
    v.setUint32(20, strs.length, true);
    blob.set(strs, 24);
    const btf = Btf.parse(blob);
    return (offset) => btf.string(offset);
  }
}

type Section = [secNameOff: number, records: number[][]];

/** An info block: record size, then per section sec_name_off, num_info and the padded records. */
function infoBlock(recSize: number, sections: Section[]): number[] {
  const words = [recSize];
  for (const [name, records] of sections) {
    words.push(name, records.length);
    for (const rec of records) {
      words.push(...rec);
      for (let i = rec.length * 4; i < recSize; i += 4) words.push(0xdeadbeef); // future fields
    }
  }
  return words;
}

interface ExtParts { func?: number[]; line?: number[]; core?: number[]; hdrLen?: number; littleEndian?: boolean }

function extBlob(p: ExtParts): Uint8Array {
  const le = p.littleEndian ?? true;
  const hdrLen = p.hdrLen ?? 32;
  const func = p.func ?? [], line = p.line ?? [], core = p.core ?? [];
  const words = [...func, ...line, ...core];
  const out = new Uint8Array(hdrLen + words.length * 4);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0xeb9f, le);
  v.setUint8(2, 1);
  v.setUint32(4, hdrLen, le);
  const fields = [0, func.length * 4, func.length * 4, line.length * 4, (func.length + line.length) * 4, core.length * 4];
  fields.forEach((f, i) => { if (8 + i * 4 + 4 <= hdrLen) v.setUint32(8 + i * 4, f, le); });
  words.forEach((w, i) => v.setUint32(hdrLen + i * 4, w >>> 0, le));
  return out;
}

function throwsBtf(fn: () => unknown, match?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BtfError, `expected BtfError, got ${String(e)}`);
    if (match) assert.match(e.message, match);
    return true;
  });
}

/** A representative section: two programs, every record kind. */
function sample(littleEndian = true, recGrow = 0): { blob: Uint8Array; strings: (off: number) => string; s: Strings } {
  const s = new Strings();
  const text = s.off('.text'), kprobe = s.off('kprobe/sys_open');
  const file = s.off('/src/prog.c'), l1 = s.off('int x = 1;'), l2 = s.off('\treturn x; // ü');
  const acc = s.off('0:1:2');
  const blob = extBlob({
    littleEndian,
    func: infoBlock(8 + recGrow, [[text, [[0, 3], [80, 4]]], [kprobe, [[0, 5]]]]),
    line: infoBlock(16 + recGrow, [
      [text, [[0, file, l1, (10 << 10) | 5], [8, file, l2, (11 << 10) | 0x3ff]]],
      [kprobe, [[16, file, l1, 1 << 10]]],
    ]),
    core: infoBlock(16 + recGrow, [[kprobe, [[24, 7, acc, CORE_RELO_KIND.FIELD_BYTE_OFFSET], [40, 7, s.off('0'), CORE_RELO_KIND.TYPE_EXISTS]]]]),
  });
  return { blob, strings: s.lookup(), s };
}

test('func_info, line_info and core_relo are grouped by section with instruction offsets', () => {
  const { blob, strings, s } = sample();
  const ext = parseBtfExt(blob, strings);
  assert.deepEqual([...ext.funcInfo.keys()], ['.text', 'kprobe/sys_open']);
  assert.deepEqual(ext.funcInfo.get('.text'), [{ insnOff: 0, typeId: 3 }, { insnOff: 10, typeId: 4 }]);
  assert.deepEqual(ext.funcInfo.get('kprobe/sys_open'), [{ insnOff: 0, typeId: 5 }]);
  assert.deepEqual(ext.lineInfo.get('.text'), [
    { insnOff: 0, fileName: '/src/prog.c', line: 'int x = 1;', lineNum: 10, lineCol: 5, fileNameOff: s.off('/src/prog.c'), lineOff: s.off('int x = 1;') },
    { insnOff: 1, fileName: '/src/prog.c', line: '\treturn x; // ü', lineNum: 11, lineCol: 0x3ff, fileNameOff: s.off('/src/prog.c'), lineOff: s.off('\treturn x; // ü') },
  ]);
  assert.equal(ext.lineInfo.get('kprobe/sys_open')?.[0]?.insnOff, 2);
  assert.deepEqual(ext.coreRelos.get('kprobe/sys_open'), [
    { insnOff: 3, typeId: 7, accessStr: '0:1:2', kind: CORE_RELO_KIND.FIELD_BYTE_OFFSET },
    { insnOff: 5, typeId: 7, accessStr: '0', kind: CORE_RELO_KIND.TYPE_EXISTS },
  ]);
  assert.equal(ext.coreRelos.get('.text'), undefined);
});

test('records larger than the known layout are accepted and the extra bytes skipped', () => {
  const plain = sample();
  for (const grow of [4, 8, 64]) {
    const grown = sample(true, grow);
    assert.deepEqual(parseBtfExt(grown.blob, grown.strings), parseBtfExt(plain.blob, plain.strings));
  }
});

test('record sizes below the known layout are rejected', () => {
  const s = new Strings();
  const text = s.off('.text');
  const strings = s.lookup();
  throwsBtf(() => parseBtfExt(extBlob({ func: infoBlock(4, [[text, [[0]]]]) }), strings), /func_info record size 4 is smaller than 8/);
  throwsBtf(() => parseBtfExt(extBlob({ line: infoBlock(12, [[text, [[0, 0, 0]]]]) }), strings), /line_info record size 12/);
  throwsBtf(() => parseBtfExt(extBlob({ core: infoBlock(8, [[text, [[0, 0]]]]) }), strings), /core_relo record size 8/);
});

test('big-endian .BTF.ext', () => {
  const le = sample(true);
  const be = sample(false);
  assert.deepEqual(parseBtfExt(be.blob, be.strings, false), parseBtfExt(le.blob, le.strings, true));
  throwsBtf(() => parseBtfExt(be.blob, be.strings, true), /byte order/);
  throwsBtf(() => parseBtfExt(le.blob, le.strings, false), /byte order/);
});

test('groups for the same section are merged', () => {
  const s = new Strings();
  const text = s.off('.text');
  const ext = parseBtfExt(extBlob({ func: infoBlock(8, [[text, [[0, 1]]], [text, [[16, 2]]], [text, []]]) }), s.lookup());
  assert.deepEqual(ext.funcInfo.get('.text'), [{ insnOff: 0, typeId: 1 }, { insnOff: 2, typeId: 2 }]);
});

test('empty blocks and short headers', () => {
  const strings = new Strings().lookup();
  const empty = parseBtfExt(extBlob({}), strings);
  assert.equal(empty.funcInfo.size + empty.lineInfo.size + empty.coreRelos.size, 0);
  // The original 24-byte header has no core_relo fields; 28 bytes still does not reach them.
  const s = new Strings();
  const text = s.off('.text');
  for (const hdrLen of [24, 28]) {
    const ext = parseBtfExt(extBlob({ hdrLen, func: infoBlock(8, [[text, [[8, 1]]]]) }), s.lookup());
    assert.deepEqual(ext.funcInfo.get('.text'), [{ insnOff: 1, typeId: 1 }]);
    assert.equal(ext.coreRelos.size, 0);
  }
  // A longer header from a newer compiler: the extra fields are ignored.
  const ext = parseBtfExt(extBlob({ hdrLen: 40, func: infoBlock(8, [[text, [[8, 1]]]]) }), s.lookup());
  assert.equal(ext.funcInfo.get('.text')?.length, 1);
});

test('every truncation throws BtfError', () => {
  const { blob, strings } = sample();
  for (let len = 0; len < blob.length; len++) throwsBtf(() => parseBtfExt(blob.subarray(0, len), strings));
});

test('bad header fields', () => {
  const { blob, strings } = sample();
  const patched = (at: number, value: number, size: 1 | 2 | 4 = 4): Uint8Array => {
    const b = blob.slice();
    const v = new DataView(b.buffer);
    if (size === 1) v.setUint8(at, value); else if (size === 2) v.setUint16(at, value, true); else v.setUint32(at, value, true);
    return b;
  };
  throwsBtf(() => parseBtfExt(patched(0, 0xcafe, 2), strings), /magic 0xcafe/);
  throwsBtf(() => parseBtfExt(patched(2, 0, 1), strings), /version 0/);
  throwsBtf(() => parseBtfExt(patched(3, 4, 1), strings), /flags/);
  throwsBtf(() => parseBtfExt(patched(4, 16), strings), /hdr_len 16/);
  throwsBtf(() => parseBtfExt(patched(4, blob.length + 1), strings), /hdr_len .* exceeds/);
  throwsBtf(() => parseBtfExt(patched(4, 0xffffffff), strings), /hdr_len/);
  throwsBtf(() => parseBtfExt(patched(8, 0xfffffff0), strings), /func_info .* outside/);
  throwsBtf(() => parseBtfExt(patched(20, 0xffffffff), strings), /line_info .* outside/);
  throwsBtf(() => parseBtfExt(patched(28, 0x10000), strings), /core_relo .* outside/);
  throwsBtf(() => parseBtfExt(new Uint8Array(3), strings), /too short/);
  throwsBtf(() => parseBtfExt([1, 2] as unknown as Uint8Array, strings), /Uint8Array/);
});

test('block contents: short blocks, truncated section headers, overrunning counts', () => {
  const s = new Strings();
  const text = s.off('.text');
  const strings = s.lookup();
  const withFunc = (words: number[]): Uint8Array => extBlob({ func: words });
  // Block too short for its record size (2 bytes): patch func_info_len.
  const short = withFunc([8]);
  new DataView(short.buffer).setUint32(12, 2, true);
  throwsBtf(() => parseBtfExt(short, strings), /too short for its record size/);
  throwsBtf(() => parseBtfExt(withFunc([8, text]), strings), /section header .* truncated/);
  throwsBtf(() => parseBtfExt(withFunc([8, text, 2, 0, 1]), strings), /2 records of 8 bytes overrun/);
  throwsBtf(() => parseBtfExt(withFunc([8, text, 0xffffffff, 0, 1]), strings), /overrun/);
  throwsBtf(() => parseBtfExt(withFunc([0xffffffff, text, 1, 0, 1]), strings), /overrun/);
  throwsBtf(() => parseBtfExt(withFunc([8, text, 1, 12, 1]), strings), /insn_off 12 is not a multiple of 8/);
  throwsBtf(() => parseBtfExt(extBlob({ line: infoBlock(16, [[text, [[4, 0, 0, 0]]]]) }), strings), /insn_off 4/);
  throwsBtf(() => parseBtfExt(extBlob({ core: infoBlock(16, [[text, [[3, 1, 0, 0]]]]) }), strings), /insn_off 3/);
});

test('string offsets out of range', () => {
  const s = new Strings();
  const text = s.off('.text');
  const strings = s.lookup();
  throwsBtf(() => parseBtfExt(extBlob({ func: infoBlock(8, [[999, [[0, 1]]]]) }), strings), /section name: .*999/);
  throwsBtf(() => parseBtfExt(extBlob({ line: infoBlock(16, [[text, [[0, 999, 0, 0]]]]) }), strings), /file_name_off/);
  throwsBtf(() => parseBtfExt(extBlob({ line: infoBlock(16, [[text, [[0, 0, 999, 0]]]]) }), strings), /line_off/);
  throwsBtf(() => parseBtfExt(extBlob({ core: infoBlock(16, [[text, [[0, 1, 999, 0]]]]) }), strings), /access_str_off/);
});

test('a string callback that throws something else still ends in BtfError', () => {
  const blob = extBlob({ func: infoBlock(8, [[1, [[0, 1]]]]) });
  throwsBtf(() => parseBtfExt(blob, () => { throw new RangeError('boom'); }), /not in the string table/);
  throwsBtf(() => parseBtfExt(blob, () => undefined as unknown as string), /not in the string table/);
});

test('random corruption never escapes as anything but BtfError', () => {
  const { blob, strings } = sample();
  let x = 0x5eed;
  const next = (): number => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
  for (let round = 0; round < 3000; round++) {
    const b = blob.slice();
    for (let i = 0, n = 1 + (next() % 4); i < n; i++) b[next() % b.length] = next() & 0xff;
    try {
      parseBtfExt(b, strings);
    } catch (e) {
      assert.ok(e instanceof BtfError, `round ${round}: ${String(e)}`);
    }
  }
});
