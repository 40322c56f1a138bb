/* SPDX-License-Identifier: MIT */
/* Inside the cluster module: the libnats handles behind a connection. */
#ifndef LUTF_CLUSTER_INT_H
#define LUTF_CLUSTER_INT_H

#include <nats/nats.h>

#include "cluster.h"

natsConnection *lutf_cluster_conn(struct lutf_cluster *c);
/* The opened bucket LUTF_CLUSTER_FNS or LUTF_CLUSTER_NODES (after ready). */
kvStore *lutf_cluster_kv(struct lutf_cluster *c, const char *bucket);

/* invoke.c, driven by node.c's thread. Start answering forwarded calls
 * (reply inbox, serving threads) once c is connected. Returns 0 or -errno. */
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

/* callback.c: results' callback URLs, POSTed by their own threads. Start
 * and stop them (with the async workers). */
void lutf_cluster_cb_start(void (*log)(const char *fmt, ...));
void lutf_cluster_cb_stop(void);
/* Queue a POST of r to url (r and its output are copied). Never waits: a
 * full queue drops it (counted as failed). */
void lutf_cluster_cb_push(const char *url, const char *id, const struct lutf_cluster_reply *r,
			  bool dead);
void lutf_cluster_cb_stats(uint64_t *ok, uint64_t *failed);

#endif /* LUTF_CLUSTER_INT_H */
