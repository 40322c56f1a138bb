/* SPDX-License-Identifier: MIT */
/*
 * The zygote and the tenant worker: messages between lutfd, the zygote and
 * workers (all SOCK_SEQPACKET socketpairs, one message per record).
 *
 * lutfd -> zygote   SPAWN (tenant, region size, sandbox) + fds [region memfd, ctl, log,
 *                   output: the worker's fd 1 and 2, then ncg cgroup files, then, with
 *                   lw_count > 0, a read-only fd of labor_state: the worker maps its
 *                   block (lw_first, lw_count slots) PROT_READ and closes the fd
 *                   before it confines itself];
 *                   PREPARE (sandbox: policy_dir and tier), no answer: parse and
 *                   compile that tier now, not at the first SPAWN that needs it
 * zygote -> lutfd   SPAWNED (pid or -errno), EXITED (pid, wait status) at any time
 * lutfd -> worker   on ctl: LOAD (TLV: APP, SO = path, EXPORT, CONFIG), START, STATUS;
 *                   each answered by a reply (i32 rc, then a text: an error, or
 *                   for STATUS the sandbox status line)
 * worker -> lutfd   on log: "function\0line" datagrams, dropped when lutfd lags
 *
 * A worker given cgroup files (v1 "tasks", v2 "cgroup.procs") writes "0" to
 * each, first thing after the fork and still root, then sends one unasked
 * ctl record (rc 0, or -errno and "cgroup: why", after which it exits with
 * LUTF_WK_EXIT_SANDBOX); lutfd reads it and then checks, from the cgroup's
 * own list, that the worker is there before it sends anything.
 * A worker confines itself before it reads its first ctl message. If that
 * fails it sends one unasked ctl record (rc = -errno, text "sandbox: why")
 * and a log datagram from "lutf-worker" with the same text, then exits with
 * status LUTF_WK_EXIT_SANDBOX: it never runs an app unconfined.
 */
#ifndef LUTF_WORKER_H
#define LUTF_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "confinement.h" /* struct lutf_wk_sandbox, LUTF_WK_EXIT_SANDBOX */

#define LUTF_WK_MSG_MAX (128u * 1024) /* largest ctl message (LOAD with configs) */
#define LUTF_WK_LOG_MAX 704u	      /* a log datagram: name + line */

enum lutf_zy_type {
	LUTF_ZY_SPAWN = 1,
	LUTF_ZY_SPAWNED = 2,
	LUTF_ZY_EXITED = 3,
	LUTF_ZY_PREPARE = 4,
};

struct lutf_zy_msg {
	uint32_t type;
	int32_t pid;		   /* SPAWNED: pid or -errno; EXITED: pid */
	int32_t status;		   /* EXITED: wait status */
	uint32_t has_sb;	   /* SPAWN: sb applies */
	uint32_t ncg;		   /* SPAWN: cgroup files after the 4 fds (<= LUTF_ZY_CG_MAX) */
	uint32_t flags;		   /* SPAWN: LUTF_ZY_PYTHON or 0 */
	uint64_t size;		   /* SPAWN: region bytes */
	uint32_t lw_first;	   /* SPAWN: first labor_watch slot lent (page-aligned) */
	uint32_t lw_count;	   /* SPAWN: slots lent; 0 = no view, no fd */
	char tenant[64];	   /* SPAWN */
	struct lutf_wk_sandbox sb; /* SPAWN */
};

#define LUTF_ZY_CG_MAX 4 /* cgroup files one SPAWN carries (v1: one per controller) */
/* SPAWN flags: the tenant has a Python app, so the worker must be forked
 * after the zygote started the interpreter (it starts it then, if it has not
 * yet: at birth it does not, so a C tenant's first worker never waits for
 * CPython). SPAWNED's status says whether the worker got it (1) or not (0). */
#define LUTF_ZY_PYTHON 1u

/* The direct take's view for a worker: a read-only fd of labor_state (owned
 * by the caller) and the block of slots lent (lutf_runtime_watch_lend). */
struct lutf_zy_watch {
	int fd; /* -1: none */
	uint32_t first, count;
};

enum lutf_wk_op {
	LUTF_WK_LOAD = 1,
	LUTF_WK_START = 2,  /* Labors begin taking Bricks */
	LUTF_WK_STATUS = 3, /* reply text: the sandbox status line */
};

struct lutf_zy_exit {
	pid_t pid;
	int status;
};

/* lutfd's handle on its zygote; used from lutfd's main thread only. */
struct lutf_zygote {
	pid_t pid;
	int fd;
	/* EXITED notices that arrived while a spawn waited for its answer: a
	 * ring of cap (grown, never dropping one), npending of them from head */
	int npending, head, cap;
	struct lutf_zy_exit *pending;
};

/*
 * Fork the zygote. Call before any thread exists: the zygote stays
 * single-threaded so that its forks are safe. keep_fd (or -1) is closed in
 * the zygote (e.g. the state lock). Returns 0 or -errno.
 */
int lutf_zygote_start(struct lutf_zygote *z, int keep_fd);

/*
 * Ask the zygote for a worker of tenant on the region memfd; ctl and log are
 * the worker's ends of its socketpairs; out (or -1: /dev/null) becomes its fd 1
 * and 2, never lutfd's own; sb (copied; NULL or an empty tier =
 * no confinement) is how the worker confines itself. Waits up to timeout_ms
 * for the answer; exit notices that arrive meanwhile are queued, all of them,
 * for lutf_zygote_next_exit. Returns 0 and *pid, or -errno (-ETIMEDOUT, -EPIPE
 * when the zygote is gone, -ENOMEM when no notice could be queued: it stays
 * in the socket, and the late answer of the spawn is killed when read).
 */
int lutf_zygote_spawn(struct lutf_zygote *z, const char *tenant, int memfd, size_t size, int ctl,
		      int log, int out, const struct lutf_wk_sandbox *sb, int timeout_ms,
		      pid_t *pid);
/* The same, and the worker joins its cgroup itself: cg[0..ncg) (ncg <=
 * LUTF_ZY_CG_MAX) are files it writes "0" to before anything else, then it
 * sends its unasked ctl record (see above). flags: LUTF_ZY_PYTHON or 0
 * (lutf_zygote_spawn sends LUTF_ZY_PYTHON); *python (if not NULL): whether
 * the worker was forked with the zygote's interpreter started (or tried). */
int lutf_zygote_spawn_cg(struct lutf_zygote *z, const char *tenant, int memfd, size_t size, int ctl,
			 int log, int out, const int *cg, int ncg, uint32_t flags,
			 const struct lutf_wk_sandbox *sb, int timeout_ms, pid_t *pid,
			 bool *python);
/* The same, lending the worker a view of its labor_watch slots (watch NULL
 * or fd -1: none): the fd goes with the SPAWN; the caller still closes its
 * own. */
int lutf_zygote_spawn_watch(struct lutf_zygote *z, const char *tenant, int memfd, size_t size,
			    int ctl, int log, int out, const int *cg, int ncg, uint32_t flags,
			    const struct lutf_wk_sandbox *sb, const struct lutf_zy_watch *watch,
			    int timeout_ms, pid_t *pid, bool *python);

/*
 * Have the zygote parse and compile sb's tier (policy_dir, tier) now, so that
 * the first worker of that tier does not wait for it. The zygote keeps every
 * tier it compiled (for a worker it forks, one it prepared or compiled at an
 * earlier SPAWN) and compiles it again when a policy file changed on disk.
 * No answer; a tier that does not compile fails at its SPAWN instead, in the
 * worker, with the error. Returns 0 or -EPIPE.
 */
int lutf_zygote_prepare(struct lutf_zygote *z, const struct lutf_wk_sandbox *sb);

/*
 * Next worker exit the zygote reported (queued ones first, then the socket,
 * without blocking). Returns 1 with pid and status, 0 if none, -EPIPE if the
 * zygote is gone.
 */
int lutf_zygote_next_exit(struct lutf_zygote *z, pid_t *pid, int *status);

/* The worker process body (entered in the zygote's child); never returns.
 * sb NULL or with an empty tier: no confinement. */
__attribute__((noreturn)) void lutf_worker_main(const char *tenant, int memfd, size_t size, int ctl,
						int log, const struct lutf_wk_sandbox *sb);
/* The same with sb's tier prepared by the zygote (NULL: the worker reads and
 * compiles it itself) and watch (NULL or fd -1: none) the view of its
 * labor_watch slots: mapped PROT_READ and the fd closed before the sandbox
 * and before the first message (a failed map: no view, said on stderr). */
struct lutf_tier_prep;
__attribute__((noreturn)) void lutf_worker_main_prepared(const char *tenant, int memfd, size_t size,
							 int ctl, int log,
							 const struct lutf_wk_sandbox *sb,
							 const struct lutf_tier_prep *prep,
							 const struct lutf_zy_watch *watch);

#endif /* LUTF_WORKER_H */
