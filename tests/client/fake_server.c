/* SPDX-License-Identifier: MIT */
/*
 * Fake lutfd for the client tests: accepts connections one at a time (or, with
 * FAKE_CONCURRENT, a thread each), reads whole frames with a bounded wait, and
 * answers through the test's responder. Invariant: no wait here is longer
 * than 100 ms without re-checking stop; a connection's fd is closed only by
 * its own thread, under lock, so fake_kill never shuts down a reused fd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fake_server.h"

/* Wait for fd to become readable, re-checking stop. 0 ready, -1 stop. */
static int wait_readable(struct fake_server *s, int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	while (!s->stop) {
		int n = poll(&p, 1, 100);

		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
	return -1;
}

/* Read exactly n bytes. 0, or -1 on close, error or stop. */
static int read_full(struct fake_server *s, int fd, uint8_t *buf, size_t n)
{
	while (n) {
		ssize_t r;

		if (wait_readable(s, fd))
			return -1;
		r = recv(fd, buf, n, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n, size_t chunk)
{
	while (n) {
		size_t len = n < chunk ? n : chunk;
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		if (chunk < 64) {
			struct timespec ts = {0, 2 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	}
	return 0;
}

static void serve(struct fake_server *s, int fd)
{
	for (;;) {
		uint8_t hb[LUTF_WIRE_HDR_SIZE], *payload;
		struct lutf_wire_hdr h;
		struct lutf_buf out;
		enum fake_action act;

		if (read_full(s, fd, hb, sizeof(hb)))
			return;
		if (lutf_frame_parse_hdr(hb, 64u << 20, &h) != LUTF_STATUS_OK)
			return;
		payload = malloc(h.length ? h.length : 1);
		if (!payload || read_full(s, fd, payload, h.length)) {
			free(payload);
			return;
		}
		pthread_mutex_lock(&s->lock);
		s->requests++;
		s->last_hdr = h;
		free(s->last_payload);
		/* A copy: other connection threads replace last_payload. */
		s->last_payload = malloc(h.length ? h.length : 1);
		if (s->last_payload)
			memcpy(s->last_payload, payload, h.length);
		pthread_mutex_unlock(&s->lock);

		lutf_buf_init(&out);
		act = s->respond(s, &h, payload, &out);
		free(payload);
		switch (act) {
		case FAKE_SEND:
			write_full(fd, out.data, out.len, SIZE_MAX);
			break;
		case FAKE_SEND_SLOWLY:
			write_full(fd, out.data, out.len, 5);
			break;
		case FAKE_SEND_CLOSE:
			write_full(fd, out.data, out.len, SIZE_MAX);
			lutf_buf_free(&out);
			return;
		case FAKE_SILENT:
			break;
		case FAKE_DIE:
			write_full(fd, out.data, out.len, SIZE_MAX);
			lutf_buf_free(&out);
			fake_kill(s);
			return;
		}
		lutf_buf_free(&out);
	}
}

struct conn_arg {
	struct fake_server *s;
	int slot;
};

/* Serve the connection in slot until it ends, then close it (under lock). */
static void serve_slot(struct fake_server *s, int slot)
{
	serve(s, s->conn_fd[slot]);
	pthread_mutex_lock(&s->lock);
	close(s->conn_fd[slot]);
	s->conn_fd[slot] = -1;
	pthread_mutex_unlock(&s->lock);
}

static void *conn_main(void *arg)
{
	struct conn_arg *c = arg;

	serve_slot(c->s, c->slot);
	free(c);
	return NULL;
}

static void *server_main(void *arg)
{
	struct fake_server *s = arg;

	while (!s->stop && !s->dead) {
		struct conn_arg *ca;
		int fd, slot = -1;

		if (wait_readable(s, s->lfd))
			break;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->lock);
		for (int i = 0; i < FAKE_MAX_CONNS && slot < 0; i++)
			if (!s->conn_used[i])
				slot = i;
		if (slot >= 0 && !s->dead) {
			s->connections++;
			s->conn_used[slot] = true;
			s->conn_fd[slot] = fd;
		} else {
			close(fd);
			slot = -1;
		}
		pthread_mutex_unlock(&s->lock);
		if (slot < 0)
			continue;
		if (!(s->flags & FAKE_CONCURRENT)) {
			serve_slot(s, slot);
			pthread_mutex_lock(&s->lock);
			s->conn_used[slot] = false;
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		ca = malloc(sizeof(*ca));
		if (ca) {
			ca->s = s;
			ca->slot = slot;
		}
		if (!ca || pthread_create(&s->conn_thread[slot], NULL, conn_main, ca)) {
			free(ca);
			pthread_mutex_lock(&s->lock);
			close(fd);
			s->conn_fd[slot] = -1;
			s->conn_used[slot] = false;
			pthread_mutex_unlock(&s->lock);
		}
	}
	return NULL;
}

void fake_kill(struct fake_server *s)
{
	int fd;

	pthread_mutex_lock(&s->lock);
	s->dead = true;
	/* A shut-down listener refuses connects (Unix and TCP alike). */
	shutdown(s->lfd, SHUT_RDWR);
	/*
	 * Connections still waiting in the listen backlog (connected on the
	 * client's side, never accepted) end as a dead lutfd's would when its
	 * listener closes: reset. TCP's shutdown above resets them already; a
	 * Unix listener keeps them, and a client writing there would wait for
	 * answers until its timeouts.
	 */
	while ((fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
		close(fd);
	for (int i = 0; i < FAKE_MAX_CONNS; i++)
		if (s->conn_used[i] && s->conn_fd[i] >= 0)
			shutdown(s->conn_fd[i], SHUT_RDWR);
	pthread_mutex_unlock(&s->lock);
}

/* Listen on 127.0.0.1 with a port from the kernel; sets s->url. Returns 0 or -errno. */
static int listen_tcp(struct fake_server *s)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int err;

	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return -errno;
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->lfd, 64) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&sa, &len) < 0) {
		err = -errno;
		close(s->lfd);
		return err;
	}
	snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	return 0;
}

int fake_start(struct fake_server *s, fake_responder respond, void *arg)
{
	return fake_start_flags(s, respond, arg, 0);
}

int fake_start_flags(struct fake_server *s, fake_responder respond, void *arg, unsigned flags)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int err;

	memset(s, 0, sizeof(*s));
	s->respond = respond;
	s->arg = arg;
	s->flags = flags;
	for (int i = 0; i < FAKE_MAX_CONNS; i++)
		s->conn_fd[i] = -1;
	pthread_mutex_init(&s->lock, NULL);
	snprintf(s->dir, sizeof(s->dir), "/tmp/lutf-client-test.XXXXXX");
	if (!mkdtemp(s->dir))
		return -errno;
	if (flags & FAKE_TCP) {
		err = listen_tcp(s);
		if (err)
			return err;
		goto run;
	}
	snprintf(s->path, sizeof(s->path), "%s/lutf.sock", s->dir);
	snprintf(s->url, sizeof(s->url), "unix://%s", s->path);
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1); /* /tmp/...XXXXXX/lutf.sock: short */
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return -errno;
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->lfd, 64) < 0) {
		err = -errno;
		close(s->lfd);
		return err;
	}
run:
	err = -pthread_create(&s->thread, NULL, server_main, s);
	if (err)
		close(s->lfd);
	return err;
}

void fake_stop(struct fake_server *s)
{
	s->stop = true;
	pthread_join(s->thread, NULL);
	/* Connection threads re-check stop every 100 ms. */
	for (int i = 0; i < FAKE_MAX_CONNS; i++)
		if ((s->flags & FAKE_CONCURRENT) && s->conn_used[i])
			pthread_join(s->conn_thread[i], NULL);
	close(s->lfd);
	if (s->path[0])
		unlink(s->path);
	rmdir(s->dir);
	free(s->last_payload);
	s->last_payload = NULL;
	pthread_mutex_destroy(&s->lock);
}

unsigned fake_last(struct fake_server *s, struct lutf_wire_hdr *h, uint8_t **payload)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	n = s->requests;
	*h = s->last_hdr;
	*payload = NULL;
	if (s->last_payload) {
		*payload = malloc(h->length ? h->length : 1);
		if (*payload)
			memcpy(*payload, s->last_payload, h->length);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t fake_reply_begin(struct lutf_buf *out, const struct lutf_wire_hdr *h, uint32_t st)
{
	return lutf_frame_begin(out, (uint16_t)(h->opcode | LUTF_OP_REPLY), st, h->request_id);
}
