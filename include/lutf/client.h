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
 * The calls here are synchronous. The handle is built to grow an asynchronous
 * submit/reap interface (request ids already increase per handle and replies
 * are matched by id); those functions will be added beside these, not
 * instead of them.
 */
#ifndef LUTF_CLIENT_H
#define LUTF_CLIENT_H

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

#ifdef __cplusplus
}
#endif

#endif /* LUTF_CLIENT_H */
