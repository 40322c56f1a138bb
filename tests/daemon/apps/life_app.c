/* SPDX-License-Identifier: MIT */
/*
 * A hostile test app for the worker's life (tests/daemon/test_lifecycle.c):
 * it forges lutfd log lines and terminal escapes on stdout and stderr, floods
 * stdout, and forks children that would outlive lutfd.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lutf/function.h>

LUTF_APP_ABI;

LUTF_FUNCTION(echo)
{
	return lutf_write(call, call->input, call->input_len);
}

/* What a tenant would print to pass for lutfd, and to drive the terminal. */
LUTF_FUNCTION(forge)
{
	static const char fake[] = "lutfd[1] 00:00:00.000 tenant bystander: worker 1 killed by "
				   "signal 9\n";
	static const char ansi[] = "\x1b[2J\x1b[31mred\x1b[0m\x07 \xc2\x9b"
				   "6n bell\n";

	(void)!write(1, fake, sizeof(fake) - 1);
	(void)!write(2, ansi, sizeof(ansi) - 1);
	lutf_log(call, "log \x1b]0;title\x07 %s", "end");
	return lutf_write(call, "ok", 2);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Write stdout for the input's milliseconds (at most 10 s): short lines and
 * lines far over lutfd's cap. Returns the bytes written. */
LUTF_FUNCTION(flood)
{
	char buf[8192], out[32];
	uint64_t ms = strtoull(call->input_len ? (const char *)call->input : "1000", NULL, 10);
	uint64_t until = now_ms() + (ms > 10000 ? 10000 : ms), total = 0;
	int n;

	memset(buf, 'A', sizeof(buf));
	for (size_t i = 99; i < sizeof(buf) / 2; i += 100)
		buf[i] = '\n'; /* first half: 100-byte lines; second half: one long line */
	while (now_ms() < until) {
		ssize_t w = write(1, buf, sizeof(buf));

		if (w <= 0)
			break;
		total += (uint64_t)w;
	}
	n = snprintf(out, sizeof(out), "%llu", (unsigned long long)total);
	return lutf_write(call, out, (size_t)n);
}

/* Fork the input's number of children (at most 200) that sleep for a minute;
 * returns how many were forked. */
LUTF_FUNCTION(forkmany)
{
	int want = call->input_len ? atoi((const char *)call->input) : 100, n = 0;
	char out[16];

	if (want > 200)
		want = 200;
	for (; n < want; n++) {
		pid_t pid = fork();

		if (pid < 0)
			break;
		if (pid == 0) {
			for (int i = 0; i < 60; i++)
				sleep(1);
			_exit(0);
		}
	}
	n = snprintf(out, sizeof(out), "%d", n);
	return lutf_write(call, out, (size_t)n);
}
