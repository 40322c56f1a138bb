/* SPDX-License-Identifier: MIT */
/*
 * A new worker joins its tenant's cgroup itself (issue 16 item 4): lutfd
 * hands it the cgroup files with its SPAWN, the worker writes "0" to them
 * while still root (zygote.c), and lutfd checks the cgroup's own list before
 * it sends the first LOAD (tenant.c). Here: the two helpers of cgroup.c on a
 * fake cgroup2 tree; through the real lutfd, the worker is in every one of
 * its tenant's cgroups (from /proc/<pid>/cgroup) before its first call; and a
 * worker handed files that are not its cgroup's (LUTF_TEST_CGROUP_FD=null: it
 * "joins" /dev/null and says it did) is refused and killed with the cause
 * named, while lutfd and another tenant go on. Root-only; skips otherwise.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sys/stat.h>

#include "fault_util.h"
#include "isolation.h"
#include "require.h"

#define FAULT TEST_APP_DIR "/libfault_app.so"

static const char *const ex[] = {"ok=ok", "whoami=whoami", NULL};

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

static void fake_cgroup(const char *dir)
{
	cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s", dir);
	put(dir, "cgroup.controllers", "cpu memory pids\n");
	put(dir, "cgroup.subtree_control", "");
	put(dir, "cgroup.procs", "");
}

Test(cgroup_join, v2_files_and_the_check_on_a_fake_tree)
{
	char root[] = "/tmp/lutf-cgj-XXXXXX", ten[300], why[300], big[8192];
	struct lutfd_cg cg;
	int fds[LUTFD_CG__N], n = -1;
	size_t k = 0;

	cr_assert(mkdtemp(root));
	fake_cgroup(root);
	snprintf(ten, sizeof(ten), "%s/lutf", root);
	fake_cgroup(ten);
	cr_assert_eq(lutfd_cg_init(&cg, "v2", root, "/nonexistent", "lutf"), LUTFD_CG_V2, "%s",
		     cg.why);
	snprintf(ten, sizeof(ten), "%s/lutf/acme", root);

	/* No folder yet: the open fails, nothing is left open, why names it. */
	cr_assert_eq(lutfd_cg_join_fds(&cg, "acme", fds, &n, why, sizeof(why)), -ENOENT);
	cr_assert_eq(n, 0);
	cr_assert(strstr(why, "acme/cgroup.procs"), "%s", why);

	fake_cgroup(ten);
	cr_assert_eq(lutfd_cg_join_fds(&cg, "acme", fds, &n, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(n, 1, "v2: one file");
	cr_assert_eq(write(fds[0], "0", 1), 1);
	close(fds[0]);

	/* The check reads the kernel's list: a pid is there or not, never a prefix. */
	put(ten, "cgroup.procs", "4242\n77\n");
	cr_assert_eq(lutfd_cg_holds(&cg, "acme", 77, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(lutfd_cg_holds(&cg, "acme", 4242, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(lutfd_cg_holds(&cg, "acme", 7, why, sizeof(why)), -ESRCH);
	cr_assert_eq(lutfd_cg_holds(&cg, "acme", 424, why, sizeof(why)), -ESRCH);
	cr_assert(strstr(why, "not in its cgroup2 cgroup") && strstr(why, "acme"), "%s", why);
	/* A long list: the pid sits across the reader's 4 KiB buffers. */
	for (int i = 0; k < 5000; i++)
		k += (size_t)snprintf(big + k, sizeof(big) - k, "%d\n", 100000 + i);
	snprintf(big + k, sizeof(big) - k, "31337\n");
	put(ten, "cgroup.procs", big);
	cr_assert_eq(lutfd_cg_holds(&cg, "acme", 31337, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(lutfd_cg_holds(&cg, "acme", 100001, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(lutfd_cg_holds(&cg, "acme", 3133, why, sizeof(why)), -ESRCH);
	/* Gone: an error, not a pass. */
	snprintf(big, sizeof(big), "rm -rf '%s'", root);
	(void)!system(big);
	cr_assert_eq(lutfd_cg_holds(&cg, "acme", 77, why, sizeof(why)), -ENOENT, "%s", why);
}

static struct td d;
static int cfd = -1, dfd = -1;

static void start(const char *const *env)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket and cgroups need root");
	LUTF_REQUIRE("cgroup", !access("/sys/fs/cgroup/memory/tasks", W_OK) ||
				   !access("/sys/fs/cgroup/cgroup.procs", W_OK),
		     "no writable cgroup hierarchy");
	d.env = env;
	cr_assert(fx_start(&d, NULL), "lutfd did not start (log in %s)", d.log);
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

/* Whether the comma list names ctrl ("cpu" is not "cpuset"). */
static bool has_ctrl(char *list, const char *ctrl)
{
	char *save = NULL;

	for (char *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save))
		if (!strcmp(w, ctrl))
			return true;
	return false;
}

/* /proc/<pid>/cgroup's line for controller ctrl ("" = the v2 line), its path. */
static bool proc_cgroup(pid_t pid, const char *ctrl, char *out, size_t cap)
{
	char path[64], line[1024];
	bool found = false;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	fp = fopen(path, "r");
	while (fp && !found && fgets(line, sizeof(line), fp)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		*c2 = 0;
		c2[1 + strcspn(c2 + 1, "\n")] = 0;
		if (ctrl[0] ? has_ctrl(c1 + 1, ctrl) : c1 == line + 1 && line[0] == '0') {
			snprintf(out, cap, "%s", c2 + 1);
			found = true;
		}
	}
	if (fp)
		fclose(fp);
	return found;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a >= b && !strcmp(s + a - b, tail);
}

Test(cgroup_join, the_worker_is_in_its_cgroups_before_its_first_call, .fini = teardown,
     .timeout = 120)
{
	char msg[300], want[96], got[512], *log;
	const char *ctrls[] = {"memory", "pids", "cpu", "freezer"};
	uint64_t pid = 0;
	int checked = 0;
	size_t len;

	start(NULL);
	cr_assert_eq(fx_deploy(cfd, "alpha", "fault", FAULT, ex, "compat", 0, msg, sizeof(msg)),
		     LUTF_STATUS_OK, "deploy: %s", msg);
	cr_assert(td_tenant_counter(cfd, "alpha", "worker_pid", &pid) && pid > 0);
	/* No call yet: the app's init (at LOAD) is all that ran of it. */
	snprintf(want, sizeof(want), "/%s/alpha", d.tag);
	if (!access("/sys/fs/cgroup/memory/tasks", F_OK)) {
		for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
			char mnt[64];

			snprintf(mnt, sizeof(mnt), "/sys/fs/cgroup/%s/tasks", ctrls[i]);
			if (access(mnt, W_OK))
				continue; /* not mounted here: lutfd does not use it */
			cr_assert(proc_cgroup((pid_t)pid, ctrls[i], got, sizeof(got)),
				  "no %s line for worker %llu", ctrls[i], (unsigned long long)pid);
			cr_assert(ends_with(got, want), "worker %llu: %s cgroup %s, want *%s",
				  (unsigned long long)pid, ctrls[i], got, want);
			checked++;
		}
	} else {
		cr_assert(proc_cgroup((pid_t)pid, "", got, sizeof(got)));
		cr_assert(ends_with(got, want), "worker: cgroup %s, want *%s", got, want);
		checked++;
	}
	cr_assert_geq(checked, 1);
	/* Its first call, served by that same worker. */
	{
		struct fx_res r = fx_call(dfd, "alpha", "ok", "", 0, 10000);
		uint64_t now = 0;

		cr_assert_eq(r.status, LUTF_STATUS_OK, "status %u (%s)", r.status, r.text);
		cr_assert(td_tenant_counter(cfd, "alpha", "worker_pid", &now) && now == pid);
	}
	log = (char *)td_slurp(d.log, &len);
	cr_assert(log);
	cr_assert_null(strstr(log, "refused"), "a refusal in the log %s", d.log);
	free(log);
}

Test(cgroup_join, a_worker_outside_its_cgroup_is_refused_and_killed, .fini = teardown,
     .timeout = 120)
{
	static const char *const env[] = {"LUTF_TEST_CGROUP_FD=null", NULL};
	char msg[300], *log, *p;
	uint32_t st;
	size_t len;
	int wpid = 0;

	start(env);
	st = fx_deploy(cfd, "alpha", "fault", FAULT, ex, "compat", 0, msg, sizeof(msg));
	cr_assert_neq(st, LUTF_STATUS_OK, "deployed with a worker outside its cgroup");
	cr_assert(strstr(msg, "cgroup check: not in its"), "deploy error: %s", msg);
	log = (char *)td_slurp(d.log, &len);
	cr_assert(log);
	p = strstr(log, "tenant alpha: worker ");
	while (p && !strstr(p, "refused (killed): cgroup check"))
		p = strstr(p + 1, "tenant alpha: worker ");
	cr_assert(p, "no refusal in the log %s", d.log);
	cr_assert_eq(sscanf(p, "tenant alpha: worker %d refused", &wpid), 1);
	cr_assert(strstr(p, "not in its memory cgroup") || strstr(p, "not in its cgroup2 cgroup"),
		  "the cause is not named: %.200s", p);
	cr_assert_null(strstr(log, " up (tier "), "a worker came up: log %s", d.log);
	free(log);
	/* Killed, never up: it answers no call. */
	{
		uint64_t until = td_now_ms() + 5000;

		while (!td_pid_gone(wpid) && td_now_ms() < until)
			td_sleep_ms(20);
		cr_assert(td_pid_gone(wpid), "worker %d still runs", wpid);
	}
	/* lutfd is alive and answers. */
	{
		struct td_reply r;

		cr_assert(td_status(cfd, &r), "lutfd does not answer");
		free(r.payload);
		cr_assert(!td_pid_gone(d.pid), "lutfd died");
	}
}
