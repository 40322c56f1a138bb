/* SPDX-License-Identifier: MIT */
/*
 * Backend choice: STATUS names the backend that runs (io_uring by default,
 * epoll with LUTF_INGRESS=epoll); with io_uring really refused by the kernel
 * (sysctl kernel.io_uring_disabled=2, saved and restored at once), lutfd
 * falls back to epoll, logs why, and serves calls; LUTF_INGRESS=uring then
 * fails loudly.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <linux/io_uring.h>
#include <sys/syscall.h>

#include "ingress_util.h"
#include "require.h"

#define SYSCTL "/proc/sys/kernel/io_uring_disabled"

static struct td d;
static int cfd = -1;
static char saved[16];

static void restore_sysctl(void)
{
	FILE *fp;

	if (!saved[0])
		return;
	fp = fopen(SYSCTL, "w");
	if (fp) {
		fputs(saved, fp);
		fclose(fp);
	}
	saved[0] = 0;
}

static void teardown(void)
{
	restore_sysctl();
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

Test(ingress_fallback, refused_io_uring_falls_back_to_epoll)
{
	char mode[64];
	FILE *fp;
	pid_t pid;
	int st;

	LUTF_REQUIRE("root", lutf_test_is_root(), "the sysctl and lutfd need root");
	fp = fopen(SYSCTL, "r");
	if (fp && !fgets(saved, sizeof(saved), fp))
		saved[0] = 0;
	if (fp)
		fclose(fp);
	fp = saved[0] ? fopen(SYSCTL, "w") : NULL;
	if (!fp) {
		saved[0] = 0;
		cr_skip_test("cannot write " SYSCTL " (no such sysctl or read-only /proc)");
	}
	unsetenv("LUTF_INGRESS"); /* the default: io_uring if the kernel lets us */
	fputs("2\n", fp);
	cr_assert_eq(fclose(fp), 0, "cannot set " SYSCTL);
	cr_assert(!uring_works(), "io_uring still allowed with " SYSCTL "=2");
	/* Only lutfd's start needs the sysctl (the ring is made then): keep the
	 * window short, other programs on this host use io_uring. */
	{
		bool ok = ti_start(&d, NULL);

		if (ok) {
			/* Forced io_uring must fail loudly meanwhile. */
			struct td d2 = d;

			setenv("LUTF_INGRESS", "uring", 1);
			snprintf(d2.log, sizeof(d2.log), "%s/forced.log", d.dir);
			snprintf(d2.run, sizeof(d2.run), "%s/run2", d.dir);
			snprintf(d2.state, sizeof(d2.state), "%s/state2", d.dir);
			pid = td_spawn(&d2, d2.run);
			waitpid(pid, &st, 0);
			unsetenv("LUTF_INGRESS");
			restore_sysctl();
			cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1,
				  "lutfd with LUTF_INGRESS=uring did not exit 1");
			cr_assert(
			    file_has(d2.log, "io_uring required by LUTF_INGRESS but unavailable"),
			    "no clear message in %s", d2.log);
		}
		restore_sysctl();
		cr_assert(ok, "lutfd did not start (log in %s)", d.log);
	}
	cr_assert(file_has(d.log, "ingress: io_uring unavailable (io_uring_setup: Operation not "
				  "permitted); using epoll"),
		  "no fallback line in %s", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	cr_assert(ti_status(cfd, NULL, NULL, "ingress=", mode, sizeof(mode)));
	cr_assert_str_eq(mode, "ingress=epoll");
	cr_assert_eq(ti_deploy(cfd, "t"), LUTF_STATUS_OK);
	invoke_both();
}
