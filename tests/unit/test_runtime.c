/* SPDX-License-Identifier: MIT */
/* The in-process API: invoke, submit/reap, rejections, deadlines, migration. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "engine_util.h"

static int gate;
static int entered;

LUTF_FUNCTION(t_echo)
{
	const char *pre = lutf_config(call, "prefix");

	if (pre)
		lutf_write(call, pre, strlen(pre));
	lutf_set_content_type(call, "text/x-echo");
	return lutf_write(call, call->input, call->input_len);
}

LUTF_FUNCTION(t_noop)
{
	return 0;
}

LUTF_FUNCTION(t_fail)
{
	return lutf_fail(call, "broken on purpose"), 1;
}

LUTF_FUNCTION(t_ret7)
{
	return 7;
}

LUTF_FUNCTION(t_nomem)
{
	return -ENOMEM;
}

/* Blocks in the kernel until the gate opens. */
LUTF_FUNCTION(t_gate)
{
	__atomic_add_fetch(&entered, 1, __ATOMIC_RELAXED);
	gate_wait(&gate);
	return 0;
}

/* Sleeps the number of ms in its input (default 20). */
LUTF_FUNCTION(t_sleep)
{
	unsigned ms = 20;

	if (call->input_len == sizeof(unsigned))
		memcpy(&ms, call->input, sizeof(ms));
	test_sleep_ms(ms);
	return lutf_write(call, "z", 1);
}

LUTF_FUNCTION(t_meta)
{
	const char *ct = lutf_meta(call, "content-type");
	const char *h = lutf_meta(call, "x-a");
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "%s;%s;%s", ct ? ct : "-", h ? h : "-",
			 lutf_meta(call, "absent") ? "bad" : "-");

	return lutf_write(call, buf, (size_t)n);
}

LUTF_FUNCTION(t_big)
{
	static char chunk[65536];

	for (;;)
		if (lutf_write(call, chunk, sizeof(chunk)))
			return 0; /* ignoring the error must still end TOO_LARGE */
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
	__atomic_store_n(&gate, 0, __ATOMIC_RELEASE);
	entered = 0;
}

static void start(uint32_t carts, uint32_t labors, enum lutf_watch_mode watch)
{
	struct lutf_config c = test_config(carts, labors);

	c.watch = watch;
	c.grace_ns = 200000;
	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
}

static uint32_t add(const char *name, lutf_fn_t fn)
{
	uint32_t id;

	cr_assert_eq(lutf_runtime_add_fn(rt, name, fn, NULL, &id), 0, "add %s", name);
	return id;
}

TestSuite(runtime, .fini = teardown, .timeout = 60);

Test(runtime, invoke_echo_with_config_and_content_type)
{
	static const char *const cfg[] = {"prefix", ">> ", NULL};
	struct lutf_fn_opts o = {.config = cfg};
	struct lutf_result res;
	uint32_t id;

	start(2, 4, LUTF_WATCH_POLL);
	cr_assert_eq(lutf_runtime_add_fn(rt, "echo", t_echo, &o, &id), 0);
	cr_assert_eq(lutf_runtime_invoke(
			 rt, id, &(struct lutf_request){.input = "hi", .input_len = 2}, &res),
		     0);
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	cr_assert_eq(res.output_len, 5);
	cr_assert_arr_eq(res.output, ">> hi", 5);
	cr_assert_str_eq(res.content_type, "text/x-echo");
	lutf_result_release(&res);
}

Test(runtime, large_input_and_metadata_reach_the_function)
{
	struct lutf_result res;
	size_t n = 300000;
	char *in = malloc(n);
	uint32_t echo, meta;
	static const char *const hdrs[] = {"x-a", "b", NULL};

	start(1, 2, LUTF_WATCH_POLL);
	echo = add("echo", t_echo);
	meta = add("meta", t_meta);
	for (size_t i = 0; i < n; i++)
		in[i] = (char)(i * 7);
	cr_assert_eq(lutf_runtime_invoke(rt, echo,
					 &(struct lutf_request){.input = in, .input_len = n}, &res),
		     0);
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	cr_assert_eq(res.output_len, n);
	cr_assert_eq(memcmp(res.output, in, n), 0);
	lutf_result_release(&res);
	cr_assert_eq(
	    lutf_runtime_invoke(
		rt, meta, &(struct lutf_request){.content_type = "a/b", .headers = hdrs}, &res),
	    0);
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	cr_assert_arr_eq(res.output, "a/b;b;-", 7);
	lutf_result_release(&res);
	free(in);
}

Test(runtime, typed_errors)
{
	struct lutf_result res;
	uint32_t f, r7, big;
	char *huge = calloc(1, (2u << 20));

	start(1, 2, LUTF_WATCH_POLL);
	f = add("fail", t_fail);
	r7 = add("ret7", t_ret7);
	big = add("big", t_big);
	lutf_runtime_invoke(rt, f, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_FUNCTION_ERROR);
	cr_assert_str_eq(res.error, "broken on purpose");
	lutf_result_release(&res);
	lutf_runtime_invoke(rt, r7, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_FUNCTION_ERROR);
	cr_assert_str_eq(res.error, "function returned 7");
	lutf_result_release(&res);
	/* -ENOMEM: the function ran out of memory (a Python MemoryError). */
	lutf_runtime_invoke(rt, add("nomem", t_nomem), &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_OUT_OF_MEMORY);
	cr_assert_str_eq(res.error, "function returned -12");
	lutf_result_release(&res);
	lutf_runtime_invoke(rt, big, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_TOO_LARGE);
	lutf_result_release(&res);
	lutf_runtime_invoke(rt, 200, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_UNKNOWN_FUNCTION);
	lutf_runtime_invoke(rt, f, &(struct lutf_request){.input = huge, .input_len = 2u << 20},
			    &res);
	cr_assert_eq(res.status, LUTF_STATUS_TOO_LARGE);
	cr_assert_eq(lutf_runtime_submit(
			 rt, f, &(struct lutf_request){.input = huge, .input_len = 2u << 20}, 0),
		     -EMSGSIZE);
	cr_assert_eq(lutf_runtime_submit(rt, 9999, &(struct lutf_request){0}, 0), -ENOENT);
	cr_assert_eq(lutf_runtime_invoke(rt, f, NULL, &res), -EINVAL);
	cr_assert_eq(lutf_runtime_add_fn(rt, "bad name!", t_noop, NULL, NULL), -EINVAL);
	cr_assert_eq(lutf_runtime_add_fn(rt, "fail", t_noop, NULL, NULL), -EEXIST);
	free(huge);
}

Test(runtime, async_batches_complete_exactly_once)
{
	enum { N = 50000 };
	static struct lutf_completion out[256];
	static uint8_t seen[N];
	uint32_t id;
	int got = 0, sent = 0;

	start(2, 8, LUTF_WATCH_POLL);
	id = add("echo", t_echo);
	while (got < N) {
		while (sent < N && sent - got < 512) {
			uint32_t v = (uint32_t)sent;
			int err = lutf_runtime_submit(
			    rt, id, &(struct lutf_request){.input = &v, .input_len = sizeof(v)},
			    (uint64_t)sent);

			if (err == -EAGAIN)
				break;
			cr_assert_eq(err, 0);
			sent++;
		}
		int n = lutf_runtime_reap(rt, out, 256, 1000);

		cr_assert_gt(n, 0, "completions stopped at %d of %d", got, N);
		for (int i = 0; i < n; i++) {
			uint32_t v;

			cr_assert_eq(out[i].result.status, LUTF_STATUS_OK);
			cr_assert_eq(out[i].result.output_len, sizeof(v));
			memcpy(&v, out[i].result.output, sizeof(v));
			cr_assert_eq(v, out[i].user_data, "reply for the wrong request");
			cr_assert_eq(seen[v]++, 0, "request %u completed twice", v);
			lutf_result_release(&out[i].result);
		}
		got += n;
	}
	cr_assert_eq(lutf_runtime_reap(rt, out, 256, 0), 0, "extra completions");
}

Test(runtime, full_cart_is_overloaded_at_once)
{
	struct lutf_config c = test_config(1, 1);
	struct lutf_result res;
	uint64_t t0;
	uint32_t id;
	int err = 0, n = 0;

	c.cart_capacity = 8;
	c.watch = LUTF_WATCH_OFF;
	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
	id = add("gate", t_gate);
	while ((err = lutf_runtime_submit(rt, id, &(struct lutf_request){0}, 0)) == 0)
		n++;
	cr_assert_eq(err, -EAGAIN);
	cr_assert_geq(n, 8);
	cr_assert_leq(n, 9, "ring holds 8, the Labor at most 1 more");
	t0 = test_now_ns();
	lutf_runtime_invoke(rt, id, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_OVERLOADED);
	cr_assert_lt(test_now_ns() - t0, 50000000ull, "overload must answer at once");
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	{
		struct lutf_completion out[16];

		cr_assert_eq(reap_all(rt, out, n, 5000), n);
		for (int i = 0; i < n; i++)
			cr_assert_eq(out[i].result.status, LUTF_STATUS_OK);
	}
}

Test(runtime, deadline_of_a_running_brick)
{
	struct lutf_result res;
	unsigned ms = 300;
	uint64_t t0;
	uint32_t id;

	start(1, 2, LUTF_WATCH_OFF);
	id = add("sleep", t_sleep);
	t0 = test_now_ns();
	lutf_runtime_invoke(rt, id,
			    &(struct lutf_request){
				.input = &ms, .input_len = sizeof(ms), .timeout_ns = 30000000ull},
			    &res);
	cr_assert_eq(res.status, LUTF_STATUS_DEADLINE);
	cr_assert_lt(test_now_ns() - t0, 200000000ull, "answered long after the deadline");
	cr_assert_geq(test_now_ns() - t0, 30000000ull);
	lutf_result_release(&res);
}

Test(runtime, deadline_of_queued_bricks_behind_a_stuck_labor)
{
	struct lutf_completion out[8];
	uint32_t id, sl;
	uint64_t t0;

	start(1, 1, LUTF_WATCH_OFF);
	id = add("gate", t_gate);
	sl = add("sleep", t_sleep);
	cr_assert_eq(lutf_runtime_submit(rt, id, &(struct lutf_request){0}, 100), 0);
	while (!__atomic_load_n(&entered, __ATOMIC_RELAXED))
		test_sleep_ms(1);
	t0 = test_now_ns();
	for (int i = 0; i < 4; i++)
		cr_assert_eq(lutf_runtime_submit(rt, sl,
						 &(struct lutf_request){.timeout_ns = 20000000ull},
						 (uint64_t)i),
			     0);
	cr_assert_eq(reap_all(rt, out, 4, 2000), 4, "queued Bricks never answered");
	cr_assert_lt(test_now_ns() - t0, 500000000ull);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(out[i].result.status, LUTF_STATUS_DEADLINE);
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	cr_assert_eq(reap_all(rt, out, 1, 2000), 1);
	cr_assert_eq(out[0].user_data, 100);
	cr_assert_eq(out[0].result.status, LUTF_STATUS_OK);
}

/* One Cart, several Labors: the Labor blocked in its Brick loses the Cart and
 * every queued Brick still completes. With re-binding off, nothing moves. */
static void migration(enum lutf_watch_mode watch)
{
	enum { N = 200 };
	struct lutf_completion out[N + 1];
	struct lutf_runtime_stats st;
	unsigned seen[N] = {0}, gate_seen = 0;
	uint32_t g, e;

	start(1, 4, watch);
	g = add("gate", t_gate);
	e = add("echo", t_echo);
	cr_assert_eq(lutf_runtime_submit(rt, g, &(struct lutf_request){0}, 1000), 0);
	while (!__atomic_load_n(&entered, __ATOMIC_RELAXED))
		test_sleep_ms(1);
	for (int i = 0; i < N; i++)
		cr_assert_eq(
		    lutf_runtime_submit(rt, e, &(struct lutf_request){.input = "x", .input_len = 1},
					(uint64_t)i),
		    0);
	if (watch == LUTF_WATCH_OFF) {
		test_sleep_ms(100);
		cr_assert_eq(lutf_runtime_reap(rt, out, N, 0), 0, "ran without re-binding?");
		__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	}
	if (watch != LUTF_WATCH_OFF) {
		/* The gate stays shut: every echo must get past the stuck Labor. */
		cr_assert_eq(reap_all(rt, out, N, 5000), N, "pending Bricks lost in migration");
		__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
		cr_assert_eq(reap_all(rt, out + N, 1, 2000), 1);
		cr_assert_eq(out[N].user_data, 1000);
	} else {
		cr_assert_eq(reap_all(rt, out, N + 1, 5000), N + 1, "Bricks lost");
	}
	/* Each Brick answered exactly once, OK, with its own output. */
	for (int i = 0; i < N + 1; i++) {
		uint64_t u = out[i].user_data;

		cr_assert_eq(out[i].result.status, LUTF_STATUS_OK, "Brick %llu: status %u",
			     (unsigned long long)u, out[i].result.status);
		if (u == 1000) {
			gate_seen++;
		} else {
			cr_assert_lt(u, N, "user_data %llu was never submitted",
				     (unsigned long long)u);
			cr_assert(out[i].result.output_len == 1 &&
				      !memcmp(out[i].result.output, "x", 1),
				  "Brick %llu: wrong output", (unsigned long long)u);
			seen[u]++;
		}
		lutf_result_release(&out[i].result);
	}
	cr_assert_eq(gate_seen, 1, "the blocked Brick completed %u times", gate_seen);
	for (int i = 0; i < N; i++)
		cr_assert_eq(seen[i], 1, "Brick %d completed %u times", i, seen[i]);
	lutf_runtime_stats(rt, &st);
	if (watch == LUTF_WATCH_OFF)
		cr_assert_eq(st.rebinds, 0);
	else
		cr_assert_geq(st.rebinds, 1, "the Cart never moved");
}

Test(runtime, migration_keeps_every_pending_brick)
{
	migration(LUTF_WATCH_POLL);
}

Test(runtime, no_rebinding_when_watch_is_off)
{
	migration(LUTF_WATCH_OFF);
}

/* Labor threads of this process (named lutf-labor-N) and how many of them
 * sleep in futex_wait now: /proc/self/task/<tid>/syscall starts with the
 * number of the system call a blocked thread is in. */
static void labors_asleep(int *labors, int *in_futex)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;

	*labors = *in_futex = 0;
	cr_assert_not_null(dir);
	while ((de = readdir(dir))) {
		char path[300], buf[64];
		FILE *fp;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue; /* the thread just ended */
		buf[0] = 0;
		if (!fgets(buf, sizeof(buf), fp))
			buf[0] = 0;
		fclose(fp);
		if (strncmp(buf, "lutf-labor-", 11))
			continue;
		(*labors)++;
		snprintf(path, sizeof(path), "/proc/self/task/%s/syscall", de->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (fgets(buf, sizeof(buf), fp) && strtol(buf, NULL, 10) == SYS_futex &&
		    strncmp(buf, "running", 7))
			(*in_futex)++;
		fclose(fp);
	}
	closedir(dir);
}

/* After a burst, every Labor sleeps: the six without a Cart parked FREE, the
 * two that ran the burst parked on their empty Carts once spin_ns was over,
 * all eight in futex_wait (no spinning, no CPU). */
Test(runtime, idle_labors_park)
{
	struct lutf_runtime_stats st;
	struct lutf_result res;
	int labors = 0, asleep = 0;
	uint32_t id;

	start(2, 8, LUTF_WATCH_POLL);
	id = add("noop", t_noop);
	for (int i = 0; i < 1000; i++) {
		lutf_runtime_invoke(rt, id, &(struct lutf_request){0}, &res);
		cr_assert_eq(res.status, LUTF_STATUS_OK);
	}
	lutf_runtime_stats(rt, &st);
	/* The 1000 calls can be over before every Labor thread first ran (a
	 * few ms on a loaded host); its state is OFF until then. */
	for (int i = 0; i < 100 && st.labors < 8; i++) {
		test_sleep_ms(20);
		lutf_runtime_stats(rt, &st);
	}
	cr_assert_eq(st.labors, 8, "labors %u (grows %llu, retires %llu)", st.labors,
		     (unsigned long long)st.labor_grows, (unsigned long long)st.labor_retires);
	cr_assert_eq(st.submitted, 1000);
	cr_assert_eq(st.completed, 1000);
	/* A thread can be seen between two wake-ups: look again, up to 2 s. */
	for (int i = 0; i < 100 && asleep < 8; i++) {
		test_sleep_ms(20);
		labors_asleep(&labors, &asleep);
	}
	cr_assert_eq(labors, 8, "Labor threads seen: %d", labors);
	cr_assert_eq(asleep, 8, "only %d of 8 Labors asleep in futex_wait", asleep);
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.labors_parked, 6, "unbound Labors should be parked FREE");
}

/* Elastic pool: all Labors busy and one blocked, so another is started
 * through the request word; idle ones above the minimum retire again. */
Test(runtime, elastic_pool_grows_and_retires)
{
	enum { N = 50 };
	struct lutf_config c = test_config(1, 1);
	struct lutf_completion out[N + 1];
	struct lutf_runtime_stats st;
	uint32_t g, e;

	c.labors_max = 3;
	c.labor_idle_ms = 30;
	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
	g = add("gate", t_gate);
	e = add("echo", t_echo);
	cr_assert_eq(lutf_runtime_submit(rt, g, &(struct lutf_request){0}, 1000), 0);
	while (!__atomic_load_n(&entered, __ATOMIC_RELAXED))
		test_sleep_ms(1);
	for (int i = 0; i < N; i++)
		cr_assert_eq(lutf_runtime_submit(rt, e, &(struct lutf_request){0}, (uint64_t)i), 0);
	cr_assert_eq(reap_all(rt, out, N, 5000), N, "no Labor was added for the stuck Cart");
	lutf_runtime_stats(rt, &st);
	cr_assert_geq(st.labor_grows, 1);
	cr_assert_geq(st.labors, 2);
	cr_assert_leq(st.labors, 3, "grew past labors_max");
	cr_assert_geq(st.rebinds, 1);
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	cr_assert_eq(reap_all(rt, out, 1, 2000), 1);
	/* Back to the minimum once the extra Labors sat idle. */
	for (int i = 0; i < 200; i++) {
		lutf_runtime_stats(rt, &st);
		if (st.labors == 1 && st.labor_retires >= 1)
			break;
		test_sleep_ms(10);
	}
	cr_assert_eq(st.labors, 1, "extra Labors never retired (%u running)", st.labors);
	cr_assert_geq(st.labor_retires, 1);
	/* And the pool still works after shrinking. */
	{
		struct lutf_result res;

		lutf_runtime_invoke(rt, e, &(struct lutf_request){.input = "ok", .input_len = 2},
				    &res);
		cr_assert_eq(res.status, LUTF_STATUS_OK);
		lutf_result_release(&res);
	}
}
