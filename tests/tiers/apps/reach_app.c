/* SPDX-License-Identifier: MIT */
/*
 * The reach tests' app (issue 12.3): a function that tries to call lutfd
 * itself. dial's input is "HOST:PORT[ KEY]" (TCP) or "unix:PATH"; it
 * connects, sends an HTTP request for another tenant's function (with KEY as
 * its bearer token when given), and answers
 * "connect: <error>" or "reply: <the first bytes read>" (non-printable bytes
 * shown as '.').
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <lutf/function.h>

LUTF_APP_ABI;

LUTF_FUNCTION(echo)
{
	return lutf_write(call, call->input, call->input_len);
}

LUTF_FUNCTION(dial)
{
	char in[200], out[400], buf[300], req[400], *key;
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int fd, n = 0;

	if (call->input_len >= sizeof(in))
		return lutf_fail(call, "input too long"), 1;
	memcpy(in, call->input, call->input_len);
	in[call->input_len] = 0;
	key = strchr(in, ' ');
	if (key)
		*key++ = 0;
	snprintf(req, sizeof(req),
		 "POST /fn/victim/echo HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: 2\r\n\r\nhi",
		 key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "");
	if (!strncmp(in, "unix:", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		un->sun_family = AF_UNIX;
		if (strlen(in + 5) >= sizeof(un->sun_path))
			return lutf_fail(call, "path too long"), 1;
		memcpy(un->sun_path, in + 5, strlen(in + 5) + 1);
		sl = sizeof(*un);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		char *colon = strrchr(in, ':');

		if (!colon)
			return lutf_fail(call, "want HOST:PORT"), 1;
		*colon = 0;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, in, &sin->sin_addr) != 1)
			return lutf_fail(call, "bad host"), 1;
		sl = sizeof(*sin);
		fd = socket(AF_INET, SOCK_STREAM, 0);
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl)) {
		n = snprintf(out, sizeof(out), "connect: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return lutf_write(call, out, (size_t)n);
	}
	if (write(fd, req, strlen(req)) < 0) {
		/* lutfd may have refused and closed already: read what it said */
	}
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	for (int i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			buf[i] = '.';
	buf[n] = 0;
	n = snprintf(out, sizeof(out), "reply: %s", buf);
	return lutf_write(call, out, (size_t)n);
}
