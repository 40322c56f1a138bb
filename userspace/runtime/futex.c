/* SPDX-License-Identifier: MIT */
/*
 * futex wrappers. Shared regions use the non-private operations so that a
 * waiter in one process is woken by a waker in another.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "region.h"

/* Wait while *word == val, at most timeout_ns (0 = no limit). 0 or -errno
 * (-EAGAIN: value changed, -ETIMEDOUT, -EINTR). */
int lutf_futex_wait(uint32_t *word, uint32_t val, bool shared, uint64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;
	int op = shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE;

	if (timeout_ns) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
		ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
		tp = &ts;
	}
	if (syscall(SYS_futex, word, op, val, tp, NULL, 0) < 0)
		return -errno;
	return 0;
}

void lutf_futex_wake(uint32_t *word, int n, bool shared)
{
	syscall(SYS_futex, word, shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
