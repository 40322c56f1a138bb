/* SPDX-License-Identifier: MIT */
/*
 * Hostile Python apps through the real lutfd (issue #14; labels python and
 * hostile): a call object kept past its call, endless recursion, an output
 * flood, a header injection through content_type, sys.exit, a syntax error
 * and binary junk deployed as Python. Each ends in a clear status; the
 * worker keeps serving (or is refused at deploy), and lutfd is unharmed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "fault_util.h"
#include "require.h"

#define HOSTILE PY_APP_DIR "/hostile.py"

static struct td d;
static int cfd = -1, dfd = -1;

static void setup(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "the control socket and cgroups need root");
	cr_assert(td_start(&d, "max_frame = 1048576\n"), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	cr_assert(cfd >= 0 && dfd >= 0);
}

static void teardown(void)
{
	if (dfd >= 0)
		close(dfd);
	dfd = -1;
	td_close_stop(&d, &cfd);
}

TestSuite(python_hostile, .init = setup, .fini = teardown, .timeout = 60);

static uint32_t deploy(const char *path, const char *const *ex, char *msg, size_t cap)
{
	struct lutf_buf b;
	struct td_reply r;
	struct lutf_tlv f;
	size_t len = 0, fo;
	uint8_t *so = td_slurp(path, &len);
	uint32_t st;

	msg[0] = 0;
	cr_assert(so, "cannot read %s", path);
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_DEPLOY, 0, 78);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, "evil");
	lutf_tlv_put_str(&b, LUTF_TAG_APP, "app");
	lutf_tlv_put(&b, LUTF_TAG_SO, so, len);
	lutf_tlv_put_str(&b, LUTF_TAG_KIND, "python");
	lutf_tlv_put_str(&b, LUTF_TAG_TIER, "basic");
	for (; *ex; ex++)
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, *ex);
	lutf_frame_end(&b, fo);
	st = td_call(cfd, &b, &r, 20000);
	lutf_buf_free(&b);
	free(so);
	if (st != 0xffffffffu) {
		if (td_field(&r, LUTF_TAG_ERROR, 0, &f) && f.len < cap) {
			memcpy(msg, f.val, f.len);
			msg[f.len] = 0;
		}
		free(r.payload);
	}
	return st;
}

static void expect(const char *fn, uint32_t status, const char *text)
{
	struct fx_res r = fx_call(dfd, "evil", fn, "", 0, 15000);

	cr_assert_eq(r.status, status, "%s: status %u (%s)", fn, r.status, r.text);
	if (text)
		cr_assert(strstr(r.text, text), "%s: '%s' lacks '%s'", fn, r.text, text);
}

Test(python_hostile, each_abuse_ends_in_a_clear_status)
{
	static const char *const ex[] = {
	    "keep=hostile:keep",	   "use_kept=hostile:use_kept",
	    "recurse=hostile:recurse",	   "flood=hostile:flood",
	    "bad_ctype=hostile:bad_ctype", "exit=hostile:exit_",
	    "keyerr=hostile:keyerr",	   NULL,
	};
	char msg[400];
	uint64_t restarts = 0;

	cr_assert_eq(deploy(HOSTILE, ex, msg, sizeof(msg)), LUTF_STATUS_OK, "%s", msg);
	expect("keep", LUTF_STATUS_OK, "kept");
	expect("use_kept", LUTF_STATUS_FUNCTION_ERROR, "RuntimeError: the call is over");
	expect("recurse", LUTF_STATUS_FUNCTION_ERROR, "RecursionError");
	expect("flood", LUTF_STATUS_TOO_LARGE, "output over");
	expect("bad_ctype", LUTF_STATUS_FUNCTION_ERROR, "bad content type");
	expect("exit", LUTF_STATUS_FUNCTION_ERROR, "SystemExit: 3");
	expect("keyerr", LUTF_STATUS_FUNCTION_ERROR, "TypeError");
	expect("keep", LUTF_STATUS_OK, "kept");
	/* Not one of them took the worker down. */
	cr_assert(td_tenant_counter(cfd, "evil", "restarts", &restarts));
	cr_assert_eq(restarts, 0, "the worker restarted %llu times", (unsigned long long)restarts);
}

Test(python_hostile, broken_sources_are_refused_at_deploy)
{
	static const char *const broken[] = {"b=syntax_error:broken", NULL};
	char msg[400];

	cr_assert_eq(deploy(PY_APP_DIR "/syntax_error.py", broken, msg, sizeof(msg)),
		     LUTF_STATUS_FUNCTION_ERROR, "%s", msg);
	cr_assert(strstr(msg, "SyntaxError"), "%s", msg);
	cr_assert_eq(deploy(PY_APP_DIR "/binary.bin", broken, msg, sizeof(msg)),
		     LUTF_STATUS_MALFORMED, "%s", msg);
	cr_assert(strstr(msg, "not an ELF object or other binary"), "%s", msg);
}
