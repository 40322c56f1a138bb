/* SPDX-License-Identifier: MIT */
/*
 * handoff's helpers: error counting, thread ids and futexes, CPU pinning,
 * kernel.bpf_stats_enabled (turned on for probe costs, put back as found at
 * exit or on a signal), and runtimes per watch mode. Invariant: the sysctl
 * is written back only if this program changed it.
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

const struct mode_def modes[N_MODES] = {
    {"bpf", "eBPF", LUTF_WATCH_BPF, 0},
    {"poll_20us", "poll 20 us", LUTF_WATCH_POLL, 20000},
    {"poll_1ms", "poll 1 ms", LUTF_WATCH_POLL, 1000000},
    {"off", "off", LUTF_WATCH_OFF, 0},
};

void ho_fail(struct results *r, const char *fmt, const char *what, long v)
{
	if (r->errors++ < 10)
		fprintf(stderr, fmt, what, v);
}

uint32_t ho_gettid(void)
{
	return (uint32_t)syscall(SYS_gettid);
}

void ho_futex_wait(uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

void ho_futex_wait_ns(uint32_t *w, uint32_t val, uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};

	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

void ho_futex_wake(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- bpf_stats_enabled ---- */

int ho_stats_old = -1;
static bool stats_touched;

int ho_stats_read(void)
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

void ho_stats_restore(void)
{
	if (stats_touched && ho_stats_old >= 0)
		write_sysctl(ho_stats_old);
	stats_touched = false;
}

void ho_on_signal(int sig)
{
	if (stats_touched && ho_stats_old >= 0)
		write_sysctl(ho_stats_old);
	signal(sig, SIG_DFL);
	raise(sig);
}

bool ho_stats_set(int v)
{
	if (ho_stats_old < 0)
		return false;
	stats_touched = true;
	return write_sysctl(v);
}

/* ---- runtime helpers ---- */

uint32_t ho_spin_ns;

int ho_make_runtime(const struct mode_def *m, uint32_t carts, uint32_t labors, int64_t grace,
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
	if (ho_spin_ns)
		cfg.spin_ns = ho_spin_ns;
	return lutf_runtime_create(&cfg, rt);
}

bool ho_fell_back(struct lutf_runtime *rt, const struct mode_def *m)
{
	struct lutf_runtime_stats st;

	lutf_runtime_stats(rt, &st);
	return st.watch != m->watch;
}

/* Reap until 'want' completions arrived or one reap timed out. Checks statuses. */
int ho_reap_n(struct results *r, struct lutf_runtime *rt, int want, const char *what)
{
	struct lutf_completion done[64];
	int got = 0;

	while (got < want) {
		int n = lutf_runtime_reap(rt, done, want - got < 64 ? (unsigned)(want - got) : 64,
					  REAP_WAIT_MS);

		if (n <= 0) {
			ho_fail(r, "handoff: %s: %ld Bricks lost\n", what, (long)(want - got));
			return got;
		}
		for (int i = 0; i < n; i++) {
			if (done[i].result.status != LUTF_STATUS_OK)
				ho_fail(r, "handoff: %s: status %ld\n", what,
					(long)done[i].result.status);
			lutf_result_release(&done[i].result);
		}
		got += n;
	}
	return got;
}

/* Runtime stats and probe run counters. */
void ho_bpf_counters(struct lutf_runtime *rt, uint64_t *ns, uint64_t *cnt)
{
	struct lutf_runtime_stats st;

	lutf_runtime_stats(rt, &st);
	*ns = st.bpf_run_ns;
	*cnt = st.bpf_run_cnt;
}

void ho_pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}
