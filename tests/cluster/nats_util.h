/* SPDX-License-Identifier: MIT */
/*
 * The cluster tests' NATS: 1 or 3 nats-server processes with JetStream on
 * loopback, each with its own free ports and store folder under one temp
 * folder, started by the test process and dying with it (PDEATHSIG); a
 * server can be killed -9 and started again on the same ports and store, and
 * a relay can cut one node off from NATS without touching the servers.
 * Every wait is bounded. lutfds come from tests/daemon/daemon_util.h.
 */
#ifndef LUTF_TEST_NATS_UTIL_H
#define LUTF_TEST_NATS_UTIL_H

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include <lutf/client.h>

#include "daemon_util.h"

#define TN_MAX 3
#define TN_SERVER "/usr/sbin/nats-server"

struct tn {
	char dir[64]; /* /tmp/lutf-nats-XXXXXX */
	int n;
	int port[TN_MAX], cport[TN_MAX], mport[TN_MAX]; /* mport: monitoring (/varz) */
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

/* k distinct free loopback ports: each socket stays bound until all are
 * chosen (one at a time, the kernel may hand the same port out twice). */
static inline bool tn_free_ports(int *out, int k)
{
	int fds[3 * TN_MAX];
	bool ok = k <= 3 * TN_MAX;

	for (int i = 0; i < k; i++)
		fds[i] = -1;
	for (int i = 0; ok && i < k; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);

		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = fds[i] >= 0 && !bind(fds[i], (struct sockaddr *)&a, sizeof(a)) &&
		     !getsockname(fds[i], (struct sockaddr *)&a, &len);
		out[i] = ok ? ntohs(a.sin_port) : -1;
	}
	for (int i = 0; i < k && i < 3 * TN_MAX; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ok;
}

static inline bool tn_start_try(struct tn *t, int n);
static inline void tn_stop(struct tn *t);

/* n = 1 (one server) or 3 (a cluster, routes between all three). Servers
 * that cannot start (a port taken meanwhile by someone else) are tried once
 * more with new ports, after the first try's logs are printed. */
static inline bool tn_start(struct tn *t, int n)
{
	for (int i = 0; i < 2; i++) {
		char cmd[256];

		if (tn_start_try(t, n))
			return true;
		if (i == 1)
			break; /* the caller names the folder; its logs stay */
		fprintf(stderr, "nats-servers did not start (ports %d...); their logs:\n",
			t->port[0]);
		snprintf(cmd, sizeof(cmd), "tail -n 5 '%s'/n*.log >&2", t->dir);
		(void)!system(cmd);
		tn_stop(t);
	}
	return false;
}

static inline bool tn_start_try(struct tn *t, int n)
{
	int ports[3 * TN_MAX];
	size_t off = 0;

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/lutf-nats-XXXXXX");
	if (!mkdtemp(t->dir) || n < 1 || n > TN_MAX || !tn_free_ports(ports, 3 * n))
		return false;
	t->n = n;
	for (int i = 0; i < n; i++) {
		t->port[i] = ports[3 * i];
		t->cport[i] = ports[3 * i + 1];
		t->mport[i] = ports[3 * i + 2];
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
			"server_name: n%d\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"
			"jetstream { store_dir: \"%s/s%d\", max_memory_store: 64MB, "
			"max_file_store: 1GB }\n",
			i, t->port[i], t->mport[i], t->dir, i);
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

/* Server i's message counters from its monitoring port (/varz): messages
 * in (from clients and routes) and out. False when it does not answer. */
static inline bool tn_varz(const struct tn *t, int i, uint64_t *in, uint64_t *out)
{
	static const char req[] = "GET /varz HTTP/1.0\r\n\r\n";
	char hp[32], buf[16384], *p;
	size_t got = 0;
	ssize_t k;
	int fd;

	snprintf(hp, sizeof(hp), "127.0.0.1:%d", t->mport[i]);
	fd = td_connect_tcp(hp);
	if (fd < 0)
		return false;
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		close(fd);
		return false;
	}
	while (got < sizeof(buf) - 1 && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)k;
	close(fd);
	buf[got] = 0;
	p = strstr(buf, "\"in_msgs\":");
	if (!p || sscanf(p, "\"in_msgs\":%" SCNu64, in) != 1)
		return false;
	p = strstr(buf, "\"out_msgs\":");
	return p && sscanf(p, "\"out_msgs\":%" SCNu64, out) == 1;
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

/*
 * A loopback TCP relay in front of one server: a node dialing relay.port
 * reaches the server while the relay is up; tn_relay_cut() closes every
 * relayed connection and refuses new ones (the node is cut off, the NATS
 * cluster is not touched), tn_relay_restore() lets them through again.
 */
#define TN_RELAY_PAIRS 16

struct tn_relay {
	int lfd, port, target;
	pthread_t th;
	atomic_bool up, stop; /* relaxed: polled every 20 ms by the relay thread */
	atomic_bool down;     /* the thread has closed every pair since up went false */
	atomic_bool stall;    /* relaxed: stop reading what nodes send (a stuck server) */
	int pair[TN_RELAY_PAIRS][2];
};

static inline void tn_relay_close_all(struct tn_relay *r)
{
	for (int i = 0; i < TN_RELAY_PAIRS; i++)
		if (r->pair[i][0] >= 0) {
			close(r->pair[i][0]);
			close(r->pair[i][1]);
			r->pair[i][0] = r->pair[i][1] = -1;
		}
}

static inline void *tn_relay_main(void *arg)
{
	struct tn_relay *r = arg;

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		struct pollfd p[1 + 2 * TN_RELAY_PAIRS];
		int n = 1;

		if (!atomic_load_explicit(&r->up, memory_order_relaxed)) {
			tn_relay_close_all(r);
			atomic_store(&r->down, true);
		}
		p[0] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
		for (int i = 0; i < TN_RELAY_PAIRS; i++)
			for (int k = 0; k < 2; k++)
				p[n++] = (struct pollfd){
				    .fd = r->pair[i][k],
				    .events = k == 0 && atomic_load_explicit(&r->stall,
									     memory_order_relaxed)
						  ? 0
						  : POLLIN};
		if (poll(p, (nfds_t)n, 20) <= 0)
			continue;
		/* Cut while poll slept: nothing that arrived since is relayed. */
		if (!atomic_load_explicit(&r->up, memory_order_relaxed))
			continue;
		if (p[0].revents & POLLIN) {
			int c = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC), s = -1, slot = -1;
			char hp[32];

			snprintf(hp, sizeof(hp), "127.0.0.1:%d", r->target);
			for (int i = 0; i < TN_RELAY_PAIRS && slot < 0; i++)
				if (r->pair[i][0] < 0)
					slot = i;
			if (c >= 0 && slot >= 0 &&
			    atomic_load_explicit(&r->up, memory_order_relaxed) &&
			    (s = td_connect_tcp(hp)) >= 0) {
				r->pair[slot][0] = c;
				r->pair[slot][1] = s;
			} else if (c >= 0) {
				close(c);
			}
		}
		for (int i = 0; i < TN_RELAY_PAIRS; i++)
			for (int k = 0; k < 2; k++) {
				char buf[65536];
				ssize_t got;
				struct pollfd *q = &p[1 + 2 * i + k];

				if (r->pair[i][k] < 0 || q->fd != r->pair[i][k] || !q->revents)
					continue;
				got = read(r->pair[i][k], buf, sizeof(buf));
				if (got <= 0 || write(r->pair[i][!k], buf, (size_t)got) != got) {
					close(r->pair[i][0]);
					close(r->pair[i][1]);
					r->pair[i][0] = r->pair[i][1] = -1;
					break;
				}
			}
	}
	tn_relay_close_all(r);
	return NULL;
}

/* A relay to 127.0.0.1:target on a free port. */
static inline bool tn_relay_start(struct tn_relay *r, int target)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	memset(r, 0, sizeof(*r));
	for (int i = 0; i < TN_RELAY_PAIRS; i++)
		r->pair[i][0] = r->pair[i][1] = -1;
	r->target = target;
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(r->lfd, 16) ||
	    getsockname(r->lfd, (struct sockaddr *)&a, &len))
		return false;
	r->port = ntohs(a.sin_port);
	atomic_store(&r->up, true);
	return pthread_create(&r->th, NULL, tn_relay_main, r) == 0;
}

/*
 * Returns once the relay thread has closed every relayed connection, so a
 * change made after the cut can never reach the cut-off node (the thread
 * notices within one 20 ms poll; bounded at 5 s on a stalled host).
 */
static inline void tn_relay_cut(struct tn_relay *r)
{
	atomic_store(&r->down, false);
	atomic_store(&r->up, false);
	for (int i = 0; i < 5000 && !atomic_load(&r->down); i++)
		usleep(1000);
}

/* A relay whose own receive buffer is small (set before a node dials), so
 * that a stall fills the node's socket after a few MiB, not the relay's. */
static inline bool tn_relay_small_rcvbuf(struct tn_relay *r)
{
	int sz = 4096;

	return setsockopt(r->lfd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) == 0;
}

static inline void tn_relay_restore(struct tn_relay *r)
{
	atomic_store_explicit(&r->up, true, memory_order_relaxed);
}

static inline void tn_relay_stop(struct tn_relay *r)
{
	if (r->lfd <= 0)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->th, NULL);
	close(r->lfd);
	r->lfd = 0;
}

/* A counter of lutfd d's /metrics (admin listener: admin_listen =
 * 127.0.0.1:0 in its lutfd.conf; with its admin token), or 0. A sample line starts with the name (#
 * HELP and # TYPE lines name it too); the cluster's families come last in the exposition. */
static inline uint64_t tn_metric(struct td *d, const char *name)
{
	static char buf[4 << 20];
	char addr[64], req[256], path[160], *tok;
	size_t len = 0, tlen = 0;
	ssize_t r;
	const char *p;
	int fd;

	snprintf(path, sizeof(path), "%s/admin.token", d->state);
	tok = (char *)td_slurp(path, &tlen);
	if (!tok || !td_addr(d, "admin.addr", addr, sizeof(addr)) ||
	    (fd = td_connect_tcp(addr)) < 0) {
		free(tok);
		return 0;
	}
	tok[strcspn(tok, "\r\n")] = 0;
	snprintf(req, sizeof(req),
		 "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %.80s\r\n"
		 "Connection: close\r\n\r\n",
		 tok);
	free(tok);
	(void)!write(fd, req, strlen(req));
	while (len < sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	buf[len] = 0;
	p = strstr(buf, name);
	while (p && (p == buf || p[-1] != '\n' || p[strlen(name)] != ' '))
		p = strstr(p + 1, name);
	return p ? strtoull(p + strlen(name) + 1, NULL, 10) : 0;
}

/* Status of one call of tenant/fn (input "hi", an echo) at node d's data
 * socket, and its detail when detail is given: 0xffffffff no answer,
 * 0xfffffffe an OK with the wrong output. */
static inline uint32_t tn_call_detail(struct td *d, const char *tenant, const char *fn,
				      uint32_t *detail)
{
	char url[200];
	struct lutf_client *c = NULL;
	struct lutf_client_request req = {.input = "hi", .input_len = 2, .timeout_ms = 3000};
	struct lutf_client_result res = {0};
	uint32_t st = 0xffffffffu;

	if (detail)
		*detail = 0;
	snprintf(url, sizeof(url), "unix://%s/lutf.sock", d->run);
	if (lutf_client_connect(url, &c))
		return st;
	if (!lutf_client_invoke(c, tenant, fn, &req, &res)) {
		st = res.status;
		if (detail)
			*detail = res.detail;
		if (st == LUTF_STATUS_OK && (res.output_len != 2 || memcmp(res.output, "hi", 2)))
			st = 0xfffffffeu; /* a wrong answer */
	}
	lutf_client_result_release(&res);
	lutf_client_close(c);
	return st;
}

static inline uint32_t tn_call_hi(struct td *d, const char *tenant, const char *fn)
{
	return tn_call_detail(d, tenant, fn, NULL);
}

/* Is text in lutfd d's log now? */
static inline bool tn_log_has(struct td *d, const char *text)
{
	size_t len = 0;
	uint8_t *log = td_slurp(d->log, &len);
	bool hit = log && memmem(log, len, text, strlen(text));

	free(log);
	return hit;
}

/* Wait (up to ms) for text in lutfd d's log. */
static inline bool tn_wait_log(struct td *d, const char *text, uint64_t ms)
{
	uint64_t t0 = td_now_ms();

	while (!tn_log_has(d, text)) {
		if (td_now_ms() - t0 >= ms)
			return false;
		td_sleep_ms(20);
	}
	return true;
}

#endif /* LUTF_TEST_NATS_UTIL_H */
