/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the fault and tier tests against the real lutfd (on top of
 * tests/daemon/daemon_util.h): deploy with a tier, pipelined invokes whose
 * replies are matched by request id, a bystander tenant, cgroup cleanup.
 * Every wait is bounded.
 */
#ifndef LUTF_TEST_FAULT_UTIL_H
#define LUTF_TEST_FAULT_UTIL_H

#include "daemon_util.h"

struct fx_res {
	uint32_t status; /* 0xffffffff: no reply in time */
	uint32_t detail;
	char text[300]; /* output when OK, else the error */
};

/* lutfd on private folders (its own pins, cgroups and uids: td_start); one
 * Cart and one Labor per tenant, so a Brick behind a busy one stays queued. */
#define FX_UID_LO TD_UID_LO

static inline bool fx_start(struct td *d, const char *extra)
{
	char conf[1024];

	snprintf(conf, sizeof(conf),
		 "restart_backoff_max_ms = 400\ncarts = 1\nlabors = 1\nlabors_max = 1\n%s",
		 extra ? extra : "");
	return td_start(d, conf);
}

static inline void fx_stop(struct td *d)
{
	td_stop(d);
}

/* Deploy so as tenant/app: exports "fn=sym" ..., tier (NULL: none sent),
 * memory_mb (0: none sent). Returns the status; msg gets the error. */
static inline uint32_t fx_deploy(int cfd, const char *tenant, const char *app, const char *so_path,
				 const char *const *exports, const char *tier, uint32_t memory_mb,
				 char *msg, size_t cap)
{
	struct lutf_buf b;
	struct td_reply r;
	struct lutf_tlv f;
	size_t len, fo;
	uint8_t *so = td_slurp(so_path, &len);
	uint32_t st;

	if (msg && cap)
		msg[0] = 0;
	if (!so)
		return 0xfffffffeu;
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_DEPLOY, 0, 4243);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_APP, app);
	lutf_tlv_put(&b, LUTF_TAG_SO, so, len);
	for (; *exports; exports++)
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, *exports);
	if (tier)
		lutf_tlv_put_str(&b, LUTF_TAG_TIER, tier);
	if (memory_mb)
		lutf_tlv_put_u32(&b, LUTF_TAG_MEMORY_MB, memory_mb);
	lutf_frame_end(&b, fo);
	st = td_call(cfd, &b, &r, 15000);
	lutf_buf_free(&b);
	free(so);
	if (st != 0xffffffffu) {
		if (msg && td_field(&r, LUTF_TAG_ERROR, 0, &f) && f.len < cap) {
			memcpy(msg, f.val, f.len);
			msg[f.len] = 0;
		}
		free(r.payload);
	}
	return st;
}

/* Queue one invoke (timeout_ms 0: the function's default). */
static inline bool fx_send(int fd, uint64_t id, const char *tenant, const char *fn, const char *in,
			   uint32_t timeout_ms)
{
	struct lutf_buf b;
	size_t f;
	bool ok;

	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, LUTF_OP_INVOKE, 0, id);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_FUNCTION, fn);
	if (in && *in)
		lutf_tlv_put(&b, LUTF_TAG_INPUT, in, strlen(in));
	if (timeout_ms)
		lutf_tlv_put_u32(&b, LUTF_TAG_TIMEOUT_MS, timeout_ms);
	lutf_frame_end(&b, f);
	ok = td_send(fd, &b);
	lutf_buf_free(&b);
	return ok;
}

/* Next reply: its request id into *id and its result into *res. */
static inline bool fx_recv(int fd, uint64_t *id, struct fx_res *res, int timeout_ms)
{
	struct td_reply r;
	struct lutf_tlv f;

	memset(res, 0, sizeof(*res));
	res->status = 0xffffffffu;
	if (!td_recv(fd, &r, timeout_ms))
		return false;
	*id = r.h.request_id;
	res->status = r.h.status;
	if (td_field(&r, LUTF_TAG_DETAIL, 0, &f))
		lutf_tlv_u32(&f, &res->detail);
	if (td_field(&r, r.h.status == LUTF_STATUS_OK ? LUTF_TAG_OUTPUT : LUTF_TAG_ERROR, 0, &f)) {
		size_t n = f.len < sizeof(res->text) - 1 ? f.len : sizeof(res->text) - 1;

		memcpy(res->text, f.val, n);
		res->text[n] = 0;
	}
	free(r.payload);
	return true;
}

/* One call on its own. */
static inline struct fx_res fx_call(int fd, const char *tenant, const char *fn, const char *in,
				    uint32_t timeout_ms, int wait_ms)
{
	struct fx_res res = {.status = 0xffffffffu};
	uint64_t id = 0;

	if (fx_send(fd, 7, tenant, fn, in, timeout_ms))
		fx_recv(fd, &id, &res, wait_ms);
	return res;
}

/* A TEXT field "key=..." of a tenant's STATUS record (prefix given with '='). */
static inline bool fx_tenant_text(int cfd, const char *tenant, const char *prefix, char *out,
				  size_t cap)
{
	struct lutf_buf b;
	struct td_reply r;
	struct lutf_tlv rec;
	bool found = false;

	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_STATUS, 78, NULL, NULL);
	if (td_call(cfd, &b, &r, 5000) != LUTF_STATUS_OK) {
		lutf_buf_free(&b);
		return false;
	}
	for (int i = 0; !found && td_field(&r, LUTF_TAG_RECORD, i, &rec); i++) {
		struct lutf_tlv_iter it;
		struct lutf_tlv f;
		bool mine = false;

		lutf_tlv_iter_init(&it, rec.val, rec.len);
		while (lutf_tlv_next(&it, &f))
			if (f.tag == LUTF_TAG_TENANT && f.len == strlen(tenant) &&
			    !memcmp(f.val, tenant, f.len))
				mine = true;
		lutf_tlv_iter_init(&it, rec.val, rec.len);
		while (mine && !found && lutf_tlv_next(&it, &f)) {
			size_t pl = strlen(prefix);
			bool tier = !strcmp(prefix, "tier=") && f.tag == LUTF_TAG_TIER;
			bool state = !strcmp(prefix, "state=") && f.tag == LUTF_TAG_STATE;

			if (tier || state) {
				found = f.len < cap;
				if (found) {
					memcpy(out, f.val, f.len);
					out[f.len] = 0;
				}
			} else if (f.tag == LUTF_TAG_TEXT && f.len >= pl && f.len - pl < cap &&
				   !memcmp(f.val, prefix, pl)) {
				memcpy(out, f.val + pl, f.len - pl);
				out[f.len - pl] = 0;
				found = true;
			}
		}
	}
	free(r.payload);
	lutf_buf_free(&b);
	return found;
}

/* Wait until the tenant's counter reaches at least min. */
static inline bool fx_wait_counter(int cfd, const char *tenant, const char *name, uint64_t min,
				   int ms)
{
	uint64_t until = td_now_ms() + (uint64_t)ms, v = 0;

	while (td_now_ms() < until) {
		if (td_tenant_counter(cfd, tenant, name, &v) && v >= min)
			return true;
		td_sleep_ms(20);
	}
	return false;
}

/* Wait until the tenant has a worker (worker_pid != 0) that answers fn. */
static inline bool fx_wait_up(int cfd, int dfd, const char *tenant, const char *fn, int ms)
{
	uint64_t until = td_now_ms() + (uint64_t)ms;

	while (td_now_ms() < until) {
		struct fx_res r = fx_call(dfd, tenant, fn, "1", 0, 5000);

		if (r.status == LUTF_STATUS_OK)
			return true;
		td_sleep_ms(50);
	}
	(void)cfd;
	return false;
}

#endif
