/* SPDX-License-Identifier: MIT */
/*
 * Python functions through the real lutfd (issue #14): a .py and a .zip
 * deployed with KIND python and invoked; every status (exception, fail(),
 * endless loop, os.system under the basic policy, memory hog); pause, held
 * calls, resume in order; delete; a Python and a C app in one tenant; two
 * Python apps with their own namespace and state; redeploy under load; the
 * worker killed mid-call; a tier without Python refuses the deploy; a call
 * over the HTTP gateway; service and compat; a lutfd restart.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "fault_util.h"
#include "require.h"

#define APPS PY_APP_DIR
#define HANDLER APPS "/handler.py"
#define OTHER APPS "/other.py"
#define STDLIB APPS "/stdlib_heavy.py"
#define VENDORED PY_BUILD_DIR "/vendored.zip"
#define C_APP C_APP_DIR "/libctl_app.so"

static struct td d;
static int cfd = -1, dfd = -1;

static void setup(void)
{
	LUTF_REQUIRE("root", lutf_test_is_root(), "the control socket and cgroups need root");
	cr_assert(td_start(&d, "carts = 2\nlabors = 4\nrestart_backoff_max_ms = 400\n"
			       "http_listen = 127.0.0.1:0\n"),
		  "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	cr_assert(cfd >= 0 && dfd >= 0);
}

static void teardown(void)
{
	if (dfd >= 0)
		close(dfd);
	dfd = -1;
	td_close_stop(&d, &cfd);
}

TestSuite(python, .init = setup, .fini = teardown, .timeout = 60);

struct py_deploy {
	const char *tier;	   /* NULL: basic */
	const char *kind;	   /* NULL: python */
	const char *const *config; /* "fn", "key", "value", ..., NULL */
	uint32_t timeout_ms, memory_mb;
};

/* Deploy path as tenant/app with exports ("fn=module:function", ..., NULL).
 * The status; msg gets lutfd's error. */
static uint32_t py_deploy(const char *tenant, const char *app, const char *path,
			  const char *const *exports, const struct py_deploy *o, char *msg,
			  size_t cap)
{
	static const struct py_deploy none;
	struct lutf_buf b;
	struct td_reply r;
	struct lutf_tlv f;
	size_t len = 0, fo;
	uint8_t *so = td_slurp(path, &len);
	uint32_t st;

	o = o ? o : &none;
	msg[0] = 0;
	cr_assert(so, "cannot read %s", path);
	lutf_buf_init(&b);
	fo = lutf_frame_begin(&b, LUTF_OP_DEPLOY, 0, 77);
	lutf_tlv_put_str(&b, LUTF_TAG_TENANT, tenant);
	lutf_tlv_put_str(&b, LUTF_TAG_APP, app);
	lutf_tlv_put(&b, LUTF_TAG_SO, so, len);
	lutf_tlv_put_str(&b, LUTF_TAG_KIND, o->kind ? o->kind : "python");
	lutf_tlv_put_str(&b, LUTF_TAG_TIER, o->tier ? o->tier : "basic");
	for (; *exports; exports++)
		lutf_tlv_put_str(&b, LUTF_TAG_EXPORT, *exports);
	for (const char *const *c = o->config; c && c[0] && c[1] && c[2]; c += 3) {
		char cv[256];
		int n = snprintf(cv, sizeof(cv), "%s%c%s%c%s", c[0], 0, c[1], 0, c[2]);

		lutf_tlv_put(&b, LUTF_TAG_CONFIG, cv, (size_t)n);
	}
	if (o->timeout_ms)
		lutf_tlv_put_u32(&b, LUTF_TAG_TIMEOUT_MS, o->timeout_ms);
	if (o->memory_mb)
		lutf_tlv_put_u32(&b, LUTF_TAG_MEMORY_MB, o->memory_mb);
	lutf_frame_end(&b, fo);
	st = td_call(cfd, &b, &r, 20000);
	lutf_buf_free(&b);
	free(so);
	if (st != 0xffffffffu) {
		if (td_field(&r, LUTF_TAG_ERROR, 0, &f) && f.len < cap) {
			memcpy(msg, f.val, f.len);
			msg[f.len] = 0;
		}
		free(r.payload);
	}
	return st;
}

static void deploy_ok(const char *tenant, const char *app, const char *path,
		      const char *const *exports, const struct py_deploy *o)
{
	char msg[400];

	cr_assert_eq(py_deploy(tenant, app, path, exports, o, msg, sizeof(msg)), LUTF_STATUS_OK,
		     "deploy %s/%s: %s", tenant, app, msg);
}

static const char *const handler_ex[] = {
    "hello=handler:handle",	 "echo=handler:echo",	      "meta=handler:meta",
    "boom=handler:boom",	 "refuse=handler:refuse",     "spin=handler:spin",
    "sleep=handler:sleep",	 "shell=handler:shell",	      "hog=handler:hog",
    "count=handler:count",	 "badret=handler:bad_return", "nomem=handler:nomem",
    "bigalloc=handler:bigalloc", "caught=handler:caught",     NULL,
};

static bool send_raw(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static struct fx_res call(const char *tenant, const char *fn, const char *in)
{
	return fx_call(dfd, tenant, fn, in, 0, 15000);
}

static void expect(const char *tenant, const char *fn, const char *in, uint32_t status,
		   const char *text)
{
	struct fx_res r = call(tenant, fn, in);

	cr_assert_eq(r.status, status, "%s/%s: status %u (%s)", tenant, fn, r.status, r.text);
	if (text)
		cr_assert(strstr(r.text, text), "%s/%s: '%s' lacks '%s'", tenant, fn, r.text, text);
}

Test(python, py_deploy_invoke_state_config_and_log)
{
	const char *const cfg[] = {"hello", "greeting", "bonjour", NULL};
	struct py_deploy o = {.config = cfg};

	deploy_ok("pt", "greeter", HANDLER, handler_ex, &o);
	expect("pt", "hello", "lutf", LUTF_STATUS_OK, "{\"msg\": \"bonjour lutf\"}");
	expect("pt", "hello", "", LUTF_STATUS_OK, "bonjour world");
	expect("pt", "count", "", LUTF_STATUS_OK, "2");
	expect("pt", "echo", "bytes in, bytes out", LUTF_STATUS_OK, "bytes in, bytes out");
	expect("pt", "meta", "x-nothing", LUTF_STATUS_OK, "none");
}

Test(python, exception_is_function_error_with_type_and_message)
{
	deploy_ok("pt", "greeter", HANDLER, handler_ex, NULL);
	expect("pt", "boom", "gizmo", LUTF_STATUS_FUNCTION_ERROR,
	       "ValueError: no such thing: gizmo");
	expect("pt", "refuse", "", LUTF_STATUS_FUNCTION_ERROR, "refused by the app");
	expect("pt", "badret", "", LUTF_STATUS_FUNCTION_ERROR, "TypeError");
	/* The worker lives on: no crash, no recycle. */
	expect("pt", "hello", "again", LUTF_STATUS_OK, "hello again");
}

Test(python, bad_deploys_are_refused_clearly)
{
	char msg[400];
	const char *const bad_sym[] = {"x=handler", NULL};
	const char *const missing[] = {"x=handler:nope", NULL};
	const char *const ok[] = {"x=handler:handle", NULL};
	struct py_deploy pure = {.tier = "pure"};

	cr_assert_eq(py_deploy("pt", "a", HANDLER, bad_sym, NULL, msg, sizeof(msg)),
		     LUTF_STATUS_MALFORMED, "%s", msg);
	cr_assert(strstr(msg, "module:function"), "%s", msg);
	cr_assert_eq(py_deploy("pt", "a", HANDLER, missing, NULL, msg, sizeof(msg)),
		     LUTF_STATUS_FUNCTION_ERROR, "%s", msg);
	cr_assert(strstr(msg, "no function 'nope'"), "%s", msg);
	cr_assert_eq(py_deploy("pt2", "a", HANDLER, ok, &pure, msg, sizeof(msg)),
		     LUTF_STATUS_FORBIDDEN, "%s", msg);
	cr_assert(strstr(msg, "tier pure cannot run Python"), "%s", msg);
	cr_assert_eq(py_deploy("pt3", "a", C_APP, ok, NULL, msg, sizeof(msg)),
		     LUTF_STATUS_MALFORMED, "%s", msg);
	cr_assert(strstr(msg, "not an ELF object"), "%s", msg);
}

/* lutfd's zygote (root) loads lutf_python.so only when only root can change
 * it: a group-writable copy named by LUTF_PYTHON_MODULE, or a relative path,
 * leaves Python off, and a Python deploy says why; a proper copy works. */
Test(python, a_module_others_can_change_is_not_loaded)
{
	static const char *const ex[] = {"x=handler:handle", NULL};
	char mod[300], envv[340], msg[400], cmd[700];
	const char *env[] = {envv, NULL};
	const char *const rel[] = {"LUTF_PYTHON_MODULE=lutf_python.so", NULL};

	teardown();
	snprintf(mod, sizeof(mod), "/tmp/lutf-pymod-%d.so", (int)getpid());
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 0664 '%s'", PY_MODULE, mod, mod);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(envv, sizeof(envv), "LUTF_PYTHON_MODULE=%s", mod);
	d.env = env;
	cr_assert(td_start(&d, "carts = 1\nlabors = 2\n"), "lutfd did not start (%s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert(cfd >= 0);
	cr_assert_neq(py_deploy("pm1", "a", HANDLER, ex, NULL, msg, sizeof(msg)), LUTF_STATUS_OK);
	cr_assert(strstr(msg, "is not a file only root can change"), "%s", msg);
	teardown();
	d.env = rel;
	cr_assert(td_start(&d, "carts = 1\nlabors = 2\n"), "lutfd did not start (%s)", d.log);
	cfd = td_connect(&d, "control.sock");
	cr_assert_neq(py_deploy("pm2", "a", HANDLER, ex, NULL, msg, sizeof(msg)), LUTF_STATUS_OK);
	cr_assert(strstr(msg, "is not an absolute path"), "%s", msg);
	teardown();
	cr_assert_eq(chmod(mod, 0644), 0);
	d.env = env;
	cr_assert(td_start(&d, "carts = 1\nlabors = 2\n"), "lutfd did not start (%s)", d.log);
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	deploy_ok("pm3", "a", HANDLER, ex, NULL);
	expect("pm3", "x", "copy", LUTF_STATUS_OK, "hello copy");
	d.env = NULL;
	unlink(mod);
}

Test(python, zip_with_vendored_dependency_and_stdlib_heavy)
{
	const char *const zex[] = {"shout=app:handle", NULL};
	const char *const sex[] = {"digest=stdlib_heavy:digest", NULL};

	deploy_ok("pz", "zipped", VENDORED, zex, NULL);
	deploy_ok("pz", "heavy", STDLIB, sex, NULL);
	expect("pz", "shout", "hey", LUTF_STATUS_OK, "HEY! (vendlib 1.2)");
	expect("pz", "digest", "the cat and the hat", LUTF_STATUS_OK,
	       "\"top\": [[\"the\", 2], [\"cat\", 1]]");
	expect("pz", "digest", "abc", LUTF_STATUS_OK, "\"sha256\": \"ba7816bf8f01cfea\"");
}

Test(python, runs_in_service_and_compat_too)
{
	const char *const sex[] = {"digest=stdlib_heavy:digest", NULL};
	struct py_deploy svc = {.tier = "service"}, compat = {.tier = "compat"};

	deploy_ok("psvc", "heavy", STDLIB, sex, &svc);
	deploy_ok("pcompat", "heavy", STDLIB, sex, &compat);
	expect("psvc", "digest", "abc", LUTF_STATUS_OK, "ba7816bf8f01cfea");
	expect("pcompat", "digest", "abc", LUTF_STATUS_OK, "ba7816bf8f01cfea");
}

Test(python, two_apps_own_namespace_and_state_beside_a_c_app)
{
	const char *const a1[] = {"h1=handler:handle", "c1=handler:count", NULL};
	const char *const a2[] = {"h2=handler:handle", "c2=handler:count", NULL};
	const char *const a3[] = {"who=handler:who", NULL};
	const char *const cex[] = {"cecho=echo", NULL};
	const char *const cfg[] = {"h2", "greeting", "hi", NULL};
	struct py_deploy o2 = {.config = cfg}, native = {.kind = "native"};

	deploy_ok("pn", "one", HANDLER, a1, NULL);
	deploy_ok("pn", "two", HANDLER, a2, &o2);
	/* other.py as module "handler" too: a third module of that name */
	deploy_ok("pn", "three", OTHER, a3, NULL);
	deploy_ok("pn", "capp", C_APP, cex, &native);
	expect("pn", "h1", "a", LUTF_STATUS_OK, "hello a");
	expect("pn", "h1", "b", LUTF_STATUS_OK, "hello b");
	expect("pn", "h2", "c", LUTF_STATUS_OK, "hi c");
	expect("pn", "c1", "", LUTF_STATUS_OK, "2");
	expect("pn", "c2", "", LUTF_STATUS_OK, "1");
	expect("pn", "who", "", LUTF_STATUS_OK, "other other handler");
	expect("pn", "cecho", "from C", LUTF_STATUS_OK, NULL);
	expect("pn", "h1", "d", LUTF_STATUS_OK, "hello d");
	/* An app module named like a stdlib one shadows it only while it loads. */
	{
		const char *const shadow[] = {"jwho=json:who", NULL};
		const char *const sex[] = {"digest=stdlib_heavy:digest", NULL};

		deploy_ok("pn", "shadow", OTHER, shadow, NULL);
		deploy_ok("pn", "heavy", STDLIB, sex, NULL);
		expect("pn", "jwho", "", LUTF_STATUS_OK, "other other json");
		expect("pn", "digest", "abc", LUTF_STATUS_OK, "ba7816bf8f01cfea");
	}
}

Test(python, endless_loop_is_deadline_and_the_worker_recycles)
{
	struct py_deploy o = {.timeout_ms = 300};
	uint64_t t0, restarts = 0;

	deploy_ok("pd", "greeter", HANDLER, handler_ex, &o);
	expect("pd", "hello", "x", LUTF_STATUS_OK, NULL);
	t0 = td_now_ms();
	expect("pd", "spin", "", LUTF_STATUS_DEADLINE, NULL);
	cr_assert_lt(td_now_ms() - t0, 5000);
	cr_assert(fx_wait_counter(cfd, "pd", "restarts", 1, 5000),
		  "the stuck worker was not recycled");
	cr_assert(td_tenant_counter(cfd, "pd", "restarts", &restarts) && restarts == 1);
	cr_assert(fx_wait_up(cfd, dfd, "pd", "hello", 5000), "pd did not come back");
}

Test(python, os_system_is_killed_by_policy_naming_clone)
{
	struct fx_res r;

	deploy_ok("ps", "greeter", HANDLER, handler_ex, NULL);
	r = call("ps", "shell", "");
	cr_assert_eq(r.status, LUTF_STATUS_KILLED_BY_POLICY, "status %u (%s)", r.status, r.text);
	cr_assert(strstr(r.text, "clone"), "'%s' does not name clone", r.text);
	cr_assert(fx_wait_up(cfd, dfd, "ps", "hello", 5000), "ps did not come back");
}

Test(python, memory_hog_is_out_of_memory)
{
	char limits[300] = "";
	struct py_deploy o = {.memory_mb = 64};
	struct fx_res r;

	deploy_ok("pm", "greeter", HANDLER, handler_ex, &o);
	cr_assert(fx_tenant_text(cfd, "pm", "limits=", limits, sizeof(limits)));
	LUTF_REQUIRE("cgroup", strstr(limits, "cgroup"),
		     "no cgroup hierarchy here: rlimits alone give MemoryError");
	r = call("pm", "hog", "");
	cr_assert_eq(r.status, LUTF_STATUS_OUT_OF_MEMORY, "status %u (%s)", r.status, r.text);
	cr_assert(fx_wait_up(cfd, dfd, "pm", "hello", 5000), "pm did not come back");
}

/* A MemoryError out of the handler is OUT_OF_MEMORY carrying its message,
 * raised or from a refused allocation; the worker stays (no recycle), and a
 * MemoryError the handler catches is its own business. */
Test(python, memory_error_is_out_of_memory_and_the_worker_stays)
{
	uint64_t pid0 = 0, pid1 = 0, restarts = 1;

	deploy_ok("pe", "greeter", HANDLER, handler_ex, NULL);
	expect("pe", "hello", "x", LUTF_STATUS_OK, NULL);
	cr_assert(td_tenant_counter(cfd, "pe", "worker_pid", &pid0) && pid0);
	expect("pe", "nomem", "", LUTF_STATUS_OUT_OF_MEMORY, "MemoryError: asked for too much");
	expect("pe", "bigalloc", "", LUTF_STATUS_OUT_OF_MEMORY, "MemoryError");
	expect("pe", "caught", "", LUTF_STATUS_OK, "caught");
	expect("pe", "boom", "x", LUTF_STATUS_FUNCTION_ERROR, "ValueError");
	expect("pe", "hello", "y", LUTF_STATUS_OK, "hello y");
	cr_assert(td_tenant_counter(cfd, "pe", "worker_pid", &pid1) && pid1 == pid0,
		  "the worker changed: %llu -> %llu", (unsigned long long)pid0,
		  (unsigned long long)pid1);
	cr_assert(td_tenant_counter(cfd, "pe", "restarts", &restarts) && restarts == 0);
}

/* Without cgroups the tenant's RLIMIT_AS stops a hog: Python raises
 * MemoryError, which is OUT_OF_MEMORY too, and the worker serves on.
 * Sanitizer builds set no RLIMIT_AS (drop.c): the hog would have no bound. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && !defined(LUTF_SANITIZER)
Test(python, memory_hog_under_rlimits_alone_is_out_of_memory)
{
	char limits[300] = "";
	struct py_deploy o = {.memory_mb = 64};
	struct fx_res r;

	teardown();
	cr_assert(td_start(&d, "carts = 2\nlabors = 4\ncgroup = off\n"),
		  "lutfd did not start (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	cr_assert(cfd >= 0 && dfd >= 0);
	deploy_ok("pr", "greeter", HANDLER, handler_ex, &o);
	cr_assert(fx_tenant_text(cfd, "pr", "limits=", limits, sizeof(limits)));
	cr_assert(strstr(limits, "rlimits only"), "%s", limits);
	r = call("pr", "hog", "");
	cr_assert_eq(r.status, LUTF_STATUS_OUT_OF_MEMORY, "status %u (%s)", r.status, r.text);
	cr_assert(strstr(r.text, "MemoryError"), "'%s'", r.text);
	expect("pr", "hello", "z", LUTF_STATUS_OK, "hello z");
}
#endif

Test(python, pause_holds_calls_resume_answers_in_order_delete)
{
	uint64_t id;
	struct fx_res r;

	deploy_ok("pp", "greeter", HANDLER, handler_ex, NULL);
	expect("pp", "echo", "warm", LUTF_STATUS_OK, "warm");
	cr_assert_eq(td_control(cfd, LUTF_OP_PAUSE, "pp", "echo"), LUTF_STATUS_OK);
	for (int i = 0; i < 3; i++) {
		char in[8];

		snprintf(in, sizeof(in), "m%d", i);
		cr_assert(fx_send(dfd, 100 + (uint64_t)i, "pp", "echo", in, 0));
	}
	/* Held: nothing answers while paused. */
	cr_assert_not(fx_recv(dfd, &id, &r, 300), "a paused call answered: %s", r.text);
	cr_assert_eq(td_control(cfd, LUTF_OP_RESUME, "pp", "echo"), LUTF_STATUS_OK);
	for (int i = 0; i < 3; i++) {
		char want[8];

		snprintf(want, sizeof(want), "m%d", i);
		cr_assert(fx_recv(dfd, &id, &r, 5000), "held call %d not answered", i);
		cr_assert_eq(r.status, LUTF_STATUS_OK, "%u %s", r.status, r.text);
		cr_assert_eq(id, 100 + (uint64_t)i, "out of order: %llu", (unsigned long long)id);
		cr_assert_str_eq(r.text, want);
	}
	cr_assert_eq(td_control(cfd, LUTF_OP_DELETE, "pp", "echo"), LUTF_STATUS_OK);
	r = call("pp", "echo", "gone");
	cr_assert(r.status == LUTF_STATUS_UNKNOWN_FUNCTION || r.status == LUTF_STATUS_DELETED,
		  "status %u (%s)", r.status, r.text);
	expect("pp", "hello", "still", LUTF_STATUS_OK, "hello still");
}

Test(python, redeploy_under_load_fails_no_call)
{
	const char *const ex[] = {"echo=handler:echo", NULL};
	uint64_t sent = 0, ok = 0, id;
	struct fx_res r;

	deploy_ok("pr", "greeter", HANDLER, ex, NULL);
	/* 8 in flight all along, 3 redeploys meanwhile; a second connection
	 * carries the deploys. Bounded: 600 calls, 15 s. */
	for (; sent < 8; sent++)
		cr_assert(fx_send(dfd, sent, "pr", "echo", "x", 0));
	for (int round = 0; round < 3; round++) {
		deploy_ok("pr", "greeter", HANDLER, ex, NULL);
		for (int k = 0; k < 150; k++) {
			cr_assert(fx_recv(dfd, &id, &r, 5000), "no answer");
			cr_assert_eq(r.status, LUTF_STATUS_OK, "call %llu: %u %s",
				     (unsigned long long)id, r.status, r.text);
			ok++;
			cr_assert(fx_send(dfd, sent++, "pr", "echo", "x", 0));
		}
	}
	while (ok < sent) {
		cr_assert(fx_recv(dfd, &id, &r, 5000), "no answer");
		cr_assert_eq(r.status, LUTF_STATUS_OK, "%u %s", r.status, r.text);
		ok++;
	}
}

Test(python, worker_killed_mid_call_answers_and_comes_back)
{
	uint64_t id;
	uint64_t pid = 0;
	struct fx_res r;

	deploy_ok("pk", "greeter", HANDLER, handler_ex, NULL);
	expect("pk", "hello", "x", LUTF_STATUS_OK, NULL);
	cr_assert(td_tenant_counter(cfd, "pk", "worker_pid", &pid) && pid > 1, "no worker pid");
	cr_assert(fx_send(dfd, 1, "pk", "sleep", "2000", 0));
	td_sleep_ms(200);
	kill((pid_t)pid, SIGKILL);
	cr_assert(fx_recv(dfd, &id, &r, 5000), "the call in flight was not answered");
	cr_assert_eq(r.status, LUTF_STATUS_CRASHED, "status %u (%s)", r.status, r.text);
	cr_assert(fx_wait_up(cfd, dfd, "pk", "hello", 5000), "pk did not come back");
}

Test(python, invoked_over_http_like_any_function)
{
	static const char req[] = "POST /fn/ph/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
				  "Connection: close\r\n\r\nweb";
	char http[64], resp[2048];
	size_t got = 0;
	int fd;

	deploy_ok("ph", "greeter", HANDLER, handler_ex, NULL);
	cr_assert(td_addr(&d, "http.addr", http, sizeof(http)), "no http.addr");
	fd = td_connect_tcp(http);
	cr_assert_geq(fd, 0);
	cr_assert(send_raw(fd, req, sizeof(req) - 1));
	for (uint64_t until = td_now_ms() + 10000; got < sizeof(resp) - 1 && td_now_ms() < until;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = read(fd, resp + got, sizeof(resp) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	resp[got] = 0;
	cr_assert(strstr(resp, "HTTP/1.1 200"), "%s", resp);
	cr_assert(strstr(resp, "application/json"), "%s", resp);
	cr_assert(strstr(resp, "{\"msg\": \"hello web\"}"), "%s", resp);
}

Test(python, survives_a_lutfd_restart)
{
	const char *const cfg[] = {"hello", "greeting", "again", NULL};
	struct py_deploy o = {.config = cfg};

	deploy_ok("pre", "greeter", HANDLER, handler_ex, &o);
	expect("pre", "hello", "x", LUTF_STATUS_OK, "again x");
	/* The registry names the stored file; its kind is in its first bytes. */
	close(dfd);
	close(cfd);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	cr_assert(td_start_again(&d), "lutfd did not start again (log in %s)", d.log);
	cfd = td_connect(&d, "control.sock");
	dfd = td_connect(&d, "lutf.sock");
	cr_assert(cfd >= 0 && dfd >= 0);
	cr_assert(fx_wait_up(cfd, dfd, "pre", "hello", 10000), "pre did not come back");
	expect("pre", "hello", "y", LUTF_STATUS_OK, "again y");
}
