/* SPDX-License-Identifier: MIT */
/* A C app loaded beside a Go app: a real memory fault on a Labor thread. */
#include <lutf/function.h>

LUTF_APP_ABI;

/* A write to address 0 (computed, so the compiler keeps it). */
LUTF_FUNCTION(segv)
{
	*(volatile int *)(call->input_len - call->input_len) = 1;
	return 0;
}
