/* SPDX-License-Identifier: MIT */
/*
 * The Supervisor: one thread on the front side that binds Carts to Labors,
 * moves a Cart off a Labor stuck in one Brick (the polling mode: a Labor
 * whose 'started' counter has not moved for a grace period), answers
 * deadlines, and keeps the Bricks of paused functions. It acts on the region
 * only through its words (owner CAS, Brick state CAS, futex wakes), never by
 * calling into the Labors' process, so it works across a shared region.
 * It ticks every poll_ns while Bricks are in flight and sleeps otherwise.
 *
 * In the BPF mode the same decision point is fed by labor_watch instead: a
 * Labor inside a Brick whose probe slot says BLOCKED for longer than the grace
 * loses its Cart; a preempted (runnable) Labor keeps it. The Supervisor then
 * sleeps on the probe's ring buffer, which wakes it only when a Labor blocks.
 * A Supervisor made with bpf_later polls until lutf_supervisor_load_watch has
 * loaded labor_watch beside it, then switches to the BPF mode once.
 */
#include <errno.h>
#include <sched.h>
#include <poll.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "labor_watch.h"

#define HELD_TICK_NS 10000000ull /* tick while only held Bricks wait (deadlines) */
/* BPF mode: while calls come and go the Supervisor sleeps on the probe's ring
 * buffer, waking for blocks, nudges and this tick (the deadline resolution);
 * after IDLE_AFTER_NS without any call it sleeps until the next submit. */
#define BPF_TICK_NS 10000000ull
#define IDLE_AFTER_NS 100000000ull
#define IDLE_MAX_NS 1000000000ull /* a quiet Supervisor still looks once a second */

/* The mode and probe in force: lutf_supervisor_load_watch may switch them
 * once, from polling to BPF (internal.h says under which locks). Acquire
 * pairs with its release stores. */
static enum lutf_watch_mode sup_mode(const struct lutf_supervisor *sup)
{
	return __atomic_load_n(&sup->mode, __ATOMIC_ACQUIRE);
}

static struct lutf_lw *sup_lw(const struct lutf_supervisor *sup)
{
	return __atomic_load_n(&sup->lw, __ATOMIC_ACQUIRE);
}

/* Unconditional wake of Labor i: used for rare events (bind, migrate, stop). */
static void wake_labor(struct lutf_region *r, uint32_t i)
{
	__atomic_add_fetch(&r->labors[i].bell, 1, __ATOMIC_RELEASE);
	lutf_futex_wake(&r->labors[i].bell, 1, r->shared);
}

/* A parked Labor without a Cart, or LUTF_NONE. Labors at or above labor_req
 * are retiring and never chosen. */
static uint32_t find_free_labor(struct lutf_region *r)
{
	uint32_t n = ld_relaxed(&r->hdr->labor_req);

	if (n > r->cfg.labors_max)
		n = r->cfg.labors_max;
	for (uint32_t i = 0; i < n; i++) {
		struct lutf_labor *l = &r->labors[i];

		/* Acquire pairs with the Labor's release store of FREE after it
		 * cleared its cart word. */
		if (ld_acquire(&l->state) == LUTF_LABOR_FREE && ld_relaxed(&l->cart) == LUTF_NONE &&
		    ld_relaxed(&l->tid) != 0)
			return i;
	}
	return LUTF_NONE;
}

/*
 * BPF mode hand-off: the probe's wake-up brought the Supervisor to the vCPU the
 * blocked Labor just left. Waking a parked Labor onto the other vCPU costs a
 * halted-vCPU wake-up (20-40 us on a VM); pinning it here first keeps the
 * chain on the vCPU that is about to idle. The Labor unpins itself once it
 * runs (labor.c), so the pin lasts one wake-up.
 */
static void pin_here(struct lutf_runtime *rt, uint32_t to)
{
	int cpu = sched_getcpu();
	int32_t tid;
	cpu_set_t set;

	if (sup_mode(rt->sup) != LUTF_WATCH_BPF || to >= rt->r.cfg.labors_max || cpu < 0)
		return;
	/* Only a tid lw_sync registered (checked then), and checked again now:
	 * the thread may have exited and its number gone to another process. */
	tid = rt->lw_slot[to] == LUTF_NONE ? 0 : rt->lw_tid[to];
	if (tid <= 0 || !lutf_labor_tid_live(rt, to, tid))
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(tid, sizeof(set), &set) == 0) {
		st_release(&rt->r.labors[to].pinned, 1);
		rt->sup->yield_after = true;
	}
}

/* Give Cart c (owned by Labor 'from' + 1, or unowned when from == NONE) to
 * Labor 'to'. stuck_ns: 0 for a plain bind (a new runtime, an unowned Cart, a
 * retiring Labor's Cart), else how long 'from' has been stuck in its Brick; the
 * re-binding decision itself is lutf_cart_rebind's (cart.c), the one that
 * spinning Labors use for the direct take too. Fails when a spinning Labor
 * took the Cart (or 'to') first. */
static bool bind_cart(struct lutf_runtime *rt, uint32_t c, uint32_t from, uint32_t to,
		      uint64_t stuck_ns)
{
	struct lutf_region *r = &rt->r;
	struct lutf_lw *lw = sup_lw(rt->sup);
	bool rebind = stuck_ns != 0;

	if (rebind ? !lutf_cart_rebind(r, c, from, to, stuck_ns) : !lutf_cart_claim(r, c, from, to))
		return false;
	if (lw) {
		/* The probe reports only Labors holding a Cart (an unregistered
		 * Labor's slot is LUTF_NONE: out of range, ignored). */
		if (from != LUTF_NONE)
			lutf_lw_set_cart(lw, rt->lw_slot[from], LW_NO_CART);
		lutf_lw_set_cart(lw, rt->lw_slot[to], c);
	}
	/* Counted before the wake, so a caller that sees the moved Cart's
	 * Bricks complete also sees the count. */
	if (rebind) {
		__atomic_add_fetch(&rt->n_rebinds, 1, __ATOMIC_RELAXED);
		pin_here(rt, to);
	}
	wake_labor(r, to);
	return true;
}

/* A Labor that took a Cart itself (the direct take, labor.c) did so without
 * us: make its slot's Cart, which filters the probe's reports, say what the
 * region's words say now. Both words are the worker's: the Cart index is
 * bounded here, and a wrong one costs only a missed or spurious report. */
static void lw_cart_sync(struct lutf_runtime *rt, uint32_t i, uint32_t slot)
{
	struct lutf_region *r = &rt->r;
	struct lutf_lw *lw = sup_lw(rt->sup);
	const struct labor_watch_slot *s = lutf_lw_slot(lw, slot);
	uint32_t c = ld_relaxed(&r->labors[i].cart);

	if (c >= r->cfg.carts || ld_relaxed(&r->carts[c].owner) != i + 1)
		c = LW_NO_CART;
	/* Relaxed: only this thread writes a slot's Cart. */
	if (s && __atomic_load_n(&s->cart, __ATOMIC_RELAXED) != c)
		lutf_lw_set_cart(lw, slot, c);
}

/* Keep labor_watch's registrations equal to the Labors running now: a new
 * tid (a Labor started, or restarted in a new worker) is registered, a
 * retired one dropped. Cheap reads; the map updates happen only on change.
 * Every word here is the worker's: the Labor count and Cart bound are the
 * front's private view, a tid is registered only once it is checked to be
 * a thread of the worker, with the worker's pid as its tgid, and a runtime
 * holds at most lw_per_rt slots of the table every tenant shares. */
static void lw_sync(struct lutf_runtime *rt, struct lutf_lw *lw)
{
	struct lutf_region *r = &rt->r;
	uint32_t req = ld_relaxed(&r->hdr->labor_req);
	uint32_t n = r->cfg.labors_max;
	/* Relaxed: lutfd's thread sets it; a stale value costs one pass. */
	uint32_t per = __atomic_load_n(&rt->lw_cap, __ATOMIC_RELAXED);
	uint32_t cap;

	if (!per)
		per = rt->sup->lw_per_rt;
	cap = per && per < n ? per : n;

	for (uint32_t i = 0; i < n; i++) {
		struct lutf_labor *l = &r->labors[i];
		/* Acquire pairs with the Labor's release store of tid. */
		int32_t tid = i < req ? ld_acquire(&l->tid) : 0, tgid;
		uint32_t c, slot = rt->lw_slot[i];
		struct lutf_lw_hints hints;
		uint64_t base;

		if (tid == rt->lw_tid[i]) {
			/* registered, or refused already: once per value */
			if (slot != LUTF_NONE)
				lw_cart_sync(rt, i, slot);
			continue;
		}
		/* Relaxed stores: submitters read lw_slot in the nudge (relaxed);
		 * a stale slot there costs at most one spurious or missed nudge. */
		st_relaxed(&rt->lw_slot[i], LUTF_NONE);
		if (rt->labors)
			lutf_labors_view_set(rt->labors, i, NULL); /* before the slot goes */
		if (slot != LUTF_NONE && lutf_lw_unregister(lw, slot) == 0)
			rt->lw_used--;
		lutf_labor_tid_drop(rt, i);
		rt->lw_tid[i] = 0;
		rt->lw_late[i] = 0;
		if (tid <= 0)
			continue;
		/* No worker declared yet (lutfd or a test declares it after the
		 * attach, racing the Labors' start): nothing to check the tid
		 * against. Not a refusal: lw_tid stays 0, so the next pass, after
		 * lutf_runtime_set_worker, checks it. */
		if (!rt->labors && !rt->worker_known)
			continue;
		if (!lutf_labor_tid_check(rt, i, tid, &tgid)) {
			rt->lw_tid[i] = tid;
			lutf_labor_tid_refused(rt, i, tid);
			continue;
		}
		if (rt->lw_used >= cap) {
			lutf_labor_tid_drop(rt, i);
			rt->lw_tid[i] = tid; /* unwatched until its tid changes */
			continue;
		}
		/* The Labor's state word, at its address in the Labors' process:
		 * the probe reports a block only while it reads RUNNING there (it
		 * reads only the switching task's own memory). The wake hints:
		 * Cart 0's ring words there (offsets and counts from our private
		 * layout; the base is the worker's word, so a lie delays only its
		 * own hand-offs), and in-process the spinner count (labor.c). */
		base = ld_acquire(&r->hdr->worker_base);
		hints = (struct lutf_lw_hints){.busy_value = LUTF_LABOR_RUNNING};
		if (base) {
			hints.busy_uaddr = base + (uint64_t)((uint8_t *)&l->state - r->base);
			hints.work_uaddr =
			    base + (uint64_t)((uint8_t *)&r->carts[0].ring.enq - r->base);
			hints.work_stride = (uint32_t)sizeof(r->carts[0]);
			hints.work_carts = r->cfg.carts;
			hints.work_deq_off = (uint32_t)offsetof(struct lutf_ring, deq) -
					     (uint32_t)offsetof(struct lutf_ring, enq);
		}
		if (rt->labors) {
			hints.spin_uaddr = (uint64_t)(uintptr_t)&rt->labors->spinning;
			/* Relaxed: read by a spinner that gives up (a stale -1
			 * leaves the wake to the tick); set before the view. */
			__atomic_store_n(&rt->labors->sup_bell, rt->sup->efd, __ATOMIC_RELAXED);
		} else if (rt->blk_state == 1 && base) {
			/* A worker with a read-only view takes Carts without
			 * writing the slot: the probe reads the Labor's own state
			 * and cart words (bounded by work_carts), and the worker's
			 * spinner word. Both are the worker's, read only in its own
			 * memory: a lie misfiles or delays only its own blocks;
			 * every move is decided on the owner word (tick). */
			hints.cart_uaddr = hints.busy_uaddr;
			/* Acquire: published before the Labors' tids (labor.c). */
			hints.spin_uaddr = ld_acquire(&r->hdr->spin_addr);
		}
		if (rt->blk_state == 1 ? lutf_lw_register_in(lw, rt->blk_first, rt->blk_count, tgid,
							     tid, &hints, &slot)
				       : lutf_lw_register_hints(lw, tgid, tid, &hints, &slot)) {
			lutf_labor_tid_drop(rt, i);
			continue;
		}
		rt->lw_used++;
		st_relaxed(&rt->lw_slot[i], slot);
		rt->lw_tid[i] = tid;
		c = ld_relaxed(&l->cart);
		if (c < r->cfg.carts && ld_relaxed(&r->carts[c].owner) == i + 1)
			lutf_lw_set_cart(lw, slot, c);
		/* Registered while inside a Brick (a Labor that took a call before
		 * its first tick, or any Labor at the switch from polling): a block
		 * that began before is invisible to the probe until the next one.
		 * Only if it sleeps now, read after the registration and its
		 * Cart: a thread running (or preempted) now is seen by the probe
		 * when it blocks, and the polling rule would take a CPU-bound
		 * Labor's Cart. */
		if (ld_acquire(&l->state) == LUTF_LABOR_RUNNING &&
		    ld_relaxed(&l->brick) != LUTF_NONE && lutf_labor_tid_sleeping(rt, i, tid))
			rt->lw_late[i] = ld_relaxed(&l->started) + 1;
		/* In-process Labors read it for the direct take (labor.c); the
		 * mapping is read-write, and their one write is a slot's Cart. */
		if (rt->labors)
			lutf_labors_view_set(rt->labors, i,
					     (struct labor_watch_slot *)lutf_lw_slot(lw, slot));
	}
}

/* Reserve rt's block of slots, once (under sup_lock). Its size: the watch
 * cap, as lw_sync counts it. Returns 0 or -errno; a block that cannot be had
 * is said once on stderr (lutfd's log), and rt runs without a view. */
static int lw_block(struct lutf_runtime *rt, struct lutf_lw *lw)
{
	uint32_t n = rt->r.cfg.labors_max;
	uint32_t per = __atomic_load_n(&rt->lw_cap, __ATOMIC_RELAXED); /* as lw_sync */
	int err;

	if (rt->blk_state)
		return rt->blk_state > 0 ? 0 : -ENOSPC;
	if (!per)
		per = rt->sup->lw_per_rt;
	err = lutf_lw_block_reserve(lw, per && per < n ? per : n, &rt->blk_first, &rt->blk_count);
	if (err == -EPERM)
		return err; /* switched off (LUTF_LABOR_WATCH_LEND=off): asked again each time */
	rt->blk_state = err ? -1 : 1;
	if (err)
		fprintf(stderr,
			"lutf: no block of labor_watch slots for a worker's runtime (%u wanted): "
			"%s; its Labors take no Cart themselves (the Supervisor hands off)\n",
			per && per < n ? per : n, strerror(-err));
	return err;
}

/* See host.h. Returns 0 or -errno. */
int lutf_runtime_watch_lend(struct lutf_runtime *rt, int *fd, uint32_t *first, uint32_t *count)
{
	struct lutf_lw *lw;
	int err;

	if (!rt || !rt->sup || rt->labors)
		return -ENODEV;
	pthread_mutex_lock(&rt->sup_lock);
	lw = sup_lw(rt->sup);
	err = lw ? lw_block(rt, lw) : -ENODEV;
	if (!err) {
		*fd = lutf_lw_state_fd_lend(lw);
		err = *fd < 0 ? *fd : 0;
		*first = rt->blk_first;
		*count = rt->blk_count;
	}
	pthread_mutex_unlock(&rt->sup_lock);
	return err;
}

int lutf_runtime_set_watch_cap(struct lutf_runtime *rt, uint32_t slots)
{
	/* Relaxed: pairs with lw_sync's relaxed load (a plain limit). */
	__atomic_store_n(&rt->lw_cap, slots, __ATOMIC_RELAXED);
	return 0;
}

/* Elastic pool, growing: every Labor is in use and a Cart waits behind a
 * blocked one. Ask the worker for one more (through the region's request
 * word), one at a time: not again until the last one asked for is up. */
static void grow(struct lutf_runtime *rt)
{
	struct lutf_region_hdr *h = rt->r.hdr;
	uint32_t req = ld_relaxed(&h->labor_req);

	if (req >= rt->r.cfg.labors_max || ld_acquire(&h->labors_up) < req)
		return;
	/* Counted first: the new Labor may take the Cart (directly) and finish
	 * its Bricks before this thread runs again. */
	__atomic_add_fetch(&rt->n_grows, 1, __ATOMIC_RELAXED);
	/* Release pairs with the keeper's acquire of labor_req. */
	st_release(&h->labor_req, req + 1);
	lutf_futex_wake(&h->labor_req, 1, rt->r.shared);
}

/* Elastic pool, shrinking: the top Labor above M, parked without a Cart for
 * labor_idle_ms, retires. Only the Supervisor assigns Carts, and it never
 * picks a Labor at or above labor_req, so the retiree cannot get one. */
static void maybe_retire(struct lutf_runtime *rt, uint64_t now)
{
	struct lutf_region *r = &rt->r;
	struct lutf_region_hdr *h = r->hdr;
	uint32_t req = ld_relaxed(&h->labor_req), top;
	struct lutf_labor *l;

	if (req <= rt->r.cfg.labors || req > rt->r.cfg.labors_max)
		return;
	top = req - 1;
	l = &r->labors[top];
	if (ld_acquire(&l->state) == LUTF_LABOR_IDLE && ld_relaxed(&l->sleeping)) {
		/* The top Labor parks on an empty Cart while a lower one is free:
		 * hand the Cart down so the top one can retire. */
		uint32_t c = ld_relaxed(&l->cart), to = find_free_labor(r);

		if (c < rt->r.cfg.carts && to < top && lutf_ring_count(&r->cart_q[c]) == 0 &&
		    ld_relaxed(&r->carts[c].owner) == top + 1 && bind_cart(rt, c, top, to, 0))
			wake_labor(r, top); /* it lets the Cart go and turns FREE */
		rt->free_since[top] = 0;
		return;
	}
	if (ld_acquire(&l->state) != LUTF_LABOR_FREE || ld_relaxed(&l->cart) != LUTF_NONE) {
		rt->free_since[top] = 0;
		return;
	}
	if (!rt->free_since[top]) {
		rt->free_since[top] = now;
		return;
	}
	if (now - rt->free_since[top] < (uint64_t)rt->r.cfg.labor_idle_ms * 1000000ull)
		return;
	rt->free_since[top] = 0;
	/* Counted before the retiree can go: the release below orders it, so a
	 * reader that sees the Labor gone also sees it counted. */
	__atomic_add_fetch(&rt->n_retires, 1, __ATOMIC_RELAXED);
	st_release(&h->labor_req, top);
	wake_labor(r, top);
}

/* BPF mode: how long Labor i has been blocked in the kernel, or 0 when it is
 * not blocked (running, preempted, or not watched). */
static uint64_t lw_blocked_for(struct lutf_runtime *rt, uint32_t i, uint64_t now)
{
	const struct labor_watch_slot *s;
	uint64_t at;

	if (rt->lw_slot[i] == LUTF_NONE)
		return 0;
	s = lutf_lw_slot(sup_lw(rt->sup), rt->lw_slot[i]);
	/* Acquire: the probe writes state last; the timestamp read after it is
	 * this block's or a later one's (then we wait a little longer). */
	if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != LW_STATE_BLOCKED)
		return 0;
	at = __atomic_load_n(&s->last_block_ns, __ATOMIC_RELAXED);
	return now > at ? now - at : 1;
}

/* Answer DEADLINE for queued Bricks of a Cart that is not moving. The ring is
 * read without taking anything: a cell is used only when its sequence says it
 * is filled, and a Brick only through a state CAS, so a racing pop or a
 * reused Brick is harmless (a reused Brick past its own deadline is due too).
 *
 * Cost is kept to the new entries: each tick reads only cells pushed since the
 * last one and keeps the earliest deadline seen; the whole window is read
 * again only when that deadline has passed, and at most every RESCAN_NS. */
#define RESCAN_NS 1000000ull

static uint64_t brick_due(struct lutf_runtime *rt, struct lutf_cell *c, uint64_t pos, uint64_t mask,
			  uint64_t now)
{
	struct lutf_region *r = &rt->r;
	struct lutf_brick *b;
	uint64_t dl;
	uint32_t idx;

	if (!lutf_cell_filled(c, pos, mask))
		return UINT64_MAX;
	idx = ld_relaxed(&c->val);
	b = lutf_front_brick(rt, idx, LUTF_FAULT_CART_CELL);
	if (!b || ld_acquire(&b->state) != LUTF_BRICK_QUEUED)
		return UINT64_MAX;
	/* The front's own copy of the deadline, not the Brick's word. */
	dl = ld_relaxed(&rt->bf[idx].deadline_ns);
	if (!dl)
		return UINT64_MAX;
	if (now >= dl) {
		if (lutf_brick_finish(r, b, LUTF_BRICK_QUEUED, LUTF_STATUS_DEADLINE, 0))
			__atomic_add_fetch(&rt->n_deadlines, 1, __ATOMIC_RELAXED);
		return UINT64_MAX;
	}
	return dl;
}

static void expire_cart(struct lutf_runtime *rt, uint32_t ci, uint64_t now)
{
	struct lutf_region *r = &rt->r;
	const struct lutf_ringv *v = &r->cart_q[ci];
	struct lutf_cart_scan *sc = &rt->scan[ci];
	struct lutf_cell *cells = v->cells;
	uint64_t mask = v->mask; /* private: the scan reads at most mask + 1 cells */
	uint64_t deq = ld_relaxed(&v->q->deq), enq = ld_relaxed(&v->q->enq);
	uint64_t from = sc->pos;

	if (enq < deq || enq - deq > mask + 1)
		deq = enq - mask - 1;
	if (now >= sc->min_dl && now - sc->last_full >= RESCAN_NS) {
		from = deq; /* the earliest deadline passed: read the whole window */
		sc->min_dl = UINT64_MAX;
		sc->last_full = now;
	} else if (from < deq || from > enq) {
		from = deq;
	}
	for (uint64_t pos = from; pos < enq; pos++) {
		uint64_t dl = brick_due(rt, &cells[pos & mask], pos, mask, now);

		if (dl < sc->min_dl)
			sc->min_dl = dl;
	}
	sc->pos = enq;
}

static void held_remove(struct lutf_fn_local *f, uint32_t i)
{
	memmove(&f->held[i], &f->held[i + 1], (f->n_held - i - 1) * sizeof(f->held[0]));
	f->n_held--;
}

/* Append a queued Brick to slot's hold list, or fail it with PAUSED when the
 * list is at hold_max. Consumes the queue's reference either way. */
static void hold(struct lutf_runtime *rt, uint32_t slot, struct lutf_brick *b)
{
	struct lutf_fn_local *f = &rt->fns[slot];
	struct lutf_region *r = &rt->r;

	if (f->n_held >= r->cfg.hold_max)
		goto fail;
	if (f->n_held == f->cap_held) {
		uint32_t cap = f->cap_held ? f->cap_held * 2 : 16;
		uint32_t *p;

		if (cap > r->cfg.hold_max)
			cap = r->cfg.hold_max;
		p = realloc(f->held, cap * sizeof(*p));
		if (!p)
			goto fail;
		f->held = p;
		f->cap_held = cap;
	}
	f->held[f->n_held++] = lutf_brick_index(r, b);
	__atomic_add_fetch(&rt->n_held, 1, __ATOMIC_RELAXED);
	return;
fail:
	lutf_brick_finish(r, b, LUTF_BRICK_QUEUED, LUTF_STATUS_PAUSED, 0);
	lutf_brick_unref(r, b);
}

void lutf_drain_held_ring(struct lutf_runtime *rt)
{
	struct lutf_region *r = &rt->r;
	/* Every legitimate entry is a distinct Brick: a pass that sees more
	 * entries than there are Bricks is reading a forged ring. */
	uint32_t budget = r->cfg.bricks, idx;

	while (lutf_ring_take(r, &r->held, NULL, &idx) == 0) {
		struct lutf_brick *b;
		uint32_t st, fn, fn_gen;

		if (!budget--) {
			lutf_front_fault(rt, LUTF_FAULT_BUDGET);
			return;
		}
		if (idx == LUTF_NONE && rt->held_fillers) {
			rt->held_fillers--; /* crash repair's filler */
			continue;
		}
		b = lutf_front_brick(rt, idx, LUTF_FAULT_HELD);
		if (!b)
			continue;
		/* Each word once: fn is checked, then only the local is used. */
		fn = ld_relaxed(&b->fn);
		fn_gen = ld_relaxed(&b->fn_gen);
		if (ld_acquire(&b->state) != LUTF_BRICK_QUEUED || fn >= r->cfg.max_functions) {
			lutf_front_fault(rt, LUTF_FAULT_HELD);
			continue; /* not followed, not unreferenced: its call ends by lutfd's
				     deadline */
		}
		st = ld_seqcst(&rt->fns[fn].state);
		if (ld_relaxed(&rt->fns[fn].gen) != fn_gen)
			st = LUTF_FN_DELETED;
		if (st == LUTF_FN_PAUSED || st == LUTF_FN_RELEASING) {
			hold(rt, fn, b);
			if (st == LUTF_FN_RELEASING)
				rt->fns[fn].releasing = true;
		} else if (st == LUTF_FN_ACTIVE && lutf_cart_enqueue(r, idx) >= 0) {
			/* resumed meanwhile: back onto a Cart with its reference */
		} else {
			lutf_brick_finish(
			    r, b, LUTF_BRICK_QUEUED,
			    st == LUTF_FN_ACTIVE ? LUTF_STATUS_OVERLOADED : LUTF_STATUS_DELETED, 0);
			lutf_brick_unref(r, b);
		}
	}
}

/* Submission order from the front's own copies: a comparator reading the
 * region could change its answers under qsort. */
static int cmp_request_id(const void *a, const void *b, void *arg)
{
	struct lutf_runtime *rt = arg;
	uint64_t x = rt->bf[*(const uint32_t *)a].request_id;
	uint64_t y = rt->bf[*(const uint32_t *)b].request_id;

	return x < y ? -1 : x > y;
}

void lutf_release_held(struct lutf_runtime *rt, uint32_t slot)
{
	struct lutf_fn_local *f = &rt->fns[slot];
	struct lutf_region *r = &rt->r;
	uint32_t i = 0;

	if (f->n_held)
		qsort_r(f->held, f->n_held, sizeof(f->held[0]), cmp_request_id, rt);
	while (i < f->n_held) {
		struct lutf_brick *b = &r->bricks[f->held[i]];

		if (ld_acquire(&b->state) != LUTF_BRICK_QUEUED) {
			lutf_brick_unref(r, b); /* answered while held (deadline) */
		} else if (lutf_cart_enqueue(r, f->held[i]) < 0) {
			break; /* Carts full: the rest go out on a later tick, in order */
		}
		i++;
	}
	if (i)
		memmove(f->held, f->held + i, (f->n_held - i) * sizeof(f->held[0]));
	f->n_held -= i;
	__atomic_sub_fetch(&rt->n_held, i, __ATOMIC_RELAXED);
	f->releasing = f->n_held != 0;
	if (!f->releasing && ld_relaxed(&f->state) == LUTF_FN_RELEASING)
		lutf_fn_set_state(rt, slot, LUTF_FN_ACTIVE);
}

void lutf_fail_held(struct lutf_runtime *rt, uint32_t slot, uint32_t status)
{
	struct lutf_fn_local *f = &rt->fns[slot];
	struct lutf_region *r = &rt->r;

	for (uint32_t i = 0; i < f->n_held; i++) {
		struct lutf_brick *b = &r->bricks[f->held[i]];

		lutf_brick_finish(r, b, LUTF_BRICK_QUEUED, status, 0);
		lutf_brick_unref(r, b);
	}
	__atomic_sub_fetch(&rt->n_held, f->n_held, __ATOMIC_RELAXED);
	f->n_held = 0;
	f->releasing = false;
}

/* Held Bricks past their deadline are answered. Caller holds rt->lock. */
static void expire_held(struct lutf_runtime *rt, uint32_t slot, uint64_t now)
{
	struct lutf_fn_local *f = &rt->fns[slot];
	struct lutf_region *r = &rt->r;

	for (uint32_t i = 0; i < f->n_held;) {
		struct lutf_brick *b = &r->bricks[f->held[i]];
		uint64_t dl = ld_relaxed(&rt->bf[f->held[i]].deadline_ns);

		if (dl && now >= dl) {
			if (lutf_brick_finish(r, b, LUTF_BRICK_QUEUED, LUTF_STATUS_DEADLINE,
					      LUTF_DEADLINE_HELD))
				__atomic_add_fetch(&rt->n_deadlines, 1, __ATOMIC_RELAXED);
			lutf_brick_unref(r, b);
			held_remove(f, i);
			__atomic_sub_fetch(&rt->n_held, 1, __ATOMIC_RELAXED);
			continue;
		}
		i++;
	}
}

/* A deleted slot becomes free once no Labor is inside it (Dekker with
 * run_brick: DELETED was stored seq_cst before this scan). */
static void reclaim(struct lutf_runtime *rt, uint32_t slot)
{
	struct lutf_region *r = &rt->r;
	struct lutf_fn_local *f = &rt->fns[slot];
	uint32_t gen;

	for (uint32_t i = 0; i < r->cfg.labors_max; i++)
		if (ld_seqcst(&r->labors[i].cur_fn) == slot)
			return;
	if (f->app)
		lutf_app_unref(rt, f->app);
	if (f->config) {
		for (char **p = f->config; *p; p++)
			free(*p);
		free(f->config);
	}
	free(f->held);
	gen = f->gen + 1; /* the private generation; the region's mirrors it */
	lutf_fn_local_clear(f);
	st_relaxed(&f->gen, gen);
	memset(r->fns[slot].name, 0, sizeof(r->fns[slot].name));
	st_relaxed(&r->fns[slot].gen, gen);
	lutf_fn_set_state(rt, slot, LUTF_FN_FREE);
}

/* Work that needs rt->lock: held Bricks and slot bookkeeping. Returns true
 * while any Brick is held (the Supervisor then keeps a slow tick). */
static bool tick_locked(struct lutf_runtime *rt, uint64_t now)
{
	struct lutf_region *r = &rt->r;
	bool any = false;

	lutf_drain_held_ring(rt);
	for (uint32_t s = 0; s < r->cfg.max_functions; s++) {
		uint32_t st = ld_relaxed(&rt->fns[s].state);
		struct lutf_fn_local *f = &rt->fns[s];

		if (st == LUTF_FN_FREE)
			continue;
		if (st == LUTF_FN_DELETED) {
			reclaim(rt, s);
			continue;
		}
		if (f->n_held)
			expire_held(rt, s, now);
		if (st == LUTF_FN_RELEASING)
			lutf_release_held(rt, s);
		any |= f->n_held != 0;
	}
	return any;
}

/* One pass over Labors and Carts. Returns true while Bricks are in flight;
 * *recheck_ns is lowered to when a block inside its grace will have used it up. */
static bool tick(struct lutf_runtime *rt, uint64_t now, uint64_t *recheck_ns)
{
	struct lutf_region *r = &rt->r;
	const struct lutf_config *cfg = &r->cfg;
	struct lutf_lw *lw = sup_lw(rt->sup);
	enum lutf_watch_mode mode = sup_mode(rt->sup);
	bool busy = false;

	if (lw)
		lw_sync(rt, lw);
	maybe_retire(rt, now);
	for (uint32_t i = 0; i < cfg->labors_max; i++) {
		struct lutf_labor *l = &r->labors[i];
		uint64_t started = ld_relaxed(&l->started);
		uint32_t idx = ld_relaxed(&l->brick);

		if (ld_relaxed(&l->state) != LUTF_LABOR_RUNNING || idx == LUTF_NONE) {
			rt->seen_since[i] = 0;
			continue;
		}
		busy = true;
		if (started != rt->seen_started[i] || !rt->seen_since[i]) {
			rt->seen_started[i] = started;
			rt->seen_since[i] = now;
		}
		if (idx >= cfg->bricks) {
			lutf_front_fault(rt, LUTF_FAULT_LABOR);
		} else {
			struct lutf_brick *b = &r->bricks[idx];
			uint64_t dl = ld_relaxed(&rt->bf[idx].deadline_ns);

			/* The Labor cannot be stopped; its caller is answered now and
			 * the late result is dropped with the Brick's last reference. */
			if (dl && now >= dl && ld_relaxed(&b->state) == LUTF_BRICK_RUNNING &&
			    lutf_brick_finish(r, b, LUTF_BRICK_RUNNING, LUTF_STATUS_DEADLINE, 0))
				__atomic_add_fetch(&rt->n_deadlines, 1, __ATOMIC_RELAXED);
		}
	}
	for (uint32_t c = 0; c < cfg->carts; c++) {
		struct lutf_cart *cart = &r->carts[c];
		uint32_t o = ld_relaxed(&cart->owner);
		uint64_t since, stuck = 0;

		if (lutf_ring_count(&r->cart_q[c]) == 0)
			continue;
		busy = true;
		if (o == 0 || o > cfg->labors_max) {
			uint32_t to = find_free_labor(r);

			if (to != LUTF_NONE)
				bind_cart(rt, c, LUTF_NONE, to, 0);
			continue;
		}
		since = rt->seen_since[o - 1];
		if (!since) {
			/* The owner is not inside a Brick: it is moving, or its
			 * thread has not started yet (an app still loading). The
			 * deadlines still hold: read the cells queued since the
			 * last look, or all of them once the earliest passed. */
			if (ld_relaxed(&r->cart_q[c].q->enq) != rt->scan[c].pos ||
			    now >= rt->scan[c].min_dl)
				expire_cart(rt, c, now);
			continue;
		}
		/* The one decision point, fed by either mode: how long has the
		 * owner been stuck in the Brick it is running? */
		if (mode == LUTF_WATCH_BPF) {
			stuck = lw_blocked_for(rt, o - 1, now);
			/* Registered inside the Brick it still runs: the polling
			 * rule, for that Brick only (lw_late). */
			if (!stuck && rt->lw_late[o - 1] == rt->seen_started[o - 1] + 1)
				stuck = now - since;
		} else if (mode == LUTF_WATCH_POLL)
			stuck = now - since;
		if (stuck && stuck >= cfg->grace_ns) {
			uint32_t to = find_free_labor(r);

			if (to != LUTF_NONE && bind_cart(rt, c, o - 1, to, stuck))
				continue;
			if (to == LUTF_NONE)
				grow(rt);
		} else if (stuck && cfg->grace_ns - stuck < *recheck_ns) {
			*recheck_ns = cfg->grace_ns - stuck;
		}
		if (now - since >= cfg->poll_ns)
			expire_cart(rt, c, now);
	}
	return busy;
}

int lutf_sup_pass(struct lutf_runtime *rt, uint64_t now)
{
	uint64_t recheck = UINT64_MAX;
	bool busy;

	pthread_mutex_lock(&rt->sup_lock);
	busy = tick(rt, now, &recheck);
	pthread_mutex_unlock(&rt->sup_lock);
	pthread_mutex_lock(&rt->lock);
	busy |= tick_locked(rt, now);
	pthread_mutex_unlock(&rt->lock);
	return busy;
}

void lutf_sup_wake(struct lutf_supervisor *sup)
{
	uint64_t one = 1;

	(void)!write(sup->efd, &one, sizeof(one));
}

void lutf_supervisor_nudge(struct lutf_runtime *rt, uint32_t c, uint64_t deadline_ns)
{
	struct lutf_supervisor *sup = rt->sup;
	const struct labor_watch_slot *sl;
	struct lutf_lw *lw;
	uint32_t o, slot;

	/* seq_cst loads: pair with the Supervisor's seq_cst stores of the flags
	 * before its last look (Dekker): either it sees this Brick or we see it
	 * waiting. The ring push before this was seq_cst too. */
	if (ld_seqcst(&sup->idle_sleep)) {
		lutf_sup_wake(sup); /* the first call after a quiet spell */
		return;
	}
	if (!ld_seqcst(&sup->ring_sleep))
		return;
	if (deadline_ns && deadline_ns < ld_seqcst(&sup->wake_at)) {
		lutf_sup_wake(sup);
		return;
	}
	lw = sup_lw(sup);
	if (!lw)
		return;
	o = ld_relaxed(&rt->r.carts[c].owner);
	if (o == 0 || o > rt->r.cfg.labors_max)
		return;
	slot = __atomic_load_n(&rt->lw_slot[o - 1], __ATOMIC_RELAXED);
	sl = slot == LUTF_NONE ? NULL : lutf_lw_slot(lw, slot);
	if (sl && __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) == LW_STATE_BLOCKED)
		lutf_sup_wake(sup);
}

/* Wait up to timeout_ns for the eventfd or (BPF mode) a block. */
static void sup_wait(struct lutf_supervisor *sup, uint64_t timeout_ns)
{
	struct timespec ts = {(time_t)(timeout_ns / 1000000000ull),
			      (long)(timeout_ns % 1000000000ull)};
	struct pollfd pfd = {.fd = sup->efd, .events = POLLIN};
	struct lutf_lw *lw = sup_lw(sup);
	uint64_t drain;

	if (lw)
		lutf_lw_sleep_fd(lw, sup->efd, (int64_t)timeout_ns);
	else
		ppoll(&pfd, 1, &ts, NULL);
	(void)!read(sup->efd, &drain, sizeof(drain));
}

/* One pass over every runtime's Carts and Labors. Caller holds list_lock. */
static bool tick_all(struct lutf_supervisor *sup, uint64_t now, uint64_t *recheck)
{
	bool busy = false;

	for (uint32_t i = 0; i < sup->n_rts; i++) {
		struct lutf_runtime *rt = sup->rts[i];

		pthread_mutex_lock(&rt->sup_lock);
		busy |= tick(rt, now, recheck);
		pthread_mutex_unlock(&rt->sup_lock);
	}
	return busy;
}

/* BPF mode, calls in flight or recent: wait for a Labor to block (the probe's
 * ring buffer), a nudge from a submit, or the tick. */
static void ring_sleep(struct lutf_supervisor *sup, uint64_t timeout_ns)
{
	uint64_t recheck = UINT64_MAX, now = lutf_now_ns();

	st_seqcst(&sup->wake_at, now + timeout_ns);
	st_seqcst(&sup->ring_sleep, 1);
	/* Look once more with the flag up: a Brick queued before it was seen by
	 * this pass, one queued after it sees the flag. */
	pthread_mutex_lock(&sup->list_lock);
	tick_all(sup, now, &recheck);
	pthread_mutex_unlock(&sup->list_lock);
	if (recheck > timeout_ns)
		sup_wait(sup, timeout_ns);
	st_relaxed(&sup->ring_sleep, 0);
	st_relaxed(&sup->wake_at, 0);
}

static void *sup_main(void *arg)
{
	struct lutf_supervisor *sup = arg;

	/* Timed waits end when asked: the default 50 us slack would stretch a
	 * 50 us grace to twice that. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	while (!ld_acquire(&sup->exit)) {
		uint64_t now = lutf_now_ns(), recheck = UINT64_MAX, poll = UINT64_MAX;
		uint64_t idle_wait = IDLE_MAX_NS, sub = 0;
		bool held = false, busy;

		pthread_mutex_lock(&sup->list_lock);
		/* Carts first: a hand-off is the one thing here that is urgent. */
		busy = tick_all(sup, now, &recheck);
		if (sup->yield_after) {
			/* A Labor was just pinned here and woken: let it run before
			 * this thread's own bookkeeping. */
			sup->yield_after = false;
			sched_yield();
		}
		for (uint32_t i = 0; i < sup->n_rts; i++) {
			struct lutf_runtime *rt = sup->rts[i];
			const struct lutf_config *cfg = &rt->r.cfg;

			pthread_mutex_lock(&rt->lock);
			held |= tick_locked(rt, now);
			pthread_mutex_unlock(&rt->lock);
			busy |= lutf_ring_count(&rt->r.held) != 0;
			sub += ld_relaxed(&rt->n_submitted);
			if (cfg->poll_ns < poll)
				poll = cfg->poll_ns;
			/* Extra Labors are waiting to retire: look again in a while. */
			if (ld_relaxed(&rt->r.hdr->labor_req) > cfg->labors) {
				uint64_t t = (uint64_t)cfg->labor_idle_ms * 250000ull + 1000000ull;

				if (t < idle_wait)
					idle_wait = t;
			}
		}
		pthread_mutex_unlock(&sup->list_lock);

		if (busy || sub != sup->seen_submitted)
			sup->active_at = now;
		sup->seen_submitted = sub;
		if (held && HELD_TICK_NS < idle_wait)
			idle_wait = HELD_TICK_NS;
		if (recheck != UINT64_MAX) {
			/* A Labor is blocked but still inside its grace. */
			sup_wait(sup, recheck);
			continue;
		}
		if (sup_mode(sup) == LUTF_WATCH_BPF && now - sup->active_at < IDLE_AFTER_NS) {
			ring_sleep(sup, held ? HELD_TICK_NS : BPF_TICK_NS);
			continue;
		}
		if (busy && sup_mode(sup) != LUTF_WATCH_BPF) {
			sup_wait(sup, poll == UINT64_MAX ? HELD_TICK_NS : poll);
			continue;
		}
		/* Quiet: sleep until a submit (the nudge sees idle_sleep). seq_cst,
		 * then a last look with seq_cst ring counts (Dekker with it). */
		st_seqcst(&sup->idle_sleep, 1);
		pthread_mutex_lock(&sup->list_lock);
		busy = tick_all(sup, lutf_now_ns(), &recheck);
		pthread_mutex_unlock(&sup->list_lock);
		if (!busy && !ld_acquire(&sup->exit))
			sup_wait(sup, idle_wait);
		st_relaxed(&sup->idle_sleep, 0);
	}
	return NULL;
}

const char *lutf_watch_mode_str(enum lutf_watch_mode m)
{
	switch (m) {
	case LUTF_WATCH_OFF:
		return "off";
	case LUTF_WATCH_POLL:
		return "poll";
	case LUTF_WATCH_BPF:
		return "bpf";
	}
	return "unknown";
}

int lutf_supervisor_create(const struct lutf_supervisor_opts *o, struct lutf_supervisor **out)
{
	struct lutf_supervisor *sup;
	int err;

	if (!o || !out || o->watch > LUTF_WATCH_BPF ||
	    !memchr(o->bpf_pin_dir, 0, sizeof(o->bpf_pin_dir)))
		return -EINVAL;
	sup = calloc(1, sizeof(*sup));
	if (!sup)
		return -ENOMEM;
	pthread_mutex_init(&sup->list_lock, NULL);
	sup->mode = o->watch;
	sup->lw_per_rt = o->max_labors_per_runtime;
	sup->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sup->efd < 0) {
		err = -errno;
		goto err;
	}
	if (o->watch == LUTF_WATCH_BPF && o->bpf_later) {
		/* Polling until lutf_supervisor_load_watch switches. */
		sup->mode = LUTF_WATCH_POLL;
		sup->bpf_later = true;
		memcpy(sup->lw_pin_dir, o->bpf_pin_dir, sizeof(sup->lw_pin_dir));
		sup->lw_max_labors = o->max_labors ? o->max_labors : LW_DEFAULT_SLOTS;
	} else if (o->watch == LUTF_WATCH_BPF) {
		struct lutf_lw_opts lo = {
		    .pin_dir = o->bpf_pin_dir,
		    .max_labors = o->max_labors ? o->max_labors : LW_DEFAULT_SLOTS,
		    .grace_ns = LW_DEFAULT_GRACE_NS,
		};

		/* On failure lutf_lw_open printed the one line saying why. */
		if (lutf_lw_open(&lo, &sup->lw))
			sup->mode = LUTF_WATCH_POLL;
	}
	err = -pthread_create(&sup->thread, NULL, sup_main, sup);
	if (err)
		goto err;
	pthread_setname_np(sup->thread, "lutf-sup");
	sup->started = true;
	*out = sup;
	return 0;
err:
	lutf_lw_close(sup->lw);
	if (sup->efd >= 0)
		close(sup->efd);
	pthread_mutex_destroy(&sup->list_lock);
	free(sup);
	return err;
}

int lutf_supervisor_load_watch(struct lutf_supervisor *sup)
{
	struct lutf_lw_opts lo;
	struct lutf_lw *lw;
	uint64_t grace = 0;
	int err;

	if (!sup || !sup->bpf_later || __atomic_exchange_n(&sup->load_once, 1, __ATOMIC_RELAXED))
		return -EALREADY;
	lo = (struct lutf_lw_opts){
	    .pin_dir = sup->lw_pin_dir,
	    .max_labors = sup->lw_max_labors,
	    .grace_ns = LW_DEFAULT_GRACE_NS,
	};
	/* The slow part, with no lock held: ticks and submits go on polling. */
	err = lutf_lw_open(&lo, &lw);
	if (err)
		return err;
	/* Every runtime's sup_lock (list_lock first, as tick_all takes them): no
	 * tick is half way through a pass when the mode changes. */
	pthread_mutex_lock(&sup->list_lock);
	for (uint32_t i = 0; i < sup->n_rts; i++) {
		pthread_mutex_lock(&sup->rts[i]->sup_lock);
		/* As lutf_sup_join: the last runtime's grace (lutfd gives all one). */
		if (sup->rts[i]->r.cfg.grace_ns)
			grace = sup->rts[i]->r.cfg.grace_ns;
	}
	if (grace)
		lutf_lw_set_grace(lw, grace);
	/* Release, lw first: pairs with sup_lw's and sup_mode's acquire. The
	 * Labors' tids are checked and registered by the next tick's lw_sync. */
	__atomic_store_n(&sup->lw, lw, __ATOMIC_RELEASE);
	__atomic_store_n(&sup->mode, LUTF_WATCH_BPF, __ATOMIC_RELEASE);
	for (uint32_t i = sup->n_rts; i-- > 0;)
		pthread_mutex_unlock(&sup->rts[i]->sup_lock);
	pthread_mutex_unlock(&sup->list_lock);
	lutf_sup_wake(sup); /* its next wait is on the probe's ring buffer */
	return 0;
}

struct lutf_supervisor *lutf_sup_bare(void)
{
	struct lutf_supervisor *sup = calloc(1, sizeof(*sup));

	if (!sup)
		return NULL;
	pthread_mutex_init(&sup->list_lock, NULL);
	sup->mode = LUTF_WATCH_POLL;
	sup->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sup->efd < 0) {
		pthread_mutex_destroy(&sup->list_lock);
		free(sup);
		return NULL;
	}
	return sup;
}

enum lutf_watch_mode lutf_supervisor_mode(const struct lutf_supervisor *sup)
{
	return sup ? sup_mode(sup) : LUTF_WATCH_OFF;
}

void lutf_supervisor_destroy(struct lutf_supervisor *sup)
{
	if (!sup)
		return;
	if (sup->started) {
		st_release(&sup->exit, 1);
		lutf_sup_wake(sup);
		pthread_join(sup->thread, NULL);
	}
	lutf_lw_close(sup->lw);
	close(sup->efd);
	pthread_mutex_destroy(&sup->list_lock);
	free(sup->rts);
	free(sup);
}

int lutf_sup_join(struct lutf_supervisor *sup, struct lutf_runtime *rt)
{
	struct lutf_region *r = &rt->r;
	const struct lutf_config *cfg = &r->cfg;

	rt->sup = sup;
	rt->seen_started = calloc(cfg->labors_max, sizeof(uint64_t));
	rt->seen_since = calloc(cfg->labors_max, sizeof(uint64_t));
	rt->scan = calloc(cfg->carts, sizeof(*rt->scan));
	rt->free_since = calloc(cfg->labors_max, sizeof(uint64_t));
	rt->lw_slot = malloc(cfg->labors_max * sizeof(*rt->lw_slot));
	rt->lw_tid = calloc(cfg->labors_max, sizeof(*rt->lw_tid));
	rt->lw_late = calloc(cfg->labors_max, sizeof(*rt->lw_late));
	if (!rt->seen_started || !rt->seen_since || !rt->scan || !rt->free_since || !rt->lw_slot ||
	    !rt->lw_tid || !rt->lw_late)
		return -ENOMEM;
	for (uint32_t c = 0; c < cfg->carts; c++)
		rt->scan[c].min_dl = UINT64_MAX;
	for (uint32_t i = 0; i < cfg->labors_max; i++)
		rt->lw_slot[i] = LUTF_NONE;
	pthread_mutex_lock(&sup->list_lock);
	if (sup->n_rts == sup->cap_rts) {
		uint32_t cap = sup->cap_rts ? 2 * sup->cap_rts : 4;
		struct lutf_runtime **p = realloc(sup->rts, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&sup->list_lock);
			return -ENOMEM;
		}
		sup->rts = p;
		sup->cap_rts = cap;
	}
	/* Initial binding: Cart i to Labor i; the other Labors start FREE. */
	pthread_mutex_lock(&rt->sup_lock);
	for (uint32_t c = 0; c < cfg->carts; c++)
		if (ld_relaxed(&r->carts[c].owner) == 0)
			bind_cart(rt, c, LUTF_NONE, c, 0);
	pthread_mutex_unlock(&rt->sup_lock);
	sup->rts[sup->n_rts++] = rt;
	rt->joined = true;
	/* The probe's long_blocks counts against the runtime's grace (one probe
	 * for every runtime of the Supervisor: the last to join sets it; lutfd
	 * gives every tenant the same). */
	if (sup->lw && cfg->grace_ns)
		lutf_lw_set_grace(sup->lw, cfg->grace_ns);
	pthread_mutex_unlock(&sup->list_lock);
	lutf_sup_wake(sup);
	return 0;
}

void lutf_sup_leave(struct lutf_runtime *rt)
{
	struct lutf_supervisor *sup = rt->sup;
	struct lutf_lw *lw;

	if (!sup || !rt->joined)
		return;
	pthread_mutex_lock(&sup->list_lock);
	/* Under list_lock: off the list, rt gets no slot from a switch later. */
	lw = sup->lw;
	for (uint32_t i = 0; i < sup->n_rts; i++) {
		if (sup->rts[i] == rt) {
			sup->rts[i] = sup->rts[--sup->n_rts];
			break;
		}
	}
	rt->joined = false;
	pthread_mutex_unlock(&sup->list_lock);
	if (rt->labors) {
		/* No spinner writes our eventfd after this: it loads the bell
		 * counted in view_users (seq_cst pair, as lutf_labors_view_set). */
		__atomic_store_n(&rt->labors->sup_bell, -1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&rt->labors->view_users, __ATOMIC_SEQ_CST))
			sched_yield();
	}
	for (uint32_t i = 0; lw && i < rt->r.cfg.labors_max; i++) {
		if (rt->lw_slot[i] == LUTF_NONE)
			continue;
		/* No spinning Labor reads the slot once it goes (or once the
		 * Supervisor's mapping goes with it). */
		if (rt->labors)
			lutf_labors_view_set(rt->labors, i, NULL);
		lutf_lw_unregister(lw, rt->lw_slot[i]);
	}
	/* Its slots are unregistered: the block goes back to the table. */
	if (lw && rt->blk_state == 1)
		lutf_lw_block_release(lw, rt->blk_first, rt->blk_count);
	rt->blk_state = 0;
}

void lutf_supervisor_bpf_stats(struct lutf_runtime *rt, struct lutf_runtime_stats *st)
{
	struct lutf_lw *lw = rt->sup ? sup_lw(rt->sup) : NULL;
	struct lutf_lw_drops d;

	st->tid_refused = __atomic_load_n(&rt->n_tid_refused, __ATOMIC_RELAXED);
	if (!lw)
		return;
	snprintf(st->bpf_attach, sizeof(st->bpf_attach), "%s", lutf_lw_attach_kind(lw));
	lutf_lw_prog_stats(lw, &st->bpf_run_ns, &st->bpf_run_cnt);
	if (lutf_lw_drops(lw, &d) == 0)
		st->bpf_drops = d.ringbuf_drop + d.slot_range + d.slot_stale;
	/* Blocked now: the probe's own slot state (a snapshot; the probe and the
	 * Supervisor change it while we read). */
	for (uint32_t i = 0; i < rt->r.cfg.labors_max; i++) {
		uint32_t slot = __atomic_load_n(&rt->lw_slot[i], __ATOMIC_RELAXED);
		const struct labor_watch_slot *s =
		    slot == LUTF_NONE ? NULL : lutf_lw_slot(lw, slot);

		if (s && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == LW_STATE_BLOCKED)
			st->labors_blocked++;
		st->labors_watched += slot != LUTF_NONE;
		/* Direct takes move Carts too. Counted only for in-process Labors
		 * (the only ones with a view); a worker's words never feed stats. */
		if (rt->labors)
			st->rebinds += ld_relaxed(&rt->r.labors[i].takes);
	}
}
