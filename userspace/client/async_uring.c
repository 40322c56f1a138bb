/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend of the asynchronous client. One ring per handle;
 * each live connection keeps one recv armed into its buffer and at most one
 * sendmsg (every frame queued on it, as an iovec array) in flight. A flush
 * or a reap prepares those for all connections and enters the kernel once.
 * Invariant: a connection's socket and buffers are released only when no
 * operation of it is left in the kernel (ops == 0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "async.h"

enum { OP_RECV = 1, OP_SEND = 2 };

#define DRAIN_ROUNDS 50 /* x 20 ms: bound on waiting for the kernel at close */

struct uring_priv {
	struct io_uring ring;
	bool closing; /* destroy: completions only count down */
};

static struct io_uring_sqe *get_sqe(struct lutf_client_async *a)
{
	struct uring_priv *u = a->be_priv;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	/* The SQ holds two per connection, which is all a connection uses;
	 * submitting here is only a safety net. */
	if (!sqe) {
		io_uring_submit(&u->ring);
		a->st.enters++;
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static void prep_send(struct lutf_client_async *a, struct aconn *c)
{
	struct io_uring_sqe *sqe = get_sqe(a);

	if (!sqe) { /* cannot happen with the SQ sized as it is */
		async_on_send(a, c, -EBUSY);
		return;
	}
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(c - a->conns) << 8 | OP_SEND);
	c->ops++;
}

/* Arm c's recv and start its send if it has frames queued. */
static void arm(struct lutf_client_async *a, struct aconn *c)
{
	if (c->state != CONN_UP)
		return;
	if (!c->recv_armed) {
		struct io_uring_sqe *sqe;

		if (async_rx_room(a, c)) {
			async_conn_fail(a, c, -ENOMEM);
			return;
		}
		sqe = get_sqe(a);
		if (!sqe) {
			async_conn_fail(a, c, -EBUSY);
			return;
		}
		io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, 0);
		io_uring_sqe_set_data64(sqe, (uint64_t)(c - a->conns) << 8 | OP_RECV);
		c->recv_armed = true;
		c->ops++;
	}
	if (!c->send_busy && c->sendq.n && async_send_build(a, c))
		prep_send(a, c);
}

static void on_cqe(struct lutf_client_async *a, const struct io_uring_cqe *cqe)
{
	struct uring_priv *u = a->be_priv;
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct aconn *c = &a->conns[ud >> 8];
	int res = cqe->res;

	c->ops--;
	if (u->closing)
		return;
	if ((ud & 0xff) == OP_RECV) {
		c->recv_armed = false;
		if (c->state != CONN_UP)
			; /* failed meanwhile: what came in is dropped with it */
		else if (res > 0)
			async_on_recv(a, c, (size_t)res);
		else if (res == 0)
			async_conn_fail(a, c, -ECONNRESET);
		else if (res != -EINTR && res != -EAGAIN)
			async_conn_fail(a, c, res);
	} else {
		if (res == -EINTR || res == -EAGAIN)
			res = 0;
		if (async_on_send(a, c, res) && c->state == CONN_UP)
			prep_send(a, c); /* the rest of a short send */
	}
	if (c->state == CONN_CLOSING && !c->ops)
		async_conn_closed(a, c);
}

static void harvest(struct lutf_client_async *a)
{
	struct uring_priv *u = a->be_priv;
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&u->ring, head, cqe)
	{
		on_cqe(a, cqe);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
}

static int uring_flush(struct lutf_client_async *a)
{
	struct uring_priv *u = a->be_priv;
	int ret;

	for (uint32_t i = 0; i < a->n_conns; i++)
		arm(a, &a->conns[i]);
	ret = io_uring_submit(&u->ring);
	a->st.enters++;
	return ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY ? ret : 0;
}

static int uring_io(struct lutf_client_async *a, int64_t wait_ns)
{
	struct uring_priv *u = a->be_priv;
	struct io_uring_cqe *cqe;
	int ret;

	for (uint32_t i = 0; i < a->n_conns; i++)
		arm(a, &a->conns[i]);
	if (wait_ns > 0) {
		struct __kernel_timespec ts = {.tv_sec = wait_ns / 1000000000,
					       .tv_nsec = wait_ns % 1000000000};

		/* Submit everything and wait for the first completion: one
		 * io_uring_enter (IORING_FEAT_EXT_ARG, Linux 5.11+). */
		ret = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	} else {
		ret = io_uring_submit_and_get_events(&u->ring);
	}
	a->st.enters++;
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		return ret;
	harvest(a);
	return 0;
}

static void uring_fail(struct lutf_client_async *a, struct aconn *c)
{
	/* Shutdown completes the armed recv (0) and fails a pending send
	 * (-EPIPE), so every operation of c comes back. */
	if (c->ops) {
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	async_conn_closed(a, c);
}

static void uring_up(struct lutf_client_async *a, struct aconn *c)
{
	int fl = fcntl(c->fd, F_GETFL);

	(void)a;
	/* io_uring waits for readiness itself; a blocking socket keeps it from
	 * handing -EAGAIN back for sends and receives. */
	if (fl >= 0)
		fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
}

static void uring_destroy(struct lutf_client_async *a)
{
	struct uring_priv *u = a->be_priv;
	unsigned left = 0;

	if (!u)
		return;
	u->closing = true;
	for (uint32_t i = 0; i < a->n_conns; i++) {
		struct aconn *c = &a->conns[i];

		if (c->ops && c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
		left += c->ops;
	}
	/* The kernel must give every buffer back before they are freed. */
	for (int r = 0; left && r < DRAIN_ROUNDS; r++) {
		struct __kernel_timespec ts = {.tv_nsec = 20 * 1000000};
		struct io_uring_cqe *cqe;

		io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
		harvest(a);
		left = 0;
		for (uint32_t i = 0; i < a->n_conns; i++)
			left += a->conns[i].ops;
	}
	io_uring_queue_exit(&u->ring);
	free(u);
	a->be_priv = NULL;
}

static const struct abackend uring_backend = {
    .name = "io_uring",
    .flush = uring_flush,
    .io = uring_io,
    .fail = uring_fail,
    .up = uring_up,
    .destroy = uring_destroy,
};

int async_uring_init(struct lutf_client_async *a)
{
	static const unsigned tries[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_COOP_TASKRUN,
	    0,
	};
	struct uring_priv *u = calloc(1, sizeof(*u));
	unsigned entries = 8;
	int err = -EINVAL;

	if (!u)
		return -ENOMEM;
	while (entries < 2 * a->n_conns + 8)
		entries *= 2;
	/* Older kernels refuse newer flags with EINVAL: try the next set. */
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p = {.flags = tries[i]};

		err = io_uring_queue_init_params(entries, &u->ring, &p);
		if (err != -EINVAL)
			break;
	}
	if (err) {
		free(u);
		return err;
	}
	a->be_priv = u;
	a->be = &uring_backend;
	return 0;
}
