/* SPDX-License-Identifier: MIT */
/*
 * The app bench/daemon deploys to measure a hand-off through lutfd: "block"
 * stamps CLOCK_MONOTONIC just before it blocks in read() on a FIFO (config
 * key "fifo") and returns the stamp; "stamp" returns the time it started.
 */
#include <fcntl.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <lutf/function.h>

LUTF_APP_ABI;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

LUTF_FUNCTION(block)
{
	const char *path = lutf_config(call, "fifo");
	uint64_t t0;
	char c;
	int fd;

	/* O_RDWR: opening does not wait for a writer; read() then blocks. */
	fd = path ? open(path, O_RDWR | O_CLOEXEC) : -1;
	if (fd < 0)
		return lutf_fail(call, "no fifo"), 1;
	t0 = now_ns();
	if (read(fd, &c, 1) != 1) {
		close(fd);
		return lutf_fail(call, "fifo read failed"), 1;
	}
	close(fd);
	return lutf_write(call, &t0, sizeof(t0));
}

LUTF_FUNCTION(stamp)
{
	uint64_t t1 = now_ns();

	return lutf_write(call, &t1, sizeof(t1));
}
