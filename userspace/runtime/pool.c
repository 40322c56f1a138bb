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

/* Pop a free index, or LUTF_NONE. links[i] is the next-index word of entry i. */
static uint32_t stack_pop(uint64_t *head, uint32_t *(*link)(void *, uint32_t), void *ctx)
{
	/* Acquire pairs with the release CAS in stack_push: the link word and
	 * the entry's old contents are visible before we hand the entry out. */
	uint64_t old = ld_acquire(head);
	unsigned tries = 0;

	for (;;) {
		uint32_t idx = (uint32_t)old;
		uint64_t next;

		/* Bounded: the stack lives in a region another process can write. */
		if (idx == LUTF_NONE || ++tries > (1u << 16))
			return LUTF_NONE;
		/* Relaxed: if the entry was taken and reused meanwhile, the tag
		 * makes the CAS fail and this value is discarded. */
		next = ld_relaxed(link(ctx, idx));
		if (__atomic_compare_exchange_n(head, &old,
						next | ((old & ~0xffffffffull) + TAG_ONE), true,
						__ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
			return idx;
	}
}

static void stack_push(uint64_t *head, uint32_t idx, uint32_t *(*link)(void *, uint32_t), void *ctx)
{
	uint64_t old = ld_relaxed(head);

	do {
		st_relaxed(link(ctx, idx), (uint32_t)old);
		/* Release pairs with the acquire in stack_pop. */
	} while (!__atomic_compare_exchange_n(head, &old, idx | ((old & ~0xffffffffull) + TAG_ONE),
					      true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* Take a never-used index below count, or LUTF_NONE. A CAS, not a fetch_add,
 * so failed attempts cannot wrap the counter. */
static uint32_t bump(uint32_t *ctr, uint32_t count)
{
	uint32_t n = ld_relaxed(ctr);

	do {
		if (n >= count)
			return LUTF_NONE;
	} while (
	    !__atomic_compare_exchange_n(ctr, &n, n + 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return n;
}

static uint32_t *brick_link(void *ctx, uint32_t idx)
{
	struct lutf_region *r = ctx;

	return &r->bricks[idx].next;
}

struct lutf_brick *lutf_brick_take(struct lutf_region *r)
{
	struct lutf_region_hdr *h = r->hdr;
	uint32_t idx = stack_pop(&h->pool_head, brick_link, r);

	if (idx == LUTF_NONE || idx >= h->cfg.bricks)
		idx = bump(&h->pool_bump, h->cfg.bricks);
	if (idx == LUTF_NONE || idx >= h->cfg.bricks)
		return NULL;
	return &r->bricks[idx];
}

void lutf_brick_put(struct lutf_region *r, struct lutf_brick *b)
{
	stack_push(&r->hdr->pool_head, lutf_brick_index(r, b), brick_link, r);
}

void lutf_brick_unref(struct lutf_region *r, struct lutf_brick *b)
{
	/* acq_rel: the last owner sees every write the others made to the Brick. */
	if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (b->in_off)
		lutf_arena_free(r, b->in_off);
	if (b->out_off)
		lutf_arena_free(r, b->out_off);
	b->in_off = 0;
	b->out_off = 0;
	st_relaxed(&b->state, LUTF_BRICK_FREE);
	lutf_brick_put(r, b);
}

/* ---- arena ---- */

struct class_ctx {
	struct lutf_region *r;
	struct lutf_arena_class *c;
};

static uint32_t *block_link(void *ctx, uint32_t idx)
{
	struct class_ctx *k = ctx;

	return (uint32_t *)lutf_region_at(k->r, k->c->links_off) + idx;
}

uint64_t lutf_arena_alloc(struct lutf_region *r, size_t len)
{
	struct lutf_region_hdr *h = r->hdr;

	for (uint32_t i = 0; i < h->n_classes; i++) {
		struct class_ctx k = {r, &h->classes[i]};
		uint32_t idx;

		if (k.c->size < len)
			continue;
		/* Exhausted classes spill into the next larger one. */
		idx = stack_pop(&k.c->head, block_link, &k);
		if (idx == LUTF_NONE || idx >= k.c->count)
			idx = bump(&k.c->bump, k.c->count);
		if (idx != LUTF_NONE && idx < k.c->count)
			return k.c->off + (uint64_t)idx * k.c->size;
	}
	return 0;
}

static struct lutf_arena_class *class_of(const struct lutf_region *r, uint64_t off, uint32_t *idx)
{
	struct lutf_region_hdr *h = r->hdr;

	for (uint32_t i = 0; i < h->n_classes; i++) {
		struct lutf_arena_class *c = &h->classes[i];
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
	struct lutf_arena_class *c = class_of(r, off, &idx);

	return c ? c->size : 0;
}

void lutf_arena_free(struct lutf_region *r, uint64_t off)
{
	uint32_t idx;
	struct class_ctx k = {r, class_of(r, off, &idx)};

	if (k.c)
		stack_push(&k.c->head, idx, block_link, &k);
}
