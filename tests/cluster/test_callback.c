/* SPDX-License-Identifier: MIT */
/*
 * Callback URLs of async calls (userspace/cluster/callback.c) as a hostile
 * caller may write them: the check accepts http://host[:port][/path] and
 * refuses everything else with a reason; a callback nobody answers is given
 * up after its bounded tries and counted as failed; one the check refuses is
 * dropped and counted. No NATS needed.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster_int.h"

static void quiet(const char *fmt, ...)
{
	(void)fmt;
}

Test(cluster_callback, check_accepts_and_refuses)
{
	static const char *const good[] = {
	    "http://127.0.0.1:8080/done",   "http://[::1]:80/",	     "http://host",
	    "http://h.example/a?b=c&d=%20", "http://h:1/x/y/z#frag",
	};
	static const char *const bad[] = {
	    "https://x/", "ftp://x/",	      "http://",	 "http:///x", "http://:80/",
	    "http://a b", "http://a\r\nX: y", "http://a\tb",	 "HTTP://x/", "http:/x",
	    "",		  "http://a\x7f",     "http://\xc3\xa9",
	};
	char msg[200], big[LUTF_CLUSTER_CALLBACK_MAX + 10];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(lutf_cluster_callback_check(good[i], msg, sizeof(msg)), 0, "%s: %s",
			     good[i], msg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = 0;
		cr_assert_eq(lutf_cluster_callback_check(bad[i], msg, sizeof(msg)), -EINVAL, "%s",
			     bad[i]);
		cr_assert(msg[0], "no reason for '%s'", bad[i]);
	}
	memcpy(big, "http://h/", 9);
	memset(big + 9, 'a', sizeof(big) - 10);
	big[sizeof(big) - 1] = 0;
	cr_assert_eq(lutf_cluster_callback_check(big, msg, sizeof(msg)), -EINVAL);
	cr_assert(strstr(msg, "longer"), "%s", msg);
}

/* Random bytes after "http://": accepted or refused, never a crash. */
Test(cluster_callback, random_urls)
{
	char url[80], msg[200];

	srand(15);
	for (int k = 0; k < 100000; k++) {
		size_t n = (size_t)(rand() % 60);

		memcpy(url, "http://", 7);
		for (size_t i = 0; i < n; i++)
			url[7 + i] = (char)(1 + rand() % 255);
		url[7 + n] = 0;
		(void)lutf_cluster_callback_check(url, msg, sizeof(msg));
	}
}

static uint64_t failed_after(uint64_t failed0, int ms)
{
	uint64_t ok, failed = failed0;
	struct timespec ts = {0, 20 * 1000000};

	for (int t = 0; t < ms / 20 && failed == failed0; t++) {
		nanosleep(&ts, NULL);
		lutf_cluster_cb_stats(&ok, &failed);
	}
	return failed;
}

Test(cluster_callback, unanswered_given_up_refused_dropped, .timeout = 30)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	struct lutf_cluster_reply r = {.output = "out", .output_len = 3};
	char url[64];
	uint64_t ok, f0, f1;
	struct timespec t0, t1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* A port that was free a moment ago: connections are refused. */
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/cb", ntohs(a.sin_port));

	lutf_cluster_cb_start(quiet);
	lutf_cluster_cb_stats(&ok, &f0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	lutf_cluster_cb_push(url, "id-1", &r, false);
	f1 = failed_after(f0, 10000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(f1, f0 + 1, "not given up within 10 s");
	/* 3 tries with 250 + 500 ms between them, each refused at once. */
	cr_assert_geq((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000, 700);

	/* A URL the check refuses (a hostile header) is dropped, counted. */
	lutf_cluster_cb_push("http://a\r\nX-Evil: 1", "id-2", &r, false);
	lutf_cluster_cb_stats(&ok, &f1);
	cr_assert_eq(f1, f0 + 2);
	cr_assert_eq(ok, 0);
	lutf_cluster_cb_stop();
}
