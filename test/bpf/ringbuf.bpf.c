// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ring buffer producers for reader tests.
 *
 * All three programs read the same packet (at least 14 bytes):
 *   offset 0  u32  count   number of records (capped at RB_MAX_RECORDS), or
 *                          for xdp_ringbuf_output the record length in bytes
 *                          (capped at RB_MAX_OUTPUT)
 *   offset 4  u32  tag     copied into every record
 *   offset 8  u32  flags   passed to bpf_ringbuf_submit/discard/output:
 *                          0, BPF_RB_NO_WAKEUP (1) or BPF_RB_FORCE_WAKEUP (2)
 * (all host byte order)
 *
 * xdp_ringbuf_submit   reserves and submits `count` 16-byte records
 *                      { seq = 0..count-1, tag, count, magic }; returns how
 *                      many were submitted (stops early if the ring is full).
 * xdp_ringbuf_discard  reserves `count` records and submits the even seq
 *                      numbers while discarding the odd ones; returns how
 *                      many were submitted.  A reader must skip the
 *                      discarded ones and see seq 0, 2, 4, ...
 * xdp_ringbuf_output   copies one record of exactly `count` bytes with
 *                      bpf_ringbuf_output; byte i is (u8)(tag + i).  Returns
 *                      the length written, or the helper's negative errno.
 *                      Lengths that are not a multiple of 8 exercise the
 *                      reader's padding logic.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define EINVAL 22

#define RB_MAX_RECORDS 128
#define RB_MAX_OUTPUT 256
#define RB_RECORD_MAGIC 0x52494e47 /* "GNIR" in memory */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} events SEC(".maps");

struct rb_cmd {
	__u32 count;
	__u32 tag;
	__u32 flags;
};

struct rb_record {
	__u32 seq;
	__u32 tag;
	__u32 count;
	__u32 magic;
};

static __always_inline struct rb_cmd *read_cmd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct rb_cmd *cmd = data;

	if ((void *)(cmd + 1) > data_end)
		return 0;
	return cmd;
}

SEC("xdp")
int xdp_ringbuf_submit(struct xdp_md *ctx)
{
	struct rb_cmd *cmd = read_cmd(ctx);
	struct rb_record *rec;
	__u32 i, count, tag, flags;

	if (!cmd)
		return -EINVAL;
	count = cmd->count < RB_MAX_RECORDS ? cmd->count : RB_MAX_RECORDS;
	tag = cmd->tag;
	flags = cmd->flags;

	for (i = 0; i < count; i++) {
		rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
		if (!rec)
			break;
		rec->seq = i;
		rec->tag = tag;
		rec->count = count;
		rec->magic = RB_RECORD_MAGIC;
		bpf_ringbuf_submit(rec, flags);
	}
	return i;
}

SEC("xdp")
int xdp_ringbuf_discard(struct xdp_md *ctx)
{
	struct rb_cmd *cmd = read_cmd(ctx);
	struct rb_record *rec;
	__u32 i, count, tag, flags, submitted = 0;

	if (!cmd)
		return -EINVAL;
	count = cmd->count < RB_MAX_RECORDS ? cmd->count : RB_MAX_RECORDS;
	tag = cmd->tag;
	flags = cmd->flags;

	for (i = 0; i < count; i++) {
		rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
		if (!rec)
			break;
		rec->seq = i;
		rec->tag = tag;
		rec->count = count;
		rec->magic = RB_RECORD_MAGIC;
		if (i & 1) {
			bpf_ringbuf_discard(rec, flags);
		} else {
			bpf_ringbuf_submit(rec, flags);
			submitted++;
		}
	}
	return submitted;
}

SEC("xdp")
int xdp_ringbuf_output(struct xdp_md *ctx)
{
	struct rb_cmd *cmd = read_cmd(ctx);
	__u8 buf[RB_MAX_OUTPUT];
	__u32 i, len;
	int err;

	if (!cmd)
		return -EINVAL;
	len = cmd->count;
	if (len == 0 || len > RB_MAX_OUTPUT)
		return -EINVAL;

	for (i = 0; i < RB_MAX_OUTPUT; i++)
		buf[i] = (__u8)(cmd->tag + i);

	err = bpf_ringbuf_output(&events, buf, len, cmd->flags);
	return err ? err : (int)len;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
