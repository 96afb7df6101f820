// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * pktcount: the seeds' packet_count, grown up. An XDP program that counts
 * every TCP and UDP packet arriving on an interface by (source address,
 * source port, destination port, protocol), over IPv4 and IPv6, and always
 * lets the packet through.
 *
 * Maps (user space is src/tools/pktcount/, bindings in src/tools/pktcount/gen/):
 *
 *   flows        LRU hash, struct flow_key -> struct flow_value (packets,
 *                bytes). max_entries is a default here: `pktcount
 *                --max-entries N` sets it in the spec before the map is
 *                created. When the table is full the least recently used
 *                flow makes room.
 *   excluded_v4  LPM tries of source prefixes that are not counted at all
 *   excluded_v6  (keyed by prefix length + address, as the kernel wants);
 *                a packet from an excluded source only bumps stats.excluded.
 *   stats        per-CPU array of one struct pktcount_stats: what happened
 *                to every packet the program saw (summed over CPUs by user
 *                space, no atomics on the fast path).
 *
 * Keys hold the source address in 16 bytes, network order: IPv6 as is,
 * IPv4 as the IPv4-mapped address ::ffff:a.b.c.d, with `family` (4 or 6)
 * saying which. Ports are in host order. Up to two VLAN tags and the common
 * IPv6 extension headers are skipped; fragments after the first carry no
 * ports and are counted as other_l4.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DEFAULT_MAX_FLOWS 65536
#define MAX_EXCLUDED 4096
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT_HEADERS 6

struct flow_key {
	__u8 saddr[16]; /* network order; IPv4 as ::ffff:a.b.c.d */
	__u16 sport;    /* host order */
	__u16 dport;    /* host order */
	__u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;    /* 4 or 6 */
	__u8 pad[2];    /* always zero */
};

/*
 * What a flow is: every (source, sport, dport, proto) (0), or only the source address (1: ports
 * zeroed), or only the destination port (2: source address and port zeroed). Ephemeral source
 * ports otherwise make one flow per connection. Set by user space before load.
 */
#define AGGREGATE_FLOW 0
#define AGGREGATE_SRC 1
#define AGGREGATE_DPORT 2
const volatile __u8 aggregate = AGGREGATE_FLOW;

struct flow_value {
	__u64 packets;
	__u64 bytes; /* whole frames, as XDP sees them */
};

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct pktcount_stats {
	__u64 packets;   /* every frame the program saw */
	__u64 counted;   /* TCP and UDP packets counted in flows */
	__u64 excluded;  /* packets from an excluded source (not counted) */
	__u64 non_ip;    /* neither IPv4 nor IPv6 (ARP, LLDP, ...) */
	__u64 other_l4;  /* IP, but not TCP or UDP, or a fragment without ports */
	__u64 malformed; /* headers cut short or invalid */
	__u64 untracked; /* TCP/UDP packets whose flow could not be stored */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DEFAULT_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_EXCLUDED);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u8);
} excluded_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_EXCLUDED);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6_key);
	__type(value, __u8);
} excluded_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pktcount_stats);
} stats SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* Where parsing stands: the next header and what it is. */
struct cursor {
	void *pos;
	void *end;
};

enum verdict {
	V_COUNT,
	V_EXCLUDED,
	V_NON_IP,
	V_OTHER_L4,
	V_MALFORMED,
};

static __always_inline int is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* Fills key->sport/dport from a TCP or UDP header at c->pos. */
static __always_inline enum verdict parse_ports(struct cursor *c, __u8 proto, struct flow_key *key)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = c->pos;

		if ((void *)(tcp + 1) > c->end)
			return V_MALFORMED;
		key->sport = bpf_ntohs(tcp->source);
		key->dport = bpf_ntohs(tcp->dest);
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *udp = c->pos;

		if ((void *)(udp + 1) > c->end)
			return V_MALFORMED;
		key->sport = bpf_ntohs(udp->source);
		key->dport = bpf_ntohs(udp->dest);
	} else {
		return V_OTHER_L4;
	}
	key->proto = proto;
	return V_COUNT;
}

static __always_inline enum verdict parse_ipv4(struct cursor *c, struct flow_key *key)
{
	struct iphdr *ip = c->pos;
	struct lpm_v4_key lpm = { .prefixlen = 32 };
	__u32 hdr_len;

	if ((void *)(ip + 1) > c->end)
		return V_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return V_MALFORMED;

	key->family = 4;
	key->saddr[10] = 0xff;
	key->saddr[11] = 0xff;
	__builtin_memcpy(&key->saddr[12], &ip->saddr, 4);

	__builtin_memcpy(lpm.addr, &ip->saddr, 4);
	if (bpf_map_lookup_elem(&excluded_v4, &lpm))
		return V_EXCLUDED;

	/* A fragment after the first has no transport header. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return V_OTHER_L4;

	hdr_len = ip->ihl * 4;
	c->pos = (void *)ip + hdr_len;
	return parse_ports(c, ip->protocol, key);
}

static __always_inline enum verdict parse_ipv6(struct cursor *c, struct flow_key *key)
{
	struct ipv6hdr *ip6 = c->pos;
	struct lpm_v6_key lpm = { .prefixlen = 128 };
	__u8 next;
	int i;

	if ((void *)(ip6 + 1) > c->end)
		return V_MALFORMED;
	if (ip6->version != 6)
		return V_MALFORMED;

	key->family = 6;
	__builtin_memcpy(key->saddr, &ip6->saddr, 16);

	__builtin_memcpy(lpm.addr, &ip6->saddr, 16);
	if (bpf_map_lookup_elem(&excluded_v6, &lpm))
		return V_EXCLUDED;

	next = ip6->nexthdr;
	c->pos = ip6 + 1;

	/* Skip extension headers until the transport header (bounded). */
#pragma unroll
	for (i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
		__u8 *hdr = c->pos;

		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(hdr + 2) > c->end)
				return V_MALFORMED;
			next = hdr[0];
			c->pos = hdr + ((__u32)hdr[1] + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(hdr + 2) > c->end)
				return V_MALFORMED;
			next = hdr[0];
			c->pos = hdr + ((__u32)hdr[1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT: {
			struct frag_hdr {
				__u8 nexthdr;
				__u8 reserved;
				__be16 frag_off;
				__be32 identification;
			} *frag = c->pos;

			if ((void *)(frag + 1) > c->end)
				return V_MALFORMED;
			if (frag->frag_off & bpf_htons(0xfff8))
				return V_OTHER_L4;
			next = frag->nexthdr;
			c->pos = frag + 1;
			break;
		}
		default:
			return parse_ports(c, next, key);
		}
	}
	return V_OTHER_L4;
}

static __always_inline void count_flow(struct flow_key *key, __u64 len, struct pktcount_stats *st)
{
	struct flow_value *v, init = { .packets = 1, .bytes = len };

	v = bpf_map_lookup_elem(&flows, key);
	if (!v) {
		if (bpf_map_update_elem(&flows, key, &init, BPF_NOEXIST) == 0) {
			st->counted++;
			return;
		}
		/* Another CPU inserted it meanwhile: count on its entry. */
		v = bpf_map_lookup_elem(&flows, key);
		if (!v) {
			st->untracked++;
			return;
		}
	}
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, len);
	st->counted++;
}

SEC("xdp")
int xdp_pktcount(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cursor c = { .pos = data, .end = data_end };
	struct flow_key key = {};
	struct pktcount_stats *st;
	struct ethhdr *eth = data;
	enum verdict verdict;
	__u32 zero = 0;
	__be16 proto;
	int i;

	st = bpf_map_lookup_elem(&stats, &zero);
	if (!st)
		return XDP_PASS;
	st->packets++;

	if ((void *)(eth + 1) > data_end) {
		st->malformed++;
		return XDP_PASS;
	}
	proto = eth->h_proto;
	c.pos = eth + 1;

#pragma unroll
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_hdr *vlan = c.pos;

		if (!is_vlan(proto))
			break;
		if ((void *)(vlan + 1) > data_end) {
			st->malformed++;
			return XDP_PASS;
		}
		proto = vlan->encap_proto;
		c.pos = vlan + 1;
	}

	if (proto == bpf_htons(ETH_P_IP))
		verdict = parse_ipv4(&c, &key);
	else if (proto == bpf_htons(ETH_P_IPV6))
		verdict = parse_ipv6(&c, &key);
	else
		verdict = V_NON_IP;

	switch (verdict) {
	case V_COUNT:
		if (aggregate == AGGREGATE_SRC) {
			key.sport = 0;
			key.dport = 0;
		} else if (aggregate == AGGREGATE_DPORT) {
			__builtin_memset(key.saddr, 0, sizeof(key.saddr));
			key.sport = 0;
		}
		count_flow(&key, (__u64)(data_end - data), st);
		break;
	case V_EXCLUDED:
		st->excluded++;
		break;
	case V_NON_IP:
		st->non_ip++;
		break;
	case V_OTHER_L4:
		st->other_l4++;
		break;
	default:
		st->malformed++;
		break;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
