// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The map of bench/maps.bench.ts: a hash map u32 -> u64 with BTF, so bpfkit decodes keys as
 * numbers and values as bigints, next to libbpf-bench's map-ops on a map of the same shape.
 * The program only makes the object loadable.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20);
	__type(key, __u32);
	__type(value, __u64);
} bench_hash SEC(".maps");

SEC("xdp")
int maps_bench(struct xdp_md *ctx)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&bench_hash, &key) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
