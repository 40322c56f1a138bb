/* SPDX-License-Identifier: MIT */
/*
 * Confining a process to a tier, in the one order that leaves no gap:
 * everything that needs privilege or the full filesystem first (policy files,
 * Landlock paths), then identity, limits, no_new_privs, Landlock, the caller's
 * threads, seccomp (a program compiled beforehand by the zygote when it has
 * one: prepare.c). Invariant: a failure at any step is reported and the
 * process is never told it is confined when it is not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "sandbox.h"

static void note(struct lutf_sandbox_status *st, const char *what)
{
	size_t n = strlen(st->note);

	snprintf(st->note + n, sizeof(st->note) - n, "%s%s", n ? "; " : "", what);
}

/* Returns 0 or -errno. */
int lutf_sandbox_apply(const struct lutf_wk_sandbox *sb,
		       int (*before_filter)(void *arg, const struct lutf_policy *p), void *arg,
		       struct lutf_sandbox_status *st, char *err, size_t cap)
{
	return lutf_sandbox_apply_prepared(sb, NULL, before_filter, arg, st, err, cap);
}

/* Returns 0 or -errno. */
int lutf_sandbox_apply_prepared(const struct lutf_wk_sandbox *sb, const struct lutf_tier_prep *prep,
				int (*before_filter)(void *arg, const struct lutf_policy *p),
				void *arg, struct lutf_sandbox_status *st, char *err, size_t cap)
{
	struct lutf_landlock ll = {.fd = -1};
	struct lutf_policy *own = NULL;
	const struct lutf_policy *p;
	char tier[sizeof(sb->tier) + 1], dir[sizeof(sb->policy_dir) + 1];
	int pdeath = 0, rc;
	pid_t parent = getppid();

	memset(st, 0, sizeof(*st));
	/* The struct came over a socket: terminate its strings here. */
	snprintf(tier, sizeof(tier), "%.*s", (int)sizeof(sb->tier), sb->tier);
	snprintf(dir, sizeof(dir), "%.*s", (int)sizeof(sb->policy_dir), sb->policy_dir);
	if (!dir[0])
		snprintf(dir, sizeof(dir), "%s", LUTF_POLICY_DIR);
	if (!tier[0]) {
		snprintf(err, cap, "no tier given");
		return -EINVAL;
	}
	/* Prepared (by the zygote) for this very tier and folder, or read here. */
	if (prep && (!prep->p || strcmp(prep->p->tier, tier) || strcmp(prep->p->dir, dir)))
		prep = NULL;
	if (prep) {
		p = prep->p;
	} else {
		rc = lutf_policy_load(dir, tier, &own, err, cap);
		if (rc)
			return rc;
		p = own;
	}
	snprintf(st->tier, sizeof(st->tier), "%s", p->tier);
	st->nallowed = lutf_policy_count_allowed(p);
	st->labors_fixed = p->labors_fixed;
	{
		char app[sizeof(sb->app_dir) + 1], scratch[sizeof(sb->scratch_dir) + 1];

		snprintf(app, sizeof(app), "%.*s", (int)sizeof(sb->app_dir), sb->app_dir);
		snprintf(scratch, sizeof(scratch), "%.*s", (int)sizeof(sb->scratch_dir),
			 sb->scratch_dir);
		rc = lutf_landlock_build(p, app, scratch, &ll, err, cap);
		if (rc)
			goto out;
	}
	st->landlock_abi = ll.abi;
	if (!ll.abi)
		note(st, "landlock unavailable: no filesystem or network rules");
	else if (ll.abi < 6)
		note(st, "landlock ABI < 6: signals not scoped");

	prctl(PR_GET_PDEATHSIG, &pdeath);
	if ((rc = lutf_identity_enter(sb->uid, sb->gid, err, cap)))
		goto out;
	st->uid = (uint32_t)getuid();
	st->gid = (uint32_t)getgid();
	/* A credential change clears the parent-death signal: arm it again,
	 * and make sure the parent did not die in between. */
	if (pdeath && (prctl(PR_SET_PDEATHSIG, pdeath) || getppid() != parent)) {
		snprintf(err, cap, "parent gone during the identity switch");
		rc = -ESRCH;
		goto out;
	}
	if ((rc = lutf_limits_apply(sb, &st->rlimit_as, err, cap)))
		goto out;
	if (sb->rlimit_as && !st->rlimit_as)
		note(st, "RLIMIT_AS skipped: sanitizer build");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		rc = -errno;
		snprintf(err, cap, "PR_SET_NO_NEW_PRIVS: %s", strerror(-rc));
		goto out;
	}
	if ((rc = lutf_landlock_enforce(&ll, err, cap)))
		goto out;
	st->landlock = ll.abi > 0;
	st->landlock_net = ll.net;
	st->landlock_scoped = ll.scoped;
	if (before_filter && (rc = before_filter(arg, p))) {
		if (!err[0])
			snprintf(err, cap, "before the filter: %s", strerror(-rc));
		goto out;
	}
	rc = prep ? lutf_seccomp_install(&prep->prog, err, cap) : lutf_seccomp_apply(p, err, cap);
out:
	lutf_landlock_close(&ll);
	lutf_policy_free(own);
	return rc;
}

void lutf_sandbox_status_format(const struct lutf_sandbox_status *st, char *buf, size_t cap)
{
	char ll[32];

	if (!st->tier[0]) {
		snprintf(buf, cap, "tier=none (unconfined)");
		return;
	}
	if (st->landlock)
		snprintf(ll, sizeof(ll), "abi%d", st->landlock_abi);
	else
		snprintf(ll, sizeof(ll), "off");
	snprintf(buf, cap,
		 "tier=%s syscalls=%u landlock=%s net=%s scope=%s uid=%u gid=%u rlimit_as=%s "
		 "labors=%s%s%s",
		 st->tier, st->nallowed, ll, st->landlock_net ? "on" : "off",
		 st->landlock_scoped ? "on" : "off", st->uid, st->gid, st->rlimit_as ? "on" : "off",
		 st->labors_fixed ? "fixed" : "elastic", st->note[0] ? "; " : "", st->note);
}
