/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode: calls this lutfd cannot run (function not here, or
 * OVERLOADED) go to a node that can, over NATS (userspace/cluster/invoke.c),
 * and calls other nodes (or nats:// clients) send here run on this loop.
 * Invariant: the main thread owns the table of forwarded calls; answers and
 * calls come from libnats threads through one locked queue each and one
 * eventfd. Each forwarded call is answered exactly once: its answer, or
 * DEADLINE from lutfd's tick when none came in time (a late answer finds no
 * record); each call served here exactly once: refused at once (queue full,
 * key, lutfd's refusal), or by its record in dispatch.c (completion,
 * lutfd's deadline, SHUTTING_DOWN).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cluster.h"
#include "keys.h"
#include "lutfd.h"
#include "prom.h"

#define FWD_SLACK_MS 1000 /* past the call's deadline before lutfd answers it */
/* Calls from NATS waiting for the loop; more: OVERLOADED at once, so a flood
 * of messages costs no memory beyond this (and each tenant's max_queued once
 * they run). The loop takes them all at each wake. */
#define CALLS_MAX 4096

struct fwd {
	uint64_t conn_id, req_id, due_ms;
	uint32_t gen;
	uint8_t origin;
	bool live;
};

static struct fwd *tab; /* main thread */
static uint32_t ntab;
static uint64_t nforwarded, nanswered, nexpired;

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lutf_cluster_reply *q; /* answers from libnats, guarded by q_mu */
static size_t q_n, q_cap;
static int q_efd = -1;
/* Calls from libnats, guarded by q_mu: a fixed array the loop swaps with
 * its spare (calls_spare, main thread) at each wake. */
static struct lutf_cluster_call **calls, **calls_spare;
static size_t calls_n;
static bool calls_closed; /* lutfd stops: SHUTTING_DOWN at once */
/* Calls served here: ran (submitted), refused (answered at once by lutfd),
 * queue_full (OVERLOADED by the queue's bound; libnats threads). */
static uint64_t nserved_ran, nserved_refused;
static _Atomic uint64_t nserved_full;

/* Ring the loop when it has nothing queued yet (q_mu held by the caller;
 * written after the unlock). */
static bool q_empty(void)
{
	return q_n == 0 && calls_n == 0;
}

static void q_ring(void)
{
	uint64_t one = 1;

	(void)!write(q_efd, &one, sizeof(one));
}

static void answer(const struct fwd *w, struct lutf_cluster_reply *r)
{
	struct lutf_conn *c = lutf_srv_conn(g_srv, w->conn_id);
	struct lutf_result res = {0};
	struct lutf_buf b;
	size_t f;

	if (!c)
		return;
	lutf_conn_inflight(c, -1);
	res.status = r->status;
	res.detail = r->detail;
	res.output = r->output;
	res.output_len = r->output_len;
	LUTFD_COPY(res.content_type, r->content_type);
	LUTFD_COPY(res.error, r->error);
	if (w->origin == LUTFD_ORIGIN_HTTP) {
		lutfd_http_answer(w->conn_id, w->req_id, res.status,
				  res.error[0] ? res.error : NULL, &res);
		return;
	}
	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, LUTF_OP_REPLY, res.status, w->req_id);
	if (res.output_len)
		lutf_tlv_put(&b, LUTF_TAG_OUTPUT, res.output, res.output_len);
	if (res.content_type[0])
		lutf_tlv_put_str(&b, LUTF_TAG_CONTENT_TYPE, res.content_type);
	if (res.status != LUTF_STATUS_OK)
		lutf_tlv_put_str(&b, LUTF_TAG_ERROR,
				 res.error[0] ? res.error : lutf_status_str(res.status));
	if (res.detail)
		lutf_tlv_put_u32(&b, LUTF_TAG_DETAIL, res.detail);
	lutf_frame_end(&b, f);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
}

/* A libnats thread. */
void lutfd_forward_reply(struct lutf_cluster_reply *r)
{
	bool ring;

	pthread_mutex_lock(&q_mu);
	if (q_n == q_cap) {
		size_t cap = q_cap ? 2 * q_cap : 256;
		struct lutf_cluster_reply *p = realloc(q, cap * sizeof(*p));

		if (!p) { /* the call ends by lutfd's deadline instead */
			pthread_mutex_unlock(&q_mu);
			free(r->output);
			return;
		}
		q = p;
		q_cap = cap;
	}
	ring = q_empty();
	q[q_n++] = *r;
	pthread_mutex_unlock(&q_mu);
	if (ring)
		q_ring();
}

/* A libnats thread. */
void lutfd_forward_call(struct lutf_cluster_call *call)
{
	bool ring = false, full, closed;

	pthread_mutex_lock(&q_mu);
	closed = calls_closed || !calls;
	full = calls_n >= CALLS_MAX;
	if (!closed && !full) {
		ring = q_empty();
		calls[calls_n++] = call;
	}
	pthread_mutex_unlock(&q_mu);
	if (ring)
		q_ring();
	if (closed) {
		lutf_cluster_call_answer(call, LUTF_STATUS_SHUTTING_DOWN, 0,
					 "the serving node's lutfd is shutting down", NULL, 0,
					 NULL);
	} else if (full) {
		atomic_fetch_add_explicit(&nserved_full, 1, memory_order_relaxed);
		lutf_cluster_call_answer(call, LUTF_STATUS_OVERLOADED, 0,
					 "the serving node has too many calls waiting", NULL, 0,
					 NULL);
	}
}

void lutfd_forward_answer(uint64_t req_id, uint32_t status, uint32_t detail, const char *msg,
			  const struct lutf_result *res)
{
	struct lutf_cluster_call *call = (struct lutf_cluster_call *)(uintptr_t)req_id;

	if (!res) {
		lutf_cluster_call_answer(call, status, detail, msg ? msg : lutf_status_str(status),
					 NULL, 0, NULL);
		return;
	}
	/* As the binary protocol's reply (dispatch.c's complete): an error
	 * text for every status but OK. */
	lutf_cluster_call_answer(call, res->status, res->detail,
				 res->status == LUTF_STATUS_OK ? NULL
				 : res->error[0]	       ? res->error
							       : lutf_status_str(res->status),
				 res->output, res->output_len, res->content_type);
}

/* Run one call sent here (main thread): the key of a nats:// client's call
 * is checked as on TCP (a node's forward was checked at its first node);
 * never forwarded again (LUTFD_ORIGIN_NATS). */
static void serve(struct lutf_cluster_call *call)
{
	/* The function sees who sent it, as a call through the data socket
	 * did: lutf-forwarded: node or client. */
	const char *hdr[3] = {LUTF_CLUSTER_FORWARDED, call->by_node ? "node" : "client", NULL};
	struct lutf_request req = {0};
	uint32_t st, detail = 0;
	char msg[300];

	if (!call->by_node && g_cfg.require_keys &&
	    lutfd_keys_check(call->tenant, call->fn, call->key, call->key ? strlen(call->key) : 0,
			     msg, sizeof(msg)) != LUTFD_AUTH_OK) {
		nserved_refused++;
		lutf_cluster_call_answer(call, LUTF_STATUS_FORBIDDEN, 0, msg, NULL, 0, NULL);
		return;
	}
	req.input = call->input;
	req.input_len = call->input_len;
	req.content_type = call->content_type;
	req.timeout_ns = (uint64_t)call->timeout_ms * 1000000ull;
	req.headers = hdr;
	st = lutfd_invoke_start(NULL, LUTFD_ORIGIN_NATS, (uint64_t)(uintptr_t)call, call->tenant,
				call->fn, &req, &detail, msg, sizeof(msg));
	if (st == LUTF_STATUS_OK) {
		nserved_ran++;
		return;
	}
	nserved_refused++;
	lutf_cluster_call_answer(call, st, detail, msg, NULL, 0, NULL);
}

void lutfd_forward_close(void)
{
	struct lutf_cluster_call **batch;
	size_t n;

	pthread_mutex_lock(&q_mu);
	calls_closed = true;
	batch = calls;
	n = calls_n;
	calls_n = 0;
	pthread_mutex_unlock(&q_mu);
	for (size_t i = 0; i < n; i++)
		lutf_cluster_call_answer(batch[i], LUTF_STATUS_SHUTTING_DOWN, 0,
					 "lutfd is shutting down", NULL, 0, NULL);
	lutfd_fail_origin(LUTFD_ORIGIN_NATS);
}

static void q_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	struct lutf_cluster_reply *batch;
	struct lutf_cluster_call **in;
	size_t n, nin;
	uint64_t v;

	(void)l;
	(void)fd;
	(void)data;
	(void)mask;
	(void)!read(q_efd, &v, sizeof(v));
	pthread_mutex_lock(&q_mu);
	batch = q;
	n = q_n;
	q = NULL;
	q_n = q_cap = 0;
	in = calls;
	nin = calls_n;
	if (nin) {
		calls = calls_spare;
		calls_spare = in;
		calls_n = 0;
	}
	pthread_mutex_unlock(&q_mu);
	for (size_t i = 0; i < nin; i++)
		serve(in[i]);
	if (nin)
		lutfd_dispatch_unplug();
	for (size_t i = 0; i < n; i++) {
		struct lutf_cluster_reply *r = &batch[i];
		uint32_t idx = (uint32_t)r->cookie, gen = (uint32_t)(r->cookie >> 32);

		if (idx < ntab && tab[idx].live && tab[idx].gen == gen) {
			tab[idx].live = false;
			nanswered++;
			answer(&tab[idx], r);
		}
		free(r->output);
	}
	free(batch);
	lutf_srv_flush(g_srv);
}

int lutfd_forward_init(void)
{
	calls = calloc(CALLS_MAX, sizeof(*calls));
	calls_spare = calloc(CALLS_MAX, sizeof(*calls_spare));
	if (!calls || !calls_spare)
		return -ENOMEM;
	q_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q_efd < 0)
		return -errno;
	lutf_ev_set(g_loop, q_efd, LUTF_EV_READ, q_event, NULL);
	return 0;
}

static bool was_forwarded(const struct lutf_request *req)
{
	for (size_t i = 0; req->headers && req->headers[i]; i += 2)
		if (!strcasecmp(req->headers[i], LUTF_CLUSTER_FORWARDED))
			return true;
	return false;
}

bool lutfd_forward_start(struct lutf_conn *c, enum lutfd_origin origin, uint64_t req_id,
			 const char *tenant, const char *fn, const struct lutf_request *req)
{
	uint32_t idx, tmo_ms;
	struct fwd *w;

	if (origin == LUTFD_ORIGIN_NATS || !g_cfg.cluster[0] || q_efd < 0 || was_forwarded(req))
		return false; /* a call sent here over NATS is never forwarded again */
	for (idx = 0; idx < ntab && tab[idx].live; idx++)
		;
	if (idx == ntab) {
		uint32_t n = ntab ? 2 * ntab : 256;
		struct fwd *p;

		if (n > g_cfg.max_queued * 4u + 256)
			return false; /* bounded: the local answer stands */
		p = realloc(tab, n * sizeof(*p));
		if (!p)
			return false;
		memset(p + ntab, 0, (n - ntab) * sizeof(*p));
		tab = p;
		ntab = n;
	}
	w = &tab[idx];
	tmo_ms = req->timeout_ns ? (uint32_t)(req->timeout_ns / 1000000) : g_cfg.timeout_ms;
	if (lutf_cluster_forward(tenant, fn, req->input, req->input_len, req->content_type,
				 req->timeout_ns ? tmo_ms : 0, NULL,
				 ((uint64_t)(w->gen + 1) << 32) | idx))
		return false;
	w->gen++;
	w->live = true;
	w->conn_id = lutf_conn_id(c);
	w->req_id = req_id;
	w->origin = (uint8_t)origin;
	w->due_ms = lutfd_now_ms() + (tmo_ms ? tmo_ms : 30000) + FWD_SLACK_MS;
	lutf_conn_inflight(c, 1);
	nforwarded++;
	return true;
}

void lutfd_forward_tick(void)
{
	uint64_t now = lutfd_now_ms();
	struct lutf_cluster_reply r = {.status = LUTF_STATUS_DEADLINE};

	snprintf(r.error, sizeof(r.error), "deadline passed (no answer from the cluster)");
	for (uint32_t i = 0; i < ntab; i++)
		if (tab[i].live && now >= tab[i].due_ms) {
			tab[i].live = false;
			nexpired++;
			answer(&tab[i], &r);
		}
}

void lutfd_cluster_metrics(struct lutf_http_buf *b)
{
	static const char *const l_ans[] = {"outcome", "answered", NULL};
	static const char *const l_exp[] = {"outcome", "deadline", NULL};
	static const char *const l_ran[] = {"outcome", "ran", NULL};
	static const char *const l_ref[] = {"outcome", "refused", NULL};
	static const char *const l_full[] = {"outcome", "queue_full", NULL};
	struct lutf_cluster_async_stats st;
	const char *const l_done[] = {"result", "done", NULL},
			  *const l_retry[] = {"result", "retried", NULL},
			  *const l_dead[] = {"result", "dead_letter", NULL},
			  *const l_cb_ok[] = {"result", "ok", NULL},
			  *const l_cb_failed[] = {"result", "failed", NULL},
			  *const l_cb_retried[] = {"result", "retried", NULL},
			  *const l_cb_dead[] = {"result", "dead_letter", NULL};

	if (!g_cfg.cluster[0])
		return;
	lutf_prom_family(b, "lutf_cluster_forwarded", LUTF_PROM_COUNTER,
			 "Calls this node sent to another node, by outcome");
	lutf_prom_counter(b, "lutf_cluster_forwarded", l_ans, nanswered);
	lutf_prom_counter(b, "lutf_cluster_forwarded", l_exp, nexpired);
	lutf_prom_family(b, "lutf_cluster_forwarded_pending", LUTF_PROM_GAUGE,
			 "Calls sent to another node, not answered yet");
	lutf_prom_u64(b, "lutf_cluster_forwarded_pending", NULL, nforwarded - nanswered - nexpired);
	lutf_prom_family(b, "lutf_cluster_served", LUTF_PROM_COUNTER,
			 "Calls other nodes and nats:// clients sent to this node: ran (submitted "
			 "here), refused (answered at once: key, unknown, overloaded), queue_full "
			 "(OVERLOADED: lutfd's queue for them was full)");
	lutf_prom_counter(b, "lutf_cluster_served", l_ran, nserved_ran);
	lutf_prom_counter(b, "lutf_cluster_served", l_ref, nserved_refused);
	lutf_prom_counter(b, "lutf_cluster_served", l_full,
			  atomic_load_explicit(&nserved_full, memory_order_relaxed));
	lutf_cluster_async_stats(&st);
	lutf_prom_family(b, "lutf_cluster_async", LUTF_PROM_COUNTER,
			 "Async calls this node ran from the work queue, by result");
	lutf_prom_counter(b, "lutf_cluster_async", l_done, st.done);
	lutf_prom_counter(b, "lutf_cluster_async", l_retry, st.retried);
	lutf_prom_counter(b, "lutf_cluster_async", l_dead, st.dead);
	lutf_prom_family(b, "lutf_cluster_async_duplicates", LUTF_PROM_COUNTER,
			 "Async calls run again after their result was stored (at-least-once)");
	lutf_prom_counter(b, "lutf_cluster_async_duplicates", NULL, st.duplicates);
	lutf_prom_family(b, "lutf_cluster_async_callbacks", LUTF_PROM_COUNTER,
			 "Callback POSTs: ok (2xx), retried (tried again later), failed "
			 "(refused by a 4xx, or dropped), dead_letter (tries used up)");
	lutf_prom_counter(b, "lutf_cluster_async_callbacks", l_cb_ok, st.callbacks_ok);
	lutf_prom_counter(b, "lutf_cluster_async_callbacks", l_cb_failed, st.callbacks_failed);
	lutf_prom_counter(b, "lutf_cluster_async_callbacks", l_cb_retried, st.callbacks_retried);
	lutf_prom_counter(b, "lutf_cluster_async_callbacks", l_cb_dead, st.callbacks_dead);
}
