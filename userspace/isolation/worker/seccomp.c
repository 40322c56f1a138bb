/* SPDX-License-Identifier: MIT */
/*
 * A tier policy as a seccomp filter: compiled with libseccomp (usually once,
 * in the zygote: prepare.c) and installed with seccomp(2). Invariants: the
 * default and bad-architecture actions are kill-process (never kill-thread: a
 * worker must not live on half dead), and the filter is loaded on every
 * thread at once (TSYNC), so threads started before it are not left open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

/*
 * The calls a Labor makes on every Brick or while it waits. With the binary
 * tree (SCMP_FLTATR_CTL_OPTIMIZE 2) their place does not matter, and the
 * kernel's per-syscall action cache (Linux >= 5.11) skips the filter for
 * every call allowed without conditions anyway; the priorities order the
 * linear filter an older libseccomp builds when it refuses the tree.
 */
static const char *const hot[] = {
    "futex",	   "sched_yield", "clock_gettime", "gettimeofday", "recvfrom",
    "sendto",	   "read",	  "write",	   "epoll_wait",   "epoll_pwait",
    "poll",	   "ppoll",	  "nanosleep",	   "clock_nanosleep",
};

static enum scmp_compare cmp_of(uint8_t op)
{
	switch (op) {
	case LUTF_POL_NE:
		return SCMP_CMP_NE;
	case LUTF_POL_LT:
		return SCMP_CMP_LT;
	case LUTF_POL_LE:
		return SCMP_CMP_LE;
	case LUTF_POL_GT:
		return SCMP_CMP_GT;
	case LUTF_POL_GE:
		return SCMP_CMP_GE;
	case LUTF_POL_MASKED_EQ:
		return SCMP_CMP_MASKED_EQ;
	default:
		return SCMP_CMP_EQ;
	}
}

/* ctx's BPF into prog, through a memfd (libseccomp 2.5 exports to an fd
 * only). Returns 0 or -errno. */
static int export_prog(scmp_filter_ctx ctx, struct lutf_seccomp_prog *prog, char *err, size_t cap)
{
	int fd = memfd_create("lutf-seccomp", MFD_CLOEXEC), rc;
	off_t len;

	if (fd < 0) {
		rc = -errno;
		snprintf(err, cap, "memfd for the filter: %s", strerror(-rc));
		return rc;
	}
	rc = seccomp_export_bpf(ctx, fd);
	if (rc) {
		snprintf(err, cap, "seccomp_export_bpf: %s", strerror(-rc));
		goto out;
	}
	len = lseek(fd, 0, SEEK_END);
	/* BPF_MAXINSNS: the kernel's bound, and sock_fprog's len is 16 bits. */
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) ||
	    len / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
		snprintf(err, cap, "filter of %lld bytes: not a BPF program the kernel takes",
			 (long long)len);
		rc = -E2BIG;
		goto out;
	}
	prog->insns = malloc((size_t)len);
	if (!prog->insns) {
		rc = -ENOMEM;
		snprintf(err, cap, "out of memory");
		goto out;
	}
	if (pread(fd, prog->insns, (size_t)len, 0) != (ssize_t)len) {
		rc = -EIO;
		snprintf(err, cap, "reading the exported filter back failed");
		free(prog->insns);
		prog->insns = NULL;
		goto out;
	}
	prog->len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
out:
	close(fd);
	return rc;
}

/* Returns 0 or -errno. */
int lutf_seccomp_build(const struct lutf_policy *p, struct lutf_seccomp_prog *prog, char *err,
		       size_t cap)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc;

	memset(prog, 0, sizeof(*prog));
	if (!ctx) {
		snprintf(err, cap, "seccomp_init failed");
		return -ENOMEM;
	}
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS))) {
		snprintf(err, cap, "seccomp attributes: %s", strerror(-rc));
		goto out;
	}
	/* A binary tree of syscall numbers: compat has ~260 rules, and a call
	 * the kernel's action cache cannot answer (one with argument
	 * conditions, or not allowed) walks ~9 compares instead of up to 260.
	 * libseccomp >= 2.5 has it; without it the filter stays linear. */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	for (size_t i = 0; i < sizeof(hot) / sizeof(hot[0]); i++) {
		int nr = seccomp_syscall_resolve_name(hot[i]);

		if (nr >= 0 && lutf_policy_action(p, nr, NULL) == LUTF_POL_ALLOW)
			(void)seccomp_syscall_priority(ctx, nr, 255);
	}
	for (size_t i = 0; i < p->nrules; i++) {
		const struct lutf_pol_rule *r = &p->rules[i];
		struct scmp_arg_cmp c[LUTF_POL_MAX_COND];
		uint32_t act;

		if (r->action == LUTF_POL_KILL)
			continue; /* the default action already kills it */
		act =
		    r->action == LUTF_POL_ERRNO ? SCMP_ACT_ERRNO((uint16_t)r->err) : SCMP_ACT_ALLOW;
		for (unsigned k = 0; k < r->ncond; k++) {
			c[k].arg = r->cond[k].arg;
			c[k].op = cmp_of(r->cond[k].op);
			c[k].datum_a =
			    r->cond[k].op == LUTF_POL_MASKED_EQ ? r->cond[k].mask : r->cond[k].val;
			c[k].datum_b = r->cond[k].op == LUTF_POL_MASKED_EQ ? r->cond[k].val : 0;
		}
		rc = seccomp_rule_add_exact_array(ctx, act, r->nr, r->ncond, c);
		if (rc) {
			snprintf(err, cap, "%s: seccomp rule for %s: %s", r->where, r->name,
				 strerror(-rc));
			goto out;
		}
	}
	rc = export_prog(ctx, prog, err, cap);
out:
	seccomp_release(ctx);
	return rc;
}

/* Returns 0 or -errno. */
int lutf_seccomp_install(const struct lutf_seccomp_prog *prog, char *err, size_t cap)
{
	struct sock_fprog fp = {.len = prog->len, .filter = prog->insns};
	long rc;

	if (!prog->insns || !prog->len) {
		snprintf(err, cap, "no filter to install");
		return -EINVAL;
	}
	/* An unprivileged process may install a filter only under no_new_privs. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		rc = -errno;
		snprintf(err, cap, "PR_SET_NO_NEW_PRIVS: %s", strerror((int)-rc));
		return (int)rc;
	}
	rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp);
	if (rc > 0) {
		/* TSYNC names a thread it could not move onto the filter (one
		 * with a filter of its own): nothing was installed. */
		snprintf(err, cap, "seccomp: thread %ld cannot take the filter", rc);
		return -EAGAIN;
	}
	if (rc < 0) {
		rc = -errno;
		snprintf(err, cap, "seccomp: %s", strerror((int)-rc));
		return (int)rc;
	}
	return 0;
}

void lutf_seccomp_prog_free(struct lutf_seccomp_prog *prog)
{
	free(prog->insns);
	prog->insns = NULL;
	prog->len = 0;
}

/* Returns 0 or -errno. */
int lutf_seccomp_apply(const struct lutf_policy *p, char *err, size_t cap)
{
	struct lutf_seccomp_prog prog;
	int rc = lutf_seccomp_build(p, &prog, err, cap);

	if (!rc)
		rc = lutf_seccomp_install(&prog, err, cap);
	lutf_seccomp_prog_free(&prog);
	return rc;
}
