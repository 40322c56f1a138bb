/* SPDX-License-Identifier: MIT */
/*
 * The node side of the cluster registry, inside lutfd: one thread watches
 * lutf_fns and converges lutfd to it through lutfd's own control socket (so
 * deploys take the very path lutfctl's do, and lutfd's loop never waits on
 * NATS), and beats this node's heartbeat in lutf_nodes. Invariant: only
 * functions this node applied from the registry (cluster.applied) are ever
 * changed or removed by it; an artifact is loaded only after its digest
 * matched; a malformed manifest is logged and skipped.
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

#include <lutf/client.h>
#include <lutf/protocol.h>

#include "cluster_int.h"
#include "cluster_keys.h"

#define MAX_FNS 256 /* functions this node tracks; more are logged and skipped */

struct entry {
	char key[2 * LUTF_CLUSTER_NAME + 2];
	struct lutf_cluster_manifest m;
	uint64_t rev;
};

struct table {
	struct entry *e;
	size_t n;
};

static struct {
	struct lutf_cluster_node_cfg cfg;
	char url[1024], creds[256], token[256], node[LUTF_CLUSTER_NAME], sock[256], state[1024],
	    version[32], data[256];
	struct lutf_cluster *c;
	struct lutf_client *ctl;
	struct table want, next, applied; /* registry, registry being re-read, lutfd */
	char bad_sha[65];		  /* last artifact refused: not fetched again */
	uint64_t bad_rev;
	char live[MAX_FNS][LUTF_CLUSTER_NAME]; /* nodes with a heartbeat, sorted, self included */
	size_t nlive;
	pthread_t thread;
	bool running;
	atomic_bool stop; /* relaxed: a flag polled every 200 ms, nothing else hangs on it */
} N;

/* Other threads of lutfd (its HTTP /async routes) use N.c under the read
 * side; node_stop closes it under the write side. */
static pthread_rwlock_t conn_lock = PTHREAD_RWLOCK_INITIALIZER;

struct lutf_cluster *lutf_cluster_node_get(void)
{
	pthread_rwlock_rdlock(&conn_lock);
	if (N.c && N.running)
		return N.c;
	pthread_rwlock_unlock(&conn_lock);
	return NULL;
}

void lutf_cluster_node_put(void)
{
	pthread_rwlock_unlock(&conn_lock);
}

static struct entry *find(struct table *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->e[i].key, key))
			return &t->e[i];
	return NULL;
}

static int set(struct table *t, const char *key, const struct lutf_cluster_manifest *m,
	       uint64_t rev)
{
	struct entry *e = find(t, key);

	if (!e) {
		if (t->n >= MAX_FNS)
			return -ENOSPC;
		if (!t->e && !(t->e = calloc(MAX_FNS, sizeof(*t->e))))
			return -ENOMEM;
		e = &t->e[t->n++];
		snprintf(e->key, sizeof(e->key), "%s", key);
	}
	e->m = *m;
	e->rev = rev;
	return 0;
}

static void unset(struct table *t, const char *key)
{
	struct entry *e = find(t, key);

	if (e)
		*e = t->e[--t->n];
}

/* ---- cluster.applied: what this node took from the registry ---- */

static void applied_path(char *p, size_t cap)
{
	snprintf(p, cap, "%s/cluster.applied", N.state);
}

static void applied_save(void)
{
	char p[1100], tmp[1110];
	FILE *fp;

	applied_path(p, sizeof(p));
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	fp = fopen(tmp, "w");
	if (!fp) {
		N.cfg.log("cluster: cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	for (size_t i = 0; i < N.applied.n; i++) {
		char buf[4096];
		int n = lutf_cluster_manifest_encode(&N.applied.e[i].m, buf, sizeof(buf));

		/* One block per function: its revision, then its manifest. */
		if (n > 0)
			fprintf(fp, "rev=%" PRIu64 "\n%s\n", N.applied.e[i].rev, buf);
	}
	if (fflush(fp) || fsync(fileno(fp)) || fclose(fp) || rename(tmp, p))
		N.cfg.log("cluster: cannot save %s: %s", p, strerror(errno));
}

static void applied_load(void)
{
	char p[1100], line[512], block[4096], msg[200];
	size_t len = 0;
	uint64_t rev = 0;
	FILE *fp;

	applied_path(p, sizeof(p));
	fp = fopen(p, "r");
	if (!fp)
		return;
	for (;;) {
		bool end = !fgets(line, sizeof(line), fp);

		if (end || line[0] == '\n') {
			struct lutf_cluster_manifest m;
			char key[2 * LUTF_CLUSTER_NAME + 2];

			if (len &&
			    !lutf_cluster_manifest_decode(block, len, NULL, &m, msg, sizeof(msg))) {
				snprintf(key, sizeof(key), "%s.%s", m.tenant, m.function);
				set(&N.applied, key, &m, rev);
			} else if (len) {
				N.cfg.log("cluster: %s: skipped a bad entry: %s", p, msg);
			}
			len = 0;
			if (end)
				break;
			continue;
		}
		if (!strncmp(line, "rev=", 4)) {
			rev = strtoull(line + 4, NULL, 10);
			continue;
		}
		if (len + strlen(line) < sizeof(block)) {
			memcpy(block + len, line, strlen(line));
			len += strlen(line);
		}
	}
	fclose(fp);
}

/* ---- acting on lutfd (control socket) ---- */

static int ctl(void)
{
	int err;

	if (N.ctl)
		return 0;
	err = lutf_client_connect(N.sock, &N.ctl);
	if (!err)
		lutf_client_set_timeout(N.ctl, 30000, 1000);
	return err;
}

static void ctl_drop(void)
{
	lutf_client_close(N.ctl);
	N.ctl = NULL;
}

/* Report a control call; returns 0 when lutfd said OK (or ok_status). */
static int ctl_done(const char *what, const char *key, int err, struct lutf_client_reply *rep,
		    uint32_t ok_status)
{
	if (err) {
		N.cfg.log("cluster: %s %s: control socket: %s", what, key, strerror(-err));
		ctl_drop();
	} else if (rep->status != LUTF_STATUS_OK && rep->status != ok_status) {
		N.cfg.log("cluster: %s %s: lutfd answered status %" PRIu32 ": %s", what, key,
			  rep->status, rep->error ? rep->error : "");
		err = -EIO;
	}
	lutf_client_reply_release(rep);
	return err;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

/* Deploy one app: the registry's functions of it, all of digest m0->sha256. */
static int deploy(struct entry *fns, size_t n)
{
	const struct lutf_cluster_manifest *m0 = &fns[0].m;
	struct lutf_client_export ex[MAX_FNS];
	struct lutf_client_deploy d = {0};
	struct lutf_client_reply rep = {0};
	char msg[400], key[2 * LUTF_CLUSTER_NAME + 2];
	void *so = NULL;
	size_t len = 0;
	uint64_t t0 = lutf_cluster_now_ms();
	int err;

	snprintf(key, sizeof(key), "%s/%s", m0->tenant, m0->app);
	if (!strcmp(N.bad_sha, m0->sha256) && N.bad_rev == fns[0].rev)
		return -EBADMSG; /* refused already: logged then */
	err = lutf_cluster_artifact_get(N.c, m0, &so, &len, msg, sizeof(msg));
	if (err) {
		N.cfg.log("cluster: app %s refused: %s", key, msg);
		if (err == -EBADMSG) {
			memcpy(N.bad_sha, m0->sha256, 65);
			N.bad_rev = fns[0].rev;
		}
		return err;
	}
	N.cfg.log("cluster: fetched %s artifact (%zu bytes) in %" PRIu64 " ms", key, len,
		  lutf_cluster_now_ms() - t0);
	for (size_t i = 0; i < n; i++) {
		ex[i].function = fns[i].m.function;
		ex[i].symbol = fns[i].m.symbol;
	}
	d.tenant = m0->tenant;
	d.app = m0->app;
	d.so_data = so;
	d.so_len = len;
	d.exports = ex;
	d.n_exports = n;
	d.tier = m0->tier[0] ? m0->tier : NULL;
	d.timeout_ms = m0->timeout_ms;
	d.memory_mb = m0->memory_mb;
	d.max_concurrency = m0->max_concurrency;
	d.is_public = m0->is_public;
	err = ctl();
	if (!err)
		err = lutf_client_deploy(N.ctl, &d, &rep);
	free(so);
	err = ctl_done("deploy", key, err, &rep, LUTF_STATUS_OK);
	if (!err)
		N.cfg.log("cluster: deployed %s (%zu functions, sha256 %.12s)", key, n, m0->sha256);
	return err;
}

static bool same_code(const struct lutf_cluster_manifest *a, const struct lutf_cluster_manifest *b)
{
	return !strcmp(a->symbol, b->symbol) && !strcmp(a->sha256, b->sha256) &&
	       !strcmp(a->tier, b->tier) && a->timeout_ms == b->timeout_ms &&
	       a->memory_mb == b->memory_mb && a->max_concurrency == b->max_concurrency &&
	       a->is_public == b->is_public;
}

/* Converge one app (tenant, app) to the registry. Returns true when the
 * applied table changed. */
static bool converge_app(const char *tenant, const char *app)
{
	struct entry d[MAX_FNS], a[MAX_FNS];
	size_t nd = 0, na = 0, keep = 0;
	uint64_t top = 0;
	const char *sha = NULL;
	bool redeploy, changed = false;

	for (size_t i = 0; i < N.want.n; i++) {
		struct entry *e = &N.want.e[i];

		if (strcmp(e->m.tenant, tenant) || strcmp(e->m.app, app))
			continue;
		if (!lutf_cluster_placed(e->key, e->m.replicas, N.node, N.live, N.nlive))
			continue; /* placed on other nodes: served from there (forwarding) */
		d[nd++] = *e;
		if (e->rev > top) {
			top = e->rev;
			sha = e->m.sha256;
		}
	}
	/* Mid-update, functions of one app may name two digests: the newest wins. */
	for (size_t i = 0; i < nd; i++)
		if (!strcmp(d[i].m.sha256, sha))
			d[keep++] = d[i];
	nd = keep;
	for (size_t i = 0; i < N.applied.n; i++)
		if (!strcmp(N.applied.e[i].m.tenant, tenant) && !strcmp(N.applied.e[i].m.app, app))
			a[na++] = N.applied.e[i];
	qsort(d, nd, sizeof(d[0]), cmp_entry);
	qsort(a, na, sizeof(a[0]), cmp_entry);
	if (!nd) {
		for (size_t i = 0; i < na; i++) {
			struct lutf_client_reply rep = {0};
			int err = ctl();

			if (!err)
				err = lutf_client_delete(N.ctl, tenant, a[i].m.function, &rep);
			if (!ctl_done("delete", a[i].key, err, &rep,
				      LUTF_STATUS_UNKNOWN_FUNCTION)) {
				unset(&N.applied, a[i].key);
				N.cfg.log("cluster: deleted %s", a[i].key);
				changed = true;
			}
		}
		return changed;
	}
	redeploy = nd != na;
	for (size_t i = 0; !redeploy && i < nd; i++)
		redeploy = strcmp(d[i].key, a[i].key) || !same_code(&d[i].m, &a[i].m);
	if (redeploy) {
		if (deploy(d, nd))
			return false;
		for (size_t i = 0; i < na; i++)
			unset(&N.applied, a[i].key);
		for (size_t i = 0; i < nd; i++) {
			struct lutf_cluster_manifest m = d[i].m;
			struct entry *old = NULL;

			for (size_t k = 0; k < na; k++)
				if (!strcmp(a[k].key, d[i].key))
					old = &a[k];
			m.paused = old ? old->m.paused : false; /* a deploy keeps pauses */
			set(&N.applied, d[i].key, &m, d[i].rev);
		}
		changed = true;
	}
	for (size_t i = 0; i < nd; i++) {
		struct entry *e = find(&N.applied, d[i].key);
		struct lutf_client_reply rep = {0};
		int err;

		if (!e)
			continue;
		if (e->m.paused != d[i].m.paused) {
			err = ctl();
			if (!err)
				err = (d[i].m.paused ? lutf_client_pause : lutf_client_resume)(
				    N.ctl, tenant, d[i].m.function, &rep);
			if (ctl_done(d[i].m.paused ? "pause" : "resume", d[i].key, err, &rep,
				     LUTF_STATUS_OK))
				continue;
			N.cfg.log("cluster: %s %s", d[i].m.paused ? "paused" : "resumed", d[i].key);
			e->m.paused = d[i].m.paused;
			changed = true;
		}
		if (e->rev != d[i].rev) {
			e->rev = d[i].rev;
			changed = true;
		}
	}
	return changed;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void live_add(void *arg, const char *key, const void *val, size_t len, uint64_t rev)
{
	(void)arg;
	(void)val;
	(void)len;
	(void)rev;
	if (N.nlive < MAX_FNS && strcmp(key, N.node))
		snprintf(N.live[N.nlive++], LUTF_CLUSTER_NAME, "%s", key);
}

/* Read the live nodes (heartbeats younger than the bucket's TTL). Returns
 * true when the set changed (placements may have moved). */
static bool live_refresh(void)
{
	char old[MAX_FNS][LUTF_CLUSTER_NAME], msg[200];
	size_t nold = N.nlive;

	memcpy(old, N.live, sizeof(old));
	N.nlive = 0;
	snprintf(N.live[N.nlive++], LUTF_CLUSTER_NAME, "%s", N.node);
	if (lutf_cluster_kv_each(N.c, LUTF_CLUSTER_NODES, live_add, NULL, msg, sizeof(msg))) {
		memcpy(N.live, old, sizeof(old)); /* keep what we knew */
		N.nlive = nold;
		return false;
	}
	qsort(N.live, N.nlive, sizeof(N.live[0]), cmp_name);
	return N.nlive != nold || memcmp(old, N.live, nold * sizeof(old[0]));
}

static void converge(void)
{
	char done[MAX_FNS][2 * LUTF_CLUSTER_NAME + 2];
	size_t ndone = 0;
	bool changed = false;
	struct table *ts[2] = {&N.want, &N.applied};

	for (int t = 0; t < 2; t++) {
		for (size_t i = 0; i < ts[t]->n; i++) {
			const struct lutf_cluster_manifest *m = &ts[t]->e[i].m;
			char ta[2 * LUTF_CLUSTER_NAME + 2];
			bool seen = false;

			snprintf(ta, sizeof(ta), "%s/%s", m->tenant, m->app);
			for (size_t k = 0; k < ndone && !seen; k++)
				seen = !strcmp(done[k], ta);
			if (seen || ndone >= MAX_FNS)
				continue;
			memcpy(done[ndone++], ta, sizeof(ta));
			/* converge_app may reorder applied: copy the names first */
			{
				char tenant[LUTF_CLUSTER_NAME], app[LUTF_CLUSTER_NAME];

				memcpy(tenant, m->tenant, sizeof(tenant));
				memcpy(app, m->app, sizeof(app));
				changed |= converge_app(tenant, app);
			}
		}
	}
	if (changed)
		applied_save();
}

/* ---- the registry, as the watcher delivers it ---- */

static void take(struct table *t, kvEntry *e)
{
	const char *key = kvEntry_Key(e);
	struct lutf_cluster_manifest m;
	char msg[300];

	if (kvEntry_Operation(e) != kvOp_Put) {
		unset(t, key);
		return;
	}
	if (lutf_cluster_manifest_decode(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), key, &m,
					 msg, sizeof(msg))) {
		N.cfg.log("cluster: malformed manifest for key '%.130s' (revision %" PRIu64
			  "), skipped: %s",
			  key, kvEntry_Revision(e), msg);
		return;
	}
	if (t == &N.want)
		N.cfg.log("cluster: registry update %s revision %" PRIu64, key,
			  kvEntry_Revision(e));
	if (set(t, key, &m, kvEntry_Revision(e)))
		N.cfg.log("cluster: more than %d functions: %s skipped", MAX_FNS, key);
}

/* The registry's MAX_CONCURRENCY of each function, for the async workers. */
static void async_limits(void)
{
	static struct lutf_cluster_async_limit lim[MAX_FNS];
	size_t n = 0;

	for (size_t i = 0; i < N.want.n && n < MAX_FNS; i++) {
		const struct lutf_cluster_manifest *m = &N.want.e[i].m;

		memcpy(lim[n].tenant, m->tenant, sizeof(lim[n].tenant));
		memcpy(lim[n].fn, m->function, sizeof(lim[n].fn));
		lim[n++].max_concurrency = m->max_concurrency;
	}
	lutf_cluster_async_limits(lim, n);
}

/* Serve, for other nodes, every function this node's lutfd lists. */
static void serve_local(void)
{
	static char keys[MAX_FNS][2 * LUTF_CLUSTER_NAME + 2];
	struct lutf_client_reply rep = {0};
	size_t n = 0;
	int err = ctl();

	if (!err)
		err = lutf_client_list(N.ctl, NULL, &rep);
	if (err) {
		ctl_drop();
		return;
	}
	for (size_t i = 0; i < rep.n_records && n < MAX_FNS; i++) {
		const struct lutf_client_field *t =
		    lutf_client_record_get(&rep.records[i], "tenant");
		const struct lutf_client_field *f =
		    lutf_client_record_get(&rep.records[i], "function");

		if (t && f && t->str && f->str)
			snprintf(keys[n++], sizeof(keys[0]), "%s.%s", t->str, f->str);
	}
	lutf_client_reply_release(&rep);
	lutf_cluster_inv_sync(keys, n);
}

static void heartbeat(void)
{
	char buf[8192];
	size_t off;
	kvStore *kv = lutf_cluster_kv(N.c, LUTF_CLUSTER_NODES);

	off = (size_t)snprintf(buf, sizeof(buf), "version=%s\nfunctions=%zu\n", N.version,
			       N.applied.n);
	/* Each line fits in the 200 bytes kept free: off stays inside buf. */
	for (size_t i = 0; i < N.applied.n && off < sizeof(buf) - 200; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "applied=%s@%" PRIu64 "\n",
					N.applied.e[i].key, N.applied.e[i].rev);
	if (off > sizeof(buf))
		off = sizeof(buf);
	if (kv)
		kvStore_Put(NULL, kv, N.node, buf, (int)off);
}

static void *node_main(void *arg)
{
	kvWatcher *w = NULL;
	bool initial = false, said = false;
	uint64_t last_beat = 0, seen_reconnects = 0;
	char msg[300];

	(void)arg;
	while (!atomic_load_explicit(&N.stop, memory_order_relaxed)) {
		kvEntry *e = NULL;
		natsStatus s;
		int err;

		if (!w) {
			err = lutf_cluster_ready(N.c, msg, sizeof(msg));
			if (!err && kvStore_WatchAll(&w, lutf_cluster_kv(N.c, LUTF_CLUSTER_FNS),
						     NULL) != NATS_OK) {
				snprintf(msg, sizeof(msg), "cannot watch %s", LUTF_CLUSTER_FNS);
				err = -EIO;
			}
			if (err) {
				if (!said)
					N.cfg.log(
					    "cluster: waiting for NATS (%s); serving the local "
					    "registry",
					    msg);
				said = true;
				usleep(250 * 1000);
				continue;
			}
			said = false;
			initial = true;
			heartbeat(); /* others place with this node from now on */
			live_refresh();
			if ((err = lutf_cluster_inv_open(N.c, &N.cfg)))
				N.cfg.log("cluster: no forwarding: %s", strerror(-err));
			lutf_cluster_async_open(N.c, &N.cfg); /* logs its own failure */
			N.next.n = 0;
			seen_reconnects = lutf_cluster_reconnects(N.c);
		}
		s = kvWatcher_Next(&e, w, 200);
		if (s == NATS_OK && !e && initial) {
			/* Every current value is in: the registry as it is now. */
			struct table t = N.want;

			N.want = N.next;
			N.next = t;
			initial = false;
			converge();
			serve_local();
			async_limits();
			N.cfg.log("cluster: in step with the registry (%zu functions)", N.want.n);
		} else if (s == NATS_OK && e) {
			take(initial ? &N.next : &N.want, e);
			kvEntry_Destroy(e);
			if (!initial) {
				converge();
				serve_local();
				async_limits();
			}
		} else if (s != NATS_OK && s != NATS_TIMEOUT) {
			kvWatcher_Destroy(w);
			w = NULL;
			continue;
		}
		/* Back from a cut: read the registry again (changes made meanwhile). */
		if (lutf_cluster_reconnects(N.c) != seen_reconnects) {
			N.cfg.log("cluster: NATS reconnected; reading the registry again");
			kvWatcher_Destroy(w);
			w = NULL;
			continue;
		}
		if (lutf_cluster_now_ms() - last_beat >= 1000 &&
		    natsConnection_Status(lutf_cluster_conn(N.c)) == NATS_CONN_STATUS_CONNECTED) {
			heartbeat();
			if (!initial && live_refresh()) {
				N.cfg.log("cluster: %zu live nodes; placing again", N.nlive);
				converge();
			}
			serve_local(); /* local deploys too */
			last_beat = lutf_cluster_now_ms();
		}
	}
	kvWatcher_Destroy(w);
	lutf_cluster_async_close();
	lutf_cluster_inv_close();
	return NULL;
}

int lutf_cluster_node_start(const struct lutf_cluster_node_cfg *cfg)
{
	char msg[300];
	int err;

	N.cfg = *cfg;
	snprintf(N.url, sizeof(N.url), "%s", cfg->nats.url);
	snprintf(N.creds, sizeof(N.creds), "%s", cfg->nats.creds ? cfg->nats.creds : "");
	snprintf(N.token, sizeof(N.token), "%s", cfg->nats.token ? cfg->nats.token : "");
	snprintf(N.node, sizeof(N.node), "%s", cfg->node);
	snprintf(N.sock, sizeof(N.sock), "unix://%s", cfg->control_sock);
	snprintf(N.state, sizeof(N.state), "%s", cfg->state_dir);
	snprintf(N.version, sizeof(N.version), "%s", cfg->version ? cfg->version : "?");
	snprintf(N.data, sizeof(N.data), "%s", cfg->data_sock ? cfg->data_sock : "");
	N.cfg.data_sock = cfg->data_sock ? N.data : NULL;
	N.cfg.nats.url = N.url;
	N.cfg.nats.creds = N.creds;
	N.cfg.nats.token = N.token;
	N.cfg.nats.name = N.node;
	N.cfg.nats.retry = true;
	N.cfg.nats.log = cfg->log; /* the redial of a first connect that never came up */
	applied_load();
	err = lutf_cluster_open(&N.cfg.nats, &N.c, msg, sizeof(msg));
	if (err) {
		N.cfg.log("cluster: %s", msg);
		return err;
	}
	atomic_store_explicit(&N.stop, false, memory_order_relaxed);
	err = -pthread_create(&N.thread, NULL, node_main, NULL);
	if (err) {
		lutf_cluster_close(N.c);
		N.c = NULL;
		return err;
	}
	pthread_rwlock_wrlock(&conn_lock);
	N.running = true;
	pthread_rwlock_unlock(&conn_lock);
	if ((err = lutf_cluster_keys_start(N.c, &N.cfg))) /* lutf_keys (keys.c) */
		N.cfg.log("cluster: keys are not watched: %s", strerror(-err));
	N.cfg.log("cluster: node %s on %s", N.node, N.url);
	return 0;
}

void lutf_cluster_node_stop(void)
{
	struct timespec until;

	if (!N.running)
		return;
	atomic_store_explicit(&N.stop, true, memory_order_relaxed);
	lutf_cluster_keys_stop();	   /* before the connection it uses closes */
	pthread_rwlock_wrlock(&conn_lock); /* no caller of lutf_cluster_node_get holds it now */
	N.running = false;
	pthread_rwlock_unlock(&conn_lock);
	/* A control call in progress waits for the loop, which has stopped:
	 * bounded, then the thread is left to the process's exit. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	N.running = false;
	if (pthread_timedjoin_np(N.thread, NULL, &until)) {
		pthread_detach(N.thread);
		return;
	}
	ctl_drop();
	pthread_rwlock_wrlock(&conn_lock);
	lutf_cluster_close(N.c);
	N.c = NULL;
	pthread_rwlock_unlock(&conn_lock);
	free(N.want.e);
	free(N.next.e);
	free(N.applied.e);
	memset(&N.want, 0, sizeof(N.want));
	memset(&N.next, 0, sizeof(N.next));
	memset(&N.applied, 0, sizeof(N.applied));
}
