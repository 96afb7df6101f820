/**
 * bpfkit/testing: test BPF programs, and the code that drives them, without root.
 *
 * - `useEmulatedKernel()` installs an emulated kernel behind the library's syscall seam: the code
 *   under test keeps using `CollectionSpec`, `Collection`, `BpfMap` and `Program` unchanged, and
 *   programs run in an interpreter on their own bytecode.
 * - `MockMap` and `MockProgram` stand in for `BpfMap` and `Program` where no bytecode is needed.
 * - `asm` / `assemble` / `loadAssembly` build and load instructions for instruction-level tests;
 *   `ProbeMemory` lays out the memory tracing programs read.
 *
 * See docs/testing.md.
 *
 * @module bpfkit/testing
 */
export { EmulatedKernel, EmuProgram, useEmulatedKernel, type EmulatedKernelOptions, type NetDev, type ProgramFacts } from './kernel.js';
export type { Fib, FibDevice, FibNeighbour, FibRoute, FibRouteType, FibEntry } from './fib.js';
export type { EmuMap } from './maps.js';
export { IMPLEMENTED_HELPERS } from './helpers.js';
export type { EmulatedSocket } from './sockets.js';
export { EmulatorFault, type Task } from './interpreter.js';
export { ProbeMemory } from './memory.js';
export { asm, assemble, label, type AluOp, type AtomicOp, type Insn, type Item, type JmpCond, type Label, type MemSize, type Operand, type Register } from './asm.js';
export { disassemble, readInsn, helperName } from '../asm/isa.js';
export { MockMap, MockProgram, type MapLike, type ProgramLike, type MockMapOptions, type MockProgramOptions, type MockTestRun, type MapCall } from './mocks.js';
export { loadAssembly, functionInfo, type LoadAssemblyOptions } from './load.js';
