/* SPDX-License-Identifier: MIT */
/*
 * Shared benchmark helpers (see common.h). Nothing here allocates on a timed
 * path: callers size their sample arrays up front, so the probes below do not
 * disturb what they measure beyond one clock read or one getrusage call.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

void bench_parse_args(int argc, char **argv, const char *what, struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			o->json = true;
		} else if (strcmp(argv[i], "--quick") == 0) {
			o->quick = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: %s [--json] [--quick]\n%s\n"
			       "  --json   print the figures as one JSON object\n"
			       "  --quick  fewer iterations (smoke run)\n",
			       argv[0], what);
			exit(0);
		} else {
			fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", argv[0],
				argv[i]);
			exit(2);
		}
	}
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000000ull + (uint64_t)tv->tv_usec * 1000ull;
}

static uint64_t rusage_ns(int who)
{
	struct rusage ru;

	if (getrusage(who, &ru) != 0)
		return 0;
	return tv_ns(&ru.ru_utime) + tv_ns(&ru.ru_stime);
}

uint64_t bench_cpu_self_ns(void)
{
	return rusage_ns(RUSAGE_SELF);
}

uint64_t bench_cpu_all_ns(void)
{
	return rusage_ns(RUSAGE_SELF) + rusage_ns(RUSAGE_CHILDREN);
}

uint64_t bench_rss_bytes(void)
{
	char buf[128];
	unsigned long size = 0, resident = 0;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v: the smallest sample with at least
 * q of the samples at or below it. */
static uint64_t rank(const uint64_t *v, size_t n, double q)
{
	size_t i = (size_t)ceil(q * (double)n);

	return v[i ? i - 1 : 0];
}

void bench_stats(uint64_t *v, size_t n, struct bench_stats *st)
{
	double sum = 0;

	memset(st, 0, sizeof(*st));
	st->n = n;
	if (!n) {
		st->median = st->p99 = st->mean = NAN;
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	st->median = n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
	st->p99 = (double)rank(v, n, 0.99);
	st->mean = sum / (double)n;
}

double bench_median_d(double *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_timer_overhead_ns(void)
{
	enum { ROUNDS = 101, PER = 1000 };
	double v[ROUNDS];

	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = bench_now_ns();

		for (int i = 0; i < PER; i++)
			bench_now_ns();
		v[r] = (double)(bench_now_ns() - t0) / PER;
	}
	return bench_median_d(v, ROUNDS);
}

void bench_machine(char *buf, size_t cap)
{
	struct utsname u;

	if (uname(&u) != 0)
		snprintf(u.release, sizeof(u.release), "?");
	snprintf(buf, cap, "Linux %s, %ld CPUs online", u.release, sysconf(_SC_NPROCESSORS_ONLN));
}

/* ---- JSON ---- */

static void put_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void key(struct bench_json *j, const char *k)
{
	if (j->need_comma[j->depth])
		fputc(',', j->f);
	j->need_comma[j->depth] = true;
	if (k) {
		put_str(j->f, k);
		fputc(':', j->f);
	}
}

static void open_nest(struct bench_json *j, const char *k, char c)
{
	key(j, k);
	fputc(c, j->f);
	if (j->depth < 7)
		j->depth++;
	j->need_comma[j->depth] = false;
}

static void close_nest(struct bench_json *j, char c)
{
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
}

void bench_json_begin(struct bench_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	fputc('{', f);
	j->depth = 1;
}

void bench_json_end(struct bench_json *j)
{
	fputs("}\n", j->f);
	fflush(j->f);
}

void bench_json_obj(struct bench_json *j, const char *k)
{
	open_nest(j, k, '{');
}

void bench_json_arr(struct bench_json *j, const char *k)
{
	open_nest(j, k, '[');
}

void bench_json_close_obj(struct bench_json *j)
{
	close_nest(j, '}');
}

void bench_json_close_arr(struct bench_json *j)
{
	close_nest(j, ']');
}

void bench_json_num(struct bench_json *j, const char *k, double v)
{
	key(j, k);
	if (isnan(v) || isinf(v))
		fputs("null", j->f);
	else
		fprintf(j->f, "%.10g", v);
}

void bench_json_u64(struct bench_json *j, const char *k, uint64_t v)
{
	key(j, k);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void bench_json_bool(struct bench_json *j, const char *k, bool v)
{
	key(j, k);
	fputs(v ? "true" : "false", j->f);
}

void bench_json_str(struct bench_json *j, const char *k, const char *s)
{
	key(j, k);
	put_str(j->f, s);
}

void bench_targets_print(const struct bench_target *t, int n)
{
	printf("\n%-44s %14s %14s  %s\n", "target", "measured", "limit", "result");
	for (int i = 0; i < n; i++) {
		if (t[i].skipped) {
			printf("%-44s %14s %14s  %s\n", t[i].text, "n/a", "", "SKIP");
			continue;
		}
		printf("%-44s %12.4g%-2s %12.4g%-2s  %s\n", t[i].text, t[i].value, t[i].unit,
		       t[i].limit, t[i].unit, t[i].pass ? "PASS" : "MISS");
	}
}

void bench_targets_json(struct bench_json *j, const struct bench_target *t, int n)
{
	bench_json_obj(j, "targets");
	for (int i = 0; i < n; i++) {
		bench_json_obj(j, t[i].key);
		bench_json_str(j, "text", t[i].text);
		bench_json_num(j, "value", t[i].skipped ? NAN : t[i].value);
		bench_json_num(j, "limit", t[i].limit);
		bench_json_bool(j, "pass", !t[i].skipped && t[i].pass);
		bench_json_close_obj(j);
	}
	bench_json_close_obj(j);
}

const char *bench_fmt_ns(char *buf, size_t cap, double ns)
{
	if (isnan(ns))
		snprintf(buf, cap, "n/a");
	else if (ns < 1000)
		snprintf(buf, cap, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, cap, "%.2f us", ns / 1e3);
	else
		snprintf(buf, cap, "%.2f ms", ns / 1e6);
	return buf;
}
