/* SPDX-License-Identifier: MIT */
/*
 * 1,000,000 pipelined no-op invocations across 64 connections (half Unix,
 * half TCP), each reply matched to its request id: none lost, none
 * duplicated, every one OK, within 120 s. Run on the default backend and
 * with LUTF_INGRESS=epoll (CTest registers both).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "ingress_util.h"
#include "require.h"

#define NCONN 64
#define TOTAL 1000000u
#define WINDOW 32u

static struct td d;
static int cfd = -1;

static void setup(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket and BPF need root");
	ti_raise_nofile(8192);
	cr_assert(ti_start_app(&d, "max_queued = 16384\nidle_timeout_ms = 0\n", &cfd),
		  "lutfd did not start or deploy (log in %s)", d.log);
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(ingress_pipeline, .init = setup, .fini = teardown, .timeout = 170);

struct pconn {
	int fd;
	uint32_t sent, got, quota;
	uint8_t *seen;
	struct ti_rd rd;
};

Test(ingress_pipeline, million_noops_64_connections_all_matched)
{
	static struct pconn pc[NCONN];
	struct pollfd pfd[NCONN];
	struct lutf_buf tmpl, batch;
	uint64_t total = 0, start = td_now_ms(), until = start + 120000, ms;
	uint32_t dup = 0, bad = 0, foreign = 0, notok = 0;
	char mode[64] = "";

	lutf_buf_init(&tmpl);
	td_invoke_frame(&tmpl, 0, "t", "noop", NULL, 0);
	cr_assert(!tmpl.failed);
	lutf_buf_init(&batch);
	for (int i = 0; i < NCONN; i++) {
		pc[i].fd = i % 2 ? ti_connect_tcp(&d) : td_connect(&d, "lutf.sock");
		cr_assert_geq(pc[i].fd, 0, "connection %d", i);
		pc[i].quota = TOTAL / NCONN + (i < (int)(TOTAL % NCONN) ? 1 : 0);
		pc[i].seen = calloc(pc[i].quota, 1);
		pfd[i].fd = pc[i].fd;
		pfd[i].events = POLLIN;
	}
	while (total < TOTAL && td_now_ms() < until) {
		/* Top every connection up to WINDOW requests in flight, one send each. */
		for (int i = 0; i < NCONN; i++) {
			struct pconn *p = &pc[i];

			batch.len = 0;
			while (p->sent < p->quota && p->sent - p->got < WINDOW) {
				/* seq + 1: request id 0 is reserved (malformed) */
				uint64_t id = ((uint64_t)i << 32) | (p->sent++ + 1);
				size_t at = batch.len;

				lutf_buf_put(&batch, tmpl.data, tmpl.len);
				id = htole64(id);
				memcpy(batch.data + at + 16, &id, 8);
			}
			cr_assert(!batch.failed);
			if (batch.len)
				cr_assert(td_send(p->fd, &batch), "send on connection %d", i);
		}
		if (poll(pfd, NCONN, 1000) < 0)
			continue;
		for (int i = 0; i < NCONN; i++) {
			struct pconn *p = &pc[i];
			struct lutf_wire_hdr h;
			const uint8_t *pl;
			size_t pos = 0;
			ssize_t n;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = ti_rd_fill(&p->rd, p->fd);
			cr_assert(n > 0 || n == -2,
				  "connection %d (%s) closed by lutfd after %u replies", i,
				  i % 2 ? "tcp" : "unix", p->got);
			while (ti_rd_next(&p->rd, &pos, &h, &pl)) {
				uint32_t conn = (uint32_t)(h.request_id >> 32);
				uint32_t seq = (uint32_t)h.request_id - 1;

				if (h.status != LUTF_STATUS_OK)
					notok++;
				if (conn != (uint32_t)i) {
					foreign++;
					continue;
				}
				if (seq >= p->sent) {
					bad++;
					continue;
				}
				if (p->seen[seq]++) {
					dup++;
					continue;
				}
				p->got++;
				total++;
			}
			ti_rd_done(&p->rd, pos);
		}
	}
	ms = td_now_ms() - start;
	cr_log_info("%s: %llu replies in %llu ms (%.0f/s)",
		    ti_status(cfd, NULL, NULL, "ingress=", mode, sizeof(mode)) ? mode : "?",
		    (unsigned long long)total, (unsigned long long)ms,
		    ms ? (double)total * 1000.0 / (double)ms : 0.0);
	fprintf(stderr, "pipeline: %s, %llu replies in %llu ms (%.0f/s)\n", mode,
		(unsigned long long)total, (unsigned long long)ms,
		ms ? (double)total * 1000.0 / (double)ms : 0.0);
	cr_expect_eq(dup, 0, "%u duplicated replies", dup);
	cr_expect_eq(bad, 0, "%u replies to ids never sent", bad);
	cr_expect_eq(foreign, 0, "%u replies on the wrong connection", foreign);
	cr_expect_eq(notok, 0, "%u replies not OK", notok);
	cr_assert_eq(total, TOTAL, "%llu of %u answered within 120 s", (unsigned long long)total,
		     TOTAL);
	for (int i = 0; i < NCONN; i++) {
		for (uint32_t s = 0; s < pc[i].quota; s++)
			cr_assert_eq(pc[i].seen[s], 1, "connection %d request %u", i, s);
		close(pc[i].fd);
		free(pc[i].seen);
		free(pc[i].rd.buf);
	}
	lutf_buf_free(&tmpl);
	lutf_buf_free(&batch);
}
