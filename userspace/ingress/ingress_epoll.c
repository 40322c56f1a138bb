/* SPDX-License-Identifier: MIT */
/*
 * The epoll backend of the ingress event loop. Invariant: a handler runs only
 * for an fd that is still watched with a mask matching the event, so a
 * handler may stop watching (and close) any fd, its own included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ingress.h"

struct ev_slot {
	lutf_ev_fn fn;
	void *data;
	unsigned mask;
};

struct lutf_ev_loop {
	int epfd;
	struct ev_slot *slots; /* indexed by fd */
	size_t nslots;
	struct epoll_event evs[256];
};

const char *lutf_ev_backend(void)
{
	return "epoll";
}

/* Returns 0 or -errno. */
int lutf_ev_create(struct lutf_ev_loop **out)
{
	struct lutf_ev_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = -errno;

		free(l);
		return err;
	}
	*out = l;
	return 0;
}

void lutf_ev_destroy(struct lutf_ev_loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->slots);
	free(l);
}

/* Returns 0 or -errno. */
int lutf_ev_set(struct lutf_ev_loop *l, int fd, unsigned mask, lutf_ev_fn fn, void *data)
{
	struct epoll_event ev = {0};
	struct ev_slot *s;
	int op;

	if (fd < 0)
		return -EINVAL;
	if ((size_t)fd >= l->nslots) {
		size_t n = l->nslots ? l->nslots : 64;
		struct ev_slot *p;

		if (!mask)
			return 0;
		while (n <= (size_t)fd)
			n *= 2;
		p = realloc(l->slots, n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + l->nslots, 0, (n - l->nslots) * sizeof(*p));
		l->slots = p;
		l->nslots = n;
	}
	s = &l->slots[fd];
	if (!mask) {
		if (s->mask)
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		memset(s, 0, sizeof(*s));
		return 0;
	}
	if (s->mask == mask) {
		/* Same interest: no syscall (this runs after every event). */
		s->fn = fn;
		s->data = data;
		return 0;
	}
	op = s->mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	ev.events = (mask & LUTF_EV_READ ? EPOLLIN : 0) | (mask & LUTF_EV_WRITE ? EPOLLOUT : 0);
	ev.data.fd = fd;
	if (epoll_ctl(l->epfd, op, fd, &ev))
		return -errno;
	s->fn = fn;
	s->data = data;
	s->mask = mask;
	return 0;
}

/* Returns events handled or -errno. */
int lutf_ev_poll(struct lutf_ev_loop *l, int timeout_ms)
{
	int n = epoll_wait(l->epfd, l->evs, 256, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		int fd = l->evs[i].data.fd;
		unsigned got = 0;
		struct ev_slot *s;

		if (l->evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			got |= LUTF_EV_READ;
		if (l->evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			got |= LUTF_EV_WRITE;
		if ((size_t)fd >= l->nslots)
			continue;
		s = &l->slots[fd];
		got &= s->mask;
		if (got && s->fn)
			s->fn(l, fd, s->data, got);
	}
	return n;
}
