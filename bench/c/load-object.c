// SPDX-License-Identifier: Apache-2.0
/*
 * libbpf's side of bench/load.bench.ts: opens and loads one BPF object twice in one process and
 * times each inside the process, as bpfkit's side times CollectionSpec + Collection.load.
 *
 *   load-object OBJECT
 *
 * Prints one line: "cold NS warm NS cpu NS", where cold is the first bpf_object__open_file +
 * bpf_object__load (libbpf reads the kernel's BTF and probes features then), warm the second in
 * the same process, and cpu the process's user+system time for the first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	(void)fmt;
	(void)args;
	return 0;
}

static double ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Opens, loads and closes OBJECT; returns 0 or a negative errno. */
static int load_once(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	int err;

	if (!obj)
		return -errno;
	err = bpf_object__load(obj);
	bpf_object__close(obj);
	return err;
}

int main(int argc, char **argv)
{
	double t0, c0, cold, cpu, warm;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OBJECT\n", argv[0]);
		return 2;
	}
	libbpf_set_print(quiet);
	t0 = ns(CLOCK_MONOTONIC);
	c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
	err = load_once(argv[1]);
	cold = ns(CLOCK_MONOTONIC) - t0;
	cpu = ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
	if (err) {
		fprintf(stderr, "load %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	t0 = ns(CLOCK_MONOTONIC);
	err = load_once(argv[1]);
	warm = ns(CLOCK_MONOTONIC) - t0;
	if (err) {
		fprintf(stderr, "second load %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	printf("cold %.0f warm %.0f cpu %.0f\n", cold, warm, cpu);
	return 0;
}
