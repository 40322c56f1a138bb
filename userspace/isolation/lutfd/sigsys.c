/* SPDX-License-Identifier: MIT */
/*
 * Which syscall killed a worker: the seccomp filter answers a forbidden call
 * with SIGSYS (kill-process); the probe bpf/sigsys.bpf.c on signal_generate
 * records the syscall number per worker. Without BPF, the kernel log's audit
 * line ("pid=N ... syscall=S") for that pid; else "syscall unknown".
 * LUTF_SIGSYS=kmsg in lutfd's environment skips the probe (the kernel log
 * alone, as on a host without BPF: the fallback's test), =none skips both.
 * Invariant: only pids lutfd registered are watched, and each is forgotten
 * when its exit has been handled, so the maps never fill with the dead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/sigsys.h"
#include "isolation.h"
#include "lutfd.h"
#include "sigsys.skel.h"

_Static_assert(sizeof(struct sigsys_seen) == 24, "sigsys_seen layout is shared with BPF");

static struct sigsys *g_skel;
static int g_kmsg = -1;
static const char *g_mode = "none";

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

#define KMSG_WAIT_MS 100 /* kauditd prints the audit record after the kill */

void lutfd_sigsys_init(const char *pin_root)
{
	const char *want = getenv("LUTF_SIGSYS");
	libbpf_print_fn_t old;
	int err;

	(void)pin_root; /* lutfd reads the maps itself; nothing to pin */
	if (want && *want && strcmp(want, "auto") && strcmp(want, "kmsg") && strcmp(want, "none")) {
		lutfd_log("LUTF_SIGSYS=%s unknown (auto, kmsg, none): auto", want);
		want = NULL;
	}
	if (want && !strcmp(want, "none")) {
		lutfd_log("LUTF_SIGSYS=none: SIGSYS deaths say \"syscall unknown\"");
		return;
	}
	if (want && !strcmp(want, "kmsg")) {
		lutfd_log("LUTF_SIGSYS=kmsg: sigsys probe not loaded, the kernel log only");
		goto kmsg;
	}
	old = libbpf_set_print(quiet);
	g_skel = sigsys__open();
	err = g_skel ? sigsys__load(g_skel) : -errno;
	if (!err)
		err = sigsys__attach(g_skel);
	libbpf_set_print(old);
	if (err) {
		lutfd_log("sigsys probe not loaded (%s); syscalls of SIGSYS deaths come from the "
			  "kernel log",
			  strerror(err < 0 ? -err : err));
		sigsys__destroy(g_skel);
		g_skel = NULL;
	} else {
		g_mode = "bpf (tp_btf/signal_generate)";
	}
kmsg:
	/* The fallback reads what is logged from now on (and drains it on every
	 * SIGSYS death, so it never reads far). */
	g_kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (g_kmsg >= 0)
		lseek(g_kmsg, 0, SEEK_END);
	if (!g_skel && g_kmsg >= 0)
		g_mode = "kernel log";
}

void lutfd_sigsys_watch(pid_t pid)
{
	__u32 key = (__u32)pid, one = 1;

	if (g_skel)
		bpf_map__update_elem(g_skel->maps.sigsys_workers, &key, sizeof(key), &one,
				     sizeof(one), BPF_ANY);
}

void lutfd_sigsys_forget(pid_t pid)
{
	__u32 key = (__u32)pid;

	if (!g_skel)
		return;
	bpf_map__delete_elem(g_skel->maps.sigsys_workers, &key, sizeof(key), 0);
	bpf_map__delete_elem(g_skel->maps.sigsys_seen, &key, sizeof(key), 0);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The audit record of pid's SIGSYS in the kernel log. Returns true and *nr.
 * seccomp queues the record and kauditd prints it, possibly after the exit
 * notice reached lutfd: with nothing found yet, wait up to KMSG_WAIT_MS for
 * more records (lutfd's main thread stalls that long only for a policy kill
 * on a host without the probe, whose record is missing or late).
 */
static bool from_kmsg(pid_t pid, uint32_t *nr)
{
	uint64_t until = mono_ms() + KMSG_WAIT_MS;
	char rec[2048], needle[32];
	bool found = false;

	if (g_kmsg < 0)
		return false;
	snprintf(needle, sizeof(needle), " pid=%d ", (int)pid);
	for (int i = 0; i < 4096; i++) {
		ssize_t n = read(g_kmsg, rec, sizeof(rec) - 1);
		char *p, *s;

		if (n < 0 && errno == EPIPE)
			continue; /* overwritten records: go on with the next */
		if (n < 0 && errno == EAGAIN && !found) {
			struct pollfd pf = {g_kmsg, POLLIN, 0};
			uint64_t now = mono_ms();

			if (now >= until || poll(&pf, 1, (int)(until - now)) <= 0)
				break;
			continue;
		}
		if (n <= 0)
			break;
		rec[n] = 0;
		p = strstr(rec, needle);
		s = p ? strstr(p, " syscall=") : NULL;
		if (s && strstr(p, " sig=31 ")) {
			*nr = (uint32_t)strtoul(s + 9, NULL, 10);
			found = true; /* keep reading: the last record is the newest */
		}
	}
	return found;
}

bool lutfd_sigsys_take(pid_t pid, uint32_t *nr, const char **source)
{
	__u32 key = (__u32)pid;
	struct sigsys_seen s;
	bool found = false;

	if (g_skel &&
	    !bpf_map__lookup_elem(g_skel->maps.sigsys_seen, &key, sizeof(key), &s, sizeof(s), 0)) {
		*nr = s.nr;
		*source = "bpf";
		found = true;
	}
	lutfd_sigsys_forget(pid);
	if (!found && from_kmsg(pid, nr)) {
		*source = "kernel log";
		found = true;
	}
	return found;
}

const char *lutfd_sigsys_mode(void)
{
	return g_mode;
}

const char *lutfd_syscall_name(uint32_t nr, char *buf, size_t cap)
{
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, (int)nr);

	if (name)
		snprintf(buf, cap, "%s", name);
	else
		snprintf(buf, cap, "syscall %u", nr);
	free(name);
	return buf;
}

void lutfd_sigsys_fini(void)
{
	sigsys__destroy(g_skel);
	g_skel = NULL;
	if (g_kmsg >= 0)
		close(g_kmsg);
	g_kmsg = -1;
	g_mode = "none";
}
