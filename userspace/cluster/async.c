/* SPDX-License-Identifier: MIT */
/*
 * Durable async calls: a JetStream work-queue stream of calls (file
 * storage, dedup by Nats-Msg-Id), results by id in a KV bucket with a TTL,
 * dead letters in their own stream. Each node pulls from one shared durable
 * consumer and runs calls on its own lutfd (data socket; lutfd forwards what
 * it does not serve). Invariant: a call is acked only after its result (or
 * its dead letter and result) is stored, so a node dying mid-call leaves it
 * to be delivered again: at least once; a result already stored when
 * another arrives is counted as a duplicate and kept.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster_int.h"

#define SUBJ "lutf.async"
#define DLQ_SUBJ "lutf.dlq"
#define DURABLE "lutf_workers"
#define WORKERS 8	  /* calls a node runs at once from the queue */
#define ACK_WAIT_MS 30000 /* a call not acked by then is delivered again */

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	return n && n < LUTF_CLUSTER_ID &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int stream(jsCtx *js, const char *name, const char *subj, bool work, int replicas, char *msg,
		  size_t cap)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;
	char pat[64];
	const char *subjs[1] = {pat};
	natsStatus s = js_GetStreamInfo(&si, js, name, NULL, &je);

	snprintf(pat, sizeof(pat), "%s.>", subj);
	if (s == NATS_NOT_FOUND) {
		jsStreamConfig_Init(&sc);
		sc.Name = name;
		sc.Subjects = subjs;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = replicas;
		sc.Retention = work ? js_WorkQueuePolicy : js_LimitsPolicy;
		sc.Duplicates = 120ll * 1000000000ll; /* the idempotency window: 2 min */
		s = js_AddStream(&si, js, &sc, NULL, &je);
		if (s != NATS_OK)
			s = js_GetStreamInfo(&si, js, name, NULL, &je);
	}
	jsStreamInfo_Destroy(si);
	return s == NATS_OK ? 0 : lutf_cluster_nerr(s, msg, cap, name);
}

int lutf_cluster_async_ready(struct lutf_cluster *c, char *msg, size_t cap)
{
	kvStore **kv = lutf_cluster_results(c);
	jsCtx *js = lutf_cluster_js(c);
	kvConfig kc;
	natsStatus s;
	int err = lutf_cluster_ready(c, msg, cap);

	if (err || *kv)
		return err;
	if ((err =
		 stream(js, LUTF_CLUSTER_ASYNC, SUBJ, true, lutf_cluster_replicas(c), msg, cap)) ||
	    (err =
		 stream(js, LUTF_CLUSTER_DLQ, DLQ_SUBJ, false, lutf_cluster_replicas(c), msg, cap)))
		return err;
	s = js_KeyValue(kv, js, LUTF_CLUSTER_RESULTS);
	if (s == NATS_NOT_FOUND) {
		kvConfig_Init(&kc);
		kc.Bucket = LUTF_CLUSTER_RESULTS;
		kc.History = 1;
		kc.TTL = (int64_t)LUTF_CLUSTER_RESULT_TTL_MS * 1000000;
		kc.StorageType = js_FileStorage;
		kc.Replicas = lutf_cluster_replicas(c);
		s = js_CreateKeyValue(kv, js, &kc);
		if (s != NATS_OK)
			s = js_KeyValue(kv, js, LUTF_CLUSTER_RESULTS);
	}
	return s == NATS_OK ? 0 : lutf_cluster_nerr(s, msg, cap, LUTF_CLUSTER_RESULTS);
}

int lutf_cluster_async_submit(struct lutf_cluster *c, const char *tenant, const char *fn,
			      const void *input, size_t len, char *id, bool *dup, char *msg,
			      size_t cap)
{
	char subj[160];
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	jsErrCode je = 0;
	natsStatus s;
	int err = lutf_cluster_async_ready(c, msg, cap);

	*dup = false;
	if (err)
		return err;
	if (!id[0]) {
		unsigned char r[16];

		randombytes_buf(r, sizeof(r));
		for (size_t i = 0; i < sizeof(r); i++)
			snprintf(id + 2 * i, 3, "%02x", r[i]);
	} else if (!id_ok(id)) {
		snprintf(msg, cap, "id '%.80s' is not [A-Za-z0-9_-]{1,63}", id);
		return -EINVAL;
	}
	snprintf(subj, sizeof(subj), SUBJ ".%s.%s", tenant, fn);
	if (natsMsg_Create(&m, subj, NULL, input, (int)len) != NATS_OK)
		return -ENOMEM;
	natsMsgHeader_Set(m, "Nats-Msg-Id", id);
	natsMsgHeader_Set(m, "Lutf-Id", id);
	s = js_PublishMsg(&pa, lutf_cluster_js(c), m, NULL, &je);
	natsMsg_Destroy(m);
	if (s == NATS_OK)
		*dup = pa->Duplicate;
	jsPubAck_Destroy(pa);
	return lutf_cluster_nerr(s, msg, cap, "async submit");
}

int lutf_cluster_async_submit_nowait(struct lutf_cluster *c, const char *tenant, const char *fn,
				     const void *input, size_t len, const char *id)
{
	char subj[160], msg[200];
	natsMsg *m = NULL;
	natsStatus s;
	int err = id_ok(id) ? lutf_cluster_async_ready(c, msg, sizeof(msg)) : -EINVAL;

	if (err)
		return err;
	snprintf(subj, sizeof(subj), SUBJ ".%s.%s", tenant, fn);
	if (natsMsg_Create(&m, subj, NULL, input, (int)len) != NATS_OK)
		return -ENOMEM;
	natsMsgHeader_Set(m, "Nats-Msg-Id", id);
	natsMsgHeader_Set(m, "Lutf-Id", id);
	s = js_PublishMsgAsync(lutf_cluster_js(c), &m, NULL); /* takes m on success */
	natsMsg_Destroy(m);
	return s == NATS_OK ? 0 : -EIO;
}

int lutf_cluster_async_flush(struct lutf_cluster *c, uint32_t timeout_ms)
{
	jsPubOptions po;

	jsPubOptions_Init(&po);
	po.MaxWait = timeout_ms;
	return js_PublishAsyncComplete(lutf_cluster_js(c), &po) == NATS_OK ? 0 : -ETIMEDOUT;
}

/* A result's value: "status=..\ndetail=..\ndead=..\ntries=..\nerror=..\n\n" + output.
 * Returns 0, -EEXIST (stored before: kept) or -EIO. */
static int result_put(kvStore *kv, const char *id, const struct lutf_cluster_reply *r, bool dead,
		      uint32_t tries)
{
	size_t hl, cap = r->output_len + 600;
	char *buf = malloc(cap);
	natsStatus s;

	if (!buf)
		return -ENOMEM;
	hl = (size_t)snprintf(buf, 600,
			      "status=%" PRIu32 "\ndetail=%" PRIu32 "\ndead=%d\ntries=%" PRIu32
			      "\ncontent_type=%s\nerror=%s\n\n",
			      r->status, r->detail, dead ? 1 : 0, tries, r->content_type, r->error);
	if (hl >= 600)
		hl = 599;
	if (r->output_len)
		memcpy(buf + hl, r->output, r->output_len);
	/* Create, not put: one round trip stores it and says whether a result
	 * was there already (a duplicate run). */
	s = kvStore_Create(NULL, kv, id, buf, (int)(hl + r->output_len));
	free(buf);
	if (s != NATS_OK) {
		kvEntry *old = NULL;

		if (kvStore_Get(&old, kv, id) == NATS_OK) {
			kvEntry_Destroy(old);
			return -EEXIST;
		}
		return -EIO;
	}
	return 0;
}

int lutf_cluster_result_get(struct lutf_cluster *c, const char *id, struct lutf_cluster_reply *r,
			    bool *dead, char *msg, size_t cap)
{
	kvEntry *e = NULL;
	const char *v, *end, *p;
	size_t len;
	natsStatus s;
	int err = id_ok(id) ? lutf_cluster_async_ready(c, msg, cap) : -EINVAL;

	memset(r, 0, sizeof(*r));
	*dead = false;
	if (err == -EINVAL)
		snprintf(msg, cap, "id '%.80s' is not [A-Za-z0-9_-]{1,63}", id);
	if (err)
		return err;
	s = kvStore_Get(&e, *lutf_cluster_results(c), id);
	if (s == NATS_NOT_FOUND) {
		snprintf(msg, cap, "no result for %s (not done yet, or expired)", id);
		return -ENOENT;
	}
	if (s != NATS_OK)
		return lutf_cluster_nerr(s, msg, cap, "result");
	v = kvEntry_Value(e);
	len = (size_t)kvEntry_ValueLen(e);
	end = v ? memmem(v, len, "\n\n", 2) : NULL;
	if (!end) {
		kvEntry_Destroy(e);
		snprintf(msg, cap, "malformed result for %s", id);
		return -EBADMSG;
	}
	for (p = v; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p) + 1);
		size_t n = (size_t)(nl - p);

		if (n > 7 && !memcmp(p, "status=", 7))
			r->status = (uint32_t)strtoul(p + 7, NULL, 10);
		else if (n > 7 && !memcmp(p, "detail=", 7))
			r->detail = (uint32_t)strtoul(p + 7, NULL, 10);
		else if (n > 5 && !memcmp(p, "dead=", 5))
			*dead = p[5] == '1';
		else if (n > 6 && !memcmp(p, "error=", 6))
			snprintf(r->error, sizeof(r->error), "%.*s", (int)(n - 6), p + 6);
		else if (n > 13 && !memcmp(p, "content_type=", 13))
			snprintf(r->content_type, sizeof(r->content_type), "%.*s", (int)(n - 13),
				 p + 13);
		p = nl + 1;
	}
	end += 2;
	r->output_len = len - (size_t)(end - v);
	r->output = malloc(r->output_len + 1);
	if (r->output) {
		memcpy(r->output, end, r->output_len);
		((char *)r->output)[r->output_len] = 0;
	} else {
		r->output_len = 0;
	}
	kvEntry_Destroy(e);
	return 0;
}

/* ---- the node's workers ---- */

static struct {
	struct lutf_cluster *c;
	natsSubscription *sub;
	char sock[300];
	void (*log)(const char *fmt, ...);
	pthread_t th[WORKERS];
	unsigned nth;
	atomic_bool stop; /* relaxed: polled between fetches */
	_Atomic uint64_t done, retried, dead, duplicates;
} A;

void lutf_cluster_async_stats(struct lutf_cluster_async_stats *s)
{
	s->done = atomic_load_explicit(&A.done, memory_order_relaxed);
	s->retried = atomic_load_explicit(&A.retried, memory_order_relaxed);
	s->dead = atomic_load_explicit(&A.dead, memory_order_relaxed);
	s->duplicates = atomic_load_explicit(&A.duplicates, memory_order_relaxed);
}

static bool retryable(uint32_t st)
{
	return st == LUTF_STATUS_CRASHED || st == LUTF_STATUS_OVERLOADED ||
	       st == LUTF_STATUS_DEADLINE || st == LUTF_STATUS_SHUTTING_DOWN;
}

static void run_one(struct lutf_client **cl, natsMsg *m)
{
	const char *subj = natsMsg_GetSubject(m), *id = NULL;
	char tenant[LUTF_CLUSTER_NAME], fn[LUTF_CLUSTER_NAME];
	struct lutf_client_request req = {0};
	struct lutf_client_result res = {0};
	struct lutf_cluster_reply r = {0};
	jsMsgMetaData *meta = NULL;
	kvStore *kv = *lutf_cluster_results(A.c);
	uint64_t tries = 1;
	int err;

	if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
		tries = meta->NumDelivered;
		jsMsgMetaData_Destroy(meta);
	}
	if (natsMsgHeader_Get(m, "Lutf-Id", &id) != NATS_OK || !id || !id_ok(id) ||
	    sscanf(subj, SUBJ ".%63[^.].%63[^.]", tenant, fn) != 2) {
		A.log("cluster: async: a malformed call on %s dropped", subj);
		natsMsg_Term(m, NULL);
		return;
	}
	req.input = natsMsg_GetData(m);
	req.input_len = (size_t)natsMsg_GetDataLength(m);
	err = *cl ? 0 : lutf_client_connect(A.sock, cl);
	if (!err)
		err = lutf_client_invoke(*cl, tenant, fn, &req, &res);
	if (err) {
		lutf_client_close(*cl);
		*cl = NULL;
		res.status = LUTF_STATUS_SHUTTING_DOWN;
	}
	if (retryable(res.status) && tries < LUTF_CLUSTER_ASYNC_TRIES) {
		/* Backoff 100 ms, 200, 400, 800: then the dead-letter stream. */
		natsMsg_NakWithDelay(m, 100ll << (tries - 1), NULL);
		atomic_fetch_add_explicit(&A.retried, 1, memory_order_relaxed);
		lutf_client_result_release(&res);
		return;
	}
	r.status = res.status;
	r.detail = res.detail;
	snprintf(r.error, sizeof(r.error), "%s", res.error ? res.error : "");
	snprintf(r.content_type, sizeof(r.content_type), "%s",
		 res.content_type ? res.content_type : "");
	r.output = res.output;
	r.output_len = res.output_len;
	if (retryable(res.status)) {
		char dsubj[160];
		jsErrCode je = 0;
		natsMsg *d = NULL;

		snprintf(dsubj, sizeof(dsubj), DLQ_SUBJ ".%s.%s", tenant, fn);
		if (natsMsg_Create(&d, dsubj, NULL, req.input, (int)req.input_len) == NATS_OK) {
			natsMsgHeader_Set(d, "Lutf-Id", id);
			natsMsgHeader_Set(d, "Nats-Msg-Id", id);
			natsMsgHeader_Set(d, "Lutf-Error",
					  r.error[0] ? r.error : "retries exhausted");
			err = js_PublishMsg(NULL, lutf_cluster_js(A.c), d, NULL, &je) == NATS_OK
				  ? 0
				  : -EIO;
			natsMsg_Destroy(d);
		} else {
			err = -ENOMEM;
		}
		if (!err)
			err = result_put(kv, id, &r, true, (uint32_t)tries);
		if (!err)
			atomic_fetch_add_explicit(&A.dead, 1, memory_order_relaxed);
	} else {
		err = result_put(kv, id, &r, false, (uint32_t)tries);
		if (!err)
			atomic_fetch_add_explicit(&A.done, 1, memory_order_relaxed);
	}
	if (err == -EEXIST) /* ran before (a node died before its ack): first result kept */
		atomic_fetch_add_explicit(&A.duplicates, 1, memory_order_relaxed);
	else if (err) {
		lutf_client_result_release(&res);
		return; /* not acked: delivered again after the ack wait */
	}
	natsMsg_Ack(m, NULL);
	lutf_client_result_release(&res);
}

static void *worker_main(void *arg)
{
	struct lutf_client *cl = NULL;

	(void)arg;
	while (!atomic_load_explicit(&A.stop, memory_order_relaxed)) {
		natsMsgList list = {0};
		/* A few at a time: fewer fetch round trips; each stays unacked
		 * until its result is stored. */
		natsStatus s = natsSubscription_Fetch(&list, A.sub, 4, 250, NULL);

		if (s != NATS_OK) {
			if (s != NATS_TIMEOUT)
				nats_Sleep(100);
			continue;
		}
		for (int i = 0; i < list.Count; i++)
			run_one(&cl, list.Msgs[i]);
		natsMsgList_Destroy(&list);
	}
	lutf_client_close(cl);
	return NULL;
}

int lutf_cluster_async_open(struct lutf_cluster *c, const struct lutf_cluster_node_cfg *cfg)
{
	jsSubOptions so;
	char msg[300];
	natsStatus s;
	int err;

	if (A.sub || !cfg->data_sock)
		return 0;
	err = lutf_cluster_async_ready(c, msg, sizeof(msg));
	if (err) {
		cfg->log("cluster: async: %s", msg);
		return err;
	}
	A.c = c;
	A.log = (void (*)(const char *, ...))cfg->log;
	snprintf(A.sock, sizeof(A.sock), "unix://%s", cfg->data_sock);
	jsSubOptions_Init(&so);
	so.Stream = LUTF_CLUSTER_ASYNC;
	so.Config.AckPolicy = js_AckExplicit;
	{
		/* Tests shorten it (a killed node's calls come back sooner); it
		 * binds when the first node creates the durable consumer. */
		const char *e = getenv("LUTF_CLUSTER_ACK_WAIT_MS");
		long ms = e ? strtol(e, NULL, 10) : ACK_WAIT_MS;

		so.Config.AckWait = (int64_t)(ms >= 500 ? ms : ACK_WAIT_MS) * 1000000;
	}
	so.Config.MaxAckPending = 4096;
	s = js_PullSubscribe(&A.sub, lutf_cluster_js(c), SUBJ ".>", DURABLE, NULL, &so, NULL);
	if (s != NATS_OK)
		return lutf_cluster_nerr(s, msg, sizeof(msg), "async consumer");
	atomic_store_explicit(&A.stop, false, memory_order_relaxed);
	for (A.nth = 0; A.nth < WORKERS; A.nth++)
		if (pthread_create(&A.th[A.nth], NULL, worker_main, NULL))
			break;
	return 0;
}

void lutf_cluster_async_close(void)
{
	if (!A.sub)
		return;
	atomic_store_explicit(&A.stop, true, memory_order_relaxed);
	for (unsigned i = 0; i < A.nth; i++)
		pthread_join(A.th[i], NULL);
	A.nth = 0;
	natsSubscription_Destroy(A.sub); /* not Unsubscribe: the durable stays */
	A.sub = NULL;
}
