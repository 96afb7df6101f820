/**
 * `bpfkit gen <ident> <source.bpf.c | object.o>`: compile BPF C (or take a built object) and write
 * `<ident>.bpf.o` and typed bindings `<ident>.ts` next to each other, the way bpf2go does for Go.
 * `--watch` rebuilds whenever the source or a header it includes changes.
 */
import { watch, type FSWatcher } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BpfkitError, InvalidArgumentError } from '../errors.js';
import { compileBpf } from '../gen/compile.js';
import { checkIdent, generate } from '../gen/module.js';

const usage = `usage: bpfkit gen <ident> <source.bpf.c | object.o> [options] [-- <clang flags>]

Compiles the C source with clang (-O2 -g -target bpfel) and writes <ident>.bpf.o and
<ident>.ts (typed bindings: load<Ident>(), map key/value types, decoders) into the output
directory. Given an object instead of C, it only generates the bindings.

options:
  --type NAME        also declare this struct/union/enum/typedef (repeatable)
  --out-dir DIR      where to write the files (default: the current directory)
  --watch            regenerate whenever the source or one of its headers changes
  --embed            embed the object in the .ts as base64 instead of loading it from disk
  --import SPEC      module to import bpfkit from (default: bpfkit): its main entry, which the
                     bindings take everything from, the genRuntime helpers included
  -- FLAGS...        extra flags for clang, e.g. -- -I./include -DDEBUG
`;

export interface GenJob {
  readonly ident: string;
  /** A C source (compiled) or a BPF object (used as is). */
  readonly input: string;
  readonly outDir: string;
  readonly types?: readonly string[];
  readonly cflags?: readonly string[];
  readonly embed?: boolean;
  readonly importFrom?: string;
}

export interface GenResult {
  readonly object: string;
  readonly module: string;
  /** Whether each file changed (unchanged files are not rewritten). */
  readonly changed: { readonly object: boolean; readonly module: boolean };
  /** The files the object was built from: the source and the headers it included. */
  readonly dependencies: readonly string[];
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];

function isElf(bytes: Uint8Array): boolean {
  return ELF_MAGIC.every((b, i) => bytes[i] === b);
}

/** Writes `path` only when its content differs, so file watchers and incremental builds stay quiet. */
async function writeIfChanged(path: string, data: Uint8Array | string): Promise<boolean> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  try {
    const old = await readFile(path);
    if (Buffer.compare(old, bytes) === 0) return false;
  } catch {
    // absent: write it
  }
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
  return true;
}

/** One generation: compile (for C input), then write the object and the bindings. */
export async function runGenOnce(job: GenJob): Promise<GenResult> {
  checkIdent(job.ident);
  const outDir = resolve(job.outDir);
  await mkdir(outDir, { recursive: true });
  const objectName = `${job.ident}.bpf.o`;
  const objectPath = join(outDir, objectName);
  const modulePath = join(outDir, `${job.ident}.ts`);
  let bytes: Uint8Array;
  let dependencies: string[] = [resolve(job.input)];
  const isC = /\.(c|h)$/i.test(job.input);
  if (isC) {
    const work = await mkdtemp(join(tmpdir(), 'bpfkit-gen-'));
    try {
      const built = join(work, objectName);
      const r = await compileBpf({ source: job.input, output: built, cflags: job.cflags ?? [], depfile: join(work, 'deps.d') });
      bytes = await readFile(built);
      if (r.dependencies.length > 0) dependencies = r.dependencies.map((d) => resolve(d));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  } else {
    try {
      bytes = await readFile(job.input);
    } catch (e) {
      throw new BpfkitError('ERR_BPFKIT_OBJECT_FILE', `cannot read ${job.input}: ${(e as Error).message}`);
    }
    if (!isElf(bytes)) throw new InvalidArgumentError(`${job.input} is neither C source (*.c) nor an ELF object`);
    if (job.cflags && job.cflags.length > 0) throw new InvalidArgumentError('clang flags after -- only apply to C sources');
  }
  const text = generate({
    ident: job.ident, object: bytes, objectFileName: objectName, source: basename(job.input),
    ...(job.types ? { types: job.types } : {}), ...(job.embed ? { embed: true } : {}),
    ...(job.importFrom ? { importFrom: job.importFrom } : {}),
  });
  let objectChanged = false;
  if (resolve(job.input) !== objectPath) {
    objectChanged = isC ? await writeIfChanged(objectPath, bytes) : await copyIfChanged(job.input, objectPath, bytes);
  }
  const moduleChanged = await writeIfChanged(modulePath, text);
  return { object: objectPath, module: modulePath, changed: { object: objectChanged, module: moduleChanged }, dependencies };
}

async function copyIfChanged(from: string, to: string, bytes: Uint8Array): Promise<boolean> {
  try {
    if (Buffer.compare(await readFile(to), bytes) === 0) return false;
  } catch {
    // absent
  }
  await copyFile(from, to);
  return true;
}

export interface GenWatcher {
  /** Stops watching; `done` then resolves. */
  close(): void;
  readonly done: Promise<void>;
}

export type GenEvent =
  | { readonly kind: 'generated'; readonly result: GenResult }
  | { readonly kind: 'error'; readonly error: Error };

/**
 * Generates once, then again whenever the source or one of the headers it included changes.
 * Errors (a typo in the C) are reported and watching goes on.
 */
export function watchGen(job: GenJob, onEvent: (e: GenEvent) => void, options: { debounceMs?: number } = {}): GenWatcher {
  const debounce = options.debounceMs ?? 100;
  const watchers = new Map<string, FSWatcher>();
  let files = new Set<string>([resolve(job.input)]);
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  let closed = false;
  let finish: () => void = () => {};
  const done = new Promise<void>((r) => { finish = r; });

  const rewatch = (): void => {
    const dirs = new Set([...files].map((f) => dirname(f)));
    for (const [dir, w] of watchers) {
      if (!dirs.has(dir)) {
        w.close();
        watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      try {
        // Watch directories, not files: editors save by writing a new file and renaming it.
        const w = watch(dir, { persistent: true }, (_event, name) => {
          if (name === null || files.has(join(dir, name.toString()))) schedule();
        });
        w.on('error', () => { /* a directory that vanished: ignore */ });
        watchers.set(dir, w);
      } catch {
        // unreadable directory: ignore
      }
    }
  };

  const build = async (): Promise<void> => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const result = await runGenOnce(job);
      files = new Set([resolve(job.input), ...result.dependencies]);
      if (!closed) onEvent({ kind: 'generated', result });
    } catch (e) {
      if (!closed) onEvent({ kind: 'error', error: e instanceof Error ? e : new Error(String(e)) });
    } finally {
      running = false;
    }
    if (closed) return;
    rewatch();
    if (again) {
      again = false;
      schedule();
    }
  };

  function schedule(): void {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void build();
    }, debounce);
  }

  rewatch();
  void build();
  return {
    close(): void {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers.values()) w.close();
      watchers.clear();
      finish();
    },
    done,
  };
}

function relativeOrAbsolute(p: string): string {
  const cwd = process.cwd();
  return p.startsWith(`${cwd}/`) ? p.slice(cwd.length + 1) : p;
}

export async function runGen(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash < 0 ? argv : argv.slice(0, dash);
  const cflags = dash < 0 ? [] : argv.slice(dash + 1);
  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      allowPositionals: true,
      options: {
        type: { type: 'string', multiple: true },
        'out-dir': { type: 'string' },
        watch: { type: 'boolean' },
        embed: { type: 'boolean' },
        import: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    process.stderr.write(`bpfkit gen: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const [ident, input, ...extra] = positionals;
  if (ident === undefined || input === undefined || extra.length > 0) {
    process.stderr.write(`bpfkit gen: ${extra.length ? `unexpected argument "${extra[0]}"` : 'needs <ident> and <source.bpf.c | object.o>'}\n${usage}`);
    return 2;
  }
  const job: GenJob = {
    ident, input, outDir: values['out-dir'] ?? '.', types: values.type ?? [], cflags,
    ...(values.embed ? { embed: true } : {}), ...(values.import ? { importFrom: values.import } : {}),
  };
  checkIdent(ident);
  const report = (r: GenResult): void => {
    const what = [
      `${relativeOrAbsolute(r.object)}${r.changed.object ? '' : ' (unchanged)'}`,
      `${relativeOrAbsolute(r.module)}${r.changed.module ? '' : ' (unchanged)'}`,
    ];
    process.stdout.write(`bpfkit gen: wrote ${what.join(', ')}\n`);
  };
  if (!values.watch) {
    report(await runGenOnce(job));
    return 0;
  }
  const w = watchGen(job, (e) => {
    if (e.kind === 'generated') report(e.result);
    else process.stderr.write(`bpfkit gen: ${e.error.message}\n`);
  });
  process.stdout.write(`bpfkit gen: watching ${relativeOrAbsolute(resolve(input))} (Ctrl-C to stop)\n`);
  const stop = (): void => w.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await w.done;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return 0;
}
