/* SPDX-License-Identifier: MIT */
/* sleep: blocking. Input: milliseconds to sleep (default 10, at most 10000). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lutf/function.h>

LUTF_APP_ABI;

LUTF_FUNCTION(sleep_ms)
{
	char in[16] = {0};
	long ms = 10;
	struct timespec ts;

	if (call->input_len && call->input_len < sizeof(in)) {
		memcpy(in, call->input, call->input_len);
		ms = strtol(in, NULL, 10);
	}
	if (ms < 0 || ms > 10000)
		return lutf_fail(call, "milliseconds must be 0..10000"), 1;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
	lutf_set_content_type(call, "text/plain");
	lutf_write(call, "slept", 5);
	return 0;
}
