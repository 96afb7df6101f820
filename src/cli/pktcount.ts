/**
 * `bpfkit pktcount`: count packets per (source IP, source port, destination port, protocol) with
 * XDP, print the busiest flows every interval, and serve a live leaderboard. Without --iface, the
 * self-contained demo. See src/tools/pktcount/ for the parts.
 *
 * Ctrl-C, SIGTERM and SIGHUP stop it cleanly (detach, remove what it made, print a summary,
 * exit 0); a second signal says it is still cleaning up, a third exits at once (the bpf_link and
 * the demo's reaper still take everything down). An uncaught error also goes through the cleanup
 * and ends with exit code 1. Bad input exits with 2, other failures with 1.
 */
import { requireOptional } from '../tools/common/optional.js';
import { runToolCommand, type RunHooks } from '../tools/common/runtime.js';
import { parsePktcountArgs, usage } from '../tools/pktcount/options.js';
import type { SessionEvents } from '../tools/pktcount/tool.js';

export interface RunPktcountHooks extends RunHooks, SessionEvents {}

export function runPktcount(argv: string[], hooks: RunPktcountHooks = {}): Promise<number> {
  return runToolCommand({
    name: 'pktcount',
    usage,
    parse: parsePktcountArgs,
    run: async (options, io, signal) => {
      // The web server and /metrics use ws and prom-client, bpfkit's optional dependencies.
      requireOptional('pktcount', ['ws', 'prom-client']);
      const { runSession } = await import('../tools/pktcount/tool.js');
      return runSession(options, io, signal, hooks);
    },
    stopping: (sig) => `\npktcount: ${sig}: stopping\n`,
    stillStopping: () => 'pktcount: still cleaning up (once more to quit at once)\n',
  }, argv, hooks);
}
