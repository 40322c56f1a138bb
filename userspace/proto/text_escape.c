/* SPDX-License-Identifier: MIT */
/*
 * Escaping of tenant text (see text_escape.h). Invariant: the output holds no
 * byte below 0x20, no DEL, no C1 control and no invalid UTF-8, whatever the
 * input; only printable ASCII and whole, valid, non-control UTF-8 sequences
 * are copied as they are.
 */
#include <stdbool.h>
#include <stdint.h>

#include "text_escape.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes) that is not a C1
 * control (U+0080..U+009F), or 0. Overlong forms, surrogates and code points
 * past U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0u) != 0x80u)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return len;
}

size_t lutf_text_escape(char *out, size_t cap, const char *s, size_t n, unsigned flags,
			size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, i = 0;

	if (!cap) {
		if (used)
			*used = 0;
		return 0;
	}
	while (i < n) {
		char esc[4];
		size_t k = 0, take = 1;
		unsigned char c = p[i];

		if (c == '\\' && (flags & LUTF_ESC_BACKSLASH)) {
			esc[k++] = '\\';
			esc[k++] = '\\';
		} else if (c >= 0x20 && c < 0x7f) {
			esc[k++] = (char)c;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			esc[k++] = '\\';
			esc[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else if (c >= 0x80 && (take = utf8_len(p + i, n - i)) > 0) {
			if (o + take >= cap)
				break;
			for (size_t j = 0; j < take; j++)
				out[o++] = (char)p[i + j];
			i += take;
			continue;
		} else {
			take = 1;
			esc[k++] = '\\';
			esc[k++] = 'x';
			esc[k++] = hex[c >> 4];
			esc[k++] = hex[c & 0xf];
		}
		if (o + k >= cap)
			break;
		for (size_t j = 0; j < k; j++)
			out[o++] = esc[j];
		i += take;
	}
	out[o] = 0;
	if (used)
		*used = i;
	return o;
}
