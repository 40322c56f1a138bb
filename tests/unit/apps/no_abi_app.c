/* SPDX-License-Identifier: MIT */
/* A shared object that is not a lutf app: no lutf_abi_version. */
#include <lutf/function.h>

LUTF_FUNCTION(echo)
{
	return 0;
}
