/* SPDX-License-Identifier: MIT */
/* Cart rings: bounds, FIFO order, and many producers with many consumers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "region.h"
#include "engine_util.h"

static struct lutf_region reg;
static void *mem;
static size_t size;

static void setup(void)
{
	struct lutf_config c = test_config(1, 1);

	c.cart_capacity = 256;
	size = lutf_region_size(&c);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(mem != MAP_FAILED);
	cr_assert_eq(lutf_region_format(mem, size, &c, 0), 0);
	cr_assert_eq(lutf_region_open(&reg, mem, size), 0);
}

static void teardown(void)
{
	munmap(mem, size);
}

TestSuite(ring, .init = setup, .fini = teardown);

Test(ring, full_and_empty_are_answered_at_once)
{
	const struct lutf_ringv *q = &reg.cart_q[0];

	cr_assert_eq(lutf_ring_pop(&reg, q), LUTF_NONE);
	for (uint32_t i = 0; i < 256; i++)
		cr_assert_eq(lutf_ring_push(&reg, q, i), 0);
	cr_assert_eq(lutf_ring_push(&reg, q, 999), -EAGAIN, "a full Cart must refuse at once");
	cr_assert_eq(lutf_ring_count(q), 256);
	for (uint32_t i = 0; i < 256; i++)
		cr_assert_eq(lutf_ring_pop(&reg, q), i, "FIFO order");
	cr_assert_eq(lutf_ring_pop(&reg, q), LUTF_NONE);
	/* And it wraps around correctly for several laps. */
	for (uint32_t lap = 0; lap < 10; lap++) {
		for (uint32_t i = 0; i < 200; i++)
			cr_assert_eq(lutf_ring_push(&reg, q, lap * 1000 + i), 0);
		for (uint32_t i = 0; i < 200; i++)
			cr_assert_eq(lutf_ring_pop(&reg, q), lap * 1000 + i);
	}
}

Test(ring, region_validation_rejects_garbage)
{
	struct lutf_region r2;
	struct lutf_region_hdr *h = mem;
	uint64_t saved = h->off_bricks;

	h->off_bricks += 64;
	cr_assert_eq(lutf_region_open(&r2, mem, size), -EINVAL, "moved section accepted");
	h->off_bricks = saved;
	cr_assert_eq(lutf_region_open(&r2, mem, size - 4096), -EINVAL, "short region accepted");
	cr_assert_eq(lutf_region_open(&r2, mem, size), 0);
}

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 200000

static uint32_t taken[PRODUCERS * PER_PRODUCER];
static int producers_done;

static void *producer(void *arg)
{
	uint32_t base = (uint32_t)(uintptr_t)arg * PER_PRODUCER;

	for (uint32_t i = 0; i < PER_PRODUCER; i++)
		while (lutf_ring_push(&reg, &reg.cart_q[0], base + i) != 0)
			sched_yield();
	return NULL;
}

static void *consumer(void *arg)
{
	uint64_t *count = arg;

	for (;;) {
		uint32_t v = lutf_ring_pop(&reg, &reg.cart_q[0]);

		if (v == LUTF_NONE) {
			if (__atomic_load_n(&producers_done, __ATOMIC_ACQUIRE) &&
			    lutf_ring_count(&reg.cart_q[0]) == 0)
				return NULL;
			sched_yield();
			continue;
		}
		__atomic_add_fetch(&taken[v], 1, __ATOMIC_RELAXED);
		(*count)++;
	}
}

Test(ring, mpmc_stress_loses_and_duplicates_nothing, .timeout = 120)
{
	pthread_t p[PRODUCERS], c[CONSUMERS];
	uint64_t counts[CONSUMERS] = {0}, total = 0;

	for (uintptr_t i = 0; i < CONSUMERS; i++)
		pthread_create(&c[i], NULL, consumer, &counts[i]);
	for (uintptr_t i = 0; i < PRODUCERS; i++)
		pthread_create(&p[i], NULL, producer, (void *)i);
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(p[i], NULL);
	__atomic_store_n(&producers_done, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < CONSUMERS; i++) {
		pthread_join(c[i], NULL);
		total += counts[i];
	}
	cr_assert_eq(total, (uint64_t)PRODUCERS * PER_PRODUCER);
	for (uint32_t v = 0; v < PRODUCERS * PER_PRODUCER; v++)
		cr_assert_eq(taken[v], 1, "value %u taken %u times", v, taken[v]);
}
