/* SPDX-License-Identifier: MIT */
/*
 * run_local: the engine in one process. Loads the example apps, invokes each
 * function once synchronously, then a batch asynchronously, and prints what
 * came back. Usage: run_local [APP_DIR]   (default: the build's examples dir)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/runtime.h>

static int add(struct lutf_runtime *rt, const char *dir, const char *so, const char *name,
	       const char *sym, uint32_t *id)
{
	static const char *const cfg[] = {"greeting", "hello from lutf, ", NULL};
	struct lutf_fn_opts opts = {.config = cfg};
	char path[4096];
	int err;

	snprintf(path, sizeof(path), "%s/%s", dir, so);
	err = lutf_runtime_add_so(rt, name, path, sym, &opts, id);
	if (err)
		fprintf(stderr, "run_local: add %s: %s (%s)\n", name, strerror(-err),
			lutf_runtime_last_error());
	return err;
}

static void show(const char *what, const struct lutf_result *res)
{
	if (res->status == LUTF_STATUS_OK)
		printf("%-22s ok  [%s] %.*s\n", what, res->content_type, (int)res->output_len,
		       (const char *)res->output);
	else
		printf("%-22s %s: %s\n", what, lutf_status_str(res->status), res->error);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : LUTF_EXAMPLES_DIR;
	struct lutf_runtime *rt;
	struct lutf_result res;
	struct lutf_completion done[16];
	uint32_t hello, pi, sl;
	int err, got = 0;

	err = lutf_runtime_create(NULL, &rt);
	if (err) {
		fprintf(stderr, "run_local: cannot create runtime: %s\n", strerror(-err));
		return 1;
	}
	if (add(rt, dir, "libhello.so", "hello", "hello", &hello) ||
	    add(rt, dir, "libpi.so", "pi", "pi", &pi) ||
	    add(rt, dir, "libsleep.so", "sleep", "sleep_ms", &sl)) {
		lutf_runtime_destroy(rt);
		return 1;
	}
	lutf_runtime_invoke(rt, hello, &(struct lutf_request){.input = "world", .input_len = 5},
			    &res);
	show("hello(\"world\")", &res);
	lutf_result_release(&res);
	lutf_runtime_invoke(rt, pi, &(struct lutf_request){.input = "50", .input_len = 2}, &res);
	show("pi(50)", &res);
	lutf_result_release(&res);
	lutf_runtime_invoke(
	    rt, sl, &(struct lutf_request){.input = "20", .input_len = 2, .timeout_ns = 5000000},
	    &res);
	show("sleep(20ms), 5ms limit", &res);
	lutf_result_release(&res);

	for (int i = 0; i < 8; i++)
		lutf_runtime_submit(rt, sl, &(struct lutf_request){.input = "10", .input_len = 2},
				    (uint64_t)i);
	while (got < 8) {
		int n = lutf_runtime_reap(rt, done, 16, 1000);

		if (n <= 0)
			break;
		for (int i = 0; i < n; i++)
			lutf_result_release(&done[i].result);
		got += n;
	}
	printf("%-22s %d of 8 completed\n", "8 x sleep(10ms) async", got);
	lutf_runtime_destroy(rt);
	return got == 8 ? 0 : 1;
}
