/**
 * CIDR parsing and LPM trie keys: address forms (IPv4, IPv6 with "::" and IPv4 tails), prefix
 * handling, the exact `struct bpf_lpm_trie_key` bytes, and the error messages for bad input.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { formatLpmKey, lpmKey, parseCidr } from '../../src/objects/cidr.js';
import { InvalidArgumentError } from '../../src/errors.js';

function bytes(...xs: number[]): Uint8Array {
  return Uint8Array.from(xs);
}

/** The prefix length as the host stores a u32. */
function u32(n: number): number[] {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, endianness() === 'LE');
  return [...b];
}

function throwsInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

describe('parseCidr', () => {
  it('parses IPv4 with and without a prefix', () => {
    assert.deepEqual(parseCidr('10.1.2.3/8'), { family: 4, prefixLen: 8, address: bytes(10, 1, 2, 3) });
    assert.deepEqual(parseCidr('192.168.0.1'), { family: 4, prefixLen: 32, address: bytes(192, 168, 0, 1) });
    assert.deepEqual(parseCidr('0.0.0.0/0'), { family: 4, prefixLen: 0, address: bytes(0, 0, 0, 0) });
    assert.deepEqual(parseCidr(' 255.255.255.255/32 '), { family: 4, prefixLen: 32, address: bytes(255, 255, 255, 255) });
  });

  it('parses IPv6 forms', () => {
    const v6 = (...groups: number[]): Uint8Array => {
      const out = new Uint8Array(16);
      groups.forEach((g, i) => { out[i * 2] = g >> 8; out[i * 2 + 1] = g & 0xff; });
      return out;
    };
    assert.deepEqual(parseCidr('2001:db8::/32'), { family: 6, prefixLen: 32, address: v6(0x2001, 0xdb8) });
    assert.deepEqual(parseCidr('::1'), { family: 6, prefixLen: 128, address: v6(0, 0, 0, 0, 0, 0, 0, 1) });
    assert.deepEqual(parseCidr('::/0'), { family: 6, prefixLen: 0, address: v6() });
    assert.deepEqual(parseCidr('1:2:3:4:5:6:7:8'), { family: 6, prefixLen: 128, address: v6(1, 2, 3, 4, 5, 6, 7, 8) });
    assert.deepEqual(parseCidr('1:2:3:4:5:6:7::'), { family: 6, prefixLen: 128, address: v6(1, 2, 3, 4, 5, 6, 7, 0) });
    assert.deepEqual(parseCidr('fe80::AbC:1/64').address, v6(0xfe80, 0, 0, 0, 0, 0, 0xabc, 1));
    assert.deepEqual(parseCidr('::ffff:1.2.3.4').address, v6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304));
    assert.deepEqual(parseCidr('::1.2.3.4').address, v6(0, 0, 0, 0, 0, 0, 0x0102, 0x0304));
    assert.deepEqual(parseCidr('1:2:3:4:5:6:1.2.3.4/96').address, v6(1, 2, 3, 4, 5, 6, 0x0102, 0x0304));
    assert.equal(parseCidr('::ffff:1.2.3.4/120').prefixLen, 120);
  });

  it('rejects malformed text, quoting it and naming the expected form', () => {
    const bad = [
      '', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.4/33', '1.2.3.4/', '1.2.3.4/-1', '1.2.3.4/08',
      '1.2.3.4/8/9', 'a.b.c.d', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2::3', '1:::2', '12345::',
      ':1:2:3:4:5:6:7', '::1/129', '1:2:3:4:5:6:7:8::', 'g::1', '::1.2.3', '::1.2.3.4:5', 'fe80::1%eth0', '[::1]',
    ];
    for (const text of bad) {
      throwsInvalid(() => parseCidr(text), new RegExp(`^invalid CIDR ${JSON.stringify(text).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*expected an IPv4 address "a\\.b\\.c\\.d" or IPv6 address "x:x::x", optionally followed by "/prefix"$`));
    }
    throwsInvalid(() => parseCidr('10.0.0.0/33'), /prefix length must be a decimal 0-32 for IPv4/);
    throwsInvalid(() => parseCidr('::/200'), /prefix length must be a decimal 0-128 for IPv6/);
    throwsInvalid(() => parseCidr('300.1.1.1'), /"300\.1\.1\.1" is not a valid IPv4 address/);
  });
});

describe('lpmKey', () => {
  it('writes the host-order prefix length then the address in network order', () => {
    assert.deepEqual(lpmKey('192.168.1.0/24', 8), bytes(...u32(24), 192, 168, 1, 0));
    assert.deepEqual(lpmKey('10.0.0.1', 8), bytes(...u32(32), 10, 0, 0, 1));
    if (endianness() === 'LE') assert.deepEqual(lpmKey('10.0.0.0/8', 8), bytes(8, 0, 0, 0, 10, 0, 0, 0));
    const k6 = lpmKey('2001:db8::1/128', 20);
    assert.deepEqual(k6, bytes(...u32(128), 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1));
  });

  it('clears host bits past the prefix', () => {
    assert.deepEqual(lpmKey('10.1.2.3/8', 8), bytes(...u32(8), 10, 0, 0, 0));
    assert.deepEqual(lpmKey('10.255.2.3/11', 8), bytes(...u32(11), 10, 0xe0, 0, 0));
    assert.deepEqual(lpmKey('1.2.3.4/0', 8), bytes(...u32(0), 0, 0, 0, 0));
    assert.deepEqual(lpmKey('2001:db8:ffff::1/36', 20).subarray(4, 10), bytes(0x20, 0x01, 0x0d, 0xb8, 0xf0, 0));
  });

  it('zero-pads to a larger key and refuses a key too small', () => {
    assert.deepEqual(lpmKey('1.2.3.4/32', 12), bytes(...u32(32), 1, 2, 3, 4, 0, 0, 0, 0));
    assert.equal(lpmKey('::1', 24).length, 24);
    throwsInvalid(() => lpmKey('2001:db8::/32', 8),
      /^CIDR "2001:db8::\/32" needs a 20-byte LPM key \(4-byte prefix length \+ 16-byte IPv6 address\), but the map's key size is 8 bytes$/);
    throwsInvalid(() => lpmKey('1.2.3.4', 6), /needs a 8-byte LPM key .* key size is 6 bytes/);
    throwsInvalid(() => lpmKey('1.2.3.4', 2), /at least 4 bytes, got 2/);
    throwsInvalid(() => lpmKey('nope', 8), /^invalid CIDR "nope"/);
  });
});

describe('formatLpmKey', () => {
  it('formats IPv4 keys', () => {
    assert.equal(formatLpmKey(lpmKey('192.168.1.0/24', 8)), '192.168.1.0/24');
    assert.equal(formatLpmKey(bytes(...u32(32), 10, 0, 0, 1)), '10.0.0.1/32');
  });

  it('formats IPv6 keys in RFC 5952 form', () => {
    const round = (text: string): string => formatLpmKey(lpmKey(text, 20));
    assert.equal(round('2001:0DB8:0000:0000:0000:0000:0000:0001/128'), '2001:db8::1/128');
    assert.equal(round('::/0'), '::/0');
    assert.equal(round('::1'), '::1/128');
    assert.equal(round('1:0:0:2:0:0:0:3'), '1:0:0:2::3/128');
    assert.equal(round('1:0:0:2:0:0:3:4'), '1::2:0:0:3:4/128');
    assert.equal(round('1:0:2:3:4:5:6:7'), '1:0:2:3:4:5:6:7/128');
    assert.equal(round('fe80::/10'), 'fe80::/10');
    assert.equal(round('::ffff:10.1.2.3'), '::ffff:10.1.2.3/128');
    assert.deepEqual(parseCidr(round('2001:db8:1:2:3:4:5:6/64')), parseCidr('2001:db8:1:2::/64'));
  });

  it('falls back to hex for other key sizes', () => {
    assert.equal(formatLpmKey(bytes(...u32(12), 0xab, 0xcd, 0x01)), 'abcd01/12');
    assert.equal(formatLpmKey(bytes(1, 2)), '0102');
  });
});
