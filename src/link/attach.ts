/**
 * attach(): auto-attach by the program's section, as libbpf does for skeletons. The section says
 * the kind of hook and often the target (`tracepoint/syscalls/sys_enter_execve`,
 * `uprobe//usr/bin/bash:readline`, `tc/ingress`); what it cannot say (an interface, a cgroup, a
 * socket, a process) comes from the options.
 */
import { InvalidArgumentError, NotSupportedError } from '../errors.js';
import type { Program } from '../program.js';
import { matchSection, type AttachKind } from '../spec/section-names.js';
import type { AttachType, ProgType } from '../sys/constants.js';
import { attachCgroup } from './cgroup.js';
import { attachKprobe, attachKsyscall } from './kprobe.js';
import type { Link } from './link.js';
import { attachPerfEvent, type PerfEventOptions } from './perf-event.js';
import { attachRawTracepoint, attachTracing } from './raw-tracepoint.js';
import { attachSocketFilter } from './socket-filter.js';
import { attachTc, type TcDirection } from './tc.js';
import { attachTracepoint } from './tracepoint.js';
import { attachUprobe } from './uprobe.js';
import { attachXdp, type XdpMode } from './xdp.js';

export interface AttachOptions {
  /** XDP and tc: the interface (name or index). */
  iface?: number | string;
  /** cgroup programs: the cgroup v2 directory. */
  cgroup?: string;
  /** cgroup programs: the attach type, when the section does not say it. */
  attachType?: AttachType;
  /** Socket filters: the socket fd. */
  socket?: number | { fd: number };
  /** uprobes and perf events: only this process. */
  pid?: number;
  /** uprobes whose section names no binary ("uprobe"): the binary or library. */
  binary?: string;
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
  /** bpf_cookie, for the kinds that take one. */
  cookie?: bigint;
}

const CGROUP_TYPES: readonly ProgType[] = ['cgroup_skb', 'cgroup_sock', 'cgroup_sock_addr', 'sock_ops', 'cgroup_device', 'cgroup_sysctl', 'cgroup_sockopt'];

/** The attach kind of a program without a section (opened by id or from a pin): from its type. */
function kindFromType(type: ProgType): AttachKind | undefined {
  if (CGROUP_TYPES.includes(type)) return 'cgroup';
  switch (type) {
    case 'xdp': return 'xdp';
    case 'sched_cls': return 'tc';
    case 'socket_filter': return 'socket_filter';
    case 'perf_event': return 'perf_event';
    case 'tracepoint': return 'tracepoint';
    case 'raw_tracepoint': case 'raw_tracepoint_writable': return 'raw_tracepoint';
    case 'tracing': case 'lsm': return 'tracing';
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

/** Attaches a program where its section says, taking what the section cannot say from options. */
export function attach(prog: Program, options: AttachOptions = {}): Link {
  const m = prog.sectionName ? matchSection(prog.sectionName) : undefined;
  const kind = m?.def.attach ?? kindFromType(prog.type);
  const target = prog.attachTarget || m?.target || '';
  const cookie = options.cookie !== undefined ? { cookie: options.cookie } : {};
  if (!kind) {
    throw new NotSupportedError(`auto-attaching ${describe(prog)}`, 'bpfkit cannot tell where this kind of program attaches; use the attach function for its hook');
  }
  switch (kind) {
    case 'kprobe':
    case 'kretprobe': {
      const spec = target || (typeof options.symbol === 'string' ? options.symbol : undefined);
      const { symbol, offset } = symbolAndOffset(need(spec, prog, 'a kernel function: name it in the section (kprobe/<function>) or pass { symbol }'));
      return attachKprobe(prog, symbol, { retprobe: kind === 'kretprobe', offset, ...cookie });
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
    case 'tracing':
    case 'lsm':
      return attachTracing(prog, cookie);
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
      throw new NotSupportedError(`auto-attaching ${describe(prog)}`, `bpfkit has no attach support for ${kind} programs yet`);
  }
}
