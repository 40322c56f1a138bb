// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
/*
 * labor_watch: on every sched_switch, tell the Supervisor which Labors holding a
 * Cart blocked in the kernel, through an mmapable per-Labor array it reads
 * without syscalls. Invariant: a thread that is not a registered Labor costs one
 * bit test per side of the switch and touches no map; a Labor without a Cart is
 * never reported blocked.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "labor_watch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define LW_READ_ONCE(x) (*(const volatile typeof(x) *)&(x))
#define LW_WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

/*
 * Globals, all in .data so that one mmapable map (the skeleton's skel->data,
 * pinned as labor_globals) holds them and the Supervisor can change them while
 * the program runs. Nothing here is const: .rodata is frozen at load.
 */

/* Grace period (ns). Written by lutf_lw_set_grace (relaxed store); a stale value
 * only misfiles one long_blocks count. */
__u64 lw_grace_ns SEC(".data") = LW_DEFAULT_GRACE_NS;

/*
 * 1 while the Supervisor is (about to be) asleep on labor_events. Race: the
 * Supervisor stores 1 (seq_cst), re-scans the slots, then waits; the probe stores
 * state = BLOCKED with an atomic exchange (a full barrier), then loads this
 * word. Store-then-load on both sides with a full barrier between, so at least
 * one of them sees the other: either the re-scan finds the block or the probe
 * sends an event. Pairs with lw_set_sleeping() in the loader.
 */
__u32 lw_supervisor_sleeping SEC(".data") = 0;

/* Process filter, see LW_TGID_BITS. Words are written by the loader (release
 * store, after the tid is in labor_tids) and read here relaxed. */
__u64 lw_tgid_bits[LW_TGID_WORDS] SEC(".data") = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, LW_DEFAULT_SLOTS); /* the loader sets max_labors */
	__type(key, __u32);
	__type(value, struct labor_watch_slot);
} labor_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LW_DEFAULT_SLOTS); /* the loader sets max_labors */
	__type(key, __u32);		       /* tid */
	__type(value, struct labor_watch_tid); /* slot in labor_state, busy word */
} labor_tids SEC(".maps");

/*
 * The same values, keyed by the task itself (BPF task-local storage): the
 * tp_btf program's lookup, one pointer chase from task->bpf_storage instead of
 * a hash of the tid. The loader fills it through a pidfd of each verified
 * Labor thread; the kernel frees an entry with its task. The raw_tp twin has
 * no trusted task pointer and keeps using labor_tids.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct labor_watch_tid);
} labor_task SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, LW_RINGBUF_BYTES);
} labor_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct labor_watch_counters);
} labor_counters SEC(".maps");

/* Per-CPU, and the tracepoint runs with preemption off: a plain increment. */
#define LW_COUNT(field)                                                                            \
	do {                                                                                       \
		__u32 zero_ = 0;                                                                   \
		struct labor_watch_counters *c_ = bpf_map_lookup_elem(&labor_counters, &zero_);    \
		if (c_)                                                                            \
			c_->field++;                                                               \
	} while (0)

static __always_inline bool lw_tgid_watched(__u32 tgid)
{
	__u32 b = tgid & (LW_TGID_BITS - 1);

	/* Relaxed; pairs with the loader's release store in lw_filter_update(). A
	 * stale 0 misses the switches of the registration instant only. */
	return (LW_READ_ONCE(lw_tgid_bits[b / 64]) >> (b % 64)) & 1;
}

/* The slot of Labor tid of process tgid (task, when the caller holds a trusted
 * pointer to it: tp_btf), or NULL (counted) when it is not one. */
static __always_inline struct labor_watch_slot *lw_slot_of(struct task_struct *task, __u32 tid,
							   __u32 tgid, __u32 *idx_out,
							   struct labor_watch_tid *info)
{
	struct labor_watch_slot *s;
	struct labor_watch_tid *t;
	__u32 i;

	if (task)
		t = bpf_task_storage_get(&labor_task, task, 0, 0);
	else
		t = bpf_map_lookup_elem(&labor_tids, &tid);
	if (!t) {
		LW_COUNT(hash_miss);
		return NULL;
	}
	i = t->slot;
	if (info)
		*info = *t;
	s = bpf_map_lookup_elem(&labor_state, &i);
	if (!s) {
		LW_COUNT(slot_range);
		return NULL;
	}
	/* The loader writes tid before the insert and clears it after the
	 * delete; a lookup that raced an unregister lands here. The tgid check
	 * catches a Labor that exited unregistered and whose tid the kernel gave
	 * to a thread of another process (and a task storage entry put on the
	 * wrong task: the loader never trusts a tid it did not verify, but the
	 * probe checks anyway). */
	if (LW_READ_ONCE(s->tid) != tid || LW_READ_ONCE(s->tgid) != tgid) {
		LW_COUNT(slot_stale);
		return NULL;
	}
	*idx_out = i;
	return s;
}

static __always_inline void lw_notify(__u32 idx, __u32 cart, __u64 seq, __u64 now)
{
	struct labor_watch_event *e;

	e = bpf_ringbuf_reserve(&labor_events, sizeof(*e), 0);
	if (!e) {
		LW_COUNT(ringbuf_drop);
		return;
	}
	e->slot = idx;
	e->cart = cart;
	e->block_seq = seq;
	e->time_ns = now;
	bpf_ringbuf_submit(e, 0);
	LW_COUNT(events);
}

/*
 * A block while the Supervisor sleeps: does it need waking? Not while a FREE
 * Labor of the same runtime spins on a CPU, or is the next task on this one
 * (it reads the slot and takes the
 * Cart; the spinner re-checks the slots after it clears its word), nor when the
 * Cart is empty (a submit behind a blocked owner nudges the Supervisor). Both
 * reads follow the exchange of state (a full barrier), and each pairs with a
 * seq_cst read-modify-write on the other side then a load of state: the
 * spinner's decrement in free_spin, the submitter's ring push before
 * lutf_supervisor_nudge. A failed read means "wake", as before the hints.
 */
/* Is Labor tid of process tgid on a CPU now: its slot RUNNING, or it is the
 * task this very switch hands the CPU to (next_tid; its slot still reads IDLE
 * until the switch-in)? A spinner that was preempted elsewhere takes nothing
 * until it runs again: then wake. On 2 vCPUs the spinner is often queued
 * behind the Labor that blocks; waking the Supervisor then put it ahead of
 * the spinner, and the hand-off took the Supervisor's ~20 us instead of ~2. */
static __always_inline bool lw_on_cpu(__u32 tid, __u32 tgid, __u32 next_tid)
{
	struct labor_watch_tid *t = bpf_map_lookup_elem(&labor_tids, &tid);
	struct labor_watch_slot *s;
	__u32 i;

	if (!t)
		return false;
	i = t->slot;
	s = bpf_map_lookup_elem(&labor_state, &i);
	return s && LW_READ_ONCE(s->tid) == tid && LW_READ_ONCE(s->tgid) == tgid &&
	       (tid == next_tid || LW_READ_ONCE(s->state) == LW_STATE_RUNNING);
}

static __always_inline bool lw_wake_needed(const struct labor_watch_tid *info, __u32 tgid,
					   __u32 cart, __u32 next_tid)
{
	__u64 enq, deq, at;
	__u32 spinner;

	if (info->spin_uaddr &&
	    bpf_probe_read_user(&spinner, sizeof(spinner), (const void *)info->spin_uaddr) == 0 &&
	    spinner != 0 && lw_on_cpu(spinner, tgid, next_tid)) {
		LW_COUNT(skip_spin);
		return false;
	}
	if (!info->work_uaddr || cart >= info->work_carts)
		return true;
	at = info->work_uaddr + (__u64)cart * info->work_stride;
	if (bpf_probe_read_user(&enq, sizeof(enq), (const void *)at) != 0 ||
	    bpf_probe_read_user(&deq, sizeof(deq), (const void *)(at + info->work_deq_off)) != 0 ||
	    enq != deq)
		return true;
	LW_COUNT(skip_empty);
	return false;
}

/* prev is switched out. Watched only while its slot holds a Cart. */
static __always_inline void lw_switch_out(struct task_struct *task, __u32 tid, __u32 tgid,
					  bool preempt, unsigned int prev_state, __u32 next_tid)
{
	struct labor_watch_slot *s;
	struct labor_watch_tid info = {};
	__u32 idx = 0, cart, busy, own[2] = {};
	__u64 now, seq;

	s = lw_slot_of(task, tid, tgid, &idx, &info);
	if (!s)
		return;
	if (info.cart_uaddr) {
		/* A Labor that takes Carts itself with a read-only view (a worker
		 * of lutfd): its own state and cart words, one read in its own
		 * memory (prev is current). Bounded by the front's Cart count. */
		cart = LW_NO_CART;
		if (bpf_probe_read_user(own, sizeof(own), (const void *)info.cart_uaddr) == 0 &&
		    own[1] < info.work_carts)
			cart = own[1];
	} else {
		/* Relaxed read; pairs with the release store in lutf_lw_set_cart(). */
		cart = LW_READ_ONCE(s->cart);
	}
	if (cart == LW_NO_CART) {
		if (LW_READ_ONCE(s->state) != LW_STATE_IDLE)
			LW_WRITE_ONCE(s->state, LW_STATE_IDLE);
		return;
	}
	/* The counters and stamps below have one writer at a time (this thread's
	 * switches are serialized by the scheduler); volatile stores so that the
	 * Supervisor's relaxed loads never see a torn or merged write. */
	now = bpf_ktime_get_ns();
	LW_WRITE_ONCE(s->last_off_ns, now);
	if (preempt || prev_state == 0) {
		/* Runnable: migrating its Cart would not help. */
		LW_WRITE_ONCE(s->preemptions, s->preemptions + 1);
		LW_WRITE_ONCE(s->state, LW_STATE_PREEMPTED);
		return;
	}
	/* Parking between Bricks is not blocking inside one: read the Labor's
	 * busy word (its own memory: prev is current here). A failed read (page
	 * not present) counts as busy, which errs towards reporting. */
	if (info.cart_uaddr) {
		if (own[0] != info.busy_value) { /* read above, with the Cart */
			LW_WRITE_ONCE(s->state, LW_STATE_IDLE);
			return;
		}
	} else if (info.busy_uaddr &&
		   bpf_probe_read_user(&busy, sizeof(busy), (const void *)info.busy_uaddr) == 0 &&
		   busy != info.busy_value) {
		LW_WRITE_ONCE(s->state, LW_STATE_IDLE);
		return;
	}
	seq = s->block_seq + 1;
	LW_WRITE_ONCE(s->last_block_ns, now);
	LW_WRITE_ONCE(s->blocks, s->blocks + 1);
	LW_WRITE_ONCE(s->block_seq, seq);
	/*
	 * state last, with an exchange: a full barrier, so (1) a reader that sees
	 * BLOCKED with an acquire load also sees this block's seq and time, and
	 * (2) the load of lw_supervisor_sleeping below cannot pass it (see the
	 * comment at lw_supervisor_sleeping).
	 */
	__sync_lock_test_and_set(&s->state, LW_STATE_BLOCKED);
	if (LW_READ_ONCE(lw_supervisor_sleeping) && lw_wake_needed(&info, tgid, cart, next_tid))
		lw_notify(idx, cart, seq, now);
}

/* next is switched in: close a watched off-CPU interval. Not filtered by Cart,
 * so that a Labor whose Cart was taken while it slept reads RUNNING again. */
static __always_inline void lw_switch_in(struct task_struct *task, __u32 tid, __u32 tgid)
{
	struct labor_watch_slot *s;
	__u32 idx = 0, state;
	__u64 now;

	s = lw_slot_of(task, tid, tgid, &idx, NULL);
	if (!s)
		return;
	/* Our own previous store (switch-out on this or another CPU, ordered by
	 * the scheduler's on_cpu handoff); same single-writer rule as above. */
	state = LW_READ_ONCE(s->state);
	if (state == LW_STATE_RUNNING)
		return;
	if (state != LW_STATE_IDLE) {
		now = bpf_ktime_get_ns();
		LW_WRITE_ONCE(s->offcpu_ns, s->offcpu_ns + (now - s->last_off_ns));
		LW_WRITE_ONCE(s->last_wake_ns, now);
		if (state == LW_STATE_BLOCKED && now - s->last_block_ns > LW_READ_ONCE(lw_grace_ns))
			LW_COUNT(long_blocks);
	}
	/* Plain store; x86 keeps it after the stores above (TSO). */
	LW_WRITE_ONCE(s->state, LW_STATE_RUNNING);
}

/*
 * The one worker both attach kinds call. btf is a constant at each call site:
 * tp_btf reads the task fields directly (trusted BTF pointers) and finds a
 * Labor in task storage, raw_tp reads through BPF_CORE_READ and finds it in
 * the tid hash. tgid first, the rest only after the filter passed.
 */
static __always_inline void lw_switch(bool btf, bool preempt, struct task_struct *prev,
				      struct task_struct *next, unsigned int prev_state)
{
	__u32 tgid, next_tgid, next_tid = 0;

	tgid = btf ? prev->tgid : BPF_CORE_READ(prev, tgid);
	next_tgid = btf ? next->tgid : BPF_CORE_READ(next, tgid);
	if (lw_tgid_watched(tgid)) {
		/* next's tid counts as a spinner on a CPU only in prev's own
		 * process (lw_on_cpu also wants it registered there). */
		if (next_tgid == tgid)
			next_tid = btf ? next->pid : BPF_CORE_READ(next, pid);
		lw_switch_out(btf ? prev : NULL, btf ? prev->pid : BPF_CORE_READ(prev, pid), tgid,
			      preempt, prev_state, next_tid);
	}
	tgid = next_tgid;
	if (lw_tgid_watched(tgid))
		lw_switch_in(btf ? next : NULL, btf ? next->pid : BPF_CORE_READ(next, pid), tgid);
}

/* Kernel >= 5.18 signature: (bool preempt, prev, next, unsigned int prev_state). */
SEC("tp_btf/sched_switch")
int BPF_PROG(lw_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	lw_switch(true, preempt, prev, next, prev_state);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(lw_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	lw_switch(false, preempt, prev, next, prev_state);
	return 0;
}
