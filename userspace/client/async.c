/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous client: submit encodes a call into its slot, flush and
 * reap drive a backend (async_uring.c or async_sock.c), replies are matched
 * to slots by request id. Invariants: every submitted call reaches CALL_DONE
 * exactly once; a call is resent only if no byte of it was handed to the
 * kernel (CALL_QUEUED), so calls run at most once; a slot whose frame the
 * kernel may still read is never reused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "async.h"
#include "nats_int.h"

#define DEF_DEPTH 1024u
#define DEF_RETRY_MIN_MS 50u
#define DEF_RETRY_MAX_MS 2000u
#define FRAME_KEEP (64u << 10) /* a slot keeps at most this much frame buffer */

int64_t async_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- lists ---- */

static void list_init(struct alist *l)
{
	l->head = l->tail = ANONE;
	l->n = 0;
}

static void list_push(struct lutf_client_async *a, struct alist *l, uint32_t i)
{
	struct acall *k = &a->calls[i];

	k->next = ANONE;
	k->prev = l->tail;
	if (l->tail != ANONE)
		a->calls[l->tail].next = i;
	else
		l->head = i;
	l->tail = i;
	l->n++;
}

static void list_del(struct lutf_client_async *a, struct alist *l, uint32_t i)
{
	struct acall *k = &a->calls[i];

	if (k->prev != ANONE)
		a->calls[k->prev].next = k->next;
	else
		l->head = k->next;
	if (k->next != ANONE)
		a->calls[k->next].prev = k->prev;
	else
		l->tail = k->prev;
	k->prev = k->next = ANONE;
	l->n--;
}

static void slot_free(struct lutf_client_async *a, uint32_t i)
{
	struct acall *k = &a->calls[i];

	k->state = CALL_FREE;
	k->id = 0;
	k->reaped = false;
	if (k->frame.cap > FRAME_KEEP)
		lutf_buf_free(&k->frame);
	k->dnext = a->free_head;
	a->free_head = i;
	a->nfree++;
}

/* The call ends with err (0: result holds the reply). */
static void complete(struct lutf_client_async *a, uint32_t i, int err)
{
	struct acall *k = &a->calls[i];

	if (k->state == CALL_SENT && k->conn != ANONE)
		a->conns[k->conn].nsent--;
	k->state = CALL_DONE;
	k->error = err;
	k->conn = ANONE;
	k->dnext = ANONE;
	if (a->done_tail != ANONE)
		a->calls[a->done_tail].dnext = i;
	else
		a->done_head = i;
	a->done_tail = i;
	a->ndone++;
	a->nactive--;
	a->st.completed++;
}

/* ---- connections ---- */

/*
 * A live connection for a new or moved call, never skip: round robin, and of
 * the next two live ones the less loaded. Returns its index or ANONE.
 */
static uint32_t pick_conn(struct lutf_client_async *a, uint32_t skip)
{
	uint32_t found[2], n = 0;

	for (uint32_t k = 0; k < a->n_conns && n < 2; k++) {
		uint32_t i = (a->rr + k) % a->n_conns;

		if (i != skip && a->conns[i].state == CONN_UP)
			found[n++] = i;
	}
	if (!n)
		return ANONE;
	a->rr = (found[0] + 1) % a->n_conns;
	if (n == 2) {
		struct aconn *x = &a->conns[found[0]], *y = &a->conns[found[1]];

		if (y->sendq.n + y->nsent < x->sendq.n + x->nsent)
			return found[1];
	}
	return found[0];
}

/* Queue call i on a live connection (other than skip), or on the backlog. */
static void place(struct lutf_client_async *a, uint32_t i, uint32_t skip)
{
	struct acall *k = &a->calls[i];
	uint32_t c = pick_conn(a, skip);

	k->state = CALL_QUEUED;
	k->conn = c;
	if (c == ANONE) {
		list_push(a, &a->backlog, i);
		return;
	}
	k->endpoint = a->conns[c].ep;
	list_push(a, &a->conns[c].sendq, i);
}

/* Put an unsent call of a failed connection elsewhere. */
static void move_call(struct lutf_client_async *a, uint32_t i, uint32_t from)
{
	a->st.failed_over++;
	place(a, i, from);
}

/* Dial c. Returns 0 or -errno. */
static int conn_dial(struct lutf_client_async *a, struct aconn *c)
{
	int fd = clnt_dial(a->urls[c->ep]);

	if (fd < 0)
		return fd;
	c->fd = fd;
	c->state = CONN_UP;
	c->rx_len = 0;
	c->abandoned = 0;
	c->nsent = 0;
	c->n_iov = c->iov_off = 0;
	c->send_busy = c->recv_armed = false;
	c->backoff_ms = 0;
	a->st.live_conns++;
	if (a->be->up)
		a->be->up(a, c);
	return 0;
}

/* c is failing: its written calls that no send still holds are lost with it. */
static void lose_written(struct lutf_client_async *a, struct aconn *c)
{
	uint32_t ci = (uint32_t)(c - a->conns);

	for (uint32_t i = 0; i < a->depth && c->nsent; i++) {
		struct acall *k = &a->calls[i];

		if (k->state == CALL_SENT && k->conn == ci && !k->in_send)
			complete(a, i, -ECONNRESET);
	}
}

void async_conn_fail(struct lutf_client_async *a, struct aconn *c, int err)
{
	uint32_t ci = (uint32_t)(c - a->conns);

	(void)err; /* every written call ends -ECONNRESET, whatever the cause */
	if (c->state != CONN_UP)
		return;
	c->state = CONN_CLOSING;
	a->st.live_conns--;
	a->st.conn_lost++;
	/* Calls of a send still in the kernel are settled when it completes
	 * (async_on_send): those not begun move. */
	lose_written(a, c);
	/* Never written: another connection sends them. */
	while (c->sendq.head != ANONE) {
		uint32_t i = c->sendq.head;

		list_del(a, &c->sendq, i);
		move_call(a, i, ci);
	}
	a->be->fail(a, c);
}

void async_conn_closed(struct lutf_client_async *a, struct aconn *c)
{
	int64_t now = async_now();

	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CONN_DOWN;
	c->rx_len = 0;
	if (c->rx_cap > ARX_MIN) {
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : a->retry_min_ms;
	if (c->backoff_ms > a->retry_max_ms)
		c->backoff_ms = a->retry_max_ms;
	c->retry_at = now + (int64_t)c->backoff_ms * 1000000;
	if (c->retry_at < a->next_retry)
		a->next_retry = c->retry_at;
}

/* Re-dial connections that are due; hand them the backlog. */
static void redial(struct lutf_client_async *a, int64_t now)
{
	uint32_t b;

	if (now < a->next_retry)
		return;
	a->next_retry = INT64_MAX;
	for (uint32_t i = 0; i < a->n_conns; i++) {
		struct aconn *c = &a->conns[i];

		if (c->state != CONN_DOWN)
			continue;
		if (c->retry_at <= now) {
			if (conn_dial(a, c) == 0) {
				a->st.reconnects++;
				continue;
			}
			/* Failed: back off further (as if it had closed again). */
			async_conn_closed(a, c);
			continue;
		}
		if (c->retry_at < a->next_retry)
			a->next_retry = c->retry_at;
	}
	while (a->st.live_conns && (b = a->backlog.head) != ANONE) {
		list_del(a, &a->backlog, b);
		place(a, b, ANONE);
	}
}

/* Fail calls whose deadline passed; recompute the next deadline. */
static void expire(struct lutf_client_async *a, int64_t now)
{
	int64_t next = INT64_MAX;

	if (now < a->next_deadline)
		return;
	for (uint32_t i = 0; i < a->depth; i++) {
		struct acall *k = &a->calls[i];

		if (k->state != CALL_QUEUED && k->state != CALL_SENT)
			continue;
		if (k->deadline > now) {
			if (k->deadline < next)
				next = k->deadline;
			continue;
		}
		if (k->state == CALL_QUEUED)
			list_del(a, k->conn == ANONE ? &a->backlog : &a->conns[k->conn].sendq, i);
		else if (k->conn != ANONE)
			a->conns[k->conn].abandoned++; /* its reply may still come */
		complete(a, i, -ETIMEDOUT);
	}
	a->next_deadline = next;
}

/* ---- sending ---- */

uint32_t async_send_build(struct lutf_client_async *a, struct aconn *c)
{
	uint32_t n = 0;

	while (n < AMAX_IOV && c->sendq.head != ANONE) {
		uint32_t i = c->sendq.head;
		struct acall *k = &a->calls[i];

		list_del(a, &c->sendq, i);
		k->state = CALL_SENT;
		k->in_send = true;
		c->nsent++;
		c->sending[n] = i;
		c->iov[n].iov_base = k->frame.data;
		c->iov[n].iov_len = k->frame.len;
		n++;
	}
	c->n_iov = n;
	c->iov_off = 0;
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = n;
	c->send_busy = n > 0;
	return n;
}

/* The kernel is done with call i's frame. */
static void send_release(struct lutf_client_async *a, uint32_t i)
{
	struct acall *k = &a->calls[i];

	k->in_send = false;
	if (k->reaped)
		slot_free(a, i);
}

bool async_on_send(struct lutf_client_async *a, struct aconn *c, long res)
{
	uint32_t ci = (uint32_t)(c - a->conns);
	size_t left = res > 0 ? (size_t)res : 0;

	while (c->iov_off < c->n_iov) {
		struct iovec *v = &c->iov[c->iov_off];

		if (left < v->iov_len) {
			v->iov_base = (uint8_t *)v->iov_base + left;
			v->iov_len -= left;
			break;
		}
		left -= v->iov_len;
		send_release(a, c->sending[c->iov_off]);
		c->iov_off++;
	}
	if (c->iov_off == c->n_iov) {
		c->send_busy = false;
		if (c->state != CONN_UP)
			lose_written(a, c);
		return false;
	}
	if (res >= 0 && c->state == CONN_UP) {
		c->msg.msg_iov = c->iov + c->iov_off;
		c->msg.msg_iovlen = c->n_iov - c->iov_off;
		return true;
	}
	/*
	 * The send failed or the connection is gone: the frame written in
	 * part is lost with the connection; frames not begun were never
	 * written, so they move. Nothing of this send is in the kernel now.
	 */
	for (uint32_t j = c->iov_off; j < c->n_iov; j++) {
		uint32_t i = c->sending[j];
		struct acall *k = &a->calls[i];
		bool begun = c->iov[j].iov_len != k->frame.len;

		k->in_send = false;
		if (k->reaped) {
			slot_free(a, i);
			continue;
		}
		if (k->state != CALL_SENT)
			continue; /* timed out meanwhile */
		if (begun) {
			complete(a, i, -ECONNRESET);
		} else {
			c->nsent--;
			k->conn = ANONE;
			move_call(a, i, ci);
		}
	}
	c->iov_off = c->n_iov;
	c->send_busy = false;
	if (c->state == CONN_UP)
		async_conn_fail(a, c, (int)res); /* res < 0 here */
	else
		lose_written(a, c);
	return false;
}

/* ---- receiving ---- */

int async_rx_room(struct lutf_client_async *a, struct aconn *c)
{
	size_t want = c->rx_len + ARX_SPARE;
	uint8_t *p;

	(void)a;
	if (want <= c->rx_cap)
		return 0;
	if (want < ARX_MIN)
		want = ARX_MIN;
	if (want < c->rx_cap * 2)
		want = c->rx_cap * 2;
	p = realloc(c->rx, want);
	if (!p)
		return -ENOMEM;
	c->rx = p;
	c->rx_cap = want;
	return 0;
}

/* A refusal (request id 0, not OK): the answer to every call written on c. */
static void refused(struct lutf_client_async *a, struct aconn *c, const struct lutf_wire_hdr *h,
		    const uint8_t *payload)
{
	uint32_t ci = (uint32_t)(c - a->conns);

	for (uint32_t i = 0; i < a->depth && c->nsent; i++) {
		struct acall *k = &a->calls[i];

		if (k->state != CALL_SENT || k->conn != ci)
			continue;
		if (clnt_decode_result(h, payload, &k->result)) {
			lutf_client_result_release(&k->result);
			k->result.status = h->status;
		}
		complete(a, i, 0);
	}
}

/* One whole reply frame on c. Returns 0, or -EPROTO (c must fail). */
static int on_reply(struct lutf_client_async *a, struct aconn *c, const struct lutf_wire_hdr *h,
		    const uint8_t *payload)
{
	uint32_t ci = (uint32_t)(c - a->conns);
	uint32_t i = (uint32_t)(h->request_id & (AMAX_DEPTH - 1));
	struct acall *k = i < a->depth ? &a->calls[i] : NULL;
	uint16_t echo = h->opcode & (uint16_t)~LUTF_OP_REPLY;
	int err;

	if (!(h->opcode & LUTF_OP_REPLY) || (echo && echo != LUTF_OP_INVOKE))
		return -EPROTO;
	if (h->request_id == 0) {
		if (h->status == LUTF_STATUS_OK)
			return -EPROTO;
		refused(a, c, h, payload);
		return -ECONNRESET;
	}
	if (!k || k->id != h->request_id || k->state != CALL_SENT || k->conn != ci) {
		/* Not outstanding: the answer to a call that timed out, or junk. */
		if (!c->abandoned)
			return -EPROTO;
		c->abandoned--;
		return 0;
	}
	err = clnt_decode_result(h, payload, &k->result);
	if (err == -EPROTO)
		return -EPROTO;
	if (err)
		lutf_client_result_release(&k->result);
	complete(a, i, err);
	return 0;
}

void async_on_recv(struct lutf_client_async *a, struct aconn *c, size_t n)
{
	size_t off = 0;
	int err = 0;

	c->rx_len += n;
	while (c->state == CONN_UP && c->rx_len - off >= LUTF_WIRE_HDR_SIZE) {
		struct lutf_wire_hdr h;
		uint32_t st = lutf_frame_parse_hdr(c->rx + off, a->max_frame, &h);
		size_t whole;

		if (st != LUTF_STATUS_OK) {
			err = st == LUTF_STATUS_TOO_LARGE ? -EMSGSIZE : -EPROTO;
			break;
		}
		whole = LUTF_WIRE_HDR_SIZE + (size_t)h.length;
		if (c->rx_len - off < whole) {
			/* Room for the whole frame, checked against the limit above. */
			if (whole > c->rx_cap) {
				uint8_t *p = realloc(c->rx, whole + ARX_SPARE);

				if (!p) {
					err = -ENOMEM;
					break;
				}
				c->rx = p;
				c->rx_cap = whole + ARX_SPARE;
			}
			break;
		}
		err = on_reply(a, c, &h, c->rx + off + LUTF_WIRE_HDR_SIZE);
		if (err)
			break;
		off += whole;
	}
	if (err) {
		async_conn_fail(a, c, err);
		return;
	}
	if (off) {
		memmove(c->rx, c->rx + off, c->rx_len - off);
		c->rx_len -= off;
	}
	if (c->rx_len == 0 && c->rx_cap > (1u << 20)) {
		/* After a large reply: do not keep megabytes per idle connection. */
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
}

/* ---- the API ---- */

static int opts_check(const struct lutf_client_opts *o)
{
	uint32_t per;

	if (!o || !o->endpoints || o->n_endpoints == 0 || o->n_endpoints > AMAX_ENDPOINTS)
		return -EINVAL;
	per = o->conns_per_endpoint ? o->conns_per_endpoint : 1;
	if (per > AMAX_CONNS || o->n_endpoints * per > AMAX_CONNS)
		return -EINVAL;
	if (o->queue_depth > AMAX_DEPTH || (o->max_frame && o->max_frame < 4096))
		return -EINVAL;
	if (o->retry_min_ms && o->retry_max_ms && o->retry_min_ms > o->retry_max_ms)
		return -EINVAL;
	for (size_t i = 0; i < o->n_endpoints; i++)
		if (!o->endpoints[i] || !o->endpoints[i][0])
			return -EINVAL;
	/* A nats:// endpoint stands alone: its URL lists the servers, and NATS
	 * spreads the calls over the nodes. */
	for (size_t i = 0; i < o->n_endpoints; i++)
		if (clnt_is_nats(o->endpoints[i]) &&
		    (o->n_endpoints != 1 || per != 1 || clnt_nats_url_check(o->endpoints[i])))
			return -EINVAL;
	return 0;
}

/* A refusal of io_uring (by policy or by the kernel), after which the
 * plain-socket path runs. */
static bool uring_refused(int err)
{
	return err == -EPERM || err == -ENOSYS || err == -EACCES || err == -EOPNOTSUPP;
}

static bool uring_wanted(const struct lutf_client_opts *o)
{
	const char *e = getenv("LUTF_CLIENT_URING");

	if (o->flags & LUTF_CLIENT_NO_URING)
		return false;
	return !(e && (!strcmp(e, "off") || !strcmp(e, "0") || !strcmp(e, "no")));
}

int lutf_client_open(const struct lutf_client_opts *o, struct lutf_client_async **out)
{
	struct lutf_client_async *a;
	uint32_t per;
	int err, first_err = 0;

	if (!out)
		return -EINVAL;
	*out = NULL;
	err = opts_check(o);
	if (err)
		return err;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	per = o->conns_per_endpoint ? o->conns_per_endpoint : 1;
	a->n_ep = (uint32_t)o->n_endpoints;
	a->n_conns = a->n_ep * per;
	a->depth = o->queue_depth ? o->queue_depth : DEF_DEPTH;
	a->timeout_ms = o->timeout_ms ? o->timeout_ms : LUTF_CLIENT_DEFAULT_TIMEOUT_MS;
	a->grace_ms = o->grace_ms ? o->grace_ms : LUTF_CLIENT_DEFAULT_GRACE_MS;
	a->max_frame = o->max_frame ? o->max_frame : LUTF_WIRE_MAX_FRAME_DEFAULT;
	clnt_env_key(a->key, sizeof(a->key));
	a->retry_min_ms = o->retry_min_ms ? o->retry_min_ms : DEF_RETRY_MIN_MS;
	a->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : DEF_RETRY_MAX_MS;
	if (a->retry_max_ms < a->retry_min_ms)
		a->retry_max_ms = a->retry_min_ms;
	a->next_deadline = a->next_retry = INT64_MAX;
	a->done_head = a->done_tail = a->free_head = ANONE;
	list_init(&a->backlog);
	if (clnt_is_nats(o->endpoints[0])) {
		a->be = &async_sock_backend; /* never driven: nats.c runs the handle */
		err = clnt_nats_async_open(a, o->endpoints[0]);
		if (err)
			goto err;
		*out = a;
		return 0;
	}
	a->urls = calloc(a->n_ep, sizeof(*a->urls));
	a->conns = calloc(a->n_conns, sizeof(*a->conns));
	a->calls = calloc(a->depth, sizeof(*a->calls));
	if (!a->urls || !a->conns || !a->calls) {
		err = -ENOMEM;
		goto err;
	}
	for (uint32_t i = 0; i < a->n_ep; i++) {
		a->urls[i] = strdup(o->endpoints[i]);
		if (!a->urls[i]) {
			err = -ENOMEM;
			goto err;
		}
	}
	for (uint32_t i = a->depth; i-- > 0;) {
		lutf_buf_init(&a->calls[i].frame);
		a->calls[i].conn = ANONE;
		slot_free(a, i);
	}
	for (uint32_t i = 0; i < a->n_conns; i++) {
		struct aconn *c = &a->conns[i];

		c->fd = -1;
		c->ep = i / per;
		list_init(&c->sendq);
	}
	a->be = &async_sock_backend;
	if (uring_wanted(o)) {
		err = async_uring_init(a);
		if (err && !uring_refused(err))
			goto err;
	}
	/* Connections are spread endpoint by endpoint: conn i serves endpoint i / per. */
	for (uint32_t i = 0; i < a->n_conns; i++) {
		struct aconn *c = &a->conns[i];

		err = conn_dial(a, c);
		if (err == -EINVAL || err == -ENAMETOOLONG)
			goto err; /* a bad URL: not worth retrying */
		if (err) {
			if (!first_err)
				first_err = err;
			async_conn_closed(a, c);
		}
	}
	if (!a->st.live_conns) {
		err = first_err;
		goto err;
	}
	*out = a;
	return 0;
err:
	lutf_client_async_close(a);
	return err;
}

void lutf_client_async_close(struct lutf_client_async *a)
{
	if (!a)
		return;
	if (a->nats) {
		clnt_nats_async_close(a);
		free(a);
		return;
	}
	if (a->be && a->be->destroy)
		a->be->destroy(a); /* no operation is in the kernel after this */
	for (uint32_t i = 0; a->conns && i < a->n_conns; i++) {
		if (a->conns[i].fd >= 0)
			close(a->conns[i].fd);
		free(a->conns[i].rx);
	}
	for (uint32_t i = 0; a->calls && i < a->depth; i++) {
		lutf_buf_free(&a->calls[i].frame);
		lutf_client_result_release(&a->calls[i].result);
	}
	for (uint32_t i = 0; a->urls && i < a->n_ep; i++)
		free(a->urls[i]);
	free(a->urls);
	free(a->conns);
	free(a->calls);
	free(a);
}

int lutf_client_submit(struct lutf_client_async *a, const char *tenant, const char *function,
		       const struct lutf_client_request *req, uint64_t user_data)
{
	static const struct lutf_client_request none;
	struct acall *k;
	uint32_t i;
	size_t f;
	int err;

	if (!a || !lutf_name_valid(tenant) || !lutf_name_valid(function))
		return -EINVAL;
	if (!req)
		req = &none;
	err = clnt_invoke_check(req);
	if (err)
		return err;
	if (a->nats)
		return clnt_nats_submit(a, tenant, function, req, user_data);
	if (!a->nfree)
		return -EAGAIN;
	i = a->free_head;
	k = &a->calls[i];
	a->seq++;
	k->frame.len = 0;
	k->frame.failed = false;
	f = lutf_frame_begin(&k->frame, LUTF_OP_INVOKE, 0, a->seq << AID_SHIFT | i);
	clnt_invoke_put(&k->frame, tenant, function, req, a->key);
	if (k->frame.failed)
		return -ENOMEM;
	if (k->frame.len - f - LUTF_WIRE_HDR_SIZE > a->max_frame) {
		if (k->frame.cap > FRAME_KEEP)
			lutf_buf_free(&k->frame);
		return -EMSGSIZE;
	}
	lutf_frame_end(&k->frame, f);
	a->free_head = k->dnext;
	a->nfree--;
	k->id = a->seq << AID_SHIFT | i;
	k->user_data = user_data;
	k->error = 0;
	k->deadline =
	    async_now() + (int64_t)clnt_invoke_wait(req, a->timeout_ms, a->grace_ms) * 1000000;
	if (k->deadline < a->next_deadline)
		a->next_deadline = k->deadline;
	a->nactive++;
	a->st.submitted++;
	place(a, i, ANONE);
	return 0;
}

int lutf_client_flush(struct lutf_client_async *a)
{
	uint64_t before;
	int err;

	if (!a)
		return -EINVAL;
	if (a->nats)
		return clnt_nats_flush(a);
	redial(a, async_now());
	before = 0;
	for (uint32_t i = 0; i < a->n_conns; i++)
		before += a->conns[i].sendq.n;
	err = a->be->flush(a);
	if (err)
		return err;
	for (uint32_t i = 0; i < a->n_conns; i++)
		before -= a->conns[i].sendq.n;
	return (int)before;
}

static int64_t min64(int64_t x, int64_t y)
{
	return x < y ? x : y;
}

int lutf_client_reap(struct lutf_client_async *a, struct lutf_client_completion *out, size_t max,
		     int wait_ms)
{
	int64_t until, now = async_now();
	size_t n = 0;
	int err;

	if (!a || (!out && max))
		return -EINVAL;
	if (a->nats)
		return clnt_nats_reap(a, out, max, wait_ms);
	until = wait_ms < 0 ? INT64_MAX : now + (int64_t)wait_ms * 1000000;
	for (;;) {
		int64_t wait = 0;

		redial(a, now);
		expire(a, now);
		if (!a->ndone && a->nactive) {
			wait = min64(min64(until, a->next_deadline), a->next_retry) - now;
			if (wait < 0)
				wait = 0;
		}
		if (!a->nactive && !a->ndone)
			break;
		err = a->be->io(a, wait);
		if (err)
			return err;
		now = async_now();
		if (a->ndone || now >= until)
			break;
	}
	expire(a, now);
	while (n < max && a->done_head != ANONE) {
		uint32_t i = a->done_head;
		struct acall *k = &a->calls[i];
		struct lutf_client_completion *c = &out[n++];

		a->done_head = k->dnext;
		if (a->done_head == ANONE)
			a->done_tail = ANONE;
		a->ndone--;
		c->user_data = k->user_data;
		c->error = k->error;
		c->endpoint = k->endpoint;
		c->result = k->result;
		memset(&k->result, 0, sizeof(k->result));
		if (k->in_send)
			k->reaped = true; /* freed when the kernel gives the frame back */
		else
			slot_free(a, i);
	}
	return (int)n;
}

size_t lutf_client_outstanding(const struct lutf_client_async *a)
{
	if (a && a->nats)
		return clnt_nats_outstanding(a);
	return a ? a->depth - a->nfree : 0;
}

const char *lutf_client_backend(const struct lutf_client_async *a)
{
	if (a && a->nats)
		return "nats";
	return a ? a->be->name : NULL;
}

int lutf_client_async_stats(const struct lutf_client_async *a, struct lutf_client_async_stats *st)
{
	if (!a || !st)
		return -EINVAL;
	*st = a->st;
	return 0;
}
