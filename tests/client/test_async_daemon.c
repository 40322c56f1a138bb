/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous client against the real lutfd, on both transports
 * (io_uring and plain sockets): many pipelined invokes over several
 * connections (the Unix socket, and lutfd's TCP listener when it writes
 * tcp.addr), per-call timeouts while a function is paused (and the late
 * replies dropped without harm), and a lutfd killed mid-stream with a second
 * one taking the calls that were not yet written. Needs root (lutfd).
 */
#include <criterion/criterion.h>
#include <errno.h>

#include <lutf/client.h>

#include "../daemon/daemon_util.h"
#include "require.h"

#define N_MANY 20000u

static struct td d1, d2;

static void fini(void)
{
	td_stop(&d1);
	td_stop(&d2);
	unsetenv("LUTF_TEST_NO_BPF");
}

/* Start lutfd in d and deploy acme/hello and acme/noop. */
static void start(struct td *d)
{
	const char *exports[] = {"hello=hello", "noop=noop", NULL};
	struct td_reply r = {0};
	struct lutf_tlv f;
	uint32_t st;
	int cfd;

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	memset(d, 0, sizeof(*d));
	cr_assert(td_start(d, "listen_tcp = 127.0.0.1:0\n"), "lutfd did not start");
	cfd = td_connect(d, "control.sock");
	cr_assert_geq(cfd, 0);
	st = td_deploy(cfd, "acme", "greet", EXAMPLES_DIR "/libhello.so", exports, &r);
	if (st != LUTF_STATUS_OK && st < 0xfffffff0u && td_field(&r, LUTF_TAG_ERROR, 0, &f))
		cr_assert_fail("deploy: %s: %.*s", lutf_status_str(st), (int)f.len, f.val);
	cr_assert_eq(st, LUTF_STATUS_OK, "deploy: %#x", st);
	free(r.payload);
	close(cfd);
}

/* PAUSE or RESUME acme/noop. */
static void control(struct td *d, uint16_t op)
{
	int cfd = td_connect(d, "control.sock");

	cr_assert_geq(cfd, 0);
	cr_assert_eq(td_control(cfd, op, "acme", "noop"), LUTF_STATUS_OK);
	close(cfd);
}

/* "tcp://ADDR" from <run>/tcp.addr, or false when lutfd wrote none. */
static bool tcp_url(const struct td *d, char *url, size_t cap)
{
	char addr[96];

	if (!td_addr(d, "tcp.addr", addr, sizeof(addr)))
		return false;
	snprintf(url, cap, "tcp://%s", addr);
	return true;
}

static struct lutf_client_async *open_on(const char *const *urls, size_t n, uint32_t conns,
					  uint32_t timeout_ms, unsigned flags)
{
	struct lutf_client_opts o = {.endpoints = urls,
				     .n_endpoints = n,
				     .conns_per_endpoint = conns,
				     .queue_depth = 4096,
				     .timeout_ms = timeout_ms,
				     .retry_min_ms = 5000,
				     .flags = flags};
	struct lutf_client_async *a;
	int err = lutf_client_open(&o, &a);

	cr_assert_eq(err, 0, "open: %s", strerror(-err));
	if (!(flags & LUTF_CLIENT_NO_URING))
		LUTF_REQUIRE("io_uring", !strcmp(lutf_client_backend(a), "io_uring"),
			     "the kernel refused io_uring");
	return a;
}

static int submit(struct lutf_client_async *a, const char *fn, unsigned i)
{
	char in[16];
	struct lutf_client_request req = {.input = in};

	req.input_len = (size_t)snprintf(in, sizeof(in), "c%u", i);
	return lutf_client_submit(a, "acme", fn, &req, i);
}

/*
 * Reap until nothing is outstanding (bounded). got[i] counts completions of
 * call i; OK hello replies must be "hello, c<i>". Returns the number of OK.
 */
static unsigned reap_all(struct lutf_client_async *a, unsigned *got, unsigned n, unsigned *reset,
			 unsigned *timedout)
{
	struct lutf_client_completion cq[256];
	uint64_t until = td_now_ms() + 30000;
	unsigned ok = 0;

	while (lutf_client_outstanding(a) && td_now_ms() < until) {
		int k = lutf_client_reap(a, cq, 256, 200);

		cr_assert_geq(k, 0, "reap: %s", strerror(-k));
		for (int j = 0; j < k; j++) {
			struct lutf_client_completion *c = &cq[j];
			char want[32];

			cr_assert_lt(c->user_data, n);
			got[c->user_data]++;
			if (c->error == -ECONNRESET && reset)
				(*reset)++;
			else if (c->error == -ETIMEDOUT && timedout)
				(*timedout)++;
			else {
				cr_assert_eq(c->error, 0, "call %llu: %s",
					     (unsigned long long)c->user_data, strerror(-c->error));
				cr_assert_eq(c->result.status, LUTF_STATUS_OK, "%s: %s",
					     lutf_status_str(c->result.status),
					     c->result.error ? c->result.error : "");
				if (c->result.output_len) {
					snprintf(want, sizeof(want), "hello, c%llu",
						 (unsigned long long)c->user_data);
					cr_assert_str_eq((char *)c->result.output, want);
				}
				ok++;
			}
			lutf_client_result_release(&c->result);
		}
	}
	cr_assert_eq(lutf_client_outstanding(a), 0, "calls never completed");
	return ok;
}

static void many(unsigned flags)
{
	static unsigned got[N_MANY];
	char tcp[128];
	const char *urls[2];
	size_t n = 1;
	unsigned next = 0, done = 0;
	struct lutf_client_async *a;

	start(&d1);
	urls[0] = malloc(160);
	snprintf((char *)urls[0], 160, "unix://%s/lutf.sock", d1.run);
	if (tcp_url(&d1, tcp, sizeof(tcp)))
		urls[n++] = tcp;
	else
		cr_log_info("lutfd wrote no tcp.addr: Unix socket only");
	a = open_on(urls, n, 8, 20000, flags);
	memset(got, 0, sizeof(got));
	while (next < N_MANY) {
		struct lutf_client_completion cq[256];
		int k;

		while (next < N_MANY && submit(a, "hello", next) == 0)
			next++;
		k = lutf_client_reap(a, cq, 256, 1000);
		cr_assert_gt(k, 0, "reap: %d", k);
		for (int j = 0; j < k; j++) {
			cr_assert_eq(cq[j].error, 0, "%s", strerror(-cq[j].error));
			cr_assert_eq(cq[j].result.status, LUTF_STATUS_OK, "%s",
				     lutf_status_str(cq[j].result.status));
			got[cq[j].user_data]++;
			lutf_client_result_release(&cq[j].result);
			done++;
		}
	}
	done += reap_all(a, got, N_MANY, NULL, NULL);
	cr_assert_eq(done, N_MANY);
	for (unsigned i = 0; i < N_MANY; i++)
		cr_assert_eq(got[i], 1, "call %u completed %u times", i, got[i]);
	lutf_client_async_close(a);
	free((void *)urls[0]);
}

Test(async_lutfd_uring, many_invokes, .fini = fini) { many(0); }
Test(async_lutfd_sock, many_invokes, .fini = fini) { many(LUTF_CLIENT_NO_URING); }

static void paused(unsigned flags)
{
	unsigned got[40] = {0}, timedout = 0, ok;
	char url[160];
	const char *urls[] = {url};
	struct lutf_client_async *a;

	start(&d1);
	snprintf(url, sizeof(url), "unix://%s/lutf.sock", d1.run);
	a = open_on(urls, 1, 2, 300, flags);
	control(&d1, LUTF_OP_PAUSE);
	for (unsigned i = 0; i < 20; i++)
		cr_assert_eq(submit(a, "noop", i), 0);
	ok = reap_all(a, got, 40, NULL, &timedout);
	cr_assert_eq(timedout, 20, "%u timed out, %u ok", timedout, ok);
	/* The held calls now run and their replies arrive late: dropped, and
	 * the connections carry on. */
	control(&d1, LUTF_OP_RESUME);
	td_sleep_ms(100);
	for (unsigned i = 20; i < 40; i++)
		cr_assert_eq(submit(a, "noop", i), 0);
	cr_assert_eq(reap_all(a, got, 40, NULL, NULL), 20);
	for (unsigned i = 0; i < 40; i++)
		cr_assert_eq(got[i], 1);
	lutf_client_async_close(a);
}

Test(async_lutfd_uring, timeouts_while_paused, .fini = fini) { paused(0); }
Test(async_lutfd_sock, timeouts_while_paused, .fini = fini) { paused(LUTF_CLIENT_NO_URING); }

static void killed(unsigned flags)
{
	static unsigned got[4000];
	unsigned reset = 0, ok;
	char u1[160], u2[160];
	const char *urls[] = {u1, u2};
	struct lutf_client_async_stats st;
	struct lutf_client_async *a;

	setenv("LUTF_TEST_NO_BPF", "1", 1); /* two lutfds: no shared pin folder */
	start(&d1);
	start(&d2);
	snprintf(u1, sizeof(u1), "unix://%s/lutf.sock", d1.run);
	snprintf(u2, sizeof(u2), "unix://%s/lutf.sock", d2.run);
	a = open_on(urls, 2, 2, 20000, flags);
	memset(got, 0, sizeof(got));
	for (unsigned i = 0; i < 2000; i++)
		cr_assert_eq(submit(a, "hello", i), 0);
	cr_assert_geq(lutf_client_flush(a), 0);
	kill(d1.pid, SIGKILL);
	waitpid(d1.pid, NULL, 0);
	d1.pid = 0;
	/* lutfd's io_uring ingress holds its sockets until the kernel tears
	 * the ring down, a little after the process is gone. */
	td_sleep_ms(300);
	/* Not yet noticed by the client: half of these go to d1's dead
	 * connections and must move to d2 unsent. */
	for (unsigned i = 2000; i < 4000; i++)
		cr_assert_eq(submit(a, "hello", i), 0);
	ok = reap_all(a, got, 4000, &reset, NULL);
	cr_assert_eq(ok + reset, 4000);
	for (unsigned i = 0; i < 4000; i++)
		cr_assert_eq(got[i], 1, "call %u completed %u times", i, got[i]);
	cr_assert_eq(lutf_client_async_stats(a, &st), 0);
	cr_assert_eq(st.conn_lost, 2);
	cr_assert_gt(st.failed_over, 0, "killed lutfd: %u ok, %u reset, %llu moved, %llu lost", ok,
		     reset, (unsigned long long)st.failed_over, (unsigned long long)st.conn_lost);
	lutf_client_async_close(a);
}

Test(async_lutfd_uring, lutfd_killed_mid_stream, .fini = fini) { killed(0); }
Test(async_lutfd_sock, lutfd_killed_mid_stream, .fini = fini) { killed(LUTF_CLIENT_NO_URING); }
