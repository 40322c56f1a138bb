/* SPDX-License-Identifier: MIT */
/*
 * workers = N through the real lutfd (userspace/daemon/workers.c): a tenant
 * of two workers serves from both; one killed mid-load fails only its own
 * calls (typed) and comes back; pause, resume and delete reach every worker;
 * redeploys (N raised and lowered) under load fail no call; a restart keeps
 * N. Built twice: with WORKERS_HOSTILE, the case where one worker of two
 * scribbles its region and the other is untouched (labels daemon;hostile).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>

#include "gw_util.h"
#include "prom_parse.h"
#include "require.h"

#define APP TEST_APP_DIR "/libdaemon_app.so"

static struct td d;
static int cfd = -1;

static void setup(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "the control socket and workers need root");
	cr_assert(td_start(&d, "admin_listen = 127.0.0.1:0\n"), "lutfd did not start (log in %s)",
		  d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(workers, .init = setup, .fini = teardown, .timeout = 60);

static const char *const ex[] = {"whoami=whoami", "echo=echo", "scribble=scribble", NULL};

static uint32_t deploy_n(const char *tier, uint32_t workers, char *err, size_t cap)
{
	struct td_deploy_opts o = {.tier = tier, .workers = workers};
	struct td_reply r;
	uint32_t st = td_deploy_with(cfd, "acme", "app", APP, ex, &o, &r);

	if (err && cap) {
		err[0] = 0;
		if (r.payload)
			td_field_str(&r, LUTF_TAG_ERROR, err, cap);
	}
	free(r.payload);
	return st;
}

static uint32_t call(int fd, const char *fn, const char *in, char *out, size_t cap, int ms)
{
	struct lutf_buf b;
	struct td_reply r;
	uint32_t st;

	lutf_buf_init(&b);
	td_invoke_frame(&b, 1, "acme", fn, in, in ? strlen(in) : 0);
	st = td_call(fd, &b, &r, ms);
	lutf_buf_free(&b);
	if (out && cap) {
		out[0] = 0;
		if (st != 0xffffffffu)
			td_field_str(&r, st == LUTF_STATUS_OK ? LUTF_TAG_OUTPUT : LUTF_TAG_ERROR,
				     out, cap);
	}
	free(r.payload);
	return st;
}

static uint64_t counter(const char *name)
{
	uint64_t v = 0;

	td_tenant_counter(cfd, "acme", name, &v);
	return v;
}

/* Wait (bounded) until the tenant has n workers up. */
static bool wait_up(uint64_t n, int ms)
{
	uint64_t v = 0;

	return td_wait_tenant_counter(cfd, "acme", "workers_up", n, ms, &v) &&
	       counter("workers") == n;
}

#ifndef WORKERS_HOSTILE

/* Load: threads, each on its own connection, calling whoami (sleep ms). */
struct load {
	const char *sleep_ms;
	atomic_int stop;
	atomic_int ok, failed, crashed, other;
	atomic_uint first_bad;
	pid_t pids[8];
	atomic_int npids;
	pthread_mutex_t mu;
};

static void note_pid(struct load *l, pid_t p)
{
	pthread_mutex_lock(&l->mu);
	for (int i = 0; i < l->npids; i++)
		if (l->pids[i] == p)
			goto out;
	if (l->npids < 8)
		l->pids[l->npids++] = p;
out:
	pthread_mutex_unlock(&l->mu);
}

static void *load_thread(void *arg)
{
	struct load *l = arg;
	int fd = td_connect(&d, "lutf.sock");
	char out[256];

	while (fd >= 0 && !atomic_load(&l->stop)) {
		uint32_t st = call(fd, "whoami", l->sleep_ms, out, sizeof(out), 10000);

		if (st == LUTF_STATUS_OK) {
			atomic_fetch_add(&l->ok, 1);
			note_pid(l, (pid_t)atoi(out));
			continue;
		}
		atomic_fetch_add(&l->failed, 1);
		if (st == LUTF_STATUS_CRASHED)
			atomic_fetch_add(&l->crashed, 1);
		else
			atomic_fetch_add(&l->other, 1);
		if (!atomic_load(&l->first_bad))
			atomic_store(&l->first_bad, st);
		if (st == 0xffffffffu) { /* no answer: a fresh connection */
			close(fd);
			fd = td_connect(&d, "lutf.sock");
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

#define NTHREADS 4

static void load_start(struct load *l, pthread_t *th, const char *sleep_ms)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	l->sleep_ms = sleep_ms;
	for (int i = 0; i < NTHREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, load_thread, l), 0);
}

static void load_stop(struct load *l, pthread_t *th)
{
	atomic_store(&l->stop, 1);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
}

Test(workers, bad_counts_refused)
{
	char err[256];

	cr_assert_eq(deploy_n("basic", 0xffff, err, sizeof(err)), LUTF_STATUS_MALFORMED);
	cr_assert(strstr(err, "workers must be 1..16"), "error: %s", err);
	cr_assert_eq(deploy_n("basic", 17, err, sizeof(err)), LUTF_STATUS_MALFORMED);
	cr_assert(strstr(err, "workers must be 1..16"), "error: %s", err);
	cr_assert(!td_tenant_counter(cfd, "acme", "workers", &(uint64_t){0}),
		  "a refused first deploy left a tenant");
}

/* Run lutfctl (args: a shell word list) with stderr on stdout; its output
 * into out, its exit code. */
static int lutfctl(const char *args, char *out, size_t cap)
{
	char cmd[1024];
	size_t n = 0;
	FILE *fp;
	int st;

	snprintf(cmd, sizeof(cmd), "%s --control %s/control.sock %s 2>&1", LUTFCTL_BIN, d.run,
		 args);
	fp = popen(cmd, "r");
	cr_assert(fp);
	while (n + 1 < cap && fgets(out + n, (int)(cap - n), fp))
		n += strlen(out + n);
	out[n] = 0;
	st = pclose(fp);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(workers, lutfctl_deploy_workers_list_status)
{
	char out[8192], args[512];

	cr_assert_eq(lutfctl("deploy --tenant acme --app app --so " APP
			     " --export whoami --workers 0",
			     out, sizeof(out)),
		     2, "%s", out);
	cr_assert(strstr(out, "--workers must be 1..16"), "%s", out);
	snprintf(args, sizeof(args),
		 "deploy --tenant acme --app app --so %s --export whoami --tier basic --workers 2",
		 APP);
	cr_assert_eq(lutfctl(args, out, sizeof(out)), 0, "%s", out);
	cr_assert(wait_up(2, 10000));
	cr_assert_eq(lutfctl("list", out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "WORKERS"), "no WORKERS column: %s", out);
	cr_assert_eq(lutfctl("status", out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "workers_up") && strstr(out, "worker1_pid"), "%s", out);
}

/* GET /metrics on the admin listener (with the admin token): its body. */
static char *metrics(void)
{
	struct gw_in in = {0};
	struct gw_resp r;
	char admin[64], req[512], tok[160] = "";
	int fd;
	FILE *fp;

	cr_assert(td_addr(&d, "admin.addr", admin, sizeof(admin)), "no admin.addr");
	snprintf(req, sizeof(req), "%s/admin.token", d.state);
	fp = fopen(req, "r");
	cr_assert(fp && fgets(tok, sizeof(tok), fp), "no admin token");
	fclose(fp);
	snprintf(req, sizeof(req),
		 "GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %.*s\r\n\r\n",
		 (int)strcspn(tok, "\n"), tok);
	fd = td_connect_tcp(admin);
	cr_assert(fd >= 0 && gw_sends(fd, req) && gw_read(fd, &in, &r, 5000));
	close(fd);
	cr_assert_eq(r.code, 200);
	return r.body;
}

Test(workers, metrics_label_each_worker)
{
	char *m, err[256], out[64];
	int n, fd;

	cr_assert_eq(deploy_n("basic", 2, NULL, 0), LUTF_STATUS_OK);
	cr_assert(wait_up(2, 10000));
	fd = td_connect(&d, "lutf.sock");
	for (int i = 0; i < 10; i++)
		cr_assert_eq(call(fd, "echo", "m", out, sizeof(out), 5000), LUTF_STATUS_OK);
	close(fd);
	m = metrics();
	/* Valid text: in particular no two samples with one label set. */
	cr_assert_eq(prom_parse(m, err, sizeof(err), &n), 0, "%s", err);
	cr_assert(strstr(m, "lutf_tenant_workers{tenant=\"acme\"} 2"), "%s", m);
	cr_assert(strstr(m, "lutf_worker_calls_total{tenant=\"acme\",worker=\"0\"}"), "%s", m);
	cr_assert(strstr(m, "lutf_worker_calls_total{tenant=\"acme\",worker=\"1\"}"), "%s", m);
	cr_assert(strstr(m, "lutf_tenant_up{tenant=\"acme\",worker=\"1\"} 1"), "%s", m);
	/* Function families are summed over the workers. */
	cr_assert(strstr(m, "lutf_invocations_total{tenant=\"acme\",function=\"echo\","
			    "status=\"ok\"} 10"),
		  "%s", m);
	cr_assert(strstr(m, "lutf_tenants 1\n"), "%s", m);
	free(m);
}

Test(workers, both_serve)
{
	struct load l;
	pthread_t th[NTHREADS];
	uint64_t p0, p1, c0, c1;

	cr_assert_eq(deploy_n("basic", 2, NULL, 0), LUTF_STATUS_OK);
	cr_assert(wait_up(2, 10000), "two workers not up (%llu up)",
		  (unsigned long long)counter("workers_up"));
	p0 = counter("worker0_pid");
	p1 = counter("worker1_pid");
	cr_assert(p0 && p1 && p0 != p1, "worker pids %llu %llu", (unsigned long long)p0,
		  (unsigned long long)p1);
	load_start(&l, th, "5");
	td_sleep_ms(600);
	load_stop(&l, th);
	cr_assert_eq(l.failed, 0, "%d calls failed (first status %u)", l.failed, l.first_bad);
	cr_assert_eq(l.npids, 2, "calls ran in %d worker(s)", l.npids);
	for (int i = 0; i < 2; i++)
		cr_assert((uint64_t)l.pids[i] == p0 || (uint64_t)l.pids[i] == p1,
			  "a call ran in pid %d, not a worker of the status", (int)l.pids[i]);
	c0 = counter("worker0_calls");
	c1 = counter("worker1_calls");
	cr_assert_eq(c0 + c1, (uint64_t)l.ok, "per-worker calls %llu + %llu != %d",
		     (unsigned long long)c0, (unsigned long long)c1, l.ok);
	/* Least in flight: neither worker starves. */
	cr_assert_gt(c0, (uint64_t)l.ok / 5);
	cr_assert_gt(c1, (uint64_t)l.ok / 5);
}

Test(workers, one_killed_mid_load_only_its_calls_fail)
{
	struct load l;
	pthread_t th[NTHREADS];
	uint64_t p0, p1, n0, n1 = 0, until;
	char out[64];
	int fd;

	cr_assert_eq(deploy_n("basic", 2, NULL, 0), LUTF_STATUS_OK);
	cr_assert(wait_up(2, 10000));
	p0 = counter("worker0_pid");
	p1 = counter("worker1_pid");
	load_start(&l, th, "20");
	td_sleep_ms(200);
	cr_assert_eq(kill((pid_t)p1, SIGKILL), 0);
	td_sleep_ms(300);
	load_stop(&l, th);
	/* Only calls in the dead worker failed, and typed: CRASHED (signal 9). */
	cr_assert_eq(l.other, 0, "%d calls failed other than CRASHED (first %u)", l.other,
		     l.first_bad);
	cr_assert_leq(l.crashed, NTHREADS, "%d calls CRASHED: more than were in flight", l.crashed);
	cr_assert_gt(l.ok, 20, "the other worker did not keep serving (%d ok)", l.ok);
	cr_assert_eq(counter("worker0_pid"), p0, "worker 0 was touched");
	cr_assert_eq(counter("worker0_restarts"), 0);
	/* The dead one comes back, with a new process. */
	for (until = td_now_ms() + 10000; td_now_ms() < until; td_sleep_ms(20)) {
		n1 = counter("worker1_pid");
		if (n1 && n1 != p1 && counter("workers_up") == 2)
			break;
	}
	cr_assert(n1 && n1 != p1, "worker 1 not back (pid %llu, was %llu)", (unsigned long long)n1,
		  (unsigned long long)p1);
	cr_assert_eq(counter("worker1_restarts"), 1);
	/* And serves again. */
	fd = td_connect(&d, "lutf.sock");
	n0 = 0;
	for (int i = 0; i < 40 && !n0; i++) {
		cr_assert_eq(call(fd, "whoami", NULL, out, sizeof(out), 5000), LUTF_STATUS_OK);
		n0 = (uint64_t)atoi(out) == n1;
	}
	close(fd);
	cr_assert(n0, "the restarted worker took no call");
}

struct held {
	int fd;
	uint32_t st;
};

static void *held_call(void *arg)
{
	struct held *h = arg;

	h->st = call(h->fd, "echo", "held", NULL, 0, 10000);
	return NULL;
}

Test(workers, pause_resume_delete_reach_every_worker)
{
	struct held h[4];
	pthread_t th[4];
	uint64_t p0, p1, held;
	struct td_reply r;

	cr_assert_eq(deploy_n("basic", 2, NULL, 0), LUTF_STATUS_OK);
	cr_assert(wait_up(2, 10000));
	cr_assert_eq(td_control(cfd, LUTF_OP_PAUSE, "acme", "echo"), LUTF_STATUS_OK);
	/* Four calls, held: spread over both workers, all wait. */
	for (int i = 0; i < 4; i++) {
		h[i].fd = td_connect(&d, "lutf.sock");
		h[i].st = 0;
		cr_assert_eq(pthread_create(&th[i], NULL, held_call, &h[i]), 0);
	}
	held = 0;
	for (uint64_t until = td_now_ms() + 5000; td_now_ms() < until && held < 4; td_sleep_ms(20))
		held = counter("worker0_inflight") + counter("worker1_inflight");
	cr_assert_eq(held, 4, "%llu calls held", (unsigned long long)held);
	cr_assert_gt(counter("worker0_inflight"), 0, "worker 0 held none");
	cr_assert_gt(counter("worker1_inflight"), 0, "worker 1 held none");
	td_sleep_ms(100);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(h[i].st, 0, "a call of a paused function was answered");
	cr_assert_eq(td_control(cfd, LUTF_OP_RESUME, "acme", "echo"), LUTF_STATUS_OK);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		close(h[i].fd);
		cr_assert_eq(h[i].st, LUTF_STATUS_OK, "held call %d answered %u", i, h[i].st);
	}
	/* DELETE of a function: no worker runs it any more. */
	cr_assert_eq(td_control(cfd, LUTF_OP_DELETE, "acme", "echo"), LUTF_STATUS_OK);
	h[0].fd = td_connect(&d, "lutf.sock");
	for (int i = 0; i < 4; i++)
		cr_assert_eq(call(h[0].fd, "echo", "x", NULL, 0, 5000),
			     LUTF_STATUS_UNKNOWN_FUNCTION);
	close(h[0].fd);
	/* DELETE of the tenant: every worker goes. */
	p0 = counter("worker0_pid");
	p1 = counter("worker1_pid");
	{
		struct lutf_buf b;
		size_t f;

		lutf_buf_init(&b);
		f = lutf_frame_begin(&b, LUTF_OP_DELETE, 0, 5);
		lutf_tlv_put_str(&b, LUTF_TAG_TENANT, "acme");
		lutf_tlv_put_u32(&b, LUTF_TAG_FORCE, 1);
		lutf_frame_end(&b, f);
		cr_assert_eq(td_call(cfd, &b, &r, 15000), LUTF_STATUS_OK);
		free(r.payload);
		lutf_buf_free(&b);
	}
	for (int i = 0; i < 300 && !(td_pid_gone((pid_t)p0) && td_pid_gone((pid_t)p1)); i++)
		td_sleep_ms(10);
	cr_assert(td_pid_gone((pid_t)p0) && td_pid_gone((pid_t)p1), "a worker outlived its tenant");
	cr_assert(!td_tenant_counter(cfd, "acme", "workers", &p0), "the tenant is still listed");
}

Test(workers, redeploy_under_load_and_restart_keep_n, .timeout = 90)
{
	struct load l;
	pthread_t th[NTHREADS];
	uint64_t wpid[3] = {0};

	cr_assert_eq(deploy_n("basic", 2, NULL, 0), LUTF_STATUS_OK);
	cr_assert(wait_up(2, 10000));
	load_start(&l, th, "2");
	/* The same N, a higher one, a lower one: no call fails. */
	cr_assert_eq(deploy_n("basic", 2, NULL, 0), LUTF_STATUS_OK);
	cr_assert_eq(deploy_n("basic", 3, NULL, 0), LUTF_STATUS_OK);
	cr_assert(wait_up(3, 10000), "three workers not up");
	cr_assert_eq(deploy_n("basic", 2, NULL, 0), LUTF_STATUS_OK);
	cr_assert(wait_up(2, 10000));
	td_sleep_ms(200);
	load_stop(&l, th);
	cr_assert_eq(l.failed, 0, "%d calls failed under redeploy (first status %u)", l.failed,
		     l.first_bad);
	cr_assert_gt(l.ok, 0);
	/* workers_up drops to 2 when the third worker stops; its record goes
	 * a moment later, once its removal is done. */
	for (int i = 0; i < 500 && td_tenant_counter(cfd, "acme", "worker2_pid", &wpid[2]); i++)
		td_sleep_ms(10);
	cr_assert(!td_tenant_counter(cfd, "acme", "worker2_pid", &wpid[2]),
		  "a third worker is still listed 5 s after N was lowered");

	/* lutfd killed and started again: N is in the registry. */
	wpid[0] = counter("worker0_pid");
	wpid[1] = counter("worker1_pid");
	close(cfd);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	for (int i = 0; i < 300 && !(td_pid_gone((pid_t)wpid[0]) && td_pid_gone((pid_t)wpid[1]));
	     i++)
		td_sleep_ms(10);
	cr_assert(td_start_again(&d), "lutfd did not restart");
	cfd = td_connect(&d, "control.sock");
	cr_assert(wait_up(2, 10000), "after a restart: %llu of %llu workers up",
		  (unsigned long long)counter("workers_up"),
		  (unsigned long long)counter("workers"));
}

#else /* WORKERS_HOSTILE */

Test(workers, one_worker_scribbles_the_other_is_untouched)
{
	uint64_t p[2], n[2], until;
	uint32_t st;
	char out[128];
	int fd, bad = -1;

	/* The scribbler finds its region in /proc/self/maps: compat allows that. */
	cr_assert_eq(deploy_n("compat", 2, NULL, 0), LUTF_STATUS_OK);
	cr_assert(wait_up(2, 10000));
	p[0] = counter("worker0_pid");
	p[1] = counter("worker1_pid");
	fd = td_connect(&d, "lutf.sock");
	st = call(fd, "scribble", NULL, out, sizeof(out), 3000);
	cr_log_info("scribble answered %u (%s)", st, out);
	close(fd);
	/* Exactly one worker is recycled; the other keeps its process. */
	for (until = td_now_ms() + 8000; td_now_ms() < until; td_sleep_ms(20)) {
		n[0] = counter("worker0_pid");
		n[1] = counter("worker1_pid");
		bad = n[0] != p[0] ? 0 : n[1] != p[1] ? 1 : -1;
		if (bad >= 0 && n[bad] && counter("workers_up") == 2)
			break;
	}
	cr_assert_geq(bad, 0, "no worker was recycled");
	cr_assert_eq(n[1 - bad], p[1 - bad], "the other worker was touched too");
	cr_assert_eq(counter(bad ? "worker0_restarts" : "worker1_restarts"), 0);
	cr_assert_gt(n[bad], 0, "the scribbler's worker did not come back");
	/* Both serve again; lutfd lives. */
	fd = td_connect(&d, "lutf.sock");
	for (int i = 0; i < 20; i++) {
		st = call(fd, "echo", "again", out, sizeof(out), 5000);
		cr_assert_eq(st, LUTF_STATUS_OK, "call %d answered %u (%s)", i, st, out);
	}
	close(fd);
	cr_assert_eq(kill(d.pid, 0), 0, "lutfd died");
}

#endif
