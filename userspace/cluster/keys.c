/* SPDX-License-Identifier: MIT */
/*
 * Tenant API keys cluster-wide: the lutf_keys bucket's entries (decode
 * checks every field: whoever can write the bucket is not trusted to write
 * it well), lutfctl's writer, and a node's watcher thread, which hands lutfd
 * the whole table after every change. Invariants: no secret is ever stored
 * or sent, only BLAKE2b(secret); an entry that fails a check, or names a
 * tenant with no function in the registry, is left out and logged once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cluster_int.h"
#include "cluster_keys.h"

#define SECRET_BYTES 32

/* ---- the entry ---- */

static bool hex_ok(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* The project's name rule: [a-z0-9][a-z0-9_-]{0,62}. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

int lutf_cluster_key_encode(const struct lutf_cluster_key *k, char *buf, size_t cap)
{
	char hex[2 * LUTF_CLUSTER_KEY_HASH + 1];
	int n;

	sodium_bin2hex(hex, sizeof(hex), k->hash, sizeof(k->hash));
	n = snprintf(buf, cap,
		     "lutf_key=1\ntenant=%s\nhash=%s\ncreated=%" PRIu64 "\nrevoked=%" PRIu64 "\n",
		     k->tenant, hex, k->created, k->revoked);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

static bool u64_of(const char *s, uint64_t *v)
{
	char *end;

	if (!*s || strlen(s) > 20)
		return false;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return !errno && !*end;
}

int lutf_cluster_key_decode(const char *id, const void *data, size_t len,
			    struct lutf_cluster_key *k, char *msg, size_t cap)
{
	char buf[LUTF_CLUSTER_KEY_VALUE + 1], *line, *save = NULL;
	unsigned seen = 0; /* bits: version, tenant, hash, created, revoked */

	memset(k, 0, sizeof(*k));
	if (!id || !hex_ok(id, LUTF_CLUSTER_KEY_ID)) {
		snprintf(msg, cap, "the entry's key is not a key id (16 lower-case hex digits)");
		return -EINVAL;
	}
	if (len > LUTF_CLUSTER_KEY_VALUE) {
		snprintf(msg, cap, "value of %zu bytes (at most %d)", len, LUTF_CLUSTER_KEY_VALUE);
		return -EINVAL;
	}
	if (memchr(data, 0, len)) {
		snprintf(msg, cap, "a NUL byte in the value");
		return -EINVAL;
	}
	memcpy(buf, data, len);
	buf[len] = 0;
	memcpy(k->id, id, LUTF_CLUSTER_KEY_ID + 1);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, '=');
		unsigned bit;

		if (!v) {
			snprintf(msg, cap, "a line without '=': '%.40s'", line);
			return -EINVAL;
		}
		*v++ = 0;
		if (!strcmp(line, "lutf_key") && !strcmp(v, "1"))
			bit = 1;
		else if (!strcmp(line, "tenant") && name_ok(v))
			bit = 2, memcpy(k->tenant, v, strlen(v) + 1);
		else if (!strcmp(line, "hash") && hex_ok(v, 2 * LUTF_CLUSTER_KEY_HASH))
			bit = 4,
			sodium_hex2bin(k->hash, sizeof(k->hash), v, strlen(v), NULL, NULL, NULL);
		else if (!strcmp(line, "created") && u64_of(v, &k->created))
			bit = 8;
		else if (!strcmp(line, "revoked") && u64_of(v, &k->revoked))
			bit = 16;
		else {
			snprintf(msg, cap, "bad field %.20s='%.40s'", line, v);
			return -EINVAL;
		}
		if (seen & bit) {
			snprintf(msg, cap, "field %.20s given twice", line);
			return -EINVAL;
		}
		seen |= bit;
	}
	if (seen != 31) {
		snprintf(msg, cap,
			 "missing field(s): want lutf_key=1, tenant, hash (64 hex), created, "
			 "revoked");
		return -EINVAL;
	}
	return 0;
}

/* ---- the bucket ---- */

static int bucket(struct lutf_cluster *c, kvStore **kv, char *msg, size_t cap)
{
	kvConfig kc;
	natsStatus s;
	int err = lutf_cluster_ready(c, msg, cap);

	if (err)
		return err;
	s = js_KeyValue(kv, lutf_cluster_js(c), LUTF_CLUSTER_KEYS);
	if (s == NATS_NOT_FOUND) {
		kvConfig_Init(&kc);
		kc.Bucket = LUTF_CLUSTER_KEYS;
		kc.History = 1;
		kc.StorageType = js_FileStorage;
		kc.Replicas = lutf_cluster_replicas(c);
		kc.MaxValueSize = LUTF_CLUSTER_KEY_VALUE;
		s = js_CreateKeyValue(kv, lutf_cluster_js(c), &kc);
		if (s != NATS_OK) /* another writer made it first */
			s = js_KeyValue(kv, lutf_cluster_js(c), LUTF_CLUSTER_KEYS);
	}
	return lutf_cluster_nerr(s, msg, cap, LUTF_CLUSTER_KEYS);
}

/* The registry's keys ("<tenant>.<fn>") into *keys. Returns 0 or -errno. */
static int registry_keys(struct lutf_cluster *c, kvKeysList *keys, char *msg, size_t cap)
{
	natsStatus s = kvStore_Keys(keys, lutf_cluster_kv(c, LUTF_CLUSTER_FNS), NULL);

	if (s == NATS_NOT_FOUND) { /* an empty registry */
		memset(keys, 0, sizeof(*keys));
		return 0;
	}
	return lutf_cluster_nerr(s, msg, cap, LUTF_CLUSTER_FNS);
}

/* Has the registry (keys) a function of tenant? */
static bool tenant_in(const kvKeysList *keys, const char *tenant)
{
	size_t n = strlen(tenant);

	for (int i = 0; i < keys->Count; i++)
		if (!strncmp(keys->Keys[i], tenant, n) && keys->Keys[i][n] == '.')
			return true;
	return false;
}

int lutf_cluster_key_add(struct lutf_cluster *c, const char *tenant, char key[88],
			 struct lutf_cluster_key *k, char *msg, size_t cap)
{
	uint8_t idb[LUTF_CLUSTER_KEY_ID / 2], secret[SECRET_BYTES];
	char val[LUTF_CLUSTER_KEY_VALUE];
	kvStore *kv = NULL;
	natsStatus s = NATS_ERR;
	int err, n;

	if (sodium_init() < 0) {
		snprintf(msg, cap, "libsodium does not initialise");
		return -EIO;
	}
	if (!name_ok(tenant)) {
		snprintf(msg, cap, "bad tenant name (want [a-z0-9][a-z0-9_-]{0,62})");
		return -EINVAL;
	}
	if ((err = bucket(c, &kv, msg, cap)))
		return err;
	{
		kvKeysList fns = {0};
		bool known;

		if ((err = registry_keys(c, &fns, msg, cap)))
			goto out;
		known = tenant_in(&fns, tenant);
		kvKeysList_Destroy(&fns);
		if (!known) {
			snprintf(msg, cap, "no tenant %s in the cluster registry (deploy it first)",
				 tenant);
			err = -ENOENT;
			goto out;
		}
	}
	memset(k, 0, sizeof(*k));
	snprintf(k->tenant, sizeof(k->tenant), "%s", tenant);
	k->created = (uint64_t)time(NULL);
	/* kvStore_Create fails when the id exists: draw another (2^64 ids). */
	for (int tries = 0; tries < 4; tries++) {
		randombytes_buf(idb, sizeof(idb));
		sodium_bin2hex(k->id, sizeof(k->id), idb, sizeof(idb));
		randombytes_buf(secret, sizeof(secret));
		crypto_generichash(k->hash, sizeof(k->hash), secret, sizeof(secret), NULL, 0);
		n = lutf_cluster_key_encode(k, val, sizeof(val));
		s = kvStore_Create(NULL, kv, k->id, val, n);
		if (s == NATS_OK)
			break;
		sodium_memzero(secret, sizeof(secret));
		if (s != NATS_ERR) /* a transport failure, not a taken id */
			break;
	}
	if (s != NATS_OK) {
		err = lutf_cluster_nerr(s, msg, cap, "key add");
		goto out;
	}
	memcpy(key, "lutf_", 5);
	memcpy(key + 5, k->id, LUTF_CLUSTER_KEY_ID);
	key[5 + LUTF_CLUSTER_KEY_ID] = '_';
	sodium_bin2hex(key + 6 + LUTF_CLUSTER_KEY_ID, 2 * SECRET_BYTES + 1, secret, sizeof(secret));
	sodium_memzero(secret, sizeof(secret));
	err = 0;
out:
	kvStore_Destroy(kv);
	return err;
}

int lutf_cluster_key_revoke(struct lutf_cluster *c, const char *tenant, const char *id, char *msg,
			    size_t cap)
{
	struct lutf_cluster_key k;
	char val[LUTF_CLUSTER_KEY_VALUE];
	kvStore *kv = NULL;
	kvEntry *e = NULL;
	natsStatus s;
	int err;

	if ((err = bucket(c, &kv, msg, cap)))
		return err;
	/* Read, mark, write back only if nobody wrote meanwhile; else again. */
	for (int tries = 0; tries < 5; tries++) {
		uint64_t rev;
		int n;

		err = -ENOENT;
		if (!hex_ok(id, LUTF_CLUSTER_KEY_ID))
			break;
		s = kvStore_Get(&e, kv, id);
		if (s == NATS_NOT_FOUND)
			break;
		if (s != NATS_OK) {
			err = lutf_cluster_nerr(s, msg, cap, "key revoke");
			goto out;
		}
		rev = kvEntry_Revision(e);
		err = lutf_cluster_key_decode(id, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &k,
					      msg, cap);
		kvEntry_Destroy(e);
		e = NULL;
		if (err || strcmp(k.tenant, tenant)) {
			err = -ENOENT;
			break;
		}
		if (k.revoked)
			goto out; /* err 0: revoked already */
		k.revoked = (uint64_t)time(NULL);
		n = lutf_cluster_key_encode(&k, val, sizeof(val));
		s = kvStore_Update(NULL, kv, id, val, n, rev);
		if (s == NATS_OK)
			goto out;
		err = lutf_cluster_nerr(s, msg, cap, "key revoke");
		if (s != NATS_ERR) /* not a lost compare-and-set */
			goto out;
	}
	if (err == -ENOENT)
		snprintf(msg, cap, "tenant %s has no cluster API key %s", tenant, id);
out:
	kvStore_Destroy(kv);
	return err;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(((const struct lutf_cluster_key *)a)->id,
		      ((const struct lutf_cluster_key *)b)->id);
}

int lutf_cluster_key_list(struct lutf_cluster *c, const char *tenant,
			  void (*fn)(void *arg, const struct lutf_cluster_key *k), void *arg,
			  char *msg, size_t cap)
{
	kvKeysList keys = {0};
	struct lutf_cluster_key *all;
	kvStore *kv = NULL;
	size_t n = 0;
	natsStatus s;
	int err;

	if ((err = bucket(c, &kv, msg, cap)))
		return err;
	s = kvStore_Keys(&keys, kv, NULL);
	if (s == NATS_NOT_FOUND) {
		kvStore_Destroy(kv);
		return 0;
	}
	if (s != NATS_OK) {
		kvStore_Destroy(kv);
		return lutf_cluster_nerr(s, msg, cap, LUTF_CLUSTER_KEYS);
	}
	all = calloc((size_t)keys.Count + 1, sizeof(*all));
	for (int i = 0; all && i < keys.Count; i++) {
		kvEntry *e = NULL;
		char why[200];

		if (kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK)
			continue;
		if (!lutf_cluster_key_decode(keys.Keys[i], kvEntry_Value(e),
					     (size_t)kvEntry_ValueLen(e), &all[n], why,
					     sizeof(why)) &&
		    (!tenant || !strcmp(all[n].tenant, tenant)))
			n++;
		kvEntry_Destroy(e);
	}
	if (all) {
		qsort(all, n, sizeof(*all), cmp_key);
		for (size_t i = 0; i < n; i++)
			fn(arg, &all[i]);
	} else {
		snprintf(msg, cap, "out of memory");
		err = -ENOMEM;
	}
	free(all);
	kvKeysList_Destroy(&keys);
	kvStore_Destroy(kv);
	return err;
}

/* ---- the node's watcher ---- */

enum { E_OK, E_DELETED };

struct slot {
	struct lutf_cluster_key k; /* k.id always; the rest when state is E_OK */
	uint8_t state;
	uint64_t rev;
	uint64_t said; /* the revision last logged as refused (unknown tenant) */
};

struct map {
	struct slot *s;
	size_t n;
};

static struct {
	struct lutf_cluster *c;
	int (*on_keys)(const struct lutf_cluster_key *k, size_t n);
	void (*log)(const char *fmt, ...);
	kvStore *kv;
	struct map cur, next;
	struct lutf_cluster_key *out;
	pthread_t th;
	bool running;
	atomic_bool stop; /* relaxed: polled every 200 ms, nothing else hangs on it */
} K;

static struct slot *slot_of(struct map *m, const char *id, bool make)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->s[i].k.id, id))
			return &m->s[i];
	if (!make || m->n >= LUTF_CLUSTER_KEYS_MAX)
		return NULL;
	if (!m->s && !(m->s = calloc(LUTF_CLUSTER_KEYS_MAX, sizeof(*m->s))))
		return NULL;
	memset(&m->s[m->n], 0, sizeof(m->s[0]));
	memcpy(m->s[m->n].k.id, id, LUTF_CLUSTER_KEY_ID + 1);
	return &m->s[m->n++];
}

static void slot_drop(struct map *m, const char *id)
{
	struct slot *s = slot_of(m, id, false);

	if (s)
		*s = m->s[--m->n];
}

/* One entry as the watcher delivers it. */
static void take(struct map *m, kvEntry *e)
{
	const char *id = kvEntry_Key(e);
	struct lutf_cluster_key k;
	struct slot *s;
	char msg[200];

	if (!hex_ok(id, LUTF_CLUSTER_KEY_ID)) {
		K.log("cluster: lutf_keys entry '%.40s' refused: not a key id (16 lower-case hex "
		      "digits)",
		      id);
		return;
	}
	if (kvEntry_Operation(e) != kvOp_Put) {
		/* Deleted or purged: a key that is gone is revoked (lutfd keeps the id). */
		s = slot_of(m, id, true);
		if (s) {
			s->state = E_DELETED;
			s->rev = kvEntry_Revision(e);
		}
		return;
	}
	if (lutf_cluster_key_decode(id, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &k, msg,
				    sizeof(msg))) {
		K.log("cluster: lutf_keys entry %s (revision %" PRIu64 ") refused: %s", id,
		      kvEntry_Revision(e), msg);
		slot_drop(m, id); /* what it said before no longer holds */
		return;
	}
	s = slot_of(m, id, true);
	if (!s) {
		K.log("cluster: lutf_keys: more than %d keys: %s refused", LUTF_CLUSTER_KEYS_MAX,
		      id);
		return;
	}
	s->k = k;
	s->state = E_OK;
	s->rev = kvEntry_Revision(e);
}

/*
 * Hand lutfd the table. An active key whose tenant has no function in the
 * registry is left out (logged once per revision) and *pending says to try
 * again later (the deploy may come after the key). Returns 0, or -errno when
 * the registry could not be read (nothing handed over; try again).
 */
static int deliver(bool *pending)
{
	kvKeysList fns = {0};
	bool have = false;
	size_t n = 0;
	char msg[300];
	int err;

	*pending = false;
	for (size_t i = 0; i < K.cur.n; i++) {
		struct slot *s = &K.cur.s[i];

		if (s->state == E_DELETED) {
			memset(&K.out[n], 0, sizeof(K.out[n]));
			memcpy(K.out[n].id, s->k.id, sizeof(s->k.id));
			K.out[n++].revoked = (uint64_t)time(NULL);
			continue;
		}
		if (s->k.revoked) { /* a revocation always applies */
			K.out[n++] = s->k;
			continue;
		}
		if (!have) { /* once per hand-over, and only for an active key */
			if ((err = registry_keys(K.c, &fns, msg, sizeof(msg))))
				return err;
			have = true;
		}
		if (tenant_in(&fns, s->k.tenant)) {
			K.out[n++] = s->k;
			continue;
		}
		*pending = true;
		if (s->said != s->rev)
			K.log(
			    "cluster: lutf_keys entry %s refused: tenant %s has no function in the "
			    "registry (taken once it has)",
			    s->k.id, s->k.tenant);
		s->said = s->rev;
	}
	if (have)
		kvKeysList_Destroy(&fns);
	if (K.on_keys)
		K.on_keys(K.out, n);
	return 0;
}

static void *keys_main(void *arg)
{
	kvWatcher *w = NULL;
	bool initial = false, dirty = false, pending = false, said = false;
	uint64_t seen_reconnects = 0, last_try = 0;
	char msg[300];

	(void)arg;
	while (!atomic_load_explicit(&K.stop, memory_order_relaxed)) {
		kvEntry *e = NULL;
		natsStatus s;

		if (!w) {
			int err = K.kv ? 0 : bucket(K.c, &K.kv, msg, sizeof(msg));

			if (!err && kvStore_WatchAll(&w, K.kv, NULL) != NATS_OK) {
				snprintf(msg, sizeof(msg), "cannot watch %s", LUTF_CLUSTER_KEYS);
				err = -EIO;
			}
			if (err) {
				if (!said)
					K.log("cluster: keys: waiting for NATS (%s); checking keys "
					      "with the cached table",
					      msg);
				said = true;
				usleep(250 * 1000);
				continue;
			}
			said = false;
			initial = true;
			K.next.n = 0;
			seen_reconnects = lutf_cluster_reconnects(K.c);
		}
		/* A burst of changes is handed over once: poll briefly while dirty. */
		s = kvWatcher_Next(&e, w, dirty ? 5 : 200);
		if (s == NATS_OK && !e && initial) {
			/* Every current entry is in: the bucket as it is now (what
			 * changed while this node was cut off included). */
			struct map t = K.cur;

			K.cur = K.next;
			K.next = t;
			initial = false;
			dirty = true;
		} else if (s == NATS_OK && e) {
			take(initial ? &K.next : &K.cur, e);
			kvEntry_Destroy(e);
			dirty |= !initial;
		} else if (s != NATS_OK && s != NATS_TIMEOUT) {
			kvWatcher_Destroy(w);
			w = NULL;
			continue;
		}
		if ((dirty && s == NATS_TIMEOUT) ||
		    (pending && lutf_cluster_now_ms() - last_try >= 1000)) {
			bool changed = dirty;

			last_try = lutf_cluster_now_ms();
			if (!deliver(&pending)) {
				if (changed)
					K.log("cluster: keys in step with lutf_keys (%zu entries)",
					      K.cur.n);
				dirty = false;
			} else {
				pending = true; /* the registry did not answer: again soon */
			}
		}
		if (lutf_cluster_reconnects(K.c) != seen_reconnects) {
			K.log("cluster: NATS reconnected; reading lutf_keys again");
			kvWatcher_Destroy(w);
			w = NULL;
		}
	}
	kvWatcher_Destroy(w);
	return NULL;
}

int lutf_cluster_keys_start(struct lutf_cluster *c, const struct lutf_cluster_node_cfg *cfg)
{
	int err;

	if (!cfg->on_keys)
		return 0;
	K.c = c;
	K.on_keys = cfg->on_keys;
	K.log = cfg->log;
	K.out = calloc(LUTF_CLUSTER_KEYS_MAX, sizeof(*K.out));
	if (!K.out)
		return -ENOMEM;
	atomic_store_explicit(&K.stop, false, memory_order_relaxed);
	err = -pthread_create(&K.th, NULL, keys_main, NULL);
	if (err) {
		free(K.out);
		K.out = NULL;
		return err;
	}
	K.running = true;
	return 0;
}

void lutf_cluster_keys_stop(void)
{
	struct timespec until;

	if (!K.running)
		return;
	K.running = false;
	atomic_store_explicit(&K.stop, true, memory_order_relaxed);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	if (pthread_timedjoin_np(K.th, NULL, &until)) {
		pthread_detach(K.th); /* stuck in libnats: left to the process's exit */
		return;
	}
	kvStore_Destroy(K.kv);
	K.kv = NULL;
	free(K.cur.s);
	free(K.next.s);
	free(K.out);
	memset(&K.cur, 0, sizeof(K.cur));
	memset(&K.next, 0, sizeof(K.next));
	K.out = NULL;
}
