/* SPDX-License-Identifier: MIT */
/*
 * Tier sandboxes: a tier's policy file parsed into data (policy.c), turned
 * into a seccomp filter (seccomp.c) and a Landlock ruleset (landlock.c), and
 * applied with the identity and limits a worker gets (identity.c), in one
 * fixed order (sandbox.c). See policies/README.md for the file grammar and
 * docs/isolation.md for what each tier allows and why.
 *
 * Every function that can fail returns 0 or -errno and writes a one-line
 * reason ("pure.policy:12: allow: unknown syscall 'fo'") into err[cap].
 */
#ifndef LUTF_SANDBOX_H
#define LUTF_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "confinement.h" /* struct lutf_wk_sandbox: what lutfd asks for */

struct sock_filter; /* linux/filter.h */

enum lutf_pol_action {
	LUTF_POL_DEFAULT = 0, /* no rule: the default action (kill the process) */
	LUTF_POL_ALLOW = 1,
	LUTF_POL_ERRNO = 2,
	LUTF_POL_KILL = 3, /* explicit: no tier may allow it */
};

enum lutf_pol_op {
	LUTF_POL_EQ = 1,
	LUTF_POL_NE,
	LUTF_POL_LT,
	LUTF_POL_LE,
	LUTF_POL_GT,
	LUTF_POL_GE,
	LUTF_POL_MASKED_EQ, /* (arg & mask) == val */
};

#define LUTF_POL_MAX_COND 4
#define LUTF_POL_MAX_PORTS 32
#define LUTF_POL_MAX_FILES 16

struct lutf_pol_cond {
	uint8_t arg; /* 0..5 */
	uint8_t op;  /* enum lutf_pol_op */
	uint64_t mask;
	uint64_t val;
};

struct lutf_pol_rule {
	int nr; /* x86_64 syscall number */
	uint8_t action;
	uint8_t ncond; /* conditions, all of which must hold (allow only) */
	int16_t err;   /* LUTF_POL_ERRNO: the errno returned */
	struct lutf_pol_cond cond[LUTF_POL_MAX_COND];
	char name[32];
	char where[64]; /* "file.policy:line" */
	char *reason;
};

enum lutf_pol_fs {
	LUTF_FS_RX = 1, /* read and execute beneath */
	LUTF_FS_RO = 2, /* read beneath */
	LUTF_FS_RW = 3, /* read, write, create and remove beneath */
};

struct lutf_pol_path {
	uint8_t access; /* enum lutf_pol_fs */
	char path[256]; /* absolute, or "@app" / "@scratch" */
	char where[64];
};

/* A Landlock TCP port rule set: none (handled, nothing allowed), all (not
 * handled), or a list of ports. */
struct lutf_pol_net {
	bool all;
	uint32_t nports;
	uint16_t ports[LUTF_POL_MAX_PORTS];
};

/* What a policy file was when it was read (policy.c fstat()s it at open):
 * a prepared tier is stale once any of its files differs. */
struct lutf_pol_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
};

struct lutf_policy {
	char tier[16];
	struct lutf_pol_rule *rules;
	size_t nrules, cap;
	struct lutf_pol_path *paths;
	size_t npaths, pcap;
	struct lutf_pol_net connect, bind;
	bool labors_fixed; /* every Labor starts before the filter; no clone after it */
	uint32_t nfiles;
	char files[LUTF_POL_MAX_FILES][32]; /* files read, "runtime", "deny-always", ... */
	struct lutf_pol_stamp stamps[LUTF_POL_MAX_FILES]; /* files[i] as read */
	char dir[256];					  /* where they were read */
};

/* Parse <dir>/<tier>.policy and its includes. Returns 0 or -errno
 * (-ENOENT no such tier, -EINVAL a bad line, -ENOMEM). */
int lutf_policy_load(const char *dir, const char *tier, struct lutf_policy **out, char *err,
		     size_t cap);
void lutf_policy_free(struct lutf_policy *p);

/* The action for syscall nr (its first rule, or LUTF_POL_DEFAULT); *rule, if
 * non-NULL, gets that rule. */
int lutf_policy_action(const struct lutf_policy *p, int nr, const struct lutf_pol_rule **rule);

/* Distinct syscalls the policy allows, with or without conditions. */
uint32_t lutf_policy_count_allowed(const struct lutf_policy *p);

/* True while every file p was read from is unchanged on disk. */
bool lutf_policy_fresh(const struct lutf_policy *p);

/* seccomp.c: a compiled filter, ready for seccomp(2). */
struct lutf_seccomp_prog {
	struct sock_filter *insns; /* malloc'd */
	unsigned short len;
};

/* Compile p with libseccomp (default kill-process, bad arch kill, binary
 * tree of syscall numbers, the runtime's hot calls first where the tree is
 * refused). Returns 0 or -errno. */
int lutf_seccomp_build(const struct lutf_policy *p, struct lutf_seccomp_prog *prog, char *err,
		       size_t cap);
/* Load a compiled filter on every thread of the process (TSYNC); sets
 * no_new_privs first. No libseccomp call, no allocation. Returns 0 or -errno. */
int lutf_seccomp_install(const struct lutf_seccomp_prog *prog, char *err, size_t cap);
void lutf_seccomp_prog_free(struct lutf_seccomp_prog *prog);
/* Build and install. Returns 0 or -errno. */
int lutf_seccomp_apply(const struct lutf_policy *p, char *err, size_t cap);

/*
 * prepare.c: tiers parsed and compiled once, in the zygote, and inherited by
 * every worker it forks, so a worker start costs one seccomp(2) call instead
 * of a parse and a libseccomp compile. An entry is rebuilt when any of its
 * policy files changed on disk (lutf_policy_fresh). Single-threaded use only
 * (the zygote); entries live until lutf_tier_cache_clear.
 */
struct lutf_tier_prep {
	struct lutf_policy *p;
	struct lutf_seccomp_prog prog;
	uint64_t built_ns; /* how long the parse and compile took */
	uint64_t gen;	   /* which build of the process this is (1, 2, ...) */
};

/* The prepared tier of dir ("" = LUTF_POLICY_DIR). Returns 0 and *out (valid
 * until the next call), or -errno with err set (nothing is cached then). */
int lutf_tier_prepare(const char *dir, const char *tier, const struct lutf_tier_prep **out,
		      char *err, size_t cap);
void lutf_tier_cache_clear(void);

/* landlock.c */
struct lutf_landlock {
	int fd;	     /* ruleset, -1 = none */
	int abi;     /* 0 = Landlock unavailable */
	bool net;    /* TCP bind/connect handled (ABI >= 4) */
	bool scoped; /* signals and abstract unix sockets scoped (ABI >= 6) */
};

/* The running kernel's Landlock ABI, or 0 when it has none (or it is off). */
int lutf_landlock_abi(void);
/* Build the ruleset (opens every path now: call it while they are still
 * reachable). ll->fd = -1 and 0 when Landlock is unavailable. */
int lutf_landlock_build(const struct lutf_policy *p, const char *app_dir, const char *scratch_dir,
			struct lutf_landlock *ll, char *err, size_t cap);
/* Enforce on the calling thread (threads it starts afterwards inherit it).
 * Needs no_new_privs. Closes the ruleset. */
int lutf_landlock_enforce(struct lutf_landlock *ll, char *err, size_t cap);
void lutf_landlock_close(struct lutf_landlock *ll);

/* identity.c: setgroups(0), setresgid, setresuid. uid/gid 0 = keep. */
int lutf_identity_enter(uint32_t uid, uint32_t gid, char *err, size_t cap);
/* Caps malloc arenas, sets the rlimits of sb (RLIMIT_AS skipped in sanitizer
 * builds: *as_set says whether it was set) and RLIMIT_CORE = 0. */
int lutf_limits_apply(const struct lutf_wk_sandbox *sb, bool *as_set, char *err, size_t cap);
/* True in an ASan/TSan build (where RLIMIT_AS must stay off). */
bool lutf_sanitizer_build(void);

/* sandbox.c: what a confined process got, for lutfd to report. */
struct lutf_sandbox_status {
	char tier[16];	      /* "" = unconfined */
	uint32_t nallowed;    /* distinct syscalls allowed */
	uint32_t uid, gid;    /* after the switch */
	int landlock_abi;     /* 0 = Landlock unavailable: no filesystem rules */
	bool landlock;	      /* a ruleset is enforced */
	bool landlock_net;    /* TCP bind/connect limited */
	bool landlock_scoped; /* signals, abstract unix sockets scoped */
	bool rlimit_as;	      /* RLIMIT_AS set */
	bool labors_fixed;
	char note[160]; /* what is missing and why; "" = nothing */
};

/*
 * Confine the calling process to sb's tier, in this order: read the policy
 * and build the Landlock ruleset (while still privileged), setgroups,
 * setresgid, setresuid, rlimits, no_new_privs, Landlock, before_filter(arg,
 * policy) (start threads here: they inherit Landlock and are caught by the
 * filter's thread sync), seccomp. A parent-death signal set before the
 * identity switch (which clears it) is armed again. On any failure the
 * process may be half confined: the caller must exit, never go on.
 * Returns 0 or -errno with err set; st is filled as far as it got.
 */
int lutf_sandbox_apply(const struct lutf_wk_sandbox *sb,
		       int (*before_filter)(void *arg, const struct lutf_policy *p), void *arg,
		       struct lutf_sandbox_status *st, char *err, size_t cap);
/* The same with a tier prepared beforehand (NULL, or one of another tier or
 * folder than sb names: read and compiled here, as above). Same order. */
int lutf_sandbox_apply_prepared(const struct lutf_wk_sandbox *sb, const struct lutf_tier_prep *prep,
				int (*before_filter)(void *arg, const struct lutf_policy *p),
				void *arg, struct lutf_sandbox_status *st, char *err, size_t cap);

/* "tier=basic syscalls=74 landlock=abi7 net=on scope=on uid=61000 ..." */
void lutf_sandbox_status_format(const struct lutf_sandbox_status *st, char *buf, size_t cap);

#endif /* LUTF_SANDBOX_H */
