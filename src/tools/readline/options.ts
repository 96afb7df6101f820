/**
 * The command line of `bpfkit readline`, parsed into options. Pure, so it is unit-tested; bad
 * input ends in a UsageError naming the flag and the value.
 */
import { COMMON_FLAGS, parseFlags, PID_MAX, positiveInt } from '../common/options.js';
import { UsageError } from '../common/runtime.js';
import { parseRingbufSize } from '../common/drops.js';

export interface ReadlineOptions {
  /** The bash (or libreadline.so) to trace; undefined: bash from PATH. */
  readonly binary: string | undefined;
  /** Only this process. */
  readonly pid: number | undefined;
  readonly json: boolean;
  readonly verbose: boolean;
  /** Bytes of ring buffer between the program and the tool; undefined: the object's 256 KiB. */
  readonly ringbufSize: number | undefined;
}

export const usage = `usage: bpfkit readline [options]

Prints each line typed into any running bash, as bash's readline() returns it: time, pid and the
line (the seeds' trace_readline). It finds bash in PATH and readline in it, or in the libreadline
it loads, by itself. Lines longer than 1023 bytes are cut and marked with "...".

options:
  --binary PATH     the bash to trace (default: bash from PATH), or a libreadline.so to trace every
                    program that uses it
  --pid PID         only this process
  --json            one JSON object per line: time, pid, uid, comm, line (truncated: true when cut);
                    lines the kernel could not deliver come as {"time", "lost": N, "reason":
                    "ringbuf_full"} records
  --ringbuf-size SIZE
                    the ring buffer between the kernel and the tool (default 256K; a power of
                    two from 4K to 1G)
  -v, --verbose     say where readline was found, with the program and link ids
  -h, --help        this text

Needs root (CAP_BPF and CAP_PERFMON). Ctrl-C or SIGTERM detaches and exits.
A shell already waiting at its prompt when the tool starts shows lines from its next prompt on
(a return probe sees only calls that begin after it is attached). Shells running another copy of
bash (a container's, say) are not seen: point --binary at that file.
`;

export function parseReadlineArgs(argv: readonly string[]): ReadlineOptions | 'help' {
  const v = parseFlags(argv, {
    binary: { type: 'string' },
    pid: { type: 'string' },
    'ringbuf-size': { type: 'string' },
    ...COMMON_FLAGS,
  });
  if (v.help) return 'help';
  if (v.binary !== undefined && v.binary.trim() === '') throw new UsageError('--binary: the path is empty');
  const pid = v.pid !== undefined ? positiveInt(v.pid, '--pid', PID_MAX) : undefined;
  const ringbufSize = v['ringbuf-size'] !== undefined ? parseRingbufSize(v['ringbuf-size']) : undefined;
  return { binary: v.binary, pid, json: v.json ?? false, verbose: v.verbose ?? false, ringbufSize };
}
