/* SPDX-License-Identifier: MIT */
/* Inside the cluster module: the libnats handles behind a connection. */
#ifndef LUTF_CLUSTER_INT_H
#define LUTF_CLUSTER_INT_H

#include <stdint.h>

#include <nats/nats.h>

#include "cluster.h"

natsConnection *lutf_cluster_conn(struct lutf_cluster *c);
/* The opened bucket LUTF_CLUSTER_FNS or LUTF_CLUSTER_NODES (after ready). */
kvStore *lutf_cluster_kv(struct lutf_cluster *c, const char *bucket);

/* invoke.c, driven by node.c's thread. Start forwarding (reply inbox) and
 * handing calls to cfg->on_call once c is connected. Returns 0 or -errno. */
int lutf_cluster_inv_open(struct lutf_cluster *c, const struct lutf_cluster_node_cfg *cfg);
/* Serve exactly the functions "<tenant>.<fn>" in keys (queue subscriptions). */
void lutf_cluster_inv_sync(char (*keys)[2 * LUTF_CLUSTER_NAME + 2], size_t n);
void lutf_cluster_inv_close(void);

/* async.c: the work-queue stream, dead letters and results exist (after
 * ready). Returns 0 or -errno with msg. */
int lutf_cluster_async_ready(struct lutf_cluster *c, char *msg, size_t cap);
/* Start / stop the node's async workers (driven by node.c's thread). */
int lutf_cluster_async_open(struct lutf_cluster *c, const struct lutf_cluster_node_cfg *cfg);
void lutf_cluster_async_close(void);
jsCtx *lutf_cluster_js(struct lutf_cluster *c);
kvStore **lutf_cluster_results(struct lutf_cluster *c);
int lutf_cluster_replicas(struct lutf_cluster *c);
int lutf_cluster_nerr(natsStatus s, char *msg, size_t cap, const char *what);
/* CLOCK_MONOTONIC in ms. */
uint64_t lutf_cluster_now_ms(void);
/* How many times c's connection has reconnected (libnats' statistics). */
uint64_t lutf_cluster_reconnects(struct lutf_cluster *c);

/* callback.c: callback URLs, delivered durably (a job in stream
 * LUTF_CALLBACKS per stored result that has one). */
#define CB_STREAM_MSGS 100000	     /* jobs waiting over the cluster; then refused */
#define CB_STREAM_BYTES (64ll << 20) /* and their bytes */
/* The callback stream exists (created when missing). Returns 0 or -errno
 * with msg. */
int lutf_cluster_cb_stream(struct lutf_cluster *c, char *msg, size_t cap);
/* Start / stop this node's delivery threads (with the async workers);
 * ack_wait_ms: the calls' ack wait (the jobs' is one POST's bound longer). */
void lutf_cluster_cb_start(struct lutf_cluster *c, int64_t ack_wait_ms,
			   void (*log)(const char *fmt, ...));
void lutf_cluster_cb_stop(void);
/* Queue id's callback to url (synchronous: stored when it returns; dedup
 * by "cb-<id>" within 2 minutes, so a duplicate run queues none). Returns
 * 0, -EINVAL (a bad url or id: nothing to queue) or -EIO (not stored: the
 * caller must not ack the call). */
int lutf_cluster_cb_queue(struct lutf_cluster *c, const char *url, const char *id,
			  const char *tenant, const char *fn);
/* The job message of id's callback, with reply (or NULL) as its reply
 * subject (a caller that publishes it and awaits JetStream's acknowledgement
 * itself).
 * Returns 0 with *out, -EINVAL (a bad url or id) or -ENOMEM. */
int lutf_cluster_cb_job(const char *url, const char *id, const char *tenant, const char *fn,
			const char *reply, natsMsg **out);
/* One POST of r to url, bounded. Returns the HTTP code, or -errno
 * (-EINVAL: a bad url or id). */
int lutf_cluster_cb_post(const char *url, const char *id, const struct lutf_cluster_reply *r,
			 bool dead);
enum lutf_cluster_cb_verdict {
	LUTF_CLUSTER_CB_OK,	 /* 2xx: acked */
	LUTF_CLUSTER_CB_RETRY,	 /* delivered again after lutf_cluster_cb_backoff_ms */
	LUTF_CLUSTER_CB_REFUSED, /* a permanent 4xx (or a bad url): acked, failed */
	LUTF_CLUSTER_CB_DEAD,	 /* tries used up: the dead-letter stream */
};
/* What a POST's code (or -errno) at its tries-th delivery (of max) means. */
enum lutf_cluster_cb_verdict lutf_cluster_cb_verdict(int code, uint64_t tries, uint32_t max);
/* The wait before delivery tries + 1: 250 ms doubling, at most 30 s. */
int64_t lutf_cluster_cb_backoff_ms(uint64_t tries);
void lutf_cluster_cb_stats(uint64_t *ok, uint64_t *retried, uint64_t *failed, uint64_t *dead);

#endif /* LUTF_CLUSTER_INT_H */
