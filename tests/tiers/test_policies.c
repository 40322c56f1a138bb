/* SPDX-License-Identifier: MIT */
/*
 * The tier policy files and their parser: every shipped tier parses, names
 * only known syscalls once each, gives every rule a reason, and kills the
 * always-denied calls; bad files are refused with file:line errors.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/filter.h>

#include "sandbox.h"

static const char *tiers[] = {"pure", "basic", "service", "compat"};

/* Must kill in every tier (the isolation issue's list, and io_uring). */
static const char *always_kill[] = {
    "ptrace",
    "bpf",
    "mount",
    "umount2",
    "setns",
    "unshare",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "pivot_root",
    "chroot",
    "swapon",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "process_vm_writev",
    "open_by_handle_at",
};

/* The worker runtime's own calls and what dlopen needs: in every tier. */
static const char *runtime_calls[] = {
    "futex", "recvfrom", "sendto", "exit_group", "exit",  "openat",	"read", "pread64",
    "mmap",  "mprotect", "munmap", "close",	 "fstat", "newfstatat", "brk",	"rt_sigreturn"};

static struct lutf_policy *load(const char *tier)
{
	struct lutf_policy *p = NULL;
	char err[512] = "";
	int rc = lutf_policy_load(LUTF_POLICY_DIR, tier, &p, err, sizeof(err));

	cr_assert_eq(rc, 0, "%s: %s", tier, err);
	return p;
}

static int nr(const char *name)
{
	int n = seccomp_syscall_resolve_name(name);

	cr_assert_geq(n, 0, "test bug: %s", name);
	return n;
}

Test(policies, every_tier_parses_and_grows)
{
	uint32_t prev = 0;

	for (size_t i = 0; i < 4; i++) {
		struct lutf_policy *p = load(tiers[i]);
		uint32_t n = lutf_policy_count_allowed(p);

		cr_log_info("%-8s %3u syscalls allowed, %zu rules, %zu paths", tiers[i], n,
			    p->nrules, p->npaths);
		cr_assert_gt(n, prev, "%s must allow more than the tier below it", tiers[i]);
		prev = n;
		lutf_policy_free(p);
	}
}

Test(policies, rules_have_reasons_and_no_duplicates)
{
	for (size_t t = 0; t < 4; t++) {
		struct lutf_policy *p = load(tiers[t]);

		for (size_t i = 0; i < p->nrules; i++) {
			const struct lutf_pol_rule *a = &p->rules[i];
			char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, a->nr);

			cr_assert(a->reason && a->reason[0], "%s: no reason", a->where);
			cr_assert_geq(a->nr, 0, "%s", a->where);
			/* A named rule names a syscall libseccomp knows as that number. */
			if (name)
				cr_assert_str_eq(name, a->name, "%s", a->where);
			free(name);
			for (size_t j = i + 1; j < p->nrules; j++) {
				const struct lutf_pol_rule *b = &p->rules[j];

				if (a->nr != b->nr)
					continue;
				cr_assert(a->action == LUTF_POL_ALLOW &&
					      b->action == LUTF_POL_ALLOW && a->ncond && b->ncond,
					  "%s and %s: two rules for %s", a->where, b->where,
					  a->name);
			}
		}
		lutf_policy_free(p);
	}
}

Test(policies, always_kill_list_in_every_tier)
{
	for (size_t t = 0; t < 4; t++) {
		struct lutf_policy *p = load(tiers[t]);
		const struct lutf_pol_rule *r;

		for (size_t i = 0; i < sizeof(always_kill) / sizeof(always_kill[0]); i++)
			cr_assert_eq(lutf_policy_action(p, nr(always_kill[i]), NULL), LUTF_POL_KILL,
				     "%s: %s must be killed", tiers[t], always_kill[i]);
		cr_assert_eq(lutf_policy_action(p, nr("clone3"), &r), LUTF_POL_ERRNO);
		cr_assert_eq(r->err, ENOSYS, "clone3 answers ENOSYS so glibc falls back");
		for (size_t i = 0; i < sizeof(runtime_calls) / sizeof(runtime_calls[0]); i++)
			cr_assert_eq(lutf_policy_action(p, nr(runtime_calls[i]), NULL),
				     LUTF_POL_ALLOW, "%s: runtime call %s", tiers[t],
				     runtime_calls[i]);
		lutf_policy_free(p);
	}
}

Test(policies, tier_shapes)
{
	struct lutf_policy *pure = load("pure"), *basic = load("basic"), *svc = load("service");
	struct lutf_policy *compat = load("compat");
	const struct lutf_pol_rule *r;

	/* pure: no clone at all, so its pool is fixed and starts before the filter. */
	cr_assert(pure->labors_fixed);
	cr_assert_eq(lutf_policy_action(pure, nr("clone"), NULL), LUTF_POL_DEFAULT);
	cr_assert_eq(lutf_policy_action(pure, nr("socket"), NULL), LUTF_POL_DEFAULT);
	/* basic: clone only with thread flags, no fork, no network. */
	cr_assert_not(basic->labors_fixed);
	cr_assert_eq(lutf_policy_action(basic, nr("clone"), &r), LUTF_POL_ALLOW);
	cr_assert_eq(r->ncond, 1);
	cr_assert_eq(r->cond[0].op, LUTF_POL_MASKED_EQ);
	cr_assert_eq(r->cond[0].val & 0x10000, 0x10000, "CLONE_THREAD is required");
	cr_assert_eq(lutf_policy_action(basic, nr("fork"), NULL), LUTF_POL_DEFAULT);
	cr_assert_eq(lutf_policy_action(basic, nr("socket"), NULL), LUTF_POL_DEFAULT);
	cr_assert_eq(lutf_policy_action(basic, nr("eventfd2"), NULL), LUTF_POL_ALLOW);
	/* service: outbound network, no listening, a writable scratch folder. */
	cr_assert_eq(lutf_policy_action(svc, nr("connect"), NULL), LUTF_POL_ALLOW);
	cr_assert_eq(lutf_policy_action(svc, nr("listen"), NULL), LUTF_POL_DEFAULT);
	cr_assert(svc->connect.all);
	cr_assert_not(svc->bind.all, "TCP binds stay refused by Landlock");
	{
		bool scratch = false;

		for (size_t i = 0; i < svc->npaths; i++)
			scratch |= !strcmp(svc->paths[i].path, "@scratch") &&
				   svc->paths[i].access == LUTF_FS_RW;
		cr_assert(scratch);
		for (size_t i = 0; i < basic->npaths; i++)
			cr_assert(strcmp(basic->paths[i].path, "@scratch"),
				  "basic has no scratch folder");
	}
	cr_assert_eq(lutf_policy_action(compat, nr("listen"), NULL), LUTF_POL_ALLOW);
	cr_assert_eq(lutf_policy_action(compat, nr("fork"), NULL), LUTF_POL_ALLOW);
	lutf_policy_free(pure);
	lutf_policy_free(basic);
	lutf_policy_free(svc);
	lutf_policy_free(compat);
}

/* ---- bad files ---- */

static char dir[64];

static void put(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.policy", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/lutf-policies-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	put("runtime", "include deny-always\nallow futex # parking\n");
	put("deny-always", "kill ptrace # other processes\nerrno ENOSYS clone3 # fallback\n");
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
}

/* Load tier "t" with the given body; expect failure with both strings in the error. */
static void refused(const char *body, const char *where, const char *what)
{
	struct lutf_policy *p = NULL;
	char err[512] = "";

	put("t", body);
	cr_assert_neq(lutf_policy_load(dir, "t", &p, err, sizeof(err)), 0, "accepted:\n%s", body);
	cr_assert_null(p);
	cr_assert(strstr(err, where), "error '%s' lacks '%s'", err, where);
	cr_assert(strstr(err, what), "error '%s' lacks '%s'", err, what);
}

TestSuite(policy_parser, .init = setup, .fini = teardown);

Test(policy_parser, a_good_file_parses)
{
	struct lutf_policy *p = NULL;
	char err[512] = "";

	put("t", "# a tier\ninclude runtime\ninclude deny-always\n\n"
		 "allow clone if arg0 & 0x10000 == 0x10000 and arg1 == 0 # threads\n"
		 "allow clone if arg0 == 17 # something else\n"
		 "allow 454 # futex_wake: by number\n"
		 "errno EPERM socket # no network\n"
		 "fs rw @scratch # scratch\nnet connect 80,443 # web\nlabors fixed # no clone\n");
	cr_assert_eq(lutf_policy_load(dir, "t", &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lutf_policy_count_allowed(p), 3); /* futex, clone, 454 */
	cr_assert_eq(p->connect.nports, 2);
	cr_assert_eq(p->connect.ports[1], 443);
	cr_assert(p->labors_fixed);
	cr_assert_eq(p->npaths, 1);
	{
		const struct lutf_pol_rule *r;

		cr_assert_eq(lutf_policy_action(p, nr("clone"), &r), LUTF_POL_ALLOW);
		cr_assert_eq(r->ncond, 2);
		cr_assert_eq(r->cond[0].mask, 0x10000);
		cr_assert_eq(r->cond[1].op, LUTF_POL_EQ);
		cr_assert_eq(lutf_policy_action(p, nr("socket"), &r), LUTF_POL_ERRNO);
		cr_assert_eq(r->err, EPERM);
		cr_assert_str_eq(r->where, "t.policy:8");
	}
	lutf_policy_free(p);
}

Test(policy_parser, allowing_an_always_killed_call_is_refused)
{
	refused("include runtime\nallow ptrace # debugging\n", "t.policy:2", "ptrace is killed");
	/* Whatever the order: the kill rule may come after the allow. */
	put("runtime", "allow ptrace # sneaky\ninclude deny-always\n");
	refused("include runtime\n", "deny-always.policy:1", "ptrace is killed");
}

Test(policy_parser, errors_name_file_and_line)
{
	refused("include runtime\n\nallow nosuchcall # why\n", "t.policy:3", "unknown syscall");
	refused("include runtime\nallow getpid\n", "t.policy:2", "without a reason");
	refused("include runtime\nallow getpid #   \n", "t.policy:2", "without a reason");
	refused("include runtime\nallow futex # again\n", "t.policy:2", "duplicate rule for futex");
	refused("include runtime\nallow getpid # a\nerrno EPERM getpid # b\n", "t.policy:3",
		"duplicate");
	refused("include runtime\nallow clone if arg0 == 1 # a\nallow clone if arg0 == 1 # b\n",
		"t.policy:3", "duplicate");
	refused("include runtime\nallow clone if arg7 == 1 # a\n", "t.policy:2", "condition");
	refused("include runtime\nallow clone if arg0 & 0x10 1 # a\n", "t.policy:2", "condition");
	refused("include runtime\nallow clone if arg0 == 1 or arg1 == 2 # a\n", "t.policy:2",
		"joined by 'and'");
	refused("include runtime\nallow clone arg0 == 1 # a\n", "t.policy:2", "unexpected");
	refused("include runtime\npermit getpid # a\n", "t.policy:2", "unknown statement");
	refused("include runtime\nerrno EWHAT getpid # a\n", "t.policy:2", "unknown errno");
	refused("include runtime\nallow 1 # no name given\n", "t.policy:2", "must start with");
	refused("include runtime\nallow 1 # read: wrong name\n", "t.policy:2", "is 'write'");
	refused("include runtime\nfs rw relative/path # a\n", "t.policy:2", "fs rx|ro|rw");
	refused("include runtime\nnet connect 99999 # a\n", "t.policy:2", "bad port");
	refused("include runtime\ninclude ../etc/passwd\n", "t.policy:2", "include NAME");
	refused("include runtime\ninclude missing\n", "t.policy:2", "cannot open");
	refused("allow getpid # no includes\n", "t.policy", "must include runtime and deny-always");
}

Test(policy_parser, includes_are_read_once_and_cycles_end)
{
	struct lutf_policy *p = NULL;
	char err[512] = "";

	put("a", "include t\nallow getpid # a\n");
	put("t", "include runtime\ninclude a\ninclude runtime\ninclude a\n");
	cr_assert_eq(lutf_policy_load(dir, "t", &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lutf_policy_count_allowed(p), 2);
	lutf_policy_free(p);
}

Test(policy_parser, tier_names_are_checked)
{
	struct lutf_policy *p = NULL;
	char err[512] = "";

	cr_assert_eq(lutf_policy_load(dir, "../t", &p, err, sizeof(err)), -EINVAL);
	cr_assert_eq(lutf_policy_load(dir, "runtime", &p, err, sizeof(err)), -EINVAL);
	cr_assert_eq(lutf_policy_load(dir, "", &p, err, sizeof(err)), -EINVAL);
	cr_assert_eq(lutf_policy_load(dir, "nosuch", &p, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "nosuch.policy"), "%s", err);
}

/* The zygote's cache of compiled tiers (prepare.c): one build per tier, a
 * rebuild once a policy file changed on disk, and a BPF program the kernel
 * would take (within BPF_MAXINSNS, ending in a return). */
Test(tier_cache, compiled_once_and_again_after_an_edit)
{
	char tmp[] = "/tmp/lutf-tier-cache-XXXXXX", cmd[512], err[256] = "";
	const struct lutf_tier_prep *a, *b, *c;
	uint64_t gen;
	off_t size;
	FILE *fp;

	cr_assert(mkdtemp(tmp));
	snprintf(cmd, sizeof(cmd), "cp %s/*.policy %s/", LUTF_POLICY_DIR, tmp);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(lutf_tier_prepare(tmp, "pure", &a, err, sizeof(err)), 0, "%s", err);
	cr_assert(a->prog.len > 10 && a->prog.len <= 4096, "%u instructions", a->prog.len);
	cr_assert_eq(a->prog.insns[a->prog.len - 1].code & 0x07, 0x06, "last is not BPF_RET");
	size = a->p->stamps[0].size;
	gen = a->gen;
	cr_assert_eq(lutf_tier_prepare(tmp, "pure", &b, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(b->gen, gen, "an unchanged tier was compiled again");
	cr_assert_eq(b->p->stamps[0].size, size);

	snprintf(cmd, sizeof(cmd), "%s/pure.policy", tmp);
	fp = fopen(cmd, "a");
	cr_assert(fp);
	fprintf(fp, "# an edit\n");
	fclose(fp);
	cr_assert_eq(lutf_tier_prepare(tmp, "pure", &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_gt(c->gen, gen, "the edited tier was not compiled again");
	cr_assert_gt(c->p->stamps[0].size, size, "the edited file was not read again");

	/* A broken edit is not cached: the worker then fails closed itself. */
	fp = fopen(cmd, "a");
	cr_assert(fp);
	fprintf(fp, "allow not_a_syscall # broken\n");
	fclose(fp);
	cr_assert_eq(lutf_tier_prepare(tmp, "pure", &c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "not_a_syscall"), "%s", err);
	cr_assert_null(c);
	lutf_tier_cache_clear();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}
