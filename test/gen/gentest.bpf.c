// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The test program of `bpfkit gen`: maps of every common kind keyed and valued
 * by structs that use nested structs, unions (named and anonymous), arrays,
 * bitfields (unsigned, signed, _Bool, wider than 32 bits) and enums, plus
 * global variables in .rodata, .data and .bss.
 *
 * gen_copy (XDP) is what the kernel test runs with BPF_PROG_TEST_RUN:
 *
 *   1. copies gen_array[0] (written by the test from TypeScript) to
 *      gen_hash[cfg_key] byte for byte, and into .bss gen_last;
 *   2. writes gen_array[1] field by field from C with the values listed at
 *      the end of this file, for the test to decode;
 *   3. pushes a gen_event onto gen_queue, bumps gen_percpu[0] and
 *      gen_lru[cfg_key], counts runs in gen_runs.
 *
 * It returns XDP_PASS, or XDP_ABORTED when gen_array is unreadable.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum gen_color {
	GEN_RED = 0,
	GEN_GREEN = 1,
	GEN_BLUE = 2,
	GEN_ALSO_BLUE = 2,
	GEN_WHITE = 0xffffffff,
};

enum gen_kind {
	GEN_KIND_NONE,
	GEN_KIND_PACKET,
	GEN_KIND_EXIT,
};

struct gen_addr {
	__u8 bytes[16];
};

/* 24 bytes, no padding: safe as a hash key. */
struct gen_key {
	__u32 ifindex;
	__u16 port;
	__u8 proto;
	__u8 flags : 3, kind : 5;
	struct gen_addr addr;
};

union gen_payload {
	__u64 raw;
	__u32 words[2];
	struct {
		__u16 lo;
		__u16 hi;
	} halves;
};

typedef __u64 gen_counter_t;

struct gen_value {
	gen_counter_t packets;
	__u64 bytes;
	__s32 delta;
	enum gen_color color;
	char name[16];
	__u32 hist[4];
	struct gen_addr peers[2];
	union gen_payload payload;
	/* Anonymous union: its members sit directly in gen_value. */
	union {
		__u32 as_u32;
		float as_f32;
	};
	struct {
		__u8 a : 4, b : 4;
		__s8 c : 4;
		_Bool ok : 1;
		enum gen_kind k : 3;
	} bits;
	__s64 signed64;
	_Bool flag;
	/* Bitfields of a 64-bit type: they share flag's 8-byte unit; 40 bits stay a bigint. */
	__u64 wide : 40, narrow : 24;
	__s16 matrix[2][3];
	__u8 tail;
};

struct gen_counters {
	__u64 hits;
	__u32 last_port;
};

struct gen_event {
	__u64 ts;
	__u32 pid;
	enum gen_kind kind;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct gen_key);
	__type(value, struct gen_value);
} gen_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct gen_value);
} gen_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct gen_counters);
} gen_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8);
	__type(key, struct gen_key);
	__type(value, __u64);
} gen_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} gen_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, struct gen_event);
} gen_queue SEC(".maps");

/* .rodata: set from TypeScript through loadGentest({ rodata }). */
const volatile struct gen_key cfg_key = { .ifindex = 1, .port = 80 };
const volatile __u32 cfg_multiplier = 1;
const volatile enum gen_color cfg_color = GEN_GREEN;

/* .data */
__u32 gen_data_counter = 7;

/* .bss */
__u64 gen_runs;
struct gen_value gen_last;

SEC("xdp")
int gen_copy(struct xdp_md *ctx)
{
	struct gen_key key = cfg_key;
	struct gen_event ev = {};
	struct gen_counters *cnt;
	struct gen_value *in, *out;
	__u32 zero = 0, one = 1;
	__u64 lru;

	in = bpf_map_lookup_elem(&gen_array, &zero);
	if (!in)
		return XDP_ABORTED;
	bpf_map_update_elem(&gen_hash, &key, in, BPF_ANY);
	__builtin_memcpy(&gen_last, in, sizeof(gen_last));

	out = bpf_map_lookup_elem(&gen_array, &one);
	if (!out)
		return XDP_ABORTED;
	__builtin_memset(out, 0, sizeof(*out));
	out->packets = in->packets * cfg_multiplier;
	out->bytes = 0x1122334455667788ULL;
	out->delta = -5;
	out->color = cfg_color;
	out->name[0] = 'g';
	out->name[1] = 'e';
	out->name[2] = 'n';
	out->hist[3] = 0xdeadbeef;
	out->peers[1].bytes[15] = 0xab;
	out->payload.halves.hi = 0x1234;
	out->as_u32 = 0x3f800000; /* 1.0f */
	out->bits.a = 9;
	out->bits.b = 6;
	out->bits.c = -3;
	out->bits.ok = 1;
	out->bits.k = GEN_KIND_EXIT;
	out->signed64 = -1234567890123LL;
	out->flag = 1;
	out->wide = 0xfedcba9876ULL;
	out->narrow = 0xabcdef;
	out->matrix[1][2] = -7;
	out->tail = 0x5a;

	ev.ts = in->bytes;
	ev.pid = key.ifindex;
	ev.kind = GEN_KIND_PACKET;
	ev.comm[0] = 'q';
	bpf_map_push_elem(&gen_queue, &ev, BPF_ANY);

	cnt = bpf_map_lookup_elem(&gen_percpu, &zero);
	if (cnt) {
		cnt->hits++;
		cnt->last_port = key.port;
	}
	lru = in->packets * cfg_multiplier;
	bpf_map_update_elem(&gen_lru, &key, &lru, BPF_ANY);
	if (in->tail == 0xff)
		bpf_ringbuf_output(&gen_events, &ev, sizeof(ev), 0);

	gen_runs++;
	gen_data_counter++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
