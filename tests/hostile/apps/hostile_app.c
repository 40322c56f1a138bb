/* SPDX-License-Identifier: MIT */
/*
 * A hostile tenant for the `hostile` suite: one function whose input names
 * what it writes into its own worker's mapping of the shared region, which it
 * finds the way any function could, in any tier: walking back page by page
 * from its input (which lives in the region) to the region's magic. It
 * trusts the layout it finds there; lutfd must not trust what it writes.
 *
 * Input "<mode>[:<arg>]": noop, echo:<text>, sleep:<ms>, random, header,
 * config, rings, bricks, tids:<tid>,<tid>,..., cqflood:<ms>, flip:<ms>,
 * lose:<ms>.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <lutf/function.h>

#include "region.h" /* test-only: the attacker knows the engine's layout */

LUTF_APP_ABI;

#define PAGE 4096ul
#define WALK_MAX (4ul << 30) /* never walk back further than a region can be */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	uint64_t x = rnd_state ? rnd_state : 0x9e3779b97f4a7c15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rnd_state = x;
}

/* The region this call's input lies in, by its magic at a page start. */
static struct lutf_region_hdr *find_region(const void *input)
{
	uintptr_t p = (uintptr_t)input & ~(PAGE - 1);

	for (uintptr_t walked = 0; p && walked < WALK_MAX; walked += PAGE, p -= PAGE) {
		const struct lutf_region_hdr *h = (const void *)p;

		if (h->magic == LUTF_REGION_MAGIC && h->version == LUTF_REGION_VERSION &&
		    (uintptr_t)input - p < h->size)
			return (struct lutf_region_hdr *)h;
	}
	return NULL;
}

static void fill_random(void *p, size_t n)
{
	uint8_t *b = p;

	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v = rnd();

		memcpy(b + i, &v, 8);
	}
}

static uint32_t evil32(void)
{
	static const uint32_t v[] = {0, 1, 0xffffffffu, 0x7fffffffu, 0x80000000u, 0xfffffffeu};
	uint64_t r = rnd();

	return r & 1 ? v[(r >> 1) % 6] : (uint32_t)(r >> 16);
}

static uint64_t evil64(void)
{
	static const uint64_t v[] = {0, 8, UINT64_MAX, 1ull << 63, 0xfffffffffffff000ull};
	uint64_t r = rnd();

	return r & 1 ? v[(r >> 1) % 5] : r;
}

static void evil_ring(struct lutf_ring *q)
{
	q->enq = evil64();
	q->deq = evil64();
	q->cells_off = evil64();
	q->mask = evil32();
}

static struct lutf_labor *labors(struct lutf_region_hdr *h)
{
	return (struct lutf_labor *)((char *)h + h->off_labors);
}

/* Every Labor but the caller's names the given tids (and claims them as its
 * own process), round-robin: first the free ones (a Cart moved off a blocked
 * Labor goes to one of them, and lutfd pins it there), then the others. */
static int forge_tids(struct lutf_region_hdr *h, const char *arg)
{
	int32_t tids[16], me = (int32_t)syscall(SYS_gettid);
	uint32_t n = 0, k = 0, max = h->cfg.labors_max;
	struct lutf_labor *l = labors(h);

	while (arg && *arg && n < 16) {
		tids[n++] = (int32_t)strtol(arg, (char **)&arg, 10);
		if (*arg == ',')
			arg++;
	}
	if (!n)
		return -1;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < max; i++) {
			int32_t tid = __atomic_load_n(&l[i].tid, __ATOMIC_RELAXED);
			bool free =
			    __atomic_load_n(&l[i].state, __ATOMIC_RELAXED) == LUTF_LABOR_FREE &&
			    __atomic_load_n(&l[i].cart, __ATOMIC_RELAXED) == LUTF_NONE;

			if (tid == me || tid <= 0 || free != (pass == 0))
				continue;
			__atomic_store_n(&l[i].tgid, tids[k % n], __ATOMIC_RELAXED);
			__atomic_store_n(&l[i].tid, tids[k % n], __ATOMIC_RELEASE);
			k++;
		}
	}
	return 0;
}

/* Push indices onto the completion ring as fast as the worker can, as a
 * pusher would (cell sequence first), for ms: valid-looking and wild ones. */
static void cq_flood(struct lutf_region_hdr *h, uint64_t ms)
{
	struct lutf_ring *q = &h->cq;
	uint64_t mask = q->mask, until = now_ms() + ms;
	struct lutf_cell *cells = (struct lutf_cell *)((char *)h + q->cells_off);
	uint32_t bricks = h->cfg.bricks;

	for (uint64_t n = 0;; n++) {
		uint64_t pos = __atomic_load_n(&q->enq, __ATOMIC_RELAXED);
		struct lutf_cell *c = &cells[pos & mask];

		c->val = n & 1 ? (uint32_t)(rnd() % (bricks ? bricks : 1)) : evil32();
		__atomic_store_n(&c->seq, pos + 1 - (pos & mask), __ATOMIC_RELEASE);
		__atomic_store_n(&q->enq, pos + 1, __ATOMIC_RELEASE);
		if (n % 4096 == 0) {
			__atomic_add_fetch(&h->cq_bell, 1, __ATOMIC_RELEASE);
			if (now_ms() >= until)
				break;
		}
	}
}

/* The double-read case: words lutfd checks and then uses, flipped between a
 * good value and a bad one as fast as possible for ms, then restored. */
static void flip(struct lutf_region_hdr *h, uint64_t ms)
{
	struct lutf_brick *b = (struct lutf_brick *)((char *)h + h->off_bricks);
	const struct lutf_config good = h->cfg;
	const uint64_t cq_off = h->cq.cells_off;
	const uint32_t cq_mask = h->cq.mask, nb = good.bricks;
	uint64_t until = now_ms() + ms;

	for (uint64_t n = 0;; n++) {
		int bad = n & 1;

		__atomic_store_n(&h->cfg.carts, bad ? 0 : good.carts, __ATOMIC_RELAXED);
		__atomic_store_n(&h->cfg.bricks, bad ? 0xffffffffu : good.bricks, __ATOMIC_RELAXED);
		__atomic_store_n(&h->cfg.labors_max, bad ? 0xffffffffu : good.labors_max,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&h->cfg.max_functions, bad ? 0xffffffffu : good.max_functions,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&h->cq.mask, bad ? 0xffffffffu : cq_mask, __ATOMIC_RELAXED);
		__atomic_store_n(&h->cq.cells_off, bad ? (1ull << 62) : cq_off, __ATOMIC_RELAXED);
		/* Finished results: lutfd reads their offsets and lengths now. */
		for (uint32_t i = 0; i < nb; i++) {
			if (__atomic_load_n(&b[i].state, __ATOMIC_RELAXED) != LUTF_BRICK_DONE)
				continue;
			__atomic_store_n(&b[i].out_len, bad ? 0xfffffff0u : 0, __ATOMIC_RELAXED);
			__atomic_store_n(&b[i].out_ct, bad ? 0xffffu : 0, __ATOMIC_RELAXED);
			__atomic_store_n(&b[i].out_off, bad ? (1ull << 62) : 0, __ATOMIC_RELAXED);
		}
		if (n % 64 == 0 && now_ms() >= until)
			break;
	}
	h->cfg = good;
	h->cq.cells_off = cq_off;
	h->cq.mask = cq_mask;
}

/* Valid-looking wrong values: for ms, every queued or running Brick but the
 * caller's own is marked FREE, a state no check refuses. Its Labor then
 * drops it (queued) or cannot finish it (running): the call is never
 * answered by the worker, and nothing in the region says so. Returns how
 * many Bricks it marked. */
static uint32_t lose(struct lutf_region_hdr *h, const void *input, uint64_t ms)
{
	struct lutf_brick *b = (struct lutf_brick *)((char *)h + h->off_bricks);
	uint64_t until = now_ms() + ms;
	uint32_t nb = h->cfg.bricks, lost = 0;

	for (uint64_t n = 0;; n++) {
		for (uint32_t i = 0; i < nb; i++) {
			uint32_t st = __atomic_load_n(&b[i].state, __ATOMIC_RELAXED);

			if ((const char *)input >= (const char *)&b[i] &&
			    (const char *)input < (const char *)&b[i + 1])
				continue; /* this call's own Brick (inline input) */
			if ((st == LUTF_BRICK_QUEUED || st == LUTF_BRICK_RUNNING) &&
			    __atomic_compare_exchange_n(&b[i].state, &st, LUTF_BRICK_FREE, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				lost++;
		}
		if (now_ms() >= until)
			break;
		usleep(1000);
	}
	return lost;
}

LUTF_FUNCTION(hostile)
{
	char mode[256];
	const char *arg;
	struct lutf_region_hdr *h;
	size_t n = call->input_len < sizeof(mode) - 1 ? call->input_len : sizeof(mode) - 1;

	memcpy(mode, call->input, n);
	mode[n] = 0;
	arg = strchr(mode, ':');
	arg = arg ? arg + 1 : "";
	rnd_state = (uint64_t)now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	if (!strncmp(mode, "noop", 4))
		return lutf_write(call, "ok", 2);
	if (!strncmp(mode, "echo:", 5))
		return lutf_write(call, arg, strlen(arg));
	if (!strncmp(mode, "sleep:", 6)) {
		struct timespec ts = {0, 0};
		long ms = atol(arg);

		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		nanosleep(&ts, NULL);
		return lutf_write(call, "slept", 5);
	}
	h = find_region(call->input);
	if (!h)
		return lutf_fail(call, "region not found");
	if (!strcmp(mode, "random")) {
		fill_random(h, h->size);
	} else if (!strcmp(mode, "header")) {
		fill_random(h, (sizeof(*h) + PAGE - 1) & ~(PAGE - 1));
	} else if (!strcmp(mode, "config")) {
		uint32_t *w = (uint32_t *)&h->cfg;

		for (size_t i = 0; i < sizeof(h->cfg) / 4; i++)
			w[i] = evil32();
		h->cfg.carts = 0;
		h->cfg.cart_capacity = 0;
		h->cfg.labors_max = 0xffffffffu;
		h->cfg.bricks = 0xffffffffu;
	} else if (!strcmp(mode, "rings")) {
		struct lutf_cart *carts = (struct lutf_cart *)((char *)h + h->off_carts);
		uint32_t nc = h->cfg.carts;

		if (h->off_arena > h->off_cells && h->off_arena <= h->size)
			fill_random((char *)h + h->off_cells, h->off_arena - h->off_cells);
		evil_ring(&h->cq);
		evil_ring(&h->held);
		for (uint32_t c = 0; c < nc; c++)
			evil_ring(&carts[c].ring);
		__atomic_add_fetch(&h->cq_bell, 1, __ATOMIC_RELEASE);
	} else if (!strcmp(mode, "bricks")) {
		struct lutf_brick *b = (struct lutf_brick *)((char *)h + h->off_bricks);

		for (uint32_t i = 0; i < h->cfg.bricks; i++) {
			b[i].state = rnd() % 6;
			b[i].fn = evil32();
			b[i].out_off = evil64();
			b[i].out_len = evil32();
			b[i].out_ct = evil32();
		}
	} else if (!strncmp(mode, "tids:", 5)) {
		if (forge_tids(h, arg))
			return lutf_fail(call, "tids: no tid given");
	} else if (!strncmp(mode, "cqflood:", 8)) {
		cq_flood(h, (uint64_t)atol(arg));
	} else if (!strncmp(mode, "flip:", 5)) {
		flip(h, (uint64_t)atol(arg));
	} else if (!strncmp(mode, "lose:", 5)) {
		char out[32];
		int k = snprintf(out, sizeof(out), "lost %u",
				 lose(h, call->input, (uint64_t)atol(arg)));

		return lutf_write(call, out, (size_t)k);
	} else {
		return lutf_fail(call, "unknown mode");
	}
	return lutf_write(call, "done", 4);
}
