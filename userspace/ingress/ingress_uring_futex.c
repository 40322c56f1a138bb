/* SPDX-License-Identifier: MIT */
/*
 * Futex waits of the io_uring backend (IORING_OP_FUTEX_WAIT, Linux 6.7;
 * ur_create probes for it). Invariant: a wait gets exactly one CQE (woken,
 * -EAGAIN, -ECANCELED, ...) and is freed by it; a cancelled one never calls
 * its fn, and its cancel is submitted at once, so the kernel no longer
 * watches the word when lutf_ev_futex_cancel returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "uring_internal.h"

/* Returns 0 or -errno. */
int lutf_ur_futex_wait(struct lutf_ev_loop *l, uint32_t *uaddr, uint32_t val, bool shared,
		       lutf_ev_futex_fn fn, void *data, struct lutf_ev_futex **out)
{
	struct lutf_ev_futex *f;
	struct io_uring_sqe *sqe;

	if (!l->futex_ok)
		return -ENOTSUP;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	sqe = lutf_ur_get_sqe(l);
	if (!sqe) {
		free(f);
		return -EBUSY;
	}
	f->obj.base = &l->base;
	f->l = l;
	f->fn = fn;
	f->data = data;
	/* By hand (liburing 2.3 has no prep): len, futex_flags, buf_index and
	 * file_index must be 0; fd carries the futex2 flags. */
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = OP_FUTEX_WAIT;
	sqe->fd = FUTEX2_U32 | (shared ? 0 : FUTEX2_PRIV);
	sqe->addr = (uint64_t)(uintptr_t)uaddr;
	sqe->addr2 = val;
	sqe->addr3 = FUTEX_MATCH_ANY;
	io_uring_sqe_set_data64(sqe, UD(f, T_FUTEX));
	*out = f;
	return 0;
}

void lutf_ur_futex_cancel(struct lutf_ev_futex *f)
{
	struct io_uring_sqe *sqe = lutf_ur_get_sqe(f->l);

	f->dead = true;
	if (!sqe)
		return; /* cannot happen after get_sqe's submit; the ring's exit ends it */
	io_uring_prep_cancel64(sqe, UD(f, T_FUTEX), 0);
	io_uring_sqe_set_data64(sqe, T_IGNORE);
	io_uring_submit(&f->l->ring); /* now: the word's memory may go next */
}

void lutf_ur_on_futex(struct lutf_ev_futex *f, int res)
{
	if (!f->dead)
		f->fn(f->data, res);
	free(f);
}
