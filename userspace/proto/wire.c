/* SPDX-License-Identifier: MIT */
/*
 * Wire protocol codec: frames and TLV fields, little-endian, bounds-checked.
 * Invariant: a decoder reads only inside [payload, payload + len).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

void lutf_buf_init(struct lutf_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void lutf_buf_free(struct lutf_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool reserve(struct lutf_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->failed)
		return false;
	if (b->len + n <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void lutf_buf_put(struct lutf_buf *b, const void *p, size_t n)
{
	if (!n || !reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint16_t get_le16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

size_t lutf_frame_begin(struct lutf_buf *b, uint16_t opcode, uint32_t status, uint64_t id)
{
	uint8_t h[LUTF_WIRE_HDR_SIZE];
	size_t off = b->len;

	put_le32(h, LUTF_WIRE_MAGIC);
	put_le16(h + 4, LUTF_WIRE_VERSION);
	put_le16(h + 6, opcode);
	put_le32(h + 8, 0);
	put_le32(h + 12, status);
	put_le64(h + 16, id);
	lutf_buf_put(b, h, sizeof(h));
	return off;
}

void lutf_frame_end(struct lutf_buf *b, size_t off)
{
	if (b->failed || off + LUTF_WIRE_HDR_SIZE > b->len)
		return;
	put_le32(b->data + off + 8, (uint32_t)(b->len - off - LUTF_WIRE_HDR_SIZE));
}

uint32_t lutf_frame_parse_hdr(const uint8_t *buf, uint32_t max_payload, struct lutf_wire_hdr *h)
{
	h->magic = get_le32(buf);
	h->version = get_le16(buf + 4);
	h->opcode = get_le16(buf + 6);
	h->length = get_le32(buf + 8);
	h->status = get_le32(buf + 12);
	h->request_id = get_le64(buf + 16);
	if (h->magic != LUTF_WIRE_MAGIC || h->version != LUTF_WIRE_VERSION)
		return LUTF_STATUS_MALFORMED;
	if (h->length > max_payload)
		return LUTF_STATUS_TOO_LARGE;
	return LUTF_STATUS_OK;
}

void lutf_tlv_put(struct lutf_buf *b, uint16_t tag, const void *p, size_t n)
{
	uint8_t h[LUTF_TLV_HDR_SIZE];

	if (n > UINT32_MAX) {
		b->failed = true;
		return;
	}
	put_le16(h, tag);
	put_le32(h + 2, (uint32_t)n);
	lutf_buf_put(b, h, sizeof(h));
	lutf_buf_put(b, p, n);
}

void lutf_tlv_put_str(struct lutf_buf *b, uint16_t tag, const char *s)
{
	lutf_tlv_put(b, tag, s, s ? strlen(s) : 0);
}

void lutf_tlv_put_u32(struct lutf_buf *b, uint16_t tag, uint32_t v)
{
	uint8_t p[4];

	put_le32(p, v);
	lutf_tlv_put(b, tag, p, sizeof(p));
}

void lutf_tlv_put_u64(struct lutf_buf *b, uint16_t tag, uint64_t v)
{
	uint8_t p[8];

	put_le64(p, v);
	lutf_tlv_put(b, tag, p, sizeof(p));
}

size_t lutf_tlv_begin(struct lutf_buf *b, uint16_t tag)
{
	size_t off = b->len;

	lutf_tlv_put(b, tag, NULL, 0);
	return off;
}

void lutf_tlv_end(struct lutf_buf *b, size_t off)
{
	if (b->failed || off + LUTF_TLV_HDR_SIZE > b->len)
		return;
	put_le32(b->data + off + 2, (uint32_t)(b->len - off - LUTF_TLV_HDR_SIZE));
}

void lutf_tlv_iter_init(struct lutf_tlv_iter *it, const void *payload, size_t len)
{
	it->p = payload;
	it->end = it->p + len;
	it->bad = false;
}

bool lutf_tlv_next(struct lutf_tlv_iter *it, struct lutf_tlv *f)
{
	size_t left = (size_t)(it->end - it->p);

	if (it->bad || left == 0)
		return false;
	if (left < LUTF_TLV_HDR_SIZE) {
		it->bad = true;
		return false;
	}
	f->tag = get_le16(it->p);
	f->len = get_le32(it->p + 2);
	if (f->len > left - LUTF_TLV_HDR_SIZE) {
		it->bad = true;
		return false;
	}
	f->val = it->p + LUTF_TLV_HDR_SIZE;
	it->p = f->val + f->len;
	return true;
}

bool lutf_tlv_u32(const struct lutf_tlv *f, uint32_t *v)
{
	if (f->len != 4)
		return false;
	*v = get_le32(f->val);
	return true;
}

bool lutf_tlv_u64(const struct lutf_tlv *f, uint64_t *v)
{
	if (f->len != 8)
		return false;
	*v = get_le64(f->val);
	return true;
}

bool lutf_tlv_str(const struct lutf_tlv *f, char *dst, size_t cap)
{
	if (f->len >= cap || memchr(f->val, 0, f->len))
		return false;
	memcpy(dst, f->val, f->len);
	dst[f->len] = 0;
	return true;
}

static bool tlv_store(const struct lutf_tlv_rule *r, const struct lutf_tlv *f, void *ctx)
{
	switch (r->kind) {
	case LUTF_TLV_STR:
		return lutf_tlv_str(f, r->dst, r->cap);
	case LUTF_TLV_U32:
		return lutf_tlv_u32(f, r->dst);
	case LUTF_TLV_U64:
		return lutf_tlv_u64(f, r->dst);
	case LUTF_TLV_BYTES:
		*(struct lutf_tlv *)r->dst = *f;
		return true;
	case LUTF_TLV_EACH:
		return r->each && r->each(ctx, f);
	}
	return false;
}

int lutf_tlv_read(const void *payload, size_t len, const struct lutf_tlv_rule *rules, size_t nrules,
		  void *ctx, struct lutf_tlv_result *res)
{
	struct lutf_tlv_result local;
	struct lutf_tlv_iter it;
	struct lutf_tlv f;

	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	if (nrules > LUTF_TLV_RULES_MAX) {
		res->why = LUTF_TLV_BAD_RULES;
		return -EBADMSG;
	}
	lutf_tlv_iter_init(&it, payload, len);
	while (lutf_tlv_next(&it, &f)) {
		size_t i;

		res->nfields++;
		for (i = 0; i < nrules && rules[i].tag != f.tag; i++)
			;
		if (i == nrules)
			continue; /* unknown here: skipped */
		res->tag = f.tag;
		if ((res->seen & (1u << i)) && !(rules[i].flags & LUTF_TLV_REPEAT)) {
			res->why = LUTF_TLV_REPEATED;
			return -EBADMSG;
		}
		res->seen |= 1u << i;
		if (!tlv_store(&rules[i], &f, ctx)) {
			res->why =
			    rules[i].kind == LUTF_TLV_EACH ? LUTF_TLV_REFUSED : LUTF_TLV_BAD_VALUE;
			return -EBADMSG;
		}
	}
	if (it.bad) {
		res->tag = 0;
		res->why = LUTF_TLV_TRUNCATED;
		return -EBADMSG;
	}
	return 0;
}

int lutf_invoke_read(const void *payload, size_t len, struct lutf_invoke_fields *v)
{
	struct lutf_tlv_iter it;
	struct lutf_tlv f;
	unsigned seen = 0, bit;
	bool ok;

	lutf_tlv_iter_init(&it, payload, len);
	while (lutf_tlv_next(&it, &f)) {
		switch (f.tag) {
		case LUTF_TAG_TENANT:
			bit = LUTF_INV_TENANT;
			ok = !(seen & bit) && lutf_tlv_str(&f, v->tenant, v->tenant_cap);
			break;
		case LUTF_TAG_FUNCTION:
			bit = LUTF_INV_FUNCTION;
			ok = !(seen & bit) && lutf_tlv_str(&f, v->function, v->function_cap);
			break;
		case LUTF_TAG_INPUT:
			bit = LUTF_INV_INPUT;
			ok = !(seen & bit);
			if (ok)
				v->input = f;
			break;
		case LUTF_TAG_CONTENT_TYPE:
			bit = LUTF_INV_CONTENT_TYPE;
			ok = !(seen & bit) &&
			     lutf_tlv_str(&f, v->content_type, v->content_type_cap);
			break;
		case LUTF_TAG_TIMEOUT_MS:
			bit = LUTF_INV_TIMEOUT_MS;
			ok = !(seen & bit) && lutf_tlv_u32(&f, &v->timeout_ms);
			break;
		case LUTF_TAG_HEADER:
			bit = LUTF_INV_HEADER; /* repeatable */
			ok = v->header && v->header(v->ctx, &f);
			break;
		default:
			continue; /* unknown here: skipped */
		}
		if (!ok)
			return -EBADMSG;
		seen |= bit;
	}
	return it.bad ? -EBADMSG : (int)seen;
}

const char *lutf_tlv_why_str(enum lutf_tlv_why why)
{
	switch (why) {
	case LUTF_TLV_OK:
		return "ok";
	case LUTF_TLV_TRUNCATED:
		return "a field runs past the end of the payload";
	case LUTF_TLV_BAD_VALUE:
		return "a field's value has the wrong size or content";
	case LUTF_TLV_REPEATED:
		return "a field that may appear once is repeated";
	case LUTF_TLV_REFUSED:
		return "a field was refused";
	case LUTF_TLV_BAD_RULES:
		return "too many rules";
	}
	return "unknown";
}

bool lutf_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  (i > 0 && (c == '_' || c == '-'));

		if (!ok)
			return false;
	}
	return true;
}
