/* SPDX-License-Identifier: MIT */
/*
 * Region layout: sizes, formatting and validation. The header records every
 * section's offset; lutf_region_open re-checks them all so that a region
 * written by another process is never trusted blindly.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "region.h"

#define PAGE 4096u
#define META_MAX 16384u /* content type + headers of one request */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

uint64_t lutf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lutf_config_init(struct lutf_config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	memset(cfg, 0, sizeof(*cfg));
	cfg->carts = cores > 0 ? (uint32_t)cores : 1;
	cfg->labors = 4 * cfg->carts;
	cfg->labors_max = 2 * cfg->labors;
	cfg->labor_idle_ms = 10000;
	cfg->cart_capacity = 4096;
	cfg->bricks = 0; /* derived: carts * cart_capacity */
	cfg->max_functions = 256;
	cfg->hold_max = 1024;
	cfg->arena_bytes = 64ull << 20;
	cfg->max_payload = 8u << 20;
	cfg->spin_ns = 20000;
	cfg->grace_ns = 50000;
	cfg->poll_ns = 200000;
	cfg->timeout_ms = 30000;
	cfg->watch = LUTF_WATCH_BPF;
}

/* Fill derived fields and check bounds. 0 or -EINVAL. */
static int config_check(struct lutf_config *c)
{
	if (c->carts < 1 || c->carts > 256)
		return -EINVAL;
	if (c->labors < c->carts || c->labors > 4096)
		return -EINVAL;
	if (c->labors_max < c->labors)
		c->labors_max = c->labors; /* no elastic pool */
	if (c->labors_max > 4096)
		return -EINVAL;
	if (c->cart_capacity < 2 || c->cart_capacity > (1u << 22) ||
	    (c->cart_capacity & (c->cart_capacity - 1)))
		return -EINVAL;
	if (c->bricks == 0)
		c->bricks = c->carts * c->cart_capacity;
	if (c->bricks > (1u << 24))
		return -EINVAL;
	if (c->max_functions < 1 || c->max_functions > 65536)
		return -EINVAL;
	if (c->max_payload < 1 || c->max_payload > (256u << 20))
		return -EINVAL;
	if (c->watch > LUTF_WATCH_BPF || !memchr(c->bpf_pin_dir, 0, sizeof(c->bpf_pin_dir)))
		return -EINVAL;
	return 0;
}

/* Block sizes: 256 B times powers of four below the top class, which holds
 * the largest payload plus its metadata or content type. */
static uint32_t class_sizes(const struct lutf_config *c, uint32_t *sizes, uint32_t *counts)
{
	uint64_t top = align_up((uint64_t)c->max_payload + META_MAX, PAGE);
	uint32_t n = 0;
	uint64_t s;

	for (s = 256; s < top && n < LUTF_ARENA_CLASSES - 1; s *= 4)
		sizes[n++] = (uint32_t)s;
	sizes[n++] = (uint32_t)top;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t share = c->arena_bytes / n / sizes[i];

		counts[i] = share < LUTF_ARENA_MIN_BLOCKS ? LUTF_ARENA_MIN_BLOCKS : (uint32_t)share;
	}
	return n;
}

struct layout {
	uint64_t off_carts, off_labors, off_fns, off_bricks, off_cells, off_arena, end;
	uint32_t cq_cap;
	uint32_t n_classes;
	uint32_t sizes[LUTF_ARENA_CLASSES], counts[LUTF_ARENA_CLASSES];
	uint64_t class_off[LUTF_ARENA_CLASSES];
	uint64_t links_off[LUTF_ARENA_CLASSES];
};

static void layout(const struct lutf_config *c, struct layout *l)
{
	uint64_t o = align_up(sizeof(struct lutf_region_hdr), PAGE);
	uint64_t cells;

	l->off_carts = o;
	o += (uint64_t)c->carts * sizeof(struct lutf_cart);
	l->off_labors = o = align_up(o, LUTF_CACHELINE);
	o += (uint64_t)c->labors_max * sizeof(struct lutf_labor);
	l->off_fns = o = align_up(o, LUTF_CACHELINE);
	o += (uint64_t)c->max_functions * sizeof(struct lutf_fn_slot);
	l->off_bricks = o = align_up(o, LUTF_CACHELINE);
	o += (uint64_t)c->bricks * sizeof(struct lutf_brick);
	l->off_cells = o = align_up(o, LUTF_CACHELINE);
	/* Carts, then the completion ring, then the held ring: the last two can
	 * each hold every Brick, so pushing onto them never fails. */
	l->cq_cap = pow2_at_least(c->bricks < 2 ? 2 : c->bricks);
	cells = (uint64_t)c->carts * c->cart_capacity + 2ull * l->cq_cap;
	o += cells * sizeof(struct lutf_cell);
	l->n_classes = class_sizes(c, l->sizes, l->counts);
	for (uint32_t i = 0; i < l->n_classes; i++) {
		l->links_off[i] = o;
		o += (uint64_t)l->counts[i] * sizeof(uint32_t);
	}
	l->off_arena = o = align_up(o, PAGE);
	for (uint32_t i = 0; i < l->n_classes; i++) {
		l->class_off[i] = o;
		o += (uint64_t)l->sizes[i] * l->counts[i];
	}
	l->end = align_up(o, PAGE);
}

size_t lutf_region_size(const struct lutf_config *cfg)
{
	struct lutf_config c;
	struct layout l;

	if (cfg)
		c = *cfg;
	else
		lutf_config_init(&c);
	if (config_check(&c))
		return 0;
	layout(&c, &l);
	return (size_t)l.end;
}

/* Fill *r from a layout derived here (never from the region's own words). */
static void view(struct lutf_region *r, void *mem, size_t size, const struct lutf_config *c,
		 const struct layout *l)
{
	uint64_t cell = l->off_cells;

	memset(r, 0, sizeof(*r));
	r->base = mem;
	r->size = size;
	r->hdr = mem;
	r->cfg = *c;
	r->carts = (struct lutf_cart *)(r->base + l->off_carts);
	r->labors = (struct lutf_labor *)(r->base + l->off_labors);
	r->fns = (struct lutf_fn_slot *)(r->base + l->off_fns);
	r->bricks = (struct lutf_brick *)(r->base + l->off_bricks);
	for (uint32_t i = 0; i < c->carts; i++) {
		r->cart_q[i].q = &r->carts[i].ring;
		r->cart_q[i].cells = (struct lutf_cell *)(r->base + cell);
		r->cart_q[i].mask = c->cart_capacity - 1;
		cell += (uint64_t)c->cart_capacity * sizeof(struct lutf_cell);
	}
	r->cq.q = &r->hdr->cq;
	r->cq.cells = (struct lutf_cell *)(r->base + cell);
	r->cq.mask = l->cq_cap - 1;
	cell += (uint64_t)l->cq_cap * sizeof(struct lutf_cell);
	r->held.q = &r->hdr->held;
	r->held.cells = (struct lutf_cell *)(r->base + cell);
	r->held.mask = l->cq_cap - 1;
	r->n_classes = l->n_classes;
	for (uint32_t i = 0; i < l->n_classes; i++) {
		r->cls[i].c = &r->hdr->classes[i];
		r->cls[i].links = (uint32_t *)(r->base + l->links_off[i]);
		r->cls[i].off = l->class_off[i];
		r->cls[i].size = l->sizes[i];
		r->cls[i].count = l->counts[i];
	}
}

int lutf_region_format(void *mem, size_t size, const struct lutf_config *cfg, unsigned flags)
{
	static __thread struct lutf_region r; /* large (Cart views): not on the stack */
	struct lutf_region_hdr *h = mem;
	struct lutf_config c;
	struct layout l;
	uint64_t cell;
	int err;

	if (!mem || ((uintptr_t)mem & (PAGE - 1)) || (flags & ~LUTF_REGION_SHARED))
		return -EINVAL;
	if (cfg)
		c = *cfg;
	else
		lutf_config_init(&c);
	err = config_check(&c);
	if (err)
		return err;
	layout(&c, &l);
	if (size < l.end)
		return -ENOSPC;

	/* The memory is zero-filled by contract: only non-zero words are written,
	 * so untouched pages (most of the arena) cost nothing. */
	h->version = LUTF_REGION_VERSION;
	h->flags = flags;
	h->size = l.end;
	h->cfg = c;
	h->off_carts = l.off_carts;
	h->off_labors = l.off_labors;
	h->off_fns = l.off_fns;
	h->off_bricks = l.off_bricks;
	h->off_cells = l.off_cells;
	h->off_arena = l.off_arena;
	h->end = l.end;
	h->n_classes = l.n_classes;
	for (uint32_t i = 0; i < l.n_classes; i++) {
		h->classes[i].off = l.class_off[i];
		h->classes[i].links_off = l.links_off[i];
		h->classes[i].size = l.sizes[i];
		h->classes[i].count = l.counts[i];
		h->classes[i].head = LUTF_NONE;
	}
	h->pool_head = LUTF_NONE;
	h->labor_req = c.labors;

	view(&r, mem, size, &c, &l);
	cell = l.off_cells;
	for (uint32_t i = 0; i < c.carts; i++) {
		lutf_ring_init(&r, &r.carts[i].ring, cell, c.cart_capacity);
		cell += (uint64_t)c.cart_capacity * sizeof(struct lutf_cell);
	}
	lutf_ring_init(&r, &h->cq, cell, l.cq_cap);
	cell += (uint64_t)l.cq_cap * sizeof(struct lutf_cell);
	lutf_ring_init(&r, &h->held, cell, l.cq_cap);
	for (uint32_t i = 0; i < c.labors_max; i++) {
		r.labors[i].cart = LUTF_NONE;
		r.labors[i].brick = LUTF_NONE;
		r.labors[i].cur_fn = LUTF_NONE;
	}
	/* Publish last: lutf_region_open checks the magic with acquire. */
	st_release(&h->magic, LUTF_REGION_MAGIC);
	return 0;
}

static bool ring_ok(const struct lutf_ring *q, const struct layout *l, uint64_t size)
{
	uint64_t cap = (uint64_t)q->mask + 1;

	return cap >= 2 && (cap & (cap - 1)) == 0 && q->cells_off >= l->off_cells &&
	       q->cells_off + cap * sizeof(struct lutf_cell) <= l->links_off[0] &&
	       l->off_arena <= size;
}

int lutf_region_open(struct lutf_region *r, void *mem, size_t size)
{
	struct lutf_region_hdr *h = mem, hc;
	struct lutf_config c;
	struct layout l;

	if (!mem || size < sizeof(*h) || ld_acquire(&h->magic) != LUTF_REGION_MAGIC)
		return -EINVAL;
	/* One copy of the header, checked and used: the region's own words are
	 * not read again for layout, here or later. */
	memcpy(&hc, h, sizeof(hc));
	if (hc.version != LUTF_REGION_VERSION)
		return -EINVAL;
	/* Recompute the layout from the recorded config and insist on equality:
	 * every offset used later is then one we derived ourselves. */
	c = hc.cfg;
	if (config_check(&c) || c.bricks != hc.cfg.bricks || c.labors_max != hc.cfg.labors_max)
		return -EINVAL;
	layout(&c, &l);
	if (l.end > size || hc.end != l.end || hc.off_carts != l.off_carts ||
	    hc.off_labors != l.off_labors || hc.off_fns != l.off_fns ||
	    hc.off_bricks != l.off_bricks || hc.off_cells != l.off_cells ||
	    hc.off_arena != l.off_arena || hc.n_classes != l.n_classes)
		return -EINVAL;
	for (uint32_t i = 0; i < l.n_classes; i++)
		if (hc.classes[i].off != l.class_off[i] ||
		    hc.classes[i].links_off != l.links_off[i] || hc.classes[i].size != l.sizes[i] ||
		    hc.classes[i].count != l.counts[i])
			return -EINVAL;
	if (!ring_ok(&hc.cq, &l, size) || !ring_ok(&hc.held, &l, size))
		return -EINVAL;
	view(r, mem, size, &c, &l);
	r->shared = hc.flags & LUTF_REGION_SHARED;
	return 0;
}

bool lutf_region_layout_intact(const struct lutf_region *r)
{
	const struct lutf_region_hdr *h = r->hdr;
	struct lutf_config c;

	/* Plain reads: a torn or changing value only makes this false. */
	memcpy(&c, (const void *)&h->cfg, sizeof(c));
	if (ld_relaxed(&h->magic) != LUTF_REGION_MAGIC ||
	    ld_relaxed(&h->version) != LUTF_REGION_VERSION || memcmp(&c, &r->cfg, sizeof(c)) ||
	    ld_relaxed(&h->n_classes) != r->n_classes ||
	    ld_relaxed(&h->off_carts) != (uint64_t)((uint8_t *)r->carts - r->base) ||
	    ld_relaxed(&h->off_labors) != (uint64_t)((uint8_t *)r->labors - r->base) ||
	    ld_relaxed(&h->off_fns) != (uint64_t)((uint8_t *)r->fns - r->base) ||
	    ld_relaxed(&h->off_bricks) != (uint64_t)((uint8_t *)r->bricks - r->base))
		return false;
	for (uint32_t i = 0; i < r->n_classes; i++)
		if (ld_relaxed(&h->classes[i].off) != r->cls[i].off ||
		    ld_relaxed(&h->classes[i].size) != r->cls[i].size ||
		    ld_relaxed(&h->classes[i].count) != r->cls[i].count)
			return false;
	if (ld_relaxed(&h->cq.mask) != r->cq.mask || ld_relaxed(&h->held.mask) != r->held.mask)
		return false;
	for (uint32_t i = 0; i < r->cfg.carts; i++)
		if (ld_relaxed(&r->carts[i].ring.mask) != r->cart_q[i].mask ||
		    ld_relaxed(&r->carts[i].ring.cells_off) !=
			(uint64_t)((uint8_t *)r->cart_q[i].cells - r->base))
			return false;
	return true;
}

static const char *const fault_names[LUTF_FAULT__COUNT] = {
    [LUTF_FAULT_NONE] = "none",
    [LUTF_FAULT_CQ_INDEX] = "completion index",
    [LUTF_FAULT_CQ_STRAY] = "completion not awaited",
    [LUTF_FAULT_CQ_GENERATION] = "completion generation",
    [LUTF_FAULT_RESULT] = "result bounds",
    [LUTF_FAULT_HELD] = "held ring entry",
    [LUTF_FAULT_CART_CELL] = "cart cell index",
    [LUTF_FAULT_LABOR] = "labor word",
    [LUTF_FAULT_FREE_STACK] = "free stack",
    [LUTF_FAULT_BUDGET] = "pass budget",
    [LUTF_FAULT_LABOR_TID] = "labor tid",
    [LUTF_FAULT_LAYOUT] = "layout words",
    [LUTF_FAULT_BRICK] = "brick word",
    [LUTF_FAULT_LOST] = "lost call",
};

const char *lutf_fault_check_name(unsigned check)
{
	return check < LUTF_FAULT__COUNT ? fault_names[check] : "unknown";
}

void lutf_region_fault(struct lutf_region *r, unsigned check)
{
	if (check >= LUTF_FAULT__COUNT)
		return;
	/* Relaxed: counters for stats; readers poll them. */
	__atomic_add_fetch(&r->faults[check], 1, __ATOMIC_RELAXED);
	st_relaxed(&r->last_fault, check);
}
