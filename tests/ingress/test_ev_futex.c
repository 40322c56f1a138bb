/* SPDX-License-Identifier: MIT */
/* lutf_ev_futex_wait/cancel on the real loops: io_uring's IORING_OP_FUTEX_WAIT
 * (woken, value already changed, cancelled, process-shared), epoll's -ENOTSUP. */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ingress.h"
#include "require.h"

static struct lutf_ev_loop *l;
static int calls, last_res;

static void teardown(void)
{
	lutf_ev_destroy(l);
	l = NULL;
	calls = 0;
	last_res = 1;
}

TestSuite(ev_futex, .fini = teardown, .timeout = 30);

static void on_wait(void *data, int res)
{
	cr_assert_eq(data, &calls);
	calls++;
	last_res = res;
}

/* A loop whose backend has futex waits (io_uring on Linux >= 6.7). */
static void uring_loop(void)
{
	struct lutf_ev_params p = {
	    .kind = LUTF_EV_URING, .sq_entries = 64, .buffers = 8, .buffer_size = 4096};
	struct lutf_ev_futex *f;
	uint32_t probe = 0;
	char why[160];
	int err = lutf_ev_create(&p, &l, why, sizeof(why));

	(void)why;
	LUTF_REQUIRE("io_uring", !err, "io_uring_setup is refused here");
	err = lutf_ev_futex_wait(l, &probe, 1, false, on_wait, &calls, &f);
	LUTF_REQUIRE("io_uring", err != -ENOTSUP, "the kernel has no IORING_OP_FUTEX_WAIT");
	cr_assert_eq(err, 0);
	for (int i = 0; i < 50 && !calls; i++)
		lutf_ev_poll(l, 100);
	cr_assert_eq(calls, 1);
	cr_assert_eq(last_res, -EAGAIN, "the word was not 1: done at once");
	calls = 0;
}

static long wake(uint32_t *w, bool shared)
{
	return syscall(SYS_futex, w, shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, 8, NULL, NULL, 0);
}

static void woken(uint32_t *w, bool shared)
{
	struct lutf_ev_futex *f;

	*w = 5;
	cr_assert_eq(lutf_ev_futex_wait(l, w, 5, shared, on_wait, &calls, &f), 0);
	for (int i = 0; i < 3; i++)
		lutf_ev_poll(l, 10); /* submitted; the word is still 5: it sleeps */
	cr_assert_eq(calls, 0, "ended without a wake");
	__atomic_store_n(w, 6, __ATOMIC_RELEASE);
	cr_assert_eq(wake(w, shared), 1, "the kernel had no waiter on the word");
	for (int i = 0; i < 50 && !calls; i++)
		lutf_ev_poll(l, 100);
	cr_assert_eq(calls, 1);
	cr_assert_eq(last_res, 0);
}

Test(ev_futex, private_wait_is_woken)
{
	static uint32_t w;

	uring_loop();
	woken(&w, false);
}

Test(ev_futex, shared_wait_is_woken_through_a_shared_mapping)
{
	uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(w, MAP_FAILED);
	uring_loop();
	woken(w, true);
	munmap(w, 4096);
}

Test(ev_futex, cancel_stops_the_wait_and_its_callback)
{
	static uint32_t w = 9;
	struct lutf_ev_futex *f;

	uring_loop();
	cr_assert_eq(lutf_ev_futex_wait(l, &w, 9, false, on_wait, &calls, &f), 0);
	lutf_ev_poll(l, 10);
	lutf_ev_futex_cancel(f);
	/* Cancelled before returning: nobody waits on the word any more. */
	w = 10;
	cr_assert_eq(wake(&w, false), 0, "still waiting after lutf_ev_futex_cancel");
	for (int i = 0; i < 5; i++)
		lutf_ev_poll(l, 10);
	cr_assert_eq(calls, 0, "a cancelled wait called back");
	/* The loop still works. */
	cr_assert_eq(lutf_ev_futex_wait(l, &w, 9, false, on_wait, &calls, &f), 0);
	for (int i = 0; i < 50 && !calls; i++)
		lutf_ev_poll(l, 100);
	cr_assert_eq(calls, 1);
	cr_assert_eq(last_res, -EAGAIN);
}

Test(ev_futex, epoll_has_none)
{
	struct lutf_ev_params p = {.kind = LUTF_EV_EPOLL};
	struct lutf_ev_futex *f = NULL;
	uint32_t w = 0;

	cr_assert_eq(lutf_ev_create(&p, &l, NULL, 0), 0);
	cr_assert_eq(lutf_ev_futex_wait(l, &w, 0, false, on_wait, &calls, &f), -ENOTSUP);
	cr_assert_null(f);
}
