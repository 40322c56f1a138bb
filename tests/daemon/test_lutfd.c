/* SPDX-License-Identifier: MIT */
/*
 * lutfd end to end: the real daemon on private folders, raw protocol over its
 * sockets. Deploy, invoke, pause/resume/delete, list, logs, load, a worker
 * killed under load, a redeploy under load, a worker scribbling over its
 * region, lutfd killed and restarted, a second lutfd refused, protocol errors. Root-only (control
 * socket, BPF); skips otherwise.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>

#include "daemon_util.h"
#include "require.h"

#define HELLO EXAMPLES_DIR "/libhello.so"
#define SLEEP EXAMPLES_DIR "/libsleep.so"
#define APP TEST_APP_DIR "/libdaemon_app.so"

static struct td d;
static int cfd = -1;

static void setup(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "the control socket and BPF need root");
	cr_assert(td_start(&d, NULL), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

static void deploy_hello(void)
{
	static const char *const ex[] = {"hello=hello", "noop=noop", NULL};
	struct td_reply r;

	cr_assert_eq(td_deploy(cfd, "acme", "hello", HELLO, ex, &r), LUTF_STATUS_OK);
	free(r.payload);
}

static uint32_t invoke_t(int fd, const char *tenant, const char *fn, const char *in, char *out,
			 size_t cap, int timeout_ms)
{
	struct lutf_buf b;
	struct td_reply r;
	uint32_t st;

	lutf_buf_init(&b);
	td_invoke_frame(&b, 1, tenant, fn, in, in ? strlen(in) : 0);
	st = td_call(fd, &b, &r, timeout_ms);
	lutf_buf_free(&b);
	if (st != 0xffffffffu && out)
		td_field_str(&r, st == LUTF_STATUS_OK ? LUTF_TAG_OUTPUT : LUTF_TAG_ERROR, out, cap);
	free(r.payload);
	return st;
}

static uint32_t invoke(int fd, const char *fn, const char *in, char *out, size_t cap)
{
	return invoke_t(fd, "acme", fn, in, out, cap, 10000);
}

TestSuite(lutfd, .init = setup, .fini = teardown, .timeout = 90);

Test(lutfd, deploy_invoke_list_logs)
{
	static const char *const ex[] = {"logger=logger", NULL};
	struct td_reply r;
	struct lutf_tlv f, rec;
	struct lutf_buf b;
	char out[256];
	int dfd = td_connect(&d, "lutf.sock");
	uint64_t v;

	cr_assert_eq(td_deploy(cfd, "acme", "hello", HELLO,
			       (const char *const[]){"hello=hello", "noop=noop", NULL}, &r),
		     LUTF_STATUS_OK);
	cr_assert(td_field(&r, LUTF_TAG_VERSION, 0, &f) && lutf_tlv_u64(&f, &v) && v == 1);
	cr_assert_eq(td_count(&r, LUTF_TAG_URL), 2);
	cr_assert(td_field(&r, LUTF_TAG_URL, 0, &f));
	cr_assert(memmem(f.val, f.len, "#acme/hello", 11), "url %.*s", (int)f.len, f.val);
	free(r.payload);

	cr_assert_eq(invoke(dfd, "hello", "world", out, sizeof(out)), LUTF_STATUS_OK);
	cr_assert_str_eq(out, "hello, world");
	cr_assert_eq(invoke(dfd, "nope", "x", out, sizeof(out)), LUTF_STATUS_UNKNOWN_FUNCTION);

	/* Redeploy: version 2, same URL, still answers. */
	cr_assert_eq(td_deploy(cfd, "acme", "hello", HELLO,
			       (const char *const[]){"hello=hello", "noop=noop", NULL}, &r),
		     LUTF_STATUS_OK);
	cr_assert(td_field(&r, LUTF_TAG_VERSION, 0, &f) && lutf_tlv_u64(&f, &v) && v == 2);
	free(r.payload);
	cr_assert_eq(invoke(dfd, "hello", "again", out, sizeof(out)), LUTF_STATUS_OK);

	/* A name owned by another app of the tenant is refused; bad names too. */
	cr_assert_eq(
	    td_deploy(cfd, "acme", "other", HELLO, (const char *const[]){"hello=hello", NULL}, &r),
	    LUTF_STATUS_MALFORMED);
	free(r.payload);
	cr_assert_eq(td_deploy(cfd, "Bad!", "x", HELLO, ex, &r), LUTF_STATUS_MALFORMED);
	free(r.payload);
	cr_assert_eq(
	    td_deploy(cfd, "acme", "x", HELLO, (const char *const[]){"f=no_such_symbol", NULL}, &r),
	    LUTF_STATUS_FUNCTION_ERROR);
	free(r.payload);

	/* Logs from the worker. */
	cr_assert_eq(td_deploy(cfd, "acme", "logs", APP, ex, &r), LUTF_STATUS_OK);
	free(r.payload);
	cr_assert_eq(invoke(dfd, "logger", "line-one", out, sizeof(out)), LUTF_STATUS_OK);
	cr_assert_eq(invoke(dfd, "logger", "line-two", out, sizeof(out)), LUTF_STATUS_OK);
	for (int i = 0; i < 100; i++) {
		size_t fo;

		lutf_buf_init(&b);
		fo = lutf_frame_begin(&b, LUTF_OP_LOGS, 0, 5);
		lutf_tlv_put_str(&b, LUTF_TAG_TENANT, "acme");
		lutf_tlv_put_u32(&b, LUTF_TAG_LIMIT, 10);
		lutf_frame_end(&b, fo);
		cr_assert_eq(td_call(cfd, &b, &r, 5000), LUTF_STATUS_OK);
		lutf_buf_free(&b);
		if (td_count(&r, LUTF_TAG_TEXT) >= 2)
			break;
		free(r.payload);
		r.payload = NULL;
		td_sleep_ms(20);
	}
	cr_assert(r.payload, "no log lines");
	cr_assert(td_field(&r, LUTF_TAG_TEXT, 1, &f));
	cr_assert(memmem(f.val, f.len, "got line-two", 12), "log: %.*s", (int)f.len, f.val);
	free(r.payload);

	/* List: three functions, with state, version and tier. */
	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_LIST, 6, "acme", NULL);
	cr_assert_eq(td_call(cfd, &b, &r, 5000), LUTF_STATUS_OK);
	lutf_buf_free(&b);
	cr_assert_eq(td_count(&r, LUTF_TAG_RECORD), 3);
	cr_assert(td_field(&r, LUTF_TAG_RECORD, 0, &rec));
	cr_assert(memmem(rec.val, rec.len, "active", 6));
	cr_assert(memmem(rec.val, rec.len, "basic", 5));
	free(r.payload);

	/* Stats: hello ran twice. */
	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_STATS, 7, "acme", NULL);
	cr_assert_eq(td_call(cfd, &b, &r, 5000), LUTF_STATUS_OK);
	lutf_buf_free(&b);
	cr_assert(td_field(&r, LUTF_TAG_RECORD, 0, &rec));
	cr_assert(td_counter(rec.val, rec.len, "invocations", &v));
	cr_assert_eq(v, 2);
	free(r.payload);
	cr_assert(td_tenant_counter(cfd, "acme", "worker_pid", &v) && v > 0);
	close(dfd);
}

Test(lutfd, pause_holds_then_resume_releases_in_order)
{
	enum { N = 20 };
	struct lutf_buf b;
	struct td_reply r;
	int dfd = td_connect(&d, "lutf.sock");
	uint64_t held = 0, next = 0;

	deploy_hello();
	cr_assert_eq(td_control(cfd, LUTF_OP_PAUSE, "acme", "hello"), LUTF_STATUS_OK);
	lutf_buf_init(&b);
	for (int i = 0; i < N; i++) {
		char in[16];

		snprintf(in, sizeof(in), "%d", i);
		td_invoke_frame(&b, (uint64_t)i, "acme", "hello", in, strlen(in));
	}
	cr_assert(td_send(dfd, &b));
	lutf_buf_free(&b);
	cr_assert_not(td_recv(dfd, &r, 300), "a paused function answered");
	td_wait_tenant_counter(cfd, "acme", "held", N, 1000, &held);
	cr_assert_eq(held, N);
	cr_assert_eq(td_control(cfd, LUTF_OP_RESUME, "acme", "hello"), LUTF_STATUS_OK);
	/* Released in submission order: with one connection and two Carts the
	 * replies may cross, but none is lost and all are OK. */
	for (int i = 0; i < N; i++) {
		cr_assert(td_recv(dfd, &r, 5000), "reply %d missing", i);
		cr_assert_eq(r.h.status, LUTF_STATUS_OK);
		next |= 1ull << r.h.request_id;
		free(r.payload);
	}
	cr_assert_eq(next, (1ull << N) - 1);
	close(dfd);
}

/* A held call whose deadline passes while its function is paused says so
 * (the function, and how long it was held), not just "deadline". */
Test(lutfd, held_call_past_its_deadline_says_the_function_is_paused)
{
	struct lutf_buf b;
	struct td_reply r;
	int dfd = td_connect(&d, "lutf.sock");
	char err[300] = "";
	size_t f;

	deploy_hello();
	cr_assert_eq(td_control(cfd, LUTF_OP_PAUSE, "acme", "hello"), LUTF_STATUS_OK);
	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, LUTF_OP_INVOKE, 0, 7);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, "acme");
	lutf_tlv_put_str(&b, LUTF_TAG_FUNCTION, "hello");
	lutf_tlv_put_u32(&b, LUTF_TAG_TIMEOUT_MS, 300);
	lutf_frame_end(&b, f);
	cr_assert(td_send(dfd, &b));
	lutf_buf_free(&b);
	cr_assert(td_recv(dfd, &r, 5000), "no answer for a held call past its deadline");
	cr_assert_eq(r.h.status, LUTF_STATUS_DEADLINE);
	td_field_str(&r, LUTF_TAG_ERROR, err, sizeof(err));
	free(r.payload);
	cr_assert(strstr(err, "acme/hello was paused") && strstr(err, "held"),
		  "the DEADLINE of a held call does not say its function was paused: '%s'", err);
	close(dfd);
}

Test(lutfd, delete_fails_held_and_later_calls)
{
	struct lutf_buf b;
	struct td_reply r;
	int dfd = td_connect(&d, "lutf.sock");
	char out[128];

	deploy_hello();
	cr_assert_eq(td_control(cfd, LUTF_OP_PAUSE, "acme", "hello"), LUTF_STATUS_OK);
	lutf_buf_init(&b);
	for (int i = 0; i < 5; i++)
		td_invoke_frame(&b, (uint64_t)i, "acme", "hello", "x", 1);
	cr_assert(td_send(dfd, &b));
	lutf_buf_free(&b);
	td_sleep_ms(100);
	cr_assert_eq(td_control(cfd, LUTF_OP_DELETE, "acme", "hello"), LUTF_STATUS_OK);
	for (int i = 0; i < 5; i++) {
		cr_assert(td_recv(dfd, &r, 5000));
		cr_assert_eq(r.h.status, LUTF_STATUS_DELETED);
		free(r.payload);
	}
	cr_assert_eq(invoke(dfd, "hello", "x", out, sizeof(out)), LUTF_STATUS_UNKNOWN_FUNCTION);
	cr_assert_eq(invoke(dfd, "noop", NULL, out, sizeof(out)), LUTF_STATUS_OK);
	close(dfd);
}

struct load_arg {
	int id, n, ok;
};

static void *load_thread(void *p)
{
	struct load_arg *a = p;
	int fd = td_connect(&d, "lutf.sock"), sent = 0, got = 0;
	uint8_t *seen = calloc((size_t)a->n, 1);
	struct td_reply r;

	while (fd >= 0 && got < a->n) {
		struct lutf_buf b;

		lutf_buf_init(&b);
		while (sent < a->n && sent - got < 64) {
			uint32_t v = (uint32_t)sent;

			td_invoke_frame(&b, (uint64_t)sent, "acme", "echo", &v, sizeof(v));
			sent++;
		}
		if (b.len && !td_send(fd, &b))
			break;
		lutf_buf_free(&b);
		if (!td_recv(fd, &r, 10000))
			break;
		if (r.h.status == LUTF_STATUS_OK && r.h.request_id < (uint64_t)a->n &&
		    !seen[r.h.request_id]++) {
			struct lutf_tlv f;
			uint32_t v;

			if (td_field(&r, LUTF_TAG_OUTPUT, 0, &f) && f.len == 4) {
				memcpy(&v, f.val, 4);
				if (v == r.h.request_id)
					a->ok++;
			}
		}
		free(r.payload);
		got++;
	}
	free(seen);
	if (fd >= 0)
		close(fd);
	return NULL;
}

Test(lutfd, many_invocations_from_16_connections, .timeout = 120)
{
	enum { T = 16, N = 100000 / T };
	static const char *const ex[] = {"echo=echo", NULL};
	pthread_t th[T];
	struct load_arg a[T];
	struct td_reply r;
	uint64_t t0 = td_now_ms();
	int total = 0;

	cr_assert_eq(td_deploy(cfd, "acme", "app", APP, ex, &r), LUTF_STATUS_OK);
	free(r.payload);
	for (int i = 0; i < T; i++) {
		a[i] = (struct load_arg){i, N, 0};
		pthread_create(&th[i], NULL, load_thread, &a[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		total += a[i].ok;
	}
	cr_assert_eq(total, T * N, "%d of %d replies matched", total, T * N);
	cr_log_info("%d invocations in %llu ms", total, (unsigned long long)(td_now_ms() - t0));
}

Test(lutfd, worker_killed_mid_load)
{
	enum { N = 40 };
	static const char *const ex[] = {"sleep_ms=sleep_ms", NULL};
	struct lutf_buf b;
	struct td_reply r;
	int dfd = td_connect(&d, "lutf.sock"), ok = 0, crashed = 0;
	uint64_t pid = 0, restarts = 0, pid2 = 0;
	char out[64];

	cr_assert_eq(td_deploy(cfd, "acme", "sleep", SLEEP, ex, &r), LUTF_STATUS_OK);
	free(r.payload);
	cr_assert(td_tenant_counter(cfd, "acme", "worker_pid", &pid) && pid > 0);
	lutf_buf_init(&b);
	for (int i = 0; i < N; i++)
		td_invoke_frame(&b, (uint64_t)i, "acme", "sleep_ms", "200", 3);
	cr_assert(td_send(dfd, &b));
	lutf_buf_free(&b);
	td_sleep_ms(100);
	cr_assert_eq(kill((pid_t)pid, SIGKILL), 0);
	for (int i = 0; i < N; i++) {
		struct lutf_tlv f;
		uint32_t sig = 0;

		cr_assert(td_recv(dfd, &r, 15000), "reply %d of %d missing", i, N);
		if (r.h.status == LUTF_STATUS_OK) {
			ok++;
		} else {
			cr_assert_eq(r.h.status, LUTF_STATUS_CRASHED, "status %u", r.h.status);
			cr_assert(td_field(&r, LUTF_TAG_DETAIL, 0, &f) && lutf_tlv_u32(&f, &sig));
			cr_assert_eq(sig, SIGKILL);
			crashed++;
		}
		free(r.payload);
	}
	cr_assert_gt(crashed, 0, "no started Brick failed CRASHED");
	cr_assert_gt(ok, 0, "queued Bricks did not complete on the new worker");
	cr_assert_eq(kill(d.pid, 0), 0, "lutfd died with its worker");
	cr_assert(td_tenant_counter(cfd, "acme", "restarts", &restarts) && restarts == 1);
	cr_assert(td_tenant_counter(cfd, "acme", "worker_pid", &pid2) && pid2 != pid && pid2);
	cr_assert_eq(invoke(dfd, "sleep_ms", "1", out, sizeof(out)), LUTF_STATUS_OK);
	close(dfd);
}

/* Redeploy under load: one connection keeps 8 calls in flight on hello while
 * the app is redeployed with another greeting. */
struct redeploy_load {
	atomic_int redeployed, stop;
	atomic_int calls, calls_after;
	int failed, stale, bad_output, v1, v2;
	uint32_t first_bad_status;
};

static void *redeploy_thread(void *p)
{
	enum { WINDOW = 8, MAX_CALLS = 20000 };
	struct redeploy_load *a = p;
	int fd = td_connect(&d, "lutf.sock"), sent = 0, got = 0;
	uint64_t until = td_now_ms() + 10000;
	bool *after = calloc(MAX_CALLS, sizeof(*after));
	struct td_reply r;

	if (fd < 0) {
		a->failed = -1;
		free(after);
		return NULL;
	}
	while (got < sent || (sent < MAX_CALLS && !atomic_load(&a->stop) && td_now_ms() < until)) {
		struct lutf_buf b;
		struct lutf_tlv f;

		lutf_buf_init(&b);
		while (sent < MAX_CALLS && sent - got < WINDOW && !atomic_load(&a->stop) &&
		       td_now_ms() < until) {
			/* Read before the send: a call sent after the redeploy's
			 * reply must meet the new version. */
			after[sent] = atomic_load(&a->redeployed);
			td_invoke_frame(&b, (uint64_t)sent, "acme", "hello", "x", 1);
			sent++;
		}
		if (b.len && !td_send(fd, &b)) {
			lutf_buf_free(&b);
			a->failed++;
			break;
		}
		lutf_buf_free(&b);
		if (got == sent)
			continue;
		if (!td_recv(fd, &r, 5000)) {
			a->failed += sent - got;
			break;
		}
		got++;
		atomic_fetch_add(&a->calls, 1);
		if (r.h.status != LUTF_STATUS_OK) {
			if (!a->failed++)
				a->first_bad_status = r.h.status;
		} else if (!td_field(&r, LUTF_TAG_OUTPUT, 0, &f) || f.len != 4) {
			a->bad_output++;
		} else if (!memcmp(f.val, "v2 x", 4)) {
			a->v2++;
		} else if (!memcmp(f.val, "v1 x", 4)) {
			a->v1++;
			if (r.h.request_id < MAX_CALLS && after[r.h.request_id])
				a->stale++;
		} else {
			a->bad_output++;
		}
		if (r.h.request_id < MAX_CALLS && after[r.h.request_id])
			atomic_fetch_add(&a->calls_after, 1);
		free(r.payload);
	}
	free(after);
	close(fd);
	return NULL;
}

Test(lutfd, redeploy_under_load_no_failed_call, .timeout = 30)
{
	static const char *const ex[] = {"hello=hello", NULL};
	static const char *const v1[] = {"hello", "greeting", "v1 ", NULL};
	static const char *const v2[] = {"hello", "greeting", "v2 ", NULL};
	struct redeploy_load a = {0};
	struct td_reply r;
	struct lutf_tlv f;
	pthread_t th;
	uint64_t v = 0, until;

	cr_assert_eq(td_deploy_cfg(cfd, "acme", "hello", HELLO, ex, v1, &r), LUTF_STATUS_OK);
	free(r.payload);
	pthread_create(&th, NULL, redeploy_thread, &a);
	for (until = td_now_ms() + 3000; atomic_load(&a.calls) < 300 && td_now_ms() < until;)
		td_sleep_ms(5);
	cr_assert_eq(td_deploy_cfg(cfd, "acme", "hello", HELLO, ex, v2, &r), LUTF_STATUS_OK);
	cr_assert(td_field(&r, LUTF_TAG_VERSION, 0, &f) && lutf_tlv_u64(&f, &v) && v == 2);
	free(r.payload);
	atomic_store(&a.redeployed, 1);
	for (until = td_now_ms() + 3000; atomic_load(&a.calls_after) < 1000 && td_now_ms() < until;)
		td_sleep_ms(5);
	atomic_store(&a.stop, 1);
	pthread_join(th, NULL);
	cr_log_info("redeploy under load: %d calls (%d v1, %d v2, %d sent after the redeploy)",
		    atomic_load(&a.calls), a.v1, a.v2, atomic_load(&a.calls_after));
	cr_assert_eq(a.failed, 0, "%d calls failed (first status %u)", a.failed,
		     a.first_bad_status);
	cr_assert_eq(a.bad_output, 0, "%d calls returned an unexpected output", a.bad_output);
	cr_assert_eq(a.stale, 0, "%d calls sent after the redeploy ran v1", a.stale);
	cr_assert_gt(a.v1, 0, "no call ran before the redeploy");
	cr_assert_gt(atomic_load(&a.calls_after), 0, "no call ran after the redeploy");
}

/* Another tenant's calls while the scribbler is recycled. */
struct other_load {
	atomic_int stop;
	int ok, failed;
	uint32_t first_bad_status;
};

static void *other_thread(void *p)
{
	struct other_load *a = p;
	int fd = td_connect(&d, "lutf.sock");
	char out[64];

	while (fd >= 0 && !atomic_load(&a->stop)) {
		uint32_t st = invoke_t(fd, "other", "echo", "ping", out, sizeof(out), 5000);

		if (st == LUTF_STATUS_OK && !strcmp(out, "ping")) {
			a->ok++;
		} else {
			if (!a->failed++)
				a->first_bad_status = st;
			if (st == 0xffffffffu)
				break; /* timed out or closed: the stream is lost */
		}
	}
	if (fd < 0)
		a->failed++;
	else
		close(fd);
	return NULL;
}

/* A call whose completion never reaches lutfd (its worker rewrote how the
 * Brick completes) is answered by lutfd's own deadline, typed, and nothing
 * stays in flight. */
Test(lutfd, a_call_never_completed_is_answered_by_lutfds_deadline, .timeout = 30)
{
	static const char *const ex[] = {"echo=echo", "lose=lose_completion", NULL};
	struct lutf_buf b;
	struct td_reply r;
	uint64_t t0, ms, inflight = 99;
	uint32_t st;
	size_t f;
	char out[160] = "";
	int dfd;

	td_tier = "compat"; /* the app finds its region in /proc/self/maps */
	cr_assert_eq(td_deploy(cfd, "acme", "app", APP, ex, &r), LUTF_STATUS_OK);
	free(r.payload);
	dfd = td_connect(&d, "lutf.sock");
	cr_assert_geq(dfd, 0);
	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, LUTF_OP_INVOKE, 0, 5);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, "acme");
	lutf_tlv_put_str(&b, LUTF_TAG_FUNCTION, "lose");
	lutf_tlv_put_u32(&b, LUTF_TAG_TIMEOUT_MS, 200);
	lutf_frame_end(&b, f);
	t0 = td_now_ms();
	st = td_call(dfd, &b, &r, 10000);
	ms = td_now_ms() - t0;
	lutf_buf_free(&b);
	if (st != 0xffffffffu)
		td_field_str(&r, LUTF_TAG_ERROR, out, sizeof(out));
	free(r.payload);
	cr_assert_eq(st, LUTF_STATUS_DEADLINE, "status %u (%s) after %llu ms", st, out,
		     (unsigned long long)ms);
	cr_assert(strstr(out, "lutfd"), "not lutfd's own answer: %s", out);
	cr_assert_lt(ms, 5000, "answered only after %llu ms", (unsigned long long)ms);
	cr_assert(td_status(cfd, &r));
	cr_assert(td_counter(r.payload, r.h.length, "inflight", &inflight));
	free(r.payload);
	cr_assert_eq(inflight, 0, "%llu calls still in flight", (unsigned long long)inflight);
	/* The worker was not at fault by any check: it still serves. */
	cr_assert_eq(invoke_t(dfd, "acme", "echo", "still", out, sizeof(out), 5000),
		     LUTF_STATUS_OK);
	cr_assert_str_eq(out, "still");
	close(dfd);
}

Test(lutfd, worker_scribbling_its_region_is_recycled, .timeout = 30)
{
	static const char *const ex[] = {"echo=echo", "scribble=scribble", NULL};
	struct other_load o = {0};
	struct lutf_buf b;
	struct td_reply r;
	pthread_t th;
	uint64_t pid = 0, pid2 = 0, restarts = 0, until;
	uint32_t st;
	char out[128];
	int dfd;

	/* The scribbler finds its region in /proc/self/maps: compat allows that. */
	td_tier = "compat";
	cr_assert_eq(td_deploy(cfd, "acme", "app", APP, ex, &r), LUTF_STATUS_OK);
	free(r.payload);
	cr_assert_eq(
	    td_deploy(cfd, "other", "app", APP, (const char *const[]){"echo=echo", NULL}, &r),
	    LUTF_STATUS_OK);
	free(r.payload);
	cr_assert(td_tenant_counter(cfd, "acme", "worker_pid", &pid) && pid > 0);
	pthread_create(&th, NULL, other_thread, &o);

	/* Any reply (CRASHED: its own result is garbage), or a closed
	 * connection, but no hang: wait 2 s at most. */
	dfd = td_connect(&d, "lutf.sock");
	st = invoke_t(dfd, "acme", "scribble", NULL, out, sizeof(out), 2000);
	cr_log_info("scribble answered status %u", st);
	if (st != 0xffffffffu) {
		/* Its own Brick's generation is garbage now: lutfd says which check. */
		cr_assert_eq(st, LUTF_STATUS_CRASHED, "scribble answered %u (%s)", st, out);
		cr_assert(strstr(out, "region fault: "), "no check named: %s", out);
	}
	close(dfd);
	/* Calls in the scribbled region meet its garbage: they may fail, on
	 * fresh connections so that one lost stream does not end the test. */
	for (until = td_now_ms() + 5000; td_now_ms() < until;) {
		dfd = td_connect(&d, "lutf.sock");
		cr_assert_geq(dfd, 0, "lutfd does not accept connections");
		invoke_t(dfd, "acme", "echo", "x", out, sizeof(out), 1000);
		close(dfd);
		cr_assert_eq(kill(d.pid, 0), 0, "lutfd died");
		if (!td_tenant_counter(cfd, "acme", "restarts", &restarts))
			cr_log_info("STATUS failed");
		if (restarts >= 1 && td_tenant_counter(cfd, "acme", "worker_pid", &pid2) && pid2 &&
		    pid2 != pid)
			break;
		td_sleep_ms(20);
	}
	cr_assert_geq(restarts, 1, "the scribbling worker was not recycled (pid %llu, now %llu)",
		      (unsigned long long)pid, (unsigned long long)pid2);
	cr_assert(pid2 && pid2 != pid, "no new worker (old %llu, now %llu)",
		  (unsigned long long)pid, (unsigned long long)pid2);

	/* The new worker answers; lutfd is alive and answers PING. */
	dfd = td_connect(&d, "lutf.sock");
	st = 0xffffffffu;
	for (until = td_now_ms() + 5000; st != LUTF_STATUS_OK && td_now_ms() < until;) {
		st = invoke_t(dfd, "acme", "echo", "again", out, sizeof(out), 2000);
		if (st == 0xffffffffu) {
			close(dfd);
			dfd = td_connect(&d, "lutf.sock");
		}
		if (st != LUTF_STATUS_OK)
			td_sleep_ms(50);
	}
	cr_assert_eq(st, LUTF_STATUS_OK, "the recycled tenant answers %u (%s)", st, out);
	cr_assert_str_eq(out, "again");
	lutf_buf_init(&b);
	lutf_frame_end(&b, lutf_frame_begin(&b, LUTF_OP_PING, 0, 61));
	cr_assert_eq(td_call(dfd, &b, &r, 5000), LUTF_STATUS_OK);
	free(r.payload);
	lutf_buf_free(&b);
	close(dfd);
	atomic_store(&o.stop, 1);
	pthread_join(th, NULL);
	cr_assert_eq(kill(d.pid, 0), 0, "lutfd died");
	cr_assert_eq(o.failed, 0, "the other tenant failed %d calls (first status %u)", o.failed,
		     o.first_bad_status);
	cr_assert_gt(o.ok, 0);
}

Test(lutfd, killed_and_restarted_keeps_registry)
{
	struct lutf_buf b;
	struct td_reply r;
	struct lutf_tlv rec;
	uint64_t wpid = 0;
	char out[64];
	int dfd;

	deploy_hello();
	cr_assert_eq(td_control(cfd, LUTF_OP_PAUSE, "acme", "noop"), LUTF_STATUS_OK);
	cr_assert(td_tenant_counter(cfd, "acme", "worker_pid", &wpid) && wpid > 0);
	close(cfd);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	for (int i = 0; i < 300 && !td_pid_gone((pid_t)wpid); i++)
		td_sleep_ms(10);
	cr_assert(td_pid_gone((pid_t)wpid), "worker %llu outlived lutfd", (unsigned long long)wpid);

	cr_assert(td_start_again(&d), "lutfd did not restart");
	cfd = td_connect(&d, "control.sock");
	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_LIST, 2, "acme", NULL);
	cr_assert_eq(td_call(cfd, &b, &r, 5000), LUTF_STATUS_OK);
	lutf_buf_free(&b);
	cr_assert_eq(td_count(&r, LUTF_TAG_RECORD), 2);
	for (int i = 0; i < 2; i++) {
		cr_assert(td_field(&r, LUTF_TAG_RECORD, i, &rec));
		if (memmem(rec.val, rec.len, "noop", 4))
			cr_assert(memmem(rec.val, rec.len, "paused", 6), "noop is not paused");
		else
			cr_assert(memmem(rec.val, rec.len, "active", 6));
	}
	free(r.payload);
	dfd = td_connect(&d, "lutf.sock");
	cr_assert_eq(invoke(dfd, "hello", "back", out, sizeof(out)), LUTF_STATUS_OK);
	cr_assert_str_eq(out, "hello, back");
	close(dfd);
}

Test(lutfd, second_instance_refused)
{
	char run2[80], buf[4096] = "";
	int status = 0, fd;
	pid_t pid;
	ssize_t n;

	snprintf(run2, sizeof(run2), "%s/run2", d.dir);
	pid = td_spawn(&d, run2);
	td_wait_exit(pid, &status, 5000);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "second lutfd status %d", status);
	fd = open(d.log, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	cr_assert(strstr(buf, "already running"), "log: %s", buf);
	cr_assert_eq(kill(d.pid, 0), 0);
}

Test(lutfd, control_call_on_data_socket_is_forbidden)
{
	struct lutf_buf b;
	struct td_reply r;
	int dfd = td_connect(&d, "lutf.sock");
	char c;

	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_LIST, 9, NULL, NULL);
	cr_assert_eq(td_call(dfd, &b, &r, 5000), LUTF_STATUS_FORBIDDEN);
	cr_assert_eq(r.h.request_id, 9);
	free(r.payload);
	lutf_buf_free(&b);
	cr_assert_eq(recv(dfd, &c, 1, 0), 0, "not closed");
	close(dfd);
}

Test(lutfd, malformed_frames_close_only_their_connection)
{
	struct lutf_buf b;
	struct td_reply r;
	int good = td_connect(&d, "lutf.sock"), bad;
	uint8_t junk[24];
	char c;

	/* bad magic */
	bad = td_connect(&d, "lutf.sock");
	memset(junk, 0x5a, sizeof(junk));
	cr_assert_eq(send(bad, junk, sizeof(junk), 0), 24);
	cr_assert(td_recv(bad, &r, 5000));
	cr_assert_eq(r.h.status, LUTF_STATUS_MALFORMED);
	free(r.payload);
	cr_assert_eq(recv(bad, &c, 1, 0), 0);
	close(bad);
	/* unknown opcode */
	bad = td_connect(&d, "lutf.sock");
	lutf_buf_init(&b);
	lutf_frame_end(&b, lutf_frame_begin(&b, 999, 0, 31));
	cr_assert_eq(td_call(bad, &b, &r, 5000), LUTF_STATUS_MALFORMED);
	cr_assert_eq(r.h.request_id, 31);
	free(r.payload);
	lutf_buf_free(&b);
	cr_assert_eq(recv(bad, &c, 1, 0), 0);
	close(bad);
	/* too large */
	bad = td_connect(&d, "lutf.sock");
	lutf_buf_init(&b);
	lutf_frame_begin(&b, LUTF_OP_INVOKE, 0, 32);
	memcpy(b.data + 8, &(uint32_t){64u << 20}, 4);
	cr_assert_eq(td_call(bad, &b, &r, 5000), LUTF_STATUS_TOO_LARGE);
	free(r.payload);
	lutf_buf_free(&b);
	cr_assert_eq(recv(bad, &c, 1, 0), 0);
	close(bad);
	/* truncated: half a header, then silence; the others carry on */
	bad = td_connect(&d, "lutf.sock");
	cr_assert_eq(send(bad, junk, 10, 0), 10);
	lutf_buf_init(&b);
	lutf_frame_end(&b, lutf_frame_begin(&b, LUTF_OP_PING, 0, 33));
	cr_assert_eq(td_call(good, &b, &r, 5000), LUTF_STATUS_OK);
	cr_assert_eq(r.h.request_id, 33);
	free(r.payload);
	lutf_buf_free(&b);
	close(bad);
	close(good);
}

Test(lutfd, sigterm_answers_everything_and_exits_0)
{
	static const char *const ex[] = {"sleep_ms=sleep_ms", NULL};
	struct lutf_buf b;
	struct td_reply r;
	int dfd = td_connect(&d, "lutf.sock"), status = -1;

	cr_assert_eq(td_deploy(cfd, "acme", "sleep", SLEEP, ex, &r), LUTF_STATUS_OK);
	free(r.payload);
	lutf_buf_init(&b);
	for (int i = 0; i < 4; i++)
		td_invoke_frame(&b, (uint64_t)i, "acme", "sleep_ms", "100", 3);
	for (int i = 4; i < 8; i++)
		td_invoke_frame(&b, (uint64_t)i, "acme", "sleep_ms", "9000", 4);
	cr_assert(td_send(dfd, &b));
	lutf_buf_free(&b);
	td_sleep_ms(50);
	kill(d.pid, SIGTERM);
	for (int i = 0; i < 8; i++) {
		cr_assert(td_recv(dfd, &r, 10000), "reply %d missing", i);
		cr_assert(r.h.status == LUTF_STATUS_OK || r.h.status == LUTF_STATUS_SHUTTING_DOWN,
			  "status %u", r.h.status);
		free(r.payload);
	}
	td_wait_exit(d.pid, &status, 10000);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	d.pid = 0;
	close(dfd);
}

/* MAX_CONCURRENCY: calls beyond it are answered OVERLOADED at once, the
 * others run; after they finish the function takes calls again. */
Test(lutfd, max_concurrency_answers_overloaded)
{
	static const char *const ex[] = {"sleep=sleep_ms", NULL};
	struct td_reply r;
	struct lutf_buf b;
	int fd, ok = 0, over = 0;
	char out[64];

	cr_assert_eq(td_deploy_max(cfd, "acme", "sleep", SLEEP, ex, NULL, 2, &r), LUTF_STATUS_OK);
	free(r.payload);
	fd = td_connect(&d, "lutf.sock");
	cr_assert_geq(fd, 0);
	/* Five pipelined calls of 300 ms each: two run, three are refused. */
	lutf_buf_init(&b);
	for (int i = 0; i < 5; i++)
		td_invoke_frame(&b, (uint64_t)i + 1, "acme", "sleep", "300", 3);
	cr_assert(td_send(fd, &b));
	lutf_buf_free(&b);
	for (int i = 0; i < 5; i++) {
		cr_assert(td_recv(fd, &r, 5000), "reply %d missing", i);
		ok += r.h.status == LUTF_STATUS_OK;
		over += r.h.status == LUTF_STATUS_OVERLOADED;
		free(r.payload);
	}
	cr_assert_eq(ok, 2);
	cr_assert_eq(over, 3);
	cr_assert_eq(invoke_t(fd, "acme", "sleep", "1", out, sizeof(out), 5000), LUTF_STATUS_OK);
	close(fd);
}
