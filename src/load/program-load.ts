/**
 * Turns a ProgramSpec into a loaded program: fills map fds and global-data addresses into its
 * instructions, hands the kernel its BTF func and line info, and turns a refusal into a
 * VerifierError carrying the whole log. The first attempt asks for no log (fast); only a failure
 * is retried with logging, with a buffer that grows until the log fits.
 */
import { EAGAIN, ENOSPC } from '../abi/errno.js';
import type { Btf } from '../btf/btf.js';
import { BpfSyscallError, EmulatorNotSupportedError, NotSupportedError, SpecError, VerifierError } from '../errors.js';
import { Insns, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE } from '../asm/insn.js';
import { applyCoreRelocations, explainCoreFailure, type CoreRelocationResult } from '../btf/core.js';
import { ExternResolver, explainExternFailure, type ExternResult } from './externs.js';
import { Program } from '../objects/program.js';
import type { ProgramSpec } from '../spec/program-spec.js';
import { progLoadRaw, type ProgLoadAttr } from '../sys/bpf.js';
import { attachType as attachTypeNames, progType as progTypeNames } from '../abi/constants.js';
import { FD } from '../sys/fd.js';
import { kernelObjectName } from '../objects/map.js';
import { attachBtfId, kernelBtf } from '../kernel/attach-target.js';
import { iteratorRefusal, lsmRefusal, trampolineRefusal } from '../kernel/features.js';

/**
 * How programs are loaded (CollectionOptions.programs): the verifier log level and size, and the
 * kernel BTF to resolve attach targets against.
 */
export interface ProgramLoadOptions {
  /** 0: a log only on failure (default); 1: the verifier's log always; 2: with register state per instruction. */
  logLevel?: number;
  /** Initial log buffer size in bytes; grows as needed. */
  logSize?: number;
  /**
   * The kernel's types for CO-RE relocation, when the running kernel does not expose its BTF at
   * /sys/kernel/btf/vmlinux (a BTFHub file, for instance). Defaults to the running kernel's.
   */
  kernelBtf?: Btf;
}

export interface ProgramLoadContext {
  mapFd(name: string): number;
  btfFd: number;
  /**
   * The extern resolver shared by every program of one object (one `.kconfig` map, kernel facts
   * looked up once); its owner closes it. Without it, the program gets one of its own.
   */
  externs?: ExternResolver;
}

const MAX_LOG = (1 << 30) - 1;

/**
 * Instructions with map fds, global-data references and extern symbols (`__kconfig`, `__ksym`)
 * filled in. `externs` owns the `.kconfig` map it may create: close it once the program is loaded.
 */
export function relocateMaps(spec: ProgramSpec, mapFd: (name: string) => number, externs?: ExternResolver): Uint8Array {
  const insns = new Insns(new Uint8Array(spec.instructions));
  if (spec.externs.length > 0) (externs ?? new ExternResolver()).resolve(spec, insns);
  for (const ref of spec.references) {
    const fd = mapFd(ref.map);
    if (ref.kind === 'map') {
      insns.setSrc(ref.insn, BPF_PSEUDO_MAP_FD);
      insns.setImm(ref.insn, fd);
    } else {
      insns.setSrc(ref.insn, BPF_PSEUDO_MAP_VALUE);
      insns.setImm(ref.insn, fd);
      insns.setImm(ref.insn + 1, ref.offset);
    }
  }
  return insns.bytes;
}

function funcInfoBytes(spec: ProgramSpec): Uint8Array | null {
  if (spec.funcInfo.length === 0) return null;
  const out = new Uint8Array(spec.funcInfo.length * 8);
  const v = new DataView(out.buffer);
  spec.funcInfo.forEach((r, i) => {
    v.setUint32(i * 8, r.insnOff, true);
    v.setUint32(i * 8 + 4, r.typeId, true);
  });
  return out;
}

function lineInfoBytes(spec: ProgramSpec): Uint8Array | null {
  if (spec.lineInfo.length === 0) return null;
  const out = new Uint8Array(spec.lineInfo.length * 16);
  const v = new DataView(out.buffer);
  spec.lineInfo.forEach((r, i) => {
    v.setUint32(i * 16, r.insnOff, true);
    v.setUint32(i * 16 + 4, r.fileNameOff, true);
    v.setUint32(i * 16 + 8, r.lineOff, true);
    v.setUint32(i * 16 + 12, ((r.lineNum << 10) | (r.lineCol & 0x3ff)) >>> 0, true);
  });
  return out;
}

/**
 * A program from a section no convention names has no type (libbpf 1.x parses such objects and
 * fails only that program, and only when it is loaded); say what to do rather than send
 * BPF_PROG_TYPE_UNSPEC to the kernel.
 */
export function checkProgramType(spec: ProgramSpec): void {
  if (spec.type !== 'unspec') return;
  throw new SpecError(
    `program ${spec.name}: section "${spec.sectionName}" follows no known convention, so its program type is unknown: ` +
    'rename the section (e.g. xdp, tc, socket, tracepoint/<category>/<name>, kprobe/<function>, uprobe/<path>:<symbol>), ' +
    `set spec.programs.get('${spec.name}').type before loading, or leave the program out (programs.only, or autoload = false)`,
  );
}

export function loadProgram(spec: ProgramSpec, ctx: ProgramLoadContext, options: ProgramLoadOptions = {}): Program {
  checkProgramType(spec);
  if (ctx.externs) return loadRelocated(spec, ctx, options, ctx.externs);
  const externs = new ExternResolver({ btfFd: ctx.btfFd });
  try {
    return loadRelocated(spec, ctx, options, externs);
  } finally {
    externs.close();
  }
}

function loadRelocated(spec: ProgramSpec, ctx: ProgramLoadContext, options: ProgramLoadOptions, externs: ExternResolver): Program {
  const resolvedBefore = externs.results.length;
  const insns = relocateMaps(spec, ctx.mapFd, externs);
  let core: CoreRelocationResult[] = [];
  if (spec.coreRelos.length > 0) {
    if (!spec.btf) throw new SpecError(`program ${spec.name} has CO-RE relocations but the object has no BTF`);
    core = applyCoreRelocations(insns, spec.coreRelos, spec.btf, options.kernelBtf ?? kernelBtf(), spec.name);
  }
  const relocated = { core, externs: externs.results.slice(resolvedBefore) };
  const withBtf = ctx.btfFd > 0;
  const base: ProgLoadAttr = {
    progType: progTypeNames.number(spec.type),
    insns,
    license: spec.license,
    logLevel: 0,
    logBuf: null,
    kernVersion: spec.kernelVersion,
    progFlags: spec.flags,
    name: kernelObjectName(spec.name),
    expectedAttachType: spec.attachType ? attachTypeNames.number(spec.attachType) : 0,
    btfFd: withBtf ? ctx.btfFd : 0,
    funcInfo: withBtf ? funcInfoBytes(spec) : null,
    funcInfoRecSize: 8,
    funcInfoCnt: spec.funcInfo.length,
    lineInfo: withBtf ? lineInfoBytes(spec) : null,
    lineInfoRecSize: 16,
    lineInfoCnt: spec.lineInfo.length,
    attachBtfId: attachBtfId(spec),
  };
  const wanted = options.logLevel ?? 0;
  let logSize = options.logSize ?? (wanted > 0 ? 1 << 20 : 0);
  let attempt = wanted > 0
    ? progLoadRaw({ ...base, logLevel: wanted, logBuf: new Uint8Array(logSize) })
    : progLoadRaw(base);
  let log = '';
  if (attempt.result < 0 && wanted === 0) logSize = 1 << 16;
  // On failure, load again with a log (growing it while the kernel says it did not fit).
  for (let tries = 0; attempt.result < 0 && tries < 16; tries++) {
    const buf = new Uint8Array(logSize);
    attempt = progLoadRaw({ ...base, logLevel: Math.max(wanted, 1), logBuf: buf });
    log = decodeLog(buf);
    if (attempt.result >= 0) break;
    if (-attempt.result === ENOSPC && logSize < MAX_LOG) {
      logSize = Math.min(MAX_LOG, Math.max(logSize * 4, attempt.logTrueSize + 1));
      continue;
    }
    throw loadError(spec, -attempt.result, log, relocated);
  }
  if (attempt.result < 0) throw loadError(spec, -attempt.result, log, relocated);
  return new Program(new FD(attempt.result, `program ${spec.name}`), {
    name: spec.name, type: spec.type, sectionName: spec.sectionName, attachType: spec.attachType,
    attachTarget: spec.attachTarget, verifierLog: log, loaded: { instructions: insns, spec, core },
  });
}

/** bpfkit/testing's emulated kernel refuses a helper it does not implement with this log line. */
export function emulatorLacks(log: string, program: string): EmulatorNotSupportedError | undefined {
  const m = /helper (\S+) \(#(\d+)\) is not implemented by the bpfkit emulator/.exec(log);
  if (!m) return undefined;
  return new EmulatorNotSupportedError(`helper ${m[1]} (#${m[2]})`,
    `program ${program} calls it; test this program against the real kernel, or do without the helper (bpfkit/testing's IMPLEMENTED_HELPERS lists what the emulator has)`);
}

function decodeLog(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
}

function loadError(spec: ProgramSpec, errno: number, log: string, relocated: { core: readonly CoreRelocationResult[]; externs: readonly ExternResult[] }): Error {
  if (errno === EAGAIN) {
    // Not a rejection: signals kept interrupting the verifier through every retry.
    return new BpfSyscallError(-errno, 'bpf(BPF_PROG_LOAD)', `load program ${spec.name}`,
      'the verifier was interrupted by a signal on every attempt (a timer or profiler signalling this thread): load again when the signals stop');
  }
  // Refused before the verifier looked at an instruction: no log, or only its "processed 0 insns" line.
  const unverified = log.trim() === '' || /^processed 0 insns/.test(log.trim());
  if (unverified && errno === 1 && process.geteuid?.() === 0 && refusedKind(spec)) {
    const refused = refusedKind(spec)!;
    return new NotSupportedError(refused.feature, `${spec.name} (${spec.sectionName}): ${refused.why}`);
  }
  if (log.trim() === '') {
    const hint =
      errno === 1 ? permissionHint(spec) :
      errno === 22 ? `the kernel refused program type ${spec.type} with attach type ${spec.attachType ?? 'none'}: it may not support this kind of program` :
      errno === 7 ? 'the program is too large' : undefined;
    return new BpfSyscallError(-errno, 'bpf(BPF_PROG_LOAD)', `load program ${spec.name}`, hint);
  }
  if (spec.type === 'tracing' && errno === 1 && /attach|tracing/i.test(log) === false) {
    return new NotSupportedError(`${spec.type} programs (${spec.sectionName})`, `the kernel refused to load ${spec.name} with EPERM`);
  }
  const lacking = emulatorLacks(log, spec.name);
  if (lacking) return lacking;
  // A rejection caused by a failed CO-RE relocation or a missing weak kfunc names it.
  const why = explainCoreFailure(log, relocated.core, spec.name) ?? explainExternFailure(log, relocated.externs, spec.name);
  return new VerifierError(spec.name, -errno, log, why);
}

/**
 * Why an EPERM with an empty verifier log. As root it is not a missing capability (unless in a user
 * namespace): the kernel or a security module (lockdown, BPF LSM) refused the program before the
 * verifier ran, as some kernels do for fentry/fexit/fmod_ret (BPF trampolines).
 */
function permissionHint(spec: ProgramSpec): string {
  if (process.geteuid?.() !== 0) return 'loading BPF programs needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): run as root';
  const trampoline = spec.type === 'ext' ||
    (spec.attachType !== undefined && ['trace_fentry', 'trace_fexit', 'modify_return', 'lsm_mac'].includes(spec.attachType));
  return 'refused before verification although the process runs as root: a security module (lockdown, BPF LSM), ' +
    `a user namespace without CAP_BPF, or the kernel forbids ${trampoline ? 'BPF trampoline (fentry/fexit/fmod_ret/lsm/freplace)' : spec.type} programs here`;
}

/**
 * Program kinds some kernels refuse outright, even to root, before the verifier runs: what to call
 * the missing feature when that happens.
 */
function refusedKind(spec: ProgramSpec): { feature: string; why: string } | undefined {
  switch (spec.attachType) {
    case 'trace_fentry': case 'trace_fexit': case 'modify_return':
      return { feature: 'fentry/fexit/fmod_ret programs (BPF trampolines)', why: trampolineRefusal() };
    case 'lsm_mac': case 'lsm_cgroup':
      return { feature: 'lsm programs (BPF LSM)', why: lsmRefusal() };
    case 'trace_iter':
      return { feature: `BPF iterators over ${spec.attachTarget} (iter/${spec.attachTarget})`, why: iteratorRefusal(spec.attachTarget) };
    default:
      return spec.type === 'ext' ? { feature: 'freplace programs (BPF trampolines)', why: trampolineRefusal() } : undefined;
  }
}

/** A SpecError for a reference to a map the collection does not have. */
export function missingMap(program: string, map: string): SpecError {
  return new SpecError(`program ${program} references map ${map}, which the collection does not have`);
}
