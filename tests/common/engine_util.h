/* SPDX-License-Identifier: MIT */
/* Helpers shared by engine tests: configs, gates for blocking functions. */
#ifndef LUTF_TEST_ENGINE_UTIL_H
#define LUTF_TEST_ENGINE_UTIL_H

#include <stdint.h>
#include <errno.h>
#include <time.h>

#include <lutf/runtime.h>

static inline struct lutf_config test_config(uint32_t carts, uint32_t labors)
{
	struct lutf_config c;

	lutf_config_init(&c);
	c.carts = carts;
	c.labors = labors;
	c.cart_capacity = 1024;
	c.arena_bytes = 8u << 20;
	c.max_payload = 1u << 20;
	return c;
}

static inline uint64_t test_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void test_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A gate blocking functions wait on (sleeping in the kernel, 1 ms steps). */
static inline void gate_wait(const int *gate)
{
	while (!__atomic_load_n(gate, __ATOMIC_ACQUIRE))
		test_sleep_ms(1);
}

/* Reap until want completions or timeout_ms; returns how many. */
static inline int reap_all(struct lutf_runtime *rt, struct lutf_completion *out, int want,
			   int timeout_ms)
{
	uint64_t until = test_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int got = 0;

	while (got < want && test_now_ns() < until) {
		int n = lutf_runtime_reap(rt, out + got, (unsigned)(want - got), 100);

		if (n < 0)
			return n;
		got += n;
	}
	return got;
}

#endif
