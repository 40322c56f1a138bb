/* SPDX-License-Identifier: MIT */
/*
 * The app bench/cluster --scale deploys for its work rows: "spin" burns a
 * fixed CPU time per call, measured on the calling thread's CPU clock
 * (CLOCK_THREAD_CPUTIME_ID), so time the thread spends preempted or
 * throttled by its cgroup's quota does not count: every call costs the same
 * CPU whatever the node's load. The time is the deploy's config "work_us"
 * (default 200, at most 100,000). Its answer is "<us> <hash>" (the hash keeps
 * the work from being optimised away).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <lutf/function.h>

LUTF_APP_ABI;

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

LUTF_FUNCTION(spin)
{
	const char *cfg = lutf_config(call, "work_us");
	unsigned long us = cfg ? strtoul(cfg, NULL, 10) : 200;
	uint64_t h = 1469598103934665603ull, end;
	char buf[48];
	int n;

	if (us > 100000)
		us = 100000;
	end = thread_cpu_ns() + (uint64_t)us * 1000u;
	/* ~1 µs of hashing between clock reads (the clock is a system call
	 * for a thread clock: ~0.3 µs, counted in the work) */
	do {
		for (unsigned i = 0; i < 512; i++)
			h = (h ^ (uint8_t)i) * 1099511628211ull;
	} while (thread_cpu_ns() < end);
	n = snprintf(buf, sizeof(buf), "%lu %016llx", us, (unsigned long long)h);
	return lutf_write(call, buf, (size_t)n);
}
