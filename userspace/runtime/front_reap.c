/* SPDX-License-Identifier: MIT */
/*
 * The front's completion path: pop the completion ring, bind each entry to a
 * Brick this front submitted and still awaits, and copy the result out.
 * Invariant: a completion is delivered only for an index below the private
 * Brick count, which the front still awaits (submitted async, its request
 * id not reaped yet: recorded here, once) and whose request id matches the
 * front's copy; every field of the Brick is read once into a local before
 * it is checked and used.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"

#define REAP_SPIN_NS 20000ull /* a reaper with Bricks in flight spins this long before sleeping */
#define REAP_SLACK 64u	      /* entries a reap pass may skip beyond the max it returns */

static void fail_result(struct lutf_runtime *rt, struct lutf_result *res, unsigned check)
{
	lutf_front_fault(rt, check);
	free(res->output);
	res->output = NULL;
	res->output_len = 0;
	res->content_type[0] = 0;
	res->status = LUTF_STATUS_CRASHED;
	res->detail = 0;
	snprintf(res->error, sizeof(res->error), "crashed (region fault: %s)",
		 lutf_fault_check_name(check));
}

/* Bytes a content type may hold: printable ASCII, no CR/LF (it becomes an
 * HTTP header line). */
static bool ct_ok(const char *ct, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if ((unsigned char)ct[i] < 0x20 || (unsigned char)ct[i] > 0x7e)
			return false;
	return true;
}

/* b is Brick idx (idx below the private count). */
static void take_result(struct lutf_runtime *rt, uint32_t idx, struct lutf_brick *b,
			struct lutf_result *res)
{
	struct lutf_region *r = &rt->r;
	/* Each word once; only these locals are used below. */
	uint32_t status = ld_relaxed(&b->status), detail = ld_relaxed(&b->detail);
	uint32_t out_len = ld_relaxed(&b->out_len), out_ct = ld_relaxed(&b->out_ct);
	uint64_t out_off = ld_relaxed(&b->out_off);
	const uint8_t *p = NULL;

	memset(res, 0, sizeof(*res));
	res->status = status;
	res->detail = detail;
	res->request_id = rt->bf[idx].request_id;
	if (out_off) {
		size_t cap = lutf_arena_block_size(r, out_off);

		if (!cap || cap < (uint64_t)out_ct + out_len) {
			fail_result(rt, res, LUTF_FAULT_RESULT);
			goto out;
		}
		p = lutf_region_at(r, out_off);
	}
	if (status >= LUTF_STATUS__COUNT || out_ct > LUTF_CONTENT_TYPE_MAX) {
		fail_result(rt, res, LUTF_FAULT_RESULT);
	} else if (status == LUTF_STATUS_OK) {
		if (p && out_ct) {
			memcpy(res->content_type, p, out_ct);
			if (!ct_ok(res->content_type, out_ct)) {
				fail_result(rt, res, LUTF_FAULT_RESULT);
				goto out;
			}
		}
		if (p && out_len) {
			res->output = malloc(out_len);
			if (res->output) {
				memcpy(res->output, p + out_ct, out_len);
				res->output_len = out_len;
			} else {
				res->status = LUTF_STATUS_OUT_OF_MEMORY;
				snprintf(res->error, sizeof(res->error), "cannot copy output");
			}
		}
	} else if (p && out_len && status != LUTF_STATUS_DEADLINE) {
		size_t n = out_len < LUTF_ERROR_MSG_MAX ? out_len : LUTF_ERROR_MSG_MAX;

		memcpy(res->error, p + out_ct, n);
		res->error[n] = 0;
	} else {
		snprintf(res->error, sizeof(res->error), "%s", lutf_status_str(status));
	}
out:
	__atomic_add_fetch(&rt->n_completed, 1, __ATOMIC_RELAXED);
	lutf_brick_unref(r, b);
}

void lutf_front_take_result(struct lutf_runtime *rt, struct lutf_brick *b, struct lutf_result *res)
{
	take_result(rt, lutf_brick_index(&rt->r, b), b, res);
}

/* One completion-ring entry: 1 and out filled, 0 skipped (a fault, or crash
 * repair's filler). Caller holds reap_lock. */
static int reap_one(struct lutf_runtime *rt, uint32_t idx, struct lutf_completion *out)
{
	struct lutf_front_brick *bf;
	struct lutf_brick *b;

	if (idx == LUTF_NONE) {
		/* Crash repair fills claimed, never-published cells with NONE and
		 * counts them; any other NONE was written by the worker. */
		if (rt->cq_fillers) {
			rt->cq_fillers--;
			return 0;
		}
		lutf_front_fault(rt, LUTF_FAULT_CQ_INDEX);
		return 0;
	}
	b = lutf_front_brick(rt, idx, LUTF_FAULT_CQ_INDEX);
	if (!b)
		return 0;
	bf = &rt->bf[idx];
	/* Only reapers write reaped[], under reap_lock; submit wrote bf before
	 * the push whose release our pop acquired. */
	if (!lutf_front_awaited(rt, idx)) {
		lutf_front_fault(rt, LUTF_FAULT_CQ_STRAY);
		return 0;
	}
	st_relaxed(&rt->reaped[idx], bf->request_id);
	out->user_data = bf->user_data;
	if (ld_relaxed(&b->request_id) != bf->request_id) {
		/* Our Brick, with a forged generation: answer it, as a fault. */
		memset(&out->result, 0, sizeof(out->result));
		out->result.request_id = bf->request_id;
		fail_result(rt, &out->result, LUTF_FAULT_CQ_GENERATION);
		__atomic_add_fetch(&rt->n_completed, 1, __ATOMIC_RELAXED);
		lutf_brick_unref(&rt->r, b);
		return 1;
	}
	take_result(rt, idx, b, &out->result);
	return 1;
}

/*
 * Bricks in flight and none ready: spin a bounded while (REAP_SPIN_NS, or
 * until the caller's own limit), as a sync caller does, before the futex
 * sleep. A no-op Brick completes in well under a microsecond; a reaper that
 * sleeps and is woken for each one spends more on the two context switches
 * than the Labors spend running it (bench/dispatch (c): futex calls per run
 * 30,000 -> 500, 0.97x -> 1.02x the throughput of 36f0be1). Nothing in flight:
 * no spin, so an idle caller costs no CPU. True when a completion is ready.
 */
static bool reap_spin(struct lutf_runtime *rt, uint64_t until)
{
	uint64_t from, now;
	unsigned spins = 0;

	/* Relaxed: a hint; a stale count only spins or sleeps once more. */
	if (ld_relaxed(&rt->n_submitted) == ld_relaxed(&rt->n_completed))
		return false;
	from = lutf_now_ns();
	for (;;) {
		if (lutf_ring_ready(&rt->r.cq))
			return true;
		if ((++spins & 63) == 0) {
			now = lutf_now_ns();
			if (now - from > REAP_SPIN_NS || (until && now >= until))
				return false;
			sched_yield(); /* a Labor may need this CPU */
		}
		__builtin_ia32_pause();
	}
}

int lutf_runtime_reap(struct lutf_runtime *rt, struct lutf_completion *out, unsigned max,
		      int timeout_ms)
{
	struct lutf_region *r;
	uint64_t until = 0;
	unsigned n = 0;

	if (!rt || (!out && max))
		return -EINVAL;
	r = &rt->r;
	if (timeout_ms > 0)
		until = lutf_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		uint32_t idx, seq, *bell;
		unsigned spent = 0;
		bool shared;

		/* The lock covers taking results, not sleeping: worker_lost takes
		 * it to see completions either in the ring or already reaped.
		 * The pass is bounded: every entry counts, valid or not. */
		pthread_mutex_lock(&rt->reap_lock);
		while (n < max && spent++ < max + REAP_SLACK &&
		       lutf_ring_take(r, &r->cq, NULL, &idx) == 0)
			n += (unsigned)reap_one(rt, idx, &out[n]);
		pthread_mutex_unlock(&rt->reap_lock);
		if (n || timeout_ms == 0 || max == 0)
			break;
		if (timeout_ms > 0 && lutf_now_ns() >= until)
			break;
		if (reap_spin(rt, until))
			continue;
		if (lutf_runtime_reap_arm(rt, &bell, &seq, &shared) == 0) {
			uint64_t now = lutf_now_ns();

			lutf_futex_wait(bell, seq, shared,
					timeout_ms > 0 ? (until > now ? until - now : 1) : 0);
			lutf_runtime_reap_disarm(rt);
		}
	}
	return (int)n;
}

/* The sleep of lutf_runtime_reap split in two (the same Dekker pairing). */
int lutf_runtime_reap_arm(struct lutf_runtime *rt, uint32_t **uaddr, uint32_t *val, bool *shared)
{
	struct lutf_region_hdr *h;
	uint32_t seq;

	if (!rt || !uaddr || !val || !shared)
		return -EINVAL;
	h = rt->r.hdr;
	/* seq_cst, before the bell is read: from here on a poster that finds
	 * us counted rings unless one already did after this store, and that
	 * one's bell increment follows it (lutf_brick_post, cart.c). The
	 * worker can write it; a word stuck at 1 only loses that worker's own
	 * wake-ups, as a worker that never rings does (lutfd's deadlines
	 * answer its calls). */
	st_seqcst(&h->cq_rung, 0);
	/* Acquire pairs with the release increment in lutf_brick_post. */
	seq = ld_acquire(&h->cq_bell);
	/* A count of sleepers (reapers may be several), incremented seq_cst
	 * before the seq_cst re-check: pairs with lutf_brick_post's ring claim
	 * and lutf_bell (Dekker, cart.c), so a completion posted after the
	 * check rings the bell. */
	__atomic_add_fetch(&h->cq_sleeping, 1, __ATOMIC_SEQ_CST);
	if (lutf_ring_ready(&rt->r.cq)) {
		/* Relaxed: nobody waits on the count going down; a spare bell
		 * ring costs one futex wake. */
		__atomic_sub_fetch(&h->cq_sleeping, 1, __ATOMIC_RELAXED);
		return -EAGAIN;
	}
	/* Relaxed: the front's own count of what it added to cq_sleeping, so a
	 * region reset can put it back. */
	__atomic_add_fetch(&rt->cq_armed, 1, __ATOMIC_RELAXED);
	*uaddr = &h->cq_bell;
	*val = seq;
	*shared = rt->r.shared;
	return 0;
}

void lutf_runtime_reap_disarm(struct lutf_runtime *rt)
{
	/* Relaxed: as in arm's early return, a stale count only rings once more. */
	if (!rt)
		return;
	__atomic_sub_fetch(&rt->cq_armed, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&rt->r.hdr->cq_sleeping, 1, __ATOMIC_RELAXED);
}

unsigned lutf_runtime_faults(struct lutf_runtime *rt, uint64_t *counts)
{
	if (!rt)
		return LUTF_FAULT_NONE;
	for (unsigned k = 0; counts && k < LUTF_FAULT__COUNT; k++)
		counts[k] = ld_relaxed(&rt->r.faults[k]);
	return ld_relaxed(&rt->r.last_fault);
}

uint64_t lutf_runtime_region_faults(struct lutf_runtime *rt)
{
	uint64_t n = 0;

	for (unsigned k = 1; rt && k < LUTF_FAULT__COUNT; k++)
		n += ld_relaxed(&rt->r.faults[k]);
	return n;
}

/*
 * Lost calls: a worker can rewrite region words into other valid values (a
 * queued or running Brick marked FREE, a completion never pushed) and no
 * check above trips; lutfd's own deadline (timeout + 1 s) answers the calls,
 * but the worker would stay. An awaited Brick (lutf_front_awaited: submitted
 * async, not reaped) still unanswered LOST_SLACK_NS after its deadline is a
 * late call. For a healthy worker that only happens in a short window: the
 * Supervisor answers, at the deadline and from lutfd's side, every Brick it
 * sees queued in a Cart or running in a Labor slot, so a late call needs a
 * Labor thread off-CPU between taking a Brick from its Cart and marking it
 * running, or between finishing one and claiming its completion cell (a cell
 * claimed and not yet filled leaves the completion ring non-empty: then
 * nothing is counted). A worker starved by its cgroup's cpu.max still runs a
 * slice every period (100 ms by default), and each Labor holds at most one
 * Brick in such a window, so it gets there only if it is starved for seconds
 * (SIGSTOP, the freezer, a quota of a few ms for dozens of threads). Hence:
 * - an awaited Brick marked FREE is lost at once: the submitter's reference
 *   is held until the reap, and no correct path frees it before;
 * - other late calls count as a strike per scan (once a second), and a
 *   fault only after LOST_STRIKES scans in a row found some, so a worker
 *   overloaded or starved for a moment is never recycled for a late call.
 * The scan runs under reap_lock: no reaper can take a Brick meanwhile.
 */
#define LOST_SLACK_NS 2000000000ull /* past the deadline: lutfd's own answered 1 s before */
#define LOST_SCAN_NS 1000000000ull
#define LOST_STRIKES 3u

static unsigned lost_scan(struct lutf_runtime *rt, uint64_t now)
{
	struct lutf_region *r = &rt->r;
	uint32_t freed = 0, late = 0;

	pthread_mutex_lock(&rt->reap_lock);
	for (uint32_t i = 0; i < r->cfg.bricks; i++) {
		uint64_t dl;

		/* The deadline read after it is that submit's (acquire inside). */
		if (!lutf_front_awaited(rt, i))
			continue;
		dl = ld_relaxed(&rt->bf[i].deadline_ns);
		if (!dl || now < dl || now - dl < LOST_SLACK_NS)
			continue;
		if (ld_relaxed(&r->bricks[i].state) == LUTF_BRICK_FREE)
			freed++;
		else
			late++;
	}
	if (late && lutf_ring_count(&r->cq) != 0)
		late = 0; /* completions wait in the ring (a reaper behind, a claimed cell) */
	pthread_mutex_unlock(&rt->reap_lock);
	rt->lost_strikes = late ? rt->lost_strikes + 1 : 0;
	if (freed || rt->lost_strikes >= LOST_STRIKES) {
		rt->lost_strikes = 0;
		lutf_front_fault(rt, LUTF_FAULT_LOST);
		return 1;
	}
	return 0;
}

unsigned lutf_runtime_audit(struct lutf_runtime *rt)
{
	struct lutf_region *r;
	unsigned n = 0;
	uint64_t now;
	uint32_t end;

	if (!rt)
		return 0;
	r = &rt->r;
	if (!lutf_region_layout_intact(r)) {
		lutf_front_fault(rt, LUTF_FAULT_LAYOUT);
		n++;
	}
	/* Values only the front or a correct Labor writes, each always valid:
	 * state (front, Labors: FREE..DONE), cq and fn (front, at submit). One
	 * slice of the Bricks per call (a cache line each, read from the
	 * worker's side of the machine): lutfd's 50 ms tick reads them all
	 * every LUTF_AUDIT_SLICES ticks, not 8,192 lines on every tick. */
	end = rt->audit_pos + (r->cfg.bricks + LUTF_AUDIT_SLICES - 1) / LUTF_AUDIT_SLICES;
	if (end > r->cfg.bricks)
		end = r->cfg.bricks;
	for (uint32_t i = rt->audit_pos; i < end; i++) {
		const struct lutf_brick *b = &r->bricks[i];

		if (ld_relaxed(&b->state) > LUTF_BRICK_DONE || ld_relaxed(&b->cq) > LUTF_CQ_ASYNC ||
		    ld_relaxed(&b->fn) >= r->cfg.max_functions) {
			lutf_front_fault(rt, LUTF_FAULT_BRICK);
			n++;
			break; /* one is enough: the worker is recycled */
		}
	}
	rt->audit_pos = end < r->cfg.bricks ? end : 0;
	now = lutf_now_ns();
	if (!n && now - rt->lost_scan_ns >= LOST_SCAN_NS) {
		rt->lost_scan_ns = now;
		n += lost_scan(rt, now);
	}
	return n;
}
