/* SPDX-License-Identifier: MIT */
/*
 * The front's side of a shared region (lutfd, or the submitting side of an
 * in-process runtime). Rule: the layout comes only from the private view
 * built at attach (struct lutf_region: counts, offsets, ring masks and cells,
 * the class table); every word the worker can write is loaded once into a
 * local, checked against that view, and only the local is used; every pass
 * over worker-written words has a fixed budget. A failed check is a region
 * fault (lutf_front_fault): counted by check, never followed.
 *
 * Files on this side: runtime.c (submit, function table), front_reap.c
 * (completions), supervisor.c, crash.c. The worker's side is labor.c.
 */
#ifndef LUTF_RUNTIME_FRONT_H
#define LUTF_RUNTIME_FRONT_H

#include "internal.h"

/* What the front knows of one Brick, in its own memory: a worker cannot
 * forge it. Indexed by Brick index (below the private cfg.bricks). Written
 * only by the submitter (and the reset), so the reaper's reads never pull
 * the line away from the submit path. */
struct lutf_front_brick {
	uint64_t user_data;   /* handed back with the completion */
	uint64_t request_id;  /* the Brick's generation; stored last (release) */
	uint64_t deadline_ns; /* relaxed atomic: the Supervisor reads it */
	uint32_t async;	      /* a reaper awaits it (relaxed atomic) */
	uint32_t pad;
};

/* Awaited: submitted async and not reaped yet. rt->reaped[idx] is the last
 * request id a reaper took for the Brick (written under reap_lock only,
 * in a table of its own: no cache line shared with the submit path). A
 * request id is never 0 and never repeats. Caller holds reap_lock, or
 * accepts a stale answer. */
static inline bool lutf_front_awaited(const struct lutf_runtime *rt, uint32_t idx)
{
	const struct lutf_front_brick *bf = &rt->bf[idx];
	/* Acquire pairs with submit's release of request_id: async is that
	 * submit's. */
	uint64_t id = __atomic_load_n(&bf->request_id, __ATOMIC_ACQUIRE);

	return ld_relaxed(&bf->async) && id != ld_relaxed(&rt->reaped[idx]);
}

/* lutf_runtime_audit checks one slice of the Bricks per call, in turn. */
#define LUTF_AUDIT_SLICES 8u

/* A region fault found by the front: count the check (any thread). */
static inline void lutf_front_fault(struct lutf_runtime *rt, unsigned check)
{
	lutf_region_fault(&rt->r, check);
}

/* The Brick at a worker-supplied index, or NULL (and a fault on check). */
static inline struct lutf_brick *lutf_front_brick(struct lutf_runtime *rt, uint32_t idx,
						  unsigned check)
{
	if (idx < rt->r.cfg.bricks)
		return &rt->r.bricks[idx];
	lutf_front_fault(rt, check);
	return NULL;
}

/* Copy a completed Brick's result out (each field read once, checked against
 * the private view) and drop the submitter's reference (front_reap.c). */
void lutf_front_take_result(struct lutf_runtime *rt, struct lutf_brick *b, struct lutf_result *res);

/* For tests and the fuzzer: attach a front to mem with a thread-less
 * Supervisor (passes by lutf_sup_pass), and free it again without waiting
 * for the region to drain. 0 or -errno. */
int lutf_front_attach_bare(void *mem, size_t size, struct lutf_runtime **out);
void lutf_front_detach_bare(struct lutf_runtime *rt);

#endif /* LUTF_RUNTIME_FRONT_H */
