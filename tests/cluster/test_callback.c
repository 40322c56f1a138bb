/* SPDX-License-Identifier: MIT */
/*
 * Callback URLs of async calls (userspace/cluster/callback.c) as a hostile
 * caller may write them: the check accepts http://host[:port][/path] and
 * refuses everything else with a reason; a POST nobody answers fails at
 * once; hostile URLs and ids are refused before any connection; the verdict
 * rule (ok, retry, refused, dead letter) and the backoff. No NATS needed
 * (test_cluster_callback_durable delivers through JetStream).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster_int.h"

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

/* A POST to a port nobody listens on fails at once; a hostile URL or id is
 * refused before any connection; the verdicts and backoffs follow the
 * documented rule (2xx ok; a 4xx other than 408/429 refused; the rest
 * retried, then dead-lettered after the last try). */
Test(cluster_callback, post_refused_and_verdicts, .timeout = 30)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	struct lutf_cluster_reply r = {.output = "out", .output_len = 3};
	char url[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0), code;

	/* A port that was free a moment ago: connections are refused. */
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/cb", ntohs(a.sin_port));
	code = lutf_cluster_cb_post(url, "id-1", &r, false);
	cr_assert_eq(code, -ECONNREFUSED, "%d", code);
	cr_assert_eq(lutf_cluster_cb_verdict(code, 1, 10), LUTF_CLUSTER_CB_RETRY);
	cr_assert_eq(lutf_cluster_cb_verdict(code, 10, 10), LUTF_CLUSTER_CB_DEAD);
	/* Hostile headers: nothing is sent. */
	cr_assert_eq(lutf_cluster_cb_post("http://a\r\nX-Evil: 1", "id-2", &r, false), -EINVAL);
	cr_assert_eq(lutf_cluster_cb_post(url, "id\r\nX: 1", &r, false), -EINVAL);
	cr_assert_eq(lutf_cluster_cb_verdict(-EINVAL, 1, 10), LUTF_CLUSTER_CB_REFUSED);

	cr_assert_eq(lutf_cluster_cb_verdict(200, 1, 10), LUTF_CLUSTER_CB_OK);
	cr_assert_eq(lutf_cluster_cb_verdict(204, 10, 10), LUTF_CLUSTER_CB_OK);
	cr_assert_eq(lutf_cluster_cb_verdict(404, 1, 10), LUTF_CLUSTER_CB_REFUSED);
	cr_assert_eq(lutf_cluster_cb_verdict(408, 1, 10), LUTF_CLUSTER_CB_RETRY);
	cr_assert_eq(lutf_cluster_cb_verdict(429, 9, 10), LUTF_CLUSTER_CB_RETRY);
	cr_assert_eq(lutf_cluster_cb_verdict(503, 1, 10), LUTF_CLUSTER_CB_RETRY);
	cr_assert_eq(lutf_cluster_cb_verdict(503, 10, 10), LUTF_CLUSTER_CB_DEAD);
	cr_assert_eq(lutf_cluster_cb_verdict(301, 3, 10), LUTF_CLUSTER_CB_RETRY);
	cr_assert_eq(lutf_cluster_cb_backoff_ms(1), 250);
	cr_assert_eq(lutf_cluster_cb_backoff_ms(2), 500);
	cr_assert_eq(lutf_cluster_cb_backoff_ms(7), 16000);
	cr_assert_eq(lutf_cluster_cb_backoff_ms(8), 30000);
	cr_assert_eq(lutf_cluster_cb_backoff_ms(1000), 30000);
}
