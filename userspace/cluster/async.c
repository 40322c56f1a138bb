/* SPDX-License-Identifier: MIT */
/*
 * Durable async calls: a JetStream work-queue stream of calls (file
 * storage, dedup by Nats-Msg-Id), results by id in a KV bucket with a TTL,
 * dead letters in their own stream. Each node pulls from one shared durable
 * consumer and runs calls on its own lutfd (data socket; lutfd forwards what
 * it does not serve). Invariant: a call is acked only after its result (or
 * its dead letter and result) is stored, and its callback job queued
 * (callback.c), so a node dying mid-call leaves it to be delivered again: at
 * least once; a result already stored when another arrives is counted as a
 * duplicate and kept. A node keeps in hand at most 2 x max_concurrency calls
 * of a bounded function (the rest go back to the queue); retries count runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster_int.h"

#define SUBJ "lutf.async"
#define DLQ_SUBJ "lutf.dlq"
#define DURABLE "lutf_workers"
#define WORKERS 8 /* the old path's workers, a call at a time each */
/* Batches a node runs at once (their Fetches take turns). bench/cluster,
 * 1 node R1: 2 ran 33-39k calls/s, 4 26-28k, 8 29k. */
#define BATCH_WORKERS 2
#define ACK_WAIT_MS 30000 /* a call not acked by then is delivered again */
/* A call whose result, dead letter or callback job could not be stored is
 * nak'ed with this delay: it comes back soon, not after the whole ack wait,
 * and a NATS in trouble is not asked again at once. */
#define NAK_LATER_MS 1000

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

static int ready_locked(struct lutf_cluster *c, kvStore **kv, jsCtx *js, char *msg, size_t cap)
{
	kvConfig kc;
	natsStatus s;
	int err;

	if (*kv)
		return 0;
	if ((err =
		 stream(js, LUTF_CLUSTER_ASYNC, SUBJ, true, lutf_cluster_replicas(c), msg, cap)) ||
	    (err = stream(js, LUTF_CLUSTER_DLQ, DLQ_SUBJ, false, lutf_cluster_replicas(c), msg,
			  cap)) ||
	    (err = lutf_cluster_cb_stream(c, msg, cap)))
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

int lutf_cluster_async_ready(struct lutf_cluster *c, char *msg, size_t cap)
{
	kvStore **kv = lutf_cluster_results(c);
	static pthread_mutex_t mu =
	    PTHREAD_MUTEX_INITIALIZER; /* lutfd's HTTP threads and the node's */
	int err = lutf_cluster_ready(c, msg, cap);

	if (err)
		return err;
	pthread_mutex_lock(&mu);
	/* js only once ready: until then store.c may replace it */
	err = ready_locked(c, kv, lutf_cluster_js(c), msg, cap);
	pthread_mutex_unlock(&mu);
	return err;
}

int lutf_cluster_async_submit(struct lutf_cluster *c, const char *tenant, const char *fn,
			      const void *input, size_t len, char *id, bool *dup, char *msg,
			      size_t cap)
{
	return lutf_cluster_async_submit_cb(c, tenant, fn, input, len, id, NULL, dup, msg, cap);
}

int lutf_cluster_async_submit_cb(struct lutf_cluster *c, const char *tenant, const char *fn,
				 const void *input, size_t len, char *id, const char *callback,
				 bool *dup, char *msg, size_t cap)
{
	char subj[256];
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
	if (callback && callback[0] && lutf_cluster_callback_check(callback, msg, cap))
		return -EINVAL;
	snprintf(subj, sizeof(subj), SUBJ ".%s.%s.%s", tenant, fn, id);
	if (natsMsg_Create(&m, subj, NULL, input, (int)len) != NATS_OK)
		return -ENOMEM;
	natsMsgHeader_Set(m, "Nats-Msg-Id", id);
	natsMsgHeader_Set(m, "Lutf-Id", id);
	if (callback && callback[0])
		natsMsgHeader_Set(m, "Lutf-Callback", callback);
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
	return lutf_cluster_async_submit_nowait_cb(c, tenant, fn, input, len, id, NULL);
}

int lutf_cluster_async_submit_nowait_cb(struct lutf_cluster *c, const char *tenant, const char *fn,
					const void *input, size_t len, const char *id,
					const char *callback)
{
	char subj[256], msg[200];
	natsMsg *m = NULL;
	natsStatus s;
	int err = id_ok(id) ? lutf_cluster_async_ready(c, msg, sizeof(msg)) : -EINVAL;

	if (!err && callback && callback[0] &&
	    lutf_cluster_callback_check(callback, msg, sizeof(msg)))
		err = -EINVAL;
	if (err)
		return err;
	snprintf(subj, sizeof(subj), SUBJ ".%s.%s.%s", tenant, fn, id);
	if (natsMsg_Create(&m, subj, NULL, input, (int)len) != NATS_OK)
		return -ENOMEM;
	natsMsgHeader_Set(m, "Nats-Msg-Id", id);
	natsMsgHeader_Set(m, "Lutf-Id", id);
	if (callback && callback[0])
		natsMsgHeader_Set(m, "Lutf-Callback", callback);
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

/* A result's value: "status=..\ndetail=..\ndead=..\ntries=..\ncontent_type=..\n
 * error=..\ntenant=..\nfn=..\n\n" + output (tenant and fn: whose key may read
 * it). Returns 0 with *out (malloc'ed) and *len, or -ENOMEM. */
static int result_encode(const char *tenant, const char *fn, const struct lutf_cluster_reply *r,
			 bool dead, uint32_t tries, char **out, size_t *len)
{
	size_t hl, cap = r->output_len + 800;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	hl = (size_t)snprintf(buf, 800,
			      "status=%" PRIu32 "\ndetail=%" PRIu32 "\ndead=%d\ntries=%" PRIu32
			      "\ncontent_type=%s\nerror=%s\ntenant=%s\nfn=%s\n\n",
			      r->status, r->detail, dead ? 1 : 0, tries, r->content_type, r->error,
			      tenant, fn);
	if (hl >= 800)
		hl = 799;
	if (r->output_len)
		memcpy(buf + hl, r->output, r->output_len);
	*out = buf;
	*len = hl + r->output_len;
	return 0;
}

/* Store one result synchronously. Returns 0, -EEXIST (stored before:
 * kept) or -EIO. */
static int result_put(kvStore *kv, const char *id, const char *tenant, const char *fn,
		      const struct lutf_cluster_reply *r, bool dead, uint32_t tries)
{
	char *buf;
	size_t len;
	natsStatus s;

	if (result_encode(tenant, fn, r, dead, tries, &buf, &len))
		return -ENOMEM;
	/* Create, not put: one round trip stores it and says whether a result
	 * was there already (a duplicate run). */
	s = kvStore_Create(NULL, kv, id, buf, (int)len);
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
	return lutf_cluster_result_fetch(c, id, r, dead, NULL, NULL, msg, cap);
}

int lutf_cluster_result_fetch(struct lutf_cluster *c, const char *id, struct lutf_cluster_reply *r,
			      bool *dead, char tenant[LUTF_CLUSTER_NAME],
			      char fn[LUTF_CLUSTER_NAME], char *msg, size_t cap)
{
	kvEntry *e = NULL;
	const char *v, *end, *p;
	size_t len;
	natsStatus s;
	int err = id_ok(id) ? lutf_cluster_async_ready(c, msg, cap) : -EINVAL;

	memset(r, 0, sizeof(*r));
	*dead = false;
	if (tenant)
		tenant[0] = 0;
	if (fn)
		fn[0] = 0;
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
		else if (tenant && n > 7 && !memcmp(p, "tenant=", 7))
			snprintf(tenant, LUTF_CLUSTER_NAME, "%.*s", (int)(n - 7), p + 7);
		else if (fn && n > 3 && !memcmp(p, "fn=", 3))
			snprintf(fn, LUTF_CLUSTER_NAME, "%.*s", (int)(n - 3), p + 3);
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

int lutf_cluster_async_pending(struct lutf_cluster *c, const char *id,
			       char tenant[LUTF_CLUSTER_NAME], char fn[LUTF_CLUSTER_NAME],
			       char *msg, size_t cap)
{
	char subj[160];
	natsMsg *m = NULL;
	jsErrCode je = 0;
	natsStatus s;
	int err = id_ok(id) ? lutf_cluster_async_ready(c, msg, cap) : -EINVAL;

	if (err == -EINVAL)
		snprintf(msg, cap, "id '%.80s' is not [A-Za-z0-9_-]{1,63}", id);
	if (err)
		return err;
	/* The id is the subject's last token: the work queue's newest message
	 * on "lutf.async.*.*.<id>" is the call, waiting, running or backing off. */
	snprintf(subj, sizeof(subj), SUBJ ".*.*.%s", id);
	s = js_GetLastMsg(&m, lutf_cluster_js(c), LUTF_CLUSTER_ASYNC, subj, NULL, &je);
	if (s == NATS_NOT_FOUND) {
		snprintf(msg, cap, "no call %s in the work queue", id);
		return -ENOENT;
	}
	if (s != NATS_OK)
		return lutf_cluster_nerr(s, msg, cap, "work queue");
	if (sscanf(natsMsg_GetSubject(m), SUBJ ".%63[^.].%63[^.]", tenant, fn) != 2)
		tenant[0] = fn[0] = 0;
	natsMsg_Destroy(m);
	return 0;
}

/* ---- the node's workers ---- */

#define BATCH 256	   /* calls a worker fetches, runs pipelined, stores and acks together */
#define STORE_WAIT_MS 5000 /* for the stores' acknowledgements; then the batch is not acked */

static struct {
	struct lutf_cluster *c;
	natsSubscription *sub;
	char sock[300];
	void (*log)(const char *fmt, ...);
	pthread_t th[WORKERS];
	unsigned nth;
	bool batched;		  /* false: one synchronous store and ack per call (the old path) */
	atomic_bool stop;	  /* relaxed: polled between fetches */
	pthread_mutex_t fetch_mu; /* one Fetch at a time on sub */
	int64_t ack_wait_ms;
	bool die_after_ack; /* tests: LUTF_CLUSTER_TEST_DIE_AFTER_ACK=1 */
	_Atomic uint64_t done, retried, dead, duplicates;
} A = {.fetch_mu = PTHREAD_MUTEX_INITIALIZER};

void lutf_cluster_async_stats(struct lutf_cluster_async_stats *s)
{
	s->done = atomic_load_explicit(&A.done, memory_order_relaxed);
	s->retried = atomic_load_explicit(&A.retried, memory_order_relaxed);
	s->dead = atomic_load_explicit(&A.dead, memory_order_relaxed);
	s->duplicates = atomic_load_explicit(&A.duplicates, memory_order_relaxed);
	lutf_cluster_cb_stats(&s->callbacks_ok, &s->callbacks_retried, &s->callbacks_failed,
			      &s->callbacks_dead);
}

static bool retryable(uint32_t st)
{
	return st == LUTF_STATUS_CRASHED || st == LUTF_STATUS_OVERLOADED ||
	       st == LUTF_STATUS_DEADLINE || st == LUTF_STATUS_SHUTTING_DOWN;
}

/* One call of a batch, from its message to its ack. */
struct job {
	natsMsg *m;
	const char *id; /* m's Lutf-Id header */
	char tenant[LUTF_CLUSTER_NAME], fn[LUTF_CLUSTER_NAME];
	uint64_t tries;
	struct lutf_client_result res;
	bool store; /* a result to store (else it was termed or nak'ed) */
	bool dead;
	int stored; /* 0, -EEXIST (stored before: a duplicate run), -EIO */
	bool answered;
	bool sent;    /* submitted to lutfd (or nothing to run) */
	bool wave;    /* decided, stored and acked in this wave */
	bool flushed; /* done with: acked, nak'ed or left to fall due */
	bool slot;    /* holds a slot of its function's MAX_CONCURRENCY */
	bool held;    /* counted in its function's calls in hand on this node */
	bool cbq_set; /* cbq holds its callback job's fate (batch_cbq) */
	int cbq;      /* 0 queued (or none), -EINVAL (a bad URL), -EIO (not stored) */
};

/* Parse the call; a malformed one is terminated. Returns true when it can run. */
static bool job_open(struct job *j, natsMsg *m)
{
	const char *subj = natsMsg_GetSubject(m);
	jsMsgMetaData *meta = NULL;

	memset(j, 0, sizeof(*j));
	j->m = m;
	j->tries = 1;
	j->stored = -EIO;
	if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
		j->tries = meta->NumDelivered;
		jsMsgMetaData_Destroy(meta);
	}
	if (natsMsgHeader_Get(m, "Lutf-Id", &j->id) != NATS_OK || !j->id || !id_ok(j->id) ||
	    sscanf(subj, SUBJ ".%63[^.].%63[^.]", j->tenant, j->fn) != 2) {
		A.log("cluster: async: a malformed call on %s dropped", subj);
		natsMsg_Term(m, NULL);
		return false;
	}
	return true;
}

static void to_reply(const struct lutf_client_result *res, struct lutf_cluster_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->status = res->status;
	r->detail = res->detail;
	snprintf(r->error, sizeof(r->error), "%s", res->error ? res->error : "");
	snprintf(r->content_type, sizeof(r->content_type), "%s",
		 res->content_type ? res->content_type : "");
	r->output = res->output;
	r->output_len = res->output_len;
}

/* How many runs of j's call ended in a retryable status, this one
 * included: a counter "<id>.runs" in the results bucket (ids have no dot, so
 * it never meets a result), bumped by compare-and-set. Not the delivery
 * count: a call handed back unrun (over its function's bound on a node,
 * see hold_take) is delivered again without having run. Only failures pay
 * these round trips. NATS trouble: the delivery count (never more runs). */
static uint64_t runs_bump(const struct job *j)
{
	kvStore *kv = *lutf_cluster_results(A.c);
	char key[LUTF_CLUSTER_ID + 8], val[24];

	snprintf(key, sizeof(key), "%s.runs", j->id);
	for (int t = 0; t < 4; t++) {
		kvEntry *e = NULL;
		natsStatus s = kvStore_Get(&e, kv, key);
		uint64_t n = 0;
		int len;

		if (s == NATS_NOT_FOUND) {
			if (kvStore_Create(NULL, kv, key, "1", 1) == NATS_OK)
				return 1;
			continue; /* another node made it meanwhile */
		}
		if (s != NATS_OK)
			break;
		if (kvEntry_ValueLen(e) > 0 && kvEntry_ValueLen(e) < 20) {
			memcpy(val, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
			val[kvEntry_ValueLen(e)] = 0;
			n = strtoull(val, NULL, 10);
		}
		len = snprintf(val, sizeof(val), "%" PRIu64, n + 1);
		s = kvStore_Update(NULL, kv, key, val, len, kvEntry_Revision(e));
		kvEntry_Destroy(e);
		if (s == NATS_OK)
			return n + 1;
	}
	return j->tries;
}

/* After the call ran: nak it for a retry, or send it to the dead-letter
 * stream (synchronously: rare), or leave it to store. */
static void job_decide(struct job *j)
{
	uint32_t st = j->res.status;
	uint64_t runs;

	/* Unknown right after a deploy: the nodes may still be loading it (the
	 * registry answers the deploy before they converge). Retried with the
	 * same backoff; still unknown after the last try, it is stored as is. */
	if (!retryable(st) && st != LUTF_STATUS_UNKNOWN_FUNCTION) {
		j->store = true;
		return;
	}
	runs = runs_bump(j);
	if (runs < LUTF_CLUSTER_ASYNC_TRIES) {
		/* Backoff 100 ms, 200, 400, 800: then the dead-letter stream. */
		natsMsg_NakWithDelay(j->m, 100ll << (runs - 1), NULL);
		atomic_fetch_add_explicit(&A.retried, 1, memory_order_relaxed);
		return;
	}
	if (retryable(st)) {
		char dsubj[160];
		jsErrCode je = 0;
		natsMsg *d = NULL;
		const void *in = natsMsg_GetData(j->m);
		bool ok = false;

		snprintf(dsubj, sizeof(dsubj), DLQ_SUBJ ".%s.%s", j->tenant, j->fn);
		if (natsMsg_Create(&d, dsubj, NULL, in, natsMsg_GetDataLength(j->m)) == NATS_OK) {
			natsMsgHeader_Set(d, "Lutf-Id", j->id);
			natsMsgHeader_Set(d, "Nats-Msg-Id", j->id);
			natsMsgHeader_Set(d, "Lutf-Error",
					  j->res.error && j->res.error[0] ? j->res.error
									  : "retries exhausted");
			ok = js_PublishMsg(NULL, lutf_cluster_js(A.c), d, NULL, &je) == NATS_OK;
			natsMsg_Destroy(d);
		}
		if (!ok) { /* delivered again soon (not after the whole ack wait) */
			natsMsg_NakWithDelay(j->m, NAK_LATER_MS, NULL);
			return;
		}
		j->dead = true;
	}
	j->store = true;
}

/* The stored result is there: queue its callback (durably, before the
 * ack: a node dying after the ack loses nothing), count, ack. A duplicate
 * run queues the callback too (the first run may have died before it did;
 * the stream's dedup drops a second job). */
static void job_finish(struct job *j)
{
	const char *cb = NULL;
	bool has_cb;

	if (j->stored && j->stored != -EEXIST) {
		/* Not stored (or its acknowledgement came too late): run again
		 * soon; a store that did land makes that run a counted duplicate. */
		natsMsg_NakWithDelay(j->m, NAK_LATER_MS, NULL);
		return;
	}
	has_cb = natsMsgHeader_Get(j->m, "Lutf-Callback", &cb) == NATS_OK && cb && cb[0];
	if (has_cb) {
		int err =
		    j->cbq_set ? j->cbq : lutf_cluster_cb_queue(A.c, cb, j->id, j->tenant, j->fn);

		if (err == -EIO) { /* delivered again soon: the callback queued then */
			natsMsg_NakWithDelay(j->m, NAK_LATER_MS, NULL);
			return;
		}
		if (err) { /* a hostile header: nothing to POST to */
			A.log("cluster: async: call %s: a malformed callback URL dropped", j->id);
			has_cb = false;
		}
	}
	if (j->stored == -EEXIST) /* ran before (a node died before its ack): first kept */
		atomic_fetch_add_explicit(&A.duplicates, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(j->dead ? &A.dead : &A.done, 1, memory_order_relaxed);
	natsMsg_Ack(j->m, NULL);
	if (has_cb && A.die_after_ack) {
		/* Tests only (LUTF_CLUSTER_TEST_DIE_AFTER_ACK=1, docs/cluster.md):
		 * the node dies right after acking a call with a callback, before
		 * any POST; another node must deliver it. */
		natsConnection_FlushTimeout(lutf_cluster_conn(A.c), 2000);
		A.log("cluster: async: test switch: dying after the ack of %s", j->id);
		raise(SIGKILL);
	}
}

/* The old path, one call at a time (LUTF_CLUSTER_ASYNC_BATCH=0: the
 * benchmark's baseline): a synchronous invoke, store and ack per call. */
static void run_one(struct lutf_client **cl, natsMsg *m)
{
	struct lutf_client_request req = {0};
	struct lutf_cluster_reply r;
	struct job j;
	int err;

	if (!job_open(&j, m))
		return;
	req.input = natsMsg_GetData(m);
	req.input_len = (size_t)natsMsg_GetDataLength(m);
	err = *cl ? 0 : lutf_client_connect(A.sock, cl);
	if (!err)
		err = lutf_client_invoke(*cl, j.tenant, j.fn, &req, &j.res);
	if (err) {
		lutf_client_close(*cl);
		*cl = NULL;
		j.res.status = LUTF_STATUS_SHUTTING_DOWN;
	}
	job_decide(&j);
	if (j.store) {
		to_reply(&j.res, &r);
		j.stored = result_put(*lutf_cluster_results(A.c), j.id, j.tenant, j.fn, &r, j.dead,
				      (uint32_t)j.tries);
		job_finish(&j);
	}
	lutf_client_result_release(&j.res);
}

/* A worker's batch state: its lutfd handle and its reply inbox for the
 * stores' acknowledgements. */
struct wk {
	struct lutf_client_async *cl;
	natsSubscription *acks;
	char inbox[128];
	uint32_t gen; /* in each store's reply subject: a late ack of an old batch is ignored */
	struct job jobs[BATCH];
	natsMsg *msgs[BATCH];
};

/* ---- each function's MAX_CONCURRENCY, on this node ---- */

#define LIMITS                                                                                     \
	256 /* functions with a bound; more run unbounded (lutfd still answers OVERLOADED)         \
	     */

/* The registry's bounds (node.c pushes them) and the calls of each
 * function this node's workers have on lutfd now, under lim_mu: a batch
 * submits a call only when its function has a free slot, so the queue
 * respects the bound that sync calls meet (issue #15). */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t freed; /* a held call was let go (hold_put), or the bounds came */
	bool known;	      /* the registry's bounds came once (workers pull after that) */
	size_t n;
	struct {
		char tenant[LUTF_CLUSTER_NAME], fn[LUTF_CLUSTER_NAME];
		uint32_t max, inflight;
		uint32_t held; /* in this node's batches: waiting or running */
	} e[LIMITS];
} L = {.mu = PTHREAD_MUTEX_INITIALIZER, .freed = PTHREAD_COND_INITIALIZER};

void lutf_cluster_async_limits(const struct lutf_cluster_async_limit *lim, size_t n)
{
	pthread_mutex_lock(&L.mu);
	L.known = true;
	pthread_cond_broadcast(&L.freed);
	/* Keep the in-flight counts of functions that stay: their calls are
	 * still on lutfd. A function that left keeps no bound (its calls end by
	 * their deadlines and give their slots back to nothing). */
	for (size_t i = 0; i < n && i < LIMITS; i++) {
		size_t k;

		for (k = 0; k < L.n; k++)
			if (!strcmp(L.e[k].tenant, lim[i].tenant) && !strcmp(L.e[k].fn, lim[i].fn))
				break;
		if (k == L.n) {
			if (L.n == LIMITS)
				break;
			snprintf(L.e[k].tenant, sizeof(L.e[k].tenant), "%s", lim[i].tenant);
			snprintf(L.e[k].fn, sizeof(L.e[k].fn), "%s", lim[i].fn);
			L.e[k].inflight = 0;
			L.e[k].held = 0;
			L.n++;
		}
		L.e[k].max = lim[i].max_concurrency;
	}
	pthread_mutex_unlock(&L.mu);
}

/* Take a slot of j's function: true when it may go to lutfd now. */
static bool slot_take(struct job *j)
{
	bool ok = true;

	j->slot = false;
	pthread_mutex_lock(&L.mu);
	for (size_t k = 0; k < L.n; k++) {
		if (strcmp(L.e[k].tenant, j->tenant) || strcmp(L.e[k].fn, j->fn))
			continue;
		ok = !L.e[k].max || L.e[k].inflight < L.e[k].max;
		if (ok)
			L.e[k].inflight++;
		j->slot = ok; /* counted: given back by slot_put */
		break;
	}
	pthread_mutex_unlock(&L.mu);
	return ok;
}

/* Calls of a bounded function a node keeps in hand: its max_concurrency
 * running and as many again waiting to start (so a slot that frees is
 * filled at once, without a pull). Beyond that the call goes back to the
 * queue at once for a node with free slots: a node pulls what it can start
 * soon, not a whole batch of a slow function (issue #15). */
#define HOLD(max) (2 * (uint64_t)(max))

/* Keep j on this node? False: hand it back (its function is bounded and
 * this node holds HOLD of its calls already). */
static bool hold_take(struct job *j)
{
	bool ok = true;

	j->held = false;
	pthread_mutex_lock(&L.mu);
	for (size_t k = 0; k < L.n; k++) {
		if (strcmp(L.e[k].tenant, j->tenant) || strcmp(L.e[k].fn, j->fn))
			continue;
		if (!L.e[k].max)
			break;
		ok = L.e[k].held < HOLD(L.e[k].max);
		if (ok)
			L.e[k].held++;
		j->held = ok; /* counted: given back by hold_put */
		break;
	}
	pthread_mutex_unlock(&L.mu);
	return ok;
}

static void hold_put(struct job *j)
{
	if (!j->held)
		return;
	j->held = false;
	pthread_mutex_lock(&L.mu);
	for (size_t k = 0; k < L.n; k++)
		if (!strcmp(L.e[k].tenant, j->tenant) && !strcmp(L.e[k].fn, j->fn)) {
			if (L.e[k].held)
				L.e[k].held--;
			break;
		}
	pthread_cond_broadcast(&L.freed);
	pthread_mutex_unlock(&L.mu);
}

/* Wait (up to ms) for a held call to be let go: a worker whose whole pull
 * went back to the queue does not pull again at once. */
static void hold_wait(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_mutex_lock(&L.mu);
	pthread_cond_timedwait(&L.freed, &L.mu, &ts);
	pthread_mutex_unlock(&L.mu);
}

static void slot_put(struct job *j)
{
	if (!j->slot)
		return;
	j->slot = false;
	pthread_mutex_lock(&L.mu);
	for (size_t k = 0; k < L.n; k++)
		if (!strcmp(L.e[k].tenant, j->tenant) && !strcmp(L.e[k].fn, j->fn)) {
			if (L.e[k].inflight)
				L.e[k].inflight--;
			break;
		}
	pthread_mutex_unlock(&L.mu);
}

#define WAVE_MS 20 /* no answer for this long: store and ack the answered ones */

/* A batch's progress on lutfd, between its waves. */
struct run {
	int left, waiting; /* submitted and unanswered; not yet submitted */
	int64_t progress;  /* when JetStream last heard the calls are in progress */
};

/* Start the batch: every call SHUTTING_DOWN (retried) until answered, the
 * lutfd handle open. Returns false when it cannot be (all retried). */
static bool batch_start(struct wk *w, struct job *jobs, int n, struct run *st)
{
	memset(st, 0, sizeof(*st));
	st->progress = nats_Now();
	for (int i = 0; i < n; i++) {
		jobs[i].res.status = LUTF_STATUS_SHUTTING_DOWN;
		jobs[i].sent = !jobs[i].id; /* malformed: nothing to run */
		st->waiting += !jobs[i].sent;
	}
	if (!w->cl) {
		const char *ep[1] = {A.sock};
		struct lutf_client_opts o = {
		    .endpoints = ep, .n_endpoints = 1, .queue_depth = BATCH};

		if (lutf_client_open(&o, &w->cl))
			return false;
	}
	return true;
}

/* Run the batch's calls pipelined on lutfd (one connection), each when its
 * function has a free slot; each ends with its answer or SHUTTING_DOWN
 * (retried). Returns true when every call has ended, false when some are
 * answered and the rest are slow (no answer for WAVE_MS): the caller stores
 * and acks those (a slow call does not hold its batch's fast results back)
 * and calls again. While calls wait or run, JetStream hears every third of
 * the ack wait that they are in progress, so they do not fall due again. */
static bool batch_step(struct wk *w, struct job *jobs, int n, struct run *st)
{
	struct lutf_client_completion done[BATCH];
	int fresh = 0; /* answered in this step */

	/* Ends: every submitted call completes (its answer, or an error by its
	 * own deadline), and a slot held by another worker comes back the same
	 * way; a broken handle stops the loop (its calls are retried). */
	while (st->waiting > 0 || st->left > 0) {
		int k;

		for (int i = 0; i < n && st->waiting > 0; i++) {
			struct lutf_client_request req = {
			    .input = natsMsg_GetData(jobs[i].m),
			    .input_len = (size_t)natsMsg_GetDataLength(jobs[i].m),
			};

			if (jobs[i].sent || !slot_take(&jobs[i]))
				continue;
			jobs[i].sent = true;
			st->waiting--;
			if (!lutf_client_submit(w->cl, jobs[i].tenant, jobs[i].fn, &req,
						(uint64_t)i))
				st->left++;
			else
				slot_put(&jobs[i]);
		}
		if (nats_Now() - st->progress > A.ack_wait_ms / 3) {
			for (int i = 0; i < n; i++)
				if (jobs[i].id && !jobs[i].flushed)
					natsMsg_InProgress(jobs[i].m, NULL);
			st->progress = nats_Now();
		}
		if (!st->left) {
			if (st->waiting > 0)
				nats_Sleep(2); /* other workers hold the slots */
			continue;
		}
		/* With calls waiting, come back soon: another worker may free a
		 * slot; with answers in hand, after WAVE_MS at most. */
		k = lutf_client_reap(w->cl, done, BATCH,
				     st->waiting > 0 ? 5
				     : fresh	     ? WAVE_MS
						     : -1);
		if (k < 0)
			break;
		if (!k && fresh && !st->waiting)
			return false; /* the rest are slow: store these first */
		for (int i = 0; i < k; i++) {
			struct job *j = &jobs[done[i].user_data];

			st->left--;
			slot_put(j);
			if (done[i].error) {
				lutf_client_result_release(&done[i].result);
				continue;
			}
			j->res = done[i].result;
			j->answered = true;
			fresh++;
		}
	}
	for (int i = 0; i < n; i++)
		slot_put(&jobs[i]);
	if (st->left || st->waiting) { /* the handle broke: drop it, its calls are retried */
		lutf_client_async_close(w->cl);
		w->cl = NULL;
	}
	return true;
}

/* Store every result of the batch at once: each a publish into the
 * results bucket's stream that only succeeds when the key has no value
 * (kvStore_Create's rule, "Nats-Expected-Last-Subject-Sequence: 0"), with
 * its acknowledgement to this worker's inbox; then wait for them all. One
 * round trip for the batch instead of one per result. */
static void batch_store(struct wk *w, struct job *jobs, int n)
{
	natsConnection *nc = lutf_cluster_conn(A.c);
	int want = 0;
	uint64_t t0 = (uint64_t)nats_Now();

	w->gen++;
	for (int i = 0; i < n; i++) {
		struct lutf_cluster_reply r;
		char subj[128], reply[200];
		natsMsg *m = NULL;
		char *val;
		size_t len;

		if (!jobs[i].store || !jobs[i].wave)
			continue;
		to_reply(&jobs[i].res, &r);
		if (result_encode(jobs[i].tenant, jobs[i].fn, &r, jobs[i].dead,
				  (uint32_t)jobs[i].tries, &val, &len))
			continue;
		snprintf(subj, sizeof(subj), "$KV.%s.%s", LUTF_CLUSTER_RESULTS, jobs[i].id);
		snprintf(reply, sizeof(reply), "%s.%" PRIu32 ".%d", w->inbox, w->gen, i);
		if (natsMsg_Create(&m, subj, reply, val, (int)len) == NATS_OK &&
		    natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", "0") == NATS_OK &&
		    natsConnection_PublishMsg(nc, m) == NATS_OK)
			want++;
		natsMsg_Destroy(m);
		free(val);
	}
	while (want > 0) {
		int64_t left = STORE_WAIT_MS - (nats_Now() - (int64_t)t0);
		natsMsg *a = NULL;
		const char *subj, *data, *dot;
		uint32_t gen;
		int i;

		if (left <= 0 || natsSubscription_NextMsg(&a, w->acks, left) != NATS_OK)
			break; /* the rest are not acked: delivered again */
		subj = natsMsg_GetSubject(a);
		dot = strlen(subj) > strlen(w->inbox) ? subj + strlen(w->inbox) : "";
		data = natsMsg_GetData(a);
		if (sscanf(dot, ".%" SCNu32 ".%d", &gen, &i) == 2 && gen == w->gen && i >= 0 &&
		    i < n && jobs[i].store && jobs[i].wave && jobs[i].stored == -EIO) {
			want--;
			if (data && strstr(data, "\"error\"")) {
				/* 10071: wrong last sequence, the key has a value */
				if (strstr(data, "10071"))
					jobs[i].stored = -EEXIST;
			} else if (data && strstr(data, "\"seq\"")) {
				jobs[i].stored = 0;
			}
		}
		natsMsg_Destroy(a);
	}
}

/* Queue the callback jobs of the wave's stored results at once, as
 * batch_store stores them: each published with its acknowledgement to this
 * worker's inbox, then all awaited (one round trip for the wave instead of
 * one per callback). A job not acknowledged within STORE_WAIT_MS leaves its
 * call unacked (job_finish naks it). */
static void batch_cbq(struct wk *w, struct job *jobs, int n)
{
	natsConnection *nc = lutf_cluster_conn(A.c);
	int want = 0;
	int64_t t0 = nats_Now();

	w->gen++;
	for (int i = 0; i < n; i++) {
		const char *cb = NULL;
		char reply[200];
		natsMsg *m = NULL;

		jobs[i].cbq_set = false;
		if (!jobs[i].wave || !jobs[i].store ||
		    (jobs[i].stored && jobs[i].stored != -EEXIST) ||
		    natsMsgHeader_Get(jobs[i].m, "Lutf-Callback", &cb) != NATS_OK || !cb || !cb[0])
			continue;
		jobs[i].cbq_set = true;
		snprintf(reply, sizeof(reply), "%s.%" PRIu32 ".%d", w->inbox, w->gen, i);
		jobs[i].cbq =
		    lutf_cluster_cb_job(cb, jobs[i].id, jobs[i].tenant, jobs[i].fn, reply, &m);
		if (jobs[i].cbq == -EINVAL)
			continue;
		jobs[i].cbq = -EIO; /* until acknowledged */
		if (m && natsConnection_PublishMsg(nc, m) == NATS_OK)
			want++;
		natsMsg_Destroy(m);
	}
	while (want > 0) {
		int64_t left = STORE_WAIT_MS - (nats_Now() - t0);
		natsMsg *a = NULL;
		const char *subj, *data, *dot;
		uint32_t gen;
		int i;

		if (left <= 0 || natsSubscription_NextMsg(&a, w->acks, left) != NATS_OK)
			break;
		subj = natsMsg_GetSubject(a);
		dot = strlen(subj) > strlen(w->inbox) ? subj + strlen(w->inbox) : "";
		data = natsMsg_GetData(a);
		if (sscanf(dot, ".%" SCNu32 ".%d", &gen, &i) == 2 && gen == w->gen && i >= 0 &&
		    i < n && jobs[i].cbq_set && jobs[i].cbq == -EIO) {
			want--;
			/* A stored job, or one the dedup window knew ("duplicate"). */
			if (data && !strstr(data, "\"error\"") && strstr(data, "\"seq\""))
				jobs[i].cbq = 0;
		}
		natsMsg_Destroy(a);
	}
}

/* Run a pulled batch. Returns how many of its calls were handed back
 * unrun (over their function's HOLD on this node). */
static int batch(struct wk *w, natsMsg **msgs, int n)
{
	struct job *jobs = w->jobs;
	struct run st;
	int back = 0;
	bool all;

	for (int i = 0; i < n; i++) {
		if (!job_open(&jobs[i], msgs[i])) {
			jobs[i].id = NULL;
		} else if (!hold_take(&jobs[i])) {
			/* Back to the queue now (not counted as a retry: its
			 * retries count runs, runs_bump): another node may start it. */
			natsMsg_Nak(jobs[i].m, NULL);
			jobs[i].id = NULL;
			back++;
		}
	}
	if (back == n)
		return back;
	all = !batch_start(w, jobs, n, &st);
	/* Waves: what is answered is decided, stored and acked; then the rest. */
	do {
		if (!all)
			all = batch_step(w, jobs, n, &st);
		for (int i = 0; i < n; i++) {
			jobs[i].wave = jobs[i].id && !jobs[i].flushed && (jobs[i].answered || all);
			if (jobs[i].wave)
				job_decide(&jobs[i]);
		}
		batch_store(w, jobs, n);
		batch_cbq(w, jobs, n);
		for (int i = 0; i < n; i++) {
			if (!jobs[i].wave)
				continue;
			if (jobs[i].store)
				job_finish(&jobs[i]);
			lutf_client_result_release(&jobs[i].res);
			hold_put(&jobs[i]);
			jobs[i].wave = false;
			jobs[i].flushed = true;
		}
	} while (!all);
	return back;
}

/* Take list's messages into msgs (from index at, at most BATCH in all).
 * Returns the new count. */
static int take_msgs(natsMsgList *list, natsMsg **msgs, int at)
{
	for (int i = 0; i < list->Count; i++) {
		if (at < BATCH) {
			msgs[at++] = list->Msgs[i];
			list->Msgs[i] = NULL; /* ours now: not destroyed with the list */
		}
	}
	natsMsgList_Destroy(list);
	return at;
}

/* The next batch into msgs: what the queue holds (up to BATCH) as soon as
 * it holds anything, waiting up to 250 ms for a first call. That is a pull
 * request with no_wait and an expiry (libnats 3.4 and nats-server 2.9: it
 * returns once some calls came, with those there). A plain Fetch of BATCH
 * holds the first call until BATCH came or the wait ended: 13 ms median,
 * 120 ms p99 submit-to-result at 10,000 calls/s offered. Returns the
 * count, 0 (none came), or -1 (an error: the caller pauses). */
static int fetch(natsMsg **msgs, int want)
{
	jsFetchRequest fr;
	natsMsgList list = {0};
	natsStatus s;

	jsFetchRequest_Init(&fr);
	fr.Batch = want;
	fr.NoWait = true;
	fr.Expires = 250ll * 1000000;
	s = natsSubscription_FetchRequest(&list, A.sub, &fr);
	if (s == NATS_OK)
		return take_msgs(&list, msgs, 0);
	return s == NATS_TIMEOUT || s == NATS_NOT_FOUND ? 0 : -1;
}

/* Wait (up to LIMITS_WAIT_MS) for the registry's bounds: a node starting
 * with a backlog would otherwise pull and run calls past them. */
#define LIMITS_WAIT_MS 5000
static void limits_wait(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += LIMITS_WAIT_MS / 1000;
	pthread_mutex_lock(&L.mu);
	while (!L.known && !atomic_load_explicit(&A.stop, memory_order_relaxed))
		if (pthread_cond_timedwait(&L.freed, &L.mu, &ts))
			break;
	pthread_mutex_unlock(&L.mu);
}

static void *worker_main(void *arg)
{
	struct lutf_client *cl = NULL;
	struct wk *w = calloc(1, sizeof(*w));
	char *inbox = NULL;
	/* The next pull's size: BATCH, a quarter after a pull that mostly went
	 * back (a backlog of a bounded function this node cannot start), so
	 * the queue is not churned 256 calls at a time; doubled back after a
	 * pull it could keep. */
	int want = BATCH;

	(void)arg;
	if (!w)
		return NULL;
	if (A.batched) {
		char pat[160];

		if (natsInbox_Create(&inbox) != NATS_OK) {
			free(w);
			return NULL;
		}
		snprintf(w->inbox, sizeof(w->inbox), "%s", inbox);
		natsInbox_Destroy(inbox);
		snprintf(pat, sizeof(pat), "%s.>", w->inbox);
		if (natsConnection_SubscribeSync(&w->acks, lutf_cluster_conn(A.c), pat) !=
		    NATS_OK) {
			A.log("cluster: async: cannot subscribe to a reply inbox");
			free(w);
			return NULL;
		}
		natsSubscription_SetPendingLimits(w->acks, -1, -1);
	}
	limits_wait();
	while (!atomic_load_explicit(&A.stop, memory_order_relaxed)) {
		natsMsgList list = {0};
		natsStatus s;
		int n;

		if (A.batched) {
			/* One Fetch at a time on the shared subscription:
			 * concurrent Fetches share its message queue and stall each
			 * other (a bare libnats loop here: 8 threads 5.7k calls/s, 1
			 * thread 42k/s; later libnats refuses them), while the other
			 * workers run and store their batches. */
			int back = 0;

			pthread_mutex_lock(&A.fetch_mu);
			n = fetch(w->msgs, want);
			pthread_mutex_unlock(&A.fetch_mu);
			if (n > 0)
				back = batch(w, w->msgs, n);
			for (int i = 0; i < n; i++)
				natsMsg_Destroy(w->msgs[i]);
			if (n > 0 && 2 * back > n)
				want = want / 4 > 8 ? want / 4 : 8;
			else if (n > 0 && want < BATCH)
				want = 2 * want < BATCH ? 2 * want : BATCH;
			if (n > 0 && back == n)
				hold_wait(100); /* none kept: pull again once one is let go */
			if (n < 0)
				nats_Sleep(100);
			continue;
		}
		/* Each stays unacked until its result is stored. */
		s = natsSubscription_Fetch(&list, A.sub, 4, 250, NULL);
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
	lutf_client_async_close(w->cl);
	natsSubscription_Destroy(w->acks);
	free(w);
	return NULL;
}

int lutf_cluster_async_open(struct lutf_cluster *c, const struct lutf_cluster_node_cfg *cfg)
{
	unsigned want;
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
	{
		/* 0: the old path, one store per call (bench/cluster's baseline). */
		const char *e = getenv("LUTF_CLUSTER_ASYNC_BATCH");

		A.batched = !e || strcmp(e, "0");
	}
	{
		const char *e = getenv("LUTF_CLUSTER_TEST_DIE_AFTER_ACK");

		A.die_after_ack = e && !strcmp(e, "1");
	}
	snprintf(A.sock, sizeof(A.sock), "unix://%s", cfg->data_sock);
	jsSubOptions_Init(&so);
	so.Stream = LUTF_CLUSTER_ASYNC;
	so.Config.AckPolicy = js_AckExplicit;
	{
		/* Tests shorten it (a killed node's calls come back sooner); it
		 * binds when the first node creates the durable consumer. */
		const char *e = getenv("LUTF_CLUSTER_ACK_WAIT_MS");
		long ms = e ? strtol(e, NULL, 10) : ACK_WAIT_MS;

		A.ack_wait_ms = ms >= 500 ? ms : ACK_WAIT_MS;
		so.Config.AckWait = A.ack_wait_ms * 1000000;
	}
	so.Config.MaxAckPending = 4096;
	lutf_cluster_cb_start(c, A.ack_wait_ms, A.log);
	s = js_PullSubscribe(&A.sub, lutf_cluster_js(c), SUBJ ".>", DURABLE, NULL, &so, NULL);
	if (s != NATS_OK)
		return lutf_cluster_nerr(s, msg, sizeof(msg), "async consumer");
	atomic_store_explicit(&A.stop, false, memory_order_relaxed);
	want = A.batched ? BATCH_WORKERS : WORKERS;
	for (A.nth = 0; A.nth < want; A.nth++)
		if (pthread_create(&A.th[A.nth], NULL, worker_main, NULL))
			break;
	return 0;
}

void lutf_cluster_async_close(void)
{
	if (!A.sub)
		return;
	atomic_store_explicit(&A.stop, true, memory_order_relaxed);
	pthread_mutex_lock(&L.mu); /* a worker waiting in limits_wait or hold_wait */
	pthread_cond_broadcast(&L.freed);
	pthread_mutex_unlock(&L.mu);
	for (unsigned i = 0; i < A.nth; i++)
		pthread_join(A.th[i], NULL);
	A.nth = 0;
	natsSubscription_Destroy(A.sub); /* not Unsubscribe: the durable stays */
	A.sub = NULL;
	lutf_cluster_cb_stop();
}
