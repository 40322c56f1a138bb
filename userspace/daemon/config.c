/* SPDX-License-Identifier: MIT */
/*
 * lutfd configuration: defaults, then an INI file (libinih) over them, then
 * command-line flags (main.c). Invariant: every key is in the table below,
 * bounded, and documented in etc/lutfd.conf and docs/daemon.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lutfd.h"

void lutfd_config_defaults(struct lutfd_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/lutf");
	snprintf(c->runtime_dir, sizeof(c->runtime_dir), "/run/lutf");
	snprintf(c->group, sizeof(c->group), "lutf");
	c->max_frame = LUTF_WIRE_MAX_FRAME_DEFAULT;
	c->max_conns = 1024;
	c->max_queued = 4096;
	c->conn_out_max = 8u << 20;
	c->idle_timeout_ms = 60000;
	c->shutdown_grace_ms = 2000;
	c->log_lines = 1000;
	c->max_tenants = 64;
	c->restart_backoff_max_ms = 5000;
	c->load_timeout_ms = 10000;
	c->bpf = true;
	snprintf(c->bpf_pin_root, sizeof(c->bpf_pin_root), "/sys/fs/bpf/lutf");
	c->cart_capacity = 4096;
	c->arena_mb = 64;
	c->max_functions = 256;
	c->hold_max = 1024;
	c->timeout_ms = 30000;
	c->spin_us = 20;
	c->grace_us = 50;
	c->poll_us = 200;
	c->labor_idle_ms = 10000;
}

enum kind { U32, U64, BOOL, STR };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	size_t size; /* STR: buffer size */
	uint64_t min, max;
};

#define K32(n, lo, hi)                                                                             \
	{                                                                                          \
#n, U32, offsetof(struct lutfd_config, n), 0, lo, hi                               \
	}
#define KSTR(n)                                                                                    \
	{                                                                                          \
#n, STR, offsetof(struct lutfd_config, n), sizeof(((struct lutfd_config *)0)->n),  \
		    0, 0                                                                           \
	}

static const struct key keys[] = {
    KSTR(state_dir),
    KSTR(runtime_dir),
    KSTR(group),
    K32(max_frame, 4096, 1u << 30),
    K32(max_conns, 1, 1u << 20),
    K32(max_queued, 1, 1u << 20),
    {"conn_out_max", U64, offsetof(struct lutfd_config, conn_out_max), 0, 4096, 1ull << 32},
    K32(idle_timeout_ms, 0, 86400000),
    K32(shutdown_grace_ms, 0, 600000),
    K32(log_lines, 1, 1000000),
    K32(max_tenants, 1, 4096),
    K32(restart_backoff_max_ms, 10, 600000),
    K32(load_timeout_ms, 100, 600000),
    {"bpf", BOOL, offsetof(struct lutfd_config, bpf), 0, 0, 0},
    KSTR(bpf_pin_root),
    K32(carts, 0, 1024),
    K32(labors, 0, 4096),
    K32(labors_max, 0, 8192),
    K32(cart_capacity, 16, 1u << 20),
    K32(arena_mb, 1, 65536),
    K32(max_functions, 1, 65536),
    K32(hold_max, 1, 1u << 20),
    K32(timeout_ms, 0, 86400000),
    K32(spin_us, 0, 10000),
    K32(grace_us, 0, 1000000),
    K32(poll_us, 10, 1000000),
    K32(labor_idle_ms, 1, 86400000),
};

struct ctx {
	struct lutfd_config *c;
	const char *path;
	int err;
};

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct ctx *x = user;
	char *end;

	if (section[0] && strcmp(section, "lutfd")) {
		fprintf(stderr, "lutfd: %s: unknown section [%s]\n", x->path, section);
		x->err = -EINVAL;
		return 0;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		char *p = (char *)x->c + k->off;
		unsigned long long v;

		if (strcmp(k->name, name))
			continue;
		switch (k->kind) {
		case STR:
			if (strlen(value) >= k->size)
				goto bad;
			snprintf(p, k->size, "%s", value);
			return 1;
		case BOOL:
			if (!strcasecmp(value, "on") || !strcasecmp(value, "yes") ||
			    !strcasecmp(value, "true") || !strcmp(value, "1"))
				*(bool *)p = true;
			else if (!strcasecmp(value, "off") || !strcasecmp(value, "no") ||
				 !strcasecmp(value, "false") || !strcmp(value, "0"))
				*(bool *)p = false;
			else
				goto bad;
			return 1;
		default:
			errno = 0;
			v = strtoull(value, &end, 0);
			if (errno || end == value || *end || v < k->min || v > k->max)
				goto bad;
			if (k->kind == U32)
				*(uint32_t *)p = (uint32_t)v;
			else
				*(uint64_t *)p = v;
			return 1;
		}
	bad:
		fprintf(stderr, "lutfd: %s: bad value for %s: '%s'\n", x->path, name, value);
		x->err = -EINVAL;
		return 0;
	}
	fprintf(stderr, "lutfd: %s: unknown key '%s'\n", x->path, name);
	x->err = -EINVAL;
	return 0;
}

/* Returns 0, -ENOENT or -EINVAL. */
int lutfd_config_load(struct lutfd_config *c, const char *path)
{
	struct ctx x = {c, path, 0};
	int r;

	if (access(path, R_OK))
		return -ENOENT;
	r = ini_parse(path, on_key, &x);
	if (r < 0)
		return -ENOENT;
	if (r > 0 && !x.err) {
		fprintf(stderr, "lutfd: %s: syntax error on line %d\n", path, r);
		return -EINVAL;
	}
	return x.err;
}
