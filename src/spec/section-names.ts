/**
 * libbpf's section-name conventions: the ELF section a program lives in says its program type,
 * the attach type the kernel expects at load, and (for auto-attach) what it hooks. Entries ending
 * in '+' take a target after a '/' (`tracepoint/syscalls/sys_enter_execve`); the others must match
 * exactly. A leading '?' on a section marks the program as not loaded by default.
 */
import type { AttachType, ProgType } from '../abi/constants.js';

export interface SectionDef {
  /** The convention as libbpf spells it, e.g. "kprobe+". */
  readonly pattern: string;
  readonly progType: ProgType;
  readonly attachType: AttachType | undefined;
  readonly sleepable: boolean;
  readonly xdpFrags: boolean;
  /** What auto-attach does with the section: the attach kind, when it can attach on its own. */
  readonly attach: AttachKind | undefined;
}

/**
 * How a program attaches on its own (`Program.attach()`, `Collection.attachAll()`), as its ELF section
 * name says: the hook family, e.g. 'kprobe' for `kprobe/...`, 'tc' for `tc`/`classifier`.
 */
export type AttachKind =
  | 'kprobe' | 'kretprobe' | 'ksyscall' | 'kretsyscall' | 'kprobe_multi' | 'kretprobe_multi'
  | 'uprobe' | 'uretprobe' | 'uprobe_multi' | 'uretprobe_multi' | 'usdt'
  | 'tracepoint' | 'raw_tracepoint' | 'tracing' | 'lsm' | 'iter' | 'xdp' | 'tc' | 'tcx' | 'netkit'
  | 'cgroup' | 'socket_filter' | 'sk_lookup' | 'perf_event' | 'struct_ops' | 'sk_skb' | 'sk_msg'
  | 'flow_dissector' | 'lirc_mode2' | 'netfilter';

type Row = [pattern: string, prog: ProgType, attach: AttachType | undefined, kind?: AttachKind, opts?: 'sleepable' | 'frags'];

const rows: Row[] = [
  ['socket', 'socket_filter', undefined, 'socket_filter'],
  ['sk_reuseport/migrate', 'sk_reuseport', 'sk_reuseport_select_or_migrate'],
  ['sk_reuseport', 'sk_reuseport', 'sk_reuseport_select'],
  ['kprobe+', 'kprobe', undefined, 'kprobe'],
  ['uprobe+', 'kprobe', undefined, 'uprobe'],
  ['uprobe.s+', 'kprobe', undefined, 'uprobe', 'sleepable'],
  ['kretprobe+', 'kprobe', undefined, 'kretprobe'],
  ['uretprobe+', 'kprobe', undefined, 'uretprobe'],
  ['uretprobe.s+', 'kprobe', undefined, 'uretprobe', 'sleepable'],
  ['kprobe.multi+', 'kprobe', 'trace_kprobe_multi', 'kprobe_multi'],
  ['kretprobe.multi+', 'kprobe', 'trace_kprobe_multi', 'kretprobe_multi'],
  ['kprobe.session+', 'kprobe', 'trace_kprobe_session', 'kprobe_multi'],
  ['uprobe.multi+', 'kprobe', 'trace_uprobe_multi', 'uprobe_multi'],
  ['uretprobe.multi+', 'kprobe', 'trace_uprobe_multi', 'uretprobe_multi'],
  ['uprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', 'uprobe_multi', 'sleepable'],
  ['uretprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', 'uretprobe_multi', 'sleepable'],
  ['uprobe.session+', 'kprobe', 'trace_uprobe_session', 'uprobe_multi'],
  ['uprobe.session.s+', 'kprobe', 'trace_uprobe_session', 'uprobe_multi', 'sleepable'],
  ['ksyscall+', 'kprobe', undefined, 'ksyscall'],
  ['kretsyscall+', 'kprobe', undefined, 'kretsyscall'],
  ['usdt+', 'kprobe', undefined, 'usdt'],
  ['usdt.s+', 'kprobe', undefined, 'usdt', 'sleepable'],
  ['tc/ingress', 'sched_cls', 'tcx_ingress', 'tcx'],
  ['tc/egress', 'sched_cls', 'tcx_egress', 'tcx'],
  ['tcx/ingress', 'sched_cls', 'tcx_ingress', 'tcx'],
  ['tcx/egress', 'sched_cls', 'tcx_egress', 'tcx'],
  ['tc', 'sched_cls', undefined, 'tc'],
  ['classifier', 'sched_cls', undefined, 'tc'],
  ['action', 'sched_act', undefined],
  ['netkit/primary', 'sched_cls', 'netkit_primary', 'netkit'],
  ['netkit/peer', 'sched_cls', 'netkit_peer', 'netkit'],
  ['tracepoint+', 'tracepoint', undefined, 'tracepoint'],
  ['tp+', 'tracepoint', undefined, 'tracepoint'],
  ['raw_tracepoint+', 'raw_tracepoint', undefined, 'raw_tracepoint'],
  ['raw_tp+', 'raw_tracepoint', undefined, 'raw_tracepoint'],
  ['raw_tracepoint.w+', 'raw_tracepoint_writable', undefined, 'raw_tracepoint'],
  ['raw_tp.w+', 'raw_tracepoint_writable', undefined, 'raw_tracepoint'],
  ['tp_btf+', 'tracing', 'trace_raw_tp', 'tracing'],
  ['fentry+', 'tracing', 'trace_fentry', 'tracing'],
  ['fmod_ret+', 'tracing', 'modify_return', 'tracing'],
  ['fexit+', 'tracing', 'trace_fexit', 'tracing'],
  ['fentry.s+', 'tracing', 'trace_fentry', 'tracing', 'sleepable'],
  ['fmod_ret.s+', 'tracing', 'modify_return', 'tracing', 'sleepable'],
  ['fexit.s+', 'tracing', 'trace_fexit', 'tracing', 'sleepable'],
  ['freplace+', 'ext', undefined, 'tracing'],
  ['lsm+', 'lsm', 'lsm_mac', 'lsm'],
  ['lsm.s+', 'lsm', 'lsm_mac', 'lsm', 'sleepable'],
  ['lsm_cgroup+', 'lsm', 'lsm_cgroup'],
  ['iter+', 'tracing', 'trace_iter', 'iter'],
  ['iter.s+', 'tracing', 'trace_iter', 'iter', 'sleepable'],
  ['syscall', 'syscall', undefined, undefined, 'sleepable'],
  ['xdp.frags/devmap', 'xdp', 'xdp_devmap', undefined, 'frags'],
  ['xdp/devmap', 'xdp', 'xdp_devmap'],
  ['xdp.frags/cpumap', 'xdp', 'xdp_cpumap', undefined, 'frags'],
  ['xdp/cpumap', 'xdp', 'xdp_cpumap'],
  ['xdp.frags', 'xdp', 'xdp', 'xdp', 'frags'],
  ['xdp', 'xdp', 'xdp', 'xdp'],
  ['perf_event', 'perf_event', undefined, 'perf_event'],
  ['lwt_in', 'lwt_in', undefined],
  ['lwt_out', 'lwt_out', undefined],
  ['lwt_xmit', 'lwt_xmit', undefined],
  ['lwt_seg6local', 'lwt_seg6local', undefined],
  ['sockops', 'sock_ops', 'cgroup_sock_ops', 'cgroup'],
  ['sk_skb/stream_parser', 'sk_skb', 'sk_skb_stream_parser', 'sk_skb'],
  ['sk_skb/stream_verdict', 'sk_skb', 'sk_skb_stream_verdict', 'sk_skb'],
  ['sk_skb/verdict', 'sk_skb', 'sk_skb_verdict', 'sk_skb'],
  ['sk_skb', 'sk_skb', undefined, 'sk_skb'],
  ['sk_msg', 'sk_msg', 'sk_msg_verdict', 'sk_msg'],
  ['lirc_mode2', 'lirc_mode2', 'lirc_mode2', 'lirc_mode2'],
  ['flow_dissector', 'flow_dissector', 'flow_dissector', 'flow_dissector'],
  ['cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress', 'cgroup'],
  ['cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress', 'cgroup'],
  ['cgroup/skb', 'cgroup_skb', undefined],
  ['cgroup/sock_create', 'cgroup_sock', 'cgroup_inet_sock_create', 'cgroup'],
  ['cgroup/sock_release', 'cgroup_sock', 'cgroup_inet_sock_release', 'cgroup'],
  ['cgroup/sock', 'cgroup_sock', 'cgroup_inet_sock_create', 'cgroup'],
  ['cgroup/post_bind4', 'cgroup_sock', 'cgroup_inet4_post_bind', 'cgroup'],
  ['cgroup/post_bind6', 'cgroup_sock', 'cgroup_inet6_post_bind', 'cgroup'],
  ['cgroup/bind4', 'cgroup_sock_addr', 'cgroup_inet4_bind', 'cgroup'],
  ['cgroup/bind6', 'cgroup_sock_addr', 'cgroup_inet6_bind', 'cgroup'],
  ['cgroup/connect4', 'cgroup_sock_addr', 'cgroup_inet4_connect', 'cgroup'],
  ['cgroup/connect6', 'cgroup_sock_addr', 'cgroup_inet6_connect', 'cgroup'],
  ['cgroup/connect_unix', 'cgroup_sock_addr', 'cgroup_unix_connect', 'cgroup'],
  ['cgroup/sendmsg4', 'cgroup_sock_addr', 'cgroup_udp4_sendmsg', 'cgroup'],
  ['cgroup/sendmsg6', 'cgroup_sock_addr', 'cgroup_udp6_sendmsg', 'cgroup'],
  ['cgroup/sendmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_sendmsg', 'cgroup'],
  ['cgroup/recvmsg4', 'cgroup_sock_addr', 'cgroup_udp4_recvmsg', 'cgroup'],
  ['cgroup/recvmsg6', 'cgroup_sock_addr', 'cgroup_udp6_recvmsg', 'cgroup'],
  ['cgroup/recvmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_recvmsg', 'cgroup'],
  ['cgroup/getpeername4', 'cgroup_sock_addr', 'cgroup_inet4_getpeername', 'cgroup'],
  ['cgroup/getpeername6', 'cgroup_sock_addr', 'cgroup_inet6_getpeername', 'cgroup'],
  ['cgroup/getpeername_unix', 'cgroup_sock_addr', 'cgroup_unix_getpeername', 'cgroup'],
  ['cgroup/getsockname4', 'cgroup_sock_addr', 'cgroup_inet4_getsockname', 'cgroup'],
  ['cgroup/getsockname6', 'cgroup_sock_addr', 'cgroup_inet6_getsockname', 'cgroup'],
  ['cgroup/getsockname_unix', 'cgroup_sock_addr', 'cgroup_unix_getsockname', 'cgroup'],
  ['cgroup/sysctl', 'cgroup_sysctl', 'cgroup_sysctl', 'cgroup'],
  ['cgroup/getsockopt', 'cgroup_sockopt', 'cgroup_getsockopt', 'cgroup'],
  ['cgroup/setsockopt', 'cgroup_sockopt', 'cgroup_setsockopt', 'cgroup'],
  ['cgroup/dev', 'cgroup_device', 'cgroup_device', 'cgroup'],
  ['struct_ops+', 'struct_ops', undefined, 'struct_ops'],
  ['struct_ops.s+', 'struct_ops', undefined, 'struct_ops', 'sleepable'],
  ['sk_lookup', 'sk_lookup', 'sk_lookup', 'sk_lookup'],
  ['netfilter', 'netfilter', 'netfilter', 'netfilter'],
];

const defs: SectionDef[] = rows.map(([pattern, progType, attachType, attach, opt]) => ({
  pattern, progType, attachType, attach, sleepable: opt === 'sleepable', xdpFrags: opt === 'frags',
}));

export interface SectionMatch {
  readonly def: SectionDef;
  /** What follows the prefix and its '/', e.g. "syscalls/sys_enter_execve"; '' when none. */
  readonly target: string;
  /** False for '?'-prefixed sections. */
  readonly autoload: boolean;
  /** The section name without a leading '?'. */
  readonly name: string;
}

/** The libbpf convention a section name follows, or undefined when it follows none. */
export function matchSection(sectionName: string): SectionMatch | undefined {
  const autoload = !sectionName.startsWith('?');
  const name = autoload ? sectionName : sectionName.slice(1);
  for (const def of defs) {
    if (def.pattern.endsWith('+')) {
      const prefix = def.pattern.slice(0, -1);
      if (name === prefix) return { def, target: '', autoload, name };
      if (name.startsWith(`${prefix}/`)) return { def, target: name.slice(prefix.length + 1), autoload, name };
    } else if (name === def.pattern) {
      return { def, target: '', autoload, name };
    }
  }
  return undefined;
}

/** Every known convention, for error messages and documentation. */
export function sectionPatterns(): string[] {
  return defs.map((d) => d.pattern);
}
