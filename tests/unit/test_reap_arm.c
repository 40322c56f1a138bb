/* SPDX-License-Identifier: MIT */
/* lutf_runtime_reap_arm/disarm: the reaper's sleep for callers that wait on
 * the futex word themselves (lutfd's io_uring loop). */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine_util.h"
#include "host.h"
#include "internal.h"

LUTF_FUNCTION(t_noop)
{
	return 0;
}

static struct lutf_runtime *rt;
static uint32_t noop;

static void setup(void)
{
	struct lutf_config c = test_config(1, 1);

	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
	cr_assert_eq(lutf_runtime_add_fn(rt, "noop", t_noop, NULL, &noop), 0);
}

static void teardown(void)
{
	if (rt)
		lutf_runtime_destroy(rt);
	rt = NULL;
}

/* Sleep in the kernel on the armed word, as lutfd's loop does, until it is
 * no longer val or 5 s passed. Returns true when it changed. */
static bool wait_word(uint32_t *w, uint32_t val, bool shared)
{
	uint64_t until = test_now_ns() + 5000000000ull;

	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == val && test_now_ns() < until) {
		struct timespec ts = {0, 100000000};

		syscall(SYS_futex, w, shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
	}
	return __atomic_load_n(w, __ATOMIC_ACQUIRE) != val;
}

TestSuite(reap_arm, .init = setup, .fini = teardown, .timeout = 60);

Test(reap_arm, armed_word_changes_when_a_completion_is_posted)
{
	struct lutf_completion out[4];
	uint32_t *w = NULL, val = 0;
	bool shared = true;

	cr_assert_eq(lutf_runtime_reap_arm(rt, &w, &val, &shared), 0, "nothing ready: armed");
	cr_assert_not_null(w);
	cr_assert_eq(*w, val);
	cr_assert_eq(lutf_runtime_reap(rt, out, 4, 0), 0);
	cr_assert_eq(lutf_runtime_submit(rt, noop, &(struct lutf_request){0}, 42), 0);
	cr_assert(wait_word(w, val, shared), "the completion did not ring the armed word");
	lutf_runtime_reap_disarm(rt);
	cr_assert_eq(lutf_runtime_reap(rt, out, 4, 0), 1);
	cr_assert_eq(out[0].user_data, 42);
	cr_assert_eq(out[0].result.status, LUTF_STATUS_OK);
	lutf_result_release(&out[0].result);
}

Test(reap_arm, ready_completions_refuse_to_arm_until_reaped)
{
	struct lutf_completion out[4];
	uint32_t *w, val, val2;
	bool shared;

	cr_assert_eq(lutf_runtime_reap_arm(rt, &w, &val, &shared), 0);
	cr_assert_eq(lutf_runtime_submit(rt, noop, &(struct lutf_request){0}, 7), 0);
	cr_assert(wait_word(w, val, shared));
	lutf_runtime_reap_disarm(rt);
	/* The completion is in the ring, not reaped: waiting now could sleep forever. */
	cr_assert_eq(lutf_runtime_reap_arm(rt, &w, &val2, &shared), -EAGAIN);
	cr_assert_eq(lutf_runtime_reap_arm(rt, &w, &val2, &shared), -EAGAIN,
		     "-EAGAIN must leave it unarmed, and stay so while ready");
	cr_assert_eq(lutf_runtime_reap(rt, out, 4, 0), 1);
	cr_assert_eq(out[0].user_data, 7);
	lutf_result_release(&out[0].result);
	cr_assert_eq(lutf_runtime_reap_arm(rt, &w, &val2, &shared), 0, "drained: arms again");
	lutf_runtime_reap_disarm(rt);
}

Test(reap_arm, many_completions_none_lost_across_arm_cycles)
{
	enum { N = 2000 };
	static struct lutf_completion out[256];
	static bool seen[N];
	int got = 0, sent = 0;
	uint64_t until = test_now_ns() + 20000000000ull;

	while (got < N && test_now_ns() < until) {
		uint32_t *w, val;
		bool shared;
		int n;

		while (sent < N && sent - got < 64 &&
		       !lutf_runtime_submit(rt, noop, &(struct lutf_request){0}, (uint64_t)sent))
			sent++;
		cr_assert_gt(sent, got);
		if (!lutf_runtime_reap_arm(rt, &w, &val, &shared)) {
			/* Armed with calls in flight: their completions must ring it. */
			cr_assert(wait_word(w, val, shared), "an armed wait was never woken");
			lutf_runtime_reap_disarm(rt);
		}
		while ((n = lutf_runtime_reap(rt, out, 256, 0)) > 0) {
			for (int i = 0; i < n; i++) {
				cr_assert_lt(out[i].user_data, (uint64_t)N);
				cr_assert(!seen[out[i].user_data], "completed twice");
				seen[out[i].user_data] = true;
				lutf_result_release(&out[i].result);
			}
			got += n;
		}
	}
	cr_assert_eq(got, N, "completions lost (or an armed wait never woke)");
}

/* Waits up to 5 s for pred over the region; true when it held. */
#define WAIT_FOR(pred)                                                                             \
	({                                                                                         \
		uint64_t until_ = test_now_ns() + 5000000000ull;                                   \
		while (!(pred) && test_now_ns() < until_)                                          \
			test_sleep_ms(1);                                                          \
		(bool)(pred);                                                                      \
	})

Test(reap_arm, one_ring_per_arm_however_many_completions)
{
	enum { N = 16 };
	struct lutf_completion out[N];
	struct lutf_region_hdr *h = rt->r.hdr;
	uint32_t *w, val, val2;
	bool shared;
	int got = 0;

	cr_assert_eq(lutf_runtime_reap_arm(rt, &w, &val, &shared), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(lutf_runtime_submit(rt, noop, &(struct lutf_request){0}, (uint64_t)i),
			     0);
	cr_assert(WAIT_FOR(lutf_ring_count(&rt->r.cq) == N), "the %d calls did not complete", N);
	/* Every post found the reaper armed; only the first rang. */
	cr_assert_eq(__atomic_load_n(w, __ATOMIC_ACQUIRE), val + 1,
		     "the bell moved %u times for %d completions in one armed wait",
		     __atomic_load_n(w, __ATOMIC_ACQUIRE) - val, N);
	cr_assert_eq(__atomic_load_n(&h->cq_rung, __ATOMIC_ACQUIRE), 1);
	lutf_runtime_reap_disarm(rt);
	while (got < N) {
		int n = lutf_runtime_reap(rt, out, N, 1000);

		cr_assert_gt(n, 0);
		for (int i = 0; i < n; i++)
			lutf_result_release(&out[i].result);
		got += n;
	}
	/* Armed again: the word is cleared, and the next completion rings. */
	cr_assert_eq(lutf_runtime_reap_arm(rt, &w, &val2, &shared), 0);
	cr_assert_eq(__atomic_load_n(&h->cq_rung, __ATOMIC_ACQUIRE), 0);
	cr_assert_eq(lutf_runtime_submit(rt, noop, &(struct lutf_request){0}, 99), 0);
	cr_assert(wait_word(w, val2, shared), "a re-armed wait was not rung");
	lutf_runtime_reap_disarm(rt);
	cr_assert_eq(lutf_runtime_reap(rt, out, N, 1000), 1);
	lutf_result_release(&out[0].result);
}

/* The submit plug: the Bricks are queued at once, the sleeping Labor is woken
 * only at the unplug. */
TestSuite(plug, .timeout = 60);

Test(plug, a_parked_labor_wakes_at_the_unplug_not_before)
{
	enum { N = 8 };
	struct lutf_config c = test_config(1, 1);
	struct lutf_completion out[N];
	struct lutf_runtime *p;
	struct lutf_labor *l;
	uint32_t id;
	int got = 0;

	c.spin_ns = 0; /* park at once */
	/* The Supervisor moves a Cart whose Bricks wait past the grace period
	 * (and grows the pool for it): not within this test's 50 ms. */
	c.grace_ns = 2000000000u;
	c.labors_max = 1;
	cr_assert_eq(lutf_runtime_create(&c, &p), 0);
	cr_assert_eq(lutf_runtime_add_fn(p, "noop", t_noop, NULL, &id), 0);
	/* One call, so the Labor owns the Cart; then it parks. */
	cr_assert_eq(
	    lutf_runtime_invoke(p, id, &(struct lutf_request){0}, &(struct lutf_result){0}), 0);
	l = &p->r.labors[0];
	cr_assert(WAIT_FOR(__atomic_load_n(&l->sleeping, __ATOMIC_SEQ_CST) == 1),
		  "the Labor did not park");
	/* 'sleeping' is set before the Labor's last look at its Cart (a push
	 * in that window is run without a wake-up): let it reach the futex. */
	test_sleep_ms(20);
	lutf_runtime_plug(true);
	for (int i = 0; i < N; i++)
		cr_assert_eq(lutf_runtime_submit(p, id, &(struct lutf_request){0}, (uint64_t)i), 0);
	test_sleep_ms(50);
	cr_assert_eq(lutf_ring_count(&p->r.cart_q[0]), N, "a plugged submit woke the Labor");
	cr_assert_eq(__atomic_load_n(&l->sleeping, __ATOMIC_SEQ_CST), 1);
	lutf_runtime_plug(false);
	while (got < N) {
		int n = lutf_runtime_reap(p, out, N, 5000);

		cr_assert_gt(n, 0, "the unplug did not wake the Labor");
		for (int i = 0; i < n; i++) {
			cr_assert_eq(out[i].result.status, LUTF_STATUS_OK);
			lutf_result_release(&out[i].result);
		}
		got += n;
	}
	lutf_runtime_destroy(p);
}

Test(plug, a_forgotten_runtime_is_not_kicked_after_its_destroy)
{
	struct lutf_config c = test_config(1, 1);
	struct lutf_runtime *p;
	uint32_t id;

	cr_assert_eq(lutf_runtime_create(&c, &p), 0);
	cr_assert_eq(lutf_runtime_add_fn(p, "noop", t_noop, NULL, &id), 0);
	lutf_runtime_plug(true);
	cr_assert_eq(lutf_runtime_submit(p, id, &(struct lutf_request){0}, 1), 0);
	lutf_runtime_plug_forget(p);
	lutf_runtime_destroy(p);
	/* Would touch the destroyed runtime's Labor (ASan: use after free). */
	lutf_runtime_plug(false);
	/* And the plug still works for the next runtime. */
	cr_assert_eq(lutf_runtime_create(&c, &p), 0);
	cr_assert_eq(lutf_runtime_add_fn(p, "noop", t_noop, NULL, &id), 0);
	lutf_runtime_plug(true);
	cr_assert_eq(lutf_runtime_submit(p, id, &(struct lutf_request){0}, 2), 0);
	lutf_runtime_plug(false);
	{
		struct lutf_completion out[1];

		cr_assert_eq(lutf_runtime_reap(p, out, 1, 5000), 1);
		cr_assert_eq(out[0].user_data, 2);
		lutf_result_release(&out[0].result);
	}
	lutf_runtime_destroy(p);
}
