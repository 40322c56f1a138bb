/* SPDX-License-Identifier: MIT */
/*
 * The tenant worker: maps the tenant's region, loads its apps through their
 * kind's loader (loader.h) and runs the region's Labors, which resolve a
 * function slot to code here.
 * Invariant: a name's binding is replaced by one atomic pointer store and
 * old code is never unloaded while the worker lives (recycling the worker is
 * what drops old versions), so a Labor never runs code that goes away.
 * A worker asked to run in a tier is confined (identity, limits, Landlock,
 * seccomp) before it reads its first message, so no app code ever runs
 * unconfined; if confinement fails it says why and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host.h"

#include "abi_check.h"
#include "loader.h"
#include "sandbox.h"
#include "wire.h"
#include "worker.h"

#define WK_NAMES 4096		 /* distinct "<app>/<fn>" names one worker can bind */
#define LW_MAX_SLOTS_LENT 65536u /* labor_watch's largest table (LW_MAX_SLOTS) */

struct wk_binding {
	lutf_fn_t fn;
	void *app_state;
	char **config; /* "key", "value", ..., NULL */
};

struct wk_name {
	char name[LUTF_NAME_MAX + 1];
	struct wk_binding *cur; /* atomic: release on store, acquire on load */
};

static struct wk_name wk_names[WK_NAMES];
static uint32_t wk_nnames; /* release on publish, acquire on lookup */
static int wk_log_fd = -1;
static char wk_tier[16];       /* the worker's tier, "" = unconfined (for abi_check) */
static bool wk_threads = true; /* the tier allows new threads (not "labors fixed") */

/* Labor threads: look the name up. Entries are appended only, never moved. */
static int wk_resolve(void *ctx, uint32_t slot, const char *name, struct lutf_fn_binding *out)
{
	uint32_t n = __atomic_load_n(&wk_nnames, __ATOMIC_ACQUIRE);

	for (uint32_t i = 0; i < n; i++) {
		struct wk_binding *b;

		if (strcmp(wk_names[i].name, name))
			continue;
		/* Acquire: pairs with the release store in wk_bind. */
		b = __atomic_load_n(&wk_names[i].cur, __ATOMIC_ACQUIRE);
		if (!b)
			return -ENOENT;
		out->fn = b->fn;
		out->app_state = b->app_state;
		out->config = (const char *const *)b->config;
		return 0;
	}
	return -ENOENT;
}

/* Labor threads: one datagram per line; dropped when lutfd does not keep up. */
static void wk_log(void *ctx, const char *fn, const char *line, size_t len)
{
	char buf[LUTF_WK_LOG_MAX];
	size_t fl = strnlen(fn, LUTF_NAME_MAX);

	if (len > sizeof(buf) - fl - 1)
		len = sizeof(buf) - fl - 1;
	memcpy(buf, fn, fl);
	buf[fl] = 0;
	memcpy(buf + fl + 1, line, len);
	(void)!send(wk_log_fd, buf, fl + 1 + len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Main thread only (the only writer). Returns 0 or -ENOSPC. */
static int wk_bind(const char *name, struct wk_binding *b)
{
	uint32_t n = wk_nnames;

	for (uint32_t i = 0; i < n; i++) {
		if (strcmp(wk_names[i].name, name) == 0) {
			/* Release: the binding's fields before its pointer. */
			__atomic_store_n(&wk_names[i].cur, b, __ATOMIC_RELEASE);
			return 0;
		}
	}
	if (n == WK_NAMES)
		return -ENOSPC;
	snprintf(wk_names[n].name, sizeof(wk_names[n].name), "%s", name);
	wk_names[n].cur = b;
	/* Release: the entry is complete before lookups can reach it. */
	__atomic_store_n(&wk_nnames, n + 1, __ATOMIC_RELEASE);
	return 0;
}

struct wk_export {
	char fn[64];
	char sym[128];
	char **config;
	size_t nconfig;
};

static int add_config(struct wk_export *e, const char *key, size_t kl, const char *val, size_t vl)
{
	char **p = realloc(e->config, (e->nconfig * 2 + 3) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	e->config = p;
	p[e->nconfig * 2] = strndup(key, kl);
	p[e->nconfig * 2 + 1] = strndup(val, vl);
	p[e->nconfig * 2 + 2] = NULL;
	if (!p[e->nconfig * 2] || !p[e->nconfig * 2 + 1])
		return -ENOMEM;
	e->nconfig++;
	return 0;
}

/* Every export's configuration in one list, for the app's init (later keys
 * win in a kind that builds a dict). NULL if none or out of memory. */
static char **all_config(const struct wk_export *ex, size_t nex)
{
	size_t n = 0, k = 0;
	char **all;

	for (size_t i = 0; i < nex; i++)
		n += ex[i].nconfig;
	if (!n || !(all = calloc(2 * n + 1, sizeof(*all))))
		return NULL;
	for (size_t i = 0; i < nex; i++)
		for (size_t c = 0; c < 2 * ex[i].nconfig; c++)
			all[k++] = ex[i].config[c];
	return all;
}

/*
 * LOAD: pick the app's loader (loader.h), load it (its init runs), find each
 * export, then bind them all. Every export is found before any binding
 * changes, so a failed load leaves the old version serving. Returns 0 or
 * -errno with msg filled.
 */
static int wk_load(const uint8_t *p, size_t len, char *msg, size_t cap)
{
	struct wk_export ex[64];
	struct lutf_fn_binding fb[64];
	char app[64] = "", path[4096] = "", why[300] = "";
	const struct lutf_loader *ld;
	struct lutf_loader_app *la;
	struct lutf_tlv_iter it;
	struct lutf_tlv f;
	size_t nex = 0;
	char **all;
	int err = 0;

	memset(ex, 0, sizeof(ex));
	lutf_tlv_iter_init(&it, p, len);
	while (lutf_tlv_next(&it, &f)) {
		if (f.tag == LUTF_TAG_APP) {
			lutf_tlv_str(&f, app, sizeof(app));
		} else if (f.tag == LUTF_TAG_SO) {
			lutf_tlv_str(&f, path, sizeof(path));
		} else if (f.tag == LUTF_TAG_EXPORT && nex < 64) {
			const char *eq = memchr(f.val, '=', f.len);
			size_t fl = eq ? (size_t)(eq - (const char *)f.val) : 0;

			if (!eq || fl >= sizeof(ex[0].fn) || f.len - fl - 1 >= sizeof(ex[0].sym))
				continue;
			memcpy(ex[nex].fn, f.val, fl);
			memcpy(ex[nex].sym, eq + 1, f.len - fl - 1);
			nex++;
		} else if (f.tag == LUTF_TAG_CONFIG) {
			const char *s = (const char *)f.val, *end = s + f.len;
			const char *k = memchr(s, 0, f.len), *v;

			if (!k || !(v = memchr(k + 1, 0, (size_t)(end - k - 1))))
				continue;
			for (size_t i = 0; i < nex; i++)
				if (strcmp(ex[i].fn, s) == 0 &&
				    add_config(&ex[i], k + 1, (size_t)(v - k - 1), v + 1,
					       (size_t)(end - v - 1)))
					err = -ENOMEM;
		}
	}
	if (it.bad || !app[0] || !path[0] || !nex || err) {
		snprintf(msg, cap, "bad load request");
		return err ? err : -EINVAL;
	}
	ld = lutf_loader_for(path, msg, cap);
	if (!ld)
		return -ENOEXEC;
	/* A native library may carry a language runtime (Go) that cannot run in
	 * this tier or beside another one: abi_check.c. */
	if (ld == &lutf_loader_native &&
	    (err = lutf_abi_check_app(path, app, wk_tier, wk_threads, msg, cap)))
		return err;
	all = all_config(ex, nex);
	err = ld->load(path, app, (const char *const *)all, &la, msg, cap);
	free(all); /* the strings are the exports' */
	if (err)
		return err;
	for (size_t i = 0; i < nex; i++) {
		err = ld->find(la, ex[i].sym, (const char *const *)ex[i].config, &fb[i], why,
			       sizeof(why));
		if (err) {
			snprintf(msg, cap, "%s for function '%s'", why, ex[i].fn);
			ld->unload(la);
			return err;
		}
	}
	for (size_t i = 0; i < nex; i++) {
		struct wk_binding *b = calloc(1, sizeof(*b));
		char name[LUTF_NAME_MAX + 1];

		if (!b)
			return snprintf(msg, cap, "out of memory"), -ENOMEM;
		b->fn = fb[i].fn;
		b->app_state = fb[i].app_state;
		b->config = ex[i].config;
		if ((size_t)snprintf(name, sizeof(name), "%s/%s", app, ex[i].fn) >= sizeof(name)) {
			free(b);
			return snprintf(msg, cap, "function name too long"), -ENAMETOOLONG;
		}
		if (wk_bind(name, b))
			return snprintf(msg, cap, "too many functions in this worker"), -ENOSPC;
	}
	/* la stays loaded for the worker's life: see the invariant above. */
	return 0;
}

static void wk_reply(int ctl, int rc, const char *msg)
{
	char buf[512];
	int32_t v = rc;
	size_t n = strnlen(msg, sizeof(buf) - sizeof(v));

	memcpy(buf, &v, sizeof(v));
	memcpy(buf + sizeof(v), msg, n);
	if (send(ctl, buf, sizeof(v) + n, MSG_NOSIGNAL) < 0)
		_exit(0);
}

struct wk_start {
	void *mem;
	size_t size;
	struct lutf_labors **lb;
	int err;
	const void *watch; /* the lent block of labor_watch slots, PROT_READ, or NULL */
	uint32_t watch_n;
};

/* Between Landlock and seccomp: start the Labors, held until START. They
 * inherit the Landlock domain and the filter's thread sync reaches them;
 * in a tier without clone the whole pool starts now. */
static int wk_start_labors(void *arg, const struct lutf_policy *p)
{
	struct wk_start *ws = arg;
	struct lutf_labor_host host = {.resolve = wk_resolve, .log = wk_log};

	host.flags = LUTF_LABORS_HELD | (p && p->labors_fixed ? LUTF_LABORS_FIXED : 0);
	host.watch_block = ws->watch;
	host.watch_n = ws->watch_n;
	ws->err = lutf_labors_start(ws->mem, ws->size, &host, ws->lb);
	return ws->err;
}

/* Confinement failed: tell lutfd on both sockets, then go. */
__attribute__((noreturn)) static void wk_unconfined(int ctl, const char *tenant, int rc,
						    const char *why)
{
	char text[400];
	static const char fn[] = "lutf-worker";

	snprintf(text, sizeof(text), "sandbox: %s", why);
	fprintf(stderr, "lutf worker %s: %s\n", tenant, text);
	wk_log(NULL, fn, text, strlen(text));
	{
		char buf[sizeof(int32_t) + sizeof(text)];
		int32_t v = rc ? rc : -EPERM;
		size_t n = strlen(text);

		memcpy(buf, &v, sizeof(v));
		memcpy(buf + sizeof(v), text, n);
		(void)!send(ctl, buf, sizeof(v) + n, MSG_NOSIGNAL);
	}
	_exit(LUTF_WK_EXIT_SANDBOX);
}

__attribute__((noreturn)) void lutf_worker_main(const char *tenant, int memfd, size_t size, int ctl,
						int log, const struct lutf_wk_sandbox *sb)
{
	lutf_worker_main_prepared(tenant, memfd, size, ctl, log, sb, NULL, NULL);
}

/*
 * The view lutfd lends for the direct take: exactly the pages of this
 * runtime's block of labor_state, PROT_READ: bpf_map_mmap clears VM_MAYWRITE
 * on a mapping made without PROT_WRITE, so no mprotect can upgrade it (the fd
 * itself is a plain duplicate: a BPF_F_RDONLY map fd cannot be mapped at all
 * on 6.18, bpf.md). The fd is closed here, before the sandbox and
 * before any message is read: no tenant code has run yet, and afterwards this
 * process holds no handle on the map, so it cannot map other tenants' slots.
 * A failed map costs the view only: every hand-off stays the Supervisor's.
 */
static const void *wk_map_watch(const char *tenant, const struct lutf_zy_watch *w, uint32_t *n)
{
	void *p = MAP_FAILED;

	*n = 0;
	if (!w || w->fd < 0)
		return NULL;
	if (w->count && w->count <= LW_MAX_SLOTS_LENT && w->first % 64 == 0)
		p = mmap(NULL, (size_t)w->count * 64, PROT_READ, MAP_SHARED, w->fd,
			 (off_t)w->first * 64);
	if (p == MAP_FAILED)
		fprintf(stderr,
			"lutf worker %s: labor_watch view not mapped (%s): no direct take\n",
			tenant, w->count ? strerror(errno) : "empty");
	close(w->fd);
	if (p == MAP_FAILED)
		return NULL;
	*n = w->count;
	return p;
}

__attribute__((noreturn)) void lutf_worker_main_prepared(const char *tenant, int memfd, size_t size,
							 int ctl, int log,
							 const struct lutf_wk_sandbox *sb,
							 const struct lutf_tier_prep *prep,
							 const struct lutf_zy_watch *watch)
{
	struct lutf_labors *lb = NULL;
	struct lutf_sandbox_status st;
	struct wk_start ws;
	static uint8_t msg[LUTF_WK_MSG_MAX];
	char comm[16], why[300] = "";
	void *mem;
	int err;

	snprintf(comm, sizeof(comm), "lutf-w-%s", tenant);
	prctl(PR_SET_NAME, comm);
	wk_log_fd = log;
	snprintf(wk_tier, sizeof(wk_tier), "%s", sb ? sb->tier : "");
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "lutf worker %s: mmap region: %s\n", tenant, strerror(errno));
		_exit(2);
	}
	close(memfd);
	memset(&st, 0, sizeof(st));
	ws = (struct wk_start){.mem = mem, .size = size, .lb = &lb};
	ws.watch = wk_map_watch(tenant, watch, &ws.watch_n);
	if (sb && sb->tier[0]) {
		err = lutf_sandbox_apply_prepared(sb, prep, wk_start_labors, &ws, &st, why,
						  sizeof(why));
		if (err)
			wk_unconfined(ctl, tenant, err, why);
		wk_threads = !st.labors_fixed;
	} else {
		wk_start_labors(&ws, NULL);
	}
	for (;;) {
		char text[256] = "";
		ssize_t n = recv(ctl, msg, sizeof(msg), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* lutfd closed our socket: stop */
		if (msg[0] == LUTF_WK_LOAD) {
			err = wk_load(msg + 1, (size_t)n - 1, text, sizeof(text));
			wk_reply(ctl, err, text);
		} else if (msg[0] == LUTF_WK_START) {
			err = ws.err;
			if (err)
				snprintf(text, sizeof(text), "lutf_labors_start: %s",
					 strerror(-err));
			else
				lutf_labors_release(lb);
			wk_reply(ctl, err, text);
		} else if (msg[0] == LUTF_WK_STATUS) {
			lutf_sandbox_status_format(&st, text, sizeof(text));
			wk_reply(ctl, 0, text);
		} else {
			wk_reply(ctl, -EINVAL, "unknown request");
		}
	}
	if (lb) {
		lutf_labors_stop(lb);
		lutf_labors_wait(lb);
	}
	_exit(0);
}
