/**
 * Binary and library resolution: the one place that turns a name into the file a uprobe, a USDT
 * probe or a tool looks into, following what the shell and the dynamic linker do.
 *
 * - A name with a '/' is a path: made absolute (against the current directory), it must be a
 *   regular file.
 * - A program name ("bash") is looked up in PATH as execvp does: the first regular file in a PATH
 *   directory that may be executed (access X_OK). Empty PATH entries are skipped, not taken as
 *   the current directory.
 * - A library name ("libc.so.6", anything with ".so" then the end or a '.') is looked up as ld.so
 *   does for this process: LD_LIBRARY_PATH, then the directories of /etc/ld.so.conf (and the
 *   files it includes), then the dynamic linker's default directories for the architecture. Only
 *   a 64-bit ELF file for the same machine is taken, so /usr/lib32's i386 copy is skipped as ld.so
 *   skips it. /etc/ld.so.cache is not read: ldconfig builds it from those same directories.
 * - A DT_NEEDED entry of a loaded object (`findNeeded`): DT_RPATH when there is no DT_RUNPATH,
 *   LD_LIBRARY_PATH when the caller passes one, DT_RUNPATH ($ORIGIN expanded), then the
 *   directories above, for the machine of the object that needs it.
 */
import { accessSync, constants as fsConstants, closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { elfIdent, type ElfFile } from './reader.js';

const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/** Where to look: overrides of the search paths, and the machine a library must be built for. */
export interface ResolveOptions {
  /** PATH for programs (default: this process's PATH). */
  readonly path?: string;
  /** LD_LIBRARY_PATH for libraries (default: this process's; '' for none). */
  readonly ldLibraryPath?: string;
  /** Directories searched after LD_LIBRARY_PATH (default: ld.so.conf's, then defaultLibDirs()). */
  readonly libDirs?: readonly string[];
  /** The ELF machine a library must be for (default: this process's architecture). */
  readonly machine?: number;
}

/** Whether a name or path names a shared library rather than a program (libc.so.6, libedit.so). */
export function isLibraryName(name: string): boolean {
  return /\.so(\.[0-9.]+)?$/.test(basename(name));
}

function isRegularFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function isExecutableFile(p: string): boolean {
  if (!isRegularFile(p)) return false;
  try {
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A program looked up as a shell would: a name with a '/' is taken as a path (made absolute). */
export function findProgram(cmd: string, path = process.env['PATH'] ?? DEFAULT_PATH): string | undefined {
  if (cmd.includes('/')) return isExecutableFile(cmd) ? resolve(cmd) : undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    if (isExecutableFile(p)) return resolve(p);
  }
  return undefined;
}

/** ELF machine numbers of Node's architectures. */
const MACHINES: Readonly<Record<string, number>> = { x64: 62, arm64: 183, arm: 40, riscv64: 243, s390x: 22, ppc64: 21, loong64: 258, ia32: 3 };

/** The ELF machine of this process (undefined for an architecture this table does not know). */
export function hostMachine(arch: string = process.arch): number | undefined {
  return MACHINES[arch];
}

const TRIPLETS: Readonly<Record<string, string>> = {
  x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf', riscv64: 'riscv64-linux-gnu',
  s390x: 's390x-linux-gnu', ppc64: 'powerpc64le-linux-gnu', loong64: 'loongarch64-linux-gnu',
};

/** The dynamic linker's default directories for this architecture. */
export function defaultLibDirs(arch: string = process.arch): string[] {
  const t = TRIPLETS[arch];
  return [...(t ? [`/lib/${t}`, `/usr/lib/${t}`] : []), '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
}

/** Expands the `*` and `?` of the last part of a path pattern (what ld.so.conf include lines use). */
function globLast(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = basename(pattern);
  if (!/[*?]/.test(base)) return [pattern];
  const re = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  try {
    return readdirSync(dir).filter((n) => re.test(n)).sort().map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/** The directories listed in /etc/ld.so.conf and the files it includes, in order. */
export function ldSoConfDirs(file = '/etc/ld.so.conf', depth = 0): string[] {
  if (depth > 8) return [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const inc = /^include\s+(.+)$/.exec(line);
    if (inc) {
      for (const pat of inc[1]!.split(/\s+/)) {
        const abs = isAbsolute(pat) ? pat : join(dirname(file), pat);
        for (const f of globLast(abs)) dirs.push(...ldSoConfDirs(f, depth + 1));
      }
      continue;
    }
    if (line.startsWith('hwcap ')) continue;
    for (const d of line.split(/[:,\s]+/)) if (isAbsolute(d)) dirs.push(d);
  }
  return dirs;
}

/** The directories searched after LD_LIBRARY_PATH and the object's own paths. */
export function systemLibDirs(options: ResolveOptions = {}): readonly string[] {
  return options.libDirs ?? [...ldSoConfDirs(), ...defaultLibDirs()];
}

function ldLibraryPathDirs(options: ResolveOptions): string[] {
  return (options.ldLibraryPath ?? process.env['LD_LIBRARY_PATH'] ?? '').split(delimiter).filter(Boolean);
}

/** Whether `path` is a 64-bit ELF file for `machine` (any machine when undefined). */
function loadableFor(path: string, machine: number | undefined): boolean {
  if (!isRegularFile(path)) return false;
  const head = new Uint8Array(20);
  let n = 0;
  try {
    const fd = openSync(path, 'r');
    try {
      n = readSync(fd, head, 0, 20, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  const id = n === 20 ? elfIdent(head) : undefined;
  return id !== undefined && id.elf64 && (machine === undefined || id.machine === machine);
}

function firstLoadable(dirs: readonly string[], name: string, machine: number | undefined): string | undefined {
  for (const dir of dirs) {
    const p = join(dir, name);
    if (loadableFor(p, machine)) return isAbsolute(p) ? p : resolve(p);
  }
  return undefined;
}

/** A library by bare name, for this process (LD_LIBRARY_PATH, ld.so.conf, default directories). */
export function findLibrary(name: string, options: ResolveOptions = {}): string | undefined {
  return firstLoadable([...ldLibraryPathDirs(options), ...systemLibDirs(options)], name, options.machine ?? hostMachine());
}

/** The file the dynamic linker would load for DT_NEEDED `name` of `from` (read from `fromPath`). */
export function findNeeded(name: string, from: ElfFile, fromPath: string, options: ResolveOptions = {}): string | undefined {
  const machine = options.machine ?? from.machine;
  if (name.includes('/')) {
    const p = isAbsolute(name) ? name : join(dirname(fromPath), name);
    return loadableFor(p, machine) ? p : undefined;
  }
  const d = from.dynamic();
  const origin = dirname(fromPath);
  const own = (dirs: readonly string[]) => dirs.map((x) => x.replace(/\$\{ORIGIN\}|\$ORIGIN/g, origin));
  const dirs = [
    ...(d.runpath.length === 0 ? own(d.rpath) : []),
    ...(options.ldLibraryPath !== undefined ? ldLibraryPathDirs(options) : []),
    ...own(d.runpath),
    ...systemLibDirs(options),
  ];
  return firstLoadable(dirs, name, machine);
}

/**
 * The absolute path of the binary or library a probe goes on: a path as given (made absolute), a
 * bare library name through `findLibrary`, a bare program name through PATH. `who` prefixes the
 * error ("uprobe", "usdt").
 * @throws `InvalidArgumentError` (`ERR_BPFKIT_INVALID_ARG`, exported by `bpfkit`) naming what was searched when nothing is found.
 */
export function resolveBinary(binary: string, who: string, options: ResolveOptions = {}): string {
  if (!binary) throw new InvalidArgumentError(`${who}: the binary path is empty`);
  if (binary.includes('/')) {
    const p = resolve(binary);
    if (!isRegularFile(p)) throw new InvalidArgumentError(`${who}: ${p} does not exist or is not a regular file`);
    return p;
  }
  if (isLibraryName(binary)) {
    const found = findLibrary(binary, options);
    if (found) return found;
    const dirs = [...ldLibraryPathDirs(options), ...systemLibDirs(options)];
    throw new InvalidArgumentError(`${who}: ${binary} was not found in LD_LIBRARY_PATH or the library directories (${dirs.join(':')}) as a 64-bit library for this machine`);
  }
  const path = options.path ?? process.env['PATH'] ?? DEFAULT_PATH;
  const found = findProgram(binary, path);
  if (found) return found;
  throw new InvalidArgumentError(`${who}: ${binary} was not found in PATH (${path.split(delimiter).filter(Boolean).join(':')})`);
}
