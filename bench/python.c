/* SPDX-License-Identifier: MIT */
/*
 * python: Python functions through lutfd (issue #14), side by side in one
 * run. A Python no-op against the C no-op (binary protocol over Unix, 64
 * calls in flight on one connection; and over HTTP with wrk, 64
 * connections, when wrk is installed); over HTTP against uWSGI running the
 * same handler as a WSGI app (2 processes, --http-socket; when installed:
 * scripts/deps.sh --bench); against a CGI-style fork+exec of
 * Debian's python3.11 per request (2 at a time, the 2 vCPUs); 200 calls of a
 * Python function sleeping 10 ms on 2 Carts and 16 Labors, labor_watch (BPF)
 * against lutfd's polling Supervisor (bpf = off) and against one Labor per
 * Cart (no hand-off possible), each on a lutfd of its own; deploy of
 * a new Python tenant to its first OK call (and a C tenant's); an idle
 * Python worker's private memory (and a C worker's). Targets are printed,
 * never asserted; a wrong status or a lost reply exits 1; not root exits 77.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common.h"
#include "fault_util.h"

#define WINDOW 64
#define PY_BIN "/usr/bin/python3.11" /* Debian's, never one found on PATH */

static struct td d;
static int cfd = -1, dfd = -1;

static __attribute__((noreturn)) void die(const char *what, uint32_t st, const char *text)
{
	fprintf(stderr, "python: %s: status %u (%s); lutfd log %s\n", what, st, text, d.log);
	td_stop(&d);
	exit(1);
}

/* Deploy path as tenant/app, kind "python" or "native". Returns the status. */
static uint32_t deploy(const char *tenant, const char *app, const char *path,
		       const char *const *exports, const char *kind)
{
	struct lutf_buf b;
	struct td_reply r;
	size_t len = 0, fo;
	uint8_t *so = td_slurp(path, &len);
	uint32_t st;

	if (!so)
		die(path, 0, "unreadable");
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_DEPLOY, 0, 5);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_APP, app);
	lutf_tlv_put(&b, LUTF_TAG_SO, so, len);
	lutf_tlv_put_str(&b, LUTF_TAG_KIND, kind);
	lutf_tlv_put_str(&b, LUTF_TAG_TIER, "basic");
	for (; *exports; exports++)
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, *exports);
	lutf_frame_end(&b, fo);
	st = td_call(cfd, &b, &r, 20000);
	lutf_buf_free(&b);
	free(so);
	free(r.payload);
	return st;
}

static const char *const py_ex[] = {"noop=greeter:noop", "nap=greeter:nap", NULL};
static const char *const c_ex[] = {"noop=noop", NULL};

/* n calls of tenant/fn with WINDOW in flight; calls per second. */
static double throughput(const char *tenant, const char *fn, const char *in, uint64_t n, int window)
{
	uint64_t sent = 0, got = 0, id, t0 = bench_now_ns();
	struct fx_res r;

	for (; sent < n && sent < (uint64_t)window; sent++)
		if (!fx_send(dfd, sent, tenant, fn, in, 0))
			die("send", 0, fn);
	while (got < n) {
		if (!fx_recv(dfd, &id, &r, 20000) || r.status != LUTF_STATUS_OK)
			die(fn, r.status, r.text);
		got++;
		if (sent < n && !fx_send(dfd, sent++, tenant, fn, in, 0))
			die("send", 0, fn);
	}
	return (double)n / ((double)(bench_now_ns() - t0) / 1e9);
}

/* CPU time (ms) every thread of tenant's worker has used since its fork
 * (/proc/PID/task/TID/schedstat, ns on CPU); NAN if unknown. Unlike wall
 * time on this shared host, it does not grow with the host's load. */
static double worker_cpu_ms(const char *tenant)
{
	uint64_t pid = 0;
	char path[96];
	double ns = 0;
	DIR *dir;
	struct dirent *e;

	if (!td_tenant_counter(cfd, tenant, "worker_pid", &pid) || !pid)
		return NAN;
	snprintf(path, sizeof(path), "/proc/%llu/task", (unsigned long long)pid);
	dir = opendir(path);
	if (!dir)
		return NAN;
	while ((e = readdir(dir))) {
		unsigned long long v;
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%llu/task/%.16s/schedstat",
			 (unsigned long long)pid, e->d_name);
		fp = fopen(path, "re");
		if (fp && fscanf(fp, "%llu", &v) == 1)
			ns += (double)v;
		if (fp)
			fclose(fp);
	}
	closedir(dir);
	return ns / 1e6;
}

/* Deploy a new tenant, then call fn until OK: milliseconds in all; *cpu:
 * the worker's CPU time by then. */
static double cold_start(const char *tenant, const char *path, const char *const *ex,
			 const char *kind, double *cpu)
{
	uint64_t t0 = bench_now_ns();
	uint32_t st = deploy(tenant, "app", path, ex, kind);
	struct fx_res r;

	if (st != LUTF_STATUS_OK)
		die("deploy", st, tenant);
	for (int i = 0; i < 200; i++) {
		r = fx_call(dfd, tenant, "noop", "", 0, 5000);
		if (r.status == LUTF_STATUS_OK) {
			double ms = (double)(bench_now_ns() - t0) / 1e6;

			*cpu = worker_cpu_ms(tenant);
			return ms;
		}
	}
	die("first call", r.status, r.text);
}

/* wrk (-t2 -c64, POST of one byte) on http://host:port/path for secs
 * seconds: requests per second, or NAN (no wrk, an error, a non-2xx). */
static double wrk_rps(const char *http, const char *path, int secs)
{
	char cmd[512], line[256], lua[128];
	double rps = NAN;
	bool bad = false;
	FILE *fp;

	snprintf(lua, sizeof(lua), "%s/post.lua", d.dir);
	fp = fopen(lua, "w");
	if (!fp)
		return NAN;
	fprintf(fp, "wrk.method = \"POST\"\nwrk.body = \"x\"\n");
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "wrk -t2 -c%d -d%ds -s %s http://%s%s 2>&1", WINDOW, secs, lua,
		 http, path);
	fp = popen(cmd, "r");
	if (!fp)
		return NAN;
	while (fgets(line, sizeof(line), fp)) {
		char *p = line + strspn(line, " \t");

		if (!strncmp(p, "Requests/sec:", 13))
			rps = strtod(p + 13, NULL);
		else if (strstr(p, "Non-2xx"))
			bad = true;
		else if (!strncmp(p, "Socket errors:", 14)) {
			unsigned long c = 0, rd = 0, w = 0, t = 0;

			/* read errors: the server closed after its answer (uWSGI's
			 * --http-socket does not keep connections alive) */
			if (sscanf(p,
				   "Socket errors: connect %lu, read %lu, write %lu, timeout %lu",
				   &c, &rd, &w, &t) != 4 ||
			    c || w || t)
				bad = true;
		}
	}
	if (pclose(fp) != 0 || bad)
		return NAN;
	return rps;
}

/* uWSGI (Debian's uwsgi_python3, BENCH_PKGS) serving bench/python_wsgi.py,
 * the same no-op as a WSGI app: 2 processes, --http-socket on a free
 * loopback port, in a process group of its own. Returns its pid (port in
 * *port) once it accepts, or -1 (not installed, did not start). */
static pid_t uwsgi_start(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	char sock[32], log[128];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	close(fd);
	snprintf(sock, sizeof(sock), "127.0.0.1:%d", *port);
	snprintf(log, sizeof(log), "%s/uwsgi.log", d.dir[0] ? d.dir : "/tmp");
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out >= 0) {
			dup2(out, 1);
			dup2(out, 2);
		}
		execlp("uwsgi_python3", "uwsgi_python3", "--http-socket", sock, "--wsgi-file",
		       BENCH_DIR "/python_wsgi.py", "--pythonpath", EXAMPLE_PY_DIR, "--processes",
		       "2", "--master", "--disable-logging", "--die-on-term", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		int c = td_connect_tcp(sock);

		if (c >= 0) {
			close(c);
			return pid;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		td_sleep_ms(50);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* Private memory (clean + dirty) of tenant's worker, KiB; NAN if unknown. */
static double private_kib(const char *tenant)
{
	uint64_t pid = 0;
	char path[64], line[128];
	double kib = 0;
	FILE *fp;

	if (!td_tenant_counter(cfd, tenant, "worker_pid", &pid) || !pid)
		return NAN;
	snprintf(path, sizeof(path), "/proc/%llu/smaps_rollup", (unsigned long long)pid);
	fp = fopen(path, "re");
	if (!fp)
		return NAN;
	while (fgets(line, sizeof(line), fp)) {
		unsigned long v;

		if (sscanf(line, "Private_Clean: %lu", &v) == 1 ||
		    sscanf(line, "Private_Dirty: %lu", &v) == 1)
			kib += (double)v;
	}
	fclose(fp);
	return kib;
}

/* CGI: n runs of python3.11 on the example, `par` at a time; runs/s. */
static double cgi(int n, int par)
{
	uint64_t t0 = bench_now_ns();
	int running = 0, done = 0, started = 0;

	while (done < n) {
		int status;

		while (running < par && started < n) {
			pid_t pid = fork();

			if (pid < 0)
				die("fork", 0, "cgi");
			if (pid == 0) {
				/* The same module and function, run as a process: import,
				 * call noop, exit (what a CGI watchdog does per request). */
				execl(PY_BIN, PY_BIN, "-I", "-S", "-B", "-c",
				      "import sys; sys.path.insert(0, '" EXAMPLE_PY_DIR "');"
				      "import greeter; greeter.noop(None)",
				      (char *)NULL);
				_exit(127);
			}
			running++;
			started++;
		}
		if (wait(&status) < 0)
			die("wait", 0, "cgi");
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			die("cgi run", (uint32_t)status, PY_BIN);
		running--;
		done++;
	}
	return (double)n / ((double)(bench_now_ns() - t0) / 1e9);
}

/* A lutfd for the sleep test: 2 Carts, labors Labors, bpf on or off; the
 * median over rounds (at most 5) of the ms for calls sleeping calls, all
 * sent at once. */
static double sleepers(bool bpf, int labors, int calls, int rounds)
{
	char conf[200];
	double ms, each[5];
	uint64_t t0;

	snprintf(conf, sizeof(conf), "carts = 2\nlabors = %d\nlabors_max = %d\nbpf = %s\n", labors,
		 labors, bpf ? "on" : "off");
	if (!td_start(&d, conf))
		die("lutfd start", 0, bpf ? "bpf on" : "bpf off");
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	if (cfd < 0 || dfd < 0)
		die("connect", 0, "");
	if (deploy("nap", "app", EXAMPLE_PY_DIR "/greeter.py", py_ex, "python") != LUTF_STATUS_OK)
		die("deploy", 0, "nap");
	throughput("nap", "nap", "1", 32, labors); /* warm: every Labor up and watched */
	bench_sleep_ns(200 * 1000000ull);
	for (int k = 0; k < rounds; k++) {
		t0 = bench_now_ns();
		throughput("nap", "nap", "10", (uint64_t)calls, calls);
		each[k] = (double)(bench_now_ns() - t0) / 1e6;
	}
	ms = bench_median_d(each, (size_t)rounds);
	close(dfd);
	td_close_stop(&d, &cfd);
	return ms;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_target t[10];
	double py_rps[5], c_rps[5], ratio[5], cold_py[6], cold_c[6], mem_py, mem_c;
	double cpu_py[6], cpu_c[6], cpu_py_med, cpu_c_med;
	double hpy[5], hc[5], hratio[5], hpy_med = NAN, hc_med = NAN, hratio_med = NAN;
	double uw[5], hpy2[5], uwratio[5], uw_med = NAN, uwratio_med = NAN;
	char http[64];
	double py_med, c_med, ratio_med, cgi_rps, nap_bpf, nap_poll, nap_none, cold_py_med,
	    cold_c_med;
	char machine[128];
	int rounds, ncold, ncgi, nt = 0;
	uint64_t n;

	bench_parse_args(argc, argv,
			 "Python functions through lutfd: no-op against C and CGI, sleeping "
			 "calls with labor_watch on and off, cold start, idle memory. Needs "
			 "root (else exit 77).",
			 &o);
	if (geteuid() != 0) {
		fprintf(stderr, "python: skipped: lutfd needs root (zygote, worker uids)\n");
		return 77;
	}
	rounds = o.quick ? 2 : 5;
	n = o.quick ? 2000 : 20000;
	ncold = o.quick ? 2 : 6; /* 2 tenants each, + 1: within the 16 uids of td_start */
	ncgi = o.quick ? 6 : 40;
	bench_machine(machine, sizeof(machine));
	if (!td_start(&d, "carts = 2\nlabors = 4\nhttp_listen = 127.0.0.1:0\n"))
		die("lutfd start", 0, "");
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	if (cfd < 0 || dfd < 0)
		die("connect", 0, "");
	cold_start("warm", HELLO_SO, c_ex, "native", &cpu_py[0]); /* BPF load: nobody's cost */
	for (int i = 0; i < ncold; i++) {
		char tp[16], tc[16];

		snprintf(tp, sizeof(tp), "py%d", i);
		snprintf(tc, sizeof(tc), "c%d", i);
		cold_py[i] =
		    cold_start(tp, EXAMPLE_PY_DIR "/greeter.py", py_ex, "python", &cpu_py[i]);
		cold_c[i] = cold_start(tc, HELLO_SO, c_ex, "native", &cpu_c[i]);
	}
	bench_sleep_ns(300 * 1000000ull); /* idle */
	mem_py = private_kib("py0");
	mem_c = private_kib("c0");
	/* Rounds, Python and C in turn: noise hits both alike. */
	for (int k = 0; k < rounds; k++) {
		py_rps[k] = throughput("py0", "noop", "", n / (uint64_t)rounds, WINDOW);
		c_rps[k] = throughput("c0", "noop", "", n / (uint64_t)rounds, WINDOW);
		ratio[k] = py_rps[k] / c_rps[k];
	}
	/* The same over HTTP with wrk, when wrk is here (scripts/deps.sh --bench). */
	if (td_addr(&d, "http.addr", http, sizeof(http)) && !system("command -v wrk >/dev/null")) {
		for (int k = 0; k < rounds; k++) {
			hpy[k] = wrk_rps(http, "/fn/py0/noop", o.quick ? 1 : 3);
			hc[k] = wrk_rps(http, "/fn/c0/noop", o.quick ? 1 : 3);
			hratio[k] = hpy[k] / hc[k];
		}
		if (!isnan(hratio[0])) {
			hpy_med = bench_median_d(hpy, (size_t)rounds);
			hc_med = bench_median_d(hc, (size_t)rounds);
			hratio_med = bench_median_d(hratio, (size_t)rounds);
		}
	}
	/* uWSGI with the same handler, wrk the same way, alternating with lutf. */
	if (!isnan(hpy_med)) {
		int port;
		pid_t up = uwsgi_start(&port);

		if (up > 0) {
			char addr[32];

			snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
			for (int k = 0; k < rounds; k++) {
				uw[k] = wrk_rps(addr, "/", o.quick ? 1 : 3);
				hpy2[k] = wrk_rps(http, "/fn/py0/noop", o.quick ? 1 : 3);
				uwratio[k] = hpy2[k] / uw[k];
			}
			kill(-up, SIGKILL);
			waitpid(up, NULL, 0);
			if (!isnan(uwratio[0])) {
				uw_med = bench_median_d(uw, (size_t)rounds);
				uwratio_med = bench_median_d(uwratio, (size_t)rounds);
			}
		}
	}
	close(dfd);
	td_close_stop(&d, &cfd);
	py_med = bench_median_d(py_rps, (size_t)rounds);
	c_med = bench_median_d(c_rps, (size_t)rounds);
	ratio_med = bench_median_d(ratio, (size_t)rounds);
	cold_py_med = bench_median_d(cold_py, (size_t)ncold);
	cold_c_med = bench_median_d(cold_c, (size_t)ncold);
	cpu_py_med = bench_median_d(cpu_py, (size_t)ncold);
	cpu_c_med = bench_median_d(cpu_c, (size_t)ncold);
	cgi_rps = cgi(ncgi, 2);
	nap_bpf = sleepers(true, 16, 200, o.quick ? 1 : 3);
	nap_poll = sleepers(false, 16, 200, o.quick ? 1 : 3);
	nap_none = sleepers(true, 2, 200, o.quick ? 1 : 3); /* one Labor per Cart: no hand-off */

	t[nt++] = (struct bench_target){
	    "py_vs_c_noop_http", "HTTP: Python no-op / C no-op (wrk, 64 conns)",
	    hratio_med,		 0.6,
	    hratio_med >= 0.6,	 "x",
	    isnan(hratio_med)};
	t[nt++] = (struct bench_target){
	    "py_vs_uwsgi_http", "HTTP: Python no-op / uWSGI, 2 processes (wrk)",
	    uwratio_med,	2,
	    uwratio_med >= 2,	"x",
	    isnan(uwratio_med)};
	t[nt++] = (struct bench_target){"py_vs_c_noop",
					"Python no-op / C no-op (64 in flight)",
					ratio_med,
					0.6,
					ratio_med >= 0.6,
					"x",
					false};
	t[nt++] = (struct bench_target){"py_vs_cgi",
					"Python no-op / CGI fork+exec python3",
					py_med / cgi_rps,
					200,
					py_med / cgi_rps >= 200,
					"x",
					false};
	t[nt++] = (struct bench_target){"sleep_handoff",
					"200 x sleep 10 ms: labor_watch vs no hand-off",
					nap_none / nap_bpf,
					6,
					nap_none / nap_bpf >= 6,
					"x",
					false};
	t[nt++] = (struct bench_target){"cold_start_ms",
					"new Python tenant: first OK call",
					cold_py_med,
					30,
					cold_py_med <= 30,
					"ms",
					false};
	t[nt++] = (struct bench_target){"idle_private_mib",
					"idle Python worker private memory",
					mem_py / 1024,
					12,
					mem_py / 1024 <= 12,
					"Mi",
					false};
	if (o.json) {
		struct bench_json j;

		bench_json_begin(&j, stdout);
		bench_json_str(&j, "bench", "python");
		bench_json_str(&j, "machine", machine);
		bench_json_bool(&j, "quick", o.quick);
		bench_json_num(&j, "py_noop_per_s", py_med);
		bench_json_num(&j, "c_noop_per_s", c_med);
		bench_json_num(&j, "http_py_noop_per_s", hpy_med);
		bench_json_num(&j, "http_c_noop_per_s", hc_med);
		bench_json_num(&j, "http_uwsgi_per_s", uw_med);
		bench_json_num(&j, "cgi_per_s", cgi_rps);
		bench_json_num(&j, "sleep200_bpf_ms", nap_bpf);
		bench_json_num(&j, "sleep200_poll_ms", nap_poll);
		bench_json_num(&j, "sleep200_no_handoff_ms", nap_none);
		bench_json_num(&j, "cold_start_py_ms", cold_py_med);
		bench_json_num(&j, "cold_start_c_ms", cold_c_med);
		bench_json_num(&j, "cold_worker_cpu_py_ms", cpu_py_med);
		bench_json_num(&j, "cold_worker_cpu_c_ms", cpu_c_med);
		bench_json_num(&j, "idle_private_py_kib", mem_py);
		bench_json_num(&j, "idle_private_c_kib", mem_c);
		bench_targets_json(&j, t, nt);
		bench_json_end(&j);
		return 0;
	}
	printf("python: %s%s\n\n", machine, o.quick ? " (quick)" : "");
	printf("%-46s %14s %14s\n", "", "Python", "C / baseline");
	printf("%-46s %14.0f %14.0f\n", "no-op calls/s, 64 in flight (Unix, binary)", py_med,
	       c_med);
	printf("%-46s %14.0f %14.0f\n", "no-op requests/s over HTTP, wrk 64 connections", hpy_med,
	       hc_med);
	printf("%-46s %14.0f %14.0f\n", "  vs uWSGI, 2 processes, same handler (wrk)", hpy_med,
	       uw_med);
	printf("%-46s %14.0f %14.1f\n", "  vs CGI: fork+exec python3.11 runs/s (2 at once)", py_med,
	       cgi_rps);
	printf("%-46s %14.1f %14.1f\n", "200 x sleep 10 ms, 2 Carts 16 Labors: ms (bpf/poll)",
	       nap_bpf, nap_poll);
	printf("%-46s %14.1f %14.1f\n", "  the same, 1 Labor per Cart (no hand-off), ms", nap_bpf,
	       nap_none);
	printf("%-46s %14.1f %14.1f\n", "deploy new tenant -> first OK call, ms (median)",
	       cold_py_med, cold_c_med);
	printf("%-46s %14.1f %14s\n", "  Python's share: the difference, ms",
	       cold_py_med - cold_c_med, "");
	printf("%-46s %14.2f %14.2f\n", "  worker CPU from fork to first OK call, ms", cpu_py_med,
	       cpu_c_med);
	printf("%-46s %14.0f %14.0f\n", "idle worker private memory, KiB", mem_py, mem_c);
	bench_targets_print(t, nt);
	return 0;
}
