/* SPDX-License-Identifier: MIT */
/*
 * Looking into a tenant worker of lutfd from outside (root): its pid by name,
 * its mappings (/proc/<pid>/maps), and the words its Labors keep in the
 * region (takes: the Carts each took itself, the direct take), read through
 * /proc/<pid>/map_files. What the worker reports about itself: for tests and
 * bench/daemon_take, never for lutfd. Every read is bounded.
 */
#ifndef LUTF_TEST_TAKE_UTIL_H
#define LUTF_TEST_TAKE_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region.h" /* struct lutf_region_hdr, struct lutf_labor */

/* The pids (at most max) of live processes whose comm is "lutf-w-<tenant>"
 * (cut to 15 bytes: keep tenant names of tests short and unique). Returns
 * how many. */
static inline int tk_worker_pids(const char *tenant, pid_t *pids, int max)
{
	char want[96], path[300], comm[32];
	struct dirent *e;
	int n = 0;
	DIR *d = opendir("/proc");

	snprintf(want, sizeof(want), "lutf-w-%.80s", tenant);
	want[15] = 0; /* the kernel keeps 15 bytes of a name */
	while (d && (e = readdir(d)) && n < max) {
		FILE *fp;
		char *nl;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (fgets(comm, sizeof(comm), fp)) {
			nl = strchr(comm, '\n');
			if (nl)
				*nl = 0;
			if (strcmp(comm, want) == 0)
				pids[n++] = (pid_t)atoi(e->d_name);
		}
		fclose(fp);
	}
	if (d)
		closedir(d);
	return n;
}

/* The pid of the (first) worker of tenant, or 0. */
static inline pid_t tk_worker_pid(const char *tenant)
{
	pid_t pid = 0;

	return tk_worker_pids(tenant, &pid, 1) == 1 ? pid : 0;
}

/* The first mapping of pid whose line contains needle: its range and its
 * permissions ("r--s"). false when none. */
static inline bool tk_find_map(pid_t pid, const char *needle, uint64_t *lo, uint64_t *hi,
			       char perms[5])
{
	char path[64], line[512];
	bool ok = false;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fp = fopen(path, "r");
	while (fp && !ok && fgets(line, sizeof(line), fp)) {
		unsigned long long a, b;
		char p[5];

		if (!strstr(line, needle) || sscanf(line, "%llx-%llx %4s", &a, &b, p) != 3)
			continue;
		*lo = a;
		*hi = b;
		memcpy(perms, p, 5);
		ok = true;
	}
	if (fp)
		fclose(fp);
	return ok;
}

/* Count pid's open fds whose link reads exactly target ("anon_inode:bpf-map"). */
static inline int tk_count_fds(pid_t pid, const char *target)
{
	char path[64], link[256], lk[340];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		ssize_t l;

		if (e->d_name[0] == '.')
			continue;
		snprintf(lk, sizeof(lk), "%s/%s", path, e->d_name);
		l = readlink(lk, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		n += strcmp(link, target) == 0;
	}
	if (d)
		closedir(d);
	return n;
}

/* Sum of the takes words of the worker's Labors: the region mapped through
 * /proc/<pid>/map_files (the memfd "lutf-<tenant>"). -1 when it cannot be
 * read. The worker's own word: what it reports, nothing lutfd trusts. */
static inline long long tk_worker_takes(pid_t pid, const char *tenant)
{
	char needle[96], path[128], perms[5];
	const struct lutf_region_hdr *h;
	uint64_t lo, hi;
	long long sum = 0;
	void *p;
	int fd;

	snprintf(needle, sizeof(needle), "/memfd:lutf-%s ", tenant);
	if (!tk_find_map(pid, needle, &lo, &hi, perms))
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)lo, (unsigned long long)hi);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	p = mmap(NULL, hi - lo, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	h = p;
	if (h->off_labors >= hi - lo ||
	    (uint64_t)h->cfg.labors_max * sizeof(struct lutf_labor) > hi - lo - h->off_labors) {
		munmap(p, hi - lo);
		return -1;
	}
	for (uint32_t i = 0; i < h->cfg.labors_max; i++) {
		const struct lutf_labor *l =
		    (const struct lutf_labor *)((const char *)p + h->off_labors) + i;

		sum += __atomic_load_n(&l->takes, __ATOMIC_RELAXED);
	}
	munmap(p, hi - lo);
	return sum;
}

#ifdef LUTF_TEST_DAEMON_UTIL_H /* the tests' lutfd harness: calls through it */

/* Wait up to ms for lutfd's log to say labor_watch is loaded (it loads beside
 * lutfd's start; a worker spawned before is lent no view); false at once when
 * it says another watch mode. */
static inline bool tk_wait_bpf(const struct td *d, int ms)
{
	uint64_t until = td_now_ms() + (uint64_t)ms;

	while (td_now_ms() < until) {
		size_t len;
		uint8_t *log = td_slurp(d->log, &len);
		bool ok = log && memmem(log, len, "watch mode bpf", 14);
		bool other = log && !ok && memmem(log, len, "supervisor: watch mode ", 23);

		free(log);
		if (ok || other)
			return ok; /* said, one way or the other */
		td_sleep_ms(10);
	}
	return false;
}

/*
 * rounds of one "nap" (blocks 20 ms) and n_quick "quick" calls pipelined on
 * fd for tenant, the next round sent as soon as the last one is answered (the
 * Labor that ran nap is then FREE and spinning). Returns the rounds in which
 * every quick call was answered OK before nap (served by another Labor while
 * nap blocked), or -1 when a call failed or was not answered.
 */
static inline int tk_handoff_rounds(int fd, const char *tenant, int rounds, int n_quick)
{
	int good = 0;

	for (int i = 0; i < rounds; i++) {
		uint64_t base = 1000 * (uint64_t)(i + 1);
		int quick_done = 0;
		bool first_ok = true;
		struct lutf_buf b;

		lutf_buf_init(&b);
		td_invoke_frame(&b, base, tenant, "nap", NULL, 0);
		for (int q = 1; q <= n_quick; q++)
			td_invoke_frame(&b, base + (uint64_t)q, tenant, "quick", NULL, 0);
		if (!td_send(fd, &b)) {
			lutf_buf_free(&b);
			return -1;
		}
		lutf_buf_free(&b);
		for (int k = 0; k <= n_quick; k++) {
			struct td_reply r;

			if (!td_recv(fd, &r, 5000))
				return -1;
			free(r.payload);
			if (r.h.status != LUTF_STATUS_OK)
				return -1;
			if (r.h.request_id == base)
				first_ok = first_ok && quick_done == n_quick;
			else
				quick_done++;
		}
		good += first_ok;
	}
	return good;
}

#endif /* LUTF_TEST_DAEMON_UTIL_H */

#endif /* LUTF_TEST_TAKE_UTIL_H */
