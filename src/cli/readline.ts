/**
 * `bpfkit readline`: each line typed into any running bash, with the time and the shell's pid (the
 * seeds' trace_readline), from a uretprobe on bash's readline(). See src/tools/readline/ for the
 * parts and bpf/readline.bpf.c for the kernel side.
 *
 * Ctrl-C, SIGTERM and SIGHUP detach and exit 0. Bad input exits 2, other failures (not root, no
 * readline to be found) 1, with one line saying why.
 */
import { runToolCommand, type RunHooks } from '../tools/common/runtime.js';
import { parseReadlineArgs, usage } from '../tools/readline/options.js';
import { runReadlineSession, type ReadlineSessionEvents } from '../tools/readline/tool.js';

export type RunReadlineHooks = RunHooks & ReadlineSessionEvents;

export function runReadline(argv: string[], hooks: RunReadlineHooks = {}): Promise<number> {
  return runToolCommand({
    name: 'readline',
    usage,
    parse: parseReadlineArgs,
    run: (options, io, signal) => runReadlineSession(options, io, signal, hooks),
  }, argv, hooks);
}
