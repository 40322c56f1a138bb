/* SPDX-License-Identifier: MIT */
/*
 * lutf typed statuses: the one table shared by the engine, the wire protocol,
 * the client library, lutfctl (exit codes) and the HTTP gateway.
 * Values are part of the wire format: never renumber, only append.
 */
#ifndef LUTF_PROTOCOL_H
#define LUTF_PROTOCOL_H

#include <stdint.h>

/*
 * X(name, value, http status, short text)
 * The HTTP column is DESIGN.md's mapping; 503 answers also carry Retry-After.
 */
#define LUTF_STATUS_TABLE(X)                                                                       \
	X(OK, 0, 200, "ok")                                                                        \
	X(MALFORMED, 1, 400, "malformed")                                                          \
	X(FORBIDDEN, 2, 403, "forbidden")                                                          \
	X(UNKNOWN_FUNCTION, 3, 404, "unknown function")                                            \
	X(DELETED, 4, 404, "deleted")                                                              \
	X(TOO_LARGE, 5, 413, "too large")                                                          \
	X(RATE_LIMITED, 6, 429, "rate limited")                                                    \
	X(CRASHED, 7, 500, "crashed")                                                              \
	X(KILLED_BY_POLICY, 8, 500, "killed by policy")                                            \
	X(OUT_OF_MEMORY, 9, 500, "out of memory")                                                  \
	X(FUNCTION_ERROR, 10, 500, "function error")                                               \
	X(PAUSED, 11, 503, "paused")                                                               \
	X(OVERLOADED, 12, 503, "overloaded")                                                       \
	X(SHUTTING_DOWN, 13, 503, "shutting down")                                                 \
	X(DEADLINE, 14, 504, "deadline")

enum lutf_status {
#define LUTF_STATUS_ENUM(name, value, http, text) LUTF_STATUS_##name = value,
	LUTF_STATUS_TABLE(LUTF_STATUS_ENUM)
#undef LUTF_STATUS_ENUM
	LUTF_STATUS__COUNT
};

/* Short human text for a status ("deadline"); "unknown status" for others. */
static inline const char *lutf_status_str(uint32_t status)
{
	switch (status) {
#define LUTF_STATUS_STR(name, value, http, text)                                                   \
	case value:                                                                                \
		return text;
		LUTF_STATUS_TABLE(LUTF_STATUS_STR)
#undef LUTF_STATUS_STR
	}
	return "unknown status";
}

/* HTTP status code DESIGN.md maps a status to; 500 for unknown values. */
static inline int lutf_status_http(uint32_t status)
{
	switch (status) {
#define LUTF_STATUS_HTTP(name, value, http, text)                                                  \
	case value:                                                                                \
		return http;
		LUTF_STATUS_TABLE(LUTF_STATUS_HTTP)
#undef LUTF_STATUS_HTTP
	}
	return 500;
}

#endif /* LUTF_PROTOCOL_H */
