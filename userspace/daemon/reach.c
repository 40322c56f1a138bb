/* SPDX-License-Identifier: MIT */
/*
 * Functions cannot reach lutfd: every TCP connection lutfd accepts (binary
 * protocol, HTTP, admin) is traced to the socket that opened it, through
 * the kernel's socket table (NETLINK_SOCK_DIAG, an exact 4-tuple lookup),
 * and refused when that socket belongs to a tenant uid (uid_range).
 * Invariant: a connection from this host whose peer socket cannot be found
 * is refused too (fail closed); a peer on another host is not looked up
 * past the table miss. The Unix sockets are guarded by their mode (0660,
 * root:group; tenant uids are never in the group).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "isolation.h"
#include "lutfd.h"
#include "reach.h"

/* Is a the address of an interface of this host (or loopback)? */
static bool host_addr(const struct sockaddr_storage *a)
{
	struct ifaddrs *ifs, *i;
	bool local = false;

	if (a->ss_family == AF_INET &&
	    (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127)
		return true;
	if (a->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr))
		return true;
	if (getifaddrs(&ifs))
		return true; /* cannot tell: treat as local, look it up */
	for (i = ifs; i && !local; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != a->ss_family)
			continue;
		if (a->ss_family == AF_INET)
			local = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr ==
				((const struct sockaddr_in *)a)->sin_addr.s_addr;
		else
			local = !memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
					&((const struct sockaddr_in6 *)a)->sin6_addr, 16);
	}
	freeifaddrs(ifs);
	return local;
}

/* A v4-mapped v6 address ([::ffff:a.b.c.d]:p, a v4 peer of a dual-stack
 * listener) as the AF_INET address its socket has. */
static void unmap(struct sockaddr_storage *a)
{
	struct sockaddr_in6 v6 = *(struct sockaddr_in6 *)a;
	struct sockaddr_in *v4 = (struct sockaddr_in *)a;

	if (a->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr))
		return;
	memset(a, 0, sizeof(*a));
	v4->sin_family = AF_INET;
	v4->sin_port = v6.sin6_port;
	memcpy(&v4->sin_addr, &v6.sin6_addr.s6_addr[12], 4);
}

static void put_addr(__be32 dst[4], const struct sockaddr_storage *a, __be16 *port)
{
	memset(dst, 0, 16);
	if (a->ss_family == AF_INET) {
		dst[0] = ((const struct sockaddr_in *)a)->sin_addr.s_addr;
		*port = ((const struct sockaddr_in *)a)->sin_port;
	} else {
		memcpy(dst, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
		*port = ((const struct sockaddr_in6 *)a)->sin6_port;
	}
}

/*
 * The uid owning the TCP socket whose local end is peer and remote end is
 * self (the client's side of an accepted connection). Returns 0 and *uid,
 * -ENOENT (no such socket on this host) or -errno.
 */
static int peer_uid(const struct sockaddr_storage *peer, const struct sockaddr_storage *self,
		    uint32_t *uid)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {0};
	union {
		struct nlmsghdr nh;
		char buf[1024];
	} ans;
	struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
	int fd, rc = -ENOENT;
	ssize_t n;

	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	req.r.sdiag_family = (uint8_t)peer->ss_family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	put_addr(req.r.id.idiag_src, peer, &req.r.id.idiag_sport);
	put_addr(req.r.id.idiag_dst, self, &req.r.id.idiag_dport);
	req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0) {
		rc = -errno;
		goto out;
	}
	n = recv(fd, &ans, sizeof(ans), 0);
	if (n < 0) {
		rc = -errno;
		goto out;
	}
	if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct inet_diag_msg)) &&
	    ans.nh.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
		*uid = ((struct inet_diag_msg *)NLMSG_DATA(&ans.nh))->idiag_uid;
		rc = 0;
	} else if (ans.nh.nlmsg_type == NLMSG_ERROR &&
		   n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
		int e = ((struct nlmsgerr *)NLMSG_DATA(&ans.nh))->error;

		rc = e == -ENOENT ? -ENOENT : (e ? e : -ENOENT);
	}
out:
	close(fd);
	return rc;
}

int lutfd_reach_check(void *ctx, int fd, char *why, size_t cap)
{
	struct sockaddr_storage peer, self;
	socklen_t pl = sizeof(peer), sl = sizeof(self);
	uint32_t uid = 0, lo, hi;
	int rc;

	(void)ctx;
	if (g_cfg.functions_reach_lutfd || lutfd_uid_range(&lo, &hi) || !lo)
		return 0; /* allowed, or no tenant uids to tell apart */
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) ||
	    getsockname(fd, (struct sockaddr *)&self, &sl)) {
		snprintf(why, cap, "cannot read the connection's addresses: %s", strerror(errno));
		return -errno;
	}
	if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6)
		return 0;
	unmap(&peer);
	unmap(&self);
	rc = peer_uid(&peer, &self, &uid);
	if (rc == -ENOENT && !host_addr(&peer))
		return 0; /* another host */
	if (rc) {
		snprintf(why, cap, "the connecting socket cannot be traced (%s): refused",
			 strerror(-rc));
		return rc;
	}
	if (uid >= lo && uid <= hi) {
		snprintf(why, cap,
			 "functions may not connect to lutfd (uid %u is a tenant's; "
			 "functions_reach_lutfd)",
			 uid);
		return -EACCES;
	}
	return 0;
}
