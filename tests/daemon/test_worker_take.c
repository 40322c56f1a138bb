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

/* lutfd with labor_watch loaded, then tenant deployed (its worker is spawned
 * after the load, so it is lent its view). */
static void start(const char *const *env)
{
	static const char *const ex[] = {"nap=nap", "quick=quick", NULL};
	struct td_reply r;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	snprintf(tenant, sizeof(tenant), "wt%d", (int)getpid() % 100000);
	d.env = env;
	cr_assert(td_start(&d, CONF), "lutfd did not start (log in %s)", d.log);
	LUTF_REQUIRE_BPF(tk_wait_bpf(&d, 15000), "labor_watch did not load (see lutfd's log)");
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	cr_assert_eq(td_deploy(cfd, tenant, "take", TAKE_APP, ex, &r), LUTF_STATUS_OK);
	free(r.payload);
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
