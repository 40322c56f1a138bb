/* SPDX-License-Identifier: MIT */
/*
 * The HTTP routes of durable async calls (docs/cluster.md): POST
 * /async/<tenant>/<fn> and GET /async/<id> on a real lutfd with a real
 * nats-server, keys required: a round trip, dedup by X-Lutf-Id, keys
 * refused as on /fn/, unknown and malformed ids, a callback delivered to a
 * loopback listener this test runs, and a lutfd without "cluster =" that
 * refuses clearly. Every wait is bounded.
 */
#define _GNU_SOURCE
/* GCC 12 sees td_start's folder names through 1 KiB buffers here: a false
 * format-truncation (they are bounded by mkdtemp's template). */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>

#include <sodium.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster_int.h" /* libnats: a result stored behind lutfd's back */
#include "nats_util.h"
#include "require.h"

#define APP TEST_APP_DIR "/libctl_app.so"
#define SLOW_APP TEST_APP_DIR "/libdaemon_app.so" /* whoami sleeps its input's ms */

static struct tn nats;
static struct td node;
static char http[64], key[128], okey[128];

static void teardown(void)
{
	td_stop(&node);
	tn_stop(&nats);
}

/* A response: code, headers and body (NUL-terminated). */
struct resp {
	int code;
	char head[4096];
	char *body;
	size_t body_len;
};

/* One request on a fresh connection (Connection: close); hdrs: extra header
 * lines, each ending in \r\n. Returns false when no answer came. */
static bool req(const char *method, const char *path, const char *hdrs, const char *body,
		struct resp *r)
{
	static char buf[1 << 16];
	char head[2048];
	size_t len = 0, blen = body ? strlen(body) : 0;
	ssize_t n;
	char *sep;
	int fd = td_connect_tcp(http);
	struct timeval tv = {10, 0};

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(head, sizeof(head),
		 "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n%s\r\n",
		 method, path, blen, hdrs ? hdrs : "");
	if (write(fd, head, strlen(head)) < 0 || (blen && write(fd, body, blen) < 0)) {
		close(fd);
		return false;
	}
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = 0;
	sep = strstr(buf, "\r\n\r\n");
	if (len < 12 || !sep)
		return false;
	r->code = atoi(buf + 9);
	snprintf(r->head, sizeof(r->head), "%.*s", (int)(sep - buf), buf);
	r->body = sep + 4;
	r->body_len = len - (size_t)(r->body - buf);
	return true;
}

/* The value of "name":"..." in a JSON body (ours: no escapes in these). */
static bool jstr(const char *body, const char *name, char *out, size_t cap)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", name);
	p = strstr(body, pat);
	if (!p)
		return false;
	p += strlen(pat);
	e = strchr(p, '"');
	if (!e || (size_t)(e - p) >= cap)
		return false;
	snprintf(out, cap, "%.*s", (int)(e - p), p);
	return true;
}

static void key_of(const char *tenant, char *out, size_t cap)
{
	char url[200];
	struct lutf_client *c = NULL;
	struct lutf_client_reply rep = {0};
	const struct lutf_client_field *f;

	snprintf(url, sizeof(url), "unix://%s/control.sock", node.run);
	cr_assert_eq(lutf_client_connect(url, &c), 0);
	cr_assert_eq(lutf_client_key_create(c, tenant, &rep), 0);
	cr_assert_eq(rep.status, LUTF_STATUS_OK, "%s", rep.error ? rep.error : "");
	cr_assert_geq(rep.n_records, 1);
	f = lutf_client_record_get(&rep.records[0], "key");
	cr_assert(f && f->str);
	snprintf(out, cap, "%s", f->str);
	lutf_client_reply_release(&rep);
	lutf_client_close(c);
}

/* nats-server, one lutfd with keys required and acme/echo + other/echo
 * deployed through the cluster registry. */
static void start(void)
{
	char extra[512], cmd[1024];
	uint64_t until;
	struct resp r;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 1));
	snprintf(extra, sizeof(extra),
		 "cluster = %s\ncluster_node = h0\nhttp_listen = 127.0.0.1:0\n"
		 "admin_listen = 127.0.0.1:0\nrequire_keys = on\n",
		 nats.url);
	cr_assert(td_start(&node, extra), "lutfd did not start (%s)", node.log);
	cr_assert(td_addr(&node, "http.addr", http, sizeof(http)));
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd),
			 "%s --cluster '%s' deploy --tenant %s --app shop --so %s --export echo "
			 ">/dev/null",
			 LUTFCTL_BIN, nats.url, i ? "other" : "acme", APP);
		cr_assert_eq(system(cmd), 0);
	}
	snprintf(cmd, sizeof(cmd),
		 "%s --cluster '%s' deploy --tenant acme --app slow --so %s --export whoami "
		 ">/dev/null",
		 LUTFCTL_BIN, nats.url, SLOW_APP);
	cr_assert_eq(system(cmd), 0);
	/* Served once a keyed sync call answers 200 (keys exist once tenants do). */
	until = td_now_ms() + 15000;
	key[0] = 0;
	while (td_now_ms() < until) {
		char h[256];

		if (!key[0]) {
			char url[200];
			struct lutf_client *c = NULL;
			struct lutf_client_reply rep = {0};

			snprintf(url, sizeof(url), "unix://%s/control.sock", node.run);
			if (!lutf_client_connect(url, &c) &&
			    !lutf_client_key_create(c, "acme", &rep) &&
			    rep.status == LUTF_STATUS_OK)
				snprintf(key, sizeof(key), "%s",
					 lutf_client_record_get(&rep.records[0], "key")->str);
			lutf_client_reply_release(&rep);
			lutf_client_close(c);
		}
		snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", key);
		if (key[0] && req("POST", "/fn/acme/echo", h, "x", &r) && r.code == 200 &&
		    req("POST", "/fn/acme/whoami", h, "0", &r) && r.code == 200)
			break;
		td_sleep_ms(100);
	}
	cr_assert_eq(r.code, 200, "acme/echo or acme/whoami is not served over HTTP: %d %s", r.code,
		     r.head);
	until = td_now_ms() + 15000;
	while (td_now_ms() < until) {
		char url[200];
		struct lutf_client *c = NULL;
		struct lutf_client_reply rep = {0};
		bool ok;

		snprintf(url, sizeof(url), "unix://%s/control.sock", node.run);
		ok = !lutf_client_connect(url, &c) && !lutf_client_key_create(c, "other", &rep) &&
		     rep.status == LUTF_STATUS_OK;
		if (ok)
			snprintf(okey, sizeof(okey), "%s",
				 lutf_client_record_get(&rep.records[0], "key")->str);
		lutf_client_reply_release(&rep);
		lutf_client_close(c);
		if (ok)
			break;
		td_sleep_ms(100);
	}
	cr_assert(okey[0], "no key for tenant other");
	(void)key_of;
}

/* GET /async/<id> until it is stored (bounded). */
static void wait_result(const char *id, const char *k, struct resp *r)
{
	char path[128], h[256];
	uint64_t until = td_now_ms() + 15000;

	snprintf(path, sizeof(path), "/async/%s", id);
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", k);
	while (td_now_ms() < until) {
		cr_assert(req("GET", path, h, NULL, r));
		if (r->code != 202)
			return;
		cr_assert(strstr(r->body, "\"state\":\"pending\""), "%s", r->body);
		td_sleep_ms(50);
	}
	cr_assert_fail("no result for %s in 15 s", id);
}

Test(http_async, round_trip_dedup_and_keys, .init = start, .fini = teardown, .timeout = 120)
{
	char h[512], id[80], id2[80], loc[160], out[64];
	unsigned char dec[64];
	size_t dlen = 0;
	struct resp r;

	/* A call: 202 with its id, in the body and in Location. */
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", key);
	cr_assert(req("POST", "/async/acme/echo", h, "hello async", &r));
	cr_assert_eq(r.code, 202, "%s\n%s", r.head, r.body);
	cr_assert(jstr(r.body, "id", id, sizeof(id)), "%s", r.body);
	cr_assert(strstr(r.body, "\"duplicate\":false"), "%s", r.body);
	snprintf(loc, sizeof(loc), "Location: /async/%s\r\n", id);
	cr_assert(strstr(r.head, loc) || strstr(strcat(r.head, "\r\n"), loc), "%s", r.head);
	cr_assert(strstr(r.head, "Content-Type: application/json"), "%s", r.head);

	/* Its result: 200, status ok, its own output. */
	wait_result(id, key, &r);
	cr_assert_eq(r.code, 200, "%s\n%s", r.head, r.body);
	cr_assert(jstr(r.body, "status", out, sizeof(out)) && !strcmp(out, "ok"), "%s", r.body);
	cr_assert(strstr(r.body, "\"dead_letter\":false"), "%s", r.body);
	cr_assert(jstr(r.body, "output_base64", out, sizeof(out)), "%s", r.body);
	cr_assert_eq(sodium_base642bin(dec, sizeof(dec), out, strlen(out), NULL, &dlen, NULL,
				       sodium_base64_VARIANT_ORIGINAL),
		     0);
	cr_assert_eq(dlen, strlen("hello async"));
	cr_assert_eq(memcmp(dec, "hello async", dlen), 0);

	/* Another tenant's key does not read it; no key neither. */
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", okey);
	snprintf(loc, sizeof(loc), "/async/%s", id);
	cr_assert(req("GET", loc, h, NULL, &r));
	cr_assert_eq(r.code, 403, "%s\n%s", r.head, r.body);
	cr_assert(req("GET", loc, NULL, NULL, &r));
	cr_assert_eq(r.code, 401, "%s\n%s", r.head, r.body);

	/* Dedup: the same X-Lutf-Id twice is one call. */
	snprintf(id2, sizeof(id2), "order-%d", (int)getpid());
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\nX-Lutf-Id: %s\r\n", key, id2);
	cr_assert(req("POST", "/async/acme/echo", h, "first", &r));
	cr_assert_eq(r.code, 202, "%s", r.body);
	cr_assert(jstr(r.body, "id", id, sizeof(id)) && !strcmp(id, id2), "%s", r.body);
	cr_assert(strstr(r.body, "\"duplicate\":false"), "%s", r.body);
	cr_assert(req("POST", "/async/acme/echo", h, "second", &r));
	cr_assert_eq(r.code, 202, "%s", r.body);
	cr_assert(strstr(r.body, "\"duplicate\":true"), "%s", r.body);
	wait_result(id2, key, &r);
	cr_assert_eq(r.code, 200);
	cr_assert(jstr(r.body, "output_base64", out, sizeof(out)), "%s", r.body);
	cr_assert_eq(sodium_base642bin(dec, sizeof(dec), out, strlen(out), NULL, &dlen, NULL,
				       sodium_base64_VARIANT_ORIGINAL),
		     0);
	cr_assert(dlen == 5 && !memcmp(dec, "first", 5), "the second submission ran");

	/* Keys exactly as on /fn/: none 401, another tenant's 403, nothing queued. */
	snprintf(h, sizeof(h), "X-Lutf-Id: nokey-%d\r\n", (int)getpid());
	cr_assert(req("POST", "/async/acme/echo", h, "x", &r));
	cr_assert_eq(r.code, 401, "%s", r.body);
	cr_assert(strstr(r.head, "WWW-Authenticate: Bearer"), "%s", r.head);
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\nX-Lutf-Id: wrongkey-%d\r\n", okey,
		 (int)getpid());
	cr_assert(req("POST", "/async/acme/echo", h, "x", &r));
	cr_assert_eq(r.code, 403, "%s", r.body);
	snprintf(h, sizeof(h), "Authorization: Bearer lutf_notakey\r\n");
	cr_assert(req("POST", "/async/acme/echo", h, "x", &r));
	cr_assert_eq(r.code, 403, "%s", r.body);
	td_sleep_ms(500); /* had either been queued, it would have run by now */
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", key);
	snprintf(loc, sizeof(loc), "/async/wrongkey-%d", (int)getpid());
	cr_assert(req("GET", loc, h, NULL, &r));
	cr_assert_eq(r.code, 404, "a refused call was queued: %s", r.body);

	/* Unknown and malformed ids, a bad caller id, a bad callback, bad names,
	 * a wrong method: typed errors. */
	cr_assert(req("GET", "/async/no-such-call", h, NULL, &r));
	cr_assert_eq(r.code, 404);
	cr_assert(strstr(r.body, "no call no-such-call"), "%s", r.body);
	cr_assert(req("GET", "/async/bad.id", h, NULL, &r));
	cr_assert_eq(r.code, 400, "%s", r.body);
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\nX-Lutf-Id: a.b\r\n", key);
	cr_assert(req("POST", "/async/acme/echo", h, "x", &r));
	cr_assert_eq(r.code, 400, "%s", r.body);
	cr_assert(strstr(r.body, "X-Lutf-Id"), "%s", r.body);
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\nX-Lutf-Callback: ftp://x/\r\n", key);
	cr_assert(req("POST", "/async/acme/echo", h, "x", &r));
	cr_assert_eq(r.code, 400, "%s", r.body);
	cr_assert(strstr(r.body, "http://"), "%s", r.body);
	cr_assert(req("POST", "/async/acme.x/echo", h, "x", &r));
	cr_assert_eq(r.code, 400, "%s", r.body);
	cr_assert(req("DELETE", "/async/acme/echo", h, NULL, &r));
	cr_assert_eq(r.code, 405, "%s", r.body);
	cr_assert(req("POST", "/async/acme/echo/more", h, NULL, &r));
	cr_assert_eq(r.code, 404, "%s", r.body);
}

/* A call still running: 202 pending (its owner's key only), then 200. */
Test(http_async, pending_then_done, .init = start, .fini = teardown, .timeout = 120)
{
	char h[512], id[80], path[128], out[64];
	struct resp r;
	uint64_t t0;

	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", key);
	cr_assert(req("POST", "/async/acme/whoami", h, "1500", &r)); /* sleeps 1.5 s */
	cr_assert_eq(r.code, 202, "%s", r.body);
	t0 = td_now_ms();
	cr_assert(jstr(r.body, "id", id, sizeof(id)), "%s", r.body);
	snprintf(path, sizeof(path), "/async/%s", id);
	cr_assert(req("GET", path, h, NULL, &r));
	cr_assert_lt(td_now_ms() - t0, 1000, "the host is too slow to see it pending");
	cr_assert_eq(r.code, 202, "%s\n%s", r.head, r.body);
	cr_assert(strstr(r.body, "\"state\":\"pending\""), "%s", r.body);
	cr_assert(jstr(r.body, "tenant", out, sizeof(out)) && !strcmp(out, "acme"), "%s", r.body);
	cr_assert(jstr(r.body, "function", out, sizeof(out)) && !strcmp(out, "whoami"), "%s",
		  r.body);
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", okey);
	cr_assert(req("GET", path, h, NULL, &r));
	cr_assert_eq(r.code, 403, "another tenant's key saw it: %s", r.body);
	wait_result(id, key, &r);
	cr_assert_eq(r.code, 200, "%s", r.body);
	cr_assert(jstr(r.body, "status", out, sizeof(out)) && !strcmp(out, "ok"), "%s", r.body);
	cr_assert_geq(td_now_ms() - t0, 1400, "done before the function slept");
}

/* A call whose result is already stored (a node died after storing it and
 * before its ack): the batched store sees the key taken, keeps the first
 * result, counts a duplicate and acks the call (the queue drains). */
Test(http_async, duplicate_run_keeps_first_result, .init = start, .fini = teardown, .timeout = 120)
{
	static const char first[] = "status=0\ndetail=0\ndead=0\ntries=1\ncontent_type=\n"
				    "error=\ntenant=acme\nfn=echo\n\nfirst";
	struct lutf_cluster_opts o = {.url = nats.url};
	struct lutf_cluster *c = NULL;
	kvStore *kv = NULL;
	jsStreamInfo *si = NULL;
	char id[64], h[512], msg[300], out[64];
	unsigned char dec[64];
	size_t dlen = 0;
	uint64_t until, dups0 = tn_metric(&node, "lutf_cluster_async_duplicates_total"), left = 1;
	struct resp r;

	cr_assert_eq(lutf_cluster_open(&o, &c, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(lutf_cluster_ready(c, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(js_KeyValue(&kv, lutf_cluster_js(c), LUTF_CLUSTER_RESULTS), NATS_OK);
	snprintf(id, sizeof(id), "dup-%d", (int)getpid());
	cr_assert_eq(kvStore_Put(NULL, kv, id, first, (int)strlen(first)), NATS_OK);

	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\nX-Lutf-Id: %s\r\n", key, id);
	cr_assert(req("POST", "/async/acme/echo", h, "second", &r));
	cr_assert_eq(r.code, 202, "%s", r.body);
	until = td_now_ms() + 15000;
	while (td_now_ms() < until &&
	       tn_metric(&node, "lutf_cluster_async_duplicates_total") < dups0 + 1)
		td_sleep_ms(50);
	cr_assert_eq(tn_metric(&node, "lutf_cluster_async_duplicates_total"), dups0 + 1,
		     "dups %" PRIu64 " -> %" PRIu64 ", done %" PRIu64, dups0,
		     tn_metric(&node, "lutf_cluster_async_duplicates_total"),
		     tn_metric(&node, "lutf_cluster_async_total{result=\"done\"}"));
	/* Acked: the work queue drains (a call left unacked would stay). */
	until = td_now_ms() + 5000;
	while (td_now_ms() < until && left) {
		if (js_GetStreamInfo(&si, lutf_cluster_js(c), LUTF_CLUSTER_ASYNC, NULL, NULL) ==
		    NATS_OK)
			left = si->State.Msgs;
		jsStreamInfo_Destroy(si);
		si = NULL;
		if (left)
			td_sleep_ms(50);
	}
	cr_assert_eq(left, 0, "the duplicate call was not acked");
	snprintf(h, sizeof(h), "/async/%s", id);
	{
		char a[256];

		snprintf(a, sizeof(a), "Authorization: Bearer %s\r\n", key);
		cr_assert(req("GET", h, a, NULL, &r));
	}
	cr_assert_eq(r.code, 200, "%s", r.body);
	cr_assert(jstr(r.body, "output_base64", out, sizeof(out)), "%s", r.body);
	cr_assert_eq(sodium_base642bin(dec, sizeof(dec), out, strlen(out), NULL, &dlen, NULL,
				       sodium_base64_VARIANT_ORIGINAL),
		     0);
	cr_assert(dlen == 5 && !memcmp(dec, "first", 5), "the first result was replaced");
	kvStore_Destroy(kv);
	lutf_cluster_close(c);
}

/* A loopback HTTP listener: the first request's head and body. */
static struct {
	int fd, port;
	char got[8192];
	size_t len;
	bool done;
	pthread_mutex_t mu;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *listener(void *arg)
{
	int c;
	char buf[8192];
	size_t len = 0;
	ssize_t n;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	struct pollfd p = {.fd = L.fd, .events = POLLIN};

	(void)arg;
	if (poll(&p, 1, 20000) != 1 || (c = accept(L.fd, NULL, NULL)) < 0)
		return NULL;
	{
		struct timeval tv = {5, 0};

		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	/* Read the head and the body its Content-Length announces. */
	while (len < sizeof(buf) - 1 && (n = read(c, buf + len, sizeof(buf) - 1 - len)) > 0) {
		const char *sep, *cl;

		len += (size_t)n;
		buf[len] = 0;
		sep = strstr(buf, "\r\n\r\n");
		cl = strcasestr(buf, "Content-Length: ");
		if (sep && cl && len >= (size_t)(sep + 4 - buf) + strtoul(cl + 16, NULL, 10))
			break;
	}
	(void)!write(c, ok, strlen(ok));
	close(c);
	pthread_mutex_lock(&L.mu);
	memcpy(L.got, buf, len);
	L.got[len] = 0;
	L.len = len;
	L.done = true;
	pthread_mutex_unlock(&L.mu);
	return NULL;
}

Test(http_async, callback_delivered, .init = start, .fini = teardown, .timeout = 120)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	char h[512], id[80], want[128];
	pthread_t th;
	struct resp r;
	uint64_t until;
	bool done = false;

	L.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(L.fd, 0);
	cr_assert_eq(bind(L.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(L.fd, 4), 0);
	cr_assert_eq(getsockname(L.fd, (struct sockaddr *)&a, &alen), 0);
	L.port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&th, NULL, listener, NULL), 0);

	snprintf(h, sizeof(h),
		 "Authorization: Bearer %s\r\nX-Lutf-Callback: http://127.0.0.1:%d/done?x=1\r\n",
		 key, L.port);
	cr_assert(req("POST", "/async/acme/echo", h, "call me back", &r));
	cr_assert_eq(r.code, 202, "%s", r.body);
	cr_assert(jstr(r.body, "id", id, sizeof(id)), "%s", r.body);
	until = td_now_ms() + 15000;
	while (!done && td_now_ms() < until) {
		td_sleep_ms(50);
		pthread_mutex_lock(&L.mu);
		done = L.done;
		pthread_mutex_unlock(&L.mu);
	}
	pthread_join(th, NULL);
	close(L.fd);
	cr_assert(done, "no callback within 15 s");
	cr_assert_eq(strncmp(L.got, "POST /done?x=1 HTTP/1.1\r\n", 25), 0, "%s", L.got);
	snprintf(want, sizeof(want), "X-Lutf-Id: %s\r\n", id);
	cr_assert(strstr(L.got, want), "%s", L.got);
	cr_assert(strstr(L.got, "X-Lutf-Status: ok\r\n"), "%s", L.got);
	cr_assert(strstr(L.got, "\r\n\r\ncall me back"), "%s", L.got);
	/* Counted once the POST was answered 2xx (after the listener wrote it). */
	until = td_now_ms() + 5000;
	while (tn_metric(&node, "lutf_cluster_async_callbacks_total{result=\"ok\"}") < 1 &&
	       td_now_ms() < until)
		td_sleep_ms(20);
	cr_assert_eq(tn_metric(&node, "lutf_cluster_async_callbacks_total{result=\"ok\"}"), 1);
	/* The result is stored too (the callback comes after it). */
	wait_result(id, key, &r);
	cr_assert_eq(r.code, 200);
}

/* A lutfd without "cluster =": a clear 501, on both routes. */
Test(http_async, needs_cluster, .fini = teardown, .timeout = 60)
{
	struct resp r;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	cr_assert(td_start(&node, "http_listen = 127.0.0.1:0\n"), "lutfd did not start");
	cr_assert(td_addr(&node, "http.addr", http, sizeof(http)));
	cr_assert(req("POST", "/async/acme/echo", NULL, "x", &r));
	cr_assert_eq(r.code, 501, "%s\n%s", r.head, r.body);
	cr_assert(strstr(r.body, "cluster mode"), "%s", r.body);
	cr_assert(req("GET", "/async/abc", NULL, NULL, &r));
	cr_assert_eq(r.code, 501, "%s", r.body);
	/* and /fn/ still answers as before (no function here: 404) */
	cr_assert(req("POST", "/fn/acme/echo", NULL, "x", &r));
	cr_assert_eq(r.code, 404, "%s", r.body);
}
