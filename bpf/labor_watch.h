/* SPDX-License-Identifier: MIT */
/*
 * labor_watch: layout shared by bpf/labor_watch.bpf.c and its loader
 * (userspace/labor_watch/). Fixed-width types, enums, #defines and fixed arrays
 * only: no pointers and no includes (the BPF side gets __u32/__u64 from
 * vmlinux.h, userspace from <linux/types.h>). Not installed. Userspace pins the
 * sizes with _Static_assert; change a layout here and both sides rebuild.
 */
#ifndef LUTF_BPF_LABOR_WATCH_H
#define LUTF_BPF_LABOR_WATCH_H

/* slot.cart when the Labor holds no Cart: the probe then does not report it. */
#define LW_NO_CART 0xffffffffU

/* Default and largest number of Labor slots (max_entries of labor_state/labor_tids). */
#define LW_DEFAULT_SLOTS 256U
#define LW_MAX_SLOTS 65536U

/*
 * Process filter: one bit per tgid bucket (tgid & (LW_TGID_BITS - 1)). The
 * loader sets a bucket's bit while any slot of a tgid in it is registered; the
 * probe tests it before any map lookup. Two processes may share a bucket: the
 * hash lookup after it is exact.
 */
#define LW_TGID_BITS 65536U
#define LW_TGID_WORDS (LW_TGID_BITS / 64U)

/* Default grace period: a block longer than this is a "long block". */
#define LW_DEFAULT_GRACE_NS 50000ULL

/* Ring buffer size in bytes (a power of two, a multiple of the page size). */
#define LW_RINGBUF_BYTES 65536U

enum labor_watch_state {
	/* Registered, but off CPU without a Cart (or not seen yet): not watched. */
	LW_STATE_IDLE = 0,
	/* On CPU (the last switch put it in). */
	LW_STATE_RUNNING = 1,
	/* Switched out voluntarily (!preempt && prev_state != 0) while holding a Cart. */
	LW_STATE_BLOCKED = 2,
	/* Switched out while runnable (preempted or yielded) while holding a Cart. */
	LW_STATE_PREEMPTED = 3,
};

/*
 * One Labor, one 64-byte cache line, in the mmapable array labor_state.
 * Writers: the loader writes tid, tgid and the zeroed counters before it puts
 * the tid in labor_tids, and then only cart. The probe writes everything else.
 * The probe's stores per slot come from one CPU at a time (a thread is
 * switched out before it can be switched in elsewhere).
 */
struct labor_watch_slot {
	__u32 tid;	     /* thread id (task pid); 0 while the slot is free */
	__u32 tgid;	     /* its process (task tgid) */
	__u32 cart;	     /* Cart index, or LW_NO_CART; written by userspace */
	__u32 state;	     /* enum labor_watch_state; written last on every change */
	__u64 block_seq;     /* +1 on every watched block: names one block episode */
	__u64 last_block_ns; /* bpf_ktime_get_ns() of the last watched block */
	__u64 last_wake_ns;  /* ... of the last switch-in after a watched switch-out */
	__u64 last_off_ns;   /* ... of the last watched switch-out (block or preemption) */
	__u64 offcpu_ns;     /* total time off CPU after watched switch-outs */
	__u32 blocks;	     /* watched blocks (wraps at 2^32; block_seq does not) */
	__u32 preemptions;   /* watched runnable switch-outs (wraps at 2^32) */
};

/*
 * Value of labor_tids (key: tid) and of labor_task (key: the task; tp_btf). busy_uaddr, when not 0,
 * is the address in the Labor's own process of a u32 that equals busy_value while the Labor is
 * inside a Brick. The probe reads it (bpf_probe_read_user: at sched_switch the
 * current task is the Labor switching out) and reports a block only while it
 * matches, so a Labor parking between Bricks is idle, not blocked.
 *
 * The wake hints, read the same way and only for a real block while the
 * Supervisor sleeps: they let the probe skip the ring buffer's wake-up (an
 * irq_work self-IPI, the dearest part of the probe) when nobody needs it.
 * spin_uaddr (0: none): a u32 naming (by tid) a FREE Labor of this Labor's
 * runtime that is spinning, 0 for none; when that Labor is a registered
 * Labor of the same process and its slot reads RUNNING (on a CPU now), it
 * takes the Cart itself.
 * work_uaddr (0: none): the enq word of Cart 0's ring; Cart c's enq is at
 * work_uaddr + c * work_stride and its deq work_deq_off bytes further; c
 * below work_carts only. enq == deq = an empty Cart: nothing to hand off
 * (a later submit nudges the Supervisor itself). These words are the Labor
 * process's own: they can only delay that process's own hand-offs (a failed
 * read counts as "wake").
 *
 * cart_uaddr (0: none, the slot's own cart word is used): the address, in the
 * Labor's own process, of two adjacent u32s, the Labor's state (compared with
 * busy_value, as busy_uaddr) then the Cart it holds. Set for a runtime whose
 * Labors take Carts themselves without writing the slot (a worker of lutfd
 * with a read-only view): the probe then takes the Cart from these words, one
 * 8-byte read, a Cart at or above work_carts (or a failed read) meaning "no
 * Cart". The words are that process's own: a lie misfiles only its own
 * blocks; the Supervisor decides every move on the owner word it checks.
 */
struct labor_watch_tid {
	__u32 slot;
	__u32 busy_value;
	__u64 busy_uaddr;
	__u64 spin_uaddr;
	__u64 work_uaddr;
	__u32 work_stride;
	__u32 work_carts;
	__u32 work_deq_off;
	__u32 pad;
	__u64 cart_uaddr;
};

/* Ring buffer record: a watched Labor blocked while the Supervisor slept. */
struct labor_watch_event {
	__u32 slot;
	__u32 cart;
	__u64 block_seq;
	__u64 time_ns; /* = slot.last_block_ns of that block */
};

/*
 * Per-CPU counters (labor_counters, one entry). The *_drop and stale fields
 * should stay 0; a non-zero one is a silent failure made visible.
 */
struct labor_watch_counters {
	__u64 ringbuf_drop; /* event not sent: ring buffer full */
	__u64 hash_miss;    /* tgid filter passed, not a Labor (task storage or tid hash miss) */
	__u64 slot_range;   /* labor_tids gave a slot outside labor_state */
	__u64 slot_stale;   /* slot.tid/tgid != the task's (slot freed or reused under us) */
	__u64 events;	    /* events sent */
	__u64 long_blocks;  /* wakes after a block longer than the grace period */
	__u64 skip_spin;    /* blocks with the Supervisor asleep, no event: a Labor was spinning */
	__u64 skip_empty;   /* blocks with the Supervisor asleep, no event: the Cart was empty */
};

#endif /* LUTF_BPF_LABOR_WATCH_H */
