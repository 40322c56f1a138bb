/* SPDX-License-Identifier: MIT */
/* The Prometheus writer and latency histogram, checked by a strict parser. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_parse.h"
#include "prom_sample.h"

TestSuite(prom, .timeout = 60);

static char *text(struct lutf_http_buf *b)
{
	lutf_http_buf_append(b, "", 1);
	cr_assert_eq(b->err, 0);
	return b->data;
}

Test(prom, sample_exposition_passes_the_strict_parser)
{
	struct lutf_http_buf b = {0};
	char err[256];
	int n = 0;

	prom_sample(&b);
	cr_assert_eq(prom_parse(text(&b), err, sizeof(err), &n), 0, "%s\n%s", err, b.data);
	/* 3 counters + 2 x (20 buckets + sum + count) + 1 + 2 + 1 */
	cr_assert_eq(n, 3 + 2 * 22 + 4);
	lutf_http_buf_free(&b);
}

Test(prom, exact_bytes_and_escaping)
{
	static const char *const l[] = {"a", "x\\y\"z\nw", "b", "", NULL};
	struct lutf_http_buf b = {0};

	lutf_prom_family(&b, "lutf_x", LUTF_PROM_COUNTER, "Help with \\ and\nline.");
	lutf_prom_counter(&b, "lutf_x", l, 18446744073709551615ull);
	lutf_prom_family(&b, "lutf_g", LUTF_PROM_GAUGE, "G.");
	lutf_prom_double(&b, "lutf_g", NULL, 0.5);
	lutf_prom_double(&b, "lutf_g", l + 2, -1.0 / 0.0);
	cr_assert_str_eq(text(&b), "# HELP lutf_x_total Help with \\\\ and\\nline.\n"
				   "# TYPE lutf_x_total counter\n"
				   "lutf_x_total{a=\"x\\\\y\\\"z\\nw\",b=\"\"} 18446744073709551615\n"
				   "# HELP lutf_g G.\n# TYPE lutf_g gauge\nlutf_g 0.5\n"
				   "lutf_g{b=\"\"} -Inf\n");
	lutf_http_buf_free(&b);
}

Test(prom, histogram_buckets_sum_count)
{
	static const char *const l[] = {"function", "f", NULL};
	struct lutf_prom_hist h = {0};
	struct lutf_http_buf b = {0};
	char err[256];

	lutf_prom_observe(&h, 10000);	    /* exactly 10 us: first bucket (le is inclusive) */
	lutf_prom_observe(&h, 10001);	    /* 25 us bucket */
	lutf_prom_observe(&h, 3000000);	    /* 5 ms bucket */
	lutf_prom_observe(&h, 20000000000); /* 20 s: only +Inf */
	lutf_prom_histogram(&b, "h_seconds", l, &h);
	text(&b);
	cr_assert(strstr(b.data, "h_seconds_bucket{function=\"f\",le=\"0.00001\"} 1\n"));
	cr_assert(strstr(b.data, "h_seconds_bucket{function=\"f\",le=\"0.000025\"} 2\n"));
	cr_assert(strstr(b.data, "h_seconds_bucket{function=\"f\",le=\"0.0025\"} 2\n"));
	cr_assert(strstr(b.data, "h_seconds_bucket{function=\"f\",le=\"0.005\"} 3\n"));
	cr_assert(strstr(b.data, "h_seconds_bucket{function=\"f\",le=\"10\"} 3\n"));
	cr_assert(strstr(b.data, "h_seconds_bucket{function=\"f\",le=\"+Inf\"} 4\n"));
	cr_assert(strstr(b.data, "h_seconds_sum{function=\"f\"} 20.003020001\n"), "%s", b.data);
	cr_assert(strstr(b.data, "h_seconds_count{function=\"f\"} 4\n"));
	b.len--;
	{
		struct lutf_http_buf all = {0};

		lutf_prom_family(&all, "h_seconds", LUTF_PROM_HISTOGRAM, "H.");
		lutf_http_buf_append(&all, b.data, b.len);
		cr_assert_eq(prom_parse(text(&all), err, sizeof(err), NULL), 0, "%s", err);
		lutf_http_buf_free(&all);
	}
	lutf_http_buf_free(&b);
}

static struct lutf_prom_hist shared_h;

static void *observer(void *arg)
{
	for (uint64_t i = 0; i < 100000; i++)
		lutf_prom_observe(&shared_h, (i * 7919) % 2000000000);
	return NULL;
}

Test(prom, concurrent_observers_lose_nothing)
{
	static const char *const l[] = {"function", "f", NULL};
	struct lutf_http_buf b = {0};
	pthread_t th[4];

	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, observer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	lutf_prom_histogram(&b, "h", l, &shared_h);
	cr_assert(strstr(text(&b), "h_count{function=\"f\"} 400000\n"), "%s", b.data);
	lutf_http_buf_free(&b);
}

/* The parser must refuse what is wrong, or the tests above prove nothing. */
Test(prom, strict_parser_refuses_bad_text)
{
	static const char *const bad[] = {
	    "",
	    "x 1",					      /* no newline */
	    "x 1\n",					      /* no TYPE */
	    "# TYPE x gauge\n\nx 1\n",			      /* blank line */
	    "# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n",   /* duplicate series */
	    "# TYPE x gauge\nx{a=\"\\t\"} 1\n",		      /* bad escape */
	    "# TYPE x gauge\nx{a=1} 1\n",		      /* unquoted */
	    "# TYPE x gauge\nx 1 123\n",		      /* timestamp */
	    "# TYPE x gauge\nx one\n",			      /* bad value */
	    "# TYPE x counter\nx 1\n",			      /* counter without _total */
	    "# TYPE x_total counter\nx_total -1\n",	      /* negative counter */
	    "# TYPE x gauge\n# TYPE y gauge\nx 1\n",	      /* sample outside block */
	    "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n# HELP x again\n", /* not contiguous */
	    "# TYPE x gauge\n# TYPE x gauge\n",		      /* second TYPE */
	    "# free comment\n",				      /* comment */
	    "# TYPE 1x gauge\n",			      /* bad name */
	    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"0.5\"} 2\n"
	    "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n", /* le decreasing */
	    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n"
	    "h_count 1\n", /* not cumulative */
	    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", /* count */
	    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n",	       /* no sum */
	    "# TYPE x gauge\nx{le=\"1\"} 1\n",				       /* le */
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_neq(prom_parse(bad[i], err, sizeof(err), NULL), 0, "accepted #%zu: %s", i,
			      bad[i]);
	cr_assert_eq(prom_parse("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
				"h_sum 1.5\nh_count 2\n",
				err, sizeof(err), NULL),
		     0, "%s", err);
}
