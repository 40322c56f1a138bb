/* SPDX-License-Identifier: MIT */
/*
 * Labor thread ids are the worker's word, never taken on trust: a tid in the
 * region that is not a thread of the declared worker (a root process outside
 * lutf, pid 1, the front's own thread) is refused and counted as a region
 * fault, and nothing is done to it; the worker's own threads are watched; one
 * runtime holds at most its share of the labor_watch table.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_util.h"
#include "region.h"
#include "require.h"

#define WORKER_THREADS 3

static void *idle_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* A stand-in worker: a child with WORKER_THREADS extra threads, idle. */
static pid_t spawn_idle_worker(void)
{
	pid_t parent = getpid(), pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		pthread_t t;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		for (int i = 0; i < WORKER_THREADS; i++)
			pthread_create(&t, NULL, idle_thread, NULL);
		for (;;)
			pause();
	}
	return pid;
}

/* Up to cap thread ids of process pid; waits until it has want of them. */
static int task_ids(pid_t pid, int32_t *out, int cap, int want)
{
	char path[64];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	for (int tries = 0; tries < 200; tries++) {
		DIR *d = opendir(path);
		struct dirent *e;

		n = 0;
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.' && n < cap)
				out[n++] = (int32_t)atoi(e->d_name);
		if (d)
			closedir(d);
		if (n >= want)
			break;
		test_sleep_ms(10);
	}
	return n;
}

static void *map_region(const struct lutf_config *c, size_t *size)
{
	int fd;
	void *mem;

	*size = lutf_region_size(c);
	fd = memfd_create("lutf-test-tid", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)*size), 0);
	mem = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert(mem != MAP_FAILED);
	close(fd);
	cr_assert_eq(lutf_region_format(mem, *size, c, LUTF_REGION_SHARED), 0);
	return mem;
}

/* Write tid into Labor i as a worker would (tgid too: it must be ignored). */
static void forge(void *mem, uint32_t i, int32_t tid, int32_t tgid)
{
	struct lutf_region_hdr *h = mem;
	struct lutf_labor *l = (struct lutf_labor *)((char *)mem + h->off_labors) + i;

	st_relaxed(&l->tgid, tgid);
	st_release(&l->tid, tid);
	if (ld_relaxed(&h->labor_req) < i + 1)
		st_release(&h->labor_req, i + 1);
}

static bool wait_stats(struct lutf_runtime *rt, uint64_t faults, uint64_t refused, int ms,
		       struct lutf_runtime_stats *st)
{
	uint64_t until = test_now_ns() + (uint64_t)ms * 1000000ull;

	for (;;) {
		lutf_runtime_stats(rt, st);
		if (st->region_faults >= faults && st->tid_refused >= refused)
			return true;
		if (test_now_ns() >= until)
			return false;
		test_sleep_ms(10);
	}
}

static bool same_affinity(pid_t tid, const cpu_set_t *before)
{
	cpu_set_t now;

	return sched_getaffinity(tid, sizeof(now), &now) == 0 && CPU_EQUAL(&now, before);
}

/* A root process outside lutf: `sleep`, as in the issue. */
static pid_t spawn_victim(void)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	return pid;
}

Test(labor_tid, forged_tids_are_refused_and_worker_tids_watched, .timeout = 60)
{
	struct lutf_config c = test_config(1, 4);
	struct lutf_runtime_stats st;
	struct lutf_runtime *rt;
	int32_t tids[WORKER_THREADS + 1];
	cpu_set_t aff_victim, aff_self, aff_init;
	pid_t worker, victim, self = (pid_t)syscall(SYS_gettid);
	size_t size;
	void *mem;

	LUTF_REQUIRE("root", lutf_test_is_root(), "labor_watch and /proc of other uids");
	c.labors_max = 4;
	c.watch = LUTF_WATCH_BPF;
	mem = map_region(&c, &size);
	worker = spawn_idle_worker();
	victim = spawn_victim();
	cr_assert_eq(task_ids(worker, tids, WORKER_THREADS + 1, WORKER_THREADS + 1),
		     WORKER_THREADS + 1);
	cr_assert_eq(sched_getaffinity(victim, sizeof(cpu_set_t), &aff_victim), 0);
	cr_assert_eq(sched_getaffinity(self, sizeof(cpu_set_t), &aff_self), 0);
	cr_assert_eq(sched_getaffinity(1, sizeof(cpu_set_t), &aff_init), 0);

	cr_assert_eq(lutf_runtime_attach(mem, size, &rt), 0);
	lutf_runtime_stats(rt, &st);
	LUTF_REQUIRE("bpf", st.watch == LUTF_WATCH_BPF, "labor_watch did not load");
	/* Before any worker is declared no tid is used, and none is refused or
	 * a fault: it waits for the declaration (lutfd declares its worker after
	 * the attach, racing the Labors' start), then it is checked and watched. */
	forge(mem, 0, tids[1], worker);
	test_sleep_ms(300);
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.tid_refused, 0, "a tid refused before any worker was declared");
	cr_assert_eq(st.region_faults, 0);
	cr_assert_eq(st.labors_watched, 0);
	cr_assert_eq(lutf_runtime_set_worker(rt, worker), 0);
	for (uint64_t until = test_now_ns() + 3000000000ull;
	     st.labors_watched < 1 && test_now_ns() < until; test_sleep_ms(10))
		lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.labors_watched, 1,
		     "a Labor that started before its worker was declared is never watched");
	forge(mem, 0, 0, 0);
	for (uint64_t until = test_now_ns() + 3000000000ull;
	     st.labors_watched > 0 && test_now_ns() < until; test_sleep_ms(10))
		lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.labors_watched, 0, "a cleared tid is still watched");

	/* A root process outside lutf, named with its own tgid. */
	forge(mem, 0, victim, victim);
	cr_assert(wait_stats(rt, 1, 1, 3000, &st), "forged tid %d not refused (faults %llu)",
		  (int)victim, (unsigned long long)st.region_faults);
	/* pid 1, with the worker's tgid. */
	forge(mem, 1, 1, worker);
	cr_assert(wait_stats(rt, 2, 2, 3000, &st), "pid 1 not refused");
	/* The front's own thread. */
	forge(mem, 2, self, worker);
	cr_assert(wait_stats(rt, 3, 3, 3000, &st), "the front's tid not refused");
	cr_assert_eq(st.labors_watched, 0, "a forged tid was registered");

	/* The worker's own thread is watched, whatever tgid the word claims. */
	forge(mem, 3, tids[1], victim);
	for (uint64_t until = test_now_ns() + 3000000000ull;
	     st.labors_watched < 1 && test_now_ns() < until; test_sleep_ms(10))
		lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.labors_watched, 1, "the worker's own Labor is not watched");
	cr_assert_eq(st.region_faults, 3);

	/* Refused once per value, not once per tick. */
	test_sleep_ms(300);
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.tid_refused, 3, "refusals repeat: %llu",
		     (unsigned long long)st.tid_refused);

	/* A worker gone: its tids are refused, without a fault (it forged nothing). */
	kill(worker, SIGKILL);
	waitpid(worker, NULL, 0);
	forge(mem, 3, tids[2], worker);
	cr_assert(wait_stats(rt, 3, 4, 3000, &st));
	test_sleep_ms(100);
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.region_faults, 3, "a dead worker's tid counted as a forgery");

	cr_assert(same_affinity(victim, &aff_victim), "the victim's affinity changed");
	cr_assert(same_affinity(self, &aff_self), "the front's affinity changed");
	cr_assert(same_affinity(1, &aff_init), "pid 1's affinity changed");
	lutf_runtime_destroy(rt);
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	munmap(mem, size);
}

Test(labor_tid, one_runtime_holds_its_share_of_the_table, .timeout = 60)
{
	struct lutf_supervisor_opts o = {
	    .watch = LUTF_WATCH_BPF, .max_labors = 16, .max_labors_per_runtime = 2};
	struct lutf_config c = test_config(1, 4);
	struct lutf_supervisor *sup;
	struct lutf_runtime_stats st;
	struct lutf_runtime *rt;
	int32_t tids[WORKER_THREADS + 1];
	pid_t worker;
	size_t size;
	void *mem;

	LUTF_REQUIRE("root", lutf_test_is_root(), "labor_watch");
	c.labors_max = 4;
	mem = map_region(&c, &size);
	worker = spawn_idle_worker();
	cr_assert_eq(task_ids(worker, tids, WORKER_THREADS + 1, WORKER_THREADS + 1),
		     WORKER_THREADS + 1);
	cr_assert_eq(lutf_supervisor_create(&o, &sup), 0);
	LUTF_REQUIRE("bpf", lutf_supervisor_mode(sup) == LUTF_WATCH_BPF,
		     "labor_watch did not load");
	cr_assert_eq(lutf_runtime_attach_to(sup, mem, size, &rt), 0);
	cr_assert_eq(lutf_runtime_set_worker(rt, worker), 0);
	for (uint32_t i = 0; i < 4; i++)
		forge(mem, i, tids[i], worker);
	memset(&st, 0, sizeof(st));
	for (uint64_t until = test_now_ns() + 3000000000ull;
	     st.labors_watched < 2 && test_now_ns() < until; test_sleep_ms(10))
		lutf_runtime_stats(rt, &st);
	test_sleep_ms(200);
	lutf_runtime_stats(rt, &st);
	cr_assert_eq(st.labors_watched, 2, "%u Labors watched, the share is 2", st.labors_watched);
	cr_assert_eq(st.region_faults, 0);
	lutf_runtime_destroy(rt);
	lutf_supervisor_destroy(sup);
	kill(worker, SIGKILL);
	waitpid(worker, NULL, 0);
	munmap(mem, size);
}
