/* SPDX-License-Identifier: MIT */
/*
 * reach.c: tenant functions cannot connect to lutfd's TCP listeners.
 */
#ifndef LUTFD_REACH_H
#define LUTFD_REACH_H

#include <stddef.h>

/* struct lutf_srv_limits's tcp_peer hook: 0, or -errno and why (the
 * connection is refused FORBIDDEN). */
int lutfd_reach_check(void *ctx, int fd, char *why, size_t cap);

#endif /* LUTFD_REACH_H */
