/* SPDX-License-Identifier: MIT */
/*
 * http: lutfd's HTTP gateway next to nginx and lutfd's binary protocol, in
 * one run on this machine. A no-op invoke (examples hello.so "noop", POST
 * with a 1-byte body) driven by wrk at 64 connections (requests/s) and at 1
 * connection (median and p99 from wrk --latency), against nginx answering
 * `return 200 "ok"` (one worker process, a foreground child, a temporary
 * config on a loopback port, no root paths) driven by the same wrk script.
 * Two modes, interleaved round by round (a fresh lutfd and nginx each time):
 * unpinned, and pinned (the server and every thread and process it starts on
 * CPU 0, wrk on CPU 1, both set by sched_setaffinity before the fork and
 * checked on every task). Context switches per call (voluntary + involuntary,
 * every thread, from /proc/<pid>/task/<tid>/status before and after each wrk
 * run) for lutfd, for its child processes (zygote, watcher, the worker) and
 * for nginx. Then the binary protocol over TCP and Unix, unpinned, by a C
 * client here (64 connections with one call each in flight; exact
 * percentiles at 1). Targets are printed, never asserted. Exit 77 (skipped)
 * without root or wrk (unless LUTF_TEST_REQUIRE names "wrk"); 1 when
 * something fails.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
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
#include "proc_tree.h"
#include "wire.h"

#define CONNS 64
#define MAX_ROUNDS 15

enum { M_UNPINNED, M_PINNED, NMODES };
static const char *const mode_name[NMODES] = {"unpinned", "pinned"};
enum { S_LUTFD, S_NGINX, NSRV };
static const char *const srv_name[NSRV] = {"lutfd HTTP", "nginx return 200"};
static const char *const srv_key[NSRV] = {"http", "nginx"};

/* One wrk pair (64 connections, then 1) against one server in one mode. */
struct samp {
	bool ok;
	double rps;		     /* 64 connections */
	double cs64_self, cs64_kids; /* context switches per call at 64 */
	double p50_ns, p99_ns;	     /* 1 connection */
	double cs1_self, cs1_kids;   /* ... and per call at 1 */
	double cpu64_ns, cpu1_ns;    /* CPU per call, server + children */
};

static struct samp samp[NMODES][NSRV][MAX_ROUNDS];

enum { R_BIN_TCP, R_BIN_UNIX, NBIN };
static const char *const bin_name[NBIN] = {"lutfd binary, TCP (C client)",
					   "lutfd binary, Unix (C client)"};
static const char *const bin_key[NBIN] = {"binary_tcp", "binary_unix"};

struct row {
	bool ran;
	double rps;	       /* 64 connections */
	double p50_ns, p99_ns; /* 1 connection */
	char why[96];	       /* not ran: why */
};

static struct row rows[NBIN];
static struct bench_lutfd lutfd = {.name = "http"};
static pid_t nginx_pid;
static double secs = 5;
static int rounds = 3;
static char tmp[64]; /* the wrk script and nginx's prefix */
static cpu_set_t all_cpus;

static char lutfd_conf[1024] = "listen_tcp = 127.0.0.1:0\nhttp_listen = 127.0.0.1:0\n"
			       "admin_listen = off\nallow_tier_none = on\n";

static bool required(const char *what)
{
	const char *l = getenv("LUTF_TEST_REQUIRE");

	return l && strstr(l, what);
}

static bool have(const char *prog)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
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

static void stop_nginx(void)
{
	if (nginx_pid > 0) {
		kill(nginx_pid, SIGTERM);
		waitpid(nginx_pid, NULL, 0);
	}
	nginx_pid = 0;
}

static void cleanup(void)
{
	stop_nginx();
	bench_lutfd_stop(&lutfd, 5000);
	if (tmp[0] && !getenv("LUTF_BENCH_KEEP"))
		nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static pid_t spawn(char *const argv[], const char *log)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* ---- CPUs and context switches ---- */

/* This (single-threaded) process on cpu, or back on every CPU it had (cpu <
 * 0). Children forked meanwhile inherit it: that is how lutfd, nginx and wrk
 * are pinned. Returns 0 or -1. */
static int pin_self(int cpu)
{
	cpu_set_t s;

	if (cpu < 0) {
		s = all_cpus;
	} else {
		CPU_ZERO(&s);
		CPU_SET(cpu, &s);
	}
	return sched_setaffinity(0, sizeof(s), &s);
}

/* ---- lutfd ---- */

static bool send_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k <= 0)
			return false;
		p = (const char *)p + k;
		n -= (size_t)k;
	}
	return true;
}

static bool recv_all(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t k = recv(fd, p, n, 0);

		if (k <= 0)
			return false;
		p = (char *)p + k;
		n -= (size_t)k;
	}
	return true;
}

/* One reply frame; returns its status or -1. */
static int read_reply(int fd)
{
	uint8_t hdr[LUTF_WIRE_HDR_SIZE], body[4096];
	struct lutf_wire_hdr h;

	if (!recv_all(fd, hdr, sizeof(hdr)) ||
	    lutf_frame_parse_hdr(hdr, 1u << 30, &h) != LUTF_STATUS_OK)
		return -1;
	while (h.length) {
		size_t k = h.length < sizeof(body) ? h.length : sizeof(body);

		if (!recv_all(fd, body, k))
			return -1;
		h.length -= (uint32_t)k;
	}
	return (int)h.status;
}

/* Deploy hello.so's noop as bh/noop (tier none: the path, not the sandbox). */
static int deploy(void)
{
	char ctl[160];
	struct lutf_buf b;
	uint8_t *so = NULL;
	long n = 0;
	size_t f;
	int fd, st = -1;
	FILE *fp = fopen(HELLO_SO, "rb");

	if (fp && !fseek(fp, 0, SEEK_END) && (n = ftell(fp)) > 0 && !fseek(fp, 0, SEEK_SET)) {
		so = malloc((size_t)n);
		if (so && fread(so, 1, (size_t)n, fp) != (size_t)n)
			n = 0;
	}
	if (fp)
		fclose(fp);
	fd = bench_connect_unix(bench_lutfd_path(&lutfd, "control.sock", ctl, sizeof(ctl)));
	if (so && n > 0 && fd >= 0) {
		lutf_buf_init(&b);
		f = lutf_frame_begin(&b, LUTF_OP_DEPLOY, 0, 1);
		lutf_tlv_put_str(&b, LUTF_TAG_TENANT, "bh");
		lutf_tlv_put_str(&b, LUTF_TAG_APP, "hello");
		lutf_tlv_put(&b, LUTF_TAG_SO, so, (size_t)n);
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, "noop=noop");
		lutf_tlv_put_str(&b, LUTF_TAG_TIER, "none");
		lutf_frame_end(&b, f);
		if (!b.failed && send_all(fd, b.data, b.len))
			st = read_reply(fd);
		lutf_buf_free(&b);
	}
	if (fd >= 0)
		close(fd);
	free(so);
	if (st != LUTF_STATUS_OK)
		fprintf(stderr, "http: deploy failed (status %d)\n", st);
	return st == LUTF_STATUS_OK ? 0 : -1;
}

/* ---- the binary protocol, from here ---- */

static void invoke_frame(struct lutf_buf *b, uint64_t id)
{
	size_t f = lutf_frame_begin(b, LUTF_OP_INVOKE, 0, id);

	lutf_tlv_put_str(b, LUTF_TAG_TENANT, "bh");
	lutf_tlv_put_str(b, LUTF_TAG_FUNCTION, "noop");
	lutf_tlv_put(b, LUTF_TAG_INPUT, "x", 1);
	lutf_frame_end(b, f);
}

/* 64 connections, one call each in flight, for secs: calls per second. */
static double bin_rps(bool tcp, const char *where)
{
	struct pollfd p[CONNS];
	struct lutf_buf b;
	uint64_t t0, end, done = 0;
	int ok = 1;

	lutf_buf_init(&b);
	invoke_frame(&b, 7);
	for (int i = 0; i < CONNS; i++) {
		p[i].fd = tcp ? bench_connect_tcp(where) : bench_connect_unix(where);
		p[i].events = POLLIN;
		if (p[i].fd < 0 || !send_all(p[i].fd, b.data, b.len))
			ok = 0;
	}
	t0 = bench_now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	while (ok && bench_now_ns() < end) {
		if (poll(p, CONNS, 1000) <= 0)
			ok = 0;
		for (int i = 0; ok && i < CONNS; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			if (read_reply(p[i].fd) != LUTF_STATUS_OK ||
			    !send_all(p[i].fd, b.data, b.len))
				ok = 0;
			done++;
		}
	}
	t0 = bench_now_ns() - t0;
	for (int i = 0; i < CONNS; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	lutf_buf_free(&b);
	return ok ? (double)done / ((double)t0 / 1e9) : NAN;
}

/* One connection, one call at a time: exact median and p99. */
static bool bin_lat(bool tcp, const char *where, double *p50, double *p99)
{
	size_t cap = 2000000, n = 0;
	uint64_t *v = malloc(cap * sizeof(*v)), end;
	struct bench_stats st;
	struct lutf_buf b;
	int fd = tcp ? bench_connect_tcp(where) : bench_connect_unix(where);
	bool ok = fd >= 0 && v;

	lutf_buf_init(&b);
	invoke_frame(&b, 9);
	end = bench_now_ns() + (uint64_t)(secs * 1e9);
	while (ok && n < cap && bench_now_ns() < end) {
		uint64_t t = bench_now_ns();

		ok = send_all(fd, b.data, b.len) && read_reply(fd) == LUTF_STATUS_OK;
		v[n++] = bench_now_ns() - t;
	}
	if (ok && n) {
		bench_stats(v, n, &st);
		*p50 = st.median;
		*p99 = st.p99;
	}
	if (fd >= 0)
		close(fd);
	lutf_buf_free(&b);
	free(v);
	return ok && n;
}

/* ---- wrk ---- */

/* wrk's "1.23ms" / "456.00us" / "2.00s" in ns. */
static double wrk_time(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (!strncmp(end, "us", 2))
		return v * 1e3;
	if (!strncmp(end, "ms", 2))
		return v * 1e6;
	if (*end == 's')
		return v * 1e9;
	return NAN;
}

struct wrk_out {
	double rps, p50_ns, p99_ns;
	uint64_t requests;
};

/*
 * Run wrk on url at conns connections (--latency at 1), on CPU 1 alone when
 * pinned (one wrk thread then: one CPU), else 2 threads at 64 as before.
 * True when wrk exited 0, said how many requests it made, and every answer
 * was a 2xx.
 */
static bool wrk_run(const char *url, int conns, bool pinned, struct wrk_out *w)
{
	char cmd[512], line[256], lua[128];
	bool got = false;
	int rc;
	FILE *fp;

	memset(w, 0, sizeof(*w));
	w->p50_ns = w->p99_ns = NAN;
	snprintf(lua, sizeof(lua), "%s/post.lua", tmp);
	fp = fopen(lua, "w");
	if (!fp)
		return false;
	fprintf(fp, "wrk.method = \"POST\"\nwrk.body = \"x\"\n");
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "wrk -t%d -c%d -d%.0fs %s -s %s %s 2>&1",
		 conns > 1 && !pinned ? 2 : 1, conns, secs, conns > 1 ? "" : "--latency", lua, url);
	if (pinned && pin_self(1))
		return false;
	fp = popen(cmd, "r");
	if (pinned)
		pin_self(-1);
	if (!fp)
		return false;
	while (fgets(line, sizeof(line), fp)) {
		char *p = line + strspn(line, " \t");

		if (!strncmp(p, "Requests/sec:", 13)) {
			w->rps = strtod(p + 13, NULL);
			got = true;
		} else if (strstr(p, " requests in ")) {
			w->requests = strtoull(p, NULL, 10);
		} else if (conns == 1 && !strncmp(p, "50%", 3)) {
			w->p50_ns = wrk_time(p + 3 + strspn(p + 3, " \t"));
		} else if (conns == 1 && !strncmp(p, "99%", 3)) {
			w->p99_ns = wrk_time(p + 3 + strspn(p + 3, " \t"));
		} else if (strstr(p, "Non-2xx")) {
			fprintf(stderr, "http: wrk %s: %s", url, p);
			got = false;
			while (fgets(line, sizeof(line), fp))
				;
			break;
		}
	}
	rc = pclose(fp);
	return rc == 0 && got && w->requests > 0;
}

/* One wrk pair against the server under pid: req/s at 64, percentiles at 1,
 * and the context switches per call of both. */
static bool measure(pid_t pid, const char *url, bool pinned, struct samp *s)
{
	struct bench_tstat a0, b0, a1, b1;
	struct wrk_out w;
	double n;

	bench_tree_stat(pid, &a0, &b0);
	if (!wrk_run(url, CONNS, pinned, &w))
		return false;
	bench_tree_stat(pid, &a1, &b1);
	n = (double)w.requests;
	s->rps = w.rps;
	s->cs64_self = (double)(a1.cs - a0.cs) / n;
	s->cs64_kids = (double)(b1.cs - b0.cs) / n;
	s->cpu64_ns = (double)(a1.cpu_ns - a0.cpu_ns + b1.cpu_ns - b0.cpu_ns) / n;
	bench_tree_stat(pid, &a0, &b0);
	if (!wrk_run(url, 1, pinned, &w))
		return false;
	bench_tree_stat(pid, &a1, &b1);
	n = (double)w.requests;
	s->p50_ns = w.p50_ns;
	s->p99_ns = w.p99_ns;
	s->cs1_self = (double)(a1.cs - a0.cs) / n;
	s->cs1_kids = (double)(b1.cs - b0.cs) / n;
	s->cpu1_ns = (double)(a1.cpu_ns - a0.cpu_ns + b1.cpu_ns - b0.cpu_ns) / n;
	s->ok = !isnan(s->p50_ns) && !isnan(s->p99_ns);
	return s->ok;
}

/* ---- nginx ---- */

static int free_port(void)
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

/* nginx in the foreground on a free loopback port (on CPU 0 alone when
 * pinned); returns the port or -1. */
static int start_nginx(bool pinned)
{
	char conf[128], log[128], prefix[96], nginx[] = "/usr/sbin/nginx";
	char *argv[] = {nginx, "-p", prefix, "-c", conf, "-e", log, NULL};
	int port = free_port(), fd = -1;
	uint64_t until;
	FILE *fp;

	snprintf(prefix, sizeof(prefix), "%s/nginx", tmp);
	snprintf(conf, sizeof(conf), "%s/nginx.conf", prefix);
	snprintf(log, sizeof(log), "%s/error.log", prefix);
	if (port < 0 || (mkdir(prefix, 0755) && errno != EEXIST) || !(fp = fopen(conf, "w")))
		return -1;
	fprintf(fp,
		"daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\n"
		"error_log %s warn;\nevents { worker_connections 1024; }\n"
		"http {\n  access_log off;\n  client_body_temp_path %s/body;\n"
		"  proxy_temp_path %s/proxy;\n  fastcgi_temp_path %s/fcgi;\n"
		"  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n"
		"  server {\n    listen 127.0.0.1:%d;\n"
		"    location / { return 200 \"ok\"; }\n  }\n}\n",
		prefix, log, prefix, prefix, prefix, prefix, prefix, port);
	fclose(fp);
	if (pinned && pin_self(0))
		return -1;
	nginx_pid = spawn(argv, log);
	if (pinned)
		pin_self(-1);
	until = bench_now_ns() + 5000000000ull;
	while (nginx_pid > 0 && bench_now_ns() < until) {
		char hp[32];

		snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
		fd = bench_connect_tcp(hp);
		if (fd >= 0) {
			close(fd);
			if (pinned && !bench_tree_pinned(nginx_pid, 0))
				break;
			return port;
		}
		if (waitpid(nginx_pid, NULL, WNOHANG) == nginx_pid) {
			nginx_pid = 0;
			break;
		}
		bench_sleep_ns(10000000);
	}
	fprintf(stderr, "http: nginx did not come up (log %s)\n", log);
	stop_nginx();
	return -1;
}

/* ---- one round ---- */

/* A fresh lutfd (pinned: it, its threads and every process it forks on CPU 0)
 * with bh/noop deployed; its HTTP address into http. Returns 0 or -1. */
static int lutfd_up(bool pinned, char *http, size_t cap)
{
	int err;

	if (pinned && pin_self(0))
		return -1;
	err = bench_lutfd_start(&lutfd, lutfd_conf, 10000);
	if (pinned)
		pin_self(-1);
	if (err || deploy())
		return -1;
	/* After the deploy: the worker is forked by then. */
	if (pinned && !bench_tree_pinned(lutfd.pid, 0))
		return -1;
	if (!bench_lutfd_addr(&lutfd, "http.addr", http, cap)) {
		fprintf(stderr, "http: lutfd wrote no http.addr\n");
		return -1;
	}
	return 0;
}

static bool round_lutfd(int m, int r)
{
	char http[64], url[160];
	bool ok;

	if (lutfd_up(m == M_PINNED, http, sizeof(http)))
		ok = false;
	else {
		snprintf(url, sizeof(url), "http://%s/fn/bh/noop", http);
		ok = measure(lutfd.pid, url, m == M_PINNED, &samp[m][S_LUTFD][r]);
	}
	if (bench_lutfd_stop(&lutfd, 5000))
		ok = false;
	if (!ok)
		fprintf(stderr, "http: lutfd %s round %d failed\n", mode_name[m], r + 1);
	return ok;
}

static bool round_nginx(int m, int r)
{
	char url[160];
	int port = start_nginx(m == M_PINNED);
	bool ok = port > 0;

	if (ok) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
		ok = measure(nginx_pid, url, m == M_PINNED, &samp[m][S_NGINX][r]);
	}
	stop_nginx();
	if (!ok)
		fprintf(stderr, "http: nginx %s round %d failed\n", mode_name[m], r + 1);
	return ok;
}

/* ---- report ---- */

enum { F_RPS, F_P50, F_P99, F_CS64, F_CS64_SELF, F_CS64_KIDS, F_CS1, F_CPU64, F_CPU1, NF };
static const char *const f_key[NF] = {"rps_64",
				      "p50_1_ns",
				      "p99_1_ns",
				      "cs_per_call_64",
				      "cs_per_call_64_server",
				      "cs_per_call_64_children",
				      "cs_per_call_1",
				      "cpu_per_call_64_ns",
				      "cpu_per_call_1_ns"};

static double field(const struct samp *s, int f)
{
	switch (f) {
	case F_RPS:
		return s->rps;
	case F_P50:
		return s->p50_ns;
	case F_P99:
		return s->p99_ns;
	case F_CS64:
		return s->cs64_self + s->cs64_kids;
	case F_CS64_SELF:
		return s->cs64_self;
	case F_CS64_KIDS:
		return s->cs64_kids;
	case F_CS1:
		return s->cs1_self + s->cs1_kids;
	case F_CPU64:
		return s->cpu64_ns;
	default:
		return s->cpu1_ns;
	}
}

struct agg {
	int n;
	double med, lo, hi;
};

/* Median and range of field f over the rounds that ran. */
static struct agg agg(int m, int sv, int f)
{
	double v[MAX_ROUNDS];
	struct agg a = {0, NAN, NAN, NAN};

	for (int r = 0; r < rounds; r++)
		if (samp[m][sv][r].ok)
			v[a.n++] = field(&samp[m][sv][r], f);
	if (!a.n)
		return a;
	a.med = bench_median_d(v, (size_t)a.n);
	a.lo = a.hi = v[0];
	for (int i = 1; i < a.n; i++) {
		a.lo = v[i] < a.lo ? v[i] : a.lo;
		a.hi = v[i] > a.hi ? v[i] : a.hi;
	}
	return a;
}

/* Per-round ratio lutfd / nginx of field f (same round, same mode): median. */
static double ratio(int m, int f)
{
	double v[MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < rounds; r++)
		if (samp[m][S_LUTFD][r].ok && samp[m][S_NGINX][r].ok)
			v[n++] = field(&samp[m][S_LUTFD][r], f) / field(&samp[m][S_NGINX][r], f);
	return n ? bench_median_d(v, (size_t)n) : NAN;
}

static void print_table(const char *machine, const bool *mode_on)
{
	char a[32], b[32];

	printf("http: no-op invoke, %s, %.0f s per wrk run, %d round%s (medians, [min-max])\n",
	       machine, secs, rounds, rounds > 1 ? "s" : "");
	printf("pinned: server on CPU 0 (every thread and child), wrk on CPU 1 (1 thread);\n"
	       "cs/call: voluntary + involuntary context switches per call, server process\n"
	       "+ its children (lutfd: zygote, watcher, worker; nginx: none); cpu/call:\n"
	       "their CPU time (schedstat) per call at 64 connections\n\n");
	printf("%-9s %-17s %22s %10s %10s %18s %6s %10s\n", "mode", "server", "req/s @64", "p50 @1",
	       "p99 @1", "cs/call @64 (s+c)", "cs @1", "cpu/call");
	for (int m = 0; m < NMODES; m++) {
		if (!mode_on[m])
			continue;
		for (int sv = 0; sv < NSRV; sv++) {
			struct agg rps = agg(m, sv, F_RPS), p50 = agg(m, sv, F_P50),
				   p99 = agg(m, sv, F_P99), cs = agg(m, sv, F_CS64),
				   cs_s = agg(m, sv, F_CS64_SELF), cs_k = agg(m, sv, F_CS64_KIDS),
				   cs1 = agg(m, sv, F_CS1), cpu = agg(m, sv, F_CPU64);
			char c[32];
			char r1[32], r2[48];

			if (!rps.n) {
				printf("%-9s %-17s %22s\n", mode_name[m], srv_name[sv], "FAILED");
				continue;
			}
			snprintf(r1, sizeof(r1), "%.0f [%.0f-%.0f]", rps.med, rps.lo, rps.hi);
			snprintf(r2, sizeof(r2), "%.2f (%.2f+%.2f)", cs.med, cs_s.med, cs_k.med);
			printf("%-9s %-17s %22s %10s %10s %18s %6.2f %10s\n", mode_name[m],
			       srv_name[sv], r1, bench_fmt_ns(a, sizeof(a), p50.med),
			       bench_fmt_ns(b, sizeof(b), p99.med), r2, cs1.med,
			       bench_fmt_ns(c, sizeof(c), cpu.med));
		}
		printf("%-9s lutfd/nginx: req/s %.2fx, p99 @1 %.2fx (per-round ratios, median)\n",
		       mode_name[m], ratio(m, F_RPS), ratio(m, F_P99));
	}
	printf("\n%-32s %14s %12s %12s   (unpinned, one run)\n", "binary protocol", "req/s @64",
	       "p50 @1", "p99 @1");
	for (int i = 0; i < NBIN; i++) {
		if (!rows[i].ran) {
			printf("%-32s %14s %12s %12s  (%s)\n", bin_name[i], "SKIP", "-", "-",
			       rows[i].why);
			continue;
		}
		printf("%-32s %14.0f %12s %12s\n", bin_name[i], rows[i].rps,
		       bench_fmt_ns(a, sizeof(a), rows[i].p50_ns),
		       bench_fmt_ns(b, sizeof(b), rows[i].p99_ns));
	}
	printf("\n");
}

static void json_samples(struct bench_json *j, int m, int sv)
{
	bench_json_obj(j, srv_key[sv]);
	bench_json_str(j, "name", srv_name[sv]);
	for (int f = 0; f < NF; f++) {
		struct agg a = agg(m, sv, f);
		char k[64];

		bench_json_num(j, f_key[f], a.med);
		snprintf(k, sizeof(k), "%s_min", f_key[f]);
		bench_json_num(j, k, a.lo);
		snprintf(k, sizeof(k), "%s_max", f_key[f]);
		bench_json_num(j, k, a.hi);
	}
	bench_json_arr(j, "rounds");
	for (int r = 0; r < rounds; r++) {
		bench_json_obj(j, NULL);
		bench_json_bool(j, "ok", samp[m][sv][r].ok);
		for (int f = 0; f < NF; f++)
			bench_json_num(j, f_key[f],
				       samp[m][sv][r].ok ? field(&samp[m][sv][r], f) : NAN);
		bench_json_close_obj(j);
	}
	bench_json_close_arr(j);
	bench_json_close_obj(j);
}

/* Our own options out of argv (the rest goes to bench_parse_args). Exits 2
 * on a bad value. */
static void own_args(int *argc, char **argv, bool *mode_on, bool *help)
{
	int k = 1;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i], *v = i + 1 < *argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--rounds") && v) {
			rounds = atoi(v);
			if (rounds < 1 || rounds > MAX_ROUNDS) {
				fprintf(stderr, "http: --rounds takes 1 to %d\n", MAX_ROUNDS);
				exit(2);
			}
			i++;
		} else if (!strcmp(a, "--secs") && v) {
			secs = atof(v);
			if (!(secs >= 1 && secs <= 600)) {
				fprintf(stderr, "http: --secs takes 1 to 600\n");
				exit(2);
			}
			i++;
		} else if (!strcmp(a, "--conf") && v) {
			size_t len = strlen(lutfd_conf);

			if (strchr(v, '[') || len + strlen(v) + 2 > sizeof(lutfd_conf)) {
				fprintf(stderr, "http: --conf takes a short \"key = value\"\n");
				exit(2);
			}
			snprintf(lutfd_conf + len, sizeof(lutfd_conf) - len, "%s\n", v);
			i++;
		} else if (!strcmp(a, "--mode") && v) {
			mode_on[M_UNPINNED] = !strcmp(v, "unpinned") || !strcmp(v, "both");
			mode_on[M_PINNED] = !strcmp(v, "pinned") || !strcmp(v, "both");
			if (!mode_on[M_UNPINNED] && !mode_on[M_PINNED]) {
				fprintf(stderr, "http: --mode takes pinned, unpinned or both\n");
				exit(2);
			}
			i++;
		} else {
			if (!strcmp(a, "--help") || !strcmp(a, "-h"))
				*help = true;
			argv[k++] = argv[i];
		}
	}
	*argc = k;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_target t[7];
	struct bench_json j;
	char machine[128], tcp[64], path[160], http[64];
	bool have_nginx, help = false, mode_on[NMODES] = {true, true}, ok;
	int rc = 0;

	own_args(&argc, argv, mode_on, &help);
	if (help)
		printf("  --rounds N   interleaved rounds per mode (default 3; --quick 1)\n"
		       "  --secs S     seconds per wrk run (default 5; --quick 1)\n"
		       "  --mode M     pinned, unpinned or both (default both)\n"
		       "  --conf LINE  one more \"key = value\" line in lutfd's [lutfd] section\n");
	bench_parse_args(argc, argv,
			 "HTTP gateway vs nginx, pinned and unpinned, vs the binary "
			 "protocol (wrk)",
			 &o);
	if (o.quick) {
		secs = 1;
		rounds = 1;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "http: needs root (lutfd); skipped\n");
		return 77;
	}
	if (!have("wrk")) {
		fprintf(stderr, "http: wrk not installed (apt-get install wrk)%s\n",
			required("wrk") ? "" : "; skipped");
		return required("wrk") ? 1 : 77;
	}
	have_nginx = access("/usr/sbin/nginx", X_OK) == 0;
	if (!have_nginx)
		fprintf(stderr, "http: nginx not installed (apt-get install nginx-light): "
				"lutfd only\n");
	if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus))
		return 1;
	if (mode_on[M_PINNED] && (!CPU_ISSET(0, &all_cpus) || !CPU_ISSET(1, &all_cpus))) {
		fprintf(stderr, "http: pinned mode needs CPUs 0 and 1: unpinned only\n");
		mode_on[M_PINNED] = false;
	}
	bench_machine(machine, sizeof(machine));
	snprintf(tmp, sizeof(tmp), "/tmp/lutf-httpb-XXXXXX");
	if (!mkdtemp(tmp)) {
		tmp[0] = 0;
		return 1;
	}
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);

	/* Interleaved: each round runs every mode, lutfd then nginx. */
	for (int r = 0; r < rounds; r++)
		for (int m = 0; m < NMODES; m++) {
			if (!mode_on[m])
				continue;
			if (!round_lutfd(m, r))
				rc = 1;
			if (have_nginx && !round_nginx(m, r))
				rc = 1;
		}

	/* The binary protocol: one unpinned lutfd, as before. */
	ok = !lutfd_up(false, http, sizeof(http));
	if (ok && !bench_lutfd_addr(&lutfd, "tcp.addr", tcp, sizeof(tcp)))
		tcp[0] = 0;
	if (ok && tcp[0]) {
		rows[R_BIN_TCP].rps = bin_rps(true, tcp);
		rows[R_BIN_TCP].ran =
		    !isnan(rows[R_BIN_TCP].rps) &&
		    bin_lat(true, tcp, &rows[R_BIN_TCP].p50_ns, &rows[R_BIN_TCP].p99_ns);
	} else {
		snprintf(rows[R_BIN_TCP].why, sizeof(rows[R_BIN_TCP].why),
			 ok ? "no TCP listener" : "lutfd did not start");
	}
	if (ok) {
		bench_lutfd_path(&lutfd, "lutf.sock", path, sizeof(path));
		rows[R_BIN_UNIX].rps = bin_rps(false, path);
		rows[R_BIN_UNIX].ran =
		    !isnan(rows[R_BIN_UNIX].rps) &&
		    bin_lat(false, path, &rows[R_BIN_UNIX].p50_ns, &rows[R_BIN_UNIX].p99_ns);
	}
	if (!rows[R_BIN_UNIX].ran || (tcp[0] && !rows[R_BIN_TCP].ran)) {
		fprintf(stderr, "http: binary protocol runs failed\n");
		rc = 1;
	}
	if (bench_lutfd_stop(&lutfd, 5000))
		rc = 1;

	{
		struct agg u = agg(M_UNPINNED, S_LUTFD, F_RPS),
			   up99 = agg(M_UNPINNED, S_LUTFD, F_P99),
			   pcs = agg(M_PINNED, S_LUTFD, F_CS64);
		double un = ratio(M_UNPINNED, F_RPS), pn = ratio(M_PINNED, F_RPS),
		       pp = ratio(M_PINNED, F_P99), upp = ratio(M_UNPINNED, F_P99);

		t[0] = (struct bench_target){"http_rps_64",
					     "HTTP no-op at 64 connections (req/s)",
					     u.med,
					     50000,
					     u.med >= 50000,
					     "req/s",
					     !u.n};
		t[1] = (struct bench_target){"http_vs_nginx",
					     "HTTP req/s over nginx return 200 (x)",
					     un,
					     0.8,
					     un >= 0.8,
					     "x",
					     isnan(un)};
		t[2] = (struct bench_target){"http_p99_1conn_us",
					     "HTTP p99 at 1 connection (us)",
					     up99.med / 1e3,
					     200,
					     up99.med < 200e3,
					     "us",
					     !up99.n};
		t[3] = (struct bench_target){"pinned_http_vs_nginx",
					     "pinned: HTTP req/s over nginx's (x)",
					     pn,
					     0.8,
					     pn >= 0.8,
					     "x",
					     isnan(pn)};
		t[4] = (struct bench_target){"pinned_cs_per_call_64",
					     "pinned: context switches per call @64",
					     pcs.med,
					     0.25,
					     pcs.med <= 0.25,
					     "",
					     !pcs.n};
		t[5] = (struct bench_target){"pinned_p99_vs_nginx",
					     "pinned: HTTP p99 @1 over nginx's (x)",
					     pp,
					     1.0,
					     pp <= 1.0,
					     "x",
					     isnan(pp)};
		t[6] = (struct bench_target){"p99_vs_nginx",
					     "unpinned: HTTP p99 @1 over nginx's (x)",
					     upp,
					     1.0,
					     upp <= 1.0,
					     "x",
					     isnan(upp)};
	}
	if (!o.json) {
		print_table(machine, mode_on);
		bench_targets_print(t, 7);
		return rc;
	}
	bench_json_begin(&j, stdout);
	bench_json_str(&j, "bench", "http");
	bench_json_str(&j, "machine", machine);
	bench_json_num(&j, "seconds_per_run", secs);
	bench_json_num(&j, "rounds", rounds);
	bench_json_obj(&j, "modes");
	for (int m = 0; m < NMODES; m++) {
		if (!mode_on[m])
			continue;
		bench_json_obj(&j, mode_name[m]);
		for (int sv = 0; sv < NSRV; sv++)
			json_samples(&j, m, sv);
		bench_json_num(&j, "rps_ratio_http_nginx", ratio(m, F_RPS));
		bench_json_num(&j, "p99_ratio_http_nginx", ratio(m, F_P99));
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_obj(&j, "rows");
	for (int i = 0; i < NBIN; i++) {
		bench_json_obj(&j, bin_key[i]);
		bench_json_str(&j, "name", bin_name[i]);
		bench_json_bool(&j, "ran", rows[i].ran);
		bench_json_num(&j, "rps_64", rows[i].ran ? rows[i].rps : NAN);
		bench_json_num(&j, "p50_1_ns", rows[i].ran ? rows[i].p50_ns : NAN);
		bench_json_num(&j, "p99_1_ns", rows[i].ran ? rows[i].p99_ns : NAN);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_targets_json(&j, t, 7);
	bench_json_end(&j);
	return rc;
}
