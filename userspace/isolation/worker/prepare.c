/* SPDX-License-Identifier: MIT */
/*
 * Prepared tiers: each (policy folder, tier) parsed and compiled to BPF once,
 * in the zygote, so that the workers it forks inherit the program and only
 * install it. Invariants: an entry is handed out only while every policy
 * file it was read from is unchanged on disk (else it is rebuilt first), and
 * the cache is touched by one thread only (the zygote has no other).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandbox.h"

#define TIER_CACHE 16 /* 4 tiers x a few policy folders (tests use their own) */

struct entry {
	char dir[256];
	char tier[16];
	struct lutf_tier_prep prep;
};

static struct entry cache[TIER_CACHE];
static unsigned next_victim; /* round robin once full */
static uint64_t builds;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void entry_free(struct entry *e)
{
	lutf_policy_free(e->prep.p);
	lutf_seccomp_prog_free(&e->prep.prog);
	memset(e, 0, sizeof(*e));
}

/* Returns 0 or -errno. */
int lutf_tier_prepare(const char *dir, const char *tier, const struct lutf_tier_prep **out,
		      char *err, size_t cap)
{
	struct lutf_tier_prep prep = {0};
	struct entry *e = NULL;
	uint64_t t0 = now_ns();
	int rc;

	*out = NULL;
	if (!dir || !dir[0])
		dir = LUTF_POLICY_DIR;
	if (!tier || strlen(tier) >= sizeof(cache[0].tier) || strlen(dir) >= sizeof(cache[0].dir)) {
		snprintf(err, cap, "tier or policy folder name too long");
		return -ENAMETOOLONG;
	}
	for (unsigned i = 0; i < TIER_CACHE; i++) {
		struct entry *c = &cache[i];

		if (!c->prep.p || strcmp(c->dir, dir) || strcmp(c->tier, tier))
			continue;
		if (lutf_policy_fresh(c->prep.p)) {
			*out = &c->prep;
			return 0;
		}
		entry_free(c); /* edited on disk: read it again */
		e = c;
		break;
	}
	rc = lutf_policy_load(dir, tier, &prep.p, err, cap);
	if (!rc)
		rc = lutf_seccomp_build(prep.p, &prep.prog, err, cap);
	if (rc) {
		lutf_policy_free(prep.p);
		return rc;
	}
	prep.built_ns = now_ns() - t0;
	prep.gen = ++builds;
	for (unsigned i = 0; !e && i < TIER_CACHE; i++)
		if (!cache[i].prep.p)
			e = &cache[i];
	if (!e) {
		e = &cache[next_victim++ % TIER_CACHE];
		entry_free(e);
	}
	snprintf(e->dir, sizeof(e->dir), "%s", dir);
	snprintf(e->tier, sizeof(e->tier), "%s", tier);
	e->prep = prep;
	*out = &e->prep;
	return 0;
}

void lutf_tier_cache_clear(void)
{
	for (unsigned i = 0; i < TIER_CACHE; i++)
		entry_free(&cache[i]);
	next_victim = 0;
}
