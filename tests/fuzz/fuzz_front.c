/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the front's readers of a shared region. The input is
 * a list of writes a worker could make (section, offset, bytes), applied to a
 * freshly formatted region either before attach (the header check) or after
 * it (everything else); then submit, reap, the Supervisor's pass and crash
 * repair run over the result. Any crash, hang or sanitizer report is a bug in
 * the front. Build and run: tests/fuzz/run.sh (docs/isolation.md).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "front.h"

static void *mem;
static size_t size;
static struct lutf_config cfg;
static struct lutf_region view; /* for section offsets only */

static void init_once(void)
{
	lutf_config_init(&cfg);
	cfg.carts = 2;
	cfg.labors = 2;
	cfg.labors_max = 4;
	cfg.cart_capacity = 16;
	cfg.max_functions = 4;
	cfg.hold_max = 8;
	cfg.arena_bytes = 64u << 10;
	cfg.max_payload = 4096;
	cfg.watch = LUTF_WATCH_POLL;
	cfg.timeout_ms = 1;
	size = lutf_region_size(&cfg);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!size || mem == MAP_FAILED)
		abort();
}

/* Where a write lands: a section of the region, chosen by the input. */
static uint64_t section(uint8_t sel)
{
	switch (sel % 10) {
	case 0:
		return 0; /* header */
	case 1:
		return (uint64_t)((uint8_t *)view.carts - view.base);
	case 2:
		return (uint64_t)((uint8_t *)view.labors - view.base);
	case 3:
		return (uint64_t)((uint8_t *)view.fns - view.base);
	case 4:
		return (uint64_t)((uint8_t *)view.bricks - view.base);
	case 5:
		return (uint64_t)((uint8_t *)view.cart_q[0].cells - view.base);
	case 6:
		return (uint64_t)((uint8_t *)view.cq.cells - view.base);
	case 7:
		return (uint64_t)((uint8_t *)view.held.cells - view.base);
	case 8:
		return (uint64_t)((uint8_t *)view.cls[0].links - view.base);
	default:
		return view.cls[0].off;
	}
}

/* Records: sel u8, off u16 (LE), len u8, len bytes. */
static void apply(const uint8_t *d, size_t n)
{
	while (n >= 4) {
		uint64_t at = section(d[0]) + (uint64_t)(d[1] | d[2] << 8);
		size_t len = d[3];

		d += 4;
		n -= 4;
		if (len > n)
			len = n;
		if (at < size) {
			if (len > size - at)
				len = size - at;
			memcpy((uint8_t *)mem + at, d, len);
		}
		d += len;
		n -= len;
	}
}

static void drive(struct lutf_runtime *rt, uint8_t mode)
{
	static const char in[3000];
	struct lutf_completion cs[8];
	uint32_t id = 0;
	int n;

	(void)lutf_runtime_lookup(rt, "f", &id);
	for (int i = 0; i < 4; i++) {
		struct lutf_request req = {.input = in, .input_len = i & 1 ? sizeof(in) : 8};

		(void)lutf_runtime_submit(rt, id, &req, (uint64_t)i);
	}
	n = lutf_runtime_reap(rt, cs, 8, 0);
	for (int i = 0; i < n; i++)
		lutf_result_release(&cs[i].result);
	lutf_sup_pass(rt, lutf_now_ns());
	if (mode & 2) {
		lutf_runtime_pause(rt, id);
		lutf_runtime_resume(rt, id);
	}
	lutf_sup_pass(rt, lutf_now_ns() + 10000000000ull); /* every deadline passed */
	(void)lutf_runtime_overdue(rt, 0);
	for (unsigned i = 0; i < LUTF_AUDIT_SLICES; i++)
		(void)lutf_runtime_audit(rt); /* the first also runs the lost-call scan */
	(void)lutf_runtime_worker_lost(rt, SIGKILL);
	lutf_sup_pass(rt, lutf_now_ns());
	n = lutf_runtime_reap(rt, cs, 8, 0);
	for (int i = 0; i < n; i++)
		lutf_result_release(&cs[i].result);
	if (mode & 4)
		lutf_runtime_delete(rt, id);
	lutf_sup_pass(rt, lutf_now_ns());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct lutf_runtime *rt = NULL;
	uint8_t mode;

	if (!mem)
		init_once();
	if (n < 1)
		return 0;
	mode = data[0];
	memset(mem, 0, size);
	if (lutf_region_format(mem, size, &cfg, LUTF_REGION_SHARED) ||
	    lutf_region_open(&view, mem, size))
		abort();
	if (mode & 1) {
		/* The header check: writes first, then attach. */
		apply(data + 1, n - 1);
		if (lutf_front_attach_bare(mem, size, &rt))
			return 0;
		(void)lutf_runtime_add_remote(rt, "f", NULL, NULL);
	} else {
		if (lutf_front_attach_bare(mem, size, &rt))
			abort(); /* a fresh region must attach */
		(void)lutf_runtime_add_remote(rt, "f", NULL, NULL);
		apply(data + 1, n - 1);
	}
	drive(rt, mode);
	lutf_front_detach_bare(rt);
	return 0;
}
