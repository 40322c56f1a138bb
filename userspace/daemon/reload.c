/* SPDX-License-Identifier: MIT */
/*
 * The operator's signals: SIGHUP re-reads the configuration and applies the
 * keys lutfd reads afresh each time it uses them (the rest are logged as
 * restart-only, never half-applied), and sd_notify readiness over
 * $NOTIFY_SOCKET without libsystemd. Invariant: a reload never exits and
 * never changes a value some structure was sized or bound with.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lutfd.h"

/* Keys read at each use: a new value is safe from the next use on. Keep in
 * step with docs/operator.md ("Reloading"). */
static const char *const live_keys[] = {
    "max_queued",	      /* each invocation */
    "shutdown_grace_ms",      /* at shutdown */
    "restart_backoff_max_ms", /* at the next worker death */
    "load_timeout_ms",	      /* at the next app load */
    "stuck_grace_ms",	      /* at the next overdue check */
    "crash_loop_limit",	      /* at the next failed start and call */
    "http_max_header",	      /* HTTP limits: connections opened after the reload */
    "http_max_body",
    "http_max_rps",
    "http_max_pending",
    "http_request_timeout_ms",
};

struct reload {
	const struct lutfd_config *next;
	unsigned applied, restart_only;
	char applied_keys[512], restart_keys[512];
};

static void add_name(char *list, size_t cap, const char *key)
{
	size_t n = strlen(list);

	snprintf(list + n, cap - n, "%s%s", n ? ", " : "", key);
}

static void on_change(void *ctx, const char *key, size_t off, size_t size)
{
	struct reload *r = ctx;

	for (size_t i = 0; i < sizeof(live_keys) / sizeof(live_keys[0]); i++) {
		if (strcmp(live_keys[i], key))
			continue;
		memcpy((char *)&g_cfg + off, (const char *)r->next + off, size);
		r->applied++;
		add_name(r->applied_keys, sizeof(r->applied_keys), key);
		return;
	}
	r->restart_only++;
	add_name(r->restart_keys, sizeof(r->restart_keys), key);
}

void lutfd_reload(const char *path, void (*flags)(struct lutfd_config *c))
{
	struct lutfd_config *next = malloc(sizeof(*next));
	struct reload r = {.next = next};
	int err;

	if (!next) {
		lutfd_log("SIGHUP: out of memory; configuration unchanged");
		return;
	}
	lutfd_sd_notify("RELOADING=1");
	lutfd_config_defaults(next);
	err = lutfd_config_load(next, path);
	if (err == -ENOENT && access(path, F_OK) == 0)
		err = -EACCES;
	if (err && err != -ENOENT) {
		lutfd_log("SIGHUP: %s: %s; configuration unchanged", path,
			  err == -EINVAL ? "invalid (see the line above)" : strerror(-err));
		goto out;
	}
	if (flags)
		flags(next); /* command-line flags still win */
	lutfd_config_changes(&g_cfg, next, on_change, &r);
	if (!r.applied && !r.restart_only)
		lutfd_log("SIGHUP: %s re-read: no change", path);
	if (r.applied) {
		lutfd_http_reload();
		lutfd_log("SIGHUP: applied %s", r.applied_keys);
	}
	if (r.restart_only)
		lutfd_log("SIGHUP: changed but restart-only (not applied): %s", r.restart_keys);
out:
	free(next);
	lutfd_sd_notify("READY=1");
}

void lutfd_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t len;
	size_t n;
	int fd;

	if (!path || !path[0])
		return;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(a.sun_path))
		return;
	memcpy(a.sun_path, path, n);
	if (path[0] == '@')
		a.sun_path[0] = 0; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&a, len) < 0)
		lutfd_log("sd_notify %s: %s", state, strerror(errno));
	close(fd);
}
