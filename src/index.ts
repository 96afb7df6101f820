/**
 * bpfkit: load clang-built BPF objects, create maps, load and run programs, from TypeScript.
 *
 * @module bpfkit
 */
export { CollectionSpec, VariableSpec, type MapSpec, type ProgramSpec } from './spec/collection-spec.js';
export type { Pinning, MapSlotInit } from './spec/map-spec.js';
export type { MapReference, ExternReference } from './spec/program-spec.js';
export type { VariableLocation } from './spec/elf-collection.js';
export type { AttachKind } from './spec/section-names.js';
export { Collection, type CollectionOptions } from './load/collection.js';
export { Variable, type LazyDataSection, type DataSectionMapping } from './objects/variable.js';
export { PinnableFd } from './objects/pinning.js';
export { FD } from './sys/fd.js';
export { BpfMap, type KeyIn, type MapInfo, type UpdateFlags } from './objects/map.js';
export { Program, type ProgramInfo, type TestRunOptions, type TestRunResult } from './objects/program.js';
export {
  BpfkitError, BpfSyscallError, BtfError, ClosedError, ElfError, InvalidArgumentError, NotSupportedError,
  SpecError, VerifierError, type BpfkitErrorCode, type ErrnoCode,
} from './errors.js';
export { Btf, type BtfMarshalOptions, type BtfParseOptions } from './btf/btf.js';
export type {
  BtfType, BtfKindName, BtfVoid, BtfInt, BtfPtr, BtfArray, BtfMember, BtfStruct, BtfEnum, BtfEnumValue, BtfFwd, BtfQualifier,
  BtfFunc, BtfFuncProto, BtfParam, BtfVar, BtfVarSecinfo, BtfDatasec, BtfFloat, BtfDeclTag, Linkage,
  BtfExt, FuncInfo, LineInfo, CoreRelo,
} from './btf/types.js';
export { codecFor, cString, type Codec, type CodecOptions } from './btf/codec.js';
export { recordViewFor, type RecordView, type RecordViewOptions } from './btf/record-view.js';
export { parseCidr, lpmKey, formatLpmKey, type Cidr } from './objects/cidr.js';
export { haveMapType, haveProgramType, haveProgramHelper, haveCpuV4 } from './kernel/features.js';
export { possibleCpus, onlineCpus } from './sys/cpus.js';
export { enableStats, type StatsHandle } from './objects/stats.js';
export { resolveInterface } from './link/iface.js';
export { MAP_TYPES, PROG_TYPES, ATTACH_TYPES, LINK_TYPES, type MapType, type ProgType, type AttachType, type LinkType } from './abi/constants.js';
export type { ProgramLoadOptions } from './load/program-load.js';
export { CoreRelocationError } from './btf/core.js';
export {
  Link, FdLink, PerfEventLink, DetachLink, LinkSet, type LinkInfo, type PerfAttachOptions,
} from './link/link.js';
export type { RawLinkInfo, PerfEventKind } from './sys/link.js';
export { attach, type AttachOptions } from './link/attach.js';
export { attachTracepoint, type TracepointOptions } from './link/tracepoint.js';
export { tracepointId } from './sys/tracefs.js';
export { attachRawTracepoint, attachTracing, type RawTracepointOptions } from './link/raw-tracepoint.js';
export { attachKprobe, attachKsyscall, syscallSymbol, type KprobeOptions } from './link/kprobe.js';
export { attachUprobe, resolveBinaryPath, symbolFileOffset, type UprobeOptions } from './link/uprobe.js';
export { attachKprobeMulti, resolveKernelPattern, type KprobeMultiOptions } from './link/kprobe-multi.js';
export { attachUprobeMulti, resolveBinaryPattern, type UprobeMultiOptions } from './link/uprobe-multi.js';
export {
  haveKprobes, kprobeSupport, haveKprobeMulti, haveKprobeSession, haveUprobeMulti, haveUprobeSession, haveTrampolines, haveTracingAttach,
  haveBpfLsm, haveTcx, haveIterator, hookSupport, linkInfoHas, kernelKnowsAttachType, type TracingAttach,
} from './kernel/features.js';
export { attachXdp, type XdpMode, type XdpOptions } from './link/xdp.js';
export { attachTc, type TcDirection, type TcOptions } from './link/tc.js';
export { attachCgroup, type CgroupOptions } from './link/cgroup.js';
export { attachSocketFilter } from './link/socket-filter.js';
export {
  attachPerfEvent, SOFTWARE_EVENTS, HARDWARE_EVENTS, type PerfEventOptions, type SoftwareEvent, type HardwareEvent,
} from './link/perf-event.js';
export {
  RingBufReader, type RingBufReaderOptions, type RingBufBatch, type ConsumeBatchOptions, type ReadOptions,
  type RecordBatch, type RecordReader, type RecordReadFn,
} from './readers/ringbuf.js';
export { PerfReader, type PerfReaderOptions, type PerfRecord, type PerfSample, type PerfLost } from './readers/perf.js';
export { readDrops } from './readers/drops.js';
export { generate, type GenerateOptions } from './gen/module.js';
export { dumpC, dumpJson, type DumpCOptions } from './btf/dump-c.js';
export { disassembleSpec, disassembleInstructions, type DisassembleOptions, type AppliedCoreRelocation } from './asm/disasm.js';
export {
  attachUsdt, listUsdtProbes, parseUsdtArgs, UsdtLink,
  type UsdtArg, type UsdtArgKind, type UsdtNote, type UsdtOptions, type UsdtSite, type SymbolAddress,
} from './link/usdt.js';
export { attachSkLookup } from './link/sk-lookup.js';
export { attachIter, readIterator, readPinnedIterator, IterLink, type IterOptions, type CgroupIterOrder } from './link/iter.js';
export { attachLsm, type LsmOptions } from './link/lsm.js';
export type { PerfBatch } from './readers/perf.js';
