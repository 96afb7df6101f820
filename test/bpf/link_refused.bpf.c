// SPDX-License-Identifier: GPL-2.0-only
/*
 * Programs this test machine's kernel refuses to load, for test/kernel/link-kernel-hooks.test.ts:
 * fentry/fexit/fmod_ret (BPF trampolines, refused with EPERM) and lsm (no BPF LSM). The test
 * loads them one at a time and expects NotSupportedError naming what the kernel lacks.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("fentry/do_unlinkat")
int BPF_PROG(fentry_unlinkat)
{
	return 0;
}

SEC("fexit/do_unlinkat")
int BPF_PROG(fexit_unlinkat)
{
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
