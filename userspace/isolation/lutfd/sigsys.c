/* SPDX-License-Identifier: MIT */
/*
 * Which syscall killed a worker: the seccomp filter answers a forbidden call
 * with SIGSYS (kill-process); the probe bpf/sigsys.bpf.c on signal_generate
 * records the syscall number per worker. Without BPF, the kernel log's audit
 * line ("pid=N ... syscall=S") for that pid; else "syscall unknown".
 * LUTF_SIGSYS=kmsg in lutfd's environment skips the probe (the kernel log
 * alone, as on a host without BPF: the fallback's test), =none skips both,
 * =bpf keeps the probe alone (no kernel-log fallback: the probe's test).
 * Invariant: only pids lutfd registered are watched, and each is forgotten
 * when its exit has been handled, so the maps never fill with the dead.
 * The probe loads off the start's path (lutfd_sigsys_load, on startup.c's
 * BPF thread): until it is in, deaths are explained from the kernel log and
 * the pids to watch wait in a short list; mu guards the skeleton, that list
 * and the mode, since the main thread watches and takes meanwhile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
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
/* The probe reads the kernel's siginfo at these offsets, which are the
 * UAPI's: the same as <signal.h>'s siginfo_t. */
_Static_assert(offsetof(siginfo_t, si_code) == SIGSYS_OFF_CODE, "siginfo si_code offset");
_Static_assert(offsetof(siginfo_t, si_syscall) == SIGSYS_OFF_SYSCALL, "siginfo syscall offset");
_Static_assert(offsetof(siginfo_t, si_arch) == SIGSYS_OFF_ARCH, "siginfo arch offset");

#define PENDING_MAX 64 /* workers started before the probe loaded; more: kernel log */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t loaded_cv = PTHREAD_COND_INITIALIZER; /* g_want dropped */
static struct sigsys *g_skel;
static int g_kmsg = -1;
static const char *g_mode = "none";
static bool g_want;		     /* lutfd_sigsys_load should load the probe */
static bool g_inited, g_load_asked;  /* a load asked before init: init loads */
static bool g_loading;		     /* one load; g_want stays up until it ends */
static pid_t g_pending[PENDING_MAX]; /* watched before it loaded */
static unsigned g_npending;

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

#define KMSG_WAIT_MS 100 /* kauditd prints the audit record after the kill */

void lutfd_sigsys_init(const char *pin_root)
{
	const char *want = getenv("LUTF_SIGSYS");
	bool load;

	(void)pin_root; /* lutfd reads the maps itself; nothing to pin */
	/* Once, whichever thread comes first (startup.c's BPF thread or
	 * isolation's set-up); the other waits here until it is done. */
	pthread_mutex_lock(&mu);
	if (g_inited) {
		pthread_mutex_unlock(&mu);
		return;
	}
	g_inited = true;
	if (want && *want && strcmp(want, "auto") && strcmp(want, "kmsg") && strcmp(want, "none") &&
	    strcmp(want, "bpf")) {
		lutfd_log("LUTF_SIGSYS=%s unknown (auto, kmsg, bpf, none): auto", want);
		want = NULL;
	}
	if (want && !strcmp(want, "none")) {
		lutfd_log("LUTF_SIGSYS=none: SIGSYS deaths say \"syscall unknown\"");
		pthread_mutex_unlock(&mu);
		return;
	}
	if (want && !strcmp(want, "kmsg"))
		lutfd_log("LUTF_SIGSYS=kmsg: sigsys probe not loaded, the kernel log only");
	/* The fallback reads what is logged from now on (and drains it on every
	 * SIGSYS death, so it never reads far). */
	g_want = !want || strcmp(want, "kmsg");
	if (want && !strcmp(want, "bpf")) {
		lutfd_log("LUTF_SIGSYS=bpf: the sigsys probe only, no kernel-log fallback");
		load = g_load_asked;
		pthread_mutex_unlock(&mu);
		if (load)
			lutfd_sigsys_load();
		return;
	}
	g_kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (g_kmsg >= 0)
		lseek(g_kmsg, 0, SEEK_END);
	if (g_kmsg >= 0)
		g_mode = "kernel log";
	load = g_load_asked;
	pthread_mutex_unlock(&mu);
	if (load)
		lutfd_sigsys_load();
}

int lutfd_sigsys_load(void)
{
	libbpf_print_fn_t old;
	struct sigsys *skel;
	bool want;
	int err;

	pthread_mutex_lock(&mu);
	if (!g_inited) {
		g_load_asked = true; /* lutfd_sigsys_init loads it, once it ran */
		pthread_mutex_unlock(&mu);
		return 0;
	}
	want = g_want && !g_loading;
	g_loading = true;
	pthread_mutex_unlock(&mu);
	if (!want)
		return 0;
	old = libbpf_set_print(quiet);
	skel = sigsys__open();
	err = skel ? sigsys__load(skel) : -errno;
	if (!err)
		err = sigsys__attach(skel);
	libbpf_set_print(old);
	if (err) {
		lutfd_log("sigsys probe not loaded (%s); syscalls of SIGSYS deaths come from the "
			  "kernel log",
			  strerror(err < 0 ? -err : err));
		sigsys__destroy(skel);
		pthread_mutex_lock(&mu);
		g_want = false;
		g_npending = 0;
		pthread_cond_broadcast(&loaded_cv);
		pthread_mutex_unlock(&mu);
		return err < 0 ? err : -err;
	}
	pthread_mutex_lock(&mu);
	g_want = false;
	g_skel = skel;
	g_mode = "bpf (raw_tp/signal_generate)";
	for (unsigned i = 0; i < g_npending; i++) {
		__u32 key = (__u32)g_pending[i], one = 1;

		bpf_map__update_elem(g_skel->maps.sigsys_workers, &key, sizeof(key), &one,
				     sizeof(one), BPF_ANY);
	}
	g_npending = 0;
	pthread_cond_broadcast(&loaded_cv);
	pthread_mutex_unlock(&mu);
	lutfd_log("sigsys probe loaded: SIGSYS syscalls from bpf (raw_tp/signal_generate)");
	return 0;
}

void lutfd_sigsys_wait(unsigned ms)
{
	struct timespec until;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&mu);
	while (g_want && err != ETIMEDOUT)
		err = pthread_cond_timedwait(&loaded_cv, &mu, &until);
	pthread_mutex_unlock(&mu);
}

void lutfd_sigsys_watch(pid_t pid)
{
	__u32 key = (__u32)pid, one = 1;

	pthread_mutex_lock(&mu);
	if (g_skel)
		bpf_map__update_elem(g_skel->maps.sigsys_workers, &key, sizeof(key), &one,
				     sizeof(one), BPF_ANY);
	else if (g_want && g_npending < PENDING_MAX)
		g_pending[g_npending++] = pid;
	pthread_mutex_unlock(&mu);
}

void lutfd_sigsys_forget(pid_t pid)
{
	__u32 key = (__u32)pid;

	pthread_mutex_lock(&mu);
	for (unsigned i = 0; i < g_npending; i++)
		if (g_pending[i] == pid)
			g_pending[i--] = g_pending[--g_npending];
	if (g_skel) {
		bpf_map__delete_elem(g_skel->maps.sigsys_workers, &key, sizeof(key), 0);
		bpf_map__delete_elem(g_skel->maps.sigsys_seen, &key, sizeof(key), 0);
	}
	pthread_mutex_unlock(&mu);
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

	pthread_mutex_lock(&mu);
	if (g_skel &&
	    !bpf_map__lookup_elem(g_skel->maps.sigsys_seen, &key, sizeof(key), &s, sizeof(s), 0)) {
		*nr = s.nr;
		*source = "bpf";
		found = true;
	}
	pthread_mutex_unlock(&mu);
	lutfd_sigsys_forget(pid);
	if (!found && from_kmsg(pid, nr)) {
		*source = "kernel log";
		found = true;
	}
	return found;
}

const char *lutfd_sigsys_mode(void)
{
	const char *m;

	pthread_mutex_lock(&mu);
	m = g_mode;
	pthread_mutex_unlock(&mu);
	return m;
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
	g_want = g_inited = g_load_asked = g_loading = false;
	g_npending = 0;
	sigsys__destroy(g_skel);
	g_skel = NULL;
	if (g_kmsg >= 0)
		close(g_kmsg);
	g_kmsg = -1;
	g_mode = "none";
}
