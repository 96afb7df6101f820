import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ElfFile, EM_BPF, SHT, STT } from '../../src/elf/reader.js';
import { ElfError } from '../../src/errors.js';
import { objBytes } from '../helpers/index.js';

test('reads sections, symbols and relocations of a clang-built BPF object', () => {
  const elf = ElfFile.parse(objBytes('packet_count'));
  assert.equal(elf.machine, EM_BPF);
  assert.equal(elf.littleEndian, true);
  const xdp = elf.section('xdp');
  assert.ok(xdp, 'has an xdp section');
  assert.equal(xdp.type, SHT.PROGBITS);
  assert.equal(xdp.size % 8, 0);
  const syms = elf.symbols();
  const prog = syms.find((s) => s.name === 'xdp_prog_func');
  assert.ok(prog);
  assert.equal(prog.type, STT.FUNC);
  assert.equal(prog.shndx, xdp.index);
  const rel = elf.sections.find((s) => s.type === SHT.REL && s.info === xdp.index);
  assert.ok(rel, 'the program section has relocations (the map reference)');
  const relocs = elf.relocations(rel);
  assert.ok(relocs.some((r) => syms[r.symbol]?.name === 'xdp_stats_map'));
  for (const r of relocs) assert.equal(r.offset % 8, 0);
});

test('every truncation of an object is an ElfError, never another exception', () => {
  const bytes = objBytes('packet_count');
  for (let len = 0; len < bytes.length; len += len < 256 ? 1 : 97) {
    const cut = bytes.subarray(0, len);
    try {
      const elf = ElfFile.parse(cut);
      // A prefix can parse when the header table sits early; reading it must still be checked.
      for (const s of elf.sections) {
        if (s.type === SHT.SYMTAB) elf.symbols();
        if (s.type === SHT.REL) elf.relocations(s);
      }
    } catch (e) {
      assert.ok(e instanceof ElfError, `length ${len}: ${String(e)}`);
    }
  }
});

test('random corruption yields ElfError or a parse, never a crash', () => {
  const orig = objBytes('maps');
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 500; i++) {
    const b = orig.slice();
    for (let k = 0; k < 8; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    try {
      const elf = ElfFile.parse(b);
      elf.symbols();
      for (const s of elf.sections) if (s.type === SHT.REL) elf.relocations(s);
    } catch (e) {
      assert.ok(e instanceof ElfError, String(e));
    }
  }
});

test('rejects what is not an ELF64 object with a message saying what is expected', () => {
  assert.throws(() => ElfFile.parse(new TextEncoder().encode('#!/bin/sh\necho not an object\n'.repeat(4))), (e: unknown) => e instanceof ElfError && /not an ELF file/.test(e.message));
  const b = objBytes('packet_count').slice();
  b[4] = 1; // ELFCLASS32
  assert.throws(() => ElfFile.parse(b), (e: unknown) => e instanceof ElfError && /64-bit/.test(e.message));
  assert.throws(() => ElfFile.parse(new Uint8Array(10)), (e: unknown) => e instanceof ElfError && /too short/.test(e.message));
});
