/* SPDX-License-Identifier: MIT */
/*
 * Tenant API keys cluster-wide (issue #15 item 4): three nats-servers (R3)
 * and three real lutfds with require_keys = on. A key added through server
 * 0 opens calls served by every node (nats://, TCP, HTTP) within the bound,
 * a revocation closes them within it; a node cut off from NATS keeps the
 * keys it had (across a restart: the cache), then takes what changed while
 * it was cut off; hostile lutf_keys entries are refused, and a revoked id
 * never comes back. Every wait is bounded.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdarg.h>

#include <nats/nats.h>
#include <sodium.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster.h"
#include "cluster_keys.h"
/* GCC loses track of td.dir's size (64) once td_start is inlined here. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "nats_util.h"
#include "require.h"

#define APP TEST_APP_DIR "/libctl_app.so"
#define NONE 0xffffffffu

static struct tn nats;
static struct td node[3];
static struct tn_relay relay;

/* The bound (1 s); LUTF_CLUSTER_SLACK scales it on a loaded host. */
static uint64_t bound_ms(void)
{
	const char *s = getenv("LUTF_CLUSTER_SLACK");
	unsigned k = s ? (unsigned)atoi(s) : 1;

	return 1000u * (k ? k : 1);
}

static void teardown(void)
{
	tn_relay_stop(&relay);
	for (int i = 0; i < 3; i++)
		td_stop(&node[i]);
	tn_stop(&nats);
}

/* lutfctl --cluster url ARGS; stdout's first line into out (when not NULL). */
static int ctl(const char *url, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ctl(const char *url, char *out, size_t cap, const char *fmt, ...)
{
	char cmd[2048], line[512] = "";
	FILE *p;
	int n, st;
	va_list ap;

	n = snprintf(cmd, sizeof(cmd), "%s --cluster '%s' ", LUTFCTL_BIN, url);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(line, sizeof(line), p))
		line[0] = 0;
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	line[strcspn(line, "\n")] = 0;
	if (out)
		snprintf(out, cap, "%s", line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * lutfctl --cluster url key add <tenant>, its first line (the key) into out.
 * A NATS failure (exit 3: the freshly started servers' JetStream still
 * electing, or a 2 s request timeout on a loaded host) is retried twice, a
 * second apart, and each one logged with what lutfctl said; anything else
 * is returned at once. Returns lutfctl's exit code.
 */
static int add_key(const char *url, char *out, size_t cap, const char *tenant)
{
	char err_path[] = "/tmp/lutf-keys-ctl-XXXXXX", why[512];
	int fd = mkstemp(err_path), st = -1;

	cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
	close(fd);
	for (int i = 0; i < 3; i++) {
		FILE *fp;

		st = ctl(url, out, cap, "key add %s 2>%s", tenant, err_path);
		if (st != 3)
			break;
		why[0] = 0;
		fp = fopen(err_path, "r");
		if (fp) {
			if (!fgets(why, sizeof(why), fp))
				why[0] = 0;
			fclose(fp);
		}
		cr_log_info("key add %s: lutfctl exit 3 (%s): %s", tenant, why,
			    i < 2 ? "again in 1 s" : "giving up");
		if (i < 2)
			usleep(1000 * 1000);
	}
	unlink(err_path);
	return st;
}

/* A call of acme/echo with key (NULL: none) through url (unix://, tcp://,
 * nats://): its status, NONE when there was no answer. */
static uint32_t call_url(const char *url, const char *key)
{
	struct lutf_client *c = NULL;
	struct lutf_client_request req = {.input = "hi", .input_len = 2, .timeout_ms = 3000};
	struct lutf_client_result res = {0};
	uint32_t st = NONE;

	if (lutf_client_connect(url, &c))
		return st;
	if (key && lutf_client_set_key(c, key)) {
		lutf_client_close(c);
		return st;
	}
	if (!lutf_client_invoke(c, "acme", "echo", &req, &res)) {
		st = res.status;
		if (st == LUTF_STATUS_OK && (res.output_len != 2 || memcmp(res.output, "hi", 2)))
			st = 0xfffffffeu; /* a wrong answer */
		if (st == LUTF_STATUS_FORBIDDEN)
			cr_assert(res.error && *res.error, "a refusal without its cause");
	}
	lutf_client_result_release(&res);
	lutf_client_close(c);
	return st;
}

/* Over TCP at node d. */
static uint32_t call_tcp(struct td *d, const char *key)
{
	char addr[64], url[96];

	cr_assert(td_addr(d, "tcp.addr", addr, sizeof(addr)), "no tcp.addr in %s", d->run);
	snprintf(url, sizeof(url), "tcp://%s", addr);
	return call_url(url, key);
}

/* POST /fn/acme/echo over HTTP at node d: the HTTP status code, 0 on no answer. */
static int call_http(struct td *d, const char *key)
{
	char addr[64], req[512], buf[1024];
	size_t got = 0;
	ssize_t k;
	int fd, code = 0;

	cr_assert(td_addr(d, "http.addr", addr, sizeof(addr)), "no http.addr in %s", d->run);
	fd = td_connect_tcp(addr);
	if (fd < 0)
		return 0;
	snprintf(req, sizeof(req),
		 "POST /fn/acme/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s"
		 "Content-Length: 2\r\n\r\nhi",
		 key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "");
	if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		while (got < sizeof(buf) - 1 && poll(&p, 1, 3000) > 0 &&
		       (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
			got += (size_t)k;
	}
	close(fd);
	buf[got] = 0;
	if (sscanf(buf, "HTTP/1.1 %d", &code) != 1)
		code = 0;
	return code;
}

/* Wait (up to ms) until a TCP call at d with key answers want; ms taken or -1. */
static long wait_tcp(struct td *d, const char *key, uint32_t want, uint64_t ms)
{
	uint64_t t0 = td_now_ms();

	do {
		if (call_tcp(d, key) == want)
			return (long)(td_now_ms() - t0);
		td_sleep_ms(10);
	} while (td_now_ms() - t0 < ms);
	return -1;
}

/* The id of a key "lutf_<id>_<secret>". */
static void id_of(const char *key, char id[17])
{
	cr_assert_eq(strlen(key), 5 + 16 + 1 + 64, "not a key: '%s'", key);
	memcpy(id, key + 5, 16);
	id[16] = 0;
}

/* Kill lutfd d -9 (its folders and cache stay) for td_start_again. */
static void kill_node(struct td *d)
{
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
}

/*
 * A relay (nats_util.h's, with SO_REUSEADDR: its connections' TIME_WAITs do
 * not hold the port) on port; to stop it and start it again on the same port.
 * A node restarted while cut off must meet a refused port: libnats 3.4 gives
 * up for good on a first connect whose handshake fails (a relay that
 * accepts and then closes), see docs/cluster.md "Keys".
 */
static void relay_reopen(struct tn_relay *r, int port, int target)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((uint16_t)port)};
	int one = 1;

	memset(r, 0, sizeof(*r));
	for (int i = 0; i < TN_RELAY_PAIRS; i++)
		r->pair[i][0] = r->pair[i][1] = -1;
	r->target = target;
	r->port = port;
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(r->lfd, 0);
	setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* The old relay's closed connections may hold the port a moment. */
	for (int i = 0; i < 250 && bind(r->lfd, (struct sockaddr *)&a, sizeof(a)); i++)
		td_sleep_ms(20);
	cr_assert_eq(getsockname(r->lfd, (struct sockaddr *)&a, &(socklen_t){sizeof(a)}), 0);
	if (ntohs(a.sin_port) != port) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "ss -tanp | grep ':%d ' >&2", port);
		(void)!system(cmd);
	}
	cr_assert_eq(ntohs(a.sin_port), port, "relay port %d taken", port);
	cr_assert_eq(listen(r->lfd, 16), 0);
	atomic_store(&r->up, true);
	cr_assert_eq(pthread_create(&r->th, NULL, tn_relay_main, r), 0);
}

/* Three servers; node i talks to server i first (node 2: through the relay only). */
static void start_cluster(void)
{
	char extra[1024], url[64], url0[64];

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("nats", tn_have_server(), "nats-server is not installed (scripts/deps.sh)");
	cr_assert(tn_start(&nats, 3), "nats-servers did not start (logs in %s)", nats.dir);
	/* SO_REUSEADDR from the start: its port can be opened again (relay_reopen). */
	relay_reopen(&relay, tn_free_port(), nats.port[2]);
	for (int i = 0; i < 3; i++) {
		tn_url(&nats, i, url, sizeof(url));
		if (i == 2)
			snprintf(url, sizeof(url), "nats://127.0.0.1:%d", relay.port);
		snprintf(extra, sizeof(extra),
			 "cluster = %s%s%s\ncluster_node = node%d\nrequire_keys = on\n"
			 "listen_tcp = 127.0.0.1:0\nhttp_listen = 127.0.0.1:0\n",
			 url, i < 2 ? "," : "", i < 2 ? nats.url : "", i);
		cr_assert(td_start(&node[i], extra), "lutfd %d did not start", i);
	}
	for (int i = 0; i < 3; i++)
		cr_assert(tn_wait_log(&node[i], "in step with the registry", 15000),
			  "node %d never read the registry (log %s)", i, node[i].log);
	tn_url(&nats, 0, url0, sizeof(url0));
	cr_assert_eq(
	    ctl(url0, NULL, 0, "deploy --tenant acme --app shop --so %s --export echo", APP), 0);
	/* A first tenant loads BPF and isolation: a loose bound for the deploy. */
	for (int i = 0; i < 3; i++)
		cr_assert(wait_tcp(&node[i], NULL, LUTF_STATUS_FORBIDDEN, 15000) >= 0,
			  "node %d does not serve acme/echo (or serves it without a key)", i);
}

/* A raw entry in lutf_keys (hostile writers): put status. */
static natsStatus raw_put(const char *id, const void *val, size_t len)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	kvStore *kv = NULL;
	natsStatus s;

	s = natsConnection_ConnectTo(&nc, nats.url);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK)
		s = js_KeyValue(&kv, js, LUTF_CLUSTER_KEYS);
	if (s == NATS_OK)
		s = kvStore_Put(NULL, kv, id, val, (int)len);
	kvStore_Destroy(kv);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return s;
}

Test(cluster_keys, added_and_revoked_on_every_node, .fini = teardown, .timeout = 150)
{
	char url0[64], key[128], id[17], out[4096];
	uint32_t st;
	long t;

	start_cluster();
	tn_url(&nats, 0, url0, sizeof(url0));
	/* Not a tenant of the registry: refused, nothing written. */
	cr_assert_eq(ctl(url0, NULL, 0, "key add nosuch"), 10 + LUTF_STATUS_UNKNOWN_FUNCTION);

	cr_assert_eq(add_key(url0, key, sizeof(key), "acme"), 0);
	id_of(key, id);
	for (int i = 0; i < 3; i++) {
		t = wait_tcp(&node[i], key, LUTF_STATUS_OK, bound_ms());
		cr_assert(t >= 0,
			  "node %d: the cluster key opens no TCP call within %" PRIu64 " ms", i,
			  bound_ms());
		cr_log_info("key add: TCP call at node %d answered after %ld ms", i, t);
		cr_assert_eq(call_http(&node[i], key), 200, "node %d: HTTP with the key", i);
		cr_assert_eq(call_http(&node[i], NULL), 401, "node %d: HTTP without a key", i);
	}
	/* nats:// calls go to any node of the queue group: all must take the key. */
	for (int k = 0; k < 12; k++)
		cr_assert_eq(call_url(nats.url, key), LUTF_STATUS_OK, "nats:// call %d refused", k);
	st = call_url(nats.url, NULL);
	cr_assert_eq(st, LUTF_STATUS_FORBIDDEN, "a keyless nats:// call: status %u (%s)", st,
		     st < LUTF_STATUS__COUNT ? lutf_status_str(st) : "no answer");
	/* Listed, never with its secret. */
	cr_assert_eq(ctl(url0, out, sizeof(out), "--json key list acme"), 0);
	cr_assert(strstr(out, id) && strstr(out, "\"active\""), "key list: %s", out);
	cr_assert(!strstr(out, key + 22), "key list shows the secret");
	/* Revoked through server 0: refused everywhere within the bound. */
	cr_assert_eq(ctl(url0, NULL, 0, "key revoke acme %s", id), 0);
	for (int i = 0; i < 3; i++) {
		t = wait_tcp(&node[i], key, LUTF_STATUS_FORBIDDEN, bound_ms());
		cr_assert(t >= 0, "node %d still takes a revoked key after %" PRIu64 " ms", i,
			  bound_ms());
		cr_log_info("key revoke: refused at node %d after %ld ms", i, t);
		cr_assert_eq(call_http(&node[i], key), 403, "node %d: HTTP with a revoked key", i);
	}
	for (int k = 0; k < 6; k++)
		cr_assert_eq(call_url(nats.url, key), LUTF_STATUS_FORBIDDEN,
			     "nats:// call %d took a revoked key", k);
	cr_assert_eq(ctl(url0, NULL, 0, "key revoke acme %s", id), 0, "revoking twice: OK");
	cr_assert_eq(ctl(url0, NULL, 0, "key revoke other %s", id),
		     10 + LUTF_STATUS_UNKNOWN_FUNCTION, "another tenant's key revoked");
	cr_assert_eq(ctl(url0, out, sizeof(out), "--json key list acme"), 0);
	cr_assert(strstr(out, "\"revoked\""), "key list after revoke: %s", out);
}

Test(cluster_keys, cut_off_node_keeps_keys_and_converges, .fini = teardown, .timeout = 180)
{
	char url0[64], k1[128], k2[128], id1[17];
	int port;

	start_cluster();
	tn_url(&nats, 0, url0, sizeof(url0));
	cr_assert_eq(add_key(url0, k1, sizeof(k1), "acme"), 0);
	id_of(k1, id1);
	cr_assert(wait_tcp(&node[2], k1, LUTF_STATUS_OK, bound_ms()) >= 0, "node 2 lacks k1");

	/* Cut node 2 off: it keeps the keys it had. */
	tn_relay_cut(&relay);
	cr_assert_eq(call_tcp(&node[2], k1), LUTF_STATUS_OK, "a cut-off node lost its keys");
	cr_assert_eq(call_tcp(&node[2], NULL), LUTF_STATUS_FORBIDDEN);

	/* Changes while it is cut off: k1 revoked, k2 added. */
	cr_assert_eq(ctl(url0, NULL, 0, "key revoke acme %s", id1), 0);
	cr_assert_eq(add_key(url0, k2, sizeof(k2), "acme"), 0);
	cr_assert(wait_tcp(&node[1], k2, LUTF_STATUS_OK, bound_ms()) >= 0, "node 1 lacks k2");
	cr_assert(wait_tcp(&node[1], k1, LUTF_STATUS_FORBIDDEN, bound_ms()) >= 0,
		  "node 1 takes k1");
	cr_assert_eq(call_tcp(&node[2], k2), LUTF_STATUS_FORBIDDEN,
		     "a cut-off node knows a key added after the cut");

	/* Restarted while cut off (the relay's port refuses): it checks keys
	 * with its cache. */
	port = relay.port;
	tn_relay_stop(&relay);
	kill_node(&node[2]);
	cr_assert(td_start_again(&node[2]), "node 2 did not start again (%s)", node[2].log);
	cr_assert(wait_tcp(&node[2], k1, LUTF_STATUS_OK, 10000) >= 0,
		  "a cut-off node restarted without its cached cluster keys");
	cr_assert_eq(call_tcp(&node[2], k2), LUTF_STATUS_FORBIDDEN);

	/* Back: it takes both changes (reconnects back off: a loose bound). */
	relay_reopen(&relay, port, nats.port[2]);
	cr_assert(wait_tcp(&node[2], k1, LUTF_STATUS_FORBIDDEN, 15000) >= 0,
		  "node 2 missed the revocation made while it was cut off");
	cr_assert(wait_tcp(&node[2], k2, LUTF_STATUS_OK, 5000) >= 0,
		  "node 2 missed the key added while it was cut off");

	/* Cut off and restarted again: the revocation is in its cache. */
	tn_relay_stop(&relay);
	kill_node(&node[2]);
	cr_assert(td_start_again(&node[2]), "node 2 did not start again (%s)", node[2].log);
	cr_assert(wait_tcp(&node[2], k2, LUTF_STATUS_OK, 10000) >= 0, "k2 not cached");
	cr_assert_eq(call_tcp(&node[2], k1), LUTF_STATUS_FORBIDDEN,
		     "a revoked key came back from the cache");
}

Test(cluster_keys, hostile_entries_refused, .fini = teardown, .timeout = 150)
{
	char url0[64], key[128], id[17], val[LUTF_CLUSTER_KEY_VALUE + 64], lkey[128] = "", lid[17];
	struct lutf_cluster_key k = {0};
	static char huge[64 * 1024];
	uint8_t secret[32];
	int n;

	start_cluster();
	tn_url(&nats, 0, url0, sizeof(url0));
	cr_assert_eq(add_key(url0, key, sizeof(key), "acme"), 0);
	id_of(key, id);
	cr_assert(wait_tcp(&node[1], key, LUTF_STATUS_OK, bound_ms()) >= 0);
	cr_assert_eq(sodium_init() >= 0, true);

	/* A bad hash length, a bad key name, an unknown field, a NUL. */
	n = snprintf(val, sizeof(val),
		     "lutf_key=1\ntenant=acme\nhash=abcd\ncreated=1\nrevoked=0\n");
	cr_assert_eq(raw_put("00000000000000a1", val, (size_t)n), NATS_OK);
	cr_assert(tn_wait_log(&node[1], "entry 00000000000000a1 (revision", 5000),
		  "a short hash was not refused with a log line");
	cr_assert_eq(raw_put("NOT-AN-ID", "x", 1), NATS_OK);
	cr_assert(tn_wait_log(&node[1], "entry 'NOT-AN-ID' refused", 5000));
	cr_assert_eq(raw_put("00000000000000a2", "lutf_key=1\nowner=root\n", 22), NATS_OK);
	cr_assert(tn_wait_log(&node[1], "entry 00000000000000a2 (revision", 5000));
	cr_assert_eq(raw_put("00000000000000a3", "lutf_key=1\0tenant=acme", 22), NATS_OK);
	cr_assert(tn_wait_log(&node[1], "entry 00000000000000a3 (revision", 5000));

	/* A well-formed key of a tenant with no function: refused, logged. */
	randombytes_buf(secret, sizeof(secret));
	snprintf(k.tenant, sizeof(k.tenant), "ghost");
	crypto_generichash(k.hash, sizeof(k.hash), secret, sizeof(secret), NULL, 0);
	n = lutf_cluster_key_encode(&k, val, sizeof(val));
	cr_assert_eq(raw_put("00000000000000b1", val, (size_t)n), NATS_OK);
	cr_assert(tn_wait_log(&node[1], "entry 00000000000000b1 refused: tenant ghost", 5000));

	/* A huge value: the bucket refuses it (max value size) or the node does. */
	memset(huge, 'a', sizeof(huge));
	if (raw_put("00000000000000c1", huge, sizeof(huge)) == NATS_OK)
		cr_assert(tn_wait_log(&node[1], "entry 00000000000000c1 (revision", 5000));

	/* A revoked key put back as active (same hash): stays revoked. */
	cr_assert_eq(ctl(url0, NULL, 0, "key revoke acme %s", id), 0);
	cr_assert(wait_tcp(&node[1], key, LUTF_STATUS_FORBIDDEN, bound_ms()) >= 0);
	{
		natsConnection *nc = NULL;
		jsCtx *js = NULL;
		kvStore *kv = NULL;
		kvEntry *e = NULL;

		cr_assert_eq(natsConnection_ConnectTo(&nc, nats.url), NATS_OK);
		cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
		cr_assert_eq(js_KeyValue(&kv, js, LUTF_CLUSTER_KEYS), NATS_OK);
		cr_assert_eq(kvStore_Get(&e, kv, id), NATS_OK);
		{
			char msg[200];
			struct lutf_cluster_key r;

			cr_assert_eq(lutf_cluster_key_decode(id, kvEntry_Value(e),
							     (size_t)kvEntry_ValueLen(e), &r, msg,
							     sizeof(msg)),
				     0, "%s", msg);
			r.revoked = 0;
			n = lutf_cluster_key_encode(&r, val, sizeof(val));
		}
		kvEntry_Destroy(e);
		cr_assert_eq(kvStore_Put(NULL, kv, id, val, n), NATS_OK);
		kvStore_Destroy(kv);
		jsCtx_Destroy(js);
		natsConnection_Destroy(nc);
	}
	cr_assert(tn_wait_log(&node[1], "refused as active: it was revoked", 5000));
	cr_assert_eq(call_tcp(&node[1], key), LUTF_STATUS_FORBIDDEN, "a revoked key came back");

	/* A clash: a local key of node 1 and a cluster entry of its id. */
	{
		char url[200];
		struct lutf_client *c = NULL;
		struct lutf_client_reply rep = {0};
		const struct lutf_client_field *f;

		snprintf(url, sizeof(url), "unix://%s/control.sock", node[1].run);
		cr_assert_eq(lutf_client_connect(url, &c), 0);
		cr_assert_eq(lutf_client_key_create(c, "acme", &rep), 0);
		cr_assert_eq(rep.status, LUTF_STATUS_OK);
		f = rep.n_records ? lutf_client_record_get(&rep.records[0], "key") : NULL;
		cr_assert(f && f->str);
		snprintf(lkey, sizeof(lkey), "%s", f->str);
		lutf_client_reply_release(&rep);
		lutf_client_close(c);
	}
	id_of(lkey, lid);
	cr_assert_eq(call_tcp(&node[1], lkey), LUTF_STATUS_OK);
	memset(&k, 0, sizeof(k));
	snprintf(k.tenant, sizeof(k.tenant), "acme");
	randombytes_buf(k.hash, sizeof(k.hash)); /* another secret's hash */
	n = lutf_cluster_key_encode(&k, val, sizeof(val));
	cr_assert_eq(raw_put(lid, val, (size_t)n), NATS_OK);
	cr_assert(tn_wait_log(&node[1], "refused: a local key of tenant acme has this id", 5000));
	cr_assert_eq(call_tcp(&node[1], lkey), LUTF_STATUS_OK, "the local key lost a clash");
	/* The cluster revokes that id: the local key goes too. */
	k.revoked = 2;
	n = lutf_cluster_key_encode(&k, val, sizeof(val));
	cr_assert_eq(raw_put(lid, val, (size_t)n), NATS_OK);
	cr_assert(wait_tcp(&node[1], lkey, LUTF_STATUS_FORBIDDEN, bound_ms()) >= 0,
		  "a cluster revocation did not reach the local key of the same id");

	/* Nothing crashed: every node still answers with a good key. */
	cr_assert_eq(add_key(url0, key, sizeof(key), "acme"), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert(wait_tcp(&node[i], key, LUTF_STATUS_OK, bound_ms()) >= 0,
			  "node %d does not take a good key after the hostile entries", i);
		cr_assert_eq(kill(node[i].pid, 0), 0, "node %d died", i);
	}
}
