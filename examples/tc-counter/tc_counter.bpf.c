// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc packet and byte counter: one program on an interface's ingress, one on its
 * egress, both adding to a per-CPU array.
 *
 * counts   per-CPU array, [DIR_INGRESS] and [DIR_EGRESS], each { packets, bytes }.
 *          bytes is skb->len: the whole frame, link-layer header included (tc
 *          sees the Ethernet header in both directions).
 *
 * Both programs return TC_ACT_UNSPEC (-1, the same value as TCX_NEXT): "no
 * verdict", so the packet goes on to the next program or filter on the hook,
 * and passes when there is none. A counter should never decide a packet's fate.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

enum direction {
	DIR_INGRESS = 0,
	DIR_EGRESS = 1,
	DIR_COUNT = 2,
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DIR_COUNT);
	__type(key, __u32);
	__type(value, struct counter);
} counts SEC(".maps");

static __always_inline int count(__u32 dir, struct __sk_buff *skb)
{
	struct counter *c = bpf_map_lookup_elem(&counts, &dir);

	if (c) {
		c->packets += 1;
		c->bytes += skb->len;
	}
	return TC_ACT_UNSPEC;
}

SEC("tcx/ingress")
int count_ingress(struct __sk_buff *skb)
{
	return count(DIR_INGRESS, skb);
}

SEC("tcx/egress")
int count_egress(struct __sk_buff *skb)
{
	return count(DIR_EGRESS, skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
