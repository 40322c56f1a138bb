/* SPDX-License-Identifier: MIT */
/*
 * lutfctl key: create, list and revoke a tenant's API keys on the control
 * socket. Invariant: a key's secret is printed once, by create, and nowhere
 * else; list shows ids, creation times and states only. With --cluster
 * the same verbs act on the cluster's lutf_keys bucket (every node takes
 * its keys from there; docs/cluster.md "Keys").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lutf/client.h>

#include "lutfctl.h"
#include "output.h"
#ifdef LUTF_HAVE_CLUSTER
#include "cluster.h"
#include "cluster_keys.h"
#endif

static const char key_help[] =
    "Usage: lutfctl [--cluster URL] key create TENANT   (or: key add TENANT)\n"
    "       lutfctl [--cluster URL] key list [TENANT]\n"
    "       lutfctl [--cluster URL] key revoke TENANT KEY_ID\n"
    "\n"
    "API keys let callers invoke TENANT's functions over TCP and HTTP (and\n"
    "nats:// in a cluster)\n"
    "(HTTP: Authorization: Bearer KEY; lutfctl invoke --key KEY or LUTF_KEY).\n"
    "  create  make a key and print it on stdout. It is shown this once:\n"
    "          lutfd keeps only its hash. Its id goes to stderr.\n"
    "  list    key ids, creation times and states (active or revoked), never keys\n"
    "  revoke  the key stops working at once; it stays listed as revoked\n"
    "\n"
    "With --cluster nats://HOST:PORT[,...] the key lives in the cluster's\n"
    "lutf_keys bucket and opens TENANT's functions on every node (the nodes\n"
    "take it within a second; a revocation too). create (or add) needs TENANT\n"
    "deployed in the cluster registry. Without --cluster, keys are this lutfd's\n"
    "own (docs/cluster.md \"Keys\").\n";

static void print_time(const struct lutf_client_record *r, const char *key, char *buf, size_t cap)
{
	const struct lutf_client_field *f = lutf_client_record_get(r, key);
	struct tm tm;
	time_t t;

	snprintf(buf, cap, "-");
	if (!f || f->type != LUTF_CLIENT_U64)
		return;
	t = (time_t)f->u64;
	if (gmtime_r(&t, &tm))
		strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *str_of(const struct lutf_client_record *r, const char *key)
{
	const struct lutf_client_field *f = lutf_client_record_get(r, key);

	return f && f->type == LUTF_CLIENT_STR && f->str ? f->str : "-";
}

static void print_list(const struct lutf_client_reply *rep)
{
	if (g.json) {
		out_json_records(stdout, rep->records, rep->n_records, NULL, NULL);
		putchar('\n');
		return;
	}
	printf("%-20s %-16s %-20s %-8s %s\n", "TENANT", "KEY_ID", "CREATED", "STATE", "REVOKED");
	for (size_t i = 0; i < rep->n_records; i++) {
		const struct lutf_client_record *r = &rep->records[i];
		char created[32], revoked[32];

		if (!lutf_client_record_get(r, "key_id"))
			continue;
		print_time(r, "created", created, sizeof(created));
		print_time(r, "revoked", revoked, sizeof(revoked));
		printf("%-20s %-16s %-20s %-8s %s\n", str_of(r, "tenant"), str_of(r, "key_id"),
		       created, str_of(r, "state"), revoked);
	}
}

#ifdef LUTF_HAVE_CLUSTER
static void time_str(uint64_t t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	snprintf(buf, cap, "-");
	if (t && gmtime_r(&tt, &tm))
		strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct list_out {
	bool first;
};

static void list_one(void *arg, const struct lutf_cluster_key *k)
{
	struct list_out *o = arg;
	char created[32], revoked[32];

	if (g.json) {
		/* Names and ids are [a-z0-9_-] and hex: nothing to escape. */
		printf("%s{\"tenant\":\"%s\",\"key_id\":\"%s\",\"created\":%" PRIu64
		       ",\"state\":\"%s\"",
		       o->first ? "" : ",", k->tenant, k->id, k->created,
		       k->revoked ? "revoked" : "active");
		if (k->revoked)
			printf(",\"revoked\":%" PRIu64, k->revoked);
		putchar('}');
		o->first = false;
		return;
	}
	time_str(k->created, created, sizeof(created));
	time_str(k->revoked, revoked, sizeof(revoked));
	printf("%-20s %-16s %-20s %-8s %s\n", k->tenant, k->id, created,
	       k->revoked ? "revoked" : "active", revoked);
}

/* The verbs against lutf_keys. */
static int cluster_key(const char *verb, const char *tenant, const char *id)
{
	struct lutf_cluster_opts o = {
	    .url = g.cluster,
	    .creds = g.cluster_creds,
	    .token = getenv("LUTF_CLUSTER_TOKEN"),
	    .name = "lutfctl",
	};
	struct lutf_cluster *c = NULL;
	struct lutf_cluster_key k;
	char msg[400], key[88] = "";
	int err = lutf_cluster_open(&o, &c, msg, sizeof(msg)), code = EXIT_OK;

	if (err) {
		fprintf(stderr, "lutfctl: cluster %s: %s\n", g.cluster, msg);
		return finish(EXIT_TRANSPORT);
	}
	if (!strcmp(verb, "list")) {
		struct list_out lo = {.first = true};

		if (g.json)
			putchar('[');
		else
			printf("%-20s %-16s %-20s %-8s %s\n", "TENANT", "KEY_ID", "CREATED",
			       "STATE", "REVOKED");
		err = lutf_cluster_key_list(c, tenant, list_one, &lo, msg, sizeof(msg));
		if (g.json)
			puts("]");
	} else if (!strcmp(verb, "revoke")) {
		err = lutf_cluster_key_revoke(c, tenant, id, msg, sizeof(msg));
		if (!err && !g.json)
			fprintf(stderr, "lutfctl: cluster key %s of tenant %s revoked\n", id,
				tenant);
	} else {
		err = lutf_cluster_key_add(c, tenant, key, &k, msg, sizeof(msg));
		if (!err && g.json)
			printf("{\"tenant\":\"%s\",\"key_id\":\"%s\",\"created\":%" PRIu64
			       ",\"key\":\"%s\"}\n",
			       tenant, k.id, k.created, key);
		else if (!err) {
			puts(key);
			fprintf(stderr,
				"lutfctl: cluster key %s of tenant %s created; it is shown only "
				"this once\n",
				k.id, tenant);
		}
		explicit_bzero(key, sizeof(key));
	}
	lutf_cluster_close(c);
	if (err == -ENOENT) {
		fprintf(stderr, "lutfctl: key %s: %s\n", verb, msg);
		code = EXIT_STATUS + LUTF_STATUS_UNKNOWN_FUNCTION;
	} else if (err == -EINVAL) {
		fprintf(stderr, "lutfctl: key %s: %s\n", verb, msg);
		code = EXIT_USAGE;
	} else if (err) {
		fprintf(stderr, "lutfctl: cluster %s: %s\n", g.cluster, msg);
		code = EXIT_TRANSPORT;
	}
	return finish(code);
}
#endif

int cmd_key(int argc, char **argv)
{
	static const struct option opts[] = {
	    HELP_OPT,
	    {0},
	};
	const char *verb, *tenant = NULL, *id = NULL;
	struct lutf_client_reply rep;
	struct lutf_client *c;
	int opt, code, err;
	size_t nargs;

	while ((opt = sub_getopt(argc, argv, "h", opts)) != -1) {
		if (opt == 'h') {
			fputs(key_help, stdout);
			return finish(EXIT_OK);
		}
		return bad_option("key", argv);
	}
	if (optind >= argc)
		return usage_error("key", "key needs create, list or revoke");
	verb = argv[optind++];
	if (!strcmp(verb, "add"))
		verb = "create";
	nargs = (size_t)(argc - optind);
	if (!strcmp(verb, "create") && nargs == 1) {
		tenant = argv[optind];
	} else if (!strcmp(verb, "list") && nargs <= 1) {
		tenant = nargs ? argv[optind] : NULL;
	} else if (!strcmp(verb, "revoke") && nargs == 2) {
		tenant = argv[optind];
		id = argv[optind + 1];
	} else if (strcmp(verb, "create") && strcmp(verb, "list") && strcmp(verb, "revoke")) {
		return usage_error("key", "unknown key command '%s' (create or add, list, revoke)",
				   verb);
	} else {
		return usage_error("key", "key %s: wrong number of arguments", verb);
	}
	if (g.cluster) {
#ifdef LUTF_HAVE_CLUSTER
		return cluster_key(verb, tenant, id);
#else
		return usage_error("key", "--cluster: this lutfctl was built without libnats");
#endif
	}
	code = connect_or_report(g.control, &c);
	if (code)
		return code;
	if (!strcmp(verb, "create"))
		err = lutf_client_key_create(c, tenant, &rep);
	else if (!strcmp(verb, "list"))
		err = lutf_client_key_list(c, tenant, &rep);
	else
		err = lutf_client_key_revoke(c, tenant, id, &rep);
	lutf_client_close(c);
	if (err)
		return transport_error("key", err);
	code = reply_code(&rep);
	if (!code && !strcmp(verb, "create")) {
		const struct lutf_client_record *r = rep.n_records ? &rep.records[0] : NULL;
		const char *key = r ? str_of(r, "key") : "-";

		if (g.json) {
			out_json_records(stdout, rep.records, rep.n_records, NULL, NULL);
			putchar('\n');
		} else {
			puts(key);
			fprintf(stderr,
				"lutfctl: key %s of tenant %s created; it is shown only this "
				"once\n",
				r ? str_of(r, "key_id") : "-", tenant);
		}
	} else if (!code && !strcmp(verb, "list")) {
		print_list(&rep);
	} else if (!code && !g.json) {
		fprintf(stderr, "lutfctl: key %s of tenant %s revoked\n", id, tenant);
	}
	lutf_client_reply_release(&rep);
	return finish(code);
}
