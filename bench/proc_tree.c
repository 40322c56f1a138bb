/* SPDX-License-Identifier: MIT */
/*
 * A server's process tree as /proc shows it: the processes below a pid, the
 * context switches and CPU time of every thread of them, and whether every
 * thread is pinned to one CPU. Invariant: every walk is bounded (the pid
 * list by its cap, the descendant passes by the list's length).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_tree.h"

/* pid and every process below it (lutfd: zygote, watcher, workers), root
 * first; returns how many (at most cap). */
size_t bench_proc_tree(pid_t root, pid_t *out, size_t cap)
{
	size_t n = 0, np = 0, capp = 4096;
	pid_t(*pp)[2] = malloc(capp * sizeof(*pp));
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool grew = true;

	if (cap)
		out[n++] = root;
	while (pp && d && (e = readdir(d))) {
		char path[300], buf[512], *p;
		int fd, k;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		k = (int)read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (k <= 0)
			continue;
		buf[k] = 0;
		p = strrchr(buf, ')'); /* the name may hold anything */
		if (!p || np == capp)
			continue;
		pp[np][0] = (pid_t)atoi(e->d_name);
		pp[np][1] = (pid_t)strtol(p + 4, NULL, 10); /* ") S ppid" */
		np++;
	}
	if (d)
		closedir(d);
	/* Bounded: each pass adds at least one process or ends. */
	while (grew && pp) {
		grew = false;
		for (size_t i = 0; i < np; i++) {
			bool in = false, parent = false;

			for (size_t j = 0; j < n; j++) {
				in |= out[j] == pp[i][0];
				parent |= out[j] == pp[i][1];
			}
			if (!in && parent && n < cap) {
				out[n++] = pp[i][0];
				grew = true;
			}
		}
	}
	free(pp);
	return n;
}

/* Calls fn(tid, arg) on every thread of pid. */
static void each_task(pid_t pid, void (*fn)(pid_t tid, void *arg), void *arg)
{
	char path[64];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d)))
		if (isdigit((unsigned char)e->d_name[0]))
			fn((pid_t)atoi(e->d_name), arg);
	if (d)
		closedir(d);
}

static void add_cs(pid_t tid, void *arg)
{
	struct bench_tstat *t = arg;
	char path[64], line[128];
	unsigned long long ns;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	fp = fopen(path, "re");
	while (fp && fgets(line, sizeof(line), fp)) {
		if (!strncmp(line, "voluntary_ctxt_switches:", 24))
			t->cs += strtoull(line + 24, NULL, 10);
		else if (!strncmp(line, "nonvoluntary_ctxt_switches:", 27))
			t->cs += strtoull(line + 27, NULL, 10);
	}
	if (fp)
		fclose(fp);
	/* schedstat: ns on a CPU, ns waiting, timeslices. */
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)tid);
	fp = fopen(path, "re");
	if (fp && fscanf(fp, "%llu", &ns) == 1)
		t->cpu_ns += ns;
	if (fp)
		fclose(fp);
}

/* Context switches and CPU time so far, every thread: of root itself, and of
 * the processes below it. (A thread that exited between two reads takes its
 * counts with it: lutfd's and nginx's threads live through a run.) */
void bench_tree_stat(pid_t root, struct bench_tstat *self, struct bench_tstat *kids)
{
	pid_t p[256];
	size_t n = bench_proc_tree(root, p, 256);

	*self = *kids = (struct bench_tstat){0};
	for (size_t i = 0; i < n; i++)
		each_task(p[i], add_cs, i ? kids : self);
}

struct pin_check {
	int cpu;
	unsigned tasks, off; /* tasks seen, of which not on cpu alone */
};

static void check_pin(pid_t tid, void *arg)
{
	struct pin_check *c = arg;
	cpu_set_t s;

	c->tasks++;
	if (sched_getaffinity(tid, sizeof(s), &s) == 0 &&
	    (CPU_COUNT(&s) != 1 || !CPU_ISSET(c->cpu, &s)))
		c->off++;
}

/* Is every thread of root and of every process below it on cpu alone? */
bool bench_tree_pinned(pid_t root, int cpu)
{
	struct pin_check c = {.cpu = cpu};
	pid_t p[256];
	size_t n = bench_proc_tree(root, p, 256);

	for (size_t i = 0; i < n; i++)
		each_task(p[i], check_pin, &c);
	if (!c.tasks || c.off)
		fprintf(stderr, "%u of %u tasks under pid %d not on CPU %d alone\n", c.off, c.tasks,
			(int)root, cpu);
	return c.tasks && !c.off;
}
