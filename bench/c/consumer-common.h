// SPDX-License-Identifier: Apache-2.0
/*
 * What the libbpf consumers of the benchmarks (perf-consumer.c,
 * ringbuf-consumer.c) share: timing, CPU pinning, argument checks, loading
 * the object, running the producer program with BPF_PROG_TEST_RUN, the
 * `produce` mode, the drain rounds, the live run's producer process, and
 * printing the results as JSON. Everything is static: each consumer includes
 * this header once.
 *
 * Before including it, define
 *   CONSUMER_NAME  the program's name, for messages ("perf-consumer")
 *   PRODUCER_PROG  the producer program's name in the object ("perf_produce")
 */
#ifndef BPFKIT_BENCH_CONSUMER_COMMON_H
#define BPFKIT_BENCH_CONSUMER_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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

#if !defined(CONSUMER_NAME) || !defined(PRODUCER_PROG)
#error "define CONSUMER_NAME and PRODUCER_PROG before including consumer-common.h"
#endif

/* What a consumer's callbacks add up. lost: perf LOST records (0 for ring buffers). */
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
	fprintf(stderr, CONSUMER_NAME ": %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* Exits with status 2 and the usage line unless there are at least `need` arguments. */
static void need_args(int argc, char **argv, int need, const char *usage)
{
	if (argc < need) {
		fprintf(stderr, "usage: %s %s\n", argv[0], usage);
		exit(2);
	}
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

/* One BPF_PROG_TEST_RUN of the producer with the 14-byte input `pkt`, `repeat` times. */
static void run_prog(int prog_fd, const unsigned char pkt[14], int repeat)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = 14, .repeat = repeat);

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
		fprintf(stderr, CONSUMER_NAME ": no map %s in the object\n", name);
		exit(1);
	}
	return bpf_map__fd(m);
}

static int prog_fd(struct bpf_object *obj)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, PRODUCER_PROG);

	if (!p) {
		fprintf(stderr, CONSUMER_NAME ": no program " PRODUCER_PROG " in the object\n");
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

/*
 * The drain rounds: `rounds` times, runs the producer `records / per_run`
 * times with `pkt`, then times `consume(ctx)`, which returns how many records
 * it took (negative: an error). Prints {"rates":[records/s per round], then
 * the caller prints the rest of the object.
 */
static void drain_rounds(int prog, const unsigned char pkt[14], int rounds, unsigned int records, unsigned int per_run,
			 long long (*consume)(void *ctx), void *ctx, const char *what)
{
	printf("{\"rates\":[");
	for (int r = 0; r < rounds; r++) {
		for (unsigned int k = 0; k < records / per_run; k++)
			run_prog(prog, pkt, 1);
		double t0 = now_ns();
		long long n = consume(ctx);
		double t1 = now_ns();

		if (n < 0)
			die(what, (int)n);
		printf("%s%.0f", r ? "," : "", n / ((t1 - t0) / 1e9));
	}
	printf("]");
}

/*
 * The `produce` mode: runs the program pinned at `pin` on `cpu` with `pkt`
 * (`repeat` runs of `per_run` records per call) until `ms` milliseconds have
 * passed. Prints {"runs":R,"perRun":PER_RUN,"ns":T}.
 */
static int produce_for(const char *pin, double ms, const unsigned char pkt[14], unsigned int per_run, int repeat, int cpu)
{
	unsigned long long runs = 0;
	int fd;

	pin_cpu(cpu);
	fd = bpf_obj_get(pin);
	if (fd < 0)
		die("bpf_obj_get", errno);
	double t0 = now_ns(), t;
	do {
		run_prog(fd, pkt, repeat);
		runs += repeat;
		t = now_ns();
	} while (t - t0 < ms * 1e6);
	printf("{\"runs\":%llu,\"perRun\":%u,\"ns\":%.0f}\n", runs, per_run, t - t0);
	close(fd);
	return 0;
}

/* A live run: the producer process and what it printed. */
struct live {
	char dir[4096];
	char pin[4096];
	char out[4096];
	double t0, t1;
	int status;
};

/* Pins the producer program of `obj` at DIR/prog (creating DIR). */
static void live_pin(struct live *l, struct bpf_object *obj, const char *dir)
{
	snprintf(l->dir, sizeof(l->dir), "%s", dir);
	snprintf(l->pin, sizeof(l->pin), "%s/prog", dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		die("mkdir", errno);
	if (bpf_obj_pin(prog_fd(obj), l->pin))
		die("bpf_obj_pin", errno);
}

/*
 * Starts `argv[0] produce PIN <produce_args...>` (NULL-terminated), then
 * calls poll(ctx, 1 ms) until it has exited and consume(ctx) once to take
 * what is left; a negative result of either (but -EINTR from poll) is fatal.
 * Records the times from the start to the end, and what the producer printed.
 * Unpins the program. Returns 0, or 1 if the producer failed.
 */
static int live_run(struct live *l, const char *self, char *const produce_args[],
		    int (*poll)(void *ctx, int timeout_ms), int (*consume)(void *ctx), void *ctx)
{
	char *args[16];
	int pipefd[2], exited = 0, n = 0;
	pid_t child;

	args[n++] = (char *)self;
	args[n++] = "produce";
	args[n++] = l->pin;
	for (int i = 0; produce_args[i] && n < 15; i++)
		args[n++] = produce_args[i];
	args[n] = NULL;

	if (pipe(pipefd))
		die("pipe", errno);
	l->t0 = now_ns();
	child = fork();
	if (child < 0)
		die("fork", errno);
	if (child == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	close(pipefd[1]);
	while (!exited) {
		/* A short timeout: the end of the producer is noticed within a millisecond. */
		int r = poll(ctx, 1);

		if (r < 0 && r != -EINTR)
			die("poll", r);
		if (waitpid(child, &l->status, WNOHANG) == child)
			exited = 1;
	}
	/* The producer is gone: take what is left. */
	if (consume(ctx) < 0)
		die("consume", errno);
	l->t1 = now_ns();
	ssize_t len = read(pipefd[0], l->out, sizeof(l->out) - 1);
	l->out[len > 0 ? len : 0] = 0;
	if (len > 0 && l->out[len - 1] == '\n')
		l->out[len - 1] = 0;
	if (len <= 0)
		snprintf(l->out, sizeof(l->out), "null");
	close(pipefd[0]);
	unlink(l->pin);
	rmdir(l->dir);
	if (!WIFEXITED(l->status) || WEXITSTATUS(l->status) != 0) {
		fprintf(stderr, CONSUMER_NAME ": the producer failed\n");
		return 1;
	}
	return 0;
}

/* Prints a live run's result; "lost" only when with_lost. */
static void print_live(const struct live *l, const struct acc *acc, const unsigned long long stats[2], int with_lost)
{
	printf("{\"count\":%llu,\"sum\":%llu,\"ns\":%.0f,", acc->count, acc->sum, l->t1 - l->t0);
	if (with_lost)
		printf("\"lost\":%llu,", acc->lost);
	printf("\"produced\":%llu,\"dropped\":%llu,\"producer\":%s}\n", stats[0], stats[1], l->out);
}

/* The entry point: dispatches argv[1] to drain, live or produce. */
static int dispatch(int argc, char **argv, int (*drain)(int, char **), int (*live)(int, char **), int (*produce)(int, char **))
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

#endif
