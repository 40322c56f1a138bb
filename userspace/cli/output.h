/* SPDX-License-Identifier: MIT */
/*
 * lutfctl output: aligned tables and key/value blocks for people, hand-written
 * JSON for scripts. Everything writes to the FILE given; nothing allocates
 * beyond one row of column widths.
 */
#ifndef LUTFCTL_OUTPUT_H
#define LUTFCTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <lutf/client.h>

/* A JSON string literal of n bytes (quotes included). Bytes that are not valid
 * UTF-8 are written as U+FFFD. */
void out_json_str(FILE *f, const char *s, size_t n);
/* True when the n bytes are valid UTF-8. */
bool out_utf8_valid(const void *p, size_t n);
/* s with control characters and escape sequences made visible ("\x1b"; see
 * text_escape.h): tenant text never drives the terminal. */
void out_text(FILE *f, const char *s);
/* Standard base64 of n bytes, as a JSON string literal. */
void out_json_base64(FILE *f, const void *p, size_t n);

/*
 * Print records as an aligned table. Columns: the keys in first (a NULL-ended
 * list, may be NULL) in that order, then every other key in the order first
 * seen. A record without a column shows "-". keep, when not NULL, filters rows.
 */
void out_table(FILE *f, const struct lutf_client_record *recs, size_t n, const char *const *first,
	       bool (*keep)(const struct lutf_client_record *, const void *), const void *arg);

/* Print each record as "key  value" lines, records separated by a blank line. */
void out_blocks(FILE *f, const struct lutf_client_record *recs, size_t n);

/*
 * Print records as a JSON array of objects. A key that repeats within a
 * record becomes an array of its values. keep filters as in out_table.
 */
void out_json_records(FILE *f, const struct lutf_client_record *recs, size_t n,
		      bool (*keep)(const struct lutf_client_record *, const void *),
		      const void *arg);

#endif /* LUTFCTL_OUTPUT_H */
