// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Perf buffer producer for bench/perf.bench.ts and bench/c/perf-consumer.c.
 *
 * perf_produce is an XDP program meant for BPF_PROG_TEST_RUN (never attach
 * it): each run writes `count` 64-byte samples with
 * bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ...), so they land in
 * the ring of the CPU the run executes on. The input packet (14 bytes) is
 *   offset 0  u32  count   samples per run (capped at MAX_PER_RUN)
 * (host byte order). A sample is { u64 seq; u64 fill[7]; } where seq is the
 * sample's index within its run, fill[0..1] hold the NUL-padded text
 * "perf-bench" (so a sample also reads as { u32 seq; u32 hi; char comm[16];
 * ... }, like an exec event) and every other fill word is FILL_WORD. Perf pads
 * the u32 size plus the data to 8 bytes: readers see 68-byte raw samples.
 *
 * stats[0] counts the samples written and the ones the kernel refused (ring
 * full, or no reader on this CPU); the program returns how many it wrote.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_PER_RUN 1024
#define FILL_WORD 0x0123456789abcdefULL
/* "perf-bench\0\0\0\0\0\0" as two little-endian words. */
#define COMM_WORD0 0x6e65622d66726570ULL
#define COMM_WORD1 0x0000000000006863ULL

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

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
};

struct record {
	__u64 seq;
	__u64 fill[7];
};

SEC("xdp")
int perf_produce(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cmd *cmd = data;
	struct record rec;
	struct stats *st;
	__u32 zero = 0, i, count, written = 0;

	if ((void *)(cmd + 1) > data_end)
		return 0;
	count = cmd->count < MAX_PER_RUN ? cmd->count : MAX_PER_RUN;

	rec.fill[0] = COMM_WORD0;
	rec.fill[1] = COMM_WORD1;
	rec.fill[2] = FILL_WORD;
	rec.fill[3] = FILL_WORD;
	rec.fill[4] = FILL_WORD;
	rec.fill[5] = FILL_WORD;
	rec.fill[6] = FILL_WORD;
	for (i = 0; i < count; i++) {
		rec.seq = i;
		if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &rec, sizeof(rec)) == 0)
			written++;
	}

	st = bpf_map_lookup_elem(&stats, &zero);
	if (st) {
		__sync_fetch_and_add(&st->produced, written);
		__sync_fetch_and_add(&st->dropped, count - written);
	}
	return written;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
