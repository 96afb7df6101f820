// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A CO-RE program built against the vmlinux.h `bpfkit btf dump` writes (the
 * btf-dump test compiles it; it is not part of scripts/build-bpf.sh). It uses
 * what CO-RE programs use: BPF_CORE_READ chains through kernel structs,
 * field and type existence checks, enum value relocations, kernel typedefs
 * (u32, pid_t, bool) and BPF_PROG's typed tracepoint arguments.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct switch_event {
	pid_t prev_pid;
	pid_t next_pid;
	pid_t next_parent_tgid;
	u32 prev_flags;
	bool has_flags;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct switch_event);
} switches SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct switch_event ev = {};
	u32 key;

	ev.prev_pid = BPF_CORE_READ(prev, pid);
	ev.next_pid = BPF_CORE_READ(next, pid);
	ev.next_parent_tgid = BPF_CORE_READ(next, real_parent, tgid);
	ev.has_flags = bpf_core_field_exists(prev->flags);
	if (ev.has_flags)
		ev.prev_flags = BPF_CORE_READ(prev, flags);
	BPF_CORE_READ_STR_INTO(&ev.comm, next, comm);
	if (!bpf_core_type_exists(struct bpf_map))
		return 0;
	if (bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF))
		ev.prev_flags |= bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF) << 24;
	key = ev.next_pid;
	bpf_map_update_elem(&switches, &key, &ev, BPF_ANY);
	return 0;
}
