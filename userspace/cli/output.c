/* SPDX-License-Identifier: MIT */
/*
 * lutfctl output: tables for people, JSON for scripts. Invariant: every string
 * that reaches JSON output goes through out_json_str, so lutfd-supplied text
 * (names, errors, log lines) can never break the document. lutfd's TEXT
 * fields of the form "key=value" (ingress=io_uring, watch=bpf) are shown under
 * their own key, never as "text".
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "text_escape.h"

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool out_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n) {
		size_t l = utf8_len(s, n);

		if (!l)
			return false;
		s += l;
		n -= l;
	}
	return true;
}

void out_json_str(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (n) {
		size_t l = utf8_len(s, n);

		if (l == 0) {
			fputs("\\ufffd", f);
			s++;
			n--;
			continue;
		}
		if (l > 1) {
			fwrite(s, 1, l, f);
		} else if (*s == '"' || *s == '\\') {
			fputc('\\', f);
			fputc(*s, f);
		} else if (*s == '\n') {
			fputs("\\n", f);
		} else if (*s == '\t') {
			fputs("\\t", f);
		} else if (*s == '\r') {
			fputs("\\r", f);
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s);
		} else {
			fputc(*s, f);
		}
		s += l;
		n -= l;
	}
	fputc('"', f);
}

void out_json_base64(FILE *f, const void *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;

	fputc('"', f);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)s[i + 1] << 8;
		if (left > 2)
			v |= s[i + 2];
		fputc(tab[(v >> 18) & 63], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(left > 1 ? tab[(v >> 6) & 63] : '=', f);
		fputc(left > 2 ? tab[v & 63] : '=', f);
	}
	fputc('"', f);
}

/* The value of a field as text, in buf when it is a number; a text that
 * needed escaping (a tenant's: a worker's error in a status, say) is in a
 * buffer of cell's own, good until the next call. */
static const char *cell(const struct lutf_client_field *fl, char *buf, size_t cap)
{
	static char esc[1024];

	if (!fl)
		return "-";
	if (fl->type == LUTF_CLIENT_STR) {
		size_t n = strlen(fl->str);

		if (!n)
			return "-";
		lutf_text_escape(esc, sizeof(esc), fl->str, n, 0, NULL);
		return strcmp(esc, fl->str) ? esc : fl->str;
	}
	snprintf(buf, cap, "%" PRIu64, fl->u64);
	return buf;
}

/* A TEXT field "key=value" (key: a-z, 0-9, _): the key into key[cap], the
 * value into *val. False for any other field. */
static bool text_kv(const struct lutf_client_field *fl, char *key, size_t cap, const char **val)
{
	size_t n = 0;

	if (fl->type != LUTF_CLIENT_STR || strcmp(fl->key, "text") != 0)
		return false;
	while ((fl->str[n] >= 'a' && fl->str[n] <= 'z') ||
	       (fl->str[n] >= '0' && fl->str[n] <= '9') || fl->str[n] == '_')
		n++;
	if (!n || fl->str[n] != '=' || n >= cap)
		return false;
	memcpy(key, fl->str, n);
	key[n] = 0;
	*val = fl->str + n + 1;
	return true;
}

/* Is key a column of numbers (a counter) in any kept row? */
static bool col_numeric(const struct lutf_client_record *recs, size_t n, const char *key,
			bool (*keep)(const struct lutf_client_record *, const void *),
			const void *arg)
{
	for (size_t r = 0; r < n; r++) {
		const struct lutf_client_field *fl = lutf_client_record_get(&recs[r], key);

		if ((!keep || keep(&recs[r], arg)) && fl && fl->type == LUTF_CLIENT_U64)
			return true;
	}
	return false;
}

/* Index of key in cols[0..n), or n. */
static size_t col_find(const char **cols, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(cols[i], key) == 0)
			return i;
	return n;
}

/* Append key to the column list. Returns 0 or -1 (out of memory). */
static int col_push(const char ***cols, size_t *n, size_t *cap, const char *key)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		const char **p = realloc(*cols, nc * sizeof(*p));

		if (!p)
			return -1;
		*cols = p;
		*cap = nc;
	}
	(*cols)[(*n)++] = key;
	return 0;
}

/* A table cell: the row's value for key; absent: "0" in a numeric column. */
static const char *row_cell(const struct lutf_client_record *rec, const char *key, bool numeric,
			    char *buf, size_t cap)
{
	const struct lutf_client_field *fl = lutf_client_record_get(rec, key);

	return !fl && numeric ? "0" : cell(fl, buf, cap);
}

void out_table(FILE *f, const struct lutf_client_record *recs, size_t n, const char *const *first,
	       bool (*keep)(const struct lutf_client_record *, const void *), const void *arg)
{
	const char **cols = NULL;
	size_t *width = NULL, ncols = 0, cap = 0;
	bool *num = NULL;
	char buf[1024];

	/* columns: the preferred ones, then every other key as first seen */
	for (size_t i = 0; first && first[i]; i++) {
		if (col_push(&cols, &ncols, &cap, first[i]))
			goto oom;
	}
	for (size_t r = 0; r < n; r++) {
		if (keep && !keep(&recs[r], arg))
			continue;
		for (size_t k = 0; k < recs[r].n_fields; k++) {
			const char *key = recs[r].fields[k].key;

			if (col_find(cols, ncols, key) < ncols)
				continue;
			if (col_push(&cols, &ncols, &cap, key))
				goto oom;
		}
	}
	width = calloc(ncols ? ncols : 1, sizeof(*width));
	num = calloc(ncols ? ncols : 1, sizeof(*num));
	if (!width || !num)
		goto oom;
	/* A counter lutfd leaves out of a row (stats sends only the statuses
	 * that happened) is 0 there, not "-". */
	for (size_t c = 0; c < ncols; c++) {
		width[c] = strlen(cols[c]);
		num[c] = col_numeric(recs, n, cols[c], keep, arg);
	}
	for (size_t r = 0; r < n; r++) {
		if (keep && !keep(&recs[r], arg))
			continue;
		for (size_t c = 0; c < ncols; c++) {
			size_t w = strlen(row_cell(&recs[r], cols[c], num[c], buf, sizeof(buf)));

			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t c = 0; c < ncols; c++) {
		for (const char *p = cols[c]; *p; p++)
			fputc(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, f);
		if (c + 1 < ncols)
			fprintf(f, "%*s", (int)(width[c] - strlen(cols[c]) + 2), "");
	}
	fputc('\n', f);
	for (size_t r = 0; r < n; r++) {
		if (keep && !keep(&recs[r], arg))
			continue;
		for (size_t c = 0; c < ncols; c++) {
			const char *v = row_cell(&recs[r], cols[c], num[c], buf, sizeof(buf));

			if (c + 1 < ncols)
				fprintf(f, "%-*s  ", (int)width[c], v);
			else
				fputs(v, f);
		}
		fputc('\n', f);
	}
	free(num);
	free(width);
	free(cols);
	return;
oom:
	fputs("lutfctl: out of memory\n", stderr);
	free(num);
	free(width);
	free(cols);
}

void out_blocks(FILE *f, const struct lutf_client_record *recs, size_t n)
{
	char buf[1024], key[64];
	const char *val;

	for (size_t r = 0; r < n; r++) {
		size_t w = 0;

		for (size_t k = 0; k < recs[r].n_fields; k++) {
			const struct lutf_client_field *fl = &recs[r].fields[k];
			size_t l =
			    text_kv(fl, key, sizeof(key), &val) ? strlen(key) : strlen(fl->key);

			if (l > w)
				w = l;
		}
		if (r)
			fputc('\n', f);
		for (size_t k = 0; k < recs[r].n_fields; k++) {
			const struct lutf_client_field *fl = &recs[r].fields[k];

			if (text_kv(fl, key, sizeof(key), &val))
				fprintf(f, "%-*s  %s\n", (int)w, key, val[0] ? val : "-");
			else
				fprintf(f, "%-*s  %s\n", (int)w, fl->key,
					cell(fl, buf, sizeof(buf)));
		}
	}
}

static void json_value(FILE *f, const struct lutf_client_field *fl)
{
	if (fl->type == LUTF_CLIENT_U64)
		fprintf(f, "%" PRIu64, fl->u64);
	else
		out_json_str(f, fl->str, strlen(fl->str));
}

void out_json_records(FILE *f, const struct lutf_client_record *recs, size_t n,
		      bool (*keep)(const struct lutf_client_record *, const void *),
		      const void *arg)
{
	bool first_rec = true;

	fputc('[', f);
	for (size_t r = 0; r < n; r++) {
		const struct lutf_client_record *rec = &recs[r];
		bool first_key = true;

		if (keep && !keep(rec, arg))
			continue;
		fputs(first_rec ? "{" : ",{", f);
		first_rec = false;
		for (size_t k = 0; k < rec->n_fields; k++) {
			const char *key = rec->fields[k].key, *val;
			size_t count = 0, first = rec->n_fields;
			char kv[64];

			if (text_kv(&rec->fields[k], kv, sizeof(kv), &val)) {
				if (!first_key)
					fputc(',', f);
				first_key = false;
				out_json_str(f, kv, strlen(kv));
				fputc(':', f);
				out_json_str(f, val, strlen(val));
				continue;
			}
			/* Written once, at the key's first field that is no key=value. */
			for (size_t j = 0; j < rec->n_fields; j++) {
				if (strcmp(rec->fields[j].key, key) != 0 ||
				    text_kv(&rec->fields[j], kv, sizeof(kv), &val))
					continue;
				if (first == rec->n_fields)
					first = j;
				count++;
			}
			if (first != k)
				continue;
			if (!first_key)
				fputc(',', f);
			first_key = false;
			out_json_str(f, key, strlen(key));
			fputc(':', f);
			if (count == 1) {
				json_value(f, &rec->fields[k]);
				continue;
			}
			fputc('[', f);
			for (size_t j = k, m = 0; j < rec->n_fields; j++) {
				if (strcmp(rec->fields[j].key, key) != 0 ||
				    text_kv(&rec->fields[j], kv, sizeof(kv), &val))
					continue;
				if (m++)
					fputc(',', f);
				json_value(f, &rec->fields[j]);
			}
			fputc(']', f);
		}
		fputc('}', f);
	}
	fputs("]", f);
}

void out_text(FILE *f, const char *s)
{
	size_t n = strlen(s);

	/* Chunks: an escape is never split, so each chunk ends where one may. */
	while (n) {
		char buf[32];
		size_t used;

		fputs((lutf_text_escape(buf, sizeof(buf), s, n, 0, &used), buf), f);
		if (!used)
			break;
		s += used;
		n -= used;
	}
}
