/* SPDX-License-Identifier: MIT */
/*
 * lutf on NATS JetStream (issue #15; docs/cluster.md): the cluster registry
 * (KV bucket "lutf_fns", one manifest per function), artifacts by sha256 in
 * stream "LUTF_ARTIFACTS" (chunked), node heartbeats in KV "lutf_nodes" (TTL),
 * and the node side that converges one lutfd to the registry. Built only when
 * libnats is found (LUTF_HAVE_CLUSTER).
 */
#ifndef LUTF_CLUSTER_H
#define LUTF_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LUTF_CLUSTER_FNS "lutf_fns"
#define LUTF_CLUSTER_NODES "lutf_nodes"
#define LUTF_CLUSTER_ARTIFACTS "LUTF_ARTIFACTS"
#define LUTF_CLUSTER_ART_SUBJ "lutf.art" /* .<sha256>.<chunk> */
#define LUTF_CLUSTER_CHUNK (256u * 1024) /* under the server's 1 MiB max_payload */
#define LUTF_CLUSTER_MAX_ARTIFACT (64u << 20)
#define LUTF_CLUSTER_NODE_TTL_MS 5000
#define LUTF_CLUSTER_NAME 64
/* A write to NATS that cannot finish in this long (the server stopped
 * reading) drops the connection, which libnats then dials again (store.c):
 * the longest lutfd's loop waits on a stuck server. */
#define LUTF_CLUSTER_WRITE_DEADLINE_MS 1000

/* One function's manifest: the value of key "<tenant>.<function>". */
struct lutf_cluster_manifest {
	char tenant[LUTF_CLUSTER_NAME], app[LUTF_CLUSTER_NAME], function[LUTF_CLUSTER_NAME];
	char symbol[128];
	char tier[32]; /* "" = the node's default_tier */
	bool paused;
	bool is_public;
	uint32_t timeout_ms, memory_mb, max_concurrency; /* 0 = default */
	char sha256[65];				 /* lower-case hex of the .so */
	uint64_t size;
	uint32_t chunks;
	uint32_t replicas; /* nodes that run it (rendezvous hashing); 0 = every node */
};

/* Text form ("key=value" lines) into buf. Returns the length, or -ENOSPC. */
int lutf_cluster_manifest_encode(const struct lutf_cluster_manifest *m, char *buf, size_t cap);
/* Parse and check every field (names, digest, bounds, chunks agree with
 * size); key, when not NULL, must be "<tenant>.<function>". Returns 0 or
 * -EINVAL with the reason in msg. */
int lutf_cluster_manifest_decode(const void *data, size_t len, const char *key,
				 struct lutf_cluster_manifest *m, char *msg, size_t cap);
/* Rendezvous placement: is node among the replicas nodes (of the n live
 * ones) that score highest for key? replicas 0 or >= n: every node. */
bool lutf_cluster_placed(const char *key, uint32_t replicas, const char *node,
			 char (*nodes)[LUTF_CLUSTER_NAME], size_t n);
/* Lower-case hex sha256 of data into out[65]. */
void lutf_cluster_sha256(const void *data, size_t len, char out[65]);

/* ---- a connection (store.c) ---- */
struct lutf_cluster_opts {
	const char *url;   /* "nats://h:p[,nats://h:p...]" */
	const char *creds; /* a .creds file, or NULL */
	const char *token; /* or NULL */
	const char *name;  /* connection name, or NULL */
	bool retry;	   /* a node: connect in the background when no server answers */
	/* retry: where the redial of a first connection that never came up
	 * says so (lutfd's log), or NULL */
	void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
};
struct lutf_cluster;
/* Connect and open (creating when missing) the buckets and the stream.
 * Returns 0 or -errno with msg filled. With opts->retry a server that does
 * not answer yet is not an error: lutf_cluster_ready says when it does. */
int lutf_cluster_open(const struct lutf_cluster_opts *o, struct lutf_cluster **out, char *msg,
		      size_t cap);
void lutf_cluster_close(struct lutf_cluster *c);
/* The buckets are open (a retrying connection opens them on first use).
 * Returns 0 or -errno with msg filled. */
int lutf_cluster_ready(struct lutf_cluster *c, char *msg, size_t cap);
/* Store the artifact (chunks; skipped when its digest is there already),
 * fill m->sha256, size and chunks. Returns 0 or -errno with msg. */
int lutf_cluster_artifact_put(struct lutf_cluster *c, const void *so, size_t len,
			      struct lutf_cluster_manifest *m, char *msg, size_t cap);
/* Fetch m's artifact and check its digest and size. Returns 0 with *so
 * (malloc'ed) and *len, or -errno (-EBADMSG: digest mismatch) with msg. */
int lutf_cluster_artifact_get(struct lutf_cluster *c, const struct lutf_cluster_manifest *m,
			      void **so, size_t *len, char *msg, size_t cap);
/* Put a manifest under its key; *rev gets the revision. Returns 0 or -errno. */
int lutf_cluster_manifest_put(struct lutf_cluster *c, const struct lutf_cluster_manifest *m,
			      uint64_t *rev, char *msg, size_t cap);
/* The manifest of tenant.fn. Returns 0, -ENOENT or -errno with msg. */
int lutf_cluster_manifest_get(struct lutf_cluster *c, const char *tenant, const char *fn,
			      struct lutf_cluster_manifest *m, uint64_t *rev, char *msg,
			      size_t cap);
/* Delete tenant.fn from the registry. Returns 0, -ENOENT or -errno with msg. */
int lutf_cluster_manifest_delete(struct lutf_cluster *c, const char *tenant, const char *fn,
				 char *msg, size_t cap);
/* Raw put (tests: a malformed manifest). Returns 0 or -errno with msg. */
int lutf_cluster_kv_put_raw(struct lutf_cluster *c, const char *bucket, const char *key,
			    const void *data, size_t len, char *msg, size_t cap);
/* Raw chunk publish (tests: a tampered artifact). Returns 0 or -errno. */
int lutf_cluster_chunk_put_raw(struct lutf_cluster *c, const char *sha256, uint32_t idx,
			       const void *data, size_t len, char *msg, size_t cap);
/* Every key of bucket: fn(arg, key, value, len, revision) in key order.
 * Returns 0 or -errno with msg. */
int lutf_cluster_kv_each(struct lutf_cluster *c, const char *bucket,
			 void (*fn)(void *arg, const char *key, const void *val, size_t len,
				    uint64_t rev),
			 void *arg, char *msg, size_t cap);

/* ---- sync calls between nodes (invoke.c) ---- */
#define LUTF_CLUSTER_INV_SUBJ "lutf.inv"	/* .<tenant>.<function>, queue group "lutf" */
#define LUTF_CLUSTER_FORWARDED "lutf-forwarded" /* header: never forwarded again */

/* A forwarded call's answer, as the serving node's lutfd gave it. */
struct lutf_cluster_reply {
	uint64_t cookie;
	uint32_t status, detail;
	char error[256];
	char content_type[128];
	void *output; /* malloc'ed (the receiver frees it), or NULL */
	size_t output_len;
};

/*
 * Send a call of tenant/fn to a node that serves it (queue group); its
 * answer comes to the node's on_reply with cookie, on a libnats thread; no
 * node serving it: status UNKNOWN_FUNCTION. Never waits for the answer.
 * Returns 0, or -ENOTCONN (not connected: the caller answers locally).
 */
int lutf_cluster_forward(const char *tenant, const char *fn, const void *input, size_t len,
			 const char *content_type, uint32_t timeout_ms, const char *key,
			 uint64_t cookie);

/*
 * A call another node forwarded (or a nats:// client sent) to this node,
 * parsed on a libnats thread and handed to the node's on_call, which owns it
 * from then on. The pointers are into the message and live as long as the
 * call does.
 */
struct lutf_cluster_call {
	char tenant[LUTF_CLUSTER_NAME], fn[LUTF_CLUSTER_NAME];
	const void *input;
	size_t input_len;
	const char *content_type; /* Lutf-Content-Type, or NULL */
	const char *key;	  /* Lutf-Key, or NULL */
	uint32_t timeout_ms;	  /* Lutf-Timeout-Ms; 0: none given */
	bool by_node;		  /* Lutf-Forwarded: node (the first node checked the key) */
	void *msg;		  /* the natsMsg (invoke.c's) */
};
/* Answer call (any thread; err, out, ct may be NULL) and free it: exactly
 * once per call. */
void lutf_cluster_call_answer(struct lutf_cluster_call *call, uint32_t status, uint32_t detail,
			      const char *err, const void *out, size_t len, const char *ct);

/* ---- durable async calls (async.c) ---- */
#define LUTF_CLUSTER_ASYNC "LUTF_ASYNC"		/* work queue: lutf.async.<tenant>.<fn>.<id> */
#define LUTF_CLUSTER_DLQ "LUTF_DLQ"		/* dead letters: lutf.dlq.<tenant>.<fn> */
#define LUTF_CLUSTER_CALLBACKS "LUTF_CALLBACKS" /* work queue: lutf.cb.<tenant>.<fn>.<id> */
#define LUTF_CLUSTER_RESULTS "lutf_results"	/* KV: <id> -> result, TTL */
#define LUTF_CLUSTER_RESULT_TTL_MS (24ull * 3600 * 1000)
#define LUTF_CLUSTER_ASYNC_TRIES 5 /* retryable statuses, then the dead-letter stream */
#define LUTF_CLUSTER_ID 64	   /* an id: [A-Za-z0-9_-]{1,63} */

/* Store a call of tenant/fn in the work queue. id: the caller's (dedup by
 * Nats-Msg-Id within the stream's 2-minute window) or "" to get a fresh one
 * (filled, LUTF_CLUSTER_ID bytes). *dup is set when the queue had it
 * already. Returns 0 or -errno with msg. */
int lutf_cluster_async_submit(struct lutf_cluster *c, const char *tenant, const char *fn,
			      const void *input, size_t len, char *id, bool *dup, char *msg,
			      size_t cap);
/* The same with a callback URL (NULL or "": none), checked by
 * lutf_cluster_callback_check; the result is POSTed there once stored. */
int lutf_cluster_async_submit_cb(struct lutf_cluster *c, const char *tenant, const char *fn,
				 const void *input, size_t len, char *id, const char *callback,
				 bool *dup, char *msg, size_t cap);
#define LUTF_CLUSTER_CALLBACK_MAX 512 /* bytes of a callback URL */
/* A callback URL: "http://host[:port][/path]", visible ASCII, shorter than
 * LUTF_CLUSTER_CALLBACK_MAX. Returns 0 or -EINVAL with the reason in msg. */
int lutf_cluster_callback_check(const char *url, char *msg, size_t cap);
/* The same without waiting for JetStream's acknowledgement (bulk
 * submitters: benchmarks); id must be given. lutf_cluster_async_flush waits
 * (up to timeout_ms) until every one was acknowledged. Return 0 or -errno. */
int lutf_cluster_async_submit_nowait(struct lutf_cluster *c, const char *tenant, const char *fn,
				     const void *input, size_t len, const char *id);
int lutf_cluster_async_flush(struct lutf_cluster *c, uint32_t timeout_ms);
/* The same with a callback URL (checked: -EINVAL), for bench/cluster. */
int lutf_cluster_async_submit_nowait_cb(struct lutf_cluster *c, const char *tenant, const char *fn,
					const void *input, size_t len, const char *id,
					const char *callback);
/* The stored result of id: 0 with *r filled (r->output malloc'ed) and
 * *dead (it went to the dead-letter stream), -ENOENT (not done yet, or
 * expired), or -errno with msg. */
int lutf_cluster_result_get(struct lutf_cluster *c, const char *id, struct lutf_cluster_reply *r,
			    bool *dead, char *msg, size_t cap);
/* The same, and the result's owner (tenant, fn: "" for results stored
 * before owners were), either may be NULL. */
int lutf_cluster_result_fetch(struct lutf_cluster *c, const char *id, struct lutf_cluster_reply *r,
			      bool *dead, char tenant[LUTF_CLUSTER_NAME],
			      char fn[LUTF_CLUSTER_NAME], char *msg, size_t cap);
/* Is id's call in the work queue (waiting, running or backing off)? 0
 * with its tenant and fn, -ENOENT (not there: done, unknown, or queued by a
 * lutf that did not put ids in subjects), or -errno with msg. */
int lutf_cluster_async_pending(struct lutf_cluster *c, const char *id,
			       char tenant[LUTF_CLUSTER_NAME], char fn[LUTF_CLUSTER_NAME],
			       char *msg, size_t cap);
/* Counters of this node's async worker (for /metrics). */
struct lutf_cluster_async_stats {
	uint64_t done, retried, dead, duplicates;
	/* Callback POSTs: answered 2xx; tried again later; refused (a permanent
	 * 4xx) or dropped (malformed job, result expired); dead-lettered. */
	uint64_t callbacks_ok, callbacks_retried, callbacks_failed, callbacks_dead;
};
/* The node's connection, for lutfd's other threads (HTTP /async routes):
 * NULL when no node runs; else it stays open until lutf_cluster_node_put. */
struct lutf_cluster *lutf_cluster_node_get(void);
void lutf_cluster_node_put(void);
void lutf_cluster_async_stats(struct lutf_cluster_async_stats *s);
/* Each function's MAX_CONCURRENCY (0: none) from the registry: this node's
 * async workers keep at most that many of its calls on lutfd at once.
 * Replaces the bounds of the functions named; node.c calls it. */
struct lutf_cluster_async_limit {
	char tenant[LUTF_CLUSTER_NAME], fn[LUTF_CLUSTER_NAME];
	uint32_t max_concurrency;
};
void lutf_cluster_async_limits(const struct lutf_cluster_async_limit *lim, size_t n);

/* ---- the node side (node.c), run inside lutfd ---- */
struct lutf_cluster_key; /* cluster_keys.h */
struct lutf_cluster_node_cfg {
	struct lutf_cluster_opts nats;
	const char *node;	  /* this node's name in lutf_nodes */
	const char *control_sock; /* lutfd's own control socket */
	const char *state_dir;	  /* cluster.applied lives there */
	const char *version;	  /* lutfd's version, for cluster status */
	const char *data_sock;	  /* lutfd's own data socket: async calls run there */
	/* Answers of lutf_cluster_forward (a libnats thread; NULL: no forwarding). */
	void (*on_reply)(struct lutf_cluster_reply *r);
	/* Calls sent to this node (a libnats thread; NULL: none served): on_call
	 * answers each exactly once with lutf_cluster_call_answer. */
	void (*on_call)(struct lutf_cluster_call *call);
	/* The whole lutf_keys table after each change (the keys thread; NULL: not watched). */
	int (*on_keys)(const struct lutf_cluster_key *k, size_t n);
	void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
};
/* Start the node's thread: it watches the registry and converges lutfd to
 * it through the control socket (never lutfd's loop), and beats its
 * heartbeat. It never blocks its caller on NATS. Returns 0 or -errno. */
int lutf_cluster_node_start(const struct lutf_cluster_node_cfg *cfg);
/* Stop the thread (bounded: about 300 ms), close NATS. */
void lutf_cluster_node_stop(void);

#endif /* LUTF_CLUSTER_H */
