#!/usr/bin/env node
/**
 * The `bpfkit` command. Subcommands are small modules; this file only dispatches and turns
 * bpfkit's errors into one clear line and a non-zero exit code.
 */
import { BpfkitError } from '../errors.js';
import { runBtf } from './btf.js';
import { runDemo } from './demo.js';
import { runExecsnoop } from './execsnoop.js';
import { runReadline } from './readline.js';
import { runGen } from './gen.js';
import { runInit } from './init.js';
import { runInspect } from './inspect.js';
import { runPktcount } from './pktcount.js';

const usage = `usage: bpfkit <command> [options]

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
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'pktcount':
      return runPktcount(rest);
    case 'execsnoop':
      return runExecsnoop(rest);
    case 'readline':
      return runReadline(rest);
    case 'demo':
      return runDemo(rest);
    case 'inspect':
      return runInspect(rest);
    case 'gen':
      return runGen(rest);
    case 'btf':
      return runBtf(rest);
    case 'init':
      return runInit(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(usage);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`bpfkit: unknown command "${cmd}"\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    if (e instanceof BpfkitError) {
      process.stderr.write(`bpfkit: ${e.message}\n`);
      if (process.env['BPFKIT_DEBUG']) process.stderr.write(`${e.stack}\n`);
    } else {
      process.stderr.write(`bpfkit: ${(e as Error)?.stack ?? String(e)}\n`);
    }
    process.exitCode = 1;
  },
);
