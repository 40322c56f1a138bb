/* SPDX-License-Identifier: MIT */
/*
 * Cart placement, doorbells and Brick completion. A doorbell costs a syscall
 * only when its owner sleeps: the owner sets 'sleeping' and re-checks for
 * work after a full fence; the ringer publishes work, fences, and reads
 * 'sleeping'. With a seq_cst fence on both sides one of them sees the other.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>

#include "internal.h"

/* The half of lutf_bell after the fence, for callers that ring several. */
static void bell_fenced(struct lutf_region *r, uint32_t *bell, uint32_t *sleeping)
{
	if (ld_relaxed(sleeping)) {
		/* Release: a woken sleeper that reads the new bell value also
		 * sees the work published before it. */
		__atomic_add_fetch(bell, 1, __ATOMIC_RELEASE);
		lutf_futex_wake(bell, INT_MAX, r->shared);
	}
}

void lutf_bell(struct lutf_region *r, uint32_t *bell, uint32_t *sleeping)
{
	/* Pairs with the fence between 'sleeping = 1' and the re-check in every
	 * parking loop (labor.c park, supervisor.c sup_main, runtime.c reap). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bell_fenced(r, bell, sleeping);
}

/* Wake Cart c's owner and the Supervisor, each only if asleep. */
static void cart_kick(struct lutf_region *r, uint32_t c)
{
	struct lutf_region_hdr *h = r->hdr;
	uint32_t o;

	/* One fence for both bells: pairs with the parking fences. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* Acquire pairs with the Supervisor's CAS of owner in bind_cart. */
	o = ld_acquire(&r->carts[c].owner);
	if (o != 0 && o <= h->cfg.labors)
		bell_fenced(r, &r->labors[o - 1].bell, &r->labors[o - 1].sleeping);
	bell_fenced(r, &h->sup_bell, &h->sup_sleeping);
}

/* Per-core run queues: a thread submits to the Cart of the CPU it runs on,
 * or to the next Cart when that one is longer (two choices, cheap). */
int lutf_cart_enqueue(struct lutf_region *r, uint32_t idx)
{
	uint32_t n = r->hdr->cfg.carts;
	int cpu = sched_getcpu();
	uint32_t c = cpu > 0 ? (uint32_t)cpu % n : 0;

	if (n > 1) {
		uint32_t alt = (c + 1) % n;

		if (lutf_ring_count(&r->carts[c].ring) > lutf_ring_count(&r->carts[alt].ring) + 1)
			c = alt;
	}
	/* A full Cart spills into the others; all full is OVERLOADED. */
	for (uint32_t i = 0; i < n; i++, c = (c + 1) % n) {
		if (lutf_ring_push(r, &r->carts[c].ring, idx) == 0) {
			cart_kick(r, c);
			return 0;
		}
	}
	return -EAGAIN;
}

void lutf_brick_post(struct lutf_region *r, struct lutf_brick *b)
{
	struct lutf_region_hdr *h = r->hdr;

	if (b->cq == LUTF_CQ_SYNC) {
		/* Release pairs with the waiter's acquire of done: status and
		 * output are visible once done reads 1. */
		if (__atomic_exchange_n(&b->done, 1, __ATOMIC_RELEASE) == 2)
			lutf_futex_wake(&b->done, 1, r->shared);
		return;
	}
	/* Cannot fail: the completion ring holds as many entries as there are
	 * Bricks, and a Brick is posted once. Its release publishes the status. */
	lutf_ring_push(r, &h->cq, lutf_brick_index(r, b));
	lutf_bell(r, &h->cq_bell, &h->cq_sleeping);
}

bool lutf_brick_finish(struct lutf_region *r, struct lutf_brick *b, uint32_t from,
		       uint32_t status, uint32_t detail)
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
