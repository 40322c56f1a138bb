/* SPDX-License-Identifier: MIT */
/*
 * The C side of the Go example: the ABI version symbol, and thin wrappers
 * that call through the ops table (Go cannot call a C function pointer).
 * Kept out of the cgo preamble: a preamble beside //export may only declare.
 */
#include "abi.h"

LUTF_APP_ABI;

int lutf_go_write(struct lutf_call *call, const void *buf, size_t len)
{
	return call->ops->write(call, buf, len);
}

int lutf_go_fail(struct lutf_call *call, const char *msg)
{
	return call->ops->fail(call, msg);
}

int lutf_go_set_content_type(struct lutf_call *call, const char *type)
{
	return call->ops->set_content_type(call, type);
}

const char *lutf_go_config(struct lutf_call *call, const char *key)
{
	return call->ops->config(call, key);
}
