/* SPDX-License-Identifier: MIT */
/*
 * handoff: what labor_watch buys and costs, with the watch modes side by side
 * (eBPF, polling every 20 us, polling every 1 ms, no re-binding): how soon a
 * Cart stuck behind a blocked Labor reaches another Labor, what the Supervisor
 * thread burns, what the sched_switch probe costs per run and per context
 * switch, and the throughput of a blocking workload. Targets are printed,
 * never asserted; a lost Brick or a wrong status makes the program exit 1.
 * This file runs the experiments in order (one file each: see handoff.h).
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

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct results *r;
	struct lutf_config cfg;
	struct lutf_runtime *rt;
	struct lutf_runtime_stats st;
	uint64_t rounds, *lat;
	int err;

	bench_parse_args(
	    argc, argv,
	    "labor_watch: hand-off latency (Supervisor and direct take), Supervisor CPU, probe "
	    "cost "
	    "and a blocking workload, per watch mode (bpf, poll 20 us, poll 1 ms, off).",
	    &o);
	rounds = o.quick ? 300 : 10000;
	r = calloc(1, sizeof(*r));
	lat = calloc(rounds > 4000 ? rounds : 4000, sizeof(*lat));
	if (!r || !lat || ho_latency_init() != 0) {
		fprintf(stderr, "handoff: out of memory or no pipe\n");
		return 1;
	}
	r->quick = o.quick;
	bench_machine(r->machine, sizeof(r->machine));
	r->timer_ns = bench_timer_overhead_ns();
	lutf_config_init(&cfg);
	r->default_grace = cfg.grace_ns;

	/* Is BPF there? */
	err = ho_make_runtime(&modes[M_BPF], 1, 4, -1, &rt);
	if (err) {
		fprintf(stderr, "handoff: cannot create a runtime: %s\n", strerror(-err));
		return 1;
	}
	lutf_runtime_stats(rt, &st);
	r->bpf_ok = st.watch == LUTF_WATCH_BPF;
	snprintf(r->attach, sizeof(r->attach), "%s", st.bpf_attach);
	lutf_runtime_destroy(rt);
	if (!r->bpf_ok)
		fprintf(stderr, "handoff: BPF mode unavailable: BPF figures are skipped\n");

	/* Context-switch throughput, stats as found (before we turn them on). */
	ho_stats_old = ho_stats_read();
	r->stats_old = ho_stats_old;
	if (r->bpf_ok)
		ho_run_cs_throughput(r, o.quick ? 1 : 5, o.quick ? 100000000ull : 300000000ull);

	atexit(ho_stats_restore);
	signal(SIGINT, ho_on_signal);
	signal(SIGTERM, ho_on_signal);
	r->stats_on = r->bpf_ok && ho_stats_set(1);
	if (r->bpf_ok && !r->stats_on)
		fprintf(stderr, "handoff: cannot write %s: probe cost skipped\n", STATS_SYSCTL);

	/* 1. Hand-off latency, grace 0, then the default grace. The eBPF runs
	 * (every Labor parked: the Supervisor's path; one Labor spinning: the
	 * direct take) and the cross-CPU wake-up floor they are held against run
	 * in INTERLEAVE interleaved rounds, so that the host's noise hits all
	 * three alike; targets use the median of the per-round figures. */
	for (int mi = 0; mi < N_MODES; mi++) {
		uint64_t n = modes[mi].watch == LUTF_WATCH_OFF ? (o.quick ? 10 : 50) : rounds;

		if (mi == M_BPF)
			continue;
		ho_run_handoff(r, mi, 0, n, &r->ho[mi], lat);
	}
	{
		int a = -1, b = ho_some_cpu();
		uint64_t wrounds = o.quick ? 200 : 2000;
		struct handoff_run runs[INTERLEAVE], spins[INTERLEAVE], raws[INTERLEAVE];
		struct bench_stats cross[INTERLEAVE];
		cpu_set_t set;

		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			for (int c = 0; c < CPU_SETSIZE && a < 0; c++)
				if (CPU_ISSET(c, &set) && c != b)
					a = c;
		for (int k = 0; k < INTERLEAVE; k++) {
			if (r->bpf_ok) {
				ho_run_handoff(r, M_BPF, 0, rounds / INTERLEAVE, &runs[k], lat);
				ho_run_handoff_spin(r, rounds / INTERLEAVE, &spins[k], lat);
				/* The same rounds with the raw_tp twin (the tid
				 * hash): the probe's lookup cost side by side. */
				setenv("LUTF_LABOR_WATCH_RAW_TP", "1", 1);
				ho_run_handoff(r, M_BPF, 0, rounds / INTERLEAVE, &raws[k], lat);
				unsetenv("LUTF_LABOR_WATCH_RAW_TP");
				r->rm_parked[k] = runs[k].lat.median;
				r->rm_spin[k] = spins[k].lat.median;
				r->rp_task[k] = runs[k].bpf_ns_per_run;
				r->rp_hash[k] = raws[k].bpf_ns_per_run;
			}
			if (a >= 0)
				ho_run_wake_chain(r, 1, a, b, wrounds / INTERLEAVE, lat, &cross[k]);
			else
				cross[k].median = cross[k].p99 = NAN;
			r->rm_cross[k] = cross[k].median;
		}
		r->n_rm = INTERLEAVE;
		if (r->bpf_ok) {
			ho_merge_runs(runs, INTERLEAVE, &r->ho[M_BPF]);
			ho_merge_runs(spins, INTERLEAVE, &r->hos);
			ho_merge_runs(raws, INTERLEAVE, &r->hoh);
		}
		ho_run_wake_chain(r, 1, b, b, wrounds, lat, &r->wake_same);
		if (a >= 0)
			ho_run_wake_chain(r, 1, a, b, wrounds, lat, &r->wake_cross);
		else
			r->wake_cross.median = r->wake_cross.p99 = NAN;
		ho_run_wake_chain(r, 2, -1, -1, wrounds, lat, &r->wake2);
	}
	if (r->bpf_ok)
		ho_run_handoff(r, M_BPF, -1, rounds, &r->hod[M_BPF], lat);
	ho_run_handoff(r, M_POLL20, -1, rounds, &r->hod[M_POLL20], lat);

	/* 3. Probe cost while only non-Labor threads switch. */
	if (r->bpf_ok && r->stats_on)
		ho_run_probe_idle(r, o.quick ? 200000000ull : 1000000000ull);

	/* 2. Supervisor CPU. */
	for (int mi = 0; mi < N_MODES; mi++) {
		if (mi == M_BPF && !r->bpf_ok)
			continue;
		ho_run_sup_cpu(r, mi, o.quick ? 300000000ull : 2000000000ull,
			       o.quick ? 100000000ull : 500000000ull, &r->sup[mi]);
	}

	/* 4. Blocking workload; first what a 1 ms nanosleep really takes. */
	{
		double v[50];

		for (int i = 0; i < 50; i++) {
			uint64_t t0 = bench_now_ns();

			ho_sleep_fn(NULL);
			v[i] = (double)(bench_now_ns() - t0);
		}
		r->sleep_ns = bench_median_d(v, 50);
	}
	for (int mi = 0; mi < N_MODES; mi++) {
		if (mi == M_BPF && !r->bpf_ok)
			continue;
		ho_run_blocking(r, mi, o.quick ? 200 : 2000, o.quick ? 1 : 3, &r->blk[mi]);
	}
	ho_stats_restore();

	if (o.json)
		ho_print_json(r);
	else
		ho_print_table(r);
	err = r->errors ? 1 : 0;
	free(lat);
	free(r);
	return err;
}
