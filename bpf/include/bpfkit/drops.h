/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bpfkit/drops.h: count the events a BPF program could not send, so user
 * space can say how many it lost instead of losing them silently.
 *
 * A ring buffer reservation (or bpf_ringbuf_output, or bpf_perf_event_output)
 * fails when the consumer is behind and the ring is full. The helpers below
 * do the send and, when it fails, add one to a per-CPU counter (no atomics,
 * no contention between CPUs). User space sums the CPUs' counters:
 * readDrops(map) in bpfkit, or the generated binding's lookup(0) reduced.
 *
 *   #include <bpfkit/drops.h>
 *
 *   BPFKIT_DROPS_MAP(dropped);
 *
 *   struct event *e = bpfkit_ringbuf_reserve(&events, sizeof(*e), &dropped);
 *   if (!e)
 *           return 0;      // counted
 *   ...
 *   bpf_ringbuf_submit(e, 0);
 *
 * `bpfkit gen` puts this directory on clang's include path; elsewhere add
 * -I node_modules/bpfkit/bpf/include. Needs <linux/bpf.h> and
 * <bpf/bpf_helpers.h> included first.
 */
#ifndef __BPFKIT_DROPS_H
#define __BPFKIT_DROPS_H

/*
 * A per-CPU array of one __u64: the number of events this program could not
 * send on each CPU.
 */
#define BPFKIT_DROPS_MAP(name)                                              \
	struct {                                                            \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                    \
		__uint(max_entries, 1);                                     \
		__type(key, __u32);                                         \
		__type(value, __u64);                                       \
	} name SEC(".maps")

/* Adds one to this CPU's counter in a BPFKIT_DROPS_MAP. */
static __always_inline void bpfkit_count_drop(void *drops)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(drops, &zero);

	if (n)
		(*n)++;
}

/* bpf_ringbuf_reserve, counting a failure in `drops`. */
static __always_inline void *bpfkit_ringbuf_reserve(void *ringbuf, __u64 size, void *drops)
{
	void *rec = bpf_ringbuf_reserve(ringbuf, size, 0);

	if (!rec)
		bpfkit_count_drop(drops);
	return rec;
}

/* bpf_ringbuf_output, counting a failure in `drops`; returns the helper's result. */
static __always_inline long bpfkit_ringbuf_output(void *ringbuf, void *data, __u64 size, __u64 flags, void *drops)
{
	long err = bpf_ringbuf_output(ringbuf, data, size, flags);

	if (err)
		bpfkit_count_drop(drops);
	return err;
}

/*
 * bpf_perf_event_output, counting a failure in `drops`; returns the helper's
 * result. The kernel also reports a full perf ring to the reader itself
 * (PERF_RECORD_LOST, which bpfkit's PerfReader delivers as { cpu, lost });
 * this counter also catches the other failures (no reader on this CPU).
 */
static __always_inline long bpfkit_perf_event_output(void *ctx, void *map, __u64 flags, void *data, __u64 size, void *drops)
{
	long err = bpf_perf_event_output(ctx, map, flags, data, size);

	if (err)
		bpfkit_count_drop(drops);
	return err;
}

#endif /* __BPFKIT_DROPS_H */
