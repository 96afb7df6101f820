/**
 * readline's events without a kernel: records made with the generated encoder, cut after the
 * line the way the BPF program sends them, decoded; the truncation marker; table and JSON output.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clockTime } from '../../src/tools/common/format.js';
import * as rl from '../../src/tools/readline/event.js';
import { encodeReadlineEvent } from '../../src/tools/readline/gen/readline.js';

const enc = new TextEncoder();
const T = new Date(2026, 10, 21, 9, 5, 7, 250);

function bytes(s: string, size: number): Uint8Array {
  const b = new Uint8Array(size);
  b.set(enc.encode(s).subarray(0, size));
  return b;
}

describe('readline events', () => {
  function lineRecord(line: string, flags = 0): Uint8Array {
    const body = enc.encode(line);
    const ev = encodeReadlineEvent({
      ktime_ns: 1n, pid: 777, tid: 777, uid: 0, flags, comm: bytes('bash', 16), line: (() => { const b = new Uint8Array(1024); b.set(body.subarray(0, 1023)); return b; })(),
    });
    return ev.subarray(0, rl.LINE_OFFSET + Math.min(body.length, 1023) + 1);
  }

  it('decodes a record cut after the line', () => {
    rl.decodeLineRecord(lineRecord('a much longer line than the next one'));
    const r = rl.toLineRecord(rl.decodeLineRecord(lineRecord('echo hi')), T);
    assert.deepEqual({ ...r, time: r.time.getTime() }, { time: T.getTime(), pid: 777, uid: 0, comm: 'bash', line: 'echo hi', truncated: false });
    assert.throws(() => rl.decodeLineRecord(new Uint8Array(10)), RangeError);
  });

  it('a cut line ends with "..."', () => {
    const r = rl.toLineRecord(rl.decodeLineRecord(lineRecord('z'.repeat(2000), rl.READLINE_F_TRUNCATED)), T);
    assert.equal(r.line, `${'z'.repeat(1023)}...`);
    assert.equal(r.truncated, true);
    assert.equal(JSON.parse(rl.jsonLine(r)).truncated, true);
  });

  it('table and JSON', () => {
    const r = rl.toLineRecord(rl.decodeLineRecord(lineRecord('printf "\x1b[2J"')), T);
    assert.match(rl.tableHeader(), /^TIME +PID +LINE\n$/);
    const row = rl.tableRow(r);
    assert.equal(row, `${clockTime(T)} 777     printf "\\e[2J"\n`);
    assert.equal(row.indexOf('777'), rl.tableHeader().indexOf('PID'));
    const j = JSON.parse(rl.jsonLine(r));
    assert.deepEqual(Object.keys(j), ['time', 'pid', 'uid', 'comm', 'line']);
    assert.equal(j.line, 'printf "\x1b[2J"');
    assert.equal(rl.tableRow(rl.toLineRecord(rl.decodeLineRecord(lineRecord('')), T)), `${clockTime(T)} 777\n`);
  });
});
