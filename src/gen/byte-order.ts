/**
 * Bindings for both byte orders (`bpfkit gen --target both`): one C source compiled for bpfel and
 * for bpfeb, and one module that loads whichever matches the host. The module's types and codecs
 * are written once, from the little-endian object (the one bpfkit parses), so the two objects must
 * hold the same program: the same BTF, type for type, the same sections, the same data and map
 * definitions in them, and the same functions (whose code may differ: clang compiles byte swaps
 * and the like for each order). C whose declarations depend on the byte order (`#if
 * __BYTE_ORDER__ == ...` around a struct's members or a map) breaks that, and is refused here
 * rather than decoded wrongly on the other kind of host.
 */
import { isDeepStrictEqual } from 'node:util';
import { Btf } from '../btf/btf.js';
import { ElfFile, SHF, SHT, STT, type ElfSection } from '../elf/reader.js';
import { InvalidArgumentError } from '../errors.js';
import type { BpfTarget } from './compile.js';

/** The target an object was compiled for, from its ELF header. */
export function targetOf(object: Uint8Array): BpfTarget {
  return ElfFile.parse(object).littleEndian ? 'bpfel' : 'bpfeb';
}

/** Sections not compared: DWARF and the like may differ between the targets, BTF is compared by type. */
const IGNORED_SECTION = /^(\.rel)?\.(debug|BTF|llvm)|^\.(symtab|strtab)$|^$/;

/** Code, and relocations (of code, mostly): their sizes depend on the instructions clang chose. */
function isCode(s: ElfSection | undefined): boolean {
  return s !== undefined && ((s.flags & SHF.EXECINSTR) !== 0 || s.type === SHT.REL || s.type === SHT.RELA);
}

function sectionLine(s: ElfSection): string {
  return isCode(s) ? `section ${s.name} (type ${s.type})` : `section ${s.name} (type ${s.type}, ${s.size} bytes)`;
}

function btfOf(elf: ElfFile): Btf | undefined {
  const s = elf.section('.BTF');
  return s === undefined ? undefined : Btf.parse(elf.data(s));
}

/** The first line where `a` and `b` differ, as "<a> in bpfel, <b> in bpfeb". */
function firstDifference(a: readonly string[], b: readonly string[]): string | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `${a[i] ?? 'nothing'} in bpfel, ${b[i] ?? 'nothing'} in bpfeb`;
  }
  return undefined;
}

/**
 * Throws an InvalidArgumentError when `bpfel` and `bpfeb` (the same program compiled for each byte
 * order, as their ELF headers must say) differ in anything the bindings depend on.
 */
export function checkSameProgram(ident: string, bpfel: Uint8Array, bpfeb: Uint8Array): void {
  const el = ElfFile.parse(bpfel);
  const eb = ElfFile.parse(bpfeb);
  if (!el.littleEndian) throw new InvalidArgumentError(`${ident}: the bpfel object is big-endian`);
  if (eb.littleEndian) throw new InvalidArgumentError(`${ident}: the bpfeb object is little-endian`);
  const fail = (what: string): never => {
    throw new InvalidArgumentError(`${ident}: the bpfel and bpfeb objects are not the same program (${what}); `
      + 'the bindings of a bpfeb object are written from the bpfel one, so the types, maps, programs and variables of the C must not depend on the byte order');
  };
  if (el.machine !== eb.machine) fail(`ELF machine ${el.machine} in bpfel, ${eb.machine} in bpfeb`);
  const sections = (f: ElfFile): string[] => f.sections.filter((s) => !IGNORED_SECTION.test(s.name)).map(sectionLine);
  const sectionDiff = firstDifference(sections(el), sections(eb));
  if (sectionDiff !== undefined) fail(sectionDiff);
  // Functions by name and section; in code, nothing else (labels, offsets) has to match.
  const symbols = (f: ElfFile): string[] => f.symbols().flatMap((s) => {
    const section = f.sections[s.shndx];
    const where = section?.name ?? `#${s.shndx}`;
    if (s.name === '' || (isCode(section) && s.type !== STT.FUNC)) return [];
    if (isCode(section)) return [`function ${s.name} (bind ${s.bind}, in ${where})`];
    return [`symbol ${s.name} (type ${s.type}, bind ${s.bind}, ${s.size} bytes at ${where}+${s.value})`];
  });
  const symbolDiff = firstDifference(symbols(el), symbols(eb));
  if (symbolDiff !== undefined) fail(symbolDiff);
  const a = btfOf(el);
  const b = btfOf(eb);
  if ((a === undefined) !== (b === undefined)) fail(`BTF only in ${a ? 'bpfel' : 'bpfeb'}`);
  if (a === undefined || b === undefined) return;
  const ta = a.types;
  const tb = b.types;
  for (let id = 0; id < Math.max(ta.length, tb.length); id++) {
    if (!isDeepStrictEqual(ta[id], tb[id])) {
      const name = (btf: Btf, n: readonly unknown[]): string => (id < n.length ? btf.typeName(id) : 'nothing');
      fail(`BTF type ${id} is ${name(a, ta)} in bpfel, ${name(b, tb)} in bpfeb${id < ta.length && id < tb.length && name(a, ta) === name(b, tb) ? ', laid out differently' : ''}`);
    }
  }
}
