/* SPDX-License-Identifier: MIT */
/*
 * Loading apps: dlopen(RTLD_NOW | RTLD_LOCAL) so apps never see each other's
 * symbols, refuse an app without lutf_abi_version or built for another ABI,
 * run lutf_app_init once per loaded object. An app is unloaded (fini, then
 * dlclose) only when its last function is reclaimed, which happens only when
 * no Labor is inside any of them.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

int lutf_app_load(struct lutf_runtime *rt, const char *path, struct lutf_app **out)
{
	const uint32_t *abi;
	lutf_app_init_t init;
	struct lutf_app *app;
	void *h;
	int err;

	if (access(path, R_OK) != 0) {
		err = -errno;
		lutf_set_error("%s: cannot read app", path);
		return err == -EACCES ? -EACCES : -ENOENT;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		lutf_set_error("%s: cannot load: %s", path, dlerror());
		return -ENOEXEC;
	}
	for (app = rt->apps; app; app = app->next) {
		if (app->handle == h) {
			dlclose(h); /* dlopen counted it twice: once is ours already */
			app->refs++;
			*out = app;
			return 0;
		}
	}
	abi = dlsym(h, "lutf_abi_version");
	if (!abi) {
		lutf_set_error("%s: not a lutf app (no lutf_abi_version symbol; add LUTF_APP_ABI;)",
			       path);
		dlclose(h);
		return -ENOEXEC;
	}
	if (*abi != LUTF_ABI_VERSION) {
		lutf_set_error("%s: built for lutf ABI %u, this runtime speaks ABI %u: rebuild it "
			       "against this <lutf/function.h>",
			       path, *abi, LUTF_ABI_VERSION);
		dlclose(h);
		return -EPROTO;
	}
	app = calloc(1, sizeof(*app));
	if (!app) {
		dlclose(h);
		return -ENOMEM;
	}
	app->handle = h;
	app->refs = 1;
	app->fini = (lutf_app_fini_t)dlsym(h, "lutf_app_fini");
	init = (lutf_app_init_t)dlsym(h, "lutf_app_init");
	if (init) {
		err = init(&app->state);
		if (err) {
			lutf_set_error("%s: lutf_app_init failed (%d)", path, err);
			free(app);
			dlclose(h);
			return -ECANCELED;
		}
	}
	app->next = rt->apps;
	rt->apps = app;
	*out = app;
	return 0;
}

void *lutf_app_sym(struct lutf_app *app, const char *symbol)
{
	return dlsym(app->handle, symbol);
}

void lutf_app_unref(struct lutf_runtime *rt, struct lutf_app *app)
{
	struct lutf_app **pp;

	if (--app->refs)
		return;
	for (pp = &rt->apps; *pp; pp = &(*pp)->next) {
		if (*pp == app) {
			*pp = app->next;
			break;
		}
	}
	if (app->fini)
		app->fini(app->state);
	dlclose(app->handle);
	free(app);
}
