/* SPDX-License-Identifier: MIT */
/*
 * A fake lutfd for client tests: a real Unix socket in a temporary folder (or
 * a TCP socket on 127.0.0.1, port chosen by the kernel) and one thread that
 * reads request frames with the codec, records them, and answers as the
 * test's responder says; with FAKE_CONCURRENT one thread per connection, so
 * many clients pipeline at once (the responder must then be thread-safe).
 * Every wait in it is bounded.
 */
#ifndef LUTF_TEST_FAKE_SERVER_H
#define LUTF_TEST_FAKE_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

enum fake_action {
	FAKE_SEND,	  /* send the reply in out */
	FAKE_SEND_SLOWLY, /* send it a few bytes at a time, with pauses */
	FAKE_SILENT,	  /* send nothing; keep the connection open */
	FAKE_SEND_CLOSE,  /* send the reply in out (may be partial), then close */
	FAKE_DIE,	  /* send out (may be empty), then close every connection and
			     the listener: the endpoint is dead (connect is refused) */
};

#define FAKE_TCP 0x1u	     /* listen on 127.0.0.1:0 instead of a Unix socket */
#define FAKE_CONCURRENT 0x2u /* a thread per connection (at most FAKE_MAX_CONNS) */
#define FAKE_MAX_CONNS 64

struct fake_server;

/* Build the answer to one request in out (a fresh buffer). */
typedef enum fake_action (*fake_responder)(struct fake_server *s, const struct lutf_wire_hdr *h,
					   const uint8_t *payload, struct lutf_buf *out);

struct fake_server {
	char dir[64];
	char path[128];
	char url[160];
	int lfd;
	pthread_t thread;
	_Atomic bool stop; /* seq_cst; set by fake_stop, polled by the thread every 100 ms */
	fake_responder respond;
	void *arg;
	unsigned flags;
	_Atomic bool dead; /* seq_cst; FAKE_DIE happened: accept no more */
	pthread_mutex_t lock;
	/* FAKE_CONCURRENT: live connection fds (under lock) and their threads */
	int conn_fd[FAKE_MAX_CONNS];
	pthread_t conn_thread[FAKE_MAX_CONNS];
	bool conn_used[FAKE_MAX_CONNS];
	/* the last request seen (under lock) */
	unsigned requests;
	unsigned connections;
	struct lutf_wire_hdr last_hdr;
	uint8_t *last_payload;
};

/* Start listening and serving. Returns 0 or -errno. */
int fake_start(struct fake_server *s, fake_responder respond, void *arg);
/* As fake_start, with FAKE_TCP and/or FAKE_CONCURRENT. */
int fake_start_flags(struct fake_server *s, fake_responder respond, void *arg, unsigned flags);
/* Make the endpoint die now, as FAKE_DIE does. */
void fake_kill(struct fake_server *s);
/* Stop the thread (within ~200 ms), remove the socket and folder. */
void fake_stop(struct fake_server *s);

/* Copy of the last request (payload malloc'ed; caller frees). Returns its count. */
unsigned fake_last(struct fake_server *s, struct lutf_wire_hdr *h, uint8_t **payload);

/* A reply frame for request h: opcode | REPLY, same id, status st; returns the
 * frame offset for lutf_frame_end. */
size_t fake_reply_begin(struct lutf_buf *out, const struct lutf_wire_hdr *h, uint32_t st);

#endif /* LUTF_TEST_FAKE_SERVER_H */
