// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One trivial program per ELF section name, to test how a loader maps
 * section names to program types / attach types, and that each one loads.
 *
 * Every program increments hits[<its index>] (see enum hit_slot) and returns
 * a constant, except socket_filter (returns skb->len) and raw_tp_sys_enter
 * (returns the syscall number argument).  See test/bpf/README.md.
 *
 * No vmlinux.h is needed: context arguments are `void *` or UAPI structs.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum hit_slot {
	HIT_XDP = 0,
	HIT_TC = 1,
	HIT_CLASSIFIER = 2,
	HIT_SOCKET = 3,
	HIT_TRACEPOINT = 4,
	HIT_RAW_TP = 5,
	HIT_TP_BTF = 6,
	HIT_KPROBE = 7,
	HIT_KRETPROBE = 8,
	HIT_UPROBE = 9,
	HIT_CGROUP_INGRESS = 10,
	HIT_CGROUP_EGRESS = 11,
	HIT_PERF_EVENT = 12,
	HIT_XDP_OPTIONAL = 13,
	HIT_MAX = 16,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HIT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *count = bpf_map_lookup_elem(&hits, &slot);

	if (count)
		__sync_fetch_and_add(count, 1);
}

SEC("xdp")
int xdp_prog(struct xdp_md *ctx)
{
	hit(HIT_XDP);
	return XDP_PASS; /* 2 */
}

SEC("tc")
int tc_prog(struct __sk_buff *skb)
{
	hit(HIT_TC);
	return 0; /* TC_ACT_OK */
}

SEC("classifier")
int classifier_prog(struct __sk_buff *skb)
{
	hit(HIT_CLASSIFIER);
	return 2; /* TC_ACT_SHOT */
}

/* A socket filter returns how many bytes of the packet to keep. */
SEC("socket")
int socket_filter(struct __sk_buff *skb)
{
	hit(HIT_SOCKET);
	return skb->len;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int tracepoint_execve(void *ctx)
{
	hit(HIT_TRACEPOINT);
	return 0;
}

/* Arguments of sys_enter: (struct pt_regs *regs, long id). */
SEC("raw_tracepoint/sys_enter")
int raw_tp_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	hit(HIT_RAW_TP);
	return (int)ctx->args[1];
}

/* BTF-enabled tracepoint: needs the kernel's BTF at load time only. */
SEC("tp_btf/sched_process_exec")
int tp_btf_exec(void *ctx)
{
	hit(HIT_TP_BTF);
	return 0;
}

SEC("kprobe/do_sys_open")
int kprobe_open(void *ctx)
{
	hit(HIT_KPROBE);
	return 0;
}

SEC("kretprobe/do_sys_open")
int kretprobe_open(void *ctx)
{
	hit(HIT_KRETPROBE);
	return 0;
}

/* Bare "uprobe": the target binary and offset are given at attach time. */
SEC("uprobe")
int uprobe_prog(void *ctx)
{
	hit(HIT_UPROBE);
	return 0;
}

/* cgroup_skb programs return 1 to allow the packet, 0 to drop it. */
SEC("cgroup_skb/ingress")
int cgroup_ingress(struct __sk_buff *skb)
{
	hit(HIT_CGROUP_INGRESS);
	return 1;
}

SEC("cgroup_skb/egress")
int cgroup_egress(struct __sk_buff *skb)
{
	hit(HIT_CGROUP_EGRESS);
	return 1;
}

SEC("perf_event")
int perf_event_prog(void *ctx)
{
	hit(HIT_PERF_EVENT);
	return 0;
}

/* The leading '?' marks the program as not loaded by default (libbpf). */
SEC("?xdp")
int xdp_optional(struct xdp_md *ctx)
{
	hit(HIT_XDP_OPTIONAL);
	return XDP_DROP; /* 1 */
}

char LICENSE[] SEC("license") = "GPL";
