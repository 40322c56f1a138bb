/* SPDX-License-Identifier: MIT */
/* Loading real .so apps built by the test build, and refusing bad ones. */
#include <criterion/criterion.h>
#include <string.h>

#include "engine_util.h"

static struct lutf_runtime *rt;

static void setup(void)
{
	struct lutf_config c = test_config(1, 2);

	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
}

static void teardown(void)
{
	lutf_runtime_destroy(rt);
}

TestSuite(loader, .init = setup, .fini = teardown, .timeout = 30);

#define APP(name) TEST_APP_DIR "/lib" name ".so"

Test(loader, loads_a_real_app_with_state_config_and_meta)
{
	static const char *const cfg[] = {"type", "application/json", NULL};
	struct lutf_fn_opts o = {.config = cfg};
	struct lutf_result res;
	uint32_t echo, count, meta, fails;
	static const char *const hdrs[] = {"x-test", "yes", NULL};

	cr_assert_eq(lutf_runtime_add_so(rt, "echo", APP("good_app"), "echo", &o, &echo), 0, "%s",
		     lutf_runtime_last_error());
	cr_assert_eq(lutf_runtime_add_so(rt, "count", APP("good_app"), "count", NULL, &count), 0);
	cr_assert_eq(lutf_runtime_add_so(rt, "meta", APP("good_app"), "meta", NULL, &meta), 0);
	cr_assert_eq(lutf_runtime_add_so(rt, "fails", APP("good_app"), "fails", NULL, &fails), 0);
	lutf_runtime_invoke(rt, echo, &(struct lutf_request){.input = "{}", .input_len = 2}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	cr_assert_str_eq(res.content_type, "application/json");
	lutf_result_release(&res);
	for (int i = 1; i <= 3; i++) {
		char want[8];

		snprintf(want, sizeof(want), "%d", i);
		lutf_runtime_invoke(rt, count, &(struct lutf_request){0}, &res);
		cr_assert_eq(res.status, LUTF_STATUS_OK);
		cr_assert_eq(res.output_len, strlen(want));
		cr_assert_arr_eq(res.output, want, strlen(want), "init state not kept");
		lutf_result_release(&res);
	}
	lutf_runtime_invoke(
	    rt, meta, &(struct lutf_request){.content_type = "text/csv", .headers = hdrs}, &res);
	cr_assert_eq(res.output_len, strlen("text/csv|yes"));
	cr_assert_arr_eq(res.output, "text/csv|yes", res.output_len);
	lutf_result_release(&res);
	lutf_runtime_invoke(rt, fails, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_FUNCTION_ERROR);
	cr_assert_str_eq(res.error, "it went wrong on purpose");
	/* Deleting one function keeps the app loaded for the others. */
	cr_assert_eq(lutf_runtime_delete(rt, echo), 0);
	test_sleep_ms(20);
	lutf_runtime_invoke(rt, count, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	lutf_result_release(&res);
}

Test(loader, refuses_a_wrong_abi_version_with_a_clear_error)
{
	int err = lutf_runtime_add_so(rt, "x", APP("bad_abi_app"), "echo", NULL, NULL);

	cr_assert_eq(err, -EPROTO);
	cr_assert(strstr(lutf_runtime_last_error(), "ABI 42"), "message: %s",
		  lutf_runtime_last_error());
	cr_assert(strstr(lutf_runtime_last_error(), "rebuild"));
}

Test(loader, refuses_what_is_not_an_app)
{
	cr_assert_eq(lutf_runtime_add_so(rt, "x", APP("no_abi_app"), "echo", NULL, NULL), -ENOEXEC);
	cr_assert(strstr(lutf_runtime_last_error(), "lutf_abi_version"));
	cr_assert_eq(lutf_runtime_add_so(rt, "x", "/nonexistent/app.so", "echo", NULL, NULL),
		     -ENOENT);
	cr_assert_eq(lutf_runtime_add_so(rt, "x", "/etc/hostname", "echo", NULL, NULL), -ENOEXEC);
	cr_assert_eq(lutf_runtime_add_so(rt, "x", APP("good_app"), "missing", NULL, NULL), -ESRCH);
	cr_assert(strstr(lutf_runtime_last_error(), "missing"));
}
