/* SPDX-License-Identifier: MIT */
/*
 * A test connection for the HTTP engine: records the requests it parses and
 * the bytes it writes. Invocations are answered at once (echo of the body)
 * or held for the test to answer in any order.
 */
#ifndef LUTF_TEST_HTTP_HARNESS_H
#define LUTF_TEST_HTTP_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define TH_MAX_REQS 2048

struct th_req {
	uint64_t seq;
	char tenant[64], name[64];
	char ctype[128]; /* "" when absent */
	char meta[512];	 /* "name=value;" for each header passed */
	char *body;
	size_t body_len;
	bool keep_alive;
	uint8_t minor;
};

struct th {
	struct lutf_http_server s;
	struct lutf_http_conn *c;
	struct lutf_http_buf out;
	struct th_req req[TH_MAX_REQS];
	unsigned nreq;
	bool hold;	    /* do not answer invocations */
	int write_err;	    /* returned by write */
	const char *metrics; /* text for /metrics; NULL: -EIO */
	uint64_t now;
};

/* Default limits unless lim; date empty (no Date header). */
void th_init(struct th *t, const struct lutf_http_limits *lim);
void th_fini(struct th *t);
/* Feed the whole of s (len or strlen), all at once; returns bytes consumed. */
size_t th_feed(struct th *t, const char *s, size_t len);
/* Feed in pieces: cut at each offset of cuts[] (ascending). Asserts all consumed. */
void th_feed_split(struct th *t, const char *s, size_t len, const size_t *cuts, unsigned ncuts);
/* The output so far as a NUL-terminated string, and forget it. */
char *th_take(struct th *t);
/* A 200 response the engine writes for body (text/plain echo). */
char *th_echo_resp(const char *body, size_t len, bool close);

#endif
