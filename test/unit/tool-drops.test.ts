/**
 * How the tracing tools report lost events (src/tools/common/drops.ts): what is new at each check,
 * as a stderr line or a JSON record, and the totals with what helps at exit.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DropReporter, formatSize, parseRingbufSize } from '../../src/tools/common/drops.js';

function capture(): { io: { out(t: string): void; err(t: string): void }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t) => void out.push(t), err: (t) => void err.push(t) }, out, err };
}

const REASONS = [
  { name: 'ringbuf_full', why: 'the ring buffer was full', hint: 'try --ringbuf-size 4M (now 1M)' },
  { name: 'inflight_full', why: 'too many waiting' },
];

describe('tool drop reports', () => {
  it('text mode: a stderr line per reason with new drops, then the totals with the hint', () => {
    let totals: Record<string, bigint> = {};
    const c = capture();
    const r = new DropReporter('execsnoop', 'events', REASONS, () => totals, c.io, false);
    r.check();
    assert.deepEqual(c.err, []);
    totals = { ringbuf_full: 5n, inflight_full: 0n };
    r.check();
    r.check();
    totals = { ringbuf_full: 12n, inflight_full: 2n };
    r.check();
    assert.deepEqual(c.err, [
      'execsnoop: 5 events lost: the ring buffer was full\n',
      'execsnoop: 7 events lost: the ring buffer was full\n',
      'execsnoop: 2 events lost: too many waiting\n',
    ]);
    assert.deepEqual(c.out, []);
    c.err.length = 0;
    r.summary();
    assert.deepEqual(c.err, [
      'execsnoop: 12 events lost in total: the ring buffer was full; try --ringbuf-size 4M (now 1M)\n',
      'execsnoop: 2 events lost in total: too many waiting\n',
    ]);
    assert.deepEqual(r.totals, { ringbuf_full: 12n, inflight_full: 2n });
  });

  it('--json mode: lost records on stdout, the summary on stderr; nothing when nothing was lost', () => {
    let totals: Record<string, bigint> = {};
    const c = capture();
    const r = new DropReporter('readline', 'lines', REASONS.slice(0, 1), () => totals, c.io, true);
    r.summary();
    assert.deepEqual(c.err, []);
    totals = { ringbuf_full: 3n };
    r.check(new Date('2026-12-07T18:00:00Z'));
    assert.deepEqual(c.out.map((l) => JSON.parse(l)), [{ time: '2026-12-07T18:00:00.000Z', lost: 3, reason: 'ringbuf_full' }]);
    assert.deepEqual(c.err, []);
    r.summary();
    assert.deepEqual(c.err, ['readline: 3 lines lost in total: the ring buffer was full; try --ringbuf-size 4M (now 1M)\n']);
  });

  it('--ringbuf-size takes bytes or K, M, G, powers of two from 4K to 1G', () => {
    assert.equal(parseRingbufSize('4096'), 4096);
    assert.equal(parseRingbufSize('256K'), 256 << 10);
    assert.equal(parseRingbufSize('4m'), 4 << 20);
    assert.equal(parseRingbufSize('1G'), 1 << 30);
    assert.equal(parseRingbufSize('16MiB'), 16 << 20);
    assert.deepEqual([4096, 65536, 1 << 20, 3 << 20, 1 << 30, 1000].map(formatSize), ['4K', '64K', '1M', '3M', '1G', '1000']);
  });
});
