/* SPDX-License-Identifier: MIT */
/*
 * lutfd's start-up (startup.c): stage times for the log, and the set-up that
 * tenants need (labor_watch, cgroups, the SIGSYS probe) on threads while the
 * main thread reads the registry and opens its listeners.
 */
#ifndef LUTFD_STARTUP_H
#define LUTFD_STARTUP_H

#include <stdbool.h>
#include <stdint.h>

/* First thing in main(): the clock every stage is measured from. */
void lutfd_startup_begin(void);
/* The stage that began at the previous mark ended now; name it (a string
 * literal: kept, not copied). Main thread. */
void lutfd_startup_mark(const char *stage);
/*
 * Start the two set-up threads: one loads labor_watch (the Supervisor), the
 * other prepares isolation (cgroups, leftovers killed, the SIGSYS probe).
 * Call after the zygote and the watcher were forked and the signals blocked
 * (threads inherit the mask). When a thread cannot start, its work is left to
 * the first tenant, as without this call. Returns 0 (never fails).
 */
int lutfd_startup_prepare(void);
/*
 * Wait until both set-up threads are done (at once when they are, or never
 * started; at once on those threads themselves). Any thread: shutdown does,
 * before it takes the Supervisor and the probes down.
 */
void lutfd_startup_join(void);
/* Wait for the isolation thread only (cgroups, the watcher's targets, the
 * kernel log): what a tenant's worker needs before it starts. The BPF thread
 * (labor_watch, the SIGSYS probe) is not waited for: the Supervisor polls
 * until it is in. At once on the isolation thread itself. Any thread. */
void lutfd_startup_join_isolation(void);
/* Whether the BPF thread was started (then it loads labor_watch and the
 * SIGSYS probe; else the first tenant does, as without it). Any thread. */
bool lutfd_startup_bpf_beside(void);
/* LUTF_START_BPF_DELAY_MS=N (0..10000) in lutfd's environment: sleep N ms
 * (the BPF thread, before labor_watch's load). For tests and measurements of
 * the polled start only. */
void lutfd_startup_bpf_delay(void);
/* lutfd is ready (listeners open, registry tenants opened): log the stage
 * line, "start: config 0.21 ms, ... ready in 31.2 ms". Main thread. */
void lutfd_startup_ready(void);
/* On each loop pass until it returns false: log, once, when every tenant
 * that had functions at start has its worker up (or gave up starting it). */
bool lutfd_startup_tick(void);

/* tenant.c's hooks, run on the set-up threads: the one Supervisor, the SIGSYS
 * probe (after the isolation thread) and then labor_watch into the
 * Supervisor; isolation's once-only set-up. Returns 0 or -errno. */
int lutfd_tenant_prepare_supervisor(void);
void lutfd_tenant_prepare_isolation(void);

#endif /* LUTFD_STARTUP_H */
