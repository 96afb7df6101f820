// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * readline: the seeds' trace_readline. A uretprobe on readline() (in bash
 * itself, or in libreadline.so when bash links it) sends every line it
 * returns, with the pid, uid and comm of the process, through a ring
 * buffer. User space (src/tools/readline/) finds the binary and the
 * function and attaches the program; bindings in src/tools/readline/gen/.
 *
 * readline() returns a malloc'ed char * (NULL at end of input), so the
 * program reads the return register. That register is arch-specific (rax
 * on x86_64, x0 on arm64) and the seed's build hard-coded arm64 with
 * PT_REGS_RC and -D__TARGET_ARCH_arm64. Here both "flavours" of struct
 * pt_regs are declared with only the member needed and
 * preserve_access_index; bpf_core_field_exists() keeps, at load time, the
 * one the running kernel's BTF has, so the single object `bpfkit gen`
 * compiles works on both architectures (no vmlinux.h needed).
 *
 * Lines longer than LINE_SIZE - 1 bytes are cut, with READLINE_F_TRUNCATED
 * set; user space appends "..." then. The event is built in a per-CPU
 * scratch slot and sent with line[] cut after its NUL, so short lines take
 * little room in the ring (and the scratch map's value type puts struct
 * readline_event into the bindings).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpfkit/drops.h>

#define TASK_COMM_LEN 16
#define LINE_SIZE 1024

#define READLINE_F_TRUNCATED (1 << 0)

struct readline_event {
	__u64 ktime_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) when readline returned */
	__u32 pid;      /* tgid */
	__u32 tid;
	__u32 uid;
	__u32 flags;    /* READLINE_F_* */
	char comm[TASK_COMM_LEN];
	char line[LINE_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* The event under construction. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct readline_event);
} scratch SEC(".maps");

/* Lines lost because the ring buffer was full (bpfkit/drops.h). */
BPFKIT_DROPS_MAP(dropped);

struct pt_regs;

struct pt_regs___x86 {
	unsigned long ax;
} __attribute__((preserve_access_index));

struct pt_regs___arm64 {
	unsigned long regs[31];
} __attribute__((preserve_access_index));

/*
 * The function's return value. Read with bpf_probe_read_kernel
 * (BPF_CORE_READ) rather than direct context loads: clang merges the two
 * flavours' loads into one through a computed pointer, which the verifier
 * refuses for the context.
 */
static __always_inline unsigned long return_value(struct pt_regs *ctx)
{
	const struct pt_regs___x86 *x86 = (const void *)ctx;
	const struct pt_regs___arm64 *arm64 = (const void *)ctx;

	if (bpf_core_field_exists(x86->ax))
		return BPF_CORE_READ(x86, ax);
	if (bpf_core_field_exists(arm64->regs))
		return BPF_CORE_READ(arm64, regs[0]);
	return 0;
}

SEC("uretprobe")
int uretprobe_readline(struct pt_regs *ctx)
{
	const char *line = (const char *)return_value(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct readline_event *e;
	long n;

	if (!line)
		return 0;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->ktime_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->flags = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	n = bpf_probe_read_user_str(e->line, sizeof(e->line), line);
	if (n <= 0)
		return 0; /* the line's page is not resident: nothing to show */
	if (n == sizeof(e->line)) {
		char c = 0;

		if (bpf_probe_read_user(&c, 1, line + sizeof(e->line) - 1) == 0 && c)
			e->flags |= READLINE_F_TRUNCATED;
	}
	if (n > sizeof(e->line))
		n = sizeof(e->line);
	bpfkit_ringbuf_output(&events, e, __builtin_offsetof(struct readline_event, line) + n, 0, &dropped);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
