/**
 * Reads a clang-built BPF ELF object into maps, programs and variables, the way libbpf reads it:
 * BTF-defined and legacy maps, global data sections as array maps, programs by section-name
 * convention, and each program linked with the BPF functions it calls. Pure: the object's bytes
 * in, plain data out; nothing here touches the kernel.
 */
import { bpf_map_def as MAP_DEF, bpf_map_def_legacy as MAP_DEF_LEGACY } from '../abi/bpf-map-def.js';
import { offsetofend } from '../abi/layout.js';
import { cString } from '../abi/cstring.js';
import { Btf, kindOf, withRecordsReplaced } from '../btf/btf.js';
import { parseBtfExt } from '../btf/ext.js';
import type { BtfDatasec, BtfExt, BtfStruct, BtfType, CoreRelo, FuncInfo, LineInfo } from '../btf/types.js';
import { ElfError, SpecError } from '../errors.js';
import { ElfFile, EM_BPF, SHF, SHN_UNDEF, SHT, STB, STT, type ElfSection, type ElfSymbol } from '../elf/reader.js';
import { INSN_SIZE, Insns, BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC } from '../asm/insn.js';
import {
  BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS, LIBBPF_PIN_BY_NAME,
  mapType as mapTypeNames, type MapType,
} from '../abi/constants.js';
import type { MapSpec, MapSlotInit } from './map-spec.js';
import type { ExternReference, MapReference, ProgramSpec } from './program-spec.js';
import { matchSection, type SectionMatch } from './section-names.js';

export interface ParsedObject {
  readonly maps: Map<string, MapSpec>;
  readonly programs: Map<string, ProgramSpec>;
  readonly btf: Btf | undefined;
  readonly btfExt: BtfExt | undefined;
  readonly license: string;
  readonly kernelVersion: number;
  /** Data sections' variables: name -> (map name, offset, size, BTF type id). */
  readonly variables: Map<string, VariableLocation>;
}

/** Where a global variable lives: its data section's map, byte offset and size, and BTF type id. */
export interface VariableLocation {
  readonly name: string;
  readonly map: string;
  readonly offset: number;
  readonly size: number;
  readonly typeId: number;
}

/** A BPF function found in an executable section. */
interface Func {
  readonly name: string;
  readonly section: ElfSection;
  /** Instruction index range within its section. */
  readonly start: number;
  readonly end: number;
  readonly isProgram: boolean;
}

/** What a relocation at one instruction of an executable section points at. */
type Target =
  | { kind: 'call'; section: number; insn: number }
  | { kind: 'map'; map: string }
  | { kind: 'value'; map: string; offset: number }
  | { kind: 'extern'; name: string; weak: boolean };

const DATA_SECTION = /^\.(data|rodata|bss)(\..*)?$/;
/** ELF symbol visibility (st_other & 3). */
const STV_INTERNAL = 1;
const STV_HIDDEN = 2;
/** Largest NOBITS section accepted: 1 GiB, far above any map value the kernel allows (KMALLOC_MAX_SIZE). */
const MAX_NOBITS_SIZE = 1 << 30;

export function parseObject(bytes: Uint8Array): ParsedObject {
  const elf = ElfFile.parse(bytes);
  if (elf.machine !== EM_BPF) {
    throw new SpecError(`ELF machine is ${elf.machine}, not BPF (${EM_BPF}): compile the program with clang -target bpf`);
  }
  if (!elf.littleEndian) {
    throw new SpecError('the object is big-endian but this host is little-endian: compile with -target bpfel (or -target bpf on this host)');
  }
  for (const s of elf.sections) {
    // NOBITS sections (.bss) occupy no file bytes, so their size is unchecked: reading one allocates it.
    if (s.type === SHT.NOBITS && s.size > MAX_NOBITS_SIZE) {
      throw new ElfError(`section ${s.name || s.index} claims ${s.size} bytes of zero-initialised data, more than the ${MAX_NOBITS_SIZE} bytes a BPF object can use: corrupt object?`);
    }
  }
  return new ObjectReader(elf).read();
}

class ObjectReader {
  readonly #elf: ElfFile;
  readonly #symbols: ElfSymbol[];
  #btf: Btf | undefined;
  #ext: BtfExt | undefined;
  readonly #maps = new Map<string, MapSpec>();
  readonly #variables = new Map<string, VariableLocation>();
  /** Map name by (maps section offset), for legacy map references via section symbols. */
  readonly #legacyByOffset = new Map<number, string>();
  /** ELF section index -> the data map standing for it. */
  readonly #dataMaps = new Map<number, string>();
  /** Relocations of each executable section, by instruction index. */
  readonly #relocs = new Map<number, Map<number, Target>>();
  #mapsSection: ElfSection | undefined;
  #legacyMapsSection: ElfSection | undefined;

  constructor(elf: ElfFile) {
    this.#elf = elf;
    this.#symbols = elf.symbols();
  }

  read(): ParsedObject {
    const elf = this.#elf;
    const license = this.#license();
    const kernelVersion = this.#kernelVersion();
    const btfSec = elf.section('.BTF');
    if (btfSec) {
      const raw = Btf.parse(elf.data(btfSec));
      this.#btf = fixupBtf(raw, elf, this.#symbols);
      // An object's BTF is small: check every type now (as fixed), as the kernel will, so a bad
      // object fails here rather than at whichever later call first touches the bad type.
      this.#btf.validate();
      const extSec = elf.section('.BTF.ext');
      if (extSec) this.#ext = parseBtfExt(elf.data(extSec), (off) => raw.string(off));
    }
    this.#mapsSection = elf.section('.maps');
    this.#legacyMapsSection = elf.section('maps');
    if (this.#mapsSection) this.#readBtfMaps(this.#mapsSection);
    if (this.#legacyMapsSection) this.#readLegacyMaps(this.#legacyMapsSection);
    this.#readDataSections();
    this.#readRelocations();
    const programs = this.#readPrograms(license, kernelVersion);
    this.#readMapInitialValues(programs);
    return {
      maps: this.#maps, programs, btf: this.#btf, btfExt: this.#ext, license, kernelVersion,
      variables: this.#variables,
    };
  }

  #license(): string {
    const s = this.#elf.section('license');
    if (!s) return '';
    return cString(this.#elf.data(s));
  }

  #kernelVersion(): number {
    const s = this.#elf.section('version');
    if (!s) return 0;
    if (s.size !== 4) throw new SpecError(`section "version" is ${s.size} bytes, expected 4`);
    const d = this.#elf.data(s);
    return new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0, true);
  }

  // ---- maps -------------------------------------------------------------------------------

  #readBtfMaps(sec: ElfSection): void {
    const btf = this.#btf;
    if (!btf) throw new SpecError('the object has a .maps section but no .BTF: compile with clang -g');
    const datasec = btf.byName('.maps', 'datasec')[0] as BtfDatasec | undefined;
    if (!datasec) throw new SpecError('.BTF has no DATASEC for .maps: compile with clang -g');
    for (const v of datasec.vars) {
      const variable = btf.type(v.type);
      if (variable.kind !== 'var') throw new SpecError(`.maps DATASEC entry ${v.type} is a ${variable.kind}, expected a variable`);
      const def = btf.resolve(variable.type);
      if (def.kind !== 'struct') {
        throw new SpecError(`map ${variable.name}: its definition is a ${def.kind}, expected a struct (use __uint/__type from bpf_helpers.h)`);
      }
      const spec = this.#mapFromBtfDef(btf, variable.name, def, sec.name);
      this.#addMap(spec);
    }
  }

  #mapFromBtfDef(btf: Btf, name: string, def: BtfStruct, section: string, inner = false): MapSpec {
    const spec: MapSpec = {
      name, type: 'unspec', keySize: 0, valueSize: 0, maxEntries: 0, flags: 0, numaNode: 0, mapExtra: 0n,
      pinning: 'none', btf, keyTypeId: 0, valueTypeId: 0, innerMap: undefined, contents: [], data: undefined,
      freeze: false, section,
    };
    let typeNumber = -1;
    for (const m of def.members) {
      const where = `map ${name}, field ${m.name}`;
      switch (m.name) {
        case 'type': typeNumber = uintField(btf, m.type, where); break;
        case 'max_entries': spec.maxEntries = uintField(btf, m.type, where); break;
        case 'map_flags': spec.flags = uintField(btf, m.type, where); break;
        case 'numa_node': spec.numaNode = uintField(btf, m.type, where); break;
        case 'map_extra': spec.mapExtra = ulongField(btf, m.type, where); break;
        case 'key_size': setSize(spec, 'keySize', uintField(btf, m.type, where), where); break;
        case 'value_size': setSize(spec, 'valueSize', uintField(btf, m.type, where), where); break;
        case 'pinning': {
          const p = uintField(btf, m.type, where);
          if (p !== 0 && p !== LIBBPF_PIN_BY_NAME) throw new SpecError(`${where}: unknown pinning mode ${p}`);
          spec.pinning = p === LIBBPF_PIN_BY_NAME ? 'by_name' : 'none';
          break;
        }
        case 'key':
        case 'value': {
          const ptr = btf.type(m.type);
          if (ptr.kind !== 'ptr') throw new SpecError(`${where}: expected a pointer (use __type(${m.name}, T))`);
          const size = btf.sizeof(ptr.type);
          if (m.name === 'key') {
            setSize(spec, 'keySize', size, where);
            spec.keyTypeId = ptr.type;
          } else {
            setSize(spec, 'valueSize', size, where);
            spec.valueTypeId = ptr.type;
          }
          break;
        }
        case 'values': {
          if (inner) throw new SpecError(`${where}: an inner map cannot itself declare values`);
          const arr = btf.type(m.type);
          if (arr.kind !== 'array') throw new SpecError(`${where}: expected an array (use __array(values, ...))`);
          const elem = btf.type(arr.type);
          if (elem.kind !== 'ptr') throw new SpecError(`${where}: expected an array of pointers`);
          const target = btf.resolve(elem.type);
          if (target.kind === 'struct') {
            spec.innerMap = this.#mapFromBtfDef(btf, `${name}.inner`, target, section, true);
          } else if (target.kind !== 'func_proto') {
            throw new SpecError(`${where}: values must point to a map definition or a function, not a ${target.kind}`);
          }
          break;
        }
        default:
          throw new SpecError(`map ${name}: unknown field "${m.name}" in its definition`);
      }
    }
    if (typeNumber < 0) throw new SpecError(`map ${name}: no type given (__uint(type, BPF_MAP_TYPE_...))`);
    spec.type = mapTypeName(typeNumber, name);
    if (spec.type === 'array_of_maps' || spec.type === 'hash_of_maps') {
      if (!spec.innerMap) throw new SpecError(`map ${name}: a map of maps needs an inner map (__array(values, struct {...}))`);
      // The outer map holds fds: its value is a u32 whatever the definition says.
      spec.valueSize = 4;
      spec.valueTypeId = 0;
    } else if (spec.type === 'prog_array') {
      spec.valueSize = spec.valueSize || 4;
      spec.keySize = spec.keySize || 4;
    }
    if (spec.type === 'ringbuf' || spec.type === 'user_ringbuf' || spec.type === 'perf_event_array' ||
        spec.type === 'prog_array' || spec.type === 'array_of_maps' || spec.type === 'hash_of_maps' ||
        spec.type === 'cgroup_array' || spec.type === 'stack_trace') {
      // The kernel refuses BTF key/value types for these map types.
      spec.keyTypeId = 0;
      spec.valueTypeId = 0;
    }
    if (spec.type === 'perf_event_array') {
      spec.keySize = spec.keySize || 4;
      spec.valueSize = spec.valueSize || 4;
    }
    return spec;
  }

  #readLegacyMaps(sec: ElfSection): void {
    const syms = this.#symbols.filter((s) => s.shndx === sec.index && s.type !== STT.SECTION && s.name !== '');
    if (syms.length === 0) return;
    const defSize = Math.floor(sec.size / syms.length);
    if (defSize < MAP_DEF.$size) throw new SpecError(`legacy maps section: ${sec.size} bytes for ${syms.length} maps is too small for struct bpf_map_def`);
    const data = this.#elf.data(sec);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (const sym of syms) {
      if (sym.value + MAP_DEF.$size > data.length) throw new SpecError(`legacy map ${sym.name} lies past the end of its section`);
      const o = sym.value;
      checkLegacyTrailer(sym.name, data.subarray(o, Math.min(data.length, o + defSize)));
      const spec: MapSpec = {
        name: sym.name,
        type: mapTypeName(view.getUint32(o + MAP_DEF.type, true), sym.name),
        keySize: view.getUint32(o + MAP_DEF.key_size, true),
        valueSize: view.getUint32(o + MAP_DEF.value_size, true),
        maxEntries: view.getUint32(o + MAP_DEF.max_entries, true),
        flags: view.getUint32(o + MAP_DEF.map_flags, true),
        numaNode: defSize >= NUMA_END && o + NUMA_END <= data.length ? view.getUint32(o + MAP_DEF_LEGACY.numa_node, true) : 0,
        mapExtra: 0n, pinning: 'none', btf: undefined, keyTypeId: 0, valueTypeId: 0, innerMap: undefined,
        contents: [], data: undefined, freeze: false, section: sec.name,
      };
      this.#addMap(spec);
      this.#legacyByOffset.set(o, sym.name);
    }
  }

  #readDataSections(): void {
    const btf = this.#btf;
    for (const sec of this.#elf.sections) {
      if (!DATA_SECTION.test(sec.name) || (sec.flags & SHF.ALLOC) === 0) continue;
      if (sec.type !== SHT.PROGBITS && sec.type !== SHT.NOBITS) continue;
      if (sec.size === 0) continue;
      const rodata = sec.name.startsWith('.rodata');
      const datasec = btf?.byName(sec.name, 'datasec')[0] as BtfDatasec | undefined;
      // libbpf maps a section only when a skeleton would expose it: some variable that is not
      // static (nor __hidden, which makes it static). Strings and static-only sections stay plain.
      const mmapable = datasec !== undefined && btf !== undefined && datasec.vars.some((v) => {
        const t = btf.type(v.type);
        return t.kind === 'var' && t.linkage !== 'static';
      });
      const spec: MapSpec = {
        name: sec.name, type: 'array', keySize: 4, valueSize: sec.size, maxEntries: 1,
        flags: (rodata ? BPF_F_RDONLY_PROG : 0) | (mmapable ? BPF_F_MMAPABLE : 0),
        numaNode: 0, mapExtra: 0n, pinning: 'none', btf: datasec ? btf : undefined, keyTypeId: 0,
        valueTypeId: datasec ? datasec.id : 0, innerMap: undefined, contents: [],
        // new Uint8Array(view) copies; Buffer#slice (the object is often a Buffer) would not.
        data: new Uint8Array(this.#elf.data(sec)), freeze: rodata, section: sec.name,
      };
      this.#addMap(spec);
      this.#dataMaps.set(sec.index, sec.name);
      if (datasec && btf) {
        for (const v of datasec.vars) {
          const t = btf.type(v.type);
          if (t.kind !== 'var') continue;
          this.#variables.set(t.name, { name: t.name, map: sec.name, offset: v.offset, size: v.size, typeId: t.type });
        }
      }
    }
  }

  #addMap(spec: MapSpec): void {
    if (this.#maps.has(spec.name)) throw new SpecError(`two maps are named ${spec.name}`);
    this.#maps.set(spec.name, spec);
  }

  // ---- relocations ------------------------------------------------------------------------

  #readRelocations(): void {
    const elf = this.#elf;
    for (const rel of elf.sections) {
      if (rel.type !== SHT.REL && rel.type !== SHT.RELA) continue;
      const target = elf.sections[rel.info];
      if (!target || target.type !== SHT.PROGBITS || (target.flags & SHF.EXECINSTR) === 0) continue;
      const insns = new Insns(elf.data(target));
      const byInsn = new Map<number, Target>();
      for (const r of elf.relocations(rel)) {
        if (r.offset % INSN_SIZE !== 0 || r.offset + INSN_SIZE > target.size) {
          throw new SpecError(`relocation at offset ${r.offset} of ${target.name} is not on an instruction`);
        }
        const i = r.offset / INSN_SIZE;
        if (insns.isLdImm64(i) && r.offset + 2 * INSN_SIZE > target.size) {
          throw new SpecError(`relocation at offset ${r.offset} of ${target.name}: ld_imm64 cut off by the end of the section`);
        }
        const sym = this.#symbols[r.symbol];
        if (!sym) throw new SpecError(`relocation in ${target.name} refers to missing symbol ${r.symbol}`);
        byInsn.set(i, this.#relocTarget(target, insns, i, sym));
      }
      this.#relocs.set(target.index, byInsn);
    }
  }

  #relocTarget(sec: ElfSection, insns: Insns, i: number, sym: ElfSymbol): Target {
    const where = `${sec.name}, instruction ${i}`;
    if (sym.shndx === SHN_UNDEF) return { kind: 'extern', name: sym.name, weak: sym.bind === STB.WEAK };
    const symSec = this.#elf.sections[sym.shndx];
    if (!symSec) throw new SpecError(`${where}: symbol ${sym.name} is in missing section ${sym.shndx}`);
    if ((symSec.flags & SHF.EXECINSTR) !== 0) {
      if (insns.isCall(i)) {
        return { kind: 'call', section: sym.shndx, insn: sym.value / INSN_SIZE + insns.imm(i) + 1 };
      }
      if (insns.isLdImm64(i)) {
        // A function's address (bpf_loop callbacks): the immediate is a byte offset.
        return { kind: 'call', section: sym.shndx, insn: (sym.value + insns.imm(i)) / INSN_SIZE };
      }
      throw new SpecError(`${where}: reference to function ${sym.name} from an instruction that is neither a call nor ld_imm64`);
    }
    if (!insns.isLdImm64(i)) {
      throw new SpecError(`${where}: reference to ${sym.name || symSec.name} from an instruction that is not ld_imm64`);
    }
    if (symSec === this.#mapsSection) {
      if (sym.type === STT.SECTION) throw new SpecError(`${where}: map reference through a section symbol in .maps`);
      return { kind: 'map', map: sym.name };
    }
    if (symSec === this.#legacyMapsSection) {
      const off = sym.type === STT.SECTION ? insns.imm(i) : sym.value;
      const name = this.#legacyByOffset.get(off);
      if (!name) throw new SpecError(`${where}: no legacy map at offset ${off} of section maps`);
      return { kind: 'map', map: name };
    }
    const dataMap = this.#dataMaps.get(sym.shndx);
    if (dataMap) {
      const off = (sym.type === STT.SECTION ? 0 : sym.value) + insns.imm(i);
      return { kind: 'value', map: dataMap, offset: off };
    }
    throw new SpecError(`${where}: reference to ${sym.name || symSec.name} in section ${symSec.name}, which is neither a map nor global data`);
  }

  // ---- programs ---------------------------------------------------------------------------

  #functionsOf(sec: ElfSection): Func[] {
    const n = sec.size / INSN_SIZE;
    if (!Number.isInteger(n)) throw new SpecError(`section ${sec.name} is ${sec.size} bytes, not a whole number of instructions`);
    const isText = sec.name === '.text';
    const syms = this.#symbols
      .filter((s) => s.shndx === sec.index && s.type === STT.FUNC)
      .sort((a, b) => a.value - b.value);
    if (syms.length === 0) {
      if (isText) return [];
      return [{ name: sec.name.replace(/[^A-Za-z0-9_]/g, '_'), section: sec, start: 0, end: n, isProgram: true }];
    }
    return syms.map((s, k) => {
      const start = s.value / INSN_SIZE;
      const next = syms[k + 1];
      const end = s.size > 0 ? start + s.size / INSN_SIZE : next ? next.value / INSN_SIZE : n;
      if (!Number.isInteger(start) || !Number.isInteger(end)) {
        throw new SpecError(`function ${s.name} in section ${sec.name} (offset ${s.value}, ${s.size} bytes) is not a whole number of 8-byte instructions: the object is corrupt; rebuild it`);
      }
      if (end > n || end < start) throw new SpecError(`function ${s.name} lies outside section ${sec.name}`);
      return { name: s.name, section: sec, start, end, isProgram: !isText };
    });
  }

  #readPrograms(license: string, kernelVersion: number): Map<string, ProgramSpec> {
    const funcs: Func[] = [];
    for (const sec of this.#elf.sections) {
      if (sec.type !== SHT.PROGBITS || (sec.flags & SHF.EXECINSTR) === 0 || sec.size === 0) continue;
      funcs.push(...this.#functionsOf(sec));
    }
    const programs = new Map<string, ProgramSpec>();
    for (const f of funcs) {
      if (!f.isProgram) continue;
      // An unknown section name fails only this program, and only if it is loaded (libbpf 1.x).
      const match = matchSection(f.section.name) ?? unknownSection(f.section.name);
      if (programs.has(f.name)) throw new SpecError(`two programs are named ${f.name}`);
      programs.set(f.name, this.#link(f, funcs, match, license, kernelVersion));
    }
    return programs;
  }

  /** The entry function followed by every function it reaches, with calls pointed at their copies. */
  #link(entry: Func, all: Func[], match: SectionMatch, license: string, kernelVersion: number): ProgramSpec {
    const layout: { func: Func; at: number }[] = [{ func: entry, at: 0 }];
    const placed = new Map<Func, number>([[entry, 0]]);
    let total = entry.end - entry.start;
    const funcAt = (section: number, insn: number): Func => {
      const f = all.find((g) => g.section.index === section && insn >= g.start && insn < g.end);
      if (!f) throw new SpecError(`program ${entry.name}: call to instruction ${insn} of section ${this.#elf.sections[section]?.name}, where no function is`);
      return f;
    };
    const fixups: { at: number; target: Func; targetInsn: number }[] = [];
    const references: MapReference[] = [];
    const externs: ExternReference[] = [];
    // Depth first, as libbpf links: a function is appended where its first call is met, and its
    // own calls are placed before the caller's later ones. Same layout, same translated program.
    const visit = (func: Func, at: number): void => {
      const insns = new Insns(this.#elf.data(func.section));
      const relocs = this.#relocs.get(func.section.index);
      for (let i = func.start; i < func.end; i++) {
        const r = relocs?.get(i);
        const here = at + (i - func.start);
        let callTarget: { section: number; insn: number } | undefined;
        if (r?.kind === 'call') callTarget = r;
        else if (!r && insns.isPseudoCall(i)) callTarget = { section: func.section.index, insn: i + insns.imm(i) + 1 };
        if (callTarget) {
          const target = funcAt(callTarget.section, callTarget.insn);
          fixups.push({ at: here, target, targetInsn: callTarget.insn });
          if (!placed.has(target)) {
            const start = total;
            placed.set(target, start);
            layout.push({ func: target, at: start });
            total += target.end - target.start;
            visit(target, start);
          }
        } else if (r?.kind === 'map' || r?.kind === 'value') {
          references.push({ insn: here, kind: r.kind, map: r.map, offset: r.kind === 'value' ? r.offset : 0 });
        } else if (r?.kind === 'extern') {
          externs.push({ insn: here, name: r.name, weak: r.weak });
        }
      }
    };
    visit(entry, 0);
    const out = new Uint8Array(total * INSN_SIZE);
    for (const { func, at } of layout) {
      out.set(this.#elf.data(func.section).subarray(func.start * INSN_SIZE, func.end * INSN_SIZE), at * INSN_SIZE);
    }
    const linked = new Insns(out);
    for (const f of fixups) {
      const dest = placed.get(f.target)! + (f.targetInsn - f.target.start);
      linked.setImm(f.at, dest - f.at - 1);
      if (linked.isLdImm64(f.at)) linked.setSrc(f.at, BPF_PSEUDO_FUNC);
      else linked.setSrc(f.at, BPF_PSEUDO_CALL);
    }
    const { funcInfo, lineInfo, coreRelos } = this.#extFor(layout);
    const def = match.def;
    let flags = 0;
    if (def.sleepable) flags |= BPF_F_SLEEPABLE;
    if (def.xdpFrags) flags |= BPF_F_XDP_HAS_FRAGS;
    return {
      name: entry.name,
      sectionName: entry.section.name,
      type: def.progType,
      attachType: def.attachType,
      attachTarget: match.target,
      attachKind: def.attach,
      autoload: match.autoload,
      sleepable: def.sleepable,
      flags,
      license,
      kernelVersion,
      instructions: out,
      references,
      externs,
      btf: this.#btf,
      funcInfo,
      lineInfo,
      coreRelos,
      functions: layout.map((l) => [l.at, l.func.name] as const),
    };
  }

  /** The .BTF.ext records of each linked function, moved to where the function now sits. */
  #extFor(layout: { func: Func; at: number }[]): { funcInfo: FuncInfo[]; lineInfo: LineInfo[]; coreRelos: CoreRelo[] } {
    const funcInfo: FuncInfo[] = [];
    const lineInfo: LineInfo[] = [];
    const coreRelos: CoreRelo[] = [];
    const ext = this.#ext;
    if (!ext) return { funcInfo, lineInfo, coreRelos };
    for (const { func, at } of layout) {
      const sec = func.section.name;
      const inFunc = (off: number) => off >= func.start && off < func.end;
      const move = (off: number) => at + off - func.start;
      for (const r of ext.funcInfo.get(sec) ?? []) if (inFunc(r.insnOff)) funcInfo.push({ ...r, insnOff: move(r.insnOff) });
      for (const r of ext.lineInfo.get(sec) ?? []) if (inFunc(r.insnOff)) lineInfo.push({ ...r, insnOff: move(r.insnOff) });
      for (const r of ext.coreRelos.get(sec) ?? []) if (inFunc(r.insnOff)) coreRelos.push({ ...r, insnOff: move(r.insnOff) });
    }
    const byOff = (a: { insnOff: number }, b: { insnOff: number }) => a.insnOff - b.insnOff;
    funcInfo.sort(byOff);
    lineInfo.sort(byOff);
    return { funcInfo, lineInfo, coreRelos };
  }

  // ---- initial values of prog arrays and maps of maps -------------------------------------

  #readMapInitialValues(programs: Map<string, ProgramSpec>): void {
    const sec = this.#mapsSection;
    if (!sec || !this.#btf) return;
    const rel = this.#elf.sections.find((s) => (s.type === SHT.REL || s.type === SHT.RELA) && s.info === sec.index);
    if (!rel) return;
    const btf = this.#btf;
    const datasec = btf.byName('.maps', 'datasec')[0] as BtfDatasec | undefined;
    if (!datasec) return;
    for (const r of this.#elf.relocations(rel)) {
      const sym = this.#symbols[r.symbol];
      if (!sym) throw new SpecError(`relocation in .maps refers to missing symbol ${r.symbol}`);
      const slot = datasec.vars.find((v) => r.offset >= v.offset && r.offset < v.offset + v.size);
      if (!slot) throw new SpecError(`relocation at offset ${r.offset} of .maps is outside every map`);
      const variable = btf.type(slot.type);
      const map = this.#maps.get(variable.name);
      const def = map ? btf.resolve((variable as { type: number }).type) : undefined;
      if (!map || !def || def.kind !== 'struct') continue;
      const values = def.members.find((m) => m.name === 'values');
      if (!values) throw new SpecError(`map ${map.name}: initial value given but the map declares no values array`);
      const rel0 = r.offset - slot.offset - values.bitOffset / 8;
      if (rel0 < 0 || rel0 % 8 !== 0) throw new SpecError(`map ${map.name}: initial value at a misaligned offset`);
      const index = rel0 / 8;
      const init: MapSlotInit = { index, target: sym.name };
      if (map.type === 'prog_array') {
        if (!programs.has(sym.name)) throw new SpecError(`map ${map.name}[${index}]: ${sym.name} is not a program of this object`);
      } else if (map.type === 'array_of_maps' || map.type === 'hash_of_maps') {
        if (!this.#maps.has(sym.name)) throw new SpecError(`map ${map.name}[${index}]: ${sym.name} is not a map of this object`);
      } else {
        throw new SpecError(`map ${map.name}: only prog arrays and maps of maps take initial values`);
      }
      if (index >= map.maxEntries) throw new SpecError(`map ${map.name}: initial value at index ${index} beyond max_entries ${map.maxEntries}`);
      map.contents.push(init);
    }
  }
}

/** The end of numa_node in the longer layout (samples/bpf's bpf_map_def_legacy), which bpfkit reads. */
const NUMA_END = offsetofend(MAP_DEF_LEGACY, 'numa_node');

/**
 * libbpf (strict, before 1.0 dropped legacy maps) refuses a definition longer than struct
 * bpf_map_def whose extra bytes are not zero: options it would otherwise silently ignore. bpfkit
 * does the same, except for numa_node, which it honours.
 */
function checkLegacyTrailer(name: string, def: Uint8Array): void {
  for (let i = MAP_DEF.$size; i < def.length; i++) {
    if (def[i] === 0 || (i >= MAP_DEF_LEGACY.numa_node && i < NUMA_END)) continue;
    throw new SpecError(
      `legacy map ${name}: its definition has non-zero bytes past struct bpf_map_def (at offset ${i}): ` +
      'options (such as inner_map_idx) that bpfkit, like libbpf, does not support; use a BTF map definition in SEC(".maps")',
    );
  }
}

/** What an unknown section gives its program: no type (the user may set one) and no attach. */
function unknownSection(sectionName: string): SectionMatch {
  const autoload = !sectionName.startsWith('?');
  return {
    def: { pattern: '', progType: 'unspec', attachType: undefined, sleepable: false, xdpFrags: false, attach: undefined },
    target: '', autoload, name: autoload ? sectionName : sectionName.slice(1),
  };
}

/**
 * A 64-bit field: `__uint(name, N)` (a pointer to an array of N), or `__ulong(name, N)` (an
 * anonymous enum or enum64 with the one enumerator N), as libbpf reads map_extra.
 */
export function ulongField(btf: Btf, typeId: number, where: string): bigint {
  const t = btf.resolve(typeId);
  if (t.kind === 'ptr') return BigInt(uintField(btf, typeId, where));
  if (t.kind !== 'enum' && t.kind !== 'enum64') throw new SpecError(`${where}: expected __uint(...) or __ulong(...), got a ${t.kind}`);
  if (t.values.length !== 1) throw new SpecError(`${where}: __ulong(...) must be an enum with exactly one value (it has ${t.values.length})`);
  return BigInt.asUintN(64, t.values[0]!.value);
}

function uintField(btf: Btf, typeId: number, where: string): number {
  const ptr = btf.type(typeId);
  if (ptr.kind !== 'ptr') throw new SpecError(`${where}: expected __uint(...) (a pointer to an array)`);
  const arr = btf.type(ptr.type);
  if (arr.kind !== 'array') throw new SpecError(`${where}: expected __uint(...) (a pointer to an array)`);
  return arr.nelems;
}

function setSize(spec: MapSpec, field: 'keySize' | 'valueSize', size: number, where: string): void {
  if (spec[field] !== 0 && spec[field] !== size) {
    throw new SpecError(`${where}: size ${size} conflicts with the ${field === 'keySize' ? 'key' : 'value'} size ${spec[field]} given elsewhere`);
  }
  spec[field] = size;
}

function mapTypeName(n: number, map: string): MapType {
  const name = mapTypeNames.name(n);
  if (name.startsWith('unknown') || name === 'unspec') throw new SpecError(`map ${map}: unknown map type ${n}`);
  return name as MapType;
}

/**
 * What the loader must fix in the compiler's BTF before the kernel sees it, as libbpf does:
 * - DATASEC sizes and variable offsets, which clang leaves to the loader (the ELF section and the
 *   symbol table have them; the kernel refuses a DATASEC of size 0);
 * - global functions with hidden visibility (`__hidden`, as in libbpf's usdt.bpf.h) become static
 *   in BTF, so the verifier checks them with their caller's context instead of as freestanding
 *   global functions (which it verifies against their declared argument types only).
 * Returns a Btf with them fixed, sharing the original string table. Only FUNC and DATASEC records
 * are decoded, and the fixed ones rewritten in place: the object's other types stay undecoded.
 */
function fixupBtf(btf: Btf, elf: ElfFile, symbols: ElfSymbol[]): Btf {
  const fixed = new Map<number, BtfType>();
  const hidden = new Set(symbols.filter((s) => s.type === STT.FUNC && (s.bind === STB.GLOBAL || s.bind === STB.WEAK) &&
    (s.visibility === STV_HIDDEN || s.visibility === STV_INTERNAL)).map((s) => s.name));
  for (let id = 1; id < btf.length; id++) {
    const kind = kindOf(btf, id);
    if (kind !== 'func' && kind !== 'datasec') continue;
    const t = btf.type(id);
    if (t.kind === 'func') {
      if (t.linkage !== 'static' && hidden.has(t.name)) fixed.set(id, { ...t, linkage: 'static' });
      continue;
    }
    if (t.kind !== 'datasec') continue;
    const sec = elf.section(t.name);
    if (!sec) continue;
    const vars = t.vars.map((v) => {
      const variable = btf.type(v.type);
      const sym = symbols.find((s) => s.shndx === sec.index && s.name === variable.name && s.type === STT.OBJECT);
      if (!sym) return v;
      return sym.value === v.offset ? v : { ...v, offset: sym.value };
    });
    if (t.size === sec.size && vars.every((v, k) => v === t.vars[k])) continue;
    fixed.set(id, { ...t, size: sec.size, vars } as BtfDatasec);
  }
  return fixed.size > 0 ? withRecordsReplaced(btf, fixed) : btf;
}
