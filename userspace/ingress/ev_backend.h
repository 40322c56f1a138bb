/* SPDX-License-Identifier: MIT */
/*
 * Private to userspace/ingress: the backend interface behind lutf_ev_* (one
 * table of functions per backend, like redis's ae_epoll.c / ae_kqueue.c).
 * Every struct lutf_ev_loop starts with struct ev_base; a backend casts.
 */
#ifndef LUTF_EV_BACKEND_H
#define LUTF_EV_BACKEND_H

#include "ingress.h"

struct ev_backend {
	const char *name;
	/* Returns 0 or -errno; why says which step failed. */
	int (*create)(const struct lutf_ev_params *p, struct lutf_ev_loop **out, char *why,
		      size_t cap);
	void (*destroy)(struct lutf_ev_loop *l);
	int (*set)(struct lutf_ev_loop *l, int fd, unsigned mask, lutf_ev_fn fn, void *data);
	int (*poll)(struct lutf_ev_loop *l, int timeout_ms);
	int (*listen)(struct lutf_ev_loop *l, int lfd, lutf_ev_accept_fn fn, void *data,
		      struct lutf_ev_listener **out);
	void (*unlisten)(struct lutf_ev_listener *ls);
	int (*sock_open)(struct lutf_ev_loop *l, int fd, const struct lutf_ev_sock_ops *ops,
			 void *owner, struct lutf_ev_sock **out);
	void (*sock_recv)(struct lutf_ev_sock *s, bool on);
	int (*sock_send)(struct lutf_ev_sock *s, const void *p, size_t n);
	void (*sock_close)(struct lutf_ev_sock *s);
	/* NULL: no futex waits (lutf_ev_futex_wait says -ENOTSUP). */
	int (*futex_wait)(struct lutf_ev_loop *l, uint32_t *uaddr, uint32_t val, bool shared,
			  lutf_ev_futex_fn fn, void *data, struct lutf_ev_futex **out);
	void (*futex_cancel)(struct lutf_ev_futex *f);
};

struct ev_base {
	const struct ev_backend *be;
	struct lutf_ev_stats st;
	/* lutf_ev_now_ns's stamp, 0 = stale: a backend clears it each time it
	 * has waited, before it runs the handlers of what the wait brought. */
	uint64_t now_ns;
};

/* Listeners and sockets also start with a pointer to their loop's base. */
struct ev_obj {
	struct ev_base *base;
};

extern const struct ev_backend lutf_ev_epoll_backend;
extern const struct ev_backend lutf_ev_uring_backend;

#endif
