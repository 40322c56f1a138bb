/* SPDX-License-Identifier: MIT */
/*
 * lutfctl: the command line for lutfd. Each subcommand is one library call on
 * one connection (invoke on the data socket, everything else on the control
 * socket). Invariant: the exit code alone tells a script what happened, by the
 * fixed table in usage_main (0 ok, 1 local, 2 usage, 3 transport, 4 pending and
 * 5 no such call for 'result', 10+status).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lutf/client.h>

#include "lutfctl.h"
#include "output.h"

struct lutfctl_global g = {
    .socket = LUTF_CLIENT_DEFAULT_SOCKET,
    .control = LUTF_CLIENT_DEFAULT_CONTROL,
};

static void usage_main(FILE *f)
{
	fprintf(f,
		"Usage: lutfctl [GLOBAL OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  deploy    upload an app (.so) and export its functions\n"
		"  invoke    call TENANT/FUNCTION with input bytes; output goes to stdout\n"
		"  pause     hold new calls of TENANT/FUNCTION\n"
		"  resume    release held calls of TENANT/FUNCTION\n"
		"  delete    remove TENANT/FUNCTION, or TENANT (--force: and its functions)\n"
		"  list      list deployed functions\n"
		"  status    show lutfd's status (watch mode, counters)\n"
		"  stats     show per-function counters\n"
		"  logs      show recent function log lines and output\n"
		"  key       create, list and revoke API keys (TCP and HTTP invocations)\n"
		"  cluster   'cluster status': nodes and convergence (needs --cluster)\n"
		"  result    the result of an async call: result ID (needs --cluster)\n"
		"Run 'lutfctl COMMAND --help' for a command's options.\n"
		"\n"
		"Global options:\n"
		"  --socket URL       data socket (default %s), or nats://HOST:PORT[,...]:\n"
		"                     invoke through a cluster's NATS (docs/client.md)\n"
		"  --endpoint URL     the same as --socket\n"
		"  --control PATH     control socket (default %s)\n"
		"  --runtime-dir DIR  use DIR/lutf.sock and DIR/control.sock\n"
		"  --json             machine-readable output on stdout\n"
		"  --timeout MS       invoke: the call's deadline; others: how long to wait\n"
		"  --cluster URL      nats://HOST:PORT[,...]: deploy, pause, resume, delete\n"
		"                     and list act on the cluster registry, key on the\n"
		"                     cluster's keys (every node; docs/cluster.md)\n"
		"  --cluster-creds F  NATS credentials file (token: $LUTF_CLUSTER_TOKEN)\n"
		"  -h, --help         this text\n"
		"\n"
		"Exit codes:\n"
		"  0   ok\n"
		"  1   local error (reading a file, writing output)\n"
		"  2   usage error (bad option, argument or manifest)\n"
		"  3   transport error (cannot connect, no reply in time, protocol error)\n"
		"  4   result: the async call is not done yet (queued, running or retrying)\n"
		"  5   result: no such call (unknown id, or its result expired)\n"
		"  10+N  lutfd answered with typed status N:\n",
		LUTF_CLIENT_DEFAULT_SOCKET, LUTF_CLIENT_DEFAULT_CONTROL);
	for (uint32_t s = 1; s < LUTF_STATUS__COUNT; s++)
		fprintf(f, "      %-3u %s (HTTP %d)\n", EXIT_STATUS + s, lutf_status_str(s),
			lutf_status_http(s));
}

int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("lutfctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "\nTry 'lutfctl %s --help'.\n", cmd);
	else
		fputs("\nTry 'lutfctl --help'.\n", stderr);
	return EXIT_USAGE;
}

/* getopt found an unknown option or a missing value (opterr is 0: we say it). */
int bad_option(const char *cmd, char **argv)
{
	const char *arg = argv[optind - 1];

	if (!cmd)
		return usage_error(NULL, "unknown option or missing value: '%s'", arg);
	return usage_error(cmd,
			   "%s: unknown option or missing value: '%s' (global options go "
			   "before the command)",
			   cmd, arg);
}

/* Parse a decimal u32 option value. */
bool parse_u32(const char *v, uint32_t *out)
{
	char *end;
	unsigned long long n;

	if (!v || !*v || *v == '-')
		return false;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n > UINT32_MAX)
		return false;
	*out = (uint32_t)n;
	return true;
}

/* Split "tenant/function" into the two buffers; false when malformed. */
bool split_target(const char *arg, char *tenant, char *fn, size_t cap)
{
	const char *slash = arg ? strchr(arg, '/') : NULL;
	size_t tl;

	if (!slash || slash == arg || !slash[1] || strchr(slash + 1, '/'))
		return false;
	tl = (size_t)(slash - arg);
	if (tl >= cap || strlen(slash + 1) >= cap)
		return false;
	memcpy(tenant, arg, tl);
	tenant[tl] = 0;
	strcpy(fn, slash + 1);
	return true;
}

int connect_or_report(const char *url, struct lutf_client **c)
{
	int err = lutf_client_connect(url, c);

	if (err == -EINVAL)
		return usage_error(NULL,
				   "bad endpoint '%s': want unix:///PATH, tcp://HOST:PORT or "
				   "nats://HOST:PORT[,HOST:PORT...]",
				   url);
	if (err == -EPROTONOSUPPORT)
		return usage_error(NULL, "%s: this lutfctl was built without nats:// support",
				   url);
	if (err) {
		fprintf(stderr, "lutfctl: cannot connect to %s: %s%s\n", url, strerror(-err),
			err == -ENOENT || err == -ECONNREFUSED ? " (is lutfd running?)" : "");
		return EXIT_TRANSPORT;
	}
	if (g.timeout_ms)
		lutf_client_set_timeout(*c, g.timeout_ms, LUTF_CLIENT_DEFAULT_GRACE_MS);
	return EXIT_OK;
}

int transport_error(const char *what, int err)
{
	if (err == -EINVAL)
		return usage_error(
		    what, "%s: invalid argument (names are [a-z0-9][a-z0-9_-]{0,62})", what);
	fprintf(stderr, "lutfctl: %s: %s\n", what, strerror(-err));
	return err == -ENOMEM ? EXIT_LOCAL : EXIT_TRANSPORT;
}

/* Report a typed non-OK status; returns its exit code. */
int status_error(uint32_t status, uint32_t detail, const char *error)
{
	fprintf(stderr, "lutfctl: %s: ", lutf_status_str(status));
	out_text(stderr, error ? error : "-"); /* lutfd's text may carry a tenant's */
	if (detail)
		fprintf(stderr, " (detail %" PRIu32 ")", detail);
	fputc('\n', stderr);
	if (g.json) {
		printf("{\"status\":");
		out_json_str(stdout, lutf_status_str(status), strlen(lutf_status_str(status)));
		printf(",\"code\":%" PRIu32 ",\"http\":%d,\"detail\":%" PRIu32 ",\"error\":",
		       status, lutf_status_http(status), detail);
		if (error)
			out_json_str(stdout, error, strlen(error));
		else
			fputs("null", stdout);
		fputs("}\n", stdout);
	}
	return status < 256 - EXIT_STATUS ? EXIT_STATUS + (int)status : 255;
}

/* Exit code of a finished control call; prints the typed error if any. */
int reply_code(const struct lutf_client_reply *rep)
{
	if (rep->status != LUTF_STATUS_OK)
		return status_error(rep->status, rep->detail, rep->error);
	return EXIT_OK;
}

/* Flush stdout; a failed write (full disk, closed pipe) is a local error. */
int finish(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "lutfctl: writing output: %s\n", strerror(errno));
		return code ? code : EXIT_LOCAL;
	}
	return code;
}

/* getopt_long over a subcommand's arguments (argv[0] is the command). */
int sub_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	return getopt_long(argc, argv, shortopts, longopts, NULL);
}

/* ---- pause / resume / delete ---- */

typedef int (*fn_call_t)(struct lutf_client *, const char *, const char *,
			 struct lutf_client_reply *);

static int cmd_fn(int argc, char **argv, fn_call_t call, const char *done)
{
	static const struct option opts[] = {HELP_OPT, {0}};
	const char *cmd = argv[0];
	struct lutf_client_reply rep;
	struct lutf_client *c;
	char tenant[128], fn[128];
	int opt, code, err;

	while ((opt = sub_getopt(argc, argv, "h", opts)) != -1) {
		if (opt != 'h')
			return bad_option(cmd, argv);
		printf("Usage: lutfctl %s TENANT/FUNCTION\n\n"
		       "%s the function. Calls held by pause run on resume; delete answers\n"
		       "held calls with 'deleted'.\n",
		       cmd,
		       cmd[0] == 'p'   ? "Pause"
		       : cmd[0] == 'r' ? "Resume"
				       : "Delete");
		return finish(EXIT_OK);
	}
	if (optind + 1 != argc)
		return usage_error(cmd, "%s takes one TENANT/FUNCTION", cmd);
	if (!split_target(argv[optind], tenant, fn, sizeof(tenant)))
		return usage_error(cmd, "'%s' is not TENANT/FUNCTION", argv[optind]);
#ifdef LUTF_HAVE_CLUSTER
	if (g.cluster)
		return cluster_fn(cmd, tenant, fn);
#endif
	code = connect_or_report(g.control, &c);
	if (code)
		return code;
	err = call(c, tenant, fn, &rep);
	lutf_client_close(c);
	if (err)
		return transport_error(cmd, err);
	code = reply_code(&rep);
	if (!code) {
		if (g.json)
			printf("{\"status\":\"ok\",\"function\":\"%s/%s\"}\n", tenant, fn);
		else
			printf("%s %s/%s\n", done, tenant, fn);
	}
	lutf_client_reply_release(&rep);
	return finish(code);
}

/* lutfctl delete TENANT [--force]: the tenant and all it holds. */
static int cmd_delete_tenant(int argc, char **argv)
{
	static const struct option opts[] = {HELP_OPT, {"force", no_argument, NULL, 'f'}, {0}};
	struct lutf_client_reply rep;
	struct lutf_client *c;
	bool force = false;
	int opt, code, err;
	const char *tenant;

	while ((opt = sub_getopt(argc, argv, "hf", opts)) != -1) {
		if (opt == 'f') {
			force = true;
			continue;
		}
		if (opt != 'h')
			return bad_option("delete", argv);
		printf("Usage: lutfctl delete TENANT/FUNCTION\n"
		       "       lutfctl delete [--force] TENANT\n\n"
		       "Delete a function (held calls are answered 'deleted'), or remove a\n"
		       "tenant: its worker stops and its uid, cgroup, region, app files and\n"
		       "scratch folder are freed. A tenant with functions is refused unless\n"
		       "--force, which deletes them first. A tenant whose last function is\n"
		       "deleted keeps no worker. Acknowledged once the registry is saved.\n");
		return finish(EXIT_OK);
	}
	if (optind + 1 != argc)
		return usage_error("delete", "delete takes one TENANT/FUNCTION or TENANT");
	tenant = argv[optind];
	code = connect_or_report(g.control, &c);
	if (code)
		return code;
	err = lutf_client_delete_tenant(c, tenant, force, &rep);
	lutf_client_close(c);
	if (err)
		return transport_error("delete", err);
	code = reply_code(&rep);
	if (!code) {
		if (g.json)
			printf("{\"status\":\"ok\",\"tenant\":\"%s\"}\n", tenant);
		else
			printf("removed tenant %s\n", tenant);
	}
	lutf_client_reply_release(&rep);
	return finish(code);
}

/* delete TENANT/FUNCTION, or TENANT (no slash among the operands). */
static int cmd_delete(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (argv[i][0] != '-' && strchr(argv[i], '/'))
			return cmd_fn(argc, argv, lutf_client_delete, "deleted");
	return cmd_delete_tenant(argc, argv);
}

/* ---- list / status / stats / logs ---- */

static bool keep_tenant(const struct lutf_client_record *rec, const void *arg)
{
	const struct lutf_client_field *f = lutf_client_record_get(rec, "tenant");

	return !arg || (f && f->type == LUTF_CLIENT_STR && strcmp(f->str, arg) == 0);
}

enum rows_kind { ROWS_LIST, ROWS_STATUS, ROWS_STATS, ROWS_LOGS };

static void print_rows(enum rows_kind kind, const struct lutf_client_reply *rep, const char *tenant)
{
	static const char *const list_cols[] = {"tenant",  "app",  "function", "state",
						"version", "tier", NULL};
	static const char *const stats_cols[] = {"tenant", "function", NULL};
	const struct lutf_client_record *r = rep->records;
	size_t n = rep->n_records;

	if (g.json) {
		if (kind != ROWS_LOGS) {
			out_json_records(stdout, r, n, tenant ? keep_tenant : NULL, tenant);
			putchar('\n');
			return;
		}
		/* logs: one array of lines */
		putchar('[');
		for (size_t i = 0, m = 0; i < n; i++)
			for (size_t k = 0; k < r[i].n_fields; k++) {
				if (strcmp(r[i].fields[k].key, "text") != 0 || !r[i].fields[k].str)
					continue;
				if (m++)
					putchar(',');
				out_json_str(stdout, r[i].fields[k].str,
					     strlen(r[i].fields[k].str));
			}
		puts("]");
		return;
	}
	switch (kind) {
	case ROWS_LIST:
		out_table(stdout, r, n, list_cols, tenant ? keep_tenant : NULL, tenant);
		break;
	case ROWS_STATS:
		out_table(stdout, r, n, stats_cols, tenant ? keep_tenant : NULL, tenant);
		break;
	case ROWS_STATUS:
		out_blocks(stdout, r, n);
		break;
	case ROWS_LOGS:
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < r[i].n_fields; k++)
				if (strcmp(r[i].fields[k].key, "text") == 0 && r[i].fields[k].str) {
					out_text(stdout, r[i].fields[k].str);
					putchar('\n');
				}
		break;
	}
}

static int cmd_rows(int argc, char **argv, enum rows_kind kind)
{
	static const struct option opts[] = {
	    {"tenant", required_argument, NULL, 't'},
	    {"limit", required_argument, NULL, 'l'},
	    HELP_OPT,
	    {0},
	};
	const char *cmd = argv[0], *tenant = NULL;
	struct lutf_client_reply rep;
	struct lutf_client *c;
	uint32_t limit = 0;
	int opt, code, err;

	while ((opt = sub_getopt(argc, argv, "h", opts)) != -1) {
		switch (opt) {
		case 't':
			tenant = optarg;
			break;
		case 'l':
			if (kind != ROWS_LOGS || !parse_u32(optarg, &limit))
				return usage_error(cmd, "bad --limit");
			break;
		case 'h':
			if (kind == ROWS_LOGS)
				printf(
				    "Usage: lutfctl logs [--tenant] T [--limit N]\n\n"
				    "Print the last N (default: lutfd's) log lines of tenant T's\n"
				    "functions, oldest first: their lutf_log lines (\"app/fn: ...\")\n"
				    "and what they print (\"[output] ...\"). Control characters and\n"
				    "escape sequences are shown escaped (\\x1b).\n");
			else if (kind == ROWS_STATUS)
				printf("Usage: lutfctl status\n\n"
				       "Print lutfd's status: watch mode, counters, limits.\n");
			else
				printf("Usage: lutfctl %s [--tenant T]\n\n"
				       "Print a table of %s, one row per function (of tenant T).\n",
				       cmd, kind == ROWS_LIST ? "deployed functions" : "counters");
			return finish(EXIT_OK);
		default:
			return bad_option(cmd, argv);
		}
	}
	if (kind == ROWS_LOGS && !tenant && optind < argc)
		tenant = argv[optind++];
	if (optind < argc)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (tenant && (kind == ROWS_STATUS))
		return usage_error(cmd, "status takes no --tenant");
	if (!tenant && kind == ROWS_LOGS)
		return usage_error(cmd, "logs needs a tenant");
#ifdef LUTF_HAVE_CLUSTER
	if (g.cluster && kind == ROWS_LIST)
		return cluster_list(tenant);
#endif
	code = connect_or_report(g.control, &c);
	if (code)
		return code;
	switch (kind) {
	case ROWS_LIST:
		err = lutf_client_list(c, tenant, &rep);
		break;
	case ROWS_STATUS:
		err = lutf_client_status(c, &rep);
		break;
	case ROWS_STATS:
		err = lutf_client_stats(c, tenant, &rep);
		break;
	default:
		err = lutf_client_logs(c, tenant, limit, &rep);
		break;
	}
	lutf_client_close(c);
	if (err)
		return transport_error(cmd, err);
	code = reply_code(&rep);
	if (!code)
		print_rows(kind, &rep, kind == ROWS_LOGS ? NULL : tenant);
	lutf_client_reply_release(&rep);
	return finish(code);
}

/* ---- main ---- */

/*
 * Make a socket path absolute (the library takes absolute paths only), into
 * buf with prefix ("unix://" or ""). URLs with a scheme pass through.
 */
static int absolute(const char *path, const char *prefix, const char *suffix, char *buf, size_t cap,
		    const char **out)
{
	char cwd[4096];
	int n;

	if (strstr(path, "://")) {
		*out = path;
		return 0;
	}
	if (path[0] == '/')
		n = snprintf(buf, cap, "%s%s%s", prefix, path, suffix);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(buf, cap, "%s%s/%s%s", prefix, cwd, path, suffix);
	else
		return -errno;
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	*out = buf;
	return 0;
}

static int set_runtime_dir(const char *dir)
{
	if (strstr(dir, "://"))
		return -EINVAL;
	if (absolute(dir, "unix://", "/lutf.sock", g.socket_buf, sizeof(g.socket_buf), &g.socket))
		return -ENAMETOOLONG;
	if (absolute(dir, "", "/control.sock", g.control_buf, sizeof(g.control_buf), &g.control))
		return -ENAMETOOLONG;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"endpoint", required_argument, NULL, 's'},
	    {"control", required_argument, NULL, 'c'},
	    {"runtime-dir", required_argument, NULL, 'r'},
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},
	    {"cluster", required_argument, NULL, 'C'},
	    {"cluster-creds", required_argument, NULL, 'K'},
	    HELP_OPT,
	    {0},
	};
	const char *cmd;
	int opt;

	opterr = 0; /* bad_option reports, naming the command */
	/* '+': stop at the command; its own options are parsed after it */
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			g.socket = optarg;
			break;
		case 'c':
			if (absolute(optarg, "", "", g.control_buf, sizeof(g.control_buf),
				     &g.control))
				return usage_error(NULL, "--control path too long");
			break;
		case 'r':
			if (set_runtime_dir(optarg))
				return usage_error(NULL, "--runtime-dir wants a folder");
			break;
		case 'j':
			g.json = true;
			break;
		case 't':
			if (!parse_u32(optarg, &g.timeout_ms) || !g.timeout_ms)
				return usage_error(NULL, "--timeout wants milliseconds > 0");
			break;
		case 'C':
		case 'K':
#ifndef LUTF_HAVE_CLUSTER
			return usage_error(NULL, "this lutfctl was built without libnats: no "
						 "cluster mode");
#endif
			*(opt == 'C' ? &g.cluster : &g.cluster_creds) = optarg;
			break;
		case 'h':
			usage_main(stdout);
			return finish(EXIT_OK);
		default:
			return bad_option(NULL, argv);
		}
	}
	if (optind >= argc)
		return usage_error(NULL, "no command given");
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 0; /* glibc: 0 re-initialises getopt for the subcommand */
	if (strcmp(cmd, "help") == 0) {
		usage_main(stdout);
		return finish(EXIT_OK);
	}
	if (strcmp(cmd, "deploy") == 0)
		return cmd_deploy(argc, argv);
	if (strcmp(cmd, "invoke") == 0)
		return cmd_invoke(argc, argv);
	if (strcmp(cmd, "key") == 0)
		return cmd_key(argc, argv);
	if (strcmp(cmd, "pause") == 0)
		return cmd_fn(argc, argv, lutf_client_pause, "paused");
	if (strcmp(cmd, "resume") == 0)
		return cmd_fn(argc, argv, lutf_client_resume, "resumed");
	if (strcmp(cmd, "delete") == 0)
		return cmd_delete(argc, argv);
#ifdef LUTF_HAVE_CLUSTER
	if (strcmp(cmd, "cluster") == 0)
		return cmd_cluster(argc, argv);
	if (strcmp(cmd, "result") == 0)
		return cmd_result(argc, argv);
#endif
	if (strcmp(cmd, "list") == 0)
		return cmd_rows(argc, argv, ROWS_LIST);
	if (strcmp(cmd, "status") == 0)
		return cmd_rows(argc, argv, ROWS_STATUS);
	if (strcmp(cmd, "stats") == 0)
		return cmd_rows(argc, argv, ROWS_STATS);
	if (strcmp(cmd, "logs") == 0)
		return cmd_rows(argc, argv, ROWS_LOGS);
	return usage_error(NULL, "unknown command '%s'", cmd);
}
