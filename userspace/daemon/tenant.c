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
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define LUTFD_MAX_WATCHED 65536u /* labor_watch slots at most (LW_MAX_SLOTS) */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "isolation.h"
#include "lutfd.h"

#define SPAWN_TIMEOUT_MS 5000

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

	if (done)
		return;
	done = true;
	lutfd_cg_init(&g_cg, g_cfg.cgroup, g_cfg.cgroup_v2_root, g_cfg.cgroup_v1_root,
		      g_cfg.cgroup_name);
	lutfd_cg_describe(&g_cg, what, sizeof(what));
	lutfd_sigsys_init(g_cfg.bpf_pin_root);
	lutfd_log("isolation: %s; uid_range %s; SIGSYS syscalls from %s", what, g_cfg.uid_range,
		  lutfd_sigsys_mode());
}

void lutfd_tenant_logs_append(struct lutfd_tenant *t, const char *fn, const char *line, size_t len)
{
	char stamp[32], *s;
	struct timespec ts;
	struct tm tm;
	uint32_t i;

	if (!t->log)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (asprintf(&s, "%s.%03ldZ %s: %.*s", stamp, ts.tv_nsec / 1000000, fn, (int)len, line) < 0)
		return;
	i = (t->log_head + t->log_count) % g_cfg.log_lines;
	if (t->log_count == g_cfg.log_lines) {
		free(t->log[t->log_head]);
		t->log_head = (t->log_head + 1) % g_cfg.log_lines;
		t->log_count--;
	}
	t->log[i] = s;
	t->log_count++;
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
		lutfd_tenant_logs_append(t, buf, buf + fl + 1, (size_t)n - fl - 1);
	}
}

static void log_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	log_drain(data);
}

/* Returns 0 or -errno; msg gets the worker's text. */
static int ctl_call(struct lutfd_tenant *t, const void *req, size_t len, char *msg, size_t cap)
{
	uint64_t until = lutfd_now_ms() + g_cfg.load_timeout_ms;
	char buf[600];
	int32_t rc;
	ssize_t n;

	if (msg && cap)
		msg[0] = 0;
	if (t->ctl < 0)
		return -EPIPE;
	if (send(t->ctl, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -EPIPE;
	for (;;) {
		struct pollfd p = {t->ctl, POLLIN, 0};
		uint64_t now = lutfd_now_ms();

		if (now >= until) {
			/* A worker that does not answer is of no use: recycle it. */
			if (t->pid > 0)
				kill(t->pid, SIGKILL);
			snprintf(msg, cap, "worker did not answer within %u ms",
				 g_cfg.load_timeout_ms);
			return -ETIMEDOUT;
		}
		if (poll(&p, 1, (int)(until - now)) > 0)
			break;
	}
	n = recv(t->ctl, buf, sizeof(buf) - 1, 0);
	if (n < (ssize_t)sizeof(rc)) {
		snprintf(msg, cap, "worker died");
		return -EPIPE;
	}
	buf[n] = 0;
	memcpy(&rc, buf, sizeof(rc));
	snprintf(msg, cap, "%s", buf + sizeof(rc));
	return rc;
}

/* Returns 0 or -errno. */
int lutfd_tenant_load(struct lutfd_tenant *t, const char *app, uint64_t version,
		      struct lutfd_fn *const *fns, size_t nfns, char *msg, size_t cap)
{
	char path[PATH_MAX];
	struct lutf_buf b;
	uint8_t op = LUTF_WK_LOAD;
	int err;

	lutfd_so_path(t->name, app, version, path, sizeof(path));
	lutf_buf_init(&b);
	lutf_buf_put(&b, &op, 1);
	lutf_tlv_put_str(&b, LUTF_TAG_APP, app);
	lutf_tlv_put_str(&b, LUTF_TAG_SO, path);
	for (size_t i = 0; i < nfns; i++) {
		char ex[LUTFD_NAME + 130];

		snprintf(ex, sizeof(ex), "%s=%s", fns[i]->name, fns[i]->symbol);
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, ex);
	}
	for (size_t i = 0; i < nfns; i++) {
		for (size_t k = 0; k < fns[i]->nconfig; k++) {
			const char *key = fns[i]->config[2 * k], *val = fns[i]->config[2 * k + 1];
			size_t fl = strlen(fns[i]->name), kl = strlen(key), vl = strlen(val);
			char *v = malloc(fl + kl + vl + 2);

			if (!v) {
				b.failed = true;
				break;
			}
			memcpy(v, fns[i]->name, fl + 1);
			memcpy(v + fl + 1, key, kl + 1);
			memcpy(v + fl + kl + 2, val, vl);
			lutf_tlv_put(&b, LUTF_TAG_CONFIG, v, fl + kl + vl + 2);
			free(v);
		}
	}
	if (b.failed || b.len > LUTF_WK_MSG_MAX) {
		snprintf(msg, cap, "load request too large (configuration over %u bytes)",
			 LUTF_WK_MSG_MAX);
		lutf_buf_free(&b);
		return -E2BIG;
	}
	err = ctl_call(t, b.data, b.len, msg, cap);
	lutf_buf_free(&b);
	return err;
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
	/* now > 0 (CLOCK_MONOTONIC ms): 0 stays "none scheduled". Due at once
	 * without backoff: the tick right after this event starts it. */
	t->restart_at_ms = now + t->backoff_ms;
}

/* Spawn a worker, load every app of the tenant, start its Labors. Returns 0 or -errno. */
static int worker_start(struct lutfd_tenant *t)
{
	int ctl[2] = {-1, -1}, lg[2] = {-1, -1}, err;
	struct lutf_wk_sandbox sb;
	char msg[300];
	uint8_t op = LUTF_WK_START;
	uint64_t t0 = now_us(), t_spawn, t_cg, t_load, t_start;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, lg)) {
		err = -errno;
		goto fail;
	}
	lutfd_cg_kill_all(&g_cg, t->name); /* leftovers of an earlier worker */
	err = lutfd_tenant_sandbox(t, &sb);
	if (err) {
		close(ctl[0]);
		close(ctl[1]);
		close(lg[0]);
		close(lg[1]);
		goto fail;
	}
	t_spawn = now_us();
	err = lutf_zygote_spawn(&g_zygote, t->name, t->memfd, t->size, ctl[1], lg[1], &sb,
				SPAWN_TIMEOUT_MS, &pid);
	close(ctl[1]);
	close(lg[1]);
	if (err) {
		close(ctl[0]);
		close(lg[0]);
		goto fail;
	}
	/* Before the first LOAD: no app code runs outside the tenant's cgroup.
	 * (The worker confines itself meanwhile. On cgroup v1 without
	 * favordynmods the first move after a quiet spell waits for an RCU
	 * grace period: milliseconds, the largest part of a worker's start.) */
	t_cg = now_us();
	if (g_cg.mode != LUTFD_CG_NONE && (err = lutfd_cg_attach(&g_cg, t->name, pid)))
		lutfd_log("tenant %s: worker %d not moved into its cgroup: %s", t->name, (int)pid,
			  strerror(-err));
	if (lutfd_cg_oom_kills(&g_cg, t->name, &t->oom_seen))
		t->oom_seen = 0;
	lutfd_sigsys_watch(pid);
	t->pid = pid;
	/* Before any app code runs: Labor tids are checked against this process. */
	if ((err = lutf_runtime_set_worker(t->rt, pid)))
		lutfd_log(
		    "tenant %s: worker %d: /proc entry not held (%s): its Labors go unwatched",
		    t->name, (int)pid, strerror(-err));
	t->ctl = ctl[0];
	t->logfd = lg[0];
	t->started_ms = lutfd_now_ms();
	lutf_ev_set(g_loop, t->logfd, LUTF_EV_READ, log_event, t);
	t_load = now_us();
	for (size_t a = 0; a < t->napps; a++) {
		struct lutfd_fn *fns[256];
		size_t n = 0;

		for (size_t i = 0; i < t->nfns && n < 256; i++)
			if (!strcmp(t->fns[i]->app, t->apps[a].name))
				fns[n++] = t->fns[i];
		if (!n)
			continue;
		err = lutfd_tenant_load(t, t->apps[a].name, t->apps[a].version, fns, n, msg,
					sizeof(msg));
		if (err == -EPIPE || err == -ETIMEDOUT)
			return err; /* the exit notice restarts it */
		if (err)
			lutfd_log("tenant %s: app %s v%llu does not load: %s", t->name,
				  t->apps[a].name, (unsigned long long)t->apps[a].version, msg);
	}
	t_start = now_us();
	err = ctl_call(t, &op, 1, msg, sizeof(msg));
	if (err) {
		lutfd_log("tenant %s: worker %d does not start: %s", t->name, (int)pid, msg);
		kill(pid, SIGKILL);
		return err;
	}
	t->up = true;
	t->fails_in_row = 0;
	{
		uint64_t end = now_us();

		/* spawn: the zygote's fork; cgroup: the move; confine+load:
		 * the worker's sandbox (overlapping the move) and its apps. */
		lutfd_log("tenant %s: worker %d up (tier %s, uid %u) in %.2f ms: spawn %.2f, "
			  "cgroup %.2f, confine+load %.2f, start %.2f",
			  t->name, (int)pid, sb.tier[0] ? sb.tier : "none", sb.uid,
			  (double)(end - t0) / 1e3, (double)(t_cg - t_spawn) / 1e3,
			  (double)(t_load - t_cg) / 1e3, (double)(t_start - t_load) / 1e3,
			  (double)(end - t_start) / 1e3);
	}
	return 0;
fail:
	lutfd_log("tenant %s: cannot spawn a worker: %s", t->name, strerror(-err));
	t->fails_in_row++;
	schedule_restart(t);
	return err;
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
	c->spin_ns = g_cfg.spin_us * 1000u;
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
	f->slot = id;
	f->bound = true;
	if (f->paused) {
		err = lutf_runtime_pause(t->rt, id);
		if (err && err != -EALREADY)
			return err;
	}
	return 0;
}

/* One Supervisor (and one labor_watch) for every tenant: lutfd alone loads
 * BPF, once, and one thread watches the Labors of every worker. Created with
 * the first tenant, after the zygote was forked. */
static struct lutf_supervisor *g_sup;

static int supervisor(struct lutf_supervisor **out)
{
	struct lutf_supervisor_opts o = {.watch = g_cfg.bpf ? LUTF_WATCH_BPF : LUTF_WATCH_POLL};
	uint32_t labors = g_cfg.labors_max ? g_cfg.labors_max : 64;
	int err;

	if (!g_sup) {
		if (g_cfg.bpf && g_cfg.bpf_pin_root[0]) {
			mkdir(g_cfg.bpf_pin_root, 0700);
			snprintf(o.bpf_pin_dir, sizeof(o.bpf_pin_dir), "%s", g_cfg.bpf_pin_root);
		}
		o.max_labors = labors * g_cfg.max_tenants;
		o.max_labors_per_runtime = g_cfg.bpf_labors_per_tenant;
		if (o.max_labors > LUTFD_MAX_WATCHED)
			o.max_labors = LUTFD_MAX_WATCHED;
		err = lutf_supervisor_create(&o, &g_sup);
		if (err)
			return err;
		lutfd_log("supervisor: watch mode %s",
			  lutf_watch_mode_str(lutf_supervisor_mode(g_sup)));
	}
	*out = g_sup;
	return 0;
}

/* Returns 0 or -errno. */
int lutfd_tenant_start(struct lutfd_tenant *t)
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
	err = lutfd_tenant_identity(t);
	if (err)
		return err;
	err = lutfd_tenant_dirs(t);
	if (err)
		lutfd_log("tenant %s: cannot prepare its folders: %s", t->name, strerror(-err));
	if (g_cg.mode != LUTFD_CG_NONE) {
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
	/* Apps load before Labors start: a queued Brick never meets an unbound name. */
	worker_start(t);
	for (size_t i = 0; i < t->nfns; i++) {
		struct lutfd_app *a = lutfd_app_find(t, t->fns[i]->app);

		err = lutfd_fn_bind(t, t->fns[i], a ? a->timeout_ms : 0);
		if (err)
			lutfd_log("tenant %s: cannot bind %s: %s", t->name, t->fns[i]->name,
				  strerror(-err));
	}
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
	/* Nothing of a tenant outlives its worker: processes it forked (compat)
	 * would hold its uid's RLIMIT_NPROC and its cgroup's pids. */
	if ((n = lutfd_cg_kill_all(&g_cg, t->name)) > 0)
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

/* The worker died during a control call (-EPIPE): wait, bounded, for the
 * zygote's notice of its exit, handle it, and put its cause into msg. */
bool lutfd_tenant_wait_death(struct lutfd_tenant *t, char *msg, size_t cap)
{
	uint64_t until = lutfd_now_ms() + 500;
	pid_t pid = t->pid;

	while (pid > 0 && t->pid == pid && lutfd_now_ms() < until) {
		struct pollfd p = {g_zygote.fd, POLLIN, 0};

		if (!g_zygote.npending)
			poll(&p, 1, 20);
		lutfd_zygote_event();
	}
	if (pid <= 0 || t->pid == pid || !t->last_death.msg[0])
		return false;
	snprintf(msg, cap, "worker died: %s", t->last_death.msg);
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
	close(t->ctl); /* the worker's cue to stop its Labors and exit */
	t->ctl = -1;
}

void lutfd_zygote_event(void)
{
	pid_t pid;
	int status, r;

	while ((r = lutf_zygote_next_exit(&g_zygote, &pid, &status)) == 1) {
		for (size_t i = 0; i < g_state.n; i++) {
			if (g_state.t[i]->pid == pid) {
				worker_down(g_state.t[i], status);
				break;
			}
		}
	}
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

		if (t->rt && !t->pid && t->restart_at_ms && now >= t->restart_at_ms) {
			t->restart_at_ms = 0;
			worker_start(t);
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
		if (t->ctl >= 0)
			close(t->ctl); /* the worker's cue to exit */
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
