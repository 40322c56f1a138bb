/* SPDX-License-Identifier: MIT */
/*
 * lutfd's cgroup module (userspace/isolation/lutfd/cgroup.c) alone. cgroup v2 (what
 * hosts run) against a fake tree in a temporary folder: the files it writes
 * and the OOM count it reads. cgroup v1 for real where this machine mounts
 * it: limits written, a process moved, the folders removed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "isolation.h"
#include "require.h"

static void put(const char *dir, const char *file, const char *s)
{
	char p[PATH_MAX];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fp = fopen(p, "w");
	cr_assert(fp, "cannot create %s", p);
	fputs(s, fp);
	fclose(fp);
}

static char *get(const char *dir, const char *file, char *buf, size_t cap)
{
	char p[PATH_MAX];
	FILE *fp;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fp = fopen(p, "r");
	cr_assert(fp, "cannot read %s", p);
	n = fread(buf, 1, cap - 1, fp);
	fclose(fp);
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/* A cgroup2 folder as the kernel shows one (the files lutfd touches). */
static void fake_cgroup(const char *dir, const char *controllers)
{
	cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s", dir);
	put(dir, "cgroup.controllers", controllers);
	put(dir, "cgroup.subtree_control", "");
	put(dir, "cgroup.procs", "");
	put(dir, "memory.max", "max");
	put(dir, "memory.swap.max", "max");
	put(dir, "pids.max", "max");
	put(dir, "cpu.max", "max 100000");
	put(dir, "memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 0\noom_group_kill 0\n");
}

Test(cgroup, v2_writes_limits_moves_and_counts_oom_kills)
{
	char root[] = "/tmp/lutf-cg-XXXXXX", base[256], ten[300], buf[256];
	struct lutfd_cg cg;
	struct lutfd_cg_limits lim = {.memory_bytes = 64ull << 20, .pids_max = 32, .cpu_pct = 50};
	uint64_t n = 99;

	cr_assert(mkdtemp(root));
	fake_cgroup(root, "cpuset cpu io memory pids\n");
	snprintf(base, sizeof(base), "%s/lutf", root);
	snprintf(ten, sizeof(ten), "%s/acme", base);
	fake_cgroup(base, "cpu memory pids\n");
	fake_cgroup(ten, "cpu memory pids\n");

	cr_assert_eq(lutfd_cg_init(&cg, "v2", root, "/nonexistent", "lutf"), LUTFD_CG_V2, "%s",
		     cg.why);
	cr_assert_str_eq(get(root, "cgroup.subtree_control", buf, sizeof(buf)),
			 "+memory +pids +cpu");
	cr_assert_str_eq(get(base, "cgroup.subtree_control", buf, sizeof(buf)),
			 "+memory +pids +cpu");
	cr_assert_eq(lutfd_cg_tenant(&cg, "acme", &lim), 0);
	cr_assert_str_eq(get(ten, "memory.max", buf, sizeof(buf)), "67108864");
	cr_assert_str_eq(get(ten, "memory.swap.max", buf, sizeof(buf)), "0");
	cr_assert_str_eq(get(ten, "pids.max", buf, sizeof(buf)), "32");
	cr_assert_str_eq(get(ten, "cpu.max", buf, sizeof(buf)), "50000 100000");
	cr_assert_eq(lutfd_cg_attach(&cg, "acme", 4242), 0);
	cr_assert_str_eq(get(ten, "cgroup.procs", buf, sizeof(buf)), "4242");
	cr_assert_eq(lutfd_cg_oom_kills(&cg, "acme", &n), 0);
	cr_assert_eq(n, 0);
	put(ten, "memory.events", "low 0\nhigh 0\nmax 9\noom 4\noom_kill 3\noom_group_kill 0\n");
	cr_assert_eq(lutfd_cg_oom_kills(&cg, "acme", &n), 0);
	cr_assert_eq(n, 3);

	/* No limits: "max" everywhere. */
	memset(&lim, 0, sizeof(lim));
	cr_assert_eq(lutfd_cg_tenant(&cg, "acme", &lim), 0);
	cr_assert_str_eq(get(ten, "memory.max", buf, sizeof(buf)), "max");
	cr_assert_str_eq(get(ten, "pids.max", buf, sizeof(buf)), "max");
	cr_assert_str_eq(get(ten, "cpu.max", buf, sizeof(buf)), "max 100000");
	lutfd_cg_describe(&cg, buf, sizeof(buf));
	cr_assert_str_eq(buf, "cgroup v2");
	snprintf(buf, sizeof(buf), "rm -rf '%s'", root);
	cr_assert_eq(system(buf), 0);
}

Test(cgroup, v2_without_memory_controller_falls_to_none)
{
	char root[] = "/tmp/lutf-cg-XXXXXX", buf[300];
	struct lutfd_cg cg;

	cr_assert(mkdtemp(root));
	fake_cgroup(root, "cpu io\n");
	cr_assert_eq(lutfd_cg_init(&cg, "v2", root, "/nonexistent", "lutf"), LUTFD_CG_NONE);
	cr_assert(strstr(cg.why, "no memory/pids controller"), "why '%s'", cg.why);
	lutfd_cg_describe(&cg, buf, sizeof(buf));
	cr_assert(!strncmp(buf, "rlimits only (", 14), "'%s'", buf);
	cr_assert_eq(lutfd_cg_init(&cg, "off", root, "/nonexistent", "lutf"), LUTFD_CG_NONE);
	cr_assert_str_eq(cg.why, "cgroup = off");
	snprintf(buf, sizeof(buf), "rm -rf '%s'", root);
	cr_assert_eq(system(buf), 0);
}

/* The v1 memory folder of pid's cgroup, from /proc/<pid>/cgroup. */
static bool memory_cgroup_of(pid_t pid, char *out, size_t cap)
{
	char p[64], line[512];
	FILE *fp;
	bool found = false;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
	fp = fopen(p, "r");
	while (fp && !found && fgets(line, sizeof(line), fp)) {
		char *c = strstr(line, ":memory:");

		if (c) {
			snprintf(out, cap, "%s", c + 8);
			out[strcspn(out, "\n")] = 0;
			found = true;
		}
	}
	if (fp)
		fclose(fp);
	return found;
}

Test(cgroup, v1_for_real)
{
	char name[32], ten[PATH_MAX + 80], buf[256], where[512];
	struct lutfd_cg_limits lim = {.memory_bytes = 96ull << 20, .pids_max = 16, .cpu_pct = 0};
	struct lutfd_cg cg;
	uint64_t n = 99;
	pid_t child;

	LUTF_REQUIRE("root", lutf_test_is_root(), "cgroup folders need root");
	LUTF_REQUIRE("cgroup", !access("/sys/fs/cgroup/memory/tasks", W_OK),
		     "no cgroup v1 memory controller mounted here");
	snprintf(name, sizeof(name), "lutfcg%d", (int)getpid());
	cr_assert_eq(lutfd_cg_init(&cg, "v1", "", "/sys/fs/cgroup", name), LUTFD_CG_V1, "%s",
		     cg.why);
	cr_assert_eq(lutfd_cg_tenant(&cg, "acme", &lim), 0);
	snprintf(ten, sizeof(ten), "%s/acme", cg.base[LUTFD_CG_MEMORY]);
	cr_assert_str_eq(get(ten, "memory.limit_in_bytes", buf, sizeof(buf)), "100663296");
	if (cg.base[LUTFD_CG_PIDS][0]) {
		snprintf(ten, sizeof(ten), "%s/acme", cg.base[LUTFD_CG_PIDS]);
		cr_assert_str_eq(get(ten, "pids.max", buf, sizeof(buf)), "16");
	}
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	cr_assert_eq(lutfd_cg_attach(&cg, "acme", child), 0);
	cr_assert(memory_cgroup_of(child, where, sizeof(where)));
	cr_assert(strstr(where, name) && strstr(where, "/acme"), "child in '%s'", where);
	cr_assert_eq(lutfd_cg_oom_kills(&cg, "acme", &n), 0);
	cr_assert_eq(n, 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	for (int i = 0; i < 50; i++) {
		lutfd_cg_tenant_remove(&cg, "acme");
		snprintf(ten, sizeof(ten), "%s/acme", cg.base[LUTFD_CG_MEMORY]);
		if (access(ten, F_OK))
			break;
		usleep(20000);
	}
	cr_assert(access(ten, F_OK), "%s not removed", ten);
	snprintf(ten, sizeof(ten), "%s", cg.base[LUTFD_CG_MEMORY]);
	lutfd_cg_fini(&cg);
	cr_assert(access(ten, F_OK), "%s not removed", ten);
}
