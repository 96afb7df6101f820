/**
 * USDT probes: decoding <sys/sdt.h> notes and argument strings (pure), and attaching for real to
 * test/fixtures/usdt_target.c, compiled here with cc -O2, with test/bpf/link_usdt.bpf.c reading the
 * arguments through libbpf's usdt.bpf.h. The target has a probe with two sites (registers in the
 * optimised loop, stack slots in an unoptimised function), and a probe behind a semaphore whose
 * arguments are constants and globals (%rip-relative symbols).
 *
 * Needs the <sys/sdt.h> header (Debian: systemtap-sdt-dev); without it the kernel tests are
 * skipped (except on CI, where they fail).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ElfFile } from '../../src/elf/reader.js';
import {
  attach, attachUsdt, Collection, CollectionSpec, InvalidArgumentError, listUsdtProbes, NotSupportedError, parseUsdtArgs,
  UsdtLink,
} from '../../src/index.js';
import { encodeUsdtSpec, probeAddressInProcess, USDT_SPEC_SIZE } from '../../src/link/usdt.js';
import { kernelTest, obj, onCI, patient, ROOT } from '../helpers/index.js';
import { assertProgramGone } from '../fixtures/link-env.js';

const EM_X86_64 = 62;
const EM_AARCH64 = 183;

/** Slots of usdt_counts (test/bpf/link_usdt.bpf.c). */
const U = { hits: 0, xSum: 1, ySum: 2, byteSum: 3, argCnt: 4, cookie: 5, noArg: 6, gHits: 8, gA: 9, gB: 10, gC: 11, gD: 12 } as const;

/** Where link_usdt.bpf.c's usdt_guarded section says the binary is. */
const FIXED_DIR = '/tmp/bpfkit-usdt-fixture';
const FIXED_BIN = join(FIXED_DIR, 'usdt_target');
const SOURCE = join(ROOT, 'test', 'fixtures', 'usdt_target.c');

const haveSdt = ['/usr/include/sys/sdt.h', '/usr/include/x86_64-linux-gnu/sys/sdt.h', '/usr/include/aarch64-linux-gnu/sys/sdt.h'].some(existsSync);
const usdtTest = {
  skip: kernelTest.skip || (!haveSdt && !onCI ? '<sys/sdt.h> is missing: apt-get install systemtap-sdt-dev' : false),
} as const;

function compile(out: string): void {
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync('cc', ['-O2', '-o', tmp, SOURCE], { encoding: 'utf8', timeout: patient(60_000) });
  assert.equal(r.status, 0, `cc failed: ${r.stderr}`);
  renameSync(tmp, out);
}

function buildTarget(): { dir: string; bin: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bpfkit-usdt-'));
  const bin = join(dir, 'usdt_target');
  compile(bin);
  return { dir, bin };
}

async function loadUsdt(): Promise<Collection> {
  return Collection.load(await CollectionSpec.fromFile(obj('link_usdt')));
}

function counter(coll: Collection, slot: number): bigint {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, slot, true);
  const v = coll.maps.get('usdt_counts')!.lookupBytes(key)!;
  return new DataView(v.buffer, v.byteOffset, v.byteLength).getBigInt64(0, true);
}

/** What usdt_hit adds up over a run of `usdt_target n` (n loop calls plus hit_slow). */
function expectedHit(n: number, cookie: bigint): Record<string, bigint> {
  let x = 0n;
  let y = 0n;
  for (let i = 0; i < n; i++) {
    x += BigInt(i - 2);
    y += BigInt(i) * 1000000007n;
  }
  const calls = BigInt(n + 1);
  return {
    hits: calls, xSum: x - 100n, ySum: y - 5000000000n, byteSum: 98n * BigInt(n) + 112n, // 'b' ("bpfkit!"), then 'p' (message + 1)
    argCnt: 3n * calls, cookie: cookie * calls, noArg: calls,
  };
}

function run(bin: string, n: number): { guarded: number; hitSemaphore: number } {
  const r = spawnSync(bin, [String(n)], { encoding: 'utf8', timeout: patient(30_000) });
  assert.equal(r.status, 0, r.stderr);
  const [count, guarded, sem] = r.stdout.trim().split(' ').map(Number);
  assert.equal(count, n);
  return { guarded: guarded!, hitSemaphore: sem! };
}

describe('USDT argument strings', () => {
  it('decodes x86-64 registers, stack slots, constants and globals', () => {
    const syms: Record<string, number> = { counter: 0x4010, table: 0x4020 };
    const args = parseUsdtArgs('-4@%edi 8@-16(%rbp) -4@$-42 1@%r9b -2@(%rax) -4@counter(%rip) -8@16+table(%rip) 8@table-8(%rip)', EM_X86_64, 0x1100,
      (n) => syms[n]);
    assert.deepEqual(args.map((a) => [a.kind, a.size, a.signed, a.regOffset, a.value]), [
      ['reg', 4, true, 112, 0n], // rdi
      ['reg_deref', 8, false, 32, -16n], // rbp
      ['const', 4, true, 0, -42n],
      ['reg', 1, false, 64, 0n], // r9
      ['reg_deref', 2, true, 80, 0n], // rax
      // Globals: the uprobe's ip is the probe's pc, so they sit at ip + (symbol - pc).
      ['reg_deref', 4, true, 128, 0x4010n - 0x1100n],
      ['reg_deref', 8, true, 128, 0x4020n + 16n - 0x1100n],
      ['reg_deref', 8, false, 128, 0x4020n - 8n - 0x1100n],
    ]);
    assert.deepEqual(parseUsdtArgs('', EM_X86_64), []);
  });

  it('decodes arm64 operands', () => {
    const args = parseUsdtArgs('-4@x0 8@[sp, 16] -8@[x29, -8] 4@[x1] -4@5 8@w3', EM_AARCH64);
    assert.deepEqual(args.map((a) => [a.kind, a.regOffset, a.value]), [
      ['reg', 0, 0n], ['reg_deref', 248, 16n], ['reg_deref', 232, -8n], ['reg_deref', 8, 0n], ['const', 0, 5n], ['reg', 24, 0n],
    ]);
  });

  it('refuses what usdt.bpf.h cannot describe, naming the argument', () => {
    const refused = (s: string, re: RegExp) => assert.throws(() => parseUsdtArgs(s, EM_X86_64),
      (e: unknown) => e instanceof NotSupportedError && re.test(e.message) && e.message.includes(s));
    refused('-4@-4(%rbp,%rax,4)', /indexed/);
    refused('1@%ah', /high-byte/);
    refused('8@16(%rip)', /%rip/);
    assert.throws(() => parseUsdtArgs('3@%eax', EM_X86_64), InvalidArgumentError);
    assert.throws(() => parseUsdtArgs('-4@counter(%rip)', EM_X86_64), /no symbol counter/);
    assert.throws(() => parseUsdtArgs('-4@%edi', 8 /* MIPS */), NotSupportedError);
    assert.throws(() => parseUsdtArgs(Array(13).fill('-4@%edi').join(' '), EM_X86_64), /at most 12/);
  });

  it('encodes struct __bpf_usdt_spec as usdt.bpf.h lays it out', () => {
    const bytes = encodeUsdtSpec(parseUsdtArgs('-4@%ecx 8@-24(%rbp) -4@$-5', EM_X86_64), 0x1122334455667788n);
    assert.equal(bytes.length, USDT_SPEC_SIZE);
    assert.equal(USDT_SPEC_SIZE, 208);
    const v = new DataView(bytes.buffer);
    // args[0]: register rcx (offset 88), signed, 32 bits to clear.
    assert.deepEqual([v.getBigUint64(0, true), v.getUint32(8, true), v.getInt16(12, true), v.getUint8(14), v.getInt8(15)], [0n, 1, 88, 1, 32]);
    // args[1]: memory at rbp (32) - 24, unsigned 8 bytes.
    assert.deepEqual([v.getBigInt64(16, true), v.getUint32(24, true), v.getInt16(28, true), v.getUint8(30), v.getInt8(31)], [-24n, 2, 32, 0, 0]);
    // args[2]: the constant -5.
    assert.deepEqual([v.getBigInt64(32, true), v.getUint32(40, true), v.getUint8(46), v.getInt8(47)], [-5n, 0, 1, 32]);
    assert.equal(v.getBigUint64(192, true), 0x1122334455667788n, 'usdt_cookie');
    assert.equal(v.getInt16(200, true), 3, 'arg_cnt');
  });

  it('finds a probe in a process from /proc/<pid>/maps (for kernels without bpf cookies)', () => {
    const maps = [
      '55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 1234  /opt/app/bin',
      '55d0c0a01000-55d0c0a02000 r-xp 00001000 fe:01 1234  /opt/app/bin',
      '7f0000000000-7f0000001000 r-xp 00001000 fe:01 99    /opt/other',
    ].join('\n');
    assert.equal(probeAddressInProcess(maps, '/opt/app/bin', 0x1244), 0x55d0c0a01244n);
    assert.equal(probeAddressInProcess(maps, '/opt/app/bin', 0x3000), undefined);
    assert.equal(probeAddressInProcess(maps, '/opt/missing', 0x1244), undefined);
  });
});

describe('USDT probes', () => {
  it('lists the probe sites of a binary built with <sys/sdt.h>, with file offsets', usdtTest, () => {
    const { dir, bin } = buildTarget();
    try {
      const notes = listUsdtProbes(bin);
      const hits = notes.filter((n) => n.provider === 'bpfkit' && n.name === 'hit');
      const guarded = notes.filter((n) => n.name === 'guarded');
      assert.equal(hits.length, 2, 'the loop and hit_slow');
      assert.equal(guarded.length, 1);
      assert.ok(hits.every((n) => n.semaphore !== 0 && n.semaphoreFileOffset > 0 && n.fileOffset > 0));
      assert.notEqual(guarded[0]!.semaphore, hits[0]!.semaphore);
      // The operand kinds the test covers (gcc -O2 in main, -O0 in hit_slow).
      const machine = ElfFile.parse(readFileSync(bin)).machine;
      const kinds = new Set(notes.flatMap((n) => parseUsdtArgs(n.args, machine, n.pc, () => 0x1000).map((a) => a.kind)));
      assert.deepEqual([...kinds].sort(), ['const', 'reg', 'reg_deref']);
      assert.deepEqual(listUsdtProbes('/bin/true'), [], 'a binary without probes has no notes');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('attachUsdt puts a uprobe on every site and bpf_usdt_arg() reads each argument; the cookie and semaphore work', usdtTest, async () => {
    const { dir, bin } = buildTarget();
    const coll = await loadUsdt();
    const hit = coll.programs.get('usdt_hit')!;
    const guarded = coll.programs.get('usdt_guarded')!;
    const ids = [hit.info().id, guarded.info().id];
    const links: UsdtLink[] = [];
    try {
      assert.equal(run(bin, 2).guarded, 0, 'no semaphore raised before attaching');
      const l = attachUsdt(hit, bin, 'bpfkit', 'hit', { cookie: 77n });
      links.push(l);
      assert.equal(l.kind, 'usdt');
      assert.equal(l.links.length, 2, 'one uprobe per site');
      assert.deepEqual(new Set(l.sites.map((s) => s.specId)).size, 2, 'the two sites keep their arguments in different places');
      const g = attachUsdt(guarded, bin, 'bpfkit', 'guarded');
      links.push(g);
      assert.ok(!l.sites.some((s) => s.specId === g.sites[0]!.specId), 'spec ids are not shared between attachments');

      const n = 6;
      const out = run(bin, n);
      assert.equal(out.guarded, 1, 'the kernel raised the guarded probe\'s semaphore');
      assert.equal(out.hitSemaphore, 2, 'one raise of the hit semaphore per attached site');
      const want = expectedHit(n, 77n);
      for (const [k, v] of Object.entries(want)) assert.equal(counter(coll, U[k as keyof typeof U]), v, k);
      // Constants and globals: guarded(42, -5, bpfkit_level = 7, bpfkit_table[2] = 3000000000).
      assert.deepEqual([U.gHits, U.gA, U.gB, U.gC, U.gD].map((s) => counter(coll, s)), [1n, 42n, -5n, 7n, 3000000000n]);

      for (const link of links) link.close();
      assert.equal(links[0]!.closed, true);
      const after = run(bin, 3);
      assert.equal(after.guarded, 0, 'the semaphore drops when the uprobes go');
      assert.equal(counter(coll, U.hits), want.hits, 'nothing counted after close');
    } finally {
      for (const link of links) link.close();
      coll.close();
      rmSync(dir, { recursive: true, force: true });
    }
    for (const id of ids) await assertProgramGone(id);
  });

  it('attach() takes <binary>:<provider>:<name> from the section, or { binary, usdt }; a pid narrows it to one process', usdtTest, async () => {
    mkdirSync(FIXED_DIR, { recursive: true });
    compile(FIXED_BIN);
    const coll = await loadUsdt();
    const waiting = spawn(FIXED_BIN, ['4', 'wait'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const g = attach(coll.programs.get('usdt_guarded')!);
      try {
        assert.ok(g instanceof UsdtLink);
        assert.equal(g.binary, FIXED_BIN);
        assert.equal(run(FIXED_BIN, 1).guarded, 1);
        assert.equal(counter(coll, U.gHits), 1n);
      } finally {
        g.close();
      }

      const exited = new Promise<number | null>((r) => waiting.once('exit', (c) => r(c)));
      let stdout = '';
      waiting.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
      const h = attach(coll.programs.get('usdt_hit')!, { binary: FIXED_BIN, usdt: { provider: 'bpfkit', name: 'hit' }, pid: waiting.pid!, cookie: 5n });
      try {
        run(FIXED_BIN, 3); // another process: not counted
        assert.equal(counter(coll, U.hits), 0n);
        waiting.stdin!.end('go\n');
        assert.equal(await exited, 0);
        const want = expectedHit(4, 5n);
        assert.equal(counter(coll, U.hits), want.hits);
        assert.equal(counter(coll, U.ySum), want.ySum);
        assert.equal(counter(coll, U.cookie), want.cookie);
        assert.match(stdout, /^4 0 2/, 'the semaphore was raised in the traced process');
      } finally {
        h.close();
      }
    } finally {
      if (waiting.exitCode === null) waiting.kill('SIGKILL');
      coll.close();
      rmSync(FIXED_DIR, { recursive: true, force: true });
    }
  });

  it('explains unknown probes, binaries without probes and programs without the usdt.bpf.h maps', usdtTest, async () => {
    const { dir, bin } = buildTarget();
    const coll = await loadUsdt();
    const counters = await Collection.load(await CollectionSpec.fromFile(obj('link_counters')), { programs: { only: ['uprobe_count'] } });
    try {
      const hit = coll.programs.get('usdt_hit')!;
      assert.throws(() => attachUsdt(hit, bin, 'bpfkit', 'nope'),
        (e: unknown) => e instanceof InvalidArgumentError && /no probe bpfkit:nope/.test(e.message) && /bpfkit:hit, bpfkit:guarded|bpfkit:guarded, bpfkit:hit/.test(e.message));
      assert.throws(() => attachUsdt(hit, '/bin/true', 'bpfkit', 'hit'), /defines no USDT probes/);
      assert.throws(() => attachUsdt(counters.programs.get('uprobe_count')!, bin, 'bpfkit', 'hit'), /no __bpf_usdt_specs map/);
      assert.throws(() => attachUsdt(hit, bin, 'bpfkit', 'hit', { pid: 0 }), InvalidArgumentError);
      // The failed attaches took no spec slots, and a closed link gives its slots back.
      const l = attachUsdt(hit, bin, 'bpfkit', 'hit');
      assert.deepEqual(l.sites.map((s) => s.specId).sort(), [0, 1]);
      l.close();
      const again = attachUsdt(hit, bin, 'bpfkit', 'hit');
      assert.deepEqual(again.sites.map((s) => s.specId).sort(), [0, 1]);
      again.close();
    } finally {
      counters.close();
      coll.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
