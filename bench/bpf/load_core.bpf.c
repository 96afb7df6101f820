// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A large CO-RE object for the load benchmark, shaped like the bcc libbpf-tools: many programs
 * (raw tracepoints, kprobes, tracepoints) that read kernel structures through vmlinux.h with
 * BPF_CORE_READ, a ring buffer, hash, LRU and per-CPU maps, .rodata switches and a .bss counter.
 * Every program walks different task_struct/mm/files/cred/fs/net paths, so the loader resolves
 * a few hundred field relocations against the kernel's BTF.
 *
 * Nothing here is attached: the benchmark only loads (and verifies) it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct rec {
	__u64 ts;
	__u32 pid, ppid, tgid, uid, gid;
	__u64 a, b, c, d;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct rec);
} by_pid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} hist SEC(".maps");

const volatile __u32 target_tgid = 0;
const volatile bool only_user = false;
__u64 seen = 0;

/* One slot of the log2 histogram. */
static __always_inline void count(__u64 v)
{
	__u32 slot = 0;

	while (v > 1 && slot < 63) {
		v >>= 1;
		slot++;
	}
	__u64 *n = bpf_map_lookup_elem(&hist, &slot);
	if (n)
		*n += 1;
}

/* Identity of a task: pid, parent, credentials, name. */
static __always_inline void fill(struct rec *r, struct task_struct *t)
{
	r->ts = bpf_ktime_get_ns();
	r->pid = BPF_CORE_READ(t, pid);
	r->tgid = BPF_CORE_READ(t, tgid);
	r->ppid = BPF_CORE_READ(t, real_parent, tgid);
	r->uid = BPF_CORE_READ(t, cred, uid.val);
	r->gid = BPF_CORE_READ(t, cred, gid.val);
	BPF_CORE_READ_STR_INTO(&r->comm, t, comm);
}

static __always_inline int emit(struct task_struct *t, __u64 a, __u64 b, __u64 c, __u64 d)
{
	struct rec *r;

	if (target_tgid && BPF_CORE_READ(t, tgid) != target_tgid)
		return 0;
	if (only_user && BPF_CORE_READ(t, flags) & 0x00200000 /* PF_KTHREAD */)
		return 0;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r)
		return 0;
	fill(r, t);
	r->a = a;
	r->b = b;
	r->c = c;
	r->d = d;
	__sync_fetch_and_add(&seen, 1);
	count(a);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

static __always_inline struct task_struct *current_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

SEC("raw_tracepoint/sched_switch")
int sched_switch(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *prev = (struct task_struct *)ctx->args[1];
	struct task_struct *next = (struct task_struct *)ctx->args[2];
	__u64 key = BPF_CORE_READ(next, pid), now = bpf_ktime_get_ns();

	bpf_map_update_elem(&starts, &key, &now, BPF_ANY);
	return emit(prev, BPF_CORE_READ(prev, nvcsw), BPF_CORE_READ(prev, nivcsw),
		    BPF_CORE_READ(next, prio), BPF_CORE_READ(next, se.vruntime));
}

SEC("raw_tracepoint/sched_wakeup")
int sched_wakeup(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx->args[0];
	__u64 key = BPF_CORE_READ(p, pid), now = bpf_ktime_get_ns();

	bpf_map_update_elem(&starts, &key, &now, BPF_ANY);
	return emit(p, BPF_CORE_READ(p, static_prio), BPF_CORE_READ(p, normal_prio),
		    BPF_CORE_READ(p, rt_priority), BPF_CORE_READ(p, policy));
}

SEC("raw_tracepoint/sched_process_exec")
int process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx->args[0];

	return emit(p, BPF_CORE_READ(p, mm, total_vm), BPF_CORE_READ(p, mm, hiwater_rss),
		    BPF_CORE_READ(p, mm, start_code), BPF_CORE_READ(p, mm, arg_start));
}

SEC("raw_tracepoint/sched_process_exit")
int process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = current_task();
	__u32 pid = BPF_CORE_READ(p, pid);

	bpf_map_delete_elem(&by_pid, &pid);
	return emit(p, BPF_CORE_READ(p, exit_code), BPF_CORE_READ(p, utime),
		    BPF_CORE_READ(p, stime), BPF_CORE_READ(p, start_time));
}

SEC("raw_tracepoint/sched_process_fork")
int process_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct rec r = {};
	__u32 pid = BPF_CORE_READ(child, pid);

	fill(&r, child);
	bpf_map_update_elem(&by_pid, &pid, &r, BPF_ANY);
	return emit(parent, BPF_CORE_READ(parent, signal, nr_threads), BPF_CORE_READ(child, flags),
		    BPF_CORE_READ(parent, nsproxy, pid_ns_for_children, level), BPF_CORE_READ(child, group_leader, pid));
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(vfs_read_entry, struct file *file, char *buf, size_t count_)
{
	return emit(current_task(), count_, BPF_CORE_READ(file, f_pos), BPF_CORE_READ(file, f_inode, i_ino),
		    BPF_CORE_READ(file, f_inode, i_size));
}

SEC("kprobe/vfs_write")
int BPF_KPROBE(vfs_write_entry, struct file *file, const char *buf, size_t count_)
{
	return emit(current_task(), count_, BPF_CORE_READ(file, f_flags), BPF_CORE_READ(file, f_inode, i_mode),
		    BPF_CORE_READ(file, f_path.dentry, d_name.len));
}

SEC("kprobe/vfs_open")
int BPF_KPROBE(vfs_open_entry, const struct path *path, struct file *file)
{
	return emit(current_task(), BPF_CORE_READ(path, dentry, d_inode, i_ino), BPF_CORE_READ(path, mnt, mnt_flags),
		    BPF_CORE_READ(path, dentry, d_sb, s_magic), BPF_CORE_READ(path, dentry, d_parent, d_inode, i_ino));
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(tcp_sendmsg_entry, struct sock *sk, struct msghdr *msg, size_t size)
{
	return emit(current_task(), size, BPF_CORE_READ(sk, __sk_common.skc_daddr),
		    BPF_CORE_READ(sk, __sk_common.skc_dport), BPF_CORE_READ(sk, __sk_common.skc_family));
}

SEC("kprobe/tcp_cleanup_rbuf")
int BPF_KPROBE(tcp_cleanup_rbuf_entry, struct sock *sk, int copied)
{
	return emit(current_task(), copied, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr),
		    BPF_CORE_READ(sk, __sk_common.skc_num), BPF_CORE_READ(sk, sk_rcvbuf));
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(tcp_v4_connect_entry, struct sock *sk)
{
	struct task_struct *t = current_task();

	return emit(t, BPF_CORE_READ(sk, __sk_common.skc_state), BPF_CORE_READ(sk, sk_protocol),
		    BPF_CORE_READ(t, nsproxy, net_ns, ns.inum), BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum));
}

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(do_unlinkat_entry, int dfd, struct filename *name)
{
	struct task_struct *t = current_task();

	return emit(t, dfd, BPF_CORE_READ(t, fs, pwd.dentry, d_inode, i_ino), BPF_CORE_READ(t, fs, root.dentry, d_inode, i_ino),
		    BPF_CORE_READ(t, files, fdt, max_fds));
}

SEC("kprobe/security_file_open")
int BPF_KPROBE(security_file_open_entry, struct file *file)
{
	struct task_struct *t = current_task();

	return emit(t, BPF_CORE_READ(file, f_mode), BPF_CORE_READ(t, cred, euid.val), BPF_CORE_READ(t, cred, fsuid.val),
		    BPF_CORE_READ(t, loginuid.val));
}

SEC("kprobe/blk_mq_start_request")
int BPF_KPROBE(blk_start, struct request *rq)
{
	return emit(current_task(), BPF_CORE_READ(rq, __data_len), BPF_CORE_READ(rq, __sector), BPF_CORE_READ(rq, cmd_flags),
		    BPF_CORE_READ(rq, q, queue_depth));
}

SEC("kprobe/handle_mm_fault")
int BPF_KPROBE(handle_mm_fault_entry, struct vm_area_struct *vma, unsigned long address)
{
	return emit(current_task(), address, BPF_CORE_READ(vma, vm_start), BPF_CORE_READ(vma, vm_end),
		    BPF_CORE_READ(vma, vm_mm, map_count));
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(void *ctx)
{
	struct task_struct *t = current_task();

	return emit(t, BPF_CORE_READ(t, signal, rlim[7].rlim_cur), BPF_CORE_READ(t, audit_context, major),
		    BPF_CORE_READ(t, thread_info.flags), BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id));
}

SEC("tracepoint/syscalls/sys_enter_kill")
int enter_kill(void *ctx)
{
	struct task_struct *t = current_task();

	return emit(t, BPF_CORE_READ(t, pending.signal.sig[0]), BPF_CORE_READ(t, blocked.sig[0]),
		    BPF_CORE_READ(t, sighand, count.refs.counter), BPF_CORE_READ(t, signal, pids[PIDTYPE_PGID], numbers[0].nr));
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int enter_mmap(void *ctx)
{
	struct task_struct *t = current_task();

	return emit(t, BPF_CORE_READ(t, mm, mmap_base), BPF_CORE_READ(t, mm, task_size), BPF_CORE_READ(t, mm, brk),
		    BPF_CORE_READ(t, mm, start_stack));
}
