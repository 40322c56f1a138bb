/* SPDX-License-Identifier: MIT */
/*
 * The split the daemon uses: Labors in a forked child, the Supervisor and
 * the submitter in the parent, over one memfd region mapped by both.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_util.h"
#include "region.h"

LUTF_FUNCTION(c_echo)
{
	return lutf_write(call, call->input, call->input_len);
}

/* Blocks the first Labor that runs it for 300 ms: the Cart must move. */
LUTF_FUNCTION(c_block)
{
	unsigned ms = 0;

	if (call->input_len == sizeof(ms))
		memcpy(&ms, call->input, sizeof(ms));
	test_sleep_ms(ms);
	return lutf_write(call, "b", 1);
}

static void *child_mem;
static size_t child_size;

/* A hostile function: scribbles over the Brick table, rings and arena head. */
LUTF_FUNCTION(c_scribble)
{
	struct lutf_region_hdr *h = child_mem;

	memset((char *)child_mem + h->off_bricks, 0xa5, h->off_arena - h->off_bricks);
	return 0;
}

static int child_resolve(void *ctx, uint32_t slot, const char *name, struct lutf_fn_binding *out)
{
	if (strcmp(name, "scribble") == 0) {
		out->fn = c_scribble;
		return 0;
	}
	if (strcmp(name, "echo") == 0)
		out->fn = c_echo;
	else if (strcmp(name, "block") == 0)
		out->fn = c_block;
	else
		return -ENOENT;
	return 0;
}

static pid_t spawn_worker(void *mem, size_t size)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct lutf_labor_host host = {.resolve = child_resolve};
		struct lutf_labors *lb;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		child_mem = mem;
		child_size = size;
		if (lutf_labors_start(mem, size, &host, &lb))
			_exit(3);
		lutf_labors_wait(lb); /* returns when the front stops the region */
		_exit(0);
	}
	return pid;
}

Test(shared_region, labors_in_a_child_process, .timeout = 60)
{
	enum { N = 20000 };
	struct lutf_config c = test_config(2, 6);
	static struct lutf_completion out[256];
	static uint8_t seen[N];
	struct lutf_runtime *rt;
	struct lutf_runtime_stats st;
	struct lutf_result res;
	uint32_t echo, block, unknown;
	size_t size;
	void *mem;
	int fd, status, got = 0, sent = 0;
	unsigned ms = 300;
	pid_t pid;

	c.grace_ns = 1000000;
	size = lutf_region_size(&c);
	fd = memfd_create("lutf-test-region", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert(mem != MAP_FAILED);
	cr_assert_eq(lutf_region_format(mem, size, &c, LUTF_REGION_SHARED), 0);
	pid = spawn_worker(mem, size);

	cr_assert_eq(lutf_runtime_attach(mem, size, &rt), 0);
	cr_assert_eq(lutf_runtime_set_worker(rt, pid), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "echo", NULL, &echo), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "block", NULL, &block), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "nowhere", NULL, &unknown), 0);

	lutf_runtime_invoke(rt, echo, &(struct lutf_request){.input = "ping", .input_len = 4},
			    &res);
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	cr_assert_arr_eq(res.output, "ping", 4);
	lutf_result_release(&res);
	lutf_runtime_invoke(rt, unknown, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_UNKNOWN_FUNCTION, "the worker cannot resolve it");

	/* Two blocking Bricks pin both Carts' Labors; echo traffic must move. */
	cr_assert_eq(
	    lutf_runtime_submit(rt, block,
				&(struct lutf_request){.input = &ms, .input_len = sizeof(ms)}, N),
	    0);
	cr_assert_eq(
	    lutf_runtime_submit(
		rt, block, &(struct lutf_request){.input = &ms, .input_len = sizeof(ms)}, N + 1),
	    0);
	while (got < N + 2) {
		while (sent < N && sent - got < 256) {
			uint32_t v = (uint32_t)sent;

			if (lutf_runtime_submit(
				rt, echo,
				&(struct lutf_request){.input = &v, .input_len = sizeof(v)},
				(uint64_t)sent))
				break;
			sent++;
		}
		int n = lutf_runtime_reap(rt, out, 256, 2000);

		cr_assert_gt(n, 0, "stalled at %d", got);
		for (int i = 0; i < n; i++) {
			cr_assert_eq(out[i].result.status, LUTF_STATUS_OK);
			if (out[i].user_data < N) {
				uint32_t v;

				memcpy(&v, out[i].result.output, sizeof(v));
				cr_assert_eq(v, out[i].user_data);
				cr_assert_eq(seen[v]++, 0);
			}
			lutf_result_release(&out[i].result);
		}
		got += n;
	}
	lutf_runtime_stats(rt, &st);
	cr_assert_geq(st.rebinds, 1, "no Cart moved across the process boundary");
	lutf_runtime_destroy(rt);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker status %d", status);
	munmap(mem, size);
	close(fd);
}

static void *map_region(struct lutf_config *c, size_t *size, int *fd)
{
	void *mem;

	*size = lutf_region_size(c);
	*fd = memfd_create("lutf-test-region", MFD_CLOEXEC);
	cr_assert_geq(*fd, 0);
	cr_assert_eq(ftruncate(*fd, (off_t)*size), 0);
	mem = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	cr_assert(mem != MAP_FAILED);
	cr_assert_eq(lutf_region_format(mem, *size, c, LUTF_REGION_SHARED), 0);
	return mem;
}

/* Reap everything outstanding; check each completes once. */
static int drain(struct lutf_runtime *rt, uint8_t *seen, uint32_t n, int want, uint32_t *crashed,
		 uint32_t *ok)
{
	static struct lutf_completion out[256];
	uint64_t until = test_now_ns() + 20000000000ull;
	int got = 0;

	while (got < want && test_now_ns() < until) {
		int k = lutf_runtime_reap(rt, out, 256, 100);

		for (int i = 0; i < k; i++) {
			uint32_t st = out[i].result.status;

			cr_assert_lt(out[i].user_data, n);
			cr_assert_eq(seen[out[i].user_data]++, 0, "Brick %lu completed twice",
				     (unsigned long)out[i].user_data);
			cr_assert(st == LUTF_STATUS_OK || st == LUTF_STATUS_CRASHED,
				  "unexpected status %u", st);
			if (st == LUTF_STATUS_CRASHED) {
				cr_assert_eq(out[i].result.detail, SIGKILL);
				(*crashed)++;
			} else {
				(*ok)++;
			}
			lutf_result_release(&out[i].result);
		}
		got += k;
	}
	return got;
}

/* The worker dies with Bricks running and queued: the running ones fail
 * CRASHED (signal 9), the queued ones run on the next worker. */
Test(shared_region, worker_death_fails_started_and_keeps_queued, .timeout = 60)
{
	enum { BLOCKS = 2, ECHOES = 300 };
	struct lutf_config c = test_config(2, 2);
	static uint8_t seen[BLOCKS + ECHOES];
	struct lutf_runtime *rt;
	uint32_t echo, block, crashed = 0, ok = 0;
	unsigned ms = 5000;
	size_t size;
	int fd, status;
	void *mem;
	pid_t pid;

	c.watch = LUTF_WATCH_OFF; /* keep both Labors stuck: echoes stay queued */
	c.labors_max = 2;
	mem = map_region(&c, &size, &fd);
	pid = spawn_worker(mem, size);
	cr_assert_eq(lutf_runtime_attach(mem, size, &rt), 0);
	cr_assert_eq(lutf_runtime_set_worker(rt, pid), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "echo", NULL, &echo), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "block", NULL, &block), 0);
	/* One blocking Brick per Cart: submit from two threads' worth of Carts by
	 * spilling: fill each Cart's head with a block. */
	for (uint32_t i = 0; i < BLOCKS; i++)
		cr_assert_eq(lutf_runtime_submit(
				 rt, block,
				 &(struct lutf_request){.input = &ms, .input_len = sizeof(ms)}, i),
			     0);
	test_sleep_ms(100);
	for (uint32_t i = 0; i < ECHOES; i++)
		cr_assert_eq(
		    lutf_runtime_submit(rt, echo,
					&(struct lutf_request){.input = &i, .input_len = sizeof(i)},
					BLOCKS + i),
		    0);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_geq(lutf_runtime_worker_lost(rt, SIGKILL), 1);
	pid = spawn_worker(mem, size);
	cr_assert_eq(lutf_runtime_set_worker(rt, pid), 0);
	cr_assert_eq(drain(rt, seen, BLOCKS + ECHOES, BLOCKS + ECHOES, &crashed, &ok),
		     BLOCKS + ECHOES, "a Brick was lost across the crash");
	cr_assert_geq(crashed, 1, "the running Brick did not fail CRASHED");
	cr_assert_leq(crashed, BLOCKS);
	cr_assert_geq(ok, ECHOES, "queued Bricks did not run on the new worker");
	lutf_runtime_destroy(rt);
	waitpid(pid, &status, 0);
	munmap(mem, size);
	close(fd);
}

/* Kill the worker at arbitrary moments under load, several times: every
 * accepted Brick still completes exactly once (OK or CRASHED). */
Test(shared_region, repeated_worker_kills_lose_nothing, .timeout = 120)
{
	enum { N = 60000, ROUNDS = 6 };
	struct lutf_config c = test_config(2, 4);
	static uint8_t seen[N];
	static struct lutf_completion out[256];
	struct lutf_runtime *rt;
	uint32_t echo, crashed = 0, ok = 0;
	size_t size;
	int fd, status, got = 0, sent = 0, round = 0;
	void *mem;
	pid_t pid;

	mem = map_region(&c, &size, &fd);
	pid = spawn_worker(mem, size);
	cr_assert_eq(lutf_runtime_attach(mem, size, &rt), 0);
	cr_assert_eq(lutf_runtime_set_worker(rt, pid), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "echo", NULL, &echo), 0);
	while (sent < N) {
		while (sent < N && sent - got < 2048) {
			uint32_t v = (uint32_t)sent;

			if (lutf_runtime_submit(
				rt, echo,
				&(struct lutf_request){.input = &v, .input_len = sizeof(v)},
				(uint64_t)sent))
				break;
			sent++;
		}
		if (round < ROUNDS && sent >= (round + 1) * (N / (ROUNDS + 1))) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_geq(lutf_runtime_worker_lost(rt, SIGKILL), 0);
			pid = spawn_worker(mem, size);
			cr_assert_eq(lutf_runtime_set_worker(rt, pid), 0);
			round++;
		}
		int k = lutf_runtime_reap(rt, out, 256, 10);

		for (int i = 0; i < k; i++) {
			uint32_t st = out[i].result.status;

			cr_assert_eq(seen[out[i].user_data]++, 0);
			cr_assert(st == LUTF_STATUS_OK || st == LUTF_STATUS_CRASHED, "status %u",
				  st);
			crashed += st == LUTF_STATUS_CRASHED;
			ok += st == LUTF_STATUS_OK;
			lutf_result_release(&out[i].result);
		}
		got += k;
	}
	got += drain(rt, seen, N, N - got, &crashed, &ok);
	cr_assert_eq(got, N, "%d of %d Bricks answered after %d worker kills", got, N, round);
	cr_assert_eq(round, ROUNDS);
	lutf_runtime_destroy(rt);
	waitpid(pid, &status, 0);
	munmap(mem, size);
	close(fd);
}

/* A worker that writes garbage over the shared region: the front neither
 * crashes nor hangs, and still tears down within its bounds. */
Test(shared_region, scribbling_worker_does_not_take_the_front_down, .timeout = 60)
{
	struct lutf_config c = test_config(2, 4);
	static struct lutf_completion out[64];
	struct lutf_runtime *rt;
	uint32_t bad, echo;
	size_t size;
	int fd, status;
	void *mem;
	pid_t pid;

	mem = map_region(&c, &size, &fd);
	pid = spawn_worker(mem, size);
	cr_assert_eq(lutf_runtime_attach(mem, size, &rt), 0);
	cr_assert_eq(lutf_runtime_set_worker(rt, pid), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "scribble", NULL, &bad), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "echo", NULL, &echo), 0);
	cr_assert_eq(lutf_runtime_submit(rt, bad, &(struct lutf_request){0}, 1), 0);
	for (int i = 0; i < 20; i++) {
		int n = lutf_runtime_reap(rt, out, 64, 20);

		cr_assert_geq(n, 0);
		for (int k = 0; k < n; k++)
			lutf_result_release(&out[k].result);
		lutf_runtime_submit(rt, echo, &(struct lutf_request){0}, 2); /* may be refused */
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	cr_assert_geq(lutf_runtime_worker_lost(rt, SIGKILL), 0);
	lutf_runtime_destroy(rt);
	munmap(mem, size);
	close(fd);
}

Test(shared_region, garbage_region_is_refused)
{
	struct lutf_config c = test_config(1, 1);
	size_t size = lutf_region_size(&c);
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct lutf_runtime *rt;

	memset(mem, 0xa5, size);
	cr_assert_eq(lutf_runtime_attach(mem, size, &rt), -EINVAL);
	munmap(mem, size);
}
