/* SPDX-License-Identifier: MIT */
/*
 * workers = N: a tenant's calls spread over N worker processes, each with its
 * own region, runtime, Labors and life (a crash, a recycle or a region fault
 * is that worker's alone). Worker 0 is the registry record; the others
 * mirror its apps and functions and are never saved. Invariant: a call goes
 * to one worker and completes there; while any worker is up, a worker that
 * is not (starting, dead, recycling, draining) gets no call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lutfd.h"

/* A draining worker (N lowered) waits this long for its calls to end. */
#define DRAIN_MS 30000u

static struct lutfd_tenant *wk(const struct lutfd_tenant *t, uint32_t w)
{
	return t->wk[w];
}

static uint32_t nwk(const struct lutfd_tenant *t)
{
	return t->nwk ? t->nwk : 1;
}

uint32_t lutfd_workers_want(const struct lutfd_tenant *t)
{
	uint32_t n = t->workers ? t->workers : g_cfg.tenant_workers;

	return n < 1 ? 1 : n > LUTFD_WORKERS_MAX ? LUTFD_WORKERS_MAX : n;
}

size_t lutfd_tenants_count(void)
{
	size_t n = 0;

	for (size_t i = 0; i < g_state.n; i++)
		n += !g_state.t[i]->primary;
	return n;
}

/* A worker's labors_max as tenant.c's engine_config sets it. */
static uint32_t labors_max(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t carts = g_cfg.carts ? g_cfg.carts : cpus > 0 ? (uint32_t)cpus : 1;
	uint32_t labors = g_cfg.labors ? g_cfg.labors : 4 * carts;

	return g_cfg.labors_max ? g_cfg.labors_max : 2 * labors;
}

void lutfd_workers_sync(struct lutfd_tenant *t)
{
	uint32_t cap = g_cfg.bpf_labors_per_tenant, n;

	t = lutfd_workers_primary(t);
	/* labor_watch's per-tenant cap counts every worker: each gets its
	 * share (at least one slot). */
	n = lutfd_workers_want(t) > t->nwk ? lutfd_workers_want(t) : t->nwk;
	if (!cap && n > 1)
		cap = labors_max(); /* 0 means one worker's labors_max */
	if (cap && n > 1)
		cap = cap / n ? cap / n : 1;
	for (uint32_t w = 0; w < t->nwk; w++)
		if (t->wk[w]->rt)
			lutf_runtime_set_watch_cap(t->wk[w]->rt, cap);
	for (uint32_t w = 1; w < t->nwk; w++) {
		struct lutfd_tenant *s = t->wk[w];

		s->apps = t->apps;
		s->napps = t->napps;
		s->fns = t->fns;
		s->nfns = t->nfns;
		LUTFD_COPY(s->tier, t->tier);
		s->uid = t->uid;
		s->removing = t->removing || s->draining;
	}
}

int lutfd_fn_bind_all(struct lutfd_tenant *t, struct lutfd_fn *f, uint32_t timeout_ms)
{
	int err = 0;

	t = lutfd_workers_primary(t);
	for (uint32_t w = 0; w < nwk(t); w++) {
		struct lutfd_tenant *s = wk(t, w);
		int e;

		if (!s->rt)
			continue;
		e = lutfd_fn_bind(s, f, timeout_ms);
		if (e && !err)
			err = e;
	}
	return err;
}

int lutfd_fn_engine_all(struct lutfd_tenant *t, struct lutfd_fn *f,
			int (*op)(struct lutf_runtime *rt, uint32_t slot))
{
	int err = 0;

	t = lutfd_workers_primary(t);
	for (uint32_t w = 0; w < nwk(t); w++) {
		struct lutfd_tenant *s = wk(t, w);
		int e;

		if (!s->rt || !(f->wbound & (1u << w)))
			continue;
		e = op(s->rt, f->wslot[w]);
		if (e && e != -EALREADY && !err)
			err = e;
	}
	return err;
}

bool lutfd_workers_others_alive(const struct lutfd_tenant *t)
{
	const struct lutfd_tenant *p = t->primary ? t->primary : t;

	for (uint32_t w = 0; w < nwk(p); w++)
		if (wk(p, w) != t && wk(p, w)->pid > 0)
			return true;
	return false;
}

uint32_t lutfd_workers_inflight(const struct lutfd_tenant *t, const struct lutfd_fn *f)
{
	uint32_t n = 0;

	for (uint32_t w = 0; w < nwk(t); w++) {
		const struct lutfd_tenant *s = wk(t, w);

		if (!f)
			n += s->inflight;
		else if (s->slot_inflight && (f->wbound & (1u << w)))
			n += s->slot_inflight[f->wslot[w]];
	}
	return n;
}

void lutfd_workers_fn_stats(const struct lutfd_tenant *t, const struct lutfd_fn *f, uint64_t *out)
{
	memset(out, 0, LUTF_STATUS__COUNT * sizeof(*out));
	for (uint32_t w = 0; w < nwk(t); w++) {
		const struct lutfd_tenant *s = wk(t, w);

		if (!s->slot_stats || !(f->wbound & (1u << w)))
			continue;
		for (uint32_t k = 0; k < LUTF_STATUS__COUNT; k++)
			out[k] += s->slot_stats[f->wslot[w]][k];
	}
}

/*
 * The spreading rule: the up worker with the fewest calls in flight, ties
 * going round robin from a cursor that moves on every call. In flight is
 * what a worker still owes, so a worker stuck in slow calls gets fewer new
 * ones, and CPU-bound calls spread evenly over the cores; the cursor keeps
 * light load (every worker at 0) from always landing on worker 0. Only
 * when no worker is up does a call go to one that is starting or waiting
 * for its restart: queued in its region, it runs once that worker's apps
 * are loaded (what a tenant of one worker does too). A draining worker, or
 * one that has not bound f, gets nothing.
 */
struct lutfd_tenant *lutfd_workers_pick(struct lutfd_tenant *t, const struct lutfd_fn *f)
{
	struct lutfd_tenant *best = NULL, *down = NULL;
	uint32_t n = nwk(t);

	if (n == 1) { /* the common case, without the divisions of the round robin */
		struct lutfd_tenant *s = wk(t, 0);

		t->rr = 0;
		return s->rt && !s->draining && (f->wbound & 1u) ? s : NULL;
	}
	for (uint32_t k = 0; k < n; k++) {
		uint32_t w = (t->rr + k) % n;
		struct lutfd_tenant *s = wk(t, w);

		if (!s->rt || s->draining || !(f->wbound & (1u << w)))
			continue;
		if (!s->up) {
			if (!down || s->inflight < down->inflight)
				down = s;
		} else if (!best || s->inflight < best->inflight) {
			best = s;
		}
	}
	t->rr = (t->rr + 1) % n;
	return best ? best : down;
}

struct other_worker {
	struct lutfd_tenant *t;
	uint32_t w;
	bool more;
	int ctl;
};

/* Main: a copy of worker w's control socket if it is up, else -1. */
static void other_ctl(void *arg)
{
	struct other_worker *x = arg;
	struct lutfd_tenant *s;

	x->ctl = -1;
	x->more = x->w < x->t->nwk;
	if (!x->more)
		return;
	s = x->t->wk[x->w];
	if (s->up && !s->draining && s->ctl >= 0)
		x->ctl = fcntl(s->ctl, F_DUPFD_CLOEXEC, 0);
}

/*
 * Job thread (a deploy, after worker 0 took the load): every other worker
 * of t that is up takes it too, before the deploy is acknowledged. One that
 * does not (it died, timed out, refused) is in the returned mask; the deploy
 * recycles it after the commit and its successor loads the committed
 * records before its Labors start. A worker that is starting loads them the
 * same way (its start job runs after the deploy's, on the tenant's lane).
 */
uint32_t lutfd_workers_load(struct lutfd_tenant *t, const struct lutf_buf *load, const char *app)
{
	struct other_worker x = {.t = t, .w = 1};
	uint32_t failed = 0;
	char msg[300];

	for (;; x.w++) {
		lutfd_main_call(other_ctl, &x);
		if (!x.more)
			break;
		if (x.ctl < 0)
			continue;
		if (lutfd_ctl_call(x.ctl, load->data, load->len, msg, sizeof(msg))) {
			lutfd_log("tenant %s: worker %u does not load %s: %s; recycled after the "
				  "commit",
				  t->name, x.w, app, msg);
			failed |= 1u << x.w;
		}
		close(x.ctl);
	}
	return failed;
}

/* Main: a new record for worker t->nwk, open, bound, its start queued. */
static int grow_one(struct lutfd_tenant *t)
{
	struct lutfd_tenant *s = calloc(1, sizeof(*s)), **p;
	int err;

	if (!s)
		return -ENOMEM;
	p = realloc(g_state.t, (g_state.n + 1) * sizeof(*p));
	if (!p) {
		free(s);
		return -ENOMEM;
	}
	g_state.t = p;
	LUTFD_COPY(s->name, t->name);
	s->memfd = s->ctl = s->logfd = -1;
	s->primary = t;
	s->widx = t->nwk;
	t->wk[t->nwk++] = s;
	lutfd_workers_sync(t);
	err = lutfd_tenant_open(s);
	if (err) {
		t->wk[--t->nwk] = NULL;
		free(s);
		return err;
	}
	g_state.t[g_state.n++] = s;
	for (size_t i = 0; i < t->nfns; i++) {
		struct lutfd_app *a = lutfd_app_find(t, t->fns[i]->app);

		err = lutfd_fn_bind(s, t->fns[i], a ? a->timeout_ms : 0);
		if (err)
			lutfd_log("tenant %s: worker %u: cannot bind %s: %s", t->name, s->widx,
				  t->fns[i]->name, strerror(-err));
	}
	lutfd_worker_queue_start(s);
	lutfd_log("tenant %s: worker %u added (%u of %u)", t->name, s->widx, t->nwk,
		  lutfd_workers_want(t));
	return 0;
}

int lutfd_workers_grow(struct lutfd_tenant *t)
{
	uint32_t want = lutfd_workers_want(t);
	int err;

	if (t->primary || !t->rt || t->removing || !t->nfns)
		return 0;
	while (t->nwk < want) {
		err = grow_one(t);
		if (err)
			return err;
	}
	return 0;
}

struct shrink_step {
	struct lutfd_tenant *t, *s;
	uint32_t inflight;
};

/* Main: the last worker past N starts draining (no new call, no restart). */
static void shrink_pick(void *arg)
{
	struct shrink_step *x = arg;
	struct lutfd_tenant *t = x->t;

	x->s = NULL;
	if (t->removing || t->nwk <= lutfd_workers_want(t))
		return;
	x->s = t->wk[t->nwk - 1];
	x->s->draining = true;
	lutfd_workers_sync(t);
}

static void shrink_inflight(void *arg)
{
	struct shrink_step *x = arg;

	x->inflight = x->s->inflight;
}

int lutfd_workers_shrink(struct lutfd_tenant *t)
{
	struct shrink_step x = {.t = t};
	char name[LUTFD_NAME];
	uint32_t widx;
	int err;

	LUTFD_COPY(name, t->name);
	for (;;) {
		uint64_t until = lutfd_now_ms() + DRAIN_MS;

		lutfd_main_call(shrink_pick, &x);
		if (!x.s)
			return 0;
		/* Its calls end where they started (queued ones too): nothing fails. */
		for (;;) {
			lutfd_main_call(shrink_inflight, &x);
			if (!x.inflight || lutfd_now_ms() >= until)
				break;
			poll(NULL, 0, 10);
		}
		widx = x.s->widx; /* x.s is freed once removed */
		err = lutfd_tenant_remove_sync(x.s);
		if (err) {
			lutfd_log("tenant %s: worker %u not removed: %s", name, widx,
				  strerror(-err));
			return err;
		}
		lutfd_log("tenant %s: worker %u removed (workers lowered)", name, widx);
	}
}
