/* SPDX-License-Identifier: MIT */
/*
 * The zygote: a single-threaded child forked by lutfd before any thread
 * starts, so that it can fork tenant workers safely at any time. Invariant:
 * the zygote never starts a thread and dies with lutfd (PDEATHSIG), and its
 * workers die with it (what they fork, lutfd's watcher kills: isolation/lutfd/watcher.c).
 * A worker's fd 1 and 2 are the output pipe lutfd sent, never lutfd's stderr.
 * It keeps each tier's compiled filter (userspace/isolation/worker/prepare.c), which
 * its workers inherit with the fork.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "worker.h"
#ifdef LUTF_HAVE_PYTHON
#include "loader_python.h"
#endif

#define ZY_FD 3	  /* the zygote's end of the socketpair, after the fd cleanup */
#define ZY_NFDS 4 /* a SPAWN's fds: region memfd, ctl, log, output */
#define ZY_MAXFDS (ZY_NFDS + LUTF_ZY_CG_MAX + 1) /* its cgroup files, labor_state */
/* No message for this long: the zygote starts CPython (if no Python spawn
 * asked first), off the path of the spawns that come in a burst at start.
 * LUTF_ZYGOTE_PY_IDLE_MS (tests) sets another wait. */
#define ZY_PY_IDLE_MS 50

static bool zy_py_tried; /* lutf_python_preinit ran (its result is the module's) */
static int zy_py_idle_ms = ZY_PY_IDLE_MS;

/* CPython in the zygote, once: Python workers inherit a started interpreter
 * (loader_python.c; if it does not start, each starts its own). Workers
 * forked before have none and are C tenants' (LUTF_ZY_PYTHON). */
static void zy_python(void)
{
	if (zy_py_tried)
		return;
	zy_py_tried = true;
#ifdef LUTF_HAVE_PYTHON
	(void)lutf_python_preinit();
#endif
}

static int send_msg(int fd, const struct lutf_zy_msg *m)
{
	ssize_t n = send(fd, m, sizeof(*m), MSG_NOSIGNAL);

	return n == (ssize_t)sizeof(*m) ? 0 : -EPIPE;
}

/* sb's tier, parsed and compiled (kept for later spawns), or NULL when it
 * does not compile: the worker then tries itself and reports why. */
static const struct lutf_tier_prep *zy_prepare(const struct lutf_wk_sandbox *sb)
{
	char tier[sizeof(sb->tier) + 1], dir[sizeof(sb->policy_dir) + 1], err[256];
	const struct lutf_tier_prep *prep = NULL;

	snprintf(tier, sizeof(tier), "%.*s", (int)sizeof(sb->tier), sb->tier);
	snprintf(dir, sizeof(dir), "%.*s", (int)sizeof(sb->policy_dir), sb->policy_dir);
	if (!tier[0] || lutf_tier_prepare(dir, tier, &prep, err, sizeof(err)))
		return NULL;
	return prep;
}

/*
 * The new worker, still root and single-threaded: into the tenant's cgroup by
 * its own write of "0" to each file (v1 "tasks": this thread, no
 * cgroup_threadgroup_rwsem; v2 "cgroup.procs"), then the unasked ctl record
 * that tells lutfd to check (worker.h). A failed write: the record says why
 * and the worker exits before any confinement or app code.
 */
static void zy_join_cgroup(const char *tenant, int ctl, const int *cg, int ncg)
{
	char buf[sizeof(int32_t) + 200];
	int32_t rc = 0;
	size_t len;

	buf[sizeof(rc)] = 0;
	for (int i = 0; i < ncg && !rc; i++) {
		if (write(cg[i], "0", 1) != 1) {
			rc = -errno;
			snprintf(buf + sizeof(rc), sizeof(buf) - sizeof(rc),
				 "cgroup: joining file %d of %d: %s", i + 1, ncg, strerror(-rc));
		}
	}
	for (int i = 0; i < ncg; i++)
		close(cg[i]);
	memcpy(buf, &rc, sizeof(rc));
	len = sizeof(rc) + strlen(buf + sizeof(rc));
	if (send(ctl, buf, len, MSG_NOSIGNAL) != (ssize_t)len || rc) {
		if (rc)
			fprintf(stderr, "lutf worker %s: %s\n", tenant, buf + sizeof(rc));
		_exit(LUTF_WK_EXIT_SANDBOX);
	}
}

static void zy_spawn(int zfd, int sfd, pid_t self)
{
	struct lutf_zy_msg m;
	char cbuf[CMSG_SPACE(ZY_MAXFDS * sizeof(int))];
	struct iovec iov = {&m, sizeof(m)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct lutf_zy_msg ans = {.type = LUTF_ZY_SPAWNED};
	const struct lutf_tier_prep *prep = NULL;
	struct cmsghdr *cm;
	int fds[ZY_MAXFDS], nfds = 0;
	ssize_t n;
	pid_t pid;

	n = recvmsg(zfd, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		_exit(0); /* lutfd is gone: so are we (workers follow by PDEATHSIG) */
	cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len >= CMSG_LEN(0)) {
		nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (nfds > ZY_MAXFDS)
			nfds = ZY_MAXFDS; /* cannot be: cbuf holds no more */
		memcpy(fds, CMSG_DATA(cm), (size_t)nfds * sizeof(int));
	}
	if (n == (ssize_t)sizeof(m) && m.type == LUTF_ZY_PREPARE) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		zy_prepare(&m.sb);
		return; /* no answer: the spawn that needs the tier reports errors */
	}
	if (n != (ssize_t)sizeof(m) || m.type != LUTF_ZY_SPAWN || m.ncg > LUTF_ZY_CG_MAX ||
	    nfds != ZY_NFDS + (int)m.ncg + (m.lw_count ? 1 : 0) || (mh.msg_flags & MSG_CTRUNC)) {
		ans.pid = -EINVAL;
		goto out;
	}
	m.tenant[sizeof(m.tenant) - 1] = 0;
	if (m.has_sb)
		prep = zy_prepare(&m.sb);
	if (m.flags & LUTF_ZY_PYTHON)
		zy_python();
	ans.status = zy_py_tried;
	pid = fork();
	if (pid == 0) {
		sigset_t all;

		close(zfd);
		close(sfd);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGCHLD, SIG_DFL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != self)
			_exit(1); /* the zygote died before we could follow it */
		/* Never lutfd's stderr: what the tenant prints goes to its pipe. */
		if (dup2(fds[3], 1) < 0 || dup2(fds[3], 2) < 0)
			_exit(1);
		close(fds[3]);
		close(0);
		if (open("/dev/null", O_RDONLY) != 0)
			_exit(1);
		if (m.ncg)
			zy_join_cgroup(m.tenant, fds[1], fds + ZY_NFDS, (int)m.ncg);
		{
			struct lutf_zy_watch zw = {.fd = -1};

			if (m.lw_count)
				zw = (struct lutf_zy_watch){fds[ZY_NFDS + m.ncg], m.lw_first,
							    m.lw_count};
			lutf_worker_main_prepared(m.tenant, fds[0], (size_t)m.size, fds[1], fds[2],
						  m.has_sb ? &m.sb : NULL, prep, &zw);
		}
	}
	ans.pid = pid < 0 ? -errno : pid;
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (send_msg(zfd, &ans))
		_exit(0);
}

static void zy_reap(int zfd, int sfd)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct lutf_zy_msg m = {.type = LUTF_ZY_EXITED, .pid = pid, .status = status};

		if (send_msg(zfd, &m))
			_exit(0);
	}
}

__attribute__((noreturn)) static void zy_main(pid_t lutfd)
{
	pid_t self = getpid();
	sigset_t set;
	int sfd;

	prctl(PR_SET_NAME, "lutf-zygote");
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != lutfd)
		_exit(1);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_SETMASK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		_exit(1);
	/* CPython is not started here (it took 13-60 ms, which the first
	 * spawn waited for): at the first Python spawn, or once idle. */
	if (getenv("LUTF_ZYGOTE_PY_IDLE_MS")) {
		long v = strtol(getenv("LUTF_ZYGOTE_PY_IDLE_MS"), NULL, 10);

		zy_py_idle_ms = v < 0 ? 0 : v > 600000 ? 600000 : (int)v;
	}
	for (;;) {
		struct pollfd p[2] = {{ZY_FD, POLLIN, 0}, {sfd, POLLIN, 0}};
		int n = poll(p, 2, zy_py_tried ? -1 : zy_py_idle_ms);

		if (n < 0 && errno != EINTR)
			_exit(1);
		if (n == 0) {
			zy_python();
			continue;
		}
		if (p[1].revents)
			zy_reap(ZY_FD, sfd);
		if (p[0].revents & (POLLHUP | POLLERR) && !(p[0].revents & POLLIN))
			_exit(0);
		if (p[0].revents & POLLIN)
			zy_spawn(ZY_FD, sfd, self);
	}
}

/* Returns 0 or -errno. */
int lutf_zygote_start(struct lutf_zygote *z, int keep_fd)
{
	pid_t parent = getpid();
	int sv[2];
	pid_t pid;

	memset(z, 0, sizeof(*z));
	z->fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (pid == 0) {
		if (keep_fd >= 0)
			close(keep_fd);
		if (dup2(sv[1], ZY_FD) < 0)
			_exit(1);
		/* Nothing of lutfd's but stdio and our socket survives in here. */
		close_range(ZY_FD + 1, ~0u, 0);
		zy_main(parent);
	}
	close(sv[1]);
	z->pid = pid;
	z->fd = sv[0];
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Room for one more queued exit. Returns 0 or -ENOMEM. */
static int pending_room(struct lutf_zygote *z)
{
	struct lutf_zy_exit *p;
	int cap = z->cap ? z->cap * 2 : 16;

	if (z->npending < z->cap)
		return 0;
	p = malloc((size_t)cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	/* Unwrap the ring into the new array, oldest first. */
	for (int i = 0; i < z->npending; i++)
		p[i] = z->pending[(z->head + i) % z->cap];
	free(z->pending);
	z->pending = p;
	z->cap = cap;
	z->head = 0;
	return 0;
}

/* Returns 0 or -errno. */
int lutf_zygote_spawn(struct lutf_zygote *z, const char *tenant, int memfd, size_t size, int ctl,
		      int log, int out, const struct lutf_wk_sandbox *sb, int timeout_ms,
		      pid_t *pid)
{
	return lutf_zygote_spawn_cg(z, tenant, memfd, size, ctl, log, out, NULL, 0, LUTF_ZY_PYTHON,
				    sb, timeout_ms, pid, NULL);
}

/* Returns 0 or -errno. */
int lutf_zygote_spawn_cg(struct lutf_zygote *z, const char *tenant, int memfd, size_t size, int ctl,
			 int log, int out, const int *cg, int ncg, uint32_t flags,
			 const struct lutf_wk_sandbox *sb, int timeout_ms, pid_t *pid, bool *python)
{
	return lutf_zygote_spawn_watch(z, tenant, memfd, size, ctl, log, out, cg, ncg, flags, sb,
				       NULL, timeout_ms, pid, python);
}

/* Returns 0 or -errno. */
int lutf_zygote_spawn_watch(struct lutf_zygote *z, const char *tenant, int memfd, size_t size,
			    int ctl, int log, int out, const int *cg, int ncg, uint32_t flags,
			    const struct lutf_wk_sandbox *sb, const struct lutf_zy_watch *watch,
			    int timeout_ms, pid_t *pid, bool *python)
{
	struct lutf_zy_msg m = {.type = LUTF_ZY_SPAWN, .size = size, .flags = flags};
	int nw = watch && watch->fd >= 0 && watch->count ? 1 : 0;
	char cbuf[CMSG_SPACE(ZY_MAXFDS * sizeof(int))];
	struct iovec iov = {&m, sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = CMSG_SPACE((size_t)(ZY_NFDS + ncg) * sizeof(int))};
	struct cmsghdr *cm;
	int fds[ZY_MAXFDS] = {memfd, ctl, log, out}, null = -1;
	int64_t until = now_ms() + timeout_ms;
	ssize_t sent;

	if (ncg < 0 || ncg > LUTF_ZY_CG_MAX)
		return -EINVAL;
	for (int i = 0; i < ncg; i++)
		fds[ZY_NFDS + i] = cg[i];
	m.ncg = (uint32_t)ncg;
	if (nw) {
		fds[ZY_NFDS + ncg] = watch->fd;
		m.lw_first = watch->first;
		m.lw_count = watch->count;
	}
	mh.msg_controllen = CMSG_SPACE((size_t)(ZY_NFDS + ncg + nw) * sizeof(int));
	if (out < 0) {
		/* No pipe: the worker's output goes nowhere, never to lutfd's log. */
		null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null < 0)
			return -errno;
		fds[3] = null;
	}
	memset(cbuf, 0, sizeof(cbuf));
	snprintf(m.tenant, sizeof(m.tenant), "%s", tenant);
	if (sb && sb->tier[0]) {
		m.sb = *sb;
		m.has_sb = 1;
	}
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)(ZY_NFDS + ncg + nw) * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)(ZY_NFDS + ncg + nw) * sizeof(int));
	sent = sendmsg(z->fd, &mh, MSG_NOSIGNAL);
	if (null >= 0)
		close(null);
	if (sent != (ssize_t)sizeof(m))
		return -EPIPE;
	for (;;) {
		struct pollfd p = {z->fd, POLLIN, 0};
		int64_t left = until - now_ms();
		struct lutf_zy_msg a;
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT; /* its late answer: see lutf_zygote_next_exit */
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		if (!p.revents)
			continue;
		/* Room first: a notice read is a notice kept. */
		if (pending_room(z))
			return -ENOMEM;
		n = recv(z->fd, &a, sizeof(a), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n != (ssize_t)sizeof(a))
			return -EPIPE;
		if (a.type == LUTF_ZY_SPAWNED) {
			if (a.pid < 0)
				return a.pid;
			*pid = a.pid;
			if (python)
				*python = a.status == 1;
			return 0;
		}
		if (a.type == LUTF_ZY_EXITED) {
			struct lutf_zy_exit *e = &z->pending[(z->head + z->npending) % z->cap];

			e->pid = a.pid;
			e->status = a.status;
			z->npending++;
		}
	}
}

/* Returns 0 or -EPIPE. */
int lutf_zygote_prepare(struct lutf_zygote *z, const struct lutf_wk_sandbox *sb)
{
	struct lutf_zy_msg m = {.type = LUTF_ZY_PREPARE, .has_sb = 1, .sb = *sb};

	return send(z->fd, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -EPIPE;
}

/* Returns 1 (an exit), 0 (none) or -EPIPE. */
int lutf_zygote_next_exit(struct lutf_zygote *z, pid_t *pid, int *status)
{
	struct lutf_zy_msg a;
	ssize_t n;

	if (z->npending) {
		*pid = z->pending[z->head].pid;
		*status = z->pending[z->head].status;
		z->head = (z->head + 1) % z->cap;
		z->npending--;
		return 1;
	}
	for (;;) {
		n = recv(z->fd, &a, sizeof(a), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n != (ssize_t)sizeof(a))
			return -EPIPE;
		if (a.type == LUTF_ZY_EXITED) {
			*pid = a.pid;
			*status = a.status;
			return 1;
		}
		/* The answer to a spawn that gave up waiting (timeout, no memory):
		 * nobody owns that worker, so it goes; its exit notice follows. */
		if (a.type == LUTF_ZY_SPAWNED && a.pid > 0)
			kill(a.pid, SIGKILL);
	}
}
