/* SPDX-License-Identifier: MIT */
/*
 * Private types of the engine shared between its modules: the front side
 * (struct lutf_runtime: submit, reap, Supervisor, function table) and the
 * worker side (struct lutf_labors: Labor threads).
 */
#ifndef LUTF_RUNTIME_INTERNAL_H
#define LUTF_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <string.h>

#include "region.h"

struct labor_watch_slot; /* bpf/labor_watch.h */

#define LUTF_STOP_DRAIN 1 /* Labors fail what they pop with SHUTTING_DOWN */
#define LUTF_STOP_EXIT 2  /* Labors exit */

/* A loaded shared object, shared by the functions that come from it. */
struct lutf_app {
	struct lutf_app *next;
	void *handle;
	void *state; /* from lutf_app_init */
	lutf_app_fini_t fini;
	uint32_t refs;
};

/* The front's view of one function slot (the region holds the shared part). */
struct lutf_fn_local {
	lutf_fn_t fn;
	struct lutf_app *app;
	char **config; /* "key", "value", ..., NULL */
	/* Held Bricks of a paused function, in submission order once sorted. */
	uint32_t *held;
	uint32_t n_held, cap_held;
	bool releasing; /* resumed, but some held Bricks did not fit a Cart yet */
	/* Private copies of what the region's slot says (a worker may rewrite
	 * the region's; the front reads only these): the slot's generation
	 * survives its reuse. state: seq_cst, lutf_fn_set_state. */
	uint32_t gen;
	uint32_t timeout_ms;
	uint32_t state;
	char name[LUTF_NAME_MAX + 1];
};

/* The Supervisor's incremental deadline scan of one Cart (supervisor.c). */
struct lutf_cart_scan {
	uint64_t pos;	    /* cells before this were read already */
	uint64_t min_dl;    /* earliest deadline among them */
	uint64_t last_full; /* when the whole window was last read */
};

/*
 * The Supervisor: one thread serving one or more runtimes (lutfd runs one for
 * every tenant, with one labor_watch). Its list is guarded by list_lock, which
 * the thread holds for each pass over the runtimes.
 */
struct lutf_supervisor {
	pthread_t thread;
	bool started;
	uint32_t exit;
	pthread_mutex_t list_lock;
	struct lutf_runtime **rts;
	uint32_t n_rts, cap_rts;
	/* BPF mode: one probe for every runtime. Both change once at most, from
	 * NULL and POLL (lutf_supervisor_load_watch), under list_lock and every
	 * runtime's sup_lock: a tick sees one mode throughout. Read lock-free
	 * elsewhere with acquire (pairs with the switch's release stores; lw is
	 * stored first, so a reader that sees BPF sees lw). */
	struct lutf_lw *lw;
	enum lutf_watch_mode mode;
	/* bpf_later: what lutf_supervisor_load_watch loads with; load_once
	 * (atomic exchange) lets one caller do it. */
	bool bpf_later;
	uint32_t load_once;
	char lw_pin_dir[64];
	uint32_t lw_max_labors;
	int efd;	     /* wakes the thread out of any wait */
	uint32_t ring_sleep; /* 1: waiting with a tick (BPF mode); nudges apply (seq_cst) */
	uint32_t idle_sleep; /* 1: waiting with no calls around; a submit wakes it (seq_cst) */
	uint64_t wake_at;    /* while ring_sleep: when it wakes on its own */
	uint64_t active_at, seen_submitted;
	bool yield_after; /* a hand-off pinned a Labor to this CPU: yield to it */

	uint32_t lw_per_rt; /* labor_watch slots one runtime may hold; 0 = its labors_max */
};

struct lutf_runtime {
	struct lutf_region r;
	void *mem_owned;	    /* mmap'ed by lutf_runtime_create, else NULL */
	struct lutf_labors *labors; /* in-process Labors, else NULL */
	pthread_mutex_t lock;	    /* function table, hold lists, apps */
	pthread_mutex_t reap_lock;
	pthread_mutex_t sup_lock; /* the Supervisor's tick; worker_lost excludes it */
	struct lutf_fn_local *fns;
	struct lutf_front_brick *bf; /* per Brick, in the front's memory (front.h) */
	uint64_t *reaped;	     /* per Brick: request id last reaped (front.h) */
	struct lutf_app *apps;
	struct lutf_supervisor *sup; /* serves this runtime (and maybe others) */
	bool own_sup;		     /* created for this runtime alone */
	bool joined;		     /* on sup's list */
	uint32_t stopping;	     /* 1: submit refuses */
	/* Supervisor's private memory: what it saw of each Labor last tick. */
	uint64_t *seen_started;
	uint64_t *seen_since;
	struct lutf_cart_scan *scan;
	/* labor_watch slots of this runtime's Labors (BPF mode). */
	uint32_t *lw_slot; /* Labor index -> labor_watch slot, LUTF_NONE = not yet */
	int32_t *lw_tid;   /* the tid registered in that slot */
	/* Labor's 'started' + 1 when it was registered inside that Brick (the
	 * probe saw no block of it before: the polling rule judges that Brick);
	 * 0 otherwise. The Supervisor's, under sup_lock. */
	uint64_t *lw_late;
	uint64_t *free_since; /* elastic pool: when a Labor above M was last seen busy */
	/* Statistics, relaxed counters. */
	uint64_t n_submitted, n_completed, n_rejected, n_rebinds, n_deadlines, n_held;
	uint64_t n_grows, n_retires, n_crashed;
	uint32_t cq_fillers;   /* NONE cells crash repair put in the completion ring (reap_lock) */
	uint32_t held_fillers; /* ... and in the held ring (lock) */
	uint32_t cq_armed;     /* reapers counted in the region's cq_sleeping (atomic) */
	/* The audit's state (front_reap.c; the audit's caller only). */
	uint32_t audit_pos;    /* the next slice of Bricks starts here */
	uint64_t lost_scan_ns; /* when it last ran */
	uint32_t lost_strikes; /* consecutive scans that found late calls */

	/* Labor tids are used only once checked against the worker (labor_tid.c);
	 * the Supervisor reads these under sup_lock, lutf_runtime_set_worker
	 * writes them under it. */
	int worker_dir;	    /* O_PATH fd of /proc/<worker> while worker_known */
	int32_t worker_pid; /* registered as the tgid of every Labor */
	bool worker_known;
	uint32_t lw_used;	/* labor_watch slots this runtime holds */
	uint32_t lw_cap;	/* lutf_runtime_set_watch_cap; 0 = sup->lw_per_rt */
	int *lw_pidfd;		/* per Labor: pidfd of its registered thread, or -1 */
	uint64_t n_tid_refused; /* Labor tids that were not the worker's threads */
	/* The block of labor_watch slots lent read-only to the worker (the
	 * direct take in lutfd's workers; supervisor.c lw_block). Under
	 * sup_lock. blk_state: 0 not tried, 1 reserved, -1 none (said once). */
	int blk_state;
	uint32_t blk_first, blk_count;
};

struct lutf_labors {
	struct lutf_region r;
	struct lutf_labor_host host;
	pthread_t *threads; /* labors_max entries; the first n_threads run */
	uint32_t n_threads;
	pthread_t keeper; /* starts and joins Labors as labor_req asks */
	bool keeper_started;
	uint32_t local_stop;
	uint32_t flags; /* LUTF_LABORS_* */
	uint32_t held;	/* 1 until lutf_labors_release (private futex word) */
	void *selves;	/* per-thread state, freed after join */
	/*
	 * The direct take's window onto labor_watch, when the Supervisor runs in
	 * this process (in-process runtimes): per Labor, its slot in the probe's
	 * mmapped array, or NULL. Process memory, never the region: a worker of
	 * lutfd has no view and leaves every hand-off to the Supervisor. The
	 * Supervisor stores an entry (release) and clears it (seq_cst) before the
	 * slot can go, then waits for view_users to drain; a Labor counts itself
	 * in view_users (seq_cst) before it loads an entry (Dekker).
	 */
	struct labor_watch_slot **lw_view; /* labors_max entries */
	uint32_t view_users;
	uint32_t view_on; /* 1 once any entry was set: FREE Labors spin (relaxed) */
	/* The tid of a FREE Labor spinning with a view now (the last one to
	 * start), 0 for none. The probe reads it (a wake hint,
	 * lutf_lw_register_hints): while it names a Labor on a CPU a block wakes
	 * nobody, so a spinner that stops clears it (seq_cst) and then re-checks
	 * the slots (free_spin). sup_bell: the Supervisor's eventfd, which such a spinner
	 * writes when a blocked peer it could not take yet still has Bricks;
	 * -1 until the Supervisor lends a view. */
	uint32_t spinning;
	int sup_bell;
	/* Block mode (a worker of lutfd): the front lent this process a
	 * read-only mapping of its runtime's block of labor_watch slots
	 * (host.h lutf_labor_host.watch_*). lw_view stays unused; Labor j's slot
	 * is found by tid and tgid in the block and cached in blk_idx[j] (relaxed:
	 * any Labor may refresh it; re-checked on every use). No slot writes,
	 * no eventfd: see free_spin. */
	const struct labor_watch_slot *blk;
	uint32_t blk_n;
	uint32_t *blk_idx; /* labors_max entries, LUTF_NONE = not found yet */
	int32_t pid;
};

/* Supervisor side of the view (labor.c): publish Labor i's probe slot, or
 * clear it (NULL) and wait until no Labor can still be reading the old one. */
void lutf_labors_view_set(struct lutf_labors *lb, uint32_t i, struct labor_watch_slot *slot);

/* Forget a slot's function, keeping its generation and state words (read
 * by submitters without the lock: never rewritten by a plain store). */
static inline void lutf_fn_local_clear(struct lutf_fn_local *f)
{
	f->fn = NULL;
	f->app = NULL;
	f->config = NULL;
	f->held = NULL;
	f->n_held = f->cap_held = 0;
	f->releasing = false;
	__atomic_store_n(&f->timeout_ms, 0, __ATOMIC_RELAXED);
	memset(f->name, 0, sizeof(f->name));
}

/* Set slot s's state: the front's copy (the one the front reads) and the
 * region's (the one Labors read), in that order, both seq_cst (the region's
 * store is the delete half of the Dekker pair with run_brick, labor.c). */
#define lutf_fn_set_state(rt, s, st)                                                               \
	do {                                                                                       \
		st_seqcst(&(rt)->fns[(s)].state, (st));                                            \
		st_seqcst(&(rt)->r.fns[(s)].state, (st));                                          \
	} while (0)

/* Complete b with its status fields already written (the caller won the
 * state CAS to DONE): wake a sync waiter or push onto the completion ring. */
void lutf_brick_post(struct lutf_region *r, struct lutf_brick *b);
/* Win the CAS from 'from' to DONE and post status/detail; false if lost. */
bool lutf_brick_finish(struct lutf_region *r, struct lutf_brick *b, uint32_t from, uint32_t status,
		       uint32_t detail);
/* Ring a doorbell whose owner may sleep: wake only if asleep. The work must
 * have been published by a seq_cst operation (a ring push) just before. */
void lutf_bell(struct lutf_region *r, uint32_t *bell, uint32_t *sleeping);
/* A Labor's cart word while someone binds a Cart to it: the Cart's index with
 * this bit, between the claim of the Labor and the owner CAS (cart.c). The
 * Labor waits it out; any reader bounding the word by cfg.carts sees no Cart. */
#define LUTF_CART_PENDING 0x80000000u

/* Bind Cart c (owned by Labor 'from', or unowned when from is LUTF_NONE) to
 * Labor 'to', which must hold no Cart: claim to's cart word (NONE -> c with
 * LUTF_CART_PENDING), CAS the owner word, then publish c. False when 'to' was
 * claimed by someone else or the owner changed (then nothing changed). The
 * Supervisor and a Labor taking a Cart for itself both bind through here. */
bool lutf_cart_claim(struct lutf_region *r, uint32_t c, uint32_t from, uint32_t to);
/* The one re-binding decision, for both paths (the Supervisor's, and a
 * spinning Labor's direct take, labor.c): Labor 'from', stuck in one Brick
 * for stuck_ns (blocked, by the probe; or not moving, by polling), loses Cart
 * c to Labor 'to' if stuck_ns reached the grace period and c has Bricks
 * queued. Returns true when 'to' now owns c (through lutf_cart_claim). */
bool lutf_cart_rebind(struct lutf_region *r, uint32_t c, uint32_t from, uint32_t to,
		      uint64_t stuck_ns);
/* Push a queued Brick onto a Cart (the caller's, or a shorter one) and wake
 * its Labor and the Supervisor if they sleep. Returns the Cart's index, or
 * -EAGAIN when every Cart is full. */
int lutf_cart_enqueue(struct lutf_region *r, uint32_t idx);

/* Supervisor (supervisor.c): put rt on sup's list (binding its Carts), take
 * it off again (0 or -errno). */
int lutf_sup_join(struct lutf_supervisor *sup, struct lutf_runtime *rt);
void lutf_sup_leave(struct lutf_runtime *rt);
/* One Supervisor pass over rt (tick and the locked bookkeeping), on the
 * caller's thread: for tests and the fuzzer. Returns true while busy. */
int lutf_sup_pass(struct lutf_runtime *rt, uint64_t now);
/* A Supervisor without a thread (polling mode): passes run by lutf_sup_pass. */
struct lutf_supervisor *lutf_sup_bare(void);
/* Wake the Supervisor thread out of any wait. */
void lutf_sup_wake(struct lutf_supervisor *sup);
/* A Brick with deadline_ns (0: none) was queued on Cart c. Wake the Supervisor
 * if it idles, or if it waits with a tick and either c's owner is already
 * blocked (its probe event was spent) or the deadline comes before the tick. */
void lutf_supervisor_nudge(struct lutf_runtime *rt, uint32_t c, uint64_t deadline_ns);
/* Fill the labor_watch fields of *st (zero when not in the BPF mode). */
void lutf_supervisor_bpf_stats(struct lutf_runtime *rt, struct lutf_runtime_stats *st);
/* Move held Bricks of slot back onto Carts, in order. Caller holds rt->lock. */
void lutf_release_held(struct lutf_runtime *rt, uint32_t slot);
/* Fail every held Brick of slot with status. Caller holds rt->lock. */
void lutf_fail_held(struct lutf_runtime *rt, uint32_t slot, uint32_t status);
/* Take Bricks from the region's held ring into hold lists. Caller holds rt->lock. */
void lutf_drain_held_ring(struct lutf_runtime *rt);

/* Labor thread ids (labor_tid.c). True when tid is a thread of the process
 * running this runtime's Labors (the declared worker, or this process for
 * in-process Labors); *tgid is then that process. Labor i then holds the
 * thread until lutf_labor_tid_drop. Caller holds sup_lock. */
bool lutf_labor_tid_check(struct lutf_runtime *rt, uint32_t i, int32_t tid, int32_t *tgid);
/* Labor i's tid, registered after lutf_labor_tid_check, still names that
 * thread (the pin's check, cheap: one poll). Caller holds sup_lock. */
bool lutf_labor_tid_live(struct lutf_runtime *rt, uint32_t i, int32_t tid);
/* Labor i's registered thread tid sleeps in the kernel now (/proc state S,
 * D, or another non-running state); false when it runs, is runnable, or
 * cannot be read. Caller holds sup_lock. */
bool lutf_labor_tid_sleeping(struct lutf_runtime *rt, uint32_t i, int32_t tid);
/* Labor i's registration is gone: let its thread go. Caller holds sup_lock. */
void lutf_labor_tid_drop(struct lutf_runtime *rt, uint32_t i);
/* lutf_labor_tid_check refused tid of Labor i: log it, and count a region
 * fault unless the tid word moved on or the worker is gone (a Labor exiting
 * or a worker dying is not a forgery). */
void lutf_labor_tid_refused(struct lutf_runtime *rt, uint32_t i, int32_t tid);
/* Close what lutf_runtime_set_worker opened (rt_free). */
void lutf_labor_tid_fini(struct lutf_runtime *rt);

/* Function loading (loader.c). Caller holds rt->lock. */
int lutf_app_load(struct lutf_runtime *rt, const char *path, struct lutf_app **out);
void lutf_app_unref(struct lutf_runtime *rt, struct lutf_app *app);
/* A symbol of a loaded app, or NULL. */
void *lutf_app_sym(struct lutf_app *app, const char *symbol);
void lutf_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* LUTF_RUNTIME_INTERNAL_H */
