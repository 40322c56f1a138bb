/* SPDX-License-Identifier: MIT */
/*
 * The HTTP engine on real byte streams: parsed requests and the response
 * bytes, byte for byte, whatever way the stream is cut.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/protocol.h>

#include "http_harness.h"

static struct th t;

static void fini(void)
{
	th_fini(&t);
}

TestSuite(http, .fini = fini, .timeout = 60);

static char *post(const char *path, const char *body)
{
	char *s;

	cr_assert(asprintf(&s,
			   "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
			   "Content-Length: %zu\r\n\r\n%s",
			   path, strlen(body), body) > 0);
	return s;
}

static void expect_out(const char *want)
{
	char *got = th_take(&t);

	cr_assert_str_eq(got, want);
	free(got);
}

Test(http, post_echo_byte_for_byte)
{
	char *req = post("/fn/demo/echo", "hello");

	th_init(&t, NULL);
	cr_assert_eq(th_feed(&t, req, 0), strlen(req));
	cr_assert_eq(t.nreq, 1);
	cr_assert_str_eq(t.req[0].tenant, "demo");
	cr_assert_str_eq(t.req[0].name, "echo");
	cr_assert_str_eq(t.req[0].ctype, "text/plain");
	cr_assert_str_eq(t.req[0].body, "hello");
	cr_assert(t.req[0].keep_alive);
	expect_out("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
		   "Connection: keep-alive\r\n\r\nhello");
	cr_assert(lutf_http_wants_input(t.c));
	cr_assert_not(lutf_http_done(t.c));
	free(req);
}

Test(http, date_header_when_the_server_sets_one)
{
	th_init(&t, NULL);
	lutf_http_date(&t.s, 784111777);
	th_feed(&t, "GET /healthz HTTP/1.1\r\n\r\n", 0);
	expect_out("HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
		   "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
		   "Connection: keep-alive\r\n\r\nok\n");
}

/* Three pipelined requests (Content-Length, chunked, GET) cut at every offset. */
Test(http, every_split_point_gives_the_same_requests_and_bytes)
{
	static const char stream[] =
	    "POST /fn/a/one?x=1 HTTP/1.1\r\nContent-Length: 3\r\nX-Trace: t1\r\n\r\nabc"
	    "POST /fn/a/two HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: a/b\r\n\r\n"
	    "4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n"
	    "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t len = sizeof(stream) - 1;
	char *want;

	th_init(&t, NULL);
	th_feed_split(&t, stream, len, NULL, 0);
	want = th_take(&t);
	cr_assert_eq(t.nreq, 2);
	cr_assert_str_eq(t.req[0].name, "one");
	cr_assert_str_eq(t.req[0].meta, "x-trace=t1;");
	cr_assert_str_eq(t.req[1].body, "wikipedia");
	cr_assert_str_eq(t.req[1].ctype, "a/b");
	cr_assert(strstr(want, "\r\n\r\nok\n"));
	th_fini(&t);

	for (size_t cut = 1; cut < len; cut++) {
		th_init(&t, NULL);
		th_feed_split(&t, stream, len, &cut, 1);
		cr_assert_eq(t.nreq, 2, "cut %zu", cut);
		cr_assert_str_eq(t.req[0].body, "abc", "cut %zu", cut);
		cr_assert_str_eq(t.req[0].meta, "x-trace=t1;", "cut %zu", cut);
		cr_assert_str_eq(t.req[1].body, "wikipedia", "cut %zu", cut);
		cr_assert_str_eq(t.req[1].ctype, "a/b", "cut %zu", cut);
		expect_out(want);
		th_fini(&t);
	}
	/* And one byte at a time. */
	{
		size_t cuts[sizeof(stream)];

		for (size_t i = 0; i < len - 1; i++)
			cuts[i] = i + 1;
		th_init(&t, NULL);
		th_feed_split(&t, stream, len, cuts, (unsigned)(len - 1));
		cr_assert_eq(t.nreq, 2);
		cr_assert_str_eq(t.req[1].body, "wikipedia");
		expect_out(want);
	}
	free(want);
}

Test(http, keep_alive_one_thousand_requests)
{
	th_init(&t, NULL);
	for (int i = 0; i < 1000; i++) {
		char body[16], *req, *want;

		snprintf(body, sizeof(body), "n%d", i);
		req = post("/fn/t/f", body);
		cr_assert_eq(th_feed(&t, req, 0), strlen(req));
		want = th_echo_resp(body, strlen(body), false);
		expect_out(want);
		free(want);
		free(req);
	}
	cr_assert_eq(t.nreq, 1000);
	cr_assert_eq(t.req[999].seq, 999);
	cr_assert_not(lutf_http_done(t.c));
}

/* A connection keeps a written response's buffer for the next one (no malloc
 * per response): large answers, small ones and an error through the same two
 * slots must each come out byte for byte, with nothing left over from the
 * answer the buffer held before. */
Test(http, reused_response_slots_leave_no_stale_bytes)
{
	struct lutf_http_limits lim;
	static char big[5000];
	char *req, *want;

	lutf_http_limits_default(&lim);
	lim.max_pending = 2;
	th_init(&t, &lim);
	memset(big, 'b', sizeof(big) - 1);
	for (int i = 0; i < 6; i++) {
		const char *body = i % 3 == 0 ? big : i % 3 == 1 ? "s" : "mid-sized answer";

		req = post("/fn/t/f", body);
		cr_assert_eq(th_feed(&t, req, 0), strlen(req));
		want = th_echo_resp(body, strlen(body), false);
		expect_out(want);
		free(want);
		free(req);
	}
	th_feed(&t, "GET /nowhere HTTP/1.1\r\n\r\n", 0);
	expect_out("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
		   "Content-Length: 40\r\nConnection: keep-alive\r\n"
		   "X-Lutf-Status: unknown function\r\n\r\n"
		   "unknown function: no route for /nowhere\n");
	req = post("/fn/t/f", "x");
	cr_assert_eq(th_feed(&t, req, 0), strlen(req));
	want = th_echo_resp("x", 1, false);
	expect_out(want);
	free(want);
	free(req);
}

Test(http, pipelined_answers_leave_in_request_order)
{
	static const unsigned order[] = {4, 2, 0, 3, 1};
	char *stream = NULL, *want = NULL;
	size_t len = 0, wlen = 0;
	FILE *s = open_memstream(&stream, &len), *w = open_memstream(&want, &wlen);

	th_init(&t, NULL);
	t.hold = true;
	for (int i = 0; i < 5; i++) {
		char *req, *resp, body[8];

		snprintf(body, sizeof(body), "r%d", i);
		req = post("/fn/t/f", body);
		resp = th_echo_resp(body, 2, false);
		fputs(req, s);
		fputs(resp, w);
		free(req);
		free(resp);
	}
	fclose(s);
	fclose(w);
	cr_assert_eq(th_feed(&t, stream, len), len);
	cr_assert_eq(t.nreq, 5);
	cr_assert_eq(lutf_http_pending(t.c), 5);
	for (unsigned k = 0; k < 5; k++) {
		struct th_req *q = &t.req[order[k]];
		struct lutf_http_resp r = {.status = LUTF_STATUS_OK,
					   .content_type = "text/plain",
					   .body = q->body,
					   .body_len = q->body_len};

		cr_assert_eq(lutf_http_respond(t.c, q->seq, &r), 0);
		cr_assert_eq(lutf_http_respond(t.c, q->seq, &r), -EINVAL, "answered twice");
		if (k < 2)
			cr_assert_eq(t.out.len, 0, "nothing before request 0 is answered");
	}
	cr_assert_eq(lutf_http_pending(t.c), 0);
	expect_out(want);
	free(stream);
	free(want);
}

Test(http, pipeline_depth_pauses_parsing)
{
	struct lutf_http_limits lim;
	char *one = post("/fn/t/f", "x"), *stream;
	size_t n1 = strlen(one), used;

	lutf_http_limits_default(&lim);
	lim.max_pending = 2;
	cr_assert(asprintf(&stream, "%s%s%s", one, one, one) > 0);
	th_init(&t, &lim);
	t.hold = true;
	used = th_feed(&t, stream, 0);
	cr_assert_eq(used, 2 * n1, "parsing stops after two whole requests");
	cr_assert_not(lutf_http_wants_input(t.c));
	cr_assert_eq(th_feed(&t, stream + used, 0), 0);
	cr_assert_eq(lutf_http_respond(t.c, 0,
				       &(struct lutf_http_resp){.status = LUTF_STATUS_OK,
								.content_type = "text/plain",
								.body = "x",
								.body_len = 1}),
		     0);
	cr_assert(lutf_http_wants_input(t.c));
	cr_assert_eq(th_feed(&t, stream + used, 0), n1);
	cr_assert_eq(t.nreq, 3);
	free(one);
	free(stream);
}

Test(http, chunked_body_with_extensions_and_trailers)
{
	static const char req[] = "POST /fn/t/f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "1\r\na\r\n1a;name=\"v\"\r\nbcdefghijklmnopqrstuvwxyz0\r\n"
				  "0\r\nX-Sum: 1\r\n\r\n";

	th_init(&t, NULL);
	cr_assert_eq(th_feed(&t, req, 0), strlen(req));
	cr_assert_eq(t.nreq, 1);
	cr_assert_str_eq(t.req[0].body, "abcdefghijklmnopqrstuvwxyz0");
	expect_out("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 27\r\n"
		   "Connection: keep-alive\r\n\r\nabcdefghijklmnopqrstuvwxyz0");
}

/* The error response every closing failure writes. */
static char *err_resp(int code, const char *reason, const char *cause, const char *msg,
		      const char *extra, bool close)
{
	char *s, *body;

	cr_assert(asprintf(&body, "%s: %s\n", cause, msg) > 0);
	cr_assert(asprintf(&s,
			   "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			   "Content-Length: %zu\r\nConnection: %s\r\n%sX-Lutf-Status: %s\r\n\r\n%s",
			   code, reason, strlen(body), close ? "close" : "keep-alive", extra, cause,
			   body) > 0);
	free(body);
	return s;
}

static void expect_closed_with(const char *want)
{
	expect_out(want);
	cr_assert(lutf_http_done(t.c));
	cr_assert_not(lutf_http_wants_input(t.c));
	/* Whatever comes next is dropped, never parsed. */
	cr_assert_eq(th_feed(&t, "GET /healthz HTTP/1.1\r\n\r\n", 0), 25);
	cr_assert_eq(t.out.len, 0);
}

Test(http, header_too_large_431_and_close)
{
	struct lutf_http_limits lim;
	char big[600], *want;

	lutf_http_limits_default(&lim);
	lim.max_header = 512;
	th_init(&t, &lim);
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = 0;
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nX-Big: ", 0);
	cr_assert_eq(t.out.len, 0);
	th_feed(&t, big, 0);
	want = err_resp(431, "Request Header Fields Too Large", "too large",
			"request header larger than the limit", "", true);
	expect_closed_with(want);
	free(want);
}

Test(http, header_too_large_even_in_skipped_headers_and_whitespace)
{
	struct lutf_http_limits lim;
	char *req;

	lutf_http_limits_default(&lim);
	lim.max_header = 256;
	th_init(&t, &lim);
	/* Unkept headers are not copied, but their bytes count. */
	cr_assert(asprintf(&req, "GET /healthz HTTP/1.1\r\nCookie: %0300d\r\n\r\n", 0) > 0);
	th_feed(&t, req, 0);
	cr_assert(strstr(t.out.data, "HTTP/1.1 431 "));
	cr_assert(lutf_http_done(t.c));
	free(req);
}

Test(http, declared_body_too_large_413_and_close)
{
	struct lutf_http_limits lim;
	char *want;

	lutf_http_limits_default(&lim);
	lim.max_body = 10;
	th_init(&t, &lim);
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 0);
	want = err_resp(413, "Content Too Large", "too large", "request body larger than the limit",
			"", true);
	expect_closed_with(want);
	cr_assert_eq(t.nreq, 0);
	free(want);
}

Test(http, chunked_body_too_large_413_and_close)
{
	struct lutf_http_limits lim;

	lutf_http_limits_default(&lim);
	lim.max_body = 10;
	th_init(&t, &lim);
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n", 0);
	cr_assert_eq(t.out.len, 0, "8 bytes are within the limit");
	th_feed(&t, "8\r\n12345678\r\n", 0);
	cr_assert(strstr(t.out.data, "HTTP/1.1 413 Content Too Large\r\n"));
	cr_assert(lutf_http_done(t.c));
	cr_assert_eq(t.nreq, 0);
}

Test(http, rate_limit_429_with_retry_after_keeps_the_connection)
{
	struct lutf_http_limits lim;
	char *req = post("/fn/t/f", "z"), *ok = th_echo_resp("z", 1, false), *want;

	lutf_http_limits_default(&lim);
	lim.max_rps = 3;
	th_init(&t, &lim);
	t.now = 5000;
	for (int i = 0; i < 3; i++) {
		th_feed(&t, req, 0);
		expect_out(ok);
	}
	th_feed(&t, req, 0);
	want = err_resp(429, "Too Many Requests", "rate limited",
			"too many requests on this connection", "Retry-After: 1\r\n", false);
	expect_out(want);
	cr_assert_eq(t.nreq, 3, "the limited request is not invoked");
	cr_assert_not(lutf_http_done(t.c));
	t.now = 6000; /* the next second */
	th_feed(&t, req, 0);
	expect_out(ok);
	free(req);
	free(ok);
	free(want);
}

Test(http, bad_method_400_and_close)
{
	char *want = err_resp(400, "Bad Request", "malformed", "bad method", "", true);

	th_init(&t, NULL);
	th_feed(&t, "BREW /fn/t/f HTTP/1.1\r\n\r\n", 0);
	expect_closed_with(want);
	free(want);
}

Test(http, bad_version_400_and_close)
{
	static const char *const bad[] = {
	    "GET /healthz HTTP/1.2\r\n\r\n",
	    "GET /healthz HTTP/2.0\r\n\r\n",
	    "GET /healthz HTTQ/1.1\r\n\r\n",
	    "GET /healthz\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		th_init(&t, NULL);
		th_feed(&t, bad[i], 0);
		cr_assert(t.out.len && !strncmp(t.out.data, "HTTP/1.1 400 Bad Request\r\n", 26),
			  "%s", bad[i]);
		cr_assert(strstr(t.out.data, "X-Lutf-Status: malformed\r\n"));
		cr_assert(lutf_http_done(t.c), "%s", bad[i]);
		th_fini(&t);
	}
	th_init(&t, NULL);
}

Test(http, body_longer_than_declared_is_the_next_request)
{
	char *first = th_echo_resp("abc", 3, false), *err, *want;

	th_init(&t, NULL);
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcdef\r\n\r\n", 0);
	cr_assert_eq(t.nreq, 1);
	cr_assert_str_eq(t.req[0].body, "abc");
	err = err_resp(400, "Bad Request", "malformed", "bad method", "", true);
	cr_assert(asprintf(&want, "%s%s", first, err) > 0);
	expect_closed_with(want);
	free(first);
	free(err);
	free(want);
}

Test(http, content_length_with_chunked_is_refused)
{
	th_init(&t, NULL);
	th_feed(&t,
		"POST /fn/t/f HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
		"3\r\nabc\r\n0\r\n\r\n",
		0);
	cr_assert_eq(t.nreq, 0);
	cr_assert(!strncmp(t.out.data, "HTTP/1.1 400 ", 13));
	cr_assert(lutf_http_done(t.c));
}

Test(http, http10_closes_unless_keep_alive)
{
	char *want = th_echo_resp("q", 1, true);

	th_init(&t, NULL);
	th_feed(&t, "POST /fn/t/f HTTP/1.0\r\nContent-Length: 1\r\n\r\nq", 0);
	cr_assert_eq(t.req[0].minor, 0);
	cr_assert_not(t.req[0].keep_alive);
	expect_closed_with(want);
	free(want);
	th_fini(&t);

	th_init(&t, NULL);
	th_feed(&t, "POST /fn/t/f HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nq",
		0);
	want = th_echo_resp("q", 1, false);
	expect_out(want);
	cr_assert_not(lutf_http_done(t.c));
	free(want);
}

Test(http, connection_close_drops_what_follows_and_waits_for_earlier_answers)
{
	char *a = th_echo_resp("1", 1, false), *b = th_echo_resp("2", 1, true), *want;

	th_init(&t, NULL);
	t.hold = true;
	th_feed(&t,
		"POST /fn/t/f HTTP/1.1\r\nContent-Length: 1\r\n\r\n1"
		"POST /fn/t/f HTTP/1.1\r\nConnection: close\r\nContent-Length: 1\r\n\r\n2"
		"POST /fn/t/f HTTP/1.1\r\nContent-Length: 1\r\n\r\n3",
		0);
	cr_assert_eq(t.nreq, 2, "nothing after Connection: close is parsed");
	cr_assert_not(lutf_http_done(t.c));
	lutf_http_respond(t.c, 1, &(struct lutf_http_resp){.status = LUTF_STATUS_OK,
							   .content_type = "text/plain",
							   .body = "2",
							   .body_len = 1});
	cr_assert_eq(t.out.len, 0);
	lutf_http_respond(t.c, 0, &(struct lutf_http_resp){.status = LUTF_STATUS_OK,
							   .content_type = "text/plain",
							   .body = "1",
							   .body_len = 1});
	cr_assert(asprintf(&want, "%s%s", a, b) > 0);
	expect_out(want);
	cr_assert(lutf_http_done(t.c));
	free(a);
	free(b);
	free(want);
}

Test(http, routes_404_405_head)
{
	char *want;

	th_init(&t, NULL);
	th_feed(&t, "GET /nope HTTP/1.1\r\n\r\n", 0);
	want = err_resp(404, "Not Found", "unknown function", "no route for /nope", "", false);
	expect_out(want);
	free(want);
	th_feed(&t, "GET /fn/t/f HTTP/1.1\r\n\r\n", 0);
	want = err_resp(405, "Method Not Allowed", "malformed", "GET is not allowed here (Allow: POST)",
			"Allow: POST\r\n", false);
	expect_out(want);
	free(want);
	th_feed(&t, "DELETE /metrics HTTP/1.1\r\n\r\n", 0);
	want = err_resp(405, "Method Not Allowed", "malformed",
			"DELETE is not allowed here (Allow: GET, HEAD)", "Allow: GET, HEAD\r\n", false);
	expect_out(want);
	free(want);
	th_feed(&t, "POST /fn/t HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0);
	cr_assert(!strncmp(t.out.data, "HTTP/1.1 404 ", 13));
	t.out.len = 0;
	th_feed(&t, "POST /fn/t/f/g HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0);
	cr_assert(!strncmp(t.out.data, "HTTP/1.1 404 ", 13));
	t.out.len = 0;
	th_feed(&t, "HEAD /healthz HTTP/1.1\r\n\r\n", 0);
	expect_out("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
		   "Content-Length: 3\r\nConnection: keep-alive\r\n\r\n");
	cr_assert_eq(t.nreq, 0);
	cr_assert_not(lutf_http_done(t.c));
}

Test(http, metrics_route)
{
	th_init(&t, NULL);
	t.metrics = "# TYPE x gauge\nx 1\n";
	th_feed(&t, "GET /metrics HTTP/1.1\r\n\r\n", 0);
	expect_out("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		   "Content-Length: 19\r\nConnection: keep-alive\r\n\r\n# TYPE x gauge\nx 1\n");
	t.metrics = NULL;
	th_feed(&t, "GET /metrics HTTP/1.1\r\n\r\n", 0);
	cr_assert(!strncmp(t.out.data, "HTTP/1.1 500 Internal Server Error\r\n", 36));
	cr_assert(strstr(t.out.data, "X-Lutf-Status: function error\r\n"));
}

/* Every typed status answers with DESIGN.md's code, the cause in a header and body. */
Test(http, typed_statuses_map_to_codes)
{
#define ROW(name, value, http, text) {value, http, text},
	static const struct {
		uint32_t st;
		int http;
		const char *text;
	} rows[] = {LUTF_STATUS_TABLE(ROW)};
#undef ROW
	th_init(&t, NULL);
	t.hold = true;
	for (size_t i = 1; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *req = post("/fn/t/f", "x"), line[64], hdr[64];
		struct lutf_http_resp r = {.status = rows[i].st, .msg = "why"};

		th_feed(&t, req, 0);
		cr_assert_eq(lutf_http_respond(t.c, t.req[t.nreq - 1].seq, &r), 0);
		snprintf(line, sizeof(line), "HTTP/1.1 %d ", rows[i].http);
		snprintf(hdr, sizeof(hdr), "\r\nX-Lutf-Status: %s\r\n", rows[i].text);
		cr_assert(!strncmp(t.out.data, line, strlen(line)), "%s", rows[i].text);
		cr_assert(strstr(t.out.data, hdr), "%s", rows[i].text);
		cr_assert_eq(!!strstr(t.out.data, "\r\nRetry-After: 1\r\n"),
			     rows[i].http == 503 || rows[i].http == 429, "%s", rows[i].text);
		cr_assert(strstr(t.out.data, "\r\n\r\n") &&
			      !strcmp(strstr(t.out.data, "\r\n\r\n") + 4,
				      strcat(strcpy(line, rows[i].text), ": why\n")),
			  "%s", rows[i].text);
		t.out.len = 0;
		free(req);
	}
	/* Retry-After as given. */
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0);
	lutf_http_respond(t.c, t.req[t.nreq - 1].seq,
			  &(struct lutf_http_resp){.status = LUTF_STATUS_PAUSED, .retry_after_s = 7});
	cr_assert(strstr(t.out.data, "\r\nRetry-After: 7\r\n"));
}

Test(http, function_content_type_cannot_inject_headers)
{
	th_init(&t, NULL);
	t.hold = true;
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0);
	lutf_http_respond(t.c, 0,
			  &(struct lutf_http_resp){.status = LUTF_STATUS_OK,
						   .content_type = "text/html\r\nSet-Cookie: a=b",
						   .body = "x",
						   .body_len = 1});
	expect_out("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
		   "Content-Length: 1\r\nConnection: keep-alive\r\n\r\nx");
}

Test(http, expect_100_continue)
{
	th_init(&t, NULL);
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", 0);
	expect_out("HTTP/1.1 100 Continue\r\n\r\n");
	th_feed(&t, "hi", 0);
	cr_assert_str_eq(t.req[0].meta, "", "Expect is not passed to the function");
	cr_assert(strstr(t.out.data, "\r\n\r\nhi"));
}

Test(http, headers_passed_to_the_function_are_bounded)
{
	char *req = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&req, &len);

	th_init(&t, NULL);
	fputs("POST /fn/t/f HTTP/1.1\r\nUser-Agent: ua \r\nCookie: c\r\nAccept: */*\r\n", f);
	for (int i = 0; i < 30; i++)
		fprintf(f, "X-H%d: v%d\r\n", i, i);
	fputs("Content-Length: 0\r\n\r\n", f);
	fclose(f);
	th_feed(&t, req, len);
	cr_assert_eq(t.nreq, 1);
	cr_assert(!strncmp(t.req[0].meta, "user-agent=ua;accept=*/*;x-h0=v0;x-h1=v1;", 41), "%s",
		  t.req[0].meta);
	cr_assert(strstr(t.req[0].meta, "x-h13=v13;") && !strstr(t.req[0].meta, "x-h14"),
		  "%s", t.req[0].meta);
	free(req);
}

Test(http, slowloris_trickle_gets_408_and_close)
{
	struct lutf_http_limits lim;
	const char *req = "POST /fn/t/f HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde";
	char *want;

	lutf_http_limits_default(&lim);
	lim.request_ms = 1000;
	th_init(&t, &lim);
	for (size_t i = 0; i < 20; i++) {
		t.now += 100;
		th_feed(&t, req + i, 1);
		if (lutf_http_tick(t.c, t.now))
			break;
	}
	want = err_resp(408, "Request Timeout", "malformed", "request not complete within 1000 ms",
			"", true);
	expect_closed_with(want);
	cr_assert_eq(t.nreq, 0);
	free(want);
}

Test(http, idle_connection_is_done_and_busy_one_is_not)
{
	struct lutf_http_limits lim;

	lutf_http_limits_default(&lim);
	lim.idle_ms = 500;
	th_init(&t, &lim);
	t.hold = true;
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0);
	cr_assert_not(lutf_http_tick(t.c, t.now + 5000), "a request in flight keeps it");
	lutf_http_respond(t.c, 0, &(struct lutf_http_resp){.status = LUTF_STATUS_OK});
	t.now += 5000;
	cr_assert_not(lutf_http_tick(t.c, t.now + 499));
	cr_assert(lutf_http_tick(t.c, t.now + 500));
	cr_assert(lutf_http_done(t.c));
}

Test(http, eof_mid_request_and_write_failure)
{
	th_init(&t, NULL);
	t.hold = true;
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nContent-Length: 0\r\n\r\nPOST /fn/t/f HTTP/1.1\r\n", 0);
	lutf_http_eof(t.c);
	cr_assert_not(lutf_http_done(t.c), "the answer to the whole request is still owed");
	t.write_err = -EPIPE;
	lutf_http_respond(t.c, 0, &(struct lutf_http_resp){.status = LUTF_STATUS_OK});
	cr_assert(lutf_http_done(t.c));
	cr_assert_eq(t.nreq, 1);
}

Test(http, refusal_formatting)
{
	struct lutf_http_buf b = {0};

	th_init(&t, NULL);
	lutf_http_format_error(&t.s, &b, 503, "overloaded", "too many connections");
	lutf_http_buf_append(&b, "", 1);
	cr_assert_str_eq(b.data, "HTTP/1.1 503 Service Unavailable\r\n"
				 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 33\r\n"
				 "Connection: close\r\nRetry-After: 1\r\nX-Lutf-Status: overloaded\r\n"
				 "\r\noverloaded: too many connections\n");
	lutf_http_buf_free(&b);
}

/* A chunk size over what the body may still take is refused at once (issue
 * 12.7), not after waiting for bytes that never come (408). */
Test(http, chunk_size_over_the_limit_413_at_once)
{
	th_init(&t, NULL);
	th_feed(&t, "POST /fn/t/f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7fffffff\r\n", 0);
	cr_assert(t.out.len && strstr(t.out.data, "HTTP/1.1 413 Content Too Large\r\n"), "%.*s",
		  (int)t.out.len, t.out.data);
	cr_assert(strstr(t.out.data, "chunk larger than the body limit allows"));
	cr_assert(lutf_http_done(t.c));
	cr_assert_eq(t.nreq, 0);
}

static int deny_metrics(void *ctx, const char *authorization, char *msg, size_t cap)
{
	(void)ctx;
	snprintf(msg, cap, "token %s", authorization ? authorization : "missing");
	if (!authorization)
		return 401;
	return strcmp(authorization, "Bearer good") ? 403 : 0;
}

/* /metrics behind the owner's check: 401 (with WWW-Authenticate), 403, 200. */
Test(http, metrics_authorization)
{
	th_init(&t, NULL);
	t.metrics = "x 1\n";
	t.s.ops.authorize_metrics = deny_metrics;
	th_feed(&t, "GET /metrics HTTP/1.1\r\n\r\n", 0);
	cr_assert(!strncmp(t.out.data, "HTTP/1.1 401 Unauthorized\r\n", 27), "%s", t.out.data);
	cr_assert(strstr(t.out.data, "WWW-Authenticate: Bearer realm=\"lutf\"\r\n"));
	cr_assert(strstr(t.out.data, "token missing"));
	t.out.len = 0;
	th_feed(&t, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer bad\r\n\r\n", 0);
	cr_assert(!strncmp(t.out.data, "HTTP/1.1 403 Forbidden\r\n", 24), "%s", t.out.data);
	t.out.len = 0;
	th_feed(&t, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer good\r\n\r\n", 0);
	cr_assert(!strncmp(t.out.data, "HTTP/1.1 200 OK\r\n", 17), "%s", t.out.data);
}
