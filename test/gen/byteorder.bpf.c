// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The test program of `bpfkit gen --target both`: types whose bytes depend on
 * the byte order (integers of every width, floats, enums, a union, bitfields
 * within a byte, across bytes and 64 bits wide), and globals in .rodata and
 * .data initialised here, so that the test can decode each object's own bytes
 * with the codecs of its byte order and must get the values written below.
 * bo_prog's code differs between the two (a byte swap on little-endian only),
 * which the bindings do not depend on.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

enum bo_mode {
	BO_OFF = 0,
	BO_ON = 0x1234,
};

struct bo_bits {
	__u8 lo : 3, hi : 5;
	__u16 mid : 9;
	__u32 x : 3, y : 11, z : 18;
	__s32 neg : 7;
	_Bool ok : 1;
	enum bo_mode mode : 16;
	__u64 wide : 40, rest : 24;
};

union bo_word {
	__u32 whole;
	__u16 halves[2];
};

struct bo_value {
	__u8 tag;
	__s16 delta;
	__u32 addr;
	__u64 count;
	__s64 offset;
	float ratio;
	double scale;
	enum bo_mode mode;
	union bo_word word;
	__u16 ports[3];
	struct bo_bits bits;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, struct bo_bits);
	__type(value, struct bo_value);
} bo_map SEC(".maps");

/* .rodata */
const volatile struct bo_value bo_config = {
	.tag = 0xa5,
	.delta = -300,
	.addr = 0x0a000001,
	.count = 0x0102030405060708ULL,
	.offset = -5000000000LL,
	.ratio = 1.5f,
	.scale = -0.25,
	.mode = BO_ON,
	.word = { .whole = 0x11223344 },
	.ports = { 80, 443, 0xbeef },
	.bits = {
		.lo = 5, .hi = 17, .mid = 300, .x = 6, .y = 1500, .z = 200000,
		.neg = -42, .ok = 1, .mode = BO_ON,
		.wide = 0x123456789aULL, .rest = 0xabcdef,
	},
};

/* .data */
struct bo_bits bo_state = {
	.lo = 2, .hi = 30, .mid = 511, .x = 1, .y = 2047, .z = 3,
	.neg = 63, .ok = 0, .mode = BO_OFF,
	.wide = 1, .rest = 0x800000,
};

/* .bss */
__u64 bo_runs;

SEC("xdp")
int bo_prog(struct xdp_md *ctx)
{
	struct bo_bits key = bo_state;
	struct bo_value value = bo_config;

	bo_runs++;
	value.ports[0] = bpf_htons((__u16)ctx->ingress_ifindex);
	bpf_map_update_elem(&bo_map, &key, &value, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
