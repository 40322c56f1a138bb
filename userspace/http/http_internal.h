/* SPDX-License-Identifier: MIT */
/* Private to userspace/http: the connection state shared by http.c and http_resp.c. */
#ifndef LUTF_HTTP_INTERNAL_H
#define LUTF_HTTP_INTERNAL_H

#include <llhttp.h>

#include "http.h"

enum route { R_NONE, R_INVOKE, R_HEALTHZ, R_METRICS, R_NOT_FOUND, R_BAD_METHOD, R_OTHER };

/* One response slot of the reorder queue (index seq % max_pending). */
struct lutf_http_slot {
	bool used;  /* a request with this seq was parsed */
	bool ready; /* its response is formatted in resp */
	bool close; /* the connection closes after it */
	bool head;  /* HEAD: no body */
	struct lutf_http_buf resp;
};

/* A response to format. */
struct lutf_http_out {
	int code;
	const char *ctype; /* success only */
	const void *body;
	size_t body_len;
	const char *cause; /* errors: the typed cause; the body is "<cause>: <msg>\n" */
	const char *msg;
	const char *allow; /* 405 */
	const char *location;
	unsigned retry_after;
	bool close;
	bool head;
};

struct lutf_http_conn {
	const struct lutf_http_server *s;
	struct lutf_http_limits lim; /* s->lim when the connection opened */
	void *user;
	llhttp_t p;
	uint64_t now_ms;
	uint64_t next_seq; /* given to the next request parsed */
	uint64_t out_seq;  /* next response to write */
	unsigned pending;  /* next_seq - out_seq */
	struct lutf_http_slot *q;
	struct lutf_http_buf spare; /* a written response's buffer, empty, for the next */

	/* the request being parsed */
	bool in_msg;		 /* message begun, not complete */
	bool begin_known;	 /* begin_off is set */
	uint64_t begin_off;	 /* stream offset of the request's first byte */
	uint64_t begin_ms;
	uint64_t stream_off;	 /* stream offset of the chunk being parsed */
	const char *chunk;	 /* the chunk being parsed */
	char *hbuf;		 /* URL, then kept header names and values, NUL-separated */
	size_t hlen;
	size_t url_len;
	size_t field_off;
	bool field_open, value_open, keep_field;
	int ctype_off;
	int auth_off; /* Authorization: kept apart, never passed to a function */
	unsigned nmeta;
	uint32_t meta_off[LUTF_HTTP_MAX_META][2];
	bool expect_continue;
	enum route route;
	char tenant[64], name[64];
	uint64_t body_seen;
	struct lutf_http_buf body;

	/* an error found inside a callback, answered by feed */
	int err_code;
	const char *err_cause;
	char err_msg[96];

	bool llpaused;	 /* llhttp returned HPE_PAUSED; resume before the next execute */
	bool closing;	 /* parse nothing more */
	bool closed_out; /* the closing response was written */
	bool dead;	 /* a write failed */
	uint64_t last_active_ms;
	uint64_t rate_sec;
	uint32_t rate_count;
};

void lutf_http_format(const struct lutf_http_server *s, struct lutf_http_buf *b,
		      const struct lutf_http_out *o);
/* Format o as the response to seq and write what is ready. 0, -EINVAL or -ENOMEM. */
int lutf_http_queue(struct lutf_http_conn *c, uint64_t seq, struct lutf_http_out *o);
void lutf_http_flush(struct lutf_http_conn *c);

#endif /* LUTF_HTTP_INTERNAL_H */
