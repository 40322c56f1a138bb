/* SPDX-License-Identifier: MIT */
/* Brick pool and payload arena: bounded, reused, class spill-over. */
#include <criterion/criterion.h>
#include <sys/mman.h>

#include "region.h"
#include "engine_util.h"

static struct lutf_region reg;
static void *mem;
static size_t size;
static struct lutf_config cfg;

static void setup(void)
{
	cfg = test_config(1, 1);
	cfg.bricks = 64;
	size = lutf_region_size(&cfg);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(mem != MAP_FAILED);
	cr_assert_eq(lutf_region_format(mem, size, &cfg, 0), 0);
	cr_assert_eq(lutf_region_open(&reg, mem, size), 0);
}

static void teardown(void)
{
	munmap(mem, size);
}

TestSuite(pool, .init = setup, .fini = teardown);

Test(pool, bricks_are_bounded_and_reused)
{
	struct lutf_brick *b[64];

	for (int i = 0; i < 64; i++) {
		b[i] = lutf_brick_take(&reg);
		cr_assert_not_null(b[i]);
	}
	cr_assert_null(lutf_brick_take(&reg), "pool must be bounded");
	lutf_brick_put(&reg, b[10]);
	lutf_brick_put(&reg, b[20]);
	/* LIFO reuse: the warmest Brick comes back first. */
	cr_assert_eq(lutf_brick_take(&reg), b[20]);
	cr_assert_eq(lutf_brick_take(&reg), b[10]);
	cr_assert_null(lutf_brick_take(&reg));
}

Test(pool, unref_frees_payload_with_the_last_owner)
{
	struct lutf_brick *b = lutf_brick_take(&reg);
	uint64_t off = lutf_arena_alloc(&reg, 1000);

	cr_assert(off);
	b->in_off = off;
	b->refs = 2;
	lutf_brick_unref(&reg, b);
	cr_assert_eq(b->in_off, off, "freed while an owner remains");
	lutf_brick_unref(&reg, b);
	cr_assert_eq(b->in_off, 0);
	/* The block and the Brick are both back: the next takes reuse them. */
	cr_assert_eq(lutf_arena_alloc(&reg, 1000), off);
	cr_assert_eq(lutf_brick_take(&reg), b);
}

Test(pool, arena_classes_spill_upward_and_refuse_oversize)
{
	uint64_t small = lutf_arena_alloc(&reg, 10);
	uint64_t big = lutf_arena_alloc(&reg, cfg.max_payload);

	cr_assert(small && big);
	cr_assert_eq(lutf_arena_block_size(&reg, small), 256);
	cr_assert_geq(lutf_arena_block_size(&reg, big), cfg.max_payload);
	cr_assert_eq(lutf_arena_alloc(&reg, (size_t)cfg.max_payload * 4), 0);
	/* Exhaust the 256-byte class: allocation goes on in larger blocks. */
	for (int i = 0; i < 100000; i++) {
		uint64_t o = lutf_arena_alloc(&reg, 200);

		if (!o)
			break;
		if (lutf_arena_block_size(&reg, o) > 256)
			return; /* spilled */
	}
	cr_assert_fail("small allocations never spilled into a larger class");
}
