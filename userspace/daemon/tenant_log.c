/* SPDX-License-Identifier: MIT */
/*
 * A tenant's log ring (`lutfctl logs`) and its workers' output pipe: fd 1 and
 * 2 of every worker are the write end of a pipe that lutfd reads here, on its
 * loop, without blocking, at most TLOG_BUDGET bytes per tenant per window.
 * Invariant: every byte of tenant text is escaped before it is stored, no line
 * is longer than TLOG_LINE_IN input bytes, and the ring holds at most
 * log_lines lines and TLOG_RING_BYTES bytes; what is cut is counted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lutfd.h"
#include "tenant_log.h"
#include "text_escape.h"

#define TLOG_LINE_IN 512u	   /* input bytes of one line; the rest is dropped */
#define TLOG_LINE_OUT 1024u	   /* escaped (at most 4 bytes per input byte: cut) */
#define TLOG_RING_BYTES (1u << 20) /* a tenant's ring, whatever log_lines says */
#define TLOG_BUDGET (64u * 1024)   /* bytes read per tenant per window ... */
#define TLOG_WINDOW_MS 100u	   /* ... so a flood costs lutfd about 640 KiB/s */
#define TLOG_READ (16u * 1024)	   /* one read */

/* One worker's output pipe; found by tenant name, so that a tenant removed
 * while its pipe is open is never touched (the pipe then just drains). */
struct tlog_out {
	struct tlog_out *next;
	char tenant[LUTFD_NAME];
	int fd;
	bool paused;	    /* budget spent: not watched until the window ends */
	uint32_t budget;    /* bytes left in this window */
	uint64_t window_ms; /* when this window started */
	uint32_t plen;	    /* bytes of the line being collected */
	uint64_t cut;	    /* bytes dropped from that line */
	char part[TLOG_LINE_IN];
};

static struct tlog_out *outs;
static int timer_fd = -1;

static void ring_put(struct lutfd_tenant *t, char *s)
{
	size_t len = strlen(s);
	uint32_t i;

	/* Oldest lines go first: by count (log_lines), then by bytes. */
	while (t->log_count &&
	       (t->log_count == g_cfg.log_lines || t->log_bytes + len > TLOG_RING_BYTES)) {
		if (t->log[t->log_head]) /* a ring that was reallocated: count only */
			t->log_bytes -= strlen(t->log[t->log_head]);
		free(t->log[t->log_head]);
		t->log[t->log_head] = NULL;
		t->log_head = (t->log_head + 1) % g_cfg.log_lines;
		t->log_count--;
	}
	i = (t->log_head + t->log_count) % g_cfg.log_lines;
	t->log[i] = s;
	t->log_count++;
	t->log_bytes += len;
}

/* "<stamp> <who> <text>" into t's ring; cut = bytes of the line already
 * dropped (shown, and counted in log_dropped_bytes). */
static void ring_add(struct lutfd_tenant *t, const char *who, const char *line, size_t len,
		     uint64_t cut)
{
	char stamp[32], text[TLOG_LINE_OUT], more[48] = "", *s;
	struct timespec ts;
	struct tm tm;
	size_t used;

	if (!t->log)
		return;
	if (len > TLOG_LINE_IN) {
		cut += len - TLOG_LINE_IN;
		len = TLOG_LINE_IN;
	}
	lutf_text_escape(text, sizeof(text), line, len, LUTF_ESC_BACKSLASH, &used);
	cut += len - used;
	if (cut) {
		t->log_dropped += cut;
		snprintf(more, sizeof(more), " [%llu bytes cut]", (unsigned long long)cut);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (asprintf(&s, "%s.%03ldZ %s %s%s", stamp, ts.tv_nsec / 1000000, who, text, more) < 0) {
		t->log_dropped += len;
		return;
	}
	ring_put(t, s);
}

void lutfd_tenant_logs_append(struct lutfd_tenant *t, const char *fn, const char *line, size_t len)
{
	char who[LUTFD_NAME * 2 + 2];
	size_t n = 0;

	/* The function's name comes from the worker, which the tenant's code
	 * runs in: anything but a name's characters shows as '?', so that no
	 * line of lutf_log can pass for "[output]". */
	for (; fn[n] && n < sizeof(who) - 2; n++) {
		char c = fn[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == '/';

		who[n] = ok ? c : '?';
	}
	who[n++] = ':';
	who[n] = 0;
	ring_add(t, who, line, len, 0);
}

static void out_line(struct tlog_out *o)
{
	struct lutfd_tenant *t = lutfd_tenant_find(o->tenant);

	if (t)
		ring_add(t, "[output]", o->part, o->plen, o->cut);
	o->plen = 0;
	o->cut = 0;
}

static void out_bytes(struct tlog_out *o, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) : n, take = len;

		if (take > TLOG_LINE_IN - o->plen)
			take = TLOG_LINE_IN - o->plen;
		memcpy(o->part + o->plen, p, take);
		o->plen += (uint32_t)take;
		o->cut += len - take;
		if (nl) {
			out_line(o);
			len++;
		}
		p += len;
		n -= len;
	}
}

static void out_close(struct tlog_out *o)
{
	struct tlog_out **pp = &outs;

	if (o->plen || o->cut)
		out_line(o); /* a last line without its line end */
	lutf_ev_set(g_loop, o->fd, 0, NULL, NULL);
	close(o->fd);
	while (*pp != o)
		pp = &(*pp)->next;
	*pp = o->next;
	free(o);
}

/* Wake in ms (at least 1), unless already due sooner: a pipe that pauses
 * later must not push back the resumption of one that paused before. */
static void timer_arm(uint64_t ms)
{
	struct itimerspec it = {{0, 0}, {0, 0}}, cur;
	uint64_t cur_ms;

	if (timer_fd < 0 || timerfd_gettime(timer_fd, &cur))
		return;
	cur_ms = (uint64_t)cur.it_value.tv_sec * 1000 + (uint64_t)cur.it_value.tv_nsec / 1000000;
	if ((cur.it_value.tv_sec || cur.it_value.tv_nsec) && cur_ms <= ms)
		return;
	if (!ms)
		ms = 1;
	it.it_value.tv_sec = (time_t)(ms / 1000);
	it.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	timerfd_settime(timer_fd, 0, &it, NULL);
}

/* Milliseconds left in o's window. */
static uint64_t window_left(const struct tlog_out *o)
{
	uint64_t gone = lutfd_now_ms() - o->window_ms;

	return gone >= TLOG_WINDOW_MS ? 0 : TLOG_WINDOW_MS - gone;
}

/* Read what the budget allows. Returns false when o was closed (EOF: every
 * writer, the worker and what it forked, is gone). */
static bool out_read(struct tlog_out *o)
{
	char buf[TLOG_READ];
	uint64_t now = lutfd_now_ms();

	if (now - o->window_ms >= TLOG_WINDOW_MS) {
		o->window_ms = now;
		o->budget = TLOG_BUDGET;
	}
	while (o->budget) {
		ssize_t n = read(o->fd, buf, o->budget < sizeof(buf) ? o->budget : sizeof(buf));

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			out_close(o);
			return false;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				return true;
			continue;
		}
		o->budget -= (uint32_t)n;
		out_bytes(o, buf, (size_t)n);
	}
	/* Spent: the worker's writes block (its own Labors wait, nobody
	 * else's) until the next window. */
	if (!o->paused) {
		o->paused = true;
		lutf_ev_set(g_loop, o->fd, 0, NULL, NULL);
	}
	timer_arm(window_left(o));
	return true;
}

static void out_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	out_read(data);
}

static void timer_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	uint64_t ticks;
	struct tlog_out *o, *next;

	while (read(timer_fd, &ticks, sizeof(ticks)) > 0)
		;
	for (o = outs; o; o = next) {
		next = o->next;
		if (!o->paused)
			continue;
		if (window_left(o)) {
			timer_arm(window_left(o));
			continue;
		}
		o->paused = false;
		lutf_ev_set(g_loop, o->fd, LUTF_EV_READ, out_event, o);
		out_read(o);
	}
}

/* Returns 0 or -errno. */
int lutfd_tlog_open(const char *tenant, int *wr)
{
	struct tlog_out *o;
	int p[2], err;

	if (timer_fd < 0) {
		timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (timer_fd < 0)
			return -errno;
		if ((err = lutf_ev_set(g_loop, timer_fd, LUTF_EV_READ, timer_event, NULL))) {
			close(timer_fd);
			timer_fd = -1;
			return err;
		}
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC)) {
		err = -errno;
		goto err_free;
	}
	if (fcntl(p[0], F_SETFL, O_NONBLOCK)) {
		err = -errno;
		goto err_close;
	}
	LUTFD_COPY(o->tenant, tenant);
	o->fd = p[0];
	o->budget = TLOG_BUDGET;
	o->window_ms = lutfd_now_ms();
	if ((err = lutf_ev_set(g_loop, o->fd, LUTF_EV_READ, out_event, o)))
		goto err_close;
	o->next = outs;
	outs = o;
	*wr = p[1];
	return 0;
err_close:
	close(p[0]);
	close(p[1]);
err_free:
	free(o);
	return err;
}
