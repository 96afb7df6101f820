/**
 * The files `bpfkit init` writes, as text. They live here as string constants rather than as
 * files next to the CLI so that `tsc` alone puts them into dist/ (scripts/copy-objects.mjs copies
 * only BPF objects and web pages) and nothing under src/ is a TypeScript file that does not
 * compile on its own (the template's main.ts imports bindings that exist only after `npm run gen`).
 *
 * package.json is built as an object (its values may need JSON escaping); in the README,
 * __NAME__ stands for the package name.
 */

/** The ident `bpfkit gen` is given: names the bindings module and `loadCounter()`. */
export const IDENT = 'counter';
/** Where the bindings go, relative to the project. */
export const GEN_DIR = 'src/gen';
export const SOURCE = 'src/counter.bpf.c';

/** The gen command line after `bpfkit` (the npm script, and what init itself runs). */
export const GEN_ARGS = ['gen', IDENT, SOURCE, '--out-dir', GEN_DIR, '--embed'] as const;

export const TSCONFIG_JSON = `{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2022", "ESNext.Disposable"],
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "rootDir": "src",
    "outDir": "dist",
    "strict": true,
    "sourceMap": true,
    "skipLibCheck": true,
    "types": ["node"]
  },
  "include": ["src/**/*.ts"]
}
`;

export const GITIGNORE = `node_modules/
dist/
${GEN_DIR}/*.bpf.o
`;

export const COUNTER_BPF_C = `// SPDX-License-Identifier: GPL-2.0
/*
 * Counts execve(2) calls per user and reports each one as it happens.
 *
 * count_exec runs on the syscalls/sys_enter_execve tracepoint, that is every
 * time a process calls execve. It
 *   - adds one to execs_by_uid[uid] (a hash map: uid -> number of execs),
 *   - keeps the exec in last_exec[uid] (uid -> struct exec_event), and
 *   - sends it through the ring buffer "events".
 * src/main.ts reads all three. After changing this file, run \`npm run gen\`:
 * it compiles it and regenerates the typed bindings in src/gen/counter.ts.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16
#define FILENAME_LEN 128

struct exec_event {
	__u32 pid;                   /* the calling process (tgid) */
	__u32 uid;
	char comm[TASK_COMM_LEN];    /* its command name, before the exec */
	char filename[FILENAME_LEN]; /* the file it executes (cut to FILENAME_LEN - 1 bytes) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);   /* uid */
	__type(value, __u64); /* execs */
} execs_by_uid SEC(".maps");

/*
 * The last exec of each uid. Its value type is also what puts struct
 * exec_event into the object's BTF, so that the bindings declare it
 * (ExecEvent, decodeExecEvent) for the ring buffer's records too.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct exec_event);
} last_exec SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/*
 * The tracepoint's context, as /sys/kernel/tracing/events/syscalls/
 * sys_enter_execve/format lays it out: 8 bytes of common fields, the syscall
 * number, then the arguments in 8-byte slots.
 */
struct sys_enter_execve_ctx {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	const char *filename;
	const char *const *argv;
	const char *const *envp;
};

SEC("tracepoint/syscalls/sys_enter_execve")
int count_exec(struct sys_enter_execve_ctx *ctx)
{
	struct exec_event e = {};
	__u64 one = 1, *n;

	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	if (bpf_probe_read_user_str(e.filename, sizeof(e.filename), ctx->filename) < 0)
		e.filename[0] = 0; /* not readable (yet): report it as empty */

	n = bpf_map_lookup_elem(&execs_by_uid, &e.uid);
	if (n) {
		__sync_fetch_and_add(n, 1);
	} else if (bpf_map_update_elem(&execs_by_uid, &e.uid, &one, BPF_NOEXIST)) {
		/* Another CPU added this uid meanwhile: count on its entry. */
		n = bpf_map_lookup_elem(&execs_by_uid, &e.uid);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	bpf_map_update_elem(&last_exec, &e.uid, &e, BPF_ANY);
	/* Fails only when the ring is full: user space is not keeping up. */
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;

export const MAIN_TS = `/**
 * Loads the BPF program of src/counter.bpf.c through its generated bindings (src/gen/counter.ts,
 * written by \`npm run gen\`), attaches it to the syscalls/sys_enter_execve tracepoint, then prints
 * every exec as it happens and the execs per uid every few seconds, until Ctrl-C (or SIGTERM),
 * which detaches everything and exits.
 *
 *   npm run gen && npm run build && sudo npm start
 */
import { attachTracepoint, BpfkitError, recordViewFor, RingBufReader } from 'bpfkit';
import { cString, loadCounter, specCounter } from './gen/counter.js';

/**
 * struct exec_event as it lies in the ring: each member is decoded when it is read, char arrays
 * as strings (see counter.bpf.c).
 */
const ExecEvent = recordViewFor<{ pid: number; uid: number; comm: string; filename: string }>(specCounter().btf!, 'exec_event');

/** How often the counts per uid are printed. */
const COUNTS_EVERY_MS = 5000;

async function main(): Promise<void> {
  // Creating the maps and loading the program: the kernel's verifier checks it here.
  const counter = await loadCounter();
  try {
    const printCounts = (title: string): void => {
      const counts = [...counter.maps.execsByUid.entries()].sort(([a], [b]) => a - b);
      const text = counts.map(([uid, n]) => {
        const last = counter.maps.lastExec.lookup(uid);
        return \`uid \${uid}: \${n}\${last ? \` (last: \${cString(last.filename)})\` : ''}\`;
      });
      console.log(\`\${title}: \${text.join(', ') || 'none yet'}\`);
    };
    const program = counter.programs.countExec;
    const link = attachTracepoint(program, 'syscalls', 'sys_enter_execve');
    try {
      const reader = new RingBufReader(counter.maps.events);
      const stop = (): void => reader.close(); // ends the for-await loop below
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const timer = setInterval(() => printCounts('execs per uid'), COUNTS_EVERY_MS);
      console.log(\`counter: attached \${program.name} to syscalls/sys_enter_execve \` +
        \`(program id \${program.info().id}, link id \${link.info().id}); Ctrl-C to stop\`);
      console.log(['PID'.padEnd(8), 'UID'.padEnd(6), 'COMM'.padEnd(16), 'FILENAME'].join(' '));
      try {
        // A batch of records at a time (one promise per batch), valid until the next step; \`e\` is
        // one object moved from record to record (ExecEvent.copy(e) keeps one).
        for await (const batch of reader.batches()) {
          for (const e of batch.records(ExecEvent)) {
            console.log([String(e.pid).padEnd(8), String(e.uid).padEnd(6), e.comm.padEnd(16), e.filename].join(' '));
          }
        }
      } finally {
        clearInterval(timer);
        reader.close();
      }
    } finally {
      link.close();
    }
    printCounts('counter: detached; execs per uid');
  } finally {
    counter.close();
  }
}

main().catch((e: unknown) => {
  if (e instanceof BpfkitError) {
    console.error(\`counter: \${e.message}\`);
    if (process.getuid?.() !== 0) console.error('counter: loading and attaching BPF programs needs root: run \`sudo npm start\`');
  } else {
    console.error(e);
  }
  process.exitCode = 1;
});
`;

export const README_MD = `# __NAME__

Counts \`execve\` calls per user with eBPF, from TypeScript, with [bpfkit](https://www.npmjs.com/package/bpfkit).

- \`src/counter.bpf.c\`: the BPF program. It runs on the \`syscalls/sys_enter_execve\` tracepoint,
  counts execs per uid in a hash map, keeps the last exec of each uid in another, and sends each
  exec through a ring buffer.
- \`src/gen/counter.ts\`: its typed bindings, generated by \`npm run gen\` (\`bpfkit gen\`):
  \`loadCounter()\`, the maps and the program by name, \`decodeExecEvent()\`.
- \`src/main.ts\`: loads the program, attaches it, prints each exec and the counts per uid until
  Ctrl-C. It reads the ring's records in place through a record view of \`struct exec_event\`
  (\`recordViewFor\`): each member is decoded when it is read, \`char\` arrays as strings.

\`\`\`sh
npm install
npm run gen      # compile src/counter.bpf.c and regenerate src/gen/counter.ts (needs clang and libbpf-dev)
npm run build    # tsc: src/ -> dist/
sudo npm start   # load, attach, print; Ctrl-C detaches and exits
\`\`\`

Run \`npm run gen\` again after each change to the C program.
`;

export interface TemplateValues {
  /** The package name. */
  readonly name: string;
  /** The bpfkit dependency: a version range, or file:PATH for a local checkout. */
  readonly bpfkit: string;
  /** Version ranges of the dev dependencies. */
  readonly typescript: string;
  readonly typesNode: string;
}

export function packageJson(v: TemplateValues): string {
  const pkg = {
    name: v.name,
    version: '0.1.0',
    private: true,
    type: 'module',
    description: 'Counts execve calls per uid with eBPF, from TypeScript (made by bpfkit init)',
    scripts: {
      gen: `bpfkit ${GEN_ARGS.join(' ')}`,
      build: 'tsc -p tsconfig.json',
      start: 'node dist/main.js',
    },
    dependencies: { bpfkit: v.bpfkit },
    devDependencies: { '@types/node': v.typesNode, typescript: v.typescript },
    engines: { node: '>=20' },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

/** The project's files, by path relative to its directory, in the order they are written. */
export function projectFiles(v: TemplateValues): ReadonlyMap<string, string> {
  return new Map([
    ['package.json', packageJson(v)],
    ['tsconfig.json', TSCONFIG_JSON],
    ['.gitignore', GITIGNORE],
    ['README.md', README_MD.replaceAll('__NAME__', v.name)],
    [SOURCE, COUNTER_BPF_C],
    ['src/main.ts', MAIN_TS],
  ]);
}
