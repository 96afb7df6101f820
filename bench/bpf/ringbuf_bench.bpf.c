// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ring buffer producer for bench/ringbuf.bench.ts and bench/c/ringbuf-consumer.c.
 *
 * rb_produce is an XDP program meant for BPF_PROG_TEST_RUN (never attach it):
 * each run writes `count` 64-byte records into `ring` with
 * bpf_ringbuf_reserve + bpf_ringbuf_submit. The input packet (14 bytes) is
 *   offset 0  u32  count       records per run (capped at MAX_PER_RUN)
 *   offset 4  u32  flags       for bpf_ringbuf_submit of every record but the
 *                              run's last: 0 (adaptive wakeup),
 *                              BPF_RB_NO_WAKEUP (1) or BPF_RB_FORCE_WAKEUP (2)
 *   offset 8  u32  last_flags  the same for the run's last record
 * (host byte order). flags 1 and last_flags 2 wake a waiting reader once per
 * run instead of after every record it has caught up with. A record is { u64 seq; u64 fill[7]; } where seq is the
 * record's index within its run (0 .. count-1), fill[0..1] hold the
 * NUL-padded text "ringbuf-bench" (so the records can also be read as
 * { u32 seq; u32 hi; char comm[16]; ... }, like an exec event) and every
 * other fill word is FILL_WORD, so a consumer can check what it got by
 * summing seq.
 *
 * stats[0] counts the records written and the ones dropped because the ring
 * was full; the program returns how many it wrote in this run.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_PER_RUN 1024
#define FILL_WORD 0x0123456789abcdefULL
/* "ringbuf-bench\0\0\0" as two little-endian words. */
#define COMM_WORD0 0x2d667562676e6972ULL
#define COMM_WORD1 0x00000068636e6562ULL

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* 16 MiB */
} ring SEC(".maps");

struct stats {
	__u64 produced;
	__u64 dropped;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");

struct cmd {
	__u32 count;
	__u32 flags;
	__u32 last_flags;
};

struct record {
	__u64 seq;
	__u64 fill[7];
};

/* One record; false when the ring is full. */
static __always_inline int emit(__u32 seq, __u32 flags)
{
	struct record *rec = bpf_ringbuf_reserve(&ring, sizeof(*rec), 0);

	if (!rec)
		return 0;
	rec->seq = seq;
	rec->fill[0] = COMM_WORD0;
	rec->fill[1] = COMM_WORD1;
	rec->fill[2] = FILL_WORD;
	rec->fill[3] = FILL_WORD;
	rec->fill[4] = FILL_WORD;
	rec->fill[5] = FILL_WORD;
	rec->fill[6] = FILL_WORD;
	bpf_ringbuf_submit(rec, flags);
	return 1;
}

SEC("xdp")
int rb_produce(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cmd *cmd = data;
	struct stats *st;
	__u32 zero = 0, i, count, flags, last_flags;

	if ((void *)(cmd + 1) > data_end)
		return 0;
	count = cmd->count < MAX_PER_RUN ? cmd->count : MAX_PER_RUN;
	flags = cmd->flags;
	last_flags = cmd->last_flags;

	/* All records but the last one with `flags`, the last one with `last_flags`. */
	for (i = 0; i + 1 < count; i++) {
		if (!emit(i, flags))
			break;
	}
	if (count > 0 && i + 1 == count && emit(i, last_flags))
		i++;

	st = bpf_map_lookup_elem(&stats, &zero);
	if (st) {
		__sync_fetch_and_add(&st->produced, i);
		__sync_fetch_and_add(&st->dropped, count - i);
	}
	return i;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
