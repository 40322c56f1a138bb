/* SPDX-License-Identifier: MIT */
/*
 * A server's process tree from /proc, for benches that report context
 * switches and CPU per call (bench/http).
 */
#ifndef LUTF_BENCH_PROC_TREE_H
#define LUTF_BENCH_PROC_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Context switches (voluntary + involuntary) and CPU time (schedstat, ns). */
struct bench_tstat {
	uint64_t cs, cpu_ns;
};

/* root and every process below it, root first; returns how many (<= cap). */
size_t bench_proc_tree(pid_t root, pid_t *out, size_t cap);

/* Every thread's counts so far: of root itself into self, of the processes
 * below it into kids. A thread that exited between two reads takes its
 * counts with it. */
void bench_tree_stat(pid_t root, struct bench_tstat *self, struct bench_tstat *kids);

/* Is every thread of root and of the processes below it on cpu alone? Says
 * on stderr how many are not. */
bool bench_tree_pinned(pid_t root, int cpu);

#endif /* LUTF_BENCH_PROC_TREE_H */
