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
	fprintf(stderr, "ringbuf-consumer: %s: %s\n", what, strerror(err < 0 ? -err : err));
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

static void run_prog(int prog_fd, unsigned int per_run, unsigned int flags, unsigned int last_flags, int repeat)
{
	unsigned char pkt[14];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = repeat);
	int err;

	command(pkt, per_run, flags, last_flags);
	err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (err)
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
		fprintf(stderr, "ringbuf-consumer: no map %s in the object\n", name);
		exit(1);
	}
	return bpf_map__fd(m);
}

static int prog_fd(struct bpf_object *obj)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, "rb_produce");

	if (!p) {
		fprintf(stderr, "ringbuf-consumer: no program rb_produce in the object\n");
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

static int drain(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: %s drain OBJECT ROUNDS RECORDS PER_RUN CPU\n", argv[0]);
		return 2;
	}
	int rounds = atoi(argv[3]);
	unsigned int records = (unsigned int)atoi(argv[4]);
	unsigned int per_run = (unsigned int)atoi(argv[5]);
	struct acc acc = { 0 };
	unsigned long long stats[2];
	struct bpf_object *obj;
	struct ring_buffer *rb;
	int pfd;

	pin_cpu(atoi(argv[6]));
	obj = load(argv[2]);
	pfd = prog_fd(obj);
	rb = ring_buffer__new(map_fd(obj, "ring"), on_record, &acc, NULL);
	if (!rb)
		die("ring_buffer__new", errno);

	printf("{\"rates\":[");
	for (int r = 0; r < rounds; r++) {
		/* BPF_RB_NO_WAKEUP: nobody waits during a fill. */
		for (unsigned int k = 0; k < records / per_run; k++)
			run_prog(pfd, per_run, 1, 1, 1);
		double t0 = now_ns();
		int n = ring_buffer__consume(rb);
		double t1 = now_ns();

		if (n < 0)
			die("ring_buffer__consume", n);
		printf("%s%.0f", r ? "," : "", n / ((t1 - t0) / 1e9));
	}
	read_stats(obj, stats);
	printf("],\"count\":%llu,\"sum\":%llu,\"dropped\":%llu}\n", acc.count, acc.sum, stats[1]);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

static int produce(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: %s produce PIN MS PER_RUN REPEAT CPU [FLAGS]\n", argv[0]);
		return 2;
	}
	double ms = atof(argv[3]);
	unsigned int per_run = (unsigned int)atoi(argv[4]);
	int repeat = atoi(argv[5]);
	unsigned int flags = argc > 7 ? (unsigned int)atoi(argv[7]) : 1;
	unsigned int last_flags = argc > 8 ? (unsigned int)atoi(argv[8]) : 2;
	unsigned long long runs = 0;
	int fd;

	pin_cpu(atoi(argv[6]));
	fd = bpf_obj_get(argv[2]);
	if (fd < 0)
		die("bpf_obj_get", errno);
	double t0 = now_ns(), t;
	do {
		run_prog(fd, per_run, flags, last_flags, repeat);
		runs += repeat;
		t = now_ns();
	} while (t - t0 < ms * 1e6);
	printf("{\"runs\":%llu,\"perRun\":%u,\"ns\":%.0f}\n", runs, per_run, t - t0);
	close(fd);
	return 0;
}

static int live(int argc, char **argv)
{
	if (argc < 9) {
		fprintf(stderr, "usage: %s live OBJECT PIN_DIR MS PER_RUN REPEAT CPU PRODUCER_CPU\n", argv[0]);
		return 2;
	}
	struct acc acc = { 0 };
	unsigned long long stats[2];
	char pin[4096], out[4096];
	struct bpf_object *obj;
	struct ring_buffer *rb;
	int pipefd[2], status, exited = 0;
	pid_t child;

	pin_cpu(atoi(argv[7]));
	obj = load(argv[2]);
	snprintf(pin, sizeof(pin), "%s/prog", argv[3]);
	if (mkdir(argv[3], 0700) && errno != EEXIST)
		die("mkdir", errno);
	if (bpf_obj_pin(prog_fd(obj), pin))
		die("bpf_obj_pin", errno);
	rb = ring_buffer__new(map_fd(obj, "ring"), on_record, &acc, NULL);
	if (!rb)
		die("ring_buffer__new", errno);

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
		execl("/proc/self/exe", argv[0], "produce", pin, argv[4], argv[5], argv[6], argv[8], (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	while (!exited) {
		/* A short timeout: the end of the producer is noticed within a millisecond. */
		int n = ring_buffer__poll(rb, 1);

		if (n < 0 && n != -EINTR)
			die("ring_buffer__poll", n);
		if (waitpid(child, &status, WNOHANG) == child)
			exited = 1;
	}
	/* The producer is gone: take what is left. */
	if (ring_buffer__consume(rb) < 0)
		die("ring_buffer__consume", errno);
	double t1 = now_ns();
	ssize_t len = read(pipefd[0], out, sizeof(out) - 1);
	out[len > 0 ? len : 0] = 0;
	if (len > 0 && out[len - 1] == '\n')
		out[len - 1] = 0;
	close(pipefd[0]);
	unlink(pin);
	rmdir(argv[3]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "ringbuf-consumer: the producer failed\n");
		return 1;
	}
	read_stats(obj, stats);
	printf("{\"count\":%llu,\"sum\":%llu,\"ns\":%.0f,\"produced\":%llu,\"dropped\":%llu,\"producer\":%s}\n",
	       acc.count, acc.sum, t1 - t0, stats[0], stats[1], len > 0 ? out : "null");
	ring_buffer__free(rb);
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
