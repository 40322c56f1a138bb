/* SPDX-License-Identifier: MIT */
/*
 * http: lutfd's HTTP gateway next to nginx and lutfd's binary protocol, in
 * one run on this machine. A no-op invoke (examples hello.so "noop", POST
 * with a 1-byte body) driven by wrk at 64 connections (requests/s) and at 1
 * connection (median and p99 from wrk --latency); nginx answering
 * `return 200 "ok"` from a temporary config on a loopback port (one worker
 * process, a foreground child, no root paths), driven by the same wrk
 * script; and the binary protocol over TCP and Unix by a C client here (64
 * connections with one call each in flight; exact percentiles at 1).
 * Targets are printed, never asserted. Exit 77 (skipped) without root or wrk
 * (unless LUTF_TEST_REQUIRE names "wrk"); 1 when something fails.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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
#include "wire.h"

#define CONNS 64

enum { R_HTTP, R_NGINX, R_BIN_TCP, R_BIN_UNIX, NROWS };
static const char *const row_name[NROWS] = {"lutfd HTTP (wrk)", "nginx return 200 (wrk)",
					    "lutfd binary, TCP (C client)",
					    "lutfd binary, Unix (C client)"};
static const char *const row_key[NROWS] = {"http", "nginx", "binary_tcp", "binary_unix"};

struct row {
	bool ran;
	double rps;	       /* 64 connections */
	double p50_ns, p99_ns; /* 1 connection */
	char why[96];	       /* not ran: why */
};

static struct row rows[NROWS];
static struct bench_lutfd lutfd = {.name = "http"};
static pid_t nginx_pid;
static double secs = 5;

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

static void cleanup(void)
{
	if (nginx_pid > 0) {
		kill(nginx_pid, SIGTERM);
		waitpid(nginx_pid, NULL, 0);
	}
	bench_lutfd_stop(&lutfd, 5000);
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

/* Run wrk on url; fills rps (conns > 1) or the 50% and 99% lines. */
static bool wrk_run(const char *url, int conns, struct row *r)
{
	char cmd[512], line[256], lua[128];
	bool got = false;
	FILE *fp;

	snprintf(lua, sizeof(lua), "%s/post.lua", lutfd.dir);
	fp = fopen(lua, "w");
	if (!fp)
		return false;
	fprintf(fp, "wrk.method = \"POST\"\nwrk.body = \"x\"\n");
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "wrk -t%d -c%d -d%.0fs %s -s %s %s 2>&1", conns > 1 ? 2 : 1,
		 conns, secs, conns > 1 ? "" : "--latency", lua, url);
	fp = popen(cmd, "r");
	if (!fp)
		return false;
	while (fgets(line, sizeof(line), fp)) {
		char *p = line + strspn(line, " \t");

		if (!strncmp(p, "Requests/sec:", 13)) {
			if (conns > 1)
				r->rps = strtod(p + 13, NULL);
			got = true;
		} else if (conns == 1 && !strncmp(p, "50%", 3)) {
			r->p50_ns = wrk_time(p + 3 + strspn(p + 3, " \t"));
		} else if (conns == 1 && !strncmp(p, "99%", 3)) {
			r->p99_ns = wrk_time(p + 3 + strspn(p + 3, " \t"));
		} else if (strstr(p, "Non-2xx")) {
			fprintf(stderr, "http: wrk %s: %s", url, p);
			got = false;
			break;
		}
	}
	return pclose(fp) == 0 && got;
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

/* nginx in the foreground on a free loopback port; returns the port or -1. */
static int start_nginx(void)
{
	char conf[128], log[128], prefix[96], nginx[] = "/usr/sbin/nginx";
	char *argv[] = {nginx, "-p", prefix, "-c", conf, "-e", log, NULL};
	int port = free_port(), fd = -1;
	uint64_t until;
	FILE *fp;

	snprintf(prefix, sizeof(prefix), "%s/nginx", lutfd.dir);
	snprintf(conf, sizeof(conf), "%s/nginx.conf", prefix);
	snprintf(log, sizeof(log), "%s/error.log", prefix);
	if (port < 0 || mkdir(prefix, 0755) || !(fp = fopen(conf, "w")))
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
	nginx_pid = spawn(argv, log);
	until = bench_now_ns() + 5000000000ull;
	while (bench_now_ns() < until) {
		char hp[32];

		snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
		fd = bench_connect_tcp(hp);
		if (fd >= 0) {
			close(fd);
			return port;
		}
		if (waitpid(nginx_pid, NULL, WNOHANG) == nginx_pid) {
			nginx_pid = 0;
			break;
		}
		bench_sleep_ns(10000000);
	}
	fprintf(stderr, "http: nginx did not come up (log %s)\n", log);
	return -1;
}

/* ---- report ---- */

static void print_table(const struct bench_opts *o, const char *machine)
{
	char a[32], b[32];

	if (o->json)
		return;
	printf("http: no-op invoke, %s, %.0f s per run\n\n", machine, secs);
	printf("%-32s %14s %12s %12s\n", "server", "req/s @64", "p50 @1", "p99 @1");
	for (int i = 0; i < NROWS; i++) {
		if (!rows[i].ran) {
			printf("%-32s %14s %12s %12s  (%s)\n", row_name[i], "SKIP", "-", "-",
			       rows[i].why);
			continue;
		}
		printf("%-32s %14.0f %12s %12s\n", row_name[i], rows[i].rps,
		       bench_fmt_ns(a, sizeof(a), rows[i].p50_ns),
		       bench_fmt_ns(b, sizeof(b), rows[i].p99_ns));
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_target t[3];
	struct bench_json j;
	char machine[128], http[64], tcp[64], path[160], url[160];
	bool have_nginx;
	int port, rc = 0;

	bench_parse_args(argc, argv, "HTTP gateway vs nginx vs the binary protocol (wrk)", &o);
	if (o.quick)
		secs = 1;
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
	bench_machine(machine, sizeof(machine));
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);
	if (bench_lutfd_start(&lutfd,
			      "listen_tcp = 127.0.0.1:0\nhttp_listen = 127.0.0.1:0\n"
			      "admin_listen = off\nallow_tier_none = on\n",
			      10000) ||
	    deploy())
		return 1;
	if (!bench_lutfd_addr(&lutfd, "http.addr", http, sizeof(http))) {
		fprintf(stderr, "http: lutfd wrote no http.addr\n");
		return 1;
	}
	if (!bench_lutfd_addr(&lutfd, "tcp.addr", tcp, sizeof(tcp)))
		tcp[0] = 0;

	snprintf(url, sizeof(url), "http://%s/fn/bh/noop", http);
	rows[R_HTTP].ran = wrk_run(url, CONNS, &rows[R_HTTP]) && wrk_run(url, 1, &rows[R_HTTP]);
	if (!rows[R_HTTP].ran) {
		fprintf(stderr, "http: wrk against lutfd failed\n");
		rc = 1;
	}
	if (!have_nginx) {
		snprintf(rows[R_NGINX].why, sizeof(rows[R_NGINX].why),
			 "nginx not installed: apt-get install nginx-light");
	} else if ((port = start_nginx()) > 0) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
		rows[R_NGINX].ran =
		    wrk_run(url, CONNS, &rows[R_NGINX]) && wrk_run(url, 1, &rows[R_NGINX]);
		kill(nginx_pid, SIGTERM);
		waitpid(nginx_pid, NULL, 0);
		nginx_pid = 0;
	}
	if (have_nginx && !rows[R_NGINX].ran) {
		snprintf(rows[R_NGINX].why, sizeof(rows[R_NGINX].why), "nginx run failed");
		rc = 1;
	}
	if (tcp[0]) {
		rows[R_BIN_TCP].rps = bin_rps(true, tcp);
		rows[R_BIN_TCP].ran =
		    !isnan(rows[R_BIN_TCP].rps) &&
		    bin_lat(true, tcp, &rows[R_BIN_TCP].p50_ns, &rows[R_BIN_TCP].p99_ns);
	} else {
		snprintf(rows[R_BIN_TCP].why, sizeof(rows[R_BIN_TCP].why), "no TCP listener");
	}
	bench_lutfd_path(&lutfd, "lutf.sock", path, sizeof(path));
	rows[R_BIN_UNIX].rps = bin_rps(false, path);
	rows[R_BIN_UNIX].ran =
	    !isnan(rows[R_BIN_UNIX].rps) &&
	    bin_lat(false, path, &rows[R_BIN_UNIX].p50_ns, &rows[R_BIN_UNIX].p99_ns);
	if (!rows[R_BIN_UNIX].ran || (tcp[0] && !rows[R_BIN_TCP].ran)) {
		fprintf(stderr, "http: binary protocol runs failed\n");
		rc = 1;
	}

	t[0] = (struct bench_target){"http_rps_64",
				     "HTTP no-op at 64 connections (req/s)",
				     rows[R_HTTP].rps,
				     50000,
				     rows[R_HTTP].rps >= 50000,
				     "req/s",
				     !rows[R_HTTP].ran};
	t[1] = (struct bench_target){"http_vs_nginx",
				     "HTTP req/s over nginx return 200 (x)",
				     rows[R_NGINX].ran ? rows[R_HTTP].rps / rows[R_NGINX].rps : NAN,
				     0.8,
				     false,
				     "x",
				     !rows[R_HTTP].ran || !rows[R_NGINX].ran};
	t[1].pass = !t[1].skipped && t[1].value >= 0.8;
	t[2] = (struct bench_target){"http_p99_1conn_us",
				     "HTTP p99 at 1 connection (us)",
				     rows[R_HTTP].p99_ns / 1e3,
				     200,
				     rows[R_HTTP].p99_ns < 200e3,
				     "us",
				     !rows[R_HTTP].ran};
	print_table(&o, machine);
	if (o.json) {
		bench_json_begin(&j, stdout);
		bench_json_str(&j, "bench", "http");
		bench_json_str(&j, "machine", machine);
		bench_json_num(&j, "seconds_per_run", secs);
		bench_json_obj(&j, "rows");
		for (int i = 0; i < NROWS; i++) {
			bench_json_obj(&j, row_key[i]);
			bench_json_str(&j, "name", row_name[i]);
			bench_json_bool(&j, "ran", rows[i].ran);
			bench_json_num(&j, "rps_64", rows[i].ran ? rows[i].rps : NAN);
			bench_json_num(&j, "p50_1_ns", rows[i].ran ? rows[i].p50_ns : NAN);
			bench_json_num(&j, "p99_1_ns", rows[i].ran ? rows[i].p99_ns : NAN);
			bench_json_close_obj(&j);
		}
		bench_json_close_obj(&j);
		bench_targets_json(&j, t, 3);
		bench_json_end(&j);
	} else {
		bench_targets_print(t, 3);
	}
	return rc;
}
