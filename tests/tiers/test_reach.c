/* SPDX-License-Identifier: MIT */
/*
 * Functions cannot reach lutfd (issue 12.3): a `service` and a `compat`
 * function connecting to lutfd's own TCP listeners (binary protocol, HTTP,
 * admin) are refused with the cause, and the Unix data socket refuses a
 * `compat` function by its file mode; with functions_reach_lutfd = on the
 * operator lets them through. Root-only; skips otherwise.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "fault_util.h"
#include "require.h"

#define REACH TEST_APP_DIR "/libreach_app.so"
#define LISTEN "listen_tcp = 127.0.0.1:0\nhttp_listen = 127.0.0.1:0\nadmin_listen = 127.0.0.1:0\n"
#define REFUSED "functions may not connect to lutfd"

static const char *const ex[] = {"echo=echo", "dial=dial", NULL};
static struct td d;
static int cfd = -1, dfd = -1;

static void start(const char *extra)
{
	char conf[512], msg[300];

	LUTF_REQUIRE("root", lutf_test_is_root(), "lutfd's control socket and uids need root");
	snprintf(conf, sizeof(conf), "%s%s", LISTEN, extra);
	cr_assert(fx_start(&d, conf), "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	cr_assert(cfd >= 0 && dfd >= 0);
	cr_assert_eq(fx_deploy(cfd, "victim", "r", REACH, ex, "basic", 0, msg, sizeof(msg)),
		     LUTF_STATUS_OK, "%s", msg);
	cr_assert_eq(fx_deploy(cfd, "svc", "r", REACH, ex, "service", 0, msg, sizeof(msg)),
		     LUTF_STATUS_OK, "%s", msg);
	cr_assert_eq(fx_deploy(cfd, "cpt", "r", REACH, ex, "compat", 0, msg, sizeof(msg)),
		     LUTF_STATUS_OK, "%s", msg);
}

static void teardown(void)
{
	if (cfd >= 0)
		close(cfd);
	if (dfd >= 0)
		close(dfd);
	cfd = dfd = -1;
	fx_stop(&d);
}

TestSuite(reach, .fini = teardown, .timeout = 120);

/* tenant/dial toward addr (a file under the runtime folder holding
 * "host:port"), or toward "unix:<path>" when file starts with '/'. */
static struct fx_res dial(const char *tenant, const char *file)
{
	char target[200];

	if (file[0] == '/')
		snprintf(target, sizeof(target), "unix:%s", file);
	else
		cr_assert(td_addr(&d, file, target, sizeof(target)), "no %s", file);
	return fx_call(dfd, tenant, "dial", target, 0, 10000);
}

Test(reach, service_and_compat_functions_are_refused)
{
	static const char *const files[] = {"http.addr", "tcp.addr", "admin.addr"};
	static const char *const tenants[] = {"svc", "cpt"};
	char sock[200];
	struct fx_res r;

	start("");
	for (size_t t = 0; t < 2; t++)
		for (size_t i = 0; i < 3; i++) {
			r = dial(tenants[t], files[i]);
			cr_assert_eq(r.status, LUTF_STATUS_OK, "%s -> %s: status %u (%s)",
				     tenants[t], files[i], r.status, r.text);
			cr_assert(strstr(r.text, REFUSED), "%s reached lutfd's %s: %s", tenants[t],
				  files[i], r.text);
		}
	/* compat may make Unix sockets: lutf.sock's mode refuses its uid. */
	snprintf(sock, sizeof(sock), "%s/lutf.sock", d.run);
	r = dial("cpt", sock);
	cr_assert_eq(r.status, LUTF_STATUS_OK, "status %u (%s)", r.status, r.text);
	cr_assert(strstr(r.text, "connect: Permission denied"), "%s", r.text);
	snprintf(sock, sizeof(sock), "%s/control.sock", d.run);
	r = dial("cpt", sock);
	cr_assert(strstr(r.text, "connect: Permission denied"), "%s", r.text);
	/* The test itself (root, not a tenant) is not refused. */
	cr_assert_eq(fx_call(dfd, "victim", "echo", "x", 0, 10000).status, LUTF_STATUS_OK);
}

Test(reach, the_operator_may_allow_it)
{
	struct fx_res r;
	struct lutf_buf b;
	struct td_reply rep;
	char key[128], target[300];

	start("functions_reach_lutfd = on\nrequire_keys = on\n");
	r = dial("svc", "http.addr");
	cr_assert_eq(r.status, LUTF_STATUS_OK, "status %u (%s)", r.status, r.text);
	/* Through to the gateway, which asks for a key like anyone's call... */
	cr_assert(strstr(r.text, "reply: HTTP/1.1 401"), "%s", r.text);
	cr_assert(!strstr(r.text, REFUSED), "%s", r.text);
	/* ... and runs it with one of the victim's keys. */
	lutf_buf_init(&b);
	td_addr_frame(&b, LUTF_OP_KEY_CREATE, 3, "victim", NULL);
	cr_assert_eq(td_call(cfd, &b, &rep, 5000), LUTF_STATUS_OK);
	cr_assert(td_field_str(&rep, LUTF_TAG_KEY, key, sizeof(key)));
	free(rep.payload);
	lutf_buf_free(&b);
	cr_assert(td_addr(&d, "http.addr", target, sizeof(target)));
	snprintf(target + strlen(target), sizeof(target) - strlen(target), " %s", key);
	r = fx_call(dfd, "svc", "dial", target, 0, 10000);
	cr_assert(strstr(r.text, "reply: HTTP/1.1 200") && strstr(r.text, "hi"), "%s", r.text);
}
