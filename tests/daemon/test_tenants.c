/* SPDX-License-Identifier: MIT */
/*
 * Durable control changes and tenant removal (issue 12.5, 12.6, 12.7): on a
 * full state disk every change is refused NOT_PERSISTED, undone in memory
 * and still undone after a restart; a failed first deploy leaves no tenant,
 * uid, worker, cgroup or folder; `delete TENANT` (--force) frees them all; a
 * tenant without functions runs no worker, also after a restart; a registry
 * naming tier none is refused without allow_tier_none; 65 exports name the
 * limit.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <sys/mount.h>

#include "daemon_util.h"
#include "require.h"

#define APP0 TEST_APP_DIR "/libctl_app.so"
#define EXEC_APP TEST_APP_DIR "/libctl_exec_app.so"
#define NET_APP TEST_APP_DIR "/libctl_net_app.so"

static struct td d;
static int cfd = -1;
static bool on_tmpfs;

static void setup(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "the control socket and cgroups need root");
	cr_assert(td_start(&d, NULL), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
}

static void teardown(void)
{
	if (cfd >= 0)
		close(cfd);
	cfd = -1;
	if (d.pid > 0) {
		kill(d.pid, SIGKILL);
		waitpid(d.pid, NULL, 0);
		d.pid = 0;
	}
	if (on_tmpfs)
		umount2(d.state, MNT_DETACH);
	on_tmpfs = false;
	td_stop(&d);
}

TestSuite(tenants, .init = setup, .fini = teardown, .timeout = 120);

/* SIGKILL lutfd and start it again on the same folders. */
static void restart(void)
{
	close(cfd);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	cr_assert(td_start_again(&d), "lutfd did not start again (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
}

/* The STATE of tenant/fn in LIST into state ("" when absent). */
static void fn_state(const char *tenant, const char *fn, char *state, size_t cap)
{
	struct lutf_buf b;
	struct td_reply r;
	struct lutf_tlv rec;

	state[0] = 0;
	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_LIST, 3, NULL, NULL);
	cr_assert_eq(td_call(cfd, &b, &r, 5000), LUTF_STATUS_OK);
	lutf_buf_free(&b);
	for (int i = 0; td_field(&r, LUTF_TAG_RECORD, i, &rec); i++) {
		char t[80] = "", f[80] = "", s[32] = "";
		struct lutf_tlv_iter it;
		struct lutf_tlv x;

		lutf_tlv_iter_init(&it, rec.val, rec.len);
		while (lutf_tlv_next(&it, &x)) {
			if (x.tag == LUTF_TAG_TENANT)
				lutf_tlv_str(&x, t, sizeof(t));
			else if (x.tag == LUTF_TAG_FUNCTION)
				lutf_tlv_str(&x, f, sizeof(f));
			else if (x.tag == LUTF_TAG_STATE)
				lutf_tlv_str(&x, s, sizeof(s));
		}
		if (!strcmp(t, tenant) && !strcmp(f, fn))
			snprintf(state, cap, "%s", s);
	}
	free(r.payload);
}

static bool has_tenant(const char *tenant)
{
	struct td_reply r;
	struct lutf_tlv rec;
	bool found;

	cr_assert(td_status(cfd, &r));
	found = td_tenant_record(&r, tenant, &rec);
	free(r.payload);
	return found;
}

/* A control call; its status and ERROR text. */
static uint32_t ctl(uint16_t op, const char *tenant, const char *fn, uint32_t force, char *err,
		    size_t cap)
{
	struct lutf_buf b;
	struct td_reply r;
	uint32_t st;
	size_t f;

	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, op, 0, 11);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	if (fn)
		lutf_tlv_put_str(&b, LUTF_TAG_FUNCTION, fn);
	if (force)
		lutf_tlv_put_u32(&b, LUTF_TAG_FORCE, force);
	lutf_frame_end(&b, f);
	st = td_call(cfd, &b, &r, 15000);
	lutf_buf_free(&b);
	if (err && cap) {
		err[0] = 0;
		if (st != 0xffffffffu)
			td_field_str(&r, LUTF_TAG_ERROR, err, cap);
	}
	free(r.payload);
	return st;
}

static uint32_t deploy_err(const char *tenant, const char *app, const char *so,
			   const char *const *ex, char *err, size_t cap)
{
	struct td_reply r;
	uint32_t st = td_deploy(cfd, tenant, app, so, ex, &r);

	err[0] = 0;
	if (r.payload)
		td_field_str(&r, LUTF_TAG_ERROR, err, cap);
	free(r.payload);
	return st;
}

static uint32_t invoke_ok(const char *tenant, const char *fn)
{
	int fd = td_connect(&d, "lutf.sock");
	struct lutf_buf b;
	struct td_reply r;
	uint32_t st;

	cr_assert_geq(fd, 0);
	lutf_buf_init(&b);
	td_invoke_frame(&b, 1, tenant, fn, "x", 1);
	st = td_call(fd, &b, &r, 10000);
	lutf_buf_free(&b);
	free(r.payload);
	close(fd);
	return st;
}

static bool path_exists(const char *fmt, const char *tenant)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), fmt, d.state, tenant);
	return stat(p, &st) == 0;
}

/* Processes running as uid. */
static int uid_procs(unsigned uid)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (dir && (e = readdir(dir))) {
		char p[300], line[256];
		FILE *fp;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/status", e->d_name);
		fp = fopen(p, "r");
		while (fp && fgets(line, sizeof(line), fp)) {
			unsigned u;

			if (sscanf(line, "Uid: %u", &u) == 1) {
				n += u == uid;
				break;
			}
		}
		if (fp)
			fclose(fp);
	}
	if (dir)
		closedir(dir);
	return n;
}

static bool cgroup_exists(const char *tenant)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd),
		 "find /sys/fs/cgroup -type d -path '*/%s/%s' 2>/dev/null | grep -q .", d.tag,
		 tenant);
	return system(cmd) == 0;
}

/* Everything of tenant is gone: record, worker (pid), uid's processes, cgroup, folders. */
static void assert_gone(const char *tenant, uint64_t pid, unsigned uid)
{
	uint64_t until = td_now_ms() + 3000;

	cr_assert_not(has_tenant(tenant), "tenant %s still listed", tenant);
	while ((uid_procs(uid) || (pid && !td_pid_gone((pid_t)pid))) && td_now_ms() < until)
		td_sleep_ms(20);
	cr_assert(!pid || td_pid_gone((pid_t)pid), "worker %llu of %s still runs",
		  (unsigned long long)pid, tenant);
	cr_assert_eq(uid_procs(uid), 0, "processes of uid %u (%s) remain", uid, tenant);
	cr_assert_not(path_exists("%s/apps/%s", tenant), "apps/%s remains", tenant);
	cr_assert_not(path_exists("%s/scratch/%s", tenant), "scratch/%s remains", tenant);
	cr_assert_not(cgroup_exists(tenant), "the cgroup of %s remains", tenant);
}

static const char *const ex_all[] = {"echo=echo", "echo2=echo", "crash=crash", NULL};
static const char *const ex_other[] = {"other=echo", NULL};

Test(tenants, full_disk_refuses_every_change_and_restart_agrees, .description = "issue 12.5")
{
	char cmd[600], st[32], err[400];

	/* The state folder on a 4 MiB tmpfs: stop, move it there, start again. */
	close(cfd);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "mv '%s' '%s.old' && mkdir -m 0711 '%s'", d.state, d.state,
		 d.state);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(mount("tmpfs", d.state, "tmpfs", 0, "size=4m,mode=0711"), 0, "mount: %s",
		     strerror(errno));
	on_tmpfs = true;
	snprintf(cmd, sizeof(cmd), "cp -a '%s.old/.' '%s/' && rm -rf '%s.old'", d.state, d.state,
		 d.state);
	cr_assert_eq(system(cmd), 0);
	cr_assert(td_start_again(&d), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);

	cr_assert_eq(deploy_err("acme", "a", APP0, ex_all, err, sizeof(err)), LUTF_STATUS_OK, "%s",
		     err);
	cr_assert_eq(ctl(LUTF_OP_PAUSE, "acme", "echo2", 0, NULL, 0), LUTF_STATUS_OK);
	/* Fill the disk. */
	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of='%s/fill' bs=64k 2>/dev/null; true",
		 d.state);
	cr_assert_eq(system(cmd), 0);

	cr_assert_eq(ctl(LUTF_OP_PAUSE, "acme", "echo", 0, err, sizeof(err)),
		     LUTF_STATUS_NOT_PERSISTED, "pause on a full disk");
	cr_assert(strstr(err, "No space left on device"), "pause error: %s", err);
	cr_assert_eq(ctl(LUTF_OP_RESUME, "acme", "echo2", 0, err, sizeof(err)),
		     LUTF_STATUS_NOT_PERSISTED, "resume on a full disk");
	cr_assert_eq(ctl(LUTF_OP_DELETE, "acme", "crash", 0, err, sizeof(err)),
		     LUTF_STATUS_NOT_PERSISTED, "delete on a full disk");
	cr_assert_eq(deploy_err("acme", "b", APP0, ex_other, err, sizeof(err)),
		     LUTF_STATUS_NOT_PERSISTED, "deploy on a full disk: %s", err);
	cr_assert(strstr(err, "No space left on device"), "deploy error: %s", err);
	cr_assert_eq(deploy_err("newbie", "a", APP0, ex_all, err, sizeof(err)),
		     LUTF_STATUS_NOT_PERSISTED, "first deploy on a full disk: %s", err);
	cr_assert_eq(ctl(LUTF_OP_DELETE, "acme", NULL, 1, err, sizeof(err)),
		     LUTF_STATUS_NOT_PERSISTED, "tenant removal on a full disk: %s", err);

	/* Memory says what the replies said: nothing changed. */
	fn_state("acme", "echo", st, sizeof(st));
	cr_assert_str_eq(st, "active");
	fn_state("acme", "echo2", st, sizeof(st));
	cr_assert_str_eq(st, "paused");
	fn_state("acme", "crash", st, sizeof(st));
	cr_assert_str_eq(st, "active");
	cr_assert_not(has_tenant("newbie"));
	cr_assert_not(path_exists("%s/apps/%s", "newbie"));

	/* And so does the disk, after a restart. */
	snprintf(cmd, sizeof(cmd), "%s/fill", d.state);
	cr_assert_eq(unlink(cmd), 0);
	restart();
	fn_state("acme", "echo", st, sizeof(st));
	cr_assert_str_eq(st, "active");
	fn_state("acme", "echo2", st, sizeof(st));
	cr_assert_str_eq(st, "paused");
	fn_state("acme", "crash", st, sizeof(st));
	cr_assert_str_eq(st, "active");
	cr_assert_not(has_tenant("newbie"));
	/* With room, the same change is acknowledged and survives a restart. */
	cr_assert_eq(ctl(LUTF_OP_PAUSE, "acme", "echo", 0, NULL, 0), LUTF_STATUS_OK);
	restart();
	fn_state("acme", "echo", st, sizeof(st));
	cr_assert_str_eq(st, "paused");
}

Test(tenants, failed_first_deploy_leaves_nothing, .description = "issue 12.6")
{
	char bad[160], err[400];
	FILE *fp;

	snprintf(bad, sizeof(bad), "%s/not-an-elf.so", d.dir);
	fp = fopen(bad, "w");
	cr_assert(fp);
	fputs("this is not an ELF file\n", fp);
	fclose(fp);
	cr_assert_eq(deploy_err("ghost", "a", bad, ex_all, err, sizeof(err)),
		     LUTF_STATUS_FUNCTION_ERROR, "not an ELF: %s", err);
	cr_assert(strstr(err, "does not load"), "%s", err);
	assert_gone("ghost", 0, d.uid_lo);
	/* An exec during the load: the tier kills the worker. */
	cr_assert_eq(deploy_err("ghost", "a", EXEC_APP, ex_all, err, sizeof(err)),
		     LUTF_STATUS_KILLED_BY_POLICY, "exec at load: %s", err);
	assert_gone("ghost", 0, d.uid_lo);
	restart();
	cr_assert_not(has_tenant("ghost"));
}

Test(tenants, delete_tenant_frees_everything, .description = "issue 12.6")
{
	uint64_t pid = 0, uid = 0, uid2 = 0;
	char err[400];

	cr_assert_eq(deploy_err("gone", "a", APP0, ex_all, err, sizeof(err)), LUTF_STATUS_OK, "%s",
		     err);
	cr_assert(td_tenant_counter(cfd, "gone", "worker_pid", &pid) && pid > 0);
	cr_assert(td_tenant_counter(cfd, "gone", "uid", &uid) && uid > 0);
	cr_assert(path_exists("%s/apps/%s", "gone") && path_exists("%s/scratch/%s", "gone"));
	cr_assert_eq(ctl(LUTF_OP_DELETE, "gone", NULL, 0, err, sizeof(err)), LUTF_STATUS_MALFORMED,
		     "a tenant with functions is removed without --force");
	cr_assert(strstr(err, "--force"), "%s", err);
	cr_assert_eq(ctl(LUTF_OP_DELETE, "gone", NULL, 1, err, sizeof(err)), LUTF_STATUS_OK, "%s",
		     err);
	assert_gone("gone", pid, (unsigned)uid);
	cr_assert_eq(ctl(LUTF_OP_DELETE, "gone", NULL, 1, err, sizeof(err)),
		     LUTF_STATUS_UNKNOWN_FUNCTION);
	/* Its uid is free again: the next tenant gets it. */
	cr_assert_eq(deploy_err("next", "a", APP0, ex_all, err, sizeof(err)), LUTF_STATUS_OK, "%s",
		     err);
	cr_assert(td_tenant_counter(cfd, "next", "uid", &uid2));
	cr_assert_eq(uid2, uid);
	restart();
	cr_assert_not(has_tenant("gone"));
	cr_assert(has_tenant("next"));
}

Test(tenants, tenant_without_functions_runs_no_worker, .description = "issue 12.6")
{
	static const char *const ex[] = {"echo=echo", NULL};
	uint64_t pid = 0, pid2 = 1, uid = 0;
	char err[400];

	cr_assert_eq(deploy_err("solo", "a", APP0, ex, err, sizeof(err)), LUTF_STATUS_OK, "%s",
		     err);
	cr_assert(td_tenant_counter(cfd, "solo", "worker_pid", &pid) && pid > 0);
	cr_assert(td_tenant_counter(cfd, "solo", "uid", &uid));
	cr_assert_eq(ctl(LUTF_OP_DELETE, "solo", "echo", 0, err, sizeof(err)), LUTF_STATUS_OK, "%s",
		     err);
	cr_assert(td_pid_gone((pid_t)pid), "the worker of an empty tenant still runs");
	cr_assert(td_tenant_counter(cfd, "solo", "worker_pid", &pid2));
	cr_assert_eq(pid2, 0);
	restart();
	cr_assert(has_tenant("solo"));
	td_sleep_ms(300); /* a start would be under way by now */
	cr_assert(td_tenant_counter(cfd, "solo", "worker_pid", &pid2));
	cr_assert_eq(pid2, 0, "an empty tenant got a worker at restart");
	cr_assert_eq(uid_procs((unsigned)uid), 0);
	/* Empty: removed without --force. */
	cr_assert_eq(ctl(LUTF_OP_DELETE, "solo", NULL, 0, err, sizeof(err)), LUTF_STATUS_OK, "%s",
		     err);
	assert_gone("solo", 0, (unsigned)uid);
}

Test(tenants, registry_tier_none_needs_allow_tier_none, .description = "issue 12.7")
{
	char path[160], line[512];
	int status = 0;
	bool said = false;
	FILE *fp;

	close(cfd);
	cfd = -1;
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	d.pid = 0;
	snprintf(path, sizeof(path), "%s/registry", d.state);
	fp = fopen(path, "w");
	cr_assert(fp);
	fprintf(fp, "# lutfd registry, format 1\ntenant rooty %u none\n", d.uid_lo);
	fclose(fp);
	d.pid = td_spawn(&d, d.run);
	cr_assert(td_wait_exit(d.pid, &status, 10000), "lutfd ran a tier-none registry");
	d.pid = 0;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	fp = fopen(d.log, "r");
	while (fp && fgets(line, sizeof(line), fp))
		said |= strstr(line, "tier none refused") != NULL;
	if (fp)
		fclose(fp);
	cr_assert(said, "the log does not say why (%s)", d.log);
}

Test(tenants, too_many_exports_names_the_limit, .description = "issue 12.7")
{
	const char *ex[67];
	char names[66][24], err[400];

	for (int i = 0; i < 65; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d=echo", i);
		ex[i] = names[i];
	}
	ex[65] = NULL;
	cr_assert_eq(deploy_err("many", "a", APP0, ex, err, sizeof(err)), LUTF_STATUS_MALFORMED);
	cr_assert(strstr(err, "at most 64"), "the error does not name the limit: %s", err);
}

Test(tenants, tier_change_recycles_before_loading, .description = "issue 12.7")
{
	static const char *const ex[] = {"echo=echo", NULL}, *const ex_net[] = {"net=echo", NULL};
	struct td_deploy_opts o = {.tier = "service"};
	uint64_t pid = 0, pid2 = 0;
	struct td_reply r;
	char err[400] = "";

	cr_assert_eq(deploy_err("shifty", "a", APP0, ex, err, sizeof(err)), LUTF_STATUS_OK, "%s",
		     err);
	cr_assert(td_tenant_counter(cfd, "shifty", "worker_pid", &pid) && pid > 0);
	/* Its init opens an AF_INET socket: basic kills it, service allows it.
	 * Loaded into the old worker first, it would die. */
	cr_assert_eq(td_deploy_with(cfd, "shifty", "net", NET_APP, ex_net, &o, &r), LUTF_STATUS_OK,
		     "a tier change loaded into the old tier's worker");
	free(r.payload);
	cr_assert(td_tenant_counter(cfd, "shifty", "worker_pid", &pid2) && pid2 > 0);
	cr_assert_neq(pid2, pid, "the worker was not recycled");
	cr_assert(td_pid_gone((pid_t)pid));
	cr_assert_eq(invoke_ok("shifty", "net"), LUTF_STATUS_OK);
	cr_assert_eq(invoke_ok("shifty", "echo"), LUTF_STATUS_OK, "older apps reload too");
}

/* Run lutfctl with args; its exit code, stderr into err. */
static int lutfctl(const char *const *args, char *err, size_t cap)
{
	char ctl[160], errf[160];
	const char *argv[16];
	int n = 0, status = 0;
	pid_t pid;
	FILE *fp;

	snprintf(ctl, sizeof(ctl), "%s/control.sock", d.run);
	snprintf(errf, sizeof(errf), "%s/lutfctl.err", d.dir);
	argv[n++] = "lutfctl";
	argv[n++] = "--control";
	argv[n++] = ctl;
	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 2);
		fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execv(LUTFCTL_BIN, (char *const *)argv);
		_exit(127);
	}
	cr_assert(td_wait_exit(pid, &status, 20000));
	err[0] = 0;
	fp = fopen(errf, "r");
	if (fp) {
		size_t k = fread(err, 1, cap - 1, fp);

		err[k] = 0;
		fclose(fp);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(tenants, lutfctl_names_the_size_limit_before_sending, .description = "issue 12.7")
{
	char big[160], err[600];
	const char *args[] = {"deploy", "--tenant", "huge",	"--app",     "a",
			      "--so",	big,	    "--export", "echo=echo", NULL};
	int fd;

	snprintf(big, sizeof(big), "%s/huge.so", d.dir);
	fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 200ll << 20), 0); /* sparse: 200 MB */
	close(fd);
	cr_assert_eq(lutfctl(args, err, sizeof(err)), 1, "%s", err);
	cr_assert(strstr(err, "200.0 MiB") && strstr(err, "at most 6 MiB"), "%s", err);
	cr_assert_not(has_tenant("huge"), "the deploy was sent");
}

Test(tenants, lutfctl_delete_tenant, .description = "issue 12.6")
{
	const char *plain[] = {"delete", "cli", NULL},
		   *force[] = {"delete", "--force", "cli", NULL};
	char err[600];

	cr_assert_eq(deploy_err("cli", "a", APP0, ex_all, err, sizeof(err)), LUTF_STATUS_OK, "%s",
		     err);
	cr_assert_eq(lutfctl(plain, err, sizeof(err)), 10 + LUTF_STATUS_MALFORMED, "%s", err);
	cr_assert(strstr(err, "--force"), "%s", err);
	cr_assert_eq(lutfctl(force, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(has_tenant("cli"));
}
