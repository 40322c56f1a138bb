/* SPDX-License-Identifier: MIT */
/* The HTTP engine test connection (see http_harness.h). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/protocol.h>

#include "http_harness.h"

static void th_invoke(void *ctx, struct lutf_http_conn *c, const struct lutf_http_req *r)
{
	struct th *t = ctx;
	struct th_req *q;
	size_t off = 0;

	cr_assert_lt(t->nreq, TH_MAX_REQS);
	q = &t->req[t->nreq++];
	q->seq = r->seq;
	snprintf(q->tenant, sizeof(q->tenant), "%s", r->tenant);
	snprintf(q->name, sizeof(q->name), "%s", r->name);
	snprintf(q->ctype, sizeof(q->ctype), "%s", r->content_type ? r->content_type : "");
	q->meta[0] = 0;
	for (unsigned i = 0; i < r->nmeta; i++)
		off += (size_t)snprintf(q->meta + off, sizeof(q->meta) - off, "%s=%s;",
					r->meta[i].name, r->meta[i].value);
	q->body = malloc(r->body_len + 1);
	memcpy(q->body, r->body, r->body_len);
	q->body[r->body_len] = 0;
	q->body_len = r->body_len;
	q->keep_alive = r->keep_alive;
	q->minor = r->http_minor;
	if (!t->hold) {
		struct lutf_http_resp resp = {.status = LUTF_STATUS_OK,
					      .content_type = "text/plain",
					      .body = r->body,
					      .body_len = r->body_len};

		cr_assert_eq(lutf_http_respond(c, r->seq, &resp), 0);
	}
}

static int th_metrics(void *ctx, struct lutf_http_conn *c, struct lutf_http_buf *out)
{
	struct th *t = ctx;

	if (!t->metrics)
		return -EIO;
	lutf_http_buf_append(out, t->metrics, strlen(t->metrics));
	return 0;
}

static int th_write(void *ctx, struct lutf_http_conn *c, const void *data, size_t len)
{
	struct th *t = ctx;

	if (t->write_err)
		return t->write_err;
	lutf_http_buf_append(&t->out, data, len);
	lutf_http_buf_append(&t->out, "", 1); /* keep out.data a C string */
	t->out.len--;
	return 0;
}

void th_init(struct th *t, const struct lutf_http_limits *lim)
{
	memset(t, 0, sizeof(*t));
	if (lim)
		t->s.lim = *lim;
	else
		lutf_http_limits_default(&t->s.lim);
	t->s.ops.invoke = th_invoke;
	t->s.ops.metrics = th_metrics;
	t->s.ops.write = th_write;
	t->s.ctx = t;
	t->now = 1000000;
	cr_assert_eq(lutf_http_conn_new(&t->s, t->now, &t->c), 0);
}

void th_fini(struct th *t)
{
	lutf_http_conn_free(t->c);
	for (unsigned i = 0; i < t->nreq; i++)
		free(t->req[i].body);
	lutf_http_buf_free(&t->out);
}

size_t th_feed(struct th *t, const char *s, size_t len)
{
	return lutf_http_feed(t->c, s, len ? len : strlen(s), t->now);
}

void th_feed_split(struct th *t, const char *s, size_t len, const size_t *cuts, unsigned ncuts)
{
	size_t at = 0;

	for (unsigned i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		cr_assert_eq(lutf_http_feed(t->c, s + at, to - at, t->now), to - at,
			     "cut %u at %zu", i, to);
		at = to;
	}
}

char *th_take(struct th *t)
{
	char *s = malloc(t->out.len + 1);

	memcpy(s, t->out.data ? t->out.data : "", t->out.len);
	s[t->out.len] = 0;
	t->out.len = 0;
	return s;
}

char *th_echo_resp(const char *body, size_t len, bool close)
{
	char *s;

	cr_assert(asprintf(&s,
			   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
			   "%zu\r\nConnection: %s\r\n\r\n%.*s",
			   len, close ? "close" : "keep-alive", (int)len, body) > 0);
	return s;
}
