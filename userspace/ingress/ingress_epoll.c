/* SPDX-License-Identifier: MIT */
/*
 * The epoll backend of the ingress loop: readiness underneath, the completion
 * interface on top (it reads into its own buffer and reports the bytes; it
 * sends at once and reports the result from poll). Invariants: an event is
 * dispatched only through the fd's current slot, so a handler may stop
 * watching (and close) any fd, its own included; sent() and released() are
 * never called from inside a lutf_ev_sock_* call (they wait on the deferred
 * list, run by poll).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev_backend.h"

#define RBUF (64u * 1024)
#define NEVS 256

enum slot_kind { S_NONE, S_WATCH, S_LISTEN, S_SOCK };

struct ev_slot {
	enum slot_kind kind;
	unsigned mask; /* epoll events registered; 0 = not in the epoll set */
	lutf_ev_fn fn; /* S_WATCH */
	void *data;    /* S_WATCH: fn's data; S_LISTEN / S_SOCK: the object */
};

struct lutf_ev_listener {
	struct ev_obj obj;
	struct lutf_ev_loop *l;
	int fd;
	lutf_ev_accept_fn fn;
	void *data;
};

struct lutf_ev_sock {
	struct ev_obj obj;
	struct lutf_ev_loop *l;
	int fd;
	const struct lutf_ev_sock_ops *ops;
	void *owner;
	bool want_recv, ended, closed;
	bool out_wait; /* a send met EAGAIN: waiting for EPOLLOUT */
	bool sent_ready, release, deferred;
	const uint8_t *sp;
	size_t sn;
	int sent_res;
	struct lutf_ev_sock *next_def;
};

struct lutf_ev_loop {
	struct ev_base base;
	int epfd;
	struct ev_slot *slots; /* indexed by fd */
	size_t nslots;
	struct lutf_ev_sock *def_head, *def_tail;
	struct epoll_event evs[NEVS];
	uint8_t rbuf[RBUF];
};

static int ep_create(const struct lutf_ev_params *p, struct lutf_ev_loop **out, char *why,
		     size_t cap)
{
	struct lutf_ev_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->base.be = &lutf_ev_epoll_backend;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = -errno;

		free(l);
		return err;
	}
	*out = l;
	return 0;
}

static void ep_destroy(struct lutf_ev_loop *l)
{
	close(l->epfd);
	free(l->slots);
	free(l);
}

static struct ev_slot *slot_get(struct lutf_ev_loop *l, int fd)
{
	if ((size_t)fd >= l->nslots) {
		size_t n = l->nslots ? l->nslots : 64;
		struct ev_slot *p;

		while (n <= (size_t)fd)
			n *= 2;
		p = realloc(l->slots, n * sizeof(*p));
		if (!p)
			return NULL;
		memset(p + l->nslots, 0, (n - l->nslots) * sizeof(*p));
		l->slots = p;
		l->nslots = n;
	}
	return &l->slots[fd];
}

/* Register fd's slot for events (0: leave the epoll set). Returns 0 or -errno. */
static int slot_events(struct lutf_ev_loop *l, int fd, struct ev_slot *s, unsigned events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};

	if (events == s->mask)
		return 0; /* this runs after every event: no syscall when nothing changes */
	if (!events) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		s->mask = 0;
		return 0;
	}
	if (epoll_ctl(l->epfd, s->mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	s->mask = events;
	return 0;
}

static void slot_clear(struct lutf_ev_loop *l, int fd)
{
	struct ev_slot *s = (size_t)fd < l->nslots ? &l->slots[fd] : NULL;

	if (!s)
		return;
	slot_events(l, fd, s, 0);
	memset(s, 0, sizeof(*s));
}

/* Returns 0 or -errno. */
static int ep_set(struct lutf_ev_loop *l, int fd, unsigned mask, lutf_ev_fn fn, void *data)
{
	struct ev_slot *s;
	int err;

	if (fd < 0)
		return -EINVAL;
	if (!mask) {
		slot_clear(l, fd);
		return 0;
	}
	s = slot_get(l, fd);
	if (!s)
		return -ENOMEM;
	err = slot_events(
	    l, fd, s, (mask & LUTF_EV_READ ? EPOLLIN : 0) | (mask & LUTF_EV_WRITE ? EPOLLOUT : 0));
	if (err)
		return err;
	s->kind = S_WATCH;
	s->fn = fn;
	s->data = data;
	return 0;
}

static void defer(struct lutf_ev_sock *s)
{
	struct lutf_ev_loop *l = s->l;

	if (s->deferred)
		return;
	s->deferred = true;
	s->next_def = NULL;
	if (l->def_tail)
		l->def_tail->next_def = s;
	else
		l->def_head = s;
	l->def_tail = s;
}

static void run_deferred(struct lutf_ev_loop *l)
{
	while (l->def_head) {
		struct lutf_ev_sock *s = l->def_head;

		l->def_head = s->next_def;
		if (!l->def_head)
			l->def_tail = NULL;
		s->deferred = false;
		if (s->sent_ready && !s->closed) {
			s->sent_ready = false;
			s->ops->sent(s->owner, s->sent_res);
		}
		if (s->release && !s->deferred) {
			s->ops->released(s->owner);
			free(s);
		}
	}
}

static void sock_update(struct lutf_ev_sock *s)
{
	struct ev_slot *slot;
	unsigned ev = 0;

	if (s->closed)
		return;
	if (s->want_recv && !s->ended)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (s->out_wait)
		ev |= EPOLLOUT;
	slot = &s->l->slots[s->fd];
	if (slot_events(s->l, s->fd, slot, ev) && !s->ended) {
		/* Cannot watch it: as good as a dead peer. */
		s->ended = true;
		s->ops->recv_end(s->owner, -ENOMEM);
	}
}

static void sock_readable(struct lutf_ev_sock *s)
{
	struct lutf_ev_loop *l = s->l;

	for (int i = 0; i < 4 && s->want_recv && !s->ended && !s->closed; i++) {
		ssize_t n = recv(s->fd, l->rbuf, RBUF, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			s->ended = true;
			s->ops->recv_end(s->owner, n < 0 ? -errno : 0);
			break;
		}
		l->base.st.recv_bytes += (uint64_t)n;
		s->ops->recv(s->owner, l->rbuf, (size_t)n);
		if ((size_t)n < RBUF)
			break;
	}
	sock_update(s);
}

/* One attempt; true when it finished (sent_res set). */
static bool try_send(struct lutf_ev_sock *s)
{
	ssize_t n;

	do
		n = send(s->fd, s->sp, s->sn, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	s->sent_res = n < 0 ? -errno : (int)n;
	if (n >= 0 && (size_t)n < s->sn)
		s->l->base.st.short_sends++;
	return true;
}

static void sock_writable(struct lutf_ev_sock *s)
{
	if (!s->out_wait || s->closed)
		return;
	if (try_send(s)) {
		s->out_wait = false;
		sock_update(s);
		s->ops->sent(s->owner, s->sent_res);
	}
}

/* Returns 0 or -errno. */
static int ep_sock_send(struct lutf_ev_sock *s, const void *p, size_t n)
{
	if (s->closed)
		return -EPIPE;
	if (n > INT32_MAX)
		n = INT32_MAX;
	s->sp = p;
	s->sn = n;
	s->l->base.st.sends++;
	if (try_send(s)) {
		s->sent_ready = true;
		defer(s);
		return 0;
	}
	s->out_wait = true;
	sock_update(s);
	return 0;
}

static void ep_sock_recv(struct lutf_ev_sock *s, bool on)
{
	s->want_recv = on;
	sock_update(s);
}

static void ep_sock_close(struct lutf_ev_sock *s)
{
	if (s->closed)
		return;
	s->closed = true;
	slot_clear(s->l, s->fd);
	close(s->fd);
	s->release = true;
	defer(s);
}

/* Returns 0 or -errno. */
static int ep_sock_open(struct lutf_ev_loop *l, int fd, const struct lutf_ev_sock_ops *ops,
			void *owner, struct lutf_ev_sock **out)
{
	struct ev_slot *slot = slot_get(l, fd);
	struct lutf_ev_sock *s;

	if (!slot)
		return -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->obj.base = &l->base;
	s->l = l;
	s->fd = fd;
	s->ops = ops;
	s->owner = owner;
	slot->kind = S_SOCK;
	slot->data = s;
	*out = s;
	return 0;
}

static void listener_event(struct lutf_ev_listener *ls)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				ls->fn(ls->data, -errno);
			break;
		}
		ls->l->base.st.accepts++;
		ls->fn(ls->data, fd);
	}
}

/* Returns 0 or -errno. */
static int ep_listen(struct lutf_ev_loop *l, int lfd, lutf_ev_accept_fn fn, void *data,
		     struct lutf_ev_listener **out)
{
	struct ev_slot *slot = slot_get(l, lfd);
	struct lutf_ev_listener *ls;
	int err;

	if (!slot)
		return -ENOMEM;
	ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	ls->obj.base = &l->base;
	ls->l = l;
	ls->fd = lfd;
	ls->fn = fn;
	ls->data = data;
	err = slot_events(l, lfd, slot, EPOLLIN);
	if (err) {
		free(ls);
		return err;
	}
	slot->kind = S_LISTEN;
	slot->data = ls;
	*out = ls;
	return 0;
}

static void ep_unlisten(struct lutf_ev_listener *ls)
{
	slot_clear(ls->l, ls->fd);
	close(ls->fd);
	free(ls);
}

/* Returns events handled or -errno. */
static int ep_poll(struct lutf_ev_loop *l, int timeout_ms)
{
	int n;

	run_deferred(l);
	n = epoll_wait(l->epfd, l->evs, NEVS, l->def_head ? 0 : timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	l->base.now_ns = 0; /* lutf_ev_now_ns reads the clock again */
	for (int i = 0; i < n; i++) {
		int fd = l->evs[i].data.fd;
		uint32_t e = l->evs[i].events;
		struct ev_slot *s;
		unsigned got = 0;

		if ((size_t)fd >= l->nslots)
			continue;
		s = &l->slots[fd];
		switch (s->kind) {
		case S_WATCH:
			if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
				got |= LUTF_EV_READ;
			if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				got |= LUTF_EV_WRITE;
			got &= (s->mask & EPOLLIN ? LUTF_EV_READ : 0) |
			       (s->mask & EPOLLOUT ? LUTF_EV_WRITE : 0);
			if (got && s->fn)
				s->fn(l, fd, s->data, got);
			break;
		case S_LISTEN:
			listener_event(s->data);
			break;
		case S_SOCK: {
			struct lutf_ev_sock *sk = s->data;

			if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				sock_writable(sk);
			if (!sk->closed && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				sock_readable(sk);
			break;
		}
		default:
			break;
		}
	}
	run_deferred(l);
	return n;
}

const struct ev_backend lutf_ev_epoll_backend = {
    .name = "epoll",
    .create = ep_create,
    .destroy = ep_destroy,
    .set = ep_set,
    .poll = ep_poll,
    .listen = ep_listen,
    .unlisten = ep_unlisten,
    .sock_open = ep_sock_open,
    .sock_recv = ep_sock_recv,
    .sock_send = ep_sock_send,
    .sock_close = ep_sock_close,
};
