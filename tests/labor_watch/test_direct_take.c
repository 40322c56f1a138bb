/* SPDX-License-Identifier: MIT */
/*
 * The direct take (issue #16 item 2): a FREE Labor spinning takes a blocked
 * Labor's Cart from the block word the sched_switch probe stamps in the
 * region, with no Supervisor in the loop. Needs root and BPF (else skipped, or
 * failed when LUTF_TEST_REQUIRE names them). Runs with tp_btf and raw_tp.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "engine_util.h"
#include "require.h"
#include "internal.h"

static int gate;
static int entered;
static uint32_t ran_on[2]; /* tids the echo Bricks ran on (first two seen) */

LUTF_FUNCTION(w_gate)
{
	__atomic_add_fetch(&entered, 1, __ATOMIC_RELAXED);
	gate_wait(&gate);
	return 0;
}

LUTF_FUNCTION(w_echo)
{
	uint32_t tid = (uint32_t)syscall(SYS_gettid), none = 0;

	if (!__atomic_compare_exchange_n(&ran_on[0], &none, tid, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED) &&
	    none != tid) {
		none = 0;
		__atomic_compare_exchange_n(&ran_on[1], &none, tid, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	}
	return lutf_write(call, call->input, call->input_len);
}

/* Sleeps 200 us inside the Brick: a block the probe sees. */
LUTF_FUNCTION(w_nap)
{
	usleep(200);
	return lutf_write(call, call->input, call->input_len);
}

static struct lutf_runtime *rt;
static bool sup_stopped;

static void teardown(void)
{
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	if (sup_stopped)
		pthread_mutex_unlock(&rt->sup_lock);
	sup_stopped = false;
	if (rt)
		lutf_runtime_destroy(rt);
	rt = NULL;
	gate = 0;
	entered = 0;
	memset(ran_on, 0, sizeof(ran_on));
}

TestSuite(direct_take, .fini = teardown, .timeout = 60);

/* A runtime in the BPF mode whose FREE Labors spin spin_ns before parking;
 * returns once every Labor is registered with the probe. */
static void start(uint32_t carts, uint32_t labors, uint32_t grace_ns, uint32_t spin_ns)
{
	struct lutf_config c = test_config(carts, labors);
	struct lutf_runtime_stats st;

	LUTF_REQUIRE("root", lutf_test_is_root(), "loading BPF needs root");
	c.labors_max = labors;
	c.watch = LUTF_WATCH_BPF;
	c.grace_ns = grace_ns;
	c.spin_ns = spin_ns;
	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
	lutf_runtime_stats(rt, &st);
	LUTF_REQUIRE("bpf", st.watch == LUTF_WATCH_BPF, "labor_watch did not load (see stderr)");
	for (int i = 0; i < 5000; i++) {
		lutf_runtime_stats(rt, &st);
		if (st.labors_watched == labors)
			break;
		test_sleep_ms(1);
	}
	cr_assert_eq(st.labors_watched, labors, "Labors not registered with labor_watch");
}

static uint64_t takes(void)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < rt->r.cfg.labors_max; i++)
		n += __atomic_load_n(&rt->r.labors[i].takes, __ATOMIC_RELAXED);
	return n;
}

static void wait_entered(int n)
{
	for (int i = 0; i < 5000 && __atomic_load_n(&entered, __ATOMIC_RELAXED) < n; i++)
		test_sleep_ms(1);
	cr_assert_geq(entered, n);
}

/* The Supervisor is stopped (its pass over this runtime waits on sup_lock,
 * which the test holds): only the spinning Labor can move the Cart. Without
 * the direct take the echo Bricks wait behind the gate until the reap times
 * out. */
Test(direct_take, spinning_labor_serves_a_blocked_cart_while_the_supervisor_is_stopped)
{
	enum { N = 200 };
	struct lutf_completion out[N];
	uint32_t g, e;

	start(1, 2, 50000, 4000000000u); /* Labor 1 spins for 4 s */
	cr_assert_eq(lutf_runtime_add_fn(rt, "gate", w_gate, NULL, &g), 0);
	cr_assert_eq(lutf_runtime_add_fn(rt, "echo", w_echo, NULL, &e), 0);
	pthread_mutex_lock(&rt->sup_lock);
	sup_stopped = true;
	cr_assert_eq(lutf_runtime_submit(rt, g, &(struct lutf_request){0}, 1000), 0);
	wait_entered(1);
	for (int i = 0; i < N; i++)
		cr_assert_eq(
		    lutf_runtime_submit(rt, e, &(struct lutf_request){.input = "x", .input_len = 1},
					(uint64_t)i),
		    0);
	cr_assert_eq(reap_all(rt, out, N, 3000), N,
		     "Bricks behind a blocked Labor not served without the Supervisor");
	for (int i = 0; i < N; i++) {
		cr_assert_eq(out[i].result.status, LUTF_STATUS_OK);
		cr_assert_lt(out[i].user_data, N);
		lutf_result_release(&out[i].result);
	}
	cr_assert_geq(takes(), 1, "no direct take counted");
	cr_assert_eq(__atomic_load_n(&rt->n_rebinds, __ATOMIC_RELAXED), 0,
		     "the stopped Supervisor moved the Cart");
	cr_assert_eq(__atomic_load_n(&rt->r.carts[0].owner, __ATOMIC_RELAXED), 2,
		     "the Cart is not Labor 1's");
	pthread_mutex_unlock(&rt->sup_lock);
	sup_stopped = false;
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	cr_assert_eq(reap_all(rt, out, 1, 2000), 1);
	cr_assert_eq(out[0].user_data, 1000);
}

/* Blocked Labors and spinning ones, with the Supervisor racing them (grace 0):
 * every Brick completes once, both binders' CASes leave one owner per Cart
 * that knows it, and no Labor holds a Cart it does not own. */
Test(direct_take, racing_takers_leave_one_owner_and_lose_nothing)
{
	enum { N = 2000 };
	static struct lutf_completion out[N];
	static uint8_t seen[N];
	struct lutf_runtime_stats st;
	bool consistent = false;
	uint32_t f;

	start(2, 4, 0, 200000000u);
	cr_assert_eq(lutf_runtime_add_fn(rt, "nap", w_nap, NULL, &f), 0);
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < N; i++)
		cr_assert_eq(
		    lutf_runtime_submit(rt, f, &(struct lutf_request){.input = "y", .input_len = 1},
					(uint64_t)i),
		    0);
	cr_assert_eq(reap_all(rt, out, N, 20000), N, "Bricks lost");
	for (int i = 0; i < N; i++) {
		cr_assert_eq(out[i].result.status, LUTF_STATUS_OK);
		cr_assert_lt(out[i].user_data, N);
		cr_assert_eq(seen[out[i].user_data]++, 0, "a Brick completed twice");
		lutf_result_release(&out[i].result);
	}
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.submitted, st.completed);
	cr_assert_geq(takes() + st.rebinds, 1, "nothing moved a Cart off a blocked Labor");
	/* Quiet now: every Labor soon notices a lost Cart. */
	for (int t = 0; t < 3000 && !consistent; t++) {
		uint32_t owned[4] = {0};

		consistent = true;
		for (uint32_t c = 0; c < 2; c++) {
			uint32_t o = __atomic_load_n(&rt->r.carts[c].owner, __ATOMIC_ACQUIRE);

			cr_assert(o >= 1 && o <= 4, "Cart %u owner %u", c, o);
			cr_assert_eq(owned[o - 1]++, 0, "Labor %u owns two Carts", o - 1);
			if (__atomic_load_n(&rt->r.labors[o - 1].cart, __ATOMIC_ACQUIRE) != c)
				consistent = false; /* not bound yet, or an orphan */
		}
		for (uint32_t i = 0; i < 4; i++) {
			uint32_t c = __atomic_load_n(&rt->r.labors[i].cart, __ATOMIC_ACQUIRE);

			if (c != LUTF_NONE && (c >= 2 || rt->r.carts[c].owner != i + 1))
				consistent = false; /* holds a Cart it lost: not noticed yet */
		}
		if (!consistent)
			test_sleep_ms(1);
	}
	cr_assert(consistent, "a Cart's owner does not know it, or a Labor holds a lost Cart");
}
