/* SPDX-License-Identifier: MIT */
/*
 * Labors: the threads that run Bricks. A Labor runs the Bricks of the one
 * Cart whose owner word names it; when the word names another Labor it lets
 * the Cart go (it may already have popped one more Brick, which it runs) and
 * parks until the Supervisor gives it a Cart. An empty Cart is spun on for at
 * most spin_ns, then the Labor parks on its own bell.
 *
 * Who writes labor->cart: the Labor itself (to LUTF_NONE when it loses its
 * Cart, or through lutf_cart_claim when it takes one) and the Supervisor
 * (through lutf_cart_claim, only from LUTF_NONE). A claim shows the Cart with
 * LUTF_CART_PENDING until the owner CAS is decided; the Labor waits it out.
 *
 * The direct take: a FREE Labor spins up to spin_ns before it parks, and while
 * it spins it watches its peers' labor_watch slots (the view the Supervisor
 * lends it when both run in one process). A peer that the probe saw block
 * inside a Brick, for longer than the grace period, with Bricks on its Cart,
 * loses the Cart to the spinner through lutf_cart_rebind, the Supervisor's own
 * decision, with no round trip through the Supervisor (as Go's spinning Ms take
 * a P stuck in a syscall). The Supervisor stays the fallback when every Labor
 * is parked, and is the only path for a worker of lutfd (no view there).
 *
 * The elastic pool: the region's labor_req word says how many Labors the
 * front wants. A keeper thread here starts Labors up to it; a FREE Labor whose
 * index is at or above it retires (exits), and the keeper joins it. With
 * LUTF_LABORS_FIXED (a tier whose filter forbids clone) all labors_max Labors
 * start at once and none retires: a FREE Labor above labor_req just parks.
 * With LUTF_LABORS_HELD, Labors wait (unpublished, so never given a Cart)
 * until lutf_labors_release.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "internal.h"
#include "labor_watch.h" /* struct labor_watch_slot, LW_* */

#define SCRATCH_KEEP (64u << 10) /* output buffer kept between calls */

struct labor_self {
	struct lutf_labors *lb;
	uint32_t idx;
	uint32_t exited; /* set last by the thread: the keeper may join it */
	cpu_set_t cpus;	 /* the CPUs it may use; restored after a hand-off pin */
	uint8_t *scratch;
	size_t scratch_cap;
};

/* Per-call state behind struct lutf_call. */
struct call_ctx {
	struct lutf_call call;
	struct labor_self *self;
	struct lutf_brick *b;
	struct lutf_fn_binding bind;
	const char *meta;
	uint32_t meta_len;
	size_t out_len;
	char ct[LUTF_CONTENT_TYPE_MAX + 1];
	char err[LUTF_ERROR_MSG_MAX + 1];
	bool failed;
	bool too_large;
};

static struct call_ctx *ctx_of(struct lutf_call *call)
{
	return (struct call_ctx *)call;
}

static int op_write(struct lutf_call *call, const void *buf, size_t len)
{
	struct call_ctx *k = ctx_of(call);
	struct labor_self *s = k->self;
	size_t need = k->out_len + len;

	if (len == 0)
		return 0;
	if (need < k->out_len || need > k->self->lb->r.cfg.max_payload) {
		k->too_large = true;
		return -EMSGSIZE;
	}
	if (need > s->scratch_cap) {
		size_t cap = s->scratch_cap ? s->scratch_cap : 4096;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(s->scratch, cap);
		if (!p)
			return -ENOMEM;
		s->scratch = p;
		s->scratch_cap = cap;
	}
	memcpy(s->scratch + k->out_len, buf, len);
	k->out_len = need;
	return 0;
}

static int op_set_content_type(struct lutf_call *call, const char *type)
{
	struct call_ctx *k = ctx_of(call);
	size_t n;

	if (!type)
		return -EINVAL;
	n = strlen(type);
	if (n > LUTF_CONTENT_TYPE_MAX || memchr(type, '\n', n) || memchr(type, '\r', n))
		return -EINVAL;
	memcpy(k->ct, type, n + 1);
	return 0;
}

static int op_fail(struct lutf_call *call, const char *msg)
{
	struct call_ctx *k = ctx_of(call);

	k->failed = true;
	snprintf(k->err, sizeof(k->err), "%s", msg ? msg : "function failed");
	return 0;
}

static void op_log(struct lutf_call *call, const char *line, size_t len)
{
	struct call_ctx *k = ctx_of(call);
	struct lutf_labors *lb = k->self->lb;
	const char *name = lb->r.fns[k->b->fn].name;

	if (lb->host.log)
		lb->host.log(lb->host.ctx, name, line, len);
	else
		fprintf(stderr, "lutf: %s: %.*s\n", name, (int)len, line);
}

static const char *pairs_find(const char *const *kv, const char *key)
{
	for (; kv && kv[0] && kv[1]; kv += 2)
		if (strcmp(kv[0], key) == 0)
			return kv[1];
	return NULL;
}

static const char *op_config(struct lutf_call *call, const char *key)
{
	return key ? pairs_find(ctx_of(call)->bind.config, key) : NULL;
}

/* Metadata is "key\0value\0" pairs; the front wrote and bounded it. */
static const char *op_meta(struct lutf_call *call, const char *key)
{
	struct call_ctx *k = ctx_of(call);
	const char *p = k->meta, *end = k->meta + k->meta_len;

	while (key && p < end) {
		const char *v = memchr(p, 0, (size_t)(end - p));
		const char *e;

		if (!v || v + 1 >= end)
			break;
		e = memchr(v + 1, 0, (size_t)(end - v - 1));
		if (!e)
			break;
		if (strcmp(p, key) == 0)
			return v + 1;
		p = e + 1;
	}
	return NULL;
}

static const struct lutf_call_ops call_ops = {
    .size = sizeof(struct lutf_call_ops),
    .write = op_write,
    .set_content_type = op_set_content_type,
    .fail = op_fail,
    .log = op_log,
    .config = op_config,
    .meta = op_meta,
};

/* Store [content type][bytes] into an arena block of the Brick. Returns the
 * status the call ends with. */
static uint32_t store_output(struct lutf_region *r, struct lutf_brick *b, const char *ct,
			     const void *data, size_t len)
{
	size_t ctn = ct ? strlen(ct) : 0;
	uint8_t *p;

	if (ctn + len == 0)
		return LUTF_STATUS_OK;
	b->out_off = lutf_arena_alloc(r, ctn + len);
	if (!b->out_off)
		return LUTF_STATUS_OVERLOADED;
	p = lutf_region_at(r, b->out_off);
	if (ctn)
		memcpy(p, ct, ctn);
	if (len)
		memcpy(p + ctn, data, len);
	b->out_ct = (uint32_t)ctn;
	b->out_len = (uint32_t)len;
	return LUTF_STATUS_OK;
}

static void call_function(struct labor_self *s, struct lutf_brick *b)
{
	struct lutf_region *r = &s->lb->r;
	struct call_ctx k;
	const uint8_t *in;
	uint32_t status;
	int rc;

	memset(&k, 0, sizeof(k)); /* before resolve: it fills k.bind */
	if (s->lb->host.resolve(s->lb->host.ctx, b->fn, r->fns[b->fn].name, &k.bind) ||
	    !k.bind.fn) {
		lutf_brick_finish(r, b, LUTF_BRICK_RUNNING, LUTF_STATUS_UNKNOWN_FUNCTION, 0);
		return;
	}
	in = b->in_off ? lutf_region_at(r, b->in_off) : b->inline_in;
	k.call.ops = &call_ops;
	k.call.input = in + b->in_meta;
	k.call.input_len = b->in_len;
	k.call.request_id = b->request_id;
	k.call.deadline_ns = b->deadline_ns;
	k.call.app_state = k.bind.app_state;
	k.self = s;
	k.b = b;
	k.meta = (const char *)in;
	k.meta_len = b->in_meta;

	rc = k.bind.fn(&k.call);

	if (k.too_large) {
		snprintf(k.err, sizeof(k.err), "output over the %u-byte limit", r->cfg.max_payload);
		status = LUTF_STATUS_TOO_LARGE;
	} else if (k.failed || rc != 0) {
		if (!k.failed)
			snprintf(k.err, sizeof(k.err), "function returned %d", rc);
		/* -ENOMEM: the function ran out of memory (a Python MemoryError). */
		status = rc == -ENOMEM ? LUTF_STATUS_OUT_OF_MEMORY : LUTF_STATUS_FUNCTION_ERROR;
	} else {
		status = LUTF_STATUS_OK;
	}
	if (status == LUTF_STATUS_OK)
		status = store_output(r, b, k.ct[0] ? k.ct : NULL, s->scratch, k.out_len);
	else
		store_output(r, b, NULL, k.err, strlen(k.err));
	if (s->scratch_cap > SCRATCH_KEEP) {
		free(s->scratch);
		s->scratch = NULL;
		s->scratch_cap = 0;
	}
	/* Lost only to the Supervisor's deadline: the output goes with the
	 * Brick's last reference. */
	lutf_brick_finish(r, b, LUTF_BRICK_RUNNING, status, 0);
}

/* Run (or divert) one popped Brick. The Labor holds the queue's reference. */
static void run_brick(struct labor_self *s, struct lutf_labor *me, uint32_t idx)
{
	struct lutf_region *r = &s->lb->r;
	struct lutf_region_hdr *h = r->hdr;
	struct lutf_brick *b;
	struct lutf_fn_slot *slot;
	uint32_t fstate;

	if (idx >= r->cfg.bricks) {
		st_relaxed(&me->brick, LUTF_NONE);
		return; /* not a Brick: a corrupt ring entry is dropped, not followed */
	}
	b = &r->bricks[idx];
	if (ld_acquire(&b->state) != LUTF_BRICK_QUEUED || b->fn >= r->cfg.max_functions)
		goto out; /* already completed (deadline) by the Supervisor */
	st_relaxed(&me->brick, idx);
	/* Single writer; the Supervisor compares it across ticks (relaxed). */
	st_relaxed(&me->started, me->started + 1);
	st_relaxed(&me->state, LUTF_LABOR_RUNNING);

	/* Dekker with delete: publish that we are inside the slot, then read its
	 * state. The deleter writes DELETED, then scans cur_fn of every Labor.
	 * Both seq_cst: either we see DELETED or it sees us. */
	slot = &r->fns[b->fn];
	st_seqcst(&me->cur_fn, b->fn);
	fstate = ld_seqcst(&slot->state);
	if (fstate == LUTF_FN_PAUSED && ld_relaxed(&slot->gen) == b->fn_gen &&
	    ld_relaxed(&h->stop) == 0) {
		/* Held: hand the Brick (and our reference) to the Supervisor,
		 * which drains the held ring on every tick (it ticks while
		 * calls come and go, and at least once a second). */
		lutf_ring_push(r, &r->held, idx);
		goto leave;
	}
	if (ld_relaxed(&h->stop)) {
		lutf_brick_finish(r, b, LUTF_BRICK_QUEUED, LUTF_STATUS_SHUTTING_DOWN, 0);
	} else if ((fstate != LUTF_FN_ACTIVE && fstate != LUTF_FN_RELEASING) ||
		   ld_relaxed(&slot->gen) != b->fn_gen) {
		lutf_brick_finish(r, b, LUTF_BRICK_QUEUED, LUTF_STATUS_DELETED, 0);
	} else if (b->deadline_ns && lutf_now_ns() >= b->deadline_ns) {
		lutf_brick_finish(r, b, LUTF_BRICK_QUEUED, LUTF_STATUS_DEADLINE, 0);
	} else {
		uint32_t expect = LUTF_BRICK_QUEUED;

		if (__atomic_compare_exchange_n(&b->state, &expect, LUTF_BRICK_RUNNING, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			call_function(s, b);
	}
	st_release(&me->cur_fn, LUTF_NONE);
out:
	/* Cleared before the reference is dropped: while brick names it, this
	 * Labor owns a reference (lutf_runtime_worker_lost relies on it). */
	st_release(&me->brick, LUTF_NONE);
	lutf_brick_unref(r, b);
	st_relaxed(&me->state, LUTF_LABOR_IDLE);
	return;
leave:
	st_release(&me->cur_fn, LUTF_NONE);
	st_release(&me->brick, LUTF_NONE);
	st_relaxed(&me->state, LUTF_LABOR_IDLE);
}

void lutf_labors_view_set(struct lutf_labors *lb, uint32_t i, struct labor_watch_slot *slot)
{
	if (!lb->lw_view || i >= lb->r.cfg.labors_max)
		return;
	if (slot) {
		/* Release: the slot's fields (registered) before the pointer. */
		__atomic_store_n(&lb->lw_view[i], slot, __ATOMIC_RELEASE);
		if (__atomic_exchange_n(&lb->view_on, 1, __ATOMIC_RELAXED))
			return;
		/* The first view: FREE Labors that parked at once without one
		 * get their spin now (once per runtime). */
		for (uint32_t j = 0; j < lb->r.cfg.labors_max; j++) {
			__atomic_add_fetch(&lb->r.labors[j].bell, 1, __ATOMIC_RELEASE);
			lutf_futex_wake(&lb->r.labors[j].bell, 1, lb->r.shared);
		}
		return;
	}
	/* seq_cst store, then seq_cst loads of view_users: pairs with the
	 * reader's seq_cst increment before its loads (take_blocked). A reader
	 * that got the old pointer is counted; it holds it for a few loads and
	 * never blocks, so this wait is short (and in-process only). */
	__atomic_store_n(&lb->lw_view[i], NULL, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&lb->view_users, __ATOMIC_SEQ_CST))
		sched_yield();
}

/*
 * The direct take: find a peer the probe saw blocked inside a Brick for at
 * least the grace period, whose Cart has Bricks, and take the Cart
 * (lutf_cart_rebind, the Supervisor's own decision). Returns true when this
 * Labor now owns a Cart. The probe reports a block only while the slot names
 * a Cart, so the taker moves the two slots' Carts itself at once (the
 * Supervisor's lw_cart_sync repairs any race with its own binds). *pending
 * (when not NULL) is set when a blocked peer with Bricks queued was left
 * (inside the grace period, or the decision said no); with take false
 * nothing is taken, only *pending found.
 */
/* Block mode: is slot k of the lent block Labor tid's of this process? The
 * loader writes tid (release) after the slot's other fields; tid and tgid
 * are the loader's words, never the worker's. */
static bool blk_is(const struct lutf_labors *lb, uint32_t k, int32_t tid)
{
	return tid > 0 && __atomic_load_n(&lb->blk[k].tid, __ATOMIC_ACQUIRE) == (uint32_t)tid &&
	       __atomic_load_n(&lb->blk[k].tgid, __ATOMIC_RELAXED) == (uint32_t)lb->pid;
}

/* Block mode: Labor j's slot in the lent block, or NULL (not registered yet,
 * over the watch cap). The index is cached and the tid checked on every use. */
static const struct labor_watch_slot *blk_slot(struct lutf_labors *lb, uint32_t j)
{
	/* Acquire pairs with the Labor's release store of its tid. */
	int32_t tid = ld_acquire(&lb->r.labors[j].tid);
	uint32_t k = ld_relaxed(&lb->blk_idx[j]); /* a cache: any Labor refreshes it */

	if (k < lb->blk_n && blk_is(lb, k, tid))
		return &lb->blk[k];
	for (k = 0; k < lb->blk_n; k++) {
		if (blk_is(lb, k, tid)) {
			st_relaxed(&lb->blk_idx[j], k);
			return &lb->blk[k];
		}
	}
	return NULL;
}

static bool take_blocked(struct lutf_labors *lb, uint32_t me_idx, bool take, bool *pending)
{
	struct lutf_region *r = &lb->r;
	uint32_t n = r->cfg.labors_max;
	struct labor_watch_slot *mine;
	bool took = false;
	uint64_t now = 0;

	/* seq_cst: the Dekker pair with lutf_labors_view_set's clear. */
	__atomic_add_fetch(&lb->view_users, 1, __ATOMIC_SEQ_CST);
	for (uint32_t j = 0; j < n && !took; j++) {
		const struct labor_watch_slot *sl;
		uint32_t c;

		if (j == me_idx)
			continue;
		if (lb->blk) {
			/* Block mode: the region's words first (cheap, and they
			 * skip most Labors), then the slot, found by tid. */
			c = ld_acquire(&r->labors[j].cart);
			if (c >= r->cfg.carts ||
			    ld_relaxed(&r->labors[j].state) != LUTF_LABOR_RUNNING)
				continue;
			sl = blk_slot(lb, j);
			if (!sl ||
			    __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) != LW_STATE_BLOCKED)
				continue;
		} else {
			sl = __atomic_load_n(&lb->lw_view[j], __ATOMIC_SEQ_CST);
			/* Acquire: the probe writes state last (exchange); the
			 * stamp read after it is this block's or a later one's. */
			if (!sl ||
			    __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) != LW_STATE_BLOCKED)
				continue;
			c = ld_acquire(&r->labors[j].cart);
			if (c >= r->cfg.carts ||
			    ld_relaxed(&r->labors[j].state) != LUTF_LABOR_RUNNING)
				continue;
		}
		if (!now)
			now = lutf_now_ns();
		{
			uint64_t at = __atomic_load_n(&sl->last_block_ns, __ATOMIC_RELAXED);

			if (!take || !lutf_cart_rebind(r, c, j, me_idx, now > at ? now - at : 1)) {
				/* Still j's Cart (not one just taken from it). */
				if (pending && ld_acquire(&r->carts[c].owner) == j + 1 &&
				    lutf_ring_count(&r->cart_q[c]))
					*pending = true;
				continue;
			}
		}
		took = true;
		/* Block mode: read-only. The probe takes our Cart from our own
		 * words (cart hint); the Supervisor syncs the slots' Carts. */
		if (lb->blk)
			break;
		/* Release, as lutf_lw_set_cart: pairs with the probe's read. */
		__atomic_store_n(&((struct labor_watch_slot *)sl)->cart, LW_NO_CART,
				 __ATOMIC_RELEASE);
		mine = __atomic_load_n(&lb->lw_view[me_idx], __ATOMIC_SEQ_CST);
		if (mine)
			__atomic_store_n(&mine->cart, c, __ATOMIC_RELEASE);
	}
	__atomic_sub_fetch(&lb->view_users, 1, __ATOMIC_RELEASE);
	return took;
}

/* Given a Cart by the Supervisor while spinning: it pinned us to its vCPU
 * for the hand-off (pin_here) as it does a parked Labor; undo it now that we
 * run there (only park undid it before, so a spinner's pin outlived the
 * hand-off and held the Labors it touched on one vCPU). */
static void unpin_given(struct labor_self *s, struct lutf_labor *me)
{
	if (ld_acquire(&me->pinned)) {
		st_relaxed(&me->pinned, 0);
		sched_setaffinity(0, sizeof(s->cpus), &s->cpus);
	}
}

/* Slack over the grace period for blk_wait's bound: the spinner may be
 * preempted between looks (it checks the clock every 64 pauses). */
#define BLK_WAIT_SLACK_NS 200000ull

/*
 * Block mode, a spinner that ran out with a blocked peer pending (Bricks on
 * its Cart, inside the grace period): in-process it would write the
 * Supervisor's eventfd; a worker has none. So it keeps looking until it
 * takes the Cart, the peer is no longer blocked or its Cart is empty, or the
 * Supervisor gives it a Cart. Returns as free_spin does.
 *
 * Race-free: the probe skipped the event of a block only while our spinner
 * word named a Labor on a CPU; free_spin cleared the word (a seq_cst CAS)
 * before its last look, and the probe exchanges state = BLOCKED before it
 * reads the word, so every block it skipped for us is BLOCKED in that look
 * or after (Dekker), and every block after the clear sends its event. The
 * blocks left to us therefore all began before the clear, and each becomes
 * ours to take (lutf_cart_rebind: stuck >= grace_ns) by clear + grace_ns at
 * the latest: the loop is bounded by grace_ns (lutfd: 50 us) plus a slack
 * for preemption, past which the Supervisor's 10 ms tick is left to it
 * (only if the peer stayed blocked and we never ran, both ways a stall of
 * this worker alone).
 */
static bool blk_wait(struct labor_self *s, struct lutf_labor *me)
{
	struct lutf_labors *lb = s->lb;
	struct lutf_region *r = &lb->r;
	uint64_t until = lutf_now_ns() + r->cfg.grace_ns + BLK_WAIT_SLACK_NS;
	unsigned spins = 0;

	while (ld_acquire(&r->hdr->stop) != LUTF_STOP_EXIT && !ld_relaxed(&lb->local_stop)) {
		bool pending = false;

		/* Acquire pairs with lutf_cart_claim's release stores. */
		if (ld_acquire(&me->cart) != LUTF_NONE) {
			unpin_given(s, me);
			return true;
		}
		if (take_blocked(lb, s->idx, true, &pending)) {
			st_relaxed(&me->takes, me->takes + 1); /* single writer: stats */
			return true;
		}
		if (!pending)
			return false;
		if ((++spins & 63) == 0) {
			if (lutf_now_ns() > until)
				return false;
			sched_yield(); /* as free_spin: the peer or a submitter may need the CPU */
		}
		__builtin_ia32_pause();
	}
	return true;
}

/*
 * A FREE Labor (no Cart) spins up to spin_ns before parking, taking a blocked
 * peer's Cart if one turns up (take_blocked) or running a Cart the Supervisor
 * gives it. Returns true when there is something to do (a Cart, a stop), false
 * when the spin ran out: then park. Bounded, so an idle runtime costs no CPU.
 *
 * Kept out of labor_main (noinline): inlined, its body reshaped the owner's
 * spin on an empty Cart, the loop every sync call waits on, and cost
 * bench/dispatch (b) 12% (1,092 against 974 ns, 20 interleaved runs; 994
 * with this attribute). It runs only when a Labor has no Cart.
 */
static __attribute__((noinline)) bool free_spin(struct labor_self *s, struct lutf_labor *me)
{
	struct lutf_labors *lb = s->lb;
	struct lutf_region *r = &lb->r;
	uint64_t from;
	unsigned spins = 0;
	bool go_on = true, pending = false;
	uint32_t my_tid;
	int bell;

	/* Without a view (the polling mode, a worker of lutfd lent no block)
	 * there is nothing to take: park at once, as before the direct take. */
	if (!ld_relaxed(&lb->view_on))
		return false;
	from = lutf_now_ns();
	/* Release: our cart word (LUTF_NONE) before FREE; pairs with the
	 * Supervisor's acquire in find_free_labor. */
	st_release(&me->state, LUTF_LABOR_FREE);
	/* Named as the spinner: the probe sends no wake-up for a block of this
	 * runtime while the word names a Labor on a CPU (we take the Cart).
	 * seq_cst. Our own tid word (we published it). */
	my_tid = (uint32_t)ld_relaxed(&me->tid);
	__atomic_store_n(&lb->spinning, my_tid, __ATOMIC_SEQ_CST);
	while (ld_acquire(&r->hdr->stop) != LUTF_STOP_EXIT && !ld_relaxed(&lb->local_stop)) {
		/* Acquire pairs with lutf_cart_claim's release stores. */
		if (ld_acquire(&me->cart) != LUTF_NONE) {
			unpin_given(s, me); /* given by the Supervisor */
			goto out;
		}
		if (take_blocked(lb, s->idx, true, NULL)) {
			st_relaxed(&me->takes, me->takes + 1); /* single writer: stats */
			goto out;
		}
		if ((++spins & 63) == 0) {
			if (lutf_now_ns() - from > r->cfg.spin_ns) {
				go_on = false;
				goto out;
			}
			/* Yield now and then, as the owner's spin does. Without
			 * it, the spinner and an owner spinning on its empty Cart
			 * held both vCPUs, the submitter waited, a round of
			 * bench/handoff took ~2.5 ms instead of ~0.25, the spin
			 * ran out before the next block and the Supervisor did
			 * the hand-off (spinning case 3.5-33 us, 7 of 9 runs over
			 * 11, against 2.2-3.4 in 8 of 9 with the yield).
			 * A spinner that yields and is queued when a peer blocks
			 * still takes the Cart: the probe wakes nobody when the
			 * spinner is the task that CPU switches to next. */
			sched_yield();
		}
		__builtin_ia32_pause();
	}
out:
	/*
	 * Clear the word if it still names us (another spinner's name stays:
	 * its own exit clears it), with a full barrier, then the slots' states:
	 * the Dekker pair with the probe, which exchanges state = BLOCKED and
	 * then reads this word. Either it saw no spinner on a CPU and woke the
	 * Supervisor, or the look below sees the block: take it, or, if it is
	 * not ours to take yet (grace), ring the Supervisor's bell so that the
	 * block it was never told about is not left to its tick.
	 */
	/* The barrier is the exchange itself: a seq_cst read-modify-write (a
	 * locked cmpxchg, a full barrier on x86), and its acquire keeps the
	 * slot loads below after it. A failed exchange cleared nothing, so it
	 * needs none. (No atomic_thread_fence: TSan cannot model one.) */
	__atomic_compare_exchange_n(&lb->spinning, &my_tid, 0, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	if (!go_on && take_blocked(lb, s->idx, true, &pending)) {
		st_relaxed(&me->takes, me->takes + 1);
		return true;
	}
	if (go_on) /* busy now (or stopping): only look */
		take_blocked(lb, s->idx, false, &pending);
	if (!pending)
		return go_on;
	if (lb->blk) {
		/* A worker of lutfd has no bell of lutfd's Supervisor (a tenant
		 * could flood it). Given a Cart, the Supervisor was awake after
		 * the block that the probe skipped for us: its next sleep
		 * re-scans the slots for unreported blocks and finds it. Else
		 * keep looking until it is ours (blk_wait). */
		return go_on ? go_on : blk_wait(s, me);
	}
	/* Counted in view_users (seq_cst), so the Supervisor, which sets the
	 * bell to -1 and then waits for view_users to drain when the runtime
	 * leaves it, never has its eventfd written after that. */
	__atomic_add_fetch(&lb->view_users, 1, __ATOMIC_SEQ_CST);
	bell = __atomic_load_n(&lb->sup_bell, __ATOMIC_SEQ_CST);
	if (bell >= 0) {
		uint64_t one = 1;

		(void)!write(bell, &one, sizeof(one));
	}
	__atomic_sub_fetch(&lb->view_users, 1, __ATOMIC_RELEASE);
	return go_on;
}

/* True when this Labor has a reason not to sleep. */
static bool has_work(struct lutf_region *r, struct lutf_labor *me, uint32_t my_id, bool free,
		     bool fixed)
{
	uint32_t c;

	if (ld_relaxed(&r->hdr->stop) == LUTF_STOP_EXIT)
		return true;
	c = ld_relaxed(&me->cart);
	if (free)
		return c != LUTF_NONE ||
		       (!fixed && (uint32_t)(me - r->labors) >= ld_relaxed(&r->hdr->labor_req));
	if (c >= r->cfg.carts || ld_relaxed(&r->carts[c].owner) != my_id)
		return true;
	return lutf_ring_count(&r->cart_q[c]) != 0;
}

static void park(struct labor_self *s, struct lutf_labor *me, uint32_t my_id, bool free)
{
	struct lutf_region *r = &s->lb->r;
	uint32_t seq;

	st_relaxed(&me->state, free ? LUTF_LABOR_FREE : LUTF_LABOR_IDLE);
	/* Acquire pairs with the release increment in lutf_bell. */
	seq = ld_acquire(&me->bell);
	/* seq_cst, then the seq_cst re-check in has_work: pairs with the ring
	 * claim and the load of 'sleeping' in lutf_bell (see cart.c). */
	st_seqcst(&me->sleeping, 1);
	if (!has_work(r, me, my_id, free, s->lb->flags & LUTF_LABORS_FIXED) &&
	    !ld_relaxed(&s->lb->local_stop)) {
		st_relaxed(&me->parks, me->parks + 1);
		lutf_futex_wait(&me->bell, seq, r->shared, 0);
	}
	st_relaxed(&me->sleeping, 0);
	/* The Supervisor pinned us to its vCPU for this wake-up; undo it now
	 * that we run there. Acquire pairs with its release store. */
	if (ld_acquire(&me->pinned)) {
		st_relaxed(&me->pinned, 0);
		sched_setaffinity(0, sizeof(s->cpus), &s->cpus);
	}
}

static void *labor_main(void *arg)
{
	struct labor_self *s = arg;
	struct lutf_region *r = &s->lb->r;
	struct lutf_region_hdr *h = r->hdr;
	struct lutf_labor *me = &r->labors[s->idx];
	uint32_t my_id = s->idx + 1;
	uint64_t spin_from = 0;
	unsigned spins = 0;
	char name[32]; /* the kernel keeps the first 15 bytes */

	/* Held: not yet published (tid 0), so the Supervisor gives us no Cart.
	 * Acquire pairs with the release store in lutf_labors_release. */
	while (ld_acquire(&s->lb->held) && !ld_relaxed(&s->lb->local_stop))
		lutf_futex_wait(&s->lb->held, 1, false, 0);
	/* Named by itself (prctl on its own thread): naming another thread
	 * writes /proc, which a confined worker may not reach. */
	snprintf(name, sizeof(name), "lutf-labor-%u", s->idx % 10000);
	name[15] = 0;
	pthread_setname_np(pthread_self(), name);
	sched_getaffinity(0, sizeof(s->cpus), &s->cpus);
	st_relaxed(&me->tgid, (int32_t)getpid());
	/* Release: the Supervisor reads tid (acquire) and then tgid. */
	st_release(&me->tid, (int32_t)syscall(SYS_gettid));
	while (ld_acquire(&h->stop) != LUTF_STOP_EXIT && !ld_relaxed(&s->lb->local_stop)) {
		/* Acquire pairs with the Supervisor's release store of cart. */
		uint32_t c = ld_acquire(&me->cart);
		uint32_t idx;

		if (c != LUTF_NONE && (c & LUTF_CART_PENDING)) {
			/* Being bound: the binder is between its two CASes (it may
			 * share our CPU, so yield rather than spin). */
			sched_yield();
			continue;
		}
		if (c >= r->cfg.carts) {
			/* Acquire pairs with the Supervisor's release of labor_req. */
			if (!(s->lb->flags & LUTF_LABORS_FIXED) &&
			    s->idx >= ld_acquire(&h->labor_req) && s->idx >= r->cfg.labors)
				break; /* retired: the pool shrinks from the top */
			if (c != LUTF_NONE) {
				/* Not a Cart and not a claim: a corrupt word. */
				__atomic_compare_exchange_n(&me->cart, &c, LUTF_NONE, false,
							    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
				continue;
			}
			/* Only Labors the front counts on take Carts (the others
			 * are retiring, or parked by a fixed pool). */
			if (s->idx < ld_acquire(&h->labor_req) && free_spin(s, me))
				continue;
			park(s, me, my_id, true);
			continue;
		}
		if (ld_acquire(&r->carts[c].owner) != my_id) {
			/* Lost the Cart. Order: cart first, then FREE (release), so a
			 * Supervisor that reads FREE (acquire) also reads no Cart. */
			st_relaxed(&me->cart, LUTF_NONE);
			st_release(&me->state, LUTF_LABOR_FREE);
			spin_from = 0;
			continue;
		}
		/* Into me->brick: a crash never loses a taken Brick. */
		idx = lutf_ring_pop_into(r, &r->cart_q[c], &me->brick);
		if (idx != LUTF_NONE) {
			run_brick(s, me, idx);
			spin_from = 0;
			continue;
		}
		/* Empty: spin a bounded while (the next Brick of a busy caller
		 * arrives through memory, not the kernel), then park. */
		if (!spin_from) {
			spin_from = lutf_now_ns();
			spins = 0;
		} else if ((++spins & 63) == 0) {
			if (lutf_now_ns() - spin_from > r->cfg.spin_ns) {
				park(s, me, my_id, false);
				spin_from = 0;
				continue;
			}
			/* Give the CPU to a submitter that may share it (2 vCPUs). */
			sched_yield();
		}
		__builtin_ia32_pause();
	}
	free(s->scratch);
	s->scratch = NULL;
	st_relaxed(&me->tid, 0);
	st_relaxed(&me->cart, LUTF_NONE);
	st_release(&me->state, LUTF_LABOR_OFF);
	__atomic_sub_fetch(&h->labors_up, 1, __ATOMIC_RELEASE);
	/* Release pairs with the keeper's acquire before it joins. */
	st_release(&s->exited, 1);
	/* The keeper may be waiting for this retirement. */
	lutf_futex_wake(&h->labor_req, 1, r->shared);
	return NULL;
}

static int start_labor(struct lutf_labors *lb, uint32_t i)
{
	struct labor_self *selves = lb->selves;
	int err;

	memset(&selves[i], 0, sizeof(selves[i]));
	selves[i].lb = lb;
	selves[i].idx = i;
	__atomic_add_fetch(&lb->r.hdr->labors_up, 1, __ATOMIC_RELEASE);
	err = -pthread_create(&lb->threads[i], NULL, labor_main, &selves[i]);
	if (err) {
		__atomic_sub_fetch(&lb->r.hdr->labors_up, 1, __ATOMIC_RELEASE);
		return err;
	}
	lb->n_threads = i + 1;
	return 0;
}

static bool stopping(struct lutf_labors *lb)
{
	return ld_acquire(&lb->r.hdr->stop) == LUTF_STOP_EXIT || ld_relaxed(&lb->local_stop);
}

/* The keeper: reconcile the running Labors with labor_req. Retired Labors
 * are joined from the top down; new ones are started at the top. */
static void *keeper_main(void *arg)
{
	struct lutf_labors *lb = arg;
	struct lutf_region_hdr *h = lb->r.hdr;
	struct labor_self *selves = lb->selves;

	pthread_setname_np(pthread_self(), "lutf-keeper");
	while (!stopping(lb)) {
		/* Acquire pairs with the Supervisor's release store of labor_req. */
		uint32_t want = ld_acquire(&h->labor_req);

		if (want < lb->r.cfg.labors)
			want = lb->r.cfg.labors;
		if (want > lb->r.cfg.labors_max)
			want = lb->r.cfg.labors_max;
		while (lb->n_threads > lb->r.cfg.labors &&
		       ld_acquire(&selves[lb->n_threads - 1].exited)) {
			pthread_join(lb->threads[lb->n_threads - 1], NULL);
			lb->n_threads--;
		}
		while (lb->n_threads < want && start_labor(lb, lb->n_threads) == 0)
			;
		/* Bounded: a retiring Labor wakes us, but re-check now and then. */
		lutf_futex_wait(&h->labor_req, ld_relaxed(&h->labor_req), lb->r.shared,
				100000000ull);
	}
	return NULL;
}

int lutf_labors_start(void *mem, size_t size, const struct lutf_labor_host *host,
		      struct lutf_labors **out)
{
	struct lutf_labors *lb;
	struct labor_self *selves;
	uint32_t n;
	int err;

	if (!host || !host->resolve || !out)
		return -EINVAL;
	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	err = lutf_region_open(&lb->r, mem, size);
	if (err)
		goto err_free;
	lb->host = *host;
	lb->flags = host->flags;
	lb->held = (host->flags & LUTF_LABORS_HELD) ? 1 : 0;
	lb->sup_bell = -1;
	n = lb->r.cfg.labors_max;
	lb->threads = calloc(n, sizeof(*lb->threads));
	selves = calloc(n, sizeof(*selves));
	lb->lw_view = calloc(n, sizeof(*lb->lw_view)); /* none: no direct take */
	lb->selves = selves; /* must outlive the threads: freed by lutf_labors_wait */
	if (!lb->threads || !selves) {
		err = -ENOMEM;
		goto err_threads;
	}
	if (host->watch_block && host->watch_n) {
		/* Block mode (a worker of lutfd): the front lent a read-only view
		 * of its slots for this runtime; FREE Labors spin and take. */
		lb->blk_idx = malloc(n * sizeof(*lb->blk_idx));
		if (!lb->blk_idx) {
			err = -ENOMEM;
			goto err_threads;
		}
		for (uint32_t i = 0; i < n; i++)
			lb->blk_idx[i] = LUTF_NONE;
		lb->blk = host->watch_block;
		lb->blk_n = host->watch_n;
		lb->pid = (int32_t)getpid();
		lb->view_on = 1; /* before any Labor starts: no wake needed */
		/* Release, before the tids: the front reads it after a tid
		 * (acquire) and lends it to the probe as the spinner word. */
		st_release(&lb->r.hdr->spin_addr, (uint64_t)(uintptr_t)&lb->spinning);
	}
	/* The front registers each Labor's state word with labor_watch by its
	 * address in this process. */
	st_release(&lb->r.hdr->worker_base, (uint64_t)(uintptr_t)mem);
	if (!(lb->flags & LUTF_LABORS_FIXED))
		n = lb->r.cfg.labors;
	for (uint32_t i = 0; i < n; i++) {
		err = start_labor(lb, i);
		if (err)
			goto err_join;
	}
	if (!(lb->flags & LUTF_LABORS_FIXED)) {
		err = -pthread_create(&lb->keeper, NULL, keeper_main, lb);
		if (err)
			goto err_join;
		lb->keeper_started = true;
	}
	*out = lb;
	return 0;
err_join:
	lutf_labors_stop(lb);
	for (uint32_t i = 0; i < lb->n_threads; i++)
		pthread_join(lb->threads[i], NULL);
err_threads:
	free(selves);
	free(lb->threads);
	free(lb->lw_view);
	free(lb->blk_idx);
err_free:
	free(lb);
	return err;
}

void lutf_labors_release(struct lutf_labors *lb)
{
	/* Release pairs with the Labors' acquire load of held. */
	st_release(&lb->held, 0);
	lutf_futex_wake(&lb->held, 1 << 30, false);
}

void lutf_labors_stop(struct lutf_labors *lb)
{
	st_relaxed(&lb->local_stop, 1);
	/* A held Labor wakes and sees the stop (release: after local_stop). */
	st_release(&lb->held, 0);
	lutf_futex_wake(&lb->held, 1 << 30, false);
	for (uint32_t i = 0; i < lb->r.cfg.labors_max; i++) {
		struct lutf_labor *l = &lb->r.labors[i];

		/* Unconditional wake: stopping is rare and must not be missed. */
		__atomic_add_fetch(&l->bell, 1, __ATOMIC_RELEASE);
		lutf_futex_wake(&l->bell, 1, lb->r.shared);
	}
	lutf_futex_wake(&lb->r.hdr->labor_req, 1, lb->r.shared);
}

void lutf_labors_wait(struct lutf_labors *lb)
{
	if (!lb)
		return;
	if (lb->keeper_started)
		pthread_join(lb->keeper, NULL);
	for (uint32_t i = 0; i < lb->n_threads; i++)
		pthread_join(lb->threads[i], NULL);
	free(lb->selves);
	free(lb->threads);
	free(lb->lw_view);
	free(lb->blk_idx);
	free(lb);
}
