/* SPDX-License-Identifier: MIT */
/*
 * nats:// endpoints (nats.c): the synchronous and the asynchronous handle
 * call lutf.inv.<tenant>.<fn> over NATS instead of a socket. client.c and
 * async.c hand a handle over here when its URL is nats://.
 */
#ifndef LUTF_CLIENT_NATS_INT_H
#define LUTF_CLIENT_NATS_INT_H

#include <stdbool.h>

#include "internal.h"

struct lutf_client_async;

/* Does url start with nats://? */
bool clnt_is_nats(const char *url);
/* 0, or -EINVAL: url is not nats://[user[:pass]@]host:port[,host:port...]. */
int clnt_nats_url_check(const char *url);

/* Connect c (c->url is nats://). Returns 0, or -EINVAL (malformed URL),
 * -ENOMEM, -ECONNREFUSED (no server), -EACCES (credentials) or -EIO. */
int clnt_nats_connect(struct lutf_client *c);
void clnt_nats_close(struct lutf_client *c);
/* As lutf_client_invoke (arguments checked by the caller, res empty). */
int clnt_nats_invoke(struct lutf_client *c, const char *tenant, const char *fn,
		     const struct lutf_client_request *req, struct lutf_client_result *res);
/* A round trip to the NATS server: *status OK. Returns 0 or -errno. */
int clnt_nats_ping(struct lutf_client *c, uint32_t *status);

/* The asynchronous handle a, with a->depth, timeouts, key and max_frame
 * set: dial url and subscribe to the handle's inbox. Returns 0 or -errno
 * as clnt_nats_connect; on failure clnt_nats_async_close cleans up. */
int clnt_nats_async_open(struct lutf_client_async *a, const char *url);
void clnt_nats_async_close(struct lutf_client_async *a);
/* As lutf_client_submit, flush, reap and outstanding (arguments checked). */
int clnt_nats_submit(struct lutf_client_async *a, const char *tenant, const char *fn,
		     const struct lutf_client_request *req, uint64_t user_data);
int clnt_nats_flush(struct lutf_client_async *a);
int clnt_nats_reap(struct lutf_client_async *a, struct lutf_client_completion *out, size_t max,
		   int wait_ms);
size_t clnt_nats_outstanding(const struct lutf_client_async *a);

#endif /* LUTF_CLIENT_NATS_INT_H */
