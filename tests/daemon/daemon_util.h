/* SPDX-License-Identifier: MIT */
/*
 * Helpers for lutfd tests: start the real lutfd on private state and runtime
 * folders (it dies with the test: PDEATHSIG), connect by Unix or TCP, and
 * talk raw protocol to it through the shared codec (deploy, control calls,
 * STATUS fields). The HTTP, ingress and tier helpers build on this file, and
 * so do the benchmarks' lutfd (bench/lutfd_util.c): one harness. Every wait
 * is bounded.
 */
#ifndef LUTF_TEST_DAEMON_UTIL_H
#define LUTF_TEST_DAEMON_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

struct td {
	char dir[64]; /* /tmp/lutfd-test-XXXXXX */
	char state[96];
	char run[80];
	char conf[96];
	char log[96];
	pid_t pid;
	char tag[32]; /* lutft<pid>-<n>: its pins, cgroups (uids: TD_UID_LO + 16 n, n < 3) */
	unsigned uid_lo;
	/* Run in the forked child just before it execs lutfd (NULL: none); what
	 * it sets up there (a seccomp filter, limits) is lutfd's alone. Returns
	 * 0, or non-zero to make the child exit 126 without exec. */
	int (*pre_exec)(void);
	/* Environment of the child only: "NAME=value" sets, "NAME" unsets
	 * (NULL-ended; NULL: the test's own environment as it is). */
	const char *const *env;
};

static inline uint64_t td_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void td_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A connected Unix stream socket (close-on-exec) to path, or -1. */
static inline int td_connect_unix(const char *path)
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

/* "<runtime dir>/<name>" (lutf.sock, control.sock) of d. */
static inline int td_connect(const struct td *d, const char *name)
{
	char path[200];

	snprintf(path, sizeof(path), "%s/%s", d->run, name);
	return td_connect_unix(path);
}

/* One line of "<runtime>/<name>" without its line end (lutfd writes
 * tcp.addr, http.addr and admin.addr there: "127.0.0.1:port"); false when
 * the file is missing or empty. */
static inline bool td_addr(const struct td *d, const char *name, char *out, size_t cap)
{
	char path[160];
	FILE *fp;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", d->run, name);
	fp = fopen(path, "r");
	if (!fp)
		return false;
	ok = fgets(out, (int)cap, fp) != NULL;
	fclose(fp);
	if (!ok)
		out[0] = 0;
	out[strcspn(out, "\r\n")] = 0;
	return out[0] != 0;
}

/* A TCP connection (TCP_NODELAY) to "a.b.c.d:port"; -1 on error. */
static inline int td_connect_tcp(const char *hostport)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	char host[64];
	const char *colon = strrchr(hostport, ':');
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

/* Wait up to ms for the child pid to exit, its wait status into *status;
 * false while it still runs (or is not our child). */
static inline bool td_wait_exit(pid_t pid, int *status, int ms)
{
	uint64_t until = td_now_ms() + (uint64_t)ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0 || td_now_ms() >= until)
			return false;
		td_sleep_ms(10);
	}
}

/* The first of the 16 worker uids (uid_range) of this test process's first
 * lutfd; its second and third lutfd (a test may run two, a cluster test
 * three) get the next 16s. */
#define TD_UID_LO (100000u + ((unsigned)getpid() % 20000u) * 48u)

/* Start lutfd (again) on d's folders; waits until the control socket answers. */
static inline pid_t td_spawn(struct td *d, const char *run_dir)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		dup2(fd, 2);
		dup2(fd, 1);
		for (size_t i = 0; d->env && d->env[i]; i++) {
			const char *eq = strchr(d->env[i], '=');
			char name[64];

			if (!eq) {
				unsetenv(d->env[i]);
				continue;
			}
			snprintf(name, sizeof(name), "%.*s", (int)(eq - d->env[i]), d->env[i]);
			setenv(name, eq + 1, 1);
		}
		if (d->pre_exec && d->pre_exec())
			_exit(126);
		execl(LUTFD_BIN, "lutfd", "--config", d->conf, "--state-dir", d->state,
		      "--runtime-dir", run_dir, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static inline bool td_start_again(struct td *d)
{
	uint64_t until = td_now_ms() + 10000;
	char path[160];

	snprintf(path, sizeof(path), "%s/lutfd.pid", d->run);
	d->pid = td_spawn(d, d->run);
	while (td_now_ms() < until) {
		FILE *fp = fopen(path, "r");
		int pid = 0, fd;

		if (fp) {
			if (fscanf(fp, "%d", &pid) != 1)
				pid = 0;
			fclose(fp);
		}
		if (pid == d->pid && (fd = td_connect(d, "control.sock")) >= 0) {
			close(fd);
			return true;
		}
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
			return false;
		td_sleep_ms(20);
	}
	return false;
}

/* extra: more config lines (or NULL). */
static inline bool td_start(struct td *d, const char *extra)
{
	FILE *fp;

	snprintf(d->dir, sizeof(d->dir), "/tmp/lutfd-test-XXXXXX");
	if (!mkdtemp(d->dir))
		return false;
	/* Tenant workers run under their own uids: they must reach the state
	 * folder below this one, as they reach /var/lib/lutf below /var/lib. */
	chmod(d->dir, 0711);
	snprintf(d->state, sizeof(d->state), "%.63s/state", d->dir);
	snprintf(d->run, sizeof(d->run), "%.63s/run", d->dir);
	snprintf(d->conf, sizeof(d->conf), "%.63s/lutfd.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%.63s/lutfd.log", d->dir);
	fp = fopen(d->conf, "w");
	if (!fp)
		return false;
	/* LUTF_TEST_NO_BPF=1 runs the same tests in the polling mode. The HTTP
	 * gateway's fixed default ports stay shut (extra may open them: port 0).
	 * Cgroups and worker uids are this test process's own: lutfds of tests
	 * running side by side must not kill or limit each other's workers. */
	if (!d->tag[0]) {
		static unsigned started;
		unsigned n = started++ % 3;

		snprintf(d->tag, sizeof(d->tag), "lutft%d-%u", (int)getpid(), n);
		d->uid_lo = TD_UID_LO + 16 * n;
	}
	/* API keys (on by default) are tested by tests/http/test_keys.c, which
	 * turns them back on; the other tests invoke without keys. No TCP
	 * listener either unless extra asks (port 0): the default 7400 may be
	 * another lutfd's on this host (docs/operator.md). */
	fprintf(fp,
		"[lutfd]\nbpf_pin_root = /sys/fs/bpf/%s\ncarts = 2\nlabors = 4\nbpf = %s\n"
		"listen_tcp = off\nhttp_listen = off\nadmin_listen = off\ncgroup_name = %s\n"
		"uid_range = %u-%u\nrequire_keys = off\n%s\n",
		d->tag, getenv("LUTF_TEST_NO_BPF") ? "off" : "on", d->tag, d->uid_lo,
		d->uid_lo + 15, extra ? extra : "");
	fclose(fp);
	return td_start_again(d);
}

/* SIGKILL lutfd (if running); remove its pins, cgroups and the folders. */
static inline void td_stop(struct td *d)
{
	char cmd[512];

	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	/* A killed lutfd leaves its pins (the next start would unlink them). */
	if (!d->tag[0])
		goto folders;
	snprintf(cmd, sizeof(cmd), "rm -rf /sys/fs/bpf/%s", d->tag);
	(void)!system(cmd);
	/* And its cgroups, empty once its workers (they follow it) are gone. */
	for (int i = 0; i < 20; i++) {
		snprintf(cmd, sizeof(cmd),
			 "find /sys/fs/cgroup/memory /sys/fs/cgroup/pids /sys/fs/cgroup/cpu /sys/fs/cgroup/freezer "
			 "/sys/fs/cgroup/unified -depth -type d \\( -name '%s' -o -path '*/%s/*' \\) "
			 "-exec rmdir {} + 2>/dev/null; "
			 "find /sys/fs/cgroup -type d -name '%s' 2>/dev/null | grep -q .",
			 d->tag, d->tag, d->tag);
		if (system(cmd) != 0)
			break; /* nothing left */
		td_sleep_ms(100);
	}
folders:
	if (getenv("LUTF_TEST_KEEP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	(void)!system(cmd);
}

/* A test's teardown: close its control connection *cfd (if open), td_stop. */
static inline void td_close_stop(struct td *d, int *cfd)
{
	if (*cfd >= 0)
		close(*cfd);
	*cfd = -1;
	td_stop(d);
}

static inline bool td_send(int fd, const struct lutf_buf *b)
{
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

static inline bool td_read_all(int fd, void *buf, size_t len, int timeout_ms)
{
	uint64_t until = td_now_ms() + (uint64_t)timeout_ms;
	size_t off = 0;

	while (off < len) {
		struct pollfd p = {fd, POLLIN, 0};
		int64_t left = (int64_t)(until - td_now_ms());
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return false;
		n = recv(fd, (char *)buf + off, len - off, 0);
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

struct td_reply {
	struct lutf_wire_hdr h;
	uint8_t *payload; /* malloc'ed */
};

/* Read one frame. false on timeout or close. */
static inline bool td_recv(int fd, struct td_reply *r, int timeout_ms)
{
	uint8_t hdr[LUTF_WIRE_HDR_SIZE];

	r->payload = NULL;
	if (!td_read_all(fd, hdr, sizeof(hdr), timeout_ms))
		return false;
	if (lutf_frame_parse_hdr(hdr, 64u << 20, &r->h) != LUTF_STATUS_OK)
		return false;
	r->payload = malloc(r->h.length + 1);
	if (!td_read_all(fd, r->payload, r->h.length, timeout_ms)) {
		free(r->payload);
		r->payload = NULL;
		return false;
	}
	return true;
}

/* First field with tag (index-th), or false. */
static inline bool td_field(const struct td_reply *r, uint16_t tag, int index, struct lutf_tlv *f)
{
	struct lutf_tlv_iter it;

	lutf_tlv_iter_init(&it, r->payload, r->h.length);
	while (lutf_tlv_next(&it, f))
		if (f->tag == tag && index-- == 0)
			return true;
	return false;
}

/* The first field with tag as a NUL-terminated string in out; false when
 * absent or when it does not fit (out is then ""). */
static inline bool td_field_str(const struct td_reply *r, uint16_t tag, char *out, size_t cap)
{
	struct lutf_tlv f;

	if (cap)
		out[0] = 0;
	if (!td_field(r, tag, 0, &f) || f.len >= cap)
		return false;
	memcpy(out, f.val, f.len);
	out[f.len] = 0;
	return true;
}

static inline int td_count(const struct td_reply *r, uint16_t tag)
{
	struct lutf_tlv f;
	int n = 0;

	while (td_field(r, tag, n, &f))
		n++;
	return n;
}

/* A COUNTER named name inside a payload or record (p, len). */
static inline bool td_counter(const uint8_t *p, size_t len, const char *name, uint64_t *v)
{
	struct lutf_tlv_iter it;
	struct lutf_tlv f;
	size_t n = strlen(name);

	lutf_tlv_iter_init(&it, p, len);
	while (lutf_tlv_next(&it, &f)) {
		if (f.tag == LUTF_TAG_COUNTER && f.len == n + 9 && !memcmp(f.val, name, n) &&
		    !f.val[n]) {
			memcpy(v, f.val + n + 1, 8);
			return true;
		}
	}
	return false;
}

/* One request and its reply (same connection, nothing else in flight).
 * 0xffffffff when nothing came back; r->payload is then NULL. */
static inline uint32_t td_call(int fd, struct lutf_buf *req, struct td_reply *r, int timeout_ms)
{
	r->payload = NULL;
	if (!td_send(fd, req) || !td_recv(fd, r, timeout_ms))
		return 0xffffffffu;
	return r->h.status;
}

static inline void td_invoke_frame(struct lutf_buf *b, uint64_t id, const char *tenant,
				   const char *fn, const void *in, size_t len)
{
	size_t f = lutf_frame_begin(b, LUTF_OP_INVOKE, 0, id);

	lutf_tlv_put_str(b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(b, LUTF_TAG_FUNCTION, fn);
	if (len)
		lutf_tlv_put(b, LUTF_TAG_INPUT, in, len);
	lutf_frame_end(b, f);
}

static inline void td_addr_frame(struct lutf_buf *b, uint16_t op, uint64_t id, const char *tenant,
				 const char *fn)
{
	size_t f = lutf_frame_begin(b, op, 0, id);

	if (tenant)
		lutf_tlv_put_str(b, LUTF_TAG_TENANT, tenant);
	if (fn)
		lutf_tlv_put_str(b, LUTF_TAG_FUNCTION, fn);
	lutf_frame_end(b, f);
}

/* A control call naming tenant/fn (PAUSE, RESUME, DELETE); the status. */
static inline uint32_t td_control(int cfd, uint16_t op, const char *tenant, const char *fn)
{
	struct lutf_buf b;
	struct td_reply r;
	uint32_t st;

	lutf_buf_init(&b);
	td_addr_frame(&b, op, 9, tenant, fn);
	st = td_call(cfd, &b, &r, 5000);
	free(r.payload);
	lutf_buf_free(&b);
	return st;
}

/* STATUS into r (free r->payload after); false unless lutfd answered OK
 * (r->payload is then NULL). */
static inline bool td_status(int cfd, struct td_reply *r)
{
	struct lutf_buf b;
	uint32_t st;

	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_STATUS, 77, NULL, NULL);
	st = td_call(cfd, &b, r, 5000);
	lutf_buf_free(&b);
	if (st != LUTF_STATUS_OK) {
		free(r->payload);
		r->payload = NULL;
	}
	return st == LUTF_STATUS_OK;
}

/* The RECORD of a STATUS reply whose TENANT field is tenant. */
static inline bool td_tenant_record(const struct td_reply *r, const char *tenant,
				    struct lutf_tlv *rec)
{
	for (int i = 0; td_field(r, LUTF_TAG_RECORD, i, rec); i++) {
		struct lutf_tlv_iter it;
		struct lutf_tlv f;

		lutf_tlv_iter_init(&it, rec->val, rec->len);
		while (lutf_tlv_next(&it, &f))
			if (f.tag == LUTF_TAG_TENANT && f.len == strlen(tenant) &&
			    !memcmp(f.val, tenant, f.len))
				return true;
	}
	return false;
}

static inline uint8_t *td_slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *p;
	long n;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	p = malloc((size_t)n);
	if (p && fread(p, 1, (size_t)n, fp) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return p;
}

/* The tier td_deploy, td_deploy_cfg and td_deploy_max name; a test may
 * change it (the scribbler reads /proc/self/maps, which only `compat` allows). */
static const char *td_tier = "basic";

/* What a DEPLOY carries beyond tenant, app, .so and exports. */
struct td_deploy_opts {
	const char *tier;	   /* NULL: no TIER sent (lutfd's default_tier) */
	const char *const *config; /* NULL, or "fn", "key", "value", ..., NULL */
	uint32_t max_conc;	   /* MAX_CONCURRENCY; 0: not sent */
	uint32_t timeout_ms;	   /* TIMEOUT_MS; 0: not sent */
	uint32_t memory_mb;	   /* MEMORY_MB; 0: not sent */
	uint32_t workers;	   /* WORKERS; 0: not sent */
};

/* Deploy so_path as tenant/app with exports ("fn=sym", ..., NULL) and o.
 * Returns the status (0xfffffffe: so_path unreadable, 0xffffffff: no reply);
 * r->payload is NULL unless a reply came (free it). */
static inline uint32_t td_deploy_with(int cfd, const char *tenant, const char *app,
				      const char *so_path, const char *const *exports,
				      const struct td_deploy_opts *o, struct td_reply *r)
{
	const char *const *config = o->config;
	struct lutf_buf b;
	size_t len, f;
	uint8_t *so = td_slurp(so_path, &len);
	uint32_t st;

	r->payload = NULL;
	if (!so)
		return 0xfffffffeu;
	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, LUTF_OP_DEPLOY, 0, 4242);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_APP, app);
	lutf_tlv_put(&b, LUTF_TAG_SO, so, len);
	for (; *exports; exports++)
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, *exports);
	for (; config && config[0] && config[1] && config[2]; config += 3) {
		size_t fl = strlen(config[0]) + 1, kl = strlen(config[1]) + 1;
		size_t vl = strlen(config[2]);
		char cv[512];

		if (fl + kl + vl > sizeof(cv))
			continue;
		memcpy(cv, config[0], fl);
		memcpy(cv + fl, config[1], kl);
		memcpy(cv + fl + kl, config[2], vl);
		lutf_tlv_put(&b, LUTF_TAG_CONFIG, cv, fl + kl + vl);
	}
	if (o->tier)
		lutf_tlv_put_str(&b, LUTF_TAG_TIER, o->tier);
	if (o->max_conc)
		lutf_tlv_put_u32(&b, LUTF_TAG_MAX_CONCURRENCY, o->max_conc);
	if (o->timeout_ms)
		lutf_tlv_put_u32(&b, LUTF_TAG_TIMEOUT_MS, o->timeout_ms);
	if (o->memory_mb)
		lutf_tlv_put_u32(&b, LUTF_TAG_MEMORY_MB, o->memory_mb);
	if (o->workers)
		lutf_tlv_put_u32(&b, LUTF_TAG_WORKERS, o->workers);
	lutf_frame_end(&b, f);
	st = td_call(cfd, &b, r, 15000);
	lutf_buf_free(&b);
	free(so);
	return st;
}

/* td_deploy_with on the tier td_tier; config as there, max_conc: the app's
 * MAX_CONCURRENCY (0: not sent). */
static inline uint32_t td_deploy_max(int cfd, const char *tenant, const char *app,
				     const char *so_path, const char *const *exports,
				     const char *const *config, uint32_t max_conc,
				     struct td_reply *r)
{
	struct td_deploy_opts o = {.tier = td_tier, .config = config, .max_conc = max_conc};

	return td_deploy_with(cfd, tenant, app, so_path, exports, &o, r);
}

static inline uint32_t td_deploy_cfg(int cfd, const char *tenant, const char *app,
				     const char *so_path, const char *const *exports,
				     const char *const *config, struct td_reply *r)
{
	return td_deploy_max(cfd, tenant, app, so_path, exports, config, 0, r);
}

static inline uint32_t td_deploy(int cfd, const char *tenant, const char *app, const char *so_path,
				 const char *const *exports, struct td_reply *r)
{
	return td_deploy_cfg(cfd, tenant, app, so_path, exports, NULL, r);
}

/* A tenant's COUNTER from STATUS. */
static inline bool td_tenant_counter(int cfd, const char *tenant, const char *name, uint64_t *v)
{
	struct td_reply r;
	struct lutf_tlv rec;
	bool found;

	if (!td_status(cfd, &r))
		return false;
	found = td_tenant_record(&r, tenant, &rec) && td_counter(rec.val, rec.len, name, v);
	free(r.payload);
	return found;
}

/* Wait up to ms until the tenant's COUNTER name is at least min; the last
 * value read into *v (untouched while STATUS fails). */
static inline bool td_wait_tenant_counter(int cfd, const char *tenant, const char *name,
					  uint64_t min, int ms, uint64_t *v)
{
	uint64_t until = td_now_ms() + (uint64_t)ms;

	for (;;) {
		if (td_tenant_counter(cfd, tenant, name, v) && *v >= min)
			return true;
		if (td_now_ms() >= until)
			return false;
		td_sleep_ms(10);
	}
}

/* True when pid is gone or a zombie. */
static inline bool td_pid_gone(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return true;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

#endif
