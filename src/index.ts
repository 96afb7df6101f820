/**
 * bpfkit: load clang-built BPF objects, create maps, load and run programs, from TypeScript.
 */
export { CollectionSpec, VariableSpec, type MapSpec, type ProgramSpec } from './collection-spec.js';
export { Collection, Variable, type CollectionOptions } from './collection.js';
export { BpfMap, type MapInfo, type UpdateFlags } from './map.js';
export { Program, type ProgramInfo, type TestRunOptions, type TestRunResult } from './program.js';
export {
  BpfkitError, BpfSyscallError, BtfError, ClosedError, ElfError, InvalidArgumentError, NotSupportedError,
  SpecError, VerifierError,
} from './errors.js';
export { Btf } from './btf/btf.js';
export { codecFor, cString, type Codec } from './btf/codec.js';
export { parseCidr, lpmKey, formatLpmKey } from './cidr.js';
export { haveMapType, haveProgramType, haveProgramHelper } from './features.js';
export { possibleCpus, onlineCpus } from './cpus.js';
export { enableStats } from './stats.js';
export { setNative, type Native } from './native.js';
export type { MapType, ProgType, AttachType } from './sys/constants.js';
export type { ProgramLoadOptions } from './load/program-load.js';
