/* SPDX-License-Identifier: MIT */
/*
 * The lutf engine as a library, in one process: Bricks, Carts, Labors and the
 * Supervisor behind a handful of calls. Installed with liblutf.so (SONAME
 * liblutf.so.0, every symbol versioned LUTF_0.1) and lutf.pc:
 *   cc prog.c $(pkg-config --cflags --libs lutf)
 *
 * What is here, and why (one line a group; anything else is not API):
 *  - lutf_config, lutf_config_init, the watch modes and lutf_watch_mode_str:
 *    a runtime is made from a config; the mode names are what stats report.
 *  - lutf_runtime_create / _destroy: the private region, Labors, Supervisor.
 *  - lutf_runtime_add_fn / _add_so / _lookup / _pause / _resume / _delete and
 *    lutf_runtime_last_error: the function table and its error messages.
 *  - lutf_runtime_invoke, _submit, _reap, lutf_result_release and
 *    lutf_status_from_errno: calls, synchronous and batched.
 *  - lutf_runtime_stats: counters a program embedding the engine exports.
 * What lutfd and the tenant worker share to run the same engine across two
 * processes (a shared region, one Supervisor for many runtimes, worker loss,
 * region-fault counters, the reaper's futex sleep) is in
 * userspace/runtime/host.h: not installed, not exported by liblutf.so.
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
	uint32_t spin_ns;	/* an idle Labor may spin this long, then parks; 20000 */
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
	uint64_t region_faults;	    /* failed checks on words a worker process
				     * wrote into a shared region (lutfd recycles
				     * that worker) */
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

#ifdef __cplusplus
}
#endif

#endif /* LUTF_RUNTIME_H */
