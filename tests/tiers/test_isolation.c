/* SPDX-License-Identifier: MIT */
/*
 * Tiers and tenant identity through the real lutfd: in every tier a function
 * using something the tier allows succeeds and one just outside it is
 * KILLED_BY_POLICY naming the syscall; io_uring kills in every tier; a tenant
 * cannot read another's app files or scratch folder nor signal its worker;
 * uids and tiers survive a restart; a deploy naming another tier recycles the
 * worker into it. Root-only; skips otherwise.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "fault_util.h"
#include "require.h"

#define FAULT TEST_APP_DIR "/libfault_app.so"

static const char *const ex[] = {"ok=ok",
				 "futex100=futex100",
				 "whoami=whoami",
				 "eventfd=sys_eventfd",
				 "socket=sys_socket",
				 "forkbomb=forkbomb",
				 "signal=signal_pid",
				 "ptrace=sys_ptrace",
				 "uring=sys_io_uring",
				 "read=read_path",
				 "write=write_path",
				 NULL};

static struct td d;
static int cfd = -1, dfd = -1;

static void setup(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket and uids need root");
	cr_assert(fx_start(&d, "tenant_pids_max = 64\n"), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	cr_assert(cfd >= 0 && dfd >= 0);
}

static void teardown(void)
{
	if (cfd >= 0)
		close(cfd);
	if (dfd >= 0)
		close(dfd);
	cfd = dfd = -1;
	fx_stop(&d);
}

TestSuite(isolation, .init = setup, .fini = teardown, .timeout = 120);

static void deploy(const char *tenant, const char *tier)
{
	char msg[300];

	cr_assert_eq(fx_deploy(cfd, tenant, "fault", FAULT, ex, tier, 0, msg, sizeof(msg)),
		     LUTF_STATUS_OK, "deploy %s (%s): %s", tenant, tier, msg);
}

static void expect_ok(const char *tenant, const char *fn, const char *in, const char *out)
{
	struct fx_res r = fx_call(dfd, tenant, fn, in, 0, 10000);

	cr_assert_eq(r.status, LUTF_STATUS_OK, "%s/%s: status %u (%s)", tenant, fn, r.status,
		     r.text);
	if (out)
		cr_assert_str_eq(r.text, out, "%s/%s", tenant, fn);
}

static void expect_killed(const char *tenant, const char *fn, uint32_t nr, const char *name)
{
	struct fx_res r = fx_call(dfd, tenant, fn, "", 0, 10000);

	cr_assert_eq(r.status, LUTF_STATUS_KILLED_BY_POLICY, "%s/%s: status %u (%s)", tenant, fn,
		     r.status, r.text);
	cr_assert_eq(r.detail, nr, "%s/%s: detail %u, want %s (%u)", tenant, fn, r.detail, name,
		     nr);
	cr_assert(strstr(r.text, name), "%s/%s: '%s' does not name %s", tenant, fn, r.text, name);
	cr_assert(fx_wait_up(cfd, dfd, tenant, "ok", 5000), "%s did not come back", tenant);
}

Test(isolation, every_tier_allows_its_own_and_kills_just_outside)
{
	deploy("tpure", "pure");
	deploy("tbasic", "basic");
	deploy("tservice", "service");
	deploy("tcompat", "compat");

	expect_ok("tpure", "futex100", "", "ok");
	expect_killed("tpure", "eventfd", 290, "eventfd2"); /* basic's, not pure's */

	expect_ok("tbasic", "eventfd", "", "eventfd 0");
	expect_killed("tbasic", "socket", 41, "socket"); /* service's */

	expect_ok("tservice", "socket", "", "socket 0");
	expect_killed("tservice", "forkbomb", 56, "clone"); /* fork: compat's */

	/* compat forks, within tenant_pids_max. */
	{
		struct fx_res r = fx_call(dfd, "tcompat", "forkbomb", "", 0, 20000);

		cr_assert_eq(r.status, LUTF_STATUS_OK, "status %u (%s)", r.status, r.text);
		cr_assert(strstr(r.text, "fork refused after"), "'%s'", r.text);
		cr_assert_lt(atoi(r.text + strlen("fork refused after ")), 64, "'%s'", r.text);
	}
	expect_killed("tcompat", "ptrace", 101, "ptrace"); /* kills in every tier */
}

Test(isolation, io_uring_kills_in_every_tier)
{
	static const char *const tiers[] = {"pure", "basic", "service", "compat"};

	for (int i = 0; i < 4; i++) {
		char tenant[32];

		snprintf(tenant, sizeof(tenant), "u%s", tiers[i]);
		deploy(tenant, tiers[i]);
		expect_killed(tenant, "uring", 425, "io_uring_setup");
	}
}

Test(isolation, tenants_cannot_reach_each_other)
{
	char path[512], other_so[300], other_scratch[300];
	uint64_t uid_a = 0, uid_b = 0, pid_b = 0;
	struct fx_res r;

	deploy("alpha", "compat");
	deploy("beta", "compat");
	cr_assert(td_tenant_counter(cfd, "alpha", "uid", &uid_a));
	cr_assert(td_tenant_counter(cfd, "beta", "uid", &uid_b));
	cr_assert(uid_a >= FX_UID_LO && uid_a < FX_UID_LO + 16 && uid_b >= FX_UID_LO &&
		      uid_b < FX_UID_LO + 16 && uid_a != uid_b,
		  "uids %llu %llu", (unsigned long long)uid_a, (unsigned long long)uid_b);
	snprintf(path, sizeof(path), "uid %llu", (unsigned long long)uid_a);
	expect_ok("alpha", "whoami", "", path);

	/* Its own app file: readable. Beta's: not. */
	snprintf(path, sizeof(path), "%s/apps/alpha/fault/1.so", d.state);
	expect_ok("alpha", "read", path, "open 0");
	snprintf(other_so, sizeof(other_so), "%s/apps/beta/fault/1.so", d.state);
	r = fx_call(dfd, "alpha", "read", other_so, 0, 5000);
	cr_assert_eq(r.status, LUTF_STATUS_OK);
	cr_assert(!strcmp(r.text, "open -13"), "reading beta's app: '%s'", r.text);

	/* Its own scratch folder: writable (compat). Beta's: not. */
	snprintf(path, sizeof(path), "%s/scratch/alpha", d.state);
	expect_ok("alpha", "write", path, "create 0");
	snprintf(other_scratch, sizeof(other_scratch), "%s/scratch/beta", d.state);
	r = fx_call(dfd, "alpha", "write", other_scratch, 0, 5000);
	cr_assert(!strcmp(r.text, "create -13"), "writing beta's scratch: '%s'", r.text);
	r = fx_call(dfd, "alpha", "read", other_scratch, 0, 5000);
	cr_assert(!strcmp(r.text, "open -13"), "reading beta's scratch: '%s'", r.text);

	/* Beta's worker: no signal, not even 0. */
	cr_assert(td_tenant_counter(cfd, "beta", "worker_pid", &pid_b) && pid_b > 1);
	snprintf(path, sizeof(path), "%llu", (unsigned long long)pid_b);
	r = fx_call(dfd, "alpha", "signal", path, 0, 5000);
	cr_assert_eq(r.status, LUTF_STATUS_OK, "status %u (%s)", r.status, r.text);
	cr_assert(!strcmp(r.text, "kill -1"), "signalling beta's worker: '%s'", r.text);
	expect_ok("beta", "ok", "still here", "still here");
}

Test(isolation, uid_and_tier_survive_restart_and_tier_change_recycles)
{
	uint64_t uid = 0, uid2 = 0, pid = 0, pid2 = 0;
	char tier[32] = "";

	deploy("gamma", "service");
	cr_assert(td_tenant_counter(cfd, "gamma", "uid", &uid) && uid >= FX_UID_LO);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	close(cfd);
	close(dfd);
	cr_assert(td_start_again(&d), "lutfd did not restart");
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	cr_assert(fx_wait_up(cfd, dfd, "gamma", "ok", 5000));
	cr_assert(td_tenant_counter(cfd, "gamma", "uid", &uid2));
	cr_assert_eq(uid2, uid);
	cr_assert(fx_tenant_text(cfd, "gamma", "tier=", tier, sizeof(tier)));
	cr_assert_str_eq(tier, "service");
	expect_ok("gamma", "socket", "", "socket 0");

	/* Another tier: the worker is replaced by one in that tier. */
	cr_assert(td_tenant_counter(cfd, "gamma", "worker_pid", &pid) && pid);
	deploy("gamma", "basic");
	cr_assert(fx_wait_up(cfd, dfd, "gamma", "ok", 5000));
	cr_assert(td_tenant_counter(cfd, "gamma", "worker_pid", &pid2) && pid2);
	cr_assert_neq(pid2, pid, "the worker was not recycled");
	cr_assert(fx_tenant_text(cfd, "gamma", "tier=", tier, sizeof(tier)));
	cr_assert_str_eq(tier, "basic");
	expect_killed("gamma", "socket", 41, "socket");
}

Test(isolation, unknown_tier_is_refused)
{
	char msg[300];

	cr_assert_eq(fx_deploy(cfd, "delta", "fault", FAULT, ex, "wide-open", 0, msg, sizeof(msg)),
		     LUTF_STATUS_MALFORMED);
	cr_assert(strstr(msg, "unknown tier 'wide-open'"), "'%s'", msg);
}
