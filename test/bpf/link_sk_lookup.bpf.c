// SPDX-License-Identifier: GPL-2.0-only
/*
 * An sk_lookup program for test/kernel/link-kernel-hooks.test.ts. It counts the lookups it sees,
 * and steers TCP connections to port 47113 (where nothing listens) to the socket in
 * steer_map[0], when there is one.
 *
 * sk_lookup_counts: [0] lookups, [1] lookups for TCP port 47113, [2] of those steered.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#define STEER_PORT 47113

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} steer_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} sk_lookup_counts SEC(".maps");

static __always_inline void add(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&sk_lookup_counts, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("sk_lookup")
int steer(struct bpf_sk_lookup *ctx)
{
	__u32 zero = 0;
	struct bpf_sock *sk;
	long err;

	add(0);
	if (ctx->protocol != IPPROTO_TCP || ctx->local_port != STEER_PORT)
		return SK_PASS;
	add(1);
	sk = bpf_map_lookup_elem(&steer_map, &zero);
	if (!sk)
		return SK_PASS;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err)
		return SK_DROP;
	add(2);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
