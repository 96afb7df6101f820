/**
 * Finding bash's readline without a kernel: in the binary, in a DT_NEEDED library (directly or
 * through another library, with RUNPATH/$ORIGIN and RPATH), in a library a running copy maps, or
 * nowhere (an error naming what was searched). Tiny ELF files stand in for bash and its libraries;
 * the machine's own bash is checked too.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ElfFile } from '../../src/elf/reader.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { defaultLibDirs, findProgram as findInPath, ldSoConfDirs } from '../../src/elf/resolve.js';
import { definesFunction, locateReadline, looksLikeLibrary, mappedLibraries } from '../../src/tools/readline/locate.js';
import { resolveTarget } from '../../src/tools/readline/tool.js';
import { EM_AARCH64, EM_X86_64, hostMachine, tinyElf, type TinyElf } from '../fixtures/tools-elf.js';

let dir = '';

function write(rel: string, spec: TinyElf, mode = 0o755): string {
  const p = join(dir, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, tinyElf(spec));
  chmodSync(p, mode);
  return p;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfkit-rl-locate-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('readline locate: ELF dynamic information', () => {
  it('reads DT_NEEDED, DT_RUNPATH and DT_RPATH, and which table defines a function', () => {
    const elf = ElfFile.parse(tinyElf({ defines: ['main', 'readline'], imports: ['malloc'], needed: ['libc.so.6', 'libtinfo.so.6'], runpath: ['$ORIGIN/../lib', '/opt/x'], rpath: ['/old'] }));
    assert.deepEqual(elf.dynamic(), { needed: ['libc.so.6', 'libtinfo.so.6'], rpath: ['/old'], runpath: ['$ORIGIN/../lib', '/opt/x'] });
    assert.equal(definesFunction(elf, 'readline'), 'dynsym');
    assert.equal(definesFunction(elf, 'malloc'), undefined, 'an import is not a definition');
    assert.equal(definesFunction(elf, 'nothing'), undefined);
  });

  it('a binary without .dynamic has no dependencies', () => {
    const bytes = tinyElf({ defines: ['readline'] });
    const elf = ElfFile.parse(bytes);
    assert.deepEqual(elf.dynamic().needed, []);
  });

  it('tells libraries from programs by name', () => {
    assert.equal(looksLikeLibrary('/usr/lib/x86_64-linux-gnu/libreadline.so.8'), true);
    assert.equal(looksLikeLibrary('libedit.so'), true);
    assert.equal(looksLikeLibrary('libreadline.so.8.2'), true);
    assert.equal(looksLikeLibrary('/usr/bin/bash'), false);
    assert.equal(looksLikeLibrary('/opt/so/bash'), false);
  });

  it('default library directories follow the architecture', () => {
    assert.ok(defaultLibDirs('x64').includes('/usr/lib/x86_64-linux-gnu'));
    assert.ok(defaultLibDirs('arm64').includes('/lib/aarch64-linux-gnu'));
    assert.ok(defaultLibDirs('x64').includes('/usr/lib'));
  });

  it('reads /etc/ld.so.conf-style files with include globs and comments', () => {
    const conf = join(dir, 'ld.so.conf');
    mkdirSync(join(dir, 'ld.so.conf.d'), { recursive: true });
    writeFileSync(conf, '# comment\ninclude ld.so.conf.d/*.conf\n/opt/first\n');
    writeFileSync(join(dir, 'ld.so.conf.d', 'a.conf'), '/opt/a # trailing comment\n\n');
    writeFileSync(join(dir, 'ld.so.conf.d', 'b.conf'), '/opt/b:/opt/c\n');
    writeFileSync(join(dir, 'ld.so.conf.d', 'ignored.txt'), '/opt/no\n');
    assert.deepEqual(ldSoConfDirs(conf), ['/opt/a', '/opt/b', '/opt/c', '/opt/first']);
    assert.deepEqual(ldSoConfDirs(join(dir, 'missing.conf')), []);
  });
});

describe('readline locate: where readline is', () => {
  it('in the program itself (as Debian builds bash)', () => {
    const bash = write('own/bin/bash', { defines: ['main', 'readline'], needed: ['libc.so.6'] });
    const t = locateReadline(bash, { libDirs: [] });
    assert.equal(t.inProgram, true);
    assert.equal(t.file, bash);
    assert.equal(t.program, bash);
    assert.match(t.how, /readline is in .*bash itself \(\.dynsym\)/);
  });

  it('in a DT_NEEDED libreadline found in the library directories', () => {
    const lib = join(dir, 'needed/lib');
    write('needed/lib/libc.so.6', { defines: ['malloc'] });
    const rl = write('needed/lib/libreadline.so.8', { defines: ['readline', 'add_history'], needed: ['libc.so.6'] });
    const bash = write('needed/bin/bash', { defines: ['main'], imports: ['readline'], needed: ['libc.so.6', 'libreadline.so.8'] });
    const t = locateReadline(bash, { libDirs: [lib] });
    assert.equal(t.inProgram, false);
    assert.equal(t.file, rl);
    assert.equal(t.program, bash);
    assert.match(t.how, /comes from libreadline\.so\.8 \(a DT_NEEDED dependency\), found at .*libreadline\.so\.8/);
  });

  it('through a dependency of a dependency (breadth first), with RUNPATH $ORIGIN', () => {
    write('deep/lib/libshell.so.1', { defines: ['shell_main'], needed: ['libreadline.so.8'], runpath: ['$ORIGIN/private'] });
    const rl = write('deep/lib/private/libreadline.so.8', { defines: ['readline'] });
    const bash = write('deep/bin/bash', { defines: ['main'], needed: ['libshell.so.1'], runpath: ['$ORIGIN/../lib'] });
    const t = locateReadline(bash, { libDirs: [] });
    assert.equal(t.file, rl);
  });

  it('RPATH counts only when there is no RUNPATH, as in the dynamic linker', () => {
    write('rpath/a/libreadline.so.8', { defines: ['readline'] });
    const inB = write('rpath/b/libreadline.so.8', { defines: ['readline'] });
    const bash = write('rpath/bin/bash', { defines: ['main'], needed: ['libreadline.so.8'], rpath: [join(dir, 'rpath/a')], runpath: [join(dir, 'rpath/b')] });
    assert.equal(locateReadline(bash, { libDirs: [] }).file, inB);
    const bash2 = write('rpath/bin/bash2', { defines: ['main'], needed: ['libreadline.so.8'], rpath: [join(dir, 'rpath/a')] });
    assert.equal(locateReadline(bash2, { libDirs: [] }).file, join(dir, 'rpath/a/libreadline.so.8'));
  });

  it('skips a library of another machine or class, as the dynamic linker does', () => {
    const other = hostMachine() === EM_X86_64 ? EM_AARCH64 : EM_X86_64;
    write('mach/wrong/libreadline.so.8', { defines: ['readline'], machine: other });
    write('mach/class32/libreadline.so.8', { class32: true });
    const right = write('mach/right/libreadline.so.8', { defines: ['readline'] });
    const bash = write('mach/bin/bash', { defines: ['main'], needed: ['libreadline.so.8'] });
    const t = locateReadline(bash, { libDirs: [join(dir, 'mach/wrong'), join(dir, 'mach/class32'), join(dir, 'mach/right')] });
    assert.equal(t.file, right);
  });

  it('the first library that defines it wins (libedit before libreadline when linked first)', () => {
    const edit = write('order/lib/libedit.so.2', { defines: ['readline', 'el_init'] });
    write('order/lib/libreadline.so.8', { defines: ['readline'] });
    const bash = write('order/bin/bash', { defines: ['main'], needed: ['libedit.so.2', 'libreadline.so.8'] });
    assert.equal(locateReadline(bash, { libDirs: [join(dir, 'order/lib')] }).file, edit);
  });

  it('nowhere: the error names the program and the libraries searched', () => {
    write('none/lib/libc.so.6', { defines: ['malloc'] });
    const prog = write('none/bin/notbash', { defines: ['main'], needed: ['libc.so.6', 'libmissing.so.1'] });
    assert.throws(() => locateReadline(prog, { libDirs: [join(dir, 'none/lib')], procRoot: join(dir, 'noproc') }), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.match(e.message, /no readline function in .*notbash nor in the libraries it loads \(libc\.so\.6, libmissing\.so\.1\)/);
      assert.match(e.message, /--binary/);
      return true;
    });
    const lonely = write('none/bin/static', { defines: ['main'] });
    assert.throws(() => locateReadline(lonely, { libDirs: [], procRoot: join(dir, 'noproc') }), /it loads no shared libraries/);
  });

  it('not an ELF file, or missing: a clear error', () => {
    const txt = join(dir, 'script.sh');
    writeFileSync(txt, '#!/bin/sh\necho hi\n');
    assert.throws(() => locateReadline(txt), (e: unknown) => e instanceof InvalidArgumentError && /is not a usable ELF binary/.test(e.message));
    assert.throws(() => locateReadline(join(dir, 'nope')), (e: unknown) => e instanceof InvalidArgumentError && /no such file/.test(e.message));
  });

  it('from the maps of a running copy, when the dependencies do not have it', () => {
    const preload = write('maps/lib/libpreload.so', { defines: ['readline'] });
    const bash = write('maps/bin/bash', { defines: ['main'], needed: [] });
    const proc = join(dir, 'maps/proc');
    mkdirSync(join(proc, '4242'), { recursive: true });
    symlinkSync(bash, join(proc, '4242', 'exe'));
    writeFileSync(join(proc, '4242', 'maps'), [
      `55d0c0a00000-55d0c0a2f000 r--p 00000000 fd:01 1234   ${bash}`,
      `7f1c2a000000-7f1c2a010000 r-xp 00000000 fd:01 5678   ${preload}`,
      '7ffd5e1f0000-7ffd5e211000 rw-p 00000000 00:00 0      [stack]',
      '',
    ].join('\n'));
    mkdirSync(join(proc, '4243'), { recursive: true });
    symlinkSync('/nonexistent', join(proc, '4243', 'exe'));
    assert.deepEqual(mappedLibraries(bash, proc), [preload]);
    const t = locateReadline(bash, { libDirs: [], procRoot: proc });
    assert.equal(t.file, preload);
    assert.match(t.how, /a running bash has .*libpreload\.so mapped/);
  });
});

describe('readline locate: the machine', () => {
  it('finds bash in PATH and readline in it or its libraries', () => {
    const bash = findInPath('bash');
    assert.ok(bash, 'bash is in PATH');
    const t = locateReadline(bash);
    assert.ok(t.file.length > 0);
    const elf = ElfFile.parse(readFileSync(t.file));
    assert.ok(definesFunction(elf, 'readline'), `${t.file} defines readline`);
  });

  it('resolveTarget: bash from PATH, --binary paths and libraries, and clear errors', () => {
    const t = resolveTarget({ binary: undefined, pid: undefined, json: false, verbose: false, ringbufSize: undefined });
    assert.ok(t.program?.endsWith('bash'));
    const lib = resolveTarget({ binary: '/usr/lib/libreadline.so.8', pid: undefined, json: false, verbose: false, ringbufSize: undefined });
    assert.equal(lib.program, undefined);
    assert.equal(lib.file, '/usr/lib/libreadline.so.8');
    assert.throws(() => resolveTarget({ binary: undefined, pid: undefined, json: false, verbose: false, ringbufSize: undefined }, join(dir, 'empty-path')),
      /bash was not found in PATH .*--binary/);
    assert.throws(() => resolveTarget({ binary: join(dir, 'no-such-bash'), pid: undefined, json: false, verbose: false, ringbufSize: undefined }),
      /--binary: .*no-such-bash does not exist or is not executable/);
  });

  it('findInPath skips files that are not executable', () => {
    const d = join(dir, 'pathdir');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'tool'), '');
    chmodSync(join(d, 'tool'), 0o644);
    assert.equal(findInPath('tool', d), undefined);
    chmodSync(join(d, 'tool'), 0o755);
    assert.equal(findInPath('tool', d), join(d, 'tool'));
  });
});
