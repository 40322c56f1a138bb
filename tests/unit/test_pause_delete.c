/* SPDX-License-Identifier: MIT */
/* Pause holds Bricks and resume releases them in order; delete fails the
 * queued ones and never unloads code a Labor is running. */
#include <criterion/criterion.h>
#include <string.h>

#include "engine_util.h"

static int gate;
static int entered;
static uint32_t order[4096];
static uint32_t n_order;

LUTF_FUNCTION(t_record)
{
	uint32_t v;

	memcpy(&v, call->input, sizeof(v));
	order[__atomic_fetch_add(&n_order, 1, __ATOMIC_RELAXED)] = v;
	return 0;
}

LUTF_FUNCTION(t_gate)
{
	__atomic_add_fetch(&entered, 1, __ATOMIC_RELAXED);
	gate_wait(&gate);
	return lutf_write(call, "done", 4);
}

static struct lutf_runtime *rt;

static void teardown(void)
{
	/* Open the gate first: a failed assertion may have left a Brick in it,
	 * and destroy waits for running Bricks. */
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	if (rt)
		lutf_runtime_destroy(rt);
	rt = NULL;
	gate = 0;
	entered = 0;
	n_order = 0;
}

TestSuite(pause_delete, .fini = teardown, .timeout = 60);

static void start(uint32_t hold_max)
{
	struct lutf_config c = test_config(1, 2);

	c.hold_max = hold_max;
	c.watch = LUTF_WATCH_OFF;
	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
}

Test(pause_delete, pause_holds_and_resume_releases_in_order)
{
	enum { N = 500 };
	struct lutf_completion out[N];
	struct lutf_runtime_stats st;
	uint32_t id;

	start(1024);
	cr_assert_eq(lutf_runtime_add_fn(rt, "rec", t_record, NULL, &id), 0);
	cr_assert_eq(lutf_runtime_pause(rt, id), 0);
	cr_assert_eq(lutf_runtime_pause(rt, id), -EALREADY);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(
		    lutf_runtime_submit(
			rt, id, &(struct lutf_request){.input = &i, .input_len = sizeof(i)}, i),
		    0);
	test_sleep_ms(50);
	cr_assert_eq(lutf_runtime_reap(rt, out, N, 0), 0, "a paused function ran");
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.held, N);
	cr_assert_eq(lutf_runtime_resume(rt, id), 0);
	cr_assert_eq(lutf_runtime_resume(rt, id), -EALREADY);
	cr_assert_eq(reap_all(rt, out, N, 5000), N);
	cr_assert_eq(n_order, N);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(order[i], i, "released out of order at %u", i);
}

Test(pause_delete, queued_bricks_of_a_paused_function_are_held_too)
{
	enum { N = 100 };
	struct lutf_completion out[N + 1];
	uint32_t g, id;

	start(1024);
	cr_assert_eq(lutf_runtime_add_fn(rt, "gate", t_gate, NULL, &g), 0);
	cr_assert_eq(lutf_runtime_add_fn(rt, "rec", t_record, NULL, &id), 0);
	/* The only Cart's Labor is stuck, so these stay queued on the Cart. */
	cr_assert_eq(lutf_runtime_submit(rt, g, &(struct lutf_request){0}, 9999), 0);
	while (!__atomic_load_n(&entered, __ATOMIC_RELAXED))
		test_sleep_ms(1);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(
		    lutf_runtime_submit(
			rt, id, &(struct lutf_request){.input = &i, .input_len = sizeof(i)}, i),
		    0);
	cr_assert_eq(lutf_runtime_pause(rt, id), 0);
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	cr_assert_eq(reap_all(rt, out, 1, 2000), 1);
	cr_assert_eq(out[0].user_data, 9999, "the running Brick finishes");
	test_sleep_ms(50);
	cr_assert_eq(lutf_runtime_reap(rt, out, N, 0), 0, "a paused function ran");
	cr_assert_eq(lutf_runtime_resume(rt, id), 0);
	cr_assert_eq(reap_all(rt, out, N, 5000), N);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(order[i], i, "released out of order at %u", i);
}

Test(pause_delete, hold_queue_is_bounded)
{
	struct lutf_completion out[8];
	struct lutf_result res;
	uint32_t id, v = 0;

	start(4);
	cr_assert_eq(lutf_runtime_add_fn(rt, "rec", t_record, NULL, &id), 0);
	lutf_runtime_pause(rt, id);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(
		    lutf_runtime_submit(
			rt, id, &(struct lutf_request){.input = &v, .input_len = sizeof(v)}, 0),
		    0);
	cr_assert_eq(lutf_runtime_submit(
			 rt, id, &(struct lutf_request){.input = &v, .input_len = sizeof(v)}, 0),
		     -EBUSY);
	lutf_runtime_invoke(rt, id, &(struct lutf_request){.input = &v, .input_len = sizeof(v)},
			    &res);
	cr_assert_eq(res.status, LUTF_STATUS_PAUSED);
	lutf_runtime_resume(rt, id);
	cr_assert_eq(reap_all(rt, out, 4, 2000), 4, "accepted Bricks lost");
}

Test(pause_delete, delete_fails_queued_lets_running_finish)
{
	enum { N = 50 };
	struct lutf_completion out[N + 1];
	struct lutf_result res;
	uint32_t g, running_seen = 0, deleted = 0;

	start(1024);
	cr_assert_eq(lutf_runtime_add_fn(rt, "gate", t_gate, NULL, &g), 0);
	for (int i = 0; i < N + 1; i++)
		cr_assert_eq(lutf_runtime_submit(rt, g, &(struct lutf_request){0}, (uint64_t)i), 0);
	while (!__atomic_load_n(&entered, __ATOMIC_RELAXED))
		test_sleep_ms(1);
	cr_assert_eq(lutf_runtime_delete(rt, g), 0);
	cr_assert_eq(lutf_runtime_delete(rt, g), -ENOENT);
	lutf_runtime_invoke(rt, g, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_UNKNOWN_FUNCTION);
	cr_assert_eq(lutf_runtime_lookup(rt, "gate", NULL), -ENOENT);
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	cr_assert_eq(reap_all(rt, out, N + 1, 5000), N + 1, "a Brick was never answered");
	for (int i = 0; i < N + 1; i++) {
		if (out[i].result.status == LUTF_STATUS_OK) {
			running_seen++;
			cr_assert_arr_eq(out[i].result.output, "done", 4);
			lutf_result_release(&out[i].result);
		} else {
			cr_assert_eq(out[i].result.status, LUTF_STATUS_DELETED);
			deleted++;
		}
	}
	cr_assert_eq(running_seen, 1, "only the running Brick may finish");
	cr_assert_eq(deleted, N);
	/* The name is free again. */
	cr_assert_eq(lutf_runtime_add_fn(rt, "gate", t_gate, NULL, &g), 0);
}

Test(pause_delete, delete_of_a_paused_function_fails_held_bricks)
{
	struct lutf_completion out[8];
	uint32_t id, v = 1;

	start(1024);
	cr_assert_eq(lutf_runtime_add_fn(rt, "rec", t_record, NULL, &id), 0);
	lutf_runtime_pause(rt, id);
	for (int i = 0; i < 5; i++)
		lutf_runtime_submit(rt, id,
				    &(struct lutf_request){.input = &v, .input_len = sizeof(v)}, 0);
	cr_assert_eq(lutf_runtime_delete(rt, id), 0);
	cr_assert_eq(reap_all(rt, out, 5, 2000), 5);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(out[i].result.status, LUTF_STATUS_DELETED);
	cr_assert_eq(n_order, 0);
}
