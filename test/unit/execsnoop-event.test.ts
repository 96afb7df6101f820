/**
 * execsnoop's events without a kernel: records made with the generated encoders
 * (cut the way the BPF programs cut them) decoded into records, truncation markers, the table and
 * JSON output, and text from other processes made safe for a terminal.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ARGS_OFFSET, EXEC_EVENT_SIZE, EXEC_F, argsOf, decodeRecord, jsonLine, retText, tableHeader, tableRow, toRecord, type ExecRecord,
} from '../../src/tools/execsnoop/event.js';
import { encodeExecEvent, type ExecEvent } from '../../src/tools/execsnoop/gen/execsnoop.js';
import { clockTime, cStringOf, monotonicToDate, shellQuote, terminalSafe } from '../../src/tools/common/format.js';

const enc = new TextEncoder();

function bytes(s: string, size: number): Uint8Array {
  const b = new Uint8Array(size);
  b.set(enc.encode(s).subarray(0, size));
  return b;
}

/** A ring buffer record as the program sends it: the struct with args[] cut to args_size. */
function execRecord(fields: { args: string[]; truncated?: number; fault?: number; flags?: number; filename?: string; comm?: string; ret?: number; pid?: number }): Uint8Array {
  const argBytes = fields.args.map((a) => [...enc.encode(a), 0]).flat();
  const args = new Uint8Array(2560);
  args.set(argBytes);
  const ev: ExecEvent = {
    ktime_ns: 123n, pid: fields.pid ?? 4242, tid: fields.pid ?? 4242, ppid: 1, uid: 1000, gid: 1000, ret: fields.ret ?? 0,
    flags: fields.flags ?? 0, args_count: fields.args.length, args_truncated: fields.truncated ?? 0, args_size: argBytes.length, args_fault: fields.fault ?? 0,
    comm: bytes(fields.comm ?? 'bash', 16), filename: bytes(fields.filename ?? '/usr/bin/ls', 256), args,
  };
  return encodeExecEvent(ev).subarray(0, ARGS_OFFSET + argBytes.length);
}

const T = new Date(2026, 10, 21, 9, 5, 7, 250);

describe('execsnoop events', () => {
  it('the layout constants match the generated struct', () => {
    const args = new Uint8Array(2560);
    args[0] = 0xab;
    const full = encodeExecEvent({
      ktime_ns: 0n, pid: 0, tid: 0, ppid: 0, uid: 0, gid: 0, ret: 0, flags: 0, args_count: 0, args_truncated: 0, args_size: 0, args_fault: 0,
      comm: new Uint8Array(16), filename: new Uint8Array(256), args,
    });
    assert.equal(full.length, EXEC_EVENT_SIZE);
    assert.equal(full[ARGS_OFFSET], 0xab);
    assert.equal(full.indexOf(0xab), ARGS_OFFSET);
  });

  it('decodes a record cut after its arguments', () => {
    const raw = execRecord({ args: ['ls', '-la', 'two words', ''] });
    assert.ok(raw.length < EXEC_EVENT_SIZE);
    const e = decodeRecord(raw);
    const r = toRecord(e, T);
    assert.equal(r.pid, 4242);
    assert.equal(r.ppid, 1);
    assert.equal(r.uid, 1000);
    assert.equal(r.comm, 'bash');
    assert.equal(r.filename, '/usr/bin/ls');
    assert.deepEqual(r.args, ['ls', '-la', 'two words', '']);
    assert.equal(r.truncated, false);
    assert.equal(r.execveat, false);
    assert.equal(r.fault, false);
  });

  it('a shorter record after a longer one does not show the old bytes', () => {
    decodeRecord(execRecord({ args: ['a-very-long-argument-indeed', 'more', 'and more'] }));
    const r = toRecord(decodeRecord(execRecord({ args: ['x'] })), T);
    assert.deepEqual(r.args, ['x']);
  });

  it('refuses a record shorter than the header', () => {
    assert.throws(() => decodeRecord(new Uint8Array(100)), RangeError);
  });

  it('marks cut arguments, more arguments and a cut filename with "..."', () => {
    const long = 'y'.repeat(127);
    const raw = execRecord({
      args: Array.from({ length: 20 }, (_, i) => (i === 2 ? long : `a${i}`)),
      truncated: 1 << 2,
      flags: EXEC_F.MORE_ARGS | EXEC_F.FILENAME_TRUNCATED,
      filename: `/${'d'.repeat(254)}`,
    });
    const r = toRecord(decodeRecord(raw), T);
    assert.equal(r.args.length, 21);
    assert.equal(r.args[2], `${long}...`);
    assert.equal(r.args[20], '...');
    assert.equal(r.filename, `/${'d'.repeat(254)}...`);
    assert.equal(r.truncated, true);
    const json = JSON.parse(jsonLine(r, { ret: false, threads: false }));
    assert.equal(json.truncated, true);
  });

  it('what the probe could not read is null (JSON) and a bare ? (table); the rest is kept', () => {
    const r = toRecord(decodeRecord(execRecord({ args: ['', 'tag', '?'], fault: 1 << 0, flags: EXEC_F.FILENAME_FAULT, filename: '' })), T);
    assert.equal(r.filename, null);
    assert.deepEqual(r.args, [null, 'tag', '?']);
    assert.equal(r.fault, true);
    const j = JSON.parse(jsonLine(r, { ret: false, threads: false }));
    assert.equal(j.filename, null);
    assert.deepEqual(j.args, [null, 'tag', '?']);
    assert.match(tableRow(r, { ret: false, threads: false }), / \? +\? tag '\?'\n$/);
  });

  it('execveat and faults are flagged', () => {
    const r = toRecord(decodeRecord(execRecord({ args: [], flags: EXEC_F.EXECVEAT | EXEC_F.ARGS_FAULT })), T);
    assert.equal(r.execveat, true);
    assert.equal(r.fault, true);
    assert.deepEqual(r.args, []);
  });

  it('argsOf never reads past args_size', () => {
    const e = decodeRecord(execRecord({ args: ['one', 'two'] }));
    const lying = { ...e, args_count: 9 };
    assert.deepEqual(argsOf(lying), ['one', 'two', '']);
  });

  it('return values for people', () => {
    assert.equal(retText(0), '0');
    assert.equal(retText(-2), 'ENOENT');
    assert.equal(retText(-13), 'EACCES');
    assert.equal(retText(-8), 'ENOEXEC');
    assert.equal(retText(-999), '-999');
  });

  it('JSON: the fields in order, ret only with --ret, tid only with --threads', () => {
    const r = toRecord(decodeRecord(execRecord({ args: ['ls'], ret: -2 })), T);
    const plain = jsonLine(r, { ret: false, threads: false });
    assert.ok(plain.endsWith('\n'));
    assert.deepEqual(Object.keys(JSON.parse(plain)), ['time', 'pid', 'ppid', 'uid', 'comm', 'filename', 'args']);
    assert.equal(JSON.parse(plain).time, T.toISOString());
    const withRet = JSON.parse(jsonLine(r, { ret: true, threads: true }));
    assert.deepEqual(Object.keys(withRet), ['time', 'pid', 'tid', 'ppid', 'uid', 'comm', 'filename', 'args', 'ret']);
    assert.equal(withRet.ret, -2);
  });

  it('table: a header and rows whose columns line up', () => {
    const o = { ret: true, threads: false };
    const header = tableHeader(o);
    const r = toRecord(decodeRecord(execRecord({ args: ['ls', 'a b'], ret: -2 })), T);
    const row = tableRow(r, o);
    assert.match(header, /^TIME +PID +PPID +UID +COMM +RET +FILENAME +ARGS\n$/);
    for (const col of ['PID', 'PPID', 'UID', 'COMM', 'RET', 'FILENAME', 'ARGS']) {
      const at = header.indexOf(col);
      assert.notEqual(row[at - 1], undefined);
      assert.equal(row[at - 1], ' ', `column ${col} starts after a blank in the row`);
      assert.notEqual(row[at], ' ', `column ${col} has a value where its header is`);
    }
    assert.ok(row.startsWith(`${clockTime(T)} `));
    assert.match(row, / ENOENT +\/usr\/bin\/ls +ls 'a b'\n$/);
    const noRet = tableHeader({ ret: false, threads: false });
    assert.doesNotMatch(noRet, /RET/);
    assert.match(tableHeader({ ret: false, threads: true }), /PID +TID +PPID/);
  });

  it('table: control characters from the traced process are escaped, never sent raw', () => {
    const r: ExecRecord = {
      ...toRecord(decodeRecord(execRecord({ args: ['echo', '\x1b[31mred', "it's"], comm: 'ev\x07il', filename: '/tmp/a\nb' })), T),
    };
    const row = tableRow(r, { ret: false, threads: false });
    assert.doesNotMatch(row.slice(0, -1), /[\x00-\x1f\x7f]/);
    assert.match(row, /ev\\x07il/);
    assert.match(row, /\/tmp\/a\\nb/);
    assert.match(row, /echo \$'\\e\[31mred' 'it'\\''s'/);
  });
});

describe('text from other processes', () => {
  it('shellQuote', () => {
    assert.equal(shellQuote('plain-arg_1.txt'), 'plain-arg_1.txt');
    assert.equal(shellQuote(''), "''");
    assert.equal(shellQuote('a b'), "'a b'");
    assert.equal(shellQuote("it's"), "'it'\\''s'");
    assert.equal(shellQuote('$HOME'), "'$HOME'");
    assert.equal(shellQuote('tab\there'), "$'tab\\there'");
    assert.equal(shellQuote("q'\n"), "$'q\\'\\n'");
  });

  it('terminalSafe escapes controls, bidi overrides and backslashes', () => {
    assert.equal(terminalSafe('hello'), 'hello');
    assert.equal(terminalSafe('a\\b'), 'a\\\\b');
    assert.equal(terminalSafe('\x1b]0;title\x07'), '\\e]0;title\\x07');
    assert.equal(terminalSafe('x\u202ey'), 'x\\u202ey');
    assert.equal(terminalSafe('\u009b'), '\\x9b');
    assert.equal(terminalSafe('naïve ✓'), 'naïve ✓');
  });

  it('cStringOf stops at the NUL and survives invalid UTF-8', () => {
    assert.equal(cStringOf(Uint8Array.from([0x61, 0x62, 0, 0x63])), 'ab');
    assert.equal(cStringOf(Uint8Array.from([0x61, 0xff])), 'a\ufffd');
  });

  it('monotonicToDate: a kernel timestamp as wall-clock time', () => {
    const now = 1_800_000_000_000;
    const mono = 5_000_000_000n;
    assert.equal(monotonicToDate(mono - 250_000_000n, now, mono).getTime(), now - 250);
    assert.equal(monotonicToDate(mono, now, mono).getTime(), now);
    const real = monotonicToDate(process.hrtime.bigint());
    assert.ok(Math.abs(real.getTime() - Date.now()) < 1000);
  });
});
