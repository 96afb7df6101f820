// SPDX-License-Identifier: GPL-2.0-only
/*
 * BPF iterators for test/kernel/link-kernel-hooks.test.ts.
 *
 *   dump_task (iter/task): one line per task, "<tgid> <pid> <comm>", after a header line
 *     "tgid pid comm" (printed for the first task only).
 *   dump_elems (iter/bpf_map_elem): one line "<key>=<value>" per element of the map the link is
 *     made for (u32 keys, u64 values, such as iter_values), then "total=<sum of values>" once the
 *     walk ends.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} iter_values SEC(".maps");

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "tgid pid comm\n");
	BPF_SEQ_PRINTF(seq, "%d %d %s\n", task->tgid, task->pid, task->comm);
	return 0;
}

__u64 elem_total = 0;

SEC("iter/bpf_map_elem")
int dump_elems(struct bpf_iter__bpf_map_elem *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	__u32 *key = ctx->key;
	__u64 *value = ctx->value;

	if (!key || !value) {
		/* The last call, with no element. */
		BPF_SEQ_PRINTF(seq, "total=%llu\n", elem_total);
		elem_total = 0;
		return 0;
	}
	elem_total += *value;
	BPF_SEQ_PRINTF(seq, "%u=%llu\n", *key, *value);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
