/* SPDX-License-Identifier: MIT */
/*
 * liblutf-client control calls (deploy, pause, resume, delete, list, status,
 * stats, logs) and the generic reply rows they return. Invariant: a reply is
 * either fully decoded into caller-owned memory or released and zeroed; the
 * caller never sees a half-built record.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* How the known tags read inside a reply; unknown tags are skipped. */
struct tag_name {
	uint16_t tag;
	const char *key;
	bool number;
};

static const struct tag_name tag_names[] = {
    {LUTF_TAG_TENANT, "tenant", false},
    {LUTF_TAG_APP, "app", false},
    {LUTF_TAG_FUNCTION, "function", false},
    {LUTF_TAG_CONTENT_TYPE, "content_type", false},
    {LUTF_TAG_TIMEOUT_MS, "timeout_ms", true},
    {LUTF_TAG_ERROR, "error", false},
    {LUTF_TAG_DETAIL, "detail", true},
    {LUTF_TAG_EXPORT, "export", false},
    {LUTF_TAG_TIER, "tier", false},
    {LUTF_TAG_MEMORY_MB, "memory_mb", true},
    {LUTF_TAG_MAX_CONCURRENCY, "max_concurrency", true},
    {LUTF_TAG_VERSION, "version", true},
    {LUTF_TAG_URL, "url", false},
    {LUTF_TAG_STATE, "state", false},
    {LUTF_TAG_TEXT, "text", false},
    {LUTF_TAG_LIMIT, "limit", true},
    {LUTF_TAG_KEY, "key", false},
    {LUTF_TAG_KEY_ID, "key_id", false},
    {LUTF_TAG_CREATED, "created", true},
    {LUTF_TAG_REVOKED, "revoked", true},
    {LUTF_TAG_PUBLIC, "public", true},
    {LUTF_TAG_WORKERS, "workers", true},
    {LUTF_TAG_KIND, "kind", false},
};

static const struct tag_name *tag_lookup(uint16_t tag)
{
	for (size_t i = 0; i < sizeof(tag_names) / sizeof(tag_names[0]); i++)
		if (tag_names[i].tag == tag)
			return &tag_names[i];
	return NULL;
}

/* A u32 or u64 field. Returns 0 or -EPROTO. */
static int read_number(const struct lutf_tlv *f, uint64_t *v)
{
	uint32_t v32;

	if (lutf_tlv_u64(f, v))
		return 0;
	if (lutf_tlv_u32(f, &v32)) {
		*v = v32;
		return 0;
	}
	return -EPROTO;
}

static void record_free(struct lutf_client_record *rec)
{
	for (size_t i = 0; i < rec->n_fields; i++) {
		free((char *)rec->fields[i].key);
		free((char *)rec->fields[i].str);
	}
	free(rec->fields);
	memset(rec, 0, sizeof(*rec));
}

/* Append one field; takes ownership of key and str. Returns 0 or -ENOMEM. */
static int record_add(struct lutf_client_record *rec, char *key, char *str, uint64_t v)
{
	struct lutf_client_field *fs;

	if (!key)
		goto nomem;
	fs = realloc(rec->fields, (rec->n_fields + 1) * sizeof(*fs));
	if (!fs)
		goto nomem;
	rec->fields = fs;
	fs[rec->n_fields++] = (struct lutf_client_field){
	    .key = key,
	    .type = str ? LUTF_CLIENT_STR : LUTF_CLIENT_U64,
	    .str = str,
	    .u64 = str ? 0 : v,
	};
	return 0;
nomem:
	free(key);
	free(str);
	return -ENOMEM;
}

/*
 * Add field f to rec if the library knows its tag. Returns 0 (added or
 * skipped), -EPROTO (a number or counter of the wrong size) or -ENOMEM.
 */
static int record_take(struct lutf_client_record *rec, const struct lutf_tlv *f)
{
	const struct tag_name *tn;
	const uint8_t *nul;
	uint64_t v = 0;
	char *str;

	if (f->tag == LUTF_TAG_COUNTER) {
		/* "name\0" then exactly 8 bytes of u64 */
		struct lutf_tlv num;

		nul = memchr(f->val, 0, f->len);
		if (!nul || nul == f->val)
			return -EPROTO;
		num.tag = f->tag;
		num.val = nul + 1;
		num.len = (uint32_t)(f->len - (size_t)(nul + 1 - f->val));
		if (!lutf_tlv_u64(&num, &v))
			return -EPROTO;
		return record_add(rec, clnt_strndup(f->val, (size_t)(nul - f->val)), NULL, v);
	}
	tn = tag_lookup(f->tag);
	if (!tn)
		return 0;
	if (tn->number) {
		if (read_number(f, &v))
			return -EPROTO;
		return record_add(rec, strdup(tn->key), NULL, v);
	}
	str = clnt_strndup(f->val, f->len);
	if (!str)
		return -ENOMEM;
	return record_add(rec, strdup(tn->key), str, 0);
}

/* Append an empty record to rep. Returns it, or NULL for -ENOMEM. */
static struct lutf_client_record *reply_new_record(struct lutf_client_reply *rep)
{
	struct lutf_client_record *rs;

	rs = realloc(rep->records, (rep->n_records + 1) * sizeof(*rs));
	if (!rs)
		return NULL;
	rep->records = rs;
	memset(&rs[rep->n_records], 0, sizeof(*rs));
	return &rs[rep->n_records++];
}

static int decode_record(struct lutf_client_reply *rep, const struct lutf_tlv *outer)
{
	struct lutf_client_record *rec = reply_new_record(rep);
	struct lutf_tlv_iter it;
	struct lutf_tlv f;
	int err = 0;

	if (!rec)
		return -ENOMEM;
	lutf_tlv_iter_init(&it, outer->val, outer->len);
	while (!err && lutf_tlv_next(&it, &f))
		err = record_take(rec, &f);
	if (!err && it.bad)
		err = -EPROTO;
	return err;
}

static int add_url(struct lutf_client_reply *rep, const struct lutf_tlv *f)
{
	char **us = realloc(rep->urls, (rep->n_urls + 1) * sizeof(*us));

	if (!us)
		return -ENOMEM;
	rep->urls = us;
	us[rep->n_urls] = clnt_strndup(f->val, f->len);
	if (!us[rep->n_urls])
		return -ENOMEM;
	rep->n_urls++;
	return 0;
}

/*
 * Decode a control reply. Loose fields (outside any RECORD) go into one
 * record placed first. Returns 0, -EPROTO or -ENOMEM (rep released).
 */
static int decode_reply(const struct clnt_reply *r, struct lutf_client_reply *rep)
{
	struct lutf_client_record loose = {0};
	struct lutf_tlv_iter it;
	struct lutf_tlv f;
	uint64_t v;
	int err = 0;

	rep->status = r->hdr.status;
	lutf_tlv_iter_init(&it, r->payload, r->hdr.length);
	while (!err && lutf_tlv_next(&it, &f)) {
		switch (f.tag) {
		case LUTF_TAG_RECORD:
			err = decode_record(rep, &f);
			break;
		case LUTF_TAG_ERROR:
			free(rep->error);
			rep->error = clnt_strndup(f.val, f.len);
			err = rep->error ? 0 : -ENOMEM;
			break;
		case LUTF_TAG_DETAIL:
			err = read_number(&f, &v);
			rep->detail = (uint32_t)v;
			break;
		case LUTF_TAG_VERSION:
			err = read_number(&f, &rep->version);
			break;
		case LUTF_TAG_URL:
			err = add_url(rep, &f);
			break;
		default:
			err = record_take(&loose, &f);
			break;
		}
	}
	if (!err && it.bad)
		err = -EPROTO;
	if (!err && loose.n_fields) {
		struct lutf_client_record *rec = reply_new_record(rep);

		if (!rec) {
			err = -ENOMEM;
		} else {
			memmove(rep->records + 1, rep->records,
				(rep->n_records - 1) * sizeof(*rep->records));
			rep->records[0] = loose;
			memset(&loose, 0, sizeof(loose));
		}
	}
	record_free(&loose);
	if (err)
		lutf_client_reply_release(rep);
	return err;
}

void lutf_client_reply_release(struct lutf_client_reply *rep)
{
	if (!rep)
		return;
	free(rep->error);
	for (size_t i = 0; i < rep->n_urls; i++)
		free(rep->urls[i]);
	free(rep->urls);
	for (size_t i = 0; i < rep->n_records; i++)
		record_free(&rep->records[i]);
	free(rep->records);
	memset(rep, 0, sizeof(*rep));
}

const struct lutf_client_field *lutf_client_record_get(const struct lutf_client_record *rec,
						       const char *key)
{
	if (!rec || !key)
		return NULL;
	for (size_t i = 0; i < rec->n_fields; i++)
		if (strcmp(rec->fields[i].key, key) == 0)
			return &rec->fields[i];
	return NULL;
}

/* Send the request built in c->tx and decode its reply into rep. Returns 0 or -errno. */
static int control_call(struct lutf_client *c, struct lutf_client_reply *rep)
{
	struct clnt_reply r;
	int err;

	err = clnt_roundtrip(c, c->timeout_ms, &r);
	if (c->tx.cap > (1u << 20)) /* after a deploy: do not keep the .so around */
		lutf_buf_free(&c->tx);
	if (err)
		return err;
	err = decode_reply(&r, rep);
	if (err == -EPROTO)
		return clnt_poison(c, err);
	return err;
}

/* Read a whole file into a malloc'ed buffer of at most max bytes. Returns 0 or -errno. */
static int read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		err = -EMSGSIZE;
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		if (n == 0)
			break; /* the file shrank: send what is there */
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

static bool bytes_ok(const char *s)
{
	return s && s[0];
}

static int deploy_check(const struct lutf_client_deploy *d)
{
	if (!lutf_name_valid(d->tenant) || !lutf_name_valid(d->app))
		return -EINVAL;
	if (!d->so_path && !d->so_data)
		return -EINVAL;
	if (!d->n_exports || !d->exports || (d->n_config && !d->config))
		return -EINVAL;
	for (size_t i = 0; i < d->n_exports; i++) {
		const struct lutf_client_export *e = &d->exports[i];

		if (!lutf_name_valid(e->function))
			return -EINVAL;
		if (e->symbol && (!e->symbol[0] || strchr(e->symbol, '=')))
			return -EINVAL;
	}
	for (size_t i = 0; i < d->n_config; i++) {
		const struct lutf_client_config *k = &d->config[i];

		if (!lutf_name_valid(k->function) || !bytes_ok(k->key) || !k->value)
			return -EINVAL;
	}
	if (d->tier && !d->tier[0])
		return -EINVAL;
	if (d->kind && strcmp(d->kind, "native") && strcmp(d->kind, "python"))
		return -EINVAL;
	return 0;
}

/* Returns 0 (status, version and URLs in rep) or -errno; see <lutf/client.h>. */
int lutf_client_deploy(struct lutf_client *c, const struct lutf_client_deploy *d,
		       struct lutf_client_reply *rep)
{
	uint8_t *so = NULL;
	size_t so_len = 0;
	int err;

	if (!rep)
		return -EINVAL;
	memset(rep, 0, sizeof(*rep));
	if (!c || !d)
		return -EINVAL;
	err = deploy_check(d);
	if (err)
		return err;
	if (c->fd < 0)
		return -ENOTCONN;
	if (d->so_path) {
		err = read_file(d->so_path, c->max_frame, &so, &so_len);
		if (err)
			return err;
	}
	err = clnt_begin(c, LUTF_OP_DEPLOY);
	if (err)
		goto out;
	lutf_tlv_put_str(&c->tx, LUTF_TAG_TENANT, d->tenant);
	lutf_tlv_put_str(&c->tx, LUTF_TAG_APP, d->app);
	if (so)
		lutf_tlv_put(&c->tx, LUTF_TAG_SO, so, so_len);
	else
		lutf_tlv_put(&c->tx, LUTF_TAG_SO, d->so_data, d->so_len);
	free(so);
	so = NULL;
	for (size_t i = 0; i < d->n_exports; i++) {
		const struct lutf_client_export *e = &d->exports[i];
		const char *sym = e->symbol ? e->symbol : e->function;
		size_t off = lutf_tlv_begin(&c->tx, LUTF_TAG_EXPORT);

		lutf_buf_put(&c->tx, e->function, strlen(e->function));
		lutf_buf_put(&c->tx, "=", 1);
		lutf_buf_put(&c->tx, sym, strlen(sym));
		lutf_tlv_end(&c->tx, off);
	}
	if (d->tier)
		lutf_tlv_put_str(&c->tx, LUTF_TAG_TIER, d->tier);
	if (d->timeout_ms)
		lutf_tlv_put_u32(&c->tx, LUTF_TAG_TIMEOUT_MS, d->timeout_ms);
	if (d->memory_mb)
		lutf_tlv_put_u32(&c->tx, LUTF_TAG_MEMORY_MB, d->memory_mb);
	if (d->max_concurrency)
		lutf_tlv_put_u32(&c->tx, LUTF_TAG_MAX_CONCURRENCY, d->max_concurrency);
	if (d->is_public)
		lutf_tlv_put_u32(&c->tx, LUTF_TAG_PUBLIC, 1);
	if (d->workers)
		lutf_tlv_put_u32(&c->tx, LUTF_TAG_WORKERS, d->workers);
	if (d->kind)
		lutf_tlv_put_str(&c->tx, LUTF_TAG_KIND, d->kind);
	for (size_t i = 0; i < d->n_config; i++) {
		const struct lutf_client_config *k = &d->config[i];
		size_t off = lutf_tlv_begin(&c->tx, LUTF_TAG_CONFIG);

		/* "function\0key\0value": the NULs are separators */
		lutf_buf_put(&c->tx, k->function, strlen(k->function) + 1);
		lutf_buf_put(&c->tx, k->key, strlen(k->key) + 1);
		lutf_buf_put(&c->tx, k->value, strlen(k->value));
		lutf_tlv_end(&c->tx, off);
	}
	err = control_call(c, rep);
out:
	free(so);
	return err;
}

/* PAUSE, RESUME or DELETE of tenant/function. */
static int fn_call(struct lutf_client *c, uint16_t op, const char *tenant, const char *function,
		   struct lutf_client_reply *rep)
{
	int err;

	if (!rep)
		return -EINVAL;
	memset(rep, 0, sizeof(*rep));
	if (!c || !lutf_name_valid(tenant) || !lutf_name_valid(function))
		return -EINVAL;
	err = clnt_begin(c, op);
	if (err)
		return err;
	lutf_tlv_put_str(&c->tx, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&c->tx, LUTF_TAG_FUNCTION, function);
	return control_call(c, rep);
}

/* Returns 0 (status in rep) or -errno as lutf_client_invoke. */
int lutf_client_pause(struct lutf_client *c, const char *tenant, const char *function,
		      struct lutf_client_reply *rep)
{
	return fn_call(c, LUTF_OP_PAUSE, tenant, function, rep);
}

/* Returns 0 (status in rep) or -errno as lutf_client_invoke. */
int lutf_client_resume(struct lutf_client *c, const char *tenant, const char *function,
		       struct lutf_client_reply *rep)
{
	return fn_call(c, LUTF_OP_RESUME, tenant, function, rep);
}

/* Returns 0 (status in rep) or -errno as lutf_client_invoke. */
int lutf_client_delete(struct lutf_client *c, const char *tenant, const char *function,
		       struct lutf_client_reply *rep)
{
	return fn_call(c, LUTF_OP_DELETE, tenant, function, rep);
}

/* Returns 0 (status in rep) or -errno as lutf_client_invoke. */
int lutf_client_delete_tenant(struct lutf_client *c, const char *tenant, int force,
			      struct lutf_client_reply *rep)
{
	int err;

	if (!rep)
		return -EINVAL;
	memset(rep, 0, sizeof(*rep));
	if (!c || !lutf_name_valid(tenant))
		return -EINVAL;
	err = clnt_begin(c, LUTF_OP_DELETE);
	if (err)
		return err;
	lutf_tlv_put_str(&c->tx, LUTF_TAG_TENANT, tenant); /* no FUNCTION: the tenant */
	if (force)
		lutf_tlv_put_u32(&c->tx, LUTF_TAG_FORCE, 1);
	return control_call(c, rep);
}

/* A control call with an optional TENANT and LIMIT (0: not sent). */
static int tenant_call(struct lutf_client *c, uint16_t op, const char *tenant, uint32_t limit,
		       struct lutf_client_reply *rep)
{
	int err;

	if (!rep)
		return -EINVAL;
	memset(rep, 0, sizeof(*rep));
	if (!c || (tenant && !lutf_name_valid(tenant)))
		return -EINVAL;
	err = clnt_begin(c, op);
	if (err)
		return err;
	if (tenant)
		lutf_tlv_put_str(&c->tx, LUTF_TAG_TENANT, tenant);
	if (limit)
		lutf_tlv_put_u32(&c->tx, LUTF_TAG_LIMIT, limit);
	return control_call(c, rep);
}

/* Returns 0 (status and records in rep) or -errno as lutf_client_invoke. */
int lutf_client_list(struct lutf_client *c, const char *tenant, struct lutf_client_reply *rep)
{
	return tenant_call(c, LUTF_OP_LIST, tenant, 0, rep);
}

/* Returns 0 (status and records in rep) or -errno as lutf_client_invoke. */
int lutf_client_status(struct lutf_client *c, struct lutf_client_reply *rep)
{
	return tenant_call(c, LUTF_OP_STATUS, NULL, 0, rep);
}

/* Returns 0 (status and records in rep) or -errno as lutf_client_invoke. */
int lutf_client_stats(struct lutf_client *c, const char *tenant, struct lutf_client_reply *rep)
{
	return tenant_call(c, LUTF_OP_STATS, tenant, 0, rep);
}

/* Returns 0 (status and "text" fields in rep) or -errno as lutf_client_invoke. */
int lutf_client_logs(struct lutf_client *c, const char *tenant, uint32_t limit,
		     struct lutf_client_reply *rep)
{
	return tenant_call(c, LUTF_OP_LOGS, tenant, limit, rep);
}

/* Returns 0 (status and the key's record in rep) or -errno as lutf_client_invoke. */
int lutf_client_key_create(struct lutf_client *c, const char *tenant, struct lutf_client_reply *rep)
{
	if (!tenant)
		return rep ? (memset(rep, 0, sizeof(*rep)), -EINVAL) : -EINVAL;
	return tenant_call(c, LUTF_OP_KEY_CREATE, tenant, 0, rep);
}

/* Returns 0 (status and records in rep) or -errno as lutf_client_invoke. */
int lutf_client_key_list(struct lutf_client *c, const char *tenant, struct lutf_client_reply *rep)
{
	return tenant_call(c, LUTF_OP_KEY_LIST, tenant, 0, rep);
}

/* Returns 0 (status in rep) or -errno as lutf_client_invoke. */
int lutf_client_key_revoke(struct lutf_client *c, const char *tenant, const char *key_id,
			   struct lutf_client_reply *rep)
{
	int err;

	if (!rep)
		return -EINVAL;
	memset(rep, 0, sizeof(*rep));
	if (!c || !lutf_name_valid(tenant) || !key_id || !key_id[0] || strlen(key_id) > 64)
		return -EINVAL;
	err = clnt_begin(c, LUTF_OP_KEY_REVOKE);
	if (err)
		return err;
	lutf_tlv_put_str(&c->tx, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&c->tx, LUTF_TAG_KEY_ID, key_id);
	return control_call(c, rep);
}
