/* SPDX-License-Identifier: MIT */
/*
 * bench/cluster: lutf on NATS JetStream (issue #15), on this machine: one
 * nats-server (R1) and two lutfds from the tests' harness. Rows: a sync echo
 * on the node that runs it (the baseline) against the same call forwarded
 * through NATS by the other node; a cluster deploy until both nodes serve
 * it; async calls on one node (the row: lutfd 0 stopped) from
 * submission until every result is stored, with the node's result writes
 * one at a time (the old path, the baseline: LUTF_CLUSTER_ASYNC_BATCH=0)
 * against batched, rounds interleaved in this run (lutfd restarted for
 * each). Medians; compare ratios (the host is
 * shared). --json for machines, --quick for a smoke run. --scale instead:
 * issue #15's simulated scaling row, 1, 2 and 3 lutfds each confined to
 * 0.5 CPU by a cgroup, draining the same backlog of a no-op function and of
 * one burning a fixed CPU time a call (see scale_run).
 */
#define _GNU_SOURCE
/* GCC 12 sees td_start's folder names through 1 KiB buffers here: a false
 * format-truncation (they are bounded by mkdtemp's template). */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <dirent.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster_int.h" /* the results stream's count: one round trip */
#include "nats_util.h"

static struct tn nats, nats3;
static struct td node[2], node3;
/* The async rows' servers and lutfd: nats and node[1], or (--r3) the
 * 3-server cluster and its lutfd. */
static struct tn *NT = &nats;
static struct td *ND = &node[1];

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

/* CPU time (user + system, ms) of pid and all its threads so far. */
static double cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return 1000.0 * (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The cluster's CPU: the nats-server and the lutfd (with its threads, not
 * its worker processes). */
static double nats_cpu_ms(void)
{
	double ms = 0;

	for (int i = 0; i < NT->n; i++)
		ms += cpu_ms(NT->pid[i]);
	return ms;
}

static double cluster_cpu_ms(void)
{
	return nats_cpu_ms() + cpu_ms(ND->pid);
}

/* NATS messages in and out of every server (routes included). */
static bool varz_sum(uint64_t *in, uint64_t *out)
{
	*in = *out = 0;
	for (int i = 0; i < NT->n; i++) {
		uint64_t a, b;

		if (!tn_varz(NT, i, &a, &b))
			return false;
		*in += a;
		*out += b;
	}
	return true;
}

/* Messages in the results bucket's stream (one round trip). A call whose
 * run failed retryably adds a key "<id>.runs" too: none of this bench's
 * echo calls does (a retried call shows in lutf_cluster_async_total). */
static uint64_t results_count(struct lutf_cluster *c)
{
	jsStreamInfo *si = NULL;
	uint64_t n = 0;

	if (js_GetStreamInfo(&si, lutf_cluster_js(c), "KV_" LUTF_CLUSTER_RESULTS, NULL, NULL) ==
	    NATS_OK)
		n = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return n;
}

static struct lutf_cluster *CC; /* the bench's own connection */
/* --scale: called with 0 once a round's calls are all queued (it starts
 * the nodes), 2 when the first result is stored (the clock starts), 1 once
 * every result is. */
static void (*round_hook)(int phase);
/* The function the async rounds call (--scale's work rows: "spin"), and
 * the calls the last round timed (--scale: those left after the first
 * stored result). */
static const char *async_fn = "echo";
static uint64_t round_drained;

/* One async call through the node until its result is stored: the node's
 * async workers start once its NATS connection is up, after lutfd serves;
 * without this the first round's (or the latency round's) first calls
 * wait for them (about 300 ms of p99 at 10,000/s offered). True when the
 * result came within 15 s. */
static bool async_warm(struct lutf_cluster *c)
{
	static int k;
	char id[LUTF_CLUSTER_ID], msg[300];
	uint64_t t0 = td_now_ms();

	snprintf(id, sizeof(id), "w%d-%d", (int)getpid(), k++);
	if (lutf_cluster_async_submit_nowait(c, "bench", "echo", "w", 1, id) ||
	    lutf_cluster_async_flush(c, 10000))
		return false;
	while (td_now_ms() - t0 < 15000) {
		struct lutf_cluster_reply r;
		bool dead;

		if (!lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg))) {
			free(r.output);
			return true;
		}
		td_sleep_ms(5);
	}
	return false;
}

/* The row is one node: lutfd 0 stops, lutfd 1 (where bench/echo
 * is deployed) restarts with its async workers batched or not. True when it
 * serves bench/echo again. */
static bool restart(bool batched)
{
	static const char *env_old[] = {"LUTF_CLUSTER_ASYNC_BATCH=0", NULL};
	static const char *env_new[] = {"LUTF_CLUSTER_ASYNC_BATCH=1", NULL};
	uint64_t t0;

	for (int i = 0; i < 2; i++) {
		if (node[i].pid <= 0)
			continue;
		kill(node[i].pid, SIGTERM);
		if (!td_wait_exit(node[i].pid, NULL, 10000)) {
			kill(node[i].pid, SIGKILL);
			waitpid(node[i].pid, NULL, 0);
		}
		node[i].pid = 0;
	}
	node[1].env = batched ? env_new : env_old;
	if (!td_start_again(&node[1]))
		return false;
	t0 = td_now_ms();
	while (!serves(&node[1], "bench", "echo") && td_now_ms() - t0 < 15000)
		td_sleep_ms(20);
	return serves(&node[1], "bench", "echo") && async_warm(CC);
}

/* n async calls of bench/echo ("b<pid>-<tag>-<i>", callback url or NULL),
 * published without waiting and flushed every 256; false (said) on a
 * failure. */
static bool submit_all(struct lutf_cluster *c, const char *tag, int n, const char *url)
{
	for (int i = 0; i < n; i++) {
		char id[LUTF_CLUSTER_ID], in[32];

		snprintf(id, sizeof(id), "b%d-%s-%d", (int)getpid(), tag, i);
		snprintf(in, sizeof(in), "in-%d", i);
		if (lutf_cluster_async_submit_nowait_cb(c, "bench", async_fn, in, strlen(in), id,
							url) ||
		    (i % 256 == 255 && lutf_cluster_async_flush(c, 10000))) {
			fprintf(stderr, "cluster: submit %d failed\n", i);
			return false;
		}
	}
	if (lutf_cluster_async_flush(c, 10000)) {
		fprintf(stderr, "cluster: submissions not acknowledged\n");
		return false;
	}
	return true;
}

/* One async round: n calls published without waiting, until the results
 * stream holds n more; then every result is read back and checked. Returns
 * calls/s (0: failed). */
static double async_round(struct lutf_cluster *c, const char *tag, int n, int *checked,
			  double *cpu_us, double *nats_us, double *msgs)
{
	uint64_t in0 = 0, out0 = 0, in1 = 0, out1 = 0;
	bool varz = varz_sum(&in0, &out0);
	uint64_t base = results_count(c), t0 = td_now_ms(), ms;
	double cpu0 = cluster_cpu_ms(), n0 = nats_cpu_ms();
	uint64_t drained = (uint64_t)n;
	char msg[300];

	*checked = 0;
	if (!submit_all(c, tag, n, NULL))
		return 0;
	if (round_hook) {
		/* --scale: the backlog is queued and the nodes start now; the
		 * clock runs from the first stored result, over the calls left */
		uint64_t first;

		round_hook(0);
		t0 = td_now_ms();
		while ((first = results_count(c)) <= base && td_now_ms() - t0 < 30000)
			td_sleep_ms(2);
		round_hook(2);
		t0 = td_now_ms();
		drained = base + (uint64_t)n > first ? base + (uint64_t)n - first : 0;
	}
	while (results_count(c) < base + (uint64_t)n && td_now_ms() - t0 < 120000)
		td_sleep_ms(round_hook ? 5 : 20);
	ms = td_now_ms() - t0;
	round_drained = drained;
	if (round_hook)
		round_hook(1);
	*cpu_us = 1000.0 * (cluster_cpu_ms() - cpu0) / n;
	*nats_us = 1000.0 * (nats_cpu_ms() - n0) / n;
	/* NATS messages per call, in and out of the server (the bench's own
	 * submits, flushes and results polls included) */
	*msgs = varz && varz_sum(&in1, &out1) ? (double)(in1 - in0 + out1 - out0) / n : 0.0;
	for (int i = 0; i < n; i++) {
		struct lutf_cluster_reply r;
		char id[LUTF_CLUSTER_ID], in[32];
		bool dead;

		snprintf(id, sizeof(id), "b%d-%s-%d", (int)getpid(), tag, i);
		snprintf(in, sizeof(in), "in-%d", i);
		if (lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg)))
			continue;
		/* hello.so's noop answers nothing: the status is what counts */
		if (!dead && r.status == LUTF_STATUS_OK)
			(*checked)++;
		free(r.output);
	}
	return ms ? 1000.0 * (double)drained / (double)ms : 0.0;
}

/* --callbacks: a loopback receiver the rounds' callback URLs name; it
 * answers 200 to each POST and counts them. */
static struct {
	int lfd, port;
	pthread_t th;
	atomic_bool stop;
	_Atomic uint64_t posts;
} SINK = {.lfd = -1};

static void *sink_main(void *arg)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

	(void)arg;
	while (!atomic_load(&SINK.stop)) {
		struct pollfd p = {.fd = SINK.lfd, .events = POLLIN};
		char buf[4096];
		size_t got = 0, want = 0;
		int c;

		if (poll(&p, 1, 50) <= 0 || (c = accept4(SINK.lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		for (;;) { /* the headers, then Content-Length bytes */
			ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);
			char *end;

			if (r <= 0)
				break;
			got += (size_t)r;
			buf[got] = 0;
			end = strstr(buf, "\r\n\r\n");
			if (end && !want) {
				char *cl = strcasestr(buf, "Content-Length:");

				want =
				    (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
			}
			if ((want && got >= want) || got == sizeof(buf) - 1)
				break;
		}
		if (want && got >= want)
			atomic_fetch_add(&SINK.posts, 1);
		(void)!write(c, ok, sizeof(ok) - 1);
		close(c);
	}
	return NULL;
}

static bool sink_start(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	SINK.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (SINK.lfd < 0 || bind(SINK.lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(SINK.lfd, 128) || getsockname(SINK.lfd, (struct sockaddr *)&a, &len))
		return false;
	SINK.port = ntohs(a.sin_port);
	return pthread_create(&SINK.th, NULL, sink_main, NULL) == 0;
}

/* One round with a callback URL on every call: n calls published without
 * waiting; *results: calls/s until every result is stored, *posts: until
 * the receiver had every POST (the callbacks' own delivery). Returns the
 * results that are ok. */
static int cb_round(struct lutf_cluster *c, const char *tag, int n, double *results, double *posts)
{
	uint64_t base = results_count(c), p0 = atomic_load(&SINK.posts), t0 = td_now_ms(), t1;
	char url[64], msg[300];
	int ok = 0;

	*results = *posts = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/cb", SINK.port);
	if (!submit_all(c, tag, n, url))
		return 0;
	while (results_count(c) < base + (uint64_t)n && td_now_ms() - t0 < 120000)
		td_sleep_ms(20);
	t1 = td_now_ms();
	*results = t1 > t0 ? 1000.0 * n / (double)(t1 - t0) : 0;
	while (atomic_load(&SINK.posts) < p0 + (uint64_t)n && td_now_ms() - t0 < 300000)
		td_sleep_ms(20);
	if (atomic_load(&SINK.posts) >= p0 + (uint64_t)n && td_now_ms() > t0)
		*posts = 1000.0 * n / (double)(td_now_ms() - t0);
	for (int i = 0; i < n; i++) {
		struct lutf_cluster_reply r;
		char id[LUTF_CLUSTER_ID];
		bool dead;

		snprintf(id, sizeof(id), "b%d-%s-%d", (int)getpid(), tag, i);
		if (lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg)))
			continue;
		ok += !dead && r.status == LUTF_STATUS_OK;
		free(r.output);
	}
	return ok;
}

/* Submit-to-result latency at an offered rate: each call's result is seen
 * by a plain subscription on the results bucket's subjects (the store's
 * publish reaches it as the stream writes it). */
static struct {
	char prefix[32];
	int n;
	uint64_t *sent;
	_Atomic uint64_t *got;
} L;

static void on_result(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	const char *subj = natsMsg_GetSubject(m), *key = strrchr(subj, '.');
	size_t pl = strlen(L.prefix);

	(void)nc, (void)sub, (void)arg;
	if (key && !strncmp(key + 1, L.prefix, pl)) {
		long i = strtol(key + 1 + pl, NULL, 10);
		uint64_t zero = 0;

		if (i >= 0 && i < L.n)
			atomic_compare_exchange_strong(&L.got[i], &zero, now_us());
	}
	natsMsg_Destroy(m);
}

/* n calls offered at rate a second (paced, published without waiting);
 * p50, p99 and max submit-to-result in us, calls/s achieved, and how many
 * results never came (within 30 s of the last submit). Returns 0 or -1. */
static int latency_round(struct lutf_cluster *c, const char *tag, int n, int rate, uint64_t *p50,
			 uint64_t *p99, uint64_t *max, double *achieved, int *missing)
{
	natsSubscription *sub = NULL;
	uint64_t *d = calloc((size_t)n, sizeof(*d)), t0, last = 0, until;
	int k = 0;

	L.sent = calloc((size_t)n, sizeof(*L.sent));
	L.got = calloc((size_t)n, sizeof(*L.got));
	L.n = n;
	snprintf(L.prefix, sizeof(L.prefix), "l%d-%s-", (int)getpid(), tag);
	if (!d || !L.sent || !L.got ||
	    natsConnection_Subscribe(&sub, lutf_cluster_conn(c), "$KV." LUTF_CLUSTER_RESULTS ".>",
				     on_result, NULL) != NATS_OK ||
	    natsConnection_Flush(lutf_cluster_conn(c)) != NATS_OK)
		goto err;
	natsSubscription_SetPendingLimits(sub, -1, -1);
	t0 = now_us();
	/* Paced in 1 ms ticks (a burst of rate/1000 calls each): the bench
	 * sleeps between them instead of spinning on a CPU of the two. */
	for (int i = 0; i < n;) {
		int due = (int)((now_us() - t0) * (uint64_t)rate / 1000000u) + 1;

		for (; i < n && i < due; i++) {
			char id[LUTF_CLUSTER_ID], in[32];

			snprintf(id, sizeof(id), "%s%d", L.prefix, i);
			snprintf(in, sizeof(in), "in-%d", i);
			L.sent[i] = now_us();
			if (lutf_cluster_async_submit_nowait(c, "bench", "echo", in, strlen(in),
							     id)) {
				fprintf(stderr, "cluster: paced submit %d failed\n", i);
				goto err;
			}
		}
		usleep(1000);
	}
	lutf_cluster_async_flush(c, 10000);
	until = td_now_ms() + 30000;
	for (;;) {
		k = 0;
		for (int i = 0; i < n; i++)
			k += atomic_load(&L.got[i]) != 0;
		if (k == n || td_now_ms() > until)
			break;
		td_sleep_ms(20);
	}
	k = 0;
	for (int i = 0; i < n; i++) {
		uint64_t g = atomic_load(&L.got[i]);

		if (!g)
			continue;
		d[k++] = g - L.sent[i];
		if (g > last)
			last = g;
	}
	*missing = n - k;
	if (getenv("LUTF_BENCH_LAT_DUMP")) {
		FILE *f = fopen(getenv("LUTF_BENCH_LAT_DUMP"), "w");

		for (int i = 0; f && i < n; i++)
			fprintf(f, "%d %" PRIu64 " %" PRIu64 "\n", i, L.sent[i] - t0,
				atomic_load(&L.got[i]) ? atomic_load(&L.got[i]) - L.sent[i] : 0);
		if (f)
			fclose(f);
	}
	if (!k)
		goto err;
	qsort(d, (size_t)k, sizeof(*d), cmp_u64);
	*p50 = d[k / 2];
	*p99 = d[(size_t)k * 99 / 100];
	*max = d[k - 1];
	*achieved = last > t0 ? 1e6 * k / (double)(last - t0) : 0;
	natsSubscription_Destroy(sub);
	free(d);
	free(L.sent);
	free((void *)L.got);
	return 0;
err:
	natsSubscription_Destroy(sub);
	free(d);
	free(L.sent);
	free((void *)L.got);
	return -1;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void scale_stop_node(int i, bool for_good);

static void cleanup(void)
{
	for (int i = 0; i < 3; i++)
		scale_stop_node(i, true);
	for (int i = 0; i < 2; i++)
		td_stop(&node[i]);
	td_stop(&node3);
	tn_stop(&nats);
	tn_stop(&nats3);
}

/* Deploy app (so_path) exporting fn as sym on d's lutfd (locally), with one
 * config entry when cfg is given; wait until bench/fn serves. True when it
 * does. */
static bool deploy_app(struct td *d, const char *app, const char *so_path, const char *fn,
		       const char *sym, const struct lutf_client_config *cfg)
{
	struct lutf_client_export ex = {fn, sym};
	struct lutf_client_deploy dp = {.tenant = "bench",
					.app = app,
					.so_path = so_path,
					.exports = &ex,
					.n_exports = 1,
					.config = cfg,
					.n_config = cfg ? 1 : 0};
	struct lutf_client_reply rep = {0};
	struct lutf_client *ctl = NULL;
	char url[200];
	bool ok;
	uint64_t t0;

	snprintf(url, sizeof(url), "unix://%s/control.sock", d->run);
	ok = !lutf_client_connect(url, &ctl) && !lutf_client_deploy(ctl, &dp, &rep) &&
	     rep.status == LUTF_STATUS_OK;
	lutf_client_reply_release(&rep);
	lutf_client_close(ctl);
	t0 = td_now_ms();
	while (ok && !serves(d, "bench", fn) && td_now_ms() - t0 < 15000)
		td_sleep_ms(20);
	return ok && serves(d, "bench", fn);
}

/* hello's noop as bench/echo. */
static bool deploy_echo(struct td *d)
{
	return deploy_app(d, "local", APP_SO, "echo", "noop", NULL);
}

/* spin_app's spin as bench/spin, burning work_us of CPU a call. */
static bool deploy_spin(struct td *d, int work_us)
{
	char us[16];
	struct lutf_client_config cfg = {"spin", "work_us", us};

	snprintf(us, sizeof(us), "%d", work_us);
	return deploy_app(d, "spin", SPIN_SO, "spin", "spin", &cfg);
}

/* --scale (issue #15's simulated scaling row): N = 1, 2, 3 lutfds on the
 * one nats-server, each with its workers confined to a share of a CPU
 * (0.5: cpu.cfs_quota_us 50000 of cpu.cfs_period_us 100000, cgroup v1; or
 * cpu.max on v2) by a cgroup the bench makes and the lutfd enters before it
 * execs (its tenant cgroups are then made below it, so the workers count
 * against the same quota), drain the same async backlog. Two kinds of rows:
 * a no-op function (the loop's own cost: on 2 vCPUs the nats-server, not
 * the nodes, is the limit) and "spin", a function burning a fixed CPU time
 * a call (--work-us), where the nodes' quota is the limit. */
static struct td snode[3];
static int scale_cur; /* the node td_spawn's child is starting */
static bool scale_v2;
static char scale_cpu_root[64] = "/sys/fs/cgroup/cpu",
	    scale_acct_root[64] = "/sys/fs/cgroup/cpuacct";

static int put_file(const char *dir, const char *file, const char *val)
{
	char path[256];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "w");
	if (!f)
		return -1;
	ok = fputs(val, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static int scale_pre_exec(void)
{
	char dir[160], pid[24];

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s/%s", scale_cpu_root, snode[scale_cur].tag);
	if (put_file(dir, "cgroup.procs", pid))
		return 1;
	if (!scale_v2) {
		snprintf(dir, sizeof(dir), "%s/%s", scale_acct_root, snode[scale_cur].tag);
		if (put_file(dir, "cgroup.procs", pid))
			return 1;
	}
	return 0;
}

/* The node's cgroups with the quota; false when they cannot be made. */
static bool scale_cgroups(int i, double share)
{
	char dir[160], v[64];
	long quota = (long)(share * 100000.0 + 0.5);

	snprintf(dir, sizeof(dir), "%s/%s", scale_cpu_root, snode[i].tag);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return false;
	if (scale_v2) {
		snprintf(v, sizeof(v), "%ld 100000", quota);
		return !put_file(dir, "cpu.max", v);
	}
	snprintf(v, sizeof(v), "%ld", quota);
	if (put_file(dir, "cpu.cfs_period_us", "100000") || put_file(dir, "cpu.cfs_quota_us", v))
		return false;
	snprintf(dir, sizeof(dir), "%s/%s", scale_acct_root, snode[i].tag);
	return !mkdir(dir, 0755) || errno == EEXIST;
}

/* CPU (ms) used by the node's cgroup (lutfd, its watcher and workers) so
 * far, and how many quota periods throttled it. */
static double scale_cpu_ms(int i, uint64_t *throttled)
{
	char path[200], line[128];
	unsigned long long v = 0;
	double ms = 0;
	FILE *f;

	*throttled = 0;
	if (scale_v2) {
		snprintf(path, sizeof(path), "%s/%s/cpu.stat", scale_cpu_root, snode[i].tag);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f)) {
			if (sscanf(line, "usage_usec %llu", &v) == 1)
				ms = (double)v / 1000.0;
			else if (sscanf(line, "nr_throttled %llu", &v) == 1)
				*throttled = v;
		}
		if (f)
			fclose(f);
		return ms;
	}
	snprintf(path, sizeof(path), "%s/%s/cpuacct.usage", scale_acct_root, snode[i].tag);
	f = fopen(path, "r");
	if (f && fscanf(f, "%llu", &v) == 1)
		ms = (double)v / 1e6;
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "%s/%s/cpu.stat", scale_cpu_root, snode[i].tag);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "nr_throttled %llu", &v) == 1)
			*throttled = v;
	if (f)
		fclose(f);
	return ms;
}

static void scale_stop_node(int i, bool for_good)
{
	char dir[160];

	if (snode[i].pid > 0) {
		kill(snode[i].pid, SIGTERM);
		if (!td_wait_exit(snode[i].pid, NULL, 10000)) {
			kill(snode[i].pid, SIGKILL);
			waitpid(snode[i].pid, NULL, 0);
		}
		snode[i].pid = 0;
	}
	if (!for_good || !snode[i].tag[0])
		return;
	/* td_stop removes the cpu (v1) cgroups; the cpuacct one is ours to
	 * remove, once the watcher and the workers have left it. */
	snprintf(dir, sizeof(dir), "%s/%s", scale_acct_root, snode[i].tag);
	for (int k = 0; !scale_v2 && k < 50 && rmdir(dir) && errno == EBUSY; k++)
		td_sleep_ms(100);
	td_stop(&snode[i]);
	snprintf(dir, sizeof(dir), "%s/%s", scale_cpu_root, snode[i].tag);
	for (int k = 0; k < 50 && rmdir(dir) && errno == EBUSY; k++)
		td_sleep_ms(100);
}

/* Whether pid's cgroup in the hierarchy ctrl names ("cpu", "cpuacct"; ""
 * = v2's "0::" line) is the node's tag folder or below it. */
static bool in_node_cgroup(pid_t pid, const char *ctrl, const char *tag)
{
	char path[64], line[512];
	bool in = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "r");
	while (f && !in && fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *p;
		size_t n = strlen(tag);
		bool match = false;

		if (!c2)
			continue;
		*c2 = 0;
		if (!ctrl[0])
			match = c1 == line + 1 && line[0] == '0' && c2 == c1 + 1;
		else
			for (char *t = strtok(c1 + 1, ","); t && !match; t = strtok(NULL, ","))
				match = !strcmp(t, ctrl);
		/* the path: "/<tag>" or "/<tag>/..." (the bench runs at the root) */
		p = c2 + 1;
		p[strcspn(p, "\n")] = 0;
		in = match && p[0] == '/' && !strncmp(p + 1, tag, n) &&
		     (!p[1 + n] || p[1 + n] == '/');
	}
	if (f)
		fclose(f);
	return in;
}

/* The node's lutfd and every process below it (its zygote, watcher, tenant
 * workers), found through /proc's parent links: how many there are, and
 * how many sit inside the node's quota'd cgroup (and, v1, its cpuacct
 * folder, whose usage the rows report). */
static void scale_members(int i, int *all, int *in)
{
	enum { MAXP = 8192 };
	static pid_t pid[MAXP], ppid[MAXP];
	pid_t tree[256];
	int np = 0, nt = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	*all = *in = 0;
	while (d && np < MAXP && (e = readdir(d))) {
		char path[64], buf[512], *p;
		FILE *f;
		size_t n;
		int pp;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		if (!(p = strrchr(buf, ')')) || sscanf(p + 2, "%*c %d", &pp) != 1)
			continue;
		pid[np] = atoi(e->d_name);
		ppid[np++] = pp;
	}
	if (d)
		closedir(d);
	if (snode[i].pid <= 0)
		return;
	tree[nt++] = snode[i].pid;
	for (int k = 0; k < nt; k++) /* breadth first */
		for (int j = 0; j < np && nt < 256; j++)
			if (ppid[j] == tree[k])
				tree[nt++] = pid[j];
	for (int k = 0; k < nt; k++) {
		bool ok = scale_v2 ? in_node_cgroup(tree[k], "", snode[i].tag)
				   : in_node_cgroup(tree[k], "cpu", snode[i].tag) &&
					 in_node_cgroup(tree[k], "cpuacct", snode[i].tag);

		(*all)++;
		*in += ok;
	}
}

/* A round's snapshots: nodes' cgroups, nats-server, the bench; the nodes'
 * processes at the round's end. */
static struct {
	int k;
	double c0[3], c1[3], n0, n1;
	uint64_t th0[3], th1[3], ms0, ms1;
	struct rusage ru0, ru1;
	int procs[3], procs_in[3];
} S;

static void scale_hook(int phase)
{
	if (!phase) {
		for (int i = 0; i <= S.k; i++) {
			scale_cur = i;
			snode[i].pid = td_spawn(&snode[i], snode[i].run);
		}
		return;
	}
	if (phase == 2) {
		for (int i = 0; i <= S.k; i++)
			S.c0[i] = scale_cpu_ms(i, &S.th0[i]);
		S.n0 = nats_cpu_ms();
		getrusage(RUSAGE_SELF, &S.ru0);
		S.ms0 = td_now_ms();
		return;
	}
	S.ms1 = td_now_ms();
	for (int i = 0; i <= S.k; i++)
		S.c1[i] = scale_cpu_ms(i, &S.th1[i]);
	S.n1 = nats_cpu_ms();
	getrusage(RUSAGE_SELF, &S.ru1);
	for (int i = 0; i <= S.k; i++)
		scale_members(i, &S.procs[i], &S.procs_in[i]);
}

/* One kind of row's figures: [N - 1][round]. */
struct scale_rows {
	const char *name; /* "noop", "spin" */
	const char *fn;	  /* bench/<fn> */
	int calls, work_us;
	double rate[3][8], sorted[3][8], ncpu[3][8], lcpu[3][8], bcpu[3][8], node_cpu[3][8][3];
	double us_call[3][8]; /* the nodes' cgroup CPU a drained call, µs */
	uint64_t thr[3][8];
	int procs[3][8], procs_in[3][8];
};

/* A round of N = k + 1 nodes of one kind; false when results are missing. */
static bool scale_round(struct lutf_cluster *c, struct scale_rows *w, int k, int r)
{
	char tag[24];
	double a, b, m, wall, t0, used = 0;
	int ok;

	/* The nodes are down (SIGTERM at the end of the last round): the
	 * backlog is queued, then the N nodes are spawned at once (each enters
	 * its cgroup before exec). A pull a stopped (SIGSTOP) node had asked
	 * for lost its calls until the ack wait: 30 s stalls, seen, hence no
	 * SIGSTOP. */
	S.k = k;
	round_hook = scale_hook;
	async_fn = w->fn;
	snprintf(tag, sizeof(tag), "%c%d-%d", w->name[0], k, r);
	w->rate[k][r] = async_round(c, tag, w->calls, &ok, &a, &b, &m);
	round_hook = NULL;
	async_fn = "echo";
	wall = (double)(S.ms1 - S.ms0);
	if (ok != w->calls)
		fprintf(stderr, "cluster: scale round %s: %d of %d results ok\n", tag, ok,
			w->calls);
	for (int i = 0; i <= k; i++) {
		w->node_cpu[k][r][i] = wall > 0 ? (S.c1[i] - S.c0[i]) / wall : 0;
		used += S.c1[i] - S.c0[i];
		w->lcpu[k][r] += w->node_cpu[k][r][i];
		w->thr[k][r] += S.th1[i] - S.th0[i];
		w->procs[k][r] += S.procs[i];
		w->procs_in[k][r] += S.procs_in[i];
	}
	w->us_call[k][r] = round_drained ? 1000.0 * used / (double)round_drained : 0;
	w->ncpu[k][r] = wall > 0 ? (S.n1 - S.n0) / wall : 0;
	t0 = (double)(S.ru1.ru_utime.tv_sec - S.ru0.ru_utime.tv_sec + S.ru1.ru_stime.tv_sec -
		      S.ru0.ru_stime.tv_sec) *
		 1000.0 +
	     (double)(S.ru1.ru_utime.tv_usec - S.ru0.ru_utime.tv_usec + S.ru1.ru_stime.tv_usec -
		      S.ru0.ru_stime.tv_usec) /
		 1000.0;
	w->bcpu[k][r] = wall > 0 ? t0 / wall : 0;
	for (int i = 0; i <= k; i++)
		scale_stop_node(i, false);
	return ok == w->calls;
}

static void scale_json(const struct scale_rows *w, int rounds)
{
	printf("{\"function\":\"%s\",\"work_us\":%d,\"calls_per_round\":%d,\"nodes\":[", w->name,
	       w->work_us, w->calls);
	for (int k = 0; k < 3; k++) {
		const double *s = w->sorted[k];

		printf("%s{\"n\":%d,\"calls_per_s\":{\"median\":%.0f,\"min\":%.0f,\"max\":%.0f,"
		       "\"rounds\":[",
		       k ? "," : "", k + 1, s[rounds / 2], s[0], s[rounds - 1]);
		for (int r = 0; r < rounds; r++)
			printf("%s%.0f", r ? "," : "", w->rate[k][r]);
		printf("]},\"speedup_vs_1\":%.2f,\"lutfd_cpus\":[",
		       w->sorted[0][rounds / 2] > 0 ? s[rounds / 2] / w->sorted[0][rounds / 2]
						    : 0.0);
		for (int r = 0; r < rounds; r++) {
			printf("%s[", r ? "," : "");
			for (int i = 0; i <= k; i++)
				printf("%s%.2f", i ? "," : "", w->node_cpu[k][r][i]);
			printf("]");
		}
		printf("],\"node_cpu_us_per_call\":[");
		for (int r = 0; r < rounds; r++)
			printf("%s%.1f", r ? "," : "", w->us_call[k][r]);
		printf("],\"nats_server_cpus\":[");
		for (int r = 0; r < rounds; r++)
			printf("%s%.2f", r ? "," : "", w->ncpu[k][r]);
		printf("],\"bench_cpus\":[");
		for (int r = 0; r < rounds; r++)
			printf("%s%.2f", r ? "," : "", w->bcpu[k][r]);
		printf("],\"throttled_periods\":[");
		for (int r = 0; r < rounds; r++)
			printf("%s%" PRIu64, r ? "," : "", w->thr[k][r]);
		printf("],\"node_processes\":[");
		for (int r = 0; r < rounds; r++)
			printf("%s%d", r ? "," : "", w->procs[k][r]);
		printf("],\"node_processes_in_quota\":[");
		for (int r = 0; r < rounds; r++)
			printf("%s%d", r ? "," : "", w->procs_in[k][r]);
		printf("]}");
	}
	printf("]}");
}

static void scale_table(const struct scale_rows *w, int rounds)
{
	if (w->work_us)
		printf("\nspin: %d us of CPU a call (its thread's CPU clock), a backlog of %d "
		       "calls; the nodes' quota is the limit\n",
		       w->work_us, w->calls);
	else
		printf("\nnoop: hello's noop, a backlog of %d calls; the loop's own cost "
		       "(nats-server, not the nodes, is the limit on 2 vCPUs)\n",
		       w->calls);
	printf("%-6s %9s %13s %8s  %s\n", "nodes", "median/s", "range/s", "speed-up",
	       "rounds: calls/s | CPUs: lutfds (each) | node CPU us/call | nats-server | "
	       "bench | throttled periods | processes in quota");
	for (int k = 0; k < 3; k++) {
		const double *s = w->sorted[k];

		printf(
		    "%-6d %9.0f %6.0f-%-6.0f %7.2fx  ", k + 1, s[rounds / 2], s[0], s[rounds - 1],
		    w->sorted[0][rounds / 2] > 0 ? s[rounds / 2] / w->sorted[0][rounds / 2] : 0.0);
		for (int r = 0; r < rounds; r++)
			printf("%s%.0f", r ? " " : "", w->rate[k][r]);
		for (int r = 0; r < rounds; r++) {
			printf(" | %.2f (", w->lcpu[k][r]);
			for (int i = 0; i <= k; i++)
				printf("%s%.2f", i ? " " : "", w->node_cpu[k][r][i]);
			printf(") %.0f %.2f %.2f %" PRIu64 " %d/%d", w->us_call[k][r],
			       w->ncpu[k][r], w->bcpu[k][r], w->thr[k][r], w->procs_in[k][r],
			       w->procs[k][r]);
		}
		printf("\n");
	}
}

/* Runs the rows and prints them; the exit status. work_us 0: no spin rows. */
static int scale_run(struct lutf_cluster *c, bool json, int n, int rounds, double share,
		     int work_us)
{
	static const char *env_new[] = {"LUTF_CLUSTER_ASYNC_BATCH=1", NULL};
	static struct scale_rows W[2];
	int nk = work_us > 0 ? 2 : 1, missing = 0, outside = 0;
	uint64_t t_all = td_now_ms();
	char extra[256];

	W[0] = (struct scale_rows){.name = "noop", .fn = "echo", .calls = n};
	W[1] =
	    (struct scale_rows){.name = "spin", .fn = "spin", .calls = n / 2, .work_us = work_us};
	if (access("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", F_OK)) {
		scale_v2 = true; /* cgroup v2 unified at /sys/fs/cgroup */
		snprintf(scale_cpu_root, sizeof(scale_cpu_root), "/sys/fs/cgroup");
	}
	for (int i = 0; i < 3; i++) {
		snprintf(snode[i].tag, sizeof(snode[i].tag), "lutfb%d-s%d", (int)getpid(), i);
		snode[i].uid_lo = TD_UID_LO + 16u * (unsigned)i; /* the other nodes are stopped */
		snode[i].pre_exec = scale_pre_exec;
		snode[i].env = env_new;
		snprintf(extra, sizeof(extra), "cluster = %s\ncluster_node = scale%d\n", nats.url,
			 i);
		scale_cur = i;
		if (!scale_cgroups(i, share) || !td_start(&snode[i], extra) ||
		    !deploy_echo(&snode[i]) || (work_us > 0 && !deploy_spin(&snode[i], work_us))) {
			fprintf(stderr, "cluster: scale node %d did not start (cgroup %s/%s; %s)\n",
				i, scale_cpu_root, snode[i].tag, snode[i].log);
			return 1;
		}
		scale_stop_node(i, false);
	}
	/* interleaved: each round runs N = 1, 2, 3 of each kind, the kinds'
	 * order swapped every round */
	for (int r = 0; r < rounds; r++)
		for (int j = 0; j < nk; j++)
			for (int k = 0; k < 3; k++) {
				struct scale_rows *w = &W[nk == 2 ? (j + r) % 2 : 0];

				missing += !scale_round(c, w, k, r);
				outside += w->procs[k][r] - w->procs_in[k][r];
			}
	for (int j = 0; j < nk; j++)
		for (int k = 0; k < 3; k++) {
			memcpy(W[j].sorted[k], W[j].rate[k], sizeof(W[j].rate[k]));
			qsort(W[j].sorted[k], (size_t)rounds, sizeof(double), cmp_dbl);
		}
	t_all = td_now_ms() - t_all;
	if (json) {
		printf("{\"bench\":\"cluster\",\"machine_cpus\":%ld,\"scale\":{\"cpu_per_node\":%"
		       ".2f,\"cgroup\":\"%s\",\"rounds\":%d,\"rounds_missing_results\":%d,"
		       "\"processes_outside_quota\":%d,\"seconds\":%.1f,\"rows\":[",
		       sysconf(_SC_NPROCESSORS_ONLN), share, scale_v2 ? "v2" : "v1", rounds,
		       missing, outside, (double)t_all / 1000.0);
		for (int j = 0; j < nk; j++) {
			printf("%s", j ? "," : "");
			scale_json(&W[j], rounds);
		}
		printf("]}}\n");
	} else {
		printf("bench/cluster --scale: 1 nats-server (R1), N lutfds each confined to %.2f "
		       "CPU (cgroup %s), %ld CPUs\n",
		       share, scale_v2 ? "v2 cpu.max" : "v1 cfs quota",
		       sysconf(_SC_NPROCESSORS_ONLN));
		printf("async calls queued while the nodes are down, then the nodes started at "
		       "once, timed from the first stored result until every result is (over the "
		       "calls left); %d rounds, N = 1, 2, 3 and the kinds interleaved (%.0f s)\n",
		       rounds, (double)t_all / 1000.0);
		for (int j = 0; j < nk; j++)
			scale_table(&W[j], rounds);
		printf("\ntargets: >= 1.8x with 2 nodes, >= 2.5x with 3 (CPUs: CPU-seconds a wall "
		       "second over the timed part; node CPU us/call: the nodes' cgroups' CPU "
		       "over the calls timed, function included; processes in quota: each "
		       "lutfd and every process below it, found in its cgroup)\n");
		if (outside)
			printf("WARNING: %d node processes outside their node's cgroup\n", outside);
	}
	return missing || outside ? 1 : 0;
}

int main(int argc, char **argv)
{
	bool json = false, quick = false;
	int nsync = 2000, nasync = 10000, ndeploy = 5;
	uint64_t lmed, lp99, fmed, fp99, dep[16], t0;
	int rounds = 5, ncalls = 0, nrounds = 0, offered = 10000, lat_s = 3, lmiss = 0;
	uint64_t l50 = 0, l99 = 0, lmax = 0, r3l50 = 0, r3l99 = 0, r3lmax = 0;
	double lrate = 0, r3lrate = 0, r3rate[8] = {0}, r3sorted[8] = {0}, r3cpu[8] = {0},
	       r3ncpu[8] = {0}, r3msg[8] = {0};
	bool r3 = false, scale = false, callbacks = false;
	double cbres[8] = {0}, cbpost[8] = {0}, cbres_s[8], cbpost_s[8];
	int donecb = 0;
	double share = 0.5;
	int work_us = 200;
	int done3 = 0, r3lmiss = 0;
	double rate[2][8] = {{0}}, sorted[2][8], cpu[2][8] = {{0}}, csorted[2][8],
	       ncpu[2][8] = {{0}}, nmsg[2][8] = {{0}};
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
		else if (!strcmp(argv[i], "--calls") && i + 1 < argc)
			ncalls = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			nrounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--r3"))
			r3 = true;
		else if (!strcmp(argv[i], "--callbacks"))
			callbacks = true;
		else if (!strcmp(argv[i], "--scale"))
			scale = true;
		else if (!strcmp(argv[i], "--cpu") && i + 1 < argc && atof(argv[i + 1]) > 0.01 &&
			 atof(argv[i + 1]) <= 2.0)
			share = atof(argv[++i]);
		else if (!strcmp(argv[i], "--work-us") && i + 1 < argc && atoi(argv[i + 1]) >= 0 &&
			 atoi(argv[i + 1]) <= 100000)
			work_us = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rate") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			offered = atoi(argv[++i]);
		else {
			fprintf(
			    stderr,
			    "usage: cluster [--json] [--quick] [--calls N] [--rounds R] "
			    "[--rate N] [--r3] [--callbacks] [--scale [--cpu C] [--work-us U]]\n"
			    "  --calls: async calls a round (10,000), --rounds: of each "
			    "kind (5, at most 8),\n"
			    "  --rate: async calls a second offered for 3 s in the latency "
			    "round (10,000),\n"
			    "  --r3: the async rows again on 3 nats-servers (R3), half "
			    "the rate offered\n"
			    "  --callbacks: a third kind of async round, each call with a "
			    "callback URL\n"
			    "  to a receiver in this program: until every result is stored, "
			    "and every POST came\n"
			    "  --scale: only the scaling rows: 1, 2, 3 lutfds, each in a cgroup "
			    "of C CPU (0.5),\n"
			    "  drain the same backlog (--calls, 20,000; --rounds, 3): a no-op "
			    "function's,\n"
			    "  then (U > 0) a function burning U us of CPU a call (200; 0: no "
			    "such rows),\n"
			    "  a backlog of half as many calls\n");
			return 2;
		}
	}
	if (quick) {
		nsync = 200;
		nasync = 300;
		ndeploy = 2;
		rounds = 1;
		lat_s = 1;
		offered = 1000;
	}
	if (scale && !quick) {
		nasync = 20000;
		rounds = 3;
	}
	if (ncalls > 0)
		nasync = ncalls;
	if (nrounds > 0)
		rounds = nrounds < 8 ? nrounds : 8;
	if (geteuid() != 0 || !tn_have_server()) {
		fprintf(stderr, "cluster: needs root and nats-server; skipped\n");
		return 77;
	}
	atexit(cleanup);
	if (!tn_start(&nats, 1)) {
		fprintf(stderr, "cluster: nats-server did not start\n");
		return 1;
	}
	if (scale) {
		int rc;

		o.url = nats.url;
		if (lutf_cluster_open(&o, &c, msg, sizeof(msg))) {
			fprintf(stderr, "cluster: %s\n", msg);
			return 1;
		}
		rc = scale_run(c, json, nasync, rounds, share, work_us);
		lutf_cluster_close(c);
		return rc;
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
	/* Async: rounds of the old path and the batched one, interleaved. */
	o.url = nats.url;
	if (lutf_cluster_open(&o, &c, msg, sizeof(msg)) || !(CC = c)) {
		fprintf(stderr, "cluster: %s\n", msg);
		return 1;
	}
	if (callbacks && !sink_start()) {
		fprintf(stderr, "cluster: no callback receiver\n");
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		for (int b = 0; b < (callbacks ? 3 : 2); b++) {
			char tag[16];
			int ok;

			if (b == 2) { /* --callbacks: batched, each call with a callback */
				snprintf(tag, sizeof(tag), "c%d", r);
				if (!restart(true)) {
					fprintf(stderr, "cluster: lutfds did not restart\n");
					return 1;
				}
				ok = cb_round(c, tag, nasync, &cbres[r], &cbpost[r]);
				donecb += ok;
				if (ok != nasync || !cbpost[r])
					fprintf(stderr,
						"cluster: round %s: %d of %d results ok, POSTs "
						"%s\n",
						tag, ok, nasync, cbpost[r] ? "all" : "missing");
				continue;
			}
			if (!restart(b)) {
				fprintf(stderr, "cluster: lutfds did not restart\n");
				return 1;
			}
			snprintf(tag, sizeof(tag), "%c%d", b ? 'n' : 'o', r);
			rate[b][r] =
			    async_round(c, tag, nasync, &ok, &cpu[b][r], &ncpu[b][r], &nmsg[b][r]);
			done += ok;
			if (ok != nasync)
				fprintf(stderr, "cluster: round %s: %d of %d results ok\n", tag, ok,
					nasync);
		}
	}
	/* Latency at the offered rate, batched path, after a restart
	 * (its backlog empty). */
	if (!restart(true) ||
	    latency_round(c, "lat", offered * lat_s, offered, &l50, &l99, &lmax, &lrate, &lmiss)) {
		fprintf(stderr, "cluster: the latency round failed\n");
		return 1;
	}
	/* --r3: the same async rows on 3 nats-servers (R3 streams), one lutfd
	 * connected to all three, on this same machine; lutfds of R1 stopped. */
	if (r3) {
		static const char *env_new[] = {"LUTF_CLUSTER_ASYNC_BATCH=1", NULL};
		struct lutf_cluster *c3 = NULL;

		for (int i = 0; i < 2; i++)
			td_stop(&node[i]);
		node3.env = env_new;
		o.url = nats3.url;
		if (!tn_start(&nats3, 3) ||
		    (snprintf(extra, sizeof(extra), "cluster = %s\ncluster_node = r3\n", nats3.url),
		     !td_start(&node3, extra)) ||
		    !deploy_echo(&node3) || lutf_cluster_open(&o, &c3, msg, sizeof(msg))) {
			fprintf(stderr, "cluster: the R3 cluster did not start\n");
			return 1;
		}
		NT = &nats3;
		ND = &node3;
		{
			/* Warm-up, not counted: the R3 streams and their consumer are
			 * created and their leaders elected on first use. */
			double a, b, m;
			int ok;

			for (int k = 0; k < 20 && !async_warm(c3); k++)
				td_sleep_ms(250); /* the R3 streams being created */
			async_round(c3, "r3w", 500, &ok, &a, &b, &m);
		}
		for (int r = 0; r < rounds; r++) {
			char tag[16];
			int ok;

			snprintf(tag, sizeof(tag), "r3-%d", r);
			r3rate[r] =
			    async_round(c3, tag, nasync, &ok, &r3cpu[r], &r3ncpu[r], &r3msg[r]);
			done3 += ok;
		}
		if (latency_round(c3, "r3lat", offered / 2 * lat_s, offered / 2, &r3l50, &r3l99,
				  &r3lmax, &r3lrate, &r3lmiss))
			r3lmiss = offered / 2 * lat_s;
		lutf_cluster_close(c3);
		memcpy(r3sorted, r3rate, sizeof(r3rate));
		qsort(r3sorted, (size_t)rounds, sizeof(double), cmp_dbl);
	}
	for (int b = 0; b < 2; b++) {
		memcpy(sorted[b], rate[b], sizeof(rate[b]));
		qsort(sorted[b], (size_t)rounds, sizeof(double), cmp_dbl);
		memcpy(csorted[b], cpu[b], sizeof(cpu[b]));
		qsort(csorted[b], (size_t)rounds, sizeof(double), cmp_dbl);
	}
	memcpy(cbres_s, cbres, sizeof(cbres));
	qsort(cbres_s, (size_t)rounds, sizeof(double), cmp_dbl);
	memcpy(cbpost_s, cbpost, sizeof(cbpost));
	qsort(cbpost_s, (size_t)rounds, sizeof(double), cmp_dbl);
	if (SINK.lfd >= 0) {
		atomic_store(&SINK.stop, true);
		pthread_join(SINK.th, NULL);
		close(SINK.lfd);
	}
	lutf_cluster_close(c);
	if (json) {
		printf("{\"bench\":\"cluster\",\"machine_cpus\":%ld,"
		       "\"sync_local_median_us\":%" PRIu64 ",\"sync_local_p99_us\":%" PRIu64
		       ",\"sync_forwarded_median_us\":%" PRIu64
		       ",\"sync_forwarded_p99_us\":%" PRIu64
		       ",\"forward_overhead_median_us\":%" PRId64
		       ",\"deploy_to_served_median_ms\":%" PRIu64
		       ",\"async_calls_per_round\":%d,\"async_rounds\":%d,\"async_results_ok\":%d",
		       sysconf(_SC_NPROCESSORS_ONLN), lmed, lp99, fmed, fp99,
		       (int64_t)fmed - (int64_t)lmed, dep[ndeploy / 2], nasync, rounds, done);
		for (int b = 0; b < 2; b++) {
			printf(
			    ",\"async_%s_calls_per_s\":{\"median\":%.0f,\"min\":%.0f,\"max\":%.0f,"
			    "\"rounds\":[",
			    b ? "batched" : "one_store_per_call", sorted[b][rounds / 2],
			    sorted[b][0], sorted[b][rounds - 1]);
			for (int r = 0; r < rounds; r++)
				printf("%s%.0f", r ? "," : "", rate[b][r]);
			printf("],\"cpu_us_per_call_median\":%.1f,\"cpu_us_per_call\":[",
			       csorted[b][rounds / 2]);
			for (int r = 0; r < rounds; r++)
				printf("%s%.1f", r ? "," : "", cpu[b][r]);
			printf("],\"nats_server_cpu_us_per_call\":[");
			for (int r = 0; r < rounds; r++)
				printf("%s%.1f", r ? "," : "", ncpu[b][r]);
			printf("],\"nats_msgs_per_call\":[");
			for (int r = 0; r < rounds; r++)
				printf("%s%.2f", r ? "," : "", nmsg[b][r]);
			printf("]}");
		}
		printf(
		    ",\"async_latency\":{\"offered_per_s\":%d,\"calls\":%d,\"achieved_per_s\":%.0f,"
		    "\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"max_us\":%" PRIu64
		    ",\"missing\":%d}",
		    offered, offered * lat_s, lrate, l50, l99, lmax, lmiss);
		if (r3) {
			printf(",\"r3\":{\"async_calls_per_s\":{\"median\":%.0f,\"min\":%.0f,"
			       "\"max\":%.0f,\"rounds\":[",
			       r3sorted[rounds / 2], r3sorted[0], r3sorted[rounds - 1]);
			for (int r = 0; r < rounds; r++)
				printf("%s%.0f", r ? "," : "", r3rate[r]);
			printf("],\"cpu_us_per_call\":[");
			for (int r = 0; r < rounds; r++)
				printf("%s%.1f", r ? "," : "", r3cpu[r]);
			printf("],\"nats_servers_cpu_us_per_call\":[");
			for (int r = 0; r < rounds; r++)
				printf("%s%.1f", r ? "," : "", r3ncpu[r]);
			printf("],\"nats_msgs_per_call\":[");
			for (int r = 0; r < rounds; r++)
				printf("%s%.2f", r ? "," : "", r3msg[r]);
			printf("]},\"latency\":{\"offered_per_s\":%d,\"achieved_per_s\":%.0f,"
			       "\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"max_us\":%" PRIu64
			       ",\"missing\":%d},\"results_ok\":%d}",
			       offered / 2, r3lrate, r3l50, r3l99, r3lmax, r3lmiss, done3);
		}
		if (callbacks) {
			printf(
			    ",\"async_callbacks\":{\"results_per_s\":{\"median\":%.0f,\"min\":%.0f,"
			    "\"max\":%.0f,\"rounds\":[",
			    cbres_s[rounds / 2], cbres_s[0], cbres_s[rounds - 1]);
			for (int r = 0; r < rounds; r++)
				printf("%s%.0f", r ? "," : "", cbres[r]);
			printf("]},\"posts_per_s\":{\"median\":%.0f,\"min\":%.0f,\"max\":%.0f,"
			       "\"rounds\":[",
			       cbpost_s[rounds / 2], cbpost_s[0], cbpost_s[rounds - 1]);
			for (int r = 0; r < rounds; r++)
				printf("%s%.0f", r ? "," : "", cbpost[r]);
			printf("]},\"results_ok\":%d}", donecb);
		}
		printf(",\"async_batched_over_old\":%.2f}\n",
		       sorted[0][rounds / 2] > 0 ? sorted[1][rounds / 2] / sorted[0][rounds / 2]
						 : 0.0);
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
		printf(
		    "async noop on 1 node (R1), %d calls a round published without waiting, until "
		    "every result is stored; %d rounds each, interleaved:\n",
		    nasync, rounds);
		printf("%-44s %12s %12s %s\n", "", "median/s", "range/s",
		       "rounds (calls/s | CPU us/call)");
		for (int b = 0; b < 2; b++) {
			printf("%-44s %12.0f %5.0f-%-6.0f ",
			       b ? "  batched stores, a batch acked together"
				 : "  one synchronous store per call (baseline)",
			       sorted[b][rounds / 2], sorted[b][0], sorted[b][rounds - 1]);
			for (int r = 0; r < rounds; r++)
				printf("%s%.0f", r ? " " : "", rate[b][r]);
			printf(" |");
			for (int r = 0; r < rounds; r++)
				printf(" %.0f", cpu[b][r]);
			printf(" | nats-server");
			for (int r = 0; r < rounds; r++)
				printf(" %.0f", ncpu[b][r]);
			printf(" | msgs/call");
			for (int r = 0; r < rounds; r++)
				printf(" %.1f", nmsg[b][r]);
			printf("\n");
		}
		printf("%-44s %11.2fx (target >= 20,000 calls/s)\n", "  batched / baseline",
		       sorted[0][rounds / 2] > 0 ? sorted[1][rounds / 2] / sorted[0][rounds / 2]
						 : 0.0);
		printf("%-44s %11.0f %12.0f (us of CPU per call, medians: nats-server + "
		       "lutfd)\n",
		       "  CPU per call: baseline, batched", csorted[0][rounds / 2],
		       csorted[1][rounds / 2]);
		if (callbacks) {
			printf("%-44s %12.0f %5.0f-%-6.0f ",
			       "  batched, a callback URL each: results", cbres_s[rounds / 2],
			       cbres_s[0], cbres_s[rounds - 1]);
			for (int r = 0; r < rounds; r++)
				printf("%s%.0f", r ? " " : "", cbres[r]);
			printf("\n%-44s %12.0f %5.0f-%-6.0f ", "    every POST received",
			       cbpost_s[rounds / 2], cbpost_s[0], cbpost_s[rounds - 1]);
			for (int r = 0; r < rounds; r++)
				printf("%s%.0f", r ? " " : "", cbpost[r]);
			printf("\n");
		}
		printf("async submit-to-result, batched, %d calls offered at %d/s (achieved "
		       "%.0f/s, %d missing):\n",
		       offered * lat_s, offered, lrate, lmiss);
		printf("%-44s %9" PRIu64 " us %9" PRIu64 " us (max %" PRIu64
		       " us; target p99 <= 10 ms)\n",
		       "  median, p99", l50, l99, lmax);
		if (r3) {
			printf("async on 3 nats-servers (R3), 1 lutfd, %d calls a round, %d rounds "
			       "(target >= 5,000 calls/s):\n",
			       nasync, rounds);
			printf("%-44s %12.0f %5.0f-%-6.0f ", "  batched", r3sorted[rounds / 2],
			       r3sorted[0], r3sorted[rounds - 1]);
			for (int r = 0; r < rounds; r++)
				printf("%s%.0f", r ? " " : "", r3rate[r]);
			printf(" |");
			for (int r = 0; r < rounds; r++)
				printf(" %.0f", r3cpu[r]);
			printf(" | nats-servers");
			for (int r = 0; r < rounds; r++)
				printf(" %.0f", r3ncpu[r]);
			printf(" | msgs/call");
			for (int r = 0; r < rounds; r++)
				printf(" %.1f", r3msg[r]);
			printf("\n%-44s %9" PRIu64 " us %9" PRIu64 " us (max %" PRIu64
			       " us; %d offered at %d/s, achieved %.0f/s, %d missing)\n",
			       "  submit-to-result median, p99", r3l50, r3l99, r3lmax,
			       offered / 2 * lat_s, offered / 2, r3lrate, r3lmiss);
		}
	}
	return done == 2 * rounds * nasync && !lmiss && (!callbacks || donecb == rounds * nasync) &&
		       (!r3 || (done3 == rounds * nasync && !r3lmiss))
		   ? 0
		   : 1;
}
