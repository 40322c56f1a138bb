/* SPDX-License-Identifier: MIT */
/*
 * bench/ingress's probes of a running lutfd (ingress_probe.h). The PING
 * driver keeps exactly depth requests in flight per connection: it writes a
 * PING for every reply it reads, so a write never exceeds depth frames and
 * always fits the socket buffer.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lutf/protocol.h>

#include "common.h"
#include "ingress_probe.h"

#define HDR LUTF_WIRE_HDR_SIZE
#define MAX_DEPTH 64

/* One thread's context switches (its status file) added to s. */
static void task_switches(pid_t pid, const char *tid, struct proc_sample *s)
{
	char path[96], line[128];
	unsigned long long v;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/task/%.16s/status", (int)pid, tid);
	fp = fopen(path, "r");
	if (!fp)
		return;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
			s->vol_cs += v;
		else if (sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
			s->invol_cs += v;
	}
	fclose(fp);
}

void probe_proc(pid_t pid, struct proc_sample *s)
{
	char path[96];
	struct dirent *e;
	DIR *d;

	s->cpu_ns = s->main_ns = s->slices = s->vol_cs = s->invol_cs = 0;
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		unsigned long long ns, wait, n;
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", (int)pid, e->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (fscanf(fp, "%llu %llu %llu", &ns, &wait, &n) == 3) {
			s->cpu_ns += ns;
			s->slices += n;
			if (atoi(e->d_name) == (int)pid)
				s->main_ns = ns;
		}
		fclose(fp);
		task_switches(pid, e->d_name, s);
	}
	closedir(d);
}

/* ---- PING driver ---- */

struct pconn {
	int fd;
	unsigned out; /* PINGs sent, reply not yet read */
	size_t part;  /* bytes of an incomplete reply kept in buf */
	uint8_t buf[HDR + MAX_DEPTH * HDR];
};

static uint8_t pings[MAX_DEPTH * HDR];

static void build_pings(void)
{
	for (unsigned i = 0; i < MAX_DEPTH; i++) {
		struct lutf_wire_hdr h = {.magic = LUTF_WIRE_MAGIC,
					  .version = LUTF_WIRE_VERSION,
					  .opcode = LUTF_OP_PING,
					  .request_id = i + 1};

		memcpy(pings + (size_t)i * HDR, &h, HDR);
	}
}

/* Write k PINGs. Returns 0 or -errno. */
static int send_pings(struct pconn *c, unsigned k)
{
	ssize_t n = send(c->fd, pings, (size_t)k * HDR, MSG_NOSIGNAL);

	if (n != (ssize_t)k * HDR) {
		fprintf(stderr, "ingress: ping send: %s\n", n < 0 ? strerror(errno) : "short");
		return n < 0 ? -errno : -EIO;
	}
	c->out += k;
	return 0;
}

/* Read what is there; count and check whole replies. Returns replies or -errno. */
static int read_replies(struct pconn *c)
{
	ssize_t n = recv(c->fd, c->buf + c->part, sizeof(c->buf) - c->part, MSG_DONTWAIT);
	size_t have, k;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		fprintf(stderr, "ingress: ping recv: %s\n", n ? strerror(errno) : "lutfd closed");
		return n ? -errno : -EPIPE;
	}
	have = c->part + (size_t)n;
	k = have / HDR;
	for (size_t i = 0; i < k; i++) {
		struct lutf_wire_hdr h;

		memcpy(&h, c->buf + i * HDR, HDR);
		if (h.magic != LUTF_WIRE_MAGIC || h.opcode != LUTF_OP_REPLY ||
		    h.status != LUTF_STATUS_OK || h.length) {
			fprintf(stderr,
				"ingress: unexpected ping reply (op %#x status %u len %u)\n",
				h.opcode, h.status, h.length);
			return -EPROTO;
		}
	}
	if (k > c->out) {
		fprintf(stderr, "ingress: more ping replies than pings\n");
		return -EPROTO;
	}
	c->part = have - k * HDR;
	memmove(c->buf, c->buf + k * HDR, c->part);
	c->out -= (unsigned)k;
	return (int)k;
}

/* Returns 0 or -errno. */
int probe_ping(const char *path, unsigned conns, unsigned depth, uint64_t ns, uint64_t *pings_out)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct epoll_event evs[64];
	struct pconn *cs = calloc(conns, sizeof(*cs));
	uint64_t until, drain_until, done = 0;
	unsigned outstanding = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC), err = -EIO;

	if (!cs || ep < 0 || depth > MAX_DEPTH || strlen(path) >= sizeof(a.sun_path)) {
		err = -EINVAL;
		goto out;
	}
	build_pings();
	strcpy(a.sun_path, path);
	for (unsigned i = 0; i < conns; i++)
		cs[i].fd = -1;
	for (unsigned i = 0; i < conns; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};

		cs[i].fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cs[i].fd < 0 || connect(cs[i].fd, (struct sockaddr *)&a, sizeof(a)) ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev)) {
			err = -errno;
			fprintf(stderr, "ingress: ping connect: %s\n", strerror(errno));
			goto out;
		}
	}
	for (unsigned i = 0; i < conns; i++) {
		err = send_pings(&cs[i], depth);
		if (err)
			goto out;
		outstanding += depth;
	}
	until = bench_now_ns() + ns;
	drain_until = until + 5000000000ull;
	while (outstanding) {
		uint64_t now = bench_now_ns();
		bool more = now < until;
		int n;

		if (now > drain_until) {
			fprintf(stderr, "ingress: %u pings unanswered after 5 s\n", outstanding);
			err = -ETIMEDOUT;
			goto out;
		}
		n = epoll_wait(ep, evs, 64, 100);
		for (int i = 0; i < n; i++) {
			struct pconn *c = evs[i].data.ptr;
			int k = read_replies(c);

			if (k < 0) {
				err = k;
				goto out;
			}
			done += (uint64_t)k;
			outstanding -= (unsigned)k;
			if (more && k) {
				err = send_pings(c, (unsigned)k);
				if (err)
					goto out;
				outstanding += (unsigned)k;
			}
		}
	}
	*pings_out = done;
	err = 0;
out:
	if (cs)
		for (unsigned i = 0; i < conns; i++)
			if (cs[i].fd >= 0)
				close(cs[i].fd);
	free(cs);
	if (ep >= 0)
		close(ep);
	return err;
}

/* ---- system calls, counted by perf ---- */

/* Returns 0 or -ENOENT. */
int probe_sys_start(pid_t target, struct probe_sys *ps)
{
	char pid[16];
	int st;

	memset(ps, 0, sizeof(*ps));
	snprintf(ps->out, sizeof(ps->out), "/tmp/lutf-ingress-perf-%d.txt", (int)getpid());
	snprintf(pid, sizeof(pid), "%d", (int)target);
	ps->target = target;
	ps->perf = fork();
	if (ps->perf < 0)
		return ps->perf = 0, -ENOENT;
	if (ps->perf == 0) {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("perf", "perf", "stat", "-x", ",", "--per-thread", "-e",
		       "raw_syscalls:sys_enter", "-p", pid, "-o", ps->out, (char *)NULL);
		_exit(127);
	}
	/* perf needs a moment to attach; an early exit means it cannot run. */
	for (int i = 0; i < 30; i++) {
		bench_sleep_ns(10000000);
		if (waitpid(ps->perf, &st, WNOHANG) == ps->perf) {
			ps->perf = 0;
			unlink(ps->out);
			return -ENOENT;
		}
	}
	return 0;
}

/* Returns 0 or -errno. */
int probe_sys_stop(struct probe_sys *ps, uint64_t *main, uint64_t *others)
{
	char line[256];
	bool any = false;
	FILE *fp;

	*main = *others = 0;
	if (!ps->perf)
		return -ENOENT;
	kill(ps->perf, SIGINT);
	waitpid(ps->perf, NULL, 0);
	ps->perf = 0;
	fp = fopen(ps->out, "r");
	if (!fp)
		return -EIO;
	/* "comm-tid,count,,raw_syscalls:sys_enter,..." per thread */
	while (fgets(line, sizeof(line), fp)) {
		char *comma = strchr(line, ','), *dash;
		unsigned long long n;

		if (line[0] == '#' || !comma)
			continue;
		*comma = 0;
		dash = strrchr(line, '-');
		if (!dash || sscanf(comma + 1, "%llu", &n) != 1)
			continue; /* "<not counted>": a thread that made none */
		any = true;
		if (atoi(dash + 1) == (int)ps->target)
			*main += n;
		else
			*others += n;
	}
	fclose(fp);
	unlink(ps->out);
	return any ? 0 : -EIO;
}
