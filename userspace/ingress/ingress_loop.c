/* SPDX-License-Identifier: MIT */
/*
 * The public event-loop calls: pick a backend at creation (io_uring first,
 * epoll when io_uring is refused) and forward to its table. Invariant: a
 * loop, its listeners and its sockets all use the backend chosen at creation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ev_backend.h"

#define BASE(x) (((struct ev_obj *)(void *)(x))->base)

/* Returns 0 or -errno. */
int lutf_ev_create(const struct lutf_ev_params *p, struct lutf_ev_loop **out, char *why, size_t cap)
{
	char tmp[160] = "";
	int err;

	if (why && cap)
		why[0] = 0;
	if (p->kind == LUTF_EV_EPOLL)
		return lutf_ev_epoll_backend.create(p, out, why, cap);
	err = lutf_ev_uring_backend.create(p, out, tmp, sizeof(tmp));
	if (!err)
		return 0;
	if (why && cap)
		snprintf(why, cap, "%s: %s", tmp, strerror(-err));
	if (p->kind == LUTF_EV_URING)
		return err;
	return lutf_ev_epoll_backend.create(p, out, NULL, 0);
}

void lutf_ev_destroy(struct lutf_ev_loop *l)
{
	/* A loop starts with its ev_base itself (not a pointer to it, as
	 * listeners and sockets do). */
	if (l)
		((struct ev_base *)(void *)l)->be->destroy(l);
}

const char *lutf_ev_backend(const struct lutf_ev_loop *l)
{
	return ((const struct ev_base *)(const void *)l)->be->name;
}

void lutf_ev_get_stats(const struct lutf_ev_loop *l, struct lutf_ev_stats *st)
{
	*st = ((const struct ev_base *)(const void *)l)->st;
}

uint64_t lutf_ev_now_ns(struct lutf_ev_loop *l)
{
	struct ev_base *b = (struct ev_base *)(void *)l;

	if (!b->now_ns) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		b->now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	return b->now_ns;
}

/* Returns 0 or -errno. */
int lutf_ev_set(struct lutf_ev_loop *l, int fd, unsigned mask, lutf_ev_fn fn, void *data)
{
	return ((struct ev_base *)(void *)l)->be->set(l, fd, mask, fn, data);
}

/* Returns completions handled or -errno. */
int lutf_ev_poll(struct lutf_ev_loop *l, int timeout_ms)
{
	return ((struct ev_base *)(void *)l)->be->poll(l, timeout_ms);
}

/* Returns 0 or -errno. */
int lutf_ev_listen(struct lutf_ev_loop *l, int lfd, lutf_ev_accept_fn fn, void *data,
		   struct lutf_ev_listener **out)
{
	return ((struct ev_base *)(void *)l)->be->listen(l, lfd, fn, data, out);
}

void lutf_ev_unlisten(struct lutf_ev_listener *ls)
{
	if (ls)
		BASE(ls)->be->unlisten(ls);
}

/* Returns 0 or -errno. */
int lutf_ev_sock_open(struct lutf_ev_loop *l, int fd, const struct lutf_ev_sock_ops *ops,
		      void *owner, struct lutf_ev_sock **out)
{
	return ((struct ev_base *)(void *)l)->be->sock_open(l, fd, ops, owner, out);
}

void lutf_ev_sock_recv(struct lutf_ev_sock *s, bool on)
{
	BASE(s)->be->sock_recv(s, on);
}

/* Returns 0 or -errno. */
int lutf_ev_sock_send(struct lutf_ev_sock *s, const void *p, size_t n)
{
	return BASE(s)->be->sock_send(s, p, n);
}

void lutf_ev_sock_close(struct lutf_ev_sock *s)
{
	BASE(s)->be->sock_close(s);
}

/* Returns 0 or -errno (-ENOTSUP: this backend or kernel has no futex waits). */
int lutf_ev_futex_wait(struct lutf_ev_loop *l, uint32_t *uaddr, uint32_t val, bool shared,
		       lutf_ev_futex_fn fn, void *data, struct lutf_ev_futex **out)
{
	const struct ev_backend *be = ((struct ev_base *)(void *)l)->be;

	if (!be->futex_wait)
		return -ENOTSUP;
	return be->futex_wait(l, uaddr, val, shared, fn, data, out);
}

void lutf_ev_futex_cancel(struct lutf_ev_futex *f)
{
	if (f)
		BASE(f)->be->futex_cancel(f);
}
