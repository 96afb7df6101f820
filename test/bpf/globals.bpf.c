// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Global variables in every data section a loader has to turn into maps:
 *
 *   .data           initialised, writable
 *   .bss            zero-initialised, writable
 *   .rodata         constants; `const volatile` ones can be changed before
 *                   load and are frozen afterwards
 *   .data.custom    initialised, writable, own section (own map)
 *   .rodata.custom  constant, own section (own map)
 *
 * xdp_globals reads a u32 `input` (host byte order) at packet offset 0 and
 * returns
 *
 *   input * rodata_factor + data_value + custom_data_value + custom_ro_value
 *
 * which is 3 * input + 100 + 10000 + 1000000 with the compiled-in values.
 * See test/bpf/README.md for the effects on .bss.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* .rodata: set it through the object's .rodata before loading. */
const volatile __u32 rodata_factor = 3;

/* .rodata: a plain constant string (not volatile). */
const char rodata_greeting[] = "hello, bpfkit";

/* .data */
__u32 data_value = 100;
__u32 data_array[4] = { 1, 2, 3, 4 };

/* .bss: written by the program. */
__u64 bss_runs;
__u32 bss_last_input;
__u32 bss_last_result;
char bss_greeting[16];

/* Custom sections, each becomes its own map. */
__u32 custom_data_value SEC(".data.custom") = 10000;
const volatile __u32 custom_ro_value SEC(".rodata.custom") = 1000000;

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *input = data;
	__u32 result;
	int i;

	if ((void *)(input + 1) > data_end)
		return XDP_ABORTED;

	result = *input * rodata_factor + data_value + custom_data_value +
		 custom_ro_value;

	bss_runs++;
	bss_last_input = *input;
	bss_last_result = result;
	/* Copy the .rodata string into .bss so tests can read it back. */
	for (i = 0; i < (int)sizeof(rodata_greeting); i++)
		bss_greeting[i] = rodata_greeting[i];
	/* Keep .data's array live: data_array[input & 3] += 1. */
	data_array[*input & 3] += 1;

	return result;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
