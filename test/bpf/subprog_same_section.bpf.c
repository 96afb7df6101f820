// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A BPF-to-BPF call whose callee sits in the same ELF section as its caller
 * (section "xdp"), not in .text.  clang resolves such a call itself: the call
 * instruction has no relocation and its immediate already holds the
 * pc-relative distance to the callee.
 *
 * libbpf (and therefore bpftool) refuses this object at open time with
 *   libbpf: sec 'xdp': program 'read_x_plus_1000' is static and not supported
 * because libbpf only accepts sub-programs in .text.  cilium/ebpf accepts it:
 * every function in a program section becomes a program of that section's
 * type, and section-relative calls are resolved by offset.  That is why the
 * callee takes the context pointer and is itself a valid XDP program.
 *
 * Packet (at least 14 bytes): offset 4 holds a u32 x (host byte order).
 *
 *   xdp_same_section  returns 2 * (1000 + (x & 0xff))
 *   read_x_plus_1000  returns 1000 + (x & 0xff)   (if loaded as a program)
 *   both return XDP_ABORTED (0) for a packet shorter than 8 bytes (which
 *   BPF_PROG_TEST_RUN never passes: its minimum is 14).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __noinline int read_x_plus_1000(struct xdp_md *ctx) SEC("xdp");

SEC("xdp")
int xdp_same_section(struct xdp_md *ctx)
{
	int v = read_x_plus_1000(ctx);

	return v ? v * 2 : XDP_ABORTED;
}

/* Same section as xdp_same_section: placed after it, at a non-zero offset. */
static __noinline int read_x_plus_1000(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *data_end = (void *)(long)ctx->data_end;

	if (data + 8 > data_end)
		return XDP_ABORTED;
	return 1000 + data[4];
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
