/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: lutfd's state and counters as Prometheus text (lutf_ prefix,
 * counters _total, times in _seconds). Runs on the main thread, which owns
 * every structure read here; the engine's numbers come from
 * lutf_runtime_stats. Invariant: the samples of one family are written
 * together (families outside, tenants and functions inside).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "lutfd.h"
#include "prom.h"

/* Called on the main thread only (completions are handed over to it). */
void lutfd_metrics_observe(struct lutfd_tenant *t, uint32_t slot, uint64_t ns)
{
	if (slot >= g_cfg.max_functions)
		return;
	if (!t->slot_hist) {
		t->slot_hist = calloc(g_cfg.max_functions, sizeof(*t->slot_hist));
		if (!t->slot_hist)
			return;
	}
	lutf_prom_observe(&t->slot_hist[slot], ns);
}

/* A status as a label value: "unknown_function", "ok". */
static const char *status_label(uint32_t st)
{
#define NAME(name, value, http, text) [value] = #name,
	static const char *const names[] = {LUTF_STATUS_TABLE(NAME)};
#undef NAME
	static char buf[LUTF_STATUS__COUNT][32];

	if (st >= LUTF_STATUS__COUNT)
		return "unknown";
	if (!buf[st][0]) {
		size_t i;

		for (i = 0; names[st][i] && i + 1 < sizeof(buf[st]); i++)
			buf[st][i] = names[st][i] >= 'A' && names[st][i] <= 'Z'
					 ? (char)(names[st][i] + 32)
					 : names[st][i];
		buf[st][i] = 0;
	}
	return buf[st];
}

struct tstats {
	struct lutf_runtime_stats st;
	bool ok;
};

/* f's latency histogram summed over t's workers into *h. */
static void hist_sum(const struct lutfd_tenant *t, const struct lutfd_fn *f,
		     struct lutf_prom_hist *h)
{
	for (uint32_t w = 0; w < t->nwk; w++) {
		const struct lutfd_tenant *s = t->wk[w];
		const struct lutf_prom_hist *x;

		if (!s->slot_hist || !(f->wbound & (1u << w)))
			continue;
		x = &s->slot_hist[f->wslot[w]];
		for (size_t k = 0; k <= LUTF_PROM_NBUCKETS; k++)
			h->bucket[k] += __atomic_load_n(&x->bucket[k], __ATOMIC_RELAXED);
		h->sum_ns += __atomic_load_n(&x->sum_ns, __ATOMIC_RELAXED);
	}
}

/*
 * Labels of a per-worker sample: {tenant} for a tenant of one worker (as
 * before workers = N), {tenant, worker="w"} for every worker of a tenant of
 * several, so that no two samples share a label set. extra: one more
 * name/value pair, or NULL.
 */
static void wlabels(const char **lb, char *wbuf, size_t cap, const struct lutfd_tenant *t,
		    const char *k, const char *v)
{
	const struct lutfd_tenant *p = t->primary ? t->primary : t;
	size_t n = 0;

	lb[n++] = "tenant";
	lb[n++] = t->name;
	if (p->nwk > 1) {
		snprintf(wbuf, cap, "%u", t->widx);
		lb[n++] = "worker";
		lb[n++] = wbuf;
	}
	if (k) {
		lb[n++] = k;
		lb[n++] = v;
	}
	lb[n] = NULL;
}

static void functions(struct lutf_http_buf *b)
{
	lutf_prom_family(b, "lutf_invocations", LUTF_PROM_COUNTER,
			 "Invocations answered, by tenant, function and typed status "
			 "(status!=\"ok\": errors by cause).");
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		for (size_t j = 0; !t->primary && t->slot_stats && j < t->nfns; j++) {
			struct lutfd_fn *f = t->fns[j];
			uint64_t sum[LUTF_STATUS__COUNT];

			if (!f->bound)
				continue;
			lutfd_workers_fn_stats(t, f, sum); /* over all its workers */
			for (uint32_t s = 0; s < LUTF_STATUS__COUNT; s++) {
				const char *lb[] = {"tenant", t->name,	       "function", f->name,
						    "status", status_label(s), NULL};
				uint64_t v = sum[s];

				if (v || s == LUTF_STATUS_OK)
					lutf_prom_counter(b, "lutf_invocations", lb, v);
			}
		}
	}
	lutf_prom_family(b, "lutf_invocation_duration_seconds", LUTF_PROM_HISTOGRAM,
			 "Submit-to-completion time of invocations, by tenant and function.");
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];
		static const struct lutf_prom_hist zero;

		for (size_t j = 0; !t->primary && j < t->nfns; j++) {
			struct lutfd_fn *f = t->fns[j];
			const char *lb[] = {"tenant", t->name, "function", f->name, NULL};
			struct lutf_prom_hist h = zero;

			if (!f->bound)
				continue;
			hist_sum(t, f, &h); /* over all its workers */
			lutf_prom_histogram(b, "lutf_invocation_duration_seconds", lb, &h);
		}
	}
	lutf_prom_family(b, "lutf_function_inflight", LUTF_PROM_GAUGE,
			 "Invocations of the function in flight.");
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		for (size_t j = 0; !t->primary && t->slot_inflight && j < t->nfns; j++) {
			struct lutfd_fn *f = t->fns[j];
			const char *lb[] = {"tenant", t->name, "function", f->name, NULL};

			if (f->bound)
				lutf_prom_u64(b, "lutf_function_inflight", lb,
					      lutfd_workers_inflight(t, f));
		}
	}
	lutf_prom_family(b, "lutf_function_paused", LUTF_PROM_GAUGE,
			 "1 while the function is paused (its calls are held).");
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		for (size_t j = 0; !t->primary && j < t->nfns; j++) {
			const char *lb[] = {"tenant", t->name, "function", t->fns[j]->name, NULL};

			lutf_prom_u64(b, "lutf_function_paused", lb, t->fns[j]->paused);
		}
	}
}

/* One per-tenant family: a value picked from the tenant or its stats. */
enum tval {
	T_UP,
	T_INFLIGHT,
	T_QUEUED,
	T_HELD,
	T_RESTARTS,
	T_SUBMITTED,
	T_COMPLETED,
	T_REJECTED,
	T_DEADLINES,
	T_CRASHED,
	T_FAULTS,
	T_GROWS,
	T_RETIRES,
	T_LABORS_MAX,
	T_COUNT
};

static const struct {
	const char *name;
	enum lutf_prom_type type;
	bool needs_stats;
	const char *help;
} tfam[T_COUNT] = {
    [T_UP] = {"lutf_tenant_up", LUTF_PROM_GAUGE, false, "1 while the tenant's worker runs."},
    [T_INFLIGHT] = {"lutf_tenant_inflight", LUTF_PROM_GAUGE, false,
		    "Invocations of the tenant in flight (max_queued bounds it)."},
    [T_QUEUED] = {"lutf_tenant_queued_bricks", LUTF_PROM_GAUGE, true,
		  "Bricks waiting in the tenant's Cart rings (queue depth)."},
    [T_HELD] = {"lutf_tenant_held_bricks", LUTF_PROM_GAUGE, true,
		"Bricks held for paused functions."},
    [T_RESTARTS] = {"lutf_worker_restarts", LUTF_PROM_COUNTER, false,
		    "Times the tenant's worker was started again after it went."},
    [T_SUBMITTED] = {"lutf_bricks_submitted", LUTF_PROM_COUNTER, true,
		     "Bricks the engine accepted."},
    [T_COMPLETED] = {"lutf_bricks_completed", LUTF_PROM_COUNTER, true,
		     "Bricks completed, any status."},
    [T_REJECTED] = {"lutf_bricks_rejected", LUTF_PROM_COUNTER, true,
		    "Bricks the engine refused at submit."},
    [T_DEADLINES] = {"lutf_bricks_deadline", LUTF_PROM_COUNTER, true, "Bricks answered DEADLINE."},
    [T_CRASHED] = {"lutf_bricks_crashed", LUTF_PROM_COUNTER, true,
		   "Bricks failed CRASHED because their worker died."},
    [T_FAULTS] = {"lutf_region_faults", LUTF_PROM_COUNTER, true,
		  "Failed checks on words the worker wrote into the tenant's region, all checks "
		  "(the worker was recycled; by check: lutf_region_fault_checks)."},
    [T_GROWS] = {"lutf_labor_grows", LUTF_PROM_COUNTER, true,
		 "Labors started because every Labor was in use and one blocked."},
    [T_RETIRES] = {"lutf_labor_retires", LUTF_PROM_COUNTER, true,
		   "Labors above the base count retired after parking labor_idle_ms."},
    [T_LABORS_MAX] = {"lutf_labors_max", LUTF_PROM_GAUGE, true,
		      "Ceiling of the tenant's elastic Labor pool."},
};

static uint64_t tvalue(const struct lutfd_tenant *t, const struct lutf_runtime_stats *st,
		       enum tval v)
{
	switch (v) {
	case T_UP:
		return t->up;
	case T_INFLIGHT:
		return t->inflight;
	case T_QUEUED:
		return st->queued;
	case T_HELD:
		return st->held;
	case T_RESTARTS:
		return t->restarts;
	case T_SUBMITTED:
		return st->submitted;
	case T_COMPLETED:
		return st->completed;
	case T_REJECTED:
		return st->rejected;
	case T_DEADLINES:
		return st->deadlines;
	case T_CRASHED:
		return st->crashed;
	case T_FAULTS:
		return st->region_faults;
	case T_GROWS:
		return st->labor_grows;
	case T_RETIRES:
		return st->labor_retires;
	case T_LABORS_MAX:
		return st->labors_max;
	default:
		return 0;
	}
}

/* workers = N: how many each tenant asked for, and what each worker did. */
static void workers(struct lutf_http_buf *b)
{
	lutf_prom_family(b, "lutf_tenant_workers", LUTF_PROM_GAUGE,
			 "Worker processes the tenant runs (workers = N).");
	for (size_t i = 0; i < g_state.n; i++) {
		const struct lutfd_tenant *t = g_state.t[i];
		const char *lb[] = {"tenant", t->name, NULL};

		if (!t->primary)
			lutf_prom_u64(b, "lutf_tenant_workers", lb, lutfd_workers_want(t));
	}
	lutf_prom_family(b, "lutf_worker_calls", LUTF_PROM_COUNTER,
			 "Calls each worker of a tenant answered, by worker index.");
	for (size_t i = 0; i < g_state.n; i++) {
		const struct lutfd_tenant *t = g_state.t[i];
		char wb[12];
		const char *lb[] = {"tenant", t->name, "worker", wb, NULL};

		snprintf(wb, sizeof(wb), "%u", t->widx);
		lutf_prom_counter(b, "lutf_worker_calls", lb, t->calls);
	}
}

static void tenants(struct lutf_http_buf *b, const struct tstats *ts)
{
	static const char *const modes[] = {"off", "poll", "bpf"};

	for (int v = 0; v < T_COUNT; v++) {
		lutf_prom_family(b, tfam[v].name, tfam[v].type, tfam[v].help);
		for (size_t i = 0; i < g_state.n; i++) {
			const struct lutfd_tenant *t = g_state.t[i];
			const char *lb[7];
			char wb[12];
			uint64_t x;

			wlabels(lb, wb, sizeof(wb), t, NULL, NULL);
			if (tfam[v].needs_stats && !ts[i].ok)
				continue;
			x = tvalue(t, &ts[i].st, (enum tval)v);
			if (tfam[v].type == LUTF_PROM_COUNTER)
				lutf_prom_counter(b, tfam[v].name, lb, x);
			else
				lutf_prom_u64(b, tfam[v].name, lb, x);
		}
	}
	lutf_prom_family(b, "lutf_labors", LUTF_PROM_GAUGE,
			 "Labor threads of the tenant's worker by state: running (own a Cart: "
			 "in a Brick or spinning on it), blocked (in the kernel inside a Brick, "
			 "seen by labor_watch; 0 without BPF) or parked (asleep without a Cart).");
	for (size_t i = 0; i < g_state.n; i++) {
		const struct lutf_runtime_stats *st = &ts[i].st;
		uint32_t parked = st->labors_parked < st->labors ? st->labors_parked : st->labors;
		uint32_t blocked = st->labors_blocked < st->labors - parked ? st->labors_blocked
									    : st->labors - parked;
		const char *la[7], *lb[7], *lp[7];
		char wb[12];

		if (!ts[i].ok)
			continue;
		wlabels(la, wb, sizeof(wb), g_state.t[i], "state", "running");
		wlabels(lb, wb, sizeof(wb), g_state.t[i], "state", "blocked");
		wlabels(lp, wb, sizeof(wb), g_state.t[i], "state", "parked");
		lutf_prom_u64(b, "lutf_labors", la, st->labors - parked - blocked);
		lutf_prom_u64(b, "lutf_labors", lb, blocked);
		lutf_prom_u64(b, "lutf_labors", lp, parked);
	}
	lutf_prom_family(b, "lutf_cart_handoffs", LUTF_PROM_COUNTER,
			 "Carts handed to another Labor (its Labor blocked), by labor_watch mode.");
	for (size_t i = 0; i < g_state.n; i++) {
		const struct lutf_runtime_stats *st = &ts[i].st;
		unsigned m = st->watch < 3 ? (unsigned)st->watch : 0;
		const char *lb[7];
		char wb[12];

		wlabels(lb, wb, sizeof(wb), g_state.t[i], "mode", modes[m]);
		if (ts[i].ok)
			lutf_prom_counter(b, "lutf_cart_handoffs", lb, st->rebinds);
	}
	lutf_prom_family(b, "lutf_labor_watch_mode", LUTF_PROM_GAUGE,
			 "1 for the mode in force: bpf (sched_switch probe), poll or off.");
	for (size_t i = 0; i < g_state.n; i++) {
		const struct lutf_runtime_stats *st = &ts[i].st;
		unsigned m = st->watch < 3 ? (unsigned)st->watch : 0;

		if (!ts[i].ok)
			continue;
		for (unsigned k = 0; k < 3; k++) {
			const char *lb[7];
			char wb[12];

			wlabels(lb, wb, sizeof(wb), g_state.t[i], "mode", modes[k]);
			lutf_prom_u64(b, "lutf_labor_watch_mode", lb, k == m);
		}
	}
}

/* The labor_watch probe is one for all of lutfd: its counters carry no tenant
 * label (under each tenant, a sum over tenants would count it once per
 * tenant). Read through the first tenant that has it; none: no samples. */
static void probe(struct lutf_http_buf *b, const struct tstats *ts)
{
	const struct lutf_runtime_stats *st = NULL;

	for (size_t i = 0; i < g_state.n && !st; i++)
		if (ts[i].ok && ts[i].st.bpf_attach[0])
			st = &ts[i].st;
	lutf_prom_family(b, "lutf_labor_watch_drops", LUTF_PROM_COUNTER,
			 "Events or slots the labor_watch probe had to drop (should stay 0).");
	if (st)
		lutf_prom_counter(b, "lutf_labor_watch_drops", NULL, st->bpf_drops);
	lutf_prom_family(b, "lutf_labor_watch_runs", LUTF_PROM_COUNTER,
			 "labor_watch probe runs (kernel.bpf_stats_enabled=1).");
	if (st)
		lutf_prom_counter(b, "lutf_labor_watch_runs", NULL, st->bpf_run_cnt);
	lutf_prom_family(b, "lutf_labor_watch_run_seconds", LUTF_PROM_COUNTER,
			 "labor_watch probe run time (kernel.bpf_stats_enabled=1).");
	if (st)
		lutf_prom_double(b, "lutf_labor_watch_run_seconds_total", NULL,
				 (double)st->bpf_run_ns / 1e9);
}

static void ingress(struct lutf_http_buf *b)
{
	struct lutf_ev_stats st;
	uint64_t refused, idle;
	const char *lb[] = {"backend", lutf_ev_backend(g_loop), NULL};
	const struct {
		const char *name, *help;
		uint64_t v;
	} rows[] = {
	    {"lutf_ingress_accepts", "Connections accepted (all listeners).", 0},
	    {"lutf_ingress_refused", "Connections refused at max_conns.", 0},
	    {"lutf_ingress_idle_closed", "Connections closed by the idle timeout.", 0},
	    {"lutf_ingress_recv_bytes", "Bytes received.", 0},
	    {"lutf_ingress_sends", "Sends started.", 0},
	    {"lutf_ingress_short_sends", "Sends that wrote less than asked.", 0},
	    {"lutf_ingress_recv_arms", "io_uring multishot receives armed.", 0},
	    {"lutf_ingress_enobufs", "io_uring receives ended by -ENOBUFS.", 0},
	    {"lutf_ingress_cq_overflows", "Times the kernel held io_uring completions back.", 0},
	    {"lutf_ingress_sqe_waits", "io_uring SQ full: submitted early.", 0},
	};
	uint64_t v[sizeof(rows) / sizeof(rows[0])];

	lutf_ev_get_stats(g_loop, &st);
	lutf_srv_counters(g_srv, &refused, &idle);
	v[0] = st.accepts;
	v[1] = refused;
	v[2] = idle;
	v[3] = st.recv_bytes;
	v[4] = st.sends;
	v[5] = st.short_sends;
	v[6] = st.recv_arms;
	v[7] = st.enobufs;
	v[8] = st.cq_overflows;
	v[9] = st.sqe_waits;
	lutf_prom_family(b, "lutf_ingress_backend", LUTF_PROM_GAUGE,
			 "1 for the ingress backend in use (io_uring or epoll).");
	lutf_prom_u64(b, "lutf_ingress_backend", lb, 1);
	lutf_prom_family(b, "lutf_connections", LUTF_PROM_GAUGE,
			 "Open connections, all protocols.");
	lutf_prom_u64(b, "lutf_connections", NULL, lutf_srv_nconns(g_srv));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		lutf_prom_family(b, rows[i].name, LUTF_PROM_COUNTER, rows[i].help);
		lutf_prom_counter(b, rows[i].name, NULL, v[i]);
	}
}

int lutfd_metrics_render(struct lutf_http_buf *b)
{
	struct tstats *ts = calloc(g_state.n ? g_state.n : 1, sizeof(*ts));

	if (!ts)
		return -ENOMEM;
	for (size_t i = 0; i < g_state.n; i++)
		ts[i].ok = g_state.t[i]->rt && !lutf_runtime_stats(g_state.t[i]->rt, &ts[i].st);
	lutf_prom_family(b, "lutf_tenants", LUTF_PROM_GAUGE, "Tenants in the registry.");
	lutf_prom_u64(b, "lutf_tenants", NULL, lutfd_tenants_count());
	lutf_prom_family(b, "lutf_inflight", LUTF_PROM_GAUGE,
			 "Invocations in flight, all tenants.");
	lutf_prom_u64(b, "lutf_inflight", NULL, lutfd_inflight());
	functions(b);
	tenants(b, ts);
	workers(b);
	probe(b, ts);
	lutfd_fault_metrics(b);
#ifdef LUTF_HAVE_CLUSTER
	lutfd_cluster_metrics(b);
#endif
	ingress(b);
	lutfd_http_metrics(b);
	free(ts);
	return b->err;
}
