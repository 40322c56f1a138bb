/* SPDX-License-Identifier: MIT */
/*
 * handoff experiment 2: what the Supervisor thread burns per watch mode, at
 * 1000 Bricks/s, idle, and with one computing Brick always in flight (from
 * /proc schedstat and utime+stime). Invariant: the runtime is destroyed
 * before the next mode starts.
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

#include "handoff.h"

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

void ho_run_sup_cpu(struct results *r, int mi, uint64_t busy_ns, uint64_t idle_ns,
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
	err = ho_make_runtime(m, 0, 0, -1, &rt);
	if (!err)
		err = lutf_runtime_add_fn(rt, "noop", ho_noop_fn, NULL, &id);
	if (!err)
		err = lutf_runtime_add_fn(rt, "spin", spin_fn, NULL, &id_spin);
	if (err) {
		ho_fail(r, "handoff: %s: runtime setup %ld\n", m->key, err);
		return;
	}
	out->fell_back = ho_fell_back(rt, m);
	tid = find_thread("lutf-sup");
	if (tid < 0) {
		ho_fail(r, "handoff: %s: no lutf-sup thread %ld\n", m->key, 0);
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
			ho_fail(r, "handoff: %s: invoke status %ld\n", m->key,
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
		ho_fail(r, "handoff: %s: spin submit %ld\n", m->key, err);
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
		ho_reap_n(r, rt, 1, m->key);
	}
	out->ran = true;
	lutf_runtime_destroy(rt);
}
