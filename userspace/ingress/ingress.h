/* SPDX-License-Identifier: MIT */
/*
 * Ingress: an event loop behind a tiny backend interface (like redis's ae:
 * ingress_epoll.c today, an io_uring backend later) and, on top of it and
 * independent of the backend, the framing server (conn.c): listeners,
 * connections, frame validation, limits and reply buffering.
 *
 * Everything here runs on one thread, the loop's. Functions that can fail
 * return 0 or -errno.
 */
#ifndef LUTF_INGRESS_H
#define LUTF_INGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lutf/protocol.h>

/* ---- the backend interface ---- */

#define LUTF_EV_READ 0x1u
#define LUTF_EV_WRITE 0x2u

struct lutf_ev_loop;
typedef void (*lutf_ev_fn)(struct lutf_ev_loop *l, int fd, void *data, unsigned mask);

/* Returns 0 or -errno. */
int lutf_ev_create(struct lutf_ev_loop **out);
void lutf_ev_destroy(struct lutf_ev_loop *l);
/* Watch fd for mask (add or change); mask 0 stops watching. Returns 0 or -errno. */
int lutf_ev_set(struct lutf_ev_loop *l, int fd, unsigned mask, lutf_ev_fn fn, void *data);
/* Wait up to timeout_ms (-1 forever) and dispatch. Returns events handled or -errno. */
int lutf_ev_poll(struct lutf_ev_loop *l, int timeout_ms);
/* "epoll" */
const char *lutf_ev_backend(void);

/* ---- the framing server ---- */

struct lutf_srv_limits {
	uint32_t max_frame; /* payload bytes; over it: TOO_LARGE and close */
	uint32_t max_conns; /* further connections are refused (closed at once) */
	size_t out_max;	    /* reply bytes queued per connection before reading stops */
	uint32_t idle_ms;   /* no progress this long with nothing in flight: close */
	gid_t group;	    /* control peers: uid 0 or member of this group */
	bool group_valid;
};

struct lutf_srv;
struct lutf_conn;

struct lutf_srv_ops {
	/* A valid frame whose opcode the socket allows. payload is valid only during
	 * the call. Reply with lutf_conn_send (now or later, by lutf_srv_conn). */
	void (*frame)(void *ctx, struct lutf_conn *c, const struct lutf_wire_hdr *h,
		      const uint8_t *payload);
};

/* Returns 0 or -errno. */
int lutf_srv_create(struct lutf_ev_loop *l, const struct lutf_srv_limits *lim,
		    const struct lutf_srv_ops *ops, void *ctx, struct lutf_srv **out);
/* Close every connection and listener and free. */
void lutf_srv_destroy(struct lutf_srv *s);
/*
 * Listen on a Unix socket at path (a stale socket there is replaced), chmod
 * mode, chown root:group when group_valid. control: the control socket (peer
 * credentials checked; control opcodes allowed). Returns 0 or -errno.
 */
int lutf_srv_listen_unix(struct lutf_srv *s, const char *path, mode_t mode, bool control);
/* Close the listeners (and unlink their paths); connections go on. */
void lutf_srv_stop_accepting(struct lutf_srv *s);
/* Stop reading requests on every connection (shutdown); replies still flow. */
void lutf_srv_stop_reading(struct lutf_srv *s);
/* Write replies queued outside connection handlers (after a batch of completions). */
void lutf_srv_flush(struct lutf_srv *s);
/* Timeouts; call every few hundred ms. */
void lutf_srv_tick(struct lutf_srv *s);
/* Bytes of replies not yet written, over all connections. */
size_t lutf_srv_pending_out(struct lutf_srv *s);
unsigned lutf_srv_nconns(struct lutf_srv *s);

/* A connection's id survives its close: lookups of a closed one give NULL. */
uint64_t lutf_conn_id(const struct lutf_conn *c);
struct lutf_conn *lutf_srv_conn(struct lutf_srv *s, uint64_t id);
bool lutf_conn_is_control(const struct lutf_conn *c);
/* Queue one whole frame (or several) for the peer. Returns 0 or -ENOMEM (closed). */
int lutf_conn_send(struct lutf_conn *c, const void *data, size_t len);
/* Requests of this connection in flight (the idle timeout spares it while > 0). */
void lutf_conn_inflight(struct lutf_conn *c, int delta);
/* Send a status-only reply (with an ERROR text if msg); the connection stays. */
void lutf_conn_reply_status(struct lutf_conn *c, uint64_t id, uint32_t status, const char *msg);
/* Send a status-only reply (with an ERROR text if msg) and close once it is written. */
void lutf_conn_fail(struct lutf_conn *c, uint64_t id, uint32_t status, const char *msg);

#endif /* LUTF_INGRESS_H */
