/* SPDX-License-Identifier: MIT */
/*
 * handoff's report: the tables per experiment and the targets (through
 * bench/common.c's target table), or one JSON object (its JSON writer).
 * Invariant: figures that did not run print n/a (null), never zero.
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

/* ---- report ---- */

static int targets(const struct results *r, struct bench_target *t)
{
	const struct handoff_run *b = &r->ho[M_BPF], *p = &r->ho[M_POLL20];
	bool bpf = r->bpf_ok && b->ran;
	double ratio = p->lat.median / b->lat.median;
	double blk = r->blk[M_BPF].calls_per_s / r->blk[M_OFF].calls_per_s;
	double probe_busy = b->bpf_ns_per_run;
	double probe_other = r->pp_idle[PP_PROCS].ns_per_run;
	double probe_same = r->pp_idle[PP_THREADS].ns_per_run;
	double rm[INTERLEAVE], rr[INTERLEAVE];
	double spin_med = NAN, vs_floor = NAN;
	int n = 0;

	/* Interleaved rounds: medians of the per-round medians and ratios. */
	if (r->n_rm > 0) {
		for (int k = 0; k < r->n_rm; k++) {
			rm[k] = r->rm_spin[k];
			rr[k] = r->rm_parked[k] / r->rm_cross[k];
		}
		spin_med = bench_median_d(rm, (size_t)r->n_rm);
		vs_floor = bench_median_d(rr, (size_t)r->n_rm);
	}

#define T(k, txt, v, lim, ok, ran, u) t[n++] = (struct bench_target){k, txt, v, lim, ok, u, !(ran)}
	T("handoff_median_us", "eBPF hand-off median <= 10 us (grace 0)", b->lat.median / 1e3, 10,
	  b->lat.median <= 10000, bpf, "us");
	T("handoff_p99_us", "eBPF hand-off p99 <= 60 us (grace 0)", b->lat.p99 / 1e3, 60,
	  b->lat.p99 <= 60000, bpf, "us");
	T("handoff_spinning_median_us", "hand-off median, a FREE Labor spinning <= 5 us",
	  spin_med / 1e3, 5, spin_med <= 5000, bpf && r->hos.ran && !isnan(spin_med), "us");
	T("handoff_parked_vs_floor", "hand-off median, all parked <= 1.2x cross-CPU wake", vs_floor,
	  1.2, vs_floor <= 1.2, bpf && !isnan(vs_floor), "x");
	T("handoff_vs_poll20", "median >= 5x lower than poll 20 us", ratio, 5, ratio >= 5,
	  bpf && p->ran, "x");
	T("sup_cpu_bpf_pct", "Supervisor CPU, eBPF, 1000 Bricks/s < 1%", r->sup[M_BPF].busy_pct, 1,
	  r->sup[M_BPF].busy_pct < 1, r->bpf_ok && r->sup[M_BPF].ran, "%");
	T("probe_ns_labors", "probe < 200 ns/run, Labors blocking", probe_busy, 200,
	  probe_busy < 200, bpf && !isnan(probe_busy) && r->stats_on, "ns");
	T("probe_ns_other_proc", "probe < 100 ns/run, other process", probe_other, 100,
	  probe_other < 100, r->pp_idle[PP_PROCS].ran && r->stats_on, "ns");
	T("probe_ns_same_proc", "probe < 100 ns/run, non-Labor thread", probe_same, 100,
	  probe_same < 100, r->pp_idle[PP_THREADS].ran && r->stats_on, "ns");
	T("blocking_bpf_vs_off", "blocking workload eBPF >= 6x off", blk, 6, blk >= 6,
	  r->bpf_ok && r->blk[M_BPF].ran && !r->blk[M_BPF].fell_back, "x");
#undef T
	return n;
}

#define COLW 14

static void row_label(const char *label)
{
	printf("%-40s", label);
}

static void cell(const char *s)
{
	printf(" %*s", COLW, s);
}

static void print_handoff_row(const struct results *r, const struct handoff_run *h, int which)
{
	char b[40], w[24];

	for (int mi = 0; mi < N_MODES; mi++) {
		const struct handoff_run *x = &h[mi];

		if (!x->ran) {
			cell("-");
			continue;
		}
		if (modes[mi].watch == LUTF_WATCH_OFF) {
			/* No hand-off: the probe waits for the whole block. */
			if (which == 0)
				snprintf(b, sizeof(b), "never");
			else if (which == 1)
				snprintf(b, sizeof(b), "(%s)",
					 bench_fmt_ns(w, sizeof(w), x->lat.median));
			else
				snprintf(b, sizeof(b), "-");
			cell(b);
			continue;
		}
		if (x->fell_back && mi == M_BPF) {
			cell("n/a (poll)");
			continue;
		}
		switch (which) {
		case 0:
			bench_fmt_ns(b, sizeof(b), x->lat.median);
			break;
		case 1:
			bench_fmt_ns(b, sizeof(b), x->lat.p99);
			break;
		case 2:
			bench_fmt_ns(b, sizeof(b), x->p90);
			break;
		case 4:
			snprintf(b, sizeof(b), "%llu", (unsigned long long)x->slow);
			break;
		default:
			snprintf(b, sizeof(b), "%llu/%llu", (unsigned long long)x->handoffs,
				 (unsigned long long)x->rounds);
			break;
		}
		cell(b);
	}
	(void)r;
	printf("\n");
}

void ho_print_table(const struct results *r)
{
	struct bench_target t[12];
	int nt = targets(r, t);
	char b[64];

	printf("lutf labor_watch benchmark%s: %s; timer overhead %.1f ns per read\n",
	       r->quick ? " (--quick)" : "", r->machine, r->timer_ns);
	printf("BPF mode: %s%s%s; kernel.bpf_stats_enabled was %d, %s\n\n",
	       r->bpf_ok ? "loaded, " : "not available (runtime fell back to polling)",
	       r->bpf_ok ? r->attach : "", "", r->stats_old,
	       r->stats_on ? "set to 1 for the probe figures, restored after"
	       : r->bpf_ok ? "could not be set: probe figures skipped"
			   : "left alone");
	row_label("");
	for (int mi = 0; mi < N_MODES; mi++)
		cell(modes[mi].label);
	printf("\n");
	printf("Hand-off: block stamp -> next Brick of the Cart starts on another Labor\n");
	printf("(1 Cart, 4 Labors; grace 0)\n");
	row_label("  median");
	print_handoff_row(r, r->ho, 0);
	row_label("  p90");
	print_handoff_row(r, r->ho, 2);
	row_label("  p99 (off: median wait for a 2 ms block)");
	print_handoff_row(r, r->ho, 1);
	row_label("  hand-offs / rounds");
	print_handoff_row(r, r->ho, 3);
	row_label("  hand-offs over 500 us");
	print_handoff_row(r, r->ho, 4);
	if (r->bpf_ok && r->hos.ran) {
		char m[24], p90[24], p99[24];

		printf("eBPF, a FREE Labor spinning (spin %u us; the direct take): median %s, "
		       "p90 %s, p99 %s,\n  hand-offs/rounds %llu/%llu, over 500 us %llu\n",
		       SPIN_RUN_NS / 1000, bench_fmt_ns(m, sizeof(m), r->hos.lat.median),
		       bench_fmt_ns(p90, sizeof(p90), r->hos.p90),
		       bench_fmt_ns(p99, sizeof(p99), r->hos.lat.p99),
		       (unsigned long long)r->hos.handoffs, (unsigned long long)r->hos.rounds,
		       (unsigned long long)r->hos.slow);
	}
	if (r->n_rm > 0) {
		printf("Interleaved rounds (eBPF grace 0; median of each round):\n");
		printf("  %-8s %14s %14s %18s %10s %12s %12s\n", "round", "all parked",
		       "one spinning", "cross-CPU wake", "parked/wake", "probe task", "probe hash");
		for (int k = 0; k < r->n_rm; k++) {
			char a[24], c[24], w[24];

			printf("  %-8d %14s %14s %18s %9.2fx %9.1f ns %9.1f ns\n", k + 1,
			       bench_fmt_ns(a, sizeof(a), r->rm_parked[k]),
			       bench_fmt_ns(c, sizeof(c), r->rm_spin[k]),
			       bench_fmt_ns(w, sizeof(w), r->rm_cross[k]),
			       r->rm_parked[k] / r->rm_cross[k], r->rp_task[k], r->rp_hash[k]);
		}
		printf(
		    "  (probe: ns per run during the parked rounds, stats on; task = tp_btf with\n"
		    "   task storage, hash = raw_tp with the tid hash, run right after it)\n");
	}
	printf("(default grace %u us)\n", r->default_grace / 1000);
	row_label("  median");
	print_handoff_row(r, r->hod, 0);
	row_label("  p99");
	print_handoff_row(r, r->hod, 1);
	row_label("  hand-offs / rounds");
	print_handoff_row(r, r->hod, 3);
	row_label("  hand-offs over 500 us");
	print_handoff_row(r, r->hod, 4);

	printf("Supervisor thread CPU, %% of one core (schedstat)\n");
	row_label("  1000 no-op Bricks/s");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.3f%%", r->sup[mi].busy_pct);
		cell(r->sup[mi].ran ? (r->sup[mi].fell_back ? "n/a (poll)" : b) : "-");
	}
	printf("\n");
	row_label("    same, utime+stime (10 ms ticks)");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.2f%%", r->sup[mi].busy_ticks_pct);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("    lutf-sup runs per second");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%llu", (unsigned long long)r->sup[mi].wakeups);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("    whole process");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.2f%%", r->sup[mi].proc_pct);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("  1 computing Brick always in flight");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.2f%%", r->sup[mi].inflight_pct);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("    lutf-sup runs per second");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%llu", (unsigned long long)r->sup[mi].inflight_wakeups);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("  idle (runtime alive, no traffic)");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.3f%%", r->sup[mi].idle_pct);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");

	printf("Blocking workload: 2 Carts, 16 Labors, sleep 1 ms a call (%.3f ms measured),\n"
	       "all submitted at once; median of runs\n",
	       r->sleep_ns / 1e6);
	row_label("  calls/s");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.0f", r->blk[mi].calls_per_s);
		cell(r->blk[mi].ran ? (r->blk[mi].fell_back ? "n/a (poll)" : b) : "-");
	}
	printf("\n");
	row_label("  vs off");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.2fx", r->blk[mi].calls_per_s / r->blk[M_OFF].calls_per_s);
		cell(r->blk[mi].ran && !r->blk[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("  ceiling: Labors (2 off, 16 on) / sleep");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.0f", (mi == M_OFF ? 2 : 16) * 1e9 / r->sleep_ns);
		cell(r->blk[mi].ran && !r->blk[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("  rebinds per run");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%llu", (unsigned long long)r->blk[mi].rebinds);
		cell(r->blk[mi].ran && !r->blk[mi].fell_back ? b : "-");
	}
	printf("\n\n");

	printf("Probe cost (bpf_run_ns / bpf_run_cnt, stats on; all switches on the machine):\n");
	if (!r->bpf_ok || !r->stats_on) {
		printf("  skipped: %s\n", !r->bpf_ok ? "BPF not available"
						     : "kernel.bpf_stats_enabled could not be set");
	} else {
		printf("  %-58s %10s %12s\n", "while", "ns/run", "runs");
		printf("  %-58s %10.1f %12llu\n", "Labors blocking and waking (hand-off rounds)",
		       r->ho[M_BPF].bpf_ns_per_run, (unsigned long long)r->ho[M_BPF].bpf_runs);
		printf("  %-58s %10.1f %12llu\n", "  same rounds, raw_tp twin (tid hash)",
		       r->hoh.bpf_ns_per_run, (unsigned long long)r->hoh.bpf_runs);
		printf("  %-58s %10.1f %12llu\n",
		       "  a FREE Labor spinning (direct takes, fewer wake-ups)",
		       r->hos.bpf_ns_per_run, (unsigned long long)r->hos.bpf_runs);
		printf("  %-58s %10.1f %12llu\n", "Labors blocking and waking (blocking workload)",
		       r->blk[M_BPF].bpf_ns_per_run, (unsigned long long)r->blk[M_BPF].bpf_runs);
		printf("  %-58s %10.1f %12llu\n",
		       "ping-pong, 2 threads of the Labors' process (hash miss)",
		       r->pp_idle[PP_THREADS].ns_per_run,
		       (unsigned long long)r->pp_idle[PP_THREADS].runs);
		printf("  %-58s %10.1f %12llu\n", "ping-pong, 2 forked processes (tgid filter)",
		       r->pp_idle[PP_PROCS].ns_per_run,
		       (unsigned long long)r->pp_idle[PP_PROCS].runs);
	}
	printf("\nContext-switch throughput: pipe ping-pong, both sides pinned to one CPU,\n"
	       "round trips/s (2 switches each), median; stats as found (%d)\n",
	       r->stats_old);
	printf("  %-36s %14s %16s %9s\n", "pair", "no runtime", "BPF runtime idle", "change");
	for (int p = 0; p < N_PP; p++) {
		if (!r->cs_none[p].ran) {
			printf("  %-36s %14s\n", p ? "2 processes" : "2 threads (Labors' process)",
			       "skipped (no BPF)");
			continue;
		}
		printf("  %-36s %14.0f %16.0f %8.1f%%\n",
		       p ? "2 processes" : "2 threads (Labors' process)", r->cs_none[p].rt_per_s,
		       r->cs_bpf[p].rt_per_s,
		       100.0 * (r->cs_bpf[p].rt_per_s / r->cs_none[p].rt_per_s - 1.0));
	}
	printf("\nFloor: futex wake-ups (a thread blocked in futex_wait is woken; time until it\n"
	       "runs and stamps). A hand-off needs two in a row (lutf-sup, then a Labor).\n");
	printf("  %-44s %10s %10s\n", "", "median", "p99");
	printf("  %-44s %10s", "1 wake-up, both on one CPU",
	       bench_fmt_ns(b, sizeof(b), r->wake_same.median));
	printf(" %10s\n", bench_fmt_ns(b, sizeof(b), r->wake_same.p99));
	printf("  %-44s %10s", "1 wake-up, wakee on the other (idle) CPU",
	       bench_fmt_ns(b, sizeof(b), r->wake_cross.median));
	printf(" %10s\n", bench_fmt_ns(b, sizeof(b), r->wake_cross.p99));
	printf("  %-44s %10s", "2 wake-ups in a row, not pinned",
	       bench_fmt_ns(b, sizeof(b), r->wake2.median));
	printf(" %10s\n", bench_fmt_ns(b, sizeof(b), r->wake2.p99));

	bench_targets_print(t, nt);
	printf("\nerrors: %d (lost Bricks, wrong statuses, Bricks that did not run)\n", r->errors);
}

static void json_handoff(struct bench_json *j, const char *key, const struct handoff_run *h)
{
	bench_json_obj(j, key);
	for (int mi = 0; mi < N_MODES; mi++) {
		const struct handoff_run *x = &h[mi];

		if (!x->ran)
			continue;
		bench_json_obj(j, modes[mi].key);
		bench_json_bool(j, "fell_back_to_poll", x->fell_back);
		bench_json_u64(j, "grace_ns", x->grace_ns);
		bench_json_u64(j, "rounds", x->rounds);
		bench_json_u64(j, "handoffs", x->handoffs);
		bench_json_u64(j, "stalls", x->stalls);
		bench_json_u64(j, "early", x->early);
		bench_json_u64(j, "over_500us", x->slow);
		bench_json_u64(j, "rebinds", x->rebinds);
		bench_json_num(j,
			       modes[mi].watch == LUTF_WATCH_OFF ? "wait_median_ns" : "median_ns",
			       x->lat.median);
		bench_json_num(j, "p90_ns", x->p90);
		bench_json_num(j, "p99_ns", x->lat.p99);
		bench_json_num(j, "mean_ns", x->lat.mean);
		bench_json_num(j, "min_ns", x->min);
		bench_json_num(j, "max_ns", x->max);
		if (modes[mi].watch == LUTF_WATCH_BPF) {
			bench_json_num(j, "bpf_ns_per_run", x->bpf_ns_per_run);
			bench_json_u64(j, "bpf_runs", x->bpf_runs);
		}
		bench_json_close_obj(j);
	}
	bench_json_close_obj(j);
}

void ho_print_json(const struct results *r)
{
	struct bench_target t[12];
	int nt = targets(r, t);
	struct bench_json j;

	bench_json_begin(&j, stdout);
	bench_json_str(&j, "bench", "handoff");
	bench_json_str(&j, "machine", r->machine);
	bench_json_bool(&j, "quick", r->quick);
	bench_json_num(&j, "timer_overhead_ns", r->timer_ns);
	bench_json_bool(&j, "bpf", r->bpf_ok);
	bench_json_str(&j, "bpf_attach", r->attach);
	bench_json_num(&j, "bpf_stats_enabled_was", r->stats_old);
	bench_json_bool(&j, "bpf_stats_set", r->stats_on);
	bench_json_u64(&j, "default_grace_ns", r->default_grace);
	json_handoff(&j, "handoff_grace0", r->ho);
	json_handoff(&j, "handoff_default_grace", r->hod);
	{
		struct handoff_run one[N_MODES] = {0};

		one[M_BPF] = r->hos;
		json_handoff(&j, "handoff_spinning", one);
	}
	bench_json_arr(&j, "interleaved");
	for (int k = 0; k < r->n_rm; k++) {
		bench_json_obj(&j, NULL);
		bench_json_num(&j, "parked_median_ns", r->rm_parked[k]);
		bench_json_num(&j, "spinning_median_ns", r->rm_spin[k]);
		bench_json_num(&j, "cross_cpu_wake_median_ns", r->rm_cross[k]);
		bench_json_num(&j, "probe_task_storage_ns_per_run", r->rp_task[k]);
		bench_json_num(&j, "probe_tid_hash_ns_per_run", r->rp_hash[k]);
		bench_json_close_obj(&j);
	}
	bench_json_close_arr(&j);
	bench_json_obj(&j, "supervisor_cpu");
	for (int mi = 0; mi < N_MODES; mi++) {
		const struct sup_cpu *s = &r->sup[mi];

		if (!s->ran)
			continue;
		bench_json_obj(&j, modes[mi].key);
		bench_json_bool(&j, "fell_back_to_poll", s->fell_back);
		bench_json_num(&j, "busy_pct", s->busy_pct);
		bench_json_num(&j, "busy_ticks_pct", s->busy_ticks_pct);
		bench_json_u64(&j, "sup_runs_per_s", s->wakeups);
		bench_json_num(&j, "process_pct", s->proc_pct);
		bench_json_num(&j, "idle_pct", s->idle_pct);
		bench_json_num(&j, "inflight_pct", s->inflight_pct);
		bench_json_u64(&j, "inflight_sup_runs_per_s", s->inflight_wakeups);
		bench_json_num(&j, "bricks_per_s", s->rate);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_num(&j, "sleep_1ms_measured_ns", r->sleep_ns);
	bench_json_obj(&j, "blocking");
	for (int mi = 0; mi < N_MODES; mi++) {
		const struct blocking_run *x = &r->blk[mi];

		if (!x->ran)
			continue;
		bench_json_obj(&j, modes[mi].key);
		bench_json_bool(&j, "fell_back_to_poll", x->fell_back);
		bench_json_num(&j, "calls_per_s", x->calls_per_s);
		bench_json_num(&j, "vs_off", x->calls_per_s / r->blk[M_OFF].calls_per_s);
		bench_json_u64(&j, "rebinds", x->rebinds);
		if (modes[mi].watch == LUTF_WATCH_BPF)
			bench_json_num(&j, "bpf_ns_per_run", x->bpf_ns_per_run);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_obj(&j, "probe_idle");
	for (int p = 0; p < N_PP; p++) {
		if (!r->pp_idle[p].ran)
			continue;
		bench_json_obj(&j, p ? "processes" : "threads");
		bench_json_num(&j, "ns_per_run", r->pp_idle[p].ns_per_run);
		bench_json_u64(&j, "runs", r->pp_idle[p].runs);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_obj(&j, "cs_throughput");
	for (int p = 0; p < N_PP; p++) {
		if (!r->cs_none[p].ran)
			continue;
		bench_json_obj(&j, p ? "processes" : "threads");
		bench_json_num(&j, "no_runtime_rt_per_s", r->cs_none[p].rt_per_s);
		bench_json_num(&j, "bpf_runtime_rt_per_s", r->cs_bpf[p].rt_per_s);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_obj(&j, "wake_chain");
	bench_json_num(&j, "same_cpu_median_ns", r->wake_same.median);
	bench_json_num(&j, "same_cpu_p99_ns", r->wake_same.p99);
	bench_json_num(&j, "cross_cpu_median_ns", r->wake_cross.median);
	bench_json_num(&j, "cross_cpu_p99_ns", r->wake_cross.p99);
	bench_json_num(&j, "two_median_ns", r->wake2.median);
	bench_json_num(&j, "two_p99_ns", r->wake2.p99);
	bench_json_close_obj(&j);
	bench_targets_json(&j, t, nt);
	bench_json_u64(&j, "errors", (uint64_t)r->errors);
	bench_json_end(&j);
}
