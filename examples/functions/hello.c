/* SPDX-License-Identifier: MIT */
/* hello: echoes its input back, prefixed with a greeting from its config. */
#include <string.h>

#include <lutf/function.h>

LUTF_APP_ABI;

LUTF_FUNCTION(hello)
{
	const char *greeting = lutf_config(call, "greeting");

	if (!greeting)
		greeting = "hello, ";
	lutf_set_content_type(call, "text/plain");
	if (lutf_write(call, greeting, strlen(greeting)) ||
	    lutf_write(call, call->input, call->input_len))
		return lutf_fail(call, "output too large"), 1;
	return 0;
}

/* noop: does nothing, for measuring the runtime itself. */
LUTF_FUNCTION(noop)
{
	return 0;
}
