/**
 * `bpfkit/elf`: the ELF reader bpfkit itself uses (BPF objects, and the executables and libraries
 * uprobes and USDT probes attach to), and how bpfkit finds a program or library by name.
 */
export * from './reader.js';
export {
  findLibrary, findNeeded, findProgram, isLibraryName, resolveBinary, systemLibDirs, type ResolveOptions,
} from './resolve.js';
export { openElfFile } from './file.js';
