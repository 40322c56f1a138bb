/* SPDX-License-Identifier: MIT */
/*
 * Ingress, in three layers, all on one thread (the loop's):
 *
 *  1. the event loop (lutf_ev_*), behind a small backend interface as in
 *     redis's ae: io_uring (ingress_uring.c, the default) or epoll
 *     (ingress_epoll.c). The backend owns socket I/O in a completion model:
 *     it accepts, receives into its own buffers and reports the bytes, and
 *     sends a buffer the caller lends it. Other fds (signalfd, eventfds,
 *     worker sockets) get readiness callbacks.
 *  2. the connection layer (conn.c, backend-independent): listeners (Unix,
 *     TCP), connections, the input buffer for partial units, double-buffered
 *     replies with one send in flight, limits, idle timeouts, peer credentials.
 *  3. protocols plugged into connections (struct lutf_proto): the binary
 *     framing protocol (proto_lutf.c) today, HTTP/1.1 next.
 *
 * Functions that can fail return 0 or -errno.
 */
#ifndef LUTF_INGRESS_H
#define LUTF_INGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lutf/protocol.h>

/* ==== 1. the event loop ==== */

#define LUTF_EV_READ 0x1u
#define LUTF_EV_WRITE 0x2u

enum lutf_ev_kind {
	LUTF_EV_AUTO,  /* io_uring; epoll when io_uring is refused or unusable */
	LUTF_EV_URING, /* io_uring or fail */
	LUTF_EV_EPOLL,
};

struct lutf_ev_params {
	enum lutf_ev_kind kind;
	unsigned sq_entries;  /* io_uring SQ size (power of two); CQ is 4x */
	unsigned buffers;     /* provided-buffer ring: count (power of two) ... */
	unsigned buffer_size; /* ... and bytes each */
};

/* Counters since the loop was created (some stay 0 on epoll). */
struct lutf_ev_stats {
	uint64_t accepts;   /* connections accepted */
	uint64_t recv_arms; /* multishot recvs armed (first arm and re-arms) */
	uint64_t enobufs;   /* recvs ended by -ENOBUFS and re-armed */
	uint64_t recv_bytes;
	uint64_t sends;	       /* sends started */
	uint64_t short_sends;  /* sends that wrote less than asked (then resumed) */
	uint64_t cq_overflows; /* times the kernel held completions back (CQ full) */
	uint64_t sqe_waits;    /* SQ full: submitted early to get a slot */
};

struct lutf_ev_loop;
typedef void (*lutf_ev_fn)(struct lutf_ev_loop *l, int fd, void *data, unsigned mask);

/*
 * Create a loop on the calling thread (it alone may use it afterwards). With
 * LUTF_EV_AUTO, when io_uring cannot be set up, the epoll backend is used and
 * why (if not NULL) says why (else it is ""). Returns 0 or -errno (for
 * LUTF_EV_URING: the io_uring error, why says which step).
 */
int lutf_ev_create(const struct lutf_ev_params *p, struct lutf_ev_loop **out, char *why,
		   size_t cap);
void lutf_ev_destroy(struct lutf_ev_loop *l);
/* "io_uring" or "epoll" */
const char *lutf_ev_backend(const struct lutf_ev_loop *l);
void lutf_ev_get_stats(const struct lutf_ev_loop *l, struct lutf_ev_stats *st);

/*
 * Readiness for fds that are not connections (signalfd, eventfd, worker
 * sockets): call fn when fd is ready for mask; mask 0 stops watching (safe
 * from inside fn, its own fd included). On io_uring this is a multishot poll,
 * which reports new readiness, not lasting readiness: fn must drain its fd
 * (read until EAGAIN). Returns 0 or -errno.
 */
int lutf_ev_set(struct lutf_ev_loop *l, int fd, unsigned mask, lutf_ev_fn fn, void *data);
/* Submit what is queued, wait up to timeout_ms (-1 forever) for completions
 * and dispatch them. Returns completions handled (>= 0) or -errno. */
int lutf_ev_poll(struct lutf_ev_loop *l, int timeout_ms);
/* CLOCK_MONOTONIC in ns, read once per batch of events: the first call after
 * the backend's wait (or its next batch of completions) reads the clock, the
 * handlers of that batch get the same stamp. Loop thread only. */
uint64_t lutf_ev_now_ns(struct lutf_ev_loop *l);

/*
 * Listening sockets. fn(data, fd) gets each accepted connection (close-on-
 * exec; its blocking mode is the backend's business) or -errno when accepting
 * failed (the backend retries later). Returns 0 or -errno.
 */
typedef void (*lutf_ev_accept_fn)(void *data, int fd);
struct lutf_ev_listener;
int lutf_ev_listen(struct lutf_ev_loop *l, int lfd, lutf_ev_accept_fn fn, void *data,
		   struct lutf_ev_listener **out);
/* No more callbacks; lfd is closed (now or when the kernel lets go of it). */
void lutf_ev_unlisten(struct lutf_ev_listener *ls);

/*
 * Stream sockets in the completion model. Callbacks come only from
 * lutf_ev_poll, never from inside a lutf_ev_sock_* call.
 */
struct lutf_ev_sock_ops {
	/* Bytes arrived; p is valid only during the call (a provided buffer). */
	void (*recv)(void *owner, const uint8_t *p, size_t n);
	/* No more input: 0 = the peer shut its side, or -errno. */
	void (*recv_end)(void *owner, int err);
	/* The send in flight finished: bytes written (maybe fewer than asked) or -errno. */
	void (*sent)(void *owner, int res);
	/* After lutf_ev_sock_close: nothing references owner or the lent buffer any more. */
	void (*released)(void *owner);
};
struct lutf_ev_sock;
/* Adopt connected socket fd (the backend closes it). Returns 0 or -errno. */
int lutf_ev_sock_open(struct lutf_ev_loop *l, int fd, const struct lutf_ev_sock_ops *ops,
		      void *owner, struct lutf_ev_sock **out);
/*
 * Start (on) or stop receiving. After "off", recv may still report bytes that
 * were already on their way (at most one provided-buffer ring's worth).
 */
void lutf_ev_sock_recv(struct lutf_ev_sock *s, bool on);
/* Send p[0..n): at most one send in flight; p must stay valid and unchanged
 * until sent() (or released()). Returns 0 or -errno. */
int lutf_ev_sock_send(struct lutf_ev_sock *s, const void *p, size_t n);
/* Cancel what is in flight and close; released() follows (later, from poll). */
void lutf_ev_sock_close(struct lutf_ev_sock *s);

/*
 * One futex wait run by the loop (io_uring's IORING_OP_FUTEX_WAIT): while the
 * 32-bit word *uaddr is val, sleep; then fn(data, res) runs once from
 * lutf_ev_poll with res 0 (woken) or -EAGAIN (the word was no longer val), or
 * another -errno, and the wait is over (its handle freed). shared: a
 * process-shared futex (no FUTEX2_PRIVATE). -ENOTSUP: the backend (epoll) or
 * kernel has no futex waits. Returns 0 or -errno.
 */
struct lutf_ev_futex;
typedef void (*lutf_ev_futex_fn)(void *data, int res);
int lutf_ev_futex_wait(struct lutf_ev_loop *l, uint32_t *uaddr, uint32_t val, bool shared,
		       lutf_ev_futex_fn fn, void *data, struct lutf_ev_futex **out);
/* A wait whose fn has not run yet: fn never runs; the kernel stops waiting
 * before this returns (the word may be unmapped next). */
void lutf_ev_futex_cancel(struct lutf_ev_futex *f);

/* ==== 2. the connection layer ==== */

struct lutf_srv_limits {
	uint32_t max_frame; /* payload bytes; over it: TOO_LARGE and close */
	uint32_t max_conns; /* further connections are refused (closed at once) */
	size_t out_max;	    /* reply bytes queued per connection before reading stops */
	uint32_t idle_ms;   /* no progress this long with nothing in flight: close */
	uint32_t frame_ms;  /* a unit begun and not complete this long: refuse, close; 0 = none */
	uint64_t input_max; /* input buffered over all connections; past it the
			     * connection asking for more is refused and closed; 0 = none */
	gid_t group;	    /* control peers: uid 0 or member of this group */
	bool group_valid;
	/* Optional: every accepted TCP connection, before anything is read.
	 * Returns 0 (go on) or -errno: refused FORBIDDEN with why, closed. */
	int (*tcp_peer)(void *ctx, int fd, char *why, size_t cap);
	void *tcp_peer_ctx;
};

struct lutf_srv;
struct lutf_conn;

/*
 * ==== 3. the protocol hook ====
 *
 * A listener speaks one protocol on all its connections. conn.c does the
 * I/O, buffering and limits; the protocol turns bytes into requests and
 * answers with lutf_conn_send. What a protocol gets:
 *  - per-connection state: state_size bytes, zeroed, at lutf_conn_state(c)
 *    (alive from open() to close());
 *  - "bytes arrived": input(c, p, n) with every byte not yet consumed, in
 *    order; it returns how many it consumed (a prefix); the rest is kept and
 *    offered again, with more appended, when more arrives or the connection
 *    may go on. It should consume only while lutf_conn_accepting(c) (replies
 *    queued under the limit, not closing), and must not keep more than
 *    limits.max_frame + 64 KiB unconsumed (conn.c closes the connection past
 *    that). p is valid only during the call. Returning -errno closes hard.
 *  - "queue these reply bytes": lutf_conn_send (any time the connection is
 *    alive; lutf_srv_conn(s, id) finds it again later by id);
 *  - "close after flushing": lutf_conn_end(c, hard) (hard: do not wait for
 *    requests in flight);
 *  - in-flight accounting: lutf_conn_inflight(c, +1/-1); the idle timeout
 *    spares a connection with requests in flight, and an ended connection
 *    waits for them (unless hard).
 */
struct lutf_proto {
	const char *name;
	size_t state_size;
	/* A new connection (already counted). Returns 0, or -errno to refuse it. */
	int (*open)(struct lutf_conn *c);
	ssize_t (*input)(struct lutf_conn *c, const uint8_t *p, size_t n);
	/* The connection is gone (no more calls; state freed after). May be NULL. */
	void (*close)(struct lutf_conn *c);
	/* Best effort, before closing a refused socket (too many connections:
	 * OVERLOADED; bad peer credentials: FORBIDDEN): write one refusal with
	 * that typed status on fd without blocking. May be NULL. */
	void (*refuse)(int fd, uint32_t status, const char *why);
};

/* Returns 0 or -errno. */
int lutf_srv_create(struct lutf_ev_loop *l, const struct lutf_srv_limits *lim,
		    struct lutf_srv **out);
/* Close every connection and listener and free (waits up to 1 s for the
 * backend to let go of them). */
void lutf_srv_destroy(struct lutf_srv *s);

#define LUTF_LISTEN_CONTROL 0x1u /* control socket: peer credentials checked */

/*
 * Listen on a Unix socket at path (a stale socket there is replaced), chmod
 * mode, chown root:group when the group is valid. Returns 0 or -errno.
 */
int lutf_srv_listen_unix(struct lutf_srv *s, const char *path, mode_t mode, unsigned flags,
			 const struct lutf_proto *p, void *pctx);
/*
 * Listen on TCP at "host:port" or "[v6]:port" (port 0: any free port);
 * SO_REUSEADDR, TCP_NODELAY on connections. bound gets "addr:port" as bound.
 * Returns 0, -EINVAL (bad address) or -errno.
 */
int lutf_srv_listen_tcp(struct lutf_srv *s, const char *hostport, unsigned flags,
			const struct lutf_proto *p, void *pctx, char *bound, size_t cap);
/* Close the listeners (and unlink their paths); connections go on. */
void lutf_srv_stop_accepting(struct lutf_srv *s);
/* Stop reading requests on every connection; replies still flow. */
void lutf_srv_stop_reading(struct lutf_srv *s);
/* Start sending replies queued outside connection handlers (after a batch of completions). */
void lutf_srv_flush(struct lutf_srv *s);
/* Timeouts; call every few hundred ms. */
void lutf_srv_tick(struct lutf_srv *s);
/* Bytes of replies not yet written, over all connections. */
size_t lutf_srv_pending_out(struct lutf_srv *s);
unsigned lutf_srv_nconns(struct lutf_srv *s);
/* Connections refused (max_conns) and closed by the idle timeout. */
void lutf_srv_counters(struct lutf_srv *s, uint64_t *refused, uint64_t *idle_closed);
/* Input buffer bytes held now; connections closed by frame_ms and input_max. */
void lutf_srv_input_stats(struct lutf_srv *s, uint64_t *buffered, uint64_t *frame_timeouts,
			  uint64_t *input_refused);

/* A connection's id survives its close: lookups of a closed one give NULL. */
uint64_t lutf_conn_id(const struct lutf_conn *c);
struct lutf_conn *lutf_srv_conn(struct lutf_srv *s, uint64_t id);
bool lutf_conn_is_control(const struct lutf_conn *c);
/* Over TCP? (API keys apply there: daemon/keys.c; keep this accessor) */
bool lutf_conn_is_tcp(const struct lutf_conn *c);
void *lutf_conn_state(struct lutf_conn *c);
void *lutf_conn_proto_ctx(const struct lutf_conn *c);
const struct lutf_srv_limits *lutf_conn_limits(const struct lutf_conn *c);
/* May the protocol take another request now? (not ending, replies under out_max) */
bool lutf_conn_accepting(const struct lutf_conn *c);
/* Queue reply bytes for the peer. Returns 0 or -ENOMEM (then closed). */
int lutf_conn_send(struct lutf_conn *c, const void *data, size_t len);
/* Close once queued replies are written (and, unless hard, requests in flight answered). */
void lutf_conn_end(struct lutf_conn *c, bool hard);
/* Requests of this connection in flight (the idle timeout spares it while > 0). */
void lutf_conn_inflight(struct lutf_conn *c, int delta);

/* ==== the binary framing protocol (proto_lutf.c) ==== */

/* What a valid frame goes to: frame() gets it when its opcode is allowed on
 * the socket (control opcodes: control socket only); payload is valid only
 * during the call. Reply with lutf_conn_send (now or later, by id). */
struct lutf_bin_handler {
	void (*frame)(void *ctx, struct lutf_conn *c, const struct lutf_wire_hdr *h,
		      const uint8_t *payload);
	void *ctx;
	/* Optional, before frame(): LUTF_STATUS_OK lets the frame through; any
	 * other status is answered with msg instead (the connection stays). */
	uint32_t (*authorize)(void *ctx, struct lutf_conn *c, const struct lutf_wire_hdr *h,
			      const uint8_t *payload, char *msg, size_t cap);
};
/* pctx: const struct lutf_bin_handler * */
extern const struct lutf_proto lutf_proto_binary;

/* Send a status-only reply (with an ERROR text if msg); the connection stays. */
void lutf_conn_reply_status(struct lutf_conn *c, uint64_t id, uint32_t status, const char *msg);
/* Send a status-only reply (with an ERROR text if msg) and close once it is written. */
void lutf_conn_fail(struct lutf_conn *c, uint64_t id, uint32_t status, const char *msg);

#endif /* LUTF_INGRESS_H */
