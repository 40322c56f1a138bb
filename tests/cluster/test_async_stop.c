/* SPDX-License-Identifier: MIT */
/*
 * A node stopped mid-backlog (SIGSTOP for 1 s, well past the 250 ms pull
 * expiry, then SIGCONT) must not leave the calls it was handed waiting for
 * the 30 s ack wait: a message delivered after its Fetch gave up is still
 * run (the next pull takes it). One nats-server, two lutfds, 2,000 calls of
 * 10 ms; every result must be stored within 10 s of the SIGCONT (a dropped
 * call would take 30 s). Every wait is bounded.
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

static struct tn nats;
static struct td node[2];

static void teardown(void)
{
	for (int i = 0; i < 2; i++) {
		if (node[i].pid > 0)
			kill(node[i].pid, SIGCONT);
		td_stop(&node[i]);
	}
	tn_stop(&nats);
}

static bool served(struct td *d)
{
	char url[200];
	struct lutf_client *c = NULL;
	struct lutf_client_request req = {.input = "0", .input_len = 1, .timeout_ms = 2000};
	struct lutf_client_result res = {0};
	bool ok = false;

	snprintf(url, sizeof(url), "unix://%s/lutf.sock", d->run);
	if (!lutf_client_connect(url, &c) && !lutf_client_invoke(c, "acme", "nap", &req, &res))
		ok = res.status == LUTF_STATUS_OK;
	lutf_client_result_release(&res);
	lutf_client_close(c);
	return ok;
}

/* How many of the n calls "stop-<i>" have a stored result (marks done[]). */
static int results(struct lutf_cluster *c, bool *done, int n, int *bad)
{
	int got = 0;

	for (int i = 0; i < n; i++) {
		struct lutf_cluster_reply r;
		char id[LUTF_CLUSTER_ID], msg[200];
		bool dead;

		if (!done[i]) {
			snprintf(id, sizeof(id), "stop-%d", i);
			if (lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg)))
				continue;
			done[i] = true;
			*bad += dead || r.status != LUTF_STATUS_OK;
			free(r.output);
		}
		got++;
	}
	return got;
}

/* idle: node 1 stops while both nodes wait on a pull, and the calls come
 * in while it is stopped (some go to its outstanding pull). */
static void stopped(int n, bool idle)
{
	struct lutf_cluster_opts o = {0};
	struct lutf_cluster *c = NULL;
	char extra[256], msg[300], cmd[1024];
	uint64_t until, cont, at_cont, t0;
	bool *done = calloc((size_t)n, sizeof(bool));
	int got = 0, bad = 0;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(done);
	cr_assert(tn_start(&nats, 1));
	for (int i = 0; i < 2; i++) {
		snprintf(extra, sizeof(extra), "cluster = %s\ncluster_node = node%d\n", nats.url,
			 i);
		cr_assert(td_start(&node[i], extra), "lutfd %d did not start", i);
	}
	snprintf(cmd, sizeof(cmd),
		 "%s --cluster '%s' deploy --tenant acme --app naps --so %s --export nap=sleep_ms "
		 ">/dev/null",
		 LUTFCTL_BIN, nats.url, SLEEP_SO);
	cr_assert_eq(system(cmd), 0);
	until = td_now_ms() + 15000;
	while (!(served(&node[0]) && served(&node[1])) && td_now_ms() < until)
		td_sleep_ms(50);
	cr_assert(served(&node[0]) && served(&node[1]), "nap is not served on both nodes");
	o.url = nats.url;
	cr_assert_eq(lutf_cluster_open(&o, &c, msg, sizeof(msg)), 0, "%s", msg);
	if (idle) {
		td_sleep_ms(300);
		cr_assert_eq(kill(node[1].pid, SIGSTOP), 0);
	}
	t0 = td_now_ms();
	for (int i = 0; i < n; i++) {
		char id[LUTF_CLUSTER_ID];

		snprintf(id, sizeof(id), "stop-%d", i);
		cr_assert_eq(lutf_cluster_async_submit_nowait(c, "acme", "nap", "10", 2, id), 0);
	}
	cr_assert_eq(lutf_cluster_async_flush(c, 10000), 0, "submissions not acknowledged");
	if (!idle) {
		/* Node 1 stops with calls in hand and a pull outstanding. */
		td_sleep_ms(200);
		cr_assert_eq(kill(node[1].pid, SIGSTOP), 0);
		td_sleep_ms(1000);
	} else {
		td_sleep_ms(1000 - (td_now_ms() - t0 < 1000 ? td_now_ms() - t0 : 1000));
	}
	at_cont = (uint64_t)results(c, done, n, &bad);
	cr_assert_eq(kill(node[1].pid, SIGCONT), 0);
	cont = td_now_ms();
	until = cont + 25000; /* below the 30 s ack wait: a dropped call shows */
	while ((got = results(c, done, n, &bad)) < n && td_now_ms() < until)
		td_sleep_ms(100);
	cr_log_info("%d calls: %" PRIu64 " stored when node 1 went on (after 1 s stopped), all %d "
		    "%" PRIu64 " ms later (%" PRIu64 " ms from the first submission)",
		    n, at_cont, got, td_now_ms() - cont, td_now_ms() - t0);
	lutf_cluster_close(c);
	cr_assert_eq(bad, 0, "%d results not ok", bad);
	cr_assert_eq(got, n,
		     "%d calls have no result 25 s after SIGCONT: dropped until the ack wait",
		     n - got);
	cr_assert_lt(td_now_ms() - cont, 10000, "the calls waited %" PRIu64 " ms after SIGCONT",
		     td_now_ms() - cont);
	free(done);
}

Test(cluster, async_node_stopped_mid_backlog, .fini = teardown, .timeout = 120)
{
	stopped(2000, false);
}

Test(cluster, async_node_stopped_with_a_pull_outstanding, .fini = teardown, .timeout = 120)
{
	stopped(200, true);
}
