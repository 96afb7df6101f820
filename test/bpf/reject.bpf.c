// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A program the verifier must reject: it reads the first byte of the packet
 * without first checking it against ctx->data_end.  Loading it has to fail
 * with EACCES and a verifier log; test/bpf/README.md records the log this
 * kernel prints.  It compiles cleanly: only the kernel objects to it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_reject(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;

	/* Missing: if (data + 1 > (__u8 *)(long)ctx->data_end) return XDP_PASS; */
	return data[0] == 0xff ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
