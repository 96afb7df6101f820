/**
 * Feature probes: does this kernel have a map type, a program type, a helper? Each probe creates
 * the smallest object that needs the feature. Only conclusive answers are cached: "yes", or a
 * refusal that means "no" (EINVAL, E2BIG, ...). A refusal that says nothing about the feature
 * (EPERM without privileges, ENOMEM) is thrown and asked again next time.
 */
import { BpfSyscallError } from './errors.js';
import { bpfRaw, mapCreateAttr, progLoadRaw } from './sys/bpf.js';
import { mapType, progType, type MapType, type ProgType } from './sys/constants.js';
import { native } from './native.js';
import { linkCreateRaw } from './link/sys.js';

const cache = new Map<string, boolean>();

const EPERM = 1;
const ENOMEM = 12;

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

function probeProgram(t: ProgType, insns: Uint8Array, log: Uint8Array | null): number {
  return progLoadRaw({
    progType: progType.number(t), insns, license: 'GPL', logLevel: log ? 1 : 0, logBuf: log, kernVersion: 0,
    progFlags: 0, name: '', expectedAttachType: 0, btfFd: 0, funcInfo: null, funcInfoRecSize: 0, funcInfoCnt: 0,
    lineInfo: null, lineInfoRecSize: 0, lineInfoCnt: 0,
  }).result;
}

/**
 * Whether the kernel can load programs of this type. Types that need an attach target at load
 * (tracing, ext, lsm, struct_ops) cannot be probed this way and answer through their load errors.
 */
export function haveProgramType(t: ProgType): boolean {
  return remember(`prog:${t}`, () => {
    const r = probeProgram(t, RETURN_ZERO, null);
    if (r >= 0) {
      native().close(r);
      return true;
    }
    if (inconclusive(-r)) throw new BpfSyscallError(r, 'bpf(BPF_PROG_LOAD)', `probe program type ${t}`, 'probing needs CAP_BPF: run as root');
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
    const r = probeProgram(t, insns, log);
    if (r >= 0) {
      native().close(r);
      return true;
    }
    if (inconclusive(-r)) throw new BpfSyscallError(r, 'bpf(BPF_PROG_LOAD)', `probe helper ${helper}`, 'probing needs CAP_BPF: run as root');
    const text = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0))));
    return !/invalid func|unknown func|program of this type cannot use helper/.test(text);
  });
}


// ---- tc attach modes --------------------------------------------------------------------------

const ENODEV = 19;

/**
 * Whether the kernel has tcx links (BPF_LINK_CREATE with attach type tcx_ingress, 6.6+); without
 * them, attachTc() falls back to a clsact qdisc and a cls_bpf filter over rtnetlink. The probe asks
 * for a link on ifindex 0: a kernel with tcx looks the interface up and answers ENODEV, attaching
 * nothing; an older one refuses the attach type with EINVAL.
 */
export function haveTcxLinks(): boolean {
  return remember('link:tcx', () => {
    const prog = probeProgram('sched_cls', RETURN_ZERO, null);
    if (prog < 0) {
      if (inconclusive(-prog)) throw new BpfSyscallError(prog, 'bpf(BPF_PROG_LOAD)', 'probe tcx links', 'probing needs CAP_BPF: run as root');
      return false;
    }
    try {
      const r = linkCreateRaw({ progFd: prog, target: 0, attachType: 'tcx_ingress' });
      if (r >= 0) {
        native().close(r);
        return true;
      }
      if (inconclusive(-r)) throw new BpfSyscallError(r, 'bpf(BPF_LINK_CREATE)', 'probe tcx links', 'probing needs CAP_BPF and CAP_NET_ADMIN: run as root');
      return -r === ENODEV;
    } finally {
      native().close(prog);
    }
  });
}
