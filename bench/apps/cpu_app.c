/* SPDX-License-Identifier: MIT */
/*
 * The app bench/workers deploys: "hash" is CPU-bound work of a fixed size,
 * FNV-1a over a 4 KiB block `input` times (default 64: 256 KiB), no system
 * call; its answer is the hash (so the work cannot be optimised away) and
 * the CLOCK_MONOTONIC ns it started and ended at: "<hash> <start> <end>".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lutf/function.h>

LUTF_APP_ABI;

LUTF_FUNCTION(hash)
{
	static const char block[4096] = "lutf workers bench";
	char buf[64];
	struct timespec a, b;
	unsigned rounds = 64;
	uint64_t h = 1469598103934665603ull;
	int n;

	if (call->input_len && call->input_len < sizeof(buf)) {
		memcpy(buf, call->input, call->input_len);
		buf[call->input_len] = 0;
		rounds = (unsigned)strtoul(buf, NULL, 10);
		if (rounds > 4096)
			rounds = 4096;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (unsigned r = 0; r < rounds; r++)
		for (size_t i = 0; i < sizeof(block); i++)
			h = (h ^ (uint8_t)(block[i] + r)) * 1099511628211ull;
	clock_gettime(CLOCK_MONOTONIC, &b);
	n = snprintf(buf, sizeof(buf), "%016llx %llu %llu", (unsigned long long)h,
		     (unsigned long long)a.tv_sec * 1000000000ull + (unsigned long long)a.tv_nsec,
		     (unsigned long long)b.tv_sec * 1000000000ull + (unsigned long long)b.tv_nsec);
	return lutf_write(call, buf, (size_t)n);
}
