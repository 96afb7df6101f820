/**
 * The one ELF64 reader: sections, symbols and relocations for BPF objects; segments (program
 * headers), notes, dynamic entries, symbol lookup and address-to-offset for the executables and
 * libraries that uprobes, USDT and the tools look into. Pure and bounds-checked: any inconsistency
 * in the file is an ElfError naming what is wrong, never an out-of-range read.
 *
 * @module bpfkit/elf
 */
import { ElfError } from '../errors.js';

/** ELF section types (`sh_type`) the reader names. */
export const SHT = { NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, RELA: 4, DYNAMIC: 6, NOTE: 7, NOBITS: 8, REL: 9, DYNSYM: 11 } as const;
/** ELF section flags (`sh_flags`) the reader tests. */
export const SHF = { WRITE: 0x1, ALLOC: 0x2, EXECINSTR: 0x4 } as const;
/** ELF symbol types (the low nibble of `st_info`). */
export const STT = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4, GNU_IFUNC: 10 } as const;
/** ELF file types (`e_type`). */
export const ET = { REL: 1, EXEC: 2, DYN: 3 } as const;
/** Program header (segment) types (`p_type`) the reader names. */
export const PT = { LOAD: 1, DYNAMIC: 2, NOTE: 4 } as const;
/** Program header flags (`p_flags`). */
export const PF = { X: 1, W: 2, R: 4 } as const;
/** Dynamic section tags (`d_tag`) the reader reads. */
export const DT = { NULL: 0, NEEDED: 1, RPATH: 15, RUNPATH: 29 } as const;
/** ELF symbol bindings (the high nibble of `st_info`). */
export const STB = { LOCAL: 0, GLOBAL: 1, WEAK: 2 } as const;
/** Section index of an undefined symbol. */
export const SHN_UNDEF = 0;
/** Section index of an absolute symbol. */
export const SHN_ABS = 0xfff1;
/** Section index of a common (unallocated) symbol. */
export const SHN_COMMON = 0xfff2;
/** `e_machine` of a BPF object. */
export const EM_BPF = 247;
/** The largest zero-filled (NOBITS) section this reader materialises: 1 GiB. */
const MAX_NOBITS = 1 << 30;

/** One section header, its name resolved. */
export interface ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  readonly addr: number;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
}

/** One symbol table entry, its name resolved. */
export interface ElfSymbol {
  readonly index: number;
  readonly name: string;
  readonly value: number;
  readonly size: number;
  readonly type: number;
  readonly bind: number;
  readonly visibility: number;
  readonly shndx: number;
}

/** A program header (segment). */
export interface ElfSegment {
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly vaddr: number;
  readonly filesz: number;
  readonly memsz: number;
}

/** One entry of a note section: owner name, type and descriptor bytes (a view). */
export interface ElfNote {
  readonly owner: string;
  readonly type: number;
  readonly desc: Uint8Array;
  /** Offset of the note within its section (for messages). */
  readonly offset: number;
}

/** What the dynamic section says about loading: DT_NEEDED, DT_RPATH and DT_RUNPATH (split on ':'). */
export interface ElfDynamicInfo {
  readonly needed: readonly string[];
  readonly rpath: readonly string[];
  readonly runpath: readonly string[];
}

/** The identification of an ELF file, from its first 20 bytes (enough to reject a wrong library early). */
export interface ElfIdent {
  readonly elf64: boolean;
  readonly littleEndian: boolean;
  readonly machine: number;
}

/** Whether the bytes start with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

/** Class, byte order and machine from the first 20 bytes of a file; undefined when it is not ELF. */
export function elfIdent(head: Uint8Array): ElfIdent | undefined {
  if (head.length < 20 || !isElf(head)) return undefined;
  const le = head[5] === 1;
  const machine = le ? head[18]! | (head[19]! << 8) : (head[18]! << 8) | head[19]!;
  return { elf64: head[4] === 2, littleEndian: le, machine };
}

/** Which symbols `findSymbol` takes: defined functions (and ifuncs), optionally bare labels. */
export interface SymbolQuery {
  /** Also take STT_NOTYPE symbols (a function wins over a label of the same name). */
  readonly labels?: boolean;
}

/** One relocation entry (REL or RELA). */
export interface ElfRelocation {
  /** Offset within the section the relocation applies to. */
  readonly offset: number;
  readonly symbol: number;
  readonly type: number;
  readonly addend: number;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * An ELF file parsed from bytes (32- or 64-bit, either byte order): sections, symbols,
 * relocations, program headers. Pure: no kernel.
 * @throws ElfError (`ERR_BPFKIT_ELF`, exported from `bpfkit`) when the bytes are not a
 *   well-formed ELF file.
 */
export class ElfFile {
  readonly bytes: Uint8Array;
  readonly littleEndian: boolean;
  readonly type: number;
  readonly machine: number;
  readonly sections: readonly ElfSection[];
  readonly #view: DataView;
  readonly #byName = new Map<string, ElfSection>();

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 64) throw new ElfError(`file is ${bytes.length} bytes, too short for an ELF header (64)`);
    if (!isElf(bytes)) {
      throw new ElfError('not an ELF file (bad magic): expected a BPF object compiled with clang -target bpf');
    }
    if (bytes[4] !== 2) throw new ElfError('not a 64-bit ELF file: BPF objects are ELF64 (clang -target bpf)');
    if (bytes[5] !== 1 && bytes[5] !== 2) throw new ElfError(`unknown ELF data encoding ${bytes[5]}`);
    this.littleEndian = bytes[5] === 1;
    this.type = this.u16(16);
    this.machine = this.u16(18);
    const shoff = this.u64n(40, 'e_shoff');
    const shentsize = this.u16(58);
    let shnum = this.u16(60);
    let shstrndx = this.u16(62);
    if (shoff === 0) throw new ElfError('the ELF file has no section header table');
    if (shentsize < 64) throw new ElfError(`section header entry size ${shentsize} is smaller than 64`);
    this.need(shoff, shentsize, 'section header table');
    // Extended numbering: real counts live in section 0 when they overflow 16 bits.
    if (shnum === 0) shnum = this.u64n(shoff + 32, 'sh_size[0]');
    if (shstrndx === 0xffff) shstrndx = this.u32(shoff + 40);
    if (shnum > 1_000_000) throw new ElfError(`implausible section count ${shnum}`);
    this.need(shoff, shnum * shentsize, 'section header table');

    const raw: Omit<ElfSection, 'name'>[] & { nameOff?: number }[] = [];
    const nameOffs: number[] = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      nameOffs.push(this.u32(o));
      const s = {
        index: i,
        type: this.u32(o + 4),
        flags: this.u64n(o + 8, 'sh_flags'),
        addr: this.u64n(o + 16, 'sh_addr'),
        offset: this.u64n(o + 24, 'sh_offset'),
        size: this.u64n(o + 32, 'sh_size'),
        link: this.u32(o + 40),
        info: this.u32(o + 44),
        addralign: this.u64n(o + 48, 'sh_addralign'),
        entsize: this.u64n(o + 56, 'sh_entsize'),
      };
      if (s.type !== SHT.NOBITS && s.type !== SHT.NULL) this.need(s.offset, s.size, `section ${i}`);
      raw.push(s);
    }
    if (shstrndx >= shnum) throw new ElfError(`section name table index ${shstrndx} is out of range (${shnum} sections)`);
    const strtab = raw[shstrndx]!;
    this.sections = raw.map((s, i) => {
      const name = this.#string(strtab, nameOffs[i]!, `name of section ${i}`);
      return { ...s, name } as ElfSection;
    });
    for (const s of this.sections) if (!this.#byName.has(s.name)) this.#byName.set(s.name, s);
  }

  static parse(bytes: Uint8Array): ElfFile {
    try {
      return new ElfFile(bytes);
    } catch (e) {
      if (e instanceof ElfError) throw e;
      throw new ElfError(`malformed ELF file: ${(e as Error).message}`);
    }
  }

  section(name: string): ElfSection | undefined {
    return this.#byName.get(name);
  }

  /** The bytes of a section (a view, not a copy). NOBITS sections are all zero. */
  data(s: ElfSection): Uint8Array {
    if (s.type === SHT.NOBITS) {
      // Zero-filled sections have no bytes in the file to bound them: refuse absurd sizes.
      if (s.size > MAX_NOBITS) throw new ElfError(`section ${s.name} claims ${s.size} bytes of zeros (more than ${MAX_NOBITS}): corrupt`);
      return new Uint8Array(s.size);
    }
    return this.bytes.subarray(s.offset, s.offset + s.size);
  }

  /** Symbols of the symbol table (SHT_SYMTAB, or SHT_DYNSYM when asked). Index 0 is the null symbol. */
  symbols(which: 'symtab' | 'dynsym' = 'symtab'): ElfSymbol[] {
    const type = which === 'symtab' ? SHT.SYMTAB : SHT.DYNSYM;
    const tab = this.sections.find((s) => s.type === type);
    if (!tab) return [];
    const strtab = this.sections[tab.link];
    if (!strtab) throw new ElfError(`symbol table ${tab.name} links to missing string table ${tab.link}`);
    const ent = tab.entsize || 24;
    if (ent < 24) throw new ElfError(`symbol entry size ${ent} is smaller than 24`);
    const out: ElfSymbol[] = [];
    const n = Math.floor(tab.size / ent);
    for (let i = 0; i < n; i++) {
      const o = tab.offset + i * ent;
      const info = this.bytes[o + 4]!;
      out.push({
        index: i,
        name: this.#string(strtab, this.u32(o), `name of symbol ${i}`),
        type: info & 0xf,
        bind: info >> 4,
        visibility: this.bytes[o + 5]! & 0x3,
        shndx: this.u16(o + 6),
        value: this.u64n(o + 8, 'st_value'),
        size: this.u64n(o + 16, 'st_size'),
      });
    }
    return out;
  }

  /** Relocation entries of a SHT_REL or SHT_RELA section. */
  relocations(s: ElfSection): ElfRelocation[] {
    const rela = s.type === SHT.RELA;
    if (!rela && s.type !== SHT.REL) throw new ElfError(`section ${s.name} is not a relocation section`);
    const ent = s.entsize || (rela ? 24 : 16);
    if (ent < (rela ? 24 : 16)) throw new ElfError(`relocation entry size ${ent} in ${s.name} is too small`);
    const out: ElfRelocation[] = [];
    const n = Math.floor(s.size / ent);
    for (let i = 0; i < n; i++) {
      const o = s.offset + i * ent;
      const info = this.#view.getBigUint64(o + 8, this.littleEndian);
      out.push({
        offset: this.u64n(o, 'r_offset'),
        symbol: Number(info >> 32n),
        type: Number(info & 0xffffffffn),
        addend: rela ? Number(this.#view.getBigInt64(o + 16, this.littleEndian)) : 0,
      });
    }
    return out;
  }

  /** Program headers (segments); empty for a relocatable object. */
  segments(): ElfSegment[] {
    const phoff = this.u64n(32, 'e_phoff');
    const entsize = this.u16(54);
    const num = this.u16(56);
    if (phoff === 0 || num === 0) return [];
    if (entsize < 56) throw new ElfError(`program header entry size ${entsize} is smaller than 56`);
    if (phoff + num * entsize > this.bytes.length) throw new ElfError('the program header table lies past the end of the file: truncated or corrupt');
    const out: ElfSegment[] = [];
    for (let i = 0; i < num; i++) {
      const o = phoff + i * entsize;
      out.push({
        type: this.u32(o), flags: this.u32(o + 4), offset: this.u64n(o + 8, 'p_offset'), vaddr: this.u64n(o + 16, 'p_vaddr'),
        filesz: this.u64n(o + 32, 'p_filesz'), memsz: this.u64n(o + 40, 'p_memsz'),
      });
    }
    return out;
  }

  /**
   * The file offset of virtual address `addr`, through the PT_LOAD segment that maps it (only an
   * executable one with `executable`); undefined when no segment maps it.
   */
  fileOffset(addr: number, executable = false): number | undefined {
    for (const s of this.#loads ??= this.segments().filter((p) => p.type === PT.LOAD)) {
      if (executable && !(s.flags & PF.X)) continue;
      if (addr >= s.vaddr && addr < s.vaddr + s.memsz) return addr - s.vaddr + s.offset;
    }
    return undefined;
  }

  #loads: ElfSegment[] | undefined;

  /** The notes of a SHT_NOTE section (4-byte aligned names and descriptors, as ELF64 notes are written). */
  notes(s: ElfSection): ElfNote[] {
    if (s.type !== SHT.NOTE) throw new ElfError(`section ${s.name} is not a note section`);
    const data = this.data(s);
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const align4 = (n: number) => (n + 3) & ~3;
    const out: ElfNote[] = [];
    for (let o = 0; o + 12 <= data.length;) {
      const namesz = v.getUint32(o, this.littleEndian);
      const descsz = v.getUint32(o + 4, this.littleEndian);
      const type = v.getUint32(o + 8, this.littleEndian);
      const nameAt = o + 12;
      const descAt = nameAt + align4(namesz);
      const next = descAt + align4(descsz);
      if (next > data.length) throw new ElfError(`${s.name}: note at offset ${o} runs past the end of the section`);
      const owner = decoder.decode(data.subarray(nameAt, nameAt + namesz)).replace(/\0+$/, '');
      out.push({ owner, type, desc: data.subarray(descAt, descAt + descsz), offset: o });
      o = next;
    }
    return out;
  }

  /** DT_NEEDED, DT_RPATH and DT_RUNPATH of the .dynamic section (all empty for a static binary). */
  dynamic(): ElfDynamicInfo {
    const out = { needed: [] as string[], rpath: [] as string[], runpath: [] as string[] };
    const dyn = this.sections.find((s) => s.type === SHT.DYNAMIC);
    if (!dyn) return out;
    const strtab = this.sections[dyn.link];
    if (!strtab) throw new ElfError(`.dynamic links to missing string table ${dyn.link}`);
    const ent = dyn.entsize || 16;
    if (ent < 16) throw new ElfError(`dynamic entry size ${ent} is smaller than 16`);
    this.need(dyn.offset, dyn.size, '.dynamic');
    for (let o = dyn.offset; o + 16 <= dyn.offset + dyn.size; o += ent) {
      const tag = Number(this.#view.getBigInt64(o, this.littleEndian));
      if (tag === DT.NULL) break;
      if (tag !== DT.NEEDED && tag !== DT.RPATH && tag !== DT.RUNPATH) continue;
      const str = this.#string(strtab, this.u64n(o + 8, 'd_val'), '.dynamic');
      if (tag === DT.NEEDED) out.needed.push(str);
      else (tag === DT.RPATH ? out.rpath : out.runpath).push(...str.split(':').filter(Boolean));
    }
    return out;
  }

  /**
   * The defined function symbol `name` (STT_FUNC or an ifunc; labels too when asked), from .symtab
   * first and .dynsym when .symtab has none, with the table it came from; undefined when neither
   * defines it.
   */
  findSymbol(name: string, query: SymbolQuery = {}): { symbol: ElfSymbol; table: 'symtab' | 'dynsym' } | undefined {
    for (const table of ['symtab', 'dynsym'] as const) {
      const found = this.symbols(table).filter((s) => s.name === name && isDefinedFunction(s, query.labels ?? false));
      // Prefer a function over a bare label of the same name.
      const symbol = found.find((s) => s.type !== STT.NOTYPE) ?? found[0];
      if (symbol) return { symbol, table };
    }
    return undefined;
  }

  /**
   * The file offset of a defined symbol: relocatable objects hold section offsets, linked
   * binaries virtual addresses inside the symbol's section.
   */
  symbolFileOffset(sym: ElfSymbol): number {
    const sec = this.sections[sym.shndx];
    if (!sec) throw new ElfError(`symbol ${sym.name} points at missing section ${sym.shndx}`);
    if (this.type === ET.REL) return sec.offset + sym.value;
    if (sym.value < sec.addr || sym.value >= sec.addr + Math.max(sec.size, 1)) {
      throw new ElfError(`symbol ${sym.name} (0x${sym.value.toString(16)}) lies outside its section ${sec.name}`);
    }
    return sym.value - sec.addr + sec.offset;
  }

  #string(tab: Omit<ElfSection, 'name'>, off: number, what: string): string {
    if (off >= tab.size) throw new ElfError(`${what}: string offset ${off} is past the end of its string table`);
    const start = tab.offset + off;
    const end = this.bytes.indexOf(0, start);
    if (end < 0 || end >= tab.offset + tab.size) throw new ElfError(`${what}: string is not NUL-terminated`);
    return decoder.decode(this.bytes.subarray(start, end));
  }

  private need(off: number, len: number, what: string): void {
    if (off < 0 || len < 0 || off + len > this.bytes.length) {
      throw new ElfError(`${what} (offset ${off}, ${len} bytes) lies past the end of the file (${this.bytes.length} bytes): truncated or corrupt`);
    }
  }

  private u16(o: number): number {
    this.need(o, 2, 'field');
    return this.#view.getUint16(o, this.littleEndian);
  }

  private u32(o: number): number {
    this.need(o, 4, 'field');
    return this.#view.getUint32(o, this.littleEndian);
  }

  private u64n(o: number, what: string): number {
    this.need(o, 8, what);
    const v = this.#view.getBigUint64(o, this.littleEndian);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} value ${v} is too large`);
    return Number(v);
  }
}

/** A defined function symbol (or ifunc; a bare label when `labels`) with an address: what probes can attach to. */
export function isDefinedFunction(s: ElfSymbol, labels = false): boolean {
  return s.shndx !== SHN_UNDEF && s.shndx !== SHN_ABS && s.value !== 0 &&
    (s.type === STT.FUNC || s.type === STT.GNU_IFUNC || (labels && s.type === STT.NOTYPE));
}
