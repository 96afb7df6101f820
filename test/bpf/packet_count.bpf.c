// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Per-source-address packet counter, the classic XDP example.
 *
 * xdp_stats_map: LRU hash, key = IPv4 source address exactly as it appears in
 * the header (network byte order, i.e. the 4 bytes a.b.c.d read as a
 * host-order u32), value = u32 packet count, 1024 entries.
 *
 * xdp_prog_func parses Ethernet + IPv4 (with bounds checks), counts the
 * packet under its source address and always returns XDP_PASS.  Frames that
 * are not IPv4, or too short, are passed without being counted.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_MAP_ENTRIES 1024

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_MAP_ENTRIES);
	__type(key, __u32);   /* source IPv4 address, network byte order */
	__type(value, __u32); /* packet count */
} xdp_stats_map SEC(".maps");

/* Store the IPv4 source address in *saddr; return 0 if the frame has none. */
static __always_inline int ipv4_source(struct xdp_md *ctx, __u32 *saddr)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;

	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return 0;

	*saddr = ip->saddr;
	return 1;
}

SEC("xdp")
int xdp_prog_func(struct xdp_md *ctx)
{
	__u32 saddr, one = 1;
	__u32 *count;

	if (!ipv4_source(ctx, &saddr))
		return XDP_PASS;

	count = bpf_map_lookup_elem(&xdp_stats_map, &saddr);
	if (!count) {
		/* First packet from this address.  If another CPU inserted it
		 * meanwhile, fall through and count on its entry. */
		if (!bpf_map_update_elem(&xdp_stats_map, &saddr, &one, BPF_NOEXIST))
			return XDP_PASS;
		count = bpf_map_lookup_elem(&xdp_stats_map, &saddr);
	}
	if (count)
		__sync_fetch_and_add(count, 1);

	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
