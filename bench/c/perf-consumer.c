// SPDX-License-Identifier: Apache-2.0
/*
 * The libbpf side of bench/perf.bench.ts: consumes the samples of
 * bench/bpf/perf_bench.bpf.c with perf_buffer__new + perf_buffer__consume /
 * perf_buffer__poll, and doubles as the producer process of the live runs.
 *
 *   perf-consumer drain OBJECT ROUNDS RECORDS PER_RUN CPU PAGES
 *       Loads OBJECT, opens a perf buffer of PAGES pages per CPU and, ROUNDS
 *       times: writes RECORDS samples from CPU (RECORDS/PER_RUN calls of
 *       BPF_PROG_TEST_RUN of perf_produce, PER_RUN samples each; they land in
 *       CPU's ring), then times one perf_buffer__consume that drains them.
 *       Prints {"rates":[samples/s per round],"count":N,"sum":S,"lost":L,
 *       "dropped":D}.
 *
 *   perf-consumer live OBJECT PIN_DIR MS PER_RUN CPU PRODUCER_CPU PAGES
 *       Loads OBJECT, pins perf_produce at PIN_DIR/prog, starts
 *       `perf-consumer produce` on PRODUCER_CPU for MS milliseconds and
 *       consumes with perf_buffer__poll on CPU until the producer has exited
 *       and the rings are empty. Prints {"count":N,"sum":S,"ns":from starting
 *       the producer to the end,"lost":L,"produced":P,"dropped":D,
 *       "producer":{...}}.
 *
 *   perf-consumer produce PIN MS PER_RUN CPU
 *       Runs the pinned program on CPU (one run of PER_RUN samples per
 *       BPF_PROG_TEST_RUN call) until MS milliseconds have passed. Prints
 *       {"runs":R,"perRun":PER_RUN,"ns":T}.
 *
 * perf_buffer__new opens each CPU's event with wakeup_events = 1, as
 * bpfkit's PerfReader does by default.
 */
#define CONSUMER_NAME "perf-consumer"
#define PRODUCER_PROG "perf_produce"
#include "consumer-common.h"

/* One sample: the u64 at offset 0 is its index within its run. */
static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct acc *a = ctx;

	(void)cpu;
	(void)size;
	a->sum += *(const unsigned long long *)data;
	a->count++;
}

static void on_lost(void *ctx, int cpu, __u64 cnt)
{
	struct acc *a = ctx;

	(void)cpu;
	a->lost += cnt;
}

/* The 14-byte test_run input of perf_produce: u32 count, zeros. */
static void command(unsigned char pkt[14], unsigned int per_run)
{
	memset(pkt, 0, 14);
	memcpy(pkt, &per_run, 4);
}

struct consumer {
	struct perf_buffer *pb;
	struct acc acc;
};

static struct perf_buffer *open_buffer(struct bpf_object *obj, const char *pages, struct acc *acc)
{
	struct perf_buffer *pb = perf_buffer__new(map_fd(obj, "events"), (size_t)atol(pages), on_sample, on_lost, acc, NULL);

	if (!pb)
		die("perf_buffer__new", errno);
	return pb;
}

/* Samples taken by one perf_buffer__consume (negative: its error). */
static long long consume_counted(void *ctx)
{
	struct consumer *c = ctx;
	unsigned long long before = c->acc.count;
	int err = perf_buffer__consume(c->pb);

	return err < 0 ? err : (long long)(c->acc.count - before);
}

static int poll_pb(void *ctx, int timeout_ms)
{
	return perf_buffer__poll(((struct consumer *)ctx)->pb, timeout_ms);
}

static int consume_pb(void *ctx)
{
	return perf_buffer__consume(((struct consumer *)ctx)->pb);
}

static int drain(int argc, char **argv)
{
	need_args(argc, argv, 8, "drain OBJECT ROUNDS RECORDS PER_RUN CPU PAGES");
	int rounds = atoi(argv[3]);
	unsigned int records = (unsigned int)atoi(argv[4]);
	unsigned int per_run = (unsigned int)atoi(argv[5]);
	struct consumer c = { 0 };
	unsigned long long stats[2];
	unsigned char pkt[14];
	struct bpf_object *obj;

	pin_cpu(atoi(argv[6]));
	obj = load(argv[2]);
	c.pb = open_buffer(obj, argv[7], &c.acc);
	command(pkt, per_run);
	drain_rounds(prog_fd(obj), pkt, rounds, records, per_run, consume_counted, &c, "perf_buffer__consume");
	read_stats(obj, stats);
	printf(",\"count\":%llu,\"sum\":%llu,\"lost\":%llu,\"dropped\":%llu}\n", c.acc.count, c.acc.sum, c.acc.lost, stats[1]);
	perf_buffer__free(c.pb);
	bpf_object__close(obj);
	return 0;
}

static int produce(int argc, char **argv)
{
	need_args(argc, argv, 6, "produce PIN MS PER_RUN CPU");
	unsigned int per_run = (unsigned int)atoi(argv[4]);
	unsigned char pkt[14];

	command(pkt, per_run);
	return produce_for(argv[2], atof(argv[3]), pkt, per_run, 1, atoi(argv[5]));
}

static int live(int argc, char **argv)
{
	need_args(argc, argv, 9, "live OBJECT PIN_DIR MS PER_RUN CPU PRODUCER_CPU PAGES");
	struct consumer c = { 0 };
	unsigned long long stats[2];
	struct bpf_object *obj;
	struct live l;
	char *produce_args[] = { argv[4], argv[5], argv[7], NULL };

	pin_cpu(atoi(argv[6]));
	obj = load(argv[2]);
	live_pin(&l, obj, argv[3]);
	c.pb = open_buffer(obj, argv[8], &c.acc);
	if (live_run(&l, argv[0], produce_args, poll_pb, consume_pb, &c))
		return 1;
	read_stats(obj, stats);
	print_live(&l, &c.acc, stats, 1);
	perf_buffer__free(c.pb);
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	return dispatch(argc, argv, drain, live, produce);
}
