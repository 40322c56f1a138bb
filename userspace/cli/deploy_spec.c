/* SPDX-License-Identifier: MIT */
/*
 * lutfctl deploy input: options and an INI manifest merged into one
 * lutf_client_deploy. Invariant: every string the request points at is owned
 * by the spec (spec->owned), so spec_free releases all of it at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy_spec.h"

void spec_init(struct deploy_spec *s)
{
	memset(s, 0, sizeof(*s));
}

void spec_free(struct deploy_spec *s)
{
	for (size_t i = 0; i < s->n_owned; i++)
		free(s->owned[i]);
	free(s->owned);
	free(s->exports);
	free(s->config);
	memset(s, 0, sizeof(*s));
}

char *spec_strdup(struct deploy_spec *s, const char *str)
{
	char *p;

	if (s->n_owned == s->cap_owned) {
		size_t cap = s->cap_owned ? s->cap_owned * 2 : 16;
		char **o = realloc(s->owned, cap * sizeof(*o));

		if (!o)
			return NULL;
		s->owned = o;
		s->cap_owned = cap;
	}
	p = strdup(str);
	if (p)
		s->owned[s->n_owned++] = p;
	return p;
}

/* Grow an array of elem-sized items to hold n + 1. Returns 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	void *p;
	size_t nc;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 8;
	p = realloc(*arr, nc * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

int spec_add_export(struct deploy_spec *s, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *fn = spec_strdup(s, arg);
	char *sym = NULL;

	if (!fn)
		return -ENOMEM;
	if (eq) {
		fn[eq - arg] = 0;
		sym = fn + (eq - arg) + 1;
		if (!*sym || strchr(sym, '='))
			return -EINVAL;
	}
	if (!*fn)
		return -EINVAL;
	for (size_t i = 0; i < s->d.n_exports; i++)
		if (strcmp(s->exports[i].function, fn) == 0)
			return 0;
	if (grow((void **)&s->exports, &s->cap_exports, s->d.n_exports, sizeof(*s->exports)))
		return -ENOMEM;
	s->exports[s->d.n_exports++] = (struct lutf_client_export){.function = fn, .symbol = sym};
	s->d.exports = s->exports;
	return 0;
}

int spec_add_config(struct deploy_spec *s, const char *fn, const char *key, const char *value)
{
	struct lutf_client_config k;

	if (!*fn || !*key)
		return -EINVAL;
	for (size_t i = 0; i < s->d.n_config; i++)
		if (strcmp(s->config[i].function, fn) == 0 && strcmp(s->config[i].key, key) == 0)
			return 0;
	k.function = spec_strdup(s, fn);
	k.key = spec_strdup(s, key);
	k.value = spec_strdup(s, value);
	if (!k.function || !k.key || !k.value)
		return -ENOMEM;
	if (grow((void **)&s->config, &s->cap_config, s->d.n_config, sizeof(*s->config)))
		return -ENOMEM;
	s->config[s->d.n_config++] = k;
	s->d.config = s->config;
	return 0;
}

struct manifest_ctx {
	struct deploy_spec *s;
	const char *dir; /* the manifest's folder, for relative .so paths */
	char *err;
	size_t errlen;
};

/* Parse a u32 manifest value; false when it is not a decimal in range. */
static bool parse_u32(const char *v, uint32_t *out)
{
	char *end;
	unsigned long long n;

	if (!*v || *v == '-')
		return false;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n > UINT32_MAX)
		return false;
	*out = (uint32_t)n;
	return true;
}

/* Fill a string field the options left unset. Returns 1 (inih: go on) or 0. */
static int set_str(struct manifest_ctx *m, const char **dst, const char *v)
{
	if (*dst)
		return 1;
	*dst = spec_strdup(m->s, v);
	return *dst != NULL;
}

static int set_u32(struct manifest_ctx *m, uint32_t *dst, const char *name, const char *v)
{
	uint32_t n;

	if (!parse_u32(v, &n)) {
		snprintf(m->err, m->errlen, "%s: not a number: %s", name, v);
		return 0;
	}
	if (!*dst)
		*dst = n;
	return 1;
}

static int app_key(struct manifest_ctx *m, const char *name, const char *value)
{
	struct lutf_client_deploy *d = &m->s->d;

	if (strcmp(name, "tenant") == 0)
		return set_str(m, &d->tenant, value);
	if (strcmp(name, "name") == 0 || strcmp(name, "app") == 0)
		return set_str(m, &d->app, value);
	if (strcmp(name, "tier") == 0)
		return set_str(m, &d->tier, value);
	if (strcmp(name, "so") == 0 || strcmp(name, "py") == 0) {
		char path[4096];

		if (d->so_path)
			return 1;
		if (name[0] == 'p')
			d->kind = "python";
		if (value[0] == '/')
			snprintf(path, sizeof(path), "%s", value);
		else if ((size_t)snprintf(path, sizeof(path), "%s/%s", m->dir, value) >=
			 sizeof(path))
			return 0;
		return set_str(m, &d->so_path, path);
	}
	if (strcmp(name, "export") == 0) {
		if (spec_add_export(m->s, value)) {
			snprintf(m->err, m->errlen, "bad export: %s", value);
			return 0;
		}
		return 1;
	}
	if (strcmp(name, "timeout_ms") == 0)
		return set_u32(m, &d->timeout_ms, name, value);
	if (strcmp(name, "memory_mb") == 0)
		return set_u32(m, &d->memory_mb, name, value);
	if (strcmp(name, "max_concurrency") == 0)
		return set_u32(m, &d->max_concurrency, name, value);
	if (strcmp(name, "workers") == 0)
		return set_u32(m, &d->workers, name, value);
	snprintf(m->err, m->errlen, "unknown key in [app]: %s", name);
	return 0;
}

/* inih callback: 1 to go on, 0 to stop with an error (inih reports the line). */
static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct manifest_ctx *m = user;

	if (strcmp(section, "app") == 0)
		return app_key(m, name, value);
	if (strncmp(section, "config ", 7) == 0 && section[7]) {
		if (spec_add_config(m->s, section + 7, name, value)) {
			snprintf(m->err, m->errlen, "bad config entry [%s] %s", section, name);
			return 0;
		}
		return 1;
	}
	snprintf(m->err, m->errlen, "unknown section [%s]", section);
	return 0;
}

int manifest_load(const char *path, struct deploy_spec *s, char *err, size_t errlen)
{
	char *copy = strdup(path);
	struct manifest_ctx m = {.s = s, .err = err, .errlen = errlen};
	int line;

	if (!copy)
		return -ENOMEM;
	m.dir = dirname(copy);
	err[0] = 0;
	line = ini_parse(path, on_entry, &m);
	free(copy);
	if (line == -1) {
		snprintf(err, errlen, "%s: cannot open", path);
		return -ENOENT;
	}
	if (line == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (line > 0) {
		char what[256];

		snprintf(what, sizeof(what), "%s", err[0] ? err : "syntax error");
		snprintf(err, errlen, "%s:%d: %s", path, line, what);
		return -EINVAL;
	}
	return 0;
}
