/* SPDX-License-Identifier: MIT */
/*
 * DEPLOY, in five steps: parse the frame into a request, validate it (both
 * on the loop, pure), then as a job of the tenant's lane (jobs.c): store the
 * app file, load it into the worker (recycled first when the tier changes),
 * commit (records, registry saved durably, then the reply). Invariant: OK is
 * sent only after the registry naming the new version is on disk; any failure
 * undoes the change in memory, and a failed first deploy leaves no tenant.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isolation.h"
#include "keys.h"
#include "lutfd.h"

#define MAX_EXPORTS 64 /* EXPORT fields of one deploy */

struct deploy_req {
	char tenant[LUTFD_NAME], app[LUTFD_NAME], tier[32];
	char kind[16];	     /* KIND: "" or native, python */
	struct lutfd_app na; /* timeout_ms, memory_mb, max_concurrency */
	uint8_t *so;	     /* a copy: the frame is gone when the job runs */
	size_t so_len;
	struct lutfd_fn *fns[MAX_EXPORTS];
	size_t n;
	uint32_t pub;	  /* PUBLIC: the app's functions need no API key (keys.c) */
	uint32_t workers; /* WORKERS: the tenant's worker processes; 0 = unchanged */
	bool workers_set;
};

struct deploy_job {
	struct lutfd_job j; /* first: jobs.c frees the whole */
	struct deploy_req r;
	uint32_t status;
	char msg[400];
	/* what the steps found and changed (main thread) */
	struct lutfd_tenant *t;
	bool created;	   /* the tenant record is this deploy's */
	bool tier_changed; /* t->tier was old_tier */
	char old_tier[16];
	char path[PATH_MAX];
	pid_t pid;
	int ctl;
	struct lutf_buf load;
	/* undo of the commit */
	bool had_app;
	struct lutfd_app old_app;
	struct lutfd_fn **old_fns; /* out of t->fns: replaced or not exported any more */
	size_t nold;
	bool committed;
	bool pub_set, was_pub; /* --public saved before the load (keys.c) */
	int pub_err;
	uint32_t old_workers; /* undo of WORKERS */
	uint32_t load_failed; /* bit w: worker w (w > 0) did not take the load */
};

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

/* A Python export: "module.sub:function", identifiers of [A-Za-z0-9_]. */
static bool py_symbol_valid(const char *s)
{
	const char *colon = strchr(s, ':');
	char mod[128];

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(mod) || !symbol_valid(colon + 1))
		return false;
	memcpy(mod, s, (size_t)(colon - s));
	mod[colon - s] = 0;
	for (char *p = mod, *dot; p; p = dot ? dot + 1 : NULL) {
		dot = strchr(p, '.');
		if (dot)
			*dot = 0;
		if (!symbol_valid(p))
			return false;
	}
	return true;
}

/*
 * Whether tier's policy (policy_dir/<tier>.policy and what it includes, 8
 * deep like the parser) includes python.policy: the tiers that run Python
 * say so in their policy files (policies/README.md). Tier "none" runs all.
 */
static bool tier_runs_python(const char *tier, int depth)
{
	char path[PATH_MAX], line[256];
	bool yes = false;
	FILE *fp;

	if (!strcmp(tier, "none") && !depth)
		return true;
	if (depth > 8 || strchr(tier, '/'))
		return false;
	snprintf(path, sizeof(path), "%s/%s.policy", g_cfg.policy_dir, tier);
	fp = fopen(path, "re");
	if (!fp)
		return false;
	while (!yes && fgets(line, sizeof(line), fp)) {
		char name[64];

		if (sscanf(line, " include %63[a-z0-9_-]", name) != 1)
			continue;
		yes = !strcmp(name, "python") || tier_runs_python(name, depth + 1);
	}
	fclose(fp);
	return yes;
}

static void fn_free(struct lutfd_fn *f)
{
	for (size_t k = 0; f->config && f->config[k]; k++)
		free(f->config[k]);
	free(f->config);
	free(f);
}

static void req_free(struct deploy_req *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->fns[i])
			fn_free(r->fns[i]);
	r->n = 0;
	free(r->so);
	r->so = NULL;
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

/* One EXPORT field. Returns false (msg set) if bad. */
static bool export_field(struct deploy_req *r, const struct lutf_tlv *tl, char *msg, size_t cap)
{
	char ex[LUTFD_NAME + 130], *eq;
	struct lutfd_fn *f;

	if (r->n >= MAX_EXPORTS) {
		snprintf(msg, cap, "at most %d EXPORTs (functions) per deploy", MAX_EXPORTS);
		return false;
	}
	eq = lutf_tlv_str(tl, ex, sizeof(ex)) ? strchr(ex, '=') : NULL;
	if (!eq) {
		snprintf(msg, cap, "EXPORT must be \"function=symbol\"");
		return false;
	}
	*eq = 0;
	if (!lutf_name_valid(ex) || !(symbol_valid(eq + 1) || py_symbol_valid(eq + 1))) {
		snprintf(msg, cap, "bad export '%s=%s'", ex, eq + 1);
		return false;
	}
	for (size_t i = 0; i < r->n; i++) {
		if (!strcmp(r->fns[i]->name, ex)) {
			snprintf(msg, cap, "function '%s' exported twice", ex);
			return false;
		}
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(msg, cap, "out of memory");
		return false;
	}
	LUTFD_COPY(f->name, ex);
	LUTFD_COPY(f->symbol, eq + 1);
	r->fns[r->n++] = f;
	return true;
}

struct parse_ctx {
	struct deploy_req *r;
	char *msg;
	size_t cap;
};

static bool export_each(void *ctx, const struct lutf_tlv *tl)
{
	struct parse_ctx *p = ctx;

	return export_field(p->r, tl, p->msg, p->cap);
}

static bool config_each(void *ctx, const struct lutf_tlv *tl)
{
	struct parse_ctx *p = ctx;

	if (config_field(p->r->fns, p->r->n, tl))
		return true;
	snprintf(p->msg, p->cap,
		 "CONFIG must be \"function\\0key\\0value\" for an exported function");
	return false;
}

/* Step 1: the frame's fields into r (the shared reader, wire.h). Returns
 * false (msg set, or empty for "bad deploy request") if malformed. */
static bool deploy_parse(const struct lutf_wire_hdr *h, const uint8_t *payload,
			 struct deploy_req *r, char *msg, size_t cap)
{
	struct parse_ctx pc = {r, msg, cap};
	struct lutf_tlv so = {0};
	const struct lutf_tlv_rule rules[] = {
	    {LUTF_TAG_TENANT, LUTF_TLV_STR, 0, r->tenant, sizeof(r->tenant), NULL},
	    {LUTF_TAG_APP, LUTF_TLV_STR, 0, r->app, sizeof(r->app), NULL},
	    {LUTF_TAG_SO, LUTF_TLV_BYTES, 0, &so, 0, NULL},
	    {LUTF_TAG_TIER, LUTF_TLV_STR, 0, r->tier, sizeof(r->tier), NULL},
	    {LUTF_TAG_TIMEOUT_MS, LUTF_TLV_U32, 0, &r->na.timeout_ms, 0, NULL},
	    {LUTF_TAG_MEMORY_MB, LUTF_TLV_U32, 0, &r->na.memory_mb, 0, NULL},
	    {LUTF_TAG_MAX_CONCURRENCY, LUTF_TLV_U32, 0, &r->na.max_concurrency, 0, NULL},
	    {LUTF_TAG_PUBLIC, LUTF_TLV_U32, 0, &r->pub, 0, NULL},
	    {LUTF_TAG_EXPORT, LUTF_TLV_EACH, LUTF_TLV_REPEAT, NULL, 0, export_each},
	    {LUTF_TAG_WORKERS, LUTF_TLV_U32, 0, &r->workers, 0, NULL},
	    {LUTF_TAG_KIND, LUTF_TLV_STR, 0, r->kind, sizeof(r->kind), NULL},
	};
	/* CONFIG fields may come before their EXPORT: a second pass. */
	const struct lutf_tlv_rule config_rules[] = {
	    {LUTF_TAG_CONFIG, LUTF_TLV_EACH, LUTF_TLV_REPEAT, NULL, 0, config_each},
	};
	struct lutf_tlv_result res, res2 = {0};

	if (lutf_tlv_read(payload, h->length, rules, sizeof(rules) / sizeof(rules[0]), &pc, &res) ||
	    lutf_tlv_read(payload, h->length, config_rules, 1, &pc, &res2)) {
		if (res.why == LUTF_TLV_REPEATED)
			snprintf(msg, cap, "deploy field %u given twice", res.tag);
		return false;
	}
	r->workers_set = res.seen & (1u << 9); /* rules[9]: WORKERS */
	r->so_len = so.len;
	if (so.val && r->so_len) {
		r->so = malloc(r->so_len);
		if (!r->so) {
			snprintf(msg, cap, "out of memory");
			return false;
		}
		memcpy(r->so, so.val, r->so_len);
	}
	return true;
}

/* Step 2: what needs no state. Returns false (msg set) if bad. */
static bool deploy_validate(struct deploy_req *r, char *msg, size_t cap)
{
	if (!lutf_name_valid(r->tenant) || !lutf_name_valid(r->app)) {
		snprintf(msg, cap, "bad tenant or app name (want [a-z0-9][a-z0-9_-]{0,62})");
		return false;
	}
	if (r->workers_set && (r->workers < 1 || r->workers > LUTFD_WORKERS_MAX)) {
		snprintf(msg, cap, "workers must be 1..%d (got %u)", LUTFD_WORKERS_MAX, r->workers);
		return false;
	}
	if (!r->so_len || !r->n) {
		snprintf(msg, cap, "deploy needs SO bytes and at least one EXPORT");
		return false;
	}
	if (r->tier[0] && !lutfd_tier_valid(r->tier) &&
	    !(g_cfg.allow_tier_none && !strcmp(r->tier, "none"))) {
		snprintf(msg, cap, "unknown tier '%s' (pure, basic, service, compat)", r->tier);
		return false;
	}
	if (r->kind[0] && strcmp(r->kind, "native") && strcmp(r->kind, "python")) {
		snprintf(msg, cap, "unknown app kind '%s' (native, python)", r->kind);
		return false;
	}
	if (!strcmp(r->kind, "python") && !(r->so_len >= 4 && !memcmp(r->so, "PK\3\4", 4)) &&
	    memchr(r->so, 0, r->so_len < 64 ? r->so_len : 64)) {
		/* What the worker's loader would not take for Python either
		 * (loader_python.c: a zip, or text without NUL bytes). */
		snprintf(msg, cap,
			 "a Python app is a .py (text) or a .zip, not an ELF object or "
			 "other binary (use --so)");
		return false;
	}
	for (size_t i = 0; i < r->n; i++) {
		bool py = !strcmp(r->kind, "python");

		if (py ? !py_symbol_valid(r->fns[i]->symbol) : !symbol_valid(r->fns[i]->symbol)) {
			snprintf(msg, cap,
				 py ? "export '%s=%s': a Python export is module:function"
				    : "bad export '%s=%s' (module:function is for --py)",
				 r->fns[i]->name, r->fns[i]->symbol);
			return false;
		}
	}
	for (size_t i = 0; i < r->n; i++) {
		LUTFD_COPY(r->fns[i]->app, r->app);
		if (strlen(r->app) + 1 + strlen(r->fns[i]->name) > LUTF_NAME_MAX) {
			snprintf(msg, cap, "app and function names together are over %d bytes",
				 LUTF_NAME_MAX - 1);
			return false;
		}
	}
	return true;
}

static void fail(struct deploy_job *d, uint32_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct deploy_job *d, uint32_t status, const char *fmt, ...)
{
	va_list ap;

	d->status = status;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
}

/* Main: find or add the tenant, open it, note a tier change. */
static void dj_prepare(void *arg)
{
	struct deploy_job *d = arg;
	struct deploy_req *r = &d->r;
	struct lutfd_tenant *t = lutfd_tenant_find(r->tenant);
	int err;

	if (lutfd_jobs_stopping()) {
		fail(d, LUTF_STATUS_SHUTTING_DOWN, "lutfd is shutting down");
		return;
	}
	if (!strcmp(r->kind, "python")) {
		const char *tier = r->tier[0] ? r->tier : t ? t->tier : g_cfg.default_tier;

		if (!tier_runs_python(tier, 0)) {
			fail(d, LUTF_STATUS_FORBIDDEN,
			     "tier %s cannot run Python (its policy does not include python; "
			     "basic, service and compat do)",
			     tier);
			return;
		}
	}
	if (!t && lutfd_tenants_count() >= g_cfg.max_tenants) {
		fail(d, LUTF_STATUS_OVERLOADED, "at most %u tenants (max_tenants)",
		     g_cfg.max_tenants);
		return;
	}
	for (size_t i = 0; t && i < r->n; i++) {
		struct lutfd_fn *old = lutfd_fn_find(t, r->fns[i]->name);

		if (old && strcmp(old->app, r->app)) {
			fail(d, LUTF_STATUS_MALFORMED,
			     "function '%s' belongs to app '%s' of tenant '%s'", old->name,
			     old->app, r->tenant);
			return;
		}
	}
	if (!t) {
		t = lutfd_tenant_get(r->tenant);
		if (!t) {
			fail(d, LUTF_STATUS_OVERLOADED, "cannot add tenant: out of memory");
			return;
		}
		d->created = true;
		/* A new tenant starts in the tier its first deploy names. */
		LUTFD_COPY(t->tier, r->tier[0] ? r->tier : g_cfg.default_tier);
	}
	d->t = t;
	if (!t->rt && (err = lutfd_tenant_open(t))) {
		if (err == -ENOSPC)
			fail(d, LUTF_STATUS_OVERLOADED,
			     "cannot start tenant: no free uid in uid_range %s", g_cfg.uid_range);
		else
			fail(d, LUTF_STATUS_OVERLOADED, "cannot start tenant: %s", strerror(-err));
		return;
	}
	/* The tenant's tier is the one its last deploy named (docs/daemon.md):
	 * another tier recycles the worker first; the app loads into its successor. */
	if (r->tier[0] && strcmp(r->tier, t->tier)) {
		lutfd_log("tenant %s: tier %s -> %s; recycling its worker", t->name, t->tier,
			  r->tier);
		LUTFD_COPY(d->old_tier, t->tier);
		LUTFD_COPY(t->tier, r->tier);
		d->tier_changed = true;
	}
	/* A worker forked without CPython is replaced like one of another tier. */
	if (lutfd_tenant_python_missing(t, r->so, r->so_len, r->kind) && !d->tier_changed) {
		lutfd_log("tenant %s: a Python app; recycling its worker (no CPython)", t->name);
		LUTFD_COPY(d->old_tier, t->tier);
		d->tier_changed = true;
	}
}

/* Main: the version to store. */
static void dj_version(void *arg)
{
	struct deploy_job *d = arg;
	struct lutfd_app *a = lutfd_app_find(d->t, d->r.app);

	d->r.na.version = a ? a->version + 1 : 1;
}

/* Main: the stored file and folders: the tenant's gid may read them. */
static void dj_dirs(void *arg)
{
	struct deploy_job *d = arg;
	int err = lutfd_tenant_dirs(d->t);

	if (err)
		lutfd_log("tenant %s: app folder not handed over: %s", d->t->name, strerror(-err));
}

/* Main: --public is saved (keys.c) before the load, undone if the deploy fails. */
static void dj_public(void *arg)
{
	struct deploy_job *d = arg;

	d->was_pub = lutfd_keys_public(d->r.tenant, d->r.app);
	d->pub_err =
	    lutfd_keys_set_public(d->r.tenant, d->r.app, d->r.pub != 0, d->msg, sizeof(d->msg));
	d->pub_set = !d->pub_err;
}

static void dj_public_undo(void *arg)
{
	struct deploy_job *d = arg;
	char ignored[8];

	lutfd_keys_set_public(d->r.tenant, d->r.app, d->was_pub, ignored, sizeof(ignored));
	d->pub_set = false;
}

/* Main: is the worker up? Its pid and a copy of its control socket, and
 * the load request. */
static void dj_worker(void *arg)
{
	struct deploy_job *d = arg;
	struct lutfd_tenant *t = d->t;

	d->pid = t->up ? t->pid : 0;
	d->ctl = -1;
	if (!d->pid || t->ctl < 0) {
		d->pid = t->pid;
		return;
	}
	d->ctl = fcntl(t->ctl, F_DUPFD_CLOEXEC, 0);
	if (d->ctl < 0)
		fail(d, LUTF_STATUS_OVERLOADED, "cannot copy the worker socket: %s",
		     strerror(errno));
}

static void dj_kill(void *arg)
{
	struct deploy_job *d = arg;

	if (d->t->pid == d->pid && d->pid > 0)
		kill(d->pid, SIGKILL); /* did not answer a load: of no use */
}

struct last_death {
	struct lutfd_tenant *t;
	uint32_t status;
};

static void dj_death_status(void *arg)
{
	struct last_death *l = arg;

	l->status = l->t->last_death.status;
}

/* Job: get a worker that is up (start one if none runs). Returns 0 or fails d. */
static int ensure_worker(struct deploy_job *d)
{
	char why[300] = "";

	for (int tries = 0; tries < 3; tries++) {
		lutfd_main_call(dj_worker, d);
		if (d->status)
			return -1;
		if (d->ctl >= 0)
			return 0;
		if (d->pid > 0) {
			/* Going (recycled, killed): wait for the loop to see it go. */
			char m[200];

			lutfd_tenant_wait_death(d->t, d->pid, m, sizeof(m));
			continue;
		}
		if (lutfd_worker_start_sync(d->t, true, why, sizeof(why)) && why[0] && tries == 2)
			break;
	}
	fail(d, LUTF_STATUS_OVERLOADED, "the worker of tenant %s does not start%s%s; retry",
	     d->r.tenant, why[0] ? ": " : "", why);
	return -1;
}

/* Main: the records take the new version (undo keeps the old ones). */
static void dj_apply(void *arg)
{
	struct deploy_job *d = arg;
	struct deploy_req *r = &d->r;
	struct lutfd_tenant *t = d->t;
	struct lutfd_app *a = lutfd_app_find(t, r->app);
	struct lutfd_fn **p;
	int err;

	d->committed = false;
	LUTFD_COPY(r->na.name, r->app);
	LUTFD_COPY(r->na.tier, r->tier);
	/* Allocate first: nothing changes unless everything fits. Room in
	 * t->fns for all of them, old and new (undo puts the old back). */
	d->old_fns = calloc(t->nfns + 1, sizeof(*d->old_fns));
	p = d->old_fns ? realloc(t->fns, (t->nfns + r->n) * sizeof(*p)) : NULL;
	if (!p)
		return; /* commit_apply serializes the unchanged state: harmless */
	t->fns = p;
	if (!a) {
		a = realloc(t->apps, (t->napps + 1) * sizeof(*a));
		if (!a)
			return;
		t->apps = a;
		t->apps[t->napps++] = r->na;
		d->had_app = false;
	} else {
		d->had_app = true;
		d->old_app = *a;
		*a = r->na;
	}
	/* This app's functions leave the table (kept aside for undo). */
	for (size_t i = 0; i < t->nfns;) {
		if (strcmp(t->fns[i]->app, r->app)) {
			i++;
			continue;
		}
		d->old_fns[d->nold++] = t->fns[i];
		memmove(&t->fns[i], &t->fns[i + 1], (t->nfns - i - 1) * sizeof(t->fns[0]));
		t->nfns--;
	}
	for (size_t i = 0; i < r->n; i++) {
		for (size_t k = 0; k < d->nold; k++)
			if (!strcmp(d->old_fns[k]->name, r->fns[i]->name))
				r->fns[i]->paused = d->old_fns[k]->paused;
		t->fns[t->nfns++] = r->fns[i];
		err = lutfd_fn_bind_all(t, r->fns[i], r->na.timeout_ms); /* every worker */
		if (err)
			lutfd_log("tenant %s: cannot bind %s: %s", t->name, r->fns[i]->name,
				  strerror(-err));
	}
	d->old_workers = t->workers;
	if (r->workers_set)
		t->workers = r->workers; /* saved with the registry */
	lutfd_workers_sync(t);
	d->committed = true;
}

/* Main: the registry was not saved: the old records come back, and the
 * worker (which loaded the new code) is replaced by one loading them. */
static void dj_undo(void *arg)
{
	struct deploy_job *d = arg;
	struct deploy_req *r = &d->r;
	struct lutfd_tenant *t = d->t;

	if (!d->committed)
		return;
	for (size_t i = 0; i < t->nfns;) {
		if (strcmp(t->fns[i]->app, r->app)) {
			i++;
			continue;
		}
		memmove(&t->fns[i], &t->fns[i + 1], (t->nfns - i - 1) * sizeof(t->fns[0]));
		t->nfns--;
	}
	for (size_t k = 0; k < d->nold; k++) {
		t->fns[t->nfns++] = d->old_fns[k]; /* room: they were there */
		lutfd_fn_bind_all(t, d->old_fns[k], d->had_app ? d->old_app.timeout_ms : 0);
	}
	t->workers = d->old_workers;
	d->nold = 0;
	if (d->had_app)
		*lutfd_app_find(t, r->app) = d->old_app;
	else
		t->napps--;
	if (d->tier_changed)
		LUTFD_COPY(t->tier, d->old_tier);
	d->committed = false;
	lutfd_workers_sync(t);
	for (uint32_t w = 0; w < t->nwk; w++)
		lutfd_tenant_recycle(t->wk[w]);
}

/* Main: committed and saved: the engine forgets what is gone; reply. */
static void dj_done(void *arg)
{
	struct deploy_job *d = arg;
	struct deploy_req *r = &d->r;
	struct lutfd_tenant *t = d->t;
	struct lutf_conn *c;
	struct lutf_buf b;
	size_t fo;
	int err;

	for (size_t k = 0; k < d->nold; k++) {
		struct lutfd_fn *f = d->old_fns[k];
		bool kept = false;

		for (size_t i = 0; i < r->n; i++)
			kept |= !strcmp(r->fns[i]->name, f->name);
		if (!kept)
			lutfd_fn_engine_all(t, f, lutf_runtime_delete); /* not exported any more */
		fn_free(f);
	}
	/* Workers that did not take the load, or (a tier change) still run
	 * the old tier: replaced by ones loading the committed records. */
	for (uint32_t w = 1; w < t->nwk; w++)
		if (d->tier_changed || (d->load_failed & (1u << w)))
			lutfd_tenant_recycle(t->wk[w]);
	err = lutfd_workers_grow(t); /* N raised: new workers load the records */
	if (err)
		lutfd_log("tenant %s: runs fewer workers than asked: %s", t->name, strerror(-err));
	d->nold = 0;
	lutfd_log("deployed %s/%s v%llu (%zu functions, tier %s)", t->name, r->app,
		  (unsigned long long)r->na.version, r->n, t->tier);
	r->n = 0; /* the records own them now */
	if (g_cg.mode != LUTFD_CG_NONE) {
		struct lutfd_cg_limits lim;

		lutfd_tenant_limits(t, &lim); /* MEMORY_MB may have changed */
		if ((err = lutfd_cg_tenant(&g_cg, t->name, &lim)))
			lutfd_log("tenant %s: cgroup limits not set: %s", t->name, strerror(-err));
	}
	c = lutfd_job_conn(&d->j);
	if (!c)
		return;
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_REPLY, LUTF_STATUS_OK, d->j.request_id);
	lutf_tlv_put_u64(&b, LUTF_TAG_VERSION, r->na.version);
	for (size_t i = 0; i < t->nfns; i++) {
		char url[PATH_MAX + 160];

		if (strcmp(t->fns[i]->app, r->app))
			continue;
		snprintf(url, sizeof(url), "unix://%s/lutf.sock#%s/%s", g_cfg.runtime_dir, t->name,
			 t->fns[i]->name);
		lutf_tlv_put_str(&b, LUTF_TAG_URL, url);
		if (lutfd_http_addr()[0]) { /* the HTTP gateway's (http_gw.c) */
			snprintf(url, sizeof(url), "http://%s/fn/%s/%s", lutfd_http_addr(), t->name,
				 t->fns[i]->name);
			lutf_tlv_put_str(&b, LUTF_TAG_URL, url);
		}
	}
	lutf_frame_end(&b, fo);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
}

/* Main: a failed deploy's reply. */
static void dj_fail_reply(void *arg)
{
	struct deploy_job *d = arg;

	lutfd_log("deploy %s/%s failed: %s", d->r.tenant, d->r.app, d->msg);
	lutfd_job_reply_status(&d->j, d->status, d->msg);
}

/* Main: a tenant with no functions keeps no worker; a new one goes. */
static void dj_mark_removing(void *arg)
{
	struct deploy_job *d = arg;

	d->t->removing = true;
}

static void dj_revert_tier(void *arg)
{
	struct deploy_job *d = arg;

	LUTFD_COPY(d->t->tier, d->old_tier);
	d->tier_changed = false;
}

struct nfns_check {
	struct lutfd_tenant *t;
	size_t n;
};

static void nfns_get(void *arg)
{
	struct nfns_check *c = arg;

	c->n = c->t->nfns;
}

/* Job: undo what a failed deploy left: a new tenant goes whole; an old one
 * gets its tier back; a tenant with no functions keeps no worker. */
static void deploy_cleanup(struct deploy_job *d)
{
	struct nfns_check nc = {.t = d->t};
	int err;

	if (!d->t)
		return;
	if (d->created) {
		lutfd_main_call(dj_mark_removing, d);
		err = lutfd_tenant_remove_sync(d->t);
		if (err)
			lutfd_log("tenant %s: not removed after its failed first deploy: %s",
				  d->r.tenant, strerror(-err));
		d->t = NULL;
		return;
	}
	if (d->tier_changed) {
		lutfd_main_call(dj_revert_tier, d);
		lutfd_worker_stop_sync(d->t, lutfd_load_timeout()); /* the tick restarts it */
		return;
	}
	lutfd_main_call(nfns_get, &nc);
	if (!nc.n)
		lutfd_worker_stop_sync(d->t, 2000);
}

/* The job: store, load, commit. */
static void deploy_run(struct lutfd_job *j)
{
	struct deploy_job *d = (struct deploy_job *)j;
	struct deploy_req *r = &d->r;
	int err = 0;

	d->ctl = -1;
	/* Tenant uids must reach their apps under the state folder (identity.c;
	 * it forks a child as a tenant uid: here, off the loop). */
	if (lutfd_state_dir_check(d->msg, sizeof(d->msg))) {
		d->status = LUTF_STATUS_FORBIDDEN;
		goto fail;
	}
	lutfd_main_call(dj_prepare, d);
	if (d->status)
		goto fail;
	/* Step 3: a tier change recycles the worker first. */
	if (d->tier_changed && lutfd_worker_stop_sync(d->t, lutfd_load_timeout())) {
		fail(d, LUTF_STATUS_OVERLOADED, "the worker of tenant %s does not stop", r->tenant);
		goto fail;
	}
	/* Step 4: store (never overwriting: a version left by a deploy that did
	 * not finish is skipped). */
	lutfd_main_call(dj_version, d);
	for (int tries = 0;; tries++) {
		err = lutfd_store_so(r->tenant, r->app, r->na.version, r->so, r->so_len, d->path,
				     sizeof(d->path));
		if (err != -EEXIST || tries > 1000)
			break;
		r->na.version++;
	}
	if (err) {
		fail(d, LUTF_STATUS_NOT_PERSISTED, "cannot store the app in %.200s: %s",
		     g_cfg.state_dir, strerror(-err));
		d->path[0] = 0;
		goto fail;
	}
	free(r->so);
	r->so = NULL;
	lutfd_main_call(dj_dirs, d);
	lutfd_main_call(dj_public, d);
	if (d->pub_err) {
		d->status = LUTF_STATUS_NOT_PERSISTED;
		goto fail;
	}
	/* Step 5: load into a worker that is up. */
	if (ensure_worker(d))
		goto fail;
	err = lutfd_load_request(r->tenant, r->app, r->na.version, r->fns, r->n, &d->load, d->msg,
				 sizeof(d->msg));
	if (err) {
		d->status = LUTF_STATUS_TOO_LARGE;
		goto fail;
	}
	err = lutfd_ctl_call(d->ctl, d->load.data, d->load.len, d->msg, sizeof(d->msg));
	if (!err && !d->tier_changed) /* a tier change replaces them all after the commit */
		d->load_failed = lutfd_workers_load(d->t, &d->load, r->app);
	lutf_buf_free(&d->load);
	if (err) {
		char why[sizeof(d->msg)];
		uint32_t status = LUTF_STATUS_FUNCTION_ERROR;

		if (err == -ETIMEDOUT)
			lutfd_main_call(dj_kill, d);
		if (err == -EPIPE) {
			/* Killed while loading (a constructor crashed, or the tier
			 * refused a syscall the app's load makes): say which. */
			struct last_death l = {.t = d->t};

			status = LUTF_STATUS_CRASHED;
			if (lutfd_tenant_wait_death(d->t, d->pid, d->msg, sizeof(d->msg))) {
				lutfd_main_call(dj_death_status, &l);
				status = l.status;
			}
		}
		memcpy(why, d->msg, sizeof(why));
		fail(d, status, "app %s does not load: %.300s", r->app, why);
		goto fail;
	}
	/* Step 6: commit, durably, or undo. */
	err = lutfd_state_commit(dj_apply, dj_undo, d);
	if (!err && !d->committed)
		err = -ENOMEM; /* dj_apply could not allocate: nothing changed */
	if (err) {
		fail(d, LUTF_STATUS_NOT_PERSISTED,
		     "registry not saved in %.200s: %s; deploy undone", g_cfg.state_dir,
		     strerror(-err));
		goto fail;
	}
	lutfd_main_call(dj_done, d);
	/* N lowered: the extra workers drain (no call fails), then go. */
	lutfd_workers_shrink(d->t);
	goto out;
fail:
	if (d->pub_set)
		lutfd_main_call(dj_public_undo, d);
	if (d->path[0])
		unlink(d->path);
	deploy_cleanup(d);
	lutfd_main_call(dj_fail_reply, d);
out:
	if (d->ctl >= 0)
		close(d->ctl);
	free(d->old_fns);
	req_free(r);
}

static void deploy_refuse(struct lutfd_job *j, uint32_t status, const char *msg)
{
	struct deploy_job *d = (struct deploy_job *)j;

	lutfd_job_reply_status(j, status, msg);
	req_free(&d->r);
}

void lutfd_deploy(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	struct deploy_job *d = calloc(1, sizeof(*d));
	char msg[400] = "";
	int err;

	if (!d) {
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_OVERLOADED, "out of memory");
		return;
	}
	if (!deploy_parse(h, payload, &d->r, msg, sizeof(msg)) ||
	    !deploy_validate(&d->r, msg, sizeof(msg))) {
		lutf_conn_reply_status(c, h->request_id, LUTF_STATUS_MALFORMED,
				       msg[0] ? msg : "bad deploy request");
		req_free(&d->r);
		free(d);
		return;
	}
	d->j.run = deploy_run;
	d->j.refuse = deploy_refuse;
	lutfd_job_hold(&d->j, c, h->request_id);
	err = lutfd_job_submit(d->r.tenant, &d->j);
	if (err) {
		lutfd_job_reply_status(
		    &d->j, err == -ESHUTDOWN ? LUTF_STATUS_SHUTTING_DOWN : LUTF_STATUS_OVERLOADED,
		    strerror(-err));
		req_free(&d->r);
		free(d);
	}
}
