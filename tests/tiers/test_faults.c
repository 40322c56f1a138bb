/* SPDX-License-Identifier: MIT */
/*
 * Fault containment through the real lutfd: a function that segfaults,
 * aborts, makes a forbidden syscall, loops forever, eats memory, forks
 * without end or scribbles over its region; a worker that cannot start.
 * Each test asserts the exact status and detail the client gets, that a
 * bystander tenant keeps being served, and that every request sent gets a
 * reply. Root-only (control socket, cgroups, BPF); skips otherwise.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>

#include "fault_util.h"
#include "require.h"

#define FAULT TEST_APP_DIR "/libfault_app.so"

static const char *const fault_ex[] = {
    "ok=ok",   "slow=slow",	    "segv=segv",	 "abrt=abrt",		"spin=spin",
    "hog=hog", "forkbomb=forkbomb", "socket=sys_socket", "eventfd=sys_eventfd", "whoami=whoami",
    NULL};

static struct td d;
static int cfd = -1, dfd = -1, bfd = -1;

static void setup(void)
{
	char msg[300];

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket and cgroups need root");
	cr_assert(
	    fx_start(&d, "stuck_grace_ms = 300\ncrash_loop_limit = 3\ntenant_pids_max = 64\n"),
	    "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	bfd = td_connect(&d, "lutf.sock");
	cr_assert(cfd >= 0 && dfd >= 0 && bfd >= 0);
	cr_assert_eq(
	    fx_deploy(cfd, "victim", "fault", FAULT, fault_ex, "basic", 0, msg, sizeof(msg)),
	    LUTF_STATUS_OK, "deploy victim: %s", msg);
	cr_assert_eq(
	    fx_deploy(cfd, "bystander", "fault", FAULT, fault_ex, "basic", 0, msg, sizeof(msg)),
	    LUTF_STATUS_OK, "deploy bystander: %s", msg);
}

static void teardown(void)
{
	if (cfd >= 0)
		close(cfd);
	if (dfd >= 0)
		close(dfd);
	if (bfd >= 0)
		close(bfd);
	cfd = dfd = bfd = -1;
	fx_stop(&d);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 60);

/* The bystander tenant answers n calls, each OK with its input. */
static void bystander_ok(int n)
{
	for (int i = 0; i < n; i++) {
		char in[16];
		struct fx_res r;

		snprintf(in, sizeof(in), "b%d", i);
		r = fx_call(bfd, "bystander", "ok", in, 0, 5000);
		cr_assert_eq(r.status, LUTF_STATUS_OK, "bystander call %d: status %u (%s)", i,
			     r.status, r.text);
		cr_assert_str_eq(r.text, in);
	}
}

/*
 * One bad call (id 1), then n good ones queued behind it (ids 2..n+1) on the
 * tenant's single Labor. Every one must be answered; the good ones OK (they
 * had not started: they run on the next worker). Returns the bad one's result.
 */
static struct fx_res bad_then_queued(const char *fn, const char *in, uint32_t timeout_ms, int n)
{
	struct fx_res bad = {.status = 0xffffffffu}, r;
	bool seen[64] = {false};
	uint64_t id;

	cr_assert(n < 63);
	cr_assert(fx_send(dfd, 1, "victim", fn, in, timeout_ms));
	for (int i = 0; i < n; i++) {
		char q[16];

		snprintf(q, sizeof(q), "q%d", i);
		cr_assert(fx_send(dfd, (uint64_t)i + 2, "victim", "ok", q, 0));
	}
	bystander_ok(5); /* while the victim's worker dies and comes back */
	for (int got = 0; got < n + 1; got++) {
		cr_assert(fx_recv(dfd, &id, &r, 10000), "only %d of %d requests answered", got,
			  n + 1);
		cr_assert(id >= 1 && id <= (uint64_t)n + 1 && !seen[id], "bad reply id %llu",
			  (unsigned long long)id);
		seen[id] = true;
		if (id == 1) {
			bad = r;
			continue;
		}
		cr_assert_eq(r.status, LUTF_STATUS_OK, "queued call %llu: status %u (%s)",
			     (unsigned long long)id, r.status, r.text);
		cr_assert(r.text[0] == 'q' && atoi(r.text + 1) == (int)id - 2);
	}
	bystander_ok(3);
	return bad;
}

Test(faults, segfault_fails_started_brick_and_runs_queued)
{
	struct fx_res r = bad_then_queued("segv", "150", 0, 8);
	uint64_t restarts = 0;

	cr_assert_eq(r.status, LUTF_STATUS_CRASHED, "status %u (%s)", r.status, r.text);
	cr_assert_eq(r.detail, SIGSEGV);
	cr_assert_str_eq(r.text, "crashed (SIGSEGV)");
	cr_assert(td_tenant_counter(cfd, "victim", "restarts", &restarts) && restarts == 1);
}

Test(faults, abort_fails_started_brick_and_runs_queued)
{
	struct fx_res r = bad_then_queued("abrt", "150", 0, 8);

	cr_assert_eq(r.status, LUTF_STATUS_CRASHED, "status %u (%s)", r.status, r.text);
	cr_assert_eq(r.detail, SIGABRT);
	cr_assert_str_eq(r.text, "crashed (SIGABRT)");
}

/* lutfd's "sigsys <source>" from the isolation line of STATUS. */
static void sigsys_mode(char *out, size_t cap)
{
	struct td_reply rep;
	struct lutf_tlv f;

	out[0] = 0;
	cr_assert(td_status(cfd, &rep));
	for (int i = 0; td_field(&rep, LUTF_TAG_TEXT, i, &f); i++) {
		const char *v = (const char *)f.val, *s;
		char line[512];

		snprintf(line, sizeof(line), "%.*s", (int)f.len, v);
		if (strncmp(line, "isolation=", 10) || !(s = strstr(line, "; sigsys ")))
			continue;
		snprintf(out, cap, "%s", s + strlen("; sigsys "));
	}
	free(rep.payload);
}

/* The kernel's printk_ratelimit interval in ms (5 s by default), at most 10 s. */
static unsigned ratelimit_ms(void)
{
	FILE *fp = fopen("/proc/sys/kernel/printk_ratelimit", "r");
	unsigned s = 5;

	if (fp) {
		if (fscanf(fp, "%u", &s) != 1)
			s = 5;
		fclose(fp);
	}
	return (s > 10 ? 10 : s) * 1000 + 200;
}

/* Also registered with LUTF_SIGSYS=kmsg (tests/tiers/CMakeLists.txt): lutfd
 * then skips its BPF probe and must find the syscall in the kernel log's
 * audit record, so the same exact answer proves the fallback. */
Test(faults, forbidden_syscall_is_killed_by_policy_naming_it)
{
	const char *want = getenv("LUTF_SIGSYS");
	char mode[128];
	struct fx_res r;

	sigsys_mode(mode, sizeof(mode));
	if (want && !strcmp(want, "kmsg")) {
		cr_assert_str_eq(mode, "kernel log", "LUTF_SIGSYS=kmsg, lutfd says sigsys '%s'",
				 mode);
		/* kauditd prints through printk_ratelimit (10 records per 5 s,
		 * host-wide): the kills of the tests before may have used it
		 * up. Wait out its interval, and once more if it was taken. */
		td_sleep_ms(ratelimit_ms());
		r = bad_then_queued("socket", "", 0, 4);
		if (r.status == LUTF_STATUS_KILLED_BY_POLICY && r.detail == 0xffffffffu) {
			cr_log_info("audit record rate-limited away: once more");
			td_sleep_ms(ratelimit_ms());
			r = bad_then_queued("socket", "", 0, 4);
		}
	} else {
		r = bad_then_queued("socket", "", 0, 4);
	}

	cr_assert_eq(r.status, LUTF_STATUS_KILLED_BY_POLICY, "status %u (%s)", r.status, r.text);
	cr_assert_eq(r.detail, 41, "detail %u, want socket (41)", r.detail);
	cr_assert(strstr(r.text, "socket") && strstr(r.text, "tier basic"), "message '%s'", r.text);
	if (want && !strcmp(want, "bpf")) {
		/* The probe alone (no kernel-log fallback): the answer above
		 * came from it. */
		sigsys_mode(mode, sizeof(mode));
		LUTF_REQUIRE_BPF(!strncmp(mode, "bpf", 3), "the sigsys probe did not load");
		cr_assert_str_eq(mode, "bpf (raw_tp/signal_generate)", "lutfd says sigsys '%s'",
				 mode);
	}
}

Test(faults, endless_loop_answers_deadline_then_recycles)
{
	uint64_t t0 = td_now_ms(), restarts = 0;
	struct fx_res r = bad_then_queued("spin", "", 200, 4);
	uint64_t took = td_now_ms() - t0;

	cr_assert_eq(r.status, LUTF_STATUS_DEADLINE, "status %u (%s)", r.status, r.text);
	cr_assert(took >= 200 && took < 5000, "answered after %llu ms", (unsigned long long)took);
	/* The queued calls were answered, so the stuck worker was replaced. */
	cr_assert(td_tenant_counter(cfd, "victim", "restarts", &restarts) && restarts == 1);
}

Test(faults, memory_blowup_is_out_of_memory)
{
	char msg[300], limits[300] = "";
	struct fx_res r;

	cr_assert_eq(
	    fx_deploy(cfd, "hungry", "fault", FAULT, fault_ex, "basic", 64, msg, sizeof(msg)),
	    LUTF_STATUS_OK, "%s", msg);
	cr_assert(fx_tenant_text(cfd, "hungry", "limits=", limits, sizeof(limits)));
	cr_log_info("hungry: %s", limits);
	LUTF_REQUIRE("cgroup", strstr(limits, "cgroup"),
		     "no cgroup hierarchy here: rlimits alone give CRASHED");
	cr_assert(strstr(limits, "memory 64 MiB"), "limits '%s'", limits);
	r = fx_call(dfd, "hungry", "hog", "2048", 0, 20000);
	cr_assert_eq(r.status, LUTF_STATUS_OUT_OF_MEMORY, "status %u (%s)", r.status, r.text);
	cr_assert_eq(r.detail, SIGKILL);
	cr_assert(strstr(r.text, "out of memory") && strstr(r.text, "64 MiB"), "'%s'", r.text);
	bystander_ok(5);
	cr_assert(fx_wait_up(cfd, dfd, "hungry", "ok", 5000), "hungry did not come back");
}

Test(faults, fork_bomb_is_refused_by_policy)
{
	struct fx_res r = fx_call(dfd, "victim", "forkbomb", "", 0, 10000);

	cr_assert_eq(r.status, LUTF_STATUS_KILLED_BY_POLICY, "status %u (%s)", r.status, r.text);
	cr_assert_eq(r.detail, 56, "detail %u, want clone (56)", r.detail);
	cr_assert(strstr(r.text, "clone"), "'%s'", r.text);
	bystander_ok(5);
	cr_assert(fx_wait_up(cfd, dfd, "victim", "ok", 5000));
}

Test(faults, scribbler_is_recycled_others_go_on)
{
	static const char *const ex[] = {"echo=echo", "scribble=scribble", NULL};
	char msg[300];
	struct fx_res r;

	/* compat: the scribbler finds its region in /proc/self/maps. */
	cr_assert_eq(fx_deploy(cfd, "scrib", "app", DAEMON_APP, ex, "compat", 0, msg, sizeof(msg)),
		     LUTF_STATUS_OK, "%s", msg);
	r = fx_call(dfd, "scrib", "scribble", "", 0, 5000);
	cr_assert_neq(r.status, 0xffffffffu, "scribble not answered");
	cr_assert(fx_wait_counter(cfd, "scrib", "restarts", 1, 5000), "scribbler not recycled");
	bystander_ok(5);
	cr_assert(fx_wait_up(cfd, dfd, "scrib", "echo", 5000));
}

Test(faults, crash_loop_backoff_shows_in_status)
{
	char faults[300] = "", state[32] = "";
	uint64_t backoff = 0;

	/* Quick deaths in a row: restarted at once, then after 100, 200, 400 ms. */
	for (int i = 0; i < 4; i++) {
		struct fx_res r;

		cr_assert(fx_wait_up(cfd, dfd, "victim", "ok", 5000), "victim not up (%d)", i);
		r = fx_call(dfd, "victim", "segv", "0", 0, 5000);
		cr_assert_eq(r.status, LUTF_STATUS_CRASHED, "status %u (%s)", r.status, r.text);
	}
	cr_assert(fx_tenant_text(cfd, "victim", "faults=", faults, sizeof(faults)));
	cr_assert(fx_tenant_text(cfd, "victim", "state=", state, sizeof(state)));
	cr_assert(td_tenant_counter(cfd, "victim", "backoff_ms", &backoff));
	cr_log_info("victim: state %s, faults %s", state, faults);
	cr_assert_eq(backoff, 400, "backoff %llu ms", (unsigned long long)backoff);
	cr_assert(strstr(faults, "backoff 400 ms") && strstr(faults, "4 deaths in 60 s") &&
		      strstr(faults, "last: crashed (SIGSEGV)"),
		  "faults '%s'", faults);
	cr_assert(!strcmp(state, "backoff") || !strcmp(state, "up"), "state %s", state);
	bystander_ok(3);
}

Test(faults, failed_starts_answer_queued_calls)
{
	char marker[256], state[32] = "";
	struct fx_res r;
	uint64_t id;
	FILE *fp;

	snprintf(marker, sizeof(marker), "%s/apps/victim/fault/1.so.crash-on-init", d.state);
	fp = fopen(marker, "w");
	cr_assert(fp, "cannot create %s", marker);
	fclose(fp);
	chmod(marker, 0644);
	r = fx_call(dfd, "victim", "segv", "0", 0, 5000);
	cr_assert_eq(r.status, LUTF_STATUS_CRASHED);
	/* Accepted while the worker restarts; its starts now all fail. */
	for (int i = 0; i < 5; i++)
		cr_assert(fx_send(dfd, (uint64_t)i + 10, "victim", "ok", "x", 0));
	for (int i = 0; i < 5; i++) {
		cr_assert(fx_recv(dfd, &id, &r, 10000), "queued call %d never answered", i);
		cr_assert_eq(r.status, LUTF_STATUS_CRASHED, "status %u (%s)", r.status, r.text);
		cr_assert_eq(r.detail, SIGSEGV);
		cr_assert(strstr(r.text, "failed to start 3 times in a row") &&
			      strstr(r.text, "crashed (SIGSEGV)"),
			  "'%s'", r.text);
	}
	/* New calls are refused at once while it loops. */
	r = fx_call(dfd, "victim", "ok", "y", 0, 1000);
	cr_assert_eq(r.status, LUTF_STATUS_CRASHED, "status %u (%s)", r.status, r.text);
	cr_assert(fx_tenant_text(cfd, "victim", "state=", state, sizeof(state)));
	cr_assert_str_eq(state, "crash-loop");
	bystander_ok(3);
	unlink(marker);
	cr_assert(fx_wait_up(cfd, dfd, "victim", "ok", 5000), "victim did not recover");
}
