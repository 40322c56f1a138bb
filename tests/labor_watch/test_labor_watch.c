/* SPDX-License-Identifier: MIT */
/*
 * labor_watch: the sched_switch probe and its loader, against the running
 * kernel. CTest runs this binary twice: as is (tp_btf) and with
 * LUTF_LABOR_WATCH_RAW_TP=1. Needs root and BPF (LUTF_REQUIRE); every wait is
 * bounded in time.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "labor_watch.h"

#include "require.h"

#define CART 7U

static struct lutf_lw *g_lw;
static char g_pin_dir[64];

static void teardown(void)
{
	lutf_lw_close(g_lw);
	g_lw = NULL;
	if (g_pin_dir[0])
		rmdir(g_pin_dir); /* only if a failed test left it empty */
}

TestSuite(labor_watch, .fini = teardown);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* same clock as bpf_ktime_get_ns */
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool forced_raw_tp(void)
{
	const char *v = getenv("LUTF_LABOR_WATCH_RAW_TP");

	return v && strcmp(v, "1") == 0;
}

/* Open labor_watch pinned under a folder of this test process, or skip. */
static struct lutf_lw *open_lw(struct lutf_lw_opts *o)
{
	struct lutf_lw_opts d = {0};
	int r;

	LUTF_REQUIRE("root", lutf_test_is_root(), "loading BPF needs root");
	if (!o)
		o = &d;
	if (!o->pin_dir) {
		snprintf(g_pin_dir, sizeof(g_pin_dir), "/sys/fs/bpf/lutf-test-%d", (int)getpid());
		o->pin_dir = g_pin_dir;
	}
	r = lutf_lw_open(o, &g_lw);
	LUTF_REQUIRE("bpf", r == 0, "lutf_lw_open failed (see the labor_watch: line)");
	cr_assert_str_eq(lutf_lw_attach_kind(g_lw), forced_raw_tp() ? "raw_tp" : "tp_btf");
	return g_lw;
}

static struct labor_watch_slot snap(struct lutf_lw *lw, uint32_t slot)
{
	struct labor_watch_slot s;

	cr_assert_eq(lutf_lw_read(lw, slot, &s), 0);
	return s;
}

/* Poll until the slot's state is want; false after timeout_ms. */
static bool wait_state(struct lutf_lw *lw, uint32_t slot, uint32_t want, long timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	while (now_ns() < end) {
		/* Acquire: pairs with the probe's exchange on state. */
		if (__atomic_load_n(&lutf_lw_slot(lw, slot)->state, __ATOMIC_ACQUIRE) == want)
			return true;
		sleep_ms(1);
	}
	return false;
}

/* A thread the test registers as a Labor. It blocks on go[0] (unwatched:
 * no Cart yet), runs its action, reports done, then blocks on go[0] again. */
enum action { ACT_NANOSLEEP, ACT_PIPE_READ, ACT_SPIN };

struct worker {
	pthread_t th;
	enum action act;
	long sleep_ms;
	int cpu; /* -1: any */
	int go[2];
	int data[2];
	int tid;  /* atomic: published by the worker (release), read by the test (acquire) */
	int done; /* atomic: actions finished; release/acquire as tid */
	int stop; /* atomic: ACT_SPIN ends; relaxed, the spin only needs to see it eventually */
	int rounds;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char c;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			return NULL;
	}
	__atomic_store_n(&w->tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
	for (int round = 0; round < w->rounds; round++) {
		if (read(w->go[0], &c, 1) != 1)
			return NULL;
		switch (w->act) {
		case ACT_NANOSLEEP:
			sleep_ms(w->sleep_ms);
			break;
		case ACT_PIPE_READ:
			if (read(w->data[0], &c, 1) != 1)
				return NULL;
			break;
		case ACT_SPIN:
			while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
				;
			break;
		}
		__atomic_fetch_add(&w->done, 1, __ATOMIC_RELEASE);
	}
	/* Park until the test says exit: a byte or EOF on go. */
	(void)!read(w->go[0], &c, 1);
	return NULL;
}

static void worker_start(struct worker *w, enum action act, int rounds)
{
	uint64_t end = now_ns() + 2000000000ULL;

	w->act = act;
	w->rounds = rounds;
	cr_assert_eq(pipe(w->go), 0);
	cr_assert_eq(pipe(w->data), 0);
	cr_assert_eq(pthread_create(&w->th, NULL, worker_main, w), 0);
	while (!__atomic_load_n(&w->tid, __ATOMIC_ACQUIRE) && now_ns() < end)
		sleep_ms(1);
	cr_assert_neq(__atomic_load_n(&w->tid, __ATOMIC_ACQUIRE), 0, "worker did not start");
}

static void worker_go(struct worker *w)
{
	cr_assert_eq(write(w->go[1], "g", 1), 1);
}

static void wait_done(struct worker *w, int n, long timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	while (__atomic_load_n(&w->done, __ATOMIC_ACQUIRE) < n && now_ns() < end)
		sleep_ms(1);
	cr_assert_geq(__atomic_load_n(&w->done, __ATOMIC_ACQUIRE), n, "worker action timed out");
}

static void worker_end(struct worker *w)
{
	close(w->go[1]); /* EOF: the parked read returns */
	close(w->data[1]);
	pthread_join(w->th, NULL);
	close(w->go[0]);
	close(w->data[0]);
}

static uint32_t reg(struct lutf_lw *lw, struct worker *w)
{
	uint32_t slot = UINT32_MAX;

	cr_assert_eq(lutf_lw_register(lw, getpid(), w->tid, &slot), 0);
	return slot;
}

static void no_drops(struct lutf_lw *lw)
{
	struct lutf_lw_drops d;

	cr_assert_eq(lutf_lw_drops(lw, &d), 0);
	cr_expect_eq(d.ringbuf_drop, 0);
	cr_expect_eq(d.slot_range, 0);
	cr_expect_eq(d.slot_stale, 0);
}

Test(labor_watch, disabled_by_env)
{
	struct lutf_lw *lw = (struct lutf_lw *)0x1;

	setenv("LUTF_LABOR_WATCH", "off", 1);
	cr_assert_eq(lutf_lw_open(NULL, &lw), -EPERM);
	cr_assert_null(lw);
	unsetenv("LUTF_LABOR_WATCH");
}

Test(labor_watch, loads_pins_and_unpins)
{
	struct lutf_lw *lw = open_lw(NULL);
	char path[128];
	struct stat st;

	cr_assert_str_eq(lutf_lw_pin_dir(lw), g_pin_dir);
	for (const char *const *n =
		 (const char *const[]){"labor_state", "labor_tids", "labor_events",
				       "labor_counters", "labor_globals", NULL};
	     *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", g_pin_dir, *n);
		cr_assert_eq(stat(path, &st), 0, "%s not pinned", path);
	}
	cr_assert_geq(lutf_lw_ring_fd(lw), 0);
	cr_assert_eq(lutf_lw_set_grace(lw, 0), -EINVAL);
	cr_assert_eq(lutf_lw_set_grace(lw, 20000), 0);
	lutf_lw_close(lw);
	g_lw = NULL;
	cr_assert_eq(stat(g_pin_dir, &st), -1, "pin folder left behind");
	cr_assert_eq(errno, ENOENT);
}

Test(labor_watch, unpinned_and_register_errors)
{
	struct lutf_lw_opts o = {.pin_dir = "", .max_labors = 2};
	struct lutf_lw *lw = open_lw(&o);
	pid_t me = getpid();
	uint32_t a, b, c;

	cr_assert_str_eq(lutf_lw_pin_dir(lw), "");
	cr_assert_eq(lutf_lw_register(lw, 0, 5, &a), -EINVAL);
	cr_assert_eq(lutf_lw_register(lw, me, 4000001, &a), 0);
	cr_assert_eq(lutf_lw_register(lw, me, 4000001, &b), -EEXIST);
	cr_assert_eq(lutf_lw_register(lw, me, 4000002, &b), 0);
	cr_assert_neq(a, b);
	cr_assert_eq(lutf_lw_register(lw, me, 4000003, &c), -ENOSPC);
	cr_assert_eq(lutf_lw_unregister(lw, 2), -EINVAL);
	cr_assert_eq(lutf_lw_unregister(lw, a), 0);
	cr_assert_eq(lutf_lw_unregister(lw, a), -ENOENT);
	cr_assert_eq(lutf_lw_register(lw, me, 4000003, &c), 0);
	cr_assert_eq(c, a);
	cr_assert_eq(snap(lw, c).tid, 4000003);
	cr_assert_eq(snap(lw, c).cart, LW_NO_CART);
	cr_assert_null(lutf_lw_slot(lw, 2));
}

/* A Labor with a Cart that blocks in nanosleep reads BLOCKED while it sleeps. */
Test(labor_watch, nanosleep_is_a_block)
{
	struct lutf_lw *lw = open_lw(NULL);
	struct worker w = {.cpu = -1, .sleep_ms = 300};
	struct labor_watch_slot s;
	struct lutf_lw_drops d;
	uint64_t t0, blocked_at;
	uint32_t slot;

	cr_assert_eq(lutf_lw_set_grace(lw, 1000000), 0); /* 1 ms: the 300 ms sleep is long */
	worker_start(&w, ACT_NANOSLEEP, 1);
	slot = reg(lw, &w);
	lutf_lw_set_cart(lw, slot, CART);
	t0 = now_ns();
	worker_go(&w);
	cr_assert(wait_state(lw, slot, LW_STATE_BLOCKED, 2000), "never seen blocked");
	s = snap(lw, slot);
	cr_assert_eq(s.tid, (uint32_t)w.tid);
	cr_assert_eq(s.tgid, (uint32_t)getpid());
	cr_assert_eq(s.cart, CART);
	cr_assert_geq(s.block_seq, 1);
	cr_assert_geq(s.blocks, 1);
	cr_assert_geq(s.last_block_ns, t0);
	blocked_at = s.last_block_ns;
	wait_done(&w, 1, 3000);
	s = snap(lw, slot);
	/* The worker may have blocked again (parked): last_wake_ns is this sleep's end or later. */
	cr_assert_geq(s.last_wake_ns, blocked_at + 250000000ULL, "woke too early");
	cr_assert_geq(s.offcpu_ns, 250000000ULL, "off-CPU %llu ns",
		      (unsigned long long)s.offcpu_ns);
	cr_assert_eq(lutf_lw_drops(lw, &d), 0);
	cr_assert_geq(d.long_blocks, 1);
	cr_assert_eq(d.events, 0, "an event while nobody slept");
	no_drops(lw);
	lutf_lw_set_cart(lw, slot, LW_NO_CART);
	worker_end(&w);
}

/* Same for read() on an empty pipe; the state stays BLOCKED until the byte comes. */
Test(labor_watch, pipe_read_is_a_block)
{
	struct lutf_lw *lw = open_lw(NULL);
	struct worker w = {.cpu = -1};
	struct labor_watch_slot s, s2;
	uint32_t slot;

	worker_start(&w, ACT_PIPE_READ, 1);
	slot = reg(lw, &w);
	lutf_lw_set_cart(lw, slot, CART);
	worker_go(&w);
	cr_assert(wait_state(lw, slot, LW_STATE_BLOCKED, 2000), "never seen blocked");
	s = snap(lw, slot);
	sleep_ms(50);
	s2 = snap(lw, slot);
	cr_assert_eq(s2.state, LW_STATE_BLOCKED);
	cr_assert_eq(s2.block_seq, s.block_seq, "same block episode");
	cr_assert_eq(s2.last_block_ns, s.last_block_ns);
	cr_assert_eq(write(w.data[1], "x", 1), 1);
	wait_done(&w, 1, 2000);
	s2 = snap(lw, slot);
	cr_assert_geq(s2.last_wake_ns, s.last_block_ns + 40000000ULL, "wake after the 50 ms wait");
	cr_assert_geq(s2.offcpu_ns, 40000000ULL);
	no_drops(lw);
	lutf_lw_set_cart(lw, slot, LW_NO_CART);
	worker_end(&w);
}

/* Two busy Labors on one CPU preempt each other: preemptions, no blocks. */
Test(labor_watch, preemption_is_not_a_block)
{
	struct lutf_lw *lw = open_lw(NULL);
	struct worker w[2] = {{.cpu = 0}, {.cpu = 0}};
	uint32_t slot[2];
	struct labor_watch_slot s[2];

	for (int i = 0; i < 2; i++) {
		worker_start(&w[i], ACT_SPIN, 1);
		slot[i] = reg(lw, &w[i]);
		lutf_lw_set_cart(lw, slot[i], CART + (uint32_t)i);
	}
	for (int i = 0; i < 2; i++)
		worker_go(&w[i]);
	sleep_ms(400);
	for (int i = 0; i < 2; i++)
		s[i] = snap(lw, slot[i]);
	for (int i = 0; i < 2; i++) {
		lutf_lw_set_cart(lw, slot[i], LW_NO_CART);
		__atomic_store_n(&w[i].stop, 1, __ATOMIC_RELAXED); /* see struct worker */
	}
	for (int i = 0; i < 2; i++) {
		cr_log_info("spinner %d: preemptions %u blocks %u", i, s[i].preemptions,
			    s[i].blocks);
		cr_assert_eq(s[i].blocks, 0, "a preempted Labor was counted blocked");
		cr_assert_eq(s[i].block_seq, 0);
		cr_assert_neq(s[i].state, LW_STATE_BLOCKED);
	}
	cr_assert_gt(s[0].preemptions + s[1].preemptions, 4, "spinners on one CPU not preempted");
	for (int i = 0; i < 2; i++)
		worker_end(&w[i]);
}

/* Without a Cart nothing is reported; with one, the next block is. */
Test(labor_watch, no_cart_not_reported)
{
	struct lutf_lw *lw = open_lw(NULL);
	struct worker w = {.cpu = -1, .sleep_ms = 100};
	struct labor_watch_slot s;
	uint64_t end;
	uint32_t slot;

	worker_start(&w, ACT_NANOSLEEP, 2);
	slot = reg(lw, &w);
	worker_go(&w);
	end = now_ns() + 3000000000ULL;
	while (__atomic_load_n(&w.done, __ATOMIC_ACQUIRE) < 1 && now_ns() < end) {
		cr_assert_neq(snap(lw, slot).state, LW_STATE_BLOCKED);
		sleep_ms(5);
	}
	cr_assert_eq(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), 1);
	s = snap(lw, slot);
	cr_assert_eq(s.blocks, 0);
	cr_assert_eq(s.block_seq, 0);
	cr_assert_eq(s.last_block_ns, 0);
	cr_assert_eq(s.offcpu_ns, 0);

	lutf_lw_set_cart(lw, slot, CART);
	worker_go(&w);
	cr_assert(wait_state(lw, slot, LW_STATE_BLOCKED, 2000));
	cr_assert_geq(snap(lw, slot).blocks, 1);
	wait_done(&w, 2, 2000);
	lutf_lw_set_cart(lw, slot, LW_NO_CART);
	worker_end(&w);
}

struct ev_log {
	int n;
	struct labor_watch_event last;
};

static void on_event(void *ctx, const struct labor_watch_event *ev)
{
	struct ev_log *log = ctx;

	log->n++;
	log->last = *ev;
}

/* With supervisor_sleeping set, a block sends an event that makes the ring fd readable. */
Test(labor_watch, ring_fd_readable_on_block)
{
	struct ev_log log = {0};
	struct lutf_lw_opts o = {.on_event = on_event, .event_ctx = &log};
	struct lutf_lw *lw = open_lw(&o);
	struct worker w = {.cpu = -1};
	struct epoll_event ev = {.events = EPOLLIN}, out;
	struct lutf_lw_drops d;
	uint32_t slot;
	int ep;

	worker_start(&w, ACT_PIPE_READ, 1);
	slot = reg(lw, &w);
	ep = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_geq(ep, 0);
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, lutf_lw_ring_fd(lw), &ev), 0);
	cr_assert_eq(epoll_wait(ep, &out, 1, 0), 0, "ring readable before any block");
	lutf_lw_set_sleeping(lw, 1);
	lutf_lw_set_cart(lw, slot, CART);
	worker_go(&w);
	cr_assert_eq(epoll_wait(ep, &out, 1, 3000), 1, "no wakeup on the ring fd");
	cr_assert_geq(lutf_lw_consume(lw), 1);
	lutf_lw_set_sleeping(lw, 0);
	cr_assert_geq(log.n, 1);
	cr_assert_eq(log.last.slot, slot);
	cr_assert_eq(log.last.cart, CART);
	cr_assert_eq(log.last.block_seq, snap(lw, slot).block_seq);
	cr_assert_eq(log.last.time_ns, snap(lw, slot).last_block_ns);
	cr_assert_eq(lutf_lw_drops(lw, &d), 0);
	cr_assert_geq(d.events, 1);
	no_drops(lw);
	cr_assert_eq(write(w.data[1], "x", 1), 1);
	wait_done(&w, 1, 2000);
	lutf_lw_set_cart(lw, slot, LW_NO_CART);
	close(ep);
	worker_end(&w);
}

/* The wake hints' stand-ins: a spinner word (a tid) and Cart rings (enq,
 * then deq one cache line further), in this process, which is the Labor's. */
struct fake_cart {
	uint64_t enq;
	uint64_t pad0[7];
	uint64_t deq;
	uint64_t pad1[7];
};

static struct fake_cart g_carts[CART + 1];
static uint32_t g_spinning;

/* Poll the counters until events + skip_spin + skip_empty passes base's; 0
 * or the summed counters. */
static struct lutf_lw_drops wait_decided(struct lutf_lw *lw, const struct lutf_lw_drops *base)
{
	uint64_t end = now_ns() + 3000000000ULL,
		 was = base->events + base->skip_spin + base->skip_empty;
	struct lutf_lw_drops d = {0};

	while (now_ns() < end) {
		cr_assert_eq(lutf_lw_drops(lw, &d), 0);
		if (d.events + d.skip_spin + d.skip_empty > was)
			break;
		sleep_ms(1);
	}
	cr_assert_eq(d.events + d.skip_spin + d.skip_empty, was + 1, "one decision per block");
	return d;
}

/* True once thread tid sleeps (state S in /proc); false after timeout_ms. */
static bool wait_asleep(int tid, long timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	while (now_ns() < end) {
		FILE *f = fopen(path, "r");
		char *p = NULL;

		if (f) {
			if (fgets(buf, sizeof(buf), f))
				p = strrchr(buf, ')');
			fclose(f);
		}
		if (p && p[1] == ' ' && p[2] == 'S')
			return true;
		sleep_ms(1);
	}
	return false;
}

/* One watched block of w (blocked in its data read when this returns true),
 * with the Supervisor asleep: which way did the probe decide? */
static struct lutf_lw_drops one_block(struct lutf_lw *lw, struct worker *w, uint32_t slot, int n)
{
	struct lutf_lw_drops before, after;

	/* Asleep in its read of go first: that switch-out must not be watched. */
	cr_assert(wait_asleep(w->tid, 2000), "worker never waited for go");
	cr_assert_eq(lutf_lw_drops(lw, &before), 0);
	lutf_lw_set_cart(lw, slot, CART);
	worker_go(w);
	cr_assert(wait_state(lw, slot, LW_STATE_BLOCKED, 2000));
	after = wait_decided(lw, &before);
	/* No Cart before it wakes: its next block (on go) is not watched. */
	lutf_lw_set_cart(lw, slot, LW_NO_CART);
	cr_assert_eq(write(w->data[1], "x", 1), 1);
	wait_done(w, n, 2000);
	after.events -= before.events;
	after.skip_spin -= before.skip_spin;
	after.skip_empty -= before.skip_empty;
	return after;
}

/* A block wakes the sleeping Supervisor only when someone needs it: not while
 * a Labor of the runtime spins on a CPU, not when the Cart is empty; a
 * spinner that is off CPU or no Labor of the process, a hint that cannot be
 * read, or one that does not fit, means "wake". */
Test(labor_watch, wake_hints_skip_the_event_when_nobody_needs_it)
{
	struct lutf_lw *lw = open_lw(NULL);
	struct worker w = {.cpu = -1}, bad = {.cpu = -1}, spinner = {.cpu = -1};
	struct labor_watch_slot *sp;
	uint32_t sslot;
	struct lutf_lw_hints h = {
	    .spin_uaddr = (uint64_t)(uintptr_t)&g_spinning,
	    .work_uaddr = (uint64_t)(uintptr_t)&g_carts[0].enq,
	    .work_stride = sizeof(g_carts[0]),
	    .work_carts = CART + 1,
	    .work_deq_off = offsetof(struct fake_cart, deq),
	};
	struct lutf_lw_drops d;
	uint32_t slot, bslot;

	worker_start(&w, ACT_PIPE_READ, 7);
	cr_assert_eq(lutf_lw_register_hints(lw, getpid(), w.tid, &h, &slot), 0);
	lutf_lw_set_sleeping(lw, 1);

	/* The spinner: a registered Labor of this process, asleep (so the
	 * probe leaves its slot alone); the test writes its state, as the
	 * probe would on its switches. */
	worker_start(&spinner, ACT_PIPE_READ, 1);
	cr_assert_eq(lutf_lw_register(lw, getpid(), spinner.tid, &sslot), 0);
	cr_assert(wait_asleep(spinner.tid, 2000));
	sp = (struct labor_watch_slot *)lutf_lw_slot(lw, sslot);

	/* Bricks queued, a spinner on a CPU: it takes the Cart, no wake-up. */
	__atomic_store_n(&sp->state, LW_STATE_RUNNING, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g_spinning, (uint32_t)spinner.tid, __ATOMIC_SEQ_CST);
	g_carts[CART].enq = 3;
	g_carts[CART].deq = 2;
	d = one_block(lw, &w, slot, 1);
	cr_assert_eq(d.skip_spin, 1);
	cr_assert_eq(d.events, 0);

	/* The spinner off CPU (preempted): it takes nothing yet, so wake. */
	__atomic_store_n(&sp->state, LW_STATE_IDLE, __ATOMIC_SEQ_CST);
	d = one_block(lw, &w, slot, 2);
	cr_assert_eq(d.events, 1);
	cr_assert_eq(d.skip_spin, 0);

	/* A spinner word naming no Labor (here the test's own tid, never
	 * registered): wake. */
	__atomic_store_n(&g_spinning, (uint32_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	d = one_block(lw, &w, slot, 3);
	cr_assert_eq(d.events, 1);

	/* No spinner, Cart empty: nothing to hand off, no wake-up. */
	__atomic_store_n(&g_spinning, 0, __ATOMIC_SEQ_CST);
	g_carts[CART].enq = 2;
	d = one_block(lw, &w, slot, 4);
	cr_assert_eq(d.skip_empty, 1);
	cr_assert_eq(d.events, 0);

	/* No spinner, a Brick queued: the Supervisor is woken. */
	g_carts[CART].enq = 3;
	d = one_block(lw, &w, slot, 5);
	cr_assert_eq(d.events, 1);

	/* The Supervisor awake: no event and no hint read, whatever they say. */
	lutf_lw_set_sleeping(lw, 0);
	{
		struct lutf_lw_drops before, after;

		cr_assert(wait_asleep(w.tid, 2000));
		cr_assert_eq(lutf_lw_drops(lw, &before), 0);
		lutf_lw_set_cart(lw, slot, CART);
		worker_go(&w);
		cr_assert(wait_state(lw, slot, LW_STATE_BLOCKED, 2000));
		sleep_ms(20);
		cr_assert_eq(lutf_lw_drops(lw, &after), 0);
		cr_assert_eq(after.events + after.skip_spin + after.skip_empty,
			     before.events + before.skip_spin + before.skip_empty);
		lutf_lw_set_cart(lw, slot, LW_NO_CART);
		cr_assert_eq(write(w.data[1], "x", 1), 1);
		wait_done(&w, 6, 2000);
	}
	lutf_lw_set_sleeping(lw, 1);

	/* Hostile hints: an address that cannot be read, and (dropped at
	 * registration) a deq word outside its stride. Both wake. */
	worker_start(&bad, ACT_PIPE_READ, 2);
	h.spin_uaddr = 8;
	h.work_uaddr = 16;
	cr_assert_eq(lutf_lw_register_hints(lw, getpid(), bad.tid, &h, &bslot), 0);
	d = one_block(lw, &bad, bslot, 1);
	cr_assert_eq(d.events, 1, "an unreadable hint must not silence a block");
	cr_assert_eq(lutf_lw_unregister(lw, bslot), 0);
	g_carts[CART].enq = g_carts[CART].deq; /* empty: would skip if the hint held */
	h.spin_uaddr = 0;
	h.work_uaddr = (uint64_t)(uintptr_t)&g_carts[0].enq;
	h.work_stride = 8; /* deq at +64 does not fit: hint dropped */
	cr_assert_eq(lutf_lw_register_hints(lw, getpid(), bad.tid, &h, &bslot), 0);
	d = one_block(lw, &bad, bslot, 2);
	cr_assert_eq(d.events, 1);
	cr_assert_eq(d.skip_empty, 0);
	cr_assert_eq(lutf_lw_register_hints(lw, getpid(), bad.tid, NULL, &bslot), -EINVAL);
	no_drops(lw);
	lutf_lw_set_sleeping(lw, 0);
	worker_end(&bad);
	cr_assert_eq(lutf_lw_unregister(lw, sslot), 0);
	worker_end(&spinner);
	/* The seventh round of w is never started: worker_end's EOF ends it. */
	worker_end(&w);
}

/* The spinner queued on the CPU the blocked Labor leaves: the probe sees it is
 * the task that CPU switches to next, and wakes nobody (it takes the Cart in a
 * moment). Both pinned to one CPU, so the spinner's slot never reads RUNNING
 * when the other blocks: every skip here is the next-task hint's (without it,
 * each block woke the Supervisor). Another task of the host may run there
 * first (then a wake is right), hence "at least one" of ROUNDS. */
Test(labor_watch, wake_hints_skip_when_the_spinner_runs_next)
{
	enum { ROUNDS = 20 };
	struct lutf_lw *lw = open_lw(NULL);
	struct worker w = {.cpu = -1}, spinner = {.cpu = -1};
	struct lutf_lw_hints h = {
	    .spin_uaddr = (uint64_t)(uintptr_t)&g_spinning,
	    .work_uaddr = (uint64_t)(uintptr_t)&g_carts[0].enq,
	    .work_stride = sizeof(g_carts[0]),
	    .work_carts = CART + 1,
	    .work_deq_off = offsetof(struct fake_cart, deq),
	};
	struct lutf_lw_drops d, sum = {0};
	cpu_set_t all, other;
	uint32_t slot, sslot;
	int x = -1, y = -1;

	cr_assert_eq(sched_getaffinity(0, sizeof(all), &all), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all)) {
			if (x < 0)
				x = c;
			else if (y < 0)
				y = c;
		}
	LUTF_REQUIRE("cpus", y >= 0, "needs two CPUs");
	/* The test thread elsewhere, so that it is not the one that runs next. */
	CPU_ZERO(&other);
	CPU_SET(y, &other);
	cr_assert_eq(sched_setaffinity(0, sizeof(other), &other), 0);
	w.cpu = spinner.cpu = x;
	worker_start(&w, ACT_PIPE_READ, ROUNDS + 1);
	cr_assert_eq(lutf_lw_register_hints(lw, getpid(), w.tid, &h, &slot), 0);
	worker_start(&spinner, ACT_SPIN, 1);
	cr_assert_eq(lutf_lw_register(lw, getpid(), spinner.tid, &sslot), 0);
	worker_go(&spinner);
	__atomic_store_n(&g_spinning, (uint32_t)spinner.tid, __ATOMIC_SEQ_CST);
	g_carts[CART].enq = 3; /* Bricks queued: only the spinner hint can skip */
	g_carts[CART].deq = 2;
	lutf_lw_set_sleeping(lw, 1);
	for (int i = 1; i <= ROUNDS; i++) {
		d = one_block(lw, &w, slot, i);
		cr_assert_eq(d.skip_empty, 0);
		sum.events += d.events;
		sum.skip_spin += d.skip_spin;
	}
	lutf_lw_set_sleeping(lw, 0);
	cr_assert_eq(sum.events + sum.skip_spin, ROUNDS, "one decision per block");
	cr_assert_geq(sum.skip_spin, 1, "the spinner ran next in none of %d blocks (%lu wakes)",
		      ROUNDS, (unsigned long)sum.events);
	__atomic_store_n(&g_spinning, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&spinner.stop, 1, __ATOMIC_RELAXED);
	wait_done(&spinner, 1, 2000);
	cr_assert_eq(lutf_lw_unregister(lw, sslot), 0);
	no_drops(lw);
	worker_end(&spinner);
	worker_end(&w);
	cr_assert_eq(sched_setaffinity(0, sizeof(all), &all), 0);
}

struct sleeper {
	struct lutf_lw *lw;
	int ret;
	uint64_t took_ns;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	uint64_t t0 = now_ns();

	s->ret = lutf_lw_sleep(s->lw, 5000);
	s->took_ns = now_ns() - t0;
	return NULL;
}

/* lutf_lw_sleep returns early when a watched Labor blocks, and times out when none does. */
Test(labor_watch, sleep_wakes_on_block)
{
	struct lutf_lw *lw = open_lw(NULL);
	struct worker w = {.cpu = -1};
	struct sleeper sl = {.lw = lw};
	struct lutf_lw_drops d;
	pthread_t th;
	uint64_t t0;
	uint32_t slot;

	worker_start(&w, ACT_PIPE_READ, 1);
	slot = reg(lw, &w);
	lutf_lw_set_cart(lw, slot, CART);
	t0 = now_ns();
	cr_assert_eq(lutf_lw_sleep(lw, 100), 0, "woke with nothing blocked");
	cr_assert_geq(now_ns() - t0, 90000000ULL);

	cr_assert_eq(pthread_create(&th, NULL, sleeper_main, &sl), 0);
	sleep_ms(200); /* the sleeper is in its wait by now */
	worker_go(&w);
	pthread_join(th, NULL);
	cr_assert_eq(sl.ret, 1, "lutf_lw_sleep returned %d", sl.ret);
	cr_assert_lt(sl.took_ns, 2000000000ULL, "woke only at the timeout");
	cr_assert_eq(lutf_lw_drops(lw, &d), 0);
	cr_assert_geq(d.events, 1, "woken by the re-scan, not the ring buffer");
	/* Reported once: a second sleep does not count the same block again. */
	cr_assert_eq(lutf_lw_sleep(lw, 50), 0);
	cr_assert_eq(write(w.data[1], "x", 1), 1);
	wait_done(&w, 1, 2000);
	lutf_lw_set_cart(lw, slot, LW_NO_CART);
	worker_end(&w);
}

/* A block that happened before the flag was set is found by the re-scan. */
Test(labor_watch, sleep_rescan_finds_earlier_block)
{
	struct lutf_lw *lw = open_lw(NULL);
	struct worker w = {.cpu = -1};
	uint64_t t0;
	uint32_t slot;

	worker_start(&w, ACT_PIPE_READ, 1);
	slot = reg(lw, &w);
	lutf_lw_set_cart(lw, slot, CART);
	worker_go(&w);
	cr_assert(wait_state(lw, slot, LW_STATE_BLOCKED, 2000));
	t0 = now_ns();
	cr_assert_eq(lutf_lw_sleep(lw, 3000), 1);
	cr_assert_lt(now_ns() - t0, 1000000000ULL);
	cr_assert_eq(write(w.data[1], "x", 1), 1);
	wait_done(&w, 1, 2000);
	lutf_lw_set_cart(lw, slot, LW_NO_CART);
	worker_end(&w);
}

/* Pins left by a dead process are replaced by this load's maps. */
Test(labor_watch, stale_pins_replaced)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	uint32_t state_id, prog_id, stale_id;
	char path[128];
	struct stat st;
	int fd, pfd;

	LUTF_REQUIRE("root", lutf_test_is_root(), "loading BPF needs root");
	snprintf(g_pin_dir, sizeof(g_pin_dir), "/sys/fs/bpf/lutf-test-%d", (int)getpid());
	/* The first open mounts /sys/fs/bpf if needed; then leave stale pins. */
	open_lw(NULL);
	lutf_lw_close(g_lw);
	g_lw = NULL;
	cr_assert(mkdir(g_pin_dir, 0700) == 0 || errno == EEXIST);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "stale", 4, 4, 1, NULL);
	cr_assert_geq(fd, 0);
	memset(&info, 0, sizeof(info));
	cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	stale_id = info.id;
	snprintf(path, sizeof(path), "%s/labor_state", g_pin_dir);
	cr_assert_eq(bpf_obj_pin(fd, path), 0);
	snprintf(path, sizeof(path), "%s/labor_events", g_pin_dir);
	cr_assert_eq(bpf_obj_pin(fd, path), 0);
	close(fd);

	open_lw(NULL);
	cr_assert_str_eq(lutf_lw_pin_dir(g_lw), g_pin_dir, "ran unpinned");
	cr_assert_eq(lutf_lw_ids(g_lw, &state_id, &prog_id), 0);
	snprintf(path, sizeof(path), "%s/labor_state", g_pin_dir);
	pfd = bpf_obj_get(path);
	cr_assert_geq(pfd, 0);
	len = sizeof(info);
	memset(&info, 0, sizeof(info));
	cr_assert_eq(bpf_obj_get_info_by_fd(pfd, &info, &len), 0);
	close(pfd);
	cr_assert_eq(info.id, state_id);
	cr_assert_neq(info.id, stale_id);
	lutf_lw_close(g_lw);
	g_lw = NULL;
	cr_assert_eq(stat(g_pin_dir, &st), -1, "pin folder left behind");
}

/* An operator's bpftool dump shows the named fields and the registered tid. */
Test(labor_watch, bpftool_dump_shows_fields)
{
	struct lutf_lw *lw = open_lw(NULL);
	char cmd[256], buf[4096], want[64];
	size_t n = 0, got;
	int tid = (int)syscall(SYS_gettid);
	uint32_t slot;
	FILE *p;

	LUTF_REQUIRE("bpftool", access("/usr/sbin/bpftool", X_OK) == 0, "no /usr/sbin/bpftool");
	cr_assert_eq(lutf_lw_register(lw, getpid(), tid, &slot), 0);
	snprintf(cmd, sizeof(cmd), "/usr/sbin/bpftool -j map dump pinned %s/labor_state 2>&1",
		 g_pin_dir);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	/* Slot 0 comes first; 4 KiB holds several slots. */
	while (n < sizeof(buf) - 1 && (got = fread(buf + n, 1, sizeof(buf) - 1 - n, p)) > 0)
		n += got;
	buf[n] = '\0';
	pclose(p);
	cr_assert_eq(slot, 0);
	snprintf(want, sizeof(want), "\"tid\":%d", tid);
	cr_assert_not_null(strstr(buf, want), "no %s in: %.400s", want, buf);
	cr_assert_not_null(strstr(buf, "\"block_seq\":"), "no field names in: %.400s", buf);
	cr_assert_not_null(strstr(buf, "\"cart\":4294967295"), "in: %.400s", buf);
}

/* run_time_ns / run_cnt with stats enabled by a BPF_ENABLE_STATS fd (restores on close). */
Test(labor_watch, prog_stats_measure_cost)
{
	struct lutf_lw *lw = open_lw(NULL);
	struct worker w = {.cpu = -1, .sleep_ms = 1};
	uint64_t ns0, cnt0, ns1, cnt1;
	uint32_t slot;
	int sfd;

	sfd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	LUTF_REQUIRE("bpf", sfd >= 0, "BPF_ENABLE_STATS refused");
	cr_assert_eq(lutf_lw_prog_stats(lw, &ns0, &cnt0), 0);
	worker_start(&w, ACT_NANOSLEEP, 20);
	slot = reg(lw, &w);
	lutf_lw_set_cart(lw, slot, CART);
	for (int i = 0; i < 20; i++)
		worker_go(&w);
	wait_done(&w, 20, 3000);
	cr_assert_eq(lutf_lw_prog_stats(lw, &ns1, &cnt1), 0);
	close(sfd);
	cr_assert_gt(cnt1, cnt0);
	cr_assert_geq(snap(lw, slot).blocks, 20);
	fprintf(stderr, "labor_watch (%s): %llu runs, %.0f ns per run\n", lutf_lw_attach_kind(lw),
		(unsigned long long)(cnt1 - cnt0), (double)(ns1 - ns0) / (double)(cnt1 - cnt0));
	lutf_lw_set_cart(lw, slot, LW_NO_CART);
	worker_end(&w);
}
