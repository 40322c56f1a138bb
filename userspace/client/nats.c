/* SPDX-License-Identifier: MIT */
/*
 * nats:// endpoints: invocations as NATS requests to lutf.inv.<tenant>.<fn>,
 * the subject every lutfd of a cluster serves in queue group "lutf"
 * (docs/cluster.md), with the headers lutfd's own forwarder uses both ways.
 * Invariants: a reply is matched to its call by its own reply subject, never
 * by order, so a late reply cannot answer another call; every call of the
 * asynchronous handle completes exactly once (reply, no responders, or its
 * deadline); a message that libnats delivers is read by this handle's thread
 * only after it left the delivery thread through the mutex-guarded inbox.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "async.h"
#include "nats_int.h"

#define INV_SUBJ "lutf.inv" /* .<tenant>.<function>; the nodes' subscription */
#define NSERVERS_MAX 16
#define HOST_MAX 255
#define CONNECT_MS 2000

bool clnt_is_nats(const char *url)
{
	return url && strncmp(url, "nats://", 7) == 0;
}

/* One "[user[:pass]@]host:port" item; host a name, IPv4 or [IPv6]. */
static bool item_ok(const char *s, size_t n)
{
	const char *at = memrchr(s, '@', n), *colon;
	size_t hl;
	unsigned long port = 0;

	if (at) {
		if (at == s)
			return false;
		n -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	colon = memrchr(s, ':', n);
	if (!colon || colon == s || (size_t)(colon - s) > HOST_MAX)
		return false;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			return false;
	} else {
		for (size_t i = 0; i < hl; i++) {
			char c = s[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
				return false;
		}
	}
	if (colon + 1 == s + n || (size_t)(s + n - colon - 1) > 5)
		return false;
	for (const char *p = colon + 1; p < s + n; p++) {
		if (*p < '0' || *p > '9')
			return false;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	return port >= 1 && port <= 65535;
}

/*
 * Split "nats://a:p[,b:q...]" (each item may repeat the nats:// prefix) into
 * "nats://item" strings. Returns the count (1..NSERVERS_MAX), or -EINVAL
 * (malformed) or -ENOMEM; the strings are freed with free_servers.
 */
static int parse_servers(const char *url, char *out[NSERVERS_MAX])
{
	const char *p;
	int n = 0;

	if (!clnt_is_nats(url))
		return -EINVAL;
	p = url + 7;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len >= 7 && strncmp(p, "nats://", 7) == 0) {
			p += 7;
			len -= 7;
		}
		if (n == NSERVERS_MAX || !item_ok(p, len))
			goto bad;
		if (asprintf(&out[n], "nats://%.*s", (int)len, p) < 0) {
			out[n] = NULL;
			goto nomem;
		}
		n++;
		if (!end)
			return n;
		p = end + 1;
	}
bad:
	for (int i = 0; i < n; i++)
		free(out[i]);
	return -EINVAL;
nomem:
	for (int i = 0; i < n; i++)
		free(out[i]);
	return -ENOMEM;
}

int clnt_nats_url_check(const char *url)
{
	char *s[NSERVERS_MAX];
	int n = parse_servers(url, s);

	for (int i = 0; i < n; i++)
		free(s[i]);
	return n < 0 ? n : 0;
}

static int nerr(natsStatus s)
{
	switch (s) {
	case NATS_OK:
		return 0;
	case NATS_NO_MEMORY:
		return -ENOMEM;
	case NATS_TIMEOUT:
		return -ETIMEDOUT;
	case NATS_NO_SERVER:
		return -ECONNREFUSED;
	case NATS_CONNECTION_CLOSED:
	case NATS_CONNECTION_DISCONNECTED:
	case NATS_STALE_CONNECTION:
		return -ENOTCONN;
	case NATS_MAX_PAYLOAD:
		return -EMSGSIZE;
	case NATS_NOT_PERMITTED:
	case NATS_CONNECTION_AUTH_FAILED:
		return -EACCES;
	case NATS_INVALID_ARG:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/*
 * Connect to the servers of url. Credentials: user:password@ or token@ in
 * the URL, or a credentials file in $LUTF_NATS_CREDS. Returns 0 and *out,
 * or -EINVAL (malformed URL), -ENOMEM, -ECONNREFUSED (no server answered),
 * -EACCES (refused credentials) or -EIO.
 */
static int nats_dial(const char *url, natsConnection **out)
{
	char *servers[NSERVERS_MAX];
	natsOptions *o = NULL;
	const char *creds = getenv("LUTF_NATS_CREDS");
	natsStatus s;
	int n = parse_servers(url, servers);

	*out = NULL;
	if (n < 0)
		return n;
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, (const char **)servers, n);
	if (s == NATS_OK)
		s = natsOptions_SetNoRandomize(o, true);
	/* Latency: without it a request waits for libnats' flusher (~1 ms). */
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, CONNECT_MS);
	/* Once connected, ride out any outage: calls meanwhile wait in libnats'
	 * reconnect buffer under their own timeouts. */
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, "liblutf-client");
	if (s == NATS_OK && creds && *creds)
		s = natsOptions_SetUserCredentialsFromFiles(o, creds, NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(out, o);
	natsOptions_Destroy(o);
	for (int i = 0; i < n; i++)
		free(servers[i]);
	if (s != NATS_OK) {
		*out = NULL;
		return nerr(s);
	}
	return 0;
}

/* The request message of one call: subject, reply subject (or NULL), headers. */
static int build_msg(natsMsg **m, const char *tenant, const char *fn, const char *reply,
		     const struct lutf_client_request *req, const char *key, uint32_t max_frame)
{
	char subj[sizeof(INV_SUBJ) + 2 * 64 + 2], num[16];
	natsStatus s;

	*m = NULL;
	if (req->input_len > max_frame || req->input_len > INT32_MAX)
		return -EMSGSIZE;
	snprintf(subj, sizeof(subj), INV_SUBJ ".%s.%s", tenant, fn);
	s = natsMsg_Create(m, subj, reply, req->input, (int)req->input_len);
	if (s == NATS_OK && req->content_type && *req->content_type)
		s = natsMsgHeader_Set(*m, "Lutf-Content-Type", req->content_type);
	if (s == NATS_OK && req->timeout_ms) {
		snprintf(num, sizeof(num), "%" PRIu32, req->timeout_ms);
		s = natsMsgHeader_Set(*m, "Lutf-Timeout-Ms", num);
	}
	if (s == NATS_OK && key && *key)
		s = natsMsgHeader_Set(*m, "Lutf-Key", key);
	if (s != NATS_OK) {
		natsMsg_Destroy(*m);
		*m = NULL;
		return nerr(s);
	}
	return 0;
}

/* A decimal u32 header value, whole; false otherwise. */
static bool hdr_u32(natsMsg *m, const char *name, uint32_t *out)
{
	const char *v = NULL;
	char *end;
	unsigned long long n;

	if (natsMsgHeader_Get(m, name, &v) != NATS_OK || !v || *v < '0' || *v > '9')
		return false;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n > UINT32_MAX)
		return false;
	*out = (uint32_t)n;
	return true;
}

static int hdr_str(natsMsg *m, const char *name, char **out)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, name, &v) != NATS_OK || !v)
		return 0;
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

/*
 * A reply message into res (empty): no responders is UNKNOWN_FUNCTION, a
 * reply without a valid Lutf-Status is -EPROTO, a body over max_frame
 * -EMSGSIZE. Returns 0, -EPROTO, -EMSGSIZE or -ENOMEM (res then partly
 * filled: release it).
 */
static int decode_reply(natsMsg *m, const char *tenant, const char *fn, uint32_t max_frame,
			struct lutf_client_result *res)
{
	int len = natsMsg_GetDataLength(m), err;

	if (natsMsg_IsNoResponders(m)) {
		res->status = LUTF_STATUS_UNKNOWN_FUNCTION;
		if (asprintf(&res->error, "no node of the cluster serves %s/%s", tenant, fn) < 0) {
			res->error = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	if (!hdr_u32(m, "Lutf-Status", &res->status) || res->status >= LUTF_STATUS__COUNT)
		return -EPROTO;
	if (!hdr_u32(m, "Lutf-Detail", &res->detail))
		res->detail = 0;
	if (len < 0 || (uint64_t)len > max_frame)
		return -EMSGSIZE;
	err = hdr_str(m, "Lutf-Error", &res->error);
	if (!err)
		err = hdr_str(m, "Lutf-Content-Type", &res->content_type);
	if (err)
		return err;
	if (len > 0) {
		res->output = malloc((size_t)len + 1);
		if (!res->output)
			return -ENOMEM;
		memcpy(res->output, natsMsg_GetData(m), (size_t)len);
		((char *)res->output)[len] = 0;
		res->output_len = (size_t)len;
	}
	return 0;
}

/* ---- the synchronous handle ---- */

int clnt_nats_connect(struct lutf_client *c)
{
	natsConnection *nc = NULL;
	int err = nats_dial(c->url, &nc);

	if (err)
		return err;
	c->nats = nc;
	return 0;
}

void clnt_nats_close(struct lutf_client *c)
{
	if (c->nats) {
		natsConnection_Destroy(c->nats);
		c->nats = NULL;
	}
}

int clnt_nats_invoke(struct lutf_client *c, const char *tenant, const char *fn,
		     const struct lutf_client_request *req, struct lutf_client_result *res)
{
	natsMsg *m = NULL, *rep = NULL;
	uint32_t wait = clnt_invoke_wait(req, c->timeout_ms, c->grace_ms);
	natsStatus s;
	int err;

	if (!c->nats)
		return -ENOTCONN;
	err = build_msg(&m, tenant, fn, NULL, req, c->key, c->max_frame);
	if (err)
		return err;
	/* wait 0 means "forever" in the handle's terms; libnats needs a bound. */
	s = natsConnection_RequestMsg(&rep, c->nats, m, wait ? (int64_t)wait : INT32_MAX);
	natsMsg_Destroy(m);
	if (s == NATS_NO_RESPONDERS) {
		res->status = LUTF_STATUS_UNKNOWN_FUNCTION;
		if (asprintf(&res->error, "no node of the cluster serves %s/%s", tenant, fn) < 0)
			res->error = NULL;
		return 0;
	}
	if (s != NATS_OK)
		return nerr(s);
	err = decode_reply(rep, tenant, fn, c->max_frame, res);
	natsMsg_Destroy(rep);
	if (err)
		lutf_client_result_release(res);
	return err;
}

int clnt_nats_ping(struct lutf_client *c, uint32_t *status)
{
	natsStatus s;

	if (!c->nats)
		return -ENOTCONN;
	s = natsConnection_FlushTimeout(c->nats, c->timeout_ms ? c->timeout_ms : INT32_MAX);
	if (s != NATS_OK)
		return nerr(s);
	*status = LUTF_STATUS_OK;
	return 0;
}

/* ---- the asynchronous handle ---- */

/*
 * Calls live in slots as in async.c (request id = sequence << AID_SHIFT |
 * slot); the id is the last token of the reply subject. Replies arrive on a
 * libnats thread (on_msg), wait in a list under mu, and are matched by the
 * handle's own thread in reap.
 */
enum { NC_FREE = 0, NC_QUEUED, NC_SENT, NC_DONE };

struct ncall {
	uint64_t id, user_data;
	int64_t deadline;
	natsMsg *msg;  /* NC_QUEUED: the request, until flush publishes it */
	uint32_t next; /* queue, done list or free list */
	uint8_t state;
	int error;
	char tenant[64], fn[64];
	struct lutf_client_result result;
};

struct clnt_nats_async {
	natsConnection *nc;
	natsSubscription *sub;
	char inbox[96]; /* "<inbox>." */
	struct ncall *calls;
	uint32_t free_head, nfree;
	uint32_t q_head, q_tail; /* NC_QUEUED, in submit order */
	uint32_t d_head, d_tail, ndone;
	uint32_t nactive;
	int64_t next_deadline;
	pthread_mutex_t mu; /* guards in[] and nin, filled by the delivery thread */
	pthread_cond_t cv;
	natsMsg **in;
	size_t nin, in_cap;
	bool in_failed; /* a reply was dropped for want of memory (calls then time out) */
	bool sub_live;	/* on_msg may still run: on_complete not called yet (under mu) */
};

static void nlist_push(struct lutf_client_async *a, uint32_t *head, uint32_t *tail, uint32_t i)
{
	a->nats->calls[i].next = ANONE;
	if (*tail != ANONE)
		a->nats->calls[*tail].next = i;
	else
		*head = i;
	*tail = i;
}

static void ncomplete(struct lutf_client_async *a, uint32_t i, int err)
{
	struct clnt_nats_async *n = a->nats;
	struct ncall *k = &n->calls[i];

	if (k->msg) {
		natsMsg_Destroy(k->msg);
		k->msg = NULL;
	}
	k->state = NC_DONE;
	k->error = err;
	nlist_push(a, &n->d_head, &n->d_tail, i);
	n->ndone++;
	n->nactive--;
	a->st.completed++;
}

static void nslot_free(struct clnt_nats_async *n, uint32_t i)
{
	struct ncall *k = &n->calls[i];

	k->state = NC_FREE;
	k->id = 0;
	k->next = n->free_head;
	n->free_head = i;
	n->nfree++;
}

/* libnats delivery thread: hand the reply to the handle's thread. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct clnt_nats_async *n = arg;

	(void)nc;
	(void)sub;
	pthread_mutex_lock(&n->mu);
	if (n->nin == n->in_cap) {
		size_t cap = n->in_cap ? 2 * n->in_cap : 256;
		natsMsg **p = realloc(n->in, cap * sizeof(*p));

		if (!p) {
			n->in_failed = true;
			pthread_mutex_unlock(&n->mu);
			natsMsg_Destroy(m);
			return;
		}
		n->in = p;
		n->in_cap = cap;
	}
	n->in[n->nin++] = m;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

/* libnats: the subscription is closed and on_msg has returned for good. */
static void on_complete(void *arg)
{
	struct clnt_nats_async *n = arg;

	pthread_mutex_lock(&n->mu);
	n->sub_live = false;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

int clnt_nats_async_open(struct lutf_client_async *a, const char *url)
{
	struct clnt_nats_async *n = calloc(1, sizeof(*n));
	pthread_condattr_t ca;
	natsInbox *ib = NULL;
	char subj[128];
	natsStatus s;
	int err;

	if (!n)
		return -ENOMEM;
	a->nats = n;
	pthread_mutex_init(&n->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cv, &ca);
	pthread_condattr_destroy(&ca);
	n->free_head = n->q_head = n->q_tail = n->d_head = n->d_tail = ANONE;
	n->next_deadline = INT64_MAX;
	n->calls = calloc(a->depth, sizeof(*n->calls));
	if (!n->calls)
		return -ENOMEM;
	for (uint32_t i = a->depth; i-- > 0;)
		nslot_free(n, i);
	err = nats_dial(url, &n->nc);
	if (err)
		return err;
	if (natsInbox_Create(&ib) != NATS_OK)
		return -ENOMEM;
	snprintf(n->inbox, sizeof(n->inbox), "%s.", (const char *)ib);
	snprintf(subj, sizeof(subj), "%s.*", (const char *)ib);
	natsInbox_Destroy(ib);
	s = natsConnection_Subscribe(&n->sub, n->nc, subj, on_msg, n);
	if (s == NATS_OK) {
		n->sub_live = true;
		s = natsSubscription_SetOnCompleteCB(n->sub, on_complete, n);
		if (s != NATS_OK)
			n->sub_live = false; /* closed already: on_msg runs no more */
	}
	if (s == NATS_OK) /* queue_depth bounds what can arrive; no libnats limit */
		s = natsSubscription_SetPendingLimits(n->sub, -1, -1);
	/* The subscription reaches the server before any request does. */
	if (s == NATS_OK)
		s = natsConnection_FlushTimeout(n->nc, CONNECT_MS);
	if (s != NATS_OK)
		return nerr(s);
	a->st.live_conns = 1;
	return 0;
}

void clnt_nats_async_close(struct lutf_client_async *a)
{
	struct clnt_nats_async *n = a->nats;

	if (!n)
		return;
	if (n->sub) {
		struct timespec ts;
		int64_t until = async_now() + 2000000000LL;

		natsSubscription_Unsubscribe(n->sub);
		/* on_msg may be running on libnats' thread: n is freed only after
		 * on_complete said it returned (bounded: after 2 s, and a closed
		 * connection below, n is leaked rather than freed under it). */
		ts.tv_sec = until / 1000000000;
		ts.tv_nsec = until % 1000000000;
		pthread_mutex_lock(&n->mu);
		while (n->sub_live && pthread_cond_timedwait(&n->cv, &n->mu, &ts) == 0)
			;
		pthread_mutex_unlock(&n->mu);
		natsSubscription_Destroy(n->sub);
	}
	if (n->nc)
		natsConnection_Destroy(n->nc);
	pthread_mutex_lock(&n->mu);
	if (n->sub_live) {
		pthread_mutex_unlock(&n->mu);
		a->nats = NULL;
		return; /* leaked on purpose: see above */
	}
	pthread_mutex_unlock(&n->mu);
	for (size_t i = 0; i < n->nin; i++)
		natsMsg_Destroy(n->in[i]);
	free(n->in);
	for (uint32_t i = 0; n->calls && i < a->depth; i++) {
		natsMsg_Destroy(n->calls[i].msg);
		lutf_client_result_release(&n->calls[i].result);
	}
	free(n->calls);
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mu);
	free(n);
	a->nats = NULL;
}

int clnt_nats_submit(struct lutf_client_async *a, const char *tenant, const char *fn,
		     const struct lutf_client_request *req, uint64_t user_data)
{
	struct clnt_nats_async *n = a->nats;
	char reply[128];
	struct ncall *k;
	uint64_t id;
	uint32_t i;
	int err;

	if (!n->nfree)
		return -EAGAIN;
	i = n->free_head;
	k = &n->calls[i];
	id = (a->seq + 1) << AID_SHIFT | i;
	snprintf(reply, sizeof(reply), "%s%" PRIu64, n->inbox, id);
	err = build_msg(&k->msg, tenant, fn, reply, req, a->key, a->max_frame);
	if (err)
		return err;
	a->seq++;
	n->free_head = k->next;
	n->nfree--;
	k->id = id;
	k->user_data = user_data;
	k->error = 0;
	snprintf(k->tenant, sizeof(k->tenant), "%s", tenant);
	snprintf(k->fn, sizeof(k->fn), "%s", fn);
	k->deadline =
	    async_now() + (int64_t)clnt_invoke_wait(req, a->timeout_ms, a->grace_ms) * 1000000;
	if (k->deadline < n->next_deadline)
		n->next_deadline = k->deadline;
	k->state = NC_QUEUED;
	nlist_push(a, &n->q_head, &n->q_tail, i);
	n->nactive++;
	a->st.submitted++;
	return 0;
}

/* Publish every queued request. A request libnats refuses (the connection
 * is closed, or its reconnect buffer is full) was never sent: it completes
 * -ECONNRESET. */
int clnt_nats_flush(struct lutf_client_async *a)
{
	struct clnt_nats_async *n = a->nats;
	int sent = 0;

	while (n->q_head != ANONE) {
		uint32_t i = n->q_head;
		struct ncall *k = &n->calls[i];
		natsStatus s;

		n->q_head = k->next;
		if (n->q_head == ANONE)
			n->q_tail = ANONE;
		s = natsConnection_PublishMsg(n->nc, k->msg);
		natsMsg_Destroy(k->msg);
		k->msg = NULL;
		if (s != NATS_OK) {
			ncomplete(a, i, -ECONNRESET);
			continue;
		}
		k->state = NC_SENT;
		sent++;
	}
	if (sent)
		a->st.enters++;
	return sent;
}

/* Replies that arrived: match each to its call (late or stray ones are dropped). */
static void take_replies(struct lutf_client_async *a, natsMsg **in, size_t nin)
{
	struct clnt_nats_async *n = a->nats;
	size_t plen = strlen(n->inbox);

	for (size_t j = 0; j < nin; j++) {
		natsMsg *m = in[j];
		const char *subj = natsMsg_GetSubject(m);
		char *end;
		uint64_t id;
		uint32_t i;
		struct ncall *k;
		int err;

		if (!subj || strncmp(subj, n->inbox, plen) != 0)
			goto drop;
		errno = 0;
		id = strtoull(subj + plen, &end, 10);
		i = (uint32_t)(id & (AMAX_DEPTH - 1));
		if (errno || *end || i >= a->depth)
			goto drop;
		k = &n->calls[i];
		if (k->id != id || k->state != NC_SENT)
			goto drop; /* its call timed out: the answer came late */
		err = decode_reply(m, k->tenant, k->fn, a->max_frame, &k->result);
		if (err)
			lutf_client_result_release(&k->result);
		ncomplete(a, i, err);
	drop:
		natsMsg_Destroy(m);
	}
}

static void nexpire(struct lutf_client_async *a, int64_t now)
{
	struct clnt_nats_async *n = a->nats;
	int64_t next = INT64_MAX;
	uint32_t prev = ANONE;

	if (now < n->next_deadline)
		return;
	/* Queued calls are unlinked from the queue as they expire. */
	for (uint32_t i = n->q_head; i != ANONE;) {
		struct ncall *k = &n->calls[i];
		uint32_t nx = k->next;

		if (k->deadline <= now) {
			if (prev == ANONE)
				n->q_head = nx;
			else
				n->calls[prev].next = nx;
			if (n->q_tail == i)
				n->q_tail = prev;
			ncomplete(a, i, -ETIMEDOUT);
		} else {
			prev = i;
		}
		i = nx;
	}
	for (uint32_t i = 0; i < a->depth; i++) {
		struct ncall *k = &n->calls[i];

		if (k->state != NC_SENT && k->state != NC_QUEUED)
			continue;
		if (k->state == NC_SENT && k->deadline <= now)
			ncomplete(a, i, -ETIMEDOUT);
		else if (k->deadline < next)
			next = k->deadline;
	}
	n->next_deadline = next;
}

/* Take what arrived, waiting up to until (CLOCK_MONOTONIC ns) for something. */
static void wait_in(struct lutf_client_async *a, int64_t until)
{
	struct clnt_nats_async *n = a->nats;
	natsMsg **in;
	size_t nin;

	pthread_mutex_lock(&n->mu);
	if (!n->nin && until > async_now()) {
		struct timespec ts = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};

		a->st.enters++;
		while (!n->nin && pthread_cond_timedwait(&n->cv, &n->mu, &ts) == 0)
			;
	}
	in = n->in;
	nin = n->nin;
	n->in = NULL;
	n->nin = n->in_cap = 0;
	pthread_mutex_unlock(&n->mu);
	take_replies(a, in, nin);
	free(in);
}

int clnt_nats_reap(struct lutf_client_async *a, struct lutf_client_completion *out, size_t max,
		   int wait_ms)
{
	struct clnt_nats_async *n = a->nats;
	int64_t now = async_now(), until;
	size_t got = 0;

	until = wait_ms < 0 ? INT64_MAX : now + (int64_t)wait_ms * 1000000;
	clnt_nats_flush(a);
	for (;;) {
		int64_t w = now;

		nexpire(a, now);
		if (!n->ndone && n->nactive)
			w = until < n->next_deadline ? until : n->next_deadline;
		wait_in(a, w);
		now = async_now();
		nexpire(a, now);
		a->st.live_conns =
		    natsConnection_Status(n->nc) == NATS_CONN_STATUS_CONNECTED ? 1 : 0;
		if (n->ndone || !n->nactive || now >= until)
			break;
	}
	while (got < max && n->d_head != ANONE) {
		uint32_t i = n->d_head;
		struct ncall *k = &n->calls[i];
		struct lutf_client_completion *c = &out[got++];

		n->d_head = k->next;
		if (n->d_head == ANONE)
			n->d_tail = ANONE;
		n->ndone--;
		c->user_data = k->user_data;
		c->error = k->error;
		c->endpoint = 0;
		c->result = k->result;
		memset(&k->result, 0, sizeof(k->result));
		nslot_free(n, i);
	}
	return (int)got;
}

size_t clnt_nats_outstanding(const struct lutf_client_async *a)
{
	return a->depth - a->nats->nfree;
}
