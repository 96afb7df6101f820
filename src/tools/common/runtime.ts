/**
 * What every `bpfkit <tool>` command shares at run time: the errors that become exit codes, where
 * output goes, and the run loop that turns Ctrl-C, SIGTERM and SIGHUP into a clean stop (the
 * tool's links and programs closed, exit 0).
 */
import { BpfkitError, InvalidArgumentError } from '../../index.js';

/** Bad command-line input: exit code 2. */
export class UsageError extends BpfkitError {
  constructor(message: string) {
    super('ERR_BPFKIT_USAGE', message);
  }
}

/** The process lacks a privilege the tool needs: exit code 1. */
export class PrivilegeError extends BpfkitError {
  constructor(message: string) {
    super('ERR_BPFKIT_PRIVILEGE', message);
  }
}

export interface ToolIO {
  /** Table rows and JSON lines. */
  out(text: string): void;
  /** Status and warnings. */
  err(text: string): void;
}

export const processIO: ToolIO = {
  out: (t) => { process.stdout.write(t); },
  err: (t) => { process.stderr.write(t); },
};

export interface RunHooks {
  /** Where output goes (default: process.stdout / process.stderr). */
  readonly io?: ToolIO;
  /** Stops the run as a signal would. */
  readonly signal?: AbortSignal;
}

/** What a tool says while it stops; by default nothing on the first signal. */
export interface StopMessages {
  /** Said on the first signal. */
  readonly stopping?: (sig: NodeJS.Signals) => string;
  /** Said on the second (default: "<tool>: <SIG>: still stopping (once more to quit at once)"). */
  readonly stillStopping?: (sig: NodeJS.Signals) => string;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  return process.env['BPFKIT_DEBUG'] ? e.stack ?? e.message : e.message;
}

/**
 * Runs `body` until it returns or a signal (SIGINT, SIGTERM, SIGHUP) aborts the signal it gets,
 * and turns the outcome into an exit code: 0 for a clean run or stop, 2 for bad input
 * (UsageError, InvalidArgumentError), 1 for other bpfkit errors (one line: "bpfkit <tool>:
 * <message>") and for an error that escaped elsewhere. A second signal says the tool is still
 * stopping; a third exits at once (the kernel still removes every bpf_link with the process). A
 * closed stdout (`| head`) stops the tool quietly.
 */
export async function runUntilStopped(
  tool: string,
  hooks: RunHooks,
  body: (signal: AbortSignal, io: ToolIO) => Promise<unknown>,
  messages: StopMessages = {},
): Promise<number> {
  const io = hooks.io ?? processIO;
  const ac = new AbortController();
  let signals = 0;
  let uncaught: unknown;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      if (messages.stopping) io.err(messages.stopping(sig));
      ac.abort();
    } else if (signals === 2) {
      io.err(messages.stillStopping?.(sig) ?? `${tool}: ${sig}: still stopping (once more to quit at once)\n`);
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
    await body(ac.signal, io);
  } catch (e) {
    if (e instanceof UsageError || e instanceof InvalidArgumentError) {
      io.err(`bpfkit ${tool}: ${describe(e)}\n`);
      return 2;
    }
    if (e instanceof BpfkitError) {
      io.err(`bpfkit ${tool}: ${describe(e)}\n`);
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
    io.err(`bpfkit ${tool}: stopped by an unexpected error: ${(uncaught as Error)?.stack ?? String(uncaught)}\n`);
    return 1;
  }
  return 0;
}

/** A `bpfkit <name>` command: its usage text, its parser, and the run the parsed options drive. */
export interface ToolCommand<O> extends StopMessages {
  readonly name: string;
  readonly usage: string;
  /** The options, or 'help' for -h/--help; bad input throws UsageError. */
  parse(argv: readonly string[]): O | 'help';
  /** Runs until `signal` aborts (or the tool is done). */
  run(options: O, io: ToolIO, signal: AbortSignal): Promise<unknown>;
}

/**
 * Parses `argv` and runs the command until it is stopped (see runUntilStopped), returning the
 * exit code. --help prints the usage (exit 0); bad input is one line and a pointer to --help
 * (exit 2), before anything is loaded.
 */
export async function runToolCommand<O>(command: ToolCommand<O>, argv: readonly string[], hooks: RunHooks = {}): Promise<number> {
  const io = hooks.io ?? processIO;
  let options: O | 'help';
  try {
    options = command.parse(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`bpfkit ${command.name}: ${describe(e)}\n(bpfkit ${command.name} --help lists the options)\n`);
      return 2;
    }
    throw e;
  }
  if (options === 'help') {
    io.out(command.usage);
    return 0;
  }
  const parsed = options;
  return runUntilStopped(command.name, hooks, (signal, out) => command.run(parsed, out, signal), command);
}
