/* SPDX-License-Identifier: MIT */
/*
 * Per-tenant API keys, public apps and the admin token (keys.c): who may
 * invoke over TCP and HTTP, and who may read /metrics. Main thread only.
 * Functions that can fail return 0 or -errno.
 */
#ifndef LUTFD_KEYS_H
#define LUTFD_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingress.h"
#include "wire.h"

/* Read <state_dir>/keys (absent: no keys) and the admin token (created when
 * absent). Returns 0 or -errno (message printed, naming the file). */
int lutfd_keys_load(void);

/* KEY_CREATE, KEY_LIST, KEY_REVOKE on the control socket. */
void lutfd_keys_control(struct lutf_conn *c, const struct lutf_wire_hdr *h, const uint8_t *payload);

/* Is tenant/app deployed --public? */
bool lutfd_keys_public(const char *tenant, const char *app);
/* Make tenant/app public or not, durably (nothing to do when it already is).
 * Returns 0 or -errno (then nothing changed; msg says why). */
int lutfd_keys_set_public(const char *tenant, const char *app, bool pub, char *msg, size_t cap);
/* Forget every key and public app of tenant (tenant removal), durably. */
int lutfd_keys_forget_tenant(const char *tenant);

enum lutfd_auth {
	LUTFD_AUTH_OK,
	LUTFD_AUTH_MISSING, /* no key given: HTTP 401 */
	LUTFD_AUTH_DENIED,  /* a key that does not open this function: HTTP 403 */
};

/*
 * May a call of tenant/fn with key (len bytes; NULL or len 0: none) go on?
 * OK when keys are not required, the function's app is public, or key is an
 * active key of tenant. msg gets the cause otherwise.
 */
enum lutfd_auth lutfd_keys_check(const char *tenant, const char *fn, const char *key, size_t len,
				 char *msg, size_t cap);

/* struct lutf_bin_handler's authorize hook: INVOKE frames over TCP. */
uint32_t lutfd_keys_authorize_frame(void *ctx, struct lutf_conn *c, const struct lutf_wire_hdr *h,
				    const uint8_t *payload, char *msg, size_t cap);

/* An HTTP Authorization header value ("Bearer <token>", NULL: none) against
 * the admin token. */
enum lutfd_auth lutfd_keys_admin_check(const char *authorization, char *msg, size_t cap);

#ifdef LUTF_HAVE_CLUSTER
struct lutf_cluster_key;
/* The cluster's keys thread hands over the whole lutf_keys table (any
 * thread; docs/cluster.md "Keys"): saved to <state_dir>/keys.cluster and
 * swapped in atomically. Returns 0 or -errno (not saved; still in force). */
int lutfd_keys_cluster_replace(const struct lutf_cluster_key *k, size_t n);
#endif

#endif /* LUTFD_KEYS_H */
