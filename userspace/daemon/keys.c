/* SPDX-License-Identifier: MIT */
/*
 * API keys: created, listed and revoked on the control socket, checked on
 * every invocation over TCP and HTTP; public apps; the admin token of
 * /metrics. Invariants: a key's secret is never stored, only its BLAKE2b
 * hash, and it is compared in constant time (libsodium); a change is
 * answered only once <state_dir>/keys holding it is durable (temporary
 * file, fsync, rename, fsync of the folder), else it is undone in memory.
 * Cluster keys (lutf_keys, docs/cluster.md "Keys") are a second table that
 * the cluster's keys thread replaces whole, cached in <state_dir>/
 * keys.cluster; a key id revoked there stays revoked on this node.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "lutfd.h"
#ifdef LUTF_HAVE_CLUSTER
#include "cluster_keys.h"
#endif

#define KEY_PREFIX "lutf_"
#define ID_BYTES 8
#define SECRET_BYTES 32
#define HASH_BYTES 32
#define ID_HEX (2 * ID_BYTES)
#define SECRET_HEX (2 * SECRET_BYTES)
/* "lutf_" <id hex> "_" <secret hex> */
#define KEY_LEN (sizeof(KEY_PREFIX) - 1 + ID_HEX + 1 + SECRET_HEX)
#define MAX_KEYS 16384 /* revoked keys stay listed: the bound keeps the file small */
#define MAX_PUBLIC 16384
/* The disk refused a change: NOT_PERSISTED, never a retry-later status such
 * as OVERLOADED. */
#define NOT_SAVED LUTF_STATUS_NOT_PERSISTED

struct key_rec {
	char tenant[LUTFD_NAME]; /* cluster tombstones of ids never seen: "-" */
	char id[ID_HEX + 1];
	uint64_t created, revoked; /* unix seconds; revoked 0: active */
	uint8_t hash[HASH_BYTES];
	bool clash; /* cluster table: an active entry refused, a local key has its id */
};

struct pub_rec {
	char tenant[LUTFD_NAME];
	char app[LUTFD_NAME];
};

static struct key_rec *keys;
static size_t nkeys;
static struct pub_rec *pubs;
static size_t npubs;
static uint8_t admin_hash[HASH_BYTES];
static bool admin_set;
/*
 * The cluster's keys: replaced whole by the cluster's keys thread
 * (lutfd_keys_cluster_replace), read by the main thread's checks. ck_lock
 * guards ckeys/nckeys, and the main thread's changes to keys/nkeys (the
 * keys thread reads local ids to refuse clashes; the main thread, their only
 * writer, reads them without it).
 */
static pthread_mutex_t ck_lock = PTHREAD_MUTEX_INITIALIZER;
static struct key_rec *ckeys;
static size_t nckeys;

static void hash_of(const void *p, size_t n, uint8_t out[HASH_BYTES])
{
	crypto_generichash(out, HASH_BYTES, p, n, NULL, 0);
}

/* ---- the durable file ---- */

static void store_path(char *path, size_t cap, const char *suffix)
{
	snprintf(path, cap, "%s/keys%s", g_cfg.state_dir, suffix);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

/* Write a store durably: <state_dir>/keys<suffix> with the keys k[0..n)
 * and, for the local store, the public apps. Returns 0 or -errno (the old
 * file stays). */
static int save_file(const char *suffix, const struct key_rec *k, size_t n, bool with_pubs)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], hex[2 * HASH_BYTES + 1];
	FILE *fp;
	int fd, rc = 0;

	store_path(path, sizeof(path), suffix);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	fp = fdopen(fd, "w");
	if (!fp) {
		rc = -errno;
		close(fd);
		goto err;
	}
	fprintf(fp, "lutf-keys 1\n");
	for (size_t i = 0; i < n; i++) {
		sodium_bin2hex(hex, sizeof(hex), k[i].hash, HASH_BYTES);
		fprintf(fp, "key %s %s %" PRIu64 " %" PRIu64 " %s%s\n", k[i].tenant, k[i].id,
			k[i].created, k[i].revoked, hex, k[i].clash ? " clash" : "");
	}
	for (size_t i = 0; with_pubs && i < npubs; i++)
		fprintf(fp, "public %s %s\n", pubs[i].tenant, pubs[i].app);
	if (fflush(fp) || ferror(fp) || fsync(fd))
		rc = -errno ?: -EIO;
	if (fclose(fp) && !rc)
		rc = -errno;
	if (rc)
		goto err;
	if (rename(tmp, path)) {
		rc = -errno;
		goto err;
	}
	return fsync_dir(g_cfg.state_dir);
err:
	unlink(tmp);
	return rc;
}

static int save(void)
{
	return save_file("", keys, nkeys, true);
}

static bool hex_ok(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One line of a store into *tk, *tn (the cluster cache: cluster, no
 * public apps, tombstones "-" and "clash" marks). Returns 0 or -errno. */
static int parse_line(char *line, struct key_rec **tk, size_t *tn, bool cluster)
{
	char w[7][80];
	int n;

	line[strcspn(line, "\n")] = 0;
	n = sscanf(line, "%79s %79s %79s %79s %79s %79s %79s", w[0], w[1], w[2], w[3], w[4], w[5],
		   w[6]);
	if ((n == 6 || (cluster && n == 7 && !strcmp(w[6], "clash"))) && !strcmp(w[0], "key")) {
		struct key_rec k = {0}, *p;
		char *e1, *e2;
		size_t max = cluster ? 2 * MAX_KEYS : MAX_KEYS;

		k.created = strtoull(w[3], &e1, 10);
		k.revoked = strtoull(w[4], &e2, 10);
		if (!(lutf_name_valid(w[1]) || (cluster && !strcmp(w[1], "-") && k.revoked)) ||
		    !hex_ok(w[2], ID_HEX) || *e1 || *e2 || !hex_ok(w[5], 2 * HASH_BYTES) ||
		    *tn >= max)
			return -EINVAL;
		LUTFD_COPY(k.tenant, w[1]);
		LUTFD_COPY(k.id, w[2]);
		k.clash = n == 7;
		sodium_hex2bin(k.hash, HASH_BYTES, w[5], 2 * HASH_BYTES, NULL, NULL, NULL);
		p = realloc(*tk, (*tn + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*tk = p;
		(*tk)[(*tn)++] = k;
		return 0;
	}
	if (n == 3 && !cluster && !strcmp(w[0], "public")) {
		struct pub_rec *p;

		if (!lutf_name_valid(w[1]) || !lutf_name_valid(w[2]) || npubs >= MAX_PUBLIC)
			return -EINVAL;
		p = realloc(pubs, (npubs + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		pubs = p;
		LUTFD_COPY(pubs[npubs].tenant, w[1]);
		LUTFD_COPY(pubs[npubs].app, w[2]);
		npubs++;
		return 0;
	}
	return -EINVAL;
}

/* The admin token: admin_token_file, or <state_dir>/admin.token made here. */
static int load_admin_token(void)
{
	char path[PATH_MAX], tok[256], hex[2 * SECRET_BYTES + 1];
	uint8_t raw[SECRET_BYTES];
	size_t n;
	FILE *fp;
	int fd;

	if (g_cfg.admin_token_file[0])
		snprintf(path, sizeof(path), "%s", g_cfg.admin_token_file);
	else
		snprintf(path, sizeof(path), "%s/admin.token", g_cfg.state_dir);
	fp = fopen(path, "re");
	if (!fp && errno == ENOENT && !g_cfg.admin_token_file[0]) {
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
		sodium_memzero(raw, sizeof(raw));
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) ||
		    write(fd, "\n", 1) != 1 || fsync(fd)) {
			fprintf(stderr, "lutfd: cannot write the admin token %s: %s\n", path,
				strerror(errno));
			if (fd >= 0)
				close(fd);
			return -EIO;
		}
		close(fd);
		fsync_dir(g_cfg.state_dir);
		fp = fopen(path, "re");
	}
	if (!fp) {
		fprintf(stderr, "lutfd: cannot read the admin token %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	n = fread(tok, 1, sizeof(tok) - 1, fp);
	fclose(fp);
	tok[n] = 0;
	tok[strcspn(tok, "\r\n")] = 0;
	if (strlen(tok) < 16) {
		fprintf(stderr, "lutfd: the admin token in %s is shorter than 16 characters\n",
			path);
		return -EINVAL;
	}
	hash_of(tok, strlen(tok), admin_hash);
	sodium_memzero(tok, sizeof(tok));
	admin_set = true;
	return 0;
}

/* Read <state_dir>/keys<suffix> into *tk, *tn (absent: nothing). Returns 0
 * or -errno (message printed, naming the file and line). */
static int load_file(const char *suffix, struct key_rec **tk, size_t *tn, bool cluster)
{
	char path[PATH_MAX], line[512];
	unsigned lineno = 0;
	FILE *fp;
	int rc = 0;

	store_path(path, sizeof(path), suffix);
	fp = fopen(path, "re");
	if (!fp && errno != ENOENT) {
		rc = -errno;
		fprintf(stderr, "lutfd: cannot read %s: %s\n", path, strerror(-rc));
		return rc;
	}
	while (fp && fgets(line, sizeof(line), fp)) {
		lineno++;
		if (lineno == 1) {
			if (strcmp(line, "lutf-keys 1\n")) {
				rc = -EINVAL;
				break;
			}
			continue;
		}
		if ((rc = parse_line(line, tk, tn, cluster)))
			break;
	}
	if (fp)
		fclose(fp);
	if (rc)
		fprintf(stderr, "lutfd: %s: line %u is not a key store line: %s\n", path, lineno,
			strerror(-rc));
	return rc;
}

int lutfd_keys_load(void)
{
	int rc;

	if (sodium_init() < 0) {
		fprintf(stderr, "lutfd: libsodium does not initialise\n");
		return -EIO;
	}
	if ((rc = load_file("", &keys, &nkeys, false)))
		return rc;
	/* The cluster's keys as this node last had them: checked with until
	 * the keys thread hands over the bucket (docs/cluster.md "Keys"); a
	 * lone host has none. */
	if (g_cfg.cluster[0] && load_file(".cluster", &ckeys, &nckeys, true)) {
		/* Not fatal: no cluster key opens anything until NATS hands
		 * the table over (fails closed; nothing revoked comes back). */
		fprintf(stderr, "lutfd: the cluster keys cache is ignored until NATS answers\n");
		free(ckeys);
		ckeys = NULL;
		nckeys = 0;
	}
	return load_admin_token();
}

/* ---- public apps ---- */

static struct pub_rec *pub_find(const char *tenant, const char *app)
{
	for (size_t i = 0; i < npubs; i++)
		if (!strcmp(pubs[i].tenant, tenant) && !strcmp(pubs[i].app, app))
			return &pubs[i];
	return NULL;
}

bool lutfd_keys_public(const char *tenant, const char *app)
{
	return pub_find(tenant, app) != NULL;
}

int lutfd_keys_set_public(const char *tenant, const char *app, bool pub, char *msg, size_t cap)
{
	struct pub_rec *r = pub_find(tenant, app), saved;
	int rc;

	if (!!r == pub)
		return 0;
	if (pub) {
		struct pub_rec *p =
		    npubs < MAX_PUBLIC ? realloc(pubs, (npubs + 1) * sizeof(*p)) : NULL;

		if (!p) {
			snprintf(msg, cap, "cannot make %s/%s public: too many public apps", tenant,
				 app);
			return -ENOMEM;
		}
		pubs = p;
		LUTFD_COPY(pubs[npubs].tenant, tenant);
		LUTFD_COPY(pubs[npubs].app, app);
		npubs++;
	} else {
		saved = *r;
		*r = pubs[--npubs];
	}
	rc = save();
	if (!rc)
		return 0;
	if (pub) {
		npubs--;
	} else {
		pubs[npubs++] = saved; /* the order does not matter */
	}
	snprintf(msg, cap, "cannot save the key store in %s: %s", g_cfg.state_dir, strerror(-rc));
	lutfd_log("%s", msg);
	return rc;
}

int lutfd_keys_forget_tenant(const char *tenant)
{
	size_t nk = 0, np = 0;

	pthread_mutex_lock(&ck_lock); /* the keys thread reads local ids */
	for (size_t i = 0; i < nkeys; i++)
		if (strcmp(keys[i].tenant, tenant))
			keys[nk++] = keys[i];
	pthread_mutex_unlock(&ck_lock);
	for (size_t i = 0; i < npubs; i++)
		if (strcmp(pubs[i].tenant, tenant))
			pubs[np++] = pubs[i];
	if (nk == nkeys && np == npubs)
		return 0;
	pthread_mutex_lock(&ck_lock);
	nkeys = nk;
	pthread_mutex_unlock(&ck_lock);
	npubs = np;
	return save();
}

/* ---- the checks ---- */

static struct key_rec *key_by_id(const char *id)
{
	for (size_t i = 0; i < nkeys; i++)
		if (!strcmp(keys[i].id, id))
			return &keys[i];
	return NULL;
}

static struct key_rec *find_in(struct key_rec *t, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].id, id))
			return &t[i];
	return NULL;
}

/* A copy of the cluster table's record of id (any thread). */
static bool cluster_key(const char *id, struct key_rec *out)
{
	struct key_rec *k;

	if (!g_cfg.cluster[0])
		return false; /* a lone host: its own keys only, no lock on the call path */
	pthread_mutex_lock(&ck_lock);
	k = find_in(ckeys, nckeys, id);
	if (k)
		*out = *k;
	pthread_mutex_unlock(&ck_lock);
	return k != NULL;
}

enum lutfd_auth lutfd_keys_check(const char *tenant, const char *fn, const char *key, size_t len,
				 char *msg, size_t cap)
{
	struct lutfd_tenant *t;
	struct lutfd_fn *f;
	uint8_t secret[SECRET_BYTES], h[HASH_BYTES];
	char id[ID_HEX + 1];
	struct key_rec *k, ck;
	size_t pre = sizeof(KEY_PREFIX) - 1;
	bool match, in_cluster;

	if (!g_cfg.require_keys)
		return LUTFD_AUTH_OK;
	t = lutfd_tenant_find(tenant);
	f = t ? lutfd_fn_find(t, fn) : NULL;
	if (f && lutfd_keys_public(tenant, f->app))
		return LUTFD_AUTH_OK;
	if (!key || !len) {
		snprintf(msg, cap,
			 "an API key of tenant %s is required (lutfctl key create %s; HTTP: "
			 "Authorization: Bearer <key>; binary protocol: the KEY field)",
			 tenant, tenant);
		return LUTFD_AUTH_MISSING;
	}
	if (len != KEY_LEN || memcmp(key, KEY_PREFIX, pre) || key[pre + ID_HEX] != '_') {
		snprintf(msg, cap, "not an API key (want lutf_<16 hex>_<64 hex>)");
		return LUTFD_AUTH_DENIED;
	}
	memcpy(id, key + pre, ID_HEX);
	id[ID_HEX] = 0;
	if (!hex_ok(id, ID_HEX) || sodium_hex2bin(secret, sizeof(secret), key + pre + ID_HEX + 1,
						  SECRET_HEX, NULL, NULL, NULL)) {
		snprintf(msg, cap, "not an API key (want lutf_<16 hex>_<64 hex>)");
		return LUTFD_AUTH_DENIED;
	}
	hash_of(secret, sizeof(secret), h);
	sodium_memzero(secret, sizeof(secret));
	/* A local key wins a clash of ids with an active cluster key (that
	 * one was refused and logged); a cluster revocation of the id always
	 * applies (docs/cluster.md "Keys"). */
	k = key_by_id(id);
	in_cluster = cluster_key(id, &ck);
	if (k && in_cluster && ck.revoked) {
		snprintf(msg, cap, "API key %s was revoked in the cluster", id);
		return LUTFD_AUTH_DENIED;
	}
	if (!k && in_cluster && !ck.clash)
		k = &ck;
	/* Compare even when the id is unknown: the time taken says nothing. */
	match = sodium_memcmp(h, k ? k->hash : admin_hash, HASH_BYTES) == 0 && k;
	if (!match) {
		snprintf(msg, cap, "unknown API key %s", id);
		return LUTFD_AUTH_DENIED;
	}
	if (k->revoked && !strcmp(k->tenant, "-")) {
		snprintf(msg, cap, "API key %s was revoked in the cluster", id);
		return LUTFD_AUTH_DENIED;
	}
	if (k->revoked) {
		snprintf(msg, cap, "API key %s of tenant %s was revoked", id, k->tenant);
		return LUTFD_AUTH_DENIED;
	}
	if (strcmp(k->tenant, tenant)) {
		snprintf(msg, cap, "API key %s is not a key of tenant %s", id, tenant);
		return LUTFD_AUTH_DENIED;
	}
	return LUTFD_AUTH_OK;
}

#ifdef LUTF_HAVE_CLUSTER
/*
 * The keys thread's hand-over: in[0..n) is the whole lutf_keys bucket as
 * that thread checked it (entries of unknown tenants left out; a deleted id
 * comes with revoked set and no tenant). Rules, each logged when it first
 * applies: an id this node saw revoked stays revoked (a stale or hostile
 * entry never brings it back); an active entry whose id is a local key is
 * refused (the local key is used), a revoked one revokes that id here too;
 * an id missing from the bucket is dropped unless it was revoked (kept as a
 * tombstone). The new table is swapped in under ck_lock, then saved to
 * <state_dir>/keys.cluster (a failure is logged; the table stays in
 * force). Returns 0 or -errno (the save).
 */
int lutfd_keys_cluster_replace(const struct lutf_cluster_key *in, size_t n)
{
	struct key_rec *nt, *old;
	size_t nn = 0, nold;
	uint64_t now = (uint64_t)time(NULL);
	int rc;

	nt = calloc(n + nckeys + 1, sizeof(*nt));
	if (!nt) {
		lutfd_log("cluster keys: out of memory: the table stays as it was");
		return -ENOMEM;
	}
	pthread_mutex_lock(&ck_lock);
	old = ckeys; /* only this thread replaces it: read without copying */
	nold = nckeys;
	for (size_t i = 0; i < n; i++) {
		const struct lutf_cluster_key *e = &in[i];
		struct key_rec *was = find_in(old, nold, e->id), *local = key_by_id(e->id);
		struct key_rec r = {0};

		if (find_in(nt, nn, e->id))
			continue; /* the thread hands each id once; be safe */
		LUTFD_COPY(r.id, e->id);
		if (!e->tenant[0]) { /* deleted from the bucket: revoked here */
			if (was)
				r = *was;
			else
				LUTFD_COPY(r.tenant, "-");
			r.revoked = r.revoked ?: e->revoked ?: now;
			r.clash = false;
			if (!was || !was->revoked)
				lutfd_log(
				    "cluster: API key %s deleted from lutf_keys: revoked here",
				    e->id);
			nt[nn++] = r;
			continue;
		}
		LUTFD_COPY(r.tenant, e->tenant);
		memcpy(r.hash, e->hash, HASH_BYTES);
		r.created = e->created;
		r.revoked = e->revoked;
		if (was && was->revoked && !r.revoked) {
			r = *was;
			lutfd_log(
			    "cluster: API key %s of tenant %s refused as active: it was revoked "
			    "(a revoked key never comes back)",
			    e->id, e->tenant);
		} else if (local && !r.revoked) {
			r.clash = true;
			if (!was || !was->clash)
				lutfd_log(
				    "cluster: API key %s of tenant %s refused: a local key of "
				    "tenant %s has this id (the local key is used)",
				    e->id, e->tenant, local->tenant);
		} else if (local && (!was || !was->revoked)) {
			lutfd_log(
			    "cluster: API key %s revoked in lutf_keys: the local key with this "
			    "id is refused too",
			    e->id);
		} else if (!was) {
			lutfd_log("cluster: API key %s of tenant %s added%s", e->id, e->tenant,
				  r.revoked ? " (revoked)" : "");
		} else if (r.revoked && !was->revoked) {
			lutfd_log("cluster: API key %s of tenant %s revoked", e->id, e->tenant);
		}
		nt[nn++] = r;
	}
	/* Tombstones stay; active keys gone from the bucket are dropped. */
	for (size_t i = 0; i < nold; i++) {
		if (find_in(nt, nn, old[i].id))
			continue;
		if (old[i].revoked && nn < 2 * MAX_KEYS)
			nt[nn++] = old[i];
		else if (!old[i].revoked && !old[i].clash)
			lutfd_log(
			    "cluster: API key %s of tenant %s is gone from lutf_keys: dropped",
			    old[i].id, old[i].tenant);
	}
	pthread_mutex_unlock(&ck_lock);
	/* Saved first, then in force: a key this node has used, or seen
	 * revoked, is in its cache, so a crash right after can neither lose a
	 * key that was answering nor bring back a revoked one. The save holds
	 * no lock (nt is this thread's; only this thread replaces the table
	 * and writes the file), so the main thread's checks never wait for the
	 * disk; a revocation waits for one fsync of a small file. */
	rc = save_file(".cluster", nt, nn, false);
	if (rc)
		lutfd_log("cluster: cannot save the cluster keys cache in %s: %s (in force until "
			  "restart)",
			  g_cfg.state_dir, strerror(-rc));
	pthread_mutex_lock(&ck_lock);
	ckeys = nt;
	nckeys = nn;
	pthread_mutex_unlock(&ck_lock);
	free(old);
	return rc;
}
#endif

uint32_t lutfd_keys_authorize_frame(void *ctx, struct lutf_conn *c, const struct lutf_wire_hdr *h,
				    const uint8_t *payload, char *msg, size_t cap)
{
	char tenant[LUTFD_NAME] = "", fn[LUTFD_NAME] = "";
	const char *key = NULL;
	size_t klen = 0;
	struct lutf_tlv_iter it;
	struct lutf_tlv tl;

	(void)ctx;
	/* Unix socket: local callers are trusted (a nats:// client's call is
	 * checked where NATS hands it to lutfd: forward.c). */
	if (h->opcode != LUTF_OP_INVOKE || !g_cfg.require_keys || !lutf_conn_is_tcp(c))
		return LUTF_STATUS_OK;
	lutf_tlv_iter_init(&it, payload, h->length);
	while (lutf_tlv_next(&it, &tl)) {
		if (tl.tag == LUTF_TAG_TENANT && !lutf_tlv_str(&tl, tenant, sizeof(tenant)))
			tenant[0] = 0;
		else if (tl.tag == LUTF_TAG_FUNCTION && !lutf_tlv_str(&tl, fn, sizeof(fn)))
			fn[0] = 0;
		else if (tl.tag == LUTF_TAG_KEY) {
			key = (const char *)tl.val;
			klen = tl.len;
		}
	}
	if (it.bad || !tenant[0] || !fn[0])
		return LUTF_STATUS_OK; /* the invoke path answers MALFORMED */
	if (lutfd_keys_check(tenant, fn, key, klen, msg, cap) == LUTFD_AUTH_OK)
		return LUTF_STATUS_OK;
	return LUTF_STATUS_FORBIDDEN;
}

enum lutfd_auth lutfd_keys_admin_check(const char *authorization, char *msg, size_t cap)
{
	const char *tok;
	uint8_t h[HASH_BYTES];

	if (!authorization || strncasecmp(authorization, "Bearer ", 7)) {
		snprintf(msg, cap,
			 "the admin token is required (Authorization: Bearer <token>; the token "
			 "is in %s)",
			 g_cfg.admin_token_file[0] ? g_cfg.admin_token_file
						   : "<state_dir>/admin.token");
		return LUTFD_AUTH_MISSING;
	}
	tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	hash_of(tok, strlen(tok), h);
	if (!admin_set || sodium_memcmp(h, admin_hash, HASH_BYTES)) {
		snprintf(msg, cap, "wrong admin token");
		return LUTFD_AUTH_DENIED;
	}
	return LUTFD_AUTH_OK;
}

/* ---- control calls ---- */

static void reply_status(struct lutf_conn *c, uint64_t id, uint32_t st, const char *msg)
{
	lutf_conn_reply_status(c, id, st, msg);
}

static void send_buf(struct lutf_conn *c, struct lutf_buf *b)
{
	if (!b->failed)
		lutf_conn_send(c, b->data, b->len);
	lutf_buf_free(b);
}

/* TENANT and KEY_ID of a request ("" when absent); false: a field is bad. */
static bool read_fields(const struct lutf_wire_hdr *h, const uint8_t *payload, char *tenant,
			char *id)
{
	struct lutf_tlv_iter it;
	struct lutf_tlv tl;
	bool ok = true;

	lutf_tlv_iter_init(&it, payload, h->length);
	while (ok && lutf_tlv_next(&it, &tl)) {
		if (tl.tag == LUTF_TAG_TENANT)
			ok = lutf_tlv_str(&tl, tenant, LUTFD_NAME);
		else if (tl.tag == LUTF_TAG_KEY_ID)
			ok = lutf_tlv_str(&tl, id, ID_HEX + 1);
	}
	return ok && !it.bad;
}

static void key_create(struct lutf_conn *c, const struct lutf_wire_hdr *h, const char *tenant)
{
	uint8_t idb[ID_BYTES], secret[SECRET_BYTES];
	char key[KEY_LEN + 1], msg[PATH_MAX + 200];
	struct key_rec k = {0}, *p;
	struct lutf_buf b;
	size_t fo;
	int rc;

	if (!lutfd_tenant_find(tenant)) {
		snprintf(msg, sizeof(msg), "no tenant %s (deploy it first)", tenant);
		reply_status(c, h->request_id, LUTF_STATUS_UNKNOWN_FUNCTION, msg);
		return;
	}
	if (nkeys >= MAX_KEYS) {
		snprintf(msg, sizeof(msg), "the key store holds its limit of %d keys", MAX_KEYS);
		reply_status(c, h->request_id, LUTF_STATUS_OVERLOADED, msg);
		return;
	}
	do {
		randombytes_buf(idb, sizeof(idb));
		sodium_bin2hex(k.id, sizeof(k.id), idb, sizeof(idb));
	} while (key_by_id(k.id) || cluster_key(k.id, &(struct key_rec){0}));
	randombytes_buf(secret, sizeof(secret));
	hash_of(secret, sizeof(secret), k.hash);
	memcpy(key, KEY_PREFIX, sizeof(KEY_PREFIX) - 1);
	memcpy(key + sizeof(KEY_PREFIX) - 1, k.id, ID_HEX);
	key[sizeof(KEY_PREFIX) - 1 + ID_HEX] = '_';
	sodium_bin2hex(key + sizeof(KEY_PREFIX) + ID_HEX, SECRET_HEX + 1, secret, sizeof(secret));
	sodium_memzero(secret, sizeof(secret));
	LUTFD_COPY(k.tenant, tenant);
	k.created = (uint64_t)time(NULL);
	pthread_mutex_lock(&ck_lock); /* realloc may move what the keys thread reads */
	p = realloc(keys, (nkeys + 1) * sizeof(*p));
	if (p)
		keys = p;
	pthread_mutex_unlock(&ck_lock);
	if (!p) {
		reply_status(c, h->request_id, LUTF_STATUS_OVERLOADED, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&ck_lock); /* the keys thread reads local ids */
	keys[nkeys++] = k;
	pthread_mutex_unlock(&ck_lock);
	rc = save();
	if (rc) {
		nkeys--;
		snprintf(msg, sizeof(msg), "key not created: cannot save the key store in %s: %s",
			 g_cfg.state_dir, strerror(-rc));
		lutfd_log("%s", msg);
		reply_status(c, h->request_id, NOT_SAVED, msg);
		goto out;
	}
	lutfd_log("tenant %s: API key %s created", tenant, k.id);
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_REPLY, LUTF_STATUS_OK, h->request_id);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_KEY_ID, k.id);
	lutf_tlv_put_u64(&b, LUTF_TAG_CREATED, k.created);
	lutf_tlv_put_str(&b, LUTF_TAG_KEY, key);
	lutf_frame_end(&b, fo);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len); /* copies: the secret is wiped below */
	if (b.data)
		sodium_memzero(b.data, b.cap);
	lutf_buf_free(&b);
out:
	sodium_memzero(key, sizeof(key));
}

static void key_list(struct lutf_conn *c, const struct lutf_wire_hdr *h, const char *tenant)
{
	struct lutf_buf b;
	size_t fo;

	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_REPLY, LUTF_STATUS_OK, h->request_id);
	for (size_t i = 0; i < nkeys; i++) {
		size_t r;

		if (tenant[0] && strcmp(keys[i].tenant, tenant))
			continue;
		r = lutf_tlv_begin(&b, LUTF_TAG_RECORD);
		lutf_tlv_put_str(&b, LUTF_TAG_TENANT, keys[i].tenant);
		lutf_tlv_put_str(&b, LUTF_TAG_KEY_ID, keys[i].id);
		lutf_tlv_put_u64(&b, LUTF_TAG_CREATED, keys[i].created);
		lutf_tlv_put_str(&b, LUTF_TAG_STATE, keys[i].revoked ? "revoked" : "active");
		if (keys[i].revoked)
			lutf_tlv_put_u64(&b, LUTF_TAG_REVOKED, keys[i].revoked);
		lutf_tlv_end(&b, r);
	}
	lutf_frame_end(&b, fo);
	send_buf(c, &b);
}

static void key_revoke(struct lutf_conn *c, const struct lutf_wire_hdr *h, const char *tenant,
		       const char *id)
{
	struct key_rec *k = id[0] ? key_by_id(id) : NULL;
	char msg[PATH_MAX + 200];
	int rc;

	struct key_rec ck;

	if ((!k || strcmp(k->tenant, tenant)) && cluster_key(id, &ck) &&
	    !strcmp(ck.tenant, tenant)) {
		snprintf(msg, sizeof(msg),
			 "API key %s is a cluster key: revoke it with lutfctl --cluster URL key "
			 "revoke %s %s",
			 id, tenant, id);
		reply_status(c, h->request_id, LUTF_STATUS_UNKNOWN_FUNCTION, msg);
		return;
	}
	if (!k || strcmp(k->tenant, tenant)) {
		snprintf(msg, sizeof(msg), "tenant %s has no API key %s", tenant, id);
		reply_status(c, h->request_id, LUTF_STATUS_UNKNOWN_FUNCTION, msg);
		return;
	}
	if (k->revoked) {
		reply_status(c, h->request_id, LUTF_STATUS_OK, NULL);
		return;
	}
	k->revoked = (uint64_t)time(NULL);
	rc = save();
	if (rc) {
		k->revoked = 0;
		snprintf(msg, sizeof(msg), "key not revoked: cannot save the key store in %s: %s",
			 g_cfg.state_dir, strerror(-rc));
		lutfd_log("%s", msg);
		reply_status(c, h->request_id, NOT_SAVED, msg);
		return;
	}
	lutfd_log("tenant %s: API key %s revoked", tenant, id);
	reply_status(c, h->request_id, LUTF_STATUS_OK, NULL);
}

void lutfd_keys_control(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload)
{
	char tenant[LUTFD_NAME] = "", id[ID_HEX + 1] = "";

	if (!read_fields(h, payload, tenant, id)) {
		reply_status(c, h->request_id, LUTF_STATUS_MALFORMED,
			     "a TENANT or KEY_ID field is bad (KEY_ID: 16 hex digits)");
		return;
	}
	if (tenant[0] && !lutf_name_valid(tenant)) {
		reply_status(c, h->request_id, LUTF_STATUS_MALFORMED,
			     "bad tenant name (want [a-z0-9][a-z0-9_-]{0,62})");
		return;
	}
	if (h->opcode == LUTF_OP_KEY_LIST) {
		key_list(c, h, tenant);
		return;
	}
	if (!tenant[0]) {
		reply_status(c, h->request_id, LUTF_STATUS_MALFORMED, "TENANT is required");
		return;
	}
	if (h->opcode == LUTF_OP_KEY_CREATE)
		key_create(c, h, tenant);
	else if (!id[0])
		reply_status(c, h->request_id, LUTF_STATUS_MALFORMED, "KEY_ID is required");
	else
		key_revoke(c, h, tenant, id);
}
