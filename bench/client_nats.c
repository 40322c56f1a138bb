/* SPDX-License-Identifier: MIT */
/*
 * bench/client_nats: liblutf-client's nats:// endpoints against unix://, in
 * one run: one nats-server and one lutfd in cluster mode (the tests'
 * harness) with hello.so's noop deployed as bench/echo. Rows: a synchronous
 * call over unix:// (the baseline) and the same call over nats:// (a NATS
 * request that the node's lutfd runs on its loop: docs/cluster.md), rounds
 * interleaved (the order alternates); then batched asynchronous calls over
 * both, 256 in flight. Medians of the per-round medians with their range;
 * compare ratios (the host is shared). --json for machines, --quick for a
 * smoke run.
 */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "nats_util.h"

#define ROUNDS_MAX 16

static struct tn nats;
static struct td node;

static void cleanup(void)
{
	td_stop(&node);
	tn_stop(&nats);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* n sync calls over url: median and p99 in microseconds. Returns 0 or -1. */
static int sync_round(const char *url, int n, double *med, double *p99)
{
	struct lutf_client *c = NULL;
	struct lutf_client_request req = {.input = "hi", .input_len = 2};
	uint64_t *ns = calloc((size_t)n, sizeof(*ns));
	int err = ns && !lutf_client_connect(url, &c) ? 0 : -1;

	for (int i = 0; !err && i < n; i++) {
		struct lutf_client_result res = {0};
		uint64_t t0 = now_ns();

		if (lutf_client_invoke(c, "bench", "echo", &req, &res) ||
		    res.status != LUTF_STATUS_OK)
			err = -1;
		ns[i] = now_ns() - t0;
		lutf_client_result_release(&res);
	}
	lutf_client_close(c);
	if (!err) {
		qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
		*med = (double)ns[n / 2] / 1000.0;
		*p99 = (double)ns[(size_t)n * 99 / 100] / 1000.0;
	}
	free(ns);
	return err;
}

/* n async calls over url, 256 in flight: calls per second. Returns 0 or -1. */
static int async_round(const char *url, int n, double *rate)
{
	const char *ep[] = {url};
	struct lutf_client_opts o = {.endpoints = ep, .n_endpoints = 1, .queue_depth = 256};
	struct lutf_client_async *a = NULL;
	static struct lutf_client_completion out[256];
	struct lutf_client_request req = {.input = "hi", .input_len = 2};
	int sent = 0, done = 0, err = lutf_client_open(&o, &a) ? -1 : 0;
	uint64_t t0 = now_ns();

	while (!err && done < n) {
		int got;

		while (sent < n &&
		       lutf_client_submit(a, "bench", "echo", &req, (uint64_t)sent) == 0)
			sent++;
		got = lutf_client_reap(a, out, 256, 5000);
		if (got <= 0)
			err = -1;
		for (int i = 0; i < got; i++) {
			if (out[i].error || out[i].result.status != LUTF_STATUS_OK)
				err = -1;
			lutf_client_result_release(&out[i].result);
		}
		done += got > 0 ? got : 0;
	}
	*rate = (double)n / ((double)(now_ns() - t0) / 1e9);
	lutf_client_async_close(a);
	return err;
}

/* Median and range of v[0..n). */
static void summary(const double *v, int n, double *med, double *lo, double *hi)
{
	double s[ROUNDS_MAX];

	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_dbl);
	*med = s[n / 2];
	*lo = s[0];
	*hi = s[n - 1];
}

int main(int argc, char **argv)
{
	bool json = false;
	int nsync = 2000, nasync = 20000, rounds = 5;
	/* [0] unix://, [1] nats:// */
	double med[2][ROUNDS_MAX], p99[2][ROUNDS_MAX], over[ROUNDS_MAX], rate[2][ROUNDS_MAX];
	double m[2], lo[2], hi[2], pm[2], plo[2], phi[2], om, olo, ohi, rm[2], rlo[2], rhi[2];
	struct lutf_client_export ex = {"echo", "noop"}; /* hello.so: noop, named echo */
	struct lutf_client_deploy dp = {
	    .tenant = "bench", .app = "local", .so_path = APP_SO, .exports = &ex, .n_exports = 1};
	struct lutf_client_reply rep = {0};
	struct lutf_client *ctl = NULL;
	char extra[256], url[2][200];
	uint64_t t0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--quick")) {
			nsync = 200;
			nasync = 1000;
			rounds = 1;
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = atoi(argv[++i]);
			rounds = rounds < 1 ? 1 : rounds > ROUNDS_MAX ? ROUNDS_MAX : rounds;
		} else {
			fprintf(stderr, "usage: client_nats [--json] [--quick] [--rounds R]\n"
					"  R rounds of 2000 sync and 20000 async calls each way "
					"(5, at most 16)\n");
			return 2;
		}
	}
	if (geteuid() != 0 || !tn_have_server()) {
		fprintf(stderr, "client_nats: needs root and nats-server; skipped\n");
		return 77;
	}
	atexit(cleanup);
	if (!tn_start(&nats, 1)) {
		fprintf(stderr, "client_nats: nats-server did not start\n");
		return 1;
	}
	snprintf(extra, sizeof(extra), "cluster = %s\ncluster_node = bench0\n", nats.url);
	if (!td_start(&node, extra)) {
		fprintf(stderr, "client_nats: lutfd did not start (%s)\n", node.log);
		return 1;
	}
	snprintf(url[0], sizeof(url[0]), "unix://%s/control.sock", node.run);
	if (lutf_client_connect(url[0], &ctl) || lutf_client_deploy(ctl, &dp, &rep) ||
	    rep.status != LUTF_STATUS_OK) {
		fprintf(stderr, "client_nats: deploy failed\n");
		return 1;
	}
	lutf_client_reply_release(&rep);
	lutf_client_close(ctl);
	snprintf(url[0], sizeof(url[0]), "unix://%s/lutf.sock", node.run);
	snprintf(url[1], sizeof(url[1]), "%s", nats.url);
	/* The node subscribes to lutf.inv.bench.echo within a second or so. */
	t0 = td_now_ms();
	while (sync_round(url[1], 1, &m[0], &m[1]) && td_now_ms() - t0 < 10000)
		td_sleep_ms(50);
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < 2; k++) {
			int w = (r & 1) ? 1 - k : k; /* alternate which goes first */

			if (sync_round(url[w], nsync, &med[w][r], &p99[w][r])) {
				fprintf(stderr, "client_nats: sync calls over %s failed\n", url[w]);
				return 1;
			}
		}
		over[r] = med[1][r] - med[0][r];
	}
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < 2; k++) {
			int w = (r & 1) ? 1 - k : k;

			if (async_round(url[w], nasync, &rate[w][r])) {
				fprintf(stderr, "client_nats: async calls over %s failed\n",
					url[w]);
				return 1;
			}
		}
	for (int k = 0; k < 2; k++) {
		summary(med[k], rounds, &m[k], &lo[k], &hi[k]);
		summary(p99[k], rounds, &pm[k], &plo[k], &phi[k]);
		summary(rate[k], rounds, &rm[k], &rlo[k], &rhi[k]);
	}
	summary(over, rounds, &om, &olo, &ohi);
	if (json) {
		printf("{\"machine\":\"2 vCPU VM\",\"rounds\":%d,\"sync_calls\":%d,"
		       "\"async_calls\":%d,",
		       rounds, nsync, nasync);
		for (int k = 0; k < 2; k++)
			printf(
			    "\"sync_%s_median_us\":{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f},"
			    "\"sync_%s_p99_us\":{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f},"
			    "\"async_%s_calls_per_s\":{\"median\":%.0f,\"min\":%.0f,\"max\":%.0f},",
			    k ? "nats" : "unix", m[k], lo[k], hi[k], k ? "nats" : "unix", pm[k],
			    plo[k], phi[k], k ? "nats" : "unix", rm[k], rlo[k], rhi[k]);
		printf("\"nats_overhead_median_us\":{\"median\":%.1f,\"min\":%.1f,\"max\":%.1f}}\n",
		       om, olo, ohi);
		return 0;
	}
	printf("liblutf-client nats:// against unix:// (one nats-server, one lutfd, hello's noop;\n"
	       "%d rounds interleaved, %d sync calls and %d async calls each way a round;\n"
	       "medians of round medians [range]; 2 vCPU VM, shared)\n\n",
	       rounds, nsync, nasync);
	printf("%-34s %24s %24s\n", "what", "median", "p99");
	for (int k = 0; k < 2; k++)
		printf("%-34s %9.1f us [%5.1f-%5.1f] %9.1f us [%5.1f-%5.1f]\n",
		       k ? "sync call, nats://" : "sync call, unix:// (baseline)", m[k], lo[k],
		       hi[k], pm[k], plo[k], phi[k]);
	printf("%-34s %9.1f us [%5.1f-%5.1f]   ratio %.2fx\n", "nats:// overhead", om, olo, ohi,
	       m[1] / m[0]);
	for (int k = 0; k < 2; k++)
		printf("%-34s %9.0f /s [%.0f-%.0f]\n",
		       k ? "async, 256 in flight, nats://" : "async, 256 in flight, unix://", rm[k],
		       rlo[k], rhi[k]);
	return 0;
}
