/**
 * Every kernel-function hook, attached for real where the kernel has it and refused clearly where
 * it does not: kprobe, kretprobe, ksyscall, kprobe.multi, kretprobe.multi, kprobe.session,
 * uprobe.multi, uretprobe.multi, uprobe.session, fentry, fexit, fmod_ret, lsm and tp_btf. Each test
 * asks a runtime probe (src/probes.ts, src/kernel/features.ts) which path to take, never the kernel version: where the
 * probe says yes, the hook is attached, seen to fire on mkdir(2) calls the test makes (counted for
 * this process only), and seen to stop after close(); where it says no, attaching (or loading)
 * throws the NotSupportedError the probe describes.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  attach, attachKprobe, attachKprobeMulti, attachKsyscall, attachUprobeMulti, Collection, CollectionSpec, FdLink, haveBpfLsm,
  haveKprobeMulti, haveKprobes, haveKprobeSession, haveProgramType, haveTracingAttach, haveTrampolines, haveUprobeMulti, haveUprobeSession, hookSupport,
  InvalidArgumentError, linkInfoHas, NotSupportedError, resolveKernelPattern, symbolFileOffset, type Link,
} from '../../src/index.js';
import { bpfLsmActive } from '../../src/sys/securityfs.js';
import { kernelTest, obj, ROOT } from '../helpers/index.js';
import { assertProgramGone } from '../fixtures/link-env.js';

/** Slots of hook_counts, as in test/bpf/link_hooks.bpf.c. */
const S = {
  kprobe: 0, kretprobe: 1, kretprobeFailed: 2, ksyscall: 3, kmulti: 4, kmultiCookie: 5, kretmulti: 6, session: 7, sessionEntry: 8,
  umulti: 9, umultiCookie: 10, uretmulti: 11, uretmultiRet: 12, fentry: 13, fexit: 14, fexitFailed: 15, fmodRet: 16, lsm: 17, tpBtf: 18, usession: 19,
} as const;

async function loadHooks(only: string[]): Promise<Collection> {
  const coll = await Collection.load(await CollectionSpec.fromFile(obj('link_hooks')), { programs: { only } });
  coll.variables.get('target_tgid')!.set(process.pid);
  return coll;
}

function hits(coll: Collection, slot: number): bigint {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, slot, true);
  const v = coll.maps.get('hook_counts')!.lookupBytes(key)!;
  return new DataView(v.buffer, v.byteOffset, v.byteLength).getBigUint64(0, true);
}

/** A scratch directory for the mkdir(2) calls that trigger the hooks. */
function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'bpfkit-hooks-'));
}

/** n successful mkdir(2) calls (each directory removed again). */
function mkdirs(dir: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const d = join(dir, `d${i}`);
    mkdirSync(d);
    rmdirSync(d);
  }
}

/** One mkdir(2) that fails with EEXIST (the function returns an error). */
function failingMkdir(dir: string): void {
  assert.throws(() => mkdirSync(dir), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EEXIST');
}

/** The probe's error, which attaching must throw word for word. */
function probeError(hook: Parameters<typeof hookSupport>[0]): NotSupportedError {
  const e = hookSupport(hook);
  assert.ok(e, `the probe said no to ${hook}, so it explains why`);
  return e;
}

/** Asserts the NotSupportedError of a hook the kernel lacks: the probe's message, naming the kernel and a version. */
function assertKernelLacks(fn: () => unknown, expected: NotSupportedError, version: RegExp | null): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof NotSupportedError, `NotSupportedError, got ${String(e)}`);
    assert.equal(e.message, expected.message);
    assert.equal(e.lackedBy, 'kernel');
    assert.match(e.message, /not supported by this kernel/);
    if (version) assert.match(e.message, version);
    return true;
  });
}

/** The detail of a NotSupportedError: its message after "...kernel[ (requires ...)]: ". */
function detail(e: NotSupportedError): string {
  return e.message.slice(e.message.indexOf(': ') + 2);
}

/** Says in the test output which path the probe chose (node --test prints it as a diagnostic). */
function path(t: TestContext, hook: string, supported: boolean): boolean {
  const known = ['kprobes', 'kprobe_multi', 'kprobe_session', 'uprobe_multi', 'uprobe_session', 'trace_fentry', 'modify_return', 'bpf_lsm'];
  const why = supported || !known.includes(hook) ? undefined : hookSupport(hook as Parameters<typeof hookSupport>[0]);
  t.diagnostic(`${hook}: ${supported ? 'the probe says yes: attach, fire, close' : `the probe says no${why ? `: ${why.message}` : ''}`}`);
  return supported;
}

async function closeAll(coll: Collection, links: Link[]): Promise<void> {
  const ids = [...coll.programs.values()].map((p) => p.info().id);
  for (const l of links) l.close();
  coll.close();
  for (const id of ids) await assertProgramGone(id);
}

describe('kprobes, kretprobes and ksyscall', () => {
  it('count do_mkdirat calls and failures, and stop after close (or fail naming CONFIG_KPROBES)', kernelTest, async (t) => {
    const coll = await loadHooks(['kprobe_mkdirat', 'kretprobe_mkdirat', 'ksyscall_mkdir']);
    const dir = scratch();
    const links: Link[] = [];
    try {
      const kp = coll.programs.get('kprobe_mkdirat')!;
      const krp = coll.programs.get('kretprobe_mkdirat')!;
      const ks = coll.programs.get('ksyscall_mkdir')!;
      if (!path(t, 'kprobes', haveKprobes())) {
        const expected = probeError('kprobes');
        assert.match(expected.message, /CONFIG_KPROBES/);
        assertKernelLacks(() => attachKprobe(kp, 'do_mkdirat'), expected, null);
        assertKernelLacks(() => attach(krp), expected, null);
        assertKernelLacks(() => attachKsyscall(ks, 'mkdir'), expected, null);
        assertKernelLacks(() => attach(ks), expected, null);
        return;
      }
      links.push(attachKprobe(kp, 'do_mkdirat'), attach(krp), attach(ks));
      assert.deepEqual(links.map((l) => l.kind), ['kprobe', 'kretprobe', 'kprobe']);
      mkdirs(dir, 3);
      failingMkdir(dir);
      assert.equal(hits(coll, S.kprobe), 4n, 'the kprobe saw 4 calls');
      assert.equal(hits(coll, S.kretprobe), 4n, 'the kretprobe saw 4 returns');
      assert.equal(hits(coll, S.kretprobeFailed), 1n, 'one of them returned an error');
      assert.equal(hits(coll, S.ksyscall), 4n, 'the ksyscall program saw 4 mkdir system calls');
      for (const l of links) l.close();
      mkdirs(dir, 2);
      assert.equal(hits(coll, S.kprobe), 4n, 'nothing counted after close');
      assert.equal(hits(coll, S.kretprobe), 4n);
      assert.equal(hits(coll, S.ksyscall), 4n);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeAll(coll, links);
    }
  });
});

describe('kprobe.multi and kretprobe.multi', () => {
  it('attach by section pattern and by list with cookies; fire per call; stop after close (or the probe\'s NotSupportedError)', kernelTest, async (t) => {
    const coll = await loadHooks(['kmulti_mkdirat', 'kretmulti_mkdirat', 'kprobe_mkdirat']);
    const dir = scratch();
    const links: Link[] = [];
    try {
      const multi = coll.programs.get('kmulti_mkdirat')!;
      const ret = coll.programs.get('kretmulti_mkdirat')!;
      // A program loaded without the kprobe_multi attach type is refused before the kernel is asked.
      assert.throws(() => attachKprobeMulti(coll.programs.get('kprobe_mkdirat')!, 'do_mkdirat'),
        (e: unknown) => e instanceof InvalidArgumentError && /loaded with attach type none, not trace_kprobe_multi/.test(e.message));
      if (!path(t, 'kprobe_multi', haveKprobeMulti())) {
        const expected = probeError('kprobe_multi');
        assertKernelLacks(() => attach(multi), expected, /requires Linux 5\.18/);
        assertKernelLacks(() => attachKprobeMulti(ret, ['do_mkdirat'], { retprobe: true }), expected, /requires Linux 5\.18/);
        return;
      }
      // The section's pattern, expanded against the traceable functions.
      const expanded = resolveKernelPattern('do_mkdira?');
      assert.ok(expanded.length >= 1);
      const byPattern = attach(multi) as FdLink;
      links.push(byPattern);
      assert.equal(byPattern.kind, 'kprobe_multi');
      const info = byPattern.info();
      assert.equal(info.type, 'kprobe_multi');
      if (linkInfoHas('kprobe_multi')) {
        assert.equal(info.kprobeMulti?.count, expanded.length, 'link info counts the expanded functions');
        assert.equal(info.kprobeMulti?.retprobe, false);
      }
      mkdirs(dir, 3);
      assert.equal(hits(coll, S.kmulti), 3n);
      assert.equal(hits(coll, S.kmultiCookie), 0n, 'no cookies given: 0');
      byPattern.close();

      // An explicit list with a cookie per function.
      const withCookies = attachKprobeMulti(multi, ['do_mkdirat'], { cookies: [7n] });
      links.push(withCookies);
      if (linkInfoHas('kprobe_multi', 'cookies')) assert.deepEqual(withCookies.info().kprobeMulti?.cookies, [7n]);
      mkdirs(dir, 2);
      assert.equal(hits(coll, S.kmulti), 5n);
      assert.equal(hits(coll, S.kmultiCookie), 14n, 'bpf_get_attach_cookie() gave 7 on each call');

      const retLink = attach(ret) as FdLink;
      links.push(retLink);
      assert.equal(retLink.kind, 'kretprobe_multi');
      if (linkInfoHas('kprobe_multi')) assert.equal(retLink.info().kprobeMulti?.retprobe, true);
      failingMkdir(dir);
      assert.equal(hits(coll, S.kretmulti), 1n);

      for (const l of links) l.close();
      mkdirs(dir, 2);
      assert.equal(hits(coll, S.kmulti), 6n, 'the failing call was counted by the entry probe; nothing after close');
      assert.equal(hits(coll, S.kretmulti), 1n);
      assert.throws(() => attachKprobeMulti(multi, 'bpfkit_no_such_function_*'),
        (e: unknown) => e instanceof InvalidArgumentError && /no traceable kernel function matches/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeAll(coll, links);
    }
  });
});

describe('kprobe.session', () => {
  it('runs at entry and return, or entry only when the entry run returns 1 (or the probe\'s NotSupportedError)', kernelTest, async (t) => {
    const coll = await loadHooks(['session_mkdirat', 'session_entry_only']);
    const dir = scratch();
    const links: Link[] = [];
    try {
      const both = coll.programs.get('session_mkdirat')!;
      const entry = coll.programs.get('session_entry_only')!;
      assert.throws(() => attachKprobeMulti(both, 'do_mkdirat', { retprobe: true }), InvalidArgumentError);
      if (!path(t, 'kprobe_session', haveKprobeSession())) {
        const expected = probeError('kprobe_session');
        assertKernelLacks(() => attach(both), expected, /requires Linux 6\.10/);
        assertKernelLacks(() => attachKprobeMulti(entry, 'do_mkdirat'), expected, /requires Linux 6\.10/);
        return;
      }
      links.push(attach(both), attach(entry));
      assert.deepEqual(links.map((l) => l.kind), ['kprobe_session', 'kprobe_session']);
      assert.equal(links[0]!.info().type, 'kprobe_multi');
      mkdirs(dir, 3);
      assert.equal(hits(coll, S.session), 6n, 'entry and return for each of 3 calls');
      assert.equal(hits(coll, S.sessionEntry), 3n, 'entry only: returning 1 skips the return run');
      for (const l of links) l.close();
      mkdirs(dir, 1);
      assert.equal(hits(coll, S.session), 6n);
      assert.equal(hits(coll, S.sessionEntry), 3n);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeAll(coll, links);
    }
  });
});

describe('uprobe.multi and uretprobe.multi', () => {
  function buildTarget(): { dir: string; bin: string } {
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-umulti-'));
    const bin = join(dir, 'uprobe_target');
    const r = spawnSync('cc', ['-O1', '-o', bin, join(ROOT, 'test', 'fixtures', 'uprobe_target.c')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `cc failed: ${r.stderr}`);
    return { dir, bin };
  }

  it('one link on several functions with cookies, return values, a pid filter, link info; nothing after close (or the probe\'s NotSupportedError)', kernelTest, async (t) => {
    const coll = await loadHooks(['umulti_count', 'uretmulti_count']);
    const { dir, bin } = buildTarget();
    const links: Link[] = [];
    try {
      const up = coll.programs.get('umulti_count')!;
      const ret = coll.programs.get('uretmulti_count')!;
      if (!path(t, 'uprobe_multi', haveUprobeMulti())) {
        const expected = probeError('uprobe_multi');
        assertKernelLacks(() => attach(up, { binary: bin, symbol: 'bpfkit_uprobe_*' }), expected, /requires Linux 6\.6/);
        assertKernelLacks(() => attachUprobeMulti(ret, bin, ['main'], { retprobe: true }), expected, /requires Linux 6\.6/);
        return;
      }
      // Two functions, one cookie each: main runs once, the target n times.
      const n = 5;
      const both = attachUprobeMulti(up, bin, ['main', 'bpfkit_uprobe_target'], { cookies: [100n, 1n] });
      links.push(both);
      assert.equal(both.kind, 'uprobe_multi');
      const info = both.info();
      assert.equal(info.type, 'uprobe_multi');
      if (linkInfoHas('uprobe_multi')) {
        assert.equal(info.uprobeMulti?.path, bin);
        assert.equal(info.uprobeMulti?.count, 2);
        assert.deepEqual(info.uprobeMulti?.offsets, [BigInt(symbolFileOffset(bin, 'main')), BigInt(symbolFileOffset(bin, 'bpfkit_uprobe_target'))]);
        assert.deepEqual(info.uprobeMulti?.cookies, [100n, 1n]);
        assert.equal(info.uprobeMulti?.retprobe, false);
      }
      const retLink = attach(ret, { binary: bin, symbol: 'bpfkit_uprobe_*' });
      links.push(retLink);
      assert.equal(retLink.kind, 'uretprobe_multi');
      const r = spawnSync(bin, [String(n)], { encoding: 'utf8' });
      assert.equal(r.status, 0);
      assert.equal(hits(coll, S.umulti), BigInt(n + 1), 'main once and the target n times');
      assert.equal(hits(coll, S.umultiCookie), 100n + BigInt(n), 'each call saw its function\'s cookie');
      assert.equal(hits(coll, S.uretmulti), BigInt(n));
      assert.equal(hits(coll, S.uretmultiRet), BigInt(n * (n + 1) + n), 'sum of the results 2x+1');
      for (const l of links.splice(0)) l.close();
      spawnSync(bin, ['3']);
      assert.equal(hits(coll, S.umulti), BigInt(n + 1), 'nothing counted after close');
      assert.equal(hits(coll, S.uretmulti), BigInt(n));

      // A pid filter: another process running the binary is not counted.
      const waiting = spawn(bin, ['4', 'wait'], { stdio: ['pipe', 'pipe', 'inherit'] });
      try {
        const exited = new Promise<number | null>((res) => waiting.once('exit', (c) => res(c)));
        links.push(attachUprobeMulti(up, bin, 'bpfkit_uprobe_target', { pid: waiting.pid! }));
        assert.equal(spawnSync(bin, ['2']).status, 0);
        assert.equal(hits(coll, S.umulti), BigInt(n + 1));
        waiting.stdin!.end('go\n');
        assert.equal(await exited, 0);
        assert.equal(hits(coll, S.umulti), BigInt(n + 1 + 4));
      } finally {
        if (waiting.exitCode === null) waiting.kill('SIGKILL');
      }
      assert.throws(() => attachUprobeMulti(up, bin, 'no_such_fn_*'), (e: unknown) => e instanceof InvalidArgumentError && /no function of .* matches/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeAll(coll, links);
    }
  });
});

describe('uprobe.session', () => {
  it('runs at entry and at return of each call, until close (or the probe\'s NotSupportedError)', kernelTest, async (t) => {
    const coll = await loadHooks(['usession_count']);
    const dir = mkdtempSync(join(tmpdir(), 'bpfkit-usession-'));
    const bin = join(dir, 'uprobe_target');
    const links: Link[] = [];
    try {
      const p = coll.programs.get('usession_count')!;
      const cc = spawnSync('cc', ['-O1', '-o', bin, join(ROOT, 'test', 'fixtures', 'uprobe_target.c')], { encoding: 'utf8' });
      assert.equal(cc.status, 0, `cc failed: ${cc.stderr}`);
      assert.throws(() => attachUprobeMulti(p, bin, 'bpfkit_uprobe_target', { retprobe: true }), InvalidArgumentError);
      if (!path(t, 'uprobe_session', haveUprobeSession())) {
        assertKernelLacks(() => attach(p, { binary: bin, symbol: 'bpfkit_uprobe_target' }), probeError('uprobe_session'), /requires Linux 6\.13/);
        return;
      }
      const link = attach(p, { binary: bin, symbol: 'bpfkit_uprobe_target' });
      links.push(link);
      assert.equal(link.kind, 'uprobe_session');
      assert.equal(spawnSync(bin, ['3']).status, 0);
      assert.equal(hits(coll, S.usession), 6n, 'entry and return of 3 calls');
      link.close();
      assert.equal(spawnSync(bin, ['2']).status, 0);
      assert.equal(hits(coll, S.usession), 6n);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeAll(coll, links);
    }
  });
});

describe('fentry and fexit (BPF trampolines)', () => {
  it('count calls and failed returns, and stop after close (or the load fails saying why trampolines are refused)', kernelTest, async (t) => {
    const only = ['fentry_mkdirat', 'fexit_mkdirat'];
    if (!path(t, 'trace_fentry', haveTrampolines())) {
      const expected = probeError('trace_fentry');
      for (const p of only) {
        await assert.rejects(loadHooks([p]), (e: unknown) => {
          assert.ok(e instanceof NotSupportedError, `NotSupportedError, got ${String(e)}`);
          assert.match(e.message, /BPF trampolines\) is not supported by this kernel/);
          assert.ok(e.message.includes(detail(expected)), `the load error says what the probe found: ${detail(expected)}\n got: ${e.message}`);
          return true;
        }, p);
      }
      return;
    }
    const coll = await loadHooks(only);
    const dir = scratch();
    const links: Link[] = [];
    try {
      for (const p of only) links.push(attach(coll.programs.get(p)!));
      const info = links[0]!.info();
      assert.equal(info.type, 'tracing');
      assert.equal(info.attachType, 'trace_fentry');
      assert.equal(links[1]!.info().attachType, 'trace_fexit');
      mkdirs(dir, 3);
      failingMkdir(dir);
      assert.equal(hits(coll, S.fentry), 4n);
      assert.equal(hits(coll, S.fexit), 4n);
      assert.equal(hits(coll, S.fexitFailed), 1n, 'bpf_get_func_ret saw the one error');
      for (const l of links) l.close();
      mkdirs(dir, 2);
      assert.equal(hits(coll, S.fentry), 4n);
      assert.equal(hits(coll, S.fexit), 4n);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeAll(coll, links);
    }
  });
});

describe('fmod_ret', () => {
  it('on security_path_mkdir: counts, then makes mkdir fail with EPERM; close restores mkdir (or the load fails clearly)', kernelTest, async (t) => {
    if (!path(t, 'modify_return', haveTracingAttach('modify_return', 'security_path_mkdir'))) {
      const expected = hookSupport('modify_return');
      await assert.rejects(loadHooks(['fmod_ret_mkdir']), (e: unknown) => {
        assert.ok(e instanceof NotSupportedError, `NotSupportedError, got ${String(e)}`);
        assert.match(e.message, /fmod_ret/);
        if (expected) assert.ok(e.message.includes(detail(expected)), `the load error says what the probe found, got: ${e.message}`);
        return true;
      });
      return;
    }
    const coll = await loadHooks(['fmod_ret_mkdir']);
    const dir = scratch();
    const links: Link[] = [];
    try {
      links.push(attach(coll.programs.get('fmod_ret_mkdir')!));
      assert.equal(links[0]!.info().attachType, 'modify_return');
      mkdirs(dir, 2);
      assert.equal(hits(coll, S.fmodRet), 2n);
      coll.variables.get('deny_fmod_ret')!.set(1);
      assert.throws(() => mkdirSync(join(dir, 'denied')), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EPERM', 'the program\'s return replaced the function\'s');
      assert.equal(hits(coll, S.fmodRet), 3n);
      links[0]!.close();
      mkdirs(dir, 1);
      assert.equal(hits(coll, S.fmodRet), 3n, 'detached: mkdir works and nothing is counted');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeAll(coll, links);
    }
  });
});

describe('BPF LSM', () => {
  it('lsm/path_mkdir counts, then denies mkdir; close restores it (or the error says whether the BPF LSM is off or trampolines are refused)', kernelTest, async (t) => {
    if (!path(t, 'bpf_lsm', haveBpfLsm())) {
      const active = bpfLsmActive();
      const why = active === true ? /the BPF LSM is active \(.*\), but BPF trampolines/ : active === false ? /the BPF LSM is not active/ : /could not tell why/;
      let coll: Collection | undefined;
      try {
        coll = await loadHooks(['lsm_path_mkdir']);
      } catch (e) {
        assert.ok(e instanceof NotSupportedError, `NotSupportedError, got ${String(e)}`);
        assert.match(e.message, /lsm programs \(BPF LSM\) is not supported by this kernel/);
        assert.match(e.message, why);
        return;
      }
      // It loaded (a kernel with trampolines but without "bpf" among the active LSMs): attaching is refused.
      try {
        assert.equal(active, false);
        assert.throws(() => attach(coll!.programs.get('lsm_path_mkdir')!), (e: unknown) =>
          e instanceof NotSupportedError && why.test(e.message) && /requires Linux 5\.7/.test(e.message));
      } finally {
        coll.close();
      }
      return;
    }
    const coll = await loadHooks(['lsm_path_mkdir']);
    const dir = scratch();
    const links: Link[] = [];
    try {
      links.push(attach(coll.programs.get('lsm_path_mkdir')!));
      assert.equal(links[0]!.info().attachType, 'lsm_mac');
      mkdirs(dir, 2);
      assert.equal(hits(coll, S.lsm), 2n);
      coll.variables.get('deny_lsm')!.set(1);
      assert.throws(() => mkdirSync(join(dir, 'denied')), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EPERM');
      links[0]!.close();
      mkdirs(dir, 1);
      assert.equal(hits(coll, S.lsm), 3n, 'detached: mkdir works and nothing is counted');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeAll(coll, links);
    }
  });
});

describe('tp_btf', () => {
  it('sys_enter sees this process\'s system calls until close (or the load fails clearly)', kernelTest, async (t) => {
    if (!path(t, 'tp_btf (program type tracing)', haveProgramType('tracing'))) {
      await assert.rejects(loadHooks(['tp_btf_sys_enter']), NotSupportedError);
      return;
    }
    const coll = await loadHooks(['tp_btf_sys_enter']);
    const dir = scratch();
    const links: Link[] = [];
    try {
      links.push(attach(coll.programs.get('tp_btf_sys_enter')!));
      const info = links[0]!.info();
      assert.equal(info.type, 'raw_tracepoint');
      assert.equal(info.tracepoint, 'sys_enter');
      mkdirs(dir, 3);
      assert.ok(hits(coll, S.tpBtf) >= 6n, `3 mkdir and 3 rmdir calls at least (got ${hits(coll, S.tpBtf)})`);
      links[0]!.close();
      const after = hits(coll, S.tpBtf);
      mkdirs(dir, 2);
      assert.equal(hits(coll, S.tpBtf), after, 'nothing after close');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await closeAll(coll, links);
    }
  });
});
