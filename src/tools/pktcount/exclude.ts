/**
 * Excluded sources: IPs and CIDRs from --exclude and --exclude-file, checked and turned into the
 * keys of the program's two LPM tries (excluded_v4: 4-byte addresses, excluded_v6: 16-byte). The
 * kernel looks every packet's source up there before counting it.
 */
import { readFileSync } from 'node:fs';
import { lpmKey, parseCidr, type Cidr, BpfkitError, InvalidArgumentError } from '../../index.js';
import { formatAddress } from './snapshot.js';
import { UsageError } from '../common/runtime.js';

export interface Exclusion {
  /** Canonical text: the network address (host bits cleared) and prefix, e.g. "10.0.0.0/8". */
  readonly cidr: string;
  readonly family: 4 | 6;
  /** Where it came from, for messages: "--exclude" or "FILE:LINE". */
  readonly origin: string;
  /** The LPM trie key: prefix length (host order) then the address (network order). */
  readonly key: Uint8Array;
}

/** Key sizes of excluded_v4 and excluded_v6 (struct lpm_v4_key / lpm_v6_key). */
export const LPM_V4_KEY_SIZE = 8;
export const LPM_V6_KEY_SIZE = 20;

function canonical(c: Cidr): string {
  const addr = new Uint8Array(c.address.length);
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.min(8, Math.max(0, c.prefixLen - i * 8));
    addr[i] = c.address[i]! & ((0xff00 >> keep) & 0xff);
  }
  const bare = c.family === 4 ? [...addr].join('.') : formatAddress(addr, 6);
  return `${bare}/${c.prefixLen}`;
}

/** One IP or CIDR; `origin` goes into the error message. */
export function parseExclusion(text: string, origin: string): Exclusion {
  let c: Cidr;
  try {
    c = parseCidr(text);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new UsageError(`${origin}: ${e.message}`);
    throw e;
  }
  const key = lpmKey(text, c.family === 4 ? LPM_V4_KEY_SIZE : LPM_V6_KEY_SIZE);
  return { cidr: canonical(c), family: c.family, origin, key };
}

/** The entries of an exclude file: IPs or CIDRs separated by blanks, commas or newlines; '#' comments. */
export function parseExcludeText(text: string, file: string): Exclusion[] {
  const out: Exclusion[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const body = line.replace(/#.*/, '');
    for (const word of body.split(/[\s,]+/)) {
      if (word !== '') out.push(parseExclusion(word, `${file}:${i + 1}`));
    }
  });
  return out;
}

export function readExcludeFile(file: string): Exclusion[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new BpfkitError('ERR_BPFKIT_EXCLUDE_FILE', `--exclude-file: cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  return parseExcludeText(text, file);
}

/** All exclusions of the command line, deduplicated (first origin wins), in order. */
export function collectExclusions(exclude: readonly string[], files: readonly string[]): Exclusion[] {
  const all = [
    ...exclude.map((t) => parseExclusion(t, '--exclude')),
    ...files.flatMap((f) => readExcludeFile(f)),
  ];
  const seen = new Set<string>();
  return all.filter((e) => {
    if (seen.has(e.cidr)) return false;
    seen.add(e.cidr);
    return true;
  });
}
