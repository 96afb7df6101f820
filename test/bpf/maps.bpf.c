// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One BTF-defined map of (nearly) every type, and one XDP program that
 * exercises them.  See test/bpf/README.md for the exact packet format and
 * the value each opcode returns.
 *
 * Packet layout read by xdp_maps (at least 14 bytes, the kernel's minimum for
 * BPF_PROG_TEST_RUN on XDP):
 *
 *   offset 0   u8   opcode (enum maps_op)
 *   offset 1   u8   flags  (per opcode, usually 0)
 *   offset 2   u16  reserved
 *   offset 4   u32  key    (host byte order, i.e. little-endian on x86)
 *   offset 8   u32  val    (host byte order; for OP_LPM_LOOKUP the four bytes
 *                           are an IPv4 address in network byte order)
 *
 * Results are returned as the program's return value: either the value
 * computed by the opcode, or 0 / a negative errno for opcodes that only
 * perform an action.  Negative numbers appear as u32 two's complement in
 * BPF_PROG_TEST_RUN's retval (e.g. -ENOENT == 0xfffffffe).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ENOENT 2
#define EINVAL 22
#define EOPNOTSUPP 95

/* ---------------------------------------------------------------- maps -- */

/* Plain hash: u32 -> u64. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} hash_map SEC(".maps");

/* Plain array: u32 -> u64. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} array_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} percpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} percpu_array SEC(".maps");

/* Deliberately tiny so tests can observe eviction. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} lru_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} lru_percpu_hash SEC(".maps");

/* Longest-prefix match on IPv4 addresses. */
struct ipv4_lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* required for LPM tries */
	__type(key, struct ipv4_lpm_key);
	__type(value, __u32);
} lpm_trie SEC(".maps");

/* Queue and stack have no key (key_size 0). */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, __u32);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 8);
	__type(value, __u32);
} stack SEC(".maps");

/* 16 KiB ring buffer; max_entries is the data size in bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} ringbuf SEC(".maps");

/*
 * Perf event array.  max_entries is left out (0) on purpose: the loader must
 * replace it with the number of possible CPUs, as libbpf and cilium/ebpf do.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_array SEC(".maps");

/* Program array left empty: tests insert programs themselves. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} prog_array SEC(".maps");

/*
 * Map-in-map.  "struct inner_map" is both the type of the two declared inner
 * maps and the template the outer maps are created with.
 */
struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} inner_map_a SEC(".maps"), inner_map_b SEC(".maps");

/* Array of maps, statically initialised: slot 0 holds inner_map_a. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_map);
} array_of_maps SEC(".maps") = {
	.values = {
		[0] = &inner_map_a,
	},
};

/* Hash of maps, created empty. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_map);
} hash_of_maps SEC(".maps");

/* A value type with most of the shapes BTF can describe. */
enum rich_color {
	RICH_RED = 0,
	RICH_GREEN = 1,
	RICH_BLUE = 2,
};

struct rich_point {
	__s32 x;
	__s32 y;
};

struct rich_value {
	struct rich_point origin; /* nested struct,     offset  0, size  8 */
	union {                   /* anonymous union,   offset  8, size  4 */
		__u32 word;
		__u8 bytes[4];
	} u;
	__u16 samples[4];         /* array,             offset 12, size  8 */
	char name[16];            /* char array,        offset 20, size 16 */
	enum rich_color color;    /* enum (4 bytes),    offset 36, size  4 */
	__u32 enabled : 1,        /* bitfields in one u32 at offset 40:   */
	      mode : 3,           /*   enabled bit 0, mode bits 1-3,      */
	      level : 4;          /*   level bits 4-7                     */
	__u64 total;              /* u64,               offset 48 (8 aligned) */
	__s32 delta;              /* s32,               offset 56; size 64 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct rich_value);
} rich_map SEC(".maps");

/* ------------------------------------------------------ tail call target -- */

#define TAIL_TARGET_RET 0xca11

/* Reached through jmp_table[0]. */
SEC("xdp")
int xdp_tail_target(struct xdp_md *ctx)
{
	return TAIL_TARGET_RET;
}

/* Program array statically initialised with the program above at index 0. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int(struct xdp_md *));
} jmp_table SEC(".maps") = {
	.values = {
		[0] = (void *)&xdp_tail_target,
	},
};

/* -------------------------------------------------------------- program -- */

enum maps_op {
	OP_NOP = 0x00,
	OP_HASH_INC = 0x01,
	OP_ARRAY_ADD = 0x02,
	OP_PERCPU_ARRAY_ADD = 0x03,
	OP_PERCPU_HASH_ADD = 0x04,
	OP_LRU_SET = 0x05,
	OP_LRU_PERCPU_SET = 0x06,
	OP_LPM_LOOKUP = 0x07,
	OP_QUEUE_PUSH = 0x08,
	OP_QUEUE_POP = 0x09,
	OP_STACK_PUSH = 0x0a,
	OP_STACK_POP = 0x0b,
	OP_RINGBUF_OUTPUT = 0x0c,
	OP_PERF_OUTPUT = 0x0d,
	OP_TAIL_CALL_STATIC = 0x0e,
	OP_TAIL_CALL_DYNAMIC = 0x0f,
	OP_ARRAY_OF_MAPS = 0x10,
	OP_HASH_OF_MAPS = 0x11,
	OP_RICH_READ = 0x12,
	OP_RICH_WRITE = 0x13,
};

struct maps_cmd {
	__u8 op;
	__u8 flags;
	__u16 reserved;
	__u32 key;
	__u32 val;
};

/* Record written by OP_RINGBUF_OUTPUT and OP_PERF_OUTPUT: 64 bytes. */
#define MAPS_EVENT_MAGIC 0x4b465042 /* bytes "BPFK" in memory */

struct maps_event {
	__u32 magic;
	__u8 op;
	__u8 flags;
	__u16 reserved;
	__u32 key;
	__u32 val;
	__u8 payload[48]; /* payload[i] == (u8)(key + i) */
};

/* Add delta to a u64 map value, inserting it with `delta` if missing. */
static __always_inline int add_to(void *map, __u32 key, __u64 delta)
{
	__u64 *value = bpf_map_lookup_elem(map, &key);
	int err;

	if (value) {
		*value += delta;
		return (int)*value;
	}
	err = bpf_map_update_elem(map, &key, &delta, BPF_NOEXIST);
	return err ? err : (int)delta;
}

static __always_inline int fill_event(struct maps_event *ev, const struct maps_cmd *cmd)
{
	int i;

	ev->magic = MAPS_EVENT_MAGIC;
	ev->op = cmd->op;
	ev->flags = cmd->flags;
	ev->reserved = 0;
	ev->key = cmd->key;
	ev->val = cmd->val;
	for (i = 0; i < (int)sizeof(ev->payload); i++)
		ev->payload[i] = (__u8)(cmd->key + i);
	return 0;
}

static __always_inline int lpm_lookup(const struct maps_cmd *cmd)
{
	struct ipv4_lpm_key key = { .prefixlen = 32 };
	__u32 *value;

	__builtin_memcpy(key.addr, &cmd->val, sizeof(key.addr));
	value = bpf_map_lookup_elem(&lpm_trie, &key);
	return value ? (int)*value : -ENOENT;
}

static __always_inline int pop_from(void *map)
{
	__u32 value;
	int err = bpf_map_pop_elem(map, &value);

	return err ? err : (int)value;
}

static __always_inline int inner_lookup(void *outer, __u32 key)
{
	__u32 zero = 0;
	__u32 *value;
	void *inner;

	inner = bpf_map_lookup_elem(outer, &key);
	if (!inner)
		return -ENOENT;
	value = bpf_map_lookup_elem(inner, &zero);
	return value ? (int)*value : -ENOENT;
}

/* flags selects the field; see README for the table. */
static __always_inline int rich_read(__u32 key, __u8 field)
{
	struct rich_value *v = bpf_map_lookup_elem(&rich_map, &key);

	if (!v)
		return -ENOENT;
	switch (field) {
	case 0: return v->origin.x;
	case 1: return v->origin.y;
	case 2: return v->u.word;
	case 3: return v->u.bytes[0];
	case 4: return v->samples[0];
	case 5: return v->samples[3];
	case 6: return v->name[0];
	case 7: return v->color;
	case 8: return v->enabled;
	case 9: return v->mode;
	case 10: return v->level;
	case 11: return (__u32)v->total;
	case 12: return (__u32)(v->total >> 32);
	case 13: return v->delta;
	default: return -EINVAL;
	}
}

/*
 * Store a fixed, documented value whose delta is taken from the packet.  The
 * fields are assigned one by one (rather than from an initialiser) so that
 * clang does not put a constant copy of the struct into .rodata.cst16.
 */
static __always_inline int rich_write(__u32 key, __u32 delta)
{
	struct rich_value zero = {};
	struct rich_value *v;
	int err;

	err = bpf_map_update_elem(&rich_map, &key, &zero, BPF_ANY);
	if (err)
		return err;
	v = bpf_map_lookup_elem(&rich_map, &key);
	if (!v)
		return -ENOENT;
	v->origin.x = -1;
	v->origin.y = 2;
	v->u.word = 0x04030201;
	v->samples[0] = 10;
	v->samples[1] = 20;
	v->samples[2] = 30;
	v->samples[3] = 40;
	v->name[0] = 'b';
	v->name[1] = 'p';
	v->name[2] = 'f';
	v->name[3] = 'k';
	v->name[4] = 'i';
	v->name[5] = 't';
	v->color = RICH_BLUE;
	v->enabled = 1;
	v->mode = 5;
	v->level = 9;
	v->total = 0x0123456789abcdefULL;
	v->delta = (__s32)delta;
	return 0;
}

SEC("xdp")
int xdp_maps(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct maps_cmd *cmd = data;
	struct maps_event ev;

	if ((void *)(cmd + 1) > data_end)
		return -EINVAL;

	switch (cmd->op) {
	case OP_NOP:
		return XDP_PASS;
	case OP_HASH_INC:
		return add_to(&hash_map, cmd->key, 1);
	case OP_ARRAY_ADD: {
		__u64 *value = bpf_map_lookup_elem(&array_map, &cmd->key);

		if (!value)
			return -ENOENT;
		*value += cmd->val;
		return (int)*value;
	}
	case OP_PERCPU_ARRAY_ADD: {
		__u64 *value = bpf_map_lookup_elem(&percpu_array, &cmd->key);

		if (!value)
			return -ENOENT;
		*value += cmd->val;
		return (int)*value;
	}
	case OP_PERCPU_HASH_ADD:
		return add_to(&percpu_hash, cmd->key, cmd->val);
	case OP_LRU_SET: {
		__u64 value = cmd->val;

		return bpf_map_update_elem(&lru_hash, &cmd->key, &value, BPF_ANY);
	}
	case OP_LRU_PERCPU_SET: {
		__u64 value = cmd->val;

		return bpf_map_update_elem(&lru_percpu_hash, &cmd->key, &value, BPF_ANY);
	}
	case OP_LPM_LOOKUP:
		return lpm_lookup(cmd);
	case OP_QUEUE_PUSH:
		return bpf_map_push_elem(&queue, &cmd->key, cmd->flags);
	case OP_QUEUE_POP:
		return pop_from(&queue);
	case OP_STACK_PUSH:
		return bpf_map_push_elem(&stack, &cmd->key, cmd->flags);
	case OP_STACK_POP:
		return pop_from(&stack);
	case OP_RINGBUF_OUTPUT:
		fill_event(&ev, cmd);
		return bpf_ringbuf_output(&ringbuf, &ev, sizeof(ev), cmd->flags);
	case OP_PERF_OUTPUT:
		fill_event(&ev, cmd);
		return bpf_perf_event_output(ctx, &perf_array, BPF_F_CURRENT_CPU, &ev, sizeof(ev));
	case OP_TAIL_CALL_STATIC:
		bpf_tail_call(ctx, &jmp_table, cmd->key);
		return -ENOENT; /* only reached when the slot is empty */
	case OP_TAIL_CALL_DYNAMIC:
		bpf_tail_call(ctx, &prog_array, cmd->key);
		return -ENOENT;
	case OP_ARRAY_OF_MAPS:
		return inner_lookup(&array_of_maps, cmd->key);
	case OP_HASH_OF_MAPS:
		return inner_lookup(&hash_of_maps, cmd->key);
	case OP_RICH_READ:
		return rich_read(cmd->key, cmd->flags);
	case OP_RICH_WRITE:
		return rich_write(cmd->key, cmd->val);
	default:
		return -EOPNOTSUPP;
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
