/* SPDX-License-Identifier: MIT */
/*
 * The HTTP engine's response side: byte buffers, the status line and header
 * block, and the reorder queue that writes responses in request order.
 * Invariant: a slot is written only when every earlier sequence number was;
 * nothing a function controls reaches the header block unchecked (its
 * content type must be visible ASCII, else it is replaced).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lutf/protocol.h>

#include "http_internal.h"

void lutf_http_buf_free(struct lutf_http_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool buf_reserve(struct lutf_http_buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->err)
		return false;
	if (b->len + more <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->err = -ENOMEM;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void lutf_http_buf_append(struct lutf_http_buf *b, const void *data, size_t len)
{
	if (!len || !buf_reserve(b, len))
		return;
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void lutf_http_buf_printf(struct lutf_http_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_reserve(b, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void lutf_http_date(struct lutf_http_server *s, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 507: return "Insufficient Storage";
	}
	return "Unknown";
}

/* A content type a function chose may go into the header block only if it is
 * 1..127 visible ASCII characters (no CR/LF: no header injection). */
static bool safe_ctype(const char *t)
{
	size_t i;

	if (!t || !t[0])
		return false;
	for (i = 0; t[i]; i++)
		if (t[i] < 0x20 || t[i] > 0x7e || i >= 127)
			return false;
	return true;
}

/* A Location value: URI characters only (no CR/LF: no header injection). */
static bool safe_location(const char *l)
{
	static const char ok[] = "!#$%&'()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_"
				 "abcdefghijklmnopqrstuvwxyz~";

	return l[0] && l[strspn(l, ok)] == 0;
}

/* Literal text: its length at compile time, no format parsing. */
#define APPEND_LIT(b, lit) lutf_http_buf_append((b), (lit), sizeof(lit) - 1)

static void append_str(struct lutf_http_buf *b, const char *str)
{
	lutf_http_buf_append(b, str, strlen(str));
}

static void append_u64(struct lutf_http_buf *b, uint64_t v)
{
	char d[24];
	size_t i = sizeof(d);

	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i);
	lutf_http_buf_append(b, d + i, sizeof(d) - i);
}

/*
 * The status line and header block by appends, not printf: this runs once per
 * response on lutfd's one event-loop thread, where a printf's format parsing
 * (twice, to size the buffer) was a visible share of a no-op call.
 */
void lutf_http_format(const struct lutf_http_server *s, struct lutf_http_buf *b,
		      const struct lutf_http_out *o)
{
	struct lutf_http_buf err = {0};
	const void *body = o->body;
	size_t blen = o->body_len;
	const char *ctype = o->ctype;
	int code = o->code >= 100 && o->code <= 999 ? o->code : 500;

	if (o->cause) {
		lutf_http_buf_printf(&err, "%s%s%s\n", o->cause, o->msg && o->msg[0] ? ": " : "",
				     o->msg ? o->msg : "");
		body = err.data;
		blen = err.len;
		ctype = "text/plain; charset=utf-8";
	} else if (!safe_ctype(ctype)) {
		ctype = "application/octet-stream";
	}
	if (code == 200) {
		APPEND_LIT(b, "HTTP/1.1 200 OK\r\n");
	} else {
		APPEND_LIT(b, "HTTP/1.1 ");
		append_u64(b, (uint64_t)code);
		APPEND_LIT(b, " ");
		append_str(b, reason(code));
		APPEND_LIT(b, "\r\n");
	}
	if (s->date[0]) {
		APPEND_LIT(b, "Date: ");
		append_str(b, s->date);
		APPEND_LIT(b, "\r\n");
	}
	APPEND_LIT(b, "Content-Type: ");
	append_str(b, ctype);
	APPEND_LIT(b, "\r\nContent-Length: ");
	append_u64(b, blen);
	if (o->close)
		APPEND_LIT(b, "\r\nConnection: close\r\n");
	else
		APPEND_LIT(b, "\r\nConnection: keep-alive\r\n");
	if (o->retry_after) {
		APPEND_LIT(b, "Retry-After: ");
		append_u64(b, o->retry_after);
		APPEND_LIT(b, "\r\n");
	}
	if (o->allow) {
		APPEND_LIT(b, "Allow: ");
		append_str(b, o->allow);
		APPEND_LIT(b, "\r\n");
	}
	if (o->location && safe_location(o->location)) {
		APPEND_LIT(b, "Location: ");
		append_str(b, o->location);
		APPEND_LIT(b, "\r\n");
	}
	if (code == 401) /* RFC 6750: the scheme the client must use */
		APPEND_LIT(b, "WWW-Authenticate: Bearer realm=\"lutf\"\r\n");
	if (o->cause) {
		APPEND_LIT(b, "X-Lutf-Status: ");
		append_str(b, o->cause);
		APPEND_LIT(b, "\r\n");
	}
	APPEND_LIT(b, "\r\n");
	if (!o->head)
		lutf_http_buf_append(b, body, blen);
	if (err.err)
		b->err = err.err;
	lutf_http_buf_free(&err);
}

void lutf_http_format_error(const struct lutf_http_server *s, struct lutf_http_buf *b,
			    int http_code, const char *cause, const char *msg)
{
	struct lutf_http_out o = {
	    .code = http_code,
	    .cause = cause,
	    .msg = msg,
	    .close = true,
	    .retry_after = http_code == 503 || http_code == 429 ? 1 : 0,
	};

	lutf_http_format(s, b, &o);
}

#define SLOT_KEEP 1024 /* bytes of the response buffer a connection keeps */

/* Write every ready response at the head of the queue. */
void lutf_http_flush(struct lutf_http_conn *c)
{
	while (!c->dead && c->out_seq < c->next_seq) {
		struct lutf_http_slot *q = &c->q[c->out_seq % c->lim.max_pending];
		int err;

		if (!q->ready)
			break;
		err = c->s->ops.write(c->s->ctx, c, q->resp.data, q->resp.len);
		/* One small buffer is kept per connection for its next
		 * response (no malloc per call); any other is freed, so an idle
		 * keep-alive connection holds at most SLOT_KEEP bytes of it. */
		q->resp.len = 0;
		if (!c->spare.data && !q->resp.err && q->resp.cap <= SLOT_KEEP)
			c->spare = q->resp;
		else
			lutf_http_buf_free(&q->resp);
		memset(&q->resp, 0, sizeof(q->resp));
		q->ready = q->used = false;
		c->out_seq++;
		c->pending--;
		c->last_active_ms = c->now_ms;
		if (err) {
			c->dead = true;
			c->closing = true;
		}
		if (q->close) {
			/* Nothing after a closing response is ever written. */
			c->closing = true;
			c->closed_out = true;
			break;
		}
	}
}

int lutf_http_queue(struct lutf_http_conn *c, uint64_t seq, struct lutf_http_out *o)
{
	struct lutf_http_slot *q;

	if (seq < c->out_seq || seq >= c->next_seq)
		return -EINVAL;
	q = &c->q[seq % c->lim.max_pending];
	if (!q->used || q->ready)
		return -EINVAL;
	o->head = q->head;
	/* Once a closing response is queued, later requests cannot be answered:
	 * the peer asked to close, or the stream broke. */
	o->close = o->close || q->close;
	q->close = o->close;
	if (!q->resp.data && c->spare.data) {
		q->resp = c->spare; /* len 0: see lutf_http_flush */
		memset(&c->spare, 0, sizeof(c->spare));
	}
	lutf_http_format(c->s, &q->resp, o);
	if (q->resp.err) {
		lutf_http_buf_free(&q->resp);
		c->dead = c->closing = true;
		return -ENOMEM;
	}
	q->ready = true;
	lutf_http_flush(c);
	return 0;
}

int lutf_http_respond(struct lutf_http_conn *c, uint64_t seq, const struct lutf_http_resp *r)
{
	struct lutf_http_out o = {.code = r->code ? r->code : lutf_status_http(r->status),
				  .location = r->location};

	if (r->status == LUTF_STATUS_OK) {
		o.ctype = r->content_type;
		o.body = r->body;
		o.body_len = r->body_len;
	} else {
		o.cause = lutf_status_str(r->status);
		o.msg = r->msg;
		if (o.code == 503 || o.code == 429)
			o.retry_after = r->retry_after_s ? r->retry_after_s : 1;
	}
	return lutf_http_queue(c, seq, &o);
}
