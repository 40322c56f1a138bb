/* SPDX-License-Identifier: MIT */
/*
 * The view of labor_watch that lutfd lends a worker for the direct take, as a
 * hostile tenant sees it: mapped read-only (mprotect to writable refused, a
 * write faults, a write through /proc/<pid>/mem refused, from inside the
 * worker and from root outside), exactly one block of one page showing only
 * its own Labors, and no bpf-map fd left in the worker once it runs. A
 * tenant whose Labor rewrites its Cart word and the spinner word before it
 * blocks (naming another tenant's Labor) cannot touch another tenant: that
 * one's queued calls are still served first, by its own direct takes, and
 * its worker lives on.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "daemon_util.h"
#include "require.h"
#include "take_util.h"

#define CONF "carts = 1\nlabors = 4\nlabors_max = 4\nspin_us = 5000\n"

static struct td d;
static int cfd = -1;

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

static void deploy(const char *tenant)
{
	static const char *const ex[] = {"nap=nap", "quick=quick", "view=view", "lie=lie", NULL};
	struct td_reply r;

	cr_assert_eq(td_deploy(cfd, tenant, "take", TAKE_APP, ex, &r), LUTF_STATUS_OK, "deploy %s",
		     tenant);
	free(r.payload);
}

static void start(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root");
	cr_assert(td_start(&d, CONF), "lutfd did not start (log in %s)", d.log);
	/* Turned off (LUTF_LABOR_WATCH=off, LUTF_TEST_NO_BPF): skip without waiting. */
	LUTF_REQUIRE_BPF(!lutf_test_bpf_off_by() && tk_wait_bpf(&d, 15000),
			 "labor_watch did not load (see lutfd's log)");
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
}

/* One call of fn with input in; its OUTPUT into out (NUL-ended). */
static uint32_t call(int fd, const char *tenant, const char *fn, const char *in, char *out,
		     size_t cap)
{
	struct lutf_buf b;
	struct td_reply r;
	struct lutf_tlv f;
	uint32_t st;

	lutf_buf_init(&b);
	td_invoke_frame(&b, 7, tenant, fn, in, in ? strlen(in) : 0);
	st = td_call(fd, &b, &r, 5000);
	lutf_buf_free(&b);
	out[0] = 0;
	if (r.payload && td_field(&r, LUTF_TAG_OUTPUT, 0, &f))
		snprintf(out, cap, "%.*s", (int)f.len, (const char *)f.val);
	free(r.payload);
	return st;
}

Test(take_view, read_only_one_block_no_fd, .fini = teardown, .timeout = 120)
{
	char a[16], b[16], in[64], out[256], perms[5], wrote[16];
	int mp_err, pm_err, own, foreign, fd, mem;
	uint64_t lo, hi;
	uint32_t one = 1;
	pid_t pa, pb;

	start();
	snprintf(a, sizeof(a), "va%d", (int)getpid() % 100000);
	snprintf(b, sizeof(b), "vb%d", (int)getpid() % 100000);
	deploy(a);
	deploy(b);
	fd = td_connect(&d, "lutf.sock");
	cr_assert_geq(fd, 0);
	/* Both workers' Labors run, block and get registered in their blocks. */
	cr_assert_eq(tk_handoff_rounds(fd, a, 3, 1), 3);
	cr_assert_eq(tk_handoff_rounds(fd, b, 3, 1), 3);
	pa = tk_worker_pid(a);
	pb = tk_worker_pid(b);
	cr_assert(pa > 0 && pb > 0 && pa != pb);

	/* From outside: one page, r--s, and no bpf-map fd held. */
	cr_assert(tk_find_map(pa, "anon_inode:bpf-map", &lo, &hi, perms), "no view mapped");
	cr_assert_str_eq(perms, "r--s");
	cr_assert_eq(hi - lo, 4096, "the view is %llu bytes, not one page of 64 slots",
		     (unsigned long long)(hi - lo));
	cr_assert_eq(tk_count_fds(pa, "anon_inode:bpf-map"), 0, "worker %d holds a bpf-map fd",
		     (int)pa);
	cr_assert_eq(tk_count_fds(pb, "anon_inode:bpf-map"), 0);
	/* Root's write through /proc/<pid>/mem (FOLL_FORCE) is refused too: the
	 * mapping has no VM_MAYWRITE. */
	snprintf(out, sizeof(out), "/proc/%d/mem", (int)pa);
	mem = open(out, O_RDWR | O_CLOEXEC);
	cr_assert_geq(mem, 0);
	cr_assert_neq(pwrite(mem, &one, sizeof(one), (off_t)lo), (ssize_t)sizeof(one),
		      "root wrote into the worker's view");
	close(mem);

	/* From inside (the tenant's own code, confined): the same. */
	snprintf(in, sizeof(in), "%llx %llx", (unsigned long long)lo, (unsigned long long)hi);
	cr_assert_eq(call(fd, a, "view", in, out, sizeof(out)), LUTF_STATUS_OK);
	cr_assert_eq(sscanf(out, "%d %15s %d %d %d", &mp_err, wrote, &pm_err, &own, &foreign), 5,
		     "view said: %s", out);
	cr_log_info("view said: %s (mprotect errno, write, /proc/self/mem errno, own, foreign)",
		    out);
	cr_assert_eq(mp_err, EACCES, "mprotect to writable: errno %d (view said: %s)", mp_err, out);
	cr_assert_str_eq(wrote, "faulted", "view said: %s", out);
	cr_assert_neq(pm_err, 0, "a write through /proc/self/mem went in (view said: %s)", out);
	cr_assert_geq(own, 1, "no own Labor in the view (view said: %s)", out);
	cr_assert_eq(foreign, 0, "the view shows another process's Labors (view said: %s)", out);
	close(fd);
}

/* Any thread of pid but its first: a Labor (the worker's main thread reads
 * lutfd's messages). */
static pid_t other_thread(pid_t pid)
{
	char path[64];
	struct dirent *e;
	pid_t t = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	while (dir && (e = readdir(dir)) && !t)
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && atoi(e->d_name) != pid)
			t = (pid_t)atoi(e->d_name);
	if (dir)
		closedir(dir);
	return t;
}

Test(take_view, lying_words_reach_no_other_tenant, .fini = teardown, .timeout = 180)
{
	static const char *const carts[] = {"0", "1", "7", "4294967295"};
	enum { LIES = 120, ROUNDS = 20 };
	char liar[16], victim[16], in[64];
	int fa, fv, good, lied = 0;
	long long takes;
	pid_t pv, tv, pa;
	struct lutf_buf b;
	uint64_t rlo, rhi;
	char perms[5], needle[32];

	start();
	snprintf(liar, sizeof(liar), "la%d", (int)getpid() % 100000);
	snprintf(victim, sizeof(victim), "lv%d", (int)getpid() % 100000);
	deploy(liar);
	deploy(victim);
	fa = td_connect(&d, "lutf.sock");
	fv = td_connect(&d, "lutf.sock");
	cr_assert(fa >= 0 && fv >= 0);
	cr_assert_eq(tk_handoff_rounds(fv, victim, 2, 1), 2);
	cr_assert_eq(tk_handoff_rounds(fa, liar, 1, 1), 1);
	pa = tk_worker_pid(liar);
	snprintf(needle, sizeof(needle), "/memfd:lutf-%s ", liar);
	cr_assert(pa > 0 && tk_find_map(pa, needle, &rlo, &rhi, perms), "no liar region");
	pv = tk_worker_pid(victim);
	tv = other_thread(pv);
	cr_assert(pv > 0 && tv > 0);

	/* The liar's calls queue on its one Cart and run while the victim's
	 * rounds go: each rewrites its Labor's Cart word (in range, out of range)
	 * and names the victim's Labor as its spinner, then blocks. */
	lutf_buf_init(&b);
	for (int i = 0; i < LIES; i++) {
		snprintf(in, sizeof(in), "%llx %s %d", (unsigned long long)rlo, carts[i % 4],
			 (int)tv);
		td_invoke_frame(&b, 100 + (uint64_t)i, liar, "lie", in, strlen(in));
	}
	cr_assert(td_send(fa, &b));
	lutf_buf_free(&b);
	good = tk_handoff_rounds(fv, victim, ROUNDS, 3);
	for (int i = 0; i < LIES; i++) {
		struct td_reply r;

		cr_assert(td_recv(fa, &r, 10000), "the liar's call %d was not answered", i);
		lied += r.h.status == LUTF_STATUS_OK;
		free(r.payload);
	}
	cr_assert_eq(good, ROUNDS, "the victim's queued calls came first in %d of %d rounds", good,
		     ROUNDS);
	cr_assert_eq(tk_worker_pid(victim), pv, "the victim's worker was replaced");
	takes = tk_worker_takes(pv, victim);
	cr_assert_geq(takes, 1, "the victim's worker took no Cart itself");
	cr_assert_eq(kill(d.pid, 0), 0, "lutfd is gone");
	cr_assert_eq(lied, LIES, "the liar's calls: %d of %d OK", lied, LIES);
	cr_log_info("victim: %lld direct takes in %d rounds", takes, ROUNDS);
	close(fa);
	close(fv);
}
