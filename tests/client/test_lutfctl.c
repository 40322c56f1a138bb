/* SPDX-License-Identifier: MIT */
/*
 * lutfctl, the built binary, run the way a user runs it: against a fake lutfd
 * for invoke, typed failures and control calls, and alone for --help and
 * argument errors (exit 2 with a message). Each run is killed after 10 s.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fake_server.h"

#ifndef LUTFCTL_PATH
#error "LUTFCTL_PATH must name the built lutfctl"
#endif

static struct fake_server srv;
static bool srv_up;

struct run {
	int code; /* exit code, or -1 when killed */
	char out[16384];
	char err[4096];
};

static void read_back(int fd, char *buf, size_t cap)
{
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, cap - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
}

/* Run lutfctl with a NULL-ended list of arguments and optional stdin text. */
static void run(struct run *r, const char *stdin_text, ...)
{
	const char *argv[32] = {"lutfctl"};
	int out = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	int err = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	int in = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	size_t n = 1;
	va_list ap;
	pid_t pid;
	int st;

	cr_assert(out >= 0 && err >= 0 && in >= 0);
	va_start(ap, stdin_text);
	while (n < 31 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	if (stdin_text)
		cr_assert_eq(write(in, stdin_text, strlen(stdin_text)),
			     (ssize_t)strlen(stdin_text));
	lseek(in, 0, SEEK_SET);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		execv(LUTFCTL_PATH, (char *const *)argv);
		_exit(127);
	}
	close(in);
	r->code = -1;
	for (int i = 0; i < 1000; i++) { /* 10 s */
		struct timespec ts = {0, 10 * 1000 * 1000};

		if (waitpid(pid, &st, WNOHANG) == pid) {
			r->code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
			break;
		}
		nanosleep(&ts, NULL);
	}
	if (r->code == -1 && waitpid(pid, &st, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	read_back(out, r->out, sizeof(r->out));
	read_back(err, r->err, sizeof(r->err));
}

/* A COUNTER field as lutfd writes it: "name\0" and a little-endian u64. */
static void put_counter(struct lutf_buf *b, const char *name, uint64_t v)
{
	uint8_t buf[64];
	size_t n = strlen(name);

	memcpy(buf, name, n + 1);
	for (int i = 0; i < 8; i++)
		buf[n + 1 + i] = (uint8_t)(v >> (8 * i));
	lutf_tlv_put(b, LUTF_TAG_COUNTER, buf, n + 9);
}

/* Invoke: echo the input in upper case, or a typed failure by function name.
 * Control: a LIST of one row, STATUS and STATS as lutfd shapes them, OK
 * for everything else. */
static enum fake_action respond(struct fake_server *s, const struct lutf_wire_hdr *h,
				const uint8_t *payload, struct lutf_buf *out)
{
	struct lutf_tlv_iter it;
	struct lutf_tlv f;
	char fn[64] = "";
	const uint8_t *in = NULL;
	uint32_t in_len = 0, st = LUTF_STATUS_OK;
	size_t off, r;

	lutf_tlv_iter_init(&it, payload, h->length);
	while (lutf_tlv_next(&it, &f)) {
		if (f.tag == LUTF_TAG_FUNCTION)
			lutf_tlv_str(&f, fn, sizeof(fn));
		if (f.tag == LUTF_TAG_INPUT) {
			in = f.val;
			in_len = f.len;
		}
	}
	if (strcmp(fn, "missing") == 0)
		st = LUTF_STATUS_UNKNOWN_FUNCTION;
	if (strcmp(fn, "slow") == 0)
		st = LUTF_STATUS_DEADLINE;
	off = fake_reply_begin(out, h, st);
	if (st != LUTF_STATUS_OK) {
		lutf_tlv_put_str(out, LUTF_TAG_ERROR, "no such luck");
	} else if (h->opcode == LUTF_OP_INVOKE) {
		r = lutf_tlv_begin(out, LUTF_TAG_OUTPUT);
		for (uint32_t i = 0; i < in_len; i++) {
			uint8_t c = in[i] >= 'a' && in[i] <= 'z' ? in[i] - 32 : in[i];

			lutf_buf_put(out, &c, 1);
		}
		lutf_tlv_end(out, r);
		lutf_tlv_put_str(out, LUTF_TAG_CONTENT_TYPE, "text/plain");
	} else if (h->opcode == LUTF_OP_LIST) {
		r = lutf_tlv_begin(out, LUTF_TAG_RECORD);
		lutf_tlv_put_str(out, LUTF_TAG_TENANT, "acme");
		lutf_tlv_put_str(out, LUTF_TAG_APP, "shop");
		lutf_tlv_put_str(out, LUTF_TAG_FUNCTION, "hello-world");
		lutf_tlv_put_str(out, LUTF_TAG_STATE, "active");
		lutf_tlv_put_u64(out, LUTF_TAG_VERSION, 12);
		lutf_tlv_put_str(out, LUTF_TAG_TIER, "basic");
		lutf_tlv_end(out, r);
	} else if (h->opcode == LUTF_OP_DEPLOY) {
		lutf_tlv_put_u64(out, LUTF_TAG_VERSION, 4);
		lutf_tlv_put_str(out, LUTF_TAG_URL, "http://127.0.0.1:8080/fn/acme/hello");
	} else if (h->opcode == LUTF_OP_LOGS) {
		lutf_tlv_put_str(out, LUTF_TAG_TEXT, "said \"hi\"\tto\\you");
	} else if (h->opcode == LUTF_OP_STATUS) {
		/* As lutfd: counters, TEXT key=value lines, a record per tenant. */
		put_counter(out, "pid", 42);
		lutf_tlv_put_str(out, LUTF_TAG_TEXT, "ingress=io_uring");
		lutf_tlv_put_str(out, LUTF_TAG_TEXT, "completions=io_uring futex");
		lutf_tlv_put_str(out, LUTF_TAG_TEXT, "a line without a key");
		r = lutf_tlv_begin(out, LUTF_TAG_RECORD);
		lutf_tlv_put_str(out, LUTF_TAG_TENANT, "acme");
		lutf_tlv_put_str(out, LUTF_TAG_TEXT, "watch=bpf");
		put_counter(out, "labors", 8);
		lutf_tlv_end(out, r);
	} else if (h->opcode == LUTF_OP_STATS) {
		/* As lutfd: a status counter only once that status happened. */
		r = lutf_tlv_begin(out, LUTF_TAG_RECORD);
		lutf_tlv_put_str(out, LUTF_TAG_TENANT, "acme");
		lutf_tlv_put_str(out, LUTF_TAG_FUNCTION, "busy");
		put_counter(out, "invocations", 3);
		put_counter(out, "ok", 3);
		lutf_tlv_end(out, r);
		r = lutf_tlv_begin(out, LUTF_TAG_RECORD);
		lutf_tlv_put_str(out, LUTF_TAG_TENANT, "acme");
		lutf_tlv_put_str(out, LUTF_TAG_FUNCTION, "idle");
		put_counter(out, "invocations", 0);
		lutf_tlv_end(out, r);
	}
	lutf_frame_end(out, off);
	return FAKE_SEND;
}

static void start(void)
{
	cr_assert_eq(fake_start(&srv, respond, NULL), 0);
	srv_up = true;
}

static void fini(void)
{
	if (srv_up)
		fake_stop(&srv);
	srv_up = false;
}

TestSuite(lutfctl, .fini = fini, .timeout = 60);

Test(lutfctl, help_prints_the_exit_code_table)
{
	struct run r;

	run(&r, NULL, "--help", NULL);
	cr_assert_eq(r.code, 0);
	cr_assert(strstr(r.out, "24  deadline"), "%s", r.out);
	cr_assert(strstr(r.out, "13  unknown function"));
	run(&r, NULL, "invoke", "--help", NULL);
	cr_assert_eq(r.code, 0);
	cr_assert(strstr(r.out, "Usage: lutfctl invoke"));
	run(&r, NULL, "deploy", "--help", NULL);
	cr_assert(r.code == 0 && strstr(r.out, "[config hello]"));
	const char *cmds[] = {"pause", "resume", "delete", "list", "status", "stats", "logs"};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		run(&r, NULL, cmds[i], "--help", NULL);
		cr_assert_eq(r.code, 0, "%s --help", cmds[i]);
		cr_assert(strstr(r.out, "Usage: lutfctl"), "%s --help", cmds[i]);
	}
}

Test(lutfctl, argument_errors_exit_2_with_a_message)
{
	struct run r;

	run(&r, NULL, NULL);
	cr_assert_eq(r.code, 2);
	cr_assert(strstr(r.err, "no command"));
	run(&r, NULL, "frobnicate", NULL);
	cr_assert(r.code == 2 && strstr(r.err, "unknown command 'frobnicate'"));
	run(&r, NULL, "invoke", "no-slash", NULL);
	cr_assert(r.code == 2 && strstr(r.err, "not TENANT/FUNCTION"), "%s", r.err);
	run(&r, NULL, "invoke", "a/b", "--data", "x", "--data-file", "y", NULL);
	cr_assert(r.code == 2 && strstr(r.err, "one of --data"));
	run(&r, NULL, "invoke", "a/b", "--header", "novalue", NULL);
	cr_assert(r.code == 2 && strstr(r.err, "--header"));
	run(&r, NULL, "--timeout", "abc", "list", NULL);
	cr_assert_eq(r.code, 2);
	run(&r, NULL, "deploy", "--tenant", "acme", NULL);
	cr_assert(r.code == 2 && strstr(r.err, "lutfctl deploy --help"));
	run(&r, NULL, "deploy", "--config", "nodot", NULL);
	cr_assert(r.code == 2 && strstr(r.err, "FN.KEY=VALUE"));
	run(&r, NULL, "pause", NULL);
	cr_assert_eq(r.code, 2);
	run(&r, NULL, "list", "--bogus", NULL);
	cr_assert_eq(r.code, 2);
	run(&r, NULL, "logs", NULL);
	cr_assert(r.code == 2 && strstr(r.err, "needs a tenant"));
}

Test(lutfctl, unreachable_daemon_is_exit_3)
{
	struct run r;

	run(&r, NULL, "--runtime-dir", "/nonexistent/lutf", "list", NULL);
	cr_assert_eq(r.code, 3);
	cr_assert(strstr(r.err, "/nonexistent/lutf/control.sock"), "%s", r.err);
	run(&r, NULL, "--runtime-dir", "/nonexistent/lutf", "invoke", "a/b", NULL);
	cr_assert(r.code == 3 && strstr(r.err, "unix:///nonexistent/lutf/lutf.sock"));
}

Test(lutfctl, invoke_writes_output_and_typed_errors_map_to_exit_codes)
{
	struct run r;

	start();
	run(&r, NULL, "--socket", srv.url, "invoke", "acme/echo", "--data", "hello", "--header",
	    "x-a=b", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "HELLO");
	run(&r, "from stdin", "--socket", srv.url, "invoke", "acme/echo", "-", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "FROM STDIN");
	run(&r, NULL, "--socket", srv.url, "--json", "invoke", "acme/echo", "--data", "q\"x", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "{\"status\":\"ok\",\"code\":0,\"content_type\":\"text/plain\","
				"\"output\":\"Q\\\"X\"}\n");

	run(&r, NULL, "--socket", srv.url, "invoke", "acme/missing", NULL);
	cr_assert_eq(r.code, 10 + LUTF_STATUS_UNKNOWN_FUNCTION);
	cr_assert_str_eq(r.err, "lutfctl: unknown function: no such luck\n");
	run(&r, NULL, "--socket", srv.url, "invoke", "acme/slow", NULL);
	cr_assert_eq(r.code, 24);
	cr_assert(strstr(r.err, "lutfctl: deadline: no such luck"));
}

Test(lutfctl, control_commands_against_the_fake)
{
	struct run r;
	char manifest[256], so[256];
	FILE *f;

	start();
	run(&r, NULL, "--control", srv.path, "list", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "TENANT  APP   FUNCTION     STATE   VERSION  TIER\n"
				"acme    shop  hello-world  active  12       basic\n");
	run(&r, NULL, "--control", srv.path, "--json", "list", NULL);
	cr_assert_str_eq(r.out, "[{\"tenant\":\"acme\",\"app\":\"shop\",\"function\":"
				"\"hello-world\",\"state\":\"active\",\"version\":12,"
				"\"tier\":\"basic\"}]\n");
	run(&r, NULL, "--control", srv.path, "list", "--tenant", "other", NULL);
	cr_assert_str_eq(r.out, "TENANT  APP  FUNCTION  STATE  VERSION  TIER\n");
	run(&r, NULL, "--control", srv.path, "pause", "acme/hello", NULL);
	cr_assert(r.code == 0 && strcmp(r.out, "paused acme/hello\n") == 0);
	run(&r, NULL, "--control", srv.path, "delete", "acme/missing", NULL);
	cr_assert_eq(r.code, 13);
	run(&r, NULL, "--control", srv.path, "--json", "logs", "acme", NULL);
	cr_assert_str_eq(r.out, "[\"said \\\"hi\\\"\\tto\\\\you\"]\n");

	/* deploy from a manifest; options win over it */
	snprintf(so, sizeof(so), "%s/libshop.so", srv.dir);
	f = fopen(so, "w");
	cr_assert(f);
	fputs("\x7f"
	      "ELF fake",
	      f);
	fclose(f);
	snprintf(manifest, sizeof(manifest), "%s/shop.ini", srv.dir);
	f = fopen(manifest, "w");
	cr_assert(f);
	fputs("[app]\ntenant = acme\nname = shop\nso = libshop.so\nexport = hello\n"
	      "tier = basic\n[config hello]\ngreeting = hi\n",
	      f);
	fclose(f);
	run(&r, NULL, "--control", srv.path, "deploy", "--manifest", manifest, "--tier", "pure",
	    NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert(strstr(r.out, "deployed acme/shop version 4"), "%s", r.out);
	cr_assert(strstr(r.out, "http://127.0.0.1:8080/fn/acme/hello"));
	cr_assert(strstr(r.out, "lutfctl invoke acme/hello"));
	{
		struct lutf_wire_hdr h;
		struct lutf_tlv_iter it;
		struct lutf_tlv t;
		uint8_t *p;
		bool tier = false, cfg = false;

		fake_last(&srv, &h, &p);
		cr_assert_eq(h.opcode, LUTF_OP_DEPLOY);
		lutf_tlv_iter_init(&it, p, h.length);
		while (lutf_tlv_next(&it, &t)) {
			if (t.tag == LUTF_TAG_TIER)
				tier = t.len == 4 && memcmp(t.val, "pure", 4) == 0;
			if (t.tag == LUTF_TAG_CONFIG)
				cfg = t.len == 17 && memcmp(t.val, "hello\0greeting\0hi", 17) == 0;
		}
		free(p);
		cr_assert(tier, "the --tier option wins over the manifest");
		cr_assert(cfg);
	}
	unlink(so);
	unlink(manifest);
}

/* STATUS's TEXT lines show under their own keys (ingress, watch), not as
 * "text"; STATS shows 0, not "-", for a status that never happened. */
Test(lutfctl, status_keys_and_stats_zeros)
{
	struct run r;

	start();
	run(&r, NULL, "--control", srv.path, "status", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "pid          42\n"
				"ingress      io_uring\n"
				"completions  io_uring futex\n"
				"text         a line without a key\n"
				"\n"
				"tenant  acme\n"
				"watch   bpf\n"
				"labors  8\n");
	run(&r, NULL, "--control", srv.path, "--json", "status", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "[{\"pid\":42,\"ingress\":\"io_uring\",\"completions\":"
				"\"io_uring futex\",\"text\":\"a line without a key\"},"
				"{\"tenant\":\"acme\",\"watch\":\"bpf\",\"labors\":8}]\n");
	run(&r, NULL, "--control", srv.path, "stats", NULL);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "TENANT  FUNCTION  INVOCATIONS  OK\n"
				"acme    busy      3            3\n"
				"acme    idle      0            0\n");
}
