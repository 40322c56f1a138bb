/* SPDX-License-Identifier: MIT */
/*
 * lutfctl deploy: options and an optional manifest merged into one DEPLOY on
 * the control socket; prints the invoke URLs and paste-ready invoke lines.
 * Invariant: nothing is sent until the merged request is complete and valid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lutf/client.h>

#include "deploy_spec.h"
#include "lutfctl.h"
#include "output.h"

/* ---- deploy ---- */

static const char deploy_help[] =
    "Usage: lutfctl deploy --tenant T --app A --so FILE --export FN[=SYMBOL]... [OPTIONS]\n"
    "       lutfctl deploy --tenant T --app A --py FILE --export FN[=MODULE:FUNC]... [OPTIONS]\n"
    "       lutfctl deploy --manifest FILE [OPTIONS]\n"
    "\n"
    "Upload an app and export its functions as T/FN.\n"
    "  --tenant T             owner of the app ([a-z0-9][a-z0-9_-]{0,62})\n"
    "  --app A                the app's name\n"
    "  --so FILE              the shared object to upload\n"
    "  --py FILE              a Python app instead: a .py module, or a .zip with the\n"
    "                         app's modules and pure-Python dependencies (zipimport)\n"
    "  --export FN[=SYMBOL]   export SYMBOL (default FN) as function FN; repeatable;\n"
    "                         with --py, SYMBOL is MODULE:FUNC (default: the .py\n"
    "                         file's name without .py, then :FN)\n"
    "  --tier NAME            isolation tier: pure | basic | service | compat\n"
    "  --timeout-ms N         default deadline of each call\n"
    "  --memory-mb N          memory limit of the tenant's worker\n"
    "  --max-concurrency N    calls in flight at once\n"
    "  --workers N            worker processes of tenant T, 1..16 (lutfd spreads calls\n"
    "                         over them; each has its own memory and crashes alone);\n"
    "                         kept until a deploy names another N (default:\n"
    "                         tenant_workers in lutfd.conf)\n"
    "  --config FN.KEY=VALUE  configuration for function FN; repeatable\n"
    "  --public               anyone may invoke the app's functions over TCP and HTTP,\n"
    "                         without an API key (default: a key of tenant T)\n"
    "  --manifest FILE        read the above from an INI file; options win\n"
    "  --replicas N           with --cluster: run on N nodes (rendezvous hashing over\n"
    "                         the live nodes); default every node\n"
    "\n"
    "Manifest format (INI; '#' or ';' start a comment line):\n"
    "  [app]\n"
    "  tenant = acme\n"
    "  name = shop                 ; the app (\"app\" works too)\n"
    "  so = libshop.so             ; relative to the manifest's folder\n"
    "                              ; or py = handler.py (or .zip): a Python app\n"
    "  export = hello              ; repeat: one line per function\n"
    "  export = pi=compute_pi      ; FN=SYMBOL\n"
    "  tier = basic                ; optional, as are the three below\n"
    "  timeout_ms = 1000\n"
    "  memory_mb = 64\n"
    "  max_concurrency = 16\n"
    "  workers = 2                 ; the tenant's worker processes\n"
    "  [config hello]              ; configuration of function hello\n"
    "  greeting = Hello,\n"
    "\n"
    "Prints each function's invoke URL and a ready-to-paste lutfctl invoke line.\n";

static void print_deploy(const struct deploy_spec *s, const struct lutf_client_reply *rep)
{
	const struct lutf_client_deploy *d = &s->d;
	bool custom = strcmp(g.socket, LUTF_CLIENT_DEFAULT_SOCKET) != 0;

	if (g.json) {
		printf("{\"status\":\"ok\",\"tenant\":");
		out_json_str(stdout, d->tenant, strlen(d->tenant));
		printf(",\"app\":");
		out_json_str(stdout, d->app, strlen(d->app));
		printf(",\"version\":%" PRIu64 ",\"urls\":[", rep->version);
		for (size_t i = 0; i < rep->n_urls; i++) {
			if (i)
				putchar(',');
			out_json_str(stdout, rep->urls[i], strlen(rep->urls[i]));
		}
		printf("],\"functions\":[");
		for (size_t i = 0; i < d->n_exports; i++) {
			printf(i ? ",\"" : "\"");
			printf("%s/%s\"", d->tenant,
			       d->exports[i].function); /* names are [a-z0-9_-] */
		}
		printf("]}\n");
		return;
	}
	printf("deployed %s/%s version %" PRIu64 "\n", d->tenant, d->app, rep->version);
	for (size_t i = 0; i < rep->n_urls; i++)
		printf("  %s\n", rep->urls[i]);
	printf("invoke with:\n");
	for (size_t i = 0; i < d->n_exports; i++) {
		printf("  lutfctl ");
		if (custom)
			printf("--socket '%s' ", g.socket);
		printf("invoke %s/%s --data 'hello'\n", d->tenant, d->exports[i].function);
	}
}

/* --py: an export without a symbol runs FN of the module the .py file is.
 * Returns 0, or -EINVAL (a zip: no module to default to) or -ENOMEM. */
static int py_default_symbols(struct deploy_spec *s)
{
	const char *base = strrchr(s->d.so_path, '/');
	char mod[128], sym[256];
	size_t n;

	base = base ? base + 1 : s->d.so_path;
	n = strlen(base);
	if (n < 4 || strcmp(base + n - 3, ".py") || n - 3 >= sizeof(mod))
		mod[0] = 0;
	else
		snprintf(mod, sizeof(mod), "%.*s", (int)(n - 3), base);
	for (size_t i = 0; i < s->d.n_exports; i++) {
		if (s->exports[i].symbol)
			continue;
		if (!mod[0])
			return -EINVAL;
		snprintf(sym, sizeof(sym), "%s:%s", mod, s->exports[i].function);
		s->exports[i].symbol = spec_strdup(s, sym);
		if (!s->exports[i].symbol)
			return -ENOMEM;
	}
	return 0;
}

int cmd_deploy(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"tenant", required_argument, NULL, 't'},
	    {"app", required_argument, NULL, 'a'},
	    {"so", required_argument, NULL, 's'},
	    {"py", required_argument, NULL, 'p'},
	    {"export", required_argument, NULL, 'e'},
	    {"tier", required_argument, NULL, 'T'},
	    {"timeout-ms", required_argument, NULL, 'o'},
	    {"memory-mb", required_argument, NULL, 'm'},
	    {"max-concurrency", required_argument, NULL, 'c'},
	    {"config", required_argument, NULL, 'C'},
	    {"manifest", required_argument, NULL, 'M'},
	    {"public", no_argument, NULL, 'P'},
	    {"workers", required_argument, NULL, 'W'},
	    {"replicas", required_argument, NULL, 'R'},
	    HELP_OPT,
	    {0},
	};
	struct deploy_spec s;
	struct stat st;
	struct lutf_client_reply rep;
	struct lutf_client *c = NULL;
	const char *manifest = NULL;
	char msg[512];
	int opt, code = EXIT_OK, err;

	spec_init(&s);
	while ((opt = sub_getopt(argc, argv, "h", opts)) != -1) {
		const char **str = NULL;
		uint32_t *num = NULL;

		switch (opt) {
		case 't':
			str = &s.d.tenant;
			break;
		case 'a':
			str = &s.d.app;
			break;
		case 's':
			str = &s.d.so_path;
			break;
		case 'p':
			str = &s.d.so_path;
			s.d.kind = "python";
			break;
		case 'T':
			str = &s.d.tier;
			break;
		case 'M':
			manifest = optarg;
			break;
		case 'o':
			num = &s.d.timeout_ms;
			break;
		case 'm':
			num = &s.d.memory_mb;
			break;
		case 'c':
			num = &s.d.max_concurrency;
			break;
		case 'W':
			num = &s.d.workers;
			break;
		case 'e':
			if (spec_add_export(&s, optarg)) {
				code = usage_error("deploy", "bad --export '%s' (FN or FN=SYMBOL)",
						   optarg);
				goto out;
			}
			break;
		case 'C': {
			char *kv = spec_strdup(&s, optarg);
			char *dot = kv ? strchr(kv, '.') : NULL;
			char *eq = dot ? strchr(dot, '=') : NULL;

			if (!eq || dot == kv || eq == dot + 1 ||
			    spec_add_config(&s, (*dot = 0, kv), (*eq = 0, dot + 1), eq + 1)) {
				code = usage_error("deploy", "bad --config '%s' (FN.KEY=VALUE)",
						   optarg);
				goto out;
			}
			break;
		}
		case 'P':
			s.d.is_public = true;
			break;
		case 'R':
			num = &g.cluster_replicas;
			break;
		case 'h':
			fputs(deploy_help, stdout);
			goto out;
		default:
			code = bad_option("deploy", argv);
			goto out;
		}
		if (str)
			*str = spec_strdup(&s, optarg);
		if (num && !parse_u32(optarg, num)) {
			code = usage_error("deploy", "'%s' is not a number", optarg);
			goto out;
		}
		if (opt == 'W' && (s.d.workers < 1 || s.d.workers > 16)) {
			code = usage_error("deploy", "--workers must be 1..16 (got %s)", optarg);
			goto out;
		}
	}
	if (optind < argc) {
		code = usage_error("deploy", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (manifest) {
		err = manifest_load(manifest, &s, msg, sizeof(msg));
		if (err) {
			code = usage_error("deploy", "manifest %s", msg);
			goto out;
		}
	}
	if (g.cluster_replicas && !g.cluster) {
		code = usage_error("deploy", "--replicas needs --cluster");
		goto out;
	}
	if (!s.d.tenant || !s.d.app || !s.d.so_path || !s.d.n_exports) {
		code = usage_error("deploy", "deploy needs a tenant, an app, a .so (or --py) and "
					     "at least one export");
		goto out;
	}
	if (s.d.kind && py_default_symbols(&s)) {
		code = usage_error("deploy", "--export FN with --py needs FN=MODULE:FUNC unless "
					     "the file is MODULE.py");
		goto out;
	}
	if (access(s.d.so_path, R_OK) != 0) {
		fprintf(stderr, "lutfctl: %s: %s\n", s.d.so_path, strerror(errno));
		code = EXIT_LOCAL;
		goto out;
	}
	/* Say the limit before sending, not "Message too long" after. */
	if (!stat(s.d.so_path, &st) && (uint64_t)st.st_size > LUTF_WIRE_MAX_FRAME_DEFAULT) {
		fprintf(stderr,
			"lutfctl: deploy: %s is %.1f MiB; a deploy carries at most %u MiB "
			"(the frame limit, max_frame)\n",
			s.d.so_path, (double)st.st_size / (1 << 20),
			LUTF_WIRE_MAX_FRAME_DEFAULT >> 20);
		code = EXIT_LOCAL;
		goto out;
	}
#ifdef LUTF_HAVE_CLUSTER
	if (g.cluster) {
		code = cluster_deploy(&s.d);
		goto out;
	}
#endif
	code = connect_or_report(g.control, &c);
	if (code)
		goto out;
	err = lutf_client_deploy(c, &s.d, &rep);
	if (err == -EMSGSIZE) {
		fprintf(stderr,
			"lutfctl: deploy: the request (app, exports, config) is over the %u MiB "
			"frame limit (max_frame)\n",
			LUTF_WIRE_MAX_FRAME_DEFAULT >> 20);
		code = EXIT_LOCAL;
		goto out;
	}
	if (err) {
		code = transport_error("deploy", err);
		goto out;
	}
	code = reply_code(&rep);
	if (!code)
		print_deploy(&s, &rep);
	lutf_client_reply_release(&rep);
out:
	lutf_client_close(c);
	spec_free(&s);
	return finish(code);
}
