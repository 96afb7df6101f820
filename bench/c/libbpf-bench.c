// SPDX-License-Identifier: Apache-2.0
/*
 * The libbpf side of bpfkit's benchmarks: times the same work bpfkit's bench does, in one process.
 *
 *   libbpf-bench btf-parse N            parse /sys/kernel/btf/vmlinux N times
 *   libbpf-bench load OBJECT N          open + load + close OBJECT N times (CO-RE applied)
 *   libbpf-bench map-ops N              a hash map u32 -> u64 of N entries: update, lookup, iterate
 *                                       (next_key + lookup), batch lookup, delete
 *
 * Prints one line: the mean nanoseconds per iteration; map-ops prints one per operation
 * ("update 1290"), per entry.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
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

static int map_ops(int n)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench", 4, 8, n, NULL);
	__u32 key, next, *keys;
	__u64 value = 1, *values;
	double t0;
	int i, count, err;

	if (fd < 0) {
		fprintf(stderr, "bpf_map_create: %s\n", strerror(errno));
		return 1;
	}
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		key = i;
		if (bpf_map_update_elem(fd, &key, &value, BPF_ANY)) {
			fprintf(stderr, "update: %s\n", strerror(errno));
			return 1;
		}
	}
	printf("update %.0f\n", (now_ns() - t0) / n);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		key = i;
		if (bpf_map_lookup_elem(fd, &key, &value))
			return 1;
	}
	printf("lookup %.0f\n", (now_ns() - t0) / n);
	t0 = now_ns();
	count = 0;
	for (err = bpf_map_get_next_key(fd, NULL, &next); !err; err = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &value) == 0)
			count++;
	}
	printf("iterate %.0f\n", (now_ns() - t0) / (count ? count : 1));
	keys = calloc(n, sizeof(*keys));
	values = calloc(n, sizeof(*values));
	t0 = now_ns();
	{
		__u32 batch, total = 0;
		void *in = NULL;

		for (;;) {
			__u32 cnt = 4096;

			if (total + cnt > (__u32)n)
				cnt = n - total;
			err = bpf_map_lookup_batch(fd, in, &batch, keys + total, values + total, &cnt, NULL);
			total += cnt;
			in = &batch;
			if (err || total >= (__u32)n)
				break;
		}
		printf("batch %.0f\n", (now_ns() - t0) / (total ? total : 1));
	}
	free(keys);
	free(values);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		key = i;
		bpf_map_delete_elem(fd, &key);
	}
	printf("delete %.0f\n", (now_ns() - t0) / n);
	close(fd);
	return 0;
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
	if (strcmp(argv[1], "map-ops") == 0)
		return map_ops(atoi(argv[2]));
	fprintf(stderr, "unknown mode %s\n", argv[1]);
	return 2;
}
