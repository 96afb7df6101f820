/**
 * USDT probes (`SEC("usdt")`, `SEC("usdt/<binary>:<provider>:<name>")`): statically defined
 * tracepoints that <sys/sdt.h> compiles into user-space programs as a `nop` plus an ELF note.
 *
 * Each probe site has a note in `.note.stapsdt` (type NT_STAPSDT = 3, owner "stapsdt") whose
 * descriptor is, for 64-bit binaries:
 *
 *     u64 pc          address of the nop
 *     u64 base        link-time address of the `.stapsdt.base` section
 *     u64 semaphore   address of the probe's u16 semaphore (0 when it has none)
 *     char provider[], name[], args[]   NUL-terminated
 *
 * When the binary was prelinked, every address moved by the difference between `.stapsdt.base`'s
 * address now and the `base` recorded in the note. `args` says where each argument lives at the
 * nop, in assembler syntax: `-4@%edi` (a signed 4-byte value in a register), `8@-16(%rbp)` (in
 * memory at an offset from a register), `-4@$42` (a constant), `-4@sym(%rip)` (a global).
 *
 * Attaching puts a uprobe on every site (file offset of the nop; the semaphore's file offset as
 * the uprobe's ref_ctr_offset, so the kernel raises it while attached) and describes each site's
 * arguments to the program the way libbpf's <bpf/usdt.bpf.h> expects: a `struct __bpf_usdt_spec`
 * in the program's `__bpf_usdt_specs` array, found through the bpf_cookie the uprobe carries (or,
 * on kernels without cookies, through `__bpf_usdt_ip_to_spec_id`, keyed by the probe's address in
 * the process). `bpf_usdt_arg(ctx, n, &val)` then reads argument n.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { BpfkitError, ElfError, InvalidArgumentError, NotSupportedError } from '../errors.js';
import { openElfFile } from '../elf/file.js';
import { ElfFile, ET, SHN_UNDEF, SHT } from '../elf/reader.js';
import { BpfMap } from '../objects/map.js';
import type { Program } from '../objects/program.js';
import { readProgramInfo } from '../objects/program-info.js';
import { LinkSet, requireProgramType, type Link, type LinkInfo, type PerfEventLink } from './link.js';
import { attachUprobe, resolveBinaryPath } from './uprobe.js';

/**
 * Options of {@link attachUsdt}: the process, the cookie the program sees, and the spec and IP
 * maps to share between attachments.
 */
export interface UsdtOptions {
  /** Only this process (default: every process that runs the binary). */
  pid?: number;
  /** What bpf_usdt_cookie() returns in the program (a u64). */
  cookie?: bigint;
  /**
   * The program's `__bpf_usdt_specs` map. By default it is found among the maps the program uses
   * (by its kernel name, "__bpf_usdt_spec"); give it when the program was loaded elsewhere.
   */
  specsMap?: BpfMap;
  /** The program's `__bpf_usdt_ip_to_spec_id` map (only used on kernels without bpf cookies). */
  ipMap?: BpfMap;
}

/** Where an argument lives, as libbpf's enum __bpf_usdt_arg_type says. */
export type UsdtArgKind = 'const' | 'reg' | 'reg_deref';

/** One argument of a probe site, decoded from its note. */
export interface UsdtArg {
  /** The text in the note, e.g. "-4@%edi". */
  readonly text: string;
  /** Size in bytes: 1, 2, 4 or 8. */
  readonly size: number;
  readonly signed: boolean;
  readonly kind: UsdtArgKind;
  /** The register as named in the note (the 64-bit register is what is read); undefined for constants. */
  readonly register: string | undefined;
  /** Offset of that register in struct pt_regs. */
  readonly regOffset: number;
  /** The constant (kind const) or the memory offset from the register (kind reg_deref). */
  readonly value: bigint;
}

/** One probe site: a note of `.note.stapsdt`. */
export interface UsdtNote {
  readonly provider: string;
  readonly name: string;
  /** Address of the probe's nop, adjusted for prelinking. */
  readonly pc: number;
  /** Address of the semaphore (adjusted), 0 when the probe has none. */
  readonly semaphore: number;
  /** The argument string as the note has it. */
  readonly args: string;
  /** Where the nop is in the file (what the uprobe attaches to). */
  readonly fileOffset: number;
  /** Where the semaphore is in the file (the uprobe's ref_ctr_offset); 0 when there is none. */
  readonly semaphoreFileOffset: number;
}

const NT_STAPSDT = 3;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;

/** sizeof(struct __bpf_usdt_spec) and its members' offsets (usdt.bpf.h: 12 args of 16 bytes). */
export const USDT_MAX_ARGS = 12;
const ARG_SPEC_SIZE = 16;
const SPEC_COOKIE = USDT_MAX_ARGS * ARG_SPEC_SIZE;
const SPEC_ARG_CNT = SPEC_COOKIE + 8;
export const USDT_SPEC_SIZE = SPEC_ARG_CNT + 8;

const SPECS_MAP = '__bpf_usdt_spec'; // "__bpf_usdt_specs" cut to the kernel's 15 characters
const IP_MAP = '__bpf_usdt_ip_t'; // "__bpf_usdt_ip_to_spec_id"

// ---------------------------------------------------------------------------------------------
// Reading the notes

function cString(bytes: Uint8Array, start: number, end: number, what: string): { text: string; next: number } {
  const nul = bytes.indexOf(0, start);
  if (nul < 0 || nul >= end) throw new ElfError(`USDT note: ${what} is not NUL-terminated`);
  return { text: new TextDecoder().decode(bytes.subarray(start, nul)), next: nul + 1 };
}

/** Every USDT probe site of an ELF binary or library (empty when it has none). */
export function readUsdtNotes(elf: ElfFile): UsdtNote[] {
  const section = elf.sections.find((s) => s.name === '.note.stapsdt' && s.type === SHT.NOTE);
  if (!section) return [];
  const base = elf.section('.stapsdt.base');
  const out: UsdtNote[] = [];
  for (const note of elf.notes(section)) {
    if (note.type !== NT_STAPSDT || note.owner !== 'stapsdt') continue;
    const data = note.desc;
    if (data.length < 24) throw new ElfError(`.note.stapsdt: descriptor of ${data.length} bytes is too short for three addresses`);
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const le = elf.littleEndian;
    const end = data.length;
    let pc = Number(v.getBigUint64(0, le));
    const noteBase = Number(v.getBigUint64(8, le));
    let semaphore = Number(v.getBigUint64(16, le));
    const provider = cString(data, 24, end, 'the provider');
    const name = cString(data, provider.next, end, 'the probe name');
    const args = cString(data, name.next, end, 'the argument string');
    // Prelinking moves the binary: .stapsdt.base says by how much.
    if (base && noteBase !== 0) {
      const delta = base.addr - noteBase;
      pc += delta;
      if (semaphore !== 0) semaphore += delta;
    }
    let fileOffset: number | undefined;
    let semaphoreFileOffset = 0;
    if (elf.type === ET.EXEC || elf.type === ET.DYN) {
      fileOffset = elf.fileOffset(pc, true);
      if (semaphore !== 0) semaphoreFileOffset = elf.fileOffset(semaphore) ?? -1;
    }
    if (fileOffset === undefined) {
      throw new ElfError(`USDT probe ${provider.text}:${name.text} at 0x${pc.toString(16)} is in no executable segment of the file`);
    }
    if (semaphoreFileOffset < 0) {
      throw new ElfError(`USDT probe ${provider.text}:${name.text}: its semaphore at 0x${semaphore.toString(16)} is in no loaded segment of the file`);
    }
    out.push({ provider: provider.text, name: name.text, pc, semaphore, args: args.text, fileOffset, semaphoreFileOffset });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Argument specs

/** struct pt_regs of x86-64 (uapi asm/ptrace.h): the offset of each 64-bit register. */
const X86_64_REGS: Record<string, number> = {
  r15: 0, r14: 8, r13: 16, r12: 24, rbp: 32, rbx: 40, r11: 48, r10: 56, r9: 64, r8: 72, rax: 80, rcx: 88,
  rdx: 96, rsi: 104, rdi: 112, rip: 128, rsp: 152,
};

/** x86-64 register names (32, 16 and 8-bit parts included) -> the 64-bit register. */
const X86_64_ALIASES: Record<string, string> = (() => {
  const m: Record<string, string> = {};
  const legacy: [string, string[]][] = [
    ['rax', ['eax', 'ax', 'al']], ['rbx', ['ebx', 'bx', 'bl']], ['rcx', ['ecx', 'cx', 'cl']], ['rdx', ['edx', 'dx', 'dl']],
    ['rsi', ['esi', 'si', 'sil']], ['rdi', ['edi', 'di', 'dil']], ['rbp', ['ebp', 'bp', 'bpl']], ['rsp', ['esp', 'sp', 'spl']],
    ['rip', ['eip']],
  ];
  for (const [r, parts] of legacy) {
    m[r] = r;
    for (const p of parts) m[p] = r;
  }
  for (let i = 8; i <= 15; i++) for (const suffix of ['', 'd', 'w', 'b', 'l']) m[`r${i}${suffix}`] = `r${i}`;
  return m;
})();

/** struct user_pt_regs of arm64 (uapi asm/ptrace.h): regs[31], sp, pc, pstate. */
function arm64RegOffset(name: string): number | undefined {
  if (name === 'sp' || name === 'wsp') return 31 * 8;
  if (name === 'fp') return 29 * 8;
  if (name === 'lr') return 30 * 8;
  const m = /^[xw](\d{1,2})$/.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n <= 30 ? n * 8 : undefined;
}

/** Resolves a symbol of the probed binary to its address, for `sym(%rip)` arguments. */
export type SymbolAddress = (name: string) => number | undefined;

interface ParseContext {
  machine: number;
  /** The probe's pc (as adjusted), for %rip-relative globals. */
  pc: number;
  symbol: SymbolAddress;
}

function parseInteger(text: string): bigint | undefined {
  const t = text.trim();
  if (!/^[-+]?(0x[0-9a-fA-F]+|\d+)$/.test(t)) return undefined;
  const neg = t.startsWith('-');
  const body = t.replace(/^[-+]/, '');
  const n = BigInt(body);
  return neg ? -n : n;
}

/** "sym", "sym+16", "16+sym", "sym-8", "-8": a symbol (maybe none) and a constant. */
function parseDisplacement(text: string): { symbol: string | undefined; offset: bigint } | undefined {
  const t = text.replace(/\s+/g, '');
  if (t === '') return { symbol: undefined, offset: 0n };
  const n = parseInteger(t);
  if (n !== undefined) return { symbol: undefined, offset: n };
  const m = /^(?:([-+]?(?:0x[0-9a-fA-F]+|\d+))\+)?([A-Za-z_.$][\w.$@]*)(?:([-+](?:0x[0-9a-fA-F]+|\d+)))?$/.exec(t);
  if (!m) return undefined;
  const offset = (m[1] !== undefined ? parseInteger(m[1])! : 0n) + (m[3] !== undefined ? parseInteger(m[3])! : 0n);
  return { symbol: m[2]!, offset };
}

function sizeOf(spec: string, text: string): { size: number; signed: boolean } {
  const n = Number(spec);
  const size = Math.abs(n);
  if (![1, 2, 4, 8].includes(size)) throw new InvalidArgumentError(`USDT argument "${text}": size ${spec} is not 1, 2, 4 or 8 bytes`);
  return { size, signed: n < 0 };
}

function x86Register(name: string, text: string): { register: string; regOffset: number } {
  const full = X86_64_ALIASES[name];
  if (full === undefined) {
    const hint = /^[abcd]h$/.test(name) ? ' (high-byte registers cannot be described to usdt.bpf.h)' : '';
    throw new NotSupportedError(`USDT argument "${text}"`, `bpfkit does not know the x86-64 register %${name}${hint}`);
  }
  return { register: name, regOffset: X86_64_REGS[full]! };
}

function parseX86(loc: string, size: number, signed: boolean, text: string, ctx: ParseContext): UsdtArg {
  const base = { text, size, signed };
  if (loc.startsWith('$')) {
    const value = parseInteger(loc.slice(1));
    if (value === undefined) throw new NotSupportedError(`USDT argument "${text}"`, 'the constant is not a plain number');
    return { ...base, kind: 'const', register: undefined, regOffset: 0, value };
  }
  if (loc.startsWith('%')) {
    return { ...base, kind: 'reg', ...x86Register(loc.slice(1), text), value: 0n };
  }
  const m = /^(.*)\(\s*%([a-z0-9]+)\s*(,.*)?\)$/.exec(loc);
  if (m) {
    if (m[3] !== undefined) {
      throw new NotSupportedError(`USDT argument "${text}"`,
        'indexed (base, index, scale) addressing cannot be described with the usdt.bpf.h argument types (const, reg, reg_deref)');
    }
    const disp = parseDisplacement(m[1]!);
    if (!disp) throw new NotSupportedError(`USDT argument "${text}"`, `cannot read the displacement "${m[1]}"`);
    const reg = x86Register(m[2]!, text);
    if (disp.symbol === undefined) {
      if (reg.register === 'rip' || reg.register === 'eip') {
        throw new NotSupportedError(`USDT argument "${text}"`, 'a numeric %rip displacement is relative to an instruction the note does not name');
      }
      return { ...base, kind: 'reg_deref', ...reg, value: disp.offset };
    }
    if (reg.register !== 'rip') {
      throw new NotSupportedError(`USDT argument "${text}"`, 'a symbol is only understood relative to %rip');
    }
    return globalArg(base, disp.symbol, disp.offset, text, ctx);
  }
  // A bare symbol: an absolute address in a position-dependent binary.
  const disp = parseDisplacement(loc);
  if (disp?.symbol !== undefined) return globalArg(base, disp.symbol, disp.offset, text, ctx);
  throw new NotSupportedError(`USDT argument "${text}"`, 'bpfkit cannot read this x86-64 operand', undefined, { lackedBy: 'bpfkit' });
}

/**
 * A global variable: at the probe, the uprobe's pt_regs ip is the probe's own address, so the
 * global is at ip + (symbol + offset - pc) in every process, wherever the binary is mapped.
 */
function globalArg(base: { text: string; size: number; signed: boolean }, symbol: string, offset: bigint, text: string, ctx: ParseContext): UsdtArg {
  const addr = ctx.symbol(symbol);
  if (addr === undefined) {
    throw new InvalidArgumentError(`USDT argument "${text}": the binary has no symbol ${symbol} (stripped?)`);
  }
  const ipOffset = ctx.machine === EM_AARCH64 ? 32 * 8 : X86_64_REGS['rip']!;
  return { ...base, kind: 'reg_deref', register: ctx.machine === EM_AARCH64 ? 'pc' : 'rip', regOffset: ipOffset, value: BigInt(addr) + offset - BigInt(ctx.pc) };
}

function parseArm64(loc: string, size: number, signed: boolean, text: string): UsdtArg {
  const base = { text, size, signed };
  const reg = (name: string) => {
    const off = arm64RegOffset(name);
    if (off === undefined) throw new NotSupportedError(`USDT argument "${text}"`, `bpfkit does not know the arm64 register ${name}`);
    return { register: name, regOffset: off };
  };
  const deref = /^\[\s*([a-z0-9]+)\s*(?:,\s*([-+]?(?:0x[0-9a-fA-F]+|\d+))\s*)?\]$/.exec(loc);
  if (deref) return { ...base, kind: 'reg_deref', ...reg(deref[1]!), value: deref[2] !== undefined ? parseInteger(deref[2])! : 0n };
  const value = parseInteger(loc);
  if (value !== undefined) return { ...base, kind: 'const', register: undefined, regOffset: 0, value };
  if (/^[a-z][a-z0-9]*$/.test(loc)) return { ...base, kind: 'reg', ...reg(loc), value: 0n };
  throw new NotSupportedError(`USDT argument "${text}"`, 'bpfkit cannot read this arm64 operand', undefined, { lackedBy: 'bpfkit' });
}

/**
 * Decodes a note's argument string ("-4@%edi 8@-16(%rbp) -4@$42") for x86-64 or arm64 binaries
 * (`machine` is the ELF e_machine). `pc` and `symbol` are needed only for arguments that name a
 * global (`-4@counter(%rip)`).
 */
export function parseUsdtArgs(args: string, machine: number, pc = 0, symbol: SymbolAddress = () => undefined): UsdtArg[] {
  if (machine !== EM_X86_64 && machine !== EM_AARCH64) {
    throw new NotSupportedError(`USDT arguments of ELF machine ${machine}`, 'bpfkit decodes x86-64 and arm64 argument strings');
  }
  const ctx: ParseContext = { machine, pc, symbol };
  // arm64 operands like "[sp, 16]" hold a space: split on blanks outside brackets.
  const parts = args.trim() === '' ? [] : (args.trim().match(/(?:\[[^\]]*\]|\S)+/g) ?? []);
  if (parts.length > USDT_MAX_ARGS) {
    throw new NotSupportedError(`a USDT probe with ${parts.length} arguments`, `usdt.bpf.h describes at most ${USDT_MAX_ARGS}`);
  }
  return parts.map((text) => {
    const at = /^([-+]?\d+)@(.+)$/.exec(text);
    // Notes from old sdt.h versions have no size: take the value as a long.
    const { size, signed } = at ? sizeOf(at[1]!, text) : { size: 8, signed: true };
    const loc = at ? at[2]! : text;
    return machine === EM_X86_64 ? parseX86(loc, size, signed, text, ctx) : parseArm64(loc, size, signed, text);
  });
}

const ARG_TYPE: Record<UsdtArgKind, number> = { const: 0, reg: 1, reg_deref: 2 };

/** The bytes of a `struct __bpf_usdt_spec` (usdt.bpf.h) for these arguments and cookie. */
export function encodeUsdtSpec(args: readonly UsdtArg[], cookie = 0n): Uint8Array {
  if (args.length > USDT_MAX_ARGS) throw new InvalidArgumentError(`a USDT spec holds at most ${USDT_MAX_ARGS} arguments, got ${args.length}`);
  const out = new Uint8Array(USDT_SPEC_SIZE);
  const v = new DataView(out.buffer);
  args.forEach((a, i) => {
    const o = i * ARG_SPEC_SIZE;
    v.setBigUint64(o, BigInt.asUintN(64, a.value), true);
    v.setUint32(o + 8, ARG_TYPE[a.kind], true);
    v.setInt16(o + 12, a.regOffset, true);
    v.setUint8(o + 14, a.signed ? 1 : 0);
    // Bits to clear (and sign-extend) so a 1, 2 or 4-byte value becomes a 64-bit one.
    v.setInt8(o + 15, 64 - a.size * 8);
  });
  v.setBigUint64(SPEC_COOKIE, BigInt.asUintN(64, cookie), true);
  v.setInt16(SPEC_ARG_CNT, args.length, true);
  return out;
}

/**
 * The address of a probe in a running process, from its /proc/<pid>/maps text: the mapping of
 * `binaryPath` that holds `fileOffset`. For the ip-to-spec map on kernels without bpf cookies.
 */
export function probeAddressInProcess(maps: string, binaryPath: string, fileOffset: number): bigint | undefined {
  for (const line of maps.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S+)\s+([0-9a-f]+)\s+\S+\s+\d+\s+(.*)$/.exec(line.trim());
    if (!m || m[5]!.trim() !== binaryPath) continue;
    const start = BigInt(`0x${m[1]}`);
    const end = BigInt(`0x${m[2]}`);
    const off = BigInt(`0x${m[4]}`);
    const want = BigInt(fileOffset);
    if (want >= off && want < off + (end - start)) return start + want - off;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Spec ids: slots of __bpf_usdt_specs, shared by every USDT attachment using the same map.

const usedSpecIds = new Map<number, Set<number>>();

function allocateSpecId(mapId: number, max: number): number {
  let used = usedSpecIds.get(mapId);
  if (!used) usedSpecIds.set(mapId, (used = new Set()));
  for (let id = 0; id < max; id++) {
    if (!used.has(id)) {
      used.add(id);
      return id;
    }
  }
  throw new BpfkitError('ERR_BPFKIT_USDT_SPECS_FULL',
    `__bpf_usdt_specs is full (${max} specs in use): define BPF_USDT_MAX_SPEC_CNT larger in the BPF program before including usdt.bpf.h`);
}

function releaseSpecId(mapId: number, id: number): void {
  const used = usedSpecIds.get(mapId);
  used?.delete(id);
  if (used?.size === 0) usedSpecIds.delete(mapId);
}

/** Whether bpf_get_attach_cookie() works for uprobes (5.15), which usdt.bpf.h checks the same way. */
function kernelHasBpfCookie(): boolean {
  const m = /^(\d+)\.(\d+)/.exec(readFileSync('/proc/sys/kernel/osrelease', 'utf8'));
  if (!m) return true;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 15);
}

interface UsdtMaps {
  specs: BpfMap;
  ip: BpfMap | undefined;
  /** Maps opened here (by id), closed with the link. */
  owned: BpfMap[];
}

function findMaps(prog: Program, options: UsdtOptions): UsdtMaps {
  const owned: BpfMap[] = [];
  let specs = options.specsMap;
  let ip = options.ipMap;
  if (!specs || !ip) {
    for (const id of readProgramInfo(prog.fd).mapIds) {
      const m = BpfMap.fromId(id);
      const info = m.info();
      if (!specs && info.name === SPECS_MAP) {
        specs = m;
        owned.push(m);
      } else if (!ip && info.name === IP_MAP) {
        ip = m;
        owned.push(m);
      } else {
        m.close();
      }
    }
  }
  if (!specs) {
    for (const m of owned) m.close();
    throw new InvalidArgumentError(`attachUsdt: ${prog.name || 'the program'} uses no __bpf_usdt_specs map: read USDT arguments with ` +
      "<bpf/usdt.bpf.h> (BPF_USDT, bpf_usdt_arg), or pass { specsMap } when the program was loaded elsewhere");
  }
  const info = specs.info();
  if (info.type !== 'array' || info.keySize !== 4 || info.valueSize !== USDT_SPEC_SIZE) {
    for (const m of owned) m.close();
    throw new InvalidArgumentError(`attachUsdt: __bpf_usdt_specs is a ${info.type} map of ${info.keySize}-byte keys and ${info.valueSize}-byte values; ` +
      `usdt.bpf.h's is an array of ${USDT_SPEC_SIZE}-byte struct __bpf_usdt_spec (a different libbpf version?)`);
  }
  return { specs, ip, owned };
}

function u32Key(n: number): Uint8Array {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, n, true);
  return k;
}

function u64Key(n: bigint): Uint8Array {
  const k = new Uint8Array(8);
  new DataView(k.buffer).setBigUint64(0, n, true);
  return k;
}

/** One attached probe site. */
export interface UsdtSite extends UsdtNote {
  /** The __bpf_usdt_specs slot describing its arguments. */
  readonly specId: number;
  readonly argSpecs: readonly UsdtArg[];
}

/**
 * The uprobes of one USDT probe (one per site) and the argument specs they use; closing detaches
 * them and frees the specs' slots (unless the link was pinned: then the specs stay for the
 * pinned uprobes). Pinning pins every uprobe link as `<path>/<index>`, like a LinkSet. (It wraps
 * a LinkSet rather than extending it: this module is loaded while link.ts may still be
 * initialising, through program.ts -> attach.ts.)
 */
export class UsdtLink implements Link {
  readonly kind = 'usdt';
  readonly binary: string;
  readonly provider: string;
  readonly probe: string;
  readonly sites: readonly UsdtSite[];
  readonly #set: LinkSet;
  #release: (() => void) | undefined;

  constructor(links: readonly PerfEventLink[], binary: string, provider: string, probe: string, sites: readonly UsdtSite[], release: () => void) {
    this.#set = new LinkSet('usdt', links);
    this.binary = binary;
    this.provider = provider;
    this.probe = probe;
    this.sites = sites;
    this.#release = release;
  }

  /** The uprobe links, one per site (in the order of `sites`). */
  get links(): readonly Link[] {
    return this.#set.links;
  }

  get fd(): undefined {
    return undefined;
  }

  get closed(): boolean {
    return this.#set.closed;
  }

  get pinnedPath(): string | undefined {
    return this.#set.pinnedPath;
  }

  pin(path: string): void {
    this.#set.pin(path);
  }

  unpin(): void {
    this.#set.unpin();
  }

  /** The info of the first site's link. */
  info(): LinkInfo {
    return this.#set.info();
  }

  close(): void {
    try {
      this.#set.close();
    } finally {
      const release = this.#release;
      this.#release = undefined;
      release?.();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function symbolResolver(elf: ElfFile): SymbolAddress {
  let table: Map<string, number> | undefined;
  return (name) => {
    if (!table) {
      table = new Map();
      for (const which of ['dynsym', 'symtab'] as const) {
        for (const s of elf.symbols(which)) {
          if (s.name && s.shndx !== SHN_UNDEF && s.value !== 0) table.set(s.name, s.value);
        }
      }
    }
    return table.get(name);
  };
}

/** The USDT probes a binary or library defines (bare names are looked up like uprobe binaries). */
export function listUsdtProbes(binary: string): UsdtNote[] {
  return readUsdtNotes(openElfFile(resolveBinaryPath(binary), 'usdt'));
}

/**
 * Attaches a USDT program (`SEC("usdt")`, reading its arguments with <bpf/usdt.bpf.h>) to every
 * site of probe `provider:name` in a binary or library. The program's `__bpf_usdt_specs` map is
 * filled with each site's argument locations; `cookie` is what bpf_usdt_cookie() returns.
 *
 * Requires Linux 4.3 (uprobes); without bpf cookies (before 5.15) sites are told apart by address.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) for a binary without that probe,
 *   or a program without the `__bpf_usdt_specs` map.
 * @throws {@link ElfError} (`ERR_BPFKIT_ELF`) for a malformed binary or USDT note.
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) for an argument location bpfkit
 *   cannot describe, or a kernel without uprobes.
 * @throws {@link BpfkitError} (`ERR_BPFKIT_USDT_SPECS_FULL`) when the program's spec slots run out.
 * @throws {@link BpfSyscallError} (`code` is the errno name) when attaching a uprobe fails.
 */
export function attachUsdt(prog: Program, binaryPath: string, provider: string, name: string, options: UsdtOptions = {}): UsdtLink {
  requireProgramType(prog, ['kprobe'], 'attachUsdt');
  if (!provider || !name) throw new InvalidArgumentError('attachUsdt: give the probe\'s provider and name, e.g. ("libc", "setjmp")');
  const path = resolveBinaryPath(binaryPath);
  const pid = options.pid ?? -1;
  if (!Number.isInteger(pid) || pid < -1 || pid === 0) throw new InvalidArgumentError(`usdt pid must be a process id or -1 for all, got ${pid}`);
  const cookie = options.cookie ?? 0n;
  if (typeof cookie !== 'bigint' || cookie < 0n || cookie >= 1n << 64n) throw new InvalidArgumentError(`usdt cookie must be a u64 bigint, got ${String(cookie)}`);
  const elf = openElfFile(path, 'usdt');
  const all = readUsdtNotes(elf);
  const notes = all.filter((n) => n.provider === provider && n.name === name);
  if (notes.length === 0) {
    const have = [...new Set(all.map((n) => `${n.provider}:${n.name}`))];
    throw new InvalidArgumentError(`usdt: ${path} has no probe ${provider}:${name}; ` +
      (have.length ? `its probes: ${have.slice(0, 20).join(', ')}${have.length > 20 ? ', ...' : ''}` : 'it defines no USDT probes (no .note.stapsdt notes)'));
  }
  const symbol = symbolResolver(elf);
  const parsed = notes.map((n) => ({ note: n, args: parseUsdtArgs(n.args, elf.machine, n.pc, symbol) }));

  const withCookie = kernelHasBpfCookie();
  let ipOf: ((n: UsdtNote) => bigint) | undefined;
  if (!withCookie) {
    if (elf.type === ET.EXEC) {
      ipOf = (n) => BigInt(n.pc);
    } else if (pid !== -1) {
      const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
      const real = realpathSync(path);
      ipOf = (n) => {
        const ip = probeAddressInProcess(maps, real, n.fileOffset);
        if (ip === undefined) throw new InvalidArgumentError(`usdt: process ${pid} has not mapped ${real} (does it run this binary?)`);
        return ip;
      };
    } else {
      throw new NotSupportedError(`USDT probes in position-independent binaries and libraries (${path}) without a pid`,
        'usdt.bpf.h then finds argument specs by the probe\'s address in the process, which needs bpf cookies (5.15) or a { pid }', '5.15');
    }
  }

  const maps = findMaps(prog, options);
  const specsInfo = maps.specs.info();
  const mapId = specsInfo.id;
  const ids: number[] = [];
  const ips: bigint[] = [];
  const links: PerfEventLink[] = [];
  const sites: UsdtSite[] = [];
  let released = false;
  const release = (pinned: boolean): void => {
    if (released) return;
    released = true;
    try {
      if (!pinned) {
        for (const ip of ips) {
          try { maps.ip?.delete(u64Key(ip)); } catch { /* the map may be gone */ }
        }
        for (const id of ids) releaseSpecId(mapId, id);
      }
    } finally {
      for (const m of maps.owned) m.close();
    }
  };
  try {
    // Sites whose arguments sit in the same places share one spec (globals are relative to each
    // site's pc, so compare the encoded specs, not the argument strings).
    const bySpec = new Map<string, number>();
    for (const { note, args } of parsed) {
      const bytes = encodeUsdtSpec(args, cookie);
      const key = Buffer.from(bytes).toString('hex');
      let specId = bySpec.get(key);
      if (specId === undefined) {
        specId = allocateSpecId(mapId, specsInfo.maxEntries);
        ids.push(specId);
        bySpec.set(key, specId);
        maps.specs.update(u32Key(specId), bytes);
      }
      if (ipOf) {
        if (!maps.ip) throw new InvalidArgumentError(`attachUsdt: ${prog.name || 'the program'} has no __bpf_usdt_ip_to_spec_id map, which kernels without bpf cookies need`);
        const ip = ipOf(note);
        maps.ip.update(u64Key(ip), u32Key(specId));
        ips.push(ip);
      }
      links.push(attachUprobe(prog, path, note.fileOffset, {
        ...(pid !== -1 ? { pid } : {}),
        ...(note.semaphoreFileOffset ? { refCtrOffset: note.semaphoreFileOffset } : {}),
        ...(withCookie ? { cookie: BigInt(specId) } : {}),
      }));
      sites.push({ ...note, specId, argSpecs: args });
    }
  } catch (e) {
    for (const l of links) {
      try { l.close(); } catch { /* keep the first error */ }
    }
    release(false);
    throw e;
  }
  const link: UsdtLink = new UsdtLink(links, path, provider, name, sites, () => release(link.pinnedPath !== undefined));
  return link;
}
