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
import { BpfkitError, InvalidArgumentError } from '../errors.js';
import { parsePktcountArgs, usage, UsageError, type PktcountOptions } from '../tools/pktcount/options.js';
import { runSession, type SessionEvents, type SessionIO } from '../tools/pktcount/tool.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface RunPktcountHooks extends SessionEvents {
  /** Where output goes (default: process.stdout / process.stderr). */
  readonly io?: SessionIO;
  /** Stops the run as a signal would. */
  readonly signal?: AbortSignal;
}

function describe(e: unknown): string {
  return e instanceof Error ? (process.env['BPFKIT_DEBUG'] ? e.stack ?? e.message : e.message) : String(e);
}

export async function runPktcount(argv: string[], hooks: RunPktcountHooks = {}): Promise<number> {
  const io: SessionIO = hooks.io ?? {
    out: (t) => { process.stdout.write(t); },
    err: (t) => { process.stderr.write(t); },
  };
  let options: PktcountOptions;
  try {
    const r = parsePktcountArgs(argv);
    if (r === 'help') {
      io.out(usage);
      return 0;
    }
    options = r;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`bpfkit pktcount: ${e.message}\n(bpfkit pktcount --help lists the options)\n`);
      return 2;
    }
    throw e;
  }

  const ac = new AbortController();
  let signals = 0;
  let uncaught: unknown;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      io.err(`\npktcount: ${sig}: stopping\n`);
      ac.abort();
    } else if (signals === 2) {
      io.err('pktcount: still cleaning up (once more to quit at once)\n');
    } else {
      process.exit(130);
    }
  };
  const onUncaught = (e: unknown): void => {
    uncaught ??= e;
    ac.abort();
  };
  const onStdoutError = (e: NodeJS.ErrnoException): void => {
    // A closed pipe (| head): stop quietly.
    if (e.code !== 'EPIPE') uncaught ??= e;
    ac.abort();
  };
  const onOuterAbort = (): void => ac.abort();
  hooks.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (hooks.signal?.aborted) ac.abort();
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  process.stdout.on('error', onStdoutError);
  try {
    await runSession(options, io, ac.signal, hooks);
  } catch (e) {
    if (e instanceof UsageError || e instanceof InvalidArgumentError) {
      io.err(`bpfkit pktcount: ${describe(e)}\n`);
      return 2;
    }
    if (e instanceof BpfkitError) {
      io.err(`bpfkit pktcount: ${describe(e)}\n`);
      return 1;
    }
    throw e;
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    process.stdout.off('error', onStdoutError);
    hooks.signal?.removeEventListener('abort', onOuterAbort);
  }
  if (uncaught !== undefined) {
    io.err(`bpfkit pktcount: stopped by an unexpected error: ${(uncaught as Error)?.stack ?? String(uncaught)}\n`);
    return 1;
  }
  return 0;
}
