// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Legacy (pre-BTF) map definitions: fixed-layout structs in the "maps"
 * section.  The loader finds each map by its symbol and reads five u32s:
 * type, key_size, value_size, max_entries, map_flags.  Both definitions have
 * the same size (20 bytes), so "section size / number of symbols" works.
 *
 * libbpf 1.0 and later refuse this object ("legacy map definitions in 'maps'
 * section are not supported"); cilium/ebpf still loads it.
 *
 * xdp_legacy: packet (at least 14 bytes) holds u32 key at offset 0 and u32
 * value at offset 4 (host byte order).  It increments legacy_counter[0],
 * stores legacy_hash[key] = value and returns the new counter value.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Our own copy of the old libbpf struct (removed from libbpf's headers). */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_counter = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1,
};

struct bpf_map_def SEC("maps") legacy_hash = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 16,
	.map_flags = BPF_F_NO_PREALLOC,
};

SEC("xdp")
int xdp_legacy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *words = data;
	__u32 zero = 0, key, value;
	__u64 *counter;

	if ((void *)(words + 2) > data_end)
		return XDP_ABORTED;
	key = words[0];
	value = words[1];

	if (bpf_map_update_elem(&legacy_hash, &key, &value, BPF_ANY))
		return XDP_ABORTED;
	counter = bpf_map_lookup_elem(&legacy_counter, &zero);
	if (!counter)
		return XDP_ABORTED;
	*counter += 1;
	return (int)*counter;
}

char LICENSE[] SEC("license") = "GPL";
