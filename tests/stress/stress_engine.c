/* SPDX-License-Identifier: MIT */
/*
 * Lock-free stress, as a plain program so it also runs under TSan (Criterion
 * does not): the MPMC ring, the Brick pool, and the whole engine with several
 * submitters, a reaper (half its waits the way lutfd's io_uring loop waits:
 * lutf_runtime_reap_arm, a futex wait, disarm, a non-blocking reap), blocking
 * Bricks that force Cart migrations, and pause/resume racing with traffic.
 * Exit 0 = pass. Bounded in count and time.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "region.h"
#include "engine_util.h"

#define CHECK(c, ...)                                                                              \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static unsigned scale = 1; /* TSan is ~10x slower: argv[1] "--small" divides */

/* ---- ring and pool ---- */

static struct lutf_region reg;
static uint32_t *taken;
static uint32_t per_thread;
static int producers_left;

static void *ring_producer(void *arg)
{
	uint32_t base = (uint32_t)(uintptr_t)arg * per_thread;

	for (uint32_t i = 0; i < per_thread; i++)
		while (lutf_ring_push(&reg, &reg.cart_q[0], base + i))
			sched_yield();
	__atomic_sub_fetch(&producers_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *ring_consumer(void *arg)
{
	for (;;) {
		uint32_t v = lutf_ring_pop(&reg, &reg.cart_q[0]);

		if (v != LUTF_NONE) {
			__atomic_add_fetch(&taken[v], 1, __ATOMIC_RELAXED);
			continue;
		}
		if (!__atomic_load_n(&producers_left, __ATOMIC_ACQUIRE) &&
		    lutf_ring_count(&reg.cart_q[0]) == 0)
			return NULL;
		sched_yield();
	}
}

static void *pool_churn(void *arg)
{
	for (uint32_t i = 0; i < per_thread; i++) {
		struct lutf_brick *b = lutf_brick_take(&reg);
		uint64_t off;

		if (!b) {
			sched_yield();
			continue;
		}
		/* Ownership check: nobody else may hold this Brick right now. */
		CHECK(__atomic_exchange_n(&b->user_data, 1, __ATOMIC_RELAXED) == 0,
		      "Brick handed out twice");
		off = lutf_arena_alloc(&reg, 100 + (i % 3000));
		if (off) {
			memset(lutf_region_at(&reg, off), 0x5a, 100);
			lutf_arena_free(&reg, off);
		}
		__atomic_store_n(&b->user_data, 0, __ATOMIC_RELAXED);
		lutf_brick_put(&reg, b);
	}
	return NULL;
}

static void stress_ring_and_pool(void)
{
	enum { T = 4 };
	struct lutf_config c = test_config(1, 1);
	pthread_t p[T], q[T];
	size_t size;
	void *mem;

	c.cart_capacity = 64;
	c.bricks = 16;
	per_thread = 200000 / scale;
	size = lutf_region_size(&c);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED, "mmap");
	CHECK(lutf_region_format(mem, size, &c, 0) == 0, "format");
	CHECK(lutf_region_open(&reg, mem, size) == 0, "open");
	taken = calloc((size_t)T * per_thread, sizeof(*taken));
	producers_left = T;
	for (uintptr_t i = 0; i < T; i++) {
		pthread_create(&q[i], NULL, ring_consumer, NULL);
		pthread_create(&p[i], NULL, ring_producer, (void *)i);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(p[i], NULL);
		pthread_join(q[i], NULL);
	}
	for (uint32_t v = 0; v < T * per_thread; v++)
		CHECK(taken[v] == 1, "ring value %u taken %u times", v, taken[v]);
	free(taken);
	for (int i = 0; i < T; i++)
		pthread_create(&p[i], NULL, pool_churn, NULL);
	for (int i = 0; i < T; i++)
		pthread_join(p[i], NULL);
	munmap(mem, size);
	printf("ring: %u values through 4x4 threads, pool churn: ok\n", T * per_thread);
}

/* ---- the engine end to end ---- */

static struct lutf_runtime *rt;
static uint32_t f_echo, f_block;
static uint32_t n_total;
static uint8_t *seen;
static int submitters_left;

LUTF_FUNCTION(s_echo)
{
	return lutf_write(call, call->input, call->input_len);
}

LUTF_FUNCTION(s_block)
{
	test_sleep_ms(2);
	return lutf_write(call, call->input, call->input_len);
}

static void *submitter(void *arg)
{
	uint32_t first = (uint32_t)(uintptr_t)arg * (n_total / 4);

	for (uint32_t i = first; i < first + n_total / 4; i++) {
		uint32_t fn = (i % 97 == 0) ? f_block : f_echo;
		int err;

		while ((err = lutf_runtime_submit(
			    rt, fn, &(struct lutf_request){.input = &i, .input_len = sizeof(i)},
			    i)) == -EAGAIN ||
		       err == -EBUSY)
			sched_yield();
		CHECK(err == 0, "submit %u: %d", i, err);
	}
	__atomic_sub_fetch(&submitters_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *pauser(void *arg)
{
	while (__atomic_load_n(&submitters_left, __ATOMIC_ACQUIRE)) {
		lutf_runtime_pause(rt, f_echo);
		test_sleep_ms(1);
		lutf_runtime_resume(rt, f_echo);
		test_sleep_ms(3);
	}
	lutf_runtime_resume(rt, f_echo);
	return NULL;
}

/* Reap as lutf_runtime_reap does, or (armed) as lutfd's loop does. */
static int reap_some(struct lutf_completion *out, bool armed)
{
	uint32_t *w, val;
	bool shared;

	if (!armed)
		return lutf_runtime_reap(rt, out, 256, 100);
	if (!lutf_runtime_reap_arm(rt, &w, &val, &shared)) {
		struct timespec ts = {0, 100000000};

		syscall(SYS_futex, w, shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
		lutf_runtime_reap_disarm(rt);
	}
	return lutf_runtime_reap(rt, out, 256, 0);
}

static void stress_engine(void)
{
	/* Two Labors for two Carts and room to grow: blocking Bricks make the
	 * pool grow, short idle time makes it shrink again while traffic runs. */
	struct lutf_config c = test_config(2, 2);
	static struct lutf_completion out[256];
	struct lutf_runtime_stats st;
	pthread_t s[4], pz;
	uint32_t got = 0, rounds = 0;
	uint64_t until;

	n_total = 200000 / scale;
	c.grace_ns = 50000;
	c.poll_ns = 50000;
	c.hold_max = 1u << 20;
	c.labors_max = 8;
	c.labor_idle_ms = 5;
	CHECK(lutf_runtime_create(&c, &rt) == 0, "create");
	CHECK(lutf_runtime_add_fn(rt, "echo", s_echo, NULL, &f_echo) == 0, "add");
	CHECK(lutf_runtime_add_fn(rt, "block", s_block, NULL, &f_block) == 0, "add");
	seen = calloc(n_total, 1);
	submitters_left = 4;
	for (uintptr_t i = 0; i < 4; i++)
		pthread_create(&s[i], NULL, submitter, (void *)i);
	pthread_create(&pz, NULL, pauser, NULL);
	until = test_now_ns() + 120ull * 1000000000ull;
	while (got < n_total) {
		int n = reap_some(out, rounds++ & 1);

		CHECK(n >= 0, "reap %d", n);
		CHECK(test_now_ns() < until, "stalled at %u of %u", got, n_total);
		for (int i = 0; i < n; i++) {
			uint32_t v;

			CHECK(out[i].result.status == LUTF_STATUS_OK, "status %u",
			      out[i].result.status);
			CHECK(out[i].result.output_len == sizeof(v), "len");
			memcpy(&v, out[i].result.output, sizeof(v));
			CHECK(v == out[i].user_data && v < n_total, "mismatch");
			CHECK(seen[v]++ == 0, "request %u completed twice", v);
			lutf_result_release(&out[i].result);
		}
		got += (uint32_t)n;
	}
	for (int i = 0; i < 4; i++)
		pthread_join(s[i], NULL);
	pthread_join(pz, NULL);
	lutf_runtime_stats(rt, &st);
	printf(
	    "engine: %u Bricks, %lu rebinds, %lu Labors started, %lu retired, all completed once\n",
	    n_total, (unsigned long)st.rebinds, (unsigned long)st.labor_grows,
	    (unsigned long)st.labor_retires);
	lutf_runtime_destroy(rt);
	free(seen);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--small") == 0)
		scale = 10;
	stress_ring_and_pool();
	stress_engine();
	printf("1 passed, 0 failed\n");
	return 0;
}
