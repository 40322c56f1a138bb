/* SPDX-License-Identifier: MIT */
/*
 * Kill walks over what lutfd's tenants run: a tenant cgroup (v2: cgroup.kill;
 * v1: frozen, then every listed process, then thawed) and a uid range. Used
 * by lutfd (a dead worker's leftovers, an earlier lutfd's) and by the watcher
 * (watcher.c). Invariant: a walk repeats until one finds nothing, a bounded
 * number of times; nothing here allocates or needs lutfd's state.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "isolation.h"

#define KILL_ROUNDS 50	   /* kill walks of one cgroup or of the uids */
#define FREEZE_WAIT_MS 200 /* a v1 freezer that does not settle: kill anyway */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int put_file(const char *dir, const char *file, const char *s)
{
	char path[PATH_MAX + 64];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		err = -errno;
	close(fd);
	return err;
}

#define PF_EXITING 0x4u /* include/linux/sched.h: the task is in do_exit */

/* pid is done: gone, a zombie, exiting, or with a SIGKILL pending (it runs no
 * code of its own again; its exit may take a while on a busy host, and
 * signalling it again would only take CPU from that exit). */
static bool done(int pid)
{
	char path[64], buf[2048], *p;
	unsigned flags = 0;
	char state = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = 0;
	/* The name may hold anything: the fields follow the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %u", &state, &flags) != 2)
		return true;
	if (state == 'Z' || state == 'X' || (flags & PF_EXITING))
		return true;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = 0;
	p = strstr(buf, "\nShdPnd:\t");
	/* SIGKILL is signal 9: bit 8 of the hex mask, the last 3 digits' 0x100 */
	return p && strlen(p + 9) >= 17 && (strtoull(p + 9 + 13, NULL, 16) & 0x100);
}

/* SIGKILL every pid listed in dir/cgroup.procs (read whole, however long).
 * Returns how many, 0 when empty, or -errno. */
static int kill_listed(const char *dir, bool count_only)
{
	char path[PATH_MAX + 64], buf[4096], num[16];
	size_t nl = 0;
	ssize_t got;
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((got = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] != '\n') {
				if (nl < sizeof(num) - 1)
					num[nl++] = buf[i];
				continue;
			}
			num[nl] = 0;
			nl = 0;
			if (atoi(num) <= 1 || done(atoi(num)))
				continue; /* a process dies once: killed ones still listed are */
			if (count_only || !kill(atoi(num), SIGKILL))
				n++;
		}
	}
	close(fd);
	return n;
}

static bool frozen(const char *fz)
{
	char path[PATH_MAX + 64], st[32] = "";
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "%s/freezer.state", fz);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* gone: nothing to wait for */
	got = read(fd, st, sizeof(st) - 1);
	close(fd);
	return got > 0 && !strncmp(st, "FROZEN", 6);
}

/* Returns how many processes were signalled, or -errno. */
int lutfd_cg_kill_dir(int mode, const char *dir, const char *freezer_dir)
{
	int n = kill_listed(dir, true), total = 0;

	if (n <= 0)
		return n; /* empty (the usual case at a worker's start), or no such cgroup */
	/* v2 kills the whole cgroup, forks in flight included (kernel >= 5.14). */
	if (mode == LUTFD_CG_V2 && !put_file(dir, "cgroup.kill", "1"))
		return n;
	/* v1: frozen, nothing in it can fork while the walk runs; the kills
	 * land when it thaws. Without a freezer, walks until a walk finds none
	 * (pids.max bounds what a fork bomb adds meanwhile). */
	if (freezer_dir && freezer_dir[0] && !put_file(freezer_dir, "freezer.state", "FROZEN")) {
		uint64_t until = mono_ms() + FREEZE_WAIT_MS;

		while (!frozen(freezer_dir) && mono_ms() < until)
			poll(NULL, 0, 1);
		total = kill_listed(freezer_dir, false);
		put_file(freezer_dir, "freezer.state", "THAWED");
	}
	/* Until a walk finds nothing that is not done. */
	for (int r = 0; r < KILL_ROUNDS && (n = kill_listed(dir, false)) > 0; r++) {
		total += n;
		poll(NULL, 0, 1);
	}
	return total;
}

/* SIGKILL every process whose real, effective or saved uid is in [lo, hi],
 * walk after walk until one finds none. Returns how many were signalled. */
int lutfd_kill_uids(uint32_t lo, uint32_t hi)
{
	int total = 0;

	if (!lo)
		return 0;
	for (int r = 0; r < KILL_ROUNDS; r++) {
		DIR *d = opendir("/proc");
		struct dirent *e;
		int n = 0;

		while (d && (e = readdir(d)) != NULL) {
			char path[300], line[256];
			unsigned ru, eu, su;
			int pid = atoi(e->d_name);
			FILE *fp;

			if (pid <= 1)
				continue;
			snprintf(path, sizeof(path), "/proc/%d/status", pid);
			fp = fopen(path, "re");
			while (fp && fgets(line, sizeof(line), fp)) {
				if (sscanf(line, "Uid: %u %u %u", &ru, &eu, &su) != 3)
					continue;
				if (((ru >= lo && ru <= hi) || (eu >= lo && eu <= hi) ||
				     (su >= lo && su <= hi)) &&
				    !done(pid) && !kill(pid, SIGKILL))
					n++;
				break;
			}
			if (fp)
				fclose(fp);
		}
		if (d)
			closedir(d);
		total += n;
		if (!n)
			break;
		poll(NULL, 0, 1);
	}
	return total;
}
