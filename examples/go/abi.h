/* SPDX-License-Identifier: MIT */
/* Declarations the Go side calls (abi.c defines them). */
#ifndef LUTF_GO_ABI_H
#define LUTF_GO_ABI_H

#include <lutf/function.h>

int lutf_go_write(struct lutf_call *call, const void *buf, size_t len);
int lutf_go_fail(struct lutf_call *call, const char *msg);
int lutf_go_set_content_type(struct lutf_call *call, const char *type);
const char *lutf_go_config(struct lutf_call *call, const char *key);

#endif
