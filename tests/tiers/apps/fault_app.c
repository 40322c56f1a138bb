/* SPDX-License-Identifier: MIT */
/*
 * Misbehaving functions for the fault-containment tests (tests/tiers/
 * test_faults.c) and the tier benchmark: each does one bad thing on purpose.
 * Inputs are small decimal numbers where a function takes one.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lutf/function.h>

LUTF_APP_ABI;

/* The input as a number (0 when absent). */
static long num(struct lutf_call *call)
{
	char buf[32];
	size_t n = call->input_len < sizeof(buf) - 1 ? call->input_len : sizeof(buf) - 1;

	memcpy(buf, call->input, n);
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int reply(struct lutf_call *call, const char *fmt, long v)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), fmt, v);

	return lutf_write(call, buf, (size_t)n);
}

/*
 * A file next to the app's .so named "<so>.crash-on-init" makes the app's
 * init crash: the test's way to make every worker start fail.
 */
int lutf_app_init(void **state);
__attribute__((visibility("default"))) int lutf_app_init(void **state)
{
	char path[4200];
	Dl_info info;

	if (dladdr((void *)lutf_app_init, &info) && info.dli_fname) {
		int fd;

		snprintf(path, sizeof(path), "%s.crash-on-init", info.dli_fname);
		/* open, not access: openat is in every tier (dlopen needs it). */
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			raise(SIGSEGV);
		}
	}
	*state = NULL;
	return 0;
}

LUTF_FUNCTION(ok)
{
	return lutf_write(call, call->input, call->input_len);
}

/* Sleep <input> ms, then answer. */
LUTF_FUNCTION(slow)
{
	long ms = num(call);

	sleep_ms(ms);
	return reply(call, "slept %ld", ms);
}

/* After <input> ms, a wild write. */
LUTF_FUNCTION(segv)
{
	static volatile uintptr_t where = 8; /* the compiler cannot see it is bad */

	sleep_ms(num(call));
	*(volatile int *)where = 1;
	return 0;
}

LUTF_FUNCTION(abrt)
{
	sleep_ms(num(call));
	abort();
}

LUTF_FUNCTION(spin)
{
	volatile uint64_t n = 0;

	for (;;)
		n++;
	return 0;
}

/* Allocate and touch 1 MiB blocks until refused (up to <input> MiB, default 4096). */
LUTF_FUNCTION(hog)
{
	long max = num(call) > 0 ? num(call) : 4096, got = 0;
	void *prev = NULL;

	while (got < max) {
		void **p = malloc(1 << 20);

		if (!p) {
			lutf_fail(call, "malloc refused");
			return 0;
		}
		memset(p, 0x5a, 1 << 20);
		*p = prev; /* keep them all reachable */
		prev = p;
		got++;
	}
	return reply(call, "allocated %ld MiB", got);
}

/* fork until refused; children sleep a second and leave. */
LUTF_FUNCTION(forkbomb)
{
	long n = 0;

	for (; n < 100000; n++) {
		pid_t pid = fork();

		if (pid == 0) {
			sleep_ms(1000);
			_exit(0);
		}
		if (pid < 0)
			break;
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return reply(call, "fork refused after %ld children", n);
}

/* Syscalls that tiers allow or not: each answers what it got. */
LUTF_FUNCTION(sys_socket)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd >= 0)
		close(fd);
	return reply(call, "socket %ld", fd >= 0 ? 0 : -errno);
}

LUTF_FUNCTION(sys_eventfd)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return reply(call, "eventfd %ld", fd >= 0 ? 0 : -errno);
}

LUTF_FUNCTION(sys_io_uring)
{
	long r = syscall(__NR_io_uring_setup, 4, calloc(1, 256));

	return reply(call, "io_uring_setup %ld", r >= 0 ? 0 : -errno);
}

LUTF_FUNCTION(sys_ptrace)
{
	long r = syscall(__NR_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);

	return reply(call, "ptrace %ld", r >= 0 ? 0 : -errno);
}

/* 100 futex wakes of a word nobody waits on: the benchmark's cheap syscall. */
LUTF_FUNCTION(futex100)
{
	static uint32_t word;

	for (int i = 0; i < 100; i++)
		syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return lutf_write(call, "ok", 2);
}

/* Open (read) the file named by the input: "0" or "-errno". */
LUTF_FUNCTION(read_path)
{
	char path[1024];
	size_t n = call->input_len < sizeof(path) - 1 ? call->input_len : sizeof(path) - 1;
	int fd;

	memcpy(path, call->input, n);
	path[n] = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return reply(call, "open %ld", fd >= 0 ? 0 : -errno);
}

/* Create a file in the folder named by the input. */
LUTF_FUNCTION(write_path)
{
	char path[1100];
	size_t n = call->input_len < 1000 ? call->input_len : 1000;
	int fd;

	memcpy(path, call->input, n);
	snprintf(path + n, sizeof(path) - n, "/probe-%d", (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	return reply(call, "create %ld", fd >= 0 ? 0 : -errno);
}

/* Signal 0 to the pid given: "0" or "-errno". */
LUTF_FUNCTION(signal_pid)
{
	long pid = num(call);

	if (pid <= 1)
		return reply(call, "kill %ld", -EINVAL);
	return reply(call, "kill %ld", kill((pid_t)pid, 0) == 0 ? 0 : -errno);
}

LUTF_FUNCTION(whoami)
{
	return reply(call, "uid %ld", (long)getuid());
}
