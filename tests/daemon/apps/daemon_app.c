/* SPDX-License-Identifier: MIT */
/* A test app for lutfd: logs its input, echoes it, or scribbles over its region. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lutf/function.h>

/* The region's layout, to aim the garbage at the Brick table and rings (the
 * test wants lutfd to meet invalid results, not the worker to crash first). */
#include "region.h" /* test-only: the scribbler aims at the engine layout */

LUTF_APP_ABI;

LUTF_FUNCTION(logger)
{
	lutf_log(call, "got %.*s", (int)call->input_len, (const char *)call->input);
	return lutf_write(call, call->input, call->input_len);
}

LUTF_FUNCTION(echo)
{
	return lutf_write(call, call->input, call->input_len);
}

/* The worker's pid (workers = N: which worker ran the call), after sleeping
 * the input's milliseconds (at most 5000). */
LUTF_FUNCTION(whoami)
{
	char buf[32];
	unsigned ms = 0;
	int n;

	if (call->input_len && call->input_len < sizeof(buf)) {
		memcpy(buf, call->input, call->input_len);
		buf[call->input_len] = 0;
		ms = (unsigned)strtoul(buf, NULL, 10);
	}
	if (ms)
		usleep((ms > 5000 ? 5000 : ms) * 1000u);
	n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
	return lutf_write(call, buf, (size_t)n);
}

/* This tenant's shared region (the memfd lutfd named "lutf-<tenant>"), or NULL. */
static struct lutf_region_hdr *own_region(size_t *len)
{
	FILE *fp = fopen("/proc/self/maps", "r");
	struct lutf_region_hdr *h = NULL;
	char line[512];

	while (fp && !h && fgets(line, sizeof(line), fp)) {
		unsigned long lo, hi;

		if (strstr(line, "memfd:lutf-") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			h = (struct lutf_region_hdr *)lo;
			*len = hi - lo;
		}
	}
	if (fp)
		fclose(fp);
	return h;
}

/*
 * Garbage (0xa5) over the whole Brick table. Running Bricks (this call's own)
 * keep state, refs and user_data, so that the Labor still completes this call
 * and lutfd still finds whose it is; its result fields stay garbage (an empty
 * output writes none), so lutfd reads an invalid result. Rings, arena and the
 * header page stay: lutfd must judge the Bricks, not get lost before.
 */
LUTF_FUNCTION(scribble)
{
	size_t len = 0;
	struct lutf_region_hdr *h = own_region(&len);
	struct lutf_brick *b;
	uint64_t n;

	if (!h || !h->off_bricks || h->off_cells <= h->off_bricks || h->off_cells > len)
		return lutf_write(call, "none", 4);
	b = (struct lutf_brick *)((char *)h + h->off_bricks);
	n = (h->off_cells - h->off_bricks) / sizeof(*b);
	for (uint64_t i = 0; i < n; i++) {
		struct lutf_brick keep = b[i];

		memset(&b[i], 0xa5, sizeof(b[i]));
		if (keep.state == LUTF_BRICK_RUNNING) {
			b[i].state = keep.state;
			b[i].refs = keep.refs;
			b[i].user_data = keep.user_data;
		}
	}
	return 0;
}

/*
 * Marks its own Brick as a synchronous one: the engine then never posts its
 * completion to lutfd's ring (no check fails: nothing is out of range), so
 * only lutfd's own deadline can answer the call.
 */
LUTF_FUNCTION(lose_completion)
{
	size_t len = 0;
	struct lutf_region_hdr *h = own_region(&len);
	struct lutf_labor *l;
	struct lutf_brick *b;
	int32_t me = (int32_t)syscall(SYS_gettid);

	if (!h || h->off_bricks > len || h->off_labors > len)
		return lutf_write(call, "none", 4);
	l = (struct lutf_labor *)((char *)h + h->off_labors);
	b = (struct lutf_brick *)((char *)h + h->off_bricks);
	for (uint32_t i = 0; i < h->cfg.labors_max; i++) {
		if (l[i].tid == me && l[i].brick < h->cfg.bricks) {
			__atomic_store_n(&b[l[i].brick].cq, LUTF_CQ_SYNC, __ATOMIC_RELAXED);
			return lutf_write(call, "lost", 4);
		}
	}
	return lutf_write(call, "not found", 9);
}
