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
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
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

int main(int argc, char **argv)
{
	struct lutf_completion cs[IN_FLIGHT];
	struct lutf_request req = {0};
	struct lutf_runtime *rt;
	struct lutf_config cfg;
	long n = argc > 1 ? atol(argv[1]) : 20000, done = 0, sent = 0;
	uint32_t id;

	if (n <= 0) {
		fprintf(stderr, "usage: %s [CALLS]\n", argv[0]);
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
		done += k;
	}
	printf("%ld calls\n", done);
	lutf_runtime_destroy(rt);
	return 0;
}
