/* SPDX-License-Identifier: MIT */
/*
 * client_hello: call a function deployed on lutfd through liblutf-client and
 * print its output. Typed failures (unknown function, deadline, ...) come back
 * as a status, transport failures as -errno. Usage:
 *   client_hello [TENANT/FUNCTION [INPUT [SOCKET_URL]]]   (default demo/hello)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/client.h>

int main(int argc, char **argv)
{
	const char *target = argc > 1 ? argv[1] : "demo/hello";
	const char *input = argc > 2 ? argv[2] : "world";
	const char *url = argc > 3 ? argv[3] : LUTF_CLIENT_DEFAULT_SOCKET;
	static const struct lutf_client_header hdrs[] = {{"x-example", "client_hello"}};
	struct lutf_client_request req = {
	    .input = input,
	    .input_len = strlen(input),
	    .content_type = "text/plain",
	    .headers = hdrs,
	    .n_headers = 1,
	    .timeout_ms = 1000, /* lutfd answers "deadline" after 1 s */
	};
	struct lutf_client_result res;
	struct lutf_client *c;
	char tenant[64], *fn;
	int err, code;

	if (strlen(target) >= sizeof(tenant) || !strchr(target, '/')) {
		fprintf(stderr, "usage: client_hello [TENANT/FUNCTION [INPUT [SOCKET_URL]]]\n");
		return 2;
	}
	strcpy(tenant, target);
	fn = strchr(tenant, '/');
	*fn++ = 0;

	err = lutf_client_connect(url, &c);
	if (err) {
		fprintf(stderr, "client_hello: connect %s: %s\n", url, strerror(-err));
		return 3;
	}
	err = lutf_client_invoke(c, tenant, fn, &req, &res);
	if (err) {
		/* -ETIMEDOUT, -EPROTO, -ECONNRESET ...: the handle is now poisoned */
		fprintf(stderr, "client_hello: invoke: %s\n", strerror(-err));
		lutf_client_close(c);
		return 3;
	}
	if (res.status == LUTF_STATUS_OK) {
		fwrite(res.output, 1, res.output_len, stdout);
		putchar('\n');
		code = 0;
	} else {
		fprintf(stderr, "client_hello: %s (HTTP %d): %s\n", lutf_status_str(res.status),
			lutf_status_http(res.status), res.error ? res.error : "-");
		code = 10 + (int)res.status;
	}
	lutf_client_result_release(&res);
	lutf_client_close(c);
	return code;
}
