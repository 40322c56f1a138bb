/* SPDX-License-Identifier: MIT */
/* A test app: init/fini state, config, metadata, logging and errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/function.h>

LUTF_APP_ABI;

struct state {
	int calls;
};

__attribute__((visibility("default"))) int lutf_app_init(void **st);
__attribute__((visibility("default"))) void lutf_app_fini(void *st);

int lutf_app_init(void **st)
{
	*st = calloc(1, sizeof(struct state));
	return *st ? 0 : -12;
}

void lutf_app_fini(void *st)
{
	free(st);
}

/* Echo the input; content type from config "type" (default text/plain). */
LUTF_FUNCTION(echo)
{
	const char *type = lutf_config(call, "type");

	lutf_set_content_type(call, type ? type : "text/plain");
	return lutf_write(call, call->input, call->input_len);
}

/* Counts calls in the app state kept by init. */
LUTF_FUNCTION(count)
{
	struct state *s = call->app_state;
	char buf[32];
	int n;

	if (!s)
		return lutf_fail(call, "no app state"), 1;
	n = snprintf(buf, sizeof(buf), "%d", __atomic_add_fetch(&s->calls, 1, __ATOMIC_RELAXED));
	return lutf_write(call, buf, (size_t)n);
}

/* Answers the request's content type and x-test header. */
LUTF_FUNCTION(meta)
{
	const char *ct = lutf_meta(call, "content-type");
	const char *h = lutf_meta(call, "x-test");
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "%s|%s", ct ? ct : "-", h ? h : "-");

	lutf_log(call, "meta called with %s", buf);
	return lutf_write(call, buf, (size_t)n);
}

LUTF_FUNCTION(fails)
{
	return lutf_fail(call, "it went wrong on purpose"), 1;
}
