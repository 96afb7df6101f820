/**
 * The command line of `bpfkit readline`, parsed into options. Pure, so it is unit-tested; bad
 * input ends in a UsageError naming the flag and the value.
 */
import { parseArgs } from 'node:util';
import { PID_MAX, parseArgsMessage } from '../execsnoop/options.js';
import { UsageError } from '../execsnoop/runtime.js';

export interface ReadlineOptions {
  /** The bash (or libreadline.so) to trace; undefined: bash from PATH. */
  readonly binary: string | undefined;
  /** Only this process. */
  readonly pid: number | undefined;
  readonly json: boolean;
  readonly verbose: boolean;
}

export const usage = `usage: bpfkit readline [options]

Prints each line typed into any running bash, as bash's readline() returns it: time, pid and the
line (the seeds' trace_readline). It finds bash in PATH and readline in it, or in the libreadline
it loads, by itself. Lines longer than 1023 bytes are cut and marked with "...".

options:
  --binary PATH     the bash to trace (default: bash from PATH), or a libreadline.so to trace every
                    program that uses it
  --pid PID         only this process
  --json            one JSON object per line: time, pid, uid, comm, line (truncated: true when cut)
  -v, --verbose     say where readline was found, with the program and link ids
  -h, --help        this text

Needs root (CAP_BPF and CAP_PERFMON). Ctrl-C or SIGTERM detaches and exits.
A shell already waiting at its prompt when the tool starts shows lines from its next prompt on
(a return probe sees only calls that begin after it is attached). Shells running another copy of
bash (a container's, say) are not seen: point --binary at that file.
`;

export function parseReadlineArgs(argv: readonly string[]): ReadlineOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: false,
      strict: true,
      options: {
        binary: { type: 'string' },
        pid: { type: 'string' },
        json: { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(parseArgsMessage(e));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.binary !== undefined && v.binary.trim() === '') throw new UsageError('--binary: the path is empty');
  let pid: number | undefined;
  if (v.pid !== undefined) {
    const t = v.pid.trim();
    if (!/^\d+$/.test(t)) throw new UsageError(`--pid: ${JSON.stringify(v.pid)} is not a number`);
    pid = Number(t);
    if (pid < 1 || pid > PID_MAX) throw new UsageError(`--pid: ${v.pid} is out of range (1 to ${PID_MAX})`);
  }
  return { binary: v.binary, pid, json: v.json ?? false, verbose: v.verbose ?? false };
}
