/* SPDX-License-Identifier: MIT */
/*
 * Tier sandboxes on real processes: a forked child confines itself to a tier,
 * does one thing, and reports through a pipe; the parent checks the answer or
 * that the kernel killed the child with SIGSYS. For every tier, one thing it
 * allows works and one just outside it kills.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/futex.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "require.h"
#include "sandbox.h"
#include "worker.h"

static char base[64], app_dir[128], scratch_dir[128], outside[128];

static void setup(void)
{
	char cmd[512];
	FILE *f;

	snprintf(base, sizeof(base), "/tmp/lutf-tiers-XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	chmod(base, 0755);
	snprintf(app_dir, sizeof(app_dir), "%s/app", base);
	snprintf(scratch_dir, sizeof(scratch_dir), "%s/scratch", base);
	snprintf(outside, sizeof(outside), "%s/outside.txt", base);
	cr_assert_eq(mkdir(app_dir, 0755), 0);
	cr_assert_eq(mkdir(scratch_dir, 0777), 0);
	chmod(scratch_dir, 0777);
	snprintf(cmd, sizeof(cmd), "cp %s %s/libtier_app.so", TIER_APP, app_dir);
	cr_assert_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/data.txt", app_dir);
	f = fopen(cmd, "w");
	fputs("inside", f);
	fclose(f);
	f = fopen(outside, "w");
	fputs("outside", f);
	fclose(f);
	chmod(outside, 0644);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	(void)!system(cmd);
}

TestSuite(sandbox, .init = setup, .fini = teardown, .timeout = 30);

static void sb_init(struct lutf_wk_sandbox *sb, const char *tier)
{
	memset(sb, 0, sizeof(*sb));
	snprintf(sb->tier, sizeof(sb->tier), "%s", tier);
	/* A mutated copy of the policies can be tried: the tests must fail. */
	snprintf(sb->policy_dir, sizeof(sb->policy_dir), "%s",
		 getenv("LUTF_TEST_POLICY_DIR") ? getenv("LUTF_TEST_POLICY_DIR") : LUTF_POLICY_DIR);
	snprintf(sb->app_dir, sizeof(sb->app_dir), "%s", app_dir);
	snprintf(sb->scratch_dir, sizeof(sb->scratch_dir), "%s", scratch_dir);
}

enum { R_SANDBOX_FAILED = 99 };

struct outcome {
	bool signaled;
	int sig;       /* signaled */
	int exit_code; /* else */
	int value;     /* what op returned (exit_code 0) */
};

/*
 * Fork; the child applies sb (with before(arg) between Landlock and seccomp,
 * if given), runs op(arg) and writes its int result to the pipe.
 */
static struct outcome run(const struct lutf_wk_sandbox *sb,
			  int (*before)(void *, const struct lutf_policy *), int (*op)(void *),
			  void *arg)
{
	struct outcome o = {0};
	int pfd[2], status;
	pid_t pid;

	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct lutf_sandbox_status st;
		char err[300] = "";
		int v;

		close(pfd[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (lutf_sandbox_apply(sb, before, arg, &st, err, sizeof(err))) {
			fprintf(stderr, "sandbox: %s\n", err);
			_exit(R_SANDBOX_FAILED);
		}
		v = op(arg);
		(void)!write(pfd[1], &v, sizeof(v));
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &o.value, sizeof(o.value)) != sizeof(o.value))
		o.value = -9999;
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	o.signaled = WIFSIGNALED(status);
	o.sig = o.signaled ? WTERMSIG(status) : 0;
	o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	return o;
}

static void expect_value(struct outcome o, int want, const char *what)
{
	cr_assert_not(o.signaled, "%s: killed by signal %d", what, o.sig);
	cr_assert_eq(o.exit_code, 0, "%s: exit %d (99 = sandbox failed)", what, o.exit_code);
	cr_assert_eq(o.value, want, "%s: got %d, want %d", what, o.value, want);
}

static void expect_sigsys(struct outcome o, const char *what)
{
	cr_assert(o.signaled && o.sig == SIGSYS, "%s: want SIGSYS, got %s %d", what,
		  o.signaled ? "signal" : "exit", o.signaled ? o.sig : o.exit_code);
	cr_assert_eq(o.value, -9999, "%s: the child reported before dying", what);
}

/* ---- operations run inside the sandbox (return 0 or -errno) ---- */

static int op_dlopen_app(void *arg)
{
	char path[256];
	void *h;
	int (*fn)(void);

	snprintf(path, sizeof(path), "%s/libtier_app.so", app_dir);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return -ENOENT;
	fn = (int (*)(void))dlsym(h, "tier_answer");
	return fn ? fn() : -ESRCH;
}

static int op_compute(void *arg)
{
	uint32_t word = 0;
	struct timespec ts;
	void *big = malloc(64 << 20); /* mmap */
	int r;

	if (!big)
		return -ENOMEM;
	memset(big, 1, 1 << 20);
	free(big);
	if (syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0)
		return -errno;
	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts))
		return -errno;
	r = op_dlopen_app(arg);
	return r;
}

static void *thread_fn(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

static int op_thread(void *arg)
{
	pthread_t t;
	void *ret = NULL;
	int rc = pthread_create(&t, NULL, thread_fn, (void *)41);

	if (rc)
		return -rc;
	pthread_join(t, &ret);
	return (int)(uintptr_t)ret;
}

static int op_clone3(void *arg)
{
	long r = syscall(SYS_clone3, NULL, 0);

	return r < 0 ? -errno : (int)r;
}

/* No wait4 here (basic lacks it): a kill must come from clone itself. */
static int op_fork(void *arg)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(7);
	return pid < 0 ? -errno : 7;
}

static int op_eventfd(void *arg)
{
	uint64_t v = 5;
	int fd = eventfd(0, EFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (write(fd, &v, sizeof(v)) != sizeof(v) || read(fd, &v, sizeof(v)) != sizeof(v))
		return -errno;
	close(fd);
	return (int)v;
}

static int op_socket(void *arg)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int op_connect(void *arg)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)(uintptr_t)arg),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return -errno;
	if (write(fd, "x", 1) != 1)
		return -errno;
	close(fd);
	return 0;
}

static int op_listen(void *arg)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	return listen(fd, 1) ? -errno : 0;
}

static int op_unshare(void *arg)
{
	return syscall(SYS_unshare, 0) ? -errno : 0;
}

static int op_io_uring(void *arg)
{
	struct io_uring_params p;
	long fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(SYS_io_uring_setup, 4, &p);
	return fd < 0 ? -errno : 0;
}

static int op_read(void *arg)
{
	char buf[16] = "";
	int fd = open((const char *)arg, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (read(fd, buf, sizeof(buf)) <= 0)
		return -EIO;
	close(fd);
	return (int)buf[0];
}

static int op_write_scratch(void *arg)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/made.txt", scratch_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, "ok", 2) != 2)
		return -EIO;
	close(fd);
	return unlink(path) ? -errno : 0;
}

/* ---- per tier: one allowed thing works, one just outside kills ---- */

Test(sandbox, pure_computes_and_loads_apps)
{
	struct lutf_wk_sandbox sb;

	sb_init(&sb, "pure");
	expect_value(run(&sb, NULL, op_compute, NULL), 42, "pure: memory, futex, clock, dlopen");
}

Test(sandbox, pure_kills_thread_creation)
{
	struct lutf_wk_sandbox sb;

	sb_init(&sb, "pure");
	expect_sigsys(run(&sb, NULL, op_thread, NULL), "pure: pthread_create (clone)");
}

Test(sandbox, basic_runs_threads_and_eventfds)
{
	struct lutf_wk_sandbox sb;

	sb_init(&sb, "basic");
	expect_value(run(&sb, NULL, op_thread, NULL), 42, "basic: pthread_create");
	expect_value(run(&sb, NULL, op_eventfd, NULL), 5, "basic: eventfd");
	expect_value(run(&sb, NULL, op_dlopen_app, NULL), 42, "basic: dlopen");
}

Test(sandbox, basic_kills_fork_and_sockets)
{
	struct lutf_wk_sandbox sb;

	sb_init(&sb, "basic");
	expect_sigsys(run(&sb, NULL, op_fork, NULL), "basic: fork (clone without CLONE_THREAD)");
	expect_sigsys(run(&sb, NULL, op_socket, NULL), "basic: socket");
}

Test(sandbox, service_connects_out_but_cannot_listen)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	struct lutf_wk_sandbox sb;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), cfd;
	char c = 0;

	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
	sb_init(&sb, "service");
	expect_value(run(&sb, NULL, op_connect, (void *)(uintptr_t)ntohs(a.sin_port)), 0,
		     "service: outbound TCP");
	cfd = accept(lfd, NULL, NULL);
	cr_assert_geq(cfd, 0);
	cr_assert_eq(read(cfd, &c, 1), 1);
	cr_assert_eq(c, 'x');
	close(cfd);
	close(lfd);
	expect_sigsys(run(&sb, NULL, op_listen, NULL), "service: listen");
}

Test(sandbox, compat_forks_but_cannot_unshare)
{
	struct lutf_wk_sandbox sb;

	sb_init(&sb, "compat");
	expect_value(run(&sb, NULL, op_fork, NULL), 7, "compat: fork");
	expect_value(run(&sb, NULL, op_dlopen_app, NULL), 42, "compat: dlopen");
	expect_sigsys(run(&sb, NULL, op_unshare, NULL), "compat: unshare");
}

Test(sandbox, every_tier_kills_io_uring_and_answers_clone3_enosys)
{
	static const char *tiers[] = {"pure", "basic", "service", "compat"};

	for (size_t i = 0; i < 4; i++) {
		struct lutf_wk_sandbox sb;

		sb_init(&sb, tiers[i]);
		expect_sigsys(run(&sb, NULL, op_io_uring, NULL), tiers[i]);
		expect_value(run(&sb, NULL, op_clone3, NULL), -ENOSYS, tiers[i]);
	}
}

/* ---- Landlock ---- */

Test(sandbox, landlock_keeps_reads_to_the_app_folder)
{
	struct lutf_wk_sandbox sb;
	char inside[256];

	LUTF_REQUIRE("landlock", lutf_landlock_abi() > 0, "Landlock unavailable in this kernel");
	snprintf(inside, sizeof(inside), "%s/data.txt", app_dir);
	sb_init(&sb, "basic");
	expect_value(run(&sb, NULL, op_read, inside), 'i', "basic: read in the app folder");
	expect_value(run(&sb, NULL, op_read, outside), -EACCES, "basic: read outside it");
	expect_value(run(&sb, NULL, op_read, "/etc/passwd"), -EACCES, "basic: /etc");
	sb_init(&sb, "pure");
	expect_value(run(&sb, NULL, op_read, outside), -EACCES, "pure: read outside");
}

Test(sandbox, scratch_is_writable_in_service_not_in_basic)
{
	struct lutf_wk_sandbox sb;

	LUTF_REQUIRE("landlock", lutf_landlock_abi() > 0, "Landlock unavailable in this kernel");
	sb_init(&sb, "service");
	expect_value(run(&sb, NULL, op_write_scratch, NULL), 0, "service: scratch write");
	sb_init(&sb, "basic");
	/* basic lacks unlink, but open(O_CREAT) is refused first. */
	expect_value(run(&sb, NULL, op_write_scratch, NULL), -EACCES, "basic: scratch write");
}

/* Threads started between Landlock and seccomp (as the worker starts its
 * Labors) are confined too: the filter's thread sync reaches them. */
static int gate;
static void *late_thread(void *arg)
{
	while (!__atomic_load_n(&gate, __ATOMIC_ACQUIRE))
		syscall(SYS_futex, &gate, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	if ((uintptr_t)arg == 1)
		(void)!socket(AF_INET, SOCK_STREAM, 0); /* kills the process */
	return (void *)(intptr_t)op_read(outside);
}

static pthread_t early;
static int start_early(void *arg, const struct lutf_policy *p)
{
	return -pthread_create(&early, NULL, late_thread, arg);
}

static int op_release_early(void *arg)
{
	void *ret;

	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &gate, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	pthread_join(early, &ret);
	return (int)(intptr_t)ret;
}

Test(sandbox, threads_started_before_the_filter_are_confined)
{
	struct lutf_wk_sandbox sb;

	sb_init(&sb, "pure");
	expect_sigsys(run(&sb, start_early, op_release_early, (void *)1),
		      "pure: socket on a thread started before the filter");
	if (lutf_landlock_abi() > 0)
		expect_value(run(&sb, start_early, op_release_early, (void *)0), -EACCES,
			     "pure: Landlock on a thread started before the filter");
}

/* ---- identity, signals, limits ---- */

static int op_identity(void *arg)
{
	pid_t victim = (pid_t)(intptr_t)arg;
	uid_t r, e, s;

	if (getresuid(&r, &e, &s) || r != 99000 || e != 99000 || s != 99000)
		return -1;
	if (getgid() != 99000 || getegid() != 99000 || getgroups(0, NULL) != 0)
		return -2;
	if (kill(victim, SIGKILL) == 0)
		return -3;
	return -errno;
}

static int op_signal(void *arg)
{
	return kill((pid_t)(intptr_t)arg, 0) ? -errno : 0;
}

static pid_t start_victim(uid_t uid)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		pid_t parent = getppid();

		if (uid &&
		    (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
			_exit(1);
		/* After the switch, which clears it: never outlive the test. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(1);
		close(1);
		close(2);
		pause();
		_exit(0);
	}
	return pid;
}

static void stop_victim(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "the victim died of something else: it was reached");
}

/* uids 99000 and 99001: outside lutfd's default uid_range (61000-61999), so
 * that an operator's lutfd on this host never kills the test's processes. */
Test(sandbox, runs_as_its_uid_and_cannot_signal_another)
{
	struct lutf_wk_sandbox sb;
	pid_t victim;

	LUTF_REQUIRE("root", lutf_test_is_root(), "switching uid needs root");
	victim = start_victim(99001);
	sb_init(&sb, "compat"); /* compat allows kill: only the uid stops it */
	sb.uid = sb.gid = 99000;
	expect_value(run(&sb, NULL, op_identity, (void *)(intptr_t)victim), -EPERM,
		     "uid 99000 signals uid 99001");
	stop_victim(victim);
}

Test(sandbox, landlock_scopes_signals)
{
	struct lutf_wk_sandbox sb;
	pid_t victim;

	LUTF_REQUIRE("landlock", lutf_landlock_abi() >= 6, "Landlock ABI < 6: no signal scoping");
	victim = start_victim(0);
	sb_init(&sb, "compat"); /* same uid, kill allowed: only Landlock stops it */
	expect_value(run(&sb, NULL, op_signal, (void *)(intptr_t)victim), -EPERM,
		     "a signal out of the Landlock domain");
	stop_victim(victim);
}

static int op_limits(void *arg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_CORE, &rl) || rl.rlim_cur != 0 || rl.rlim_max != 0)
		return -1;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur != 64)
		return -2;
	if (getrlimit(RLIMIT_CPU, &rl) || rl.rlim_cur != 30 || rl.rlim_max != 31)
		return -3;
	if (getrlimit(RLIMIT_FSIZE, &rl) || rl.rlim_cur != 1 << 20)
		return -4;
	if (getrlimit(RLIMIT_AS, &rl))
		return -5;
	if (lutf_sanitizer_build())
		return rl.rlim_cur == RLIM_INFINITY ? 0 : -6;
	if (rl.rlim_cur != 1ull << 32)
		return -7;
	/* Inside the limit malloc works; far beyond it, it fails cleanly. */
	if (!malloc(1 << 20))
		return -8;
	return malloc(8ull << 30) ? -9 : 0;
}

Test(sandbox, rlimits_are_set)
{
	struct lutf_wk_sandbox sb;

	sb_init(&sb, "compat");
	sb.rlimit_nofile = 64;
	sb.rlimit_cpu_s = 30;
	sb.rlimit_fsize = 1 << 20;
	sb.rlimit_as = 1ull << 32;
	expect_value(run(&sb, NULL, op_limits, NULL), 0, "rlimits");
}

/* ---- status and failures ---- */

static int op_nothing(void *arg)
{
	return 0;
}

Test(sandbox, a_bad_tier_fails_closed)
{
	struct lutf_wk_sandbox sb;
	struct lutf_sandbox_status st;
	char err[300] = "";

	sb_init(&sb, "nosuch");
	cr_assert_eq(run(&sb, NULL, op_nothing, NULL).exit_code, R_SANDBOX_FAILED);
	cr_assert_eq(lutf_sandbox_apply(&sb, NULL, NULL, &st, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "nosuch.policy"), "%s", err);
	sb_init(&sb, "");
	cr_assert_eq(lutf_sandbox_apply(&sb, NULL, NULL, &st, err, sizeof(err)), -EINVAL);
}

static int abi; /* probed before the fork: basic may not probe */

static int op_status(void *arg)
{
	struct lutf_sandbox_status *st = arg;
	char line[256];

	lutf_sandbox_status_format(st, line, sizeof(line));
	if (!strstr(line, "tier=basic") || st->nallowed < 50)
		return -1;
	if (abi && (!st->landlock || st->landlock_abi != abi))
		return -2;
	if (abi >= 6 && (!st->landlock_scoped || !strstr(line, "scope=on")))
		return -3;
	return 0;
}

static struct lutf_sandbox_status status_seen;

Test(sandbox, status_says_what_was_applied)
{
	struct lutf_wk_sandbox sb;
	pid_t pid;
	int status;

	sb_init(&sb, "basic");
	abi = lutf_landlock_abi();
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char err[300];

		if (lutf_sandbox_apply(&sb, NULL, NULL, &status_seen, err, sizeof(err)))
			_exit(98);
		_exit(-op_status(&status_seen));
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "killed by %d", WTERMSIG(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "status check %d failed", WEXITSTATUS(status));
}

Test(sandbox, a_missing_app_folder_fails_closed)
{
	struct lutf_wk_sandbox sb;
	struct outcome o;

	LUTF_REQUIRE("landlock", lutf_landlock_abi() > 0, "Landlock unavailable in this kernel");
	sb_init(&sb, "basic");
	snprintf(sb.app_dir, sizeof(sb.app_dir), "%s/not-there", base);
	o = run(&sb, NULL, op_nothing, NULL);
	cr_assert_eq(o.exit_code, R_SANDBOX_FAILED, "a rule for a missing app folder was skipped");
}
