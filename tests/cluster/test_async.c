/* SPDX-License-Identifier: MIT */
/*
 * Durable async calls under faults (issue #15): one nats-server (file
 * storage) and two lutfds; calls go into the work queue while one lutfd and
 * then the nats-server are killed -9 and started again. Every accepted id
 * must end with exactly one stored result (its own output) or a dead letter.
 * LUTF_CLUSTER_ASYNC_N sets the count (default 1000; the 10,000 is
 * for a manual run). Every wait is bounded.
 */
#define _GNU_SOURCE
/* GCC 12 sees td_start's folder names through 1 KiB buffers here: a false
 * format-truncation (they are bounded by mkdtemp's template). */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <criterion/criterion.h>
#include <inttypes.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster.h"
#include "nats_util.h"
#include "require.h"

#define APP TEST_APP_DIR "/libctl_app.so"

static struct tn nats;
static struct td node[2];

static void teardown(void)
{
	for (int i = 0; i < 2; i++)
		td_stop(&node[i]);
	tn_stop(&nats);
}

/* acme/echo answers OK (and its own input) at node d. */
static bool served(struct td *d)
{
	return tn_call_hi(d, "acme", "echo") == LUTF_STATUS_OK;
}

Test(cluster, async_calls_survive_kills, .fini = teardown, .timeout = 120)
{
	static const char *env[] = {"LUTF_CLUSTER_ACK_WAIT_MS=2000", NULL};
	const char *ns = getenv("LUTF_CLUSTER_ASYNC_N");
	int n = ns ? atoi(ns) : 1000, accepted = 0, ok = 0, dead = 0, wrong = 0;
	struct lutf_cluster_opts o = {0};
	struct lutf_cluster *c = NULL;
	char extra[256], msg[300], cmd[1024];
	bool *done;
	uint64_t t0, until;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(n > 0 && n <= 100000);
	done = calloc((size_t)n, sizeof(*done));
	cr_assert(done);
	cr_assert(tn_start(&nats, 1));
	for (int i = 0; i < 2; i++) {
		node[i].env = env;
		snprintf(extra, sizeof(extra),
			 "cluster = %s\ncluster_node = node%d\nhttp_listen = 127.0.0.1:0\n"
			 "admin_listen = 127.0.0.1:0\n",
			 nats.url, i);
		cr_assert(td_start(&node[i], extra), "lutfd %d did not start", i);
	}
	snprintf(cmd, sizeof(cmd),
		 "%s --cluster '%s' deploy --tenant acme --app shop --so %s --export echo "
		 ">/dev/null",
		 LUTFCTL_BIN, nats.url, APP);
	cr_assert_eq(system(cmd), 0);
	until = td_now_ms() + 15000;
	while (!(served(&node[0]) && served(&node[1])) && td_now_ms() < until)
		td_sleep_ms(50);
	cr_assert(served(&node[0]) && served(&node[1]), "the app is not served on both nodes");

	o.url = nats.url;
	o.retry = true; /* reconnect forever: the server is killed midway */
	cr_assert_eq(lutf_cluster_open(&o, &c, msg, sizeof(msg)), 0, "%s", msg);
	t0 = td_now_ms();
	for (int i = 0; i < n; i++) {
		char id[LUTF_CLUSTER_ID], in[32];
		bool dup;
		int err = -1;

		if (i == n / 3) { /* a lutfd dies with calls in hand, and comes back */
			kill(node[1].pid, SIGKILL);
			waitpid(node[1].pid, NULL, 0);
			cr_assert(td_start_again(&node[1]), "lutfd 1 did not restart");
		}
		if (i == 2 * n / 3) { /* the server dies; its file store stays */
			tn_kill(&nats, 0);
			cr_assert(tn_start_one(&nats, 0), "nats-server did not restart");
		}
		snprintf(id, sizeof(id), "call-%d", i);
		snprintf(in, sizeof(in), "in-%d", i);
		/* A failed submit is tried again with the same id: dedup keeps one. */
		for (int k = 0; k < 50 && err; k++) {
			err = lutf_cluster_async_submit(c, "acme", "echo", in, strlen(in), id, &dup,
							msg, sizeof(msg));
			if (err)
				td_sleep_ms(100);
		}
		cr_assert_eq(err, 0, "call %d never accepted: %s", i, msg);
		accepted++;
	}
	cr_log_info("%d calls accepted in %" PRIu64 " ms", accepted, td_now_ms() - t0);

	/* Every accepted id ends: its result (its own output) or a dead letter. */
	until = td_now_ms() + 60000;
	for (int left = n; left && td_now_ms() < until;) {
		for (int i = 0; i < n; i++) {
			struct lutf_cluster_reply r;
			char id[LUTF_CLUSTER_ID], in[32];
			bool isdead;

			if (done[i])
				continue;
			snprintf(id, sizeof(id), "call-%d", i);
			if (lutf_cluster_result_get(c, id, &r, &isdead, msg, sizeof(msg)))
				continue;
			snprintf(in, sizeof(in), "in-%d", i);
			done[i] = true;
			left--;
			if (isdead)
				dead++;
			else if (r.status == LUTF_STATUS_OK && r.output_len == strlen(in) &&
				 !memcmp(r.output, in, r.output_len))
				ok++;
			else
				wrong++;
			free(r.output);
		}
		if (ok + dead + wrong < n)
			td_sleep_ms(200);
	}
	cr_log_info("%d results in %" PRIu64 " ms: %d ok, %d dead letters, %d wrong",
		    ok + dead + wrong, td_now_ms() - t0, ok, dead, wrong);
	cr_log_info("duplicate executions counted by the nodes running now: %" PRIu64
		    " (at least once: allowed, reported)",
		    tn_metric(&node[0], "lutf_cluster_async_duplicates_total") +
			tn_metric(&node[1], "lutf_cluster_async_duplicates_total"));
	cr_log_info("calls run by node 0: %" PRIu64 ", by node 1 since its restart: %" PRIu64,
		    tn_metric(&node[0], "lutf_cluster_async_total{result=\"done\"}"),
		    tn_metric(&node[1], "lutf_cluster_async_total{result=\"done\"}"));
	lutf_cluster_close(c);
	cr_assert_eq(wrong, 0, "%d results are not their call's output", wrong);
	cr_assert_eq(ok + dead, accepted, "%d accepted calls have no result", accepted - ok - dead);
	free(done);
}

/* One nats-server and two lutfds of the cluster on it (node0, node1). */
static void start_two_nodes(void)
{
	char extra[256];

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1));
	for (int i = 0; i < 2; i++) {
		snprintf(extra, sizeof(extra),
			 "cluster = %s\ncluster_node = node%d\nadmin_listen = 127.0.0.1:0\n",
			 nats.url, i);
		cr_assert(td_start(&node[i], extra), "lutfd %d did not start", i);
	}
}

/*
 * start_two_nodes, then acme/naps (nap = sleep_ms) deployed with
 * --max-concurrency 2 and a cluster handle in *c; returns once both nodes
 * serve it (and so have its bound), 15 s at most.
 */
static void start_bounded_pair(struct lutf_cluster **c)
{
	struct lutf_cluster_opts o = {.url = nats.url};
	char msg[300], cmd[1024];
	uint64_t until;

	start_two_nodes();
	snprintf(cmd, sizeof(cmd),
		 "%s --cluster '%s' deploy --tenant acme --app naps --so %s --export nap=sleep_ms "
		 "--max-concurrency 2 >/dev/null",
		 LUTFCTL_BIN, nats.url, SLEEP_SO);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(lutf_cluster_open(&o, c, msg, sizeof(msg)), 0, "%s", msg);
	until = td_now_ms() + 15000;
	for (int i = 0; i < 2; i++) {
		char url[200];
		struct lutf_client *cl = NULL;
		struct lutf_client_request req = {.input = "0", .input_len = 1};
		struct lutf_client_result res = {0};

		snprintf(url, sizeof(url), "unix://%s/lutf.sock", node[i].run);
		cr_assert_eq(lutf_client_connect(url, &cl), 0);
		while (td_now_ms() < until) {
			res.status = ~0u;
			if (!lutf_client_invoke(cl, "acme", "nap", &req, &res) &&
			    res.status == LUTF_STATUS_OK)
				break;
			lutf_client_result_release(&res);
			td_sleep_ms(50);
		}
		lutf_client_result_release(&res);
		lutf_client_close(cl);
	}
}

/* A function deployed with --max-concurrency 2: each node keeps at most 2
 * of its async calls on lutfd at once, so none meets lutfd's OVERLOADED
 * (which would be retried with backoff, and after 5 tries dead-lettered).
 * 16 calls of 300 ms on 2 nodes take at least 16 / (2 x 2) x 300 ms. */
/* Wait (up to ms) until every call <prefix>-0 .. n-1 has a stored result or
 * a dead letter; *match counts those that ended with want (status; dead
 * letter or not as want_dead), *other the rest. */
static void wait_results(struct lutf_cluster *c, const char *prefix, int n, uint32_t want,
			 bool want_dead, uint64_t ms, int *match, int *other)
{
	uint64_t until = td_now_ms() + ms;
	char msg[300];

	*match = *other = 0;
	while (*match + *other < n && td_now_ms() < until) {
		*match = *other = 0;
		for (int i = 0; i < n; i++) {
			struct lutf_cluster_reply r;
			char id[LUTF_CLUSTER_ID];
			bool dead;

			snprintf(id, sizeof(id), "%s-%d", prefix, i);
			if (lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg)))
				continue;
			if (dead == want_dead && r.status == want)
				(*match)++;
			else
				(*other)++;
			free(r.output);
		}
		if (*match + *other < n)
			td_sleep_ms(20);
	}
}

Test(cluster, async_respects_max_concurrency, .fini = teardown, .timeout = 120)
{
	const int n = 16;
	struct lutf_cluster *c = NULL;
	char msg[300];
	int ok = 0, other = 0;
	uint64_t t0, took, retried;

	start_bounded_pair(&c);
	td_sleep_ms(300); /* the node thread pushes the bound right after converging */
	t0 = td_now_ms();
	for (int i = 0; i < n; i++) {
		char id[LUTF_CLUSTER_ID];
		bool dup;

		snprintf(id, sizeof(id), "nap-%d", i);
		cr_assert_eq(lutf_cluster_async_submit(c, "acme", "nap", "300", 3, id, &dup, msg,
						       sizeof(msg)),
			     0, "%s", msg);
	}
	wait_results(c, "nap", n, LUTF_STATUS_OK, false, 60000, &ok, &other);
	took = td_now_ms() - t0;
	retried = tn_metric(&node[0], "lutf_cluster_async_total{result=\"retried\"}") +
		  tn_metric(&node[1], "lutf_cluster_async_total{result=\"retried\"}");
	cr_log_info("%d calls of 300 ms, at most 2 at once a node: %d ok in %" PRIu64
		    " ms, %" PRIu64 " retried",
		    n, ok, took, retried);
	lutf_cluster_close(c);
	cr_assert_eq(ok, n, "%d of %d calls ok (%d not ok)", ok, n, other);
	cr_assert_eq(retried, 0, "calls were retried: lutfd refused some (OVERLOADED)");
	cr_assert_geq(took, (uint64_t)(n / 4) * 300 - 50,
		      "%" PRIu64 " ms: more than 2 calls a node ran at once", took);
}

/* A slow call does not hold back the fast ones fetched in its batch: the
 * answered ones are stored and acked in a wave while it runs. The calls
 * are queued while the only lutfd is down, so its first pull takes them
 * all in one batch, the slow one first. */
Test(cluster, async_slow_call_does_not_hold_its_batch, .fini = teardown, .timeout = 120)
{
	const int n = 20;
	struct lutf_cluster_opts o = {0};
	struct lutf_cluster *c = NULL;
	char extra[256], msg[300], cmd[1024], id[LUTF_CLUSTER_ID];
	uint64_t until, slow_at = 0, fast_at = 0;
	int fast = 0;
	bool dup;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1));
	snprintf(extra, sizeof(extra), "cluster = %s\ncluster_node = node0\n", nats.url);
	cr_assert(td_start(&node[0], extra), "lutfd did not start");
	/* Two tenants (two worker processes): the slow call holds none of
	 * the fast ones' Labors, only, before waves, their batch. */
	for (int t = 0; t < 2; t++) {
		snprintf(cmd, sizeof(cmd),
			 "%s --cluster '%s' deploy --tenant %s --app naps --so %s --export "
			 "nap=sleep_ms >/dev/null",
			 LUTFCTL_BIN, nats.url, t ? "slowco" : "acme", SLEEP_SO);
		cr_assert_eq(system(cmd), 0);
	}
	o.url = nats.url;
	cr_assert_eq(lutf_cluster_open(&o, &c, msg, sizeof(msg)), 0, "%s", msg);
	/* Served (one call through the queue) before lutfd goes down. */
	snprintf(id, sizeof(id), "warm");
	until = td_now_ms() + 20000;
	cr_assert_eq(
	    lutf_cluster_async_submit(c, "acme", "nap", "0", 1, id, &dup, msg, sizeof(msg)), 0,
	    "%s", msg);
	while (td_now_ms() < until) {
		struct lutf_cluster_reply r;
		bool dead;

		if (!lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg))) {
			free(r.output);
			break;
		}
		td_sleep_ms(50);
	}
	cr_assert(td_now_ms() < until, "the warm-up call never ran");
	kill(node[0].pid, SIGTERM);
	cr_assert(td_wait_exit(node[0].pid, NULL, 10000), "lutfd did not stop");
	node[0].pid = 0;
	cr_assert_eq(lutf_cluster_async_submit(c, "slowco", "nap", "3000", 4, (char[]){"slow"},
					       &dup, msg, sizeof(msg)),
		     0, "%s", msg);
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "fast-%d", i);
		cr_assert_eq(
		    lutf_cluster_async_submit(c, "acme", "nap", "0", 1, id, &dup, msg, sizeof(msg)),
		    0, "%s", msg);
	}
	cr_assert(td_start_again(&node[0]), "lutfd did not restart");
	until = td_now_ms() + 30000;
	while ((!slow_at || fast < n) && td_now_ms() < until) {
		struct lutf_cluster_reply r;
		bool dead;

		if (!slow_at && !lutf_cluster_result_get(c, "slow", &r, &dead, msg, sizeof(msg))) {
			free(r.output);
			slow_at = td_now_ms();
		}
		fast = 0;
		for (int i = 0; i < n; i++) {
			snprintf(id, sizeof(id), "fast-%d", i);
			if (!lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg))) {
				fast += !dead && r.status == LUTF_STATUS_OK;
				free(r.output);
			}
		}
		if (fast == n && !fast_at)
			fast_at = td_now_ms();
		td_sleep_ms(20);
	}
	lutf_cluster_close(c);
	cr_log_info("fast results all stored %" PRIu64 " ms before the slow one",
		    slow_at - fast_at);
	cr_assert_eq(fast, n, "%d of %d fast calls have their result", fast, n);
	cr_assert(slow_at, "the slow call has no result");
	cr_assert(fast_at < slow_at, "the fast calls' results waited for the slow call");
}

/* A node pulls what it can start soon, not a whole batch of a slow,
 * bounded function: 24 calls of 300 ms of a function with --max-concurrency 2
 * are queued while both lutfds are down; node 0 comes back first and would
 * take all 24 in its first pull (3.6 s alone); it keeps 2 x 2 and hands the
 * rest back, so node 1, up a moment later, runs a share: both run some, and
 * the backlog drains near the ideal of 24 / (2 x 2) x 300 ms = 1.8 s. */
Test(cluster, async_bounded_backlog_shared_by_nodes, .fini = teardown, .timeout = 120)
{
	const int n = 24;
	struct lutf_cluster *c = NULL;
	char msg[300];
	int ok = 0, other = 0;
	uint64_t t0, took, retried, ran[2];

	start_bounded_pair(&c);
	for (int i = 0; i < 2; i++) {
		kill(node[i].pid, SIGTERM);
		cr_assert(td_wait_exit(node[i].pid, NULL, 10000), "lutfd %d did not stop", i);
		node[i].pid = 0;
	}
	for (int i = 0; i < n; i++) {
		char id[LUTF_CLUSTER_ID];
		bool dup;

		snprintf(id, sizeof(id), "share-%d", i);
		cr_assert_eq(lutf_cluster_async_submit(c, "acme", "nap", "300", 3, id, &dup, msg,
						       sizeof(msg)),
			     0, "%s", msg);
	}
	cr_assert(td_start_again(&node[0]), "lutfd 0 did not restart");
	t0 = td_now_ms();
	cr_assert(td_start_again(&node[1]), "lutfd 1 did not restart");
	cr_log_info("node 1 up %" PRIu64 " ms after node 0", td_now_ms() - t0);
	wait_results(c, "share", n, LUTF_STATUS_OK, false, 60000, &ok, &other);
	took = td_now_ms() - t0;
	for (int i = 0; i < 2; i++)
		ran[i] = tn_metric(&node[i], "lutf_cluster_async_total{result=\"done\"}");
	retried = tn_metric(&node[0], "lutf_cluster_async_total{result=\"retried\"}") +
		  tn_metric(&node[1], "lutf_cluster_async_total{result=\"retried\"}");
	cr_log_info("%d calls of 300 ms, at most 2 at once a node: %d ok in %" PRIu64
		    " ms (ideal on 2 nodes 1800, one node 3600); node 0 ran %" PRIu64
		    ", node 1 %" PRIu64 "; %" PRIu64 " retried",
		    n, ok, took, ran[0], ran[1], retried);
	lutf_cluster_close(c);
	cr_assert_eq(ok, n, "%d of %d calls ok (%d not ok)", ok, n, other);
	cr_assert_eq(retried, 0, "calls were retried: lutfd refused some (OVERLOADED)");
	cr_assert_geq(ran[0], 4, "node 0 ran %" PRIu64, ran[0]);
	cr_assert_geq(ran[1], 4, "node 1 ran %" PRIu64 ": node 0 kept the backlog", ran[1]);
	cr_assert_lt(took, 3000, "%" PRIu64 " ms: not near the ideal 1800 ms of two nodes", took);
}

/* The retry budget counts runs, not deliveries: calls of a bounded
 * function handed back unrun by a node (over its 2 x max_concurrency) are
 * delivered again without having run. 4 calls that crash every time, of a
 * function with --max-concurrency 1, queued while both lutfds are down: each
 * must run exactly 5 times (4 retries, then the dead-letter stream), however
 * often it was handed back (counting deliveries, 6 calls got 11 retries). */
Test(cluster, async_retry_budget_counts_runs, .fini = teardown, .timeout = 120)
{
	const int n = 4;
	struct lutf_cluster_opts o = {0};
	struct lutf_cluster *c = NULL;
	char msg[300], cmd[1024];
	int dead = 0, other = 0;
	uint64_t until, retried, dl;

	start_two_nodes();
	snprintf(cmd, sizeof(cmd),
		 "%s --cluster '%s' deploy --tenant acme --app shop --so %s --export echo "
		 "--export crash --max-concurrency 1 >/dev/null",
		 LUTFCTL_BIN, nats.url, APP);
	cr_assert_eq(system(cmd), 0);
	until = td_now_ms() + 15000;
	while (!(served(&node[0]) && served(&node[1])) && td_now_ms() < until)
		td_sleep_ms(50);
	cr_assert(served(&node[0]) && served(&node[1]), "the app is not served on both nodes");
	td_sleep_ms(300); /* the node thread pushes the bound right after converging */
	for (int i = 0; i < 2; i++) {
		kill(node[i].pid, SIGTERM);
		cr_assert(td_wait_exit(node[i].pid, NULL, 10000), "lutfd %d did not stop", i);
		node[i].pid = 0;
	}
	o.url = nats.url;
	cr_assert_eq(lutf_cluster_open(&o, &c, msg, sizeof(msg)), 0, "%s", msg);
	for (int i = 0; i < n; i++) {
		char id[LUTF_CLUSTER_ID];
		bool dup;

		snprintf(id, sizeof(id), "boom-%d", i);
		cr_assert_eq(lutf_cluster_async_submit(c, "acme", "crash", "x", 1, id, &dup, msg,
						       sizeof(msg)),
			     0, "%s", msg);
	}
	for (int i = 0; i < 2; i++)
		cr_assert(td_start_again(&node[i]), "lutfd %d did not restart", i);
	wait_results(c, "boom", n, LUTF_STATUS_CRASHED, true, 60000, &dead, &other);
	retried = tn_metric(&node[0], "lutf_cluster_async_total{result=\"retried\"}") +
		  tn_metric(&node[1], "lutf_cluster_async_total{result=\"retried\"}");
	dl = tn_metric(&node[0], "lutf_cluster_async_total{result=\"dead_letter\"}") +
	     tn_metric(&node[1], "lutf_cluster_async_total{result=\"dead_letter\"}");
	cr_log_info("%d crashing calls of a bounded function: %d dead-lettered, %" PRIu64
		    " retries (want %d), %" PRIu64 " dead letters counted",
		    n, dead, retried, 4 * n, dl);
	lutf_cluster_close(c);
	cr_assert_eq(dead, n, "%d of %d calls dead-lettered as crashed (%d other)", dead, n, other);
	cr_assert_eq(dl, (uint64_t)n);
	cr_assert_eq(retried, (uint64_t)(4 * n),
		     "%" PRIu64 " retries: each call must run 5 times, bounced or not", retried);
}
