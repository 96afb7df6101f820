/**
 * Byte-level edits of BTF and ELF objects for hostile-input tests: where each btf_type record of a
 * blob starts, and where an object keeps its `.BTF` section and symbol table, so a test can corrupt
 * one field of a real object the way a fuzzer would.
 */
import { ElfFile } from '../../src/elf/reader.js';

export interface RawRecord {
  readonly id: number;
  readonly kind: number;
  /** Byte offset of the record within the blob. */
  readonly at: number;
}

/** Records of a little-endian BTF blob (standalone: ids from 1). */
export function btfRecords(blob: Uint8Array): RawRecord[] {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const hdrLen = dv.getUint32(4, true);
  const start = hdrLen + dv.getUint32(8, true);
  const end = start + dv.getUint32(12, true);
  const out: RawRecord[] = [];
  for (let at = start, id = 1; at < end; id++) {
    const info = dv.getUint32(at + 4, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    out.push({ id, kind, at });
    at += 12;
    switch (kind) {
      case 1: case 14: case 17: at += 4; break; // int, var, decl_tag
      case 3: at += 12; break; // array
      case 4: case 5: case 15: case 19: at += 12 * vlen; break; // struct, union, datasec, enum64
      case 6: case 13: at += 8 * vlen; break; // enum, func_proto
      default: break;
    }
  }
  return out;
}

/** Offset of the `.BTF` section within an object. */
export function btfSectionOffset(object: Uint8Array): number {
  const sec = ElfFile.parse(object).section('.BTF');
  if (!sec) throw new Error('object has no .BTF');
  return sec.offset;
}

/** Byte offsets of the symbol table entries (Elf64_Sym) of FUNC symbols in executable sections. */
export function funcSymbolOffsets(object: Uint8Array): number[] {
  const elf = ElfFile.parse(object);
  const symtab = elf.sections.find((s) => s.type === 2 /* SHT_SYMTAB */);
  if (!symtab) throw new Error('object has no symbol table');
  const dv = new DataView(object.buffer, object.byteOffset, object.byteLength);
  const out: number[] = [];
  for (let at = symtab.offset; at + 24 <= symtab.offset + symtab.size; at += 24) {
    const shndx = dv.getUint16(at + 6, true);
    const sec = elf.sections[shndx];
    if ((dv.getUint8(at + 4) & 0xf) === 2 && sec && (sec.flags & 0x4) !== 0) out.push(at);
  }
  return out;
}
