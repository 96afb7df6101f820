/**
 * Feature probes: does this kernel have a map type, a program type, a helper? Each probe creates
 * the smallest object that needs the feature. Only conclusive answers are cached: "yes", or a
 * refusal that means "no" (EINVAL, E2BIG, ...). A refusal that says nothing about the feature
 * (EPERM without privileges, ENOMEM) is thrown and asked again next time.
 */
import { ENOMEM, EPERM } from './abi/errno.js';
import { BpfkitError, BpfSyscallError } from './errors.js';
import { kernelBtf } from './load/attach-target.js';
import { bpfRaw, mapCreateAttr, progLoadRaw } from './sys/bpf.js';
import { attachType, mapType, progType, type AttachType, type MapType, type ProgType } from './sys/constants.js';
import { native } from './native.js';

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
    const insns = new Uint8Array(24);
    insns.set([0xb7, 0x01], 0); // r1 = 0
    insns.set([0xbf, 0x10, 8, 0], 8); // r0 = (s8)r1: BPF_ALU64 | BPF_MOV | BPF_X with off 8
    insns.set([0x95], 16); // exit
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
    const insns = new Uint8Array(24);
    insns.set([0x85, 0, 0, 0], 0);
    new DataView(insns.buffer).setInt32(4, helper, true);
    insns.set(RETURN_ZERO, 8);
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
