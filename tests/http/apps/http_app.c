/* SPDX-License-Identifier: MIT */
/* The HTTP gateway's test app: one function per outcome the gateway maps. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lutf/function.h>

LUTF_APP_ABI;

/* The input back, typed as the request's Content-Type (or text/plain). */
LUTF_FUNCTION(echo)
{
	const char *ct = lutf_meta(call, "content-type");

	lutf_set_content_type(call, ct ? ct : "text/plain");
	return lutf_write(call, call->input, call->input_len);
}

LUTF_FUNCTION(noop)
{
	return 0;
}

/* The value of request header X-Probe, or "-". */
LUTF_FUNCTION(hdr)
{
	const char *v = lutf_meta(call, "x-probe");

	return lutf_write(call, v ? v : "-", v ? strlen(v) : 1);
}

/* The Authorization header as the function sees it: "-" when hidden. */
LUTF_FUNCTION(auth)
{
	const char *v = lutf_meta(call, "authorization");

	return lutf_write(call, v ? v : "-", v ? strlen(v) : 1);
}

LUTF_FUNCTION(fail)
{
	return lutf_fail(call, "refused on purpose"), 1;
}

LUTF_FUNCTION(crash)
{
	raise(SIGSEGV);
	return 0;
}

/* Sleep the input's milliseconds (at most 10 s), then answer "slept <ms>". */
LUTF_FUNCTION(nap)
{
	char in[16] = {0}, out[32];
	struct timespec ts;
	long ms = 0;
	int n;

	if (call->input_len < sizeof(in)) {
		memcpy(in, call->input, call->input_len);
		ms = strtol(in, NULL, 10);
	}
	if (ms < 0 || ms > 10000)
		ms = 0;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts))
		;
	n = snprintf(out, sizeof(out), "slept %ld", ms);
	return lutf_write(call, out, (size_t)n);
}
