/**
 * bpfkit/internal: what code bpfkit writes, and bpfkit's own tests and examples, need beyond the
 * public API. Not an API to program against: names here may change between minor versions,
 * except `genRuntime`, which modules written by `bpfkit gen` import and which therefore only ever
 * grows (see src/gen/runtime.ts).
 *
 * - `genRuntime`: the codec and loading helpers that generated modules bind at their top.
 * - `native`, `setNative`, `Native`: the syscall seam (the addon, or a fake installed for tests).
 * - `applyCoreRelocations`, `sanitizeBtfForKernel`, `ExternResolver`: the loader's steps, for
 *   tests that drive one step alone (`Collection.load` runs them all).
 *
 * @module bpfkit/internal
 */
/**
 * What modules written by `bpfkit gen` call at run time: codec helpers (range checks, bitfields,
 * unions, byte orders) and the load wiring. Stable for generated code: names are only added.
 */
export * as genRuntime from './gen/runtime.js';
export { native, setNative, type Native, type NativePoller, type PointerRefs } from './sys/native.js';
export { applyCoreRelocations, type CoreRelocationResult, type CoreRelocationKind } from './btf/core.js';
export type { CoreRelo } from './btf/types.js';
export { sanitizeBtfForKernel, type KernelBtfFeatures, type KconfigLayout, type KconfigSlot } from './load/btf-sanitize.js';
export { ExternResolver, type ExternEnvironment, type ExternResult, type ExternKind } from './load/externs.js';
export type { KernelSymbols, KallsymsSource } from './kernel/kallsyms.js';
export type { Insns } from './asm/insn.js';
export type { CollectionOptions } from './load/collection.js';
export type { ProgramLoadOptions } from './load/program-load.js';
