/**
 * The kernel probes, one module: what this kernel has, asked of the kernel itself.
 *
 * Feature probes: does this kernel have a map type, a program type, a helper? Each probe creates
 * the smallest object that needs the feature. Only conclusive answers are cached: "yes", or a
 * refusal that means "no" (EINVAL, E2BIG, ...). A refusal that says nothing about the feature
 * (EPERM without privileges, ENOMEM) is thrown and asked again next time.
 *
 * Hook probes (below): can this kernel attach kprobes, kprobe_multi links, kprobe sessions,
 * uprobe_multi links, BPF trampolines (fentry/fexit/fmod_ret), BPF LSM programs, tcx links? Each
 * does the smallest real thing the hook needs (load a program with the attach type, create a link
 * against a target that cannot exist, or attach to a harmless function and detach at once) and
 * reads the kernel's answer. A "no" carries the NotSupportedError an attach function throws,
 * saying what is missing: a kernel too old (from whether the kernel's own BTF knows the attach
 * type), a config option, or a security policy. EPERM is conclusive only as root (a refusal by
 * policy); without privileges it says nothing and is thrown.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EBADF, EINVAL, ENODEV, ENOMEM, ENOTSUPP, EOPNOTSUPP, EPERM } from '../abi/errno.js';
import { BpfkitError, BpfSyscallError, NotSupportedError } from '../errors.js';
import type { Btf } from '../btf/btf.js';
import { kernelBtf } from './attach-target.js';
import { bpfRaw, mapCreateAttr, progLoadRaw } from '../sys/bpf.js';
import { attachType, mapType, progType, type AttachType, type MapType, type ProgType } from '../abi/constants.js';
import { native } from '../sys/native.js';
import { securityState } from '../sys/securityfs.js';
import { linkCreateRaw, rawTracepointOpenRaw } from '../sys/link.js';
import { pmuType } from '../sys/pmu.js';
import { INSN_SIZE, Insns, OP_CALL, OP_EXIT } from '../asm/insn.js';
import { tryTracefsRoot } from '../sys/tracefs.js';

const cache = new Map<string, boolean>();


function inconclusive(errno: number): boolean {
  return errno === EPERM || errno === ENOMEM;
}

function remember(key: string, probe: () => boolean): boolean {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const answer = probe();
  cache.set(key, answer);
  return answer;
}

/** Forget every cached answer (tests). */
export function resetFeatureCache(): void {
  cache.clear();
}

function mapProbeShape(t: MapType): { key: number; value: number; max: number; flags: number; innerFd?: boolean } {
  switch (t) {
    case 'ringbuf': case 'user_ringbuf': return { key: 0, value: 0, max: 4096, flags: 0 };
    case 'queue': case 'stack': return { key: 0, value: 4, max: 1, flags: 0 };
    case 'bloom_filter': return { key: 0, value: 4, max: 1, flags: 0 };
    case 'lpm_trie': return { key: 8, value: 4, max: 1, flags: 1 /* BPF_F_NO_PREALLOC */ };
    case 'sk_storage': case 'inode_storage': case 'task_storage': case 'cgrp_storage':
      return { key: 4, value: 4, max: 0, flags: 1 };
    case 'array_of_maps': case 'hash_of_maps': return { key: 4, value: 4, max: 1, flags: 0, innerFd: true };
    case 'cgroup_storage': case 'percpu_cgroup_storage': return { key: 16, value: 4, max: 0, flags: 0 };
    case 'stack_trace': return { key: 4, value: 8, max: 1, flags: 0 };
    case 'arena': return { key: 0, value: 0, max: 1, flags: 1 << 10 };
    default: return { key: 4, value: 4, max: 1, flags: 0 };
  }
}

/** Whether the kernel can create maps of this type. */
export function haveMapType(t: MapType): boolean {
  return remember(`map:${t}`, () => {
    const s = mapProbeShape(t);
    const n = native();
    let innerFd = 0;
    if (s.innerFd) {
      innerFd = bpfRaw('MAP_CREATE', mapCreateAttr({ mapType: mapType.number('array'), keySize: 4, valueSize: 4, maxEntries: 1, flags: 0 }));
      if (innerFd < 0) throw new BpfSyscallError(innerFd, 'bpf(BPF_MAP_CREATE)', 'probe inner map');
    }
    try {
      const r = bpfRaw('MAP_CREATE', mapCreateAttr({ mapType: mapType.number(t), keySize: s.key, valueSize: s.value, maxEntries: s.max, flags: s.flags, innerMapFd: innerFd }));
      if (r >= 0) {
        n.close(r);
        return true;
      }
      if (inconclusive(-r)) throw new BpfSyscallError(r, 'bpf(BPF_MAP_CREATE)', `probe map type ${t}`, 'probing needs CAP_BPF: run as root');
      return false;
    } finally {
      if (innerFd > 0) n.close(innerFd);
    }
  });
}

/** `mov r0, 0; exit` */
const RETURN_ZERO = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

function probeProgram(t: ProgType, insns: Uint8Array, log: Uint8Array | null, shape: ProgProbeShape = {}): number {
  return progLoadRaw({
    progType: progType.number(t), insns, license: 'GPL', logLevel: log ? 1 : 0, logBuf: log, kernVersion: 0,
    progFlags: shape.flags ?? 0, name: '', expectedAttachType: shape.attachType ? attachType.number(shape.attachType) : 0, btfFd: 0,
    funcInfo: null, funcInfoRecSize: 0, funcInfoCnt: 0, lineInfo: null, lineInfoRecSize: 0, lineInfoCnt: 0,
    attachBtfId: shape.btfId ?? 0,
  }).result;
}

interface ProgProbeShape {
  attachType?: AttachType;
  flags?: number;
  btfId?: number;
}

const BPF_F_SLEEPABLE = 1 << 4;

/**
 * What a program of type `t` needs at load besides its instructions: the attach types some types
 * insist on, a sleepable flag for syscall programs, and a BTF target for tracing and lsm programs
 * (a tracepoint for tp_btf, which needs no trampoline; a hook for lsm).
 */
function progProbeShape(t: ProgType): ProgProbeShape {
  switch (t) {
    case 'cgroup_sock_addr': return { attachType: 'cgroup_inet4_connect' };
    case 'cgroup_sockopt': return { attachType: 'cgroup_getsockopt' };
    case 'sk_lookup': return { attachType: 'sk_lookup' };
    case 'netfilter': return { attachType: 'netfilter' };
    case 'syscall': return { flags: BPF_F_SLEEPABLE };
    case 'tracing': return { attachType: 'trace_raw_tp', btfId: btfTarget(t, 'btf_trace_sched_switch', 'typedef') };
    case 'lsm': return { attachType: 'lsm_mac', btfId: btfTarget(t, 'bpf_lsm_file_open', 'func') };
    case 'ext': case 'struct_ops':
      throw new BpfkitError('ERR_BPFKIT_PROBE', `haveProgramType cannot probe ${t} programs: loading one needs a target ` +
        `(${t === 'ext' ? 'a loaded program with BTF to replace' : 'a struct_ops map'}); try loading your program instead`);
    default: return {};
  }
}

function btfTarget(t: ProgType, name: string, kind: 'func' | 'typedef'): number {
  let btf;
  try {
    btf = kernelBtf();
  } catch (e) {
    throw new BpfkitError('ERR_BPFKIT_PROBE', `haveProgramType cannot probe ${t} programs without kernel BTF (/sys/kernel/btf/vmlinux): ` +
      'they load against a kernel function or tracepoint named in it', { cause: e });
  }
  const found = btf.byName(name, kind)[0];
  // bpf_lsm_* hooks exist exactly when the kernel has CONFIG_BPF_LSM: without one, "no" is the answer.
  if (!found && t === 'lsm') return 0;
  if (!found) {
    throw new BpfkitError('ERR_BPFKIT_PROBE', `haveProgramType cannot probe ${t} programs: the kernel's BTF has no ${name} to load against`);
  }
  return found.id;
}

/**
 * Whether the kernel can load programs of this type. Types that need an attach target at load get
 * one (a tracepoint for tracing, a hook for lsm); ext and struct_ops cannot be probed and throw.
 * As root, EPERM is an answer: the kernel refuses the type here (e.g. lsm where trampolines are
 * forbidden by policy; see probes.ts for why).
 */
export function haveProgramType(t: ProgType): boolean {
  return remember(`prog:${t}`, () => {
    const shape = progProbeShape(t);
    if (t === 'lsm' && shape.btfId === 0) return false;
    const r = probeProgram(t, RETURN_ZERO, null, shape);
    if (r >= 0) {
      native().close(r);
      return true;
    }
    if (-r === EPERM && process.geteuid?.() === 0) return false;
    if (inconclusive(-r)) throw new BpfSyscallError(r, 'bpf(BPF_PROG_LOAD)', `probe program type ${t}`, 'probing needs CAP_BPF: run as root');
    return false;
  });
}

/**
 * Whether the verifier takes the instructions of cpu v4 (Linux 6.6): sign-extending moves and
 * loads, signed division and modulo, unconditional byte swaps, 32-bit jump offsets. Probed with
 * one sign-extending move (`r0 = (s8)r1` after `r1 = 0`).
 */
export function haveCpuV4(): boolean {
  return remember('isa:v4', () => {
    const insns = new Uint8Array(3 * INSN_SIZE);
    insns.set([0xb7, 0x01], 0); // r1 = 0
    insns.set([0xbf, 0x10], INSN_SIZE); // r0 = (s8)r1: BPF_ALU64 | BPF_MOV | BPF_X with off 8
    new Insns(insns).setOff(1, 8);
    insns.set([OP_EXIT], 2 * INSN_SIZE);
    const r = probeProgram('socket_filter', insns, null);
    if (r >= 0) {
      native().close(r);
      return true;
    }
    if (inconclusive(-r) && !(-r === EPERM && process.geteuid?.() === 0)) {
      throw new BpfSyscallError(r, 'bpf(BPF_PROG_LOAD)', 'probe cpu v4 instructions', 'probing needs CAP_BPF: run as root');
    }
    return false;
  });
}

/** Whether programs of type `t` may call helper number `helper` (BPF_FUNC_*). */
export function haveProgramHelper(t: ProgType, helper: number): boolean {
  return remember(`helper:${t}:${helper}`, () => {
    // call helper; mov r0, 0; exit. Arguments are garbage, so the verifier may refuse the call
    // for its arguments, which still shows the helper exists.
    const insns = new Uint8Array(INSN_SIZE + RETURN_ZERO.length);
    const call = new Insns(insns);
    insns[0] = OP_CALL;
    call.setImm(0, helper);
    insns.set(RETURN_ZERO, INSN_SIZE);
    const log = new Uint8Array(4096);
    const r = probeProgram(t, insns, log, progProbeShape(t));
    if (r >= 0) {
      native().close(r);
      return true;
    }
    if (inconclusive(-r)) throw new BpfSyscallError(r, 'bpf(BPF_PROG_LOAD)', `probe helper ${helper}`, 'probing needs CAP_BPF: run as root');
    const text = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0))));
    return !/invalid func|unknown func|program of this type cannot use helper/.test(text);
  });
}

// ---- Hook probes ------------------------------------------------------------------------------

type Answer = { ok: true } | { ok: false; error: NotSupportedError };

const answers = new Map<string, Answer>();
const YES: Answer = { ok: true };


function no(feature: string, detail: string, minKernel?: string): Answer {
  return { ok: false, error: new NotSupportedError(feature, detail, minKernel) };
}

function ask(key: string, probe: () => Answer): Answer {
  const hit = answers.get(key);
  if (hit) return hit;
  const a = probe();
  answers.set(key, a);
  return a;
}

/** Forget every cached answer (tests). */
export function resetHookProbeCache(): void {
  answers.clear();
}

const isRoot = (): boolean => process.geteuid?.() === 0;

/** EPERM without root tells nothing about the kernel: the caller may not probe. */
function unprivileged(errno: number, what: string): BpfSyscallError {
  return new BpfSyscallError(-errno, 'bpf()', `probe ${what}`, 'probing needs CAP_BPF and CAP_PERFMON: run as root');
}

function loadProbe(type: ProgType, attach: AttachType | undefined, btfId = 0, log: Uint8Array | null = null): number {
  return progLoadRaw({
    progType: progType.number(type), insns: RETURN_ZERO, license: 'GPL', logLevel: log ? 1 : 0, logBuf: log, kernVersion: 0,
    progFlags: 0, name: '', expectedAttachType: attach ? attachType.number(attach) : 0, btfFd: 0, funcInfo: null, funcInfoRecSize: 0,
    funcInfoCnt: 0, lineInfo: null, lineInfoRecSize: 0, lineInfoCnt: 0, attachBtfId: btfId,
  }).result;
}

function tryKernelBtf(): Btf | undefined {
  try {
    return kernelBtf();
  } catch {
    return undefined;
  }
}

/**
 * Whether the running kernel's enum bpf_attach_type has `BPF_<NAME>` (e.g. "TRACE_UPROBE_MULTI"):
 * true or false from its BTF, undefined without kernel BTF. Tells "too old" from "built without".
 */
export function kernelKnowsAttachType(uapiName: string): boolean | undefined {
  const btf = tryKernelBtf();
  if (!btf) return undefined;
  const e = btf.byName('bpf_attach_type', 'enum')[0] ?? btf.byName('bpf_attach_type', 'enum64')[0];
  if (!e || (e.kind !== 'enum' && e.kind !== 'enum64')) return undefined;
  return e.values.some((v) => v.name === `BPF_${uapiName}`);
}

function close(fd: number): void {
  native().close(fd);
}

/** Whether the kernel can attach kprobes: the kprobe PMU, or tracefs kprobe_events. */
export function kprobeSupport(): 'pmu' | 'tracefs' | undefined {
  if (pmuType('kprobe') !== undefined) return 'pmu';
  const root = tryTracefsRoot();
  if (root && existsSync(join(root, 'kprobe_events'))) return 'tracefs';
  return undefined;
}

/** Whether kprobes can attach (the kprobe PMU or tracefs kprobe_events). */
export function haveKprobes(): boolean {
  return kprobesAnswer().ok;
}

function kprobesAnswer(): Answer {
  return ask('kprobes', () => kprobeSupport() !== undefined ? YES : no('kprobes',
    'the kernel was built without CONFIG_KPROBES: there is no kprobe PMU (/sys/bus/event_source/devices/kprobe) ' +
    'and no kprobe_events in tracefs. Use a tracepoint, raw tracepoint or uprobe instead, or a kernel with CONFIG_KPROBES=y'));
}

interface MultiProbe {
  feature: string;
  attach: AttachType;
  uapi: string;
  minKernel: string;
  config: string;
  link: (progFd: number) => number;
  /** The errno a kernel that has the hook gives for the impossible target. */
  supported: (errno: number) => boolean;
}

const KPROBE_TARGET = { flags: 0, symbols: ['bpfkit_probe_no_such_function'] };
const UPROBE_TARGET = { path: '/', offsets: [0n], flags: 0 };

const MULTI: Record<'kprobe_multi' | 'kprobe_session' | 'uprobe_multi' | 'uprobe_session', MultiProbe> = {
  kprobe_multi: {
    feature: 'kprobe.multi / kretprobe.multi (kprobe_multi links)', attach: 'trace_kprobe_multi', uapi: 'TRACE_KPROBE_MULTI',
    minKernel: '5.18', config: 'CONFIG_FPROBE',
    link: (fd) => linkCreateRaw({ progFd: fd, target: 0, attachType: 'trace_kprobe_multi', kprobeMulti: KPROBE_TARGET }),
    supported: (e) => e !== EINVAL,
  },
  kprobe_session: {
    feature: 'kprobe.session (kprobe session links)', attach: 'trace_kprobe_session', uapi: 'TRACE_KPROBE_SESSION',
    minKernel: '6.10', config: 'CONFIG_FPROBE',
    link: (fd) => linkCreateRaw({ progFd: fd, target: 0, attachType: 'trace_kprobe_session', kprobeMulti: KPROBE_TARGET }),
    supported: (e) => e !== EINVAL,
  },
  uprobe_multi: {
    feature: 'uprobe.multi / uretprobe.multi (uprobe_multi links)', attach: 'trace_uprobe_multi', uapi: 'TRACE_UPROBE_MULTI',
    minKernel: '6.6', config: 'CONFIG_UPROBES',
    // A directory is no binary: a kernel with the hook says EBADF.
    link: (fd) => linkCreateRaw({ progFd: fd, target: 0, attachType: 'trace_uprobe_multi', uprobeMulti: UPROBE_TARGET }),
    supported: (e) => e === EBADF,
  },
  uprobe_session: {
    feature: 'uprobe.session (uprobe session links)', attach: 'trace_uprobe_session', uapi: 'TRACE_UPROBE_SESSION',
    minKernel: '6.13', config: 'CONFIG_UPROBES',
    link: (fd) => linkCreateRaw({ progFd: fd, target: 0, attachType: 'trace_uprobe_session', uprobeMulti: UPROBE_TARGET }),
    supported: (e) => e === EBADF,
  },
};

function multiAnswer(kind: keyof typeof MULTI): Answer {
  return ask(kind, () => {
    const p = MULTI[kind];
    const known = kernelKnowsAttachType(p.uapi);
    const tooOld = () => no(p.feature, `the kernel predates them (its enum bpf_attach_type has no BPF_${p.uapi})`, p.minKernel);
    if (known === false) return tooOld();
    const fd = loadProbe('kprobe', p.attach);
    if (fd < 0) {
      if (-fd === EPERM && !isRoot()) throw unprivileged(-fd, p.feature);
      return no(p.feature, `the kernel refused a kprobe program with attach type ${p.attach} (${-fd === EPERM ? 'EPERM' : `errno ${-fd}`})`, p.minKernel);
    }
    try {
      const r = p.link(fd);
      if (r >= 0) {
        close(r);
        return YES;
      }
      const e = -r;
      if (e === EPERM && !isRoot()) throw unprivileged(e, p.feature);
      if (e === EOPNOTSUPP || e === ENOTSUPP) return no(p.feature, `the kernel was built without ${p.config}`, p.minKernel);
      if (p.supported(e)) return YES;
      return known === true
        ? no(p.feature, `the kernel refused the link (errno ${e})`, p.minKernel)
        : tooOld();
    } finally {
      close(fd);
    }
  });
}

/** Whether kprobe.multi / kretprobe.multi programs can attach (5.18+, CONFIG_FPROBE). */
export function haveKprobeMulti(): boolean {
  return multiAnswer('kprobe_multi').ok;
}

/** Whether kprobe.session programs can attach (6.10+, CONFIG_FPROBE). */
export function haveKprobeSession(): boolean {
  return multiAnswer('kprobe_session').ok;
}

/** Whether uprobe.multi / uretprobe.multi programs can attach (6.6+). */
export function haveUprobeMulti(): boolean {
  return multiAnswer('uprobe_multi').ok;
}

/** Whether uprobe.session programs can attach (6.13+). */
export function haveUprobeSession(): boolean {
  return multiAnswer('uprobe_session').ok;
}

/**
 * The attach types of BPF trampoline programs that {@link haveTracingAttach} can probe: fentry,
 * fexit, fmod_ret (Linux 5.5, 5.5, 5.7) and BPF LSM (5.7).
 */
export type TracingAttach = 'trace_fentry' | 'trace_fexit' | 'modify_return' | 'lsm_mac';

const TRACING_NAMES: Record<TracingAttach, string> = {
  trace_fentry: 'fentry programs (BPF trampolines)',
  trace_fexit: 'fexit programs (BPF trampolines)',
  modify_return: 'fmod_ret programs (BPF trampolines)',
  lsm_mac: 'lsm programs (BPF LSM)',
};

/**
 * Why the kernel refused a BPF trampoline program with EPERM to root: what securityfs says about
 * the active LSMs and lockdown, which is where such policies live.
 */
export function trampolineRefusal(): string {
  const s = securityState();
  const where = s
    ? ` (active LSMs: ${s.lsms.join(',')}${s.lockdown ? `; lockdown: ${s.lockdown}` : ''})`
    : ' (the active LSMs could not be read from /sys/kernel/security/lsm)';
  return 'the kernel refused BPF trampolines (fentry/fexit/fmod_ret/lsm/freplace) with EPERM before verification although ' +
    `the process runs as root: a security policy of this kernel forbids them${where}`;
}

/**
 * Why an lsm program was refused with EPERM to root: the BPF LSM is not active, or it is active
 * and BPF trampolines (which LSM programs run on) are refused: say which, from securityfs.
 */
export function lsmRefusal(): string {
  const s = securityState();
  if (!s) {
    return 'could not tell why: /sys/kernel/security/lsm is unreadable, so either the BPF LSM is not active ' +
      '(CONFIG_BPF_LSM and "bpf" in the lsm= boot list) or BPF trampolines are refused here';
  }
  if (!s.lsms.includes('bpf')) {
    return `the BPF LSM is not active: "bpf" is not among the active LSMs (${s.lsms.join(',')}); ` +
      'boot with lsm=...,bpf (or build with it in CONFIG_LSM) on a kernel with CONFIG_BPF_LSM';
  }
  const fentry = tracingAnswer('trace_fentry');
  if (!fentry.ok) {
    return `the BPF LSM is active (${s.lsms.join(',')}), but BPF trampolines, which LSM programs run on, are refused: ` +
      `fentry programs are refused the same way${s.lockdown ? ` (lockdown: ${s.lockdown})` : ''}; a security policy forbids them`;
  }
  return `the BPF LSM is active (${s.lsms.join(',')}) and fentry programs load, but a security policy refused this LSM program`;
}

/** Functions that always exist to hang a trampoline probe on; bpf_fentry_test1 only runs in BPF_PROG_TEST_RUN. */
const FENTRY_CANDIDATES = ['bpf_fentry_test1', 'do_unlinkat', 'vfs_read'];

function tracingAnswer(attach: TracingAttach, fn?: string): Answer {
  const feature = TRACING_NAMES[attach];
  return ask(`tracing:${attach}:${fn ?? ''}`, () => {
    const btf = tryKernelBtf();
    if (!btf) return no(feature, 'the kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF), which names the function to attach to', attach === 'lsm_mac' ? '5.7' : '5.5');
    const lsm = attach === 'lsm_mac';
    const names = fn ? [lsm ? `bpf_lsm_${fn}` : fn] : lsm ? ['bpf_lsm_file_open'] : FENTRY_CANDIDATES;
    const target = names.map((n) => btf.byName(n, 'func')[0]).find((t) => t !== undefined);
    if (!target) {
      if (lsm && btf.byName('bpf_lsm_file_open', 'func').length === 0) return no(feature, 'the kernel was built without CONFIG_BPF_LSM', '5.7');
      return no(feature, `the kernel has no function ${names[0]} in its BTF`);
    }
    const log = new Uint8Array(4096);
    const fd = loadProbe(lsm ? 'lsm' : 'tracing', attach, target.id, log);
    if (fd < 0) return refused(-fd, attach, feature, log);
    try {
      const r = rawTracepointOpenRaw(null, fd);
      if (r < 0) return refused(-r, attach, feature, null);
      close(r);
      if (lsm && securityState() && !securityState()!.lsms.includes('bpf')) return no(feature, lsmRefusal(), '5.7');
      return YES;
    } finally {
      close(fd);
    }
  });
}

function refused(e: number, attach: TracingAttach, feature: string, log: Uint8Array | null): Answer {
  const lsm = attach === 'lsm_mac';
  if (e === EPERM) {
    if (!isRoot()) throw unprivileged(e, feature);
    return no(feature, lsm ? lsmRefusal() : trampolineRefusal());
  }
  if (e === EOPNOTSUPP || e === ENOTSUPP) {
    return no(feature, 'the kernel cannot build BPF trampolines (it needs the BPF JIT on x86-64, arm64, riscv64, s390x or loongarch, and CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS)', '5.5');
  }
  const text = log ? new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0)))).trim().split('\n').pop() : '';
  if (e === EINVAL && lsm && !kernelKnowsProgType('LSM')) return no(feature, 'the kernel was built without CONFIG_BPF_LSM', '5.7');
  return no(feature, `the kernel refused it (errno ${e}${text ? `: ${text}` : ''})`);
}

function kernelKnowsProgType(uapi: string): boolean {
  const btf = tryKernelBtf();
  const e = btf?.byName('bpf_prog_type', 'enum')[0];
  return !!e && e.kind === 'enum' && e.values.some((v) => v.name === `BPF_PROG_TYPE_${uapi}`);
}

/**
 * Whether BPF trampolines work: an fentry program loads and attaches (to a function only BPF test
 * runs call). fexit and fmod_ret need the same machinery.
 */
export function haveTrampolines(): boolean {
  return tracingAnswer('trace_fentry').ok;
}

/**
 * Whether a program of this trampoline kind can attach to `fn` (for lsm_mac, the hook name, e.g.
 * "file_open"). fmod_ret, for instance, is allowed only on error-injectable and security_ functions.
 */
export function haveTracingAttach(attach: TracingAttach, fn: string): boolean {
  return tracingAnswer(attach, fn).ok;
}

/** Whether BPF LSM programs run here: CONFIG_BPF_LSM, "bpf" among the active LSMs, and trampolines. */
export function haveBpfLsm(): boolean {
  return bpfLsmAnswer().ok;
}

function bpfLsmAnswer(): Answer {
  return ask('bpf_lsm', () => {
    const a = tracingAnswer('lsm_mac');
    if (!a.ok) return a;
    const s = securityState();
    if (!s) {
      throw new BpfkitError('ERR_BPFKIT_PROBE', 'cannot tell whether the BPF LSM is active: /sys/kernel/security/lsm is unreadable ' +
        '(mount securityfs, or run as root so bpfkit mounts it for the read)');
    }
    return s.lsms.includes('bpf') ? YES : no(TRACING_NAMES.lsm_mac, lsmRefusal(), '5.7');
  });
}

/**
 * Whether BPF iterator programs over `target` load (iter/<target>: "task", "bpf_map_elem", ...).
 * Some kernels refuse some iterators to root by policy (EPERM) while allowing others.
 */
export function haveIterator(target: string): boolean {
  return iteratorAnswer(target).ok;
}

function iteratorAnswer(target: string): Answer {
  const feature = `BPF iterators over ${target} (iter/${target})`;
  return ask(`iter:${target}`, () => {
    const btf = tryKernelBtf();
    if (!btf) return no(feature, 'the kernel has no BTF (CONFIG_DEBUG_INFO_BTF), which names the iterator', '5.8');
    const fn = btf.byName(`bpf_iter_${target}`, 'func')[0];
    if (!fn) return no(feature, `the kernel has no such iterator (no bpf_iter_${target} in its BTF)`);
    const fd = loadProbe('tracing', 'trace_iter', fn.id);
    if (fd >= 0) {
      close(fd);
      return YES;
    }
    if (-fd === EPERM) {
      if (!isRoot()) throw unprivileged(-fd, feature);
      return no(feature, iteratorRefusal(target));
    }
    return no(feature, `the kernel refused it (errno ${-fd})`);
  });
}

/** Why an iterator program was refused with EPERM to root. */
export function iteratorRefusal(target: string): string {
  const s = securityState();
  return `the kernel refused iter/${target} programs with EPERM before verification although the process runs as root: ` +
    `a security policy of this kernel forbids this iterator${s ? ` (active LSMs: ${s.lsms.join(',')}${s.lockdown ? `; lockdown: ${s.lockdown}` : ''})` : ''}`;
}

/** Whether tcx links exist (6.6+): a tcx link to an interface that cannot exist gets ENODEV, not EINVAL. */
export function haveTcx(): boolean {
  return ask('tcx', () => {
    const fd = loadProbe('sched_cls', undefined);
    if (fd < 0) {
      if (-fd === EPERM && !isRoot()) throw unprivileged(-fd, 'tcx');
      return no('tcx links', `the kernel refused a sched_cls program (errno ${-fd})`, '6.6');
    }
    try {
      const r = linkCreateRaw({ progFd: fd, target: 0, attachType: 'tcx_ingress' });
      if (r >= 0) {
        close(r);
        return YES;
      }
      if (-r === EPERM && !isRoot()) throw unprivileged(-r, 'tcx');
      return -r === ENODEV ? YES : no('tcx links', 'the kernel predates them', '6.6');
    } finally {
      close(fd);
    }
  }).ok;
}

/** The NotSupportedError for a hook the kernel lacks, or undefined when it has it. */
export function hookSupport(hook: 'kprobes' | 'kprobe_multi' | 'kprobe_session' | 'uprobe_multi' | 'uprobe_session' | 'bpf_lsm' | TracingAttach): NotSupportedError | undefined {
  let a: Answer;
  switch (hook) {
    case 'kprobes': a = kprobesAnswer(); break;
    case 'bpf_lsm': a = bpfLsmAnswer(); break;
    case 'kprobe_multi': case 'kprobe_session': case 'uprobe_multi': case 'uprobe_session': a = multiAnswer(hook); break;
    default: a = tracingAnswer(hook); break;
  }
  return a.ok ? undefined : a.error;
}

/**
 * The members of struct bpf_link_info the running kernel knows, from its BTF: `linkInfoHas('kprobe_multi',
 * 'cookies')` tells whether link info reports kprobe_multi cookies (6.9+), `linkInfoHas('perf_event')`
 * whether perf_event links report anything (6.6+). Throws NotSupportedError without kernel BTF.
 */
export function linkInfoHas(member: string, field?: string): boolean {
  const btf = tryKernelBtf();
  if (!btf) throw new NotSupportedError('reading struct bpf_link_info from kernel BTF', 'the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)', '5.4');
  const info = btf.byName('bpf_link_info', 'struct')[0];
  if (!info || info.kind !== 'struct') return false;
  for (const m of info.members) {
    if (m.name !== '') continue;
    const u = btf.resolve(m.type);
    if (u.kind !== 'union') continue;
    const hit = u.members.find((x) => x.name === member);
    if (!hit) return false;
    if (!field) return true;
    const s = btf.resolve(hit.type);
    return (s.kind === 'struct' || s.kind === 'union') && s.members.some((x) => x.name === field);
  }
  return false;
}
