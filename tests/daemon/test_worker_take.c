/* SPDX-License-Identifier: MIT */
/*
 * The direct take in lutfd's workers (issue 16 item 2): a real lutfd, a
 * function that blocks 20 ms and calls queued behind it on the tenant's one
 * Cart. The queued calls are served by another Labor of the worker while the
 * first one blocks, and the worker's own takes words (read from outside
 * through /proc/<pid>/map_files: what the worker reports, never what lutfd
 * trusts) show that its FREE Labors took the Cart themselves. With
 * LUTF_LABOR_WATCH_LEND=off the worker is lent no view: the same calls are
 * served by the Supervisor's hand-offs alone and it counts no take.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "daemon_util.h"
#include "require.h"
#include "take_util.h"

#define ROUNDS 20
/* One Cart, so every call queues behind the one that blocks; a spin long
 * enough that the Labor released by the last round still spins on a loaded
 * host when the next round's call blocks. */
#define CONF "carts = 1\nlabors = 4\nlabors_max = 4\nspin_us = 5000\n"

static struct td d;
static int cfd = -1;
static char tenant[16];

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

/* lutfd (CONF, then extra) with labor_watch loaded, then tenant deployed
 * with that many workers (its workers are spawned after the load, so they
 * are lent their views). */
static void start_with(const char *const *env, const char *extra, uint32_t workers)
{
	static const char *const ex[] = {"nap=nap", "quick=quick", NULL};
	struct td_deploy_opts o = {.tier = td_tier, .workers = workers};
	char conf[256];
	struct td_reply r;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	snprintf(tenant, sizeof(tenant), "wt%d", (int)getpid() % 100000);
	snprintf(conf, sizeof(conf), "%s%s", CONF, extra);
	d.env = env;
	cr_assert(td_start(&d, conf), "lutfd did not start (log in %s)", d.log);
	/* Turned off (LUTF_LABOR_WATCH=off, LUTF_TEST_NO_BPF): skip without waiting. */
	LUTF_REQUIRE_BPF(!lutf_test_bpf_off_by() && tk_wait_bpf(&d, 15000),
			 "labor_watch did not load (see lutfd's log)");
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	cr_assert_eq(td_deploy_with(cfd, tenant, "take", TAKE_APP, ex, &o, &r), LUTF_STATUS_OK);
	free(r.payload);
}

static void start(const char *const *env)
{
	start_with(env, "", 0);
}

/* ROUNDS hand-off rounds; returns the worker's pid. */
static pid_t run_rounds(void)
{
	int fd = td_connect(&d, "lutf.sock"), good;
	pid_t pid;

	cr_assert_geq(fd, 0);
	cr_assert_geq(tk_handoff_rounds(fd, tenant, 2, 1), 0, "warm-up calls failed");
	good = tk_handoff_rounds(fd, tenant, ROUNDS, 3);
	close(fd);
	cr_assert_eq(good, ROUNDS,
		     "queued calls answered before the blocked one in %d of %d rounds (-1: a "
		     "call failed)",
		     good, ROUNDS);
	pid = tk_worker_pid(tenant);
	cr_assert_gt(pid, 0, "no worker process lutf-w-%s", tenant);
	return pid;
}

Test(worker_take, queued_calls_served_by_a_direct_take, .fini = teardown, .timeout = 120)
{
	char perms[5];
	uint64_t lo, hi;
	long long takes;
	pid_t pid;

	start(NULL);
	pid = run_rounds();
	cr_assert(tk_find_map(pid, "anon_inode:bpf-map", &lo, &hi, perms),
		  "worker %d has no view of labor_watch mapped", (int)pid);
	takes = tk_worker_takes(pid, tenant);
	cr_log_info("the worker counted %lld direct takes in %d rounds", takes, ROUNDS);
	/* Each round's blocked Labor loses the Cart to the Labor that ran the
	 * previous round's blocked call, spinning FREE (or, when it was not on a
	 * CPU then, to the Supervisor): most rounds are direct takes. */
	cr_assert_geq(takes, ROUNDS / 2,
		      "the worker counted %lld direct takes in %d rounds (expected most of them)",
		      takes, ROUNDS);
}

Test(worker_take, lend_off_leaves_every_handoff_to_the_supervisor, .fini = teardown, .timeout = 120)
{
	static const char *const env[] = {"LUTF_LABOR_WATCH_LEND=off", NULL};
	char perms[5];
	uint64_t lo, hi;
	pid_t pid;

	start(env);
	pid = run_rounds();
	cr_assert_not(tk_find_map(pid, "anon_inode:bpf-map", &lo, &hi, perms),
		      "worker %d maps labor_watch with LUTF_LABOR_WATCH_LEND=off", (int)pid);
	cr_assert_eq(tk_worker_takes(pid, tenant), 0);
}

/* A table of one page (max_tenants 1, labors_max 4): the tenant's second
 * worker finds no block free, says so once in lutfd's log, and serves its
 * calls without a view (every hand-off the Supervisor's). */
Test(worker_take, no_free_block_runs_without_a_view, .fini = teardown, .timeout = 120)
{
	pid_t pids[4];
	int n, lent = 0, fd;
	char perms[5];
	uint64_t lo, hi, until = td_now_ms() + 10000;
	const char *line = "no block of labor_watch slots";
	size_t len;
	uint8_t *log;

	start_with(NULL, "max_tenants = 1\n", 2);
	fd = td_connect(&d, "lutf.sock");
	cr_assert_geq(fd, 0);
	/* Calls spread over both workers: each is answered OK (which one came
	 * first is the dispatch's choice here). */
	n = tk_handoff_rounds(fd, tenant, 10, 2);
	cr_assert_geq(n, 0, "a call failed (log %s)", d.log);
	close(fd);
	do {
		n = tk_worker_pids(tenant, pids, 4);
	} while (n < 2 && td_now_ms() < until && (td_sleep_ms(20), true));
	cr_assert_eq(n, 2, "%d workers of %s", n, tenant);
	for (int i = 0; i < n; i++)
		lent += tk_find_map(pids[i], "anon_inode:bpf-map", &lo, &hi, perms);
	cr_assert_eq(lent, 1, "%d of 2 workers have a view on a table of one block", lent);
	log = td_slurp(d.log, &len);
	cr_assert(log);
	cr_assert(memmem(log, len, line, strlen(line)), "no log line \"%s\"", line);
	cr_assert_null(
	    memmem((uint8_t *)memmem(log, len, line, strlen(line)) + 1,
		   len - (size_t)((uint8_t *)memmem(log, len, line, strlen(line)) - log) - 1, line,
		   strlen(line)),
	    "said more than once");
	free(log);
}
