/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the benchmark programs in bench/: command line, clocks,
 * CPU time and RSS probes, percentiles, and a tiny JSON writer so every
 * program can print the same figures as a table or as one JSON object.
 */
#ifndef LUTF_BENCH_COMMON_H
#define LUTF_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct bench_opts {
	bool json;  /* --json: one JSON object on stdout instead of the table */
	bool quick; /* --quick: fewer iterations, a smoke run for CI */
};

/* Parse --json, --quick, --help. Exits 0 on --help and 2 on a bad argument. */
void bench_parse_args(int argc, char **argv, const char *what, struct bench_opts *o);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* User + system CPU time of this process (all threads), in nanoseconds. */
uint64_t bench_cpu_self_ns(void);

/* As bench_cpu_self_ns plus that of waited-for children. */
uint64_t bench_cpu_all_ns(void);

/* Resident set size from /proc/self/statm, in bytes; 0 if unreadable. */
uint64_t bench_rss_bytes(void);

/* Sleep for ns nanoseconds (restarting on EINTR). */
void bench_sleep_ns(uint64_t ns);

/* Median, 99th percentile and mean of n samples; sorts v in place. */
struct bench_stats {
	size_t n;
	double median;
	double p99;
	double mean;
};
void bench_stats(uint64_t *v, size_t n, struct bench_stats *st);

/* Median of n doubles; sorts v in place. */
double bench_median_d(double *v, size_t n);

/* Median cost of one clock_gettime(CLOCK_MONOTONIC) in ns (timer overhead). */
double bench_timer_overhead_ns(void);

/* "Linux 6.1.0, 2 CPUs" into buf. */
void bench_machine(char *buf, size_t cap);

/* A streaming JSON writer with comma bookkeeping, nesting up to 8 deep. */
struct bench_json {
	FILE *f;
	int depth;
	bool need_comma[8];
};
void bench_json_begin(struct bench_json *j, FILE *f);
void bench_json_end(struct bench_json *j);
/* Open/close a nested object; key is NULL inside an array. */
void bench_json_obj(struct bench_json *j, const char *key);
void bench_json_arr(struct bench_json *j, const char *key);
void bench_json_close_obj(struct bench_json *j);
void bench_json_close_arr(struct bench_json *j);
/* A number; NaN or infinity is written as null ("n/a"). */
void bench_json_num(struct bench_json *j, const char *key, double v);
void bench_json_u64(struct bench_json *j, const char *key, uint64_t v);
void bench_json_bool(struct bench_json *j, const char *key, bool v);
void bench_json_str(struct bench_json *j, const char *key, const char *s);

/* A target from an issue, measured in this run. skipped: could not be
 * measured here (printed SKIP, JSON value null). */
struct bench_target {
	const char *key, *text;
	double value, limit;
	bool pass;
	const char *unit;
	bool skipped;
};

/* The "target / measured / limit / result" table, and the same as JSON
 * (an object "targets" keyed by target key). */
void bench_targets_print(const struct bench_target *t, int n);
void bench_targets_json(struct bench_json *j, const struct bench_target *t, int n);

/* ns as "812 ns", "1.25 us" or "3.10 ms" ("n/a" for NaN) into buf; returns buf. */
const char *bench_fmt_ns(char *buf, size_t cap, double ns);

#endif /* LUTF_BENCH_COMMON_H */
