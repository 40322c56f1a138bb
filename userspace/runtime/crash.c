/* SPDX-License-Identifier: MIT */
/*
 * After a worker process dies: settle every Brick its Labors held and make
 * the region ready for the next worker. Runs on the front side with the
 * Supervisor and every other front producer excluded (sup_lock, rt->lock), so
 * the only writers that may have left things half done are the dead Labors.
 *
 * What a dead Labor can leave behind, and what is done with it:
 *  - a Cart cell it claimed but did not release: the value is re-queued and
 *    the cell released (the Brick had not started);
 *  - labor->brick naming a Brick (it holds a reference): QUEUED = taken, not
 *    started: re-queued unless it sits in the held ring; RUNNING = started:
 *    fails CRASHED; DONE = finished: its completion is re-posted as CRASHED
 *    if it never reached the completion ring, and the reference dropped;
 *  - a completion or held-ring cell claimed but never published: filled
 *    with LUTF_NONE so the consumer skips it instead of stalling there.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* Publish LUTF_NONE into cells of q that were claimed and never filled. */
static void unwedge(struct lutf_region *r, struct lutf_ring *q)
{
	struct lutf_cell *cells = lutf_region_at(r, q->cells_off);
	uint64_t mask = q->mask, deq = ld_acquire(&q->deq), enq = ld_acquire(&q->enq);

	if (enq - deq > mask + 1)
		return; /* nonsense counters: leave them to the region check */
	for (uint64_t pos = deq; pos < enq; pos++) {
		struct lutf_cell *c = &cells[pos & mask];

		if (lutf_cell_filled(c, pos, mask))
			continue;
		st_relaxed(&c->val, LUTF_NONE);
		st_release(&c->seq, pos + 1 - (pos & mask));
	}
}

static bool ring_holds(struct lutf_region *r, struct lutf_ring *q, uint32_t idx)
{
	struct lutf_cell *cells = lutf_region_at(r, q->cells_off);
	uint64_t mask = q->mask, deq = ld_acquire(&q->deq), enq = ld_acquire(&q->enq);

	for (uint64_t pos = deq; pos < enq && pos - deq <= mask; pos++)
		if (lutf_cell_filled(&cells[pos & mask], pos, mask) &&
		    ld_relaxed(&cells[pos & mask].val) == idx)
			return true;
	return false;
}

/* Cells of a Cart claimed by a dead consumer (at most one per Labor, right
 * below deq): release them and collect their values. */
static uint32_t reclaim_claimed(struct lutf_region *r, struct lutf_ring *q, uint32_t *out,
				uint32_t n, uint32_t max)
{
	struct lutf_cell *cells = lutf_region_at(r, q->cells_off);
	uint64_t mask = q->mask, deq = ld_acquire(&q->deq);
	uint64_t back = r->hdr->cfg.labors_max < mask + 1 ? r->hdr->cfg.labors_max : mask + 1;

	for (uint64_t pos = deq > back ? deq - back : 0; pos < deq; pos++) {
		struct lutf_cell *c = &cells[pos & mask];

		if (!lutf_cell_filled(c, pos, mask))
			continue;
		if (n < max)
			out[n++] = ld_relaxed(&c->val);
		st_release(&c->seq, pos + mask + 1 - (pos & mask));
	}
	return n;
}

static void requeue(struct lutf_runtime *rt, struct lutf_brick *b)
{
	struct lutf_region *r = &rt->r;

	if (lutf_cart_enqueue(r, lutf_brick_index(r, b)) >= 0)
		return;
	lutf_brick_finish(r, b, LUTF_BRICK_QUEUED, LUTF_STATUS_OVERLOADED, 0);
	lutf_brick_unref(r, b);
}

int lutf_runtime_worker_lost(struct lutf_runtime *rt, int sig)
{
	struct lutf_region *r;
	struct lutf_region_hdr *h;
	uint32_t *claimed, n_claimed = 0, max_claimed;
	int failed = 0;

	if (!rt || rt->labors)
		return -EINVAL; /* in-process Labors cannot die on their own */
	r = &rt->r;
	h = r->hdr;
	max_claimed = h->cfg.labors_max * h->cfg.carts;
	claimed = calloc(max_claimed, sizeof(*claimed));
	if (!claimed)
		return -ENOMEM;
	pthread_mutex_lock(&rt->lock);
	pthread_mutex_lock(&rt->sup_lock);
	pthread_mutex_lock(&rt->reap_lock);

	unwedge(r, &h->cq);
	unwedge(r, &h->held);
	for (uint32_t c = 0; c < h->cfg.carts; c++) {
		n_claimed = reclaim_claimed(r, &r->carts[c].ring, claimed, n_claimed, max_claimed);
		st_relaxed(&r->carts[c].owner, 0);
	}

	for (uint32_t i = 0; i < h->cfg.labors_max; i++) {
		struct lutf_labor *l = &r->labors[i];
		uint32_t idx = ld_acquire(&l->brick);
		struct lutf_brick *b;

		l->state = LUTF_LABOR_OFF;
		l->tid = 0;
		l->cart = LUTF_NONE;
		l->brick = LUTF_NONE;
		l->cur_fn = LUTF_NONE;
		l->sleeping = 0;
		if (idx >= h->cfg.bricks)
			continue;
		for (uint32_t k = 0; k < n_claimed; k++)
			if (claimed[k] == idx)
				claimed[k] = LUTF_NONE; /* handled here, from the Labor's side */
		b = &r->bricks[idx];
		switch (ld_acquire(&b->state)) {
		case LUTF_BRICK_QUEUED:
			if (!ring_holds(r, &h->held, idx))
				requeue(rt, b);
			break;
		case LUTF_BRICK_RUNNING:
			if (lutf_brick_finish(r, b, LUTF_BRICK_RUNNING, LUTF_STATUS_CRASHED,
					      (uint32_t)sig))
				failed++;
			lutf_brick_unref(r, b);
			break;
		case LUTF_BRICK_DONE: {
			/* Was the completion posted? Sync: the done word says so.
			 * Async (reapers excluded by reap_lock): it is either still
			 * in the completion ring, or reaped, and then the reaper's
			 * reference is gone and ours is the last. */
			bool posted = b->cq == LUTF_CQ_ASYNC
					  ? ld_acquire(&b->refs) == 1 || ring_holds(r, &h->cq, idx)
					  : ld_acquire(&b->done) == 1;

			if (!posted) {
				b->status = LUTF_STATUS_CRASHED;
				b->detail = (uint32_t)sig;
				lutf_brick_post(r, b);
				failed++;
			}
			lutf_brick_unref(r, b);
			break;
		}
		default:
			break; /* FREE: not a live reference; nothing to do */
		}
	}
	for (uint32_t k = 0; k < n_claimed; k++) {
		if (claimed[k] >= h->cfg.bricks)
			continue;
		if (ld_acquire(&r->bricks[claimed[k]].state) == LUTF_BRICK_QUEUED)
			requeue(rt, &r->bricks[claimed[k]]);
		else
			lutf_brick_unref(r, &r->bricks[claimed[k]]);
	}
	st_release(&h->labor_req, h->cfg.labors);
	st_release(&h->labors_up, 0);
	__atomic_add_fetch(&rt->n_crashed, (uint64_t)failed, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < h->cfg.labors_max; i++)
		rt->seen_since[i] = 0;

	pthread_mutex_unlock(&rt->reap_lock);
	pthread_mutex_unlock(&rt->sup_lock);
	pthread_mutex_unlock(&rt->lock);
	free(claimed);
	/* Carts have no owner now: the Supervisor binds them to the next
	 * worker's Labors as they appear, ticking while Bricks wait. */
	lutf_sup_wake(rt->sup);
	return failed;
}

uint32_t lutf_runtime_overdue(struct lutf_runtime *rt, uint64_t grace_ns)
{
	struct lutf_region *r;
	uint64_t now = lutf_now_ns();
	uint32_t n = 0, labors, bricks;

	if (!rt)
		return 0;
	r = &rt->r;
	labors = r->hdr->cfg.labors_max;
	bricks = r->hdr->cfg.bricks;
	/* Relaxed reads of words the worker writes: a wrong answer only recycles
	 * that worker (or not yet), and indices are bounded before use. */
	for (uint32_t i = 0; i < labors; i++) {
		struct lutf_labor *l = &r->labors[i];
		uint32_t idx = ld_relaxed(&l->brick);
		uint64_t dl;

		if (ld_relaxed(&l->state) != LUTF_LABOR_RUNNING || idx >= bricks)
			continue;
		dl = ld_relaxed(&r->bricks[idx].deadline_ns);
		if (dl && now >= dl && now - dl >= grace_ns)
			n++;
	}
	return n;
}
