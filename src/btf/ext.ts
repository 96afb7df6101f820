/**
 * `.BTF.ext`, the per-instruction side of BTF that clang emits next to `.BTF`: func_info (which
 * BTF func starts at which instruction), line_info (source file, line and column per
 * instruction) and CO-RE relocations. Each info block is a u32 record size followed by one group
 * per ELF section: sec_name_off, num_info, then that many records. Offsets in the records are
 * bytes into the section; they are returned here as instruction indexes. Strings are looked up in
 * the companion `.BTF` string table through the `strings` callback. Every length and offset is
 * checked so malformed input ends in a `BtfError`.
 */
import { BtfError } from '../errors.js';
import type { BtfExt, CoreRelo, FuncInfo, LineInfo } from './types.js';

const BTF_MAGIC = 0xeb9f;
const BTF_VERSION = 1;
/** sizeof(struct btf_ext_header) up to line_info_len: the oldest header layout. */
const EXT_HEADER_MIN_LEN = 24;
/** The header layout that adds core_relo_off/core_relo_len. */
const EXT_HEADER_CORE_LEN = 32;
/** sizeof(struct bpf_func_info), sizeof(struct bpf_line_info), sizeof(struct bpf_core_relo). */
const FUNC_INFO_LEN = 8;
const LINE_INFO_LEN = 16;
const CORE_RELO_LEN = 16;
/** sizeof(struct bpf_insn): record offsets are in bytes, callers think in instructions. */
const INSN_SIZE = 8;

/** One info block's bounds and its reader, shared by the three record kinds. */
interface InfoBlock {
  readonly view: DataView;
  readonly le: boolean;
  readonly name: string;
  readonly start: number;
  readonly end: number;
  readonly strings: (offset: number) => string;
}

/** Decodes one record at `at`; `sec` names the ELF section for messages. */
type RecordDecoder<T> = (block: InfoBlock, at: number, sec: string) => T;

export function parseBtfExt(bytes: Uint8Array, strings: (offset: number) => string, littleEndian = true): BtfExt {
  if (!(bytes instanceof Uint8Array)) throw new BtfError('.BTF.ext must be given as a Uint8Array');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hdrLen = readExtHeader(bytes, view, littleEndian);
  const block = (name: string, offField: number): InfoBlock => {
    const off = view.getUint32(offField, littleEndian);
    const len = view.getUint32(offField + 4, littleEndian);
    const start = hdrLen + off;
    if (start + len > bytes.length) {
      throw new BtfError(`.BTF.ext ${name} [${start}, ${start + len}) is outside the ${bytes.length}-byte section`);
    }
    return { view, le: littleEndian, name, start, end: start + len, strings };
  };
  const hasCore = hdrLen >= EXT_HEADER_CORE_LEN;
  return {
    funcInfo: readInfo(block('func_info', 8), FUNC_INFO_LEN, decodeFuncInfo),
    lineInfo: readInfo(block('line_info', 16), LINE_INFO_LEN, decodeLineInfo),
    coreRelos: hasCore ? readInfo(block('core_relo', 24), CORE_RELO_LEN, decodeCoreRelo) : new Map(),
  };
}

/** Checks magic, version, flags and hdr_len; returns hdr_len. */
function readExtHeader(bytes: Uint8Array, view: DataView, le: boolean): number {
  if (bytes.length < 8) throw new BtfError(`.BTF.ext is ${bytes.length} bytes, too short for a btf_ext_header`);
  const magic = view.getUint16(0, le);
  if (magic !== BTF_MAGIC) {
    const swapped = view.getUint16(0, !le) === BTF_MAGIC;
    throw new BtfError(swapped
      ? `.BTF.ext byte order does not match .BTF (expected ${le ? 'little' : 'big'}-endian)`
      : `bad .BTF.ext magic 0x${magic.toString(16).padStart(4, '0')} (expected 0xeb9f)`);
  }
  const version = view.getUint8(2);
  if (version !== BTF_VERSION) throw new BtfError(`unsupported .BTF.ext version ${version} (expected ${BTF_VERSION})`);
  const flags = view.getUint8(3);
  if (flags !== 0) throw new BtfError(`unsupported .BTF.ext header flags 0x${flags.toString(16)}`);
  const hdrLen = view.getUint32(4, le);
  if (hdrLen < EXT_HEADER_MIN_LEN) throw new BtfError(`.BTF.ext hdr_len ${hdrLen} is smaller than the minimal header (${EXT_HEADER_MIN_LEN})`);
  if (hdrLen > bytes.length) throw new BtfError(`.BTF.ext hdr_len ${hdrLen} exceeds the section (${bytes.length} bytes)`);
  return hdrLen;
}

/**
 * Reads one info block: record size, then per-section groups. Records may be larger than the
 * layout known here (newer compilers append fields); the extra bytes are skipped.
 */
function readInfo<T>(block: InfoBlock, minRecLen: number, decode: RecordDecoder<T>): Map<string, T[]> {
  const out = new Map<string, T[]>();
  if (block.end === block.start) return out;
  if (block.end - block.start < 4) throw new BtfError(`.BTF.ext ${block.name} is too short for its record size`);
  const recLen = block.view.getUint32(block.start, block.le);
  if (recLen < minRecLen) {
    throw new BtfError(`.BTF.ext ${block.name} record size ${recLen} is smaller than ${minRecLen}`);
  }
  let at = block.start + 4;
  while (at < block.end) {
    if (block.end - at < 8) throw new BtfError(`.BTF.ext ${block.name}: section header at ${at} is truncated`);
    const sec = lookup(block, block.view.getUint32(at, block.le), 'section name');
    const count = block.view.getUint32(at + 4, block.le);
    at += 8;
    if (count * recLen > block.end - at) {
      throw new BtfError(`.BTF.ext ${block.name} for section ${sec}: ${count} records of ${recLen} bytes overrun the block`);
    }
    let records = out.get(sec);
    if (records === undefined) out.set(sec, (records = []));
    for (let i = 0; i < count; i++, at += recLen) records.push(decode(block, at, sec));
  }
  return out;
}

/** A string from the `.BTF` table; any failure of the callback becomes a BtfError. */
function lookup(block: InfoBlock, offset: number, what: string): string {
  let s: unknown;
  try {
    s = block.strings(offset);
  } catch (e) {
    if (e instanceof BtfError) throw new BtfError(`.BTF.ext ${block.name}: ${what}: ${e.message}`);
    throw new BtfError(`.BTF.ext ${block.name}: ${what} offset ${offset} is not in the string table`);
  }
  if (typeof s !== 'string') throw new BtfError(`.BTF.ext ${block.name}: ${what} offset ${offset} is not in the string table`);
  return s;
}

function insnIndex(block: InfoBlock, at: number, sec: string): number {
  const off = block.view.getUint32(at, block.le);
  if (off % INSN_SIZE !== 0) {
    throw new BtfError(`.BTF.ext ${block.name} for section ${sec}: insn_off ${off} is not a multiple of ${INSN_SIZE}`);
  }
  return off / INSN_SIZE;
}

function decodeFuncInfo(block: InfoBlock, at: number, sec: string): FuncInfo {
  return { insnOff: insnIndex(block, at, sec), typeId: block.view.getUint32(at + 4, block.le) };
}

function decodeLineInfo(block: InfoBlock, at: number, sec: string): LineInfo {
  const fileNameOff = block.view.getUint32(at + 4, block.le);
  const lineOff = block.view.getUint32(at + 8, block.le);
  const lineCol = block.view.getUint32(at + 12, block.le);
  return {
    insnOff: insnIndex(block, at, sec),
    fileName: lookup(block, fileNameOff, 'file_name_off'),
    line: lookup(block, lineOff, 'line_off'),
    // BPF_LINE_INFO_LINE_NUM / BPF_LINE_INFO_LINE_COL: line in the top 22 bits, column in the low 10.
    lineNum: lineCol >>> 10,
    lineCol: lineCol & 0x3ff,
    fileNameOff, lineOff,
  };
}

function decodeCoreRelo(block: InfoBlock, at: number, sec: string): CoreRelo {
  return {
    insnOff: insnIndex(block, at, sec),
    typeId: block.view.getUint32(at + 4, block.le),
    accessStr: lookup(block, block.view.getUint32(at + 8, block.le), 'access_str_off'),
    kind: block.view.getUint32(at + 12, block.le),
  };
}
