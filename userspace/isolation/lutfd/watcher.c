/* SPDX-License-Identifier: MIT */
/*
 * Tenant processes die with lutfd. The watcher is a small process forked by
 * lutfd before any thread; it is not lutfd and nothing of lutfd's dies with
 * it. It waits on a pidfd of lutfd; when lutfd is gone (exit, crash, kill -9)
 * it kills every process in lutfd's tenant cgroups (v2: cgroup.kill; v1:
 * freeze, kill what cgroup.procs lists, thaw) and of its tenant uids, then
 * exits. Invariant: it holds the state lock while it works, so the next lutfd
 * on that state folder starts only once the last one's tenants are gone.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "isolation.h"
#include "lutfd.h"

#define W_SOCK 3  /* the watcher's fds, after its fd cleanup */
#define W_PIDFD 4 /* lutfd's pidfd */
#define W_LOCK 5  /* the state lock (flock, shared with lutfd) */

#define KILL_ROUNDS 50	   /* kill walks of one cgroup or of the uids */
#define FREEZE_WAIT_MS 200 /* a v1 freezer that does not settle: kill anyway */

/* What to kill: lutfd sends it once its hierarchy is known (lutfd_watcher_arm). */
struct w_targets {
	int32_t mode;			  /* enum lutfd_cg_mode */
	uint32_t uid_lo, uid_hi;	  /* 0, 0: no uid range */
	char base[LUTFD_CG__N][PATH_MAX]; /* as struct lutfd_cg */
};

static int w_fd = -1; /* lutfd's end of the watcher socket */

/* Every tenant cgroup under t's bases, then every tenant uid. */
static int kill_targets(const struct w_targets *t)
{
	int total = 0;
	const char *base = t->base[LUTFD_CG_MEMORY];
	DIR *d = t->mode != LUTFD_CG_NONE && base[0] ? opendir(base) : NULL;
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		char dir[PATH_MAX + 300], fz[PATH_MAX + 300] = "";
		int n;

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", base, e->d_name);
		if (t->mode == LUTFD_CG_V1 && t->base[LUTFD_CG_FREEZER][0])
			snprintf(fz, sizeof(fz), "%s/%s", t->base[LUTFD_CG_FREEZER], e->d_name);
		if ((n = lutfd_cg_kill_dir(t->mode, dir, fz)) > 0)
			total += n;
	}
	if (d)
		closedir(d);
	return total + lutfd_kill_uids(t->uid_lo, t->uid_hi);
}

static void targets_of(const struct lutfd_cg *cg, struct w_targets *t)
{
	unsigned lo, hi;

	memset(t, 0, sizeof(*t));
	t->mode = cg->mode;
	for (int i = 0; i < LUTFD_CG__N; i++)
		LUTFD_COPY(t->base[i], cg->base[i]);
	if (sscanf(g_cfg.uid_range, "%u-%u", &lo, &hi) == 2 && lo >= 1000 && lo <= hi) {
		t->uid_lo = lo;
		t->uid_hi = hi;
	}
}

__attribute__((noreturn)) static void w_main(pid_t lutfd)
{
	struct w_targets t, got;
	struct timespec t0, t1;
	bool armed = false;
	int n;

	prctl(PR_SET_NAME, "lutf-watcher");
	/* Not lutfd's signals: a terminal's ^C or a stop of lutfd's process
	 * group must not take the watcher before lutfd is gone. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	memset(&t, 0, sizeof(t));
	for (;;) {
		struct pollfd p[2] = {{W_PIDFD, POLLIN, 0}, {W_SOCK, POLLIN, 0}};
		ssize_t r;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break; /* lutfd exited */
		r = recv(W_SOCK, &got, sizeof(got), MSG_DONTWAIT);
		if (r == (ssize_t)sizeof(got)) {
			t = got;
			armed = true;
		} else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			break; /* lutfd's end closed: it is going */
		}
	}
	/* lutfd may still be exiting (socket closed first): wait for it, a
	 * bounded while, so that nothing it still does races the kill. */
	poll(&(struct pollfd){W_PIDFD, POLLIN, 0}, 1, 1000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = armed ? kill_targets(&t) : 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n > 0)
		fprintf(
		    stderr,
		    "lutf-watcher[%d]: lutfd %d is gone; killed %d tenant processes in %.1f ms\n",
		    (int)getpid(), (int)lutfd, n,
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	_exit(0); /* releases the state lock */
}

/* Returns 0 or -errno. */
int lutfd_watcher_start(int lock_fd)
{
	pid_t self = getpid(), pid;
	int sv[2], pfd, err;

	pfd = (int)syscall(SYS_pidfd_open, self, 0);
	if (pfd < 0)
		return -errno;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		err = -errno;
		close(pfd);
		return err;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		close(pfd);
		return err;
	}
	if (pid == 0) {
		/* Above every fd we keep, then down to fixed numbers. */
		int s = fcntl(sv[1], F_DUPFD_CLOEXEC, 64), p = fcntl(pfd, F_DUPFD_CLOEXEC, 64);
		int l = lock_fd >= 0 ? fcntl(lock_fd, F_DUPFD_CLOEXEC, 64) : -1;

		if (s < 0 || p < 0 || dup2(s, W_SOCK) < 0 || dup2(p, W_PIDFD) < 0 ||
		    (l >= 0 && dup2(l, W_LOCK) < 0))
			_exit(1);
		/* Nothing of lutfd's but stdio, the lock, lutfd's pidfd, our socket. */
		close_range(W_LOCK + 1, ~0u, 0);
		if (l < 0)
			close(W_LOCK);
		w_main(self);
	}
	close(sv[1]);
	close(pfd);
	w_fd = sv[0];
	lutfd_log("watcher %d: tenant processes die with lutfd", (int)pid);
	return 0;
}

void lutfd_watcher_arm(const struct lutfd_cg *cg)
{
	struct w_targets t;
	int n;

	targets_of(cg, &t);
	/* What an earlier lutfd left (its watcher could not run: the host went
	 * down, or it was killed too), before any worker of ours starts. */
	if ((n = kill_targets(&t)) > 0)
		lutfd_log("killed %d tenant processes an earlier lutfd left", n);
	if (w_fd < 0 || send(w_fd, &t, sizeof(t), MSG_NOSIGNAL) != (ssize_t)sizeof(t))
		lutfd_log("warning: no watcher: tenant processes outlive a lutfd that is killed");
}
