/* SPDX-License-Identifier: MIT */
/*
 * The HTTP gateway against the real lutfd over loopback: every status of
 * DESIGN.md's table from a real cause, keep-alive, pipelining, chunked
 * bodies, malformed and slow requests closed alone, /metrics and /healthz,
 * SIGHUP. Each test starts its own lutfd (ephemeral ports).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "gw_util.h"
#include "prom_parse.h"
#include "require.h"

#define APP TEST_APP_DIR "/libhttp_app.so"

static struct td d;
static int cfd = -1;
static char http[64], admin[64];

/* Start lutfd with extra config, deploy the apps. */
static void start(const char *extra)
{
	static const char *const main_ex[] = {"echo=echo", "noop=noop", "hdr=hdr", "fail=fail",
					      NULL};
	static const char *const slow_ex[] = {"nap=nap", NULL};
	static const char *const boom_ex[] = {"crash=crash", NULL};
	char conf[1024];

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root (control socket, cgroups)");
	snprintf(conf, sizeof(conf), "%s%s", GW_EXTRA, extra ? extra : "");
	cr_assert(td_start(&d, conf), "lutfd did not start (log %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	cr_assert(td_addr(&d, "http.addr", http, sizeof(http)), "no http.addr");
	td_addr(&d, "admin.addr", admin, sizeof(admin));
	cr_assert_eq(gw_deploy(cfd, "acme", "main", APP, main_ex, 0, 0), LUTF_STATUS_OK);
	cr_assert_eq(gw_deploy(cfd, "acme", "slow", APP, slow_ex, 1, 0), LUTF_STATUS_OK);
	cr_assert_eq(gw_deploy(cfd, "crashy", "boom", APP, boom_ex, 0, 0), LUTF_STATUS_OK);
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(gateway, .fini = teardown, .timeout = 90);

/* The next response on fd (input in) is 200 with body want. */
static void expect_ok(int fd, struct gw_in *in, const char *want)
{
	struct gw_resp r;

	cr_assert(gw_read(fd, in, &r, 5000), "no response (want %s)", want);
	cr_assert_eq(r.code, 200, "got %d, want 200 %s: %s%s", r.code, want, r.head, r.body);
	cr_assert_str_eq(r.body, want);
	gw_resp_free(&r);
}

/* Error responses: code, X-Lutf-Status and the cause opening the body. */
static void expect_error(const struct gw_resp *r, int code, const char *cause)
{
	char v[64];

	cr_assert_eq(r->code, code, "got %d, want %d: %s%s", r->code, code, r->head, r->body);
	cr_assert(gw_header(r, "X-Lutf-Status", v, sizeof(v)), "no X-Lutf-Status: %s", r->head);
	cr_assert_str_eq(v, cause);
	cr_assert(!strncmp(r->body, cause, strlen(cause)), "body %s", r->body);
	if (code == 503 || code == 429)
		cr_assert(gw_header(r, "Retry-After", v, sizeof(v)) && atoi(v) >= 1, "%s", r->head);
}

Test(gateway, ok_and_plain_errors)
{
	struct gw_in in = {0};
	struct gw_resp r;
	char v[128];
	int fd;

	start(NULL);
	fd = td_connect_tcp(http);
	cr_assert_geq(fd, 0);
	/* 200 with the function's content type (here: the request's, echoed). */
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/echo", "{\"a\":1}",
			     "Content-Type: application/json\r\n", &r),
		     200);
	cr_assert_str_eq(r.body, "{\"a\":1}");
	cr_assert(gw_header(&r, "Content-Type", v, sizeof(v)));
	cr_assert_str_eq(v, "application/json");
	gw_resp_free(&r);
	/* Request headers reach the function as metadata. */
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/hdr", "", "X-Probe: here\r\n", &r), 200);
	cr_assert_str_eq(r.body, "here");
	gw_resp_free(&r);
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/nope", "x", NULL, &r), 404);
	expect_error(&r, 404, "unknown function");
	gw_resp_free(&r);
	cr_assert_eq(gw_post(fd, &in, "/fn/nobody/echo", "x", NULL, &r), 404);
	gw_resp_free(&r);
	cr_assert_eq(gw_post(fd, &in, "/elsewhere", "x", NULL, &r), 404);
	gw_resp_free(&r);
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/fail", "x", NULL, &r), 500);
	expect_error(&r, 500, "function error");
	cr_assert(strstr(r.body, "refused on purpose"), "%s", r.body);
	gw_resp_free(&r);
	cr_assert(gw_sends(fd, "GET /fn/acme/echo HTTP/1.1\r\nHost: t\r\n\r\n"));
	cr_assert(gw_read(fd, &in, &r, 5000));
	expect_error(&r, 405, "malformed");
	cr_assert(gw_header(&r, "Allow", v, sizeof(v)) && !strcmp(v, "POST"));
	gw_resp_free(&r);
	/* Still the same connection: keep-alive through every error above. */
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/noop", "", NULL, &r), 200);
	cr_assert_eq(r.body_len, 0);
	gw_resp_free(&r);
	/* 413 on the declared length, before any body byte; the connection closes. */
	cr_assert(gw_sends(fd, "POST /fn/acme/echo HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"));
	cr_assert(gw_read(fd, &in, &r, 5000));
	expect_error(&r, 413, "too large");
	cr_assert(gw_header(&r, "Connection", v, sizeof(v)) && !strcmp(v, "close"));
	gw_resp_free(&r);
	cr_assert(gw_closed(fd, 3000));
	close(fd);
}

Test(gateway, crashed_function_500)
{
	struct gw_in in = {0};
	struct gw_resp r;
	int fd;

	start(NULL);
	fd = td_connect_tcp(http);
	cr_assert_eq(gw_post(fd, &in, "/fn/crashy/crash", "x", NULL, &r), 500);
	expect_error(&r, 500, "crashed");
	gw_resp_free(&r);
	/* Other tenants never noticed. */
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/echo", "still", NULL, &r), 200);
	cr_assert_str_eq(r.body, "still");
	gw_resp_free(&r);
	close(fd);
}

Test(gateway, overloaded_503_at_max_concurrency)
{
	struct gw_in a = {0}, b = {0};
	struct gw_resp r;
	int fa, fb;

	start(NULL);
	fa = td_connect_tcp(http);
	fb = td_connect_tcp(http);
	/* nap's app allows one call at a time: the second is refused at once. */
	cr_assert(gw_sends(fa, "POST /fn/acme/nap HTTP/1.1\r\nContent-Length: 3\r\n\r\n500"));
	td_sleep_ms(100);
	cr_assert_eq(gw_post(fb, &b, "/fn/acme/nap", "0", NULL, &r), 503);
	expect_error(&r, 503, "overloaded");
	gw_resp_free(&r);
	cr_assert(gw_read(fa, &a, &r, 5000));
	cr_assert_eq(r.code, 200);
	cr_assert_str_eq(r.body, "slept 500");
	gw_resp_free(&r);
	close(fa);
	close(fb);
}

Test(gateway, paused_503_then_deleted_404)
{
	struct gw_in a = {0}, b = {0};
	struct gw_resp r;
	int fa, fb;

	start("hold_max = 1\n");
	fa = td_connect_tcp(http);
	fb = td_connect_tcp(http);
	cr_assert_eq(td_control(cfd, LUTF_OP_PAUSE, "acme", "echo"), LUTF_STATUS_OK);
	/* The first call is held; the hold queue (1) is full for the second. */
	cr_assert(gw_sends(fa, "POST /fn/acme/echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nheld"));
	td_sleep_ms(100);
	cr_assert_eq(gw_post(fb, &b, "/fn/acme/echo", "x", NULL, &r), 503);
	expect_error(&r, 503, "paused");
	gw_resp_free(&r);
	/* Deleting the function answers the held call DELETED: 404. */
	cr_assert_eq(td_control(cfd, LUTF_OP_DELETE, "acme", "echo"), LUTF_STATUS_OK);
	cr_assert(gw_read(fa, &a, &r, 5000));
	expect_error(&r, 404, "deleted");
	gw_resp_free(&r);
	cr_assert_eq(gw_post(fb, &b, "/fn/acme/echo", "x", NULL, &r), 404);
	expect_error(&r, 404, "unknown function");
	gw_resp_free(&r);
	close(fa);
	close(fb);
}

Test(gateway, deadline_504)
{
	struct gw_in in = {0};
	struct gw_resp r;
	uint64_t t0;
	int fd;

	start(NULL);
	fd = td_connect_tcp(http);
	t0 = td_now_ms();
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/nap", "1500", "X-Lutf-Timeout-Ms: 100\r\n", &r),
		     504);
	expect_error(&r, 504, "deadline");
	cr_assert_lt(td_now_ms() - t0, 1400, "answered at the deadline, not after the call");
	gw_resp_free(&r);
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/nap", "0", "X-Lutf-Timeout-Ms: soon\r\n", &r), 400);
	expect_error(&r, 400, "malformed");
	gw_resp_free(&r);
	close(fd);
}

Test(gateway, rate_limited_429)
{
	struct gw_in in = {0};
	struct gw_resp r;
	int fd, ok = 0, limited = 0;

	start("http_max_rps = 5\n");
	fd = td_connect_tcp(http);
	/* Ten pipelined requests within one second: at most 5 (+5 if the
	 * second turns over) pass, the rest are 429, in order, keep-alive. */
	for (int i = 0; i < 10; i++)
		cr_assert(gw_sends(fd, "POST /fn/acme/noop HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
	for (int i = 0; i < 10; i++) {
		cr_assert(gw_read(fd, &in, &r, 5000));
		if (r.code == 429) {
			expect_error(&r, 429, "rate limited");
			limited++;
		} else {
			cr_assert_eq(r.code, 200);
			ok++;
		}
		gw_resp_free(&r);
	}
	cr_assert_geq(ok, 5);
	cr_assert_geq(limited, 1);
	close(fd);
}

Test(gateway, keep_alive_1000_requests)
{
	struct gw_in in = {0};
	struct gw_resp r;
	char body[32];
	int fd;

	start(NULL);
	fd = td_connect_tcp(http);
	for (int i = 0; i < 1000; i++) {
		snprintf(body, sizeof(body), "n%d", i);
		cr_assert_eq(gw_post(fd, &in, "/fn/acme/echo", body, NULL, &r), 200, "request %d",
			     i);
		cr_assert_str_eq(r.body, body);
		gw_resp_free(&r);
	}
	close(fd);
}

Test(gateway, pipelined_answers_in_order)
{
	struct gw_in in = {0};
	char buf[4096];
	size_t n = 0;
	int fd;

	start(NULL);
	fd = td_connect_tcp(http);
	/* The first completes last (it naps); answers still come in order. Then
	 * more than max_pending (64) requests in one write. */
	n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			      "POST /fn/acme/nap HTTP/1.1\r\nContent-Length: 3\r\n\r\n300");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			      "POST /fn/acme/echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nsecon");
	cr_assert(gw_send(fd, buf, n));
	expect_ok(fd, &in, "slept 300");
	expect_ok(fd, &in, "secon");
	close(fd);

	fd = td_connect_tcp(http);
	memset(&in, 0, sizeof(in));
	{
		static char big[200 * 64];
		size_t m = 0;

		for (int i = 0; i < 200; i++)
			m += (size_t)snprintf(big + m, sizeof(big) - m,
					      "POST /fn/acme/echo HTTP/1.1\r\nContent-Length: "
					      "%zu\r\n\r\n%d",
					      (size_t)snprintf(NULL, 0, "%d", i), i);
		cr_assert(gw_send(fd, big, m));
		for (int i = 0; i < 200; i++) {
			char want[16];

			snprintf(want, sizeof(want), "%d", i);
			expect_ok(fd, &in, want);
		}
	}
	close(fd);
}

/*
 * Calls parsed in one pass of lutfd's loop, submitted together at its end
 * (http_gw.c's batch, LUTF_HTTP_BATCH=on here; the other tests run without
 * it): 64 connections written at once, each with its own
 * body, content type and header, get exactly their own answers; a request
 * whose connection is reset before its answer costs nobody else anything;
 * one whose client half-closes after writing it is still answered; unknown
 * functions in the batch are refused alone.
 */
Test(gateway, one_pass_batch_answers_each_its_own)
{
	enum { N = 64 };
	static struct gw_in in[N]; /* 128 KiB each: not on the stack */
	struct gw_resp r;
	int fd[N], rst, half;
	char req[512], v[64];
	struct linger lg = {1, 0};

	static const char *const batch_env[] = {"LUTF_HTTP_BATCH=on", NULL};

	d.env = batch_env;
	start(NULL);
	memset(in, 0, sizeof(in));
	for (int i = 0; i < N; i++) {
		fd[i] = td_connect_tcp(http);
		cr_assert_geq(fd[i], 0);
	}
	rst = td_connect_tcp(http);
	half = td_connect_tcp(http);
	cr_assert(rst >= 0 && half >= 0);
	/* The reset one first, so its call sits in the batch among the others. */
	cr_assert(gw_sends(rst, "POST /fn/acme/nap HTTP/1.1\r\nContent-Length: 3\r\n\r\n200"));
	setsockopt(rst, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(rst);
	for (int i = 0; i < N; i++) {
		const char *fn = i % 4 == 3 ? "hdr" : i % 8 == 5 ? "nope" : "echo";
		char body[16];

		snprintf(body, sizeof(body), "b%d", i);
		snprintf(req, sizeof(req),
			 "POST /fn/acme/%s HTTP/1.1\r\nContent-Type: text/x-%d\r\n"
			 "X-Probe: p%d\r\nX-Lutf-Timeout-Ms: 5000\r\nContent-Length: %zu\r\n\r\n%s",
			 fn, i, i, strlen(body), body);
		cr_assert(gw_sends(fd[i], req));
	}
	cr_assert(gw_sends(half, "POST /fn/acme/echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nhalf"));
	shutdown(half, SHUT_WR);
	for (int i = 0; i < N; i++) {
		char want[32];

		cr_assert(gw_read(fd[i], &in[i], &r, 5000), "no answer on connection %d", i);
		if (i % 4 == 3) {
			snprintf(want, sizeof(want), "p%d", i);
			cr_assert_eq(r.code, 200, "%d: %s%s", i, r.head, r.body);
			cr_assert_str_eq(r.body, want);
		} else if (i % 8 == 5) {
			expect_error(&r, 404, "unknown function");
		} else {
			snprintf(want, sizeof(want), "b%d", i);
			cr_assert_eq(r.code, 200, "%d: %s%s", i, r.head, r.body);
			cr_assert_str_eq(r.body, want);
			snprintf(want, sizeof(want), "text/x-%d", i);
			cr_assert(gw_header(&r, "Content-Type", v, sizeof(v)));
			cr_assert_str_eq(v, want);
		}
		gw_resp_free(&r);
		close(fd[i]);
	}
	memset(&in[0], 0, sizeof(in[0]));
	cr_assert(gw_read(half, &in[0], &r, 5000), "the half-closed client got no answer");
	cr_assert_eq(r.code, 200);
	cr_assert_str_eq(r.body, "half");
	gw_resp_free(&r);
	close(half);
	/* lutfd goes on. */
	fd[0] = td_connect_tcp(http);
	memset(&in[0], 0, sizeof(in[0]));
	cr_assert_eq(gw_post(fd[0], &in[0], "/fn/acme/echo", "after", NULL, &r), 200);
	cr_assert_str_eq(r.body, "after");
	gw_resp_free(&r);
	close(fd[0]);
}

Test(gateway, chunked_body)
{
	struct gw_in in = {0};
	int fd;

	start(NULL);
	fd = td_connect_tcp(http);
	cr_assert(gw_sends(fd, "POST /fn/acme/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			       "5\r\nhello\r\n"));
	td_sleep_ms(50);
	cr_assert(gw_sends(fd, "7\r\n, world\r\n0\r\n\r\n"));
	expect_ok(fd, &in, "hello, world");
	close(fd);
}

/* Send bad bytes on a fresh connection: want code and a close; a bystander
 * connection opened before still works. */
static void bad_request(const char *bytes, size_t len, int code)
{
	struct gw_in in = {0}, bin = {0};
	struct gw_resp r;
	char v[32];
	int fd = td_connect_tcp(http), by = td_connect_tcp(http);

	cr_assert(fd >= 0 && by >= 0);
	cr_assert(gw_send(fd, bytes, len ? len : strlen(bytes)));
	cr_assert(gw_read(fd, &in, &r, 5000), "no answer to %s", bytes);
	cr_assert_eq(r.code, code, "got %d for %.40s", r.code, bytes);
	cr_assert(gw_header(&r, "Connection", v, sizeof(v)) && !strcmp(v, "close"));
	cr_assert(gw_header(&r, "X-Lutf-Status", v, sizeof(v)));
	gw_resp_free(&r);
	cr_assert(gw_closed(fd, 3000), "still open after %d", code);
	close(fd);
	cr_assert_eq(gw_post(by, &bin, "/fn/acme/echo", "fine", NULL, &r), 200);
	gw_resp_free(&r);
	close(by);
}

Test(gateway, malformed_requests_close_alone)
{
	static char big[12000];

	start(NULL);
	bad_request("BREW /fn/acme/echo HTTP/1.1\r\n\r\n", 0, 400);
	bad_request("POST /fn/acme/echo HTTP/3.7\r\nContent-Length: 0\r\n\r\n", 0, 400);
	bad_request("POST /fn/acme/echo HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 0, 400);
	memset(big, 'a', sizeof(big));
	memcpy(big, "POST /fn/acme/echo HTTP/1.1\r\nX-Big: ", 36);
	bad_request(big, sizeof(big), 431);
	/* Body longer than declared: the extra bytes are a (bad) next request,
	 * answered after the first one. */
	{
		struct gw_in in = {0};
		struct gw_resp r;
		int fd = td_connect_tcp(http);

		cr_assert(gw_sends(fd, "POST /fn/acme/echo HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
				       "abcGARBAGE\r\n\r\n"));
		expect_ok(fd, &in, "abc");
		cr_assert(gw_read(fd, &in, &r, 5000));
		expect_error(&r, 400, "malformed");
		gw_resp_free(&r);
		cr_assert(gw_closed(fd, 3000));
		close(fd);
	}
}

Test(gateway, slowloris_gets_408)
{
	const char *req = "POST /fn/acme/echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
	struct gw_in in = {0}, bin = {0};
	struct gw_resp r;
	uint64_t t0;
	int fd, by;

	start("http_request_timeout_ms = 1000\n");
	fd = td_connect_tcp(http);
	by = td_connect_tcp(http);
	t0 = td_now_ms();
	/* One byte every 100 ms: never complete within 1 s. */
	for (size_t i = 0; i < strlen(req) && td_now_ms() - t0 < 3000; i++) {
		struct pollfd p = {fd, POLLIN, 0};

		if (poll(&p, 1, 0) > 0)
			break; /* answered */
		if (!gw_send(fd, req + i, 1))
			break;
		td_sleep_ms(100);
	}
	cr_assert(gw_read(fd, &in, &r, 3000));
	cr_assert_eq(r.code, 408);
	cr_assert_lt(td_now_ms() - t0, 2500);
	gw_resp_free(&r);
	cr_assert(gw_closed(fd, 3000));
	close(fd);
	cr_assert_eq(gw_post(by, &bin, "/fn/acme/echo", "ok", NULL, &r), 200);
	gw_resp_free(&r);
	close(by);
}

/* GET path on hostport; returns the code, body in r. */
/* GET path; on the admin listener with its token (docs/operator.md). */
static int get(const char *hostport, const char *path, struct gw_resp *r)
{
	struct gw_in in = {0};
	char req[512], tok[160] = "", auth[200] = "";
	int fd = td_connect_tcp(hostport), ok;
	FILE *fp;

	snprintf(req, sizeof(req), "%s/admin.token", d.state);
	fp = fopen(req, "r");
	if (fp && fgets(tok, sizeof(tok), fp))
		snprintf(auth, sizeof(auth), "Authorization: Bearer %.*s\r\n",
			 (int)strcspn(tok, "\n"), tok);
	if (fp)
		fclose(fp);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", path, auth);
	ok = fd >= 0 && gw_sends(fd, req) && gw_read(fd, &in, r, 5000);
	if (fd >= 0)
		close(fd);
	return ok ? r->code : -1;
}

/* The value of one sample line ("name{labels} value") in text, or -1. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

Test(gateway, metrics_parse_and_move)
{
	const char *ok_series =
	    "lutf_invocations_total{tenant=\"acme\",function=\"echo\",status=\"ok\"}";
	struct gw_in in = {0};
	struct gw_resp r;
	char err[256];
	double before, after;
	int fd, n;

	start(NULL);
	cr_assert(admin[0], "no admin.addr");
	cr_assert_eq(get(admin, "/healthz", &r), 200);
	cr_assert_str_eq(r.body, "ok\n");
	gw_resp_free(&r);
	cr_assert_eq(get(http, "/healthz", &r), 200);
	gw_resp_free(&r);
	/* /metrics only on the admin listener; no functions there. */
	cr_assert_eq(get(http, "/metrics", &r), 404);
	gw_resp_free(&r);
	fd = td_connect_tcp(admin);
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/echo", "x", NULL, &r), 404);
	gw_resp_free(&r);
	close(fd);

	cr_assert_eq(get(admin, "/metrics", &r), 200);
	cr_assert_eq(prom_parse(r.body, err, sizeof(err), &n), 0, "%s", err);
	before = sample(r.body, ok_series);
	cr_assert_eq(before, 0, "%s", r.body);
	gw_resp_free(&r);

	fd = td_connect_tcp(http);
	for (int i = 0; i < 7; i++) {
		cr_assert_eq(gw_post(fd, &in, "/fn/acme/echo", "m", NULL, &r), 200);
		gw_resp_free(&r);
	}
	cr_assert_eq(gw_post(fd, &in, "/fn/acme/fail", "m", NULL, &r), 500);
	gw_resp_free(&r);
	close(fd);

	cr_assert_eq(get(admin, "/metrics", &r), 200);
	cr_assert_eq(prom_parse(r.body, err, sizeof(err), &n), 0, "%s", err);
	after = sample(r.body, ok_series);
	cr_assert_eq(after, 7, "%s", r.body);
	cr_assert_eq(sample(r.body, "lutf_invocations_total{tenant=\"acme\",function=\"fail\","
				    "status=\"function_error\"}"),
		     1);
	cr_assert_eq(sample(r.body, "lutf_invocation_duration_seconds_count{tenant=\"acme\","
				    "function=\"echo\"}"),
		     7);
	cr_assert_geq(sample(r.body, "lutf_http_responses_total{code=\"2xx\"}"), 7);
	cr_assert_geq(sample(r.body, "lutf_http_responses_total{code=\"5xx\"}"), 1);
	cr_assert_eq(sample(r.body, "lutf_tenant_up{tenant=\"acme\"}"), 1);
	cr_assert(strstr(r.body, "lutf_labor_watch_mode{tenant=\"acme\",mode="));
	/* One probe for all of lutfd: its counters are not per tenant. */
	cr_assert(!strstr(r.body, "lutf_labor_watch_runs_total{"), "%s", r.body);
	cr_assert(!strstr(r.body, "lutf_labor_watch_drops_total{"), "%s", r.body);
	cr_assert(strstr(r.body, "lutf_ingress_backend{backend="));
	cr_assert_geq(sample(r.body, "lutf_ingress_accepts_total"), 5);
	gw_resp_free(&r);
}

/* A Labor sleeping inside a Brick shows as blocked (labor_watch's slots), and
 * as running again once the call is answered. */
Test(gateway, metrics_count_blocked_labors)
{
	const char *bpf = "lutf_labor_watch_mode{tenant=\"acme\",mode=\"bpf\"}";
	const char *blocked = "lutf_labors{tenant=\"acme\",state=\"blocked\"}";
	const char *req = "POST /fn/acme/nap HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n800";
	struct gw_in in = {0};
	struct gw_resp r;
	double seen = 0;
	uint64_t until;
	int fd;

	start(NULL);
	/* labor_watch loads beside lutfd's start (the Supervisor polls until
	 * then): give it a while. */
	for (until = td_now_ms() + 5000;; td_sleep_ms(20)) {
		cr_assert_eq(get(admin, "/metrics", &r), 200);
		if (sample(r.body, bpf) == 1 || td_now_ms() >= until)
			break;
		gw_resp_free(&r);
	}
	if (sample(r.body, bpf) != 1) {
		gw_resp_free(&r);
		LUTF_REQUIRE_BPF(false, "labor_watch is not in BPF mode: blocked Labors are not seen");
	}
	cr_assert(strstr(r.body, "\nlutf_labor_watch_drops_total "), "%s", r.body);
	cr_assert_eq(sample(r.body, blocked), 0, "%s", r.body);
	gw_resp_free(&r);

	fd = td_connect_tcp(http);
	cr_assert(gw_sends(fd, req));
	until = td_now_ms() + 600;
	while (seen < 1 && td_now_ms() < until) {
		td_sleep_ms(20);
		cr_assert_eq(get(admin, "/metrics", &r), 200);
		seen = sample(r.body, blocked);
		gw_resp_free(&r);
	}
	cr_assert_geq(seen, 1, "a Labor in nanosleep was never counted blocked");
	cr_assert(gw_read(fd, &in, &r, 5000));
	cr_assert_eq(r.code, 200);
	gw_resp_free(&r);
	close(fd);
	cr_assert_eq(get(admin, "/metrics", &r), 200);
	cr_assert_eq(sample(r.body, blocked), 0, "%s", r.body);
	gw_resp_free(&r);
}

/* /metrics names every tenant: never on the data port, even without an
 * admin listener (issue 12.3). */
Test(gateway, no_metrics_on_main_listener_without_admin)
{
	struct gw_resp r;

	start("admin_listen = off\n");
	cr_assert_eq(admin[0], 0, "admin.addr written though admin_listen is off");
	cr_assert_eq(get(http, "/metrics", &r), 404);
	gw_resp_free(&r);
	cr_assert_eq(get(http, "/healthz", &r), 200);
	gw_resp_free(&r);
}

Test(gateway, deploy_answers_http_url)
{
	static const char *const ex[] = {"echo=echo", NULL};
	struct lutf_buf b;
	struct td_reply r;
	struct lutf_tlv f;
	char want[128];
	size_t len = 0, fr;
	uint8_t *so;
	bool found = false;

	start(NULL);
	so = td_slurp(APP, &len);
	cr_assert(so);
	lutf_buf_init(&b);
	fr = lutf_frame_begin(&b, LUTF_OP_DEPLOY, 0, 5);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, "urls");
	lutf_tlv_put_str(&b, LUTF_TAG_APP, "u");
	lutf_tlv_put(&b, LUTF_TAG_SO, so, len);
	lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, ex[0]);
	lutf_tlv_put_str(&b, LUTF_TAG_TIER, "none");
	lutf_frame_end(&b, fr);
	cr_assert_eq(td_call(cfd, &b, &r, 15000), LUTF_STATUS_OK);
	snprintf(want, sizeof(want), "http://%s/fn/urls/echo", http);
	for (int i = 0; td_field(&r, LUTF_TAG_URL, i, &f); i++)
		found |= f.len == strlen(want) && !memcmp(f.val, want, f.len);
	cr_assert(found, "no %s in the deploy reply", want);
	free(r.payload);
	free(so);
	lutf_buf_free(&b);
}

/* The next datagram on the notify socket, or "". */
static void notify_msg(int ns, char *buf, size_t cap)
{
	struct pollfd p = {ns, POLLIN, 0};
	ssize_t n = 0;

	if (poll(&p, 1, 3000) > 0)
		n = recv(ns, buf, cap - 1, 0);
	buf[n > 0 ? n : 0] = 0;
}

Test(gateway, sighup_reloads_safe_keys)
{
	struct sockaddr_un na = {.sun_family = AF_UNIX};
	struct gw_in in = {0};
	struct gw_resp r;
	char line[512];
	bool applied = false, restart = false;
	FILE *fp;
	int fd, ns, limited = 0;

	/* lutfd's sd_notify: READY=1 once up, RELOADING=1 / READY=1 around SIGHUP. */
	ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(na.sun_path, sizeof(na.sun_path), "/tmp/lutf-notify-%d", (int)getpid());
	unlink(na.sun_path);
	cr_assert_eq(bind(ns, (struct sockaddr *)&na, sizeof(na)), 0);
	setenv("NOTIFY_SOCKET", na.sun_path, 1);
	start(NULL);
	unsetenv("NOTIFY_SOCKET");
	notify_msg(ns, line, sizeof(line));
	cr_assert_str_eq(line, "READY=1");
	fp = fopen(d.conf, "a");
	fprintf(fp, "http_max_rps = 2\nmax_conns = 77\n");
	fclose(fp);
	cr_assert_eq(kill(d.pid, SIGHUP), 0);
	td_sleep_ms(300);
	cr_assert_eq(waitpid(d.pid, NULL, WNOHANG), 0, "lutfd exited on SIGHUP");
	fp = fopen(d.log, "r");
	while (fp && fgets(line, sizeof(line), fp)) {
		applied |= strstr(line, "SIGHUP: applied http_max_rps") != NULL;
		restart |= strstr(line, "restart-only (not applied): max_conns") != NULL;
	}
	if (fp)
		fclose(fp);
	cr_assert(applied && restart, "reload log lines missing (log %s)", d.log);
	notify_msg(ns, line, sizeof(line));
	cr_assert_str_eq(line, "RELOADING=1");
	notify_msg(ns, line, sizeof(line));
	cr_assert_str_eq(line, "READY=1");
	close(ns);
	unlink(na.sun_path);
	/* A new connection has the new limit. */
	fd = td_connect_tcp(http);
	for (int i = 0; i < 6; i++)
		cr_assert(gw_sends(fd, "POST /fn/acme/noop HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
	for (int i = 0; i < 6; i++) {
		cr_assert(gw_read(fd, &in, &r, 5000));
		limited += r.code == 429;
		gw_resp_free(&r);
	}
	cr_assert_geq(limited, 1);
	close(fd);
}
