/* SPDX-License-Identifier: MIT */
/*
 * client_batch: invoke a function many times through the asynchronous,
 * batched client, over one or more lutfd endpoints, and print a summary.
 *
 *   client_batch [-n CALLS] [-c CONNS] [-q DEPTH] [-t TIMEOUT_MS] [-i INPUT]
 *                TENANT/FUNCTION URL [URL...]
 *
 *   sudo lutfctl deploy --tenant demo --app greet --so libhello.so --export hello
 *   ./client_batch -n 100000 demo/hello unix:///run/lutf/lutf.sock
 *
 * The loop below is the whole pattern: submit until the queue is full
 * (-EAGAIN), reap what has completed (this also sends everything submitted,
 * with one io_uring_enter), repeat; then reap until nothing is outstanding.
 * Build: cc client_batch.c $(pkg-config --cflags --libs lutf-client)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lutf/client.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What came back, by kind. */
struct summary {
	unsigned long ok, typed, timed_out, lost, other;
	unsigned long by_status[LUTF_STATUS_DEADLINE + 2];
};

/* Count a batch of completions and release their results. */
static void tally(struct summary *s, struct lutf_client_completion *c, int n)
{
	for (int i = 0; i < n; i++) {
		if (c[i].error == 0 && c[i].result.status == LUTF_STATUS_OK)
			s->ok++;
		else if (c[i].error == 0) /* lutfd answered with a typed failure */
			s->typed++, s->by_status[c[i].result.status <= LUTF_STATUS_DEADLINE
						     ? c[i].result.status
						     : LUTF_STATUS_DEADLINE + 1]++;
		else if (c[i].error == -ETIMEDOUT) /* no reply in time: may have run */
			s->timed_out++;
		else if (c[i].error == -ECONNRESET) /* written, then the connection died */
			s->lost++;
		else
			s->other++;
		lutf_client_result_release(&c[i].result);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: client_batch [-n CALLS] [-c CONNS] [-q DEPTH] [-t TIMEOUT_MS] "
			"[-i INPUT] TENANT/FUNCTION URL [URL...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned long calls = 10000, submitted = 0, reaped = 0;
	struct lutf_client_opts o = {.conns_per_endpoint = 4, .queue_depth = 256};
	struct lutf_client_request req = {0};
	struct lutf_client_completion done[256];
	struct lutf_client_async_stats st;
	struct lutf_client_async *a;
	struct summary s = {0};
	char tenant[64], *fn;
	double t0, t;
	int opt, err;

	while ((opt = getopt(argc, argv, "n:c:q:t:i:")) != -1) {
		switch (opt) {
		case 'n': calls = strtoul(optarg, NULL, 10); break;
		case 'c': o.conns_per_endpoint = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'q': o.queue_depth = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 't': req.timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'i': req.input = optarg, req.input_len = strlen(optarg); break;
		default: return usage();
		}
	}
	if (argc - optind < 2 || !(fn = strchr(argv[optind], '/')) ||
	    (size_t)(fn - argv[optind]) >= sizeof(tenant))
		return usage();
	memcpy(tenant, argv[optind], (size_t)(fn - argv[optind]));
	tenant[fn - argv[optind]] = 0;
	fn++;

	/* Every URL is an endpoint; each gets conns_per_endpoint connections. */
	o.endpoints = (const char *const *)&argv[optind + 1];
	o.n_endpoints = (size_t)(argc - optind - 1);
	err = lutf_client_open(&o, &a);
	if (err) {
		fprintf(stderr, "client_batch: open: %s\n", strerror(-err));
		return 1;
	}
	t0 = now_s();
	while (reaped < calls) {
		int n;

		/* Queue as many as the handle takes: no system call here. */
		while (submitted < calls) {
			err = lutf_client_submit(a, tenant, fn, &req, submitted);
			if (err == -EAGAIN)
				break; /* queue_depth calls unreaped: reap first */
			if (err) {
				fprintf(stderr, "client_batch: submit: %s\n", strerror(-err));
				lutf_client_async_close(a);
				return 1;
			}
			submitted++;
		}
		/* Send all of them and collect what has completed, waiting up
		 * to a second for the first. */
		n = lutf_client_reap(a, done, sizeof(done) / sizeof(done[0]), 1000);
		if (n < 0) {
			fprintf(stderr, "client_batch: reap: %s\n", strerror(-n));
			break;
		}
		tally(&s, done, n);
		reaped += (unsigned long)n;
	}
	t = now_s() - t0;
	lutf_client_async_stats(a, &st);
	printf("%lu calls in %.3f s: %.0f calls/s over %u connection(s), transport %s\n", reaped,
	       t, (double)reaped / t, st.live_conns, lutf_client_backend(a));
	printf("  ok %lu, typed failures %lu, timed out %lu, lost with a connection %lu, other %lu\n",
	       s.ok, s.typed, s.timed_out, s.lost, s.other);
	for (unsigned i = 1; i <= LUTF_STATUS_DEADLINE + 1; i++)
		if (s.by_status[i])
			printf("    %-18s %lu\n", lutf_status_str(i), s.by_status[i]);
	printf("  %llu I/O system calls (%.3f per call), %llu moved off dead connections\n",
	       (unsigned long long)st.enters, reaped ? (double)st.enters / (double)reaped : 0.0,
	       (unsigned long long)st.failed_over);
	lutf_client_async_close(a);
	return reaped == calls && s.ok == calls ? 0 : 1;
}
