// SPDX-License-Identifier: Apache-2.0
/*
 * The libbpf side of bench/ringbuf.bench.ts: consumes the records of
 * bench/bpf/ringbuf_bench.bpf.c with ring_buffer__new + ring_buffer__consume /
 * ring_buffer__poll, and doubles as the producer process of the live runs.
 *
 *   ringbuf-consumer drain OBJECT ROUNDS RECORDS PER_RUN CPU
 *       Loads OBJECT and, ROUNDS times: fills the ring with RECORDS records
 *       (RECORDS/PER_RUN calls of BPF_PROG_TEST_RUN of rb_produce, PER_RUN
 *       records each), then times one ring_buffer__consume that drains them.
 *       Runs on CPU (-1: anywhere).
 *       Prints {"rates":[records/s per round],"count":N,"sum":S,"dropped":D}.
 *
 *   ringbuf-consumer live OBJECT PIN_DIR MS PER_RUN REPEAT CPU PRODUCER_CPU
 *       Loads OBJECT, pins rb_produce at PIN_DIR/prog, starts
 *       `ringbuf-consumer produce` on PRODUCER_CPU for MS milliseconds and
 *       consumes with ring_buffer__poll on CPU until the producer has exited
 *       and the ring is empty. Prints {"count":N,"sum":S,"ns":from starting
 *       the producer to the last record,"produced":P,"dropped":D,
 *       "producer":{...}}.
 *
 *   ringbuf-consumer produce PIN MS PER_RUN REPEAT CPU [FLAGS LAST_FLAGS]
 *       Runs the pinned program on CPU with BPF_PROG_TEST_RUN (PER_RUN
 *       records per run, REPEAT runs per call) until MS milliseconds have
 *       passed. Prints {"runs":R,"perRun":PER_RUN,"ns":T}. The flags go to
 *       bpf_ringbuf_submit (default 1 and 2: no wakeup but for the run's last
 *       record, which forces one).
 *
 * Keep REPEAT at 1: an XDP test run with repeat > 1 switches the kernel's XDP
 * static key on and off around the runs (bpf_prog_change_xdp), which costs
 * milliseconds per call on some machines (about 10 ms under Firecracker).
 * Up to 1024 records per run amortise the syscall instead.
 */
#define CONSUMER_NAME "ringbuf-consumer"
#define PRODUCER_PROG "rb_produce"
#include "consumer-common.h"

/* One ring buffer record: the u64 at offset 0 is its index within its run. */
static int on_record(void *ctx, void *data, size_t size)
{
	struct acc *a = ctx;

	(void)size;
	a->sum += *(const unsigned long long *)data;
	a->count++;
	return 0;
}

/* The 14-byte test_run input of rb_produce: u32 count, u32 flags, u32 last_flags, zeros. */
static void command(unsigned char pkt[14], unsigned int count, unsigned int flags, unsigned int last_flags)
{
	memset(pkt, 0, 14);
	memcpy(pkt, &count, 4);
	memcpy(pkt + 4, &flags, 4);
	memcpy(pkt + 8, &last_flags, 4);
}

static struct ring_buffer *open_ring(struct bpf_object *obj, struct acc *acc)
{
	struct ring_buffer *rb = ring_buffer__new(map_fd(obj, "ring"), on_record, acc, NULL);

	if (!rb)
		die("ring_buffer__new", errno);
	return rb;
}

static long long consume_counted(void *ctx)
{
	return ring_buffer__consume(ctx);
}

static int poll_rb(void *ctx, int timeout_ms)
{
	return ring_buffer__poll(ctx, timeout_ms);
}

static int consume_rb(void *ctx)
{
	return ring_buffer__consume(ctx);
}

static int drain(int argc, char **argv)
{
	need_args(argc, argv, 7, "drain OBJECT ROUNDS RECORDS PER_RUN CPU");
	int rounds = atoi(argv[3]);
	unsigned int records = (unsigned int)atoi(argv[4]);
	unsigned int per_run = (unsigned int)atoi(argv[5]);
	struct acc acc = { 0 };
	unsigned long long stats[2];
	unsigned char pkt[14];
	struct bpf_object *obj;
	struct ring_buffer *rb;

	pin_cpu(atoi(argv[6]));
	obj = load(argv[2]);
	rb = open_ring(obj, &acc);
	/* BPF_RB_NO_WAKEUP: nobody waits during a fill. */
	command(pkt, per_run, 1, 1);
	drain_rounds(prog_fd(obj), pkt, rounds, records, per_run, consume_counted, rb, "ring_buffer__consume");
	read_stats(obj, stats);
	printf(",\"count\":%llu,\"sum\":%llu,\"dropped\":%llu}\n", acc.count, acc.sum, stats[1]);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

static int produce(int argc, char **argv)
{
	need_args(argc, argv, 7, "produce PIN MS PER_RUN REPEAT CPU [FLAGS LAST_FLAGS]");
	unsigned int per_run = (unsigned int)atoi(argv[4]);
	unsigned int flags = argc > 7 ? (unsigned int)atoi(argv[7]) : 1;
	unsigned int last_flags = argc > 8 ? (unsigned int)atoi(argv[8]) : 2;
	unsigned char pkt[14];

	command(pkt, per_run, flags, last_flags);
	return produce_for(argv[2], atof(argv[3]), pkt, per_run, atoi(argv[5]), atoi(argv[6]));
}

static int live(int argc, char **argv)
{
	need_args(argc, argv, 9, "live OBJECT PIN_DIR MS PER_RUN REPEAT CPU PRODUCER_CPU");
	struct acc acc = { 0 };
	unsigned long long stats[2];
	struct bpf_object *obj;
	struct ring_buffer *rb;
	struct live l;
	char *produce_args[] = { argv[4], argv[5], argv[6], argv[8], NULL };

	pin_cpu(atoi(argv[7]));
	obj = load(argv[2]);
	live_pin(&l, obj, argv[3]);
	rb = open_ring(obj, &acc);
	if (live_run(&l, argv[0], produce_args, poll_rb, consume_rb, rb))
		return 1;
	read_stats(obj, stats);
	print_live(&l, &acc, stats, 0);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	return dispatch(argc, argv, drain, live, produce);
}
