/**
 * attach(): auto-attach by the program's section, as libbpf does for skeletons. The section says
 * the kind of hook and often the target (`tracepoint/syscalls/sys_enter_execve`,
 * `uprobe//usr/bin/bash:readline`, `tc/ingress`); what it cannot say (an interface, a cgroup, a
 * socket, a process) comes from the options. USDT sections name the binary, provider and probe
 * (`usdt//usr/bin/python3:python:function__entry`); iterators name what they walk (`iter/task`).
 */
import { InvalidArgumentError, NotSupportedError } from '../errors.js';
import { setAttachByKind, type Program } from '../objects/program.js';
import { matchSection, type AttachKind } from '../spec/section-names.js';
import type { AttachType, ProgType } from '../abi/constants.js';
import { attachCgroup } from './cgroup.js';
import { attachIter, type IterOptions } from './iter.js';
import { attachKprobe, attachKsyscall } from './kprobe.js';
import { attachKprobeMulti } from './kprobe-multi.js';
import { attachUprobeMulti } from './uprobe-multi.js';
import type { Link } from './link.js';
import { attachLsm } from './lsm.js';
import { attachPerfEvent, type PerfEventOptions } from './perf-event.js';
import { attachRawTracepoint, attachTracing } from './raw-tracepoint.js';
import { attachSkLookup } from './sk-lookup.js';
import { attachSocketFilter } from './socket-filter.js';
import { attachTc, type TcDirection } from './tc.js';
import { attachTracepoint } from './tracepoint.js';
import { attachUprobe } from './uprobe.js';
import { attachUsdt } from './usdt.js';
import { attachXdp, type XdpMode } from './xdp.js';

/**
 * Options of {@link attach} and {@link Program.attach}: where to attach, for each kind of program
 * (interface, cgroup, symbol, tracepoint, ...); the attach function of the program's kind says
 * which it reads.
 */
export interface AttachOptions {
  /** XDP and tc: the interface (name or index). */
  iface?: number | string;
  /** cgroup programs: the cgroup v2 directory. */
  cgroup?: string;
  /** cgroup programs: the attach type, when the section does not say it. */
  attachType?: AttachType;
  /** Socket filters: the socket fd. */
  socket?: number | { fd: number };
  /** uprobes, USDT probes and perf events: only this process. */
  pid?: number;
  /** uprobes and USDT probes whose section names no binary ("uprobe", "usdt"): the binary or library. */
  binary?: string;
  /** USDT probes whose section names none ("usdt"): the provider and probe name. */
  usdt?: { provider: string; name: string };
  /** sk_lookup: the network namespace (a path such as /run/netns/<name>, or an fd); default the caller's. */
  netns?: string | number;
  /** Iterators: the map, task or cgroup to walk. */
  iter?: IterOptions;
  /** uprobes/kprobes whose section names no function: a symbol, or a file offset for uprobes. */
  symbol?: string | number;
  /** tc: the direction, when the section does not say it (a plain "tc" or "classifier" section). */
  direction?: TcDirection;
  /** XDP mode. */
  xdpMode?: XdpMode;
  /** XDP and tc: attach over netlink instead of with a bpf_link. */
  forceNetlink?: boolean;
  /** perf_event programs: the event; default a software cpu-clock at 99 Hz on every CPU. */
  perfEvent?: PerfEventOptions;
  /** Tracepoints: "<category>/<name>" for a bare "tracepoint" section; raw tracepoints: the name. */
  tracepoint?: string;
  /** bpf_cookie, for the kinds that take one; for USDT probes, what bpf_usdt_cookie() returns. */
  cookie?: bigint;
}

const CGROUP_TYPES: readonly ProgType[] = ['cgroup_skb', 'cgroup_sock', 'cgroup_sock_addr', 'sock_ops', 'cgroup_device', 'cgroup_sysctl', 'cgroup_sockopt'];

/** The attach kind of a program without a section (opened by id or from a pin): from its type. */
function kindFromType(type: ProgType, attachType: AttachType | undefined): AttachKind | undefined {
  if (CGROUP_TYPES.includes(type)) return 'cgroup';
  if (type === 'tracing' && attachType === 'trace_iter') return 'iter';
  switch (type) {
    case 'xdp': return 'xdp';
    case 'sched_cls': return 'tc';
    case 'socket_filter': return 'socket_filter';
    case 'perf_event': return 'perf_event';
    case 'tracepoint': return 'tracepoint';
    case 'raw_tracepoint': case 'raw_tracepoint_writable': return 'raw_tracepoint';
    case 'tracing': return 'tracing';
    case 'lsm': return 'lsm';
    case 'sk_lookup': return 'sk_lookup';
    default: return undefined;
  }
}

function describe(prog: Program): string {
  return `program ${prog.name || '(unnamed)'}${prog.sectionName ? ` (section ${prog.sectionName})` : ` (${prog.type})`}`;
}

function need<T>(value: T | undefined, prog: Program, what: string): T {
  if (value === undefined || value === null || value === '') {
    throw new InvalidArgumentError(`attach: ${describe(prog)} needs ${what}`);
  }
  return value;
}

/** "func", "func+0x10", "func+16" -> symbol and offset. */
function symbolAndOffset(spec: string): { symbol: string; offset: number } {
  const m = /^(.+?)\+(0x[0-9a-fA-F]+|\d+)$/.exec(spec);
  if (!m) return { symbol: spec, offset: 0 };
  return { symbol: m[1]!, offset: Number(m[2]) };
}

function numberOrSymbol(spec: string): string | number {
  return /^(0x[0-9a-fA-F]+|\d+)$/.test(spec) ? Number(spec) : spec;
}

/**
 * Attaches a program where its section says, taking what the section cannot say from options.
 *
 * Requires Linux 3.19 (socket filters, the oldest hook); each kind of hook needs the version its
 * own attach function states, e.g. {@link attachTracepoint} 4.7, {@link attachUprobeMulti} 6.6.
 * @throws {@link InvalidArgumentError} (`ERR_BPFKIT_INVALID_ARG`) when the section names no hook
 *   or the options lack what it cannot say (an interface, a cgroup, a socket, a binary).
 * @throws {@link NotSupportedError} (`ERR_BPFKIT_NOT_SUPPORTED`) for a program type or section
 *   bpfkit cannot auto-attach, or a hook the kernel lacks.
 * @throws {@link BpfSyscallError} (`code` is the errno name) when the kernel refuses the attachment.
 */
export function attach(prog: Program, options: AttachOptions = {}): Link {
  const m = prog.sectionName ? matchSection(prog.sectionName) : undefined;
  const kind = m?.def.attach ?? kindFromType(prog.type, prog.attachType);
  const target = prog.attachTarget || m?.target || '';
  const cookie = options.cookie !== undefined ? { cookie: options.cookie } : {};
  if (!kind) {
    throw new NotSupportedError(`auto-attaching ${describe(prog)}`, 'bpfkit cannot tell where this kind of program attaches; use the attach function for its hook', undefined, { lackedBy: 'bpfkit' });
  }
  switch (kind) {
    case 'kprobe':
    case 'kretprobe': {
      const spec = target || (typeof options.symbol === 'string' ? options.symbol : undefined);
      const { symbol, offset } = symbolAndOffset(need(spec, prog, 'a kernel function: name it in the section (kprobe/<function>) or pass { symbol }'));
      return attachKprobe(prog, symbol, { retprobe: kind === 'kretprobe', offset, ...cookie });
    }
    case 'kprobe_multi':
    case 'kretprobe_multi': {
      const pattern = need(target || (typeof options.symbol === 'string' ? options.symbol : undefined), prog,
        'kernel functions: name them in the section (kprobe.multi/<pattern>) or pass { symbol }');
      return attachKprobeMulti(prog, pattern, { retprobe: kind === 'kretprobe_multi' });
    }
    case 'uprobe_multi':
    case 'uretprobe_multi': {
      let binary = options.binary;
      let fns: string | undefined = typeof options.symbol === 'string' ? options.symbol : undefined;
      if (target) {
        const colon = target.lastIndexOf(':');
        if (colon <= 0 || colon === target.length - 1) throw new InvalidArgumentError(`attach: ${describe(prog)}: expected ${kind.replace('_', '.')}/<binary>:<function pattern>`);
        binary = target.slice(0, colon);
        fns = target.slice(colon + 1);
      }
      return attachUprobeMulti(prog, need(binary, prog, 'a binary: name it in the section (uprobe.multi/<binary>:<pattern>) or pass { binary }'),
        need(fns, prog, 'functions: name them in the section or pass { symbol }'),
        { retprobe: kind === 'uretprobe_multi', ...(options.pid !== undefined ? { pid: options.pid } : {}) });
    }
    case 'ksyscall':
    case 'kretsyscall':
      return attachKsyscall(prog, need(target || (typeof options.symbol === 'string' ? options.symbol : undefined), prog, 'a system call name (ksyscall/<name>)'),
        { retprobe: kind === 'kretsyscall', ...cookie });
    case 'uprobe':
    case 'uretprobe': {
      let binary = options.binary;
      let fn: string | number | undefined = options.symbol;
      let offset = 0;
      if (target) {
        const colon = target.lastIndexOf(':');
        if (colon <= 0) throw new InvalidArgumentError(`attach: ${describe(prog)}: expected ${kind}/<binary>:<function>`);
        binary = target.slice(0, colon);
        const so = symbolAndOffset(target.slice(colon + 1));
        fn = numberOrSymbol(so.symbol);
        offset = so.offset;
      }
      return attachUprobe(prog, need(binary, prog, 'a binary: name it in the section (uprobe/<binary>:<function>) or pass { binary }'),
        need(fn, prog, 'a function or file offset: name it in the section or pass { symbol }'),
        { retprobe: kind === 'uretprobe', offset, ...(options.pid !== undefined ? { pid: options.pid } : {}), ...cookie });
    }
    case 'tracepoint': {
      const tp = need(target || options.tracepoint, prog, 'a tracepoint: name it in the section (tracepoint/<category>/<name>) or pass { tracepoint }');
      const slash = tp.indexOf('/');
      if (slash <= 0 || slash === tp.length - 1) throw new InvalidArgumentError(`attach: ${describe(prog)}: tracepoint "${tp}" must be <category>/<name>`);
      return attachTracepoint(prog, tp.slice(0, slash), tp.slice(slash + 1), cookie);
    }
    case 'raw_tracepoint':
      return attachRawTracepoint(prog, need(target || options.tracepoint, prog, 'a raw tracepoint name (raw_tracepoint/<name>) or { tracepoint }'), cookie);
    case 'usdt': {
      let binary = options.binary;
      let probe = options.usdt;
      if (target) {
        // <binary>:<provider>:<name>; the binary path may itself hold colons.
        const last = target.lastIndexOf(':');
        const prev = last > 0 ? target.lastIndexOf(':', last - 1) : -1;
        if (prev <= 0 || last === target.length - 1 || last - prev < 2) {
          throw new InvalidArgumentError(`attach: ${describe(prog)}: expected usdt/<binary>:<provider>:<name>`);
        }
        binary = target.slice(0, prev);
        probe = { provider: target.slice(prev + 1, last), name: target.slice(last + 1) };
      }
      const p = need(probe, prog, 'a probe: name it in the section (usdt/<binary>:<provider>:<name>) or pass { usdt: { provider, name } }');
      return attachUsdt(prog, need(binary, prog, 'a binary: name it in the section (usdt/<binary>:<provider>:<name>) or pass { binary }'),
        p.provider, p.name, { ...(options.pid !== undefined ? { pid: options.pid } : {}), ...cookie });
    }
    case 'tracing':
      return attachTracing(prog, cookie);
    case 'lsm':
      return attachLsm(prog, { ...(options.cgroup ? { cgroup: options.cgroup } : {}), ...cookie });
    case 'iter':
      return attachIter(prog, options.iter ?? {});
    case 'sk_lookup':
      return attachSkLookup(prog, options.netns ?? '/proc/self/ns/net');
    case 'xdp':
      return attachXdp(prog, need(options.iface, prog, 'an interface: pass { iface }'), {
        ...(options.xdpMode ? { mode: options.xdpMode } : {}), ...(options.forceNetlink ? { forceNetlink: true } : {}),
      });
    case 'tc':
    case 'tcx':
      return attachTc(prog, need(options.iface, prog, 'an interface: pass { iface }'), {
        ...(options.direction ? { direction: options.direction } : {}), ...(options.forceNetlink ? { forceNetlink: true } : {}),
      });
    case 'cgroup':
      return attachCgroup(prog, need(options.cgroup, prog, 'a cgroup v2 directory: pass { cgroup }'), options.attachType);
    case 'socket_filter':
      return attachSocketFilter(prog, need(options.socket, prog, 'a socket: pass { socket: fd }'));
    case 'perf_event':
      return attachPerfEvent(prog, options.perfEvent ?? {
        type: 'software', config: 'cpu-clock', frequency: 99, ...(options.pid !== undefined ? { pid: options.pid } : {}), ...cookie,
      });
    default:
      throw new NotSupportedError(`auto-attaching ${describe(prog)}`, `bpfkit has no attach support for ${kind} programs yet`, undefined, { lackedBy: 'bpfkit' });
  }
}

// Program.attach() reaches this function through the hook (the live layer does not import this one).
setAttachByKind(attach);
