/* SPDX-License-Identifier: MIT */
/*
 * Control-plane calls (control socket only): deploy (deploy.c), pause,
 * resume, delete, list, status, stats, logs. Reads answer on the loop at
 * once; changes run as jobs of the tenant's lane (jobs.c). Invariant: a
 * change is acknowledged only after the registry holding it is on disk; a
 * change that cannot be saved is undone and answered NOT_PERSISTED.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isolation.h"
#include "keys.h"
#include "lutfd.h"

static void put_counter(struct lutf_buf *b, const char *name, uint64_t v)
{
	char buf[80];
	size_t n = strlen(name);

	if (n > sizeof(buf) - 9)
		n = sizeof(buf) - 9;
	memcpy(buf, name, n);
	buf[n] = 0;
	v = htole64(v);
	memcpy(buf + n + 1, &v, 8);
	lutf_tlv_put(b, LUTF_TAG_COUNTER, buf, n + 9);
}

/* PAUSE, RESUME and DELETE of a function, DELETE of a tenant: jobs of the
 * tenant's lane (jobs.c), acknowledged once the registry is saved. */
struct fn_job {
	struct lutfd_job j; /* first: jobs.c frees the whole */
	uint16_t op;
	char tenant[LUTFD_NAME], fn[LUTFD_NAME];
	bool force; /* DELETE of a tenant: its functions too */
	struct lutfd_tenant *t;
	struct lutfd_fn *f;
	bool was_paused;
	uint32_t status;
	char msg[300];
};

/* Main: find what the call names; status and msg when absent. */
static void fj_lookup(void *arg)
{
	struct fn_job *x = arg;

	x->t = lutfd_tenant_find(x->tenant);
	if (x->t && x->t->removing)
		x->t = NULL;
	if (!x->fn[0]) {
		if (!x->t) {
			x->status = LUTF_STATUS_UNKNOWN_FUNCTION;
			snprintf(x->msg, sizeof(x->msg), "no tenant %s", x->tenant);
		} else if (x->t->nfns && !x->force) {
			x->status = LUTF_STATUS_MALFORMED;
			snprintf(x->msg, sizeof(x->msg),
				 "tenant %s has %zu functions: delete them first, or use --force",
				 x->tenant, x->t->nfns);
		}
		return;
	}
	x->f = x->t ? lutfd_fn_find(x->t, x->fn) : NULL;
	if (!x->f || x->f->deleting) {
		x->status = LUTF_STATUS_UNKNOWN_FUNCTION;
		snprintf(x->msg, sizeof(x->msg), "no function %s/%s", x->tenant, x->fn);
		return;
	}
	x->was_paused = x->f->paused;
}

static void fj_apply(void *arg)
{
	struct fn_job *x = arg;

	if (!x->fn[0])
		x->t->removing = true;
	else if (x->op == LUTF_OP_DELETE)
		x->f->deleting = true;
	else
		x->f->paused = x->op == LUTF_OP_PAUSE;
}

static void fj_undo(void *arg)
{
	struct fn_job *x = arg;

	if (!x->fn[0])
		x->t->removing = false;
	else if (x->op == LUTF_OP_DELETE)
		x->f->deleting = false;
	else
		x->f->paused = x->was_paused;
}

/* Main: a removed tenant's API keys and public apps go too (keys.c). */
static void fj_forget_keys(void *arg)
{
	struct fn_job *x = arg;
	int err = lutfd_keys_forget_tenant(x->tenant);

	if (err)
		lutfd_log("tenant %s: its API keys not forgotten: %s", x->tenant, strerror(-err));
}

/* Main: saved; the engine follows. */
static void fj_done(void *arg)
{
	struct fn_job *x = arg;
	struct lutfd_tenant *t = x->t;
	struct lutfd_fn *f = x->f;
	int err = 0;

	if (!x->fn[0]) {
		/* Tenant removal: its functions go first (held calls: DELETED),
		 * so no new call reaches it. */
		while (t->nfns) {
			f = t->fns[t->nfns - 1];
			lutfd_fn_engine_all(t, f, lutf_runtime_delete); /* every worker */
			lutfd_fn_remove(t, f);
		}
		t->napps = 0;
		lutfd_workers_sync(t);
		return;
	}
	if (x->op == LUTF_OP_DELETE) {
		char app[LUTFD_NAME];
		bool used = false;

		err = lutfd_fn_engine_all(t, f, lutf_runtime_delete); /* every worker */
		LUTFD_COPY(app, f->app);
		lutfd_fn_remove(t, f);
		for (size_t i = 0; i < t->nfns; i++)
			used |= !strcmp(t->fns[i]->app, app);
		if (!used) {
			struct lutfd_app *a = lutfd_app_find(t, app);

			if (a)
				*a = t->apps[--t->napps];
		}
		lutfd_workers_sync(t);
	} else {
		/* Every worker holds (or releases) its calls of f. */
		err = lutfd_fn_engine_all(
		    t, f, x->op == LUTF_OP_PAUSE ? lutf_runtime_pause : lutf_runtime_resume);
	}
	if (err)
		lutfd_log("tenant %s: %s %s: engine: %s", t->name,
			  x->op == LUTF_OP_DELETE  ? "delete"
			  : x->op == LUTF_OP_PAUSE ? "pause"
						   : "resume",
			  x->fn, strerror(-err));
}

static void fj_reply(void *arg)
{
	struct fn_job *x = arg;

	lutfd_job_reply_status(&x->j, x->status, x->status ? x->msg : NULL);
}

struct nfns {
	struct lutfd_tenant *t;
	size_t n;
};

static void nfns_get(void *arg)
{
	struct nfns *c = arg;

	c->n = c->t->nfns;
}

static void fn_job_run(struct lutfd_job *j)
{
	struct fn_job *x = (struct fn_job *)j;
	int err;

	lutfd_main_call(fj_lookup, x);
	if (x->status)
		goto reply;
	if (x->fn[0] && x->op != LUTF_OP_DELETE && x->was_paused == (x->op == LUTF_OP_PAUSE))
		goto reply; /* already so, on disk too */
	err = lutfd_state_commit(fj_apply, fj_undo, x);
	if (err) {
		x->status = LUTF_STATUS_NOT_PERSISTED;
		snprintf(x->msg, sizeof(x->msg),
			 "registry not saved in %.180s: %s; nothing changed", g_cfg.state_dir,
			 strerror(-err));
		goto reply;
	}
	lutfd_main_call(fj_done, x);
	if (!x->fn[0]) {
		lutfd_main_call(fj_forget_keys, x);
		err = lutfd_tenant_remove_sync(x->t);
		if (err)
			lutfd_log("tenant %s: removed from the registry, but not all stopped: %s",
				  x->tenant, strerror(-err));
	} else if (x->op == LUTF_OP_DELETE) {
		struct nfns c = {.t = x->t};

		lutfd_main_call(nfns_get, &c);
		if (!c.n) /* no functions, no worker */
			lutfd_worker_stop_sync(x->t, 2000);
	}
reply:
	lutfd_main_call(fj_reply, x);
}

static void fn_job_refuse(struct lutfd_job *j, uint32_t status, const char *msg)
{
	lutfd_job_reply_status(j, status, msg);
}

static void set_state(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	struct fn_job *x = calloc(1, sizeof(*x));
	struct lutf_tlv_iter it;
	struct lutf_tlv tl;
	bool ok = true;
	uint32_t force = 0;
	int err;

	if (!x) {
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_OVERLOADED, "out of memory");
		return;
	}
	lutf_tlv_iter_init(&it, payload, h->length);
	while (ok && lutf_tlv_next(&it, &tl)) {
		if (tl.tag == LUTF_TAG_TENANT)
			ok = lutf_tlv_str(&tl, x->tenant, sizeof(x->tenant));
		else if (tl.tag == LUTF_TAG_FUNCTION)
			ok = lutf_tlv_str(&tl, x->fn, sizeof(x->fn));
		else if (tl.tag == LUTF_TAG_FORCE)
			ok = lutf_tlv_u32(&tl, &force);
	}
	/* DELETE with a TENANT and no FUNCTION removes the tenant. */
	if (!ok || it.bad || !x->tenant[0] || (!x->fn[0] && h->opcode != LUTF_OP_DELETE)) {
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_MALFORMED,
				       h->opcode == LUTF_OP_DELETE
					   ? "needs TENANT (and FUNCTION, or FORCE)"
					   : "needs TENANT and FUNCTION");
		free(x);
		return;
	}
	x->op = h->opcode;
	x->force = force != 0;
	x->j.run = fn_job_run;
	x->j.refuse = fn_job_refuse;
	lutfd_job_hold(&x->j, c, h->request_id);
	err = lutfd_job_submit(x->tenant, &x->j);
	if (err) {
		lutfd_job_reply_status(
		    &x->j, err == -ESHUTDOWN ? LUTF_STATUS_SHUTTING_DOWN : LUTF_STATUS_OVERLOADED,
		    strerror(-err));
		free(x);
	}
}

static void tenant_filter(const struct lutf_wire_hdr *h, const uint8_t *payload, char *tenant,
			  uint32_t *limit)
{
	struct lutf_tlv_iter it;
	struct lutf_tlv tl;

	lutf_tlv_iter_init(&it, payload, h->length);
	while (lutf_tlv_next(&it, &tl)) {
		if (tl.tag == LUTF_TAG_TENANT && !lutf_tlv_str(&tl, tenant, LUTFD_NAME))
			tenant[0] = 0;
		else if (tl.tag == LUTF_TAG_LIMIT && limit)
			lutf_tlv_u32(&tl, limit);
	}
}

static void list(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	char only[LUTFD_NAME] = "";
	struct lutf_buf b;
	size_t fo;

	tenant_filter(h, payload, only, NULL);
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_REPLY, LUTF_STATUS_OK, h->request_id);
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		if (t->primary || (only[0] && strcmp(only, t->name)))
			continue;
		for (size_t j = 0; j < t->nfns; j++) {
			struct lutfd_fn *f = t->fns[j];
			struct lutfd_app *a = lutfd_app_find(t, f->app);
			size_t r = lutf_tlv_begin(&b, LUTF_TAG_RECORD);

			lutf_tlv_put_str(&b, LUTF_TAG_TENANT, t->name);
			lutf_tlv_put_str(&b, LUTF_TAG_APP, f->app);
			lutf_tlv_put_str(&b, LUTF_TAG_FUNCTION, f->name);
			lutf_tlv_put_str(&b, LUTF_TAG_STATE, f->paused ? "paused" : "active");
			lutf_tlv_put_u64(&b, LUTF_TAG_VERSION, a ? a->version : 0);
			/* The tenant's tier: what its functions run under. */
			lutf_tlv_put_str(&b, LUTF_TAG_TIER, t->tier);
			put_counter(&b, "workers", lutfd_workers_want(t));
			lutf_tlv_end(&b, r);
		}
	}
	lutf_frame_end(&b, fo);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
}

/* workers = N in a tenant's status record: N, how many are up, and per
 * worker its pid, restarts, calls answered and calls in flight. */
static void workers_status(struct lutf_buf *b, const struct lutfd_tenant *t)
{
	char key[40];
	uint32_t up = 0;

	put_counter(b, "workers", lutfd_workers_want(t));
	for (uint32_t w = 0; w < t->nwk; w++)
		up += t->wk[w]->up;
	put_counter(b, "workers_up", up);
	for (uint32_t w = 0; w < t->nwk; w++) {
		const struct lutfd_tenant *s = t->wk[w];

		snprintf(key, sizeof(key), "worker%u_pid", w);
		put_counter(b, key, (uint64_t)(s->pid > 0 ? s->pid : 0));
		snprintf(key, sizeof(key), "worker%u_restarts", w);
		put_counter(b, key, s->restarts);
		snprintf(key, sizeof(key), "worker%u_calls", w);
		put_counter(b, key, s->calls);
		snprintf(key, sizeof(key), "worker%u_inflight", w);
		put_counter(b, key, s->inflight);
	}
}

static void status(struct lutf_conn *c, const struct lutf_wire_hdr *h)
{
	struct lutf_buf b;
	char text[64], iso[300], big[400], desc[300], cpu[16];
	struct lutfd_cg_limits lim;
	uint32_t st_code, st_detail;
	size_t fo;

	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_REPLY, LUTF_STATUS_OK, h->request_id);
	put_counter(&b, "pid", (uint64_t)getpid());
	put_counter(&b, "tenants", lutfd_tenants_count());
	put_counter(&b, "connections", lutf_srv_nconns(g_srv));
	put_counter(&b, "inflight", lutfd_inflight());
	lutfd_ingress_status(&b); /* main.c: TEXT ingress=, tcp=; ingress COUNTERs */
	lutfd_cg_describe(&g_cg, iso, sizeof(iso));
	snprintf(big, sizeof(big), "isolation=%s; uid_range %s; default tier %s; sigsys %s", iso,
		 g_cfg.uid_range, g_cfg.default_tier, lutfd_sigsys_mode());
	lutf_tlv_put_str(&b, LUTF_TAG_TEXT, big);
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];
		struct lutf_runtime_stats st = {0};
		size_t r;

		if (t->primary)
			continue; /* in worker 0's record (workers_status) */
		r = lutf_tlv_begin(&b, LUTF_TAG_RECORD);
		if (t->rt)
			lutf_runtime_stats(t->rt, &st);
		lutf_tlv_put_str(&b, LUTF_TAG_TENANT, t->name);
		lutf_tlv_put_str(&b, LUTF_TAG_TIER, t->tier);
		lutf_tlv_put_str(&b, LUTF_TAG_STATE,
				 t->up ? "up"
				 : lutfd_fault_refuse(t, &st_code, &st_detail, big, sizeof(big))
				     ? "crash-loop"
				 : t->restart_at_ms ? "backoff"
						    : "starting");
		snprintf(text, sizeof(text), "watch=%s", lutf_watch_mode_str(st.watch));
		lutf_tlv_put_str(&b, LUTF_TAG_TEXT, text);
		lutfd_tenant_limits(t, &lim);
		if (lim.cpu_pct)
			snprintf(cpu, sizeof(cpu), "%u%%", lim.cpu_pct);
		else
			snprintf(cpu, sizeof(cpu), "unlimited");
		snprintf(big, sizeof(big), "limits=memory %llu MiB, pids %u, cpu %s (%s)",
			 (unsigned long long)(lim.memory_bytes >> 20), lim.pids_max, cpu,
			 g_cg.mode == LUTFD_CG_NONE ? "rlimits only" : iso);
		lutf_tlv_put_str(&b, LUTF_TAG_TEXT, big);
		lutfd_fault_describe(t, desc, sizeof(desc));
		snprintf(big, sizeof(big), "faults=%s", desc);
		lutf_tlv_put_str(&b, LUTF_TAG_TEXT, big);
		put_counter(&b, "uid", t->uid);
		put_counter(&b, "worker_pid", (uint64_t)t->pid);
		put_counter(&b, "restarts", t->restarts);
		put_counter(&b, "backoff_ms", t->backoff_ms);
		put_counter(&b, "failed_starts_in_row", t->fails_in_row);
		put_counter(&b, "functions", t->nfns);
		put_counter(&b, "carts", st.carts);
		put_counter(&b, "labors", st.labors);
		put_counter(&b, "labors_max", st.labors_max);
		put_counter(&b, "labors_parked", st.labors_parked);
		put_counter(&b, "labors_blocked", st.labors_blocked);
		put_counter(&b, "inflight", lutfd_workers_inflight(t, NULL)); /* all workers */
		put_counter(&b, "queued", st.queued);
		put_counter(&b, "log_dropped_bytes", t->log_dropped); /* tenant_log.c */
		put_counter(&b, "held", st.held);
		put_counter(&b, "rebinds", st.rebinds);
		put_counter(&b, "submitted", st.submitted);
		put_counter(&b, "completed", st.completed);
		put_counter(&b, "rejected", st.rejected);
		put_counter(&b, "deadlines", st.deadlines);
		put_counter(&b, "bpf_drops", st.bpf_drops);
		workers_status(&b, t);
		lutf_tlv_end(&b, r);
	}
	lutf_frame_end(&b, fo);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
}

static const char *status_key(uint32_t s)
{
	static const char *const names[] = {
#define KEY(name, value, http, text) [value] = #name,
	    LUTF_STATUS_TABLE(KEY)
#undef KEY
	};

	return s < sizeof(names) / sizeof(names[0]) && names[s] ? names[s] : "UNKNOWN";
}

static void stats(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	char only[LUTFD_NAME] = "";
	struct lutf_buf b;
	size_t fo;

	tenant_filter(h, payload, only, NULL);
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_REPLY, LUTF_STATUS_OK, h->request_id);
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		if (t->primary || (only[0] && strcmp(only, t->name)) || !t->slot_stats)
			continue;
		for (size_t j = 0; j < t->nfns; j++) {
			struct lutfd_fn *f = t->fns[j];
			uint64_t sum[LUTF_STATUS__COUNT];
			const uint64_t *s = f->bound ? sum : NULL;
			size_t r = lutf_tlv_begin(&b, LUTF_TAG_RECORD);
			uint64_t all = 0;
			char key[48];

			lutfd_workers_fn_stats(t, f, sum); /* over all its workers */
			for (uint32_t k = 0; s && k < LUTF_STATUS__COUNT; k++)
				all += s[k];
			lutf_tlv_put_str(&b, LUTF_TAG_TENANT, t->name);
			lutf_tlv_put_str(&b, LUTF_TAG_APP, f->app);
			lutf_tlv_put_str(&b, LUTF_TAG_FUNCTION, f->name);
			put_counter(&b, "invocations", all);
			put_counter(&b, "errors", s ? all - s[LUTF_STATUS_OK] : 0);
			for (uint32_t k = 0; s && k < LUTF_STATUS__COUNT; k++) {
				size_t kl;

				if (!s[k])
					continue;
				kl = (size_t)snprintf(key, sizeof(key), "%s", status_key(k));
				for (size_t x = 0; x < kl; x++)
					key[x] = (char)(key[x] >= 'A' && key[x] <= 'Z' ? key[x] + 32
										       : key[x]);
				put_counter(&b, key, s[k]);
			}
			lutf_tlv_end(&b, r);
		}
	}
	lutf_frame_end(&b, fo);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
}

static void logs(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	char tenant[LUTFD_NAME] = "", msg[100];
	uint32_t limit = 100, from;
	struct lutfd_tenant *t;
	struct lutf_buf b;
	size_t fo;

	tenant_filter(h, payload, tenant, &limit);
	t = tenant[0] ? lutfd_tenant_find(tenant) : NULL;
	if (!t) {
		snprintf(msg, sizeof(msg), "no tenant '%s'", tenant);
		lutf_conn_reply_status(
		    c, h->request_id,
		    tenant[0] ? LUTF_STATUS_UNKNOWN_FUNCTION : LUTF_STATUS_MALFORMED, msg);
		return;
	}
	if (limit > t->log_count)
		limit = t->log_count;
	from = t->log_count - limit;
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_REPLY, LUTF_STATUS_OK, h->request_id);
	for (uint32_t i = from; i < t->log_count; i++)
		lutf_tlv_put_str(&b, LUTF_TAG_TEXT, t->log[(t->log_head + i) % g_cfg.log_lines]);
	lutf_frame_end(&b, fo);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
}

void lutfd_control(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	switch (h->opcode) {
	case LUTF_OP_DEPLOY:
		lutfd_deploy(c, h, payload); /* deploy.c */
		break;
	case LUTF_OP_PAUSE:
	case LUTF_OP_RESUME:
	case LUTF_OP_DELETE:
		set_state(c, h, payload);
		break;
	case LUTF_OP_LIST:
		list(c, h, payload);
		break;
	case LUTF_OP_STATUS:
		status(c, h);
		break;
	case LUTF_OP_STATS:
		stats(c, h, payload);
		break;
	case LUTF_OP_LOGS:
		logs(c, h, payload);
		break;
	case LUTF_OP_KEY_CREATE:
	case LUTF_OP_KEY_LIST:
	case LUTF_OP_KEY_REVOKE:
		lutfd_keys_control(c, h, payload); /* keys.c */
		break;
	default:
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_MALFORMED, "unknown opcode");
		break;
	}
}
