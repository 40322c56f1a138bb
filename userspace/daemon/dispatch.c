/* SPDX-License-Identifier: MIT */
/*
 * Requests on the main thread: route frames, submit invocations, turn
 * completions (handed over by the reapers, or reaped here: tenant.c) into
 * replies. Invariant: lutfd's own table (recs) says which requests are in
 * flight, for which tenant, until when; each gets exactly one reply: its
 * completion (only from the tenant it was submitted to), or a typed answer
 * from lutfd itself (its own deadline passed, the worker's region was
 * scribbled, SHUTTING_DOWN at exit), never both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lutfd.h"

#define MAX_HEADERS 32

struct rec {
	uint64_t conn_id;
	uint64_t req_id;
	struct lutfd_tenant *t;
	uint32_t slot;
	uint32_t gen;
	uint32_t next_free; /* index + 1 of the next free record; 0 = none */
	bool live;
	bool answered;	 /* answered SHUTTING_DOWN; its completion is only freed */
	uint8_t origin;	 /* enum lutfd_origin: the protocol that answers */
	uint64_t t0_ns;	 /* submitted at (CLOCK_MONOTONIC): the latency histogram */
	uint64_t due_ns; /* lutfd's own deadline (0: none), in lutfd's memory only */
};

/* lutfd answers a call itself this long after its deadline if its worker has
 * not (the engine's Supervisor answers at the deadline itself). */
#define DUE_SLACK_NS 1000000000ull
/* An answered record waits this long for its completion, then is freed (a
 * scribbled region may never post it); a late one is dropped by generation. */
#define ANSWERED_KEEP_NS 60000000000ull

static struct rec *recs;
static uint32_t nrecs, free_head;
static uint64_t ninflight;
static uint64_t next_due = UINT64_MAX; /* no record is due before this */
static uint64_t n_expired;	       /* calls lutfd answered by its own deadline */

struct cq_ent {
	struct lutfd_tenant *t;
	struct lutf_completion c;
};

/* The completion queue: reapers append under cq_lock; the main thread swaps
 * the array out and rings-free processes it. */
static pthread_mutex_t cq_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cq_ent *cq, *cq_spare;
static size_t cq_n, cq_cap, cq_spare_cap;
static int cq_efd = -1;

static struct rec *rec_new(uint32_t *idx)
{
	struct rec *r;

	if (!free_head) {
		uint32_t n = nrecs ? nrecs * 2 : 1024;
		struct rec *p = realloc(recs, n * sizeof(*p));

		if (!p)
			return NULL;
		memset(p + nrecs, 0, (n - nrecs) * sizeof(*p));
		for (uint32_t i = nrecs; i < n; i++)
			p[i].next_free = i + 1 < n ? i + 2 : 0;
		free_head = nrecs + 1;
		recs = p;
		nrecs = n;
	}
	*idx = free_head - 1;
	r = &recs[*idx];
	free_head = r->next_free;
	r->gen++;
	r->live = true;
	r->answered = false;
	return r;
}

static void rec_free(uint32_t idx)
{
	recs[idx].live = false;
	recs[idx].next_free = free_head;
	free_head = idx + 1;
}

/* The reply under construction (main thread): one buffer reused by every
 * reply, so a call costs no allocation here; a big output's memory is given
 * back after its reply is queued (lutf_conn_send copies it). */
#define RBUF_KEEP (64u * 1024u)
static struct lutf_buf rbuf;

static struct lutf_buf *rbuf_start(void)
{
	rbuf.len = 0;
	rbuf.failed = false;
	return &rbuf;
}

static void rbuf_done(void)
{
	if (rbuf.cap > RBUF_KEEP)
		lutf_buf_free(&rbuf);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void reply_error(struct lutf_conn *c, uint64_t req_id, uint32_t status, uint32_t detail,
			const char *msg);

/* Answer r's request without a completion (its connection, if still there). */
static void answer_status(const struct rec *r, uint32_t status, uint32_t detail, const char *msg)
{
	struct lutf_conn *c;

#ifdef LUTF_HAVE_CLUSTER
	if (r->origin == LUTFD_ORIGIN_NATS) {
		lutfd_forward_answer(r->req_id, status, detail, msg, NULL);
		return;
	}
#endif
	c = lutf_srv_conn(g_srv, r->conn_id);
	if (!c)
		return;
	lutf_conn_inflight(c, -1);
	if (r->origin == LUTFD_ORIGIN_HTTP)
		lutfd_http_answer(r->conn_id, r->req_id, status, msg, NULL);
	else
		reply_error(c, r->req_id, status, detail, msg);
}

/* A call whose deadline passed while it was held (its function paused):
 * say so, with the function and how long it was held, not "deadline". */
static void held_deadline_msg(const struct rec *r, struct lutf_result *res)
{
	const char *fn = "its function";

	for (size_t i = 0; i < r->t->nfns; i++)
		if ((r->t->fns[i]->wbound & (1u << r->t->widx)) &&
		    r->t->fns[i]->wslot[r->t->widx] == r->slot) {
			fn = r->t->fns[i]->name;
			break;
		}
	snprintf(res->error, sizeof(res->error),
		 "deadline passed while %s/%s was paused: the call was held %llu ms and never ran",
		 r->t->name, fn, (unsigned long long)((now_ns() - r->t0_ns) / 1000000));
}

/* now: read once per batch of completions (the latency histogram). */
static void complete(struct lutfd_tenant *t, uint64_t user_data, struct lutf_result *res,
		     uint64_t now)
{
	uint32_t idx = (uint32_t)user_data, gen = (uint32_t)(user_data >> 32);
	struct lutf_conn *c;
	struct lutf_buf *b;
	struct rec *r;
	size_t f;

	/* user_data comes from the engine's private table, never the region;
	 * still, a completion is delivered only to a live record of the tenant
	 * that reaped it: one tenant's output never reaches another's client. */
	if (idx >= nrecs || !recs[idx].live || recs[idx].gen != gen || recs[idx].t != t) {
		if (idx < nrecs && recs[idx].live && recs[idx].t != t)
			lutfd_log("tenant %s: completion for another tenant's call dropped",
				  t->name);
		return; /* a record lutfd answered and freed already (late) */
	}
	r = &recs[idx];
	/* Before the answered check: a dead worker's record counts every one
	 * of its CRASHED results, answered or not. */
	lutfd_fault_rewrite(r->t, res);
	if (r->answered) {
		rec_free(idx);
		return;
	}
	if (res->status == LUTF_STATUS_DEADLINE && res->detail == LUTF_DEADLINE_HELD)
		held_deadline_msg(r, res);
	if (res->status < LUTF_STATUS__COUNT)
		r->t->slot_stats[r->slot][res->status]++;
	r->t->inflight--;
	r->t->slot_inflight[r->slot]--;
	r->t->calls++;
	ninflight--;
	lutfd_metrics_observe(r->t, r->slot, now > r->t0_ns ? now - r->t0_ns : 0);
#ifdef LUTF_HAVE_CLUSTER
	if (r->origin == LUTFD_ORIGIN_NATS) {
		uint64_t call = r->req_id;

		rec_free(idx);
		lutfd_forward_answer(call, res->status, res->detail, NULL, res);
		return;
	}
#endif
	c = lutf_srv_conn(g_srv, r->conn_id);
	if (c && r->origin == LUTFD_ORIGIN_HTTP) {
		uint64_t conn_id = r->conn_id, seq = r->req_id;

		lutf_conn_inflight(c, -1);
		rec_free(idx);
		lutfd_http_answer(conn_id, seq, res->status, NULL, res);
		return;
	}
	if (c) {
		lutf_conn_inflight(c, -1);
		b = rbuf_start();
		f = lutf_frame_begin(b, LUTF_OP_REPLY, res->status, r->req_id);
		if (res->output_len)
			lutf_tlv_put(b, LUTF_TAG_OUTPUT, res->output, res->output_len);
		if (res->content_type[0])
			lutf_tlv_put_str(b, LUTF_TAG_CONTENT_TYPE, res->content_type);
		if (res->status != LUTF_STATUS_OK)
			lutf_tlv_put_str(b, LUTF_TAG_ERROR,
					 res->error[0] ? res->error : lutf_status_str(res->status));
		if (res->detail)
			lutf_tlv_put_u32(b, LUTF_TAG_DETAIL, res->detail);
		lutf_frame_end(b, f);
		if (!b->failed)
			lutf_conn_send(c, b->data, b->len);
		rbuf_done();
	}
	rec_free(idx);
}

/* Reaper threads. Rings the doorbell only when the queue was empty. */
void lutfd_completions_push(struct lutfd_tenant *t, struct lutf_completion *cs, int n)
{
	bool ring;

	pthread_mutex_lock(&cq_lock);
	if (cq_n + (size_t)n > cq_cap) {
		size_t cap = cq_cap ? cq_cap : 256;
		struct cq_ent *p;

		while (cap < cq_n + (size_t)n)
			cap *= 2;
		p = realloc(cq, cap * sizeof(*p));
		if (!p) {
			/* Cannot happen in practice (bounded by max_queued per
			 * tenant); the requests then end by their connection. */
			pthread_mutex_unlock(&cq_lock);
			for (int i = 0; i < n; i++)
				lutf_result_release(&cs[i].result);
			return;
		}
		cq = p;
		cq_cap = cap;
	}
	ring = cq_n == 0;
	for (int i = 0; i < n; i++) {
		cq[cq_n].t = t;
		cq[cq_n].c = cs[i];
		cq_n++;
	}
	pthread_mutex_unlock(&cq_lock);
	if (ring) {
		uint64_t one = 1;

		(void)!write(cq_efd, &one, sizeof(one));
	}
}

/* Answer every call of t in flight with status/msg now; their records wait
 * for their completions (or ANSWERED_KEEP_NS). */
void lutfd_answer_tenant(struct lutfd_tenant *t, uint32_t status, uint32_t detail, const char *msg)
{
	uint64_t now = now_ns();

	for (uint32_t i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (!r->live || r->answered || r->t != t)
			continue;
		r->answered = true;
		r->due_ns = now + ANSWERED_KEEP_NS;
		if (r->due_ns < next_due)
			next_due = r->due_ns;
		t->slot_stats[r->slot][status]++;
		t->inflight--;
		t->slot_inflight[r->slot]--;
		ninflight--;
		answer_status(r, status, detail, msg);
	}
	lutf_srv_flush(g_srv);
}

/*
 * The engine counts every check a shared region failed (enum
 * lutf_fault_check): only the worker can have written those words, so its
 * memory is no longer to be trusted. Its calls in flight are answered now
 * ("crashed (region fault: <check>)"), and it is recycled: SIGKILL only; the
 * zygote's exit notice then runs the normal death path (worker_down:
 * lutf_runtime_worker_lost, restart). Called after every batch of
 * completions and on lutfd's tick, never per call.
 */
void lutfd_fault_check(struct lutfd_tenant *t)
{
	uint64_t faults;
	unsigned check;
	char msg[120];

	if (!t->rt)
		return;
	faults = lutf_runtime_region_faults(t->rt);
	if (faults == t->faults_seen)
		return;
	t->faults_seen = faults;
	check = lutf_runtime_faults(t->rt, NULL);
	if (t->pid <= 0 || t->pid == t->faulty_pid)
		return; /* already killed, its exit not yet reported */
	lutfd_log("tenant %s: region fault (%s): worker %d wrote words lutfd's checks refused "
		  "(%llu so far); recycling it",
		  t->name, lutf_fault_check_name(check), (int)t->pid, (unsigned long long)faults);
	t->faulty_pid = t->pid;
	t->fault_check = check;
	kill(t->pid, SIGKILL);
	snprintf(msg, sizeof(msg), "crashed (region fault: %s)", lutf_fault_check_name(check));
	lutfd_answer_tenant(t, LUTF_STATUS_CRASHED, SIGKILL, msg);
}

/* Records past lutfd's own deadline: the call is answered DEADLINE (its
 * worker never answered, whatever its region says); answered records past
 * their keep time are freed. Cheap when nothing is due. */
void lutfd_dispatch_tick(void)
{
	uint64_t now = now_ns(), next = UINT64_MAX;
	bool sent = false;

	lutfd_dispatch_unplug(); /* backstop: a loop that skips lutfd_http_dispatch */
	if (now < next_due)
		return;
	for (uint32_t i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (!r->live || !r->due_ns)
			continue;
		if (now < r->due_ns) {
			if (r->due_ns < next)
				next = r->due_ns;
			continue;
		}
		if (r->answered) {
			rec_free(i); /* its completion never came */
			continue;
		}
		r->answered = true;
		r->t->slot_stats[r->slot][LUTF_STATUS_DEADLINE]++;
		r->t->inflight--;
		r->t->slot_inflight[r->slot]--;
		ninflight--;
		n_expired++;
		answer_status(r, LUTF_STATUS_DEADLINE, 0,
			      "deadline passed (lutfd: the worker never answered)");
		sent = true;
		r->due_ns = now + ANSWERED_KEEP_NS;
		if (r->due_ns < next)
			next = r->due_ns;
	}
	next_due = next;
	if (sent)
		lutf_srv_flush(g_srv);
}

uint64_t lutfd_dispatch_expired(void)
{
	return n_expired;
}

/* Completions of t reaped on the main thread itself (tenant.c, io_uring
 * futex waits): the same handling as those the reapers hand over. */
void lutfd_completions_take(struct lutfd_tenant *t, struct lutf_completion *cs, int n)
{
	uint64_t now = n > 0 ? now_ns() : 0;

	for (int i = 0; i < n; i++) {
		complete(t, cs[i].user_data, &cs[i].result, now);
		lutf_result_release(&cs[i].result);
	}
	/* The fault check follows in reap.c's reap_ready, once per pass. */
}

static void cq_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	uint64_t v;
	struct cq_ent *batch;
	size_t n, cap;
	uint64_t now;

	(void)!read(cq_efd, &v, sizeof(v));
	pthread_mutex_lock(&cq_lock);
	batch = cq;
	n = cq_n;
	cap = cq_cap;
	cq = cq_spare;
	cq_cap = cq_spare_cap;
	cq_n = 0;
	pthread_mutex_unlock(&cq_lock);
	now = n ? now_ns() : 0;
	for (size_t i = 0; i < n; i++) {
		complete(batch[i].t, batch[i].c.user_data, &batch[i].c.result, now);
		lutf_result_release(&batch[i].c.result);
		/* Reapers push runs of one tenant: check each run once. */
		if (i + 1 == n || batch[i + 1].t != batch[i].t)
			lutfd_fault_check(batch[i].t);
	}
	cq_spare = batch;
	cq_spare_cap = cap;
	lutf_srv_flush(g_srv);
}

/* Returns 0 or -errno. */
int lutfd_dispatch_init(void)
{
	cq_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (cq_efd < 0)
		return -errno;
	return lutf_ev_set(g_loop, cq_efd, LUTF_EV_READ, cq_event, NULL);
}

uint64_t lutfd_inflight(void)
{
	return ninflight;
}

/* A typed error with a DETAIL field (lutf_conn_reply_status has none). */
static void reply_error(struct lutf_conn *c, uint64_t req_id, uint32_t status, uint32_t detail,
			const char *msg)
{
	struct lutf_buf *b = rbuf_start();
	size_t f;

	f = lutf_frame_begin(b, LUTF_OP_REPLY, status, req_id);
	lutf_tlv_put_str(b, LUTF_TAG_ERROR, msg);
	if (detail)
		lutf_tlv_put_u32(b, LUTF_TAG_DETAIL, detail);
	lutf_frame_end(b, f);
	if (!b->failed)
		lutf_conn_send(c, b->data, b->len);
	rbuf_done();
}

/*
 * A crash-looping tenant: its requests in flight are answered now instead of
 * waiting for a worker that may never come. Their Bricks stay queued in the
 * region (lutfd cannot take them back): should a worker start later, they
 * run and their results are dropped (docs/daemon.md, "Crash loops").
 */
void lutfd_fail_tenant(struct lutfd_tenant *t)
{
	uint32_t status, detail;
	char msg[300];

	if (lutfd_fault_refuse(t, &status, &detail, msg, sizeof(msg)))
		lutfd_answer_tenant(t, status, detail, msg);
}

static void fail_inflight(int origin)
{
	for (uint32_t i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (!r->live || r->answered || (origin >= 0 && r->origin != origin))
			continue;
		r->answered = true;
		r->t->inflight--;
		r->t->slot_inflight[r->slot]--;
		ninflight--;
		answer_status(r, LUTF_STATUS_SHUTTING_DOWN, 0, "lutfd is shutting down");
	}
	lutf_srv_flush(g_srv);
}

void lutfd_fail_inflight(void)
{
	fail_inflight(-1);
}

void lutfd_fail_origin(unsigned origin)
{
	fail_inflight((int)origin);
}

struct hdr_ctx {
	char buf[8192];
	const char *v[2 * MAX_HEADERS + 1];
	size_t n, len;
};

/* One "name\0value" HEADER into h. False if malformed or over the bounds. */
static bool header_each(void *ctx, const struct lutf_tlv *tl)
{
	struct hdr_ctx *h = ctx;
	const char *z = memchr(tl->val, 0, tl->len);

	if (!z || h->n >= MAX_HEADERS || h->len + tl->len + 1 > sizeof(h->buf))
		return false;
	if (memchr(z + 1, 0, tl->len - (size_t)(z + 1 - (const char *)tl->val)))
		return false;
	memcpy(h->buf + h->len, tl->val, tl->len);
	h->buf[h->len + tl->len] = 0;
	h->v[2 * h->n] = h->buf + h->len;
	h->v[2 * h->n + 1] = h->buf + h->len + (size_t)(z - (const char *)tl->val) + 1;
	h->n++;
	h->len += tl->len + 1;
	return true;
}

static void invoke(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	char tenant[LUTFD_NAME], fn[LUTFD_NAME], ct[LUTF_CONTENT_TYPE_MAX + 1];
	char msg[300];
	struct hdr_ctx hc;
	struct lutf_request req = {0};
	struct lutf_invoke_fields v = {.tenant = tenant,
				       .function = fn,
				       .content_type = ct,
				       .tenant_cap = sizeof(tenant),
				       .function_cap = sizeof(fn),
				       .content_type_cap = sizeof(ct),
				       .header = header_each,
				       .ctx = &hc};
	uint32_t st, detail;
	int seen;

	tenant[0] = fn[0] = ct[0] = 0;
	hc.n = hc.len = 0;
	/* The shared reader's rules, without its per-call rule table (wire.h). */
	seen = lutf_invoke_read(payload, h->length, &v);
	if (seen < 0 || !tenant[0] || !fn[0]) {
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_MALFORMED,
				       "invoke needs TENANT and FUNCTION; a field is bad");
		return;
	}
	req.input = v.input.val;
	req.input_len = v.input.len;
	if (seen & LUTF_INV_CONTENT_TYPE)
		req.content_type = ct;
	if (seen & LUTF_INV_TIMEOUT_MS)
		req.timeout_ns = (uint64_t)v.timeout_ms * 1000000ull;
	hc.v[2 * hc.n] = NULL;
	if (hc.n)
		req.headers = hc.v;
	st = lutfd_invoke_start(c, LUTFD_ORIGIN_BIN, h->request_id, tenant, fn, &req, &detail, msg,
				sizeof(msg));
	if (st != LUTF_STATUS_OK)
		reply_error(c, h->request_id, st, detail, msg);
}

/*
 * The submit plug (lutf_runtime_plug): the submits of one loop pass wake a
 * sleeping Labor once, at the pass's end (lutfd_dispatch_unplug), not at the
 * first of them. On by default only when lutfd may run on one CPU: there a
 * mid-pass wake-up lets the Labor preempt the loop before the rest of the
 * pass is pushed (docs/performance.md, "Pinned to one core"); on more, it
 * would only start the Labor later. LUTF_PLUG=on or off decides instead.
 */
static int plug_mode = -1;
static bool plugged;

static bool plug_wanted(void)
{
	if (plug_mode < 0) {
		const char *e = getenv("LUTF_PLUG");
		cpu_set_t cpus;

		if (e && !strcmp(e, "on"))
			plug_mode = 1;
		else if (e && !strcmp(e, "off"))
			plug_mode = 0;
		else
			plug_mode =
			    !sched_getaffinity(0, sizeof(cpus), &cpus) && CPU_COUNT(&cpus) == 1;
	}
	return plug_mode;
}

void lutfd_dispatch_unplug(void)
{
	if (!plugged)
		return;
	plugged = false;
	lutf_runtime_plug(false);
}

/* The invoke path every protocol shares (lutfd.h). */
uint32_t lutfd_invoke_start(struct lutf_conn *c, enum lutfd_origin origin, uint64_t req_id,
			    const char *tenant, const char *fn, const struct lutf_request *req,
			    uint32_t *detail, char *msg, size_t cap)
{
	struct lutfd_tenant *p = lutfd_tenant_find(tenant), *t;
	struct lutfd_fn *f = p && p->rt ? lutfd_fn_find(p, fn) : NULL;
	struct lutfd_app *app;
	uint32_t idx, st, slot, n;
	struct rec *r;
	int err;

	*detail = 0;
	/* workers = N: the call goes to one worker (workers.c says which). */
	t = f && f->bound ? lutfd_workers_pick(p, f) : NULL;
	if (!t) {
#ifdef LUTF_HAVE_CLUSTER
		if (lutfd_forward_start(c, origin, req_id, tenant, fn, req))
			return LUTF_STATUS_OK; /* another node runs it (forward.c) */
#endif
		snprintf(msg, cap, "no function %s/%s", tenant, fn);
		return LUTF_STATUS_UNKNOWN_FUNCTION;
	}
	slot = f->wslot[t->widx];
	if (lutfd_fault_refuse(t, &st, detail, msg, cap)) {
		t->slot_stats[slot][st]++;
		return st;
	}
	/* max_queued and max_concurrency hold for the tenant: all its workers. */
	n = p->nwk > 1 ? lutfd_workers_inflight(p, NULL) : t->inflight;
	if (n >= g_cfg.max_queued) {
		t->slot_stats[slot][LUTF_STATUS_OVERLOADED]++;
#ifdef LUTF_HAVE_CLUSTER
		if (lutfd_forward_start(c, origin, req_id, tenant, fn, req))
			return LUTF_STATUS_OK; /* another node runs it (forward.c) */
#endif
		snprintf(msg, cap, "tenant %s has %u requests in flight", tenant, n);
		return LUTF_STATUS_OVERLOADED;
	}
	app = lutfd_app_find(p, f->app);
	n = p->nwk > 1 ? lutfd_workers_inflight(p, f) : t->slot_inflight[slot];
	if (app && app->max_concurrency && n >= app->max_concurrency) {
		t->slot_stats[slot][LUTF_STATUS_OVERLOADED]++;
#ifdef LUTF_HAVE_CLUSTER
		if (lutfd_forward_start(c, origin, req_id, tenant, fn, req))
			return LUTF_STATUS_OK; /* another node runs it (forward.c) */
#endif
		snprintf(msg, cap, "%s/%s has its max_concurrency (%u) calls in flight", tenant, fn,
			 app->max_concurrency);
		return LUTF_STATUS_OVERLOADED;
	}
	r = rec_new(&idx);
	if (!r) {
		snprintf(msg, cap, "out of memory");
		return LUTF_STATUS_OVERLOADED;
	}
	r->conn_id = c ? lutf_conn_id(c) : 0;
	r->req_id = req_id;
	r->origin = (uint8_t)origin;
	r->t = t;
	r->slot = slot;
	/* The batch's clock (one read per batch of frames, ingress_loop.c):
	 * the frame was in by then; the histogram and lutfd's deadline count
	 * from there. */
	r->t0_ns = lutf_ev_now_ns(g_loop);
	/* The call's own deadline, as the engine computes it (request, app,
	 * lutfd default), plus slack: kept here, not in the region. */
	{
		uint64_t tmo = req->timeout_ns		? req->timeout_ns
			       : app && app->timeout_ms ? (uint64_t)app->timeout_ms * 1000000ull
							: (uint64_t)g_cfg.timeout_ms * 1000000ull;

		r->due_ns = tmo ? r->t0_ns + tmo + DUE_SLACK_NS : 0;
	}
	if (!plugged && plug_wanted()) {
		lutf_runtime_plug(true);
		plugged = true;
	}
	err = lutf_runtime_submit(t->rt, slot, req, ((uint64_t)r->gen << 32) | idx);
	if (err) {
		st = lutf_status_from_errno(err);
		rec_free(idx);
		t->slot_stats[slot][st]++;
		if (st == LUTF_STATUS_PAUSED)
			snprintf(msg, cap, "%s/%s is paused and holds as many calls as it may",
				 tenant, fn);
		else
			snprintf(msg, cap, "%s", lutf_status_str(st));
		return st;
	}
	t->inflight++;
	t->slot_inflight[slot]++;
	ninflight++;
	if (r->due_ns && r->due_ns < next_due)
		next_due = r->due_ns;
	if (c)
		lutf_conn_inflight(c, 1);
	return LUTF_STATUS_OK;
}

void lutfd_frame(void *ctx, struct lutf_conn *c, const struct lutf_wire_hdr *h,
		 const uint8_t *payload)
{
	if (h->opcode == LUTF_OP_INVOKE)
		invoke(c, h, payload);
	else if (h->opcode == LUTF_OP_PING)
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_OK, NULL);
	else
		lutfd_control(c, h, payload);
}
