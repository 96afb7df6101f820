/**
 * Which capabilities a tool needs and which this process lacks, read from the effective set in
 * /proc/self/status, so that a user without them hears which privilege is missing and how to run
 * the tool, before anything is loaded or created.
 */
import { readFileSync } from 'node:fs';
import { PrivilegeError } from './runtime.js';

export const CAP = { NET_ADMIN: 12, NET_RAW: 13, SYS_ADMIN: 21, PERFMON: 38, BPF: 39 } as const;
export type CapName = keyof typeof CAP;

/** The effective capability set from /proc/self/status (or `status`), undefined when it does not say. */
export function effectiveCapabilities(status?: string): bigint | undefined {
  let text = status;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(text);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

export function hasCap(caps: bigint, cap: CapName): boolean {
  return ((caps >> BigInt(CAP[cap])) & 1n) === 1n;
}

export interface Need {
  readonly cap: CapName;
  /** What it is needed for, for the message. */
  readonly why: string;
  /** Another capability that does as well (CAP_SYS_ADMIN covers CAP_BPF). */
  readonly or?: CapName;
}

/** The needs `caps` does not meet ([] when all are met or the set is unknown: the kernel will then say). */
export function missing(needs: readonly Need[], caps: bigint | undefined = effectiveCapabilities()): Need[] {
  if (caps === undefined) return [];
  return needs.filter((n) => !hasCap(caps, n.cap) && !(n.or !== undefined && hasCap(caps, n.or)));
}

/**
 * Who lacks them, for a message: root without `rootLacks` (a restricted container), or a user
 * (uid) who does not have it or them.
 */
export function lackingWho(uid: number | undefined, count: number, rootLacks: string): string {
  return uid === 0
    ? `this process runs as root but without ${rootLacks} (a restricted container?)`
    : `this process (uid ${uid ?? '?'}) does not have ${count === 1 ? 'it' : 'them'}`;
}

/** What the tracing tools need: loading BPF programs, and attaching them to tracepoints, kprobes and uprobes. */
const TRACING_NEEDS: readonly Need[] = [
  { cap: 'BPF', or: 'SYS_ADMIN', why: 'to load BPF programs' },
  { cap: 'PERFMON', or: 'SYS_ADMIN', why: 'to attach them to tracepoints, kprobes and uprobes' },
];

/**
 * The capabilities a tracing tool lacks to load BPF programs (CAP_BPF) and attach them to
 * tracepoints, kprobes and uprobes (CAP_PERFMON); CAP_SYS_ADMIN covers both. Empty when all are
 * there, or when the capability set cannot be read (the kernel will then say).
 */
export function missingTracingCaps(caps: bigint | undefined = effectiveCapabilities()): string[] {
  return missing(TRACING_NEEDS, caps).map((n) => `CAP_${n.cap}`);
}

/**
 * Throws PrivilegeError naming what is missing and how to run the tool, before anything is
 * loaded. `what` says what the privileges are for.
 */
export function requireTracingPrivileges(tool: string, what: string, caps: bigint | undefined = effectiveCapabilities(), uid = process.getuid?.()): void {
  const lacking = missingTracingCaps(caps);
  if (lacking.length === 0) return;
  const who = lackingWho(uid, lacking.length, lacking.join(' and '));
  throw new PrivilegeError(`${tool} needs CAP_BPF and CAP_PERFMON (in practice: root) ${what}; ${who}. Run it as root: sudo npx bpfkit ${tool}`);
}
