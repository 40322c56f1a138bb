/* SPDX-License-Identifier: MIT */
/*
 * The HTTP engine's request side: llhttp callbacks, limits, routing and the
 * connection's life (pause at max_pending, close after errors, timeouts).
 * Invariants: hbuf never holds more than max_header bytes and a body never
 * more than max_body; a request gets its sequence number when it completes
 * or fails, so every parsed request has exactly one slot and one response.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lutf/protocol.h>

#include "http_internal.h"

#define CONTINUE_100 "HTTP/1.1 100 Continue\r\n\r\n"

void lutf_http_limits_default(struct lutf_http_limits *lim)
{
	lim->max_header = 8192;
	lim->max_body = LUTF_WIRE_MAX_FRAME_DEFAULT;
	lim->max_rps = 0;
	lim->max_pending = 64;
	lim->request_ms = 10000;
	lim->idle_ms = 60000;
}

static struct lutf_http_conn *conn_of(llhttp_t *p)
{
	return p->data;
}

/* Record an error for feed to answer; the connection closes after it. */
static int fail(struct lutf_http_conn *c, int code, const char *cause, const char *msg)
{
	if (!c->err_code) {
		c->err_code = code;
		c->err_cause = cause;
		snprintf(c->err_msg, sizeof(c->err_msg), "%s", msg);
	}
	return -1;
}

static int hbuf_add(struct lutf_http_conn *c, const char *at, size_t len, bool lower)
{
	if (c->hlen + len + 1 > c->lim.max_header)
		return fail(c, 431, lutf_status_str(LUTF_STATUS_TOO_LARGE),
			    "request header larger than the limit");
	for (size_t i = 0; i < len; i++)
		c->hbuf[c->hlen + i] = lower && at[i] >= 'A' && at[i] <= 'Z' ? at[i] + 32 : at[i];
	c->hlen += len;
	return 0;
}

/* Bound the header block by stream position: skipped headers count too. */
static int check_pos(struct lutf_http_conn *c, const char *at, size_t len)
{
	uint64_t end = c->stream_off + (uint64_t)(at - c->chunk) + len;

	if (c->begin_known && end - c->begin_off > c->lim.max_header)
		return fail(c, 431, lutf_status_str(LUTF_STATUS_TOO_LARGE),
			    "request header larger than the limit");
	return 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct lutf_http_conn *c = conn_of(p);

	c->in_msg = true;
	c->begin_known = false;
	c->begin_ms = c->now_ms;
	c->last_active_ms = c->now_ms;
	c->hlen = c->url_len = 0;
	c->field_open = c->keep_field = false;
	c->ctype_off = -1;
	c->auth_off = -1;
	c->nmeta = 0;
	c->expect_continue = false;
	c->route = R_NONE;
	c->body_seen = 0;
	c->body.len = 0;
	return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
	struct lutf_http_conn *c = conn_of(p);

	if (!c->begin_known) {
		c->begin_off = c->stream_off + (uint64_t)(at - c->chunk);
		c->begin_known = true;
	}
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	return check_pos(conn_of(p), at, len) ?: hbuf_add(conn_of(p), at, len, false);
}

static int on_url_complete(llhttp_t *p)
{
	struct lutf_http_conn *c = conn_of(p);

	c->url_len = c->hlen;
	return hbuf_add(c, "", 1, false);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct lutf_http_conn *c = conn_of(p);

	if (check_pos(c, at, len))
		return -1;
	if (!c->field_open) {
		c->field_open = true;
		c->field_off = c->hlen;
	}
	return hbuf_add(c, at, len, true);
}

/* Headers a function sees besides Content-Type: these and every X-*. */
static bool wanted(const char *name)
{
	return !strncmp(name, "x-", 2) || !strcmp(name, "accept") || !strcmp(name, "user-agent") ||
	       !strcmp(name, "content-type") || !strcmp(name, "expect") ||
	       !strcmp(name, "authorization");
}

static int on_header_field_complete(llhttp_t *p)
{
	struct lutf_http_conn *c = conn_of(p);

	c->field_open = false;
	if (hbuf_add(c, "", 1, false))
		return -1;
	c->keep_field = wanted(c->hbuf + c->field_off);
	if (!c->keep_field)
		c->hlen = c->field_off;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct lutf_http_conn *c = conn_of(p);

	if (check_pos(c, at, len))
		return -1;
	return c->keep_field ? hbuf_add(c, at, len, false) : 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct lutf_http_conn *c = conn_of(p);
	const char *name;
	size_t voff;

	if (!c->keep_field)
		return 0;
	c->keep_field = false;
	name = c->hbuf + c->field_off;
	voff = c->field_off + strlen(name) + 1;
	while (c->hlen > voff && (c->hbuf[c->hlen - 1] == ' ' || c->hbuf[c->hlen - 1] == '\t'))
		c->hlen--;
	if (hbuf_add(c, "", 1, false))
		return -1;
	if (!strcmp(name, "expect")) {
		c->expect_continue = !strcasecmp(c->hbuf + voff, "100-continue");
		c->hlen = c->field_off;
	} else if (!strcmp(name, "content-type") && c->ctype_off < 0) {
		c->ctype_off = (int)voff;
	} else if (!strcmp(name, "authorization")) {
		/* For lutfd alone (API keys): never among a function's headers.
		 * A second one makes the request ambiguous: it gets none. */
		if (c->auth_off == -1)
			c->auth_off = (int)voff;
		else
			c->auth_off = -2;
	} else if (c->nmeta < LUTF_HTTP_MAX_META) {
		c->meta_off[c->nmeta][0] = (uint32_t)c->field_off;
		c->meta_off[c->nmeta][1] = (uint32_t)voff;
		c->nmeta++;
	} else {
		c->hlen = c->field_off; /* bounded: the rest are dropped */
	}
	return 0;
}

/* Route the request target (hbuf[0..url_len), NUL-terminated). */
static void route(struct lutf_http_conn *c, uint8_t method)
{
	char *path = c->hbuf, *q = strchr(path, '?'), *tenant, *slash;
	bool get = method == HTTP_GET || method == HTTP_HEAD;

	if (q)
		*q = 0;
	if (!strncmp(path, "/fn/", 4)) {
		tenant = path + 4;
		slash = strchr(tenant, '/');
		if (!slash || slash == tenant || slash - tenant >= (long)sizeof(c->tenant) ||
		    !slash[1] || strlen(slash + 1) >= sizeof(c->name) || strchr(slash + 1, '/')) {
			c->route = R_NOT_FOUND;
			return;
		}
		memcpy(c->tenant, tenant, (size_t)(slash - tenant));
		c->tenant[slash - tenant] = 0;
		strcpy(c->name, slash + 1);
		if (!c->s->ops.invoke)
			c->route = R_NOT_FOUND; /* an admin listener: no functions */
		else
			c->route = method == HTTP_POST ? R_INVOKE : R_BAD_METHOD;
	} else if (c->s->ops.route && c->s->ops.route_prefix &&
		   !strncmp(path, c->s->ops.route_prefix, strlen(c->s->ops.route_prefix))) {
		c->route = R_OTHER;
	} else if (!strcmp(path, "/healthz")) {
		c->route = get ? R_HEALTHZ : R_BAD_METHOD;
	} else if (!strcmp(path, "/metrics") && c->s->ops.metrics) {
		c->route = get ? R_METRICS : R_BAD_METHOD;
	} else {
		c->route = R_NOT_FOUND;
	}
}

static int on_headers_complete(llhttp_t *p)
{
	struct lutf_http_conn *c = conn_of(p);
	const char *malformed = lutf_status_str(LUTF_STATUS_MALFORMED);

	if (llhttp_get_http_major(p) != 1 || llhttp_get_http_minor(p) > 1)
		return fail(c, 400, malformed, "unsupported HTTP version");
	route(c, llhttp_get_method(p));
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->lim.max_body)
		return fail(c, 413, lutf_status_str(LUTF_STATUS_TOO_LARGE),
			    "request body larger than the limit");
	if ((c->route == R_INVOKE || c->route == R_OTHER) && (p->flags & F_CONTENT_LENGTH) &&
	    c->body.cap < p->content_length) {
		char *n = realloc(c->body.data, (size_t)p->content_length);

		if (!n)
			return fail(c, 503, lutf_status_str(LUTF_STATUS_OVERLOADED),
				    "out of memory for the body");
		c->body.data = n;
		c->body.cap = (size_t)p->content_length;
	}
	/* 100 Continue only when nothing is queued before it: an interim
	 * response must not overtake earlier answers. */
	if (c->expect_continue && (c->route == R_INVOKE || c->route == R_OTHER) && !c->pending &&
	    c->s->ops.write(c->s->ctx, c, CONTINUE_100, sizeof(CONTINUE_100) - 1))
		c->dead = true;
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct lutf_http_conn *c = conn_of(p);

	c->body_seen += len;
	if (c->body_seen > c->lim.max_body)
		return fail(c, 413, lutf_status_str(LUTF_STATUS_TOO_LARGE),
			    "request body larger than the limit");
	if (c->route == R_INVOKE || c->route == R_OTHER) {
		lutf_http_buf_append(&c->body, at, len);
		if (c->body.err)
			return fail(c, 503, lutf_status_str(LUTF_STATUS_OVERLOADED),
				    "out of memory for the body");
	}
	return 0;
}

/* A chunk's size is known before its bytes: one over what the body may still
 * take is refused now (413), not after waiting for bytes that never come. */
static int on_chunk_header(llhttp_t *p)
{
	struct lutf_http_conn *c = conn_of(p);
	uint64_t left = c->body_seen < c->lim.max_body ? c->lim.max_body - c->body_seen : 0;

	if (p->content_length > left)
		return fail(c, 413, lutf_status_str(LUTF_STATUS_TOO_LARGE),
			    "chunk larger than the body limit allows");
	return 0;
}

/* Give the next sequence number a slot. */
static uint64_t take_seq(struct lutf_http_conn *c, bool close, bool head)
{
	uint64_t seq = c->next_seq++;
	struct lutf_http_slot *q = &c->q[seq % c->lim.max_pending];

	q->used = true;
	q->ready = false;
	q->close = close;
	q->head = head;
	c->pending++;
	return seq;
}

static void answer_simple(struct lutf_http_conn *c, uint64_t seq, const char *ctype,
			  const char *body, size_t len)
{
	struct lutf_http_out o = {.code = 200, .ctype = ctype, .body = body, .body_len = len};

	lutf_http_queue(c, seq, &o);
}

static void answer_metrics(struct lutf_http_conn *c, uint64_t seq)
{
	struct lutf_http_buf b = {0};
	char why[256];
	int err, code;

	code = c->s->ops.authorize_metrics
		   ? c->s->ops.authorize_metrics(c->s->ctx,
						 c->auth_off >= 0 ? c->hbuf + c->auth_off : NULL,
						 why, sizeof(why))
		   : 0;
	if (code) {
		struct lutf_http_out o = {
		    .code = code,
		    .cause = lutf_status_str(LUTF_STATUS_FORBIDDEN),
		    .msg = why,
		};

		lutf_http_queue(c, seq, &o);
		return;
	}
	err = c->s->ops.metrics ? c->s->ops.metrics(c->s->ctx, c, &b) : -ENOSYS;

	if (!err && b.err)
		err = b.err;
	if (err) {
		struct lutf_http_out o = {
		    .code = 500,
		    .cause = lutf_status_str(err == -ENOMEM ? LUTF_STATUS_OUT_OF_MEMORY
							    : LUTF_STATUS_FUNCTION_ERROR),
		    .msg = strerror(-err),
		};

		lutf_http_queue(c, seq, &o);
	} else {
		answer_simple(c, seq, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	}
	lutf_http_buf_free(&b);
}

static void invoke(struct lutf_http_conn *c, uint64_t seq, llhttp_t *p, bool other)
{
	struct lutf_http_meta meta[LUTF_HTTP_MAX_META];
	struct lutf_http_req r = {
	    .seq = seq,
	    .method = other ? llhttp_method_name(llhttp_get_method(p)) : "POST",
	    .path = c->hbuf,
	    .http_minor = llhttp_get_http_minor(p),
	    .keep_alive = !c->closing,
	    .tenant = other ? "" : c->tenant,
	    .name = other ? "" : c->name,
	    .content_type = c->ctype_off >= 0 ? c->hbuf + c->ctype_off : NULL,
	    .authorization = c->auth_off >= 0 ? c->hbuf + c->auth_off : NULL,
	    .meta = meta,
	    .nmeta = c->nmeta,
	    .body = (const uint8_t *)(c->body.data ? c->body.data : ""),
	    .body_len = c->body.len,
	};

	for (unsigned i = 0; i < c->nmeta; i++) {
		meta[i].name = c->hbuf + c->meta_off[i][0];
		meta[i].value = c->hbuf + c->meta_off[i][1];
	}
	if (other)
		c->s->ops.route(c->s->ctx, c, &r);
	else
		c->s->ops.invoke(c->s->ctx, c, &r);
}

static int on_message_complete(llhttp_t *p)
{
	struct lutf_http_conn *c = conn_of(p);
	uint8_t method = llhttp_get_method(p);
	bool keep = llhttp_should_keep_alive(p);
	uint64_t seq, sec = c->now_ms / 1000;

	c->in_msg = false;
	c->last_active_ms = c->now_ms;
	if (!keep)
		c->closing = true; /* bytes after this request are not parsed */
	seq = take_seq(c, !keep, method == HTTP_HEAD);
	if (sec != c->rate_sec) {
		c->rate_sec = sec;
		c->rate_count = 0;
	}
	if (c->lim.max_rps && ++c->rate_count > c->lim.max_rps) {
		struct lutf_http_out o = {
		    .code = 429,
		    .cause = lutf_status_str(LUTF_STATUS_RATE_LIMITED),
		    .msg = "too many requests on this connection",
		    .retry_after = 1,
		};

		lutf_http_queue(c, seq, &o);
	} else if (c->route == R_INVOKE || c->route == R_OTHER) {
		invoke(c, seq, p, c->route == R_OTHER);
	} else if (c->route == R_HEALTHZ) {
		answer_simple(c, seq, "text/plain; charset=utf-8", "ok\n", 3);
	} else if (c->route == R_METRICS) {
		answer_metrics(c, seq);
	} else {
		char msg[128];
		struct lutf_http_out o = {.code = 404, .msg = msg};

		if (c->route == R_BAD_METHOD) {
			bool fn = !strncmp(c->hbuf, "/fn/", 4);

			o.code = 405;
			o.cause = lutf_status_str(LUTF_STATUS_MALFORMED);
			o.allow = fn ? "POST" : "GET, HEAD";
			snprintf(msg, sizeof(msg), "%s is not allowed here (Allow: %s)",
				 llhttp_method_name(method), o.allow);
		} else {
			o.cause = lutf_status_str(LUTF_STATUS_UNKNOWN_FUNCTION);
			snprintf(msg, sizeof(msg), "no route for %.100s", c->hbuf);
		}
		lutf_http_queue(c, seq, &o);
	}
	/* A large body buffer is not kept across requests. */
	if (c->body.cap > (1u << 20))
		lutf_http_buf_free(&c->body);
	c->body.len = 0;
	if (c->closing || c->dead || c->pending >= c->lim.max_pending)
		return HPE_PAUSED;
	return 0;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

int lutf_http_conn_new(const struct lutf_http_server *s, uint64_t now_ms,
		       struct lutf_http_conn **out)
{
	struct lutf_http_conn *c;

	if (!s->lim.max_pending || s->lim.max_header < 64 || !s->ops.write)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->s = s;
	c->lim = s->lim; /* hbuf and q are sized by it: a later change is for new connections */
	c->q = calloc(s->lim.max_pending, sizeof(*c->q));
	c->hbuf = malloc(s->lim.max_header);
	if (!c->q || !c->hbuf) {
		free(c->q);
		free(c->hbuf);
		free(c);
		return -ENOMEM;
	}
	llhttp_init(&c->p, HTTP_REQUEST, &settings);
	c->p.data = c;
	c->now_ms = c->last_active_ms = now_ms;
	*out = c;
	return 0;
}

void lutf_http_conn_free(struct lutf_http_conn *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->lim.max_pending; i++)
		lutf_http_buf_free(&c->q[i].resp);
	lutf_http_buf_free(&c->spare);
	lutf_http_buf_free(&c->body);
	free(c->q);
	free(c->hbuf);
	free(c);
}

static const char *parse_error_text(llhttp_t *p, llhttp_errno_t e)
{
	switch (e) {
	case HPE_INVALID_METHOD:
		return "bad method";
	case HPE_INVALID_VERSION:
		return "bad HTTP version";
	case HPE_INVALID_URL:
		return "bad request target";
	case HPE_INVALID_HEADER_TOKEN:
		return "bad header";
	case HPE_INVALID_CONTENT_LENGTH:
	case HPE_UNEXPECTED_CONTENT_LENGTH:
		return "bad Content-Length";
	case HPE_INVALID_CHUNK_SIZE:
		return "bad chunk size";
	case HPE_INVALID_TRANSFER_ENCODING:
		return "bad Transfer-Encoding";
	default:
		return llhttp_get_error_reason(p) ? llhttp_get_error_reason(p) : "bad request";
	}
}

/* Answer the error recorded in c (or code/cause/msg) and stop parsing. */
static void fatal(struct lutf_http_conn *c)
{
	struct lutf_http_out o = {
	    .code = c->err_code,
	    .cause = c->err_cause,
	    .msg = c->err_msg,
	    .close = true,
	    .retry_after = c->err_code == 503 ? 1 : 0,
	};

	c->in_msg = false;
	c->closing = true;
	if (c->pending >= c->lim.max_pending) {
		c->dead = true; /* cannot happen: parsing stops at max_pending */
		return;
	}
	lutf_http_queue(c, take_seq(c, true, false), &o);
}

size_t lutf_http_feed(struct lutf_http_conn *c, const void *data, size_t len, uint64_t now_ms)
{
	const char *at = data, *end = at + len;

	c->now_ms = now_ms;
	while (at < end && !c->closing && !c->dead && c->pending < c->lim.max_pending) {
		llhttp_errno_t e;
		const char *stop = end;

		if (c->llpaused) {
			llhttp_resume(&c->p);
			c->llpaused = false;
		}
		c->chunk = at;
		e = llhttp_execute(&c->p, at, (size_t)(end - at));
		if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
			stop = llhttp_get_error_pos(&c->p);
			if (e == HPE_PAUSED)
				c->llpaused = true;
			else
				llhttp_resume_after_upgrade(&c->p); /* no upgrades: go on as HTTP/1.1 */
		} else if (e != HPE_OK && !c->err_code) {
			fail(c, 400, lutf_status_str(LUTF_STATUS_MALFORMED),
			     parse_error_text(&c->p, e));
		}
		c->stream_off += (uint64_t)(stop - at);
		at = stop;
		/* Headers are bounded by position too: whitespace llhttp skips is not
		 * seen by any span callback. */
		if (!c->err_code && c->in_msg && c->route == R_NONE && c->begin_known &&
		    c->stream_off - c->begin_off > c->lim.max_header)
			fail(c, 431, lutf_status_str(LUTF_STATUS_TOO_LARGE),
			     "request header larger than the limit");
		if (c->err_code)
			fatal(c);
	}
	/* After close, input is dropped: nothing more will be parsed. */
	return c->closing || c->dead ? len : (size_t)(at - (const char *)data);
}

void lutf_http_eof(struct lutf_http_conn *c)
{
	c->in_msg = false;
	c->closing = true;
}

void lutf_http_set_user(struct lutf_http_conn *c, void *user)
{
	c->user = user;
}

void *lutf_http_user(const struct lutf_http_conn *c)
{
	return c->user;
}

bool lutf_http_wants_input(const struct lutf_http_conn *c)
{
	return !c->closing && !c->dead && c->pending < c->lim.max_pending;
}

bool lutf_http_done(const struct lutf_http_conn *c)
{
	return c->dead || (c->closing && !c->pending);
}

unsigned lutf_http_pending(const struct lutf_http_conn *c)
{
	return c->pending;
}

bool lutf_http_tick(struct lutf_http_conn *c, uint64_t now_ms)
{
	const struct lutf_http_limits *lim = &c->lim;

	c->now_ms = now_ms;
	if (c->closing || c->dead)
		return lutf_http_done(c);
	if (c->in_msg && lim->request_ms && now_ms - c->begin_ms >= lim->request_ms) {
		char msg[64];

		snprintf(msg, sizeof(msg), "request not complete within %u ms", lim->request_ms);
		fail(c, 408, lutf_status_str(LUTF_STATUS_MALFORMED), msg);
		fatal(c);
	} else if (!c->in_msg && !c->pending && lim->idle_ms &&
		   now_ms - c->last_active_ms >= lim->idle_ms) {
		c->closing = true;
	}
	return lutf_http_done(c);
}
