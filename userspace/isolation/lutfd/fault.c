/* SPDX-License-Identifier: MIT */
/*
 * Fault containment: why a tenant's worker died, and the typed error its
 * clients get. The engine fails the Bricks a dead worker had started with
 * CRASHED and detail = the signal (lutf_runtime_worker_lost); lutfd, which
 * alone knows more (the SIGSYS probe, the cgroup's OOM count, its own kills),
 * rewrites those results. Invariant: the records of one tenant are consumed
 * in death order, and the CRASHED completions of a death all reach the main
 * thread before those of the next one (one reaper, FIFO queues), so each
 * result gets its own worker's cause.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "isolation.h"
#include "http.h"
#include "lutfd.h"
#include "prom.h"

#define STUCK_CHECK_MS 50     /* how often workers are checked for overdue Bricks */
#define DEATH_WINDOW_MS 60000 /* "N deaths in 60 s" in lutfctl status */

static const char *sig_name(int sig, char *buf, size_t cap)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev)
		snprintf(buf, cap, "SIG%s", abbrev);
	else
		snprintf(buf, cap, "signal %d", sig);
	return buf;
}

/*
 * The rules, first match wins (docs/daemon.md, "Faults"):
 *  SIGSYS                     -> KILLED_BY_POLICY, detail = syscall (or unknown)
 *  the cgroup's oom_kill moved -> OUT_OF_MEMORY, detail = signal
 *  anything else               -> CRASHED, detail = signal, saying why lutfd
 *                                 killed it when it did (deadline overrun,
 *                                 scribbled region)
 * A SIGSEGV or SIGABRT under RLIMIT_AS alone cannot be told from any other
 * crash (the app met a failed allocation), so it stays CRASHED.
 */
void lutfd_fault_explain(struct lutfd_tenant *t, pid_t pid, int status, struct lutfd_death *d)
{
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	char sn[32], sys[64];
	uint64_t ooms = 0;

	memset(d, 0, sizeof(*d));
	d->sig = (uint32_t)sig;
	d->detail = (uint32_t)sig;
	d->status = LUTF_STATUS_CRASHED;
	if (sig == SIGSYS) {
		const char *src = NULL;
		uint32_t nr;

		d->status = LUTF_STATUS_KILLED_BY_POLICY;
		if (lutfd_sigsys_take(pid, &nr, &src)) {
			d->detail = nr;
			snprintf(d->msg, sizeof(d->msg),
				 "killed by policy (%s, syscall %u, tier %s)",
				 lutfd_syscall_name(nr, sys, sizeof(sys)), nr, t->tier);
		} else {
			d->detail = LUTFD_SYSCALL_UNKNOWN;
			snprintf(d->msg, sizeof(d->msg),
				 "killed by policy (syscall unknown, tier %s)", t->tier);
		}
		return;
	}
	lutfd_sigsys_forget(pid);
	if (!lutfd_cg_oom_kills(&g_cg, t->name, &ooms) && ooms > t->oom_seen) {
		struct lutfd_cg_limits lim;

		lutfd_tenant_limits(t, &lim);
		d->status = LUTF_STATUS_OUT_OF_MEMORY;
		snprintf(d->msg, sizeof(d->msg),
			 "out of memory (the worker was OOM-killed at its %llu MiB limit)",
			 (unsigned long long)(lim.memory_bytes >> 20));
		t->oom_seen = ooms;
		return;
	}
	if (!sig && WEXITSTATUS(status) == LUTF_WK_EXIT_SANDBOX)
		snprintf(
		    d->msg, sizeof(d->msg),
		    "crashed (the worker could not confine itself to tier %s; see lutfd's log)",
		    t->tier);
	else if (!sig)
		snprintf(d->msg, sizeof(d->msg), "crashed (the worker exited with status %d)",
			 WEXITSTATUS(status));
	else if (pid == t->stuck_pid)
		snprintf(d->msg, sizeof(d->msg),
			 "crashed (%s: worker recycled, a call ran %u ms past its deadline)",
			 sig_name(sig, sn, sizeof(sn)), g_cfg.stuck_grace_ms);
	else if (pid == t->refused_pid && sig == SIGKILL)
		snprintf(d->msg, sizeof(d->msg), "crashed (refused at start by lutfd: %.*s)",
			 (int)sizeof(d->msg) - 40, t->refused_why);
	else if (pid == t->faulty_pid)
		snprintf(d->msg, sizeof(d->msg), "crashed (region fault: %s)",
			 lutf_fault_check_name(t->fault_check));
	else if (sig == SIGXCPU)
		snprintf(d->msg, sizeof(d->msg), "crashed (SIGXCPU: the worker's CPU-time limit)");
	else
		snprintf(d->msg, sizeof(d->msg), "crashed (%s)", sig_name(sig, sn, sizeof(sn)));
}

void lutfd_fault_record(struct lutfd_tenant *t, const struct lutfd_death *d, int nfailed,
			bool was_up)
{
	uint32_t cap = sizeof(t->death) / sizeof(t->death[0]);

	/* Checks that failed while the dead worker's Bricks were repaired
	 * (lutf_runtime_worker_lost) are that worker's, not the next one's. */
	t->faults_seen = lutf_runtime_region_faults(t->rt);
	if (nfailed > 0) {
		if (t->ndeath == cap) {
			/* Cannot happen unless completions stall: the oldest
			 * record's results then say only "crashed (signal N)". */
			memmove(&t->death[0], &t->death[1], (cap - 1) * sizeof(t->death[0]));
			t->ndeath--;
		}
		t->death[t->ndeath] = *d;
		t->death[t->ndeath].left = (uint32_t)nfailed;
		t->ndeath++;
	}
	if (t->recycle)
		return; /* asked to go: not a fault */
	t->last_death = *d;
	t->deaths_ms[t->ndeaths % (sizeof(t->deaths_ms) / sizeof(t->deaths_ms[0]))] =
	    lutfd_now_ms();
	t->ndeaths++;
	if (!was_up)
		t->fails_in_row++;
}

bool lutfd_fault_rewrite(struct lutfd_tenant *t, struct lutf_result *res)
{
	struct lutfd_death *d = &t->death[0];
	char sn[32];

	if (res->status != LUTF_STATUS_CRASHED)
		return false;
	if (!t->ndeath || res->detail != d->sig || res->output_len) {
		/* Not a dead worker's Brick (an invalid result, say): name the signal. */
		if (res->detail && !strcmp(res->error, lutf_status_str(LUTF_STATUS_CRASHED)))
			snprintf(res->error, sizeof(res->error), "crashed (%s)",
				 sig_name((int)res->detail, sn, sizeof(sn)));
		return false;
	}
	res->status = d->status;
	res->detail = d->detail;
	snprintf(res->error, sizeof(res->error), "%s", d->msg);
	if (--d->left == 0) {
		memmove(&t->death[0], &t->death[1], (t->ndeath - 1) * sizeof(t->death[0]));
		t->ndeath--;
	}
	return true;
}

bool lutfd_fault_refuse(const struct lutfd_tenant *t, uint32_t *status, uint32_t *detail, char *msg,
			size_t cap)
{
	if (t->up || t->fails_in_row < g_cfg.crash_loop_limit)
		return false;
	*status = t->last_death.status ? t->last_death.status : LUTF_STATUS_CRASHED;
	*detail = t->last_death.detail;
	snprintf(msg, cap,
		 "the worker of tenant %s failed to start %u times in a row (last: %s); "
		 "retrying every %u ms",
		 t->name, t->fails_in_row, t->last_death.msg[0] ? t->last_death.msg : "no worker",
		 t->backoff_ms);
	return true;
}

void lutfd_fault_describe(const struct lutfd_tenant *t, char *buf, size_t cap)
{
	uint32_t ring = sizeof(t->deaths_ms) / sizeof(t->deaths_ms[0]), recent = 0;
	uint64_t now = lutfd_now_ms();
	size_t n = 0;

	for (uint32_t i = 0; i < t->ndeaths && i < ring; i++)
		recent += now - t->deaths_ms[i] < DEATH_WINDOW_MS;
	if (t->restart_at_ms && !t->pid)
		n += (size_t)snprintf(
		    buf + n, cap - n, "backoff %u ms (next start in %llu ms), ", t->backoff_ms,
		    (unsigned long long)(t->restart_at_ms > now ? t->restart_at_ms - now : 0));
	else if (t->backoff_ms && n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "backoff %u ms, ", t->backoff_ms);
	if (n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "%u deaths in 60 s%s", recent,
				      recent >= ring ? " or more" : "");
	if (t->fails_in_row && n < cap)
		n += (size_t)snprintf(
		    buf + n, cap - n, ", %u failed starts in a row%s", t->fails_in_row,
		    t->fails_in_row >= g_cfg.crash_loop_limit ? " (calls refused)" : "");
	if (t->last_death.msg[0] && n < cap)
		snprintf(buf + n, cap - n, ", last: %s", t->last_death.msg);
}

void lutfd_fault_tick(uint64_t now_ms)
{
	static uint64_t last;
	uint64_t grace_ns = (uint64_t)g_cfg.stuck_grace_ms * 1000000ull;

	if (now_ms - last < STUCK_CHECK_MS)
		return;
	last = now_ms;
	/* Faults the Supervisor or crash repair found (no completion came with
	 * them), and calls past lutfd's own deadline. */
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		/* Words a correct worker never writes invalid (header layout,
		 * Brick states): a scribble no call happened to trip over. */
		if (t->rt && t->pid > 0 && t->pid != t->faulty_pid)
			lutf_runtime_audit(t->rt);
		lutfd_fault_check(t);
	}
	lutfd_dispatch_tick();
	if (!g_cfg.stuck_grace_ms)
		return;
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];
		uint32_t n;

		if (!t->rt || t->pid <= 0 || t->stuck_pid == t->pid)
			continue;
		n = lutf_runtime_overdue(t->rt, grace_ns);
		if (!n)
			continue;
		/* Its callers were answered DEADLINE already; the code cannot be
		 * stopped but by the worker's end. Queued Bricks run on the next. */
		lutfd_log("tenant %s: %u calls still running %u ms past their deadline; recycling "
			  "worker %d",
			  t->name, n, g_cfg.stuck_grace_ms, (int)t->pid);
		t->stuck_pid = t->pid;
		kill(t->pid, SIGKILL);
	}
}

int lutfd_fault_reset(struct lutfd_tenant *t)
{
	char msg[120];
	int n;

	/* Calls accepted between the fault and the death are in the region
	 * too: answer them before it is wiped. */
	snprintf(msg, sizeof(msg), "crashed (region fault: %s)",
		 lutf_fault_check_name(t->fault_check));
	lutfd_answer_tenant(t, LUTF_STATUS_CRASHED, SIGKILL, msg);
	n = lutf_runtime_reset(t->rt);
	lutfd_log("tenant %s: region reset after its region fault (%d calls dropped, answered "
		  "CRASHED)",
		  t->name, n);
	return 0;
}

void lutfd_fault_metrics(struct lutf_http_buf *b)
{
	lutf_prom_family(
	    b, "lutf_region_fault_checks", LUTF_PROM_COUNTER,
	    "Checks on words the tenant's worker wrote into its region that failed, by "
	    "check (each one recycles the worker).");
	for (size_t i = 0; i < g_state.n; i++) {
		const struct lutfd_tenant *t = g_state.t[i];
		uint64_t counts[LUTF_FAULT__COUNT];

		if (!t->rt)
			continue;
		lutf_runtime_faults(t->rt, counts);
		for (unsigned k = 1; k < LUTF_FAULT__COUNT; k++) {
			/* workers = N: one sample per worker (workers.c). */
			char wb[12];
			const char *lb[] = {"tenant",
					    t->name,
					    "check",
					    lutf_fault_check_name(k),
					    (t->primary || t->nwk > 1) ? "worker" : NULL,
					    wb,
					    NULL};

			snprintf(wb, sizeof(wb), "%u", t->widx);
			lutf_prom_counter(b, "lutf_region_fault_checks", lb, counts[k]);
		}
	}
	lutf_prom_family(b, "lutf_calls_expired", LUTF_PROM_COUNTER,
			 "Calls lutfd answered DEADLINE by its own deadline (no answer from the "
			 "worker).");
	lutf_prom_counter(b, "lutf_calls_expired", NULL, lutfd_dispatch_expired());
}
