/* SPDX-License-Identifier: MIT */
/*
 * nats:// endpoints of liblutf-client (docs/client.md): a real nats-server
 * and a real lutfd in cluster mode serving acme/echo and acme/whoami. The
 * synchronous handle gets OK, UNKNOWN_FUNCTION (no node serves it) and a
 * DEADLINE from lutfd; a fake node (this test's own subscriber) sees the
 * forwarder's headers (key, deadline, content type) and answers as a hostile
 * node could; with require_keys the serving node checks a nats:// call's key;
 * a batch of asynchronous calls is answered exactly once each; 96 calls at
 * once run on the serving lutfd's loop, and a flood of 5,000 is answered
 * OK or OVERLOADED once each;
 * malformed nats:// URLs fail with
 * -EINVAL and no server with -ECONNREFUSED; lutfctl invoke --endpoint nats://
 * invokes through the library; lutfctl result tells "not done yet" by its
 * own exit code. Every wait is bounded.
 */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <criterion/criterion.h>
#include <inttypes.h>
#include <sys/wait.h>

#include <nats/nats.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "nats_util.h"
#include "require.h"

#define APP TEST_APP_DIR "/libctl_app.so"
#define SLOW_APP TEST_APP_DIR "/libdaemon_app.so" /* whoami sleeps its input's ms */

static struct tn nats;
static struct td node;
static bool keys_on;		   /* start() with require_keys = on */
static const char *more_conf = ""; /* start(): more lutfd.conf lines */

static void teardown(void)
{
	td_stop(&node);
	tn_stop(&nats);
}

/* Run a shell command; its exit status (-1 when it did not exit). */
static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* nats-server and one lutfd in cluster mode; acme/echo and acme/whoami
 * deployed through the registry, then answered over nats://. */
static char acme_key[160]; /* start() with keys_on: a key of acme */

/* A new API key of tenant, made on the node's control socket: false while
 * the node has no such tenant (a cluster deploy reaches it a moment later). */
static bool key_of(const char *tenant, char *out, size_t cap)
{
	char url[200];
	struct lutf_client *c = NULL;
	struct lutf_client_reply rep = {0};
	const struct lutf_client_field *f;
	bool ok;

	snprintf(url, sizeof(url), "unix://%s/control.sock", node.run);
	cr_assert_eq(lutf_client_connect(url, &c), 0);
	cr_assert_eq(lutf_client_key_create(c, tenant, &rep), 0);
	ok = rep.status == LUTF_STATUS_OK && rep.n_records >= 1;
	f = ok ? lutf_client_record_get(&rep.records[0], "key") : NULL;
	ok = f && f->str;
	if (ok)
		snprintf(out, cap, "%s", f->str);
	lutf_client_reply_release(&rep);
	lutf_client_close(c);
	return ok;
}

static void start(void)
{
	char extra[512], cmd[1024];
	struct lutf_client *c = NULL;
	struct lutf_client_result res = {0};
	uint64_t until;
	int err = -1;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1));
	snprintf(extra, sizeof(extra),
		 "cluster = %s\ncluster_node = h0\nrequire_keys = %s\nadmin_listen = "
		 "127.0.0.1:0\n%s",
		 nats.url, keys_on ? "on" : "off", more_conf);
	cr_assert(td_start(&node, extra), "lutfd did not start (%s)", node.log);
	snprintf(cmd, sizeof(cmd),
		 "%s --cluster '%s' deploy --tenant acme --app shop --so %s --export echo "
		 ">/dev/null && %s --cluster '%s' deploy --tenant acme --app slow --so %s "
		 "--export whoami >/dev/null",
		 LUTFCTL_BIN, nats.url, APP, LUTFCTL_BIN, nats.url, SLOW_APP);
	cr_assert_eq(run(cmd), 0);
	cr_assert_eq(lutf_client_connect(nats.url, &c), 0);
	acme_key[0] = 0;
	until = td_now_ms() + 15000;
	while (td_now_ms() < until) {
		struct lutf_client_request rq = {.input = "0", .input_len = 1};

		if (keys_on && !acme_key[0]) {
			if (!key_of("acme", acme_key, sizeof(acme_key))) {
				td_sleep_ms(100);
				continue;
			}
			cr_assert_eq(lutf_client_set_key(c, acme_key), 0);
		}

		err = lutf_client_invoke(c, "acme", "echo", NULL, &res);
		if (!err && res.status == LUTF_STATUS_OK) {
			lutf_client_result_release(&res);
			err = lutf_client_invoke(c, "acme", "whoami", &rq, &res);
			if (!err && res.status == LUTF_STATUS_OK)
				break;
		}
		lutf_client_result_release(&res);
		td_sleep_ms(100);
	}
	cr_assert(!err && res.status == LUTF_STATUS_OK, "not served over nats:// in 15 s: %d %s",
		  err, lutf_status_str(res.status));
	lutf_client_result_release(&res);
	lutf_client_close(c);
}

Test(nats_client, sync_typed_answers, .init = start, .fini = teardown, .timeout = 120)
{
	struct lutf_client *c = NULL;
	struct lutf_client_result res = {0};
	struct lutf_client_reply rep = {0};
	struct lutf_client_request rq = {
	    .input = "hello nats", .input_len = 10, .content_type = "text/plain"};
	uint32_t st = 99;
	uint64_t t0;

	/* Two servers listed, the first with nobody listening: the second serves. */
	{
		char url[200];

		snprintf(url, sizeof(url), "nats://127.0.0.1:%d,127.0.0.1:%d", tn_free_port(),
			 nats.port[0]);
		cr_assert_eq(lutf_client_connect(url, &c), 0);
	}
	cr_assert_eq(lutf_client_ping(c, &st), 0);
	cr_assert_eq(st, LUTF_STATUS_OK);

	/* OK, with the output the function wrote. */
	cr_assert_eq(lutf_client_invoke(c, "acme", "echo", &rq, &res), 0);
	cr_assert_eq(res.status, LUTF_STATUS_OK, "%s %s", lutf_status_str(res.status),
		     res.error ? res.error : "");
	cr_assert_eq(res.output_len, 10);
	cr_assert_eq(memcmp(res.output, "hello nats", 10), 0);
	lutf_client_result_release(&res);

	/* No node serves it: UNKNOWN_FUNCTION, named. */
	cr_assert_eq(lutf_client_invoke(c, "acme", "nosuch", &rq, &res), 0);
	cr_assert_eq(res.status, LUTF_STATUS_UNKNOWN_FUNCTION, "%s", lutf_status_str(res.status));
	cr_assert(res.error && strstr(res.error, "acme/nosuch"), "%s", res.error);
	lutf_client_result_release(&res);

	/* The deadline is sent: lutfd answers DEADLINE, before the client's own wait. */
	rq = (struct lutf_client_request){.input = "3000", .input_len = 4, .timeout_ms = 300};
	t0 = td_now_ms();
	cr_assert_eq(lutf_client_invoke(c, "acme", "whoami", &rq, &res), 0);
	cr_assert_eq(res.status, LUTF_STATUS_DEADLINE, "%s", lutf_status_str(res.status));
	cr_assert_lt(td_now_ms() - t0, 2500, "the deadline was not applied");
	lutf_client_result_release(&res);

	/* The client's own wait (no grace): -ETIMEDOUT, and the handle goes on. */
	cr_assert_eq(lutf_client_set_timeout(c, 200, 0), 0);
	rq = (struct lutf_client_request){.input = "1500", .input_len = 4};
	cr_assert_eq(lutf_client_invoke(c, "acme", "whoami", &rq, &res), -ETIMEDOUT);
	cr_assert_eq(lutf_client_set_timeout(c, 30000, 500), 0);
	rq = (struct lutf_client_request){.input = "x", .input_len = 1};
	cr_assert_eq(lutf_client_invoke(c, "acme", "echo", &rq, &res), 0);
	cr_assert_eq(res.status, LUTF_STATUS_OK, "the late answer was taken for this call");
	cr_assert(res.output_len == 1 && ((char *)res.output)[0] == 'x');
	lutf_client_result_release(&res);

	/* Bad names and too large inputs: nothing sent. */
	cr_assert_eq(lutf_client_invoke(c, "acme", "a.b", &rq, &res), -EINVAL);
	cr_assert_eq(lutf_client_invoke(c, "acme", "*", &rq, &res), -EINVAL);
	cr_assert_eq(lutf_client_set_max_frame(c, 4096), 0);
	{
		static char big[8192];

		rq = (struct lutf_client_request){.input = big, .input_len = sizeof(big)};
		cr_assert_eq(lutf_client_invoke(c, "acme", "echo", &rq, &res), -EMSGSIZE);
	}

	/* Control calls need the control socket. */
	cr_assert_eq(lutf_client_list(c, NULL, &rep), -EOPNOTSUPP);
	lutf_client_reply_release(&rep);
	lutf_client_close(c);
}

/* One nats:// call of acme/echo with key (NULL: none): its status. */
static uint32_t call_with_key(const char *key)
{
	struct lutf_client *c = NULL;
	struct lutf_client_result res = {0};
	struct lutf_client_request rq = {.input = "k", .input_len = 1};
	uint32_t st;

	cr_assert_eq(lutf_client_connect(nats.url, &c), 0);
	cr_assert_eq(lutf_client_set_key(c, key), 0);
	cr_assert_eq(lutf_client_invoke(c, "acme", "echo", &rq, &res), 0);
	st = res.status;
	if (st == LUTF_STATUS_OK)
		cr_assert(res.output_len == 1 && ((char *)res.output)[0] == 'k');
	else
		cr_assert(res.error && *res.error, "a refusal without its cause");
	lutf_client_result_release(&res);
	lutf_client_close(c);
	return st;
}

static void start_keys(void)
{
	keys_on = true;
	start();
}

/*
 * With require_keys = on, the serving node checks a nats:// call's key as
 * TCP and HTTP do (lutfd's loop checks it as it takes the call from NATS,
 * forward.c): no key, a malformed one and an unknown one are
 * FORBIDDEN; the tenant's own is answered.
 */
Test(nats_client, serving_node_checks_keys, .init = start_keys, .fini = teardown, .timeout = 120)
{
	/* Well-formed, but no key of this node's. */
	const char *forged = "lutf_0123456789abcdef_"
			     "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

	cr_assert_eq(call_with_key(NULL), LUTF_STATUS_FORBIDDEN, "a call without a key answered");
	cr_assert_eq(call_with_key("lutf_notakey"), LUTF_STATUS_FORBIDDEN,
		     "a malformed key answered");
	cr_assert_eq(call_with_key(forged), LUTF_STATUS_FORBIDDEN, "an unknown key answered");
	cr_assert_eq(call_with_key(acme_key), LUTF_STATUS_OK, "the tenant's own key refused");
}

/* A fake node: this test subscribes to lutf.inv.acme.spy itself (libnats). */
struct spy {
	natsConnection *nc;
	natsSubscription *sub;
};

/* The next request at the spy; asserts it arrives within 5 s. */
static natsMsg *spy_next(struct spy *s)
{
	natsMsg *m = NULL;

	cr_assert_eq(natsSubscription_NextMsg(&m, s->sub, 5000), NATS_OK, "no request at the spy");
	return m;
}

static void spy_reply(struct spy *s, natsMsg *req, const char *status, const char *detail,
		      const char *err, const char *body)
{
	natsMsg *r = NULL;

	cr_assert_eq(
	    natsMsg_Create(&r, natsMsg_GetReply(req), NULL, body, body ? (int)strlen(body) : 0),
	    NATS_OK);
	if (status)
		natsMsgHeader_Set(r, "Lutf-Status", status);
	if (detail)
		natsMsgHeader_Set(r, "Lutf-Detail", detail);
	if (err)
		natsMsgHeader_Set(r, "Lutf-Error", err);
	cr_assert_eq(natsConnection_PublishMsg(s->nc, r), NATS_OK);
	natsConnection_Flush(s->nc);
	natsMsg_Destroy(r);
}

/* The thread that plays the node for the synchronous client below. */
static void *spy_main(void *arg)
{
	struct spy *s = arg;
	natsMsg *m;

	/* 1: a typed answer with detail, error and output. */
	m = spy_next(s);
	spy_reply(s, m, "7", "11", "crashed (signal 11)", "partial");
	natsMsg_Destroy(m);
	/* 2: no Lutf-Status: hostile or broken. */
	m = spy_next(s);
	spy_reply(s, m, NULL, NULL, NULL, "x");
	natsMsg_Destroy(m);
	/* 3: a status out of the table, then 4: one that is not a number. */
	m = spy_next(s);
	spy_reply(s, m, "4000000000", NULL, NULL, NULL);
	natsMsg_Destroy(m);
	m = spy_next(s);
	spy_reply(s, m, "0x1", NULL, NULL, NULL);
	natsMsg_Destroy(m);
	/* 5: a body over the client's max_frame. */
	m = spy_next(s);
	{
		static char big[8000];

		memset(big, 'b', sizeof(big) - 1);
		spy_reply(s, m, "0", NULL, NULL, big);
	}
	natsMsg_Destroy(m);
	return NULL;
}

/*
 * What goes on the wire, read by a fake node: the subject, the body and the
 * headers lutfd's forwarder uses (content type, deadline, key); and replies
 * as a hostile node could write them: decoded, or refused with -EPROTO /
 * -EMSGSIZE, never a crash, and the handle goes on.
 */
Test(nats_client, wire_headers_and_hostile_replies, .timeout = 60)
{
	struct spy s = {0};
	struct lutf_client *c = NULL;
	struct lutf_client_result res = {0};
	struct lutf_client_request rq = {.input = "payload",
					 .input_len = 7,
					 .content_type = "application/json",
					 .timeout_ms = 1234};
	const char *v = NULL;
	natsMsg *m;
	pthread_t th;

	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1));
	cr_assert_eq(natsConnection_ConnectTo(&s.nc, nats.url), NATS_OK);
	cr_assert_eq(natsConnection_SubscribeSync(&s.sub, s.nc, "lutf.inv.acme.spy"), NATS_OK);
	cr_assert_eq(natsConnection_Flush(s.nc), NATS_OK);
	cr_assert_eq(lutf_client_connect(nats.url, &c), 0);
	cr_assert_eq(lutf_client_set_key(c, "lutf_k123"), 0);

	/* The request as sent: answered with -ETIMEDOUT as nobody replies. */
	cr_assert_eq(lutf_client_set_timeout(c, 100, 100), 0);
	cr_assert_eq(lutf_client_invoke(c, "acme", "spy", &rq, &res), -ETIMEDOUT);
	m = spy_next(&s);
	cr_assert_str_eq(natsMsg_GetSubject(m), "lutf.inv.acme.spy");
	cr_assert(natsMsg_GetReply(m) && *natsMsg_GetReply(m), "no reply subject");
	cr_assert_eq(natsMsg_GetDataLength(m), 7);
	cr_assert_eq(memcmp(natsMsg_GetData(m), "payload", 7), 0);
	cr_assert_eq(natsMsgHeader_Get(m, "Lutf-Key", &v), NATS_OK);
	cr_assert_str_eq(v, "lutf_k123");
	cr_assert_eq(natsMsgHeader_Get(m, "Lutf-Timeout-Ms", &v), NATS_OK);
	cr_assert_str_eq(v, "1234");
	cr_assert_eq(natsMsgHeader_Get(m, "Lutf-Content-Type", &v), NATS_OK);
	cr_assert_str_eq(v, "application/json");
	natsMsg_Destroy(m);

	/* Replies a node writes, in order (spy_main). */
	cr_assert_eq(lutf_client_set_timeout(c, 5000, 500), 0);
	cr_assert_eq(lutf_client_set_max_frame(c, 4096), 0);
	rq.timeout_ms = 0;
	cr_assert_eq(pthread_create(&th, NULL, spy_main, &s), 0);
	cr_assert_eq(lutf_client_invoke(c, "acme", "spy", &rq, &res), 0);
	cr_assert_eq(res.status, LUTF_STATUS_CRASHED);
	cr_assert_eq(res.detail, 11);
	cr_assert_str_eq(res.error, "crashed (signal 11)");
	cr_assert(res.output_len == 7 && !memcmp(res.output, "partial", 7));
	lutf_client_result_release(&res);
	cr_assert_eq(lutf_client_invoke(c, "acme", "spy", &rq, &res), -EPROTO);
	cr_assert_null(res.output);
	cr_assert_eq(lutf_client_invoke(c, "acme", "spy", &rq, &res), -EPROTO);
	cr_assert_eq(lutf_client_invoke(c, "acme", "spy", &rq, &res), -EPROTO);
	cr_assert_eq(lutf_client_invoke(c, "acme", "spy", &rq, &res), -EMSGSIZE);
	cr_assert_null(res.output);
	pthread_join(th, NULL);
	lutf_client_close(c);
	natsSubscription_Destroy(s.sub);
	natsConnection_Destroy(s.nc);
	tn_stop(&nats);
}

/*
 * The asynchronous handle against a hostile node: a reply sent twice, a
 * reply without a status, replies on forged subjects of the handle's inbox.
 * Each call completes exactly once, with what its own reply said.
 */
Test(nats_client, async_hostile_node, .timeout = 60)
{
	struct spy s = {0};
	struct lutf_client_async *a = NULL;
	struct lutf_client_completion out[8];
	struct lutf_client_request rq = {.input = "q", .input_len = 1};
	const char *ep[1];
	struct lutf_client_opts o = {.endpoints = ep, .n_endpoints = 1, .queue_depth = 8};
	natsMsg *m[3];
	char forged[256], *dot;
	int got = 0, seen[3] = {0};
	uint64_t until;

	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1));
	ep[0] = nats.url;
	cr_assert_eq(natsConnection_ConnectTo(&s.nc, nats.url), NATS_OK);
	cr_assert_eq(natsConnection_SubscribeSync(&s.sub, s.nc, "lutf.inv.acme.spy"), NATS_OK);
	cr_assert_eq(natsConnection_Flush(s.nc), NATS_OK);
	cr_assert_eq(lutf_client_open(&o, &a), 0);
	for (uint64_t i = 0; i < 3; i++)
		cr_assert_eq(lutf_client_submit(a, "acme", "spy", &rq, i), 0);
	cr_assert_eq(lutf_client_flush(a), 3);
	for (int i = 0; i < 3; i++)
		m[i] = spy_next(&s);
	spy_reply(&s, m[0], "0", NULL, NULL, "a");
	spy_reply(&s, m[0], "0", NULL, NULL, "b");  /* twice */
	spy_reply(&s, m[1], NULL, NULL, NULL, "x"); /* no status */
	/* Forged: another id under the same inbox, junk, then the real one. */
	snprintf(forged, sizeof(forged), "%s", natsMsg_GetReply(m[2]));
	dot = strrchr(forged, '.');
	cr_assert(dot);
	static const char *tails[] = {"999", "abc", "", "18446744073709551615"};
	for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
		natsMsg *f = NULL;

		snprintf(dot + 1, sizeof(forged) - (size_t)(dot + 1 - forged), "%s", tails[t]);
		cr_assert_eq(natsMsg_Create(&f, forged, NULL, "f", 1), NATS_OK);
		natsMsgHeader_Set(f, "Lutf-Status", "0");
		cr_assert_eq(natsConnection_PublishMsg(s.nc, f), NATS_OK);
		natsMsg_Destroy(f);
	}
	spy_reply(&s, m[2], "12", NULL, "overloaded", NULL);
	for (int i = 0; i < 3; i++)
		natsMsg_Destroy(m[i]);
	until = td_now_ms() + 5000;
	while (got < 3 && td_now_ms() < until) {
		int n = lutf_client_reap(a, out, 8, 500);

		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++, got++) {
			uint64_t id = out[i].user_data;

			cr_assert_lt(id, 3);
			cr_assert_eq(seen[id]++, 0, "call %" PRIu64 " completed twice", id);
			if (id == 0) {
				cr_assert_eq(out[i].error, 0);
				cr_assert_eq(out[i].result.status, LUTF_STATUS_OK);
				cr_assert(out[i].result.output_len == 1 &&
					  ((char *)out[i].result.output)[0] == 'a');
			} else if (id == 1) {
				cr_assert_eq(out[i].error, -EPROTO);
			} else {
				cr_assert_eq(out[i].error, 0);
				cr_assert_eq(out[i].result.status, LUTF_STATUS_OVERLOADED);
				cr_assert_str_eq(out[i].result.error, "overloaded");
			}
			lutf_client_result_release(&out[i].result);
		}
	}
	cr_assert_eq(got, 3);
	cr_assert_eq(lutf_client_reap(a, out, 8, 300), 0, "a duplicate or forged reply completed");
	cr_assert_eq(lutf_client_outstanding(a), 0);
	lutf_client_async_close(a);
	natsSubscription_Destroy(s.sub);
	natsConnection_Destroy(s.nc);
	tn_stop(&nats);
}

/* The NATS server is killed -9 and restarted under an open handle: the
 * handle reconnects by itself and its next calls are delivered. */
Test(nats_client, survives_server_restart, .timeout = 60)
{
	struct spy s = {0};
	struct lutf_client *c = NULL;
	struct lutf_client_result res = {0};
	struct lutf_client_request rq = {.input = "again", .input_len = 5};
	natsMsg *m = NULL;
	uint64_t until;
	bool seen = false;

	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1));
	cr_assert_eq(lutf_client_connect(nats.url, &c), 0);
	tn_kill(&nats, 0);
	cr_assert(tn_start_one(&nats, 0));
	cr_assert_eq(natsConnection_ConnectTo(&s.nc, nats.url), NATS_OK);
	cr_assert_eq(natsConnection_SubscribeSync(&s.sub, s.nc, "lutf.inv.acme.spy"), NATS_OK);
	cr_assert_eq(natsConnection_Flush(s.nc), NATS_OK);
	cr_assert_eq(lutf_client_set_timeout(c, 300, 0), 0);
	/* No one answers: each call times out; one of them must reach the spy
	 * once libnats has reconnected (its reconnect wait is 2 s). */
	until = td_now_ms() + 15000;
	while (!seen && td_now_ms() < until) {
		cr_assert_eq(lutf_client_invoke(c, "acme", "spy", &rq, &res), -ETIMEDOUT);
		while (natsSubscription_NextMsg(&m, s.sub, 0) == NATS_OK) {
			seen = natsMsg_GetDataLength(m) == 5;
			natsMsg_Destroy(m);
		}
	}
	cr_assert(seen, "no call reached NATS in 15 s after the restart");
	lutf_client_close(c);
	natsSubscription_Destroy(s.sub);
	natsConnection_Destroy(s.nc);
	tn_stop(&nats);
}

#define BATCH 2000

Test(nats_client, async_batch_exactly_once, .init = start, .fini = teardown, .timeout = 120)
{
	const char *ep[] = {nats.url};
	struct lutf_client_opts o = {.endpoints = ep, .n_endpoints = 1, .queue_depth = 512};
	struct lutf_client_async *a = NULL;
	static struct lutf_client_completion out[256];
	static uint8_t seen[BATCH];
	struct lutf_client_async_stats st;
	size_t done = 0, next = 0, ok = 0, unknown = 0;
	uint64_t until = td_now_ms() + 60000;

	cr_assert_eq(lutf_client_open(&o, &a), 0);
	cr_assert_str_eq(lutf_client_backend(a), "nats");
	while (done < BATCH && td_now_ms() < until) {
		int n;

		/* Keep the queue full: every 10th call goes to a function nobody serves. */
		while (next < BATCH) {
			char in[32];
			struct lutf_client_request rq = {.input = in};
			int err;

			rq.input_len = (size_t)snprintf(in, sizeof(in), "call-%zu", next);
			err = lutf_client_submit(a, "acme", next % 10 == 9 ? "nosuch" : "echo", &rq,
						 next);
			if (err == -EAGAIN)
				break;
			cr_assert_eq(err, 0);
			next++;
		}
		n = lutf_client_reap(a, out, 256, 1000);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			uint64_t id = out[i].user_data;
			char want[32];

			cr_assert_lt(id, BATCH);
			cr_assert_eq(seen[id], 0, "call %" PRIu64 " completed twice", id);
			seen[id] = 1;
			cr_assert_eq(out[i].error, 0, "call %" PRIu64 ": %d", id, out[i].error);
			snprintf(want, sizeof(want), "call-%" PRIu64, id);
			if (id % 10 == 9) {
				cr_assert_eq(out[i].result.status, LUTF_STATUS_UNKNOWN_FUNCTION);
				unknown++;
			} else {
				cr_assert_eq(out[i].result.status, LUTF_STATUS_OK, "%s",
					     lutf_status_str(out[i].result.status));
				cr_assert_eq(out[i].result.output_len, strlen(want));
				cr_assert_eq(memcmp(out[i].result.output, want, strlen(want)), 0);
				ok++;
			}
			lutf_client_result_release(&out[i].result);
			done++;
		}
	}
	cr_assert_eq(done, BATCH, "%zu of %d calls completed", done, BATCH);
	cr_assert_eq(ok, BATCH - BATCH / 10);
	cr_assert_eq(unknown, BATCH / 10);
	cr_assert_eq(lutf_client_outstanding(a), 0);
	/* Nothing more comes: no call is answered twice. */
	cr_assert_eq(lutf_client_reap(a, out, 256, 300), 0);
	cr_assert_eq(lutf_client_async_stats(a, &st), 0);
	cr_assert_eq(st.submitted, BATCH);
	cr_assert_eq(st.completed, BATCH);

	/* A deadline shorter than the call: -ETIMEDOUT once, and the late reply is dropped. */
	{
		struct lutf_client_request rq = {.input = "800", .input_len = 3, .timeout_ms = 0};

		lutf_client_async_close(a);
		o.timeout_ms = 200;
		cr_assert_eq(lutf_client_open(&o, &a), 0);
		cr_assert_eq(lutf_client_submit(a, "acme", "whoami", &rq, 7), 0);
		cr_assert_eq(lutf_client_reap(a, out, 256, 5000), 1);
		cr_assert_eq(out[0].user_data, 7);
		cr_assert_eq(out[0].error, -ETIMEDOUT);
		cr_assert_eq(lutf_client_reap(a, out, 256, 1200), 0, "the late reply completed");
	}
	lutf_client_async_close(a);
}

static void start_small(void)
{
	more_conf = "max_queued = 2\n";
	start();
}

/* More slow calls at once than the tenant may queue: the node's OVERLOADED
 * comes back typed, the others run, each call completes once. */
Test(nats_client, overloaded_is_typed, .init = start_small, .fini = teardown, .timeout = 60)
{
	const char *ep[] = {nats.url};
	struct lutf_client_opts o = {.endpoints = ep, .n_endpoints = 1};
	struct lutf_client_async *a = NULL;
	struct lutf_client_completion out[32];
	struct lutf_client_request rq = {.input = "400", .input_len = 3};
	uint8_t seen[24] = {0};
	int done = 0, ok = 0, over = 0;
	uint64_t until = td_now_ms() + 20000;

	cr_assert_eq(lutf_client_open(&o, &a), 0);
	for (uint64_t i = 0; i < 24; i++)
		cr_assert_eq(lutf_client_submit(a, "acme", "whoami", &rq, i), 0);
	while (done < 24 && td_now_ms() < until) {
		int n = lutf_client_reap(a, out, 32, 1000);

		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			cr_assert_lt(out[i].user_data, 24);
			cr_assert_eq(seen[out[i].user_data]++, 0, "completed twice");
			cr_assert_eq(out[i].error, 0);
			if (out[i].result.status == LUTF_STATUS_OK)
				ok++;
			else if (out[i].result.status == LUTF_STATUS_OVERLOADED)
				over++;
			else
				cr_assert_fail("status %s", lutf_status_str(out[i].result.status));
			lutf_client_result_release(&out[i].result);
			done++;
		}
	}
	cr_assert_eq(done, 24);
	cr_assert_geq(ok, 1);
	cr_assert_geq(over, 1, "max_queued = 2 and 24 calls at once: none was OVERLOADED");
	lutf_client_async_close(a);
}

/*
 * The serving node runs calls sent over NATS on lutfd's loop (forward.c),
 * with no pool of threads between: 96 at once, a third of them sleeping
 * 200 ms (more than the 8 threads of the old path had), each answered once
 * with its own output, and /metrics counts them.
 */
Test(nats_client, many_calls_at_once, .init = start, .fini = teardown, .timeout = 60)
{
	enum { N = 96 };
	const char *ep[] = {nats.url};
	struct lutf_client_opts o = {.endpoints = ep, .n_endpoints = 1};
	struct lutf_client_async *a = NULL;
	struct lutf_client_completion out[32];
	static char in[N][16];
	uint8_t seen[N] = {0};
	uint64_t ran0 = tn_metric(&node, "lutf_cluster_served_total{outcome=\"ran\"}");
	uint64_t until = td_now_ms() + 20000;
	int done = 0;

	cr_assert_eq(lutf_client_open(&o, &a), 0);
	for (uint64_t i = 0; i < N; i++) {
		struct lutf_client_request rq = {.input = in[i]};

		if (i % 3 == 0) {
			rq.input = "200";
			rq.input_len = 3;
			cr_assert_eq(lutf_client_submit(a, "acme", "whoami", &rq, i), 0);
			continue;
		}
		rq.input_len = (size_t)snprintf(in[i], sizeof(in[i]), "call-%" PRIu64, i);
		cr_assert_eq(lutf_client_submit(a, "acme", "echo", &rq, i), 0);
	}
	while (done < N && td_now_ms() < until) {
		int n = lutf_client_reap(a, out, 32, 1000);

		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			uint64_t k = out[i].user_data;

			cr_assert_lt(k, N);
			cr_assert_eq(seen[k]++, 0, "call %" PRIu64 " completed twice", k);
			cr_assert_eq(out[i].error, 0, "call %" PRIu64 ": %d", k, out[i].error);
			cr_assert_eq(out[i].result.status, LUTF_STATUS_OK,
				     "call %" PRIu64 ": %s %s", k,
				     lutf_status_str(out[i].result.status),
				     out[i].result.error ? out[i].result.error : "");
			if (k % 3)
				cr_assert(out[i].result.output_len == strlen(in[k]) &&
					      !memcmp(out[i].result.output, in[k], strlen(in[k])),
					  "call %" PRIu64 " got another call's output", k);
			lutf_client_result_release(&out[i].result);
			done++;
		}
	}
	cr_assert_eq(done, N, "%d of %d calls answered", done, N);
	lutf_client_async_close(a);
	cr_assert_geq(tn_metric(&node, "lutf_cluster_served_total{outcome=\"ran\"}"), ran0 + N,
		      "lutf_cluster_served_total{outcome=\"ran\"} did not count them");
}

static void start_tiny(void)
{
	more_conf = "max_queued = 4\n";
	start();
}

/*
 * A flood: 5,000 requests published at once by a plain NATS client (no
 * client library bound) at a tenant that may hold 4 calls. Every request is
 * answered exactly once, OK or OVERLOADED (typed, with its cause), the
 * refusals are counted; a content type past the protocol's bound is
 * MALFORMED; and the node answers normally afterwards.
 */
Test(nats_client, flood_is_refused_typed, .init = start_tiny, .fini = teardown, .timeout = 90)
{
	enum { N = 5000 };
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsInbox *ib = NULL;
	static uint8_t seen[N];
	char subj[256];
	int got = 0, ok = 0, over = 0;
	uint64_t until, ref0 = tn_metric(&node, "lutf_cluster_served_total{outcome=\"refused\"}");
	uint64_t full0 = tn_metric(&node, "lutf_cluster_served_total{outcome=\"queue_full\"}");

	cr_assert_eq(natsConnection_ConnectTo(&nc, nats.url), NATS_OK);
	cr_assert_eq(natsInbox_Create(&ib), NATS_OK);
	snprintf(subj, sizeof(subj), "%s.*", (const char *)ib);
	cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, subj), NATS_OK);
	cr_assert_eq(natsSubscription_SetPendingLimits(sub, -1, -1), NATS_OK);
	for (int i = 0; i < N; i++) {
		natsMsg *m = NULL;
		char reply[256];

		snprintf(reply, sizeof(reply), "%s.%d", (const char *)ib, i);
		cr_assert_eq(natsMsg_Create(&m, "lutf.inv.acme.whoami", reply, "5", 1), NATS_OK);
		cr_assert_eq(natsConnection_PublishMsg(nc, m), NATS_OK);
		natsMsg_Destroy(m);
	}
	cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
	until = td_now_ms() + 60000;
	while (got < N && td_now_ms() < until) {
		natsMsg *m = NULL;
		const char *st = NULL, *err = NULL;
		int i;

		if (natsSubscription_NextMsg(&m, sub, 1000) != NATS_OK)
			continue;
		i = atoi(strrchr(natsMsg_GetSubject(m), '.') + 1);
		cr_assert(i >= 0 && i < N);
		cr_assert_eq(seen[i]++, 0, "request %d answered twice", i);
		cr_assert_eq(natsMsgHeader_Get(m, "Lutf-Status", &st), NATS_OK);
		if (atoi(st) == LUTF_STATUS_OK) {
			ok++;
		} else {
			cr_assert_eq(atoi(st), LUTF_STATUS_OVERLOADED, "request %d: status %s", i,
				     st);
			cr_assert(natsMsgHeader_Get(m, "Lutf-Error", &err) == NATS_OK && err &&
				      *err,
				  "an OVERLOADED without its cause");
			over++;
		}
		natsMsg_Destroy(m);
		got++;
	}
	cr_log_info("flood of %d: %d OK, %d OVERLOADED", N, ok, over);
	cr_assert_eq(got, N, "%d of %d requests answered", got, N);
	cr_assert_geq(ok, 1);
	cr_assert_geq(over, 1, "max_queued = 4 and %d calls at once: none was OVERLOADED", N);
	cr_assert_eq(tn_metric(&node, "lutf_cluster_served_total{outcome=\"refused\"}") - ref0 +
			 tn_metric(&node, "lutf_cluster_served_total{outcome=\"queue_full\"}") -
			 full0,
		     (uint64_t)over, "the refusals were not counted");
	/* A content type longer than the protocol's bound: MALFORMED, named. */
	{
		natsMsg *m = NULL, *r = NULL;
		char ct[200];
		const char *st = NULL, *err = NULL;

		memset(ct, 'c', sizeof(ct) - 1);
		ct[sizeof(ct) - 1] = 0;
		cr_assert_eq(natsMsg_Create(&m, "lutf.inv.acme.echo", NULL, "x", 1), NATS_OK);
		cr_assert_eq(natsMsgHeader_Set(m, "Lutf-Content-Type", ct), NATS_OK);
		cr_assert_eq(natsConnection_RequestMsg(&r, nc, m, 5000), NATS_OK);
		cr_assert_eq(natsMsgHeader_Get(r, "Lutf-Status", &st), NATS_OK);
		cr_assert_eq(atoi(st), LUTF_STATUS_MALFORMED, "status %s", st);
		cr_assert(natsMsgHeader_Get(r, "Lutf-Error", &err) == NATS_OK &&
			      strstr(err, "content type"),
			  "%s", err ? err : "(no error)");
		natsMsg_Destroy(r);
		natsMsg_Destroy(m);
	}
	/* Still serving. */
	cr_assert_eq(call_with_key(NULL), LUTF_STATUS_OK, "the node does not answer after a flood");
	natsSubscription_Destroy(sub);
	natsInbox_Destroy(ib);
	natsConnection_Destroy(nc);
}

Test(nats_client, bad_urls, .timeout = 30)
{
	static const char *bad[] = {
	    "nats://",		"nats://host",	      "nats://:4222",	 "nats://h:0",
	    "nats://h:65536",	"nats://h:42x",	      "nats://h:1,,h:2", "nats://h:1,",
	    "nats://h h:1",	"nats://h:1/path",    "nats://@h:1",	 "nats://[::1:4222",
	    "nats://h:1234567", "nats://h:1,nats://", "nats:/h:1",
	};
	const char *mix[] = {"nats://127.0.0.1:4222", "unix:///run/lutf/lutf.sock"};
	struct lutf_client_opts o = {.endpoints = mix, .n_endpoints = 2};
	struct lutf_client_async *a = NULL;
	struct lutf_client *c = NULL;
	char url[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = lutf_client_connect(bad[i], &c);

		cr_assert_eq(err, -EINVAL, "%s: %d", bad[i], err);
		cr_assert_null(c);
		o.endpoints = &bad[i];
		o.n_endpoints = 1;
		cr_assert_eq(lutf_client_open(&o, &a), -EINVAL, "%s", bad[i]);
	}
	/* nats:// stands alone in an asynchronous handle (its URL lists the servers). */
	o.endpoints = mix;
	o.n_endpoints = 2;
	cr_assert_eq(lutf_client_open(&o, &a), -EINVAL);
	/* Well formed, nobody listening: -ECONNREFUSED, quickly. */
	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", tn_free_port());
	cr_assert_eq(lutf_client_connect(url, &c), -ECONNREFUSED);
	o.endpoints = (const char *[]){url};
	o.n_endpoints = 1;
	cr_assert_eq(lutf_client_open(&o, &a), -ECONNREFUSED);
}

Test(nats_client, lutfctl_over_nats, .init = start, .fini = teardown, .timeout = 120)
{
	char cmd[1024], path[128], buf[256] = "", id[80] = "";
	FILE *fp;
	uint64_t until;
	int code = -1;

	/* invoke --endpoint / --socket nats://: the library's nats:// path, lutfctl's exit codes.
	 */
	snprintf(path, sizeof(path), "%s/out", node.dir);
	snprintf(cmd, sizeof(cmd), "%s invoke --endpoint '%s' acme/echo --data hi >%s", LUTFCTL_BIN,
		 nats.url, path);
	cr_assert_eq(run(cmd), 0);
	fp = fopen(path, "r");
	cr_assert(fp && fgets(buf, sizeof(buf), fp));
	fclose(fp);
	cr_assert_str_eq(buf, "hi");
	snprintf(cmd, sizeof(cmd), "%s --socket '%s' invoke acme/nosuch </dev/null 2>/dev/null",
		 LUTFCTL_BIN, nats.url);
	cr_assert_eq(run(cmd), 10 + LUTF_STATUS_UNKNOWN_FUNCTION);
	snprintf(cmd, sizeof(cmd), "%s --socket 'nats://nohost' invoke acme/echo </dev/null 2>%s",
		 LUTFCTL_BIN, path);
	cr_assert_eq(run(cmd), 2, "a malformed URL is a usage error");
	fp = fopen(path, "r");
	cr_assert(fp && fgets(buf, sizeof(buf), fp));
	fclose(fp);
	cr_assert(strstr(buf, "nats://HOST:PORT"), "%s", buf);

	/* result: "not done yet" is exit 4 (not a transport error), then the output. */
	snprintf(cmd, sizeof(cmd), "%s --cluster '%s' invoke --async acme/whoami --data 1500 >%s",
		 LUTFCTL_BIN, nats.url, path);
	cr_assert_eq(run(cmd), 0);
	fp = fopen(path, "r");
	cr_assert(fp && fgets(id, sizeof(id), fp));
	fclose(fp);
	id[strcspn(id, "\n")] = 0;
	snprintf(cmd, sizeof(cmd), "%s --cluster '%s' --json result %s >%s", LUTFCTL_BIN, nats.url,
		 id, path);
	cr_assert_eq(run(cmd), 4, "a pending call");
	fp = fopen(path, "r");
	cr_assert(fp && fgets(buf, sizeof(buf), fp));
	fclose(fp);
	cr_assert(strstr(buf, "\"state\":\"pending\""), "%s", buf);
	until = td_now_ms() + 15000;
	while (td_now_ms() < until && (code = run(cmd)) == 4)
		td_sleep_ms(100);
	cr_assert_eq(code, 0);
	/* An id nobody queued: exit 5, apart from pending and from transport errors. */
	snprintf(cmd, sizeof(cmd), "%s --cluster '%s' result no-such-call 2>/dev/null", LUTFCTL_BIN,
		 nats.url);
	cr_assert_eq(run(cmd), 5);
}
