/* SPDX-License-Identifier: MIT */
/*
 * Prometheus text exposition writer and the latency histogram. Invariant:
 * everything written is valid text format 0.0.4 whatever the label values
 * (they are escaped), and a histogram's +Inf bucket equals its _count.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

const double lutf_prom_bounds[LUTF_PROM_NBUCKETS] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,     0.1,	    0.25,   0.5,     1,	     2.5,   5,	    10,
};

/* The same bounds as le label values, as written (no exponent notation). */
static const char *const bounds_le[LUTF_PROM_NBUCKETS] = {
    "0.00001", "0.000025", "0.00005", "0.0001", "0.00025", "0.0005", "0.001",
    "0.0025",  "0.005",	   "0.01",    "0.025",	"0.05",	   "0.1",    "0.25",
    "0.5",     "1",	   "2.5",     "5",	"10",
};

/* Upper bounds in ns, for the observing side (no floating point there). */
static const uint64_t bounds_ns[LUTF_PROM_NBUCKETS] = {
    10000,     25000,	  50000,     100000,	 250000,     500000,	 1000000,
    2500000,   5000000,	  10000000,  25000000,	 50000000,   100000000,	 250000000,
    500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

static void escape(struct lutf_http_buf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep = NULL;

		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '\n')
			rep = "\\n";
		else if (*s == '"' && quote)
			rep = "\\\"";
		if (!rep)
			continue;
		lutf_http_buf_append(b, run, (size_t)(s - run));
		lutf_http_buf_append(b, rep, strlen(rep));
		run = s + 1;
	}
	lutf_http_buf_append(b, run, (size_t)(s - run));
}

void lutf_prom_family(struct lutf_http_buf *b, const char *name, enum lutf_prom_type type,
		      const char *help)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	const char *suffix = type == LUTF_PROM_COUNTER ? "_total" : "";

	lutf_http_buf_printf(b, "# HELP %s%s ", name, suffix);
	escape(b, help, false);
	lutf_http_buf_printf(b, "\n# TYPE %s%s %s\n", name, suffix, types[type]);
}

static void labels_out(struct lutf_http_buf *b, const char *const *labels, const char *le)
{
	bool any = false;

	if ((!labels || !labels[0]) && !le)
		return;
	lutf_http_buf_append(b, "{", 1);
	for (; labels && labels[0] && labels[1]; labels += 2) {
		lutf_http_buf_printf(b, "%s%s=\"", any ? "," : "", labels[0]);
		escape(b, labels[1], true);
		lutf_http_buf_append(b, "\"", 1);
		any = true;
	}
	if (le)
		lutf_http_buf_printf(b, "%sle=\"%s\"", any ? "," : "", le);
	lutf_http_buf_append(b, "}", 1);
}

void lutf_prom_u64(struct lutf_http_buf *b, const char *name, const char *const *labels,
		   uint64_t v)
{
	lutf_http_buf_append(b, name, strlen(name));
	labels_out(b, labels, NULL);
	lutf_http_buf_printf(b, " %llu\n", (unsigned long long)v);
}

static void double_str(char *s, size_t n, double v)
{
	if (isnan(v))
		snprintf(s, n, "NaN");
	else if (isinf(v))
		snprintf(s, n, v > 0 ? "+Inf" : "-Inf");
	else /* the shortest text that reads back as v */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(s, n, "%.*g", prec, v);
			if (strtod(s, NULL) == v)
				break;
		}
}

void lutf_prom_double(struct lutf_http_buf *b, const char *name, const char *const *labels,
		      double v)
{
	char s[40];

	double_str(s, sizeof(s), v);
	lutf_http_buf_append(b, name, strlen(name));
	labels_out(b, labels, NULL);
	lutf_http_buf_printf(b, " %s\n", s);
}

void lutf_prom_counter(struct lutf_http_buf *b, const char *family, const char *const *labels,
		       uint64_t v)
{
	char name[160];

	snprintf(name, sizeof(name), "%s_total", family);
	lutf_prom_u64(b, name, labels, v);
}

void lutf_prom_observe(struct lutf_prom_hist *h, uint64_t ns)
{
	unsigned i = 0;

	while (i < LUTF_PROM_NBUCKETS && ns > bounds_ns[i])
		i++;
	/* Relaxed: counters only; the reader tolerates a torn view across buckets. */
	__atomic_fetch_add(&h->bucket[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_ns, ns, __ATOMIC_RELAXED);
}

void lutf_prom_histogram(struct lutf_http_buf *b, const char *family, const char *const *labels,
			 const struct lutf_prom_hist *h)
{
	char name[160], le[32];
	uint64_t cum = 0;

	snprintf(name, sizeof(name), "%s_bucket", family);
	for (unsigned i = 0; i <= LUTF_PROM_NBUCKETS; i++) {
		cum += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
		snprintf(le, sizeof(le), "%s", i < LUTF_PROM_NBUCKETS ? bounds_le[i] : "+Inf");
		lutf_http_buf_append(b, name, strlen(name));
		labels_out(b, labels, le);
		lutf_http_buf_printf(b, " %llu\n", (unsigned long long)cum);
	}
	snprintf(name, sizeof(name), "%s_sum", family);
	lutf_prom_double(b, name, labels, (double)__atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED) / 1e9);
	snprintf(name, sizeof(name), "%s_count", family);
	lutf_prom_u64(b, name, labels, cum);
}
