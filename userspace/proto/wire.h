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

/*
 * The one bounded TLV reader that lutfd's request parsers share (DEPLOY in
 * deploy.c; INVOKE, the hot path, through lutf_invoke_read below, which
 * applies the same rules). The caller lists the tags it knows, each
 * with where its value goes; every other tag is skipped (forward
 * compatibility, include/lutf/protocol.h). A tag listed without
 * LUTF_TLV_REPEAT may appear once: a second one is refused, so two TENANTs
 * can never mean two different things to two readers.
 */
enum lutf_tlv_kind {
	LUTF_TLV_STR,	/* NUL-free string into dst, cap bytes with its NUL */
	LUTF_TLV_U32,	/* exactly 4 bytes into (uint32_t *)dst */
	LUTF_TLV_U64,	/* exactly 8 bytes into (uint64_t *)dst */
	LUTF_TLV_BYTES, /* the field itself into (struct lutf_tlv *)dst: val points into the payload
			 */
	LUTF_TLV_EACH,	/* each(ctx, field) decides; false stops the read */
};

#define LUTF_TLV_REPEAT 1u /* the tag may appear more than once */
#define LUTF_TLV_RULES_MAX 32u

struct lutf_tlv_rule {
	uint16_t tag;
	uint8_t kind;  /* enum lutf_tlv_kind */
	uint8_t flags; /* LUTF_TLV_REPEAT */
	void *dst;
	size_t cap;
	bool (*each)(void *ctx, const struct lutf_tlv *f);
};

enum lutf_tlv_why {
	LUTF_TLV_OK = 0,
	LUTF_TLV_TRUNCATED, /* a header or a value runs past the payload */
	LUTF_TLV_BAD_VALUE, /* wrong size for its kind, a NUL in a string, too long */
	LUTF_TLV_REPEATED,  /* a tag without LUTF_TLV_REPEAT seen twice */
	LUTF_TLV_REFUSED,   /* an EACH callback said no */
	LUTF_TLV_BAD_RULES, /* more than LUTF_TLV_RULES_MAX rules: the caller's bug */
};

struct lutf_tlv_result {
	enum lutf_tlv_why why;
	uint16_t tag;	/* the field at fault (not for TRUNCATED) */
	uint32_t seen;	/* bit i: rules[i] was present */
	size_t nfields; /* fields read, known or not */
};

/*
 * Read payload[0..len) against rules[0..nrules). The pass is bounded by len
 * (each field costs at least LUTF_TLV_HDR_SIZE bytes); every value is
 * checked before it is stored. Returns 0, or -EBADMSG with *res saying why
 * and which tag (res may be NULL). What was stored before a failure stays.
 */
int lutf_tlv_read(const void *payload, size_t len, const struct lutf_tlv_rule *rules, size_t nrules,
		  void *ctx, struct lutf_tlv_result *res);
/* A short English phrase for why (never NULL). */
const char *lutf_tlv_why_str(enum lutf_tlv_why why);

/*
 * INVOKE's fields in one pass, for lutfd's per-call path: lutf_tlv_read with
 * these rules written out as a switch (no rule table built and searched per
 * call): TENANT, FUNCTION and CONTENT_TYPE are LUTF_TLV_STR into the given
 * buffers (caps with the NUL), INPUT is LUTF_TLV_BYTES, TIMEOUT_MS
 * LUTF_TLV_U32, each once; HEADER is LUTF_TLV_EACH through header(ctx, f),
 * repeatable; every other tag is skipped. It refuses exactly what
 * lutf_tlv_read refuses with those rules (tests/daemon/test_tlv.c compares
 * the two on random payloads). Returns the LUTF_INV_* bits of the fields
 * seen, or -EBADMSG. What was stored before a failure stays.
 */
enum {
	LUTF_INV_TENANT = 1u << 0,
	LUTF_INV_FUNCTION = 1u << 1,
	LUTF_INV_INPUT = 1u << 2,
	LUTF_INV_CONTENT_TYPE = 1u << 3,
	LUTF_INV_TIMEOUT_MS = 1u << 4,
	LUTF_INV_HEADER = 1u << 5,
};

struct lutf_invoke_fields {
	char *tenant, *function, *content_type;	 /* where the strings go */
	size_t tenant_cap, function_cap, content_type_cap; /* with the NUL */
	struct lutf_tlv input;				 /* out: points into the payload */
	uint32_t timeout_ms;				 /* out */
	bool (*header)(void *ctx, const struct lutf_tlv *f); /* false refuses the frame */
	void *ctx;
};

int lutf_invoke_read(const void *payload, size_t len, struct lutf_invoke_fields *v);

/* A tenant, app or function name: [a-z0-9][a-z0-9_-]{0,62}. */
bool lutf_name_valid(const char *s);

#endif /* LUTF_PROTO_WIRE_H */
