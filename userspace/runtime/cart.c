/* SPDX-License-Identifier: MIT */
/*
 * Cart placement, doorbells and Brick completion. A doorbell costs a syscall
 * only when its owner sleeps: the owner stores 'sleeping' (seq_cst) and then
 * re-checks for work (seq_cst loads of the ring's counters); the ringer
 * publishes work with the ring's seq_cst claim and then loads 'sleeping'
 * (seq_cst). In the single total order of seq_cst operations one of the two
 * sees the other (Dekker), so no wake is lost. Atomics, not fences: TSan
 * does not model fences. Binding a Cart to a Labor (lutf_cart_claim) is two
 * CASes, the Labor's cart word and then the Cart's owner word, so that two
 * binders (the Supervisor, a Labor taking a Cart itself) never give one Labor
 * two Carts or one Cart two owners.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include "internal.h"

void lutf_bell(struct lutf_region *r, uint32_t *bell, uint32_t *sleeping)
{
	/* seq_cst: pairs with the sleeper's seq_cst store of 'sleeping'. */
	if (ld_seqcst(sleeping)) {
		/* Release: a woken sleeper that reads the new bell value also
		 * sees the work published before it. */
		__atomic_add_fetch(bell, 1, __ATOMIC_RELEASE);
		lutf_futex_wake(bell, INT_MAX, r->shared);
	}
}

/* Wake Cart c's owner if it is asleep. (The Supervisor is woken, when it
 * needs to be, by the submit path's nudge: see lutf_supervisor_nudge.) */
static void cart_kick(struct lutf_region *r, uint32_t c)
{
	struct lutf_labor *l;
	uint32_t o;

	/* Acquire pairs with the Supervisor's CAS of owner in bind_cart. */
	o = ld_acquire(&r->carts[c].owner);
	if (o == 0 || o > r->cfg.labors_max)
		return;
	l = &r->labors[o - 1];
	/* As lutf_bell, but the ringer that takes 'sleeping' from 1 to 0 (a
	 * seq_cst exchange: the same Dekker pairing as its load) is the only
	 * one to ring: until the woken Labor runs, further pushes see it
	 * awake and make no futex call of their own (it pops all it finds). */
	if (ld_seqcst(&l->sleeping) && __atomic_exchange_n(&l->sleeping, 0, __ATOMIC_SEQ_CST)) {
		/* Release: as in lutf_bell. */
		__atomic_add_fetch(&l->bell, 1, __ATOMIC_RELEASE);
		lutf_futex_wake(&l->bell, INT_MAX, r->shared);
	}
}

/*
 * The plug (lutf_runtime_plug, host.h): while a thread's plug is on, its
 * pushes are published at once (a spinning Labor takes them) but the kick of
 * a sleeping owner waits for the unplug, one per Cart. On one CPU a kick in
 * the middle of a submitter's pass lets the woken Labor preempt it before the
 * rest is pushed; plugged, one wake-up carries the whole pass. Thread-local:
 * only the plugging thread's own pushes wait. Bounded: past PLUG_MAX Carts a
 * kick is made at once.
 */
#define PLUG_MAX 32u
static __thread bool plug_on;
static __thread unsigned plug_n;
static __thread struct {
	struct lutf_region *r;
	uint32_t c;
} plug_k[PLUG_MAX];

static void plug_kick(struct lutf_region *r, uint32_t c)
{
	for (unsigned i = 0; i < plug_n; i++)
		if (plug_k[i].r == r && plug_k[i].c == c)
			return;
	if (plug_n == PLUG_MAX) {
		cart_kick(r, c);
		return;
	}
	plug_k[plug_n].r = r;
	plug_k[plug_n].c = c;
	plug_n++;
}

void lutf_runtime_plug(bool on)
{
	plug_on = on;
	if (on)
		return;
	for (unsigned i = 0; i < plug_n; i++)
		cart_kick(plug_k[i].r, plug_k[i].c);
	plug_n = 0;
}

void lutf_runtime_plug_forget(struct lutf_runtime *rt)
{
	struct lutf_region *r = rt ? &rt->r : NULL;
	unsigned n = 0;

	for (unsigned i = 0; i < plug_n; i++)
		if (plug_k[i].r != r)
			plug_k[n++] = plug_k[i];
	plug_n = n;
}

/* A submitting thread sticks to one Cart, handed out round-robin, so that one
 * busy caller feeds one Labor (on two vCPUs a second spinning Labor would
 * take the caller's CPU). It moves to the next Cart only when its own has a
 * real backlog and the next one is much shorter. */
static uint32_t next_home;
static __thread uint32_t home = LUTF_NONE;

#define SPILL_BACKLOG 64u

int lutf_cart_enqueue(struct lutf_region *r, uint32_t idx)
{
	uint32_t n = r->cfg.carts; /* private: never 0 */
	uint32_t c;

	if (home == LUTF_NONE)
		home = __atomic_fetch_add(&next_home, 1, __ATOMIC_RELAXED);
	c = home % n;
	if (n > 1) {
		uint32_t alt = (c + 1) % n;
		uint32_t mine = lutf_ring_count(&r->cart_q[c]);

		if (mine > SPILL_BACKLOG && mine > 2 * lutf_ring_count(&r->cart_q[alt]))
			c = alt;
	}
	/* A full Cart spills into the others; all full is OVERLOADED. */
	for (uint32_t i = 0; i < n; i++, c = (c + 1) % n) {
		if (lutf_ring_push(r, &r->cart_q[c], idx) == 0) {
			if (plug_on)
				plug_kick(r, c);
			else
				cart_kick(r, c);
			return (int)c;
		}
	}
	return -EAGAIN;
}

void lutf_brick_post(struct lutf_region *r, struct lutf_brick *b)
{
	struct lutf_region_hdr *h = r->hdr;

	/* Read once: a worker may rewrite it (an async Brick then never reaches
	 * the completion ring, and lutfd's own deadline answers its call). */
	if (ld_relaxed(&b->cq) == LUTF_CQ_SYNC) {
		/* Release pairs with the waiter's acquire of done: status and
		 * output are visible once done reads 1. */
		if (__atomic_exchange_n(&b->done, 1, __ATOMIC_RELEASE) == 2)
			lutf_futex_wake(&b->done, 1, r->shared);
		return;
	}
	/* Cannot fail: the completion ring holds as many entries as there are
	 * Bricks, and a Brick is posted once. Its release publishes the status. */
	lutf_ring_push(r, &r->cq, lutf_brick_index(r, b));
	/* As cart_kick: of the posters that find a reaper asleep, only the one
	 * that takes cq_rung from 0 to 1 rings; until a reaper arms again
	 * (it stores 0 before its seq_cst count and re-check of the ring), the
	 * others' completions are in the ring it reaps when it wakes. Every
	 * rung word after the arm's store belongs to a ring whose bell
	 * increment either ends that wait or whose push the arm's re-check
	 * sees. seq_cst, as the load of cq_sleeping it follows. */
	if (ld_seqcst(&h->cq_sleeping) && !ld_seqcst(&h->cq_rung) &&
	    !__atomic_exchange_n(&h->cq_rung, 1, __ATOMIC_SEQ_CST)) {
		/* Release: as in lutf_bell. */
		__atomic_add_fetch(&h->cq_bell, 1, __ATOMIC_RELEASE);
		lutf_futex_wake(&h->cq_bell, INT_MAX, r->shared);
	}
}

bool lutf_brick_finish(struct lutf_region *r, struct lutf_brick *b, uint32_t from, uint32_t status,
		       uint32_t detail)
{
	uint32_t expect = from;

	/* Acquire-release: the winner owns the completion; the loser (another
	 * Labor pass, the Supervisor) sees DONE and only drops its reference. */
	if (!__atomic_compare_exchange_n(&b->state, &expect, LUTF_BRICK_DONE, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	b->status = status;
	b->detail = detail;
	lutf_brick_post(r, b);
	return true;
}

bool lutf_cart_claim(struct lutf_region *r, uint32_t c, uint32_t from, uint32_t to)
{
	struct lutf_labor *l = &r->labors[to];
	uint32_t none = LUTF_NONE, expect = from == LUTF_NONE ? 0 : from + 1;

	if (c >= r->cfg.carts || to >= r->cfg.labors_max)
		return false;
	/* Claim 'to' first: the Supervisor (for any Cart) and 'to' itself (the
	 * direct take) may both be binding it. Acquire-release: the loser reads
	 * the winner's claim and backs off. */
	if (!__atomic_compare_exchange_n(&l->cart, &none, c | LUTF_CART_PENDING, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	/* acq_rel pairs with the acquire loads of owner in labor_main and
	 * cart_kick, and with a rival binder's CAS: one of them wins. */
	if (!__atomic_compare_exchange_n(&r->carts[c].owner, &expect, to + 1, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* Release: the claim is ours alone; pairs with the next claimer. */
		st_release(&l->cart, LUTF_NONE);
		return false;
	}
	/* Release pairs with the Labor's acquire of its cart word: once it reads
	 * c it also reads owner = to + 1. */
	st_release(&l->cart, c);
	return true;
}

bool lutf_cart_rebind(struct lutf_region *r, uint32_t c, uint32_t from, uint32_t to,
		      uint64_t stuck_ns)
{
	if (from == LUTF_NONE || from == to || c >= r->cfg.carts || stuck_ns == 0 ||
	    stuck_ns < r->cfg.grace_ns || lutf_ring_count(&r->cart_q[c]) == 0)
		return false;
	return lutf_cart_claim(r, c, from, to);
}
