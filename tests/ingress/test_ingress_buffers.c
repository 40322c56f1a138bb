/* SPDX-License-Identifier: MIT */
/*
 * Buffers: a tiny provided-buffer ring (4 x 4 KiB) that forces -ENOBUFS with
 * every request answered and no connection dropped; payloads of several MiB
 * split across buffers and echoed back to a client that reads slowly (short
 * sends, resumed), checked byte for byte. Both backends (CTest runs twice).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>

#include "ingress_util.h"
#include "require.h"

static struct td d;
static int cfd = -1;

static void start(const char *extra)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket and BPF need root");
	ti_raise_nofile(4096);
	cr_assert(ti_start_app(&d, extra, &cfd), "lutfd did not start or deploy (log in %s)",
		  d.log);
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(ingress_buffers, .fini = teardown, .timeout = 120);

static bool is_uring(void)
{
	char mode[64];

	return ti_status(cfd, NULL, NULL, "ingress=", mode, sizeof(mode)) &&
	       !strcmp(mode, "ingress=io_uring");
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

#define NC 32
#define PER 400u
#define WIN 16u
#define INLEN 1500

Test(ingress_buffers, tiny_ring_forces_enobufs_no_connection_dropped)
{
	struct pollfd pfd[NC];
	struct ti_rd rd[NC] = {0};
	uint32_t sent[NC] = {0}, got[NC] = {0};
	uint8_t in[INLEN];
	uint64_t total = 0, until, enobufs, conns;
	struct lutf_buf b;
	bool uring;

	start("uring_buffers = 4\nuring_buffer_size = 4096\nmax_queued = 16384\n");
	uring = is_uring();
	lutf_buf_init(&b);
	for (int i = 0; i < NC; i++) {
		pfd[i].fd = i % 2 ? ti_connect_tcp(&d) : td_connect(&d, "lutf.sock");
		pfd[i].events = POLLIN;
		cr_assert_geq(pfd[i].fd, 0);
	}
	until = td_now_ms() + 90000;
	while (total < (uint64_t)NC * PER && td_now_ms() < until) {
		for (int i = 0; i < NC; i++) {
			b.len = 0;
			while (sent[i] < PER && sent[i] - got[i] < WIN) {
				/* connection i + 1: request id 0 is reserved (malformed) */
				uint64_t id = ((uint64_t)(i + 1) << 32) | sent[i]++;

				fill(in, sizeof(in), id);
				td_invoke_frame(&b, id, "t", "echo", in, sizeof(in));
			}
			if (b.len)
				cr_assert(td_send(pfd[i].fd, &b));
		}
		if (poll(pfd, NC, 1000) <= 0)
			continue;
		for (int i = 0; i < NC; i++) {
			struct lutf_wire_hdr h;
			const uint8_t *pl;
			size_t pos = 0;
			ssize_t n;

			if (!pfd[i].revents)
				continue;
			n = ti_rd_fill(&rd[i], pfd[i].fd);
			cr_assert(n > 0 || n == -2, "connection %d dropped after %u replies", i,
				  got[i]);
			while (ti_rd_next(&rd[i], &pos, &h, &pl)) {
				struct td_reply r = {h, (uint8_t *)pl};
				struct lutf_tlv f;

				cr_assert_eq(h.status, LUTF_STATUS_OK, "request %llx: status %u",
					     (unsigned long long)h.request_id, h.status);
				cr_assert_eq(h.request_id >> 32, (uint64_t)i + 1);
				cr_assert(td_field(&r, LUTF_TAG_OUTPUT, 0, &f) && f.len == INLEN);
				fill(in, sizeof(in), h.request_id);
				cr_assert(!memcmp(f.val, in, INLEN), "echo of %llx differs",
					  (unsigned long long)h.request_id);
				got[i]++;
				total++;
			}
			ti_rd_done(&rd[i], pos);
		}
	}
	cr_assert_eq(total, (uint64_t)NC * PER, "%llu answered", (unsigned long long)total);
	/* Every connection is still there and still answers. */
	conns = ti_counter(cfd, "connections");
	cr_assert_eq(conns, NC + 1, "lutfd has %llu connections", (unsigned long long)conns);
	for (int i = 0; i < NC; i++) {
		struct td_reply r;

		b.len = 0;
		td_addr_frame(&b, LUTF_OP_PING, 9, NULL, NULL);
		cr_assert_eq(td_call(pfd[i].fd, &b, &r, 5000), LUTF_STATUS_OK);
		free(r.payload);
		close(pfd[i].fd);
		free(rd[i].buf);
	}
	enobufs = ti_counter(cfd, "ingress_enobufs");
	cr_log_info("enobufs re-arms: %llu (io_uring: %d)", (unsigned long long)enobufs, uring);
	if (uring)
		cr_assert_gt(enobufs, 0, "the 4-buffer ring never ran dry");
	else
		cr_assert_eq(enobufs, 0);
	lutf_buf_free(&b);
}

struct sender {
	int fd;
	struct lutf_buf b;
	bool ok;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;

	s->ok = td_send(s->fd, &s->b);
	return NULL;
}

/* Read one reply, slowly (small reads, pauses): lutfd's sends come up short. */
static bool slow_recv(int fd, struct td_reply *r, size_t chunk)
{
	uint8_t hdr[LUTF_WIRE_HDR_SIZE];
	size_t off = 0;

	if (!td_read_all(fd, hdr, sizeof(hdr), 20000) ||
	    lutf_frame_parse_hdr(hdr, 64u << 20, &r->h) != LUTF_STATUS_OK)
		return false;
	r->payload = malloc(r->h.length + 1);
	while (off < r->h.length) {
		size_t n = r->h.length - off < chunk ? r->h.length - off : chunk;

		if (!td_read_all(fd, r->payload + off, n, 20000))
			return false;
		off += n;
		if ((off / chunk) % 8 == 0)
			td_sleep_ms(1);
	}
	return true;
}

static void big_echo(int fd)
{
	static const size_t sizes[] = {5u << 20, 3u << 20, (4u << 20) + 17};
	struct sender s = {.fd = fd};
	uint8_t *in[3];
	pthread_t th;

	lutf_buf_init(&s.b);
	for (int i = 0; i < 3; i++) {
		in[i] = malloc(sizes[i]);
		fill(in[i], sizes[i], 1000 + (uint64_t)i);
		td_invoke_frame(&s.b, 100 + (uint64_t)i, "t", "echo", in[i], sizes[i]);
	}
	cr_assert(!s.b.failed);
	/* Send from a thread: lutfd stops reading while replies pile up. */
	cr_assert_eq(pthread_create(&th, NULL, send_all, &s), 0);
	for (int i = 0; i < 3; i++) {
		struct td_reply r;
		struct lutf_tlv f;
		int k;

		cr_assert(slow_recv(fd, &r, 16384), "reply %d", i);
		cr_assert_eq(r.h.status, LUTF_STATUS_OK, "status %u", r.h.status);
		k = (int)(r.h.request_id - 100);
		cr_assert(k >= 0 && k < 3);
		cr_assert(td_field(&r, LUTF_TAG_OUTPUT, 0, &f));
		cr_assert_eq(f.len, sizes[k]);
		cr_assert(!memcmp(f.val, in[k], sizes[k]), "echo %d differs", k);
		free(r.payload);
	}
	pthread_join(th, NULL);
	cr_assert(s.ok);
	for (int i = 0; i < 3; i++)
		free(in[i]);
	lutf_buf_free(&s.b);
}

Test(ingress_buffers, several_mib_split_across_buffers_short_sends_resumed)
{
	int rcv = 32768, fu, ft;
	uint64_t shorts;

	start("max_frame = 16777216\nconn_out_max = 33554432\narena_mb = 256\n");
	fu = td_connect(&d, "lutf.sock");
	ft = ti_connect_tcp(&d);
	cr_assert(fu >= 0 && ft >= 0);
	setsockopt(fu, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	setsockopt(ft, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	big_echo(fu);
	big_echo(ft);
	shorts = ti_counter(cfd, "ingress_short_sends");
	cr_log_info("short sends: %llu", (unsigned long long)shorts);
	cr_assert_gt(shorts, 0, "no send came up short: the test did not test resumption");
	close(fu);
	close(ft);
}
