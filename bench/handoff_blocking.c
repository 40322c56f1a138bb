/* SPDX-License-Identifier: MIT */
/*
 * handoff experiment 4: throughput of a workload whose calls block 1 ms,
 * per watch mode. Invariant: every call is reaped or counted an error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handoff.h"

/* ---- 4. blocking workload ---- */

int ho_sleep_fn(struct lutf_call *call)
{
	struct timespec ts = {0, SLEEP_NS};

	(void)call;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return 0;
}

static double blocking_once(struct results *r, int mi, int calls, struct blocking_run *out,
			    uint64_t *bns, uint64_t *bcnt)
{
	const struct mode_def *m = &modes[mi];
	struct lutf_request req = {0};
	struct lutf_runtime_stats st;
	struct lutf_runtime *rt;
	uint64_t t0, wall, ns0, cnt0, ns1, cnt1;
	uint32_t id;
	int err, got;

	err = ho_make_runtime(m, 2, 16, -1, &rt);
	if (!err)
		err = lutf_runtime_add_fn(rt, "sleep", ho_sleep_fn, NULL, &id);
	if (err) {
		ho_fail(r, "handoff: %s: runtime setup %ld\n", m->key, err);
		return NAN;
	}
	out->fell_back = ho_fell_back(rt, m);
	bench_sleep_ns(20000000ull);
	ho_bpf_counters(rt, &ns0, &cnt0);
	t0 = bench_now_ns();
	for (int i = 0; i < calls; i++) {
		err = lutf_runtime_submit(rt, id, &req, (uint64_t)i);
		if (err) {
			ho_fail(r, "handoff: %s: blocking submit %ld\n", m->key, err);
			calls = i;
			break;
		}
	}
	got = ho_reap_n(r, rt, calls, m->key);
	wall = bench_now_ns() - t0;
	ho_bpf_counters(rt, &ns1, &cnt1);
	*bns += ns1 - ns0;
	*bcnt += cnt1 - cnt0;
	lutf_runtime_stats(rt, &st);
	out->rebinds += st.rebinds;
	lutf_runtime_destroy(rt);
	return got == calls && calls ? (double)calls * 1e9 / (double)wall : NAN;
}

void ho_run_blocking(struct results *r, int mi, int calls, int runs, struct blocking_run *out)
{
	double v[8];
	uint64_t ns = 0, cnt = 0;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < runs; i++)
		v[i] = blocking_once(r, mi, calls, out, &ns, &cnt);
	out->calls_per_s = bench_median_d(v, (size_t)runs);
	out->rebinds /= (uint64_t)runs;
	out->bpf_runs = cnt;
	out->bpf_ns_per_run = cnt ? (double)ns / (double)cnt : NAN;
	out->ran = true;
}
