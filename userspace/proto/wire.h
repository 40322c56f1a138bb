/* SPDX-License-Identifier: MIT */
/*
 * Encoding and decoding of the wire protocol (include/lutf/protocol.h,
 * docs/protocol.md), shared by lutfd, the client library and lutfctl. Pure
 * functions over caller buffers: no I/O, no allocation except in lutf_buf.
 * Decoders never trust lengths: every read is bounds-checked.
 */
#ifndef LUTF_PROTO_WIRE_H
#define LUTF_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lutf/protocol.h>

/* A growable byte buffer for building frames. */
struct lutf_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: the content is incomplete */
};

void lutf_buf_init(struct lutf_buf *b);
void lutf_buf_free(struct lutf_buf *b);
/* Append raw bytes. Sets b->failed on allocation failure. */
void lutf_buf_put(struct lutf_buf *b, const void *p, size_t n);

/* Start a frame (header with length 0); returns its offset in b. */
size_t lutf_frame_begin(struct lutf_buf *b, uint16_t opcode, uint32_t status, uint64_t id);
/* Patch the frame's length once its payload is appended. */
void lutf_frame_end(struct lutf_buf *b, size_t frame_off);

/* Append one TLV field. */
void lutf_tlv_put(struct lutf_buf *b, uint16_t tag, const void *p, size_t n);
void lutf_tlv_put_str(struct lutf_buf *b, uint16_t tag, const char *s);
void lutf_tlv_put_u32(struct lutf_buf *b, uint16_t tag, uint32_t v);
void lutf_tlv_put_u64(struct lutf_buf *b, uint16_t tag, uint64_t v);
/* Start a nested TLV (e.g. LUTF_TAG_RECORD); returns its offset for _end. */
size_t lutf_tlv_begin(struct lutf_buf *b, uint16_t tag);
void lutf_tlv_end(struct lutf_buf *b, size_t tlv_off);

/*
 * Validate a frame header in buf (at least LUTF_WIRE_HDR_SIZE bytes). Returns
 * LUTF_STATUS_OK and fills *h, or MALFORMED (magic, version) or TOO_LARGE
 * (length over max_payload). The opcode is the caller's to check.
 */
uint32_t lutf_frame_parse_hdr(const uint8_t *buf, uint32_t max_payload, struct lutf_wire_hdr *h);

/* Iterate the TLV fields of a payload. */
struct lutf_tlv_iter {
	const uint8_t *p, *end;
	bool bad; /* a field ran past the end: the payload is MALFORMED */
};

struct lutf_tlv {
	uint16_t tag;
	uint32_t len;
	const uint8_t *val;
};

void lutf_tlv_iter_init(struct lutf_tlv_iter *it, const void *payload, size_t len);
/* Next field: true and *f, or false at the end (check it->bad). */
bool lutf_tlv_next(struct lutf_tlv_iter *it, struct lutf_tlv *f);
/* Field value readers: false when the length does not fit the type. */
bool lutf_tlv_u32(const struct lutf_tlv *f, uint32_t *v);
bool lutf_tlv_u64(const struct lutf_tlv *f, uint64_t *v);
/* Copy a string field into dst (cap bytes with NUL); false if it does not fit
 * or holds a NUL. */
bool lutf_tlv_str(const struct lutf_tlv *f, char *dst, size_t cap);

/* A tenant, app or function name: [a-z0-9][a-z0-9_-]{0,62}. */
bool lutf_name_valid(const char *s);

#endif /* LUTF_PROTO_WIRE_H */
