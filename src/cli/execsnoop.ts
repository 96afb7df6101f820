/**
 * `bpfkit execsnoop`: every execve(2) and execveat(2) on the host as it happens, with pid, parent,
 * uid, the caller's command name, the filename and the arguments (the seeds' hello_ebpf and
 * goebpf's exec dump). See src/tools/execsnoop/ for the parts and bpf/execsnoop.bpf.c for the
 * kernel side.
 *
 * Ctrl-C, SIGTERM and SIGHUP detach and exit 0. Bad input exits 2, other failures (not root, a
 * kernel without the hooks) 1, with one line saying why.
 */
import { runToolCommand, type RunHooks } from '../tools/common/runtime.js';
import { parseExecsnoopArgs, usage } from '../tools/execsnoop/options.js';
import { runExecsnoopSession, type ExecsnoopSessionEvents } from '../tools/execsnoop/tool.js';

export type RunExecsnoopHooks = RunHooks & ExecsnoopSessionEvents;

export function runExecsnoop(argv: string[], hooks: RunExecsnoopHooks = {}): Promise<number> {
  return runToolCommand({
    name: 'execsnoop',
    usage,
    parse: (args) => parseExecsnoopArgs(args),
    run: (options, io, signal) => runExecsnoopSession(options, io, signal, hooks),
  }, argv, hooks);
}
