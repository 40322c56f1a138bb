/* SPDX-License-Identifier: MIT */
/*
 * Who a tenant's worker is and what it may touch: a uid (= gid) from
 * uid_range, kept in the registry; its app folder handed to that gid
 * read-only, a scratch folder of its own; the confinement and limits its
 * worker applies. Invariant: no two tenants share a uid, and no uid lutfd
 * hands out belongs to a user or group the host knows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isolation.h"
#include "lutfd.h"

#define MIN_MEMORY_MB 16u	      /* a worker needs a few MiB of its own */
#define STACK_BYTES (8ull << 20)      /* a Labor thread's stack reservation */
#define AS_SLACK_BYTES (256ull << 20) /* libraries, malloc arenas, the loader */

static const char *const tiers[] = {"pure", "basic", "service", "compat"};

bool lutfd_tier_valid(const char *tier)
{
	for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++)
		if (!strcmp(tier, tiers[i]))
			return true;
	return false;
}

/* "off" (0, 0) or "LO-HI". Returns 0 or -EINVAL. */
static int uid_range(const char *s, uint32_t *lo, uint32_t *hi)
{
	unsigned long a, b;
	char *end;

	*lo = *hi = 0;
	if (!strcmp(s, "off"))
		return 0;
	errno = 0;
	a = strtoul(s, &end, 10);
	if (errno || end == s || *end != '-')
		return -EINVAL;
	s = end + 1;
	b = strtoul(s, &end, 10);
	if (errno || end == s || *end || a < 1000 || a > b || b >= 0x7fffffffu)
		return -EINVAL;
	*lo = (uint32_t)a;
	*hi = (uint32_t)b;
	return 0;
}

/* Returns 0 or -EINVAL. */
int lutfd_config_check_isolation(const struct lutfd_config *c, const char *path)
{
	uint32_t lo, hi;

	if (uid_range(c->uid_range, &lo, &hi)) {
		fprintf(stderr,
			"lutfd: %s: bad uid_range '%s' (want LO-HI, 1000 <= LO <= HI, or off)\n",
			path, c->uid_range);
		return -EINVAL;
	}
	if (!lutfd_tier_valid(c->default_tier) &&
	    !(c->allow_tier_none && !strcmp(c->default_tier, "none"))) {
		fprintf(stderr, "lutfd: %s: bad default_tier '%s' (pure, basic, service, compat)\n",
			path, c->default_tier);
		return -EINVAL;
	}
	if (strcmp(c->cgroup, "auto") && strcmp(c->cgroup, "v2") && strcmp(c->cgroup, "v1") &&
	    strcmp(c->cgroup, "off")) {
		fprintf(stderr, "lutfd: %s: bad cgroup '%s' (auto, v2, v1, off)\n", path,
			c->cgroup);
		return -EINVAL;
	}
	return 0;
}

static void dir_0711(const char *path)
{
	if (mkdir(path, 0711) && errno != EEXIST)
		lutfd_log("cannot create %s: %s", path, strerror(errno));
	else
		chmod(path, 0711);
}

void lutfd_identity_init(void)
{
	char p[PATH_MAX], why[PATH_MAX * 2 + 300];
	uint32_t lo, hi;

	/* Every tier compiled in the zygote now, not at the first deploy that
	 * needs it (a failure there shows at that deploy, with its reason). */
	for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++) {
		struct lutf_wk_sandbox sb;

		memset(&sb, 0, sizeof(sb));
		LUTFD_COPY(sb.tier, tiers[i]);
		LUTFD_COPY(sb.policy_dir, g_cfg.policy_dir);
		if (lutf_zygote_prepare(&g_zygote, &sb))
			break;
	}
	if (uid_range(g_cfg.uid_range, &lo, &hi) || !lo)
		return;
	/* Tenant uids must reach apps/<tenant> and scratch/<tenant>: search
	 * permission on the folders above, nothing more. */
	chmod(g_cfg.state_dir, 0711);
	snprintf(p, sizeof(p), "%s/apps", g_cfg.state_dir);
	dir_0711(p);
	snprintf(p, sizeof(p), "%s/scratch", g_cfg.state_dir);
	dir_0711(p);
	if (lutfd_state_dir_check(why, sizeof(why)))
		lutfd_log("error: %s; every deploy is refused until it can", why);
}

/*
 * The first of the n paths (each a prefix of the next) that uid cannot search,
 * asked of the kernel (modes, ACLs, whatever applies) in one child that takes
 * uid's identity: raw syscalls only, as lutfd has threads. Returns its index,
 * n when uid can search them all, or -1 when the child did not run.
 */
static int first_blocked(uint32_t uid, char *const *paths, int n)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int i = 0;

		if (syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setresgid, uid, uid, uid) ||
		    syscall(SYS_setresuid, uid, uid, uid))
			_exit(255);
		while (i < n && !syscall(SYS_faccessat, AT_FDCWD, paths[i], X_OK))
			i++;
		_exit(i);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) <= n ? WEXITSTATUS(status) : -1;
}

#define CHECK_DEPTH 64 /* folders checked from / down; deeper ones are not */

/* Returns 0, or -EACCES with msg naming the folder that blocks. */
int lutfd_state_dir_check(char *msg, size_t cap)
{
	char p[PATH_MAX + 8], *paths[CHECK_DEPTH];
	uint32_t lo, hi;
	struct stat st;
	int n = 0, i, err = 0;
	size_t len;

	if (uid_range(g_cfg.uid_range, &lo, &hi) || !lo || g_cfg.state_dir[0] != '/')
		return 0;
	/* Any uid of the range answers for all: lutfd gives none of them a
	 * folder above the state folder. "/", "/a", "/a/b", ..., <state>/apps. */
	len = (size_t)snprintf(p, sizeof(p), "%s/apps", g_cfg.state_dir);
	if (len >= sizeof(p))
		return 0;
	for (size_t k = 1; k <= len && n < CHECK_DEPTH; k++) {
		if (k > 1 && p[k] != '/' && p[k] != 0)
			continue;
		paths[n] = strndup(p, k); /* k = 1: "/" */
		if (!paths[n])
			break;
		n++;
	}
	i = first_blocked(lo, paths, n);
	if (i >= 0 && i < n) {
		err = -EACCES;
		if (stat(paths[i], &st))
			st.st_mode = 0;
		snprintf(msg, cap,
			 "tenant uids (uid_range %s) cannot reach the state folder %s: %s (mode "
			 "%04o) is not searchable by them; make it searchable (chmod o+x %s) or "
			 "move the state folder",
			 g_cfg.uid_range, g_cfg.state_dir, paths[i], st.st_mode & 07777, paths[i]);
	}
	while (n)
		free(paths[--n]);
	return err;
}

/* Returns 0 or -ENOSPC. */
int lutfd_tenant_identity(struct lutfd_tenant *t)
{
	uint32_t lo, hi;

	if (uid_range(g_cfg.uid_range, &lo, &hi) || !lo)
		return 0;
	if (t->uid >= lo && t->uid <= hi)
		return 0;
	for (uint32_t u = lo; u <= hi; u++) {
		bool used = false;

		/* Tenants first: a user database look-up (NSS: files, userdb,
		 * maybe the network) costs far more than this loop. */
		for (size_t i = 0; !used && i < g_state.n; i++)
			used = g_state.t[i] != t && g_state.t[i]->uid == u;
		if (!used)
			used = getpwuid(u) || getgrgid(u);
		if (!used) {
			t->uid = u;
			return 0;
		}
	}
	return -ENOSPC;
}

static gid_t walk_gid;

/* App folders: root-owned, the tenant's group may read (and enter) them. */
static int give_app(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (lchown(path, 0, walk_gid))
		return -errno;
	if (flag == FTW_D || flag == FTW_DP)
		return chmod(path, 0750) ? -errno : 0;
	if (flag == FTW_F)
		return chmod(path, 0640) ? -errno : 0;
	return 0;
}

/* Returns 0 or -errno. */
int lutfd_tenant_dirs(struct lutfd_tenant *t)
{
	char apps[PATH_MAX], scratch[PATH_MAX];
	int err;

	snprintf(scratch, sizeof(scratch), "%s/scratch", g_cfg.state_dir);
	if (mkdir(scratch, 0711) && errno != EEXIST)
		return -errno;
	snprintf(scratch, sizeof(scratch), "%s/scratch/%s", g_cfg.state_dir, t->name);
	if (mkdir(scratch, 0700) && errno != EEXIST)
		return -errno;
	if (!t->uid)
		return 0; /* uid_range off: workers are root */
	snprintf(apps, sizeof(apps), "%s/apps/%s", g_cfg.state_dir, t->name);
	if (mkdir(apps, 0750) && errno != EEXIST)
		return -errno;
	walk_gid = (gid_t)t->uid;
	err = nftw(apps, give_app, 16, FTW_PHYS);
	if (err)
		return err < 0 ? err : -EIO;
	if (chown(scratch, (uid_t)t->uid, (gid_t)t->uid) || chmod(scratch, 0700))
		return -errno;
	return 0;
}

void lutfd_tenant_limits(const struct lutfd_tenant *t, struct lutfd_cg_limits *lim)
{
	uint64_t mb = 0;

	for (size_t i = 0; i < t->napps; i++)
		mb += t->apps[i].memory_mb;
	if (!mb)
		mb = g_cfg.tenant_memory_mb;
	if (mb && mb < MIN_MEMORY_MB)
		mb = MIN_MEMORY_MB;
	lim->memory_bytes = mb << 20;
	lim->pids_max = g_cfg.tenant_pids_max;
	lim->cpu_pct = g_cfg.tenant_cpu_pct;
}

/* Returns 0 or -ENAMETOOLONG (the state folder's path is too long for the sandbox). */
int lutfd_tenant_sandbox(const struct lutfd_tenant *t, struct lutf_wk_sandbox *sb)
{
	struct lutfd_cg_limits lim;
	uint32_t labors = g_cfg.labors_max ? g_cfg.labors_max : 64;
	int n;

	memset(sb, 0, sizeof(*sb));
	if (!strcmp(t->tier, "none"))
		return 0; /* allow_tier_none: no confinement at all (a baseline) */
	LUTFD_COPY(sb->tier, t->tier[0] ? t->tier : g_cfg.default_tier);
	sb->uid = sb->gid = t->uid;
	LUTFD_COPY(sb->policy_dir, g_cfg.policy_dir);
	n = snprintf(sb->app_dir, sizeof(sb->app_dir), "%s/apps/%s", g_cfg.state_dir, t->name);
	if (n < 0 || (size_t)n >= sizeof(sb->app_dir))
		return -ENAMETOOLONG;
	if (!strcmp(sb->tier, "service") || !strcmp(sb->tier, "compat")) {
		n = snprintf(sb->scratch_dir, sizeof(sb->scratch_dir), "%s/scratch/%s",
			     g_cfg.state_dir, t->name);
		if (n < 0 || (size_t)n >= sizeof(sb->scratch_dir))
			return -ENAMETOOLONG;
	}
	lutfd_tenant_limits(t, &lim);
	/* Address space is not memory: the region, every Labor's stack and the
	 * loaded code are mapped too. The cgroup (when present) limits memory;
	 * RLIMIT_AS is the backstop that bounds a blow-up without one. */
	if (lim.memory_bytes)
		sb->rlimit_as = lim.memory_bytes + t->size + labors * STACK_BYTES + AS_SLACK_BYTES;
	sb->rlimit_fsize = (uint64_t)g_cfg.tenant_fsize_mb << 20;
	sb->rlimit_cpu_s = g_cfg.tenant_cpu_s;
	sb->rlimit_nofile = g_cfg.tenant_nofile;
	/* Per uid: meaningless (and ignored) for root workers. */
	sb->rlimit_nproc = t->uid ? g_cfg.tenant_pids_max : 0;
	return 0;
}

/* Returns 0 and g_cfg's uid_range (0, 0 when off), or -EINVAL. */
int lutfd_uid_range(uint32_t *lo, uint32_t *hi)
{
	return uid_range(g_cfg.uid_range, lo, hi);
}
