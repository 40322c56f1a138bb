/* SPDX-License-Identifier: MIT */
/* The hand-off through lutfd, measured by bench/daemon (daemon_handoff.c). */
#ifndef LUTF_BENCH_DAEMON_HANDOFF_H
#define LUTF_BENCH_DAEMON_HANDOFF_H

#include <stdint.h>

/*
 * rounds hand-offs on data_fd (a connection to lutf.sock) for tenant, whose
 * app exports block and stamp (bench/apps/handoff_app.c) with its fifo
 * config naming the FIFO open as fifo_fd, gap_us apart (300: every Labor has
 * parked again; 0: back to back, the Labor released last round still spins).
 * Fills lat[] (ns). Returns the number measured, or -1 on a failed call.
 */
int daemon_handoff_run(int data_fd, int fifo_fd, const char *tenant, uint64_t *lat, int rounds,
		       unsigned gap_us);

#endif
