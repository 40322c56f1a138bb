/* SPDX-License-Identifier: MIT */
/*
 * API keys through the real lutfd (issue 12.3): a caller over HTTP or TCP
 * without a key of the function's tenant gets 401 (binary: FORBIDDEN) with
 * the cause, with another tenant's or a revoked key 403; the same calls with
 * a valid key succeed, also from a non-root user; a --public app needs none;
 * keys survive a restart and are stored hashed; /metrics is served only on
 * the admin listener, with its token. Root-only; skips otherwise.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <grp.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "gw_util.h"
#include "require.h"

#define APP TEST_APP_DIR "/libhttp_app.so"
#define OTHER_UID 99999u /* below every test's uid_range: no tenant's */

static struct td d;
static int cfd = -1;
static char http[64], admin[64], tcp[64];

static uint32_t deploy(const char *tenant, bool pub)
{
	static const char *const ex[] = {"echo=echo", "auth=auth", NULL};
	struct lutf_buf b;
	struct td_reply r;
	size_t len = 0, f;
	uint8_t *so = td_slurp(APP, &len);
	uint32_t st;

	cr_assert(so);
	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, LUTF_OP_DEPLOY, 0, 11);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_APP, "main");
	lutf_tlv_put(&b, LUTF_TAG_SO, so, len);
	for (const char *const *e = ex; *e; e++)
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, *e);
	lutf_tlv_put_str(&b, LUTF_TAG_TIER, "none");
	if (pub)
		lutf_tlv_put_u32(&b, LUTF_TAG_PUBLIC, 1);
	lutf_frame_end(&b, f);
	st = td_call(cfd, &b, &r, 15000);
	free(r.payload);
	lutf_buf_free(&b);
	free(so);
	return st;
}

static void start(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd needs root (control socket, uids)");
	cr_assert(td_start(&d, GW_EXTRA "listen_tcp = 127.0.0.1:0\nrequire_keys = on\n"),
		  "lutfd did not start (log %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_geq(cfd, 0);
	cr_assert(td_addr(&d, "http.addr", http, sizeof(http)));
	cr_assert(td_addr(&d, "admin.addr", admin, sizeof(admin)));
	cr_assert(td_addr(&d, "tcp.addr", tcp, sizeof(tcp)));
	cr_assert_eq(deploy("acme", false), LUTF_STATUS_OK);
	cr_assert_eq(deploy("other", true), LUTF_STATUS_OK);
}

static void teardown(void)
{
	td_close_stop(&d, &cfd);
}

TestSuite(keys, .init = start, .fini = teardown, .timeout = 90);

/* KEY_CREATE for tenant: the key and its id. */
static void key_create(const char *tenant, char *key, size_t kcap, char *id, size_t icap)
{
	struct lutf_buf b;
	struct td_reply r;

	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_KEY_CREATE, 21, tenant, NULL);
	cr_assert_eq(td_call(cfd, &b, &r, 5000), LUTF_STATUS_OK);
	cr_assert(td_field_str(&r, LUTF_TAG_KEY, key, kcap));
	cr_assert(td_field_str(&r, LUTF_TAG_KEY_ID, id, icap));
	cr_assert_eq(strncmp(key, "lutf_", 5), 0, "%s", key);
	free(r.payload);
	lutf_buf_free(&b);
}

static uint32_t key_revoke(const char *tenant, const char *id)
{
	struct lutf_buf b;
	struct td_reply r;
	size_t f;
	uint32_t st;

	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, LUTF_OP_KEY_REVOKE, 0, 22);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_KEY_ID, id);
	lutf_frame_end(&b, f);
	st = td_call(cfd, &b, &r, 5000);
	free(r.payload);
	lutf_buf_free(&b);
	return st;
}

/* POST /fn/<path> with key (NULL: no Authorization) on a fresh connection. */
static int post(const char *path, const char *key, struct gw_resp *r)
{
	struct gw_in in = {0};
	char hdr[256] = "", url[128];
	int fd = td_connect_tcp(http), code;

	cr_assert_geq(fd, 0);
	if (key)
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", key);
	snprintf(url, sizeof(url), "/fn/%s", path);
	code = gw_post(fd, &in, url, "hi", hdr, r);
	close(fd);
	return code;
}

/* INVOKE over TCP with key (NULL: no KEY field): the status, text the output or error. */
static uint32_t tcp_invoke(int fd, const char *tenant, const char *key, char *text, size_t cap)
{
	struct lutf_buf b;
	struct td_reply r;
	size_t f;
	uint32_t st;

	lutf_buf_init(&b);
	f = lutf_frame_begin(&b, LUTF_OP_INVOKE, 0, 31);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_FUNCTION, "echo");
	lutf_tlv_put_str(&b, LUTF_TAG_INPUT, "hi");
	if (key)
		lutf_tlv_put_str(&b, LUTF_TAG_KEY, key);
	lutf_frame_end(&b, f);
	st = td_call(fd, &b, &r, 10000);
	text[0] = 0;
	if (st != 0xffffffffu)
		td_field_str(&r, st == LUTF_STATUS_OK ? LUTF_TAG_OUTPUT : LUTF_TAG_ERROR, text,
			     cap);
	free(r.payload);
	lutf_buf_free(&b);
	return st;
}

Test(keys, http_401_without_403_wrong_or_revoked_200_with_key)
{
	char key[128], id[32], okey[128], oid[32], www[128];
	struct gw_resp r;

	key_create("acme", key, sizeof(key), id, sizeof(id));
	key_create("other", okey, sizeof(okey), oid, sizeof(oid));

	cr_assert_eq(post("acme/echo", NULL, &r), 401, "%s", r.body);
	cr_assert(gw_header(&r, "WWW-Authenticate", www, sizeof(www)), "%s", r.head);
	cr_assert(strstr(www, "Bearer"), "%s", www);
	cr_assert(strstr(r.body, "API key of tenant acme is required"), "%s", r.body);
	gw_resp_free(&r);

	cr_assert_eq(post("acme/echo", key, &r), 200, "%s", r.body);
	cr_assert_str_eq(r.body, "hi");
	gw_resp_free(&r);

	/* The function never sees the key. */
	cr_assert_eq(post("acme/auth", key, &r), 200, "%s", r.body);
	cr_assert_str_eq(r.body, "-");
	gw_resp_free(&r);

	cr_assert_eq(post("acme/echo", okey, &r), 403, "%s", r.body);
	cr_assert(strstr(r.body, "is not a key of tenant acme"), "%s", r.body);
	gw_resp_free(&r);

	cr_assert_eq(post("acme/echo", "lutf_0123456789abcdef_00", &r), 403, "%s", r.body);
	cr_assert(strstr(r.body, "not an API key"), "%s", r.body);
	gw_resp_free(&r);

	/* Unknown functions are not told apart from known ones without a key. */
	cr_assert_eq(post("acme/nosuch", NULL, &r), 401, "%s", r.body);
	gw_resp_free(&r);
	cr_assert_eq(post("acme/nosuch", key, &r), 404, "%s", r.body);
	gw_resp_free(&r);

	/* A --public app needs no key. */
	cr_assert_eq(post("other/echo", NULL, &r), 200, "%s", r.body);
	gw_resp_free(&r);

	cr_assert_eq(key_revoke("acme", id), LUTF_STATUS_OK);
	cr_assert_eq(post("acme/echo", key, &r), 403, "%s", r.body);
	cr_assert(strstr(r.body, "revoked"), "%s", r.body);
	gw_resp_free(&r);
	cr_assert_eq(key_revoke("acme", "0000000000000000"), LUTF_STATUS_UNKNOWN_FUNCTION);
}

Test(keys, tcp_forbidden_without_key_ok_with_it_connection_stays)
{
	char key[128], id[32], okey[128], oid[32], text[320];
	int fd = td_connect_tcp(tcp), ufd = td_connect(&d, "lutf.sock");

	cr_assert(fd >= 0 && ufd >= 0);
	key_create("acme", key, sizeof(key), id, sizeof(id));
	key_create("other", okey, sizeof(okey), oid, sizeof(oid));
	cr_assert_eq(tcp_invoke(fd, "acme", NULL, text, sizeof(text)), LUTF_STATUS_FORBIDDEN);
	cr_assert(strstr(text, "API key of tenant acme is required"), "%s", text);
	cr_assert_eq(tcp_invoke(fd, "acme", okey, text, sizeof(text)), LUTF_STATUS_FORBIDDEN);
	cr_assert(strstr(text, "is not a key of tenant acme"), "%s", text);
	cr_assert_eq(tcp_invoke(fd, "acme", key, text, sizeof(text)), LUTF_STATUS_OK, "%s", text);
	cr_assert_str_eq(text, "hi");
	cr_assert_eq(tcp_invoke(fd, "other", NULL, text, sizeof(text)), LUTF_STATUS_OK, "%s", text);
	/* The Unix socket keeps its peer-credential rule: no key. */
	cr_assert_eq(tcp_invoke(ufd, "acme", NULL, text, sizeof(text)), LUTF_STATUS_OK, "%s", text);
	cr_assert_eq(key_revoke("acme", id), LUTF_STATUS_OK);
	cr_assert_eq(tcp_invoke(fd, "acme", key, text, sizeof(text)), LUTF_STATUS_FORBIDDEN);
	cr_assert(strstr(text, "revoked"), "%s", text);
	close(fd);
	close(ufd);
}

/* A user who is neither root nor a tenant: the same answers as anyone. */
Test(keys, non_root_user_needs_a_key_too)
{
	char key[128], id[32];
	int status = -1;
	pid_t pid;

	key_create("acme", key, sizeof(key), id, sizeof(id));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct gw_resp r;
		char text[320];
		int fd, bad = 0;

		if (setgroups(0, NULL) || setresgid(OTHER_UID, OTHER_UID, OTHER_UID) ||
		    setresuid(OTHER_UID, OTHER_UID, OTHER_UID))
			_exit(100);
		if (post("acme/echo", NULL, &r) != 401 || !strstr(r.body, "required"))
			bad |= 1;
		if (post("acme/echo", key, &r) != 200 || strcmp(r.body, "hi"))
			bad |= 2;
		fd = td_connect_tcp(tcp);
		if (fd < 0 ||
		    tcp_invoke(fd, "acme", NULL, text, sizeof(text)) != LUTF_STATUS_FORBIDDEN)
			bad |= 4;
		if (fd < 0 || tcp_invoke(fd, "acme", key, text, sizeof(text)) != LUTF_STATUS_OK)
			bad |= 8;
		/* Nor the Unix sockets (root:lutf 0660) nor /metrics without the token. */
		if (td_connect(&d, "lutf.sock") >= 0 || td_connect(&d, "control.sock") >= 0)
			bad |= 16;
		_exit(bad);
	}
	cr_assert(td_wait_exit(pid, &status, 30000), "the non-root child did not finish");
	cr_assert(WIFEXITED(status), "status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0,
		     "non-root caller: bits 1: no 401, 2: key refused over HTTP, 4: no FORBIDDEN "
		     "over TCP, 8: key refused over TCP, 16: a Unix socket accepted it; 100: "
		     "setuid failed");
}

static int get_metrics(const char *hostport, const char *token, struct gw_resp *r)
{
	struct gw_in in = {0};
	char req[512];
	int fd = td_connect_tcp(hostport), ok;

	cr_assert_geq(fd, 0);
	snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: t\r\n%s%s%s\r\n",
		 token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
	ok = gw_sends(fd, req) && gw_read(fd, &in, r, 5000);
	close(fd);
	return ok ? r->code : -1;
}

Test(keys, metrics_only_on_admin_with_its_token)
{
	char path[300], tok[160] = "";
	struct gw_resp r;
	FILE *fp;
	struct stat st;

	snprintf(path, sizeof(path), "%s/admin.token", d.state);
	fp = fopen(path, "r");
	cr_assert(fp && fgets(tok, sizeof(tok), fp), "no admin token in %s", path);
	fclose(fp);
	tok[strcspn(tok, "\n")] = 0;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 077, 0, "admin.token is readable by others: %o", st.st_mode);

	cr_assert_eq(get_metrics(http, tok, &r), 404, "/metrics on the data port");
	gw_resp_free(&r);
	cr_assert_eq(get_metrics(admin, NULL, &r), 401, "%s", r.body);
	gw_resp_free(&r);
	cr_assert_eq(get_metrics(admin, "wrong-token-wrong-token", &r), 403, "%s", r.body);
	gw_resp_free(&r);
	cr_assert_eq(get_metrics(admin, tok, &r), 200, "%s", r.body);
	cr_assert(strstr(r.body, "tenant=\"acme\""), "%.300s", r.body);
	gw_resp_free(&r);
}

Test(keys, keys_durable_hashed_and_listed_without_secrets)
{
	char key[128], id[32], path[300], *file;
	struct gw_resp r;
	struct lutf_buf b;
	struct td_reply rep;
	size_t len = 0;

	key_create("acme", key, sizeof(key), id, sizeof(id));
	snprintf(path, sizeof(path), "%s/keys", d.state);
	file = (char *)td_slurp(path, &len);
	cr_assert(file, "no key store at %s", path);
	cr_assert(memmem(file, len, id, strlen(id)), "key id not stored");
	cr_assert(!memmem(file, len, key + 22, 64), "the secret is stored in clear");
	free(file);

	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_KEY_LIST, 23, "acme", NULL);
	cr_assert_eq(td_call(cfd, &b, &rep, 5000), LUTF_STATUS_OK);
	cr_assert(memmem(rep.payload, rep.h.length, id, strlen(id)), "list lacks the id");
	cr_assert(!memmem(rep.payload, rep.h.length, key + 22, 64), "list shows the secret");
	free(rep.payload);
	lutf_buf_free(&b);

	/* Restart: the key still opens acme, and --public still holds. */
	close(cfd);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	cr_assert(td_start_again(&d), "lutfd did not restart");
	cfd = td_connect(&d, "control.sock");
	cr_assert(td_addr(&d, "http.addr", http, sizeof(http)));
	for (int i = 0; i < 100; i++) { /* the worker comes back */
		if (post("acme/echo", key, &r) == 200)
			break;
		gw_resp_free(&r);
		td_sleep_ms(50);
	}
	cr_assert_eq(r.code, 200, "%s", r.body);
	gw_resp_free(&r);
	cr_assert_eq(post("other/echo", NULL, &r), 200, "%s", r.body);
	gw_resp_free(&r);
	cr_assert_eq(post("acme/echo", NULL, &r), 401, "%s", r.body);
	gw_resp_free(&r);
}

/* Run the built lutfctl with args (NULL-ended); stdout and stderr into out.
 * key: LUTF_KEY for it (NULL: unset). Returns the exit code (-1: killed). */
static int ctl(char *out, size_t cap, const char *key, ...)
{
	const char *argv[16] = {"lutfctl"};
	int p[2], st = 0;
	size_t n = 1, len = 0;
	va_list ap;
	pid_t pid;

	va_start(ap, key);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		if (key)
			setenv("LUTF_KEY", key, 1);
		else
			unsetenv("LUTF_KEY");
		alarm(20);
		execv(LUTFCTL_PATH, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (ssize_t k; len + 1 < cap && (k = read(p[0], out + len, cap - 1 - len)) > 0;)
		len += (size_t)k;
	out[len] = 0;
	close(p[0]);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* lutfctl key create / list / revoke, invoke --key and LUTF_KEY over TCP,
 * deploy --public: the commands a user types. */
Test(keys, lutfctl_key_commands_and_invoke_key)
{
	char out[4096], key[128], id[32], url[96];
	const char *run = d.run;
	int code;

	snprintf(url, sizeof(url), "tcp://%s", tcp);
	code = ctl(out, sizeof(out), NULL, "--runtime-dir", run, "key", "create", "acme", NULL);
	cr_assert_eq(code, 0, "%s", out);
	/* stdout holds the key alone on its line; stderr says its id */
	cr_assert(!strncmp(out, "lutf_", 5) || strstr(out, "\nlutf_"), "%s", out);
	cr_assert_eq(
	    sscanf(strncmp(out, "lutf_", 5) ? strstr(out, "\nlutf_") + 1 : out, "%127s", key), 1);
	memcpy(id, key + 5, 16);
	id[16] = 0;
	cr_assert(strstr(out, "shown only this once"), "%s", out);

	code = ctl(out, sizeof(out), NULL, "--runtime-dir", run, "key", "list", "acme", NULL);
	cr_assert_eq(code, 0, "%s", out);
	cr_assert(strstr(out, id) && strstr(out, "active"), "%s", out);
	cr_assert(!strstr(out, key + 22), "list shows the secret: %s", out);

	code = ctl(out, sizeof(out), NULL, "--socket", url, "invoke", "acme/echo", "--data", "hi",
		   NULL);
	cr_assert_eq(code, 10 + LUTF_STATUS_FORBIDDEN, "%s", out);
	cr_assert(strstr(out, "API key of tenant acme is required"), "%s", out);
	code = ctl(out, sizeof(out), NULL, "--socket", url, "invoke", "acme/echo", "--data", "hi",
		   "--key", key, NULL);
	cr_assert_eq(code, 0, "%s", out);
	cr_assert_str_eq(out, "hi");
	code = ctl(out, sizeof(out), key, "--socket", url, "invoke", "acme/echo", "--data", "hi",
		   NULL);
	cr_assert_eq(code, 0, "LUTF_KEY: %s", out);

	code = ctl(out, sizeof(out), NULL, "--runtime-dir", run, "key", "revoke", "acme", id, NULL);
	cr_assert_eq(code, 0, "%s", out);
	code = ctl(out, sizeof(out), key, "--socket", url, "invoke", "acme/echo", "--data", "hi",
		   NULL);
	cr_assert_eq(code, 10 + LUTF_STATUS_FORBIDDEN, "%s", out);
	cr_assert(strstr(out, "revoked"), "%s", out);
	code = ctl(out, sizeof(out), NULL, "--runtime-dir", run, "key", "list", NULL);
	cr_assert(strstr(out, id) && strstr(out, "revoked"), "%s", out);
	code = ctl(out, sizeof(out), NULL, "--runtime-dir", run, "key", "revoke", "acme",
		   "0000000000000000", NULL);
	cr_assert_eq(code, 10 + LUTF_STATUS_UNKNOWN_FUNCTION, "%s", out);
	code = ctl(out, sizeof(out), NULL, "--runtime-dir", run, "key", "create", NULL);
	cr_assert_eq(code, 2, "%s", out);

	/* deploy --public: no key needed over TCP. */
	code =
	    ctl(out, sizeof(out), NULL, "--runtime-dir", run, "deploy", "--tenant", "pubt", "--app",
		"a", "--so", APP, "--export", "echo", "--tier", "none", "--public", NULL);
	cr_assert_eq(code, 0, "%s", out);
	code = ctl(out, sizeof(out), NULL, "--socket", url, "invoke", "pubt/echo", "--data", "p",
		   NULL);
	cr_assert_eq(code, 0, "%s", out);
	cr_assert_str_eq(out, "p");
}

/* A create the disk refuses is not acknowledged, and changes nothing. */
Test(keys, key_store_write_failure_is_reported_and_undone)
{
	char path[300], msg[300] = "";
	struct lutf_buf b;
	struct td_reply r;
	uint32_t st;

	snprintf(path, sizeof(path), "%s/keys.tmp", d.state);
	cr_assert_eq(mkdir(path, 0700), 0, "%s", path); /* open(O_WRONLY) fails: EISDIR */
	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_KEY_CREATE, 24, "acme", NULL);
	st = td_call(cfd, &b, &r, 5000);
	cr_assert_neq(st, LUTF_STATUS_OK, "a key that was never saved was handed out");
	cr_assert_neq(st, LUTF_STATUS_OVERLOADED, "a disk failure is not retry-later");
	cr_assert(td_field_str(&r, LUTF_TAG_ERROR, msg, sizeof(msg)));
	cr_assert(strstr(msg, "cannot save the key store") && strstr(msg, "directory"), "%s", msg);
	cr_assert(!td_count(&r, LUTF_TAG_KEY), "the reply carries a key");
	free(r.payload);
	b.len = 0;
	td_addr_frame(&b, LUTF_OP_KEY_LIST, 25, "acme", NULL);
	cr_assert_eq(td_call(cfd, &b, &r, 5000), LUTF_STATUS_OK);
	cr_assert_eq(td_count(&r, LUTF_TAG_RECORD), 0, "the failed key is listed");
	free(r.payload);
	cr_assert_eq(rmdir(path), 0);
	b.len = 0;
	td_addr_frame(&b, LUTF_OP_KEY_CREATE, 26, "acme", NULL);
	cr_assert_eq(td_call(cfd, &b, &r, 5000), LUTF_STATUS_OK);
	free(r.payload);
	lutf_buf_free(&b);
}
