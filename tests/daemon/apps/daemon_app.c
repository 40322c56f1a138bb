/* SPDX-License-Identifier: MIT */
/* A test app for lutfd: logs its input, echoes it, or exits the worker. */
#include <stdlib.h>

#include <lutf/function.h>

LUTF_APP_ABI;

LUTF_FUNCTION(logger)
{
	lutf_log(call, "got %.*s", (int)call->input_len, (const char *)call->input);
	return lutf_write(call, call->input, call->input_len);
}

LUTF_FUNCTION(echo)
{
	return lutf_write(call, call->input, call->input_len);
}
