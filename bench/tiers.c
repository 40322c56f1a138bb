/* SPDX-License-Identifier: MIT */
/*
 * tiers: what isolation costs through lutfd. Per tier, against a tenant with
 * no confinement at all ("none", lutfd's allow_tier_none) in the same run:
 * invoke latency (median, p99) and throughput of a no-op function and of one
 * making 100 futex wakes per call (cheap syscalls every tier allows, so the
 * seccomp filter's cost shows); time from deploy of a new tenant to its first
 * OK invoke; time from a worker crash to the tenant's next OK call. The bench
 * starts its own lutfd on private /tmp folders. Targets are printed, never
 * asserted; a wrong status or a lost reply exits 1; not root exits 77.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fault_util.h"

#define WINDOW 32 /* calls in flight in the throughput runs */
#define ROUNDS 5  /* every tier measured in turn, this many times */
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
};

static struct td d;
static int cfd = -1, dfd = -1;

static void die(const char *what, uint32_t st, const char *text)
{
	fprintf(stderr, "tiers: %s: status %u (%s); lutfd log in %s\n", what, st, text, d.log);
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
	double thr_noop[NTIERS][ROUNDS], thr_sys[NTIERS][ROUNDS];
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
	nlat = o.quick ? 200 : 5000;
	nthr = o.quick ? 2000 : 50000;
	nrec = o.quick ? 2 : 8;
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
	for (int k = 0; k < ROUNDS; k++) {
		for (int i = 0; i < NTIERS; i++) {
			char tenant[32];
			size_t off = (size_t)k * (nlat / ROUNDS);

			snprintf(tenant, sizeof(tenant), "t%s", tiers[i]);
			latency(tenant, "ok", nlat / ROUNDS, lat_noop[i] + off);
			latency(tenant, "futex100", nlat / ROUNDS, lat_sys[i] + off);
			thr_noop[i][k] = throughput(tenant, "ok", nthr / ROUNDS);
			thr_sys[i][k] = throughput(tenant, "futex100", nthr / ROUNDS);
		}
	}
	for (int i = 0; i < NTIERS; i++) {
		size_t n = (nlat / ROUNDS) * ROUNDS;

		bench_stats(lat_noop[i], n, &rows[i].noop.lat);
		bench_stats(lat_sys[i], n, &rows[i].sys.lat);
		rows[i].noop.per_s = bench_median_d(thr_noop[i], ROUNDS);
		rows[i].sys.per_s = bench_median_d(thr_sys[i], ROUNDS);
	}
	for (int i = 0; i < nrec; i++) {
		char tenant[32];

		snprintf(tenant, sizeof(tenant), "crash%d", i);
		rec[i] = recovery(tenant);
	}
	rec_med = bench_median_d(rec, (size_t)nrec);
	fx_tenant_text(cfd, "tbasic", "limits=", status_iso, sizeof(status_iso));
	for (int i = 1; i < NTIERS; i++) {
		double cost = 100.0 * (1.0 - rows[i].sys.per_s / rows[0].sys.per_s);

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
			bench_json_close_obj(&j);
		}
		bench_json_close_obj(&j);
		bench_json_num(&j, "crash_recovery_median_ms", rec_med);
		bench_targets_json(&j, t, nt);
		bench_json_end(&j);
	} else {
		printf("tiers: isolation cost through lutfd (%s%s)\n", machine,
		       o.quick ? ", quick" : "");
		printf("limits of a tenant: %s\n", status_iso);
		printf("latency = median / p99 of %zu sequential calls; throughput: %d in flight, "
		       "median of %d rounds of %llu calls; tiers interleaved\n\n",
		       (nlat / ROUNDS) * ROUNDS, WINDOW, ROUNDS,
		       (unsigned long long)(nthr / ROUNDS));
		printf("%-8s %12s %22s %12s %22s %12s %9s\n", "tier", "first call", "no-op latency",
		       "no-op/s", "100 futex latency", "100 futex/s", "vs none");
		for (int i = 0; i < NTIERS; i++) {
			fmt_lat(buf, sizeof(buf), &rows[i].noop.lat);
			fmt_lat(buf2, sizeof(buf2), &rows[i].sys.lat);
			printf("%-8s %9.2f ms %22s %12.0f %22s %12.0f %8.1f%%\n", tiers[i],
			       rows[i].first_ms, buf, rows[i].noop.per_s, buf2, rows[i].sys.per_s,
			       100.0 * (rows[i].sys.per_s / rows[0].sys.per_s - 1.0));
		}
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
