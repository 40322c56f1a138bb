/* SPDX-License-Identifier: MIT */
/*
 * liblutf-client: talk to lutfd over its binary protocol (docs/protocol.md).
 *
 * One handle is one connection to one socket: the data socket for invoke and
 * ping, the control socket for deploy, pause, resume, delete, list, status,
 * stats and logs. A control call sent on a data socket comes back as
 * LUTF_STATUS_FORBIDDEN and lutfd closes the connection.
 *
 * ONE CLIENT HANDLE PER THREAD. A handle is not thread-safe; threads that
 * call lutfd each open their own handle (they are cheap: one socket and a
 * buffer). Different handles may be used concurrently without locking.
 *
 * Every function that can fail returns 0 on success or -errno on a transport
 * failure, as its comment says. A typed outcome from lutfd (unknown function,
 * deadline, paused, ...) is not a failure of the call: the function returns 0
 * and the enum lutf_status from <lutf/protocol.h> is in the result's status.
 *
 * After a transport failure (-ETIMEDOUT, -EPROTO, -ECONNRESET, -EPIPE, a
 * reply over the size limit, ...) the handle is poisoned: a late or half-read
 * reply could otherwise be taken for the answer to the next call. Further
 * calls return -ENOTCONN until lutf_client_reconnect() dials again. Argument
 * errors (-EINVAL) and a request too large to send (-EMSGSIZE, nothing sent)
 * leave the handle usable.
 *
 * lutfd may refuse a whole connection (too many connections: OVERLOADED;
 * control-socket credentials: FORBIDDEN) with one reply carrying request id 0,
 * then close. That reply is returned as the status of the call in progress,
 * and the handle is poisoned as lutfd has closed it.
 *
 * Two kinds of handle. struct lutf_client (lutf_client_connect) is one
 * connection and synchronous calls. struct lutf_client_async
 * (lutf_client_open, at the end of this header) spreads invocations over
 * several endpoints and connections, batches them (with io_uring, one
 * io_uring_enter sends every pending request and collects every reply) and
 * hands back completions; see its section. Both follow the rule above: ONE
 * HANDLE PER THREAD.
 */
#ifndef LUTF_CLIENT_H
#define LUTF_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lutf/protocol.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LUTF_CLIENT_DEFAULT_SOCKET "unix:///run/lutf/lutf.sock"
#define LUTF_CLIENT_DEFAULT_CONTROL "/run/lutf/control.sock"
#define LUTF_CLIENT_DEFAULT_TIMEOUT_MS 30000u /* wait for calls without their own timeout */
#define LUTF_CLIENT_DEFAULT_GRACE_MS 500u     /* extra wait past a request's own timeout */

struct lutf_client; /* opaque */

/*
 * Connect to lutfd. url is "unix:///absolute/path", a bare absolute path
 * (taken as a Unix socket), or "tcp://host:port" (host may be a name, an IPv4
 * address or a bracketed IPv6 address). Returns 0 and *out, or -EINVAL (bad
 * URL), -ENAMETOOLONG (Unix path too long), -ENOMEM, or the connect errno
 * (-ENOENT, -ECONNREFUSED, -EACCES, ...); -EHOSTUNREACH when a TCP host does
 * not resolve.
 *
 * Or "nats://host:port[,host:port...]" (up to 16 servers; user:pass@ or
 * token@ allowed; a credentials file from $LUTF_NATS_CREDS): the NATS servers
 * of a lutf cluster. Invoke then is a NATS request to lutf.inv.<tenant>.<fn>,
 * answered by a node serving it with the typed result a local call gives
 * (UNKNOWN_FUNCTION when no node serves it); request headers are not sent;
 * ping is a round trip to the NATS server; control calls return -EOPNOTSUPP;
 * the handle is never poisoned (each call has its own reply subject).
 * Returns -EINVAL for a malformed nats:// URL, -ECONNREFUSED when no server
 * answers within 2 s, -EACCES for refused credentials, -EPROTONOSUPPORT in a
 * library built without libnats. See docs/client.md, "nats:// endpoints".
 */
int lutf_client_connect(const char *url, struct lutf_client **out);

/* Close the connection and free the handle. NULL is ignored. */
void lutf_client_close(struct lutf_client *c);

/*
 * Drop the current connection (if any) and dial the same URL again; clears
 * the poisoned state. Returns 0 or -errno as lutf_client_connect.
 */
int lutf_client_reconnect(struct lutf_client *c);

/*
 * Transport timeouts of the handle. timeout_ms bounds every call whose
 * request carries no timeout of its own (control calls, ping, invoke with
 * timeout_ms 0); 0 means wait forever. grace_ms is added to an invoke's own
 * timeout_ms so that lutfd's typed DEADLINE reply arrives before the client
 * gives up. Returns 0, or -EINVAL for a NULL handle.
 */
int lutf_client_set_timeout(struct lutf_client *c, uint32_t timeout_ms, uint32_t grace_ms);

/*
 * Largest frame payload sent or accepted (default LUTF_WIRE_MAX_FRAME_DEFAULT,
 * lutfd's default). A request over it fails with -EMSGSIZE before anything is
 * sent; a reply over it fails with -EMSGSIZE before anything is allocated for
 * it. Returns 0, or -EINVAL for a NULL handle or a limit below 4096.
 */
int lutf_client_set_max_frame(struct lutf_client *c, uint32_t bytes);

#define LUTF_CLIENT_KEY_MAX 128 /* bytes of an API key, with its NUL */

/*
 * The API key sent with every invoke of the handle (lutfd requires one over
 * TCP unless the function was deployed public; docs/protocol.md "API keys").
 * A new handle takes $LUTF_KEY when set; key NULL or "" sends none. The
 * asynchronous handle (lutf_client_open) takes $LUTF_KEY at open. Returns 0,
 * or -EINVAL (NULL handle, key of LUTF_CLIENT_KEY_MAX bytes or more).
 */
int lutf_client_set_key(struct lutf_client *c, const char *key);

/* ---- data socket ---- */

struct lutf_client_header {
	const char *name; /* no NUL inside, by construction */
	const char *value;
};

struct lutf_client_request {
	const void *input; /* may be NULL when input_len is 0 */
	size_t input_len;
	const char *content_type; /* NULL: not sent */
	const struct lutf_client_header *headers;
	size_t n_headers;
	/*
	 * The function's deadline, sent to lutfd (0: lutfd's default, and the
	 * client waits the handle's timeout_ms). With a deadline the client
	 * waits timeout_ms + grace_ms for the reply, then fails -ETIMEDOUT.
	 */
	uint32_t timeout_ms;
};

struct lutf_client_result {
	uint32_t status; /* enum lutf_status; lutf_status_str() names it */
	uint32_t detail; /* signal for CRASHED, syscall for KILLED_BY_POLICY; else 0 */
	void *output;	 /* malloc'ed, NUL-terminated beyond output_len; NULL if none */
	size_t output_len;
	char *content_type; /* malloc'ed or NULL */
	char *error;	    /* malloc'ed human cause of a non-OK status, or NULL */
};

/*
 * Invoke tenant/function once and wait for its reply. On return 0 *res holds
 * the reply (check res->status) and must be given back with
 * lutf_client_result_release(). Returns 0, -EINVAL (bad name or argument,
 * nothing sent), -ENOMEM, -ENOTCONN (poisoned handle), -ETIMEDOUT, -EPROTO
 * (malformed reply, wrong request id), -EMSGSIZE (reply over the limit),
 * -ECONNRESET / -EPIPE (lutfd closed the connection) or another -errno from
 * the socket. On any failure *res is empty (safe to release).
 */
int lutf_client_invoke(struct lutf_client *c, const char *tenant, const char *function,
		       const struct lutf_client_request *req, struct lutf_client_result *res);

/* Free what a result holds and zero it. NULL is ignored. */
void lutf_client_result_release(struct lutf_client_result *res);

/*
 * Round trip a PING. Returns 0 and *status (LUTF_STATUS_OK from a healthy
 * lutfd), or -errno as lutf_client_invoke.
 */
int lutf_client_ping(struct lutf_client *c, uint32_t *status);

/* ---- control socket ---- */

/*
 * Control replies in one generic shape. A row (list, status, stats, logs) is
 * a record: an ordered array of (key, value) fields, where the value is a
 * string or an unsigned integer. Keys are the TLV names in lower case
 * ("tenant", "app", "function", "state", "version", "tier", "text", "url",
 * "timeout_ms", "memory_mb", "max_concurrency", "content_type", "error") or,
 * for a COUNTER field, the counter's own name ("invocations", ...). A key may
 * repeat within a record (several "text" lines). Tags the library does not
 * know are skipped.
 *
 * Fields of a reply that sit outside any RECORD (for example TEXT lines sent
 * directly by LOGS) are gathered into one extra record, placed first.
 */
enum lutf_client_value_type {
	LUTF_CLIENT_STR = 0,
	LUTF_CLIENT_U64 = 1,
};

struct lutf_client_field {
	const char *key;
	enum lutf_client_value_type type;
	const char *str; /* LUTF_CLIENT_STR; NUL-terminated (embedded NULs cut it short) */
	uint64_t u64;	 /* LUTF_CLIENT_U64 */
};

struct lutf_client_record {
	struct lutf_client_field *fields;
	size_t n_fields;
};

struct lutf_client_reply {
	uint32_t status; /* enum lutf_status */
	uint32_t detail;
	char *error;	  /* human cause of a non-OK status, or NULL */
	uint64_t version; /* deploy: the app version lutfd assigned */
	char **urls;	  /* deploy: invoke URLs, one per function */
	size_t n_urls;
	struct lutf_client_record *records; /* list, status, stats, logs */
	size_t n_records;
};

/* Free what a reply holds and zero it. NULL is ignored. */
void lutf_client_reply_release(struct lutf_client_reply *rep);

/* The first field named key in rec, or NULL. */
const struct lutf_client_field *lutf_client_record_get(const struct lutf_client_record *rec,
						       const char *key);

struct lutf_client_export {
	const char *function; /* the name clients invoke */
	const char *symbol;   /* the symbol in the .so; NULL: same as function */
};

struct lutf_client_config {
	const char *function;
	const char *key;
	const char *value;
};

struct lutf_client_deploy {
	const char *tenant;
	const char *app;
	const char *so_path; /* read by the library; or NULL and: */
	const void *so_data; /* the shared object's bytes */
	size_t so_len;
	const struct lutf_client_export *exports; /* at least one */
	size_t n_exports;
	const char *tier;	  /* NULL: lutfd's default */
	uint32_t timeout_ms;	  /* 0: lutfd's default (the field is not sent) */
	uint32_t memory_mb;	  /* 0: default */
	uint32_t max_concurrency; /* 0: default */
	const struct lutf_client_config *config;
	size_t n_config;
	bool is_public; /* its functions need no API key (lutfctl deploy --public); added in 0.3 */
	uint32_t workers; /* the tenant's worker processes, 1..16; 0: unchanged (not sent) */
	/* NULL: native (.so); "python": a .py or .zip, symbols "module:function"; added in 0.4 */
	const char *kind;
};

/*
 * Deploy an app. On return 0 rep->version and rep->urls are filled when
 * rep->status is OK. Returns 0, -EINVAL (bad name, no export, no .so, an
 * empty symbol or config key), -EMSGSIZE (the request would pass the frame
 * limit; nothing sent), the -errno of reading so_path, or a transport -errno
 * as lutf_client_invoke.
 */
int lutf_client_deploy(struct lutf_client *c, const struct lutf_client_deploy *d,
		       struct lutf_client_reply *rep);

/*
 * Pause, resume or delete tenant/function. Returns 0 (status in rep) or
 * -EINVAL / a transport -errno as lutf_client_invoke.
 */
int lutf_client_pause(struct lutf_client *c, const char *tenant, const char *function,
		      struct lutf_client_reply *rep);
int lutf_client_resume(struct lutf_client *c, const char *tenant, const char *function,
		       struct lutf_client_reply *rep);
int lutf_client_delete(struct lutf_client *c, const char *tenant, const char *function,
		       struct lutf_client_reply *rep);
/*
 * Remove a tenant: its worker, uid, cgroup, region, app files and scratch
 * folder. A tenant that still has functions is refused (MALFORMED) unless
 * force, which deletes them first. Returns 0 (status in rep) or -EINVAL / a
 * transport -errno as lutf_client_invoke.
 */
int lutf_client_delete_tenant(struct lutf_client *c, const char *tenant, int force,
			      struct lutf_client_reply *rep);

/*
 * Rows from lutfd; tenant NULL means every tenant (lutfd filters). Each
 * returns 0 (status and records in rep) or -EINVAL (bad tenant name) or a
 * transport -errno as lutf_client_invoke.
 *   list:   one record per function: tenant, app, function, state, version, tier
 *   status: lutfd-wide counters and text first (gathered loose fields), then
 *           one record per tenant (tenant, "text" such as "watch=bpf", counters)
 *   stats:  one record per function: tenant, app, function and its counters
 *   logs:   the tenant's last limit log lines (0: lutfd's default) as "text"
 *           fields of one record; lutfd answers MALFORMED without a tenant
 */
int lutf_client_list(struct lutf_client *c, const char *tenant, struct lutf_client_reply *rep);
int lutf_client_status(struct lutf_client *c, struct lutf_client_reply *rep);
int lutf_client_stats(struct lutf_client *c, const char *tenant, struct lutf_client_reply *rep);
int lutf_client_logs(struct lutf_client *c, const char *tenant, uint32_t limit,
		     struct lutf_client_reply *rep);

/*
 * API keys of a tenant (control socket). Each returns 0 (status in rep) or
 * -EINVAL (bad tenant or id) or a transport -errno as lutf_client_invoke.
 *   key_create: one record with tenant, key_id, created (unix seconds) and
 *               key, the secret: lutfd shows it this once and keeps a hash
 *   key_list:   one record per key (tenant NULL: every tenant): tenant,
 *               key_id, created, state ("active" or "revoked"), [revoked]
 *   key_revoke: the key stops working at once, durably
 */
int lutf_client_key_create(struct lutf_client *c, const char *tenant,
			   struct lutf_client_reply *rep);
int lutf_client_key_list(struct lutf_client *c, const char *tenant, struct lutf_client_reply *rep);
int lutf_client_key_revoke(struct lutf_client *c, const char *tenant, const char *key_id,
			   struct lutf_client_reply *rep);

/* ---- asynchronous, batched invocations ---- */

/*
 * struct lutf_client_async: many invocations in flight over several
 * endpoints and connections. Submitting encodes a request into memory (no
 * system call); lutf_client_flush() hands every pending request to the
 * kernel at once, and lutf_client_reap() does that too and then collects
 * replies, matched to their calls by request id, as completions.
 *
 * ONE HANDLE PER THREAD: like struct lutf_client, a handle is not
 * thread-safe; threads open their own.
 *
 * Transport: io_uring (one ring per handle; a flush or a reap is one
 * io_uring_enter for every connection), or plain non-blocking sockets
 * (writev, recv and poll) when io_uring is refused (EPERM, ENOSYS, ...), when
 * opts.flags has LUTF_CLIENT_NO_URING, or when the environment has
 * LUTF_CLIENT_URING=off. Both give the same API and semantics;
 * lutf_client_backend() says which one runs.
 *
 * Every submitted call ends in exactly one completion. Its error is 0 when
 * lutfd answered (the typed status is in result.status; a connection that
 * lutfd refuses with request id 0 answers every call written to it with the
 * refusal's status), or:
 *   -ETIMEDOUT     no reply within the call's wait (below); a late reply is
 *                  dropped. The call may or may not have run.
 *   -ECONNRESET    the connection died after the request was written to it:
 *                  lutfd closed it, a socket error, or the client dropped it
 *                  because a reply on it was malformed (-EPROTO) or over the
 *                  frame limit. The call may or may not have run, and it is
 *                  NOT resent: calls run at most once. Retry it yourself if
 *                  that is safe.
 *   -ENOMEM        no memory to decode the reply (the connection stays).
 * A call that was not yet written when its connection died moves to another
 * live connection (another endpoint when there is one) and is sent there: it
 * never ran, so this is not a retry. While no connection is live such calls
 * wait, under their own deadlines, for a reconnect. A dead connection is
 * dialled again with an exponential backoff (retry_min_ms doubling up to
 * retry_max_ms) from within lutf_client_flush and lutf_client_reap; dialling
 * is a blocking connect.
 *
 * A call waits timeout_ms + grace_ms when its request has a timeout_ms (the
 * deadline sent to lutfd), else opts.timeout_ms. The wait starts at submit.
 */

#define LUTF_CLIENT_NO_URING 0x1u /* opts.flags: use plain sockets even if io_uring works */

struct lutf_client_opts {
	const char *const *endpoints; /* URLs as for lutf_client_connect; a nats:// one alone */
	size_t n_endpoints;	      /* 1..64 */
	uint32_t conns_per_endpoint;  /* 0: 1; endpoints x conns at most 1024 */
	uint32_t queue_depth;	      /* calls submitted and not yet reaped; 0: 1024; max 1<<20 */
	uint32_t timeout_ms;	      /* wait of a call without its own timeout; 0: 30 s */
	uint32_t grace_ms;	      /* added to a call's own timeout; 0: 500 ms */
	uint32_t max_frame;	      /* payload limit both ways; 0: 6 MiB; min 4096 */
	uint32_t retry_min_ms;	      /* reconnect backoff; 0: 50 ms */
	uint32_t retry_max_ms;	      /* 0: 2000 ms */
	uint32_t flags;		      /* LUTF_CLIENT_NO_URING */
};

struct lutf_client_async; /* opaque */

struct lutf_client_completion {
	uint64_t user_data; /* as given to lutf_client_submit */
	int error;	    /* 0: result holds lutfd's answer; else -errno (above) */
	uint32_t endpoint;  /* index in opts.endpoints of the connection that carried it */
	struct lutf_client_result result; /* release with lutf_client_result_release */
};

/*
 * Open an asynchronous handle: dial every connection of every endpoint.
 * Returns 0 and *out when at least one connection is up (the others are
 * retried with backoff), or -EINVAL (bad options or URL), -ENAMETOOLONG,
 * -ENOMEM, the io_uring setup -errno other than a refusal (refusals fall
 * back to sockets), or the dial -errno of the first endpoint when no
 * connection could be made. A nats:// endpoint must be the only one, with
 * conns_per_endpoint 0 or 1 (else -EINVAL); its calls go as NATS requests
 * (see lutf_client_connect) and complete as below, or with -EPROTO (a reply
 * without a valid status) or -EMSGSIZE (a reply over max_frame).
 */
int lutf_client_open(const struct lutf_client_opts *opts, struct lutf_client_async **out);

/*
 * Close every connection and free the handle; calls not yet reaped are
 * dropped (they would complete with -ECANCELED). NULL is ignored.
 */
void lutf_client_async_close(struct lutf_client_async *a);

/*
 * Queue one invocation of tenant/function. Encodes it (req is copied and
 * may be reused at once) and picks a connection; nothing is sent until the
 * next lutf_client_flush or lutf_client_reap. Returns 0, or -EINVAL (bad
 * name or argument), -EAGAIN (queue_depth calls are unreaped: reap first),
 * -EMSGSIZE (over the frame limit) or -ENOMEM; nothing is queued on failure.
 */
int lutf_client_submit(struct lutf_client_async *a, const char *tenant, const char *function,
		       const struct lutf_client_request *req, uint64_t user_data);

/*
 * Hand every queued request to the kernel without waiting: with io_uring one
 * io_uring_enter for all connections. Returns the number of requests handed
 * over (0 or more) or -errno of the ring (the handle stays usable).
 */
int lutf_client_flush(struct lutf_client_async *a);

/*
 * Flush, then collect up to max completions, waiting up to wait_ms for the
 * first one (0: do not wait; -1: until one arrives, bounded by the earliest
 * call deadline). Returns the number of completions written to out (0 when
 * none arrived in time or nothing is outstanding), or -EINVAL, or -errno of
 * the ring or poll. Each completion's result must be released.
 */
int lutf_client_reap(struct lutf_client_async *a, struct lutf_client_completion *out, size_t max,
		     int wait_ms);

/* Calls submitted and not yet reaped. */
size_t lutf_client_outstanding(const struct lutf_client_async *a);

/* "io_uring", "socket" or "nats" (a nats:// endpoint): the transport this handle uses. */
const char *lutf_client_backend(const struct lutf_client_async *a);

/* Counters of a handle, for tests and benchmarks. */
struct lutf_client_async_stats {
	uint64_t submitted, completed;
	uint64_t enters;	/* io_uring_enter / poll system calls made for I/O */
	uint64_t failed_over;	/* unsent calls moved off a dead connection */
	uint64_t conn_lost;	/* connections that died */
	uint64_t reconnects;	/* successful re-dials */
	uint32_t live_conns;	/* connections up now */
};
int lutf_client_async_stats(const struct lutf_client_async *a, struct lutf_client_async_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* LUTF_CLIENT_H */
