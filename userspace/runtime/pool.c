/* SPDX-License-Identifier: MIT */
/*
 * The Brick pool and the payload arena: lock-free stacks of free indices
 * (Treiber, with a 32-bit tag beside the index against ABA) in front of a bump
 * counter, so a block is touched for the first time only when first used and
 * a fresh region costs no memory for Bricks or payloads it never held.
 */
#include <errno.h>

#include "region.h"

#define TAG_ONE (1ull << 32)
#define STACK_BUDGET (1u << 16) /* CAS attempts on one head before giving up */

/* A free stack: the shared head word and private bounds for its entries. */
struct stack {
	uint64_t *head;	 /* shared: index | tag << 32 */
	uint32_t *links; /* shared link words, or NULL: Bricks (link in the Brick) */
	struct lutf_brick *bricks;
	uint32_t count; /* private: entries are below this */
};

static uint32_t *link_of(const struct stack *s, uint32_t idx)
{
	return s->links ? &s->links[idx] : &s->bricks[idx].next;
}

/* Pop a free index, or LUTF_NONE. An index the head names is checked against
 * the private count before its link word is touched. */
static uint32_t stack_pop(struct lutf_region *r, const struct stack *s)
{
	/* Acquire pairs with the release CAS in stack_push: the link word and
	 * the entry's old contents are visible before we hand the entry out. */
	uint64_t old = ld_acquire(s->head);
	unsigned tries = 0;

	for (;;) {
		uint32_t idx = (uint32_t)old;
		uint64_t next;

		if (idx == LUTF_NONE)
			return LUTF_NONE;
		if (idx >= s->count) {
			lutf_region_fault(r, LUTF_FAULT_FREE_STACK);
			return LUTF_NONE;
		}
		/* Bounded: the stack lives in a region another process can write. */
		if (++tries > STACK_BUDGET) {
			lutf_region_fault(r, LUTF_FAULT_BUDGET);
			return LUTF_NONE;
		}
		/* Relaxed: if the entry was taken and reused meanwhile, the tag
		 * makes the CAS fail and this value is discarded. */
		next = ld_relaxed(link_of(s, idx));
		if (__atomic_compare_exchange_n(s->head, &old,
						next | ((old & ~0xffffffffull) + TAG_ONE), true,
						__ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
			return idx;
	}
}

/* idx < s->count (the caller's private bound). An entry that cannot be pushed
 * within the budget is dropped (leaked): only a hostile writer gets there. */
static void stack_push(struct lutf_region *r, const struct stack *s, uint32_t idx)
{
	uint64_t old = ld_relaxed(s->head);
	unsigned tries = 0;

	do {
		if (++tries > STACK_BUDGET) {
			lutf_region_fault(r, LUTF_FAULT_BUDGET);
			return;
		}
		st_relaxed(link_of(s, idx), (uint32_t)old);
		/* Release pairs with the acquire in stack_pop. */
	} while (!__atomic_compare_exchange_n(s->head, &old,
					      idx | ((old & ~0xffffffffull) + TAG_ONE), true,
					      __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* Take a never-used index below count, or LUTF_NONE. A CAS, not a fetch_add,
 * so failed attempts cannot wrap the counter; bounded like the stacks. */
static uint32_t bump(struct lutf_region *r, uint32_t *ctr, uint32_t count)
{
	uint32_t n = ld_relaxed(ctr);
	unsigned tries = 0;

	do {
		if (n >= count)
			return LUTF_NONE;
		if (++tries > STACK_BUDGET) {
			lutf_region_fault(r, LUTF_FAULT_BUDGET);
			return LUTF_NONE;
		}
	} while (
	    !__atomic_compare_exchange_n(ctr, &n, n + 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return n;
}

static struct stack brick_stack(struct lutf_region *r)
{
	return (struct stack){&r->hdr->pool_head, NULL, r->bricks, r->cfg.bricks};
}

static struct stack class_stack(const struct lutf_classv *c)
{
	return (struct stack){&c->c->head, c->links, NULL, c->count};
}

struct lutf_brick *lutf_brick_take(struct lutf_region *r)
{
	struct stack s = brick_stack(r);
	uint32_t idx = stack_pop(r, &s);

	if (idx == LUTF_NONE)
		idx = bump(r, &r->hdr->pool_bump, r->cfg.bricks);
	if (idx >= r->cfg.bricks)
		return NULL;
	return &r->bricks[idx];
}

void lutf_brick_put(struct lutf_region *r, struct lutf_brick *b)
{
	struct stack s = brick_stack(r);

	stack_push(r, &s, lutf_brick_index(r, b));
}

void lutf_brick_unref(struct lutf_region *r, struct lutf_brick *b)
{
	uint64_t in_off, out_off;

	/* acq_rel: the last owner sees every write the others made to the Brick. */
	if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* Each read once; lutf_arena_free checks them against the private classes. */
	in_off = ld_relaxed(&b->in_off);
	out_off = ld_relaxed(&b->out_off);
	if (in_off)
		lutf_arena_free(r, in_off);
	if (out_off && out_off != in_off)
		lutf_arena_free(r, out_off);
	st_relaxed(&b->in_off, 0);
	st_relaxed(&b->out_off, 0);
	st_relaxed(&b->state, LUTF_BRICK_FREE);
	lutf_brick_put(r, b);
}

/* ---- arena ---- */

uint64_t lutf_arena_alloc(struct lutf_region *r, size_t len)
{
	for (uint32_t i = 0; i < r->n_classes; i++) {
		const struct lutf_classv *c = &r->cls[i];
		struct stack s;
		uint32_t idx;

		if (c->size < len)
			continue;
		/* Exhausted classes spill into the next larger one. */
		s = class_stack(c);
		idx = stack_pop(r, &s);
		if (idx == LUTF_NONE)
			idx = bump(r, &c->c->bump, c->count);
		if (idx < c->count)
			return c->off + (uint64_t)idx * c->size;
	}
	return 0;
}

static const struct lutf_classv *class_of(const struct lutf_region *r, uint64_t off, uint32_t *idx)
{
	for (uint32_t i = 0; i < r->n_classes; i++) {
		const struct lutf_classv *c = &r->cls[i];
		uint64_t rel;

		if (off < c->off)
			continue;
		rel = off - c->off;
		if (rel < (uint64_t)c->size * c->count && rel % c->size == 0) {
			*idx = (uint32_t)(rel / c->size);
			return c;
		}
	}
	return NULL;
}

size_t lutf_arena_block_size(const struct lutf_region *r, uint64_t off)
{
	uint32_t idx;
	const struct lutf_classv *c = class_of(r, off, &idx);

	return c ? c->size : 0;
}

void lutf_arena_free(struct lutf_region *r, uint64_t off)
{
	uint32_t idx;
	const struct lutf_classv *c = class_of(r, off, &idx);
	struct stack s;

	if (!c)
		return;
	s = class_stack(c);
	stack_push(r, &s, idx);
}
