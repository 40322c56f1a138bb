/* SPDX-License-Identifier: MIT */
/*
 * Sync calls between nodes over NATS: a node subscribes to
 * lutf.inv.<tenant>.<fn> in queue group "lutf" for every function its lutfd
 * serves, and runs what arrives on its own data socket (a bounded pool of
 * threads, never lutfd's loop); a node forwards a call it cannot run with a
 * reply subject under its own inbox, and the answer (typed status, detail,
 * error and output in headers and body) reaches lutfd through on_reply.
 * Invariant: a forwarded call carries the lutf-forwarded header and is never
 * forwarded again; every message received is answered at most once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster_int.h"

#define POOL 8	       /* calls a node runs for others at once */
#define QUEUE_MAX 4096 /* forwarded calls waiting for a pool thread; more: OVERLOADED */
#define SUBS_MAX 256

static struct {
	natsConnection *nc;
	natsSubscription *replies;
	char inbox[128]; /* "<inbox>." prefix of reply subjects */
	char sock[300];
	void (*on_reply)(struct lutf_cluster_reply *r);
	void (*log)(const char *fmt, ...);
	struct sub {
		char key[2 * LUTF_CLUSTER_NAME + 2];
		natsSubscription *s;
	} subs[SUBS_MAX];
	size_t nsubs;
	pthread_t pool[POOL];
	unsigned npool;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	natsMsg *q[QUEUE_MAX]; /* ring, guarded by mu */
	unsigned qh, qn;
	bool stop;
} V = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Published once the inbox subscription exists (release; acquire in forward). */
static atomic_bool ready;

static void reply_status(natsMsg *req, uint32_t status, uint32_t detail, const char *err,
			 const void *out, size_t len, const char *ct)
{
	const char *to = natsMsg_GetReply(req);
	natsMsg *m = NULL;
	char num[16];

	if (!to || !*to || natsMsg_Create(&m, to, NULL, out, (int)len) != NATS_OK)
		return;
	snprintf(num, sizeof(num), "%" PRIu32, status);
	natsMsgHeader_Set(m, "Lutf-Status", num);
	snprintf(num, sizeof(num), "%" PRIu32, detail);
	natsMsgHeader_Set(m, "Lutf-Detail", num);
	if (err && *err)
		natsMsgHeader_Set(m, "Lutf-Error", err);
	if (ct && *ct)
		natsMsgHeader_Set(m, "Lutf-Content-Type", ct);
	natsConnection_PublishMsg(V.nc, m);
	natsMsg_Destroy(m);
}

/* Run one forwarded call on this node's lutfd (a pool thread). */
static void serve(struct lutf_client **cl, natsMsg *m)
{
	const char *subj = natsMsg_GetSubject(m), *ct = NULL, *tmo = NULL, *key = NULL;
	const char *by = NULL;
	char tenant[LUTF_CLUSTER_NAME], fn[LUTF_CLUSTER_NAME];
	/* "node": a lutfd forwarded it, having checked the caller's key at its
	 * own ingress; "client": a nats:// client sent it, and lutfd checks its
	 * key here as on TCP (keys.c). Anyone who may publish on lutf.inv.> can
	 * claim "node": NATS permissions are that boundary (docs/cluster.md). */
	struct lutf_client_header h = {LUTF_CLUSTER_FORWARDED, "client"};
	struct lutf_client_request req = {0};
	struct lutf_client_result res = {0};
	int err;

	if (sscanf(subj, LUTF_CLUSTER_INV_SUBJ ".%63[^.].%63[^.]", tenant, fn) != 2) {
		reply_status(m, LUTF_STATUS_MALFORMED, 0, "bad subject", NULL, 0, NULL);
		return;
	}
	natsMsgHeader_Get(m, "Lutf-Content-Type", &ct);
	natsMsgHeader_Get(m, "Lutf-Timeout-Ms", &tmo);
	natsMsgHeader_Get(m, "Lutf-Key", &key);
	if (natsMsgHeader_Get(m, "Lutf-Forwarded", &by) == NATS_OK && by && !strcmp(by, "node"))
		h.value = "node";
	req.input = natsMsg_GetData(m);
	req.input_len = (size_t)natsMsg_GetDataLength(m);
	req.content_type = ct;
	req.headers = &h;
	req.n_headers = 1;
	req.timeout_ms = tmo ? (uint32_t)strtoul(tmo, NULL, 10) : 0;
	if (!*cl && lutf_client_connect(V.sock, cl)) {
		reply_status(m, LUTF_STATUS_SHUTTING_DOWN, 0, "the serving node's lutfd is down",
			     NULL, 0, NULL);
		return;
	}
	if (key && *key)
		lutf_client_set_key(*cl, key);
	err = lutf_client_invoke(*cl, tenant, fn, &req, &res);
	if (err) {
		lutf_client_close(*cl);
		*cl = NULL;
		reply_status(m,
			     err == -ETIMEDOUT ? LUTF_STATUS_DEADLINE : LUTF_STATUS_SHUTTING_DOWN,
			     0, "the serving node's lutfd did not answer", NULL, 0, NULL);
		return;
	}
	reply_status(m, res.status, res.detail, res.error, res.output, res.output_len,
		     res.content_type);
	lutf_client_result_release(&res);
}

static void *pool_main(void *arg)
{
	struct lutf_client *cl = NULL;

	(void)arg;
	for (;;) {
		natsMsg *m;

		pthread_mutex_lock(&V.mu);
		while (!V.qn && !V.stop)
			pthread_cond_wait(&V.cv, &V.mu);
		if (V.stop) {
			pthread_mutex_unlock(&V.mu);
			break;
		}
		m = V.q[V.qh];
		V.qh = (V.qh + 1) % QUEUE_MAX;
		V.qn--;
		pthread_mutex_unlock(&V.mu);
		serve(&cl, m);
		natsMsg_Destroy(m);
	}
	lutf_client_close(cl);
	return NULL;
}

/* libnats delivery thread: queue for the pool, never run here. */
static void on_call(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	bool full;

	(void)nc;
	(void)sub;
	(void)arg;
	pthread_mutex_lock(&V.mu);
	full = V.qn >= QUEUE_MAX || V.stop;
	if (!full) {
		V.q[(V.qh + V.qn) % QUEUE_MAX] = m;
		V.qn++;
		pthread_cond_signal(&V.cv);
	}
	pthread_mutex_unlock(&V.mu);
	if (full) {
		reply_status(m, LUTF_STATUS_OVERLOADED, 0, "the serving node has too many calls",
			     NULL, 0, NULL);
		natsMsg_Destroy(m);
	}
}

/* libnats delivery thread: an answer to one of this node's forwards. */
static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct lutf_cluster_reply r = {0};
	const char *subj = natsMsg_GetSubject(m), *v = NULL;
	int len = natsMsg_GetDataLength(m);

	(void)nc;
	(void)sub;
	(void)arg;
	r.cookie = strtoull(subj + strlen(V.inbox), NULL, 10);
	if (natsMsgHeader_Get(m, "Status", &v) == NATS_OK && v && !strcmp(v, "503")) {
		/* No responders: no node serves the function. */
		r.status = LUTF_STATUS_UNKNOWN_FUNCTION;
		snprintf(r.error, sizeof(r.error), "no node of the cluster serves it");
	} else if (natsMsgHeader_Get(m, "Lutf-Status", &v) == NATS_OK && v) {
		r.status = (uint32_t)strtoul(v, NULL, 10);
		if (r.status >= LUTF_STATUS__COUNT)
			r.status = LUTF_STATUS_CRASHED;
		if (natsMsgHeader_Get(m, "Lutf-Detail", &v) == NATS_OK && v)
			r.detail = (uint32_t)strtoul(v, NULL, 10);
		if (natsMsgHeader_Get(m, "Lutf-Error", &v) == NATS_OK && v)
			snprintf(r.error, sizeof(r.error), "%s", v);
		if (natsMsgHeader_Get(m, "Lutf-Content-Type", &v) == NATS_OK && v)
			snprintf(r.content_type, sizeof(r.content_type), "%s", v);
		if (len > 0 && (r.output = malloc((size_t)len + 1))) {
			memcpy(r.output, natsMsg_GetData(m), (size_t)len);
			((char *)r.output)[len] = 0;
			r.output_len = (size_t)len;
		}
	} else {
		r.status = LUTF_STATUS_CRASHED;
		snprintf(r.error, sizeof(r.error), "malformed answer from the cluster");
	}
	natsMsg_Destroy(m);
	V.on_reply(&r);
}

int lutf_cluster_forward(const char *tenant, const char *fn, const void *input, size_t len,
			 const char *content_type, uint32_t timeout_ms, const char *key,
			 uint64_t cookie)
{
	char subj[160], reply[160], num[16];
	natsMsg *m = NULL;
	natsStatus s;

	if (!atomic_load_explicit(&ready, memory_order_acquire) ||
	    natsConnection_Status(V.nc) != NATS_CONN_STATUS_CONNECTED)
		return -ENOTCONN;
	snprintf(subj, sizeof(subj), LUTF_CLUSTER_INV_SUBJ ".%s.%s", tenant, fn);
	snprintf(reply, sizeof(reply), "%s%" PRIu64, V.inbox, cookie);
	if (natsMsg_Create(&m, subj, reply, input, (int)len) != NATS_OK)
		return -ENOMEM;
	if (content_type && *content_type)
		natsMsgHeader_Set(m, "Lutf-Content-Type", content_type);
	if (timeout_ms) {
		snprintf(num, sizeof(num), "%" PRIu32, timeout_ms);
		natsMsgHeader_Set(m, "Lutf-Timeout-Ms", num);
	}
	if (key && *key)
		natsMsgHeader_Set(m, "Lutf-Key", key);
	natsMsgHeader_Set(m, "Lutf-Forwarded", "node");
	s = natsConnection_PublishMsg(V.nc, m);
	natsMsg_Destroy(m);
	return s == NATS_OK ? 0 : -ENOTCONN;
}

int lutf_cluster_inv_open(struct lutf_cluster *c, const struct lutf_cluster_node_cfg *cfg)
{
	char prefix[100], subj[140];
	natsInbox *ib = NULL;

	if (atomic_load_explicit(&ready, memory_order_relaxed) || !cfg->on_reply || !cfg->data_sock)
		return 0;
	V.nc = lutf_cluster_conn(c);
	V.on_reply = cfg->on_reply;
	V.log = (void (*)(const char *, ...))cfg->log;
	snprintf(V.sock, sizeof(V.sock), "unix://%s", cfg->data_sock);
	if (natsInbox_Create(&ib) != NATS_OK)
		return -ENOMEM;
	snprintf(prefix, sizeof(prefix), "%s", (const char *)ib);
	natsInbox_Destroy(ib);
	snprintf(V.inbox, sizeof(V.inbox), "%s.", prefix);
	snprintf(subj, sizeof(subj), "%s.*", prefix);
	if (natsConnection_Subscribe(&V.replies, V.nc, subj, on_answer, NULL) != NATS_OK)
		return -EIO;
	natsSubscription_SetPendingLimits(V.replies, -1, -1);
	V.stop = false;
	for (V.npool = 0; V.npool < POOL; V.npool++)
		if (pthread_create(&V.pool[V.npool], NULL, pool_main, NULL))
			break;
	atomic_store_explicit(&ready, true, memory_order_release);
	return 0;
}

void lutf_cluster_inv_sync(char (*keys)[2 * LUTF_CLUSTER_NAME + 2], size_t n)
{
	char subj[160];

	if (!atomic_load_explicit(&ready, memory_order_relaxed))
		return;
	for (size_t i = 0; i < V.nsubs;) { /* gone: unsubscribe */
		bool keep = false;

		for (size_t k = 0; k < n && !keep; k++)
			keep = !strcmp(V.subs[i].key, keys[k]);
		if (keep) {
			i++;
			continue;
		}
		natsSubscription_Unsubscribe(V.subs[i].s);
		natsSubscription_Destroy(V.subs[i].s);
		V.subs[i] = V.subs[--V.nsubs];
	}
	for (size_t k = 0; k < n && V.nsubs < SUBS_MAX; k++) { /* new: subscribe */
		bool have = false;
		char *dot;

		for (size_t i = 0; i < V.nsubs && !have; i++)
			have = !strcmp(V.subs[i].key, keys[k]);
		if (have)
			continue;
		snprintf(subj, sizeof(subj), LUTF_CLUSTER_INV_SUBJ ".%s", keys[k]);
		dot = strchr(subj + sizeof(LUTF_CLUSTER_INV_SUBJ), '.');
		if (!dot)
			continue;
		if (natsConnection_QueueSubscribe(&V.subs[V.nsubs].s, V.nc, subj, "lutf", on_call,
						  NULL) != NATS_OK)
			continue;
		natsSubscription_SetPendingLimits(V.subs[V.nsubs].s, -1, -1);
		snprintf(V.subs[V.nsubs].key, sizeof(V.subs[0].key), "%s", keys[k]);
		V.nsubs++;
	}
}

void lutf_cluster_inv_close(void)
{
	if (!atomic_exchange(&ready, false))
		return;
	for (size_t i = 0; i < V.nsubs; i++)
		natsSubscription_Destroy(V.subs[i].s);
	V.nsubs = 0;
	natsSubscription_Destroy(V.replies);
	V.replies = NULL;
	pthread_mutex_lock(&V.mu);
	V.stop = true;
	pthread_cond_broadcast(&V.cv);
	pthread_mutex_unlock(&V.mu);
	for (unsigned i = 0; i < V.npool; i++)
		pthread_join(V.pool[i], NULL);
	while (V.qn) {
		natsMsg_Destroy(V.q[V.qh]);
		V.qh = (V.qh + 1) % QUEUE_MAX;
		V.qn--;
	}
}
