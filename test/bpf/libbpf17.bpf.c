// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What libbpf 1.7 accepts that libbpf 1.1 did not, and global-data flags as libbpf sets them:
 *
 * - xdp_unknown lives in a section no convention names: libbpf parses the object and fails only
 *   that program, only when it is loaded.  xdp_known (SEC("xdp")) returns XDP_PASS (2).
 * - bloom is a bloom filter whose map_extra (number of hash functions, 5) is given with
 *   __ulong(), an anonymous enum with one enumerator (libbpf 1.4+'s bpf_helpers.h).
 * - .data has a global variable (mmapable), .data.statics only static ones (not mmapable),
 *   .rodata a global const (read-only for programs, mmapable).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef __ulong
#define __ulong(name, val) enum { ___bpf_concat(__unique_value, __COUNTER__) = val } name
#endif

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__type(value, __u32);
	__uint(max_entries, 16);
	__ulong(map_extra, 5);
} bloom SEC(".maps");

int global_counter = 1;
const volatile int global_limit = 7;
static int static_a SEC(".data.statics") = 3;
static int static_b SEC(".data.statics") = 4;

SEC("bpfkit/no_such_convention")
int xdp_unknown(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_known(struct xdp_md *ctx)
{
	global_counter += global_limit;
	static_a += static_b;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
