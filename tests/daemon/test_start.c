/* SPDX-License-Identifier: MIT */
/*
 * lutfd's start-up (issue 16 item 4; userspace/daemon/startup.c): a restarted
 * lutfd serves its persisted functions, calls sent the moment its socket takes
 * a connection are all answered OK (none lost, none refused as unknown), its
 * tenants' workers start side by side, and the start stages appear in its
 * log. A call that arrives before its tenant's worker is ready waits in its
 * Cart, bounded by its own deadline. The first calls do not wait for BPF: the
 * Supervisor polls until labor_watch has loaded beside the start, and hands
 * Carts off through the probe after.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "daemon_util.h"
#include "require.h"

#define HELLO EXAMPLES_DIR "/libhello.so"
#define SLOW_APP TEST_APP_DIR "/libctl_slow_app.so"   /* lutf_app_init sleeps 600 ms */
#define SLOW8_APP TEST_APP_DIR "/libctl_slow8_app.so" /* lutf_app_init sleeps 8 s */
#define DAEMON_APP TEST_APP_DIR "/libdaemon_app.so"   /* whoami sleeps its input's ms */

static struct td d;
static int cfd = -1;

static void setup(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	cr_assert(td_start(&d, NULL), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

/* The log's size now: what a restart writes comes after it. */
static off_t log_size(void)
{
	struct stat st;

	return stat(d.log, &st) ? 0 : st.st_size;
}

/* The log from offset on, NUL-ended (free it). */
static char *log_from(off_t off)
{
	size_t len;
	uint8_t *all = td_slurp(d.log, &len);
	char *s;

	cr_assert(all, "no log %s", d.log);
	if ((size_t)off > len)
		off = (off_t)len;
	s = malloc(len - (size_t)off + 1);
	cr_assert(s);
	memcpy(s, all + off, len - (size_t)off);
	s[len - (size_t)off] = 0;
	free(all);
	return s;
}

/* Wait (bounded) until the log after off holds needle; returns the text. */
static char *wait_log(off_t off, const char *needle, int ms)
{
	uint64_t until = td_now_ms() + (uint64_t)ms;

	for (;;) {
		char *s = log_from(off);

		if (strstr(s, needle) || td_now_ms() >= until)
			return s;
		free(s);
		td_sleep_ms(20);
	}
}

/* Stop lutfd with SIGTERM (a clean exit: state kept, pins removed). */
static void stop_clean(void)
{
	int status = 0;

	close(cfd);
	cfd = -1;
	kill(d.pid, SIGTERM);
	cr_assert(td_wait_exit(d.pid, &status, 15000), "lutfd did not stop");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "lutfd exit status %#x", status);
	d.pid = 0;
}

/* Launch lutfd again on the same folders and connect to its data socket as
 * soon as it takes a connection (no wait for readiness). */
static int relaunch_and_connect(void)
{
	char path[160];
	uint64_t until;
	int fd;

	snprintf(path, sizeof(path), "%s/lutf.sock", d.run);
	unlink(path); /* the last lutfd's: a connect must reach the new one */
	d.pid = td_spawn(&d, d.run);
	cr_assert_gt(d.pid, 0);
	until = td_now_ms() + 15000;
	while ((fd = td_connect_unix(path)) < 0) {
		cr_assert(td_now_ms() < until, "the data socket never took a connection");
		cr_assert(waitpid(d.pid, NULL, WNOHANG) != d.pid, "lutfd exited (log %s)", d.log);
		usleep(200);
	}
	return fd;
}

static void invoke_frame_tmo(struct lutf_buf *b, uint64_t id, const char *tenant, const char *fn,
			     uint32_t timeout_ms)
{
	size_t f = lutf_frame_begin(b, LUTF_OP_INVOKE, 0, id);

	lutf_tlv_put_str(b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(b, LUTF_TAG_FUNCTION, fn);
	lutf_tlv_put(b, LUTF_TAG_INPUT, "x", 1);
	if (timeout_ms)
		lutf_tlv_put_u32(b, LUTF_TAG_TIMEOUT_MS, timeout_ms);
	lutf_frame_end(b, f);
}

TestSuite(start, .init = setup, .fini = teardown, .timeout = 120);

/* Two tenants deployed, lutfd stopped and launched again: 32 calls
 * pipelined the moment the data socket connects are all answered OK, each
 * once; both workers start, and the stage lines are in the log. */
Test(start, restart_serves_persisted_functions_and_logs_stages)
{
	static const char *const ex[] = {"hello=hello", "noop=noop", NULL};
	static const char *const tenants[] = {"acme", "beta"};
	bool seen[32] = {0};
	struct td_reply r;
	struct lutf_buf b;
	char *log;
	off_t off;
	int fd;

	for (int i = 0; i < 2; i++) {
		cr_assert_eq(td_deploy(cfd, tenants[i], "hello", HELLO, ex, &r), LUTF_STATUS_OK,
			     "deploy %s", tenants[i]);
		free(r.payload);
	}
	stop_clean();
	off = log_size();

	fd = relaunch_and_connect();
	lutf_buf_init(&b);
	for (int i = 0; i < 32; i++)
		td_invoke_frame(&b, (uint64_t)i, tenants[i % 2], i % 4 < 2 ? "noop" : "hello", "x",
				1);
	cr_assert(td_send(fd, &b));
	lutf_buf_free(&b);
	for (int i = 0; i < 32; i++) {
		cr_assert(td_recv(fd, &r, 15000), "reply %d of 32 missing (log %s)", i, d.log);
		cr_assert_lt(r.h.request_id, 32);
		cr_assert(!seen[r.h.request_id], "request %llu answered twice",
			  (unsigned long long)r.h.request_id);
		seen[r.h.request_id] = true;
		cr_assert_eq(r.h.status, LUTF_STATUS_OK, "request %llu: status %u (log %s)",
			     (unsigned long long)r.h.request_id, r.h.status, d.log);
		free(r.payload);
	}
	close(fd);

	log = wait_log(off, "start: workers of 2 of 2 tenants up", 15000);
	cr_assert(strstr(log, "start: workers of 2 of 2 tenants up"),
		  "no workers-up line after the restart:\n%s", log);
	/* One stage line: what main() did, the set-up threads beside, the total. */
	cr_assert(strstr(log, "start: config "), "no stage line:\n%s", log);
	cr_assert(strstr(log, ", registry "), "no registry stage:\n%s", log);
	cr_assert(strstr(log, ", wait for set-up "), "no set-up stage:\n%s", log);
	/* The BPF thread is not waited for: its time is on the ready line when
	 * it was done by then, else on a line of its own. */
	cr_assert(strstr(log, "isolation "), "no isolation thread time:\n%s", log);
	cr_assert(strstr(log, "; ready in "), "no total:\n%s", log);
	if (!strstr(log, "beside them: bpf ")) {
		free(log);
		log = wait_log(off, "start: bpf set-up ", 15000);
		cr_assert(strstr(log, "start: bpf set-up "), "no BPF set-up time:\n%s", log);
	}
	cr_assert(strstr(log, "tenant acme: worker ") && strstr(log, "tenant beta: worker "),
		  "a tenant's worker start is not logged:\n%s", log);
	free(log);
}

/*
 * tenant/echo (app so) deployed, lutfd restarted, and two calls sent the
 * moment its socket connects: id 1 with a long_ms deadline, expected OK, and
 * id 2 with 200 ms, expected DEADLINE. Each answer's time since the send
 * goes to *t_long and *t_short.
 */
static void restart_long_and_short(const char *tenant, const char *so, uint32_t long_ms,
				   uint64_t *t_long, uint64_t *t_short)
{
	static const char *const ex[] = {"echo=echo", NULL};
	struct td_reply r;
	struct lutf_buf b;
	uint64_t t0;
	int fd;

	cr_assert_eq(td_deploy(cfd, tenant, "app", so, ex, &r), LUTF_STATUS_OK, "deploy");
	free(r.payload);
	stop_clean();

	fd = relaunch_and_connect();
	t0 = td_now_ms();
	lutf_buf_init(&b);
	invoke_frame_tmo(&b, 1, tenant, "echo", long_ms);
	invoke_frame_tmo(&b, 2, tenant, "echo", 200);
	cr_assert(td_send(fd, &b));
	lutf_buf_free(&b);
	for (int i = 0; i < 2; i++) {
		cr_assert(td_recv(fd, &r, (int)long_ms + 10000), "reply %d of 2 missing (log %s)",
			  i, d.log);
		if (r.h.request_id == 2) {
			cr_assert_eq(r.h.status, LUTF_STATUS_DEADLINE, "short deadline: status %u",
				     r.h.status);
			*t_short = td_now_ms() - t0;
		} else {
			cr_assert_eq(r.h.request_id, 1);
			cr_assert_eq(r.h.status, LUTF_STATUS_OK,
				     "long deadline: status %u (log %s)", r.h.status, d.log);
			*t_long = td_now_ms() - t0;
		}
		free(r.payload);
	}
	close(fd);
}

/* A persisted tenant whose app takes 600 ms to load: calls sent at launch
 * wait in their Cart for its worker, none lost. One whose deadline (200 ms)
 * passes first is answered DEADLINE, not run: by the first Labor that takes
 * it, or by lutfd's own deadline (1 s of slack), whichever comes first (the
 * engine's Supervisor expires the Bricks of a Cart only once a Labor holds
 * it). The other is answered OK once the app has loaded. */
Test(start, early_call_waits_bounded_by_its_deadline)
{
	uint64_t t_short = 0, t_long = 0;

	restart_long_and_short("slow", SLOW_APP, 20000, &t_long, &t_short);
	/* The long one only once the app loaded; the short one no later. */
	cr_assert_geq(t_long, 500, "OK after %llu ms: the app's init takes 600",
		      (unsigned long long)t_long);
	cr_assert_leq(t_short, t_long, "DEADLINE after %llu ms, OK after %llu ms",
		      (unsigned long long)t_short, (unsigned long long)t_long);
}

/* A persisted tenant whose app takes 8 s to load: a call whose deadline
 * passes while it waits for the worker is answered DEADLINE, and the worker
 * that is still loading is not taken for one that lost calls (no region
 * fault, no recycle): the call with a long deadline is answered OK, by the
 * worker that was started first. */
Test(start, slow_load_is_not_a_lost_call_fault, .timeout = 150)
{
	uint64_t t_short = 0, t_long = 0;
	off_t off = log_size();
	char *log;

	restart_long_and_short("slow8", SLOW8_APP, 30000, &t_long, &t_short);
	cr_assert_lt(t_short, 7000, "DEADLINE only after %llu ms: not before the app loaded",
		     (unsigned long long)t_short);
	log = log_from(off);
	cr_assert(!strstr(log, "region fault"), "a loading worker was taken for a faulty one:\n%s",
		  log);
	free(log);
}

/* One Cart, so a call queued behind a blocked one can only be served by a
 * hand-off; a grace of 1 ms. */
static void setup_one_cart(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	cr_assert(td_start(&d, "carts = 1\nlabors = 2\ngrace_us = 1000\n"),
		  "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
}

/* whoami sleeping ms (id 1) and echo (id 2), pipelined on fd, to the one
 * Cart: echo must come back first, moved to the other Labor while whoami's
 * Labor sleeps. Both must be OK. */
static void blocked_then_echo(int fd, const char *ms)
{
	struct td_reply r;
	struct lutf_buf b;

	lutf_buf_init(&b);
	td_invoke_frame(&b, 1, "acme", "whoami", ms, strlen(ms));
	td_invoke_frame(&b, 2, "acme", "echo", "x", 1);
	cr_assert(td_send(fd, &b));
	lutf_buf_free(&b);
	for (uint64_t want = 2; want >= 1; want--) {
		cr_assert(td_recv(fd, &r, 15000), "reply %llu missing (log %s)",
			  (unsigned long long)want, d.log);
		cr_assert_eq(r.h.request_id, want,
			     "reply %llu came first: the echo waited behind the sleeping call "
			     "(no hand-off; log %s)",
			     (unsigned long long)r.h.request_id, d.log);
		cr_assert_eq(r.h.status, LUTF_STATUS_OK, "request %llu: status %u (log %s)",
			     (unsigned long long)want, r.h.status, d.log);
		free(r.payload);
	}
}

TestSuite(start_watch, .init = setup_one_cart, .fini = teardown, .timeout = 120);

/*
 * A restart with one Cart and labor_watch's load held back: the calls sent at
 * launch are served (and a sleeping one loses its Cart) before labor_watch is
 * in, by the polling Supervisor; once the log says it switched to the BPF
 * mode, a Labor blocked in a call loses its Cart through the probe (its tid
 * was checked and registered after the switch).
 */
Test(start_watch, first_calls_polled_then_bpf_hands_off)
{
	static const char *const ex[] = {"whoami=whoami", "echo=echo", NULL};
	struct td_reply r;
	bool before;
	char *log;
	off_t off;
	int fd;

	cr_assert_eq(td_deploy(cfd, "acme", "app", DAEMON_APP, ex, &r), LUTF_STATUS_OK, "deploy");
	free(r.payload);
	stop_clean();
	off = log_size();

	/* Held back 3 s: the first calls are served by the polling Supervisor
	 * for sure (the log says so); then the switch. */
	setenv("LUTF_START_BPF_DELAY_MS", "3000", 1);
	fd = relaunch_and_connect();
	unsetenv("LUTF_START_BPF_DELAY_MS");
	blocked_then_echo(fd, "300");
	log = log_from(off);
	before = !strstr(log, "supervisor: watch mode ");
	cr_assert(strstr(log, "LUTF_START_BPF_DELAY_MS=3000"), "the delay was not applied:\n%s",
		  log);
	cr_assert(before, "labor_watch was in before the first calls were served:\n%s", log);
	free(log);

	log = wait_log(off, "supervisor: watch mode ", 15000);
	cr_assert(strstr(log, "supervisor: watch mode "), "no watch mode line:\n%s", log);
	LUTF_REQUIRE_BPF(strstr(log, "supervisor: watch mode bpf (labor_watch loaded beside"),
			 "labor_watch did not load (see lutfd's log)");
	free(log);
	for (int i = 0; i < 3; i++)
		blocked_then_echo(fd, "200"); /* by the probe now */
	close(fd);
}

/* CPython off a C tenant's path: the zygote starts it at the first Python
 * spawn or when idle (held off here for 60 s), so a C tenant's worker is
 * forked without it. A Python app deployed to that tenant then replaces the
 * worker with one forked after CPython (and says so), and both apps answer. */
static void setup_py_late(void)
{
	static const char *const env[] = {"LUTF_ZYGOTE_PY_IDLE_MS=60000", NULL};

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	d.env = env;
	cr_assert(td_start(&d, NULL), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
}

TestSuite(start_python, .init = setup_py_late, .fini = teardown, .timeout = 120);

/* DEPLOY of a Python file (KIND python). Returns the status. */
static uint32_t deploy_py(const char *tenant, const char *app, const char *path, const char *export)
{
	struct lutf_buf b;
	struct td_reply r;
	size_t len, fo;
	uint8_t *src = td_slurp(path, &len);
	uint32_t st;

	cr_assert(src, "cannot read %s", path);
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_DEPLOY, 0, 4244);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_APP, app);
	lutf_tlv_put(&b, LUTF_TAG_SO, src, len);
	lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, export);
	lutf_tlv_put_str(&b, LUTF_TAG_KIND, "python");
	lutf_frame_end(&b, fo);
	st = td_call(cfd, &b, &r, 30000);
	lutf_buf_free(&b);
	free(src);
	if (st != 0xffffffffu)
		free(r.payload);
	return st;
}

Test(start_python, c_worker_without_cpython_is_replaced_for_a_python_app)
{
#ifdef PY_GREETER
	static const char *const ex_c[] = {"hello=hello", NULL};
	uint64_t pid_c = 0, pid_py = 0;
	struct td_reply r;
	struct lutf_buf b;
	char *log, *p;
	int fd;

	cr_assert_eq(td_deploy(cfd, "acme", "hello", HELLO, ex_c, &r), LUTF_STATUS_OK);
	free(r.payload);
	cr_assert(td_tenant_counter(cfd, "acme", "worker_pid", &pid_c) && pid_c > 0);
	log = log_from(0);
	p = strstr(log, "tenant acme: worker ");
	cr_assert(p && strstr(p, " up (tier "), "no worker-up line:\n%s", log);
	cr_assert_null(strstr(log, ", CPython)"), "the C worker waited for CPython:\n%s", log);
	free(log);

	cr_assert_eq(deploy_py("acme", "greeter", PY_GREETER, "greet=greeter:handle"),
		     LUTF_STATUS_OK, "Python deploy (log %s)", d.log);
	cr_assert(td_tenant_counter(cfd, "acme", "worker_pid", &pid_py) && pid_py > 0);
	cr_assert_neq(pid_py, pid_c, "the worker without CPython was kept");
	log = log_from(0);
	cr_assert(strstr(log, "recycling its worker (no CPython)"), "no recycle line:\n%s", log);
	cr_assert(strstr(log, ", CPython) in "), "the new worker has no CPython:\n%s", log);
	free(log);

	fd = td_connect(&d, "lutf.sock");
	cr_assert_geq(fd, 0);
	lutf_buf_init(&b);
	td_invoke_frame(&b, 1, "acme", "greet", "world", 5);
	td_invoke_frame(&b, 2, "acme", "hello", "x", 1);
	cr_assert(td_send(fd, &b));
	lutf_buf_free(&b);
	for (int i = 0; i < 2; i++) {
		cr_assert(td_recv(fd, &r, 15000), "reply %d missing (log %s)", i, d.log);
		cr_assert_eq(r.h.status, LUTF_STATUS_OK, "request %llu: status %u (log %s)",
			     (unsigned long long)r.h.request_id, r.h.status, d.log);
		free(r.payload);
	}
	close(fd);
#else
	LUTF_REQUIRE("langs", false, "built without Python (LUTF_PYTHON=OFF)");
#endif
}
