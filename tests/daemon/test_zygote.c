/* SPDX-License-Identifier: MIT */
/*
 * lutfd's side of the zygote protocol (userspace/worker/zygote.c) against a
 * scripted zygote on a real socketpair: exit notices that arrive while a
 * spawn waits are all kept, in order, however many (issue 13: beyond 64 they
 * were dropped, and those workers' deaths never handled); the late answer of
 * a spawn nobody waits for any more kills that worker.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker.h"

#define NOTICES 300 /* far past the old cap of 64, and past a socket buffer */

static void *scripted_zygote(void *arg)
{
	int fd = *(int *)arg, fds[4];
	struct lutf_zy_msg m;
	char cbuf[CMSG_SPACE(sizeof(fds))];
	struct iovec iov = {&m, sizeof(m)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;

	if (recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof(m) || m.type != LUTF_ZY_SPAWN)
		return (void *)1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_len != CMSG_LEN(sizeof(fds)))
		return (void *)2; /* region, ctl, log and output */
	memcpy(fds, CMSG_DATA(cm), sizeof(fds));
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	for (int i = 0; i < NOTICES; i++) {
		struct lutf_zy_msg e = {.type = LUTF_ZY_EXITED, .pid = 1000 + i, .status = i};

		if (send(fd, &e, sizeof(e), MSG_NOSIGNAL) != (ssize_t)sizeof(e))
			return (void *)3;
	}
	m = (struct lutf_zy_msg){.type = LUTF_ZY_SPAWNED, .pid = 4242};
	return send(fd, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? NULL : (void *)4;
}

Test(zygote, exit_notices_during_a_spawn_are_all_kept_in_order)
{
	struct lutf_zygote z = {.fd = -1};
	int sv[2], peer, any = open("/dev/null", O_RDONLY | O_CLOEXEC), status;
	pthread_t th;
	void *rc;
	pid_t pid = 0, p;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	z.fd = sv[0];
	peer = sv[1];
	cr_assert_eq(pthread_create(&th, NULL, scripted_zygote, &peer), 0);
	cr_assert_eq(lutf_zygote_spawn(&z, "t", any, 4096, any, any, -1, NULL, 10000, &pid), 0);
	pthread_join(th, &rc);
	cr_assert_null(rc, "scripted zygote step %p", rc);
	cr_assert_eq(pid, 4242);
	cr_assert_eq(z.npending, NOTICES);
	for (int i = 0; i < NOTICES; i++) {
		cr_assert_eq(lutf_zygote_next_exit(&z, &p, &status), 1, "notice %d lost", i);
		cr_assert_eq(p, 1000 + i);
		cr_assert_eq(status, i);
	}
	cr_assert_eq(lutf_zygote_next_exit(&z, &p, &status), 0);
	free(z.pending);
	close(sv[0]);
	close(sv[1]);
	close(any);
}

Test(zygote, late_spawn_answer_kills_the_orphan_worker)
{
	struct lutf_zygote z = {.fd = -1};
	struct lutf_zy_msg m = {.type = LUTF_ZY_SPAWNED};
	int sv[2], status;
	pid_t child, p;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	z.fd = sv[0];
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	/* The answer to a spawn that timed out, then a real notice. */
	m.pid = child;
	cr_assert_eq(send(sv[1], &m, sizeof(m), 0), (ssize_t)sizeof(m));
	m = (struct lutf_zy_msg){.type = LUTF_ZY_EXITED, .pid = 77, .status = 9};
	cr_assert_eq(send(sv[1], &m, sizeof(m), 0), (ssize_t)sizeof(m));
	cr_assert_eq(lutf_zygote_next_exit(&z, &p, &status), 1);
	cr_assert_eq(p, 77);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
	close(sv[0]);
	close(sv[1]);
}
