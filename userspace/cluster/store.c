/* SPDX-License-Identifier: MIT */
/*
 * A connection to the cluster's JetStream: the registry bucket, the node
 * bucket and the artifact stream, opened (created when missing) on first use.
 * Invariant: an artifact is handed out only when its bytes hash to the
 * manifest's sha256 and have its size; every libnats status becomes -errno
 * plus a message naming what failed. A node's connection (opts->retry) that
 * closes before it was ever up is replaced by a new one (redial_main): only
 * while lutf_cluster_ready has never said it is up, under c->mu, so every
 * user of the raw connection (which gets it after lutf_cluster_ready said
 * so) sees one connection for good.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_int.h"

struct lutf_cluster {
	kvStore *results; /* async.c, once its streams exist */
	natsConnection *nc;
	jsCtx *js;
	kvStore *fns, *nodes;
	int replicas;
	bool artifacts;	    /* the artifact stream exists: not asked again */
	pthread_mutex_t mu; /* guards opening the buckets, and nc/js until up */
	/* The redial (opts->retry only): libnats 3.4 gives up for good on a
	 * first connect that is accepted but whose handshake fails (its
	 * _connect forgets the server it tried, and the reconnect thread then
	 * finds none: NATS_NO_SERVER, closed). */
	natsOptions *opts; /* the options every dial uses (retry only) */
	bool up;	   /* lutf_cluster_ready saw nc connected: nc/js never change again */
	bool stop;	   /* lutf_cluster_close: the redial thread ends */
	bool redialing;	   /* the thread runs (joined by lutf_cluster_close) */
	pthread_cond_t cv; /* with mu: wakes the redial thread's waits */
	pthread_t redial;
	uint64_t redials; /* connections replaced (for the log) */
	void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* or NULL */
};

int lutf_cluster_nerr(natsStatus s, char *msg, size_t cap, const char *what)
{
	const char *last = nats_GetLastError(NULL);

	snprintf(msg, cap, "%s: %s%s%s", what, natsStatus_GetText(s), last && *last ? ": " : "",
		 last ? last : "");
	switch (s) {
	case NATS_OK:
		return 0;
	case NATS_TIMEOUT:
		return -ETIMEDOUT;
	case NATS_NOT_FOUND:
		return -ENOENT;
	case NATS_NO_SERVER:
	case NATS_NOT_YET_CONNECTED:
	case NATS_CONNECTION_CLOSED:
	case NATS_CONNECTION_DISCONNECTED:
		return -ENOTCONN;
	case NATS_NO_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}
#define nerr lutf_cluster_nerr

static void on_connected(natsConnection *nc, void *closure)
{
	(void)nc;
	(void)closure; /* lutf_cluster_ready asks the connection's status */
}

uint64_t lutf_cluster_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t lutf_cluster_reconnects(struct lutf_cluster *c)
{
	natsStatistics *st = NULL;
	uint64_t r = 0;

	if (natsStatistics_Create(&st) == NATS_OK &&
	    natsConnection_GetStats(lutf_cluster_conn(c), st) == NATS_OK)
		natsStatistics_GetCounts(st, NULL, NULL, NULL, NULL, &r);
	natsStatistics_Destroy(st);
	return r;
}

/* A connection with opts and its JetStream context. With retry options a
 * server that does not answer yet is not an error (*nc is then connecting in
 * the background). Returns 0, or -errno with msg and *nc, *js NULL. */
static int dial(natsOptions *opts, natsConnection **nc, jsCtx **js, char *msg, size_t cap)
{
	jsOptions jo;
	natsStatus s = natsConnection_Connect(nc, opts);
	int err;

	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		err = nerr(s, msg, cap, "cannot connect to NATS");
		natsConnection_Destroy(*nc);
		*nc = NULL;
		return err;
	}
	jsOptions_Init(&jo);
	jo.Wait = 2000;
	s = natsConnection_JetStream(js, *nc, &jo);
	if (s != NATS_OK) {
		err = nerr(s, msg, cap, "JetStream");
		natsConnection_Destroy(*nc);
		*nc = NULL;
		*js = NULL;
		return err;
	}
	return 0;
}

/*
 * The redial thread of a node's connection: while lutf_cluster_ready has
 * never seen it up, a connection that is closed (libnats gave up: see
 * struct lutf_cluster) or missing (the first connect failed) is replaced by
 * a new one, 250 ms after the previous dial, doubling to 5 s. It ends once
 * the connection is up (libnats reconnects on its own from then on) or on
 * lutf_cluster_close. The old connection is destroyed outside c->mu; no one
 * else holds it (nothing uses nc/js before lutf_cluster_ready said up).
 */
static void *redial_main(void *arg)
{
	struct lutf_cluster *c = arg;
	unsigned wait_ms = 250;

	pthread_mutex_lock(&c->mu);
	while (!c->stop && !c->up) {
		natsConnection *nc = NULL, *old_nc;
		jsCtx *js = NULL, *old_js;
		natsConnStatus st = natsConnection_Status(c->nc); /* CLOSED when NULL */
		char why[256] = "no connection", msg[300];
		struct timespec until;
		int err;

		if (st == NATS_CONN_STATUS_CONNECTED)
			break; /* up: libnats reconnects it from now on */
		if (st != NATS_CONN_STATUS_CLOSED) {
			/* libnats still tries (a refused connect): look again soon */
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100 * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->cv, &c->mu, &until);
			continue;
		}
		if (c->nc) {
			const char *last = NULL;

			natsConnection_GetLastError(c->nc, &last);
			snprintf(why, sizeof(why), "closed before it was ever up (libnats: %s)",
				 last && *last ? last : "closed");
		}
		c->redials++;
		if (c->log && !(c->redials & (c->redials - 1))) /* 1, 2, 4, 8, ... */
			c->log("cluster: NATS connection %s; connecting again (try %" PRIu64
			       "; %u ms apart, doubling to 5 s)",
			       why, c->redials, wait_ms);
		pthread_mutex_unlock(&c->mu);
		err = dial(c->opts, &nc, &js, msg, sizeof(msg));
		pthread_mutex_lock(&c->mu);
		if (c->stop) {
			jsCtx_Destroy(js);
			natsConnection_Destroy(nc);
			break;
		}
		if (err && c->log && !(c->redials & (c->redials - 1)))
			c->log("cluster: %s", msg);
		old_nc = c->nc;
		old_js = c->js;
		c->nc = nc;
		c->js = js;
		pthread_mutex_unlock(&c->mu);
		jsCtx_Destroy(old_js);
		natsConnection_Destroy(old_nc);
		pthread_mutex_lock(&c->mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &until) != ETIMEDOUT)
			;
		wait_ms = wait_ms * 2 < 5000 ? wait_ms * 2 : 5000;
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int lutf_cluster_open(const struct lutf_cluster_opts *o, struct lutf_cluster **out, char *msg,
		      size_t cap)
{
	struct lutf_cluster *c = calloc(1, sizeof(*c));
	natsOptions *opts = NULL;
	const char *servers[16];
	char *urls = strdup(o->url ? o->url : ""), *save = NULL, *u;
	int n = 0, err = -EINVAL;
	natsStatus s;

	if (!c || !urls) {
		free(c);
		free(urls);
		snprintf(msg, cap, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	for (u = strtok_r(urls, ",", &save); u && n < 16; u = strtok_r(NULL, ",", &save)) {
		if (strncmp(u, "nats://", 7) && strncmp(u, "tls://", 6)) {
			snprintf(msg, cap, "cluster URL '%.200s' is not nats://host:port", u);
			goto err;
		}
		servers[n++] = u;
	}
	if (!n) {
		snprintf(msg, cap, "no cluster URL");
		goto err;
	}
	/* R3 needs three servers: a cluster named by three or more URLs gets it. */
	c->replicas = n >= 3 ? 3 : 1;
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, servers, n);
	if (s == NATS_OK && o->creds && *o->creds)
		s = natsOptions_SetUserCredentialsFromFiles(opts, o->creds, NULL);
	if (s == NATS_OK && o->token && *o->token)
		s = natsOptions_SetToken(opts, o->token);
	if (s == NATS_OK && o->name)
		s = natsOptions_SetName(opts, o->name);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(opts, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, o->retry ? -1 : 5);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, 250);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(opts, true); /* the issue: no 1 ms flusher delay */
	/* lutfd's loop publishes on this connection (forwards, and the replies
	 * to calls that came over NATS): a server that stops reading it must
	 * not hold the loop, and every tenant's local calls with it, in a
	 * blocking write. With a deadline the socket is non-blocking; a write
	 * that cannot finish within it shuts the socket down and libnats
	 * reconnects, publishing into its reconnect buffer meanwhile. */
	if (s == NATS_OK)
		s = natsOptions_SetWriteDeadline(opts, LUTF_CLUSTER_WRITE_DEADLINE_MS);
	/* With a connected callback a refused first connect returns at once and
	 * goes on in the background; with NULL, libnats blocks until a server
	 * answers (a node started while NATS is down would never start). */
	if (s == NATS_OK && o->retry)
		s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, NULL);
	if (s != NATS_OK) {
		err = nerr(s, msg, cap, "NATS options");
		goto err;
	}
	err = dial(opts, &c->nc, &c->js, msg, cap);
	if (err && !o->retry)
		goto err;
	if (o->retry) {
		/* A first connect that failed here, or that closes before it is
		 * ever up, is dialled again by the redial thread. */
		c->opts = opts;
		opts = NULL;
		c->log = o->log;
		err = -pthread_create(&c->redial, NULL, redial_main, c);
		if (err) {
			snprintf(msg, cap, "cannot start the NATS redial thread: %s",
				 strerror(-err));
			goto err;
		}
		c->redialing = true;
	}
	natsOptions_Destroy(opts);
	free(urls);
	*out = c;
	return 0;
err:
	natsOptions_Destroy(opts);
	lutf_cluster_close(c);
	free(urls);
	return err;
}

void lutf_cluster_close(struct lutf_cluster *c)
{
	if (!c)
		return;
	if (c->redialing) {
		/* bounded by a dial in progress: the options' 2 s a server */
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->redial, NULL);
	}
	kvStore_Destroy(c->results);
	kvStore_Destroy(c->fns);
	kvStore_Destroy(c->nodes);
	jsCtx_Destroy(c->js);
	natsConnection_Destroy(c->nc);
	natsOptions_Destroy(c->opts);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static int bucket(struct lutf_cluster *c, kvStore **kv, const char *name, int64_t ttl_ms, char *msg,
		  size_t cap)
{
	kvConfig kc;
	natsStatus s;

	if (*kv)
		return 0;
	s = js_KeyValue(kv, c->js, name);
	if (s == NATS_NOT_FOUND) {
		kvConfig_Init(&kc);
		kc.Bucket = name;
		kc.History = 1;
		kc.TTL = ttl_ms * 1000000; /* libnats: nanoseconds (the stream's MaxAge) */
		kc.StorageType = ttl_ms ? js_MemoryStorage : js_FileStorage;
		kc.Replicas = c->replicas;
		s = js_CreateKeyValue(kv, c->js, &kc);
		if (s != NATS_OK) /* another writer made it first */
			s = js_KeyValue(kv, c->js, name);
	}
	return s == NATS_OK ? 0 : nerr(s, msg, cap, name);
}

static int artifacts(struct lutf_cluster *c, char *msg, size_t cap)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;
	const char *subj[] = {LUTF_CLUSTER_ART_SUBJ ".>"};
	natsStatus s;

	/* Once, like the buckets: every submit and result read passes here, and
	 * a STREAM.INFO round trip each cost the nats-server more CPU than the
	 * rest of the call (bench/cluster: 150-200 us a call). */
	if (c->artifacts)
		return 0;
	s = js_GetStreamInfo(&si, c->js, LUTF_CLUSTER_ARTIFACTS, NULL, &je);
	if (s == NATS_NOT_FOUND) {
		jsStreamConfig_Init(&sc);
		sc.Name = LUTF_CLUSTER_ARTIFACTS;
		sc.Subjects = subj;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = c->replicas;
		sc.MaxMsgsPerSubject = 1; /* a chunk's subject names its content */
		sc.MaxMsgSize = (int32_t)LUTF_CLUSTER_CHUNK + 4096;
		s = js_AddStream(&si, c->js, &sc, NULL, &je);
		if (s != NATS_OK)
			s = js_GetStreamInfo(&si, c->js, LUTF_CLUSTER_ARTIFACTS, NULL, &je);
	}
	jsStreamInfo_Destroy(si);
	c->artifacts = s == NATS_OK;
	return s == NATS_OK ? 0 : nerr(s, msg, cap, LUTF_CLUSTER_ARTIFACTS);
}

int lutf_cluster_ready(struct lutf_cluster *c, char *msg, size_t cap)
{
	int err;

	pthread_mutex_lock(&c->mu);
	if (natsConnection_Status(c->nc) != NATS_CONN_STATUS_CONNECTED) {
		snprintf(msg, cap, "not connected to NATS");
		err = -ENOTCONN;
	} else {
		/* up: the callers use nc/js from now on, and the redial thread
		 * never replaces them again */
		c->up = true;
		if (!(err = bucket(c, &c->fns, LUTF_CLUSTER_FNS, 0, msg, cap)) &&
		    !(err = bucket(c, &c->nodes, LUTF_CLUSTER_NODES, LUTF_CLUSTER_NODE_TTL_MS, msg,
				   cap)))
			err = artifacts(c, msg, cap);
	}
	pthread_mutex_unlock(&c->mu);
	return err;
}

kvStore **lutf_cluster_results(struct lutf_cluster *c)
{
	return &c->results;
}

int lutf_cluster_replicas(struct lutf_cluster *c)
{
	return c->replicas;
}

jsCtx *lutf_cluster_js(struct lutf_cluster *c)
{
	return c->js;
}

natsConnection *lutf_cluster_conn(struct lutf_cluster *c)
{
	return c->nc;
}
kvStore *lutf_cluster_kv(struct lutf_cluster *c, const char *name)
{
	return strcmp(name, LUTF_CLUSTER_NODES) ? c->fns : c->nodes;
}

int lutf_cluster_chunk_put_raw(struct lutf_cluster *c, const char *sha256, uint32_t idx,
			       const void *data, size_t len, char *msg, size_t cap)
{
	char subj[128];
	jsErrCode je = 0;
	natsStatus s;
	int err = lutf_cluster_ready(c, msg, cap);

	if (err)
		return err;
	snprintf(subj, sizeof(subj), LUTF_CLUSTER_ART_SUBJ ".%s.%" PRIu32, sha256, idx);
	s = js_Publish(NULL, c->js, subj, data, (int)len, NULL, &je);
	return nerr(s, msg, cap, "artifact chunk");
}

int lutf_cluster_artifact_put(struct lutf_cluster *c, const void *so, size_t len,
			      struct lutf_cluster_manifest *m, char *msg, size_t cap)
{
	int err;

	if (!len || len > LUTF_CLUSTER_MAX_ARTIFACT) {
		snprintf(msg, cap, "artifact of %zu bytes (1 to %u allowed)", len,
			 LUTF_CLUSTER_MAX_ARTIFACT);
		return -EFBIG;
	}
	lutf_cluster_sha256(so, len, m->sha256);
	m->size = len;
	m->chunks = (uint32_t)((len + LUTF_CLUSTER_CHUNK - 1) / LUTF_CLUSTER_CHUNK);
	for (uint32_t i = 0; i < m->chunks; i++) {
		size_t off = (size_t)i * LUTF_CLUSTER_CHUNK;
		size_t n = len - off < LUTF_CLUSTER_CHUNK ? len - off : LUTF_CLUSTER_CHUNK;

		err = lutf_cluster_chunk_put_raw(c, m->sha256, i, (const char *)so + off, n, msg,
						 cap);
		if (err)
			return err;
	}
	return 0;
}

int lutf_cluster_artifact_get(struct lutf_cluster *c, const struct lutf_cluster_manifest *m,
			      void **so, size_t *len, char *msg, size_t cap)
{
	char *buf = malloc(m->size ? m->size : 1), subj[128], got[65];
	size_t off = 0;
	int err = lutf_cluster_ready(c, msg, cap);

	if (!buf || err) {
		free(buf);
		return err ? err : -ENOMEM;
	}
	for (uint32_t i = 0; i < m->chunks; i++) {
		natsMsg *nm = NULL;
		jsErrCode je = 0;
		natsStatus s;
		int n;

		snprintf(subj, sizeof(subj), LUTF_CLUSTER_ART_SUBJ ".%s.%" PRIu32, m->sha256, i);
		s = js_GetLastMsg(&nm, c->js, LUTF_CLUSTER_ARTIFACTS, subj, NULL, &je);
		if (s != NATS_OK) {
			err = nerr(s, msg, cap, "artifact chunk missing");
			free(buf);
			return err;
		}
		n = natsMsg_GetDataLength(nm);
		if (n < 0 || (uint64_t)off + (uint64_t)n > m->size) {
			natsMsg_Destroy(nm);
			free(buf);
			snprintf(msg, cap,
				 "artifact %.12s: chunks pass the manifest's size %" PRIu64,
				 m->sha256, m->size);
			return -EBADMSG;
		}
		memcpy(buf + off, natsMsg_GetData(nm), (size_t)n);
		off += (size_t)n;
		natsMsg_Destroy(nm);
	}
	lutf_cluster_sha256(buf, off, got);
	if (off != m->size || strcmp(got, m->sha256)) {
		snprintf(msg, cap,
			 "artifact digest mismatch: manifest says sha256 %s (%" PRIu64
			 " bytes), the stream holds %s (%zu bytes); not loaded",
			 m->sha256, m->size, got, off);
		free(buf);
		return -EBADMSG;
	}
	*so = buf;
	*len = off;
	return 0;
}

int lutf_cluster_kv_put_raw(struct lutf_cluster *c, const char *name, const char *key,
			    const void *data, size_t len, char *msg, size_t cap)
{
	int err = lutf_cluster_ready(c, msg, cap);

	if (err)
		return err;
	return nerr(kvStore_Put(NULL, lutf_cluster_kv(c, name), key, data, (int)len), msg, cap,
		    "registry put");
}

int lutf_cluster_manifest_put(struct lutf_cluster *c, const struct lutf_cluster_manifest *m,
			      uint64_t *rev, char *msg, size_t cap)
{
	char buf[4096], key[2 * LUTF_CLUSTER_NAME + 2];
	int n = lutf_cluster_manifest_encode(m, buf, sizeof(buf));
	int err = n < 0 ? n : lutf_cluster_ready(c, msg, cap);

	if (err)
		return err;
	snprintf(key, sizeof(key), "%s.%s", m->tenant, m->function);
	return nerr(kvStore_Put(rev, c->fns, key, buf, n), msg, cap, "registry put");
}

int lutf_cluster_manifest_get(struct lutf_cluster *c, const char *tenant, const char *fn,
			      struct lutf_cluster_manifest *m, uint64_t *rev, char *msg, size_t cap)
{
	char key[2 * LUTF_CLUSTER_NAME + 2];
	kvEntry *e = NULL;
	natsStatus s;
	int err = lutf_cluster_ready(c, msg, cap);

	if (err)
		return err;
	snprintf(key, sizeof(key), "%s.%s", tenant, fn);
	s = kvStore_Get(&e, c->fns, key);
	if (s != NATS_OK)
		return nerr(s, msg, cap, key);
	err = lutf_cluster_manifest_decode(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), key, m,
					   msg, cap);
	if (rev)
		*rev = kvEntry_Revision(e);
	kvEntry_Destroy(e);
	return err;
}

int lutf_cluster_manifest_delete(struct lutf_cluster *c, const char *tenant, const char *fn,
				 char *msg, size_t cap)
{
	char key[2 * LUTF_CLUSTER_NAME + 2];
	kvEntry *e = NULL;
	natsStatus s;
	int err = lutf_cluster_ready(c, msg, cap);

	if (err)
		return err;
	snprintf(key, sizeof(key), "%s.%s", tenant, fn);
	s = kvStore_Get(&e, c->fns, key);
	kvEntry_Destroy(e);
	if (s != NATS_OK)
		return nerr(s, msg, cap, key);
	return nerr(kvStore_Delete(c->fns, key), msg, cap, "registry delete");
}

int lutf_cluster_kv_each(struct lutf_cluster *c, const char *name,
			 void (*fn)(void *arg, const char *key, const void *val, size_t len,
				    uint64_t rev),
			 void *arg, char *msg, size_t cap)
{
	kvKeysList keys = {0};
	kvStore *kv;
	natsStatus s;
	int err = lutf_cluster_ready(c, msg, cap);

	if (err)
		return err;
	kv = lutf_cluster_kv(c, name);
	s = kvStore_Keys(&keys, kv, NULL);
	if (s == NATS_NOT_FOUND)
		return 0; /* an empty bucket */
	if (s != NATS_OK)
		return nerr(s, msg, cap, name);
	for (int i = 0; i < keys.Count; i++) {
		kvEntry *e = NULL;

		if (kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK)
			continue; /* deleted (or expired) meanwhile */
		fn(arg, keys.Keys[i], kvEntry_Value(e), (size_t)kvEntry_ValueLen(e),
		   kvEntry_Revision(e));
		kvEntry_Destroy(e);
	}
	kvKeysList_Destroy(&keys);
	return 0;
}
