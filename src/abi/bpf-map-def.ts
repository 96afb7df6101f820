/**
 * The legacy `SEC("maps")` map definitions. These are libbpf's structs (bpf_helpers.h), and the
 * longer one samples/bpf used, not the kernel's: no kernel BTF carries them, so gen-abi cannot
 * generate them and they are written here by hand, in the generated layouts' shape (./uapi.ts, ./layout.ts).
 */

/** libbpf's `struct bpf_map_def`: five u32s. */
export const bpf_map_def = {
  $size: 20,
  type: 0,
  key_size: 4,
  value_size: 8,
  max_entries: 12,
  map_flags: 16,
  $sizeof: { type: 4, key_size: 4, value_size: 4, max_entries: 4, map_flags: 4 },
} as const;

/** samples/bpf's `struct bpf_map_def_legacy`: bpf_map_def, then inner_map_idx and numa_node. */
export const bpf_map_def_legacy = {
  ...bpf_map_def,
  $size: 28,
  inner_map_idx: 20,
  numa_node: 24,
  $sizeof: { ...bpf_map_def.$sizeof, inner_map_idx: 4, numa_node: 4 },
} as const;
