/* SPDX-License-Identifier: MIT */
/*
 * labor_watch's lent blocks (the direct take in lutfd's workers): whole pages
 * reserved for one runtime, never handed out by the global allocator, filled
 * only by lutf_lw_register_in, given back; and the fd lent with them, whose
 * PROT_READ mapping of one block shows the loader's writes and cannot be made
 * writable. Needs root and BPF. Registrations use thread ids no live thread
 * has (the loader checks nothing else for the tid hash).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "labor_watch.h"

#include "require.h"

#define SLOTS 256U	 /* four pages of labor_state */
#define FAKE_TID 4190000 /* + i: above the tids this host hands out */

static struct lutf_lw *lw;

static void teardown(void)
{
	lutf_lw_close(lw);
	lw = NULL;
}

TestSuite(lw_block, .fini = teardown);

static void open_lw(void)
{
	struct lutf_lw_opts o = {.pin_dir = "", .max_labors = SLOTS};

	LUTF_REQUIRE("root", geteuid() == 0, "BPF needs root");
	LUTF_REQUIRE("bpf", lutf_lw_open(&o, &lw) == 0, "lutf_lw_open failed (see stderr)");
}

static uint32_t reg_global(int i)
{
	struct lutf_lw_hints h = {0};
	uint32_t slot = UINT32_MAX;

	cr_assert_eq(lutf_lw_register_hints(lw, getpid(), FAKE_TID + i, &h, &slot), 0, "tid %d", i);
	return slot;
}

Test(lw_block, whole_pages_first_fit_and_given_back)
{
	uint32_t first, count, f2, c2, f3, c3;

	open_lw();
	cr_assert_eq(lutf_lw_block_reserve(lw, 0, &first, &count), -EINVAL);
	cr_assert_eq(lutf_lw_block_reserve(lw, 10, &first, &count), 0);
	cr_assert_eq(first, 0);
	cr_assert_eq(count, LW_SLOTS_PER_PAGE);
	cr_assert_eq(lutf_lw_block_reserve(lw, 65, &f2, &c2), 0);
	cr_assert_eq(f2, 64);
	cr_assert_eq(c2, 128, "65 slots take two whole pages");
	cr_assert_eq(lutf_lw_block_reserve(lw, 1, &f3, &c3), 0);
	cr_assert_eq(f3, 192);
	cr_assert_eq(lutf_lw_block_reserve(lw, 1, &f3, &c3), -ENOSPC, "the table is full");
	lutf_lw_block_release(lw, f2, c2);
	cr_assert_eq(lutf_lw_block_reserve(lw, 64, &f3, &c3), 0);
	cr_assert_eq(f3, 64, "a released block is reserved again");
	setenv("LUTF_LABOR_WATCH_LEND", "off", 1);
	lutf_lw_block_release(lw, f3, c3);
	cr_assert_eq(lutf_lw_block_reserve(lw, 1, &f3, &c3), -EPERM, "the switch");
	unsetenv("LUTF_LABOR_WATCH_LEND");
}

Test(lw_block, global_slots_never_in_a_block)
{
	struct lutf_lw_hints h = {0};
	uint32_t first, count, slot, f2, c2, g0 = UINT32_MAX;

	open_lw();
	cr_assert_eq(lutf_lw_block_reserve(lw, 64, &first, &count), 0);
	/* The other three pages, and no more: the block is not the table's. */
	for (int i = 0; i < (int)(SLOTS - count); i++) {
		slot = reg_global(i);
		cr_assert(slot < first || slot >= first + count, "global slot %u in the block",
			  slot);
		if (i == 0)
			g0 = slot;
	}
	cr_assert_eq(lutf_lw_register_hints(lw, getpid(), FAKE_TID + 1000, &h, &slot), -ENOSPC);
	/* Inside the block: only there, and only a reserved range. */
	cr_assert_eq(lutf_lw_register_in(lw, first, count, getpid(), FAKE_TID + 1001, &h, &slot),
		     0);
	cr_assert(slot >= first && slot < first + count);
	cr_assert_eq(
	    lutf_lw_register_in(lw, (first + 64) % SLOTS, 64, getpid(), FAKE_TID + 1002, &h, &slot),
	    -EINVAL, "a range that is not reserved");
	/* The block's page comes back; a page with one global slot in use
	 * stays out of any block. */
	cr_assert_eq(lutf_lw_unregister(lw, slot), 0);
	lutf_lw_block_release(lw, first, count);
	cr_assert_eq(lutf_lw_unregister(lw, g0), 0); /* one slot free in page 1 */
	cr_assert_eq(lutf_lw_block_reserve(lw, 64, &f2, &c2), 0);
	cr_assert_eq(f2, first, "the released page");
	cr_assert_eq(lutf_lw_block_reserve(lw, 64, &f2, &c2), -ENOSPC,
		     "a page with registered slots was reserved");
}

Test(lw_block, lent_fd_maps_one_block_read_only)
{
	struct lutf_lw_hints h = {0};
	const struct labor_watch_slot *view;
	uint32_t first, count, slot;
	uint32_t one = 1;
	int fd, mem;

	open_lw();
	cr_assert_eq(lutf_lw_block_reserve(lw, 64, &first, &count), 0);
	cr_assert_eq(lutf_lw_block_reserve(lw, 64, &first, &count), 0); /* the second page */
	cr_assert_eq(first, 64);
	fd = lutf_lw_state_fd_lend(lw);
	cr_assert_geq(fd, 0);
	view = mmap(NULL, (size_t)count * sizeof(*view), PROT_READ, MAP_SHARED, fd,
		    (off_t)first * (off_t)sizeof(*view));
	cr_assert_neq(view, MAP_FAILED, "mmap of the block: %s", strerror(errno));
	close(fd);
	cr_assert_eq(lutf_lw_register_in(lw, first, count, getpid(), FAKE_TID + 7, &h, &slot), 0);
	cr_assert_eq(view[slot - first].tid, FAKE_TID + 7, "the view shows the loader's write");
	cr_assert_eq(view[slot - first].tgid, (uint32_t)getpid());
	cr_assert_eq(mprotect((void *)view, 4096, PROT_READ | PROT_WRITE), -1);
	cr_assert_eq(errno, EACCES, "mprotect to writable: %s", strerror(errno));
	mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	cr_assert_geq(mem, 0);
	cr_assert_eq(pwrite(mem, &one, sizeof(one), (off_t)(uintptr_t)view), -1,
		     "a FOLL_FORCE write went into the view");
	close(mem);
	munmap((void *)view, (size_t)count * sizeof(*view));
}
