/* SPDX-License-Identifier: MIT */
/*
 * Lock-free stress of the Cart binding that the Supervisor and the direct take
 * share (lutf_cart_claim, lutf_cart_rebind in cart.c), as a plain program so
 * that it runs under TSan. Labor threads follow labor_main's protocol on their
 * cart word (wait out a claim, drop a lost Cart, "block" inside a Brick, take
 * a blocked peer's Cart while free); a Supervisor thread re-binds Carts of
 * blocked Labors to free ones at the same time. Checked all along: a Labor
 * that reads its Cart owns it, and only one Labor at a time runs a Cart
 * (an atomic per Cart, entered only after the owner check). Checked at the
 * end: one owner per Cart, and that owner's cart word names it. Exit 0 = pass.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
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

enum { CARTS = 3, LABORS = 6 };

static struct lutf_region reg;
static uint32_t blocked[LABORS]; /* 1 while "blocked inside a Brick" (the probe's view) */
static uint32_t running[CARTS];	 /* Labors inside the "pop and run" step of a Cart */
static uint32_t stop;
static uint64_t n_takes, n_rebinds, n_runs;
static unsigned iters = 200000;

/* Labor i, as labor_main: its cart word decides what it does. */
static void *labor(void *arg)
{
	uint32_t i = (uint32_t)(uintptr_t)arg;
	struct lutf_labor *me = &reg.labors[i];
	unsigned seed = i * 7919u + 1;

	for (unsigned k = 0; k < iters; k++) {
		uint32_t c = __atomic_load_n(&me->cart, __ATOMIC_ACQUIRE);

		if (c != LUTF_NONE && (c & LUTF_CART_PENDING)) {
			sched_yield();
			continue;
		}
		if (c == LUTF_NONE) {
			/* Free: take a blocked peer's Cart, as take_blocked does. */
			__atomic_store_n(&me->state, LUTF_LABOR_FREE, __ATOMIC_RELEASE);
			for (uint32_t j = 0; j < LABORS; j++) {
				uint32_t pc;

				if (j == i || !__atomic_load_n(&blocked[j], __ATOMIC_ACQUIRE))
					continue;
				pc = __atomic_load_n(&reg.labors[j].cart, __ATOMIC_ACQUIRE);
				if (pc < CARTS && lutf_cart_rebind(&reg, pc, j, i, 1)) {
					__atomic_add_fetch(&n_takes, 1, __ATOMIC_RELAXED);
					break;
				}
			}
			continue;
		}
		CHECK(c < CARTS, "Labor %u: cart word %u", i, c);
		if (__atomic_load_n(&reg.carts[c].owner, __ATOMIC_ACQUIRE) != i + 1) {
			/* Lost it: cart first, then FREE (labor_main's order). */
			__atomic_store_n(&me->cart, LUTF_NONE, __ATOMIC_RELAXED);
			__atomic_store_n(&me->state, LUTF_LABOR_FREE, __ATOMIC_RELEASE);
			continue;
		}
		__atomic_store_n(&me->state, LUTF_LABOR_RUNNING, __ATOMIC_RELAXED);
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 16) % 4 == 0) {
			/* "Block" inside the Brick: takers may move the Cart now. */
			__atomic_store_n(&blocked[i], 1, __ATOMIC_RELEASE);
			for (int y = 0; y < 3; y++)
				sched_yield();
			__atomic_store_n(&blocked[i], 0, __ATOMIC_RELEASE);
		} else {
			/* Run one Brick of the Cart: the old owner may enter once
			 * after a take (it checked before the take), never twice. */
			uint32_t in = __atomic_add_fetch(&running[c], 1, __ATOMIC_ACQ_REL);

			CHECK(in <= 2, "Cart %u run by %u Labors at once", c, in);
			__atomic_add_fetch(&n_runs, 1, __ATOMIC_RELAXED);
			__atomic_sub_fetch(&running[c], 1, __ATOMIC_ACQ_REL);
		}
		__atomic_store_n(&me->state, LUTF_LABOR_IDLE, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* The Supervisor's half: a blocked owner's Cart goes to a free Labor. */
static void *supervisor(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		for (uint32_t c = 0; c < CARTS; c++) {
			uint32_t o = __atomic_load_n(&reg.carts[c].owner, __ATOMIC_RELAXED);

			if (o == 0 || o > LABORS ||
			    !__atomic_load_n(&blocked[o - 1], __ATOMIC_ACQUIRE))
				continue;
			for (uint32_t to = 0; to < LABORS; to++) {
				if (__atomic_load_n(&reg.labors[to].state, __ATOMIC_ACQUIRE) !=
					LUTF_LABOR_FREE ||
				    __atomic_load_n(&reg.labors[to].cart, __ATOMIC_RELAXED) !=
					LUTF_NONE)
					continue;
				if (lutf_cart_rebind(&reg, c, o - 1, to, 1))
					__atomic_add_fetch(&n_rebinds, 1, __ATOMIC_RELAXED);
				break;
			}
		}
		sched_yield();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct lutf_config cfg = test_config(CARTS, LABORS);
	pthread_t t[LABORS], sup;
	uint32_t owners[LABORS] = {0};
	size_t size;
	void *mem;

	if (argc > 1 && strcmp(argv[1], "--small") == 0)
		iters /= 10;
	cfg.labors_max = LABORS;
	cfg.grace_ns = 0;
	size = lutf_region_size(&cfg);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED, "mmap");
	CHECK(lutf_region_format(mem, size, &cfg, 0) == 0, "format");
	CHECK(lutf_region_open(&reg, mem, size) == 0, "open");
	for (uint32_t i = 0; i < LABORS; i++)
		reg.labors[i].cart = LUTF_NONE;
	/* Every Cart has Bricks queued (never popped): a rebind needs some. */
	for (uint32_t c = 0; c < CARTS; c++) {
		CHECK(lutf_ring_push(&reg, &reg.cart_q[c], 0) == 0, "push");
		CHECK(lutf_cart_claim(&reg, c, LUTF_NONE, c), "first bind of Cart %u", c);
		CHECK(!lutf_cart_claim(&reg, c, LUTF_NONE, CARTS + c), "Cart %u bound twice", c);
	}
	CHECK(!lutf_cart_rebind(&reg, 0, 0, 1, 0), "a rebind with stuck 0");
	CHECK(pthread_create(&sup, NULL, supervisor, NULL) == 0, "thread");
	for (uint32_t i = 0; i < LABORS; i++)
		CHECK(pthread_create(&t[i], NULL, labor, (void *)(uintptr_t)i) == 0, "thread");
	for (uint32_t i = 0; i < LABORS; i++)
		pthread_join(t[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(sup, NULL);

	/* Quiet: each Labor drops a Cart it lost, as its next loop would. */
	for (uint32_t i = 0; i < LABORS; i++) {
		uint32_t c = reg.labors[i].cart;

		CHECK(c == LUTF_NONE || c < CARTS, "Labor %u left a claim pending (%x)", i, c);
		if (c != LUTF_NONE && reg.carts[c].owner != i + 1)
			reg.labors[i].cart = LUTF_NONE;
	}
	for (uint32_t c = 0; c < CARTS; c++) {
		uint32_t o = reg.carts[c].owner;

		CHECK(o >= 1 && o <= LABORS, "Cart %u owner %u", c, o);
		CHECK(owners[o - 1]++ == 0, "Labor %u owns two Carts", o - 1);
		CHECK(reg.labors[o - 1].cart == c, "Cart %u: owner %u does not know it (cart %u)",
		      c, o - 1, reg.labors[o - 1].cart);
	}
	CHECK(n_takes + n_rebinds > 0, "no Cart moved");
	printf("stress_take: %llu direct takes, %llu Supervisor rebinds, %llu runs: ok\n",
	       (unsigned long long)n_takes, (unsigned long long)n_rebinds,
	       (unsigned long long)n_runs);
	return 0;
}
