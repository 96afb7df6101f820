/**
 * Finding the readline() that bash calls, for the uretprobe:
 *
 *  1. bash itself: Debian and most distributions build bash with its bundled readline, and the
 *     function is in the binary (.dynsym, or .symtab when not stripped);
 *  2. else the shared libraries bash loads, found the way the dynamic linker finds them: DT_NEEDED
 *     entries, breadth-first through their own dependencies, each searched in DT_RPATH (when there
 *     is no DT_RUNPATH), DT_RUNPATH ($ORIGIN expanded), the directories of /etc/ld.so.conf and
 *     the default ones (src/elf/resolve.ts `findNeeded`); the first library that defines readline
 *     wins, as it would in the process;
 *  3. else the libraries mapped into a running copy of bash (/proc/<pid>/maps), for a readline
 *     that comes from LD_PRELOAD or LD_LIBRARY_PATH, which the environment of each process decides.
 *
 * LD_LIBRARY_PATH of this process is not used: it says nothing about the shells being traced.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InvalidArgumentError } from '../../index.js';
import { ElfFile, findNeeded, isLibraryName, openElfFile, systemLibDirs } from '../../elf/index.js';

/** How many libraries the breadth-first search opens at most. */
const MAX_LIBRARIES = 256;

/** Which symbol table defines function `name` ('symtab' first), or undefined. */
export function definesFunction(elf: ElfFile, name: string): 'symtab' | 'dynsym' | undefined {
  return elf.findSymbol(name)?.table;
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
  const elf = openElfFile(program, 'the program');
  const own = definesFunction(elf, symbol);
  if (own) {
    return { program, file: program, inProgram: true, how: `${symbol} is in ${program} itself (.${own})` };
  }

  const libDirs = systemLibDirs(options);
  const visited = new Set<string>();
  const searched: string[] = [];
  const queue: { name: string; from: ElfFile; fromPath: string }[] = [];
  const enqueue = (from: ElfFile, fromPath: string): void => {
    for (const name of from.dynamic().needed) queue.push({ name, from, fromPath });
  };
  enqueue(elf, program);
  while (queue.length > 0 && visited.size < MAX_LIBRARIES) {
    const { name, from, fromPath } = queue.shift()!;
    if (visited.has(name)) continue;
    visited.add(name);
    searched.push(name);
    // LD_LIBRARY_PATH of this process says nothing about the shells traced: none.
    const path = findNeeded(name, from, fromPath, { libDirs, ldLibraryPath: '', machine: elf.machine });
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

/** Whether a path names a shared library rather than a program (libreadline.so.8, libedit.so). */
export const looksLikeLibrary = isLibraryName;

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
