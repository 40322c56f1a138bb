/* SPDX-License-Identifier: MIT */
/*
 * The Supervisor fed by labor_watch: a Labor blocked in the kernel loses its
 * Cart and every queued Brick completes; a CPU-bound (preempted) Labor and a
 * block shorter than the grace move nothing; with BPF refused the runtime
 * falls back to polling and still moves Carts; pinned maps come and go with
 * the runtime.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_util.h"
#include "require.h"

static int gate;
static int entered;

LUTF_FUNCTION(w_gate)
{
	__atomic_add_fetch(&entered, 1, __ATOMIC_RELAXED);
	gate_wait(&gate);
	return 0;
}

LUTF_FUNCTION(w_echo)
{
	return lutf_write(call, call->input, call->input_len);
}

/* The CPU the spinner and the hog share (-1: none). */
static int shared_cpu = -1;
static int hog_stop;

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* CPU-bound for 150 ms: never blocks, only gets preempted (by the hog on
 * the same CPU when shared_cpu is set). */
LUTF_FUNCTION(w_spin)
{
	uint64_t until;
	volatile uint64_t x = 0;

	if (shared_cpu >= 0)
		pin_to(shared_cpu);
	until = test_now_ns() + 150000000ull;
	__atomic_add_fetch(&entered, 1, __ATOMIC_RELAXED);
	while (test_now_ns() < until)
		x++;
	return 0;
}

LUTF_FUNCTION(w_short_block)
{
	test_sleep_ms(2);
	return 0;
}

/* Spins on shared_cpu until hog_stop: the spinner's runnable rival. */
static void *hog(void *arg)
{
	volatile uint64_t x = 0;

	(void)arg;
	pin_to(shared_cpu);
	while (!__atomic_load_n(&hog_stop, __ATOMIC_RELAXED))
		x++;
	return NULL;
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
	shared_cpu = -1;
	__atomic_store_n(&hog_stop, 1, __ATOMIC_RELAXED); /* a failed test's hog stops */
	unsetenv("LUTF_LABOR_WATCH");
}

TestSuite(supervisor_bpf, .fini = teardown, .timeout = 60);

static struct lutf_runtime_stats start_bpf(uint32_t carts, uint32_t labors, uint32_t grace_ns)
{
	struct lutf_config c = test_config(carts, labors);
	struct lutf_runtime_stats st;

	LUTF_REQUIRE("root", lutf_test_is_root(), "loading BPF needs root");
	c.watch = LUTF_WATCH_BPF;
	c.grace_ns = grace_ns;
	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
	lutf_runtime_stats(rt, &st);
	LUTF_REQUIRE("bpf", st.watch == LUTF_WATCH_BPF, "labor_watch did not load (see stderr)");
	return st;
}

static void wait_entered(int n)
{
	for (int i = 0; i < 5000 && __atomic_load_n(&entered, __ATOMIC_RELAXED) < n; i++)
		test_sleep_ms(1);
	cr_assert_geq(entered, n);
}

Test(supervisor_bpf, blocked_labor_loses_its_cart_and_nothing_is_lost)
{
	enum { N = 300 };
	struct lutf_completion out[N + 1];
	struct lutf_runtime_stats st;
	uint32_t g, e;

	start_bpf(1, 4, 50000);
	cr_assert_eq(lutf_runtime_add_fn(rt, "gate", w_gate, NULL, &g), 0);
	cr_assert_eq(lutf_runtime_add_fn(rt, "echo", w_echo, NULL, &e), 0);
	cr_assert_eq(lutf_runtime_submit(rt, g, &(struct lutf_request){0}, 1000), 0);
	wait_entered(1);
	for (int i = 0; i < N; i++)
		cr_assert_eq(
		    lutf_runtime_submit(rt, e, &(struct lutf_request){.input = "x", .input_len = 1},
					(uint64_t)i),
		    0);
	cr_assert_eq(reap_all(rt, out, N, 5000), N, "queued Bricks stuck behind a blocked Labor");
	for (int i = 0; i < N; i++) {
		cr_assert_eq(out[i].result.status, LUTF_STATUS_OK);
		cr_assert_lt(out[i].user_data, N);
		lutf_result_release(&out[i].result);
	}
	lutf_runtime_stats(rt, &st);
	cr_assert_geq(st.rebinds, 1);
	cr_assert_eq(st.watch, LUTF_WATCH_BPF);
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	cr_assert_eq(reap_all(rt, out, 1, 2000), 1);
	cr_assert_eq(out[0].user_data, 1000);
}

/* Sum of a numeric field over the live slots of a pinned labor_state. */
static uint64_t slots_sum(const char *pin_dir, const char *field)
{
	char cmd[256], key[64], *buf = malloc(1 << 20), *p;
	uint64_t sum = 0;
	size_t n;
	FILE *fp;

	cr_assert_not_null(buf);
	snprintf(cmd, sizeof(cmd), "bpftool -j map dump pinned %s/labor_state 2>&1", pin_dir);
	fp = popen(cmd, "r");
	cr_assert_not_null(fp);
	n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = 0;
	pclose(fp);
	snprintf(key, sizeof(key), "\"%s\":", field);
	cr_assert(strstr(buf, key), "no %s in: %.300s", field, buf);
	for (p = strstr(buf, key); p; p = strstr(p + 1, key))
		sum += strtoull(p + strlen(key), NULL, 10);
	free(buf);
	return sum;
}

/* A Labor that only ever gets preempted (a hog shares its CPU, so it does,
 * and the probe counts it) keeps its Cart: the Bricks behind it wait. */
Test(supervisor_bpf, preempted_labor_keeps_its_cart)
{
	enum { N = 20 };
	struct lutf_config c = test_config(1, 4);
	struct lutf_completion out[N + 1];
	struct lutf_runtime_stats st;
	cpu_set_t cpus;
	pthread_t h;
	uint32_t s, e;
	uint64_t preempted;

	LUTF_REQUIRE("root", lutf_test_is_root(), "loading BPF needs root");
	c.watch = LUTF_WATCH_BPF;
	c.grace_ns = 20000;
	snprintf(c.bpf_pin_dir, sizeof(c.bpf_pin_dir), "/sys/fs/bpf/lutf-pre-test-%d", getpid());
	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
	lutf_runtime_stats(rt, &st);
	LUTF_REQUIRE_BPF(st.watch == LUTF_WATCH_BPF, "labor_watch did not load (see stderr)");
	cr_assert_eq(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
	for (int i = 0; i < CPU_SETSIZE && shared_cpu < 0; i++)
		if (CPU_ISSET(i, &cpus))
			shared_cpu = i;
	cr_assert_eq(lutf_runtime_add_fn(rt, "spin", w_spin, NULL, &s), 0);
	cr_assert_eq(lutf_runtime_add_fn(rt, "echo", w_echo, NULL, &e), 0);
	hog_stop = 0;
	cr_assert_eq(pthread_create(&h, NULL, hog, NULL), 0);
	cr_assert_eq(lutf_runtime_submit(rt, s, &(struct lutf_request){0}, 1000), 0);
	wait_entered(1);
	for (int i = 0; i < N; i++)
		cr_assert_eq(lutf_runtime_submit(rt, e, &(struct lutf_request){0}, (uint64_t)i), 0);
	cr_assert_eq(reap_all(rt, out, N + 1, 5000), N + 1);
	__atomic_store_n(&hog_stop, 1, __ATOMIC_RELAXED);
	pthread_join(h, NULL);
	preempted = slots_sum(c.bpf_pin_dir, "preemptions");
	cr_assert_geq(preempted, 1, "the probe saw no preemption: the test proves nothing");
	cr_log_info("preemptions seen by the probe: %llu", (unsigned long long)preempted);
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.rebinds, 0, "a CPU-bound Labor was treated as blocked");
	cr_assert_eq(out[0].user_data, 1000, "echo Bricks overtook the spinner: Cart moved");
}

Test(supervisor_bpf, blocks_shorter_than_the_grace_move_nothing)
{
	enum { N = 40 };
	struct lutf_completion out[N];
	struct lutf_runtime_stats st;
	uint32_t f;

	start_bpf(1, 4, 50000000); /* 50 ms grace, 2 ms blocks */
	cr_assert_eq(lutf_runtime_add_fn(rt, "short", w_short_block, NULL, &f), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(lutf_runtime_submit(rt, f, &(struct lutf_request){0}, (uint64_t)i), 0);
	cr_assert_eq(reap_all(rt, out, N, 10000), N);
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.rebinds, 0);
}

Test(supervisor_bpf, refused_bpf_falls_back_to_polling)
{
	enum { N = 100 };
	struct lutf_config c = test_config(1, 4);
	struct lutf_completion out[N + 1];
	struct lutf_runtime_stats st;
	uint32_t g, e;

	setenv("LUTF_LABOR_WATCH", "off", 1);
	c.watch = LUTF_WATCH_BPF;
	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.watch, LUTF_WATCH_POLL, "mode must report the fallback");
	cr_assert_eq(lutf_runtime_add_fn(rt, "gate", w_gate, NULL, &g), 0);
	cr_assert_eq(lutf_runtime_add_fn(rt, "echo", w_echo, NULL, &e), 0);
	cr_assert_eq(lutf_runtime_submit(rt, g, &(struct lutf_request){0}, 1000), 0);
	wait_entered(1);
	for (int i = 0; i < N; i++)
		cr_assert_eq(lutf_runtime_submit(rt, e, &(struct lutf_request){0}, (uint64_t)i), 0);
	cr_assert_eq(reap_all(rt, out, N, 5000), N);
	lutf_runtime_stats(rt, &st);
	cr_assert_geq(st.rebinds, 1);
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
}

Test(supervisor_bpf, pinned_maps_name_the_runtime_labors)
{
	struct lutf_config c = test_config(1, 2);
	struct lutf_runtime_stats st;
	char cmd[256], path[128], buf[65536];
	struct stat sb;
	size_t n;
	FILE *p;

	LUTF_REQUIRE("root", lutf_test_is_root(), "loading BPF needs root");
	c.watch = LUTF_WATCH_BPF;
	c.grace_ns = 123000; /* the probe's long_blocks counts against this one */
	snprintf(c.bpf_pin_dir, sizeof(c.bpf_pin_dir), "/sys/fs/bpf/lutf-rt-test-%d", getpid());
	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
	lutf_runtime_stats(rt, &st);
	LUTF_REQUIRE("bpf", st.watch == LUTF_WATCH_BPF, "labor_watch did not load");
	test_sleep_ms(50); /* the Supervisor registers Labors as they publish tids */
	snprintf(path, sizeof(path), "%s/labor_state", c.bpf_pin_dir);
	cr_assert_eq(stat(path, &sb), 0, "%s not pinned", path);
	snprintf(cmd, sizeof(cmd), "bpftool -j map dump pinned %s 2>&1", path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = 0;
	pclose(p);
	cr_assert(strstr(buf, "\"tid\":"), "no named fields in: %.300s", buf);
	cr_assert(strstr(buf, "\"cart\":0"), "no Labor holds Cart 0: %.300s", buf);
	snprintf(cmd, sizeof(cmd), "bpftool -j map dump pinned %s/labor_globals 2>&1",
		 c.bpf_pin_dir);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = 0;
	pclose(p);
	cr_assert(strstr(buf, "\"lw_grace_ns\":123000"),
		  "the probe's grace is not the runtime's: %.400s", buf);
	lutf_runtime_destroy(rt);
	rt = NULL;
	cr_assert_neq(stat(path, &sb), 0, "pins left after destroy");
}
