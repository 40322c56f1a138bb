/* SPDX-License-Identifier: MIT */
/*
 * The plain-socket backend of the asynchronous client, for hosts that refuse
 * io_uring: non-blocking sockets, sendmsg of every queued frame of a
 * connection at once, recv, and one poll over all connections. Same calls
 * into async.c as the io_uring backend, so both keep the same semantics.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "async.h"

#define READS_PER_WAKE 16 /* recv calls per connection per wake-up: fairness */

struct sock_priv {
	struct pollfd pfd[AMAX_CONNS];
	uint32_t conn[AMAX_CONNS];
};

/* Write what c has queued until the socket is full or the queue empty. */
static void sock_write(struct lutf_client_async *a, struct aconn *c)
{
	while (c->state == CONN_UP) {
		ssize_t n;

		if (!c->send_busy && !async_send_build(a, c))
			return;
		n = sendmsg(c->fd, &c->msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		a->st.enters++;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return; /* poll for POLLOUT */
		if (async_on_send(a, c, n < 0 ? -errno : n) && n == 0)
			return;
	}
}

static int sock_flush(struct lutf_client_async *a)
{
	for (uint32_t i = 0; i < a->n_conns; i++)
		sock_write(a, &a->conns[i]);
	return 0;
}

static void sock_read(struct lutf_client_async *a, struct aconn *c)
{
	for (int r = 0; r < READS_PER_WAKE && c->state == CONN_UP; r++) {
		size_t room;
		ssize_t n;

		if (async_rx_room(a, c)) {
			async_conn_fail(a, c, -ENOMEM);
			return;
		}
		room = c->rx_cap - c->rx_len;
		n = recv(c->fd, c->rx + c->rx_len, room, MSG_DONTWAIT);
		a->st.enters++;
		if (n > 0) {
			async_on_recv(a, c, (size_t)n);
			if ((size_t)n < room)
				return; /* drained */
			continue;
		}
		if (n == 0) {
			async_conn_fail(a, c, -ECONNRESET);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			async_conn_fail(a, c, -errno);
		return;
	}
}

static int sock_io(struct lutf_client_async *a, int64_t wait_ns)
{
	struct sock_priv *p = a->be_priv;
	nfds_t n = 0;
	int ms, ready;

	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		a->be_priv = p;
	}
	sock_flush(a);
	for (uint32_t i = 0; i < a->n_conns; i++) {
		struct aconn *c = &a->conns[i];

		if (c->state != CONN_UP)
			continue;
		p->pfd[n].fd = c->fd;
		p->pfd[n].events = POLLIN | (c->send_busy ? POLLOUT : 0);
		p->pfd[n].revents = 0;
		p->conn[n++] = i;
	}
	/* Round up: a 0 ms poll before a deadline would spin. */
	wait_ns = (wait_ns + 999999) / 1000000;
	ms = wait_ns > INT_MAX ? INT_MAX : (int)wait_ns;
	if (!n) {
		/* Nothing is up: sleep until the caller's next event (a re-dial). */
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

		nanosleep(&ts, NULL);
		return 0;
	}
	ready = poll(p->pfd, n, ms);
	a->st.enters++;
	if (ready < 0)
		return errno == EINTR ? 0 : -errno;
	for (nfds_t j = 0; j < n && ready > 0; j++) {
		struct aconn *c = &a->conns[p->conn[j]];
		short ev = p->pfd[j].revents;

		if (!ev)
			continue;
		ready--;
		if (ev & (POLLIN | POLLERR | POLLHUP))
			sock_read(a, c);
		if ((ev & POLLOUT) && c->state == CONN_UP)
			sock_write(a, c);
	}
	return 0;
}

static void sock_fail(struct lutf_client_async *a, struct aconn *c)
{
	/* Settle the rest of a send (written frames lost, others moved). */
	if (c->send_busy)
		async_on_send(a, c, -ECONNRESET);
	async_conn_closed(a, c);
}

static void sock_destroy(struct lutf_client_async *a)
{
	free(a->be_priv);
	a->be_priv = NULL;
}

const struct abackend async_sock_backend = {
    .name = "socket",
    .flush = sock_flush,
    .io = sock_io,
    .fail = sock_fail,
    .destroy = sock_destroy,
};
