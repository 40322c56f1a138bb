/* SPDX-License-Identifier: MIT */
/*
 * lutfd's spin_us when lutfd.conf leaves it unset (tenant.c lutfd_spin_us):
 * 50 us when a tenant's worker may use more than one CPU, 5 when at most
 * one, where "may use" is the smallest of lutfd's CPU set, the CPU quota of
 * lutfd's own cgroup and those above it, and tenant_cpu_pct. Each case starts
 * a real lutfd, deploys a function (its runtime takes the value) and reads
 * the line lutfd logs with the choice and its reason.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <limits.h>
#include <sched.h>

#include "daemon_util.h"
#include "require.h"

#define HELLO EXAMPLES_DIR "/libhello.so"

static struct td d;
static int cfd = -1;
static char quota_dir[PATH_MAX]; /* the test's cgroup with a CPU quota, "" = none */

static void teardown(void)
{
	td_close_stop(&d, &cfd);
	if (quota_dir[0])
		rmdir(quota_dir); /* empty once lutfd (killed) left it */
	quota_dir[0] = 0;
}

/* Start lutfd with extra config, deploy hello, return the "spin_us unset"
 * line of its log ("" when there is none; static). */
static const char *start_and_read(const char *extra)
{
	static const char *const ex[] = {"hello=hello", NULL};
	static char line[256];
	struct td_reply r;
	uint32_t st;
	size_t len;
	uint8_t *log;
	char *p;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	cr_assert(td_start(&d, extra), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	st = td_deploy(cfd, "spin", "hello", HELLO, ex, &r);
	free(r.payload);
	cr_assert_eq(st, LUTF_STATUS_OK, "deploy: status %u (log %s)", st, d.log);
	log = td_slurp(d.log, &len);
	cr_assert(log, "no log %s", d.log);
	line[0] = 0;
	p = memmem(log, len, "spin_us unset: ", 15);
	if (p)
		snprintf(line, sizeof(line), "%.*s", (int)strcspn(p, "\n"), p);
	free(log);
	return line;
}

static int pin_cpu0(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? 1 : 0;
}

/* Put lutfd (pre-exec: the child itself) into quota_dir. */
static int join_quota(void)
{
	char path[PATH_MAX + 16];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", quota_dir,
		 access("/sys/fs/cgroup/cpu/tasks", W_OK) ? "cgroup.procs" : "tasks");
	fp = fopen(path, "w");
	if (!fp)
		return 1;
	fprintf(fp, "0\n");
	return fclose(fp) ? 1 : 0;
}

static bool put_file(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX + 32];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fp = fopen(path, "w");
	if (!fp)
		return false;
	fputs(text, fp);
	return fclose(fp) == 0;
}

Test(spin_auto, unpinned_spins_by_the_cpu_set, .fini = teardown)
{
	cpu_set_t set;
	const char *line;
	char want[96];

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	/* 50 us on two CPUs or more; a one-CPU host gets the one-CPU answer. */
	if (CPU_COUNT(&set) > 1)
		snprintf(want, sizeof(want), "spin_us unset: 50 us (workers may use %d.00 CPUs: CPU set)",
			 CPU_COUNT(&set));
	else
		snprintf(want, sizeof(want), "spin_us unset: 5 us (workers may use 1.00 CPUs: CPU set)");
	line = start_and_read(NULL);
	cr_assert_str_eq(line, want, "log %s", d.log);
}

Test(spin_auto, one_cpu_spins_5_us, .fini = teardown)
{
	const char *line;

	d.pre_exec = pin_cpu0;
	line = start_and_read(NULL);
	d.pre_exec = NULL;
	cr_assert_str_eq(line, "spin_us unset: 5 us (workers may use 1.00 CPUs: CPU set)",
			 "log %s", d.log);
}

Test(spin_auto, tenant_cpu_pct_of_half_a_cpu_spins_5_us, .fini = teardown)
{
	const char *line;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("cgroup", !access("/sys/fs/cgroup/cpu/tasks", W_OK) ||
				   !access("/sys/fs/cgroup/cgroup.controllers", R_OK),
		     "no cgroup cpu controller here: tenant_cpu_pct is not applied");
	line = start_and_read("tenant_cpu_pct = 50");
	cr_assert_str_eq(line, "spin_us unset: 5 us (workers may use 0.50 CPUs: tenant_cpu_pct)",
			 "log %s", d.log);
}

Test(spin_auto, cgroup_quota_of_half_a_cpu_spins_5_us, .fini = teardown)
{
	const char *line;
	bool v1 = !access("/sys/fs/cgroup/cpu/tasks", W_OK);

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	LUTF_REQUIRE("cgroup", v1 || !access("/sys/fs/cgroup/cgroup.subtree_control", W_OK),
		     "no writable cgroup cpu controller here");
	/* Named with the test's tag, so td_stop's sweep removes what lutfd made
	 * below it; the quota folder itself goes in teardown. */
	snprintf(d.tag, sizeof(d.tag), "lutft%d-q", (int)getpid());
	d.uid_lo = TD_UID_LO;
	snprintf(quota_dir, sizeof(quota_dir), "%s/%s", v1 ? "/sys/fs/cgroup/cpu" : "/sys/fs/cgroup",
		 d.tag);
	cr_assert(!mkdir(quota_dir, 0755) || errno == EEXIST, "mkdir %s: %s", quota_dir,
		  strerror(errno));
	if (v1)
		cr_assert(put_file(quota_dir, "cpu.cfs_period_us", "100000") &&
			  put_file(quota_dir, "cpu.cfs_quota_us", "50000"));
	else
		cr_assert(put_file("/sys/fs/cgroup", "cgroup.subtree_control", "+cpu") &&
			  put_file(quota_dir, "cpu.max", "50000 100000"));
	d.pre_exec = join_quota;
	line = start_and_read(NULL);
	d.pre_exec = NULL;
	cr_assert_str_eq(line,
			 "spin_us unset: 5 us (workers may use 0.50 CPUs: lutfd's cgroup CPU quota)",
			 "log %s", d.log);
}

Test(spin_auto, set_in_the_config_is_used_as_is, .fini = teardown)
{
	const char *line;

	d.pre_exec = pin_cpu0;
	line = start_and_read("spin_us = 7");
	d.pre_exec = NULL;
	cr_assert_str_eq(line, "", "lutfd chose a spin although lutfd.conf set one (log %s)",
			 d.log);
}
