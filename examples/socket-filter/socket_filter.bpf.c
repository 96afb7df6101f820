// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket filter packet counter. Attached to an AF_PACKET socket bound to an
 * interface, it runs on every frame the interface receives or sends, counts it
 * by IP protocol, and returns 0: "keep 0 bytes", so nothing is ever queued on
 * the socket and user space never reads a packet. The counts come from the map.
 *
 * counts   per-CPU array, one { packets, bytes } per class: PROTO_TCP,
 *          PROTO_UDP, PROTO_ICMP (ICMP and ICMPv6), PROTO_OTHER (everything
 *          else: ARP, other IP protocols, IPv6 packets with extension headers).
 *          bytes is skb->len, the whole frame as the socket would see it.
 *
 * The IP protocol is read relative to the network header
 * (bpf_skb_load_bytes_relative with BPF_HDR_START_NET), so the program works
 * whatever the link layer (Ethernet, none, ...).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum proto_class {
	PROTO_TCP = 0,
	PROTO_UDP = 1,
	PROTO_ICMP = 2,
	PROTO_OTHER = 3,
	PROTO_CLASSES = 4,
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROTO_CLASSES);
	__type(key, __u32);
	__type(value, struct counter);
} counts SEC(".maps");

/* The transport protocol number of an IPv4 or IPv6 packet, or -1. */
static __always_inline int ip_protocol(struct __sk_buff *skb)
{
	__u8 proto;
	__u32 offset;

	if (skb->protocol == bpf_htons(ETH_P_IP))
		offset = 9; /* struct iphdr: protocol */
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		offset = 6; /* struct ipv6hdr: nexthdr */
	else
		return -1;
	if (bpf_skb_load_bytes_relative(skb, offset, &proto, sizeof(proto), BPF_HDR_START_NET) < 0)
		return -1;
	return proto;
}

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
	__u32 class = PROTO_OTHER;
	struct counter *c;

	switch (ip_protocol(skb)) {
	case IPPROTO_TCP:
		class = PROTO_TCP;
		break;
	case IPPROTO_UDP:
		class = PROTO_UDP;
		break;
	case IPPROTO_ICMP:
	case 58: /* IPPROTO_ICMPV6 */
		class = PROTO_ICMP;
		break;
	}
	c = bpf_map_lookup_elem(&counts, &class);
	if (c) {
		c->packets += 1;
		c->bytes += skb->len;
	}
	return 0; /* keep no bytes: nothing is queued to user space */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
