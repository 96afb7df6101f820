/**
 * Which capabilities pktcount needs and which this process lacks, read from /proc/self/status, so
 * that a user without them hears which privilege is missing and how to run the tool, before
 * anything is loaded or created.
 */
import { readFileSync } from 'node:fs';

export const CAP = { NET_ADMIN: 12, SYS_ADMIN: 21, PERFMON: 38, BPF: 39 } as const;
export type CapName = keyof typeof CAP;

/** The effective capability set, or undefined when /proc does not say. */
export function effectiveCapabilities(status?: string): bigint | undefined {
  let text = status;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(text);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

function has(caps: bigint, cap: CapName): boolean {
  return ((caps >> BigInt(CAP[cap])) & 1n) === 1n;
}

export interface Need {
  readonly cap: CapName;
  /** What it is needed for, for the message. */
  readonly why: string;
  /** Another capability that does as well (CAP_SYS_ADMIN covers CAP_BPF). */
  readonly or?: CapName;
}

/** What pktcount needs: loading BPF and attaching XDP; the demo also makes network namespaces. */
export function pktcountNeeds(demo: boolean): Need[] {
  const needs: Need[] = [
    { cap: 'BPF', or: 'SYS_ADMIN', why: 'to load the XDP program and create its maps' },
    { cap: 'NET_ADMIN', why: 'to attach XDP to an interface' },
  ];
  if (demo) needs.push({ cap: 'SYS_ADMIN', why: 'to create the demo\'s network namespaces' });
  return needs;
}

/** The needs `caps` does not meet ([] when all are met or the set is unknown). */
export function missing(needs: readonly Need[], caps: bigint | undefined = effectiveCapabilities()): Need[] {
  if (caps === undefined) return [];
  return needs.filter((n) => !has(caps, n.cap) && !(n.or !== undefined && has(caps, n.or)));
}

/** One message naming each missing capability, what it is for, and how to run the tool. */
export function privilegeMessage(lacking: readonly Need[], example: string): string {
  const list = lacking.map((n) => `CAP_${n.cap} (${n.why})`).join(', ');
  const uid = process.getuid?.();
  const who = uid === 0 ? 'this process runs as root but without them (a restricted container?)' : `this process (uid ${uid ?? '?'}) does not have ${lacking.length === 1 ? 'it' : 'them'}`;
  return `pktcount needs ${list}; ${who}. Run it as root: sudo ${example}`;
}
