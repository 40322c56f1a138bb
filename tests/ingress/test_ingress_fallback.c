/* SPDX-License-Identifier: MIT */
/*
 * Backend choice: STATUS names the backend that runs (io_uring by default,
 * epoll with LUTF_INGRESS=epoll); with io_uring really refused by the kernel
 * to this test's lutfd alone (a seccomp filter installed in the forked child
 * before exec answers io_uring_setup with EPERM; the host's
 * kernel.io_uring_disabled is never touched), lutfd falls back to epoll, logs
 * why, and serves calls; LUTF_INGRESS=uring then fails loudly.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <linux/io_uring.h>
#include <seccomp.h>
#include <sys/syscall.h>

#include "ingress_util.h"
#include "require.h"

static struct td d;
static int cfd = -1;

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(ingress_fallback, .fini = teardown, .timeout = 60);

static bool uring_works(void)
{
	struct io_uring_params p = {0};
	int fd = (int)syscall(__NR_io_uring_setup, 4, &p);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void invoke_both(void)
{
	int fds[2] = {td_connect(&d, "lutf.sock"), ti_connect_tcp(&d)};
	struct lutf_buf b;

	lutf_buf_init(&b);
	td_invoke_frame(&b, 7, "t", "echo", "hi", 2);
	for (int i = 0; i < 2; i++) {
		struct td_reply r;
		struct lutf_tlv f;

		cr_assert_geq(fds[i], 0);
		cr_assert_eq(td_call(fds[i], &b, &r, 5000), LUTF_STATUS_OK);
		cr_assert(td_field(&r, LUTF_TAG_OUTPUT, 0, &f) && f.len == 2 &&
			  !memcmp(f.val, "hi", 2));
		free(r.payload);
		close(fds[i]);
	}
	lutf_buf_free(&b);
}

Test(ingress_fallback, status_names_the_backend)
{
	const char *env = getenv("LUTF_INGRESS");
	bool epoll = env && !strcmp(env, "epoll");
	char mode[64], tcp[96];

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket and BPF need root");
	if (!epoll)
		LUTF_REQUIRE("io_uring", uring_works(), "io_uring_setup is refused here");
	cr_assert(ti_start(&d, NULL), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	cr_assert(ti_status(cfd, NULL, NULL, "ingress=", mode, sizeof(mode)));
	cr_assert_str_eq(mode, epoll ? "ingress=epoll" : "ingress=io_uring");
	cr_assert(ti_status(cfd, NULL, NULL, "tcp=", tcp, sizeof(tcp)));
	cr_assert(!strncmp(tcp, "tcp=127.0.0.1:", 14), "%s", tcp);
	cr_assert_eq(ti_deploy(cfd, "t"), LUTF_STATUS_OK);
	invoke_both();
	/* io_uring: the loop reaps through futex waits; epoll keeps reaper threads. */
	cr_assert(ti_status(cfd, NULL, NULL, "completions=", mode, sizeof(mode)));
	cr_assert_str_eq(mode, epoll ? "completions=reaper thread" : "completions=io_uring futex");
}

Test(ingress_fallback, lutf_reap_thread_forces_reaper_threads_on_io_uring)
{
	char mode[64];

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket and BPF need root");
	LUTF_REQUIRE("io_uring", uring_works(), "io_uring_setup is refused here");
	unsetenv("LUTF_INGRESS");
	setenv("LUTF_REAP", "thread", 1);
	cr_assert(ti_start(&d, NULL), "lutfd did not start (log in %s)", d.log);
	unsetenv("LUTF_REAP");
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	cr_assert_eq(ti_deploy(cfd, "t"), LUTF_STATUS_OK);
	invoke_both();
	cr_assert(ti_status(cfd, NULL, NULL, "ingress=", mode, sizeof(mode)));
	cr_assert_str_eq(mode, "ingress=io_uring");
	cr_assert(ti_status(cfd, NULL, NULL, "completions=", mode, sizeof(mode)));
	cr_assert_str_eq(mode, "completions=reaper thread");
}

static bool file_has(const char *path, const char *what)
{
	size_t len;
	uint8_t *p = td_slurp(path, &len);
	bool found = p && memmem(p, len, what, strlen(what));

	free(p);
	return found;
}

/*
 * In lutfd's child, before exec: io_uring_setup fails with EPERM, as under
 * kernel.io_uring_disabled=2, for lutfd and what it starts only. Root loads
 * it without no_new_privs (lutfd starts its workers as root). Returns 0 or
 * -errno (said on stderr: lutfd's log).
 */
static int refuse_io_uring(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int err = ctx ? 0 : -ENOMEM;

	if (!err)
		err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0);
	if (!err)
		err = seccomp_load(ctx);
	if (err)
		fprintf(stderr, "test: cannot refuse io_uring_setup by seccomp: %s\n",
			strerror(-err));
	seccomp_release(ctx);
	return err;
}

Test(ingress_fallback, refused_io_uring_falls_back_to_epoll)
{
	bool host_uring = uring_works();
	char mode[64];

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	unsetenv("LUTF_INGRESS"); /* the default: io_uring if the kernel lets us */
	d.pre_exec = refuse_io_uring;
	cr_assert(ti_start(&d, NULL), "lutfd did not start (log in %s)", d.log);
	cr_assert(file_has(d.log, "ingress: io_uring unavailable (io_uring_setup: Operation not "
				  "permitted); using epoll"),
		  "no fallback line in %s", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	cr_assert(ti_status(cfd, NULL, NULL, "ingress=", mode, sizeof(mode)));
	cr_assert_str_eq(mode, "ingress=epoll");
	cr_assert_eq(ti_deploy(cfd, "t"), LUTF_STATUS_OK);
	invoke_both();
	/* The test process keeps what io_uring it had: the host was not touched. */
	cr_assert_eq(uring_works(), host_uring, "io_uring changed outside lutfd");
}

Test(ingress_fallback, forced_io_uring_where_refused_exits_1)
{
	pid_t pid;
	int st;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	d.pre_exec = refuse_io_uring;
	setenv("LUTF_INGRESS", "uring", 1);
	cr_assert(!ti_start(&d, NULL), "lutfd started with LUTF_INGRESS=uring, io_uring refused");
	d.pid = 0; /* reaped by td_start */
	cr_assert(file_has(d.log, "io_uring required by LUTF_INGRESS but unavailable"),
		  "no clear message in %s", d.log);
	/* Again on the same folders, for its exit status. */
	pid = td_spawn(&d, d.run);
	unsetenv("LUTF_INGRESS");
	cr_assert(td_wait_exit(pid, &st, 10000), "lutfd with LUTF_INGRESS=uring still runs");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1,
		  "lutfd with LUTF_INGRESS=uring did not exit 1 (status %#x)", st);
}
