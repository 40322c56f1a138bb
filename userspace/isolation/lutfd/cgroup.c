/* SPDX-License-Identifier: MIT */
/*
 * Per-tenant cgroups: memory, pids and cpu limits for a tenant's worker, and
 * its OOM-kill count, so that lutfd can tell an out-of-memory death from a
 * crash. cgroup v2 is the primary path (what hosts run); v1 (one mount per
 * controller) where that is what the host has. Invariant: lutfd only writes
 * below <root>/<name>, and a tenant's cgroup holds only its worker.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isolation.h"

static const char *const v1_ctrl[LUTFD_CG__N] = {"memory", "pids", "cpu", "freezer"};

/* snprintf that says whether it fit. */
static __attribute__((format(printf, 3, 4))) bool fmt(char *buf, size_t cap, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, cap, f, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < cap;
}

static enum lutfd_cg_mode cg_init(struct lutfd_cg *cg, const char *want, const char *v2_root,
				  const char *v1_root, const char *name);

/* Write s to dir/file (no O_CREAT: cgroup files exist or the feature is absent).
 * Returns 0 or -errno. */
static int put(const char *dir, const char *file, const char *s)
{
	char path[PATH_MAX + 64];
	size_t n = strlen(s);
	ssize_t w;
	int fd, err = 0;

	if (!fmt(path, sizeof(path), "%s/%s", dir, file))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	w = write(fd, s, n);
	if (w < 0)
		err = -errno;
	else if ((size_t)w != n)
		err = -EIO;
	close(fd);
	return err;
}

/* Read dir/file into buf (NUL-terminated). Returns the length or -errno. */
static ssize_t get(const char *dir, const char *file, char *buf, size_t cap)
{
	char path[PATH_MAX + 64];
	ssize_t n;
	int fd;

	if (!fmt(path, sizeof(path), "%s/%s", dir, file))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = 0;
	close(fd);
	return n;
}

/* "key N" in a flat-keyed file. Returns 0 or -errno (-ENOENT: no such key). */
static int keyed(const char *dir, const char *file, const char *key, uint64_t *v)
{
	char buf[4096], *p;
	size_t kl = strlen(key);
	ssize_t n = get(dir, file, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, key, kl) && p[kl] == ' ') {
			*v = strtoull(p + kl + 1, NULL, 10);
			return 0;
		}
	}
	return -ENOENT;
}

static bool has_word(const char *list, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = list; (p = strstr(p, w)) != NULL; p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == ',' || p[-1] == ':') &&
		    (!p[n] || p[n] == ' ' || p[n] == '\n' || p[n] == ','))
			return true;
	return false;
}

/*
 * lutfd's own cgroup path in the hierarchy whose /proc/self/cgroup entry
 * matches ctrl ("" = the v2 entry "0::"). Returns 0 or -ENOENT.
 */
static int own_path(const char *ctrl, char *out, size_t cap)
{
	FILE *fp = fopen("/proc/self/cgroup", "re");
	char line[PATH_MAX + 64];
	int err = -ENOENT;

	while (fp && err && fgets(line, sizeof(line), fp)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		*c2 = 0; /* c1 + 1: the controller list; c2 + 1: the path */
		c2[1 + strcspn(c2 + 1, "\n")] = 0;
		if (ctrl[0] ? has_word(c1 + 1, ctrl)
			    : (line[0] == '0' && c1 == line + 1 && c2 == c1 + 1)) {
			snprintf(out, cap, "%s", strcmp(c2 + 1, "/") ? c2 + 1 : "");
			err = 0;
		}
	}
	if (fp)
		fclose(fp);
	return err;
}

/* The cgroup2 mount point, from /proc/self/mountinfo. Returns 0 or -ENOENT. */
static int v2_mount(char *out, size_t cap)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[PATH_MAX * 2];
	int err = -ENOENT;

	while (fp && err && fgets(line, sizeof(line), fp)) {
		char mnt[PATH_MAX], *dash = strstr(line, " - ");

		if (!dash || strncmp(dash + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			err = fmt(out, cap, "%s", mnt) ? 0 : -ENAMETOOLONG;
		}
	}
	if (fp)
		fclose(fp);
	return err;
}

/* The mount point of the cgroup v1 hierarchy that holds controller ctrl, from
 * /proc/self/mountinfo. Returns 0 or -ENOENT. */
static int v1_mount(const char *ctrl, char *out, size_t cap)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[PATH_MAX * 2];
	int err = -ENOENT;

	while (fp && err && fgets(line, sizeof(line), fp)) {
		char mnt[PATH_MAX], opts[512], *dash = strstr(line, " - ");

		if (!dash || strncmp(dash + 3, "cgroup ", 7) ||
		    sscanf(dash + 3, "%*s %*s %511s", opts) != 1 || !has_word(opts, ctrl))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1)
			err = fmt(out, cap, "%s", mnt) ? 0 : -ENAMETOOLONG;
	}
	if (fp)
		fclose(fp);
	return err;
}

/* The smallest CPU quota on the way from dir up to mnt (both included), in
 * thousandths of a CPU; UINT32_MAX when none is set. v2 reads cpu.max
 * ("max 100000" or "<quota> <period>"), v1 cpu.cfs_quota_us (-1: none) over
 * cpu.cfs_period_us. A file that cannot be read sets no limit. */
static uint32_t quota_up(char *dir, size_t mnt_len, bool v2)
{
	uint32_t best = UINT32_MAX;

	for (;;) {
		char buf[64], per[32];
		long long q = -1, p = 0;

		if (v2) {
			if (get(dir, "cpu.max", buf, sizeof(buf)) > 0 &&
			    sscanf(buf, "%lld %lld", &q, &p) != 2)
				q = -1; /* "max <period>" */
		} else if (get(dir, "cpu.cfs_quota_us", buf, sizeof(buf)) > 0 &&
			   get(dir, "cpu.cfs_period_us", per, sizeof(per)) > 0) {
			q = strtoll(buf, NULL, 10);
			p = strtoll(per, NULL, 10);
		}
		if (q > 0 && p > 0 && (uint64_t)q * 1000 / (uint64_t)p < best)
			best = (uint32_t)((uint64_t)q * 1000 / (uint64_t)p);
		if (strlen(dir) <= mnt_len)
			return best;
		*strrchr(dir, '/') = 0;
		if (strlen(dir) < mnt_len)
			return best;
	}
}

uint32_t lutfd_cg_own_cpu_milli(void)
{
	char mnt[PATH_MAX], own[PATH_MAX], dir[2 * PATH_MAX];
	uint32_t best = UINT32_MAX, q;

	/* Both hierarchies may be mounted (hybrid hosts): the cpu controller is
	 * in one of them; a quota in either counts. */
	if (v2_mount(mnt, sizeof(mnt)) == 0 && own_path("", own, sizeof(own)) == 0 &&
	    fmt(dir, sizeof(dir), "%s%s", mnt, own)) {
		q = quota_up(dir, strlen(mnt), true);
		best = q < best ? q : best;
	}
	if (v1_mount("cpu", mnt, sizeof(mnt)) == 0 && own_path("cpu", own, sizeof(own)) == 0 &&
	    fmt(dir, sizeof(dir), "%s%s", mnt, own)) {
		q = quota_up(dir, strlen(mnt), false);
		best = q < best ? q : best;
	}
	return best;
}

static int mkdir_ok(const char *p)
{
	return mkdir(p, 0755) && errno != EEXIST ? -errno : 0;
}

/*
 * v2: root must offer memory and pids (cpu if it can); lutfd enables them for
 * its children. A cgroup with processes cannot hand controllers down (the "no
 * internal processes" rule), so when root holds lutfd itself, lutfd first
 * moves into the leaf <root>/lutfd. Returns 0 or -errno with why filled.
 */
static int v2_init(struct lutfd_cg *cg, const char *root, const char *name)
{
	char ctrls[512], base[PATH_MAX], leaf[PATH_MAX + 8], pid[32], enable[64] = "";
	ssize_t n = get(root, "cgroup.controllers", ctrls, sizeof(ctrls));
	int err;

	if (n < 0) {
		fmt(cg->why, sizeof(cg->why), "%s is not a cgroup2 folder", root);
		return (int)n;
	}
	if (!has_word(ctrls, "memory") || !has_word(ctrls, "pids")) {
		fmt(cg->why, sizeof(cg->why), "cgroup2 %s offers no memory/pids controller", root);
		return -ENOTSUP;
	}
	snprintf(enable, sizeof(enable), "+memory +pids%s", has_word(ctrls, "cpu") ? " +cpu" : "");
	err = put(root, "cgroup.subtree_control", enable);
	if (err == -EBUSY) {
		/* root is lutfd's (delegated) cgroup: everything in it (lutfd,
		 * its zygote) moves to a leaf, then root can hand controllers down. */
		char procs[4096], *p, *end;
		ssize_t got;

		snprintf(leaf, sizeof(leaf), "%s/lutfd", root);
		err = mkdir_ok(leaf);
		got = err ? -1 : get(root, "cgroup.procs", procs, sizeof(procs));
		for (p = procs; got > 0 && !err && *p; p = end) {
			long v = strtol(p, &end, 10);

			if (end == p)
				break;
			snprintf(pid, sizeof(pid), "%ld", v);
			err = put(leaf, "cgroup.procs", pid);
			if (err == -ESRCH)
				err = 0; /* exited meanwhile */
		}
		if (!err)
			err = put(root, "cgroup.subtree_control", enable);
	}
	if (err) {
		fmt(cg->why, sizeof(cg->why), "cannot enable controllers in %s: %s", root,
		    strerror(-err));
		return err;
	}
	if (!fmt(base, sizeof(base), "%s/%s", root, name)) {
		fmt(cg->why, sizeof(cg->why), "cgroup2 path too long");
		return -ENAMETOOLONG;
	}
	err = mkdir_ok(base);
	if (!err)
		err = put(base, "cgroup.subtree_control", enable);
	if (err) {
		fmt(cg->why, sizeof(cg->why), "cannot prepare %s: %s", base, strerror(-err));
		return err;
	}
	fmt(cg->base[0], sizeof(cg->base[0]), "%s", base);
	cg->mode = LUTFD_CG_V2;
	return 0;
}

/* v1: memory is required, pids and cpu are used when mounted. Returns 0 or -errno. */
static int v1_init(struct lutfd_cg *cg, const char *v1_root, const char *name)
{
	for (int i = 0; i < LUTFD_CG__N; i++) {
		char mnt[PATH_MAX], own[PATH_MAX], base[PATH_MAX], probe[PATH_MAX + 16];
		int err;

		snprintf(mnt, sizeof(mnt), "%s/%s", v1_root, v1_ctrl[i]);
		snprintf(probe, sizeof(probe), "%s/tasks", mnt);
		if (access(probe, W_OK) || own_path(v1_ctrl[i], own, sizeof(own))) {
			if (i == LUTFD_CG_MEMORY) {
				fmt(cg->why, sizeof(cg->why),
				    "no writable cgroup v1 memory controller at %s", mnt);
				return -ENOENT;
			}
			continue;
		}
		/* Our own cgroup may not exist in this mount namespace's view. */
		if (!fmt(base, sizeof(base), "%s%s", mnt, own) || access(base, W_OK))
			fmt(base, sizeof(base), "%s", mnt);
		err = fmt(base + strlen(base), sizeof(base) - strlen(base), "/%s", name)
			  ? mkdir_ok(base)
			  : -ENAMETOOLONG;
		if (err) {
			fmt(cg->why, sizeof(cg->why), "cannot create %s: %s", base, strerror(-err));
			if (i == LUTFD_CG_MEMORY)
				return err;
			continue;
		}
		fmt(cg->base[i], sizeof(cg->base[i]), "%s", base);
	}
	cg->mode = LUTFD_CG_V1;
	return 0;
}

/* Empty tenant cgroups a killed lutfd left under base: removed (a busy one
 * stays and is reused). */
static void sweep(const char *base)
{
	DIR *dir = opendir(base);
	struct dirent *e;
	char p[PATH_MAX + 300];

	while (dir && (e = readdir(dir)) != NULL) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if (fmt(p, sizeof(p), "%s/%s", base, e->d_name))
			rmdir(p);
	}
	if (dir)
		closedir(dir);
}

enum lutfd_cg_mode lutfd_cg_init(struct lutfd_cg *cg, const char *want, const char *v2_root,
				 const char *v1_root, const char *name)
{
	enum lutfd_cg_mode mode = cg_init(cg, want, v2_root, v1_root, name);

	for (int i = 0; i < LUTFD_CG__N && mode != LUTFD_CG_NONE; i++)
		if (cg->base[i][0])
			sweep(cg->base[i]);
	return mode;
}

static enum lutfd_cg_mode cg_init(struct lutfd_cg *cg, const char *want, const char *v2_root,
				  const char *v1_root, const char *name)
{
	char root[PATH_MAX], mnt[PATH_MAX / 2], own[PATH_MAX / 2];

	memset(cg, 0, sizeof(*cg));
	if (!strcmp(want, "off")) {
		fmt(cg->why, sizeof(cg->why), "cgroup = off");
		return cg->mode;
	}
	if (!strcmp(want, "auto") || !strcmp(want, "v2")) {
		if (v2_root[0])
			fmt(root, sizeof(root), "%s", v2_root);
		else if (v2_mount(mnt, sizeof(mnt)) || own_path("", own, sizeof(own)) ||
			 !fmt(root, sizeof(root), "%s%s", mnt, own))
			root[0] = 0;
		if (!root[0])
			fmt(cg->why, sizeof(cg->why), "no cgroup2 mount");
		else if (!v2_init(cg, root, name))
			return cg->mode;
	}
	if (!strcmp(want, "auto") || !strcmp(want, "v1")) {
		char why[sizeof(cg->why)];

		memcpy(why, cg->why, sizeof(why));
		if (!v1_init(cg, v1_root, name))
			return cg->mode;
		if (why[0])
			fmt(cg->why + strlen(cg->why), sizeof(cg->why) - strlen(cg->why), "; %s",
			    why);
	}
	memset(cg->base, 0, sizeof(cg->base));
	cg->mode = LUTFD_CG_NONE;
	return cg->mode;
}

static void tenant_dir(const struct lutfd_cg *cg, int i, const char *tenant, char *out, size_t cap)
{
	if (!fmt(out, cap, "%s/%s", cg->base[i], tenant))
		out[0] = 0; /* cannot happen: cap leaves room for a tenant name */
}

/* Returns 0 or -errno. */
int lutfd_cg_tenant(const struct lutfd_cg *cg, const char *tenant,
		    const struct lutfd_cg_limits *lim)
{
	char dir[PATH_MAX + 80], v[64];
	int err;

	if (cg->mode == LUTFD_CG_V2) {
		tenant_dir(cg, 0, tenant, dir, sizeof(dir));
		if ((err = mkdir_ok(dir)))
			return err;
		if (lim->memory_bytes)
			snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->memory_bytes);
		else
			snprintf(v, sizeof(v), "max");
		if ((err = put(dir, "memory.max", v)))
			return err;
		/* No swap for a tenant: a blow-up meets the OOM killer, not the disk. */
		put(dir, "memory.swap.max", "0");
		if (lim->pids_max)
			snprintf(v, sizeof(v), "%u", lim->pids_max);
		else
			snprintf(v, sizeof(v), "max");
		if ((err = put(dir, "pids.max", v)))
			return err;
		if (lim->cpu_pct)
			snprintf(v, sizeof(v), "%u 100000", lim->cpu_pct * 1000u);
		else
			snprintf(v, sizeof(v), "max 100000");
		err = put(dir, "cpu.max", v);
		return err == -ENOENT && !lim->cpu_pct ? 0 : err; /* cpu may be absent */
	}
	if (cg->mode != LUTFD_CG_V1)
		return 0;
	for (int i = 0; i < LUTFD_CG__N; i++) {
		if (!cg->base[i][0])
			continue;
		tenant_dir(cg, i, tenant, dir, sizeof(dir));
		if ((err = mkdir_ok(dir)))
			return err;
		if (i == LUTFD_CG_MEMORY) {
			snprintf(v, sizeof(v), "%lld",
				 lim->memory_bytes ? (long long)lim->memory_bytes : -1ll);
			err = put(dir, "memory.limit_in_bytes", v);
			put(dir, "memory.swappiness", "0");
		} else if (i == LUTFD_CG_PIDS) {
			if (lim->pids_max)
				snprintf(v, sizeof(v), "%u", lim->pids_max);
			else
				snprintf(v, sizeof(v), "max");
			err = put(dir, "pids.max", v);
		} else if (i == LUTFD_CG_CPU) {
			err = put(dir, "cpu.cfs_period_us", "100000");
			snprintf(v, sizeof(v), "%lld", lim->cpu_pct ? lim->cpu_pct * 1000ll : -1ll);
			if (!err)
				err = put(dir, "cpu.cfs_quota_us", v);
		}
		if (err)
			return err;
	}
	return 0;
}

/* Returns 0 or -errno. */
int lutfd_cg_attach(const struct lutfd_cg *cg, const char *tenant, pid_t pid)
{
	char dir[PATH_MAX + 80], v[32];
	int err;

	snprintf(v, sizeof(v), "%d", (int)pid);
	for (int i = 0; i < LUTFD_CG__N && cg->mode != LUTFD_CG_NONE; i++) {
		if (!cg->base[i][0])
			continue;
		tenant_dir(cg, i, tenant, dir, sizeof(dir));
		err = put(dir, "cgroup.procs", v);
		if (err)
			return err;
		if (cg->mode == LUTFD_CG_V2)
			break;
	}
	return 0;
}

static const char *ctrl_name(const struct lutfd_cg *cg, int i)
{
	return cg->mode == LUTFD_CG_V2 ? "cgroup2" : v1_ctrl[i];
}

/* Returns 0 or -errno. */
int lutfd_cg_join_fds(const struct lutfd_cg *cg, const char *tenant, int fds[LUTFD_CG__N], int *n,
		      char *why, size_t cap)
{
	const char *test = getenv("LUTF_TEST_CGROUP_FD");
	char dir[PATH_MAX + 80], path[PATH_MAX + 100];

	*n = 0;
	for (int i = 0; i < LUTFD_CG__N && cg->mode != LUTFD_CG_NONE; i++) {
		int fd;

		if (!cg->base[i][0])
			continue;
		tenant_dir(cg, i, tenant, dir, sizeof(dir));
		if (!fmt(path, sizeof(path), "%s/%s", dir,
			 cg->mode == LUTFD_CG_V2 ? "cgroup.procs" : "tasks")) {
			fmt(why, cap, "cgroup path too long");
			while (*n)
				close(fds[--*n]);
			return -ENAMETOOLONG;
		}
		if (test && !strcmp(test, "null"))
			fmt(path, sizeof(path), "/dev/null");
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			int err = -errno;

			fmt(why, cap, "cannot open %s: %s", path, strerror(-err));
			while (*n)
				close(fds[--*n]);
			return err;
		}
		fds[(*n)++] = fd;
		if (cg->mode == LUTFD_CG_V2)
			break;
	}
	return 0;
}

/* Whether the list in dir/cgroup.procs (one pid a line) names pid. Returns
 * 1, 0 or -errno. A line may cross a read's end: the number is carried. */
static int procs_has(const char *dir, pid_t pid)
{
	char path[PATH_MAX + 100], buf[4096];
	long cur = -1; /* the number read so far on this line, -1: none */
	ssize_t n;
	int fd, found = 0;

	if (!fmt(path, sizeof(path), "%s/cgroup.procs", dir))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (!found && (n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n && !found; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				cur = (cur < 0 ? 0 : cur) * 10 + (buf[i] - '0');
				if (cur > 1l << 40)
					cur = 1l << 40; /* no pid: stays no match */
			} else {
				found = cur == (long)pid;
				cur = -1;
			}
		}
	}
	if (!found && cur == (long)pid)
		found = 1; /* the last line had no newline */
	n = found ? 0 : (n < 0 ? -errno : 0);
	close(fd);
	return n < 0 ? (int)n : found;
}

/* Returns 0, -ESRCH or -errno. */
int lutfd_cg_holds(const struct lutfd_cg *cg, const char *tenant, pid_t pid, char *why, size_t cap)
{
	char dir[PATH_MAX + 80];

	for (int i = 0; i < LUTFD_CG__N && cg->mode != LUTFD_CG_NONE; i++) {
		int rc;

		if (!cg->base[i][0])
			continue;
		tenant_dir(cg, i, tenant, dir, sizeof(dir));
		rc = procs_has(dir, pid);
		if (rc < 0) {
			fmt(why, cap, "cannot read %s/cgroup.procs: %s", dir, strerror(-rc));
			return rc;
		}
		if (!rc) {
			fmt(why, cap, "not in its %s cgroup %s", ctrl_name(cg, i), dir);
			return -ESRCH;
		}
		if (cg->mode == LUTFD_CG_V2)
			break;
	}
	return 0;
}

/* Returns 0 or -errno. */
int lutfd_cg_oom_kills(const struct lutfd_cg *cg, const char *tenant, uint64_t *n)
{
	char dir[PATH_MAX + 80];

	*n = 0;
	if (cg->mode == LUTFD_CG_NONE || !cg->base[LUTFD_CG_MEMORY][0])
		return -ENOTSUP;
	tenant_dir(cg, LUTFD_CG_MEMORY, tenant, dir, sizeof(dir));
	if (cg->mode == LUTFD_CG_V2)
		return keyed(dir, "memory.events", "oom_kill", n);
	return keyed(dir, "memory.oom_control", "oom_kill", n);
}

/* Returns the number of processes signalled, or -errno. */
int lutfd_cg_kill_all(const struct lutfd_cg *cg, const char *tenant)
{
	char dir[PATH_MAX + 80], fz[PATH_MAX + 80] = "";

	if (cg->mode == LUTFD_CG_NONE || !cg->base[LUTFD_CG_MEMORY][0])
		return -ENOTSUP;
	tenant_dir(cg, LUTFD_CG_MEMORY, tenant, dir, sizeof(dir));
	if (cg->mode == LUTFD_CG_V1 && cg->base[LUTFD_CG_FREEZER][0])
		tenant_dir(cg, LUTFD_CG_FREEZER, tenant, fz, sizeof(fz));
	return lutfd_cg_kill_dir(cg->mode, dir, fz); /* watcher.c */
}

int lutfd_cg_tenant_remove(const struct lutfd_cg *cg, const char *tenant)
{
	char dir[PATH_MAX + 80];
	int left = 0;

	for (int i = 0; i < LUTFD_CG__N && cg->mode != LUTFD_CG_NONE; i++) {
		if (!cg->base[i][0])
			continue;
		tenant_dir(cg, i, tenant, dir, sizeof(dir));
		/* EBUSY while a worker still exits (the pids controller keeps its
		 * charge until the zygote reaps it). */
		if (rmdir(dir) && errno != ENOENT)
			left++;
	}
	return left;
}

void lutfd_cg_fini(struct lutfd_cg *cg)
{
	for (int i = 0; i < LUTFD_CG__N && cg->mode != LUTFD_CG_NONE; i++)
		if (cg->base[i][0])
			rmdir(cg->base[i]);
	memset(cg, 0, sizeof(*cg));
}

void lutfd_cg_describe(const struct lutfd_cg *cg, char *buf, size_t cap)
{
	if (cg->mode == LUTFD_CG_V2) {
		snprintf(buf, cap, "cgroup v2");
	} else if (cg->mode == LUTFD_CG_V1) {
		snprintf(buf, cap, "cgroup v1 (memory%s%s%s)",
			 cg->base[LUTFD_CG_PIDS][0] ? ",pids" : "",
			 cg->base[LUTFD_CG_CPU][0] ? ",cpu" : "",
			 cg->base[LUTFD_CG_FREEZER][0] ? ",freezer" : "");
	} else {
		snprintf(buf, cap, "rlimits only (%s)", cg->why);
	}
}
