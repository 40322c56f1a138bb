/* SPDX-License-Identifier: MIT */
/*
 * liblutf-client internals shared by client.c (connection, framing, invoke)
 * and control.c (control calls and their generic reply rows). Nothing here is
 * exported from the shared library: the symbol map names only lutf_client_*.
 */
#ifndef LUTF_CLIENT_INTERNAL_H
#define LUTF_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lutf/client.h>

#include "wire.h"

struct lutf_client {
	int fd;		  /* -1 when closed or poisoned */
	int poison;	  /* the -errno that poisoned the handle, 0 when usable */
	char *url;	  /* as given, for reconnect */
	uint64_t next_id; /* request ids increase per handle, starting at 1 */
	uint32_t timeout_ms;
	uint32_t grace_ms;
	uint32_t max_frame;
	struct lutf_buf tx; /* the request being built: one frame */
	size_t tx_frame;    /* offset of that frame's header in tx */
	uint16_t tx_op;	    /* its opcode, which the reply echoes */
	/*
	 * Bytes received and not yet consumed. A frame is reassembled here
	 * across partial reads; bytes past it stay for the next reply (the
	 * asynchronous API will read several replies from one buffer).
	 */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	size_t rx_used; /* the previous reply's frame, dropped at the next call */
	char key[LUTF_CLIENT_KEY_MAX]; /* API key sent with invokes ("" = none) */
	void *nats; /* nats:// URL: its natsConnection (nats.c); fd stays -1 */
};

/* One reply frame, pointing into c->rx until the next call on the handle. */
struct clnt_reply {
	struct lutf_wire_hdr hdr;
	const uint8_t *payload;
	bool refused; /* id 0: lutfd refused the connection; the handle is now poisoned */
};

/*
 * Start a request: resets c->tx and writes the frame header. Returns 0, or
 * -ENOTCONN when the handle is poisoned or closed.
 */
int clnt_begin(struct lutf_client *c, uint16_t op);

/*
 * Finish the request in c->tx, send it and wait up to wait_ms (0: forever) for
 * its reply. Returns 0 and *r, -EMSGSIZE / -ENOMEM without sending anything,
 * or a transport -errno after which the handle is poisoned.
 */
int clnt_roundtrip(struct lutf_client *c, uint32_t wait_ms, struct clnt_reply *r);

/* Mark the handle unusable after err (a -errno); returns err. */
int clnt_poison(struct lutf_client *c, int err);

/* Dial url ("unix://", "tcp://" or a bare absolute path). Returns a connected
 * non-blocking fd, or -EINVAL, -ENAMETOOLONG, -EHOSTUNREACH or the connect -errno. */
int clnt_dial(const char *url);

/* Invoke requests, shared by the synchronous and the asynchronous handle. */
/* Returns 0, or -EINVAL (input NULL with a length, a header without a name). */
int clnt_invoke_check(const struct lutf_client_request *req);
/* Append the INVOKE fields of tenant/function and req to b (names checked by the caller). */
void clnt_invoke_put(struct lutf_buf *b, const char *tenant, const char *function,
		     const struct lutf_client_request *req, const char *key);
/* LUTF_KEY from the environment into key (cap bytes); "" when unset or too long. */
void clnt_env_key(char *key, size_t cap);
/* How long to wait for the reply: req's own timeout plus grace, else timeout_ms. */
uint32_t clnt_invoke_wait(const struct lutf_client_request *req, uint32_t timeout_ms,
			  uint32_t grace_ms);
/* Decode an invoke reply (header h, payload of h->length bytes) into res,
 * which must be empty. Returns 0, -EPROTO or -ENOMEM (res then partly filled:
 * release it). */
int clnt_decode_result(const struct lutf_wire_hdr *h, const uint8_t *payload,
		       struct lutf_client_result *res);

/* A malloc'ed NUL-terminated copy of n bytes (cut at an embedded NUL), or NULL. */
char *clnt_strndup(const uint8_t *p, size_t n);

#endif /* LUTF_CLIENT_INTERNAL_H */
