/* SPDX-License-Identifier: MIT */
/*
 * lutfctl invoke: one INVOKE on the data socket; output bytes go to stdout
 * unchanged, a typed failure to stderr and the exit code. Invariant: input is
 * read whole before connecting, so a slow stdin never holds a connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lutf/client.h>

#include "lutfctl.h"
#include "output.h"

/* ---- invoke ---- */

static const char invoke_help[] =
    "Usage: lutfctl invoke TENANT/FUNCTION [--data STRING | --data-file FILE | -]\n"
    "                      [--content-type CT] [--header NAME=VALUE]... [--key KEY]\n"
    "                      [--endpoint URL]\n"
    "\n"
    "Call the function once. Input: STRING, the bytes of FILE, or stdin for '-'\n"
    "(or --data-file -); none at all sends empty input. The output bytes go to\n"
    "stdout as they are; with --json, one object with status, content_type and\n"
    "output (a string when the output is UTF-8, else output_base64).\n"
    "A non-ok status prints 'lutfctl: <status>: <error>' to stderr and exits 10+N\n"
    "(see lutfctl --help). --timeout MS (global) sets the call's deadline.\n"
    "--key KEY (or the environment variable LUTF_KEY) is sent as the API key\n"
    "that lutfd requires over TCP (lutfctl key create TENANT makes one).\n"
    "--endpoint URL (the same as the global --socket) calls unix:///PATH,\n"
    "tcp://HOST:PORT, or a cluster's NATS: nats://HOST:PORT[,HOST:PORT...]\n"
    "(any node serving the function answers; request headers are not sent).\n"
    "--async (with --cluster) stores the call in the cluster's work queue and\n"
    "prints its id at once; --id ID names it (a resubmission of the same id\n"
    "within 2 minutes is not run twice); 'lutfctl result ID' fetches the result.\n";

/* Read all of f into a malloc'ed buffer. Returns 0 or -errno. */
static int slurp(FILE *f, char **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (n < cap) {
			if (ferror(f)) {
				free(buf);
				return -EIO;
			}
			if (feof(f))
				break;
			continue;
		}
		if (cap >= LUTF_WIRE_MAX_FRAME_DEFAULT * 4u) {
			free(buf);
			return -EFBIG;
		}
		char *p = realloc(buf, cap * 2);

		if (!p) {
			free(buf);
			return -ENOMEM;
		}
		buf = p;
		cap *= 2;
	}
	*out = buf;
	*len = n;
	return 0;
}

static void print_invoke_json(const struct lutf_client_result *res)
{
	printf("{\"status\":\"ok\",\"code\":0,\"content_type\":");
	if (res->content_type)
		out_json_str(stdout, res->content_type, strlen(res->content_type));
	else
		fputs("null", stdout);
	if (!res->output_len || out_utf8_valid(res->output, res->output_len)) {
		printf(",\"output\":");
		out_json_str(stdout, res->output ? res->output : "", res->output_len);
	} else {
		printf(",\"output_base64\":");
		out_json_base64(stdout, res->output, res->output_len);
	}
	printf("}\n");
}

int cmd_invoke(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"data", required_argument, NULL, 'd'},
	    {"data-file", required_argument, NULL, 'f'},
	    {"content-type", required_argument, NULL, 'c'},
	    {"header", required_argument, NULL, 'H'},
	    {"key", required_argument, NULL, 'k'},
	    {"async", no_argument, NULL, 'A'},
	    {"id", required_argument, NULL, 'I'},
	    {"endpoint", required_argument, NULL, 'E'},
	    HELP_OPT,
	    {0},
	};
	struct lutf_client_request req = {0};
	struct lutf_client_result res;
	struct lutf_client_header *hdrs = NULL;
	struct lutf_client *c = NULL;
	const char *data = NULL, *file = NULL, *target = NULL, *key = NULL, *id = NULL;
	bool async = false;
	char tenant[128], fn[128], *input = NULL;
	size_t input_len = 0;
	int opt, code = EXIT_OK, err, sources = 0;

	hdrs = calloc((size_t)argc, sizeof(*hdrs)); /* at most one header per argument */
	if (!hdrs)
		return EXIT_LOCAL;
	while ((opt = sub_getopt(argc, argv, "-h", opts)) != -1) {
		switch (opt) {
		case 1: /* a positional argument, in order ("-" reads stdin) */
			if (strcmp(optarg, "-") == 0) {
				file = "-";
				sources++;
			} else if (!target) {
				target = optarg;
			} else {
				code = usage_error("invoke", "unexpected argument '%s'", optarg);
				goto out;
			}
			break;
		case 'd':
			data = optarg;
			sources++;
			break;
		case 'f':
			file = optarg;
			sources++;
			break;
		case 'c':
			req.content_type = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'A':
			async = true;
			break;
		case 'I':
			id = optarg;
			break;
		case 'E':
			g.socket = optarg;
			break;
		case 'H': {
			char *eq = strchr(optarg, '=');

			if (!eq || eq == optarg) {
				code =
				    usage_error("invoke", "bad --header '%s' (NAME=VALUE)", optarg);
				goto out;
			}
			*eq = 0;
			hdrs[req.n_headers++] =
			    (struct lutf_client_header){.name = optarg, .value = eq + 1};
			break;
		}
		case 'h':
			fputs(invoke_help, stdout);
			goto out;
		default:
			code = bad_option("invoke", argv);
			goto out;
		}
	}
	if (!target) {
		code = usage_error("invoke", "invoke needs TENANT/FUNCTION");
		goto out;
	}
	if (!split_target(target, tenant, fn, sizeof(tenant))) {
		code = usage_error("invoke", "'%s' is not TENANT/FUNCTION", target);
		goto out;
	}
	if (sources > 1) {
		code = usage_error("invoke", "give one of --data, --data-file or -");
		goto out;
	}
	if (file) {
		FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");

		err = f ? slurp(f, &input, &input_len) : -errno;
		if (f && f != stdin)
			fclose(f);
		if (err) {
			fprintf(stderr, "lutfctl: %s: %s\n", strcmp(file, "-") ? file : "stdin",
				strerror(-err));
			code = EXIT_LOCAL;
			goto out;
		}
		req.input = input;
		req.input_len = input_len;
	} else if (data) {
		req.input = data;
		req.input_len = strlen(data);
	}
	if (async || id) {
#ifdef LUTF_HAVE_CLUSTER
		if (g.cluster && async) {
			code = cluster_invoke_async(tenant, fn, req.input, req.input_len, id);
			goto out;
		}
#endif
		code = usage_error("invoke", "--async and --id need --cluster nats://...");
		goto out;
	}
	req.headers = hdrs;
	req.timeout_ms = g.timeout_ms;
	code = connect_or_report(g.socket, &c);
	if (code)
		goto out;
	if (key && lutf_client_set_key(c, key)) { /* else $LUTF_KEY, taken by the library */
		code = usage_error("invoke", "--key is %d bytes or longer", LUTF_CLIENT_KEY_MAX);
		goto out;
	}
	err = lutf_client_invoke(c, tenant, fn, &req, &res);
	if (err) {
		code = transport_error("invoke", err);
		goto out;
	}
	if (res.status != LUTF_STATUS_OK) {
		code = status_error(res.status, res.detail, res.error);
	} else if (g.json) {
		print_invoke_json(&res);
	} else if (res.output_len) {
		fwrite(res.output, 1, res.output_len, stdout);
	}
	lutf_client_result_release(&res);
out:
	lutf_client_close(c);
	free(input);
	free(hdrs);
	return finish(code);
}
