/* SPDX-License-Identifier: MIT */
/*
 * userspace/proto/wire.c, lutf_tlv_read: the one TLV reader lutfd's DEPLOY and
 * INVOKE parsers share. Truncated, oversized and repeated fields are refused
 * with the reason and the tag; unknown tags are skipped; nothing is read past
 * the payload. INVOKE's hot-path form of it, lutf_invoke_read, is compared
 * with it on random payloads: the same refusals, the same values.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "wire.h"

struct got {
	char name[8];
	uint32_t n32;
	uint64_t n64;
	struct lutf_tlv bytes;
	int each;
	bool refuse;
};

static bool count_each(void *ctx, const struct lutf_tlv *f)
{
	struct got *g = ctx;

	(void)f;
	g->each++;
	return !g->refuse;
}

static int rd(const struct lutf_buf *b, struct got *g, struct lutf_tlv_result *res)
{
	const struct lutf_tlv_rule rules[] = {
	    {1, LUTF_TLV_STR, 0, g->name, sizeof(g->name), NULL},
	    {2, LUTF_TLV_U32, 0, &g->n32, 0, NULL},
	    {3, LUTF_TLV_U64, 0, &g->n64, 0, NULL},
	    {4, LUTF_TLV_BYTES, 0, &g->bytes, 0, NULL},
	    {5, LUTF_TLV_EACH, LUTF_TLV_REPEAT, NULL, 0, count_each},
	};

	return lutf_tlv_read(b->data, b->len, rules, 5, g, res);
}

Test(tlv, reads_known_skips_unknown)
{
	struct lutf_buf b;
	struct got g = {0};
	struct lutf_tlv_result res;

	lutf_buf_init(&b);
	lutf_tlv_put_str(&b, 1, "abc");
	lutf_tlv_put_str(&b, 99, "unknown tags are skipped");
	lutf_tlv_put_u32(&b, 2, 7);
	lutf_tlv_put_u64(&b, 3, 1ull << 40);
	lutf_tlv_put(&b, 4, "\0\1\2", 3);
	lutf_tlv_put_str(&b, 5, "x");
	lutf_tlv_put_str(&b, 5, "y");
	cr_assert_eq(rd(&b, &g, &res), 0);
	cr_assert_str_eq(g.name, "abc");
	cr_assert_eq(g.n32, 7);
	cr_assert_eq(g.n64, 1ull << 40);
	cr_assert_eq(g.bytes.len, 3);
	cr_assert_eq(g.bytes.val[2], 2);
	cr_assert_eq(g.each, 2);
	cr_assert_eq(res.seen, 0x1f);
	cr_assert_eq(res.nfields, 7);
	lutf_buf_free(&b);
}

Test(tlv, empty_payload_is_fine)
{
	struct lutf_buf b = {0};
	struct got g = {0};
	struct lutf_tlv_result res;

	cr_assert_eq(rd(&b, &g, &res), 0);
	cr_assert_eq(res.seen, 0);
}

Test(tlv, truncated_header_and_value)
{
	struct lutf_buf b;
	struct got g = {0};
	struct lutf_tlv_result res;

	lutf_buf_init(&b);
	lutf_tlv_put_str(&b, 1, "abc");
	/* Every cut inside the field is refused as truncated, never read past. */
	for (size_t cut = 1; cut < b.len; cut++) {
		struct lutf_buf t = b;

		t.len = cut;
		cr_assert_eq(rd(&t, &g, &res), -EBADMSG, "cut at %zu", cut);
		cr_assert_eq(res.why, LUTF_TLV_TRUNCATED, "cut at %zu", cut);
	}
	/* A length that claims more than the payload holds. */
	b.data[2] = 0xff;
	b.data[5] = 0x7f;
	cr_assert_eq(rd(&b, &g, &res), -EBADMSG);
	cr_assert_eq(res.why, LUTF_TLV_TRUNCATED);
	lutf_buf_free(&b);
}

Test(tlv, oversized_and_wrong_sized_values)
{
	struct lutf_buf b;
	struct got g = {0};
	struct lutf_tlv_result res;

	lutf_buf_init(&b);
	lutf_tlv_put_str(&b, 1, "eight!!!"); /* 8 bytes + NUL over a cap of 8 */
	cr_assert_eq(rd(&b, &g, &res), -EBADMSG);
	cr_assert_eq(res.why, LUTF_TLV_BAD_VALUE);
	cr_assert_eq(res.tag, 1);
	b.len = 0;
	lutf_tlv_put(&b, 1, "a\0b", 3); /* a NUL inside a string */
	cr_assert_eq(rd(&b, &g, &res), -EBADMSG);
	cr_assert_eq(res.why, LUTF_TLV_BAD_VALUE);
	b.len = 0;
	lutf_tlv_put_u64(&b, 2, 1); /* a u32 tag with 8 bytes */
	cr_assert_eq(rd(&b, &g, &res), -EBADMSG);
	cr_assert_eq(res.tag, 2);
	b.len = 0;
	lutf_tlv_put_u32(&b, 3, 1); /* a u64 tag with 4 bytes */
	cr_assert_eq(rd(&b, &g, &res), -EBADMSG);
	cr_assert_eq(res.tag, 3);
	lutf_buf_free(&b);
}

Test(tlv, repeated_single_tag_refused_repeatable_allowed)
{
	struct lutf_buf b;
	struct got g = {0};
	struct lutf_tlv_result res;

	lutf_buf_init(&b);
	lutf_tlv_put_str(&b, 1, "a");
	lutf_tlv_put_str(&b, 1, "b");
	cr_assert_eq(rd(&b, &g, &res), -EBADMSG);
	cr_assert_eq(res.why, LUTF_TLV_REPEATED);
	cr_assert_eq(res.tag, 1);
	cr_assert_str_eq(g.name, "a", "the first value stays; the second is not taken");
	b.len = 0;
	for (int i = 0; i < 1000; i++)
		lutf_tlv_put(&b, 5, NULL, 0);
	cr_assert_eq(rd(&b, &g, &res), 0);
	cr_assert_eq(g.each, 1000);
	g.refuse = true;
	cr_assert_eq(rd(&b, &g, &res), -EBADMSG);
	cr_assert_eq(res.why, LUTF_TLV_REFUSED);
	cr_assert_eq(g.each, 1001, "a refusal stops the read");
	lutf_buf_free(&b);
}

Test(tlv, too_many_rules_refused)
{
	struct lutf_tlv_rule rules[LUTF_TLV_RULES_MAX + 1] = {0};
	struct lutf_tlv_result res;

	cr_assert_eq(lutf_tlv_read("", 0, rules, LUTF_TLV_RULES_MAX + 1, NULL, &res), -EBADMSG);
	cr_assert_eq(res.why, LUTF_TLV_BAD_RULES);
	cr_assert_str_neq(lutf_tlv_why_str(res.why), "unknown");
}

/* ---- lutf_invoke_read: INVOKE's reader, against lutf_tlv_read ---- */

struct hdrs {
	int n;
};

/* Refuses a header without a NUL, and a fourth one. */
static bool hdr_each(void *ctx, const struct lutf_tlv *f)
{
	struct hdrs *h = ctx;

	if (!memchr(f->val, 0, f->len) || h->n >= 3)
		return false;
	h->n++;
	return true;
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

/* A random INVOKE-like payload: known tags, unknown ones, repeats, wrong
 * sizes, NULs, long strings, and now and then a cut-off end. */
static void random_payload(struct lutf_buf *b)
{
	static const uint16_t tags[] = {LUTF_TAG_TENANT,       LUTF_TAG_FUNCTION, LUTF_TAG_INPUT,
					LUTF_TAG_CONTENT_TYPE, LUTF_TAG_HEADER,	  LUTF_TAG_TIMEOUT_MS,
					LUTF_TAG_APP,	       99,		  0};
	uint8_t v[16];
	uint32_t nf = rnd(6);

	b->len = 0;
	for (uint32_t i = 0; i < nf; i++) {
		uint16_t tag = tags[rnd(sizeof(tags) / sizeof(tags[0]))];
		uint32_t len = tag == LUTF_TAG_TIMEOUT_MS && rnd(4) ? 4 : rnd(12);

		for (uint32_t k = 0; k < len; k++)
			v[k] = rnd(8) ? (uint8_t)('a' + rnd(26)) : 0;
		lutf_tlv_put(b, tag, v, len);
	}
	if (b->len && !rnd(5))
		b->len -= 1 + rnd((uint32_t)b->len);
}

Test(tlv, invoke_reader_refuses_what_the_shared_reader_refuses)
{
	struct lutf_buf b;
	int oks = 0, refusals = 0;

	lutf_buf_init(&b);
	for (int i = 0; i < 200000; i++) {
		char t1[8] = "", f1[8] = "", c1[8] = "", t2[8] = "", f2[8] = "", c2[8] = "";
		struct hdrs h1 = {0}, h2 = {0};
		struct lutf_tlv in1 = {0};
		uint32_t tmo1 = 0;
		const struct lutf_tlv_rule rules[] = {
		    {LUTF_TAG_TENANT, LUTF_TLV_STR, 0, t1, sizeof(t1), NULL},
		    {LUTF_TAG_FUNCTION, LUTF_TLV_STR, 0, f1, sizeof(f1), NULL},
		    {LUTF_TAG_INPUT, LUTF_TLV_BYTES, 0, &in1, 0, NULL},
		    {LUTF_TAG_CONTENT_TYPE, LUTF_TLV_STR, 0, c1, sizeof(c1), NULL},
		    {LUTF_TAG_TIMEOUT_MS, LUTF_TLV_U32, 0, &tmo1, 0, NULL},
		    {LUTF_TAG_HEADER, LUTF_TLV_EACH, LUTF_TLV_REPEAT, NULL, 0, hdr_each},
		};
		struct lutf_invoke_fields v = {.tenant = t2,
					       .function = f2,
					       .content_type = c2,
					       .tenant_cap = sizeof(t2),
					       .function_cap = sizeof(f2),
					       .content_type_cap = sizeof(c2),
					       .header = hdr_each,
					       .ctx = &h2};
		struct lutf_tlv_result res;
		int a, k;

		random_payload(&b);
		a = lutf_tlv_read(b.data, b.len, rules, 6, &h1, &res);
		k = lutf_invoke_read(b.data, b.len, &v);
		cr_assert_eq(a < 0, k < 0, "payload %d: the readers disagree (%d, %d)", i, a, k);
		if (k < 0) {
			cr_assert_eq(k, -EBADMSG);
			refusals++;
			continue;
		}
		oks++;
		/* Rule i is bit i: the same fields seen, the same values. */
		cr_assert_eq((uint32_t)k, res.seen, "payload %d", i);
		cr_assert_str_eq(t1, t2);
		cr_assert_str_eq(f1, f2);
		cr_assert_str_eq(c1, c2);
		cr_assert_eq(in1.val, v.input.val);
		cr_assert_eq(in1.len, v.input.len);
		cr_assert_eq(tmo1, v.timeout_ms);
		cr_assert_eq(h1.n, h2.n);
	}
	cr_assert_gt(oks, 1000, "the generator makes valid payloads too");
	cr_assert_gt(refusals, 1000, "and invalid ones");
	lutf_buf_free(&b);
}
