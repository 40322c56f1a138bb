/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous client (lutf_client_open / submit / flush / reap) against
 * fake lutfd servers on Unix and TCP sockets, on both transports: io_uring
 * (suite async_uring; skipped, or failed under LUTF_TEST_REQUIRE=io_uring,
 * when the kernel refuses it) and plain sockets (suite async_sock). Every
 * call must complete exactly once; calls run at most once across endpoints.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lutf/client.h>

#include "fake_server.h"
#include "require.h"

#define MAXCALLS 20000

/* What one fake server saw: executions per call index. */
struct seen {
	_Atomic unsigned n[MAXCALLS];
	_Atomic unsigned total;
	unsigned die_at; /* FAKE_DIE on this request number (1-based); 0: never */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static bool input_of(const struct lutf_wire_hdr *h, const uint8_t *p, struct lutf_tlv *out)
{
	struct lutf_tlv_iter it;

	lutf_tlv_iter_init(&it, p, h->length);
	while (lutf_tlv_next(&it, out))
		if (out->tag == LUTF_TAG_INPUT)
			return true;
	return false;
}

/* Echo INPUT as OUTPUT; count the call (input "c<index>") in arg's struct seen. */
static enum fake_action echo_count(struct fake_server *s, const struct lutf_wire_hdr *h,
				   const uint8_t *payload, struct lutf_buf *out)
{
	struct seen *sn = s->arg;
	struct lutf_tlv f;
	size_t off;
	unsigned total = atomic_fetch_add(&sn->total, 1) + 1;

	if (input_of(h, payload, &f) && f.len > 1 && f.len < 16 && f.val[0] == 'c') {
		char num[16];
		unsigned long i;

		memcpy(num, f.val + 1, f.len - 1);
		num[f.len - 1] = 0;
		i = strtoul(num, NULL, 10);
		if (i < MAXCALLS)
			atomic_fetch_add(&sn->n[i], 1);
	}
	if (sn->die_at && total >= sn->die_at)
		return FAKE_DIE; /* read, never answered: the client must not resend it */
	off = fake_reply_begin(out, h, LUTF_STATUS_OK);
	if (input_of(h, payload, &f))
		lutf_tlv_put(out, LUTF_TAG_OUTPUT, f.val, f.len);
	lutf_frame_end(out, off);
	return FAKE_SEND;
}

static enum fake_action silent(struct fake_server *s, const struct lutf_wire_hdr *h,
			       const uint8_t *payload, struct lutf_buf *out)
{
	(void)s;
	(void)h;
	(void)payload;
	(void)out;
	return FAKE_SILENT;
}

static struct lutf_client_async *open_on(const char *const *urls, size_t n, uint32_t conns,
					 uint32_t depth, unsigned flags)
{
	struct lutf_client_opts o = {.endpoints = urls,
				     .n_endpoints = n,
				     .conns_per_endpoint = conns,
				     .queue_depth = depth,
				     .timeout_ms = 10000,
				     .retry_min_ms = 2000,
				     .flags = flags};
	struct lutf_client_async *a = NULL;
	int err = lutf_client_open(&o, &a);

	cr_assert_eq(err, 0, "lutf_client_open: %s", strerror(-err));
	if (!(flags & LUTF_CLIENT_NO_URING))
		LUTF_REQUIRE("io_uring", strcmp(lutf_client_backend(a), "io_uring") == 0,
			     "the kernel refused io_uring: the client fell back to sockets");
	else
		cr_assert_str_eq(lutf_client_backend(a), "socket");
	return a;
}

static int submit_call(struct lutf_client_async *a, unsigned i, uint32_t timeout_ms)
{
	char in[16];
	struct lutf_client_request req = {.input = in, .timeout_ms = timeout_ms};

	req.input_len = (size_t)snprintf(in, sizeof(in), "c%u", i);
	return lutf_client_submit(a, "t", "echo", &req, 1000000 + i);
}

/*
 * Reap until every submitted call completed (or 20 s passed). Counts per
 * call in got[], checks echo outputs, and errors per kind.
 */
struct tally {
	unsigned got[MAXCALLS];
	unsigned ok, reset, timedout, other;
};

static void reap_all(struct lutf_client_async *a, struct tally *t)
{
	struct lutf_client_completion cq[256];
	int64_t until = mono_ms() + 20000;

	while (lutf_client_outstanding(a) && mono_ms() < until) {
		int n = lutf_client_reap(a, cq, 256, 100);

		cr_assert_geq(n, 0, "reap: %s", strerror(-n));
		for (int j = 0; j < n; j++) {
			struct lutf_client_completion *c = &cq[j];
			uint64_t i = c->user_data - 1000000;
			char want[16];

			cr_assert_lt(i, MAXCALLS, "user_data %llu",
				     (unsigned long long)c->user_data);
			t->got[i]++;
			if (c->error == 0) {
				cr_assert_eq(c->result.status, LUTF_STATUS_OK);
				snprintf(want, sizeof(want), "c%u", (unsigned)i);
				cr_assert_eq(c->result.output_len, strlen(want),
					     "len %zu want %s err %d st %u out %.*s",
					     c->result.output_len, want, c->error, c->result.status,
					     (int)c->result.output_len, (char *)c->result.output);
				cr_assert_eq(memcmp(c->result.output, want, strlen(want)), 0);
				t->ok++;
			} else if (c->error == -ECONNRESET) {
				t->reset++;
			} else if (c->error == -ETIMEDOUT) {
				t->timedout++;
			} else {
				t->other++;
			}
			lutf_client_result_release(&c->result);
		}
	}
	cr_assert_eq(lutf_client_outstanding(a), 0, "calls never completed");
}

/* ---- many calls, several connections, Unix and TCP endpoints ---- */

static void many(unsigned flags)
{
	static struct seen su, st;
	static struct tally t;
	struct fake_server s1, s2;
	struct lutf_client_async_stats stats;
	const unsigned N = 20000;
	unsigned next = 0;

	memset(&su, 0, sizeof(su));
	memset(&st, 0, sizeof(st));
	memset(&t, 0, sizeof(t));
	cr_assert_eq(fake_start_flags(&s1, echo_count, &su, FAKE_CONCURRENT), 0);
	cr_assert_eq(fake_start_flags(&s2, echo_count, &st, FAKE_CONCURRENT | FAKE_TCP), 0);
	const char *urls[] = {s1.url, s2.url};
	struct lutf_client_async *a = open_on(urls, 2, 4, 512, flags);

	/* Keep the queue full: submit until -EAGAIN, then reap some. */
	while (next < N) {
		struct lutf_client_completion cq[128];
		int err, n;

		while (next < N && (err = submit_call(a, next, 0)) == 0)
			next++;
		if (next < N)
			cr_assert_eq(err, -EAGAIN, "submit: %s", strerror(-err));
		n = lutf_client_reap(a, cq, 128, 1000);
		cr_assert_gt(n, 0, "reap: %d", n);
		for (int j = 0; j < n; j++) {
			uint64_t i = cq[j].user_data - 1000000;

			cr_assert_eq(cq[j].error, 0, "call %llu: %s", (unsigned long long)i,
				     strerror(-cq[j].error));
			cr_assert_eq(cq[j].result.output_len,
				     (size_t)snprintf(NULL, 0, "c%llu", (unsigned long long)i));
			t.got[i]++;
			lutf_client_result_release(&cq[j].result);
		}
	}
	reap_all(a, &t);
	for (unsigned i = 0; i < N; i++) {
		cr_assert_eq(t.got[i], 1, "call %u completed %u times", i, t.got[i]);
		cr_assert_eq(su.n[i] + st.n[i], 1, "call %u ran %u times", i, su.n[i] + st.n[i]);
	}
	/* Both endpoints served, and batching: far fewer syscalls than calls. */
	cr_assert_gt(su.total, N / 8);
	cr_assert_gt(st.total, N / 8);
	cr_assert_eq(lutf_client_async_stats(a, &stats), 0);
	cr_assert_eq(stats.completed, N);
	cr_assert_eq(stats.live_conns, 8);
	/* io_uring: one enter carries a whole batch. The plain path needs a
	 * poll plus a recv per ready connection (the fake server answers each
	 * connection from its own thread, so replies trickle in): it batches
	 * less, 0.2-0.35 syscalls per call measured, but stays under one per two. */
	cr_assert_lt(stats.enters, (flags & LUTF_CLIENT_NO_URING) ? N / 2 : N / 4,
		     "%llu system calls for %u calls", (unsigned long long)stats.enters, N);
	lutf_client_async_close(a);
	fake_stop(&s1);
	fake_stop(&s2);
}

Test(async_uring, many_calls_many_connections)
{
	many(0);
}
Test(async_sock, many_calls_many_connections)
{
	many(LUTF_CLIENT_NO_URING);
}

/* ---- an endpoint dies mid-stream ---- */

static void failover(unsigned flags)
{
	static struct seen sa, sb;
	static struct tally t;
	struct fake_server A, B;
	struct lutf_client_async_stats stats;
	const unsigned N1 = 200, N2 = 200;

	memset(&sa, 0, sizeof(sa));
	memset(&sb, 0, sizeof(sb));
	memset(&t, 0, sizeof(t));
	sa.die_at = 20;
	cr_assert_eq(fake_start_flags(&A, echo_count, &sa, FAKE_CONCURRENT), 0);
	cr_assert_eq(fake_start_flags(&B, echo_count, &sb, FAKE_CONCURRENT), 0);
	const char *urls[] = {A.url, B.url};
	struct lutf_client_async *a = open_on(urls, 2, 2, 1024, flags);

	/* Half the calls go to A, which dies at its 20th request. */
	for (unsigned i = 0; i < N1; i++)
		cr_assert_eq(submit_call(a, i, 0), 0);
	cr_assert_geq(lutf_client_flush(a), 0);
	for (int64_t until = mono_ms() + 5000; !A.dead && mono_ms() < until;)
		sleep_ms(5);
	cr_assert(A.dead);
	sleep_ms(50);
	/* The client has not looked yet: these go to A's dead connections too,
	 * and must move to B unsent. */
	for (unsigned i = N1; i < N1 + N2; i++)
		cr_assert_eq(submit_call(a, i, 0), 0);
	reap_all(a, &t);
	cr_assert_eq(t.other + t.timedout, 0, "%u other, %u timed out", t.other, t.timedout);
	cr_assert_eq(t.ok + t.reset, N1 + N2);
	cr_assert_gt(t.reset, 0, "the request A read and never answered must fail");
	for (unsigned i = 0; i < N1 + N2; i++) {
		cr_assert_eq(t.got[i], 1, "call %u completed %u times", i, t.got[i]);
		/* At most once: nothing A may have seen ran on B. */
		cr_assert_leq(sa.n[i] + sb.n[i], 1, "call %u ran twice", i);
		if (sb.n[i] == 0 && sa.n[i] == 0)
			continue; /* written to A, never read: -ECONNRESET */
	}
	cr_assert_eq(lutf_client_async_stats(a, &stats), 0);
	cr_assert_eq(stats.conn_lost, 2);
	cr_assert_eq(stats.live_conns, 2);
	cr_assert_gt(stats.failed_over, 0, "unsent calls on the dead endpoint must move");
	/* Everything after the death completed OK on B. */
	for (unsigned i = N1; i < N1 + N2; i++)
		cr_assert_eq(sb.n[i], 1, "late call %u not run on B", i);
	lutf_client_async_close(a);
	fake_stop(&A);
	fake_stop(&B);
}

Test(async_uring, endpoint_dies_unsent_calls_fail_over)
{
	failover(0);
}
Test(async_sock, endpoint_dies_unsent_calls_fail_over)
{
	failover(LUTF_CLIENT_NO_URING);
}

/* ---- per-call timeouts against a server that never answers ---- */

static void timeouts(unsigned flags)
{
	struct fake_server s;
	static struct tally t;
	struct lutf_client_opts o = {.n_endpoints = 1,
				     .conns_per_endpoint = 2,
				     .timeout_ms = 300,
				     .grace_ms = 50,
				     .flags = flags};
	struct lutf_client_async *a;
	int64_t t0;

	memset(&t, 0, sizeof(t));
	cr_assert_eq(fake_start_flags(&s, silent, NULL, FAKE_CONCURRENT), 0);
	o.endpoints = (const char *const[]){s.url};
	cr_assert_eq(lutf_client_open(&o, &a), 0);
	if (!(flags & LUTF_CLIENT_NO_URING))
		LUTF_REQUIRE("io_uring", strcmp(lutf_client_backend(a), "io_uring") == 0,
			     "the kernel refused io_uring");
	t0 = mono_ms();
	for (unsigned i = 0; i < 10; i++) /* own deadline 100 ms + grace 50 */
		cr_assert_eq(submit_call(a, i, 100), 0);
	for (unsigned i = 10; i < 20; i++) /* the handle's 300 ms */
		cr_assert_eq(submit_call(a, i, 0), 0);
	reap_all(a, &t);
	cr_assert_eq(t.timedout, 20);
	cr_assert_geq(mono_ms() - t0, 300);
	cr_assert_lt(mono_ms() - t0, 2000);
	/* Own deadlines fired first: a reap at ~200 ms would have had them. */
	lutf_client_async_close(a);
	fake_stop(&s);
}

Test(async_uring, timeouts_fire_without_reply)
{
	timeouts(0);
}
Test(async_sock, timeouts_fire_without_reply)
{
	timeouts(LUTF_CLIENT_NO_URING);
}

Test(async_sock, own_deadline_before_handle_timeout)
{
	struct fake_server s;
	struct lutf_client_opts o = {
	    .n_endpoints = 1, .timeout_ms = 5000, .grace_ms = 20, .flags = LUTF_CLIENT_NO_URING};
	struct lutf_client_completion c;
	struct lutf_client_async *a;
	int64_t t0;

	cr_assert_eq(fake_start_flags(&s, silent, NULL, 0), 0);
	o.endpoints = (const char *const[]){s.url};
	cr_assert_eq(lutf_client_open(&o, &a), 0);
	t0 = mono_ms();
	cr_assert_eq(submit_call(a, 1, 80), 0);
	cr_assert_eq(lutf_client_reap(a, &c, 1, -1), 1);
	cr_assert_eq(c.error, -ETIMEDOUT);
	cr_assert_eq(c.user_data, 1000001);
	cr_assert_geq(mono_ms() - t0, 100);
	cr_assert_lt(mono_ms() - t0, 1000);
	lutf_client_async_close(a);
	fake_stop(&s);
}

/* ---- the environment switch ---- */

Test(async_sock, env_forces_sockets)
{
	struct fake_server s;
	struct lutf_client_opts o = {.n_endpoints = 1};
	struct lutf_client_async *a;

	cr_assert_eq(fake_start_flags(&s, silent, NULL, 0), 0);
	o.endpoints = (const char *const[]){s.url};
	setenv("LUTF_CLIENT_URING", "off", 1);
	cr_assert_eq(lutf_client_open(&o, &a), 0);
	unsetenv("LUTF_CLIENT_URING");
	cr_assert_str_eq(lutf_client_backend(a), "socket");
	lutf_client_async_close(a);
	fake_stop(&s);
}

/* ---- bad URLs and arguments ---- */

Test(async_sock, bad_arguments)
{
	struct fake_server s;
	struct lutf_client_opts o = {0};
	struct lutf_client_async *a = (void *)1;
	struct lutf_client_completion c;
	struct lutf_client_request big = {0};
	char name[80];

	cr_assert_eq(lutf_client_open(NULL, &a), -EINVAL);
	cr_assert_eq(lutf_client_open(&o, NULL), -EINVAL);
	cr_assert_eq(lutf_client_open(&o, &a), -EINVAL); /* no endpoints */
	cr_assert_null(a);
	o.n_endpoints = 1;
	o.endpoints = (const char *const[]){"http://localhost:80"};
	cr_assert_eq(lutf_client_open(&o, &a), -EINVAL);
	o.endpoints = (const char *const[]){"tcp://localhost"};
	cr_assert_eq(lutf_client_open(&o, &a), -EINVAL);
	o.endpoints = (const char *const[]){"unix://relative/path"};
	cr_assert_eq(lutf_client_open(&o, &a), -EINVAL);
	o.endpoints = (const char *const[]){NULL};
	cr_assert_eq(lutf_client_open(&o, &a), -EINVAL);
	o.endpoints = (const char *const[]){"unix:///nonexistent/lutf-test/lutf.sock"};
	cr_assert_eq(lutf_client_open(&o, &a), -ENOENT);
	cr_assert_eq(fake_start_flags(&s, silent, NULL, 0), 0);
	o.endpoints = (const char *const[]){s.url};
	o.conns_per_endpoint = 2000;
	cr_assert_eq(lutf_client_open(&o, &a), -EINVAL);
	o.conns_per_endpoint = 1;
	o.max_frame = 100;
	cr_assert_eq(lutf_client_open(&o, &a), -EINVAL);
	o.max_frame = 4096;
	o.queue_depth = 2;
	o.flags = LUTF_CLIENT_NO_URING;
	cr_assert_eq(lutf_client_open(&o, &a), 0);

	cr_assert_eq(lutf_client_submit(NULL, "t", "f", NULL, 0), -EINVAL);
	cr_assert_eq(lutf_client_submit(a, "T", "f", NULL, 0), -EINVAL);
	cr_assert_eq(lutf_client_submit(a, "t", "", NULL, 0), -EINVAL);
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	cr_assert_eq(lutf_client_submit(a, "t", name, NULL, 0), -EINVAL);
	big.input_len = 5; /* input NULL with a length */
	cr_assert_eq(lutf_client_submit(a, "t", "f", &big, 0), -EINVAL);
	big.input = calloc(1, 8192);
	big.input_len = 8192; /* over max_frame 4096 */
	cr_assert_eq(lutf_client_submit(a, "t", "f", &big, 0), -EMSGSIZE);
	free((void *)big.input);
	cr_assert_eq(lutf_client_outstanding(a), 0);
	cr_assert_eq(lutf_client_submit(a, "t", "f", NULL, 1), 0);
	cr_assert_eq(lutf_client_submit(a, "t", "f", NULL, 2), 0);
	cr_assert_eq(lutf_client_submit(a, "t", "f", NULL, 3), -EAGAIN);
	cr_assert_eq(lutf_client_outstanding(a), 2);
	cr_assert_eq(lutf_client_reap(a, NULL, 1, 0), -EINVAL);
	cr_assert_eq(lutf_client_reap(NULL, &c, 1, 0), -EINVAL);
	cr_assert_eq(lutf_client_reap(a, &c, 1, 0), 0); /* silent server: nothing yet */
	cr_assert_eq(lutf_client_flush(NULL), -EINVAL);
	cr_assert_null(lutf_client_backend(NULL));
	lutf_client_async_close(a); /* with calls outstanding: no leak (ASan) */
	lutf_client_async_close(NULL);
	fake_stop(&s);
}
