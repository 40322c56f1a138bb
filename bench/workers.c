/* SPDX-License-Identifier: MIT */
/*
 * workers: a CPU-bound C function (bench/apps/cpu_app.c, fixed hashing per
 * call) through one lutfd, as two tenants side by side: one of one worker and
 * one of two (workers = 2), each worker with one Cart (carts = 1: one core's
 * worth of Labors running at once), driven by the same closed loop of client
 * threads in alternating rounds. Prints calls/s per tenant and their ratio
 * (median over rounds); --json. Not root exits 77; a failed call exits 1.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "daemon_util.h"
#include "lutfd_util.h"

#define THREADS 8	 /* client connections, one call outstanding each */
#define HASH_ROUNDS "64" /* 256 KiB hashed per call */

static struct bench_lutfd lutfd = {.name = "workers"};

struct drive {
	const char *tenant;
	uint64_t until_ns;
	atomic_ulong ok, bad;
	atomic_uint first_bad;
};

static void *driver(void *arg)
{
	struct drive *x = arg;
	char path[128];
	int fd = td_connect_unix(bench_lutfd_path(&lutfd, "lutf.sock", path, sizeof(path)));
	struct lutf_buf b;

	lutf_buf_init(&b);
	td_invoke_frame(&b, 1, x->tenant, "hash", HASH_ROUNDS, strlen(HASH_ROUNDS));
	while (fd >= 0 && bench_now_ns() < x->until_ns) {
		struct td_reply r;
		uint32_t st = td_call(fd, &b, &r, 10000);

		free(r.payload);
		if (st == LUTF_STATUS_OK) {
			atomic_fetch_add(&x->ok, 1);
			continue;
		}
		atomic_fetch_add(&x->bad, 1);
		atomic_store(&x->first_bad, st);
		break;
	}
	if (fd < 0)
		atomic_fetch_add(&x->bad, 1);
	else
		close(fd);
	lutf_buf_free(&b);
	return NULL;
}

/* calls/s of tenant over ms; -1 when a call failed. */
static double drive(const char *tenant, unsigned ms)
{
	struct drive x = {.tenant = tenant};
	pthread_t th[THREADS];
	uint64_t t0 = bench_now_ns();

	x.until_ns = t0 + (uint64_t)ms * 1000000ull;
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, driver, &x);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	if (x.bad) {
		fprintf(stderr, "workers: %s: %lu calls failed (status %u)\n", tenant,
			(unsigned long)x.bad, x.first_bad);
		return -1;
	}
	return (double)x.ok * 1e9 / (double)(bench_now_ns() - t0);
}

static int deploy(int cfd, const char *tenant, uint32_t workers)
{
	static const char *const ex[] = {"hash=hash", NULL};
	struct td_deploy_opts o = {.tier = "basic", .workers = workers};
	struct td_reply r;
	uint64_t up = 0;
	uint32_t st = td_deploy_with(cfd, tenant, "cpu", CPU_SO, ex, &o, &r);

	free(r.payload);
	if (st != LUTF_STATUS_OK) {
		fprintf(stderr, "workers: deploy %s: status %u\n", tenant, st);
		return -1;
	}
	if (!td_wait_tenant_counter(cfd, tenant, "workers_up", workers, 10000, &up)) {
		fprintf(stderr, "workers: %s: %llu of %u workers up\n", tenant,
			(unsigned long long)up, workers);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	char path[128], machine[128];
	unsigned rounds, ms;
	double one[16], two[16], ratio[16], m1, m2, mr;
	int cfd = -1, code = 1;

	bench_parse_args(argc, argv, "workers = 2 against 1 for a CPU-bound C function", &o);
	if (geteuid() != 0) {
		fprintf(stderr, "workers: needs root (lutfd); skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	rounds = o.quick ? 2 : 7;
	ms = o.quick ? 300 : 1500;
	if (bench_lutfd_start(&lutfd, "carts = 1\nlabors = 4\n", 10000))
		goto out;
	cfd = td_connect_unix(bench_lutfd_path(&lutfd, "control.sock", path, sizeof(path)));
	if (cfd < 0 || deploy(cfd, "one", 1) || deploy(cfd, "two", 2))
		goto out;
	/* Warm both (first calls fault pages in), then alternate which goes first. */
	if (drive("one", 100) < 0 || drive("two", 100) < 0)
		goto out;
	for (unsigned r = 0; r < rounds; r++) {
		bool two_first = r & 1;

		if (two_first && (two[r] = drive("two", ms)) < 0)
			goto out;
		if ((one[r] = drive("one", ms)) < 0)
			goto out;
		if (!two_first && (two[r] = drive("two", ms)) < 0)
			goto out;
		ratio[r] = two[r] / one[r];
	}
	m1 = bench_median_d(one, rounds);
	m2 = bench_median_d(two, rounds);
	mr = bench_median_d(ratio, rounds);
	bench_machine(machine, sizeof(machine));
	if (o.json) {
		struct bench_json j;

		bench_json_begin(&j, stdout);
		bench_json_str(&j, "bench", "workers");
		bench_json_str(&j, "machine", machine);
		bench_json_u64(&j, "threads", THREADS);
		bench_json_u64(&j, "rounds", rounds);
		bench_json_u64(&j, "round_ms", ms);
		bench_json_u64(&j, "hash_kib_per_call", 4 * (uint64_t)atoi(HASH_ROUNDS));
		bench_json_num(&j, "workers1_calls_per_s", m1);
		bench_json_num(&j, "workers2_calls_per_s", m2);
		bench_json_num(&j, "ratio", mr);
		bench_json_end(&j);
	} else {
		printf("workers: CPU-bound C function (%d KiB FNV-1a per call), %d client "
		       "threads, carts = 1 per worker\n%s; %u rounds of %u ms, medians\n\n",
		       4 * atoi(HASH_ROUNDS), THREADS, machine, rounds, ms);
		printf("%-24s %12s\n", "tenant", "calls/s");
		printf("%-24s %12.0f\n", "workers = 1 (baseline)", m1);
		printf("%-24s %12.0f\n", "workers = 2", m2);
		printf("%-24s %11.2fx\n", "ratio (median of rounds)", mr);
	}
	code = 0;
out:
	if (cfd >= 0)
		close(cfd);
	if (code)
		bench_lutfd_show_log(&lutfd);
	if (bench_lutfd_stop(&lutfd, 5000))
		code = 1;
	return code;
}
