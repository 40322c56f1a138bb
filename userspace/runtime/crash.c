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
#include <string.h>
#include <sys/mman.h>

#include "front.h"

/* Publish LUTF_NONE into cells of v that were claimed and never filled.
 * Returns how many (at most the ring's private capacity). */
static uint32_t unwedge(struct lutf_runtime *rt, const struct lutf_ringv *v)
{
	uint64_t mask = v->mask, deq = ld_acquire(&v->q->deq), enq = ld_acquire(&v->q->enq);
	uint32_t n = 0;

	if (enq < deq || enq - deq > mask + 1) {
		lutf_front_fault(rt, LUTF_FAULT_BUDGET); /* nonsense counters */
		return 0;
	}
	for (uint64_t pos = deq; pos < enq; pos++) {
		struct lutf_cell *c = &v->cells[pos & mask];

		if (lutf_cell_filled(c, pos, mask))
			continue;
		st_relaxed(&c->val, LUTF_NONE);
		st_release(&c->seq, pos + 1 - (pos & mask));
		n++;
	}
	return n;
}

/* v holds idx between deq and enq: at most mask + 1 cells are read. */
static bool ring_holds(const struct lutf_ringv *v, uint32_t idx)
{
	uint64_t mask = v->mask, deq = ld_acquire(&v->q->deq), enq = ld_acquire(&v->q->enq);

	for (uint64_t pos = deq; pos < enq && pos - deq <= mask; pos++)
		if (lutf_cell_filled(&v->cells[pos & mask], pos, mask) &&
		    ld_relaxed(&v->cells[pos & mask].val) == idx)
			return true;
	return false;
}

/* Cells of a Cart claimed by a dead consumer (at most one per Labor, right
 * below deq): release them and collect their values. */
static uint32_t reclaim_claimed(struct lutf_region *r, const struct lutf_ringv *v, uint32_t *out,
				uint32_t n, uint32_t max)
{
	uint64_t mask = v->mask, deq = ld_acquire(&v->q->deq);
	uint64_t back = r->cfg.labors_max < mask + 1 ? r->cfg.labors_max : mask + 1;

	for (uint64_t pos = deq > back ? deq - back : 0; pos < deq; pos++) {
		struct lutf_cell *c = &v->cells[pos & mask];

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
	/* Private bounds: at most 4096 * 256 entries (config_check). */
	max_claimed = r->cfg.labors_max * r->cfg.carts;
	claimed = calloc(max_claimed, sizeof(*claimed));
	if (!claimed)
		return -ENOMEM;
	pthread_mutex_lock(&rt->lock);
	pthread_mutex_lock(&rt->sup_lock);
	pthread_mutex_lock(&rt->reap_lock);

	rt->cq_fillers += unwedge(rt, &r->cq);
	rt->held_fillers += unwedge(rt, &r->held);
	for (uint32_t c = 0; c < r->cfg.carts; c++) {
		n_claimed = reclaim_claimed(r, &r->cart_q[c], claimed, n_claimed, max_claimed);
		st_relaxed(&r->carts[c].owner, 0);
	}

	for (uint32_t i = 0; i < r->cfg.labors_max; i++) {
		struct lutf_labor *l = &r->labors[i];
		uint32_t idx = ld_acquire(&l->brick);
		struct lutf_brick *b;

		l->state = LUTF_LABOR_OFF;
		l->tid = 0;
		l->cart = LUTF_NONE;
		l->brick = LUTF_NONE;
		l->cur_fn = LUTF_NONE;
		l->sleeping = 0;
		if (idx == LUTF_NONE)
			continue;
		b = lutf_front_brick(rt, idx, LUTF_FAULT_LABOR);
		if (!b)
			continue;
		for (uint32_t k = 0; k < n_claimed; k++)
			if (claimed[k] == idx)
				claimed[k] = LUTF_NONE; /* handled here, from the Labor's side */
		switch (ld_acquire(&b->state)) {
		case LUTF_BRICK_QUEUED:
			if (!ring_holds(&r->held, idx))
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
			bool posted = ld_relaxed(&b->cq) == LUTF_CQ_ASYNC
					  ? ld_acquire(&b->refs) == 1 || ring_holds(&r->cq, idx)
					  : ld_acquire(&b->done) == 1;

			if (!posted) {
				st_relaxed(&b->status, LUTF_STATUS_CRASHED);
				st_relaxed(&b->detail, (uint32_t)sig);
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
		struct lutf_brick *b;

		if (claimed[k] == LUTF_NONE)
			continue;
		b = lutf_front_brick(rt, claimed[k], LUTF_FAULT_CART_CELL);
		if (!b)
			continue;
		if (ld_acquire(&b->state) == LUTF_BRICK_QUEUED)
			requeue(rt, b);
		else
			lutf_brick_unref(r, b);
	}
	st_release(&h->labor_req, r->cfg.labors);
	st_release(&h->labors_up, 0);
	__atomic_add_fetch(&rt->n_crashed, (uint64_t)failed, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < r->cfg.labors_max; i++)
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

int lutf_runtime_reset(struct lutf_runtime *rt)
{
	struct lutf_region *r;
	uint32_t flags;
	int dropped = 0;

	if (!rt || rt->labors)
		return -EINVAL; /* in-process Labors still run on it */
	r = &rt->r;
	flags = r->shared ? LUTF_REGION_SHARED : 0;
	pthread_mutex_lock(&rt->lock);
	pthread_mutex_lock(&rt->sup_lock);
	pthread_mutex_lock(&rt->reap_lock);
	for (uint32_t i = 0; i < r->cfg.bricks; i++) {
		dropped += lutf_front_awaited(rt, i);
		st_relaxed(&rt->bf[i].async, 0);
		st_relaxed(&rt->bf[i].deadline_ns, 0);
	}
	/* Zero: punch the pages out (a memfd's backing, or anonymous memory),
	 * so the reset costs no memory; write zeros only if that fails. */
	if (madvise(r->base, r->size, r->shared ? MADV_REMOVE : MADV_DONTNEED))
		memset(r->base, 0, r->size);
	/* The front's own config: it passed config_check at open. */
	if (lutf_region_format(r->base, r->size, &r->cfg, flags))
		abort(); /* cannot happen: the same config and size formatted it before */
	/* Reapers armed on the completion bell stay armed: the count they added
	 * is put back (seq_cst, as their own increment), so the next worker's
	 * completions ring them. */
	st_seqcst(&r->hdr->cq_sleeping, ld_relaxed(&rt->cq_armed));
	for (uint32_t s = 0; s < r->cfg.max_functions; s++) {
		struct lutf_fn_local *f = &rt->fns[s];
		uint32_t st = ld_relaxed(&f->state);

		__atomic_sub_fetch(&rt->n_held, f->n_held, __ATOMIC_RELAXED);
		f->n_held = 0;
		f->releasing = false;
		if (st == LUTF_FN_RELEASING)
			st = LUTF_FN_ACTIVE;
		if (st == LUTF_FN_DELETED) {
			/* No Labor is inside it: free the slot now. */
			uint32_t gen = f->gen + 1;

			if (f->app)
				lutf_app_unref(rt, f->app);
			for (char **p = f->config; p && *p; p++)
				free(*p);
			free(f->config);
			free(f->held);
			lutf_fn_local_clear(f);
			st_relaxed(&f->gen, gen);
			st = LUTF_FN_FREE;
		}
		memcpy(r->fns[s].name, f->name, sizeof(f->name));
		r->fns[s].timeout_ms = f->timeout_ms;
		st_relaxed(&r->fns[s].gen, f->gen);
		lutf_fn_set_state(rt, s, st);
	}
	rt->cq_fillers = 0;
	rt->held_fillers = 0;
	rt->lost_strikes = 0;
	rt->audit_pos = 0;
	for (uint32_t i = 0; i < r->cfg.labors_max; i++) {
		rt->seen_since[i] = 0;
		rt->seen_started[i] = 0;
		rt->free_since[i] = 0;
	}
	for (uint32_t c = 0; c < r->cfg.carts; c++) {
		rt->scan[c].pos = 0;
		rt->scan[c].min_dl = UINT64_MAX;
		rt->scan[c].last_full = 0;
	}
	pthread_mutex_unlock(&rt->reap_lock);
	pthread_mutex_unlock(&rt->sup_lock);
	pthread_mutex_unlock(&rt->lock);
	lutf_sup_wake(rt->sup);
	return dropped;
}

uint32_t lutf_runtime_overdue(struct lutf_runtime *rt, uint64_t grace_ns)
{
	struct lutf_region *r;
	uint64_t now = lutf_now_ns();
	uint32_t n = 0, labors, bricks;

	if (!rt)
		return 0;
	r = &rt->r;
	labors = r->cfg.labors_max;
	bricks = r->cfg.bricks;
	/* Relaxed reads of words the worker writes: a wrong answer only recycles
	 * that worker (or not yet), and indices are bounded before use. The
	 * deadline is the front's own copy. */
	for (uint32_t i = 0; i < labors; i++) {
		struct lutf_labor *l = &r->labors[i];
		uint32_t idx = ld_relaxed(&l->brick);
		uint64_t dl;

		if (ld_relaxed(&l->state) != LUTF_LABOR_RUNNING || idx >= bricks)
			continue;
		dl = ld_relaxed(&rt->bf[idx].deadline_ns);
		if (dl && now >= dl && now - dl >= grace_ns)
			n++;
	}
	return n;
}
