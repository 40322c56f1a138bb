/* SPDX-License-Identifier: MIT */
/*
 * A bench's own lutfd (see lutfd_util.h). Invariant: every wait is bounded,
 * and whatever bench_lutfd_start made (child, folders, pins) is undone by
 * bench_lutfd_stop, however far the start got.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "lutfd_util.h"

#ifndef LUTFD_BIN
#error "LUTFD_BIN must name the lutfd binary"
#endif

int bench_connect_unix(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

int bench_connect_tcp(const char *hostport)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	const char *colon = strrchr(hostport, ':');
	char host[64];
	int fd, one = 1;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		return -1;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = 0;
	a.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

const char *bench_lutfd_path(const struct bench_lutfd *l, const char *file, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", l->run, file);
	return buf;
}

bool bench_lutfd_addr(const struct bench_lutfd *l, const char *file, char *out, size_t cap)
{
	char path[160];
	FILE *fp = fopen(bench_lutfd_path(l, file, path, sizeof(path)), "r");

	if (!fp)
		return false;
	if (!fgets(out, (int)cap, fp))
		out[0] = 0;
	fclose(fp);
	out[strcspn(out, "\r\n")] = 0;
	return out[0] != 0;
}

void bench_lutfd_show_log(const struct bench_lutfd *l)
{
	char buf[2048];
	int fd = open(l->log, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;

	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	lseek(fd, end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = 0;
		fprintf(stderr, "%s: end of lutfd's log:\n%s\n", l->name, buf);
	}
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_tree(const char *path)
{
	if (path[0])
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Wait up to ms for pid to exit. Its wait status, or -1 while it runs. */
static int wait_exit(pid_t pid, int ms)
{
	uint64_t until = bench_now_ns() + (uint64_t)ms * 1000000ull;
	int st;

	do {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return 0;
		bench_sleep_ns(5000000);
	} while (bench_now_ns() < until);
	return -1;
}

static pid_t spawn(const struct bench_lutfd *l)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		int fd = open(l->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		if (l->ingress && l->ingress[0])
			setenv("LUTF_INGRESS", l->ingress, 1);
		else if (l->ingress)
			unsetenv("LUTF_INGRESS");
		execl(LUTFD_BIN, "lutfd", "--config", l->conf, "--state-dir", l->state,
		      "--runtime-dir", l->run, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* True once the pid file names l->pid and the control socket answers. */
static bool answering(const struct bench_lutfd *l)
{
	char path[160];
	FILE *fp = fopen(bench_lutfd_path(l, "lutfd.pid", path, sizeof(path)), "r");
	int pid = 0, fd;

	if (fp) {
		if (fscanf(fp, "%d", &pid) != 1)
			pid = 0;
		fclose(fp);
	}
	if (pid != l->pid)
		return false;
	fd = bench_connect_unix(bench_lutfd_path(l, "control.sock", path, sizeof(path)));
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int bench_lutfd_start(struct bench_lutfd *l, const char *conf_lines, int wait_ms)
{
	uint64_t until;
	FILE *fp;

	snprintf(l->dir, sizeof(l->dir), "/tmp/lutf-%.16s-XXXXXX", l->name);
	if (!mkdtemp(l->dir)) {
		l->dir[0] = 0;
		return -1;
	}
	chmod(l->dir, 0711); /* tenant workers (their own uids) reach the state folder */
	snprintf(l->state, sizeof(l->state), "%s/state", l->dir);
	snprintf(l->run, sizeof(l->run), "%s/run", l->dir);
	snprintf(l->conf, sizeof(l->conf), "%s/lutfd.conf", l->dir);
	snprintf(l->log, sizeof(l->log), "%s/lutfd.log", l->dir);
	snprintf(l->pin, sizeof(l->pin), "/sys/fs/bpf/lutfb-%.8s%d", l->name, (int)getpid());
	fp = fopen(l->conf, "w");
	if (!fp)
		return -1;
	/* Benchmarks invoke without API keys (docs/operator.md "API keys"). */
	fprintf(fp, "[lutfd]\nbpf_pin_root = %s\nrequire_keys = off\n%s", l->pin,
		conf_lines ? conf_lines : "");
	if (fclose(fp))
		return -1;
	l->pid = spawn(l);
	if (l->pid < 0) {
		l->pid = 0;
		return -1;
	}
	until = bench_now_ns() + (uint64_t)wait_ms * 1000000ull;
	while (bench_now_ns() < until) {
		if (answering(l))
			return 0;
		if (waitpid(l->pid, NULL, WNOHANG) == l->pid) {
			l->pid = 0;
			fprintf(stderr, "%s: lutfd exited during start\n", l->name);
			bench_lutfd_show_log(l);
			return -1;
		}
		bench_sleep_ns(10000000);
	}
	fprintf(stderr, "%s: lutfd did not come up within %d ms\n", l->name, wait_ms);
	bench_lutfd_show_log(l);
	return -1;
}

int bench_lutfd_stop(struct bench_lutfd *l, int wait_ms)
{
	int ret = 0;

	if (l->pid > 0) {
		int st;

		kill(l->pid, SIGTERM);
		st = wait_exit(l->pid, wait_ms);
		if (st == -1) {
			kill(l->pid, SIGKILL);
			waitpid(l->pid, NULL, 0);
			fprintf(stderr, "%s: lutfd did not stop on SIGTERM within %d ms\n", l->name,
				wait_ms);
			ret = -1;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "%s: lutfd exited with wait status %#x\n", l->name, st);
			ret = -1;
		}
		l->pid = 0;
	}
	if (ret)
		bench_lutfd_show_log(l);
	/* A clean exit unpins; a killed lutfd leaves its pins behind. */
	rm_tree(l->pin);
	if (!getenv("LUTF_BENCH_KEEP"))
		rm_tree(l->dir);
	l->dir[0] = 0;
	return ret;
}
