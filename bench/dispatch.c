/* SPDX-License-Identifier: MIT */
/*
 * dispatch: what it costs to run a no-op function as a lutf Brick, beside the
 * other ways a program could run it (direct call, a thread, a process), all
 * timed in this one process; then a blocking workload with Cart re-binding on
 * and off. Targets are printed, never asserted; a lost Brick, a wrong status
 * or a failed baseline makes the program exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lutf/runtime.h>

#include "common.h"

#define BATCH 1000	   /* direct calls per timed batch */
#define IN_FLIGHT 64	   /* Bricks kept outstanding in case (c) */
#define REAP_WAIT_MS 10000 /* no completion for this long = a lost Brick */
#define SLEEP_CALLS 400
#define SLEEP_MS 10

enum {
	C_DIRECT,
	C_INVOKE,
	C_ASYNC,
	C_THREAD,
	C_FORK,
	C_EXEC,
	C_SPAWN,
	C_INVOKE_PIN,
	C_ASYNC_PIN,
	N_CASES
};

static const char *const case_key[N_CASES] = {"direct",	     "invoke",	      "async64",
					      "pthread",     "fork",	      "fork_exec",
					      "posix_spawn", "invoke_pinned", "async64_pinned"};
static const char *const case_label[N_CASES] = {"(a) direct call through pointer",
						"(b) lutf invoke, sync",
						"(c) lutf submit/reap, 64 in flight",
						"(d) pthread_create + join",
						"(e) fork + waitpid",
						"(f) fork + exec true_tiny",
						"(g) posix_spawn true_tiny",
						"(b') as (b), caller and runtime pinned apart",
						"(c') as (c), pinned apart"};

struct row {
	uint64_t calls;
	struct bench_stats lat; /* ns per call (per Brick, submit to reap, for (c)) */
	double calls_per_s;
	double cpu_ns;	      /* process CPU (self + children) per call */
	double stamped_per_s; /* (c): rate of the pass that stamped every Brick */
	bool ran;
};

struct sleep_run {
	double wall_ms; /* median over runs */
	uint64_t rebinds;
	int runs;
	bool ran; /* false when the mode asked for was not the mode in effect */
};

struct results {
	char machine[128];
	double timer_ns;
	struct row rows[N_CASES];
	double idle_cpu_pct;
	struct sleep_run sleep_poll, sleep_off, sleep_bpf;
	enum lutf_watch_mode watch; /* in effect for (b) and (c): the default */
	int errors;
};

static int noop(struct lutf_call *call)
{
	(void)call;
	return 0;
}

/* Volatile, so the direct case really calls through the pointer. */
static lutf_fn_t volatile noop_ptr = noop;

static int sleep_fn(struct lutf_call *call)
{
	struct timespec ts = {0, SLEEP_MS * 1000000L};

	(void)call;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return 0;
}

static char tiny_path[PATH_MAX];
static char *const tiny_argv[] = {"true_tiny", NULL};
static char *const empty_env[] = {NULL};

/* true_tiny sits beside this program in the build tree. */
static int find_tiny(void)
{
	ssize_t n = readlink("/proc/self/exe", tiny_path, sizeof(tiny_path) - 16);
	char *slash;

	if (n <= 0)
		return -1;
	tiny_path[n] = 0;
	slash = strrchr(tiny_path, '/');
	if (!slash)
		return -1;
	strcpy(slash + 1, "true_tiny");
	return access(tiny_path, X_OK);
}

static void fail(struct results *r, const char *fmt, const char *what, long v)
{
	if (r->errors++ < 10)
		fprintf(stderr, fmt, what, v);
}

static void finish_row(struct row *row, uint64_t *lat, uint64_t n, uint64_t wall_ns,
		       uint64_t cpu_ns)
{
	row->calls = n;
	bench_stats(lat, n, &row->lat);
	row->calls_per_s = wall_ns ? (double)n * 1e9 / (double)wall_ns : NAN;
	row->cpu_ns = n ? (double)cpu_ns / (double)n : NAN;
	row->ran = true;
}

/* (a): batches of BATCH calls, each batch timed, divided by BATCH. */
static void run_direct(struct results *r, uint64_t *lat, uint64_t batches)
{
	struct lutf_call call = {0};
	uint64_t c0 = bench_cpu_all_ns(), t0 = bench_now_ns();

	for (uint64_t i = 0; i < batches; i++) {
		uint64_t a = bench_now_ns();

		for (int k = 0; k < BATCH; k++)
			noop_ptr(&call);
		lat[i] = bench_now_ns() - a; /* per batch; divided below */
	}
	finish_row(&r->rows[C_DIRECT], lat, batches, bench_now_ns() - t0, bench_cpu_all_ns() - c0);
	/* calls, not batches */
	r->rows[C_DIRECT].calls = batches * BATCH;
	r->rows[C_DIRECT].calls_per_s *= BATCH;
	r->rows[C_DIRECT].cpu_ns /= BATCH;
	r->rows[C_DIRECT].lat.median /= BATCH;
	r->rows[C_DIRECT].lat.p99 /= BATCH;
	r->rows[C_DIRECT].lat.mean /= BATCH;
}

static void *thread_body(void *arg)
{
	struct lutf_call call = {0};

	return (void *)(intptr_t)noop_ptr(&call);
}

/* (d), (e), (f), (g): one call = one thread or process, started and reaped. */
static int one_call(int which)
{
	struct lutf_call call = {0};
	pthread_t t;
	void *ret;
	pid_t pid;
	int st, err;

	switch (which) {
	case C_THREAD:
		err = pthread_create(&t, NULL, thread_body, NULL);
		if (err)
			return -err;
		pthread_join(t, &ret);
		return ret ? -EPROTO : 0;
	case C_FORK:
		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0)
			_exit(noop_ptr(&call));
		break;
	case C_EXEC:
		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0) {
			execve(tiny_path, tiny_argv, empty_env);
			_exit(127);
		}
		break;
	default:
		err = posix_spawn(&pid, tiny_path, NULL, NULL, tiny_argv, empty_env);
		if (err)
			return -err;
		break;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPROTO;
}

static void run_baseline(struct results *r, int which, uint64_t *lat, uint64_t n)
{
	uint64_t c0, t0;

	for (int i = 0; i < 20; i++) /* warm-up */
		one_call(which);
	c0 = bench_cpu_all_ns();
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t a = bench_now_ns();
		int err = one_call(which);

		lat[i] = bench_now_ns() - a;
		if (err)
			fail(r, "dispatch: %s failed: %ld\n", case_key[which], err);
	}
	finish_row(&r->rows[which], lat, n, bench_now_ns() - t0, bench_cpu_all_ns() - c0);
}

/* (b): one Brick at a time through lutf_runtime_invoke. */
static void run_invoke(struct results *r, int which, struct lutf_runtime *rt, uint32_t id,
		       uint64_t *lat, uint64_t n)
{
	struct lutf_request req = {0};
	struct lutf_result res;
	uint64_t c0, t0;

	for (int i = 0; i < 1000; i++) { /* warm-up: Labors awake, pages touched */
		lutf_runtime_invoke(rt, id, &req, &res);
		lutf_result_release(&res);
	}
	c0 = bench_cpu_all_ns();
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t a = bench_now_ns();
		int err = lutf_runtime_invoke(rt, id, &req, &res);

		lat[i] = bench_now_ns() - a;
		if (err || res.status != LUTF_STATUS_OK)
			fail(r, "dispatch: %s: status %ld\n", "invoke",
			     err ? (long)err : (long)res.status);
		lutf_result_release(&res);
	}
	finish_row(&r->rows[which], lat, n, bench_now_ns() - t0, bench_cpu_all_ns() - c0);
}

/* (c): keep IN_FLIGHT Bricks outstanding; user_data names a slot that holds
 * the submit time, so a duplicate or foreign completion is caught. With
 * stamp false no clock is read per Brick (the throughput pass). */
static void async_pass(struct results *r, struct row *row, struct lutf_runtime *rt, uint32_t id,
		       uint64_t *lat, uint64_t n, bool stamp)
{
	struct lutf_completion done[IN_FLIGHT];
	struct lutf_request req = {0};
	uint64_t sent_at[IN_FLIGHT];
	bool busy[IN_FLIGHT] = {0};
	uint32_t free_slot[IN_FLIGHT];
	uint32_t n_free = IN_FLIGHT;
	uint64_t submitted = 0, reaped = 0, c0, t0;

	for (uint32_t i = 0; i < IN_FLIGHT; i++)
		free_slot[i] = IN_FLIGHT - 1 - i;
	c0 = bench_cpu_all_ns();
	t0 = bench_now_ns();
	while (reaped < n) {
		int got;
		uint64_t now;

		while (n_free && submitted < n) {
			uint32_t s = free_slot[--n_free];
			int err;

			if (stamp)
				sent_at[s] = bench_now_ns();
			err = lutf_runtime_submit(rt, id, &req, s);
			if (err) {
				free_slot[n_free++] = s;
				if (err != -EAGAIN) {
					fail(r, "dispatch: %s: submit %ld\n", "async64", err);
					goto out;
				}
				break; /* overloaded: reap first */
			}
			busy[s] = true;
			submitted++;
		}
		got = lutf_runtime_reap(rt, done, IN_FLIGHT, REAP_WAIT_MS);
		if (got <= 0) {
			fail(r, "dispatch: %s: no completion for 10 s, %ld Bricks lost\n",
			     "async64", (long)(submitted - reaped));
			goto out;
		}
		now = stamp ? bench_now_ns() : 0;
		for (int i = 0; i < got; i++) {
			uint64_t s = done[i].user_data;

			if (s >= IN_FLIGHT || !busy[s]) {
				fail(r, "dispatch: %s: unexpected completion %ld\n", "async64",
				     (long)s);
			} else {
				busy[s] = false;
				free_slot[n_free++] = (uint32_t)s;
				lat[reaped] = stamp ? now - sent_at[s] : 0;
				reaped++;
			}
			if (done[i].result.status != LUTF_STATUS_OK)
				fail(r, "dispatch: %s: status %ld\n", "async64",
				     done[i].result.status);
			lutf_result_release(&done[i].result);
		}
	}
out:
	finish_row(row, lat, reaped, bench_now_ns() - t0, bench_cpu_all_ns() - c0);
}

/* Throughput and CPU from an unstamped pass, latency from a stamped one. */
static void run_async(struct results *r, int which, struct lutf_runtime *rt, uint32_t id,
		      uint64_t *lat, uint64_t n)
{
	struct row *row = &r->rows[which], plain;

	memset(&plain, 0, sizeof(plain));
	async_pass(r, &plain, rt, id, lat, n, false);
	async_pass(r, row, rt, id, lat, n, true);
	row->stamped_per_s = row->calls_per_s;
	row->calls_per_s = plain.calls_per_s;
	row->cpu_ns = plain.cpu_ns;
}

/* The first two CPUs this process may use, or -1. */
static int two_cpus(int *a, int *b)
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -1;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			*(n++ ? b : a) = c;
	return n == 2 ? 0 : -1;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* (b') and (c'): the runtime's threads on one CPU, the caller on another,
 * to show what the engine costs when they never share a CPU. */
static void run_pinned(struct results *r, uint64_t *lat, uint64_t n_invoke, uint64_t n_async)
{
	struct lutf_runtime *rt = NULL;
	cpu_set_t all;
	uint32_t id;
	int a, b, err;

	if (sched_getaffinity(0, sizeof(all), &all) != 0 || two_cpus(&a, &b) != 0)
		return;
	pin(b); /* threads started now inherit this mask */
	err = lutf_runtime_create(NULL, &rt);
	pin(a);
	if (!err)
		err = lutf_runtime_add_fn(rt, "noop", noop, NULL, &id);
	if (!err) {
		run_invoke(r, C_INVOKE_PIN, rt, id, lat, n_invoke);
		run_async(r, C_ASYNC_PIN, rt, id, lat, n_async);
	} else {
		fail(r, "dispatch: %s: %ld\n", "pinned runtime", err);
	}
	if (rt)
		lutf_runtime_destroy(rt);
	sched_setaffinity(0, sizeof(all), &all);
}

/* CPU used by the process in the 100 ms after the last call, runtime alive. */
static double idle_cpu_pct(void)
{
	uint64_t c0 = bench_cpu_self_ns(), t0 = bench_now_ns();

	bench_sleep_ns(100000000ull);
	return 100.0 * (double)(bench_cpu_self_ns() - c0) / (double)(bench_now_ns() - t0);
}

/* SLEEP_CALLS Bricks that sleep SLEEP_MS each, all submitted at once.
 * Returns the wall time in ms, or NAN on failure. */
static double sleep_once(struct results *r, enum lutf_watch_mode watch, uint64_t *rebinds,
			 enum lutf_watch_mode *mode)
{
	struct lutf_completion done[64];
	struct lutf_request req = {0};
	struct lutf_runtime_stats st;
	struct lutf_config cfg;
	struct lutf_runtime *rt;
	uint64_t t0, wall;
	uint32_t id;
	int got = 0, err;

	lutf_config_init(&cfg);
	cfg.carts = 2;
	cfg.labors = 8;
	cfg.labors_max = 8; /* the fixed pool: no elastic growth here */
	cfg.cart_capacity = 512; /* all 400 fit one Cart */
	cfg.watch = watch;
	err = lutf_runtime_create(&cfg, &rt);
	if (!err)
		err = lutf_runtime_add_fn(rt, "sleep", sleep_fn, NULL, &id);
	if (err) {
		fail(r, "dispatch: %s: %ld\n", "sleep workload setup", err);
		return NAN;
	}
	t0 = bench_now_ns();
	for (int i = 0; i < SLEEP_CALLS; i++) {
		err = lutf_runtime_submit(rt, id, &req, (uint64_t)i);
		if (err) {
			fail(r, "dispatch: %s: submit %ld\n", "sleep workload", err);
			lutf_runtime_destroy(rt);
			return NAN;
		}
	}
	while (got < SLEEP_CALLS) {
		int n = lutf_runtime_reap(rt, done, 64, REAP_WAIT_MS);

		if (n <= 0) {
			fail(r, "dispatch: %s: %ld Bricks lost\n", "sleep workload",
			     (long)(SLEEP_CALLS - got));
			lutf_runtime_destroy(rt);
			return NAN;
		}
		for (int i = 0; i < n; i++) {
			if (done[i].result.status != LUTF_STATUS_OK)
				fail(r, "dispatch: %s: status %ld\n", "sleep workload",
				     done[i].result.status);
			lutf_result_release(&done[i].result);
		}
		got += n;
	}
	wall = bench_now_ns() - t0;
	lutf_runtime_stats(rt, &st);
	*rebinds = st.rebinds;
	*mode = st.watch;
	lutf_runtime_destroy(rt);
	return (double)wall / 1e6;
}

static void run_sleep(struct results *r, enum lutf_watch_mode watch, int runs,
		      struct sleep_run *out)
{
	double walls[8];
	uint64_t rebinds = 0, rb;
	enum lutf_watch_mode mode = watch;

	for (int i = 0; i < runs && mode == watch; i++) {
		rb = 0;
		walls[i] = sleep_once(r, watch, &rb, &mode);
		rebinds += rb;
	}
	out->ran = mode == watch;
	if (!out->ran)
		return; /* e.g. BPF refused: the runtime fell back to polling */
	out->runs = runs;
	out->wall_ms = bench_median_d(walls, (size_t)runs);
	out->rebinds = rebinds / (uint64_t)runs;
}

/* ---- report ---- */

static int targets(const struct results *r, struct bench_target *t)
{
	const struct row *b = &r->rows[C_INVOKE];
	double fork_ratio = r->rows[C_FORK].lat.median / b->lat.median;
	double sleep_ratio = r->sleep_off.wall_ms / r->sleep_poll.wall_ms;
	int n = 0;

	t[n++] = (struct bench_target){"invoke_median_ns",
				       "(b) median under 2 us",
				       b->lat.median,
				       2000,
				       b->lat.median < 2000,
				       "ns",
				       false};
	t[n++] = (struct bench_target){"fork_over_invoke",
				       "(b) >= 300x faster than (e)",
				       fork_ratio,
				       300,
				       fork_ratio >= 300,
				       "x",
				       false};
	t[n++] = (struct bench_target){"async64_per_s",
				       "(c) >= 2,000,000 Bricks/s",
				       r->rows[C_ASYNC].calls_per_s,
				       2e6,
				       r->rows[C_ASYNC].calls_per_s >= 2e6,
				       "/s",
				       false};
	t[n++] = (struct bench_target){"sleep_speedup",
				       "sleep workload >= 3x faster re-binding on",
				       sleep_ratio,
				       3,
				       sleep_ratio >= 3,
				       "x",
				       false};
	t[n++] = (struct bench_target){"idle_cpu_pct",
				       "CPU in 100 ms after last call < 1%",
				       r->idle_cpu_pct,
				       1,
				       r->idle_cpu_pct < 1,
				       "%",
				       false};
	return n;
}

static const char *watch_name(enum lutf_watch_mode m)
{
	return m == LUTF_WATCH_OFF ? "off" : m == LUTF_WATCH_POLL ? "poll" : "bpf";
}

/* ns as "123 ns", "4.56 us", "7.89 ms". */
static void print_table(const struct results *r, bool quick)
{
	const double bmed = r->rows[C_INVOKE].lat.median;
	struct bench_target t[8];
	int nt = targets(r, t);
	char a[32], b[32], c[32];

	printf("lutf dispatch benchmark%s: %s; timer overhead %.1f ns per read\n",
	       quick ? " (--quick)" : "", r->machine, r->timer_ns);
	printf("Watch mode in effect for (b) and (c) (the default config): %s\n",
	       watch_name(r->watch));
	printf("No-op function; default lutf config. (a) timed in batches of %d. (c) calls/s and\n"
	       "CPU from a pass without clock reads, median/p99 from a second pass stamping each\n"
	       "Brick at submit and reap. (b') and (c'): diagnostics, not targets.\n\n",
	       BATCH);
	printf("%-46s %9s %10s %10s %13s %11s %10s\n", "case", "calls", "median", "p99", "calls/s",
	       "CPU/call", "median/(b)");
	for (int i = 0; i < N_CASES; i++) {
		const struct row *w = &r->rows[i];

		if (!w->ran)
			continue;
		printf("%-46s %9llu %10s %10s %13.0f %11s %9.3gx\n", case_label[i],
		       (unsigned long long)w->calls, bench_fmt_ns(a, sizeof(a), w->lat.median),
		       bench_fmt_ns(b, sizeof(b), w->lat.p99), w->calls_per_s,
		       bench_fmt_ns(c, sizeof(c), w->cpu_ns), w->lat.median / bmed);
	}
	printf("\nCPU use in the 100 ms after the last lutf call (runtime alive): %.2f%%\n",
	       r->idle_cpu_pct);
	printf(
	    "\nBlocking workload: %d Bricks x sleep %d ms, submitted at once; 2 Carts, 8 Labors\n",
	    SLEEP_CALLS, SLEEP_MS);
	printf("%-36s %10s %10s  (median of %d runs)\n", "mode", "wall", "rebinds",
	       r->sleep_poll.runs);
	printf("%-36s %7.1f ms %10llu\n", "re-binding on  (LUTF_WATCH_POLL)", r->sleep_poll.wall_ms,
	       (unsigned long long)r->sleep_poll.rebinds);
	printf("%-36s %7.1f ms %10llu\n", "re-binding off (LUTF_WATCH_OFF)", r->sleep_off.wall_ms,
	       (unsigned long long)r->sleep_off.rebinds);
	if (r->sleep_bpf.ran)
		printf("%-36s %7.1f ms %10llu  (not a target)\n", "re-binding on  (LUTF_WATCH_BPF)",
		       r->sleep_bpf.wall_ms, (unsigned long long)r->sleep_bpf.rebinds);
	else
		printf("%-36s %10s  (BPF not in effect here)\n", "re-binding on  (LUTF_WATCH_BPF)",
		       "n/a");
	printf("%-36s %9.2fx\n", "speed-up", r->sleep_off.wall_ms / r->sleep_poll.wall_ms);
	bench_targets_print(t, nt);
	printf("\nerrors: %d (lost Bricks, wrong statuses, failed baselines)\n", r->errors);
}

static void print_json(const struct results *r, bool quick)
{
	const double bmed = r->rows[C_INVOKE].lat.median;
	struct bench_target t[8];
	int nt = targets(r, t);
	struct bench_json j;

	bench_json_begin(&j, stdout);
	bench_json_str(&j, "bench", "dispatch");
	bench_json_str(&j, "machine", r->machine);
	bench_json_bool(&j, "quick", quick);
	bench_json_num(&j, "timer_overhead_ns", r->timer_ns);
	bench_json_str(&j, "watch", watch_name(r->watch));
	bench_json_obj(&j, "cases");
	for (int i = 0; i < N_CASES; i++) {
		const struct row *w = &r->rows[i];

		if (!w->ran)
			continue;
		bench_json_obj(&j, case_key[i]);
		bench_json_str(&j, "label", case_label[i]);
		bench_json_u64(&j, "calls", w->calls);
		bench_json_num(&j, "median_ns", w->lat.median);
		bench_json_num(&j, "p99_ns", w->lat.p99);
		bench_json_num(&j, "mean_ns", w->lat.mean);
		bench_json_num(&j, "calls_per_s", w->calls_per_s);
		bench_json_num(&j, "cpu_ns_per_call", w->cpu_ns);
		if (i == C_ASYNC || i == C_ASYNC_PIN)
			bench_json_num(&j, "calls_per_s_stamped", w->stamped_per_s);
		bench_json_num(&j, "median_over_invoke", w->lat.median / bmed);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_num(&j, "idle_cpu_pct", r->idle_cpu_pct);
	bench_json_obj(&j, "sleep_workload");
	bench_json_u64(&j, "calls", SLEEP_CALLS);
	bench_json_u64(&j, "sleep_ms", SLEEP_MS);
	bench_json_u64(&j, "runs", (uint64_t)r->sleep_poll.runs);
	bench_json_num(&j, "wall_ms_rebind_on", r->sleep_poll.wall_ms);
	bench_json_num(&j, "wall_ms_rebind_off", r->sleep_off.wall_ms);
	bench_json_u64(&j, "rebinds_on", r->sleep_poll.rebinds);
	bench_json_num(&j, "wall_ms_bpf", r->sleep_bpf.ran ? r->sleep_bpf.wall_ms : NAN);
	bench_json_u64(&j, "rebinds_bpf", r->sleep_bpf.rebinds);
	bench_json_num(&j, "speedup", r->sleep_off.wall_ms / r->sleep_poll.wall_ms);
	bench_json_close_obj(&j);
	bench_targets_json(&j, t, nt);
	bench_json_u64(&j, "errors", (uint64_t)r->errors);
	bench_json_end(&j);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct results *r;
	struct lutf_runtime *rt;
	struct lutf_runtime_stats st;
	uint64_t n_direct, n_invoke, n_async, n_thread, n_proc, n_max;
	uint64_t *lat;
	uint32_t id;
	int err;

	bench_parse_args(argc, argv,
			 "Dispatch cost of a no-op function: direct, lutf sync and async, "
			 "thread, fork, fork+exec, posix_spawn; and a blocking workload.",
			 &o);
	n_direct = o.quick ? 200 : 2000; /* batches of BATCH */
	n_invoke = o.quick ? 20000 : 200000;
	n_async = o.quick ? 200000 : 2000000;
	n_thread = o.quick ? 2000 : 20000;
	n_proc = o.quick ? 200 : 2000;
	n_max = n_async;
	r = calloc(1, sizeof(*r));
	lat = calloc(n_max, sizeof(*lat));
	if (!r || !lat || find_tiny() != 0) {
		fprintf(stderr, "dispatch: %s\n",
			!r || !lat ? "out of memory" : "true_tiny not found beside this program");
		return 1;
	}
	bench_machine(r->machine, sizeof(r->machine));
	r->timer_ns = bench_timer_overhead_ns();

	/* Baselines first, in a small single-threaded process: that flatters
	 * fork, so the ratios to (b) are conservative. */
	run_direct(r, lat, n_direct);
	run_baseline(r, C_THREAD, lat, n_thread);
	run_baseline(r, C_FORK, lat, n_proc);
	run_baseline(r, C_EXEC, lat, n_proc);
	run_baseline(r, C_SPAWN, lat, n_proc);

	err = lutf_runtime_create(NULL, &rt);
	if (!err)
		err = lutf_runtime_add_fn(rt, "noop", noop, NULL, &id);
	if (err) {
		fprintf(stderr, "dispatch: cannot set up the runtime: %s\n", strerror(-err));
		return 1;
	}
	run_invoke(r, C_INVOKE, rt, id, lat, n_invoke);
	run_async(r, C_ASYNC, rt, id, lat, n_async);
	r->idle_cpu_pct = idle_cpu_pct();
	lutf_runtime_stats(rt, &st);
	r->watch = st.watch;
	if (st.submitted != st.completed)
		fail(r, "dispatch: %s: %ld Bricks submitted but not completed\n", "runtime",
		     (long)(st.submitted - st.completed));
	lutf_runtime_destroy(rt);
	run_pinned(r, lat, n_invoke, n_async);

	run_sleep(r, LUTF_WATCH_POLL, o.quick ? 1 : 3, &r->sleep_poll);
	run_sleep(r, LUTF_WATCH_OFF, o.quick ? 1 : 3, &r->sleep_off);
	run_sleep(r, LUTF_WATCH_BPF, o.quick ? 1 : 3, &r->sleep_bpf);

	if (o.json)
		print_json(r, o.quick);
	else
		print_table(r, o.quick);
	err = r->errors ? 1 : 0;
	free(lat);
	free(r);
	return err;
}
