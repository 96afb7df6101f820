/**
 * Building BPF C for `bpfkit gen`: find a clang that can target BPF and the libbpf headers, then
 * compile one source into an object with the flags a CO-RE program expects (`-O2 -g -target bpfel`,
 * or `bpfeb` when asked for, `-D__TARGET_ARCH_<arch>`, the multiarch include directory for
 * `<asm/types.h>`). Failures end in an error that says which package to install.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfkitError } from '../errors.js';

/** The clang binaries tried, in order, when neither BPF_CLANG nor CLANG names one. */
const CLANG_NAMES = ['clang', 'clang-19', 'clang-18', 'clang-17', 'clang-16', 'clang-15', 'clang-14'];

const INSTALL_HINT = 'apt-get install clang llvm libbpf-dev linux-libc-dev';

/** Per Node architecture: the kernel's name for it (for __TARGET_ARCH_*) and its multiarch triplet. */
const ARCHES: Readonly<Record<string, { arch: string; triplet: string }>> = {
  x64: { arch: 'x86', triplet: 'x86_64-linux-gnu' },
  arm64: { arch: 'arm64', triplet: 'aarch64-linux-gnu' },
  arm: { arch: 'arm', triplet: 'arm-linux-gnueabihf' },
  riscv64: { arch: 'riscv', triplet: 'riscv64-linux-gnu' },
  s390x: { arch: 's390', triplet: 's390x-linux-gnu' },
  ppc64: { arch: 'powerpc', triplet: 'powerpc64le-linux-gnu' },
  loong64: { arch: 'loongarch', triplet: 'loongarch64-linux-gnu' },
  mips64el: { arch: 'mips', triplet: 'mips64el-linux-gnuabi64' },
};

/** clang's BPF targets: little-endian (x86-64, arm64, most hosts) and big-endian (s390x, ...). */
export type BpfTarget = 'bpfel' | 'bpfeb';

export const BPF_TARGETS: readonly BpfTarget[] = ['bpfel', 'bpfeb'];

export class CompileError extends BpfkitError {
  constructor(message: string) {
    super('ERR_BPFKIT_COMPILE', message);
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Looks a command up in PATH (an absolute or relative path is taken as is). */
function which(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  if (cmd.includes('/')) return isExecutable(cmd) ? cmd : undefined;
  for (const dir of (env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/**
 * The clang to use: $BPF_CLANG or $CLANG when set (and then it must exist), else the first of
 * clang, clang-19, ..., clang-14 found in PATH.
 */
export function findClang(env: NodeJS.ProcessEnv = process.env): string {
  const wanted = env['BPF_CLANG'] || env['CLANG'];
  if (wanted) {
    const p = which(wanted, env);
    if (!p) throw new CompileError(`clang "${wanted}" (from $${env['BPF_CLANG'] ? 'BPF_CLANG' : 'CLANG'}) was not found or is not executable`);
    return p;
  }
  for (const name of CLANG_NAMES) {
    const p = which(name, env);
    if (p) return p;
  }
  throw new CompileError(`no clang found (tried ${CLANG_NAMES.join(', ')}): install it with \`${INSTALL_HINT}\`, or set BPF_CLANG=/path/to/clang`);
}

/** The directory holding bpf/bpf_helpers.h: one of `extraDirs`, then /usr/include and /usr/local/include. */
export function findLibbpfHeaders(extraDirs: readonly string[] = []): string | undefined {
  for (const dir of [...extraDirs, '/usr/local/include', '/usr/include']) {
    if (existsSync(join(dir, 'bpf', 'bpf_helpers.h'))) return dir;
  }
  return undefined;
}

/**
 * Options of {@link compileBpf}: the C source, the object to write, extra clang flags, the clang
 * to use, a dependency file to write, and the byte order.
 */
export interface CompileOptions {
  /** The C source. */
  readonly source: string;
  /** Where the object goes (written atomically: a failed build leaves nothing behind). */
  readonly output: string;
  /** Extra clang flags (after ours, so they can override). */
  readonly cflags?: readonly string[];
  /** The clang binary; found with findClang() when absent. */
  readonly clang?: string;
  /** Write a make-style dependency file here (the headers the source included). */
  readonly depfile?: string;
  /** The byte order to compile for (default bpfel). */
  readonly target?: BpfTarget;
}

/**
 * What {@link compileBpf} ran: the clang binary, its arguments, and the headers the source
 * included.
 */
export interface CompileResult {
  readonly clang: string;
  readonly args: readonly string[];
  /** Files the object was built from (source and headers), when a depfile was asked for. */
  readonly dependencies: readonly string[];
}

function includeDirsOf(flags: readonly string[]): string[] {
  const dirs: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i]!;
    if ((f === '-I' || f === '-isystem') && i + 1 < flags.length) dirs.push(flags[++i]!);
    else if (f.startsWith('-I')) dirs.push(f.slice(2));
    else if (f.startsWith('-isystem')) dirs.push(f.slice(8));
  }
  return dirs;
}

/** The flags `bpfkit gen` compiles with for `target` (default bpfel), before the user's. */
export function defaultCflags(target: BpfTarget = 'bpfel'): string[] {
  if (!BPF_TARGETS.includes(target)) throw new CompileError(`unknown BPF target ${JSON.stringify(target)}: expected ${BPF_TARGETS.join(' or ')}`);
  const a = ARCHES[process.arch];
  const flags = ['-O2', '-g', '-target', target];
  if (a) {
    flags.push(`-D__TARGET_ARCH_${a.arch}`);
    const multiarch = `/usr/include/${a.triplet}`;
    if (existsSync(multiarch)) flags.push(`-I${multiarch}`);
  }
  // The headers bpfkit ships (<bpfkit/drops.h>), from dist/src/gen/ or src/gen/ three levels up.
  const shipped = fileURLToPath(new URL('../../../bpf/include', import.meta.url));
  const own = existsSync(shipped) ? shipped : fileURLToPath(new URL('../../bpf/include', import.meta.url));
  if (existsSync(own)) flags.push(`-I${own}`);
  return flags;
}

function run(cmd: string, args: readonly string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 << 20 }, (err, _stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stderr: String(stderr) });
    });
  });
}

/** Parses a make-style dependency file (as clang -MD writes it) into its prerequisites. */
export function parseDepfile(text: string): string[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const colon = joined.search(/:(\s|$)/);
  const rest = colon < 0 ? joined : joined.slice(colon + 1);
  const out: string[] = [];
  // Paths may contain escaped spaces ("\ ").
  for (const m of rest.matchAll(/((?:\\ |[^\s])+)/g)) out.push(m[1]!.replace(/\\ /g, ' '));
  return out;
}

/** Turns clang's complaint into advice when it is about a missing package. */
function hintFor(stderr: string): string {
  if (/['"]bpf\/bpf_(helpers|helper_defs|tracing|core_read|endian)\.h['"] file not found/.test(stderr)) {
    return `\nlibbpf headers are missing: install them with \`apt-get install libbpf-dev\` (or pass -I<dir> after --)`;
  }
  if (/['"]asm\/[a-z_]+\.h['"] file not found/.test(stderr)) {
    return `\n<asm/...> headers are missing: install them with \`apt-get install linux-libc-dev\` (and gcc-multilib on some distributions)`;
  }
  if (/['"]linux\/[a-z_]+\.h['"] file not found/.test(stderr)) {
    return `\nkernel UAPI headers are missing: install them with \`apt-get install linux-libc-dev\``;
  }
  if (/['"]vmlinux\.h['"] file not found/.test(stderr)) {
    return `\nvmlinux.h is missing: write it with \`bpfkit btf dump > vmlinux.h\` next to the source`;
  }
  if (/unknown target triple|No available targets are compatible/.test(stderr)) {
    return `\nthis clang cannot target BPF: install a full LLVM build with \`${INSTALL_HINT}\``;
  }
  return '';
}

/** Compiles one BPF C source into an object. */
export async function compileBpf(options: CompileOptions): Promise<CompileResult> {
  const clang = options.clang ?? findClang();
  const cflags = options.cflags ?? [];
  if (!existsSync(options.source)) throw new CompileError(`${options.source}: no such file`);
  const text = readFileSync(options.source, 'utf8');
  if (/#\s*include\s*[<"]bpf\/bpf_/.test(text) && findLibbpfHeaders(includeDirsOf(cflags)) === undefined) {
    throw new CompileError(`${options.source} includes libbpf headers, but bpf/bpf_helpers.h was not found: install it with \`apt-get install libbpf-dev\` (or pass -I<dir> after --)`);
  }
  const tmp = `${options.output}.tmp-${process.pid}`;
  const depTmp = options.depfile ? `${options.depfile}.tmp-${process.pid}` : undefined;
  const args = [...defaultCflags(options.target), ...cflags];
  if (depTmp) args.push('-MD', '-MF', depTmp);
  args.push('-c', options.source, '-o', tmp);
  const r = await run(clang, args);
  if (r.code !== 0) {
    rmSync(tmp, { force: true });
    if (depTmp) rmSync(depTmp, { force: true });
    const msg = r.stderr.trim();
    throw new CompileError(`clang failed to compile ${options.source} (exit ${r.code})${msg ? `:\n${msg}` : ''}${hintFor(r.stderr)}`);
  }
  renameSync(tmp, options.output);
  let dependencies: string[] = [];
  if (depTmp && options.depfile) {
    renameSync(depTmp, options.depfile);
    dependencies = parseDepfile(readFileSync(options.depfile, 'utf8'));
  }
  return { clang, args, dependencies };
}
