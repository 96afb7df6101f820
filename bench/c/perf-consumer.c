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
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct acc {
	unsigned long long count;
	unsigned long long sum;
	unsigned long long lost;
};

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, args);
	return 0;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "perf-consumer: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity", errno);
}

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

static void run_prog(int prog_fd, unsigned int per_run)
{
	unsigned char pkt[14] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = 1);

	memcpy(pkt, &per_run, 4);
	if (bpf_prog_test_run_opts(prog_fd, &opts))
		die("BPF_PROG_TEST_RUN", errno);
}

static struct bpf_object *load(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	int err;

	if (!obj)
		die("bpf_object__open_file", errno);
	err = bpf_object__load(obj);
	if (err)
		die("bpf_object__load", err);
	return obj;
}

static int map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	if (!m) {
		fprintf(stderr, "perf-consumer: no map %s in the object\n", name);
		exit(1);
	}
	return bpf_map__fd(m);
}

static int prog_fd(struct bpf_object *obj)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, "perf_produce");

	if (!p) {
		fprintf(stderr, "perf-consumer: no program perf_produce in the object\n");
		exit(1);
	}
	return bpf_program__fd(p);
}

/* stats[0] = { produced, dropped } */
static void read_stats(struct bpf_object *obj, unsigned long long out[2])
{
	unsigned int zero = 0;

	if (bpf_map_lookup_elem(map_fd(obj, "stats"), &zero, out))
		die("stats lookup", errno);
}

static struct perf_buffer *open_buffer(struct bpf_object *obj, const char *pages, struct acc *acc)
{
	struct perf_buffer *pb = perf_buffer__new(map_fd(obj, "events"), (size_t)atol(pages), on_sample, on_lost, acc, NULL);

	if (!pb)
		die("perf_buffer__new", errno);
	return pb;
}

static int drain(int argc, char **argv)
{
	if (argc < 8) {
		fprintf(stderr, "usage: %s drain OBJECT ROUNDS RECORDS PER_RUN CPU PAGES\n", argv[0]);
		return 2;
	}
	int rounds = atoi(argv[3]);
	unsigned int records = (unsigned int)atoi(argv[4]);
	unsigned int per_run = (unsigned int)atoi(argv[5]);
	struct acc acc = { 0 };
	unsigned long long stats[2];
	struct bpf_object *obj;
	struct perf_buffer *pb;
	int pfd;

	pin_cpu(atoi(argv[6]));
	obj = load(argv[2]);
	pfd = prog_fd(obj);
	pb = open_buffer(obj, argv[7], &acc);

	printf("{\"rates\":[");
	for (int r = 0; r < rounds; r++) {
		for (unsigned int k = 0; k < records / per_run; k++)
			run_prog(pfd, per_run);
		unsigned long long before = acc.count;
		double t0 = now_ns();
		int err = perf_buffer__consume(pb);
		double t1 = now_ns();

		if (err < 0)
			die("perf_buffer__consume", err);
		printf("%s%.0f", r ? "," : "", (acc.count - before) / ((t1 - t0) / 1e9));
	}
	read_stats(obj, stats);
	printf("],\"count\":%llu,\"sum\":%llu,\"lost\":%llu,\"dropped\":%llu}\n", acc.count, acc.sum, acc.lost, stats[1]);
	perf_buffer__free(pb);
	bpf_object__close(obj);
	return 0;
}

static int produce(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: %s produce PIN MS PER_RUN CPU\n", argv[0]);
		return 2;
	}
	double ms = atof(argv[3]);
	unsigned int per_run = (unsigned int)atoi(argv[4]);
	unsigned long long runs = 0;
	int fd;

	pin_cpu(atoi(argv[5]));
	fd = bpf_obj_get(argv[2]);
	if (fd < 0)
		die("bpf_obj_get", errno);
	double t0 = now_ns(), t;
	do {
		run_prog(fd, per_run);
		runs++;
		t = now_ns();
	} while (t - t0 < ms * 1e6);
	printf("{\"runs\":%llu,\"perRun\":%u,\"ns\":%.0f}\n", runs, per_run, t - t0);
	close(fd);
	return 0;
}

static int live(int argc, char **argv)
{
	if (argc < 9) {
		fprintf(stderr, "usage: %s live OBJECT PIN_DIR MS PER_RUN CPU PRODUCER_CPU PAGES\n", argv[0]);
		return 2;
	}
	struct acc acc = { 0 };
	unsigned long long stats[2];
	char pin[4096], out[4096];
	struct bpf_object *obj;
	struct perf_buffer *pb;
	int pipefd[2], status, exited = 0;
	pid_t child;

	pin_cpu(atoi(argv[6]));
	obj = load(argv[2]);
	snprintf(pin, sizeof(pin), "%s/prog", argv[3]);
	if (mkdir(argv[3], 0700) && errno != EEXIST)
		die("mkdir", errno);
	if (bpf_obj_pin(prog_fd(obj), pin))
		die("bpf_obj_pin", errno);
	pb = open_buffer(obj, argv[8], &acc);

	if (pipe(pipefd))
		die("pipe", errno);
	double t0 = now_ns();
	child = fork();
	if (child < 0)
		die("fork", errno);
	if (child == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execl("/proc/self/exe", argv[0], "produce", pin, argv[4], argv[5], argv[7], (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	while (!exited) {
		/* A short timeout: the end of the producer is noticed within a millisecond. */
		int n = perf_buffer__poll(pb, 1);

		if (n < 0 && n != -EINTR)
			die("perf_buffer__poll", n);
		if (waitpid(child, &status, WNOHANG) == child)
			exited = 1;
	}
	/* The producer is gone: take what is left. */
	if (perf_buffer__consume(pb) < 0)
		die("perf_buffer__consume", errno);
	double t1 = now_ns();
	ssize_t len = read(pipefd[0], out, sizeof(out) - 1);
	out[len > 0 ? len : 0] = 0;
	if (len > 0 && out[len - 1] == '\n')
		out[len - 1] = 0;
	close(pipefd[0]);
	unlink(pin);
	rmdir(argv[3]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "perf-consumer: the producer failed\n");
		return 1;
	}
	read_stats(obj, stats);
	printf("{\"count\":%llu,\"sum\":%llu,\"ns\":%.0f,\"lost\":%llu,\"produced\":%llu,\"dropped\":%llu,\"producer\":%s}\n",
	       acc.count, acc.sum, t1 - t0, acc.lost, stats[0], stats[1], len > 0 ? out : "null");
	perf_buffer__free(pb);
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	libbpf_set_print(quiet);
	if (argc >= 2 && strcmp(argv[1], "drain") == 0)
		return drain(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "live") == 0)
		return live(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "produce") == 0)
		return produce(argc, argv);
	fprintf(stderr, "usage: %s drain|live|produce ...\n", argv[0]);
	return 2;
}
