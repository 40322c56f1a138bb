/* SPDX-License-Identifier: MIT */
/*
 * A NATS server that stops reading a node's connection (stuck, or a relay in
 * front of it that stalls) while the node answers calls that came over NATS:
 * the replies, published from lutfd's loop, fill the socket; a blocking
 * write there would hold the loop, and every local call of every tenant with
 * it. With the write deadline (store.c) the loop waits at most
 * LUTF_CLUSTER_WRITE_DEADLINE_MS, the connection is dropped and dialled
 * again, local calls keep being answered throughout, and once the server
 * reads again the node serves NATS calls as before, lutfd never restarted.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <nats/nats.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster.h" /* LUTF_CLUSTER_INV_SUBJ, LUTF_CLUSTER_WRITE_DEADLINE_MS */
#include "nats_util.h"
#include "require.h"

#define APP TEST_APP_DIR "/libctl_app.so"
#define BIG (512u << 10) /* a call's input, echoed back: under NATS' 1 MiB */

static struct tn nats;
static struct tn_relay rel = {.lfd = -1};
static struct td node;

static void teardown(void)
{
	td_stop(&node);
	if (rel.lfd > 0)
		tn_relay_stop(&rel);
	tn_stop(&nats);
}

/* A NATS request to acme/echo through the server itself (not the relay):
 * the node's status for it, or -1 when no answer came in ms. */
static int nats_echo(natsConnection *nc, int ms)
{
	natsMsg *m = NULL, *r = NULL;
	const char *st = NULL;
	int status = -1;

	cr_assert_eq(natsMsg_Create(&m, LUTF_CLUSTER_INV_SUBJ ".acme.echo", NULL, "hi", 2),
		     NATS_OK);
	if (natsConnection_RequestMsg(&r, nc, m, ms) == NATS_OK &&
	    natsMsgHeader_Get(r, "Lutf-Status", &st) == NATS_OK)
		status = atoi(st);
	natsMsg_Destroy(r);
	natsMsg_Destroy(m);
	return status;
}

Test(cluster, a_server_that_stops_reading_does_not_hold_the_loop, .fini = teardown,
     .timeout = 120)
{
	natsConnection *nc = NULL;
	char extra[256], cmd[1024];
	static char big[BIG];
	uint64_t t0, worst = 0;
	int calls = 0, st;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1), "nats-server did not start (logs in %s)", nats.dir);
	cr_assert(tn_relay_start(&rel, nats.port[0]) && tn_relay_small_rcvbuf(&rel));
	snprintf(extra, sizeof(extra), "cluster = nats://127.0.0.1:%d\ncluster_node = st0\n",
		 rel.port);
	cr_assert(td_start(&node, extra), "lutfd did not start (log %s)", node.log);
	snprintf(cmd, sizeof(cmd),
		 "%s --cluster %s deploy --tenant acme --app shop --so %s --export echo "
		 ">/dev/null",
		 LUTFCTL_BIN, nats.url, APP);
	st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cluster deploy failed");
	cr_assert_eq(natsConnection_ConnectTo(&nc, nats.url), NATS_OK);
	t0 = td_now_ms();
	while (nats_echo(nc, 1000) != LUTF_STATUS_OK && td_now_ms() - t0 < 20000)
		td_sleep_ms(50);
	cr_assert_eq(nats_echo(nc, 2000), LUTF_STATUS_OK, "the node never served over NATS (%s)",
		     node.log);
	st = (int)tn_call_hi(&node, "acme", "echo");
	cr_assert_eq(st, LUTF_STATUS_OK, "a local call: status %#x (log %s)", st, node.log);

	/* The relay stops reading the node; calls keep arriving over NATS and
	 * their replies (24 x 512 KiB) have nowhere to go. */
	atomic_store(&rel.stall, true);
	memset(big, 'b', sizeof(big));
	for (int i = 0; i < 24; i++) {
		natsMsg *m = NULL;

		cr_assert_eq(natsMsg_Create(&m, LUTF_CLUSTER_INV_SUBJ ".acme.echo",
					    "lutf.test.nowhere", big, (int)sizeof(big)),
			     NATS_OK);
		cr_assert_eq(natsConnection_PublishMsg(nc, m), NATS_OK);
		natsMsg_Destroy(m);
	}
	cr_assert_eq(natsConnection_Flush(nc), NATS_OK);

	/* Local calls (Unix socket) are answered the whole time: each within
	 * tn_call_hi's 3 s, though the loop may wait one write deadline. */
	t0 = td_now_ms();
	while (td_now_ms() - t0 < 8000) {
		uint64_t s0 = td_now_ms();
		uint32_t got = tn_call_hi(&node, "acme", "echo");

		cr_assert_eq(got, LUTF_STATUS_OK,
			     "a local call got %#x %llu ms into the stall: the loop is held by "
			     "a write to NATS (log %s)",
			     got, (unsigned long long)(td_now_ms() - t0), node.log);
		if (td_now_ms() - s0 > worst)
			worst = td_now_ms() - s0;
		calls++;
		td_sleep_ms(100);
	}
	cr_log_info("%d local calls during the stall, slowest %llu ms", calls,
		    (unsigned long long)worst);
	cr_assert_leq(worst, 2 * LUTF_CLUSTER_WRITE_DEADLINE_MS,
		      "a local call waited %llu ms", (unsigned long long)worst);

	/* The server reads again: the node is back on NATS by itself. */
	atomic_store(&rel.stall, false);
	t0 = td_now_ms();
	while (nats_echo(nc, 1000) != LUTF_STATUS_OK && td_now_ms() - t0 < 30000)
		td_sleep_ms(100);
	cr_assert_eq(nats_echo(nc, 2000), LUTF_STATUS_OK,
		     "the node did not come back on NATS after the stall (log %s)", node.log);
	cr_log_info("back on NATS %llu ms after the stall ended",
		    (unsigned long long)(td_now_ms() - t0));
	cr_assert_eq(waitpid(node.pid, NULL, WNOHANG), 0, "lutfd exited");
	natsConnection_Destroy(nc);
}
