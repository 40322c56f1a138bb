/* SPDX-License-Identifier: MIT */
/*
 * lutfd's start-up, timed stage by stage and logged on one line, with the
 * slow set-up that tenants need run beside the rest: one thread loads
 * labor_watch (the Supervisor), another prepares isolation (cgroups, the
 * leftovers of an earlier lutfd killed, the SIGSYS probe), while the main
 * thread reads the registry and opens its listeners. Invariant: the threads
 * start after the zygote and the watcher were forked (a fork copies only its
 * caller), and what the isolation thread sets up is read only after
 * lutfd_startup_join_isolation returned (tenant.c joins at the top of its
 * lazy set-up), so it is the main thread's again before anyone uses it. The
 * BPF thread is not waited for: the Supervisor polls until labor_watch is in
 * (supervisor.c switches under its own locks), the SIGSYS probe is guarded by
 * sigsys.c's, and only shutdown joins it (lutfd_startup_join).
 */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lutfd.h"
#include "startup.h"

#define MAX_STAGES 24
#define SETTLE_BOUND_MS 60000 /* stop waiting for start-time workers to log them */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Main thread only. */
static uint64_t t0, t_mark, t_ready;
static struct {
	const char *name;
	uint64_t us;
} stages[MAX_STAGES];
static unsigned nstages;

/* The set-up threads. mu guards running, iso_running and the results; cv is
 * broadcast when either drops. prep_self marks those threads, which never
 * wait for all of them (their work calls back into tenant.c's lazy set-up);
 * iso_self the isolation thread, which never waits for itself. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned running;
static bool iso_running;
static uint64_t bpf_us, iso_us; /* how long each thread took; 0: not run */
static uint64_t bpf_end;	/* when the BPF thread ended, monotonic us */
static int bpf_err;
static __thread bool prep_self, iso_self;
static libbpf_print_fn_t print_before; /* libbpf's printer before the threads */
static bool threads_used;
static bool bpf_beside; /* the BPF thread was started (main thread, before it) */

void lutfd_startup_begin(void)
{
	t0 = t_mark = now_us();
}

void lutfd_startup_mark(const char *stage)
{
	uint64_t now = now_us();

	if (nstages < MAX_STAGES) {
		stages[nstages].name = stage;
		stages[nstages].us = now - t_mark;
		nstages++;
	}
	t_mark = now;
}

static void prep_done(uint64_t *slot, uint64_t began)
{
	bool last;

	pthread_mutex_lock(&mu);
	*slot = now_us() - began;
	if (!*slot)
		*slot = 1;
	if (slot == &iso_us)
		iso_running = false;
	else
		bpf_end = now_us();
	last = !--running;
	/* The last one out puts libbpf's printer of before back (both swap it
	 * for a quiet one and back, so the swaps may have interleaved). */
	if (last && threads_used)
		libbpf_set_print(print_before);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

void lutfd_startup_bpf_delay(void)
{
	const char *v = getenv("LUTF_START_BPF_DELAY_MS");
	char *end;
	unsigned long ms;

	if (!v || !*v)
		return;
	ms = strtoul(v, &end, 10);
	if (*end || ms > 10000) {
		lutfd_log("LUTF_START_BPF_DELAY_MS=%s: not 0..10000; ignored", v);
		return;
	}
	lutfd_log("LUTF_START_BPF_DELAY_MS=%lu: labor_watch's load waits that long", ms);
	nanosleep(&(struct timespec){(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L}, NULL);
}

static void *bpf_main(void *arg)
{
	uint64_t began = now_us();
	int err;

	prep_self = true;
	err = lutfd_tenant_prepare_supervisor();
	pthread_mutex_lock(&mu);
	bpf_err = err;
	pthread_mutex_unlock(&mu);
	prep_done(&bpf_us, began);
	/* Not waited for by the start: its own line (t0 is not written again). */
	lutfd_log("start: bpf set-up %.2f ms beside the start%s (SIGSYS probe, labor_watch), done "
		  "%.2f ms after main()",
		  (double)(now_us() - began) / 1e3, err ? " (labor_watch failed)" : "",
		  (double)(now_us() - t0) / 1e3);
	return NULL;
}

static void *iso_main(void *arg)
{
	uint64_t began = now_us();

	prep_self = iso_self = true;
	lutfd_tenant_prepare_isolation();
	prep_done(&iso_us, began);
	return NULL;
}

int lutfd_startup_prepare(void)
{
	void *(*const fns[2])(void *) = {bpf_main, iso_main};
	pthread_attr_t attr;

	/* Both threads may load BPF; each swaps libbpf's printer (a global) for
	 * a quiet one and back, so the swaps may interleave: the join puts the
	 * printer of before back. */
	print_before = libbpf_set_print(NULL);
	libbpf_set_print(print_before);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < 2; i++) {
		pthread_t th;

		pthread_mutex_lock(&mu);
		running++;
		iso_running |= i == 1;
		bpf_beside |= i == 0;
		threads_used = true;
		pthread_mutex_unlock(&mu);
		if (pthread_create(&th, &attr, fns[i], NULL)) {
			/* Its work is left to the first tenant (tenant.c's lazy path). */
			pthread_mutex_lock(&mu);
			running--;
			iso_running &= i != 1;
			bpf_beside &= i != 0;
			pthread_mutex_unlock(&mu);
			lutfd_log("start: no set-up thread (%s); the first tenant does it",
				  strerror(errno));
			continue;
		}
	}
	pthread_attr_destroy(&attr);
	return 0;
}

static bool running_now(void)
{
	bool r;

	pthread_mutex_lock(&mu);
	r = running != 0;
	pthread_mutex_unlock(&mu);
	return r;
}

void lutfd_startup_join(void)
{
	if (prep_self)
		return;
	pthread_mutex_lock(&mu);
	while (running)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

bool lutfd_startup_bpf_beside(void)
{
	bool b;

	pthread_mutex_lock(&mu);
	b = bpf_beside;
	pthread_mutex_unlock(&mu);
	return b;
}

void lutfd_startup_join_isolation(void)
{
	if (iso_self)
		return;
	pthread_mutex_lock(&mu);
	while (iso_running)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

/* Append to line (cap bytes, *n used), cutting what does not fit. */
static void put(char *line, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *line, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (*n >= cap - 1)
		return;
	va_start(ap, fmt);
	k = vsnprintf(line + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (k > 0)
		*n = *n + (size_t)k < cap - 1 ? *n + (size_t)k : cap - 1;
}

void lutfd_startup_ready(void)
{
	char line[1024];
	size_t n = 0;
	uint64_t b, i;
	int err;

	t_ready = now_us();
	put(line, sizeof(line), &n, "start:");
	for (unsigned k = 0; k < nstages; k++)
		put(line, sizeof(line), &n, "%s %s %.2f%s", k ? "," : "", stages[k].name,
		    (double)stages[k].us / 1e3, k ? "" : " ms");
	pthread_mutex_lock(&mu);
	b = bpf_us;
	i = iso_us;
	err = bpf_err;
	pthread_mutex_unlock(&mu);
	/* The threads' own durations, which overlapped the stages above. */
	if (b)
		put(line, sizeof(line), &n, "; beside them: bpf %.2f%s", (double)b / 1e3,
		    err ? " (failed)" : "");
	if (i)
		put(line, sizeof(line), &n, "%s isolation %.2f",
		    b ? "," : "; beside them:", (double)i / 1e3);
	if (running_now())
		put(line, sizeof(line), &n, " (set-up still running)");
	put(line, sizeof(line), &n, "; ready in %.2f ms (main at monotonic %.6f s)",
	    (double)(t_ready - t0) / 1e3, (double)t0 / 1e6);
	lutfd_log("%s", line);
}

/* A registry tenant (worker 0) that had functions at start has its worker
 * up, gave up starting (crash loop) or went away. */
static bool settled(const struct lutfd_tenant *t)
{
	return !t->nfns || t->removing || t->up || t->fails_in_row > 0;
}

bool lutfd_startup_tick(void)
{
	static size_t total, up;
	static bool counted;
	uint64_t now = now_us();
	size_t waiting = 0;

	if (!counted) {
		counted = true;
		for (size_t k = 0; k < g_state.n; k++)
			if (!g_state.t[k]->primary && g_state.t[k]->nfns)
				total++;
		if (!total)
			return false; /* nothing to start: nothing to say */
	}
	/* Cheap while waiting: the loop calls this on every pass, so only the
	 * first tenant not yet settled is looked at each time. */
	up = 0;
	for (size_t k = 0; k < g_state.n; k++) {
		const struct lutfd_tenant *t = g_state.t[k];

		if (t->primary)
			continue;
		if (!settled(t)) {
			waiting++;
			break;
		}
		up += t->nfns && t->up;
	}
	if (waiting && now - t_ready < (uint64_t)SETTLE_BOUND_MS * 1000u)
		return true;
	if (waiting)
		lutfd_log("start: workers of %zu tenants still starting %u s after ready", total,
			  SETTLE_BOUND_MS / 1000);
	else
		lutfd_log("start: workers of %zu of %zu tenants up %.2f ms after ready, %.2f ms "
			  "after launch",
			  up, total, (double)(now - t_ready) / 1e3, (double)(now - t0) / 1e3);
	return false;
}
