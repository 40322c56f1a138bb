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
