// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP firewall: drop every packet whose IPv4 source address falls in one of the
 * networks of an LPM trie, count what was dropped, pass everything else.
 *
 * drop_rules   LPM trie, key { prefix length, IPv4 network (network order) },
 *              value = the rule's index (0 .. MAX_RULES-1). User space fills it
 *              from the --drop CIDRs. When networks overlap the longest prefix
 *              wins, so a packet is counted once, under its most specific rule.
 * rule_drops   per-CPU array, one { packets, bytes } per rule index.
 * totals       per-CPU array: [TOTAL_DROPPED] every dropped packet,
 *              [TOTAL_PASSED] IPv4 packets that matched no rule.
 *
 * Per-CPU counters need no atomic instructions: each CPU adds to its own slot
 * and user space sums the slots when it reads them.
 *
 * Frames that are not IPv4 (ARP, IPv6, ...) pass without being counted. One
 * 802.1Q / 802.1ad VLAN tag is looked through.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_RULES 64

enum total_slot {
	TOTAL_DROPPED = 0,
	TOTAL_PASSED = 1,
	TOTAL_SLOTS = 2,
};

struct ipv4_lpm_key {
	__u32 prefixlen; /* host order, as struct bpf_lpm_trie_key wants */
	__u8 addr[4];    /* network order */
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* LPM tries must not be preallocated */
	__type(key, struct ipv4_lpm_key);
	__type(value, __u32);
} drop_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, struct counter);
} rule_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TOTAL_SLOTS);
	__type(key, __u32);
	__type(value, struct counter);
} totals SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

static __always_inline void count(void *map, __u32 slot, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(map, &slot);

	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	struct ethhdr *eth = data;
	struct ipv4_lpm_key key;
	struct iphdr *ip;
	void *l3;
	__be16 proto;
	__u32 *rule;

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
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	ip = l3;
	if ((void *)(ip + 1) > data_end || ip->version != 4)
		return XDP_PASS;

	key.prefixlen = 32;
	__builtin_memcpy(key.addr, &ip->saddr, sizeof(key.addr));
	rule = bpf_map_lookup_elem(&drop_rules, &key);
	if (!rule) {
		count(&totals, TOTAL_PASSED, len);
		return XDP_PASS;
	}
	count(&rule_drops, *rule, len);
	count(&totals, TOTAL_DROPPED, len);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
