// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Legacy map definitions longer than struct bpf_map_def (samples/bpf's bpf_map_def_legacy layout:
 * inner_map_idx and numa_node follow map_flags).  Extra bytes must be zero (libbpf's strict check)
 * except numa_node, which bpfkit honours: legacy_numa asks for node 0 with BPF_F_NUMA_NODE unset,
 * so every field past map_flags is zero here; tests set bytes to see them refused.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def_legacy {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
	unsigned int inner_map_idx;
	unsigned int numa_node;
	unsigned int reserved;
};

struct bpf_map_def_legacy SEC("maps") legacy_numa = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 4,
};

SEC("xdp")
int xdp_legacy_long(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&legacy_numa, &key);

	if (v)
		*v += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
