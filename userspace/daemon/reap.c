/* SPDX-License-Identifier: MIT */
/*
 * How a tenant's completions reach the main thread. On io_uring the loop
 * reaps them itself: it sleeps on the tenant's completion bell with
 * IORING_OP_FUTEX_WAIT, so a completion costs no reaper wake-up, queue or
 * eventfd. Otherwise (epoll, a kernel without the opcode, LUTF_REAP=thread) a
 * reaper thread per tenant blocks in lutf_runtime_reap and hands completions
 * over through dispatch.c's queue.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lutfd.h"

static void *reaper_main(void *arg)
{
	struct lutfd_tenant *t = arg;
	static __thread struct lutf_completion cs[64];

	/* Acquire: pairs with the release store in lutfd_tenants_stop. */
	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		int n = lutf_runtime_reap(t->rt, cs, 64, 100);

		if (n > 0)
			lutfd_completions_push(t, cs, n);
	}
	return NULL;
}

/*
 * Reaping on the main thread. Invariant: while t->reap_wait is set, the engine
 * counts one sleeper for it (lutf_runtime_reap_arm), so every completion
 * rings the bell and ends the wait; the wait's callback disarms, reaps
 * everything ready and arms again. Each pass is bounded: nothing is
 * submitted meanwhile, so it reaps at most what was in flight.
 */
enum { REAP_UNTRIED, REAP_FUTEX, REAP_THREAD };
static int reap_mode = REAP_UNTRIED;

#define REAP_BATCH 256

const char *lutfd_reap_mode(void)
{
	return reap_mode == REAP_FUTEX ? "io_uring futex" : "reaper thread";
}

static void reap_ready(struct lutfd_tenant *t)
{
	static struct lutf_completion cs[REAP_BATCH];
	int n;

	do {
		n = lutf_runtime_reap(t->rt, cs, REAP_BATCH, 0);
		if (n > 0)
			lutfd_completions_take(t, cs, n);
	} while (n == REAP_BATCH);
	/* Entries the engine refused (each a region fault) return no
	 * completion: act on them now, not at the next tick. A worker that
	 * floods its completion ring is killed here, which ends the flood. */
	lutfd_fault_check(t);
}

static void reap_wake(void *data, int res);

/* Arm t's futex wait, reaping first what is ready. Returns 0 or -errno
 * (-ENOTSUP: this loop has no futex waits). */
static int reap_arm(struct lutfd_tenant *t)
{
	uint32_t *word, val;
	bool shared;
	int err;

	while ((err = lutf_runtime_reap_arm(t->rt, &word, &val, &shared)) == -EAGAIN)
		reap_ready(t);
	if (err)
		return err;
	err = lutf_ev_futex_wait(g_loop, word, val, shared, reap_wake, t, &t->reap_wait);
	if (err) {
		t->reap_wait = NULL;
		lutf_runtime_reap_disarm(t->rt);
	}
	return err;
}

/* Returns 0 or -errno. */
static int reaper_start(struct lutfd_tenant *t)
{
	int err;

	__atomic_store_n(&t->stop, 0, __ATOMIC_RELAXED);
	err = pthread_create(&t->reaper, NULL, reaper_main, t);
	if (err)
		return -err;
	t->reaper_on = true;
	return 0;
}

static void reap_wake(void *data, int res)
{
	struct lutfd_tenant *t = data;
	int err = res;

	t->reap_wait = NULL;
	lutf_runtime_reap_disarm(t->rt);
	reap_ready(t);
	/* 0: woken; -EAGAIN: the bell had moved on; -EINTR: a signal. */
	if (!res || res == -EAGAIN || res == -EINTR)
		err = reap_arm(t);
	if (!err)
		return;
	lutfd_log("tenant %s: io_uring futex wait failed (%s); a reaper thread takes over", t->name,
		  strerror(-err));
	reap_mode = REAP_THREAD;
	err = reaper_start(t);
	if (err)
		lutfd_log("tenant %s: no reaper thread: %s", t->name, strerror(-err));
}

/* The first tenant decides: futex waits when the loop has them (and
 * LUTF_REAP is not "thread"), else reaper threads. Returns 0 or -errno. */
int lutfd_reap_start(struct lutfd_tenant *t)
{
	const char *want = getenv("LUTF_REAP");
	int err;

	if (reap_mode == REAP_UNTRIED && want && !strcmp(want, "thread"))
		reap_mode = REAP_THREAD;
	if (reap_mode != REAP_THREAD) {
		bool first = reap_mode == REAP_UNTRIED;

		err = reap_arm(t);
		if (!err) {
			if (first)
				lutfd_log("completions: io_uring futex waits on the main thread");
			reap_mode = REAP_FUTEX;
			return 0;
		}
		lutfd_log("completions: reaper threads (io_uring futex wait: %s)", strerror(-err));
		reap_mode = REAP_THREAD;
	}
	return reaper_start(t);
}

/* Before the runtime goes: no futex wait names its bell any more, and no
 * plugged wake-up its Labors. */
void lutfd_reap_stop(struct lutfd_tenant *t)
{
	lutf_runtime_plug_forget(t->rt); /* no deferred wake-up names it */
	if (!t->reap_wait)
		return;
	lutf_ev_futex_cancel(t->reap_wait);
	t->reap_wait = NULL;
	lutf_runtime_reap_disarm(t->rt);
}
