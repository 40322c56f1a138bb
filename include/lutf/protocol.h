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
	X(DEADLINE, 14, 504, "deadline")                                                           \
	X(NOT_PERSISTED, 15, 507, "not persisted")

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

/*
 * ---- Wire protocol (docs/protocol.md is the byte-by-byte specification) ----
 *
 * Every message, request or reply, is one frame: a 24-byte header followed by
 * `length` payload bytes. All integers are little-endian. A peer may send many
 * requests without waiting (pipelining); replies carry the request's id and
 * may come back in any order. A frame that fails validation (bad magic,
 * version, opcode or length) is answered MALFORMED / TOO_LARGE with the
 * request id it carried (0 if unreadable) and the connection is closed.
 */
#define LUTF_WIRE_MAGIC 0x4654554cu /* "LUTF" */
#define LUTF_WIRE_VERSION 1u
#define LUTF_WIRE_HDR_SIZE 24u
#define LUTF_WIRE_MAX_FRAME_DEFAULT (6u << 20) /* payload bytes; configurable */

struct lutf_wire_hdr {
	uint32_t magic;	     /* LUTF_WIRE_MAGIC */
	uint16_t version;    /* LUTF_WIRE_VERSION */
	uint16_t opcode;     /* enum lutf_op; replies set LUTF_OP_REPLY */
	uint32_t length;     /* payload bytes that follow */
	uint32_t status;     /* replies: enum lutf_status; requests: 0 */
	uint64_t request_id; /* chosen by the client, echoed in the reply */
} __attribute__((packed));

#ifdef __cplusplus /* an installed header: C++ programs include it too */
static_assert(sizeof(struct lutf_wire_hdr) == LUTF_WIRE_HDR_SIZE, "wire header is 24 bytes");
#else
_Static_assert(sizeof(struct lutf_wire_hdr) == LUTF_WIRE_HDR_SIZE, "wire header is 24 bytes");
#endif

#define LUTF_OP_REPLY 0x8000u

enum lutf_op {
	/* data socket */
	LUTF_OP_INVOKE = 1,
	LUTF_OP_PING = 2,
	/* control socket only (anywhere else: FORBIDDEN, then close) */
	LUTF_OP_DEPLOY = 16,
	LUTF_OP_PAUSE = 17,
	LUTF_OP_RESUME = 18,
	LUTF_OP_DELETE = 19,
	LUTF_OP_LIST = 20,
	LUTF_OP_STATUS = 21,
	LUTF_OP_STATS = 22,
	LUTF_OP_LOGS = 23,
	/* API keys (control socket only; docs/protocol.md "API keys") */
	LUTF_OP_KEY_CREATE = 32,
	LUTF_OP_KEY_LIST = 33,
	LUTF_OP_KEY_REVOKE = 34,
};

/*
 * Payloads are a sequence of TLV fields: u16 tag, u32 length, `length` bytes.
 * Unknown tags are skipped (forward compatibility); a field whose length runs
 * past the payload is MALFORMED. Strings are not NUL-terminated on the wire.
 * Integers inside fields are little-endian u32 or u64 as the tag says.
 */
#define LUTF_TLV_HDR_SIZE 6u

enum lutf_tag {
	/* addressing */
	LUTF_TAG_TENANT = 1,   /* string, [a-z0-9][a-z0-9_-]{0,62} */
	LUTF_TAG_APP = 2,      /* string, same rule */
	LUTF_TAG_FUNCTION = 3, /* string, same rule */
	/* invoke request */
	LUTF_TAG_INPUT = 10,	    /* bytes */
	LUTF_TAG_CONTENT_TYPE = 11, /* string */
	LUTF_TAG_HEADER = 12,	    /* "name\0value" (repeatable) */
	LUTF_TAG_TIMEOUT_MS = 13,   /* u32 */
	/* invoke reply */
	LUTF_TAG_OUTPUT = 20, /* bytes */
	LUTF_TAG_ERROR = 21,  /* string: the human cause of a non-OK status */
	LUTF_TAG_DETAIL = 22, /* u32: signal for CRASHED, syscall for KILLED_BY_POLICY */
	/* deploy */
	LUTF_TAG_SO = 30,	       /* bytes: the app's shared object */
	LUTF_TAG_EXPORT = 31,	       /* string "function=symbol" (repeatable) */
	LUTF_TAG_TIER = 32,	       /* string: pure | basic | service | compat */
	LUTF_TAG_MEMORY_MB = 33,       /* u32 */
	LUTF_TAG_MAX_CONCURRENCY = 34, /* u32 */
	LUTF_TAG_CONFIG = 35,	       /* "function\0key\0value" (repeatable) */
	LUTF_TAG_VERSION = 36,	       /* u64: app version assigned at deploy */
	LUTF_TAG_URL = 37,	       /* string: an invoke URL (repeatable, in replies) */
	LUTF_TAG_KIND = 38,	       /* string: DEPLOY: native (default) | python */
	/* list / status / stats / logs replies: one RECORD per row, each a
	 * nested TLV sequence of the fields below (and the addressing tags) */
	LUTF_TAG_RECORD = 40,  /* bytes: nested TLV */
	LUTF_TAG_STATE = 41,   /* string: active | paused */
	LUTF_TAG_COUNTER = 42, /* "name\0" followed by a u64 */
	LUTF_TAG_TEXT = 43,    /* string: a log line */
	LUTF_TAG_LIMIT = 44,   /* u32: rows wanted (logs) */
	LUTF_TAG_FORCE = 45,   /* u32: DELETE of a tenant: 1 = its functions too */
	/* API keys (docs/protocol.md "API keys") */
	LUTF_TAG_KEY = 50,     /* string: an API key; INVOKE over TCP, KEY_CREATE reply */
	LUTF_TAG_KEY_ID = 51,  /* string: a key's public id (16 hex digits) */
	LUTF_TAG_CREATED = 52, /* u64: unix seconds a key was created */
	LUTF_TAG_REVOKED = 53, /* u64: unix seconds a key was revoked */
	LUTF_TAG_PUBLIC = 54,  /* u32: DEPLOY: 1 = its functions need no key */
	LUTF_TAG_WORKERS = 55, /* u32: DEPLOY: the tenant's worker processes, 1..16 */
};

#endif /* LUTF_PROTOCOL_H */
