/* SPDX-License-Identifier: MIT */
/*
 * Binary-protocol slowloris and malformed ids (issue 12.7): a frame dripped
 * byte by byte is cut off at frame_timeout_ms although every byte resets the
 * idle timer; partial frames past input_buffered_max over all connections
 * get the connection asking for more refused (OVERLOADED, the cause) while
 * others go on; a PING with id 0 is MALFORMED and closes. Both backends
 * (CTest runs twice).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "ingress_util.h"
#include "require.h"

static struct td d;
static int cfd = -1;

static void start(const char *extra)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket needs root");
	cr_assert(ti_start_app(&d, extra, &cfd), "lutfd did not start or deploy (log in %s)",
		  d.log);
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(ingress_slow, .fini = teardown, .timeout = 120);

/* True once the peer closed fd (EOF or reset) within ms, no bytes first. */
static bool eof_within(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	char c;

	if (poll(&p, 1, ms) <= 0)
		return false;
	return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/* True once fd is closed by lutfd within ms; the refusal's ERROR (if one
 * came first) goes to why. */
static bool closed_within(int fd, int ms, char *why, size_t cap)
{
	struct td_reply r;

	why[0] = 0;
	if (td_recv(fd, &r, ms)) {
		td_field_str(&r, LUTF_TAG_ERROR, why, cap);
		free(r.payload);
	}
	return eof_within(fd, ms);
}

static void ping_ok(int fd, uint64_t id)
{
	struct lutf_buf b;
	struct td_reply r;

	lutf_buf_init(&b);
	lutf_frame_end(&b, lutf_frame_begin(&b, LUTF_OP_PING, 0, id));
	cr_assert_eq(td_call(fd, &b, &r, 5000), LUTF_STATUS_OK);
	cr_assert_eq(r.h.request_id, id);
	free(r.payload);
	lutf_buf_free(&b);
}

Test(ingress_slow, dripped_frame_cut_off_at_frame_timeout)
{
	struct lutf_buf b;
	char why[200];
	uint64_t t0, waited;
	int fd, other;
	bool gone = false;

	start("frame_timeout_ms = 1000\nidle_timeout_ms = 60000\n");
	fd = ti_connect_tcp(&d);
	other = ti_connect_tcp(&d);
	cr_assert(fd >= 0 && other >= 0);
	lutf_buf_init(&b);
	td_invoke_frame(&b, 5, "t", "echo", "0123456789", 10);
	/* One byte every 100 ms, never the last: the idle timer never fires. */
	t0 = td_now_ms();
	for (size_t i = 0; i + 1 < b.len && td_now_ms() - t0 < 8000; i++) {
		struct pollfd p = {fd, POLLIN, 0};

		if (send(fd, b.data + i, 1, MSG_NOSIGNAL) != 1 || poll(&p, 1, 100) > 0) {
			gone = true;
			break;
		}
	}
	waited = td_now_ms() - t0;
	cr_assert(gone, "a dripping connection lived %llu ms past frame_timeout_ms = 1000",
		  (unsigned long long)waited);
	cr_assert(closed_within(fd, 3000, why, sizeof(why)), "not closed");
	cr_assert(strstr(why, "not complete within 1000 ms"), "refusal: '%s'", why);
	cr_assert_geq(waited, 900, "cut off after %llu ms, before its deadline",
		      (unsigned long long)waited);
	ping_ok(other, 9); /* the others go on */
	{
		uint64_t n = 0;

		cr_assert(ti_status(cfd, "ingress_frame_timeouts", &n, NULL, NULL, 0));
		cr_assert_geq(n, 1, "STATUS counts no frame timeout");
	}
	lutf_buf_free(&b);
	close(fd);
	close(other);
}

Test(ingress_slow, input_cap_refuses_the_connection_asking_for_more)
{
	/* Each connection's buffer is under 2 x PART = 800 KiB: one alone fits
	 * the 1 MiB cap, three together cannot. */
	enum { NC = 3, PART = 400 << 10 };
	static uint8_t junk[PART];
	int fd[NC], refused = 0, alive;
	char why[200];

	start("input_buffered_max = 1048576\nframe_timeout_ms = 30000\n");
	for (int i = 0; i < NC; i++) {
		uint8_t h[LUTF_WIRE_HDR_SIZE];
		struct lutf_buf b;

		fd[i] = ti_connect_tcp(&d);
		cr_assert_geq(fd[i], 0);
		/* A 4 MiB INVOKE of which 400 KiB arrive: held as a partial frame. */
		lutf_buf_init(&b);
		lutf_frame_begin(&b, LUTF_OP_INVOKE, 0, 100 + (uint64_t)i);
		memcpy(h, b.data, sizeof(h));
		lutf_buf_free(&b);
		h[8] = 0;
		h[9] = 0;
		h[10] = 0x40; /* length 4 MiB, little-endian */
		h[11] = 0;
		cr_assert_eq(send(fd[i], h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
		(void)!send(fd[i], junk, sizeof(junk), MSG_NOSIGNAL);
		td_sleep_ms(300);
	}
	for (int i = 0; i < NC; i++) {
		struct pollfd p = {fd[i], POLLIN, 0};

		if (poll(&p, 1, 1000) > 0 && closed_within(fd[i], 2000, why, sizeof(why))) {
			refused++;
			cr_assert(strstr(why, "input_buffered_max"), "refusal: '%s'", why);
		}
	}
	cr_assert_geq(refused, 1, "3 x 400 KiB of partial frames held under a 1 MiB cap");
	cr_assert_lt(refused, NC, "every connection refused: the cap counts wrong");
	{
		uint64_t n = 0;

		cr_assert(ti_status(cfd, "ingress_input_refused", &n, NULL, NULL, 0));
		cr_assert_eq(n, (uint64_t)refused, "STATUS ingress_input_refused");
	}
	alive = ti_connect_tcp(&d);
	cr_assert_geq(alive, 0);
	ping_ok(alive, 7); /* a whole small frame needs no buffer */
	close(alive);
	for (int i = 0; i < NC; i++)
		close(fd[i]);
}

Test(ingress_slow, ping_with_request_id_zero_is_malformed)
{
	struct lutf_buf b;
	struct td_reply r;
	char why[200] = "";
	int fd;

	start(NULL);
	fd = ti_connect_tcp(&d);
	cr_assert_geq(fd, 0);
	lutf_buf_init(&b);
	lutf_frame_end(&b, lutf_frame_begin(&b, LUTF_OP_PING, 0, 0));
	cr_assert_eq(td_call(fd, &b, &r, 5000), LUTF_STATUS_MALFORMED, "PING with id 0 answered");
	cr_assert_eq(r.h.request_id, 0);
	if (r.payload)
		td_field_str(&r, LUTF_TAG_ERROR, why, sizeof(why));
	cr_assert(strstr(why, "request id 0"), "'%s'", why);
	free(r.payload);
	cr_assert(eof_within(fd, 3000), "the connection stayed open");
	close(fd);
	lutf_buf_free(&b);
}
