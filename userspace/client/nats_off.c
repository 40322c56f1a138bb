/* SPDX-License-Identifier: MIT */
/*
 * liblutf-client built with -DLUTF_CLIENT_NATS=OFF: no libnats, and a
 * nats:// URL is refused with -EPROTONOSUPPORT (any other URL is untouched).
 */
#include <errno.h>
#include <string.h>

#include "async.h"
#include "nats_int.h"

bool clnt_is_nats(const char *url)
{
	return url && strncmp(url, "nats://", 7) == 0;
}

int clnt_nats_url_check(const char *url)
{
	(void)url;
	return -EPROTONOSUPPORT;
}

int clnt_nats_connect(struct lutf_client *c)
{
	(void)c;
	return -EPROTONOSUPPORT;
}

void clnt_nats_close(struct lutf_client *c)
{
	(void)c;
}

int clnt_nats_invoke(struct lutf_client *c, const char *tenant, const char *fn,
		     const struct lutf_client_request *req, struct lutf_client_result *res)
{
	(void)c, (void)tenant, (void)fn, (void)req, (void)res;
	return -ENOTCONN;
}

int clnt_nats_ping(struct lutf_client *c, uint32_t *status)
{
	(void)c, (void)status;
	return -ENOTCONN;
}

int clnt_nats_async_open(struct lutf_client_async *a, const char *url)
{
	(void)a, (void)url;
	return -EPROTONOSUPPORT;
}

void clnt_nats_async_close(struct lutf_client_async *a)
{
	(void)a;
}

int clnt_nats_submit(struct lutf_client_async *a, const char *tenant, const char *fn,
		     const struct lutf_client_request *req, uint64_t user_data)
{
	(void)a, (void)tenant, (void)fn, (void)req, (void)user_data;
	return -ENOTCONN;
}

int clnt_nats_flush(struct lutf_client_async *a)
{
	(void)a;
	return 0;
}

int clnt_nats_reap(struct lutf_client_async *a, struct lutf_client_completion *out, size_t max,
		   int wait_ms)
{
	(void)a, (void)out, (void)max, (void)wait_ms;
	return 0;
}

size_t clnt_nats_outstanding(const struct lutf_client_async *a)
{
	(void)a;
	return 0;
}
