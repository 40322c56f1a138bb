/* SPDX-License-Identifier: MIT */
/*
 * Sync calls between nodes over NATS: a node subscribes to
 * lutf.inv.<tenant>.<fn> in queue group "lutf" for every function its lutfd
 * serves and hands what arrives, parsed, to lutfd (on_call: its loop runs it
 * and publishes the answer itself, no thread or socket between); a node
 * forwards a call it cannot run with a reply subject under its own inbox,
 * and the answer (typed status, detail, error and output in headers and
 * body) reaches lutfd through on_reply. Invariant: a forwarded call carries
 * the lutf-forwarded header and is never forwarded again; every message
 * received is answered at most once (lutf_cluster_call_answer frees it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/function.h>
#include <lutf/protocol.h>

#include "cluster_int.h"

#define SUBS_MAX 256

static struct {
	natsConnection *nc;
	natsSubscription *replies;
	char inbox[128]; /* "<inbox>." prefix of reply subjects */
	void (*on_reply)(struct lutf_cluster_reply *r);
	void (*on_call)(struct lutf_cluster_call *call);
	struct sub {
		char key[2 * LUTF_CLUSTER_NAME + 2];
		natsSubscription *s;
	} subs[SUBS_MAX];
	size_t nsubs;
} V;

/* Published once the inbox subscription exists (release; acquire in forward). */
static atomic_bool ready;

void lutf_cluster_call_answer(struct lutf_cluster_call *call, uint32_t status, uint32_t detail,
			      const char *err, const void *out, size_t len, const char *ct)
{
	natsMsg *req = call->msg, *m = NULL;
	const char *to = natsMsg_GetReply(req);
	char num[16];

	if (to && *to && natsMsg_Create(&m, to, NULL, out, (int)len) == NATS_OK) {
		snprintf(num, sizeof(num), "%" PRIu32, status);
		natsMsgHeader_Set(m, "Lutf-Status", num);
		snprintf(num, sizeof(num), "%" PRIu32, detail);
		natsMsgHeader_Set(m, "Lutf-Detail", num);
		if (err && *err)
			natsMsgHeader_Set(m, "Lutf-Error", err);
		if (ct && *ct)
			natsMsgHeader_Set(m, "Lutf-Content-Type", ct);
		/* Thread-safe; with SendAsap (store.c) written at once. */
		natsConnection_PublishMsg(V.nc, m);
		natsMsg_Destroy(m);
	}
	natsMsg_Destroy(req);
	free(call);
}

/* libnats delivery thread: parse, then hand the call to lutfd (on_call owns
 * it from there and answers it exactly once, from lutfd's loop or at once). */
static void on_call(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct lutf_cluster_call *call = calloc(1, sizeof(*call));
	const char *subj = natsMsg_GetSubject(m), *tmo = NULL, *by = NULL;

	(void)nc;
	(void)sub;
	(void)arg;
	if (!call) {
		natsMsg_Destroy(m); /* the caller's deadline answers it */
		return;
	}
	call->msg = m;
	if (sscanf(subj, LUTF_CLUSTER_INV_SUBJ ".%63[^.].%63[^.]", call->tenant, call->fn) != 2) {
		lutf_cluster_call_answer(call, LUTF_STATUS_MALFORMED, 0, "bad subject", NULL, 0,
					 NULL);
		return;
	}
	/* As the binary protocol's INVOKE reader: a longer one is a bad field. */
	if (natsMsgHeader_Get(m, "Lutf-Content-Type", &call->content_type) == NATS_OK &&
	    call->content_type && strlen(call->content_type) > LUTF_CONTENT_TYPE_MAX) {
		lutf_cluster_call_answer(call, LUTF_STATUS_MALFORMED, 0, "content type too long",
					 NULL, 0, NULL);
		return;
	}
	natsMsgHeader_Get(m, "Lutf-Key", &call->key);
	if (natsMsgHeader_Get(m, "Lutf-Timeout-Ms", &tmo) == NATS_OK && tmo)
		call->timeout_ms = (uint32_t)strtoul(tmo, NULL, 10);
	/* "node": a lutfd forwarded it, having checked the caller's key at its
	 * own ingress; otherwise a nats:// client sent it, and lutfd checks its
	 * key as on TCP. Anyone who may publish on lutf.inv.> can claim "node":
	 * NATS permissions are that boundary (docs/cluster.md). */
	call->by_node =
	    natsMsgHeader_Get(m, "Lutf-Forwarded", &by) == NATS_OK && by && !strcmp(by, "node");
	call->input = natsMsg_GetData(m);
	call->input_len = (size_t)natsMsg_GetDataLength(m);
	V.on_call(call);
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

	if (atomic_load_explicit(&ready, memory_order_relaxed) || !cfg->on_reply || !cfg->on_call)
		return 0;
	V.nc = lutf_cluster_conn(c);
	V.on_reply = cfg->on_reply;
	V.on_call = cfg->on_call;
	if (natsInbox_Create(&ib) != NATS_OK)
		return -ENOMEM;
	snprintf(prefix, sizeof(prefix), "%s", (const char *)ib);
	natsInbox_Destroy(ib);
	snprintf(V.inbox, sizeof(V.inbox), "%s.", prefix);
	snprintf(subj, sizeof(subj), "%s.*", prefix);
	if (natsConnection_Subscribe(&V.replies, V.nc, subj, on_answer, NULL) != NATS_OK)
		return -EIO;
	natsSubscription_SetPendingLimits(V.replies, -1, -1);
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
}
