// SPDX-License-Identifier: GPL-2.0-only
/*
 * USDT programs for test/kernel/link-usdt.test.ts, run against test/fixtures/usdt_target.c.
 * They read their arguments with libbpf's usdt.bpf.h (BPF_USDT, bpf_usdt_arg), whose spec maps
 * bpfkit's attachUsdt() fills. Every result goes into usdt_counts[<slot>] (signed sums as u64).
 *
 * The guarded program's section names the binary: the test builds the target at
 * /tmp/bpfkit-usdt-fixture/usdt_target so attach() can find it from the section alone.
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

enum slot {
	U_HITS = 0,         /* usdt_hit: calls */
	U_X_SUM = 1,        /* usdt_hit: sum of x (int, sign-extended) */
	U_Y_SUM = 2,        /* usdt_hit: sum of y (long) */
	U_BYTE_SUM = 3,     /* usdt_hit: sum of the first byte p points at */
	U_ARG_CNT = 4,      /* usdt_hit: sum of bpf_usdt_arg_cnt() */
	U_COOKIE = 5,       /* usdt_hit: sum of bpf_usdt_cookie() */
	U_NOARG = 6,        /* usdt_hit: calls where bpf_usdt_arg(ctx, 3) said -ENOENT */
	G_HITS = 8,         /* usdt_guarded: calls */
	G_A_SUM = 9,        /* usdt_guarded: sum of a */
	G_B_SUM = 10,       /* usdt_guarded: sum of b */
	G_C_SUM = 11,       /* usdt_guarded: sum of c (a global named by symbol, %rip-relative) */
	G_D_SUM = 12,       /* usdt_guarded: sum of d (a global array element, symbol + 16) */
	S_MAX = 16,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, __u32);
	__type(value, __u64);
} usdt_counts SEC(".maps");

static __always_inline void add(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&usdt_counts, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("usdt")
int BPF_USDT(usdt_hit, int x, long y, char *p)
{
	unsigned char first = 0;
	long extra;

	add(U_HITS, 1);
	add(U_X_SUM, (__u64)(long)x);
	add(U_Y_SUM, (__u64)y);
	if (bpf_probe_read_user(&first, 1, p) == 0)
		add(U_BYTE_SUM, first);
	add(U_ARG_CNT, bpf_usdt_arg_cnt(ctx));
	add(U_COOKIE, bpf_usdt_cookie(ctx));
	if (bpf_usdt_arg(ctx, 3, &extra) == -ENOENT)
		add(U_NOARG, 1);
	return 0;
}

SEC("usdt//tmp/bpfkit-usdt-fixture/usdt_target:bpfkit:guarded")
int BPF_USDT(usdt_guarded, int a, int b, int c, long d)
{
	add(G_HITS, 1);
	add(G_A_SUM, (__u64)(long)a);
	add(G_B_SUM, (__u64)(long)b);
	add(G_C_SUM, (__u64)(long)c);
	add(G_D_SUM, (__u64)d);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
