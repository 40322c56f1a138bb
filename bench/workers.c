/* SPDX-License-Identifier: MIT */
/*
 * workers: a CPU-bound C function (bench/apps/cpu_app.c, fixed hashing per
 * call) through one lutfd, as two tenants side by side: one of one worker and
 * one of two (workers = 2), each worker with one Cart (carts = 1: one core's
 * worth of Labors running at once), driven by the same closed loop of client
 * threads in alternating rounds. Prints calls/s per tenant and their ratio
 * (median over rounds), the CPU its workers used (cores) and how many calls
 * ran at once on average (the calls' own start-to-end time in the workers
 * over the wall time); --json.
 * LUTF_BENCH_CGROUP=off runs lutfd with cgroup = off. Not root exits 77; a
 * failed call exits 1.
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

#define THREADS 8	   /* client connections, one call outstanding each */
#define HASH_ROUNDS "1024" /* 4 MiB hashed per call: milliseconds of CPU */

static struct bench_lutfd lutfd = {.name = "workers"};

struct drive {
	const char *tenant;
	uint64_t until_ns;
	atomic_ulong ok, bad;
	atomic_ullong busy_ns; /* sum of the calls' own run times (start to end in the worker) */
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
		char out[64];
		unsigned long long h, t0, t1;

		if (st == LUTF_STATUS_OK && td_field_str(&r, LUTF_TAG_OUTPUT, out, sizeof(out)) &&
		    sscanf(out, "%llx %llu %llu", &h, &t0, &t1) == 3 && t1 >= t0) {
			free(r.payload);
			atomic_fetch_add(&x->ok, 1);
			atomic_fetch_add(&x->busy_ns, t1 - t0);
			continue;
		}
		free(r.payload);
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

static int g_cfd = -1;

/* utime + stime of pid in clock ticks (0 when unreadable). */
static uint64_t proc_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = 0;
	p = strrchr(buf, ')');
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return ut + st;
}

/* CPU ticks of tenant's worker processes (STATUS worker<i>_pid). */
static uint64_t tenant_ticks(const char *tenant)
{
	uint64_t sum = 0, pid;
	char key[32];

	for (int w = 0; w < 16; w++) {
		snprintf(key, sizeof(key), "worker%d_pid", w);
		if (!td_tenant_counter(g_cfd, tenant, key, &pid))
			break;
		sum += pid ? proc_ticks((pid_t)pid) : 0;
	}
	return sum;
}

static double g_cores; /* of the last drive: CPU of the tenant's workers / wall time */
static double g_par;   /* of the last drive: calls' run time in the workers / wall time */

/* calls/s of tenant over ms; -1 when a call failed. */
static double drive(const char *tenant, unsigned ms)
{
	struct drive x = {.tenant = tenant};
	pthread_t th[THREADS];
	uint64_t ticks0 = tenant_ticks(tenant), t0 = bench_now_ns();

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
	{
		uint64_t wall = bench_now_ns() - t0;

		g_cores = (double)(tenant_ticks(tenant) - ticks0) / (double)sysconf(_SC_CLK_TCK) /
			  ((double)wall / 1e9);
		g_par = (double)x.busy_ns / (double)wall;
		return (double)x.ok * 1e9 / (double)wall;
	}
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
	char path[128], machine[128], loadavg[64];
	unsigned rounds, ms;
	double one[16], two[16], ratio[16], c1[16], c2[16], p1[16], p2[16], m1, m2, mr, mc1, mc2,
	    mp1, mp2;
	int cfd = -1, code = 1;
	bool nocg;
	char conf[512];
	unsigned uid_lo = 800000 + (unsigned)(getpid() % 4096) * 16;

	bench_parse_args(argc, argv, "workers = 2 against 1 for a CPU-bound C function", &o);
	if (geteuid() != 0) {
		fprintf(stderr, "workers: needs root (lutfd); skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	rounds = o.quick ? 2 : 7;
	ms = o.quick ? 300 : 1500;
	/* LUTF_BENCH_CGROUP=off: no tenant cgroups. On a busy host a tenant's
	 * cgroup gets one group's share of the CPU however many workers it
	 * has (the limits are per tenant), which hides the mechanism. */
	nocg = getenv("LUTF_BENCH_CGROUP") && !strcmp(getenv("LUTF_BENCH_CGROUP"), "off");
	/* Uids and cgroups of its own: a lutfd starting beside it (another
	 * bench, a test) kills what runs under its own range at start. */
	snprintf(conf, sizeof(conf),
		 "carts = 1\nlabors = 4\nhttp_listen = off\nadmin_listen = off\n"
		 "listen_tcp = off\nuid_range = %u-%u\ncgroup_name = lutfbw%d\n%s",
		 uid_lo, uid_lo + 15, (int)getpid(), nocg ? "cgroup = off\n" : "");
	if (bench_lutfd_start(&lutfd, conf, 10000))
		goto out;
	cfd = td_connect_unix(bench_lutfd_path(&lutfd, "control.sock", path, sizeof(path)));
	g_cfd = cfd;
	if (cfd < 0 || deploy(cfd, "one", 1) || deploy(cfd, "two", 2))
		goto out;
	/* Warm both (first calls fault pages in), then alternate which goes first. */
	if (drive("one", 100) < 0 || drive("two", 100) < 0)
		goto out;
	for (unsigned r = 0; r < rounds; r++) {
		bool two_first = r & 1;

		if (two_first && (two[r] = drive("two", ms)) < 0)
			goto out;
		c2[r] = two_first ? g_cores : c2[r];
		p2[r] = two_first ? g_par : p2[r];
		if ((one[r] = drive("one", ms)) < 0)
			goto out;
		c1[r] = g_cores;
		p1[r] = g_par;
		if (!two_first && (two[r] = drive("two", ms)) < 0)
			goto out;
		c2[r] = two_first ? c2[r] : g_cores;
		p2[r] = two_first ? p2[r] : g_par;
		ratio[r] = two[r] / one[r];
	}
	m1 = bench_median_d(one, rounds);
	m2 = bench_median_d(two, rounds);
	mr = bench_median_d(ratio, rounds);
	mc1 = bench_median_d(c1, rounds);
	mc2 = bench_median_d(c2, rounds);
	mp1 = bench_median_d(p1, rounds);
	mp2 = bench_median_d(p2, rounds);
	bench_machine(machine, sizeof(machine));
	{
		FILE *fp = fopen("/proc/loadavg", "r");

		if (!fp || !fgets(loadavg, sizeof(loadavg), fp))
			snprintf(loadavg, sizeof(loadavg), "?");
		loadavg[strcspn(loadavg, "\n")] = 0;
		if (fp)
			fclose(fp);
	}
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
		bench_json_num(&j, "workers1_cores", mc1);
		bench_json_num(&j, "workers2_cores", mc2);
		bench_json_num(&j, "workers1_calls_running", mp1);
		bench_json_num(&j, "workers2_calls_running", mp2);
		bench_json_str(&j, "loadavg", loadavg);
		bench_json_bool(&j, "tenant_cgroups", !nocg);
		bench_json_end(&j);
	} else {
		printf("workers: CPU-bound C function (%d KiB FNV-1a per call), %d client "
		       "threads, carts = 1 per worker, tenant cgroups %s\n%s; %u rounds of %u ms, "
		       "medians\n\n",
		       4 * atoi(HASH_ROUNDS), THREADS, nocg ? "off" : "on", machine, rounds, ms);
		printf("%-24s %12s %14s %14s\n", "tenant", "calls/s", "worker cores",
		       "calls running");
		printf("%-24s %12.0f %14.2f %14.2f\n", "workers = 1 (baseline)", m1, mc1, mp1);
		printf("%-24s %12.0f %14.2f %14.2f\n", "workers = 2", m2, mc2, mp2);
		printf("%-24s %11.2fx\n", "ratio (median of rounds)", mr);
		printf("\nhost load average at the end: %s\n", loadavg);
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
