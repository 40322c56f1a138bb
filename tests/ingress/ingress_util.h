/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the ingress tests, over tests/daemon/daemon_util.h: start lutfd
 * with a TCP listener on an ephemeral port (read back from <run>/tcp.addr),
 * connect by Unix or TCP, deploy the test app, read STATUS fields, and a
 * frame reader for pipelined replies. Every wait is bounded.
 */
#ifndef LUTF_TEST_INGRESS_UTIL_H
#define LUTF_TEST_INGRESS_UTIL_H

#include <sys/resource.h>

#include "daemon_util.h"

#define INGRESS_APP TEST_APP_DIR "/libingress_app.so"

/* Start lutfd (td_start): TCP on 127.0.0.1:0 plus extra config lines. */
static inline bool ti_start(struct td *d, const char *extra)
{
	char conf[1024];

	snprintf(conf, sizeof(conf), "listen_tcp = 127.0.0.1:0\n%s", extra ? extra : "");
	return td_start(d, conf);
}

static inline void ti_raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_max < want) {
		rl.rlim_max = want; /* root may raise it */
	}
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* Connect to lutfd's TCP listener (address from <run>/tcp.addr). */
static inline int ti_connect_tcp(const struct td *d)
{
	char addr[80];

	return td_addr(d, "tcp.addr", addr, sizeof(addr)) ? td_connect_tcp(addr) : -1;
}

/* Deploy the test app as tenant t (noop, echo). Returns the status. */
static inline uint32_t ti_deploy(int cfd, const char *t)
{
	static const char *const ex[] = {"noop=noop", "echo=echo", NULL};
	struct td_reply r;
	uint32_t st = td_deploy(cfd, t, "app", INGRESS_APP, ex, &r);
	char err[256];

	if (st != LUTF_STATUS_OK && r.payload && td_field_str(&r, LUTF_TAG_ERROR, err, sizeof(err)))
		fprintf(stderr, "deploy: status %u: %s\n", st, err);
	free(r.payload);
	return st;
}

/* ti_start, the control connection into *cfd and the test app as tenant
 * "t": what every ingress test starts with. */
static inline bool ti_start_app(struct td *d, const char *extra, int *cfd)
{
	if (!ti_start(d, extra))
		return false;
	*cfd = td_connect(d, "control.sock");
	return *cfd >= 0 && ti_deploy(*cfd, "t") == LUTF_STATUS_OK;
}

/* STATUS: a top-level COUNTER, or a TEXT starting with prefix (copied to out). */
static inline bool ti_status(int cfd, const char *counter, uint64_t *v, const char *prefix,
			     char *out, size_t cap)
{
	struct td_reply r;
	struct lutf_tlv f;
	bool ok = false;

	if (!td_status(cfd, &r))
		return false;
	if (counter)
		ok = td_counter(r.payload, r.h.length, counter, v);
	for (int i = 0; prefix && td_field(&r, LUTF_TAG_TEXT, i, &f); i++) {
		size_t n = strlen(prefix);

		if (f.len >= n && !memcmp(f.val, prefix, n) && f.len < cap) {
			memcpy(out, f.val, f.len);
			out[f.len] = 0;
			ok = true;
			break;
		}
	}
	free(r.payload);
	return ok;
}

static inline uint64_t ti_counter(int cfd, const char *name)
{
	uint64_t v = 0;

	if (!ti_status(cfd, name, &v, NULL, NULL, 0))
		return UINT64_MAX;
	return v;
}

/* lutfd's resident set, KiB (0 if unknown). */
static inline uint64_t ti_rss_kib(pid_t pid)
{
	char path[64], line[256];
	uint64_t kib = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fp = fopen(path, "r");
	while (fp && fgets(line, sizeof(line), fp))
		if (sscanf(line, "VmRSS: %lu kB", (unsigned long *)&kib) == 1)
			break;
	if (fp)
		fclose(fp);
	return kib;
}

/* Incremental frame reader for pipelined replies on one connection. */
struct ti_rd {
	uint8_t *buf;
	size_t len, cap;
};

/* Read what is there (non-blocking socket or after poll). Returns bytes, 0 on
 * EOF, -1 on error; EAGAIN gives -2. */
static inline ssize_t ti_rd_fill(struct ti_rd *rd, int fd)
{
	ssize_t n;

	if (rd->cap - rd->len < 65536) {
		size_t cap = rd->cap ? rd->cap * 2 : 262144;

		rd->buf = realloc(rd->buf, cap);
		rd->cap = cap;
	}
	n = recv(fd, rd->buf + rd->len, rd->cap - rd->len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
	rd->len += (size_t)n;
	return n;
}

/* The next whole frame (header into h, payload pointer), or false. Call
 * ti_rd_done after each batch. */
static inline bool ti_rd_next(struct ti_rd *rd, size_t *pos, struct lutf_wire_hdr *h,
			      const uint8_t **payload)
{
	if (rd->len - *pos < LUTF_WIRE_HDR_SIZE)
		return false;
	if (lutf_frame_parse_hdr(rd->buf + *pos, 64u << 20, h) != LUTF_STATUS_OK)
		return false;
	if (rd->len - *pos < LUTF_WIRE_HDR_SIZE + (size_t)h->length)
		return false;
	*payload = rd->buf + *pos + LUTF_WIRE_HDR_SIZE;
	*pos += LUTF_WIRE_HDR_SIZE + h->length;
	return true;
}

static inline void ti_rd_done(struct ti_rd *rd, size_t pos)
{
	memmove(rd->buf, rd->buf + pos, rd->len - pos);
	rd->len -= pos;
}

#endif
