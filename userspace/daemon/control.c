/* SPDX-License-Identifier: MIT */
/*
 * Control-plane calls (control socket only): deploy, pause, resume, delete,
 * list, status, stats, logs. They run on the main thread. Invariant: the
 * registry on disk is saved after every change that succeeded in the
 * running tenant, so a restart brings back what the last reply promised.
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

#define MAX_EXPORTS 64

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

static bool symbol_valid(const char *s)
{
	if (!*s || strlen(s) > 127 || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static void fns_free(struct lutfd_fn **fns, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; fns[i]->config && fns[i]->config[k]; k++)
			free(fns[i]->config[k]);
		free(fns[i]->config);
		free(fns[i]);
	}
}

/* "function\0key\0value" onto the matching export. Returns false if bad. */
static bool config_field(struct lutfd_fn **fns, size_t n, const struct lutf_tlv *tl)
{
	const char *s = (const char *)tl->val, *end = s + tl->len, *k, *v;
	char **p;

	k = memchr(s, 0, tl->len);
	if (!k)
		return false;
	v = memchr(k + 1, 0, (size_t)(end - k - 1));
	if (!v || memchr(v + 1, 0, (size_t)(end - v - 1)) || v == k + 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct lutfd_fn *f = fns[i];

		if (strcmp(f->name, s))
			continue;
		p = realloc(f->config, (2 * f->nconfig + 3) * sizeof(*p));
		if (!p)
			return false;
		f->config = p;
		p[2 * f->nconfig] = strndup(k + 1, (size_t)(v - k - 1));
		p[2 * f->nconfig + 1] = strndup(v + 1, (size_t)(end - v - 1));
		p[2 * f->nconfig + 2] = NULL;
		f->nconfig++;
		return p[2 * f->nconfig - 2] && p[2 * f->nconfig - 1];
	}
	return false; /* configuration for a function this deploy does not export */
}

static void deploy(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	char tenant[LUTFD_NAME] = "", app[LUTFD_NAME] = "", tier[32] = "", msg[400] = "";
	char path[PATH_MAX];
	struct lutfd_fn *fns[MAX_EXPORTS];
	struct lutfd_app na = {0}, *a;
	struct lutf_tlv_iter it;
	struct lutf_tlv tl;
	struct lutfd_tenant *t;
	const uint8_t *so = NULL;
	size_t so_len = 0, n = 0;
	uint32_t status = LUTF_STATUS_MALFORMED, pub = 0;
	bool ok = true, was_pub = false;
	struct lutf_buf b;
	size_t fo;
	int err;

	lutf_tlv_iter_init(&it, payload, h->length);
	while (ok && lutf_tlv_next(&it, &tl)) {
		switch (tl.tag) {
		case LUTF_TAG_TENANT:
			ok = lutf_tlv_str(&tl, tenant, sizeof(tenant));
			break;
		case LUTF_TAG_APP:
			ok = lutf_tlv_str(&tl, app, sizeof(app));
			break;
		case LUTF_TAG_SO:
			so = tl.val;
			so_len = tl.len;
			break;
		case LUTF_TAG_TIER:
			ok = lutf_tlv_str(&tl, tier, sizeof(tier));
			break;
		case LUTF_TAG_TIMEOUT_MS:
			ok = lutf_tlv_u32(&tl, &na.timeout_ms);
			break;
		case LUTF_TAG_MEMORY_MB:
			ok = lutf_tlv_u32(&tl, &na.memory_mb);
			break;
		case LUTF_TAG_MAX_CONCURRENCY:
			ok = lutf_tlv_u32(&tl, &na.max_concurrency);
			break;
		case LUTF_TAG_PUBLIC:
			ok = lutf_tlv_u32(&tl, &pub);
			break;
		case LUTF_TAG_EXPORT: {
			char ex[LUTFD_NAME + 130], *eq;
			struct lutfd_fn *f;

			ok = n < MAX_EXPORTS && lutf_tlv_str(&tl, ex, sizeof(ex));
			eq = ok ? strchr(ex, '=') : NULL;
			if (!eq) {
				snprintf(msg, sizeof(msg), "EXPORT must be \"function=symbol\"");
				ok = false;
				break;
			}
			*eq = 0;
			if (!lutf_name_valid(ex) || !symbol_valid(eq + 1)) {
				snprintf(msg, sizeof(msg), "bad export '%s=%s'", ex, eq + 1);
				ok = false;
				break;
			}
			for (size_t i = 0; i < n; i++)
				if (!strcmp(fns[i]->name, ex)) {
					snprintf(msg, sizeof(msg), "function '%s' exported twice",
						 ex);
					ok = false;
				}
			f = ok ? calloc(1, sizeof(*f)) : NULL;
			if (!f) {
				ok = false;
				break;
			}
			LUTFD_COPY(f->name, ex);
			LUTFD_COPY(f->symbol, eq + 1);
			fns[n++] = f;
			break;
		}
		default:
			break;
		}
	}
	/* CONFIG fields may come before their EXPORT: a second pass. */
	lutf_tlv_iter_init(&it, payload, h->length);
	while (ok && lutf_tlv_next(&it, &tl))
		if (tl.tag == LUTF_TAG_CONFIG && !(ok = config_field(fns, n, &tl)))
			snprintf(msg, sizeof(msg),
				 "CONFIG must be \"function\\0key\\0value\" "
				 "for an exported function");
	if (!ok || it.bad)
		goto fail;
	if (!lutf_name_valid(tenant) || !lutf_name_valid(app)) {
		snprintf(msg, sizeof(msg),
			 "bad tenant or app name (want [a-z0-9][a-z0-9_-]{0,62})");
		goto fail;
	}
	if (!so_len || !n) {
		snprintf(msg, sizeof(msg), "deploy needs SO bytes and at least one EXPORT");
		goto fail;
	}
	if (tier[0] && !lutfd_tier_valid(tier) &&
	    !(g_cfg.allow_tier_none && !strcmp(tier, "none"))) {
		snprintf(msg, sizeof(msg), "unknown tier '%s' (pure, basic, service, compat)",
			 tier);
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		LUTFD_COPY(fns[i]->app, app);
		if (strlen(app) + 1 + strlen(fns[i]->name) > LUTF_NAME_MAX) {
			snprintf(msg, sizeof(msg),
				 "app and function names together are over %d bytes",
				 LUTF_NAME_MAX - 1);
			goto fail;
		}
	}
	t = lutfd_tenant_find(tenant);
	if (!t && g_state.n >= g_cfg.max_tenants) {
		status = LUTF_STATUS_OVERLOADED;
		snprintf(msg, sizeof(msg), "at most %u tenants", g_cfg.max_tenants);
		goto fail;
	}
	for (size_t i = 0; t && i < n; i++) {
		struct lutfd_fn *old = lutfd_fn_find(t, fns[i]->name);

		if (old && strcmp(old->app, app)) {
			snprintf(msg, sizeof(msg),
				 "function '%s' belongs to app '%s' of tenant '%s'", old->name,
				 old->app, tenant);
			goto fail;
		}
	}
	t = lutfd_tenant_get(tenant);
	if (!t) {
		status = LUTF_STATUS_OVERLOADED;
		snprintf(msg, sizeof(msg), "cannot add tenant");
		goto fail;
	}
	/* A new tenant starts in the tier its first deploy names. */
	if (!t->rt && !t->tier[0])
		LUTFD_COPY(t->tier, tier[0] ? tier : g_cfg.default_tier);
	if (!t->rt && (err = lutfd_tenant_start(t))) {
		status = LUTF_STATUS_OVERLOADED;
		if (err == -ENOSPC)
			snprintf(msg, sizeof(msg),
				 "cannot start tenant: no free uid in uid_range %s",
				 g_cfg.uid_range);
		else
			snprintf(msg, sizeof(msg), "cannot start tenant: %s", strerror(-err));
		goto fail;
	}
	if (!t->up) {
		status = LUTF_STATUS_OVERLOADED;
		snprintf(msg, sizeof(msg), "the worker of tenant %s is restarting; retry", tenant);
		goto fail;
	}
	a = lutfd_app_find(t, app);
	na.version = a ? a->version + 1 : 1;
	for (int tries = 0;; tries++) {
		err = lutfd_store_so(tenant, app, na.version, so, so_len, path, sizeof(path));
		if (err != -EEXIST || tries > 1000)
			break;
		na.version++; /* left by a deploy that did not finish */
	}
	if (err) {
		status = LUTF_STATUS_OVERLOADED;
		snprintf(msg, sizeof(msg), "cannot store the app: %s", strerror(-err));
		goto fail;
	}
	err = lutfd_tenant_dirs(t); /* the new file and folders: the tenant's gid may read */
	if (err)
		lutfd_log("tenant %s: app folder not handed over: %s", tenant, strerror(-err));
	/* --public (keys.c) is saved before the load, undone if it fails. */
	was_pub = lutfd_keys_public(tenant, app);
	if (lutfd_keys_set_public(tenant, app, pub != 0, msg, sizeof(msg))) {
		unlink(path);
		status = LUTF_STATUS_FUNCTION_ERROR;
		goto fail;
	}
	err = lutfd_tenant_load(t, app, na.version, fns, n, msg, sizeof(msg));
	if (err) {
		char why[sizeof(msg)], ignored[8];

		lutfd_keys_set_public(tenant, app, was_pub, ignored, sizeof(ignored));
		unlink(path);
		status = err == -EPIPE ? LUTF_STATUS_CRASHED : LUTF_STATUS_FUNCTION_ERROR;
		if (err == -EPIPE) {
			/* Killed while loading (a constructor crashed, or the tier
			 * refused a syscall the app's load makes): say which. */
			if (lutfd_tenant_wait_death(t, msg, sizeof(msg)))
				status = t->last_death.status;
		}
		memcpy(why, msg, sizeof(why));
		snprintf(msg, sizeof(msg), "app %s does not load: %.300s", app, why);
		goto fail;
	}
	/* Loaded and bound in the worker: commit. */
	LUTFD_COPY(na.name, app);
	LUTFD_COPY(na.tier, tier);
	if (a) {
		*a = na;
	} else {
		struct lutfd_app *p = realloc(t->apps, (t->napps + 1) * sizeof(*p));

		if (!p)
			goto oom;
		t->apps = p;
		t->apps[t->napps++] = na;
	}
	for (size_t i = 0; i < t->nfns;) {
		struct lutfd_fn *f = t->fns[i];
		bool kept = false;

		for (size_t j = 0; j < n; j++)
			kept |= !strcmp(fns[j]->name, f->name);
		if (strcmp(f->app, app) || kept) {
			i++;
			continue;
		}
		if (f->bound)
			lutf_runtime_delete(t->rt, f->slot);
		lutfd_fn_remove(t, f); /* not exported any more */
	}
	for (size_t i = 0; i < n; i++) {
		struct lutfd_fn *old = lutfd_fn_find(t, fns[i]->name), **p;

		if (old) {
			fns[i]->paused = old->paused;
			lutfd_fn_remove(t, old);
		}
		p = realloc(t->fns, (t->nfns + 1) * sizeof(*p));
		if (!p)
			goto oom;
		t->fns = p;
		t->fns[t->nfns++] = fns[i];
		err = lutfd_fn_bind(t, fns[i], na.timeout_ms);
		if (err)
			lutfd_log("tenant %s: cannot bind %s: %s", tenant, fns[i]->name,
				  strerror(-err));
		fns[i] = NULL;
	}
	/* The tenant's tier is the one its last deploy named (docs/daemon.md):
	 * another tier recycles the worker, whose successor applies it. */
	if (tier[0] && strcmp(tier, t->tier)) {
		lutfd_log("tenant %s: tier %s -> %s; recycling its worker", tenant, t->tier, tier);
		LUTFD_COPY(t->tier, tier);
		lutfd_tenant_recycle(t);
	}
	if (g_cg.mode != LUTFD_CG_NONE) {
		struct lutfd_cg_limits lim;

		lutfd_tenant_limits(t, &lim); /* MEMORY_MB may have changed */
		if ((err = lutfd_cg_tenant(&g_cg, tenant, &lim)))
			lutfd_log("tenant %s: cgroup limits not set: %s", tenant, strerror(-err));
	}
	err = lutfd_state_save();
	if (err)
		lutfd_log("registry not saved: %s", strerror(-err));
	lutfd_log("deployed %s/%s v%llu (%zu functions, tier %s)", tenant, app,
		  (unsigned long long)na.version, n, t->tier);
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_REPLY, LUTF_STATUS_OK, h->request_id);
	lutf_tlv_put_u64(&b, LUTF_TAG_VERSION, na.version);
	for (size_t i = 0; i < t->nfns; i++) {
		char url[PATH_MAX + 160];

		if (strcmp(t->fns[i]->app, app))
			continue;
		snprintf(url, sizeof(url), "unix://%s/lutf.sock#%s/%s", g_cfg.runtime_dir, tenant,
			 t->fns[i]->name);
		lutf_tlv_put_str(&b, LUTF_TAG_URL, url);
		if (lutfd_http_addr()[0]) { /* the HTTP gateway's (http_gw.c) */
			snprintf(url, sizeof(url), "http://%s/fn/%s/%s", lutfd_http_addr(), tenant,
				 t->fns[i]->name);
			lutf_tlv_put_str(&b, LUTF_TAG_URL, url);
		}
	}
	lutf_frame_end(&b, fo);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
	return;
oom:
	snprintf(msg, sizeof(msg), "out of memory");
	status = LUTF_STATUS_OVERLOADED;
fail:
	for (size_t i = 0; i < n; i++)
		if (fns[i])
			fns_free(&fns[i], 1);
	lutf_conn_reply_status(c, h->request_id, status, msg[0] ? msg : "bad deploy request");
}

/* TENANT and FUNCTION of a request; replies and returns NULL when absent. */
static struct lutfd_fn *addressed(struct lutf_conn *c, const struct lutf_wire_hdr *h,
				  const uint8_t *payload, struct lutfd_tenant **tp)
{
	char tenant[LUTFD_NAME] = "", fn[LUTFD_NAME] = "", msg[160];
	struct lutf_tlv_iter it;
	struct lutf_tlv tl;
	struct lutfd_tenant *t;
	struct lutfd_fn *f;
	bool ok = true;

	lutf_tlv_iter_init(&it, payload, h->length);
	while (ok && lutf_tlv_next(&it, &tl)) {
		if (tl.tag == LUTF_TAG_TENANT)
			ok = lutf_tlv_str(&tl, tenant, sizeof(tenant));
		else if (tl.tag == LUTF_TAG_FUNCTION)
			ok = lutf_tlv_str(&tl, fn, sizeof(fn));
	}
	if (!ok || it.bad || !tenant[0] || !fn[0]) {
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_MALFORMED,
				       "needs TENANT and FUNCTION");
		return NULL;
	}
	t = lutfd_tenant_find(tenant);
	f = t ? lutfd_fn_find(t, fn) : NULL;
	if (!f) {
		snprintf(msg, sizeof(msg), "no function %s/%s", tenant, fn);
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_UNKNOWN_FUNCTION, msg);
		return NULL;
	}
	*tp = t;
	return f;
}

static void set_state(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	struct lutfd_tenant *t;
	struct lutfd_fn *f = addressed(c, h, payload, &t);
	int err = 0;

	if (!f)
		return;
	if (h->opcode == LUTF_OP_DELETE) {
		char app[LUTFD_NAME];
		bool used = false;

		if (f->bound && t->rt)
			err = lutf_runtime_delete(t->rt, f->slot);
		LUTFD_COPY(app, f->app);
		lutfd_fn_remove(t, f);
		for (size_t i = 0; i < t->nfns; i++)
			used |= !strcmp(t->fns[i]->app, app);
		if (!used) {
			struct lutfd_app *a = lutfd_app_find(t, app);

			if (a) {
				*a = t->apps[--t->napps];
			}
		}
	} else {
		bool pause = h->opcode == LUTF_OP_PAUSE;

		if (f->paused != pause && f->bound && t->rt)
			err = pause ? lutf_runtime_pause(t->rt, f->slot)
				    : lutf_runtime_resume(t->rt, f->slot);
		if (err == -EALREADY)
			err = 0;
		if (!err)
			f->paused = pause;
	}
	if (err) {
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_UNKNOWN_FUNCTION,
				       strerror(-err));
		return;
	}
	err = lutfd_state_save();
	if (err)
		lutfd_log("registry not saved: %s", strerror(-err));
	lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_OK, NULL);
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

		if (only[0] && strcmp(only, t->name))
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
			lutf_tlv_end(&b, r);
		}
	}
	lutf_frame_end(&b, fo);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
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
	put_counter(&b, "tenants", g_state.n);
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
		size_t r = lutf_tlv_begin(&b, LUTF_TAG_RECORD);

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
		put_counter(&b, "inflight", t->inflight);
		put_counter(&b, "queued", st.queued);
		put_counter(&b, "held", st.held);
		put_counter(&b, "rebinds", st.rebinds);
		put_counter(&b, "submitted", st.submitted);
		put_counter(&b, "completed", st.completed);
		put_counter(&b, "rejected", st.rejected);
		put_counter(&b, "deadlines", st.deadlines);
		put_counter(&b, "bpf_drops", st.bpf_drops);
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

		if ((only[0] && strcmp(only, t->name)) || !t->slot_stats)
			continue;
		for (size_t j = 0; j < t->nfns; j++) {
			struct lutfd_fn *f = t->fns[j];
			const uint64_t *s = f->bound ? t->slot_stats[f->slot] : NULL;
			size_t r = lutf_tlv_begin(&b, LUTF_TAG_RECORD);
			uint64_t all = 0;
			char key[48];

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
		deploy(c, h, payload);
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
