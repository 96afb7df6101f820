/**
 * perf_event_open(2): the `struct perf_event_attr` layout (PERF_ATTR_SIZE_VER8, 136 bytes; offsets generated), the
 * ioctl numbers computed from their _IO/_IOW definitions, and the constants the perf buffer reader
 * and the tracepoint/kprobe/uprobe/perf event links need. This is bpfkit's one perf_event_attr
 * builder: the perf buffer (src/readers/perf.ts) and the attach code (src/link/*) both lay out their
 * events here. Like `bpf.ts`, this module only lays out bytes and makes calls; what the events
 * mean is up to its callers.
 */
import { BpfSyscallError, InvalidArgumentError } from '../errors.js';
import { native } from './native.js';
import { offsetofend } from '../abi/layout.js';
import { cstr } from '../abi/cstring.js';
import { Attr } from './attr.js';
import { FD } from './fd.js';
import { perf_event_attr, perf_event_header, perf_event_mmap_page, perf_event_sample_format, perf_event_type, perf_sw_ids, perf_type_id } from '../abi/uapi.js';

/**
 * sizeof(struct perf_event_attr) up to config3 (PERF_ATTR_SIZE_VER8, Linux 6.3): the size bpfkit
 * sends, which every kernel since accepts.
 */
export const PERF_ATTR_SIZE = offsetofend(perf_event_attr, 'config3');
/** The first published layout; older kernels accept any size from here up to what they know. */
export const PERF_ATTR_SIZE_VER0 = 64;

/** enum perf_type_id */
export const {
  PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE, PERF_TYPE_TRACEPOINT, PERF_TYPE_HW_CACHE, PERF_TYPE_RAW, PERF_TYPE_BREAKPOINT,
} = perf_type_id;

/** enum perf_sw_ids (the ones bpfkit uses) */
export const { PERF_COUNT_SW_CPU_CLOCK, PERF_COUNT_SW_DUMMY, PERF_COUNT_SW_BPF_OUTPUT } = perf_sw_ids;

/** enum perf_event_sample_format (the ones bpfkit uses) */
export const { PERF_SAMPLE_IP, PERF_SAMPLE_TID, PERF_SAMPLE_TIME, PERF_SAMPLE_CPU, PERF_SAMPLE_RAW } = perf_event_sample_format;

/** enum perf_event_type (record types in the mmap ring) */
export const { PERF_RECORD_LOST, PERF_RECORD_SAMPLE } = perf_event_type;

/** perf_event_open flags */
export const PERF_FLAG_FD_NO_GROUP = 1 << 0;
export const PERF_FLAG_FD_OUTPUT = 1 << 1;
export const PERF_FLAG_PID_CGROUP = 1 << 2;
export const PERF_FLAG_FD_CLOEXEC = 1 << 3;

/** struct perf_event_mmap_page: where the ring's control words sit in the first mapped page. */
export const PERF_MMAP_DATA_HEAD = perf_event_mmap_page.data_head;
export const PERF_MMAP_DATA_TAIL = perf_event_mmap_page.data_tail;
export const PERF_MMAP_DATA_OFFSET = perf_event_mmap_page.data_offset;
export const PERF_MMAP_DATA_SIZE = perf_event_mmap_page.data_size;

/** sizeof(struct perf_event_header): u32 type, u16 misc, u16 size. */
export const PERF_EVENT_HEADER_SIZE = perf_event_header.$size;
/**
 * struct perf_event_header read as the ring's u32 words (bpfkit runs on little-endian hosts only):
 * `type` fills its word; `size`, a u16, is the high half of the word it shares with `misc`.
 */
export const PERF_HEADER_TYPE_WORD = perf_event_header.type >> 2;
export const PERF_HEADER_SIZE_WORD = perf_event_header.size >> 2;
export const PERF_HEADER_SIZE_SHIFT = (perf_event_header.size & 3) * 8;

/*
 * The bodies of the two records bpfkit reads, byte offsets from the record's start. They are not C
 * structs (BTF has no layout for them); include/uapi/linux/perf_event.h gives them in its comments
 * on enum perf_event_type:
 *   PERF_RECORD_LOST:   { struct perf_event_header header; u64 id; u64 lost; struct sample_id sample_id; };
 *   PERF_RECORD_SAMPLE: { struct perf_event_header header; ...; u32 size; char data[size]; ... };
 * bpfkit opens its events with sample_type PERF_SAMPLE_RAW alone, so the raw size follows the header.
 */
/** PERF_RECORD_LOST: the u64 id of the event that lost samples. */
export const PERF_RECORD_LOST_ID = PERF_EVENT_HEADER_SIZE;
/** PERF_RECORD_LOST: the u64 count of lost samples. */
export const PERF_RECORD_LOST_LOST = PERF_RECORD_LOST_ID + 8;
/** PERF_RECORD_SAMPLE (PERF_SAMPLE_RAW only): the u32 size of the raw data. */
export const PERF_RECORD_SAMPLE_RAW_SIZE = PERF_EVENT_HEADER_SIZE;
/** PERF_RECORD_SAMPLE (PERF_SAMPLE_RAW only): the raw data. */
export const PERF_RECORD_SAMPLE_RAW_DATA = PERF_RECORD_SAMPLE_RAW_SIZE + 4;

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

/** The single-bit flags of the `disabled : 1, inherit : 1, ...` bitfield, by their uapi names. */
const FLAG_FIELDS = {
  disabled: 'disabled', inherit: 'inherit', pinned: 'pinned', exclusive: 'exclusive', excludeUser: 'exclude_user',
  excludeKernel: 'exclude_kernel', excludeHv: 'exclude_hv', excludeIdle: 'exclude_idle', mmap: 'mmap', comm: 'comm',
  freq: 'freq', inheritStat: 'inherit_stat', enableOnExec: 'enable_on_exec', task: 'task', watermark: 'watermark',
  mmapData: 'mmap_data', sampleIdAll: 'sample_id_all', excludeHost: 'exclude_host', excludeGuest: 'exclude_guest',
  excludeCallchainKernel: 'exclude_callchain_kernel', excludeCallchainUser: 'exclude_callchain_user', mmap2: 'mmap2',
  commExec: 'comm_exec', useClockid: 'use_clockid', contextSwitch: 'context_switch', writeBackward: 'write_backward',
  namespaces: 'namespaces', ksymbol: 'ksymbol', bpfEvent: 'bpf_event', auxOutput: 'aux_output', cgroup: 'cgroup',
  textPoke: 'text_poke', buildId: 'build_id', inheritThread: 'inherit_thread', removeOnExec: 'remove_on_exec',
  sigtrap: 'sigtrap',
} as const satisfies Record<string, keyof typeof P.$bits>;

const P = perf_event_attr;
/** The bitfield is one u64 word; bit positions below count from its first bit. */
const FLAG_WORD_BIT = P.$bits.disabled[0];
const FLAG_BITS = Object.fromEntries(Object.entries(FLAG_FIELDS).map(([name, field]) => [name, P.$bits[field][0] - FLAG_WORD_BIT])) as
  Record<keyof typeof FLAG_FIELDS, number>;

export type PerfEventFlag = keyof typeof FLAG_FIELDS;

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
  flags |= BigInt(precise) << BigInt(P.$bits.precise_ip[0] - FLAG_WORD_BIT);

  // The buffer is always the full layout; `size` tells the kernel how much of it to read.
  const attr = new Attr(PERF_ATTR_SIZE)
    .u32(P.type, a.type)
    .u32(P.size, size)
    .u64(P.config, a.config ?? 0)
    .u64(P.sample_period, a.samplePeriod ?? a.sampleFreq ?? 0)
    .u64(P.sample_type, a.sampleType ?? 0)
    .u64(P.read_format, a.readFormat ?? 0)
    .u64(FLAG_WORD_BIT / 8, flags)
    .u32(P.wakeup_events, a.wakeupEvents ?? a.wakeupWatermark ?? 0)
    .u32(P.bp_type, a.bpType ?? 0)
    .u64(P.branch_sample_type, a.branchSampleType ?? 0)
    .u64(P.sample_regs_user, a.sampleRegsUser ?? 0)
    .u32(P.sample_stack_user, a.sampleStackUser ?? 0)
    .i32(P.clockid, a.clockid ?? 0)
    .u64(P.sample_regs_intr, a.sampleRegsIntr ?? 0)
    .u32(P.aux_watermark, a.auxWatermark ?? 0)
    .u32(P.aux_sample_size, a.auxSampleSize ?? 0)
    .u64(P.sig_data, a.sigData ?? 0)
    .u64(P.config3, a.config3 ?? 0);
  attr.view.setUint16(P.sample_max_stack, a.sampleMaxStack ?? 0, true);
  if (a.kprobeFunc !== undefined) attr.ptr(P.kprobe_func, cstr(a.kprobeFunc));
  else if (a.uprobePath !== undefined) attr.ptr(P.uprobe_path, cstr(a.uprobePath));
  else attr.u64(P.config1, a.config1 ?? 0);
  attr.u64(P.config2, a.config2 ?? a.kprobeAddr ?? a.probeOffset ?? 0);
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
