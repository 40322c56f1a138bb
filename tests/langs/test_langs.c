/* SPDX-License-Identifier: MIT */
/*
 * Functions in C++, Rust and Go through the C ABI (issue 14), each deployed
 * through the real lutfd in tier basic and invoked over HTTP with a key of
 * its tenant: output checked; a C++ throw, a Rust panic and a Go panic
 * answer FUNCTION_ERROR with their message and the worker lives on; a Go
 * library is refused in tier pure (the tier named), runs in service and
 * compat, and a second Go runtime in one tenant's worker is refused.
 * Root-only; an example whose compiler was missing at build time fails
 * under LUTF_TEST_REQUIRE=langs, else skips.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <dlfcn.h>

#include "abi_check.h"
#include "gw_util.h"
#include "require.h"

static struct td d;
static int cfd = -1;
static char http[64];

static void start(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root (control socket, uids)");
	cr_assert(td_start(&d, GW_EXTRA "require_keys = on\n"), "lutfd did not start (log %s)",
		  d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	cr_assert(td_addr(&d, "http.addr", http, sizeof(http)));
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(langs, .init = start, .fini = teardown, .timeout = 60);

/* The example built from lang's folder, or skip (fail when required). */
static const char *example(const char *path)
{
	char why[300];

	snprintf(why, sizeof(why), "%s was not built (its compiler was missing: scripts/deps.sh)",
		 path);
	LUTF_REQUIRE("langs", path[0] && access(path, R_OK) == 0, why);
	return path;
}

/* Deploy so as tenant/app in tier; the status, the error text into err. */
static uint32_t deploy(const char *tenant, const char *app, const char *so, const char *tier,
		       const char *const *exports, const char *const *config, char *err, size_t cap)
{
	struct td_deploy_opts o = {.tier = tier, .config = config, .timeout_ms = 5000};
	struct td_reply r;
	uint32_t st = td_deploy_with(cfd, tenant, app, so, exports, &o, &r);

	err[0] = 0;
	if (r.payload && st != LUTF_STATUS_OK)
		td_field_str(&r, LUTF_TAG_ERROR, err, cap);
	free(r.payload);
	return st;
}

/* KEY_CREATE for tenant: "Authorization: Bearer <key>\r\n" into hdr. */
static void key_header(const char *tenant, char *hdr, size_t cap)
{
	struct lutf_buf b;
	struct td_reply r;
	char key[128];

	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_KEY_CREATE, 21, tenant, NULL);
	cr_assert_eq(td_call(cfd, &b, &r, 5000), LUTF_STATUS_OK);
	cr_assert(td_field_str(&r, LUTF_TAG_KEY, key, sizeof(key)));
	snprintf(hdr, cap, "Authorization: Bearer %s\r\n", key);
	free(r.payload);
	lutf_buf_free(&b);
}

/* POST body to /fn/<tenant>/<fn> over a fresh connection; the code, the
 * response in r (gw_resp_free it). */
static int post(const char *hdr, const char *tenant, const char *fn, const char *body,
		struct gw_resp *r)
{
	struct gw_in in = {0};
	char url[160];
	int fd = td_connect_tcp(http), code;

	memset(r, 0, sizeof(*r));
	cr_assert_geq(fd, 0);
	snprintf(url, sizeof(url), "/fn/%s/%s", tenant, fn);
	code = gw_post(fd, &in, url, body, hdr, r);
	close(fd);
	return code;
}

/* POST and expect code and a body that equals want (exact) or starts with
 * prefix (want NULL). */
static void expect(const char *hdr, const char *tenant, const char *fn, const char *body, int code,
		   const char *want, const char *prefix)
{
	struct gw_resp r;
	int got = post(hdr, tenant, fn, body, &r);

	cr_assert_eq(got, code, "%s/%s: HTTP %d (want %d): %s", tenant, fn, got, code,
		     got > 0 ? r.body : "no answer");
	if (want)
		cr_assert_str_eq(r.body, want, "%s/%s", tenant, fn);
	else
		cr_assert_eq(strncmp(r.body, prefix, strlen(prefix)), 0,
			     "%s/%s: body '%s' does not start with '%s'", tenant, fn, r.body,
			     prefix);
	if (code == 500) {
		char st[64] = "";

		cr_assert(gw_header(&r, "X-Lutf-Status", st, sizeof(st)));
		cr_assert_str_eq(st, "function error");
	}
	gw_resp_free(&r);
}

Test(langs, cpp_basic_over_http)
{
	static const char *const ex[] = {"hello=cpp_hello", "throw=cpp_throw", NULL};
	static const char *const cfg[] = {"hello", "greeting", "Hi from C++,", NULL};
	const char *so = example(LANGS_CPP);
	char err[400], hdr[256];

	cr_assert_eq(deploy("cpp", "app", so, "basic", ex, cfg, err, sizeof(err)), LUTF_STATUS_OK,
		     "%s", err);
	key_header("cpp", hdr, sizeof(hdr));
	expect(hdr, "cpp", "hello", "b a b", 200,
	       "Hi from C++, b a b\nsorted: a b b\ncounts: a=1 b=2\ncalls: 1\n", NULL);
	/* vector::at past the end: std::out_of_range, caught at the boundary. */
	expect(hdr, "cpp", "throw", "abc", 500, NULL,
	       "function error: c++ exception: vector::_M_range_check");
	/* The same worker answers on: its state counted the first call. */
	expect(hdr, "cpp", "hello", "x", 200, "Hi from C++, x\nsorted: x\ncounts: x=1\ncalls: 2\n",
	       NULL);
}

Test(langs, rust_basic_over_http)
{
	static const char *const ex[] = {"hello=rs_hello", "panic=rs_panic", NULL};
	const char *so = example(LANGS_RUST);
	char err[400], hdr[256];

	cr_assert_eq(deploy("rs", "app", so, "basic", ex, NULL, err, sizeof(err)), LUTF_STATUS_OK,
		     "%s", err);
	key_header("rs", hdr, sizeof(hdr));
	expect(hdr, "rs", "hello", "abba", 200, "hello from Rust, abba\nletters: a2 b2\ncalls: 1\n",
	       NULL);
	/* A panic (expect on a parse error), caught by catch_unwind. */
	expect(hdr, "rs", "panic", "twelve", 500, NULL,
	       "function error: rust panic: input is not a number");
	expect(hdr, "rs", "panic", "12", 200, "12\n", NULL);
	expect(hdr, "rs", "hello", "c", 200, "hello from Rust, c\nletters: c1\ncalls: 2\n", NULL);
}

Test(langs, go_basic_over_http_one_runtime_per_worker)
{
	static const char *const ex[] = {"hello=go_hello", "panic=go_panic", "info=go_info", NULL};
	static const char *const ex2[] = {"hello2=go_hello", NULL};
	static const char *const excpp[] = {"cpp=cpp_hello", NULL};
	const char *so = example(LANGS_GO);
	char err[400], hdr[256];

	cr_assert_eq(deploy("gop", "app", so, "basic", ex, NULL, err, sizeof(err)), LUTF_STATUS_OK,
		     "%s", err);
	key_header("gop", hdr, sizeof(hdr));
	expect(hdr, "gop", "hello", "go is here", 200,
	       "hello from Go, go is here\nsorted: go here is\nletters: 8\n", NULL);
	expect(hdr, "gop", "panic", "", 500, NULL,
	       "function error: go panic: runtime error: index out of range");
	expect(hdr, "gop", "info", "", 200, NULL, "go1.");
	/* A second Go runtime in this worker: refused, the first serves on. */
	cr_assert_eq(deploy("gop", "second", so, "basic", ex2, NULL, err, sizeof(err)),
		     LUTF_STATUS_FUNCTION_ERROR);
	cr_assert(strstr(err, "two Go runtimes cannot share one process"), "%s", err);
	cr_assert(strstr(err, "(app app)"), "%s", err);
	/* So is a new version of the same Go app (a runtime never unloads). */
	cr_assert_eq(deploy("gop", "app", so, "basic", ex, NULL, err, sizeof(err)),
		     LUTF_STATUS_FUNCTION_ERROR);
	cr_assert(strstr(err, "cannot be unloaded or loaded twice"), "%s", err);
	expect(hdr, "gop", "hello", "still", 200,
	       "hello from Go, still\nsorted: still\nletters: 5\n", NULL);
	/* Other code beside the Go runtime is fine. */
	if (LANGS_CPP[0] && access(LANGS_CPP, R_OK) == 0) {
		cr_assert_eq(
		    deploy("gop", "cppapp", LANGS_CPP, "basic", excpp, NULL, err, sizeof(err)),
		    LUTF_STATUS_OK, "%s", err);
		expect(hdr, "gop", "cpp", "y", 200, NULL, "hello from C++, y\n");
	}
	expect(hdr, "gop", "panic", "", 500, NULL, "function error: go panic:");
}

Test(langs, go_by_tier)
{
	static const char *const ex[] = {"hello=go_hello", NULL};
	static const char *const tiers[] = {"service", "compat"};
	const char *so = example(LANGS_GO);
	char err[400], hdr[256];

	/* pure: no clone, and the runtime starts threads when loaded. */
	cr_assert_eq(deploy("gpure", "app", so, "pure", ex, NULL, err, sizeof(err)),
		     LUTF_STATUS_FUNCTION_ERROR);
	cr_assert(strstr(err, "cannot run here: tier pure allows no new threads"), "%s", err);
	for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++) {
		char tenant[32];

		snprintf(tenant, sizeof(tenant), "g%s", tiers[i]);
		cr_assert_eq(deploy(tenant, "app", so, tiers[i], ex, NULL, err, sizeof(err)),
			     LUTF_STATUS_OK, "%s: %s", tiers[i], err);
		key_header(tenant, hdr, sizeof(hdr));
		expect(hdr, tenant, "hello", "b a", 200,
		       "hello from Go, b a\nsorted: a b\nletters: 2\n", NULL);
	}
}

/* POST body to tenant/fn on n connections at once; each must answer 200 want. */
static void concurrent(const char *hdr, const char *tenant, const char *fn, const char *body, int n,
		       const char *want)
{
	struct gw_in *in = calloc((size_t)n, sizeof(*in));
	int fds[16];
	char req[1024], url[160];

	cr_assert(in && n <= 16);
	snprintf(url, sizeof(url), "/fn/%s/%s", tenant, fn);
	snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n%s\r\n%s",
		 url, strlen(body), hdr, body);
	for (int i = 0; i < n; i++) {
		fds[i] = td_connect_tcp(http);
		cr_assert_geq(fds[i], 0);
		cr_assert(gw_sends(fds[i], req));
	}
	for (int i = 0; i < n; i++) {
		struct gw_resp r;

		cr_assert(gw_read(fds[i], &in[i], &r, 10000), "call %d: no answer", i);
		cr_assert_eq(r.code, 200, "call %d: %d %s", i, r.code, r.body);
		cr_assert_str_eq(r.body, want);
		gw_resp_free(&r);
		close(fds[i]);
	}
	free(in);
}

Test(langs, go_blocked_labor_loses_cart_and_c_fault_beside_go)
{
	static const char *const ex[] = {"hello=go_hello", "sleep=go_sleep", NULL};
	static const char *const exc[] = {"segv=segv", NULL};
	const char *so = example(LANGS_GO);
	uint64_t before = 0, after = 0, restarts = 0;
	char err[400], hdr[256], st[64] = "";
	struct gw_resp r;

	cr_assert_eq(deploy("gsl", "app", so, "basic", ex, NULL, err, sizeof(err)), LUTF_STATUS_OK,
		     "%s", err);
	key_header("gsl", hdr, sizeof(hdr));
	/* 6 calls sleeping in Go on 2 Carts: the Labors wait in futex, the
	 * Supervisor sees them blocked and moves their Carts (rebinds). */
	cr_assert(td_tenant_counter(cfd, "gsl", "rebinds", &before));
	concurrent(hdr, "gsl", "sleep", "300", 6, "slept 300 ms\n");
	cr_assert(td_tenant_counter(cfd, "gsl", "rebinds", &after));
	cr_assert_gt(after, before, "no Cart moved off a Labor blocked in Go (%llu)",
		     (unsigned long long)after);
	/* A real fault in C beside the Go runtime: Go's SIGSEGV handler passes
	 * it on to the default action; CRASHED (SIGSEGV) as without Go. */
	cr_assert_eq(deploy("gsl", "c", FAULT_C, "basic", exc, NULL, err, sizeof(err)),
		     LUTF_STATUS_OK, "%s", err);
	cr_assert_eq(post(hdr, "gsl", "segv", "x", &r), 500, "%s", r.body);
	cr_assert(gw_header(&r, "X-Lutf-Status", st, sizeof(st)));
	cr_assert_str_eq(st, "crashed");
	cr_assert(strstr(r.body, "SIGSEGV"), "%s", r.body);
	gw_resp_free(&r);
	/* The restarted worker loads the Go app again (a fresh process). */
	cr_assert(td_wait_tenant_counter(cfd, "gsl", "restarts", 1, 5000, &restarts));
	for (int i = 0; i < 50; i++) {
		if (post(hdr, "gsl", "hello", "again", &r) == 200)
			break;
		gw_resp_free(&r);
		td_sleep_ms(100);
	}
	cr_assert_eq(r.code, 200, "%s", r.body);
	cr_assert_str_eq(r.body, "hello from Go, again\nsorted: again\nletters: 5\n");
	gw_resp_free(&r);
}

/* A Go runtime that came in without the check (a library's dependency, say)
 * is still found, by its note among the loaded objects. Runs the real Go
 * example's runtime in this test process: no lutfd. */
Test(langs, loaded_go_runtime_found_by_its_note, .init = NULL, .fini = NULL)
{
	const char *so = example(LANGS_GO);
	char msg[400] = "";
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);

	cr_assert(h, "%s", dlerror());
	cr_assert_eq(lutf_abi_check_app(so, "other", "basic", true, msg, sizeof(msg)), -EBUSY);
	cr_assert(strstr(msg, "(library "), "%s", msg);
	cr_assert(strstr(msg, "libgo_hello.so); two Go runtimes cannot share one process"), "%s",
		  msg);
}
