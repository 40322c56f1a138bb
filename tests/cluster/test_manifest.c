/* SPDX-License-Identifier: MIT */
/*
 * Cluster manifests (userspace/cluster/manifest.c) as a hostile bucket may
 * hold them: decode accepts a well-formed manifest round trip and refuses
 * every malformed one with a reason, never reading past its input.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static struct lutf_cluster_manifest good(void)
{
	struct lutf_cluster_manifest m = {0};

	snprintf(m.tenant, sizeof(m.tenant), "acme");
	snprintf(m.app, sizeof(m.app), "shop");
	snprintf(m.function, sizeof(m.function), "hello");
	snprintf(m.symbol, sizeof(m.symbol), "hello_v2");
	snprintf(m.tier, sizeof(m.tier), "basic");
	m.paused = true;
	m.max_concurrency = 8;
	lutf_cluster_sha256("x", 1, m.sha256);
	m.size = LUTF_CLUSTER_CHUNK + 1;
	m.chunks = 2;
	return m;
}

Test(cluster_manifest, round_trip)
{
	struct lutf_cluster_manifest m = good(), back;
	char buf[4096], msg[200];
	int n = lutf_cluster_manifest_encode(&m, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_assert_eq(
	    lutf_cluster_manifest_decode(buf, (size_t)n, "acme.hello", &back, msg, sizeof(msg)), 0,
	    "%s", msg);
	cr_assert_str_eq(back.symbol, "hello_v2");
	cr_assert(back.paused);
	cr_assert_eq(back.max_concurrency, 8);
	cr_assert_eq(back.chunks, 2);
	cr_assert_str_eq(back.sha256, m.sha256);
	/* sha256("x") is a known value: the digest is the real one. */
	cr_assert_str_eq(m.sha256,
			 "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
}

/* Replace the line starting with key= by repl (NULL: drop it). */
static int mutate(const char *key, const char *repl, char *out, size_t cap)
{
	struct lutf_cluster_manifest m = good();
	char buf[4096], *line, *save = NULL;
	size_t off = 0;

	lutf_cluster_manifest_encode(&m, buf, sizeof(buf));
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == '=') {
			if (repl)
				off += (size_t)snprintf(out + off, cap - off, "%s\n", repl);
			continue;
		}
		off += (size_t)snprintf(out + off, cap - off, "%s\n", line);
	}
	return (int)off;
}

Test(cluster_manifest, malformed_refused)
{
	static const char *cases[][2] = {
	    {"tenant", "tenant=Acme"},
	    {"tenant", "tenant=../etc"},
	    {"tenant", NULL},
	    {"app", "app="},
	    {"function", "function=a b"},
	    {"symbol", "symbol=1abc"},
	    {"symbol", "symbol=a;rm"},
	    {"sha256", "sha256=XYZ"},
	    {"sha256", "sha256=00"},
	    {"size", "size=0"},
	    {"size", "size=99999999999"},
	    {"size", "size=-1"},
	    {"chunks", "chunks=1"},
	    {"chunks", "chunks=4294967296"},
	    {"state", "state=maybe"},
	    {"public", "public=2"},
	    {"timeout_ms", "timeout_ms=x"},
	    {"max_concurrency", "max_concurrency=99999999999"},
	    {"lutf_manifest", "lutf_manifest=2"},
	    {"tier", "tier=no such"},
	    {"tenant", "no equals sign"},
	};
	struct lutf_cluster_manifest m;
	char buf[4096], msg[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = mutate(cases[i][0], cases[i][1], buf, sizeof(buf));

		msg[0] = 0;
		cr_assert_eq(
		    lutf_cluster_manifest_decode(buf, (size_t)n, NULL, &m, msg, sizeof(msg)),
		    -EINVAL, "accepted: %s", cases[i][1] ? cases[i][1] : cases[i][0]);
		cr_assert_neq(msg[0], 0, "no reason given for %s", cases[i][0]);
	}
}

Test(cluster_manifest, hostile_bytes)
{
	struct lutf_cluster_manifest m = good();
	char buf[4096], msg[200], *big;
	int n = lutf_cluster_manifest_encode(&m, buf, sizeof(buf));

	/* the key must name the manifest's own tenant.function */
	cr_assert_eq(
	    lutf_cluster_manifest_decode(buf, (size_t)n, "acme.other", &m, msg, sizeof(msg)),
	    -EINVAL);
	/* NUL inside, empty, and too long */
	buf[10] = 0;
	cr_assert_eq(lutf_cluster_manifest_decode(buf, (size_t)n, NULL, &m, msg, sizeof(msg)),
		     -EINVAL);
	cr_assert_eq(lutf_cluster_manifest_decode("", 0, NULL, &m, msg, sizeof(msg)), -EINVAL);
	big = malloc(1 << 20);
	cr_assert(big);
	memset(big, 'a', 1 << 20);
	cr_assert_eq(lutf_cluster_manifest_decode(big, 1 << 20, NULL, &m, msg, sizeof(msg)),
		     -EINVAL);
	/* random bytes: refused or accepted, never a crash */
	srand(15);
	for (int r = 0; r < 2000; r++) {
		size_t len = (size_t)(rand() % 600) + 1;

		for (size_t i = 0; i < len; i++)
			big[i] = (char)(rand() % 5 == 0 ? '\n' : rand() % 3 == 0 ? '=' : rand());
		(void)lutf_cluster_manifest_decode(big, len, NULL, &m, msg, sizeof(msg));
	}
	free(big);
}

/* Rendezvous placement: deterministic, N of the live nodes, and a node
 * leaving moves only the functions it had. */
Test(cluster_manifest, placement)
{
	char nodes[5][LUTF_CLUSTER_NAME] = {"a", "b", "c", "d", "e"};
	char four[4][LUTF_CLUSTER_NAME] = {"a", "b", "c", "d"};
	unsigned per_node[5] = {0};

	for (int f = 0; f < 200; f++) {
		char key[32];
		int placed = 0;

		snprintf(key, sizeof(key), "t.fn%d", f);
		for (int i = 0; i < 5; i++) {
			bool p = lutf_cluster_placed(key, 2, nodes[i], nodes, 5);

			cr_assert_eq(p, lutf_cluster_placed(key, 2, nodes[i], nodes, 5));
			placed += p;
			per_node[i] += p;
			/* e leaves: a function stays where it was unless it was on e */
			if (i < 4 && p)
				cr_assert(lutf_cluster_placed(key, 2, nodes[i], four, 4),
					  "%s moved off %s when e left", key, nodes[i]);
		}
		cr_assert_eq(placed, 2, "%s on %d nodes", key, placed);
		cr_assert(lutf_cluster_placed(key, 0, "a", nodes, 5), "replicas 0: everywhere");
		cr_assert(lutf_cluster_placed(key, 9, "a", nodes, 5),
			  "replicas > nodes: everywhere");
	}
	for (int i = 0; i < 5; i++) /* 400 placements over 5 nodes: none starved */
		cr_assert(per_node[i] > 40 && per_node[i] < 140, "node %s has %u", nodes[i],
			  per_node[i]);
}
