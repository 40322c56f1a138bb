/* SPDX-License-Identifier: MIT */
/*
 * The cluster tests' NATS: 1 or 3 nats-server processes with JetStream on
 * loopback, each with its own free ports and store folder under one temp
 * folder, started by the test process and dying with it (PDEATHSIG); a
 * server can be killed -9 and started again on the same ports and store.
 * Every wait is bounded. lutfds come from tests/daemon/daemon_util.h.
 */
#ifndef LUTF_TEST_NATS_UTIL_H
#define LUTF_TEST_NATS_UTIL_H

#include "daemon_util.h"

#define TN_MAX 3
#define TN_SERVER "/usr/sbin/nats-server"

struct tn {
	char dir[64]; /* /tmp/lutf-nats-XXXXXX */
	int n;
	int port[TN_MAX], cport[TN_MAX];
	pid_t pid[TN_MAX];
	char url[TN_MAX * 40]; /* every server, comma-separated */
};

static inline bool tn_have_server(void)
{
	return access(TN_SERVER, X_OK) == 0;
}

/* A free loopback TCP port (bound and released: another process could take
 * it meanwhile; the servers start right after). */
static inline int tn_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* "nats://127.0.0.1:<port of server i>". */
static inline void tn_url(const struct tn *t, int i, char *out, size_t cap)
{
	snprintf(out, cap, "nats://127.0.0.1:%d", t->port[i]);
}

/* Start (again) server i on its ports and store; waits until it accepts. */
static inline bool tn_start_one(struct tn *t, int i)
{
	char conf[128], log[128];
	pid_t parent = getpid(), pid;
	uint64_t until = td_now_ms() + 5000;

	snprintf(conf, sizeof(conf), "%s/n%d.conf", t->dir, i);
	snprintf(log, sizeof(log), "%s/n%d.log", t->dir, i);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(TN_SERVER, "nats-server", "-c", conf, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return false;
	t->pid[i] = pid;
	while (td_now_ms() < until) {
		char hp[32];
		int fd;

		snprintf(hp, sizeof(hp), "127.0.0.1:%d", t->port[i]);
		fd = td_connect_tcp(hp);
		if (fd >= 0) {
			close(fd);
			return true;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		td_sleep_ms(20);
	}
	return false;
}

/* SIGKILL server i (its store stays). */
static inline void tn_kill(struct tn *t, int i)
{
	if (t->pid[i] > 0) {
		kill(t->pid[i], SIGKILL);
		waitpid(t->pid[i], NULL, 0);
		t->pid[i] = 0;
	}
}

/* n = 1 (one server) or 3 (a cluster, routes between all three). */
static inline bool tn_start(struct tn *t, int n)
{
	size_t off = 0;

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/lutf-nats-XXXXXX");
	if (!mkdtemp(t->dir) || n < 1 || n > TN_MAX)
		return false;
	t->n = n;
	for (int i = 0; i < n; i++) {
		t->port[i] = tn_free_port();
		t->cport[i] = tn_free_port();
		if (t->port[i] < 0 || t->cport[i] < 0)
			return false;
		off += (size_t)snprintf(t->url + off, sizeof(t->url) - off, "%snats://127.0.0.1:%d",
					i ? "," : "", t->port[i]);
	}
	for (int i = 0; i < n; i++) {
		char path[128];
		FILE *fp;

		snprintf(path, sizeof(path), "%s/n%d.conf", t->dir, i);
		fp = fopen(path, "w");
		if (!fp)
			return false;
		fprintf(fp,
			"server_name: n%d\nlisten: 127.0.0.1:%d\n"
			"jetstream { store_dir: \"%s/s%d\", max_memory_store: 64MB, "
			"max_file_store: 1GB }\n",
			i, t->port[i], t->dir, i);
		if (n > 1) {
			/* no_advertise: a client knows only the servers it was given
			 * (a node given one server is cut off when that one dies). */
			fprintf(fp,
				"cluster { name: lutft%d, no_advertise: true, listen: "
				"127.0.0.1:%d, routes: [",
				(int)getpid(), t->cport[i]);
			for (int k = 0; k < n; k++)
				fprintf(fp, "%snats-route://127.0.0.1:%d", k ? ", " : "",
					t->cport[k]);
			fprintf(fp, "] }\n");
		}
		fclose(fp);
	}
	for (int i = 0; i < n; i++)
		if (!tn_start_one(t, i))
			return false;
	return true;
}

static inline void tn_stop(struct tn *t)
{
	char cmd[128];

	for (int i = 0; i < t->n; i++)
		tn_kill(t, i);
	if (t->dir[0] && !getenv("LUTF_TEST_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
		(void)!system(cmd);
	}
}

#endif /* LUTF_TEST_NATS_UTIL_H */
