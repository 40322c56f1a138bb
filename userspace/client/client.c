/* SPDX-License-Identifier: MIT */
/*
 * liblutf-client connections: dial a URL, send one frame, reassemble its reply
 * across partial reads under one monotonic deadline, and invoke. Invariant: a
 * handle either has no request outstanding or is poisoned (fd closed), so a
 * reply read on a usable handle can only answer the request just sent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "nats_int.h"

#define RX_MIN_CAP 4096u

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Absolute deadline for a wait of ms milliseconds; -1 for none. */
static int64_t deadline_after(uint32_t ms)
{
	return ms ? now_ns() + (int64_t)ms * 1000000 : -1;
}

/*
 * Wait until fd is ready for events or the deadline passes. Returns 0 when
 * ready (or in error/hang-up, which the next read or write reports), or
 * -ETIMEDOUT, or the -errno of poll.
 */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};

	for (;;) {
		int ms = -1, n;

		if (deadline >= 0) {
			int64_t left = deadline - now_ns();

			if (left <= 0)
				return -ETIMEDOUT;
			/* Round up: a 0 ms poll would spin until the deadline. */
			left = (left + 999999) / 1000000;
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int dial_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	int fd, err;

	if (n == 0 || path[0] != '/')
		return -EINVAL;
	if (n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, n + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		goto err;
	}
	err = set_nonblock(fd);
	if (err)
		goto err;
	return fd;
err:
	close(fd);
	return err;
}

/* "host:port" or "[v6]:port" (the part after tcp://). */
static int dial_tcp(const char *hostport)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char host[256];
	const char *port, *colon;
	size_t hl;
	int fd = -1, err = -EHOSTUNREACH, one = 1;

	if (hostport[0] == '[') {
		const char *close_br = strchr(hostport, ']');

		if (!close_br || close_br[1] != ':')
			return -EINVAL;
		hl = (size_t)(close_br - hostport - 1);
		memcpy(host, hostport + 1, hl < sizeof(host) ? hl : 0);
		port = close_br + 2;
	} else {
		colon = strrchr(hostport, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - hostport);
		memcpy(host, hostport, hl < sizeof(host) ? hl : 0);
		port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host) || !*port || strspn(port, "0123456789") != strlen(port))
		return -EINVAL;
	host[hl] = 0;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err;
	/* Frames are written whole; Nagle would only delay small requests. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	err = set_nonblock(fd);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* Returns a connected non-blocking fd, or -errno. */
int clnt_dial(const char *url)
{
	if (strncmp(url, "unix://", 7) == 0)
		return dial_unix(url + 7);
	if (strncmp(url, "tcp://", 6) == 0)
		return dial_tcp(url + 6);
	if (url[0] == '/')
		return dial_unix(url);
	return -EINVAL;
}

/* Returns 0 and *out, or -EINVAL, -ENAMETOOLONG, -ENOMEM or the connect -errno. */
int lutf_client_connect(const char *url, struct lutf_client **out)
{
	struct lutf_client *c;
	int fd;

	if (!url || !out)
		return -EINVAL;
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->url = strdup(url);
	if (!c->url) {
		free(c);
		return -ENOMEM;
	}
	c->fd = -1;
	fd = clnt_is_nats(url) ? clnt_nats_connect(c) : clnt_dial(url);
	if (fd < 0) {
		free(c->url);
		free(c);
		return fd;
	}
	if (!c->nats)
		c->fd = fd;
	c->next_id = 1;
	c->timeout_ms = LUTF_CLIENT_DEFAULT_TIMEOUT_MS;
	c->grace_ms = LUTF_CLIENT_DEFAULT_GRACE_MS;
	c->max_frame = LUTF_WIRE_MAX_FRAME_DEFAULT;
	clnt_env_key(c->key, sizeof(c->key));
	lutf_buf_init(&c->tx);
	*out = c;
	return 0;
}

void lutf_client_close(struct lutf_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	clnt_nats_close(c);
	lutf_buf_free(&c->tx);
	free(c->rx);
	free(c->url);
	free(c);
}

/* Returns 0, or -EINVAL for a NULL handle, or the dial -errno (handle stays poisoned). */
int lutf_client_reconnect(struct lutf_client *c)
{
	int fd;

	if (!c)
		return -EINVAL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->rx_len = 0;
	c->rx_used = 0;
	if (clnt_is_nats(c->url)) {
		clnt_nats_close(c);
		fd = clnt_nats_connect(c);
		c->poison = fd;
		return fd;
	}
	fd = clnt_dial(c->url);
	if (fd < 0) {
		c->poison = fd;
		return fd;
	}
	c->fd = fd;
	c->poison = 0;
	return 0;
}

/* Returns 0, or -EINVAL for a NULL handle. */
int lutf_client_set_timeout(struct lutf_client *c, uint32_t timeout_ms, uint32_t grace_ms)
{
	if (!c)
		return -EINVAL;
	c->timeout_ms = timeout_ms;
	c->grace_ms = grace_ms;
	return 0;
}

/* Returns 0, or -EINVAL for a NULL handle or a limit below 4096. */
int lutf_client_set_max_frame(struct lutf_client *c, uint32_t bytes)
{
	if (!c || bytes < 4096)
		return -EINVAL;
	c->max_frame = bytes;
	return 0;
}

/* Returns err, a -errno. */
int clnt_poison(struct lutf_client *c, int err)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->poison = err;
	c->rx_len = 0;
	c->rx_used = 0;
	return err;
}

char *clnt_strndup(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = 0;
	return s;
}

/* Returns 0, or -ENOTCONN for a poisoned or closed handle. */
int clnt_begin(struct lutf_client *c, uint16_t op)
{
	if (c->nats)
		return -EOPNOTSUPP; /* control calls need lutfd's control socket */
	if (c->fd < 0)
		return -ENOTCONN;
	c->tx.len = 0;
	c->tx.failed = false;
	c->tx_op = op;
	c->tx_frame = lutf_frame_begin(&c->tx, op, 0, c->next_id);
	return 0;
}

/*
 * Write all of buf before the deadline. Returns 0 or -errno (-ETIMEDOUT,
 * -EPIPE, -ECONNRESET, ...). MSG_NOSIGNAL: a closed peer is an error code,
 * never a SIGPIPE in the caller's process.
 */
static int send_all(int fd, const uint8_t *buf, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		int err;

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		err = wait_fd(fd, POLLOUT, deadline);
		if (err)
			return err;
	}
	return 0;
}

/* Grow rx to hold at least want bytes. Returns 0 or -ENOMEM. */
static int rx_reserve(struct lutf_client *c, size_t want)
{
	uint8_t *p;

	if (want <= c->rx_cap)
		return 0;
	p = realloc(c->rx, want);
	if (!p)
		return -ENOMEM;
	c->rx = p;
	c->rx_cap = want;
	return 0;
}

/*
 * Read until rx holds at least want bytes. Returns 0, -ETIMEDOUT, -ECONNRESET
 * (closed before any byte of this reply), -EPROTO (closed mid-frame) or the
 * -errno of recv.
 */
static int rx_fill(struct lutf_client *c, size_t want, int64_t deadline)
{
	while (c->rx_len < want) {
		ssize_t n = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, 0);
		int err;

		if (n > 0) {
			c->rx_len += (size_t)n;
			continue;
		}
		if (n == 0)
			return c->rx_len ? -EPROTO : -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		err = wait_fd(c->fd, POLLIN, deadline);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Receive the reply to request id with opcode op. Validates magic, version,
 * length (before allocating), the reply bit, the opcode echo and the id.
 */
static int recv_reply(struct lutf_client *c, uint16_t op, uint64_t id, int64_t deadline,
		      struct clnt_reply *r)
{
	uint32_t st;
	uint16_t echo;
	int err;

	err = rx_reserve(c, RX_MIN_CAP);
	if (err)
		return err;
	err = rx_fill(c, LUTF_WIRE_HDR_SIZE, deadline);
	if (err)
		return err;
	st = lutf_frame_parse_hdr(c->rx, c->max_frame, &r->hdr);
	if (st == LUTF_STATUS_TOO_LARGE)
		return -EMSGSIZE;
	if (st != LUTF_STATUS_OK)
		return -EPROTO;
	/* Replies set the reply bit and echo the request's opcode (or carry
	 * none, for a frame lutfd could not read). */
	echo = r->hdr.opcode & (uint16_t)~LUTF_OP_REPLY;
	if (!(r->hdr.opcode & LUTF_OP_REPLY) || (echo && echo != op))
		return -EPROTO;
	r->refused = false;
	if (r->hdr.request_id != id) {
		/* lutfd refuses a whole connection (too many connections, peer
		 * credentials) with request id 0 and a non-OK status, then closes:
		 * that is the answer to this call too. Any other id is not ours. */
		if (r->hdr.request_id != 0 || r->hdr.status == LUTF_STATUS_OK)
			return -EPROTO;
		r->refused = true;
	}
	err = rx_reserve(c, LUTF_WIRE_HDR_SIZE + (size_t)r->hdr.length);
	if (err)
		return err;
	err = rx_fill(c, LUTF_WIRE_HDR_SIZE + (size_t)r->hdr.length, deadline);
	if (err)
		return err;
	r->payload = c->rx + LUTF_WIRE_HDR_SIZE;
	c->rx_used = LUTF_WIRE_HDR_SIZE + (size_t)r->hdr.length;
	return 0;
}

/* Drop the previous reply's frame from rx, keeping any bytes after it. */
static void rx_consume(struct lutf_client *c)
{
	if (!c->rx_used)
		return;
	memmove(c->rx, c->rx + c->rx_used, c->rx_len - c->rx_used);
	c->rx_len -= c->rx_used;
	c->rx_used = 0;
}

/* Returns 0 and *r, -EMSGSIZE / -ENOMEM (nothing sent), or a transport -errno (poisoned). */
int clnt_roundtrip(struct lutf_client *c, uint32_t wait_ms, struct clnt_reply *r)
{
	int64_t deadline = deadline_after(wait_ms);
	uint64_t id = c->next_id;
	uint16_t op;
	int err;

	if (c->tx.failed)
		return -ENOMEM;
	if (c->tx.len - c->tx_frame - LUTF_WIRE_HDR_SIZE > c->max_frame)
		return -EMSGSIZE;
	lutf_frame_end(&c->tx, c->tx_frame);
	op = c->tx_op;
	c->next_id++;
	rx_consume(c);

	err = send_all(c->fd, c->tx.data + c->tx_frame, c->tx.len - c->tx_frame, deadline);
	if (err == -EPIPE || err == -ECONNRESET) {
		/* lutfd may have answered (FORBIDDEN, TOO_LARGE) and closed
		 * before reading all we sent: take its reply if it is there. */
		if (recv_reply(c, op, id, deadline, r) == 0) {
			clnt_poison(c, err);
			return 0;
		}
	}
	if (!err)
		err = recv_reply(c, op, id, deadline, r);
	if (err)
		return clnt_poison(c, err);
	/* The payload stays readable: poisoning keeps the rx buffer. */
	if (r->refused)
		clnt_poison(c, -ECONNRESET);
	return 0;
}

/*
 * Shrink the outgoing buffer after a large request (a deploy), so an idle
 * handle does not keep megabytes.
 */
static void tx_trim(struct lutf_client *c)
{
	if (c->tx.cap > (1u << 20))
		lutf_buf_free(&c->tx);
}

void lutf_client_result_release(struct lutf_client_result *res)
{
	if (!res)
		return;
	free(res->output);
	free(res->content_type);
	free(res->error);
	memset(res, 0, sizeof(*res));
}

/* Replace *dst with a copy of the field's string. Returns 0 or -ENOMEM. */
static int take_str(char **dst, const struct lutf_tlv *f)
{
	char *s = clnt_strndup(f->val, f->len);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* Decode an invoke reply into res. Returns 0, -EPROTO or -ENOMEM. */
int clnt_decode_result(const struct lutf_wire_hdr *h, const uint8_t *payload,
		       struct lutf_client_result *res)
{
	struct lutf_tlv_iter it;
	struct lutf_tlv f;
	int err = 0;

	res->status = h->status;
	lutf_tlv_iter_init(&it, payload, h->length);
	while (!err && lutf_tlv_next(&it, &f)) {
		switch (f.tag) {
		case LUTF_TAG_OUTPUT:
			free(res->output);
			res->output = clnt_strndup(f.val, f.len);
			res->output_len = f.len;
			if (!res->output)
				err = -ENOMEM;
			break;
		case LUTF_TAG_CONTENT_TYPE:
			err = take_str(&res->content_type, &f);
			break;
		case LUTF_TAG_ERROR:
			err = take_str(&res->error, &f);
			break;
		case LUTF_TAG_DETAIL:
			if (!lutf_tlv_u32(&f, &res->detail))
				err = -EPROTO;
			break;
		default: /* unknown tags are skipped: forward compatibility */
			break;
		}
	}
	if (!err && it.bad)
		err = -EPROTO;
	return err;
}

/* Returns 0, or -EINVAL for a missing input or a header without a name. */
int clnt_invoke_check(const struct lutf_client_request *req)
{
	if ((req->input_len && !req->input) || (req->n_headers && !req->headers))
		return -EINVAL;
	for (size_t i = 0; i < req->n_headers; i++)
		if (!req->headers[i].name || !req->headers[i].name[0] || !req->headers[i].value)
			return -EINVAL;
	return 0;
}

void clnt_env_key(char *key, size_t cap)
{
	const char *e = getenv("LUTF_KEY");

	key[0] = 0;
	if (e && strlen(e) < cap)
		strcpy(key, e);
}

/* Returns 0 or -EINVAL; see <lutf/client.h>. */
int lutf_client_set_key(struct lutf_client *c, const char *key)
{
	if (!c || (key && strlen(key) >= sizeof(c->key)))
		return -EINVAL;
	snprintf(c->key, sizeof(c->key), "%s", key ? key : "");
	return 0;
}

void clnt_invoke_put(struct lutf_buf *b, const char *tenant, const char *function,
		     const struct lutf_client_request *req, const char *key)
{
	if (key && key[0])
		lutf_tlv_put_str(b, LUTF_TAG_KEY, key);
	lutf_tlv_put_str(b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(b, LUTF_TAG_FUNCTION, function);
	lutf_tlv_put(b, LUTF_TAG_INPUT, req->input, req->input_len);
	if (req->content_type)
		lutf_tlv_put_str(b, LUTF_TAG_CONTENT_TYPE, req->content_type);
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct lutf_client_header *h = &req->headers[i];
		size_t nl = strlen(h->name), vl = strlen(h->value);
		size_t off = lutf_tlv_begin(b, LUTF_TAG_HEADER);

		lutf_buf_put(b, h->name, nl + 1); /* with its NUL: the separator */
		lutf_buf_put(b, h->value, vl);
		lutf_tlv_end(b, off);
	}
	if (req->timeout_ms)
		lutf_tlv_put_u32(b, LUTF_TAG_TIMEOUT_MS, req->timeout_ms);
}

uint32_t clnt_invoke_wait(const struct lutf_client_request *req, uint32_t timeout_ms,
			  uint32_t grace_ms)
{
	if (!req->timeout_ms)
		return timeout_ms;
	return req->timeout_ms + grace_ms < req->timeout_ms ? UINT32_MAX
							    : req->timeout_ms + grace_ms;
}

/* Returns 0 (status in *res) or -errno; see <lutf/client.h>. */
int lutf_client_invoke(struct lutf_client *c, const char *tenant, const char *function,
		       const struct lutf_client_request *req, struct lutf_client_result *res)
{
	static const struct lutf_client_request none;
	struct clnt_reply r;
	uint32_t wait;
	int err;

	if (!res)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	if (!c || !lutf_name_valid(tenant) || !lutf_name_valid(function))
		return -EINVAL;
	if (!req)
		req = &none;
	err = clnt_invoke_check(req);
	if (err)
		return err;
	if (c->nats)
		return clnt_nats_invoke(c, tenant, function, req, res);
	err = clnt_begin(c, LUTF_OP_INVOKE);
	if (err)
		return err;
	clnt_invoke_put(&c->tx, tenant, function, req, c->key);
	wait = clnt_invoke_wait(req, c->timeout_ms, c->grace_ms);
	err = clnt_roundtrip(c, wait, &r);
	tx_trim(c);
	if (err)
		return err;
	err = clnt_decode_result(&r.hdr, r.payload, res);
	if (err) {
		lutf_client_result_release(res);
		/* A reply we cannot read leaves the stream in doubt. */
		return err == -EPROTO ? clnt_poison(c, err) : err;
	}
	return 0;
}

/* Returns 0 and *status, or -errno as lutf_client_invoke. */
int lutf_client_ping(struct lutf_client *c, uint32_t *status)
{
	struct clnt_reply r;
	int err;

	if (!c || !status)
		return -EINVAL;
	if (c->nats)
		return clnt_nats_ping(c, status);
	err = clnt_begin(c, LUTF_OP_PING);
	if (err)
		return err;
	err = clnt_roundtrip(c, c->timeout_ms, &r);
	if (err)
		return err;
	*status = r.hdr.status;
	return 0;
}
