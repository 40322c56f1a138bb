/* SPDX-License-Identifier: MIT */
/*
 * ingress: lutfd's ingress backends side by side, driven by the batched
 * asynchronous client (lutf_client_open/submit/reap). Two lutfds run at once
 * on private /tmp folders, one on the default backend (io_uring), one with
 * LUTF_INGRESS=epoll, each with the same no-op tenant; the figures come from
 * 20 short rounds, each measuring both backends back to back (order swapped
 * every round, so drift and neighbours' load hit both alike); the table gives
 * medians, and the io_uring/epoll targets use the median of the per-round
 * (paired) ratios.
 * Per round and backend: no-op invokes per second with 64 connections x 16
 * calls in flight; CPU time per invocation of lutfd, of the tenant's worker
 * and of this client; lutfd's schedule-ins and sends per invocation; context
 * switches per invocation, voluntary and involuntary, of lutfd and of the
 * worker (all threads, /proc/<pid>/task/<tid>/status); PINGs
 * per second and lutfd CPU per PING (the ingress path alone: no worker);
 * median and p99 round trip with one call outstanding. Then, outside the
 * timed rounds, lutfd's system calls per invocation, per PING and per round
 * trip (perf stat, when perf is installed). Targets are printed, never asserted; a failed call
 * or a lutfd that does not start exits 1; not root exits 77 (skipped).
 * LUTF_BENCH_ROUNDS=n overrides the number of rounds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lutf/client.h>

#include "common.h"
#include "ingress_probe.h"
#include "lutfd_util.h"

#ifndef LUTFD_BIN
#error "LUTFD_BIN must name the lutfd binary"
#endif

#define CONNS 64
#define PER_CONN 16
#define START_WAIT_MS 10000
#define STOP_WAIT_MS 5000
#define MAX_ROUNDS 40
#define RTT_SYS_N 5000

enum { B_URING, B_EPOLL, N_BACKENDS };
static const char *const be_env[N_BACKENDS] = {"", "epoll"}; /* "": unset */
static const char *const be_name[N_BACKENDS] = {"iuring", "iepoll"};
static const char *const be_key[N_BACKENDS] = {"uring", "epoll"};

struct daemon {
	struct bench_lutfd l;
	pid_t worker;
	char ingress[32]; /* what lutfd's STATUS says it runs */
};
static struct daemon dmn[N_BACKENDS];

/* One backend in one round. */
struct sample {
	double tput;		      /* invokes/s, 64 x 16 in flight */
	double srv_ns, wk_ns, cli_ns; /* CPU per invocation: lutfd, worker, client */
	double main_ns;		      /* ... lutfd's main (ingress) thread alone */
	double slices;		      /* lutfd schedule-ins per invocation */
	/* Context switches per invocation, all threads (/proc/<pid>/task/<tid>/status). */
	double l_vcs, l_ivcs; /* lutfd: voluntary (waits), involuntary (preempted) */
	double w_vcs, w_ivcs; /* the worker: the same */
	double sends;		      /* lutfd sends per invocation */
	double enters;		      /* client I/O system calls per invocation */
	double other_ms;	      /* CPU the other (idle) lutfd used meanwhile, ms/s */
	double ping_tput, ping_ns;    /* PINGs/s and lutfd CPU per PING */
	double rtt_med, rtt_p99;      /* ns, one outstanding */
};

/* Outside the timed rounds: lutfd system calls (perf), per call. */
struct sys_row {
	bool ok;
	double inv_main, inv_other, ping_main, ping_other;
	double rtt_main, rtt_other; /* per round trip, one outstanding */
};

static char client_backend[16];

static void on_exit_stop(void)
{
	for (int b = 0; b < N_BACKENDS; b++)
		bench_lutfd_stop(&dmn[b].l, STOP_WAIT_MS);
}

/*
 * Start backend b's lutfd. Both run at once: each has its own cgroup and
 * worker uids (else one's tenant setup kills or confines the other's
 * worker), distinct from the tests' (100000 + 16 per test process). Returns 0
 * or -1.
 */
static int start_lutfd(struct daemon *d, int b)
{
	unsigned lo = 500000u + ((unsigned)getpid() % 20000u) * 32u + (unsigned)b * 16u;
	char conf[256];

	d->l.name = be_name[b];
	d->l.ingress = be_env[b];
	/* 64 x 16 calls in flight: room in lutfd's queues for all of them. */
	snprintf(conf, sizeof(conf),
		 "max_queued = 8192\nhttp_listen = off\nadmin_listen = off\n"
		 "cgroup_name = lutfi%d%s\nuid_range = %u-%u\n",
		 (int)getpid(), be_key[b], lo, lo + 15);
	return bench_lutfd_start(&d->l, conf, START_WAIT_MS);
}

/* lutfd's ingress counters (STATUS) that the table reports. */
struct ictr {
	uint64_t sends, enobufs, short_sends, cq_overflows, sqe_waits;
};

/* lutfd's STATUS: worker pid, ingress text and counters (ic may be NULL).
 * Returns 0 or -1. */
static int status(struct daemon *d, struct ictr *ic)
{
	static const struct {
		const char *key;
		size_t off;
	} ks[] = {
	    {"ingress_sends", offsetof(struct ictr, sends)},
	    {"ingress_enobufs", offsetof(struct ictr, enobufs)},
	    {"ingress_short_sends", offsetof(struct ictr, short_sends)},
	    {"ingress_cq_overflows", offsetof(struct ictr, cq_overflows)},
	    {"ingress_sqe_waits", offsetof(struct ictr, sqe_waits)},
	};
	struct lutf_client_reply rep;
	struct lutf_client *c;
	char ctl[160];

	bench_lutfd_path(&d->l, "control.sock", ctl, sizeof(ctl));
	if (lutf_client_connect(ctl, &c))
		return -1;
	if (lutf_client_status(c, &rep)) {
		lutf_client_close(c);
		return -1;
	}
	for (size_t i = 0; i < rep.n_records; i++) {
		const struct lutf_client_record *r = &rep.records[i];
		const struct lutf_client_field *p = lutf_client_record_get(r, "worker_pid");

		if (p && p->type == LUTF_CLIENT_U64)
			d->worker = (pid_t)p->u64;
		for (size_t k = 0; ic && k < sizeof(ks) / sizeof(ks[0]); k++) {
			p = lutf_client_record_get(r, ks[k].key);
			if (p && p->type == LUTF_CLIENT_U64)
				*(uint64_t *)(void *)((char *)ic + ks[k].off) = p->u64;
		}
		for (size_t k = 0; k < r->n_fields; k++)
			if (!strcmp(r->fields[k].key, "text") &&
			    !strncmp(r->fields[k].str, "ingress=", 8))
				snprintf(d->ingress, sizeof(d->ingress), "%s",
					 r->fields[k].str + 8);
	}
	lutf_client_reply_release(&rep);
	lutf_client_close(c);
	return 0;
}

/* Deploy tenant "ib" (examples hello.so, function noop). Returns 0 or -1. */
static int deploy(struct daemon *d)
{
	struct lutf_client_export ex[] = {{"noop", NULL}};
	struct lutf_client_deploy dp = {.tenant = "ib",
					.app = "noop",
					.so_path = HELLO_SO,
					.exports = ex,
					.n_exports = 1,
					.tier = "basic"};
	struct lutf_client_reply rep;
	struct lutf_client *c;
	char ctl[160];
	int err;

	bench_lutfd_path(&d->l, "control.sock", ctl, sizeof(ctl));
	if (lutf_client_connect(ctl, &c))
		return -1;
	err = lutf_client_deploy(c, &dp, &rep);
	if (err || rep.status != LUTF_STATUS_OK) {
		fprintf(stderr, "ingress: deploy: %s %s\n",
			err ? strerror(-err) : lutf_status_str(rep.status),
			!err && rep.error ? rep.error : "");
		lutf_client_reply_release(&rep);
		lutf_client_close(c);
		return -1;
	}
	lutf_client_reply_release(&rep);
	lutf_client_close(c);
	snprintf(d->ingress, sizeof(d->ingress), "?");
	return status(d, NULL);
}

static struct lutf_client_async *open_client(struct daemon *d, uint32_t conns, uint32_t depth)
{
	char url[160];
	const char *urls[] = {url};
	struct lutf_client_opts o = {.endpoints = urls,
				     .n_endpoints = 1,
				     .conns_per_endpoint = conns,
				     .queue_depth = depth,
				     .timeout_ms = 10000};
	struct lutf_client_async *a;
	int err;

	snprintf(url, sizeof(url), "unix://%s/lutf.sock", d->l.run);
	err = lutf_client_open(&o, &a);
	if (err) {
		fprintf(stderr, "ingress: client open: %s\n", strerror(-err));
		return NULL;
	}
	snprintf(client_backend, sizeof(client_backend), "%s", lutf_client_backend(a));
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

/* Keep 64 x 16 invocations in flight for ns, then drain. Returns calls or -1. */
static int64_t pump(struct lutf_client_async *a, uint64_t ns)
{
	static struct lutf_client_completion cq[CONNS * PER_CONN];
	uint64_t until = bench_now_ns() + ns;
	int64_t done = 0;

	while (bench_now_ns() < until) {
		int k;

		while (lutf_client_submit(a, "ib", "noop", NULL, 0) == 0)
			;
		k = reap_some(a, cq, CONNS * PER_CONN);
		if (k < 0)
			return -1;
		done += k;
	}
	/* Drain, so the CPU counted belongs to the calls counted. */
	while (lutf_client_outstanding(a)) {
		int k = reap_some(a, cq, CONNS * PER_CONN);

		if (k < 0)
			return -1;
		done += k;
	}
	return done;
}

/* Throughput of d (o: the other, idle lutfd) for ns. Returns 0 or -1. */
static int throughput(struct daemon *d, struct daemon *o, struct sample *s, uint64_t ns)
{
	struct lutf_client_async *a = open_client(d, CONNS, CONNS * PER_CONN);
	struct proc_sample s0, s1, w0, w1, o0, o1, oo0, oo1;
	struct lutf_client_async_stats st;
	struct ictr i0 = {0}, i1 = {0};
	uint64_t t0, t1, c0, e0;
	int64_t done;

	if (!a)
		return -1;
	if (pump(a, ns / 8) < 0) /* warm-up */
		goto err;
	status(d, &i0);
	lutf_client_async_stats(a, &st);
	e0 = st.enters;
	probe_proc(d->l.pid, &s0);
	probe_proc(d->worker, &w0);
	probe_proc(o->l.pid, &o0);
	probe_proc(o->worker, &oo0);
	c0 = bench_cpu_self_ns();
	t0 = bench_now_ns();
	done = pump(a, ns);
	t1 = bench_now_ns();
	if (done <= 0)
		goto err;
	s->cli_ns = (double)(bench_cpu_self_ns() - c0) / (double)done;
	probe_proc(d->l.pid, &s1);
	probe_proc(d->worker, &w1);
	probe_proc(o->l.pid, &o1);
	probe_proc(o->worker, &oo1);
	lutf_client_async_stats(a, &st);
	status(d, &i1);
	s->tput = (double)done * 1e9 / (double)(t1 - t0);
	s->srv_ns = (double)(s1.cpu_ns - s0.cpu_ns) / (double)done;
	s->main_ns = (double)(s1.main_ns - s0.main_ns) / (double)done;
	s->wk_ns = (double)(w1.cpu_ns - w0.cpu_ns) / (double)done;
	s->slices = (double)(s1.slices - s0.slices) / (double)done;
	s->l_vcs = (double)(s1.vol_cs - s0.vol_cs) / (double)done;
	s->l_ivcs = (double)(s1.invol_cs - s0.invol_cs) / (double)done;
	s->w_vcs = (double)(w1.vol_cs - w0.vol_cs) / (double)done;
	s->w_ivcs = (double)(w1.invol_cs - w0.invol_cs) / (double)done;
	/* status() itself costs one send: negligible against ~10^6 calls. */
	s->sends = (double)(i1.sends - i0.sends) / (double)done;
	s->enters = (double)(st.enters - e0) / (double)done;
	s->other_ms =
	    (double)(o1.cpu_ns - o0.cpu_ns + oo1.cpu_ns - oo0.cpu_ns) / (double)(t1 - t0) * 1e3;
	lutf_client_async_close(a);
	return 0;
err:
	lutf_client_async_close(a);
	return -1;
}

/* Pipelined PINGs (64 x 16) for ns. Returns 0 or -1. */
static int ping(struct daemon *d, struct sample *s, uint64_t ns)
{
	struct proc_sample s0, s1;
	uint64_t t0, t1, n;
	char path[160];

	bench_lutfd_path(&d->l, "lutf.sock", path, sizeof(path));
	probe_proc(d->l.pid, &s0);
	t0 = bench_now_ns();
	if (probe_ping(path, CONNS, PER_CONN, ns, &n) || !n)
		return -1;
	t1 = bench_now_ns();
	probe_proc(d->l.pid, &s1);
	s->ping_tput = (double)n * 1e9 / (double)(t1 - t0);
	s->ping_ns = (double)(s1.cpu_ns - s0.cpu_ns) / (double)n;
	return 0;
}

/* One call outstanding at a time: n round trips. Returns 0 or -1. */
static int latency(struct daemon *d, struct sample *s, size_t n)
{
	struct lutf_client_async *a = open_client(d, 1, 1);
	struct lutf_client_completion cq[1];
	uint64_t *v = calloc(n, sizeof(*v));
	struct bench_stats bs;
	int ret = -1;

	if (!a || !v)
		goto out;
	for (size_t i = 0; i < n + 500; i++) {
		uint64_t t = bench_now_ns();

		if (lutf_client_submit(a, "ib", "noop", NULL, i) || reap_some(a, cq, 1) != 1)
			goto out;
		if (i >= 500) /* after a warm-up */
			v[i - 500] = bench_now_ns() - t;
	}
	bench_stats(v, n, &bs);
	s->rtt_med = bs.median;
	s->rtt_p99 = bs.p99;
	ret = 0;
out:
	free(v);
	if (a)
		lutf_client_async_close(a);
	return ret;
}

/* System calls lutfd makes per invocation and per PING (perf; not timed). */
static void count_syscalls(struct daemon *d, struct sys_row *r, uint64_t ns)
{
	struct lutf_client_async *a;
	struct probe_sys ps;
	struct sample tmp;
	uint64_t m, o, n;
	char path[160];
	int64_t done;

	r->ok = false;
	a = open_client(d, CONNS, CONNS * PER_CONN);
	if (!a)
		return;
	if (pump(a, ns / 8) < 0 || probe_sys_start(d->l.pid, &ps)) {
		lutf_client_async_close(a);
		return;
	}
	done = pump(a, ns);
	lutf_client_async_close(a);
	if (probe_sys_stop(&ps, &m, &o) || done <= 0)
		return;
	r->inv_main = (double)m / (double)done;
	r->inv_other = (double)o / (double)done;
	bench_lutfd_path(&d->l, "lutf.sock", path, sizeof(path));
	if (probe_sys_start(d->l.pid, &ps))
		return;
	if (probe_ping(path, CONNS, PER_CONN, ns, &n) || !n) {
		probe_sys_stop(&ps, &m, &o);
		return;
	}
	if (probe_sys_stop(&ps, &m, &o))
		return;
	r->ping_main = (double)m / (double)n;
	r->ping_other = (double)o / (double)n;
	if (probe_sys_start(d->l.pid, &ps))
		return;
	if (latency(d, &tmp, RTT_SYS_N)) {
		probe_sys_stop(&ps, &m, &o);
		return;
	}
	if (probe_sys_stop(&ps, &m, &o))
		return;
	/* The warm-up calls count too: latency() makes RTT_SYS_N + 500. */
	r->rtt_main = (double)m / (RTT_SYS_N + 500.0);
	r->rtt_other = (double)o / (RTT_SYS_N + 500.0);
	r->ok = true;
}

static double med(struct sample s[][MAX_ROUNDS], int b, int n, size_t off)
{
	double v[MAX_ROUNDS];

	for (int i = 0; i < n; i++)
		v[i] = *(const double *)(const void *)((const char *)&s[b][i] + off);
	return bench_median_d(v, (size_t)n);
}

#define MED(f) med(smp, b, rounds, offsetof(struct sample, f))

static void row(const char *what, const char *unit, double u, double e, int prec)
{
	printf("%-44s %12.*f %12.*f %8.2fx  %s\n", what, prec, u, prec, e, e ? u / e : NAN, unit);
}

int main(int argc, char **argv)
{
	static struct sample smp[N_BACKENDS][MAX_ROUNDS];
	struct sample m[N_BACKENDS];
	struct sys_row sys[N_BACKENDS] = {0};
	double tr[MAX_ROUNDS], cr[MAX_ROUNDS], tr_lo = INFINITY, tr_hi = 0;
	struct bench_opts o;
	struct bench_target tg[3];
	struct ictr ic[N_BACKENDS] = {0};
	char machine[128];
	const char *env = getenv("LUTF_BENCH_ROUNDS");
	int rounds;
	uint64_t tput_ns, ping_ns;
	size_t rtt_n;

	bench_parse_args(argc, argv, "lutfd ingress: io_uring vs epoll through the batched client",
			 &o);
	if (geteuid() != 0) {
		fprintf(stderr, "ingress: SKIP: lutfd needs root\n");
		return 77;
	}
	/* Many short rounds: neighbours' load comes and goes in bursts of seconds. */
	rounds = o.quick ? 1 : 20;
	if (env && atoi(env) > 0)
		rounds = atoi(env) < MAX_ROUNDS ? atoi(env) : MAX_ROUNDS;
	tput_ns = o.quick ? 300000000ull : 500000000ull;
	ping_ns = o.quick ? 200000000ull : 300000000ull;
	rtt_n = 2000;
	signal(SIGPIPE, SIG_IGN);
	atexit(on_exit_stop);
	bench_machine(machine, sizeof(machine));
	for (int b = 0; b < N_BACKENDS; b++)
		if (start_lutfd(&dmn[b], b) || deploy(&dmn[b]))
			return 1;
	for (int i = 0; i < rounds; i++) {
		for (int k = 0; k < N_BACKENDS; k++) {
			int b = (i + k) % N_BACKENDS; /* who goes first alternates */
			struct sample *s = &smp[b][i];

			if (throughput(&dmn[b], &dmn[!b], s, tput_ns) ||
			    ping(&dmn[b], s, ping_ns) || latency(&dmn[b], s, rtt_n))
				return 1;
		}
		tr[i] = smp[B_URING][i].tput / smp[B_EPOLL][i].tput;
		cr[i] = (smp[B_EPOLL][i].srv_ns + smp[B_EPOLL][i].wk_ns) /
			(smp[B_URING][i].srv_ns + smp[B_URING][i].wk_ns);
		tr_lo = fmin(tr_lo, tr[i]);
		tr_hi = fmax(tr_hi, tr[i]);
	}
	for (int b = 0; b < N_BACKENDS; b++)
		count_syscalls(&dmn[b], &sys[b], o.quick ? 200000000ull : 1000000000ull);
	for (int b = 0; b < N_BACKENDS; b++) {
		status(&dmn[b], &ic[b]);
		m[b] = (struct sample){.tput = MED(tput),
				       .srv_ns = MED(srv_ns),
				       .main_ns = MED(main_ns),
				       .wk_ns = MED(wk_ns),
				       .cli_ns = MED(cli_ns),
				       .slices = MED(slices),
				       .l_vcs = MED(l_vcs),
				       .l_ivcs = MED(l_ivcs),
				       .w_vcs = MED(w_vcs),
				       .w_ivcs = MED(w_ivcs),
				       .sends = MED(sends),
				       .enters = MED(enters),
				       .other_ms = MED(other_ms),
				       .ping_tput = MED(ping_tput),
				       .ping_ns = MED(ping_ns),
				       .rtt_med = MED(rtt_med),
				       .rtt_p99 = MED(rtt_p99)};
	}

	/* Paired per-round ratios: each round ran both backends back to back. */
	double tput_ratio = bench_median_d(tr, (size_t)rounds);
	double cpu_ratio = bench_median_d(cr, (size_t)rounds);
	double ucpu = m[B_URING].srv_ns + m[B_URING].wk_ns;
	double ecpu = m[B_EPOLL].srv_ns + m[B_EPOLL].wk_ns;
	tg[0] = (struct bench_target){"tput", "io_uring no-op invokes/s (64x16)", m[B_URING].tput,
				      300000, m[B_URING].tput >= 300000,	  "",
				      false};
	tg[1] = (struct bench_target){"cpu_ratio",
				      "io_uring/epoll invokes per server CPU-s",
				      cpu_ratio,
				      1.3,
				      cpu_ratio >= 1.3,
				      "x",
				      false};
	tg[2] = (struct bench_target){
	    "ratio", "io_uring/epoll throughput (wall)", tput_ratio, 1.3, tput_ratio >= 1.3, "x",
	    false};
	if (o.json) {
		struct bench_json j;

		bench_json_begin(&j, stdout);
		bench_json_str(&j, "machine", machine);
		bench_json_u64(&j, "rounds", (uint64_t)rounds);
		for (int b = 0; b < N_BACKENDS; b++) {
			bench_json_obj(&j, be_key[b]);
			bench_json_str(&j, "ingress_reported", dmn[b].ingress);
			bench_json_str(&j, "client", client_backend);
			bench_json_num(&j, "invokes_per_s", m[b].tput);
			bench_json_num(&j, "rtt_median_ns", m[b].rtt_med);
			bench_json_num(&j, "rtt_p99_ns", m[b].rtt_p99);
			bench_json_num(&j, "lutfd_cpu_ns_per_call", m[b].srv_ns);
			bench_json_num(&j, "lutfd_main_thread_cpu_ns_per_call", m[b].main_ns);
			bench_json_num(&j, "worker_cpu_ns_per_call", m[b].wk_ns);
			bench_json_num(&j, "client_cpu_ns_per_call", m[b].cli_ns);
			bench_json_num(&j, "invokes_per_server_cpu_s",
				       1e9 / (m[b].srv_ns + m[b].wk_ns));
			bench_json_num(&j, "lutfd_slices_per_call", m[b].slices);
			bench_json_num(&j, "lutfd_voluntary_cs_per_call", m[b].l_vcs);
			bench_json_num(&j, "lutfd_involuntary_cs_per_call", m[b].l_ivcs);
			bench_json_num(&j, "worker_voluntary_cs_per_call", m[b].w_vcs);
			bench_json_num(&j, "worker_involuntary_cs_per_call", m[b].w_ivcs);
			bench_json_num(&j, "cs_per_call",
				       m[b].l_vcs + m[b].l_ivcs + m[b].w_vcs + m[b].w_ivcs);
			bench_json_num(&j, "lutfd_sends_per_call", m[b].sends);
			bench_json_u64(&j, "ingress_enobufs", ic[b].enobufs);
			bench_json_u64(&j, "ingress_short_sends", ic[b].short_sends);
			bench_json_u64(&j, "ingress_cq_overflows", ic[b].cq_overflows);
			bench_json_u64(&j, "ingress_sqe_waits", ic[b].sqe_waits);
			bench_json_num(&j, "client_enters_per_call", m[b].enters);
			bench_json_num(&j, "pings_per_s", m[b].ping_tput);
			bench_json_num(&j, "lutfd_cpu_ns_per_ping", m[b].ping_ns);
			if (sys[b].ok) {
				bench_json_num(&j, "lutfd_main_syscalls_per_call", sys[b].inv_main);
				bench_json_num(&j, "lutfd_other_syscalls_per_call",
					       sys[b].inv_other);
				bench_json_num(&j, "lutfd_main_syscalls_per_ping",
					       sys[b].ping_main);
				bench_json_num(&j, "lutfd_main_syscalls_per_rtt", sys[b].rtt_main);
				bench_json_num(&j, "lutfd_other_syscalls_per_rtt",
					       sys[b].rtt_other);
			}
			bench_json_close_obj(&j);
		}
		bench_json_num(&j, "round_ratio_min", tr_lo);
		bench_json_num(&j, "round_ratio_max", tr_hi);
		bench_targets_json(&j, tg, 3);
		bench_json_end(&j);
		return 0;
	}
	printf("lutfd ingress, %s; client: %s, %d connections x %d in flight, no-op invokes;\n"
	       "medians of %d rounds (each round runs both backends, order alternating)\n",
	       machine, client_backend, CONNS, PER_CONN, rounds);
	printf("%-44s %12s %12s %9s\n", "", "default", "LUTF_INGRESS=", "ratio");
	printf("%-44s %12s %12s\n", "backend lutfd reports", dmn[B_URING].ingress,
	       dmn[B_EPOLL].ingress);
	row("invokes/s (64 x 16 in flight)", "", m[B_URING].tput, m[B_EPOLL].tput, 0);
	row("lutfd CPU per invocation", "ns", m[B_URING].srv_ns, m[B_EPOLL].srv_ns, 0);
	row("  of which lutfd's main (ingress) thread", "ns", m[B_URING].main_ns,
	    m[B_EPOLL].main_ns, 0);
	row("worker CPU per invocation", "ns", m[B_URING].wk_ns, m[B_EPOLL].wk_ns, 0);
	row("server CPU per invocation (lutfd + worker)", "ns", ucpu, ecpu, 0);
	row("client CPU per invocation", "ns", m[B_URING].cli_ns, m[B_EPOLL].cli_ns, 0);
	row("invokes per server CPU-second", "", 1e9 / ucpu, 1e9 / ecpu, 0);
	row("invokes per CPU-second (server + client)", "", 1e9 / (ucpu + m[B_URING].cli_ns),
	    1e9 / (ecpu + m[B_EPOLL].cli_ns), 0);
	row("lutfd schedule-ins per invocation", "", m[B_URING].slices, m[B_EPOLL].slices, 4);
	row("context switches per invocation (lutfd + worker)", "",
	    m[B_URING].l_vcs + m[B_URING].l_ivcs + m[B_URING].w_vcs + m[B_URING].w_ivcs,
	    m[B_EPOLL].l_vcs + m[B_EPOLL].l_ivcs + m[B_EPOLL].w_vcs + m[B_EPOLL].w_ivcs, 4);
	row("  lutfd voluntary (waits)", "", m[B_URING].l_vcs, m[B_EPOLL].l_vcs, 4);
	row("  lutfd involuntary (preempted)", "", m[B_URING].l_ivcs, m[B_EPOLL].l_ivcs, 4);
	row("  worker voluntary (waits)", "", m[B_URING].w_vcs, m[B_EPOLL].w_vcs, 4);
	row("  worker involuntary (preempted)", "", m[B_URING].w_ivcs, m[B_EPOLL].w_ivcs, 4);
	row("lutfd sends per invocation", "", m[B_URING].sends, m[B_EPOLL].sends, 4);
	row("client I/O syscalls per invocation", "", m[B_URING].enters, m[B_EPOLL].enters, 4);
	row("PINGs/s (64 x 16, no worker)", "", m[B_URING].ping_tput, m[B_EPOLL].ping_tput, 0);
	row("lutfd CPU per PING", "ns", m[B_URING].ping_ns, m[B_EPOLL].ping_ns, 0);
	row("round trip median, 1 outstanding", "us", m[B_URING].rtt_med / 1e3,
	    m[B_EPOLL].rtt_med / 1e3, 2);
	row("round trip p99, 1 outstanding", "us", m[B_URING].rtt_p99 / 1e3,
	    m[B_EPOLL].rtt_p99 / 1e3, 2);
	if (sys[B_URING].ok && sys[B_EPOLL].ok) {
		row("lutfd main-thread syscalls per invocation", "", sys[B_URING].inv_main,
		    sys[B_EPOLL].inv_main, 4);
		row("lutfd other threads' syscalls per invocation", "", sys[B_URING].inv_other,
		    sys[B_EPOLL].inv_other, 4);
		row("lutfd main-thread syscalls per PING", "", sys[B_URING].ping_main,
		    sys[B_EPOLL].ping_main, 4);
		row("lutfd main-thread syscalls per round trip", "", sys[B_URING].rtt_main,
		    sys[B_EPOLL].rtt_main, 2);
		row("lutfd other threads' syscalls per round trip", "", sys[B_URING].rtt_other,
		    sys[B_EPOLL].rtt_other, 2);
	} else {
		printf("(lutfd syscalls per call: perf not available)\n");
	}
	printf("io_uring/epoll per round: throughput %.2fx .. %.2fx (median %.2fx), invokes per "
	       "server CPU-s median %.2fx;\nthe idle lutfd used %.1f / %.1f ms CPU per s "
	       "meanwhile\n",
	       tr_lo, tr_hi, tput_ratio, cpu_ratio, m[B_URING].other_ms, m[B_EPOLL].other_ms);
	printf("io_uring lutfd over the whole run: %llu ENOBUFS re-arms, %llu short sends, %llu CQ "
	       "overflows, %llu SQ-full submits\n",
	       (unsigned long long)ic[B_URING].enobufs, (unsigned long long)ic[B_URING].short_sends,
	       (unsigned long long)ic[B_URING].cq_overflows,
	       (unsigned long long)ic[B_URING].sqe_waits);
	bench_targets_print(tg, 3);
	return 0;
}
