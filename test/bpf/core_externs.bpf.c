// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Extern symbols resolved at load time from the running kernel:
 *
 *   __kconfig  LINUX_KERNEL_VERSION, CONFIG_BPF (bool), CONFIG_HZ (int),
 *              CONFIG_BPF_JIT (tristate), CONFIG_LOCALVERSION (string), and a
 *              weak CONFIG_BPFKIT_DOES_NOT_EXIST the kernel lacks (0).
 *   __ksym     an untyped symbol (bpf_prog_put: its address), a weak untyped
 *              and a weak typed one that do not exist (0), and kfuncs
 *              (bpf_rcu_read_lock/unlock, weak: 6.2+, called where they exist)
 *              plus a weak kfunc that does not exist, called only where a
 *              kconfig constant makes it dead code.
 *
 * core_externs (raw_tracepoint, test-runnable) writes them all to `kout[0]`.
 * core_typed_ksym (?raw_tracepoint, not loaded by default) takes the address
 * of a typed per-CPU kernel variable (runqueues): the verifier needs the
 * kernel to find it by name, which a kernel without CONFIG_KALLSYMS_ALL
 * cannot do.
 * core_weak_kfunc (?raw_tracepoint) calls the missing weak kfunc unguarded:
 * the verifier rejects the call it cannot prove dead.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF __kconfig;
extern int CONFIG_HZ __kconfig;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig;
extern char CONFIG_LOCALVERSION[16] __kconfig;
extern int CONFIG_BPFKIT_DOES_NOT_EXIST __kconfig __weak;

extern const void bpf_prog_put __ksym;
extern const void bpfkit_no_such_symbol __ksym __weak;
extern const int bpfkit_no_such_var __ksym __weak;
extern const struct rq runqueues __ksym;

/* 6.2+: weak, and called only where the kernel has them (ksym_exists). */
extern void bpf_rcu_read_lock(void) __ksym __weak;
extern void bpf_rcu_read_unlock(void) __ksym __weak;

/* libbpf 1.2's bpf_ksym_exists(): a weak extern's address is 0 where the kernel lacks it. */
#define ksym_exists(sym) (!!(sym))
extern void bpfkit_no_such_kfunc(void) __ksym __weak;

struct kconfig_out {
	__u32 version;
	__u32 bpf;
	__u32 hz;
	__u32 jit;
	__u32 missing;
	__u32 rcu;
	char localversion[16];
	__u64 prog_put;
	__u64 no_such_symbol;
	__u64 no_such_var;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kconfig_out);
} kout SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int core_externs(void *ctx)
{
	__u32 zero = 0;
	struct kconfig_out *o = bpf_map_lookup_elem(&kout, &zero);
	int i;

	if (!o)
		return 1;
	o->version = LINUX_KERNEL_VERSION;
	o->bpf = CONFIG_BPF;
	o->hz = CONFIG_HZ;
	o->jit = CONFIG_BPF_JIT;
	o->missing = CONFIG_BPFKIT_DOES_NOT_EXIST;
	for (i = 0; i < 16; i++)
		o->localversion[i] = CONFIG_LOCALVERSION[i];
	o->prog_put = (__u64)&bpf_prog_put;
	o->no_such_symbol = (__u64)&bpfkit_no_such_symbol;
	o->no_such_var = (__u64)&bpfkit_no_such_var;
	if (ksym_exists(bpf_rcu_read_lock) && ksym_exists(bpf_rcu_read_unlock)) {
		bpf_rcu_read_lock();
		o->rcu = 1;
		bpf_rcu_read_unlock();
	} else {
		o->rcu = 2;
	}
	/* Dead code on every kernel: the verifier knows the kconfig value is 0. */
	if (CONFIG_BPFKIT_DOES_NOT_EXIST)
		bpfkit_no_such_kfunc();
	return 0;
}

SEC("?raw_tracepoint/sys_enter")
int core_typed_ksym(void *ctx)
{
	struct rq *rq = bpf_per_cpu_ptr(&runqueues, 0);

	return rq ? 1 : 0;
}

SEC("?raw_tracepoint/sys_enter")
int core_weak_kfunc(void *ctx)
{
	bpfkit_no_such_kfunc();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
