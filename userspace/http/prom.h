/* SPDX-License-Identifier: MIT */
/*
 * Prometheus text exposition (format 0.0.4): a writer for HELP/TYPE lines and
 * samples with escaped labels, and a latency histogram that any number of
 * threads record into with relaxed atomic adds and one reader exposes.
 * Output goes to a struct lutf_http_buf (check its err at the end).
 */
#ifndef LUTF_PROM_H
#define LUTF_PROM_H

#include <stdint.h>

#include "http.h"

enum lutf_prom_type { LUTF_PROM_COUNTER, LUTF_PROM_GAUGE, LUTF_PROM_HISTOGRAM };

/*
 * Start a metric family: "# HELP name help" and "# TYPE name type". name is
 * the family name without suffix (counters: without "_total"; the samples
 * add it). Every sample of a family must follow its header, together.
 */
void lutf_prom_family(struct lutf_http_buf *b, const char *name, enum lutf_prom_type type,
		      const char *help);

/*
 * One sample: name{labels} value. labels: NULL or a NULL-terminated array of
 * alternating names and values ("tenant", "demo", NULL); values are escaped
 * (backslash, double quote, newline).
 */
void lutf_prom_u64(struct lutf_http_buf *b, const char *name, const char *const *labels,
		   uint64_t v);
void lutf_prom_double(struct lutf_http_buf *b, const char *name, const char *const *labels,
		      double v);
/* A counter sample: name_total{labels} v. */
void lutf_prom_counter(struct lutf_http_buf *b, const char *family, const char *const *labels,
		       uint64_t v);

/* Latency buckets, upper bounds in seconds: 10 us .. 10 s, then +Inf. */
#define LUTF_PROM_NBUCKETS 19
extern const double lutf_prom_bounds[LUTF_PROM_NBUCKETS];

struct lutf_prom_hist {
	/* Non-cumulative counts; [LUTF_PROM_NBUCKETS] is the +Inf overflow. */
	uint64_t bucket[LUTF_PROM_NBUCKETS + 1];
	uint64_t sum_ns;
};

/* Record one observation of ns nanoseconds. Any thread; relaxed atomics. */
void lutf_prom_observe(struct lutf_prom_hist *h, uint64_t ns);

/*
 * The samples of one histogram (under a lutf_prom_family(... HISTOGRAM)):
 * family_bucket{labels,le="..."} cumulative, family_sum (seconds) and
 * family_count. _count equals the +Inf bucket even while writers run
 * (both come from one snapshot of the buckets).
 */
void lutf_prom_histogram(struct lutf_http_buf *b, const char *family, const char *const *labels,
			 const struct lutf_prom_hist *h);

#endif /* LUTF_PROM_H */
