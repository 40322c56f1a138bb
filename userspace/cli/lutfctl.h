/* SPDX-License-Identifier: MIT */
/*
 * lutfctl internals shared by its command files: global options, exit codes
 * and the reporting helpers that turn library results into those codes.
 */
#ifndef LUTFCTL_H
#define LUTFCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lutf/client.h>

enum {
	EXIT_OK = 0,
	EXIT_LOCAL = 1,	    /* a local file could not be read or output written */
	EXIT_USAGE = 2,	    /* bad command line or manifest */
	EXIT_TRANSPORT = 3, /* lutfd unreachable, timed out, or broke the protocol */
	EXIT_PENDING = 4,   /* result: the async call is not done yet (queued, running, retrying) */
	EXIT_NO_RESULT = 5, /* result: no such call (unknown id, or its result expired) */
	EXIT_STATUS = 10,   /* + enum lutf_status: lutfd answered with a typed failure */
};

struct lutfctl_global {
	const char *socket;  /* data socket URL */
	const char *control; /* control socket path or URL */
	bool json;
	uint32_t timeout_ms; /* 0: not given */
	char socket_buf[4200], control_buf[4200];
	const char *cluster;	   /* --cluster nats://...: the cluster registry */
	const char *cluster_creds; /* --cluster-creds FILE */
	uint32_t cluster_replicas; /* deploy --replicas N (with --cluster); 0 = every node */
};

extern struct lutfctl_global g;

#define HELP_OPT                                                                                   \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

/* Print "lutfctl: <message>" and a --help hint; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After getopt returned '?' or ':' (opterr is 0); returns EXIT_USAGE. */
int bad_option(const char *cmd, char **argv);
/* A decimal u32; false when it is not one. */
bool parse_u32(const char *v, uint32_t *out);
/* "tenant/function" into two buffers of cap bytes; false when malformed. */
bool split_target(const char *arg, char *tenant, char *fn, size_t cap);
/* Connect and apply --timeout; EXIT_OK or EXIT_TRANSPORT (reported). */
int connect_or_report(const char *url, struct lutf_client **c);
/* Report a library -errno; returns EXIT_USAGE, EXIT_LOCAL or EXIT_TRANSPORT. */
int transport_error(const char *what, int err);
/* Report a typed status (and JSON with --json); returns 10 + status. */
int status_error(uint32_t status, uint32_t detail, const char *error);
/* EXIT_OK, or the typed failure of a control reply, reported. */
int reply_code(const struct lutf_client_reply *rep);
/* Flush stdout; a write failure becomes EXIT_LOCAL. Returns the exit code. */
int finish(int code);
/* getopt_long over a subcommand's arguments (argv[0] is the command). */
int sub_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

int cmd_deploy(int argc, char **argv);
int cmd_invoke(int argc, char **argv);
int cmd_key(int argc, char **argv);
/* cmd_cluster.c (built with libnats only): --cluster and "cluster status". */
int cluster_deploy(const struct lutf_client_deploy *d);
int cluster_fn(const char *cmd, const char *tenant, const char *fn);
int cluster_list(const char *tenant);
int cmd_cluster(int argc, char **argv);
int cluster_invoke_async(const char *tenant, const char *fn, const void *in, size_t len,
			 const char *id);
int cmd_result(int argc, char **argv);

#endif /* LUTFCTL_H */
