// SPDX-License-Identifier: Apache-2.0
/*
 * The libbpf side of bpfkit's benchmarks: times the same work bpfkit's bench does, in one process.
 *
 *   libbpf-bench btf-parse N            parse /sys/kernel/btf/vmlinux N times
 *   libbpf-bench load OBJECT N          open + load + close OBJECT N times (CO-RE applied)
 *
 * Prints one line: the mean nanoseconds per iteration.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	(void)fmt;
	(void)args;
	return 0;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s btf-parse N | load OBJECT N\n", argv[0]);
		return 2;
	}
	libbpf_set_print(quiet);
	if (strcmp(argv[1], "btf-parse") == 0) {
		int n = atoi(argv[2]);
		double t0 = now_ns();
		for (int i = 0; i < n; i++) {
			struct btf *btf = btf__parse("/sys/kernel/btf/vmlinux", NULL);
			if (!btf) {
				fprintf(stderr, "btf__parse: %s\n", strerror(errno));
				return 1;
			}
			btf__free(btf);
		}
		printf("%.0f\n", (now_ns() - t0) / n);
		return 0;
	}
	if (strcmp(argv[1], "load") == 0 && argc >= 4) {
		int n = atoi(argv[3]);
		double t0 = now_ns();
		for (int i = 0; i < n; i++) {
			struct bpf_object *obj = bpf_object__open_file(argv[2], NULL);
			if (!obj) {
				fprintf(stderr, "open: %s\n", strerror(errno));
				return 1;
			}
			int err = bpf_object__load(obj);
			if (err) {
				fprintf(stderr, "load: %s\n", strerror(-err));
				return 1;
			}
			bpf_object__close(obj);
		}
		printf("%.0f\n", (now_ns() - t0) / n);
		return 0;
	}
	fprintf(stderr, "unknown mode %s\n", argv[1]);
	return 2;
}
