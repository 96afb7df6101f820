/**
 * Collection: the live objects of a CollectionSpec. Loading creates the maps (inner-map templates
 * first, pinned maps reused), writes global data, loads the object's BTF and then every program,
 * and finally fills prog arrays and maps of maps. Any failure closes what was created, so a failed
 * load leaves nothing behind.
 */
import { readFileSync } from 'node:fs';
import { Btf } from '../btf/btf.js';
import { pinExists } from '../sys/bpffs.js';
import { join } from 'node:path';
import type { CollectionSpec, MapSpec, ProgramSpec } from '../spec/collection-spec.js';
import { SpecError } from '../errors.js';
import { loadBtf } from './btf-load.js';
import { prepareCoreCandidates } from '../btf/core.js';
import { ExternResolver } from './externs.js';
import { kernelBtf as runningKernelBtf } from '../kernel/attach-target.js';
import { checkProgramType, loadProgram, missingMap, type ProgramLoadOptions } from './program-load.js';
import { BpfMap } from '../objects/map.js';
import type { Program } from '../objects/program.js';
import type { AttachOptions } from '../link/attach.js';
import type { Link } from '../link/link.js';
import { raiseMemlockLimit } from '../sys/rlimit.js';
import { LazyDataSection, Variable } from '../objects/variable.js';
import { possibleCpus } from '../sys/cpus.js';
import type { FD } from '../sys/fd.js';

/**
 * Options of {@link Collection.load}: which programs to load and how, where pinned maps live, maps
 * to reuse, and the kernel BTF to relocate CO-RE programs against.
 */
export interface CollectionOptions {
  programs?: ProgramLoadOptions & {
    /** Load only these programs (by C name). */
    only?: readonly string[];
    /** Also load these '?'-section programs, which are skipped by default. */
    include?: readonly string[];
  };
  maps?: {
    /** Directory for maps with `pinning = LIBBPF_PIN_BY_NAME`; default /sys/fs/bpf. */
    pinPath?: string;
  };
  /** Use these existing maps instead of creating the ones of the same name. */
  replaceMaps?: Readonly<Record<string, BpfMap>>;
  /**
   * The kernel's BTF for CO-RE, for kernels without /sys/kernel/btf/vmlinux: a parsed Btf, or the
   * path of a BTF file (such as one from BTFHub for this kernel's build).
   */
  kernelBtf?: Btf | string;
}

/**
 * The maps, programs and global variables of one BPF object, live in the kernel: what
 * {@link Collection.load} makes of a {@link CollectionSpec}. Maps are created first (pinned ones
 * reused), global data written, the object's BTF and then every program loaded, and prog arrays
 * and maps of maps filled. A failure at any step closes what was already created. Closing the
 * collection closes every map and program it owns (links keep their program alive in the kernel).
 *
 * Requires Linux 3.19 (the bpf() syscall with hash and array maps and socket filter programs); an
 * object needs more as it uses more: each map type ({@link MapType}) and program type its own
 * version, BTF 4.18 (without it `btfError` says why and programs load without BTF), global
 * variables (`.data`, `.rodata`, `.bss`) 5.2, CO-RE against the kernel's BTF 5.4 (or `kernelBtf`).
 *
 * @throws {@link VerifierError} (`ERR_BPFKIT_VERIFIER`) when the verifier refuses a program (with
 *   its log).
 * @throws {@link CoreRelocationError} (`ERR_BPFKIT_CORE`) when a CO-RE relocation cannot be applied.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) when the kernel lacks a map type,
 *   program type or feature the object needs.
 * @throws {@link BpfSyscallError} (`code` is the errno name, e.g. EPERM without CAP_BPF) when a map
 *   or program cannot be created.
 * @throws {@link SpecError} (`ERR_BPFKIT_SPEC`) when a pinned or replacement map does not match its
 *   definition, or the `kernelBtf` file cannot be read.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a bad option.
 * @example
 * ```ts
 * import { CollectionSpec, Collection, attachXdp } from 'bpfkit';
 *
 * const spec = await CollectionSpec.fromFile('counter.bpf.o');
 * using coll = await Collection.load(spec);        // closed at the end of the scope
 * using link = attachXdp(coll.programs.get('count_packets')!, 'lo');
 * const counts = coll.maps.get('counts')!;
 * console.log(counts.lookup(0));
 * ```
 */
export class Collection implements Disposable {
  readonly maps: ReadonlyMap<string, BpfMap>;
  readonly programs: ReadonlyMap<string, Program>;
  readonly variables: ReadonlyMap<string, Variable>;
  /** Why the object's BTF could not be loaded, when the kernel refused it (maps and programs then load without). */
  readonly btfError: Error | undefined;
  readonly #owned: BpfMap[];
  readonly #mappings: LazyDataSection[];

  private constructor(maps: Map<string, BpfMap>, programs: Map<string, Program>, variables: Map<string, Variable>, owned: BpfMap[], btfError: Error | undefined, mappings: LazyDataSection[]) {
    this.#mappings = mappings;
    this.maps = maps;
    this.programs = programs;
    this.variables = variables;
    this.#owned = owned;
    this.btfError = btfError;
  }

  /** Creates the maps and loads the programs of `spec` into the kernel. */
  static async load(spec: CollectionSpec, options: CollectionOptions = {}): Promise<Collection> {
    return Collection.loadSync(spec, options);
  }

  /** As load(), synchronously (every step is a syscall). */
  static loadSync(spec: CollectionSpec, options: CollectionOptions = {}): Collection {
    raiseMemlockLimit();
    const kernelBtf = typeof options.kernelBtf === 'string' ? readBtfFile(options.kernelBtf) : options.kernelBtf;
    const programOptions = { ...options.programs, ...(kernelBtf ? { kernelBtf } : {}) };
    // Programs that cannot load whatever the kernel says fail before anything is created.
    for (const ps of spec.programs.values()) if (wanted(ps, options)) checkProgramType(ps);
    const maps = new Map<string, BpfMap>();
    const owned: BpfMap[] = [];
    const programs = new Map<string, Program>();
    const mappings = new Map<string, LazyDataSection>();
    let btfFd: FD | undefined;
    let externs: ExternResolver | undefined;
    try {
      let btfError: Error | undefined;
      if (spec.btf) {
        const r = loadBtf(spec.btf);
        if ('fd' in r) btfFd = r.fd;
        else btfError = r.error;
      }
      const btfFdNum = btfFd ? btfFd.value : 0;
      for (const [name, ms] of spec.maps) {
        const replacement = options.replaceMaps?.[name];
        if (replacement) {
          checkCompatible(ms, replacement);
          maps.set(name, replacement);
          continue;
        }
        const m = createMap(ms, btfFdNum, options.maps?.pinPath ?? '/sys/fs/bpf');
        maps.set(name, m);
        owned.push(m);
      }
      for (const [name, ms] of spec.maps) {
        if (ms.data && !options.replaceMaps?.[name]) {
          const m = maps.get(name)!;
          m.update(0, ms.data);
          if (ms.freeze) m.freeze();
        }
      }
      const mapFd = (prog: string) => (name: string) => {
        const m = maps.get(name);
        if (!m) throw missingMap(prog, name);
        return m.fd;
      };
      // CO-RE needs the running kernel's BTF; parsed first, it also answers extern questions
      // (LINUX_HAS_SYSCALL_WRAPPER) that would otherwise read /proc/kallsyms. A kernel without it
      // fails later, where the relocations need it, with the error naming what is missing.
      const relocated = [...spec.programs.values()].filter((ps) => wanted(ps, options) && ps.coreRelos.length > 0);
      if (relocated.length > 0) {
        let target: Btf | undefined = kernelBtf;
        try {
          target ??= runningKernelBtf();
        } catch {
          // reported by the program that needs it
        }
        // Every program's root types looked up in one walk over the kernel's types.
        if (target) prepareCoreCandidates(target, relocated);
      }
      // One resolver for the object: one `.kconfig` map, kernel facts looked up once.
      externs = new ExternResolver({ btfFd: btfFdNum });
      for (const [name, ps] of spec.programs) {
        if (!wanted(ps, options)) continue;
        programs.set(name, loadProgram(ps, { mapFd: mapFd(name), btfFd: btfFdNum, externs }, programOptions));
      }
      externs.close();
      fillSlots(spec, maps, programs);
      for (const [name, ms] of spec.maps) {
        const m = maps.get(name);
        if (ms.data && m && owned.includes(m)) {
          mappings.set(name, new LazyDataSection(m, ms));
        }
      }
      const variables = new Map<string, Variable>();
      for (const [name, v] of spec.variables) {
        const ms = spec.maps.get(v.mapName);
        const m = maps.get(v.mapName);
        if (ms?.btf && m) variables.set(name, new Variable(name, m, v, ms, mappings.get(v.mapName)));
      }
      btfFd?.close();
      return new Collection(maps, programs, variables, owned, btfError, [...mappings.values()]);
    } catch (e) {
      for (const m of mappings.values()) m.close();
      for (const p of programs.values()) p.close();
      for (const m of owned) m.close();
      externs?.close();
      btfFd?.close();
      throw e;
    }
  }

  /**
   * Attaches every loaded program by its section name (see Program.attach). On a failure the links
   * made so far are closed and the error is thrown. `skip` names programs to leave unattached.
   *
   * Requires Linux 3.19 or later: each program needs what its kind of hook needs (see
   * {@link attach}).
   * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`),
   *   {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) or {@link BpfSyscallError} (the errno
   *   name), as {@link Program.attach} throws them for the first program that fails.
   */
  attachAll(options: AttachOptions & { skip?: readonly string[] } = {}): Link[] {
    const links: Link[] = [];
    try {
      for (const p of this.programs.values()) {
        if (options.skip?.includes(p.name)) continue;
        links.push(p.attach(options));
      }
      return links;
    } catch (e) {
      for (const l of links) l.close();
      throw e;
    }
  }

  /** Closes every program and every map the collection created (replaced maps stay open). */
  close(): void {
    for (const m of this.#mappings.splice(0)) m.close();
    for (const p of this.programs.values()) p.close();
    for (const m of this.#owned) m.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A BTF file given by path (kernel BTF for CO-RE), with an error that names the file. */
function readBtfFile(path: string): Btf {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new SpecError(`cannot read the kernel BTF file ${path}: ${(e as Error).message}`);
  }
  try {
    return Btf.parse(bytes);
  } catch (e) {
    throw new SpecError(`${path} is not a BTF file: ${(e as Error).message}`);
  }
}

function wanted(ps: ProgramSpec, options: CollectionOptions): boolean {
  const only = options.programs?.only;
  if (only) return only.includes(ps.name);
  if (ps.autoload) return true;
  return options.programs?.include?.includes(ps.name) ?? false;
}

function createMap(ms: MapSpec, btfFd: number, pinRoot: string): BpfMap {
  if (ms.pinning === 'by_name') {
    const path = join(pinRoot, ms.name);
    if (pinExists(path)) {
      const m = BpfMap.fromPinned(path);
      try {
        checkCompatible(ms, m);
      } catch (e) {
        m.close();
        throw e;
      }
      return m;
    }
  }
  let inner: BpfMap | undefined;
  if (ms.type === 'perf_event_array' && ms.maxEntries === 0) {
    // As libbpf: an unsized perf event array gets one slot per possible CPU.
    ms = { ...ms, maxEntries: possibleCpus() };
  }
  try {
    if (ms.innerMap) inner = BpfMap.create(ms.innerMap, { btfFd });
    const m = BpfMap.create(ms, { btfFd, ...(inner ? { innerMapFd: inner.fd } : {}) });
    if (ms.pinning === 'by_name') {
      try {
        m.pin(join(pinRoot, ms.name));
      } catch (e) {
        m.close();
        throw e;
      }
    }
    return m;
  } finally {
    inner?.close();
  }
}

function checkCompatible(ms: MapSpec, m: BpfMap): void {
  const diffs: string[] = [];
  if (m.type !== ms.type) diffs.push(`type ${m.type} vs ${ms.type}`);
  if (m.keySize !== ms.keySize) diffs.push(`key size ${m.keySize} vs ${ms.keySize}`);
  if (m.valueSize !== ms.valueSize) diffs.push(`value size ${m.valueSize} vs ${ms.valueSize}`);
  if (m.maxEntries !== ms.maxEntries) diffs.push(`max_entries ${m.maxEntries} vs ${ms.maxEntries}`);
  if (diffs.length) throw new SpecError(`existing map for ${ms.name} does not match its definition: ${diffs.join(', ')}`);
}

/** Prog arrays and maps of maps: the slots the object initialised statically. */
function fillSlots(spec: CollectionSpec, maps: Map<string, BpfMap>, programs: Map<string, Program>): void {
  for (const [name, ms] of spec.maps) {
    if (ms.contents.length === 0) continue;
    const m = maps.get(name)!;
    const key = new Uint8Array(4);
    const value = new Uint8Array(4);
    const kv = new DataView(key.buffer);
    const vv = new DataView(value.buffer);
    for (const slot of ms.contents) {
      let fd: number | undefined;
      if (ms.type === 'prog_array') fd = programs.get(slot.target)?.fd;
      else fd = maps.get(slot.target)?.fd;
      if (fd === undefined) continue; // a program not loaded (a '?' section) leaves its slot empty
      kv.setUint32(0, slot.index, true);
      vv.setUint32(0, fd, true);
      m.update(key, value);
    }
  }
}
