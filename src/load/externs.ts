/**
 * Extern symbols a program takes from the kernel it is loaded into:
 *
 * - `__kconfig` (`extern int CONFIG_HZ __kconfig;`): values from the kernel's configuration
 *   (/proc/config.gz, else /boot/config-<release>) and a few the loader computes
 *   (LINUX_KERNEL_VERSION, ...). They live in a `.kconfig` array map (one frozen value, read-only
 *   to programs, laid out by kconfigLayout()) whose address the referencing ld_imm64 gets, so the
 *   verifier sees them as constants and prunes code that depends on them.
 * - `__ksym` variables: untyped (`extern const void sym __ksym`) get the symbol's address from
 *   /proc/kallsyms in the ld_imm64 immediate; typed ones become BPF_PSEUDO_BTF_ID loads of the
 *   kernel's VAR (the kernel fills in the address).
 * - `__ksym` functions (kfuncs): calls become BPF_PSEUDO_KFUNC_CALL with the kernel FUNC's BTF id.
 *
 * A `__weak` extern the kernel lacks resolves to 0 (kconfig values, addresses); a call to a
 * missing weak kfunc keeps imm 0, which the verifier accepts only where it can prove the call
 * dead. A missing strong extern is an error at load.
 *
 * `resolveExterns` is pure given an ExternEnvironment; ExternResolver is the environment of the
 * running kernel, owning the `.kconfig` maps it creates until close().
 */
import { readFileSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { typesAreCompatible, essentialName } from '../btf/core.js';
import type { Btf } from '../btf/btf.js';
import { kconfigLayout, type KconfigLayout, type KconfigSlot } from './btf-sanitize.js';
import type { BtfDatasec, BtfType } from '../btf/types.js';
import { Insns, BPF_PSEUDO_BTF_ID, BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_VALUE } from '../asm/insn.js';
import { SpecError } from '../errors.js';
import { BpfMap } from '../objects/map.js';
import type { ExternReference, ProgramSpec } from '../spec/program-spec.js';
import { BPF_F_MMAPABLE, BPF_F_RDONLY_PROG } from '../abi/constants.js';
import { kernelBtf, parsedKernelBtf } from '../kernel/attach-target.js';
import { KernelSymbols, kernelSymbols, scanKallsyms } from '../kernel/kallsyms.js';

/** What resolving externs needs from the world; ExternResolver is the real one, tests pass fakes. */
export interface ExternEnvironment {
  /** The kernel's BTF (typed ksyms, kfuncs). */
  kernelBtf(): Btf;
  /** CONFIG_* name -> value as written in the config (`y`, `m`, `250`, `"str"`); undefined when no config is found. */
  kernelConfig(): ReadonlyMap<string, string> | undefined;
  /** `uname -r` (names /boot/config-<release>). */
  kernelRelease(): string;
  /** LINUX_KERNEL_VERSION: KERNEL_VERSION(major, minor, patch) of the running kernel. */
  kernelVersion(): number;
  /** Every address /proc/kallsyms lists for each of `names` (absent names are left out). */
  kallsyms(names: ReadonlySet<string>): ReadonlyMap<string, readonly bigint[]>;
  /**
   * Whether /proc/kallsyms lists any of `names` (LINUX_HAS_SYSCALL_WRAPPER); may stop at the first.
   * Without it, kallsyms() answers.
   */
  kallsymsHasAny?(names: readonly string[]): boolean;
  /** Whether the kernel has bpf_get_attach_cookie (LINUX_HAS_BPF_COOKIE). */
  hasBpfCookie(): boolean;
  /** A map holding the `.kconfig` value `data` for the object whose BTF is `btf`; returns its fd. */
  kconfigMap(btf: Btf, layout: KconfigLayout, data: Uint8Array): number;
}

/** How an extern is resolved: a kconfig value, an untyped ksym (its kallsyms address), or a typed ksym or kfunc (its kernel BTF id). */
export type ExternKind = 'kconfig' | 'ksym' | 'typed_ksym' | 'kfunc';

/** What became of one extern a program references. */
export interface ExternResult {
  readonly name: string;
  readonly kind: ExternKind;
  readonly weak: boolean;
  /** Instructions that reference it. */
  readonly insns: readonly number[];
  /** False for a weak extern the kernel lacks (resolved to 0). */
  readonly found: boolean;
  /** The kconfig value's offset in `.kconfig`, the ksym's address, or the kernel BTF id. */
  readonly value: bigint;
}

/** Whether an extern reference is `__weak`. */
function isWeak(ref: ExternReference): boolean {
  return ref.weak;
}

interface Declared {
  readonly kind: ExternKind;
  /** The VAR or FUNC in the object's BTF. */
  readonly type: BtfType;
}

/** Finds where the object's BTF declares an extern: `.kconfig` or `.ksyms` DATASEC. */
function declaration(btf: Btf, name: string): Declared | undefined {
  for (const secName of ['.kconfig', '.ksyms']) {
    const sec = btf.byName(secName, 'datasec')[0] as BtfDatasec | undefined;
    if (!sec) continue;
    for (const v of sec.vars) {
      const t = btf.type(v.type);
      if (t.name !== name) continue;
      if (secName === '.kconfig') return { kind: 'kconfig', type: t };
      if (t.kind === 'func') return { kind: 'kfunc', type: t };
      if (t.kind === 'var') return { kind: btf.resolve(t.type).kind === 'void' ? 'ksym' : 'typed_ksym', type: t };
    }
  }
  return undefined;
}

/**
 * Patches every extern reference of `spec` in `insns`. Throws SpecError for a strong extern the
 * kernel lacks, a kconfig value that does not fit its C type, or an undefined symbol that is no
 * kernel extern at all.
 */
export function resolveExterns(spec: ProgramSpec, insns: Insns, env: ExternEnvironment): ExternResult[] {
  if (spec.externs.length === 0) return [];
  const btf = spec.btf;
  const where = `program ${spec.name}`;
  if (!btf) throw new SpecError(`${where} references extern symbols (${names(spec.externs)}) but the object has no BTF to describe them: compile with clang -g`);
  const byName = new Map<string, ExternReference[]>();
  for (const ref of spec.externs) {
    const list = byName.get(ref.name);
    if (list) list.push(ref); else byName.set(ref.name, [ref]);
  }
  const results: ExternResult[] = [];
  let kconfig: { layout: KconfigLayout; fd: number; found: ReadonlySet<string> } | undefined;
  const kallsymsWanted = new Set<string>();
  const decls = new Map<string, Declared>();
  for (const [name] of byName) {
    const d = declaration(btf, name);
    if (!d) {
      throw new SpecError(`${where} references ${name}, which is neither defined in the object nor a __kconfig/__ksym extern ` +
        '(objects that call each other must be linked first, e.g. with bpftool gen object)');
    }
    decls.set(name, d);
    if (d.kind === 'ksym') kallsymsWanted.add(name).add(essentialName(name));
  }
  const addresses = kallsymsWanted.size > 0 ? env.kallsyms(kallsymsWanted) : new Map<string, readonly bigint[]>();
  for (const [name, refs] of byName) {
    const d = decls.get(name)!;
    const weak = refs.some(isWeak);
    const at = refs.map((r) => r.insn);
    switch (d.kind) {
      case 'kconfig': {
        if (!kconfig) {
          const layout = kconfigLayout(btf)!;
          const weakNames = new Set([...byName].filter(([, rs]) => rs.some(isWeak)).map(([n]) => n));
          const data = kconfigData(btf, layout, env, new Set(byName.keys()), weakNames, where);
          kconfig = { layout, fd: env.kconfigMap(btf, layout, data.bytes), found: data.found };
        }
        const slot = kconfig.layout.vars.get(name)!;
        for (const i of at) {
          requireLdImm64(insns, i, name, where);
          const addend = insns.imm(i);
          insns.setSrc(i, BPF_PSEUDO_MAP_VALUE);
          insns.setImm(i, kconfig.fd);
          insns.setImm(i + 1, slot.offset + addend);
        }
        results.push({ name, kind: 'kconfig', weak, insns: at, found: kconfig.found.has(name), value: BigInt(slot.offset) });
        break;
      }
      case 'ksym': {
        const list = addresses.get(name) ?? addresses.get(essentialName(name)) ?? [];
        const distinct = [...new Set(list)];
        if (distinct.length > 1) {
          throw new SpecError(`${where}: extern ${name} (__ksym) is ambiguous: /proc/kallsyms lists it at ${distinct.map((a) => `0x${a.toString(16)}`).join(', ')}`);
        }
        const addr = distinct[0];
        if (addr === undefined && !weak) {
          throw new SpecError(`${where}: the kernel has no symbol ${name} in /proc/kallsyms (declare the extern __weak to get 0 instead)`);
        }
        for (const i of at) {
          requireLdImm64(insns, i, name, where);
          const v = addr ?? 0n;
          insns.setSrc(i, 0);
          insns.setImm(i, Number(BigInt.asIntN(32, v)));
          insns.setImm(i + 1, Number(BigInt.asIntN(32, v >> 32n)));
        }
        results.push({ name, kind: 'ksym', weak, insns: at, found: addr !== undefined, value: addr ?? 0n });
        break;
      }
      case 'typed_ksym': case 'kfunc': {
        const id = kernelId(btf, d, env.kernelBtf(), weak, where);
        for (const i of at) {
          if (insns.isCall(i)) {
            if (d.kind !== 'kfunc') throw new SpecError(`${where}: instruction ${i} calls ${name}, which is declared as a variable`);
            insns.setSrc(i, BPF_PSEUDO_KFUNC_CALL);
            insns.setImm(i, id);
            insns.setOff(i, 0);
          } else {
            // ld_imm64 of the extern's address (a variable, or `&kfunc` to test it exists).
            requireLdImm64(insns, i, name, where);
            insns.setSrc(i, id === 0 ? 0 : BPF_PSEUDO_BTF_ID);
            insns.setImm(i, id);
            insns.setImm(i + 1, 0);
          }
        }
        results.push({ name, kind: d.kind, weak, insns: at, found: id !== 0, value: BigInt(id) });
        break;
      }
    }
  }
  return results;
}

/**
 * When the verifier rejected a program for calling a kfunc that was left unresolved (a weak kfunc
 * the kernel lacks, reached without a guard), a one-line summary naming it; otherwise undefined.
 */
export function explainExternFailure(log: string, results: readonly ExternResult[], programName: string): string | undefined {
  const missing = results.filter((r) => r.kind === 'kfunc' && !r.found);
  if (missing.length === 0) return undefined;
  if (!/invalid kernel function call not eliminated|kernel function .* not|calling kernel function|invalid func/.test(log)) return undefined;
  const which = missing.map((r) => `${r.name} (instruction${r.insns.length > 1 ? 's' : ''} ${r.insns.join(', ')})`).join(', ');
  return `program ${programName} calls the weak kfunc${missing.length > 1 ? 's' : ''} ${which}, which this kernel lacks, ` +
    'where the verifier cannot prove the call dead (guard it with bpf_ksym_exists() or a __kconfig check)';
}

function names(refs: readonly ExternReference[]): string {
  return [...new Set(refs.map((r) => r.name))].join(', ');
}

function requireLdImm64(insns: Insns, i: number, name: string, where: string): void {
  if (!insns.isLdImm64(i) || i + 1 >= insns.length) {
    throw new SpecError(`${where}: instruction ${i} refers to extern ${name} but is not an ld_imm64`);
  }
}

/** The kernel BTF id of a typed ksym's VAR or a kfunc's FUNC; 0 for a weak one the kernel lacks. */
function kernelId(btf: Btf, d: Declared, kernel: Btf, weak: boolean, where: string): number {
  const name = d.type.name;
  const kind = d.kind === 'kfunc' ? 'func' : 'var';
  const found = kernel.byName(name, kind)[0] ?? kernel.byName(essentialName(name), kind)[0];
  const what = d.kind === 'kfunc' ? 'kernel function (kfunc)' : 'kernel variable';
  if (!found) {
    if (weak) return 0;
    throw new SpecError(`${where}: the kernel has no ${what} ${name} in its BTF (declare the extern __weak to get 0 instead)`);
  }
  const localType = (d.type as { type: number }).type;
  const kernelType = (found as { type: number }).type;
  if (!typesAreCompatible(btf, localType, kernel, kernelType)) {
    throw new SpecError(`${where}: extern ${name} is declared as ${btf.typeName(localType)}, but the kernel's ${what} is ${kernel.typeName(kernelType)}`);
  }
  return found.id;
}

// ---------------------------------------------------------------------------------------------
// .kconfig values
// ---------------------------------------------------------------------------------------------

type KconfigType =
  | { kind: 'bool' } | { kind: 'tristate'; size: number } | { kind: 'char' }
  | { kind: 'int'; size: number; signed: boolean } | { kind: 'string'; size: number };

/** How a `.kconfig` extern's C type takes a value; a string says why it cannot. */
function kconfigType(btf: Btf, slot: KconfigSlot): KconfigType | string {
  const t = btf.resolve(slot.typeId);
  if (t.kind === 'int') {
    if (t.bool && t.size === 1) return { kind: 'bool' };
    if (t.char && t.size === 1) return { kind: 'char' };
    if ([1, 2, 4, 8].includes(t.size)) return { kind: 'int', size: t.size, signed: t.signed };
  }
  if ((t.kind === 'enum' || t.kind === 'enum64') && t.name === 'libbpf_tristate') return { kind: 'tristate', size: t.size };
  if (t.kind === 'array') {
    const elem = btf.resolve(t.type);
    if (elem.kind === 'int' && elem.size === 1 && t.nelems > 0) return { kind: 'string', size: t.nelems };
  }
  return `its type ${btf.typeName(slot.typeId)} is not bool, char, an integer, enum libbpf_tristate or a char array`;
}

/** Kernel version code as KERNEL_VERSION(a, b, c) computes it (c capped at 255) from a release string. */
export function kernelVersionCode(release: string): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  if (!m) return 0;
  return (Number(m[1]) << 16) + (Number(m[2]) << 8) + Math.min(Number(m[3] ?? 0), 255);
}

/** The value of a LINUX_* extern the loader computes, or undefined for an unknown one. */
function linuxValue(name: string, env: ExternEnvironment): string | undefined {
  switch (name) {
    case 'LINUX_KERNEL_VERSION': return String(env.kernelVersion());
    case 'LINUX_HAS_BPF_COOKIE': return env.hasBpfCookie() ? 'y' : 'n';
    case 'LINUX_HAS_SYSCALL_WRAPPER': {
      const wrapped = ['__x64_sys_bpf', '__arm64_sys_bpf', '__s390x_sys_bpf', '__riscv_sys_bpf', '__ia32_sys_bpf'];
      const any = env.kallsymsHasAny ? env.kallsymsHasAny(wrapped) : env.kallsyms(new Set(wrapped)).size > 0;
      return any ? 'y' : 'n';
    }
    default: return undefined;
  }
}

let ubuntuCache: string | null | undefined;

/** Ubuntu kernels keep the upstream version in /proc/version_signature (their release numbers differ). */
function ubuntuVersion(): string | undefined {
  if (ubuntuCache === undefined) {
    try {
      // "Ubuntu 5.15.0-91.101-generic 5.15.131": the last field is the upstream version.
      ubuntuCache = readFileSync('/proc/version_signature', 'utf8').trim().split(/\s+/).pop() ?? null;
    } catch {
      ubuntuCache = null;
    }
  }
  return ubuntuCache ?? undefined;
}

/**
 * The `.kconfig` map's value: every extern of the layout, encoded by its C type. `used` are the
 * names the program references: a missing one that is not `weak` is an error; a missing
 * unreferenced or weak one is 0. Returns the bytes and the names that had a value.
 */
export function kconfigData(
  btf: Btf, layout: KconfigLayout, env: ExternEnvironment, used: ReadonlySet<string>, weak: ReadonlySet<string>, where: string,
): { bytes: Uint8Array; found: ReadonlySet<string> } {
  const bytes = new Uint8Array(layout.size);
  const view = new DataView(bytes.buffer);
  const found = new Set<string>();
  let config: ReadonlyMap<string, string> | undefined | null = null;
  for (const slot of layout.vars.values()) {
    const name = slot.name;
    const needed = used.has(name) && !weak.has(name);
    let raw: string | undefined;
    if (name.startsWith('LINUX_')) {
      raw = linuxValue(name, env);
      if (raw === undefined && needed) throw new SpecError(`${where}: unknown extern ${name} (__kconfig): the loader computes LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE and LINUX_HAS_SYSCALL_WRAPPER`);
    } else if (name.startsWith('CONFIG_')) {
      if (config === null) config = env.kernelConfig();
      if (config === undefined && needed) {
        throw new SpecError(`${where}: extern ${name} (__kconfig) needs the kernel's configuration, but neither /proc/config.gz nor /boot/config-${env.kernelRelease()} exists`);
      }
      raw = config?.get(name);
      if (raw === undefined && needed) throw new SpecError(`${where}: ${name} is not set in the kernel's configuration (declare the extern __weak to get 0 instead)`);
    } else if (needed) {
      throw new SpecError(`${where}: extern ${name} (__kconfig) is neither CONFIG_* nor a LINUX_* value the loader knows`);
    }
    if (raw === undefined) continue;
    const type = kconfigType(btf, slot);
    if (typeof type === 'string') {
      if (!used.has(name)) continue;
      throw new SpecError(`${where}: extern ${name} (__kconfig): ${type}`);
    }
    const problem = encodeKconfig(view, slot.offset, type, raw);
    if (problem) {
      if (!used.has(name)) continue;
      throw new SpecError(`${where}: extern ${name} (__kconfig): ${problem}`);
    }
    found.add(name);
  }
  return { bytes, found };
}

/** Writes one value; returns a description of the mismatch when the value does not fit the type. */
function encodeKconfig(view: DataView, off: number, type: KconfigType, raw: string): string | undefined {
  if (raw === 'y' || raw === 'n' || raw === 'm') {
    switch (type.kind) {
      case 'bool':
        if (raw === 'm') return 'value m (a module) needs enum libbpf_tristate or char, not bool';
        view.setUint8(off, raw === 'y' ? 1 : 0);
        return undefined;
      case 'tristate':
        writeInt(view, off, type.size, raw === 'y' ? 1n : raw === 'm' ? 2n : 0n);
        return undefined;
      case 'char':
        view.setUint8(off, raw.charCodeAt(0));
        return undefined;
      default:
        return `value ${raw} needs bool, enum libbpf_tristate or char`;
    }
  }
  if (raw.startsWith('"')) {
    if (type.kind !== 'string') return `string value ${raw} needs a char array`;
    if (raw.length < 2 || !raw.endsWith('"')) return `malformed string value ${raw}`;
    const text = Buffer.from(raw.slice(1, -1), 'utf8');
    const n = Math.min(text.length, type.size - 1);
    new Uint8Array(view.buffer, view.byteOffset + off, n).set(text.subarray(0, n));
    return undefined;
  }
  const n = parseConfigInt(raw);
  if (n === undefined) return `value ${raw} is not y, n, m, a number or a quoted string`;
  if (type.kind !== 'int' && type.kind !== 'char') return `number ${raw} needs an integer type`;
  const size = type.kind === 'int' ? type.size : 1;
  const signed = type.kind === 'int' && type.signed;
  const bits = BigInt(size * 8);
  const min = signed ? -(1n << (bits - 1n)) : 0n;
  const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  if (n < min || n > max) return `value ${raw} does not fit ${signed ? 'a signed' : 'an unsigned'} ${size}-byte integer`;
  writeInt(view, off, size, n);
  return undefined;
}

/** A number as the C library reads one with base 0: 0x hex, leading-0 octal, else decimal; optional sign. */
function parseConfigInt(raw: string): bigint | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(raw);
  if (!m) return undefined;
  const body = m[2]!;
  let v: bigint;
  if (/^0[xX]/.test(body)) v = BigInt(body);
  else if (body.length > 1 && body.startsWith('0')) v = BigInt(`0o${body.slice(1)}`);
  else v = BigInt(body);
  return m[1] === '-' ? -v : v;
}

function writeInt(view: DataView, off: number, size: number, v: bigint): void {
  switch (size) {
    case 1: view.setUint8(off, Number(BigInt.asUintN(8, v))); break;
    case 2: view.setUint16(off, Number(BigInt.asUintN(16, v)), true); break;
    case 4: view.setUint32(off, Number(BigInt.asUintN(32, v)), true); break;
    case 8: view.setBigUint64(off, BigInt.asUintN(64, v), true); break;
    default: throw new SpecError(`cannot write a ${size}-byte integer`);
  }
}

// ---------------------------------------------------------------------------------------------
// The running kernel
// ---------------------------------------------------------------------------------------------

/** Parses a kernel .config: `CONFIG_X=value` lines (comments, including "is not set", are skipped). */
export function parseKernelConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

let configCache: Map<string, string> | null | undefined;

/** The running kernel's configuration (read once per process); undefined when it cannot be found. */
export function readKernelConfig(release = osRelease()): ReadonlyMap<string, string> | undefined {
  if (configCache === undefined) {
    configCache = null;
    for (const [path, gz] of [['/proc/config.gz', true], [`/boot/config-${release}`, false]] as const) {
      try {
        const raw = readFileSync(path);
        configCache = parseKernelConfig((gz ? gunzipSync(raw) : raw).toString('utf8'));
        break;
      } catch {
        // try the next place
      }
    }
  }
  return configCache ?? undefined;
}

/**
 * Addresses of `names` in /proc/kallsyms (core kernel symbols; module symbols are named
 * "sym [mod]"), or in `text` when given. The file is read through this process's KernelSymbols,
 * so each name costs one pass at most.
 */
export function readKallsyms(names: ReadonlySet<string>, text?: string): Map<string, readonly bigint[]> {
  return text === undefined ? kernelSymbols.lookup(names) : scanKallsyms(names, [text]);
}

/**
 * The running kernel as an ExternEnvironment. Owns the `.kconfig` maps it creates (one per
 * object BTF); close() releases them once the programs that use them are loaded (the programs
 * keep them alive).
 */
export class ExternResolver implements ExternEnvironment, Disposable {
  /** What resolve() did, for every program it resolved. */
  readonly results: ExternResult[] = [];
  readonly #btfFd: number;
  readonly #maps = new Map<Btf, BpfMap>();
  readonly #kernelBtf: () => Btf;
  readonly #symbols: KernelSymbols;
  readonly #parsedKernelBtf: () => Btf | undefined;

  /**
   * `parsedKernelBtf` says whether the kernel's BTF is at hand without reading it (default: the
   * running kernel's, once this process parsed it); `symbols` answers kallsyms questions.
   */
  constructor(options: { btfFd?: number; kernelBtf?: () => Btf; parsedKernelBtf?: () => Btf | undefined; symbols?: KernelSymbols } = {}) {
    this.#btfFd = options.btfFd ?? 0;
    this.#kernelBtf = options.kernelBtf ?? kernelBtf;
    this.#parsedKernelBtf = options.parsedKernelBtf ?? (options.kernelBtf ? () => undefined : parsedKernelBtf);
    this.#symbols = options.symbols ?? kernelSymbols;
  }

  /** resolveExterns() against the running kernel; the results are also kept in `results`. */
  resolve(spec: ProgramSpec, insns: Insns): ExternResult[] {
    const r = resolveExterns(spec, insns, this);
    this.results.push(...r);
    return r;
  }

  kernelBtf(): Btf {
    return this.#kernelBtf();
  }

  kernelConfig(): ReadonlyMap<string, string> | undefined {
    return readKernelConfig(this.kernelRelease());
  }

  kernelRelease(): string {
    return osRelease();
  }

  kernelVersion(): number {
    return kernelVersionCode(ubuntuVersion() ?? this.kernelRelease());
  }

  kallsyms(names: ReadonlySet<string>): ReadonlyMap<string, readonly bigint[]> {
    return this.#symbols.lookup(names);
  }

  kallsymsHasAny(names: readonly string[]): boolean {
    // A function the kernel's BTF names is in kallsyms too: when a CO-RE load has parsed that BTF
    // already, it answers without reading kallsyms (its absence there proves nothing).
    const btf = this.#parsedKernelBtf();
    if (btf && names.some((n) => btf.byName(n, 'func').length > 0)) return true;
    return this.#symbols.hasAny(names);
  }

  hasBpfCookie(): boolean {
    // bpf_get_attach_cookie arrived in 5.15.
    return this.kernelVersion() >= (5 << 16) + (15 << 8);
  }

  kconfigMap(btf: Btf, layout: KconfigLayout, data: Uint8Array): number {
    const known = this.#maps.get(btf);
    if (known) return known.fd;
    const m = BpfMap.create({
      name: '.kconfig', type: 'array', keySize: 4, valueSize: layout.size, maxEntries: 1,
      flags: BPF_F_RDONLY_PROG | BPF_F_MMAPABLE, numaNode: 0, mapExtra: 0n, pinning: 'none',
      // The kernel gets the DATASEC's id in the loaded (sanitized) BTF; values are plain bytes here.
      btf: undefined, keyTypeId: 0, valueTypeId: this.#btfFd > 0 ? layout.datasecId : 0, innerMap: undefined,
      contents: [], data, freeze: true, section: '.kconfig',
    }, { btfFd: this.#btfFd });
    try {
      m.update(0, data);
      m.freeze();
    } catch (e) {
      m.close();
      throw e;
    }
    this.#maps.set(btf, m);
    return m.fd;
  }

  /** Closes the `.kconfig` maps (loaded programs keep their own references). */
  close(): void {
    for (const m of this.#maps.values()) m.close();
    this.#maps.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
