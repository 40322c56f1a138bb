/* SPDX-License-Identifier: MIT */
/*
 * Tenants at run time: one memfd region, one attached lutf_runtime (the
 * Supervisor runs here), one way to reap its completions (an io_uring futex
 * wait of the main loop, else a reaper thread) and one worker process forked
 * by the zygote. Invariant: a worker's death is handled only after the zygote
 * reaped it (nothing of it runs), by lutf_runtime_worker_lost and then a new
 * worker on the same region with the tenant's apps reloaded before its
 * Labors start, so no queued Brick meets an unbound name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define LUTFD_MAX_WATCHED 65536u /* labor_watch slots at most (LW_MAX_SLOTS) */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "isolation.h"
#include "loader.h" /* lutf_app_looks_python */
#include "lutfd.h"
#include "tenant_log.h"
#include "startup.h"

#define SPAWN_TIMEOUT_MS 5000
#define BPF_LOAD_NICE 10    /* startup.c's BPF thread, while it loads labor_watch */
#define SIGSYS_WAIT_MS 5000 /* a spawn waits at most this for the SIGSYS probe */

/* Microseconds on CLOCK_MONOTONIC: the start-up stages lutfd logs. */
static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
#define QUICK_DEATH_MS 10000 /* a worker dying sooner than this after its start backs off */

struct lutfd_cg g_cg;

/* cgroups and the SIGSYS probe: once, with the first tenant (after the
 * zygote was forked: a v2 move of lutfd must not take the zygote along). */
static void isolation_init(void)
{
	static bool done;
	char what[300];

	lutfd_startup_join_isolation(); /* startup.c may be doing this on a thread */
	if (done)
		return;
	done = true;
	lutfd_cg_init(&g_cg, g_cfg.cgroup, g_cfg.cgroup_v2_root, g_cfg.cgroup_v1_root,
		      g_cfg.cgroup_name);
	lutfd_watcher_arm(&g_cg); /* leftovers killed; the watcher knows its targets */
	lutfd_cg_describe(&g_cg, what, sizeof(what));
	lutfd_sigsys_init(g_cfg.bpf_pin_root);
	/* The probe itself: startup.c's BPF thread loads it, else here. */
	if (!lutfd_startup_bpf_beside())
		lutfd_sigsys_load();
	lutfd_log("isolation: %s; uid_range %s; SIGSYS syscalls from %s", what, g_cfg.uid_range,
		  lutfd_sigsys_mode());
}

static void log_drain(struct lutfd_tenant *t)
{
	char buf[LUTF_WK_LOG_MAX + 1];

	/* Bounded per event so one chatty tenant cannot starve the loop. */
	for (int i = 0; i < 256 && t->logfd >= 0; i++) {
		ssize_t n = recv(t->logfd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		size_t fl;

		if (n <= 0)
			return;
		buf[n] = 0;
		fl = strlen(buf);
		if (fl >= (size_t)n)
			continue;
		/* Every worker's lines go to the tenant's one ring (worker 0's). */
		lutfd_tenant_logs_append(lutfd_workers_primary(t), buf, buf + fl + 1,
					 (size_t)n - fl - 1);
	}
}

static void log_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	log_drain(data);
}

/* One request on a worker's control socket (fd: the job's own copy) and its
 * answer, within load_timeout_ms. Job threads only (it blocks). Returns 0,
 * the worker's -errno, -EPIPE (it died) or -ETIMEDOUT; msg gets its text. */
static void load_timeout_get(void *arg)
{
	*(uint32_t *)arg = g_cfg.load_timeout_ms; /* a live key (SIGHUP): the loop's */
}

uint32_t lutfd_load_timeout(void)
{
	uint32_t ms;

	lutfd_main_call(load_timeout_get, &ms);
	return ms;
}

/* The worker's next ctl record (an answer, or its unasked one), within
 * load_timeout_ms. Job threads only. Returns its rc, -EPIPE or -ETIMEDOUT. */
static int ctl_wait(int fd, char *msg, size_t cap)
{
	uint32_t timeout_ms = lutfd_load_timeout();
	uint64_t until = lutfd_now_ms() + timeout_ms;
	char buf[600];
	int32_t rc;
	ssize_t n;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		uint64_t now = lutfd_now_ms();

		if (now >= until) {
			snprintf(msg, cap, "worker did not answer within %u ms", timeout_ms);
			return -ETIMEDOUT;
		}
		if (poll(&p, 1, (int)(until - now)) > 0)
			break;
	}
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < (ssize_t)sizeof(rc)) {
		snprintf(msg, cap, "worker died");
		return -EPIPE;
	}
	buf[n] = 0;
	memcpy(&rc, buf, sizeof(rc));
	if (msg && cap) {
		size_t k = strnlen(buf + sizeof(rc), cap - 1); /* cut to fit */

		memcpy(msg, buf + sizeof(rc), k);
		msg[k] = 0;
	}
	return rc;
}

int lutfd_ctl_call(int fd, const void *req, size_t len, char *msg, size_t cap)
{
	if (msg && cap)
		msg[0] = 0;
	if (fd < 0)
		return -EPIPE;
	if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -EPIPE;
	return ctl_wait(fd, msg, cap);
}

/* Returns 0 or -E2BIG (msg says why). */
int lutfd_load_request(const char *tenant, const char *app, uint64_t version,
		       struct lutfd_fn *const *fns, size_t nfns, struct lutf_buf *b, char *msg,
		       size_t cap)
{
	char path[PATH_MAX];
	uint8_t op = LUTF_WK_LOAD;

	lutfd_so_path(tenant, app, version, path, sizeof(path));
	lutf_buf_init(b);
	lutf_buf_put(b, &op, 1);
	lutf_tlv_put_str(b, LUTF_TAG_APP, app);
	lutf_tlv_put_str(b, LUTF_TAG_SO, path);
	for (size_t i = 0; i < nfns; i++) {
		char ex[LUTFD_NAME + 130];

		snprintf(ex, sizeof(ex), "%s=%s", fns[i]->name, fns[i]->symbol);
		lutf_tlv_put_str(b, LUTF_TAG_EXPORT, ex);
	}
	for (size_t i = 0; i < nfns; i++) {
		for (size_t k = 0; k < fns[i]->nconfig; k++) {
			const char *key = fns[i]->config[2 * k], *val = fns[i]->config[2 * k + 1];
			size_t fl = strlen(fns[i]->name), kl = strlen(key), vl = strlen(val);
			char *v = malloc(fl + kl + vl + 2);

			if (!v) {
				b->failed = true;
				break;
			}
			memcpy(v, fns[i]->name, fl + 1);
			memcpy(v + fl + 1, key, kl + 1);
			memcpy(v + fl + kl + 2, val, vl);
			lutf_tlv_put(b, LUTF_TAG_CONFIG, v, fl + kl + vl + 2);
			free(v);
		}
	}
	if (b->failed || b->len > LUTF_WK_MSG_MAX) {
		snprintf(msg, cap, "load request too large (configuration over %u bytes)",
			 LUTF_WK_MSG_MAX);
		lutf_buf_free(b);
		return -E2BIG;
	}
	return 0;
}

static void schedule_restart(struct lutfd_tenant *t)
{
	uint64_t now = lutfd_now_ms();

	/* The first death restarts at once (a crash costs its callers, not the
	 * tenant); a second quick one waits 100 ms, then 200, 400, ... */
	if (t->recycle) {
		t->recycle = false; /* asked to go: not a crash */
		t->backoff_ms = 0;
	} else if (t->started_ms && now - t->started_ms < QUICK_DEATH_MS) {
		t->quick_deaths++;
		t->backoff_ms = t->quick_deaths < 2 ? 0 : t->backoff_ms ? t->backoff_ms * 2 : 100;
	} else {
		t->quick_deaths = 1;
		t->backoff_ms = 0;
	}
	if (t->backoff_ms > g_cfg.restart_backoff_max_ms)
		t->backoff_ms = g_cfg.restart_backoff_max_ms;
	/* A tenant with no functions, or on its way out, runs no worker. */
	if (t->removing || !t->nfns) {
		t->restart_at_ms = 0;
		return;
	}
	/* now > 0 (CLOCK_MONOTONIC ms): 0 stays "none scheduled". Due at once
	 * without backoff: the tick right after this event starts it. */
	t->restart_at_ms = now + t->backoff_ms;
}

/*
 * A worker start, in three steps: spawn (main thread: the zygote, the
 * tenant's fields), then on the job's thread the check of the worker's own
 * cgroup join, every app's
 * load and START over the job's own copy of the control socket, then finish
 * (main thread: up, or kill what did not answer).
 */
struct wstart {
	struct lutfd_tenant *t;
	bool force; /* start even with no functions (a deploy's first app) */
	int err;    /* spawn: 0, -EALREADY (nothing to do) or why not */
	pid_t pid;
	int ctl;
	struct lutf_buf *loads;
	char (*apps)[LUTFD_NAME];
	uint64_t *versions;
	size_t nloads;
	char tier[16];
	uint32_t uid;
	uint64_t t0, t_prep, t_probe, t_spawn, t_cg, t_load, t_start;
	char msg[300];
	/* spawn: prepared on the main thread, sent by the job */
	int zctl[2], zlog[2], memfd;
	int zout; /* write end of the tenant's output pipe: the worker's fd 1, 2 */
	int cg[LUTFD_CG__N], ncg; /* the files the worker joins its cgroup by */
	bool py, py_got;	  /* the tenant has Python apps; the worker got CPython */
	size_t size;
	char name[LUTFD_NAME];
	struct lutf_wk_sandbox sb;
};

/*
 * The zygote socket carries spawn answers and exit notices. A job thread's
 * spawn holds zy_mu while it waits for its answer (notices that arrive
 * meanwhile go to g_zygote.pending); the loop reads notices only under it,
 * and skips a pass while a spawn runs (the spawning job hands the pending
 * notices to the loop after).
 */
static pthread_mutex_t zy_mu = PTHREAD_MUTEX_INITIALIZER;

bool lutfd_zygote_pending(void)
{
	bool any = false;

	if (!pthread_mutex_trylock(&zy_mu)) {
		any = g_zygote.npending > 0;
		pthread_mutex_unlock(&zy_mu);
	}
	return any;
}

static void ws_close(struct wstart *w)
{
	for (int i = 0; i < 2; i++) {
		if (w->zctl[i] >= 0)
			close(w->zctl[i]);
		if (w->zlog[i] >= 0)
			close(w->zlog[i]);
		w->zctl[i] = w->zlog[i] = -1;
	}
	if (w->zout >= 0)
		close(w->zout);
	w->zout = -1;
	while (w->ncg > 0)
		close(w->cg[--w->ncg]);
}

/* Main: whether t (a primary) has a Python app, by its stored files' first
 * bytes (the worker's loader decides on the same), or a Python deploy is under
 * way. */
static bool tenant_has_python(const struct lutfd_tenant *t)
{
	if (t->py_want)
		return true;
	for (size_t a = 0; a < t->napps; a++) {
		char path[PATH_MAX];
		unsigned char head[64];
		ssize_t n;
		int fd;

		lutfd_so_path(t->name, t->apps[a].name, t->apps[a].version, path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* its load says why */
		n = read(fd, head, sizeof(head));
		close(fd);
		if (n > 0 && lutf_app_looks_python(head, (size_t)n))
			return true;
	}
	return false;
}

bool lutfd_tenant_python_missing(struct lutfd_tenant *t, const void *so, size_t len,
				 const char *kind)
{
	struct lutfd_tenant *p = lutfd_workers_primary(t);
	bool missing = false;

	if (strcmp(kind, "python") && (kind[0] || !lutf_app_looks_python(so, len)))
		return false;
	p->py_want = true;
	for (uint32_t w = 0; w < p->nwk; w++)
		missing |= p->wk[w]->pid > 0 && !p->wk[w]->py_worker;
	return missing || (p->pid > 0 && !p->py_worker); /* wk[0] is p: the same, if set */
}

/* Main. */
static void ws_spawn_failed(struct wstart *w, int err)
{
	struct lutfd_tenant *t = w->t;

	ws_close(w);
	lutfd_log("tenant %s: cannot spawn a worker: %s", t->name, strerror(-err));
	snprintf(w->msg, sizeof(w->msg), "cannot spawn a worker: %s", strerror(-err));
	w->err = err;
	t->fails_in_row++;
	schedule_restart(t);
}

/* Main: the zygote forked pid (w->err: or why not). */
static void ws_spawned(void *arg)
{
	struct wstart *w = arg;
	struct lutfd_tenant *t = w->t;
	pid_t pid = w->pid;

	close(w->zctl[1]);
	close(w->zlog[1]);
	w->zctl[1] = w->zlog[1] = -1;
	if (w->zout >= 0)
		close(w->zout);
	w->zout = -1;
	if (w->err) {
		ws_spawn_failed(w, w->err);
		return;
	}
	if (lutfd_cg_oom_kills(&g_cg, t->name, &t->oom_seen))
		t->oom_seen = 0;
	t->py_worker = w->py_got;
	lutfd_sigsys_watch(pid);
	t->pid = pid;
	/* Before any app code runs: Labor tids are checked against this process. */
	int werr = lutf_runtime_set_worker(t->rt, pid);

	if (werr)
		lutfd_log(
		    "tenant %s: worker %d: /proc entry not held (%s): its Labors go unwatched",
		    t->name, (int)pid, strerror(-werr));
	t->ctl = w->zctl[0];
	t->logfd = w->zlog[0];
	w->zctl[0] = w->zlog[0] = -1;
	t->started_ms = lutfd_now_ms();
	lutf_ev_set(g_loop, t->logfd, LUTF_EV_READ, log_event, t);
	LUTFD_COPY(w->tier, w->sb.tier[0] ? w->sb.tier : "none");
	w->uid = w->sb.uid;
	w->ctl = fcntl(t->ctl, F_DUPFD_CLOEXEC, 0);
	/* The load requests, from the records (they are the main thread's). */
	w->loads = calloc(t->napps ? t->napps : 1, sizeof(*w->loads));
	w->apps = calloc(t->napps ? t->napps : 1, sizeof(*w->apps));
	w->versions = calloc(t->napps ? t->napps : 1, sizeof(*w->versions));
	if (!w->loads || !w->apps || !w->versions || w->ctl < 0) {
		kill(pid, SIGKILL); /* the exit notice restarts it */
		w->err = -ENOMEM;
		return;
	}
	for (size_t a = 0; a < t->napps; a++) {
		struct lutfd_fn *fns[256];
		size_t n = 0;

		for (size_t i = 0; i < t->nfns && n < 256; i++)
			if (!strcmp(t->fns[i]->app, t->apps[a].name))
				fns[n++] = t->fns[i];
		if (!n)
			continue;
		if (lutfd_load_request(t->name, t->apps[a].name, t->apps[a].version, fns, n,
				       &w->loads[w->nloads], w->msg, sizeof(w->msg))) {
			lutfd_log("tenant %s: app %s: %s", t->name, t->apps[a].name, w->msg);
			continue;
		}
		LUTFD_COPY(w->apps[w->nloads], t->apps[a].name);
		w->versions[w->nloads++] = t->apps[a].version;
	}
}

static void zygote_drain(void *arg)
{
	lutfd_zygote_event();
}

static void ws_spawn(void *arg)
{
	struct wstart *w = arg;
	struct lutfd_tenant *t = w->t;
	int err;

	t->start_queued = false;
	w->err = -EALREADY;
	w->zctl[0] = w->zctl[1] = w->zlog[0] = w->zlog[1] = w->zout = -1;
	if (t->removing || !t->rt || t->pid > 0 || (!t->nfns && !w->force) || lutfd_jobs_stopping())
		return;
	t->restart_at_ms = 0;
	w->t0 = now_us();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, w->zctl) ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, w->zlog)) {
		err = -errno;
		goto fail;
	}
	/* Leftovers of an earlier worker; not while another worker of the
	 * tenant lives in the same cgroup (workers.c). */
	if (!lutfd_workers_others_alive(t))
		lutfd_cg_kill_all(&g_cg, t->name);
	err = lutfd_tenant_sandbox(t, &w->sb);
	if (!err)
		err =
		    lutfd_tlog_open(t->name, &w->zout); /* the worker's fd 1 and 2 (tenant_log.c) */
	if (err)
		goto fail;
	/* The worker joins its cgroup itself (zygote.c); no hierarchy, no files. */
	err = lutfd_cg_join_fds(&g_cg, t->name, w->cg, &w->ncg, w->msg, sizeof(w->msg));
	if (err) {
		lutfd_log("tenant %s: no worker: its cgroup: %s", t->name, w->msg);
		goto fail;
	}
	LUTFD_COPY(w->name, t->name);
	w->py = tenant_has_python(lutfd_workers_primary(t));
	w->memfd = t->memfd;
	w->size = t->size;
	w->err = 0;
	w->t_prep = now_us();
	return;
fail:
	ws_spawn_failed(w, err);
}

static void ws_finish(void *arg)
{
	struct wstart *w = arg;
	struct lutfd_tenant *t = w->t;
	uint64_t end = now_us();

	if (t->pid != w->pid) {
		if (!w->err)
			w->err = -EPIPE; /* it died meanwhile: worker_down handled it */
		return;
	}
	if (w->err) {
		/* Not answering (a load past load_timeout_ms), refusing START,
		 * or refused by lutfd (not in its cgroup): of no use; the exit
		 * notice names why (fault.c) and restarts it. */
		t->refused_pid = w->pid;
		snprintf(t->refused_why, sizeof(t->refused_why), "%.*s",
			 (int)sizeof(t->refused_why) - 1, w->msg[0] ? w->msg : strerror(-w->err));
		kill(w->pid, SIGKILL);
		return;
	}
	t->up = true;
	t->fails_in_row = 0;
	/* spawn: the zygote's fork; cgroup: the worker's own join (its word)
	 * and lutfd's check of the cgroup's list; then the wait for the
	 * SIGSYS probe (at start only); confine+load: the worker's sandbox
	 * (overlapping the move) and its apps. */
	lutfd_log("tenant %s: worker %d up (tier %s, uid %u%s) in %.2f ms: spawn %.2f, "
		  "cgroup %.2f, confine+load %.2f, start %.2f; waited %.2f for the SIGSYS probe; "
		  "prepared %.2f (leftovers, sandbox, log), %.2f to the job",
		  t->name, (int)w->pid, w->tier, w->uid, w->py_got ? ", CPython" : "",
		  (double)(end - w->t0) / 1e3, (double)(w->t_cg - w->t_spawn) / 1e3,
		  (double)(w->t_probe - w->t_cg) / 1e3, (double)(w->t_start - w->t_load) / 1e3,
		  (double)(end - w->t_start) / 1e3, (double)(w->t_load - w->t_probe) / 1e3,
		  (double)(w->t_prep - w->t0) / 1e3, (double)(w->t_spawn - w->t_prep) / 1e3);
}

int lutfd_worker_start_sync(struct lutfd_tenant *t, bool force, char *msg, size_t cap)
{
	struct wstart w = {
	    .t = t, .force = force, .ctl = -1, .zctl = {-1, -1}, .zlog = {-1, -1}, .zout = -1};
	uint8_t op = LUTF_WK_START;
	char name[LUTFD_NAME];
	int err = 0, ncg;

	lutfd_main_call(ws_spawn, &w);
	if (w.err) {
		if (msg && cap)
			snprintf(msg, cap, "%s", w.msg);
		goto out;
	}
	LUTFD_COPY(name, w.name); /* t's fields are the main thread's */
	/* The zygote's fork, off the loop (it may take milliseconds). */
	w.t_spawn = now_us();
	/* The direct take's view of its labor_watch slots (none: -1). */
	struct lutf_zy_watch zw = {.fd = -1};
	if (lutf_runtime_watch_lend(w.t->rt, &zw.fd, &zw.first, &zw.count))
		zw.fd = -1;
	pthread_mutex_lock(&zy_mu);
	w.err = lutf_zygote_spawn_watch(&g_zygote, w.name, w.memfd, w.size, w.zctl[1], w.zlog[1],
					w.zout, w.cg, w.ncg, w.py ? LUTF_ZY_PYTHON : 0, &w.sb, &zw,
					SPAWN_TIMEOUT_MS, &w.pid, &w.py_got);
	if (zw.fd >= 0)
		close(zw.fd);
	ncg = w.ncg;
	while (w.ncg > 0) /* the worker has its own copies */
		close(w.cg[--w.ncg]);
	/* Still holding zy_mu: the loop reads no exit notice before t->pid
	 * names the new worker (the loop only ever tries the lock). */
	lutfd_main_call(ws_spawned, &w);
	pthread_mutex_unlock(&zy_mu);
	lutfd_main_call(zygote_drain, NULL); /* exit notices read meanwhile */
	if (w.err) {
		if (msg && cap)
			snprintf(msg, cap, "%s", w.msg);
		goto out;
	}
	/* Before the first LOAD: no app code runs outside the tenant's cgroup.
	 * The worker joined it itself (its unasked record says how that went:
	 * zygote.c), then lutfd checks the kernel's list, which the worker
	 * cannot write: a worker that is not there is killed. (The worker
	 * confines itself meanwhile. Joining by its own write to v1 "tasks"
	 * skips the RCU grace period a parent's cgroup.procs write waits for.) */
	w.t_cg = now_us();
	if (ncg > 0) {
		char why[sizeof(w.msg) - 16];

		err = ctl_wait(w.ctl, w.msg, sizeof(w.msg));
		if (!err && (err = lutfd_cg_holds(&g_cg, name, w.pid, why, sizeof(why))))
			snprintf(w.msg, sizeof(w.msg), "cgroup check: %.*s", (int)sizeof(why) - 1,
				 why);
		else if (err && !w.msg[0])
			snprintf(w.msg, sizeof(w.msg), "cgroup: no word from the worker: %s",
				 strerror(-err));
		if (err) {
			lutfd_log("tenant %s: worker %d refused (killed): %s", name, (int)w.pid,
				  w.msg);
			w.err = err;
			lutfd_main_call(ws_finish, &w);
			if (msg && cap)
				snprintf(msg, cap, "%s", w.msg);
			goto out;
		}
	}
	/* No app code before the SIGSYS probe is in (at start it loads beside,
	 * overlapping the fork and the move): a death by the filter is then
	 * explained. The worker's pid waits in sigsys.c's list meanwhile. */
	w.t_probe = now_us();
	if (w.sb.tier[0]) /* unconfined (tier none): no filter to die by */
		lutfd_sigsys_wait(SIGSYS_WAIT_MS);
	w.t_load = now_us();
	for (size_t i = 0; i < w.nloads; i++) {
		err = lutfd_ctl_call(w.ctl, w.loads[i].data, w.loads[i].len, w.msg, sizeof(w.msg));
		if (err == -EPIPE || err == -ETIMEDOUT)
			break; /* the exit notice restarts it */
		if (err)
			lutfd_log("tenant %s: app %s v%llu does not load: %s", name, w.apps[i],
				  (unsigned long long)w.versions[i], w.msg);
		err = 0;
	}
	w.t_start = now_us();
	if (!err) {
		err = lutfd_ctl_call(w.ctl, &op, 1, w.msg, sizeof(w.msg));
		if (err)
			lutfd_log("tenant %s: worker %d does not start: %s", name, (int)w.pid,
				  w.msg);
	}
	w.err = err;
	lutfd_main_call(ws_finish, &w);
	if (w.err && msg && cap)
		snprintf(msg, cap, "%s", w.msg[0] ? w.msg : strerror(-w.err));
out:
	if (w.ctl >= 0)
		close(w.ctl);
	for (size_t i = 0; w.loads && i < w.nloads; i++)
		lutf_buf_free(&w.loads[i]);
	free(w.loads);
	free(w.apps);
	free(w.versions);
	return w.err == -EALREADY ? 0 : w.err;
}

static void start_job_run(struct lutfd_job *j)
{
	struct lutfd_tenant **tp = (struct lutfd_tenant **)(j + 1);

	lutfd_worker_start_sync(*tp, false, NULL, 0);
}

static void start_job_refuse(struct lutfd_job *j, uint32_t status, const char *msg)
{
	struct lutfd_tenant **tp = (struct lutfd_tenant **)(j + 1);

	(*tp)->start_queued = false;
}

void lutfd_worker_queue_start(struct lutfd_tenant *t)
{
	struct lutfd_job *j;

	if (t->start_queued || t->removing)
		return;
	j = calloc(1, sizeof(*j) + sizeof(t));
	if (!j)
		return;
	j->run = start_job_run;
	j->refuse = start_job_refuse;
	memcpy(j + 1, &t, sizeof(t));
	t->start_queued = true;
	if (lutfd_job_submit(t->name, j)) {
		t->start_queued = false;
		free(j);
	}
}
/*
 * How long a worker's Labor spins on an empty Cart before it parks, when the
 * config file does not say: 50 us when the worker may use more than one CPU,
 * 5 when at most one. At one connection the next call arrives ~30 us after
 * the last answer: a Labor that still spins takes it through memory instead
 * of a futex wake-up on another CPU (bench/http unpinned, p99 at 1 connection
 * 156 -> 129 us, p50 75 -> 32 us, docs/performance.md). On one CPU the
 * spinner only delays the thread it waits for: pinned, 20 us cost 4.6-4.7 us
 * of CPU a call at 64 connections against 4.0 with 5 us or none, and p50 at
 * 1 connection 87-89 us against 73-76; 5 us kept p99 at 1 connection nearer
 * nginx's than none (per-run ratios 0.48-1.62x, median 0.84x, against
 * 0.73-1.48x, median 1.42x; performance.md, stop 16). The price: up to 50 us
 * of CPU after a call when calls come further apart (idle: none).
 *
 * "May use" is the smallest of: lutfd's CPU set (its workers inherit it),
 * the CPU quota of lutfd's own cgroup and of every cgroup above it (a
 * systemd CPUQuota=, a container's limit), and tenant_cpu_pct when tenant
 * cgroups enforce it. Under a quota of one CPU or less a spin is paid from
 * the same budget as the calls. Logged when it first decides, and again
 * whenever the answer changes (lutfd's CPU set or quota moved).
 */
static uint32_t lutfd_spin_us(void)
{
	static uint32_t logged = UINT32_MAX;
	uint32_t milli = 0, quota, us;
	const char *why = "CPU set";
	cpu_set_t set;

	if (g_cfg.spin_us != LUTFD_SPIN_AUTO)
		return g_cfg.spin_us;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		milli = (uint32_t)CPU_COUNT(&set) * 1000u;
	if (!milli)
		milli = 2000; /* unknown: as on more than one */
	quota = lutfd_cg_own_cpu_milli();
	if (quota < milli) {
		milli = quota;
		why = "lutfd's cgroup CPU quota";
	}
	/* Applied where a cpu controller is (cgroup.c: v2 enables it when
	 * offered; v1 when the cpu hierarchy is mounted). */
	if (g_cfg.tenant_cpu_pct && g_cfg.tenant_cpu_pct * 10u < milli &&
	    (g_cg.mode == LUTFD_CG_V2 ||
	     (g_cg.mode == LUTFD_CG_V1 && g_cg.base[LUTFD_CG_CPU][0]))) {
		milli = g_cfg.tenant_cpu_pct * 10u;
		why = "tenant_cpu_pct";
	}
	us = milli > 1000 ? LUTFD_SPIN_US_MANY : LUTFD_SPIN_US_ONE;
	/* Relaxed: read and written by lutfd's main thread only; a log line. */
	if (__atomic_exchange_n(&logged, us, __ATOMIC_RELAXED) != us)
		lutfd_log("spin_us unset: %u us (workers may use %u.%02u CPUs: %s)", us,
			  milli / 1000, milli % 1000 / 10, why);
	return us;
}

static void engine_config(struct lutf_config *c, const char *tenant)
{
	lutf_config_init(c);
	if (g_cfg.carts)
		c->carts = g_cfg.carts;
	if (g_cfg.labors)
		c->labors = g_cfg.labors;
	else
		c->labors = 4 * c->carts;
	if (g_cfg.labors_max)
		c->labors_max = g_cfg.labors_max;
	else
		c->labors_max = 2 * c->labors;
	c->cart_capacity = g_cfg.cart_capacity;
	c->bricks = 0;
	c->arena_bytes = (uint64_t)g_cfg.arena_mb << 20;
	c->max_functions = g_cfg.max_functions;
	c->hold_max = g_cfg.hold_max;
	c->timeout_ms = g_cfg.timeout_ms;
	c->spin_ns = lutfd_spin_us() * 1000u;
	c->grace_ns = g_cfg.grace_us * 1000u;
	c->poll_ns = g_cfg.poll_us * 1000u;
	c->labor_idle_ms = g_cfg.labor_idle_ms;
	c->max_payload = g_cfg.max_frame;
	/* Watch mode and pins belong to the one Supervisor (see supervisor()). */
	c->watch = g_cfg.bpf ? LUTF_WATCH_BPF : LUTF_WATCH_POLL;
}

/* Returns 0 or -errno. */
int lutfd_fn_bind(struct lutfd_tenant *t, struct lutfd_fn *f, uint32_t timeout_ms)
{
	struct lutf_fn_opts o = {.timeout_ms = timeout_ms};
	char name[LUTF_NAME_MAX + 2];
	uint32_t id;
	int err;

	if ((size_t)snprintf(name, sizeof(name), "%s/%s", f->app, f->name) > LUTF_NAME_MAX)
		return -ENAMETOOLONG;
	if (lutf_runtime_lookup(t->rt, name, &id)) {
		err = lutf_runtime_add_remote(t->rt, name, &o, &id);
		if (err)
			return err;
		memset(t->slot_stats[id], 0, sizeof(t->slot_stats[id]));
	}
	f->wslot[t->widx] = id;
	f->wbound |= 1u << t->widx;
	if (!t->widx) {
		f->slot = id;
		f->bound = true;
	}
	if (f->paused) {
		err = lutf_runtime_pause(t->rt, id);
		if (err && err != -EALREADY)
			return err;
	}
	return 0;
}

/* One Supervisor (and one labor_watch) for every tenant: lutfd alone loads
 * BPF, once, and one thread watches the Labors of every worker. Made with the
 * first tenant or by startup.c's BPF thread, whichever comes first (sup_mu),
 * after the zygote was forked. It polls at once; labor_watch loads beside
 * (lutfd_tenant_prepare_supervisor) and the Supervisor switches to it then,
 * so the first calls never wait for BPF. */
static pthread_mutex_t sup_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lutf_supervisor *g_sup;

static int supervisor(struct lutf_supervisor **out)
{
	/* Loaded later by startup.c's BPF thread, else now. */
	struct lutf_supervisor_opts o = {.watch = g_cfg.bpf ? LUTF_WATCH_BPF : LUTF_WATCH_POLL,
					 .bpf_later = lutfd_startup_bpf_beside()};
	uint32_t labors = g_cfg.labors_max ? g_cfg.labors_max : 64;
	int err = 0;

	pthread_mutex_lock(&sup_mu);
	if (!g_sup) {
		if (g_cfg.bpf && g_cfg.bpf_pin_root[0]) {
			mkdir(g_cfg.bpf_pin_root, 0700);
			snprintf(o.bpf_pin_dir, sizeof(o.bpf_pin_dir), "%s", g_cfg.bpf_pin_root);
		}
		/* Whole pages a runtime (its worker's lent block, bpf.md), one
		 * more a tenant for each default worker past the first. */
		o.max_labors =
		    ((labors + 63) / 64 + g_cfg.tenant_workers - 1) * 64 * g_cfg.max_tenants;
		o.max_labors_per_runtime = g_cfg.bpf_labors_per_tenant;
		if (o.max_labors > LUTFD_MAX_WATCHED)
			o.max_labors = LUTFD_MAX_WATCHED;
		err = lutf_supervisor_create(&o, &g_sup);
		if (!err && !o.bpf_later)
			lutfd_log("supervisor: watch mode %s",
				  lutf_watch_mode_str(lutf_supervisor_mode(g_sup)));
	}
	*out = g_sup;
	pthread_mutex_unlock(&sup_mu);
	return err;
}

/* startup.c's set-up threads (startup.h). The BPF thread: the Supervisor
 * (if no tenant made it yet), then the SIGSYS probe (a worker's first LOAD
 * waits for it, so that a death by its filter can be explained), then
 * labor_watch into the Supervisor at a lower priority (nothing waits for it:
 * the Supervisor polls meanwhile). */
int lutfd_tenant_prepare_supervisor(void)
{
	uint64_t t0 = now_us(), t_sup, t_probe;
	struct lutf_supervisor *sup;
	int err = supervisor(&sup);

	t_sup = now_us();
	lutfd_sigsys_init(g_cfg.bpf_pin_root); /* once: isolation_init's call is then a no-op */
	lutfd_sigsys_load();
	t_probe = now_us();
	/* The stages of this thread (a worker's first LOAD waits for the probe). */
	lutfd_log("start: bpf thread: supervisor %.2f ms, SIGSYS probe %.2f (what a first "
		  "LOAD may wait for)",
		  (double)(t_sup - t0) / 1e3, (double)(t_probe - t_sup) / 1e3);
	/* After the Supervisor's thread was made (it inherits this thread's
	 * nice value): the load below yields the CPU to the start's own work
	 * (a worker's start, the first calls). */
	setpriority(PRIO_PROCESS, (id_t)gettid(), BPF_LOAD_NICE);
	if (!err && g_cfg.bpf) {
		lutfd_startup_bpf_delay();
		err = lutf_supervisor_load_watch(sup);
		/* lutf_lw_open printed why it failed */
		lutfd_log("supervisor: watch mode %s%s",
			  lutf_watch_mode_str(lutf_supervisor_mode(sup)),
			  err ? "" : " (labor_watch loaded beside the start; polled until then)");
	}
	return err;
}

/* The other thread: cgroups, the watcher's targets, the kernel log. */
void lutfd_tenant_prepare_isolation(void)
{
	isolation_init();
}

/* Returns 0 or -errno. */
int lutfd_tenant_open(struct lutfd_tenant *t)
{
	struct lutf_supervisor *sup;
	struct lutf_config c;
	char mname[80];
	int err;

	engine_config(&c, t->name);
	t->size = lutf_region_size(&c);
	if (!t->size)
		return -EINVAL;
	err = supervisor(&sup);
	if (err)
		return err;
	isolation_init();
	if (!t->tier[0])
		LUTFD_COPY(t->tier, g_cfg.default_tier);
	/* Another worker of a tenant has worker 0's uid, folders and cgroup. */
	err = t->primary ? 0 : lutfd_tenant_identity(t);
	if (err)
		return err;
	err = t->primary ? 0 : lutfd_tenant_dirs(t);
	if (err)
		lutfd_log("tenant %s: cannot prepare its folders: %s", t->name, strerror(-err));
	if (g_cg.mode != LUTFD_CG_NONE && !t->primary) {
		struct lutfd_cg_limits lim;

		lutfd_tenant_limits(t, &lim);
		err = lutfd_cg_tenant(&g_cg, t->name, &lim);
		if (err)
			lutfd_log("tenant %s: cgroup limits not set: %s", t->name, strerror(-err));
	}
	snprintf(mname, sizeof(mname), "lutf-%s", t->name);
	t->memfd = memfd_create(mname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (t->memfd < 0)
		return -errno;
	if (ftruncate(t->memfd, (off_t)t->size)) {
		err = -errno;
		goto err_fd;
	}
	/* Sealed before any worker sees it: a worker that truncated the region
	 * would turn lutfd's next read of it into SIGBUS. */
	if (fcntl(t->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		err = -errno;
		goto err_fd;
	}
	t->mem = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
	if (t->mem == MAP_FAILED) {
		err = -errno;
		goto err_fd;
	}
	err = lutf_region_format(t->mem, t->size, &c, LUTF_REGION_SHARED);
	if (!err)
		err = lutf_runtime_attach_to(sup, t->mem, t->size, &t->rt);
	if (err)
		goto err_map;
	t->slot_stats = calloc(c.max_functions, sizeof(*t->slot_stats));
	t->slot_inflight = calloc(c.max_functions, sizeof(*t->slot_inflight));
	t->log = calloc(g_cfg.log_lines, sizeof(*t->log));
	if (!t->slot_stats || !t->slot_inflight || !t->log) {
		err = -ENOMEM;
		goto err_rt;
	}
	err = lutfd_reap_start(t);
	if (err)
		goto err_rt;
	return 0;
err_rt:
	free(t->slot_stats);
	free(t->slot_inflight);
	t->slot_inflight = NULL;
	free(t->log);
	t->slot_stats = NULL;
	t->log = NULL;
	lutf_runtime_destroy(t->rt);
	t->rt = NULL;
err_map:
	munmap(t->mem, t->size);
	t->mem = NULL;
err_fd:
	close(t->memfd);
	t->memfd = -1;
	return err;
}

/* Returns 0 or -errno. */
int lutfd_tenant_start(struct lutfd_tenant *t)
{
	int err;

	if (!t->nfns || t->primary)
		return 0; /* no functions, no worker (nor region); other workers: worker 0's */
	err = lutfd_tenant_open(t);
	if (err)
		return err;
	for (size_t i = 0; i < t->nfns; i++) {
		struct lutfd_app *a = lutfd_app_find(t, t->fns[i]->app);

		err = lutfd_fn_bind(t, t->fns[i], a ? a->timeout_ms : 0);
		if (err)
			lutfd_log("tenant %s: cannot bind %s: %s", t->name, t->fns[i]->name,
				  strerror(-err));
	}
	/* Apps load before Labors start (a queued Brick never meets an unbound
	 * name), off the loop: a job of the tenant's lane. */
	lutfd_worker_queue_start(t);
	err = lutfd_workers_grow(t); /* workers = N: the others */
	if (err)
		lutfd_log("tenant %s: runs fewer workers than asked: %s", t->name, strerror(-err));
	return 0;
}

static void worker_down(struct lutfd_tenant *t, int status)
{
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	bool was_up = t->up;
	struct lutfd_death d;
	int n;

	log_drain(t);
	lutf_ev_set(g_loop, t->logfd, 0, NULL, NULL);
	close(t->logfd);
	close(t->ctl);
	t->logfd = t->ctl = -1;
	t->up = false;
	/* Why it died, before its Bricks fail: their replies say so. */
	lutfd_fault_explain(t, t->pid, status, &d);
	if (t->refused_pid == t->pid)
		t->refused_pid = 0; /* named once: a later worker with its pid is not */
	/* Nothing of a tenant outlives its worker: processes it forked (compat)
	 * would hold its uid's RLIMIT_NPROC and its cgroup's pids. */
	if (!lutfd_workers_others_alive(t) && (n = lutfd_cg_kill_all(&g_cg, t->name)) > 0)
		lutfd_log("tenant %s: killed %d processes its worker left", t->name, n);
	/* A worker recycled for a region fault leaves nothing worth keeping. */
	n = t->pid == t->faulty_pid ? lutfd_fault_reset(t) : lutf_runtime_worker_lost(t->rt, sig);
	lutf_runtime_set_worker(t->rt, 0);
	if (sig)
		lutfd_log("tenant %s: worker %d killed by signal %d (%s); %d started Bricks failed",
			  t->name, (int)t->pid, sig, d.msg, n);
	else
		lutfd_log("tenant %s: worker %d exited with %d; %d started Bricks failed", t->name,
			  (int)t->pid, WEXITSTATUS(status), n);
	t->pid = 0;
	t->restarts++;
	lutfd_fault_record(t, &d, n, was_up);
	schedule_restart(t);
	if (!t->up && t->fails_in_row >= g_cfg.crash_loop_limit)
		lutfd_fail_tenant(t);
}

struct death_check {
	struct lutfd_tenant *t;
	pid_t pid;
	bool gone;
	char msg[sizeof(((struct lutfd_death *)0)->msg)];
};

static void death_check(void *arg)
{
	struct death_check *d = arg;

	d->gone = d->t->pid != d->pid;
	if (d->gone)
		LUTFD_COPY(d->msg, d->t->last_death.msg);
}

/* From a job thread: wait (up to ms) until worker pid of t is gone and
 * handled by the loop. Returns true when it is, with its cause in *d. */
static bool wait_gone(struct lutfd_tenant *t, pid_t pid, uint32_t ms, struct death_check *d)
{
	uint64_t until = lutfd_now_ms() + ms;

	d->t = t;
	d->pid = pid;
	for (;;) {
		lutfd_main_call(death_check, d);
		if (d->gone || pid <= 0)
			return true;
		if (lutfd_now_ms() >= until)
			return false;
		poll(NULL, 0, 10);
	}
}

bool lutfd_tenant_wait_death(struct lutfd_tenant *t, pid_t pid, char *msg, size_t cap)
{
	struct death_check d = {0};

	if (pid <= 0 || !wait_gone(t, pid, 500, &d) || !d.msg[0])
		return false;
	snprintf(msg, cap, "worker died: %s", d.msg);
	return true;
}

/* Let the worker finish what it runs and go; the next one starts at once
 * (with the tenant's current tier and limits). */
void lutfd_tenant_recycle(struct lutfd_tenant *t)
{
	if (t->pid <= 0 || t->ctl < 0)
		return;
	t->recycle = true;
	t->up = false;
	/* The worker's cue to stop its Labors and exit; shutdown, not only
	 * close: a job may hold a copy of the socket. */
	shutdown(t->ctl, SHUT_RDWR);
	close(t->ctl);
	t->ctl = -1;
}

struct stop_step {
	struct lutfd_tenant *t;
	pid_t pid;
	bool kill;
};

static void stop_begin(void *arg)
{
	struct stop_step *s = arg;

	s->pid = s->t->pid;
	if (s->pid <= 0)
		return;
	if (s->kill) {
		if (s->t->pid == s->pid)
			kill(s->pid, SIGKILL);
		return;
	}
	lutfd_tenant_recycle(s->t);
}

int lutfd_worker_stop_sync(struct lutfd_tenant *t, uint32_t grace_ms)
{
	struct stop_step s = {.t = t};
	struct death_check d = {0};

	lutfd_main_call(stop_begin, &s);
	if (s.pid <= 0 || wait_gone(t, s.pid, grace_ms, &d))
		return 0;
	s.kill = true; /* still running a Brick past the grace */
	lutfd_main_call(stop_begin, &s);
	return wait_gone(t, s.pid, 2000, &d) ? 0 : -ETIMEDOUT;
}

void lutfd_zygote_event(void)
{
	pid_t pid;
	int status, r;

	/* A job's spawn reads the socket now: it hands over after. */
	if (pthread_mutex_trylock(&zy_mu))
		return;
	for (;;) {
		r = lutf_zygote_next_exit(&g_zygote, &pid, &status);
		if (r != 1)
			break;
		for (size_t i = 0; i < g_state.n; i++) {
			if (g_state.t[i]->pid == pid) {
				worker_down(g_state.t[i], status);
				break;
			}
		}
	}
	pthread_mutex_unlock(&zy_mu);
	if (r < 0) {
		/* No zygote, no new workers: lutfd cannot keep its promises. */
		lutfd_log("the zygote is gone; exiting");
		exit(1);
	}
}

void lutfd_tenants_tick(void)
{
	uint64_t now = lutfd_now_ms();

	lutfd_fault_tick(now);
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		/* workers = N: the mirror kept, missing workers opened (a failed
		 * open is tried again a second later). */
		if (!t->primary && t->rt && t->nwk < lutfd_workers_want(t) &&
		    now >= t->grow_at_ms && lutfd_workers_grow(t)) {
			lutfd_log("tenant %s: runs %u of %u workers", t->name, t->nwk,
				  lutfd_workers_want(t));
			t->grow_at_ms = now + 1000;
		}
		if (!t->primary)
			lutfd_workers_sync(t);

		if (t->rt && !t->pid && t->restart_at_ms && now >= t->restart_at_ms &&
		    !t->start_queued) {
			t->restart_at_ms = 0;
			lutfd_worker_queue_start(t); /* off the loop */
		}
	}
}

/*
 * Shutdown with Bricks still running past the grace (already answered
 * SHUTTING_DOWN): kill the workers and tell the engine, so that destroying
 * the runtime does not wait on functions nobody will read.
 */
static void kill_workers(void)
{
	uint64_t until = lutfd_now_ms() + 2000;
	bool any = false;
	pid_t pid;
	int status;

	for (size_t i = 0; i < g_state.n; i++) {
		if (g_state.t[i]->pid > 0) {
			kill(g_state.t[i]->pid, SIGKILL);
			any = true;
		}
	}
	while (any && lutfd_now_ms() < until) {
		struct pollfd p = {g_zygote.fd, POLLIN, 0};
		int r;

		if (!g_zygote.npending)
			poll(&p, 1, 50);
		while ((r = lutf_zygote_next_exit(&g_zygote, &pid, &status)) == 1) {
			for (size_t i = 0; i < g_state.n; i++) {
				struct lutfd_tenant *t = g_state.t[i];

				if (t->pid != pid)
					continue;
				lutf_runtime_worker_lost(t->rt, SIGKILL);
				t->pid = 0;
			}
		}
		any = false;
		for (size_t i = 0; i < g_state.n; i++)
			any |= g_state.t[i]->pid > 0;
		if (r < 0)
			break;
	}
}

void lutfd_tenants_stop(bool force)
{
	if (force)
		kill_workers();
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		if (!t->rt)
			continue;
		/* Release: pairs with the reaper's acquire load. */
		__atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
	}
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		if (!t->rt)
			continue;
		if (t->reaper_on)
			pthread_join(t->reaper, NULL);
		t->reaper_on = false;
		lutfd_reap_stop(t);
		lutf_runtime_destroy(t->rt);
		t->rt = NULL;
		if (t->ctl >= 0) {
			shutdown(t->ctl, SHUT_RDWR); /* the worker's cue to exit */
			close(t->ctl);
		}
		if (t->logfd >= 0) {
			lutf_ev_set(g_loop, t->logfd, 0, NULL, NULL);
			close(t->logfd);
		}
		t->ctl = t->logfd = -1;
		munmap(t->mem, t->size);
		close(t->memfd);
		t->memfd = -1;
	}
	lutf_supervisor_destroy(g_sup); /* unpins labor_watch */
	g_sup = NULL;
	lutfd_sigsys_fini();
	/* Workers leave once their control socket closed; give them a moment,
	 * then take the (empty) cgroups away. Busy ones stay for the next start. */
	for (int tries = 0; g_cg.mode != LUTFD_CG_NONE && tries < 10; tries++) {
		bool left = false;

		for (size_t i = 0; i < g_state.n; i++) {
			lutfd_cg_kill_all(&g_cg, g_state.t[i]->name);
			left |= lutfd_cg_tenant_remove(&g_cg, g_state.t[i]->name) > 0;
		}
		if (!left)
			break;
		poll(NULL, 0, 50);
	}
	lutfd_cg_fini(&g_cg);
}

/* ---- removal (lutfctl delete TENANT, a failed first deploy) ---- */

struct teardown {
	struct lutfd_tenant *t;
	bool is_worker; /* not worker 0 (workers.c) */
	uint32_t inflight;
	bool join;
	pthread_t reaper;
};

static void td_inflight(void *arg)
{
	struct teardown *d = arg;

	d->inflight = d->t->inflight;
}

static void td_stop_reaper(void *arg)
{
	struct teardown *d = arg;
	struct lutfd_tenant *t = d->t;

	d->join = t->reaper_on;
	d->reaper = t->reaper;
	t->reaper_on = false;
	/* Release: pairs with the reaper's acquire load. */
	__atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
}

/* Main thread: free everything of t but its files, and drop its record. */
static void td_free(void *arg)
{
	struct teardown *d = arg;
	struct lutfd_tenant *t = d->t;

	if (t->rt) {
		lutfd_reap_stop(t);
		lutf_runtime_destroy(t->rt);
		t->rt = NULL;
		munmap(t->mem, t->size);
		close(t->memfd);
	}
	if (t->logfd >= 0) {
		lutf_ev_set(g_loop, t->logfd, 0, NULL, NULL);
		close(t->logfd);
	}
	if (t->ctl >= 0)
		close(t->ctl);
	isolation_init(); /* a tenant never started since lutfd's start has a cgroup too */
	if (t->primary) {
		/* Another worker: its record only (worker 0 owns the rest). */
		struct lutfd_tenant *p = t->primary;

		/* Its slots name nothing now: a worker added later binds afresh. */
		for (size_t i = 0; i < p->nfns; i++)
			p->fns[i]->wbound &= ~(1u << t->widx);
		/* Workers go from the end only (workers.c, rm_next_worker), so
		 * the others keep their index, which f->wslot is keyed by. */
		if (p->nwk > 1 && p->wk[p->nwk - 1] == t)
			p->wk[--p->nwk] = NULL;
		t->fns = NULL;
		t->nfns = 0;
		t->apps = NULL;
	} else if (g_cg.mode != LUTFD_CG_NONE) {
		lutfd_cg_kill_all(&g_cg, t->name);
		if (lutfd_cg_tenant_remove(&g_cg, t->name) > 0)
			lutfd_log("tenant %s: cgroup busy; left in place", t->name);
	}
	for (size_t i = 0; i < g_state.n; i++) {
		if (g_state.t[i] != t)
			continue;
		memmove(&g_state.t[i], &g_state.t[i + 1], (g_state.n - i - 1) * sizeof(t));
		g_state.n--;
		break;
	}
	while (t->nfns)
		lutfd_fn_remove(t, t->fns[t->nfns - 1]);
	free(t->fns);
	free(t->apps);
	for (uint32_t i = 0; t->log && i < t->log_count; i++)
		free(t->log[(t->log_head + i) % g_cfg.log_lines]);
	free(t->log);
	free(t->slot_stats);
	free(t->slot_inflight);
	free(t->slot_hist);
	free(t);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path))
		lutfd_log("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

struct rm_next {
	struct lutfd_tenant *t, *s;
};

/* Main: the last other worker of t (worker 0), draining from now on. */
static void rm_next_worker(void *arg)
{
	struct rm_next *x = arg;
	struct lutfd_tenant *t = x->t;

	x->s = !t->primary && t->nwk > 1 ? t->wk[t->nwk - 1] : NULL;
	if (x->s) {
		x->s->draining = true;
		x->s->removing = true;
	}
}

int lutfd_tenant_remove_sync(struct lutfd_tenant *t)
{
	struct teardown d = {.t = t, .is_worker = t->primary != NULL};
	char name[LUTFD_NAME], dir[PATH_MAX];
	bool is_worker;
	uint64_t until;
	int err;

	LUTFD_COPY(name, t->name);
	/* workers = N: the other workers go first, then worker 0's record. */
	for (;;) {
		struct rm_next x = {.t = t};

		lutfd_main_call(rm_next_worker, &x);
		if (!x.s)
			break;
		err = lutfd_tenant_remove_sync(x.s);
		if (err)
			return err;
	}
	err = lutfd_worker_stop_sync(t, 2000);
	if (err)
		return err;
	/* Completions of its last calls (CRASHED, DELETED) reach their callers. */
	until = lutfd_now_ms() + 5000;
	for (;;) {
		lutfd_main_call(td_inflight, &d);
		if (!d.inflight)
			break;
		if (lutfd_now_ms() >= until)
			return -EBUSY;
		poll(NULL, 0, 10);
	}
	lutfd_main_call(td_stop_reaper, &d);
	if (d.join)
		pthread_join(d.reaper, NULL);
	is_worker = d.is_worker;
	lutfd_main_call(td_free, &d); /* t is gone */
	if (is_worker)
		return 0;
	snprintf(dir, sizeof(dir), "%s/apps/%s", g_cfg.state_dir, name);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(dir, sizeof(dir), "%s/scratch/%s", g_cfg.state_dir, name);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	lutfd_log("tenant %s removed (worker, uid, cgroup, region, apps, scratch)", name);
	return 0;
}
