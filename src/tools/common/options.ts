/**
 * Command lines of the tracing tools: node:util parseArgs with the flags they all take, its
 * errors reworded as UsageErrors that name the flag, and the number checks they share. Pure, so
 * it is unit-tested through each tool's parser.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './runtime.js';

/** The largest pid_max the kernel allows (PID_MAX_LIMIT on 64-bit). */
export const PID_MAX = 4_194_304;

/** The flags every tracing tool takes: --json, -v/--verbose, -h/--help. */
export const COMMON_FLAGS = {
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = NonNullable<ParseArgsConfig['options']>;
type FlagValues<F extends Flags> = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: false; strict: true; options: F }>>['values'];

/** The values of `argv` for these flags (options only, strictly); parseArgs errors become UsageErrors. */
export function parseFlags<F extends Flags>(argv: readonly string[], flags: F): FlagValues<F> {
  try {
    return parseArgs({ args: [...argv], allowPositionals: false, strict: true, options: flags }).values;
  } catch (e) {
    throw new UsageError(parseArgsMessage(e));
  }
}

/** node:util parseArgs errors, reworded to name the flag the way the rest of the CLI does. */
export function parseArgsMessage(e: unknown): string {
  const msg = (e as Error)?.message ?? String(e);
  const code = (e as { code?: string })?.code;
  let m: RegExpExecArray | null;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && (m = /^Unknown option '([^']+)'/.exec(msg))) return `unknown option ${m[1]}`;
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && (m = /^Unexpected argument '([^']+)'/.exec(msg))) return `unexpected argument ${JSON.stringify(m[1])}: this command takes only options`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && (m = /^Option '([^']+)'/.exec(msg))) {
    const flag = /--[A-Za-z0-9-]+/.exec(m[1]!)?.[0] ?? m[1]!.split(' ')[0]!;
    if (/argument missing/.test(msg)) return `${flag} needs a value`;
    if (/does not take an argument/.test(msg)) return `${flag} takes no value`;
    return `${flag}: ${msg}`;
  }
  return msg;
}

/** A whole number from 1 to `max` (a --pid, say); a UsageError naming `flag` otherwise. */
export function positiveInt(text: string, flag: string, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a number`);
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new UsageError(`${flag}: ${text} is out of range (1 to ${max})`);
  return n;
}
