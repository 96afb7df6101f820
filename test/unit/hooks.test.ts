/**
 * Hook support without a kernel: glob patterns of multi-probe sections, section conventions,
 * NotSupportedError wording (who lacks the feature), and the hook probes' decisions and caching
 * against a scripted bpf() (the errno each kernel kind answers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globMatch, isGlob } from '../../src/link/glob.js';
import { matchSection } from '../../src/spec/section-names.js';
import { BpfSyscallError, NotSupportedError } from '../../src/errors.js';
import { haveKprobeMulti, haveKprobeSession, haveTcx, haveUprobeMulti, hookSupport, resetHookProbeCache } from '../../src/kernel/features.js';
import { setNative, type Native } from '../../src/sys/native.js';

test('glob patterns match as libbpf matches symbol names', () => {
  assert.equal(isGlob('tcp_v4_connect'), false);
  assert.equal(isGlob('tcp_*'), true);
  assert.equal(isGlob('do_mkdira?'), true);
  const yes: [string, string][] = [
    ['tcp_v4_connect', 'tcp_*'], ['tcp_v4_connect', '*connect'], ['tcp_v4_connect', '*v4*'], ['do_mkdirat', 'do_mkdira?'],
    ['a', '*'], ['', '*'], ['abc', 'a*b*c'], ['aXbYc', 'a*b*c'], ['abcbc', '*bc'], ['x', '?'], ['exact', 'exact'],
  ];
  const no: [string, string][] = [
    ['tcp_v4_connect', 'udp_*'], ['do_mkdirat', 'do_mkdir?'], ['abc', 'a*b*d'], ['', '?'], ['xy', '?'], ['exact', 'exac'], ['exac', 'exact'],
  ];
  for (const [n, p] of yes) assert.equal(globMatch(n, p), true, `${n} ~ ${p}`);
  for (const [n, p] of no) assert.equal(globMatch(n, p), false, `${n} !~ ${p}`);
  // Many stars do not blow up (one backtrack point at a time).
  assert.equal(globMatch('a'.repeat(200), `${'*a'.repeat(50)}b`), false);
});

test('multi-probe and session sections carry their attach types', () => {
  const cases: [string, string, string, string][] = [
    ['kprobe.multi/tcp_*', 'trace_kprobe_multi', 'kprobe_multi', 'tcp_*'],
    ['kretprobe.multi/do_mkdirat', 'trace_kprobe_multi', 'kretprobe_multi', 'do_mkdirat'],
    ['kprobe.session/do_mkdirat', 'trace_kprobe_session', 'kprobe_multi', 'do_mkdirat'],
    ['uprobe.multi//usr/bin/bash:read*', 'trace_uprobe_multi', 'uprobe_multi', '/usr/bin/bash:read*'],
    ['uretprobe.multi', 'trace_uprobe_multi', 'uretprobe_multi', ''],
    ['uprobe.session/libc.so.6:malloc', 'trace_uprobe_session', 'uprobe_multi', 'libc.so.6:malloc'],
    ['uprobe.session.s/libc.so.6:malloc', 'trace_uprobe_session', 'uprobe_multi', 'libc.so.6:malloc'],
  ];
  for (const [sec, attachType, kind, target] of cases) {
    const m = matchSection(sec);
    assert.ok(m, sec);
    assert.equal(m.def.attachType, attachType, sec);
    assert.equal(m.def.attach, kind, sec);
    assert.equal(m.target, target, sec);
  }
  assert.equal(matchSection('uprobe.session.s/x:y')!.def.sleepable, true);
  assert.equal(matchSection('kprobe/do_mkdirat')!.def.attachType, undefined, 'plain kprobes load without an attach type');
});

test('NotSupportedError says whether the kernel or bpfkit lacks the feature, and since when', () => {
  const k = new NotSupportedError('kprobe.multi', 'the kernel was built without CONFIG_FPROBE', '5.18');
  assert.equal(k.message, 'kprobe.multi is not supported by this kernel (requires Linux 5.18 or later): the kernel was built without CONFIG_FPROBE');
  assert.equal(k.lackedBy, 'kernel');
  assert.equal(k.code, 'ERR_BPFKIT_NOT_SUPPORTED');
  const b = new NotSupportedError('auto-attaching program x (section foo)', 'bpfkit has no attach support for netkit programs yet', undefined, { lackedBy: 'bpfkit' });
  assert.match(b.message, /^auto-attaching program x \(section foo\) is not supported by bpfkit \(not a kernel limitation\): bpfkit has no/);
  assert.equal(b.lackedBy, 'bpfkit');
});

const PROG_LOAD = 5;
const LINK_CREATE = 28;

/** A bpf() that loads every probe program (fd 40) and answers BPF_LINK_CREATE with `link`. */
function scripted(link: () => number): { native: Native; linkCalls: number[] } {
  const linkCalls: number[] = [];
  const native = {
    bpf(cmd: number, attr: Uint8Array) {
      if (cmd === PROG_LOAD) return 40;
      if (cmd === LINK_CREATE) {
        linkCalls.push(new DataView(attr.buffer, attr.byteOffset).getUint32(8, true));
        return link();
      }
      return -22;
    },
    close() { return 0; },
  } as unknown as Native;
  return { native, linkCalls };
}

function withNative<T>(n: Native, fn: () => T): T {
  resetHookProbeCache();
  const prev = setNative(n);
  try {
    return fn();
  } finally {
    setNative(prev);
    resetHookProbeCache();
  }
}

test('kprobe_multi probe: ESRCH for a missing function means yes, EOPNOTSUPP means no CONFIG_FPROBE; both cached', () => {
  const yes = scripted(() => -3);
  withNative(yes.native, () => {
    assert.equal(haveKprobeMulti(), true);
    assert.equal(haveKprobeMulti(), true);
    assert.equal(hookSupport('kprobe_multi'), undefined);
    assert.deepEqual(yes.linkCalls, [42], 'one BPF_LINK_CREATE with BPF_TRACE_KPROBE_MULTI (42), then the cached answer');
  });
  const stub = scripted(() => -95);
  withNative(stub.native, () => {
    assert.equal(haveKprobeMulti(), false);
    const e = hookSupport('kprobe_multi');
    assert.ok(e instanceof NotSupportedError);
    assert.match(e.message, /not supported by this kernel \(requires Linux 5\.18 or later\): the kernel was built without CONFIG_FPROBE/);
    assert.equal(haveKprobeSession(), false);
    assert.match(hookSupport('kprobe_session')!.message, /requires Linux 6\.10 or later/);
    assert.deepEqual(stub.linkCalls, [42, 56], 'the session probe uses BPF_TRACE_KPROBE_SESSION (56)');
  });
});

test('uprobe_multi probe: EBADF for a directory means yes; tcx probe: ENODEV for ifindex 0 means yes, EINVAL no', () => {
  withNative(scripted(() => -9).native, () => assert.equal(haveUprobeMulti(), true));
  withNative(scripted(() => -19).native, () => assert.equal(haveTcx(), true));
  withNative(scripted(() => -22).native, () => assert.equal(haveTcx(), false));
});

test('EPERM without root is inconclusive: thrown, not cached; as root it is an answer', () => {
  const real = process.geteuid;
  const fake = scripted(() => -1);
  try {
    process.geteuid = () => 1000;
    withNative(fake.native, () => {
      assert.throws(() => haveKprobeMulti(), (e: unknown) => e instanceof BpfSyscallError && /run as root/.test(e.message));
      assert.throws(() => haveKprobeMulti(), BpfSyscallError);
      assert.equal(fake.linkCalls.length, 2, 'asked again');
    });
    process.geteuid = () => 0;
    withNative(fake.native, () => assert.equal(typeof haveKprobeMulti(), 'boolean'));
  } finally {
    process.geteuid = real;
  }
});
