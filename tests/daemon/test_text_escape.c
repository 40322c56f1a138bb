/* SPDX-License-Identifier: MIT */
/*
 * userspace/proto/text_escape.c: what a tenant's text may hold and what is
 * shown of it. No control byte, C1 control or invalid UTF-8 gets through; an
 * escape is never cut; valid UTF-8 text stays as it is.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "text_escape.h"

static const char *esc(const char *s, size_t n, unsigned flags)
{
	static char out[256];

	lutf_text_escape(out, sizeof(out), s, n, flags, NULL);
	return out;
}

Test(text_escape, controls_become_visible)
{
	cr_assert_str_eq(esc("a\nb\r\tc", 6, 0), "a\\nb\\r\\tc");
	cr_assert_str_eq(esc("\x1b[2J\x07\x7f", 6, 0), "\\x1b[2J\\x07\\x7f");
	cr_assert_str_eq(esc("nul\0end", 7, 0), "nul\\x00end");
	/* A backslash: kept for lutfctl (lutfd's escapes stay readable), doubled by lutfd. */
	cr_assert_str_eq(esc("a\\x1b", 5, 0), "a\\x1b");
	cr_assert_str_eq(esc("a\\x1b", 5, LUTF_ESC_BACKSLASH), "a\\\\x1b");
}

Test(text_escape, utf8_kept_c1_and_invalid_escaped)
{
	cr_assert_str_eq(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 0),
			 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* U+009B (CSI) encoded, a raw C1 byte, an overlong '/', a surrogate, a cut sequence. */
	cr_assert_str_eq(esc("\xc2\x9b", 2, 0), "\\xc2\\x9b");
	cr_assert_str_eq(esc("\x9b", 1, 0), "\\x9b");
	cr_assert_str_eq(esc("\xc0\xaf", 2, 0), "\\xc0\\xaf");
	cr_assert_str_eq(esc("\xed\xa0\x80", 3, 0), "\\xed\\xa0\\x80");
	cr_assert_str_eq(esc("\xe2\x82", 2, 0), "\\xe2\\x82");
}

Test(text_escape, an_escape_is_never_cut)
{
	char out[8];
	size_t used, n;

	n = lutf_text_escape(out, sizeof(out), "ab\x1b\x1b", 4, 0, &used);
	cr_assert_str_eq(out, "ab\\x1b"); /* 6 bytes; the next escape does not fit */
	cr_assert_eq(n, 6);
	cr_assert_eq(used, 3);
	n = lutf_text_escape(out, sizeof(out), "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9, 0, &used);
	cr_assert_eq(n, 6);
	cr_assert_eq(used, 6); /* two whole characters, not a part of the third */
	cr_assert_eq(lutf_text_escape(out, 0, "x", 1, 0, &used), 0);
	cr_assert_eq(used, 0);
}
