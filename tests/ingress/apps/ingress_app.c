/* SPDX-License-Identifier: MIT */
/* The ingress tests' app: a no-op and an echo. */
#include <lutf/function.h>

LUTF_APP_ABI;

LUTF_FUNCTION(noop)
{
	return 0;
}

LUTF_FUNCTION(echo)
{
	return lutf_write(call, call->input, call->input_len);
}
