/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 gateway's protocol engine: one struct lutf_http_conn per
 * connection, with no I/O of its own. The connection layer feeds it the bytes
 * it read (lutf_http_feed) and gets back, through callbacks, complete requests
 * (invoke / metrics) and response bytes to send (write). Parsing is llhttp's
 * (Debian's node-llhttp sources, built as an object library).
 *
 * Invariants: responses leave in request order whatever order invocations
 * complete in (a queue indexed by sequence number); every request parsed gets
 * exactly one response; memory per connection is bounded by the limits below
 * (header bytes, body bytes, max_pending responses held for reordering).
 * Everything runs on the connection's thread. Functions that can fail return
 * 0 or -errno.
 */
#ifndef LUTF_HTTP_H
#define LUTF_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LUTF_HTTP_MAX_META 16 /* request headers passed to a function */

struct lutf_http_limits {
	uint32_t max_header;  /* request line + headers, bytes; over: 431 and close */
	uint32_t max_body;    /* body bytes (declared or chunked); over: 413 and close */
	uint32_t max_rps;     /* requests per connection per second; over: 429; 0 = none */
	uint32_t max_pending; /* requests parsed and not yet answered; at it parsing pauses */
	uint32_t request_ms;  /* a request begun and not complete this long: 408 and close; 0 = none */
	uint32_t idle_ms;     /* no request begun and none pending this long: close; 0 = none */
};

/* Defaults: 8 KiB header, 6 MiB body, no rate limit, 64 pending, 10 s, 60 s. */
void lutf_http_limits_default(struct lutf_http_limits *lim);

struct lutf_http_meta {
	const char *name; /* lower case, NUL-terminated */
	const char *value;
};

/* A complete request; every pointer is valid only during the callback. */
struct lutf_http_req {
	uint64_t seq;	     /* per connection, from 0; answer with lutf_http_respond */
	const char *method;  /* "POST", "GET", ... */
	const char *path;    /* the request target up to '?' */
	uint8_t http_minor;  /* 0 or 1 (HTTP/1.x) */
	bool keep_alive;     /* the connection stays open after this response */
	const char *tenant;  /* POST /fn/<tenant>/<name> only */
	const char *name;
	const char *content_type; /* NULL when absent */
	const char *authorization; /* the Authorization header's value; NULL when absent */
	const struct lutf_http_meta *meta; /* selected headers: see http.c */
	unsigned nmeta;
	const uint8_t *body;
	size_t body_len;
};

/* A response to a request; status is enum lutf_status. */
struct lutf_http_resp {
	uint32_t status;
	const char *content_type; /* OK only; NULL = application/octet-stream */
	const void *body;	  /* OK: the output; errors: ignored */
	size_t body_len;
	const char *msg;	  /* errors: the human cause (body "<cause>: <msg>") */
	uint32_t retry_after_s;	  /* 503: Retry-After (0 = 1) */
	uint16_t code;		  /* errors: this HTTP code instead of the status's
				   * (401 also sends WWW-Authenticate: Bearer); 0 = the status's;
				   * OK: 2xx other than 200 (202) */
	const char *location;	  /* a Location header (visible ASCII), or NULL */
};

/* A growable byte buffer (metrics text, response assembly). */
struct lutf_http_buf {
	char *data;
	size_t len, cap;
	int err; /* sticky -ENOMEM */
};

void lutf_http_buf_append(struct lutf_http_buf *b, const void *data, size_t len);
__attribute__((format(printf, 2, 3))) void lutf_http_buf_printf(struct lutf_http_buf *b,
								const char *fmt, ...);
void lutf_http_buf_free(struct lutf_http_buf *b);

struct lutf_http_conn;

struct lutf_http_ops {
	/*
	 * POST /fn/<tenant>/<name> (NULL: /fn/ answers 404, as on an admin listener). Answer with lutf_http_respond(c, req->seq, ...),
	 * now (from inside this call) or later; copy what you keep of req.
	 */
	void (*invoke)(void *ctx, struct lutf_http_conn *c, const struct lutf_http_req *req);
	/*
	 * GET /metrics (NULL: 404): append the exposition with lutf_http_buf_append to out.
	 * Returns 0 or -errno (then 500).
	 */
	int (*metrics)(void *ctx, struct lutf_http_conn *c, struct lutf_http_buf *out);
	/*
	 * Before metrics (NULL: anyone may read them): authorization is the
	 * request's Authorization value or NULL. Returns 0 (allowed), 401 or 403
	 * (denied; msg says why).
	 */
	int (*authorize_metrics)(void *ctx, const char *authorization, char *msg, size_t cap);
	/*
	 * Any method on a path starting with route_prefix (both NULL: none):
	 * the request, body included, as for invoke (tenant and name empty).
	 */
	const char *route_prefix;
	void (*route)(void *ctx, struct lutf_http_conn *c, const struct lutf_http_req *req);
	/* Response bytes, in order. Returns 0 or -errno (the connection closes). */
	int (*write)(void *ctx, struct lutf_http_conn *c, const void *data, size_t len);
};

/*
 * Shared by every connection of one listener; a connection copies lim when it
 * opens (a change applies to later connections) and uses ops and ctx live. date: an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT")
 * the owner refreshes once a second (lutf_http_date); empty = no Date header.
 */
struct lutf_http_server {
	struct lutf_http_limits lim;
	struct lutf_http_ops ops;
	void *ctx;
	char date[40];
};

/* Write the IMF-fixdate of unix time t into s->date. */
void lutf_http_date(struct lutf_http_server *s, int64_t t);

/* Returns 0 or -ENOMEM. now_ms: any monotonic millisecond clock. */
int lutf_http_conn_new(const struct lutf_http_server *s, uint64_t now_ms,
		       struct lutf_http_conn **out);
/* Whatever the owner ties to the connection (NULL until set). */
void lutf_http_set_user(struct lutf_http_conn *c, void *user);
void *lutf_http_user(const struct lutf_http_conn *c);

/* Responses still pending are dropped (their later lutf_http_respond must not come). */
void lutf_http_conn_free(struct lutf_http_conn *c);

/*
 * Parse bytes the peer sent. Returns the bytes consumed: all of len, except
 * when max_pending requests are waiting for responses (or the peer asked
 * to close after a request still pending): then parsing stops after a whole
 * request and the caller keeps the rest for a later call, once
 * lutf_http_wants_input() says so again. After a fatal error (an error
 * response that closes), input is consumed and dropped.
 */
size_t lutf_http_feed(struct lutf_http_conn *c, const void *data, size_t len, uint64_t now_ms);

/*
 * Answer request seq (exactly once). Responses are written in request order:
 * this one is held until every earlier one was written. Returns 0, -EINVAL
 * (not a pending sequence number) or -ENOMEM (the connection closes).
 */
int lutf_http_respond(struct lutf_http_conn *c, uint64_t seq, const struct lutf_http_resp *r);

/* The peer closed its side (EOF): a request cut short is dropped. */
void lutf_http_eof(struct lutf_http_conn *c);

/* True while the engine would parse more input now. */
bool lutf_http_wants_input(const struct lutf_http_conn *c);
/* True once the last response was written and the connection should close. */
bool lutf_http_done(const struct lutf_http_conn *c);
/* Requests parsed and not yet answered. */
unsigned lutf_http_pending(const struct lutf_http_conn *c);

/*
 * Timeouts; call every few hundred ms. A request begun more than request_ms
 * ago and not complete is answered 408 and the connection closes (slowloris);
 * a connection with nothing begun and nothing pending for idle_ms is done.
 * Returns true when the connection should close (lutf_http_done()).
 */
bool lutf_http_tick(struct lutf_http_conn *c, uint64_t now_ms);

/*
 * Format one whole error response outside any connection's request flow (for
 * example 503 when a connection is refused at max_conns), Connection: close.
 * cause: a status text of include/lutf/protocol.h. Result in b (check b->err).
 */
void lutf_http_format_error(const struct lutf_http_server *s, struct lutf_http_buf *b,
			    int http_code, const char *cause, const char *msg);

#endif /* LUTF_HTTP_H */
