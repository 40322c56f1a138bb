/* SPDX-License-Identifier: MIT */
/*
 * Registry and app store under the state folder. Invariant: what is on disk
 * is always a whole registry (written to a temporary file, fsynced, renamed,
 * folder fsynced) and app files are never overwritten: a version is a new file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isolation.h"
#include "lutfd.h"

#define REGISTRY "registry"
#define REGISTRY_MAGIC "# lutfd registry, format 1"

/* Worker 0 of a tenant: its other workers (workers.c) carry its name too. */
struct lutfd_tenant *lutfd_tenant_find(const char *name)
{
	for (size_t i = 0; i < g_state.n; i++)
		if (!g_state.t[i]->primary && !strcmp(g_state.t[i]->name, name))
			return g_state.t[i];
	return NULL;
}

struct lutfd_tenant *lutfd_tenant_get(const char *name)
{
	struct lutfd_tenant *t = lutfd_tenant_find(name), **p;

	if (t)
		return t;
	if (lutfd_tenants_count() >= g_cfg.max_tenants)
		return NULL;
	p = realloc(g_state.t, (g_state.n + 1) * sizeof(*p));
	if (!p)
		return NULL;
	g_state.t = p;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->memfd = t->ctl = t->logfd = -1;
	t->wk[0] = t;
	t->nwk = 1;
	g_state.t[g_state.n++] = t;
	return t;
}

struct lutfd_app *lutfd_app_find(struct lutfd_tenant *t, const char *app)
{
	for (size_t i = 0; i < t->napps; i++)
		if (!strcmp(t->apps[i].name, app))
			return &t->apps[i];
	return NULL;
}

struct lutfd_fn *lutfd_fn_find(struct lutfd_tenant *t, const char *fn)
{
	for (size_t i = 0; i < t->nfns; i++)
		if (!strcmp(t->fns[i]->name, fn))
			return t->fns[i];
	return NULL;
}

static void fn_free(struct lutfd_fn *f)
{
	for (size_t i = 0; f->config && f->config[i]; i++)
		free(f->config[i]);
	free(f->config);
	free(f);
}

void lutfd_fn_remove(struct lutfd_tenant *t, struct lutfd_fn *f)
{
	for (size_t i = 0; i < t->nfns; i++) {
		if (t->fns[i] != f)
			continue;
		memmove(&t->fns[i], &t->fns[i + 1], (t->nfns - i - 1) * sizeof(t->fns[0]));
		t->nfns--;
		fn_free(f);
		return;
	}
}

static void hex_put(FILE *fp, const char *s)
{
	if (!*s)
		fputc('-', fp);
	for (; *s; s++)
		fprintf(fp, "%02x", (unsigned char)*s);
}

static char *hex_get(const char *h)
{
	size_t n = strlen(h);
	char *s;

	if (!strcmp(h, "-"))
		return strdup("");
	if (n % 2)
		return NULL;
	s = malloc(n / 2 + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(h + 2 * i, "%2x", &v) != 1 || !v) {
			free(s);
			return NULL;
		}
		s[i] = (char)v;
	}
	s[n / 2] = 0;
	return s;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

/* The registry text of g_state (main thread), leaving out tenants being
 * removed and functions being deleted. Returns 0 or -errno. */
static int serialize(char **buf, size_t *len)
{
	FILE *fp = open_memstream(buf, len);

	if (!fp)
		return -errno;
	fprintf(fp, REGISTRY_MAGIC "\n");
	for (size_t i = 0; i < g_state.n; i++) {
		struct lutfd_tenant *t = g_state.t[i];

		if (t->removing || t->primary)
			continue;
		fprintf(fp, "tenant %s %u %s\n", t->name, t->uid, t->tier[0] ? t->tier : "-");
		/* Only when a deploy named it: older lutfds never see the line. */
		if (t->workers)
			fprintf(fp, "workers %s %u\n", t->name, t->workers);
		for (size_t a = 0; a < t->napps; a++) {
			struct lutfd_app *p = &t->apps[a];

			fprintf(fp, "app %s %s %llu %s %u %u %u\n", t->name, p->name,
				(unsigned long long)p->version, p->tier[0] ? p->tier : "-",
				p->timeout_ms, p->memory_mb, p->max_concurrency);
		}
		for (size_t f = 0; f < t->nfns; f++) {
			struct lutfd_fn *fn = t->fns[f];

			if (fn->deleting)
				continue;
			fprintf(fp, "fn %s %s %s %s %s\n", t->name, fn->app, fn->name, fn->symbol,
				fn->paused ? "paused" : "active");
			for (size_t k = 0; k < fn->nconfig; k++) {
				fprintf(fp, "config %s %s ", t->name, fn->name);
				hex_put(fp, fn->config[2 * k]);
				fputc(' ', fp);
				hex_put(fp, fn->config[2 * k + 1]);
				fputc('\n', fp);
			}
		}
	}
	if (fclose(fp)) {
		free(*buf);
		*buf = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Write the registry text durably: a temporary file, fsynced, renamed over
 * the registry, the folder fsynced. Any thread. Returns 0 or -errno. */
static int write_registry(const char *buf, size_t len)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/" REGISTRY, g_cfg.state_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* 0600: configuration values may be secrets, and tenant uids can
	 * traverse the state folder. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (!err)
		err = fsync_dir(g_cfg.state_dir);
	if (err)
		unlink(tmp);
	return err;
}

/* Returns 0 or -errno. */
int lutfd_state_save(void)
{
	char *buf = NULL;
	size_t len = 0;
	int err = serialize(&buf, &len);

	if (!err)
		err = write_registry(buf, len);
	free(buf);
	return err;
}

/* Registry writes one at a time, each of the state as it is when written:
 * held across apply, write and undo, so no other change is saved between
 * a change and its undo. Taken only by job threads (never by the loop). */
static pthread_mutex_t save_mu = PTHREAD_MUTEX_INITIALIZER;

struct commit {
	void (*apply)(void *arg);
	void *arg;
	char *buf;
	size_t len;
	int err;
};

static void commit_apply(void *arg)
{
	struct commit *c = arg;

	if (c->apply)
		c->apply(c->arg);
	c->err = serialize(&c->buf, &c->len);
}

int lutfd_state_commit(void (*apply)(void *arg), void (*undo)(void *arg), void *arg)
{
	struct commit c = {.apply = apply, .arg = arg};

	pthread_mutex_lock(&save_mu);
	lutfd_main_call(commit_apply, &c);
	if (!c.err)
		c.err = write_registry(c.buf, c.len);
	free(c.buf);
	if (c.err && undo)
		lutfd_main_call(undo, arg);
	pthread_mutex_unlock(&save_mu);
	if (c.err)
		lutfd_log("registry not saved in %s: %s; the change is undone", g_cfg.state_dir,
			  strerror(-c.err));
	return c.err;
}

static int config_add(struct lutfd_fn *f, char *k, char *v)
{
	char **p = realloc(f->config, (2 * f->nconfig + 3) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	f->config = p;
	p[2 * f->nconfig] = k;
	p[2 * f->nconfig + 1] = v;
	p[2 * f->nconfig + 2] = NULL;
	f->nconfig++;
	return 0;
}

static int load_line(char *line)
{
	char w[8][256];
	int n = sscanf(line, "%255s %255s %255s %255s %255s %255s %255s %255s", w[0], w[1], w[2],
		       w[3], w[4], w[5], w[6], w[7]);
	struct lutfd_tenant *t;

	if (n <= 0 || w[0][0] == '#')
		return 0;
	if (n < 2 || !lutf_name_valid(w[1]))
		return -EINVAL;
	t = lutfd_tenant_get(w[1]);
	if (!t)
		return -ENOMEM;
	if (!strcmp(w[0], "tenant") && n == 2)
		return 0; /* a registry from before tiers and uids */
	if (!strcmp(w[0], "tenant") && n == 4) {
		char *end;

		t->uid = (uint32_t)strtoul(w[2], &end, 10);
		if (*end || (strcmp(w[3], "-") && strcmp(w[3], "none") && !lutfd_tier_valid(w[3])))
			return -EINVAL;
		/* A worker of tier none runs as root, unconfined: only if allowed. */
		if (!strcmp(w[3], "none") && !g_cfg.allow_tier_none) {
			lutfd_log("tenant %s has tier none in the registry, but allow_tier_none "
				  "is off",
				  t->name);
			return -EPERM;
		}
		LUTFD_COPY(t->tier, strcmp(w[3], "-") ? w[3] : "");
		return 0;
	}
	if (!strcmp(w[0], "workers") && n == 3) {
		char *end;
		unsigned long v = strtoul(w[2], &end, 10);

		if (*end || v < 1 || v > LUTFD_WORKERS_MAX)
			return -EINVAL;
		t->workers = (uint32_t)v;
		return 0;
	}
	if (!strcmp(w[0], "app") && n == 8 && lutf_name_valid(w[2])) {
		struct lutfd_app *p = realloc(t->apps, (t->napps + 1) * sizeof(*p)), *a;

		if (!p)
			return -ENOMEM;
		t->apps = p;
		a = &p[t->napps++];
		memset(a, 0, sizeof(*a));
		LUTFD_COPY(a->name, w[2]);
		a->version = strtoull(w[3], NULL, 10);
		LUTFD_COPY(a->tier, strcmp(w[4], "-") ? w[4] : "");
		a->timeout_ms = (uint32_t)strtoul(w[5], NULL, 10);
		a->memory_mb = (uint32_t)strtoul(w[6], NULL, 10);
		a->max_concurrency = (uint32_t)strtoul(w[7], NULL, 10);
		return 0;
	}
	if (!strcmp(w[0], "fn") && n == 6 && lutf_name_valid(w[2]) && lutf_name_valid(w[3])) {
		struct lutfd_fn **p = realloc(t->fns, (t->nfns + 1) * sizeof(*p)), *f;

		if (!p)
			return -ENOMEM;
		t->fns = p;
		f = calloc(1, sizeof(*f));
		if (!f)
			return -ENOMEM;
		LUTFD_COPY(f->app, w[2]);
		LUTFD_COPY(f->name, w[3]);
		LUTFD_COPY(f->symbol, w[4]);
		f->paused = !strcmp(w[5], "paused");
		t->fns[t->nfns++] = f;
		return 0;
	}
	if (!strcmp(w[0], "config") && n == 5) {
		struct lutfd_fn *f = lutfd_fn_find(t, w[2]);
		char *k = hex_get(w[3]), *v = hex_get(w[4]);

		if (f && k && v && !config_add(f, k, v))
			return 0;
		free(k);
		free(v);
		return -EINVAL;
	}
	return -EINVAL;
}

/* Returns 0 or -errno. */
int lutfd_state_load(void)
{
	char path[PATH_MAX + 16], *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	FILE *fp;
	int err = 0;

	lutfd_identity_init();
	snprintf(path, sizeof(path), "%s/" REGISTRY, g_cfg.state_dir);
	fp = fopen(path, "re");
	if (!fp)
		return errno == ENOENT ? 0 : -errno;
	while (getline(&line, &cap, fp) > 0) {
		lineno++;
		if (strlen(line) > 2048 || (err = load_line(line))) {
			if (err == -EPERM) {
				lutfd_log("%s:%u: tier none refused (set allow_tier_none to run "
					  "it unconfined)",
					  path, lineno);
				break;
			}
			lutfd_log("%s:%u: bad registry line", path, lineno);
			err = -EINVAL;
			break;
		}
	}
	free(line);
	fclose(fp);
	if (!err)
		chmod(path, 0600); /* registries written before it was 0600 */
	return err;
}

void lutfd_so_path(const char *tenant, const char *app, uint64_t version, char *path, size_t cap)
{
	snprintf(path, cap, "%s/apps/%s/%s/%llu.so", g_cfg.state_dir, tenant, app,
		 (unsigned long long)version);
}

static int mkdir_p(const char *dir)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0750) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0750) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Returns 0 or -errno (-EEXIST: that version is already stored). */
int lutfd_store_so(const char *tenant, const char *app, uint64_t version, const void *so,
		   size_t len, char *path, size_t cap)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 16];
	const char *p = so;
	int fd, err;

	snprintf(dir, sizeof(dir), "%s/apps/%s/%s", g_cfg.state_dir, tenant, app);
	err = mkdir_p(dir);
	if (err)
		return err;
	lutfd_so_path(tenant, app, version, path, cap);
	if (!access(path, F_OK))
		return -EEXIST;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			goto err;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd)) {
		err = -errno;
		goto err;
	}
	close(fd);
	/* link() refuses to replace: a stored version is never overwritten. */
	if (link(tmp, path)) {
		err = -errno;
		unlink(tmp);
		return err;
	}
	unlink(tmp);
	return fsync_dir(dir);
err:
	close(fd);
	unlink(tmp);
	return err;
}
