/* SPDX-License-Identifier: MIT */
/*
 * The connection layer: listeners, connections, the input buffer, replies
 * and limits over the ingress loop (any backend), for any protocol.
 * Invariants: a connection keeps at most max_frame + 64 KiB of unconsumed
 * input (plus what was already on its way when reading stopped), for at most
 * frame_ms from the first byte of the oldest unit, and all connections
 * together at most input_max bytes of input buffers; it stops
 * reading once out_max reply bytes are queued; replies are double-buffered:
 * tx is lent to the backend while a send is in flight and is never grown,
 * moved or freed then, new replies go to out and leave with the next send;
 * a closed connection's struct is freed only when the backend releases it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
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

#define MAX_LISTENERS 8
#define IN_SLACK (64u * 1024)

struct listener {
	struct lutf_srv *srv;
	struct lutf_ev_listener *ev;
	const struct lutf_proto *proto;
	void *pctx;
	bool control, tcp;
	char path[108]; /* unix: unlinked when closed */
};

struct lutf_conn {
	struct lutf_srv *srv;
	struct lutf_ev_sock *sock;
	const struct lutf_proto *proto;
	void *pctx;
	int fd;
	uint64_t id;
	bool control, tcp;
	bool ending;  /* close once replies are written (and, unless hard, nothing in flight) */
	bool hard;    /* ... without waiting for requests in flight */
	bool eof;     /* no more input */
	bool paused;  /* out_max reached: no new requests until half of it is written */
	bool more_in; /* the protocol stopped (not accepting): in may hold whole units */
	bool reading; /* what the backend was last told */
	bool dead;    /* closed: waiting for the backend's release */
	bool dirty;   /* in the server's dirty list */
	bool send_busy;
	bool in_feed; /* inside the protocol's input(): no re-entry */
	uint8_t *in;
	size_t in_len, in_cap;
	struct lutf_buf out; /* queued replies */
	struct lutf_buf tx;  /* lent to the backend while send_busy */
	size_t tx_off;
	uint32_t inflight;
	uint64_t last_ms;     /* last progress either way */
	uint64_t in_since_ms; /* in_len > 0: when the oldest unconsumed unit began */
	_Alignas(max_align_t) unsigned char state[];
};

struct lutf_srv {
	struct lutf_ev_loop *loop;
	struct lutf_srv_limits lim;
	struct listener ls[MAX_LISTENERS];
	int nls;
	struct lutf_conn **by_fd;
	size_t nby_fd;
	unsigned nconns, zombies; /* open; closed and not yet released */
	uint64_t serial, refused, idle_closed;
	uint64_t in_bytes;	 /* input buffer capacity over all connections */
	uint64_t frame_timeouts; /* closed: a unit not complete within frame_ms */
	uint64_t input_refused;	 /* closed: input_max reached */
	bool no_read;
	uint64_t *dirty; /* ids of connections with replies queued outside a handler */
	size_t ndirty, cap_dirty;
};

/* Idle timeouts only (ms, checked every few hundred ms): the coarse clock
 * reads no clocksource, and this runs at every receive and send. */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t out_pending(const struct lutf_conn *c)
{
	return c->out.len + (c->tx.len - c->tx_off);
}

static void conn_close(struct lutf_conn *c)
{
	struct lutf_srv *s = c->srv;

	if (c->dead)
		return;
	c->dead = true;
	s->by_fd[c->fd] = NULL;
	s->nconns--;
	s->zombies++;
	if (c->proto->close)
		c->proto->close(c);
	lutf_ev_sock_close(c->sock); /* released() frees c */
}

static void mark_dirty(struct lutf_conn *c)
{
	struct lutf_srv *s = c->srv;

	if (c->dirty)
		return;
	if (s->ndirty == s->cap_dirty) {
		size_t cap = s->cap_dirty ? s->cap_dirty * 2 : 64;
		uint64_t *p = realloc(s->dirty, cap * sizeof(*p));

		if (!p)
			return; /* written at its next event or tick */
		s->dirty = p;
		s->cap_dirty = cap;
	}
	s->dirty[s->ndirty++] = c->id;
	c->dirty = true;
}

/*
 * Start the next send unless one is in flight: the rest of tx (a short send),
 * else the queued replies (out and tx swap: tx is empty, its memory is reused
 * for the next replies).
 */
static void kick(struct lutf_conn *c)
{
	int err;

	if (c->dead || c->send_busy)
		return;
	if (c->tx_off == c->tx.len) {
		struct lutf_buf t = c->tx;

		if (!c->out.len)
			return;
		c->tx = c->out;
		c->out = t;
		c->out.len = 0;
		c->tx_off = 0;
	}
	err = lutf_ev_sock_send(c->sock, c->tx.data + c->tx_off, c->tx.len - c->tx_off);
	if (err == -EBUSY) {
		mark_dirty(c); /* no SQE to be had now: the next flush retries */
		return;
	}
	if (err) {
		conn_close(c);
		return;
	}
	c->send_busy = true;
}

bool lutf_conn_accepting(const struct lutf_conn *c)
{
	return !c->dead && !c->ending && !c->paused;
}

/* The input buffer's capacity becomes cap: keep the server's total. */
static void in_account(struct lutf_conn *c, size_t cap)
{
	c->srv->in_bytes = c->srv->in_bytes - c->in_cap + cap;
	c->in_cap = cap;
}

/* May c's input buffer grow to cap? If not (input_max over all connections),
 * c is refused and closed: it is the one asking for more. */
static bool in_budget(struct lutf_conn *c, size_t cap)
{
	struct lutf_srv *s = c->srv;

	if (!s->lim.input_max || s->in_bytes - c->in_cap + cap <= s->lim.input_max)
		return true;
	s->input_refused++;
	if (c->proto->refuse)
		c->proto->refuse(c->fd, LUTF_STATUS_OVERLOADED,
				 "lutfd holds as much unparsed input as input_buffered_max allows");
	conn_close(c);
	return false;
}

/* Offer the protocol what arrived (p, n) after what is buffered. */
static void feed(struct lutf_conn *c, const uint8_t *p, size_t n)
{
	const uint8_t *src = p;
	size_t len = n;
	ssize_t k;

	bool had = c->in_len != 0;

	if (c->in_len) {
		if (c->in_cap - c->in_len < n) {
			size_t cap = c->in_cap ? c->in_cap : 4096;
			uint8_t *q;

			while (cap - c->in_len < n)
				cap *= 2;
			if (!in_budget(c, cap))
				return;
			q = realloc(c->in, cap);
			if (!q) {
				conn_close(c);
				return;
			}
			in_account(c, cap);
			c->in = q;
		}
		memcpy(c->in + c->in_len, p, n);
		c->in_len += n;
		src = c->in;
		len = c->in_len;
	}
	if (!len)
		return;
	c->in_feed = true;
	k = c->proto->input(c, src, len);
	c->in_feed = false;
	if (k < 0 || (size_t)k > len) {
		conn_close(c);
		return;
	}
	if (c->dead)
		return;
	if (c->in_len) {
		memmove(c->in, c->in + k, c->in_len - (size_t)k);
		c->in_len -= (size_t)k;
	} else if ((size_t)k < len) {
		/* A partial unit straight from the backend's buffer: keep the tail. */
		size_t rest = len - (size_t)k, cap = rest < 4096 ? 4096 : rest;

		if (c->in_cap < rest) {
			if (!in_budget(c, cap))
				return;
			free(c->in);
			c->in = malloc(cap);
			in_account(c, c->in ? cap : 0);
			if (!c->in) {
				conn_close(c);
				return;
			}
		}
		memcpy(c->in, p + k, rest);
		c->in_len = rest;
	}
	/* The frame deadline runs from the first byte of the oldest unit. */
	if (c->in_len && (k > 0 || !had))
		c->in_since_ms = now_ms();
	c->more_in = c->in_len && !lutf_conn_accepting(c);
	if (!c->more_in && c->in_len > (size_t)c->srv->lim.max_frame + IN_SLACK) {
		/* A protocol that does not bound its units. (While it may not take
		 * more, what was on its way when reading stopped is bounded by the
		 * backend: one provided-buffer ring at most.) */
		conn_close(c);
		return;
	}
	if (!c->in_len && c->in_cap > 4 * IN_SLACK) { /* give back a big unit's memory */
		free(c->in);
		c->in = NULL;
		in_account(c, 0);
	}
}

/* Recompute pause, input, reading and closing after any change. */
static void progress(struct lutf_conn *c)
{
	struct lutf_srv *s = c->srv;
	bool want;

	if (c->dead)
		return;
	if (c->paused && out_pending(c) <= s->lim.out_max / 2) {
		c->paused = false;
		if (c->more_in && !c->in_feed)
			feed(c, NULL, 0); /* units read before we paused */
		kick(c);
		if (c->dead)
			return;
	}
	if (out_pending(c) > s->lim.out_max)
		c->paused = true;
	if ((c->ending && !out_pending(c) && (c->hard || !c->inflight)) ||
	    (c->eof && !c->ending && !c->more_in && !out_pending(c) && !c->inflight)) {
		conn_close(c);
		return;
	}
	want = !c->ending && !c->eof && !c->paused && !s->no_read;
	if (want != c->reading) {
		c->reading = want;
		lutf_ev_sock_recv(c->sock, want);
	}
}

static void on_recv(void *owner, const uint8_t *p, size_t n)
{
	struct lutf_conn *c = owner;

	if (c->dead)
		return;
	c->last_ms = now_ms();
	feed(c, p, n);
	kick(c);
	progress(c);
}

static void on_recv_end(void *owner, int err)
{
	struct lutf_conn *c = owner;

	if (c->dead)
		return;
	if (err < 0) {
		conn_close(c); /* reset: nobody to answer */
		return;
	}
	/* The peer is done sending: answer what it sent, then close. */
	c->eof = true;
	progress(c);
}

static void on_sent(void *owner, int res)
{
	struct lutf_conn *c = owner;

	c->send_busy = false;
	if (c->dead)
		return;
	if (res <= 0) {
		conn_close(c);
		return;
	}
	c->tx_off += (size_t)res;
	c->last_ms = now_ms();
	if (c->tx_off == c->tx.len) {
		c->tx.len = 0;
		c->tx_off = 0;
		if (c->tx.cap > 1u << 20) { /* give back a burst's memory */
			lutf_buf_free(&c->tx);
			lutf_buf_init(&c->tx);
		}
	}
	kick(c); /* a short send resumes with the rest of the same, still lent, buffer */
	progress(c);
}

static void on_released(void *owner)
{
	struct lutf_conn *c = owner;

	c->srv->zombies--;
	in_account(c, 0);
	free(c->in);
	lutf_buf_free(&c->out);
	lutf_buf_free(&c->tx);
	free(c);
}

static const struct lutf_ev_sock_ops conn_ops = {
    .recv = on_recv,
    .recv_end = on_recv_end,
    .sent = on_sent,
    .released = on_released,
};

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
	if (out_pending(c) > c->srv->lim.out_max)
		c->paused = true;
	mark_dirty(c);
	return 0;
}

void lutf_conn_end(struct lutf_conn *c, bool hard)
{
	c->ending = true;
	c->hard |= hard;
	mark_dirty(c);
}

uint64_t lutf_conn_id(const struct lutf_conn *c)
{
	return c->id;
}

bool lutf_conn_is_control(const struct lutf_conn *c)
{
	return c->control;
}

/* Used by daemon/keys.c: an INVOKE over TCP needs an API key. */
bool lutf_conn_is_tcp(const struct lutf_conn *c)
{
	return c->tcp;
}

void *lutf_conn_state(struct lutf_conn *c)
{
	return c->state;
}

void *lutf_conn_proto_ctx(const struct lutf_conn *c)
{
	return c->pctx;
}

const struct lutf_srv_limits *lutf_conn_limits(const struct lutf_conn *c)
{
	return &c->srv->lim;
}

void lutf_conn_inflight(struct lutf_conn *c, int delta)
{
	c->inflight = (uint32_t)((int)c->inflight + delta);
	if (!c->inflight && (c->ending || c->eof))
		mark_dirty(c); /* it may close now */
}

struct lutf_conn *lutf_srv_conn(struct lutf_srv *s, uint64_t id)
{
	size_t fd = (size_t)(id & 0xffffff);
	struct lutf_conn *c = fd < s->nby_fd ? s->by_fd[fd] : NULL;

	return c && c->id == id ? c : NULL;
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

static void refuse(struct listener *ls, int fd, uint32_t status, const char *why)
{
	if (ls->proto->refuse)
		ls->proto->refuse(fd, status, why);
	close(fd);
}

static void on_accept(void *data, int fd)
{
	struct listener *ls = data;
	struct lutf_srv *s = ls->srv;
	struct lutf_conn *c;
	char why[128];

	if (fd < 0)
		return; /* the backend retries */
	if (s->nconns >= s->lim.max_conns) {
		s->refused++;
		refuse(ls, fd, LUTF_STATUS_OVERLOADED, "too many connections");
		return;
	}
	if (ls->control && !peer_allowed(s, fd, why, sizeof(why))) {
		refuse(ls, fd, LUTF_STATUS_FORBIDDEN, why);
		return;
	}
	if (ls->tcp && s->lim.tcp_peer &&
	    s->lim.tcp_peer(s->lim.tcp_peer_ctx, fd, why, sizeof(why))) {
		s->refused++;
		refuse(ls, fd, LUTF_STATUS_FORBIDDEN, why);
		return;
	}
	if ((size_t)fd >= s->nby_fd) {
		size_t n = s->nby_fd ? s->nby_fd : 64;
		struct lutf_conn **p;

		while (n <= (size_t)fd)
			n *= 2;
		p = n > 0xffffff ? NULL : realloc(s->by_fd, n * sizeof(*p));
		if (!p) {
			refuse(ls, fd, LUTF_STATUS_OVERLOADED, "out of memory");
			return;
		}
		memset(p + s->nby_fd, 0, (n - s->nby_fd) * sizeof(*p));
		s->by_fd = p;
		s->nby_fd = n;
	}
	c = calloc(1, sizeof(*c) + ls->proto->state_size);
	if (!c || lutf_ev_sock_open(s->loop, fd, &conn_ops, c, &c->sock)) {
		free(c);
		refuse(ls, fd, LUTF_STATUS_OVERLOADED, "out of memory");
		return;
	}
	if (ls->tcp) {
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	c->srv = s;
	c->proto = ls->proto;
	c->pctx = ls->pctx;
	c->fd = fd;
	c->control = ls->control;
	c->tcp = ls->tcp;
	c->id = (++s->serial << 24) | (uint64_t)fd;
	c->last_ms = now_ms();
	lutf_buf_init(&c->out);
	lutf_buf_init(&c->tx);
	s->by_fd[fd] = c;
	s->nconns++;
	if (c->proto->open && c->proto->open(c)) {
		conn_close(c);
		return;
	}
	progress(c);
}

/* Returns 0 or -errno. */
int lutf_srv_create(struct lutf_ev_loop *l, const struct lutf_srv_limits *lim,
		    struct lutf_srv **out)
{
	struct lutf_srv *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->loop = l;
	s->lim = *lim;
	*out = s;
	return 0;
}

void lutf_srv_destroy(struct lutf_srv *s)
{
	uint64_t until;

	if (!s)
		return;
	lutf_srv_stop_accepting(s);
	for (size_t i = 0; i < s->nby_fd; i++)
		if (s->by_fd[i])
			conn_close(s->by_fd[i]);
	/* The backend may still hold some (cancels in flight): wait, bounded. */
	until = now_ms() + 1000;
	while (s->zombies && now_ms() < until)
		lutf_ev_poll(s->loop, 10);
	if (s->zombies)
		return; /* leak rather than free what the kernel may still name */
	free(s->by_fd);
	free(s->dirty);
	free(s);
}

static int add_listener(struct lutf_srv *s, int fd, unsigned flags, bool tcp,
			const struct lutf_proto *p, void *pctx, const char *path)
{
	struct listener *ls = &s->ls[s->nls];
	int err;

	ls->srv = s;
	ls->proto = p;
	ls->pctx = pctx;
	ls->control = flags & LUTF_LISTEN_CONTROL;
	ls->tcp = tcp;
	snprintf(ls->path, sizeof(ls->path), "%s", path ? path : "");
	err = lutf_ev_listen(s->loop, fd, on_accept, ls, &ls->ev);
	if (err)
		return err;
	s->nls++;
	return 0;
}

/* Returns 0 or -errno. */
int lutf_srv_listen_unix(struct lutf_srv *s, const char *path, mode_t mode, unsigned flags,
			 const struct lutf_proto *p, void *pctx)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
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
	    (s->lim.group_valid && chown(path, 0, s->lim.group)) || listen(fd, 4096)) {
		err = -errno;
		goto err;
	}
	err = add_listener(s, fd, flags, false, p, pctx, path);
	if (!err)
		return 0;
err:
	close(fd);
	unlink(path);
	return err;
}

/* "host:port" or "[v6]:port" into host and port. Returns 0 or -EINVAL. */
static int split_hostport(const char *hp, char *host, size_t cap, const char **port)
{
	const char *colon;
	size_t n;

	if (hp[0] == '[') {
		const char *end = strchr(hp, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - hp - 1);
		if (n >= cap)
			return -EINVAL;
		memcpy(host, hp + 1, n);
		host[n] = 0;
		*port = end + 2;
	} else {
		colon = strrchr(hp, ':');
		if (!colon || strchr(hp, ':') != colon)
			return -EINVAL;
		n = (size_t)(colon - hp);
		if (n >= cap)
			return -EINVAL;
		memcpy(host, hp, n);
		host[n] = 0;
		*port = colon + 1;
	}
	if (!host[0] || !**port || strspn(*port, "0123456789") != strlen(*port) ||
	    strtoul(*port, NULL, 10) > 65535)
		return -EINVAL;
	return 0;
}

/* Returns 0, -EINVAL or -errno. */
int lutf_srv_listen_tcp(struct lutf_srv *s, const char *hostport, unsigned flags,
			const struct lutf_proto *p, void *pctx, char *bound, size_t cap)
{
	struct addrinfo hints = {0}, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], addr[INET6_ADDRSTRLEN];
	const char *port;
	int fd, err, one = 1;

	if (s->nls == MAX_LISTENERS)
		return -ENOSPC;
	if (split_hostport(hostport, host, sizeof(host), &port))
		return -EINVAL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &ai) || !ai)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		freeaddrinfo(ai);
		return err;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4096) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		err = -errno;
		freeaddrinfo(ai);
		close(fd);
		return err;
	}
	freeaddrinfo(ai);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a6->sin6_addr, addr, sizeof(addr));
		snprintf(bound, cap, "[%s]:%u", addr, ntohs(a6->sin6_port));
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a4->sin_addr, addr, sizeof(addr));
		snprintf(bound, cap, "%s:%u", addr, ntohs(a4->sin_port));
	}
	err = add_listener(s, fd, flags, true, p, pctx, NULL);
	if (err)
		close(fd);
	return err;
}

void lutf_srv_stop_accepting(struct lutf_srv *s)
{
	for (int i = 0; i < s->nls; i++) {
		lutf_ev_unlisten(s->ls[i].ev);
		if (s->ls[i].path[0])
			unlink(s->ls[i].path);
	}
	s->nls = 0;
}

void lutf_srv_stop_reading(struct lutf_srv *s)
{
	s->no_read = true;
	for (size_t i = 0; i < s->nby_fd; i++)
		if (s->by_fd[i])
			progress(s->by_fd[i]);
}

/* Timeouts, and whatever a missed dirty mark left behind. */
void lutf_srv_tick(struct lutf_srv *s)
{
	uint64_t now = now_ms();

	for (size_t i = 0; i < s->nby_fd; i++) {
		struct lutf_conn *c = s->by_fd[i];

		if (!c)
			continue;
		if (s->lim.idle_ms && now - c->last_ms > s->lim.idle_ms &&
		    (!c->inflight || out_pending(c))) {
			/* Silent, or not reading its replies: it holds memory for nothing. */
			s->idle_closed++;
			conn_close(c);
			continue;
		}
		if (s->lim.frame_ms && c->in_len && !c->more_in &&
		    now - c->in_since_ms > s->lim.frame_ms) {
			/* Slowloris: bytes trickle in, a unit never completes. */
			char why[80];

			snprintf(why, sizeof(why), "request not complete within %u ms",
				 s->lim.frame_ms);
			s->frame_timeouts++;
			if (c->proto->refuse)
				c->proto->refuse(c->fd, LUTF_STATUS_MALFORMED, why);
			conn_close(c);
			continue;
		}
		kick(c);
		progress(c);
	}
}

void lutf_srv_flush(struct lutf_srv *s)
{
	/* Handlers run from here may mark more connections: s->dirty can move. */
	for (size_t i = 0; i < s->ndirty; i++) {
		struct lutf_conn *c = lutf_srv_conn(s, s->dirty[i]);

		if (!c)
			continue;
		c->dirty = false;
		kick(c);
		progress(c);
	}
	s->ndirty = 0;
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

void lutf_srv_counters(struct lutf_srv *s, uint64_t *refused, uint64_t *idle_closed)
{
	*refused = s->refused;
	*idle_closed = s->idle_closed;
}

void lutf_srv_input_stats(struct lutf_srv *s, uint64_t *buffered, uint64_t *frame_timeouts,
			  uint64_t *input_refused)
{
	*buffered = s->in_bytes;
	*frame_timeouts = s->frame_timeouts;
	*input_refused = s->input_refused;
}
