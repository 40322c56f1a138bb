/* SPDX-License-Identifier: MIT */
/*
 * A strict parser of the Prometheus text format 0.0.4, for tests: it accepts
 * less than Prometheus does (no blank lines, no free comments, no timestamps)
 * and checks conventions Prometheus only lints: TYPE before samples, families
 * contiguous, no duplicate series, counters named *_total, histograms with
 * increasing le, cumulative buckets, +Inf equal to _count, and a _sum.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_parse.h"

#define MAXF 256
#define MAXS 8192

struct fam {
	char name[128];
	char type[16];
	bool help, done;
};

struct series {
	char key[512]; /* name{labels without le} */
	int fam;
	double last_le, last_count, inf_count;
	bool has_inf, has_sum, has_count, bucket;
	double count;
};

struct ps {
	struct fam f[MAXF];
	int nf, cur;
	struct series *s;
	int ns;
	char *err;
	size_t errlen;
	int line;
};

static int bad(struct ps *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err, p->errlen, "line %d: ", p->line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static bool name_ok(const char *s, size_t n, bool metric)
{
	if (!n || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (metric && s[i] == ':')))
			return false;
	return true;
}

static int fam_find(struct ps *p, const char *name)
{
	for (int i = 0; i < p->nf; i++)
		if (!strcmp(p->f[i].name, name))
			return i;
	return -1;
}

/* Which declared family a sample name belongs to, and its suffix. */
static int fam_of(struct ps *p, const char *name, const char **suffix)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	int i = fam_find(p, name);
	char base[128];

	*suffix = "";
	if (i >= 0 && strcmp(p->f[i].type, "histogram"))
		return i;
	for (size_t k = 0; k < 3; k++) {
		size_t n = strlen(name), m = strlen(sfx[k]);

		if (n <= m || strcmp(name + n - m, sfx[k]) || n - m >= sizeof(base))
			continue;
		memcpy(base, name, n - m);
		base[n - m] = 0;
		i = fam_find(p, base);
		if (i >= 0 && !strcmp(p->f[i].type, "histogram")) {
			*suffix = sfx[k];
			return i;
		}
	}
	return -1;
}

static int parse_value(struct ps *p, const char *s, double *v)
{
	char *end;

	if (!strcmp(s, "+Inf"))
		*v = INFINITY;
	else if (!strcmp(s, "-Inf"))
		*v = -INFINITY;
	else if (!strcmp(s, "NaN"))
		*v = NAN;
	else {
		*v = strtod(s, &end);
		if (end == s || *end || !strcmp(s, "inf") || isalpha((unsigned char)s[0]))
			return bad(p, "bad value '%s'", s);
	}
	return 0;
}

static int comment(struct ps *p, char *l)
{
	char *name, *rest;
	int i;

	if (strncmp(l, "# HELP ", 7) && strncmp(l, "# TYPE ", 7))
		return bad(p, "only HELP and TYPE comments are allowed");
	name = l + 7;
	rest = strchr(name, ' ');
	if (!rest)
		return bad(p, "comment without text");
	*rest++ = 0;
	if (!name_ok(name, strlen(name), true) || strlen(name) >= sizeof(p->f[0].name))
		return bad(p, "bad metric name '%s'", name);
	i = fam_find(p, name);
	if (i < 0) {
		if (p->nf == MAXF)
			return bad(p, "too many families");
		i = p->nf++;
		snprintf(p->f[i].name, sizeof(p->f[i].name), "%s", name);
	}
	if (p->f[i].done || (p->cur >= 0 && p->cur != i && i != p->nf - 1))
		return bad(p, "family %s is not contiguous", name);
	if (p->cur >= 0 && p->cur != i)
		p->f[p->cur].done = true;
	p->cur = i;
	if (l[2] == 'H') {
		if (p->f[i].help)
			return bad(p, "second HELP for %s", name);
		for (char *c = rest; *c; c++)
			if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
				return bad(p, "bad escape in HELP");
			else if (*c == '\\')
				c++;
		p->f[i].help = true;
		return 0;
	}
	if (p->f[i].type[0])
		return bad(p, "second TYPE for %s", name);
	if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram") &&
	    strcmp(rest, "summary") && strcmp(rest, "untyped"))
		return bad(p, "bad type '%s'", rest);
	if (!strcmp(rest, "counter") &&
	    (strlen(name) < 7 || strcmp(name + strlen(name) - 6, "_total")))
		return bad(p, "counter %s does not end in _total", name);
	snprintf(p->f[i].type, sizeof(p->f[i].type), "%s", rest);
	return 0;
}

/* Parse {a="x",b="y"}; the labels (without le) go to key, le to *le. */
static int labels(struct ps *p, char **at, char *key, size_t keylen, char *le, size_t lelen)
{
	char *s = *at, names[16][64];
	int n = 0;

	le[0] = 0;
	if (*s != '{')
		return 0;
	s++;
	while (*s != '}') {
		char *eq = strchr(s, '='), val[512];
		size_t vn = 0;

		if (!eq || !name_ok(s, (size_t)(eq - s), false) || eq - s >= 64 || n == 16)
			return bad(p, "bad label name");
		memcpy(names[n], s, (size_t)(eq - s));
		names[n][eq - s] = 0;
		for (int k = 0; k < n; k++)
			if (!strcmp(names[k], names[n]))
				return bad(p, "duplicate label %s", names[n]);
		if (eq[1] != '"')
			return bad(p, "label value not quoted");
		for (s = eq + 2; *s != '"'; s++) {
			if (!*s || *s == '\n' || vn + 2 >= sizeof(val))
				return bad(p, "unterminated label value");
			if (*s == '\\') {
				s++;
				if (*s != '\\' && *s != '"' && *s != 'n')
					return bad(p, "bad escape in label value");
			}
			val[vn++] = *s;
		}
		val[vn] = 0;
		s++;
		if (!strcmp(names[n], "le") ? snprintf(le, lelen, "%s", val) >= (int)lelen
					     : snprintf(key + strlen(key), keylen - strlen(key),
							"%s=%s\x1f", names[n], val) >=
						   (int)(keylen - strlen(key)))
			return bad(p, "labels too long for this checker");
		n++;
		if (*s == ',' && s[1] != '}')
			s++;
		else if (*s != '}')
			return bad(p, "expected , or }");
	}
	*at = s + 1;
	return 0;
}

static struct series *series_of(struct ps *p, int fi, const char *key)
{
	for (int i = 0; i < p->ns; i++)
		if (p->s[i].fam == fi && !strcmp(p->s[i].key, key))
			return &p->s[i];
	if (p->ns == MAXS)
		return NULL;
	memset(&p->s[p->ns], 0, sizeof(p->s[0]));
	p->s[p->ns].fam = fi;
	p->s[p->ns].last_le = -INFINITY;
	snprintf(p->s[p->ns].key, sizeof(p->s[0].key), "%s", key);
	return &p->s[p->ns++];
}

static int sample(struct ps *p, char *l, char ***seen, int *nseen)
{
	char nm[128], key[512] = "", le[64], full[800], *s = l;
	const char *suffix;
	struct series *se;
	double v;
	int fi;

	while (*s && *s != '{' && *s != ' ')
		s++;
	if (!name_ok(l, (size_t)(s - l), true) || s - l >= (long)sizeof(nm))
		return bad(p, "bad metric name");
	memcpy(nm, l, (size_t)(s - l));
	nm[s - l] = 0;
	fi = fam_of(p, nm, &suffix);
	if (fi < 0 || !p->f[fi].type[0])
		return bad(p, "sample %s without a TYPE before it", nm);
	if (fi != p->cur)
		return bad(p, "sample %s outside its family's block", nm);
	if (labels(p, &s, key, sizeof(key), le, sizeof(le)))
		return -1;
	if (*s != ' ' || !s[1] || strchr(s + 1, ' '))
		return bad(p, "expected one space and a value (no timestamps)");
	if (parse_value(p, s + 1, &v))
		return -1;
	snprintf(full, sizeof(full), "%s{%s le=%s", nm, key, le);
	for (int i = 0; i < *nseen; i++)
		if (!strcmp((*seen)[i], full))
			return bad(p, "duplicate series %s", nm);
	*seen = realloc(*seen, sizeof(char *) * (size_t)(*nseen + 1));
	(*seen)[(*nseen)++] = strdup(full);
	if (!strcmp(p->f[fi].type, "counter") && (isnan(v) || v < 0))
		return bad(p, "counter %s is negative", nm);
	if (strcmp(p->f[fi].type, "histogram")) {
		if (le[0])
			return bad(p, "le label outside a histogram bucket");
		return 0;
	}
	se = series_of(p, fi, key);
	if (!se)
		return bad(p, "too many series");
	if (!strcmp(suffix, "_bucket")) {
		double b;

		if (!le[0])
			return bad(p, "bucket without le");
		if (parse_value(p, le, &b) || isnan(b))
			return bad(p, "bad le '%s'", le);
		if (se->has_inf || b <= se->last_le)
			return bad(p, "le %s not increasing", le);
		if (v < se->last_count)
			return bad(p, "bucket le=%s not cumulative", le);
		se->last_le = b;
		se->last_count = v;
		if (isinf(b)) {
			se->has_inf = true;
			se->inf_count = v;
		}
	} else if (le[0]) {
		return bad(p, "le label outside a histogram bucket");
	} else if (!strcmp(suffix, "_sum")) {
		se->has_sum = true;
	} else {
		se->has_count = true;
		se->count = v;
	}
	return 0;
}

int prom_parse(const char *text, char *err, size_t errlen, int *nsamples)
{
	struct ps *p = calloc(1, sizeof(*p));
	char *copy = strdup(text), *l = copy, **seen = NULL;
	int nseen = 0, r = 0;

	p->s = calloc(MAXS, sizeof(*p->s));
	p->err = err;
	p->errlen = errlen;
	p->cur = -1;
	err[0] = 0;
	if (!*text)
		r = bad(p, "empty");
	while (!r && *l) {
		char *nl = strchr(l, '\n');

		p->line++;
		if (!nl) {
			r = bad(p, "last line without newline");
			break;
		}
		*nl = 0;
		if (!*l)
			r = bad(p, "empty line");
		else if (*l == '#')
			r = comment(p, l);
		else
			r = sample(p, l, &seen, &nseen);
		l = nl + 1;
	}
	for (int i = 0; !r && i < p->ns; i++) {
		struct series *se = &p->s[i];

		if (!se->has_inf || !se->has_sum || !se->has_count)
			r = bad(p, "histogram %s{%s} lacks +Inf, _sum or _count", p->f[se->fam].name,
				se->key);
		else if (se->count != se->inf_count)
			r = bad(p, "histogram %s: _count %g != +Inf bucket %g", p->f[se->fam].name,
				se->count, se->inf_count);
	}
	if (nsamples)
		*nsamples = nseen;
	for (int i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	free(copy);
	free(p->s);
	free(p);
	return r;
}
