/* SPDX-License-Identifier: MIT */
/*
 * handoff (labor_watch benchmark), shared by its files: the watch modes, the
 * results of every experiment, and the helpers and experiments each file
 * exports (prefix ho_). One file per experiment: handoff_latency.c (hand-off
 * latency and futex wake chains), handoff_supervisor.c (Supervisor CPU),
 * handoff_probe.c (probe cost, context-switch throughput), handoff_blocking.c
 * (a blocking workload); handoff_report.c prints them through bench/common.c's
 * target table and JSON writer; handoff.c runs them in order.
 */
#ifndef LUTF_BENCH_HANDOFF_H
#define LUTF_BENCH_HANDOFF_H

#include <stdbool.h>
#include <stdint.h>

#include <lutf/runtime.h>

#include "common.h"

#define REAP_WAIT_MS 10000	      /* no completion for this long = a lost Brick */
#define HANDOFF_WAIT_NS 2000000000ull /* a hand-off not seen in 2 s = a stall */
#define MAX_STALLS 3		      /* then the mode's hand-off rounds stop */
#define OFF_BLOCK_NS 2000000ull	      /* OFF mode: how long the blocking Brick blocks */
#define SETTLE_NS 200000ull	      /* after a round: the new owner parks (spin_ns is 20 us) */
#define PACE_NS 1000000ull	      /* Supervisor CPU: one Brick per ms */
#define SLEEP_NS 1000000L	      /* blocking workload: each call sleeps 1 ms */
#define SLOW_NS 500000ull	      /* a hand-off this late waited for a Supervisor timeout */
#define STATS_SYSCTL "/proc/sys/kernel/bpf_stats_enabled"
#define SPIN_RUN_NS 2000000u  /* spinning run: FREE Labors spin 2 ms before parking */
#define SPIN_GAP_NS 100000ull /* spinning run: pause between rounds (inside the spin) */
#define INTERLEAVE 3	      /* parked / spinning / floor: rounds, interleaved */

/* The four modes, in table order. */
enum { M_BPF, M_POLL20, M_POLL1MS, M_OFF, N_MODES };

struct mode_def {
	const char *key, *label;
	enum lutf_watch_mode watch;
	uint32_t poll_ns; /* 0: the default */
};

extern const struct mode_def modes[N_MODES]; /* handoff_util.c */

struct handoff_run {
	bool ran;
	bool fell_back; /* BPF asked, polling in force */
	uint32_t grace_ns;
	uint64_t rounds, handoffs; /* rounds tried; probe Bricks that ran during the block */
	uint64_t stalls;	   /* rounds where no hand-off came within 2 s */
	uint64_t early;		   /* probe ran before the blocker stamped (moved too soon) */
	uint64_t rebinds;
	uint64_t slow;		/* hand-offs over SLOW_NS */
	struct bench_stats lat; /* ns, block stamp to probe entry */
	double p90, min, max;
	double bpf_ns_per_run; /* probe cost during the rounds (BPF only) */
	uint64_t bpf_runs;
	uint64_t wall_ns;
};

struct sup_cpu {
	bool ran, fell_back;
	double busy_pct;	   /* lutf-sup, % of one core, 1000 Bricks/s */
	double busy_ticks_pct;	   /* same from utime+stime (10 ms ticks) */
	double idle_pct;	   /* lutf-sup, runtime alive, no traffic */
	double inflight_pct;	   /* lutf-sup while one computing Brick is always in flight */
	uint64_t inflight_wakeups; /* lutf-sup runs per second then */
	double proc_pct;	   /* whole process at 1000 Bricks/s */
	double rate;		   /* Bricks/s achieved */
	uint64_t wakeups;	   /* lutf-sup context switches (schedstat field 3) per second */
};

struct blocking_run {
	bool ran, fell_back;
	double calls_per_s; /* median over runs */
	uint64_t rebinds;
	double bpf_ns_per_run;
	uint64_t bpf_runs;
};

struct pingpong {
	bool ran;
	double rt_per_s;   /* round trips per second */
	double ns_per_run; /* probe, stats on */
	uint64_t runs;
};

enum { PP_THREADS, PP_PROCS, N_PP };

struct results {
	char machine[128];
	double timer_ns;
	bool quick;
	bool bpf_ok; /* BPF mode came up */
	char attach[8];
	int stats_old;			 /* bpf_stats_enabled as found; -1 unreadable */
	bool stats_on;			 /* we could turn it on */
	struct handoff_run ho[N_MODES];	 /* grace 0 */
	struct handoff_run hod[N_MODES]; /* default grace (BPF and poll 20 us only) */
	struct handoff_run hos;		 /* BPF, grace 0, a FREE Labor spinning (direct take) */
	/* Per interleaved round: eBPF hand-off medians with every Labor parked
	 * and with one spinning, and the cross-CPU wake-up floor, ns. */
	double rm_parked[INTERLEAVE], rm_spin[INTERLEAVE], rm_cross[INTERLEAVE];
	/* Probe ns per run during the parked rounds: tp_btf (task storage
	 * lookup) and, in a raw_tp round beside it, the tid hash lookup. */
	double rp_task[INTERLEAVE], rp_hash[INTERLEAVE];
	struct handoff_run hoh; /* the raw_tp (tid hash) parked rounds merged */
	int n_rm;
	struct sup_cpu sup[N_MODES];
	struct blocking_run blk[N_MODES];
	struct pingpong pp_idle[N_PP]; /* probe cost, BPF runtime idle, stats on */
	struct pingpong cs_none[N_PP]; /* throughput, no runtime */
	struct pingpong cs_bpf[N_PP];  /* throughput, BPF runtime alive */
	struct bench_stats wake_same, wake_cross, wake2; /* futex wake-ups, ns */
	double sleep_ns; /* what one 1 ms nanosleep really takes here (median) */
	uint32_t default_grace;
	int errors;
};

/* handoff_util.c: errors, threads, bpf_stats_enabled, runtimes. */
void ho_fail(struct results *r, const char *fmt, const char *what, long v);
uint32_t ho_gettid(void);
void ho_futex_wait(uint32_t *w, uint32_t val);
void ho_futex_wait_ns(uint32_t *w, uint32_t val, uint64_t ns); /* at most ns */
void ho_futex_wake(uint32_t *w);
void ho_pin_self(int cpu); /* -1: leave it */
extern int ho_stats_old;   /* bpf_stats_enabled as found; -1 unreadable */
int ho_stats_read(void);
bool ho_stats_set(int v);
void ho_stats_restore(void);
void ho_on_signal(int sig);
extern uint32_t ho_spin_ns; /* ho_make_runtime's spin_ns; 0 = the default */
int ho_make_runtime(const struct mode_def *m, uint32_t carts, uint32_t labors, int64_t grace,
		    struct lutf_runtime **out);
bool ho_fell_back(struct lutf_runtime *rt, const struct mode_def *m);
int ho_reap_n(struct results *r, struct lutf_runtime *rt, int want, const char *what);
void ho_bpf_counters(struct lutf_runtime *rt, uint64_t *ns, uint64_t *cnt);

/* handoff_latency.c */
int ho_latency_init(void); /* 0 or -errno */
int ho_noop_fn(struct lutf_call *call);
void ho_run_handoff(struct results *r, int mi, int64_t grace, uint64_t rounds,
		    struct handoff_run *h, uint64_t *lat);
/* n runs of one kind as one: counts and probe cost summed, latency figures
 * those of the run with the median median. */
void ho_merge_runs(const struct handoff_run *runs, int n, struct handoff_run *out);
/* BPF mode, grace 0, FREE Labors spinning SPIN_RUN_NS: the direct take. */
void ho_run_handoff_spin(struct results *r, uint64_t rounds, struct handoff_run *h, uint64_t *lat);
void ho_run_wake_chain(struct results *r, int hops, int cpu_main, int cpu_thr, uint64_t rounds,
		       uint64_t *lat, struct bench_stats *out);

/* handoff_supervisor.c */
void ho_run_sup_cpu(struct results *r, int mi, uint64_t busy_ns, uint64_t idle_ns,
		    struct sup_cpu *out);

/* handoff_probe.c */
int ho_some_cpu(void);
void ho_run_cs_throughput(struct results *r, int reps, uint64_t dur_ns);
void ho_run_probe_idle(struct results *r, uint64_t dur_ns);

/* handoff_blocking.c */
int ho_sleep_fn(struct lutf_call *call);
void ho_run_blocking(struct results *r, int mi, int calls, int runs, struct blocking_run *out);

/* handoff_report.c */
void ho_print_table(const struct results *r);
void ho_print_json(const struct results *r);

#endif /* LUTF_BENCH_HANDOFF_H */
