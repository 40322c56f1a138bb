/* SPDX-License-Identifier: MIT */
/*
 * The direct take in lutfd's workers, before and after in one run: lutfd's
 * hand-off of a call queued behind a blocked one (daemon_handoff.c: "block"
 * reads a FIFO, "stamp" waits behind it on the tenant's one Cart), with the
 * worker lent its block of labor_watch slots ("lent") or not
 * (LUTF_LABOR_WATCH_LEND=off: every hand-off is the Supervisor's, as before).
 * Cases: lutfd's default grace and spin (50 us each), a longer spin, grace 0;
 * rounds back to back ("b2b": the Labor released last round may still spin)
 * and 300 us apart (every Labor has parked: both ways go through the
 * Supervisor). Each interleaved round starts
 * a fresh lutfd per case and mode, alternating which mode goes first; the
 * table gives the median of the per-round medians, their range, and the
 * direct takes the worker counted (its own words, read by map_files).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lutf/client.h>

#include "common.h"
#include "daemon_handoff.h"
#include "lutfd_util.h"
#include "take_util.h"

#define N_CASES 4
#define N_MODES 2
#define MAX_ROUNDS 9

/* spin_us set, not lutfd's automatic choice (50 us on more than one CPU
 * today): the figure does not move with that choice. */
static const struct {
	const char *name;
	const char *conf;
	unsigned gap_us;
} cases[N_CASES] = {
    {"grace 50, spin 50, b2b", "grace_us = 50\nspin_us = 50\n", 0},
    {"grace 50, spin 200, b2b", "grace_us = 50\nspin_us = 200\n", 0},
    {"grace 0, spin 50, b2b", "grace_us = 0\nspin_us = 50\n", 0},
    {"grace 50, spin 50, 300 apart", "grace_us = 50\nspin_us = 50\n", 300},
};
static const char *const modes[N_MODES] = {"not lent", "lent"};

struct cell {
	double med[MAX_ROUNDS], p99[MAX_ROUNDS];
	long long takes[MAX_ROUNDS];
	int n;
};

static struct bench_lutfd lutfd = {.name = "take"};

static void stop_at_exit(void)
{
	bench_lutfd_stop(&lutfd, 3000);
}

/* One lutfd, one case, one mode: n hand-offs into *c. 0 or -1. */
static int run_one(int ci, int mode, int n, uint64_t *lat, struct cell *c)
{
	static const struct lutf_client_export ex[] = {{"block", NULL}, {"stamp", NULL}};
	char conf[256], path[160], url[160];
	struct lutf_client_config cf = {"block", "fifo", path};
	struct lutf_client_deploy d = {.tenant = "tk",
				       .app = "handoff",
				       .so_path = HANDOFF_SO,
				       .exports = ex,
				       .n_exports = 2,
				       .config = &cf,
				       .n_config = 1,
				       /* The FIFO is outside the app's folder (Landlock):
					* the engine's hand-off is measured, not a tier. */
				       .tier = "none"};
	struct lutf_client_reply rep = {0};
	struct lutf_client *ctl = NULL;
	struct bench_stats st;
	int fifo = -1, fd = -1, got = -1, rc = -1;
	pid_t wk;

	snprintf(conf, sizeof(conf),
		 "carts = 1\nlabors = 4\nlabors_max = 4\nbpf = on\nallow_tier_none = on\n%s",
		 cases[ci].conf);
	if (mode == 0)
		setenv("LUTF_LABOR_WATCH_LEND", "off", 1); /* lutfd inherits it */
	else
		unsetenv("LUTF_LABOR_WATCH_LEND");
	if (bench_lutfd_start(&lutfd, conf, 10000))
		goto out;
	/* labor_watch loads beside lutfd's start: deploy (and so spawn the
	 * worker, which is lent its view only then) once it is in. */
	for (int i = 0; i < 200; i++) {
		char log[65536];
		int lf = open(lutfd.log, O_RDONLY | O_CLOEXEC);
		ssize_t len = lf < 0 ? -1 : read(lf, log, sizeof(log) - 1);

		if (lf >= 0)
			close(lf);
		if (len > 0 && (log[len] = 0, strstr(log, "supervisor: watch mode bpf")))
			break;
		usleep(10000);
	}
	snprintf(path, sizeof(path), "%s/handoff.fifo", lutfd.dir);
	bench_lutfd_path(&lutfd, "control.sock", url, sizeof(url));
	if (mkfifo(path, 0666) || chmod(path, 0666) ||
	    (fifo = open(path, O_RDWR | O_CLOEXEC)) < 0 || lutf_client_connect(url, &ctl) ||
	    lutf_client_deploy(ctl, &d, &rep) || rep.status != LUTF_STATUS_OK) {
		fprintf(stderr, "daemon_take: cannot deploy the hand-off app\n");
		goto out;
	}
	fd = bench_connect_unix(bench_lutfd_path(&lutfd, "lutf.sock", url, sizeof(url)));
	got = fd < 0 ? -1 : daemon_handoff_run(fd, fifo, "tk", lat, n, cases[ci].gap_us);
	if (got != n) {
		fprintf(stderr, "daemon_take: %d of %d hand-offs\n", got, n);
		goto out;
	}
	bench_stats(lat, (size_t)n, &st);
	wk = tk_worker_pid("tk");
	c->med[c->n] = st.median / 1e3;
	c->p99[c->n] = st.p99 / 1e3;
	c->takes[c->n] = wk ? tk_worker_takes(wk, "tk") : -1;
	c->n++;
	rc = 0;
out:
	lutf_client_reply_release(&rep);
	lutf_client_close(ctl);
	if (fd >= 0)
		close(fd);
	if (fifo >= 0)
		close(fifo);
	if (bench_lutfd_stop(&lutfd, 3000))
		rc = -1;
	return rc;
}

static void range(const double *v, int n, double *lo, double *hi)
{
	*lo = *hi = n ? v[0] : 0;
	for (int i = 1; i < n; i++) {
		if (v[i] < *lo)
			*lo = v[i];
		if (v[i] > *hi)
			*hi = v[i];
	}
}

/* One cell's figures: median of per-round medians, their range, median p99,
 * the worker's direct takes over all rounds. */
struct summary {
	double med, lo, hi, p99;
	long long takes;
};

static struct summary summarize(const struct cell *c)
{
	double med[MAX_ROUNDS], p99[MAX_ROUNDS];
	struct summary r = {0};

	memcpy(med, c->med, sizeof(med));
	memcpy(p99, c->p99, sizeof(p99));
	range(c->med, c->n, &r.lo, &r.hi);
	for (int i = 0; i < c->n; i++)
		r.takes += c->takes[i] > 0 ? c->takes[i] : 0;
	r.med = bench_median_d(med, (size_t)c->n);
	r.p99 = bench_median_d(p99, (size_t)c->n);
	return r;
}

int main(int argc, char **argv)
{
	static struct cell cells[N_CASES][N_MODES];
	char machine[256];
	struct bench_opts o;
	int rounds, n, ret = 1;
	uint64_t *lat;

	bench_parse_args(argc, argv,
			 "lutfd's hand-off of a call queued behind a blocked one, with the "
			 "worker's direct take (its labor_watch block lent) and without "
			 "(LUTF_LABOR_WATCH_LEND=off), interleaved rounds. Needs root (else "
			 "exit 77).",
			 &o);
	if (geteuid() != 0) {
		fprintf(stderr, "daemon_take: skipped: lutfd needs root (zygote, BPF)\n");
		return 77;
	}
	rounds = o.quick ? 2 : 5;
	n = o.quick ? 100 : 1000;
	lat = calloc((size_t)n, sizeof(*lat));
	if (!lat)
		return 1;
	atexit(stop_at_exit);
	bench_machine(machine, sizeof(machine));
	for (int r = 0; r < rounds; r++)
		for (int ci = 0; ci < N_CASES; ci++)
			for (int k = 0; k < N_MODES; k++) {
				int m = (r + k) % 2; /* alternate which mode goes first */

				if (run_one(ci, m, n, lat, &cells[ci][m]))
					goto out;
			}
	if (o.json) {
		printf("{\"bench\":\"daemon_take\",\"machine\":\"%s\",\"rounds\":%d,"
		       "\"handoffs_per_round\":%d,\"cases\":[",
		       machine, rounds, n);
		for (int ci = 0; ci < N_CASES; ci++)
			for (int m = 0; m < N_MODES; m++) {
				struct summary f = summarize(&cells[ci][m]);

				printf("%s{\"case\":\"%s\",\"mode\":\"%s\",\"median_us\":%.2f,"
				       "\"min_us\":%.2f,\"max_us\":%.2f,\"p99_us\":%.2f,"
				       "\"direct_takes\":%lld}",
				       ci + m ? "," : "", cases[ci].name, modes[m], f.med, f.lo, f.hi,
				       f.p99, f.takes);
			}
		printf("]}\n");
	} else {
		printf("daemon_take: lutfd hand-off of a call queued behind a blocked one\n"
		       "machine: %s\n%d interleaved rounds x %d hand-offs, 1 Cart, 4 Labors; "
		       "median of per-round medians [range], p99 median; takes: direct takes "
		       "the worker counted (all rounds)\n\n",
		       machine, rounds, n);
		printf("%-28s %-9s %10s %22s %10s %8s %8s\n", "case", "view", "median", "range",
		       "p99", "takes", "ratio");
		for (int ci = 0; ci < N_CASES; ci++) {
			double base = 0;

			for (int m = 0; m < N_MODES; m++) {
				const struct cell *c = &cells[ci][m];
				struct summary f = summarize(c);

				if (m == 0)
					base = f.med;
				printf("%-28s %-9s %7.2f us %9.2f-%7.2f us %7.2f us %6lld/%-5d "
				       "%6.2fx\n",
				       cases[ci].name, modes[m], f.med, f.lo, f.hi, f.p99, f.takes,
				       c->n * n, base > 0 ? f.med / base : 0);
			}
		}
	}
	ret = 0;
out:
	free(lat);
	return ret;
}
