/* SPDX-License-Identifier: MIT */
/*
 * liblutf-client against a fake lutfd: invoke round trips, typed statuses,
 * reply validation (request id, truncation, oversize, timeouts) and the TLVs
 * each control call puts on the wire. Links the shared library, so the symbol
 * map is exercised too.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <lutf/client.h>

#include "fake_server.h"

static struct fake_server srv;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(fake_responder r, void *arg)
{
	cr_assert_eq(fake_start(&srv, r, arg), 0);
}

static void stop(void)
{
	fake_stop(&srv);
}

/* Find the n-th field with tag in the last request's payload. */
static bool find_tlv(const uint8_t *p, size_t len, uint16_t tag, unsigned nth, struct lutf_tlv *out)
{
	struct lutf_tlv_iter it;
	struct lutf_tlv f;

	lutf_tlv_iter_init(&it, p, len);
	while (lutf_tlv_next(&it, &f))
		if (f.tag == tag && nth-- == 0) {
			*out = f;
			return true;
		}
	return false;
}

static void assert_tlv_bytes(const uint8_t *p, size_t len, uint16_t tag, unsigned nth,
			     const void *want, size_t want_len)
{
	struct lutf_tlv f;

	cr_assert(find_tlv(p, len, tag, nth, &f), "tag %u #%u missing", tag, nth);
	cr_assert_eq(f.len, want_len, "tag %u: length %u, want %zu", tag, f.len, want_len);
	cr_assert_eq(memcmp(f.val, want, want_len), 0, "tag %u: bytes differ", tag);
}

static void assert_tlv_str(const uint8_t *p, size_t len, uint16_t tag, unsigned nth,
			   const char *want)
{
	assert_tlv_bytes(p, len, tag, nth, want, strlen(want));
}

static void assert_tlv_u32(const uint8_t *p, size_t len, uint16_t tag, uint32_t want)
{
	struct lutf_tlv f;
	uint32_t v;

	cr_assert(find_tlv(p, len, tag, 0, &f), "tag %u missing", tag);
	cr_assert(lutf_tlv_u32(&f, &v));
	cr_assert_eq(v, want);
}

/* ---- responders ---- */

static enum fake_action echo_upper(struct fake_server *s, const struct lutf_wire_hdr *h,
				   const uint8_t *payload, struct lutf_buf *out)
{
	struct lutf_tlv f;
	size_t off = fake_reply_begin(out, h, LUTF_STATUS_OK);

	if (find_tlv(payload, h->length, LUTF_TAG_INPUT, 0, &f)) {
		size_t t = lutf_tlv_begin(out, LUTF_TAG_OUTPUT);

		for (uint32_t i = 0; i < f.len; i++) {
			uint8_t c = f.val[i] >= 'a' && f.val[i] <= 'z' ? f.val[i] - 32 : f.val[i];

			lutf_buf_put(out, &c, 1);
		}
		lutf_tlv_end(out, t);
	}
	lutf_tlv_put_str(out, LUTF_TAG_CONTENT_TYPE, "text/plain");
	lutf_tlv_put_u32(out, 999, 7); /* an unknown tag: skipped */
	lutf_frame_end(out, off);
	return s->arg ? FAKE_SEND_SLOWLY : FAKE_SEND;
}

static enum fake_action typed(struct fake_server *s, const struct lutf_wire_hdr *h,
			      const uint8_t *payload, struct lutf_buf *out)
{
	size_t off = fake_reply_begin(out, h, (uint32_t)(uintptr_t)s->arg);

	lutf_tlv_put_str(out, LUTF_TAG_ERROR, "it went wrong");
	lutf_tlv_put_u32(out, LUTF_TAG_DETAIL, 11);
	lutf_frame_end(out, off);
	return FAKE_SEND;
}

static enum fake_action wrong_id(struct fake_server *s, const struct lutf_wire_hdr *h,
				 const uint8_t *payload, struct lutf_buf *out)
{
	struct lutf_wire_hdr other = *h;

	other.request_id = h->request_id + 1;
	lutf_frame_end(out, fake_reply_begin(out, &other, LUTF_STATUS_OK));
	return FAKE_SEND;
}

static enum fake_action truncated(struct fake_server *s, const struct lutf_wire_hdr *h,
				  const uint8_t *payload, struct lutf_buf *out)
{
	static const uint8_t ten[10] = "0123456789";

	fake_reply_begin(out, h, LUTF_STATUS_OK);
	/* claim 100 payload bytes, send 10, close */
	out->data[8] = 100;
	lutf_buf_put(out, ten, sizeof(ten));
	return FAKE_SEND_CLOSE;
}

static enum fake_action silent(struct fake_server *s, const struct lutf_wire_hdr *h,
			       const uint8_t *payload, struct lutf_buf *out)
{
	return FAKE_SILENT;
}

static enum fake_action oversize(struct fake_server *s, const struct lutf_wire_hdr *h,
				 const uint8_t *payload, struct lutf_buf *out)
{
	fake_reply_begin(out, h, LUTF_STATUS_OK);
	memset(out->data + 8, 0xff, 4); /* length 4 GiB - 1 */
	lutf_buf_put(out, "xx", 2);
	return FAKE_SEND;
}

static enum fake_action refuse(struct fake_server *s, const struct lutf_wire_hdr *h,
			       const uint8_t *payload, struct lutf_buf *out)
{
	struct lutf_wire_hdr zero = *h;
	size_t off;

	zero.request_id = 0;
	off = fake_reply_begin(out, &zero, (uint32_t)(uintptr_t)s->arg);
	lutf_tlv_put_str(out, LUTF_TAG_ERROR, "too many connections");
	lutf_frame_end(out, off);
	return FAKE_SEND_CLOSE;
}

static enum fake_action bad_magic(struct fake_server *s, const struct lutf_wire_hdr *h,
				  const uint8_t *payload, struct lutf_buf *out)
{
	lutf_frame_end(out, fake_reply_begin(out, h, LUTF_STATUS_OK));
	out->data[0] ^= 0xff;
	return FAKE_SEND;
}

static enum fake_action bad_tlv(struct fake_server *s, const struct lutf_wire_hdr *h,
				const uint8_t *payload, struct lutf_buf *out)
{
	static const uint8_t half[4] = {20, 0, 50, 0}; /* a TLV header cut short */
	size_t off = fake_reply_begin(out, h, LUTF_STATUS_OK);

	lutf_buf_put(out, half, sizeof(half));
	lutf_frame_end(out, off);
	return FAKE_SEND;
}

/* Control replies: records for LIST / STATS / STATUS, loose TEXT for LOGS,
 * VERSION + URLs for DEPLOY, plain OK otherwise. */
static enum fake_action control(struct fake_server *s, const struct lutf_wire_hdr *h,
				const uint8_t *payload, struct lutf_buf *out)
{
	size_t off = fake_reply_begin(out, h, LUTF_STATUS_OK), r;
	static const uint8_t counter[] = {'c', 'a', 'l', 'l', 's', 0, 42, 0, 0, 0, 0, 0, 0, 0};

	switch (h->opcode) {
	case LUTF_OP_DEPLOY:
		lutf_tlv_put_u64(out, LUTF_TAG_VERSION, 3);
		lutf_tlv_put_str(out, LUTF_TAG_URL, "http://127.0.0.1:8080/fn/acme/hello");
		lutf_tlv_put_str(out, LUTF_TAG_URL, "http://127.0.0.1:8080/fn/acme/pi");
		break;
	case LUTF_OP_LIST:
		for (int i = 0; i < 2; i++) {
			r = lutf_tlv_begin(out, LUTF_TAG_RECORD);
			lutf_tlv_put_str(out, LUTF_TAG_TENANT, "acme");
			lutf_tlv_put_str(out, LUTF_TAG_APP, "shop");
			lutf_tlv_put_str(out, LUTF_TAG_FUNCTION, i ? "pi" : "hello");
			lutf_tlv_put_str(out, LUTF_TAG_STATE, i ? "paused" : "active");
			lutf_tlv_put_u64(out, LUTF_TAG_VERSION, 3);
			lutf_tlv_put_str(out, LUTF_TAG_TIER, "basic");
			lutf_tlv_end(out, r);
		}
		break;
	case LUTF_OP_STATS:
	case LUTF_OP_STATUS:
		r = lutf_tlv_begin(out, LUTF_TAG_RECORD);
		lutf_tlv_put_str(out, LUTF_TAG_FUNCTION, "hello");
		lutf_tlv_put(out, LUTF_TAG_COUNTER, counter, sizeof(counter));
		lutf_tlv_put_str(out, LUTF_TAG_TEXT, "watch: bpf");
		lutf_tlv_end(out, r);
		break;
	case LUTF_OP_LOGS:
		lutf_tlv_put_str(out, LUTF_TAG_TEXT, "line one");
		lutf_tlv_put_str(out, LUTF_TAG_TEXT, "line \"two\"");
		break;
	}
	lutf_frame_end(out, off);
	return FAKE_SEND;
}

/* ---- tests ---- */

TestSuite(client, .fini = stop, .timeout = 30);

Test(client, invoke_round_trip_with_output_and_content_type)
{
	static const struct lutf_client_header hdrs[] = {{"x-trace", "abc"}, {"accept", "*/*"}};
	struct lutf_client_request req = {
	    .input = "hello",
	    .input_len = 5,
	    .content_type = "text/plain",
	    .headers = hdrs,
	    .n_headers = 2,
	    .timeout_ms = 1500,
	};
	struct lutf_client_result res;
	struct lutf_client *c;
	struct lutf_wire_hdr h;
	uint8_t *p;

	start(echo_upper, NULL);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		cr_assert_eq(lutf_client_invoke(c, "acme", "upper", &req, &res), 0);
		cr_assert_eq(res.status, LUTF_STATUS_OK);
		cr_assert_eq(res.output_len, 5);
		cr_assert_str_eq(res.output, "HELLO"); /* NUL-terminated past output_len */
		cr_assert_str_eq(res.content_type, "text/plain");
		cr_assert_null(res.error);
		lutf_client_result_release(&res);

		cr_assert_eq(fake_last(&srv, &h, &p), i);
		cr_assert_eq(h.opcode, LUTF_OP_INVOKE);
		cr_assert_eq(h.request_id, i, "request ids increase per handle");
		assert_tlv_str(p, h.length, LUTF_TAG_TENANT, 0, "acme");
		assert_tlv_str(p, h.length, LUTF_TAG_FUNCTION, 0, "upper");
		assert_tlv_str(p, h.length, LUTF_TAG_INPUT, 0, "hello");
		assert_tlv_str(p, h.length, LUTF_TAG_CONTENT_TYPE, 0, "text/plain");
		assert_tlv_bytes(p, h.length, LUTF_TAG_HEADER, 0, "x-trace\0abc", 11);
		assert_tlv_bytes(p, h.length, LUTF_TAG_HEADER, 1, "accept\0*/*", 10);
		assert_tlv_u32(p, h.length, LUTF_TAG_TIMEOUT_MS, 1500);
		free(p);
	}
	lutf_client_close(c);
}

Test(client, reply_reassembled_from_small_pieces)
{
	struct lutf_client_request req = {.input = "abc", .input_len = 3};
	struct lutf_client_result res;
	struct lutf_client *c;

	start(echo_upper, (void *)1);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	cr_assert_eq(lutf_client_invoke(c, "acme", "upper", &req, &res), 0);
	cr_assert_str_eq(res.output, "ABC");
	lutf_client_result_release(&res);
	/* NULL request: empty input, no timeout field */
	cr_assert_eq(lutf_client_invoke(c, "acme", "upper", NULL, &res), 0);
	cr_assert_eq(res.output_len, 0);
	lutf_client_result_release(&res);
	lutf_client_close(c);
}

Test(client, typed_statuses_pass_through)
{
	static const uint32_t sts[] = {LUTF_STATUS_UNKNOWN_FUNCTION, LUTF_STATUS_DEADLINE,
				       LUTF_STATUS_CRASHED, LUTF_STATUS_PAUSED};

	for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++) {
		struct lutf_client_result res;
		struct lutf_client *c;
		uint32_t ping;

		start(typed, (void *)(uintptr_t)sts[i]);
		cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
		cr_assert_eq(lutf_client_invoke(c, "acme", "nope", NULL, &res), 0);
		cr_assert_eq(res.status, sts[i]);
		cr_assert_str_eq(res.error, "it went wrong");
		cr_assert_eq(res.detail, 11);
		cr_assert_null(res.output);
		lutf_client_result_release(&res);
		/* the handle stays usable after a typed status */
		cr_assert_eq(lutf_client_ping(c, &ping), 0);
		cr_assert_eq(ping, sts[i]);
		lutf_client_close(c);
		fake_stop(&srv);
	}
	start(typed, (void *)0); /* for .fini */
}

Test(client, wrong_request_id_is_rejected_and_poisons)
{
	struct lutf_client_result res;
	struct lutf_client *c;

	start(wrong_id, NULL);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", NULL, &res), -EPROTO);
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", NULL, &res), -ENOTCONN);
	/* reconnect clears the poison; ids keep increasing */
	cr_assert_eq(lutf_client_reconnect(c), 0);
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", NULL, &res), -EPROTO);
	lutf_client_close(c);
}

Test(client, connection_refusal_with_id_0_is_a_status)
{
	struct lutf_client_result res;
	struct lutf_client *c;

	start(refuse, (void *)(uintptr_t)LUTF_STATUS_OVERLOADED);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", NULL, &res), 0);
	cr_assert_eq(res.status, LUTF_STATUS_OVERLOADED);
	cr_assert_str_eq(res.error, "too many connections");
	lutf_client_result_release(&res);
	/* lutfd closed the connection: the handle says so */
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", NULL, &res), -ENOTCONN);
	lutf_client_close(c);
	fake_stop(&srv);

	/* but an OK with id 0 is not an answer to anything */
	start(refuse, (void *)(uintptr_t)LUTF_STATUS_OK);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", NULL, &res), -EPROTO);
	lutf_client_close(c);
}

Test(client, truncated_frame_then_close)
{
	struct lutf_client_result res;
	struct lutf_client *c;
	int err;

	start(truncated, NULL);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	err = lutf_client_invoke(c, "acme", "fn", NULL, &res);
	cr_assert(err == -EPROTO || err == -ECONNRESET, "got %d", err);
	cr_assert_null(res.output);
	lutf_client_close(c);
}

Test(client, silent_server_times_out_within_the_call_timeout)
{
	struct lutf_client_request req = {.timeout_ms = 200};
	struct lutf_client_result res;
	struct lutf_client_reply rep;
	struct lutf_client *c;
	int64_t t0, dt;

	start(silent, NULL);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	cr_assert_eq(lutf_client_set_timeout(c, 300, 100), 0);
	t0 = mono_ms();
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", &req, &res), -ETIMEDOUT);
	dt = mono_ms() - t0;
	cr_assert(dt >= 290 && dt < 1500, "timed out after %lld ms, want ~300", (long long)dt);
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", &req, &res), -ENOTCONN);

	/* a control call waits the handle's timeout */
	cr_assert_eq(lutf_client_reconnect(c), 0);
	t0 = mono_ms();
	cr_assert_eq(lutf_client_list(c, NULL, &rep), -ETIMEDOUT);
	dt = mono_ms() - t0;
	cr_assert(dt >= 290 && dt < 1500, "timed out after %lld ms, want ~300", (long long)dt);
	lutf_client_close(c);
}

Test(client, oversize_reply_is_refused_before_allocation)
{
	struct lutf_client_result res;
	struct lutf_client *c;
	int err;

	start(oversize, NULL);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	err = lutf_client_invoke(c, "acme", "fn", NULL, &res);
	cr_assert_eq(err, -EMSGSIZE);
	lutf_client_close(c);
}

Test(client, malformed_replies_are_eproto)
{
	fake_responder rs[] = {bad_magic, bad_tlv};

	for (size_t i = 0; i < 2; i++) {
		struct lutf_client_result res;
		struct lutf_client *c;

		start(rs[i], NULL);
		cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
		cr_assert_eq(lutf_client_invoke(c, "acme", "fn", NULL, &res), -EPROTO);
		lutf_client_close(c);
		fake_stop(&srv);
	}
	start(silent, NULL);
}

Test(client, bad_arguments_send_nothing)
{
	struct lutf_client_header bad = {"", "v"};
	struct lutf_client_request req = {.headers = &bad, .n_headers = 1};
	struct lutf_client_result res;
	struct lutf_client_reply rep;
	struct lutf_client *c;
	struct lutf_wire_hdr h;
	uint8_t *p;

	start(echo_upper, NULL);
	cr_assert_eq(lutf_client_connect("unix://relative", &c), -EINVAL);
	cr_assert_eq(lutf_client_connect("http://x", &c), -EINVAL);
	cr_assert_eq(lutf_client_connect("tcp://nohostport", &c), -EINVAL);
	cr_assert_eq(lutf_client_connect(srv.path, &c), 0); /* a bare path works */
	cr_assert_eq(lutf_client_invoke(c, "Acme", "fn", NULL, &res), -EINVAL);
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn/x", NULL, &res), -EINVAL);
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", &req, &res), -EINVAL);
	cr_assert_eq(lutf_client_pause(c, "acme", "", &rep), -EINVAL);
	cr_assert_eq(fake_last(&srv, &h, &p), 0);
	/* still usable */
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", NULL, &res), 0);
	lutf_client_result_release(&res);
	lutf_client_close(c);
}

Test(client, deploy_encodes_every_field)
{
	static const struct lutf_client_export ex[] = {{"hello", NULL}, {"pi", "compute_pi"}};
	static const struct lutf_client_config cfg[] = {{"hello", "greeting", "hi there"}};
	struct lutf_client_deploy d = {
	    .tenant = "acme",
	    .app = "shop",
	    .so_data = "\x7f"
		       "ELF-bytes",
	    .so_len = 10,
	    .exports = ex,
	    .n_exports = 2,
	    .tier = "basic",
	    .timeout_ms = 1000,
	    .memory_mb = 64,
	    .max_concurrency = 8,
	    .config = cfg,
	    .n_config = 1,
	};
	struct lutf_client_reply rep;
	struct lutf_client *c;
	struct lutf_wire_hdr h;
	uint8_t *p;

	start(control, NULL);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	cr_assert_eq(lutf_client_deploy(c, &d, &rep), 0);
	cr_assert_eq(rep.status, LUTF_STATUS_OK);
	cr_assert_eq(rep.version, 3);
	cr_assert_eq(rep.n_urls, 2);
	cr_assert_str_eq(rep.urls[1], "http://127.0.0.1:8080/fn/acme/pi");
	lutf_client_reply_release(&rep);

	cr_assert_eq(fake_last(&srv, &h, &p), 1);
	cr_assert_eq(h.opcode, LUTF_OP_DEPLOY);
	assert_tlv_str(p, h.length, LUTF_TAG_TENANT, 0, "acme");
	assert_tlv_str(p, h.length, LUTF_TAG_APP, 0, "shop");
	assert_tlv_bytes(p, h.length, LUTF_TAG_SO, 0,
			 "\x7f"
			 "ELF-bytes",
			 10);
	assert_tlv_str(p, h.length, LUTF_TAG_EXPORT, 0, "hello=hello");
	assert_tlv_str(p, h.length, LUTF_TAG_EXPORT, 1, "pi=compute_pi");
	assert_tlv_str(p, h.length, LUTF_TAG_TIER, 0, "basic");
	assert_tlv_u32(p, h.length, LUTF_TAG_TIMEOUT_MS, 1000);
	assert_tlv_u32(p, h.length, LUTF_TAG_MEMORY_MB, 64);
	assert_tlv_u32(p, h.length, LUTF_TAG_MAX_CONCURRENCY, 8);
	assert_tlv_bytes(p, h.length, LUTF_TAG_CONFIG, 0, "hello\0greeting\0hi there", 23);
	free(p);

	/* from a file, and the zero defaults are not sent */
	d.so_data = NULL;
	d.so_path = "/proc/self/exe";
	d.tier = NULL;
	d.timeout_ms = d.memory_mb = d.max_concurrency = 0;
	cr_assert_eq(lutf_client_deploy(c, &d, &rep), 0);
	lutf_client_reply_release(&rep);
	cr_assert_eq(fake_last(&srv, &h, &p), 2);
	{
		struct lutf_tlv f;

		cr_assert(find_tlv(p, h.length, LUTF_TAG_SO, 0, &f));
		cr_assert(f.len > 1000 && memcmp(f.val,
						 "\x7f"
						 "ELF",
						 4) == 0);
		cr_assert_not(find_tlv(p, h.length, LUTF_TAG_TIER, 0, &f));
		cr_assert_not(find_tlv(p, h.length, LUTF_TAG_TIMEOUT_MS, 0, &f));
	}
	free(p);
	d.so_path = "/nonexistent/app.so";
	cr_assert_eq(lutf_client_deploy(c, &d, &rep), -ENOENT);
	d.n_exports = 0;
	cr_assert_eq(lutf_client_deploy(c, &d, &rep), -EINVAL);
	lutf_client_close(c);
}

Test(client, function_calls_encode_tenant_and_function)
{
	int (*calls[])(struct lutf_client *, const char *, const char *,
		       struct lutf_client_reply *) = {lutf_client_pause, lutf_client_resume,
						      lutf_client_delete};
	static const uint16_t ops[] = {LUTF_OP_PAUSE, LUTF_OP_RESUME, LUTF_OP_DELETE};
	struct lutf_client_reply rep;
	struct lutf_client *c;
	struct lutf_wire_hdr h;
	uint8_t *p;

	start(control, NULL);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(calls[i](c, "acme", "hello", &rep), 0);
		cr_assert_eq(rep.status, LUTF_STATUS_OK);
		lutf_client_reply_release(&rep);
		fake_last(&srv, &h, &p);
		cr_assert_eq(h.opcode, ops[i]);
		assert_tlv_str(p, h.length, LUTF_TAG_TENANT, 0, "acme");
		assert_tlv_str(p, h.length, LUTF_TAG_FUNCTION, 0, "hello");
		free(p);
	}
	lutf_client_close(c);
}

Test(client, list_stats_status_logs_rows)
{
	struct lutf_client_reply rep;
	const struct lutf_client_field *f;
	struct lutf_client *c;
	struct lutf_wire_hdr h;
	uint8_t *p;

	start(control, NULL);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);

	cr_assert_eq(lutf_client_list(c, "acme", &rep), 0);
	fake_last(&srv, &h, &p);
	cr_assert_eq(h.opcode, LUTF_OP_LIST);
	assert_tlv_str(p, h.length, LUTF_TAG_TENANT, 0, "acme");
	free(p);
	lutf_client_reply_release(&rep);
	cr_assert_eq(lutf_client_list(c, NULL, &rep), 0);
	fake_last(&srv, &h, &p);
	cr_assert_eq(h.length, 0, "no tenant: no fields");
	free(p);
	cr_assert_eq(rep.n_records, 2);
	cr_assert_eq(rep.records[1].n_fields, 6);
	f = lutf_client_record_get(&rep.records[1], "function");
	cr_assert(f && f->type == LUTF_CLIENT_STR);
	cr_assert_str_eq(f->str, "pi");
	f = lutf_client_record_get(&rep.records[1], "version");
	cr_assert(f && f->type == LUTF_CLIENT_U64 && f->u64 == 3);
	cr_assert_str_eq(lutf_client_record_get(&rep.records[0], "state")->str, "active");
	lutf_client_reply_release(&rep);
	cr_assert_null(rep.records);

	cr_assert_eq(lutf_client_stats(c, NULL, &rep), 0);
	cr_assert_eq(rep.n_records, 1);
	f = lutf_client_record_get(&rep.records[0], "calls");
	cr_assert(f && f->type == LUTF_CLIENT_U64 && f->u64 == 42);
	cr_assert_str_eq(lutf_client_record_get(&rep.records[0], "text")->str, "watch: bpf");
	lutf_client_reply_release(&rep);

	cr_assert_eq(lutf_client_status(c, &rep), 0);
	fake_last(&srv, &h, &p);
	cr_assert_eq(h.opcode, LUTF_OP_STATUS);
	free(p);
	lutf_client_reply_release(&rep);

	cr_assert_eq(lutf_client_logs(c, "acme", 50, &rep), 0);
	fake_last(&srv, &h, &p);
	cr_assert_eq(h.opcode, LUTF_OP_LOGS);
	assert_tlv_str(p, h.length, LUTF_TAG_TENANT, 0, "acme");
	assert_tlv_u32(p, h.length, LUTF_TAG_LIMIT, 50);
	free(p);
	/* loose TEXT fields are gathered into one record */
	cr_assert_eq(rep.n_records, 1);
	cr_assert_eq(rep.records[0].n_fields, 2);
	cr_assert_str_eq(rep.records[0].fields[1].str, "line \"two\"");
	lutf_client_reply_release(&rep);
	lutf_client_close(c);
}

Test(client, oversize_request_is_not_sent)
{
	struct lutf_client_request req;
	struct lutf_client_result res;
	struct lutf_client *c;
	struct lutf_wire_hdr h;
	uint8_t *p;
	static char big[8192];

	start(echo_upper, NULL);
	cr_assert_eq(lutf_client_connect(srv.url, &c), 0);
	cr_assert_eq(lutf_client_set_max_frame(c, 4096), 0);
	req = (struct lutf_client_request){.input = big, .input_len = sizeof(big)};
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", &req, &res), -EMSGSIZE);
	cr_assert_eq(fake_last(&srv, &h, &p), 0);
	req.input_len = 10;
	cr_assert_eq(lutf_client_invoke(c, "acme", "fn", &req, &res), 0, "still usable");
	lutf_client_result_release(&res);
	lutf_client_close(c);
}
