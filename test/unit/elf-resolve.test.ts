/**
 * The one ELF reader's executable-side views (segments, notes, dynamic entries, symbol lookup,
 * address to file offset) and the one binary/library resolver, including the cases where
 * uprobe's resolver and readline's locator used to disagree: a library only in an ld.so.conf
 * directory, a 32-bit or foreign-machine library earlier in the search, a non-ELF file named like
 * a library, and a relative program path (returned relative by one, absolute by the other).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ElfFile, elfIdent, ET, isElf, PF, PT, SHT, STT } from '../../src/elf/reader.js';
import { findLibrary, findNeeded, findProgram, hostMachine, isLibraryName, resolveBinary } from '../../src/elf/resolve.js';
import { openElfFile } from '../../src/elf/file.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { EM_AARCH64, EM_X86_64, tinyElf, type TinyElf } from '../fixtures/tools-elf.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfkit-elf-resolve-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function write(rel: string, bytes: Uint8Array | string, mode = 0o755): string {
  const p = join(dir, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, bytes);
  chmodSync(p, mode);
  return p;
}

const lib = (rel: string, spec: TinyElf = { defines: ['f'] }): string => write(rel, tinyElf(spec), 0o644);
const foreign = hostMachine() === EM_X86_64 ? EM_AARCH64 : EM_X86_64;

describe('ELF reader: what executables and libraries need', () => {
  const libc = findLibrary('libc.so.6');

  it('identifies ELF files from their first bytes', () => {
    assert.equal(isElf(new Uint8Array([0x7f, 0x45, 0x4c, 0x46])), true);
    assert.equal(isElf(new TextEncoder().encode('#!/bin/sh')), false);
    assert.deepEqual(elfIdent(tinyElf({ defines: [] }).subarray(0, 20)), { elf64: true, littleEndian: true, machine: hostMachine() });
    assert.equal(elfIdent(tinyElf({ class32: true }).subarray(0, 20))?.elf64, false);
    assert.equal(elfIdent(new Uint8Array(10)), undefined);
  });

  it('libc: a symbol found by name, its file offset through its section and through its segment agree', () => {
    assert.ok(libc, 'libc.so.6 is found');
    const elf = ElfFile.parse(readFileSync(libc));
    assert.equal(elf.type, ET.DYN);
    const hit = elf.findSymbol('malloc');
    assert.ok(hit, 'libc defines malloc');
    assert.equal(hit.table, elf.symbols('symtab').length > 0 ? 'symtab' : 'dynsym');
    assert.ok(hit.symbol.type === STT.FUNC || hit.symbol.type === STT.GNU_IFUNC);
    const viaSection = elf.symbolFileOffset(hit.symbol);
    assert.equal(elf.fileOffset(hit.symbol.value, true), viaSection, 'the executable PT_LOAD maps it to the same offset');
    const loads = elf.segments().filter((s) => s.type === PT.LOAD);
    assert.ok(loads.some((s) => s.flags & PF.X) && loads.some((s) => !(s.flags & PF.X)));
    // Read-only data is mapped, but not by an executable segment.
    const rodata = elf.section('.rodata');
    if (rodata) {
      assert.equal(elf.fileOffset(rodata.addr), rodata.offset);
      assert.equal(elf.fileOffset(rodata.addr, true), undefined);
    }
    assert.equal(elf.fileOffset(0xffff_ffff_ffff), undefined);
    assert.equal(elf.findSymbol('bpfkit_no_such_function'), undefined);
    assert.equal(elf.findSymbol('_start'), undefined, 'a library does not define _start');
  });

  it('libc: notes (the GNU build id) and dynamic entries', () => {
    assert.ok(libc);
    const elf = ElfFile.parse(readFileSync(libc));
    const sec = elf.sections.find((s) => s.type === SHT.NOTE && s.name === '.note.gnu.build-id');
    assert.ok(sec, 'libc has a build id');
    const notes = elf.notes(sec);
    assert.equal(notes.length, 1);
    assert.equal(notes[0]!.owner, 'GNU');
    assert.equal(notes[0]!.type, 3); // NT_GNU_BUILD_ID
    assert.ok(notes[0]!.desc.length >= 8);
    assert.ok(elf.dynamic().needed.some((n) => n.startsWith('ld-linux')), 'libc needs the dynamic linker');
    assert.throws(() => elf.notes(elf.section('.text')!), /not a note section/);
  });

  it('a note that runs past its section, and a relocatable object without segments', () => {
    const elf = ElfFile.parse(readFileSync(libc!));
    const sec = elf.sections.find((s) => s.type === SHT.NOTE)!;
    const bytes = new Uint8Array(readFileSync(libc!));
    new DataView(bytes.buffer).setUint32(sec.offset + 4, 0x1000, true); // descsz far past the end
    assert.throws(() => ElfFile.parse(bytes).notes(sec), /runs past the end of the section/);
    assert.deepEqual(ElfFile.parse(tinyElf({ defines: ['x'] })).segments(), []);
  });

  it('openElfFile names the file and who asked', () => {
    assert.throws(() => openElfFile(join(dir, 'absent'), 'uprobe'), (e: unknown) => e instanceof InvalidArgumentError && /^uprobe: cannot read .*absent: no such file/.test(e.message));
    const txt = write('script.sh', '#!/bin/sh\n');
    assert.throws(() => openElfFile(txt, 'usdt'), (e: unknown) => e instanceof InvalidArgumentError && /^usdt: .*script\.sh is not a usable ELF binary: file is 10 bytes/.test(e.message));
  });
});

describe('binary and library resolution', () => {
  it('tells libraries from programs by name', () => {
    assert.equal(isLibraryName('libc.so.6'), true);
    assert.equal(isLibraryName('libedit.so'), true);
    assert.equal(isLibraryName('/opt/so/bash'), false);
    assert.equal(isLibraryName('bash'), false);
  });

  it('a library only in an ld.so.conf directory is found (uprobe only knew a fixed list)', () => {
    const conf = lib('confdir/libonly.so.1');
    assert.equal(findLibrary('libonly.so.1', { ldLibraryPath: '', libDirs: [join(dir, 'confdir')] }), conf);
    assert.equal(resolveBinary('libonly.so.1', 'uprobe', { ldLibraryPath: '', libDirs: [join(dir, 'confdir')] }), conf);
  });

  it('a 32-bit, foreign-machine or non-ELF library earlier in the search is skipped, as ld.so skips it', () => {
    lib('l32/libx.so.1', { class32: true });
    lib('larm/libx.so.1', { defines: ['f'], machine: foreign });
    write('ltxt/libx.so.1', 'not an ELF file', 0o644);
    const good = lib('l64/libx.so.1');
    const ld = ['l32', 'larm', 'ltxt', 'l64'].map((d) => join(dir, d)).join(':');
    assert.equal(findLibrary('libx.so.1', { ldLibraryPath: ld, libDirs: [] }), good);
    assert.equal(findLibrary('libx.so.1', { ldLibraryPath: '', libDirs: [join(dir, 'l64')] }), good);
    assert.equal(findLibrary('libx.so.1', { ldLibraryPath: join(dir, 'l32'), libDirs: [] }), undefined);
    assert.throws(() => resolveBinary('libx.so.1', 'uprobe', { ldLibraryPath: join(dir, 'l32'), libDirs: [] }),
      (e: unknown) => e instanceof InvalidArgumentError && /^uprobe: libx\.so\.1 was not found in LD_LIBRARY_PATH or the library directories \(.*l32\) as a 64-bit library/.test(e.message));
  });

  it('LD_LIBRARY_PATH comes before the system directories', () => {
    const first = lib('ldp/liby.so');
    lib('sys/liby.so');
    assert.equal(findLibrary('liby.so', { ldLibraryPath: join(dir, 'ldp'), libDirs: [join(dir, 'sys')] }), first);
    assert.equal(findLibrary('liby.so', { ldLibraryPath: '', libDirs: [join(dir, 'sys')] }), join(dir, 'sys/liby.so'));
  });

  it('programs: PATH order, execute permission, and paths made absolute (readline returned them relative)', () => {
    write('p1/tool', '', 0o644);
    const exe = write('p2/tool', '#!/bin/sh\n', 0o755);
    const path = ['', join(dir, 'p1'), join(dir, 'p2')].join(':');
    assert.equal(findProgram('tool', path), exe);
    assert.equal(resolveBinary('tool', 'uprobe', { path }), exe);
    assert.equal(findProgram('tool', join(dir, 'p1')), undefined);
    const rel = relative(process.cwd(), exe);
    assert.ok(!rel.startsWith('/'));
    assert.equal(findProgram(rel.includes('/') ? rel : `./${rel}`), exe);
    assert.equal(resolveBinary(rel.includes('/') ? rel : `./${rel}`, 'uprobe'), exe);
    assert.throws(() => resolveBinary('tool', 'uprobe', { path: join(dir, 'p1') }), /uprobe: tool was not found in PATH \(.*p1\)$/);
    assert.throws(() => resolveBinary('', 'usdt'), /usdt: the binary path is empty/);
    assert.throws(() => resolveBinary(join(dir, 'p1'), 'uprobe'), /does not exist or is not a regular file/);
  });

  it('DT_NEEDED: RPATH only without RUNPATH, $ORIGIN, the needing object\'s machine, LD_LIBRARY_PATH only when given', () => {
    const byRunpath = lib('app/lib/libz.so.1');
    lib('rpath/libz.so.1');
    const ldp = lib('ldp2/libz.so.1');
    const appPath = join(dir, 'app/bin/app');
    const both = ElfFile.parse(tinyElf({ needed: ['libz.so.1'], runpath: ['$ORIGIN/../lib'], rpath: [join(dir, 'rpath')] }));
    assert.equal(findNeeded('libz.so.1', both, appPath, { libDirs: [] }), byRunpath);
    assert.equal(findNeeded('libz.so.1', both, appPath, { libDirs: [], ldLibraryPath: join(dir, 'ldp2') }), ldp);
    const onlyRpath = ElfFile.parse(tinyElf({ needed: ['libz.so.1'], rpath: [join(dir, 'rpath')] }));
    assert.equal(findNeeded('libz.so.1', onlyRpath, appPath, { libDirs: [] }), join(dir, 'rpath/libz.so.1'));
    const armApp = ElfFile.parse(tinyElf({ needed: ['libz.so.1'], runpath: ['$ORIGIN/../lib'], machine: foreign }));
    assert.equal(findNeeded('libz.so.1', armApp, appPath, { libDirs: [] }), undefined, 'a library for another machine is not loaded');
  });
});
