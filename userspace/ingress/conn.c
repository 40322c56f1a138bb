/* SPDX-License-Identifier: MIT */
/*
 * The framing server: listeners, connections, frame validation and reply
 * buffering over the ingress event-loop interface (any backend). Invariants:
 * a connection holds at most one frame of input (max_frame + header) and
 * about out_max of replies before it stops reading; a closed connection's
 * struct is freed only from a top-level handler, never under a caller.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ingress.h"
#include "wire.h"

#define IN_CHUNK (64u * 1024)
#define MAX_LISTENERS 4

struct lutf_conn {
	struct lutf_srv *srv;
	int fd;
	uint64_t id;
	bool control;
	bool closing;	 /* close once replies are written and nothing is in flight */
	bool hard;	 /* ... without waiting for requests in flight */
	bool out_paused; /* reading stopped: too many replies queued */
	bool dead;
	bool dirty; /* in the server's dirty list */
	uint8_t *in;
	size_t in_len, in_cap;
	struct lutf_buf out;
	size_t out_off;
	uint32_t inflight;
	uint64_t last_ms; /* last progress either way */
	struct lutf_conn *next_dead;
};

struct listener {
	struct lutf_srv *srv;
	int fd;
	bool control;
	char path[108];
};

struct lutf_srv {
	struct lutf_ev_loop *loop;
	struct lutf_srv_limits lim;
	struct lutf_srv_ops ops;
	void *ctx;
	struct listener ls[MAX_LISTENERS];
	int nls;
	struct lutf_conn **by_fd;
	size_t nby_fd;
	unsigned nconns;
	uint64_t serial;
	bool no_read;
	struct lutf_conn *dead;
	uint64_t *dirty; /* ids of connections with replies queued outside a handler */
	size_t ndirty, cap_dirty;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void conn_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask);

static size_t out_pending(const struct lutf_conn *c)
{
	return c->out.len - c->out_off;
}

static void conn_close(struct lutf_conn *c)
{
	struct lutf_srv *s = c->srv;

	if (c->dead)
		return;
	c->dead = true;
	lutf_ev_set(s->loop, c->fd, 0, NULL, NULL);
	close(c->fd);
	s->by_fd[c->fd] = NULL;
	s->nconns--;
	c->next_dead = s->dead;
	s->dead = c;
}

static void free_dead(struct lutf_srv *s)
{
	while (s->dead) {
		struct lutf_conn *c = s->dead;

		s->dead = c->next_dead;
		free(c->in);
		lutf_buf_free(&c->out);
		free(c);
	}
}

/* Recompute what the connection waits for; closes it when it is done. */
static void conn_update(struct lutf_conn *c)
{
	unsigned mask = 0;

	if (c->dead)
		return;
	if (c->closing && !out_pending(c) && (c->hard || !c->inflight)) {
		conn_close(c);
		return;
	}
	if (!c->closing && !c->out_paused && !c->srv->no_read)
		mask |= LUTF_EV_READ;
	if (out_pending(c))
		mask |= LUTF_EV_WRITE;
	if (lutf_ev_set(c->srv->loop, c->fd, mask, conn_event, c))
		conn_close(c);
}

/* Write what we can; a write error closes the connection. */
static void conn_flush(struct lutf_conn *c)
{
	while (!c->dead && out_pending(c)) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, out_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		c->last_ms = now_ms();
	}
	if (!out_pending(c)) {
		c->out.len = 0;
		c->out_off = 0;
		if (c->out.cap > 1u << 20) { /* give back a burst's memory */
			lutf_buf_free(&c->out);
			lutf_buf_init(&c->out);
		}
	}
}

/* Returns 0 or -ENOMEM (the connection is then closed). */
int lutf_conn_send(struct lutf_conn *c, const void *data, size_t len)
{
	if (c->dead || c->hard)
		return 0;
	lutf_buf_put(&c->out, data, len);
	if (c->out.failed) {
		conn_close(c);
		return -ENOMEM;
	}
	if (!c->dirty) {
		struct lutf_srv *s = c->srv;

		if (s->ndirty == s->cap_dirty) {
			size_t cap = s->cap_dirty ? s->cap_dirty * 2 : 64;
			uint64_t *p = realloc(s->dirty, cap * sizeof(*p));

			if (!p)
				return 0; /* written at its next event or tick */
			s->dirty = p;
			s->cap_dirty = cap;
		}
		s->dirty[s->ndirty++] = c->id;
		c->dirty = true;
	}
	return 0;
}

void lutf_conn_reply_status(struct lutf_conn *c, uint64_t id, uint32_t status, const char *msg)
{
	struct lutf_buf b;
	size_t f;

	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, LUTF_OP_REPLY, status, id);
	if (msg)
		lutf_tlv_put_str(&b, LUTF_TAG_ERROR, msg);
	lutf_frame_end(&b, f);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
}

void lutf_conn_fail(struct lutf_conn *c, uint64_t id, uint32_t status, const char *msg)
{
	lutf_conn_reply_status(c, id, status, msg);
	c->closing = true;
	c->hard = true;
}

uint64_t lutf_conn_id(const struct lutf_conn *c)
{
	return c->id;
}

bool lutf_conn_is_control(const struct lutf_conn *c)
{
	return c->control;
}

void lutf_conn_inflight(struct lutf_conn *c, int delta)
{
	c->inflight = (uint32_t)((int)c->inflight + delta);
}

struct lutf_conn *lutf_srv_conn(struct lutf_srv *s, uint64_t id)
{
	size_t fd = (size_t)(id & 0xffffff);
	struct lutf_conn *c = fd < s->nby_fd ? s->by_fd[fd] : NULL;

	return c && c->id == id ? c : NULL;
}

static bool op_known(uint16_t op)
{
	return op == LUTF_OP_INVOKE || op == LUTF_OP_PING ||
	       (op >= LUTF_OP_DEPLOY && op <= LUTF_OP_LOGS);
}

/* Handle every whole frame in the input buffer, as long as we may. */
static void conn_process(struct lutf_conn *c)
{
	struct lutf_srv *s = c->srv;
	size_t pos = 0;

	while (!c->dead && !c->closing && !c->out_paused) {
		size_t avail = c->in_len - pos;
		struct lutf_wire_hdr h;
		uint32_t st;

		if (avail < LUTF_WIRE_HDR_SIZE)
			break;
		st = lutf_frame_parse_hdr(c->in + pos, s->lim.max_frame, &h);
		if (st == LUTF_STATUS_MALFORMED) {
			lutf_conn_fail(c, h.magic == LUTF_WIRE_MAGIC ? h.request_id : 0, st,
				       h.magic == LUTF_WIRE_MAGIC ? "unsupported protocol version"
								  : "bad magic");
			break;
		}
		if (st != LUTF_STATUS_OK) {
			char msg[96];

			snprintf(msg, sizeof(msg), "frame of %u bytes is over the %u-byte limit",
				 h.length, s->lim.max_frame);
			lutf_conn_fail(c, h.request_id, st, msg);
			break;
		}
		if (!op_known(h.opcode)) {
			lutf_conn_fail(c, h.request_id, LUTF_STATUS_MALFORMED, "unknown opcode");
			break;
		}
		if (h.opcode >= LUTF_OP_DEPLOY && !c->control) {
			lutf_conn_fail(c, h.request_id, LUTF_STATUS_FORBIDDEN,
				       "control calls are accepted only on the control socket");
			break;
		}
		if (avail < LUTF_WIRE_HDR_SIZE + (size_t)h.length)
			break;
		s->ops.frame(s->ctx, c, &h, c->in + pos + LUTF_WIRE_HDR_SIZE);
		pos += LUTF_WIRE_HDR_SIZE + h.length;
		if (out_pending(c) > s->lim.out_max)
			c->out_paused = true;
	}
	if (c->dead)
		return;
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
	if (!c->in_len && c->in_cap > 4 * IN_CHUNK) { /* give back a big frame's memory */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

static void conn_read(struct lutf_conn *c)
{
	size_t want = IN_CHUNK;
	ssize_t n;

	if (c->in_len >= LUTF_WIRE_HDR_SIZE) {
		uint32_t len;

		memcpy(&len, c->in + 8, 4);
		len = le32toh(len); /* already validated against max_frame */
		if (LUTF_WIRE_HDR_SIZE + (size_t)len > c->in_len)
			want = LUTF_WIRE_HDR_SIZE + (size_t)len - c->in_len;
	}
	if (c->in_cap - c->in_len < want) {
		size_t cap = c->in_len + (want > IN_CHUNK ? want : IN_CHUNK);
		uint8_t *p = realloc(c->in, cap);

		if (!p) {
			conn_close(c);
			return;
		}
		c->in = p;
		c->in_cap = cap;
	}
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The peer is done sending: answer what is in flight, then close. */
		c->closing = true;
		if (n < 0)
			c->hard = true;
		return;
	}
	c->in_len += (size_t)n;
	c->last_ms = now_ms();
	conn_process(c);
}

static void conn_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	struct lutf_conn *c = data;
	struct lutf_srv *s = c->srv;

	if (mask & LUTF_EV_READ)
		conn_read(c);
	if (!c->dead)
		conn_flush(c);
	if (!c->dead && c->out_paused && out_pending(c) <= s->lim.out_max / 2) {
		c->out_paused = false;
		conn_process(c); /* frames read before we paused */
		if (!c->dead)
			conn_flush(c);
	}
	conn_update(c);
	free_dead(s);
}

static bool peer_allowed(struct lutf_srv *s, int fd, char *why, size_t cap)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	gid_t groups[256];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len)) {
		snprintf(why, cap, "cannot read peer credentials");
		return false;
	}
	if (cr.uid == 0)
		return true;
	if (s->lim.group_valid) {
		if (cr.gid == s->lim.group)
			return true;
		len = sizeof(groups);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
			for (size_t i = 0; i < len / sizeof(gid_t); i++)
				if (groups[i] == s->lim.group)
					return true;
	}
	snprintf(why, cap, "control socket: uid %u is not root or in group lutf", (unsigned)cr.uid);
	return false;
}

static int conn_new(struct lutf_srv *s, int fd, bool control)
{
	struct lutf_conn *c;

	if ((size_t)fd >= s->nby_fd) {
		size_t n = s->nby_fd ? s->nby_fd : 64;
		struct lutf_conn **p;

		while (n <= (size_t)fd)
			n *= 2;
		if (n > 0xffffff)
			return -EMFILE;
		p = realloc(s->by_fd, n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + s->nby_fd, 0, (n - s->nby_fd) * sizeof(*p));
		s->by_fd = p;
		s->nby_fd = n;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->srv = s;
	c->fd = fd;
	c->control = control;
	c->id = (++s->serial << 24) | (uint64_t)fd;
	c->last_ms = now_ms();
	lutf_buf_init(&c->out);
	s->by_fd[fd] = c;
	s->nconns++;
	if (control) {
		char why[128];

		if (!peer_allowed(s, fd, why, sizeof(why))) {
			lutf_conn_fail(c, 0, LUTF_STATUS_FORBIDDEN, why);
			conn_flush(c);
		}
	}
	conn_update(c);
	return 0;
}

static void accept_event(struct lutf_ev_loop *l, int lfd, void *data, unsigned mask)
{
	struct listener *ls = data;
	struct lutf_srv *s = ls->srv;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			break;
		if (s->nconns >= s->lim.max_conns || conn_new(s, fd, ls->control)) {
			/* Refused: one best-effort OVERLOADED frame, then close. */
			struct lutf_buf b;
			size_t f;

			lutf_buf_init(&b);
			f = lutf_frame_begin(&b, LUTF_OP_REPLY, LUTF_STATUS_OVERLOADED, 0);
			lutf_tlv_put_str(&b, LUTF_TAG_ERROR, "too many connections");
			lutf_frame_end(&b, f);
			if (!b.failed)
				(void)!send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
			lutf_buf_free(&b);
			close(fd);
		}
	}
	free_dead(s);
}

/* Returns 0 or -errno. */
int lutf_srv_create(struct lutf_ev_loop *l, const struct lutf_srv_limits *lim,
		    const struct lutf_srv_ops *ops, void *ctx, struct lutf_srv **out)
{
	struct lutf_srv *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->lim = *lim;
	s->ops = *ops;
	s->ctx = ctx;
	*out = s;
	return 0;
}

void lutf_srv_destroy(struct lutf_srv *s)
{
	if (!s)
		return;
	lutf_srv_stop_accepting(s);
	for (size_t i = 0; i < s->nby_fd; i++)
		if (s->by_fd[i])
			conn_close(s->by_fd[i]);
	free_dead(s);
	free(s->by_fd);
	free(s->dirty);
	free(s);
}

/* Returns 0 or -errno. */
int lutf_srv_listen_unix(struct lutf_srv *s, const char *path, mode_t mode, bool control)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct listener *ls;
	int fd, err;

	if (s->nls == MAX_LISTENERS)
		return -ENOSPC;
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The caller holds the state lock: a socket file here is a stale one. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || chmod(path, mode) ||
	    (s->lim.group_valid && chown(path, 0, s->lim.group)) || listen(fd, 512))
		goto err;
	ls = &s->ls[s->nls];
	ls->srv = s;
	ls->fd = fd;
	ls->control = control;
	snprintf(ls->path, sizeof(ls->path), "%s", path);
	err = lutf_ev_set(s->loop, fd, LUTF_EV_READ, accept_event, ls);
	if (err) {
		close(fd);
		unlink(path);
		return err;
	}
	s->nls++;
	return 0;
err:
	err = -errno;
	close(fd);
	unlink(path);
	return err;
}

void lutf_srv_stop_accepting(struct lutf_srv *s)
{
	for (int i = 0; i < s->nls; i++) {
		lutf_ev_set(s->loop, s->ls[i].fd, 0, NULL, NULL);
		close(s->ls[i].fd);
		unlink(s->ls[i].path);
	}
	s->nls = 0;
}

void lutf_srv_stop_reading(struct lutf_srv *s)
{
	s->no_read = true;
	for (size_t i = 0; i < s->nby_fd; i++)
		if (s->by_fd[i])
			conn_update(s->by_fd[i]);
	free_dead(s);
}

/* Flush what completions queued, apply timeouts, free closed connections. */
void lutf_srv_tick(struct lutf_srv *s)
{
	uint64_t now = now_ms();

	for (size_t i = 0; i < s->nby_fd; i++) {
		struct lutf_conn *c = s->by_fd[i];

		if (!c)
			continue;
		conn_flush(c);
		if (!c->dead && s->lim.idle_ms && now - c->last_ms > s->lim.idle_ms &&
		    (!c->inflight || out_pending(c))) {
			/* Silent, or not reading its replies: it holds memory for nothing. */
			conn_close(c);
			continue;
		}
		if (!c->dead && c->out_paused && out_pending(c) <= s->lim.out_max / 2) {
			c->out_paused = false;
			conn_process(c);
			if (!c->dead)
				conn_flush(c);
		}
		conn_update(c);
	}
	free_dead(s);
}

void lutf_srv_flush(struct lutf_srv *s)
{
	for (size_t i = 0; i < s->ndirty; i++) {
		struct lutf_conn *c = lutf_srv_conn(s, s->dirty[i]);

		if (!c)
			continue;
		c->dirty = false;
		conn_flush(c);
		if (!c->dead && out_pending(c) > s->lim.out_max)
			c->out_paused = true;
		conn_update(c);
	}
	s->ndirty = 0;
	free_dead(s);
}

size_t lutf_srv_pending_out(struct lutf_srv *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nby_fd; i++)
		if (s->by_fd[i])
			n += out_pending(s->by_fd[i]);
	return n;
}

unsigned lutf_srv_nconns(struct lutf_srv *s)
{
	return s->nconns;
}
