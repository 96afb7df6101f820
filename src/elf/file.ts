/**
 * Opening an ELF binary or library from disk for lookups (uprobes, USDT, the tools): one place
 * that turns a missing file or a malformed one into an InvalidArgumentError naming the file and
 * who asked, instead of an fs error or a bare ElfError from deep inside.
 */
import { readFileSync } from 'node:fs';
import { ElfError, InvalidArgumentError } from '../errors.js';
import { ElfFile, type ElfSymbol } from './reader.js';

/** Reads and parses `path`; `who` prefixes the messages ("uprobe", "usdt", "the program"). */
export function openElfFile(path: string, who: string): ElfFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new InvalidArgumentError(`${who}: cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  try {
    return ElfFile.parse(bytes);
  } catch (e) {
    if (e instanceof ElfError) throw new InvalidArgumentError(`${who}: ${path} is not a usable ELF binary: ${e.message}`);
    throw e;
  }
}

/** `elf.symbolFileOffset(sym)` with a malformed symbol reported against the file. */
export function symbolFileOffsetIn(elf: ElfFile, sym: ElfSymbol, path: string, who: string): number {
  try {
    return elf.symbolFileOffset(sym);
  } catch (e) {
    if (e instanceof ElfError) throw new InvalidArgumentError(`${who}: ${e.message} in ${path}`);
    throw e;
  }
}
