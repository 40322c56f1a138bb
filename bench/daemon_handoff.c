/* SPDX-License-Identifier: MIT */
/*
 * The labor_watch hand-off measured through lutfd (part of bench/daemon): one
 * connection pipelines "block" (blocks in read() on a FIFO) and "stamp" on the
 * same tenant, whose single Cart makes stamp wait behind block; the hand-off
 * is stamp's start minus block's pre-read stamp, both CLOCK_MONOTONIC in the
 * worker. Then a byte on the FIFO releases block. Bounded in rounds and time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_handoff.h"
#include "wire.h"

static int send_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, void *p, size_t n, int timeout_ms)
{
	while (n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t got;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		got = read(fd, p, n);
		if (got <= 0)
			return -1;
		p = (char *)p + got;
		n -= (size_t)got;
	}
	return 0;
}

/* One reply: its id and the u64 in its OUTPUT. 0, or -1 on any failure. */
static int recv_stamp(int fd, uint64_t *id, uint64_t *stamp)
{
	uint8_t hdr[LUTF_WIRE_HDR_SIZE], body[256];
	struct lutf_wire_hdr h;
	struct lutf_tlv_iter it;
	struct lutf_tlv f;

	if (recv_all(fd, hdr, sizeof(hdr), 5000) ||
	    lutf_frame_parse_hdr(hdr, sizeof(body), &h) != LUTF_STATUS_OK ||
	    recv_all(fd, body, h.length, 5000))
		return -1;
	if (h.status != LUTF_STATUS_OK) {
		fprintf(stderr, "daemon: hand-off call %llu: %s\n",
			(unsigned long long)h.request_id, lutf_status_str(h.status));
		return -1;
	}
	*id = h.request_id;
	lutf_tlv_iter_init(&it, body, h.length);
	while (lutf_tlv_next(&it, &f))
		if (f.tag == LUTF_TAG_OUTPUT && lutf_tlv_u64(&f, stamp))
			return 0;
	return -1;
}

static void put_invoke(struct lutf_buf *b, uint64_t id, const char *tenant, const char *fn)
{
	size_t f = lutf_frame_begin(b, LUTF_OP_INVOKE, 0, id);

	lutf_tlv_put_str(b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(b, LUTF_TAG_FUNCTION, fn);
	lutf_frame_end(b, f);
}

int daemon_handoff_run(int data_fd, int fifo_fd, const char *tenant, uint64_t *lat, int rounds,
		       unsigned gap_us)
{
	int done = 0;

	/* Warm up: the new worker's Labors start and are registered with
	 * labor_watch by the Supervisor's next passes. */
	for (int i = 0; i < 10; i++) {
		struct lutf_buf b;
		uint64_t id, v;
		int bad;

		lutf_buf_init(&b);
		put_invoke(&b, 1000000 + (uint64_t)i, tenant, "stamp");
		bad = b.failed || send_all(data_fd, b.data, b.len) || recv_stamp(data_fd, &id, &v);
		lutf_buf_free(&b);
		if (bad)
			return -1;
	}
	usleep(100000);

	for (int i = 0; i < rounds; i++) {
		uint64_t id, v, t0 = 0, t1 = 0, blk = 2 * (uint64_t)i + 1;
		struct lutf_buf b;
		char one = 1;
		int bad;

		lutf_buf_init(&b);
		put_invoke(&b, blk, tenant, "block");
		put_invoke(&b, blk + 1, tenant, "stamp");
		bad = b.failed || send_all(data_fd, b.data, b.len);
		lutf_buf_free(&b);
		if (bad)
			return -1;
		/* stamp answers first (it ran on another Labor); then release block. */
		if (recv_stamp(data_fd, &id, &v) || id != blk + 1) {
			fprintf(stderr, "daemon: hand-off round %d: stamp did not answer first\n",
				i);
			(void)!write(fifo_fd, &one, 1); /* release block, so lutfd can stop */
			return -1;
		}
		t1 = v;
		if (send_all(fifo_fd, &one, 1) || recv_stamp(data_fd, &id, &v) || id != blk)
			return -1;
		t0 = v;
		lat[done++] = t1 > t0 ? t1 - t0 : 0;
		/* 300 us: let the released Labor park again before the next
		 * round; 0: it still spins (the direct take's case). */
		if (gap_us)
			usleep(gap_us);
	}
	return done;
}
