/* SPDX-License-Identifier: MIT */
/*
 * tiers: what isolation costs through lutfd. Per tier, against a tenant with
 * no confinement at all ("none", lutfd's allow_tier_none) in the same run:
 * invoke latency (median, p99) and throughput of a no-op function and of one
 * making 100 futex wakes per call (cheap syscalls every tier allows, so the
 * seccomp filter's cost shows); time from deploy of a new tenant to its first
 * OK invoke; time from a worker crash to the tenant's next OK call; and,
 * outside lutfd, what the filter itself costs per syscall (forked children
 * under each tier's filter alone, timing futex wakes, which the kernel's
 * action cache answers, and prctl(PR_SET_NAME), which walks the filter). The
 * bench starts its own lutfd on private /tmp folders. Targets are printed,
 * never asserted; a wrong status or a lost reply exits 1; not root exits 77.
 * Noise: every tier runs in each round, in a rotated order, and the "vs none"
 * figures are medians of per-round ratios, so a busy spell of the host hits
 * one round's ratios, not one tier.
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "common.h"
#include "fault_util.h"
#include "sandbox.h"

#define WINDOW 32     /* calls in flight in the throughput runs */
#define ROUNDS 10     /* every tier measured in turn, this many times */
#define ROUNDS_QUICK 3
#define NTIERS 5

static const char *const tiers[NTIERS] = {"none", "pure", "basic", "service", "compat"};
static const char *const ex[] = {"ok=ok", "futex100=futex100", "segv=segv", NULL};

struct fn_row {
	struct bench_stats lat; /* ns */
	double per_s;		/* calls per second, WINDOW in flight */
};

struct tier_row {
	double first_ms; /* deploy sent -> first OK invoke */
	struct fn_row noop, sys;
	double sys_ratio;	   /* median over rounds of (100 futex/s) / none's */
	double futex_ns, prctl_ns; /* one call under the tier's filter alone */
	double futex_extra_ns, prctl_extra_ns; /* median of per-round (tier - none) */
};

static struct td d;
static int cfd = -1, dfd = -1;

static void die(const char *what, uint32_t st, const char *text)
{
	char cmd[600];

	fprintf(stderr, "tiers: %s: status %u (%s); lutfd log in %s, its end:\n", what, st, text,
		d.log);
	snprintf(cmd, sizeof(cmd), "tail -n 25 '%s' >&2", d.log);
	(void)!system(cmd);
	if (cfd >= 0)
		close(cfd);
	if (dfd >= 0)
		close(dfd);
	fx_stop(&d);
	exit(1);
}

/* n sequential round trips into v: latency. */
static void latency(const char *tenant, const char *fn, size_t n, uint64_t *v)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		struct fx_res r = fx_call(dfd, tenant, fn, "x", 0, 10000);

		if (r.status != LUTF_STATUS_OK)
			die(fn, r.status, r.text);
		v[i] = bench_now_ns() - t0;
	}
}

/* WINDOW calls in flight on one connection: calls per second. */
static double throughput(const char *tenant, const char *fn, uint64_t n)
{
	uint64_t sent = 0, got = 0, t0 = bench_now_ns(), id;
	struct fx_res r;

	while (got < n) {
		while (sent < n && sent - got < WINDOW)
			if (!fx_send(dfd, ++sent, tenant, fn, "x", 0))
				die("send", 0, "connection lost");
		if (!fx_recv(dfd, &id, &r, 10000))
			die("recv", 0, "no reply within 10 s");
		if (r.status != LUTF_STATUS_OK)
			die(fn, r.status, r.text);
		got++;
	}
	return (double)n / ((double)(bench_now_ns() - t0) / 1e9);
}

/* Deploy a new tenant and call ok until it answers: ms from deploy sent. */
static double first_invoke(const char *tenant, const char *tier)
{
	uint64_t t0 = bench_now_ns();
	char msg[300];
	uint32_t st = fx_deploy(cfd, tenant, "fault", FAULT_SO, ex, tier, 0, msg, sizeof(msg));

	if (st != LUTF_STATUS_OK)
		die("deploy", st, msg);
	for (int i = 0; i < 5000; i++) {
		struct fx_res r = fx_call(dfd, tenant, "ok", "x", 0, 10000);

		if (r.status == LUTF_STATUS_OK)
			return (double)(bench_now_ns() - t0) / 1e6;
		td_sleep_ms(1);
	}
	die("first invoke", 0, "never OK");
	return NAN;
}

/* A fresh tenant's worker crashes (first death: restarted at once); ms from
 * the crash's reply to the next OK reply of a call queued behind it. */
static double recovery(const char *tenant)
{
	uint64_t id, t_crash = 0;
	struct fx_res r;

	first_invoke(tenant, "basic");
	if (!fx_send(dfd, 1, tenant, "segv", "0", 0) || !fx_send(dfd, 2, tenant, "ok", "x", 0))
		die("send", 0, "connection lost");
	for (int i = 0; i < 2; i++) {
		if (!fx_recv(dfd, &id, &r, 10000))
			die("recovery", 0, "no reply within 10 s");
		if (id == 1 && r.status != LUTF_STATUS_CRASHED)
			die("segv", r.status, r.text);
		if (id == 2 && r.status != LUTF_STATUS_OK)
			die("ok after crash", r.status, r.text);
		if (id == 1)
			t_crash = bench_now_ns();
		else if (!t_crash)
			die("ok after crash", 0, "answered before the crash");
		else
			return (double)(bench_now_ns() - t_crash) / 1e6;
	}
	return NAN;
}

/*
 * One syscall's cost under tier's filter alone: a forked child (a filter
 * cannot be taken off) loads the policy, installs the filter (none: no
 * filter) and times n futex wakes with no waiter and n prctl(PR_SET_NAME).
 * Returns false when the child fails.
 */
static bool filter_cost(const char *tier, int n, double *futex_ns, double *prctl_ns)
{
	double r[2];
	int pfd[2], status;
	pid_t pid;

	if (pipe(pfd))
		return false;
	pid = fork();
	if (pid == 0) {
		struct lutf_policy *p = NULL;
		char err[256];
		uint32_t word = 0;
		uint64_t t0, t1, t2;

		close(pfd[0]);
		if (!strcmp(tier, "allow-all")) {
			/* The mechanism alone: one instruction that allows every call. */
			struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
			struct sock_fprog prog = {.len = 1, .filter = &allow};

			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
			    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
				_exit(1);
		} else if (strcmp(tier, "none")) {
			if (lutf_policy_load(LUTF_POLICY_DIR, tier, &p, err, sizeof(err)) ||
			    lutf_seccomp_apply(p, err, sizeof(err))) {
				fprintf(stderr, "tiers: filter %s: %s\n", tier, err);
				_exit(1);
			}
		}
		t0 = bench_now_ns();
		for (int i = 0; i < n; i++)
			syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		t1 = bench_now_ns();
		for (int i = 0; i < n; i++)
			prctl(PR_SET_NAME, "lutf-bench");
		t2 = bench_now_ns();
		r[0] = (double)(t1 - t0) / n;
		r[1] = (double)(t2 - t1) / n;
		_exit(write(pfd[1], r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(pfd[1]);
	if (pid < 0 || read(pfd[0], r, sizeof(r)) != (ssize_t)sizeof(r)) {
		close(pfd[0]);
		if (pid > 0)
			waitpid(pid, &status, 0);
		return false;
	}
	close(pfd[0]);
	waitpid(pid, &status, 0);
	*futex_ns = r[0];
	*prctl_ns = r[1];
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void fmt_lat(char *buf, size_t cap, const struct bench_stats *s)
{
	char a[32], b[32];

	snprintf(buf, cap, "%s / %s", bench_fmt_ns(a, sizeof(a), s->median),
		 bench_fmt_ns(b, sizeof(b), s->p99));
}

int main(int argc, char **argv)
{
	struct tier_row rows[NTIERS];
	uint64_t *lat_noop[NTIERS], *lat_sys[NTIERS];
	double thr_noop[NTIERS][ROUNDS], thr_sys[NTIERS][ROUNDS], ratio[ROUNDS];
	double fx[NTIERS][ROUNDS], pc[NTIERS][ROUNDS], diff[ROUNDS];
	double fa[ROUNDS], pa[ROUNDS], fa_extra, pa_extra; /* the allow-all filter */
	int rounds, nfilter;
	struct bench_opts o;
	struct bench_target t[8];
	double rec[8], first_max = 0, cost_max = 0, rec_med;
	char machine[128], buf[64], buf2[64], status_iso[300] = "";
	size_t nlat;
	uint64_t nthr;
	int nrec, nt = 0;

	bench_parse_args(argc, argv,
			 "isolation tiers through lutfd: invoke latency and throughput per tier "
			 "against no filter (no-op and 100 futex wakes per call), deploy to first "
			 "invoke, crash to next OK call. Needs root (else exit 77).",
			 &o);
	if (geteuid() != 0) {
		fprintf(stderr, "tiers: skipped: lutfd needs root (zygote, worker uids)\n");
		return 77;
	}
	nlat = o.quick ? 150 : 5000;
	nthr = o.quick ? 1500 : 50000;
	nrec = o.quick ? 2 : 8;
	rounds = o.quick ? ROUNDS_QUICK : ROUNDS;
	nfilter = o.quick ? 20000 : 200000;
	for (int i = 0; i < NTIERS; i++) {
		lat_noop[i] = calloc(nlat, sizeof(uint64_t));
		lat_sys[i] = calloc(nlat, sizeof(uint64_t));
		if (!lat_noop[i] || !lat_sys[i])
			return 1;
	}
	bench_machine(machine, sizeof(machine));
	if (!fx_start(&d, "allow_tier_none = on\ncarts = 1\nlabors = 2\nlabors_max = 4\n")) {
		fprintf(stderr, "tiers: lutfd did not start (log in %s)\n", d.log);
		fx_stop(&d);
		return 1;
	}
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	if (cfd < 0 || dfd < 0)
		die("connect", 0, "");
	/* The first tenant also loads lutfd's BPF programs: not a tier's cost. */
	first_invoke("warmup", "none");
	for (int i = 0; i < NTIERS; i++) {
		char tenant[32];

		snprintf(tenant, sizeof(tenant), "t%s", tiers[i]);
		rows[i].first_ms = first_invoke(tenant, tiers[i]);
		if (i && rows[i].first_ms > first_max)
			first_max = rows[i].first_ms;
	}
	/* Rounds, every tier in turn in each: a noisy neighbour on this shared
	 * host then hits all tiers alike instead of whichever ran at the time. */
	for (int k = 0; k < rounds; k++) {
		for (int j = 0; j < NTIERS; j++) {
			int i = (j + k) % NTIERS; /* rotated: no tier always first */
			char tenant[32];
			size_t off = (size_t)k * (nlat / (size_t)rounds);

			snprintf(tenant, sizeof(tenant), "t%s", tiers[i]);
			latency(tenant, "ok", nlat / (size_t)rounds, lat_noop[i] + off);
			latency(tenant, "futex100", nlat / (size_t)rounds, lat_sys[i] + off);
			thr_noop[i][k] = throughput(tenant, "ok", nthr / (uint64_t)rounds);
			thr_sys[i][k] = throughput(tenant, "futex100", nthr / (uint64_t)rounds);
		}
	}
	/* The filter alone, per syscall: tiers interleaved in every round too. */
	for (int k = 0; k < rounds; k++)
		for (int j = 0; j < NTIERS; j++) {
			int i = (j + k) % NTIERS;

			if (!filter_cost(tiers[i], nfilter, &fx[i][k], &pc[i][k]))
				die("filter cost", 0, tiers[i]);
			if (j == NTIERS / 2 && !filter_cost("allow-all", nfilter, &fa[k], &pa[k]))
				die("filter cost", 0, "allow-all");
		}
	for (int k = 0; k < rounds; k++)
		diff[k] = fa[k] - fx[0][k];
	fa_extra = bench_median_d(diff, (size_t)rounds);
	for (int k = 0; k < rounds; k++)
		diff[k] = pa[k] - pc[0][k];
	pa_extra = bench_median_d(diff, (size_t)rounds);
	for (int i = 0; i < NTIERS; i++) {
		size_t n = (nlat / (size_t)rounds) * (size_t)rounds;

		for (int k = 0; k < rounds; k++)
			ratio[k] = thr_sys[i][k] / thr_sys[0][k];
		rows[i].sys_ratio = bench_median_d(ratio, (size_t)rounds);
		for (int k = 0; k < rounds; k++)
			diff[k] = fx[i][k] - fx[0][k];
		rows[i].futex_extra_ns = bench_median_d(diff, (size_t)rounds);
		for (int k = 0; k < rounds; k++)
			diff[k] = pc[i][k] - pc[0][k];
		rows[i].prctl_extra_ns = bench_median_d(diff, (size_t)rounds);
		bench_stats(lat_noop[i], n, &rows[i].noop.lat);
		bench_stats(lat_sys[i], n, &rows[i].sys.lat);
		rows[i].noop.per_s = bench_median_d(thr_noop[i], (size_t)rounds);
		rows[i].sys.per_s = bench_median_d(thr_sys[i], (size_t)rounds);
		rows[i].futex_ns = bench_median_d(fx[i], (size_t)rounds);
		rows[i].prctl_ns = bench_median_d(pc[i], (size_t)rounds);
	}
	for (int i = 0; i < nrec; i++) {
		char tenant[32];

		snprintf(tenant, sizeof(tenant), "crash%d", i);
		rec[i] = recovery(tenant);
	}
	rec_med = bench_median_d(rec, (size_t)nrec);
	fx_tenant_text(cfd, "tbasic", "limits=", status_iso, sizeof(status_iso));
	for (int i = 1; i < NTIERS; i++) {
		double cost = 100.0 * (1.0 - rows[i].sys_ratio);

		if (cost > cost_max)
			cost_max = cost;
	}
	t[nt++] = (struct bench_target){"syscall_throughput_cost_pct",
					"every tier < 5% throughput cost (100 futex/call)",
					cost_max,
					5,
					cost_max < 5,
					"%",
					false};
	t[nt++] = (struct bench_target){"first_invoke_ms",
					"new tenant: first OK invoke < 5 ms",
					first_max,
					5,
					first_max < 5,
					"ms",
					false};
	t[nt++] = (struct bench_target){"crash_recovery_ms",
					"crash to next OK call < 10 ms",
					rec_med,
					10,
					rec_med < 10,
					"ms",
					false};
	if (o.json) {
		struct bench_json j;

		bench_json_begin(&j, stdout);
		bench_json_str(&j, "bench", "tiers");
		bench_json_str(&j, "machine", machine);
		bench_json_bool(&j, "quick", o.quick);
		bench_json_str(&j, "limits", status_iso);
		bench_json_obj(&j, "tiers");
		for (int i = 0; i < NTIERS; i++) {
			bench_json_obj(&j, tiers[i]);
			bench_json_num(&j, "first_invoke_ms", rows[i].first_ms);
			bench_json_num(&j, "noop_median_ns", rows[i].noop.lat.median);
			bench_json_num(&j, "noop_p99_ns", rows[i].noop.lat.p99);
			bench_json_num(&j, "noop_per_s", rows[i].noop.per_s);
			bench_json_num(&j, "futex100_median_ns", rows[i].sys.lat.median);
			bench_json_num(&j, "futex100_p99_ns", rows[i].sys.lat.p99);
			bench_json_num(&j, "futex100_per_s", rows[i].sys.per_s);
			bench_json_num(&j, "futex100_vs_none", rows[i].sys_ratio);
			bench_json_num(&j, "filter_futex_ns", rows[i].futex_ns);
			bench_json_num(&j, "filter_futex_extra_ns", rows[i].futex_extra_ns);
			bench_json_num(&j, "filter_prctl_ns", rows[i].prctl_ns);
			bench_json_num(&j, "filter_prctl_extra_ns", rows[i].prctl_extra_ns);
			bench_json_close_obj(&j);
		}
		bench_json_close_obj(&j);
		bench_json_obj(&j, "allow_all_filter");
		bench_json_num(&j, "filter_futex_ns", bench_median_d(fa, (size_t)rounds));
		bench_json_num(&j, "filter_futex_extra_ns", fa_extra);
		bench_json_num(&j, "filter_prctl_ns", bench_median_d(pa, (size_t)rounds));
		bench_json_num(&j, "filter_prctl_extra_ns", pa_extra);
		bench_json_close_obj(&j);
		bench_json_num(&j, "crash_recovery_median_ms", rec_med);
		bench_targets_json(&j, t, nt);
		bench_json_end(&j);
	} else {
		printf("tiers: isolation cost through lutfd (%s%s)\n", machine,
		       o.quick ? ", quick" : "");
		printf("limits of a tenant: %s\n", status_iso);
		printf("latency = median / p99 of %zu sequential calls; throughput: %d in flight, "
		       "median of %d rounds of %llu calls; tiers interleaved, rotated each round; "
		       "vs none = median of per-round ratios\n\n",
		       (nlat / (size_t)rounds) * (size_t)rounds, WINDOW, rounds,
		       (unsigned long long)(nthr / (uint64_t)rounds));
		printf("%-8s %12s %22s %12s %22s %12s %9s\n", "tier", "first call", "no-op latency",
		       "no-op/s", "100 futex latency", "100 futex/s", "vs none");
		for (int i = 0; i < NTIERS; i++) {
			fmt_lat(buf, sizeof(buf), &rows[i].noop.lat);
			fmt_lat(buf2, sizeof(buf2), &rows[i].sys.lat);
			printf("%-8s %9.2f ms %22s %12.0f %22s %12.0f %8.1f%%\n", tiers[i],
			       rows[i].first_ms, buf, rows[i].noop.per_s, buf2, rows[i].sys.per_s,
			       100.0 * (rows[i].sys_ratio - 1.0));
		}
		printf("\nthe filter alone, one syscall (median of %d rounds of %d calls; extra = "
		       "median of per-round differences to none)\n",
		       rounds, nfilter);
		printf("%-8s %12s %12s %14s %14s\n", "tier", "futex ns", "extra ns", "prctl ns",
		       "extra ns");
		for (int i = 0; i < NTIERS; i++)
			printf("%-8s %12.1f %12.1f %14.1f %14.1f\n", tiers[i], rows[i].futex_ns,
			       rows[i].futex_extra_ns, rows[i].prctl_ns, rows[i].prctl_extra_ns);
		printf("%-9s %11.1f %12.1f %14.1f %14.1f   (one RET_ALLOW instruction: seccomp's own "
		       "entry cost)\n",
		       "allow-all", bench_median_d(fa, (size_t)rounds), fa_extra,
		       bench_median_d(pa, (size_t)rounds), pa_extra);
		printf("\ncrash to next OK call: median %.2f ms over %d fresh tenants\n\n", rec_med,
		       nrec);
		bench_targets_print(t, nt);
	}
	close(cfd);
	close(dfd);
	fx_stop(&d);
	for (int i = 0; i < NTIERS; i++) {
		free(lat_noop[i]);
		free(lat_sys[i]);
	}
	return 0;
}
