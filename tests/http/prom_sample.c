/* SPDX-License-Identifier: MIT */
/*
 * A sample exposition in the shape lutfd will serve (counters by tenant,
 * function and cause, a latency histogram per function, gauges), with label
 * values that need escaping. Shared by test_prom and prom_example (promtool).
 */
#include "prom_sample.h"

void prom_sample(struct lutf_http_buf *b)
{
	static const char *const ok[] = {"tenant", "demo", "function", "hello", "status", "ok", NULL};
	static const char *const dl[] = {"tenant", "demo", "function", "hello", "status", "deadline",
					 NULL};
	static const char *const odd[] = {"tenant", "q\"uote", "function", "back\\slash\nnl",
					  "status", "crashed", NULL};
	static const char *const fn[] = {"tenant", "demo", "function", "hello", NULL};
	static const char *const fn2[] = {"tenant", "demo", "function", "pi", NULL};
	static const char *const t1[] = {"tenant", "demo", NULL};
	static const char *const st[] = {"state", "running", NULL};
	static const char *const sb[] = {"state", "blocked", NULL};
	struct lutf_prom_hist h = {0}, h2 = {0};

	for (uint64_t ns = 1000; ns < 20000000000ull; ns *= 3)
		lutf_prom_observe(&h, ns);
	lutf_prom_observe(&h2, 12345);

	lutf_prom_family(b, "lutf_invocations", LUTF_PROM_COUNTER,
			 "Invocations answered, by tenant, function and typed status.");
	lutf_prom_counter(b, "lutf_invocations", ok, 41);
	lutf_prom_counter(b, "lutf_invocations", dl, 2);
	lutf_prom_counter(b, "lutf_invocations", odd, 1);
	lutf_prom_family(b, "lutf_invocation_duration_seconds", LUTF_PROM_HISTOGRAM,
			 "Time from accept to reply, per function. A \\ and a\nnewline in help.");
	lutf_prom_histogram(b, "lutf_invocation_duration_seconds", fn, &h);
	lutf_prom_histogram(b, "lutf_invocation_duration_seconds", fn2, &h2);
	lutf_prom_family(b, "lutf_queue_depth", LUTF_PROM_GAUGE, "Bricks queued, per tenant.");
	lutf_prom_u64(b, "lutf_queue_depth", t1, 7);
	lutf_prom_family(b, "lutf_labors", LUTF_PROM_GAUGE, "Labors by state.");
	lutf_prom_u64(b, "lutf_labors", st, 2);
	lutf_prom_u64(b, "lutf_labors", sb, 1);
	lutf_prom_family(b, "lutf_up", LUTF_PROM_GAUGE, "1 while lutfd serves.");
	lutf_prom_double(b, "lutf_up", NULL, 1.0);
}
