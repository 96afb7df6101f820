/**
 * `bpfkit gen <ident> <source.bpf.c | object.o>`: compile BPF C (or take a built object) and write
 * `<ident>.bpf.o` and typed bindings `<ident>.ts` next to each other, the way bpf2go does for Go.
 * `--target both` compiles for each byte order instead (`<ident>_bpfel.bpf.o`, `<ident>_bpfeb.bpf.o`)
 * and the bindings load the one of the host's. `--watch` rebuilds whenever the source or a header
 * it includes changes.
 */
import { watch, type FSWatcher } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BpfkitError, InvalidArgumentError } from '../index.js';
import { checkIdent, compileBpf, generate, targetOf, type BpfTarget } from '../gen/index.js';
import { isElf } from '../elf/index.js';

const usage = `usage: bpfkit gen <ident> <source.bpf.c | object.o> [options] [-- <clang flags>]

Compiles the C source with clang (-O2 -g -target bpfel, or as --target says) and writes
<ident>.bpf.o and <ident>.ts (typed bindings: load<Ident>(), map key/value types, decoders)
into the output directory. Given an object instead of C, it only generates the bindings.

options:
  --target TARGET    byte order to compile for: bpfel (little-endian, the default), bpfeb
                     (big-endian), or both: then <ident>_bpfel.bpf.o and <ident>_bpfeb.bpf.o
                     are written, and the bindings load the one of the host's byte order
                     (os.endianness(), as <ident>Target says) and decode and encode in it
  --type NAME        also declare this struct/union/enum/typedef (repeatable)
  --out-dir DIR      where to write the files (default: the current directory)
  --watch            regenerate whenever the source or one of its headers changes
  --object-file      load <ident>.bpf.o from beside the compiled module instead of embedding
                     it in the .ts as base64 (the default, so a plain tsc outDir build works);
                     your build must then copy the .bpf.o next to the compiled <ident>.js
  --embed            embed the object (the default; kept for old command lines)
  --import SPEC      module to import bpfkit from (default: bpfkit): its main entry, or a path
                     to it ending in /index.js; the genRuntime helpers come from the internal
                     entry beside it (bpfkit/internal, or internal.js next to index.js)
  -- FLAGS...        extra flags for clang, e.g. -- -I./include -DDEBUG
`;

/** What `bpfkit gen` compiles for: one byte order, or both (bindings choosing by the host's). */
export type GenTarget = BpfTarget | 'both';

export const GEN_TARGETS: readonly GenTarget[] = ['bpfel', 'bpfeb', 'both'];

export interface GenJob {
  readonly ident: string;
  /** A C source (compiled) or a BPF object (used as is). */
  readonly input: string;
  /**
   * The byte order to compile for (default bpfel; for an object, whatever it was built for).
   * `both` writes `<ident>_bpfel.bpf.o` and `<ident>_bpfeb.bpf.o` instead of `<ident>.bpf.o`.
   */
  readonly target?: GenTarget;
  readonly outDir: string;
  readonly types?: readonly string[];
  readonly cflags?: readonly string[];
  readonly embed?: boolean;
  readonly importFrom?: string;
}

export interface GenResult {
  /** The object: `<ident>.bpf.o`, or with --target both the bpfel one (see `objects`). */
  readonly object: string;
  /** Every object written, and whether it changed: one, or with --target both the bpfel and the bpfeb one. */
  readonly objects: readonly { readonly path: string; readonly changed: boolean }[];
  readonly module: string;
  /** Whether each file changed (unchanged files are not rewritten); `object` when any object did. */
  readonly changed: { readonly object: boolean; readonly module: boolean };
  /** The files the object was built from: the source and the headers it included. */
  readonly dependencies: readonly string[];
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

/** The C compiled for `targets`, in that order, and the files it was built from. */
async function compileTargets(job: GenJob, targets: readonly BpfTarget[]): Promise<{ objects: Uint8Array[]; dependencies: string[] }> {
  const work = await mkdtemp(join(tmpdir(), 'bpfkit-gen-'));
  try {
    const settled = await Promise.allSettled(targets.map((target, i) => compileBpf({
      source: job.input, output: join(work, `${target}.o`), cflags: job.cflags ?? [], target,
      ...(i === 0 ? { depfile: join(work, 'deps.d') } : {}),
    })));
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const objects = await Promise.all(targets.map((target) => readFile(join(work, `${target}.o`))));
    const first = settled[0];
    const deps = first?.status === 'fulfilled' ? first.value.dependencies : [];
    return { objects, dependencies: deps.map((d) => resolve(d)) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** One generation: compile (for C input), then write the object(s) and the bindings. */
export async function runGenOnce(job: GenJob): Promise<GenResult> {
  checkIdent(job.ident);
  const target = job.target;
  if (target !== undefined && !GEN_TARGETS.includes(target)) {
    throw new InvalidArgumentError(`--target must be ${targetList()}, not ${JSON.stringify(target)}`);
  }
  const outDir = resolve(job.outDir);
  await mkdir(outDir, { recursive: true });
  const modulePath = join(outDir, `${job.ident}.ts`);
  const source = basename(job.input);
  const options = {
    ident: job.ident, source,
    ...(job.types ? { types: job.types } : {}), ...(job.embed ? { embed: true } : {}),
    ...(job.importFrom ? { importFrom: job.importFrom } : {}),
  };
  /** The objects to write, by file name, and the bindings. */
  let files: { name: string; bytes: Uint8Array }[];
  let text: string;
  let dependencies: string[] = [resolve(job.input)];
  const isC = /\.(c|h)$/i.test(job.input);
  if (isC) {
    // bpfkit reads little-endian objects only: for --target bpfeb the bindings come from a bpfel
    // build of the same C, which is not written.
    const built = await compileTargets(job, target === 'both' || target === 'bpfeb' ? ['bpfel', 'bpfeb'] : ['bpfel']);
    if (built.dependencies.length > 0) dependencies = built.dependencies;
    const el = built.objects[0]!;
    const eb = built.objects[1];
    if (target === 'both' && eb) {
      files = [{ name: `${job.ident}_bpfel.bpf.o`, bytes: el }, { name: `${job.ident}_bpfeb.bpf.o`, bytes: eb }];
      text = generate({ ...options, object: el, objectFileName: files[0]!.name, otherByteOrder: { object: eb, objectFileName: files[1]!.name } });
    } else if (target === 'bpfeb' && eb) {
      files = [{ name: `${job.ident}.bpf.o`, bytes: eb }];
      text = generate({ ...options, object: eb, objectFileName: files[0]!.name, otherByteOrder: { object: el } });
    } else {
      files = [{ name: `${job.ident}.bpf.o`, bytes: el }];
      text = generate({ ...options, object: el, objectFileName: files[0]!.name });
    }
  } else {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(job.input);
    } catch (e) {
      throw new BpfkitError('ERR_BPFKIT_OBJECT_FILE', `cannot read ${job.input}: ${(e as Error).message}`);
    }
    if (!isElf(bytes)) throw new InvalidArgumentError(`${job.input} is neither C source (*.c) nor an ELF object`);
    if (job.cflags && job.cflags.length > 0) throw new InvalidArgumentError('clang flags after -- only apply to C sources');
    if (target === 'both') throw new InvalidArgumentError(`--target both compiles the C source for each byte order: give it the .c, not the object ${job.input}`);
    if (target !== undefined) {
      const actual = targetOf(bytes);
      if (actual !== target) throw new InvalidArgumentError(`${job.input} is a ${actual} object, not ${target}`);
      if (actual === 'bpfeb') {
        throw new InvalidArgumentError(`${job.input} is big-endian, which bpfkit does not read: give the C source with --target bpfeb (the bindings then come from a bpfel build of it) or --target both`);
      }
    }
    files = [{ name: `${job.ident}.bpf.o`, bytes }];
    text = generate({ ...options, object: bytes, objectFileName: files[0]!.name });
  }
  const objects: { path: string; changed: boolean }[] = [];
  for (const f of files) {
    const path = join(outDir, f.name);
    let changed = false;
    if (resolve(job.input) !== path) changed = isC ? await writeIfChanged(path, f.bytes) : await copyIfChanged(job.input, path, f.bytes);
    objects.push({ path, changed });
  }
  const moduleChanged = await writeIfChanged(modulePath, text);
  return {
    object: objects[0]!.path, objects, module: modulePath,
    changed: { object: objects.some((o) => o.changed), module: moduleChanged }, dependencies,
  };
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

function isGenTarget(s: string): s is GenTarget {
  return (GEN_TARGETS as readonly string[]).includes(s);
}

/** "bpfel, bpfeb or both" */
function targetList(): string {
  return `${GEN_TARGETS.slice(0, -1).join(', ')} or ${GEN_TARGETS.at(-1)}`;
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
        'object-file': { type: 'boolean' },
        target: { type: 'string' },
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
  const target = values.target;
  if (target !== undefined && !isGenTarget(target)) {
    process.stderr.write(`bpfkit gen: --target must be ${targetList()}, not ${JSON.stringify(target)}\n${usage}`);
    return 2;
  }
  const job: GenJob = {
    ident, input, outDir: values['out-dir'] ?? '.', types: values.type ?? [], cflags,
    // Embedded unless asked for a side file: what a bpf2go user gets with go:embed.
    ...(values['object-file'] && !values.embed ? {} : { embed: true }), ...(values.import ? { importFrom: values.import } : {}),
    ...(target !== undefined ? { target } : {}),
  };
  checkIdent(ident);
  const report = (r: GenResult): void => {
    const what = [
      ...r.objects.map((o) => `${relativeOrAbsolute(o.path)}${o.changed ? '' : ' (unchanged)'}`),
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
