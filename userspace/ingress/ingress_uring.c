/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend of the ingress loop: one ring, created and used only
 * by the loop's thread (SINGLE_ISSUER, DEFER_TASKRUN when the kernel has
 * them); multishot accept; multishot recv into a provided-buffer ring that we
 * mmap and register ourselves (liburing 2.3 has no io_uring_setup_buf_ring);
 * one send per socket, lent by the caller; multishot poll for other fds.
 *
 * Invariants: every SQE that names an object (user_data = pointer | tag)
 * holds one reference on it until its last CQE (no IORING_CQE_F_MORE); a
 * socket's fd is closed and its owner told "released" only when the count
 * drops to 0 after lutf_ev_sock_close, so no SQE ever names freed memory or a
 * reused fd. A provided buffer goes back to the ring as soon as its recv
 * callback returns; the ring tail is published before the next submit, so a
 * recv re-armed after -ENOBUFS finds buffers. Futex waits (one CQE each):
 * ingress_uring_futex.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "uring_internal.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* An SQE, submitting what is queued when the SQ is full; NULL if none. */
struct io_uring_sqe *lutf_ur_get_sqe(struct lutf_ev_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		l->base.st.sqe_waits++;
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

static int setup_ring(struct lutf_ev_loop *l, unsigned entries, char *why, size_t cap)
{
	static const unsigned tries[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_SINGLE_ISSUER,
	    0,
	};
	int err = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p = {0};
		struct io_uring_probe *probe;

		p.flags = tries[i] | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
		p.cq_entries = entries * 4; /* bursts: recv, send and poll CQEs per socket */
		err = io_uring_queue_init_params(entries, &l->ring, &p);
		if (err == -EINVAL)
			continue; /* an older kernel: try with fewer flags */
		if (err) {
			snprintf(why, cap, "io_uring_setup");
			return err;
		}
		if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP)) {
			io_uring_queue_exit(&l->ring);
			snprintf(why, cap, "io_uring: kernel lacks EXT_ARG/NODROP");
			return -EOPNOTSUPP;
		}
		l->ring_ok = true;
		probe = io_uring_get_probe_ring(&l->ring);
		l->futex_ok = probe && io_uring_opcode_supported(probe, OP_FUTEX_WAIT);
		if (probe)
			io_uring_free_probe(probe);
		return 0;
	}
	snprintf(why, cap, "io_uring_setup");
	return err;
}

static void recycle(struct lutf_ev_loop *l, unsigned bid)
{
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * l->bufsz, l->bufsz,
			      (unsigned short)bid, io_uring_buf_ring_mask(l->nbufs), l->recycled++);
}

static void publish_bufs(struct lutf_ev_loop *l)
{
	if (l->recycled) {
		io_uring_buf_ring_advance(l->br, l->recycled);
		l->recycled = 0;
	}
}

static int setup_bufs(struct lutf_ev_loop *l, char *why, size_t cap)
{
	struct io_uring_buf_reg reg = {0};
	long page = sysconf(_SC_PAGESIZE);
	int err;

	l->br_len = ((size_t)l->nbufs * sizeof(struct io_uring_buf) + (size_t)page - 1) &
		    ~((size_t)page - 1);
	l->br = mmap(NULL, l->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->br == MAP_FAILED) {
		l->br = NULL;
		snprintf(why, cap, "mmap of the buffer ring");
		return -ENOMEM;
	}
	l->bufs_len = (size_t)l->nbufs * l->bufsz;
	l->bufs =
	    mmap(NULL, l->bufs_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->bufs == MAP_FAILED) {
		l->bufs = NULL;
		snprintf(why, cap, "mmap of the provided buffers");
		return -ENOMEM;
	}
	reg.ring_addr = (unsigned long)(uintptr_t)l->br;
	reg.ring_entries = l->nbufs;
	reg.bgid = BGID;
	err = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (err) {
		snprintf(why, cap, "io_uring_register_buf_ring");
		return err;
	}
	io_uring_buf_ring_init(l->br);
	for (unsigned i = 0; i < l->nbufs; i++)
		recycle(l, i);
	publish_bufs(l);
	return 0;
}

static void ur_destroy(struct lutf_ev_loop *l)
{
	if (l->ring_ok)
		io_uring_queue_exit(&l->ring); /* cancels whatever is still in flight */
	if (l->br)
		munmap(l->br, l->br_len);
	if (l->bufs)
		munmap(l->bufs, l->bufs_len);
	for (size_t i = 0; i < l->nwatch; i++)
		free(l->watch[i]);
	free(l->watch);
	free(l);
}

static int ur_create(const struct lutf_ev_params *p, struct lutf_ev_loop **out, char *why,
		     size_t cap)
{
	struct lutf_ev_loop *l = calloc(1, sizeof(*l));
	unsigned entries = p->sq_entries ? p->sq_entries : 1024;
	int err;

	if (!l)
		return -ENOMEM;
	l->base.be = &lutf_ev_uring_backend;
	l->nbufs = p->buffers ? p->buffers : 256;
	l->bufsz = p->buffer_size ? p->buffer_size : 16384;
	if (l->nbufs & (l->nbufs - 1) || l->nbufs > 32768) {
		snprintf(why, cap, "buffer count %u is not a power of two <= 32768", l->nbufs);
		free(l);
		return -EINVAL;
	}
	err = setup_ring(l, entries, why, cap);
	if (!err)
		err = setup_bufs(l, why, cap);
	if (err) {
		ur_destroy(l);
		return err;
	}
	*out = l;
	return 0;
}

/* ---- readiness watches: multishot poll ---- */

static void arm_watch(struct lutf_ev_loop *l, struct watch *w)
{
	struct io_uring_sqe *sqe = lutf_ur_get_sqe(l);

	if (!sqe) {
		w->dead = true; /* cannot happen after a submit; never leave it half-armed */
		return;
	}
	io_uring_prep_poll_multishot(sqe, w->fd,
				     (w->mask & LUTF_EV_READ ? POLLIN : 0) |
					 (w->mask & LUTF_EV_WRITE ? POLLOUT : 0));
	io_uring_sqe_set_data64(sqe, UD(w, T_POLL));
}

static void unwatch(struct lutf_ev_loop *l, struct watch *w)
{
	struct io_uring_sqe *sqe;

	w->dead = true;
	l->watch[w->fd] = NULL;
	sqe = lutf_ur_get_sqe(l);
	if (sqe) {
		io_uring_prep_poll_remove(sqe, UD(w, T_POLL));
		io_uring_sqe_set_data64(sqe, T_IGNORE);
	}
}

/* Returns 0 or -errno. */
static int ur_set(struct lutf_ev_loop *l, int fd, unsigned mask, lutf_ev_fn fn, void *data)
{
	struct watch *w;

	if (fd < 0)
		return -EINVAL;
	if ((size_t)fd >= l->nwatch) {
		size_t n = l->nwatch ? l->nwatch : 64;
		struct watch **p;

		if (!mask)
			return 0;
		while (n <= (size_t)fd)
			n *= 2;
		p = realloc(l->watch, n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + l->nwatch, 0, (n - l->nwatch) * sizeof(*p));
		l->watch = p;
		l->nwatch = n;
	}
	w = l->watch[fd];
	if (w && w->mask == mask && mask) {
		w->fn = fn;
		w->data = data;
		return 0;
	}
	if (w)
		unwatch(l, w);
	if (!mask)
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->mask = mask;
	w->fn = fn;
	w->data = data;
	l->watch[fd] = w;
	arm_watch(l, w);
	return 0;
}

static void on_poll(struct lutf_ev_loop *l, struct watch *w, int res, unsigned flags)
{
	if (!w->dead && res > 0) {
		unsigned got = 0;

		if (res & (POLLIN | POLLHUP | POLLERR))
			got |= LUTF_EV_READ;
		if (res & (POLLOUT | POLLHUP | POLLERR))
			got |= LUTF_EV_WRITE;
		got &= w->mask;
		if (got)
			w->fn(l, w->fd, w->data, got);
	}
	if (flags & IORING_CQE_F_MORE)
		return;
	if (w->dead) {
		free(w);
		return;
	}
	if (res >= 0) {
		arm_watch(l, w); /* the kernel ended it (a full CQ): watch on */
		return;
	}
	/* An error (the fd went bad): the watch is over. */
	l->watch[w->fd] = NULL;
	free(w);
}

/* ---- listeners: multishot accept ---- */

static void arm_accept(struct lutf_ev_listener *ls)
{
	struct io_uring_sqe *sqe = lutf_ur_get_sqe(ls->l);

	if (!sqe) {
		ls->retry_at = mono_ms() + ACCEPT_RETRY_MS;
		ls->next_retry = ls->l->lretry;
		ls->l->lretry = ls;
		return;
	}
	io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, UD(ls, T_ACCEPT));
	ls->armed = true;
}

/* Returns 0 or -errno. */
static int ur_listen(struct lutf_ev_loop *l, int lfd, lutf_ev_accept_fn fn, void *data,
		     struct lutf_ev_listener **out)
{
	struct lutf_ev_listener *ls = calloc(1, sizeof(*ls));
	int fl = fcntl(lfd, F_GETFL);

	if (!ls)
		return -ENOMEM;
	/* Blocking fds: io_uring waits on them itself (poll) and never blocks us. */
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(lfd, F_SETFL, fl & ~O_NONBLOCK);
	ls->obj.base = &l->base;
	ls->l = l;
	ls->fd = lfd;
	ls->fn = fn;
	ls->data = data;
	arm_accept(ls);
	*out = ls;
	return 0;
}

static void ur_unlisten(struct lutf_ev_listener *ls)
{
	struct lutf_ev_loop *l = ls->l;

	ls->dead = true;
	if (ls->armed) {
		struct io_uring_sqe *sqe = lutf_ur_get_sqe(l);

		if (sqe) {
			io_uring_prep_cancel64(sqe, UD(ls, T_ACCEPT), 0);
			io_uring_sqe_set_data64(sqe, T_IGNORE);
		} else {
			shutdown(ls->fd, SHUT_RDWR); /* ends the accept too */
		}
		close(ls->fd); /* the accept holds its own reference to the socket */
		return;	       /* freed by its last CQE */
	}
	close(ls->fd);
	for (struct lutf_ev_listener **pp = &l->lretry; *pp; pp = &(*pp)->next_retry) {
		if (*pp == ls) {
			*pp = ls->next_retry;
			break;
		}
	}
	free(ls);
}

static void on_accept(struct lutf_ev_loop *l, struct lutf_ev_listener *ls, int res, unsigned flags)
{
	if (res >= 0) {
		if (ls->dead) {
			close(res);
		} else {
			l->base.st.accepts++;
			ls->fn(ls->data, res);
		}
	} else if (!ls->dead && res != -ECANCELED) {
		ls->fn(ls->data, res);
	}
	if (flags & IORING_CQE_F_MORE)
		return;
	ls->armed = false;
	if (ls->dead) {
		free(ls);
		return;
	}
	if (res >= 0) {
		arm_accept(ls);
		return;
	}
	/* EMFILE and friends: try again a little later, not in a tight loop. */
	ls->retry_at = mono_ms() + ACCEPT_RETRY_MS;
	ls->next_retry = l->lretry;
	l->lretry = ls;
}

/* ---- stream sockets ---- */

static void sock_pending(struct lutf_ev_sock *s)
{
	if (s->pending)
		return;
	s->pending = true;
	s->next = s->l->retry;
	s->l->retry = s;
}

static void maybe_release(struct lutf_ev_sock *s)
{
	struct lutf_ev_loop *l = s->l;

	if (!s->closing || s->refs || s->released || s->pending)
		return;
	s->released = true;
	s->next = l->release;
	l->release = s;
}

static void run_release(struct lutf_ev_loop *l)
{
	while (l->release) {
		struct lutf_ev_sock *s = l->release;

		l->release = s->next;
		close(s->fd);
		s->ops->released(s->owner);
		free(s);
	}
}

static void arm_recv(struct lutf_ev_sock *s)
{
	struct io_uring_sqe *sqe;

	if (s->recv_armed || s->ended || s->closing || !s->want_recv)
		return;
	sqe = lutf_ur_get_sqe(s->l);
	if (!sqe) {
		sock_pending(s);
		return;
	}
	io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, UD(s, T_RECV));
	s->refs++;
	s->recv_armed = true;
	s->recv_cancel = false;
	s->l->base.st.recv_arms++;
}

static void cancel_recv(struct lutf_ev_sock *s)
{
	struct io_uring_sqe *sqe;

	if (!s->recv_armed || s->recv_cancel)
		return;
	sqe = lutf_ur_get_sqe(s->l);
	if (!sqe) {
		sock_pending(s);
		return;
	}
	io_uring_prep_cancel64(sqe, UD(s, T_RECV), 0);
	io_uring_sqe_set_data64(sqe, UD(s, T_CANCEL));
	s->refs++;
	s->recv_cancel = true;
}

static void cancel_all(struct lutf_ev_sock *s)
{
	struct io_uring_sqe *sqe = lutf_ur_get_sqe(s->l);

	if (!sqe) {
		/* Ends a recv (0) and a send (EPIPE) just as well. */
		shutdown(s->fd, SHUT_RDWR);
		return;
	}
	io_uring_prep_cancel_fd(sqe, s->fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, UD(s, T_CANCEL));
	s->refs++;
}

/* Socket actions that found the SQ full: retried before the next wait. */
static void run_retry(struct lutf_ev_loop *l)
{
	struct lutf_ev_sock *list = l->retry;
	uint64_t now;

	l->retry = NULL;
	while (list) {
		struct lutf_ev_sock *s = list;

		list = s->next;
		s->pending = false;
		if (s->closing) {
			if (s->refs)
				cancel_all(s);
			maybe_release(s);
		} else if (s->want_recv) {
			arm_recv(s);
		} else {
			cancel_recv(s);
		}
	}
	if (!l->lretry)
		return;
	now = mono_ms();
	for (struct lutf_ev_listener **pp = &l->lretry; *pp;) {
		struct lutf_ev_listener *ls = *pp;

		if (now < ls->retry_at) {
			pp = &ls->next_retry;
			continue;
		}
		*pp = ls->next_retry;
		arm_accept(ls);
	}
}

/* Returns 0 or -errno. */
static int ur_sock_open(struct lutf_ev_loop *l, int fd, const struct lutf_ev_sock_ops *ops,
			void *owner, struct lutf_ev_sock **out)
{
	struct lutf_ev_sock *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->obj.base = &l->base;
	s->l = l;
	s->fd = fd;
	s->ops = ops;
	s->owner = owner;
	*out = s;
	return 0;
}

static void ur_sock_recv(struct lutf_ev_sock *s, bool on)
{
	if (s->closing)
		return;
	s->want_recv = on;
	if (on)
		arm_recv(s);
	else
		cancel_recv(s);
}

/* Returns 0 or -errno. */
static int ur_sock_send(struct lutf_ev_sock *s, const void *p, size_t n)
{
	struct io_uring_sqe *sqe;

	if (s->closing)
		return -EPIPE;
	sqe = lutf_ur_get_sqe(s->l);
	if (!sqe)
		return -EBUSY;
	if (n > INT32_MAX)
		n = INT32_MAX;
	io_uring_prep_send(sqe, s->fd, p, n, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, UD(s, T_SEND));
	s->refs++;
	s->sn = n;
	s->l->base.st.sends++;
	return 0;
}

static void ur_sock_close(struct lutf_ev_sock *s)
{
	if (s->closing)
		return;
	s->closing = true;
	s->want_recv = false;
	if (s->refs)
		cancel_all(s);
	maybe_release(s);
}

static void on_recv(struct lutf_ev_loop *l, struct lutf_ev_sock *s, int res, unsigned flags)
{
	if (flags & IORING_CQE_F_BUFFER) {
		unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;

		if (res > 0 && bid < l->nbufs && !s->closing && !s->ended) {
			l->base.st.recv_bytes += (uint64_t)res;
			s->ops->recv(s->owner, l->bufs + (size_t)bid * l->bufsz, (size_t)res);
		}
		if (bid < l->nbufs)
			recycle(l, bid); /* back to the kernel before the next submit */
	}
	if (res == 0 || (res < 0 && res != -ENOBUFS && res != -ECANCELED)) {
		if (!s->ended && !s->closing) {
			s->ended = true;
			s->ops->recv_end(s->owner, res);
		}
		s->ended = true;
	}
	if (flags & IORING_CQE_F_MORE)
		return;
	s->recv_armed = false;
	s->recv_cancel = false;
	s->refs--;
	if (res == -ENOBUFS)
		l->base.st.enobufs++; /* re-armed below: the connection stays */
	arm_recv(s);
	maybe_release(s);
}

static void on_send(struct lutf_ev_loop *l, struct lutf_ev_sock *s, int res)
{
	s->refs--;
	if (!s->closing) {
		if (res >= 0 && (size_t)res < s->sn)
			l->base.st.short_sends++;
		s->ops->sent(s->owner, res);
	}
	maybe_release(s);
}

static void dispatch(struct lutf_ev_loop *l, uint64_t ud, int res, unsigned flags)
{
	void *p = (void *)(uintptr_t)(ud & ~TAG_MASK);

	switch (ud & TAG_MASK) {
	case T_POLL:
		on_poll(l, p, res, flags);
		break;
	case T_ACCEPT:
		on_accept(l, p, res, flags);
		break;
	case T_RECV:
		on_recv(l, p, res, flags);
		break;
	case T_SEND:
		on_send(l, p, res);
		break;
	case T_FUTEX:
		lutf_ur_on_futex(p, res);
		break;
	case T_CANCEL: {
		struct lutf_ev_sock *s = p;

		s->refs--;
		maybe_release(s);
		break;
	}
	default:
		break;
	}
}

/* Returns completions handled or -errno. */
static int ur_poll(struct lutf_ev_loop *l, int timeout_ms)
{
	int handled = 0, ret;

	run_retry(l);
	publish_bufs(l);
	run_release(l);
	if (l->retry || l->lretry)
		timeout_ms =
		    timeout_ms < 0 || timeout_ms > ACCEPT_RETRY_MS ? ACCEPT_RETRY_MS : timeout_ms;
	if (io_uring_cq_ready(&l->ring) || l->release) {
		ret = io_uring_submit_and_get_events(&l->ring);
	} else if (timeout_ms < 0) {
		ret = io_uring_submit_and_wait(&l->ring, 1);
	} else {
		struct __kernel_timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000ll};
		struct io_uring_cqe *cqe;

		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
		return ret;
	for (int round = 0; round < 16; round++) {
		uint64_t ud[BATCH];
		int res[BATCH];
		unsigned fl[BATCH];
		unsigned n = io_uring_peek_batch_cqe(&l->ring, l->cqes, BATCH);

		if (!n)
			break;
		l->base.now_ns = 0; /* a new batch: lutf_ev_now_ns reads the clock again */
		/* Copy, then give the CQ slots back: handlers may submit (and, with a
		 * full SQ, enter the kernel) while we walk the batch. */
		for (unsigned i = 0; i < n; i++) {
			ud[i] = l->cqes[i]->user_data;
			res[i] = l->cqes[i]->res;
			fl[i] = l->cqes[i]->flags;
		}
		io_uring_cq_advance(&l->ring, n);
		for (unsigned i = 0; i < n; i++)
			dispatch(l, ud[i], res[i], fl[i]);
		handled += (int)n;
		publish_bufs(l);
		if (n < BATCH)
			break;
	}
	if (io_uring_cq_has_overflow(&l->ring))
		l->base.st.cq_overflows++; /* NODROP: the kernel keeps them; next enter flushes */
	publish_bufs(l);
	run_release(l);
	return handled;
}

const struct ev_backend lutf_ev_uring_backend = {
    .name = "io_uring",
    .create = ur_create,
    .destroy = ur_destroy,
    .set = ur_set,
    .poll = ur_poll,
    .listen = ur_listen,
    .unlisten = ur_unlisten,
    .sock_open = ur_sock_open,
    .sock_recv = ur_sock_recv,
    .sock_send = ur_sock_send,
    .sock_close = ur_sock_close,
    .futex_wait = lutf_ur_futex_wait,
    .futex_cancel = lutf_ur_futex_cancel,
};
