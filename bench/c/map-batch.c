// SPDX-License-Identifier: Apache-2.0
/*
 * libbpf's side of bench/pktcount.bench.ts: reads every entry of the map with kernel id MAP_ID
 * with bpf_map_lookup_batch, 4096 entries per call, as pktcount reads its flow table.
 *
 *   map-batch MAP_ID
 *
 * Prints one line: "entries N ns NS" (the time of the whole read, taken inside the process).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), total = 0, batch = 0, per = 4096;
	void *keys, *values, *in = NULL;
	double t0;
	int fd, err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s MAP_ID\n", argv[0]);
		return 2;
	}
	fd = bpf_map_get_fd_by_id(atoi(argv[1]));
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		fprintf(stderr, "map %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	keys = malloc((size_t)info.max_entries * info.key_size);
	values = malloc((size_t)info.max_entries * info.value_size);
	if (!keys || !values)
		return 1;
	t0 = now_ns();
	for (;;) {
		__u32 cnt = per;

		if (total + cnt > info.max_entries)
			cnt = info.max_entries - total;
		err = bpf_map_lookup_batch(fd, in, &batch, (char *)keys + (size_t)total * info.key_size,
					   (char *)values + (size_t)total * info.value_size, &cnt, NULL);
		if (err && errno != ENOENT) {
			fprintf(stderr, "lookup_batch: %s\n", strerror(errno));
			return 1;
		}
		total += cnt;
		in = &batch;
		if (err || total >= info.max_entries)
			break;
	}
	printf("entries %u ns %.0f\n", total, now_ns() - t0);
	close(fd);
	return 0;
}
