/* SPDX-License-Identifier: MIT */
/*
 * A confined tenant worker end to end, without lutfd: the zygote spawns it
 * with a sandbox, it confines itself before its first message, loads a real
 * app after the filter and runs Bricks on a shared region; a function that
 * steps outside its tier kills the worker with SIGSYS. A tier that cannot be
 * applied makes the worker say why and exit, never run unconfined.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lutf/protocol.h>

#include "engine_util.h"
#include "region.h"
#include "sandbox.h"
#include "wire.h"
#include "worker.h"

struct wt {
	struct lutf_zygote z;
	struct lutf_config cfg;
	void *mem;
	size_t size;
	int memfd, ctl, log;
	pid_t pid;
	struct lutf_runtime *rt;
	char dir[64];
	char names[8][32];
	uint32_t ids[8], nids;
};

static void wt_spawn(struct wt *w, const char *tier)
{
	struct lutf_wk_sandbox sb;
	int ctl[2], lg[2];
	char cmd[256];

	memset(w, 0, sizeof(*w));
	snprintf(w->dir, sizeof(w->dir), "/tmp/lutf-wtier-XXXXXX");
	cr_assert_not_null(mkdtemp(w->dir));
	snprintf(cmd, sizeof(cmd), "cp %s %s/app.so", TIER_APP, w->dir);
	cr_assert_eq(system(cmd), 0);
	w->cfg = test_config(2, 2);
	w->cfg.labors_max = 5;
	w->size = lutf_region_size(&w->cfg);
	w->memfd = memfd_create("lutf-wtier", MFD_CLOEXEC);
	cr_assert_geq(w->memfd, 0);
	cr_assert_eq(ftruncate(w->memfd, (off_t)w->size), 0);
	w->mem = mmap(NULL, w->size, PROT_READ | PROT_WRITE, MAP_SHARED, w->memfd, 0);
	cr_assert(w->mem != MAP_FAILED);
	cr_assert_eq(lutf_region_format(w->mem, w->size, &w->cfg, LUTF_REGION_SHARED), 0);
	cr_assert_eq(lutf_zygote_start(&w->z, -1), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, lg), 0);
	memset(&sb, 0, sizeof(sb));
	snprintf(sb.tier, sizeof(sb.tier), "%s", tier);
	/* policy_dir "" = the build's LUTF_POLICY_DIR */
	snprintf(sb.app_dir, sizeof(sb.app_dir), "%s", w->dir);
	sb.rlimit_nofile = 256;
	cr_assert_eq(
	    lutf_zygote_spawn(&w->z, "wtier", w->memfd, w->size, ctl[1], lg[1], -1, &sb, 5000,
			      &w->pid),
	    0);
	close(ctl[1]);
	close(lg[1]);
	w->ctl = ctl[0];
	w->log = lg[0];
}

/* One ctl request and its reply: rc, text in msg. -EPIPE if the worker went. */
static int wt_call(struct wt *w, const void *req, size_t len, char *msg, size_t cap)
{
	struct pollfd p = {w->ctl, POLLIN, 0};
	char buf[600];
	int32_t rc;
	ssize_t n;

	if (send(w->ctl, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -EPIPE;
	cr_assert_eq(poll(&p, 1, 5000), 1, "the worker does not answer");
	n = recv(w->ctl, buf, sizeof(buf) - 1, 0);
	if (n < (ssize_t)sizeof(rc))
		return -EPIPE;
	buf[n] = 0;
	memcpy(&rc, buf, sizeof(rc));
	snprintf(msg, cap, "%.400s", buf + sizeof(rc));
	return rc;
}

static void wt_load_start(struct wt *w)
{
	static const char *ex[] = {"echo=tier_echo", "socket=tier_socket", "thread=tier_thread"};
	uint8_t op = LUTF_WK_LOAD;
	char path[128], msg[512];
	struct lutf_buf b;

	snprintf(path, sizeof(path), "%s/app.so", w->dir);
	lutf_buf_init(&b);
	lutf_buf_put(&b, &op, 1);
	lutf_tlv_put_str(&b, LUTF_TAG_APP, "a");
	lutf_tlv_put_str(&b, LUTF_TAG_SO, path);
	for (size_t i = 0; i < 3; i++)
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, ex[i]);
	cr_assert_eq(wt_call(w, b.data, b.len, msg, sizeof(msg)), 0, "LOAD: %s", msg);
	lutf_buf_free(&b);
	op = LUTF_WK_START;
	cr_assert_eq(wt_call(w, &op, 1, msg, sizeof(msg)), 0, "START: %s", msg);
	if (!w->rt)
		cr_assert_eq(lutf_runtime_attach(w->mem, w->size, &w->rt), 0);
	cr_assert_eq(lutf_runtime_set_worker(w->rt, w->pid), 0);
}

static uint32_t wt_id(struct wt *w, const char *name)
{
	for (uint32_t i = 0; i < w->nids; i++)
		if (!strcmp(w->names[i], name))
			return w->ids[i];
	cr_assert_lt(w->nids, 8);
	cr_assert_eq(lutf_runtime_add_remote(w->rt, name, NULL, &w->ids[w->nids]), 0);
	snprintf(w->names[w->nids], sizeof(w->names[0]), "%s", name);
	return w->ids[w->nids++];
}

static struct lutf_result wt_invoke(struct wt *w, const char *name, const char *in)
{
	struct lutf_result res;
	uint32_t id = wt_id(w, name);

	cr_assert_eq(lutf_runtime_invoke(w->rt, id,
					 &(struct lutf_request){.input = in,
								.input_len = strlen(in),
								.timeout_ns = 3000000000ull},
					 &res),
		     0);
	return res;
}

/* The zygote's exit notice for our worker, within timeout_ms. */
static int wt_exit_status(struct wt *w, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		pid_t pid;
		int status, r = lutf_zygote_next_exit(&w->z, &pid, &status);

		cr_assert_geq(r, 0);
		if (r == 1 && pid == w->pid)
			return status;
		test_sleep_ms(10);
	}
	cr_assert_fail("no exit notice for worker %d", (int)w->pid);
	return -1;
}

static void wt_end(struct wt *w)
{
	char cmd[128];

	if (w->rt)
		lutf_runtime_destroy(w->rt);
	close(w->ctl);
	close(w->log);
	close(w->z.fd); /* the zygote ends, its workers follow (PDEATHSIG) */
	waitpid(w->z.pid, NULL, 0);
	munmap(w->mem, w->size);
	close(w->memfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
	(void)!system(cmd);
}

Test(worker_tier, pure_worker_serves_with_a_fixed_pool, .timeout = 60)
{
	struct lutf_region_hdr *h;
	struct lutf_result res;
	struct wt w;
	char msg[512];
	uint8_t op = LUTF_WK_STATUS;
	int status;

	wt_spawn(&w, "pure");
	cr_assert_eq(wt_call(&w, &op, 1, msg, sizeof(msg)), 0);
	cr_assert(strstr(msg, "tier=pure") && strstr(msg, "labors=fixed"), "status: %s", msg);
	wt_load_start(&w);
	for (int i = 0; i < 200; i++) {
		res = wt_invoke(&w, "a/echo", "hello");
		cr_assert_eq(res.status, LUTF_STATUS_OK, "echo %d: status %u", i, res.status);
		cr_assert_eq(res.output_len, 5);
		cr_assert_arr_eq(res.output, "hello", 5);
		lutf_result_release(&res);
	}
	/* Every Labor started before the filter: clone is gone in pure. */
	h = w.mem;
	cr_assert_eq(__atomic_load_n(&h->labors_up, __ATOMIC_ACQUIRE), w.cfg.labors_max);
	/* A thread is just outside pure: the whole worker dies of SIGSYS. */
	cr_assert_eq(lutf_runtime_submit(w.rt, wt_id(&w, "a/thread"), &(struct lutf_request){0}, 1),
		     0);
	status = wt_exit_status(&w, 5000);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS, "worker status %#x", status);
	cr_assert_eq(lutf_runtime_worker_lost(w.rt, SIGSYS), 1, "the started Brick fails");
	wt_end(&w);
}

Test(worker_tier, basic_worker_runs_threads_but_not_sockets, .timeout = 60)
{
	struct lutf_result res;
	struct wt w;
	int status;

	wt_spawn(&w, "basic");
	wt_load_start(&w);
	res = wt_invoke(&w, "a/thread", "");
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	cr_assert_arr_eq(res.output, "thread", 6);
	lutf_result_release(&res);
	res = wt_invoke(&w, "a/echo", "x");
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	lutf_result_release(&res);
	cr_assert_eq(lutf_runtime_submit(w.rt, wt_id(&w, "a/socket"), &(struct lutf_request){0}, 1),
		     0);
	status = wt_exit_status(&w, 5000);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS, "worker status %#x", status);
	cr_assert_eq(lutf_runtime_worker_lost(w.rt, SIGSYS), 1, "the started Brick fails");
	wt_end(&w);
}

Test(worker_tier, a_tier_that_cannot_apply_stops_the_worker, .timeout = 60)
{
	char buf[600], line[LUTF_WK_LOG_MAX + 1];
	struct pollfd p;
	struct wt w;
	int32_t rc;
	ssize_t n;
	int status;

	wt_spawn(&w, "nosuch");
	/* Unasked: one ctl record with the reason, and a log line. */
	p = (struct pollfd){w.ctl, POLLIN, 0};
	cr_assert_eq(poll(&p, 1, 5000), 1);
	n = recv(w.ctl, buf, sizeof(buf) - 1, 0);
	cr_assert_gt(n, (ssize_t)sizeof(rc));
	buf[n] = 0;
	memcpy(&rc, buf, sizeof(rc));
	cr_assert_eq(rc, -ENOENT);
	cr_assert(strstr(buf + sizeof(rc), "sandbox: ") && strstr(buf + sizeof(rc), "nosuch"), "%s",
		  buf + sizeof(rc));
	n = recv(w.log, line, sizeof(line) - 1, MSG_DONTWAIT);
	cr_assert_gt(n, 0);
	line[n] = 0;
	cr_assert_str_eq(line, "lutf-worker");
	status = wt_exit_status(&w, 5000);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == LUTF_WK_EXIT_SANDBOX,
		  "worker status %#x", status);
	wt_end(&w);
}

Test(worker_tier, unconfined_worker_still_starts_on_start, .timeout = 60)
{
	struct lutf_result res;
	struct wt w;
	char msg[512];
	uint8_t op = LUTF_WK_STATUS;

	wt_spawn(&w, "");
	cr_assert_eq(wt_call(&w, &op, 1, msg, sizeof(msg)), 0);
	cr_assert(strstr(msg, "unconfined"), "%s", msg);
	wt_load_start(&w);
	res = wt_invoke(&w, "a/socket", "");
	cr_assert_eq(res.status, LUTF_STATUS_OK, "no filter: a socket is fine");
	lutf_result_release(&res);
	wt_end(&w);
}

/* Labors start before the filter but take no Brick before START: a Brick
 * queued early waits for the apps, then runs. */
Test(worker_tier, labors_wait_for_start, .timeout = 60)
{
	struct lutf_completion out[1];
	struct wt w;

	wt_spawn(&w, "pure");
	cr_assert_eq(lutf_runtime_attach(w.mem, w.size, &w.rt), 0);
	cr_assert_eq(lutf_runtime_set_worker(w.rt, w.pid), 0);
	cr_assert_eq(lutf_runtime_submit(w.rt, wt_id(&w, "a/echo"),
					 &(struct lutf_request){.input = "early", .input_len = 5},
					 7),
		     0);
	cr_assert_eq(reap_all(w.rt, out, 1, 300), 0, "a Brick ran before START");
	wt_load_start(&w);
	cr_assert_eq(reap_all(w.rt, out, 1, 5000), 1);
	cr_assert_eq(out[0].user_data, 7);
	cr_assert_eq(out[0].result.status, LUTF_STATUS_OK, "status %u", out[0].result.status);
	cr_assert_arr_eq(out[0].result.output, "early", 5);
	lutf_result_release(&out[0].result);
	wt_end(&w);
}

Test(worker_tier, every_tier_worker_serves, .timeout = 60)
{
	static const char *tiers[] = {"pure", "basic", "service", "compat"};

	for (size_t i = 0; i < 4; i++) {
		struct lutf_result res;
		struct wt w;
		char msg[512];
		uint8_t op = LUTF_WK_STATUS;

		wt_spawn(&w, tiers[i]);
		cr_assert_eq(wt_call(&w, &op, 1, msg, sizeof(msg)), 0, "%s: %s", tiers[i], msg);
		cr_log_info("%s", msg);
		wt_load_start(&w);
		res = wt_invoke(&w, "a/echo", tiers[i]);
		cr_assert_eq(res.status, LUTF_STATUS_OK, "%s: status %u", tiers[i], res.status);
		cr_assert_arr_eq(res.output, tiers[i], strlen(tiers[i]));
		lutf_result_release(&res);
		wt_end(&w);
	}
}
