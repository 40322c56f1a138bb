/* SPDX-License-Identifier: MIT */
/*
 * Cluster manifests: one function's deployment as "key=value" lines, the
 * value of its key in the lutf_fns bucket. Invariant: decode accepts only a
 * manifest whose every field is valid (names, digest, bounds, size/chunks),
 * so what a node acts on was checked here, whoever wrote the bucket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cluster.h"

#define MANIFEST_MAX 4096 /* a manifest is a few hundred bytes */

void lutf_cluster_sha256(const void *data, size_t len, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, data, len);
	for (size_t i = 0; i < sizeof(h); i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

int lutf_cluster_manifest_encode(const struct lutf_cluster_manifest *m, char *buf, size_t cap)
{
	int n =
	    snprintf(buf, cap,
		     "lutf_manifest=1\ntenant=%s\napp=%s\nfunction=%s\nsymbol=%s\ntier=%s\n"
		     "state=%s\npublic=%d\ntimeout_ms=%" PRIu32 "\nmemory_mb=%" PRIu32
		     "\nmax_concurrency=%" PRIu32 "\nsha256=%s\nsize=%" PRIu64 "\nchunks=%" PRIu32
		     "\nreplicas=%" PRIu32 "\n",
		     m->tenant, m->app, m->function, m->symbol, m->tier,
		     m->paused ? "paused" : "active", m->is_public ? 1 : 0, m->timeout_ms,
		     m->memory_mb, m->max_concurrency, m->sha256, m->size, m->chunks, m->replicas);

	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

/* The project's name rule: [a-z0-9][a-z0-9_-]{0,62}. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= LUTF_CLUSTER_NAME ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static bool symbol_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= 128 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool u64_of(const char *v, uint64_t max, uint64_t *out)
{
	char *end;

	if (!*v || *v < '0' || *v > '9')
		return false;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return !errno && !*end && *out <= max;
}

static bool copy_field(char *dst, size_t cap, const char *v)
{
	if (strlen(v) >= cap)
		return false;
	memcpy(dst, v, strlen(v) + 1);
	return true;
}

static int field(struct lutf_cluster_manifest *m, const char *k, const char *v, unsigned *seen)
{
	uint64_t n;

	if (!strcmp(k, "lutf_manifest"))
		return strcmp(v, "1") ? -1 : (*seen |= 1, 0);
	if (!strcmp(k, "tenant"))
		return copy_field(m->tenant, sizeof(m->tenant), v) && name_ok(v) ? (*seen |= 2, 0)
										 : -1;
	if (!strcmp(k, "app"))
		return copy_field(m->app, sizeof(m->app), v) && name_ok(v) ? (*seen |= 4, 0) : -1;
	if (!strcmp(k, "function"))
		return copy_field(m->function, sizeof(m->function), v) && name_ok(v)
			   ? (*seen |= 8, 0)
			   : -1;
	if (!strcmp(k, "symbol"))
		return copy_field(m->symbol, sizeof(m->symbol), v) && symbol_ok(v)
			   ? (*seen |= 16, 0)
			   : -1;
	if (!strcmp(k, "tier"))
		return copy_field(m->tier, sizeof(m->tier), v) && (!*v || name_ok(v)) ? 0 : -1;
	if (!strcmp(k, "state")) {
		if (strcmp(v, "active") && strcmp(v, "paused"))
			return -1;
		m->paused = !strcmp(v, "paused");
		return 0;
	}
	if (!strcmp(k, "public")) {
		if (strcmp(v, "0") && strcmp(v, "1"))
			return -1;
		m->is_public = v[0] == '1';
		return 0;
	}
	if (!strcmp(k, "replicas")) {
		if (!u64_of(v, 1024, &n))
			return -1;
		m->replicas = (uint32_t)n;
		return 0;
	}
	if (!strcmp(k, "timeout_ms") || !strcmp(k, "memory_mb") || !strcmp(k, "max_concurrency")) {
		if (!u64_of(v, UINT32_MAX, &n))
			return -1;
		*(k[0] == 't'		       ? &m->timeout_ms
		  : k[0] == 'm' && k[1] == 'e' ? &m->memory_mb
					       : &m->max_concurrency) = (uint32_t)n;
		return 0;
	}
	if (!strcmp(k, "sha256")) {
		if (strlen(v) != 64 || strspn(v, "0123456789abcdef") != 64)
			return -1;
		memcpy(m->sha256, v, 65);
		*seen |= 32;
		return 0;
	}
	if (!strcmp(k, "size")) {
		if (!u64_of(v, LUTF_CLUSTER_MAX_ARTIFACT, &m->size) || !m->size)
			return -1;
		*seen |= 64;
		return 0;
	}
	if (!strcmp(k, "chunks")) {
		if (!u64_of(v, LUTF_CLUSTER_MAX_ARTIFACT / LUTF_CLUSTER_CHUNK + 1, &n))
			return -1;
		m->chunks = (uint32_t)n;
		*seen |= 128;
		return 0;
	}
	return 0; /* a later writer's field: ignored */
}

int lutf_cluster_manifest_decode(const void *data, size_t len, const char *key,
				 struct lutf_cluster_manifest *m, char *msg, size_t cap)
{
	char buf[MANIFEST_MAX + 1], want[2 * LUTF_CLUSTER_NAME + 2];
	char *line, *save = NULL;
	unsigned seen = 0;

	memset(m, 0, sizeof(*m));
	if (len == 0 || len > MANIFEST_MAX || memchr(data, 0, len)) {
		snprintf(msg, cap, "manifest of %zu bytes is not text of at most %d bytes", len,
			 MANIFEST_MAX);
		return -EINVAL;
	}
	memcpy(buf, data, len);
	buf[len] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (!eq) {
			snprintf(msg, cap, "line without '=': '%.40s'", line);
			return -EINVAL;
		}
		*eq = 0;
		if (field(m, line, eq + 1, &seen)) {
			snprintf(msg, cap, "bad value for %.32s: '%.80s'", line, eq + 1);
			return -EINVAL;
		}
	}
	if (seen != 255) {
		snprintf(msg, cap,
			 "missing fields (lutf_manifest, tenant, app, function, symbol, "
			 "sha256, size, chunks are required)");
		return -EINVAL;
	}
	if (m->chunks != (m->size + LUTF_CLUSTER_CHUNK - 1) / LUTF_CLUSTER_CHUNK) {
		snprintf(msg, cap, "chunks %" PRIu32 " do not match size %" PRIu64, m->chunks,
			 m->size);
		return -EINVAL;
	}
	snprintf(want, sizeof(want), "%s.%s", m->tenant, m->function);
	if (key && strcmp(key, want)) {
		snprintf(msg, cap, "key '%.130s' does not name %s", key, want);
		return -EINVAL;
	}
	return 0;
}

/* FNV-1a over key, a separator and node, then a 64-bit finalizer (splitmix):
 * every node computes the same scores from the same names. */
static uint64_t score(const char *key, const char *node)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	h = (h ^ 0xff) * 0x100000001b3ull;
	for (const char *p = node; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

bool lutf_cluster_placed(const char *key, uint32_t replicas, const char *node,
			 char (*nodes)[LUTF_CLUSTER_NAME], size_t n)
{
	uint64_t mine = score(key, node);
	size_t above = 0;

	if (!replicas || replicas >= n)
		return true;
	/* Placed when fewer than replicas other nodes score above this one
	 * (ties broken by name). */
	for (size_t i = 0; i < n; i++) {
		uint64_t s;

		if (!strcmp(nodes[i], node))
			continue;
		s = score(key, nodes[i]);
		if (s > mine || (s == mine && strcmp(nodes[i], node) < 0))
			above++;
	}
	return above < replicas;
}
