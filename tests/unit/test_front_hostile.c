/* SPDX-License-Identifier: MIT */
/*
 * The front (lutfd's side) against a region a hostile worker wrote: config
 * words, ring counters, masks and cells, the class table, free-stack heads,
 * Labor words and Brick fields. Each test corrupts the region the way a
 * worker could, then drives the front's readers (submit, reap, the
 * Supervisor's pass, crash repair) and asserts they neither crash nor hang,
 * and that the failed check is the one counted. No Labors run: the test
 * plays the worker through its own view of the region, and runs the
 * Supervisor's passes itself.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "front.h"

#define PASS_LIMIT_NS 2000000000ull /* any single front call: well under this */

static void *mem;
static size_t size;
static struct lutf_runtime *rt;
static struct lutf_region wv; /* the worker's view (what a Labor computes) */
static uint32_t fn_id;

static void setup(void)
{
	struct lutf_config c;

	lutf_config_init(&c);
	c.carts = 2;
	c.labors = 2;
	c.labors_max = 4;
	c.cart_capacity = 64;
	c.max_functions = 8;
	c.arena_bytes = 1u << 20;
	c.max_payload = 64u << 10;
	c.watch = LUTF_WATCH_POLL;
	c.poll_ns = 100000;
	c.timeout_ms = 0;
	size = lutf_region_size(&c);
	cr_assert_gt(size, 0);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(mem, MAP_FAILED);
	cr_assert_eq(lutf_region_format(mem, size, &c, LUTF_REGION_SHARED), 0);
	cr_assert_eq(lutf_region_open(&wv, mem, size), 0);
	/* The Supervisor's passes run on this thread (lutf_sup_pass): the
	 * scribbling below never races a reader it does not mean to. */
	cr_assert_eq(lutf_front_attach_bare(mem, size, &rt), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "f", NULL, &fn_id), 0);
}

/* Nothing to undo: Criterion runs each test in its own process, and a
 * destroy would wait for a scribbled region to drain. */
static void teardown(void)
{
}

TestSuite(front_hostile, .init = setup, .fini = teardown, .timeout = 60);

static uint64_t faults(unsigned check)
{
	uint64_t c[LUTF_FAULT__COUNT];

	lutf_runtime_faults(rt, c);
	return c[check];
}

static int submit(uint64_t user_data, size_t len)
{
	static char buf[4096];
	struct lutf_request req = {.input = buf, .input_len = len};

	memset(buf, 'x', sizeof(buf));
	return lutf_runtime_submit(rt, fn_id, &req, user_data);
}

/* Play a Labor: take the next Brick off any Cart. */
static struct lutf_brick *worker_take(void)
{
	for (uint32_t c = 0; c < wv.cfg.carts; c++) {
		uint32_t idx = lutf_ring_pop(&wv, &wv.cart_q[c]);

		if (idx != LUTF_NONE)
			return &wv.bricks[idx];
	}
	return NULL;
}

/* Play a Labor finishing b with status and out (NULL: no output). */
static void worker_finish(struct lutf_brick *b, uint32_t status, const char *out)
{
	if (out) {
		uint64_t off = lutf_arena_alloc(&wv, strlen(out));

		cr_assert_neq(off, 0);
		memcpy(lutf_region_at(&wv, off), out, strlen(out));
		b->out_off = off;
		b->out_len = (uint32_t)strlen(out);
	}
	cr_assert(lutf_brick_finish(&wv, b, LUTF_BRICK_QUEUED, status, 0));
}

static uint64_t now(void)
{
	return lutf_now_ns();
}

/* A few Supervisor passes over the region, the last with every deadline
 * passed. Each bounded in time. */
static void let_supervisor_run(void)
{
	for (int i = 0; i < 3; i++) {
		uint64_t t0 = now();

		lutf_sup_pass(rt, t0 + (i == 2 ? 100000000000ull : 0));
		cr_assert_lt(now() - t0, PASS_LIMIT_NS, "a Supervisor pass took too long");
	}
}

/* Every reader of the front, once, each bounded in time. */
static void drive_front(void)
{
	struct lutf_completion cs[16];
	struct lutf_runtime_stats st;
	uint64_t t0;
	int n;

	for (int i = 0; i < 8; i++) {
		t0 = now();
		(void)submit((uint64_t)i, i & 1 ? 2000 : 10);
		cr_assert_lt(now() - t0, PASS_LIMIT_NS, "submit took too long");
	}
	t0 = now();
	n = lutf_runtime_reap(rt, cs, 16, 0);
	cr_assert_lt(now() - t0, PASS_LIMIT_NS, "reap took too long");
	for (int i = 0; i < n; i++)
		lutf_result_release(&cs[i].result);
	let_supervisor_run();
	t0 = now();
	cr_assert_geq(lutf_runtime_worker_lost(rt, SIGKILL), 0);
	cr_assert_lt(now() - t0, PASS_LIMIT_NS, "crash repair took too long");
	(void)lutf_runtime_overdue(rt, 0);
	cr_assert_eq(lutf_runtime_stats(rt, &st), 0);
	cr_assert_leq(st.carts, 256);
	let_supervisor_run();
}

Test(front_hostile, config_words_are_never_read_again)
{
	struct lutf_region_hdr *h = mem;

	h->cfg.carts = 0; /* was a SIGFPE in lutf_cart_enqueue */
	h->cfg.bricks = 0xffffffffu;
	h->cfg.labors_max = 0xffffffffu;
	h->cfg.max_functions = 0;
	h->cfg.hold_max = 0xffffffffu;
	h->off_bricks = 0x7fffffffffffull;
	h->n_classes = 0xffffffffu;
	drive_front();
	cr_assert_eq(submit(1, 10), 0, "the front still uses its own layout");
	cr_assert_not_null(worker_take());
}

Test(front_hostile, ring_masks_and_cells_are_private)
{
	struct lutf_region_hdr *h = mem;

	h->cq.mask = 0xffffffffu;
	h->cq.cells_off = 0x7ffffffff000ull;
	h->held.mask = 0xffffffffu;
	h->held.cells_off = 1;
	for (uint32_t c = 0; c < wv.cfg.carts; c++) {
		wv.carts[c].ring.mask = 0xffffffffu;
		wv.carts[c].ring.cells_off = 0xdeadbeefull << 20;
	}
	drive_front();
	cr_assert_eq(submit(1, 10), 0);
	cr_assert_not_null(worker_take(), "the Brick went where the front's view says");
}

Test(front_hostile, class_table_cannot_redirect_input)
{
	struct lutf_region_hdr *h = mem;
	struct lutf_brick *b;
	uint32_t k = 0;

	while (wv.cls[k].size < 1000)
		k++;
	for (uint32_t i = 0; i < LUTF_ARENA_CLASSES; i++) {
		h->classes[i].off = 0; /* the header itself: client bytes over it */
		h->classes[i].size = 0xffffffffu;
		h->classes[i].count = 0xffffffffu;
		h->classes[i].links_off = 0x7fffffffffffull;
	}
	cr_assert_eq(submit(7, 1000), 0);
	cr_assert_eq(h->magic, LUTF_REGION_MAGIC, "input was copied over the header");
	b = worker_take();
	cr_assert_not_null(b);
	cr_assert_eq(b->in_off, wv.cls[k].off, "input went outside the private class table");
	cr_assert_eq(((uint8_t *)mem)[wv.cls[k].off], 'x');
	drive_front();
}

Test(front_hostile, free_stack_heads_are_checked)
{
	struct lutf_region_hdr *h = mem;

	h->pool_head = 0x0000000500ffff00ull; /* an index far past the Bricks */
	for (uint32_t i = 0; i < LUTF_ARENA_CLASSES; i++)
		h->classes[i].head = 0x7fffff00ull;
	cr_assert_eq(submit(1, 2000), 0, "bump allocation still serves");
	cr_assert_geq(faults(LUTF_FAULT_FREE_STACK), 2, "both heads counted");
	drive_front();
}

Test(front_hostile, completion_ring_entries_are_bound_to_awaited_bricks)
{
	struct lutf_completion cs[8];
	struct lutf_brick *b;
	int n;

	/* Forged: out of range, NONE (no crash repair happened), a free Brick. */
	cr_assert_eq(lutf_ring_push(&wv, &wv.cq, 0x00ffffffu), 0);
	cr_assert_eq(lutf_ring_push(&wv, &wv.cq, LUTF_NONE), 0);
	cr_assert_eq(lutf_ring_push(&wv, &wv.cq, 3), 0);
	n = lutf_runtime_reap(rt, cs, 8, 0);
	cr_assert_eq(n, 0, "a forged completion was delivered");
	cr_assert_eq(faults(LUTF_FAULT_CQ_INDEX), 2);
	cr_assert_eq(faults(LUTF_FAULT_CQ_STRAY), 1);

	/* A real one, then the same index again (a replay). */
	cr_assert_eq(submit(42, 10), 0);
	b = worker_take();
	cr_assert_not_null(b);
	worker_finish(b, LUTF_STATUS_OK, "hello");
	cr_assert_eq(lutf_ring_push(&wv, &wv.cq, lutf_brick_index(&wv, b)), 0);
	n = lutf_runtime_reap(rt, cs, 8, 0);
	cr_assert_eq(n, 1, "the real completion and only it");
	cr_assert_eq(cs[0].user_data, 42);
	cr_assert_eq(cs[0].result.status, LUTF_STATUS_OK);
	cr_assert_eq(cs[0].result.output_len, 5);
	lutf_result_release(&cs[0].result);
	cr_assert_eq(faults(LUTF_FAULT_CQ_STRAY), 2, "the replay is stray");
}

Test(front_hostile, forged_generation_is_answered_as_a_fault)
{
	struct lutf_completion cs[4];
	struct lutf_brick *b;

	cr_assert_eq(submit(9, 10), 0);
	b = worker_take();
	cr_assert_not_null(b);
	b->request_id ^= 0x5555;
	worker_finish(b, LUTF_STATUS_OK, "x");
	cr_assert_eq(lutf_runtime_reap(rt, cs, 4, 0), 1);
	cr_assert_eq(cs[0].user_data, 9);
	cr_assert_eq(cs[0].result.status, LUTF_STATUS_CRASHED);
	cr_assert_str_eq(cs[0].result.error, "crashed (region fault: completion generation)");
	cr_assert_eq(faults(LUTF_FAULT_CQ_GENERATION), 1);
}

Test(front_hostile, result_fields_are_bounded)
{
	static const struct {
		uint64_t off_delta; /* added to a valid out_off (~0: absolute 8) */
		uint32_t len, ct, status;
	} bad[] = {
	    {0, 1u << 30, 0, LUTF_STATUS_OK},		       /* longer than its block */
	    {~0ull, 4, 0, LUTF_STATUS_OK},		       /* not a block */
	    {0, 4, LUTF_CONTENT_TYPE_MAX + 1, LUTF_STATUS_OK}, /* content type too long */
	    {0, 4, 0, LUTF_STATUS__COUNT + 7},		       /* no such status */
	    {0, 4, 3, LUTF_STATUS_OK},			       /* "a\r\n" content type */
	};
	struct lutf_completion cs[4];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lutf_brick *b;

		cr_assert_eq(submit(100 + i, 10), 0);
		b = worker_take();
		cr_assert_not_null(b);
		worker_finish(b, bad[i].status, "a\r\nbcdefgh");
		b->out_off = bad[i].off_delta == ~0ull ? 8 : b->out_off + bad[i].off_delta;
		b->out_len = bad[i].len;
		b->out_ct = bad[i].ct;
		cr_assert_eq(lutf_runtime_reap(rt, cs, 4, 0), 1);
		cr_assert_eq(cs[0].user_data, 100 + i);
		cr_assert_eq(cs[0].result.status, LUTF_STATUS_CRASHED, "case %zu accepted", i);
		cr_assert_null(cs[0].result.output);
		lutf_result_release(&cs[0].result);
	}
	cr_assert_eq(faults(LUTF_FAULT_RESULT), sizeof(bad) / sizeof(bad[0]));
}

/* The double-read case: out_off/out_len flip between a valid result and an
 * out-of-bounds one while the front reads them. ASan would see any read of
 * the second shape. */
static uint32_t flip_stop;

static void *flipper(void *arg)
{
	struct lutf_brick *b = arg;
	uint64_t good_off = b->out_off;

	while (!__atomic_load_n(&flip_stop, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&b->out_len, 1u << 30, __ATOMIC_RELAXED);
		__atomic_store_n(&b->out_off, 8, __ATOMIC_RELAXED);
		__atomic_store_n(&b->out_len, 3, __ATOMIC_RELAXED);
		__atomic_store_n(&b->out_off, good_off, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(front_hostile, fields_changed_while_read_are_read_once)
{
	struct lutf_completion cs[2];
	unsigned ok = 0, crashed = 0;

	for (int i = 0; i < 200; i++) {
		struct lutf_brick *b;
		pthread_t th;

		cr_assert_eq(submit((uint64_t)i, 10), 0);
		b = worker_take();
		cr_assert_not_null(b);
		worker_finish(b, LUTF_STATUS_OK, "abc");
		__atomic_store_n(&flip_stop, 0, __ATOMIC_RELEASE);
		cr_assert_eq(pthread_create(&th, NULL, flipper, b), 0);
		cr_assert_eq(lutf_runtime_reap(rt, cs, 2, 0), 1);
		__atomic_store_n(&flip_stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
		if (cs[0].result.status == LUTF_STATUS_OK) {
			cr_assert_leq(cs[0].result.output_len, 3);
			ok++;
		} else {
			cr_assert_eq(cs[0].result.status, LUTF_STATUS_CRASHED);
			crashed++;
		}
		lutf_result_release(&cs[0].result);
		/* The Labor's reference, so the pool does not run dry. */
		b->out_off = 0;
		lutf_brick_unref(&wv, b);
	}
	cr_assert_eq(ok + crashed, 200);
}

/* A completion ring refilled in a loop: every reap pass stays bounded. */
static void *flooder(void *arg)
{
	uint32_t v = 0;

	(void)arg;
	while (!__atomic_load_n(&flip_stop, __ATOMIC_ACQUIRE))
		(void)lutf_ring_push(&wv, &wv.cq, (v++ % 3) ? 0x00ffff00u : LUTF_NONE);
	return NULL;
}

Test(front_hostile, a_flooded_completion_ring_keeps_passes_bounded)
{
	struct lutf_completion cs[16];
	uint64_t t_end = now() + 300000000ull;
	pthread_t th;
	unsigned passes = 0;

	__atomic_store_n(&flip_stop, 0, __ATOMIC_RELEASE);
	cr_assert_eq(pthread_create(&th, NULL, flooder, NULL), 0);
	while (now() < t_end) {
		uint64_t t0 = now();

		cr_assert_eq(lutf_runtime_reap(rt, cs, 16, 0), 0);
		cr_assert_lt(now() - t0, PASS_LIMIT_NS, "an unbounded reap pass");
		passes++;
	}
	__atomic_store_n(&flip_stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	cr_assert_gt(passes, 1);
	cr_assert_gt(faults(LUTF_FAULT_CQ_INDEX), 0);
}

Test(front_hostile, ring_counters_out_of_order)
{
	struct lutf_region_hdr *h = mem;

	h->cq.enq = 5;
	h->cq.deq = 0xffffffffffff0000ull;
	h->held.enq = 0xffffffffffffffffull;
	h->held.deq = 0;
	for (uint32_t c = 0; c < wv.cfg.carts; c++) {
		wv.carts[c].ring.enq = 1ull << 63;
		wv.carts[c].ring.deq = 7;
	}
	drive_front();
}

Test(front_hostile, held_ring_entries_are_checked)
{
	struct lutf_brick *b;

	cr_assert_eq(lutf_ring_push(&wv, &wv.held, 0x00ffffffu), 0); /* no Brick */
	cr_assert_eq(lutf_ring_push(&wv, &wv.held, 5), 0);	     /* a free Brick */
	cr_assert_eq(submit(1, 10), 0);
	b = worker_take();
	cr_assert_not_null(b);
	b->fn = 0xfffff; /* a queued Brick of no function */
	cr_assert_eq(lutf_ring_push(&wv, &wv.held, lutf_brick_index(&wv, b)), 0);
	/* resume drains the held ring under the lock, right here */
	cr_assert_eq(lutf_runtime_pause(rt, fn_id), 0);
	cr_assert_eq(lutf_runtime_resume(rt, fn_id), 0);
	cr_assert_eq(faults(LUTF_FAULT_HELD), 3);
}

Test(front_hostile, labor_and_cart_words_are_checked)
{
	struct lutf_region_hdr *h = mem;
	struct lutf_cart *cart = &wv.carts[0];

	/* Labor 0 claims to run Brick 2^31 on Cart 999; Labor 1 names no Brick. */
	wv.labors[0].state = LUTF_LABOR_RUNNING;
	wv.labors[0].brick = 0x80000000u;
	wv.labors[0].cart = 999;
	wv.labors[1].state = LUTF_LABOR_RUNNING;
	wv.labors[1].brick = 0xfffffffeu;
	h->labor_req = 0xffffffffu;
	/* A cell claimed by a dead consumer right below deq, naming no Brick. */
	wv.cart_q[0].cells[4].seq = 5 - 4;
	wv.cart_q[0].cells[4].val = 0x00abcdefu;
	cart->ring.deq = 5;
	cart->ring.enq = 5;
	cart->owner = 0xffffffffu;
	let_supervisor_run();
	cr_assert_geq(faults(LUTF_FAULT_LABOR), 1, "the Supervisor's pass");
	cr_assert_geq(lutf_runtime_worker_lost(rt, SIGKILL), 0);
	cr_assert_geq(faults(LUTF_FAULT_LABOR), 2, "crash repair");
	cr_assert_geq(faults(LUTF_FAULT_CART_CELL), 1);
}

Test(front_hostile, brick_fields_do_not_reach_outside)
{
	struct lutf_brick *b;

	cr_assert_eq(submit(1, 10), 0);
	b = worker_take();
	cr_assert_not_null(b);
	/* Offsets outside the arena, refs about to hit zero: freeing them must
	 * not touch anything the private class table does not name. */
	b->in_off = 0x7fffffff0000ull;
	b->out_off = 3;
	b->refs = 1;
	b->state = 77;
	lutf_brick_unref(&wv, b);
	drive_front();
}

Test(front_hostile, random_bytes_over_the_whole_region)
{
	uint64_t *w = mem;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	cr_assert_eq(submit(1, 10), 0);
	cr_assert_eq(submit(2, 3000), 0);
	for (size_t i = 0; i < size / sizeof(*w); i += 1 + (x >> 60)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
	drive_front();
	drive_front();
}

Test(front_hostile, random_bytes_over_the_header)
{
	uint8_t *p = mem;
	uint64_t x = 0x243f6a8885a308d3ull;

	for (size_t i = 0; i < 4096; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	drive_front();
}

/* A producer that died between claiming a cell and filling it: crash repair
 * fills the cell with NONE, and reading that filler is not a fault. */
Test(front_hostile, crash_repair_fillers_are_not_faults)
{
	struct lutf_completion cs[4];

	wv.cq.q->enq = 1;   /* claimed, never filled */
	wv.held.q->enq = 1; /* likewise */
	cr_assert_eq(lutf_runtime_worker_lost(rt, SIGKILL), 0);
	cr_assert_eq(lutf_runtime_reap(rt, cs, 4, 0), 0);
	cr_assert_eq(lutf_runtime_pause(rt, fn_id), 0);
	cr_assert_eq(lutf_runtime_resume(rt, fn_id), 0);
	cr_assert_eq(lutf_runtime_region_faults(rt), 0, "a filler was taken for a fault");
	/* A second NONE nobody filled is one. */
	cr_assert_eq(lutf_ring_push(&wv, &wv.cq, LUTF_NONE), 0);
	cr_assert_eq(lutf_runtime_reap(rt, cs, 4, 0), 0);
	cr_assert_eq(faults(LUTF_FAULT_CQ_INDEX), 1);
}

/* A sync call nobody answers (its Brick's words rewritten, or simply never
 * run) ends by the front's own deadline; a done word with no valid value is a
 * fault at once. */
static void *scribble_done(void *arg)
{
	struct lutf_brick *b = NULL;

	(void)arg;
	for (int i = 0; i < 1000 && !b; i++) {
		struct timespec ts = {0, 1000000};

		nanosleep(&ts, NULL);
		b = worker_take();
	}
	if (b)
		__atomic_store_n(&b->done, 7, __ATOMIC_RELEASE);
	return NULL;
}

Test(front_hostile, a_sync_call_never_waits_forever)
{
	struct lutf_request req = {.input = "x", .input_len = 1, .timeout_ns = 50000000};
	struct lutf_result res;
	pthread_t th;
	uint64_t t0 = now();

	cr_assert_eq(lutf_runtime_invoke(rt, fn_id, &req, &res), 0);
	cr_assert_eq(res.status, LUTF_STATUS_DEADLINE, "status %u (%s)", res.status, res.error);
	cr_assert_lt(now() - t0, 5000000000ull, "waited %llu ns", (unsigned long long)(now() - t0));

	cr_assert_not_null(worker_take(), "the first call's Brick is still queued");
	cr_assert_eq(pthread_create(&th, NULL, scribble_done, NULL), 0);
	req.timeout_ns = 0;
	cr_assert_eq(lutf_runtime_invoke(rt, fn_id, &req, &res), 0);
	pthread_join(th, NULL);
	cr_assert_eq(res.status, LUTF_STATUS_CRASHED, "status %u (%s)", res.status, res.error);
	cr_assert_eq(faults(LUTF_FAULT_RESULT), 1);
}

/* After a region fault the region is reset: formatted again from the front's
 * own config, the function table written back from the front's copies. */
Test(front_hostile, reset_gives_the_next_worker_a_clean_region)
{
	struct lutf_region again;
	struct lutf_completion cs[4];
	uint64_t *w = mem;
	uint64_t before;
	struct lutf_brick *b;

	cr_assert_eq(submit(1, 10), 0);
	cr_assert_eq(lutf_runtime_pause(rt, fn_id), 0);
	for (size_t i = 0; i < size / sizeof(*w); i += 7)
		w[i] = 0xa5a5a5a5a5a5a5a5ull;
	cr_assert_eq(lutf_runtime_reset(rt), 1, "the awaited call is dropped");
	cr_assert_eq(lutf_region_open(&again, mem, size), 0, "not a valid region again");
	cr_assert_str_eq(again.fns[fn_id].name, "f");
	cr_assert_eq(again.fns[fn_id].state, LUTF_FN_PAUSED);
	before = lutf_runtime_region_faults(rt);
	cr_assert_eq(lutf_runtime_resume(rt, fn_id), 0);
	cr_assert_eq(submit(2, 3000), 0);
	let_supervisor_run();
	b = worker_take();
	cr_assert_not_null(b);
	worker_finish(b, LUTF_STATUS_OK, "ok");
	cr_assert_eq(lutf_runtime_reap(rt, cs, 4, 0), 1);
	cr_assert_eq(cs[0].user_data, 2);
	cr_assert_eq(cs[0].result.status, LUTF_STATUS_OK);
	lutf_result_release(&cs[0].result);
	cr_assert_eq(lutf_runtime_region_faults(rt), before, "the clean region faulted");
}

/* The audit over every Brick: one call per slice, until one counts a fault. */
static unsigned audit_all(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < LUTF_AUDIT_SLICES && !n; i++)
		n = lutf_runtime_audit(rt);
	return n;
}

/* The audit finds what no call trips over: rewritten layout words, a Brick
 * state or function no correct writer produces; a clean region passes. */
Test(front_hostile, audit_finds_layout_and_brick_words)
{
	struct lutf_region_hdr *h = mem;

	cr_assert_eq(submit(1, 10), 0);
	cr_assert_eq(audit_all(), 0, "a clean region failed the audit");
	h->cfg.carts = 0;
	cr_assert_eq(audit_all(), 1);
	cr_assert_eq(faults(LUTF_FAULT_LAYOUT), 1);
	h->cfg.carts = wv.cfg.carts;
	wv.carts[1].ring.mask = 3;
	cr_assert_eq(audit_all(), 1, "a Cart's mask");
	wv.carts[1].ring.mask = (uint32_t)wv.cart_q[1].mask;
	cr_assert_eq(audit_all(), 0);
	wv.bricks[5].state = 9;
	cr_assert_eq(audit_all(), 1);
	wv.bricks[5].state = LUTF_BRICK_FREE;
	wv.bricks[6].fn = 4000;
	cr_assert_eq(audit_all(), 1);
	cr_assert_eq(faults(LUTF_FAULT_BRICK), 2);
}

/* Lost calls: valid-looking wrong values. An awaited Brick marked FREE past
 * its deadline (plus the audit's slack) is lost at once; one merely late
 * (still RUNNING) faults only after three scans in a row find late calls,
 * and not while completions wait in the ring. */
Test(front_hostile, audit_finds_lost_calls)
{
	struct lutf_brick *b;
	uint32_t idx;

	cr_assert_eq(submit(1, 10), 0);
	b = worker_take();
	cr_assert_not_null(b);
	idx = lutf_brick_index(&wv, b);
	b->state = LUTF_BRICK_FREE; /* the worker "forgets" it */
	rt->lost_scan_ns = 0;
	cr_assert_eq(lutf_runtime_audit(rt), 0, "no deadline: not lost");
	rt->bf[idx].deadline_ns = now() - 1000000000ull;
	rt->lost_scan_ns = 0;
	cr_assert_eq(lutf_runtime_audit(rt), 0, "1 s past the deadline: lutfd's own answers first");
	rt->bf[idx].deadline_ns = now() - 3000000000ull;
	cr_assert_eq(lutf_runtime_audit(rt), 0, "at most one scan a second");
	rt->lost_scan_ns = 0;
	cr_assert_eq(lutf_runtime_audit(rt), 1);
	cr_assert_eq(faults(LUTF_FAULT_LOST), 1);
	cr_assert_str_eq(lutf_fault_check_name(LUTF_FAULT_LOST), "lost call");

	/* Late but not freed: three strikes, reset by a clean scan. */
	b->state = LUTF_BRICK_RUNNING;
	for (int i = 0; i < 2; i++) {
		rt->lost_scan_ns = 0;
		cr_assert_eq(lutf_runtime_audit(rt), 0, "strike %d faulted", i + 1);
	}
	rt->bf[idx].deadline_ns = now() + 10000000000ull;
	rt->lost_scan_ns = 0;
	cr_assert_eq(lutf_runtime_audit(rt), 0);
	rt->bf[idx].deadline_ns = now() - 3000000000ull;
	for (int i = 0; i < 2; i++) {
		rt->lost_scan_ns = 0;
		cr_assert_eq(lutf_runtime_audit(rt), 0, "the strikes were not reset");
	}
	rt->lost_scan_ns = 0;
	cr_assert_eq(lutf_runtime_audit(rt), 1, "three late scans in a row");
	cr_assert_eq(faults(LUTF_FAULT_LOST), 2);

	/* A completion waiting in the ring: a reaper is behind, nothing counted. */
	b->state = LUTF_BRICK_RUNNING;
	cr_assert(lutf_brick_finish(&wv, b, LUTF_BRICK_RUNNING, LUTF_STATUS_OK, 0));
	b->state = LUTF_BRICK_RUNNING; /* looks late, but its completion is queued */
	for (int i = 0; i < 4; i++) {
		rt->lost_scan_ns = 0;
		cr_assert_eq(lutf_runtime_audit(rt), 0);
	}
	cr_assert_eq(faults(LUTF_FAULT_LOST), 2);
}
