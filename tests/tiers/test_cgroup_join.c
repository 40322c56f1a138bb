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
 * named, while lutfd goes on. And the zygote's side alone on a real cgroup2
 * folder (this host's v2 tree has no memory controller, so lutfd itself runs
 * v1 here): its child joins by writing "0" to cgroup.procs and says so; a
 * file it cannot write makes it say why and exit; SPAWNED says whether the
 * child got CPython (only a Python SPAWN starts it while the zygote is busy).
 * Root-only; skips otherwise.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sys/stat.h>

#include <poll.h>
#include <sys/mman.h>

#include "fault_util.h"
#include "isolation.h"
#include "require.h"
#include "worker.h"

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
	LUTF_REQUIRE("cgroup",
		     !access("/sys/fs/cgroup/memory/tasks", W_OK) ||
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

/* The file at path, NUL-ended (free it). */
static char *slurp_str(const char *path)
{
	size_t len = 0;
	uint8_t *all = td_slurp(path, &len);
	char *s = all ? malloc(len + 1) : NULL;

	cr_assert(all && s, "cannot read %s", path);
	memcpy(s, all, len);
	s[len] = 0;
	free(all);
	return s;
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
	log = slurp_str(d.log);
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
	int wpid = 0;

	start(env);
	st = fx_deploy(cfd, "alpha", "fault", FAULT, ex, "compat", 0, msg, sizeof(msg));
	cr_assert_neq(st, LUTF_STATUS_OK, "deployed with a worker outside its cgroup");
	cr_assert(strstr(msg, "cgroup check: not in its"), "deploy error: %s", msg);
	log = slurp_str(d.log);
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
	/* Its death is named as lutfd's refusal, not as a crash of its own. */
	{
		char want[96];
		uint64_t until = td_now_ms() + 5000;
		bool named = false;

		snprintf(want, sizeof(want), "worker %d killed by signal 9 (crashed (refused at start",
			 wpid);
		while (!named && td_now_ms() < until) {
			log = slurp_str(d.log);
			named = log && strstr(log, want);
			free(log);
			if (!named)
				td_sleep_ms(20);
		}
		cr_assert(named, "the death of worker %d is not named as a refusal: log %s", wpid,
			  d.log);
	}
	/* lutfd is alive and answers. */
	{
		struct td_reply r;

		cr_assert(td_status(cfd, &r), "lutfd does not answer");
		free(r.payload);
		cr_assert(!td_pid_gone(d.pid), "lutfd died");
	}
}

/* The worker's unasked ctl record: rc, text in msg. */
static int join_word(int ctl, char *msg, size_t cap)
{
	struct pollfd p = {ctl, POLLIN, 0};
	char buf[300];
	int32_t rc;
	ssize_t n;

	cr_assert_eq(poll(&p, 1, 5000), 1, "no word from the worker");
	n = recv(ctl, buf, sizeof(buf) - 1, 0);
	cr_assert_geq(n, (ssize_t)sizeof(rc), "the worker went without a word");
	buf[n] = 0;
	memcpy(&rc, buf, sizeof(rc));
	snprintf(msg, cap, "%s", buf + sizeof(rc));
	return rc;
}

/* A worker of z on a blank region, joining by cg (or none): its pid, ctl. */
static pid_t zy_worker(struct lutf_zygote *z, const int *cg, int ncg, uint32_t flags, int *ctl,
		       bool *py)
{
	int memfd = memfd_create("lutf-cgj", MFD_CLOEXEC), c[2], lg[2];
	pid_t pid = 0;

	cr_assert_geq(memfd, 0);
	cr_assert_eq(ftruncate(memfd, 1 << 16), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, lg), 0);
	cr_assert_eq(lutf_zygote_spawn_cg(z, "cgj", memfd, 1 << 16, c[1], lg[1], -1, cg, ncg, flags,
					  NULL, 5000, &pid, py),
		     0);
	close(memfd);
	close(c[1]);
	close(lg[0]);
	close(lg[1]);
	*ctl = c[0];
	return pid;
}

Test(cgroup_join, the_zygote_child_joins_a_real_cgroup2_folder_or_says_why, .timeout = 60)
{
	const char *mnt = "/sys/fs/cgroup/unified";
	char dir[128], file[160], want[64], got[512], msg[300];
	struct lutf_zygote z;
	int fd, ctl, ctl2, st = 0;
	bool py = true, py2 = false;
	pid_t w, w2, p;
	uint64_t until;

	LUTF_REQUIRE("root", lutf_test_is_root(), "cgroup writes need root");
	if (access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK))
		mnt = "/sys/fs/cgroup"; /* a pure v2 host */
	snprintf(file, sizeof(file), "%s/cgroup.controllers", mnt);
	LUTF_REQUIRE("cgroup", !access(file, F_OK), "no cgroup2 mount");
	snprintf(dir, sizeof(dir), "%s/lutf-cgj-%d", mnt, (int)getpid());
	cr_assert(!mkdir(dir, 0755) || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
	snprintf(file, sizeof(file), "%s/cgroup.procs", dir);
	/* The zygote waits for nothing but a Python SPAWN to start CPython. */
	setenv("LUTF_ZYGOTE_PY_IDLE_MS", "60000", 1);
	cr_assert_eq(lutf_zygote_start(&z, -1), 0);

	fd = open(file, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", file, strerror(errno));
	w = zy_worker(&z, &fd, 1, 0, &ctl, &py);
	close(fd);
	cr_assert_eq(join_word(ctl, msg, sizeof(msg)), 0, "join: %s", msg);
	cr_assert_not(py, "a C spawn got CPython started for it");
	snprintf(want, sizeof(want), "/lutf-cgj-%d", (int)getpid());
	cr_assert(proc_cgroup(w, "", got, sizeof(got)), "no 0:: line for %d", (int)w);
	cr_assert(ends_with(got, want), "worker %d in %s, want *%s", (int)w, got, want);

	/* Not a file it can write (read-only): it says why and exits. */
	fd = open(file, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	w2 = zy_worker(&z, &fd, 1, LUTF_ZY_PYTHON, &ctl2, &py2);
	close(fd);
	cr_assert(py2, "a Python spawn without CPython tried first");
	cr_assert_eq(join_word(ctl2, msg, sizeof(msg)), -EBADF, "%s", msg);
	cr_assert(strstr(msg, "cgroup: joining file 1 of 1"), "%s", msg);
	until = td_now_ms() + 5000;
	for (p = 0; p != w2 && td_now_ms() < until;) {
		if (lutf_zygote_next_exit(&z, &p, &st) != 1)
			td_sleep_ms(10);
	}
	cr_assert_eq(p, w2, "no exit of the worker that could not join");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == LUTF_WK_EXIT_SANDBOX, "status %#x", st);

	kill(w, SIGKILL);
	close(ctl);
	close(ctl2);
	kill(z.pid, SIGKILL);
	waitpid(z.pid, NULL, 0);
	free(z.pending);
	for (int i = 0; i < 50 && rmdir(dir) && errno == EBUSY; i++)
		td_sleep_ms(20);
}
