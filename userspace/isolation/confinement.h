/* SPDX-License-Identifier: MIT */
/*
 * The confinement contract between lutfd and a tenant's worker: what lutfd
 * asks (struct lutf_wk_sandbox, filled by isolation/lutfd/tenant_identity.c,
 * sent whole inside the zygote's SPAWN message) and how the worker says it
 * could not comply (LUTF_WK_EXIT_SANDBOX, read by isolation/lutfd/fault.c).
 * The worker's side (isolation/worker/) applies it; nothing else is shared.
 */
#ifndef LUTF_CONFINEMENT_H
#define LUTF_CONFINEMENT_H

#include <stdint.h>

#define LUTF_WK_EXIT_SANDBOX 3 /* exit status: the sandbox could not be applied */

/*
 * How a worker confines itself before it loads any app (issue #6; contract
 * between lutfd, which fills it, and the worker, which applies it in this
 * order: read the policy and open the Landlock paths, setgroups, setresgid,
 * setresuid, rlimits, no_new_privs, Landlock, start the Labors (held until
 * START; they inherit Landlock), seccomp on every thread, then the apps).
 * Sent whole inside the SPAWN message. policy_dir "" = LUTF_POLICY_DIR (the
 * build-time default from CMake, userspace/isolation/worker/CMakeLists.txt).
 */
struct lutf_wk_sandbox {
	char tier[16];	       /* "pure", "basic", "service", "compat"; "" = no confinement */
	uint32_t uid, gid;     /* 0 = keep lutfd's identity (tests without an id range) */
	char policy_dir[256];  /* where <tier>.policy files live */
	char app_dir[256];     /* the tenant's app folder: read + execute */
	char scratch_dir[256]; /* writable in tiers that allow it; "" = none */
	uint64_t rlimit_as;    /* bytes; 0 = unlimited (sanitizer builds skip it) */
	uint64_t rlimit_fsize; /* bytes; 0 = unlimited */
	uint32_t rlimit_cpu_s; /* 0 = unlimited; a backstop, deadlines bound each call */
	uint32_t rlimit_nofile, rlimit_nproc; /* 0 = leave as is */
	uint32_t pad;
};
_Static_assert(sizeof(struct lutf_wk_sandbox) == 824, "lutf_wk_sandbox travels whole in SPAWN");

#endif /* LUTF_CONFINEMENT_H */
