/* SPDX-License-Identifier: MIT */
/*
 * A tier policy's filesystem and network view as a Landlock ruleset. The
 * ruleset handles every access right the running kernel knows (probed ABI),
 * so whatever no rule grants is refused: read+execute on the app folder and
 * the system library folders, what the tier adds, nothing else. Without
 * Landlock (old kernel, LSM off) the caller is told and the tier runs on
 * seccomp and identity alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "landlock_compat.h"
#include "sandbox.h"

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_WRITE                                                                                   \
	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                           \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |                            \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_TRUNCATE)
/* Rights that apply to a regular file (the rest are directory rights). */
#define FS_FILE                                                                                    \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |                              \
	 LANDLOCK_ACCESS_FS_IOCTL_DEV)

int lutf_landlock_abi(void)
{
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return abi > 0 ? (int)abi : 0;
}

/* Every filesystem right the kernel of this ABI knows. */
static __u64 fs_handled(int abi)
{
	__u64 all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */

	if (abi >= 2)
		all |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		all |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return all;
}

/* must: the path was asked for by name (app or scratch folder), so its
 * absence is an error; a system folder this host lacks is skipped. */
static int add_path(struct lutf_landlock *ll, const char *path, __u64 access, __u64 handled,
		    bool must, const char *where, char *err, size_t cap)
{
	struct landlock_path_beneath_attr pb = {0};
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !must)
			return 0; /* a library folder this host lacks */
		rc = -errno;
		snprintf(err, cap, "%s: landlock: open %s: %s", where, path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= FS_FILE;
	pb.allowed_access = access & handled;
	pb.parent_fd = fd;
	if (pb.allowed_access &&
	    syscall(__NR_landlock_add_rule, ll->fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0)) {
		rc = -errno;
		snprintf(err, cap, "%s: landlock rule for %s: %s", where, path, strerror(-rc));
	}
	close(fd);
	return rc;
}

static int add_ports(struct lutf_landlock *ll, const struct lutf_pol_net *n, __u64 access,
		     char *err, size_t cap)
{
	for (uint32_t i = 0; i < n->nports; i++) {
		struct lutf_landlock_net_port_attr np = {.allowed_access = access,
							 .port = n->ports[i]};

		if (syscall(__NR_landlock_add_rule, ll->fd, LUTF_LANDLOCK_RULE_NET_PORT, &np, 0)) {
			int rc = -errno;

			snprintf(err, cap, "landlock port rule %u: %s", n->ports[i], strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Returns 0 or -errno; ll->fd = -1 when Landlock is unavailable. */
int lutf_landlock_build(const struct lutf_policy *p, const char *app_dir, const char *scratch_dir,
			struct lutf_landlock *ll, char *err, size_t cap)
{
	struct lutf_landlock_ruleset_attr attr = {0};
	size_t size = sizeof(attr.handled_access_fs);
	__u64 handled;
	int rc;

	ll->fd = -1;
	ll->abi = lutf_landlock_abi();
	ll->net = ll->scoped = false;
	if (!ll->abi)
		return 0;
	handled = attr.handled_access_fs = fs_handled(ll->abi);
	if (ll->abi >= 4) {
		/* "all" = not handled; a port list or nothing = handled. */
		if (!p->connect.all)
			attr.handled_access_net |= LANDLOCK_ACCESS_NET_CONNECT_TCP;
		if (!p->bind.all)
			attr.handled_access_net |= LANDLOCK_ACCESS_NET_BIND_TCP;
		size = offsetof(struct lutf_landlock_ruleset_attr, scoped);
		ll->net = attr.handled_access_net != 0;
	}
	if (ll->abi >= 6) {
		attr.scoped = LANDLOCK_SCOPE_SIGNAL | LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET;
		size = sizeof(attr);
		ll->scoped = true;
	}
	ll->fd = (int)syscall(__NR_landlock_create_ruleset, &attr, size, 0);
	if (ll->fd < 0) {
		rc = -errno;
		ll->fd = -1;
		snprintf(err, cap, "landlock_create_ruleset (ABI %d): %s", ll->abi, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < p->npaths; i++) {
		const struct lutf_pol_path *pp = &p->paths[i];
		const char *path = pp->path;
		bool must = path[0] == '@';
		__u64 acc = pp->access == LUTF_FS_RX   ? FS_READ | LANDLOCK_ACCESS_FS_EXECUTE
			    : pp->access == LUTF_FS_RO ? FS_READ
						       : FS_READ | FS_WRITE;

		if (!strcmp(path, "@app"))
			path = app_dir;
		else if (!strcmp(path, "@scratch"))
			path = scratch_dir;
		if (!path || !path[0])
			continue; /* no app folder or scratch folder given */
		rc = add_path(ll, path, acc, handled, must, pp->where, err, cap);
		if (rc)
			goto fail;
	}
	if (ll->abi >= 4 && !p->connect.all &&
	    (rc = add_ports(ll, &p->connect, LANDLOCK_ACCESS_NET_CONNECT_TCP, err, cap)))
		goto fail;
	if (ll->abi >= 4 && !p->bind.all &&
	    (rc = add_ports(ll, &p->bind, LANDLOCK_ACCESS_NET_BIND_TCP, err, cap)))
		goto fail;
	return 0;
fail:
	lutf_landlock_close(ll);
	return rc;
}

/* Returns 0 or -errno. */
int lutf_landlock_enforce(struct lutf_landlock *ll, char *err, size_t cap)
{
	int rc = 0;

	if (ll->fd < 0)
		return 0;
	if (syscall(__NR_landlock_restrict_self, ll->fd, 0)) {
		rc = -errno;
		snprintf(err, cap, "landlock_restrict_self: %s", strerror(-rc));
	}
	lutf_landlock_close(ll);
	return rc;
}

void lutf_landlock_close(struct lutf_landlock *ll)
{
	if (ll->fd >= 0)
		close(ll->fd);
	ll->fd = -1;
}
