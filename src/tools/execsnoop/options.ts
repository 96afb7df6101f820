/**
 * The command line of `bpfkit execsnoop`, parsed into options. Pure (no kernel), so it is
 * unit-tested; bad input ends in a UsageError naming the flag and the value.
 */
import { readFileSync } from 'node:fs';
import { COMMON_FLAGS, parseFlags, PID_MAX, positiveInt } from '../common/options.js';
import { UsageError } from '../common/runtime.js';
import { parseRingbufSize } from '../common/drops.js';

/** The kernel keeps 15 bytes of a command name (TASK_COMM_LEN 16, with the NUL). */
export const COMM_MAX = 15;

export type HookChoice = 'auto' | 'kprobe' | 'tracepoint';

export interface ExecsnoopOptions {
  /** Wait for each exec to return and show its return value. */
  readonly ret: boolean;
  /** Also execs by threads that are not their process's main thread. */
  readonly threads: boolean;
  /** Only callers with this command name (at most COMM_MAX bytes of UTF-8). */
  readonly comm: string | undefined;
  /** Only this process (tgid). */
  readonly pid: number | undefined;
  /** Only this user. */
  readonly uid: number | undefined;
  readonly json: boolean;
  readonly hook: HookChoice;
  readonly verbose: boolean;
  /** Bytes of ring buffer between the programs and the tool; undefined: the object's 1 MiB. */
  readonly ringbufSize: number | undefined;
  /** Notes for stderr about how the input was read (a --comm cut to 15 bytes). */
  readonly notes: readonly string[];
}

export const usage = `usage: bpfkit execsnoop [options]

Prints every execve(2) and execveat(2) on the host as it happens: time, pid, parent pid, uid, the
command name of the process that called it, the file it runs and its arguments. Arguments are
cut at 20 of 128 bytes each, and the filename at 255 bytes; a cut is marked with "...".

options:
  --ret                 wait for each exec to return and show the result: 0, or the error
  --threads             also execs by threads other than their process's main thread
                        (default: thread-group leaders only, as the seed's hello_ebpf)
  --comm NAME           only execs by processes with this command name (the caller's, e.g. bash;
                        the kernel keeps 15 bytes of it)
  --pid PID             only execs by this process
  --uid UID|USER        only execs by this user
  --json                one JSON object per line: time, pid, ppid, uid, comm, filename, args
                        (and ret with --ret; truncated: true when something was cut); events
                        the kernel could not deliver come as {"time", "lost": N, "reason"}
                        records, reason "ringbuf_full" or "inflight_full"
  --ringbuf-size SIZE   the ring buffer between the kernel and the tool (default 1M; a power
                        of two from 4K to 1G): larger loses fewer events in bursts of execs
  --hook auto|kprobe|tracepoint
                        how to hook the system call: kprobes on the syscall functions (as the
                        seed does), the syscalls:sys_enter_execve tracepoint, or auto (default):
                        kprobes where the kernel has them, else the tracepoint
  -v, --verbose         say which hook is used, with the program and link ids
  -h, --help            this text

Needs root (CAP_BPF and CAP_PERFMON). Ctrl-C or SIGTERM detaches and exits.
Events lost because the tool fell behind are counted in the kernel and reported on stderr as they
happen and in total at exit.
`;

/** A uid: a number, or a user name from the passwd file (`passwd` is its text, for tests). */
export function parseUid(text: string, passwd?: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (!Number.isSafeInteger(n) || n > 0xfffffffe) throw new UsageError(`--uid: ${text} is out of range (0 to 4294967294)`);
    return n;
  }
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(t)) throw new UsageError(`--uid: ${JSON.stringify(text)} is neither a uid nor a user name`);
  let db = passwd;
  if (db === undefined) {
    try {
      db = readFileSync('/etc/passwd', 'utf8');
    } catch {
      db = '';
    }
  }
  for (const line of db.split('\n')) {
    const f = line.split(':');
    if (f[0] === t && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  throw new UsageError(`--uid: no user named ${JSON.stringify(t)} in /etc/passwd; give the numeric uid`);
}

/** The command name as the kernel keeps it: at most COMM_MAX bytes, cut on a character boundary. */
export function kernelComm(name: string): { comm: string; cut: boolean } {
  const enc = new TextEncoder();
  if (enc.encode(name).length <= COMM_MAX) return { comm: name, cut: false };
  let out = '';
  for (const ch of name) {
    if (enc.encode(out + ch).length > COMM_MAX) break;
    out += ch;
  }
  return { comm: out, cut: true };
}

/** Parses `bpfkit execsnoop` arguments; 'help' for -h/--help. */
export function parseExecsnoopArgs(argv: readonly string[], passwd?: string): ExecsnoopOptions | 'help' {
  const v = parseFlags(argv, {
    ret: { type: 'boolean' },
    threads: { type: 'boolean' },
    comm: { type: 'string' },
    pid: { type: 'string' },
    uid: { type: 'string' },
    hook: { type: 'string' },
    'ringbuf-size': { type: 'string' },
    ...COMMON_FLAGS,
  });
  if (v.help) return 'help';
  const notes: string[] = [];
  let comm: string | undefined;
  if (v.comm !== undefined) {
    if (v.comm === '') throw new UsageError('--comm: the command name is empty');
    if (v.comm.includes('\0')) throw new UsageError('--comm: the command name holds a NUL byte');
    const k = kernelComm(v.comm);
    comm = k.comm;
    if (k.cut) notes.push(`--comm: the kernel keeps ${COMM_MAX} bytes of a command name: matching ${JSON.stringify(comm)}`);
  }
  const hook = v.hook ?? 'auto';
  if (hook !== 'auto' && hook !== 'kprobe' && hook !== 'tracepoint') {
    throw new UsageError(`--hook: ${JSON.stringify(hook)} is not one of auto, kprobe, tracepoint`);
  }
  return {
    ret: v.ret ?? false,
    threads: v.threads ?? false,
    comm,
    pid: v.pid !== undefined ? positiveInt(v.pid, '--pid', PID_MAX) : undefined,
    uid: v.uid !== undefined ? parseUid(v.uid, passwd) : undefined,
    json: v.json ?? false,
    hook,
    verbose: v.verbose ?? false,
    ringbufSize: v['ringbuf-size'] !== undefined ? parseRingbufSize(v['ringbuf-size']) : undefined,
    notes,
  };
}

