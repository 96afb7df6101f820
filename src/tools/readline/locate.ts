/**
 * Finding the readline() that bash calls, for the uretprobe:
 *
 *  1. bash itself: Debian and most distributions build bash with its bundled readline, and the
 *     function is in the binary (.dynsym, or .symtab when not stripped);
 *  2. else the shared libraries bash loads, found the way the dynamic linker finds them: DT_NEEDED
 *     entries, breadth-first through their own dependencies, each searched in DT_RPATH (when there
 *     is no DT_RUNPATH), DT_RUNPATH ($ORIGIN expanded), the directories of /etc/ld.so.conf and
 *     the default ones; the first library that defines readline wins, as it would in the process;
 *  3. else the libraries mapped into a running copy of bash (/proc/<pid>/maps), for a readline
 *     that comes from LD_PRELOAD or LD_LIBRARY_PATH, which the environment of each process decides.
 *
 * LD_LIBRARY_PATH of this process is not used: it says nothing about the shells being traced.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, isAbsolute, join } from 'node:path';
import { ElfError, InvalidArgumentError } from '../../index.js';
import { ElfFile, SHN_ABS, SHN_UNDEF, STT } from '../../elf/reader.js';

const SHT_DYNAMIC = 6;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
const STT_GNU_IFUNC = 10;
/** How many libraries the breadth-first search opens at most. */
const MAX_LIBRARIES = 256;

export interface DynamicInfo {
  readonly needed: readonly string[];
  readonly rpath: readonly string[];
  readonly runpath: readonly string[];
}

/** DT_NEEDED, DT_RPATH and DT_RUNPATH of an ELF file's .dynamic section (empty for a static binary). */
export function dynamicInfo(elf: ElfFile): DynamicInfo {
  const dyn = elf.sections.find((s) => s.type === SHT_DYNAMIC);
  const out = { needed: [] as string[], rpath: [] as string[], runpath: [] as string[] };
  if (!dyn) return out;
  const strtab = elf.sections[dyn.link];
  if (!strtab) throw new ElfError(`.dynamic links to missing string table ${dyn.link}`);
  const data = elf.data(dyn);
  const strs = elf.data(strtab);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const str = (off: number): string => {
    if (off >= strs.length) throw new ElfError(`.dynamic: string offset ${off} is past the end of ${strtab.name}`);
    const end = strs.indexOf(0, off);
    return new TextDecoder().decode(strs.subarray(off, end < 0 ? strs.length : end));
  };
  for (let o = 0; o + 16 <= data.length; o += 16) {
    const tag = Number(view.getBigInt64(o, elf.littleEndian));
    const val = Number(view.getBigUint64(o + 8, elf.littleEndian));
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) out.needed.push(str(val));
    else if (tag === DT_RPATH) out.rpath.push(...str(val).split(':').filter(Boolean));
    else if (tag === DT_RUNPATH) out.runpath.push(...str(val).split(':').filter(Boolean));
  }
  return out;
}

/** Which symbol table defines function `name` ('symtab' first), or undefined. */
export function definesFunction(elf: ElfFile, name: string): 'symtab' | 'dynsym' | undefined {
  for (const table of ['symtab', 'dynsym'] as const) {
    const hit = elf.symbols(table).some((s) =>
      s.name === name && s.shndx !== SHN_UNDEF && s.shndx !== SHN_ABS && s.value !== 0 &&
      (s.type === STT.FUNC || s.type === STT_GNU_IFUNC));
    if (hit) return table;
  }
  return undefined;
}

function isExecutableFile(p: string): boolean {
  try {
    const st = statSync(p);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** A command looked up in PATH, as a shell would (a name with a '/' is taken as a path). */
export function findInPath(cmd: string, path = process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin'): string | undefined {
  if (cmd.includes('/')) return isExecutableFile(cmd) ? cmd : undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
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

export interface LocateOptions {
  /** Directories searched after RPATH/RUNPATH (default: /etc/ld.so.conf's, then defaultLibDirs()). */
  readonly libDirs?: readonly string[];
  /** Where /proc is (tests). */
  readonly procRoot?: string;
  /** The function to look for (default readline). */
  readonly symbol?: string;
}

export interface ReadlineTarget {
  /** The program whose lines are traced (bash, resolved), or undefined when a library was given. */
  readonly program: string | undefined;
  /** The file the uretprobe goes on: the program itself, or the library that holds readline. */
  readonly file: string;
  /** Whether readline is in the program itself (else lines from other programs using the library are filtered out). */
  readonly inProgram: boolean;
  /** How it was found, for --verbose. */
  readonly how: string;
}

function parseElf(path: string, what: string): ElfFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new InvalidArgumentError(`${what} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    return ElfFile.parse(bytes);
  } catch (e) {
    if (e instanceof ElfError) throw new InvalidArgumentError(`${what} ${path} is not an ELF binary bpfkit can read: ${e.message}`);
    throw e;
  }
}

function expandOrigin(dir: string, origin: string): string {
  return dir.replace(/\$\{ORIGIN\}|\$ORIGIN/g, origin);
}

function sameFile(a: string, b: string): boolean {
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** Libraries (regular files with ".so" in the name) mapped by running processes of `program`. */
export function mappedLibraries(program: string, procRoot = '/proc'): string[] {
  const found = new Set<string>();
  let pids: string[];
  try {
    pids = readdirSync(procRoot).filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  for (const pid of pids) {
    try {
      if (!sameFile(join(procRoot, pid, 'exe'), program)) continue;
      for (const line of readFileSync(join(procRoot, pid, 'maps'), 'utf8').split('\n')) {
        const m = /^\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+(\/.*\.so(?:\.[^/]*)?)$/.exec(line);
        if (m) found.add(m[1]!);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return [...found].sort();
}

/**
 * Where `symbol` (readline) is for `program`: in it, in a library it loads, or in a library a
 * running copy of it has mapped. Throws InvalidArgumentError saying what was searched.
 */
export function locateReadline(programPath: string, options: LocateOptions = {}): ReadlineTarget {
  const symbol = options.symbol ?? 'readline';
  const program = realpathOr(programPath);
  const elf = parseElf(program, 'the program');
  const own = definesFunction(elf, symbol);
  if (own) {
    return { program, file: program, inProgram: true, how: `${symbol} is in ${program} itself (.${own})` };
  }

  const libDirs = options.libDirs ?? [...ldSoConfDirs(), ...defaultLibDirs()];
  const visited = new Set<string>();
  const searched: string[] = [];
  const queue: { name: string; from: ElfFile; fromPath: string }[] = [];
  const enqueue = (from: ElfFile, fromPath: string): void => {
    for (const name of dynamicInfo(from).needed) queue.push({ name, from, fromPath });
  };
  enqueue(elf, program);
  while (queue.length > 0 && visited.size < MAX_LIBRARIES) {
    const { name, from, fromPath } = queue.shift()!;
    if (visited.has(name)) continue;
    visited.add(name);
    searched.push(name);
    const path = findLibrary(name, from, fromPath, elf.machine, libDirs);
    if (!path) continue;
    let lib: ElfFile;
    try {
      lib = ElfFile.parse(readFileSync(path));
    } catch {
      continue;
    }
    const table = definesFunction(lib, symbol);
    if (table) {
      return {
        program, file: path, inProgram: false,
        how: `${symbol} is not in ${program}; it comes from ${name} (a DT_NEEDED dependency), found at ${path} (.${table})`,
      };
    }
    enqueue(lib, path);
  }

  for (const path of mappedLibraries(program, options.procRoot)) {
    try {
      const table = definesFunction(ElfFile.parse(readFileSync(path)), symbol);
      if (table) {
        return {
          program, file: path, inProgram: false,
          how: `${symbol} is not in ${program} nor its DT_NEEDED libraries; a running ${basename(program)} has ${path} mapped, which has it (.${table})`,
        };
      }
    } catch {
      // unreadable: try the next
    }
  }
  const libs = searched.length > 0 ? `nor in the libraries it loads (${searched.slice(0, 12).join(', ')}${searched.length > 12 ? ', ...' : ''})` : 'and it loads no shared libraries';
  throw new InvalidArgumentError(`no ${symbol} function in ${program} ${libs}: is it a bash built with readline? Point --binary at the bash (or the libreadline.so) to trace`);
}

function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** The file the dynamic linker would load for DT_NEEDED `name` of `from`. */
function findLibrary(name: string, from: ElfFile, fromPath: string, machine: number, libDirs: readonly string[]): string | undefined {
  const candidates: string[] = [];
  if (name.includes('/')) {
    candidates.push(isAbsolute(name) ? name : join(dirname(fromPath), name));
  } else {
    const d = dynamicInfo(from);
    const origin = dirname(fromPath);
    const dirs = [...(d.runpath.length === 0 ? d.rpath : []), ...d.runpath].map((x) => expandOrigin(x, origin));
    for (const dir of [...dirs, ...libDirs]) candidates.push(join(dir, name));
  }
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      const head = readHeader(c);
      // Only a 64-bit library for the same machine (not /usr/lib32's i386 copy, say).
      if (head && head.elf64 && head.machine === machine) return c;
    } catch {
      // missing: next
    }
  }
  return undefined;
}

function readHeader(path: string): { elf64: boolean; machine: number } | undefined {
  const b = new Uint8Array(20);
  const fd = openSync(path, 'r');
  try {
    if (readSync(fd, b, 0, 20, 0) < 20) return undefined;
  } finally {
    closeSync(fd);
  }
  if (b.length < 20 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46) return undefined;
  const le = b[5] === 1;
  const machine = le ? b[18]! | (b[19]! << 8) : (b[18]! << 8) | b[19]!;
  return { elf64: b[4] === 2, machine };
}

/** Whether a path names a shared library rather than a program (libreadline.so.8, libedit.so). */
export function looksLikeLibrary(path: string): boolean {
  return /\.so(\.[0-9.]+)?$/.test(basename(path));
}

/**
 * Whether process `pid` runs `program` (its /proc/<pid>/exe is the same file); undefined when
 * that cannot be told (the process is gone).
 */
export function runsProgram(pid: number, program: string, procRoot = '/proc'): boolean | undefined {
  let exe;
  try {
    exe = statSync(join(procRoot, String(pid), 'exe'));
  } catch {
    return undefined;
  }
  try {
    const st = statSync(program);
    return exe.dev === st.dev && exe.ino === st.ino;
  } catch {
    return undefined;
  }
}
