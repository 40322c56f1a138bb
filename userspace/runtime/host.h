/* SPDX-License-Identifier: MIT */
/*
 * The engine for its hosts: what lutfd (userspace/daemon), the tenant worker
 * (userspace/worker) and the engine's own files share beyond the public API,
 * to run one engine across two processes: a region formatted here and shared
 * (the front attaches and supervises, the worker starts the Labors), one
 * Supervisor for every tenant, worker loss and reset, region-fault counters
 * and audit, and the reaper's futex sleep for lutfd's event loop.
 *
 * Who may include it: lutfd, the worker, userspace/runtime, and in-tree
 * tests, benchmarks and the fuzzer. Not installed; liblutf.so's symbol map
 * (liblutf.map) keeps every name below local, so nothing outside this tree
 * can link against it. The public, installed API is <lutf/runtime.h>.
 */
#ifndef LUTF_RUNTIME_HOST_H
#define LUTF_RUNTIME_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lutf/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the reaper's sleep, for an event loop that waits elsewhere ---- */

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

/*
 * The submit plug, for a caller that submits a batch in one pass: while the
 * calling thread's plug is on, its submits publish their Bricks at once but
 * defer waking a sleeping Labor; lutf_runtime_plug(false) wakes each one
 * once. Call plug_forget before lutf_runtime_destroy on a thread whose
 * plug may still name rt.
 */
void lutf_runtime_plug(bool on);
void lutf_runtime_plug_forget(struct lutf_runtime *rt);

/* ---- region faults: what a worker wrote that the front refused ---- */

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
	LUTF_FAULT_LOST,	  /* awaited calls the worker dropped (valid-looking words) */
	LUTF_FAULT__COUNT
};

/* "completion index", ...: the check's name for logs and metrics. */
const char *lutf_fault_check_name(unsigned check);

/* Region faults of rt by check (counts[LUTF_FAULT__COUNT]) and the check
 * that failed last (LUTF_FAULT_NONE when none has). No syscalls, no scans. */
unsigned lutf_runtime_faults(struct lutf_runtime *rt, uint64_t *counts);

/* Look over the words of rt's region that a correct worker never writes
 * invalid: the header's layout words against the front's copy, and each
 * Brick's state, completion kind and function (one eighth of the Bricks
 * per call, in turn). A failed check counts a
 * fault (LUTF_FAULT_LAYOUT, LUTF_FAULT_BRICK). At most once a second it also
 * looks for lost calls: awaited Bricks whose answer never came well past
 * their deadline (LUTF_FAULT_LOST; see front_reap.c for the threshold).
 * Bounded by the Brick count; for a periodic timer, not the call path.
 * Returns the faults it counted. */
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
	/* With LUTF_WATCH_BPF: start polling at once and leave labor_watch's
	 * load to lutf_supervisor_load_watch (lutfd's start: the first calls
	 * do not wait for BPF). */
	bool bpf_later;
};

/* Start a Supervisor thread. Returns 0, -EINVAL, -ENOMEM or a thread's -errno. */
int lutf_supervisor_create(const struct lutf_supervisor_opts *opts, struct lutf_supervisor **out);
/* The mode in force (after any fallback). */
enum lutf_watch_mode lutf_supervisor_mode(const struct lutf_supervisor *sup);
/*
 * A Supervisor created with bpf_later: load labor_watch (slow: it parses the
 * kernel's BTF; no lock is held meanwhile) and switch from polling to the BPF
 * mode. Any thread, once. Runtimes already served keep their Carts; their
 * Labors' tids are checked and registered on the next tick, as a new Labor's
 * are. Returns 0, -EALREADY (not created with bpf_later, or done already) or
 * lutf_lw_open's -errno (then it stays in the polling mode; lutf_lw_open
 * printed why). Not at the same time as lutf_supervisor_destroy.
 */
int lutf_supervisor_load_watch(struct lutf_supervisor *sup);
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

/*
 * The direct take for a worker (front side, at its spawn): reserve, once per
 * runtime, a block of labor_watch slots (whole pages, enough for rt's watch
 * cap); rt's Labors are registered only inside it from then on, and it is
 * released when rt leaves the Supervisor. *fd is a new fd of labor_state
 * (O_CLOEXEC; the caller passes it to the worker and closes its own; the
 * worker maps its block PROT_READ and closes it before any tenant code: see
 * lutf_lw_state_fd_lend), *first the block's first slot (the worker maps from
 * byte first x 64, page-aligned) and *count its slots. Returns 0, -ENODEV (no labor_watch
 * loaded yet, or an in-process runtime), -ENOSPC (no block free: the
 * runtime runs without a view; printed once), -EPERM
 * (LUTF_LABOR_WATCH_LEND=off) or the -errno of the fd.
 */
int lutf_runtime_watch_lend(struct lutf_runtime *rt, int *fd, uint32_t *first, uint32_t *count);

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
	/* The direct take in a worker of lutfd: the front's labor_watch slots
	 * for this runtime (its block), mapped PROT_READ, watch_n slots; NULL:
	 * no view (every hand-off is the Supervisor's). Must stay mapped while
	 * the Labors run. */
	const void *watch_block;
	uint32_t watch_n;
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

#endif /* LUTF_RUNTIME_HOST_H */
