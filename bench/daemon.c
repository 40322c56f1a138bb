/* SPDX-License-Identifier: MIT */
/*
 * daemon: lutfd end to end on this host. A no-op invoke over the Unix socket
 * beside a plain echo server (the floor for one round trip) and fork+exec per
 * request (the CGI model); deploy of a new tenant to its first OK invoke; idle
 * memory of lutfd and of a tenant worker. The bench starts its own lutfd on
 * private /tmp folders and always stops it. Targets are printed, never
 * asserted; a failed call, a wrong status or a lutfd that does not start makes
 * the program exit 1; not root exits 77 (skipped).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lutf/client.h>

#include "common.h"
#include "daemon_handoff.h"
#include "lutfd_util.h"

#define MSG_SIZE 64		  /* echo message, both ways */
#define START_WAIT_MS 10000	  /* lutfd up: pid file and control socket */
#define STOP_WAIT_MS 5000	  /* SIGTERM, then SIGKILL */
#define CALL_TIMEOUT_MS 10000	  /* any one call; past it the call failed */
#define FIRST_INVOKE_WAIT_MS 5000 /* deploy: non-OK invokes retried this long */
#define IDLE_SETTLE_MS 300	  /* quiet time before memory is read */

/* ---- lutfd and the echo child: process state, cleaned up on every exit ---- */

static struct bench_lutfd lutfd = {.name = "daemon"};
static pid_t echo_pid;
static volatile sig_atomic_t interrupted;

/* SIGINT/SIGTERM/SIGHUP: ask lutfd to exit cleanly (it unpins its maps); the
 * calls in progress then fail and main's error path removes the folders. */
static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
	if (lutfd.pid > 0)
		kill(lutfd.pid, SIGTERM);
}

/*
 * Stop lutfd (SIGTERM, then SIGKILL after STOP_WAIT_MS) and the echo child,
 * remove the folders and the BPF pins. Returns 0 when lutfd exited 0 on its
 * own, -1 otherwise. Safe to call twice.
 */
static int stop_all(void)
{
	if (echo_pid > 0) {
		kill(echo_pid, SIGKILL);
		waitpid(echo_pid, NULL, 0);
		echo_pid = 0;
	}
	return bench_lutfd_stop(&lutfd, STOP_WAIT_MS);
}

static void stop_at_exit(void)
{
	stop_all();
}

/* Start lutfd on fresh folders with the default engine config and private
 * BPF pins, no confinement (the engine as before issue #6; bench/tiers
 * measures the tiers), plus extra. Returns 0 or -1. */
static int start_lutfd(const char *extra)
{
	char conf[512];

	snprintf(conf, sizeof(conf), "allow_tier_none = on\ndefault_tier = none\n%s",
		 extra ? extra : "");
	return bench_lutfd_start(&lutfd, conf, START_WAIT_MS);
}

/* ---- results ---- */

enum { C_ECHO, C_PING, C_INVOKE, C_EXEC, N_CASES };

static const char *const case_key[N_CASES] = {"echo", "ping", "invoke", "fork_exec"};
static const char *const case_label[N_CASES] = {
    "(a) echo server, 64 B each way (floor)", "(p) lutfd PING (ingress only)",
    "(b) lutfd invoke noop", "(c) fork + exec true_tiny + waitpid"};

struct row {
	uint64_t calls;
	struct bench_stats lat;
	double client_cpu_ns; /* this process (and its children for (c)) per call */
	double server_cpu_ns; /* echo child, or lutfd + the tenant's worker, per call */
	bool ran;
};

struct results {
	char machine[128];
	char fs[32];
	char watch[16];
	double timer_ns;
	struct row rows[N_CASES];
	/* deploy to first invoke */
	int rounds;
	struct bench_stats deploy_total, deploy_reply, deploy_invoke; /* ns */
	uint64_t deploy_retries;
	/* memory */
	uint64_t rss_one, rss, rss_anon, rss_file, rss_shmem; /* bytes */
	uint64_t tenants, workers;
	double wk_median, wk_max, wk_hot; /* private bytes of idle workers */
	/* the labor_watch hand-off through lutfd: [0] eBPF, [1] polling every 20 us */
	struct bench_stats ho[2];
	int errors;
};

static void fail(struct results *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct results *r, const char *fmt, ...)
{
	va_list ap;

	if (r->errors++ >= 10)
		return;
	va_start(ap, fmt);
	fputs("daemon: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- (a) the echo floor ---- */

static int read_full(int fd, void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = read(fd, (char *)buf + off, len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n == 0 || errno != EINTR)
			return -1;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n == 0 || errno != EINTR)
			return -1;
	}
	return 0;
}

/* A forked child answering each MSG_SIZE message with itself, blocking
 * read/write on a Unix stream socket. Returns our end, or -1. */
static int echo_start(void)
{
	pid_t parent = getpid();
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	echo_pid = fork();
	if (echo_pid < 0) {
		echo_pid = 0;
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (echo_pid == 0) {
		char m[MSG_SIZE];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(sv[0]);
		while (read_full(sv[1], m, sizeof(m)) == 0)
			if (write_full(sv[1], m, sizeof(m)))
				break;
		_exit(0);
	}
	close(sv[1]);
	return sv[0];
}

/* ---- CPU time of other processes ---- */

/* Run time of every thread of pid, in ns, from /proc/<pid>/task/<tid>/schedstat
 * (exact, unlike the tick-based utime/stime); 0 when pid is 0 or gone. */
static uint64_t proc_cpu_ns(pid_t pid)
{
	char path[96];
	uint64_t sum = 0;
	struct dirent *e;
	DIR *d;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		unsigned long long ns;
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", (int)pid, e->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (fscanf(fp, "%llu", &ns) == 1)
			sum += ns;
		fclose(fp);
	}
	closedir(d);
	return sum;
}

/* ---- one call of each case ---- */

struct ctx {
	int echo_fd;
	pid_t worker; /* the worker of tenant "rt" */
	struct lutf_client *data;
	struct lutf_client *ctl;
	const char *tiny;
	void *so;
	size_t so_len;
};

/* Returns 0, or a message for fail(). */
static const char *one_call(struct ctx *x, int which)
{
	static char msg[160];
	struct lutf_client_result res;
	uint32_t st;
	pid_t pid;
	int err, ws;

	switch (which) {
	case C_ECHO: {
		char m[MSG_SIZE] = "lutf";

		if (write_full(x->echo_fd, m, sizeof(m)) || read_full(x->echo_fd, m, sizeof(m)))
			return "echo: the echo child is gone";
		return NULL;
	}
	case C_PING:
		err = lutf_client_ping(x->data, &st);
		if (err || st != LUTF_STATUS_OK) {
			snprintf(msg, sizeof(msg), "ping: %s",
				 err ? strerror(-err) : lutf_status_str(st));
			return msg;
		}
		return NULL;
	case C_INVOKE:
		err = lutf_client_invoke(x->data, "rt", "noop", NULL, &res);
		st = res.status;
		if (err || st != LUTF_STATUS_OK) {
			snprintf(msg, sizeof(msg), "invoke rt/noop: %s %s",
				 err ? strerror(-err) : lutf_status_str(st),
				 !err && res.error ? res.error : "");
			lutf_client_result_release(&res);
			return msg;
		}
		lutf_client_result_release(&res);
		return NULL;
	default:
		pid = fork();
		if (pid < 0)
			return "fork failed";
		if (pid == 0) {
			static char *const argv[] = {"true_tiny", NULL}, *const envp[] = {NULL};

			execve(x->tiny, argv, envp);
			_exit(127);
		}
		while (waitpid(pid, &ws, 0) < 0)
			if (errno != EINTR)
				return "waitpid failed";
		return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? NULL : "true_tiny failed";
	}
}

/* n timed calls of one case into lat. Returns the number of samples. */
static uint64_t timed(struct results *r, struct ctx *x, int which, uint64_t *lat, uint64_t n)
{
	uint64_t got = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t a = bench_now_ns();
		const char *e = interrupted ? "interrupted" : one_call(x, which);
		uint64_t b = bench_now_ns();

		if (e) {
			fail(r, "%s", e);
			if (which != C_EXEC || interrupted)
				break; /* a broken connection: no point going on */
			continue;
		}
		lat[got++] = b - a;
	}
	return got;
}

/*
 * (a), (p), (b): blocks of each case in turn, so noise that comes and goes
 * on this VM falls on all three alike; then (c). lat[c] holds n samples.
 */
static uint64_t server_cpu_ns(const struct ctx *x, int which)
{
	if (which == C_ECHO)
		return proc_cpu_ns(echo_pid);
	if (which == C_EXEC)
		return 0;
	return proc_cpu_ns(lutfd.pid) + proc_cpu_ns(x->worker);
}

static void run_roundtrips(struct results *r, struct ctx *x, uint64_t *lat[N_CASES], uint64_t n,
			   int blocks, uint64_t n_exec)
{
	uint64_t got[N_CASES] = {0}, ccpu[N_CASES] = {0}, scpu[N_CASES] = {0};
	uint64_t per = n / (uint64_t)blocks, c0, s0;

	for (int c = C_ECHO; c <= C_INVOKE; c++) /* warm-up: pages, caches, Labors */
		timed(r, x, c, lat[c], 1000);
	for (int b = 0; b < blocks && !r->errors; b++) {
		for (int c = C_ECHO; c <= C_INVOKE; c++) {
			s0 = server_cpu_ns(x, c);
			c0 = bench_cpu_self_ns();
			got[c] += timed(r, x, c, lat[c] + got[c], per);
			ccpu[c] += bench_cpu_self_ns() - c0;
			scpu[c] += server_cpu_ns(x, c) - s0;
		}
	}
	for (int i = 0; i < 10; i++)
		one_call(x, C_EXEC);
	c0 = bench_cpu_all_ns();
	got[C_EXEC] = timed(r, x, C_EXEC, lat[C_EXEC], n_exec);
	ccpu[C_EXEC] = bench_cpu_all_ns() - c0;
	for (int c = 0; c < N_CASES; c++) {
		struct row *w = &r->rows[c];

		w->calls = got[c];
		bench_stats(lat[c], got[c], &w->lat);
		w->ran = got[c] > 0;
		w->client_cpu_ns = got[c] ? (double)ccpu[c] / (double)got[c] : NAN;
		w->server_cpu_ns = got[c] && c != C_EXEC ? (double)scpu[c] / (double)got[c] : NAN;
	}
}

/* ---- deploy ---- */

/* Deploy libhello.so as tenant/hello exporting noop. Returns 0 or -1. */
static int deploy(struct results *r, struct ctx *x, const char *tenant)
{
	static const struct lutf_client_export ex[] = {{"noop", NULL}, {"hello", NULL}};
	struct lutf_client_deploy d = {.tenant = tenant,
				       .app = "hello",
				       .so_data = x->so,
				       .so_len = x->so_len,
				       .exports = ex,
				       .n_exports = 2};
	struct lutf_client_reply rep;
	int err = lutf_client_deploy(x->ctl, &d, &rep);

	if (err || rep.status != LUTF_STATUS_OK) {
		fail(r, "deploy %s: %s %s", tenant,
		     err ? strerror(-err) : lutf_status_str(rep.status),
		     !err && rep.error ? rep.error : "");
		err = -1;
	}
	lutf_client_reply_release(&rep);
	return err ? -1 : 0;
}

/*
 * One round: DEPLOY a tenant never seen before (lutfd stores the .so, writes
 * the registry durably, starts the worker and loads the app) and invoke its
 * noop until the first OK. t[0] = total, t[1] = the deploy reply, t[2] = the
 * invokes after it. Returns 0 or -1.
 */
static int deploy_round(struct results *r, struct ctx *x, const char *tenant, uint64_t t[3])
{
	struct lutf_client_result res;
	uint64_t t0 = bench_now_ns(), t1, until;
	int err;

	if (deploy(r, x, tenant))
		return -1;
	t1 = bench_now_ns();
	until = t1 + FIRST_INVOKE_WAIT_MS * 1000000ull;
	for (;;) {
		err = lutf_client_invoke(x->data, tenant, "noop", NULL, &res);
		if (!err && res.status == LUTF_STATUS_OK)
			break;
		if (err || bench_now_ns() > until) {
			fail(r, "first invoke of %s/noop: %s", tenant,
			     err ? strerror(-err) : lutf_status_str(res.status));
			lutf_client_result_release(&res);
			return -1;
		}
		lutf_client_result_release(&res);
		r->deploy_retries++;
	}
	lutf_client_result_release(&res);
	t[2] = bench_now_ns() - t1;
	t[1] = t1 - t0;
	t[0] = t[2] + t[1];
	return 0;
}

static void run_deploys(struct results *r, struct ctx *x, int rounds)
{
	uint64_t *v[3], t[3];
	char name[32];
	int got = 0;

	for (int k = 0; k < 3; k++)
		v[k] = calloc((size_t)rounds, sizeof(uint64_t));
	if (!v[0] || !v[1] || !v[2]) {
		fail(r, "out of memory");
		goto out;
	}
	for (int i = 0; i < rounds; i++) {
		snprintf(name, sizeof(name), "bench-d%d", i);
		if (deploy_round(r, x, name, t))
			break;
		for (int k = 0; k < 3; k++)
			v[k][got] = t[k];
		got++;
	}
	r->rounds = got;
	bench_stats(v[0], (size_t)got, &r->deploy_total);
	bench_stats(v[1], (size_t)got, &r->deploy_reply);
	bench_stats(v[2], (size_t)got, &r->deploy_invoke);
out:
	for (int k = 0; k < 3; k++)
		free(v[k]);
}

/* The worker pid of tenant from STATUS, or 0 (an error). */
static pid_t tenant_worker(struct results *r, struct ctx *x, const char *tenant)
{
	struct lutf_client_reply rep;
	pid_t pid = 0;
	int err = lutf_client_status(x->ctl, &rep);

	for (size_t i = 0; !err && i < rep.n_records; i++) {
		const struct lutf_client_field *t, *p;

		t = lutf_client_record_get(&rep.records[i], "tenant");
		p = lutf_client_record_get(&rep.records[i], "worker_pid");
		if (t && p && !strcmp(t->str, tenant))
			pid = (pid_t)p->u64;
	}
	if (!pid)
		fail(r, "no worker pid for tenant %s in STATUS", tenant);
	lutf_client_reply_release(&rep);
	return pid;
}

/* ---- memory ---- */

/* Sum of the "key:  N kB" lines of a /proc file named in keys (NULL-ended), in bytes. */
static uint64_t proc_kb(pid_t pid, const char *file, const char *const *keys)
{
	char path[64], line[256];
	uint64_t sum = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fp = fopen(path, "r");
	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp)) {
		for (const char *const *k = keys; *k; k++) {
			size_t n = strlen(*k);
			unsigned long long kb;

			if (!strncmp(line, *k, n) && line[n] == ':' &&
			    sscanf(line + n + 1, "%llu", &kb) == 1)
				sum += kb * 1024;
		}
	}
	fclose(fp);
	return sum;
}

static uint64_t status_kb(pid_t pid, const char *key)
{
	const char *keys[] = {key, NULL};

	return proc_kb(pid, "status", keys);
}

static uint64_t worker_private(pid_t pid)
{
	static const char *const keys[] = {"Private_Clean", "Private_Dirty", NULL};

	return proc_kb(pid, "smaps_rollup", keys);
}

/* Idle memory of lutfd and of every tenant worker named by STATUS. */
static void run_memory(struct results *r, struct ctx *x)
{
	struct lutf_client_reply rep;
	double *v = NULL;
	size_t nv = 0;
	int err;

	bench_sleep_ns(IDLE_SETTLE_MS * 1000000ull);
	r->rss = status_kb(lutfd.pid, "VmRSS");
	r->rss_anon = status_kb(lutfd.pid, "RssAnon");
	r->rss_file = status_kb(lutfd.pid, "RssFile");
	r->rss_shmem = status_kb(lutfd.pid, "RssShmem");
	if (!r->rss)
		fail(r, "cannot read /proc/%d/status", (int)lutfd.pid);
	err = lutf_client_status(x->ctl, &rep);
	if (err || rep.status != LUTF_STATUS_OK) {
		fail(r, "status: %s", err ? strerror(-err) : lutf_status_str(rep.status));
		lutf_client_reply_release(&rep);
		return;
	}
	v = calloc(rep.n_records + 1, sizeof(*v));
	r->wk_hot = NAN;
	r->wk_max = 0;
	for (size_t i = 0; v && i < rep.n_records; i++) {
		const struct lutf_client_field *t, *p, *w;

		t = lutf_client_record_get(&rep.records[i], "tenant");
		p = lutf_client_record_get(&rep.records[i], "worker_pid");
		if (!t || !p) {
			/* The first record gathers the lutfd-wide fields. */
			if ((p = lutf_client_record_get(&rep.records[i], "tenants")))
				r->tenants = p->u64;
			continue;
		}
		for (size_t k = 0; k < rep.records[i].n_fields; k++) {
			w = &rep.records[i].fields[k];
			if (!strcmp(w->key, "text") && !strncmp(w->str, "watch=", 6))
				snprintf(r->watch, sizeof(r->watch), "%s", w->str + 6);
		}
		v[nv] = (double)worker_private((pid_t)p->u64);
		if (!v[nv]) {
			fail(r, "cannot read smaps_rollup of worker %llu of %s",
			     (unsigned long long)p->u64, t->str);
			continue;
		}
		if (!strcmp(t->str, "rt"))
			r->wk_hot = v[nv];
		if (v[nv] > r->wk_max)
			r->wk_max = v[nv];
		nv++;
	}
	r->workers = nv;
	r->wk_median = bench_median_d(v, nv);
	if (!nv)
		fail(r, "no tenant worker found in STATUS");
	free(v);
	lutf_client_reply_release(&rep);
}

/* ---- report ---- */

/* The hand-off through lutfd (daemon_handoff.c), on a lutfd of one Cart and
 * four Labors, grace 0, once with labor_watch and once polling every 20 us. */
static void run_handoffs(struct results *r, struct ctx *x, int rounds)
{
	static const char *const extra[2] = {
	    "carts = 1\nlabors = 4\nlabors_max = 4\ngrace_us = 0\nbpf = on\n",
	    "carts = 1\nlabors = 4\nlabors_max = 4\ngrace_us = 0\nbpf = off\npoll_us = 20\n"};
	static const struct lutf_client_export ex[] = {{"block", NULL}, {"stamp", NULL}};
	uint64_t *lat = calloc((size_t)rounds, sizeof(*lat));

	for (int m = 0; lat && m < 2 && !r->errors; m++) {
		char path[160], url[160];
		struct lutf_client_config cf = {"block", "fifo", path};
		struct lutf_client_deploy d = {.tenant = "ho",
					       .app = "handoff",
					       .so_path = HANDOFF_SO,
					       .exports = ex,
					       .n_exports = 2,
					       .config = &cf,
					       .n_config = 1};
		struct lutf_client_reply rep = {0};
		int fifo = -1, fd = -1, n;

		lutf_client_close(x->data);
		lutf_client_close(x->ctl);
		x->data = x->ctl = NULL;
		if (stop_all() || start_lutfd(extra[m])) {
			fail(r, "hand-off: cannot restart lutfd");
			break;
		}
		snprintf(path, sizeof(path), "%s/handoff.fifo", lutfd.dir);
		bench_lutfd_path(&lutfd, "control.sock", url, sizeof(url));
		if (mkfifo(path, 0600) || (fifo = open(path, O_RDWR | O_CLOEXEC)) < 0 ||
		    lutf_client_connect(url, &x->ctl) || lutf_client_deploy(x->ctl, &d, &rep) ||
		    rep.status != LUTF_STATUS_OK) {
			fail(r, "hand-off: cannot deploy the hand-off app");
		} else {
			fd = bench_connect_unix(bench_lutfd_path(&lutfd, "lutf.sock", url, sizeof(url)));
			n = fd < 0 ? -1 : daemon_handoff_run(fd, fifo, "ho", lat, rounds, 300);
			if (n != rounds)
				fail(r, "hand-off: %d of %d rounds", n, rounds);
			else
				bench_stats(lat, (size_t)n, &r->ho[m]);
		}
		lutf_client_reply_release(&rep);
		if (fd >= 0)
			close(fd);
		if (fifo >= 0)
			close(fifo);
	}
	free(lat);
}

static int targets(const struct results *r, struct bench_target *t)
{
	double ratio = r->rows[C_INVOKE].lat.median / r->rows[C_ECHO].lat.median;
	double dep = r->deploy_total.median / 1e6;
	double rss = (double)r->rss / 1048576.0, wk = r->wk_max / 1048576.0;
	int n = 0;

	t[n++] = (struct bench_target){
	    "invoke_over_echo", "(b) median <= 2x (a) median", ratio, 2, ratio <= 2, "x", false};
	t[n++] = (struct bench_target){"deploy_first_invoke_ms",
				       "deploy to first OK invoke < 5 ms",
				       dep,
				       5,
				       dep < 5,
				       "ms",
				       false};
	t[n++] = (struct bench_target){
	    "lutfd_idle_rss_mib", "idle lutfd VmRSS < 16 MiB", rss, 16, rss < 16, "Mi", false};
	t[n++] = (struct bench_target){
	    "worker_private_mib", "idle worker private (max) < 2 MiB", wk, 2, wk < 2, "Mi", false};
	return n;
}

static double mib(double bytes)
{
	return bytes / 1048576.0;
}

static void print_table(const struct results *r, bool quick)
{
	const double floor_ns = r->rows[C_ECHO].lat.median;
	struct bench_target t[8];
	int nt = targets(r, t);
	char a[32], b[32], c[32], d[32], e[32];

	printf("lutfd benchmark%s: %s; timer overhead %.1f ns per read\n",
	       quick ? " (--quick)" : "", r->machine, r->timer_ns);
	printf("lutfd default config (carts = CPUs, labors 4 x carts), labor_watch: %s; state on "
	       "%s\n",
	       r->watch[0] ? r->watch : "?", r->fs);
	printf("One request outstanding; client and server on this host. (a), (p), (b) run in\n"
	       "alternating blocks; (b) is lutf_client_invoke of a no-op over lutf.sock. CPU per\n"
	       "call: client = this process (+ children for (c)); server = the echo child, or\n"
	       "lutfd + the tenant's worker (all threads, from schedstat).\n\n");
	printf("%-42s %8s %10s %10s %10s %10s %11s %11s\n", "round trip", "calls", "median", "p99",
	       "mean", "median/(a)", "client CPU", "server CPU");
	for (int i = 0; i < N_CASES; i++) {
		const struct row *w = &r->rows[i];

		if (!w->ran)
			continue;
		printf("%-42s %8llu %10s %10s %10s %9.2fx %11s %11s\n", case_label[i],
		       (unsigned long long)w->calls, bench_fmt_ns(a, sizeof(a), w->lat.median),
		       bench_fmt_ns(b, sizeof(b), w->lat.p99),
		       bench_fmt_ns(c, sizeof(c), w->lat.mean), w->lat.median / floor_ns,
		       bench_fmt_ns(d, sizeof(d), w->client_cpu_ns),
		       bench_fmt_ns(e, sizeof(e), w->server_cpu_ns));
	}
	printf("\n%-42s %8s %10s %10s %10s\n", "deploy of a new tenant (libhello.so)", "rounds",
	       "median", "p99", "mean");
	printf("%-42s %8d %10s %10s %10s\n", "DEPLOY sent to first OK invoke reply", r->rounds,
	       bench_fmt_ns(a, sizeof(a), r->deploy_total.median),
	       bench_fmt_ns(b, sizeof(b), r->deploy_total.p99),
	       bench_fmt_ns(c, sizeof(c), r->deploy_total.mean));
	printf("%-42s %8d %10s %10s %10s\n", "  of which DEPLOY round trip", r->rounds,
	       bench_fmt_ns(a, sizeof(a), r->deploy_reply.median),
	       bench_fmt_ns(b, sizeof(b), r->deploy_reply.p99),
	       bench_fmt_ns(c, sizeof(c), r->deploy_reply.mean));
	printf("%-42s %8d %10s %10s %10s  (%llu non-OK retried)\n", "  of which first invoke(s)",
	       r->rounds, bench_fmt_ns(a, sizeof(a), r->deploy_invoke.median),
	       bench_fmt_ns(b, sizeof(b), r->deploy_invoke.p99),
	       bench_fmt_ns(c, sizeof(c), r->deploy_invoke.mean),
	       (unsigned long long)r->deploy_retries);
	printf("\nidle memory (%llu tenants, %d ms after the last call)\n",
	       (unsigned long long)r->tenants, IDLE_SETTLE_MS);
	printf("  lutfd VmRSS, 1 tenant:        %8.2f MiB\n", mib((double)r->rss_one));
	printf("  lutfd VmRSS, %2llu tenants:      %8.2f MiB  (anon %.2f, file %.2f, shmem %.2f)\n",
	       (unsigned long long)r->tenants, mib((double)r->rss), mib((double)r->rss_anon),
	       mib((double)r->rss_file), mib((double)r->rss_shmem));
	printf("  worker Private_Clean+Dirty:   %8.2f MiB median, %.2f MiB max over %llu workers;"
	       " %.2f MiB for the (b) tenant\n",
	       mib(r->wk_median), mib(r->wk_max), (unsigned long long)r->workers, mib(r->wk_hot));
	printf("\nhand-off through lutfd (1 Cart, 4 Labors, grace 0; block in read() on a FIFO to\n"
	       "the next call of the Cart starting on another Labor, stamped in the worker)\n");
	printf("  eBPF (labor_watch)      median %s  p99 %s\n",
	       bench_fmt_ns(a, sizeof(a), r->ho[0].median),
	       bench_fmt_ns(b, sizeof(b), r->ho[0].p99));
	printf("  polling every 20 us     median %s  p99 %s\n",
	       bench_fmt_ns(a, sizeof(a), r->ho[1].median),
	       bench_fmt_ns(b, sizeof(b), r->ho[1].p99));
	bench_targets_print(t, nt);
	printf("\nerrors: %d (failed calls, wrong statuses, lutfd start/stop)\n", r->errors);
}

static void json_stats(struct bench_json *j, const char *key, const struct bench_stats *s)
{
	bench_json_obj(j, key);
	bench_json_num(j, "median_ns", s->median);
	bench_json_num(j, "p99_ns", s->p99);
	bench_json_num(j, "mean_ns", s->mean);
	bench_json_close_obj(j);
}

static void print_json(const struct results *r, bool quick)
{
	struct bench_target t[8];
	int nt = targets(r, t);
	struct bench_json j;

	bench_json_begin(&j, stdout);
	bench_json_str(&j, "bench", "daemon");
	bench_json_str(&j, "machine", r->machine);
	bench_json_bool(&j, "quick", quick);
	bench_json_num(&j, "timer_overhead_ns", r->timer_ns);
	bench_json_str(&j, "watch", r->watch);
	bench_json_str(&j, "state_fs", r->fs);
	bench_json_obj(&j, "roundtrip");
	for (int i = 0; i < N_CASES; i++) {
		const struct row *w = &r->rows[i];

		if (!w->ran)
			continue;
		bench_json_obj(&j, case_key[i]);
		bench_json_str(&j, "label", case_label[i]);
		bench_json_u64(&j, "calls", w->calls);
		bench_json_num(&j, "median_ns", w->lat.median);
		bench_json_num(&j, "p99_ns", w->lat.p99);
		bench_json_num(&j, "mean_ns", w->lat.mean);
		bench_json_num(&j, "median_over_echo", w->lat.median / r->rows[C_ECHO].lat.median);
		bench_json_num(&j, "client_cpu_ns_per_call", w->client_cpu_ns);
		bench_json_num(&j, "server_cpu_ns_per_call", w->server_cpu_ns);
		bench_json_close_obj(&j);
	}
	bench_json_close_obj(&j);
	bench_json_obj(&j, "deploy");
	bench_json_u64(&j, "rounds", (uint64_t)r->rounds);
	json_stats(&j, "to_first_invoke", &r->deploy_total);
	json_stats(&j, "deploy_reply", &r->deploy_reply);
	json_stats(&j, "first_invoke", &r->deploy_invoke);
	bench_json_u64(&j, "invoke_retries", r->deploy_retries);
	bench_json_close_obj(&j);
	bench_json_obj(&j, "memory");
	bench_json_u64(&j, "tenants", r->tenants);
	bench_json_u64(&j, "lutfd_rss_one_tenant", r->rss_one);
	bench_json_u64(&j, "lutfd_rss", r->rss);
	bench_json_u64(&j, "lutfd_rss_anon", r->rss_anon);
	bench_json_u64(&j, "lutfd_rss_file", r->rss_file);
	bench_json_u64(&j, "lutfd_rss_shmem", r->rss_shmem);
	bench_json_u64(&j, "workers", r->workers);
	bench_json_num(&j, "worker_private_median", r->wk_median);
	bench_json_num(&j, "worker_private_max", r->wk_max);
	bench_json_num(&j, "worker_private_invoke_tenant", r->wk_hot);
	bench_json_close_obj(&j);
	json_stats(&j, "handoff_bpf", &r->ho[0]);
	json_stats(&j, "handoff_poll20", &r->ho[1]);
	bench_targets_json(&j, t, nt);
	bench_json_u64(&j, "errors", (uint64_t)r->errors);
	bench_json_end(&j);
}

/* ---- main ---- */

static void *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	void *p = NULL;
	long n;

	if (!fp)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) > 0 && fseek(fp, 0, SEEK_SET) == 0 &&
	    (p = malloc((size_t)n))) {
		if (fread(p, 1, (size_t)n, fp) != (size_t)n) {
			free(p);
			p = NULL;
		}
		*len = (size_t)n;
	}
	fclose(fp);
	return p;
}

static void fs_name(const char *path, char *buf, size_t cap)
{
	struct statfs s;

	if (statfs(path, &s))
		snprintf(buf, cap, "?");
	else if (s.f_type == 0x01021994)
		snprintf(buf, cap, "tmpfs (fsync is free)");
	else if (s.f_type == 0xEF53)
		snprintf(buf, cap, "ext4");
	else if (s.f_type == 0x58465342)
		snprintf(buf, cap, "xfs");
	else if (s.f_type == 0x9123683E)
		snprintf(buf, cap, "btrfs");
	else
		snprintf(buf, cap, "fs %#lx", (unsigned long)s.f_type);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct ctx x = {.echo_fd = -1, .tiny = TRUE_TINY_BIN};
	uint64_t n_rt, n_exec, *lat[N_CASES] = {0};
	struct lutf_client_reply rep = {0};
	struct bench_opts o;
	struct results *r;
	char url[160];
	int rounds, blocks, ret = 1;

	bench_parse_args(
	    argc, argv,
	    "lutfd end to end: no-op invoke round trip beside an echo server and "
	    "fork+exec, deploy to first invoke, idle memory. Needs root (else exit 77).",
	    &o);
	if (geteuid() != 0) {
		fprintf(stderr, "daemon: skipped: lutfd needs root (zygote, worker uids, BPF)\n");
		return 77;
	}
	n_rt = o.quick ? 2000 : 20000; /* each of (a), (p), (b) */
	blocks = o.quick ? 2 : 10;
	n_exec = o.quick ? 100 : 1000;
	rounds = o.quick ? 3 : 20;
	r = calloc(1, sizeof(*r));
	for (int c = 0; c < N_CASES; c++)
		lat[c] = calloc(n_rt > 1000 ? n_rt : 1000, sizeof(uint64_t));
	x.so = slurp(HELLO_SO, &x.so_len);
	if (!r || !lat[0] || !lat[1] || !lat[2] || !lat[3] || !x.so || access(x.tiny, X_OK) != 0) {
		fprintf(stderr, "daemon: %s\n",
			!x.so		       ? "cannot read " HELLO_SO
			: access(x.tiny, X_OK) ? "cannot run " TRUE_TINY_BIN
					       : "out of memory");
		goto out;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	atexit(stop_at_exit);
	bench_machine(r->machine, sizeof(r->machine));
	r->timer_ns = bench_timer_overhead_ns();

	x.echo_fd = echo_start();
	if (x.echo_fd < 0) {
		fprintf(stderr, "daemon: cannot start the echo child: %s\n", strerror(errno));
		goto out;
	}
	if (start_lutfd(NULL))
		goto out;
	fs_name(lutfd.state, r->fs, sizeof(r->fs));
	snprintf(url, sizeof(url), "unix://%s/lutf.sock", lutfd.run);
	if (lutf_client_connect(url, &x.data) ||
	    lutf_client_set_timeout(x.data, CALL_TIMEOUT_MS, 0)) {
		fprintf(stderr, "daemon: cannot connect to %s\n", url);
		goto out;
	}
	bench_lutfd_path(&lutfd, "control.sock", url, sizeof(url));
	if (lutf_client_connect(url, &x.ctl) ||
	    lutf_client_set_timeout(x.ctl, CALL_TIMEOUT_MS, 0)) {
		fprintf(stderr, "daemon: cannot connect to %s\n", url);
		goto out;
	}
	if (deploy(r, &x, "rt"))
		goto report;
	x.worker = tenant_worker(r, &x, "rt");

	run_roundtrips(r, &x, lat, n_rt, blocks, n_exec);
	bench_sleep_ns(IDLE_SETTLE_MS * 1000000ull);
	r->rss_one = status_kb(lutfd.pid, "VmRSS");
	if (!r->errors)
		run_deploys(r, &x, rounds);
	if (!r->errors)
		run_memory(r, &x);
	/* Nothing should be in flight or lost: lutfd's own count. */
	if (!r->errors && lutf_client_status(x.ctl, &rep) == 0 && rep.n_records) {
		const struct lutf_client_field *f =
		    lutf_client_record_get(&rep.records[0], "inflight");

		if (f && f->u64)
			fail(r, "lutfd reports %llu requests in flight when idle",
			     (unsigned long long)f->u64);
	}
	lutf_client_reply_release(&rep);
	if (!r->errors)
		run_handoffs(r, &x, o.quick ? 200 : 2000);
report:
	lutf_client_close(x.data);
	lutf_client_close(x.ctl);
	x.data = x.ctl = NULL;
	if (x.echo_fd >= 0)
		close(x.echo_fd);
	if (stop_all())
		r->errors++;
	if (o.json)
		print_json(r, o.quick);
	else
		print_table(r, o.quick);
	ret = interrupted ? 130 : r->errors ? 1 : 0;
out:
	lutf_client_close(x.data);
	lutf_client_close(x.ctl);
	stop_all();
	for (int c = 0; c < N_CASES; c++)
		free(lat[c]);
	free(x.so);
	free(r);
	return ret;
}
