/* SPDX-License-Identifier: MIT */
/*
 * lutfd's side of tenant isolation (issue #6): cgroups (cgroup.c), the
 * SIGSYS probe (sigsys.c) and tenant identity and folders (identity.c).
 * Everything here runs on lutfd's main thread (or startup.c's set-up threads
 * before it reads their work; the SIGSYS probe's load has its own lock). The worker confines itself
 * (isolation/worker, through struct lutf_wk_sandbox in confinement.h); lutfd chooses the
 * identity, the limits and the cgroup, and explains deaths to clients.
 */
#ifndef LUTFD_ISOLATION_H
#define LUTFD_ISOLATION_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "confinement.h" /* struct lutf_wk_sandbox */

/* ---- cgroup.c ---- */

enum lutfd_cg_mode {
	LUTFD_CG_NONE = 0, /* rlimits only */
	LUTFD_CG_V1 = 1,   /* one hierarchy per controller (memory, pids, cpu, freezer) */
	LUTFD_CG_V2 = 2,   /* the unified hierarchy */
};

/* v1 freezer: lets watcher.c freeze a tenant before its kill walk (a fork
 * bomb cannot outrun it); v2 has cgroup.kill instead. */
enum { LUTFD_CG_MEMORY, LUTFD_CG_PIDS, LUTFD_CG_CPU, LUTFD_CG_FREEZER, LUTFD_CG__N };

struct lutfd_cg {
	enum lutfd_cg_mode mode;
	/* v2: [0] = <root>/<name>; v1: one base per controller, "" when absent */
	char base[LUTFD_CG__N][PATH_MAX];
	char why[200]; /* NONE: why no hierarchy is used */
};

struct lutfd_cg_limits {
	uint64_t memory_bytes; /* 0 = no limit */
	uint32_t pids_max;     /* 0 = no limit */
	uint32_t cpu_pct;      /* percent of one CPU; 0 = no limit */
};

/*
 * Choose and prepare a hierarchy. want: "auto" (v2, then v1, then none), "v2",
 * "v1" or "off". v2_root: a cgroup2 folder lutfd may manage ("" = its own
 * cgroup on the cgroup2 mount); v1_root: where v1 controllers are mounted.
 * Tenants go to <root>/<name>/<tenant>. Never fails: when nothing is usable
 * the mode is NONE and why says so. Returns the mode.
 */
enum lutfd_cg_mode lutfd_cg_init(struct lutfd_cg *cg, const char *want, const char *v2_root,
				 const char *v1_root, const char *name);
/* Create (or reuse) the tenant's cgroup and write its limits. Returns 0 or -errno. */
int lutfd_cg_tenant(const struct lutfd_cg *cg, const char *tenant,
		    const struct lutfd_cg_limits *lim);
/* Move pid (the whole process) into the tenant's cgroup. Returns 0 or -errno. */
int lutfd_cg_attach(const struct lutfd_cg *cg, const char *tenant, pid_t pid);
/*
 * The files a new worker writes "0" to, to join the tenant's cgroup itself
 * (the zygote's child, before it drops its uid): v1 each controller's
 * "tasks" (a thread moving itself skips cgroup_threadgroup_rwsem, the RCU
 * grace period a parent's cgroup.procs write waits for), v2 "cgroup.procs".
 * fds[] gets *n (<= LUTFD_CG__N) write-only fds, 0 without a hierarchy.
 * LUTF_TEST_CGROUP_FD=null (tests only) hands /dev/null instead.
 * Returns 0 or -errno (nothing left open) with why filled.
 */
int lutfd_cg_join_fds(const struct lutfd_cg *cg, const char *tenant, int fds[LUTFD_CG__N], int *n,
		      char *why, size_t cap);
/* Whether pid is in the tenant's cgroup in every hierarchy lutfd uses, from
 * the kernel's own lists (each tenant folder's cgroup.procs), which a worker
 * cannot write. Returns 0, -ESRCH (not there: why names the controller) or
 * -errno (a list unreadable). */
int lutfd_cg_holds(const struct lutfd_cg *cg, const char *tenant, pid_t pid, char *why, size_t cap);
/* OOM kills counted in the tenant's cgroup so far. Returns 0 or -errno. */
int lutfd_cg_oom_kills(const struct lutfd_cg *cg, const char *tenant, uint64_t *n);
/* SIGKILL every process in the tenant's cgroup (what a dead worker left:
 * children it forked). Returns how many were signalled, or -errno
 * (-ENOTSUP without a cgroup). */
int lutfd_cg_kill_all(const struct lutfd_cg *cg, const char *tenant);
/* Remove the tenant's cgroup (it must be empty). Returns how many of its folders
 * are still there (busy: a worker not yet reaped), 0 when gone. */
int lutfd_cg_tenant_remove(const struct lutfd_cg *cg, const char *tenant);
/* Remove the base folders (after every tenant's). */
void lutfd_cg_fini(struct lutfd_cg *cg);
/* "cgroup v2", "cgroup v1" or "rlimits only (<why>)". */
void lutfd_cg_describe(const struct lutfd_cg *cg, char *buf, size_t cap);
/* The CPU that lutfd's own cgroup lets it use, in thousandths of a CPU: the
 * smallest quota (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us) from
 * its cgroup up to the root; UINT32_MAX when no quota is set or none can be
 * read. The tenants' cgroups sit below it (v1) or below cgroup_v2_root. */
uint32_t lutfd_cg_own_cpu_milli(void);
/* lutfd's hierarchy (tenant.c). */
extern struct lutfd_cg g_cg;

/* ---- watcher.c: tenant processes die with lutfd ---- */

/*
 * Fork the watcher: a process that is not lutfd, holds the state lock (dup of
 * lock_fd) and a pidfd of lutfd, and when lutfd is gone (any exit, kill -9
 * included) kills every process in lutfd's tenant cgroups and of its tenant
 * uids, then exits, releasing the lock. Call before any thread. Returns 0 or
 * -errno.
 */
int lutfd_watcher_start(int lock_fd);
/* Kill what an earlier lutfd left in cg's tenant cgroups and under uid_range,
 * then tell the watcher what to kill (cg, uid_range) when lutfd dies. */
void lutfd_watcher_arm(const struct lutfd_cg *cg);
/* cg_kill.c: SIGKILL every process in the tenant cgroup folder dir of mode
 * (v1: frozen first through freezer_dir when not ""). Returns how many, or
 * -errno. */
int lutfd_cg_kill_dir(int mode, const char *dir, const char *freezer_dir);
/* cg_kill.c: SIGKILL every process with a real, effective or saved uid in
 * [lo, hi] (lo 0: none). Returns how many. */
int lutfd_kill_uids(uint32_t lo, uint32_t hi);

/* ---- sigsys.c ---- */

#define LUTFD_SYSCALL_UNKNOWN 0xffffffffu /* DETAIL of KILLED_BY_POLICY when unknown */

/* Open the kernel log (the fallback) and note whether the probe is wanted
 * (LUTF_SIGSYS). Cheap; never fails; once (later calls return at once, after
 * the first is done). Any thread. Before any other call here. */
void lutfd_sigsys_init(const char *pin_root);
/* Load the signal_generate probe when wanted (no kernel BTF: ~1 ms), any thread, once;
 * asked before lutfd_sigsys_init, that call loads it. Workers watched before
 * are watched from then on.
 * Returns 0 (loaded, or not wanted) or -errno (it logged why: the kernel log
 * stays the source). Not at the same time as lutfd_sigsys_fini. */
int lutfd_sigsys_load(void);
/* Wait (at most ms) until a wanted probe is in or failed to load: a worker
 * then never runs before its SIGSYS death can be explained. Any thread. */
void lutfd_sigsys_wait(unsigned ms);
/* Watch (or stop watching) a worker. */
void lutfd_sigsys_watch(pid_t pid);
void lutfd_sigsys_forget(pid_t pid);
/*
 * pid died of SIGSYS: the syscall its filter refused. Returns true and *nr,
 * with *source "bpf" or "kernel log", or false (unknown). Forgets pid.
 */
bool lutfd_sigsys_take(pid_t pid, uint32_t *nr, const char **source);
/* "bpf (raw_tp/signal_generate)", "kernel log" or "none". */
const char *lutfd_sigsys_mode(void);
/* "name" of a syscall of this architecture, or "syscall N" into buf. */
const char *lutfd_syscall_name(uint32_t nr, char *buf, size_t cap);
void lutfd_sigsys_fini(void);

/* ---- identity.c ---- */

struct lutfd_tenant;

/* A tier lutfd knows ("pure", "basic", "service", "compat"). */
bool lutfd_tier_valid(const char *tier);
/* g_cfg's uid_range: 0 and lo..hi (0, 0 when off), or -EINVAL. */
int lutfd_uid_range(uint32_t *lo, uint32_t *hi);
/* Make the state folder traversable by tenant uids (once, at start). */
void lutfd_identity_init(void);
/* Tenant uids can search every folder from / down to <state_dir>/apps
 * (checked at start and at each deploy). Returns 0, or -EACCES with msg
 * naming the folder that blocks. */
int lutfd_state_dir_check(char *msg, size_t cap);
/* Give t a uid/gid from uid_range if it has none. Returns 0, or -ENOSPC (range used up). */
int lutfd_tenant_identity(struct lutfd_tenant *t);
/* Hand t's app folder (read-only) and scratch folder to its uid. Returns 0 or -errno. */
int lutfd_tenant_dirs(struct lutfd_tenant *t);
/* The confinement t's next worker applies. Returns 0 or -ENAMETOOLONG. */
int lutfd_tenant_sandbox(const struct lutfd_tenant *t, struct lutf_wk_sandbox *sb);
/* The cgroup limits of t (its apps' MEMORY_MB, else the config's). */
void lutfd_tenant_limits(const struct lutfd_tenant *t, struct lutfd_cg_limits *lim);

#endif /* LUTFD_ISOLATION_H */
