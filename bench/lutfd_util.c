/* SPDX-License-Identifier: MIT */
/*
 * A bench's own lutfd (see lutfd_util.h), over the tests' lutfd harness
 * (tests/daemon/daemon_util.h: connects, address files, spawn, bounded
 * waits), so tests and benches start lutfd one way. What is the benches' own:
 * their folder and pin names, the per-lutfd LUTF_INGRESS, and a stop by
 * SIGTERM that checks lutfd's exit. Invariant: every wait is bounded, and
 * whatever bench_lutfd_start made (child, folders, pins) is undone by
 * bench_lutfd_stop, however far the start got.
 */
#define _GNU_SOURCE
#include <ftw.h>

#include "common.h"
#include "daemon_util.h"
#include "lutfd_util.h"

#define BENCH_UIDS 256u

/* The first uid of this process's lutfd number n (0 or 1): 2,000,000 and up,
 * 512 uids per process id modulo 4096. */
static uint32_t bench_uid_lo(unsigned n)
{
	return 2000000u + (uint32_t)(getpid() % 4096) * 2 * BENCH_UIDS + n * BENCH_UIDS;
}

#ifndef LUTFD_BIN
#error "LUTFD_BIN must name the lutfd binary"
#endif

int bench_connect_unix(const char *path)
{
	return td_connect_unix(path);
}

int bench_connect_tcp(const char *hostport)
{
	return td_connect_tcp(hostport);
}

/* l as the harness sees it: the same folders, pid and child environment. */
static void as_td(const struct bench_lutfd *l, struct td *d, const char **env)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "%s", l->dir);
	snprintf(d->state, sizeof(d->state), "%s", l->state);
	snprintf(d->run, sizeof(d->run), "%s", l->run);
	snprintf(d->conf, sizeof(d->conf), "%s", l->conf);
	snprintf(d->log, sizeof(d->log), "%s", l->log);
	d->pid = l->pid;
	env[0] = NULL;
	if (l->ingress && l->ingress[0]) {
		static char set[64];

		snprintf(set, sizeof(set), "LUTF_INGRESS=%s", l->ingress);
		env[0] = set;
	} else if (l->ingress) {
		env[0] = "LUTF_INGRESS";
	}
	env[1] = NULL;
	d->env = env;
}

const char *bench_lutfd_path(const struct bench_lutfd *l, const char *file, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", l->run, file);
	return buf;
}

bool bench_lutfd_addr(const struct bench_lutfd *l, const char *file, char *out, size_t cap)
{
	const char *env[2];
	struct td d;

	as_td(l, &d, env);
	return td_addr(&d, file, out, cap);
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
	fd = td_connect_unix(bench_lutfd_path(l, "control.sock", path, sizeof(path)));
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int bench_lutfd_start(struct bench_lutfd *l, const char *conf_lines, int wait_ms)
{
	static unsigned started; /* two lutfds of a process at once at most */
	const char *env[2];
	struct td d;
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
	/* bench/daemon deploys a tenant per round (one uid each), more than
	 * the tests' 16: benchmarks get BENCH_UIDS per lutfd, above every range
	 * the tests' harness hands out (TD_UID_LO's scheme ends near 1,060,000). */
	/* Benchmarks invoke without API keys (docs/operator.md "API keys").
	 * cgroup_name and uid_range are this process's own, as in the tests'
	 * harness: a lutfd kills what runs under its uid_range and cgroup_name
	 * when it starts and when it dies, and must never reach another's. */
	fprintf(fp,
		"[lutfd]\nbpf_pin_root = %s\nrequire_keys = off\ncgroup_name = lutfb%d-%u\n"
		"uid_range = %u-%u\n%s",
		l->pin, (int)getpid(), started % 2, bench_uid_lo(started % 2),
		bench_uid_lo(started % 2) + BENCH_UIDS - 1, conf_lines ? conf_lines : "");
	started++;
	if (fclose(fp))
		return -1;
	as_td(l, &d, env);
	l->pid = td_spawn(&d, l->run);
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
		int st = 0;

		kill(l->pid, SIGTERM);
		if (!td_wait_exit(l->pid, &st, wait_ms)) {
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
