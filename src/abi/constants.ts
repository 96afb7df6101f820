/**
 * Numbers from the kernel's uapi `linux/bpf.h`, named as the kernel names them. Enumerations are
 * kept as ordered name lists (the position is the value), so name <-> number needs no second table.
 * Map and program type names are the `BPF_MAP_TYPE_*` / `BPF_PROG_TYPE_*` names in lower case.
 */

export const BPF_CMD = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  PROG_LOAD: 5,
  OBJ_PIN: 6,
  OBJ_GET: 7,
  PROG_ATTACH: 8,
  PROG_DETACH: 9,
  PROG_TEST_RUN: 10,
  PROG_GET_NEXT_ID: 11,
  MAP_GET_NEXT_ID: 12,
  PROG_GET_FD_BY_ID: 13,
  MAP_GET_FD_BY_ID: 14,
  OBJ_GET_INFO_BY_FD: 15,
  PROG_QUERY: 16,
  RAW_TRACEPOINT_OPEN: 17,
  BTF_LOAD: 18,
  BTF_GET_FD_BY_ID: 19,
  TASK_FD_QUERY: 20,
  MAP_LOOKUP_AND_DELETE_ELEM: 21,
  MAP_FREEZE: 22,
  BTF_GET_NEXT_ID: 23,
  MAP_LOOKUP_BATCH: 24,
  MAP_LOOKUP_AND_DELETE_BATCH: 25,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
  LINK_CREATE: 28,
  LINK_UPDATE: 29,
  LINK_GET_FD_BY_ID: 30,
  LINK_GET_NEXT_ID: 31,
  ENABLE_STATS: 32,
  ITER_CREATE: 33,
  LINK_DETACH: 34,
  PROG_BIND_MAP: 35,
  TOKEN_CREATE: 36,
} as const;

/** Every map type name bpfkit knows, at its `enum bpf_map_type` number (index = value). */
export const MAP_TYPES = [
  'unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array',
  'stack_trace', 'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps',
  'hash_of_maps', 'devmap', 'sockmap', 'cpumap', 'xskmap', 'sockhash', 'cgroup_storage',
  'reuseport_sockarray', 'percpu_cgroup_storage', 'queue', 'stack', 'sk_storage', 'devmap_hash',
  'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter', 'user_ringbuf',
  'cgrp_storage', 'arena',
] as const;

/**
 * Map types (`BPF_MAP_TYPE_*` in lower case), with the first kernel that has each:
 *
 * - `hash`, `array`: Requires Linux 3.19
 * - `prog_array`: Requires Linux 4.2
 * - `perf_event_array`: Requires Linux 4.3
 * - `percpu_hash`, `percpu_array`, `stack_trace`: Requires Linux 4.6
 * - `cgroup_array`: Requires Linux 4.8
 * - `lru_hash`, `lru_percpu_hash`: Requires Linux 4.10
 * - `lpm_trie`: Requires Linux 4.11
 * - `array_of_maps`, `hash_of_maps`: Requires Linux 4.12
 * - `devmap`, `sockmap`: Requires Linux 4.14
 * - `cpumap`: Requires Linux 4.15
 * - `xskmap`, `sockhash`: Requires Linux 4.18
 * - `cgroup_storage`, `reuseport_sockarray`: Requires Linux 4.19
 * - `percpu_cgroup_storage`, `queue`, `stack`: Requires Linux 4.20
 * - `sk_storage`: Requires Linux 5.2
 * - `devmap_hash`: Requires Linux 5.4
 * - `struct_ops`: Requires Linux 5.6
 * - `ringbuf`: Requires Linux 5.8
 * - `inode_storage`: Requires Linux 5.10
 * - `task_storage`: Requires Linux 5.11
 * - `bloom_filter`: Requires Linux 5.16
 * - `user_ringbuf`: Requires Linux 6.1
 * - `cgrp_storage`: Requires Linux 6.2
 * - `arena`: Requires Linux 6.9
 *
 * A kernel may still lack a type it is new enough for (a config option, a backport missing):
 * {@link haveMapType} asks the running kernel.
 * @throws Creating a map of a type the kernel lacks throws {@link BpfSyscallError} with `code`
 *   EINVAL (the kernel's answer to a type it does not know); `EPERM` without CAP_BPF.
 */
export type MapType = (typeof MAP_TYPES)[number];

/** Every program type name bpfkit knows, at its `enum bpf_prog_type` number (index = value). */
export const PROG_TYPES = [
  'unspec', 'socket_filter', 'kprobe', 'sched_cls', 'sched_act', 'tracepoint', 'xdp', 'perf_event',
  'cgroup_skb', 'cgroup_sock', 'lwt_in', 'lwt_out', 'lwt_xmit', 'sock_ops', 'sk_skb',
  'cgroup_device', 'sk_msg', 'raw_tracepoint', 'cgroup_sock_addr', 'lwt_seg6local', 'lirc_mode2',
  'sk_reuseport', 'flow_dissector', 'cgroup_sysctl', 'raw_tracepoint_writable', 'cgroup_sockopt',
  'tracing', 'struct_ops', 'ext', 'lsm', 'sk_lookup', 'syscall', 'netfilter',
] as const;
/**
 * A program type (`enum bpf_prog_type`, lowercase, without BPF_PROG_TYPE_): what a program may do
 * and where it may attach. Each needs the kernel that introduced it: socket_filter 3.19, kprobe
 * 4.1, sched_cls/sched_act 4.1, tracepoint 4.7, xdp 4.8, perf_event 4.9, cgroup_skb/cgroup_sock
 * 4.10, lwt_* 4.10, sock_ops 4.13, sk_skb 4.14, cgroup_device 4.15, sk_msg 4.17, raw_tracepoint
 * 4.17, cgroup_sock_addr 4.17, lwt_seg6local 4.18, lirc_mode2 4.18, sk_reuseport 4.19,
 * flow_dissector 4.20, cgroup_sysctl 5.2, raw_tracepoint_writable 5.2, cgroup_sockopt 5.3, tracing
 * 5.5, struct_ops 5.6, ext 5.6, lsm 5.7, sk_lookup 5.9, syscall 5.14, netfilter 6.4.
 * {@link haveProgramType} asks the running kernel.
 */
export type ProgType = (typeof PROG_TYPES)[number];

/** Every attach type name bpfkit knows, at its `enum bpf_attach_type` number (index = value). */
export const ATTACH_TYPES = [
  'cgroup_inet_ingress', 'cgroup_inet_egress', 'cgroup_inet_sock_create', 'cgroup_sock_ops',
  'sk_skb_stream_parser', 'sk_skb_stream_verdict', 'cgroup_device', 'sk_msg_verdict',
  'cgroup_inet4_bind', 'cgroup_inet6_bind', 'cgroup_inet4_connect', 'cgroup_inet6_connect',
  'cgroup_inet4_post_bind', 'cgroup_inet6_post_bind', 'cgroup_udp4_sendmsg', 'cgroup_udp6_sendmsg',
  'lirc_mode2', 'flow_dissector', 'cgroup_sysctl', 'cgroup_udp4_recvmsg', 'cgroup_udp6_recvmsg',
  'cgroup_getsockopt', 'cgroup_setsockopt', 'trace_raw_tp', 'trace_fentry', 'trace_fexit',
  'modify_return', 'lsm_mac', 'trace_iter', 'cgroup_inet4_getpeername', 'cgroup_inet6_getpeername',
  'cgroup_inet4_getsockname', 'cgroup_inet6_getsockname', 'xdp_devmap', 'cgroup_inet_sock_release',
  'xdp_cpumap', 'sk_lookup', 'xdp', 'sk_skb_verdict', 'sk_reuseport_select',
  'sk_reuseport_select_or_migrate', 'perf_event', 'trace_kprobe_multi', 'lsm_cgroup', 'struct_ops',
  'netfilter', 'tcx_ingress', 'tcx_egress', 'trace_uprobe_multi', 'cgroup_unix_connect',
  'cgroup_unix_sendmsg', 'cgroup_unix_recvmsg', 'cgroup_unix_getpeername',
  'cgroup_unix_getsockname', 'netkit_primary', 'netkit_peer', 'trace_kprobe_session',
  'trace_uprobe_session',
] as const;
/**
 * An attach type (`enum bpf_attach_type`, lowercase, without BPF_): the hook a program is loaded
 * for and attached to (`cgroup_inet_ingress`, `trace_fentry`, `tcx_ingress`, ...). Each needs the
 * kernel that introduced it (the attach functions say theirs); {@link kernelKnowsAttachType} asks
 * the running kernel's BTF.
 */
export type AttachType = (typeof ATTACH_TYPES)[number];

/** Every link type name bpfkit knows, at its `enum bpf_link_type` number (index = value). */
export const LINK_TYPES = [
  'unspec', 'raw_tracepoint', 'tracing', 'cgroup', 'iter', 'netns', 'xdp', 'perf_event',
  'kprobe_multi', 'struct_ops', 'netfilter', 'tcx', 'uprobe_multi', 'netkit', 'sockmap',
] as const;
/** A link type (`enum bpf_link_type`, lowercase, without BPF_LINK_TYPE_): what kind of hook a bpf_link holds. */
export type LinkType = (typeof LINK_TYPES)[number];

function lookup<T extends string>(list: readonly T[], kind: string) {
  const index = new Map<string, number>(list.map((n, i) => [n, i]));
  return {
    number(name: T): number {
      const n = index.get(name);
      if (n === undefined) throw new RangeError(`unknown ${kind} "${name}"`);
      return n;
    },
    name(n: number): T | `unknown(${number})` {
      return list[n] ?? `unknown(${n})`;
    },
    has(name: string): name is T {
      return index.has(name);
    },
  };
}

export const mapType = lookup(MAP_TYPES, 'map type');
export const progType = lookup(PROG_TYPES, 'program type');
export const attachType = lookup(ATTACH_TYPES, 'attach type');
export const linkType = lookup(LINK_TYPES, 'link type');

/** Flags for BPF_MAP_UPDATE_ELEM. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_LOCK = 4;

/** Flags for BPF_MAP_CREATE. */
export const BPF_F_NO_PREALLOC = 1 << 0;
export const BPF_F_NO_COMMON_LRU = 1 << 1;
export const BPF_F_NUMA_NODE = 1 << 2;
export const BPF_F_RDONLY = 1 << 3;
export const BPF_F_WRONLY = 1 << 4;
export const BPF_F_STACK_BUILD_ID = 1 << 5;
export const BPF_F_ZERO_SEED = 1 << 6;
export const BPF_F_RDONLY_PROG = 1 << 7;
export const BPF_F_WRONLY_PROG = 1 << 8;
export const BPF_F_CLONE = 1 << 9;
export const BPF_F_MMAPABLE = 1 << 10;
export const BPF_F_INNER_MAP = 1 << 12;

/** Flags for BPF_PROG_LOAD. */
export const BPF_F_STRICT_ALIGNMENT = 1 << 0;
export const BPF_F_ANY_ALIGNMENT = 1 << 1;
export const BPF_F_SLEEPABLE = 1 << 4;
export const BPF_F_XDP_HAS_FRAGS = 1 << 5;

/** BPF_OBJ_NAME_LEN: object names, NUL included. */
export const BPF_OBJ_NAME_LEN = 16;

/** Pinning modes of BTF-defined maps (`__uint(pinning, LIBBPF_PIN_BY_NAME)`). */
export const LIBBPF_PIN_NONE = 0;
export const LIBBPF_PIN_BY_NAME = 1;

/** bpf_stats_type for BPF_ENABLE_STATS. */
export const BPF_STATS_RUN_TIME = 0;
