/* SPDX-License-Identifier: MIT */
/*
 * Internals of the asynchronous client (struct lutf_client_async): calls,
 * connections and the small backend interface that async_uring.c (io_uring)
 * and async_sock.c (plain sockets) implement. async.c holds everything the
 * two share: submit, reply matching, timeouts, fail-over and reconnects.
 */
#ifndef LUTF_CLIENT_ASYNC_H
#define LUTF_CLIENT_ASYNC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"

#define ANONE UINT32_MAX	  /* no call / no connection in a link */
#define AID_SHIFT 20		  /* request id = sequence << 20 | call slot */
#define AMAX_DEPTH (1u << AID_SHIFT) /* so a slot always fits below the shift */
#define AMAX_CONNS 1024u
#define AMAX_ENDPOINTS 64u
#define AMAX_IOV 256u		  /* frames in one send */
#define ARX_MIN 16384u		  /* initial receive buffer of a connection */
#define ARX_SPARE 4096u		  /* free space kept for each receive */

enum acall_state {
	CALL_FREE = 0,
	CALL_QUEUED, /* encoded, on a connection's send queue or the backlog: never sent */
	CALL_SENT,   /* handed to the kernel on conn: may have reached lutfd */
	CALL_DONE,   /* on the done list, waiting for reap */
};

struct acall {
	uint64_t id; /* request id on the wire; 0 when free */
	uint64_t user_data;
	int64_t deadline; /* CLOCK_MONOTONIC ns */
	uint32_t prev, next; /* send queue / backlog (doubly linked) */
	uint32_t dnext;	     /* done list / free list */
	uint32_t conn;	     /* ANONE: on the backlog or done */
	uint32_t endpoint;
	uint8_t state;	     /* enum acall_state */
	/* The frame is part of a send the kernel may still be reading: the slot
	 * (and its frame buffer) is not reused until that send completes. */
	bool in_send;
	bool reaped; /* handed to the user while in_send: free when it clears */
	int error;
	struct lutf_buf frame;
	struct lutf_client_result result;
};

struct alist {
	uint32_t head, tail, n;
};

enum aconn_state {
	CONN_DOWN = 0, /* no socket; dialled again at retry_at */
	CONN_UP,
	CONN_CLOSING, /* failed; io_uring operations still hold its buffers */
};

struct aconn {
	int fd;
	uint8_t state; /* enum aconn_state */
	uint32_t ep;   /* endpoint index */
	struct alist sendq; /* CALL_QUEUED calls for this connection */
	uint32_t nsent;	    /* CALL_SENT calls on it */
	uint32_t abandoned; /* timed-out calls on it whose replies may still come */
	/* The send in progress: frames of calls[sending[i]] in iov[i]; iov[]
	 * entries before iov_off are fully written. */
	uint32_t sending[AMAX_IOV];
	struct iovec iov[AMAX_IOV];
	uint32_t n_iov, iov_off;
	bool send_busy;	 /* a send is in the kernel (io_uring) or has a rest (sockets) */
	bool recv_armed; /* io_uring: a recv into rx is in the kernel */
	unsigned ops;	 /* io_uring operations in the kernel */
	struct msghdr msg;
	uint8_t *rx;
	size_t rx_len, rx_cap;
	int64_t retry_at;
	uint32_t backoff_ms;
};

struct lutf_client_async;

struct abackend {
	const char *name;
	/* Hand every queued request to the kernel. Returns 0 or -errno. */
	int (*flush)(struct lutf_client_async *a);
	/* Flush, wait up to wait_ns (0: not at all) for events, and feed them to
	 * async_on_send / async_on_recv / async_on_eof. Returns 0 or -errno. */
	int (*io)(struct lutf_client_async *a, int64_t wait_ns);
	/* A connection failed: stop its I/O (async_conn_closed when it is safe
	 * to release the socket and buffers). */
	void (*fail)(struct lutf_client_async *a, struct aconn *c);
	/* Optional: c was just dialled (c->fd is open and non-blocking). */
	void (*up)(struct lutf_client_async *a, struct aconn *c);
	void (*destroy)(struct lutf_client_async *a);
};

struct lutf_client_async {
	char key[LUTF_CLIENT_KEY_MAX]; /* LUTF_KEY at open: sent with every call */
	const struct abackend *be;
	void *be_priv;
	char **urls;
	uint32_t n_ep;
	struct aconn *conns;
	uint32_t n_conns, rr;
	struct acall *calls;
	uint32_t depth;
	uint32_t free_head, nfree;
	uint32_t done_head, done_tail, ndone;
	struct alist backlog; /* queued calls while no connection is up */
	uint32_t nactive;     /* QUEUED + SENT */
	uint64_t seq;
	int64_t next_deadline; /* no active call ends before this */
	int64_t next_retry;    /* no DOWN connection is due before this */
	uint32_t timeout_ms, grace_ms, max_frame, retry_min_ms, retry_max_ms;
	struct lutf_client_async_stats st;
	struct clnt_nats_async *nats; /* a nats:// endpoint: nats.c runs the handle */
};

int64_t async_now(void);

/* Move up to AMAX_IOV queued calls of c into its send (iov, sending): they
 * become CALL_SENT. Returns the number of frames, 0 when nothing was queued. */
uint32_t async_send_build(struct lutf_client_async *a, struct aconn *c);
/* res bytes of c's send were written (res >= 0), or it failed (-errno).
 * Returns true when part of the send is still to be written. */
bool async_on_send(struct lutf_client_async *a, struct aconn *c, long res);
/* n bytes arrived at c->rx + c->rx_len: parse replies. */
void async_on_recv(struct lutf_client_async *a, struct aconn *c, size_t n);
/* Make sure c->rx has ARX_SPARE free bytes. Returns 0 or -ENOMEM. */
int async_rx_room(struct lutf_client_async *a, struct aconn *c);
/* c failed with err: settle its calls (move unsent ones), start closing. */
void async_conn_fail(struct lutf_client_async *a, struct aconn *c, int err);
/* The backend holds nothing of c any more: close it, schedule a re-dial. */
void async_conn_closed(struct lutf_client_async *a, struct aconn *c);

extern const struct abackend async_sock_backend;
/* Set up io_uring for a. Returns 0, or -errno (the caller may fall back). */
int async_uring_init(struct lutf_client_async *a);

#endif /* LUTF_CLIENT_ASYNC_H */
