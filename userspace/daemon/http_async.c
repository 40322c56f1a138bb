/* SPDX-License-Identifier: MIT */
/*
 * The HTTP routes of durable async calls (docs/cluster.md): POST
 * /async/<tenant>/<fn> stores a call in the cluster's work queue and answers
 * 202 with its id once JetStream acknowledged it; GET /async/<id> answers its
 * stored result. Invariants: lutfd's loop never waits on NATS (requests go to
 * ASYNC_THREADS threads through a bounded queue and come back through a
 * locked list and an eventfd); every request is answered exactly once, and
 * its connection holds an in-flight token until then; keys are checked on the
 * loop (keys.c is the loop's), before a submission and after a fetch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sodium.h>

#include "http.h"
#include "keys.h"
#include "lutfd.h"
#include "wire.h"
#ifdef LUTF_HAVE_CLUSTER
#include "cluster.h"
#endif

#define ASYNC_THREADS 4	 /* each waits one JetStream round trip at a time */
#define ASYNC_QUEUE 1024 /* requests waiting for a thread; more: 503 */
#define ID_MAX 64	 /* [A-Za-z0-9_-]{1,63}, as LUTF_CLUSTER_ID */
#define CB_MAX 512	 /* as LUTF_CLUSTER_CALLBACK_MAX */

struct aj {
	struct aj *next;
	uint64_t conn_id, seq;
	bool post;
	char tenant[64], fn[64], id[ID_MAX], callback[CB_MAX];
	char key[256]; /* GET: the caller's key, checked against the result's owner */
	size_t key_len;
	void *body;
	size_t body_len;
	/* the answer, filled by a thread */
	int err;
	bool dup, dead, pending;
	char msg[320];
	uint32_t status, detail;
	char content_type[128], error[256];
	void *out;
	size_t out_len;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct aj *todo, **todo_tail = &todo, *done; /* guarded by mu */
static unsigned ntodo, nthreads;
static int efd = -1; /* set once, on the loop */

static const char *bearer(const char *v)
{
	if (!v || strncasecmp(v, "Bearer ", 7))
		return NULL;
	v += 7;
	while (*v == ' ')
		v++;
	return v;
}

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	return n && n < ID_MAX &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static void respond(struct lutf_http_conn *hc, uint64_t seq, uint32_t st, uint16_t code,
		    const char *msg)
{
	struct lutf_http_resp r = {.status = st, .code = code, .msg = msg};

	lutf_http_respond(hc, seq, &r);
}

#ifdef LUTF_HAVE_CLUSTER

/* A thread: the JetStream round trip of one request. */
static void work(struct aj *j)
{
	struct lutf_cluster *c = lutf_cluster_node_get();

	if (!c) {
		j->err = -ESHUTDOWN;
		snprintf(j->msg, sizeof(j->msg), "the cluster node is not running");
		return;
	}
	if (j->post) {
		j->err =
		    lutf_cluster_async_submit_cb(c, j->tenant, j->fn, j->body, j->body_len, j->id,
						 j->callback, &j->dup, j->msg, sizeof(j->msg));
	} else {
		struct lutf_cluster_reply r;

		j->err = lutf_cluster_result_fetch(c, j->id, &r, &j->dead, j->tenant, j->fn, j->msg,
						   sizeof(j->msg));
		if (j->err == -ENOENT) {
			/* Not stored: in the queue? If not, it may have been stored
			 * and acked between the two looks: once more. */
			int q = lutf_cluster_async_pending(c, j->id, j->tenant, j->fn, j->msg,
							   sizeof(j->msg));

			if (!q) {
				j->pending = true;
				j->err = 0;
			}
			else if (q == -ENOENT)
				j->err =
				    lutf_cluster_result_fetch(c, j->id, &r, &j->dead, j->tenant,
							      j->fn, j->msg, sizeof(j->msg));
			else
				j->err = q;
		}
		if (!j->err && !j->pending) {
			j->status = r.status;
			j->detail = r.detail;
			snprintf(j->content_type, sizeof(j->content_type), "%s", r.content_type);
			snprintf(j->error, sizeof(j->error), "%s", r.error);
			j->out = r.output;
			j->out_len = r.output_len;
		}
	}
	lutf_cluster_node_put();
}

static void *thread_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct aj *j;
		uint64_t one = 1;
		bool ring;

		pthread_mutex_lock(&mu);
		while (!todo)
			pthread_cond_wait(&cv, &mu);
		j = todo;
		todo = j->next;
		if (!todo)
			todo_tail = &todo;
		ntodo--;
		pthread_mutex_unlock(&mu);
		work(j);
		pthread_mutex_lock(&mu);
		ring = !done;
		j->next = done;
		done = j;
		pthread_mutex_unlock(&mu);
		if (ring)
			(void)!write(efd, &one, sizeof(one));
	}
	return NULL;
}

/* A JSON string of s (ids, names and status texts: no quotes or controls;
 * the function's error text may have them). */
static void json_str(struct lutf_http_buf *b, const char *s)
{
	lutf_http_buf_append(b, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			lutf_http_buf_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			lutf_http_buf_printf(b, "\\u%04x", ch);
		else
			lutf_http_buf_append(b, s, 1);
	}
	lutf_http_buf_append(b, "\"", 1);
}

/* The loop: answer one finished request. */
static void answer(struct aj *j)
{
	struct lutf_conn *c = lutf_srv_conn(g_srv, j->conn_id);
	struct lutf_http_resp r = {0};
	struct lutf_http_buf b = {0};
	char loc[96], why[320];

	if (!c)
		return; /* the connection went: so did its request */
	lutf_conn_inflight(c, -1);
	if (j->err) {
		r.status = LUTF_STATUS_NOT_PERSISTED;
		r.msg = j->msg;
		switch (j->err) {
		case -EINVAL:
			r.status = LUTF_STATUS_MALFORMED;
			break;
		case -ENOENT: /* neither stored nor queued */
			r.status = LUTF_STATUS_UNKNOWN_FUNCTION;
			snprintf(why, sizeof(why), "no call %s: unknown, or its result expired",
				 j->id);
			r.msg = why;
			break;
		default: /* NATS unreachable or slow: nothing was stored */
			r.code = 503;
		}
		lutfd_http_respond(j->conn_id, j->seq, &r);
		return;
	}
	if (!j->post) {
		/* The call's owner (its result's, or its queued message's
		 * subject) decides who reads it, exactly as a call. */
		enum lutfd_auth a =
		    j->tenant[0] && j->fn[0]
			? lutfd_keys_check(j->tenant, j->fn, j->key_len ? j->key : NULL, j->key_len,
					   why, sizeof(why))
			: LUTFD_AUTH_DENIED;

		if (a != LUTFD_AUTH_OK) {
			r.status = LUTF_STATUS_FORBIDDEN;
			r.code = a == LUTFD_AUTH_MISSING ? 401 : 403;
			r.msg = j->tenant[0] ? why : "this call names no owner";
			lutfd_http_respond(j->conn_id, j->seq, &r);
			return;
		}
	}
	lutf_http_buf_printf(&b, "{\"id\":");
	json_str(&b, j->id);
	if (j->post) {
		lutf_http_buf_printf(&b, ",\"state\":\"accepted\",\"duplicate\":%s}\n",
				     j->dup ? "true" : "false");
		snprintf(loc, sizeof(loc), "/async/%s", j->id);
		r.code = 202;
		r.location = loc;
	} else if (j->pending) {
		lutf_http_buf_printf(&b, ",\"state\":\"pending\",\"tenant\":");
		json_str(&b, j->tenant);
		lutf_http_buf_printf(&b, ",\"function\":");
		json_str(&b, j->fn);
		lutf_http_buf_printf(&b, "}\n");
		r.code = 202;
	} else {
		size_t cap = sodium_base64_ENCODED_LEN(j->out_len, sodium_base64_VARIANT_ORIGINAL);
		char *b64 = malloc(cap);

		lutf_http_buf_printf(&b, ",\"state\":\"done\",\"status\":");
		json_str(&b, lutf_status_str(j->status));
		lutf_http_buf_printf(&b,
				     ",\"code\":%" PRIu32 ",\"detail\":%" PRIu32
				     ",\"dead_letter\":%s,\"tenant\":",
				     j->status, j->detail, j->dead ? "true" : "false");
		json_str(&b, j->tenant);
		lutf_http_buf_printf(&b, ",\"function\":");
		json_str(&b, j->fn);
		lutf_http_buf_printf(&b, ",\"error\":");
		json_str(&b, j->error);
		lutf_http_buf_printf(&b, ",\"content_type\":");
		json_str(&b, j->content_type);
		lutf_http_buf_printf(&b, ",\"output_base64\":\"");
		if (b64) {
			sodium_bin2base64(b64, cap, j->out, j->out_len,
					  sodium_base64_VARIANT_ORIGINAL);
			lutf_http_buf_append(&b, b64, strlen(b64));
		} else {
			b.err = -ENOMEM;
		}
		free(b64);
		lutf_http_buf_printf(&b, "\"}\n");
	}
	if (b.err) {
		r.status = LUTF_STATUS_OUT_OF_MEMORY;
		r.code = 503;
		r.msg = "no memory for the answer";
	} else {
		r.status = LUTF_STATUS_OK;
		r.content_type = "application/json";
		r.body = b.data;
		r.body_len = b.len;
	}
	lutfd_http_respond(j->conn_id, j->seq, &r);
	lutf_http_buf_free(&b);
}

static void done_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	struct aj *list, *next;
	uint64_t v;

	(void)l;
	(void)data;
	(void)mask;
	(void)!read(fd, &v, sizeof(v));
	pthread_mutex_lock(&mu);
	list = done;
	done = NULL;
	pthread_mutex_unlock(&mu);
	for (; list; list = next) {
		next = list->next;
		answer(list);
		free(list->body);
		free(list->out);
		free(list);
	}
	lutf_srv_flush(g_srv);
}

/* The threads and the eventfd, on first use. Returns 0 or -errno. */
static int start(void)
{
	pthread_t th;

	if (efd >= 0)
		return 0;
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -errno;
	if (lutf_ev_set(g_loop, efd, LUTF_EV_READ, done_event, NULL)) {
		close(efd);
		efd = -1;
		return -EIO;
	}
	for (nthreads = 0; nthreads < ASYNC_THREADS; nthreads++) {
		if (pthread_create(&th, NULL, thread_main, NULL))
			break;
		pthread_detach(th); /* they end with the process */
	}
	return nthreads ? 0 : -EAGAIN;
}

/* Queue j for a thread (the connection keeps a token until the answer). */
static void enqueue(struct lutf_conn *c, struct lutf_http_conn *hc, struct aj *j)
{
	int err = start();
	uint64_t seq = j->seq;

	pthread_mutex_lock(&mu);
	if (err || ntodo >= ASYNC_QUEUE) {
		pthread_mutex_unlock(&mu);
		free(j->body);
		free(j);
		respond(hc, seq, LUTF_STATUS_OVERLOADED, 0,
			err ? "cannot start the async threads" : "too many async requests waiting");
		return;
	}
	j->next = NULL;
	*todo_tail = j;
	todo_tail = &j->next;
	ntodo++;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	lutf_conn_inflight(c, 1);
}

void lutfd_http_async(struct lutf_conn *c, struct lutf_http_conn *hc,
		      const struct lutf_http_req *rq)
{
	const char *p = rq->path + strlen("/async/"), *slash = strchr(p, '/');
	const char *key = bearer(rq->authorization);
	bool post = !strcmp(rq->method, "POST");
	struct aj *j;
	char msg[320];

	if (!g_cfg.cluster[0]) {
		respond(hc, rq->seq, LUTF_STATUS_NOT_PERSISTED, 501,
			"async calls need cluster mode: this lutfd has no 'cluster =' line "
			"(docs/cluster.md)");
		return;
	}
	if (post != (slash != NULL) || (!post && strcmp(rq->method, "GET"))) {
		respond(hc, rq->seq, LUTF_STATUS_MALFORMED, 405,
			"use POST /async/<tenant>/<function> or GET /async/<id>");
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		respond(hc, rq->seq, LUTF_STATUS_OVERLOADED, 503, "out of memory");
		return;
	}
	j->conn_id = lutf_conn_id(c);
	j->seq = rq->seq;
	j->post = post;
	if (!post) {
		if (!id_ok(p)) {
			free(j);
			respond(hc, rq->seq, LUTF_STATUS_MALFORMED, 0,
				"an async call's id is [A-Za-z0-9_-]{1,63}");
			return;
		}
		snprintf(j->id, sizeof(j->id), "%s", p);
		if (key && strlen(key) < sizeof(j->key)) {
			j->key_len = strlen(key);
			memcpy(j->key, key, j->key_len);
		}
		enqueue(c, hc, j);
		return;
	}
	if ((size_t)(slash - p) >= sizeof(j->tenant) || strchr(slash + 1, '/')) {
		free(j);
		respond(hc, rq->seq, LUTF_STATUS_UNKNOWN_FUNCTION, 0,
			"not /async/<tenant>/<function>");
		return;
	}
	memcpy(j->tenant, p, (size_t)(slash - p));
	snprintf(j->fn, sizeof(j->fn), "%s", slash + 1);
	/* Names go into NATS subjects: lutf_name_valid keeps out '.', '*', '>'. */
	if (!lutf_name_valid(j->tenant) || !lutf_name_valid(j->fn)) {
		free(j);
		respond(hc, rq->seq, LUTF_STATUS_MALFORMED, 0,
			"tenant and function names are [a-z0-9][a-z0-9_-]{0,62}");
		return;
	}
	/* Keys exactly as on POST /fn/<tenant>/<fn> (http_gw.c). */
	switch (lutfd_keys_check(j->tenant, j->fn, key, key ? strlen(key) : 0, msg, sizeof(msg))) {
	case LUTFD_AUTH_OK:
		break;
	case LUTFD_AUTH_MISSING:
		free(j);
		respond(hc, rq->seq, LUTF_STATUS_FORBIDDEN, 401, msg);
		return;
	default:
		free(j);
		respond(hc, rq->seq, LUTF_STATUS_FORBIDDEN, 403, msg);
		return;
	}
	for (unsigned i = 0; i < rq->nmeta; i++) {
		const char *n = rq->meta[i].name, *v = rq->meta[i].value;

		if (!strcmp(n, "x-lutf-id")) {
			if (!id_ok(v)) {
				free(j);
				respond(hc, rq->seq, LUTF_STATUS_MALFORMED, 0,
					"X-Lutf-Id: an id is [A-Za-z0-9_-]{1,63}");
				return;
			}
			snprintf(j->id, sizeof(j->id), "%s", v);
		} else if (!strcmp(n, "x-lutf-callback")) {
			if (strlen(v) >= sizeof(j->callback) ||
			    lutf_cluster_callback_check(v, msg, sizeof(msg))) {
				free(j);
				respond(hc, rq->seq, LUTF_STATUS_MALFORMED, 0,
					strlen(v) >= sizeof(j->callback)
					    ? "X-Lutf-Callback: longer than 511 bytes"
					    : msg);
				return;
			}
			snprintf(j->callback, sizeof(j->callback), "%s", v);
		}
	}
	if (rq->body_len && !(j->body = malloc(rq->body_len))) {
		free(j);
		respond(hc, rq->seq, LUTF_STATUS_OVERLOADED, 503, "out of memory for the body");
		return;
	}
	if (rq->body_len)
		memcpy(j->body, rq->body, rq->body_len);
	j->body_len = rq->body_len;
	enqueue(c, hc, j);
}

#else /* no libnats */

void lutfd_http_async(struct lutf_conn *c, struct lutf_http_conn *hc,
		      const struct lutf_http_req *rq)
{
	(void)c;
	(void)bearer;
	(void)id_ok;
	respond(hc, rq->seq, LUTF_STATUS_NOT_PERSISTED, 501,
		"async calls need cluster mode: this lutfd was built without libnats");
}

#endif
