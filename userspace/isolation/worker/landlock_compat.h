/* SPDX-License-Identifier: MIT */
/*
 * Landlock definitions newer than the kernel headers this builds against
 * (Debian 12's stop at ABI 2). Values are the kernel's UAPI; each one is used
 * only after landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION) says the
 * running kernel knows it. Our own attribute struct carries every field up to
 * ABI 6; its size passed to the kernel follows the probed ABI.
 */
#ifndef LUTF_LANDLOCK_COMPAT_H
#define LUTF_LANDLOCK_COMPAT_H

#include <linux/landlock.h>
#include <linux/types.h>

#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#ifndef LANDLOCK_ACCESS_FS_REFER /* ABI 2 */
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE /* ABI 3 */
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV /* ABI 5 */
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP /* ABI 4 */
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#define LUTF_LANDLOCK_RULE_NET_PORT 2	    /* enum landlock_rule_type, ABI 4 */
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET /* ABI 6 */
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

/* struct landlock_ruleset_attr as of ABI 6. */
struct lutf_landlock_ruleset_attr {
	__u64 handled_access_fs;  /* ABI 1 */
	__u64 handled_access_net; /* ABI 4 */
	__u64 scoped;		  /* ABI 6 */
};

/* struct landlock_net_port_attr (ABI 4). */
struct lutf_landlock_net_port_attr {
	__u64 allowed_access;
	__u64 port;
};

#endif /* LUTF_LANDLOCK_COMPAT_H */
