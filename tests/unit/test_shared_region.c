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

static int child_resolve(void *ctx, uint32_t slot, const char *name, struct lutf_fn_binding *out)
{
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
	cr_assert_eq(lutf_runtime_add_remote(rt, "echo", NULL, &echo), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "block", NULL, &block), 0);
	cr_assert_eq(lutf_runtime_add_remote(rt, "nowhere", NULL, &unknown), 0);

	lutf_runtime_invoke(rt, echo, &(struct lutf_request){.input = "ping", .input_len = 4}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	cr_assert_arr_eq(res.output, "ping", 4);
	lutf_result_release(&res);
	lutf_runtime_invoke(rt, unknown, &(struct lutf_request){0}, &res);
	cr_assert_eq(res.status, LUTF_STATUS_UNKNOWN_FUNCTION, "the worker cannot resolve it");

	/* Two blocking Bricks pin both Carts' Labors; echo traffic must move. */
	cr_assert_eq(lutf_runtime_submit(rt, block, &(struct lutf_request){.input = &ms, .input_len = sizeof(ms)}, N), 0);
	cr_assert_eq(lutf_runtime_submit(rt, block, &(struct lutf_request){.input = &ms, .input_len = sizeof(ms)}, N + 1),
		     0);
	while (got < N + 2) {
		while (sent < N && sent - got < 256) {
			uint32_t v = (uint32_t)sent;

			if (lutf_runtime_submit(rt, echo, &(struct lutf_request){.input = &v, .input_len = sizeof(v)},
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
