// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Producers for the drop-counting tests (bpf/include/bpfkit/drops.h).
 *
 * Both programs read a u32 `count` at offset 0 of the packet (host byte
 * order, capped at DROPS_MAX) and try to send that many 64-byte records into
 * a ring of 4 KiB, which holds 56 of them (64 bytes plus an 8-byte header
 * each). What does not fit is counted in `dropped`. They return how many
 * records they sent.
 *
 * xdp_drops_reserve  bpfkit_ringbuf_reserve + bpf_ringbuf_submit
 * xdp_drops_output   bpfkit_ringbuf_output
 * xdp_drops_perf     bpfkit_perf_event_output into `perf_events` (this CPU's
 *                    ring, whose size the reader chooses)
 *
 * Record: { seq, count, magic, pad[13] } (u32 each).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpfkit/drops.h>

#define DROPS_MAX 512
#define DROPS_MAGIC 0x44524f50 /* "PORD" in memory */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

BPFKIT_DROPS_MAP(dropped);

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct drop_record {
	__u32 seq;
	__u32 count;
	__u32 magic;
	__u32 pad[13];
};

static __always_inline __u32 read_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *count = data;

	if ((void *)(count + 1) > data_end)
		return 0;
	return *count < DROPS_MAX ? *count : DROPS_MAX;
}

enum send_kind { SEND_RESERVE, SEND_OUTPUT, SEND_PERF };

/*
 * One send per bpf_loop iteration: the verifier checks the callback once,
 * where an unrolled loop would follow every count of records sent so far.
 */
struct burst {
	struct xdp_md *ctx;
	__u32 kind;
	__u32 count;
	__u32 sent;
};

static long send_one(__u64 i, void *data)
{
	struct burst *b = data;
	struct drop_record r = { .seq = i, .count = b->count, .magic = DROPS_MAGIC };
	struct drop_record *slot;
	long err = 0;

	switch (b->kind) {
	case SEND_RESERVE:
		slot = bpfkit_ringbuf_reserve(&events, sizeof(*slot), &dropped);
		if (!slot)
			return 0;
		__builtin_memcpy(slot, &r, sizeof(r));
		bpf_ringbuf_submit(slot, BPF_RB_NO_WAKEUP);
		break;
	case SEND_OUTPUT:
		err = bpfkit_ringbuf_output(&events, &r, sizeof(r), BPF_RB_NO_WAKEUP, &dropped);
		break;
	default:
		err = bpfkit_perf_event_output(b->ctx, &perf_events, BPF_F_CURRENT_CPU, &r, sizeof(r), &dropped);
		break;
	}
	if (!err)
		b->sent++;
	return 0;
}

static __always_inline int send_burst(struct xdp_md *ctx, enum send_kind kind)
{
	struct burst b = { .ctx = ctx, .kind = kind, .count = read_count(ctx) };

	bpf_loop(b.count, send_one, &b, 0);
	return b.sent;
}

SEC("xdp")
int xdp_drops_reserve(struct xdp_md *ctx)
{
	return send_burst(ctx, SEND_RESERVE);
}

SEC("xdp")
int xdp_drops_output(struct xdp_md *ctx)
{
	return send_burst(ctx, SEND_OUTPUT);
}

SEC("xdp")
int xdp_drops_perf(struct xdp_md *ctx)
{
	return send_burst(ctx, SEND_PERF);
}

char LICENSE[] SEC("license") = "GPL";
