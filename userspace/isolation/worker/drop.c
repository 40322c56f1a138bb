/* SPDX-License-Identifier: MIT */
/*
 * Identity and limits of a confined process. Invariant: after
 * lutf_identity_enter returns 0, real, effective and saved ids all equal the
 * asked ones and no supplementary group is left, so nothing can switch back.
 * The limits are the traps the isolation issue names: RLIMIT_CPU counts the
 * whole life of a worker (a backstop only: deadlines bound each call, and its
 * SIGXCPU recycles the worker), RLIMIT_AS is eaten by malloc's per-thread
 * arenas (capped here) and breaks sanitizer builds (skipped there).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sandbox.h"

#define ARENA_MAX 2 /* Labors allocate little: a scratch buffer each */

bool lutf_sanitizer_build(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(LUTF_SANITIZER)
	return true;
#else
	return false;
#endif
}

/* Returns 0 or -errno. */
int lutf_identity_enter(uint32_t uid, uint32_t gid, char *err, size_t cap)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (!uid && !gid)
		return 0;
	if (setgroups(0, NULL)) {
		int rc = -errno;

		snprintf(err, cap, "setgroups(0): %s", strerror(-rc));
		return rc;
	}
	if (gid && setresgid(gid, gid, gid)) {
		int rc = -errno;

		snprintf(err, cap, "setresgid(%u): %s", gid, strerror(-rc));
		return rc;
	}
	if (uid && setresuid(uid, uid, uid)) {
		int rc = -errno;

		snprintf(err, cap, "setresuid(%u): %s", uid, strerror(-rc));
		return rc;
	}
	if (getresuid(&r, &e, &s) || getresgid(&rg, &eg, &sg) ||
	    (uid && (r != uid || e != uid || s != uid)) ||
	    (gid && (rg != gid || eg != gid || sg != gid)) || getgroups(0, NULL) != 0) {
		snprintf(err, cap, "identity switch to %u:%u did not stick", uid, gid);
		return -EPERM;
	}
	return 0;
}

static int set_limit(int res, const char *name, rlim_t soft, rlim_t hard, char *err, size_t cap)
{
	struct rlimit rl;

	if (getrlimit(res, &rl) == 0) {
		/* Lowering only: never ask for more than the hard limit we have. */
		if (rl.rlim_max != RLIM_INFINITY && hard > rl.rlim_max)
			hard = rl.rlim_max;
		if (soft > hard)
			soft = hard;
	}
	rl.rlim_cur = soft;
	rl.rlim_max = hard;
	if (setrlimit(res, &rl)) {
		int rc = -errno;

		snprintf(err, cap, "setrlimit(%s): %s", name, strerror(-rc));
		return rc;
	}
	return 0;
}

/* Returns 0 or -errno. */
int lutf_limits_apply(const struct lutf_wk_sandbox *sb, bool *as_set, char *err, size_t cap)
{
	int rc;

	*as_set = false;
	/* Each arena reserves 64 MiB of address space up front. */
	mallopt(M_ARENA_MAX, ARENA_MAX);
	if ((rc = set_limit(RLIMIT_CORE, "CORE", 0, 0, err, cap)))
		return rc;
	if (sb->rlimit_as && !lutf_sanitizer_build()) {
		if ((rc = set_limit(RLIMIT_AS, "AS", sb->rlimit_as, sb->rlimit_as, err, cap)))
			return rc;
		*as_set = true;
	}
	if (sb->rlimit_fsize &&
	    (rc = set_limit(RLIMIT_FSIZE, "FSIZE", sb->rlimit_fsize, sb->rlimit_fsize, err, cap)))
		return rc;
	/* SIGXCPU at the soft limit recycles the worker; SIGKILL a second later
	 * if something caught it. */
	if (sb->rlimit_cpu_s && (rc = set_limit(RLIMIT_CPU, "CPU", sb->rlimit_cpu_s,
						(rlim_t)sb->rlimit_cpu_s + 1, err, cap)))
		return rc;
	if (sb->rlimit_nofile && (rc = set_limit(RLIMIT_NOFILE, "NOFILE", sb->rlimit_nofile,
						 sb->rlimit_nofile, err, cap)))
		return rc;
	if (sb->rlimit_nproc &&
	    (rc = set_limit(RLIMIT_NPROC, "NPROC", sb->rlimit_nproc, sb->rlimit_nproc, err, cap)))
		return rc;
	return 0;
}
