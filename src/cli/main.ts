#!/usr/bin/env node
/**
 * The `bpfkit` command. Subcommands are small modules; this file only dispatches and turns
 * bpfkit's errors into one clear line and a non-zero exit code.
 */
import { readFileSync } from 'node:fs';
import { BpfkitError, InvalidArgumentError } from '../index.js';
import { UsageError } from '../tools/common/runtime.js';

const usage = `usage: bpfkit <command> [options]     (bpfkit <command> --help: its options)

commands:
  pktcount [--iface IF] [--interval 1s] [--top N] [--exclude CIDR]... [--listen HOST:PORT | --no-web] [--json]
                       count packets per flow with XDP, live leaderboard at / /json /ws /metrics
                       (no --iface: a self-contained demo in two network namespaces)
  execsnoop [options]  every execve on the host: time, pid, ppid, uid, comm, filename, args
                       (--ret, --json, --comm/--pid/--uid, --threads, --verbose)
  readline [options]   each line typed into any running bash, with its pid (--json, --binary, --pid)
  demo                 load the seeds' packet counter, run it on crafted packets, print the counts
  inspect <object.o>   show the maps, programs and variables of a BPF object (no kernel needed)
  gen <ident> <src.bpf.c|obj.o> [--type NAME]... [--out-dir DIR] [--watch] [-- clang flags]
                       compile BPF C and write typed TypeScript bindings (<ident>.ts, <ident>.bpf.o)
  btf dump [FILE] [--format c|json]
                       write kernel BTF (or an object's .BTF) as C (a vmlinux.h) or JSON
  init [DIR] [--name NAME] [--bpfkit-path PATH] [--no-gen]
                       create a small project: a BPF C program (execs per uid, ring buffer events),
                       its generated bindings, a TypeScript program that runs it, npm scripts
  --version            print bpfkit's version

exit codes: 0 done (or stopped by Ctrl-C/SIGTERM/SIGHUP), 1 failed (one line says why; BPFKIT_DEBUG=1
adds the stack), 2 bad command line, 130 a third signal while stopping
`;

/** The version in bpfkit's own package.json, two directories above dist/src/cli. */
function version(): string {
  const json = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return json.version;
}

/**
 * Subcommands are imported when run: a command loads only what it needs (gen and inspect never
 * the tools' web server, pktcount's optional dependencies are looked for only by pktcount).
 */
async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'pktcount':
      return (await import('./pktcount.js')).runPktcount(rest);
    case 'execsnoop':
      return (await import('./execsnoop.js')).runExecsnoop(rest);
    case 'readline':
      return (await import('./readline.js')).runReadline(rest);
    case 'demo':
      return (await import('./demo.js')).runDemo(rest);
    case 'inspect':
      return (await import('./inspect.js')).runInspect(rest);
    case 'gen':
      return (await import('./gen.js')).runGen(rest);
    case 'btf':
      return (await import('./btf.js')).runBtf(rest);
    case 'init':
      return (await import('./init.js')).runInit(rest);
    case '--version':
    case '-V':
    case 'version':
      process.stdout.write(`bpfkit ${version()}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      (cmd === undefined ? process.stderr : process.stdout).write(usage);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`bpfkit: unknown command "${cmd}"\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    const debug = Boolean(process.env['BPFKIT_DEBUG']);
    if (e instanceof BpfkitError) {
      process.stderr.write(`bpfkit: ${e.message}\n`);
    } else {
      // Not one of bpfkit's typed errors: still one line, the stack on request.
      const first = ((e as Error)?.message ?? String(e)).split('\n')[0];
      process.stderr.write(`bpfkit: unexpected error: ${first}${debug ? '' : ' (BPFKIT_DEBUG=1 shows where)'}\n`);
    }
    if (debug) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    process.exitCode = e instanceof UsageError || e instanceof InvalidArgumentError ? 2 : 1;
  },
);
