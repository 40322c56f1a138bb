/* SPDX-License-Identifier: MIT */
/*
 * What `lutfctl deploy` sends, gathered from options and a manifest file.
 * Options win: a manifest fills only what the options left unset, adds
 * exports for functions the options did not name, and config entries whose
 * function and key the options did not set.
 */
#ifndef LUTFCTL_DEPLOY_SPEC_H
#define LUTFCTL_DEPLOY_SPEC_H

#include <stddef.h>

#include <lutf/client.h>

struct deploy_spec {
	struct lutf_client_deploy d; /* d.exports and d.config point at the arrays below */
	struct lutf_client_export *exports;
	size_t cap_exports;
	struct lutf_client_config *config;
	size_t cap_config;
	char **owned; /* every string the spec copied */
	size_t n_owned, cap_owned;
};

void spec_init(struct deploy_spec *s);
void spec_free(struct deploy_spec *s);
/* A copy of str owned by the spec, or NULL when out of memory. */
char *spec_strdup(struct deploy_spec *s, const char *str);
/* Add "fn" or "fn=symbol" unless fn is already exported. Returns 0, -EINVAL or -ENOMEM. */
int spec_add_export(struct deploy_spec *s, const char *arg);
/* Add fn/key=value unless that fn/key is set. Returns 0, -EINVAL or -ENOMEM. */
int spec_add_config(struct deploy_spec *s, const char *fn, const char *key, const char *value);

/*
 * Read a manifest (INI, documented in `lutfctl deploy --help` and
 * docs/client.md) into s, under the rule above. Returns 0, or -errno with a
 * message for people in err.
 */
int manifest_load(const char *path, struct deploy_spec *s, char *err, size_t errlen);

#endif /* LUTFCTL_DEPLOY_SPEC_H */
