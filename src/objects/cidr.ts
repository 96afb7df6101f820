/**
 * CIDR text to and from the keys of BPF_MAP_TYPE_LPM_TRIE maps. The kernel's key is
 * `struct bpf_lpm_trie_key`: a host-order u32 prefix length followed by the address bytes in
 * network order; the map's key size fixes how many address bytes there are (4 for IPv4, 16 for
 * IPv6), and anything past the address is zero.
 */
import { endianness } from 'node:os';
import { InvalidArgumentError } from '../errors.js';

const HOST_LE = endianness() === 'LE';

/**
 * An IPv4 or IPv6 prefix, as {@link parseCidr} reads it: the address bytes (network order), the
 * family and the prefix length. {@link lpmKey} turns it into an LPM trie key.
 */
export interface Cidr {
  readonly family: 4 | 6;
  readonly prefixLen: number;
  /** 4 or 16 bytes, network order, exactly as written (host bits are kept). */
  readonly address: Uint8Array;
}

const EXPECTED = 'expected an IPv4 address "a.b.c.d" or IPv6 address "x:x::x", optionally followed by "/prefix"';

function invalid(text: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid CIDR ${JSON.stringify(text)}: ${why}; ${EXPECTED}`);
}

/** Dotted quad, each part a decimal 0-255 without leading zeros (which some parsers read as octal). */
function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseGroups(s: string, out: number[]): boolean {
  if (s === '') return true;
  for (const g of s.split(':')) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
    out.push(parseInt(g, 16));
  }
  return true;
}

/** RFC 4291 text: eight hex groups, one "::" run of zeros allowed, an IPv4 tail allowed. */
function parseIpv6(s: string): Uint8Array | undefined {
  let tail: Uint8Array | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    tail = parseIpv4(s.slice(lastColon + 1));
    if (!tail) return undefined;
    // Keep the colon when the tail followed "::", so the split below still sees the gap.
    s = s[lastColon - 1] === ':' ? s.slice(0, lastColon + 1) : s.slice(0, lastColon);
  }
  const want = tail ? 6 : 8;
  const head: number[] = [];
  const rest: number[] = [];
  const gap = s.indexOf('::');
  if (gap >= 0) {
    if (s.indexOf('::', gap + 1) >= 0) return undefined;
    if (!parseGroups(s.slice(0, gap), head) || !parseGroups(s.slice(gap + 2), rest)) return undefined;
    if (head.length + rest.length >= want) return undefined;
  } else {
    if (!parseGroups(s, head) || head.length !== want) return undefined;
  }
  const groups = [...head, ...new Array<number>(want - head.length - rest.length).fill(0), ...rest];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (tail) out.set(tail, 12);
  return out;
}

/** Parses "10.0.0.0/8", "2001:db8::/32", "::ffff:1.2.3.4" ... A bare address is a /32 or /128. */
export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw new InvalidArgumentError(`invalid CIDR: expected a string, got ${typeof text}`);
  const s = text.trim();
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  const v6 = addrText.includes(':');
  const family: 4 | 6 = v6 ? 6 : 4;
  const maxLen = v6 ? 128 : 32;
  const address = v6 ? parseIpv6(addrText) : parseIpv4(addrText);
  if (!address) throw invalid(text, `${JSON.stringify(addrText)} is not a valid IPv${family} address`);
  let prefixLen = maxLen;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > maxLen) {
      throw invalid(text, `prefix length must be a decimal 0-${maxLen} for IPv${family}`);
    }
    prefixLen = Number(p);
  }
  return { family, prefixLen, address };
}

/**
 * The LPM trie key for `text` in a map with `keySize`-byte keys. Host bits past the prefix are
 * cleared: the kernel ignores them when matching, and clearing makes keys canonical, so the same
 * network always reads back the same way.
 */
export function lpmKey(text: string, keySize: number): Uint8Array {
  const { family, prefixLen, address } = parseCidr(text);
  if (!Number.isInteger(keySize) || keySize < 4) {
    throw new InvalidArgumentError(`LPM trie key size must be an integer of at least 4 bytes, got ${keySize}`);
  }
  const need = 4 + address.length;
  if (keySize < need) {
    throw new InvalidArgumentError(
      `CIDR ${JSON.stringify(text)} needs a ${need}-byte LPM key (4-byte prefix length + ${address.length}-byte IPv${family} address), but the map's key size is ${keySize} bytes`,
    );
  }
  const key = new Uint8Array(keySize);
  new DataView(key.buffer).setUint32(0, prefixLen, HOST_LE);
  for (let i = 0; i < address.length; i++) {
    const keep = Math.min(8, Math.max(0, prefixLen - i * 8));
    key[4 + i] = address[i]! & ((0xff00 >> keep) & 0xff);
  }
  return key;
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (2+) of zero groups as "::". */
function formatIpv6(a: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((a[i]! << 8) | a[i + 1]!);
  // IPv4-mapped addresses read best with their IPv4 tail.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${a[12]}.${a[13]}.${a[14]}.${a[15]}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const text = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestAt < 0) return text(groups);
  return `${text(groups.slice(0, bestAt))}::${text(groups.slice(bestAt + bestLen))}`;
}

/** An LPM trie key back to text: "a.b.c.d/n" for 8-byte keys, IPv6 "x::y/n" for 20, else hex. */
export function formatLpmKey(key: Uint8Array): string {
  if (key.length < 4) return hex(key);
  const prefixLen = new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(0, HOST_LE);
  const addr = key.subarray(4);
  if (key.length === 8) return `${addr.join('.')}/${prefixLen}`;
  if (key.length === 20) return `${formatIpv6(addr)}/${prefixLen}`;
  return `${hex(addr)}/${prefixLen}`;
}
