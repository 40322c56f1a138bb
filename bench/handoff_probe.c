/* SPDX-License-Identifier: MIT */
/*
 * handoff experiment 3: the sched_switch probe's cost per run (stats on)
 * and context-switch throughput with and without a BPF runtime, by pipe
 * ping-pong between threads or processes. Invariant: forked children are
 * always waited for.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handoff.h"

/* ---- 3. probe cost and context-switch throughput: pipe ping-pong ---- */

struct pp_side {
	int rfd, wfd;
	int cpu; /* -1: not pinned */
	uint64_t until_ns;
	bool leader;
	uint64_t trips;
};

/* The leader writes a byte and waits for the echo, until until_ns; then it
 * writes 'q', which the follower echoes and stops on. */
static void pp_loop(struct pp_side *s)
{
	char c = 'p';

	ho_pin_self(s->cpu);
	if (s->leader) {
		while (bench_now_ns() < s->until_ns) {
			for (int k = 0; k < 64; k++) {
				if (write(s->wfd, &c, 1) != 1 || read(s->rfd, &c, 1) != 1)
					return;
			}
			s->trips += 64;
		}
		c = 'q';
		if (write(s->wfd, &c, 1) == 1 && read(s->rfd, &c, 1) == 1)
			return;
		return;
	}
	for (;;) {
		if (read(s->rfd, &c, 1) != 1 || write(s->wfd, &c, 1) != 1 || c == 'q')
			return;
	}
}

static void *pp_thread(void *arg)
{
	pp_loop(arg);
	return NULL;
}

/* Round trips per second between two threads of this process (procs false)
 * or two forked processes (procs true), both pinned to cpu. Returns -1 on error. */
static double pingpong(int cpu, bool procs, uint64_t dur_ns)
{
	int ab[2], ba[2];
	struct pp_side lead, follow;
	uint64_t t0, t1;
	double rate = -1;

	if (pipe2(ab, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(ba, O_CLOEXEC) != 0) {
		close(ab[0]);
		close(ab[1]);
		return -1;
	}
	lead = (struct pp_side){.rfd = ba[0], .wfd = ab[1], .cpu = cpu, .leader = true};
	follow = (struct pp_side){.rfd = ab[0], .wfd = ba[1], .cpu = cpu};
	if (!procs) {
		pthread_t t1h, t2h;

		t0 = bench_now_ns();
		lead.until_ns = t0 + dur_ns;
		if (pthread_create(&t2h, NULL, pp_thread, &follow) != 0)
			goto out;
		if (pthread_create(&t1h, NULL, pp_thread, &lead) != 0) {
			char q = 'q';

			if (write(ab[1], &q, 1) != 1)
				abort();
			pthread_join(t2h, NULL);
			goto out;
		}
		pthread_join(t1h, NULL);
		pthread_join(t2h, NULL);
		t1 = bench_now_ns();
		rate = (double)lead.trips * 1e9 / (double)(t1 - t0);
	} else {
		/* The leader's count comes back through a third pipe. */
		int res[2];
		pid_t p1, p2;
		int st1 = 0, st2 = 0;

		if (pipe2(res, O_CLOEXEC) != 0)
			goto out;
		t0 = bench_now_ns();
		lead.until_ns = t0 + dur_ns;
		p2 = fork();
		if (p2 == 0) {
			pp_loop(&follow);
			_exit(0);
		}
		p1 = p2 < 0 ? -1 : fork();
		if (p1 == 0) {
			pp_loop(&lead);
			_exit(write(res[1], &lead.trips, sizeof(lead.trips)) ==
				      (ssize_t)sizeof(lead.trips)
				  ? 0
				  : 1);
		}
		if (p1 < 0 && p2 > 0) {
			char q = 'q';

			if (write(ab[1], &q, 1) != 1)
				kill(p2, SIGKILL);
		}
		if (p1 > 0)
			waitpid(p1, &st1, 0);
		if (p2 > 0)
			waitpid(p2, &st2, 0);
		t1 = bench_now_ns();
		if (p1 > 0 && p2 > 0 && WIFEXITED(st1) && WEXITSTATUS(st1) == 0 &&
		    read(res[0], &lead.trips, sizeof(lead.trips)) == (ssize_t)sizeof(lead.trips))
			rate = (double)lead.trips * 1e9 / (double)(t1 - t0);
		close(res[0]);
		close(res[1]);
	}
out:
	close(ab[0]);
	close(ab[1]);
	close(ba[0]);
	close(ba[1]);
	return rate;
}

/* A CPU this process may use (the last one), or -1. */
int ho_some_cpu(void)
{
	cpu_set_t set;
	int last = -1;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			last = c;
	return last;
}

/* Context-switch throughput with no runtime and with a BPF runtime alive and
 * idle; alternated, median of reps. Stats as found (normally off). */
void ho_run_cs_throughput(struct results *r, int reps, uint64_t dur_ns)
{
	double v[N_PP][2][8];
	int cpu = ho_some_cpu();

	for (int k = 0; k < reps; k++) {
		for (int with = 0; with < 2; with++) {
			struct lutf_runtime *rt = NULL;

			if (with) {
				if (ho_make_runtime(&modes[M_BPF], 1, 4, -1, &rt) != 0) {
					ho_fail(r, "handoff: %s: %ld\n", "cs runtime", 0);
					return;
				}
				if (ho_fell_back(rt, &modes[M_BPF])) {
					lutf_runtime_destroy(rt);
					return; /* nothing to compare */
				}
				bench_sleep_ns(20000000ull); /* Labors parked */
			}
			for (int p = 0; p < N_PP; p++) {
				v[p][with][k] = pingpong(cpu, p == PP_PROCS, dur_ns);
				if (v[p][with][k] < 0)
					ho_fail(r, "handoff: %s: ping-pong failed %ld\n", "cs", p);
			}
			if (rt)
				lutf_runtime_destroy(rt);
		}
	}
	for (int p = 0; p < N_PP; p++) {
		r->cs_none[p].rt_per_s = bench_median_d(v[p][0], (size_t)reps);
		r->cs_bpf[p].rt_per_s = bench_median_d(v[p][1], (size_t)reps);
		r->cs_none[p].ran = r->cs_bpf[p].ran = true;
	}
}

/* Probe cost per run while only non-Labor threads switch: a BPF runtime alive
 * and idle; the ping-pong in this process, then in two forked processes. */
void ho_run_probe_idle(struct results *r, uint64_t dur_ns)
{
	struct lutf_runtime *rt;
	int cpu = ho_some_cpu();

	if (ho_make_runtime(&modes[M_BPF], 1, 4, -1, &rt) != 0) {
		ho_fail(r, "handoff: %s: %ld\n", "probe runtime", 0);
		return;
	}
	if (ho_fell_back(rt, &modes[M_BPF])) {
		lutf_runtime_destroy(rt);
		return;
	}
	bench_sleep_ns(20000000ull);
	for (int p = 0; p < N_PP; p++) {
		uint64_t ns0, cnt0, ns1, cnt1;
		double rate;

		ho_bpf_counters(rt, &ns0, &cnt0);
		rate = pingpong(cpu, p == PP_PROCS, dur_ns);
		ho_bpf_counters(rt, &ns1, &cnt1);
		if (rate < 0)
			ho_fail(r, "handoff: %s: ping-pong failed %ld\n", "probe", p);
		r->pp_idle[p].rt_per_s = rate;
		r->pp_idle[p].runs = cnt1 - cnt0;
		r->pp_idle[p].ns_per_run =
		    cnt1 > cnt0 ? (double)(ns1 - ns0) / (double)(cnt1 - cnt0) : NAN;
		r->pp_idle[p].ran = cnt1 > cnt0;
	}
	lutf_runtime_destroy(rt);
}
