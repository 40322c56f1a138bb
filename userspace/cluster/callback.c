/* SPDX-License-Identifier: MIT */
/*
 * Callback URLs of async calls: once a result is stored (and its call
 * acked), its output is POSTed to the URL the caller gave. Invariant: the
 * consume loop never waits on a callback (a bounded queue; full: dropped and
 * counted); each POST is bounded (connect, send and answer within
 * CB_TIMEOUT_MS) and tried CB_TRIES times with backoff, then given up.
 */
#define _GNU_SOURCE
#include <errno.h>
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

#define CB_QUEUE 1024	   /* callbacks waiting; more are dropped */
#define CB_THREADS 2	   /* a slow receiver holds one of them */
#define CB_TIMEOUT_MS 2000 /* per try: connect, send, the status line */
#define CB_TRIES 3	   /* backoff 250 ms, then 500 ms */

struct cb {
	char url[LUTF_CLUSTER_CALLBACK_MAX];
	char id[LUTF_CLUSTER_ID];
	char ctype[128];
	uint32_t status;
	bool dead;
	void *out;
	size_t len;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cb *q[CB_QUEUE]; /* a ring, guarded by mu */
	unsigned head, n;
	bool stop;
	pthread_t th[CB_THREADS];
	unsigned nth;
	void (*log)(const char *fmt, ...);
	_Atomic uint64_t ok, failed; /* relaxed: counters for /metrics */
} C = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

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

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for fd to be ready for ev until the deadline. Returns 0 or -ETIMEDOUT. */
static int wait_fd(int fd, short ev, uint64_t due)
{
	for (;;) {
		uint64_t now = mono_ms();
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
	uint64_t due = mono_ms() + CB_TIMEOUT_MS;
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

static void deliver(struct cb *b)
{
	int code = 0;

	for (int t = 0; t < CB_TRIES; t++) {
		if (t) {
			struct timespec ts = {0, (250l << (t - 1)) * 1000000l};

			nanosleep(&ts, NULL);
		}
		code = post_once(b);
		if (code >= 200 && code < 300) {
			atomic_fetch_add_explicit(&C.ok, 1, memory_order_relaxed);
			return;
		}
		if (code >= 400 && code < 500 && code != 408 && code != 429)
			break; /* the receiver refuses it: trying again changes nothing */
	}
	atomic_fetch_add_explicit(&C.failed, 1, memory_order_relaxed);
	if (C.log)
		C.log("cluster: async: callback of %s to %.200s failed: %s%d", b->id, b->url,
		      code < 0 ? "-errno " : "HTTP ", code < 0 ? -code : code);
}

static void *cb_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&C.mu);
	for (;;) {
		struct cb *b;

		while (!C.n && !C.stop)
			pthread_cond_wait(&C.cv, &C.mu);
		if (C.stop)
			break;
		b = C.q[C.head];
		C.head = (C.head + 1) % CB_QUEUE;
		C.n--;
		pthread_mutex_unlock(&C.mu);
		deliver(b);
		free(b->out);
		free(b);
		pthread_mutex_lock(&C.mu);
	}
	pthread_mutex_unlock(&C.mu);
	return NULL;
}

void lutf_cluster_cb_start(void (*log)(const char *fmt, ...))
{
	if (C.nth)
		return; /* running already */
	C.log = log;
	pthread_mutex_lock(&C.mu);
	C.stop = false;
	pthread_mutex_unlock(&C.mu);
	for (C.nth = 0; C.nth < CB_THREADS; C.nth++)
		if (pthread_create(&C.th[C.nth], NULL, cb_main, NULL))
			break;
}

/* Callbacks still queued are dropped (counted); one being POSTed ends
 * within its bounded tries. */
void lutf_cluster_cb_stop(void)
{
	pthread_mutex_lock(&C.mu);
	C.stop = true;
	pthread_cond_broadcast(&C.cv);
	pthread_mutex_unlock(&C.mu);
	for (unsigned i = 0; i < C.nth; i++)
		pthread_join(C.th[i], NULL);
	C.nth = 0;
	for (; C.n; C.n--, C.head = (C.head + 1) % CB_QUEUE) {
		free(C.q[C.head]->out);
		free(C.q[C.head]);
		atomic_fetch_add_explicit(&C.failed, 1, memory_order_relaxed);
	}
}

void lutf_cluster_cb_push(const char *url, const char *id, const struct lutf_cluster_reply *r,
			  bool dead)
{
	char why[160];
	struct cb *b;

	if (lutf_cluster_callback_check(url, why, sizeof(why)) || !C.nth)
		goto drop; /* a hostile header, or no threads */
	b = calloc(1, sizeof(*b));
	if (!b || (r->output_len && !(b->out = malloc(r->output_len)))) {
		free(b);
		goto drop;
	}
	snprintf(b->url, sizeof(b->url), "%s", url);
	snprintf(b->id, sizeof(b->id), "%s", id);
	/* A function's content type goes into a header: visible ASCII only. */
	if (strspn(r->content_type, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789/+.-;=_ ") == strlen(r->content_type))
		snprintf(b->ctype, sizeof(b->ctype), "%s", r->content_type);
	b->status = r->status;
	b->dead = dead;
	if (r->output_len)
		memcpy(b->out, r->output, r->output_len);
	b->len = r->output_len;
	pthread_mutex_lock(&C.mu);
	if (C.n == CB_QUEUE || C.stop) {
		pthread_mutex_unlock(&C.mu);
		free(b->out);
		free(b);
		goto drop;
	}
	C.q[(C.head + C.n) % CB_QUEUE] = b;
	C.n++;
	pthread_cond_signal(&C.cv);
	pthread_mutex_unlock(&C.mu);
	return;
drop:
	atomic_fetch_add_explicit(&C.failed, 1, memory_order_relaxed);
}

void lutf_cluster_cb_stats(uint64_t *ok, uint64_t *failed)
{
	*ok = atomic_load_explicit(&C.ok, memory_order_relaxed);
	*failed = atomic_load_explicit(&C.failed, memory_order_relaxed);
}
