/* SPDX-License-Identifier: MIT */
/*
 * ingress: lutfd's ingress backends side by side, driven by the batched
 * asynchronous client (lutf_client_open/submit/reap). lutfd is started twice
 * on private /tmp folders: default backend (io_uring), then LUTF_INGRESS=epoll.
 * For each: no-op invokes per second with 64 connections x 16 calls in
 * flight; median and p99 round trip with one call outstanding; CPU time per
 * invocation of lutfd, of the tenant's worker and of this client. Targets are
 * printed, never asserted; a failed call or a lutfd that does not start exits
 * 1; not root exits 77 (skipped).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lutf/client.h>

#include "common.h"

#ifndef LUTFD_BIN
#error "LUTFD_BIN must name the lutfd binary"
#endif

#define CONNS 64
#define PER_CONN 16
#define START_WAIT_MS 10000

enum { B_URING, B_EPOLL, N_BACKENDS };
static const char *const be_env[N_BACKENDS] = {NULL, "epoll"};
static const char *const be_key[N_BACKENDS] = {"uring", "epoll"};

static pid_t lutfd_pid;
static char dir[64], run_dir[96], pin_dir[64];

struct result {
	char ingress[32]; /* what lutfd's STATUS says it runs */
	char client[16];  /* the client's transport */
	double tput;	  /* invokes/s, 64 x 16 in flight */
	double srv_ns, wk_ns, cli_ns; /* CPU per invocation: lutfd, worker, client */
	uint64_t calls, enters;
	struct bench_stats rtt; /* ns, one outstanding */
	bool ran;
};

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p), 0;
}

static void stop_lutfd(void)
{
	if (lutfd_pid > 0) {
		kill(lutfd_pid, SIGTERM);
		for (int i = 0; i < 500 && waitpid(lutfd_pid, NULL, WNOHANG) != lutfd_pid; i++)
			bench_sleep_ns(10000000);
		kill(lutfd_pid, SIGKILL);
		waitpid(lutfd_pid, NULL, 0);
		lutfd_pid = 0;
	}
	if (pin_dir[0])
		nftw(pin_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (dir[0] && !getenv("LUTF_BENCH_KEEP"))
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = 0;
}

static void on_exit_stop(void)
{
	stop_lutfd();
}

/* Start lutfd with LUTF_INGRESS=ingress (NULL: default). Returns 0 or -1. */
static int start_lutfd(const char *ingress)
{
	char conf[128], state[128], logp[128], ctl[160];
	pid_t parent = getpid();
	uint64_t until;
	FILE *fp;

	snprintf(dir, sizeof(dir), "/tmp/lutf-ingress-XXXXXX");
	if (!mkdtemp(dir))
		return dir[0] = 0, -1;
	chmod(dir, 0711); /* tenant workers run under their own uid */
	snprintf(run_dir, sizeof(run_dir), "%s/run", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(conf, sizeof(conf), "%s/lutfd.conf", dir);
	snprintf(logp, sizeof(logp), "%s/lutfd.log", dir);
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/lutfi%d", (int)parent);
	fp = fopen(conf, "w");
	if (!fp)
		return -1;
	/* 64 x 16 calls in flight: room in lutfd's queues for all of them. */
	fprintf(fp, "[lutfd]\nbpf_pin_root = %s\nmax_queued = 8192\n", pin_dir);
	fclose(fp);
	lutfd_pid = fork();
	if (lutfd_pid < 0)
		return lutfd_pid = 0, -1;
	if (lutfd_pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		if (ingress)
			setenv("LUTF_INGRESS", ingress, 1);
		else
			unsetenv("LUTF_INGRESS");
		execl(LUTFD_BIN, "lutfd", "--config", conf, "--state-dir", state, "--runtime-dir",
		      run_dir, (char *)NULL);
		_exit(127);
	}
	snprintf(ctl, sizeof(ctl), "%s/control.sock", run_dir);
	until = bench_now_ns() + START_WAIT_MS * 1000000ull;
	while (bench_now_ns() < until) {
		struct lutf_client *c;

		if (lutf_client_connect(ctl, &c) == 0) {
			lutf_client_close(c);
			return 0;
		}
		if (waitpid(lutfd_pid, NULL, WNOHANG) == lutfd_pid) {
			lutfd_pid = 0;
			fprintf(stderr, "ingress: lutfd exited during start (log %s)\n", logp);
			return -1;
		}
		bench_sleep_ns(10000000);
	}
	fprintf(stderr, "ingress: lutfd did not come up (log %s)\n", logp);
	return -1;
}

/* CPU time of every thread of pid (schedstat: exact), ns; 0 if gone. */
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

/* Deploy tenant "ib" (examples hello.so, function noop); find its worker pid
 * and lutfd's ingress text. Returns 0 or -1. */
static int deploy(pid_t *worker, char *ingress, size_t cap)
{
	struct lutf_client_export ex[] = {{"noop", NULL}};
	struct lutf_client_deploy d = {.tenant = "ib", .app = "noop", .so_path = HELLO_SO,
				       .exports = ex, .n_exports = 1, .tier = "basic"};
	struct lutf_client_reply rep;
	struct lutf_client *c;
	char ctl[160];
	int err;

	snprintf(ctl, sizeof(ctl), "%s/control.sock", run_dir);
	if (lutf_client_connect(ctl, &c))
		return -1;
	err = lutf_client_deploy(c, &d, &rep);
	if (err || rep.status != LUTF_STATUS_OK) {
		fprintf(stderr, "ingress: deploy: %s %s\n",
			err ? strerror(-err) : lutf_status_str(rep.status),
			!err && rep.error ? rep.error : "");
		lutf_client_reply_release(&rep);
		lutf_client_close(c);
		return -1;
	}
	lutf_client_reply_release(&rep);
	*worker = 0;
	snprintf(ingress, cap, "?");
	if (lutf_client_status(c, &rep) == 0) {
		for (size_t i = 0; i < rep.n_records; i++) {
			const struct lutf_client_record *r = &rep.records[i];
			const struct lutf_client_field *p = lutf_client_record_get(r, "worker_pid");

			if (p && p->type == LUTF_CLIENT_U64)
				*worker = (pid_t)p->u64;
			for (size_t k = 0; k < r->n_fields; k++)
				if (!strcmp(r->fields[k].key, "text") &&
				    !strncmp(r->fields[k].str, "ingress=", 8))
					snprintf(ingress, cap, "%s", r->fields[k].str + 8);
		}
		lutf_client_reply_release(&rep);
	}
	lutf_client_close(c);
	return 0;
}

static struct lutf_client_async *open_client(uint32_t conns, uint32_t depth)
{
	char url[160];
	const char *urls[] = {url};
	struct lutf_client_opts o = {.endpoints = urls, .n_endpoints = 1,
				     .conns_per_endpoint = conns, .queue_depth = depth,
				     .timeout_ms = 10000};
	struct lutf_client_async *a;
	int err;

	snprintf(url, sizeof(url), "unix://%s/lutf.sock", run_dir);
	err = lutf_client_open(&o, &a);
	if (err) {
		fprintf(stderr, "ingress: client open: %s\n", strerror(-err));
		return NULL;
	}
	return a;
}

/* Reap what is there (waiting for at least one); count OKs. Returns the
 * number reaped or -1 on any failed call. */
static int reap_some(struct lutf_client_async *a, struct lutf_client_completion *cq, size_t n)
{
	int k = lutf_client_reap(a, cq, n, 5000);

	if (k <= 0) {
		fprintf(stderr, "ingress: reap: %s\n", k ? strerror(-k) : "nothing in 5 s");
		return -1;
	}
	for (int j = 0; j < k; j++) {
		if (cq[j].error || cq[j].result.status != LUTF_STATUS_OK) {
			fprintf(stderr, "ingress: call failed: %s %s\n",
				cq[j].error ? strerror(-cq[j].error)
					    : lutf_status_str(cq[j].result.status),
				cq[j].result.error ? cq[j].result.error : "");
			return -1;
		}
		lutf_client_result_release(&cq[j].result);
	}
	return k;
}

/* 64 connections x 16 in flight for ns of wall time. Returns 0 or -1. */
static int throughput(struct result *r, pid_t worker, uint64_t ns)
{
	static struct lutf_client_completion cq[CONNS * PER_CONN];
	struct lutf_client_async *a = open_client(CONNS, CONNS * PER_CONN);
	struct lutf_client_async_stats st;
	uint64_t t0, t1, c0, s0, w0, e0 = 0, done = 0;
	int ret = -1;

	if (!a)
		return -1;
	snprintf(r->client, sizeof(r->client), "%s", lutf_client_backend(a));
	for (int warm = 1; warm >= 0; warm--) {
		uint64_t until;

		t0 = bench_now_ns();
		c0 = bench_cpu_self_ns();
		s0 = proc_cpu_ns(lutfd_pid);
		w0 = proc_cpu_ns(worker);
		lutf_client_async_stats(a, &st);
		e0 = st.enters;
		until = t0 + (warm ? ns / 4 : ns);
		done = 0;
		while (bench_now_ns() < until) {
			int k;

			while (lutf_client_submit(a, "ib", "noop", NULL, 0) == 0)
				;
			k = reap_some(a, cq, CONNS * PER_CONN);
			if (k < 0)
				goto out;
			done += (uint64_t)k;
		}
		/* Drain, so the CPU counted belongs to the calls counted. */
		while (lutf_client_outstanding(a)) {
			int k = reap_some(a, cq, CONNS * PER_CONN);

			if (k < 0)
				goto out;
			done += (uint64_t)k;
		}
	}
	t1 = bench_now_ns();
	r->calls = done;
	r->tput = (double)done * 1e9 / (double)(t1 - t0);
	r->cli_ns = (double)(bench_cpu_self_ns() - c0) / (double)done;
	r->srv_ns = (double)(proc_cpu_ns(lutfd_pid) - s0) / (double)done;
	r->wk_ns = (double)(proc_cpu_ns(worker) - w0) / (double)done;
	lutf_client_async_stats(a, &st);
	r->enters = st.enters - e0;
	ret = 0;
out:
	lutf_client_async_close(a);
	return ret;
}

/* One call outstanding at a time: n round trips. Returns 0 or -1. */
static int latency(struct result *r, size_t n)
{
	struct lutf_client_async *a = open_client(1, 1);
	struct lutf_client_completion cq[1];
	uint64_t *v = calloc(n, sizeof(*v));
	int ret = -1;

	if (!a || !v)
		goto out;
	for (size_t i = 0; i < n + 1000; i++) {
		uint64_t t = bench_now_ns();

		if (lutf_client_submit(a, "ib", "noop", NULL, i) || reap_some(a, cq, 1) != 1)
			goto out;
		if (i >= 1000) /* after a warm-up */
			v[i - 1000] = bench_now_ns() - t;
	}
	bench_stats(v, n, &r->rtt);
	ret = 0;
out:
	free(v);
	lutf_client_async_close(a);
	return ret;
}

static int run_backend(int b, struct result *r, bool quick)
{
	pid_t worker;
	int err;

	if (start_lutfd(be_env[b]))
		return -1;
	err = deploy(&worker, r->ingress, sizeof(r->ingress));
	if (!err)
		err = throughput(r, worker, quick ? 300000000ull : 3000000000ull);
	if (!err)
		err = latency(r, quick ? 2000 : 50000);
	stop_lutfd();
	r->ran = !err;
	return err;
}

static void row(const char *what, const char *unit, double u, double e, int prec)
{
	printf("%-40s %14.*f %14.*f %8.2fx  %s\n", what, prec, u, prec, e, e ? u / e : NAN, unit);
}

int main(int argc, char **argv)
{
	struct result res[N_BACKENDS] = {0};
	struct bench_opts o;
	struct bench_target tg[3];
	char machine[128];

	bench_parse_args(argc, argv, "lutfd ingress: io_uring vs epoll through the batched client",
			 &o);
	if (geteuid() != 0) {
		fprintf(stderr, "ingress: SKIP: lutfd needs root\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	atexit(on_exit_stop);
	bench_machine(machine, sizeof(machine));
	for (int b = 0; b < N_BACKENDS; b++)
		if (run_backend(b, &res[b], o.quick))
			return 1;

	double ucpu = res[B_URING].srv_ns + res[B_URING].wk_ns;
	double ecpu = res[B_EPOLL].srv_ns + res[B_EPOLL].wk_ns;
	double ratio = res[B_URING].tput / res[B_EPOLL].tput;
	tg[0] = (struct bench_target){"tput", "io_uring no-op invokes/s (64x16)",
				      res[B_URING].tput, 300000, res[B_URING].tput >= 300000, "", false};
	tg[1] = (struct bench_target){"ratio", "io_uring / epoll throughput",
				      ratio, 1.3, ratio >= 1.3, "x", false};
	tg[2] = (struct bench_target){"cpu_ratio", "epoll / io_uring server CPU per call",
				      ecpu / ucpu, 1.0, ecpu / ucpu >= 1.0, "x", false};
	if (o.json) {
		struct bench_json j;

		bench_json_begin(&j, stdout);
		bench_json_str(&j, "machine", machine);
		for (int b = 0; b < N_BACKENDS; b++) {
			bench_json_obj(&j, be_key[b]);
			bench_json_str(&j, "ingress_reported", res[b].ingress);
			bench_json_str(&j, "client", res[b].client);
			bench_json_num(&j, "invokes_per_s", res[b].tput);
			bench_json_u64(&j, "calls", res[b].calls);
			bench_json_u64(&j, "client_enters", res[b].enters);
			bench_json_num(&j, "rtt_median_ns", res[b].rtt.median);
			bench_json_num(&j, "rtt_p99_ns", res[b].rtt.p99);
			bench_json_num(&j, "lutfd_cpu_ns_per_call", res[b].srv_ns);
			bench_json_num(&j, "worker_cpu_ns_per_call", res[b].wk_ns);
			bench_json_num(&j, "client_cpu_ns_per_call", res[b].cli_ns);
			bench_json_close_obj(&j);
		}
		bench_targets_json(&j, tg, 3);
		bench_json_end(&j);
		return 0;
	}
	printf("lutfd ingress, %s; client: %s, %d connections x %d in flight, no-op invokes\n",
	       machine, res[B_URING].client, CONNS, PER_CONN);
	printf("%-40s %14s %14s %9s\n", "", "default", "LUTF_INGRESS=", "ratio");
	printf("%-40s %14s %14s\n", "backend lutfd reports", res[B_URING].ingress,
	       res[B_EPOLL].ingress);
	row("invokes/s (64 x 16 in flight)", "", res[B_URING].tput, res[B_EPOLL].tput, 0);
	row("round trip median, 1 outstanding", "us", res[B_URING].rtt.median / 1e3,
	    res[B_EPOLL].rtt.median / 1e3, 2);
	row("round trip p99, 1 outstanding", "us", res[B_URING].rtt.p99 / 1e3,
	    res[B_EPOLL].rtt.p99 / 1e3, 2);
	row("lutfd CPU per invocation", "ns", res[B_URING].srv_ns, res[B_EPOLL].srv_ns, 0);
	row("worker CPU per invocation", "ns", res[B_URING].wk_ns, res[B_EPOLL].wk_ns, 0);
	row("server CPU per invocation (sum)", "ns", ucpu, ecpu, 0);
	row("client CPU per invocation", "ns", res[B_URING].cli_ns, res[B_EPOLL].cli_ns, 0);
	row("client I/O syscalls per invocation", "", (double)res[B_URING].enters / res[B_URING].calls,
	    (double)res[B_EPOLL].enters / res[B_EPOLL].calls, 4);
	bench_targets_print(tg, 3);
	return 0;
}
