// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * execsnoop: the seeds' hello_ebpf (every execve, pid and comm, through a
 * ring buffer) grown into goebpf's exec dump: pid, ppid, uid, gid, the
 * caller's comm, the filename, the arguments and, on request, the return
 * value. User space is src/tools/execsnoop/, bindings in
 * src/tools/execsnoop/gen/.
 *
 * Two ways into the system call, and user space loads only one of them:
 *
 *   ksyscall/execve, ksyscall/execveat      kprobes on the syscall functions,
 *   kretsyscall/execve, kretsyscall/execveat  as the seed does, where the
 *                                           kernel has kprobes;
 *   tracepoint/syscalls/sys_enter_execve(at)  the syscall tracepoints where it
 *   tracepoint/syscalls/sys_exit_execve(at)   has not (CONFIG_KPROBES=n).
 *
 * No vmlinux.h. The tracepoint contexts are declared below from the
 * tracefs format files; their layout (8 bytes of common fields, the
 * syscall number, then the arguments as 8-byte slots) is the stable ABI
 * of syscall tracepoints. What the kprobe side needs from kernel types,
 * the registers in struct pt_regs and task_struct->real_parent->tgid, is
 * declared with only the members used and preserve_access_index, so the
 * loader's CO-RE relocations find the real offsets in the running
 * kernel's BTF. pt_regs differs per architecture: two "flavours"
 * (pt_regs___x86, pt_regs___arm64) are both compiled in and
 * bpf_core_field_exists() keeps the one the kernel has, so the same
 * object works on x86_64 and arm64 whatever -D__TARGET_ARCH_* said.
 *
 * Events: struct exec_event, sent with its args[] cut to the bytes used.
 * Without want_ret the entry probe sends it at once. With want_ret the
 * entry probe parks it in `inflight` (keyed by tgid: a thread that execs
 * successfully comes back from the syscall with tid == tgid) and the exit
 * probe sends it with the return value.
 *
 * Truncation: at most MAX_ARGS arguments of ARG_SIZE bytes (NUL included)
 * and a filename of FILENAME_SIZE bytes. A cut argument has its bit set in
 * args_truncated; more arguments than MAX_ARGS set EXEC_F_MORE_ARGS; a cut
 * filename sets EXEC_F_FILENAME_TRUNCATED. User space appends "..." then.
 *
 * Unreadable memory: these programs cannot take page faults, so a string
 * the caller has not touched yet (a literal in a page of its binary not
 * mapped in so far) cannot be read. Such an argument is kept as an empty
 * string with its bit set in args_fault, and the ones after it are still
 * read; an unreadable filename sets EXEC_F_FILENAME_FAULT. User space shows
 * them as unknown.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define MAX_ARGS 20
#define ARG_SIZE 128
#define ARGS_SIZE (MAX_ARGS * ARG_SIZE)
#define FILENAME_SIZE 256

#define EXEC_F_FILENAME_TRUNCATED (1 << 0) /* the filename was longer than FILENAME_SIZE - 1 */
#define EXEC_F_MORE_ARGS (1 << 1)          /* argv had more than MAX_ARGS entries */
#define EXEC_F_FILENAME_FAULT (1 << 2)     /* the filename could not be read */
#define EXEC_F_ARGS_FAULT (1 << 3)         /* the argv array itself could not be read (from some point on) */
#define EXEC_F_EXECVEAT (1 << 4)           /* execveat(2), not execve(2) */

struct exec_event {
	__u64 ktime_ns;       /* bpf_ktime_get_ns() at entry (CLOCK_MONOTONIC) */
	__u32 pid;            /* tgid of the caller */
	__u32 tid;            /* thread that called execve */
	__u32 ppid;           /* tgid of the caller's real parent */
	__u32 uid;
	__u32 gid;
	__s32 ret;            /* the syscall's return value (want_ret only), else 0 */
	__u32 flags;          /* EXEC_F_* */
	__u32 args_count;     /* arguments in args[] */
	__u32 args_truncated; /* bit i: argument i was cut to ARG_SIZE - 1 bytes */
	__u32 args_size;      /* bytes of args[] used */
	__u32 args_fault;     /* bit i: argument i could not be read (kept as an empty string) */
	char comm[TASK_COMM_LEN]; /* the caller's command name, before the exec */
	char filename[FILENAME_SIZE];
	char args[ARGS_SIZE];     /* NUL-terminated arguments, one after another */
};

/* Settings, written by user space before load. */
const volatile __u8 want_ret = 0;      /* send events from the exit probe, with ret */
const volatile __u8 trace_threads = 0; /* also execs by threads that are not the group leader */
const volatile __u32 filter_pid = 0;   /* only this tgid (0: all) */
const volatile __u8 filter_uid_on = 0;
const volatile __u32 filter_uid = 0;   /* only this uid, when filter_uid_on */
const volatile __u8 filter_comm_on = 0;
const volatile char filter_comm[TASK_COMM_LEN] = {}; /* only callers with this comm, when filter_comm_on */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* The event under construction: too big for the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} scratch SEC(".maps");

/* Events waiting for their syscall to return (want_ret), by tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct exec_event);
} inflight SEC(".maps");

/* Events lost because the ring buffer was full, or the inflight table. */
struct exec_stats {
	__u64 dropped;
	__u64 inflight_full;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_stats);
} stats SEC(".maps");

/* ---- Kernel types, only the members used (CO-RE) ------------------------ */

struct task_struct {
	struct task_struct *real_parent;
	int tgid;
} __attribute__((preserve_access_index));

struct pt_regs;

struct pt_regs___x86 {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long ax;
} __attribute__((preserve_access_index));

struct pt_regs___arm64 {
	unsigned long regs[31];
	unsigned long orig_x0;
} __attribute__((preserve_access_index));

/* Set by the loader from the running kernel (syscalls take a struct pt_regs * since 4.17 on x86_64). */
extern _Bool LINUX_HAS_SYSCALL_WRAPPER __kconfig;

/* ---- Tracepoint contexts (from events/syscalls/sys_{enter,exit}_execve{,at}/format) */

struct sys_enter_execve_ctx {
	__u64 common;       /* common_type, common_flags, common_preempt_count, common_pid */
	__s32 syscall_nr;
	__u32 pad;
	const char *filename;
	const char *const *argv;
	const char *const *envp;
};

struct sys_enter_execveat_ctx {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__u64 fd;
	const char *filename;
	const char *const *argv;
	const char *const *envp;
	__u64 flags;
};

struct sys_exit_ctx {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__s64 ret;
};

/* ---- Common code ---------------------------------------------------------- */

static __always_inline void count_drop(int inflight_full)
{
	__u32 zero = 0;
	struct exec_stats *s = bpf_map_lookup_elem(&stats, &zero);

	if (!s)
		return;
	if (inflight_full)
		s->inflight_full++;
	else
		s->dropped++;
}

static __always_inline int comm_matches(const char *comm)
{
#pragma unroll
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (comm[i] != filter_comm[i])
			return 0;
		if (comm[i] == 0)
			return 1;
	}
	return 1;
}

/* Sends the event with args[] cut to what is used. */
static __always_inline void submit(struct exec_event *e)
{
	__u32 used = e->args_size;

	if (used > ARGS_SIZE)
		used = ARGS_SIZE;
	if (bpf_ringbuf_output(&events, e, __builtin_offsetof(struct exec_event, args) + used, 0))
		count_drop(0);
}

/*
 * Whether the user string at `src`, copied with bpf_probe_read_user_str
 * into `size` bytes and found to fill them, went on past them.
 */
static __always_inline int was_cut(const char *src, __u32 size)
{
	char c = 0;

	if (bpf_probe_read_user(&c, 1, src + size - 1))
		return 0;
	return c != 0;
}

static __always_inline int on_enter(const char *filename, const char *const *argv, __u32 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u32 tid = (__u32)id;
	__u64 ug = bpf_get_current_uid_gid();
	__u32 zero = 0;
	struct exec_event *e;
	struct task_struct *task;
	long n;
	int i;

	if (!trace_threads && tgid != tid)
		return 0;
	if (filter_pid && tgid != filter_pid)
		return 0;
	if (filter_uid_on && (__u32)ug != filter_uid)
		return 0;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (filter_comm_on && !comm_matches(e->comm))
		return 0;

	e->ktime_ns = bpf_ktime_get_ns();
	e->pid = tgid;
	e->tid = tid;
	e->uid = (__u32)ug;
	e->gid = ug >> 32;
	task = (struct task_struct *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->ret = 0;
	e->flags = flags;
	e->args_count = 0;
	e->args_truncated = 0;
	e->args_fault = 0;
	e->args_size = 0;

	n = bpf_probe_read_user_str(e->filename, sizeof(e->filename), filename);
	if (n < 0) {
		e->filename[0] = 0;
		e->flags |= EXEC_F_FILENAME_FAULT;
	} else if (n == sizeof(e->filename) && was_cut(filename, sizeof(e->filename))) {
		e->flags |= EXEC_F_FILENAME_TRUNCATED;
	}

	/*
	 * execve(path, NULL, ...) is allowed: no arguments at all.
	 *
	 * The offset into args[] is kept in e->args_size and read back each
	 * time: a value loaded from memory is only known by its bounds check,
	 * so the verifier sees the same state on every path through an
	 * iteration and prunes them, instead of following each combination of
	 * argument lengths.
	 */
	if (argv) {
		for (i = 0; i < MAX_ARGS; i++) {
			const char *arg = 0;
			__u32 off;

			if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i])) {
				e->flags |= EXEC_F_ARGS_FAULT;
				break;
			}
			if (!arg)
				break;
			off = *(volatile __u32 *)&e->args_size;
			if (off > ARGS_SIZE - ARG_SIZE)
				break;
			n = bpf_probe_read_user_str(&e->args[off], ARG_SIZE, arg);
			if (n <= 0) {
				/*
				 * < 0: not resident, kept in its place as an empty
				 * string. 0: an empty string, on kernels whose
				 * probe_read_user_str counts no NUL for it (6.1, 6.12).
				 */
				e->args[off] = 0;
				if (n < 0)
					e->args_fault |= 1u << i;
				n = 1;
			} else if (n == ARG_SIZE && was_cut(arg, ARG_SIZE)) {
				e->args_truncated |= 1u << i;
			}
			e->args_size = off + n;
			e->args_count = i + 1;
		}
		if (i == MAX_ARGS) {
			const char *more = 0;

			if (bpf_probe_read_user(&more, sizeof(more), &argv[MAX_ARGS]) == 0 && more)
				e->flags |= EXEC_F_MORE_ARGS;
		}
	}

	if (!want_ret) {
		submit(e);
		return 0;
	}
	if (bpf_map_update_elem(&inflight, &tgid, e, BPF_ANY))
		count_drop(1);
	return 0;
}

static __always_inline int on_exit(long ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct exec_event *e;

	if (!want_ret)
		return 0;
	e = bpf_map_lookup_elem(&inflight, &tgid);
	if (!e)
		return 0;
	e->ret = ret;
	submit(e);
	bpf_map_delete_elem(&inflight, &tgid);
	return 0;
}

/* ---- Tracepoints ---------------------------------------------------------- */

SEC("tracepoint/syscalls/sys_enter_execve")
int tp_enter_execve(struct sys_enter_execve_ctx *ctx)
{
	return on_enter(ctx->filename, ctx->argv, 0);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int tp_enter_execveat(struct sys_enter_execveat_ctx *ctx)
{
	return on_enter(ctx->filename, ctx->argv, EXEC_F_EXECVEAT);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tp_exit_execve(struct sys_exit_ctx *ctx)
{
	return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int tp_exit_execveat(struct sys_exit_ctx *ctx)
{
	return on_exit(ctx->ret);
}

/* ---- kprobes on the syscall functions --------------------------------------- */

/*
 * Argument n (0, 1 or 2) of the system call whose registers `regs` points to
 * (kernel memory: read with bpf_probe_read_kernel, offsets from CO-RE). On
 * arm64 the first argument is orig_x0, as x0 is overwritten by the return value.
 */
static __always_inline unsigned long syscall_arg(const void *regs, int n)
{
	const struct pt_regs___x86 *x86 = regs;
	const struct pt_regs___arm64 *arm64 = regs;

	if (bpf_core_field_exists(x86->di)) {
		if (n == 0)
			return BPF_CORE_READ(x86, di);
		if (n == 1)
			return BPF_CORE_READ(x86, si);
		return BPF_CORE_READ(x86, dx);
	}
	if (bpf_core_field_exists(arm64->orig_x0)) {
		if (n == 0)
			return BPF_CORE_READ(arm64, orig_x0);
		if (n == 1)
			return BPF_CORE_READ(arm64, regs[1]);
		return BPF_CORE_READ(arm64, regs[2]);
	}
	return 0;
}

/*
 * The registers holding the syscall's arguments: with syscall wrappers the
 * probed function's first argument points to them, otherwise they are the
 * probe's own context.
 *
 * The context is read with bpf_probe_read_kernel (BPF_CORE_READ), not with
 * direct loads: clang merges the two flavours' loads into one through a
 * computed pointer, and the verifier refuses a load through a modified
 * context pointer.
 */
static __always_inline const void *syscall_regs(struct pt_regs *ctx)
{
	const struct pt_regs___x86 *x86 = (const void *)ctx;
	const struct pt_regs___arm64 *arm64 = (const void *)ctx;

	if (!LINUX_HAS_SYSCALL_WRAPPER)
		return ctx;
	if (bpf_core_field_exists(x86->di))
		return (const void *)BPF_CORE_READ(x86, di);
	if (bpf_core_field_exists(arm64->regs))
		return (const void *)BPF_CORE_READ(arm64, regs[0]);
	return 0;
}

/* The return value in a kretprobe's context. */
static __always_inline long return_value(struct pt_regs *ctx)
{
	const struct pt_regs___x86 *x86 = (const void *)ctx;
	const struct pt_regs___arm64 *arm64 = (const void *)ctx;

	if (bpf_core_field_exists(x86->ax))
		return BPF_CORE_READ(x86, ax);
	if (bpf_core_field_exists(arm64->regs))
		return BPF_CORE_READ(arm64, regs[0]);
	return 0;
}

SEC("ksyscall/execve")
int ksys_execve(struct pt_regs *ctx)
{
	const void *regs = syscall_regs(ctx);

	if (!regs)
		return 0;
	return on_enter((const char *)syscall_arg(regs, 0), (const char *const *)syscall_arg(regs, 1), 0);
}

SEC("ksyscall/execveat")
int ksys_execveat(struct pt_regs *ctx)
{
	const void *regs = syscall_regs(ctx);

	if (!regs)
		return 0;
	return on_enter((const char *)syscall_arg(regs, 1), (const char *const *)syscall_arg(regs, 2), EXEC_F_EXECVEAT);
}

SEC("kretsyscall/execve")
int ksys_execve_ret(struct pt_regs *ctx)
{
	return on_exit(return_value(ctx));
}

SEC("kretsyscall/execveat")
int ksys_execveat_ret(struct pt_regs *ctx)
{
	return on_exit(return_value(ctx));
}

char LICENSE[] SEC("license") = "GPL";
