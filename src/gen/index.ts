/**
 * bpfkit/gen: `bpfkit gen`, as a library: TypeScript bindings generated from a BPF object, and
 * the clang driver that builds the object from C. No kernel needed; compileBpf() needs clang.
 *
 * @module bpfkit/gen
 */
export { generate, checkIdent, type GenerateOptions } from './module.js';
export { compileBpf, findClang, findLibbpfHeaders, type BpfTarget, type CompileOptions, type CompileResult } from './compile.js';
export { checkSameProgram, targetOf } from './byte-order.js';
