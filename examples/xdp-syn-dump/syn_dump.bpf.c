// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP SYN dump: for every TCP packet with the SYN flag (connection attempts,
 * and the SYN-ACKs answering them) that arrives on the interface, send an
 * event and the packet's first bytes to user space through a perf event array,
 * then pass the packet on unchanged.
 *
 * The packet bytes are not copied by the program: bpf_perf_event_output with
 * the XDP context as ctx appends the first N bytes of the packet to the event
 * when N is put in the upper 32 bits of the flags (BPF_F_CTXLEN_MASK). A
 * sample is therefore struct syn_event followed by cap_len packet bytes.
 *
 * IPv4 (unfragmented or first fragment) and IPv6 (TCP right after the fixed
 * header, no extension headers) are parsed; one 802.1Q / 802.1ad VLAN tag is
 * looked through.
 *
 * User space (main.ts) uses the bindings scripts/gen-tools.sh generates from
 * this file into gen/syn_dump.ts: loadSynDump() with the snaplen constant, and
 * decodeSynEvent() for struct syn_event, which the line below asks for.
 */
// bpfkit-gen: --type syn_event
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* How many bytes of each packet go along; user space sets it before loading. */
const volatile __u32 snaplen = 256;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} syn_events SEC(".maps");

/* 64 bytes; the packet's first cap_len bytes follow it in the sample. */
struct syn_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 ifindex;    /* the interface the packet arrived on */
	__u32 pkt_len;    /* the whole packet, Ethernet header included */
	__u32 cap_len;    /* bytes of the packet after this struct */
	__be16 sport;     /* network order */
	__be16 dport;     /* network order */
	__u8 family;      /* 4 or 6 */
	__u8 tcp_flags;   /* byte 13 of the TCP header: CWR ECE URG ACK PSH RST SYN FIN */
	__u16 reserved;
	__u8 saddr[16];   /* IPv4: the first 4 bytes */
	__u8 daddr[16];
	__u32 reserved2;
};

_Static_assert(sizeof(struct syn_event) == 64, "struct syn_event is 64 bytes");

#define TCP_FLAG_SYN 0x02

/*
 * Sends the event, and the packet's first ev->cap_len bytes after it: their
 * number goes in the upper 32 bits of the flags (BPF_F_CTXLEN_MASK).
 *
 * A function of its own, not inlined, so that struct syn_event is in the
 * object's BTF (clang keeps only the types of global variables, maps and
 * functions, and the event otherwise lives on the stack only): there
 * `bpfkit gen --type syn_event` finds it for the bindings.
 */
static __noinline int send_event(struct xdp_md *ctx, struct syn_event *ev)
{
	__u64 cap = ev->cap_len;

	return bpf_perf_event_output(ctx, &syn_events, BPF_F_CURRENT_CPU | ((cap << 32) & BPF_F_CTXLEN_MASK), ev, sizeof(*ev));
}

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

SEC("xdp")
int xdp_syn_dump(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct syn_event ev = {};
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	void *l3;
	__u16 proto;
	__u8 flags;
	__u64 len, cap;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vlan = l3;

		if ((void *)(vlan + 1) > data_end)
			return XDP_PASS;
		proto = vlan->encapsulated_proto;
		l3 = vlan + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end || ip->ihl < 5 || ip->protocol != IPPROTO_TCP)
			return XDP_PASS;
		/* Later fragments carry no TCP header. */
		if (ip->frag_off & bpf_htons(0x1fff))
			return XDP_PASS;
		tcp = (void *)ip + ip->ihl * 4;
		ev.family = 4;
		__builtin_memcpy(ev.saddr, &ip->saddr, 4);
		__builtin_memcpy(ev.daddr, &ip->daddr, 4);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
			return XDP_PASS;
		tcp = (void *)(ip6 + 1);
		ev.family = 6;
		__builtin_memcpy(ev.saddr, &ip6->saddr, 16);
		__builtin_memcpy(ev.daddr, &ip6->daddr, 16);
	} else {
		return XDP_PASS;
	}

	if ((void *)(tcp + 1) > data_end)
		return XDP_PASS;
	flags = ((__u8 *)tcp)[13];
	if (!(flags & TCP_FLAG_SYN))
		return XDP_PASS;

	len = data_end - data;
	cap = len < snaplen ? len : snaplen;
	ev.ts_ns = bpf_ktime_get_ns();
	ev.ifindex = ctx->ingress_ifindex;
	ev.pkt_len = len;
	ev.cap_len = cap;
	ev.sport = tcp->source;
	ev.dport = tcp->dest;
	ev.tcp_flags = flags;
	send_event(ctx, &ev);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
