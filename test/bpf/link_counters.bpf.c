// SPDX-License-Identifier: GPL-2.0-only
/*
 * Counting programs for the attach tests (test/kernel/link-*.test.ts). Every program adds 1 to
 * counts[<its slot>] and lets the event or packet through. Packet programs count only UDP to or
 * from LINK_TEST_PORT, so background traffic (ARP, IPv6 ND) does not disturb the counts.
 * See test/bpf/README.md ("link_counters.bpf.o").
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#define LINK_TEST_PORT 47111

enum slot {
	S_XDP_UDP = 0,      /* xdp_udp: UDP datagrams to the port */
	S_TC_TO_PORT = 1,   /* tc_udp: UDP datagrams to the port */
	S_TC_FROM_PORT = 2, /* tc_udp: UDP datagrams from the port (replies) */
	S_SOCKET = 3,       /* socket_count: every packet the socket gets */
	S_CGROUP_EGRESS = 4, /* cgroup_egress_udp: UDP datagrams to the port leaving the cgroup */
	S_UPROBE = 5,       /* uprobe_count */
	S_URETPROBE = 6,    /* uretprobe_count */
	S_PERF = 7,         /* perf_count */
	S_TP_EXECVE = 8,    /* tp_execve */
	S_RAW_TP = 9,       /* raw_tp_sys_enter */
	S_UPROBE_ARG = 10,  /* uprobe_count: sum of the first argument */
	S_URETPROBE_RET = 11, /* uretprobe_count: sum of the return values */
	S_MAX = 16,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void add(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

/* Returns 1 for UDP to the port, 2 for UDP from the port, 0 otherwise. ip points at the IPv4 header. */
static __always_inline int udp_dir(void *ip, void *end)
{
	struct iphdr *iph = ip;
	struct udphdr *udp;

	if ((void *)(iph + 1) > end || iph->version != 4 || iph->protocol != IPPROTO_UDP)
		return 0;
	udp = (void *)iph + iph->ihl * 4;
	if ((void *)(udp + 1) > end)
		return 0;
	if (udp->dest == bpf_htons(LINK_TEST_PORT))
		return 1;
	if (udp->source == bpf_htons(LINK_TEST_PORT))
		return 2;
	return 0;
}

SEC("xdp")
int xdp_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (udp_dir(eth + 1, end) == 1)
		add(S_XDP_UDP, 1);
	return XDP_PASS;
}

SEC("tc")
int tc_udp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	int dir;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0; /* TC_ACT_OK */
	dir = udp_dir(eth + 1, end);
	if (dir == 1)
		add(S_TC_TO_PORT, 1);
	else if (dir == 2)
		add(S_TC_FROM_PORT, 1);
	return 0; /* TC_ACT_OK */
}

/* A socket filter returns how many bytes to keep: all of them. */
SEC("socket")
int socket_count(struct __sk_buff *skb)
{
	add(S_SOCKET, 1);
	return skb->len;
}

/* cgroup_skb data starts at the IP header. 1 = allow. */
SEC("cgroup_skb/egress")
int cgroup_egress_udp(struct __sk_buff *skb)
{
	struct iphdr iph;
	struct udphdr udp;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)) < 0 || iph.protocol != IPPROTO_UDP)
		return 1;
	if (bpf_skb_load_bytes(skb, iph.ihl * 4, &udp, sizeof(udp)) < 0)
		return 1;
	if (udp.dest == bpf_htons(LINK_TEST_PORT))
		add(S_CGROUP_EGRESS, 1);
	return 1;
}

SEC("uprobe")
int uprobe_count(struct pt_regs *ctx)
{
	add(S_UPROBE, 1);
	add(S_UPROBE_ARG, (__u64)PT_REGS_PARM1(ctx));
	return 0;
}

SEC("uretprobe")
int uretprobe_count(struct pt_regs *ctx)
{
	add(S_URETPROBE, 1);
	add(S_URETPROBE_RET, (__u64)PT_REGS_RC(ctx));
	return 0;
}

SEC("perf_event")
int perf_count(void *ctx)
{
	add(S_PERF, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int tp_execve(void *ctx)
{
	add(S_TP_EXECVE, 1);
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int raw_tp_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	add(S_RAW_TP, 1);
	return 0;
}

/* Loaded (and compared with libbpf's load in core.test.ts), never attached here: link-hooks.test.ts attaches kprobes. */
SEC("kprobe/do_sys_openat2")
int kprobe_openat(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
