/* SPDX-License-Identifier: MIT */
/*
 * bench/cluster: lutf on NATS JetStream (issue #15), on this machine: one
 * nats-server (R1) and two lutfds from the tests' harness. Rows: a sync echo
 * on the node that runs it (the baseline) against the same call forwarded
 * through NATS by the other node; a cluster deploy until both nodes serve
 * it; async calls from submission until every result is stored. Medians;
 * compare ratios (the host is shared). --json for machines, --quick for a
 * smoke run.
 */
#define _GNU_SOURCE
/* GCC 12 sees td_start's folder names through 1 KiB buffers here: a false
 * format-truncation (they are bounded by mkdtemp's template). */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster.h"
#include "nats_util.h"

static struct tn nats;
static struct td node[2];

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* n echo calls of tenant/fn at d: median and p99 in microseconds. */
static int calls(struct td *d, const char *tenant, const char *fn, int n, uint64_t *med,
		 uint64_t *p99)
{
	char url[200];
	struct lutf_client *c = NULL;
	struct lutf_client_request req = {.input = "hi", .input_len = 2};
	uint64_t *us = calloc((size_t)n, sizeof(*us));
	int err = us ? 0 : -1;

	snprintf(url, sizeof(url), "unix://%s/lutf.sock", d->run);
	if (!err && lutf_client_connect(url, &c))
		err = -1;
	for (int i = 0; !err && i < n; i++) {
		struct lutf_client_result res = {0};
		uint64_t t0 = now_us();

		if (lutf_client_invoke(c, tenant, fn, &req, &res) || res.status != LUTF_STATUS_OK)
			err = -1;
		us[i] = now_us() - t0;
		lutf_client_result_release(&res);
	}
	lutf_client_close(c);
	if (!err) {
		qsort(us, (size_t)n, sizeof(*us), cmp_u64);
		*med = us[n / 2];
		*p99 = us[(size_t)n * 99 / 100];
	}
	free(us);
	return err;
}

static bool serves(struct td *d, const char *tenant, const char *fn)
{
	uint64_t a, b;

	return calls(d, tenant, fn, 1, &a, &b) == 0;
}

static void cleanup(void)
{
	for (int i = 0; i < 2; i++)
		td_stop(&node[i]);
	tn_stop(&nats);
}

int main(int argc, char **argv)
{
	bool json = false, quick = false;
	int nsync = 2000, nasync = 5000, ndeploy = 5;
	uint64_t lmed, lp99, fmed, fp99, dep[16], t0, submit_ms, drain_ms;
	struct lutf_cluster_opts o = {0};
	struct lutf_cluster *c = NULL;
	struct lutf_client_export ex = {"echo", "noop"}; /* hello.so: noop, named echo */
	struct lutf_client_deploy dp = {
	    .tenant = "bench", .app = "local", .so_path = APP_SO, .exports = &ex, .n_exports = 1};
	struct lutf_client_reply rep = {0};
	struct lutf_client *ctl = NULL;
	char extra[256], url[200], msg[300], cmd[1024];
	int done = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--quick"))
			quick = true;
		else {
			fprintf(stderr, "usage: cluster [--json] [--quick]\n");
			return 2;
		}
	}
	if (quick) {
		nsync = 200;
		nasync = 300;
		ndeploy = 2;
	}
	if (geteuid() != 0 || !tn_have_server()) {
		fprintf(stderr, "cluster: needs root and nats-server; skipped\n");
		return 77;
	}
	atexit(cleanup);
	if (!tn_start(&nats, 1)) {
		fprintf(stderr, "cluster: nats-server did not start\n");
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(extra, sizeof(extra), "cluster = %s\ncluster_node = bench%d\n", nats.url,
			 i);
		if (!td_start(&node[i], extra)) {
			fprintf(stderr, "cluster: lutfd %d did not start (%s)\n", i, node[i].log);
			return 1;
		}
	}
	/* Sync: deployed on node 1 only; node 0 forwards. */
	snprintf(url, sizeof(url), "unix://%s/control.sock", node[1].run);
	if (lutf_client_connect(url, &ctl) || lutf_client_deploy(ctl, &dp, &rep) ||
	    rep.status != LUTF_STATUS_OK) {
		fprintf(stderr, "cluster: local deploy failed\n");
		return 1;
	}
	lutf_client_reply_release(&rep);
	lutf_client_close(ctl);
	t0 = td_now_ms();
	while (!serves(&node[0], "bench", "echo") && td_now_ms() - t0 < 10000)
		td_sleep_ms(50);
	if (calls(&node[1], "bench", "echo", nsync, &lmed, &lp99) ||
	    calls(&node[0], "bench", "echo", nsync, &fmed, &fp99)) {
		fprintf(stderr, "cluster: sync calls failed\n");
		return 1;
	}
	/* Deploys through the registry until both nodes serve (first one warms). */
	for (int k = 0; k <= ndeploy; k++) {
		char fn[32];
		uint64_t s = now_us();

		snprintf(fn, sizeof(fn), "f%d", k);
		snprintf(cmd, sizeof(cmd),
			 "%s --cluster '%s' deploy --tenant dep --app a%d --so %s --export %s=noop "
			 "--replicas 0 >/dev/null",
			 LUTFCTL_BIN, nats.url, k, APP_SO, fn);
		if (system(cmd)) {
			fprintf(stderr, "cluster: lutfctl deploy failed\n");
			return 1;
		}
		t0 = td_now_ms();
		for (int i = 0; i < 2; i++)
			while (!serves(&node[i], "dep", fn) && td_now_ms() - t0 < 15000)
				td_sleep_ms(5);
		if (k)
			dep[k - 1] = (now_us() - s) / 1000;
	}
	qsort(dep, (size_t)ndeploy, sizeof(dep[0]), cmp_u64);
	/* Async: submit everything, then wait for every result. */
	o.url = nats.url;
	if (lutf_cluster_open(&o, &c, msg, sizeof(msg))) {
		fprintf(stderr, "cluster: %s\n", msg);
		return 1;
	}
	t0 = td_now_ms();
	for (int i = 0; i < nasync; i++) {
		char id[LUTF_CLUSTER_ID], in[32];
		bool dup;

		snprintf(id, sizeof(id), "b%d-%d", (int)getpid(), i);
		snprintf(in, sizeof(in), "in-%d", i);
		(void)dup;
		if (lutf_cluster_async_submit_nowait(c, "bench", "echo", in, strlen(in), id) ||
		    (i % 256 == 255 && lutf_cluster_async_flush(c, 10000))) {
			fprintf(stderr, "cluster: submit %d failed\n", i);
			return 1;
		}
	}
	if (lutf_cluster_async_flush(c, 10000)) {
		fprintf(stderr, "cluster: submissions not acknowledged\n");
		return 1;
	}
	submit_ms = td_now_ms() - t0;
	for (int i = nasync - 1; i >= 0 && td_now_ms() - t0 < 120000;) {
		struct lutf_cluster_reply r;
		char id[LUTF_CLUSTER_ID];
		bool dead;

		snprintf(id, sizeof(id), "b%d-%d", (int)getpid(), i);
		if (lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg))) {
			td_sleep_ms(20);
			continue;
		}
		free(r.output);
		done++;
		i--;
	}
	drain_ms = td_now_ms() - t0;
	lutf_cluster_close(c);
	if (json) {
		printf("{\"bench\":\"cluster\",\"machine_cpus\":%ld,"
		       "\"sync_local_median_us\":%" PRIu64 ",\"sync_local_p99_us\":%" PRIu64
		       ",\"sync_forwarded_median_us\":%" PRIu64
		       ",\"sync_forwarded_p99_us\":%" PRIu64
		       ",\"forward_overhead_median_us\":%" PRId64
		       ",\"deploy_to_served_median_ms\":%" PRIu64
		       ",\"async_calls\":%d,\"async_results\":%d,\"async_submit_ms\":%" PRIu64
		       ",\"async_all_results_ms\":%" PRIu64 ",\"async_calls_per_s\":%.0f}\n",
		       sysconf(_SC_NPROCESSORS_ONLN), lmed, lp99, fmed, fp99,
		       (int64_t)fmed - (int64_t)lmed, dep[ndeploy / 2], nasync, done, submit_ms,
		       drain_ms, drain_ms ? 1000.0 * done / (double)drain_ms : 0.0);
	} else {
		printf("bench/cluster: 1 nats-server (R1), 2 lutfds, %ld CPUs\n",
		       sysconf(_SC_NPROCESSORS_ONLN));
		printf("%-44s %12s %12s\n", "what", "median", "p99");
		printf("%-44s %9" PRIu64 " us %9" PRIu64 " us\n", "sync echo, local (baseline)",
		       lmed, lp99);
		printf("%-44s %9" PRIu64 " us %9" PRIu64 " us\n",
		       "sync echo, forwarded through NATS", fmed, fp99);
		printf("%-44s %9" PRId64 " us %12s\n", "  forwarding overhead (target <= 250 us)",
		       (int64_t)fmed - (int64_t)lmed, "");
		printf("%-44s %9" PRIu64 " ms %12s\n", "deploy to served on both nodes (<= 1 s)",
		       dep[ndeploy / 2], "");
		printf("%-44s %9d calls, submitted in %" PRIu64 " ms, all results in %" PRIu64
		       " ms: %.0f calls/s (target >= 20,000)\n",
		       "async noop, 1 submitter (async publish)", done, submit_ms, drain_ms,
		       drain_ms ? 1000.0 * done / (double)drain_ms : 0.0);
	}
	return done == nasync ? 0 : 1;
}
