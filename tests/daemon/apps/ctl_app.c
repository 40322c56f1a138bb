/* SPDX-License-Identifier: MIT */
/*
 * A hostile app for the control-plane tests, built in variants: INIT_SLEEP_MS
 * makes lutf_app_init sleep (a slow deploy, a slow restart), INIT_EXEC makes
 * it exec a program (a tier kills the worker at load), INIT_SOCKET makes it
 * open an AF_INET socket (service and compat only); `crash` kills its
 * worker with SIGSEGV (a crash loop when called again and again).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lutf/function.h>

LUTF_APP_ABI;

#ifndef INIT_SLEEP_MS
#define INIT_SLEEP_MS 0
#endif

__attribute__((visibility("default"))) int lutf_app_init(void **app_state);

int lutf_app_init(void **app_state)
{
	struct timespec ts = {INIT_SLEEP_MS / 1000, (INIT_SLEEP_MS % 1000) * 1000000L};

	*app_state = NULL;
	if (INIT_SLEEP_MS)
		nanosleep(&ts, NULL);
#ifdef INIT_EXEC
	execl("/bin/true", "true", (char *)NULL);
#endif
#ifdef INIT_SOCKET
	{
		int fd = socket(AF_INET, SOCK_DGRAM, 0); /* service and compat only */

		if (fd < 0)
			return -1;
		close(fd);
	}
#endif
	return 0;
}

LUTF_FUNCTION(echo)
{
	return lutf_write(call, call->input, call->input_len);
}

LUTF_FUNCTION(crash)
{
	raise(SIGSEGV);
	return 0;
}
