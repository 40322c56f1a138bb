/* SPDX-License-Identifier: MIT */
/*
 * Hostile tenants against the real lutfd (label hostile): a function writes
 * into its own worker's mapping of the shared region (tests/hostile/apps,
 * one mode per test, tiers basic and compat) while a bystander tenant calls a
 * no-op the whole time. Each test asserts that lutfd lives, the bystander got
 * every answer OK, every call of the hostile tenant got a typed answer before
 * its deadline (plus a margin), no thread outside the tenant (lutfd's, pid 1,
 * a root process started here) changed its CPU affinity, and the worker was
 * recycled (unless the mode is marked may_live: it writes only words lutfd
 * never acts on, so no check fails) and the tenant serves again with nothing
 * left in flight. A mode with a recycle bound (lost: valid-looking wrong
 * values, no check refuses a word) must also be recycled within it, counted
 * from the attack, under the check it names in lutfd's log.
 *
 * MODES below is the one list of modes, and every mode must pass: none is
 * skipped, so CI always runs them all.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "daemon_util.h"
#include "require.h"

#define APP TEST_APP_DIR "/libhostile_app.so"
#define DEADLINE_MS 3000u /* the hostile function's timeout (DEPLOY TIMEOUT_MS) */
#define MARGIN_MS 3000u	  /* a typed answer must come by the deadline plus this */
#define RECYCLE_MS 15000u /* the worker must be replaced within this */
/* A lost call is found by lutfd's audit once a second, 2 s past the call's
 * deadline (front_reap.c): the worker is gone by deadline + this. */
#define LOST_BOUND_MS 5000u

struct mode {
	const char *name;
	const char *input;   /* "" = built by the test (tids) */
	int parallel;	     /* extra calls of the tenant sent alongside the attack */
	const char *extra;   /* their input */
	bool may_live;	     /* the worker may survive unrecycled (nothing invalid read) */
	uint32_t timeout_ms; /* the hostile function's timeout; 0: DEADLINE_MS */
	const char *check;   /* recycled under this check by timeout + LOST_BOUND_MS */
};

static const struct mode MODES[] = {
    {"random", "random", 0, NULL, false, 0, NULL},
    {"header", "header", 0, NULL, false, 0, NULL},
    {"config", "config", 0, NULL, false, 0, NULL},
    {"rings", "rings", 0, NULL, false, 0, NULL},
    {"bricks", "bricks", 0, NULL, false, 0, NULL},
    {"tids", "", 6, "sleep:200", false, 0, NULL},
    {"cqflood", "cqflood:10000", 0, NULL, false, 0, NULL},
    /* Whether lutfd reads a flipped word in its bad phase is up to timing:
     * the worker may live. */
    {"flip", "flip:3000", 8, "echo:flip", true, 0, NULL},
    /* Running and queued Bricks marked FREE: valid values, no check refuses
     * them; the calls are lost, and lutfd recycles the worker for it. */
    {"lost", "lose:600", 6, "sleep:700", false, 1000, "lost call"},
};

static const struct mode *mode_named(const char *name)
{
	for (size_t i = 0; i < sizeof(MODES) / sizeof(MODES[0]); i++)
		if (!strcmp(MODES[i].name, name))
			return &MODES[i];
	return NULL;
}

static struct td d;
static int cfd = -1;

static void setup(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket needs root");
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 120);

/* One INVOKE on fd; the status (0xffffffff: no reply within timeout_ms). */
static uint32_t invoke(int fd, const char *tenant, const char *fn, const char *in, char *out,
		       size_t cap, int timeout_ms)
{
	struct lutf_buf b;
	struct td_reply r;
	uint32_t st;

	if (out && cap)
		out[0] = 0;
	lutf_buf_init(&b);
	td_invoke_frame(&b, 1, tenant, fn, in, in ? strlen(in) : 0);
	st = td_call(fd, &b, &r, timeout_ms);
	lutf_buf_free(&b);
	if (st != 0xffffffffu && out)
		td_field_str(&r, st == LUTF_STATUS_OK ? LUTF_TAG_OUTPUT : LUTF_TAG_ERROR, out, cap);
	free(r.payload);
	return st;
}

/* ---- the bystander: a no-op, over and over, on one connection ---- */

struct bystander {
	pthread_t th;
	atomic_int stop;
	int ok, failed;
	uint32_t first_bad;
	char first_err[128];
};

static void *bystander_main(void *p)
{
	struct bystander *b = p;
	int fd = td_connect(&d, "lutf.sock");
	char out[128];

	while (fd >= 0 && !atomic_load(&b->stop)) {
		uint32_t st = invoke(fd, "by", "noop", "noop", out, sizeof(out), 5000);

		if (st == LUTF_STATUS_OK && !strcmp(out, "ok")) {
			b->ok++;
			td_sleep_ms(2);
			continue;
		}
		if (!b->failed++) {
			b->first_bad = st;
			snprintf(b->first_err, sizeof(b->first_err), "%s", out);
		}
		if (st == 0xffffffffu)
			break; /* no reply: the stream is lost */
	}
	if (fd < 0)
		b->failed++;
	else
		close(fd);
	return NULL;
}

/* ---- affinity snapshots ---- */

#define SNAP_MAX 256

struct snap {
	int n;
	pid_t tid[SNAP_MAX];
	cpu_set_t set[SNAP_MAX];
};

static void snap_add(struct snap *s, pid_t tid)
{
	if (s->n < SNAP_MAX && sched_getaffinity(tid, sizeof(cpu_set_t), &s->set[s->n]) == 0)
		s->tid[s->n++] = tid;
}

/* Every thread of lutfd, pid 1, and the extra process. */
static void snap_take(struct snap *s, pid_t lutfd, pid_t extra)
{
	char path[64];
	DIR *dir;
	struct dirent *e;

	s->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)lutfd);
	dir = opendir(path);
	while (dir && (e = readdir(dir)))
		if (e->d_name[0] != '.')
			snap_add(s, (pid_t)atoi(e->d_name));
	if (dir)
		closedir(dir);
	snap_add(s, 1);
	snap_add(s, extra);
}

/* The first thread present in both whose affinity differs, or 0. */
static pid_t snap_changed(const struct snap *a, const struct snap *b)
{
	for (int i = 0; i < a->n; i++)
		for (int j = 0; j < b->n; j++)
			if (a->tid[i] == b->tid[j] && !CPU_EQUAL(&a->set[i], &b->set[j]))
				return a->tid[i];
	return 0;
}

/* A thread of lutfd by its name (comm), or 0. */
static pid_t lutfd_thread(pid_t lutfd, const char *comm)
{
	char path[320], name[32];
	DIR *dir;
	struct dirent *e;
	pid_t found = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)lutfd);
	dir = opendir(path);
	while (dir && !found && (e = readdir(dir))) {
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)lutfd, e->d_name);
		fp = fopen(path, "r");
		if (fp && fgets(name, sizeof(name), fp) && !strncmp(name, comm, strlen(comm)))
			found = (pid_t)atoi(e->d_name);
		if (fp)
			fclose(fp);
	}
	if (dir)
		closedir(dir);
	return found;
}

/* A root process outside lutf. */
static pid_t spawn_victim(void)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execlp("sleep", "sleep", "120", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* ---- calls of the hostile tenant, each on its own connection ---- */

struct hcall {
	pthread_t th;
	const char *input;
	uint32_t status;
	uint64_t ms;
	char out[160];
};

static void *hcall_main(void *p)
{
	struct hcall *c = p;
	int fd = td_connect(&d, "lutf.sock");
	uint64_t t0 = td_now_ms();

	c->status = 0xffffffffu;
	if (fd >= 0) {
		c->status = invoke(fd, "evil", "hostile", c->input, c->out, sizeof(c->out),
				   DEADLINE_MS + MARGIN_MS);
		close(fd);
	}
	c->ms = td_now_ms() - t0;
	return NULL;
}

/* lutfd's log lines that name the tenant, a fault or a signal, for the report. */
static void log_tail(const char *why)
{
	FILE *fp = fopen(d.log, "r");
	char line[512];
	int n = 0;

	cr_log_info("lutfd log (%s), lines about the hostile tenant:", why);
	while (fp && fgets(line, sizeof(line), fp) && n < 40) {
		if (strstr(line, "evil") || strstr(line, "fault") || strstr(line, "signal") ||
		    strstr(line, "SEGV") || strstr(line, "runtime error") ||
		    strstr(line, "AddressSanitizer")) {
			line[strcspn(line, "\n")] = 0;
			cr_log_info("  %s", line);
			n++;
		}
	}
	if (fp)
		fclose(fp);
}

/* lutfd's log holds what (a sanitizer's report, in the ASan build). */
static bool log_has(const char *what)
{
	FILE *fp = fopen(d.log, "r");
	char line[1024];
	bool found = false;

	while (fp && !found && fgets(line, sizeof(line), fp))
		found = strstr(line, what) != NULL;
	if (fp)
		fclose(fp);
	return found;
}

/* A failed check is logged and collected; the run goes on, so that one
 * report says everything a mode broke. run_mode asserts at its end. */
static char fails[2048];

#define H_CHECK(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			char m_[256];                                                              \
			size_t l_ = strlen(fails);                                                 \
                                                                                                   \
			snprintf(m_, sizeof(m_), __VA_ARGS__);                                     \
			cr_log_error("%s", m_);                                                    \
			snprintf(fails + l_, sizeof(fails) - l_, "%s%s", l_ ? "; " : "", m_);      \
		}                                                                                  \
	} while (0)

static void deploy(const char *tenant, const char *export, const char *tier, uint32_t timeout_ms)
{
	const char *const ex[] = {export, NULL};
	struct td_deploy_opts o = {.tier = tier, .timeout_ms = timeout_ms};
	struct td_reply r;
	uint32_t st = td_deploy_with(cfd, tenant, "h", APP, ex, &o, &r);
	char err[256] = "";

	if (r.payload)
		td_field_str(&r, LUTF_TAG_ERROR, err, sizeof(err));
	free(r.payload);
	cr_assert_eq(st, LUTF_STATUS_OK, "deploy %s (%s): status %u: %s", tenant, tier, st, err);
}

/* An OK echo from the hostile tenant within ms (fresh connections). */
static bool evil_serves(int ms)
{
	uint64_t until = td_now_ms() + (uint64_t)ms;
	char out[64];

	while (td_now_ms() < until) {
		int fd = td_connect(&d, "lutf.sock");
		uint32_t st =
		    fd < 0 ? 0xffffffffu
			   : invoke(fd, "evil", "hostile", "echo:again", out, sizeof(out), 3000);

		if (fd >= 0)
			close(fd);
		if (st == LUTF_STATUS_OK && !strcmp(out, "again"))
			return true;
		td_sleep_ms(50);
	}
	return false;
}

static void run_mode(const char *name, const char *tier)
{
	const struct mode *m = mode_named(name);
	struct hcall calls[1 + 16];
	struct bystander by = {0};
	struct snap before, after;
	uint64_t pid = 0, pid2 = 0, inflight = 1, rebinds = 0, until, t_attack, t_recycled = 0;
	uint32_t dl_ms;
	char input[160];
	pid_t victim, changed;
	bool may_live;
	int n = 0;

	cr_assert(m, "no mode %s", name);
	dl_ms = m->timeout_ms ? m->timeout_ms : DEADLINE_MS;
	fails[0] = 0;
	cr_assert(td_start(&d, "timeout_ms = 10000\n"), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	deploy("by", "noop=hostile", tier, 0);
	deploy("evil", "hostile=hostile", tier, dl_ms);
	cr_assert(evil_serves(5000), "the hostile tenant does not serve before the attack");
	cr_assert(td_tenant_counter(cfd, "evil", "worker_pid", &pid) && pid > 0);

	victim = spawn_victim();
	td_sleep_ms(20);
	snap_take(&before, d.pid, victim);
	pthread_create(&by.th, NULL, bystander_main, &by);
	td_sleep_ms(100);

	if (!strcmp(m->name, "tids"))
		snprintf(input, sizeof(input), "tids:%d,1,%d,%d", (int)victim, (int)d.pid,
			 (int)lutfd_thread(d.pid, "lutf-sup"));
	else
		snprintf(input, sizeof(input), "%s", m->input);
	calls[n++] = (struct hcall){.input = input};
	t_attack = td_now_ms();
	for (int i = 0; i < m->parallel && n < (int)(sizeof(calls) / sizeof(calls[0])); i++)
		calls[n++] = (struct hcall){.input = m->extra};
	pthread_create(&calls[0].th, NULL, hcall_main, &calls[0]);
	td_sleep_ms(50);
	for (int i = 1; i < n; i++)
		pthread_create(&calls[i].th, NULL, hcall_main, &calls[i]);
	for (int i = 0; i < n; i++)
		pthread_join(calls[i].th, NULL);
	for (int i = 0; i < n; i++) {
		cr_log_info("%s/%s: call %d (%s) answered %u in %llu ms: %s", name, tier, i,
			    calls[i].input, calls[i].status, (unsigned long long)calls[i].ms,
			    calls[i].out);
		H_CHECK(calls[i].status < LUTF_STATUS__COUNT,
			"%s/%s: call %d (%s) got no typed answer (%u after %llu ms)", name, tier, i,
			calls[i].input, calls[i].status, (unsigned long long)calls[i].ms);
		H_CHECK(calls[i].ms <= dl_ms + MARGIN_MS, "%s/%s: call %d answered after %llu ms",
			name, tier, i, (unsigned long long)calls[i].ms);
	}
	H_CHECK(kill(d.pid, 0) == 0 && !td_pid_gone(d.pid), "%s/%s: lutfd died", name, tier);
	if (td_tenant_counter(cfd, "evil", "rebinds", &rebinds))
		cr_log_info("%s/%s: %llu Carts moved during the attack", name, tier,
			    (unsigned long long)rebinds);
	snap_take(&after, d.pid, victim);
	changed = snap_changed(&before, &after);
	H_CHECK(changed == 0, "%s/%s: thread %d outside the tenant changed its CPU affinity", name,
		tier, (int)changed);

	/* The worker is replaced (a call makes lutfd look at its faults). Labor
	 * tids are read only by labor_watch: polling lutfd never sees forged ones. */
	may_live = m->may_live || (!strcmp(m->name, "tids") && !log_has("watch mode bpf"));
	for (until = td_now_ms() + (may_live ? 3000 : RECYCLE_MS); td_now_ms() < until;) {
		char out[64];
		int fd = td_connect(&d, "lutf.sock");

		H_CHECK(fd >= 0, "%s/%s: lutfd does not accept connections", name, tier);
		if (fd < 0)
			break;
		invoke(fd, "evil", "hostile", "noop", out, sizeof(out), 2000);
		close(fd);
		if (td_tenant_counter(cfd, "evil", "worker_pid", &pid2) && pid2 && pid2 != pid) {
			t_recycled = td_now_ms();
			break;
		}
		td_sleep_ms(50);
	}
	if (!may_live || pid2 != pid)
		H_CHECK(pid2 && pid2 != pid, "%s/%s: worker %llu was not recycled (now %llu)", name,
			tier, (unsigned long long)pid, (unsigned long long)pid2);
	if (m->check) {
		char what[64];

		H_CHECK(t_recycled && t_recycled - t_attack <= dl_ms + LOST_BOUND_MS,
			"%s/%s: worker recycled %llu ms after the attack (bound %u ms)", name, tier,
			(unsigned long long)(t_recycled ? t_recycled - t_attack : 0),
			dl_ms + LOST_BOUND_MS);
		snprintf(what, sizeof(what), "region fault (%s)", m->check);
		H_CHECK(log_has(what), "%s/%s: lutfd's log does not name '%s'", name, tier, what);
		cr_log_info("%s/%s: recycled %llu ms after the attack", name, tier,
			    (unsigned long long)(t_recycled - t_attack));
	}
	H_CHECK(evil_serves(10000), "%s/%s: the tenant does not serve after the attack", name,
		tier);
	for (until = td_now_ms() + 10000; inflight && td_now_ms() < until; td_sleep_ms(50))
		td_tenant_counter(cfd, "evil", "inflight", &inflight);
	H_CHECK(inflight == 0, "%s/%s: %llu calls stay in flight", name, tier,
		(unsigned long long)inflight);

	atomic_store(&by.stop, 1);
	pthread_join(by.th, NULL);
	snap_take(&after, d.pid, victim);
	changed = snap_changed(&before, &after);
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	H_CHECK(kill(d.pid, 0) == 0 && !td_pid_gone(d.pid), "%s/%s: lutfd died", name, tier);
	H_CHECK(changed == 0, "%s/%s: thread %d outside the tenant changed its CPU affinity", name,
		tier, (int)changed);
	H_CHECK(by.failed == 0, "%s/%s: the bystander failed %d of %d calls (first %u: %s)", name,
		tier, by.failed, by.ok + by.failed, by.first_bad, by.first_err);
	H_CHECK(by.ok > 0, "%s/%s: the bystander got no answer", name, tier);
	/* ASan reports carry the reporting pid: lutfd's own (its workers are the
	 * tenant's; UBSan halts, so lutfd would have died above). */
	snprintf(input, sizeof(input), "==%d==ERROR", (int)d.pid);
	H_CHECK(!log_has(input), "%s/%s: a sanitizer report of lutfd in %s", name, tier, d.log);
	if (fails[0]) {
		log_tail("the failed checks");
		cr_assert_fail("%s", fails);
	}
	log_tail("after the run");
}

#define HOSTILE(mode)                                                                              \
	Test(hostile, mode##_basic)                                                                \
	{                                                                                          \
		run_mode(#mode, "basic");                                                          \
	}                                                                                          \
	Test(hostile, mode##_compat)                                                               \
	{                                                                                          \
		run_mode(#mode, "compat");                                                         \
	}

HOSTILE(random)
HOSTILE(header)
HOSTILE(config)
HOSTILE(rings)
HOSTILE(bricks)
HOSTILE(tids)
HOSTILE(cqflood)
HOSTILE(flip)
HOSTILE(lost)
