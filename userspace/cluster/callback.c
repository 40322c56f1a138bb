/* SPDX-License-Identifier: MIT */
/*
 * Callback URLs of async calls, delivered durably: once a call's result is
 * stored, a callback job (id and URL) goes into the JetStream work-queue
 * stream LUTF_CALLBACKS *before* the call is acked, so no node's death loses
 * it. Delivery threads on every node pull jobs from one durable consumer,
 * POST the stored result, and ack a job only after a 2xx (or a permanent
 * 4xx); other answers are retried with backoff up to CB_TRIES deliveries,
 * then dead-lettered. Invariant: a job is acked only once its fate is
 * counted (ok, failed or dead); each POST is bounded (CB_TIMEOUT_MS); the
 * stream is bounded (CB_STREAM_MSGS, CB_STREAM_BYTES; full: the call is not
 * acked and comes back later). At least once: a POST may be repeated.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lutf/protocol.h>

#include "cluster_int.h"

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	return n && n < LUTF_CLUSTER_ID &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

#define CB_SUBJ "lutf.cb"	  /* .<tenant>.<fn>.<id> */
#define CB_DLQ_SUBJ "lutf.dlq.cb" /* .<tenant>.<fn>: 5 tokens, a dead call has 4 */
#define CB_DURABLE "lutf_callbacks"
#define CB_THREADS 4 /* each its own pull subscription: a slow receiver holds one */
/* Jobs a thread pulls at once and POSTs one after the other (the pull's
 * round trip shared); a job not started within half the jobs' ack wait of
 * its pull goes back (nak) rather than risk a second node POSTing it too. */
#define CB_BATCH 16
#define CB_TIMEOUT_MS 2000 /* per try: connect, send, the status line */
#define CB_TRIES 10	   /* deliveries: backoff 250 ms doubling, at most 30 s: ~90 s */
#define CB_BACKOFF_MAX_MS 30000
#define CB_PENDING 256 /* jobs handed out and not acked, over all nodes */

static struct {
	struct lutf_cluster *c;
	atomic_bool stop; /* relaxed: polled between fetches */
	pthread_t th[CB_THREADS];
	unsigned nth;
	uint32_t tries;
	int64_t ack_wait_ms;
	void (*log)(const char *fmt, ...);
	_Atomic uint64_t ok, retried, failed, dead; /* relaxed: counters for /metrics */
} C;

/* A callback's body and headers, from the stored result. */
struct cb {
	const char *url, *id;
	char ctype[128];
	uint32_t status;
	bool dead;
	const void *out;
	size_t len;
};

int lutf_cluster_callback_check(const char *url, char *msg, size_t cap)
{
	size_t n = strlen(url);
	const char *host = url + 7;

	if (strncmp(url, "http://", 7)) {
		snprintf(msg, cap, "callback '%.80s': only http:// URLs", url);
		return -EINVAL;
	}
	if (n >= LUTF_CLUSTER_CALLBACK_MAX) {
		snprintf(msg, cap, "callback URL longer than %u bytes",
			 LUTF_CLUSTER_CALLBACK_MAX - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (url[i] <= 0x20 || url[i] > 0x7e) { /* no CR/LF: it goes into a request */
			snprintf(msg, cap, "callback URL: byte %zu is not visible ASCII", i);
			return -EINVAL;
		}
	if (!host[0] || host[0] == '/' || host[0] == ':') {
		snprintf(msg, cap, "callback '%.80s': no host", url);
		return -EINVAL;
	}
	return 0;
}

/* Split "http://host[:port][/path]" (checked) into its parts. */
static int split(const char *url, char *host, size_t hcap, char *port, size_t pcap,
		 const char **path)
{
	const char *h = url + 7, *end, *colon;
	size_t hl;

	*path = strchr(h, '/');
	end = *path ? *path : h + strlen(h);
	if (!*path)
		*path = "/";
	if (h[0] == '[') { /* [v6]:port */
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (!rb)
			return -EINVAL;
		hl = (size_t)(rb - h - 1);
		if (hl >= hcap)
			return -EINVAL;
		memcpy(host, h + 1, hl);
		host[hl] = 0;
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hl = (size_t)((colon ? colon : end) - h);
		if (!hl || hl >= hcap)
			return -EINVAL;
		memcpy(host, h, hl);
		host[hl] = 0;
	}
	if (colon) {
		size_t pl = (size_t)(end - colon - 1);

		if (!pl || pl >= pcap)
			return -EINVAL;
		memcpy(port, colon + 1, pl);
		port[pl] = 0;
	} else {
		snprintf(port, pcap, "80");
	}
	return 0;
}

/* Wait for fd to be ready for ev until the deadline. Returns 0 or -ETIMEDOUT. */
static int wait_fd(int fd, short ev, uint64_t due)
{
	for (;;) {
		uint64_t now = lutf_cluster_now_ms();
		struct pollfd p = {.fd = fd, .events = ev};
		int r;

		if (now >= due)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(due - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* One POST. Returns the HTTP code, or -errno. */
static int post_once(const struct cb *b)
{
	char host[256], port[16], head[1024 + LUTF_CLUSTER_CALLBACK_MAX], line[64];
	const char *path;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	uint64_t due = lutf_cluster_now_ms() + CB_TIMEOUT_MS;
	size_t hl, off = 0, got = 0;
	int fd = -1, err, code = -EPROTO;

	if (split(b->url, host, sizeof(host), port, sizeof(port), &path))
		return -EINVAL;
	if (getaddrinfo(host, port, &hints, &ai) || !ai)
		return -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
		err = -errno;
		goto out;
	}
	hl = (size_t)snprintf(head, sizeof(head),
			      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n"
			      "Content-Length: %zu\r\nX-Lutf-Id: %s\r\nX-Lutf-Status: %s\r\n"
			      "X-Lutf-Dead-Letter: %d\r\nConnection: close\r\n\r\n",
			      path, host, b->ctype[0] ? b->ctype : "application/octet-stream",
			      b->len, b->id, lutf_status_str(b->status), b->dead ? 1 : 0);
	for (const char *p = head, *e = head + hl; p < e || off < b->len;) {
		const void *d = p < e ? (const void *)p : (const char *)b->out + off;
		size_t n = p < e ? (size_t)(e - p) : b->len - off;
		ssize_t w;

		if ((err = wait_fd(fd, POLLOUT, due)))
			goto out;
		w = send(fd, d, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (p < e)
			p += w;
		else
			off += (size_t)w;
	}
	/* The status line is all we read: "HTTP/1.x NNN". */
	while (got < 12) {
		ssize_t r;

		if ((err = wait_fd(fd, POLLIN, due)))
			goto out;
		r = recv(fd, line + got, sizeof(line) - 1 - got, 0);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		got += (size_t)r;
	}
	line[got] = 0;
	if (got >= 12 && !strncmp(line, "HTTP/1.", 7) && line[8] == ' ')
		code = atoi(line + 9);
	err = code;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return err;
}

int lutf_cluster_cb_post(const char *url, const char *id, const struct lutf_cluster_reply *r,
			 bool dead)
{
	char why[160];
	struct cb b = {.url = url,
		       .id = id,
		       .status = r->status,
		       .dead = dead,
		       .out = r->output,
		       .len = r->output_len};

	if (lutf_cluster_callback_check(url, why, sizeof(why)) || !id_ok(id))
		return -EINVAL; /* a hostile header */
	/* A function's content type goes into a header: visible ASCII only. */
	if (strspn(r->content_type, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789/+.-;=_ ") == strlen(r->content_type))
		snprintf(b.ctype, sizeof(b.ctype), "%s", r->content_type);
	return post_once(&b);
}

enum lutf_cluster_cb_verdict lutf_cluster_cb_verdict(int code, uint64_t tries, uint32_t max)
{
	if (code >= 200 && code < 300)
		return LUTF_CLUSTER_CB_OK;
	if (code == -EINVAL || (code >= 400 && code < 500 && code != 408 && code != 429))
		return LUTF_CLUSTER_CB_REFUSED; /* trying again changes nothing */
	return tries < max ? LUTF_CLUSTER_CB_RETRY : LUTF_CLUSTER_CB_DEAD;
}

int64_t lutf_cluster_cb_backoff_ms(uint64_t tries)
{
	return tries >= 8 ? CB_BACKOFF_MAX_MS : 250ll << (tries ? tries - 1 : 0);
}

int lutf_cluster_cb_stream(struct lutf_cluster *c, char *msg, size_t cap)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;
	const char *subjs[1] = {CB_SUBJ ".>"};
	natsStatus s = js_GetStreamInfo(&si, lutf_cluster_js(c), LUTF_CLUSTER_CALLBACKS, NULL, &je);

	if (s == NATS_NOT_FOUND) {
		jsStreamConfig_Init(&sc);
		sc.Name = LUTF_CLUSTER_CALLBACKS;
		sc.Subjects = subjs;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = lutf_cluster_replicas(c);
		sc.Retention = js_WorkQueuePolicy;
		/* Bounded: a full stream refuses the job, so its call is not acked
		 * and comes back (back-pressure, nothing dropped). */
		sc.MaxMsgs = CB_STREAM_MSGS;
		sc.MaxBytes = CB_STREAM_BYTES;
		sc.Discard = js_DiscardNew;
		sc.Duplicates = 120ll * 1000000000ll; /* a duplicate run queues no second job */
		s = js_AddStream(&si, lutf_cluster_js(c), &sc, NULL, &je);
		if (s != NATS_OK)
			s = js_GetStreamInfo(&si, lutf_cluster_js(c), LUTF_CLUSTER_CALLBACKS, NULL,
					     &je);
	}
	jsStreamInfo_Destroy(si);
	return s == NATS_OK ? 0 : lutf_cluster_nerr(s, msg, cap, LUTF_CLUSTER_CALLBACKS);
}

int lutf_cluster_cb_job(const char *url, const char *id, const char *tenant, const char *fn,
			const char *reply, natsMsg **out)
{
	char subj[256], mid[LUTF_CLUSTER_ID + 4], why[160];
	natsMsg *m = NULL;

	*out = NULL;
	if (lutf_cluster_callback_check(url, why, sizeof(why)) || !id_ok(id))
		return -EINVAL;
	snprintf(subj, sizeof(subj), CB_SUBJ ".%s.%s.%s", tenant, fn, id);
	snprintf(mid, sizeof(mid), "cb-%s", id);
	if (natsMsg_Create(&m, subj, reply, NULL, 0) != NATS_OK)
		return -ENOMEM;
	if (natsMsgHeader_Set(m, "Nats-Msg-Id", mid) != NATS_OK ||
	    natsMsgHeader_Set(m, "Lutf-Id", id) != NATS_OK ||
	    natsMsgHeader_Set(m, "Lutf-Callback", url) != NATS_OK) {
		natsMsg_Destroy(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

int lutf_cluster_cb_queue(struct lutf_cluster *c, const char *url, const char *id,
			  const char *tenant, const char *fn)
{
	natsMsg *m = NULL;
	jsErrCode je = 0;
	natsStatus s;
	int err = lutf_cluster_cb_job(url, id, tenant, fn, NULL, &m);

	if (err)
		return err == -EINVAL ? err : -EIO;
	/* Synchronous: stored (R copies) before the caller acks the call. */
	s = js_PublishMsg(NULL, lutf_cluster_js(c), m, NULL, &je);
	natsMsg_Destroy(m);
	return s == NATS_OK ? 0 : -EIO;
}

/* A job that cannot be delivered: into the dead-letter stream. Returns
 * true when stored there. */
static bool dead_letter(natsMsg *m, const char *id, const char *url, const char *why)
{
	char subj[256], mid[LUTF_CLUSTER_ID + 4], tenant[LUTF_CLUSTER_NAME], fn[LUTF_CLUSTER_NAME];
	natsMsg *d = NULL;
	jsErrCode je = 0;
	bool ok = false;

	if (sscanf(natsMsg_GetSubject(m), CB_SUBJ ".%63[^.].%63[^.]", tenant, fn) != 2)
		return false;
	snprintf(subj, sizeof(subj), CB_DLQ_SUBJ ".%s.%s", tenant, fn);
	snprintf(mid, sizeof(mid), "cb-%s", id);
	if (natsMsg_Create(&d, subj, NULL, NULL, 0) != NATS_OK)
		return false;
	natsMsgHeader_Set(d, "Nats-Msg-Id", mid);
	natsMsgHeader_Set(d, "Lutf-Id", id);
	natsMsgHeader_Set(d, "Lutf-Callback", url);
	natsMsgHeader_Set(d, "Lutf-Error", why);
	ok = js_PublishMsg(NULL, lutf_cluster_js(C.c), d, NULL, &je) == NATS_OK;
	natsMsg_Destroy(d);
	return ok;
}

/* One job, from its delivery to its ack (or nak with backoff). */
static void job(natsMsg *m)
{
	const char *id = NULL, *url = NULL;
	jsMsgMetaData *meta = NULL;
	struct lutf_cluster_reply r;
	char msg[300], why[64];
	uint64_t tries = 1;
	bool dead;
	int err, code;

	if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
		tries = meta->NumDelivered;
		jsMsgMetaData_Destroy(meta);
	}
	if (natsMsgHeader_Get(m, "Lutf-Id", &id) != NATS_OK || !id || !id_ok(id) ||
	    natsMsgHeader_Get(m, "Lutf-Callback", &url) != NATS_OK || !url ||
	    lutf_cluster_callback_check(url, msg, sizeof(msg))) {
		C.log("cluster: async: a malformed callback job on %.200s dropped",
		      natsMsg_GetSubject(m));
		atomic_fetch_add_explicit(&C.failed, 1, memory_order_relaxed);
		natsMsg_Term(m, NULL);
		return;
	}
	err = lutf_cluster_result_get(C.c, id, &r, &dead, msg, sizeof(msg));
	if (err == -ENOENT || err == -EBADMSG) { /* expired (its TTL) or unreadable */
		C.log("cluster: async: callback of %s dropped: %s", id, msg);
		atomic_fetch_add_explicit(&C.failed, 1, memory_order_relaxed);
		natsMsg_Term(m, NULL);
		return;
	}
	if (err) { /* NATS trouble: later, not counted as a try of the receiver */
		natsMsg_NakWithDelay(m, 1000, NULL);
		return;
	}
	code = lutf_cluster_cb_post(url, id, &r, dead);
	free(r.output);
	switch (lutf_cluster_cb_verdict(code, tries, C.tries)) {
	case LUTF_CLUSTER_CB_OK:
		atomic_fetch_add_explicit(&C.ok, 1, memory_order_relaxed);
		natsMsg_Ack(m, NULL);
		return;
	case LUTF_CLUSTER_CB_RETRY:
		atomic_fetch_add_explicit(&C.retried, 1, memory_order_relaxed);
		natsMsg_NakWithDelay(m, lutf_cluster_cb_backoff_ms(tries), NULL);
		return;
	case LUTF_CLUSTER_CB_REFUSED:
		atomic_fetch_add_explicit(&C.failed, 1, memory_order_relaxed);
		C.log("cluster: async: callback of %s to %.200s refused: HTTP %d", id, url, code);
		natsMsg_Ack(m, NULL);
		return;
	case LUTF_CLUSTER_CB_DEAD:
		snprintf(why, sizeof(why), "%s %d after %" PRIu64 " tries",
			 code < 0 ? "-errno" : "HTTP", code < 0 ? -code : code, tries);
		if (!dead_letter(m, id, url, why)) {
			natsMsg_NakWithDelay(m, CB_BACKOFF_MAX_MS, NULL);
			return;
		}
		atomic_fetch_add_explicit(&C.dead, 1, memory_order_relaxed);
		C.log("cluster: async: callback of %s to %.200s dead-lettered: %s", id, url, why);
		natsMsg_Ack(m, NULL);
		return;
	}
}

static void *cb_main(void *arg)
{
	natsSubscription *sub = NULL;
	jsSubOptions so;

	(void)arg;
	jsSubOptions_Init(&so);
	so.Stream = LUTF_CLUSTER_CALLBACKS;
	so.Config.AckPolicy = js_AckExplicit;
	/* Longer than one POST's bound: a job is not handed to another node
	 * while it is being POSTed (binds when the first node creates it). */
	so.Config.AckWait = (C.ack_wait_ms + CB_TIMEOUT_MS) * 1000000;
	so.Config.MaxAckPending = CB_PENDING;
	while (!atomic_load_explicit(&C.stop, memory_order_relaxed)) {
		jsFetchRequest fr;
		natsMsgList list = {0};
		natsStatus s;
		int64_t t0;

		if (!sub && js_PullSubscribe(&sub, lutf_cluster_js(C.c), CB_SUBJ ".>", CB_DURABLE,
					     NULL, &so, NULL) != NATS_OK) {
			sub = NULL;
			nats_Sleep(500);
			continue;
		}
		jsFetchRequest_Init(&fr);
		fr.Batch = CB_BATCH;
		fr.NoWait = true;	      /* as the async workers: return once some came */
		fr.Expires = 250ll * 1000000; /* the stop flag is seen within it */
		s = natsSubscription_FetchRequest(&list, sub, &fr);
		t0 = nats_Now();
		if (s != NATS_OK) {
			if (s != NATS_TIMEOUT && s != NATS_NOT_FOUND)
				nats_Sleep(100);
			continue;
		}
		for (int i = 0; i < list.Count; i++) {
			if (nats_Now() - t0 > (C.ack_wait_ms + CB_TIMEOUT_MS) / 2 ||
			    atomic_load_explicit(&C.stop, memory_order_relaxed)) {
				natsMsg_Nak(list.Msgs[i], NULL);
				continue;
			}
			job(list.Msgs[i]);
		}
		natsMsgList_Destroy(&list);
	}
	natsSubscription_Destroy(sub); /* not Unsubscribe: the durable stays */
	return NULL;
}

void lutf_cluster_cb_start(struct lutf_cluster *c, int64_t ack_wait_ms,
			   void (*log)(const char *fmt, ...))
{
	const char *e = getenv("LUTF_CLUSTER_CALLBACK_TRIES"); /* tests: dead letters sooner */
	long t = e ? strtol(e, NULL, 10) : 0;

	if (C.nth)
		return; /* running already */
	C.c = c;
	C.log = log;
	C.ack_wait_ms = ack_wait_ms;
	C.tries = t >= 1 && t <= 100 ? (uint32_t)t : CB_TRIES;
	atomic_store_explicit(&C.stop, false, memory_order_relaxed);
	for (C.nth = 0; C.nth < CB_THREADS; C.nth++)
		if (pthread_create(&C.th[C.nth], NULL, cb_main, NULL))
			break;
}

/* A job being POSTed ends within its bounded try; the others wait in the
 * stream for any node. */
void lutf_cluster_cb_stop(void)
{
	atomic_store_explicit(&C.stop, true, memory_order_relaxed);
	for (unsigned i = 0; i < C.nth; i++)
		pthread_join(C.th[i], NULL);
	C.nth = 0;
}

void lutf_cluster_cb_stats(uint64_t *ok, uint64_t *retried, uint64_t *failed, uint64_t *dead)
{
	*ok = atomic_load_explicit(&C.ok, memory_order_relaxed);
	*retried = atomic_load_explicit(&C.retried, memory_order_relaxed);
	*failed = atomic_load_explicit(&C.failed, memory_order_relaxed);
	*dead = atomic_load_explicit(&C.dead, memory_order_relaxed);
}
