/* SPDX-License-Identifier: MIT */
/*
 * handoff experiment 1: how soon a Cart stuck behind a blocked Labor reaches
 * another Labor, per watch mode, and the floor under it (futex wake-up
 * chains). Invariant: every round's Bricks are reaped before the next.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handoff.h"

/* ---- 1. hand-off latency ---- */

/* The blocking Brick stamps, then blocks in read(); the probe Brick stamps at
 * entry. Written by Labor threads, read by main after the probe's completion
 * (release/acquire through the engine's completion path; atomics anyway). */
static int block_pipe[2] = {-1, -1};
static uint64_t t_block, t_probe;
static uint32_t tid_block, tid_probe;

static int block_fn(struct lutf_call *call)
{
	char c;

	(void)call;
	__atomic_store_n(&tid_block, ho_gettid(), __ATOMIC_RELAXED);
	__atomic_store_n(&t_block, bench_now_ns(), __ATOMIC_RELEASE);
	while (read(block_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	return 0;
}

static int probe_fn(struct lutf_call *call)
{
	uint64_t now = bench_now_ns();

	(void)call;
	__atomic_store_n(&tid_probe, ho_gettid(), __ATOMIC_RELAXED);
	__atomic_store_n(&t_probe, now, __ATOMIC_RELEASE);
	return 0;
}

int ho_noop_fn(struct lutf_call *call)
{
	(void)call;
	return 0;
}

/* Wait until every Labor but the Cart's owner is parked, then let the owner
 * park too (it spins spin_ns on its empty Cart first). */
static void settle(struct lutf_runtime *rt, uint32_t labors)
{
	struct lutf_runtime_stats st;
	uint64_t t0 = bench_now_ns();

	do {
		lutf_runtime_stats(rt, &st);
		if (st.labors_parked + 1 >= labors)
			break;
		bench_sleep_ns(20000);
	} while (bench_now_ns() - t0 < 20000000ull);
	bench_sleep_ns(SETTLE_NS);
}

/* One Cart, four Labors. Each round: the blocking Brick, then the probe Brick
 * queued behind it; wait for the probe (or, OFF, sleep through the block);
 * release the blocker; reap both; settle. */
static void run_handoff(struct results *r, int mi, int64_t grace, uint64_t rounds,
			struct handoff_run *out, uint64_t *lat, bool spin);

void ho_run_handoff(struct results *r, int mi, int64_t grace, uint64_t rounds,
		    struct handoff_run *out, uint64_t *lat)
{
	run_handoff(r, mi, grace, rounds, out, lat, false);
}

/* The same rounds with FREE Labors spinning SPIN_RUN_NS before they park, and
 * only SPIN_GAP_NS between rounds: the Labor that lost the Cart last round is
 * still spinning when the next blocker blocks, and takes the Cart itself. */
void ho_run_handoff_spin(struct results *r, uint64_t rounds, struct handoff_run *out, uint64_t *lat)
{
	ho_spin_ns = SPIN_RUN_NS;
	run_handoff(r, M_BPF, 0, rounds, out, lat, true);
	ho_spin_ns = 0;
}

static void run_handoff(struct results *r, int mi, int64_t grace, uint64_t rounds,
			struct handoff_run *out, uint64_t *lat, bool spin)
{
	const struct mode_def *m = &modes[mi];
	const uint32_t labors = 4;
	struct lutf_request req = {0};
	struct lutf_runtime_stats st;
	struct lutf_runtime *rt;
	uint32_t id_block, id_probe;
	uint64_t n = 0, ns0 = 0, cnt0 = 0, ns1, cnt1, w0;
	int err;

	memset(out, 0, sizeof(*out));
	err = ho_make_runtime(m, 1, labors, grace, &rt);
	if (!err)
		err = lutf_runtime_add_fn(rt, "block", block_fn, NULL, &id_block);
	if (!err)
		err = lutf_runtime_add_fn(rt, "probe", probe_fn, NULL, &id_probe);
	if (err) {
		ho_fail(r, "handoff: %s: runtime setup %ld\n", m->key, err);
		return;
	}
	lutf_runtime_stats(rt, &st);
	out->grace_ns = grace >= 0 ? (uint32_t)grace : r->default_grace;
	out->fell_back = st.watch != m->watch;
	settle(rt, labors); /* spinning too: the first round has no spinner yet */
	ho_bpf_counters(rt, &ns0, &cnt0);
	w0 = bench_now_ns();
	for (uint64_t i = 0; i < rounds && out->stalls < MAX_STALLS; i++) {
		bool probe_done = false;
		int reaped = 0;
		char c = 'x';

		__atomic_store_n(&t_probe, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&t_block, 0, __ATOMIC_RELAXED);
		err = lutf_runtime_submit(rt, id_block, &req, 1);
		if (!err)
			err = lutf_runtime_submit(rt, id_probe, &req, 2);
		if (err) {
			ho_fail(r, "handoff: %s: submit %ld\n", m->key, err);
			if (write(block_pipe[1], &c, 1) != 1)
				ho_fail(r, "handoff: %s: pipe write %ld\n", m->key, errno);
			break;
		}
		out->rounds++;
		if (m->watch == LUTF_WATCH_OFF) {
			bench_sleep_ns(OFF_BLOCK_NS);
		} else {
			uint64_t t0 = bench_now_ns();

			/* The probe's completion is the only one that can come
			 * while the blocker is blocked. */
			while (!probe_done && bench_now_ns() - t0 < HANDOFF_WAIT_NS) {
				struct lutf_completion done;
				int got = lutf_runtime_reap(rt, &done, 1, 100);

				if (got <= 0)
					continue;
				if (done.result.status != LUTF_STATUS_OK)
					ho_fail(r, "handoff: %s: status %ld\n", m->key,
						(long)done.result.status);
				probe_done = done.user_data == 2;
				if (!probe_done)
					ho_fail(
					    r, "handoff: %s: blocker completed while blocked %ld\n",
					    m->key, (long)done.user_data);
				lutf_result_release(&done.result);
				reaped++;
			}
			if (!probe_done)
				out->stalls++;
		}
		if (write(block_pipe[1], &c, 1) != 1)
			ho_fail(r, "handoff: %s: pipe write %ld\n", m->key, errno);
		if (ho_reap_n(r, rt, 2 - reaped, m->key) != 2 - reaped)
			break;
		{
			uint64_t tb = __atomic_load_n(&t_block, __ATOMIC_ACQUIRE);
			uint64_t tp = __atomic_load_n(&t_probe, __ATOMIC_ACQUIRE);

			if (!tb || !tp) {
				ho_fail(r, "handoff: %s: a Brick did not run (round %ld)\n", m->key,
					(long)i);
			} else if (m->watch == LUTF_WATCH_OFF || probe_done) {
				if (tp < tb)
					out->early++;
				if (probe_done && tp > tb && tp - tb > SLOW_NS)
					out->slow++;
				lat[n++] = tp > tb ? tp - tb : 0;
				if (probe_done && __atomic_load_n(&tid_probe, __ATOMIC_RELAXED) ==
						      __atomic_load_n(&tid_block, __ATOMIC_RELAXED))
					ho_fail(r,
						"handoff: %s: probe ran on the blocked Labor %ld\n",
						m->key, (long)i);
			}
		}
		if (spin)
			bench_sleep_ns(SPIN_GAP_NS);
		else
			settle(rt, labors);
	}
	out->wall_ns = bench_now_ns() - w0;
	ho_bpf_counters(rt, &ns1, &cnt1);
	lutf_runtime_stats(rt, &st);
	if (st.submitted != st.completed)
		ho_fail(r, "handoff: %s: %ld Bricks submitted but not completed\n", m->key,
			(long)(st.submitted - st.completed));
	out->rebinds = st.rebinds;
	out->handoffs = m->watch == LUTF_WATCH_OFF ? 0 : n;
	if (cnt1 > cnt0) {
		out->bpf_runs = cnt1 - cnt0;
		out->bpf_ns_per_run = (double)(ns1 - ns0) / (double)(cnt1 - cnt0);
	} else {
		out->bpf_ns_per_run = NAN;
	}
	lutf_runtime_destroy(rt);
	bench_stats(lat, n, &out->lat);
	out->p90 = n ? (double)lat[(size_t)ceil(0.9 * (double)n) - 1] : NAN;
	out->min = n ? (double)lat[0] : NAN;
	out->max = n ? (double)lat[n - 1] : NAN;
	out->ran = n > 0;
}

void ho_merge_runs(const struct handoff_run *runs, int n, struct handoff_run *out)
{
	double ns = 0;
	int order[16], mid;

	memset(out, 0, sizeof(*out));
	if (n <= 0 || n > 16)
		return;
	for (int i = 0; i < n; i++)
		order[i] = i;
	/* Insertion sort of n (3) runs by median; NaN (did not run) last. */
	for (int i = 1; i < n; i++)
		for (int k = i;
		     k > 0 && !(runs[order[k - 1]].lat.median <= runs[order[k]].lat.median); k--) {
			int t = order[k];

			order[k] = order[k - 1];
			order[k - 1] = t;
		}
	mid = order[(n - 1) / 2];
	*out = runs[mid];
	out->rounds = out->handoffs = out->stalls = out->early = out->rebinds = out->slow = 0;
	out->bpf_runs = 0;
	out->wall_ns = 0;
	out->ran = false;
	for (int i = 0; i < n; i++) {
		const struct handoff_run *x = &runs[i];

		out->ran |= x->ran;
		out->fell_back |= x->fell_back;
		out->rounds += x->rounds;
		out->handoffs += x->handoffs;
		out->stalls += x->stalls;
		out->early += x->early;
		out->rebinds += x->rebinds;
		out->slow += x->slow;
		out->wall_ns += x->wall_ns;
		if (x->bpf_runs && !isnan(x->bpf_ns_per_run)) {
			ns += x->bpf_ns_per_run * (double)x->bpf_runs;
			out->bpf_runs += x->bpf_runs;
		}
	}
	out->bpf_ns_per_run = out->bpf_runs ? ns / (double)out->bpf_runs : NAN;
}

/* The pipe the blocking Brick reads (made once, before any round). */
int ho_latency_init(void)
{
	return pipe2(block_pipe, O_CLOEXEC) ? -errno : 0;
}

/* ---- futex wake chains: the floor under a hand-off ---- */

struct chain {
	uint32_t word[2];
	uint32_t done;
	uint32_t stop;
	uint64_t t_end;
	int hops;
};

struct chain_arg {
	struct chain *ch;
	int i;
	int cpu; /* -1: not pinned */
};

static void *chain_main(void *arg)
{
	struct chain_arg *a = arg;
	struct chain *ch = a->ch;
	/* Not the word's value now: a thread that starts late (a loaded host)
	 * may find its word already bumped, and must run that round, not wait
	 * for the next one that never comes. Every word starts at 0. */
	uint32_t seen = 0;

	ho_pin_self(a->cpu);
	for (;;) {
		uint32_t v;

		ho_futex_wait(&ch->word[a->i], seen);
		v = __atomic_load_n(&ch->word[a->i], __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&ch->stop, __ATOMIC_ACQUIRE))
			break;
		if (v == seen)
			continue; /* spurious */
		seen = v;
		if (a->i + 1 < ch->hops) {
			__atomic_add_fetch(&ch->word[a->i + 1], 1, __ATOMIC_RELEASE);
			ho_futex_wake(&ch->word[a->i + 1]);
		} else {
			__atomic_store_n(&ch->t_end, bench_now_ns(), __ATOMIC_RELEASE);
			__atomic_add_fetch(&ch->done, 1, __ATOMIC_RELEASE);
			ho_futex_wake(&ch->done);
		}
	}
	return NULL;
}

/* main wakes thread 0 (blocked in futex_wait), which wakes thread 1, ...; the
 * last stamps. Same shape as Supervisor wake + parked Labor wake. With one
 * hop, main and the thread can be pinned to CPUs (-1: not pinned). */
void ho_run_wake_chain(struct results *r, int hops, int cpu_main, int cpu_thr, uint64_t rounds,
		       uint64_t *lat, struct bench_stats *out)
{
	struct chain ch = {.hops = hops};
	struct chain_arg args[2];
	cpu_set_t all;
	pthread_t t[2];
	uint64_t n = 0;
	int started = 0;

	if (sched_getaffinity(0, sizeof(all), &all) != 0)
		cpu_main = -1;
	ho_pin_self(cpu_main);
	for (int i = 0; i < hops; i++) {
		args[i] = (struct chain_arg){&ch, i, cpu_thr};
		if (pthread_create(&t[i], NULL, chain_main, &args[i]) != 0) {
			ho_fail(r, "handoff: %s: %ld\n", "wake chain thread", i);
			goto out;
		}
		started++;
	}
	bench_sleep_ns(1000000);
	for (uint64_t k = 0; k < rounds; k++) {
		uint32_t d = __atomic_load_n(&ch.done, __ATOMIC_ACQUIRE);
		uint64_t t0 = bench_now_ns();

		__atomic_add_fetch(&ch.word[0], 1, __ATOMIC_RELEASE);
		ho_futex_wake(&ch.word[0]);
		while (__atomic_load_n(&ch.done, __ATOMIC_ACQUIRE) == d) {
			if (bench_now_ns() - t0 > HANDOFF_WAIT_NS) {
				ho_fail(r, "handoff: %s: round %ld never ended\n", "wake chain",
					(long)k);
				goto out;
			}
			ho_futex_wait_ns(&ch.done, d, 100000000ull);
		}
		lat[n++] = __atomic_load_n(&ch.t_end, __ATOMIC_ACQUIRE) - t0;
		bench_sleep_ns(100000); /* everybody back asleep */
	}
out:
	__atomic_store_n(&ch.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < started; i++) {
		__atomic_add_fetch(&ch.word[i], 1, __ATOMIC_RELEASE);
		ho_futex_wake(&ch.word[i]);
		pthread_join(t[i], NULL);
	}
	if (cpu_main >= 0)
		sched_setaffinity(0, sizeof(all), &all);
	bench_stats(lat, n, out);
}
