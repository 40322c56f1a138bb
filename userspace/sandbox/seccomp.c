/* SPDX-License-Identifier: MIT */
/*
 * A tier policy as a seccomp filter, built with libseccomp. Invariants: the
 * default and bad-architecture actions are kill-process (never kill-thread: a
 * worker must not live on half dead), and the filter is loaded on every
 * thread at once (TSYNC), so threads started before it are not left open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>

#include "sandbox.h"

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

/* Returns 0 or -errno. */
int lutf_seccomp_apply(const struct lutf_policy *p, char *err, size_t cap)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc;

	if (!ctx) {
		snprintf(err, cap, "seccomp_init failed");
		return -ENOMEM;
	}
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1))) {
		snprintf(err, cap, "seccomp attributes: %s", strerror(-rc));
		goto out;
	}
	/* A binary tree of syscall numbers: compat has ~250 rules, and every
	 * syscall of every Labor walks this filter. */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
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
	rc = seccomp_load(ctx);
	if (rc)
		snprintf(err, cap, "seccomp_load: %s", strerror(-rc));
out:
	seccomp_release(ctx);
	return rc;
}
