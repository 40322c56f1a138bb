/* SPDX-License-Identifier: MIT */
/*
 * start: lutfd's launch to its first OK call, against nginx's launch to its
 * first 200, in interleaved rounds of one run. (a) restart: lutfd launched on
 * a state folder that holds a deployed function, timed until a call of it
 * (sent as soon as the data socket takes a connection) answers OK; the same
 * with 4 tenants, each called once (their workers start side by side). (b) deploy:
 * lutfd launched on an empty state folder, timed until a DEPLOY (sent as soon
 * as the control socket takes one) and then a call answered OK. With --base
 * LUTFD, a second lutfd binary (main's tip, built beside) runs the same
 * rounds, interleaved, so what the change saves is measured in the same run.
 * The stages come from lutfd's own "start:" log lines. Invariant: every
 * round's call must answer OK; any other answer or none is a failure (exit 1).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <math.h>
#include <sys/file.h>

#include "common.h"
#include "daemon_util.h"
#include "lutfd_util.h"

#define MAX_ROUNDS 64
#define WAIT_MS 15000 /* any one wait of a round */

/* The stages lutfd logs ("start: config 0.07 ms, lock 0.12, ..."). */
#define MAX_ST 24
struct stages {
	int n;
	char name[MAX_ST][32];
	double ms[MAX_ST];
	double exec_ms;	   /* fork in the bench to lutfd's main() */
	double ready_ms;   /* main() to ready */
	double workers_ms; /* ready to "workers ... up"; NAN when not logged */
	double bpf_ms, iso_ms;
	double bpf_done_ms; /* main() to the BPF thread's end, when not waited for */
	/* The first worker's start, as its "worker N up ... in T ms: spawn S,
	 * cgroup C, confine+load L, start X" line says. */
	double wk_ms, wk_spawn, wk_cg, wk_load, wk_start, wk_probe, wk_prep, wk_hop;
};

enum {
	C_NGINX,
	C_RESTART,
	C_RESTART_BASE,
	C_RESTART4,
	C_RESTART4_BASE,
	C_DEPLOY,
	C_DEPLOY_BASE,
	NCASES
};
static const char *const case_name[NCASES] = {"nginx: launch to first 200",
					      "lutfd: restart to first OK",
					      "lutfd (base): restart to first OK",
					      "lutfd: restart, 4 tenants, each one OK",
					      "lutfd (base): restart, 4 tenants, each one OK",
					      "lutfd: launch, deploy, first OK",
					      "lutfd (base): launch, deploy, first OK"};
static const char *const case_key[NCASES] = {"nginx",	      "restart", "restart_base", "restart4",
					     "restart4_base", "deploy",	 "deploy_base"};
#define NT4 4
static const char *const tenants4[NT4] = {"acme", "beta", "gamma", "delta"};

struct series {
	double v[MAX_ROUNDS]; /* ms */
	int n;
	struct stages st[MAX_ROUNDS]; /* this build's lutfd cases only */
	int nst;
	bool ran;
	char why[200];
};

static struct series cases[NCASES];
static struct bench_lutfd lutfd = {.name = "start"};
static const char *base_bin;
static pid_t child;
static char state4[128]; /* the 4-tenant restart rounds' state folder */
static int failures;
static int nginx_port;
static char nginx_prefix[128];

static double ms_since(uint64_t t0)
{
	return (double)(bench_now_ns() - t0) / 1e6;
}

static pid_t spawn(char *const argv[], const char *log)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

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

/* SIGTERM, bounded wait, SIGKILL. */
static void stop_child(int sig)
{
	if (child <= 0)
		return;
	kill(child, sig);
	if (!td_wait_exit(child, NULL, WAIT_MS)) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	child = 0;
}

/* The last lutfd on state dir (and its watcher, which holds the lock while it
 * kills that lutfd's tenants) is gone: the next launch does not wait for it. */
static bool lock_free(const char *state)
{
	char path[160];
	uint64_t until = bench_now_ns() + (uint64_t)WAIT_MS * 1000000ull;
	int fd;

	snprintf(path, sizeof(path), "%s/lock", state);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return true;
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		if (bench_now_ns() >= until) {
			close(fd);
			return false;
		}
		bench_sleep_ns(1000000);
	}
	flock(fd, LOCK_UN);
	close(fd);
	return true;
}

/* Connect to path, retrying until it takes the connection. */
static int connect_retry(const char *path, uint64_t until)
{
	int fd;

	while ((fd = td_connect_unix(path)) < 0) {
		if (bench_now_ns() >= until ||
		    (child > 0 && waitpid(child, NULL, WNOHANG) == child))
			return -1;
		bench_sleep_ns(100000);
	}
	return fd;
}

/* One call of <tenant>/noop for each of the first n tenants4, pipelined on
 * one data connection made as soon as the socket takes it: OK when every
 * one answered OK, else the first other status (0xffffffff: none came). */
static uint32_t call_noop(uint64_t until, int n)
{
	char path[160];
	struct lutf_buf b;
	struct td_reply r;
	uint32_t st = LUTF_STATUS_OK;
	int fd = connect_retry(bench_lutfd_path(&lutfd, "lutf.sock", path, sizeof(path)), until);

	if (fd < 0)
		return 0xffffffffu;
	lutf_buf_init(&b);
	for (int i = 0; i < n; i++)
		td_invoke_frame(&b, (uint64_t)i + 1, tenants4[i], "noop", "x", 1);
	if (!td_send(fd, &b))
		st = 0xffffffffu;
	for (int i = 0; i < n && st == LUTF_STATUS_OK; i++) {
		if (!td_recv(fd, &r, WAIT_MS)) {
			st = 0xffffffffu;
			break;
		}
		st = r.h.status;
		free(r.payload);
	}
	lutf_buf_free(&b);
	close(fd);
	return st;
}

static pid_t launch(const char *bin, const char *state, const char *log)
{
	char *argv[] = {(char *)bin,   "--config",	lutfd.conf, "--state-dir",
			(char *)state, "--runtime-dir", lutfd.run,  NULL};

	return spawn(argv, log);
}

/* Parse this build's "start:" and "start: workers" lines of log into *s. */
static void parse_stages(const char *log, uint64_t t_fork, struct stages *s)
{
	FILE *fp = fopen(log, "r");
	char line[2048];

	memset(s, 0, sizeof(*s));
	s->exec_ms = s->ready_ms = s->workers_ms = s->bpf_ms = s->iso_ms = s->bpf_done_ms = NAN;
	s->wk_ms = s->wk_spawn = s->wk_cg = s->wk_load = s->wk_start = s->wk_probe = NAN;
	s->wk_prep = s->wk_hop = NAN;
	if (!fp)
		return;
	while (fgets(line, sizeof(line), fp)) {
		char *p = strstr(line, " start: "), *q;
		double mono;

		if (isnan(s->wk_ms) && strstr(line, ": worker ") &&
		    (q = strstr(line, " up (tier ")) && (q = strstr(q, ") in "))) {
			s->wk_ms = strtod(q + 5, NULL);
			if ((q = strstr(q, "spawn ")))
				s->wk_spawn = strtod(q + 6, NULL);
			if (q && (q = strstr(q, "cgroup ")))
				s->wk_cg = strtod(q + 7, NULL);
			if (q && (q = strstr(q, "confine+load ")))
				s->wk_load = strtod(q + 13, NULL);
			if (q && (q = strstr(q, "start ")))
				s->wk_start = strtod(q + 6, NULL);
			if (q && (q = strstr(q, "waited ")))
				s->wk_probe = strtod(q + 7, NULL);
			if (q && (q = strstr(q, "prepared ")))
				s->wk_prep = strtod(q + 9, &q);
			if (q && (q = strstr(q, "), ")))
				s->wk_hop = strtod(q + 3, NULL);
			continue;
		}
		if (!p)
			continue;
		p += 8;
		if (!strncmp(p, "workers of ", 11)) {
			q = strstr(p, " up ");
			if (q)
				s->workers_ms = strtod(q + 4, NULL);
			continue;
		}
		/* "bpf set-up 41.20 ms beside the start (...), done 45.10 ms after
		 * main()": the BPF thread, when the start did not wait for it. */
		if (!strncmp(p, "bpf set-up ", 11)) {
			s->bpf_ms = strtod(p + 11, NULL);
			if ((q = strstr(p, ", done ")))
				s->bpf_done_ms = strtod(q + 7, NULL);
			continue;
		}
		/* "config 0.07 ms, lock 0.12, ...; beside them: bpf 48.06, isolation
		 * 73.38; ready in 91.12 ms (main at monotonic 6919.763284 s)" */
		for (q = p; *q && *q != ';' && s->n < MAX_ST;) {
			char *sp;
			size_t len;

			while (*q == ' ' || *q == ',')
				q++;
			sp = q;
			while (*sp && !(*sp == ' ' && (sp[1] >= '0' && sp[1] <= '9')))
				sp++;
			if (!*sp)
				break;
			len = (size_t)(sp - q) < sizeof(s->name[0]) ? (size_t)(sp - q)
								    : sizeof(s->name[0]) - 1;
			memcpy(s->name[s->n], q, len);
			s->name[s->n][len] = 0;
			s->ms[s->n++] = strtod(sp + 1, &q);
			if (!strncmp(q, " ms", 3))
				q += 3;
		}
		if ((q = strstr(p, "bpf ")) && isnan(s->bpf_ms))
			s->bpf_ms = strtod(q + 4, NULL);
		if ((q = strstr(p, "isolation ")))
			s->iso_ms = strtod(q + 10, NULL);
		if ((q = strstr(p, "ready in ")))
			s->ready_ms = strtod(q + 9, NULL);
		if ((q = strstr(p, "monotonic ")) && (mono = strtod(q + 10, NULL)) > 0)
			s->exec_ms = mono * 1e3 - (double)t_fork / 1e6;
	}
	fclose(fp);
}

/* One lutfd round of case c (a C_RESTART* or C_DEPLOY*); round r. */
static void lutfd_round(int c, int r)
{
	bool base = c == C_RESTART_BASE || c == C_RESTART4_BASE || c == C_DEPLOY_BASE;
	bool deploy = c == C_DEPLOY || c == C_DEPLOY_BASE;
	bool four = c == C_RESTART4 || c == C_RESTART4_BASE;
	const char *bin = base ? base_bin : LUTFD_BIN;
	char state[128], log[128], path[160];
	uint64_t t0, until;
	uint32_t st;
	double v;

	if (deploy)
		snprintf(state, sizeof(state), "%s/fresh%d-%d", lutfd.dir, c, r);
	else
		snprintf(state, sizeof(state), "%s", four ? state4 : lutfd.state);
	snprintf(log, sizeof(log), "%s/round.log", lutfd.dir);
	if (!lock_free(lutfd.state) || !lock_free(state4)) {
		snprintf(cases[c].why, sizeof(cases[c].why), "state lock not released");
		failures++;
		return;
	}
	t0 = bench_now_ns();
	until = t0 + (uint64_t)WAIT_MS * 1000000ull;
	child = launch(bin, state, log);
	if (deploy) {
		static const char *const exports[] = {"noop=noop", NULL};
		struct td_reply rep;
		int cfd = connect_retry(
		    bench_lutfd_path(&lutfd, "control.sock", path, sizeof(path)), until);

		st = cfd < 0 ? 0xffffffffu
			     : td_deploy_with(cfd, "acme", "hello", HELLO_SO, exports,
					      &(struct td_deploy_opts){0}, &rep);
		if (cfd >= 0) {
			free(rep.payload);
			close(cfd);
		}
		if (st != LUTF_STATUS_OK) {
			fprintf(stderr, "start: %s: deploy answered %#x\n", case_name[c], st);
			goto fail;
		}
	}
	st = call_noop(until, four ? NT4 : 1);
	v = ms_since(t0);
	if (st != LUTF_STATUS_OK) {
		fprintf(stderr, "start: %s: first call answered %#x\n", case_name[c], st);
		goto fail;
	}
	cases[c].v[cases[c].n++] = v;
	cases[c].ran = true;
	stop_child(SIGTERM);
	if (!base)
		parse_stages(log, t0, &cases[c].st[cases[c].nst++]);
	if (deploy)
		lock_free(state); /* its watcher: gone before the next launch */
	return;
fail:
	failures++;
	snprintf(cases[c].why, sizeof(cases[c].why), "a round failed (log %s)", log);
	stop_child(SIGKILL);
	{
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "tail -5 %s >&2", log);
		(void)!system(cmd);
	}
}

/* The restart rounds' state: deploy the first n tenants4 into the running
 * child lutfd, check each answers, stop it. Returns 0 or -1 (said). */
static int seed(int n)
{
	static const char *const exports[] = {"noop=noop", NULL};
	uint64_t until = bench_now_ns() + (uint64_t)WAIT_MS * 1000000ull;
	char path[160];
	uint32_t st = LUTF_STATUS_OK;
	int cfd =
	    connect_retry(bench_lutfd_path(&lutfd, "control.sock", path, sizeof(path)), until);

	for (int i = 0; i < n && st == LUTF_STATUS_OK; i++) {
		struct td_reply rep;

		st = cfd < 0 ? 0xffffffffu
			     : td_deploy_with(cfd, tenants4[i], "hello", HELLO_SO, exports,
					      &(struct td_deploy_opts){0}, &rep);
		if (cfd >= 0)
			free(rep.payload);
	}
	if (cfd >= 0)
		close(cfd);
	if (st == LUTF_STATUS_OK)
		st = call_noop(until, n);
	if (st != LUTF_STATUS_OK) {
		fprintf(stderr, "start: deploying %d tenant(s) failed (%#x)\n", n, st);
		return -1;
	}
	stop_child(SIGTERM);
	return 0;
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

static bool nginx_setup(void)
{
	char conf[160], log[160];
	FILE *fp;

	nginx_port = free_port();
	snprintf(nginx_prefix, sizeof(nginx_prefix), "%s/nginx", lutfd.dir);
	snprintf(conf, sizeof(conf), "%s/nginx.conf", nginx_prefix);
	snprintf(log, sizeof(log), "%s/error.log", nginx_prefix);
	if (nginx_port < 0 || mkdir(nginx_prefix, 0755) || !(fp = fopen(conf, "w")))
		return false;
	/* As bench/http runs it: one worker, no master, return 200. */
	fprintf(fp,
		"daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\n"
		"error_log %s warn;\nevents { worker_connections 1024; }\n"
		"http {\n  access_log off;\n  client_body_temp_path %s/body;\n"
		"  proxy_temp_path %s/proxy;\n  fastcgi_temp_path %s/fcgi;\n"
		"  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n"
		"  server {\n    listen 127.0.0.1:%d;\n"
		"    location / { return 200 \"ok\"; }\n  }\n}\n",
		nginx_prefix, log, nginx_prefix, nginx_prefix, nginx_prefix, nginx_prefix,
		nginx_prefix, nginx_port);
	return fclose(fp) == 0;
}

/* Launch nginx, GET / until it answers 200; the time. */
static void nginx_round(void)
{
	char conf[160], log[160], nginx[] = "/usr/sbin/nginx", hp[32], buf[64];
	char *argv[] = {nginx, "-p", nginx_prefix, "-c", conf, "-e", log, NULL};
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	uint64_t t0, until;
	bool ok = false;

	snprintf(conf, sizeof(conf), "%s/nginx.conf", nginx_prefix);
	snprintf(log, sizeof(log), "%s/error.log", nginx_prefix);
	snprintf(hp, sizeof(hp), "127.0.0.1:%d", nginx_port);
	t0 = bench_now_ns();
	until = t0 + (uint64_t)WAIT_MS * 1000000ull;
	child = spawn(argv, log);
	while (!ok && bench_now_ns() < until) {
		int fd = td_connect_tcp(hp);
		ssize_t n;

		if (fd < 0) {
			if (waitpid(child, NULL, WNOHANG) == child) {
				child = 0;
				break;
			}
			bench_sleep_ns(100000);
			continue;
		}
		if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(req) - 1 &&
		    (n = recv(fd, buf, sizeof(buf) - 1, 0)) > 12) {
			buf[n] = 0;
			ok = !strncmp(buf, "HTTP/1.1 200", 12);
		}
		close(fd);
	}
	if (ok) {
		cases[C_NGINX].v[cases[C_NGINX].n++] = ms_since(t0);
		cases[C_NGINX].ran = true;
	} else {
		snprintf(cases[C_NGINX].why, sizeof(cases[C_NGINX].why), "nginx did not answer");
	}
	stop_child(SIGTERM);
}

/* ---- report ---- */

static void range(const struct series *s, double *med, double *lo, double *hi)
{
	double v[MAX_ROUNDS];

	memcpy(v, s->v, sizeof(double) * (size_t)s->n);
	*med = s->n ? bench_median_d(v, (size_t)s->n) : NAN;
	*lo = s->n ? v[0] : NAN;
	*hi = s->n ? v[s->n - 1] : NAN;
}

/* Median over rounds of base/this (rounds paired by index: the same round
 * ran both, side by side); NAN when either did not run. */
static double paired(int this_c, int base_c)
{
	double v[MAX_ROUNDS];
	int n = cases[this_c].n < cases[base_c].n ? cases[this_c].n : cases[base_c].n;

	for (int r = 0; r < n; r++)
		v[r] = cases[base_c].v[r] / cases[this_c].v[r];
	return n ? bench_median_d(v, (size_t)n) : NAN;
}

/* Every round's base over this build, in round order. */
static void print_paired(const char *what, int this_c, int base_c)
{
	int n = cases[this_c].n < cases[base_c].n ? cases[this_c].n : cases[base_c].n;

	printf("  %-10s", what);
	for (int r = 0; r < n; r++)
		printf(" %.2f", cases[base_c].v[r] / cases[this_c].v[r]);
	printf("\n");
}

/* Median over rounds of stage k (by name) of series s; NAN when absent. */
static double stage_median(const struct series *s, const char *name)
{
	double v[MAX_ROUNDS];
	size_t n = 0;

	for (int r = 0; r < s->nst; r++)
		for (int k = 0; k < s->st[r].n; k++)
			if (!strcmp(s->st[r].name[k], name))
				v[n++] = s->st[r].ms[k];
	return n ? bench_median_d(v, n) : NAN;
}

static double field_median(const struct series *s, size_t off)
{
	double v[MAX_ROUNDS];
	size_t n = 0;

	for (int r = 0; r < s->nst; r++) {
		double x = *(const double *)((const char *)&s->st[r] + off);

		if (!isnan(x))
			v[n++] = x;
	}
	return n ? bench_median_d(v, n) : NAN;
}

#define EXTRA(f) offsetof(struct stages, f)
static const struct {
	const char *name;
	size_t off;
} extras[] = {{"exec to main()", EXTRA(exec_ms)},
	      {"ready (main() to listening, tenants open)", EXTRA(ready_ms)},
	      {"workers up after ready", EXTRA(workers_ms)},
	      {"beside: bpf (labor_watch) thread", EXTRA(bpf_ms)},
	      {"beside: isolation thread", EXTRA(iso_ms)},
	      {"bpf thread done, after main()", EXTRA(bpf_done_ms)},
	      {"first worker's start", EXTRA(wk_ms)},
	      {"  its zygote fork (spawn)", EXTRA(wk_spawn)},
	      {"  its cgroup move", EXTRA(wk_cg)},
	      {"  its confine+load", EXTRA(wk_load)},
	      {"  its START", EXTRA(wk_start)},
	      {"  its wait for the SIGSYS probe (before LOAD)", EXTRA(wk_probe)},
	      {"  its preparation (main thread, before)", EXTRA(wk_prep)},
	      {"  its hand-over to the job (before)", EXTRA(wk_hop)}};

static void print_stages(const struct series *s, const char *title)
{
	if (!s->nst)
		return;
	printf("\n%s, medians (ms):\n", title);
	for (int k = 0; k < s->st[0].n; k++)
		printf("  %-44s %8.2f\n", s->st[0].name[k], stage_median(s, s->st[0].name[k]));
	for (size_t e = 0; e < sizeof(extras) / sizeof(extras[0]); e++)
		printf("  %-44s %8.2f\n", extras[e].name, field_median(s, extras[e].off));
}

static void json_stages(struct bench_json *j, const struct series *s, const char *key)
{
	if (!s->nst)
		return;
	bench_json_obj(j, key);
	for (int k = 0; k < s->st[0].n; k++)
		bench_json_num(j, s->st[0].name[k], stage_median(s, s->st[0].name[k]));
	bench_json_num(j, "exec_to_main", field_median(s, EXTRA(exec_ms)));
	bench_json_num(j, "ready", field_median(s, EXTRA(ready_ms)));
	bench_json_num(j, "workers_up_after_ready", field_median(s, EXTRA(workers_ms)));
	bench_json_num(j, "bpf_thread", field_median(s, EXTRA(bpf_ms)));
	bench_json_num(j, "isolation_thread", field_median(s, EXTRA(iso_ms)));
	bench_json_num(j, "bpf_done_after_main", field_median(s, EXTRA(bpf_done_ms)));
	bench_json_num(j, "worker_start", field_median(s, EXTRA(wk_ms)));
	bench_json_num(j, "worker_spawn", field_median(s, EXTRA(wk_spawn)));
	bench_json_num(j, "worker_cgroup", field_median(s, EXTRA(wk_cg)));
	bench_json_num(j, "worker_confine_load", field_median(s, EXTRA(wk_load)));
	bench_json_num(j, "worker_start_op", field_median(s, EXTRA(wk_start)));
	bench_json_num(j, "worker_sigsys_wait", field_median(s, EXTRA(wk_probe)));
	bench_json_num(j, "worker_prepare", field_median(s, EXTRA(wk_prep)));
	bench_json_num(j, "worker_to_job", field_median(s, EXTRA(wk_hop)));
	bench_json_close_obj(j);
}

int main(int argc, char **argv)
{
	static const char usage[] =
	    "lutfd launch to first OK call (after a restart; after a deploy) against nginx's\n"
	    "launch to first 200, interleaved rounds. Needs root. Own options (before the\n"
	    "common ones): --base LUTFD (another lutfd, e.g. main's tip, run in the same\n"
	    "rounds), --rounds N (default 11, --quick 2).";
	char *rest[8] = {argv[0]};
	int nrest = 1, rounds = 0;
	struct bench_opts o;
	char machine[128];
	struct bench_target t[1]; /* the ratio to nginx is a column, not a target */
	double med[NCASES], lo[NCASES], hi[NCASES];
	bool have_nginx;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--base") && i + 1 < argc)
			base_bin = argv[++i];
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (nrest < 7)
			rest[nrest++] = argv[i];
	}
	bench_parse_args(nrest, rest, usage, &o);
	if (!rounds)
		rounds = o.quick ? 2 : 11;
	if (rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "start: --rounds 1..%d\n", MAX_ROUNDS);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "start: needs root (lutfd runs as root); skipped\n");
		return 77;
	}
	if (base_bin && access(base_bin, X_OK)) {
		fprintf(stderr, "start: --base %s: not executable\n", base_bin);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	bench_machine(machine, sizeof(machine));

	/* The restart rounds' state: one deployed function, then lutfd stopped. */
	if (bench_lutfd_start(&lutfd, "listen_tcp = off\nhttp_listen = off\nadmin_listen = off\n",
			      WAIT_MS)) {
		bench_lutfd_stop(&lutfd, 5000);
		return 1;
	}
	child = lutfd.pid;
	lutfd.pid = 0;
	snprintf(state4, sizeof(state4), "%s/state4", lutfd.dir);
	if (seed(1) || !lock_free(lutfd.state) || !(child = launch(LUTFD_BIN, state4, lutfd.log)) ||
	    seed(NT4)) {
		bench_lutfd_show_log(&lutfd);
		stop_child(SIGKILL);
		bench_lutfd_stop(&lutfd, 5000);
		return 1;
	}
	have_nginx = access("/usr/sbin/nginx", X_OK) == 0 && nginx_setup();
	if (!have_nginx)
		snprintf(cases[C_NGINX].why, sizeof(cases[C_NGINX].why),
			 "nginx not installed: apt-get install nginx-light");
	if (!base_bin)
		for (int c = 0; c < NCASES; c++)
			if (c == C_RESTART_BASE || c == C_RESTART4_BASE || c == C_DEPLOY_BASE)
				snprintf(cases[c].why, sizeof(cases[c].why), "no --base lutfd");
	/* Interleaved: each round runs every case once, the order rotated. */
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < NCASES; k++) {
			int c = (k + r) % NCASES;

			if (c == C_NGINX && have_nginx)
				nginx_round();
			else if ((c == C_RESTART_BASE || c == C_RESTART4_BASE ||
				  c == C_DEPLOY_BASE) &&
				 !base_bin)
				continue;
			else if (c != C_NGINX)
				lutfd_round(c, r);
		}
	}
	bench_lutfd_stop(&lutfd, 5000);

	for (int c = 0; c < NCASES; c++)
		range(&cases[c], &med[c], &lo[c], &hi[c]);
	t[0] = (struct bench_target){"restart_first_ok",   "restart to first OK call",
				     med[C_RESTART],	   20,
				     med[C_RESTART] <= 20, "ms",
				     !cases[C_RESTART].ran};
	if (o.json) {
		struct bench_json j;

		bench_json_begin(&j, stdout);
		bench_json_str(&j, "bench", "start");
		bench_json_str(&j, "machine", machine);
		bench_json_u64(&j, "rounds", (uint64_t)rounds);
		bench_json_obj(&j, "cases");
		for (int c = 0; c < NCASES; c++) {
			bench_json_obj(&j, case_key[c]);
			bench_json_bool(&j, "ran", cases[c].ran);
			bench_json_num(&j, "median_ms", med[c]);
			bench_json_num(&j, "min_ms", lo[c]);
			bench_json_num(&j, "max_ms", hi[c]);
			bench_json_u64(&j, "rounds", (uint64_t)cases[c].n);
			if (!cases[c].ran)
				bench_json_str(&j, "why", cases[c].why);
			bench_json_close_obj(&j);
		}
		bench_json_close_obj(&j);
		bench_json_obj(&j, "stages_ms");
		json_stages(&j, &cases[C_RESTART], "restart");
		json_stages(&j, &cases[C_RESTART4], "restart4");
		json_stages(&j, &cases[C_DEPLOY], "deploy");
		bench_json_close_obj(&j);
		bench_json_num(&j, "paired_restart_x", paired(C_RESTART, C_RESTART_BASE));
		bench_json_num(&j, "paired_restart4_x", paired(C_RESTART4, C_RESTART4_BASE));
		bench_json_num(&j, "paired_deploy_x", paired(C_DEPLOY, C_DEPLOY_BASE));
		bench_json_num(&j, "saved_restart_ms", med[C_RESTART_BASE] - med[C_RESTART]);
		bench_json_num(&j, "saved_restart4_ms", med[C_RESTART4_BASE] - med[C_RESTART4]);
		bench_json_num(&j, "saved_deploy_ms", med[C_DEPLOY_BASE] - med[C_DEPLOY]);
		bench_targets_json(&j, t, 1);
		bench_json_num(&j, "restart_over_nginx_x", med[C_RESTART] / med[C_NGINX]);
		bench_json_end(&j);
	} else {
		printf(
		    "start: launch to first OK (%s), %d interleaved rounds; medians, [min-max]\n",
		    machine, rounds);
		printf("%-44s %10s %22s %8s\n", "case", "median", "range", "x nginx");
		for (int c = 0; c < NCASES; c++) {
			if (!cases[c].ran) {
				printf("%-44s %10s   (%s)\n", case_name[c], "-", cases[c].why);
				continue;
			}
			printf("%-44s %7.2f ms   [%7.2f - %7.2f ms] %7.2fx\n", case_name[c], med[c],
			       lo[c], hi[c], cases[C_NGINX].ran ? med[c] / med[C_NGINX] : NAN);
		}
		if (cases[C_RESTART_BASE].ran && cases[C_RESTART].ran)
			printf("saved by this build (medians): restart %.2f ms (%.2fx), 4 tenants "
			       "%.2f ms (%.2fx), deploy %.2f ms (%.2fx)\n",
			       med[C_RESTART_BASE] - med[C_RESTART],
			       med[C_RESTART_BASE] / med[C_RESTART],
			       med[C_RESTART4_BASE] - med[C_RESTART4],
			       med[C_RESTART4_BASE] / med[C_RESTART4],
			       med[C_DEPLOY_BASE] - med[C_DEPLOY],
			       med[C_DEPLOY_BASE] / med[C_DEPLOY]);
		if (cases[C_RESTART_BASE].ran && cases[C_RESTART].ran)
			printf("base over this build, median of per-round ratios: restart %.2fx, 4 "
			       "tenants %.2fx, deploy %.2fx\n",
			       paired(C_RESTART, C_RESTART_BASE),
			       paired(C_RESTART4, C_RESTART4_BASE),
			       paired(C_DEPLOY, C_DEPLOY_BASE));
		if (cases[C_RESTART_BASE].ran && cases[C_RESTART].ran) {
			printf("base over this build, each round:\n");
			print_paired("restart", C_RESTART, C_RESTART_BASE);
			print_paired("4 tenants", C_RESTART4, C_RESTART4_BASE);
			print_paired("deploy", C_DEPLOY, C_DEPLOY_BASE);
		}
		print_stages(&cases[C_RESTART], "Stages of a restart (this build's log)");
		print_stages(&cases[C_RESTART4],
			     "Stages of a restart with 4 tenants (this build's log)");
		print_stages(&cases[C_DEPLOY],
			     "Stages of a launch before a deploy (this build's log)");
		printf("\n");
		bench_targets_print(t, 1);
	}
	return failures ? 1 : 0;
}
