/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 gateway: userspace/http's engine plugged into the ingress
 * connection layer as a struct lutf_proto, its POST /fn/<tenant>/<name> into
 * lutfd's invoke path (dispatch.c), and an admin listener for /metrics and
 * /healthz. Invariants: every request the engine parses is answered exactly
 * once (at once for refusals, by its completion otherwise, or dropped with
 * its connection); input the engine cannot take yet (max_pending requests
 * unanswered) waits in the connection's own bounded buffer and holds one
 * in-flight token, so the connection layer does not close under it.
 * With LUTF_HTTP_BATCH=on (off by default: see docs/performance.md, "Pinned
 * to one core"), invocations parsed in one pass of the event loop are
 * submitted together at its end (lutfd_http_dispatch): lutfd parses every
 * ready connection before the first submit wakes a Labor. A deferred call
 * holds an in-flight token too, and is dropped with its connection.
 * Either way, when lutfd runs on one CPU the pass's submits wake each Labor
 * once, at lutfd_http_dispatch (the submit plug, dispatch.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "keys.h"
#include "lutfd.h"
#include "prom.h"

#define TICK_MS 250
#define MAX_HDRS LUTF_HTTP_MAX_META

struct gw_listener {
	struct lutf_http_server srv;
	char addr[160]; /* bound, "" when off */
};

/* Per connection (the protocol state inside struct lutf_conn). */
struct gw_conn {
	struct lutf_conn *c;
	struct lutf_http_conn *h;
	struct gw_conn *prev, *next; /* every HTTP connection, for ticks */
	uint8_t *pend;		     /* bytes the engine could not take yet */
	size_t pend_len, pend_cap;
	unsigned busy;	 /* inside the engine: close() must not free h */
	bool closed;	 /* close() came while busy */
	bool ended;	 /* lutf_conn_end was called */
	bool refeed_due; /* in the refeed list */
};

static struct gw_listener gw_main, gw_admin;
static struct gw_conn *conns;
static uint64_t *refeed; /* conn ids waiting for their pend to be fed */
static size_t nrefeed, cap_refeed;
static int kick_fd = -1, tick_fd = -1;

/*
 * The invocations of this loop pass, not yet submitted. Their strings and
 * bodies are copied into one arena (the engine's buffers are reused by the
 * next request), so the batch is bounded: a call whose copy would pass
 * BATCH_ARENA_MAX, or the BATCH_MAX-th, is submitted at once instead.
 */
struct gw_call {
	uint64_t conn_id, seq, timeout_ns;
	size_t tenant, name, ctype, hdrs, body; /* arena offsets; ctype SIZE_MAX: none */
	size_t body_len;
	unsigned nh; /* header pairs: 2 * nh strings from hdrs */
};

#define BATCH_MAX 1024
#define BATCH_ARENA_MAX (1u << 20)

static struct gw_call batch[BATCH_MAX];
static unsigned nbatch;
/* LUTF_HTTP_BATCH=on in lutfd's environment turns the batch on; by default
 * each call is submitted as it is parsed. Measured side by side, the batch
 * gained nothing on its own (docs/performance.md): kept, off. The submit
 * plug (dispatch.c) now makes one wake-up carry a pass's calls without it. */
static bool batch_on;
static char *arena;
static size_t arena_len, arena_cap;
static uint64_t by_class[6]; /* responses by first digit of the code: [1..5] */

/* ---- the connection's life ---- */

static uint64_t now_ms(void)
{
	return lutfd_now_ms();
}

static void free_engine(struct gw_conn *g)
{
	lutf_http_conn_free(g->h);
	g->h = NULL;
	free(g->pend);
	g->pend = NULL;
	g->pend_len = g->pend_cap = 0;
}

/* Close once answered, when the engine is done or cannot go on. */
static void settle(struct gw_conn *g)
{
	if (g->closed || g->ended || !g->h)
		return;
	if (lutf_http_done(g->h)) {
		if (g->pend_len) {
			g->pend_len = 0;
			lutf_conn_inflight(g->c, -1);
		}
		g->ended = true;
		lutf_conn_end(g->c, false);
	}
}

static void leave(struct gw_conn *g)
{
	if (--g->busy == 0 && g->closed)
		free_engine(g);
}

/* Keep n bytes for later; the first byte kept takes an in-flight token.
 * Returns 0, or -E2BIG past the bound (then the connection gives up). */
static int pend_add(struct gw_conn *g, const uint8_t *p, size_t n)
{
	const struct lutf_http_limits *lim = &gw_main.srv.lim;
	size_t max = (size_t)lim->max_header + lim->max_body + 65536;

	if (g->pend_len + n > max)
		return -E2BIG;
	if (g->pend_len + n > g->pend_cap) {
		size_t cap = g->pend_cap ? g->pend_cap : 4096;
		uint8_t *q;

		while (cap < g->pend_len + n)
			cap *= 2;
		q = realloc(g->pend, cap);
		if (!q)
			return -ENOMEM;
		g->pend = q;
		g->pend_cap = cap;
	}
	if (!g->pend_len)
		lutf_conn_inflight(g->c, 1);
	memcpy(g->pend + g->pend_len, p, n);
	g->pend_len += n;
	return 0;
}

/* Feed what waits while the engine and the connection take it. */
static void pend_feed(struct gw_conn *g)
{
	size_t k;

	if (!g->pend_len || g->closed || !g->h)
		return;
	g->busy++;
	while (g->pend_len && !g->closed && lutf_http_wants_input(g->h) &&
	       lutf_conn_accepting(g->c)) {
		k = lutf_http_feed(g->h, g->pend, g->pend_len, now_ms());
		if (!k)
			break;
		memmove(g->pend, g->pend + k, g->pend_len - k);
		g->pend_len -= k;
		if (!g->pend_len)
			lutf_conn_inflight(g->c, -1);
	}
	if (!g->closed)
		settle(g);
	leave(g);
}

static void refeed_later(struct gw_conn *g)
{
	uint64_t one = 1;

	if (g->refeed_due || !g->pend_len)
		return;
	if (nrefeed == cap_refeed) {
		size_t cap = cap_refeed ? cap_refeed * 2 : 64;
		uint64_t *p = realloc(refeed, cap * sizeof(*p));

		if (!p)
			return; /* the next tick feeds it */
		refeed = p;
		cap_refeed = cap;
	}
	refeed[nrefeed++] = lutf_conn_id(g->c);
	g->refeed_due = true;
	if (nrefeed == 1)
		(void)!write(kick_fd, &one, sizeof(one));
}

static void kick_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	uint64_t v;

	(void)!read(fd, &v, sizeof(v));
	/* Feeding may submit invocations, never complete one here: the list
	 * does not grow while it is walked (answers come from dispatch). */
	for (size_t i = 0; i < nrefeed; i++) {
		struct lutf_conn *c = lutf_srv_conn(g_srv, refeed[i]);
		struct gw_conn *g;

		if (!c)
			continue;
		g = lutf_conn_state(c);
		g->refeed_due = false;
		pend_feed(g);
	}
	nrefeed = 0;
	lutf_srv_flush(g_srv);
}

static void tick_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	uint64_t v, now = now_ms();
	struct timespec ts;

	(void)!read(fd, &v, sizeof(v));
	lutfd_http_dispatch(); /* backstop: a loop that does not call it (shutdown) */
	clock_gettime(CLOCK_REALTIME, &ts);
	lutf_http_date(&gw_main.srv, ts.tv_sec);
	lutf_http_date(&gw_admin.srv, ts.tv_sec);
	for (struct gw_conn *g = conns; g; g = g->next) {
		if (!g->h || g->ended)
			continue;
		pend_feed(g); /* also after a pause that ended with nothing to answer */
		if (g->h && !g->ended) {
			g->busy++;
			if (lutf_http_tick(g->h, now))
				settle(g);
			leave(g);
		}
	}
	lutf_srv_flush(g_srv);
}

/* ---- the engine's callbacks ---- */

static int gw_write(void *ctx, struct lutf_http_conn *hc, const void *data, size_t len)
{
	struct gw_conn *g = lutf_http_user(hc);
	const char *p = data;

	if (g->closed)
		return -EPIPE;
	if (len > 9 && p[9] >= '1' && p[9] <= '5')
		by_class[p[9] - '0']++;
	return lutf_conn_send(g->c, data, len);
}

static int gw_metrics(void *ctx, struct lutf_http_conn *hc, struct lutf_http_buf *out)
{
	return lutfd_metrics_render(out);
}

/* /metrics names every tenant: the admin token only (keys.c). */
static int gw_authorize_metrics(void *ctx, const char *authorization, char *msg, size_t cap)
{
	switch (lutfd_keys_admin_check(authorization, msg, cap)) {
	case LUTFD_AUTH_OK:
		return 0;
	case LUTFD_AUTH_MISSING:
		return 401;
	default:
		return 403;
	}
}

/* The token of "Bearer <token>" (scheme case-insensitive); "" for another scheme. */
static const char *bearer(const char *v)
{
	if (strncasecmp(v, "Bearer ", 7))
		return "";
	v += 7;
	while (*v == ' ')
		v++;
	return v;
}

/* Append n bytes (and a NUL) to the arena; returns their offset or SIZE_MAX
 * (out of memory or past the bound). */
static size_t arena_put(const void *p, size_t n)
{
	size_t off = arena_len;

	if (n > BATCH_ARENA_MAX || arena_len + n + 1 > BATCH_ARENA_MAX)
		return SIZE_MAX;
	if (arena_len + n + 1 > arena_cap) {
		size_t cap = arena_cap ? arena_cap : 16384;
		char *q;

		while (cap < arena_len + n + 1)
			cap *= 2;
		q = realloc(arena, cap);
		if (!q)
			return SIZE_MAX;
		arena = q;
		arena_cap = cap;
	}
	if (n)
		memcpy(arena + off, p, n);
	arena[off + n] = 0;
	arena_len += n + 1;
	return off;
}

static size_t arena_str(const char *s)
{
	return arena_put(s, strlen(s));
}

/*
 * Keep the call for lutfd_http_dispatch. False when it cannot wait (batch
 * full, too large for the arena): the caller submits it now. On true the
 * connection holds one more in-flight token until the call is submitted.
 */
static bool defer(struct gw_conn *g, const struct lutf_http_req *rq, const struct lutf_request *req,
		  unsigned nh)
{
	size_t mark = arena_len;
	struct gw_call *k;
	bool ok;

	if (nbatch == BATCH_MAX)
		return false;
	k = &batch[nbatch];
	k->conn_id = lutf_conn_id(g->c);
	k->seq = rq->seq;
	k->timeout_ns = req->timeout_ns;
	k->nh = nh;
	k->body_len = req->input_len;
	k->tenant = arena_str(rq->tenant);
	k->name = arena_str(rq->name);
	k->ctype = req->content_type ? arena_str(req->content_type) : SIZE_MAX;
	ok = k->tenant != SIZE_MAX && k->name != SIZE_MAX &&
	     (!req->content_type || k->ctype != SIZE_MAX);
	k->hdrs = arena_len;
	for (unsigned i = 0; ok && i < 2 * nh; i++)
		ok = arena_str(req->headers[i]) != SIZE_MAX;
	k->body = ok ? arena_put(req->input, req->input_len) : SIZE_MAX;
	if (!ok || k->body == SIZE_MAX) {
		arena_len = mark;
		return false;
	}
	nbatch++;
	lutf_conn_inflight(g->c, 1);
	return true;
}

/* Submit every deferred invocation; refusals are answered now. Called at the
 * end of each loop pass (main.c) and on the gateway's tick. */
void lutfd_http_dispatch(void)
{
	const char *hdrs[2 * MAX_HDRS + 1];
	unsigned n = nbatch;

	nbatch = 0; /* nothing below defers: it submits or answers */
	for (unsigned i = 0; i < n; i++) {
		struct gw_call *k = &batch[i];
		struct lutf_conn *c = lutf_srv_conn(g_srv, k->conn_id);
		struct lutf_request req = {
		    .input = arena + k->body,
		    .input_len = k->body_len,
		    .content_type = k->ctype == SIZE_MAX ? NULL : arena + k->ctype,
		    .timeout_ns = k->timeout_ns,
		};
		struct lutf_http_resp r = {0};
		struct gw_conn *g;
		uint32_t st, detail = 0;
		const char *p = arena + k->hdrs;
		char msg[320];

		if (!c)
			continue; /* closed meanwhile: so went its requests */
		g = lutf_conn_state(c);
		if (!g->h || g->closed) {
			lutf_conn_inflight(c, -1);
			continue;
		}
		for (unsigned h = 0; h < 2 * k->nh; h++) {
			hdrs[h] = p;
			p += strlen(p) + 1;
		}
		hdrs[2 * k->nh] = NULL;
		if (k->nh)
			req.headers = hdrs;
		st = lutfd_invoke_start(c, LUTFD_ORIGIN_HTTP, k->seq, arena + k->tenant,
					arena + k->name, &req, &detail, msg, sizeof(msg));
		/* After the submit took its own token: the count never reaches 0
		 * in between (the connection layer may close at 0). */
		lutf_conn_inflight(c, -1);
		if (st == LUTF_STATUS_OK)
			continue;
		r.status = st;
		r.msg = msg;
		g->busy++;
		lutf_http_respond(g->h, k->seq, &r);
		if (!g->closed)
			settle(g);
		leave(g);
	}
	arena_len = 0;
	if (arena_cap > 4 * 16384) { /* a burst of large bodies: give it back */
		free(arena);
		arena = NULL;
		arena_cap = 0;
	}
	lutfd_dispatch_unplug(); /* the pass's Labor wake-ups, one per Cart */
}

static void gw_invoke(void *ctx, struct lutf_http_conn *hc, const struct lutf_http_req *rq)
{
	struct gw_conn *g = lutf_http_user(hc);
	const char *hdrs[2 * MAX_HDRS + 1];
	struct lutf_request req = {
	    .input = rq->body,
	    .input_len = rq->body_len,
	    .content_type = rq->content_type,
	};
	struct lutf_http_resp r = {0};
	uint32_t st, detail = 0;
	unsigned nh = 0;
	char msg[320];
	enum lutfd_auth auth;

	auth = lutfd_keys_check(
	    rq->tenant, rq->name, rq->authorization ? bearer(rq->authorization) : NULL,
	    rq->authorization ? strlen(bearer(rq->authorization)) : 0, msg, sizeof(msg));
	if (auth != LUTFD_AUTH_OK) {
		r.status = LUTF_STATUS_FORBIDDEN;
		r.code = auth == LUTFD_AUTH_MISSING ? 401 : 403;
		r.msg = msg;
		lutf_http_respond(hc, rq->seq, &r);
		return;
	}
	for (unsigned i = 0; i < rq->nmeta && i < MAX_HDRS; i++) {
		if (!strcmp(rq->meta[i].name, "x-lutf-timeout-ms")) {
			char *end;
			unsigned long ms = strtoul(rq->meta[i].value, &end, 10);

			if (*end || end == rq->meta[i].value || ms > 86400000ul) {
				r.status = LUTF_STATUS_MALFORMED;
				r.msg = "X-Lutf-Timeout-Ms: not a number of milliseconds";
				lutf_http_respond(hc, rq->seq, &r);
				return;
			}
			req.timeout_ns = (uint64_t)ms * 1000000ull;
			continue;
		}
		hdrs[2 * nh] = rq->meta[i].name;
		hdrs[2 * nh + 1] = rq->meta[i].value;
		nh++;
	}
	hdrs[2 * nh] = NULL;
	if (nh)
		req.headers = hdrs;
	if (batch_on && defer(g, rq, &req, nh))
		return;
	st = lutfd_invoke_start(g->c, LUTFD_ORIGIN_HTTP, rq->seq, rq->tenant, rq->name, &req,
				&detail, msg, sizeof(msg));
	if (st == LUTF_STATUS_OK)
		return;
	r.status = st;
	r.msg = msg;
	lutf_http_respond(hc, rq->seq, &r);
}

static void gw_async(void *ctx, struct lutf_http_conn *hc, const struct lutf_http_req *rq)
{
	lutfd_http_async(((struct gw_conn *)lutf_http_user(hc))->c, hc, rq);
}

/* ---- struct lutf_proto ---- */

static int gw_open(struct lutf_conn *c)
{
	struct gw_listener *l = lutf_conn_proto_ctx(c);
	struct gw_conn *g = lutf_conn_state(c);
	int err;

	g->c = c;
	err = lutf_http_conn_new(&l->srv, now_ms(), &g->h);
	if (err)
		return err;
	lutf_http_set_user(g->h, g);
	g->next = conns;
	if (conns)
		conns->prev = g;
	conns = g;
	return 0;
}

static ssize_t gw_input(struct lutf_conn *c, const uint8_t *p, size_t n)
{
	struct gw_conn *g = lutf_conn_state(c);
	size_t k = 0;

	if (g->ended || !g->h)
		return (ssize_t)n; /* nothing more is parsed */
	if (!lutf_conn_accepting(c))
		return 0; /* the connection layer keeps it and offers it again */
	g->busy++;
	if (!g->pend_len)
		k = lutf_http_feed(g->h, p, n, now_ms());
	if (!g->closed && k < n && pend_add(g, p + k, n - k)) {
		/* More pipelined input than one full request past max_pending:
		 * answer what was parsed, read nothing more. */
		lutf_http_eof(g->h);
		if (g->pend_len) {
			g->pend_len = 0;
			lutf_conn_inflight(c, -1);
		}
	}
	if (!g->closed)
		settle(g);
	leave(g);
	return (ssize_t)n;
}

static void gw_close(struct lutf_conn *c)
{
	struct gw_conn *g = lutf_conn_state(c);

	if (g->prev)
		g->prev->next = g->next;
	else if (conns == g)
		conns = g->next;
	if (g->next)
		g->next->prev = g->prev;
	g->closed = true;
	if (!g->busy)
		free_engine(g);
}

static void gw_refuse(int fd, uint32_t status, const char *why)
{
	struct lutf_http_buf b = {0};

	lutf_http_format_error(&gw_main.srv, &b, (int)lutf_status_http(status),
			       lutf_status_str(status), why);
	if (!b.err)
		(void)!send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	lutf_http_buf_free(&b);
}

static const struct lutf_proto proto_http = {
    .name = "http",
    .state_size = sizeof(struct gw_conn),
    .open = gw_open,
    .input = gw_input,
    .close = gw_close,
    .refuse = gw_refuse,
};

/* ---- answers from dispatch.c ---- */

void lutfd_http_answer(uint64_t conn_id, uint64_t seq, uint32_t status, const char *msg,
		       const struct lutf_result *res)
{
	struct lutf_http_resp r = {.status = status, .msg = msg};

	if (res && status == LUTF_STATUS_OK) {
		r.content_type = res->content_type[0] ? res->content_type : NULL;
		r.body = res->output;
		r.body_len = res->output_len;
	} else if (res) {
		r.msg = res->error[0] ? res->error : NULL;
	}
	lutfd_http_respond(conn_id, seq, &r);
}

void lutfd_http_respond(uint64_t conn_id, uint64_t seq, const struct lutf_http_resp *r)
{
	struct lutf_conn *c = lutf_srv_conn(g_srv, conn_id);
	struct gw_conn *g;

	if (!c)
		return; /* the connection went: so did its requests */
	g = lutf_conn_state(c);
	if (!g->h || g->closed)
		return;
	g->busy++;
	lutf_http_respond(g->h, seq, r);
	if (!g->closed) {
		if (g->pend_len && lutf_http_wants_input(g->h))
			refeed_later(g);
		settle(g);
	}
	leave(g);
}

/* ---- listeners ---- */

static void limits_from_cfg(struct lutf_http_limits *lim)
{
	lutf_http_limits_default(lim);
	lim->max_header = g_cfg.http_max_header;
	lim->max_body = g_cfg.http_max_body;
	lim->max_rps = g_cfg.http_max_rps;
	lim->max_pending = g_cfg.http_max_pending;
	lim->request_ms = g_cfg.http_request_timeout_ms;
	lim->idle_ms = g_cfg.idle_timeout_ms;
}

void lutfd_http_reload(void)
{
	limits_from_cfg(&gw_main.srv.lim);
	limits_from_cfg(&gw_admin.srv.lim);
}

static bool is_off(const char *v)
{
	return !v[0] || !strcmp(v, "off");
}

static void write_addr(const char *name, const char *addr)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", g_cfg.runtime_dir, name);
	unlink(path);
	if (!addr[0])
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "we");
	if (!fp || fprintf(fp, "%s\n", addr) < 0 || fclose(fp) || rename(tmp, path))
		lutfd_log("cannot write %s: %s", path, strerror(errno));
}

/* One listener; a taken default address is logged and skipped. Returns 0 or -1. */
static int listen_one(struct gw_listener *l, const char *key, const char *want, const char *dflt)
{
	int err;

	l->addr[0] = 0;
	if (is_off(want))
		return 0;
	err = lutf_srv_listen_tcp(g_srv, want, 0, &proto_http, l, l->addr, sizeof(l->addr));
	if (!err)
		return 0;
	l->addr[0] = 0;
	if (!strcmp(want, dflt)) {
		lutfd_log("%s off: cannot listen on %s (default): %s", key, want, strerror(-err));
		return 0;
	}
	fprintf(stderr, "lutfd: %s: cannot listen on %s: %s\n", key, want,
		err == -EINVAL ? "not host:port or [v6]:port" : strerror(-err));
	return -1;
}

int lutfd_http_start(void)
{
	struct itimerspec it = {{0, TICK_MS * 1000000L}, {0, TICK_MS * 1000000L}};
	struct timespec ts;

	limits_from_cfg(&gw_main.srv.lim);
	limits_from_cfg(&gw_admin.srv.lim);
	batch_on = getenv("LUTF_HTTP_BATCH") && !strcmp(getenv("LUTF_HTTP_BATCH"), "on");
	gw_main.srv.ops = (struct lutf_http_ops){.invoke = gw_invoke, .write = gw_write};
	gw_main.srv.ops.route_prefix = "/async/"; /* http_async.c */
	gw_main.srv.ops.route = gw_async;
	gw_admin.srv.ops = (struct lutf_http_ops){
	    .metrics = gw_metrics, .authorize_metrics = gw_authorize_metrics, .write = gw_write};
	clock_gettime(CLOCK_REALTIME, &ts);
	lutf_http_date(&gw_main.srv, ts.tv_sec);
	lutf_http_date(&gw_admin.srv, ts.tv_sec);
	kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (kick_fd < 0 || tick_fd < 0 || timerfd_settime(tick_fd, 0, &it, NULL) ||
	    lutf_ev_set(g_loop, kick_fd, LUTF_EV_READ, kick_event, NULL) ||
	    lutf_ev_set(g_loop, tick_fd, LUTF_EV_READ, tick_event, NULL)) {
		fprintf(stderr, "lutfd: HTTP gateway: cannot set up its timers: %s\n",
			strerror(errno));
		return -1;
	}
	if (listen_one(&gw_admin, "admin_listen", g_cfg.admin_listen, LUTFD_ADMIN_DEFAULT) ||
	    listen_one(&gw_main, "http_listen", g_cfg.http_listen, LUTFD_HTTP_DEFAULT))
		return -1;
	/* /metrics names every tenant: never on the data port, whatever the
	 * admin listener's setting (docs/operator.md "Admin listener"). */
	write_addr("http.addr", gw_main.addr);
	write_addr("admin.addr", gw_admin.addr);
	if (gw_main.addr[0])
		lutfd_log("listening on http %s", gw_main.addr);
	if (gw_admin.addr[0])
		lutfd_log("listening on admin http %s (/metrics, /healthz)", gw_admin.addr);
	return 0;
}

void lutfd_http_stop(void)
{
	write_addr("http.addr", "");
	write_addr("admin.addr", "");
}

const char *lutfd_http_addr(void)
{
	return gw_main.addr;
}

const char *lutfd_admin_addr(void)
{
	return gw_admin.addr;
}

void lutfd_http_metrics(struct lutf_http_buf *out)
{
	static const char *const cls[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
	unsigned n = 0;

	for (struct gw_conn *g = conns; g; g = g->next)
		n++;
	lutf_prom_family(out, "lutf_http_connections", LUTF_PROM_GAUGE,
			 "Open HTTP connections (gateway and admin).");
	lutf_prom_u64(out, "lutf_http_connections", NULL, n);
	lutf_prom_family(out, "lutf_http_responses", LUTF_PROM_COUNTER,
			 "HTTP responses written, by status class.");
	for (int i = 1; i <= 5; i++) {
		const char *lb[] = {"code", cls[i], NULL};

		lutf_prom_counter(out, "lutf_http_responses", lb, by_class[i]);
	}
}
