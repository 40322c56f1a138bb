/* SPDX-License-Identifier: MIT */
/*
 * Tenant text made safe to show: in lutfd's log, in a tenant's log ring, on
 * lutfctl's terminal. Control characters (C0, DEL, C1 even when UTF-8
 * encoded) and bytes that are not UTF-8 become visible escapes, so a tenant
 * can neither start a line of its own nor send a terminal escape sequence.
 */
#ifndef LUTF_TEXT_ESCAPE_H
#define LUTF_TEXT_ESCAPE_H

#include <stddef.h>

/* Also write a backslash as "\\", so that every escape can be told from text
 * that only looks like one (lutfd's side; lutfctl leaves lutfd's escapes be). */
#define LUTF_ESC_BACKSLASH 0x1u

/*
 * Escape the n bytes of s into out (cap bytes, NUL-terminated when cap > 0):
 * "\n", "\r", "\t", "\xNN" for the rest, valid UTF-8 (but C1 controls) as
 * is. An escape is never cut: the output stops before one that does not fit.
 * Returns the length written; *used (if not NULL) gets how many input bytes
 * it covers (n when everything fit).
 */
size_t lutf_text_escape(char *out, size_t cap, const char *s, size_t n, unsigned flags,
			size_t *used);

#endif /* LUTF_TEXT_ESCAPE_H */
