/* SPDX-License-Identifier: MIT */
/* A small app the tier tests dlopen after the filter: one function each tier
 * allows, and ones just outside some tiers. */
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lutf/function.h>

LUTF_APP_ABI;

int tier_answer(void);
int tier_answer(void)
{
	return 42;
}

LUTF_FUNCTION(tier_echo)
{
	return lutf_write(call, call->input, call->input_len);
}

/* Outside pure and basic: a socket. */
LUTF_FUNCTION(tier_socket)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd >= 0)
		close(fd);
	return lutf_write(call, "socket", 6);
}

static void *nothing(void *arg)
{
	return arg;
}

/* Outside pure: a thread. */
LUTF_FUNCTION(tier_thread)
{
	pthread_t t;

	if (pthread_create(&t, NULL, nothing, NULL))
		return -1;
	pthread_join(t, NULL);
	return lutf_write(call, "thread", 6);
}
