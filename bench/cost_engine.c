/* SPDX-License-Identifier: MIT */
/*
 * cost_engine: a fixed number of no-op calls through the engine's async path
 * (submit, a Labor's pop, run and finish, reap), in batches of 64,
 * in-process Labors, labor_watch off. Its only purpose is to be counted:
 * bench/cost.sh builds it against two builds' engine libraries and runs it
 * under callgrind, collecting only inside the per-call entry points, so that
 * the instructions per call of the front (submit, reap) and of the worker
 * side (finish, unref) come out exact and untouched by host load. So that
 * the counts do not depend on timing, each batch is submitted, left to the
 * Labors for BATCH_WAIT_NS, then reaped without waiting (a reap pass finds
 * the whole batch; an empty pass sleeps 1 ms and looks again). Exits 1 on a
 * failed call. Usage: cost_engine [CALLS] (default 20000).
 *
 * With --time sync|async it is a timer instead (the default config, as
 * bench/dispatch (b) and (c)): sync prints the median ns of 200,000 calls of
 * lutf_runtime_invoke one at a time, async the calls/s of 2,000,000 with 64
 * in flight. Each run takes about a second, so cost.sh --engine-timed can
 * interleave enough runs of two builds to resolve a few percent on a host
 * where one run of bench/dispatch moves by more than that.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lutf/runtime.h>

#define IN_FLIGHT 64
#define BATCH_WAIT_NS 10000000L /* the Labors' time for one batch (valgrind is slow) */
#define EMPTY_MAX 10000		/* empty reap passes (1 ms apart) before giving up */

static int noop(struct lutf_call *call)
{
	(void)call;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A reap's k completions (k <= 0: none came in EMPTY_MAX ms): each OK, and
 * released. Returns 0, or 1 after saying what failed. */
static int take(struct lutf_completion *cs, int k)
{
	if (k <= 0) {
		fprintf(stderr, "cost_engine: no completion in %d ms\n", EMPTY_MAX);
		return 1;
	}
	for (int i = 0; i < k; i++) {
		if (cs[i].result.status != LUTF_STATUS_OK) {
			fprintf(stderr, "cost_engine: call failed: %s\n",
				lutf_status_str(cs[i].result.status));
			return 1;
		}
		lutf_result_release(&cs[i].result);
	}
	return 0;
}

/* (b): the median of CALLS sync calls, after a warm-up. */
static int time_sync(struct lutf_runtime *rt, uint32_t id)
{
	enum { CALLS = 200000 };
	struct lutf_request req = {0};
	struct lutf_result res;
	uint64_t *lat = malloc(CALLS * sizeof(*lat));

	if (!lat)
		return 1;
	for (int i = 0; i < 1000 + CALLS; i++) {
		uint64_t a = now_ns();
		int err = lutf_runtime_invoke(rt, id, &req, &res);

		if (err || res.status != LUTF_STATUS_OK) {
			fprintf(stderr, "cost_engine: sync call failed: %d/%u\n", err,
				(unsigned)res.status);
			free(lat);
			return 1;
		}
		if (i >= 1000)
			lat[i - 1000] = now_ns() - a;
		lutf_result_release(&res);
	}
	qsort(lat, CALLS, sizeof(*lat), cmp_u64);
	printf("%llu\n", (unsigned long long)lat[CALLS / 2]);
	free(lat);
	return 0;
}

/* (c): calls/s with IN_FLIGHT outstanding, reaped with a wait. */
static int time_async(struct lutf_runtime *rt, uint32_t id)
{
	struct lutf_completion cs[IN_FLIGHT];
	struct lutf_request req = {0};
	long n = 2000000, sent = 0, done = 0;
	uint64_t t0 = now_ns();

	while (done < n) {
		int k;

		while (sent - done < IN_FLIGHT && sent < n &&
		       lutf_runtime_submit(rt, id, &req, (uint64_t)sent) == 0)
			sent++;
		k = lutf_runtime_reap(rt, cs, IN_FLIGHT, EMPTY_MAX);
		if (take(cs, k))
			return 1;
		done += k;
	}
	printf("%.0f\n", (double)n * 1e9 / (double)(now_ns() - t0));
	return 0;
}

static int timed(const char *what)
{
	struct lutf_runtime *rt;
	uint32_t id;
	int err;

	if (strcmp(what, "sync") && strcmp(what, "async")) {
		fprintf(stderr, "cost_engine: --time takes sync or async\n");
		return 2;
	}
	if (lutf_runtime_create(NULL, &rt) || lutf_runtime_add_fn(rt, "noop", noop, NULL, &id)) {
		fprintf(stderr, "cost_engine: cannot create the runtime\n");
		return 1;
	}
	err = what[0] == 's' ? time_sync(rt, id) : time_async(rt, id);
	lutf_runtime_destroy(rt);
	return err;
}

int main(int argc, char **argv)
{
	struct lutf_completion cs[IN_FLIGHT];
	struct lutf_request req = {0};
	struct lutf_runtime *rt;
	struct lutf_config cfg;
	long n, done = 0, sent = 0;
	uint32_t id;

	if (argc > 1 && !strcmp(argv[1], "--time"))
		return argc == 3 ? timed(argv[2])
				 : (fprintf(stderr, "usage: %s --time sync|async\n", argv[0]), 2);
	n = argc > 1 ? atol(argv[1]) : 20000;

	if (n <= 0) {
		fprintf(stderr, "usage: %s [CALLS] | --time sync|async\n", argv[0]);
		return 2;
	}
	lutf_config_init(&cfg);
	cfg.watch = LUTF_WATCH_OFF;
	if (lutf_runtime_create(&cfg, &rt) || lutf_runtime_add_fn(rt, "noop", noop, NULL, &id)) {
		fprintf(stderr, "cost_engine: cannot create the runtime\n");
		return 1;
	}
	while (done < n) {
		struct timespec ts = {0, BATCH_WAIT_NS};
		int k, empty = 0;

		while (sent - done < IN_FLIGHT && sent < n &&
		       lutf_runtime_submit(rt, id, &req, (uint64_t)sent) == 0)
			sent++;
		nanosleep(&ts, NULL);
		while ((k = lutf_runtime_reap(rt, cs, IN_FLIGHT, 0)) == 0 && ++empty < EMPTY_MAX) {
			ts.tv_nsec = 1000000L;
			nanosleep(&ts, NULL);
		}
		if (take(cs, k))
			return 1;
		done += k;
	}
	printf("%ld calls\n", done);
	lutf_runtime_destroy(rt);
	return 0;
}
