/* SPDX-License-Identifier: MIT */
/*
 * Bounded MPMC ring of u32 values (Vyukov's sequence-numbered cells), used
 * for Cart run queues, the completion ring and the held ring. Safe with any
 * number of producers and consumers: a Labor that just lost its Cart may pop
 * from it once more and nothing breaks. Cells live in the region.
 *
 * Every ring is used through a private view (struct lutf_ringv): the mask
 * and the cells' address are this side's own copies, so an index is always
 * in bounds whatever the counters say. Loops are bounded (LUTF_RING_BUDGET):
 * a ring shared with another process is untrusted, and garbage in it must not
 * hang the front.
 *
 * A cell stores its sequence number minus its own index, so that the initial
 * state (sequence = index) is all zeros: a fresh ring costs no memory until
 * its cells are first used.
 */
#include <errno.h>

#include "region.h"

void lutf_ring_init(struct lutf_region *r, struct lutf_ring *q, uint64_t cells_off, uint32_t cap)
{
	q->cells_off = cells_off;
	q->mask = cap - 1;
	q->enq = 0;
	q->deq = 0;
	/* Cells are zero in a fresh region: every cell says "free for lap 0". */
}

int lutf_ring_push(struct lutf_region *r, const struct lutf_ringv *v, uint32_t val)
{
	struct lutf_ring *q = v->q;
	struct lutf_cell *c;
	uint64_t mask = v->mask;
	uint64_t pos = ld_relaxed(&q->enq);
	unsigned tries = 0;

	for (;;) {
		int64_t dif;

		if (++tries > LUTF_RING_BUDGET) {
			lutf_region_fault(r, LUTF_FAULT_BUDGET);
			return -ELOOP;
		}
		c = &v->cells[pos & mask];
		/* Acquire pairs with the consumer's release of seq in pop: the cell
		 * is free again only after its previous value was read. */
		/* Unsigned, then converted: counters the worker wrote cannot make
		 * it a signed overflow. */
		dif = (int64_t)(ld_acquire(&c->seq) + (pos & mask) - pos);
		if (dif == 0) {
			/* seq_cst on success: this claim is the "work published"
			 * half of every doorbell's Dekker pair (see cart.c); on x86
			 * it is the same locked instruction as a relaxed CAS. */
			if (__atomic_compare_exchange_n(&q->enq, &pos, pos + 1, true,
							__ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
				break;
		} else if (dif < 0) {
			return -EAGAIN; /* full: the cell still holds a value a lap behind */
		} else {
			pos = ld_relaxed(&q->enq);
		}
	}
	st_relaxed(&c->val, val);
	/* Release pairs with the acquire of seq in pop: val (and whatever the
	 * producer wrote into the Brick before pushing) is visible to the taker. */
	st_release(&c->seq, pos + 1 - (pos & mask));
	return 0;
}

/* Inlined into both entry points: the Labors' pop is on every call's path. */
static inline __attribute__((always_inline)) int
ring_take(struct lutf_region *r, const struct lutf_ringv *v, uint32_t *dst, uint32_t *out)
{
	struct lutf_ring *q = v->q;
	struct lutf_cell *c;
	uint64_t mask = v->mask;
	uint64_t pos = ld_relaxed(&q->deq);
	unsigned tries = 0;
	uint32_t val;

	for (;;) {
		int64_t dif;

		if (++tries > LUTF_RING_BUDGET) {
			lutf_region_fault(r, LUTF_FAULT_BUDGET);
			return -ELOOP;
		}
		c = &v->cells[pos & mask];
		/* Acquire pairs with the release of seq in push. */
		dif = (int64_t)(ld_acquire(&c->seq) + (pos & mask) - (pos + 1));
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&q->deq, &pos, pos + 1, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
		} else if (dif < 0) {
			return -EAGAIN; /* empty */
		} else {
			pos = ld_relaxed(&q->deq);
		}
	}
	val = ld_relaxed(&c->val);
	/* Record the value where a crash inspector finds it before the cell
	 * forgets it: after a consumer dies, the value is either still in an
	 * unreleased cell or in *dst (see lutf_runtime_worker_lost). */
	if (dst)
		st_relaxed(dst, val);
	/* Release pairs with the acquire in push: the cell may be refilled only
	 * after val was read. */
	st_release(&c->seq, pos + mask + 1 - (pos & mask));
	*out = val;
	return 0;
}

int lutf_ring_take(struct lutf_region *r, const struct lutf_ringv *v, uint32_t *dst, uint32_t *out)
{
	return ring_take(r, v, dst, out);
}

uint32_t lutf_ring_pop_into(struct lutf_region *r, const struct lutf_ringv *v, uint32_t *dst)
{
	uint32_t val;

	return ring_take(r, v, dst, &val) ? LUTF_NONE : val;
}

uint32_t lutf_ring_count(const struct lutf_ringv *v)
{
	/* seq_cst: the "re-check for work" half of the doorbell pairs. */
	uint64_t d = ld_seqcst(&v->q->deq), e = ld_seqcst(&v->q->enq);

	if (e <= d)
		return 0;
	return e - d > v->mask + 1 ? (uint32_t)(v->mask + 1) : (uint32_t)(e - d);
}

uint32_t lutf_ring_pop(struct lutf_region *r, const struct lutf_ringv *v)
{
	return lutf_ring_pop_into(r, v, NULL);
}

bool lutf_ring_ready(const struct lutf_ringv *v)
{
	uint64_t pos = ld_seqcst(&v->q->deq);

	if (ld_seqcst(&v->q->enq) == pos)
		return false;
	/* A claimed cell not yet filled reads as "not ready": the reaper sleeps
	 * instead of spinning on a cell a dead producer will never fill. */
	return lutf_cell_filled(&v->cells[pos & v->mask], pos, v->mask);
}
