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

#ifndef LUTF_POLICY_DIR
#define LUTF_POLICY_DIR "/usr/share/lutf/policies" /* installed tier files */
#endif

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
	c->spin_us = LUTFD_SPIN_AUTO; /* tenant.c: 50 us, or 5 on at most one CPU */
	c->grace_us = 50;
	c->poll_us = 200;
	c->labor_idle_ms = 10000;
	snprintf(c->ingress, sizeof(c->ingress), "auto");
	snprintf(c->listen_tcp, sizeof(c->listen_tcp), "%s", LUTFD_TCP_DEFAULT);
	c->uring_entries = 1024;
	c->uring_buffers = 256;
	c->uring_buffer_size = 16384;
	snprintf(c->uid_range, sizeof(c->uid_range), "61000-61999");
	snprintf(c->default_tier, sizeof(c->default_tier), "basic");
	snprintf(c->policy_dir, sizeof(c->policy_dir), "%s", LUTF_POLICY_DIR);
	snprintf(c->cgroup, sizeof(c->cgroup), "auto");
	snprintf(c->cgroup_v1_root, sizeof(c->cgroup_v1_root), "/sys/fs/cgroup");
	snprintf(c->cgroup_name, sizeof(c->cgroup_name), "lutf");
	c->tenant_workers = 1;
	c->tenant_memory_mb = 1024;
	c->tenant_pids_max = 512;
	c->tenant_nofile = 1024;
	c->tenant_fsize_mb = 1024;
	c->stuck_grace_ms = 1000;
	c->crash_loop_limit = 5;
	snprintf(c->http_listen, sizeof(c->http_listen), "%s", LUTFD_HTTP_DEFAULT);
	snprintf(c->admin_listen, sizeof(c->admin_listen), "%s", LUTFD_ADMIN_DEFAULT);
	c->http_max_header = 8192;
	c->http_max_body = LUTF_WIRE_MAX_FRAME_DEFAULT;
	c->http_max_pending = 64;
	c->http_request_timeout_ms = 10000;
	c->require_keys = true;
	c->frame_timeout_ms = 10000;
	c->input_buffered_max = 256ull << 20;
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
    K32(bpf_labors_per_tenant, 0, 65536),
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
    KSTR(ingress),
    KSTR(listen_tcp),
    K32(uring_entries, 64, 32768),
    K32(uring_buffers, 1, 32768),
    K32(uring_buffer_size, 256, 1u << 20),
    KSTR(uid_range),
    KSTR(default_tier),
    KSTR(policy_dir),
    KSTR(cgroup),
    KSTR(cgroup_v2_root),
    KSTR(cgroup_v1_root),
    KSTR(cgroup_name),
    K32(tenant_workers, 1, LUTFD_WORKERS_MAX),
    K32(tenant_memory_mb, 0, 1u << 24),
    K32(tenant_pids_max, 0, 1u << 22),
    K32(tenant_cpu_pct, 0, 100000),
    K32(tenant_nofile, 0, 1u << 20),
    K32(tenant_fsize_mb, 0, 1u << 24),
    K32(tenant_cpu_s, 0, 1u << 30),
    K32(stuck_grace_ms, 0, 3600000),
    K32(crash_loop_limit, 1, 1000),
    {"allow_tier_none", BOOL, offsetof(struct lutfd_config, allow_tier_none), 0, 0, 0},
    KSTR(http_listen),
    KSTR(admin_listen),
    K32(http_max_header, 256, 1u << 20),
    K32(http_max_body, 0, 1u << 30),
    K32(http_max_rps, 0, 1u << 24),
    K32(http_max_pending, 1, 4096),
    K32(http_request_timeout_ms, 0, 86400000),
    {"require_keys", BOOL, offsetof(struct lutfd_config, require_keys), 0, 0, 0},
    KSTR(admin_token_file),
    {"functions_reach_lutfd", BOOL, offsetof(struct lutfd_config, functions_reach_lutfd), 0, 0, 0},
    K32(frame_timeout_ms, 0, 86400000),
    {"input_buffered_max", U64, offsetof(struct lutfd_config, input_buffered_max), 0, 1u << 20,
     1ull << 40},
    KSTR(cluster),
    KSTR(cluster_creds),
    KSTR(cluster_token),
    KSTR(cluster_node),
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
	if (!x.err && lutfd_config_check_isolation(c, path))
		return -EINVAL;
#ifndef LUTF_HAVE_CLUSTER
	if (!x.err && c->cluster[0]) {
		fprintf(stderr,
			"lutfd: %s: 'cluster = %s': this lutfd was built without libnats (cluster "
			"mode); remove the line or rebuild with libnats-dev installed\n",
			path, c->cluster);
		return -EINVAL;
	}
#endif
	return x.err;
}

/* Call fn for every key whose value differs between a and b (SIGHUP reload). */
void lutfd_config_changes(const struct lutfd_config *a, const struct lutfd_config *b,
			  void (*fn)(void *ctx, const char *key, size_t off, size_t size),
			  void *ctx)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		size_t size = k->kind == STR	? k->size
			      : k->kind == U32	? sizeof(uint32_t)
			      : k->kind == U64	? sizeof(uint64_t)
						: sizeof(bool);
		const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;

		if (k->kind == STR ? strcmp(pa, pb) != 0 : memcmp(pa, pb, size) != 0)
			fn(ctx, k->name, k->off, size);
	}
}
