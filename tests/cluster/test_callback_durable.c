/* SPDX-License-Identifier: MIT */
/*
 * Durable callbacks (issue #15; userspace/cluster/callback.c) with a real
 * nats-server and real lutfds: a receiver that is down for a while and then
 * comes up still gets its POST (retried with backoff, counted); a node
 * killed -9 right after acking a call (the test switch
 * LUTF_CLUSTER_TEST_DIE_AFTER_ACK=1) loses nothing: another node POSTs the
 * stored result. Every wait is bounded.
 */
#define _GNU_SOURCE
/* GCC 12 sees td_start's folder names through 1 KiB buffers here: a false
 * format-truncation (they are bounded by mkdtemp's template). */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#pragma GCC diagnostic ignored "-Wrestrict" /* the same folder names, seen as overlapping */
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

/* A callback receiver on one loopback port: answers 200 to every POST and
 * keeps the last one's X-Lutf-Id and body. */
static struct {
	int lfd, port;
	pthread_t th;
	atomic_bool stop;
	atomic_int posts;
	atomic_int code; /* the answer's status: 200 unless a test sets it */
	char id[LUTF_CLUSTER_ID], body[64], dead[4];
	pthread_mutex_t mu;
} rx = {.lfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static void *rx_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&rx.stop)) {
		struct pollfd p = {.fd = rx.lfd, .events = POLLIN};
		char buf[8192], ans[64], *hdr, *id, *dl;
		size_t got = 0, want = 0;
		int c;

		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept4(rx.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		for (;;) { /* headers, then Content-Length bytes (bounded by buf) */
			ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);

			if (r <= 0)
				break;
			got += (size_t)r;
			buf[got] = 0;
			hdr = strstr(buf, "\r\n\r\n");
			if (hdr && !want) {
				char *cl = strcasestr(buf, "Content-Length:");

				want =
				    (size_t)(hdr + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
			}
			if ((want && got >= want) || got == sizeof(buf) - 1)
				break;
		}
		buf[got] = 0;
		hdr = strstr(buf, "\r\n\r\n");
		id = strcasestr(buf, "X-Lutf-Id: ");
		dl = strcasestr(buf, "X-Lutf-Dead-Letter: ");
		if (hdr && id) {
			pthread_mutex_lock(&rx.mu);
			snprintf(rx.id, sizeof(rx.id), "%.*s", (int)strcspn(id + 11, "\r\n"),
				 id + 11);
			snprintf(rx.body, sizeof(rx.body), "%s", hdr + 4);
			snprintf(rx.dead, sizeof(rx.dead), "%.1s", dl ? dl + 20 : "");
			pthread_mutex_unlock(&rx.mu);
			atomic_fetch_add(&rx.posts, 1);
		}
		snprintf(ans, sizeof(ans), "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n",
			 atomic_load(&rx.code) ? atomic_load(&rx.code) : 200);
		(void)!write(c, ans, strlen(ans));
		close(c);
	}
	return NULL;
}

/* Listen on port (0: a free one). */
static bool rx_start(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((uint16_t)port)};
	socklen_t len = sizeof(a);
	int one = 1;

	rx.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(rx.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (rx.lfd < 0 || bind(rx.lfd, (struct sockaddr *)&a, sizeof(a)) || listen(rx.lfd, 16) ||
	    getsockname(rx.lfd, (struct sockaddr *)&a, &len))
		return false;
	rx.port = ntohs(a.sin_port);
	atomic_store(&rx.stop, false);
	return pthread_create(&rx.th, NULL, rx_main, NULL) == 0;
}

static void teardown(void)
{
	if (rx.lfd >= 0) {
		atomic_store(&rx.stop, true);
		pthread_join(rx.th, NULL);
		close(rx.lfd);
		rx.lfd = -1;
	}
	for (int i = 0; i < 2; i++)
		td_stop(&node[i]);
	tn_stop(&nats);
}

/* acme/echo answers OK (and its own input) at node d. */
static bool served(struct td *d)
{
	return tn_call_hi(d, "acme", "echo") == LUTF_STATUS_OK;
}

static void start_node(int i, const char *const *env)
{
	char extra[256];

	node[i].env = env;
	snprintf(extra, sizeof(extra),
		 "cluster = %s\ncluster_node = node%d\nadmin_listen = 127.0.0.1:0\n", nats.url, i);
	cr_assert(td_start(&node[i], extra), "lutfd %d did not start", i);
}

static void deploy_and_wait(struct td *d)
{
	char cmd[1024];
	uint64_t until = td_now_ms() + 15000;

	snprintf(cmd, sizeof(cmd),
		 "%s --cluster '%s' deploy --tenant acme --app shop --so %s --export echo "
		 ">/dev/null",
		 LUTFCTL_BIN, nats.url, APP);
	cr_assert_eq(system(cmd), 0);
	while (!served(d) && td_now_ms() < until)
		td_sleep_ms(50);
	cr_assert(served(d), "the app is not served");
}

/* The POST of id with body arrives within ms. */
static bool rx_got(const char *id, const char *body, int ms)
{
	uint64_t until = td_now_ms() + (uint64_t)ms;
	bool ok = false;

	while (!ok && td_now_ms() < until) {
		pthread_mutex_lock(&rx.mu);
		ok = atomic_load(&rx.posts) > 0 && !strcmp(rx.id, id) && !strcmp(rx.body, body);
		pthread_mutex_unlock(&rx.mu);
		if (!ok)
			td_sleep_ms(20);
	}
	return ok;
}

Test(cluster, callback_receiver_down_then_up, .fini = teardown, .timeout = 120)
{
	static const char *env[] = {"LUTF_CLUSTER_ACK_WAIT_MS=2000", NULL};
	struct lutf_cluster_opts o = {0};
	struct lutf_cluster *c = NULL;
	char msg[300], url[64], id[LUTF_CLUSTER_ID] = "cb-down-1";
	uint64_t until, retried = 0;
	int port = tn_free_port();
	bool dup;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(port > 0);
	cr_assert(tn_start(&nats, 1));
	start_node(0, env);
	deploy_and_wait(&node[0]);
	o.url = nats.url;
	cr_assert_eq(lutf_cluster_open(&o, &c, msg, sizeof(msg)), 0, "%s", msg);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/done", port);
	cr_assert_eq(lutf_cluster_async_submit_cb(c, "acme", "echo", "hello", 5, id, url, &dup, msg,
						  sizeof(msg)),
		     0, "%s", msg);
	/* Nobody listens: the POST is refused and tried again, with backoff. */
	until = td_now_ms() + 15000;
	while ((retried = tn_metric(
		    &node[0], "lutf_cluster_async_callbacks_total{result=\"retried\"}")) < 3 &&
	       td_now_ms() < until)
		td_sleep_ms(50);
	cr_assert_geq(retried, 3, "the callback was not retried 3 times within 15 s");
	cr_assert_eq(tn_metric(&node[0], "lutf_cluster_async_callbacks_total{result=\"ok\"}"), 0);
	cr_assert_eq(atomic_load(&rx.posts), 0);
	/* The receiver comes up (backoff now 2 s, then 4 s): it gets the POST. */
	cr_assert(rx_start(port), "cannot listen on port %d again", port);
	cr_assert(rx_got(id, "hello", 20000), "no callback within 20 s of the receiver coming up");
	until = td_now_ms() + 5000;
	while (tn_metric(&node[0], "lutf_cluster_async_callbacks_total{result=\"ok\"}") < 1 &&
	       td_now_ms() < until)
		td_sleep_ms(50);
	cr_assert_eq(tn_metric(&node[0], "lutf_cluster_async_callbacks_total{result=\"ok\"}"), 1);
	cr_assert_eq(
	    tn_metric(&node[0], "lutf_cluster_async_callbacks_total{result=\"dead_letter\"}"), 0);
	cr_log_info("callback retried %" PRIu64 "+ times while the receiver was down, then "
		    "delivered",
		    retried);
	lutf_cluster_close(c);
}

Test(cluster, callback_survives_node_killed_after_ack, .fini = teardown, .timeout = 120)
{
	static const char *die[] = {"LUTF_CLUSTER_ACK_WAIT_MS=2000",
				    "LUTF_CLUSTER_TEST_DIE_AFTER_ACK=1", NULL};
	static const char *env[] = {"LUTF_CLUSTER_ACK_WAIT_MS=2000", NULL};
	struct lutf_cluster_opts o = {0};
	struct lutf_cluster *c = NULL;
	struct lutf_cluster_reply r;
	char msg[300], url[64], id[LUTF_CLUSTER_ID] = "cb-kill-1";
	int port = tn_free_port(), status = 0;
	bool dup, dead;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(port > 0);
	cr_assert(tn_start(&nats, 1));
	/* Node 0 alone runs the call, acks it and dies (SIGKILL) before any
	 * POST can reach the receiver, which is not up yet. */
	start_node(0, die);
	deploy_and_wait(&node[0]);
	o.url = nats.url;
	cr_assert_eq(lutf_cluster_open(&o, &c, msg, sizeof(msg)), 0, "%s", msg);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/done", port);
	cr_assert_eq(lutf_cluster_async_submit_cb(c, "acme", "echo", "survives", 8, id, url, &dup,
						  msg, sizeof(msg)),
		     0, "%s", msg);
	cr_assert(td_wait_exit(node[0].pid, &status, 15000), "node 0 did not die after the ack");
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "node 0: status %#x", status);
	node[0].pid = 0;
	/* The call was acked: its result is stored, it is not in the queue. */
	cr_assert_eq(lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert(!dead && r.status == LUTF_STATUS_OK);
	free(r.output);
	{
		char t[LUTF_CLUSTER_NAME], f[LUTF_CLUSTER_NAME];

		cr_assert_eq(lutf_cluster_async_pending(c, id, t, f, msg, sizeof(msg)), -ENOENT,
			     "the call is still queued: it was not acked");
	}
	/* Another node, and the receiver, come up: the callback arrives. */
	cr_assert(rx_start(port), "cannot listen on port %d", port);
	start_node(1, env);
	cr_assert(rx_got(id, "survives", 30000), "the callback was lost with node 0");
	{
		uint64_t until = td_now_ms() + 5000;

		while (tn_metric(&node[1], "lutf_cluster_async_callbacks_total{result=\"ok\"}") <
			   1 &&
		       td_now_ms() < until)
			td_sleep_ms(50);
	}
	cr_assert_eq(tn_metric(&node[1], "lutf_cluster_async_callbacks_total{result=\"ok\"}"), 1,
		     "node 1 did not count the POST it made");
	cr_log_info("POSTs received: %d (at least once: more than 1 is allowed, counted)",
		    atomic_load(&rx.posts));
	lutf_cluster_close(c);
}

/* A call that crashes every time: retried 4 times (the budget counts runs),
 * then dead-lettered with a result marked dead; its callback (X-Lutf-Dead-
 * Letter: 1) meets a receiver answering 503 and, with
 * LUTF_CLUSTER_CALLBACK_TRIES=2, is tried twice and dead-lettered itself. */
Test(cluster, dead_call_and_dead_callback, .fini = teardown, .timeout = 120)
{
	static const char *env[] = {"LUTF_CLUSTER_ACK_WAIT_MS=2000",
				    "LUTF_CLUSTER_CALLBACK_TRIES=2", NULL};
	struct lutf_cluster_opts o = {0};
	struct lutf_cluster *c = NULL;
	struct lutf_cluster_reply r;
	char msg[300], url[64], id[LUTF_CLUSTER_ID] = "cb-dead-1", cmd[1024];
	uint64_t until, deadcb = 0;
	bool dup, dead = false;
	int err = -1;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1));
	start_node(0, env);
	deploy_and_wait(&node[0]);
	snprintf(cmd, sizeof(cmd),
		 "%s --cluster '%s' deploy --tenant acme --app boom --so %s --export crash "
		 ">/dev/null",
		 LUTFCTL_BIN, nats.url, APP);
	cr_assert_eq(system(cmd), 0);
	atomic_store(&rx.code, 503);
	cr_assert(rx_start(0));
	o.url = nats.url;
	cr_assert_eq(lutf_cluster_open(&o, &c, msg, sizeof(msg)), 0, "%s", msg);
	td_sleep_ms(500); /* served (or retried as unknown while it loads) */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/done", rx.port);
	cr_assert_eq(lutf_cluster_async_submit_cb(c, "acme", "crash", "x", 1, id, url, &dup, msg,
						  sizeof(msg)),
		     0, "%s", msg);
	until = td_now_ms() + 30000;
	while (td_now_ms() < until &&
	       (err = lutf_cluster_result_get(c, id, &r, &dead, msg, sizeof(msg))) == -ENOENT)
		td_sleep_ms(50);
	cr_assert_eq(err, 0, "no result: %s", msg);
	cr_assert(dead, "the crashing call was not dead-lettered");
	cr_assert_eq(r.status, LUTF_STATUS_CRASHED, "status %u", r.status);
	free(r.output);
	cr_assert_eq(tn_metric(&node[0], "lutf_cluster_async_total{result=\"retried\"}"), 4);
	cr_assert_eq(tn_metric(&node[0], "lutf_cluster_async_total{result=\"dead_letter\"}"), 1);
	until = td_now_ms() + 20000;
	while (td_now_ms() < until &&
	       (deadcb = tn_metric(
		    &node[0], "lutf_cluster_async_callbacks_total{result=\"dead_letter\"}")) < 1)
		td_sleep_ms(50);
	cr_assert_eq(deadcb, 1, "the refused callback was not dead-lettered");
	cr_assert_eq(atomic_load(&rx.posts), 2, "%d POSTs: want 2 tries", atomic_load(&rx.posts));
	cr_assert_str_eq(rx.dead, "1");
	cr_assert_eq(tn_metric(&node[0], "lutf_cluster_async_callbacks_total{result=\"retried\"}"),
		     1);
	cr_assert_eq(tn_metric(&node[0], "lutf_cluster_async_callbacks_total{result=\"ok\"}"), 0);
	lutf_cluster_close(c);
}
