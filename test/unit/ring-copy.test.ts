/**
 * The pieces the ring buffer and perf readers share for copying records out of a ring
 * (src/readers/ring-copy.ts): slabs that copies are carved from, and u64 ring positions read and written
 * through their low 32 bits.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RingPosition, Slab, SLAB_SIZE } from '../../src/readers/ring-copy.js';

const TWO_32 = 2 ** 32;

describe('Slab', () => {
  test('is 64 KiB, and a fresh one has all of it free at either phase', () => {
    assert.equal(SLAB_SIZE, 64 * 1024);
    const slab = new Slab();
    assert.equal(slab.buffer.byteLength, SLAB_SIZE);
    assert.equal(slab.bytes.buffer, slab.buffer);
    assert.equal(slab.words.buffer, slab.buffer);
    assert.equal(slab.words.length, SLAB_SIZE / 4);
    assert.equal(slab.pos, 0);
    assert.equal(slab.room(0), SLAB_SIZE);
    assert.equal(slab.room(4), SLAB_SIZE - 4);
  });

  test('take() returns offsets that keep the phase modulo 8, do not overlap and stay inside the slab', () => {
    const slab = new Slab();
    assert.equal(slab.take(10, 0), 0);
    assert.equal(slab.pos, 10);
    assert.equal(slab.take(8, 0), 16, 'rounded up to the next multiple of 8');
    assert.equal(slab.take(12, 4), 28, 'the next offset that is 4 modulo 8');
    assert.equal(slab.take(8, 4), 44, 'already at the phase: no gap');
    assert.equal(slab.room(0), SLAB_SIZE - 56);
    assert.equal(slab.room(4), SLAB_SIZE - 52, 'pos 52 is already 4 modulo 8');

    // A long run of random takes, each as big as room() allows at most.
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 50; round++) {
      const s = new Slab();
      let end = 0;
      for (;;) {
        const phase = rand(2) * 4;
        const room = s.room(phase);
        const n = 1 + rand(3000);
        if (n > room) {
          // What is left is exactly room(phase): taking it fills the slab to the byte.
          if (room > 0) {
            const at = s.take(room, phase);
            assert.equal(at + room, SLAB_SIZE);
          }
          break;
        }
        const at = s.take(n, phase);
        assert.equal(at % 8, phase, `phase ${phase}`);
        assert.ok(at >= end, 'does not overlap the bytes taken before');
        assert.ok(at - end < 8, 'wastes less than 8 bytes');
        assert.ok(at + n <= SLAB_SIZE);
        end = at + n;
        assert.equal(s.pos, end);
      }
    }
  });

  test('a full slab has no room; renew() starts a new buffer and leaves views into the old one alone', () => {
    const slab = new Slab();
    const at = slab.take(SLAB_SIZE, 0);
    assert.equal(at, 0);
    assert.ok(slab.room(0) <= 0);
    assert.ok(slab.room(4) <= 0);
    slab.bytes.fill(0xab);
    const oldBuffer = slab.buffer;
    const view = new Uint8Array(slab.buffer, 100, 50);

    slab.renew();
    assert.notEqual(slab.buffer, oldBuffer, 'a new buffer, not the old one reused');
    assert.equal(slab.buffer.byteLength, SLAB_SIZE);
    assert.equal(slab.bytes.buffer, slab.buffer);
    assert.equal(slab.words.buffer, slab.buffer);
    assert.equal(slab.pos, 0);
    assert.equal(slab.room(0), SLAB_SIZE);
    slab.bytes.fill(0x11);
    slab.words.fill(-1);
    assert.ok(view.every((b) => b === 0xab), 'the old copy is intact');
    assert.equal(view.buffer, oldBuffer);
    assert.ok(slab.bytes.every((b) => b === 0xff), 'bytes and words view the same new buffer');
  });
});

describe('RingPosition', () => {
  /** A u64 at byte 8 of a 24-byte buffer, with guard words around it. */
  function cell(value: number): { buffer: ArrayBuffer; big: BigUint64Array } {
    const buffer = new ArrayBuffer(24);
    const big = new BigUint64Array(buffer);
    big[0] = 0x1111111111111111n;
    big[1] = BigInt(value);
    big[2] = 0x2222222222222222n;
    return { buffer, big };
  }

  test('load() reads the whole u64 exactly', () => {
    for (const v of [0, 8, TWO_32 - 8, TWO_32, TWO_32 + 8, 5 * TWO_32 + 123456, 2 ** 52 + 8]) {
      const { buffer, big } = cell(v);
      const p = new RingPosition(buffer, 8, 4096);
      assert.equal(p.load(), v);
      big[1] = BigInt(v + 4096);
      assert.equal(p.load(), v + 4096);
    }
  });

  test('loadFrom(near) finds positions up to maxAhead beyond near, across a change of the upper half', () => {
    const ahead = 1 << 20;
    const cases: [near: number, value: number][] = [
      [0, 0], [0, 24], [100, 100 + ahead],
      [TWO_32 - 16, TWO_32 + 8], // the upper half changed since near
      [TWO_32 - 16, TWO_32 - 16],
      [3 * TWO_32 - 8, 3 * TWO_32 + ahead - 8],
      [2 ** 52 - 8, 2 ** 52 + 4096],
    ];
    for (const [near, value] of cases) {
      const { buffer } = cell(value);
      const p = new RingPosition(buffer, 8, ahead);
      assert.equal(p.loadFrom(near), value, `near ${near}, value ${value}`);
    }
    // A ring of 4 GiB or more: the low half cannot tell, so the whole u64 is read.
    const { buffer } = cell(7 * TWO_32 + 40);
    const p = new RingPosition(buffer, 8, TWO_32);
    assert.equal(p.loadFrom(5 * TWO_32 + 40), 7 * TWO_32 + 40);
  });

  test('store() publishes the exact u64, also when the upper half changes, and touches nothing else', () => {
    const { buffer, big } = cell(TWO_32 - 48);
    const p = new RingPosition(buffer, 8, 4096);
    const steps = [TWO_32 - 24, TWO_32 - 8, TWO_32, TWO_32 + 16, TWO_32 + 40, 2 * TWO_32 - 8, 2 * TWO_32 + 8, 2 * TWO_32 + 4096];
    for (const pos of steps) {
      p.store(pos);
      assert.equal(big[1], BigInt(pos), `after store(${pos})`);
      assert.equal(p.load(), pos);
      assert.equal(big[0], 0x1111111111111111n);
      assert.equal(big[2], 0x2222222222222222n);
    }
  });

  test('store() keeps the upper half the position had when the RingPosition was made', () => {
    // The first store is a low-half store: it must not clear the upper half it found there.
    const { buffer, big } = cell(5 * TWO_32 + 100);
    const p = new RingPosition(buffer, 8, 4096);
    p.store(5 * TWO_32 + 200);
    assert.equal(big[1], BigInt(5 * TWO_32 + 200));
    p.store(6 * TWO_32 + 8);
    assert.equal(big[1], BigInt(6 * TWO_32 + 8));
    p.store(6 * TWO_32 + 16);
    assert.equal(big[1], BigInt(6 * TWO_32 + 16));
  });
});
