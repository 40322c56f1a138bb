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
 * Cart (no hand-off possible), each on a lutfd of its own; a CPU-bound
 * Python function (bench/apps/cpu.py) with workers = 2 against workers = 1
 * (2 processes, 2 GILs, on the 2 vCPUs), on a lutfd of its own; deploy of
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
static uint32_t deploy_n(const char *tenant, const char *app, const char *path,
			 const char *const *exports, const char *kind, uint32_t workers,
			 const char *tier)
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
	lutf_tlv_put_str(&b, LUTF_TAG_TIER, tier);
	for (; *exports; exports++)
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, *exports);
	if (workers)
		lutf_tlv_put_u32(&b, LUTF_TAG_WORKERS, workers);
	lutf_frame_end(&b, fo);
	st = td_call(cfd, &b, &r, 20000);
	lutf_buf_free(&b);
	free(so);
	free(r.payload);
	return st;
}

static uint32_t deploy(const char *tenant, const char *app, const char *path,
		       const char *const *exports, const char *kind)
{
	return deploy_n(tenant, app, path, exports, kind, 0, "basic");
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
 * the worker's CPU time by then; *dep: the deploy's share (until lutfd
 * answered it: worker started, app stored and loaded). */
static double cold_start_in(const char *tier, const char *tenant, const char *path,
			    const char *const *ex, const char *kind, double *cpu, double *dep)
{
	uint64_t t0 = bench_now_ns(), t1;
	uint32_t st = deploy_n(tenant, "app", path, ex, kind, 0, tier);
	struct fx_res r;

	t1 = bench_now_ns();
	if (st != LUTF_STATUS_OK)
		die("deploy", st, tenant);
	*dep = (double)(t1 - t0) / 1e6;
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

#define BURN_IN "20000" /* bench/apps/cpu.py's loop: ~2 ms of CPU per call */
#define BURN_WINDOW 8	/* calls in flight: enough for 2 workers of 4 Labors */

/* CPU (utime + stime, ms) of every worker process of tenant so far. */
static double workers_cpu_ms(const char *tenant)
{
	double ms = 0;
	uint64_t pid;
	char key[32], path[64], buf[1024], *p;

	for (int w = 0; w < 16; w++) {
		unsigned long long ut = 0, st = 0;
		FILE *fp;
		size_t n;

		snprintf(key, sizeof(key), "worker%d_pid", w);
		if (!td_tenant_counter(cfd, tenant, key, &pid))
			break;
		snprintf(path, sizeof(path), "/proc/%llu/stat", (unsigned long long)pid);
		if (!pid || !(fp = fopen(path, "re")))
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
		buf[n] = 0;
		/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
		 * majflt cmajflt utime stime */
		p = strrchr(buf, ')');
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
				&st) == 2)
			ms += (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
	}
	return ms;
}

/* calls/s of n burn calls on tenant; *cores: its workers' CPU over the wall
 * time. */
static double burn(const char *tenant, uint64_t n, double *cores)
{
	double cpu0 = workers_cpu_ms(tenant);
	uint64_t t0 = bench_now_ns();
	double rate = throughput(tenant, "burn", BURN_IN, n, BURN_WINDOW);

	*cores = (workers_cpu_ms(tenant) - cpu0) / ((double)(bench_now_ns() - t0) / 1e6);
	return rate;
}

/* A CPU-bound Python function (bench/apps/cpu.py) as two tenants of a lutfd
 * of its own (2 Carts, 4 Labors; cgroup = off when nocg), workers = 1 and
 * workers = 2, driven alternately (which goes first alternates too) with
 * BURN_WINDOW calls in flight: calls/s of each per round into one[] and
 * two[], the cores their workers used into c1[] and c2[]. */
static void burn_rounds(int rounds, uint64_t n, bool nocg, double *one, double *two, double *c1,
			double *c2)
{
	static const char *const ex[] = {"burn=cpu:burn", NULL};
	uint64_t up = 0;

	if (!td_start(&d,
		      nocg ? "carts = 2\nlabors = 4\ncgroup = off\n" : "carts = 2\nlabors = 4\n"))
		die("lutfd start", 0, "burn");
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	if (cfd < 0 || dfd < 0)
		die("connect", 0, "");

	if (deploy_n("w1", "cpu", BENCH_DIR "/apps/cpu.py", ex, "python", 1, "basic") !=
		LUTF_STATUS_OK ||
	    deploy_n("w2", "cpu", BENCH_DIR "/apps/cpu.py", ex, "python", 2, "basic") !=
		LUTF_STATUS_OK)
		die("deploy", 0, "w1/w2");
	if (!td_wait_tenant_counter(cfd, "w2", "workers_up", 2, 10000, &up))
		die("workers_up", (uint32_t)up, "w2");
	throughput("w1", "burn", BURN_IN, 16, BURN_WINDOW); /* warm: Labors up */
	throughput("w2", "burn", BURN_IN, 32, BURN_WINDOW);
	for (int k = 0; k < rounds; k++) {
		if (k & 1)
			two[k] = burn("w2", n, &c2[k]);
		one[k] = burn("w1", n, &c1[k]);
		if (!(k & 1))
			two[k] = burn("w2", n, &c2[k]);
	}
	close(dfd);
	td_close_stop(&d, &cfd);
}

/* The stages lutfd logged for tenant's first worker ("worker N up ... in
 * T ms: spawn S, cgroup G, confine+load L, start R"): st[0] = T (the whole
 * worker start), st[1] = S (the zygote's fork), st[2] = G (the move into the
 * tenant's cgroup), st[3] = R (START answered). False when not found. */
static bool log_stages(const char *tenant, double st[4])
{
	char line[512], key[64];
	bool found = false;
	FILE *fp = fopen(d.log, "re");

	if (!fp)
		return false;
	snprintf(key, sizeof(key), "tenant %s: worker ", tenant);
	while (!found && fgets(line, sizeof(line), fp)) {
		const char *p = strstr(line, key), *in;
		double l;

		if (p && strstr(p, " up (") && (in = strstr(p, ") in ")) &&
		    sscanf(in, ") in %lf ms: spawn %lf, cgroup %lf, confine+load %lf, start %lf",
			   &st[0], &st[1], &st[2], &l, &st[3]) == 5)
			found = true;
	}
	fclose(fp);
	return found;
}

static double cold_start(const char *tenant, const char *path, const char *const *ex,
			 const char *kind, double *cpu, double *dep)
{
	return cold_start_in("basic", tenant, path, ex, kind, cpu, dep);
}

/* The zygote's template against none: two lutfds side by side (tier none
 * allowed), one as shipped (the zygote holds a started interpreter) and one
 * with LUTF_PYTHON_TEMPLATE=off (each worker starts its own at its first
 * load); n new Python tenants on each, alternating (which goes first
 * alternates too), in tier none on both (basic refuses what an interpreter
 * start in a worker asks: sysinfo). Wall ms and worker CPU ms per tenant. */
static void template_ab(int n, double *on, double *off, double *cpu_on, double *cpu_off)
{
	static const char *const env_off[] = {"LUTF_PYTHON_TEMPLATE=off", NULL};
	static struct td d2 = {.env = env_off};
	const char *conf = "carts = 2\nlabors = 4\nallow_tier_none = on\n";
	int cfd1, dfd1, cfd2, dfd2;
	double dep;

	if (!td_start(&d, conf) || !td_start(&d2, conf))
		die("lutfd start", 0, "template a/b");
	cfd1 = td_connect(&d, "control.sock");
	dfd1 = td_connect(&d, "lutf.sock");
	cfd2 = td_connect(&d2, "control.sock");
	dfd2 = td_connect(&d2, "lutf.sock");
	if (cfd1 < 0 || dfd1 < 0 || cfd2 < 0 || dfd2 < 0)
		die("connect", 0, "template a/b");
	for (int i = -1; i < n; i++) {
		char t[16];
		double x, y;

		/* i = -1 warms both (BPF load, first spawn): nobody's cost. */
		snprintf(t, sizeof(t), "ab%d", i + 1);
		for (int k = 0; k < 2; k++) {
			bool first_on = (i & 1) == 0;
			bool is_on = k == 0 ? first_on : !first_on;

			cfd = is_on ? cfd1 : cfd2;
			dfd = is_on ? dfd1 : dfd2;
			x = cold_start_in("none", t, EXAMPLE_PY_DIR "/greeter.py", py_ex, "python",
					  &y, &dep);
			if (i < 0)
				continue;
			if (is_on) {
				on[i] = x;
				cpu_on[i] = y;
			} else {
				off[i] = x;
				cpu_off[i] = y;
			}
		}
	}
	close(dfd1);
	close(dfd2);
	td_close_stop(&d2, &cfd2);
	td_close_stop(&d, &cfd1);
	cfd = dfd = -1;
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
	struct bench_target t[12];
	double py_rps[5], c_rps[5], ratio[5], cold_py[6], cold_c[6], mem_py, mem_c;
	double cpu_py[6], cpu_c[6], cpu_py_med, cpu_c_med, dep_py[6], dep_c[6], dep_py_med,
	    dep_c_med;
	double hpy[5], hc[5], hratio[5], hpy_med = NAN, hc_med = NAN, hratio_med = NAN;
	double uw[5], hpy2[5], uwratio[5], uw_med = NAN, uwratio_med = NAN;
	double w1[5], w2[5], wratio[5], w1_med, w2_med, wratio_med, wratio_lo, wratio_hi;
	double stg_py[4][6], stg_c[4][6], stg_py_med[4], stg_c_med[4];
	double ab_on[6], ab_off[6], abc_on[6], abc_off[6], ab_on_med, ab_off_med, abc_on_med,
	    abc_off_med;
	double wc1[5], wc2[5], wc1_med, wc2_med;
	char http[64];
	double py_med, c_med, ratio_med, cgi_rps, nap_bpf, nap_poll, nap_none, cold_py_med,
	    cold_c_med;
	char machine[128];
	int rounds, ncold, ncgi, nt = 0;
	bool nocg;
	uint64_t n;

	bench_parse_args(argc, argv,
			 "Python functions through lutfd: no-op against C and CGI, sleeping "
			 "calls with labor_watch on and off, workers = 2 against 1 for a "
			 "CPU-bound function (LUTF_BENCH_CGROUP=off: without tenant cgroups), "
			 "cold start, idle memory. Needs root (else exit 77).",
			 &o);
	if (geteuid() != 0) {
		fprintf(stderr, "python: skipped: lutfd needs root (zygote, worker uids)\n");
		return 77;
	}
	rounds = o.quick ? 2 : 5;
	/* LUTF_BENCH_CGROUP=off: the workers = N lutfd has no tenant cgroups.
	 * On a busy host a tenant's cgroup gets one group's share of the CPU
	 * however many workers it has (bench/workers.c says the same). */
	nocg = getenv("LUTF_BENCH_CGROUP") && !strcmp(getenv("LUTF_BENCH_CGROUP"), "off");
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
	cold_start("warm", HELLO_SO, c_ex, "native", &cpu_py[0],
		   &dep_py[0]); /* BPF load: nobody's cost */
	for (int i = 0; i < ncold; i++) {
		char tp[16], tc[16];

		snprintf(tp, sizeof(tp), "py%d", i);
		snprintf(tc, sizeof(tc), "c%d", i);
		cold_py[i] = cold_start(tp, EXAMPLE_PY_DIR "/greeter.py", py_ex, "python",
					&cpu_py[i], &dep_py[i]);
		cold_c[i] = cold_start(tc, HELLO_SO, c_ex, "native", &cpu_c[i], &dep_c[i]);
	}
	/* Where a cold start goes, from lutfd's log: the worker's start
	 * (spawn, cgroup move, START) inside the DEPLOY's answer. */
	for (int i = 0; i < ncold; i++) {
		char tp[16], tc[16];
		double a[4] = {NAN, NAN, NAN, NAN}, b[4] = {NAN, NAN, NAN, NAN};

		snprintf(tp, sizeof(tp), "py%d", i);
		snprintf(tc, sizeof(tc), "c%d", i);
		log_stages(tp, a);
		log_stages(tc, b);
		for (int k = 0; k < 4; k++) {
			stg_py[k][i] = a[k];
			stg_c[k][i] = b[k];
		}
	}
	for (int k = 0; k < 4; k++) {
		stg_py_med[k] = bench_median_d(stg_py[k], (size_t)ncold);
		stg_c_med[k] = bench_median_d(stg_c[k], (size_t)ncold);
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
	/* Cold start with and without the zygote's started interpreter. */
	template_ab(ncold, ab_on, ab_off, abc_on, abc_off);
	ab_on_med = bench_median_d(ab_on, (size_t)ncold);
	ab_off_med = bench_median_d(ab_off, (size_t)ncold);
	abc_on_med = bench_median_d(abc_on, (size_t)ncold);
	abc_off_med = bench_median_d(abc_off, (size_t)ncold);
	/* workers = 2 against 1, CPU-bound Python: 2 processes, 2 GILs. */
	burn_rounds(rounds, o.quick ? 60 : 400, nocg, w1, w2, wc1, wc2);
	wratio_lo = INFINITY;
	wratio_hi = 0;
	for (int k = 0; k < rounds; k++) {
		wratio[k] = w2[k] / w1[k];
		wratio_lo = fmin(wratio_lo, wratio[k]);
		wratio_hi = fmax(wratio_hi, wratio[k]);
	}
	wc1_med = bench_median_d(wc1, (size_t)rounds);
	wc2_med = bench_median_d(wc2, (size_t)rounds);
	w1_med = bench_median_d(w1, (size_t)rounds);
	w2_med = bench_median_d(w2, (size_t)rounds);
	wratio_med = bench_median_d(wratio, (size_t)rounds);
	py_med = bench_median_d(py_rps, (size_t)rounds);
	c_med = bench_median_d(c_rps, (size_t)rounds);
	ratio_med = bench_median_d(ratio, (size_t)rounds);
	cold_py_med = bench_median_d(cold_py, (size_t)ncold);
	cold_c_med = bench_median_d(cold_c, (size_t)ncold);
	cpu_py_med = bench_median_d(cpu_py, (size_t)ncold);
	cpu_c_med = bench_median_d(cpu_c, (size_t)ncold);
	dep_py_med = bench_median_d(dep_py, (size_t)ncold);
	dep_c_med = bench_median_d(dep_c, (size_t)ncold);
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
	t[nt++] = (struct bench_target){"workers2_vs_1_cpu",
					"CPU-bound Python: workers = 2 / workers = 1",
					wratio_med,
					1.7,
					wratio_med >= 1.7,
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
		bench_json_num(&j, "cpu_workers1_calls_per_s", w1_med);
		bench_json_num(&j, "cpu_workers2_calls_per_s", w2_med);
		bench_json_bool(&j, "cpu_workers_cgroup_off", nocg);
		bench_json_num(&j, "cpu_workers1_cores", wc1_med);
		bench_json_num(&j, "cpu_workers2_cores", wc2_med);
		bench_json_num(&j, "cpu_workers2_vs_1", wratio_med);
		bench_json_num(&j, "cpu_workers2_vs_1_min", wratio_lo);
		bench_json_num(&j, "cpu_workers2_vs_1_max", wratio_hi);
		bench_json_num(&j, "cold_start_py_ms", cold_py_med);
		bench_json_num(&j, "cold_start_c_ms", cold_c_med);
		bench_json_num(&j, "cold_worker_start_py_ms", stg_py_med[0]);
		bench_json_num(&j, "cold_worker_start_c_ms", stg_c_med[0]);
		bench_json_num(&j, "cold_spawn_py_ms", stg_py_med[1]);
		bench_json_num(&j, "cold_spawn_c_ms", stg_c_med[1]);
		bench_json_num(&j, "cold_cgroup_py_ms", stg_py_med[2]);
		bench_json_num(&j, "cold_cgroup_c_ms", stg_c_med[2]);
		bench_json_num(&j, "cold_deploy_py_ms", dep_py_med);
		bench_json_num(&j, "cold_deploy_c_ms", dep_c_med);
		bench_json_num(&j, "cold_tier_none_template_ms", ab_on_med);
		bench_json_num(&j, "cold_tier_none_no_template_ms", ab_off_med);
		bench_json_num(&j, "cold_tier_none_template_worker_cpu_ms", abc_on_med);
		bench_json_num(&j, "cold_tier_none_no_template_worker_cpu_ms", abc_off_med);
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
	printf("%-46s %14.0f %14.0f\n",
	       nocg ? "CPU-bound Python calls/s: workers = 2 / = 1 (no cg)"
		    : "CPU-bound Python calls/s: workers = 2 / = 1",
	       w2_med, w1_med);
	printf("%-46s %14.2f %14.2f\n", "  cores the workers used (median)", wc2_med, wc1_med);
	printf("%-46s %14.2f %14s\n", "  ratio, median of rounds", wratio_med, "");
	printf("%-46s %8.2f..%-4.2f %14s\n", "  ratio, range over rounds", wratio_lo, wratio_hi,
	       "");
	printf("%-46s %14.1f %14.1f\n", "deploy new tenant -> first OK call, ms (median)",
	       cold_py_med, cold_c_med);
	printf("%-46s %14.1f %14.1f\n", "  of which the DEPLOY's answer, ms (median)", dep_py_med,
	       dep_c_med);
	printf("%-46s %14.1f %14.1f\n", "    worker start (lutfd's log), ms", stg_py_med[0],
	       stg_c_med[0]);
	printf("%-46s %14.1f %14.1f\n", "      zygote's fork, ms", stg_py_med[1], stg_c_med[1]);
	printf("%-46s %14.1f %14.1f\n", "      move into the tenant's cgroup, ms", stg_py_med[2],
	       stg_c_med[2]);
	printf("%-46s %14.1f %14.1f\n", "      START answered, ms", stg_py_med[3], stg_c_med[3]);
	printf("%-46s %14.1f %14s\n", "  Python's share: the difference, ms",
	       cold_py_med - cold_c_med, "");
	printf("%-46s %14.2f %14.2f\n", "  worker CPU from fork to first OK call, ms", cpu_py_med,
	       cpu_c_med);
	printf("%-46s %14s %14s\n", "tier none, new Python tenant:", "template", "no template");
	printf("%-46s %14.1f %14.1f\n", "  deploy -> first OK call, ms (median)", ab_on_med,
	       ab_off_med);
	printf("%-46s %14.2f %14.2f\n", "  worker CPU from fork to first OK call, ms", abc_on_med,
	       abc_off_med);
	printf("%-46s %14.0f %14.0f\n", "idle worker private memory, KiB", mem_py, mem_c);
	bench_targets_print(t, nt);
	return 0;
}
