/* SPDX-License-Identifier: MIT */
/*
 * The binary framing protocol (docs/protocol.md) as a struct lutf_proto:
 * frames are validated (magic, version, length against max_frame, opcode,
 * control opcodes on control sockets only) before the handler sees them.
 * Invariant: it consumes whole frames only, and only while the connection
 * accepts requests; a bad frame gets one error reply and the connection
 * closes once it is written.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/socket.h>

#include "ingress.h"
#include "wire.h"

static bool op_known(uint16_t op)
{
	return op == LUTF_OP_INVOKE || op == LUTF_OP_PING ||
	       (op >= LUTF_OP_DEPLOY && op <= LUTF_OP_LOGS) ||
	       (op >= LUTF_OP_KEY_CREATE && op <= LUTF_OP_KEY_REVOKE);
}

static void status_frame(struct lutf_buf *b, uint64_t id, uint32_t status, const char *msg)
{
	size_t f;

	lutf_buf_init(b);
	f = lutf_frame_begin(b, LUTF_OP_REPLY, status, id);
	if (msg)
		lutf_tlv_put_str(b, LUTF_TAG_ERROR, msg);
	lutf_frame_end(b, f);
}

void lutf_conn_reply_status(struct lutf_conn *c, uint64_t id, uint32_t status, const char *msg)
{
	struct lutf_buf b;

	status_frame(&b, id, status, msg);
	if (!b.failed)
		lutf_conn_send(c, b.data, b.len);
	lutf_buf_free(&b);
}

void lutf_conn_fail(struct lutf_conn *c, uint64_t id, uint32_t status, const char *msg)
{
	lutf_conn_reply_status(c, id, status, msg);
	lutf_conn_end(c, true);
}

static ssize_t bin_input(struct lutf_conn *c, const uint8_t *p, size_t n)
{
	const struct lutf_bin_handler *hd = lutf_conn_proto_ctx(c);
	uint32_t max_frame = lutf_conn_limits(c)->max_frame;
	size_t pos = 0;

	while (lutf_conn_accepting(c)) {
		size_t avail = n - pos;
		struct lutf_wire_hdr h;
		uint32_t st;

		if (avail < LUTF_WIRE_HDR_SIZE)
			break;
		st = lutf_frame_parse_hdr(p + pos, max_frame, &h);
		if (st == LUTF_STATUS_MALFORMED) {
			lutf_conn_fail(c, h.magic == LUTF_WIRE_MAGIC ? h.request_id : 0, st,
				       h.magic == LUTF_WIRE_MAGIC ? "unsupported protocol version"
								  : "bad magic");
			break;
		}
		if (st != LUTF_STATUS_OK) {
			char msg[96];

			snprintf(msg, sizeof(msg), "frame of %u bytes is over the %u-byte limit",
				 h.length, max_frame);
			lutf_conn_fail(c, h.request_id, st, msg);
			break;
		}
		if (!op_known(h.opcode)) {
			lutf_conn_fail(c, h.request_id, LUTF_STATUS_MALFORMED, "unknown opcode");
			break;
		}
		if (h.opcode >= LUTF_OP_DEPLOY && !lutf_conn_is_control(c)) {
			lutf_conn_fail(c, h.request_id, LUTF_STATUS_FORBIDDEN,
				       "control calls are accepted only on the control socket");
			break;
		}
		if (h.request_id == 0 && h.opcode == LUTF_OP_PING) {
			/* Its OK reply would carry id 0, which marks a connection-level
			 * refusal, and an OK one is malformed (docs/protocol.md). */
			lutf_conn_fail(c, 0, LUTF_STATUS_MALFORMED,
				       "request id 0 is reserved (a PING's OK reply would carry it)");
			break;
		}
		if (avail < LUTF_WIRE_HDR_SIZE + (size_t)h.length)
			break;
		st = LUTF_STATUS_OK;
		if (hd->authorize) {
			char msg[320];

			st = hd->authorize(hd->ctx, c, &h, p + pos + LUTF_WIRE_HDR_SIZE, msg,
					   sizeof(msg));
			if (st != LUTF_STATUS_OK)
				lutf_conn_reply_status(c, h.request_id, st, msg);
		}
		if (st == LUTF_STATUS_OK)
			hd->frame(hd->ctx, c, &h, p + pos + LUTF_WIRE_HDR_SIZE);
		pos += LUTF_WIRE_HDR_SIZE + h.length;
	}
	return (ssize_t)pos;
}

static void bin_refuse(int fd, uint32_t status, const char *why)
{
	struct lutf_buf b;

	status_frame(&b, 0, status, why);
	if (!b.failed)
		(void)!send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	lutf_buf_free(&b);
}

const struct lutf_proto lutf_proto_binary = {
    .name = "lutf",
    .state_size = 0,
    .input = bin_input,
    .refuse = bin_refuse,
};
