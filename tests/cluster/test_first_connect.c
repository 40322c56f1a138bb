/* SPDX-License-Identifier: MIT */
/*
 * A node whose first NATS connection is accepted but whose handshake fails
 * (a proxy or relay in front of a dead server: it closes at once, or answers
 * garbage) connects again on its own, with backoff, and converges once the
 * relay reaches a real nats-server: a function deployed in the registry
 * meanwhile is served, and lutfd never restarted. libnats 3.4 alone gives
 * up on such a connection for good (store.c). Every wait is bounded.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdarg.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "nats_util.h"
#include "require.h"

#define APP TEST_APP_DIR "/libctl_app.so"

/* The relay: BAD accepts each connection and, in turn, closes it at once,
 * answers an HTTP error and closes it, or says nothing for 3 s (past
 * libnats' 2 s handshake timeout): never a NATS INFO. FORWARD relays each
 * connection to the nats-server, a thread a connection. */
enum { BAD, FORWARD };

static struct {
	int lfd, port, target;
	atomic_int mode;
	atomic_bool stop;
	atomic_uint bad; /* connections refused the BAD way */
	pthread_t th;
} R = {.lfd = -1};

static struct tn nats;
static struct td node;

static void *pipe_main(void *arg)
{
	int fd[2] = {(int)(intptr_t)arg, -1};
	char hp[32];

	snprintf(hp, sizeof(hp), "127.0.0.1:%d", R.target);
	fd[1] = td_connect_tcp(hp);
	while (fd[1] >= 0 && !atomic_load(&R.stop)) {
		struct pollfd p[2] = {{.fd = fd[0], .events = POLLIN},
				      {.fd = fd[1], .events = POLLIN}};
		char buf[65536];
		bool done = false;

		if (poll(p, 2, 100) <= 0)
			continue;
		for (int k = 0; k < 2 && !done; k++) {
			ssize_t got;

			if (!p[k].revents)
				continue;
			got = read(fd[k], buf, sizeof(buf));
			done = got <= 0 || write(fd[!k], buf, (size_t)got) != got;
		}
		if (done)
			break;
	}
	close(fd[0]);
	if (fd[1] >= 0)
		close(fd[1]);
	return NULL;
}

static void *silent_main(void *arg)
{
	td_sleep_ms(3000);
	close((int)(intptr_t)arg);
	return NULL;
}

static void *relay_main(void *arg)
{
	static const char garbage[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";

	(void)arg;
	while (!atomic_load(&R.stop)) {
		struct pollfd p = {.fd = R.lfd, .events = POLLIN};
		pthread_t t;
		int c;

		if (poll(&p, 1, 50) <= 0 || (c = accept4(R.lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		if (atomic_load(&R.mode) == FORWARD &&
		    !pthread_create(&t, NULL, pipe_main, (void *)(intptr_t)c)) {
			pthread_detach(t);
			continue;
		}
		switch (atomic_fetch_add(&R.bad, 1) % 3) {
		case 1:
			(void)!write(c, garbage, sizeof(garbage) - 1);
			break;
		case 2:
			if (!pthread_create(&t, NULL, silent_main, (void *)(intptr_t)c)) {
				pthread_detach(t);
				continue;
			}
			break;
		}
		close(c);
	}
	return NULL;
}

static void relay_start(int target)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	R.target = target;
	R.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(R.lfd >= 0 && !bind(R.lfd, (struct sockaddr *)&a, sizeof(a)) &&
		      !listen(R.lfd, 16) && !getsockname(R.lfd, (struct sockaddr *)&a, &len),
		  "no relay socket");
	R.port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&R.th, NULL, relay_main, NULL), 0);
}

static void teardown(void)
{
	td_stop(&node);
	if (R.lfd >= 0) {
		atomic_store(&R.stop, true);
		pthread_join(R.th, NULL);
		close(R.lfd);
		R.lfd = -1;
	}
	tn_stop(&nats);
}

Test(cluster, first_connect_with_a_failed_handshake_is_retried, .fini = teardown, .timeout = 120)
{
	char extra[256], cmd[1024];
	uint64_t t0;
	pid_t pid;
	int st;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1), "nats-server did not start (logs in %s)", nats.dir);
	relay_start(nats.port[0]);

	/* lutfd starts with only the relay, which fails every handshake. */
	snprintf(extra, sizeof(extra), "cluster = nats://127.0.0.1:%d\ncluster_node = fc0\n",
		 R.port);
	cr_assert(td_start(&node, extra), "lutfd did not start (log %s)", node.log);
	pid = node.pid;
	/* The node dials again, with backoff (250, 500, 1000 ms, ...; the
	 * silent one takes 2 s more): libnats alone tries once and never again. */
	t0 = td_now_ms();
	while (atomic_load(&R.bad) < 4 && td_now_ms() - t0 < 20000)
		td_sleep_ms(20);
	cr_assert_geq(atomic_load(&R.bad), 4,
		      "the node dialled %u times in 20 s: it gave up on NATS (log %s)",
		      atomic_load(&R.bad), node.log);
	cr_log_info("4 failed handshakes after %llu ms", (unsigned long long)(td_now_ms() - t0));
	cr_assert(tn_log_has(&node, "connecting again"), "no redial in the log (%s)", node.log);
	cr_assert(!tn_log_has(&node, "in step with the registry"), "in step through a dead relay?");

	/* Meanwhile the registry gets a function (straight to the server). */
	snprintf(cmd, sizeof(cmd),
		 "%s --cluster nats://127.0.0.1:%d deploy --tenant acme --app shop --so %s "
		 "--export echo >/dev/null",
		 LUTFCTL_BIN, nats.port[0], APP);
	st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cluster deploy failed");
	cr_assert_neq(tn_call_hi(&node, "acme", "echo"), LUTF_STATUS_OK,
		      "served before it could know");

	/* The relay reaches the server now: the node converges on its own
	 * (within the backoff's 5 s cap, plus the deploy). */
	atomic_store(&R.mode, FORWARD);
	t0 = td_now_ms();
	while (tn_call_hi(&node, "acme", "echo") != LUTF_STATUS_OK && td_now_ms() - t0 < 30000)
		td_sleep_ms(50);
	cr_assert_eq(tn_call_hi(&node, "acme", "echo"), LUTF_STATUS_OK,
		     "the node never served acme/echo after the relay came up (log %s)", node.log);
	cr_log_info("served %llu ms after the relay came up",
		    (unsigned long long)(td_now_ms() - t0));
	cr_assert_eq(node.pid, pid);
	cr_assert_eq(kill(pid, 0), 0, "lutfd is gone");
	cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "lutfd exited (a restart is not the fix)");
	/* logged right after the deploy it applied: a call may answer first */
	t0 = td_now_ms();
	while (!tn_log_has(&node, "in step with the registry") && td_now_ms() - t0 < 5000)
		td_sleep_ms(20);
	cr_assert(tn_log_has(&node, "in step with the registry"), "log %s", node.log);
}

/* lutfd asked to stop while its cluster module redials (a dial held by the
 * silent relay included) exits cleanly and in bounded time: the redial
 * thread is joined, its connections destroyed. */
Test(cluster, node_stops_cleanly_while_redialing, .fini = teardown, .timeout = 60)
{
	char extra[256];
	uint64_t t0;
	int status = 0;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1), "nats-server did not start (logs in %s)", nats.dir);
	relay_start(nats.port[0]);
	snprintf(extra, sizeof(extra), "cluster = nats://127.0.0.1:%d\ncluster_node = fc1\n",
		 R.port);
	cr_assert(td_start(&node, extra), "lutfd did not start (log %s)", node.log);
	t0 = td_now_ms();
	while (atomic_load(&R.bad) < 3 && td_now_ms() - t0 < 20000)
		td_sleep_ms(5);
	cr_assert_geq(atomic_load(&R.bad), 3, "the node did not redial (log %s)", node.log);
	/* the third connection is the silent one: a dial in progress */
	t0 = td_now_ms();
	cr_assert_eq(kill(node.pid, SIGTERM), 0);
	cr_assert(td_wait_exit(node.pid, &status, 10000), "lutfd did not exit within 10 s (log %s)",
		  node.log);
	node.pid = 0;
	cr_log_info("lutfd exited %llu ms after SIGTERM", (unsigned long long)(td_now_ms() - t0));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "lutfd ended with status %#x (log %s)", status, node.log);
}
