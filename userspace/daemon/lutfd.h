/* SPDX-License-Identifier: MIT */
/*
 * lutfd internals shared by its files. Threads: the main thread runs the
 * event loop and owns the registry and every struct here; control work that
 * blocks (deploys, worker starts, registry writes) runs on job threads that
 * reach these structs only through lutfd_main_call (jobs.c states the rule). On
 * io_uring the main thread also reaps each tenant's completions itself,
 * woken by a futex wait in its ring; otherwise (epoll, LUTF_REAP=thread) each
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

#include "host.h"

#include "ingress.h"
#include "wire.h"
#include "worker.h"

#define LUTFD_NAME 64 /* tenant, app and function names, with the NUL */

/* worker processes of one tenant (workers = N) */
#define LUTFD_WORKERS_MAX 16

#define LUTFD_TCP_DEFAULT "127.0.0.1:7400" /* listen_tcp; taken: lutfd runs without TCP */
/* spin_us when the config file does not set it: 50 us when lutfd (and so its
 * workers) may use more than one CPU, 5 when at most one (tenant.c). */
#define LUTFD_SPIN_AUTO UINT32_MAX
#define LUTFD_SPIN_US_MANY 50
#define LUTFD_SPIN_US_ONE 5

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
	/* labor_watch slots one tenant may hold; 0 = its labors_max */
	uint32_t bpf_labors_per_tenant;
	/* engine, per tenant */
	uint32_t carts, labors, labors_max, cart_capacity, arena_mb, max_functions, hold_max;
	uint32_t timeout_ms;
	uint32_t spin_us, grace_us, poll_us, labor_idle_ms; /* engine tunables */
	/* ingress (issue #5; docs/daemon.md "Ingress") */
	char ingress[16];     /* "auto", "uring" or "epoll"; LUTF_INGRESS overrides */
	char listen_tcp[128]; /* "127.0.0.1:7400", "[::1]:7400"; "" or "off": none */
	uint32_t uring_entries, uring_buffers, uring_buffer_size;
	/* isolation (issue #6; docs/daemon.md "Tiers, identity, limits, faults") */
	char uid_range[32];	 /* "61000-61999" (uid = gid) or "off" */
	char default_tier[16];	 /* tier of a deploy that names none */
	char policy_dir[256];	 /* <tier>.policy files */
	char cgroup[8];		 /* "auto", "v2", "v1" or "off" */
	char cgroup_v2_root[256]; /* "" = lutfd's own cgroup on the cgroup2 mount */
	char cgroup_v1_root[256]; /* where the v1 controllers are mounted */
	char cgroup_name[32];	 /* tenants go to <root>/<cgroup_name>/<tenant> */
	uint32_t tenant_memory_mb; /* when no app names MEMORY_MB; 0 = no limit */
	uint32_t tenant_pids_max;  /* pids.max and RLIMIT_NPROC; 0 = none */
	uint32_t tenant_cpu_pct;   /* cpu.max, percent of one CPU; 0 = none */
	uint32_t tenant_nofile, tenant_fsize_mb, tenant_cpu_s; /* rlimits; 0 = none */
	uint32_t stuck_grace_ms;   /* a Brick past its deadline this long recycles the worker */
	uint32_t crash_loop_limit; /* failed starts in a row before queued calls fail */
	bool allow_tier_none;	   /* deploys may name tier "none" (benchmarks, tests) */
	/* HTTP gateway (issue #7; docs/operator.md "HTTP gateway") */
	char http_listen[128];	/* "127.0.0.1:8080"; "" or "off": none */
	char admin_listen[128]; /* /metrics, /healthz; "" or "off": on http_listen */
	uint32_t http_max_header, http_max_body, http_max_rps, http_max_pending;
	uint32_t http_request_timeout_ms; /* a request begun, not complete: 408 */
	/* API keys and reach (issue 12.3; docs/operator.md "API keys") */
	bool require_keys;	       /* TCP and HTTP invocations need a key (keys.c) */
	char admin_token_file[256];    /* "" = <state_dir>/admin.token, made at start */
	bool functions_reach_lutfd;    /* tenants' connect rules keep lutfd's ports */
	uint32_t frame_timeout_ms;     /* a binary frame begun, not complete: close */
	uint64_t input_buffered_max;   /* unparsed input over all connections */

	/* worker processes of a tenant whose deploys named none (workers.c) */
	uint32_t tenant_workers;
	/* cluster mode (issue #15; docs/cluster.md): "" = one host, no NATS */
	char cluster[512];	 /* "nats://host:port[,...]" */
	char cluster_creds[256]; /* a NATS .creds file */
	char cluster_token[256]; /* a NATS token */
	char cluster_node[64];	 /* this node's name; "" = the host name */
};

/* Fill the defaults. */
void lutfd_config_defaults(struct lutfd_config *c);
/* Read an INI file over *c. Returns 0, -ENOENT (missing) or -EINVAL (message printed). */
int lutfd_config_load(struct lutfd_config *c, const char *path);
/* tenant_identity.c: check uid_range, default_tier and cgroup (message printed, naming
 * path). Returns 0 or -EINVAL. */
int lutfd_config_check_isolation(const struct lutfd_config *c, const char *path);
/* config.c: call fn for every key whose value differs between a and b; off
 * and size locate the value inside struct lutfd_config. */
void lutfd_config_changes(const struct lutfd_config *a, const struct lutfd_config *b,
			  void (*fn)(void *ctx, const char *key, size_t off, size_t size),
			  void *ctx);

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
	bool deleting; /* a DELETE is being saved: the registry leaves it out */
	char **config; /* "key", "value", ..., NULL (or NULL) */
	size_t nconfig;
	/* not persisted */
	bool bound;
	uint32_t slot;

	/* workers = N: bound[w] and slot in worker w's runtime (bound and slot
	 * above are worker 0's, = wslot[0]) */
	uint32_t wbound;
	uint32_t wslot[LUTFD_WORKERS_MAX];
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
	/* No reaper: the loop's io_uring futex wait on the completion bell
	 * (tenant.c); non-NULL while one is armed (the engine counts it a sleeper). */
	struct lutf_ev_futex *reap_wait;
	uint32_t inflight;
	uint64_t faults_seen; /* region_faults already acted on (dispatch.c) */
	pid_t faulty_pid;     /* worker already SIGKILLed for them */
	unsigned fault_check; /* enum lutf_fault_check that condemned faulty_pid */
	uint64_t (*slot_stats)[LUTF_STATUS__COUNT]; /* by runtime slot */
	uint32_t *slot_inflight; /* by runtime slot: calls in flight (max_concurrency) */
	struct lutf_prom_hist *slot_hist; /* by runtime slot: latency (metrics.c, lazily) */
	char **log;
	uint32_t log_head, log_count;
	uint64_t log_bytes, log_dropped; /* tenant_log.c: the ring's bytes, bytes cut */
	/* isolation (tenant_identity.c, tenant.c); tier and uid are persisted */
	char tier[16];	  /* the tier named by the last deploy that named one */
	uint32_t uid;	  /* = gid; 0 = none (uid_range off) */
	bool recycle;	  /* the worker was asked to go (tier change): no backoff */
	bool py_want;	  /* a Python deploy is under way (its workers need CPython) */
	bool py_worker;	  /* this worker was forked with the zygote's CPython (tenant.c) */
	pid_t stuck_pid;  /* worker already SIGKILLed for a Brick past its deadline */
	pid_t refused_pid; /* worker SIGKILLed at start by lutfd (refused_why says why) */
	char refused_why[96];
	uint64_t oom_seen; /* the cgroup's oom_kill count when the worker started */
	uint32_t fails_in_row;	     /* failed starts in a row (crash_loop_limit) */
	uint32_t quick_deaths;	     /* workers that died young, in a row (backoff) */
	uint64_t deaths_ms[16];	     /* when the last deaths happened (ring) */
	uint32_t ndeaths;	     /* deaths ever (index into deaths_ms) */
	struct lutfd_death {	     /* how started Bricks of dead workers end */
		uint32_t status, detail; /* what clients see */
		uint32_t sig;		 /* the CRASHED detail the engine posts */
		uint32_t left;		 /* CRASHED completions still to rewrite */
		char msg[120];
	} death[8], last_death;	     /* FIFO, oldest first; the latest, for status */
	uint32_t ndeath;
	/* control (jobs.c, control.c): main thread only */
	bool removing;	   /* being removed: the registry leaves it out, no restarts */
	bool start_queued; /* a worker start job is queued or running */

	/*
	 * workers = N (workers.c). The registry record is worker 0 and owns the
	 * apps, functions, tier and uid; each other worker is a record of its
	 * own in g_state (region, runtime, process, faults, restarts) with
	 * primary set, whose apps, fns, tier and uid mirror worker 0's
	 * (lutfd_workers_sync; it frees none of them). Lookups by name, the
	 * registry, list and status see worker 0 only.
	 */
	uint32_t workers;	      /* worker 0: N asked at deploy; 0 = tenant_workers */
	struct lutfd_tenant *primary; /* NULL on worker 0 */
	uint32_t widx;		      /* this record's worker index */
	struct lutfd_tenant *wk[LUTFD_WORKERS_MAX]; /* worker 0: its workers, wk[0] = itself */
	uint32_t nwk;
	uint32_t rr;	     /* worker 0: round-robin cursor among equally loaded workers */
	bool draining;	     /* N lowered: takes no new call, goes once its calls end */
	uint64_t calls;	     /* calls this worker answered (metrics, status) */
	uint64_t grow_at_ms; /* worker 0: a failed grow is tried again then */
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
/* Persist g_state durably (main thread; it blocks on the disk). Returns 0 or -errno. */
int lutfd_state_save(void);
/* From a job thread: apply(arg) on the main thread, save the registry as it
 * then is (written, fsynced, renamed, folder fsynced), and on failure
 * undo(arg) on the main thread before any other save. Saves are one at a
 * time. Returns 0 or -errno (logged). */
int lutfd_state_commit(void (*apply)(void *arg), void (*undo)(void *arg), void *arg);
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
/* Create the region and runtime and start reaping (no worker). Returns 0 or -errno. */
int lutfd_tenant_open(struct lutfd_tenant *t);
/* A tenant with functions: open it, bind its functions and queue a worker
 * start (a job: it runs off the loop). No functions: nothing. Returns 0 or -errno. */
int lutfd_tenant_start(struct lutfd_tenant *t);
/* Queue a job that starts t's worker (main thread). */
void lutfd_worker_queue_start(struct lutfd_tenant *t);
/* Job threads only (they block): */
/* Spawn t's worker, load its apps, start its Labors (force: even with no
 * functions). 0 also when nothing was to do; msg gets the failure. Returns 0 or -errno. */
int lutfd_worker_start_sync(struct lutfd_tenant *t, bool force, char *msg, size_t cap);
/* Main: a deploy of the app so[0..len) (kind: "", native, python) to t. True
 * when it is Python and a worker of t runs without CPython (the zygote starts
 * it only for Python tenants, or when idle): that worker must be replaced. */
bool lutfd_tenant_python_missing(struct lutfd_tenant *t, const void *so, size_t len,
				 const char *kind);
/* Ask t's worker to go (no restart unless t has functions), SIGKILL it after
 * grace_ms, wait until the loop handled its exit. Returns 0 or -ETIMEDOUT. */
int lutfd_worker_stop_sync(struct lutfd_tenant *t, uint32_t grace_ms);
/* One request/answer on a worker's control socket (fd: the job's copy).
 * Returns 0, the worker's -errno, -EPIPE (died) or -ETIMEDOUT. */
int lutfd_ctl_call(int fd, const void *req, size_t len, char *msg, size_t cap);
/* load_timeout_ms as the loop sees it (a live key), from any thread. */
uint32_t lutfd_load_timeout(void);
/* Worker pid of t died during a control call: wait (up to 500 ms) for the
 * loop to handle its exit, describe the cause into msg ("worker died:
 * <cause>"). Returns false (msg untouched) when no exit was seen. */
bool lutfd_tenant_wait_death(struct lutfd_tenant *t, pid_t pid, char *msg, size_t cap);
/* Stop t's worker, wait for its last calls, free its region, runtime, uid,
 * cgroup and record (t is gone), remove its app and scratch folders.
 * Returns 0, -ETIMEDOUT or -EBUSY (calls still in flight; t stays). */
int lutfd_tenant_remove_sync(struct lutfd_tenant *t);
/* Build a worker LOAD request for version of app exporting fns into *b
 * (pure: any thread). Returns 0 or -E2BIG (msg says why). */
int lutfd_load_request(const char *tenant, const char *app, uint64_t version,
		       struct lutfd_fn *const *fns, size_t nfns, struct lutf_buf *b, char *msg,
		       size_t cap);
/* Bind a function of a loaded app to a runtime slot ("<app>/<fn>"). Returns 0 or -errno. */
int lutfd_fn_bind(struct lutfd_tenant *t, struct lutfd_fn *f, uint32_t timeout_ms);
/* The zygote socket is readable: handle worker exits (skipped while a
 * job's spawn reads the socket; that job hands them over after). */
void lutfd_zygote_event(void);
/* Exit notices read by a spawn, not yet handled. */
bool lutfd_zygote_pending(void);
/* Restarts that are due (queued as jobs). */
void lutfd_tenants_tick(void);
/* Stop reapers, destroy runtimes, close workers (force: SIGKILL them first,
 * for Bricks still running after the shutdown grace). */
void lutfd_tenants_stop(bool force);
/* Replace t's worker (graceful: running Bricks finish) with one that has t's
 * current tier and limits; no backoff. */
void lutfd_tenant_recycle(struct lutfd_tenant *t);

/* ---- workers.c: workers = N ---- */
/* The N that t (worker 0) runs: t->workers, else tenant_workers, 1..LUTFD_WORKERS_MAX. */
uint32_t lutfd_workers_want(const struct lutfd_tenant *t);
/* Worker 0 of t (t itself when it is). */
static inline struct lutfd_tenant *lutfd_workers_primary(struct lutfd_tenant *t)
{
	return t->primary ? t->primary : t;
}
/* Mirror worker 0's apps, functions, tier and uid into its other workers
 * (main thread, after any change to them). */
void lutfd_workers_sync(struct lutfd_tenant *t);
/* Open and start the workers t (worker 0, open) lacks (main thread; starts
 * are jobs). Returns 0 or -errno (logged; those that opened stay). */
int lutfd_workers_grow(struct lutfd_tenant *t);
/* Job thread: drain and remove t's workers past lutfd_workers_want (no
 * call fails: a draining worker takes no new call and goes once its calls
 * ended, or after the bound). Returns 0 or -errno of the first that failed. */
int lutfd_workers_shrink(struct lutfd_tenant *t);
/* The worker of t (worker 0) a call of f goes to (main thread). NULL: none
 * bound. */
struct lutfd_tenant *lutfd_workers_pick(struct lutfd_tenant *t, const struct lutfd_fn *f);
/* Bind f in every open worker of t (worker 0). Returns 0 or the first -errno. */
int lutfd_fn_bind_all(struct lutfd_tenant *t, struct lutfd_fn *f, uint32_t timeout_ms);
/* Engine op (pause, resume, delete) on f in every worker of t that bound it.
 * Returns 0 or the first -errno other than -EALREADY. */
int lutfd_fn_engine_all(struct lutfd_tenant *t, struct lutfd_fn *f,
			int (*op)(struct lutf_runtime *rt, uint32_t slot));
/* Any other worker of t's tenant has a process (the cgroup holds it: no
 * cgroup-wide kill). */
bool lutfd_workers_others_alive(const struct lutfd_tenant *t);
/* Calls in flight over all of t's workers; of f only when f != NULL. */
uint32_t lutfd_workers_inflight(const struct lutfd_tenant *t, const struct lutfd_fn *f);
/* Sum of f's slot_stats over t's workers into out[LUTF_STATUS__COUNT]. */
void lutfd_workers_fn_stats(const struct lutfd_tenant *t, const struct lutfd_fn *f, uint64_t *out);
/* Job thread: LOAD request load into every other worker of t that is up.
 * Returns the mask of workers (bit w) that did not take it. */
uint32_t lutfd_workers_load(struct lutfd_tenant *t, const struct lutf_buf *load, const char *app);
/* Registry records (worker 0s) in g_state. */
size_t lutfd_tenants_count(void);


/* ---- reap.c: completions of a running tenant ---- */
/* How completions reach the main thread: "io_uring futex" or "reaper thread". */
const char *lutfd_reap_mode(void);
/* Start reaping t's completions (t->rt is attached): an io_uring futex wait
 * of the loop, else a reaper thread. Returns 0 or -errno. */
int lutfd_reap_start(struct lutfd_tenant *t);
/* Cancel t's futex wait, if any (before lutf_runtime_destroy). Reaper threads
 * are stopped by t->stop and joined by lutfd_tenants_stop. */
void lutfd_reap_stop(struct lutfd_tenant *t);
void lutfd_tenant_logs_append(struct lutfd_tenant *t, const char *fn, const char *line, size_t len);

/* ---- fault.c: why workers die, and what clients are told ---- */
/* Explain the death (wait status) of t's worker pid into *d. */
void lutfd_fault_explain(struct lutfd_tenant *t, pid_t pid, int status, struct lutfd_death *d);
/* Remember d for t's status and for the nfailed CRASHED completions the
 * engine posts for it; was_up: the worker had started (else a failed start). */
void lutfd_fault_record(struct lutfd_tenant *t, const struct lutfd_death *d, int nfailed,
			bool was_up);
/* A completion of t: give a CRASHED result of a dead worker its real cause
 * (status, detail, message). Returns true if res was rewritten. */
bool lutfd_fault_rewrite(struct lutfd_tenant *t, struct lutf_result *res);
/* t is crash-looping (crash_loop_limit failed starts in a row): the error new
 * calls get at once. Returns false when t is not. */
bool lutfd_fault_refuse(const struct lutfd_tenant *t, uint32_t *status, uint32_t *detail,
			char *msg, size_t cap);
/* "backoff 800 ms (next start in 312 ms), 5 deaths in 60 s, ..." or "none". */
void lutfd_fault_describe(const struct lutfd_tenant *t, char *buf, size_t cap);
/* Recycle workers with a Brick stuck past its deadline + stuck_grace_ms. */
void lutfd_fault_tick(uint64_t now_ms);

/* ---- dispatch.c: frames, invocations, completions ---- */
int lutfd_dispatch_init(void);
void lutfd_frame(void *ctx, struct lutf_conn *c, const struct lutf_wire_hdr *h,
		 const uint8_t *payload);
/* Called by reaper threads. */
void lutfd_completions_push(struct lutfd_tenant *t, struct lutf_completion *cs, int n);
/* Called on the main thread with completions it reaped itself. */
void lutfd_completions_take(struct lutfd_tenant *t, struct lutf_completion *cs, int n);
/* Requests in flight (accepted, not yet answered). */
uint64_t lutfd_inflight(void);
/* lutfd's own deadlines: answer calls past theirs (dispatch.c; on the tick). */
void lutfd_dispatch_tick(void);
/* Calls lutfd answered DEADLINE by its own deadline, ever. */
uint64_t lutfd_dispatch_expired(void);
/* New region faults of t: answer its calls, recycle its worker (dispatch.c). */
void lutfd_fault_check(struct lutfd_tenant *t);
/* Answer every call of t in flight now with status/msg (dispatch.c). */
void lutfd_answer_tenant(struct lutfd_tenant *t, uint32_t status, uint32_t detail, const char *msg);
/* t's worker, recycled for a region fault, is gone: reset its region for the
 * next one (fault.c). Returns 0 (no Bricks fail: their calls are answered). */
int lutfd_fault_reset(struct lutfd_tenant *t);
/* /metrics: lutf_region_fault_checks{tenant,check} (fault.c). */
struct lutf_http_buf;
void lutfd_fault_metrics(struct lutf_http_buf *b);
/* Answer every request in flight with SHUTTING_DOWN. */
void lutfd_fail_inflight(void);
/* The same for the requests of one origin only. */
void lutfd_fail_origin(unsigned origin);
/* t is crash-looping: answer its requests in flight with lutfd_fault_refuse's error. */
void lutfd_fail_tenant(struct lutfd_tenant *t);

/* Where an invocation came from: which protocol answers it (dispatch.c). */
enum lutfd_origin {
	LUTFD_ORIGIN_BIN,  /* req_id: the frame's request id */
	LUTFD_ORIGIN_HTTP, /* req_id: the HTTP engine's sequence number */
	LUTFD_ORIGIN_NATS, /* req_id: a struct lutf_cluster_call * (forward.c); no conn */
};
/*
 * Start an invocation of tenant/fn for connection c (NULL for
 * LUTFD_ORIGIN_NATS), the path every protocol shares. Returns LUTF_STATUS_OK
 * when submitted (its completion answers through origin's protocol, and c's
 * in-flight count was raised), else the typed refusal to answer now, with
 * *detail and msg (cap bytes) filled.
 */
uint32_t lutfd_invoke_start(struct lutf_conn *c, enum lutfd_origin origin, uint64_t req_id,
			    const char *tenant, const char *fn, const struct lutf_request *req,
			    uint32_t *detail, char *msg, size_t cap);

/* ---- forward.c (cluster mode, docs/cluster.md): calls run by other nodes ---- */
struct lutf_http_buf;
/* Watch the answers' eventfd on g_loop. Returns 0 or -errno. */
int lutfd_forward_init(void);
/* Send a call this lutfd cannot run to a node that can; true when sent (its
 * answer comes later through origin's protocol, c's in-flight count was
 * raised), false when the local answer stands (no cluster, not connected,
 * the call came forwarded already). */
bool lutfd_forward_start(struct lutf_conn *c, enum lutfd_origin origin, uint64_t req_id,
			 const char *tenant, const char *fn, const struct lutf_request *req);
/* Answer DEADLINE to forwarded calls past their deadline (the tick). */
void lutfd_forward_tick(void);
/* An answer from another node (a libnats thread: queued for the loop). */
struct lutf_cluster_reply;
void lutfd_forward_reply(struct lutf_cluster_reply *r);
/* A call sent to this node over NATS (a libnats thread: queued for the loop,
 * which runs it through lutfd_invoke_start; a full queue: OVERLOADED now). */
struct lutf_cluster_call;
void lutfd_forward_call(struct lutf_cluster_call *call);
/* Answer a LUTFD_ORIGIN_NATS call (req_id): res for a completion, else
 * status, detail and msg. Main thread; exactly once per call. */
void lutfd_forward_answer(uint64_t req_id, uint32_t status, uint32_t detail, const char *msg,
			  const struct lutf_result *res);
/* lutfd stops: answer every NATS call it holds SHUTTING_DOWN and take no
 * more (before lutf_cluster_node_stop closes NATS). */
void lutfd_forward_close(void);
/* /metrics: lutf_cluster_forwarded, lutf_cluster_async{result} (forward.c). */
void lutfd_cluster_metrics(struct lutf_http_buf *b);

/* ---- http_gw.c: the HTTP/1.1 gateway ---- */
#define LUTFD_HTTP_DEFAULT "127.0.0.1:8080"  /* http_listen; taken: lutfd runs without */
#define LUTFD_ADMIN_DEFAULT "127.0.0.1:9090" /* admin_listen; likewise */
/* Listen on http_listen and admin_listen, write <runtime>/http.addr and
 * admin.addr. Returns 0 or -1 (message printed). */
int lutfd_http_start(void);
/* Remove the address files. */
void lutfd_http_stop(void);
/* Bound addresses ("" when off). */
const char *lutfd_http_addr(void);
const char *lutfd_admin_addr(void);
/* Answer HTTP request seq of connection conn_id (gone: dropped): res for a
 * completion, else status and msg. */
void lutfd_http_answer(uint64_t conn_id, uint64_t seq, uint32_t status, const char *msg,
		       const struct lutf_result *res);
/* Answer request seq of HTTP connection conn_id with r (nothing when the
 * connection went). */
struct lutf_http_resp;
void lutfd_http_respond(uint64_t conn_id, uint64_t seq, const struct lutf_http_resp *r);
/* http_async.c: POST /async/<tenant>/<fn> and GET /async/<id> (docs/cluster.md). */
struct lutf_http_conn;
struct lutf_http_req;
void lutfd_http_async(struct lutf_conn *c, struct lutf_http_conn *hc,
		      const struct lutf_http_req *rq);
/* g_cfg's HTTP limits changed (SIGHUP): later connections use them. */
void lutfd_http_reload(void);
/* Submit the invocations parsed in this pass of the event loop, when the
 * gateway batches them (LUTF_HTTP_BATCH=on; else there are none): call after
 * each lutf_ev_poll. */
void lutfd_http_dispatch(void);
/* dispatch.c: wake the Labors this pass's submits left plugged (called by
 * lutfd_http_dispatch, after each lutf_ev_poll). */
void lutfd_dispatch_unplug(void);

/* ---- metrics.c: GET /metrics ---- */
struct lutf_http_buf;
/* Record one completion's latency (submit to completion) for t's slot. */
void lutfd_metrics_observe(struct lutfd_tenant *t, uint32_t slot, uint64_t ns);
/* The whole Prometheus text exposition. Returns 0 or -ENOMEM. */
int lutfd_metrics_render(struct lutf_http_buf *out);
/* http_gw.c's own families (responses by code, connections). */
void lutfd_http_metrics(struct lutf_http_buf *out);

/* ---- reload.c: SIGHUP and systemd readiness ---- */
/* Re-read path over the defaults, apply (flags, then) the keys that are
 * safe to change live, log the others as restart-only. Never exits. */
void lutfd_reload(const char *path, void (*flags)(struct lutfd_config *c));
/* sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET, if set. */
void lutfd_sd_notify(const char *state);

/* ---- main.c: ingress ---- */
/* STATUS: TEXT ingress=<backend>, TEXT tcp=<addr|off>, ingress COUNTERs. */
void lutfd_ingress_status(struct lutf_buf *b);

/* ---- jobs.c: control work off the loop (the locking rule is there) ---- */
struct lutfd_lane;
struct lutfd_job {
	struct lutfd_job *next;
	struct lutfd_lane *lane;
	void (*run)(struct lutfd_job *j); /* on the job's own thread */
	/* On the main thread, for a job that will never run (shutdown, no
	 * thread): answer its request. May be NULL. */
	void (*refuse)(struct lutfd_job *j, uint32_t status, const char *msg);
	uint64_t conn_id, request_id;
	bool holding; /* the connection's in-flight count was raised */
};
/* Watch the job eventfd on g_loop (after g_loop exists). Returns 0 or -errno. */
int lutfd_jobs_init(void);
/* Queue j (malloc'ed; freed after run) on tenant's lane: jobs of one tenant
 * run one at a time, in order; other tenants' run beside. Main thread.
 * Returns 0, -ESHUTDOWN or -ENOMEM. */
int lutfd_job_submit(const char *tenant, struct lutfd_job *j);
/* From a job thread: run fn(arg) on the main thread and wait for it. On
 * the main thread: call it. */
void lutfd_main_call(void (*fn)(void *arg), void *arg);
bool lutfd_jobs_busy(void);
/* Shutdown: queued jobs are refused; running ones finish. */
void lutfd_jobs_stop(void);
bool lutfd_jobs_stopping(void);
/* The reply of a control call answered by a job (main thread): hold raises
 * c's in-flight count; conn lowers it and finds c again (NULL: closed). */
void lutfd_job_hold(struct lutfd_job *j, struct lutf_conn *c, uint64_t request_id);
struct lutf_conn *lutfd_job_conn(struct lutfd_job *j);
void lutfd_job_reply_status(struct lutfd_job *j, uint32_t status, const char *msg);

/* ---- control.c ---- */
void lutfd_control(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload);
/* deploy.c: a DEPLOY frame (parsed and validated now, done by a job). */
void lutfd_deploy(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload);

#endif /* LUTFD_H */
