/* SPDX-License-Identifier: MIT */
/* A test app that claims an ABI this runtime does not speak. */
#include <stdint.h>

#include <lutf/function.h>

__attribute__((visibility("default"))) const uint32_t lutf_abi_version = LUTF_ABI_VERSION + 41;

LUTF_FUNCTION(echo)
{
	return 0;
}
