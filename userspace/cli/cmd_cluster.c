/* SPDX-License-Identifier: MIT */
/*
 * lutfctl --cluster URL: deploy, pause, resume, delete and list against the
 * cluster registry on NATS JetStream instead of one lutfd, and "lutfctl
 * cluster status" (nodes, versions, convergence). Invariant: a deploy writes
 * the artifact before any manifest that names it, so a node never sees a
 * manifest whose chunks are not stored yet.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"
#include "lutfctl.h"
#include "output.h"

static int open_cluster(struct lutf_cluster **c)
{
	struct lutf_cluster_opts o = {
	    .url = g.cluster,
	    .creds = g.cluster_creds,
	    .token = getenv("LUTF_CLUSTER_TOKEN"),
	    .name = "lutfctl",
	};
	char msg[400];
	int err = lutf_cluster_open(&o, c, msg, sizeof(msg));

	/* A server that just died leaves streams without a leader for a few
	 * seconds (R3 elects another): a timeout is tried again, bounded. */
	for (int i = 0; !err && i < 4; i++) {
		err = lutf_cluster_ready(*c, msg, sizeof(msg));
		if (err != -ETIMEDOUT)
			break;
	}
	if (err) {
		fprintf(stderr, "lutfctl: cluster %s: %s\n", g.cluster, msg);
		lutf_cluster_close(*c);
		*c = NULL;
		return EXIT_TRANSPORT;
	}
	return EXIT_OK;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!fp)
		return NULL;
	if (!fseek(fp, 0, SEEK_END) && (n = ftell(fp)) > 0 && !fseek(fp, 0, SEEK_SET) &&
	    (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, fp) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
		errno = errno ? errno : EIO;
	}
	fclose(fp);
	return buf;
}

int cluster_deploy(const struct lutf_client_deploy *d)
{
	struct lutf_cluster_manifest m = {0};
	struct lutf_cluster *c = NULL;
	uint8_t *so = NULL;
	size_t len = 0;
	char msg[400];
	int code, err;

	if (d->n_config)
		return usage_error("deploy", "--config is not carried by cluster deploys yet");
	so = slurp(d->so_path, &len);
	if (!so) {
		fprintf(stderr, "lutfctl: %s: %s\n", d->so_path, strerror(errno));
		return finish(EXIT_LOCAL);
	}
	code = open_cluster(&c);
	if (code)
		goto out;
	snprintf(m.tenant, sizeof(m.tenant), "%s", d->tenant);
	snprintf(m.app, sizeof(m.app), "%s", d->app);
	snprintf(m.tier, sizeof(m.tier), "%s", d->tier ? d->tier : "");
	m.timeout_ms = d->timeout_ms;
	m.memory_mb = d->memory_mb;
	m.max_concurrency = d->max_concurrency;
	m.is_public = d->is_public;
	m.replicas = g.cluster_replicas;
	err = lutf_cluster_artifact_put(c, so, len, &m, msg, sizeof(msg));
	for (size_t i = 0; !err && i < d->n_exports; i++) {
		struct lutf_cluster_manifest one = m, old;
		uint64_t rev = 0;
		char check[300];

		snprintf(one.function, sizeof(one.function), "%s", d->exports[i].function);
		snprintf(one.symbol, sizeof(one.symbol), "%s",
			 d->exports[i].symbol ? d->exports[i].symbol : d->exports[i].function);
		/* A redeploy keeps the function's pause, as on one lutfd. */
		if (!lutf_cluster_manifest_get(c, m.tenant, one.function, &old, NULL, check,
					       sizeof(check)))
			one.paused = old.paused;
		{
			char buf[4096];
			int n = lutf_cluster_manifest_encode(&one, buf, sizeof(buf));

			if (n < 0 || lutf_cluster_manifest_decode(buf, (size_t)n, NULL, &old, check,
								  sizeof(check))) {
				code = usage_error("deploy", "invalid for the cluster: %s", check);
				goto out;
			}
		}
		err = lutf_cluster_manifest_put(c, &one, &rev, msg, sizeof(msg));
		if (!err && !g.json)
			printf("registered %s/%s revision %" PRIu64 "\n", m.tenant, one.function,
			       rev);
	}
	if (err) {
		fprintf(stderr, "lutfctl: deploy: %s\n", msg);
		code = EXIT_TRANSPORT;
		goto out;
	}
	if (g.json)
		printf("{\"status\":\"ok\",\"tenant\":\"%s\",\"app\":\"%s\",\"sha256\":\"%s\"}\n",
		       m.tenant, m.app, m.sha256);
	else
		printf("deployed %s/%s to the cluster: sha256 %s, %" PRIu64 " bytes\n", m.tenant,
		       m.app, m.sha256, m.size);
out:
	free(so);
	lutf_cluster_close(c);
	return finish(code);
}

int cluster_fn(const char *cmd, const char *tenant, const char *fn)
{
	struct lutf_cluster_manifest m;
	struct lutf_cluster *c = NULL;
	char msg[400];
	int code = open_cluster(&c), err;

	if (code)
		return finish(code);
	if (!strcmp(cmd, "delete")) {
		err = lutf_cluster_manifest_delete(c, tenant, fn, msg, sizeof(msg));
	} else {
		err = lutf_cluster_manifest_get(c, tenant, fn, &m, NULL, msg, sizeof(msg));
		if (!err) {
			m.paused = !strcmp(cmd, "pause");
			err = lutf_cluster_manifest_put(c, &m, NULL, msg, sizeof(msg));
		}
	}
	lutf_cluster_close(c);
	if (err == -ENOENT)
		return finish(status_error(LUTF_STATUS_UNKNOWN_FUNCTION, 0,
					   "no such function in the cluster registry"));
	if (err) {
		fprintf(stderr, "lutfctl: %s: %s\n", cmd, msg);
		return finish(EXIT_TRANSPORT);
	}
	if (g.json)
		printf("{\"status\":\"ok\",\"function\":\"%s/%s\"}\n", tenant, fn);
	else
		printf("%s %s/%s in the cluster\n",
		       cmd[0] == 'p'   ? "paused"
		       : cmd[0] == 'r' ? "resumed"
				       : "deleted",
		       tenant, fn);
	return finish(EXIT_OK);
}

struct rows {
	const char *tenant;
	unsigned n;
};

static void list_row(void *arg, const char *key, const void *val, size_t len, uint64_t rev)
{
	struct rows *r = arg;
	struct lutf_cluster_manifest m;
	char msg[300];

	if (lutf_cluster_manifest_decode(val, len, key, &m, msg, sizeof(msg))) {
		fprintf(stderr, "lutfctl: key %s: malformed manifest: %s\n", key, msg);
		return;
	}
	if (r->tenant && strcmp(r->tenant, m.tenant))
		return;
	if (g.json)
		printf("%s{\"tenant\":\"%s\",\"app\":\"%s\",\"function\":\"%s\",\"state\":\"%s\","
		       "\"revision\":%" PRIu64 ",\"tier\":\"%s\",\"sha256\":\"%s\"}",
		       r->n ? "," : "", m.tenant, m.app, m.function, m.paused ? "paused" : "active",
		       rev, m.tier, m.sha256);
	else
		printf("%-16s %-16s %-16s %-7s %-9" PRIu64 " %-8s %.12s\n", m.tenant, m.app,
		       m.function, m.paused ? "paused" : "active", rev, m.tier[0] ? m.tier : "-",
		       m.sha256);
	r->n++;
}

int cluster_list(const char *tenant)
{
	struct lutf_cluster *c = NULL;
	struct rows r = {tenant, 0};
	char msg[400];
	int code = open_cluster(&c), err;

	if (code)
		return finish(code);
	if (g.json)
		printf("[");
	else
		printf("%-16s %-16s %-16s %-7s %-9s %-8s %s\n", "TENANT", "APP", "FUNCTION",
		       "STATE", "REVISION", "TIER", "SHA256");
	err = lutf_cluster_kv_each(c, LUTF_CLUSTER_FNS, list_row, &r, msg, sizeof(msg));
	if (g.json)
		printf("]\n");
	lutf_cluster_close(c);
	if (err) {
		fprintf(stderr, "lutfctl: list: %s\n", msg);
		return finish(EXIT_TRANSPORT);
	}
	return finish(EXIT_OK);
}

/* ---- cluster status ---- */

#define STATUS_MAX 256

struct fnrev {
	char key[2 * LUTF_CLUSTER_NAME + 2];
	uint64_t rev;
	unsigned nodes;
};

struct status {
	struct fnrev f[STATUS_MAX];
	unsigned nf, nn;
};

static void status_fn(void *arg, const char *key, const void *val, size_t len, uint64_t rev)
{
	struct status *s = arg;

	(void)val;
	(void)len;
	if (s->nf < STATUS_MAX) {
		snprintf(s->f[s->nf].key, sizeof(s->f[0].key), "%s", key);
		s->f[s->nf++].rev = rev;
	}
}

static void status_node(void *arg, const char *key, const void *val, size_t len, uint64_t rev)
{
	struct status *s = arg;
	char buf[8192], *line, *save = NULL, version[32] = "?";
	unsigned have = 0, fns = 0;

	(void)rev;
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, val, len);
	buf[len] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *at;

		if (!strncmp(line, "version=", 8))
			snprintf(version, sizeof(version), "%s", line + 8);
		if (strncmp(line, "applied=", 8) || !(at = strrchr(line, '@')))
			continue;
		*at = 0;
		fns++;
		for (unsigned i = 0; i < s->nf; i++)
			if (!strcmp(s->f[i].key, line + 8) &&
			    strtoull(at + 1, NULL, 10) == s->f[i].rev) {
				s->f[i].nodes++;
				have++;
			}
	}
	if (g.json)
		printf("%s{\"node\":\"%s\",\"version\":\"%s\",\"functions\":%u,\"converged\":%u}",
		       s->nn ? "," : "", key, version, fns, have);
	else
		printf("node %-24s version %-8s functions %-4u in step %u/%u\n", key, version, fns,
		       have, s->nf);
	s->nn++;
}

int cmd_cluster(int argc, char **argv)
{
	struct lutf_cluster *c = NULL;
	struct status *s;
	char msg[400];
	int code, err;

	if (argc < 2 || strcmp(argv[1], "status")) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			printf("Usage: lutfctl --cluster nats://HOST:PORT[,...] cluster status\n\n"
			       "Nodes that beat in the last %u s, their version, and how many of\n"
			       "the registry's function revisions each runs.\n",
			       LUTF_CLUSTER_NODE_TTL_MS / 1000);
			return finish(EXIT_OK);
		}
		return usage_error("cluster", "cluster takes 'status'");
	}
	if (!g.cluster)
		return usage_error("cluster", "cluster status needs --cluster nats://...");
	s = calloc(1, sizeof(*s));
	if (!s)
		return finish(EXIT_LOCAL);
	code = open_cluster(&c);
	if (code)
		goto out;
	err = lutf_cluster_kv_each(c, LUTF_CLUSTER_FNS, status_fn, s, msg, sizeof(msg));
	if (g.json)
		printf("{\"nodes\":[");
	if (!err)
		err = lutf_cluster_kv_each(c, LUTF_CLUSTER_NODES, status_node, s, msg, sizeof(msg));
	if (g.json) {
		printf("],\"functions\":[");
		for (unsigned i = 0; i < s->nf; i++)
			printf("%s{\"key\":\"%s\",\"revision\":%" PRIu64 ",\"nodes\":%u}",
			       i ? "," : "", s->f[i].key, s->f[i].rev, s->f[i].nodes);
		printf("]}\n");
	} else {
		for (unsigned i = 0; i < s->nf; i++)
			printf("function %-32s revision %-8" PRIu64 " on %u/%u nodes\n",
			       s->f[i].key, s->f[i].rev, s->f[i].nodes, s->nn);
	}
	if (err) {
		fprintf(stderr, "lutfctl: cluster status: %s\n", msg);
		code = EXIT_TRANSPORT;
	}
out:
	lutf_cluster_close(c);
	free(s);
	return finish(code);
}

/* ---- async calls ---- */

int cluster_invoke_async(const char *tenant, const char *fn, const void *in, size_t len,
			 const char *id)
{
	struct lutf_cluster *c = NULL;
	char buf[LUTF_CLUSTER_ID] = "", msg[400];
	bool dup = false;
	int code = open_cluster(&c), err;

	if (code)
		return finish(code);
	if (id)
		snprintf(buf, sizeof(buf), "%.63s", id);
	err = lutf_cluster_async_submit(c, tenant, fn, in, len, buf, &dup, msg, sizeof(msg));
	lutf_cluster_close(c);
	if (err == -EINVAL)
		return usage_error("invoke", "%s", msg);
	if (err) {
		fprintf(stderr, "lutfctl: invoke --async: %s\n", msg);
		return finish(EXIT_TRANSPORT);
	}
	if (g.json)
		printf("{\"status\":\"accepted\",\"id\":\"%s\",\"duplicate\":%s}\n", buf,
		       dup ? "true" : "false");
	else
		printf("%s%s\n", buf, dup ? " (already queued)" : "");
	return finish(EXIT_OK);
}

int cmd_result(int argc, char **argv)
{
	struct lutf_cluster_reply r;
	struct lutf_cluster *c = NULL;
	char msg[400];
	bool dead = false;
	int code, err;

	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			printf(
			    "Usage: lutfctl --cluster nats://... [--json] result ID\n\n"
			    "The stored result of async call ID: its output on stdout (exit 0),\n"
			    "or its typed failure (exit 10+N). A call that ran out of retries\n"
			    "ended in the dead-letter stream: its last failure is shown.\n"
			    "Exit 4: not done yet (queued, running or backing off); 'pending'\n"
			    "on stdout ({\"id\":...,\"state\":\"pending\"} with --json).\n"
			    "Exit 5: no such call (an unknown id, or its result expired).\n"
			    "Exit 3: NATS could not be reached or answered an error.\n");
			return finish(EXIT_OK);
		}
		return usage_error("result", "result takes one ID");
	}
	if (!g.cluster)
		return usage_error("result", "result needs --cluster nats://...");
	code = open_cluster(&c);
	if (code)
		return finish(code);
	err = lutf_cluster_result_get(c, argv[1], &r, &dead, msg, sizeof(msg));
	if (err == -ENOENT) {
		char tenant[LUTF_CLUSTER_NAME], fn[LUTF_CLUSTER_NAME];

		/* No result: still in the work queue, or no such call. A call
		 * acked between the two reads has its result stored: read again. */
		err = lutf_cluster_async_pending(c, argv[1], tenant, fn, msg, sizeof(msg));
		if (err == -ENOENT &&
		    lutf_cluster_result_get(c, argv[1], &r, &dead, msg, sizeof(msg)) == 0) {
			err = 0;
			goto stored;
		}
		lutf_cluster_close(c);
		if (err && err != -ENOENT) {
			fprintf(stderr, "lutfctl: result: %s\n", msg);
			return finish(EXIT_TRANSPORT);
		}
		if (g.json)
			printf("{\"id\":\"%s\",\"state\":\"%s\"}\n", argv[1],
			       err ? "unknown" : "pending");
		else if (!err)
			printf("pending\n");
		if (err)
			fprintf(stderr,
				"lutfctl: result: no call %s (an unknown id, or its result "
				"expired)\n",
				argv[1]);
		return finish(err ? EXIT_NO_RESULT : EXIT_PENDING);
	}
stored:
	lutf_cluster_close(c);
	if (err == -EINVAL)
		return usage_error("result", "%s", msg);
	if (err) {
		fprintf(stderr, "lutfctl: result: %s\n", msg);
		return finish(EXIT_TRANSPORT);
	}
	if (r.status != LUTF_STATUS_OK)
		code = status_error(r.status, r.detail,
				    dead ? "retries exhausted (dead-letter stream)" : r.error);
	else if (r.output_len)
		fwrite(r.output, 1, r.output_len, stdout);
	free(r.output);
	return finish(code);
}
