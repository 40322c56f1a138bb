/* SPDX-License-Identifier: MIT */
/*
 * Labor thread ids, which the worker writes, checked before the Supervisor
 * watches (labor_watch) or pins (sched_setaffinity) them. Invariant: a tid is
 * used only after task/<tid> was found under an fd on the worker's own /proc
 * entry, and only while the thread pidfd opened before that lookup is alive.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/pidfd.h>

#include "front.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd for one thread */
#endif

/* The fd names one process for its whole life: once the worker is gone no
 * lookup under it succeeds, even if its pid is reused. */
int lutf_runtime_set_worker(struct lutf_runtime *rt, int pid)
{
	char path[32];
	int fd = -1;

	if (!rt || pid < 0 || rt->labors)
		return -EINVAL;
	if (pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d", (int)pid);
		fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	pthread_mutex_lock(&rt->sup_lock);
	if (rt->worker_known)
		close(rt->worker_dir);
	rt->worker_dir = fd;
	rt->worker_pid = (int32_t)pid;
	rt->worker_known = pid > 0;
	/* Tids refused against the previous worker (or none) are checked again
	 * against this one: a refusal is remembered per value, not forever. */
	for (uint32_t i = 0; rt->lw_tid && i < rt->r.cfg.labors_max; i++)
		if (rt->lw_slot[i] == LUTF_NONE)
			rt->lw_tid[i] = 0;
	pthread_mutex_unlock(&rt->sup_lock);
	return 0;
}

void lutf_labor_tid_fini(struct lutf_runtime *rt)
{
	if (rt->worker_known)
		close(rt->worker_dir);
	rt->worker_known = false;
	for (uint32_t i = 0; rt->lw_pidfd && i < rt->r.cfg.labors_max; i++)
		if (rt->lw_pidfd[i] >= 0)
			close(rt->lw_pidfd[i]);
	free(rt->lw_pidfd);
	rt->lw_pidfd = NULL;
}

bool lutf_labor_tid_check(struct lutf_runtime *rt, uint32_t i, int32_t tid, int32_t *tgid)
{
	char path[40];
	int pfd;

	if (tid <= 0 || i >= rt->r.cfg.labors_max)
		return false;
	if (rt->labors) {
		/* In-process Labors: threads of this process, in its own memory. */
		snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
		if (access(path, F_OK))
			return false;
		*tgid = (int32_t)getpid();
		return true;
	}
	if (!rt->worker_known)
		return false;
	if (!rt->lw_pidfd) {
		rt->lw_pidfd = malloc(rt->r.cfg.labors_max * sizeof(*rt->lw_pidfd));
		if (!rt->lw_pidfd)
			return false;
		for (uint32_t k = 0; k < rt->r.cfg.labors_max; k++)
			rt->lw_pidfd[k] = -1;
	}
	lutf_labor_tid_drop(rt, i);
	/* The pidfd first: if the lookup then finds the tid in the worker, the
	 * pidfd holds that very thread. -1 (an older kernel) leaves the pin to
	 * repeat the lookup. */
	pfd = pidfd_open(tid, PIDFD_THREAD);
	snprintf(path, sizeof(path), "task/%d", (int)tid);
	if (faccessat(rt->worker_dir, path, F_OK, 0)) {
		if (pfd >= 0)
			close(pfd);
		return false;
	}
	rt->lw_pidfd[i] = pfd;
	*tgid = rt->worker_pid;
	return true;
}

bool lutf_labor_tid_live(struct lutf_runtime *rt, uint32_t i, int32_t tid)
{
	struct pollfd p;
	char path[40];

	if (rt->labors)
		return true; /* this process's own threads, checked at registration */
	if (!rt->worker_known || !rt->lw_pidfd || i >= rt->r.cfg.labors_max)
		return false;
	if (rt->lw_pidfd[i] < 0) {
		snprintf(path, sizeof(path), "task/%d", (int)tid);
		return faccessat(rt->worker_dir, path, F_OK, 0) == 0;
	}
	/* A thread pidfd reads POLLIN once its thread has exited. */
	p = (struct pollfd){.fd = rt->lw_pidfd[i], .events = POLLIN};
	return poll(&p, 1, 0) == 0;
}

/* Read a small /proc file at dirfd/path (AT_FDCWD: an absolute path) into
 * buf, NUL-terminated. Returns false when it cannot be read. */
static bool read_small(int dirfd, const char *path, char *buf, size_t cap)
{
	ssize_t n;
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return true;
}

bool lutf_labor_tid_sleeping(struct lutf_runtime *rt, uint32_t i, int32_t tid)
{
	char path[48], buf[512], *p;
	bool self = rt->labors != NULL;

	if (i >= rt->r.cfg.labors_max || tid <= 0 || (!self && !rt->worker_known))
		return false;
	snprintf(path, sizeof(path), self ? "/proc/self/task/%d/stat" : "task/%d/stat", (int)tid);
	if (!read_small(self ? AT_FDCWD : rt->worker_dir, path, buf, sizeof(buf)))
		return false;
	/* "tid (comm) S ...": the comm may hold ") ", so the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return false;
	return p[2] != 'R';
}

void lutf_labor_tid_drop(struct lutf_runtime *rt, uint32_t i)
{
	if (rt->lw_pidfd && i < rt->r.cfg.labors_max && rt->lw_pidfd[i] >= 0) {
		close(rt->lw_pidfd[i]);
		rt->lw_pidfd[i] = -1;
	}
}

/* The worker is still running: not exited, not a zombie, no SIGKILL pending
 * (a worker being recycled loses its threads first). Its Labors' tid words
 * are then its own doing. */
static bool worker_alive(struct lutf_runtime *rt)
{
	char buf[4096], *p;

	if (!read_small(rt->worker_dir, "status", buf, sizeof(buf)))
		return false;
	/* "State:\tS (sleeping)"; zombie Z, dead X. */
	p = strstr(buf, "\nState:\t");
	if (!p || p[8] == 'Z' || p[8] == 'X' || p[8] == 'x')
		return false;
	/* "SigPnd:" (the thread's) and "ShdPnd:" (the process's): hex masks,
	 * bit 8 is SIGKILL. */
	for (int k = 0; k < 2; k++) {
		const char *key = k ? "\nShdPnd:\t" : "\nSigPnd:\t";

		p = strstr(buf, key);
		if (p && (strtoull(p + strlen(key), NULL, 16) & (1ull << (SIGKILL - 1))))
			return false;
	}
	return true;
}

void lutf_labor_tid_refused(struct lutf_runtime *rt, uint32_t i, int32_t tid)
{
	struct lutf_labor *l = &rt->r.labors[i];

	/* Relaxed: a statistic (lutf_supervisor_bpf_stats reads it). */
	__atomic_add_fetch(&rt->n_tid_refused, 1, __ATOMIC_RELAXED);
	if (rt->labors) {
		fprintf(stderr, "lutf: Labor %u: tid %d not used: not a thread of this process\n",
			i, (int)tid);
		return;
	}
	/* A Labor clears its tid before it exits: a word that still names a
	 * thread the worker does not have, while the worker runs, was forged. */
	/* Acquire, as lw_sync's load: pairs with the Labor's release of tid. */
	if (ld_acquire(&l->tid) != tid || !worker_alive(rt))
		return;
	fprintf(stderr,
		"lutf: region fault (labor tid): Labor %u names tid %d, not a thread of worker %d; "
		"not watched, not pinned\n",
		i, (int)tid, (int)rt->worker_pid);
	lutf_front_fault(rt, LUTF_FAULT_LABOR_TID);
}
