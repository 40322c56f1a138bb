/* SPDX-License-Identifier: MIT */
/*
 * A test app for the direct take in lutfd's workers: a call that blocks
 * (nap), a call queued behind it (quick), a look at the view lutfd lent this
 * worker (view: its mapping, a write to it, the slots it shows), and a liar
 * (lie) that rewrites its own Labor's Cart word and the spinner word before
 * it blocks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lutf/function.h>

#include <linux/types.h>
#include "bpf/labor_watch.h" /* struct labor_watch_slot: what the view shows */
#include "region.h"	     /* test-only: the liar aims at its own Labor's words */

LUTF_APP_ABI;

/* Blocks in the kernel for 20 ms (a sleep: the probe sees a block). */
LUTF_FUNCTION(nap)
{
	usleep(20000);
	return lutf_write(call, "n", 1);
}

LUTF_FUNCTION(quick)
{
	return lutf_write(call, "q", 1);
}

/* The input as a string (at most cap - 1 bytes), or false. */
static bool input_str(struct lutf_call *call, char *buf, size_t cap)
{
	if (call->input_len >= cap)
		return false;
	memcpy(buf, call->input, call->input_len);
	buf[call->input_len] = 0;
	return true;
}

static sigjmp_buf poke_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(poke_jmp, 1);
}

/* A write to addr that must fault (the mapping is PROT_READ): "faulted", or
 * "wrote". */
static __attribute__((noinline)) const char *try_write(unsigned long addr)
{
	struct sigaction sa = {.sa_handler = on_segv}, old;
	const char *volatile res = "wrote";

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(poke_jmp, 1) == 0)
		*(volatile uint32_t *)addr = 0;
	else
		res = "faulted";
	sigaction(SIGSEGV, &old, NULL);
	return res;
}

/*
 * The view at the input's "lo hi" (hex; the test read them from outside: a
 * confined tenant may not read /proc/self/maps): "mprotect_errno write
 * procmem own foreign", where write is "faulted" or "wrote", procmem the errno
 * of a write through /proc/self/mem (0: it wrote; negative: no open), own and
 * foreign the slots in use whose tgid is this process or not.
 */
LUTF_FUNCTION(view)
{
	unsigned long lo, hi;
	int mp_err = 0, pm_err = 0, own = 0, foreign = 0, fd, n;
	const char *wrote;
	uint32_t one = 1;
	char in[64], out[160];

	if (!input_str(call, in, sizeof(in)) || sscanf(in, "%lx %lx", &lo, &hi) != 2 || hi <= lo)
		return lutf_fail(call, "input"), 1;
	if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE))
		mp_err = errno;
	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, &one, sizeof(one), (off_t)lo) != (ssize_t)sizeof(one))
		pm_err = fd < 0 ? -errno : errno;
	if (fd >= 0)
		close(fd);
	wrote = try_write(lo + offsetof(struct labor_watch_slot, cart));
	for (const struct labor_watch_slot *s = (const void *)lo; (unsigned long)(s + 1) <= hi;
	     s++) {
		if (!s->tid)
			continue;
		if (s->tgid == (uint32_t)getpid())
			own++;
		else
			foreign++;
	}
	n = snprintf(out, sizeof(out), "%d %s %d %d %d", mp_err, wrote, pm_err, own, foreign);
	return lutf_write(call, out, (size_t)n);
}

/*
 * The liar: its own Labor's Cart word becomes the input's number (a Cart of
 * another runtime, one out of range), the spinner word the input's second
 * number (another tenant's Labor tid), then it blocks 5 ms and puts its
 * Cart word back, so that its own worker goes on. Input: "region cart tid",
 * region in hex (where this worker maps it; the test read it from outside).
 */
LUTF_FUNCTION(lie)
{
	unsigned long lo;
	char in[64];
	struct lutf_region_hdr *h;
	struct lutf_labor *me = NULL;
	unsigned cart = 0, tid = 0;
	uint32_t keep;

	if (!input_str(call, in, sizeof(in)) || sscanf(in, "%lx %u %u", &lo, &cart, &tid) != 3)
		return lutf_fail(call, "input"), 1;
	h = (struct lutf_region_hdr *)lo;
	for (uint32_t i = 0; i < h->cfg.labors_max; i++) {
		struct lutf_labor *l = (struct lutf_labor *)(lo + h->off_labors) + i;

		if (l->tid == (int32_t)syscall(SYS_gettid))
			me = l;
	}
	if (!me)
		return lutf_fail(call, "no labor"), 1;
	keep = __atomic_load_n(&me->cart, __ATOMIC_RELAXED);
	__atomic_store_n(&me->cart, cart, __ATOMIC_RELAXED);
	if (h->spin_addr)
		__atomic_store_n((uint32_t *)(uintptr_t)h->spin_addr, tid, __ATOMIC_RELAXED);
	usleep(5000);
	__atomic_store_n(&me->cart, keep, __ATOMIC_RELAXED);
	return lutf_write(call, "lied", 4);
}
