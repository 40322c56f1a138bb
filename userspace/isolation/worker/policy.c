/* SPDX-License-Identifier: MIT */
/*
 * The tier policy parser (grammar: policies/README.md). Invariants of a
 * loaded policy: every rule has a non-empty one-line reason; a syscall has
 * either one unconditional rule or only conditional allow rules with distinct
 * conditions; a syscall with a kill rule has no other rule, wherever the
 * rules sit in the include tree; the tier includes runtime and deny-always.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sandbox.h"

#define MAX_DEPTH 8
#define MAX_TOK 16

struct parse {
	struct lutf_policy *p;
	const char *dir;
	char *err;
	size_t cap;
	char where[64];
};

static int fail(struct parse *ps, int rc, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	n = (size_t)snprintf(ps->err, ps->cap, "%s: ", ps->where);
	if (n < ps->cap) {
		va_start(ap, fmt);
		vsnprintf(ps->err + n, ps->cap - n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static bool valid_name(const char *s)
{
	if (!*s || strlen(s) >= 32)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-' &&
		    *s != '_')
			return false;
	return true;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end ? -EINVAL : 0;
}

static const struct {
	const char *name;
	int val;
} errnos[] = {
    {"ENOSYS", ENOSYS}, {"EPERM", EPERM},     {"EACCES", EACCES},
    {"EINVAL", EINVAL}, {"ENOTSUP", ENOTSUP}, {"EAFNOSUPPORT", EAFNOSUPPORT},
};

/* A syscall by name, or by number with its name first in the reason. */
static int syscall_of(struct parse *ps, const char *tok, const char *reason, int *nr, char *name)
{
	uint64_t v;

	if (isdigit((unsigned char)tok[0])) {
		size_t n = strcspn(reason, ": ");
		char *known;
		int rc;

		if (parse_u64(tok, &v) || v > 1023)
			return fail(ps, -EINVAL, "bad syscall number '%s'", tok);
		if (reason[n] != ':' || n == 0 || n >= 32)
			return fail(ps, -EINVAL,
				    "syscall %s given by number: its reason must start with its "
				    "name, as in '# name: why'",
				    tok);
		memcpy(name, reason, n);
		name[n] = 0;
		known = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, (int)v);
		if (known && strcmp(known, name)) {
			rc = fail(ps, -EINVAL, "syscall %s is '%s', not '%s'", tok, known, name);
			free(known);
			return rc;
		}
		free(known);
		*nr = (int)v;
		return 0;
	}
	if (strlen(tok) >= 32)
		return fail(ps, -EINVAL, "unknown syscall '%s'", tok);
	*nr = seccomp_syscall_resolve_name(tok);
	if (*nr == __NR_SCMP_ERROR)
		return fail(ps, -EINVAL,
			    "unknown syscall '%s' (give it by number if this "
			    "libseccomp does not know it)",
			    tok);
	if (*nr < 0)
		return fail(ps, -EINVAL, "'%s' is not a syscall on this architecture", tok);
	strcpy(name, tok);
	return 0;
}

static bool same_conds(const struct lutf_pol_rule *a, const struct lutf_pol_rule *b)
{
	if (a->ncond != b->ncond)
		return false;
	for (unsigned i = 0; i < a->ncond; i++)
		if (a->cond[i].arg != b->cond[i].arg || a->cond[i].op != b->cond[i].op ||
		    a->cond[i].mask != b->cond[i].mask || a->cond[i].val != b->cond[i].val)
			return false;
	return true;
}

/* The one-rule-per-syscall invariant (header comment), checked both ways. */
static int add_rule(struct parse *ps, struct lutf_pol_rule *r)
{
	struct lutf_policy *p = ps->p;

	for (size_t i = 0; i < p->nrules; i++) {
		const struct lutf_pol_rule *o = &p->rules[i];

		if (o->nr != r->nr)
			continue;
		if (o->action == LUTF_POL_KILL || r->action == LUTF_POL_KILL)
			return fail(ps, -EINVAL,
				    "%s is killed in every tier (%s): no policy may allow it "
				    "or list it twice",
				    r->name, o->action == LUTF_POL_KILL ? o->where : ps->where);
		if (o->action != LUTF_POL_ALLOW || r->action != LUTF_POL_ALLOW || !o->ncond ||
		    !r->ncond || same_conds(o, r))
			return fail(ps, -EINVAL, "duplicate rule for %s (first at %s)", r->name,
				    o->where);
	}
	if (p->nrules == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 128;
		struct lutf_pol_rule *n = realloc(p->rules, cap * sizeof(*n));

		if (!n)
			return fail(ps, -ENOMEM, "out of memory");
		p->rules = n;
		p->cap = cap;
	}
	snprintf(r->where, sizeof(r->where), "%s", ps->where);
	p->rules[p->nrules++] = *r;
	return 0;
}

static int parse_cond(struct parse *ps, char **t, int nt, int *used, struct lutf_pol_cond *c)
{
	static const char *ops[] = {"==", "!=", "<", "<=", ">", ">="};
	int i = 0;

	if (nt < 3 || strncmp(t[0], "arg", 3) || t[0][3] < '0' || t[0][3] > '5' || t[0][4])
		return fail(ps, -EINVAL,
			    "condition: expected 'argN OP VALUE' or "
			    "'argN & MASK == VALUE' (N in 0..5)");
	c->arg = (uint8_t)(t[0][3] - '0');
	c->mask = ~0ull;
	i = 1;
	if (!strcmp(t[1], "&")) {
		if (nt < 5 || parse_u64(t[2], &c->mask) || strcmp(t[3], "=="))
			return fail(ps, -EINVAL, "condition: expected 'argN & MASK == VALUE'");
		c->op = LUTF_POL_MASKED_EQ;
		i = 4;
	} else {
		c->op = 0;
		for (unsigned k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
			if (!strcmp(t[1], ops[k]))
				c->op = (uint8_t)(LUTF_POL_EQ + k);
		if (!c->op)
			return fail(ps, -EINVAL, "condition: unknown operator '%s'", t[1]);
		i = 2;
	}
	if (parse_u64(t[i], &c->val))
		return fail(ps, -EINVAL, "condition: bad number '%s'", t[i]);
	*used = i + 1;
	return 0;
}

static int parse_ports(struct parse *ps, const char *s, struct lutf_pol_net *n)
{
	char buf[256], *save = NULL;

	if (!strcmp(s, "all")) {
		n->all = true;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (parse_u64(tok, &v) || v == 0 || v > 65535)
			return fail(ps, -EINVAL, "net: bad port '%s'", tok);
		if (n->nports == LUTF_POL_MAX_PORTS)
			return fail(ps, -EINVAL, "net: more than %d ports", LUTF_POL_MAX_PORTS);
		n->ports[n->nports++] = (uint16_t)v;
	}
	return 0;
}

static int load_file(struct parse *ps, const char *name, int depth);

static int parse_line(struct parse *ps, char *line, int depth)
{
	struct lutf_policy *p = ps->p;
	char *hash = strchr(line, '#'), *reason = NULL, *t[MAX_TOK], *save = NULL;
	struct lutf_pol_rule r;
	int nt = 0, rc;

	if (hash) {
		*hash = 0;
		reason = hash + 1;
		while (isspace((unsigned char)*reason))
			reason++;
		for (size_t n = strlen(reason); n && isspace((unsigned char)reason[n - 1]); n--)
			reason[n - 1] = 0;
	}
	for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (nt == MAX_TOK)
			return fail(ps, -EINVAL, "too many words");
		t[nt++] = tok;
	}
	if (!nt)
		return 0; /* blank or comment */
	if (!strcmp(t[0], "include")) {
		if (nt != 2 || !valid_name(t[1]))
			return fail(ps, -EINVAL, "expected 'include NAME' (a-z, 0-9, '-', '_')");
		return load_file(ps, t[1], depth + 1);
	}
	if (!reason || !*reason)
		return fail(ps, -EINVAL, "'%s' without a reason: every rule ends in '# why'", t[0]);
	memset(&r, 0, sizeof(r));
	if (!strcmp(t[0], "allow") || !strcmp(t[0], "kill")) {
		int i = 2;

		if (nt < 2)
			return fail(ps, -EINVAL, "expected '%s SYSCALL'", t[0]);
		r.action = t[0][0] == 'a' ? LUTF_POL_ALLOW : LUTF_POL_KILL;
		if ((rc = syscall_of(ps, t[1], reason, &r.nr, r.name)))
			return rc;
		if (nt > 2 && (r.action != LUTF_POL_ALLOW || strcmp(t[2], "if")))
			return fail(ps, -EINVAL, "unexpected '%s' after the syscall", t[2]);
		for (i = 3; nt > 2;) {
			int used = 0;

			if (r.ncond == LUTF_POL_MAX_COND)
				return fail(ps, -EINVAL, "more than %d conditions",
					    LUTF_POL_MAX_COND);
			if ((rc = parse_cond(ps, t + i, nt - i, &used, &r.cond[r.ncond++])))
				return rc;
			i += used;
			if (i == nt)
				break;
			if (strcmp(t[i], "and") || ++i == nt)
				return fail(ps, -EINVAL, "conditions are joined by 'and'");
		}
	} else if (!strcmp(t[0], "errno")) {
		uint64_t v = 0;

		if (nt != 3)
			return fail(ps, -EINVAL, "expected 'errno ERRNO SYSCALL'");
		r.action = LUTF_POL_ERRNO;
		for (unsigned k = 0; k < sizeof(errnos) / sizeof(errnos[0]); k++)
			if (!strcmp(t[1], errnos[k].name))
				v = (uint64_t)errnos[k].val;
		if (!v && (parse_u64(t[1], &v) || v == 0 || v > 4095))
			return fail(ps, -EINVAL, "unknown errno '%s'", t[1]);
		r.err = (int16_t)v;
		if ((rc = syscall_of(ps, t[2], reason, &r.nr, r.name)))
			return rc;
	} else if (!strcmp(t[0], "fs")) {
		const char *mode = nt > 1 ? t[1] : "";
		struct lutf_pol_path *pp;
		uint8_t acc = !strcmp(mode, "rx")   ? LUTF_FS_RX
			      : !strcmp(mode, "ro") ? LUTF_FS_RO
			      : !strcmp(mode, "rw") ? LUTF_FS_RW
						    : 0;

		if (nt != 3 || !acc ||
		    (t[2][0] != '/' && strcmp(t[2], "@app") && strcmp(t[2], "@scratch")) ||
		    strlen(t[2]) >= sizeof(pp->path))
			return fail(ps, -EINVAL,
				    "expected 'fs rx|ro|rw PATH' (absolute, @app or "
				    "@scratch)");
		if (p->npaths == p->pcap) {
			size_t cap = p->pcap ? p->pcap * 2 : 16;

			pp = realloc(p->paths, cap * sizeof(*pp));
			if (!pp)
				return fail(ps, -ENOMEM, "out of memory");
			p->paths = pp;
			p->pcap = cap;
		}
		pp = &p->paths[p->npaths++];
		memset(pp, 0, sizeof(*pp));
		pp->access = acc;
		strcpy(pp->path, t[2]);
		snprintf(pp->where, sizeof(pp->where), "%s", ps->where);
		return 0;
	} else if (!strcmp(t[0], "net")) {
		struct lutf_pol_net *n = nt == 3 && !strcmp(t[1], "connect") ? &p->connect
					 : nt == 3 && !strcmp(t[1], "bind")  ? &p->bind
									     : NULL;

		if (!n)
			return fail(ps, -EINVAL, "expected 'net connect|bind all|PORT,PORT...'");
		return parse_ports(ps, t[2], n);
	} else if (!strcmp(t[0], "labors")) {
		if (nt != 2 || strcmp(t[1], "fixed"))
			return fail(ps, -EINVAL, "expected 'labors fixed'");
		p->labors_fixed = true;
		return 0;
	} else {
		return fail(ps, -EINVAL, "unknown statement '%s'", t[0]);
	}
	r.reason = strdup(reason);
	if (!r.reason)
		return fail(ps, -ENOMEM, "out of memory");
	rc = add_rule(ps, &r);
	if (rc)
		free(r.reason);
	return rc;
}

/* Include-once: a file already read is skipped, which also ends cycles. */
static int load_file(struct parse *ps, const char *name, int depth)
{
	struct lutf_policy *p = ps->p;
	char path[512], saved[64], line[1024];
	int lineno = 0, rc = 0;
	FILE *f;

	for (uint32_t i = 0; i < p->nfiles; i++)
		if (!strcmp(p->files[i], name))
			return 0;
	if (depth > MAX_DEPTH)
		return fail(ps, -ELOOP, "includes nested deeper than %d", MAX_DEPTH);
	if (p->nfiles == LUTF_POL_MAX_FILES)
		return fail(ps, -E2BIG, "more than %d policy files", LUTF_POL_MAX_FILES);
	strcpy(p->files[p->nfiles++], name);
	snprintf(path, sizeof(path), "%s/%s.policy", ps->dir, name);
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		return fail(ps, rc, "cannot open %s: %s", path, strerror(-rc));
	}
	{
		/* Stamped before the first read: a change while we read moves
		 * its ctime past the stamp, so lutf_policy_fresh says stale. */
		struct lutf_pol_stamp *sp = &p->stamps[p->nfiles - 1];
		struct stat st;

		if (fstat(fileno(f), &st)) {
			rc = -errno;
			fclose(f);
			return fail(ps, rc, "cannot stat %s: %s", path, strerror(-rc));
		}
		sp->dev = st.st_dev;
		sp->ino = st.st_ino;
		sp->size = st.st_size;
		sp->mtim = st.st_mtim;
		sp->ctim = st.st_ctim;
	}
	memcpy(saved, ps->where, sizeof(saved));
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		lineno++;
		snprintf(ps->where, sizeof(ps->where), "%s.policy:%d", name, lineno);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			rc = fail(ps, -EINVAL, "line longer than %zu bytes", sizeof(line) - 2);
			break;
		}
		if (memchr(line, 0, n) != NULL && strlen(line) != n) {
			rc = fail(ps, -EINVAL, "NUL byte in line");
			break;
		}
		line[strcspn(line, "\r\n")] = 0;
		rc = parse_line(ps, line, depth);
		if (rc)
			break;
	}
	fclose(f);
	memcpy(ps->where, saved, sizeof(saved));
	return rc;
}

void lutf_policy_free(struct lutf_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nrules; i++)
		free(p->rules[i].reason);
	free(p->rules);
	free(p->paths);
	free(p);
}

int lutf_policy_load(const char *dir, const char *tier, struct lutf_policy **out, char *err,
		     size_t cap)
{
	struct parse ps = {.dir = dir, .err = err, .cap = cap};
	int rc;

	*out = NULL;
	snprintf(ps.where, sizeof(ps.where), "tier '%s'", tier ? tier : "");
	if (!tier || !valid_name(tier) || strlen(tier) >= sizeof(ps.p->tier) ||
	    !strcmp(tier, "runtime") || !strcmp(tier, "deny-always") || !strcmp(tier, "dlopen") ||
	    !strcmp(tier, "compute") || !strcmp(tier, "python"))
		return fail(&ps, -EINVAL, "not a tier name");
	ps.p = calloc(1, sizeof(*ps.p));
	if (!ps.p)
		return fail(&ps, -ENOMEM, "out of memory");
	strcpy(ps.p->tier, tier);
	snprintf(ps.p->dir, sizeof(ps.p->dir), "%s", dir);
	rc = load_file(&ps, tier, 0);
	snprintf(ps.where, sizeof(ps.where), "%s.policy", tier);
	if (!rc) {
		bool rt = false, deny = false;

		for (uint32_t i = 0; i < ps.p->nfiles; i++) {
			rt |= !strcmp(ps.p->files[i], "runtime");
			deny |= !strcmp(ps.p->files[i], "deny-always");
		}
		if (!rt || !deny)
			rc = fail(&ps, -EINVAL, "a tier must include runtime and deny-always");
	}
	if (rc) {
		lutf_policy_free(ps.p);
		return rc;
	}
	*out = ps.p;
	return 0;
}

bool lutf_policy_fresh(const struct lutf_policy *p)
{
	for (uint32_t i = 0; i < p->nfiles; i++) {
		const struct lutf_pol_stamp *sp = &p->stamps[i];
		char path[512];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s.policy", p->dir, p->files[i]);
		if (stat(path, &st) || st.st_dev != sp->dev || st.st_ino != sp->ino ||
		    st.st_size != sp->size || st.st_mtim.tv_sec != sp->mtim.tv_sec ||
		    st.st_mtim.tv_nsec != sp->mtim.tv_nsec || st.st_ctim.tv_sec != sp->ctim.tv_sec ||
		    st.st_ctim.tv_nsec != sp->ctim.tv_nsec)
			return false;
	}
	return true;
}

int lutf_policy_action(const struct lutf_policy *p, int nr, const struct lutf_pol_rule **rule)
{
	for (size_t i = 0; i < p->nrules; i++) {
		if (p->rules[i].nr == nr) {
			if (rule)
				*rule = &p->rules[i];
			return p->rules[i].action;
		}
	}
	if (rule)
		*rule = NULL;
	return LUTF_POL_DEFAULT;
}

uint32_t lutf_policy_count_allowed(const struct lutf_policy *p)
{
	uint32_t n = 0;

	for (size_t i = 0; i < p->nrules; i++) {
		bool seen = false;

		if (p->rules[i].action != LUTF_POL_ALLOW)
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = p->rules[j].nr == p->rules[i].nr;
		n += !seen;
	}
	return n;
}
