/* SPDX-License-Identifier: MIT */
/*
 * Private to the io_uring backend (ingress_uring.c, ingress_uring_futex.c):
 * its objects and the user_data tags naming them in SQEs.
 */
#ifndef LUTF_URING_INTERNAL_H
#define LUTF_URING_INTERNAL_H

#include <liburing.h>

#include "ev_backend.h"

enum { T_IGNORE = 0, T_POLL = 1, T_ACCEPT = 2, T_RECV = 3, T_SEND = 4, T_CANCEL = 5, T_FUTEX = 6 };
/* Kernel 6.7's futex opcode and futex2 flags: not in Debian 12's headers. */
#define OP_FUTEX_WAIT 51 /* IORING_OP_FUTEX_WAIT */
#define FUTEX2_U32 0x02
#define FUTEX2_PRIV 128
#define FUTEX_MATCH_ANY 0xffffffffull
#define TAG_MASK 7ull
#define UD(p, t) ((uint64_t)(uintptr_t)(p) | (uint64_t)(t))
#define BGID 0
#define BATCH 256
#define ACCEPT_RETRY_MS 50

struct watch {
	int fd;
	unsigned mask;
	lutf_ev_fn fn;
	void *data;
	bool dead; /* unwatched: freed by its last CQE */
};

struct lutf_ev_listener {
	struct ev_obj obj;
	struct lutf_ev_loop *l;
	int fd;
	lutf_ev_accept_fn fn;
	void *data;
	bool armed, dead;
	uint64_t retry_at; /* armed == false: re-arm at this time */
	struct lutf_ev_listener *next_retry;
};

struct lutf_ev_futex {
	struct ev_obj obj;
	struct lutf_ev_loop *l;
	lutf_ev_futex_fn fn;
	void *data;
	bool dead; /* cancelled: its CQE only frees it */
};

struct lutf_ev_sock {
	struct ev_obj obj;
	struct lutf_ev_loop *l;
	int fd;
	const struct lutf_ev_sock_ops *ops;
	void *owner;
	unsigned refs;		   /* SQEs naming this socket, not yet finished */
	bool want_recv;		   /* the owner wants input */
	bool recv_armed;	   /* a multishot recv is live */
	bool recv_cancel;	   /* ... and a cancel for it was submitted */
	bool ended;		   /* no more input (EOF or error) */
	bool closing;		   /* lutf_ev_sock_close was called */
	bool pending;		   /* on the retry list (an SQE could not be had) */
	bool released;		   /* on the release list */
	size_t sn;		   /* size of the send in flight */
	struct lutf_ev_sock *next; /* retry or release list */
};

struct lutf_ev_loop {
	struct ev_base base;
	struct io_uring ring;
	bool ring_ok;
	bool futex_ok; /* the kernel has IORING_OP_FUTEX_WAIT (probed) */
	struct io_uring_buf_ring *br;
	size_t br_len;
	uint8_t *bufs;
	size_t bufs_len;
	unsigned nbufs, bufsz;
	int recycled;	      /* buffers added since the last advance */
	struct watch **watch; /* indexed by fd */
	size_t nwatch;
	struct lutf_ev_sock *retry, *release;
	struct lutf_ev_listener *lretry;
	struct io_uring_cqe *cqes[BATCH];
};

struct io_uring_sqe *lutf_ur_get_sqe(struct lutf_ev_loop *l);
int lutf_ur_futex_wait(struct lutf_ev_loop *l, uint32_t *uaddr, uint32_t val, bool shared,
		       lutf_ev_futex_fn fn, void *data, struct lutf_ev_futex **out);
void lutf_ur_futex_cancel(struct lutf_ev_futex *f);
/* The CQE of a futex wait (T_FUTEX). */
void lutf_ur_on_futex(struct lutf_ev_futex *f, int res);

#endif
