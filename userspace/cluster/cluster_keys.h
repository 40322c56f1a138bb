/* SPDX-License-Identifier: MIT */
/*
 * Tenant API keys cluster-wide (issue #15 item 4; docs/cluster.md "Keys"):
 * KV bucket "lutf_keys", one entry per key id holding its tenant, the
 * BLAKE2b hash of its secret (never the secret), and its created / revoked
 * times. lutfctl writes it; every node watches it (keys.c) and hands the
 * whole table to lutfd. No libnats type here: lutfd's keys.c includes it.
 */
#ifndef LUTF_CLUSTER_KEYS_H
#define LUTF_CLUSTER_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LUTF_CLUSTER_KEYS "lutf_keys"
#define LUTF_CLUSTER_KEY_ID 16	    /* hex digits of an id: the entry's key */
#define LUTF_CLUSTER_KEY_HASH 32    /* bytes of BLAKE2b(secret) */
#define LUTF_CLUSTER_KEY_VALUE 1024 /* a bigger value is hostile: refused */
#define LUTF_CLUSTER_KEYS_MAX 16384 /* entries a node takes; more are refused */

/* One key as the bucket holds it (after every check). */
struct lutf_cluster_key {
	char tenant[64];
	char id[LUTF_CLUSTER_KEY_ID + 1];
	uint64_t created, revoked; /* unix seconds; revoked 0: active */
	uint8_t hash[LUTF_CLUSTER_KEY_HASH];
};

struct lutf_cluster;

/* Text form ("key=value" lines: tenant, hash, created, revoked) into buf.
 * Returns the length, or -ENOSPC. */
int lutf_cluster_key_encode(const struct lutf_cluster_key *k, char *buf, size_t cap);
/* Parse and check an entry of the bucket: id (its KV key) 16 lower-case
 * hex digits, a valid tenant name, a 64-hex hash, decimal times, no other
 * or repeated field, at most LUTF_CLUSTER_KEY_VALUE bytes. Returns 0, or
 * -EINVAL with the reason in msg. */
int lutf_cluster_key_decode(const char *id, const void *data, size_t len,
			    struct lutf_cluster_key *k, char *msg, size_t cap);

/* lutfctl --cluster key add: a fresh key of tenant (which must have a
 * function in the registry). key gets "lutf_<id>_<secret>" (the secret
 * exists only there: the caller prints it once and wipes it), *k the entry
 * written. Returns 0 or -errno (-ENOENT: no such tenant) with msg. */
int lutf_cluster_key_add(struct lutf_cluster *c, const char *tenant, char key[88],
			 struct lutf_cluster_key *k, char *msg, size_t cap);
/* Revoke tenant's key id (compare-and-set on its revision). Returns 0 (also
 * when revoked already), -ENOENT (no such key of tenant) or -errno. */
int lutf_cluster_key_revoke(struct lutf_cluster *c, const char *tenant, const char *id, char *msg,
			    size_t cap);
/* Every well-formed entry (of tenant, or all when tenant is NULL), in id
 * order. Returns 0 or -errno with msg. */
int lutf_cluster_key_list(struct lutf_cluster *c, const char *tenant,
			  void (*fn)(void *arg, const struct lutf_cluster_key *k), void *arg,
			  char *msg, size_t cap);

/* The node side (node.c starts and stops it): a thread that watches the
 * bucket and calls on_keys with the whole table after every change
 * (refused entries left out, logged once). */
struct lutf_cluster_node_cfg;
int lutf_cluster_keys_start(struct lutf_cluster *c, const struct lutf_cluster_node_cfg *cfg);
void lutf_cluster_keys_stop(void);

#endif /* LUTF_CLUSTER_KEYS_H */
