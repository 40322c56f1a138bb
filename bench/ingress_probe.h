/* SPDX-License-Identifier: MIT */
/*
 * bench/ingress's probes of a running lutfd: CPU time, schedule-ins and
 * context switches of all its threads (/proc schedstat and status), a pipelined PING driver on plain
 * sockets (the ingress path without a worker) and a system call counter
 * (perf stat on raw_syscalls:sys_enter, when perf is installed).
 */
#ifndef LUTF_BENCH_INGRESS_PROBE_H
#define LUTF_BENCH_INGRESS_PROBE_H

#include <stdint.h>
#include <sys/types.h>

/* Sums over every thread of a process. */
struct proc_sample {
	uint64_t cpu_ns;  /* on-CPU time (schedstat: exact) */
	uint64_t main_ns; /* ... of the main thread (tid == pid) alone */
	uint64_t slices;  /* times a thread was put on a CPU (wake-ups and preemptions) */
	/* Context switches (status: voluntary_ctxt_switches, nonvoluntary_...):
	 * a thread gave up the CPU to wait, or was preempted. */
	uint64_t vol_cs, invol_cs;
};
/* Zeros if pid is gone. */
void probe_proc(pid_t pid, struct proc_sample *s);

/*
 * conns connections to the Unix socket at path, depth PINGs in flight on
 * each, for ns of wall time, then drain. Every reply is checked (REPLY of a
 * PING, status OK, empty). pings gets the replies counted. Returns 0 or
 * -errno (a message on stderr).
 */
int probe_ping(const char *path, unsigned conns, unsigned depth, uint64_t ns, uint64_t *pings);

/* A perf stat counting pid's system calls per thread. */
struct probe_sys {
	pid_t perf; /* 0: not running */
	pid_t target;
	char out[64];
};
/* Start counting. Returns 0, or -ENOENT when perf cannot be run here. */
int probe_sys_start(pid_t target, struct probe_sys *ps);
/* Stop; main gets the target's main thread's system calls, others the rest
 * of its threads'. Returns 0 or -errno (perf failed or printed nothing). */
int probe_sys_stop(struct probe_sys *ps, uint64_t *main, uint64_t *others);

#endif
