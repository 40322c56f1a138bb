/* SPDX-License-Identifier: MIT */
/*
 * Many quiet connections: 1,000 idle ones plus a slow-drip client sending one
 * byte of a frame every 100 ms must not stall others (1,000 calls in a few
 * seconds) nor grow lutfd's memory; the drip's frame, once finished, is
 * answered; and a low idle timeout still closes the silent ones. Both
 * backends (CTest runs twice).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>

#include "ingress_util.h"
#include "require.h"

static struct td d;
static int cfd = -1;

static void start(const char *extra)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket and BPF need root");
	ti_raise_nofile(8192);
	cr_assert(ti_start_app(&d, extra, &cfd), "lutfd did not start or deploy (log in %s)",
		  d.log);
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(ingress_idle, .fini = teardown, .timeout = 120);

static uint64_t call_ms(int fd, int n)
{
	uint64_t t0 = td_now_ms();
	struct lutf_buf b;

	lutf_buf_init(&b);
	for (int i = 0; i < n; i++) {
		struct td_reply r;

		b.len = 0;
		td_invoke_frame(&b, (uint64_t)i + 1, "t", "echo", "x", 1);
		cr_assert_eq(td_call(fd, &b, &r, 5000), LUTF_STATUS_OK, "call %d", i);
		cr_assert_eq(r.h.request_id, (uint64_t)i + 1);
		free(r.payload);
	}
	lutf_buf_free(&b);
	return td_now_ms() - t0;
}

struct drip {
	int fd;
	struct lutf_buf frame;
	atomic_size_t off; /* bytes sent */
	atomic_bool stop;
};

/* One byte every 100 ms; never the last one (the test sends it). */
static void *drip_run(void *arg)
{
	struct drip *dr = arg;

	while (!atomic_load(&dr->stop) && atomic_load(&dr->off) + 1 < dr->frame.len) {
		size_t off = atomic_load(&dr->off);

		if (send(dr->fd, dr->frame.data + off, 1, MSG_NOSIGNAL) != 1)
			break;
		atomic_store(&dr->off, off + 1);
		td_sleep_ms(100);
	}
	return NULL;
}

Test(ingress_idle, thousand_idle_and_a_slow_drip_do_not_stall_or_grow)
{
	static int idle[1000];
	struct drip dr = {0};
	uint64_t rss0, rss1, ms, conns;
	struct td_reply r;
	struct lutf_tlv f;
	pthread_t th;
	char in[64];
	int fd;

	start("max_conns = 4096\nidle_timeout_ms = 0\n");
	fd = td_connect(&d, "lutf.sock");
	cr_assert_geq(fd, 0);
	call_ms(fd, 200); /* warm: worker, pools, buffers */
	rss0 = ti_rss_kib(d.pid);
	for (int i = 0; i < 1000; i++) {
		idle[i] = i % 2 ? ti_connect_tcp(&d) : td_connect(&d, "lutf.sock");
		cr_assert_geq(idle[i], 0, "idle connection %d", i);
	}
	dr.fd = ti_connect_tcp(&d);
	cr_assert_geq(dr.fd, 0);
	lutf_buf_init(&dr.frame);
	memset(in, 'd', sizeof(in));
	td_invoke_frame(&dr.frame, 4242, "t", "echo", in, sizeof(in));
	cr_assert_eq(pthread_create(&th, NULL, drip_run, &dr), 0);
	td_sleep_ms(300);

	ms = call_ms(fd, 1000);
	cr_log_info("1000 calls beside 1000 idle connections and a drip: %llu ms",
		    (unsigned long long)ms);
	fprintf(stderr, "idle: 1000 calls in %llu ms\n", (unsigned long long)ms);
	cr_assert_lt(ms, 5000, "1000 calls took %llu ms", (unsigned long long)ms);
	/* Go on calling while the drip sends a couple of dozen bytes. */
	for (uint64_t until = td_now_ms() + 10000;
	     atomic_load(&dr.off) < 25 && td_now_ms() < until;) {
		uint64_t round = call_ms(fd, 1000);

		cr_assert_lt(round, 5000, "1000 calls took %llu ms", (unsigned long long)round);
		td_sleep_ms(50);
	}
	conns = ti_counter(cfd, "connections");
	cr_assert_geq(conns, 1003, "only %llu connections open", (unsigned long long)conns);
	rss1 = ti_rss_kib(d.pid);
	fprintf(stderr, "idle: lutfd VmRSS %llu -> %llu KiB\n", (unsigned long long)rss0,
		(unsigned long long)rss1);
	cr_assert(rss0 && rss1);
	cr_assert_lt(rss1, rss0 + 12 * 1024, "lutfd grew from %llu to %llu KiB",
		     (unsigned long long)rss0, (unsigned long long)rss1);

	/* The drip's frame was reassembled byte by byte: finish it, get the echo. */
	atomic_store(&dr.stop, true);
	pthread_join(th, NULL);
	cr_assert_geq(atomic_load(&dr.off), 25, "the drip did not drip");
	{
		size_t off = atomic_load(&dr.off);
		struct lutf_buf rest = {dr.frame.data + off, dr.frame.len - off, 0, false};

		cr_assert(td_send(dr.fd, &rest));
	}
	cr_assert(td_recv(dr.fd, &r, 5000), "no reply to the dripped frame");
	cr_assert_eq(r.h.status, LUTF_STATUS_OK);
	cr_assert_eq(r.h.request_id, 4242);
	cr_assert(td_field(&r, LUTF_TAG_OUTPUT, 0, &f) && f.len == sizeof(in) &&
		  !memcmp(f.val, in, sizeof(in)));
	free(r.payload);
	for (int i = 0; i < 1000; i++)
		close(idle[i]);
	close(dr.fd);
	close(fd);
	lutf_buf_free(&dr.frame);
}

Test(ingress_idle, idle_timeout_closes_the_silent_ones)
{
	int silent[20], active, partial;
	uint64_t until, closed;
	struct lutf_buf b;

	start("idle_timeout_ms = 400\n");
	for (int i = 0; i < 20; i++) {
		silent[i] = i % 2 ? ti_connect_tcp(&d) : td_connect(&d, "lutf.sock");
		cr_assert_geq(silent[i], 0);
	}
	/* Half a frame and then silence: closed as well. */
	partial = ti_connect_tcp(&d);
	lutf_buf_init(&b);
	td_invoke_frame(&b, 1, "t", "noop", NULL, 0);
	cr_assert_eq(send(partial, b.data, 10, MSG_NOSIGNAL), 10);
	active = td_connect(&d, "lutf.sock");
	cr_assert(partial >= 0 && active >= 0);
	until = td_now_ms() + 1500;
	while (td_now_ms() < until) { /* the active one keeps talking */
		struct td_reply r;

		b.len = 0;
		td_addr_frame(&b, LUTF_OP_PING, 2, NULL, NULL);
		cr_assert_eq(td_call(active, &b, &r, 2000), LUTF_STATUS_OK);
		free(r.payload);
		td_sleep_ms(100);
	}
	for (int i = 0; i < 20; i++) {
		char c;

		cr_assert_eq(recv(silent[i], &c, 1, MSG_DONTWAIT), 0,
			     "silent connection %d still open", i);
		close(silent[i]);
	}
	{
		char c;

		cr_assert_eq(recv(partial, &c, 1, MSG_DONTWAIT), 0, "half-frame connection open");
	}
	closed = ti_counter(cfd, "ingress_idle_closed");
	cr_assert_geq(closed, 21, "ingress_idle_closed = %llu", (unsigned long long)closed);
	close(partial);
	close(active);
	lutf_buf_free(&b);
}
