/**
 * An emulated kernel behind bpfkit's own syscall seam (`Native`, see src/sys/native.ts): install it with
 * `useEmulatedKernel()` and everything the library does — creating maps, loading programs,
 * BPF_PROG_TEST_RUN, pinning, reading ring buffers through mmap — runs in this process against
 * in-memory objects, without root, a BPF-capable kernel or the native addon. Code under test keeps
 * using the library's normal API.
 *
 * The emulator keeps the kernel's contracts where user space can see them: file descriptors, object
 * ids and reference counts (a prog array empties when user space closes its last fd; a map lives
 * while a program uses it), the attr layouts of every command, errno values, the mmap layout of
 * ring buffers and perf rings, and poll readiness. Programs run in the interpreter
 * (interpreter.ts) on their own bytecode. What it does not emulate is answered with -EOPNOTSUPP
 * (attaching programs, links, sockets, perf events other than BPF output).
 *
 * Attrs and the structs handed back are read and written by field name through the generated
 * layouts of src/abi/uapi.ts (attr.ts), the ones the library encodes with: no offset is written here.
 *
 * File descriptors start at 2,000,000 so they can never be mistaken for (and close) real ones when
 * a test switches back to the real kernel.
 */
import { posix } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { Btf } from '../btf/btf.js';
import { InvalidArgumentError } from '../errors.js';
import { possibleCpus } from '../sys/cpus.js';
import { mapElemVia, mapNextLookupVia } from '../sys/bpf.js';
import { resetFeatureCache } from '../kernel/features.js';
import { setNative, type Native, type NativePoller, type PointerRefs } from '../sys/native.js';
import { PROG_TYPES } from '../abi/constants.js';
import {
  bpf_attr, bpf_btf_info, bpf_cmd, bpf_func_info, bpf_insn, bpf_line_info, bpf_map_info, bpf_map_type, bpf_prog_info, bpf_prog_type, bpf_stats_type,
  btf_header, perf_event_attr, perf_sw_ids, perf_type_id,
} from '../abi/uapi.js';
import { offsetofend } from '../abi/layout.js';
import { PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_PAUSE_OUTPUT } from '../sys/perf-event.js';
import { AttrReader, StructWriter, attrOf } from './attr.js';
import {
  E2BIG, EACCES, EAFNOSUPPORT, EAGAIN, EBADF, EBUSY, EEXIST, EFAULT, EINVAL, ENODEV, ENOENT, ENOMEM, ENOSPC, ENOSYS, ENOTDIR, ENOTEMPTY,
  ENOTSUPP, ENOTTY, ENXIO, EOPNOTSUPP, EPERM,
} from '../abi/errno.js';
import { HELPERS } from './helpers.js';
import { Vm, type Task, type VmEnv } from './interpreter.js';
import { load, programTag, gplCompatible, type Code } from './loader.js';
import { ArrayMap, BPF_F_LOCK, EmuMap, F, createMap, sysAccess, type MapParams, type ProgRef } from './maps.js';
import type { ProbeMemory } from './memory.js';
import type { KernelObject, ObjectHost } from './objects.js';
import { PAGE_SIZE, PerfEvent, RingbufMap, type Waitable, type Watcher } from './rings.js';
import { createNetMap } from './devmaps.js';
import { bufferSetup, skbSetup, xdpSetup, type RunSetup } from './testrun.js';
import { CLS, MODE, PSEUDO, SIZE } from '../asm/isa.js';
import { kernelBehaviour, type KernelBehaviour } from './version.js';
import { checkSocket, type EmulatedSocket } from './sockets.js';
import { Fib, fibDevice, type FibNeighbour, type FibRoute } from './fib.js';

/**
 * Options of {@link useEmulatedKernel}: the kernel release to model, CPU count, the task, memory
 * and clock tracing programs see, network devices, bpffs paths, the random seed, an instruction
 * limit, and which program types test runs allow.
 */
export interface EmulatedKernelOptions {
  /** Possible CPUs: per-CPU maps hold this many values. Defaults to the host's (what BpfMap expects). */
  cpus?: number;
  /** Memory that bpf_probe_read_* and bpf_get_current_task() see. */
  memory?: ProbeMemory;
  /** The task helpers report (bpf_get_current_pid_tgid, _uid_gid, _comm, _cgroup_id). */
  task?: Partial<Task>;
  /** bpf_ktime_get_ns and friends; defaults to the process's monotonic clock. */
  clock?: () => bigint;
  /** Seed of bpf_get_prandom_u32 (deterministic by default). */
  seed?: number;
  /** Instructions one program run may execute before it is stopped as endless. */
  maxInstructions?: number;
  /**
   * 'kernel': BPF_PROG_TEST_RUN only for the program types the kernel runs (XDP, skb types, raw
   * tracepoints, syscall). 'all' (default): also tracepoint, kprobe, perf_event, tracing and LSM
   * programs, whose context is then the ctx_in bytes given.
   */
  testRun?: 'kernel' | 'all';
  /** Sockets of the emulated network namespace, for bpf_sk_lookup_tcp/_udp and bpf_skc_lookup_tcp (more may be pushed to `kernel.sockets`). */
  sockets?: readonly EmulatedSocket[];
  /** Where bpffs is mounted; pins must be inside one. */
  bpffs?: readonly string[];
  /**
   * The kernel release imitated where releases differ (program tag hash, XDP limits, verifier and
   * helper flags, map errnos: see version.ts): "6.1", "6.12", "6.18", "6.12.66" or what `uname -r`
   * prints. Default "6.18".
   */
  kernel?: string;
  /**
   * Network devices besides the loopback device (ifindex 1): test runs may name them in ctx_in's
   * ifindex / ingress_ifindex, and bpf_redirect and device maps may point at them.
   */
  netdevs?: readonly NetDev[];
  /**
   * Routes bpf_fib_lookup searches, besides those the kernel adds for the devices' addresses
   * (local, broadcast or anycast, and the connected prefix), as `ip route add` would set them up.
   */
  routes?: readonly FibRoute[];
  /** Neighbour entries (valid ones: bpf_fib_lookup returns their MAC as dmac). */
  neighbours?: readonly FibNeighbour[];
}

/** A network device the emulated kernel knows (test runs and device maps check ifindexes against these). */
export interface NetDev {
  ifindex: number;
  name: string;
  /** The MAC address (eth_type_trans decides pkt_type with it); zero by default, as loopback's. */
  mac?: Uint8Array;
  /** The MTU bpf_fib_lookup checks against: 1500 by default (65536 for loopback). */
  mtu?: number;
  /** net.ipv4.conf.DEV.forwarding and net.ipv6.conf.DEV.forwarding: both off by default, as in a new namespace. */
  forwarding?: { ipv4?: boolean; ipv6?: boolean };
  /**
   * Addresses with their prefix lengths ("10.0.0.1/24", "2001:db8::1/64"); loopback always has
   * 127.0.0.1/8 and ::1/128. Each brings the routes the kernel adds for it.
   */
  addresses?: readonly string[];
}

/** What BPF_PROG_LOAD fixed about a program. */
export interface ProgramFacts {
  progType: number;
  name: string;
  code: Code;
  maps: EmuMap[];
  tag: Uint8Array;
  gpl: boolean;
  loadTime: bigint;
  uid: number;
  btfId: number;
  expectedAttachType: number;
  flags: number;
  nFuncInfo: number;
  nLineInfo: number;
}

/** A loaded program. */
export class EmuProgram implements ProgRef {
  readonly kind = 'prog' as const;
  refs = 0;
  id = 0;
  runCount = 0n;
  runTimeNs = 0n;
  readonly progType: number;
  readonly name: string;
  readonly code: Code;
  readonly maps: EmuMap[];
  readonly facts: ProgramFacts;
  readonly #host: ObjectHost;

  constructor(host: ObjectHost, facts: ProgramFacts) {
    this.#host = host;
    this.facts = facts;
    this.progType = facts.progType;
    this.name = facts.name;
    this.code = facts.code;
    this.maps = facts.maps;
  }

  get type(): string {
    return PROG_TYPES[this.progType] ?? `unknown(${this.progType})`;
  }

  get expectedAttachType(): number {
    return this.facts.expectedAttachType;
  }

  /** The instructions as BPF_OBJ_GET_INFO_BY_FD gives them: map references by map id. */
  xlated(): Uint8Array {
    const out = this.code.bytes.slice();
    const v = new DataView(out.buffer);
    const [srcBit, srcWidth] = bpf_insn.$bits.src_reg;
    const srcMask = ((1 << srcWidth) - 1) << (srcBit & 7);
    this.code.ld.forEach((t, pc) => {
      if (!t || t.kind === 'func') return;
      const at = pc * bpf_insn.$size;
      const regs = at + (srcBit >> 3);
      out[regs] = (out[regs]! & ~srcMask) | ((t.kind === 'map' ? PSEUDO.MAP_FD : PSEUDO.MAP_VALUE) << (srcBit & 7));
      v.setInt32(at + bpf_insn.imm, t.map.id, true);
    });
    return out;
  }

  dispose(): void {
    for (const m of this.maps) this.#host.release(m);
  }
}

class EmuBtf implements KernelObject {
  readonly kind = 'btf' as const;
  refs = 0;
  id = 0;
  constructor(readonly bytes: Uint8Array, readonly btf: Btf) {}
  dispose(): void {}
}

class StatsHandle implements KernelObject {
  readonly kind = 'stats' as const;
  refs = 0;
  id = 0;
  constructor(readonly onDispose: () => void) {}
  dispose(): void {
    this.onDispose();
  }
}

interface FdEntry {
  obj: KernelObject;
  /** BPF_F_RDONLY / BPF_F_WRONLY for map fds opened that way. */
  flags: number;
}

type ElemAttr = AttrReader<typeof bpf_attr.map_elem>;
type ObjAttr = AttrReader<typeof bpf_attr.obj>;
type IdAttr = AttrReader<typeof bpf_attr.get_id>;

/** An element command's 64-bit flags as a number: a bit above 31 becomes one unknown bit, so the flag checks refuse it. */
function elemFlags(a: ElemAttr): number {
  const f = a.u64('flags');
  return Number(f & 0xffffffffn) | (f >> 32n ? 0x10000 : 0);
}

const FD_BASE = 2_000_000;
const UV_READABLE = 1;
const ERRNO_TEXT: Record<number, string> = {
  [EPERM]: 'Operation not permitted', [ENOENT]: 'No such file or directory', [ENXIO]: 'No such device or address',
  [E2BIG]: 'Argument list too long', [EBADF]: 'Bad file descriptor', [EAGAIN]: 'Resource temporarily unavailable',
  [ENOMEM]: 'Cannot allocate memory', [EACCES]: 'Permission denied', [EFAULT]: 'Bad address', [EBUSY]: 'Device or resource busy',
  [EEXIST]: 'File exists', [ENODEV]: 'No such device', [ENOTDIR]: 'Not a directory', [EINVAL]: 'Invalid argument',
  [ENOTTY]: 'Inappropriate ioctl for device', [ENOSPC]: 'No space left on device', [ENOSYS]: 'Function not implemented',
  [EOPNOTSUPP]: 'Operation not supported', [EAFNOSUPPORT]: 'Address family not supported by protocol',
};

/**
 * An emulated kernel behind bpfkit's syscall seam (see {@link useEmulatedKernel}): maps and
 * programs are created in memory and programs run in an interpreter on their own bytecode, so
 * tests of BPF code and the code that drives it need no root and no kernel. It models a chosen
 * release (`kernel` option) where kernels differ.
 * @throws {@link EmulatorFault} (`ERR_BPFKIT_EMULATOR_FAULT`) from a program run that does what
 *   the verifier would have refused or the emulator does not implement, naming the instruction.
 */
export class EmulatedKernel implements Native, ObjectHost {
  readonly cpus: number;
  /** The CPU test runs execute on (per-CPU maps, bpf_get_smp_processor_id); BPF_F_TEST_RUN_ON_CPU overrides it. */
  cpu = 0;
  readonly task: Task;
  memory: ProbeMemory | undefined;
  /** Lines written with bpf_trace_printk / bpf_trace_vprintk, oldest first. */
  readonly trace: string[] = [];
  /** bpf_redirect, bpf_redirect_map/_peer/_neigh and bpf_clone_redirect calls (a clone with its bytes), oldest first. */
  readonly redirects: { ifindex: number; flags: bigint; map?: string; key?: number; kind?: 'peer' | 'neigh' | 'clone'; data?: Uint8Array }[] = [];
  /** The sockets the lookup helpers search, in the caller's namespace (checked when looked up). */
  readonly sockets: EmulatedSocket[];
  readonly constants: Native['constants'];
  readonly Poller: new (fd: number, callback: (status: number, events: number) => void) => NativePoller;

  /** What the imitated kernel release does where releases differ. */
  readonly behaviour: KernelBehaviour;
  /** Network devices by ifindex; 1 is the loopback device. */
  readonly netdevs = new Map<number, NetDev>();
  /** The forwarding information base bpf_fib_lookup searches (devices, routes, neighbours). */
  readonly fib: Fib;
  readonly #options: EmulatedKernelOptions;
  readonly #fds = new Map<number, FdEntry>();
  readonly #maps = new Map<number, EmuMap>();
  readonly #progs = new Map<number, EmuProgram>();
  readonly #btfs = new Map<number, EmuBtf>();
  #ids = { map: 1, prog: 1, btf: 1, perf: 1 };
  readonly #pins = new Map<string, KernelObject>();
  readonly #dirs = new Set<string>();
  readonly #mounts: readonly string[];
  readonly #mappings = new Map<ArrayBuffer, { map: EmuMap | undefined; writable: number }>();
  #statsHandles = 0;
  #random: number;
  readonly #clock: () => bigint;
  readonly #vm: Vm;
  #previous: Native | undefined;
  #installed = false;

  constructor(options: EmulatedKernelOptions = {}) {
    this.#options = options;
    this.behaviour = kernelBehaviour(options.kernel);
    const lo = options.netdevs?.find((d) => d.ifindex === 1);
    this.netdevs.set(1, { ...lo, ifindex: 1, name: 'lo', mac: new Uint8Array(6) });
    for (const d of options.netdevs ?? []) {
      if (d === lo) continue; // loopback's forwarding, MTU and addresses may be set; its name and MAC stay
      if (!Number.isInteger(d.ifindex) || d.ifindex < 2 || this.netdevs.has(d.ifindex)) {
        throw new InvalidArgumentError(`netdev ${d.name}: ifindex ${d.ifindex} must be a unique integer of at least 2 (1 is the loopback device)`);
      }
      this.netdevs.set(d.ifindex, { ...d, mac: d.mac ?? new Uint8Array(6) });
    }
    this.fib = new Fib([...this.netdevs.values()].map(fibDevice), options.routes, options.neighbours);
    this.cpus = options.cpus ?? hostCpus();
    this.memory = options.memory;
    this.task = { pid: 4242, tgid: 4242, uid: 0, gid: 0, comm: 'bpfkit-test', cgroupId: 1n, ...options.task };
    this.sockets = [...(options.sockets ?? [])];
    for (const sk of this.sockets) checkSocket(sk);
    this.#random = (options.seed ?? 0x2545f491) >>> 0 || 1;
    this.#clock = options.clock ?? (() => process.hrtime.bigint());
    this.#mounts = (options.bpffs ?? ['/sys/fs/bpf']).map((p) => posix.normalize(p));
    this.constants = {
      PROT_READ: 1, PROT_WRITE: 2, MAP_SHARED: 1, PAGE_SIZE, UV_READABLE, UV_WRITABLE: 2, UV_PRIORITIZED: 8,
      RLIMIT_MEMLOCK: 8, NR_CPUS_ONLINE: this.cpus,
    };
    const kernel = this;
    const env: VmEnv = {
      cpus: this.cpus,
      kernel: this.behaviour,
      netdev: (ifindex) => this.netdevs.get(ifindex),
      fib: this.fib,
      maxInstructions: options.maxInstructions ?? 100_000_000,
      clock: (kind) => {
        const t = this.#clock();
        return kind === 'boot' ? t : kind === 'tai' ? t + 37_000_000_000n : kind === 'coarse' ? t - (t % 4_000_000n) : t;
      },
      task: this.task,
      get memory() {
        return kernel.memory;
      },
      random: () => this.#nextRandom(),
      trace: (text) => this.trace.push(text),
      sockets: this.sockets,
      redirect: (r) => this.redirects.push({ ifindex: r.ifindex, flags: r.flags, ...(r.map !== undefined ? { map: r.map, key: r.key } : {}), ...(r.kind ? { kind: r.kind } : {}), ...(r.data ? { data: r.data } : {}) }),
    };
    this.#vm = new Vm(env, HELPERS);
    this.Poller = makePoller(this);
  }

  // ---- installation -----------------------------------------------------------------------------

  /** Makes this the process's syscall interface (what useEmulatedKernel does). */
  install(): this {
    if (!this.#installed) {
      this.#previous = setNative(this);
      this.#installed = true;
      resetFeatureCache();
    }
    return this;
  }

  /** Puts back the interface that was installed before (the real addon, loaded lazily, if none). */
  restore(): void {
    if (!this.#installed) return;
    setNative(this.#previous);
    this.#installed = false;
    resetFeatureCache();
  }

  // ---- inspection -------------------------------------------------------------------------------

  /** Instructions the interpreter has executed so far, over all runs. */
  get instructionsExecuted(): number {
    return this.#vm.executed;
  }

  /** Live maps, by id. */
  maps(): EmuMap[] {
    return [...this.#maps.values()];
  }

  /** Live programs, by id. */
  programs(): EmuProgram[] {
    return [...this.#progs.values()];
  }

  /** Open file descriptors, ascending. */
  openFds(): number[] {
    return [...this.#fds.keys()].sort((a, b) => a - b);
  }

  /** Paths pinned in the emulated bpffs. */
  pinned(): string[] {
    return [...this.#pins.keys()].sort();
  }

  /** The map behind an fd (or with this name, when unique), for looking at it directly. */
  map(fdOrName: number | string): EmuMap {
    if (typeof fdOrName === 'number') {
      const e = this.#fds.get(fdOrName);
      if (!e || e.obj.kind !== 'map') throw new Error(`fd ${fdOrName} is not an emulated map`);
      return e.obj as EmuMap;
    }
    const found = this.maps().filter((m) => m.name === fdOrName);
    if (found.length !== 1) throw new Error(`${found.length} emulated maps are named ${fdOrName}`);
    return found[0]!;
  }

  /**
   * Reads the records waiting in a ring buffer map (by fd or name) the way a consumer of its mmap
   * would, and advances the consumer position past them.
   */
  readRingbuf(fdOrName: number | string): Uint8Array[] {
    const m = this.map(fdOrName);
    if (!(m instanceof RingbufMap)) throw new Error(`map ${m.name} is a ${m.type}, not a ring buffer`);
    return m.drain();
  }

  /** Creates a directory in the emulated bpffs (as mkdir does in the real one). */
  mkdir(path: string): number {
    const p = posix.normalize(path);
    if (!this.#inBpffs(p)) return -EPERM;
    if (this.#pins.has(p) || this.#dirs.has(p)) return -EEXIST;
    if (!this.#dirExists(posix.dirname(p))) return -ENOENT;
    this.#dirs.add(p);
    return 0;
  }

  /** Removes a pin (or an empty directory) from the emulated bpffs, as unlink(2)/rmdir(2) would. */
  unlink(path: string): number {
    const p = posix.normalize(path);
    const obj = this.#pins.get(p);
    if (obj) {
      this.#pins.delete(p);
      this.#dropUser(obj);
      return 0;
    }
    if (this.#dirs.has(p)) {
      for (const k of [...this.#pins.keys(), ...this.#dirs]) if (k.startsWith(`${p}/`)) return -ENOTEMPTY;
      this.#dirs.delete(p);
      return 0;
    }
    return -ENOENT;
  }

  /** Whether a path exists in the emulated bpffs (pins and directories). */
  exists(path: string): boolean {
    const p = posix.normalize(path);
    return this.#pins.has(p) || this.#dirExists(p);
  }

  /** Possible CPUs, for a library that asks the syscall interface rather than sysfs. */
  possibleCpus(): number {
    return this.cpus;
  }

  /** Online CPUs (all of them), likewise. */
  onlineCpus(): number[] {
    return Array.from({ length: this.cpus }, (_, i) => i);
  }

  /** Where the emulated bpffs is mounted, for a library that asks rather than reading /proc/self/mounts. */
  bpffsMounts(): string[] {
    return [...this.#mounts];
  }

  // ---- ObjectHost -------------------------------------------------------------------------------

  /** Whether a network device with this ifindex exists (1 is loopback; others from the netdevs option). */
  hasNetdev(ifindex: number): boolean {
    return this.netdevs.has(ifindex);
  }

  objectOfFd(fd: number): KernelObject | undefined {
    return this.#fds.get(fd)?.obj;
  }

  acquire(obj: KernelObject): void {
    obj.refs++;
  }

  release(obj: KernelObject): void {
    if (--obj.refs > 0) return;
    obj.dispose();
    if (obj.kind === 'map') this.#maps.delete(obj.id);
    else if (obj.kind === 'prog') this.#progs.delete(obj.id);
    else if (obj.kind === 'btf') this.#btfs.delete(obj.id);
  }

  #newFd(obj: KernelObject, flags = 0): number {
    let fd = FD_BASE;
    while (this.#fds.has(fd)) fd++;
    this.#fds.set(fd, { obj, flags });
    this.acquire(obj);
    if (obj.kind === 'map') (obj as EmuMap).uref++;
    return fd;
  }

  /** A user-space reference (fd or pin) went away. */
  #dropUser(obj: KernelObject): void {
    if (obj.kind === 'map') {
      const m = obj as EmuMap;
      if (--m.uref === 0) m.releaseUref();
    }
    this.release(obj);
  }

  // ---- Native: file descriptors and memory ------------------------------------------------------

  close(fd: number): number {
    const e = this.#fds.get(fd);
    if (!e) return -EBADF;
    this.#fds.delete(fd);
    this.#dropUser(e.obj);
    return 0;
  }

  mmap(fd: number, length: number, prot: number, _flags: number, offset: number): ArrayBuffer | number {
    const e = this.#fds.get(fd);
    if (!e) return -EBADF;
    const write = (prot & 2) !== 0;
    const obj = e.obj;
    if (obj instanceof RingbufMap) {
      if (offset === 0 && length <= PAGE_SIZE) return this.#mapped(obj.consumerPage, undefined, false);
      if (write) return -EPERM;
      if (offset === PAGE_SIZE && length <= PAGE_SIZE + 2 * obj.size) return this.#mapped(obj.producerPages, undefined, false);
      return -EINVAL;
    }
    if (obj instanceof ArrayMap) {
      if (!(obj.flags & F.MMAPABLE)) return -EINVAL;
      if (offset !== 0 || length > obj.storage[0]!.byteLength) return -EINVAL;
      if (write && obj.frozen) return -EPERM;
      return this.#mapped(obj.storage[0]!.buffer as ArrayBuffer, obj, write);
    }
    if (obj instanceof PerfEvent) {
      if (offset !== 0) return -EINVAL;
      return obj.map(length);
    }
    return -ENODEV;
  }

  #mapped(buf: ArrayBuffer, map: EmuMap | undefined, writable: boolean): ArrayBuffer {
    const m = this.#mappings.get(buf) ?? { map, writable: 0 };
    if (writable) {
      m.writable++;
      if (map) map.writableMappings++;
    }
    this.#mappings.set(buf, m);
    return buf;
  }

  munmap(buffer: ArrayBuffer): number {
    const m = this.#mappings.get(buffer);
    if (!m) return -EINVAL;
    if (m.writable > 0) {
      m.writable--;
      if (m.map) m.map.writableMappings--;
    }
    return 0;
  }

  perfEventOpen(attr: Uint8Array, _refs: PointerRefs | null, pid: number, cpu: number, _groupFd: number, _flags: number): number {
    const a = new AttrReader(perf_event_attr, attr, undefined);
    const type = a.u32('type');
    const config = a.u64('config');
    if (type !== perf_type_id.PERF_TYPE_SOFTWARE || config !== BigInt(perf_sw_ids.PERF_COUNT_SW_BPF_OUTPUT)) return -EOPNOTSUPP;
    if (cpu < 0 ? pid === -1 : cpu >= this.cpus) return -EINVAL;
    if (a.bit('write_backward')) return -EINVAL; // overwritable rings are not emulated
    const ev = new PerfEvent({
      id: this.#ids.perf++, cpu, type, config, sampleType: a.u64('sample_type'), wakeupEvents: a.u32('wakeup_events'),
      watermark: a.bit('watermark'), disabled: a.bit('disabled'),
    });
    return this.#newFd(ev);
  }

  ioctl(fd: number, request: number, arg?: number | ArrayBufferView): number {
    const e = this.#fds.get(fd);
    if (!e) return -EBADF;
    if (!(e.obj instanceof PerfEvent)) return -ENOTTY;
    switch (request >>> 0) {
      case PERF_EVENT_IOC_ENABLE: e.obj.enabled = true; return 0;
      case PERF_EVENT_IOC_DISABLE: e.obj.enabled = false; return 0;
      case PERF_EVENT_IOC_PAUSE_OUTPUT: e.obj.paused = typeof arg === 'number' && arg !== 0; return 0;
      default: return -EOPNOTSUPP; // PERF_EVENT_IOC_SET_BPF and the rest: attaching is not emulated
    }
  }

  socket(): number {
    return -EAFNOSUPPORT;
  }
  bind(): number {
    return -EBADF;
  }
  connect(): number {
    return -EBADF;
  }
  sendto(): number {
    return -EBADF;
  }
  recv(): number {
    return -EBADF;
  }
  setsockopt(): number {
    return -EBADF;
  }
  getsockopt(): number {
    return -EBADF;
  }
  getrlimit(): [bigint, bigint] {
    const inf = (1n << 64n) - 1n;
    return [inf, inf];
  }
  setrlimit(): number {
    return 0;
  }
  strerror(errno: number): string {
    return ERRNO_TEXT[Math.abs(errno)] ?? `Unknown error ${Math.abs(errno)}`;
  }

  /** The object to poll behind an fd: ring buffers and perf events. */
  waitable(fd: number): Waitable | undefined {
    const obj = this.#fds.get(fd)?.obj;
    return obj instanceof RingbufMap || obj instanceof PerfEvent ? obj : undefined;
  }

  #nextRandom(): number {
    let x = this.#random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#random = x >>> 0;
    return this.#random;
  }

  /** The addon's per-element map call (see Native.mapElem), as the same bpf() command with a laid-out attr. */
  mapElem(cmd: number, fd: number, key: ArrayBufferView | null, value: ArrayBufferView | null, flags: number): number {
    return mapElemVia(this, cmd, fd, key, value, flags);
  }

  /** The addon's buffer binding for mapOp (see Native.mapBind): here simply the three arguments. */
  mapBind(fd: number, key: ArrayBufferView | null, value: ArrayBufferView | null): unknown {
    return { fd, key, value };
  }

  /** A per-element command on a binding from mapBind (see Native.mapOp), through bpf(). */
  mapOp(binding: unknown, cmd: number, flags: number): number {
    const b = binding as { fd: number; key: ArrayBufferView | null; value: ArrayBufferView | null };
    // As the addon: DELETE's attr ends at the key.
    return mapElemVia(this, cmd, b.fd, b.key, cmd === bpf_cmd.BPF_MAP_DELETE_ELEM ? null : b.value, flags);
  }

  /** The addon's map-walk step (see Native.mapNextLookup): GET_NEXT_KEY, then LOOKUP, through bpf(). */
  mapNextLookup(fd: number, prev: ArrayBufferView | null, next: ArrayBufferView, value: ArrayBufferView): number {
    return mapNextLookupVia(this, fd, prev, next, value);
  }

  // ---- bpf() ------------------------------------------------------------------------------------

  bpf(cmd: number, attrBytes: Uint8Array, refs?: PointerRefs): number {
    const C = bpf_cmd;
    switch (cmd) {
      case C.BPF_MAP_CREATE: return this.#mapCreate(attrOf(C.BPF_MAP_CREATE, attrBytes, refs));
      case C.BPF_MAP_LOOKUP_ELEM: return this.#mapLookup(attrOf(C.BPF_MAP_LOOKUP_ELEM, attrBytes, refs), false);
      case C.BPF_MAP_UPDATE_ELEM: return this.#mapUpdate(attrOf(C.BPF_MAP_UPDATE_ELEM, attrBytes, refs));
      case C.BPF_MAP_DELETE_ELEM: return this.#mapDelete(attrOf(C.BPF_MAP_DELETE_ELEM, attrBytes, refs));
      case C.BPF_MAP_GET_NEXT_KEY: return this.#mapGetNextKey(attrOf(C.BPF_MAP_GET_NEXT_KEY, attrBytes, refs));
      case C.BPF_PROG_LOAD: return this.#progLoad(attrOf(C.BPF_PROG_LOAD, attrBytes, refs));
      case C.BPF_OBJ_PIN: return this.#objPin(attrOf(C.BPF_OBJ_PIN, attrBytes, refs));
      case C.BPF_OBJ_GET: return this.#objGet(attrOf(C.BPF_OBJ_GET, attrBytes, refs));
      case C.BPF_PROG_TEST_RUN: return this.#testRun(attrOf(C.BPF_PROG_TEST_RUN, attrBytes, refs));
      case C.BPF_PROG_GET_NEXT_ID: return this.#nextId(attrOf(C.BPF_PROG_GET_NEXT_ID, attrBytes, refs), this.#progs);
      case C.BPF_MAP_GET_NEXT_ID: return this.#nextId(attrOf(C.BPF_MAP_GET_NEXT_ID, attrBytes, refs), this.#maps);
      case C.BPF_PROG_GET_FD_BY_ID: return this.#fdById(attrOf(C.BPF_PROG_GET_FD_BY_ID, attrBytes, refs), this.#progs, 'prog_id');
      case C.BPF_MAP_GET_FD_BY_ID: return this.#fdById(attrOf(C.BPF_MAP_GET_FD_BY_ID, attrBytes, refs), this.#maps, 'map_id');
      case C.BPF_OBJ_GET_INFO_BY_FD: return this.#objInfo(attrOf(C.BPF_OBJ_GET_INFO_BY_FD, attrBytes, refs));
      case C.BPF_BTF_LOAD: return this.#btfLoad(attrOf(C.BPF_BTF_LOAD, attrBytes, refs));
      case C.BPF_BTF_GET_FD_BY_ID: return this.#fdById(attrOf(C.BPF_BTF_GET_FD_BY_ID, attrBytes, refs), this.#btfs, 'btf_id');
      case C.BPF_MAP_LOOKUP_AND_DELETE_ELEM: return this.#mapLookup(attrOf(C.BPF_MAP_LOOKUP_AND_DELETE_ELEM, attrBytes, refs), true);
      case C.BPF_MAP_FREEZE: return this.#mapFreeze(attrOf(C.BPF_MAP_FREEZE, attrBytes, refs));
      case C.BPF_BTF_GET_NEXT_ID: return this.#nextId(attrOf(C.BPF_BTF_GET_NEXT_ID, attrBytes, refs), this.#btfs);
      case C.BPF_MAP_LOOKUP_BATCH:
      case C.BPF_MAP_LOOKUP_AND_DELETE_BATCH:
      case C.BPF_MAP_UPDATE_BATCH:
      case C.BPF_MAP_DELETE_BATCH:
        return this.#batch(cmd, attrOf(cmd, attrBytes, refs));
      case C.BPF_LINK_GET_FD_BY_ID: return -ENOENT; // there are no links
      case C.BPF_LINK_GET_NEXT_ID: return -ENOENT;
      case C.BPF_ENABLE_STATS: return this.#enableStats(attrOf(C.BPF_ENABLE_STATS, attrBytes, refs));
      case C.BPF_PROG_BIND_MAP: return this.#progBindMap(attrOf(C.BPF_PROG_BIND_MAP, attrBytes, refs));
      default:
        // A command this kernel knows but the emulator does not implement (attaching, links, ...).
        return cmd >= 0 && cmd < C.__MAX_BPF_CMD ? -EOPNOTSUPP : -EINVAL;
    }
  }

  #mapOf(fd: number): { map: EmuMap; flags: number } | number {
    const e = this.#fds.get(fd);
    if (!e) return -EBADF;
    if (e.obj.kind !== 'map') return -EINVAL;
    return { map: e.obj as EmuMap, flags: e.flags };
  }

  #progOf(fd: number): EmuProgram | number {
    const e = this.#fds.get(fd);
    if (!e) return -EBADF;
    if (e.obj.kind !== 'prog') return -EINVAL;
    return e.obj as EmuProgram;
  }

  #mapCreate(a: AttrReader<typeof bpf_attr.map_create>): number {
    const p: MapParams = {
      type: a.u32('map_type'), keySize: a.u32('key_size'), valueSize: a.u32('value_size'), maxEntries: a.u32('max_entries'),
      flags: a.u32('map_flags'), name: a.str('map_name'), numaNode: a.u32('numa_node'), btfId: 0,
      btfKeyTypeId: a.u32('btf_key_type_id'), btfValueTypeId: a.u32('btf_value_type_id'),
      btfVmlinuxValueTypeId: a.u32('btf_vmlinux_value_type_id'), mapExtra: a.u64('map_extra'),
    };
    const name = a.raw('map_name');
    if (name.length === bpf_attr.map_create.$sizeof.map_name && name.indexOf(0) < 0) return -EINVAL; // the name must end within BPF_OBJ_NAME_LEN
    let innerMap: EmuMap | undefined;
    const innerFd = a.u32('inner_map_fd');
    const t = p.type;
    const M = bpf_map_type;
    if (t === M.BPF_MAP_TYPE_ARRAY_OF_MAPS || t === M.BPF_MAP_TYPE_HASH_OF_MAPS) {
      const inner = this.#mapOf(innerFd);
      if (typeof inner === 'number') return inner;
      innerMap = inner.map;
    }
    let btf: EmuBtf | undefined;
    if (p.btfKeyTypeId || p.btfValueTypeId || p.btfVmlinuxValueTypeId) {
      const e = this.#fds.get(a.u32('btf_fd'));
      if (!e) return -EBADF;
      if (!(e.obj instanceof EmuBtf)) return -EINVAL;
      btf = e.obj;
      const check = (id: number, size: number) => {
        if (!id) return true;
        try {
          return btf!.btf.sizeof(id) === size;
        } catch {
          return false;
        }
      };
      if (!check(p.btfKeyTypeId, p.keySize) || !check(p.btfValueTypeId, p.valueSize)) return -EINVAL;
      if (t === M.BPF_MAP_TYPE_RINGBUF || t === M.BPF_MAP_TYPE_PERF_EVENT_ARRAY || t === M.BPF_MAP_TYPE_PROG_ARRAY || t === M.BPF_MAP_TYPE_ARRAY_OF_MAPS || t === M.BPF_MAP_TYPE_HASH_OF_MAPS) return -EINVAL;
      p.btfId = btf.id;
    }
    const m = createMap(p, { host: this, innerMap, ringbuf: (params) => new RingbufMap(this, params), netMap: (type, params) => createNetMap(type, params, this) });
    if (typeof m === 'number') return m;
    m.id = this.#ids.map++;
    this.#maps.set(m.id, m);
    return this.#newFd(m, 0);
  }

  #mapLookup(a: ElemAttr, andDelete: boolean): number {
    const r = this.#mapOf(a.u32('map_fd'));
    if (typeof r === 'number') return r;
    const { map, flags: fdFlags } = r;
    const flags = elemFlags(a);
    if (andDelete) {
      const queue = map.type === 'queue' || map.type === 'stack';
      if (flags && queue) return -EINVAL;
      if (flags & ~BPF_F_LOCK) return -EINVAL;
      let err = sysAccess(map, fdFlags, false);
      if (!err) err = sysAccess(map, fdFlags, true);
      if (err) return err;
      if (!['hash', 'percpu_hash', 'lru_hash', 'lru_percpu_hash', 'queue', 'stack'].includes(map.type)) return -ENOTSUPP;
    } else {
      if (flags & ~BPF_F_LOCK) return -EINVAL;
      const err = sysAccess(map, fdFlags, false);
      if (err) return err;
    }
    if (flags & BPF_F_LOCK) return -EINVAL;
    // __bpf_copy_key: a key pointer for a map without keys (ringbuf, queue, ...) is EINVAL.
    if (!map.keySize && a.ptr('key')?.length) return -EINVAL;
    const key = map.keySize ? a.need('key', map.keySize) : null;
    if (typeof key === 'number') return key;
    const out = a.need('value', map.sysValueSize);
    if (typeof out === 'number') return out;
    const tmp = new Uint8Array(map.sysValueSize);
    const res = andDelete ? map.sysLookupAndDelete(key, tmp, flags) : map.sysLookup(key, tmp);
    if (res < 0) return res;
    out.set(tmp);
    return 0;
  }

  #mapUpdate(a: ElemAttr): number {
    const r = this.#mapOf(a.u32('map_fd'));
    if (typeof r === 'number') return r;
    const { map } = r;
    const flags = elemFlags(a);
    if (flags & BPF_F_LOCK) return -EINVAL;
    const err = sysAccess(map, r.flags, true);
    if (err) return err;
    const key = map.keySize ? a.need('key', map.keySize) : null;
    if (typeof key === 'number') return key;
    const value = a.need('value', map.sysValueSize);
    if (typeof value === 'number') return value;
    return map.sysUpdate(key, value, flags);
  }

  #mapDelete(a: ElemAttr): number {
    const r = this.#mapOf(a.u32('map_fd'));
    if (typeof r === 'number') return r;
    const err = sysAccess(r.map, r.flags, true);
    if (err) return err;
    const key = r.map.keySize ? a.need('key', r.map.keySize) : null;
    if (typeof key === 'number') return key;
    return r.map.sysDelete(key);
  }

  #mapGetNextKey(a: ElemAttr): number {
    const r = this.#mapOf(a.u32('map_fd'));
    if (typeof r === 'number') return r;
    const err = sysAccess(r.map, r.flags, false);
    if (err) return err;
    const given = a.ptr('key');
    let key: Uint8Array | null = null;
    if (given && r.map.keySize) {
      if (given.length < r.map.keySize) return -EFAULT;
      key = given.subarray(0, r.map.keySize);
    }
    const out = a.need('next_key', r.map.keySize);
    if (typeof out === 'number') return out;
    const tmp = new Uint8Array(r.map.keySize);
    const res = r.map.sysGetNextKey(key, tmp);
    if (res < 0) return res;
    out.set(tmp);
    return 0;
  }

  #mapFreeze(a: ElemAttr): number {
    const r = this.#mapOf(a.u32('map_fd'));
    if (typeof r === 'number') return r;
    if (r.map.type === 'struct_ops') return -ENOTSUPP;
    // A frozen map's fd is no longer writable (map_get_sys_perms): where freezing checks that first,
    // a second freeze is EPERM; before (6.1), freezing does not look at the fd's mode at all.
    if (this.behaviour.freezeNeedsWrite && sysAccess(r.map, r.flags, true)) return -EPERM;
    if (r.map.writableMappings > 0 || r.map.frozen) return -EBUSY;
    r.map.frozen = true;
    return 0;
  }

  #batch(cmd: number, a: AttrReader<typeof bpf_attr.batch>): number {
    const r = this.#mapOf(a.u32('map_fd'));
    if (typeof r === 'number') return r;
    const { map } = r;
    const count = a.u32('count');
    const C = bpf_cmd;
    const lookup = cmd === C.BPF_MAP_LOOKUP_BATCH || cmd === C.BPF_MAP_LOOKUP_AND_DELETE_BATCH;
    const del = cmd === C.BPF_MAP_LOOKUP_AND_DELETE_BATCH || cmd === C.BPF_MAP_DELETE_BATCH;
    const isArray = map instanceof ArrayMap;
    if (!map.batchable || (isArray && del)) return -ENOTSUPP;
    if (a.u64('flags') !== 0n) return -EINVAL;
    const elemFlags = Number(a.u64('elem_flags') & 0xffffffffn);
    let err = lookup ? sysAccess(map, r.flags, false) : 0;
    if (!err && (del || !lookup)) err = sysAccess(map, r.flags, true);
    if (err) return err;
    if (count === 0) return 0;
    const ks = map.keySize;
    const vs = map.sysValueSize;
    if (lookup) {
      if (elemFlags & ~BPF_F_LOCK) return -EINVAL;
      const inBatch = a.ptr('in_batch');
      const cursor = cmd === C.BPF_MAP_LOOKUP_BATCH && inBatch && inBatch.length >= 4 ? new DataView(inBatch.buffer, inBatch.byteOffset, 4).getUint32(0, true) : 0;
      const keysOut = a.need('keys', count * ks);
      const valsOut = a.need('values', count * vs);
      if (typeof keysOut === 'number') return keysOut;
      if (typeof valsOut === 'number') return valsOut;
      // The batch token is a position in the iteration order (lookup-and-delete always starts over).
      const keys = map.keysFrom(cursor, count);
      let n = 0;
      const tmp = new Uint8Array(vs);
      for (const k of keys) {
        if (map.sysLookup(k, tmp) < 0) continue;
        keysOut.set(k, n * ks);
        valsOut.set(tmp, n * vs);
        if (del) map.sysDelete(k);
        n++;
      }
      a.setU32('count', n);
      const next = del ? 0 : cursor + keys.length;
      const outBatch = a.ptr('out_batch');
      if (outBatch && outBatch.length >= 4) new DataView(outBatch.buffer, outBatch.byteOffset, 4).setUint32(0, next, true);
      return n === 0 || map.keysFrom(next, 1).length === 0 ? -ENOENT : 0;
    }
    const keysIn = a.need('keys', count * ks);
    if (typeof keysIn === 'number') return keysIn;
    let valsIn: Uint8Array | null = null;
    if (!del) {
      const v = a.need('values', count * vs);
      if (typeof v === 'number') return v;
      valsIn = v;
    }
    let n = 0;
    let res = 0;
    for (; n < count; n++) {
      const k = keysIn.subarray(n * ks, (n + 1) * ks);
      res = del ? map.sysDelete(k) : map.sysUpdate(k, valsIn!.subarray(n * vs, (n + 1) * vs), elemFlags);
      if (res < 0) break;
    }
    a.setU32('count', n);
    return res < 0 ? res : 0;
  }

  #progLoad(a: AttrReader<typeof bpf_attr.prog_load>): number {
    const progType = a.u32('prog_type');
    if (progType === bpf_prog_type.BPF_PROG_TYPE_UNSPEC || progType >= bpf_prog_type.__MAX_BPF_PROG_TYPE) return -EINVAL;
    const n = a.u32('insn_cnt');
    const insns = a.need('insns', n * bpf_insn.$size);
    if (typeof insns === 'number') return insns;
    const licenseBuf = a.ptr('license');
    const license = licenseBuf ? new TextDecoder().decode(licenseBuf.subarray(0, Math.max(0, licenseBuf.indexOf(0)))) : '';
    const logLevel = a.u32('log_level');
    const logSize = a.u32('log_size');
    const logBuf = a.ptr('log_buf');
    // bpf_verifier_log_attr_valid: buffer and size together, a buffer needs a level, known level bits.
    if (!!logBuf !== !!logSize || (logBuf && !logLevel) || logLevel & ~0xf || logSize > 0x3fffffff) return -EINVAL;
    const name = a.str('prog_name');
    if (!/^[A-Za-z0-9_.]*$/.test(name)) return -EINVAL;
    const progFlags = a.u32('prog_flags');
    if (progFlags & ~0x7ff) return -EINVAL;
    let btf: EmuBtf | undefined;
    const btfFd = a.u32('prog_btf_fd');
    const funcInfoCnt = a.u32('func_info_cnt');
    const lineInfoCnt = a.u32('line_info_cnt');
    if (btfFd) {
      const e = this.#fds.get(btfFd);
      if (!e) return -EBADF;
      if (!(e.obj instanceof EmuBtf)) return -EINVAL;
      btf = e.obj;
    } else if (funcInfoCnt || lineInfoCnt) {
      return -EINVAL;
    }
    const fdArrayBuf = a.ptr('fd_array');
    const fdArray = fdArrayBuf ? new Int32Array(fdArrayBuf.buffer.slice(fdArrayBuf.byteOffset, fdArrayBuf.byteOffset + (fdArrayBuf.byteLength & ~3))) : null;
    const funcRec = a.u32('func_info_rec_size');
    const lineRec = a.u32('line_info_rec_size');
    const res = load(
      {
        progType, insns: insns.slice(), license, name, expectedAttachType: a.u32('expected_attach_type'), progFlags, btf: btf?.bytes,
        funcInfo: a.ptr('func_info')?.subarray(0, funcInfoCnt * funcRec) ?? null, funcInfoRecSize: funcRec,
        lineInfo: a.ptr('line_info')?.subarray(0, lineInfoCnt * lineRec) ?? null, lineInfoRecSize: lineRec, fdArray,
        kernel: this.behaviour,
      },
      (fd) => {
        const m = this.#mapOf(fd);
        return typeof m === 'number' ? m : m.map;
      },
    );
    if (!res.ok) {
      if (logLevel) a.writeLog(res.log, 'log_buf', 'log_size', 'log_true_size');
      return -res.errno;
    }
    if (logLevel && !a.writeLog(res.log, 'log_buf', 'log_size', 'log_true_size')) return -ENOSPC;
    for (const m of res.maps) this.acquire(m);
    const prog = new EmuProgram(this, {
      progType, name, code: res.code, maps: res.maps, tag: programTag(insns, this.behaviour.tagHash), gpl: gplCompatible(license), loadTime: this.#clock(),
      uid: process.getuid?.() ?? 0, btfId: btf?.id ?? 0, expectedAttachType: a.u32('expected_attach_type'), flags: progFlags, nFuncInfo: funcInfoCnt,
      nLineInfo: lineInfoCnt,
    });
    prog.id = this.#ids.prog++;
    this.#progs.set(prog.id, prog);
    return this.#newFd(prog);
  }

  #btfLoad(a: AttrReader<typeof bpf_attr.btf_load>): number {
    const size = a.u32('btf_size');
    if (size > 16 << 20) return -E2BIG;
    const bytes = a.need('btf', size);
    if (typeof bytes === 'number') return bytes;
    let btf: Btf;
    try {
      if (size < btf_header.$size || bytes[0] !== 0x9f || bytes[1] !== 0xeb) throw new Error('Invalid magic');
      btf = Btf.parse(bytes);
      btf.validate(); // the kernel resolves every type at BPF_BTF_LOAD
    } catch (e) {
      if (a.u32('btf_log_level')) a.writeLog(`${(e as Error).message}\n`, 'btf_log_buf', 'btf_log_size', 'btf_log_true_size');
      return -EINVAL;
    }
    const obj = new EmuBtf(bytes.slice(), btf);
    obj.id = this.#ids.btf++;
    this.#btfs.set(obj.id, obj);
    return this.#newFd(obj);
  }

  #inBpffs(p: string): boolean {
    return this.#mounts.some((m) => p === m || p.startsWith(`${m}/`));
  }

  #dirExists(p: string): boolean {
    if (this.#mounts.includes(p) || this.#dirs.has(p)) return true;
    try {
      return existsSync(p) && statSync(p).isDirectory();
    } catch {
      return false;
    }
  }

  #path(a: ObjAttr): string | number {
    const buf = a.ptr('pathname');
    if (!buf) return -EFAULT;
    const end = buf.indexOf(0);
    const raw = new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
    if (!raw.startsWith('/')) return -EINVAL;
    return posix.normalize(raw);
  }

  #objPin(a: ObjAttr): number {
    const p = this.#path(a);
    if (typeof p === 'number') return p;
    const e = this.#fds.get(a.u32('bpf_fd'));
    if (!e) return -EBADF;
    if (e.obj.kind !== 'map' && e.obj.kind !== 'prog') return -EINVAL;
    if (!this.#dirExists(posix.dirname(p))) return -ENOENT;
    if (!this.#inBpffs(p)) return -EPERM;
    if (this.#pins.has(p) || this.#dirExists(p)) return -EEXIST;
    this.#pins.set(p, e.obj);
    this.acquire(e.obj);
    if (e.obj.kind === 'map') (e.obj as EmuMap).uref++;
    return 0;
  }

  #objGet(a: ObjAttr): number {
    const p = this.#path(a);
    if (typeof p === 'number') return p;
    const flags = a.u32('file_flags');
    if (flags & ~(F.RDONLY | F.WRONLY) || (flags & F.RDONLY && flags & F.WRONLY)) return -EINVAL;
    const obj = this.#pins.get(p);
    if (!obj) {
      if (this.#dirExists(p)) return -EPERM;
      if (!this.#inBpffs(p) && existsSync(p)) return -EINVAL;
      return this.#dirExists(posix.dirname(p)) || this.#inBpffs(p) ? -ENOENT : -ENOTDIR;
    }
    if (obj.kind !== 'map' && flags) return -EINVAL;
    return this.#newFd(obj, flags);
  }

  #nextId(a: IdAttr, table: Map<number, KernelObject>): number {
    const start = a.u32('start_id');
    let next = 0;
    for (const id of table.keys()) if (id > start && (next === 0 || id < next)) next = id;
    if (!next) return -ENOENT;
    a.setU32('next_id', next);
    return 0;
  }

  #fdById(a: IdAttr, table: Map<number, KernelObject>, id: 'prog_id' | 'map_id' | 'btf_id'): number {
    const flags = a.u32('open_flags');
    if (id === 'map_id' ? flags & ~(F.RDONLY | F.WRONLY) : flags) return -EINVAL;
    const obj = table.get(a.u32(id));
    if (!obj) return -ENOENT;
    return this.#newFd(obj, flags);
  }

  #enableStats(a: AttrReader<typeof bpf_attr.enable_stats>): number {
    if (a.u32('type') !== bpf_stats_type.BPF_STATS_RUN_TIME) return -EINVAL;
    this.#statsHandles++;
    return this.#newFd(new StatsHandle(() => this.#statsHandles--));
  }

  #progBindMap(a: AttrReader<typeof bpf_attr.prog_bind_map>): number {
    const prog = this.#progOf(a.u32('prog_fd'));
    if (typeof prog === 'number') return prog;
    const r = this.#mapOf(a.u32('map_fd'));
    if (typeof r === 'number') return r;
    if (a.u32('flags')) return -EINVAL;
    if (!prog.maps.includes(r.map)) {
      prog.maps.push(r.map);
      this.acquire(r.map);
    }
    return 0;
  }

  // ---- BPF_OBJ_GET_INFO_BY_FD ---------------------------------------------------------------------

  #objInfo(a: AttrReader<typeof bpf_attr.info>): number {
    const e = this.#fds.get(a.u32('bpf_fd'));
    if (!e) return -EBADF;
    const ulen = a.u32('info_len');
    const info = a.ptr('info');
    if (!info || info.length < ulen) return -EFAULT;
    const obj = e.obj;
    // What this kernel fills in: bpf_map_info up to map_extra (the hash fields are for signed maps).
    const size = obj.kind === 'map' ? offsetofend(bpf_map_info, 'map_extra') : obj.kind === 'prog' ? bpf_prog_info.$size : obj.kind === 'btf' ? bpf_btf_info.$size : 0;
    if (!size) return -EINVAL;
    for (let i = size; i < ulen; i++) if (info[i] !== 0) return -E2BIG;
    const len = Math.min(ulen, size);
    // The fields user space set (counts and pointers of arrays it wants filled), as far as it passed them.
    const user = info.subarray(0, len);
    let out: Uint8Array;
    if (obj instanceof EmuMap) {
      const p = obj.params;
      out = new StructWriter(bpf_map_info, size)
        .u32('type', p.type).u32('id', obj.id).u32('key_size', p.keySize).u32('value_size', p.valueSize)
        .u32('max_entries', p.maxEntries).u32('map_flags', p.flags).set('name', new TextEncoder().encode(p.name), true)
        .u32('btf_vmlinux_value_type_id', p.btfVmlinuxValueTypeId).u32('btf_id', p.btfId)
        .u32('btf_key_type_id', p.btfKeyTypeId).u32('btf_value_type_id', p.btfValueTypeId).u64('map_extra', p.mapExtra).bytes;
    } else if (obj instanceof EmuProgram) {
      const f = obj.facts;
      const u = a.inner(bpf_prog_info, user);
      const xlated = obj.xlated();
      const want = u.u32('xlated_prog_len');
      const insnsTo = u.ptr('xlated_prog_insns');
      if (want && insnsTo) insnsTo.set(xlated.subarray(0, Math.min(want, xlated.length, insnsTo.length)));
      const nIds = u.u32('nr_map_ids');
      const idsTo = u.ptr('map_ids');
      if (nIds && idsTo) {
        const ids = new DataView(idsTo.buffer, idsTo.byteOffset, idsTo.byteLength);
        obj.maps.slice(0, Math.min(nIds, idsTo.byteLength / 4)).forEach((m, i) => ids.setUint32(i * 4, m.id, true));
      }
      out = new StructWriter(bpf_prog_info)
        .u32('type', obj.progType).u32('id', obj.id).set('tag', f.tag).u32('xlated_prog_len', xlated.length)
        .u64('load_time', f.loadTime).u32('created_by_uid', f.uid).u32('nr_map_ids', obj.maps.length)
        .set('name', new TextEncoder().encode(obj.name), true).bit('gpl_compatible', f.gpl).u32('btf_id', f.btfId)
        .u32('func_info_rec_size', f.nFuncInfo ? bpf_func_info.$size : 0).u32('nr_func_info', f.nFuncInfo)
        .u32('nr_line_info', f.nLineInfo).u32('line_info_rec_size', f.nLineInfo ? bpf_line_info.$size : 0)
        .u64('run_time_ns', obj.runTimeNs).u64('run_cnt', obj.runCount).u32('verified_insns', instructionCount(obj.code)).bytes;
    } else if (obj instanceof EmuBtf) {
      const u = a.inner(bpf_btf_info, user);
      const want = u.u32('btf_size');
      const to = u.ptr('btf');
      if (want && to) to.set(obj.bytes.subarray(0, Math.min(want, obj.bytes.length, to.length)));
      out = new StructWriter(bpf_btf_info).u32('btf_size', obj.bytes.length).u32('id', obj.id).bytes;
    } else {
      return -EINVAL;
    }
    info.set(out.subarray(0, len));
    a.setU32('info_len', len);
    return 0;
  }

  // ---- BPF_PROG_TEST_RUN --------------------------------------------------------------------------

  #testRun(a: AttrReader<typeof bpf_attr.test>): number {
    const prog = this.#progOf(a.u32('prog_fd'));
    if (typeof prog === 'number') return prog;
    const dataSizeIn = a.u32('data_size_in');
    const dataSizeOut = a.u32('data_size_out');
    const repeat = a.u32('repeat');
    const ctxSizeIn = a.u32('ctx_size_in');
    const ctxSizeOut = a.u32('ctx_size_out');
    const flags = a.u32('flags');
    const cpuArg = a.u32('cpu');
    const batch = a.u32('batch_size');
    // bpf_prog_test_run (syscall.c): a context pointer and its size come together.
    if (!!ctxSizeIn !== !!a.ptr('ctx_in') || !!ctxSizeOut !== !!a.ptr('ctx_out')) return -EINVAL;
    const dataIn = dataSizeIn ? a.need('data_in', dataSizeIn) : null;
    if (typeof dataIn === 'number') return dataIn;
    const ctxIn = ctxSizeIn ? a.need('ctx_in', ctxSizeIn) : null;
    if (typeof ctxIn === 'number') return ctxIn;
    const dataOut = a.ptr('data_out');
    const ctxOut = a.ptr('ctx_out');
    const type = PROG_TYPES[prog.progType];
    const vm = this.#vm;
    let cpu = this.cpu;
    let setup: RunSetup | number;
    switch (type) {
      case 'xdp':
        if (flags & ~2) return -EINVAL;
        if (flags & 2) return -EOPNOTSUPP; // live frames are not emulated
        if (batch) return -EINVAL;
        // Measured on 6.18: XDP takes a context only from ctx_in (ctx_out alone is left untouched).
        setup = xdpSetup(vm, dataIn ?? new Uint8Array(0), ctxIn, !!a.ptr('ctx_in'));
        break;
      case 'sched_cls':
      case 'sched_act':
      case 'socket_filter':
      case 'cgroup_skb':
      case 'lwt_in':
      case 'lwt_out':
      case 'lwt_xmit':
      case 'lwt_seg6local':
        if (flags || cpuArg || batch) return -EINVAL;
        setup = skbSetup(vm, dataIn ?? new Uint8Array(0), ctxIn, !!(a.ptr('ctx_in') || ctxOut), type === 'sched_cls' || type === 'sched_act');
        break;
      case 'raw_tracepoint':
      case 'raw_tracepoint_writable':
        // bpf_prog_test_run_raw_tp's order: unsupported fields, the context's size (against what
        // the program reads), the CPU without BPF_F_TEST_RUN_ON_CPU, then the CPU itself.
        if (a.ptr('data_in') || dataOut || ctxOut || a.u32('duration') || repeat || batch) return -EINVAL;
        if (ctxSizeIn < prog.code.maxCtxOffset || ctxSizeIn > 96) return -EINVAL;
        if (!(flags & 1) && cpuArg) return -EINVAL;
        if (flags & 1 && cpuArg !== this.cpu) {
          if (cpuArg >= this.cpus) return -ENXIO;
          cpu = cpuArg;
        }
        setup = bufferSetup(ctxIn, type === 'raw_tracepoint_writable', 'the context (the ctx_in arguments)');
        break;
      case 'syscall':
        if (dataIn || dataOut || ctxOut || ctxSizeOut || repeat || flags || cpuArg || batch) return -EINVAL;
        if (ctxSizeIn > 0xffff) return -EINVAL;
        setup = bufferSetup(ctxIn, true, 'the context (ctx_in)');
        break;
      case 'tracepoint':
      case 'kprobe':
      case 'perf_event':
      case 'tracing':
      case 'lsm':
        if ((this.#options.testRun ?? 'all') === 'kernel') return -ENOTSUPP;
        if (flags & ~1 || cpuArg >= this.cpus) return -EINVAL;
        if (flags & 1) cpu = cpuArg;
        setup = bufferSetup(ctxIn, false, `the context (the ctx_in bytes given for this ${type} program)`);
        break;
      default:
        return -ENOTSUPP;
    }
    if (typeof setup === 'number') return setup;
    vm.packet = setup.packet;
    vm.isSkb = setup.skb;
    vm.skb = setup.skbState;
    vm.isXdp = setup.xdp;
    vm.cpu = cpu;
    // cgroup_skb: 0 or 1, egress (BPF_CGROUP_INET_EGRESS) 0..3 (check_return_code).
    vm.retRange = type === 'cgroup_skb' ? [0, prog.expectedAttachType === 1 ? 3 : 1] : undefined;
    vm.retRangeOf = type;
    const runs = Math.max(1, repeat);
    const start = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) vm.run(prog.code, setup.ctx);
    const elapsed = process.hrtime.bigint() - start;
    if (this.#statsHandles > 0) {
      prog.runCount += BigInt(runs);
      prog.runTimeNs += elapsed;
    }
    a.setU32('retval', vm.rl[0]!);
    const perRun = elapsed / BigInt(runs);
    a.setU32('duration', perRun > 0xffffffffn ? 0xffffffff : Number(perRun));
    const { data, ctx } = setup.finish();
    let err = 0;
    if (data) {
      a.setU32('data_size_out', data.length);
      if (dataOut) {
        const room = dataSizeOut ? Math.min(dataSizeOut, dataOut.length) : dataOut.length;
        if (data.length > room) err = -ENOSPC;
        dataOut.set(data.subarray(0, Math.min(room, data.length)));
      }
    }
    if (type === 'syscall' && ctxIn && ctx) ctxIn.set(ctx.subarray(0, ctxIn.length));
    if (ctx && ctxOut && type !== 'syscall') {
      a.setU32('ctx_size_out', ctx.length);
      const room = Math.min(ctxSizeOut, ctxOut.length);
      if (ctx.length > room) err = -ENOSPC;
      ctxOut.set(ctx.subarray(0, Math.min(room, ctx.length)));
    }
    return err;
  }
}

/** Instructions as the verifier counts them: an ld_imm64 (two slots) is one. */
function instructionCount(code: Code): number {
  let n = 0;
  const ldImm64 = CLS.LD | MODE.IMM | SIZE.DW;
  for (let i = 0; i < code.n; i++, n++) if (code.op[i] === ldImm64) i++;
  return n;
}

function hostCpus(): number {
  try {
    return possibleCpus();
  } catch {
    return 1;
  }
}

/** The Poller class of one emulated kernel: readiness of ring buffers and perf events, as epoll reports it. */
function makePoller(kernel: EmulatedKernel): new (fd: number, callback: (status: number, events: number) => void) => NativePoller {
  return class EmulatedPoller implements NativePoller, Watcher {
    readonly #fd: number;
    readonly #callback: (status: number, events: number) => void;
    #target: Waitable | undefined;
    #events = 0;
    #scheduled = false;
    #ref = true;
    #keepAlive: ReturnType<typeof setInterval> | undefined;
    #closed = false;

    constructor(fd: number, callback: (status: number, events: number) => void) {
      this.#fd = fd;
      this.#callback = callback;
    }

    start(events: number): number {
      if (this.#closed) return -EBADF;
      const target = kernel.waitable(this.#fd);
      if (!target) return kernel.objectOfFd(this.#fd) ? -EPERM : -EBADF;
      this.#target = target;
      this.#events = events;
      target.watchers.add(this);
      this.#updateKeepAlive();
      if (target.readable()) this.notify();
      return 0;
    }

    stop(): number {
      this.#target?.watchers.delete(this);
      this.#events = 0;
      this.#updateKeepAlive();
      return 0;
    }

    ref(on: boolean): number {
      this.#ref = on;
      this.#updateKeepAlive();
      return 0;
    }

    close(): number {
      this.stop();
      this.#closed = true;
      return 0;
    }

    /** The object woke its waiters: report readability on the next turn of the event loop. */
    notify(): void {
      if (this.#scheduled || !(this.#events & UV_READABLE)) return;
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        const t = this.#target;
        if (!t || !(this.#events & UV_READABLE) || !t.readable()) return;
        this.#callback(0, UV_READABLE);
        // Level-triggered, as libuv's epoll: still readable after the callback means another report.
        if (this.#events & UV_READABLE && t.readable()) this.notify();
      });
    }

    #updateKeepAlive(): void {
      const want = this.#ref && this.#events !== 0 && !this.#closed;
      if (want && !this.#keepAlive) this.#keepAlive = setInterval(() => {}, 1 << 30);
      else if (!want && this.#keepAlive) {
        clearInterval(this.#keepAlive);
        this.#keepAlive = undefined;
      }
    }
  };
}

/** Creates an EmulatedKernel and installs it as the process's syscall interface. Call `restore()` when done. */
export function useEmulatedKernel(options: EmulatedKernelOptions = {}): EmulatedKernel {
  return new EmulatedKernel(options).install();
}

