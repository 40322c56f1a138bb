/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the HTTP gateway tests: a lutfd with the gateway on ephemeral
 * loopback ports (daemon_util.h: td_addr reads them, td_connect_tcp dials
 * them), the test app deployed, and a small blocking HTTP/1.1 client over
 * real sockets. Every wait is bounded.
 */
#ifndef LUTF_TEST_GW_UTIL_H
#define LUTF_TEST_GW_UTIL_H

#include "daemon_util.h"

#define GW_EXTRA "http_listen = 127.0.0.1:0\nadmin_listen = 127.0.0.1:0\nallow_tier_none = on\n"

static inline bool gw_send(int fd, const void *p, size_t n)
{
	struct lutf_buf b = {.data = (uint8_t *)p, .len = n};

	return td_send(fd, &b);
}

static inline bool gw_sends(int fd, const char *s)
{
	return gw_send(fd, s, strlen(s));
}

/* A connection's input, kept across responses (pipelining). */
struct gw_in {
	char buf[1 << 17];
	size_t len;
};

struct gw_resp {
	int code;
	char head[8192]; /* status line and headers, NUL-terminated */
	char *body;	 /* malloc'ed, NUL-terminated */
	size_t body_len;
};

/* Header value (case-insensitive name) into out; false if absent. */
static inline bool gw_header(const struct gw_resp *r, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);

	for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2, *end = strstr(line, "\r\n");

		if (!end)
			break;
		if (!strncasecmp(line, name, n) && line[n] == ':') {
			const char *v = line + n + 1;
			size_t vl;

			while (*v == ' ')
				v++;
			vl = (size_t)(end - v);
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, v, vl);
			out[vl] = 0;
			return true;
		}
	}
	return false;
}

static inline void gw_resp_free(struct gw_resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* More bytes into in; false on timeout, close or error. */
static inline bool gw_fill(int fd, struct gw_in *in, int64_t until)
{
	struct pollfd p = {fd, POLLIN, 0};
	int64_t left = until - (int64_t)td_now_ms();
	ssize_t n;

	if (in->len == sizeof(in->buf) || left <= 0 || poll(&p, 1, (int)left) <= 0)
		return false;
	n = recv(fd, in->buf + in->len, sizeof(in->buf) - in->len, 0);
	if (n <= 0)
		return false;
	in->len += (size_t)n;
	return true;
}

/* Read one response (Content-Length framed, as lutfd answers). */
static inline bool gw_read(int fd, struct gw_in *in, struct gw_resp *r, int timeout_ms)
{
	int64_t until = (int64_t)td_now_ms() + timeout_ms;
	char cl[32];
	char *end;
	size_t hl, bl;

	memset(r, 0, sizeof(*r));
	while (!(end = memmem(in->buf, in->len, "\r\n\r\n", 4)))
		if (!gw_fill(fd, in, until))
			return false;
	hl = (size_t)(end - in->buf) + 4;
	if (hl >= sizeof(r->head))
		return false;
	memcpy(r->head, in->buf, hl);
	r->head[hl] = 0;
	if (sscanf(r->head, "HTTP/1.1 %d", &r->code) != 1)
		return false;
	bl = gw_header(r, "Content-Length", cl, sizeof(cl)) ? strtoul(cl, NULL, 10) : 0;
	if (r->code == 100) /* interim: the caller reads on */
		bl = 0;
	while (in->len < hl + bl)
		if (!gw_fill(fd, in, until))
			return false;
	r->body = malloc(bl + 1);
	memcpy(r->body, in->buf + hl, bl);
	r->body[bl] = 0;
	r->body_len = bl;
	memmove(in->buf, in->buf + hl + bl, in->len - hl - bl);
	in->len -= hl + bl;
	return true;
}

/* True once the peer closed (EOF or reset) within timeout_ms, no bytes first. */
static inline bool gw_closed(int fd, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	char c;

	if (poll(&p, 1, timeout_ms) <= 0)
		return false;
	return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/* POST body to path on a fresh connection... or fd when >= 0. Returns the code. */
static inline int gw_post(int fd, struct gw_in *in, const char *path, const char *body,
			  const char *extra_headers, struct gw_resp *r)
{
	char req[1024];

	snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n%s\r\n%s",
		 path, strlen(body), extra_headers ? extra_headers : "", body);
	if (!gw_sends(fd, req) || !gw_read(fd, in, r, 10000))
		return -1;
	return r->code;
}

/* Deploy so as tenant/app, tier none, exports; max_conc and timeout_ms when non-zero. */
static inline uint32_t gw_deploy(int cfd, const char *tenant, const char *app, const char *so_path,
				 const char *const *exports, uint32_t max_conc, uint32_t timeout_ms)
{
	struct td_deploy_opts o = {.tier = "none", .max_conc = max_conc, .timeout_ms = timeout_ms};
	struct td_reply r;
	uint32_t st = td_deploy_with(cfd, tenant, app, so_path, exports, &o, &r);

	free(r.payload);
	return st;
}

#endif
