/* SPDX-License-Identifier: MIT */
/*
 * labor_watch loader (private to lutf, prefix lutf_lw_): loads
 * bpf/labor_watch.bpf.c on sched_switch, pins its maps, registers Labor threads
 * and exposes their per-Labor state as an mmapped array, mapped read-write: the
 * loader's one write through it is a slot's cart (lutf_lw_set_cart); the rest
 * the Supervisor only reads.
 *
 * Threads: lutf_lw_register/unregister/set_grace may be called from any thread
 * (an internal mutex). lutf_lw_set_cart, lutf_lw_slot and lutf_lw_drops are
 * lock-free. lutf_lw_sleep, lutf_lw_consume and the on_event callback belong to
 * one thread at a time (the Supervisor's).
 *
 * Lookup: the tp_btf program finds a Labor in task-local storage (labor_task,
 * filled through a pidfd of the verified thread), the raw_tp twin in the tid
 * hash (labor_tids, kept in both modes for bpftool). raw_tp is also used where
 * thread pidfds (Linux 6.9) are missing.
 *
 * Environment: LUTF_LABOR_WATCH=off makes lutf_lw_open fail with -EPERM without
 * trying; LUTF_LABOR_WATCH_RAW_TP=1 forces the raw_tp attach;
 * LUTF_LABOR_WATCH_DEBUG=1 lets libbpf's own messages through to stderr;
 * LUTF_LABOR_WATCH_LEND=off reserves no block (lutf_lw_block_reserve), so
 * lutfd's workers get no view and run as before the direct take reached them.
 */
#ifndef LUTF_LABOR_WATCH_LOADER_H
#define LUTF_LABOR_WATCH_LOADER_H

#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "bpf/labor_watch.h" /* struct labor_watch_slot, LW_NO_CART, ... */

#define LUTF_LW_DEFAULT_PIN_DIR "/sys/fs/bpf/lutf"

/* Slots of labor_state in one page (64-byte slots, 4 KiB pages): a lent block
 * is whole pages, so the worker maps exactly its own slots. */
#define LW_SLOTS_PER_PAGE 64U

struct lutf_lw;

struct lutf_lw_opts {
	const char *pin_dir; /* NULL = LUTF_LW_DEFAULT_PIN_DIR; "" = do not pin */
	uint32_t max_labors; /* slots; 0 = LW_DEFAULT_SLOTS; at most LW_MAX_SLOTS */
	uint64_t grace_ns;   /* 0 = LW_DEFAULT_GRACE_NS */
	int force_raw_tp;    /* attach raw_tp even where tp_btf works (also env) */
	/* Called from lutf_lw_sleep/lutf_lw_consume for each ring buffer event, on
	 * the caller's thread. May be NULL. */
	void (*on_event)(void *ctx, const struct labor_watch_event *ev);
	void *event_ctx;
};

/* Counters summed over CPUs; see struct labor_watch_counters. */
struct lutf_lw_drops {
	uint64_t ringbuf_drop;
	uint64_t hash_miss;
	uint64_t slot_range;
	uint64_t slot_stale;
	uint64_t events;
	uint64_t long_blocks;
	uint64_t skip_spin;  /* blocks that woke nobody: a Labor of the runtime was spinning */
	uint64_t skip_empty; /* blocks that woke nobody: the Cart was empty */
};

/*
 * Load, attach and (unless pin_dir is "") pin labor_watch. o may be NULL for
 * defaults. Returns 0 and *out, or -errno; on failure it has printed exactly
 * one line to stderr, "labor_watch: cannot load BPF (<why>): falling back to
 * polling", and the caller falls back to polling. With LUTF_LABOR_WATCH=off it
 * returns -EPERM without trying. Failing to pin is not a failure: it prints a
 * warning line and runs unpinned.
 */
int lutf_lw_open(const struct lutf_lw_opts *o, struct lutf_lw **out);

/* Detach, unpin, remove the pin folder if empty, free. NULL is a no-op. */
void lutf_lw_close(struct lutf_lw *lw);

/*
 * Watch thread tid of process tgid (any process). The slot starts with no Cart
 * (LW_NO_CART) and state IDLE. Clear the Cart or unregister before the thread
 * exits: its last switch-out (TASK_DEAD) would otherwise count as a block. Returns 0 and *slot, or
 * -EINVAL (tid/tgid <= 0), -EEXIST (tid already registered), -ENOSPC (all slots used), or -errno of
 * the map update.
 */
int lutf_lw_register(struct lutf_lw *lw, pid_t tgid, pid_t tid, uint32_t *slot);

/*
 * As lutf_lw_register, with a busy word: busy_uaddr is the address, in the
 * Labor's own process, of a u32 that equals busy_value while the Labor runs a
 * Brick. The probe then reports a block only while it matches (a Labor that
 * parks between Bricks stays IDLE and wakes nobody). busy_uaddr 0: none.
 */
int lutf_lw_register_busy(struct lutf_lw *lw, pid_t tgid, pid_t tid, uint64_t busy_uaddr,
			  uint32_t busy_value, uint32_t *slot);

/*
 * The words the probe reads in the Labor's own process (addresses there, 0 =
 * none; see struct labor_watch_tid in bpf/labor_watch.h). busy: as
 * lutf_lw_register_busy. spin: a u32 naming by tid a FREE Labor of the
 * Labor's runtime that spins (and takes blocked peers' Carts), 0 for none:
 * while it names a registered Labor of the same process whose slot reads
 * RUNNING, a block wakes nobody. work: the enq word of Cart 0's ring, the stride
 * between Carts, the offset from enq to deq and the number of Carts: a block
 * with its Cart empty wakes nobody. Every word is taken as a hint that can
 * only delay that process's own hand-offs; a failed read means "wake".
 */
struct lutf_lw_hints {
	uint64_t busy_uaddr;
	uint32_t busy_value;
	uint64_t spin_uaddr;
	uint64_t work_uaddr;
	uint32_t work_stride, work_carts, work_deq_off;
	/* The Labor's own state and cart words (two adjacent u32s; 0: none, the
	 * slot's cart is used): for Labors that take Carts with a read-only
	 * view. Needs the work hint's Cart count (the bound); dropped without. */
	uint64_t cart_uaddr;
};

/* As lutf_lw_register, with hints (h not NULL). A work hint whose deq word
 * would not fit in its stride is dropped. Returns 0 and *slot, or -errno as
 * lutf_lw_register. */
int lutf_lw_register_hints(struct lutf_lw *lw, pid_t tgid, pid_t tid, const struct lutf_lw_hints *h,
			   uint32_t *slot);

/*
 * A block of slots for one runtime whose Labors run in another process (a
 * worker of lutfd), lent to that process read-only (lutf_lw_state_fd_lend):
 * whole pages of labor_state (LW_SLOTS_PER_PAGE slots each), enough for
 * want slots, that the global allocator never hands out. Returns 0 with
 * *first and *count (a multiple of the page's slots), -EINVAL (want 0),
 * -ENOSPC (no run of free pages: fragmentation or a small table), or -EPERM
 * with LUTF_LABOR_WATCH_LEND=off (the switch for an A/B run).
 */
int lutf_lw_block_reserve(struct lutf_lw *lw, uint32_t want, uint32_t *first, uint32_t *count);

/* Give a reserved block back; its slots must be unregistered first (those
 * still registered stay so, as global slots). */
void lutf_lw_block_release(struct lutf_lw *lw, uint32_t first, uint32_t count);

/* As lutf_lw_register_hints, inside the reserved block [first, first+count)
 * only. -ENOSPC when the block is full, -EINVAL when it is not reserved. */
int lutf_lw_register_in(struct lutf_lw *lw, uint32_t first, uint32_t count, pid_t tgid, pid_t tid,
			const struct lutf_lw_hints *h, uint32_t *slot);

/*
 * A new fd of labor_state (O_CLOEXEC; the caller owns it) to lend to a
 * worker, which maps its block PROT_READ and closes the fd before any tenant
 * code runs. Not a BPF_F_RDONLY fd: on Linux 6.18 such an fd cannot be
 * mapped at all (do_mmap drops VM_SHARED for a read-only file and
 * bpf_map_mmap refuses the mapping: EINVAL). A PROT_READ mapping of this fd
 * loses VM_MAYWRITE (bpf_map_mmap), so mprotect cannot make it writable and
 * a write through /proc/<pid>/mem fails. Returns the fd or -errno.
 */
int lutf_lw_state_fd_lend(struct lutf_lw *lw);

/* Stop watching the slot's thread. Returns 0, -EINVAL (slot out of range) or
 * -ENOENT (slot not registered). Freed slots are reused last (round-robin). */
int lutf_lw_unregister(struct lutf_lw *lw, uint32_t slot);

/* Publish the Cart the slot's Labor holds (LW_NO_CART: none; the probe then
 * ignores its switches). A release store; no syscall. Out-of-range: ignored. */
void lutf_lw_set_cart(struct lutf_lw *lw, uint32_t slot, uint32_t cart);

/*
 * The slot in the mmapped array, or NULL when out of range. Read fields with
 * __atomic_load_n: state with __ATOMIC_ACQUIRE first, then the rest. If state
 * is BLOCKED, block_seq and last_block_ns are those of this block or of a later
 * one (the Labor woke and blocked again between the loads); compare block_seq
 * across two looks to be sure it is the same block episode.
 */
const struct labor_watch_slot *lutf_lw_slot(struct lutf_lw *lw, uint32_t slot);

/* Snapshot a slot (state first, acquire). Returns 0, or -EINVAL out of range. */
int lutf_lw_read(struct lutf_lw *lw, uint32_t slot, struct labor_watch_slot *out);

/* Change the grace period while running. Returns 0, or -EINVAL for 0. */
int lutf_lw_set_grace(struct lutf_lw *lw, uint64_t ns);

/*
 * Sleep until a watched Labor blocks: set supervisor_sleeping, re-scan the
 * slots for a block not reported yet (a block that raced the flag), and if
 * there is none wait on the ring buffer up to timeout_ms (-1: no bound; the
 * Supervisor should always pass one). Clears supervisor_sleeping before it
 * returns. Returns the number of new blocks noticed (events consumed plus
 * re-scan finds; 0 on timeout), or -errno (-EINTR on a signal).
 */
int lutf_lw_sleep(struct lutf_lw *lw, int timeout_ms);

/*
 * As lutf_lw_sleep, but also wakes when extra_fd (e.g. an eventfd; -1 for
 * none) becomes readable (the caller drains it), and the timeout is in ns
 * (-1: none). Returns the number of
 * new blocks noticed (0 on timeout or an extra_fd wake), or -errno.
 */
int lutf_lw_sleep_fd(struct lutf_lw *lw, int extra_fd, int64_t timeout_ns);

/*
 * For a thread that waits on lutf_lw_ring_fd() itself (epoll): set (1) or
 * clear (0) supervisor_sleeping. Setting is seq_cst; re-scan the slots after
 * setting and before waiting, or a block that raced it is lost.
 */
void lutf_lw_set_sleeping(struct lutf_lw *lw, int on);

/* Consume ring buffer events without waiting. Returns how many, or -errno. */
int lutf_lw_consume(struct lutf_lw *lw);

/* Epoll-able fd of the ring buffer (readable when events are pending).
 * Returns the fd (owned by lw), or -EBADF. */
int lutf_lw_ring_fd(struct lutf_lw *lw);

/* "tp_btf" or "raw_tp": the attach kind in use. */
const char *lutf_lw_attach_kind(struct lutf_lw *lw);

/* The pin folder in use, or "" when running unpinned. */
const char *lutf_lw_pin_dir(struct lutf_lw *lw);

/* Sum the per-CPU counters into *out. Returns 0 or -errno. */
int lutf_lw_drops(struct lutf_lw *lw, struct lutf_lw_drops *out);

/* The attached program's cumulative run time and run count from
 * bpf_obj_get_info_by_fd; both stay 0 unless kernel.bpf_stats_enabled=1 (or a
 * BPF_ENABLE_STATS fd is held). Returns 0 or -errno. */
int lutf_lw_prog_stats(struct lutf_lw *lw, uint64_t *run_ns, uint64_t *run_cnt);

/* Kernel map ids of labor_state and the program id, for tests and lutfctl
 * status. Returns 0 or -errno. */
int lutf_lw_ids(struct lutf_lw *lw, uint32_t *state_map_id, uint32_t *prog_id);

#endif /* LUTF_LABOR_WATCH_LOADER_H */
