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

void lutf_http_format(const struct lutf_http_server *s, struct lutf_http_buf *b,
		      const struct lutf_http_out *o)
{
	struct lutf_http_buf err = {0};
	const void *body = o->body;
	size_t blen = o->body_len;
	const char *ctype = o->ctype;

	if (o->cause) {
		lutf_http_buf_printf(&err, "%s%s%s\n", o->cause, o->msg && o->msg[0] ? ": " : "",
				     o->msg ? o->msg : "");
		body = err.data;
		blen = err.len;
		ctype = "text/plain; charset=utf-8";
	} else if (!safe_ctype(ctype)) {
		ctype = "application/octet-stream";
	}
	lutf_http_buf_printf(b, "HTTP/1.1 %d %s\r\n", o->code, reason(o->code));
	if (s->date[0])
		lutf_http_buf_printf(b, "Date: %s\r\n", s->date);
	lutf_http_buf_printf(b, "Content-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n",
			     ctype, blen, o->close ? "close" : "keep-alive");
	if (o->retry_after)
		lutf_http_buf_printf(b, "Retry-After: %u\r\n", o->retry_after);
	if (o->allow)
		lutf_http_buf_printf(b, "Allow: %s\r\n", o->allow);
	if (o->location && safe_location(o->location))
		lutf_http_buf_printf(b, "Location: %s\r\n", o->location);
	if (o->code == 401) /* RFC 6750: the scheme the client must use */
		lutf_http_buf_printf(b, "WWW-Authenticate: Bearer realm=\"lutf\"\r\n");
	if (o->cause)
		lutf_http_buf_printf(b, "X-Lutf-Status: %s\r\n", o->cause);
	lutf_http_buf_append(b, "\r\n", 2);
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

/* Write every ready response at the head of the queue. */
void lutf_http_flush(struct lutf_http_conn *c)
{
	while (!c->dead && c->out_seq < c->next_seq) {
		struct lutf_http_slot *q = &c->q[c->out_seq % c->lim.max_pending];
		int err;

		if (!q->ready)
			break;
		err = c->s->ops.write(c->s->ctx, c, q->resp.data, q->resp.len);
		lutf_http_buf_free(&q->resp);
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
