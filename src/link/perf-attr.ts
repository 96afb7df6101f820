/**
 * A minimal `struct perf_event_attr` builder and perf_event_open() wrapper for attaching programs
 * (tracepoints, kprobes, uprobes, software/hardware events). Kept on its own so it can merge with
 * the perf buffer's builder later. Layout from uapi linux/perf_event.h (PERF_ATTR_SIZE_VER8 = 136).
 */
import { BpfSyscallError } from '../errors.js';
import { native } from '../native.js';
import { Attr } from '../sys/attr.js';
import { FD } from '../sys/fd.js';

export const PERF_ATTR_SIZE = 136;

export const PERF_TYPE_HARDWARE = 0;
export const PERF_TYPE_SOFTWARE = 1;
export const PERF_TYPE_TRACEPOINT = 2;

export const PERF_FLAG_FD_CLOEXEC = 1 << 3;

/** ioctl requests: _IO('$', 0), _IO('$', 1), _IOW('$', 8, __u32). */
export const PERF_EVENT_IOC_ENABLE = 0x2400;
export const PERF_EVENT_IOC_DISABLE = 0x2401;
export const PERF_EVENT_IOC_SET_BPF = 0x40042408;

/** Bits of the flags word at offset 40. */
export const PERF_ATTR_FLAG = {
  disabled: 1n << 0n,
  inherit: 1n << 1n,
  pinned: 1n << 2n,
  exclusive: 1n << 3n,
  excludeUser: 1n << 4n,
  excludeKernel: 1n << 5n,
  excludeHv: 1n << 6n,
  excludeIdle: 1n << 7n,
  freq: 1n << 10n,
  watermark: 1n << 14n,
} as const;

export interface PerfAttrArgs {
  type: number;
  config?: bigint | number;
  /** sample_period, or sample_freq when `freq` is set. */
  samplePeriod?: bigint | number;
  sampleFreq?: bigint | number;
  sampleType?: bigint | number;
  wakeupEvents?: number;
  /** config1 as a pointer to a NUL-terminated string (uprobe path, kprobe function). */
  config1Ptr?: Uint8Array;
  config1?: bigint | number;
  /** config2 (probe offset for kprobes/uprobes). */
  config2?: bigint | number;
  /** Extra PERF_ATTR_FLAG bits. */
  flags?: bigint;
}

export function perfEventAttr(a: PerfAttrArgs): Attr {
  const attr = new Attr(PERF_ATTR_SIZE).u32(0, a.type).u32(4, PERF_ATTR_SIZE).u64(8, a.config ?? 0);
  let flags = a.flags ?? 0n;
  if (a.sampleFreq !== undefined) {
    attr.u64(16, a.sampleFreq);
    flags |= PERF_ATTR_FLAG.freq;
  } else {
    attr.u64(16, a.samplePeriod ?? 0);
  }
  attr.u64(24, a.sampleType ?? 0).u64(40, flags).u32(48, a.wakeupEvents ?? 0);
  if (a.config1Ptr) attr.ptr(56, a.config1Ptr);
  else attr.u64(56, a.config1 ?? 0);
  attr.u64(64, a.config2 ?? 0);
  return attr;
}

/** perf_event_open(2); throws BpfSyscallError with a hint on failure. */
export function perfEventOpen(attr: Attr, pid: number, cpu: number, what: string, groupFd = -1, flags = PERF_FLAG_FD_CLOEXEC): FD {
  const r = native().perfEventOpen(attr.bytes, attr.refs, pid, cpu, groupFd, flags);
  if (r < 0) {
    const e = -r;
    const hint =
      e === 1 || e === 13 ? 'perf_event_open needs CAP_PERFMON (or root), or a lower kernel.perf_event_paranoid' :
      e === 2 ? 'the event does not exist (unknown tracepoint, symbol or PMU)' :
      e === 3 ? 'the process does not exist' :
      e === 19 ? 'the CPU is offline or the PMU does not exist' :
      e === 24 ? 'too many open files: raise the open file limit (ulimit -n)' : undefined;
    throw new BpfSyscallError(r, 'perf_event_open', what, hint);
  }
  return new FD(r, `perf event (${what})`);
}

/** ioctl on a perf event fd; throws on failure. */
export function perfIoctl(fd: number, request: number, arg: number, what: string): void {
  const r = native().ioctl(fd, request, arg);
  if (r < 0) {
    const name = request === PERF_EVENT_IOC_SET_BPF ? 'PERF_EVENT_IOC_SET_BPF' : request === PERF_EVENT_IOC_ENABLE ? 'PERF_EVENT_IOC_ENABLE' : 'PERF_EVENT_IOC_DISABLE';
    throw new BpfSyscallError(r, `ioctl(${name})`, what,
      -r === 17 ? 'a program is already attached to this perf event' :
      -r === 22 ? 'the program type does not fit this perf event' : undefined);
  }
}
