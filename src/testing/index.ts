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
export type { KernelObject, ObjectHost, ObjectKind } from './objects.js';
export type { KernelBehaviour } from './version.js';
export type { Waitable, Watcher } from './rings.js';
export type { ArrayMap, MapParams, Found, ProgRef } from './maps.js';
export type { Code, LdTarget } from './loader.js';
export type { ProbeMemoryLike } from './interpreter.js';
export type { Fib, FibDevice, FibNeighbour, FibRoute, FibRouteType, FibEntry } from './fib.js';
export type { EmuMap } from './maps.js';
export { IMPLEMENTED_HELPERS } from './helpers.js';
export type { EmulatedSocket } from './sockets.js';
export { EmulatorFault, type Task } from './interpreter.js';
export { ProbeMemory } from './memory.js';
export { asm, assemble, label, type AluOp, type AtomicOp, type Insn, type Item, type JmpCond, type Label, type MemSize, type Operand, type Register } from './asm.js';
export { disassemble, readInsn, helperName, type RawInsn } from '../asm/isa.js';
// The library's own types the signatures above name (the syscall seam EmulatedKernel implements,
// and the live objects, errors and kernel vocabulary the mocks and loadAssembly share with it).
export type { Native, NativePoller, PointerRefs } from '../sys/native.js';
export type { MapInfo, UpdateFlags } from '../objects/map.js';
export type { TestRunOptions, TestRunResult } from '../objects/program.js';
export type { ProgramInfo } from '../objects/program-info.js';
export type { BpfkitError, BpfkitErrorCode, ErrnoCode } from '../errors.js';
export { MAP_TYPES, PROG_TYPES, type MapType, type ProgType } from '../abi/constants.js';
export { MockMap, MockProgram, type MapLike, type ProgramLike, type MockMapOptions, type MockProgramOptions, type MockTestRun, type MapCall, type MapDescription } from './mocks.js';
export { loadAssembly, functionInfo, type LoadAssemblyOptions } from './load.js';
