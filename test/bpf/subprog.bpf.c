// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF-to-BPF calls in the shapes a loader has to relocate:
 *
 *   add_seven        static __noinline function in .text
 *   global_scale     global (non-static) __noinline function in .text, called
 *                    from two programs in two different sections (xdp, tc);
 *                    the verifier checks it on its own, by its BTF signature
 *   chain_a/b/c      a chain of static calls a -> b -> c in .text
 *
 * (A function in the same ELF section as its caller lives in
 * subprog_same_section.bpf.c, because libbpf refuses such objects.)
 *
 * In the object, calls between .text functions (chain_a -> chain_b) carry no
 * relocation (the pc-relative offset is final), calls from a program to a
 * static .text function are relocated against the .text section symbol, and
 * calls to global_scale against the global_scale symbol.
 *
 * Packet (at least 14 bytes):
 *   offset 0  u8   mode   (xdp_subprog only; tc_subprog ignores it)
 *   offset 4  u32  x      (host byte order)
 *
 * xdp_subprog returns, per mode:
 *   0  add_seven(x)                         = x + 7
 *   1  chain_a(x)                           = (3x + 5) * 2 = 6x + 10
 *   2  global_scale(x, 2)                   = 2x + 1
 *   3  global_scale(chain_a(x), 2) + add_seven(x)
 *        = (12x + 21) + (x + 7) = 13x + 28
 *   other: 0xffffffff
 *
 * tc_subprog returns global_scale(x, 10) = 10x + 1.
 * All arithmetic is modulo 2^32.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct subprog_cmd {
	__u8 mode;
	__u8 pad[3];
	__u32 x;
};

static __noinline __u32 add_seven(__u32 x)
{
	return x + 7;
}

static __noinline __u32 chain_c(__u32 x)
{
	return x * 3;
}

static __noinline __u32 chain_b(__u32 x)
{
	return chain_c(x) + 5;
}

static __noinline __u32 chain_a(__u32 x)
{
	return chain_b(x) * 2;
}

/* Global function: not static, so it has external linkage and BTF
 * "global" linkage; the kernel verifies it independently of its callers. */
__noinline int global_scale(__u32 x, __u32 factor)
{
	return x * factor + 1;
}

SEC("xdp")
int xdp_subprog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct subprog_cmd *cmd = data;
	__u32 x;

	if ((void *)(cmd + 1) > data_end)
		return XDP_ABORTED;
	x = cmd->x;

	switch (cmd->mode) {
	case 0:
		return add_seven(x);
	case 1:
		return chain_a(x);
	case 2:
		return global_scale(x, 2);
	case 3:
		return global_scale(chain_a(x), 2) + add_seven(x);
	default:
		return -1;
	}
}

SEC("tc")
int tc_subprog(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct subprog_cmd *cmd = data;

	if ((void *)(cmd + 1) > data_end)
		return -1;
	return global_scale(cmd->x, 10);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
