// SPDX-License-Identifier: GPL-2.0-only
/*
 * One program per kernel hook, for test/kernel/link-hooks.test.ts. Every program counts into
 * hook_counts[<its slot>] only for the test process (target_tgid, set by the test in .bss), so
 * other processes on the machine cannot disturb exact counts. The test triggers them all with
 * mkdir(2) (fs.mkdirSync): do_mkdirat, security_path_mkdir and the path_mkdir LSM hook run once
 * per call. Uprobe programs count calls of test/fixtures/uprobe_target.c's function.
 *
 * Nothing here needs a kernel newer than 6.1 to load: the helpers used exist there
 * (bpf_get_attach_cookie 5.15, bpf_get_func_ret 5.17), and no kfunc is called. Programs whose hook
 * a kernel lacks still load where their program type exists; attaching them is what fails.
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define EPERM 1

enum slot {
	S_KPROBE = 0,          /* kprobe/do_mkdirat */
	S_KRETPROBE = 1,       /* kretprobe/do_mkdirat */
	S_KRETPROBE_FAILED = 2, /* kretprobe/do_mkdirat: calls that returned an error */
	S_KSYSCALL = 3,        /* ksyscall/mkdir */
	S_KMULTI = 4,          /* kprobe.multi */
	S_KMULTI_COOKIE = 5,   /* kprobe.multi: sum of the attach cookies seen */
	S_KRETMULTI = 6,       /* kretprobe.multi */
	S_SESSION = 7,         /* kprobe.session, returns 0: runs at entry and at return */
	S_SESSION_ENTRY = 8,   /* kprobe.session, returns 1: the return run is skipped */
	S_UMULTI = 9,          /* uprobe.multi */
	S_UMULTI_COOKIE = 10,  /* uprobe.multi: sum of the attach cookies seen */
	S_URETMULTI = 11,      /* uretprobe.multi: calls */
	S_URETMULTI_RET = 12,  /* uretprobe.multi: sum of the return values */
	S_FENTRY = 13,         /* fentry/do_mkdirat */
	S_FEXIT = 14,          /* fexit/do_mkdirat */
	S_FEXIT_FAILED = 15,   /* fexit/do_mkdirat: calls that returned an error (bpf_get_func_ret) */
	S_FMOD_RET = 16,       /* fmod_ret/security_path_mkdir */
	S_LSM = 17,            /* lsm/path_mkdir */
	S_TP_BTF = 18,         /* tp_btf/sys_enter: system calls of the test process */
	S_USESSION = 19,       /* uprobe.session, returns 0: runs at entry and at return */
	S_MAX = 24,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hook_counts SEC(".maps");

/* Set by the test after load (.bss is writable through its memory mapping). */
__u32 target_tgid;
/* Non-zero: fmod_ret / lsm programs make mkdir(2) of the test process fail with EPERM. */
__u32 deny_fmod_ret;
__u32 deny_lsm;

static __always_inline int mine(void)
{
	return target_tgid != 0 && (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

static __always_inline void add(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&hook_counts, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("kprobe/do_mkdirat")
int kprobe_mkdirat(struct pt_regs *ctx)
{
	if (mine())
		add(S_KPROBE, 1);
	return 0;
}

SEC("kretprobe/do_mkdirat")
int kretprobe_mkdirat(struct pt_regs *ctx)
{
	if (mine()) {
		add(S_KRETPROBE, 1);
		/* do_mkdirat returns int: the upper half of the register is not its sign */
		if ((int)PT_REGS_RC(ctx) < 0)
			add(S_KRETPROBE_FAILED, 1);
	}
	return 0;
}

SEC("ksyscall/mkdir")
int ksyscall_mkdir(struct pt_regs *ctx)
{
	if (mine())
		add(S_KSYSCALL, 1);
	return 0;
}

/* The pattern matches do_mkdirat alone on every kernel we run; the test checks what it expanded to. */
SEC("kprobe.multi/do_mkdira?")
int kmulti_mkdirat(struct pt_regs *ctx)
{
	if (mine()) {
		add(S_KMULTI, 1);
		add(S_KMULTI_COOKIE, bpf_get_attach_cookie(ctx));
	}
	return 0;
}

SEC("kretprobe.multi/do_mkdirat")
int kretmulti_mkdirat(struct pt_regs *ctx)
{
	if (mine())
		add(S_KRETMULTI, 1);
	return 0;
}

SEC("kprobe.session/do_mkdirat")
int session_mkdirat(struct pt_regs *ctx)
{
	if (mine())
		add(S_SESSION, 1);
	return 0;
}

SEC("kprobe.session/do_mkdirat")
int session_entry_only(struct pt_regs *ctx)
{
	if (mine())
		add(S_SESSION_ENTRY, 1);
	return 1;
}

SEC("uprobe.multi")
int umulti_count(struct pt_regs *ctx)
{
	add(S_UMULTI, 1);
	add(S_UMULTI_COOKIE, bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("uretprobe.multi")
int uretmulti_count(struct pt_regs *ctx)
{
	add(S_URETMULTI, 1);
	add(S_URETMULTI_RET, (__u64)PT_REGS_RC(ctx));
	return 0;
}

SEC("uprobe.session")
int usession_count(struct pt_regs *ctx)
{
	add(S_USESSION, 1);
	return 0;
}

SEC("fentry/do_mkdirat")
int BPF_PROG(fentry_mkdirat)
{
	if (mine())
		add(S_FENTRY, 1);
	return 0;
}

SEC("fexit/do_mkdirat")
int BPF_PROG(fexit_mkdirat)
{
	__u64 ret = 0;

	if (mine()) {
		add(S_FEXIT, 1);
		if (bpf_get_func_ret(ctx, &ret) == 0 && (int)ret < 0)
			add(S_FEXIT_FAILED, 1);
	}
	return 0;
}

/* fmod_ret is allowed on security_* functions: a non-zero return replaces the function's. */
SEC("fmod_ret/security_path_mkdir")
int BPF_PROG(fmod_ret_mkdir)
{
	if (!mine())
		return 0;
	add(S_FMOD_RET, 1);
	return deny_fmod_ret ? -EPERM : 0;
}

SEC("lsm/path_mkdir")
int BPF_PROG(lsm_path_mkdir)
{
	if (!mine())
		return 0;
	add(S_LSM, 1);
	return deny_lsm ? -EPERM : 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(tp_btf_sys_enter)
{
	if (mine())
		add(S_TP_BTF, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
