/**
 * `bpfkit execsnoop` and `bpfkit readline` command lines, without a kernel: defaults, every flag,
 * and bad input that names the flag and the value. Also the privilege check's message.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { COMM_MAX, kernelComm, parseExecsnoopArgs, parseUid, type ExecsnoopOptions } from '../../src/tools/execsnoop/options.js';
import { effectiveCapabilities, missingTracingCaps, requireTracingPrivileges } from '../../src/tools/common/privileges.js';
import { PrivilegeError, UsageError } from '../../src/tools/common/runtime.js';
import { rodataFor } from '../../src/tools/execsnoop/tool.js';
import { parseReadlineArgs } from '../../src/tools/readline/options.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nbroken:x:abc:1::/:/bin/sh\n';

function parse(args: string[]): ExecsnoopOptions {
  const r = parseExecsnoopArgs(args, PASSWD);
  assert.notEqual(r, 'help');
  return r as ExecsnoopOptions;
}

function usageError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, `a UsageError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

describe('execsnoop options', () => {
  it('defaults: leaders only, no filters, table, auto hook', () => {
    assert.deepEqual(parse([]), {
      ret: false, threads: false, comm: undefined, pid: undefined, uid: undefined, json: false, hook: 'auto', verbose: false, ringbufSize: undefined, notes: [],
    });
    assert.equal(parseExecsnoopArgs(['--help']), 'help');
    assert.equal(parseExecsnoopArgs(['-h']), 'help');
  });

  it('every flag', () => {
    const o = parse(['--ret', '--threads', '--comm', 'bash', '--pid', '42', '--uid', '1000', '--json', '--hook', 'tracepoint', '-v', '--ringbuf-size', '4M']);
    assert.deepEqual(o, { ret: true, threads: true, comm: 'bash', pid: 42, uid: 1000, json: true, hook: 'tracepoint', verbose: true, ringbufSize: 4 << 20, notes: [] });
    assert.equal(parse(['--hook=kprobe']).hook, 'kprobe');
    assert.equal(parse(['--uid', 'nobody']).uid, 65534);
    assert.equal(parse(['--uid', 'root']).uid, 0);
    assert.equal(parse(['--uid=0']).uid, 0);
  });

  it('unknown flags, stray arguments and missing values are named', () => {
    usageError(() => parse(['--bogus']), /^unknown option --bogus$/);
    usageError(() => parse(['-x']), /^unknown option -x$/);
    usageError(() => parse(['extra']), /unexpected argument "extra"/);
    usageError(() => parse(['--pid']), /^--pid needs a value$/);
    usageError(() => parse(['--json=yes']), /^--json takes no value$/);
  });

  it('bad values name the flag and the value', () => {
    usageError(() => parse(['--pid', 'abc']), /^--pid: "abc" is not a number$/);
    usageError(() => parse(['--pid', '0']), /^--pid: 0 is out of range/);
    usageError(() => parse(['--pid', '99999999']), /^--pid: 99999999 is out of range \(1 to 4194304\)$/);
    usageError(() => parse(['--pid', '-3']), /--pid/);
    usageError(() => parse(['--uid', 'ghost']), /^--uid: no user named "ghost" in \/etc\/passwd/);
    usageError(() => parse(['--ringbuf-size', 'big']), /^--ringbuf-size: "big" is not a size \(bytes, or with K, M or G: 256K, 4M\)$/);
    usageError(() => parse(['--ringbuf-size', '3M']), /^--ringbuf-size: 3M is not a power of two from 4K to 1G .*try 1M, 4M, 16M$/);
    usageError(() => parse(['--ringbuf-size', '2048']), /^--ringbuf-size: 2048 is not a power of two/);
    usageError(() => parse(['--ringbuf-size', '2G']), /^--ringbuf-size: 2G is not a power of two from 4K to 1G/);
    usageError(() => parse(['--uid', 'broken']), /no user named "broken"/);
    usageError(() => parse(['--uid', 'a b']), /^--uid: "a b" is neither a uid nor a user name$/);
    usageError(() => parse(['--uid', '4294967295']), /^--uid: 4294967295 is out of range/);
    usageError(() => parse(['--hook', 'fentry']), /^--hook: "fentry" is not one of auto, kprobe, tracepoint$/);
    usageError(() => parse(['--comm', '']), /^--comm: the command name is empty$/);
  });

  it('--comm is cut to the 15 bytes the kernel keeps, on a character boundary, with a note', () => {
    const o = parse(['--comm', 'systemd-journald']);
    assert.equal(o.comm, 'systemd-journal');
    assert.equal(o.notes.length, 1);
    assert.match(o.notes[0]!, /keeps 15 bytes.*"systemd-journal"/);
    assert.deepEqual(kernelComm('bash'), { comm: 'bash', cut: false });
    const k = kernelComm('ééééééééé'); // 2 bytes each: 7 fit
    assert.equal(k.comm, 'ééééééé');
    assert.ok(new TextEncoder().encode(k.comm).length <= COMM_MAX);
  });

  it('parseUid reads the passwd text it is given', () => {
    assert.equal(parseUid('nobody', PASSWD), 65534);
    assert.equal(parseUid(' 7 ', PASSWD), 7);
  });

  it('rodataFor: the program settings for the options', () => {
    const r = rodataFor(parse(['--ret', '--comm', 'bash', '--uid', '0', '--pid', '9']));
    assert.equal(r.wantRet, 1);
    assert.equal(r.traceThreads, 0);
    assert.equal(r.filterPid, 9);
    assert.equal(r.filterUidOn, 1);
    assert.equal(r.filterUid, 0);
    assert.equal(r.filterCommOn, 1);
    assert.equal(r.filterComm?.length, 16);
    assert.deepEqual([...r.filterComm!.subarray(0, 5)], [98, 97, 115, 104, 0]);
    const none = rodataFor(parse([]));
    assert.equal(none.filterUidOn, 0);
    assert.equal(none.filterCommOn, 0);
    assert.equal(none.filterPid, 0);
  });
});

describe('readline options', () => {
  it('defaults, flags and bad input', () => {
    assert.deepEqual(parseReadlineArgs([]), { binary: undefined, pid: undefined, json: false, verbose: false, ringbufSize: undefined });
    assert.deepEqual(parseReadlineArgs(['--binary', '/bin/bash', '--pid', '5', '--json', '--verbose', '--ringbuf-size=64k']),
      { binary: '/bin/bash', pid: 5, json: true, verbose: true, ringbufSize: 65536 });
    usageError(() => parseReadlineArgs(['--ringbuf-size', '0']), /^--ringbuf-size: 0 is not a power of two/);
    assert.equal(parseReadlineArgs(['-h']), 'help');
    usageError(() => parseReadlineArgs(['--lines']), /^unknown option --lines$/);
    usageError(() => parseReadlineArgs(['--pid', 'me']), /^--pid: "me" is not a number$/);
    usageError(() => parseReadlineArgs(['--pid', '0']), /^--pid: 0 is out of range/);
    usageError(() => parseReadlineArgs(['--binary', ' ']), /^--binary: the path is empty$/);
    usageError(() => parseReadlineArgs(['--binary']), /^--binary needs a value$/);
  });
});

describe('tracing privileges', () => {
  const CAP_SYS_ADMIN = 1n << 21n;
  const CAP_PERFMON = 1n << 38n;
  const CAP_BPF = 1n << 39n;

  it('needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN', () => {
    assert.deepEqual(missingTracingCaps(0n), ['CAP_BPF', 'CAP_PERFMON']);
    assert.deepEqual(missingTracingCaps(CAP_BPF), ['CAP_PERFMON']);
    assert.deepEqual(missingTracingCaps(CAP_PERFMON), ['CAP_BPF']);
    assert.deepEqual(missingTracingCaps(CAP_BPF | CAP_PERFMON), []);
    assert.deepEqual(missingTracingCaps(CAP_SYS_ADMIN), []);
    assert.deepEqual(missingTracingCaps(undefined), [], 'unknown: let the kernel decide');
  });

  it('reads CapEff from /proc/self/status text', () => {
    assert.equal(effectiveCapabilities('Name:\tnode\nCapEff:\t000001ffffffffff\n'), 0x1ffffffffffn);
    assert.equal(effectiveCapabilities('Name:\tnode\n'), undefined);
  });

  it('the message names both capabilities, root, and how to run the tool', () => {
    assert.throws(() => requireTracingPrivileges('execsnoop', 'to trace', 0n, 65534), (e: unknown) => {
      assert.ok(e instanceof PrivilegeError);
      assert.equal(e.code, 'ERR_BPFKIT_PRIVILEGE');
      assert.match(e.message, /^execsnoop needs CAP_BPF and CAP_PERFMON \(in practice: root\) to trace; this process \(uid 65534\) does not have them\. Run it as root: sudo npx bpfkit execsnoop$/);
      return true;
    });
    assert.throws(() => requireTracingPrivileges('readline', 'to trace', CAP_BPF, 0), /runs as root but without CAP_PERFMON/);
    requireTracingPrivileges('readline', 'to trace', CAP_BPF | CAP_PERFMON, 1000);
  });
});
