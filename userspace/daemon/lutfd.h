/* SPDX-License-Identifier: MIT */
/*
 * lutfd internals shared by its files. Threads: the main thread runs the
 * event loop, the control plane, the registry and every struct here; each
 * tenant has one reaper thread that only calls lutf_runtime_reap and hands
 * completions over through the completion queue (dispatch.c).
 */
#ifndef LUTFD_H
#define LUTFD_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <lutf/runtime.h>

#include "ingress.h"
#include "wire.h"
#include "worker.h"

#define LUTFD_NAME 64 /* tenant, app and function names, with the NUL */

struct lutfd_config {
	char state_dir[1024];
	char runtime_dir[1024];
	char group[32];	    /* socket group; "lutf" */
	uint32_t max_frame; /* payload bytes of one frame */
	uint32_t max_conns;
	uint32_t max_queued;	  /* Bricks in flight per tenant before OVERLOADED */
	uint64_t conn_out_max;	  /* reply bytes queued per connection before reading stops */
	uint32_t idle_timeout_ms; /* silent or not-reading connections are closed */
	uint32_t shutdown_grace_ms;
	uint32_t log_lines; /* per-tenant log ring */
	uint32_t max_tenants;
	uint32_t restart_backoff_max_ms;
	uint32_t load_timeout_ms; /* a worker's answer to a load */
	bool bpf;
	char bpf_pin_root[40]; /* + "/<tenant>" must fit the engine's 64 bytes */
	/* engine, per tenant */
	uint32_t carts, labors, labors_max, cart_capacity, arena_mb, max_functions, hold_max;
	uint32_t timeout_ms;
	uint32_t spin_us, grace_us, poll_us, labor_idle_ms; /* engine tunables */
};

/* Fill the defaults. */
void lutfd_config_defaults(struct lutfd_config *c);
/* Read an INI file over *c. Returns 0, -ENOENT (missing) or -EINVAL (message printed). */
int lutfd_config_load(struct lutfd_config *c, const char *path);

struct lutfd_app {
	char name[LUTFD_NAME];
	uint64_t version;
	char tier[32];
	uint32_t timeout_ms, memory_mb, max_concurrency;
};

struct lutfd_fn {
	char name[LUTFD_NAME];
	char app[LUTFD_NAME];
	char symbol[128];
	bool paused;
	char **config; /* "key", "value", ..., NULL (or NULL) */
	size_t nconfig;
	/* not persisted */
	bool bound;
	uint32_t slot;
};

struct lutfd_log_line {
	char *text;
};

struct lutfd_tenant {
	char name[LUTFD_NAME];
	struct lutfd_app *apps;
	size_t napps;
	struct lutfd_fn **fns;
	size_t nfns;
	/* running (tenant.c) */
	int memfd;
	void *mem;
	size_t size;
	struct lutf_runtime *rt;
	pid_t pid; /* 0 while no worker runs */
	int ctl, logfd;
	bool up;
	uint32_t restarts;
	uint64_t restart_at_ms; /* 0: no restart scheduled */
	uint32_t backoff_ms;
	uint64_t started_ms;
	pthread_t reaper;
	bool reaper_on;
	int stop; /* atomic: the reaper's stop flag */
	uint32_t inflight;
	uint64_t faults_seen; /* region_faults already acted on (dispatch.c) */
	pid_t faulty_pid;     /* worker already SIGKILLed for them */
	uint64_t (*slot_stats)[LUTF_STATUS__COUNT]; /* by runtime slot */
	uint32_t *slot_inflight; /* by runtime slot: calls in flight (max_concurrency) */
	char **log;
	uint32_t log_head, log_count;
};

struct lutfd_state {
	struct lutfd_tenant **t;
	size_t n;
};

extern struct lutfd_config g_cfg;
extern struct lutfd_state g_state;
extern struct lutf_zygote g_zygote;
extern struct lutf_ev_loop *g_loop;
extern struct lutf_srv *g_srv;

uint64_t lutfd_now_ms(void);
/* Copy a string into an array, cutting it to fit. */
#define LUTFD_COPY(dst, src) lutfd_copy((dst), sizeof(dst), (src))
static inline void lutfd_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}
void lutfd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- state.c: registry and app store ---- */
/* Load the registry into g_state (tenants not started). Returns 0 or -errno. */
int lutfd_state_load(void);
/* Persist g_state durably. Returns 0 or -errno. */
int lutfd_state_save(void);
struct lutfd_tenant *lutfd_tenant_find(const char *name);
/* Find or add a tenant record. Returns it, or NULL (ENOMEM or max_tenants). */
struct lutfd_tenant *lutfd_tenant_get(const char *name);
struct lutfd_app *lutfd_app_find(struct lutfd_tenant *t, const char *app);
struct lutfd_fn *lutfd_fn_find(struct lutfd_tenant *t, const char *fn);
/* Write so bytes as apps/<tenant>/<app>/<version>.so (never overwriting).
 * Returns 0 and the path, or -errno. */
int lutfd_store_so(const char *tenant, const char *app, uint64_t version, const void *so,
		   size_t len, char *path, size_t cap);
void lutfd_so_path(const char *tenant, const char *app, uint64_t version, char *path, size_t cap);
/* Remove fn from its tenant's table and free it. */
void lutfd_fn_remove(struct lutfd_tenant *t, struct lutfd_fn *f);

/* ---- tenant.c: region, worker, reaper ---- */
/* Create the region and runtime, start the reaper and a worker with the
 * tenant's apps, bind its functions. Returns 0 or -errno. */
int lutfd_tenant_start(struct lutfd_tenant *t);
/* Ask the worker to load version of app exporting fns; msg gets the worker's
 * error. Returns 0 or -errno. */
int lutfd_tenant_load(struct lutfd_tenant *t, const char *app, uint64_t version,
		      struct lutfd_fn *const *fns, size_t nfns, char *msg, size_t cap);
/* Bind a function of a loaded app to a runtime slot ("<app>/<fn>"). Returns 0 or -errno. */
int lutfd_fn_bind(struct lutfd_tenant *t, struct lutfd_fn *f, uint32_t timeout_ms);
/* The zygote socket is readable: handle worker exits. */
void lutfd_zygote_event(void);
/* Restarts that are due. */
void lutfd_tenants_tick(void);
/* Stop reapers, destroy runtimes, close workers (force: SIGKILL them first,
 * for Bricks still running after the shutdown grace). */
void lutfd_tenants_stop(bool force);
void lutfd_tenant_logs_append(struct lutfd_tenant *t, const char *fn, const char *line, size_t len);

/* ---- dispatch.c: frames, invocations, completions ---- */
int lutfd_dispatch_init(void);
void lutfd_frame(void *ctx, struct lutf_conn *c, const struct lutf_wire_hdr *h,
		 const uint8_t *payload);
/* Called by reaper threads. */
void lutfd_completions_push(struct lutfd_tenant *t, struct lutf_completion *cs, int n);
/* Requests in flight (accepted, not yet answered). */
uint64_t lutfd_inflight(void);
/* Answer every request in flight with SHUTTING_DOWN. */
void lutfd_fail_inflight(void);
/* Send a finished reply frame to a connection by id. */
void lutfd_reply(uint64_t conn_id, struct lutf_buf *b);

/* ---- control.c ---- */
void lutfd_control(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload);

#endif /* LUTFD_H */
