/* SPDX-License-Identifier: MIT */
/*
 * The in-process API: create or attach, the function table, submit, invoke,
 * reap and stats. The front side owns the function table and hold lists
 * (under rt->lock, never on the Brick path) and talks to Labors only through
 * the region.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>

#include "front.h"

#define META_MAX 16384u		    /* bytes of content type and headers */
#define SYNC_SPIN_NS 20000ull	    /* a sync caller spins this long before sleeping */
#define SYNC_SLACK_NS 1000000000ull /* ... and gives up this long after its deadline */
#define SYNC_RECHECK_NS                                                                            \
	100000000ull /* a sleeping sync caller looks again (a worker may write done without a      \
			wake) */
#define ATTACH_DRAIN_NS 5000000000ull /* a remote worker gets this long to drain */

static __thread char last_error[256];
static uint64_t next_request_id = 1;

void lutf_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

const char *lutf_runtime_last_error(void)
{
	return last_error;
}

static bool name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > LUTF_NAME_MAX || name[0] == '.' || name[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool live(uint32_t st)
{
	return st == LUTF_FN_ACTIVE || st == LUTF_FN_PAUSED || st == LUTF_FN_RELEASING;
}

/* In-process Labors resolve slots from the front's own table. Read without
 * the lock: the Labor published cur_fn and saw the slot live with the right
 * generation, so reclaim() cannot be rewriting these fields (see labor.c). */
static int local_resolve(void *ctx, uint32_t slot, const char *name, struct lutf_fn_binding *out)
{
	struct lutf_runtime *rt = ctx;
	struct lutf_fn_local *f = &rt->fns[slot];

	if (!f->fn)
		return -ENOENT;
	out->fn = f->fn;
	out->app_state = f->app ? f->app->state : NULL;
	out->config = (const char *const *)f->config;
	return 0;
}

static int rt_init(struct lutf_runtime *rt)
{
	rt->bf = calloc(rt->r.cfg.bricks, sizeof(*rt->bf));
	rt->reaped = calloc(rt->r.cfg.bricks, sizeof(*rt->reaped));
	if (!rt->bf || !rt->reaped)
		return -ENOMEM;
	/* fns last: rt_free takes a non-NULL fns to mean "mutexes exist". */
	rt->fns = calloc(rt->r.cfg.max_functions, sizeof(*rt->fns));
	if (!rt->fns)
		return -ENOMEM;
	pthread_mutex_init(&rt->lock, NULL);
	pthread_mutex_init(&rt->reap_lock, NULL);
	pthread_mutex_init(&rt->sup_lock, NULL);
	return 0;
}

static void rt_free(struct lutf_runtime *rt)
{
	if (rt->fns) {
		for (uint32_t s = 0; s < rt->r.cfg.max_functions; s++) {
			struct lutf_fn_local *f = &rt->fns[s];

			if (f->app)
				lutf_app_unref(rt, f->app);
			for (char **p = f->config; p && *p; p++)
				free(*p);
			free(f->config);
			free(f->held);
		}
		free(rt->fns);
		pthread_mutex_destroy(&rt->lock);
		pthread_mutex_destroy(&rt->reap_lock);
		pthread_mutex_destroy(&rt->sup_lock);
	}
	lutf_labor_tid_fini(rt);
	free(rt->bf);
	free(rt->reaped);
	free(rt->lw_slot);
	free(rt->lw_tid);
	free(rt->seen_started);
	free(rt->seen_since);
	free(rt->lw_late);
	free(rt->scan);
	free(rt->free_since);
	if (rt->mem_owned)
		munmap(rt->mem_owned, rt->r.size);
	free(rt);
}

/* A Supervisor for this runtime alone, configured by its region. */
static int own_supervisor(struct lutf_runtime *rt)
{
	const struct lutf_config *cfg = &rt->r.cfg;
	struct lutf_supervisor_opts o = {.watch = cfg->watch, .max_labors = cfg->labors_max};
	int err;

	memcpy(o.bpf_pin_dir, cfg->bpf_pin_dir, sizeof(o.bpf_pin_dir));
	err = lutf_supervisor_create(&o, &rt->sup);
	if (err)
		return err;
	rt->own_sup = true;
	return lutf_sup_join(rt->sup, rt);
}

int lutf_runtime_create(const struct lutf_config *cfg, struct lutf_runtime **out)
{
	struct lutf_labor_host host = {.resolve = local_resolve};
	struct lutf_runtime *rt;
	size_t size = lutf_region_size(cfg);
	void *mem;
	int err;

	if (!out || !size)
		return -EINVAL;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	/* Reserved, not committed: pages cost memory only once touched. */
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (mem == MAP_FAILED) {
		free(rt);
		return -ENOMEM;
	}
	rt->mem_owned = mem;
	rt->r.size = size;
	err = lutf_region_format(mem, size, cfg, 0);
	if (!err)
		err = lutf_region_open(&rt->r, mem, size);
	if (!err)
		err = rt_init(rt);
	if (err)
		goto err;
	host.ctx = rt;
	err = lutf_labors_start(mem, size, &host, &rt->labors);
	if (err)
		goto err;
	err = own_supervisor(rt);
	if (err)
		goto err_labors;
	*out = rt;
	return 0;
err_labors:
	lutf_sup_leave(rt);
	if (rt->own_sup)
		lutf_supervisor_destroy(rt->sup);
	st_release(&rt->r.hdr->stop, LUTF_STOP_EXIT);
	lutf_labors_stop(rt->labors);
	lutf_labors_wait(rt->labors);
err:
	rt_free(rt);
	return err;
}

static int attach(struct lutf_supervisor *sup, void *mem, size_t size, struct lutf_runtime **out)
{
	struct lutf_runtime *rt;
	int err;

	if (!out)
		return -EINVAL;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	err = lutf_region_open(&rt->r, mem, size);
	if (!err)
		err = rt_init(rt);
	if (!err)
		err = sup ? lutf_sup_join(sup, rt) : own_supervisor(rt);
	if (err) {
		lutf_sup_leave(rt);
		if (rt->own_sup)
			lutf_supervisor_destroy(rt->sup);
		rt_free(rt);
		return err;
	}
	*out = rt;
	return 0;
}

int lutf_front_attach_bare(void *mem, size_t size, struct lutf_runtime **out)
{
	struct lutf_supervisor *sup = lutf_sup_bare();
	int err;

	if (!sup)
		return -ENOMEM;
	err = attach(sup, mem, size, out);
	if (err) {
		lutf_supervisor_destroy(sup);
		return err;
	}
	(*out)->own_sup = true;
	return 0;
}

void lutf_front_detach_bare(struct lutf_runtime *rt)
{
	struct lutf_supervisor *sup = rt->sup;

	lutf_sup_leave(rt);
	lutf_supervisor_destroy(sup);
	rt_free(rt);
}

int lutf_runtime_attach(void *mem, size_t size, struct lutf_runtime **out)
{
	return attach(NULL, mem, size, out);
}

int lutf_runtime_attach_to(struct lutf_supervisor *sup, void *mem, size_t size,
			   struct lutf_runtime **out)
{
	if (!sup)
		return -EINVAL;
	return attach(sup, mem, size, out);
}

static bool drained(struct lutf_region *r)
{
	for (uint32_t c = 0; c < r->cfg.carts; c++)
		if (lutf_ring_count(&r->cart_q[c]))
			return false;
	for (uint32_t i = 0; i < r->cfg.labors_max; i++)
		if (ld_relaxed(&r->labors[i].state) == LUTF_LABOR_RUNNING)
			return false;
	return true;
}

void lutf_runtime_destroy(struct lutf_runtime *rt)
{
	struct lutf_region *r;
	uint64_t start = lutf_now_ns();

	if (!rt)
		return;
	r = &rt->r;
	st_seqcst(&rt->stopping, 1);
	/* Labors now fail what they pop; the Supervisor keeps moving Carts off
	 * blocked Labors and answering deadlines while the queues drain. */
	st_seqcst(&r->hdr->stop, LUTF_STOP_DRAIN);
	for (uint32_t i = 0; i < r->cfg.labors_max; i++) {
		__atomic_add_fetch(&r->labors[i].bell, 1, __ATOMIC_RELEASE);
		lutf_futex_wake(&r->labors[i].bell, 1, r->shared);
	}
	pthread_mutex_lock(&rt->lock);
	for (uint32_t s = 0; s < r->cfg.max_functions; s++)
		lutf_fail_held(rt, s, LUTF_STATUS_SHUTTING_DOWN);
	pthread_mutex_unlock(&rt->lock);
	/* In-process we must wait for running functions (their threads cannot be
	 * killed); a remote worker that does not drain is given up on. */
	while (!drained(r) && (rt->labors || lutf_now_ns() - start < ATTACH_DRAIN_NS)) {
		struct timespec ts = {0, 1000000};

		nanosleep(&ts, NULL);
	}
	lutf_sup_leave(rt);
	if (rt->own_sup)
		lutf_supervisor_destroy(rt->sup);
	rt->sup = NULL;
	pthread_mutex_lock(&rt->lock);
	lutf_drain_held_ring(rt);
	for (uint32_t s = 0; s < r->cfg.max_functions; s++)
		lutf_fail_held(rt, s, LUTF_STATUS_SHUTTING_DOWN);
	pthread_mutex_unlock(&rt->lock);
	st_seqcst(&r->hdr->stop, LUTF_STOP_EXIT);
	if (rt->labors) {
		lutf_labors_stop(rt->labors);
		lutf_labors_wait(rt->labors);
	} else {
		for (uint32_t i = 0; i < r->cfg.labors_max; i++) {
			__atomic_add_fetch(&r->labors[i].bell, 1, __ATOMIC_RELEASE);
			lutf_futex_wake(&r->labors[i].bell, 1, r->shared);
		}
	}
	rt_free(rt);
}

/* ---- function table ---- */

static int find_slot(struct lutf_runtime *rt, const char *name)
{
	for (uint32_t s = 0; s < rt->r.cfg.max_functions; s++)
		if (live(ld_relaxed(&rt->fns[s].state)) && strcmp(rt->fns[s].name, name) == 0)
			return (int)s;
	return -ENOENT;
}

static char **copy_pairs(const char *const *kv)
{
	size_t n = 0;
	char **out;

	while (kv && kv[n] && kv[n + 1])
		n += 2;
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(kv[i]);
		if (!out[i]) {
			while (i--)
				free(out[i]);
			free(out);
			return NULL;
		}
	}
	return out;
}

/* Caller holds rt->lock. Takes over app's reference on success. */
static int add_locked(struct lutf_runtime *rt, const char *name, lutf_fn_t fn, struct lutf_app *app,
		      const struct lutf_fn_opts *opts, uint32_t *id)
{
	struct lutf_region *r = &rt->r;
	struct lutf_fn_local *f;
	uint32_t s;

	if (!name_ok(name)) {
		lutf_set_error("bad function name '%s': use [A-Za-z0-9/_.-]{1,%d}",
			       name ? name : "(null)", LUTF_NAME_MAX);
		return -EINVAL;
	}
	if (ld_relaxed(&rt->stopping))
		return -ESHUTDOWN;
	if (find_slot(rt, name) >= 0) {
		lutf_set_error("function '%s' exists", name);
		return -EEXIST;
	}
	for (s = 0; s < r->cfg.max_functions; s++)
		if (ld_relaxed(&rt->fns[s].state) == LUTF_FN_FREE)
			break;
	if (s == r->cfg.max_functions) {
		lutf_set_error("all %u function slots in use", s);
		return -ENOSPC;
	}
	f = &rt->fns[s];
	lutf_fn_local_clear(f); /* gen survives the slot's reuse */
	if (opts && opts->config) {
		f->config = copy_pairs(opts->config);
		if (!f->config)
			return -ENOMEM;
	}
	f->fn = fn;
	f->app = app;
	snprintf(r->fns[s].name, sizeof(r->fns[s].name), "%s", name);
	st_relaxed(&f->timeout_ms, opts && opts->timeout_ms ? opts->timeout_ms : r->cfg.timeout_ms);
	r->fns[s].timeout_ms = f->timeout_ms;
	st_relaxed(&r->fns[s].gen, f->gen);
	/* seq_cst publishes the fields above to Labors and submitters. */
	snprintf(f->name, sizeof(f->name), "%s", name);
	lutf_fn_set_state(rt, s, LUTF_FN_ACTIVE);
	if (id)
		*id = s;
	return 0;
}

int lutf_runtime_add_fn(struct lutf_runtime *rt, const char *name, lutf_fn_t fn,
			const struct lutf_fn_opts *opts, uint32_t *id)
{
	int err;

	if (!rt || !fn || !rt->labors)
		return -EINVAL;
	pthread_mutex_lock(&rt->lock);
	err = add_locked(rt, name, fn, NULL, opts, id);
	pthread_mutex_unlock(&rt->lock);
	return err;
}

static int noop_remote(struct lutf_call *call)
{
	return 0; /* never called: remote slots are resolved by the worker */
}

int lutf_runtime_add_remote(struct lutf_runtime *rt, const char *name,
			    const struct lutf_fn_opts *opts, uint32_t *id)
{
	int err;

	if (!rt)
		return -EINVAL;
	pthread_mutex_lock(&rt->lock);
	err = add_locked(rt, name, noop_remote, NULL, opts, id);
	pthread_mutex_unlock(&rt->lock);
	return err;
}

int lutf_runtime_add_so(struct lutf_runtime *rt, const char *name, const char *path,
			const char *symbol, const struct lutf_fn_opts *opts, uint32_t *id)
{
	struct lutf_app *app;
	lutf_fn_t fn;
	int err;

	if (!rt || !path || !symbol || !rt->labors)
		return -EINVAL;
	pthread_mutex_lock(&rt->lock);
	err = lutf_app_load(rt, path, &app);
	if (err)
		goto out;
	fn = (lutf_fn_t)lutf_app_sym(app, symbol);
	if (!fn) {
		lutf_set_error("%s: no function '%s' exported", path, symbol);
		lutf_app_unref(rt, app);
		err = -ESRCH;
		goto out;
	}
	err = add_locked(rt, name, fn, app, opts, id);
	if (err)
		lutf_app_unref(rt, app);
out:
	pthread_mutex_unlock(&rt->lock);
	return err;
}

int lutf_runtime_lookup(struct lutf_runtime *rt, const char *name, uint32_t *id)
{
	int s;

	if (!rt || !name)
		return -EINVAL;
	pthread_mutex_lock(&rt->lock);
	s = find_slot(rt, name);
	pthread_mutex_unlock(&rt->lock);
	if (s < 0)
		return s;
	if (id)
		*id = (uint32_t)s;
	return 0;
}

static uint32_t slot_state(struct lutf_runtime *rt, uint32_t id)
{
	if (!rt || id >= rt->r.cfg.max_functions)
		return LUTF_FN_FREE;
	return ld_seqcst(&rt->fns[id].state);
}

int lutf_runtime_pause(struct lutf_runtime *rt, uint32_t id)
{
	int err = 0;
	uint32_t st;

	if (!rt)
		return -EINVAL;
	pthread_mutex_lock(&rt->lock);
	st = slot_state(rt, id);
	if (st == LUTF_FN_PAUSED)
		err = -EALREADY;
	else if (st == LUTF_FN_ACTIVE || st == LUTF_FN_RELEASING)
		lutf_fn_set_state(rt, id, LUTF_FN_PAUSED);
	else
		err = -ENOENT;
	pthread_mutex_unlock(&rt->lock);
	return err;
}

int lutf_runtime_resume(struct lutf_runtime *rt, uint32_t id)
{
	int err = 0;
	uint32_t st;

	if (!rt)
		return -EINVAL;
	pthread_mutex_lock(&rt->lock);
	st = slot_state(rt, id);
	if (st == LUTF_FN_PAUSED) {
		/* Bricks Labors diverted join the list first, so the sort in
		 * release sees all of them. */
		lutf_drain_held_ring(rt);
		lutf_fn_set_state(rt, id, LUTF_FN_RELEASING);
		lutf_release_held(rt, id);
	} else {
		err = live(st) ? -EALREADY : -ENOENT;
	}
	pthread_mutex_unlock(&rt->lock);
	if (!err)
		lutf_sup_wake(rt->sup);
	return err;
}

int lutf_runtime_delete(struct lutf_runtime *rt, uint32_t id)
{
	int err = 0;

	if (!rt)
		return -EINVAL;
	pthread_mutex_lock(&rt->lock);
	if (live(slot_state(rt, id))) {
		/* seq_cst: Dekker with run_brick (see labor.c). */
		lutf_fn_set_state(rt, id, LUTF_FN_DELETED);
		lutf_drain_held_ring(rt);
		lutf_fail_held(rt, id, LUTF_STATUS_DELETED);
	} else {
		err = -ENOENT;
	}
	pthread_mutex_unlock(&rt->lock);
	/* The Supervisor frees the slot (and unloads code) once no Labor is in it. */
	if (!err) {
		lutf_sup_wake(rt->sup);
	}
	return err;
}

/* ---- Bricks ---- */

uint32_t lutf_status_from_errno(int err)
{
	switch (err) {
	case 0:
		return LUTF_STATUS_OK;
	case -ENOENT:
		return LUTF_STATUS_UNKNOWN_FUNCTION;
	case -EAGAIN:
		return LUTF_STATUS_OVERLOADED;
	case -EBUSY:
		return LUTF_STATUS_PAUSED;
	case -EMSGSIZE:
		return LUTF_STATUS_TOO_LARGE;
	case -ESHUTDOWN:
		return LUTF_STATUS_SHUTTING_DOWN;
	default:
		return LUTF_STATUS_MALFORMED;
	}
}

/* Serialise content type and headers as "key\0value\0" pairs. Returns bytes
 * needed (written only when they fit in cap). */
static size_t meta_put(const struct lutf_request *req, char *dst, size_t cap)
{
	size_t n = 0;

#define PUT(s)                                                                                     \
	do {                                                                                       \
		size_t l_ = strlen(s) + 1;                                                         \
		if (n + l_ <= cap)                                                                 \
			memcpy(dst + n, (s), l_);                                                  \
		n += l_;                                                                           \
	} while (0)
	if (req->content_type) {
		PUT("content-type");
		PUT(req->content_type);
	}
	for (const char *const *h = req->headers; h && h[0] && h[1]; h += 2) {
		PUT(h[0]);
		PUT(h[1]);
	}
#undef PUT
	return n;
}

/* Take a Brick, fill it, queue or hold it. 0 and *out, or a rejection. */
static int submit(struct lutf_runtime *rt, uint32_t id, const struct lutf_request *req, uint32_t cq,
		  uint64_t user_data, struct lutf_brick **out)
{
	struct lutf_region *r = &rt->r;
	const struct lutf_config *cfg = &r->cfg;
	struct lutf_front_brick *bf;
	struct lutf_brick *b;
	size_t meta, total;
	uint64_t timeout_ns, in_off = 0, dl;
	uint32_t st, idx, gen;
	uint8_t *dst;
	int err;

	if (!req || (req->input_len && !req->input))
		return -EINVAL;
	if (ld_relaxed(&rt->stopping))
		return -ESHUTDOWN;
	if (id >= cfg->max_functions)
		return -ENOENT;
	st = ld_seqcst(&rt->fns[id].state);
	if (!live(st))
		return -ENOENT;
	meta = meta_put(req, NULL, 0);
	if (meta > META_MAX || req->input_len > cfg->max_payload)
		return -EMSGSIZE;
	b = lutf_brick_take(r);
	if (!b)
		return -EAGAIN;
	idx = lutf_brick_index(r, b);
	bf = &rt->bf[idx];
	total = meta + req->input_len;
	if (total > LUTF_BRICK_INLINE) {
		/* A local: the copy below goes where the front allocated, never
		 * where the Brick's word says by then. */
		in_off = lutf_arena_alloc(r, total);
		if (!in_off) {
			lutf_brick_put(r, b);
			return -EAGAIN;
		}
	}
	b->in_off = in_off;
	b->out_off = 0;
	dst = in_off ? lutf_region_at(r, in_off) : b->inline_in;
	meta_put(req, (char *)dst, meta);
	if (req->input_len)
		memcpy(dst + meta, req->input, req->input_len);
	b->in_meta = (uint32_t)meta;
	b->in_len = (uint32_t)req->input_len;
	b->out_len = 0;
	b->out_ct = 0;
	/* Private copies (gen, timeout): the region's may be rewritten. */
	gen = ld_relaxed(&rt->fns[id].gen);
	b->fn = id;
	b->fn_gen = gen;
	b->cq = cq;
	b->status = 0;
	b->detail = 0;
	b->user_data = user_data;
	b->request_id = __atomic_fetch_add(&next_request_id, 1, __ATOMIC_RELAXED);
	timeout_ns = req->timeout_ns ? req->timeout_ns
				     : (uint64_t)ld_relaxed(&rt->fns[id].timeout_ms) * 1000000ull;
	dl = timeout_ns ? lutf_now_ns() + timeout_ns : 0;
	/* The copies the front trusts. Relaxed atomics: the Supervisor may read
	 * a reused Brick's deadline; the reaper reads them after the
	 * completion ring's acquire, which pairs with the push that follows. */
	bf->user_data = user_data;
	st_relaxed(&bf->deadline_ns, dl);
	st_relaxed(&bf->async, cq == LUTF_CQ_ASYNC);
	/* Release: whoever reads this id (lutf_front_awaited) sees the rest. */
	__atomic_store_n(&bf->request_id, b->request_id, __ATOMIC_RELEASE);
	/* Relaxed atomic: the Supervisor may read a reused Brick's deadline. */
	st_relaxed(&b->deadline_ns, dl);
	b->done = 0;
	b->refs = 2; /* the submitter's reaper + the queue/Labor side */
	/* Release: pairs with the acquire of state wherever a Brick is inspected. */
	st_release(&b->state, LUTF_BRICK_QUEUED);

	if (st == LUTF_FN_ACTIVE) {
		err = lutf_cart_enqueue(r, idx);
		if (err >= 0)
			lutf_supervisor_nudge(rt, (uint32_t)err, dl);
	} else {
		/* Paused, or resumed with held Bricks still going out: hold it so
		 * that order is kept. Re-read under the lock. */
		pthread_mutex_lock(&rt->lock);
		st = ld_seqcst(&rt->fns[id].state);
		if (ld_relaxed(&rt->fns[id].gen) != gen || !live(st)) {
			err = -ENOENT;
		} else if (st == LUTF_FN_ACTIVE) {
			err = lutf_cart_enqueue(r, idx);
		} else if (rt->fns[id].n_held >= cfg->hold_max) {
			err = -EBUSY;
		} else {
			struct lutf_fn_local *f = &rt->fns[id];

			if (f->n_held == f->cap_held) {
				uint32_t cap = f->cap_held ? f->cap_held * 2 : 16;
				uint32_t *p = realloc(f->held, cap * sizeof(*p));

				if (!p) {
					pthread_mutex_unlock(&rt->lock);
					err = -EAGAIN;
					goto undo;
				}
				f->held = p;
				f->cap_held = cap;
			}
			f->held[f->n_held++] = idx;
			__atomic_add_fetch(&rt->n_held, 1, __ATOMIC_RELAXED);
			err = 0;
		}
		pthread_mutex_unlock(&rt->lock);
	}
	if (err < 0)
		goto undo;
	__atomic_add_fetch(&rt->n_submitted, 1, __ATOMIC_RELAXED);
	*out = b;
	return 0;
undo:
	/* Never published: this thread is its only owner. */
	st_relaxed(&bf->async, 0);
	b->refs = 1;
	lutf_brick_unref(r, b);
	return err;
}

static void reject(struct lutf_runtime *rt, int err, struct lutf_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = lutf_status_from_errno(err);
	snprintf(res->error, sizeof(res->error), "%s", lutf_status_str(res->status));
	__atomic_add_fetch(&rt->n_rejected, 1, __ATOMIC_RELAXED);
}

/* Answer a sync call without its Brick (which keeps running, or not, and
 * goes with its last reference). */
static int give_up(struct lutf_runtime *rt, struct lutf_brick *b, struct lutf_result *res,
		   uint32_t status, const char *msg)
{
	memset(res, 0, sizeof(*res));
	res->status = status;
	res->request_id = rt->bf[lutf_brick_index(&rt->r, b)].request_id;
	snprintf(res->error, sizeof(res->error), "%s", msg);
	__atomic_add_fetch(&rt->n_completed, 1, __ATOMIC_RELAXED);
	lutf_brick_unref(&rt->r, b);
	return 0;
}

int lutf_runtime_invoke(struct lutf_runtime *rt, uint32_t id, const struct lutf_request *req,
			struct lutf_result *res)
{
	struct lutf_brick *b;
	uint64_t from, dl;
	unsigned spins = 0;
	int err;

	if (!rt || !res)
		return -EINVAL;
	err = submit(rt, id, req, LUTF_CQ_SYNC, 0, &b);
	if (err == -EINVAL)
		return err;
	if (err) {
		reject(rt, err, res);
		return 0;
	}
	dl = ld_relaxed(&rt->bf[lutf_brick_index(&rt->r, b)].deadline_ns);
	/* Spin briefly: a Labor that is awake answers through memory. */
	from = lutf_now_ns();
	/* Acquire pairs with the release exchange in lutf_brick_post. */
	while (ld_acquire(&b->done) != 1) {
		uint32_t expect = 0;

		if (++spins & 63) {
			__builtin_ia32_pause();
			continue;
		}
		if (lutf_now_ns() - from < SYNC_SPIN_NS) {
			sched_yield(); /* the Labor may need this CPU */
			continue;
		}
		/* The Supervisor answers at the deadline; a done word still silent
		 * well after it, or holding no valid value, was rewritten by the
		 * worker: the front's own deadline answers. */
		if (dl && lutf_now_ns() > dl + SYNC_SLACK_NS)
			return give_up(rt, b, res, LUTF_STATUS_DEADLINE,
				       "deadline passed (no answer from the worker)");
		if (__atomic_compare_exchange_n(&b->done, &expect, 2, false, __ATOMIC_ACQUIRE,
						__ATOMIC_ACQUIRE) ||
		    expect == 2)
			lutf_futex_wait(&b->done, 2, rt->r.shared, SYNC_RECHECK_NS);
		else if (expect != 1) {
			lutf_front_fault(rt, LUTF_FAULT_RESULT);
			return give_up(rt, b, res, LUTF_STATUS_CRASHED,
				       "crashed (region fault: result bounds)");
		}
	}
	lutf_front_take_result(rt, b, res);
	return 0;
}

int lutf_runtime_submit(struct lutf_runtime *rt, uint32_t id, const struct lutf_request *req,
			uint64_t user_data)
{
	struct lutf_brick *b;
	int err;

	if (!rt)
		return -EINVAL;
	err = submit(rt, id, req, LUTF_CQ_ASYNC, user_data, &b);
	if (err && err != -EINVAL)
		__atomic_add_fetch(&rt->n_rejected, 1, __ATOMIC_RELAXED);
	return err;
}

void lutf_result_release(struct lutf_result *res)
{
	if (!res)
		return;
	free(res->output);
	res->output = NULL;
	res->output_len = 0;
}

int lutf_runtime_stats(struct lutf_runtime *rt, struct lutf_runtime_stats *st)
{
	struct lutf_region *r;

	if (!rt || !st)
		return -EINVAL;
	r = &rt->r;
	memset(st, 0, sizeof(*st));
	st->carts = r->cfg.carts;
	st->labors_max = r->cfg.labors_max;
	st->watch = lutf_supervisor_mode(rt->sup);
	for (uint32_t i = 0; i < r->cfg.labors_max; i++) {
		uint32_t s = ld_relaxed(&r->labors[i].state);

		st->labors += s != LUTF_LABOR_OFF;
		st->labors_parked += s == LUTF_LABOR_FREE;
	}
	for (uint32_t c = 0; c < r->cfg.carts; c++)
		st->queued += lutf_ring_count(&r->cart_q[c]);
	st->submitted = ld_relaxed(&rt->n_submitted);
	st->completed = ld_relaxed(&rt->n_completed);
	st->rejected = ld_relaxed(&rt->n_rejected);
	st->rebinds = ld_relaxed(&rt->n_rebinds);
	st->labor_grows = ld_relaxed(&rt->n_grows);
	st->labor_retires = ld_relaxed(&rt->n_retires);
	st->crashed = ld_relaxed(&rt->n_crashed);
	for (unsigned k = 1; k < LUTF_FAULT__COUNT; k++)
		st->region_faults += ld_relaxed(&r->faults[k]);
	st->deadlines = ld_relaxed(&rt->n_deadlines);
	st->held = ld_relaxed(&rt->n_held);
	lutf_supervisor_bpf_stats(rt, st);
	return 0;
}
