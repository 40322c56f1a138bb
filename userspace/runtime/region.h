/* SPDX-License-Identifier: MIT */
/*
 * The region: one block of memory holding every Cart, Labor block, function
 * slot, Brick slot, ring and the payload arena, linked by offsets from the
 * region base, never by pointers, so two processes may map it at different
 * addresses. Private to userspace/runtime; not installed.
 */
#ifndef LUTF_RUNTIME_REGION_H
#define LUTF_RUNTIME_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host.h"

#define LUTF_REGION_MAGIC 0x314745524654c55ULL /* "ULTFREG1" little-endian-ish tag */
#define LUTF_REGION_VERSION 1u
#define LUTF_CACHELINE 64
#define LUTF_NONE 0xffffffffu /* "no index" in any u32 index word */

#define LUTF_BRICK_INLINE 120	/* input bytes (with metadata) stored in the Brick itself */
#define LUTF_ARENA_CLASSES 10	/* 256 B, 1 KiB, ... by powers of four, last = max_payload */
#define LUTF_ARENA_MIN_BLOCKS 4 /* every class has at least this many blocks */

/* Shorthand for the orderings; every use says what it pairs with. */
#define ld_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ld_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define st_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define st_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ld_seqcst(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define st_seqcst(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

/* A bounded MPMC ring of u32 indices (Vyukov): cells carry a sequence number,
 * stored minus the cell's index so that all-zero memory is an empty ring. */
struct lutf_cell {
	uint64_t seq;
	uint32_t val;
	uint32_t pad;
};

struct lutf_ring {
	_Alignas(LUTF_CACHELINE) uint64_t enq;	     /* next position to fill */
	_Alignas(LUTF_CACHELINE) uint64_t deq;	     /* next position to take */
	_Alignas(LUTF_CACHELINE) uint64_t cells_off; /* offset of mask+1 cells */
	uint32_t mask;
	uint32_t pad;
};

/* Labor states, published by the Labor itself (relaxed: advisory for stats and
 * for the Supervisor's choice of a migration target, which re-checks). */
enum lutf_labor_state {
	LUTF_LABOR_OFF = 0,	/* thread not started */
	LUTF_LABOR_FREE = 1,	/* no Cart, parked or about to park */
	LUTF_LABOR_IDLE = 2,	/* holds a Cart that is empty: spinning or parked */
	LUTF_LABOR_RUNNING = 3, /* inside a Brick */
};

struct lutf_labor {
	_Alignas(LUTF_CACHELINE) uint32_t state; /* enum lutf_labor_state */
	uint32_t cart;	   /* bound Cart or LUTF_NONE; see labor.c for who writes it */
	uint32_t bell;	   /* futex word: bumped by whoever wakes this Labor */
	uint32_t sleeping; /* 1 while in (or entering) futex_wait on bell */
	uint32_t brick;	   /* Brick being run, or LUTF_NONE */
	uint32_t cur_fn;   /* function slot being run, or LUTF_NONE (Dekker with delete) */
	int32_t tid;	   /* published by the Labor at start */
	int32_t tgid;
	uint64_t started; /* Bricks started, ever: the Supervisor's progress probe */
	uint64_t parks;	  /* futex sleeps, ever */
	uint32_t pinned;  /* 1: the Supervisor pinned this Labor to a CPU for a hand-off */
	uint32_t takes;	  /* Carts it took itself from a blocked peer (labor.c), stats */
	uint64_t pad1;
};

_Static_assert(sizeof(struct lutf_labor) == LUTF_CACHELINE, "one cache line per Labor");

struct lutf_cart {
	struct lutf_ring ring;
	_Alignas(LUTF_CACHELINE) uint32_t owner; /* Labor index + 1, 0 = none; lutf_cart_claim */
	uint32_t pad;
	uint64_t popped; /* Bricks taken from this Cart, ever (relaxed, stats) */
};

enum lutf_fn_state {
	LUTF_FN_FREE = 0,
	LUTF_FN_ACTIVE = 1,
	LUTF_FN_PAUSED = 2,
	LUTF_FN_DELETED = 3, /* draining: no new Bricks, slot not reusable yet */
	LUTF_FN_RELEASING =
	    4, /* resumed; held Bricks still going out: new ones queue behind them */
};

struct lutf_fn_slot {
	_Alignas(LUTF_CACHELINE) uint32_t state; /* enum lutf_fn_state, seq_cst (see labor.c) */
	uint32_t gen;				 /* bumped when the slot is freed */
	uint32_t timeout_ms;
	uint32_t pad;
	char name[LUTF_NAME_MAX + 1];
};

enum lutf_brick_state {
	LUTF_BRICK_FREE = 0,
	LUTF_BRICK_QUEUED = 1,	/* on a Cart ring, in a hold list or the held ring */
	LUTF_BRICK_RUNNING = 2, /* a Labor is inside it */
	LUTF_BRICK_DONE = 3,	/* completed by whoever won the CAS to here */
};

/* The kind of completion a Brick's submitter waits for. */
#define LUTF_CQ_SYNC 0	/* futex on brick->done */
#define LUTF_CQ_ASYNC 1 /* pushed onto the region's completion ring */

struct lutf_brick {
	uint32_t state;	 /* enum lutf_brick_state; CAS decides who completes */
	uint32_t refs;	 /* owners: the submitter's reaper and the queue/Labor side */
	uint32_t done;	 /* sync: 0 pending, 1 done, 2 waiter asleep (futex) */
	uint32_t next;	 /* pool free-list link */
	uint32_t fn;	 /* function slot */
	uint32_t fn_gen; /* slot generation at submit */
	uint32_t cq;	 /* LUTF_CQ_* */
	uint32_t status; /* enum lutf_status, written before done/CQ publish */
	uint32_t detail;
	uint32_t in_len;  /* input data bytes */
	uint32_t in_meta; /* metadata bytes before the data */
	uint32_t out_len; /* output bytes (or error message bytes) */
	uint32_t out_ct;  /* content-type bytes before the output */
	uint32_t pad;
	uint64_t in_off;  /* arena offset of input, 0 = inline */
	uint64_t out_off; /* arena offset of output, 0 = none */
	uint64_t deadline_ns;
	uint64_t request_id;
	uint64_t user_data;
	uint8_t inline_in[LUTF_BRICK_INLINE];
};

struct lutf_arena_class {
	uint64_t off;	    /* offset of the first block */
	uint64_t links_off; /* free-list links, one u32 per block, outside the blocks:
			     * a popper's racy read of a link never touches payload */
	uint32_t size;	    /* block bytes */
	uint32_t count;	    /* blocks */
	_Alignas(LUTF_CACHELINE) uint64_t head; /* free stack: index | tag << 32 */
	uint32_t bump;				/* blocks never used start here */
	uint32_t pad;
};

struct lutf_region_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t flags; /* LUTF_REGION_SHARED */
	uint64_t size;
	struct lutf_config cfg;
	uint64_t off_carts, off_labors, off_fns, off_bricks, off_cells, off_arena, end;
	struct lutf_ring cq;   /* completions of async Bricks (capacity >= bricks) */
	struct lutf_ring held; /* Bricks a Labor found paused, for the Supervisor */
	struct lutf_arena_class classes[LUTF_ARENA_CLASSES];
	uint32_t n_classes;
	_Alignas(LUTF_CACHELINE) uint64_t pool_head; /* Brick free stack: index | tag << 32 */
	uint32_t pool_bump;
	_Alignas(LUTF_CACHELINE) uint32_t stop; /* front sets 1: Labors exit */
	uint32_t labor_req;			/* request word: Labors the front wants running */
	uint64_t worker_base; /* where the Labors' process maps this region (for the probe) */
	uint32_t labors_up;   /* Labors the worker has started */
	/* Where the Labors' process keeps its spinner word (the direct take's
	 * wake hint, labor.c), 0 = none. The worker's word: the probe reads it
	 * only in that process's own memory. */
	uint64_t spin_addr;
	_Alignas(LUTF_CACHELINE) uint32_t cq_bell; /* reaper doorbell (futex) */
	uint32_t cq_sleeping;
	uint32_t cq_rung; /* a poster rang since the last arm (cart.c, front_reap.c) */
};

#define LUTF_CARTS_MAX 256 /* config_check's bound on carts */

/*
 * A ring as one side sees it: the counters and cells live in the region, the
 * mask and the cells' address are private copies made at open from the layout
 * this side derived itself. No ring operation reads mask or cells_off from
 * shared memory.
 */
struct lutf_ringv {
	struct lutf_ring *q;	 /* shared: enq, deq (words only) */
	struct lutf_cell *cells; /* shared cells; mask + 1 of them */
	uint64_t mask;		 /* private */
};

/* An arena size class as one side sees it (private copy; head and bump are
 * shared words, every index taken from them is checked against count). */
struct lutf_classv {
	struct lutf_arena_class *c; /* shared: head, bump (words only) */
	uint32_t *links;	    /* shared: count link words */
	uint64_t off;		    /* region offset of block 0 */
	uint32_t size, count;
};

/*
 * One side's view of a region, built once by lutf_region_open from a layout
 * recomputed from the recorded config, and never refreshed from shared memory:
 * every count, offset, mask and class below is private. The pointers point
 * into the region; what they point at is words the other side may write.
 * Both sides use this view; the front (lutfd) additionally treats every word
 * behind these pointers as hostile (front.h).
 */
struct lutf_region {
	uint8_t *base;
	size_t size;
	struct lutf_region_hdr *hdr; /* shared: words only, never layout */
	struct lutf_config cfg;	     /* private copy, checked at open */
	struct lutf_cart *carts;
	struct lutf_labor *labors;
	struct lutf_fn_slot *fns;
	struct lutf_brick *bricks;
	struct lutf_ringv cart_q[LUTF_CARTS_MAX]; /* cfg.carts of them */
	struct lutf_ringv cq, held;
	struct lutf_classv cls[LUTF_ARENA_CLASSES];
	uint32_t n_classes;
	bool shared; /* futexes across processes */
	/* Checks that failed on this view (enum lutf_fault_check), private:
	 * relaxed counters, last = the most recent check (relaxed). */
	uint64_t faults[LUTF_FAULT__COUNT];
	uint32_t last_fault;
};

/* Validate a formatted region and fill *r with a private view. 0 or -EINVAL. */
int lutf_region_open(struct lutf_region *r, void *mem, size_t size);

/* The header's layout words still say what r was built from. */
bool lutf_region_layout_intact(const struct lutf_region *r);

/* Count a failed check on r (any thread). */
void lutf_region_fault(struct lutf_region *r, unsigned check);

static inline void *lutf_region_at(const struct lutf_region *r, uint64_t off)
{
	return r->base + off;
}

static inline uint32_t lutf_brick_index(const struct lutf_region *r, const struct lutf_brick *b)
{
	return (uint32_t)(b - r->bricks);
}

/* ---- rings (ring.c) ---- */
/* Every loop in these is bounded (LUTF_RING_BUDGET tries): the ring may be
 * written by the other process. Spending the budget counts a fault on r. */
#define LUTF_RING_BUDGET (1u << 16)
void lutf_ring_init(struct lutf_region *r, struct lutf_ring *q, uint64_t cells_off, uint32_t cap);
/* 0, -EAGAIN when full, -ELOOP when the budget ran out. Release: the value
 * and everything before is visible to the taker. */
int lutf_ring_push(struct lutf_region *r, const struct lutf_ringv *v, uint32_t val);
/* 0 and *val, -EAGAIN when empty, -ELOOP when the budget ran out. Acquire,
 * pairs with push. When dst is not NULL the value is stored there before the
 * cell is released (for crash repair). */
int lutf_ring_take(struct lutf_region *r, const struct lutf_ringv *v, uint32_t *dst, uint32_t *val);
/* The value, or LUTF_NONE when empty (or out of budget). */
uint32_t lutf_ring_pop(struct lutf_region *r, const struct lutf_ringv *v);
/* As lutf_ring_pop, and stores the value into *dst before releasing the cell. */
uint32_t lutf_ring_pop_into(struct lutf_region *r, const struct lutf_ringv *v, uint32_t *dst);
/* The cell for pos holds a published value (used by read-only scans). */
static inline bool lutf_cell_filled(const struct lutf_cell *c, uint64_t pos, uint64_t mask)
{
	/* Acquire pairs with the release of seq in lutf_ring_push. */
	return __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) + (pos & mask) == pos + 1;
}

/* The entry at the head is published (a pop would succeed now). */
bool lutf_ring_ready(const struct lutf_ringv *v);

/* Approximate number of entries (never negative, at most the capacity). */
uint32_t lutf_ring_count(const struct lutf_ringv *v);

/* ---- futex (futex.c) ---- */
int lutf_futex_wait(uint32_t *word, uint32_t val, bool shared, uint64_t timeout_ns);
void lutf_futex_wake(uint32_t *word, int n, bool shared);

/* ---- Brick pool and payload arena (pool.c) ---- */
struct lutf_brick *lutf_brick_take(struct lutf_region *r);
void lutf_brick_put(struct lutf_region *r, struct lutf_brick *b);
/* Drop one reference; the last one frees payload blocks and the Brick. */
void lutf_brick_unref(struct lutf_region *r, struct lutf_brick *b);
/* An arena block of at least len bytes: its offset, or 0 when none is free or len too big. */
uint64_t lutf_arena_alloc(struct lutf_region *r, size_t len);
void lutf_arena_free(struct lutf_region *r, uint64_t off);
/* Capacity of the block at off (0 for an offset not in the arena). */
size_t lutf_arena_block_size(const struct lutf_region *r, uint64_t off);

/* Monotonic clock in ns. */
uint64_t lutf_now_ns(void);

#endif /* LUTF_RUNTIME_REGION_H */
