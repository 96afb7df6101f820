/**
 * perf_event_open(2): the `struct perf_event_attr` layout (PERF_ATTR_SIZE_VER8, 136 bytes), the
 * ioctl numbers computed from their _IO/_IOW definitions, and the constants the perf buffer reader
 * and the tracepoint/kprobe/uprobe/perf event links need. This is bpfkit's one perf_event_attr
 * builder: the perf buffer (src/perf.ts) and the attach code (src/link/*) both lay out their
 * events here. Like `bpf.ts`, this module only lays out bytes and makes calls; what the events
 * mean is up to its callers.
 */
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import { native } from '../native.js';
import { Attr, cstr } from './attr.js';
import { FD } from './fd.js';

/** sizeof(struct perf_event_attr) as of PERF_ATTR_SIZE_VER8 (config3, Linux 6.3). */
export const PERF_ATTR_SIZE = 136;
/** The first published layout; older kernels accept any size from here up to what they know. */
export const PERF_ATTR_SIZE_VER0 = 64;

/** enum perf_type_id */
export const PERF_TYPE_HARDWARE = 0;
export const PERF_TYPE_SOFTWARE = 1;
export const PERF_TYPE_TRACEPOINT = 2;
export const PERF_TYPE_HW_CACHE = 3;
export const PERF_TYPE_RAW = 4;
export const PERF_TYPE_BREAKPOINT = 5;

/** enum perf_sw_ids (the ones bpfkit uses) */
export const PERF_COUNT_SW_CPU_CLOCK = 0;
export const PERF_COUNT_SW_DUMMY = 9;
export const PERF_COUNT_SW_BPF_OUTPUT = 10;

/** enum perf_event_sample_format (the ones bpfkit uses) */
export const PERF_SAMPLE_IP = 1 << 0;
export const PERF_SAMPLE_TID = 1 << 1;
export const PERF_SAMPLE_TIME = 1 << 2;
export const PERF_SAMPLE_CPU = 1 << 7;
export const PERF_SAMPLE_RAW = 1 << 10;

/** enum perf_event_type (record types in the mmap ring) */
export const PERF_RECORD_LOST = 2;
export const PERF_RECORD_SAMPLE = 9;

/** perf_event_open flags */
export const PERF_FLAG_FD_NO_GROUP = 1 << 0;
export const PERF_FLAG_FD_OUTPUT = 1 << 1;
export const PERF_FLAG_PID_CGROUP = 1 << 2;
export const PERF_FLAG_FD_CLOEXEC = 1 << 3;

/** struct perf_event_mmap_page: where the ring's control words sit in the first mapped page. */
export const PERF_MMAP_DATA_HEAD = 1024;
export const PERF_MMAP_DATA_TAIL = 1032;
export const PERF_MMAP_DATA_OFFSET = 1040;
export const PERF_MMAP_DATA_SIZE = 1048;

/** sizeof(struct perf_event_header): u32 type, u16 misc, u16 size. */
export const PERF_EVENT_HEADER_SIZE = 8;

// asm-generic/ioctl.h: dir in bits 30-31 (1 = _IOC_WRITE), size in bits 16-29, type 8-15, nr 0-7.
const IOC_NONE = 0;
const IOC_WRITE = 1;

function ioc(dir: number, type: string, nr: number, size: number): number {
  // Computed with multiplication: dir << 30 would overflow a signed 32-bit shift.
  return dir * 2 ** 30 + size * 2 ** 16 + type.charCodeAt(0) * 2 ** 8 + nr;
}

/** _IO(type, nr) */
export function _IO(type: string, nr: number): number {
  return ioc(IOC_NONE, type, nr, 0);
}

/** _IOW(type, nr, size): size is sizeof the argument type. */
export function _IOW(type: string, nr: number, size: number): number {
  return ioc(IOC_WRITE, type, nr, size);
}

export const PERF_EVENT_IOC_ENABLE = _IO('$', 0);
export const PERF_EVENT_IOC_DISABLE = _IO('$', 1);
export const PERF_EVENT_IOC_SET_BPF = _IOW('$', 8, 4 /* __u32 */);
export const PERF_EVENT_IOC_PAUSE_OUTPUT = _IOW('$', 9, 4 /* __u32 */);

/**
 * The bit positions of the flag word at offset 40 (the `disabled : 1, inherit : 1, ...` bitfield,
 * allocated from bit 0 upwards on every Linux ABI bpfkit supports).
 */
const FLAG_BITS = {
  disabled: 0, inherit: 1, pinned: 2, exclusive: 3, excludeUser: 4, excludeKernel: 5, excludeHv: 6,
  excludeIdle: 7, mmap: 8, comm: 9, freq: 10, inheritStat: 11, enableOnExec: 12, task: 13,
  watermark: 14, /* precise_ip: bits 15-16 */ mmapData: 17, sampleIdAll: 18, excludeHost: 19,
  excludeGuest: 20, excludeCallchainKernel: 21, excludeCallchainUser: 22, mmap2: 23, commExec: 24,
  useClockid: 25, contextSwitch: 26, writeBackward: 27, namespaces: 28, ksymbol: 29, bpfEvent: 30,
  auxOutput: 31, cgroup: 32, textPoke: 33, buildId: 34, inheritThread: 35, removeOnExec: 36, sigtrap: 37,
} as const;

export type PerfEventFlag = keyof typeof FLAG_BITS;

/**
 * The fields of `struct perf_event_attr`, by their uapi names in camel case. Unions are flattened:
 * give one member of each (e.g. `samplePeriod` or `sampleFreq`; `wakeupEvents` or
 * `wakeupWatermark`; `config1`, `kprobeFunc` or `uprobePath`; `config2`, `kprobeAddr` or
 * `probeOffset`). `kprobeFunc` and `uprobePath` are strings: the layout points the kernel at a
 * NUL-terminated copy.
 */
export interface PerfEventAttr {
  type: number;
  config?: number | bigint;
  samplePeriod?: number | bigint;
  sampleFreq?: number | bigint;
  sampleType?: number | bigint;
  readFormat?: number | bigint;
  /** Single-bit flags, e.g. `{ disabled: true, watermark: true }`. */
  flags?: Partial<Record<PerfEventFlag, boolean>>;
  /** 0..3, the skid constraint. */
  preciseIp?: number;
  wakeupEvents?: number;
  wakeupWatermark?: number;
  bpType?: number;
  config1?: number | bigint;
  kprobeFunc?: string;
  uprobePath?: string;
  config2?: number | bigint;
  kprobeAddr?: number | bigint;
  probeOffset?: number | bigint;
  branchSampleType?: number | bigint;
  sampleRegsUser?: number | bigint;
  sampleStackUser?: number;
  clockid?: number;
  sampleRegsIntr?: number | bigint;
  auxWatermark?: number;
  sampleMaxStack?: number;
  auxSampleSize?: number;
  sigData?: number | bigint;
  config3?: number | bigint;
  /** The `size` field; defaults to PERF_ATTR_SIZE. */
  size?: number;
}

function oneOf(a: PerfEventAttr, names: readonly (keyof PerfEventAttr)[]): void {
  const given = names.filter((n) => a[n] !== undefined);
  if (given.length > 1) throw new InvalidArgumentError(`perf_event_attr: ${given.join(' and ')} share a union; give only one`);
}

/** Lays out `struct perf_event_attr`; pointer fields (kprobeFunc, uprobePath) are in `refs`. */
export function perfEventAttr(a: PerfEventAttr): Attr {
  oneOf(a, ['samplePeriod', 'sampleFreq']);
  oneOf(a, ['wakeupEvents', 'wakeupWatermark']);
  oneOf(a, ['config1', 'kprobeFunc', 'uprobePath']);
  oneOf(a, ['config2', 'kprobeAddr', 'probeOffset']);
  const size = a.size ?? PERF_ATTR_SIZE;
  if (size < PERF_ATTR_SIZE_VER0 || size > PERF_ATTR_SIZE) {
    throw new InvalidArgumentError(`perf_event_attr size must be between ${PERF_ATTR_SIZE_VER0} and ${PERF_ATTR_SIZE}, got ${size}`);
  }
  let flags = 0n;
  for (const [name, on] of Object.entries(a.flags ?? {})) {
    const bit = FLAG_BITS[name as PerfEventFlag];
    if (bit === undefined) throw new InvalidArgumentError(`perf_event_attr: unknown flag "${name}"`);
    if (on) flags |= 1n << BigInt(bit);
  }
  // freq selects which member of the sample_period/sample_freq union the kernel reads.
  if (a.sampleFreq !== undefined) flags |= 1n << BigInt(FLAG_BITS.freq);
  if (a.wakeupWatermark !== undefined) flags |= 1n << BigInt(FLAG_BITS.watermark);
  const precise = a.preciseIp ?? 0;
  if (!Number.isInteger(precise) || precise < 0 || precise > 3) throw new InvalidArgumentError(`perf_event_attr: preciseIp must be 0..3, got ${precise}`);
  flags |= BigInt(precise) << 15n;

  // The buffer is always the full layout; `size` tells the kernel how much of it to read.
  const attr = new Attr(PERF_ATTR_SIZE)
    .u32(0, a.type)
    .u32(4, size)
    .u64(8, a.config ?? 0)
    .u64(16, a.samplePeriod ?? a.sampleFreq ?? 0)
    .u64(24, a.sampleType ?? 0)
    .u64(32, a.readFormat ?? 0)
    .u64(40, flags)
    .u32(48, a.wakeupEvents ?? a.wakeupWatermark ?? 0)
    .u32(52, a.bpType ?? 0)
    .u64(72, a.branchSampleType ?? 0)
    .u64(80, a.sampleRegsUser ?? 0)
    .u32(88, a.sampleStackUser ?? 0)
    .i32(92, a.clockid ?? 0)
    .u64(96, a.sampleRegsIntr ?? 0)
    .u32(104, a.auxWatermark ?? 0)
    .u32(112, a.auxSampleSize ?? 0)
    .u64(120, a.sigData ?? 0)
    .u64(128, a.config3 ?? 0);
  attr.view.setUint16(108, a.sampleMaxStack ?? 0, true);
  if (a.kprobeFunc !== undefined) attr.ptr(56, cstr(a.kprobeFunc));
  else if (a.uprobePath !== undefined) attr.ptr(56, cstr(a.uprobePath));
  else attr.u64(56, a.config1 ?? 0);
  attr.u64(64, a.config2 ?? a.kprobeAddr ?? a.probeOffset ?? 0);
  return attr;
}

function openHint(errno: number): string | undefined {
  switch (errno) {
    case 1:
    case 13:
      return 'perf_event_open needs CAP_PERFMON or CAP_SYS_ADMIN (run as root), or a lower kernel.perf_event_paranoid';
    case 2:
      return 'the event does not exist: the kernel does not know this event type or config (unknown tracepoint, kprobe symbol, uprobe file or PMU)';
    case 3:
      return 'the process does not exist';
    case 7:
      return 'the kernel does not understand this perf_event_attr size; pass a smaller `size`';
    case 19:
      return 'the event needs a CPU or PMU that is not there (offline CPU?)';
    case 24:
      return 'too many open files: raise the limit (ulimit -n)';
    default:
      return undefined;
  }
}

/**
 * perf_event_open(attr, pid, cpu, groupFd, flags) as an owned FD. pid -1 with a cpu ≥ 0 counts
 * every task on that CPU; flags default to PERF_FLAG_FD_CLOEXEC. `what` names the event in errors
 * and in the FD's description.
 */
export function perfEventOpen(attr: PerfEventAttr | Attr, pid: number, cpu: number, groupFd = -1, flags = PERF_FLAG_FD_CLOEXEC, what?: string): FD {
  const a = attr instanceof Attr ? attr : perfEventAttr(attr);
  const r = native().perfEventOpen(a.bytes, a.refs.length ? a.refs : null, pid, cpu, groupFd, flags);
  if (r < 0) throw new BpfSyscallError(r, 'perf_event_open', what, openHint(-r));
  return new FD(r, what ?? `perf event (cpu ${cpu})`);
}

function ioctlCall(fd: number, request: number, arg: number, name: string, what?: string, hint?: (errno: number) => string | undefined): void {
  const r = native().ioctl(fd, request, arg);
  if (r < 0) throw new BpfSyscallError(r, `ioctl(${name})`, what, hint?.(-r));
}

/** PERF_EVENT_IOC_ENABLE */
export function perfEventEnable(fd: number, what?: string): void {
  ioctlCall(fd, PERF_EVENT_IOC_ENABLE, 0, 'PERF_EVENT_IOC_ENABLE', what);
}

/** PERF_EVENT_IOC_DISABLE */
export function perfEventDisable(fd: number, what?: string): void {
  ioctlCall(fd, PERF_EVENT_IOC_DISABLE, 0, 'PERF_EVENT_IOC_DISABLE', what);
}

/** PERF_EVENT_IOC_SET_BPF: attach a program (kprobe, tracepoint, perf_event) to the event. */
export function perfEventSetBpf(fd: number, progFd: number, what?: string): void {
  ioctlCall(fd, PERF_EVENT_IOC_SET_BPF, progFd, 'PERF_EVENT_IOC_SET_BPF', what, (e) =>
    e === 17 ? 'a program is already attached to this perf event' :
    e === 22 ? 'the program type does not fit this perf event' : undefined);
}

/** PERF_EVENT_IOC_PAUSE_OUTPUT: while paused the kernel writes nothing into the event's ring. */
export function perfEventPauseOutput(fd: number, paused: boolean): void {
  ioctlCall(fd, PERF_EVENT_IOC_PAUSE_OUTPUT, paused ? 1 : 0, 'PERF_EVENT_IOC_PAUSE_OUTPUT');
}
