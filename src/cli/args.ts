/**
 * Option parsing shared by the small subcommands: node's parseArgs plus -h/--help, with a bad
 * option turned into a UsageError (one line, exit code 2) instead of parseArgs' TypeError.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../tools/common/runtime.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface ParsedCommandArgs {
  /** The options given, or 'help' when -h/--help was (the usage is printed then). */
  values: Record<string, string | boolean | (string | boolean)[] | undefined> | 'help';
  positionals: string[];
}

export function parseCommandArgs(command: string, usage: string, argv: readonly string[], options: Options, allowPositionals: boolean): ParsedCommandArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals, options: { ...options, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    // parseArgs' messages are one sentence; the hint points at the full list.
    throw new UsageError(`${(e as Error).message.split('.')[0]} (bpfkit ${command} --help lists the options)`);
  }
  if (parsed.values['help']) {
    process.stdout.write(usage);
    return { values: 'help', positionals: [] };
  }
  return { values: parsed.values, positionals: parsed.positionals };
}
