/* SPDX-License-Identifier: MIT */
/*
 * memory: what a queued Brick costs. Both Labors are held inside a function
 * that waits on a gate, so every later Brick stays queued on a Cart; RSS is
 * read before the runtime, after creating it and after queuing. Then the gate
 * opens and every Brick must come back OK exactly once, or the program exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host.h"

#include "common.h"

#define QUEUED 100000u
#define TARGET_BYTES 1024.0 /* per queued Brick, payload excluded */
#define REAP_WAIT_MS 10000

/* 0: closed, Labors wait in gated(); 1: open. */
static uint32_t gate;

static int gated(struct lutf_call *call)
{
	/* Acquire pairs with the release store in open_gate. */
	while (__atomic_load_n(&gate, __ATOMIC_ACQUIRE) == 0)
		syscall(SYS_futex, &gate, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return call->input_len == 1 && *(const char *)call->input == 'x' ? 0 : 1;
}

static void open_gate(void)
{
	__atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &gate, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

struct results {
	char machine[128];
	struct lutf_config cfg;
	uint32_t queued;	 /* Bricks submitted while the gate was shut */
	uint64_t region_bytes;	 /* lutf_region_size(cfg): reserved, not resident */
	double region_per_brick; /* reserved bytes per extra Brick slot */
	double region_per_cell;	 /* reserved bytes per extra Cart ring cell */
	uint64_t rss_before, rss_created, rss_queued, rss_drained, rss_destroyed;
	double per_brick;      /* (rss_queued - rss_created) / queued */
	double submit_ns;      /* mean submit cost while filling the queues */
	double queued_cpu_pct; /* process CPU while Bricks sit queued (Labors blocked) */
	double drain_ms;
	uint64_t reaped;
	int errors;
};

static void fail(struct results *r, const char *what, long v)
{
	if (r->errors++ < 10)
		fprintf(stderr, "memory: %s (%ld)\n", what, v);
}

/* Reserved bytes of one more Brick slot and one more Cart cell, from the
 * public size function (the struct definitions are private to the engine). */
static void reserved_per_slot(struct results *r)
{
	struct lutf_config c = r->cfg;
	size_t a, b;

	c.bricks = 1u << 16;
	a = lutf_region_size(&c);
	c.bricks = 1u << 17;
	b = lutf_region_size(&c);
	r->region_per_brick = (double)(b - a) / (double)(1u << 16);
	c = r->cfg;
	c.cart_capacity = 1u << 15;
	a = lutf_region_size(&c);
	c.cart_capacity = 1u << 16;
	b = lutf_region_size(&c);
	r->region_per_cell = (double)(b - a) / (double)(c.carts * (1u << 15));
}

static void run(struct results *r, uint32_t n)
{
	static struct lutf_completion done[256];
	struct lutf_request req = {.input = "x", .input_len = 1};
	struct lutf_runtime_stats st;
	struct lutf_runtime *rt;
	uint64_t t0, c0;
	uint32_t id;
	int err;

	r->rss_before = bench_rss_bytes();
	err = lutf_runtime_create(&r->cfg, &rt);
	if (err) {
		fail(r, "cannot create the runtime", err);
		return;
	}
	err = lutf_runtime_add_fn(rt, "gated", gated, NULL, &id);
	if (err) {
		fail(r, "cannot add the function", err);
		goto out;
	}
	bench_sleep_ns(50000000ull); /* Labors settle and park */
	r->rss_created = bench_rss_bytes();

	t0 = bench_now_ns();
	for (uint32_t i = 0; i < n; i++) {
		err = lutf_runtime_submit(rt, id, &req, i);
		if (err) {
			fail(r, "submit refused", err);
			break;
		}
		r->queued++;
	}
	r->submit_ns = r->queued ? (double)(bench_now_ns() - t0) / r->queued : NAN;
	/* Wait until both Labors are inside gated(): the rest is on the Carts. */
	for (int i = 0; i < 2000; i++) {
		lutf_runtime_stats(rt, &st);
		if (st.queued + r->cfg.labors <= r->queued)
			break;
		bench_sleep_ns(1000000);
	}
	r->rss_queued = bench_rss_bytes();
	r->per_brick =
	    r->queued ? ((double)r->rss_queued - (double)r->rss_created) / r->queued : NAN;
	c0 = bench_cpu_self_ns();
	t0 = bench_now_ns();
	bench_sleep_ns(200000000ull);
	r->queued_cpu_pct =
	    100.0 * (double)(bench_cpu_self_ns() - c0) / (double)(bench_now_ns() - t0);

	open_gate();
	t0 = bench_now_ns();
	while (r->reaped < r->queued) {
		int got = lutf_runtime_reap(rt, done, 256, REAP_WAIT_MS);

		if (got <= 0) {
			fail(r, "Bricks lost: no completion for 10 s",
			     (long)(r->queued - r->reaped));
			break;
		}
		for (int i = 0; i < got; i++) {
			if (done[i].result.status != LUTF_STATUS_OK)
				fail(r, "wrong status", (long)done[i].result.status);
			if (done[i].user_data >= r->queued)
				fail(r, "unexpected completion", (long)done[i].user_data);
			lutf_result_release(&done[i].result);
		}
		r->reaped += (uint64_t)got;
	}
	r->drain_ms = (double)(bench_now_ns() - t0) / 1e6;
	lutf_runtime_stats(rt, &st);
	if (st.submitted != st.completed || r->reaped != r->queued)
		fail(r, "submitted and completed differ", (long)(st.submitted - st.completed));
	r->rss_drained = bench_rss_bytes();
out:
	lutf_runtime_destroy(rt);
	r->rss_destroyed = bench_rss_bytes();
}

static double kib(uint64_t b)
{
	return (double)b / 1024.0;
}

static void print_table(const struct results *r, bool quick)
{
	const struct lutf_config *c = &r->cfg;

	printf("lutf memory benchmark%s: %s\n", quick ? " (--quick)" : "", r->machine);
	printf("runtime: carts=%u labors=%u cart_capacity=%u bricks=%u watch=off; "
	       "input 1 byte per Brick\n\n",
	       c->carts, c->labors, c->cart_capacity, c->bricks);
	printf("%-44s %14s\n", "RSS", "KiB");
	printf("%-44s %14.0f\n", "before the runtime", kib(r->rss_before));
	printf("%-44s %14.0f\n", "after create (Labors parked)", kib(r->rss_created));
	printf("%-44s %14.0f\n", "with the Bricks queued", kib(r->rss_queued));
	printf("%-44s %14.0f\n", "after release and reap", kib(r->rss_drained));
	printf("%-44s %14.0f\n", "after destroy", kib(r->rss_destroyed));
	printf("\n%-44s %14u\n", "Bricks queued (2 more held in Labors)", r->queued - c->labors);
	printf("%-44s %14.1f\n", "bytes per queued Brick (RSS delta / Bricks)", r->per_brick);
	printf("%-44s %14.0f\n", "runtime RSS cost (after create - before), KiB",
	       kib(r->rss_created - r->rss_before));
	printf("%-44s %14.1f\n", "region reserved, MiB (lutf_region_size)",
	       (double)r->region_bytes / 1048576.0);
	printf("%-44s %14.1f\n", "  reserved bytes per Brick slot", r->region_per_brick);
	printf("%-44s %14.1f\n", "  reserved bytes per Cart ring cell", r->region_per_cell);
	printf("%-44s %14zu\n", "sizeof(struct lutf_result)", sizeof(struct lutf_result));
	printf("%-44s %14zu\n", "sizeof(struct lutf_completion)", sizeof(struct lutf_completion));
	printf("%-44s %14.1f\n", "submit cost while filling, ns per Brick", r->submit_ns);
	printf("%-44s %14.2f\n", "CPU while queued and Labors blocked, %", r->queued_cpu_pct);
	printf("%-44s %14.1f\n", "drain after release, ms", r->drain_ms);
	printf("\n%-44s %12.1f B %10.0f B  %s\n", "target: < 1 KiB per queued Brick", r->per_brick,
	       TARGET_BYTES, r->per_brick < TARGET_BYTES ? "PASS" : "MISS");
	printf("\nerrors: %d (lost Bricks, wrong statuses)\n", r->errors);
}

static void print_json(const struct results *r, bool quick)
{
	const struct lutf_config *c = &r->cfg;
	struct bench_json j;

	bench_json_begin(&j, stdout);
	bench_json_str(&j, "bench", "memory");
	bench_json_str(&j, "machine", r->machine);
	bench_json_bool(&j, "quick", quick);
	bench_json_obj(&j, "config");
	bench_json_u64(&j, "carts", c->carts);
	bench_json_u64(&j, "labors", c->labors);
	bench_json_u64(&j, "cart_capacity", c->cart_capacity);
	bench_json_u64(&j, "bricks", c->bricks);
	bench_json_str(&j, "watch", "off");
	bench_json_close_obj(&j);
	bench_json_u64(&j, "submitted", r->queued);
	bench_json_u64(&j, "queued", r->queued - c->labors);
	bench_json_obj(&j, "rss_bytes");
	bench_json_u64(&j, "before", r->rss_before);
	bench_json_u64(&j, "created", r->rss_created);
	bench_json_u64(&j, "queued", r->rss_queued);
	bench_json_u64(&j, "drained", r->rss_drained);
	bench_json_u64(&j, "destroyed", r->rss_destroyed);
	bench_json_close_obj(&j);
	bench_json_num(&j, "bytes_per_queued_brick", r->per_brick);
	bench_json_u64(&j, "region_reserved_bytes", r->region_bytes);
	bench_json_num(&j, "region_bytes_per_brick_slot", r->region_per_brick);
	bench_json_num(&j, "region_bytes_per_cart_cell", r->region_per_cell);
	bench_json_u64(&j, "sizeof_lutf_result", sizeof(struct lutf_result));
	bench_json_u64(&j, "sizeof_lutf_completion", sizeof(struct lutf_completion));
	bench_json_num(&j, "submit_ns_per_brick", r->submit_ns);
	bench_json_num(&j, "queued_cpu_pct", r->queued_cpu_pct);
	bench_json_num(&j, "drain_ms", r->drain_ms);
	bench_json_obj(&j, "targets");
	bench_json_obj(&j, "bytes_per_queued_brick");
	bench_json_str(&j, "text", "< 1 KiB per queued Brick, payload excluded");
	bench_json_num(&j, "value", r->per_brick);
	bench_json_num(&j, "limit", TARGET_BYTES);
	bench_json_bool(&j, "pass", r->per_brick < TARGET_BYTES);
	bench_json_close_obj(&j);
	bench_json_close_obj(&j);
	bench_json_u64(&j, "errors", (uint64_t)r->errors);
	bench_json_end(&j);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct results r;

	bench_parse_args(argc, argv,
			 "RSS per queued Brick: 100,000 Bricks queued behind two blocked Labors.",
			 &o);
	memset(&r, 0, sizeof(r));
	bench_machine(r.machine, sizeof(r.machine));
	lutf_config_init(&r.cfg);
	r.cfg.carts = 2;
	r.cfg.labors = 2;
	r.cfg.cart_capacity = 65536;
	r.cfg.bricks = 131072;
	r.cfg.watch = LUTF_WATCH_OFF;
	r.region_bytes = lutf_region_size(&r.cfg);
	reserved_per_slot(&r);
	/* --quick queues as many: it takes well under a second either way. */
	run(&r, QUEUED);
	if (o.json)
		print_json(&r, o.quick);
	else
		print_table(&r, o.quick);
	return r.errors ? 1 : 0;
}
