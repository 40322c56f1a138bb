/* SPDX-License-Identifier: MIT */
/*
 * The lutf function ABI: what a function in an app (.so) sees.
 *
 * A function is   int fn(struct lutf_call *call);
 * It reads its input and metadata from the call, writes output bytes through
 * the call, and returns 0 (ok) or non-zero (function error). Everything goes
 * through the call's ops table, so an app links against nothing of lutf's:
 * build it with -fPIC -shared and put LUTF_APP_ABI; in one of its files.
 *
 * The call handle is valid only during the call, on the calling thread.
 */
#ifndef LUTF_FUNCTION_H
#define LUTF_FUNCTION_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to this header. */
#define LUTF_ABI_VERSION 1u

/* Limits an app can rely on. */
#define LUTF_CONTENT_TYPE_MAX 127 /* bytes, without the NUL */
#define LUTF_ERROR_MSG_MAX 255	  /* bytes, without the NUL */
#define LUTF_LOG_LINE_MAX 512	  /* bytes; longer lines are cut */

struct lutf_call;

struct lutf_call_ops {
	uint32_t size; /* sizeof(struct lutf_call_ops) of the runtime */
	/* Append output bytes. 0, or -ENOMEM / -EMSGSIZE (over the output limit). */
	int (*write)(struct lutf_call *call, const void *buf, size_t len);
	/* Output content type (default "application/octet-stream"). 0 or -EINVAL. */
	int (*set_content_type)(struct lutf_call *call, const char *type);
	/* Mark the call failed with a message; the output is dropped. Returns 0. */
	int (*fail)(struct lutf_call *call, const char *msg);
	/* One log line for operators (lutfctl logs). */
	void (*log)(struct lutf_call *call, const char *line, size_t len);
	/* Per-function configuration given at deploy; NULL when the key is absent. */
	const char *(*config)(struct lutf_call *call, const char *key);
	/* Request metadata: "content-type" or a lower-case header name; NULL if absent. */
	const char *(*meta)(struct lutf_call *call, const char *key);
};

struct lutf_call {
	const struct lutf_call_ops *ops;
	const void *input; /* input bytes, valid during the call */
	size_t input_len;
	uint64_t request_id;  /* unique within the runtime */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = none */
	void *app_state;      /* what lutf_app_init stored, or NULL */
	void *runtime_priv;   /* the runtime's; do not touch */
};

typedef int (*lutf_fn_t)(struct lutf_call *call);

/*
 * Symbols an app exports:
 *   lutf_abi_version   required; LUTF_APP_ABI defines it.
 *   lutf_app_init      optional: int lutf_app_init(void **app_state); 0 or -errno.
 *                      Runs once when the app is loaded; a failure refuses the app.
 *   lutf_app_fini      optional: void lutf_app_fini(void *app_state); runs at unload.
 */
typedef int (*lutf_app_init_t)(void **app_state);
typedef void (*lutf_app_fini_t)(void *app_state);

/* C++: extern "C" gives the symbols C names, and the const its external
 * linkage (a namespace-scope const is internal in C++). */
#ifdef __cplusplus
#define LUTF_C_LINKAGE extern "C"
#else
#define LUTF_C_LINKAGE
#endif

#define LUTF_APP_ABI                                                                               \
	LUTF_C_LINKAGE __attribute__((visibility("default"))) const uint32_t lutf_abi_version =    \
		LUTF_ABI_VERSION

/* Define an exported function:  LUTF_FUNCTION(hello) { ... use call ... } */
#define LUTF_FUNCTION(name)                                                                        \
	LUTF_C_LINKAGE __attribute__((visibility("default"))) int name(struct lutf_call *call);    \
	LUTF_C_LINKAGE int name(struct lutf_call *call)

static inline int lutf_write(struct lutf_call *call, const void *buf, size_t len)
{
	return call->ops->write(call, buf, len);
}

static inline int lutf_set_content_type(struct lutf_call *call, const char *type)
{
	return call->ops->set_content_type(call, type);
}

static inline int lutf_fail(struct lutf_call *call, const char *msg)
{
	return call->ops->fail(call, msg);
}

static inline const char *lutf_config(struct lutf_call *call, const char *key)
{
	return call->ops->config(call, key);
}

static inline const char *lutf_meta(struct lutf_call *call, const char *key)
{
	return call->ops->meta(call, key);
}

__attribute__((format(printf, 2, 3))) static inline void lutf_log(struct lutf_call *call,
								  const char *fmt, ...)
{
	char line[LUTF_LOG_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	call->ops->log(call, line, (size_t)n);
}

#ifdef __cplusplus
}
#endif

#endif /* LUTF_FUNCTION_H */
