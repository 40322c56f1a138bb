/* SPDX-License-Identifier: MIT */
/*
 * handoff: what labor_watch buys and costs, with the watch modes side by side
 * (eBPF, polling every 20 us, polling every 1 ms, no re-binding): how soon a
 * Cart stuck behind a blocked Labor reaches another Labor, what the Supervisor
 * thread burns, what the sched_switch probe costs per run and per context
 * switch, and the throughput of a blocking workload. Targets are printed,
 * never asserted; a lost Brick or a wrong status makes the program exit 1.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lutf/runtime.h>

#include "common.h"

#define REAP_WAIT_MS 10000	      /* no completion for this long = a lost Brick */
#define HANDOFF_WAIT_NS 2000000000ull /* a hand-off not seen in 2 s = a stall */
#define MAX_STALLS 3		      /* then the mode's hand-off rounds stop */
#define OFF_BLOCK_NS 2000000ull	      /* OFF mode: how long the blocking Brick blocks */
#define SETTLE_NS 200000ull	      /* after a round: the new owner parks (spin_ns is 20 us) */
#define PACE_NS 1000000ull	      /* Supervisor CPU: one Brick per ms */
#define SLEEP_NS 1000000L	      /* blocking workload: each call sleeps 1 ms */
#define SLOW_NS 500000ull	      /* a hand-off this late waited for a Supervisor timeout */
#define STATS_SYSCTL "/proc/sys/kernel/bpf_stats_enabled"

/* The four modes, in table order. */
enum { M_BPF, M_POLL20, M_POLL1MS, M_OFF, N_MODES };

struct mode_def {
	const char *key, *label;
	enum lutf_watch_mode watch;
	uint32_t poll_ns; /* 0: the default */
};

static const struct mode_def modes[N_MODES] = {
    {"bpf", "eBPF", LUTF_WATCH_BPF, 0},
    {"poll_20us", "poll 20 us", LUTF_WATCH_POLL, 20000},
    {"poll_1ms", "poll 1 ms", LUTF_WATCH_POLL, 1000000},
    {"off", "off", LUTF_WATCH_OFF, 0},
};

struct handoff_run {
	bool ran;
	bool fell_back; /* BPF asked, polling in force */
	uint32_t grace_ns;
	uint64_t rounds, handoffs; /* rounds tried; probe Bricks that ran during the block */
	uint64_t stalls;	   /* rounds where no hand-off came within 2 s */
	uint64_t early;		   /* probe ran before the blocker stamped (moved too soon) */
	uint64_t rebinds;
	uint64_t slow;		/* hand-offs over SLOW_NS */
	struct bench_stats lat; /* ns, block stamp to probe entry */
	double p90, min, max;
	double bpf_ns_per_run; /* probe cost during the rounds (BPF only) */
	uint64_t bpf_runs;
	uint64_t wall_ns;
};

struct sup_cpu {
	bool ran, fell_back;
	double busy_pct;	   /* lutf-sup, % of one core, 1000 Bricks/s */
	double busy_ticks_pct;	   /* same from utime+stime (10 ms ticks) */
	double idle_pct;	   /* lutf-sup, runtime alive, no traffic */
	double inflight_pct;	   /* lutf-sup while one computing Brick is always in flight */
	uint64_t inflight_wakeups; /* lutf-sup runs per second then */
	double proc_pct;	   /* whole process at 1000 Bricks/s */
	double rate;		   /* Bricks/s achieved */
	uint64_t wakeups;	   /* lutf-sup context switches (schedstat field 3) per second */
};

struct blocking_run {
	bool ran, fell_back;
	double calls_per_s; /* median over runs */
	uint64_t rebinds;
	double bpf_ns_per_run;
	uint64_t bpf_runs;
};

struct pingpong {
	bool ran;
	double rt_per_s;   /* round trips per second */
	double ns_per_run; /* probe, stats on */
	uint64_t runs;
};

enum { PP_THREADS, PP_PROCS, N_PP };

struct results {
	char machine[128];
	double timer_ns;
	bool quick;
	bool bpf_ok; /* BPF mode came up */
	char attach[8];
	int stats_old;			 /* bpf_stats_enabled as found; -1 unreadable */
	bool stats_on;			 /* we could turn it on */
	struct handoff_run ho[N_MODES];	 /* grace 0 */
	struct handoff_run hod[N_MODES]; /* default grace (BPF and poll 20 us only) */
	struct sup_cpu sup[N_MODES];
	struct blocking_run blk[N_MODES];
	struct pingpong pp_idle[N_PP]; /* probe cost, BPF runtime idle, stats on */
	struct pingpong cs_none[N_PP]; /* throughput, no runtime */
	struct pingpong cs_bpf[N_PP];  /* throughput, BPF runtime alive */
	struct bench_stats wake_same, wake_cross, wake2; /* futex wake-ups, ns */
	double sleep_ns; /* what one 1 ms nanosleep really takes here (median) */
	uint32_t default_grace;
	int errors;
};

static void fail(struct results *r, const char *fmt, const char *what, long v)
{
	if (r->errors++ < 10)
		fprintf(stderr, fmt, what, v);
}

static uint32_t gettid_u32(void)
{
	return (uint32_t)syscall(SYS_gettid);
}

static void futex_wait_u32(uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_u32(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- bpf_stats_enabled ---- */

static int stats_old_value = -1;
static bool stats_touched;

static int read_sysctl(void)
{
	char c = 0;
	int fd = open(STATS_SYSCTL, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c >= '0' && c <= '9' ? c - '0' : -1;
}

/* Async-signal-safe: used from the signal handler too. */
static bool write_sysctl(int v)
{
	char c = (char)('0' + v);
	int fd = open(STATS_SYSCTL, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, &c, 1) == 1;
	close(fd);
	return ok;
}

static void restore_stats(void)
{
	if (stats_touched && stats_old_value >= 0)
		write_sysctl(stats_old_value);
	stats_touched = false;
}

static void on_signal(int sig)
{
	if (stats_touched && stats_old_value >= 0)
		write_sysctl(stats_old_value);
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool stats_set(int v)
{
	if (stats_old_value < 0)
		return false;
	stats_touched = true;
	return write_sysctl(v);
}

/* ---- runtime helpers ---- */

static int make_runtime(const struct mode_def *m, uint32_t carts, uint32_t labors, int64_t grace,
			struct lutf_runtime **rt)
{
	struct lutf_config cfg;

	lutf_config_init(&cfg);
	if (carts)
		cfg.carts = carts;
	if (labors)
		cfg.labors = cfg.labors_max = labors; /* fixed pools, as the issue states */
	cfg.watch = m->watch;
	if (m->poll_ns)
		cfg.poll_ns = m->poll_ns;
	if (grace >= 0)
		cfg.grace_ns = (uint32_t)grace;
	return lutf_runtime_create(&cfg, rt);
}

static bool fell_back(struct lutf_runtime *rt, const struct mode_def *m)
{
	struct lutf_runtime_stats st;

	lutf_runtime_stats(rt, &st);
	return st.watch != m->watch;
}

/* Reap until 'want' completions arrived or one reap timed out. Checks statuses. */
static int reap_n(struct results *r, struct lutf_runtime *rt, int want, const char *what)
{
	struct lutf_completion done[64];
	int got = 0;

	while (got < want) {
		int n = lutf_runtime_reap(rt, done, want - got < 64 ? (unsigned)(want - got) : 64,
					  REAP_WAIT_MS);

		if (n <= 0) {
			fail(r, "handoff: %s: %ld Bricks lost\n", what, (long)(want - got));
			return got;
		}
		for (int i = 0; i < n; i++) {
			if (done[i].result.status != LUTF_STATUS_OK)
				fail(r, "handoff: %s: status %ld\n", what,
				     (long)done[i].result.status);
			lutf_result_release(&done[i].result);
		}
		got += n;
	}
	return got;
}

/* Runtime stats and probe run counters. */
static void bpf_counters(struct lutf_runtime *rt, uint64_t *ns, uint64_t *cnt)
{
	struct lutf_runtime_stats st;

	lutf_runtime_stats(rt, &st);
	*ns = st.bpf_run_ns;
	*cnt = st.bpf_run_cnt;
}

/* ---- 1. hand-off latency ---- */

/* The blocking Brick stamps, then blocks in read(); the probe Brick stamps at
 * entry. Written by Labor threads, read by main after the probe's completion
 * (release/acquire through the engine's completion path; atomics anyway). */
static int block_pipe[2] = {-1, -1};
static uint64_t t_block, t_probe;
static uint32_t tid_block, tid_probe;

static int block_fn(struct lutf_call *call)
{
	char c;

	(void)call;
	__atomic_store_n(&tid_block, gettid_u32(), __ATOMIC_RELAXED);
	__atomic_store_n(&t_block, bench_now_ns(), __ATOMIC_RELEASE);
	while (read(block_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	return 0;
}

static int probe_fn(struct lutf_call *call)
{
	uint64_t now = bench_now_ns();

	(void)call;
	__atomic_store_n(&tid_probe, gettid_u32(), __ATOMIC_RELAXED);
	__atomic_store_n(&t_probe, now, __ATOMIC_RELEASE);
	return 0;
}

static int noop_fn(struct lutf_call *call)
{
	(void)call;
	return 0;
}

/* Wait until every Labor but the Cart's owner is parked, then let the owner
 * park too (it spins spin_ns on its empty Cart first). */
static void settle(struct lutf_runtime *rt, uint32_t labors)
{
	struct lutf_runtime_stats st;
	uint64_t t0 = bench_now_ns();

	do {
		lutf_runtime_stats(rt, &st);
		if (st.labors_parked + 1 >= labors)
			break;
		bench_sleep_ns(20000);
	} while (bench_now_ns() - t0 < 20000000ull);
	bench_sleep_ns(SETTLE_NS);
}

/* One Cart, four Labors. Each round: the blocking Brick, then the probe Brick
 * queued behind it; wait for the probe (or, OFF, sleep through the block);
 * release the blocker; reap both; settle. */
static void run_handoff(struct results *r, int mi, int64_t grace, uint64_t rounds,
			struct handoff_run *out, uint64_t *lat)
{
	const struct mode_def *m = &modes[mi];
	const uint32_t labors = 4;
	struct lutf_request req = {0};
	struct lutf_runtime_stats st;
	struct lutf_runtime *rt;
	uint32_t id_block, id_probe;
	uint64_t n = 0, ns0 = 0, cnt0 = 0, ns1, cnt1, w0;
	int err;

	memset(out, 0, sizeof(*out));
	err = make_runtime(m, 1, labors, grace, &rt);
	if (!err)
		err = lutf_runtime_add_fn(rt, "block", block_fn, NULL, &id_block);
	if (!err)
		err = lutf_runtime_add_fn(rt, "probe", probe_fn, NULL, &id_probe);
	if (err) {
		fail(r, "handoff: %s: runtime setup %ld\n", m->key, err);
		return;
	}
	lutf_runtime_stats(rt, &st);
	out->grace_ns = grace >= 0 ? (uint32_t)grace : r->default_grace;
	out->fell_back = st.watch != m->watch;
	settle(rt, labors);
	bpf_counters(rt, &ns0, &cnt0);
	w0 = bench_now_ns();
	for (uint64_t i = 0; i < rounds && out->stalls < MAX_STALLS; i++) {
		bool probe_done = false;
		int reaped = 0;
		char c = 'x';

		__atomic_store_n(&t_probe, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&t_block, 0, __ATOMIC_RELAXED);
		err = lutf_runtime_submit(rt, id_block, &req, 1);
		if (!err)
			err = lutf_runtime_submit(rt, id_probe, &req, 2);
		if (err) {
			fail(r, "handoff: %s: submit %ld\n", m->key, err);
			if (write(block_pipe[1], &c, 1) != 1)
				fail(r, "handoff: %s: pipe write %ld\n", m->key, errno);
			break;
		}
		out->rounds++;
		if (m->watch == LUTF_WATCH_OFF) {
			bench_sleep_ns(OFF_BLOCK_NS);
		} else {
			uint64_t t0 = bench_now_ns();

			/* The probe's completion is the only one that can come
			 * while the blocker is blocked. */
			while (!probe_done && bench_now_ns() - t0 < HANDOFF_WAIT_NS) {
				struct lutf_completion done;
				int got = lutf_runtime_reap(rt, &done, 1, 100);

				if (got <= 0)
					continue;
				if (done.result.status != LUTF_STATUS_OK)
					fail(r, "handoff: %s: status %ld\n", m->key,
					     (long)done.result.status);
				probe_done = done.user_data == 2;
				if (!probe_done)
					fail(r,
					     "handoff: %s: blocker completed while blocked %ld\n",
					     m->key, (long)done.user_data);
				lutf_result_release(&done.result);
				reaped++;
			}
			if (!probe_done)
				out->stalls++;
		}
		if (write(block_pipe[1], &c, 1) != 1)
			fail(r, "handoff: %s: pipe write %ld\n", m->key, errno);
		if (reap_n(r, rt, 2 - reaped, m->key) != 2 - reaped)
			break;
		{
			uint64_t tb = __atomic_load_n(&t_block, __ATOMIC_ACQUIRE);
			uint64_t tp = __atomic_load_n(&t_probe, __ATOMIC_ACQUIRE);

			if (!tb || !tp) {
				fail(r, "handoff: %s: a Brick did not run (round %ld)\n", m->key,
				     (long)i);
			} else if (m->watch == LUTF_WATCH_OFF || probe_done) {
				if (tp < tb)
					out->early++;
				if (probe_done && tp > tb && tp - tb > SLOW_NS)
					out->slow++;
				lat[n++] = tp > tb ? tp - tb : 0;
				if (probe_done && __atomic_load_n(&tid_probe, __ATOMIC_RELAXED) ==
						      __atomic_load_n(&tid_block, __ATOMIC_RELAXED))
					fail(r, "handoff: %s: probe ran on the blocked Labor %ld\n",
					     m->key, (long)i);
			}
		}
		settle(rt, labors);
	}
	out->wall_ns = bench_now_ns() - w0;
	bpf_counters(rt, &ns1, &cnt1);
	lutf_runtime_stats(rt, &st);
	if (st.submitted != st.completed)
		fail(r, "handoff: %s: %ld Bricks submitted but not completed\n", m->key,
		     (long)(st.submitted - st.completed));
	out->rebinds = st.rebinds;
	out->handoffs = m->watch == LUTF_WATCH_OFF ? 0 : n;
	if (cnt1 > cnt0) {
		out->bpf_runs = cnt1 - cnt0;
		out->bpf_ns_per_run = (double)(ns1 - ns0) / (double)(cnt1 - cnt0);
	} else {
		out->bpf_ns_per_run = NAN;
	}
	lutf_runtime_destroy(rt);
	bench_stats(lat, n, &out->lat);
	out->p90 = n ? (double)lat[(size_t)ceil(0.9 * (double)n) - 1] : NAN;
	out->min = n ? (double)lat[0] : NAN;
	out->max = n ? (double)lat[n - 1] : NAN;
	out->ran = n > 0;
}

/* ---- futex wake chains: the floor under a hand-off ---- */

static void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

struct chain {
	uint32_t word[2];
	uint32_t done;
	uint32_t stop;
	uint64_t t_end;
	int hops;
};

struct chain_arg {
	struct chain *ch;
	int i;
	int cpu; /* -1: not pinned */
};

static void *chain_main(void *arg)
{
	struct chain_arg *a = arg;
	struct chain *ch = a->ch;
	uint32_t seen = __atomic_load_n(&ch->word[a->i], __ATOMIC_ACQUIRE);

	pin_self(a->cpu);
	for (;;) {
		uint32_t v;

		futex_wait_u32(&ch->word[a->i], seen);
		v = __atomic_load_n(&ch->word[a->i], __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&ch->stop, __ATOMIC_ACQUIRE))
			break;
		if (v == seen)
			continue; /* spurious */
		seen = v;
		if (a->i + 1 < ch->hops) {
			__atomic_add_fetch(&ch->word[a->i + 1], 1, __ATOMIC_RELEASE);
			futex_wake_u32(&ch->word[a->i + 1]);
		} else {
			__atomic_store_n(&ch->t_end, bench_now_ns(), __ATOMIC_RELEASE);
			__atomic_add_fetch(&ch->done, 1, __ATOMIC_RELEASE);
			futex_wake_u32(&ch->done);
		}
	}
	return NULL;
}

/* main wakes thread 0 (blocked in futex_wait), which wakes thread 1, ...; the
 * last stamps. Same shape as Supervisor wake + parked Labor wake. With one
 * hop, main and the thread can be pinned to CPUs (-1: not pinned). */
static void run_wake_chain(struct results *r, int hops, int cpu_main, int cpu_thr, uint64_t rounds,
			   uint64_t *lat, struct bench_stats *out)
{
	struct chain ch = {.hops = hops};
	struct chain_arg args[2];
	cpu_set_t all;
	pthread_t t[2];
	uint64_t n = 0;
	int started = 0;

	if (sched_getaffinity(0, sizeof(all), &all) != 0)
		cpu_main = -1;
	pin_self(cpu_main);
	for (int i = 0; i < hops; i++) {
		args[i] = (struct chain_arg){&ch, i, cpu_thr};
		if (pthread_create(&t[i], NULL, chain_main, &args[i]) != 0) {
			fail(r, "handoff: %s: %ld\n", "wake chain thread", i);
			goto out;
		}
		started++;
	}
	bench_sleep_ns(1000000);
	for (uint64_t k = 0; k < rounds; k++) {
		uint32_t d = __atomic_load_n(&ch.done, __ATOMIC_ACQUIRE);
		uint64_t t0 = bench_now_ns();

		__atomic_add_fetch(&ch.word[0], 1, __ATOMIC_RELEASE);
		futex_wake_u32(&ch.word[0]);
		while (__atomic_load_n(&ch.done, __ATOMIC_ACQUIRE) == d)
			futex_wait_u32(&ch.done, d);
		lat[n++] = __atomic_load_n(&ch.t_end, __ATOMIC_ACQUIRE) - t0;
		bench_sleep_ns(100000); /* everybody back asleep */
	}
out:
	__atomic_store_n(&ch.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < started; i++) {
		__atomic_add_fetch(&ch.word[i], 1, __ATOMIC_RELEASE);
		futex_wake_u32(&ch.word[i]);
		pthread_join(t[i], NULL);
	}
	if (cpu_main >= 0)
		sched_setaffinity(0, sizeof(all), &all);
	bench_stats(lat, n, out);
}

/* ---- 2. Supervisor CPU ---- */

/* Computes (never blocks) until spin_until. */
static uint64_t spin_until;

static int spin_fn(struct lutf_call *call)
{
	(void)call;
	while (bench_now_ns() < __atomic_load_n(&spin_until, __ATOMIC_RELAXED))
		__builtin_ia32_pause();
	return 0;
}

struct task_cpu {
	uint64_t ns;	   /* schedstat: ns on CPU */
	uint64_t ticks;	   /* utime + stime, clock ticks */
	uint64_t switches; /* schedstat: times run */
};

/* The tid of the thread named name in this process, or -1. */
static int find_thread(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int found = -1;

	if (!d)
		return -1;
	while (found < 0 && (e = readdir(d)) != NULL) {
		char path[300], comm[32] = "";
		int fd;
		ssize_t k;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		k = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (k <= 0)
			continue;
		comm[k] = 0;
		if (comm[k - 1] == '\n')
			comm[k - 1] = 0;
		if (strcmp(comm, name) == 0)
			found = atoi(e->d_name);
	}
	closedir(d);
	return found;
}

static int read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0)
		return -1;
	k = read(fd, buf, cap - 1);
	close(fd);
	if (k <= 0)
		return -1;
	buf[k] = 0;
	return 0;
}

static int task_cpu(int tid, struct task_cpu *tc)
{
	char path[64], buf[1024];
	unsigned long long ns = 0, delay = 0, cnt = 0, ut = 0, stt = 0;
	const char *p;

	memset(tc, 0, sizeof(*tc));
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
	if (read_small(path, buf, sizeof(buf)) == 0 &&
	    sscanf(buf, "%llu %llu %llu", &ns, &delay, &cnt) == 3) {
		tc->ns = ns;
		tc->switches = cnt;
	}
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	if (read_small(path, buf, sizeof(buf)) != 0)
		return -1;
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) != 2)
		return -1;
	tc->ticks = ut + stt;
	return 0;
}

static void run_sup_cpu(struct results *r, int mi, uint64_t busy_ns, uint64_t idle_ns,
			struct sup_cpu *out)
{
	const struct mode_def *m = &modes[mi];
	struct lutf_request req = {0};
	struct lutf_result res;
	struct lutf_runtime *rt;
	struct task_cpu a, b;
	struct timespec ts;
	uint64_t t0, t1, c0, c1, n, i;
	long hz = sysconf(_SC_CLK_TCK);
	uint32_t id, id_spin;
	int tid, err;

	memset(out, 0, sizeof(*out));
	err = make_runtime(m, 0, 0, -1, &rt);
	if (!err)
		err = lutf_runtime_add_fn(rt, "noop", noop_fn, NULL, &id);
	if (!err)
		err = lutf_runtime_add_fn(rt, "spin", spin_fn, NULL, &id_spin);
	if (err) {
		fail(r, "handoff: %s: runtime setup %ld\n", m->key, err);
		return;
	}
	out->fell_back = fell_back(rt, m);
	tid = find_thread("lutf-sup");
	if (tid < 0) {
		fail(r, "handoff: %s: no lutf-sup thread %ld\n", m->key, 0);
		lutf_runtime_destroy(rt);
		return;
	}
	for (int k = 0; k < 20; k++) { /* warm-up */
		lutf_runtime_invoke(rt, id, &req, &res);
		lutf_result_release(&res);
	}
	bench_sleep_ns(50000000ull); /* the Supervisor goes back to sleep */

	/* Idle: runtime alive, nothing submitted. */
	task_cpu(tid, &a);
	t0 = bench_now_ns();
	bench_sleep_ns(idle_ns);
	task_cpu(tid, &b);
	t1 = bench_now_ns();
	out->idle_pct = 100.0 * (double)(b.ns - a.ns) / (double)(t1 - t0);

	/* 1000 Bricks/s, paced on absolute deadlines. */
	n = busy_ns / PACE_NS;
	task_cpu(tid, &a);
	c0 = bench_cpu_self_ns();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		uint64_t due = t0 + (i + 1) * PACE_NS;

		ts.tv_sec = (time_t)(due / 1000000000ull);
		ts.tv_nsec = (long)(due % 1000000000ull);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		err = lutf_runtime_invoke(rt, id, &req, &res);
		if (err || res.status != LUTF_STATUS_OK)
			fail(r, "handoff: %s: invoke status %ld\n", m->key,
			     err ? (long)err : (long)res.status);
		lutf_result_release(&res);
	}
	t1 = bench_now_ns();
	task_cpu(tid, &b);
	c1 = bench_cpu_self_ns();
	out->busy_pct = 100.0 * (double)(b.ns - a.ns) / (double)(t1 - t0);
	out->busy_ticks_pct =
	    100.0 * (double)(b.ticks - a.ticks) * (1e9 / (double)hz) / (double)(t1 - t0);
	out->proc_pct = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
	out->rate = (double)n * 1e9 / (double)(t1 - t0);
	out->wakeups = (uint64_t)((double)(b.switches - a.switches) * 1e9 / (double)(t1 - t0));

	/* One Brick always in flight, computing: the Supervisor's steady tick. */
	__atomic_store_n(&spin_until, bench_now_ns() + idle_ns + 20000000ull, __ATOMIC_RELAXED);
	err = lutf_runtime_submit(rt, id_spin, &req, 0);
	if (err) {
		fail(r, "handoff: %s: spin submit %ld\n", m->key, err);
	} else {
		bench_sleep_ns(10000000ull); /* it runs */
		task_cpu(tid, &a);
		t0 = bench_now_ns();
		bench_sleep_ns(idle_ns);
		task_cpu(tid, &b);
		t1 = bench_now_ns();
		out->inflight_pct = 100.0 * (double)(b.ns - a.ns) / (double)(t1 - t0);
		out->inflight_wakeups =
		    (uint64_t)((double)(b.switches - a.switches) * 1e9 / (double)(t1 - t0));
		reap_n(r, rt, 1, m->key);
	}
	out->ran = true;
	lutf_runtime_destroy(rt);
}

/* ---- 3. probe cost and context-switch throughput: pipe ping-pong ---- */

struct pp_side {
	int rfd, wfd;
	int cpu; /* -1: not pinned */
	uint64_t until_ns;
	bool leader;
	uint64_t trips;
};

/* The leader writes a byte and waits for the echo, until until_ns; then it
 * writes 'q', which the follower echoes and stops on. */
static void pp_loop(struct pp_side *s)
{
	char c = 'p';

	pin_self(s->cpu);
	if (s->leader) {
		while (bench_now_ns() < s->until_ns) {
			for (int k = 0; k < 64; k++) {
				if (write(s->wfd, &c, 1) != 1 || read(s->rfd, &c, 1) != 1)
					return;
			}
			s->trips += 64;
		}
		c = 'q';
		if (write(s->wfd, &c, 1) == 1 && read(s->rfd, &c, 1) == 1)
			return;
		return;
	}
	for (;;) {
		if (read(s->rfd, &c, 1) != 1 || write(s->wfd, &c, 1) != 1 || c == 'q')
			return;
	}
}

static void *pp_thread(void *arg)
{
	pp_loop(arg);
	return NULL;
}

/* Round trips per second between two threads of this process (procs false)
 * or two forked processes (procs true), both pinned to cpu. Returns -1 on error. */
static double pingpong(int cpu, bool procs, uint64_t dur_ns)
{
	int ab[2], ba[2];
	struct pp_side lead, follow;
	uint64_t t0, t1;
	double rate = -1;

	if (pipe2(ab, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(ba, O_CLOEXEC) != 0) {
		close(ab[0]);
		close(ab[1]);
		return -1;
	}
	lead = (struct pp_side){.rfd = ba[0], .wfd = ab[1], .cpu = cpu, .leader = true};
	follow = (struct pp_side){.rfd = ab[0], .wfd = ba[1], .cpu = cpu};
	if (!procs) {
		pthread_t t1h, t2h;

		t0 = bench_now_ns();
		lead.until_ns = t0 + dur_ns;
		if (pthread_create(&t2h, NULL, pp_thread, &follow) != 0)
			goto out;
		if (pthread_create(&t1h, NULL, pp_thread, &lead) != 0) {
			char q = 'q';

			if (write(ab[1], &q, 1) != 1)
				abort();
			pthread_join(t2h, NULL);
			goto out;
		}
		pthread_join(t1h, NULL);
		pthread_join(t2h, NULL);
		t1 = bench_now_ns();
		rate = (double)lead.trips * 1e9 / (double)(t1 - t0);
	} else {
		/* The leader's count comes back through a third pipe. */
		int res[2];
		pid_t p1, p2;
		int st1 = 0, st2 = 0;

		if (pipe2(res, O_CLOEXEC) != 0)
			goto out;
		t0 = bench_now_ns();
		lead.until_ns = t0 + dur_ns;
		p2 = fork();
		if (p2 == 0) {
			pp_loop(&follow);
			_exit(0);
		}
		p1 = p2 < 0 ? -1 : fork();
		if (p1 == 0) {
			pp_loop(&lead);
			_exit(write(res[1], &lead.trips, sizeof(lead.trips)) ==
				      (ssize_t)sizeof(lead.trips)
				  ? 0
				  : 1);
		}
		if (p1 < 0 && p2 > 0) {
			char q = 'q';

			if (write(ab[1], &q, 1) != 1)
				kill(p2, SIGKILL);
		}
		if (p1 > 0)
			waitpid(p1, &st1, 0);
		if (p2 > 0)
			waitpid(p2, &st2, 0);
		t1 = bench_now_ns();
		if (p1 > 0 && p2 > 0 && WIFEXITED(st1) && WEXITSTATUS(st1) == 0 &&
		    read(res[0], &lead.trips, sizeof(lead.trips)) == (ssize_t)sizeof(lead.trips))
			rate = (double)lead.trips * 1e9 / (double)(t1 - t0);
		close(res[0]);
		close(res[1]);
	}
out:
	close(ab[0]);
	close(ab[1]);
	close(ba[0]);
	close(ba[1]);
	return rate;
}

/* A CPU this process may use (the last one), or -1. */
static int some_cpu(void)
{
	cpu_set_t set;
	int last = -1;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			last = c;
	return last;
}

/* Context-switch throughput with no runtime and with a BPF runtime alive and
 * idle; alternated, median of reps. Stats as found (normally off). */
static void run_cs_throughput(struct results *r, int reps, uint64_t dur_ns)
{
	double v[N_PP][2][8];
	int cpu = some_cpu();

	for (int k = 0; k < reps; k++) {
		for (int with = 0; with < 2; with++) {
			struct lutf_runtime *rt = NULL;

			if (with) {
				if (make_runtime(&modes[M_BPF], 1, 4, -1, &rt) != 0) {
					fail(r, "handoff: %s: %ld\n", "cs runtime", 0);
					return;
				}
				if (fell_back(rt, &modes[M_BPF])) {
					lutf_runtime_destroy(rt);
					return; /* nothing to compare */
				}
				bench_sleep_ns(20000000ull); /* Labors parked */
			}
			for (int p = 0; p < N_PP; p++) {
				v[p][with][k] = pingpong(cpu, p == PP_PROCS, dur_ns);
				if (v[p][with][k] < 0)
					fail(r, "handoff: %s: ping-pong failed %ld\n", "cs", p);
			}
			if (rt)
				lutf_runtime_destroy(rt);
		}
	}
	for (int p = 0; p < N_PP; p++) {
		r->cs_none[p].rt_per_s = bench_median_d(v[p][0], (size_t)reps);
		r->cs_bpf[p].rt_per_s = bench_median_d(v[p][1], (size_t)reps);
		r->cs_none[p].ran = r->cs_bpf[p].ran = true;
	}
}

/* Probe cost per run while only non-Labor threads switch: a BPF runtime alive
 * and idle; the ping-pong in this process, then in two forked processes. */
static void run_probe_idle(struct results *r, uint64_t dur_ns)
{
	struct lutf_runtime *rt;
	int cpu = some_cpu();

	if (make_runtime(&modes[M_BPF], 1, 4, -1, &rt) != 0) {
		fail(r, "handoff: %s: %ld\n", "probe runtime", 0);
		return;
	}
	if (fell_back(rt, &modes[M_BPF])) {
		lutf_runtime_destroy(rt);
		return;
	}
	bench_sleep_ns(20000000ull);
	for (int p = 0; p < N_PP; p++) {
		uint64_t ns0, cnt0, ns1, cnt1;
		double rate;

		bpf_counters(rt, &ns0, &cnt0);
		rate = pingpong(cpu, p == PP_PROCS, dur_ns);
		bpf_counters(rt, &ns1, &cnt1);
		if (rate < 0)
			fail(r, "handoff: %s: ping-pong failed %ld\n", "probe", p);
		r->pp_idle[p].rt_per_s = rate;
		r->pp_idle[p].runs = cnt1 - cnt0;
		r->pp_idle[p].ns_per_run =
		    cnt1 > cnt0 ? (double)(ns1 - ns0) / (double)(cnt1 - cnt0) : NAN;
		r->pp_idle[p].ran = cnt1 > cnt0;
	}
	lutf_runtime_destroy(rt);
}

/* ---- 4. blocking workload ---- */

static int sleep_fn(struct lutf_call *call)
{
	struct timespec ts = {0, SLEEP_NS};

	(void)call;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return 0;
}

static double blocking_once(struct results *r, int mi, int calls, struct blocking_run *out,
			    uint64_t *bns, uint64_t *bcnt)
{
	const struct mode_def *m = &modes[mi];
	struct lutf_request req = {0};
	struct lutf_runtime_stats st;
	struct lutf_runtime *rt;
	uint64_t t0, wall, ns0, cnt0, ns1, cnt1;
	uint32_t id;
	int err, got;

	err = make_runtime(m, 2, 16, -1, &rt);
	if (!err)
		err = lutf_runtime_add_fn(rt, "sleep", sleep_fn, NULL, &id);
	if (err) {
		fail(r, "handoff: %s: runtime setup %ld\n", m->key, err);
		return NAN;
	}
	out->fell_back = fell_back(rt, m);
	bench_sleep_ns(20000000ull);
	bpf_counters(rt, &ns0, &cnt0);
	t0 = bench_now_ns();
	for (int i = 0; i < calls; i++) {
		err = lutf_runtime_submit(rt, id, &req, (uint64_t)i);
		if (err) {
			fail(r, "handoff: %s: blocking submit %ld\n", m->key, err);
			calls = i;
			break;
		}
	}
	got = reap_n(r, rt, calls, m->key);
	wall = bench_now_ns() - t0;
	bpf_counters(rt, &ns1, &cnt1);
	*bns += ns1 - ns0;
	*bcnt += cnt1 - cnt0;
	lutf_runtime_stats(rt, &st);
	out->rebinds += st.rebinds;
	lutf_runtime_destroy(rt);
	return got == calls && calls ? (double)calls * 1e9 / (double)wall : NAN;
}

static void run_blocking(struct results *r, int mi, int calls, int runs, struct blocking_run *out)
{
	double v[8];
	uint64_t ns = 0, cnt = 0;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < runs; i++)
		v[i] = blocking_once(r, mi, calls, out, &ns, &cnt);
	out->calls_per_s = bench_median_d(v, (size_t)runs);
	out->rebinds /= (uint64_t)runs;
	out->bpf_runs = cnt;
	out->bpf_ns_per_run = cnt ? (double)ns / (double)cnt : NAN;
	out->ran = true;
}

/* ---- report ---- */

static int targets(const struct results *r, struct bench_target *t)
{
	const struct handoff_run *b = &r->ho[M_BPF], *p = &r->ho[M_POLL20];
	bool bpf = r->bpf_ok && b->ran;
	double ratio = p->lat.median / b->lat.median;
	double blk = r->blk[M_BPF].calls_per_s / r->blk[M_OFF].calls_per_s;
	double probe_busy = b->bpf_ns_per_run;
	double probe_other = r->pp_idle[PP_PROCS].ns_per_run;
	double probe_same = r->pp_idle[PP_THREADS].ns_per_run;
	int n = 0;

#define T(k, txt, v, lim, ok, ran, u) t[n++] = (struct bench_target){k, txt, v, lim, ok, u, !(ran)}
	T("handoff_median_us", "eBPF hand-off median <= 10 us (grace 0)", b->lat.median / 1e3, 10,
	  b->lat.median <= 10000, bpf, "us");
	T("handoff_p99_us", "eBPF hand-off p99 <= 60 us (grace 0)", b->lat.p99 / 1e3, 60,
	  b->lat.p99 <= 60000, bpf, "us");
	T("handoff_vs_poll20", "median >= 5x lower than poll 20 us", ratio, 5, ratio >= 5,
	  bpf && p->ran, "x");
	T("sup_cpu_bpf_pct", "Supervisor CPU, eBPF, 1000 Bricks/s < 1%", r->sup[M_BPF].busy_pct, 1,
	  r->sup[M_BPF].busy_pct < 1, r->bpf_ok && r->sup[M_BPF].ran, "%");
	T("probe_ns_labors", "probe < 200 ns/run, Labors blocking", probe_busy, 200,
	  probe_busy < 200, bpf && !isnan(probe_busy) && r->stats_on, "ns");
	T("probe_ns_other_proc", "probe < 100 ns/run, other process", probe_other, 100,
	  probe_other < 100, r->pp_idle[PP_PROCS].ran && r->stats_on, "ns");
	T("probe_ns_same_proc", "probe < 100 ns/run, non-Labor thread", probe_same, 100,
	  probe_same < 100, r->pp_idle[PP_THREADS].ran && r->stats_on, "ns");
	T("blocking_bpf_vs_off", "blocking workload eBPF >= 6x off", blk, 6, blk >= 6,
	  r->bpf_ok && r->blk[M_BPF].ran && !r->blk[M_BPF].fell_back, "x");
#undef T
	return n;
}

#define COLW 14

static void row_label(const char *label)
{
	printf("%-40s", label);
}

static void cell(const char *s)
{
	printf(" %*s", COLW, s);
}

static void print_handoff_row(const struct results *r, const struct handoff_run *h, int which)
{
	char b[40], w[24];

	for (int mi = 0; mi < N_MODES; mi++) {
		const struct handoff_run *x = &h[mi];

		if (!x->ran) {
			cell("-");
			continue;
		}
		if (modes[mi].watch == LUTF_WATCH_OFF) {
			/* No hand-off: the probe waits for the whole block. */
			if (which == 0)
				snprintf(b, sizeof(b), "never");
			else if (which == 1)
				snprintf(b, sizeof(b), "(%s)",
					 bench_fmt_ns(w, sizeof(w), x->lat.median));
			else
				snprintf(b, sizeof(b), "-");
			cell(b);
			continue;
		}
		if (x->fell_back && mi == M_BPF) {
			cell("n/a (poll)");
			continue;
		}
		switch (which) {
		case 0:
			bench_fmt_ns(b, sizeof(b), x->lat.median);
			break;
		case 1:
			bench_fmt_ns(b, sizeof(b), x->lat.p99);
			break;
		case 2:
			bench_fmt_ns(b, sizeof(b), x->p90);
			break;
		case 4:
			snprintf(b, sizeof(b), "%llu", (unsigned long long)x->slow);
			break;
		default:
			snprintf(b, sizeof(b), "%llu/%llu", (unsigned long long)x->handoffs,
				 (unsigned long long)x->rounds);
			break;
		}
		cell(b);
	}
	(void)r;
	printf("\n");
}

static void print_table(const struct results *r)
{
	struct bench_target t[12];
	int nt = targets(r, t);
	char b[64];

	printf("lutf labor_watch benchmark%s: %s; timer overhead %.1f ns per read\n",
	       r->quick ? " (--quick)" : "", r->machine, r->timer_ns);
	printf("BPF mode: %s%s%s; kernel.bpf_stats_enabled was %d, %s\n\n",
	       r->bpf_ok ? "loaded, " : "not available (runtime fell back to polling)",
	       r->bpf_ok ? r->attach : "", "", r->stats_old,
	       r->stats_on ? "set to 1 for the probe figures, restored after"
	       : r->bpf_ok ? "could not be set: probe figures skipped"
			   : "left alone");
	row_label("");
	for (int mi = 0; mi < N_MODES; mi++)
		cell(modes[mi].label);
	printf("\n");
	printf("Hand-off: block stamp -> next Brick of the Cart starts on another Labor\n");
	printf("(1 Cart, 4 Labors; grace 0)\n");
	row_label("  median");
	print_handoff_row(r, r->ho, 0);
	row_label("  p90");
	print_handoff_row(r, r->ho, 2);
	row_label("  p99 (off: median wait for a 2 ms block)");
	print_handoff_row(r, r->ho, 1);
	row_label("  hand-offs / rounds");
	print_handoff_row(r, r->ho, 3);
	row_label("  hand-offs over 500 us");
	print_handoff_row(r, r->ho, 4);
	printf("(default grace %u us)\n", r->default_grace / 1000);
	row_label("  median");
	print_handoff_row(r, r->hod, 0);
	row_label("  p99");
	print_handoff_row(r, r->hod, 1);
	row_label("  hand-offs / rounds");
	print_handoff_row(r, r->hod, 3);
	row_label("  hand-offs over 500 us");
	print_handoff_row(r, r->hod, 4);

	printf("Supervisor thread CPU, %% of one core (schedstat)\n");
	row_label("  1000 no-op Bricks/s");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.3f%%", r->sup[mi].busy_pct);
		cell(r->sup[mi].ran ? (r->sup[mi].fell_back ? "n/a (poll)" : b) : "-");
	}
	printf("\n");
	row_label("    same, utime+stime (10 ms ticks)");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.2f%%", r->sup[mi].busy_ticks_pct);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("    lutf-sup runs per second");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%llu", (unsigned long long)r->sup[mi].wakeups);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("    whole process");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.2f%%", r->sup[mi].proc_pct);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("  1 computing Brick always in flight");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.2f%%", r->sup[mi].inflight_pct);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("    lutf-sup runs per second");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%llu", (unsigned long long)r->sup[mi].inflight_wakeups);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("  idle (runtime alive, no traffic)");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.3f%%", r->sup[mi].idle_pct);
		cell(r->sup[mi].ran && !r->sup[mi].fell_back ? b : "-");
	}
	printf("\n");

	printf("Blocking workload: 2 Carts, 16 Labors, sleep 1 ms a call (%.3f ms measured),\n"
	       "all submitted at once; median of runs\n",
	       r->sleep_ns / 1e6);
	row_label("  calls/s");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.0f", r->blk[mi].calls_per_s);
		cell(r->blk[mi].ran ? (r->blk[mi].fell_back ? "n/a (poll)" : b) : "-");
	}
	printf("\n");
	row_label("  vs off");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.2fx", r->blk[mi].calls_per_s / r->blk[M_OFF].calls_per_s);
		cell(r->blk[mi].ran && !r->blk[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("  ceiling: Labors (2 off, 16 on) / sleep");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%.0f", (mi == M_OFF ? 2 : 16) * 1e9 / r->sleep_ns);
		cell(r->blk[mi].ran && !r->blk[mi].fell_back ? b : "-");
	}
	printf("\n");
	row_label("  rebinds per run");
	for (int mi = 0; mi < N_MODES; mi++) {
		snprintf(b, sizeof(b), "%llu", (unsigned long long)r->blk[mi].rebinds);
		cell(r->blk[mi].ran && !r->blk[mi].fell_back ? b : "-");
	}
	printf("\n\n");

	printf("Probe cost (bpf_run_ns / bpf_run_cnt, stats on; all switches on the machine):\n");
	if (!r->bpf_ok || !r->stats_on) {
		printf("  skipped: %s\n", !r->bpf_ok ? "BPF not available"
						     : "kernel.bpf_stats_enabled could not be set");
	} else {
		printf("  %-58s %10s %12s\n", "while", "ns/run", "runs");
		printf("  %-58s %10.1f %12llu\n", "Labors blocking and waking (hand-off rounds)",
		       r->ho[M_BPF].bpf_ns_per_run, (unsigned long long)r->ho[M_BPF].bpf_runs);
		printf("  %-58s %10.1f %12llu\n", "Labors blocking and waking (blocking workload)",
		       r->blk[M_BPF].bpf_ns_per_run, (unsigned long long)r->blk[M_BPF].bpf_runs);
		printf("  %-58s %10.1f %12llu\n",
		       "ping-pong, 2 threads of the Labors' process (hash miss)",
		       r->pp_idle[PP_THREADS].ns_per_run,
		       (unsigned long long)r->pp_idle[PP_THREADS].runs);
		printf("  %-58s %10.1f %12llu\n", "ping-pong, 2 forked processes (tgid filter)",
		       r->pp_idle[PP_PROCS].ns_per_run,
		       (unsigned long long)r->pp_idle[PP_PROCS].runs);
	}
	printf("\nContext-switch throughput: pipe ping-pong, both sides pinned to one CPU,\n"
	       "round trips/s (2 switches each), median; stats as found (%d)\n",
	       r->stats_old);
	printf("  %-36s %14s %16s %9s\n", "pair", "no runtime", "BPF runtime idle", "change");
	for (int p = 0; p < N_PP; p++) {
		if (!r->cs_none[p].ran) {
			printf("  %-36s %14s\n", p ? "2 processes" : "2 threads (Labors' process)",
			       "skipped (no BPF)");
			continue;
		}
		printf("  %-36s %14.0f %16.0f %8.1f%%\n",
		       p ? "2 processes" : "2 threads (Labors' process)", r->cs_none[p].rt_per_s,
		       r->cs_bpf[p].rt_per_s,
		       100.0 * (r->cs_bpf[p].rt_per_s / r->cs_none[p].rt_per_s - 1.0));
	}
	printf("\nFloor: futex wake-ups (a thread blocked in futex_wait is woken; time until it\n"
	       "runs and stamps). A hand-off needs two in a row (lutf-sup, then a Labor).\n");
	printf("  %-44s %10s %10s\n", "", "median", "p99");
	printf("  %-44s %10s", "1 wake-up, both on one CPU",
	       bench_fmt_ns(b, sizeof(b), r->wake_same.median));
	printf(" %10s\n", bench_fmt_ns(b, sizeof(b), r->wake_same.p99));
	printf("  %-44s %10s", "1 wake-up, wakee on the other (idle) CPU",
	       bench_fmt_ns(b, sizeof(b), r->wake_cross.median));
	printf(" %10s\n", bench_fmt_ns(b, sizeof(b), r->wake_cross.p99));
	printf("  %-44s %10s", "2 wake-ups in a row, not pinned",
	       bench_fmt_ns(b, sizeof(b), r->wake2.median));
	printf(" %10s\n", bench_fmt_ns(b, sizeof(b), r->wake2.p99));

	bench_targets_print(t, nt);
	printf("\nerrors: %d (lost Bricks, wrong statuses, Bricks that did not run)\n", r->errors);
}

static void json_handoff(struct bench_json *j, const char *key, const struct handoff_run *h)
{
	bench_json_obj(j, key);
	for (int mi = 0; mi < N_MODES; mi++) {
		const struct handoff_run *x = &h[mi];

		if (!x->ran)
			continue;
		bench_json_obj(j, modes[mi].key);
		bench_json_bool(j, "fell_back_to_poll", x->fell_back);
		bench_json_u64(j, "grace_ns", x->grace_ns);
		bench_json_u64(j, "rounds", x->rounds);
		bench_json_u64(j, "handoffs", x->handoffs);
		bench_json_u64(j, "stalls", x->stalls);
		bench_json_u64(j, "early", x->early);
		bench_json_u64(j, "over_500us", x->slow);
		bench_json_u64(j, "rebinds", x->rebinds);
		bench_json_num(j,
			       modes[mi].watch == LUTF_WATCH_OFF ? "wait_median_ns" : "median_ns",
			       x->lat.median);
		bench_json_num(j, "p90_ns", x->p90);
		bench_json_num(j, "p99_ns", x->lat.p99);
		bench_json_num(j, "mean_ns", x->lat.mean);
		bench_json_num(j, "min_ns", x->min);
		bench_json_num(j, "max_ns", x->max);
		if (modes[mi].watch == LUTF_WATCH_BPF) {
			bench_json_num(j, "bpf_ns_per_run", x->bpf_ns_per_run);
			bench_json_u64(j, "bpf_runs", x->bpf_runs);
		}
		bench_json_close_obj(j);
	}
	bench_json_close_obj(j);
}

static void print_json(const struct results *r)
{
	struct bench_target t[12];
	int nt = targets(r, t);
	struct bench_json j;

	bench_json_begin(&j, stdout);
	bench_json_str(&j, "bench", "handoff");
	bench_json_str(&j, "machine", r->machine);
	bench_json_bool(&j, "quick", r->quick);
	bench_json_num(&j, "timer_overhead_ns", r->timer_ns);
	bench_json_bool(&j, "bpf", r->bpf_ok);
	bench_json_str(&j, "bpf_attach", r->attach);
	bench_json_num(&j, "bpf_stats_enabled_was", r->stats_old);
	bench_json_bool(&j, "bpf_stats_set", r->stats_on);
	bench_json_u64(&j, "default_grace_ns", r->default_grace);
	json_handoff(&j, "handoff_grace0", r->ho);
	json_handoff(&j, "handoff_default_grace", r->hod);
	bench_json_obj(&j, "supervisor_cpu");
	for (int mi = 0; mi < N_MODES; mi++) {
		const struct sup_cpu *s = &r->sup[mi];

		if (!s->ran)
			continue;
		bench_json_obj(&j, modes[mi].key);
		bench_json_bool(&j, "fell_back_to_poll", s->fell_back);
		bench_json_num(&j, "busy_pct", s->busy_pct);
		bench_json_num(&j, "busy_ticks_pct", s->busy_ticks_pct);
		bench_json_u64(&j, "sup_runs_per_s", s->wakeups);
		bench_json_num(&j, "process_pct", s->proc_pct);
		bench_json_num(&j, "idle_pct", s->idle_pct);
		bench_json_num(&j, "inflight_pct", s->inflight_pct);
		bench_json_u64(&j, "inflight_sup_runs_per_s", s->inflight_wakeups);
		bench_json_num(&j, "bricks_per_s", s->rate);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_num(&j, "sleep_1ms_measured_ns", r->sleep_ns);
	bench_json_obj(&j, "blocking");
	for (int mi = 0; mi < N_MODES; mi++) {
		const struct blocking_run *x = &r->blk[mi];

		if (!x->ran)
			continue;
		bench_json_obj(&j, modes[mi].key);
		bench_json_bool(&j, "fell_back_to_poll", x->fell_back);
		bench_json_num(&j, "calls_per_s", x->calls_per_s);
		bench_json_num(&j, "vs_off", x->calls_per_s / r->blk[M_OFF].calls_per_s);
		bench_json_u64(&j, "rebinds", x->rebinds);
		if (modes[mi].watch == LUTF_WATCH_BPF)
			bench_json_num(&j, "bpf_ns_per_run", x->bpf_ns_per_run);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_obj(&j, "probe_idle");
	for (int p = 0; p < N_PP; p++) {
		if (!r->pp_idle[p].ran)
			continue;
		bench_json_obj(&j, p ? "processes" : "threads");
		bench_json_num(&j, "ns_per_run", r->pp_idle[p].ns_per_run);
		bench_json_u64(&j, "runs", r->pp_idle[p].runs);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_obj(&j, "cs_throughput");
	for (int p = 0; p < N_PP; p++) {
		if (!r->cs_none[p].ran)
			continue;
		bench_json_obj(&j, p ? "processes" : "threads");
		bench_json_num(&j, "no_runtime_rt_per_s", r->cs_none[p].rt_per_s);
		bench_json_num(&j, "bpf_runtime_rt_per_s", r->cs_bpf[p].rt_per_s);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_obj(&j, "wake_chain");
	bench_json_num(&j, "same_cpu_median_ns", r->wake_same.median);
	bench_json_num(&j, "same_cpu_p99_ns", r->wake_same.p99);
	bench_json_num(&j, "cross_cpu_median_ns", r->wake_cross.median);
	bench_json_num(&j, "cross_cpu_p99_ns", r->wake_cross.p99);
	bench_json_num(&j, "two_median_ns", r->wake2.median);
	bench_json_num(&j, "two_p99_ns", r->wake2.p99);
	bench_json_close_obj(&j);
	bench_targets_json(&j, t, nt);
	bench_json_u64(&j, "errors", (uint64_t)r->errors);
	bench_json_end(&j);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct results *r;
	struct lutf_config cfg;
	struct lutf_runtime *rt;
	struct lutf_runtime_stats st;
	uint64_t rounds, *lat;
	int err;

	bench_parse_args(argc, argv,
			 "labor_watch: hand-off latency, Supervisor CPU, probe cost and a "
			 "blocking workload, per watch mode (bpf, poll 20 us, poll 1 ms, off).",
			 &o);
	rounds = o.quick ? 300 : 10000;
	r = calloc(1, sizeof(*r));
	lat = calloc(rounds > 4000 ? rounds : 4000, sizeof(*lat));
	if (!r || !lat || pipe2(block_pipe, O_CLOEXEC) != 0) {
		fprintf(stderr, "handoff: out of memory or no pipe\n");
		return 1;
	}
	r->quick = o.quick;
	bench_machine(r->machine, sizeof(r->machine));
	r->timer_ns = bench_timer_overhead_ns();
	lutf_config_init(&cfg);
	r->default_grace = cfg.grace_ns;

	/* Is BPF there? */
	err = make_runtime(&modes[M_BPF], 1, 4, -1, &rt);
	if (err) {
		fprintf(stderr, "handoff: cannot create a runtime: %s\n", strerror(-err));
		return 1;
	}
	lutf_runtime_stats(rt, &st);
	r->bpf_ok = st.watch == LUTF_WATCH_BPF;
	snprintf(r->attach, sizeof(r->attach), "%s", st.bpf_attach);
	lutf_runtime_destroy(rt);
	if (!r->bpf_ok)
		fprintf(stderr, "handoff: BPF mode unavailable: BPF figures are skipped\n");

	/* Context-switch throughput, stats as found (before we turn them on). */
	stats_old_value = read_sysctl();
	r->stats_old = stats_old_value;
	if (r->bpf_ok)
		run_cs_throughput(r, o.quick ? 1 : 5, o.quick ? 100000000ull : 300000000ull);

	atexit(restore_stats);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	r->stats_on = r->bpf_ok && stats_set(1);
	if (r->bpf_ok && !r->stats_on)
		fprintf(stderr, "handoff: cannot write %s: probe cost skipped\n", STATS_SYSCTL);

	/* 1. Hand-off latency, grace 0, then the default grace. */
	for (int mi = 0; mi < N_MODES; mi++) {
		uint64_t n = modes[mi].watch == LUTF_WATCH_OFF ? (o.quick ? 10 : 50) : rounds;

		if (mi == M_BPF && !r->bpf_ok)
			continue;
		run_handoff(r, mi, 0, n, &r->ho[mi], lat);
	}
	if (r->bpf_ok)
		run_handoff(r, M_BPF, -1, rounds, &r->hod[M_BPF], lat);
	run_handoff(r, M_POLL20, -1, rounds, &r->hod[M_POLL20], lat);
	{
		int a = -1, b = some_cpu();
		cpu_set_t set;

		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			for (int c = 0; c < CPU_SETSIZE && a < 0; c++)
				if (CPU_ISSET(c, &set) && c != b)
					a = c;
		run_wake_chain(r, 1, b, b, o.quick ? 200 : 2000, lat, &r->wake_same);
		if (a >= 0)
			run_wake_chain(r, 1, a, b, o.quick ? 200 : 2000, lat, &r->wake_cross);
		else
			r->wake_cross.median = r->wake_cross.p99 = NAN;
		run_wake_chain(r, 2, -1, -1, o.quick ? 200 : 2000, lat, &r->wake2);
	}

	/* 3. Probe cost while only non-Labor threads switch. */
	if (r->bpf_ok && r->stats_on)
		run_probe_idle(r, o.quick ? 200000000ull : 1000000000ull);

	/* 2. Supervisor CPU. */
	for (int mi = 0; mi < N_MODES; mi++) {
		if (mi == M_BPF && !r->bpf_ok)
			continue;
		run_sup_cpu(r, mi, o.quick ? 300000000ull : 2000000000ull,
			    o.quick ? 100000000ull : 500000000ull, &r->sup[mi]);
	}

	/* 4. Blocking workload; first what a 1 ms nanosleep really takes. */
	{
		double v[50];

		for (int i = 0; i < 50; i++) {
			uint64_t t0 = bench_now_ns();

			sleep_fn(NULL);
			v[i] = (double)(bench_now_ns() - t0);
		}
		r->sleep_ns = bench_median_d(v, 50);
	}
	for (int mi = 0; mi < N_MODES; mi++) {
		if (mi == M_BPF && !r->bpf_ok)
			continue;
		run_blocking(r, mi, o.quick ? 200 : 2000, o.quick ? 1 : 3, &r->blk[mi]);
	}
	restore_stats();

	if (o.json)
		print_json(r);
	else
		print_table(r);
	err = r->errors ? 1 : 0;
	free(lat);
	free(r);
	return err;
}
