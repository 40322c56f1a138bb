/* SPDX-License-Identifier: MIT */
/*
 * The lutf engine as a library: Bricks, Carts, Labors and the Supervisor.
 *
 * Everything lives in one region of memory linked by offsets, so the same
 * region can be private to one process (lutf_runtime_create) or shared by a
 * front process that submits and supervises (lutf_runtime_attach) and a
 * worker process that runs the Labors (lutf_labors_start).
 *
 * Every function that can fail returns 0 (or a count) on success and -errno
 * on failure, as its comment says. Typed outcomes of an invocation (deadline,
 * paused, ...) are lutf_status values from <lutf/protocol.h>, carried in
 * struct lutf_result.
 *
 * Thread safety: submit, invoke and the function calls (add, pause, ...) may
 * be used from any thread. lutf_runtime_reap serialises its callers.
 * Threads are named "lutf-sup" (the Supervisor) and "lutf-labor-N".
 */
#ifndef LUTF_RUNTIME_H
#define LUTF_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lutf/function.h>
#include <lutf/protocol.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LUTF_NAME_MAX 63 /* a function name, without the NUL */

/* How the Supervisor learns that a Labor is stuck in one Brick. */
enum lutf_watch_mode {
	LUTF_WATCH_OFF = 0,  /* no re-binding */
	LUTF_WATCH_POLL = 1, /* the Supervisor polls each Labor's Brick counter */
	LUTF_WATCH_BPF = 2,  /* labor_watch: the sched_switch probe reports blocks */
};

/* "off", "poll" or "bpf". */
const char *lutf_watch_mode_str(enum lutf_watch_mode m);

struct lutf_config {
	uint32_t carts;		/* N run queues; default: usable cores */
	uint32_t labors;	/* M Labor threads started at creation and always kept;
				 * default 4N; must be >= N */
	uint32_t labors_max;	/* the elastic pool's ceiling: when every Labor is in use
				 * and a Cart waits behind a blocked one, another Labor
				 * is started, up to this; default 2M */
	uint32_t labor_idle_ms; /* a Labor above M parked this long retires; 10000 */
	uint32_t cart_capacity; /* Bricks per Cart ring, power of two; default 4096 */
	uint32_t bricks;	/* Brick pool size; default carts * cart_capacity */
	uint32_t max_functions; /* function slots; default 256 */
	uint32_t hold_max;	/* Bricks held per paused function; default 1024 */
	uint64_t arena_bytes;	/* payload arena; default 64 MiB (reserved, touched lazily) */
	uint32_t max_payload;	/* largest input or output; default 8 MiB */
	uint32_t spin_ns;	/* a Labor spins this long on an empty Cart, then parks; 20000 */
	uint32_t grace_ns;	/* a Labor blocked (BPF) or in one Brick (polling) this long
				 * may lose its Cart; 50000 */
	uint32_t poll_ns;	/* Supervisor tick while Bricks are in flight; 200000 */
	uint32_t timeout_ms;	/* default deadline of a call; 0 = none; default 30000 */
	enum lutf_watch_mode watch; /* default LUTF_WATCH_BPF, which falls back to
				     * LUTF_WATCH_POLL (one log line) when BPF cannot load */
	char bpf_pin_dir[64];	    /* pin labor_watch maps here; "" (default) = unpinned */
};

/* Fill *cfg with the defaults above (carts from the usable cores). */
void lutf_config_init(struct lutf_config *cfg);

struct lutf_runtime;

/*
 * Create an in-process runtime: a private region, M Labor threads and the
 * Supervisor thread. cfg may be NULL for defaults.
 * Returns 0, -EINVAL (bad config), -ENOMEM, or the -errno of a failed thread start.
 */
int lutf_runtime_create(const struct lutf_config *cfg, struct lutf_runtime **out);

/*
 * Destroy: stop taking calls, fail queued and held Bricks with SHUTTING_DOWN,
 * wait for running Bricks, stop the threads, free everything. Completions not
 * reaped are dropped.
 */
void lutf_runtime_destroy(struct lutf_runtime *rt);

/* Options of one function. */
struct lutf_fn_opts {
	const char *const *config; /* "key", "value", ..., NULL; copied */
	uint32_t timeout_ms;	   /* default deadline of its calls; 0 = the runtime's */
};

/*
 * Add a function by pointer (in-process only). name: [A-Za-z0-9/_.-]{1,63}.
 * Returns 0 and the id in *id, -EINVAL (bad name), -EEXIST, -ENOSPC (no slot).
 */
int lutf_runtime_add_fn(struct lutf_runtime *rt, const char *name, lutf_fn_t fn,
			const struct lutf_fn_opts *opts, uint32_t *id);

/*
 * Add a function exported by a shared object: dlopen(path, RTLD_NOW|RTLD_LOCAL),
 * check lutf_abi_version, run lutf_app_init once per loaded object, look up symbol.
 * Returns 0, -ENOENT (no such file), -ENOEXEC (not loadable, or no lutf_abi_version),
 * -EPROTO (ABI version mismatch), -ESRCH (no such symbol), -ECANCELED (init failed),
 * or as lutf_runtime_add_fn. lutf_runtime_last_error() has the details.
 */
int lutf_runtime_add_so(struct lutf_runtime *rt, const char *name, const char *path,
			const char *symbol, const struct lutf_fn_opts *opts, uint32_t *id);

/* A human message for the last failed call on this thread ("" if none). */
const char *lutf_runtime_last_error(void);

/* Function id by name: 0 or -ENOENT. */
int lutf_runtime_lookup(struct lutf_runtime *rt, const char *name, uint32_t *id);

/*
 * Pause: new and queued Bricks of the function are held (up to hold_max; more
 * fail with PAUSED); running ones finish. Resume releases held Bricks in the
 * order they were submitted. Both return 0, -ENOENT, or -EALREADY.
 */
int lutf_runtime_pause(struct lutf_runtime *rt, uint32_t id);
int lutf_runtime_resume(struct lutf_runtime *rt, uint32_t id);

/*
 * Delete: held and queued Bricks fail with DELETED, later calls with
 * UNKNOWN_FUNCTION; running Bricks finish, and the code is unloaded only
 * after the last of them. Returns 0 or -ENOENT.
 */
int lutf_runtime_delete(struct lutf_runtime *rt, uint32_t id);

/* One request. */
struct lutf_request {
	const void *input;
	size_t input_len;
	const char *content_type;   /* may be NULL */
	const char *const *headers; /* "name", "value", ..., NULL; may be NULL */
	uint64_t timeout_ns;	    /* 0 = the function's default */
};

/* One result. output is malloc'ed (NULL when empty): lutf_result_release frees it. */
/* detail of a DEADLINE result: the Brick was held, its function paused, the
 * whole time it waited (it never reached a Labor). */
#define LUTF_DEADLINE_HELD 1u

struct lutf_result {
	uint32_t status; /* enum lutf_status */
	uint32_t detail; /* signal number for CRASHED, syscall for KILLED_BY_POLICY,
			  * LUTF_DEADLINE_HELD for a DEADLINE met while held */
	uint64_t request_id;
	void *output;
	size_t output_len;
	char content_type[LUTF_CONTENT_TYPE_MAX + 1];
	char error[LUTF_ERROR_MSG_MAX + 1]; /* for non-OK statuses */
};

void lutf_result_release(struct lutf_result *res);

/*
 * Invoke synchronously: submit one Brick and wait for its completion.
 * Returns 0 with res->status set (any status, including rejections such as
 * OVERLOADED or UNKNOWN_FUNCTION), or -EINVAL for bad arguments.
 */
int lutf_runtime_invoke(struct lutf_runtime *rt, uint32_t id, const struct lutf_request *req,
			struct lutf_result *res);

/*
 * Submit asynchronously. An accepted Brick completes exactly once, through
 * lutf_runtime_reap, carrying user_data. Returns 0 (accepted) or a rejection:
 * -ENOENT (unknown function), -EAGAIN (overloaded: Cart or pool full),
 * -EBUSY (paused and its hold queue is full), -EMSGSIZE (input too large),
 * -ESHUTDOWN (runtime stopping), -EINVAL.
 */
int lutf_runtime_submit(struct lutf_runtime *rt, uint32_t id, const struct lutf_request *req,
			uint64_t user_data);

struct lutf_completion {
	uint64_t user_data;
	struct lutf_result result;
};

/*
 * Reap up to max completions into out[]; wait up to timeout_ms for the first
 * (0 = do not wait, -1 = forever). Returns the count (0 on timeout) or -EINVAL.
 * Release each out[i].result.
 */
int lutf_runtime_reap(struct lutf_runtime *rt, struct lutf_completion *out, unsigned max,
		      int timeout_ms);

/*
 * lutf_runtime_reap's sleep, for callers that wait elsewhere (an io_uring
 * futex wait in lutfd's event loop). Arm registers the caller as a sleeper;
 * then: 0: wait on the 32-bit futex word *uaddr until it is not *val (shared:
 * a process-shared futex, i.e. FUTEX2 without PRIVATE), then call
 * lutf_runtime_reap_disarm once and reap with timeout_ms 0; -EAGAIN:
 * completions are ready, reap now (not armed: no disarm); -EINVAL. Every
 * completion posted while armed changes the word and wakes its waiters.
 */
int lutf_runtime_reap_arm(struct lutf_runtime *rt, uint32_t **uaddr, uint32_t *val, bool *shared);
void lutf_runtime_reap_disarm(struct lutf_runtime *rt);

/* The lutf_status a submit rejection (-errno) stands for. */
uint32_t lutf_status_from_errno(int err);

struct lutf_runtime_stats {
	uint32_t carts;
	uint32_t labors;	    /* running now */
	uint32_t labors_max;	    /* the elastic pool's ceiling */
	uint32_t labors_parked;	    /* without a Cart, asleep */
	enum lutf_watch_mode watch; /* the mode in force (BPF may have fallen back) */
	uint64_t submitted;	    /* accepted Bricks */
	uint64_t completed;	    /* Bricks completed, any status */
	uint64_t rejected;	    /* refused at submit */
	uint64_t rebinds;	    /* Carts moved to another Labor */
	uint64_t labor_grows;	    /* Labors started because all were in use and one blocked */
	uint64_t labor_retires;	    /* Labors above M retired after labor_idle_ms parked */
	uint64_t deadlines;	    /* Bricks answered DEADLINE */
	uint64_t crashed;	    /* Bricks failed CRASHED because their worker died */
	uint64_t region_faults;	    /* failed checks on a shared region (every
				     * enum lutf_fault_check): a worker scribbling over
				     * it (recycle it) */
	uint64_t held;		    /* Bricks held right now (paused functions) */
	uint64_t queued;	    /* Bricks in Cart rings right now */
	/* labor_watch (BPF mode only; zero otherwise) */
	char bpf_attach[8];   /* "tp_btf" or "raw_tp"; "" when not loaded */
	uint64_t bpf_run_ns;  /* probe run time, with kernel.bpf_stats_enabled=1 */
	uint64_t bpf_run_cnt; /* probe runs, likewise */
	uint64_t bpf_drops;   /* events or slots the probe had to drop: should stay 0 */
	uint32_t labors_blocked; /* Labors blocked in the kernel inside a Brick right now */
	/* Labors registered with labor_watch right now */
	uint32_t labors_watched;
	/* Labor tids not used because they were not threads of the worker */
	uint64_t tid_refused;
};

/* Fill *st. Returns 0. */
int lutf_runtime_stats(struct lutf_runtime *rt, struct lutf_runtime_stats *st);

/* Just region_faults of the stats, cheaply (no syscalls, no scans): for a
 * front that checks after every batch of completions. 0 for NULL. */
uint64_t lutf_runtime_region_faults(struct lutf_runtime *rt);

/*
 * The checks the front makes on words a worker writes into a shared region.
 * A failed check is a region fault: the front skips the word, counts the
 * check, and goes on; lutfd then recycles the worker (docs/isolation.md,
 * "What a tenant can and cannot do to lutfd").
 */
enum lutf_fault_check {
	LUTF_FAULT_NONE = 0,
	LUTF_FAULT_CQ_INDEX,	  /* a completion names no Brick */
	LUTF_FAULT_CQ_STRAY,	  /* a completion for a Brick the front does not await */
	LUTF_FAULT_CQ_GENERATION, /* the Brick's request id is not the one submitted */
	LUTF_FAULT_RESULT,	  /* status, output offset, length or content type invalid */
	LUTF_FAULT_HELD,	  /* a held-ring entry names no queued Brick of a function */
	LUTF_FAULT_CART_CELL,	  /* a Cart cell names no Brick */
	LUTF_FAULT_LABOR,	  /* a Labor's Brick or Cart word is out of range */
	LUTF_FAULT_FREE_STACK,	  /* a free-stack head names no Brick or block */
	LUTF_FAULT_BUDGET,	  /* a pass over worker-written words ran out of budget */
	LUTF_FAULT_LABOR_TID,	  /* a Labor's tid is not a thread of its worker */
	LUTF_FAULT_LAYOUT,	  /* a layout word of the header was rewritten */
	LUTF_FAULT_BRICK,	  /* a Brick's state, kind or function holds no valid value */
	LUTF_FAULT__COUNT
};

/* "completion index", ...: the check's name for logs and metrics. */
const char *lutf_fault_check_name(unsigned check);

/* Region faults of rt by check (counts[LUTF_FAULT__COUNT]) and the check
 * that failed last (LUTF_FAULT_NONE when none has). No syscalls, no scans. */
unsigned lutf_runtime_faults(struct lutf_runtime *rt, uint64_t *counts);

/* Look over the words of rt's region that a correct worker never writes
 * invalid: the header's layout words against the front's copy, and each
 * Brick's state, completion kind and function. A failed check counts a
 * fault (LUTF_FAULT_LAYOUT, LUTF_FAULT_BRICK). Bounded by the Brick count;
 * for a periodic timer, not the call path. Returns the faults it counted. */
unsigned lutf_runtime_audit(struct lutf_runtime *rt);

/* ---- split roles: a shared region (front process + worker process) ---- */

/* Bytes a region for cfg needs (0 for an invalid cfg). */
size_t lutf_region_size(const struct lutf_config *cfg);

#define LUTF_REGION_SHARED 0x1u /* futexes in it are used across processes */

/*
 * Lay out an empty region in mem (size bytes, page aligned, zero-filled, e.g. a
 * fresh memfd mapping). Returns 0, -EINVAL or -ENOSPC (size too small).
 */
int lutf_region_format(void *mem, size_t size, const struct lutf_config *cfg, unsigned flags);

/*
 * Front side: attach to a formatted region whose Labors run elsewhere; run the
 * Supervisor here. Functions added with lutf_runtime_add_remote name a slot the
 * worker resolves. Returns 0, -EINVAL (not a valid region), -ENOMEM.
 */
int lutf_runtime_attach(void *mem, size_t size, struct lutf_runtime **out);

/*
 * One Supervisor for several runtimes: lutfd runs one for all its tenants, so
 * labor_watch is loaded once and one thread watches every worker's Labors.
 * lutf_runtime_create and lutf_runtime_attach make a private one instead.
 */
struct lutf_supervisor;

struct lutf_supervisor_opts {
	enum lutf_watch_mode watch; /* LUTF_WATCH_BPF falls back to POLL (one log line) */
	char bpf_pin_dir[64];	    /* pin labor_watch maps here; "" = unpinned */
	uint32_t max_labors;	    /* labor_watch slots for all runtimes together */
	/* Slots one runtime may hold of them; 0 = its labors_max. */
	uint32_t max_labors_per_runtime;
};

/* Start a Supervisor thread. Returns 0, -EINVAL, -ENOMEM or a thread's -errno. */
int lutf_supervisor_create(const struct lutf_supervisor_opts *opts, struct lutf_supervisor **out);
/* The mode in force (after any fallback). */
enum lutf_watch_mode lutf_supervisor_mode(const struct lutf_supervisor *sup);
/* Stop the thread and free it: destroy its runtimes first. */
void lutf_supervisor_destroy(struct lutf_supervisor *sup);

/* As lutf_runtime_attach, served by sup (its watch mode applies, not the
 * region's). Returns 0, -EINVAL or -ENOMEM. */
int lutf_runtime_attach_to(struct lutf_supervisor *sup, void *mem, size_t size,
			   struct lutf_runtime **out);

/*
 * The process whose threads run rt's Labors (attached runtimes; 0: none now).
 * Labor tids in the region are used (labor_watch, pinning) only while they
 * name threads of that process, checked through its /proc entry, held open:
 * call it right after the worker is spawned, and with 0 when it is gone.
 * Until then no tid is used. Returns 0, -EINVAL (in-process runtime) or the
 * -errno of opening /proc/<pid>.
 */
int lutf_runtime_set_worker(struct lutf_runtime *rt, int pid);

/*
 * labor_watch slots rt may hold, overriding the Supervisor's
 * max_labors_per_runtime (0: that again). lutfd splits a tenant's slots over
 * its workers with it. A lower cap applies to Labors registered from then on.
 * Returns 0.
 */
int lutf_runtime_set_watch_cap(struct lutf_runtime *rt, uint32_t slots);

/* Register a function by name only, for Labors in another process. As add_fn. */
int lutf_runtime_add_remote(struct lutf_runtime *rt, const char *name,
			    const struct lutf_fn_opts *opts, uint32_t *id);

/*
 * Front side, after the worker process that ran this region's Labors died
 * (waitpid said so: nothing of it runs any more). Bricks it had started fail
 * CRASHED with detail = sig ("crashed (signal N)"); Bricks it had taken but
 * not started, and every queued one, stay queued and run on the next worker;
 * Labor blocks, Cart owners and the request word are reset, so the next
 * worker's lutf_labors_start takes over the same region. Call it before
 * starting the replacement. Returns the number of Bricks failed, or -EINVAL.
 */
int lutf_runtime_worker_lost(struct lutf_runtime *rt, int sig);

/*
 * Front side, instead of lutf_runtime_worker_lost when the dead worker had
 * scribbled over the region (a region fault): nothing in the region is worth
 * keeping. Every Brick in it is dropped without a completion (the caller has
 * answered their calls), the region is zeroed and formatted again from the
 * front's own config, and the function table is written back from the
 * front's own copies (held Bricks are gone; a deleted slot is freed). The
 * next worker then starts on a clean region. Returns the number of Bricks
 * the front still awaited (now dropped), or -EINVAL.
 */
int lutf_runtime_reset(struct lutf_runtime *rt);

/*
 * Front side: how many of the worker's Labors are still inside a Brick whose
 * deadline passed at least grace_ns ago (its caller was answered DEADLINE;
 * the code runs on). lutfd recycles such a worker. Reads words the worker
 * writes, bounded; no locks. Returns the count (0 for NULL).
 */
uint32_t lutf_runtime_overdue(struct lutf_runtime *rt, uint64_t grace_ns);

/* What a Labor needs to run a function slot. */
struct lutf_fn_binding {
	lutf_fn_t fn;
	void *app_state;
	const char *const *config; /* "key", "value", ..., NULL; may be NULL */
};

/* The worker's side: turns a function slot and name into code. */
struct lutf_labor_host {
	/* 0 and *out filled, or -ENOENT. Called on a Labor thread; must be thread-safe. */
	int (*resolve)(void *ctx, uint32_t slot, const char *name, struct lutf_fn_binding *out);
	/* A function's log line; NULL = stderr. */
	void (*log)(void *ctx, const char *fn_name, const char *line, size_t len);
	void *ctx;
	uint32_t flags; /* LUTF_LABORS_* */
};

/* Start every Labor up to labors_max now; never start or retire one later
 * (for a seccomp tier without clone: the elastic pool is fixed at its max). */
#define LUTF_LABORS_FIXED 1u
/* Labors take no Cart until lutf_labors_release (started before the worker
 * confines itself, they wait for its apps). */
#define LUTF_LABORS_HELD 2u

struct lutf_labors;

/*
 * Worker side: start the region's Labor threads. host is copied. Returns 0,
 * -EINVAL (not a valid region), -ENOMEM, or a thread start's -errno.
 */
int lutf_labors_start(void *mem, size_t size, const struct lutf_labor_host *host,
		      struct lutf_labors **out);

/* Let Labors started with LUTF_LABORS_HELD take Carts. */
void lutf_labors_release(struct lutf_labors *lb);
/* Wait until the front marks the region stopped (or lutf_labors_stop), join, free. */
void lutf_labors_wait(struct lutf_labors *lb);
void lutf_labors_stop(struct lutf_labors *lb);

#ifdef __cplusplus
}
#endif

#endif /* LUTF_RUNTIME_H */
