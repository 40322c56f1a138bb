/* SPDX-License-Identifier: MIT */
/*
 * A lutfd that a benchmark starts for itself: fresh /tmp folders and private
 * BPF pins, a child that dies with the bench (PDEATHSIG), bounded waits for
 * start and stop, and the folders and pins removed again. Plus the Unix and
 * TCP connects the benches dial it with. Built on the tests' lutfd harness
 * (tests/daemon/daemon_util.h).
 */
#ifndef LUTF_BENCH_LUTFD_UTIL_H
#define LUTF_BENCH_LUTFD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct bench_lutfd {
	const char *name;    /* the bench's name: folder names and messages */
	const char *ingress; /* LUTF_INGRESS for lutfd: NULL as ours, "" unset */
	char dir[64];	     /* /tmp/lutf-<name>-XXXXXX; "" when none */
	char state[96], run[80], conf[96], log[96]; /* sizes as struct td's */
	char pin[40];	     /* bpf_pin_root: /sys/fs/bpf/lutfb-<name><pid> */
	pid_t pid;	     /* 0 when not running */
};

/*
 * Start lutfd as l->name on fresh folders, its config "[lutfd]", the private
 * bpf_pin_root, then conf_lines (or NULL). Waits up to wait_ms until the pid
 * file names the child and the control socket answers. Returns 0, or -1 with
 * a message and the log's end on stderr (bench_lutfd_stop still cleans up).
 */
int bench_lutfd_start(struct bench_lutfd *l, const char *conf_lines, int wait_ms);

/*
 * SIGTERM, then SIGKILL if lutfd has not exited within wait_ms; removes the
 * pins (a killed lutfd leaves them) and, unless LUTF_BENCH_KEEP is set, the
 * folders. Returns 0 when lutfd exited 0 on its own (or was not running), -1
 * otherwise (said on stderr with the log's end). Safe to call twice.
 */
int bench_lutfd_stop(struct bench_lutfd *l, int wait_ms);

/* The last 2 KiB of lutfd's log on stderr. */
void bench_lutfd_show_log(const struct bench_lutfd *l);

/* "<runtime dir>/<file>" into buf (control.sock, lutf.sock...); returns buf. */
const char *bench_lutfd_path(const struct bench_lutfd *l, const char *file, char *buf, size_t cap);

/* One line of "<runtime dir>/<file>" (tcp.addr, http.addr: "127.0.0.1:port")
 * without its line end; false when missing or empty. */
bool bench_lutfd_addr(const struct bench_lutfd *l, const char *file, char *out, size_t cap);

/* A connected Unix stream socket (close-on-exec), or -1. */
int bench_connect_unix(const char *path);

/* A connected TCP socket to "a.b.c.d:port" (TCP_NODELAY), or -1. */
int bench_connect_tcp(const char *hostport);

#endif /* LUTF_BENCH_LUTFD_UTIL_H */
